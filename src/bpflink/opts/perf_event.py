"""``PerfEvent`` opts: the cookie of a ``BPF_PERF_EVENT`` link (target: a perf event fd). Kernel >= 5.15.

The program reads the cookie with ``bpf_get_attach_cookie()``; ``bpflink.perf`` opens the perf events.

>>> PerfEvent(cookie=0xC00C1E)
PerfEvent(cookie=12586014)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..enums import AttachType
from ._base import LinkOpts
from ._check import u64


@dataclass(frozen=True)
class PerfEvent(LinkOpts):
    """``perf_event.bpf_cookie``: a u64 the program gets from ``bpf_get_attach_cookie()``."""

    cookie: int = 0

    families: ClassVar[frozenset[str]] = frozenset({"perf_event"})

    def __post_init__(self) -> None:
        # the validated value is the one filled: __index__ runs once (an object could answer differently twice)
        object.__setattr__(self, "_cookie", u64("cookie", self.cookie))

    def _fill(self, opts: Any, attach_type: AttachType, keep: list[Any]) -> None:
        opts.perf_event.bpf_cookie = self._cookie  # type: ignore[attr-defined]
