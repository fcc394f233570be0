"""Helpers for the tracing tests: the probed C binaries, BPF programs of tests/bpf/trace_*.bpf.c and their
counters (``hits`` keyed by attach cookie, ``| RETURN`` for return runs, ``| ENTRY`` for session entries)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bpflink import Program

HERE = Path(__file__).resolve().parent
RETURN = 1 << 32
ENTRY = 2 << 32
FUNCS = ("bpflink_t_one", "bpflink_t_two", "bpflink_t_three")
CALLS = (1, 2, 3)  # per N: how often uprobe_target calls each of FUNCS


@dataclass(frozen=True)
class Binaries:
    pie: Path  # the default (PIE) build
    nopie: Path  # -no-pie
    lib: Path  # libbpflinkt.so
    with_lib: Path  # a PIE linked against lib


def build_binaries(out: Path) -> Binaries:
    src, lib_src = HERE / "uprobe_target.c", HERE / "uprobe_lib.c"
    b = Binaries(out / "uprobe_target", out / "uprobe_target_nopie", out / "libbpflinkt.so",
                 out / "uprobe_target_lib")

    def cc(*args: str) -> None:
        subprocess.run(["gcc", "-O1", "-g", *args], check=True, capture_output=True)

    cc("-o", str(b.pie), str(src))
    cc("-no-pie", "-fno-pie", "-o", str(b.nopie), str(src))
    cc("-shared", "-fPIC", "-o", str(b.lib), str(lib_src))
    cc("-DWITH_LIB", "-o", str(b.with_lib), str(src), f"-L{out}", "-lbpflinkt", f"-Wl,-rpath,{out}")
    return b


def run(binary: Path, n: int) -> int:
    """Run the target (calls FUNCS n, 2n, 3n times); its printed sum."""
    return int(subprocess.run([str(binary), str(n)], check=True, capture_output=True, text=True).stdout)


_LOAD_FEATURES = ("kprobe_multi", "kprobe_session", "uprobe_multi", "uprobe_session")


def load(obj: Path, name: str, *, only_me: bool = False) -> Program:
    """Program ``name`` of a compiled trace_*.bpf.o; ``only_me`` counts this process only (cfg[0] = tgid).

    A kernel without the program's multi/session attach type refuses the load itself (EINVAL before 5.18/6.6:
    the expected attach type is unknown there): an honest skip for that feature, a failure on kernels that have it.
    """
    try:
        prog = Program.from_object(obj, name)
    except OSError as exc:
        feature = next((f for f in _LOAD_FEATURES if name.startswith(f)), None)
        if feature is None:
            raise
        from honest_skips import unsupported

        unsupported(feature, exc)
    if only_me:
        prog.maps["cfg"].update(0, os.getpid())
    return prog


def hits(prog: Program, key: int) -> int:
    return prog.maps["hits"].lookup_int(key)


def value(prog: Program, key: int) -> int | None:
    raw = prog.maps["values"].lookup(key)  # an int where the map's BTF types the value, else bytes
    return raw if raw is None or isinstance(raw, int) else int.from_bytes(raw, "little")
