"""uprobe_multi with N offsets: time to build the opts and time of the syscall, bpflink vs C.

The probed binary is generated with exactly N functions (x86-64 assembly, so 50k functions assemble in well
under a second; C elsewhere) and its functions' file offsets are read with ``nm`` and ``readelf``.
"""

from __future__ import annotations

import array
import os
import platform
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bpflink
from bpflink import AttachType, Program, ProgType, asm, link_create, lowlevel

from .common import BUILD, median, run_baseline

AT = AttachType.TRACE_UPROBE_MULTI


def build_target(n: int, out_dir: Path = BUILD / "uprobe") -> Path:
    """An executable with functions f0..f{n-1} (cached by n)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / f"funcs{n}"
    if exe.exists():
        return exe
    if platform.machine() == "x86_64":
        src = out_dir / f"funcs{n}.s"
        lines = ["\t.text"]
        for i in range(n):
            lines += [f"\t.globl f{i}", f"\t.type f{i}, @function", f"f{i}:", f"\tleal {i}(%rdi), %eax", "\tret",
                      f"\t.size f{i}, .-f{i}"]
        lines += ["\t.globl main", "\t.type main, @function", "main:", "\txorl %eax, %eax", "\tret",
                  '\t.section .note.GNU-stack,"",@progbits']
    else:
        src = out_dir / f"funcs{n}.c"
        lines = [f"__attribute__((noinline, used)) int f{i}(int x) {{ return x + {i}; }}" for i in range(n)]
        lines.append("int main(void) { return 0; }")
    src.write_text("\n".join(lines) + "\n")
    subprocess.run(["gcc", "-O0", "-o", str(exe), str(src)], check=True, capture_output=True)
    return exe


def function_offsets(exe: Path) -> array.array[int]:
    """File offsets of f0..f{n-1}: symbol address - segment address + segment file offset (executable LOAD)."""
    loads = []
    for line in subprocess.run(["readelf", "-lW", str(exe)], check=True, capture_output=True,
                               text=True).stdout.splitlines():
        parts = line.split()
        if parts[:1] == ["LOAD"]:
            loads.append((int(parts[2], 16), int(parts[1], 16), int(parts[5], 16)))  # vaddr, offset, memsz
    found: dict[int, int] = {}
    for line in subprocess.run(["nm", "--defined-only", str(exe)], check=True, capture_output=True,
                               text=True).stdout.splitlines():
        m = re.match(r"([0-9a-f]+) [Tt] f(\d+)$", line)
        if m:
            addr = int(m.group(1), 16)
            vaddr, offset, _ = next(seg for seg in loads if seg[0] <= addr < seg[0] + seg[2])
            found[int(m.group(2))] = addr - vaddr + offset
    return array.array("Q", (found[i] for i in range(len(found))))


def _builder() -> Any | None:
    """``bpflink.opts.UprobeMulti`` when this checkout has it, else None (then raw opts through lowlevel)."""
    return getattr(bpflink.opts, "UprobeMulti", None)


def _raw_opts(path: bytes, offsets: array.array[int]) -> tuple[Any, tuple[Any, ...]]:
    opts = lowlevel.new_link_create_opts()
    cpath = lowlevel.ffi.new("char[]", path)
    coffs = lowlevel.ffi.from_buffer("unsigned long[]", offsets)
    opts.uprobe_multi.path, opts.uprobe_multi.offsets, opts.uprobe_multi.cnt = cpath, coffs, len(offsets)
    return opts, (cpath, coffs)


def measure(exe: Path, counts: list[int], *, reps: int) -> dict[str, Any]:
    """Per N: build-opts and create/close medians for C, lowlevel (raw opts) and the facade (builder)."""
    Builder = _builder()
    results: dict[str, Any] = {"builder": "opts.UprobeMulti" if Builder else "raw opts (builder not present)",
                               "points": []}
    with Program.load(ProgType.KPROBE, asm.return_imm(0), expected_attach_type=AT) as prog:
        for n in counts:
            target = build_target(n)
            offsets = function_offsets(target)
            assert len(offsets) == n, (len(offsets), n)
            offs_file = target.with_suffix(".offsets")
            offs_file.write_bytes(offsets.tobytes())
            path = os.fsencode(target)

            def c_run(target: Path = target, offs_file: Path = offs_file, n: int = n) -> list[tuple[int, ...]]:
                rows = run_baseline(exe, ["uprobe", prog.fd, target, offs_file, n, 1], [prog.fd])
                return [tuple(int(x) for x in row) for row in rows]

            def lowlevel_run(path: bytes = path, offsets: array.array[int] = offsets) -> list[tuple[int, ...]]:
                t0 = time.perf_counter_ns()
                opts, keep = _raw_opts(path, offsets)
                t1 = time.perf_counter_ns()
                fd = lowlevel.bpf_link_create(prog.fd, 0, int(AT), opts)
                t2 = time.perf_counter_ns()
                if fd < 0:
                    raise OSError(-fd, f"uprobe_multi with {len(offsets)} offsets: {os.strerror(-fd)}")
                os.close(fd)
                t3 = time.perf_counter_ns()
                del keep
                return [(t1 - t0, t2 - t1, t3 - t2)]

            def facade_run(target: Path = target, offsets: array.array[int] = offsets) -> list[tuple[int, ...]]:
                t0 = time.perf_counter_ns()
                if Builder is not None:
                    built: Any = Builder(target, offsets=offsets)
                    t1 = time.perf_counter_ns()
                    link = link_create(prog, None, AT, built)
                else:
                    built, _keep = _raw_opts(os.fsencode(target), offsets)
                    t1 = time.perf_counter_ns()
                    link = link_create(prog, None, AT, built)
                t2 = time.perf_counter_ns()
                link.close()
                t3 = time.perf_counter_ns()
                return [(t1 - t0, t2 - t1, t3 - t2)]

            runners: dict[str, Callable[[], list[tuple[int, ...]]]] = {
                "c": c_run, "lowlevel": lowlevel_run, "facade": facade_run}
            samples: dict[str, list[tuple[int, ...]]] = {k: [] for k in runners}
            names = list(runners)
            for r in range(reps):  # interleaved, rotating which goes first
                for name in names[r % 3:] + names[:r % 3]:
                    samples[name].extend(runners[name]())
            point: dict[str, Any] = {"n": n}
            for name, rows in samples.items():
                # create is bimodal: it pays an RCU grace period (5-15 ms) or not, depending on kernel state the
                # previous detach left; the min is the syscall without that wait, where per-offset cost shows
                point[name] = {
                    "build_us": median([row[0] for row in rows]) / 1e3,
                    "create_ms": median([row[1] for row in rows]) / 1e6,
                    "create_min_ms": min(row[1] for row in rows) / 1e6,
                    "close_ms": median([row[2] for row in rows]) / 1e6,
                }
            for name in names:
                point[name]["create_min_ratio_vs_c"] = point[name]["create_min_ms"] / point["c"]["create_min_ms"]
            results["points"].append(point)
    return results


def build_cost(n: int = 100_000, *, reps: int = 7) -> dict[str, Any]:
    """Building ``opts.UprobeMulti`` for n offsets from an ``array('Q')`` and from a numpy array (if installed),
    plus ``.build()`` (the C struct): target < 20 ms for 100k. Offsets need not be functions here (no syscall)."""
    Builder = _builder()
    if Builder is None:
        return {"n": n, "skipped": "bpflink.opts.UprobeMulti is not in this checkout yet"}
    target = build_target(1)
    sources: dict[str, Any] = {"array('Q')": array.array("Q", range(0, 16 * n, 16)), "list": list(range(0, 16 * n, 16))}
    try:
        import numpy

        sources["numpy uint64"] = numpy.arange(0, 16 * n, 16, dtype=numpy.uint64)
    except ImportError:
        pass
    out: dict[str, Any] = {"n": n}
    for label, src in sources.items():
        make, build = [], []
        for _ in range(reps):
            t0 = time.perf_counter_ns()
            b = Builder(target, offsets=src)
            t1 = time.perf_counter_ns()
            b.build(AT)
            t2 = time.perf_counter_ns()
            make.append(t1 - t0)
            build.append(t2 - t1)
        out[label] = {"construct_ms": median(make) / 1e6, "build_ms": median(build) / 1e6,
                      "total_ms": (median(make) + median(build)) / 1e6}
    return out
