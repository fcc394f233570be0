"""USDT attach: bpflink.attach_usdt vs libbpf C's bpf_program__attach_usdt, interleaved in one run.

    .venv/bin/python -m bench.usdt [--rounds 7] [--batches 3] [--json PATH]

Cases: every USDT probe of /usr/bin/python3.11 (8 probes, semaphores), and a generated binary with one probe
expanded at 1,000 call sites. Per round each side attaches every probe, then closes every link; the C side is
tests/usdt/libbpf_usdt.c (same BPF object, same program, libbpf 1.7 from build/libbpf). Batches alternate which
side goes first. Also: the cost of resolving a binary in another mount namespace (pid + in-namespace path through
/proc/PID/root) against a plain path.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bpflink import Program
from bpflink.usdt import _resolve, attach_usdt, probes

from .common import BUILD, LIBBPF, ROOT, machine, median

PYTHON = Path("/usr/bin/python3.11")
SITES = 1000


def _build(out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    inc = LIBBPF / "include"
    triplet = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True).stdout.strip()
    obj = out / "usdt_probe.bpf.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", f"-I{inc}",
                    f"-I/usr/include/{triplet}", "-c", str(ROOT / "tests" / "bpf" / "usdt_probe.bpf.c"), "-o",
                    str(obj)], check=True)
    c = out / "libbpf_usdt"
    subprocess.run(["gcc", "-O2", f"-I{inc}", "-o", str(c), str(ROOT / "tests" / "usdt" / "libbpf_usdt.c"),
                    str(LIBBPF / "lib" / "libbpf.a"), "-lelf", "-lz"], check=True)
    src = out / f"sites{SITES}.c"
    body = "\n".join(f"    STAP_PROBE1(bpflinkb, hot, i + {k});" for k in range(SITES))
    src.write_text(f"#include <sys/sdt.h>\nint main(int argc, char **argv)\n{{\n    long i = argc;\n{body}\n"
                   "    return 0;\n}\n")
    sites = out / f"sites{SITES}"
    subprocess.run(["gcc", "-O1", "-o", str(sites), str(src)], check=True)
    return {"obj": obj, "c": c, "sites": sites}


def _c_round(b: dict[str, Path], binary: Path, targets: list[tuple[str, str]], rounds: int) -> tuple[float, float]:
    lines = "".join(f"{p} {n}\n" for p, n in targets)
    res = subprocess.run([str(b["c"]), str(b["obj"]), "usdt_generic", str(binary), "--all", str(rounds)],
                         input=lines, capture_output=True, text=True, check=True)
    attach_ns, close_ns = map(int, res.stdout.split())
    return attach_ns / 1e6, close_ns / 1e6


def _py_round(prog: Program, binary: Path, targets: list[tuple[str, str]], rounds: int) -> tuple[float, float]:
    attach, close = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        links = [attach_usdt(prog, binary, p, n) for p, n in targets]
        t1 = time.perf_counter()
        for link in links:
            link.close()
        attach.append((t1 - t0) * 1e3)
        close.append((time.perf_counter() - t1) * 1e3)
    return median(attach), median(close)


def _case(b: dict[str, Path], binary: Path, rounds: int, batches: int) -> dict[str, Any]:
    targets = [(p.provider, p.name) for p in probes(binary)]
    sites = sum(len(p.sites) for p in probes(binary))
    c_attach, c_close, py_attach, py_close = [], [], [], []
    with Program.from_object(b["obj"], "usdt_generic") as prog:
        _py_round(prog, binary, targets, 1)  # warm-up: imports, page cache
        for batch in range(batches):
            order = ("c", "py") if batch % 2 == 0 else ("py", "c")
            for side in order:
                if side == "c":
                    a, c = _c_round(b, binary, targets, rounds)
                    c_attach.append(a)
                    c_close.append(c)
                else:
                    a, c = _py_round(prog, binary, targets, rounds)
                    py_attach.append(a)
                    py_close.append(c)
    return {"binary": str(binary), "probes": len(targets), "sites": sites, "rounds": rounds * batches,
            "c_attach_ms": median(c_attach), "py_attach_ms": median(py_attach),
            "attach_ratio": median(py_attach) / median(c_attach),
            "c_close_ms": median(c_close), "py_close_ms": median(py_close),
            "close_ratio": median(py_close) / median(c_close)}


def _namespace_cost(b: dict[str, Path], samples: int = 200) -> dict[str, Any]:
    """_resolve() of a binary seen through another mount namespace vs of a plain path (the same file)."""
    with tempfile.TemporaryDirectory() as tmp:
        hidden = Path(tmp) / "ns"
        hidden.mkdir()
        script = f"mount -t tmpfs none {hidden} && cp {b['sites']} {hidden}/t && echo ready && exec sleep 600"
        proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
            pid = proc.pid
            for _ in range(50):  # sh execs sleep: wait until the pid's root shows the tmpfs copy
                if os.path.exists(f"/proc/{pid}/root{hidden}/t"):
                    break
                time.sleep(0.01)

            def timed(fn: Any) -> float:
                times = []
                for _ in range(samples):
                    t0 = time.perf_counter()
                    fn()
                    times.append((time.perf_counter() - t0) * 1e6)
                return median(times)

            plain = timed(lambda: _resolve(b["sites"], None))
            in_ns = timed(lambda: _resolve(hidden / "t", pid))
            by_name = timed(lambda: _resolve("libc.so.6", pid))
            with Program.from_object(b["obj"], "usdt_generic") as prog:
                t0 = time.perf_counter()
                attach_usdt(prog, hidden / "t", "bpflinkb", "hot", pid=pid).close()
                ns_attach_close_ms = (time.perf_counter() - t0) * 1e3
        finally:
            proc.kill()
            proc.wait()
    return {"plain_path_us": plain, "pid_and_namespace_path_us": in_ns, "pid_and_library_name_us": by_name,
            "attach_close_1000_sites_in_namespace_ms": ns_attach_close_ms}


def run(rounds: int = 7, batches: int = 3) -> dict[str, Any]:
    b = _build(BUILD / "usdt")
    result: dict[str, Any] = {"machine": machine(), "cases": []}
    if PYTHON.exists():
        result["cases"].append(_case(b, PYTHON, rounds, batches))
    result["cases"].append(_case(b, b["sites"], rounds, batches))
    result["namespace"] = _namespace_cost(b)
    return result


def table(r: dict[str, Any]) -> str:
    out = ["USDT attach (median per round: attach every probe, then close every link)",
           f"  {'binary':32} {'probes':>6} {'sites':>6}  {'attach ms C':>11} {'bpflink':>8} {'x C':>5}"
           f"  {'close ms C':>10} {'bpflink':>8} {'x C':>5}"]
    for c in r["cases"]:
        out.append(f"  {Path(c['binary']).name:32} {c['probes']:6} {c['sites']:6}  {c['c_attach_ms']:11.2f} "
                   f"{c['py_attach_ms']:8.2f} {c['attach_ratio']:5.2f}  {c['c_close_ms']:10.1f} "
                   f"{c['py_close_ms']:8.1f} {c['close_ratio']:5.2f}")
    ns = r["namespace"]
    out.append(f"resolving a binary: plain path {ns['plain_path_us']:.1f} µs, pid + in-namespace path "
               f"{ns['pid_and_namespace_path_us']:.1f} µs, pid + library name from /proc/PID/maps "
               f"{ns['pid_and_library_name_us']:.1f} µs; attach+close of {SITES} sites in the namespace "
               f"{ns['attach_close_1000_sites_in_namespace_ms']:.1f} ms")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.usdt", description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "usdt.json")
    args = ap.parse_args(argv)
    r = run(args.rounds, args.batches)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(r, indent=2) + "\n")
    print(table(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
