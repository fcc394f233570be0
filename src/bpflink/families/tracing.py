"""The tracing family: fentry/fexit/fmod_ret/fsession/lsm/tp_btf links (target: none).

The attach point is fixed when the program is loaded (``attach_btf_id``, e.g. from
``bpflink.symbols.btf_id``); the link only adds ``tracing.cookie`` (kernel >= 5.19), read by the program with
``bpf_get_attach_cookie()``. tp_btf (``TRACE_RAW_TP``) links through ``link_create`` need kernel >= 6.10.

>>> Tracing(cookie=42)
Tracing(cookie=42)
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

from ..enums import AttachType
from ._base import CookieOpts
from ._family import Family, TargetKind


@dataclass(frozen=True)
class Tracing(CookieOpts):
    """``tracing.cookie``: a u64 the program gets from ``bpf_get_attach_cookie()``."""

    families: ClassVar[frozenset[str]] = frozenset({"tracing"})
    member: ClassVar[str] = "tracing"


def _info_raw_tracepoint(fd: int, info: Any, base: dict[str, Any], kinds: ModuleType) -> Any:
    RawTracepointLinkInfo, _member, _refill_name = kinds.RawTracepointLinkInfo, kinds._member, kinds._refill_name

    full, name = _refill_name(fd, info, "raw_tracepoint", "tp_name", "tp_name_len")
    return RawTracepointLinkInfo(**base, tp_name=name, cookie=_member(full, "raw_tracepoint.cookie"))

def _info_tracing(fd: int, info: Any, base: dict[str, Any], kinds: ModuleType) -> Any:
    TracingLinkInfo, _at, _member, _new = kinds.TracingLinkInfo, kinds._at, kinds._member, kinds._new

    tr = info.tracing
    base.update(attach_type=_at(tr.attach_type), target_obj_id=int(tr.target_obj_id),
                target_btf_id=int(tr.target_btf_id), cookie=_member(info, "tracing.cookie"))
    return _new(TracingLinkInfo, base)


FAMILY = Family(
    name="tracing",
    attach_types=(AttachType.TRACE_FENTRY, AttachType.TRACE_FEXIT, AttachType.MODIFY_RETURN, AttachType.LSM_MAC,
                  AttachType.TRACE_RAW_TP, AttachType.TRACE_FSESSION),
    target=TargetKind.NONE,
    feature="tracing",
    caps=("CAP_PERFMON",),
    hints={
        ("link_create", errno.EINVAL): "the program's attach target is fixed at load (attach_btf_id); "
                                       "load it with the right expected_attach_type",
    },
    # tp_btf links are raw tracepoint links to the kernel
    link_types=("TRACING", "RAW_TRACEPOINT"),
    info={"RAW_TRACEPOINT": _info_raw_tracepoint, "TRACING": _info_tracing},
    # the names libbpf's SEC() prefixes give the tracing attach types
    aliases={"fentry": "TRACE_FENTRY", "fexit": "TRACE_FEXIT", "fmod_ret": "MODIFY_RETURN", "lsm": "LSM_MAC",
             "tp_btf": "TRACE_RAW_TP", "fsession": "TRACE_FSESSION"},
    opts=(Tracing,),
    mechanism="BPF_LINK_CREATE (BPF_RAW_TRACEPOINT_OPEN on older kernels) for a program whose target was fixed at "
              "load (attach_btf_id): a tracing link",
    quirks=(
        "fentry/fexit/lsm loads are refused under lockdown (EPERM)",
        "the target is fixed when the program is loaded, not when the link is made",
        "lockdown 'confidentiality' forbids reading kernel memory from BPF (bpf_probe_read_kernel)",
    ),
)

__all__ = ["FAMILY", "Tracing"]
