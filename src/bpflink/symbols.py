"""Where to probe: ELF symbol -> file offset (uprobes), kernel symbol -> address (kallsyms), BTF ids.

Small readers written with ``struct`` so bpflink needs no ELF or BTF library at run time.

>>> off = symbol_offset("/usr/lib/x86_64-linux-gnu/libc.so.6", "getpid")  # doctest: +SKIP
>>> btf_id("do_nanosleep")  # doctest: +SKIP
12345

uprobe_multi takes *file* offsets: a function's ``st_value`` is a virtual address, so the offset is
``st_value - sh_addr + sh_offset`` of the section holding it. This is right for executables (PIE or not) and
shared libraries alike, which is why libbpf computes it the same way.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

_SHT_SYMTAB, _SHT_DYNSYM, _SHT_NOBITS = 2, 11, 8
_SHN_UNDEF, _SHN_LORESERVE, _SHN_XINDEX = 0, 0xFF00, 0xFFFF
_STT_FUNC, _STT_GNU_IFUNC = 2, 10
_STB_LOCAL = 0
_VMLINUX_BTF = "/sys/kernel/btf/vmlinux"


@dataclass(frozen=True)
class ElfSymbol:
    """One defined symbol: its virtual address, size, ELF type (``STT_*``), binding and file offset."""

    name: str
    value: int
    size: int
    type: int
    bind: int
    offset: int


def _read(path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _parse_elf(data: bytes, where: str) -> list[ElfSymbol]:
    if data[:4] != b"\x7fELF":
        raise ValueError(f"{where} is not an ELF file")
    cls, enc = data[4], data[5]
    if cls not in (1, 2) or enc not in (1, 2):
        raise ValueError(f"{where}: unknown ELF class {cls} or data encoding {enc}")
    e = "<" if enc == 1 else ">"
    is64 = cls == 2
    if is64:
        shoff, = struct.unpack_from(e + "Q", data, 0x28)
        shentsize, shnum = struct.unpack_from(e + "HH", data, 0x3A)
        shdr, sym = e + "IIQQQQIIQQ", e + "IBBHQQ"
    else:
        shoff, = struct.unpack_from(e + "I", data, 0x20)
        shentsize, shnum = struct.unpack_from(e + "HH", data, 0x2E)
        shdr, sym = e + "IIIIIIIIII", e + "IIIBBH"
    if shoff == 0:
        raise ValueError(f"{where} has no section headers (stripped of them): symbols cannot be resolved")
    if shnum == 0:  # more than 0xff00 sections: the real count is in section 0's sh_size
        shnum = struct.unpack_from(shdr, data, shoff)[5]
    # (type, addr, offset, size, link, entsize) per section
    sections = []
    for i in range(shnum):
        f = struct.unpack_from(shdr, data, shoff + i * shentsize)
        sections.append((f[1], f[3], f[4], f[5], f[6], f[9]))
    out: list[ElfSymbol] = []
    for stype, _addr, offset, size, link, entsize in sections:
        if stype not in (_SHT_SYMTAB, _SHT_DYNSYM) or not entsize:
            continue
        strtab = sections[link]
        strings = data[strtab[2]:strtab[2] + strtab[3]]
        for f in struct.iter_unpack(sym, data[offset:offset + size - size % entsize]):
            if is64:
                name_off, info, _other, shndx, value, ssize = f
            else:
                name_off, value, ssize, info, _other, shndx = f
            if shndx == _SHN_UNDEF or shndx >= _SHN_LORESERVE or not name_off or shndx >= len(sections):
                continue  # imported, absolute or common: nothing in this file to probe
            end = strings.find(b"\0", name_off)
            name = strings[name_off:end].decode("utf-8", "surrogateescape")
            sec_type, sec_addr, sec_off = sections[shndx][:3]
            if sec_type == _SHT_NOBITS:
                continue  # .bss: no bytes in the file
            out.append(ElfSymbol(name, value, ssize, info & 0xF, info >> 4, value - sec_addr + sec_off))
    return out


@lru_cache(maxsize=16)
def _symbols_cached(path: str, _mtime_ns: int, _size: int) -> dict[str, tuple[ElfSymbol, ...]]:
    table: dict[str, list[ElfSymbol]] = {}
    for s in _parse_elf(_read(path), path):
        same = table.setdefault(s.name, [])
        if all(o.offset != s.offset for o in same):  # .symtab and .dynsym repeat most symbols
            same.append(s)
    return {name: tuple(v) for name, v in table.items()}


def elf_symbols(path: str | os.PathLike[str]) -> dict[str, tuple[ElfSymbol, ...]]:
    """Every defined symbol of an ELF file (``.symtab`` and ``.dynsym``), by name; cached per file version."""
    spath = os.fspath(path)
    st = os.stat(spath)
    return _symbols_cached(spath, st.st_mtime_ns, st.st_size)


def _pick(path: str, name: str, found: tuple[ElfSymbol, ...]) -> ElfSymbol:
    funcs = [s for s in found if s.type == _STT_FUNC]
    if not funcs:
        kinds = "an IFUNC resolver (probe the implementation instead)" if any(
            s.type == _STT_GNU_IFUNC for s in found) else "not a function"
        raise ValueError(f"symbol {name!r} of {path} is {kinds}")
    if len(funcs) > 1:  # a global one wins over file-local copies of the same name
        funcs = [s for s in funcs if s.bind != _STB_LOCAL] or funcs
    if len({s.offset for s in funcs}) > 1:
        raise ValueError(f"symbol {name!r} of {path} is ambiguous: defined at file offsets "
                         + ", ".join(hex(s.offset) for s in funcs))
    return funcs[0]


def symbol_offsets(path: str | os.PathLike[str], names: Iterable[str]) -> list[int]:
    """The file offsets of functions ``names`` in ELF ``path`` (executable or shared library).

    ``KeyError`` names the first symbol that is missing; ``ValueError`` for a symbol that is not a function
    or is defined at several places.
    """
    spath = os.fspath(path)
    table = elf_symbols(spath)
    out = []
    for name in names:
        found = table.get(name)
        if not found:
            raise KeyError(f"{spath} defines no symbol {name!r} (stripped binary, or a typo?)")
        out.append(_pick(spath, name, found).offset)
    return out


def symbol_offset(path: str | os.PathLike[str], name: str) -> int:
    """The file offset of function ``name`` in ELF ``path``, for ``opts.UprobeMulti`` or ``perf.open_uprobe``."""
    return symbol_offsets(path, [name])[0]


def kallsyms_address(name: str, *, path: str = "/proc/kallsyms") -> int:
    """The kernel address of symbol ``name`` (for ``KprobeMulti(addrs=...)``).

    ``PermissionError`` when the addresses read as 0 (``kernel.kptr_restrict``, or not root).
    """
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 3 and fields[2] == name:
                addr = int(fields[0], 16)
                if addr == 0:
                    raise PermissionError(f"{path} hides addresses (kernel.kptr_restrict, or not root)")
                return addr
    raise KeyError(f"the kernel has no symbol {name!r} in {path}")


# --- BTF -------------------------------------------------------------------------------------------------------
BTF_KINDS = {"int": 1, "ptr": 2, "array": 3, "struct": 4, "union": 5, "enum": 6, "fwd": 7, "typedef": 8,
             "volatile": 9, "const": 10, "restrict": 11, "func": 12, "func_proto": 13, "var": 14, "datasec": 15,
             "float": 16, "decl_tag": 17, "type_tag": 18, "enum64": 19}


def _extra_size(kind: int, vlen: int) -> int:
    """Bytes that follow ``struct btf_type`` for this kind (the BTF format's fixed rules)."""
    if kind in (1, 14, 17):  # INT: encoding word; VAR: linkage; DECL_TAG: component_idx
        return 4
    if kind == 3:  # ARRAY: struct btf_array
        return 12
    if kind in (4, 5, 15, 19):  # members, datasec entries, enum64 values
        return 12 * vlen
    if kind in (6, 13):  # enum values, function parameters
        return 8 * vlen
    return 0


@lru_cache(maxsize=4)
def _btf_index(path: str, _mtime_ns: int) -> dict[tuple[int, str], int]:
    data = _read(path)
    magic = data[:2]
    if magic == b"\x9f\xeb":
        e = "<"
    elif magic == b"\xeb\x9f":
        e = ">"
    else:
        raise ValueError(f"{path} is not raw BTF (magic {magic.hex()})")
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(e + "5I", data, 4)
    types = data[hdr_len + type_off:hdr_len + type_off + type_len]
    strings = data[hdr_len + str_off:hdr_len + str_off + str_len]
    index: dict[tuple[int, str], int] = {}
    pos, type_id = 0, 1  # id 0 is void
    unpack = struct.Struct(e + "III").unpack_from
    while pos < len(types):
        name_off, info, _size_or_type = unpack(types, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        if name_off:
            name = strings[name_off:strings.index(b"\0", name_off)].decode("utf-8", "surrogateescape")
            index.setdefault((kind, name), type_id)  # the first one, as btf__find_by_name_kind does
        pos += 12 + _extra_size(kind, vlen)
        type_id += 1
    return index


def btf_id(name: str, kind: str = "func", *, path: str = _VMLINUX_BTF) -> int:
    """The BTF type id of ``name`` of ``kind`` (``"func"``, ``"struct"``, ...) in the kernel's BTF.

    ``KeyError`` when there is none (module functions live in ``/sys/kernel/btf/<module>``, split BTF that
    this reader does not handle).
    """
    if kind not in BTF_KINDS:
        raise ValueError(f"kind must be one of {', '.join(BTF_KINDS)}, got {kind!r}")
    found = _btf_index(path, os.stat(path).st_mtime_ns).get((BTF_KINDS[kind], name))
    if found is None:
        raise KeyError(f"{path} has no {kind} named {name!r}")
    return found


__all__ = ["BTF_KINDS", "ElfSymbol", "btf_id", "elf_symbols", "kallsyms_address", "symbol_offset",
           "symbol_offsets"]
