"""The netkit family: ``BPF_NETKIT_PRIMARY``/``BPF_NETKIT_PEER`` links on a netkit device (kernel >= 6.7).

>>> FAMILY.feature, FAMILY.min_kernel
('netkit', (6, 7))
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

from ..enums import AttachType
from ._family import Family, TargetKind
from ._mprog import MPROG_HINTS, Mprog


@dataclass(frozen=True)
class Netkit(Mprog):
    """``BPF_NETKIT_PRIMARY``/``BPF_NETKIT_PEER`` opts (target: ifindex of the primary device). Kernel >= 6.7."""

    families: ClassVar[frozenset[str]] = frozenset({"netkit"})
    member: ClassVar[str] = "netkit"


def _info_netkit(fd: int, info: Any, base: dict[str, Any], kinds: ModuleType) -> Any:
    NetkitLinkInfo, _at, _new = kinds.NetkitLinkInfo, kinds._at, kinds._new

    n = info.netkit
    base["ifindex"] = int(n.ifindex)
    base["attach_type"] = _at(n.attach_type)
    return _new(NetkitLinkInfo, base)


FAMILY = Family(
    name="netkit",
    attach_types=(AttachType.NETKIT_PRIMARY, AttachType.NETKIT_PEER),
    target=TargetKind.IFINDEX,
    feature="netkit",
    caps=("CAP_NET_ADMIN",),
    hints={
        **MPROG_HINTS,
        ("link_create", errno.ENXIO): "the device is not a netkit device",
        ("link_create", errno.EINVAL): "the kernel may lack netkit (CONFIG_NETKIT, Linux >= 6.7)",
    },
    info={"NETKIT": _info_netkit},
    link_types=("NETKIT",),
    opts=(Netkit,),
    mechanism="BPF_LINK_CREATE with a netkit device's ifindex: a netkit link (primary or peer side)",
    quirks=(
        "ENXIO when the device is not a netkit device",
    ),
)

__all__ = ["FAMILY", "Netkit"]
