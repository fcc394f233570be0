"""bpflink: create BPF links from Python, exactly as libbpf's ``bpf_link_create``.

>>> import bpflink
>>> from bpflink import AttachType, ProgType, Program, asm, link_create
>>> prog = Program.load(ProgType.CGROUP_SKB, asm.return_imm(0),
...                     expected_attach_type=AttachType.CGROUP_INET_EGRESS)  # doctest: +SKIP
>>> with link_create(prog, "/sys/fs/cgroup/unified/demo", AttachType.CGROUP_INET_EGRESS) as link:  # doctest: +SKIP
...     print(link.info())
"""

from . import asm, lowlevel, opts
from ._log import route_libbpf_print  # importing it routes libbpf's messages to logging
from ._native import lib as _lib
from ._version import __version__
from .create import link_create
from .enums import AttachType, LinkType, MapType, MprogFlags, NfInetHook, NfProto, ProgType, XdpFlags
from .errors import NotSupportedError, VerifierError
from .info import LinkInfo
from .link import Link
from .listing import links
from .map import Map
from .object import Object
from .probe import ProbeResult, probe, supports
from .program import Program
from .query import HookEntry, HookQuery, query


def libbpf_version() -> str:
    """The libbpf version compiled into bpflink, e.g. ``"1.7"``."""
    return f"{_lib.libbpf_major_version()}.{_lib.libbpf_minor_version()}"


__all__ = [
    "AttachType", "HookEntry", "HookQuery", "Link", "LinkInfo", "LinkType", "Map", "MapType", "MprogFlags",
    "NfInetHook", "NfProto", "NotSupportedError", "Object", "ProbeResult", "ProgType", "Program", "VerifierError",
    "XdpFlags", "__version__", "asm", "libbpf_version", "link_create", "links", "lowlevel", "opts", "probe", "query",
    "route_libbpf_print", "supports",
]
