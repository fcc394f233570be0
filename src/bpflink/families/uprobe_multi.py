"""The uprobe_multi family: many user-space probes in one ELF file, one link (target: none). Kernel >= 6.6.

``offsets`` are *file* offsets; or give ``symbols`` (function names) and they are resolved from the file's
``.symtab``/``.dynsym`` when the builder is made (``bpflink.symbols``; executables, PIE and shared libraries).
Optional ``ref_ctr_offsets`` (USDT semaphores) and ``cookies``, one per probe; ``pid`` limits the probes to one
process (None: every process); ``retprobe=True`` runs the program at function return.

Session (``AttachType.TRACE_UPROBE_SESSION``, kernel >= 6.13): one program runs at entry and, if it returned 0
there, at return too (``bpf_session_is_return()`` tells which). The builder serves both attach types; the
attach type picks the mode, and ``session=True``/``False`` asserts it (``TypeError`` naming both on mismatch).

>>> # not run as a doctest: the offsets shown differ per build of python3
>>> UprobeMulti("/usr/bin/python3", symbols=["main"], cookies=[7])  # doctest: +SKIP
UprobeMulti('/usr/bin/python3', offsets=[0x5f2a0], symbols=('main',), cookies=[7])
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar, Union

from .. import lowlevel as ll
from .._limits import S32_MAX, integer
from ..enums import AttachType, ProgType
from ._arrays import IntArray, check_same_count, count, strings, to_u64_bytes, to_uint_bytes, u64_view, ulong_view
from ._base import LinkOpts
from ._family import Family, Recipe, TargetKind, TrialTargets
from ._session import array_repr, check_flags, fill_common, mode_repr_parts

_ULONG = ll.ffi.sizeof("unsigned long")
PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def _checked_path(path: Any) -> bytes:
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str, bytes or os.PathLike, not {type(path).__name__}")
    raw = os.fsencode(path)
    if not raw or b"\0" in raw:
        raise ValueError(f"path must be a non-empty file name without NUL, got {path!r}")
    try:
        st = os.stat(raw)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "UprobeMulti: no such file", os.fsdecode(raw)) from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"UprobeMulti path must be a regular file (the kernel answers EBADF otherwise): {path!r}")
    return os.path.abspath(raw)  # the kernel resolves a relative path against the cwd at link time


@dataclass(frozen=True)
class UprobeMulti(LinkOpts):
    """``uprobe_multi``: ``path`` plus ``offsets`` xor ``symbols`` (1..2**20 probes), ``ref_ctr_offsets``,
    ``cookies`` (as many), ``pid``, ``retprobe``, ``session``.

    Arrays may be any int sequence or buffer; they are copied when the builder is made and read back as
    read-only memoryviews (``offsets`` also when resolved from ``symbols``).
    """

    path: PathArg
    offsets: IntArray | None = field(default=None, hash=False)
    symbols: Sequence[str] | None = None
    ref_ctr_offsets: IntArray | None = field(default=None, hash=False)
    cookies: IntArray | None = field(default=None, hash=False)
    pid: int | None = None
    retprobe: bool = False
    session: bool | None = None
    # the validated values _fill writes
    _path: bytes = field(default=b"", init=False, repr=False, compare=False)
    _cnt: int = field(default=0, init=False, repr=False, compare=False)

    families: ClassVar[frozenset[str]] = frozenset({"uprobe_multi"})

    def __post_init__(self) -> None:
        if (self.offsets is None) == (self.symbols is None):
            raise ValueError("UprobeMulti needs exactly one of offsets= (file offsets) or symbols= (names)")
        check_flags(self)
        if self.pid is not None:
            integer("pid", self.pid, 1, S32_MAX)  # the kernel's 0 means "every process": say None
        if self.symbols is not None:
            names = strings("symbols", self.symbols, max_len=4096)
            object.__setattr__(self, "symbols", tuple(n.decode("utf-8", "surrogateescape") for n in names))
        path = _checked_path(self.path)
        if self.symbols is not None:
            from ..symbols import symbol_offsets  # lazy: an ELF reader, needed only for names

            try:
                resolved = symbol_offsets(os.fsdecode(path), self.symbols)
            except KeyError as exc:
                raise ValueError(exc.args[0]) from None
            offsets = to_uint_bytes("offsets", resolved, _ULONG)
        else:
            offsets = to_uint_bytes("offsets", self.offsets, _ULONG)
        cnt = count("offsets", offsets, _ULONG)
        object.__setattr__(self, "offsets", ulong_view(offsets))
        ref = None if self.ref_ctr_offsets is None else to_uint_bytes("ref_ctr_offsets", self.ref_ctr_offsets,
                                                                      _ULONG)
        cookies = None if self.cookies is None else to_u64_bytes("cookies", self.cookies)
        check_same_count(cnt, ref_ctr_offsets=None if ref is None else len(ref) // _ULONG,
                         cookies=None if cookies is None else len(cookies) // 8)
        if ref is not None:
            object.__setattr__(self, "ref_ctr_offsets", ulong_view(ref))
        if cookies is not None:
            object.__setattr__(self, "cookies", u64_view(cookies))
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_cnt", cnt)

    def __repr__(self) -> str:
        parts = [repr(self.path), f"offsets={array_repr(self.offsets, hexa=True)}"]
        if self.symbols is not None:
            parts.append(f"symbols={self.symbols!r}")
        for name in ("ref_ctr_offsets", "cookies"):
            if getattr(self, name) is not None:
                parts.append(f"{name}={array_repr(getattr(self, name), hexa=name != 'cookies')}")
        if self.pid is not None:
            parts.append(f"pid={self.pid}")
        parts += mode_repr_parts(self)
        return f"UprobeMulti({', '.join(parts)})"

    def _fill(self, opts: Any, attach_type: AttachType, keep: list[Any]) -> None:
        um = opts.uprobe_multi
        fill_common(self, um, attach_type, "TRACE_UPROBE_MULTI", "TRACE_UPROBE_SESSION", ll.BPF_F_UPROBE_MULTI_RETURN,
                    keep)
        um.pid = self.pid or 0
        path = ll.ffi.new("char[]", self._path)
        offsets = ll.ffi.from_buffer("unsigned long[]", self.offsets)
        um.path, um.offsets = path, offsets
        keep += (path, offsets)
        if self.ref_ctr_offsets is not None:
            ref = ll.ffi.from_buffer("unsigned long[]", self.ref_ctr_offsets)
            um.ref_ctr_offsets = ref
            keep.append(ref)


def _info_uprobe_multi(fd: int, info: Any, base: dict[str, Any], kinds: ModuleType) -> Any:
    UprobeMultiLinkInfo, _ffi = kinds.UprobeMultiLinkInfo, kinds._ffi
    _name_buffer, _refill, _string = kinds._name_buffer, kinds._refill, kinds._string

    count = int(info.uprobe_multi.count)
    path_size = int(info.uprobe_multi.path_size)

    def fill(i: Any) -> list[Any]:
        path = _name_buffer(path_size)
        i.uprobe_multi.path = int(_ffi.cast("uintptr_t", path))
        i.uprobe_multi.path_size = len(path)
        arrays = [_ffi.new("__u64[]", count) for _ in range(3)] if count else [None] * 3
        if count:
            i.uprobe_multi.offsets, i.uprobe_multi.ref_ctr_offsets, i.uprobe_multi.cookies = (
                int(_ffi.cast("uintptr_t", a)) for a in arrays)
            i.uprobe_multi.count = count
        return [path, *arrays]

    full, (path, offsets, refs, cookies) = _refill(fd, info, fill)
    um = full.uprobe_multi
    n = min(count, int(um.count))
    # copied out now (the link may be closed right after), each tuple made on first access
    arrays = kinds._Buffers({"offsets": offsets, "ref_ctr_offsets": refs, "cookies": cookies}, n)
    return kinds._lazy(UprobeMultiLinkInfo, {**base, "path": _string(path), "count": int(um.count),
                                             "flags": int(um.flags), "pid": int(um.pid)}, arrays)


def _probe_target(trial: TrialTargets, keep: list[Any]) -> tuple[int, Any]:
    opts = ll.new_link_create_opts()
    path = ll.ffi.new("char[]", b"/")
    offsets = ll.ffi.new("unsigned long[]", [0])
    keep += [path, offsets]
    opts.uprobe_multi.path, opts.uprobe_multi.offsets, opts.uprobe_multi.cnt = path, offsets, 1
    return 0, opts


def _probe(at: AttachType) -> Recipe | None:
    """On "/" (a directory, not an ELF file): EBADF proves the kernel knows uprobe_multi links."""
    return Recipe(ProgType.KPROBE, _probe_target, proof_errno=errno.EBADF)


FAMILY = Family(
    name="uprobe_multi",
    attach_types=(AttachType.TRACE_UPROBE_MULTI, AttachType.TRACE_UPROBE_SESSION),
    target=TargetKind.NONE,
    probe=_probe,
    feature="uprobe_multi",
    caps=("CAP_PERFMON",),
    hints={
        ("link_create", errno.ESRCH): "no process with that pid",
        ("link_create", errno.EBADF): "path is not a regular file",
        ("link_create", errno.ENOENT): "path does not exist",
        ("link_create", errno.EINVAL): "an offset is invalid, or this kernel lacks uprobe_multi (Linux >= 6.6)",
    },
    info={"UPROBE_MULTI": _info_uprobe_multi},
    link_types=("UPROBE_MULTI",),
    aliases={"uprobe_session": "TRACE_UPROBE_SESSION"},
    opts=(UprobeMulti,),
    mechanism="BPF_LINK_CREATE with a path and offsets: one uprobe_multi link for every offset",
    quirks=(
        "0 offsets answer EINVAL, more than 2**20 E2BIG; creating costs ~0.5 us per offset plus one 5-15 ms RCU "
        "wait, closing 16-50 ms",
    ),
)

__all__ = ["FAMILY", "UprobeMulti"]
