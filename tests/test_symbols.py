"""bpflink.symbols against the system's own tools: file offsets as readelf computes them (PIE, non-PIE,
shared library, libc), BTF ids as bpftool lists them, addresses as /proc/kallsyms has them."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from bpflink import symbols
from test_soak import file_offset  # readelf-based, written independently of bpflink.symbols
from tracehelp import FUNCS, Binaries, build_binaries

LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")


@pytest.fixture(scope="module")
def bins(tmp_path_factory: pytest.TempPathFactory) -> Binaries:
    return build_binaries(tmp_path_factory.mktemp("symbols"))


@pytest.mark.hostonly
@pytest.mark.parametrize("kind", ["pie", "nopie", "with_lib"])
def test_offsets_match_readelf(bins: Binaries, kind: str) -> None:
    binary = getattr(bins, kind)
    assert symbols.symbol_offsets(binary, FUNCS) == [file_offset(binary, f) for f in FUNCS]


@pytest.mark.hostonly
def test_shared_library_and_libc_dynsym(bins: Binaries) -> None:
    assert symbols.symbol_offset(bins.lib, "bpflink_lib_fn") == file_offset(bins.lib, "bpflink_lib_fn")
    if not LIBC.exists():
        pytest.skip(f"no {LIBC} on this architecture")
    # libc is stripped of .symtab: getpid comes from .dynsym (readelf prints it as getpid@@GLIBC_...)
    out = subprocess.run(["readelf", "-sWD", str(LIBC)], check=True, capture_output=True, text=True).stdout
    line = next(ln.split() for ln in out.splitlines() if re.search(r"\sgetpid(@@\S+)?$", ln))
    value = int(line[1], 16)
    got = symbols.symbol_offset(LIBC, "getpid")
    text = next(s for s in symbols.elf_symbols(LIBC)["getpid"])
    assert text.value == value and got == text.offset


@pytest.mark.hostonly
def test_symbol_errors(bins: Binaries, tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="bpflink_nope"):
        symbols.symbol_offset(bins.pie, "bpflink_nope")
    not_elf = tmp_path / "x.txt"
    not_elf.write_text("hello")
    with pytest.raises(ValueError, match="not an ELF"):
        symbols.symbol_offset(not_elf, "main")
    data = tmp_path / "data.c"
    data.write_text("int bpflink_data = 3; int main(void) { return bpflink_data; }\n")
    subprocess.run(["gcc", "-o", str(tmp_path / "data"), str(data)], check=True)
    with pytest.raises(ValueError, match="not a function"):
        symbols.symbol_offset(tmp_path / "data", "bpflink_data")


@pytest.mark.parametrize(("name", "kind", "bpftool_kind"), [("security_task_getpgid", "func", "FUNC"),
                                                            ("do_nanosleep", "func", "FUNC"),
                                                            ("task_struct", "struct", "STRUCT")])
def test_btf_ids_match_bpftool(name: str, kind: str, bpftool_kind: str) -> None:
    bpftool = shutil.which("bpftool")
    if bpftool is None:
        pytest.fail("bpftool is missing: run scripts/setup")
    out = subprocess.run([bpftool, "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "raw"],
                         check=True, capture_output=True, text=True).stdout
    m = re.search(rf"^\[(\d+)\] {bpftool_kind} '{name}'", out, re.M)
    assert m, f"bpftool lists no {bpftool_kind} {name}"
    assert symbols.btf_id(name, kind) == int(m.group(1))


def test_btf_errors() -> None:
    with pytest.raises(KeyError):
        symbols.btf_id("bpflink_no_such_function")
    with pytest.raises(ValueError, match="kind"):
        symbols.btf_id("do_nanosleep", "function")


def test_kallsyms_address() -> None:
    with open("/proc/kallsyms") as f:
        want = next(int(ln.split()[0], 16) for ln in f if ln.split()[2] == "security_task_getpgid")
    assert symbols.kallsyms_address("security_task_getpgid") == want != 0
    with pytest.raises(KeyError):
        symbols.kallsyms_address("bpflink_no_such_function")


# --- libelf-based reading: versions, segments, stripped files, malformed input --------------------------------
def _load_offset(binary: Path, value: int) -> int:
    """File offset of virtual address ``value`` from readelf's PT_LOAD segments (independent of bpflink)."""
    out = subprocess.run(["readelf", "-lW", str(binary)], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            off, vaddr, filesz = int(f[1], 16), int(f[2], 16), int(f[4], 16)
            if vaddr <= value < vaddr + filesz:
                return value - vaddr + off
    raise LookupError(hex(value))


@pytest.mark.hostonly
@pytest.mark.parametrize("name", ["malloc@@GLIBC_2.2.5", "memcpy@GLIBC_2.2.5", "malloc"])
def test_versioned_symbols_match_readelf(name: str) -> None:
    if not LIBC.exists():
        pytest.skip(f"no {LIBC} on this architecture")
    out = subprocess.run(["readelf", "-sW", str(LIBC)], check=True, capture_output=True, text=True).stdout
    full = name if "@" in name else name + "@@"
    f = next(ln.split() for ln in out.splitlines() if len(ln.split()) >= 8 and ln.split()[7].startswith(full)
             and ln.split()[3] == "FUNC")
    assert symbols.symbol_offset(LIBC, name) == _load_offset(LIBC, int(f[1], 16))


@pytest.mark.hostonly
def test_version_errors() -> None:
    if not LIBC.exists():
        pytest.skip(f"no {LIBC} on this architecture")
    with pytest.raises(ValueError, match="IFUNC"):
        symbols.symbol_offset(LIBC, "memcpy@@GLIBC_2.14")
    with pytest.raises(KeyError, match="no such version"):
        symbols.symbol_offset(LIBC, "malloc@GLIBC_9.9")


@pytest.mark.hostonly
def test_globs_and_unique_match(bins: Binaries) -> None:
    found = symbols.match_symbols(bins.pie, "bpflink_t_*")
    assert found == dict(zip(sorted(FUNCS), [file_offset(bins.pie, f) for f in sorted(FUNCS)]))
    assert symbols.match_symbols(bins.pie, "bpflink_t_tw?", unique_match=True) == {
        "bpflink_t_two": file_offset(bins.pie, "bpflink_t_two")}
    with pytest.raises(ValueError, match="exactly one"):
        symbols.match_symbols(bins.pie, "bpflink_t_*", unique_match=True)
    with pytest.raises(KeyError, match="no function"):
        symbols.match_symbols(bins.pie, "bpflink_zz*")


def _tool(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@pytest.mark.hostonly
def test_stripped_with_gnu_debugdata_and_debuglink(bins: Binaries, tmp_path: Path) -> None:
    if not all(shutil.which(t) for t in ("objcopy", "strip", "xz")):
        pytest.fail("binutils/xz missing: run scripts/setup")
    want = [file_offset(bins.pie, f) for f in FUNCS]
    # MiniDebugInfo as Fedora builds it: the function symbols in an xz-compressed ELF inside .gnu_debugdata
    mini, stripped = tmp_path / "mini", tmp_path / "stripped"
    _tool("objcopy", "--only-keep-debug", "--strip-debug", str(bins.pie), str(mini))
    _tool("xz", "-k", str(mini))
    _tool("strip", "--strip-all", "-o", str(stripped), str(bins.pie))
    with pytest.raises(KeyError):
        symbols.symbol_offsets(stripped, FUNCS)
    packed = tmp_path / "packed"
    _tool("objcopy", "--add-section", f".gnu_debugdata={mini}.xz", str(stripped), str(packed))
    assert symbols.symbol_offsets(packed, FUNCS) == want
    # a separate debug file next to it, named by .gnu_debuglink
    debug, linked = tmp_path / "app.debug", tmp_path / "linked"
    _tool("objcopy", "--only-keep-debug", str(bins.pie), str(debug))
    _tool("objcopy", f"--add-gnu-debuglink={debug}", str(stripped), str(linked))
    assert symbols.symbol_offsets(linked, FUNCS) == want


_MALFORMED = r'''
import os, resource, struct, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from bpflink import symbols
path = sys.argv[1]
try:
    symbols.symbol_offset(path, "bpflink_t_one")
except ValueError as exc:
    print("ValueError", path in str(exc), exc)
except KeyError as exc:
    print("KeyError", path in str(exc), exc)
else:
    print("resolved")
'''


def _mutations(src: bytes) -> dict[str, bytes]:
    shoff, = struct.unpack_from("<Q", src, 0x28)
    shentsize, shnum, _shstrndx = struct.unpack_from("<HHH", src, 0x3A)
    out = {}
    huge = bytearray(src)  # e_shnum = 0: the count is read from section 0's sh_size, here 2**62
    struct.pack_into("<H", huge, 0x3C, 0)
    struct.pack_into("<Q", huge, shoff + 0x20, 1 << 62)
    out["shnum_in_section0"] = bytes(huge)
    out["truncated"] = src[: len(src) // 3]
    out["header_only"] = src[:64]
    bad_link = bytearray(src)
    for i in range(shnum):
        if struct.unpack_from("<I", src, shoff + i * shentsize + 4)[0] in (2, 11):  # SYMTAB/DYNSYM
            struct.pack_into("<I", bad_link, shoff + i * shentsize + 0x28, 0xFFFF)
    out["sh_link_out_of_range"] = bytes(bad_link)
    odd = bytearray(src)
    for i in range(shnum):
        if struct.unpack_from("<I", src, shoff + i * shentsize + 4)[0] in (2, 11):
            struct.pack_into("<Q", odd, shoff + i * shentsize + 0x38, 7)
            struct.pack_into("<Q", odd, shoff + i * shentsize + 0x20, (1 << 40) + 3)  # sh_size past the file
    out["odd_entsize_and_size"] = bytes(odd)
    offs = bytearray(src)
    struct.pack_into("<Q", offs, 0x28, (1 << 63) + 5)  # e_shoff far past the file
    out["shoff_past_end"] = bytes(offs)
    return out


@pytest.mark.hostonly
def test_malformed_elf_is_a_valueerror_naming_the_file(bins: Binaries, tmp_path: Path) -> None:
    import sys

    for name, data in _mutations(bins.pie.read_bytes()).items():
        path = tmp_path / name
        path.write_bytes(data)
        res = subprocess.run([sys.executable, "-c", _MALFORMED, str(path)], capture_output=True, text=True,
                             timeout=30)
        assert res.returncode == 0, (name, res.stderr[-2000:])
        kind, named = res.stdout.split()[:2]
        assert kind == "ValueError" and named == "True" and "malformed" in res.stdout, (name, res.stdout)


@pytest.mark.hostonly
def test_fifo_and_directory_are_refused_without_blocking(tmp_path: Path) -> None:
    import sys

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code = ("from bpflink import symbols, targets\n"
            "for p in (%r, %r):\n"
            "    try: symbols.symbol_offset(p, 'main')\n"
            "    except ValueError as e:\n"
            "        print('ok' if 'not a regular file' in str(e) or 'directory' in str(e) else e)\n"
            "try: targets.resolve_binary(%r)\n"
            "except ValueError as e: print('ok' if 'not a regular file' in str(e) else e)\n") % (
        str(fifo), str(tmp_path), str(fifo))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert res.stdout.split() == ["ok", "ok", "ok"], res.stdout + res.stderr


@pytest.mark.hostonly
def test_targeted_scan_equals_the_full_table(bins: Binaries) -> None:
    cases = [(bins.pie, list(FUNCS)), (bins.lib, ["bpflink_lib_fn"])]
    if LIBC.exists():
        cases.append((LIBC, ["malloc", "malloc@@GLIBC_2.2.5", "memcpy@GLIBC_2.2.5", "getpid", "free"]))
    for path, names in cases:
        symbols.clear_cache()
        scanned = symbols.symbol_offsets(path, names)  # cold: a scan for just these names
        symbols.elf_symbols(path)  # now the full table is cached and used
        assert symbols.symbol_offsets(path, names) == scanned, path
    symbols.clear_cache()
    with pytest.raises(KeyError, match="bpflink_nope"):
        symbols.symbol_offsets(bins.pie, ["bpflink_t_one", "bpflink_nope"])
