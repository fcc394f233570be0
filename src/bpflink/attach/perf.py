"""Sampling perf events (hardware/software counters) with a ``PERF_EVENT`` program on every CPU, as one handle.

>>> # not run as a doctest: needs a loaded perf_event program `prog` and pid 4242
>>> link = perf_sample(prog, "cpu-clock", freq=99)  # on every online CPU  # doctest: +SKIP
>>> link = perf_sample(prog, "task-clock", period=1_000_000, pid=4242)  # one task, any CPU  # doctest: +SKIP
>>> len(link.perf_events)  # doctest: +SKIP
2
"""

from __future__ import annotations

import os
from typing import Any, Union

from .. import lowlevel as ll
from ..create import link_create
from ..enums import AttachType
from ..errors import NotSupportedError, check
from ..link import Link, OwningLink
from ..opts._check import S32_MAX, integer, u64
from ..perf import PerfEvent
from .legacy import LegacyLink, attach_ioctl, check_mode, refuse_cookie

#: event name -> (perf type, config), the names ``perf list`` uses
EVENTS: dict[str, tuple[int, int]] = {
    "cpu-clock": (ll.PERF_TYPE_SOFTWARE, ll.PERF_COUNT_SW_CPU_CLOCK),
    "task-clock": (ll.PERF_TYPE_SOFTWARE, ll.PERF_COUNT_SW_TASK_CLOCK),
    "page-faults": (ll.PERF_TYPE_SOFTWARE, ll.PERF_COUNT_SW_PAGE_FAULTS),
    "context-switches": (ll.PERF_TYPE_SOFTWARE, ll.PERF_COUNT_SW_CONTEXT_SWITCHES),
    "cpu-migrations": (ll.PERF_TYPE_SOFTWARE, ll.PERF_COUNT_SW_CPU_MIGRATIONS),
    "cycles": (ll.PERF_TYPE_HARDWARE, ll.PERF_COUNT_HW_CPU_CYCLES),
    "cpu-cycles": (ll.PERF_TYPE_HARDWARE, ll.PERF_COUNT_HW_CPU_CYCLES),
    "instructions": (ll.PERF_TYPE_HARDWARE, ll.PERF_COUNT_HW_INSTRUCTIONS),
    "cache-references": (ll.PERF_TYPE_HARDWARE, ll.PERF_COUNT_HW_CACHE_REFERENCES),
    "cache-misses": (ll.PERF_TYPE_HARDWARE, ll.PERF_COUNT_HW_CACHE_MISSES),
    "branches": (ll.PERF_TYPE_HARDWARE, ll.PERF_COUNT_HW_BRANCH_INSTRUCTIONS),
    "branch-misses": (ll.PERF_TYPE_HARDWARE, ll.PERF_COUNT_HW_BRANCH_MISSES),
    "ref-cycles": (ll.PERF_TYPE_HARDWARE, ll.PERF_COUNT_HW_REF_CPU_CYCLES),
}
_FREQ_BIT = 1 << 10  # perf_event_attr's flag bits (disabled, inherit, ..., freq) start right after read_format
_FLAGS_WORD = 5  # u64 index of that bit-field word: type+size, config, sample_period, sample_type, read_format

Event = Union[str, tuple[int, int]]


def online_cpus(path: str = "/sys/devices/system/cpu/online") -> list[int]:
    """The online CPU numbers (``"0-3,6"`` -> [0, 1, 2, 3, 6])."""
    with open(path) as f:
        text = f.read().strip()
    out: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return out


def open_sampling(event: Event, *, cpu: int, pid: int = -1, freq: int | None = None,
                  period: int | None = None) -> PerfEvent:
    """One sampling perf event (``event``: a name of ``EVENTS`` or ``(type, config)``)."""
    if isinstance(event, str):
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; known: {', '.join(sorted(EVENTS))} or (type, config)")
        ptype, config = EVENTS[event]
    elif isinstance(event, tuple) and len(event) == 2:
        ptype, config = integer("event type", event[0], 0, 0xFFFFFFFF), u64("event config", event[1])
    else:
        raise TypeError(f"event must be a name or a (type, config) tuple, not {event!r}")
    if (freq is None) == (period is None):
        raise ValueError("give exactly one of freq= (samples per second) or period= (events per sample)")
    attr = ll.ffi.new("struct perf_event_attr *")
    attr.type, attr.config = ptype, config
    attr.size = ll.ffi.sizeof("struct perf_event_attr")
    if freq is not None:
        attr.sample_freq = integer("freq", freq, 1, 1 << 31)
        ll.ffi.cast("__u64 *", attr)[_FLAGS_WORD] |= _FREQ_BIT
    else:
        attr.sample_period = u64("period", period)
        if not period:
            raise ValueError("period must be >= 1")
    fd = ll.bpflink_perf_event_open(attr, pid, cpu, -1, ll.PERF_FLAG_FD_CLOEXEC)
    name = event if isinstance(event, str) else f"{ptype}:{config:#x}"
    check(fd, f"perf_event_open({name}, cpu {cpu}, pid {pid})", family="perf_event",
          hint="no such counter here (hardware events need a PMU: VMs often lack one; try cpu-clock), "
               "or kernel.perf_event_paranoid forbids it")
    return PerfEvent(fd, kind="sampling", name=f"{name}@cpu{cpu}" if cpu >= 0 else f"{name}@pid{pid}")


def perf_sample(prog: Any, event: Event = "cpu-clock", *, freq: int | None = None, period: int | None = None,
                pid: int = -1, cpus: list[int] | None = None, cookie: int = 0, mode: str = "auto") -> Link:
    """Run PERF_EVENT program ``prog`` on sampling ``event`` on every online CPU (``cpus``: those), or, with
    ``pid``, for that task on any CPU. One ``Link`` handle: it owns the per-CPU links and perf events
    (``link.perf_events``) and closing it closes them all.

    ``mode``: ``"link"`` perf_event links (5.15+), ``"legacy"`` the perf event ioctl (a ``LegacyLink``, no
    cookie), ``"auto"`` the links where the kernel has them.
    """
    pid = integer("pid", pid, -1, S32_MAX)
    if pid == 0:
        raise ValueError("pid must be -1 (every task) or a process id")
    check_mode(mode)
    if mode == "legacy":
        refuse_cookie(cookie, f"sampling {event}")
    where = [-1] if pid > 0 and cpus is None else (online_cpus() if cpus is None else list(cpus))
    from .. import opts as _opts

    legacy = mode == "legacy"
    owned: list[Any] = []
    try:
        links: list[Link] = []
        for cpu in where:
            ev = open_sampling(event, cpu=cpu, pid=pid, freq=freq, period=period)
            owned.append(ev)
            if not legacy:
                try:
                    links.append(link_create(prog, ev, AttachType.PERF_EVENT,
                                             _opts.PerfEvent(cookie=cookie) if cookie else None))
                    owned.append(links[-1])
                    continue
                except NotSupportedError:
                    if mode == "link" or links:
                        raise
                    legacy = True
                    refuse_cookie(cookie, f"sampling {event} (this kernel has no perf_event links)")
            owned.pop()
            owned.append(attach_ioctl(prog, ev))  # closes ev if it fails
    except BaseException:
        for r in reversed(owned):
            r.close()
        raise
    if legacy:
        return LegacyLink(os.dup(owned[0].fileno()), kind="perf_event_ioctl",
                          events=[e for h in owned for e in h.events], owned=tuple(owned))
    first = links[0]
    rest = tuple(r for r in owned if r is not first)
    return OwningLink(first.detach_fd(), attach_type=AttachType.PERF_EVENT, owned=rest)


__all__ = ["EVENTS", "online_cpus", "open_sampling", "perf_sample"]
