"""Typed, validated builders for ``struct bpf_link_create_opts``: one per attach family.

Each builder is a frozen, keyword-only dataclass; ``bpflink.link_create(prog, target, attach_type, opts)``
checks it belongs to the attach type, then fills exactly its own member of the opts union.
"""

from ._anchor import Anchor, LinkId, ProgId
from ._base import BuiltOpts, LinkOpts
from .iter import CgroupIterOrder, Iter
from .mprog import Cgroup, Netkit, Tcx
from .netfilter import Netfilter
from .xdp import Xdp

__all__ = ["Anchor", "BuiltOpts", "Cgroup", "CgroupIterOrder", "Iter", "LinkId", "LinkOpts", "Netfilter", "Netkit",
           "ProgId", "Tcx", "Xdp"]
