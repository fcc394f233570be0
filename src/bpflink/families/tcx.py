"""The tcx family: ``BPF_TCX_INGRESS``/``BPF_TCX_EGRESS`` links on a network device (kernel >= 6.6).

>>> FAMILY.target
<TargetKind.IFINDEX: 'ifindex'>
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

from ..enums import AttachType, ProgType
from ._family import Family, Recipe, TargetKind
from ._mprog import MPROG_HINTS, Mprog


@dataclass(frozen=True)
class Tcx(Mprog):
    """``BPF_TCX_INGRESS``/``BPF_TCX_EGRESS`` opts (target: ifindex). Kernel >= 6.6.

    >>> # not run as a doctest: needs a tcx link `link_a`
    >>> Tcx(after=link_a)  # doctest: +SKIP
    """

    families: ClassVar[frozenset[str]] = frozenset({"tcx"})
    member: ClassVar[str] = "tcx"


def _info_tcx(fd: int, info: Any, base: dict[str, Any], kinds: ModuleType) -> Any:
    TcxLinkInfo, _at, _new = kinds.TcxLinkInfo, kinds._at, kinds._new

    t = info.tcx
    base["ifindex"] = int(t.ifindex)
    base["attach_type"] = _at(t.attach_type)
    return _new(TcxLinkInfo, base)


_MISSING_IFINDEX = -1  # the int target_fd libbpf passes on as ifindex 0xffffffff


def probe_missing_ifindex(at: AttachType) -> Recipe:
    """On ifindex 0xffffffff: ENODEV proves the kernel knows the attach type (tcx and netkit)."""
    return Recipe(ProgType.SCHED_CLS, lambda trial, keep: (_MISSING_IFINDEX, None), proof_errno=errno.ENODEV)


_probe = probe_missing_ifindex


FAMILY = Family(
    name="tcx",
    attach_types=(AttachType.TCX_INGRESS, AttachType.TCX_EGRESS),
    target=TargetKind.IFINDEX,
    probe=_probe,
    feature="tcx",
    caps=("CAP_NET_ADMIN",),
    hints={
        **MPROG_HINTS,
        ("link_create", errno.EINVAL): "the kernel may lack tcx (Linux >= 6.6), or the anchor/flags are "
                                       "inconsistent",
        ("link_create", errno.ENODEV): "no network device with that ifindex in the caller's network namespace",
    },
    info={"TCX": _info_tcx},
    link_types=("TCX",),
    opts=(Tcx,),
    mechanism="BPF_LINK_CREATE with the ifindex: a tcx link in the device's ingress/egress chain (tc's BPF entry "
              "point, no qdisc needed)",
    quirks=(
        "create ~16 ms and close ~8 ms: the kernel waits for RCU grace periods",
        "BPF_PROG_QUERY knows revision and link ids from 6.6 (EINVAL when passed before)",
    ),
)

__all__ = ["FAMILY", "Tcx"]
