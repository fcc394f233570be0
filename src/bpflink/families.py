"""Which family an attach type belongs to: decides the meaning of target, the opts builder, the hints."""

from __future__ import annotations

from .enums import AttachType

_EXACT = {
    AttachType.XDP: "xdp",
    AttachType.TCX_INGRESS: "tcx", AttachType.TCX_EGRESS: "tcx",
    AttachType.NETKIT_PRIMARY: "netkit", AttachType.NETKIT_PEER: "netkit",
    AttachType.NETFILTER: "netfilter",
    AttachType.TRACE_ITER: "iter",
    AttachType.PERF_EVENT: "perf_event",
    AttachType.TRACE_KPROBE_MULTI: "kprobe_multi", AttachType.TRACE_KPROBE_SESSION: "kprobe_multi",
    AttachType.TRACE_UPROBE_MULTI: "uprobe_multi", AttachType.TRACE_UPROBE_SESSION: "uprobe_multi",
    AttachType.SK_LOOKUP: "netns", AttachType.FLOW_DISSECTOR: "netns",
    AttachType.LSM_CGROUP: "cgroup",
    AttachType.STRUCT_OPS: "struct_ops",
    AttachType.TRACE_FENTRY: "tracing", AttachType.TRACE_FEXIT: "tracing", AttachType.MODIFY_RETURN: "tracing",
    AttachType.LSM_MAC: "tracing", AttachType.TRACE_RAW_TP: "tracing", AttachType.TRACE_FSESSION: "tracing",
    AttachType.SK_MSG_VERDICT: "sockmap", AttachType.SK_SKB_STREAM_PARSER: "sockmap",
    AttachType.SK_SKB_STREAM_VERDICT: "sockmap", AttachType.SK_SKB_VERDICT: "sockmap",
}


def family_of(attach_type: int) -> str:
    """The family name of an attach type: ``"cgroup"``, ``"tcx"``, ``"uprobe_multi"``, ... or ``"other"``.

    >>> family_of(AttachType.TCX_EGRESS)
    'tcx'
    """
    at = AttachType(attach_type)
    if at in _EXACT:
        return _EXACT[at]
    if at.name.startswith("CGROUP_"):
        return "cgroup"
    return "other"


__all__ = ["family_of"]
