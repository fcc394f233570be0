"""What every benchmark needs: the C baseline binary, cgroups, a private netns, statistics, machine facts.

>>> median([3, 1, 2])
2.0
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BUILD = ROOT / "build" / "bench"
LIBBPF = ROOT / "build" / "libbpf"
CGROUP2 = Path(os.environ.get("BPFLINK_CGROUP2", "/sys/fs/cgroup/unified"))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def build_baseline(out_dir: Path = BUILD) -> Path:
    """Compile bench/c/baseline.c against the libbpf bpflink links (build/libbpf); return the binary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / "baseline"
    src = BENCH / "c" / "baseline.c"
    lib = LIBBPF / "lib" / "libbpf.a"
    if not lib.exists():
        raise RuntimeError(f"{lib} is missing: run scripts/setup (it builds libbpf 1.7.0 into build/libbpf)")
    cmd = ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{LIBBPF / 'include'}", "-o", str(exe), str(src),
           str(lib), "-lelf", "-lz"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"building the C baseline failed:\n{' '.join(cmd)}\n{res.stderr}")
    return exe


def run_baseline(exe: Path, args: Sequence[object], fds: Sequence[int] = ()) -> list[list[str]]:
    """Run the C baseline with some of our fds inherited; its stdout split into rows of words."""
    res = subprocess.run([str(exe), *map(str, args)], pass_fds=tuple(fds), capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"baseline {' '.join(map(str, args))} failed: {res.stderr.strip()}")
    return [line.split() for line in res.stdout.splitlines() if line.strip()]


@contextmanager
def cgroups(count: int) -> Iterator[list[Path]]:
    """``count`` sibling cgroup v2 directories (no processes in them), removed afterwards (bpflink.testing's
    ``Cgroup``)."""
    from bpflink.testing import Cgroup

    if not (CGROUP2 / "cgroup.procs").exists():
        CGROUP2.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "cgroup2", "none", str(CGROUP2)], check=True)
    made: list[Cgroup] = []
    try:
        for _ in range(count):
            made.append(Cgroup.create("bench", parent=CGROUP2))
        yield [cg.path for cg in made]
    finally:
        for cg in made:
            cg.close()


@contextmanager
def private_netns(tag: str) -> Iterator[str]:
    """A ``bpflink.testing.Netns`` with a veth pair veth0/veth1 (up); the calling thread enters it for the ``with``
    body and returns to its own netns after. Yields the /run/netns path.

    The bench is single-threaded, so entering moves the whole process: ifindexes resolve and tcx links attach
    there, never on the host's interfaces.
    """
    from bpflink.testing import Netns

    ns = Netns(tag).create()
    try:
        ns.add_veth("veth0", "veth1")
        with ns:
            yield ns.path
    finally:
        ns.close()


def machine() -> dict[str, str]:
    """CPU model, CPU count, kernel, Python, libbpf: where the numbers came from."""
    import bpflink

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "libbpf": bpflink.libbpf_version(),
        "bpflink": bpflink.__version__,
        "executable": sys.executable,
    }
