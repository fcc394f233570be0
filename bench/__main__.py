"""``python -m bench [--quick]``: every benchmark in one run; table on stdout, results/latest.json, a PNG plot.

Run it through ``bench/run`` (installs bench/requirements.txt, needs root and valgrind).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from . import importtime, kprobes, links, peers, uprobes
from . import maps as mapsbench
from . import ringbuf as ringbench
from .common import BENCH, build_baseline, machine

RESULTS = BENCH / "results"
PARTS = ("links", "ringbuf", "maps")
TARGETS = {"facade_ratio": 1.15, "facade_instructions": 4500, "import_ms": 30, "uprobe_build_100k_ms": 20}


def _table(r: dict[str, Any]) -> str:
    out = [f"machine: {r['machine']['cpu']} x{r['machine']['cpus']}, kernel {r['machine']['kernel']}, "
           f"{r['machine']['python']}, libbpf {r['machine']['libbpf']}"]
    for key, title in (("cgroup", "cgroup create+close (keeper alive)"), ("tcx", "tcx create+close (keeper alive)")):
        out.append(f"\n{title}: median per iteration")
        out.append(f"  {'variant':10} {'create µs':>11} {'close µs':>10} {'total µs':>10} {'x C':>6}")
        for v in links.VARIANTS:
            s = r[key][v]
            out.append(f"  {v:10} {s['create_us']:11.2f} {s['close_us']:10.2f} {s['total_us']:10.2f} "
                       f"{s['ratio_vs_c']:6.2f}")
    cg = r["callgrind"]
    out.append(f"\ncallgrind user-space instructions per cgroup create+close (N={cg['n']}):")
    for v in links.VARIANTS:
        out.append(f"  {v:10} {cg[v]['instructions_per_iter']:10.0f}")
    up = r["uprobe_multi"]
    out.append(f"\nuprobe_multi ({up['builder']}): build µs / create ms (median, min) / close ms")
    for p in up["points"]:
        cells = "  ".join(f"{v}: {p[v]['build_us']:.1f} / {p[v]['create_ms']:.2f}, {p[v]['create_min_ms']:.2f} / "
                          f"{p[v]['close_ms']:.1f}" for v in links.VARIANTS)
        out.append(f"  N={p['n']:<6} {cells}")
    bc = r["uprobe_build_cost"]
    if "skipped" not in bc:
        for label, s in bc.items():
            if isinstance(s, dict):
                out.append(f"  opts.UprobeMulti for {bc['n']} offsets from {label}: {s['total_ms']:.3f} ms")
    kp = r["kprobe_multi"]
    out.append("\nkprobe_multi: " + ("measured" if kp.get("supported") else f"not here: {kp.get('why')}"))
    ks = r["kallsyms"]
    out.append(f"kallsyms resolution ({ks['kallsyms_lines']} lines): " + ", ".join(
        f"N={p['n']}: C {p['c_ms']:.1f} ms, Python {p['python_ms']:.1f} ms" for p in ks["points"]))
    im = r["import"]
    out.append(f"\nimport bpflink: median {im['median_ms']:.1f} ms over {im['runs']} runs (target "
               f"< {TARGETS['import_ms']} ms); floors: the extension alone {im['extension_alone_ms']:.1f} ms, "
               f"python -c pass's own imports {im['python_c_pass_ms']:.1f} ms")
    for name, res in r["peers"].items():
        if res.get("ok"):
            out.append(f"peer {name} ({res['how']}): attach / detach ms, {name} vs bpflink")
            out += [f"  N={p['n']:<5} {p['attach_ms']:8.1f} vs {p['bpflink_attach_ms']:6.1f} ({p['attach_ratio']:.1f}x)"
                    f"   {p['detach_ms']:9.1f} vs {p['bpflink_detach_ms']:6.1f} ({p['detach_ratio']:.0f}x)"
                    for p in res["points"]]
            if res.get("note"):
                out.append(f"  note: {res['note']}")
        else:
            out.append(f"peer {name}: not measured: {res.get('why')}")
    return "\n".join(out)


def _plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    pts = r["uprobe_multi"]["points"]
    ns = [p["n"] for p in pts]
    for v, style in zip(links.VARIANTS, ("o-", "s--", "^:")):
        axes[0].plot(ns, [p[v]["create_min_ms"] for p in pts], style, label=f"{v} create (min)")
        axes[0].plot(ns, [p[v]["close_ms"] for p in pts], style, alpha=0.4, label=f"{v} close (median)")
    axes[0].set(xscale="log", yscale="log", xlabel="offsets in one uprobe_multi link", ylabel="ms",
                title="uprobe_multi: syscall time vs N")
    axes[0].legend(fontsize=7)
    for v, style in zip(("c", "lowlevel", "facade"), ("o-", "s--", "^:")):
        axes[1].plot(ns, [max(p[v]["build_us"], 0.01) for p in pts], style, label=v)
    axes[1].set(xscale="log", yscale="log", xlabel="offsets", ylabel="µs", title="uprobe_multi: building the opts")
    axes[1].legend(fontsize=8)
    cg = r["cgroup"]
    labels = list(links.VARIANTS)
    axes[2].bar(labels, [cg[v]["create_us"] for v in labels], label="create")
    axes[2].bar(labels, [cg[v]["close_us"] for v in labels], bottom=[cg[v]["create_us"] for v in labels],
                label="close")
    for i, v in enumerate(labels):
        axes[2].text(i, cg[v]["total_us"], f"{cg[v]['ratio_vs_c']:.2f}x\n"
                     f"{r['callgrind'][v]['instructions_per_iter']:.0f} instr", ha="center", va="bottom", fontsize=8)
    axes[2].set(ylabel="µs (median)", title="cgroup create+close, keeper alive",
                ylim=(0, 1.2 * max(cg[v]["total_us"] for v in labels)))
    axes[2].legend(fontsize=8)
    m = r["machine"]
    fig.suptitle(f"bpflink bench — {m['cpu']} x{m['cpus']}, Linux {m['kernel']}, {m['python']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(prog="bench/run")
    ap.add_argument("--quick", action="store_true", help="fewer rounds and sizes (a minute instead of several)")
    ap.add_argument("--only", default="", help=f"comma-separated parts to run ({', '.join(PARTS)}); default all")
    args = ap.parse_args()
    q = args.quick
    parts = [p for p in args.only.split(",") if p] or list(PARTS)
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown part(s) {', '.join(sorted(unknown))}; parts: {', '.join(PARTS)}")
    if "links" in parts and shutil.which("valgrind") is None:
        raise SystemExit("valgrind is missing: apt-get install valgrind")
    started = time.time()
    r: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                         "quick": q, "targets": TARGETS, "loadavg_before": os.getloadavg()}
    RESULTS.mkdir(exist_ok=True)
    if "links" in parts:
        _links(r, q)
    # the data path: ring/perf buffer consumers and map reads against C in the same run (bench/README.md)
    if "ringbuf" in parts:
        r["ringbuf"] = ringbench.run(quick=q)
        (RESULTS / "ringbuf.json").write_text(json.dumps(r["ringbuf"], indent=1) + "\n")
    if "maps" in parts:
        r["maps"] = mapsbench.run(entries=1_000_000, rounds=3 if q else 5, lookups=50_000 if q else 100_000)
        (RESULTS / "maps.json").write_text(json.dumps(r["maps"], indent=1) + "\n")
    r["loadavg_after"] = os.getloadavg()
    r["elapsed_s"] = round(time.time() - started, 1)
    name = "latest" if parts == list(PARTS) else "latest-" + "-".join(parts)
    (RESULTS / f"{name}.json").write_text(json.dumps(r, indent=1) + "\n")
    if "links" in parts:
        _plot(r, RESULTS / f"{name}.png")
        print(_table(r))
    if "ringbuf" in parts:
        print(ringbench.table(r["ringbuf"]))
    if "maps" in parts:
        print(mapsbench.table(r["maps"]))
    print(f"\nwrote {RESULTS / (name + '.json')} ({r['elapsed_s']} s; load average {r['loadavg_before'][0]:.1f} "
          f"before, {r['loadavg_after'][0]:.1f} after)")


def _links(r: dict[str, Any], q: bool) -> None:
    """The link benchmarks (cgroup/tcx loops, callgrind, uprobe_multi, kprobes, import time, peers)."""
    exe = build_baseline()
    r["cgroup"] = links.cgroup_loop(exe, rounds=4 if q else 12, per_round=300 if q else 1000)
    r["tcx"] = links.tcx_loop(exe, rounds=2 if q else 5, per_round=5 if q else 10)
    r["callgrind"] = links.callgrind(exe, n=1000 if q else 5000)
    counts = [1, 10, 100, 1000] if q else [1, 10, 100, 1000, 10_000, 50_000]
    r["uprobe_multi"] = uprobes.measure(exe, counts, reps=3 if q else 7)
    r["uprobe_build_cost"] = uprobes.build_cost(100_000)
    r["kprobe_multi"] = kprobes.attach(exe, [1, 10, 100, 1000])
    r["kallsyms"] = kprobes.kallsyms(exe, [1, 100, 10_000], reps=3 if q else 5)
    r["import"] = importtime.measure(5 if q else 11)
    biggest = uprobes.build_target(max(counts))
    offs = list(uprobes.function_offsets(biggest))
    r["peers"] = {"bcc": peers.bcc(biggest, offs, [1, 10, 100]), "pylibbpf": peers.pylibbpf()}


if __name__ == "__main__":
    main()
