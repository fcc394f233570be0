"""Typed, validated builders for ``struct bpf_link_create_opts``: one per attach family.

Each builder is a frozen, keyword-only dataclass; ``bpflink.link_create(prog, target, attach_type, opts)``
checks it belongs to the attach type, then fills exactly its own member of the opts union.
"""

from ._anchor import Anchor, LinkId, ProgId
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
