"""``Tracing`` opts: the cookie of a fentry/fexit/fmod_ret/lsm/tp_btf link (target: none).

The attach point is fixed when the program is loaded (``attach_btf_id``, e.g. from
``bpflink.symbols.btf_id``); the link only adds ``tracing.cookie`` (kernel >= 5.19), read by the program with
``bpf_get_attach_cookie()``. tp_btf (``TRACE_RAW_TP``) links through ``link_create`` need kernel >= 6.10.

>>> Tracing(cookie=42)
Tracing(cookie=42)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..enums import AttachType
from ._base import LinkOpts
from ._check import u64


@dataclass(frozen=True)
class Tracing(LinkOpts):
    """``tracing.cookie``: a u64 the program gets from ``bpf_get_attach_cookie()``."""

    cookie: int = 0

    families: ClassVar[frozenset[str]] = frozenset({"tracing"})

    def __post_init__(self) -> None:
        # the validated value is the one filled: __index__ runs once (an object could answer differently twice)
        object.__setattr__(self, "_cookie", u64("cookie", self.cookie))

    def _fill(self, opts: Any, attach_type: AttachType, keep: list[Any]) -> None:
        opts.tracing.cookie = self._cookie  # type: ignore[attr-defined]
