"""The perf_event family: a program on a perf event (target: the perf event fd). Kernel >= 5.15.

``PerfEvent`` opts carry the link's cookie.

The program reads the cookie with ``bpf_get_attach_cookie()``; ``bpflink.perf`` opens the perf events.

>>> PerfEvent(cookie=0xC00C1E)
PerfEvent(cookie=12586014)
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .._limits import u64
from ..enums import AttachType
from ._base import LinkOpts
from ._family import Family, TargetKind


@dataclass(frozen=True)
class PerfEvent(LinkOpts):
    """``perf_event.bpf_cookie``: a u64 the program gets from ``bpf_get_attach_cookie()``."""

    cookie: int = 0
    _cookie: int = field(default=0, init=False, repr=False, compare=False)

    families: ClassVar[frozenset[str]] = frozenset({"perf_event"})

    def __post_init__(self) -> None:
        # the validated value is the one filled: __index__ runs once (an object could answer differently twice)
        object.__setattr__(self, "_cookie", u64("cookie", self.cookie))

    def _fill(self, opts: Any, attach_type: AttachType, keep: list[Any]) -> None:
        opts.perf_event.bpf_cookie = self._cookie


FAMILY = Family(
    name="perf_event",
    attach_types=(AttachType.PERF_EVENT,),
    target=TargetKind.PERF_EVENT,
    feature="perf_event", min_kernel=(5, 15),
    caps=("CAP_PERFMON",),
    hints={
        ("link_create", errno.EINVAL): "target must be a perf event fd (tracepoint, kprobe, uprobe) and the "
                                       "program type must match it",
        ("link_create", errno.EBADF): "target must be a perf event fd (from perf_event_open: tracepoint, kprobe, "
                                      "uprobe)",
    },
    link_types=("PERF_EVENT",),
    opts=(PerfEvent,),
)

__all__ = ["FAMILY", "PerfEvent"]
