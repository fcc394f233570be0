"""bpflink: create BPF links from Python, exactly as libbpf's ``bpf_link_create``.

>>> import bpflink
>>> from bpflink import AttachType, ProgType, Program, asm, link_create
>>> prog = Program.load(ProgType.CGROUP_SKB, asm.return_imm(0),
...                     expected_attach_type=AttachType.CGROUP_INET_EGRESS)
>>> # not run as a doctest: needs that cgroup v2 directory (tests/test_core.py links cgroups)
>>> with link_create(prog, "/sys/fs/cgroup/unified/demo", AttachType.CGROUP_INET_EGRESS) as link:  # doctest: +SKIP
...     print(link.info())
"""

from . import lowlevel as _ll
from ._log import route_libbpf_print  # importing it routes libbpf's messages to logging (imported lazily)
from ._version import __version__

# Everything else is imported on first use (PEP 562 __getattr__ below), so that `import bpflink` loads only the
# extension: a CLI call or a program that needs one name does not pay for the rest. `from bpflink import X`,
# `bpflink.X`, `bpflink.<submodule>` and dir() give what an eager import would.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; mypy and IDEs read the imports below
if TYPE_CHECKING:
    from . import asm, lowlevel, opts
    from .attach.group import LinkGroup
    from .cpus import possible_cpus
    from .create import link_create
    from .enums import AttachType, LinkType, MapType, MprogFlags, NfInetHook, NfProto, ProgType, XdpFlags
    from .errors import NotSupportedError, VerifierError
    from .info import LinkInfo
    from .lifecycle import ensure_group
    from .link import Link
    from .listing import links
    from .map import Map, MapUpdateFlags
    from .object import Object
    from .owners import owners
    from .perfbuf import PerfBuffer
    from .probing import ProbeResult, probe, supports
    from .program import Program
    from .query import HookEntry, HookQuery, query
    from .ringbuf import RingBuffer
    from .usdt import attach_usdt

#: public name -> the submodule defining it ("" for the submodules themselves: asm, lowlevel, opts, probe...)
_LAZY = {
    "asm": "", "lowlevel": "", "opts": "", "link_create": "create", "LinkInfo": "info", "Link": "link",
    "links": "listing", "LinkGroup": "attach.group", "Map": "map", "Object": "object", "Program": "program",
    "owners": "", "ensure_group": "lifecycle",
    **dict.fromkeys(("AttachType", "LinkType", "MapType", "MprogFlags", "NfInetHook", "NfProto", "ProgType",
                     "XdpFlags"), "enums"),
    **dict.fromkeys(("NotSupportedError", "VerifierError"), "errors"),
    # probe, query and owners are modules that are also callable as their function (see _callable.py)
    "probe": "", "query": "", **dict.fromkeys(("ProbeResult", "supports"), "probing"),
    **dict.fromkeys(("HookEntry", "HookQuery"), "query"),
    "attach_usdt": "usdt",
    "possible_cpus": "cpus", "MapUpdateFlags": "map",
    "RingBuffer": "ringbuf", "PerfBuffer": "perfbuf",
}


def __getattr__(name: str) -> object:
    import importlib

    where = _LAZY.get(name)
    if where is None:  # any other submodule (bpflink.errors, bpflink.perf, ...), imported on first access
        if name.startswith("__"):
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(f"{__name__}.{where or name}")
    value = getattr(module, name) if where else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def libbpf_version() -> str:
    """The libbpf version compiled into bpflink, e.g. ``"1.7"``."""
    return f"{_ll.libbpf_major_version()}.{_ll.libbpf_minor_version()}"


__all__ = [
    "AttachType", "HookEntry", "HookQuery", "Link", "LinkGroup", "LinkInfo", "LinkType", "Map", "MapType",
    "MapUpdateFlags", "MprogFlags", "NfInetHook", "NfProto", "NotSupportedError", "Object", "PerfBuffer",
    "ProbeResult", "ProgType", "Program", "RingBuffer", "VerifierError", "XdpFlags", "__version__", "asm",
    "attach_usdt", "ensure_group", "libbpf_version", "link_create", "links", "lowlevel", "opts", "owners",
    "possible_cpus", "probe", "query", "route_libbpf_print", "supports",
]
