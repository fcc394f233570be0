"""Where to probe: ELF symbol -> file offset (uprobes), kernel symbol -> address (kallsyms), BTF ids.

ELF files are read through libelf (elfutils, linked into ``bpflink._ffi``), which checks every section and
segment against the file's size; what it hands back is walked with bounds from those sizes. A malformed file is
a ``ValueError`` naming it (never ``struct.error``/``IndexError`` or a runaway allocation); only regular files are
opened, with ``O_NONBLOCK``, so a FIFO or device given by mistake is refused instead of blocking.

>>> # not run as a doctest: offsets and ids differ per build of libc, python and the kernel
>>> off = symbol_offset("/usr/lib/x86_64-linux-gnu/libc.so.6", "getpid")  # doctest: +SKIP
>>> symbol_offset("/usr/lib/x86_64-linux-gnu/libc.so.6", "memcpy@GLIBC_2.2.5")  # doctest: +SKIP
>>> match_symbols("/usr/bin/python3.11", "PyObject_Get*")  # doctest: +SKIP
{'PyObject_GetAttr': 1200208, ...}
>>> btf_id("do_nanosleep")  # doctest: +SKIP
12345

uprobes take *file* offsets: a function's ``st_value`` is a virtual address, so the offset is
``st_value - p_vaddr + p_offset`` of the ``PT_LOAD`` segment holding it (the section's ``sh_addr``/``sh_offset``
for files without program headers). Names: ``"malloc"`` (the default version when several exist),
``"malloc@@GLIBC_2.2.5"`` (that default version), ``"memcpy@GLIBC_2.2.5"`` (that version). Stripped files:
the symbols of ``.gnu_debugdata`` (the xz-compressed "MiniDebugInfo" Fedora and others ship) and of a separate
debug file found through ``.gnu_debuglink``/the build id under ``/usr/lib/debug`` are used too.
"""

from __future__ import annotations

import fnmatch
import lzma
import os
import stat
import struct
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, NamedTuple

_SHT_SYMTAB, _SHT_DYNSYM, _SHT_NOBITS, _SHT_STRTAB, _SHT_NOTE = 2, 11, 8, 3, 7
_SHT_GNU_VERDEF, _SHT_GNU_VERSYM = 0x6FFFFFFD, 0x6FFFFFFF
_SHN_UNDEF, _SHN_LORESERVE = 0, 0xFF00
_STT_FUNC, _STT_GNU_IFUNC = 2, 10
_STB_LOCAL = 0
_VMLINUX_BTF = "/sys/kernel/btf/vmlinux"
_DEBUG_DIR = "/usr/lib/debug"
_MAX_DEBUGDATA = 256 << 20  # a decompressed .gnu_debugdata larger than this is refused, not allocated


class ElfSymbol(NamedTuple):
    """One defined symbol: its virtual address, size, ELF type (``STT_*``), binding and file offset.

    ``version``: its symbol version (``GLIBC_2.2.5``) or None; ``default``: whether that version is the one
    unversioned references bind to (``name@@VERSION``) rather than a hidden one (``name@VERSION``).
    """

    name: str
    value: int
    size: int
    type: int
    bind: int
    offset: int
    version: str | None = None
    default: bool = True


def open_regular(path: str | bytes | os.PathLike[str] | os.PathLike[bytes], what: str = "file") -> int:
    """An O_RDONLY fd of ``path`` after checking it is a regular file (opened O_NONBLOCK: a FIFO never blocks)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except IsADirectoryError:
        raise ValueError(f"{what} {os.fsdecode(path)!r} is a directory, not a regular file") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ValueError(f"{what} {os.fsdecode(path)!r} is not a regular file")
    return fd


class _Elf:
    """One libelf handle (from an fd or from memory), ended on exit."""

    def __init__(self, where: str, *, fd: int = -1, image: bytes | None = None) -> None:
        from . import lowlevel as ll

        ffi = ll.ffi
        self.ffi, self.ll, self.where = ffi, ll, where
        ll.elf_version(ll.EV_CURRENT)  # libelf refuses every call until told the version
        self._image = None
        if image is not None:
            self._image = ffi.new("char[]", image)  # libelf reads it in place: kept alive with the handle
            self.elf = ll.elf_memory(self._image, len(image))
        else:
            self.elf = ll.elf_begin(fd, ll.ELF_C_READ, ffi.NULL)
        if self.elf == ffi.NULL:
            raise self.error("cannot be read as ELF")
        if ll.elf_kind(self.elf) != ll.ELF_K_ELF:
            self.close()
            raise ValueError(f"{where} is not an ELF file")

    def check_tables(self, size: int) -> None:
        """Refuse header tables that lie (partly) outside the file: a truncated or corrupted file."""
        ehdr = self.ffi.new("GElf_Ehdr *")
        if self.ll.gelf_getehdr(self.elf, ehdr) == self.ffi.NULL:
            raise self.error("has an unreadable ELF header")
        tables = (("section header", ehdr.e_shoff, ehdr.e_shnum, ehdr.e_shentsize),
                  ("program header", ehdr.e_phoff, ehdr.e_phnum, ehdr.e_phentsize))
        for what, off, num, entsize in tables:
            if off and (off > size or off + num * entsize > size):
                raise ValueError(f"{self.where}: malformed ELF (its {what} table at {off:#x} lies outside the "
                                 f"{size}-byte file: truncated?)")

    def error(self, what: str) -> ValueError:
        msg = self.ffi.string(self.ll.elf_errmsg(-1)).decode(errors="replace")
        return ValueError(f"{self.where} {what}: malformed ELF ({msg})")

    def close(self) -> None:
        if self.elf is not None and self.elf != self.ffi.NULL:
            self.ll.elf_end(self.elf)
        self.elf = None

    def __enter__(self) -> _Elf:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def data(self, scn: Any, raw: bool = False) -> bytes:
        if scn == self.ffi.NULL:
            return b""
        d = (self.ll.elf_rawdata if raw else self.ll.elf_getdata)(scn, self.ffi.NULL)
        if d == self.ffi.NULL:
            raise self.error("has a section whose contents lie outside the file")
        if d.d_buf == self.ffi.NULL or d.d_size == 0:
            return b""
        return bytes(self.ffi.buffer(d.d_buf, d.d_size))

    def sections(self, limit: int) -> list[tuple[Any, Any]]:
        """(scn, shdr) per section; ``limit`` bounds the count (headers cannot outnumber the file's bytes)."""
        ffi, ll = self.ffi, self.ll
        n = ffi.new("size_t *")
        if ll.elf_getshdrnum(self.elf, n) != 0:
            raise self.error("has an unreadable section count")
        if n[0] > limit:
            raise ValueError(f"{self.where}: malformed ELF (claims {n[0]} sections in {limit} bytes)")
        out: list[tuple[Any, Any]] = [(ffi.NULL, ffi.new("GElf_Shdr *"))] if n[0] else []  # index 0: SHN_UNDEF
        scn = ll.elf_nextscn(self.elf, ffi.NULL)  # starts at section 1
        while scn != ffi.NULL and len(out) < n[0]:
            shdr = ffi.new("GElf_Shdr *")
            if ll.gelf_getshdr(scn, shdr) == ffi.NULL:
                raise self.error("has an unreadable section header")
            out.append((scn, shdr))
            scn = ll.elf_nextscn(self.elf, scn)
        return out

    def loads(self, limit: int) -> list[tuple[int, int, int, int]]:
        """(p_vaddr, p_memsz, p_offset, p_filesz) of every PT_LOAD segment."""
        ffi, ll = self.ffi, self.ll
        n = ffi.new("size_t *")
        if ll.elf_getphdrnum(self.elf, n) != 0:
            return []  # relocatable objects have none
        if n[0] > limit:
            raise ValueError(f"{self.where}: malformed ELF (claims {n[0]} program headers in {limit} bytes)")
        out = []
        ph = ffi.new("GElf_Phdr *")
        for i in range(n[0]):
            if ll.gelf_getphdr(self.elf, i, ph) == ffi.NULL:
                raise self.error("has an unreadable program header")
            if ph.p_type == ll.PT_LOAD:
                out.append((int(ph.p_vaddr), int(ph.p_memsz), int(ph.p_offset), int(ph.p_filesz)))
        return out


def _read(path: str) -> bytes:
    fd = open_regular(path)
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def _cstr(table: bytes, off: int) -> str | None:
    if off >= len(table):
        return None
    end = table.find(b"\0", off)
    return table[off:end if end >= 0 else len(table)].decode("utf-8", "surrogateescape")


def _verdefs(data: bytes, strings: bytes, where: str) -> dict[int, str]:
    """Version index -> name from ``.gnu.version_d`` (in host byte order, as libelf converts it)."""
    out: dict[int, str] = {}
    pos, seen = 0, 0
    while pos + 20 <= len(data) and seen <= len(data) // 20:
        _ver, _flags, ndx, cnt, _hash, aux, nxt = struct.unpack_from("=HHHHIII", data, pos)
        if cnt and pos + aux + 8 <= len(data):
            name = _cstr(strings, struct.unpack_from("=I", data, pos + aux)[0])
            if name is not None:
                out[ndx & 0x7FFF] = name
        if nxt == 0:
            break
        pos += nxt
        seen += 1
    return out


def _name_offsets(strings: bytes, wanted: set[str]) -> set[int]:
    """Where names ``wanted`` (or their ``name@VERSION`` forms) may start in a string table. Linkers merge
    suffixes ("malloc" is the tail of "__libc_malloc"), so every occurrence counts, not only those after a NUL."""
    out: set[int] = set()
    for name in wanted:
        raw = name.encode("utf-8", "surrogateescape")
        for needle in (raw + b"\0", raw + b"@"):
            pos = strings.find(needle)
            while pos >= 0:
                out.add(pos)
                pos = strings.find(needle, pos + 1)
    return out


def _parse(elf: _Elf, size: int, loads: list[tuple[int, int, int, int]] | None = None, *,
           debug_file: bool = False, wanted: set[str] | None = None) -> tuple[list[ElfSymbol], dict[str, Any]]:
    """The defined symbols of one ELF handle (only names ``wanted`` if given: a scan of the st_name column
    instead of every entry), plus what the caller may need next (debuglink, build id)."""
    where = elf.where
    sections = elf.sections(size // 40 + 1)
    if loads is None:
        loads = elf.loads(size // 32 + 1)
    hdrs = [(int(h.sh_type), int(h.sh_addr), int(h.sh_offset), int(h.sh_size), int(h.sh_link), int(h.sh_name))
            for _s, h in sections]
    shstrndx = elf.ffi.new("size_t *")
    names: list[str] = []
    if elf.ll.elf_getshdrstrndx(elf.elf, shstrndx) == 0 and shstrndx[0] < len(sections):
        table = elf.data(sections[shstrndx[0]][0]) if hdrs[shstrndx[0]][0] == _SHT_STRTAB else b""
        names = [_cstr(table, h[5]) or "" for h in hdrs]
    else:
        names = [""] * len(hdrs)
    extra: dict[str, Any] = {}
    for i, n in enumerate(names):
        if n in (".gnu_debugdata", ".gnu_debuglink", ".note.gnu.build-id") and hdrs[i][0] != _SHT_NOBITS:
            extra[n] = elf.data(sections[i][0], raw=n == ".gnu_debugdata")
    versym: dict[int, list[int]] = {}  # dynsym section index -> version index per symbol
    verdef: dict[int, str] = {}
    for i, h in enumerate(hdrs):
        if h[0] == _SHT_GNU_VERSYM and h[4] < len(hdrs):
            raw = elf.data(sections[i][0])
            versym[h[4]] = list(struct.unpack(f"={len(raw) // 2}H", raw[:len(raw) // 2 * 2]))
        elif h[0] == _SHT_GNU_VERDEF and h[4] < len(hdrs):
            verdef = _verdefs(elf.data(sections[i][0]), elf.data(sections[h[4]][0]), where)
    is64 = elf.ll.gelf_getclass(elf.elf) == elf.ll.ELFCLASS64
    fmt = struct.Struct("=IBBHQQ" if is64 else "=IIIBBH")
    out: list[ElfSymbol] = []
    last_seg: tuple[int, int, int, int] | None = None
    for i, h in enumerate(hdrs):
        if h[0] not in (_SHT_SYMTAB, _SHT_DYNSYM):
            continue
        if h[4] >= len(hdrs) or hdrs[h[4]][0] != _SHT_STRTAB:
            raise ValueError(f"{where}: malformed ELF (symbol table {i} links to section {h[4]}, not a string "
                             "table)")
        raw = elf.data(sections[i][0])
        strings = elf.data(sections[h[4]][0])
        vers = versym.get(i, [])
        whole = raw[:len(raw) - len(raw) % fmt.size]
        if wanted is None:
            entries: Iterable[tuple[int, tuple[int, ...]]] = enumerate(fmt.iter_unpack(whole))
        else:
            offs = _name_offsets(strings, wanted)
            column = memoryview(whole).cast("I")[::fmt.size // 4]  # st_name is each entry's first word
            entries = [(k, fmt.unpack_from(whole, k * fmt.size)) for k, n in enumerate(column) if n in offs]
        for k, f in entries:
            if is64:
                name_off, info, _other, shndx, value, ssize = f
            else:
                name_off, value, ssize, info, _other, shndx = f
            if shndx == _SHN_UNDEF or shndx >= _SHN_LORESERVE or not name_off or shndx >= len(hdrs):
                continue  # imported, absolute or common: nothing in this file to probe
            if hdrs[shndx][0] == _SHT_NOBITS and not debug_file:
                continue  # .bss: no bytes in the file (a debug file's .text is NOBITS too: kept)
            name = _cstr(strings, name_off)
            if not name:
                continue
            seg = last_seg  # symbols come grouped by segment: try the last one first
            if seg is None or not seg[0] <= value < seg[0] + seg[3]:
                seg = next((ld for ld in loads if ld[0] <= value < ld[0] + ld[3]), None)
                last_seg = seg
            if seg is not None:
                offset = value - seg[0] + seg[2]
            elif loads:
                continue  # outside every loaded byte of the file: not probeable
            else:
                offset = value - hdrs[shndx][1] + hdrs[shndx][2]  # no program headers: the section's place
            version, default = None, True
            if "@" in name:  # .symtab names of .symver'ed symbols carry their version
                base, _, rest = name.partition("@")
                default = rest.startswith("@")
                name, version = base, rest.lstrip("@")
            elif k < len(vers) and (vers[k] & 0x7FFF) > 1:
                version = verdef.get(vers[k] & 0x7FFF)
                default = not vers[k] & 0x8000
            out.append(ElfSymbol(name, value, ssize, info & 0xF, info >> 4, offset, version, default))
    return out, extra


def _build_id(note: bytes) -> str | None:
    pos = 0
    while pos + 12 <= len(note):
        namesz, descsz, ntype = struct.unpack_from("=III", note, pos)
        name_end = pos + 12 + (namesz + 3) // 4 * 4
        desc_end = name_end + (descsz + 3) // 4 * 4
        if desc_end > len(note):
            return None
        if ntype == 3 and note[pos + 12:pos + 12 + namesz].rstrip(b"\0") == b"GNU":
            return note[name_end:name_end + descsz].hex()
        pos = desc_end
    return None


def _debug_candidates(path: str, extra: dict[str, Any]) -> list[str]:
    out = []
    bid = _build_id(extra.get(".note.gnu.build-id", b""))
    if bid and len(bid) > 2:
        out.append(f"{_DEBUG_DIR}/.build-id/{bid[:2]}/{bid[2:]}.debug")
    link = extra.get(".gnu_debuglink", b"")
    name = _cstr(link, 0) if link else None
    if name and "/" not in name:
        d = os.path.dirname(os.path.abspath(path))
        out += [os.path.join(d, name), os.path.join(d, ".debug", name), f"{_DEBUG_DIR}{d}/{name}"]
    return out


def _read_elf_symbols(path: str, wanted: set[str] | None = None) -> list[ElfSymbol]:
    fd = open_regular(path, "ELF file")
    try:
        size = os.fstat(fd).st_size
        with _Elf(path, fd=fd) as elf:
            elf.check_tables(size)
            loads = elf.loads(size // 32 + 1)
            for _vaddr, _memsz, off, filesz in loads:
                if off + filesz > size:
                    raise ValueError(f"{path}: malformed ELF (a loadable segment at {off:#x} ends past the "
                                     f"{size}-byte file: truncated?)")
            syms, extra = _parse(elf, size, loads, wanted=wanted)
    finally:
        os.close(fd)
    has_symtab = any(s.bind == _STB_LOCAL for s in syms)
    if wanted is not None and {s.name for s in syms} >= wanted:
        return syms  # every name found: no debug file needed
    packed = extra.get(".gnu_debugdata")
    if packed and not has_symtab:
        try:
            image = lzma.LZMADecompressor().decompress(packed, max_length=_MAX_DEBUGDATA)
        except lzma.LZMAError as exc:
            raise ValueError(f"{path}: malformed .gnu_debugdata ({exc})") from None
        with _Elf(f"{path} (.gnu_debugdata)", image=image) as mini:
            syms += _parse(mini, len(image), loads, debug_file=True, wanted=wanted)[0]
        has_symtab = True
    if not has_symtab:
        for cand in _debug_candidates(path, extra):
            if os.path.isfile(cand):
                dfd = open_regular(cand, "debug file")
                try:
                    with _Elf(cand, fd=dfd) as dbg:
                        syms += _parse(dbg, os.fstat(dfd).st_size, loads, debug_file=True, wanted=wanted)[0]
                except ValueError:
                    continue  # a stale or foreign debug file: the file's own symbols still serve
                finally:
                    os.close(dfd)
                break
    return syms


_FULL: set[tuple[str, tuple[int, int, int, int]]] = set()  # what _symbols_cached holds (approximately: LRU)


@lru_cache(maxsize=32)
def _symbols_cached(path: str, _key: tuple[int, int, int, int]) -> dict[str, tuple[ElfSymbol, ...]]:
    if len(_FULL) > 256:
        _FULL.clear()
    _FULL.add((path, _key))
    table: dict[str, list[ElfSymbol]] = {}
    seen: set[tuple[str, int, str | None]] = set()
    for s in _read_elf_symbols(path):
        key = (s.name, s.offset, s.version)
        if key not in seen:  # .symtab and .dynsym repeat most symbols
            seen.add(key)
            table.setdefault(s.name, []).append(s)
    return {name: tuple(v) for name, v in table.items()}


def clear_cache() -> None:
    """Forget every ELF symbol table read so far."""
    _symbols_cached.cache_clear()
    _FULL.clear()


def elf_symbols(path: str | os.PathLike[str]) -> dict[str, tuple[ElfSymbol, ...]]:
    """Every defined symbol of an ELF file (``.symtab``, ``.dynsym``, MiniDebugInfo), by unversioned name.

    Cached per file version (device, inode, size, mtime). ``ValueError`` names a file that is not a regular
    file, not ELF, or malformed.
    """
    spath = os.fspath(path)
    if not isinstance(spath, str):
        raise TypeError(f"path must be a str or os.PathLike[str], not {type(path).__name__}")
    if not spath or "\0" in spath:
        raise ValueError(f"path must be a non-empty file name without NUL, got {path!r}")
    st = os.stat(spath)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"ELF file {spath!r} is not a regular file")
    return _symbols_cached(spath, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))


def _table_for(path: str, bases: set[str]) -> dict[str, tuple[ElfSymbol, ...]]:
    """The symbols ``bases`` of ``path``: from the cached full table when there is one, else by a scan for just
    those names (a cold lookup in libc costs ~3 ms instead of ~60 ms); the full table when one is missing."""
    st = os.stat(path) if isinstance(path, str) and path and "\0" not in path else None
    if st is None or not stat.S_ISREG(st.st_mode) or len(bases) > 64:
        return elf_symbols(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if (path, key) in _FULL:
        return _symbols_cached(path, key)
    table: dict[str, list[ElfSymbol]] = {}
    seen: set[tuple[str, int, str | None]] = set()
    for s in _read_elf_symbols(path, bases):
        if s.name in bases and (s.name, s.offset, s.version) not in seen:
            seen.add((s.name, s.offset, s.version))
            table.setdefault(s.name, []).append(s)
    if not bases <= set(table):
        return elf_symbols(path)  # a name is missing: the full read gives the same answer and fills the cache
    return {name: tuple(v) for name, v in table.items()}


def _split_version(name: str) -> tuple[str, str | None, bool | None]:
    """``"malloc@@GLIBC_2.2.5"`` -> (malloc, GLIBC_2.2.5, True); ``"a@V"`` -> (a, V, None); ``"a"`` -> (a, None,
    None)."""
    if "@@" in name:
        base, _, ver = name.partition("@@")
        return base, ver, True
    if "@" in name:
        base, _, ver = name.partition("@")
        return base, ver, None
    return name, None, None


def _pick(path: str, name: str, found: tuple[ElfSymbol, ...]) -> ElfSymbol:
    base, version, default = _split_version(name)
    if version is not None:
        found = tuple(s for s in found if s.version == version and (default is None or s.default))
        if not found:
            raise KeyError(f"{path} defines no symbol {name!r} (no such version of {base!r})")
    funcs = [s for s in found if s.type == _STT_FUNC]
    if not funcs:
        kinds = "an IFUNC resolver (probe the implementation instead)" if any(
            s.type == _STT_GNU_IFUNC for s in found) else "not a function"
        raise ValueError(f"symbol {name!r} of {path} is {kinds}")
    if len({s.offset for s in funcs}) > 1:  # a global one wins over file-local copies, a default version too
        funcs = [s for s in funcs if s.bind != _STB_LOCAL] or funcs
    if len({s.offset for s in funcs}) > 1:
        funcs = [s for s in funcs if s.default] or funcs
    if len({s.offset for s in funcs}) > 1:
        raise ValueError(f"symbol {name!r} of {path} is ambiguous: defined at file offsets "
                         + ", ".join(hex(s.offset) for s in funcs))
    return funcs[0]


def symbol_offsets(path: str | os.PathLike[str], names: Iterable[str]) -> list[int]:
    """The file offsets of functions ``names`` in ELF ``path`` (executable or shared library).

    A name may carry a version: ``malloc@@GLIBC_2.2.5`` (the default one) or ``memcpy@GLIBC_2.2.5``.
    ``KeyError`` names the first symbol that is missing; ``ValueError`` for a symbol that is not a function
    or is defined at several places, and for a file that is not a readable ELF file.
    """
    spath = os.fspath(path)
    name_list = list(names)
    for name in name_list:
        if not isinstance(name, str):
            raise TypeError(f"symbol names must be str, not {type(name).__name__}")
    table = _table_for(spath, {_split_version(n)[0] for n in name_list})
    out = []
    for name in name_list:
        found = table.get(_split_version(name)[0])
        if not found:
            raise KeyError(f"{spath} defines no symbol {name!r} (stripped binary, or a typo?)")
        out.append(_pick(spath, name, found).offset)
    return out


def symbol_offset(path: str | os.PathLike[str], name: str) -> int:
    """The file offset of function ``name`` in ELF ``path``, for ``opts.UprobeMulti`` or ``perf.open_uprobe``."""
    return symbol_offsets(path, [name])[0]


def match_symbols(path: str | os.PathLike[str], pattern: str, *, unique_match: bool = False) -> dict[str, int]:
    """Functions of ELF ``path`` whose names match glob ``pattern`` (``*``, ``?``, ``[...]``): name -> file offset.

    Names defined at one offset under several names are kept once (the first name, sorted). With
    ``unique_match`` (libbpf's option) exactly one function must match, else ``ValueError``. No match at all is
    a ``KeyError``.
    """
    if not isinstance(pattern, str) or not pattern:
        raise TypeError(f"pattern must be a non-empty str, got {pattern!r}")
    spath = os.fspath(path)
    table = elf_symbols(spath)
    out: dict[str, int] = {}
    seen: set[int] = set()
    for name in sorted(table):
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        funcs = [s for s in table[name] if s.type == _STT_FUNC]
        if not funcs:
            continue
        try:
            off = _pick(spath, name, tuple(funcs)).offset
        except ValueError:
            continue  # defined at several places: a glob cannot say which
        if off not in seen:
            seen.add(off)
            out[name] = off
    if not out:
        raise KeyError(f"no function of {spath} matches {pattern!r}")
    if unique_match and len(out) != 1:
        raise ValueError(f"{pattern!r} must match exactly one function of {spath} (unique_match), matched "
                         f"{len(out)}: {', '.join(list(out)[:5])}{', ...' if len(out) > 5 else ''}")
    return out


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


__all__ = ["BTF_KINDS", "ElfSymbol", "btf_id", "clear_cache", "elf_symbols", "kallsyms_address", "match_symbols",
           "open_regular", "symbol_offset", "symbol_offsets"]
