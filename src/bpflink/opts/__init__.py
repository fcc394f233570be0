"""Typed, validated builders for ``struct bpf_link_create_opts``: one per attach family.

Each builder is a frozen dataclass that validates itself when made; ``bpflink.link_create(prog, target,
attach_type, opts)`` checks it belongs to the attach type, then fills exactly its own member of the opts union.
Builders are not keyword-only (``dataclass(kw_only=)`` needs Python 3.10, bpflink supports 3.9): the leading
fields a builder names in its signature (``UprobeMulti(path, ...)``, ``Netfilter(pf, hooknum, ...)``) may be
given by position; pass every other field by keyword, as the examples do, since positional order beyond those
is not promised.

Each builder lives in its family's module (``bpflink.families.tcx`` holds ``Tcx`` and the tcx ``Family``
record); this package gathers them under one name.
"""

from ..families._anchor import Anchor, LinkId, ProgId

# the builders through their former modules, which stay importable (bpflink.opts.mprog.Tcx, ...)
from ._base import BuiltOpts, LinkOpts
from .freplace import Freplace, function_btf_id
from .iter import CgroupIterOrder, Iter
from .kprobe_multi import KprobeMulti
from .mprog import Cgroup, Netkit, Tcx
from .netfilter import Netfilter
from .perf_event import PerfEvent
from .tracing import Tracing
from .uprobe_multi import UprobeMulti
from .xdp import Xdp

__all__ = ["Anchor", "BuiltOpts", "Cgroup", "CgroupIterOrder", "Freplace", "Iter", "KprobeMulti", "LinkId",
           "LinkOpts", "Netfilter", "Netkit", "PerfEvent", "ProgId", "Tcx", "Tracing", "UprobeMulti", "Xdp",
           "function_btf_id"]
