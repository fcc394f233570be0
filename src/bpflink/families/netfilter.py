"""The netfilter family: a ``BPF_PROG_TYPE_NETFILTER`` program on a netfilter hook (target: none). Kernel >= 6.4.

The kernel (``net/netfilter/nf_bpf_link.c``) answers bad values with errnos that are hard to read
(``EAFNOSUPPORT``, ``EPROTO``, ``ERANGE``), so every rule is checked here first. ``defrag`` travels in
``netfilter.flags`` (``BPF_F_NETFILTER_IP_DEFRAG``, kernel >= 6.6); ``link_create_opts.flags`` stays 0 because
the kernel refuses any flag there.

>>> Netfilter(NfProto.IPV4, NfInetHook.LOCAL_IN, priority=-128)
Netfilter(pf=<NfProto.IPV4: 2>, hooknum=<NfInetHook.LOCAL_IN: 1>, priority=-128, defrag=False)
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar

from .._limits import S32_MAX, S32_MIN, integer
from .._native import constant, has
from ..enums import AttachType, NfInetHook, NfProto
from ..errors import NotSupportedError
from ._base import LinkOpts
from ._family import Family, TargetKind

_DEFRAG_PRIORITY_MIN = -400
_DEFRAG_FLAG: int | None = constant("BPF_F_NETFILTER_IP_DEFRAG") if has("BPF_F_NETFILTER_IP_DEFRAG") else None


@dataclass(frozen=True)
class Netfilter(LinkOpts):
    """Netfilter hook: ``pf`` (IPv4/IPv6), ``hooknum`` (``NfInetHook``), ``priority`` (s32, not INT_MIN/MAX).

    ``defrag=True`` asks the kernel to reassemble IP fragments before the program runs; it needs
    ``priority > -400`` and headers that define ``BPF_F_NETFILTER_IP_DEFRAG``.
    """

    pf: NfProto | int
    hooknum: NfInetHook | int
    priority: int
    defrag: bool = False
    _values: tuple[int, int, int] = field(default=(0, 0, 0), init=False, repr=False, compare=False)

    families: ClassVar[frozenset[str]] = frozenset({"netfilter"})

    def __post_init__(self) -> None:
        pf = integer("pf", self.pf, 0, 255)
        if pf not in (NfProto.IPV4, NfProto.IPV6):
            raise ValueError(f"pf must be NfProto.IPV4 ({int(NfProto.IPV4)}) or NfProto.IPV6 "
                             f"({int(NfProto.IPV6)}), got {pf}")
        hook = integer("hooknum", self.hooknum, 0, 255)
        if hook not in set(NfInetHook):
            raise ValueError(f"hooknum must be an NfInetHook (0..{len(NfInetHook) - 1}), got {hook}")
        # INT_MIN and INT_MAX are reserved by netfilter for hooks that must run first/last
        prio = integer("priority", self.priority, S32_MIN + 1, S32_MAX - 1)
        if not isinstance(self.defrag, bool):
            raise TypeError(f"defrag must be a bool, not {type(self.defrag).__name__}")
        if self.defrag:
            if _DEFRAG_FLAG is None:
                raise NotSupportedError("netfilter defrag", "the libbpf headers bpflink was compiled against do "
                                        "not define BPF_F_NETFILTER_IP_DEFRAG", min_kernel="6.6")
            if prio <= _DEFRAG_PRIORITY_MIN:
                raise ValueError(f"defrag needs priority > {_DEFRAG_PRIORITY_MIN} (after the defragmenter), "
                                 f"got {prio}")
        object.__setattr__(self, "_values", (pf, hook, prio))  # the validated values are the ones filled

    def _fill(self, opts: Any, attach_type: AttachType, keep: list[Any]) -> None:
        nf = opts.netfilter
        nf.pf, nf.hooknum, nf.priority = self._values
        nf.flags = _DEFRAG_FLAG if self.defrag and _DEFRAG_FLAG is not None else 0


def _info_netfilter(fd: int, info: Any, base: dict[str, Any], kinds: ModuleType) -> Any:
    NetfilterLinkInfo, _new = kinds.NetfilterLinkInfo, kinds._new

    nf = info.netfilter
    base.update(pf=int(nf.pf), hooknum=int(nf.hooknum), priority=int(nf.priority), flags=int(nf.flags))
    return _new(NetfilterLinkInfo, base)


FAMILY = Family(
    name="netfilter",
    attach_types=(AttachType.NETFILTER,),
    target=TargetKind.NONE,
    feature="netfilter",
    caps=("CAP_NET_ADMIN",),
    hints={
        ("link_create", errno.EAFNOSUPPORT): "pf must be NFPROTO_IPV4 or NFPROTO_IPV6",
        ("link_create", errno.EPROTO): "hooknum must be one of NF_INET_* (< 5)",
        ("link_create", errno.ERANGE): "priority must not be INT_MIN or INT_MAX (or > -400 with defrag)",
    },
    info={"NETFILTER": _info_netfilter},
    link_types=("NETFILTER",),
    opts=(Netfilter,),
    mechanism="BPF_LINK_CREATE with pf/hooknum/priority: a netfilter hook link",
    quirks=(
        "priority must not be INT_MIN or INT_MAX (ERANGE); pf only NFPROTO_IPV4/IPV6",
    ),
)

__all__ = ["FAMILY", "Netfilter"]
