"""Operator-scale speed of the command line and of ``bpflink.links()`` (issue 20), against the floors.

    .venv/bin/python -m bench.cli [--links 10000] [--rounds 15] [--offsets 100000] [--json PATH]

Everything is measured interleaved in one run (each round runs every variant once, in rotating order), so the
ratios compare the same machine state; medians are reported.

* cold: ``python -c pass`` (the interpreter's own start) vs the real console script ``.venv/bin/bpflink``
  running ``list --json``, ``show ID --json``, ``query ... --json`` with little to report, ``--version``;
  ``probe --json`` once per round (its cost is kernel trials).
* scale: ``--links`` links of mixed kinds (cgroup, tcx, netns sk_lookup, perf_event tracepoints, uprobe_multi
  with many offsets) created here, then ``bpftool link list -j`` vs ``bpflink list --json`` (wall, fresh
  processes), the C loop ``bench/c/linkwalk.c`` (get_next_id + get_fd_by_id + get_info_by_fd + close) vs
  ``for info in bpflink.links()`` in this process; the CLI's peak RSS with few links and with all of them.
* big answers: ``query`` of a cgroup hook holding 64 programs vs ``bpftool cgroup show``; ``show`` of one
  uprobe_multi link with ``--offsets`` offsets vs ``bpftool link show id``; that link's ``Link.info()``, the
  decode ``links()`` makes of it and a first read of its arrays, in this process.

Byte code is compiled first (``compileall``): an installed wheel has it; this checkout runs with
PYTHONDONTWRITEBYTECODE=1, which would otherwise charge every CLI start for compiling bpflink.
"""

from __future__ import annotations

import argparse
import array
import compileall
import ctypes
import json
import os
import resource
import struct
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import bpflink
from bpflink import AttachType, Link, Program, ProgType, asm, link_create, lowlevel

from .common import BUILD, LIBBPF, ROOT, cgroups, machine, median, private_netns
from .uprobes import build_target, function_offsets

SCRIPT = Path(sys.executable).parent / "bpflink"
TRACEFS = Path("/sys/kernel/tracing")
PER_HOOK = 60  # cgroup and tcx hooks hold 64 programs at most
EGRESS, INGRESS = AttachType.CGROUP_INET_EGRESS, AttachType.CGROUP_INET_INGRESS


def build_linkwalk(out_dir: Path = BUILD) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / "linkwalk"
    cmd = ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{LIBBPF / 'include'}", "-o", str(exe),
           str(ROOT / "bench" / "c" / "linkwalk.c"), str(LIBBPF / "lib" / "libbpf.a"), "-lelf", "-lz"]
    subprocess.run(cmd, check=True, capture_output=True)
    return exe


def wall(cmd: list[str], *, check: bool = True) -> tuple[float, int]:
    """(wall ms, ru_maxrss KiB: not the child's own, see peak_rss) of one fresh process, output discarded.

    A failed run is repeated (up to 5 times): bpftool aborts its walk when another process's link is still
    being set up (EAGAIN), which other users of this machine cause at any moment."""
    for _ in range(5):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = (time.perf_counter() - t0) * 1e3
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode == 0 or not check:
            return elapsed, int(usage.ru_maxrss)
    raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode} five times")


def peak_rss(cmd: list[str]) -> int:
    """Peak RSS (KiB) of ``cmd`` measured by /usr/bin/time: a child forked from this (large) process would
    report this process's RSS (the kernel records the pre-exec memory's high-water mark at exec)."""
    res = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, check=True)
    return int(res.stderr.strip().splitlines()[-1])


def interleave(rounds: int, runners: dict[str, Callable[[], float]]) -> dict[str, dict[str, float]]:
    samples: dict[str, list[float]] = {k: [] for k in runners}
    names = list(runners)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            samples[name].append(runners[name]())
    return {k: {"median_ms": median(v), "min_ms": min(v), "n": len(v)} for k, v in samples.items()}


def _perf_tracepoint(category: str, name: str) -> int:
    tp_id = int((TRACEFS / "events" / category / name / "id").read_text())
    libc = ctypes.CDLL(None, use_errno=True)
    attr = struct.pack("<IIQQQQQII", 2, 64, tp_id, 1, 0, 0, 0, 1, 0).ljust(64, b"\0")  # PERF_TYPE_TRACEPOINT
    buf = ctypes.create_string_buffer(attr, 64)
    fd = libc.syscall(298, buf, -1, 0, -1, 8)  # any process on CPU 0, PERF_FLAG_FD_CLOEXEC
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"perf_event_open: {os.strerror(err)}")
    return int(fd)


def _uprobe_opts(exe: Path, offsets: array.array[int]) -> tuple[Any, tuple[Any, ...]]:
    opts = lowlevel.new_link_create_opts()
    cpath = lowlevel.ffi.new("char[]", str(exe).encode())
    coffs = lowlevel.ffi.from_buffer("unsigned long[]", offsets)
    opts.uprobe_multi.path, opts.uprobe_multi.offsets, opts.uprobe_multi.cnt = cpath, coffs, len(offsets)
    return opts, (cpath, coffs)


@contextmanager
def population(total: int, *, tcx: int, netns: int, perf: int, uprobes: int, uprobe_offsets: int,
               big_offsets: int) -> Iterator[dict[str, Any]]:
    """``total`` links of mixed kinds, the rest cgroup links; plus a 64-program cgroup hook and one uprobe_multi
    link with ``big_offsets`` offsets (both counted in ``total``)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, total + 4096)), hard))
    made: dict[str, int] = {}
    with ExitStack() as stack:
        links: list[Link] = []
        stack.callback(_close_all, links)  # on a failed setup (idempotent close)
        skb = stack.enter_context(Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS,
                                               name="bench_skb"))
        # the 64-program hook for query
        (hook64,) = stack.enter_context(cgroups(1))
        progs64 = [stack.enter_context(Program.load(ProgType.CGROUP_SKB, asm.return_imm(1),
                                                    expected_attach_type=EGRESS, name=f"q{i}")) for i in range(64)]
        links += [link_create(p, hook64, EGRESS) for p in progs64]
        made["cgroup_hook64"] = 64
        # uprobe_multi: one big link, and `uprobes` links of `uprobe_offsets` each
        big_id, big_link = None, None
        if uprobes or big_offsets:
            kp = stack.enter_context(Program.load(ProgType.KPROBE, asm.return_imm(0),
                                                  expected_attach_type=AttachType.TRACE_UPROBE_MULTI,
                                                  name="bench_up"))
            exe = build_target(max(big_offsets, uprobe_offsets, 1))
            offs = function_offsets(exe)
            if big_offsets:
                opts, keep = _uprobe_opts(exe, offs[:big_offsets])
                big_link = link_create(kp, None, AttachType.TRACE_UPROBE_MULTI, opts)
                big_id = big_link.id
                stack.callback(big_link.close)
                del keep
            for _ in range(uprobes):
                opts, keep = _uprobe_opts(exe, offs[:uprobe_offsets])
                links.append(link_create(kp, None, AttachType.TRACE_UPROBE_MULTI, opts))
            made["uprobe_multi"] = uprobes + (1 if big_offsets else 0)
        # perf_event: one perf event fd per link (closed when the link goes)
        if perf:
            tp = stack.enter_context(Program.load(ProgType.TRACEPOINT, asm.return_imm(0), name="bench_tp"))
            # one program may be attached to a tracepoint once (EEXIST): a tracepoint per link
            points = sorted(p.name for p in (TRACEFS / "events" / "syscalls").iterdir() if p.is_dir())
            for name in points[:perf]:
                pfd = _perf_tracepoint("syscalls", name)
                stack.callback(os.close, pfd)
                links.append(link_create(tp, pfd, AttachType.PERF_EVENT))
            made["perf_event"] = perf
        # tcx and netns (sk_lookup) in a private netns (this process enters it while creating them)
        if tcx or netns:
            ns_path = stack.enter_context(private_netns("cli"))
            # a program may sit at a tcx hook once (EEXIST): one program per slot, reused across hooks
            cls = [stack.enter_context(Program.load(ProgType.SCHED_CLS, asm.return_imm(0),
                                                    expected_attach_type=AttachType.TCX_INGRESS, name=f"tcx{i}"))
                   for i in range(min(tcx, PER_HOOK))]
            hooks = [(dev, at) for dev in ("veth0", "veth1") for at in (AttachType.TCX_INGRESS,
                                                                         AttachType.TCX_EGRESS)]
            for i in range(tcx):
                dev, at = hooks[i // PER_HOOK % len(hooks)]
                links.append(link_create(cls[i % PER_HOOK], dev, at))
            lookup = stack.enter_context(Program.load(ProgType.SK_LOOKUP, asm.return_imm(1),
                                                      expected_attach_type=AttachType.SK_LOOKUP, name="bench_skl"))
            links += [link_create(lookup, ns_path, AttachType.SK_LOOKUP) for _ in range(netns)]
            made["tcx"], made["netns"] = tcx, netns
        # cgroup links fill the rest, 60 per hook on two hooks per cgroup
        rest = max(0, total - sum(made.values()))
        cgs = stack.enter_context(cgroups((rest + 2 * PER_HOOK - 1) // (2 * PER_HOOK)))
        for i in range(rest):
            cg = cgs[i // (2 * PER_HOOK)]
            links.append(link_create(skb, cg, EGRESS if i % (2 * PER_HOOK) < PER_HOOK else INGRESS))
        made["cgroup"] = rest + 64
        del made["cgroup_hook64"]
        try:
            yield {"made": made, "total": len(links) + (big_link is not None), "hook64": str(hook64),
                   "big_uprobe_id": big_id, "big_link": big_link}
        finally:
            for link in links:  # before the cgroups, netns and perf fds go
                link.close()


def _links_walk_ms() -> tuple[float, int]:
    t0 = time.perf_counter()
    n = sum(1 for _ in bpflink.links())
    return (time.perf_counter() - t0) * 1e3, n


def _c_walk_ms(exe: Path) -> tuple[float, int]:
    out = subprocess.run([str(exe), "1"], check=True, capture_output=True, text=True).stdout.split()
    return int(out[1]) / 1e6, int(out[0])


def links_vs_c(exe: Path, rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """The C loop (``bench/c/linkwalk.c``, its own walk timed inside it) and ``for info in bpflink.links()`` in this
    process (warm: modules imported, one walk done), alternating round by round (the machine's load moves
    between them otherwise): (C, links()) summaries in ms, links()'s with its tracemalloc peak while iterating."""
    _links_walk_ms()
    sides: dict[str, list[float]] = {"c": [], "py": []}
    counts = {"c": 0, "py": 0}
    for r in range(rounds):
        for side in ("c", "py") if r % 2 == 0 else ("py", "c"):
            ms, counts[side] = _c_walk_ms(exe) if side == "c" else _links_walk_ms()
            sides[side].append(ms)
    tracemalloc.start()
    for _ in bpflink.links():
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    c = {"median_ms": median(sides["c"]), "min_ms": min(sides["c"]), "links": counts["c"]}
    py = {"median_ms": median(sides["py"]), "min_ms": min(sides["py"]), "links": counts["py"],
          "tracemalloc_peak_kib": peak / 1024, "x_c": median(sides["py"]) / median(sides["c"])}
    return c, py


def info_variants(link: Link) -> dict[str, Callable[[], float]]:
    """What one big uprobe_multi link's info costs: ``Link.info()`` (arrays copied out, tuples made when read),
    the decode ``links()`` makes of it (arrays left in the kernel), and a first read of one array from that."""
    from bpflink.info import decode, raw_link_info

    def timed(f: Callable[[], object]) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            f()
            return (time.perf_counter() - t0) * 1e3
        return run

    def all_arrays(info: Any) -> list[tuple[int, ...]]:
        return [getattr(info, n) for n in ("offsets", "ref_ctr_offsets", "cookies")]

    def listed() -> Any:
        return decode(link.fd, raw_link_info(link.fd), lazy=True)

    def first_read(name: str) -> Callable[[], float]:
        def run() -> float:
            info = listed()
            t0 = time.perf_counter()
            getattr(info, name) if name != "array" else info.array("offsets")
            return (time.perf_counter() - t0) * 1e3
        return run

    return {
        "Link.info()": timed(link.info),
        "Link.info() + its 3 tuples": timed(lambda: all_arrays(link.info())),
        "links()'s decode of it": timed(listed),
        "then .offsets (by id)": first_read("offsets"),
        "then .array('offsets')": first_read("array"),
    }


def _close_all(links: list[Link]) -> None:
    for link in links:
        link.close()


def _timer(cmd: list[str]) -> Callable[[], float]:
    return lambda: wall(cmd)[0]


def cold(rounds: int, show_id: int, query_cgroup: str) -> dict[str, Any]:
    py = sys.executable
    cmds = {
        "python -c pass": [py, "-c", "pass"],
        "bpflink --version": [str(SCRIPT), "--version"],
        "bpflink list --json": [str(SCRIPT), "list", "--json"],
        "bpflink show ID --json": [str(SCRIPT), "show", str(show_id), "--json"],
        "bpflink query --cgroup X --json": [str(SCRIPT), "query", "--cgroup", query_cgroup, "--attach",
                                            "cgroup_inet_egress", "--json"],
        "bpftool link list -j": ["bpftool", "link", "list", "-j"],
    }
    res = interleave(rounds, {k: _timer(c) for k, c in cmds.items()})
    base = res["python -c pass"]["median_ms"]
    for v in res.values():
        v["x_python"] = v["median_ms"] / base
    res["bpflink probe --json"] = interleave(max(3, rounds // 5), {"p": lambda: wall([str(SCRIPT), "probe",
                                                                                      "--json"])[0]})["p"]
    res["bpflink probe --json"]["x_python"] = res["bpflink probe --json"]["median_ms"] / base
    return res


def run(total: int, rounds: int, offsets: int, *, tcx: int, netns: int, perf: int, uprobes: int,
        uprobe_offsets: int) -> dict[str, Any]:
    compileall.compile_dir(str(Path(bpflink.__file__).parent), quiet=1)
    exe = build_linkwalk()
    result: dict[str, Any] = {"machine": machine(), "load_before": os.getloadavg()}
    with cgroups(1) as (small,), Program.load(ProgType.CGROUP_SKB, asm.return_imm(1),
                                              expected_attach_type=EGRESS) as p, link_create(p, small, EGRESS) as one:
        result["links_on_host_before"] = sum(1 for _ in bpflink.links())
        result["cold"] = cold(rounds, one.id, str(small))
        result["few_links_rss_kib"] = peak_rss([str(SCRIPT), "list", "--json"])
    t0 = time.perf_counter()
    with population(total, tcx=tcx, netns=netns, perf=perf, uprobes=uprobes, uprobe_offsets=uprobe_offsets,
                    big_offsets=offsets) as pop:
        result["setup_s"] = time.perf_counter() - t0
        result["population"] = {k: v for k, v in pop.items() if k not in ("hook64", "big_link")}
        scale: dict[str, Any] = interleave(rounds, {
            "bpftool link list -j": lambda: wall(["bpftool", "link", "list", "-j"])[0],
            "bpflink list --json": lambda: wall([str(SCRIPT), "list", "--json"])[0],
        })
        scale["bpflink list --json"]["x_bpftool"] = (scale["bpflink list --json"]["median_ms"]
                                                     / scale["bpftool link list -j"]["median_ms"])
        scale["C loop"], scale["bpflink.links()"] = links_vs_c(exe, rounds)
        scale["all_links_rss_kib"] = peak_rss([str(SCRIPT), "list", "--json"])
        result["scale"] = scale
        big: dict[str, Any] = {}
        big["query 64"] = interleave(rounds, {
            "bpftool cgroup show -j": lambda: wall(["bpftool", "cgroup", "show", pop["hook64"], "-j"])[0],
            "bpflink query --json": lambda: wall([str(SCRIPT), "query", "--cgroup", pop["hook64"], "--attach",
                                                  "cgroup_inet_egress", "--json"])[0],
        })
        if pop["big_uprobe_id"] is not None:
            uid = str(pop["big_uprobe_id"])
            # bpftool 7.5 prints the whole link and then exits 255 for `link show id` here: timed all the same
            big[f"show uprobe_multi {offsets}"] = interleave(rounds, {
                "bpftool link show id -j": lambda: wall(["bpftool", "link", "show", "id", uid, "-j"], check=False)[0],
                "bpflink show --json": lambda: wall([str(SCRIPT), "show", uid, "--json"])[0],
            })
            big[f"info of uprobe_multi {offsets}, in this process"] = interleave(rounds,
                                                                               info_variants(pop["big_link"]))
        result["big"] = big
        # memory in the number of links, without the one link whose own size dominates (100k offsets)
        if pop["big_link"] is not None:
            pop["big_link"].close()
        scale["all_but_big_rss_kib"] = peak_rss([str(SCRIPT), "list", "--json"])
        # without the one link whose second info call copies 3 x 100k values (the C loop makes no second call)
        scale["all_but_big C loop"], scale["all_but_big_links()"] = links_vs_c(exe, rounds)
        t1 = time.perf_counter()
    result["teardown_s"] = time.perf_counter() - t1
    result["load_after"] = os.getloadavg()
    return result


def table(r: dict[str, Any]) -> str:
    m = r["machine"]
    out = [f"machine: {m['cpu']} x{m['cpus']}, kernel {m['kernel']}, {m['python']}, libbpf {m['libbpf']}; "
           f"load {r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f}; links on the host before: "
           f"{r['links_on_host_before']}"]
    out.append("\ncold start (median ms, x python -c pass):")
    for k, v in r["cold"].items():
        out.append(f"  {k:34} {v['median_ms']:8.1f}  {v['x_python']:5.2f}x")
    s = r["scale"]
    out.append(f"\n{r['population']['total']} links {r['population']['made']} (setup {r['setup_s']:.1f} s, "
               f"teardown {r['teardown_s']:.1f} s):")
    out.append(f"  bpftool link list -j   {s['bpftool link list -j']['median_ms']:8.1f} ms")
    out.append(f"  bpflink list --json    {s['bpflink list --json']['median_ms']:8.1f} ms  "
               f"{s['bpflink list --json']['x_bpftool']:.2f}x bpftool")
    out.append(f"  C loop                 {s['C loop']['median_ms']:8.1f} ms  ({s['C loop']['links']} links)")
    out.append(f"  bpflink.links()        {s['bpflink.links()']['median_ms']:8.1f} ms  "
               f"{s['bpflink.links()']['x_c']:.2f}x C; tracemalloc peak "
               f"{s['bpflink.links()']['tracemalloc_peak_kib']:.0f} KiB")
    nobig = s["all_but_big_links()"]
    out.append(f"  without the 100k-offset link: C loop {s['all_but_big C loop']['median_ms']:.1f} ms, "
               f"bpflink.links() {nobig['median_ms']:.1f} ms  {nobig['x_c']:.2f}x C")
    out.append(f"  CLI peak RSS: {r['few_links_rss_kib']} KiB with few links, {s['all_links_rss_kib']} KiB with all, "
               f"{s['all_but_big_rss_kib']} KiB with all but the big uprobe_multi link; links() tracemalloc "
               f"peak then "
               f"{s['all_but_big_links()']['tracemalloc_peak_kib']:.0f} KiB")
    for name, variants in r["big"].items():
        out.append(f"\n{name}:")
        for k, v in variants.items():
            out.append(f"  {k:28} {v['median_ms']:8.1f} ms")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.cli", description=__doc__.split("\n\n")[0])
    ap.add_argument("--links", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--offsets", type=int, default=100_000, help="offsets of the one big uprobe_multi link")
    ap.add_argument("--tcx", type=int, default=200)
    ap.add_argument("--netns", type=int, default=60)
    ap.add_argument("--perf", type=int, default=200)
    ap.add_argument("--uprobes", type=int, default=20, help="further uprobe_multi links")
    ap.add_argument("--uprobe-offsets", type=int, default=1000, help="offsets each")
    ap.add_argument("--json", type=Path, help="write the results here")
    a = ap.parse_args(argv)
    r = run(a.links, a.rounds, a.offsets, tcx=a.tcx, netns=a.netns, perf=a.perf, uprobes=a.uprobes,
            uprobe_offsets=a.uprobe_offsets)
    print(table(r))
    if a.json:
        a.json.write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
