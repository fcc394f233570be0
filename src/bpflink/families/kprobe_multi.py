"""The kprobe_multi family: many kernel functions in one link (target: none). Kernel >= 5.18 with CONFIG_FPROBE.

Either ``syms`` (function names) or ``addrs`` (kernel addresses, e.g. from ``bpflink.symbols.kallsyms_address``),
never both; optional ``cookies`` (one per probe, read by ``bpf_get_attach_cookie()``); ``retprobe=True`` runs the
program at function return. Nobody needs to sort: the kernel sorts and keeps cookies paired.

Session (``AttachType.TRACE_KPROBE_SESSION``, kernel >= 6.10): one program runs at entry and, if it returned 0
there, at return too (``bpf_session_is_return()`` tells which). The builder serves both attach types; the
attach type picks the mode, and ``session=True``/``False`` asserts it (``TypeError`` naming both on mismatch).
``retprobe`` is meaningless for a session and refused.

>>> KprobeMulti(syms=["do_nanosleep", "hrtimer_nanosleep"], cookies=[1, 2])
KprobeMulti(syms=('do_nanosleep', 'hrtimer_nanosleep'), cookies=[1, 2])
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from types import ModuleType
from typing import Any, ClassVar

from .. import lowlevel as ll
from ..enums import AttachType, ProgType
from ._arrays import IntArray, check_same_count, count, strings, to_u64_bytes, to_uint_bytes, u64_view, ulong_view
from ._base import LinkOpts
from ._family import Family, Recipe, TargetKind, TrialTargets
from ._session import array_repr, check_flags, fill_common, mode_repr_parts

_ULONG = ll.ffi.sizeof("unsigned long")
_KSYM_NAME_LEN = 512  # the kernel copies names with this cap


@dataclass(frozen=True)
class KprobeMulti(LinkOpts):
    """``kprobe_multi``: ``syms`` xor ``addrs`` (1..2**20 probes), ``cookies`` (as many), ``retprobe``, ``session``.

    Arrays may be any int sequence or buffer; they are copied when the builder is made and read back as
    read-only memoryviews.
    """

    syms: Sequence[str] | None = None
    addrs: IntArray | None = field(default=None, hash=False)
    cookies: IntArray | None = field(default=None, hash=False)
    retprobe: bool = False
    session: bool | None = None
    # the validated values _fill writes
    _names: tuple[bytes, ...] = field(default=(), init=False, repr=False, compare=False)
    _cnt: int = field(default=0, init=False, repr=False, compare=False)

    families: ClassVar[frozenset[str]] = frozenset({"kprobe_multi"})

    def __post_init__(self) -> None:
        if (self.syms is None) == (self.addrs is None):
            raise ValueError("KprobeMulti needs exactly one of syms= (names) or addrs= (addresses)")
        if self.syms is not None:
            names = strings("syms", self.syms, max_len=_KSYM_NAME_LEN)
            cnt = len(names)
            object.__setattr__(self, "syms", tuple(n.decode("utf-8", "surrogateescape") for n in names))
            object.__setattr__(self, "_names", names)
        else:
            raw = to_uint_bytes("addrs", self.addrs, _ULONG)
            cnt = count("addrs", raw, _ULONG)
            object.__setattr__(self, "addrs", ulong_view(raw))
        cookies = None if self.cookies is None else to_u64_bytes("cookies", self.cookies)
        check_same_count(cnt, cookies=None if cookies is None else len(cookies) // 8)
        if cookies is not None:
            object.__setattr__(self, "cookies", u64_view(cookies))
        check_flags(self)
        object.__setattr__(self, "_cnt", cnt)

    def __repr__(self) -> str:
        parts = [f"syms={self.syms!r}" if self.syms is not None else f"addrs={array_repr(self.addrs, hexa=True)}"]
        if self.cookies is not None:
            parts.append(f"cookies={array_repr(self.cookies)}")
        parts += mode_repr_parts(self)
        return f"KprobeMulti({', '.join(parts)})"

    def _fill(self, opts: Any, attach_type: AttachType, keep: list[Any]) -> None:
        km = opts.kprobe_multi
        fill_common(self, km, attach_type, "TRACE_KPROBE_MULTI", "TRACE_KPROBE_SESSION", ll.BPF_F_KPROBE_MULTI_RETURN,
                    keep)
        if self.syms is not None:
            names = self._names
            blob = ll.ffi.from_buffer(b"\0".join(names) + b"\0")  # one buffer for every name
            base = int(ll.ffi.cast("uintptr_t", blob))
            starts = accumulate(map((1).__add__, map(len, names[:-1])), initial=base)  # C-level, no lambda
            ptrs = ll.ffi.new("uintptr_t[]", list(starts))
            km.syms = ll.ffi.cast("const char **", ptrs)
            keep += (blob, ptrs)
        else:
            addrs = ll.ffi.from_buffer("unsigned long[]", self.addrs)
            km.addrs = addrs
            keep.append(addrs)


def _info_kprobe_multi(fd: int, info: Any, base: dict[str, Any], kinds: ModuleType) -> Any:
    KprobeMultiLinkInfo, _ffi, _refill = kinds.KprobeMultiLinkInfo, kinds._ffi, kinds._refill

    km = info.kprobe_multi
    count = int(km.count)
    addrs = cookies = None
    if count:
        def fill(i: Any) -> list[Any]:
            a, c = _ffi.new("__u64[]", count), _ffi.new("__u64[]", count)
            i.kprobe_multi.addrs = int(_ffi.cast("uintptr_t", a))
            i.kprobe_multi.cookies = int(_ffi.cast("uintptr_t", c))
            i.kprobe_multi.count = count
            return [a, c]

        info, (addrs, cookies) = _refill(fd, info, fill)
        km = info.kprobe_multi
    n = min(count, int(km.count))
    # copied out now (the link may be closed right after), each tuple made on first access
    arrays = kinds._Buffers({"addrs": addrs, "cookies": cookies}, n)
    return kinds._lazy(KprobeMultiLinkInfo, {**base, "count": int(km.count), "flags": int(km.flags),
                                             "missed": int(km.missed)}, arrays)


_PROBE_FUNC = b"vprintk"  # exported and traceable on every kernel with kprobe_multi


def _probe_target(trial: TrialTargets, keep: list[Any]) -> tuple[int, Any]:
    opts = ll.new_link_create_opts()
    name = ll.ffi.new("char[]", _PROBE_FUNC)
    syms = ll.ffi.new("const char *[]", [name])
    keep += [name, syms]
    opts.kprobe_multi.syms, opts.kprobe_multi.cnt = syms, 1
    return 0, opts


def _probe(at: AttachType) -> Recipe | None:
    """On ``vprintk`` for the moment between link create and close."""
    return Recipe(ProgType.KPROBE, _probe_target)


FAMILY = Family(
    name="kprobe_multi",
    attach_types=(AttachType.TRACE_KPROBE_MULTI, AttachType.TRACE_KPROBE_SESSION),
    target=TargetKind.NONE,
    probe=_probe,
    feature="kprobe_multi",
    caps=("CAP_PERFMON",),
    hints={
        ("link_create", errno.EOPNOTSUPP): "kernel lacks CONFIG_FPROBE (kprobe_multi needs Linux >= 5.18 with "
                                           "fprobe)",
        ("link_create", errno.ESRCH): "a symbol is unknown or not traceable (see available_filter_functions)",
    },
    info={"KPROBE_MULTI": _info_kprobe_multi},
    link_types=("KPROBE_MULTI",),
    aliases={"kprobe_session": "TRACE_KPROBE_SESSION"},
    opts=(KprobeMulti,),
    mechanism="BPF_LINK_CREATE with symbols or addresses: one kprobe_multi link over fprobe",
    quirks=(
        "needs CONFIG_FPROBE; an unknown or untraceable symbol answers ESRCH (see available_filter_functions)",
        "lockdown 'confidentiality' forbids reading kernel memory from BPF (bpf_probe_read_kernel)",
    ),
)

__all__ = ["FAMILY", "KprobeMulti"]
