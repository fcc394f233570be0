"""The perf_event family: a program on a perf event (target: the perf event fd). Kernel >= 5.15.

``PerfEvent`` opts carry the link's cookie.

The program reads the cookie with ``bpf_get_attach_cookie()``; ``bpflink.perf`` opens the perf events.

>>> PerfEvent(cookie=0xC00C1E)
PerfEvent(cookie=12586014)
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

from ..enums import AttachType
from ._base import CookieOpts
from ._family import Family, TargetKind


@dataclass(frozen=True)
class PerfEvent(CookieOpts):
    """``perf_event.bpf_cookie``: a u64 the program gets from ``bpf_get_attach_cookie()``."""

    families: ClassVar[frozenset[str]] = frozenset({"perf_event"})
    member: ClassVar[str] = "perf_event"
    cookie_field: ClassVar[str] = "bpf_cookie"


# which perf_event member holds the name pointer, per event type (PerfEventType name)
_PERF_NAME = {
    "UPROBE": ("uprobe", "file_name"), "URETPROBE": ("uprobe", "file_name"),
    "KPROBE": ("kprobe", "func_name"), "KRETPROBE": ("kprobe", "func_name"), "TRACEPOINT": ("tracepoint", "tp_name"),
}


def _info_perf_event(fd: int, info: Any, base: dict[str, Any], kinds: ModuleType) -> Any:
    ptypes, cls = kinds.PerfEventType, kinds.PerfEventLinkInfo
    ffi, member, name_buffer, refill = kinds._ffi, kinds._member, kinds._name_buffer, kinds._refill
    string = kinds._string

    pe = info.perf_event
    try:
        ptype = ptypes(int(pe.type))
    except ValueError:
        ptype = ptypes.UNSPEC
    if int(pe.type) == 0:  # the kernel (< 6.6) has no fill_link_info for perf_event links
        return cls(**base, perf_type=ptype, name=None, offset=None, addr=None, missed=None,
                                 cookie=None, ref_ctr_offset=None, config=None, event_type=None)
    name = ""
    if ptype.name in _PERF_NAME:
        union_member, field = _PERF_NAME[ptype.name]  # not `member`: that is the header-probing helper below

        def fill(i: Any) -> list[Any]:
            buf = name_buffer(int(getattr(pe, union_member).name_len))
            part = getattr(i.perf_event, union_member)
            setattr(part, field, int(ffi.cast("uintptr_t", buf)))
            part.name_len = len(buf)
            return [buf]

        info, (buf,) = refill(fd, info, fill)
        pe, name = info.perf_event, string(buf)
    fields: dict[str, Any] = dict(offset=0, addr=0, missed=0, cookie=0, ref_ctr_offset=0, config=0, event_type=0)
    if ptype in (ptypes.UPROBE, ptypes.URETPROBE):
        fields.update(offset=int(pe.uprobe.offset), cookie=int(pe.uprobe.cookie),
                      ref_ctr_offset=member(pe, "uprobe.ref_ctr_offset"))
    elif ptype in (ptypes.KPROBE, ptypes.KRETPROBE):
        fields.update(offset=int(pe.kprobe.offset), addr=int(pe.kprobe.addr), missed=int(pe.kprobe.missed),
                      cookie=int(pe.kprobe.cookie))
    elif ptype == ptypes.TRACEPOINT:
        fields.update(cookie=int(pe.tracepoint.cookie))
    elif ptype == ptypes.EVENT:
        fields.update(config=int(pe.event.config), event_type=int(pe.event.type), cookie=int(pe.event.cookie))
    return cls(**base, perf_type=ptype, name=name, **fields)


FAMILY = Family(
    name="perf_event",
    attach_types=(AttachType.PERF_EVENT,),
    target=TargetKind.PERF_EVENT,
    feature="perf_event",
    caps=("CAP_PERFMON",),
    hints={
        ("link_create", errno.EINVAL): "target must be a perf event fd (tracepoint, kprobe, uprobe) and the "
                                       "program type must match it",
        ("link_create", errno.EBADF): "target must be a perf event fd (from perf_event_open: tracepoint, kprobe, "
                                      "uprobe)",
    },
    info={"PERF_EVENT": _info_perf_event},
    link_types=("PERF_EVENT",),
    opts=(PerfEvent,),
    mechanism="BPF_LINK_CREATE on a perf event fd (tracepoint, kprobe, uprobe from perf_event_open): a perf_event "
              "link; before 5.15 PERF_EVENT_IOC_SET_BPF on the perf fd (no link)",
    quirks=(
        "detaching waits for an RCU tasks-trace grace period (~40 ms here)",
        "a kretprobe on a missing symbol answers EINVAL on old kernels (ENOENT on newer ones)",
        "link info names the event (tracepoint, kprobe, uprobe) only from 6.6",
        "lockdown 'confidentiality' forbids reading kernel memory from BPF (bpf_probe_read_kernel)",
    ),
)

__all__ = ["FAMILY", "PerfEvent"]
