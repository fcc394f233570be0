"""Reading maps: ``items()`` of a 1,000,000-entry hash map by batch vs C's ``bpf_map_lookup_batch`` loop, and
one-by-one lookups vs C's ``bpf_map_lookup_elem`` loop, interleaved in one run (rounds rotate who goes first).

    .venv/bin/python -m bench.maps [--entries 1000000] [--rounds 5]

The C side (bench/c/maps.c) inherits the same map fd. Prints a table and writes ``results/maps.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.common import BENCH, BUILD, LIBBPF, median
from bpflink import Map, MapType
from bpflink import lowlevel as ll


def build_c() -> Path:
    BUILD.mkdir(parents=True, exist_ok=True)
    exe = BUILD / "maps"
    cmd = ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{LIBBPF / 'include'}", "-o", str(exe),
           str(BENCH / "c" / "maps.c"), str(LIBBPF / "lib" / "libbpf.a"), "-lelf", "-lz"]
    subprocess.run(cmd, check=True)
    return exe


def c_run(exe: Path, fd: int, *args: object) -> list[list[str]]:
    res = subprocess.run([str(exe), *map(str, args)], pass_fds=(fd,), capture_output=True, text=True, check=True)
    return [line.split() for line in res.stdout.splitlines()]


def run(entries: int = 1_000_000, rounds: int = 5, lookups: int = 100_000, chunk: int = 65536) -> dict[str, Any]:
    """Every variant, interleaved (rounds rotate who goes first); medians and ratios against C."""
    import numpy as np

    a = argparse.Namespace(entries=entries, rounds=rounds, lookups=lookups, chunk=chunk)
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    exe = build_c()
    n = a.entries
    m = Map.create(MapType.HASH, key_size=4, value_size=8, max_entries=n, key_type="<I", value_type="<Q")
    keys = np.arange(n, dtype="<u4")
    t0 = time.perf_counter()
    m.update_batch(keys, keys.astype("<u8") * 2)
    fill_s = time.perf_counter() - t0
    res: dict[str, list[float]] = {k: [] for k in ("c_batch", "numpy_batch", "items", "raw_batch", "c_lookup",
                                                   "lookup", "lookup_raw", "lowlevel_lookup")}

    def c_batch() -> None:
        row = c_run(exe, m.fd, "batch", m.fd, 1, a.chunk)[0]
        assert int(row[2]) == n
        res["c_batch"].append(n / (int(row[1]) / 1e9))

    def numpy_batch() -> None:
        t = time.perf_counter()
        k, v = m.lookup_batch(chunk=a.chunk).numpy("<u4", "<u8")
        dt = time.perf_counter() - t
        assert len(k) == n and int(v.sum()) == n * (n - 1)
        res["numpy_batch"].append(n / dt)

    def raw_batch() -> None:
        t = time.perf_counter()
        b = m.lookup_batch(chunk=a.chunk)
        dt = time.perf_counter() - t
        assert b.count == n
        res["raw_batch"].append(n / dt)

    def items() -> None:
        t = time.perf_counter()
        got = list(m.items())
        dt = time.perf_counter() - t
        assert len(got) == n
        res["items"].append(n / dt)

    def c_lookup() -> None:
        row = c_run(exe, m.fd, "lookup", m.fd, a.lookups, 1)[0]
        res["c_lookup"].append(a.lookups / (int(row[1]) / 1e9))

    def lookup() -> None:
        t = time.perf_counter()
        for k in range(a.lookups):
            m.lookup(k)
        res["lookup"].append(a.lookups / (time.perf_counter() - t))

    def lookup_raw() -> None:
        t = time.perf_counter()
        for k in range(a.lookups):
            m.lookup_raw(k)
        res["lookup_raw"].append(a.lookups / (time.perf_counter() - t))

    def lowlevel_lookup() -> None:
        key = ll.ffi.new("__u32 *")
        value = ll.ffi.new("__u64 *")
        fn, fd = ll.lib.bpf_map_lookup_elem, m.fd
        t = time.perf_counter()
        for k in range(a.lookups):
            key[0] = k
            fn(fd, key, value)
        res["lowlevel_lookup"].append(a.lookups / (time.perf_counter() - t))

    variants = [c_batch, numpy_batch, raw_batch, items, c_lookup, lookup, lookup_raw, lowlevel_lookup]
    for r in range(a.rounds):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for fn in order:
            fn()
    tracemalloc.start()
    b = m.lookup_batch(chunk=a.chunk)
    batch_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    pairs = list(b.items())
    items_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del pairs
    out: dict[str, Any] = {
        "machine": {"kernel": platform.release(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "started": started, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "entries": n, "lookups": a.lookups, "rounds": a.rounds, "fill_s": fill_s,
        "median_per_s": {k: median(v) for k, v in res.items()},
        "bytes_per_entry": {"lookup_batch (raw buffers)": batch_peak / n, "items() list of pairs": items_peak / n},
    }
    med = out["median_per_s"]
    out["ratios"] = {"numpy_batch / c_batch": med["numpy_batch"] / med["c_batch"],
                     "raw_batch / c_batch": med["raw_batch"] / med["c_batch"],
                     "items / c_batch": med["items"] / med["c_batch"],
                     "lookup / c_lookup": med["lookup"] / med["c_lookup"],
                     "lookup_raw / c_lookup": med["lookup_raw"] / med["c_lookup"],
                     "lowlevel_lookup / c_lookup": med["lowlevel_lookup"] / med["c_lookup"]}
    m.close()
    return out


def table(out: dict[str, Any]) -> str:
    lines = [f"\nmaps: items() of a {out['entries']:,}-entry hash map, {out['rounds']} rounds, medians "
             f"(load average {out['loadavg_before'][0]:.1f} before, {out['loadavg_after'][0]:.1f} after)",
             f"  {'variant':<22}{'median per s':>16}"]
    lines += [f"  {k:<22}{v:>16,.0f}" for k, v in out["median_per_s"].items()]
    lines += [f"  {k:<30}{v:>8.2f}x" for k, v in out["ratios"].items()]
    lines += [f"  memory {k}: {v:.1f} B/entry" for k, v in out["bytes_per_entry"].items()]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.maps")
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lookups", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=65536)
    a = ap.parse_args()
    out = run(a.entries, a.rounds, a.lookups, a.chunk)
    print(table(out))
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    (results / "maps.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
