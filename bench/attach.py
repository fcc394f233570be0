"""bpflink.attach: ``Object.attach_all`` vs libbpf C's per-program ``bpf_program__attach`` loop on one object of
20 tracepoint programs, and closing 100 perf_event links as a ``LinkGroup`` (threads overlap the RCU waits in
``close(2)``) vs one by one.

    python -m bench.attach [--reps N]     (root; prints a table and one JSON line)
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bpflink import Link, Object, Program, ProgType, asm
from bpflink.attach import LinkGroup, tracepoint
from bpflink.perf import tracefs

from .common import BENCH, BUILD, LIBBPF, median

N_PROGS = 20
N_LINKS = 100


def _syscall_tracepoints(n: int) -> list[str]:
    names = sorted(p.name for p in (tracefs() / "events" / "syscalls").glob("sys_enter_*"))
    if len(names) < n:
        raise RuntimeError(f"only {len(names)} syscall tracepoints here; need {n}")
    return names[:n]


def build_object(out: Path = BUILD / "attach") -> Path:
    """A BPF object with N_PROGS tracepoint programs (one per syscall tracepoint), compiled with clang."""
    out.mkdir(parents=True, exist_ok=True)
    src, obj = out / "many.bpf.c", out / "many.bpf.o"
    lines = ["#include <linux/bpf.h>", "#include <bpf/bpf_helpers.h>", 'char LICENSE[] SEC("license") = "GPL";',
             "struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 64); __type(key, __u32); "
             "__type(value, __u64); } hits SEC(\".maps\");"]
    for i, tp in enumerate(_syscall_tracepoints(N_PROGS)):
        lines.append(f'SEC("tracepoint/syscalls/{tp}") int p{i}(void *ctx) {{ __u32 k = {i}; '
                     "__u64 *v = bpf_map_lookup_elem(&hits, &k); if (v) __sync_fetch_and_add(v, 1); return 0; }")
    src.write_text("\n".join(lines) + "\n")
    clang = shutil.which("clang") or "clang"
    triplet = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True).stdout.strip()
    subprocess.run([clang, "-O2", "-g", "-target", "bpf", f"-I{LIBBPF / 'include'}", f"-I/usr/include/{triplet}",
                    "-c", str(src), "-o", str(obj)], check=True)
    return obj


def build_c(out: Path = BUILD / "attach") -> Path:
    exe = out / "attach_all"
    src = BENCH / "c" / "attach_all.c"
    if exe.exists() and exe.stat().st_mtime > src.stat().st_mtime:
        return exe  # the QEMU guests see the tree read-only: they use what the host built
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{LIBBPF / 'include'}", "-o", str(exe),
                    str(BENCH / "c" / "attach_all.c"), str(LIBBPF / "lib" / "libbpf.a"), "-lelf", "-lz"],
                   check=True)
    return exe


def attach_all(reps: int) -> dict[str, Any]:
    """Python and C reps alternate, and which goes first alternates too, so both see the same machine
    (perf_event_open waits on the kernel's event_mutex, which other processes' tracepoint closes hold for tens of
    ms; on a loaded 2-vCPU VM single reps vary 5x): medians and minimums of both."""
    obj_path, exe = build_object(), build_c()
    py_attach, py_close, c_attach, c_close = [], [], [], []

    def python_rep() -> None:
        with Object.open(obj_path) as obj:
            gc.collect()
            t0 = time.perf_counter_ns()
            links = obj.attach_all()
            t1 = time.perf_counter_ns()
            for link in links.values():
                link.close()
            t2 = time.perf_counter_ns()
            assert len(links) == N_PROGS
            py_attach.append(t1 - t0)
            py_close.append(t2 - t1)

    def c_rep() -> None:
        out = subprocess.run([str(exe), str(obj_path), "1"], check=True, capture_output=True, text=True).stdout
        row = list(map(int, out.split()))
        c_attach.append(row[0])
        c_close.append(row[1])

    for rep in range(reps):
        for side in ((python_rep, c_rep) if rep % 2 == 0 else (c_rep, python_rep)):
            side()
    return {"programs": N_PROGS, "reps": reps, "loadavg": _loadavg(),
            "bpflink_attach_ms": median(py_attach) / 1e6, "c_attach_ms": median(c_attach) / 1e6,
            "bpflink_attach_min_ms": min(py_attach) / 1e6, "c_attach_min_ms": min(c_attach) / 1e6,
            "bpflink_close_ms": median(py_close) / 1e6, "c_close_ms": median(c_close) / 1e6,
            "attach_ratio_vs_c": median(py_attach) / median(c_attach),
            "attach_min_ratio_vs_c": min(py_attach) / min(c_attach)}


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def group_close(reps: int, *, shared: bool) -> dict[str, Any]:
    """Close N_LINKS tracepoint links one by one vs as a LinkGroup. ``shared=False``: one program on N_LINKS
    syscall tracepoints; ``shared=True``: N_LINKS / 4 programs on each of four tracepoints (the kernel caps a
    tracepoint at 64 programs, counting other processes' ones: rarely used tracepoints are taken)."""
    names = _syscall_tracepoints(N_LINKS)
    quiet = sorted(p.name for p in (tracefs() / "events" / "syscalls").glob("sys_enter_*"))[-4:]
    one: list[int] = []
    group: list[int] = []
    for _ in range(reps):
        for mode in ("one", "group"):
            # fresh programs each time: on a shared machine another process listing links (bpftool, links())
            # may briefly hold a closed link, and its program would still be on the tracepoint (EEXIST)
            progs = [Program.load(ProgType.TRACEPOINT, asm.return_imm(0), name=f"g{i}")
                     for i in range(N_LINKS // 4 if shared else 1)]
            try:
                makers: dict[str, Callable[[], Link]]
                if shared:
                    makers = {f"{tp}{i}": functools.partial(tracepoint, p, f"syscalls:{tp}")
                              for tp in quiet for i, p in enumerate(progs)}
                else:
                    makers = {n: functools.partial(tracepoint, progs[0], f"syscalls:{n}") for n in names}
                g = LinkGroup.attach(makers)
                t0 = time.perf_counter_ns()
                if mode == "one":
                    for link in g:
                        link.close()
                else:
                    g.close()
                (one if mode == "one" else group).append(time.perf_counter_ns() - t0)
                g.close()
            finally:
                for p in progs:
                    p.close()
    return {"links": N_LINKS, "reps": reps, "shared_tracepoint": shared, "one_by_one_ms": median(one) / 1e6,
            "group_ms": median(group) / 1e6, "speedup": median(one) / median(group)}


def build_uprobe_object(out: Path = BUILD / "attach") -> Path:
    out.mkdir(parents=True, exist_ok=True)
    src, obj = out / "one_uprobe.bpf.c", out / "one_uprobe.bpf.o"
    src.write_text('#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC("license") = "GPL";\n'
                   'SEC("uprobe") int up(void *ctx) { return 0; }\n')
    clang = shutil.which("clang") or "clang"
    triplet = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True).stdout.strip()
    subprocess.run([clang, "-O2", "-g", "-target", "bpf", f"-I{LIBBPF / 'include'}", f"-I/usr/include/{triplet}",
                    "-c", str(src), "-o", str(obj)], check=True)
    return obj


def uprobe_by_name(reps: int, library: str = "libc.so.6", func: str = "malloc") -> dict[str, Any]:
    """A uprobe by library name + function, end to end (resolve, perf_event_open, link), bpflink vs libbpf C;
    and bpflink's resolution alone, cold (symbol cache cleared: a scan for that one name) and warm (the same
    name again: the scan again, ld.so.cache parsed again)."""
    from bpflink import symbols
    from bpflink.attach import resolve_probe, uprobe

    obj_path, exe = build_uprobe_object(), build_c()
    py, cold, warm, c = [], [], [], []
    with Object.open(obj_path) as obj, obj.program("up") as prog:
        for _ in range(reps):
            symbols.clear_cache()
            t0 = time.perf_counter_ns()
            resolve_probe(library, func)
            cold.append(time.perf_counter_ns() - t0)
            t0 = time.perf_counter_ns()
            resolve_probe(library, func)
            warm.append(time.perf_counter_ns() - t0)
            symbols.clear_cache()
            t0 = time.perf_counter_ns()
            link = uprobe(prog, library, func)
            py.append(time.perf_counter_ns() - t0)
            link.close()
            out = subprocess.run([str(exe), "uprobe", str(obj_path), library, func, "1"], check=True,
                                 capture_output=True, text=True).stdout
            c.append(int(out.split()[0]))
    return {"target": f"{library}:{func}", "reps": reps, "bpflink_attach_ms": median(py) / 1e6,
            "c_attach_ms": median(c) / 1e6, "bpflink_resolve_cold_ms": median(cold) / 1e6,
            "bpflink_resolve_warm_ms": median(warm) / 1e6}


def build_kprobe_object(out: Path = BUILD / "attach") -> Path:
    obj = out / "one_kprobe.bpf.o"
    if obj.exists():
        return obj
    out.mkdir(parents=True, exist_ok=True)
    src = out / "one_kprobe.bpf.c"
    src.write_text('#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC("license") = "GPL";\n'
                   'SEC("kprobe.multi") int km(void *ctx) { return 0; }\n')
    clang = shutil.which("clang") or "clang"
    triplet = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True).stdout.strip()
    subprocess.run([clang, "-O2", "-g", "-target", "bpf", f"-I{LIBBPF / 'include'}", f"-I/usr/include/{triplet}",
                    "-c", str(src), "-o", str(obj)], check=True)
    return obj


def kprobe_multi_glob(pattern: str, reps: int) -> dict[str, Any]:
    """kprobe_multi on every function matching ``pattern``: bpflink (doctor + attach) vs libbpf C, interleaved.
    Needs a kernel with fprobe (the QEMU guests; the host lacks it).

    libbpf's ``glob_match`` knows ``*`` and ``?`` only: a ``[...]`` class matches no symbol there and its attach
    fails with ENOENT (no matching symbols), so the comparison takes patterns of those two only."""
    from bpflink.attach import kprobe_multi, resolve

    if "[" in pattern:
        raise SystemExit(f"{pattern!r}: libbpf's kprobe_multi glob knows only '*' and '?' (a '[...]' class "
                         "matches nothing there: ENOENT); pick a pattern both understand")

    obj_path, exe = build_kprobe_object(), build_c()
    n = len(resolve(pattern).attached)
    py, py_close, c, c_close, resolve_ns = [], [], [], [], []
    c_error = None
    with Object.open(obj_path) as obj, obj.program("km") as prog:
        for _ in range(reps):
            t0 = time.perf_counter_ns()
            resolve(pattern)  # the doctor alone: tracefs read, glob, verdicts
            resolve_ns.append(time.perf_counter_ns() - t0)
            t0 = time.perf_counter_ns()
            link, _report = kprobe_multi(prog, pattern, best_effort=True)
            t1 = time.perf_counter_ns()
            link.close()
            py.append(t1 - t0)
            py_close.append(time.perf_counter_ns() - t1)
            res = subprocess.run([str(exe), "kprobe_multi", str(obj_path), pattern, "1"], capture_output=True,
                                 text=True)
            if res.returncode != 0:  # libbpf attaches every match or fails the whole link
                c_error = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"
                continue
            out = res.stdout.split()
            c.append(int(out[0]))
            c_close.append(int(out[1]))
    return {"pattern": pattern, "functions": n, "reps": reps, "bpflink_resolve_ms": median(resolve_ns) / 1e6,
            "bpflink_attach_ms": median(py) / 1e6,
            "c_attach_ms": median(c) / 1e6 if c else None, "bpflink_close_ms": median(py_close) / 1e6,
            "c_close_ms": median(c_close) / 1e6 if c else None, "c_error": c_error}


def attach_all_line(a: dict[str, Any]) -> str:
    return (f"attach_all of {a['programs']} tracepoint programs (load average {a['loadavg']}): bpflink median "
            f"{a['bpflink_attach_ms']:.2f} ms (min {a['bpflink_attach_min_ms']:.2f}), libbpf C {a['c_attach_ms']:.2f} "
            f"ms (min {a['c_attach_min_ms']:.2f}): {a['attach_ratio_vs_c']:.2f}x C (min/min "
            f"{a['attach_min_ratio_vs_c']:.2f}x); close one by one: bpflink {a['bpflink_close_ms']:.2f} ms, C "
            f"{a['c_close_ms']:.2f} ms")


def kprobe_multi_line(k: dict[str, Any]) -> str:
    return (f"kprobe_multi {k['pattern']!r} ({k['functions']} functions): bpflink {k['bpflink_attach_ms']:.1f} ms "
            f"(resolution included; alone {k['bpflink_resolve_ms']:.1f} ms), libbpf C {k['c_attach_ms']} ms; close "
            f"{k['bpflink_close_ms']:.1f} vs {k['c_close_ms']} ms; C error: {k['c_error']}")


def group_close_line(r: dict[str, Any], what: str) -> str:
    return (f"close {r['links']} perf_event links ({what}): one by one {r['one_by_one_ms']:.1f} ms, LinkGroup "
            f"{r['group_ms']:.1f} ms ({r['speedup']:.1f}x)")


def uprobe_line(u: dict[str, Any]) -> str:
    return (f"uprobe {u['target']} by name, end to end (cold symbol cache): bpflink {u['bpflink_attach_ms']:.2f} ms, "
            f"libbpf C {u['c_attach_ms']:.2f} ms; bpflink resolution alone: cold {u['bpflink_resolve_cold_ms']:.2f} "
            f"ms, warm {u['bpflink_resolve_warm_ms']:.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--kprobe-multi", metavar="PATTERN", help="only the kprobe_multi glob comparison (guests)")
    ap.add_argument("--only-attach-all", action="store_true", help="only the attach_all comparison")
    args = ap.parse_args()
    results: dict[str, Any] = {}
    lines: list[str] = []
    if args.kprobe_multi:
        results["kprobe_multi"] = k = kprobe_multi_glob(args.kprobe_multi, args.reps)
        lines.append(kprobe_multi_line(k))
    else:
        results["attach_all"] = a = attach_all(args.reps)
        lines.append(attach_all_line(a))
    if not (args.kprobe_multi or args.only_attach_all):
        for key, shared, what in (("group_close", False, "one program on 100 tracepoints"),
                                  ("group_close_shared", True, "25 programs on each of 4 tracepoints")):
            results[key] = r = group_close(args.reps, shared=shared)
            lines.append(group_close_line(r, what))
        results["uprobe_by_name"] = u = uprobe_by_name(args.reps)
        lines.append(uprobe_line(u))
    print("\n".join(lines))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
