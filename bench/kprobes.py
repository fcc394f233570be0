"""kprobe_multi with N symbols (where the kernel has it, found out by a real attempt), and the cost of
resolving symbol names from /proc/kallsyms in user space (works anywhere)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import bpflink
from bpflink import AttachType, Program, ProgType, asm, link_create
from bpflink.features import explain

from .common import median, run_baseline

AT = AttachType.TRACE_KPROBE_MULTI


def _text_symbols(limit: int) -> list[str]:
    """Up to ``limit`` distinct traceable function names (available_filter_functions, else kallsyms 't/T')."""
    names: list[str] = []
    seen: set[str] = set()
    aff = Path("/sys/kernel/tracing/available_filter_functions")
    try:
        lines = aff.read_text().splitlines()
        words = [line.split()[0] for line in lines if line and "[" not in line]
    except OSError:
        words = [p[2] for p in (line.split() for line in Path("/proc/kallsyms").read_text().splitlines())
                 if len(p) >= 3 and p[1] in "tT" and len(p) == 3]
    for w in words:
        if w not in seen and not w.startswith("__"):
            seen.add(w)
            names.append(w)
            if len(names) == limit:
                break
    return names


def attach(exe: Path, counts: list[int]) -> dict[str, Any]:
    """Try kprobe_multi for real (C and bpflink); on refusal say why, from the errno and the kernel config."""
    syms = _text_symbols(max(counts))
    out: dict[str, Any] = {"points": []}
    try:
        prog = Program.load(ProgType.KPROBE, asm.return_imm(0), expected_attach_type=AT)
    except OSError as exc:
        return {"supported": False, "why": f"loading a kprobe_multi program failed: {exc}"}
    with prog, tempfile.NamedTemporaryFile("w", suffix=".syms") as f:
        f.write("\n".join(syms) + "\n")
        f.flush()
        Builder = getattr(bpflink.opts, "KprobeMulti", None)
        for n in counts:
            row = run_baseline(exe, ["kprobe", prog.fd, f.name, n], [prog.fd])[0]
            if row[0] == "err":
                err = int(row[1])
                why = explain("kprobe_multi") or "the kernel refused although its version and config allow it"
                return {"supported": False, "errno": err, "errno_name": bpflink.errors.errno_name(err),
                        "why": f"kprobe_multi refused ({bpflink.errors.errno_name(err)}): {why}",
                        "probed_with": f"C bpf_link_create with {n} symbols"}
            point: dict[str, Any] = {"n": n, "c": {"create_ms": int(row[1]) / 1e6, "close_ms": int(row[2]) / 1e6}}
            t0 = time.perf_counter_ns()
            opts: Any = Builder(syms=syms[:n]) if Builder is not None else None
            if opts is None:
                raise RuntimeError("bpflink.opts.KprobeMulti is not in this checkout")
            t1 = time.perf_counter_ns()
            link = link_create(prog, None, AT, opts)
            t2 = time.perf_counter_ns()
            link.close()
            t3 = time.perf_counter_ns()
            point["facade"] = {"build_us": (t1 - t0) / 1e3, "create_ms": (t2 - t1) / 1e6, "close_ms": (t3 - t2) / 1e6}
            out["points"].append(point)
    out["supported"] = True
    return out


def _py_resolve(names: list[str]) -> int:
    """One pass over /proc/kallsyms, keeping the wanted names: what a Python tool resolving addrs does."""
    wanted = set(names)
    found: dict[str, int] = {}
    with open("/proc/kallsyms") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] in wanted:
                found.setdefault(parts[2], int(parts[0], 16))
    return len(found)


def kallsyms(exe: Path, counts: list[int], *, reps: int = 5) -> dict[str, Any]:
    """Resolve N names from /proc/kallsyms: C (sscanf + bsearch) vs Python (split + set), interleaved."""
    with open("/proc/kallsyms") as f:
        lines = sum(1 for _ in f)
    names = _text_symbols(max(counts))
    out: dict[str, Any] = {"kallsyms_lines": lines, "points": []}
    with tempfile.NamedTemporaryFile("w", suffix=".names") as f:
        f.write("\n".join(names) + "\n")
        f.flush()
        for n in counts:
            c_ns, py_ns = [], []
            for _ in range(reps):
                c_ns.append(int(run_baseline(exe, ["kallsyms", f.name, n])[0][0]))
                t0 = time.perf_counter_ns()
                _py_resolve(names[:n])
                py_ns.append(time.perf_counter_ns() - t0)
            c_ms, py_ms = median(c_ns) / 1e6, median(py_ns) / 1e6
            out["points"].append({"n": n, "c_ms": c_ms, "python_ms": py_ms, "ratio_vs_c": py_ms / c_ms})
    sym = getattr(bpflink, "symbols", None)
    if sym is None:
        try:
            from bpflink import symbols as sym
        except ImportError:
            sym = None
    if sym is not None and hasattr(sym, "kallsyms_address") and names:
        times = []
        for _ in range(reps):
            t0 = time.perf_counter_ns()
            sym.kallsyms_address(names[0])
            times.append(time.perf_counter_ns() - t0)
        out["bpflink_kallsyms_address_ms"] = median(times) / 1e6
    out["pid"] = os.getpid()
    return out
