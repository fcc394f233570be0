"""USDT probes: list a binary's ``.note.stapsdt`` probes and attach ``usdt`` programs to them.

Programs use libbpf's BPF-side helpers unchanged (``<bpf/usdt.bpf.h>``: ``BPF_USDT``, ``bpf_usdt_arg``,
``bpf_usdt_arg_cnt``, ``bpf_usdt_cookie``). Those read, per call site, a spec from the program's
``__bpf_usdt_specs`` map, indexed by the BPF cookie of the uprobe that fired; this module fills that map exactly as
libbpf's user-space USDT support does (same spec layout, same spec-id allocation and reuse) and attaches through
bpflink's own links: one ``uprobe_multi`` link where the program was loaded for it (kernel 6.6+, libbpf decides at
load), else one perf-event uprobe + ``perf_event`` link per call site. Either way the handle is one ``UsdtLink``.

>>> # not run as a doctest: needs Debian's python3.11 (built with USDT probes) and a loaded `prog`
>>> for probe in probes("/usr/bin/python3.11"):  # doctest: +SKIP
...     print(probe.provider, probe.name, len(probe.sites), probe.sites[0].arg_spec)
python function__entry 1 8@%rbp 8@%r12 -4@%eax
>>> link = attach_usdt(prog, "/usr/bin/python3.11", "python", "function__entry")  # doctest: +SKIP

Why not libbpf's ``bpf_program__attach_usdt``: its link has no fd of its own (``bpf_link__fd`` is 0, the real
links sit in a private struct), so ``Link.info()``/``id``/pinning could not work; and it keeps a pointer into
its ``bpf_object``, which must then outlive every link, while bpflink's Programs outlive their Object.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import platform
import re
import struct
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, overload

from ._fd import PathArg
from .enums import AttachType
from .errors import NotSupportedError
from .link import Link
from .opts._check import S32_MAX, integer, u64
from .symbols import _Elf as _ElfHandle
from .symbols import open_regular
from .targets import resolve_binary

if TYPE_CHECKING:
    from .attach.group import LinkGroup
    from .info import LinkInfo
    from .map import Map
    from .perf import PerfEvent
    from .program import Program

# --- ELF constants (System V gABI; libelf's are read from its headers, see bpflink.lowlevel) ----------------------
_EM_386, _EM_X86_64, _EM_AARCH64 = 3, 62, 183
_MACHINES = {_EM_386: "i386", _EM_X86_64: "x86_64", _EM_AARCH64: "aarch64"}
_ET_EXEC, _ET_DYN = 2, 3
_NT_STAPSDT = 3
_NHDR_SIZE = 12  # n_namesz, n_descsz, n_type: 32-bit words in 32- and 64-bit files alike
_NOTE_SECTION, _BASE_SECTION = ".note.stapsdt", b".stapsdt.base"
_NOTE_SECTION_B = _NOTE_SECTION.encode()
_MAX_NOTES = 1 << 20  # a parsed note costs ~0.5 kB: caps what a crafted file can make us allocate


# --- argument specs ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UsdtArg:
    """One decoded argument of a probe's spec string, e.g. ``-4@-20(%rbp)``.

    ``kind``: ``"const"`` (the value is ``offset``), ``"reg"`` (register ``reg``), ``"deref"`` (memory at
    ``reg + offset``), ``"sib"`` (memory at ``reg + index_reg * scale + offset``, x86-64).

    >>> decode_args("-4@-20(%rbp)", "x86_64")[0]
    UsdtArg(spec='-4@-20(%rbp)', size=4, signed=True, kind='deref', reg='rbp', offset=-20, index_reg=None, scale=1)
    """

    spec: str
    size: int
    signed: bool
    kind: str
    reg: str | None = None
    offset: int = 0
    index_reg: str | None = None
    scale: int = 1

    def __str__(self) -> str:
        ctype = f"{'s' if self.signed else 'u'}{self.size * 8}"
        if self.kind == "const":
            return f"{ctype} {self.offset}"
        if self.kind == "reg":
            return f"{ctype} {self.reg}"
        where = self.reg if self.kind == "deref" else f"{self.reg} + {self.index_reg}*{self.scale}"
        disp = f" {'-' if self.offset < 0 else '+'} {abs(self.offset)}" if self.offset else ""
        return f"{ctype} [{where}{disp}]"


# struct pt_regs (x86-64) / struct user_pt_regs (arm64): where the kernel saved each register at the uprobe
_X86_64_REGS = {
    "r15": 0, "r14": 8, "r13": 16, "r12": 24, "rbp": 32, "rbx": 40, "r11": 48, "r10": 56, "r9": 64, "r8": 72,
    "rax": 80, "rcx": 88, "rdx": 96, "rsi": 104, "rdi": 112, "rip": 128, "rsp": 152,
}
# every name of a register's 64/32/16/8-bit forms -> its 64-bit name (the forms libbpf's table knows)
_X86_64_ALIASES: dict[str, str] = {}
for _r in ("ax", "bx", "cx", "dx"):
    _X86_64_ALIASES.update({f"r{_r}": f"r{_r}", f"e{_r}": f"r{_r}", _r: f"r{_r}", f"{_r[0]}l": f"r{_r}"})
for _r in ("si", "di", "bp", "sp"):
    _X86_64_ALIASES.update({f"r{_r}": f"r{_r}", f"e{_r}": f"r{_r}", _r: f"r{_r}", f"{_r}l": f"r{_r}"})
_X86_64_ALIASES.update({"rip": "rip", "eip": "rip"})
for _n in range(8, 16):
    _X86_64_ALIASES.update({f"r{_n}{s}": f"r{_n}" for s in ("", "d", "w", "b")})
_AARCH64_REGS = {**{f"x{n}": 8 * n for n in range(31)}, "sp": 248}

_TOKEN = re.compile(r"\s*([-+]?\d+)\s*@\s*(\[[^\]]*\]|[^\s(]*\([^)]*\)|\S+)")
_INT = r"[-+]?\d+"
_X86_CONST = re.compile(rf"\$({_INT})")
_X86_REG = re.compile(r"%(\w+)")
_X86_DEREF = re.compile(rf"({_INT})?\(\s*%(\w+)\s*\)")
_X86_SIB = re.compile(rf"({_INT})?\(\s*%(\w+)\s*,\s*%(\w+)\s*(?:,\s*(\d+)\s*)?\)")
_ARM_DEREF = re.compile(rf"\[\s*(\w+)\s*(?:,\s*#?({_INT})\s*)?\]")
_ARM_CONST = re.compile(_INT)
_ARM_REG = re.compile(r"[a-z0-9]+")


def _x86_reg(name: str, spec: str) -> str:
    full = _X86_64_ALIASES.get(name)
    if full is None:
        raise ValueError(f"USDT argument {spec!r}: unknown x86-64 register %{name}")
    return full


def _arm_reg(name: str, spec: str) -> str:
    # w<n> is the low half of x<n>: the cast to the argument's size makes reading x<n> exact
    full = "x" + name[1:] if re.fullmatch(r"w\d+", name) else name
    if full not in _AARCH64_REGS:
        raise ValueError(f"USDT argument {spec!r}: unknown arm64 register {name}")
    return full


def _decode_one(size_text: str, loc: str, spec: str, machine: str) -> UsdtArg:
    size = int(size_text)
    if abs(size) not in (1, 2, 4, 8):
        raise ValueError(f"USDT argument {spec!r}: size {abs(size)} is not 1, 2, 4 or 8 bytes")
    signed = size < 0
    base = {"spec": spec, "size": abs(size), "signed": signed}
    if machine == "x86_64":
        if m := _X86_CONST.fullmatch(loc):
            return UsdtArg(**base, kind="const", offset=int(m.group(1)))  # type: ignore[arg-type]
        if m := _X86_REG.fullmatch(loc):
            return UsdtArg(**base, kind="reg", reg=_x86_reg(m.group(1), spec))  # type: ignore[arg-type]
        if m := _X86_DEREF.fullmatch(loc):
            return UsdtArg(**base, kind="deref", reg=_x86_reg(m.group(2), spec),  # type: ignore[arg-type]
                           offset=int(m.group(1) or 0))
        if m := _X86_SIB.fullmatch(loc):
            scale = int(m.group(4) or 1)
            if scale not in (1, 2, 4, 8):
                raise ValueError(f"USDT argument {spec!r}: scale {scale} is not 1, 2, 4 or 8")
            return UsdtArg(**base, kind="sib", reg=_x86_reg(m.group(2), spec),  # type: ignore[arg-type]
                           index_reg=_x86_reg(m.group(3), spec), scale=scale, offset=int(m.group(1) or 0))
    elif machine == "aarch64":
        if m := _ARM_DEREF.fullmatch(loc):
            return UsdtArg(**base, kind="deref", reg=_arm_reg(m.group(1), spec),  # type: ignore[arg-type]
                           offset=int(m.group(2) or 0))
        if _ARM_CONST.fullmatch(loc):
            return UsdtArg(**base, kind="const", offset=int(loc))  # type: ignore[arg-type]
        if _ARM_REG.fullmatch(loc):
            return UsdtArg(**base, kind="reg", reg=_arm_reg(loc, spec))  # type: ignore[arg-type]
    else:
        raise ValueError(f"USDT arguments of {machine} binaries are not decoded (x86_64 and aarch64 are)")
    raise ValueError(f"USDT argument {spec!r} has a form bpflink does not decode for {machine}")


@functools.lru_cache(maxsize=4096)  # call sites repeat a handful of spec strings; UsdtArg is frozen
def _decode_cached(arg_spec: str, machine: str) -> tuple[UsdtArg, ...]:
    args, pos = [], 0
    text = arg_spec.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"USDT argument spec {arg_spec!r}: cannot read {text[pos:].strip()!r}")
        args.append(_decode_one(m.group(1), m.group(2), m.group(0).strip(), machine))
        pos = m.end()
    return tuple(args)


def decode_args(arg_spec: str, machine: str | None = None) -> tuple[UsdtArg, ...]:
    """Decode a note's argument string (``"8@%rdi -4@-20(%rbp)"``, arm64 ``"8@x0 -4@[sp, 16]"``).

    ``machine``: ``"x86_64"`` or ``"aarch64"`` (default: this machine). ``ValueError`` for a form the BPF-side
    helpers cannot read (as libbpf refuses it at attach).

    >>> [str(a) for a in decode_args("8@x0 -4@[sp, 16] 4@5", "aarch64")]
    ['u64 x0', 's32 [sp + 16]', 'u32 5']
    """
    return _decode_cached(arg_spec, machine or platform.machine())


# --- the notes ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UsdtSite:
    """One call site of a probe: ``address`` (virtual, prelink-adjusted as libbpf does), ``offset`` (the file
    offset a uprobe takes), the semaphore's address and file offset (``ref_ctr_offset``; 0 when none), the raw
    ``arg_spec`` and its decoding (``args``; None when this machine's forms cannot read it, see ``args_error``)."""

    address: int
    offset: int | None
    semaphore: int
    semaphore_offset: int
    arg_spec: str
    args: tuple[UsdtArg, ...] | None
    args_error: str | None = None


@dataclass(frozen=True)
class UsdtProbe:
    """A USDT probe of one binary: ``provider:name`` and its call sites (one per expansion of the macro)."""

    path: str
    provider: str
    name: str
    sites: tuple[UsdtSite, ...]

    @property
    def semaphore(self) -> int:
        """The semaphore's address (0: the probe has none; all sites of a probe share it)."""
        return next((s.semaphore for s in self.sites if s.semaphore), 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "provider": self.provider, "name": self.name, "semaphore": self.semaphore,
            "sites": [{"address": s.address, "offset": s.offset, "semaphore": s.semaphore,
                       "semaphore_offset": s.semaphore_offset, "args": s.arg_spec,
                       "decoded": None if s.args is None else [str(a) for a in s.args],
                       **({"args_error": s.args_error} if s.args_error else {})} for s in self.sites],
        }


@dataclass(frozen=True)
class _Note:
    provider: str
    name: str
    loc: int
    base: int
    sema: int
    args: str


@dataclass(frozen=True)
class _Elf:
    path: str
    machine: str
    elf_type: int
    is64: bool
    little: bool
    segments: tuple[tuple[int, int, int, bool], ...]  # PT_LOAD: vaddr, memsz, file offset, executable
    base_addr: int  # sh_addr of .stapsdt.base (0 when absent)
    notes: tuple[_Note, ...]


def _stapsdt_notes(h: _ElfHandle, scn: Any, path: str, is64: bool, little: bool) -> list[_Note]:
    """The stapsdt notes of section ``scn``. libelf walks the notes (``gelf_getnote``: each header converted to
    host order, its name and descriptor checked to lie inside the section, the section's 4- or 8-byte note
    alignment applied); each stapsdt descriptor is validated here: three addresses (in the file's byte order and
    word size), then NUL-terminated provider, name and argument strings."""
    ffi, ll = h.ffi, h.ll
    data = ll.elf_getdata(scn, ffi.NULL)
    if data == ffi.NULL:
        raise h.error(f"has a {_NOTE_SECTION} section whose contents cannot be read")
    size = int(data.d_size)
    if size == 0 or data.d_buf == ffi.NULL:
        return []
    raw = bytes(ffi.buffer(data.d_buf, size))
    nhdr, name_at, desc_at = ffi.new("GElf_Nhdr *"), ffi.new("size_t *"), ffi.new("size_t *")
    addrs = struct.Struct(("<" if little else ">") + ("QQQ" if is64 else "III"))
    notes: list[_Note] = []
    off = 0
    while size - off >= _NHDR_SIZE:  # a note that fits advances off by >= 12 bytes: at most size / 12 iterations
        nxt = ll.gelf_getnote(data, off, nhdr, name_at, desc_at)
        if nxt <= off:
            raise ValueError(f"{path}: malformed ELF (note at {off:#x} runs past the end of {_NOTE_SECTION})")
        note_at, off = off, nxt
        name = raw[name_at[0]:name_at[0] + nhdr.n_namesz]
        if nhdr.n_type != _NT_STAPSDT or name.rstrip(b"\0") != b"stapsdt":
            continue
        desc = raw[desc_at[0]:desc_at[0] + nhdr.n_descsz]
        if len(desc) < addrs.size + 3:
            raise ValueError(f"{path}: malformed ELF (stapsdt note at {note_at:#x} is too short: {len(desc)} bytes)")
        loc, base, sema = addrs.unpack_from(desc, 0)
        strings = desc[addrs.size:].split(b"\0", 3)
        if len(strings) < 3 or not strings[1]:
            raise ValueError(f"{path}: malformed ELF (stapsdt note at {note_at:#x} lacks provider, name or "
                             "argument strings)")
        if len(notes) >= _MAX_NOTES:
            raise ValueError(f"{path}: more than {_MAX_NOTES} USDT notes: not a binary bpflink attaches to")
        args = strings[2].decode("utf-8", "replace")
        notes.append(_Note(strings[0].decode("utf-8", "replace"), strings[1].decode("utf-8", "replace"),
                           loc, base, sema, "" if args.startswith(":") else args))
    return notes


def _parse_elf(h: _ElfHandle, path: str, size: int) -> _Elf:
    """What listing and attaching need from one libelf handle: the header, the PT_LOAD segments, the address of
    ``.stapsdt.base`` and the notes of the first ``.note.stapsdt`` (as libbpf reads them)."""
    ffi, ll = h.ffi, h.ll
    h.check_tables(size)  # header tables (partly) outside the file: truncated or corrupted
    ehdr = ffi.new("GElf_Ehdr *")
    if ll.gelf_getehdr(h.elf, ehdr) == ffi.NULL:
        raise h.error("has an unreadable ELF header")
    is64 = ll.gelf_getclass(h.elf) == ll.ELFCLASS64
    ident = ll.elf_getident(h.elf, ffi.NULL)
    little = ident != ffi.NULL and ord(ident[ll.EI_DATA]) == ll.ELFDATA2LSB
    count = ffi.new("size_t *")
    if ll.elf_getphdrnum(h.elf, count) != 0:
        raise h.error("has an unreadable program header count")
    if count[0] > size // 32 + 1:  # a program header is at least 32 bytes
        raise ValueError(f"{path}: malformed ELF (claims {count[0]} program headers in {size} bytes)")
    segments = []
    ph = ffi.new("GElf_Phdr *")
    for i in range(count[0]):
        if ll.gelf_getphdr(h.elf, i, ph) == ffi.NULL:
            raise h.error(f"has an unreadable program header {i}")
        if ph.p_type == ll.PT_LOAD:
            segments.append((int(ph.p_vaddr), int(ph.p_memsz), int(ph.p_offset), bool(ph.p_flags & ll.PF_X)))
    sections = h.sections(size // 40 + 1)  # a section header is at least 40 bytes
    notes: list[_Note] = []
    base_addr = 0
    if sections:
        if ll.elf_getshdrstrndx(h.elf, count) != 0:
            raise h.error("has an unreadable section name table index")
        if count[0] >= len(sections):
            raise ValueError(f"{path}: malformed ELF (section name table index {count[0]} >= {len(sections)} "
                             "sections)")
        strndx, seen = count[0], False
        if ll.elf_getdata(sections[strndx][0], ffi.NULL) == ffi.NULL:  # else every name would read as absent
            raise h.error("has an unreadable section name table")
        for scn, shdr in sections[1:]:
            name_ptr = ll.elf_strptr(h.elf, strndx, shdr.sh_name)
            name = b"" if name_ptr == ffi.NULL else ffi.string(name_ptr)
            if name == _BASE_SECTION:
                base_addr = int(shdr.sh_addr)
            elif name == _NOTE_SECTION_B and not seen:  # the first one only, as libbpf
                seen = True
                if shdr.sh_type != ll.SHT_NOTE:
                    raise ValueError(f"{path}: malformed ELF ({_NOTE_SECTION} is not a SHT_NOTE section)")
                notes = _stapsdt_notes(h, scn, path, is64, little)
    return _Elf(path, _MACHINES.get(ehdr.e_machine, f"machine {ehdr.e_machine}"), int(ehdr.e_type), is64, little,
                tuple(segments), base_addr, tuple(notes))


_ELF_CACHE: dict[tuple[str, int, int, int, int], _Elf] = {}
_ELF_CACHE_SIZE = 16
_ELF_LOCK = threading.Lock()


def _read_elf(path: str) -> _Elf:
    """The parsed file, cached by (path, device, inode, size, mtime): attaching many probes of one binary parses
    it once; a rebuilt or replaced file is parsed again."""
    fd = open_regular(path, "USDT binary")
    try:
        st = os.fstat(fd)
        key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        cached = _ELF_CACHE.get(key)
        if cached is not None:
            return cached
        if st.st_size == 0:
            raise ValueError(f"{path}: not an ELF file (empty)")
        ident = os.pread(fd, 16, 0)  # e_ident: refused here with what is wrong; libelf only says "not ELF"
        if ident[:4] != b"\x7fELF":
            raise ValueError(f"{path}: not an ELF file")
        if len(ident) < 16 or ident[4] not in (1, 2) or ident[5] not in (1, 2) or ident[6] != 1:
            raise ValueError(f"{path}: malformed ELF (e_ident: class {ident[4:5].hex() or '?'}, data encoding "
                             f"{ident[5:6].hex() or '?'}, version {ident[6:7].hex() or '?'})")
        if st.st_size < (64 if ident[4] == 2 else 52):
            raise ValueError(f"{path}: malformed ELF (its {st.st_size} bytes do not hold an ELF header)")
        with _ElfHandle(path, fd=fd) as h:
            elf = _parse_elf(h, path, st.st_size)
    finally:
        os.close(fd)
    with _ELF_LOCK:
        if len(_ELF_CACHE) >= _ELF_CACHE_SIZE:
            _ELF_CACHE.pop(next(iter(_ELF_CACHE)))
        _ELF_CACHE[key] = elf
    return elf


def _segment(elf: _Elf, addr: int) -> tuple[int, int, int, bool] | None:
    return next((s for s in elf.segments if s[0] <= addr < s[0] + s[1]), None)


def _sites(elf: _Elf, note: _Note) -> UsdtSite:
    abs_ip = note.loc
    if elf.base_addr and note.base:  # prelink moved the text: shift by how far .stapsdt.base moved
        abs_ip = (abs_ip + elf.base_addr - note.base) & ((1 << 64) - 1)
    seg = _segment(elf, abs_ip)
    offset = None if seg is None or not seg[3] else abs_ip - seg[0] + seg[2]
    sema_off = 0
    if note.sema:
        sseg = _segment(elf, note.sema)
        sema_off = 0 if sseg is None or sseg[3] else note.sema - sseg[0] + sseg[2]
    try:
        args: tuple[UsdtArg, ...] | None = decode_args(note.args, elf.machine)
        error = None
    except ValueError as exc:
        args, error = None, str(exc)
    return UsdtSite(abs_ip, offset, note.sema, sema_off, note.args, args, error)


def _group(elf: _Elf) -> list[UsdtProbe]:
    grouped: dict[tuple[str, str], list[UsdtSite]] = {}
    for note in elf.notes:
        grouped.setdefault((note.provider, note.name), []).append(_sites(elf, note))
    return [UsdtProbe(elf.path, p, n, tuple(sites)) for (p, n), sites in grouped.items()]


def probes(binary: str | os.PathLike[str], *, pid: int | None = None) -> list[UsdtProbe]:
    """Every USDT probe of ``binary`` (as process ``pid`` sees it, when given), in note order.

    ``ValueError`` naming the file for anything that is not a readable ELF file with sane headers; a binary
    without notes gives ``[]``.

    >>> # not run as a doctest: needs Debian's python3.11 (built with USDT probes)
    >>> [f"{p.provider}:{p.name}" for p in probes("/usr/bin/python3.11")][:2]  # doctest: +SKIP
    ['python:audit', 'python:gc__done']
    """
    return _group(_read_elf(_resolve(binary, pid)))


list_probes = probes


# --- where a binary is, as a process sees it: bpflink.targets, the one resolver ------------------------------------
def _resolve(binary: str | os.PathLike[str], pid: int | None) -> str:
    """``binary`` as a path this process can open (``bpflink.targets.resolve_binary``: a path, relative to the
    process's working directory with ``pid``; an executable in PATH; a library name; with ``pid`` through
    ``/proc/PID/root`` and the files it mapped)."""
    if pid is not None:
        integer("pid", pid, 1, S32_MAX)
    return resolve_binary(binary, pid=pid).path


# --- spec encoding (the layout <bpf/usdt.bpf.h> reads) ------------------------------------------------------------
_ARG_CONST, _ARG_REG, _ARG_REG_DEREF, _ARG_SIB = 0, 1, 2, 3
_MAX_ARGS = 12
# struct __bpf_usdt_arg_spec: u64 val_off; arg_type:8; (pad); idx_reg_off:12 + scale_bitshift:4 in a u16 at 10;
# __reserved:8 at 12; short reg_off at 14; bool arg_signed at 16; char arg_bitshift at 17; 24 bytes
_ARG_FMT = struct.Struct("<QBxHBxhBb6x")
# struct __bpf_usdt_spec: args[12]; u64 usdt_cookie; short arg_cnt; 304 bytes
_SPEC_TAIL = struct.Struct("<Qh6x")
SPEC_SIZE = _MAX_ARGS * _ARG_FMT.size + _SPEC_TAIL.size


def encode_spec(args: Sequence[UsdtArg], cookie: int = 0, machine: str | None = None) -> bytes:
    """``struct __bpf_usdt_spec`` for these arguments and ``cookie``, as libbpf's user space writes it.

    >>> len(encode_spec(decode_args("8@%rdi -4@$5", "x86_64"), 7, "x86_64"))
    304
    """
    machine = machine or platform.machine()
    regs = {"x86_64": _X86_64_REGS, "aarch64": _AARCH64_REGS}.get(machine)
    if regs is None:
        raise ValueError(f"USDT specs for {machine} are not encoded (x86_64 and aarch64 are)")
    if len(args) > _MAX_ARGS:
        raise ValueError(f"USDT probe has {len(args)} arguments; the BPF side reads at most {_MAX_ARGS}")
    out = bytearray(SPEC_SIZE)
    for i, a in enumerate(args):
        kind = {"const": _ARG_CONST, "reg": _ARG_REG, "deref": _ARG_REG_DEREF, "sib": _ARG_SIB}[a.kind]
        reg_off = 0 if a.reg is None else regs[a.reg]
        idx = 0 if a.index_reg is None else regs[a.index_reg] | (a.scale.bit_length() - 1) << 12
        val = 0 if a.kind == "reg" else a.offset & ((1 << 64) - 1)
        _ARG_FMT.pack_into(out, i * _ARG_FMT.size, val, kind, idx, 0, reg_off, a.signed, 64 - a.size * 8)
    _SPEC_TAIL.pack_into(out, _MAX_ARGS * _ARG_FMT.size, cookie, len(args))
    return bytes(out)


class _SpecIds:
    """Spec ids of one ``__bpf_usdt_specs`` map (by kernel map id), shared by every link filling it: as libbpf's
    USDT manager, ids freed by a closed link are reused first, new ones count up to the map's max_entries."""

    _lock = threading.Lock()
    _by_map: ClassVar[dict[int, _SpecIds]] = {}

    def __init__(self, capacity: int) -> None:
        self.capacity, self.next, self.free, self.users = capacity, 0, list[int](), 0

    @classmethod
    def take(cls, map_id: int, capacity: int, count: int) -> list[int]:
        with cls._lock:
            ids = cls._by_map.get(map_id) or cls(capacity)
            reused = min(count, len(ids.free))
            if count - reused > ids.capacity - ids.next:
                raise ValueError(f"USDT spec map (id {map_id}) holds {ids.capacity} specs and this attach needs "
                                 f"{count} more than are free: raise BPF_USDT_MAX_SPEC_CNT in the BPF program")
            taken = [ids.free.pop() for _ in range(reused)]
            taken += range(ids.next, ids.next + count - reused)
            ids.next += count - reused
            ids.users += 1
            cls._by_map[map_id] = ids
            return taken

    @classmethod
    def give_back(cls, map_id: int, taken: list[int]) -> None:
        with cls._lock:
            ids = cls._by_map.get(map_id)
            if ids is None:
                return
            ids.free.extend(taken)
            ids.users -= 1
            if ids.users <= 0:  # every id free again: forget the map rather than keep an entry per map id
                del cls._by_map[map_id]


# --- attaching ------------------------------------------------------------------------------------------------
_REF_CTR_FORMAT = Path("/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset")
_NOP_COMBO = b"\x90\x0f\x1f\x44\x00\x00"  # nop; nop5: a uprobe on the nop5 is optimized where uprobe() exists
_uprobe_syscall: bool | None = None


def _has_uprobe_syscall() -> bool:
    """x86-64 kernels with the uprobe() syscall (6.11+) answer ENXIO when it is called outside a uprobe."""
    global _uprobe_syscall
    if _uprobe_syscall is None:
        _uprobe_syscall = False
        if platform.machine() == "x86_64":
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            _uprobe_syscall = libc.syscall(336) < 0 and ctypes.get_errno() == errno.ENXIO
    return _uprobe_syscall


class UsdtLink(Link):
    """The link of one USDT attach: ``mode`` says how it was made.

    ``"uprobe_multi"``: one kernel uprobe_multi link over every call site (its fd is this Link's fd).
    ``"perf_event"``: kernels or programs without uprobe_multi; one perf-event uprobe + ``perf_event`` link per
    call site; this Link's fd is the first site's link, ``links`` holds them all and ``info()`` decodes the first.
    ``close()`` detaches every site and returns the spec ids to the program's spec map.
    """

    mode: str
    binary: str
    provider: str
    name: str
    #: the Program (with the spec maps) that ``Object.attach`` took from its object for this link
    _program: Program | None = None
    sites: tuple[UsdtSite, ...]

    def __init__(self, fd: int, *, attach_type: AttachType) -> None:
        super().__init__(fd, attach_type=attach_type)
        self._parts: list[Link | PerfEvent] = []
        self._closing = threading.Lock()
        self._release: Any = None
        self._forget: Any = None  # perf_event_ioctl: drops the IP -> spec id entries

    @property
    def links(self) -> list[Link]:
        """The kernel links behind this attach: one (uprobe_multi) or one per call site (perf_event)."""
        return [self, *(p for p in self._parts if isinstance(p, Link))]

    def infos(self) -> list[LinkInfo]:
        """``info()`` of every kernel link of this attach."""
        return [link.info() if link is not self else Link.info(self) for link in self.links]

    def pin(self, path: PathArg) -> None:
        """Pin the uprobe_multi link (its spec ids stay taken while this process lives; another process attaching
        the same program's spec map does not know them). A perf_event-mode attach is one link per site: refused."""
        if self.mode != "uprobe_multi":
            raise ValueError(f"this USDT attach is {len(self.links)} perf_event links (one per call site), not one "
                             "link: pin each of link.links if you must")
        super().pin(path)

    def close(self) -> None:
        with self._closing:
            super().close()
            for part in self._parts:
                part.close()
            if self._forget is not None:
                self._forget()
                self._forget = None
            if self._release is not None:
                self._release()

    @property
    def legacy(self) -> bool:  # type: ignore[override]
        """True for ``mode == "perf_event_ioctl"``: no kernel link object (kernels before 5.15)."""
        return getattr(self, "mode", "") == "perf_event_ioctl"

    def info(self) -> LinkInfo:
        if self.legacy:
            self.fd  # noqa: B018  -- a closed handle says so first
            raise NotSupportedError("info of a USDT attach through the perf event ioctl", "there is no kernel link "
                                    "object (the program sits on one perf event per call site)", min_kernel="5.15")
        return super().info()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return (f"<UsdtLink {self.provider}:{self.name} in {self.binary} {self.mode} "
                f"{len(self.sites)} site(s) {state}>")


def _check_name(what: str, value: object) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not value or "\0" in value or ":" in value:
        raise ValueError(f"{what} must be a non-empty name without NUL or ':', got {value!r}")
    return value.encode()


def _spec_maps(prog: Program) -> Map:
    maps = getattr(prog, "maps", None) or {}
    specs: Map | None = maps.get("__bpf_usdt_specs")
    if specs is None:
        raise ValueError(f"program {prog.name!r} has no __bpf_usdt_specs map: include <bpf/usdt.bpf.h> in the BPF "
                         "program and load it with Program.from_object/Object.open (its maps come with it)")
    if specs.value_size != SPEC_SIZE:
        raise ValueError(f"__bpf_usdt_specs of {prog.name!r} has {specs.value_size}-byte values; libbpf 1.7's "
                         f"<bpf/usdt.bpf.h> layout is {SPEC_SIZE} bytes")
    return specs


def _map_info(m: Map) -> tuple[int, int]:
    """The map's kernel id and max_entries, from its fdinfo (the kernel's text; no struct layout needed)."""
    with open(f"/proc/self/fdinfo/{m.fd}") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    try:
        return int(fields["map_id"]), int(fields["max_entries"])
    except (KeyError, ValueError):
        raise ValueError(f"fd {m.fd} ({m.name or 'map'}) is not a BPF map: /proc/self/fdinfo has no map_id") from None


def _targets(elf: _Elf, provider: str, name: str) -> list[tuple[int, int, UsdtSite]]:
    """(file offset, semaphore file offset, site) of every call site, with libbpf's checks."""
    out = []
    for note in elf.notes:
        if note.provider != provider or note.name != name:
            continue
        site = _sites(elf, note)
        if site.offset is None:
            raise ValueError(f"{elf.path}: {provider}:{name} at {site.address:#x} is in no executable segment")
        if site.semaphore and not site.semaphore_offset:
            raise ValueError(f"{elf.path}: the semaphore of {provider}:{name} at {site.semaphore:#x} is in no "
                             "writable loaded segment")
        if site.args is None:
            raise ValueError(f"{elf.path}: {provider}:{name}: {site.args_error}")
        out.append((site.offset, site.semaphore_offset, site))
    return out


@overload
def attach_usdt(prog: Program, binary: str | os.PathLike[str], provider: str, name: str, *,
                pid: int | None = None, cookie: int = 0) -> UsdtLink: ...


@overload
def attach_usdt(prog: Program, binary: str | os.PathLike[str], provider: str, name: str, *,
                pids: Iterable[int], cookie: int = 0, pid_filter: bool = False) -> LinkGroup: ...


def attach_usdt(prog: Program, binary: str | os.PathLike[str], provider: str, name: str, *,
                pid: int | None = None, pids: Iterable[int] | None = None, cookie: int = 0,
                pid_filter: bool = False) -> UsdtLink | LinkGroup:
    """Attach ``usdt`` program ``prog`` to every call site of ``provider:name`` in ``binary``.

    ``binary``: a path, an executable in PATH or a library name (``bpflink.targets.resolve_binary``); with
    ``pid`` it is the file as that process sees it (its mappings, ``/proc/PID/root``, its working directory) and
    only that process fires the program. ``cookie``: what ``bpf_usdt_cookie()`` returns. Semaphores
    (``*_ENABLED()``) are raised by the kernel while the link lives.

    ``pids`` (instead of ``pid``): ``binary`` as each of those processes sees it (e.g. one per container),
    attached once per distinct file (device, inode), so containers of one image share one attach, and every
    process mapping that file fires it (before 5.15, without BPF cookies, a PIE's or library's call sites are
    found by their address in each listed process: others mapping the file fire with ``bpf_usdt_cookie()`` 0 and
    arguments read as 0); ``pid_filter=True`` makes one attach per process, firing only for it.
    Returns a ``LinkGroup`` of ``UsdtLink`` named ``"DEV:INO"`` (``"PID"`` with ``pid_filter``), made
    all-or-nothing (``bpflink.attach.uprobe_in`` does the same for plain uprobes).

    >>> # not run as a doctest: needs a compiled usdt.bpf.o and Debian's python3.11
    >>> prog = Program.from_object("usdt.bpf.o", "py_entry")  # doctest: +SKIP
    >>> with attach_usdt(prog, "/usr/bin/python3.11", "python", "function__entry") as link:  # doctest: +SKIP
    ...     print(link.mode, link.info().type.name)
    uprobe_multi UPROBE_MULTI
    >>> group = attach_usdt(prog, "/usr/bin/python3.11", "python", "function__entry", pids=[101, 202])  # doctest: +SKIP
    """
    from .program import Program

    if not isinstance(prog, Program):
        raise TypeError(f"prog must be a bpflink Program (with its object's maps), not {type(prog).__name__}")
    _check_name("provider", provider)
    _check_name("name", name)
    cookie = u64("cookie", cookie)
    if pids is None:
        if pid_filter:
            raise ValueError("pid_filter applies to pids=[...]; with one pid= the probe is filtered already")
        if pid is not None:
            integer("pid", pid, 1, S32_MAX)
        _spec_maps(prog)
        return _attach_file(prog, _resolve(binary, pid), provider, name, pid, cookie)
    if pid is not None:
        raise ValueError("give pid= (one process) or pids=[...] (many), not both")
    if isinstance(pids, (str, bytes)) or not isinstance(pids, Iterable):
        raise TypeError(f"pids must be an iterable of process ids, not {type(pids).__name__}")
    pid_list = [integer("pid", p, 1, S32_MAX) for p in pids]
    if not pid_list:
        raise ValueError("pids is empty: nothing to attach to")
    _spec_maps(prog)
    from .attach.group import LinkGroup as _Group

    if pid_filter:
        return _Group.attach({str(p): (lambda p=p: _attach_file(prog, _resolve(binary, p), provider, name, p,
                                                                  cookie)) for p in pid_list})
    from .targets import resolve_targets

    found = resolve_targets(binary, pid_list)
    return _Group.attach({f"{t.dev}:{t.ino}": (lambda t=t: _attach_file(prog, t.path, provider, name, None,
                                                                          cookie, t.pids)) for t in found})


def _attach_file(prog: Program, path: str, provider: str, name: str, pid: int | None, cookie: int,
                 mapped_by: Sequence[int] = ()) -> UsdtLink:
    """``attach_usdt`` on ``path`` (openable here), arguments checked. ``mapped_by``: without a pid filter, the
    processes known to map the file (``pids=[...]``), whose load bases the IP -> spec id map needs before 5.15."""
    from .create import link_create
    from .opts import PerfEvent as PerfEventOpts
    from .opts import UprobeMulti
    from .perf import open_uprobe

    specs = _spec_maps(prog)
    elf = _read_elf(path)
    if elf.machine != platform.machine() or not elf.is64 or not elf.little:
        raise ValueError(f"{path} is a {elf.machine} {'64' if elf.is64 else '32'}-bit ELF; this is "
                         f"{platform.machine()}")
    if elf.elf_type not in (_ET_EXEC, _ET_DYN):
        raise ValueError(f"{path}: only executables and shared objects carry attachable USDT probes")
    targets = _targets(elf, provider, name)
    if not targets:
        have = sorted({f"{n.provider}:{n.name}" for n in elf.notes})
        raise ValueError(f"{path} has no USDT probe {provider}:{name}" + (f"; it has {', '.join(have)}" if have
                                                                           else " (no .note.stapsdt notes)"))
    if any(sema for _, sema, _ in targets) and not _REF_CTR_FORMAT.exists():
        raise NotSupportedError("USDT semaphores", f"the uprobe PMU has no ref_ctr_offset ({_REF_CTR_FORMAT})")
    if _has_uprobe_syscall():
        with open(path, "rb") as f:
            for i, (off, sema, site) in enumerate(targets):
                f.seek(off)
                if f.read(len(_NOP_COMBO)) == _NOP_COMBO:
                    targets[i] = (off + 1, sema, site)
    # one spec id per distinct argument string, as libbpf (identical specs of one attach share an id)
    distinct: dict[str, UsdtSite] = {}
    for _, _, site in targets:
        distinct.setdefault(site.arg_spec, site)
    map_id, capacity = _map_info(specs)
    ids = _SpecIds.take(map_id, capacity, len(distinct))
    released = [False]

    def release() -> None:
        if not released[0]:
            released[0] = True
            _SpecIds.give_back(map_id, ids)

    id_of = dict(zip(distinct, ids))
    parts: list[Any] = []
    try:
        for spec_str, spec_id in id_of.items():
            args = distinct[spec_str].args
            assert args is not None  # _targets refused undecodable sites
            specs.update(spec_id, encode_spec(args, cookie))
        offsets = [off for off, _, _ in targets]
        refs = [sema for _, sema, _ in targets]
        cookies = [id_of[site.arg_spec] for _, _, site in targets]
        eat = prog.expected_attach_type
        # libbpf loads SEC("usdt") programs for uprobe_multi where the kernel has it, and such a program is refused
        # on perf events (EINVAL); a program of unknown load type (Program.from_id) tries uprobe_multi first.
        # Without perf_event links (and BPF cookies, < 5.15): the perf event ioctl and the IP -> spec id map
        modes = (["uprobe_multi"] if eat == AttachType.TRACE_UPROBE_MULTI else
                 ["perf_event", "perf_event_ioctl"] if eat is not None else
                 ["uprobe_multi", "perf_event", "perf_event_ioctl"])
        for mode in modes:
            try:
                if mode == "perf_event_ioctl":
                    link = _attach_ioctl(prog, path, elf, pid, mapped_by, refs, cookies, targets, parts)
                    break
                if mode == "uprobe_multi":
                    built = UprobeMulti(path, offsets=offsets, ref_ctr_offsets=refs if any(refs) else None,
                                        cookies=cookies, pid=pid)
                    first = link_create(prog, None, AttachType.TRACE_UPROBE_MULTI, built)
                    link = UsdtLink(first.detach_fd(), attach_type=AttachType.TRACE_UPROBE_MULTI)
                else:
                    for off, sema, spec_id in zip(offsets, refs, cookies):
                        event = open_uprobe(path, off, pid=-1 if pid is None else pid, ref_ctr_offset=sema)
                        parts.append(event)
                        parts.append(link_create(prog, event, AttachType.PERF_EVENT, PerfEventOpts(cookie=spec_id)))
                    first = parts.pop(1)  # its perf event stays in parts: the link holds the event while it lives
                    link = UsdtLink(first.detach_fd(), attach_type=AttachType.PERF_EVENT)
                break
            except OSError as exc:
                if mode == modes[-1] or exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
                    raise
                for part in reversed(parts):  # what this mode opened before the refusal
                    part.close()
                parts.clear()
    except BaseException:
        for part in reversed(parts):
            part.close()
        release()
        raise
    link.mode = mode
    link.binary, link.provider, link.name = path, provider, name
    link.sites = tuple(site for _, _, site in targets)
    link._parts = parts
    link._release = weakref.finalize(link, release)  # returned by close(), or when the Link is collected
    return link


def _abs_ips(elf: _Elf, path: str, pid: int | None, targets: list[tuple[int, int, UsdtSite]]) -> list[int]:
    """The address each call site has in the process: what the BPF side looks its spec up by without BPF cookies.
    An ET_EXEC file's are its link-time addresses; a PIE or shared library's need the process's mapping of it."""
    if elf.elf_type == _ET_EXEC:
        return [site.address + (off - (site.offset or 0)) for off, _, site in targets]
    if pid is None:
        raise NotSupportedError("USDT in a PIE executable or shared library without a pid", "without BPF cookies "
                                "the BPF side finds a call site's spec by its address in the process, which for a "
                                f"position-independent file ({path}) is known per process only: pass pid=",
                                min_kernel="5.15")
    st = os.stat(path)
    segs = []  # (start, end, file offset) of each mapping of this very file (device + inode)
    try:
        with open(f"/proc/{pid}/maps") as f:
            lines = [fields for fields in (line.split(None, 5) for line in f)
                     if len(fields) == 6 and ":" in fields[3] and fields[4] != "0"]
    except FileNotFoundError:
        raise ProcessLookupError(errno.ESRCH, f"process {pid} is gone") from None
    for fields in lines:
        major, minor = (int(x, 16) for x in fields[3].split(":"))
        if (os.makedev(major, minor), int(fields[4])) == (st.st_dev, st.st_ino):
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            segs.append((lo, hi, int(fields[2], 16)))
    if not segs:
        # on overlay (containers) /proc/PID/maps names the underlying file's device and inode while stat() of a
        # path names the overlay's: compare stat() with stat() through the mapping itself
        for fields in lines:
            try:
                mst = os.stat(f"/proc/{pid}/map_files/{fields[0]}")
            except OSError:
                continue
            if (mst.st_dev, mst.st_ino) == (st.st_dev, st.st_ino):
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                segs.append((lo, hi, int(fields[2], 16)))
    out = []
    for off, _, site in targets:
        for start, end, map_off in segs:
            if map_off <= off < map_off + (end - start):
                out.append(start - map_off + off)
                break
        else:
            raise ValueError(f"{site.address:#x} of {path} (file offset {off:#x}) is in no mapping of process {pid} "
                             f"(see /proc/{pid}/maps): it has not mapped that file (yet)")
    return out


def _attach_ioctl(prog: Program, path: str, elf: _Elf, pid: int | None, mapped_by: Sequence[int], refs: list[int],
                  spec_ids: list[int], targets: list[tuple[int, int, UsdtSite]], parts: list[Any]) -> UsdtLink:
    """Kernels without perf_event links and BPF cookies (< 5.15), as libbpf: each call site's address -> spec id
    in ``__bpf_usdt_ip_to_spec_id`` (which <bpf/usdt.bpf.h> reads there), and a perf-event uprobe per site with
    ``PERF_EVENT_IOC_SET_BPF``. The handle's fd is a duplicate of the first site's perf event.

    A PIE's or shared library's sites have other addresses in every process that maps it: with ``pid`` those of
    that process, else those of each process of ``mapped_by`` (``pids=[...]``: one uprobe per site for all of
    them, one map entry per site and load base; those that have not mapped it are left out, ``ValueError`` when
    none has). Other processes mapping the file hit the uprobe too, but find no spec there (``bpf_usdt_cookie()``
    0, arguments read as 0)."""
    from .attach.legacy import attach_ioctl
    from .enums import MapUpdateFlags
    from .perf import open_uprobe

    ip_map = (getattr(prog, "maps", None) or {}).get("__bpf_usdt_ip_to_spec_id")
    if ip_map is None:
        raise ValueError(f"program {prog.name!r} has no __bpf_usdt_ip_to_spec_id map (<bpf/usdt.bpf.h> has it)")
    if elf.elf_type == _ET_EXEC or pid is not None or not mapped_by:
        per_process = [_abs_ips(elf, path, pid, targets)]
    else:
        per_process, unmapped = [], []
        for p in mapped_by:
            try:
                per_process.append(_abs_ips(elf, path, p, targets))
            except (ValueError, ProcessLookupError) as exc:  # not (yet) mapped by it, or gone: its addresses unknown
                unmapped.append(str(exc))
        if not per_process:
            raise ValueError(f"none of processes {', '.join(map(str, mapped_by))} has mapped {path}: without BPF "
                             "cookies (before 5.15) a PIE's or library's call sites are found by their address in "
                             f"a process that mapped it ({'; '.join(unmapped)})")
    ip_spec: dict[int, int] = {}  # processes loaded at one base (no ASLR) share their entries
    for ips in per_process:
        for ip, spec_id in zip(ips, spec_ids):
            ip_spec.setdefault(ip, spec_id)
    written: list[int] = []

    def forget() -> None:
        for ip in written:
            with contextlib.suppress(OSError):
                ip_map.delete(ip)

    try:
        for ip, spec_id in ip_spec.items():
            try:
                ip_map.update(ip, spec_id, MapUpdateFlags.NOEXIST)
            except FileExistsError:
                raise ValueError(f"call site address {ip:#x} of {path} is already attached through this program's "
                                 "__bpf_usdt_ip_to_spec_id (another attach of the same probe at the same address: "
                                 "without BPF cookies, kernels before 5.15, one attach per address)") from None
            written.append(ip)
        for (off, _, _), sema in zip(targets, refs):
            event = open_uprobe(path, off, pid=-1 if pid is None else pid, ref_ctr_offset=sema)
            parts.append(attach_ioctl(prog, event))
        link = UsdtLink(os.dup(parts[0].fileno()), attach_type=AttachType.PERF_EVENT)
    except BaseException:
        forget()
        raise
    link._forget = forget
    return link


def attach_section(prog: Program, section_name: str, *, pid: int | None = None,
                   cookie: int = 0) -> UsdtLink | None:
    """Attach by section name, as libbpf's auto-attach: ``usdt/BINARY:PROVIDER:NAME`` (also ``usdt.s/...``).

    Plain ``SEC("usdt")`` carries no target: returns None (as libbpf, which skips it). ``ValueError`` for any
    other malformed name.

    >>> # not run as a doctest: needs a loaded usdt program `prog` and Debian's python3.11
    >>> attach_section(prog, "usdt//usr/bin/python3.11:python:function__entry")  # doctest: +SKIP
    <UsdtLink python:function__entry in /usr/bin/python3.11 uprobe_multi 1 site(s) fd=7>
    """
    if not isinstance(section_name, str):
        raise TypeError(f"section_name must be a str, not {type(section_name).__name__}")
    kind, sep, target = section_name.partition("/")
    if kind not in ("usdt", "usdt.s"):
        raise ValueError(f"section {section_name!r} is not a usdt section")
    if not sep:
        return None
    parts = target.split(":")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"invalid section {section_name!r}, expected usdt/<path>:<provider>:<name>")
    return attach_usdt(prog, parts[0], parts[1], parts[2], pid=pid, cookie=cookie)


def describe(found: Iterable[UsdtProbe]) -> str:
    """A ``readelf -n``-like text of probes (what ``bpflink usdt list`` prints)."""
    lines = []
    for p in found:
        sema = f" semaphore {p.semaphore:#x}" if p.semaphore else ""
        lines.append(f"{p.provider}:{p.name} ({len(p.sites)} site{'s' if len(p.sites) != 1 else ''}){sema}")
        for s in p.sites:
            where = f"offset {s.offset:#x}" if s.offset is not None else "no executable segment"
            sema_off = f" ref_ctr_offset {s.semaphore_offset:#x}" if s.semaphore_offset else ""
            lines.append(f"  {s.address:#x} ({where}){sema_off}  args: {s.arg_spec or '(none)'}")
            if s.args is not None and s.args:
                lines.append("    " + ", ".join(str(a) for a in s.args))
            elif s.args_error:
                lines.append(f"    ({s.args_error})")
    return "\n".join(lines)


__all__ = ["SPEC_SIZE", "UsdtArg", "UsdtLink", "UsdtProbe", "UsdtSite", "attach_section", "attach_usdt",
           "decode_args", "describe", "encode_spec", "list_probes", "probes"]
