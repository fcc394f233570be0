"""The xdp family: one XDP link per network device (target: ifindex or device name). Kernel >= 5.9.

>>> Xdp(flags=XdpFlags.SKB_MODE)
Xdp(flags=<XdpFlags.SKB_MODE: 2>)
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar

from .._limits import u32
from ..enums import AttachType, XdpFlags
from ._base import LinkOpts
from ._family import Family, TargetKind

_MODES = XdpFlags.SKB_MODE | XdpFlags.DRV_MODE | XdpFlags.HW_MODE


@dataclass(frozen=True)
class Xdp(LinkOpts):
    """XDP link flags: at most one of ``SKB_MODE``/``DRV_MODE``/``HW_MODE`` (0: the kernel picks)."""

    flags: XdpFlags | int = 0
    _flags: int = field(default=0, init=False, repr=False, compare=False)

    families: ClassVar[frozenset[str]] = frozenset({"xdp"})

    def __post_init__(self) -> None:
        flags = u32("flags", self.flags)
        if bin(flags & _MODES).count("1") > 1:
            raise ValueError("Xdp flags may hold at most one of SKB_MODE, DRV_MODE, HW_MODE")
        if flags & ~int(_MODES):
            raise ValueError(f"Xdp flags must be a mode bit (SKB_MODE/DRV_MODE/HW_MODE), got {flags:#x}")
        object.__setattr__(self, "_flags", flags)  # the validated value is the one filled

    def _fill(self, opts: Any, attach_type: AttachType, keep: list[Any]) -> None:
        opts.flags = self._flags


def _info_xdp(fd: int, info: Any, base: dict[str, Any], kinds: ModuleType) -> Any:
    XdpLinkInfo, _new = kinds.XdpLinkInfo, kinds._new

    base["ifindex"] = int(info.xdp.ifindex)
    return _new(XdpLinkInfo, base)


FAMILY = Family(
    name="xdp",
    attach_types=(AttachType.XDP,),
    target=TargetKind.IFINDEX,
    feature="xdp",
    caps=("CAP_NET_ADMIN",),
    hints={
        ("link_create", errno.EBUSY): "the device already has an XDP program; detach it or use another device",
        ("link_create", errno.EINVAL): "no device with that ifindex in this network namespace, a program that is "
                                       "not XDP, or bad flags",
    },
    info={"XDP": _info_xdp},
    link_types=("XDP",),
    opts=(Xdp,),
    mechanism="BPF_LINK_CREATE with the ifindex: an xdp link (one per device; native mode when the driver supports "
              "it, else generic)",
    quirks=(
        "create ~16 ms, close ~8 ms (RCU in the XDP dispatcher)",
        "EBUSY when the device already runs an XDP program",
    ),
)

__all__ = ["FAMILY", "Xdp"]
