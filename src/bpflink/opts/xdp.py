"""``Xdp`` opts: the XDP link's flags (target: ifindex). Kernel >= 5.9.

>>> Xdp(flags=XdpFlags.SKB_MODE)
Xdp(flags=<XdpFlags.SKB_MODE: 2>)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..enums import AttachType, XdpFlags
from ._base import LinkOpts
from ._check import u32

_MODES = XdpFlags.SKB_MODE | XdpFlags.DRV_MODE | XdpFlags.HW_MODE


@dataclass(frozen=True)
class Xdp(LinkOpts):
    """XDP link flags: at most one of ``SKB_MODE``/``DRV_MODE``/``HW_MODE`` (0: the kernel picks)."""

    flags: XdpFlags | int = 0

    families: ClassVar[frozenset[str]] = frozenset({"xdp"})

    def __post_init__(self) -> None:
        flags = u32("flags", self.flags)
        if bin(flags & _MODES).count("1") > 1:
            raise ValueError("Xdp flags may hold at most one of SKB_MODE, DRV_MODE, HW_MODE")
        if flags & ~int(_MODES):
            raise ValueError(f"Xdp flags must be a mode bit (SKB_MODE/DRV_MODE/HW_MODE), got {flags:#x}")
        object.__setattr__(self, "_flags", flags)  # the validated value is the one filled

    def _fill(self, opts: Any, attach_type: AttachType, keep: list[Any]) -> None:
        opts.flags = self._flags  # type: ignore[attr-defined]
