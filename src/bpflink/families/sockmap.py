"""The sockmap family: SK_MSG/SK_SKB programs on a sockmap or sockhash (target: the map). Kernel >= 6.10.

>>> FAMILY.target
<TargetKind.MAP: 'map'>
"""

from __future__ import annotations

import errno
from types import ModuleType
from typing import Any

from ..enums import AttachType
from ._family import Family, TargetKind


def _info_sockmap(fd: int, info: Any, base: dict[str, Any], kinds: ModuleType) -> Any:
    LinkInfo, SockmapLinkInfo, _at, _new = kinds.LinkInfo, kinds.SockmapLinkInfo, kinds._at, kinds._new
    if not hasattr(info, "sockmap"):  # headers without it: the plain LinkInfo
        return _new(LinkInfo, base)
    sm = info.sockmap
    base["map_id"] = int(sm.map_id)
    base["attach_type"] = _at(sm.attach_type)
    return _new(SockmapLinkInfo, base)


FAMILY = Family(
    name="sockmap",
    attach_types=(AttachType.SK_MSG_VERDICT, AttachType.SK_SKB_STREAM_PARSER, AttachType.SK_SKB_STREAM_VERDICT,
                  AttachType.SK_SKB_VERDICT),
    target=TargetKind.MAP,
    feature="sockmap",
    caps=("CAP_NET_ADMIN",),
    hints={
        ("link_create", errno.EINVAL): "target must be a sockmap or sockhash map (fd or Map) and the program an "
                                       "SK_MSG/SK_SKB program whose expected_attach_type matches",
        ("link_create", errno.EBUSY): "the map already has a program in this slot, or a verdict and a stream "
                                      "verdict program would both be attached (the kernel allows one of the two)",
    },
    info={"SOCKMAP": _info_sockmap},
    link_types=("SOCKMAP",),
    mechanism="BPF_LINK_CREATE on a sockmap/sockhash map fd: a sockmap link",
    quirks=(
        "a verdict and a stream verdict program cannot both be attached to one map (EBUSY)",
    ),
)

__all__ = ["FAMILY"]
