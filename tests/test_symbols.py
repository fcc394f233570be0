"""bpflink.symbols against the system's own tools: file offsets as readelf computes them (PIE, non-PIE,
shared library, libc), BTF ids as bpftool lists them, addresses as /proc/kallsyms has them."""

from __future__ import annotations

import re
import shutil
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


@pytest.mark.parametrize("kind", ["pie", "nopie", "with_lib"])
def test_offsets_match_readelf(bins: Binaries, kind: str) -> None:
    binary = getattr(bins, kind)
    assert symbols.symbol_offsets(binary, FUNCS) == [file_offset(binary, f) for f in FUNCS]


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
