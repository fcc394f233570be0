"""Typed, validated builders for ``struct bpf_link_create_opts``: one per attach family.

Each builder is a frozen, keyword-only dataclass; ``bpflink.link_create(prog, target, attach_type, opts)``
checks it belongs to the attach type, then fills exactly its own member of the opts union.
"""

# each family's module is imported on first use (PEP 562 __getattr__): link_create's first call needs only
# _base, and `import bpflink` stays cheap (bench/); `from bpflink.opts import Tcx`, `opts.Tcx` and dir() work
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; mypy and IDEs read the imports below
if TYPE_CHECKING:
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

_LAZY = {
    "Anchor": "_anchor", "LinkId": "_anchor", "ProgId": "_anchor", "BuiltOpts": "_base", "LinkOpts": "_base",
    "Freplace": "freplace", "function_btf_id": "freplace", "CgroupIterOrder": "iter", "Iter": "iter",
    "KprobeMulti": "kprobe_multi", "Cgroup": "mprog", "Netkit": "mprog", "Tcx": "mprog", "Netfilter": "netfilter",
    "PerfEvent": "perf_event", "Tracing": "tracing", "UprobeMulti": "uprobe_multi", "Xdp": "xdp",
}


def __getattr__(name: str) -> object:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = ["Anchor", "BuiltOpts", "Cgroup", "CgroupIterOrder", "Freplace", "Iter", "KprobeMulti", "LinkId",
           "LinkOpts", "Netfilter", "Netkit", "PerfEvent", "ProgId", "Tcx", "Tracing", "UprobeMulti", "Xdp",
           "function_btf_id"]
