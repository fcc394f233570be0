"""Link create+close loops, C vs ``lowlevel`` vs the facade, interleaved in one run; callgrind counts.

cgroup: a keeper link of the same attach type stays alive on a sibling cgroup, so no iteration flips the
kernel's static key (~130 µs of text patching that would hide the binding entirely).
tcx: on veth0 of a private netns, with a keeper tcx link on veth1; RCU-bound, so the binding is noise there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bpflink import AttachType, Program, ProgType, asm, link_create

from .common import BENCH, cgroups, median, private_netns, run_baseline
from .pyloop import facade_times, lowlevel_times

EGRESS = AttachType.CGROUP_INET_EGRESS
VARIANTS = ("c", "lowlevel", "facade")


def _interleave(rounds: int, runners: dict[str, Callable[[], list[tuple[int, int]]]]) -> dict[str, Any]:
    """Run each variant once per round, rotating the order; summarise every (create, close) sample."""
    samples: dict[str, list[tuple[int, int]]] = {k: [] for k in runners}
    names = list(runners)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            samples[name].extend(runners[name]())
    out: dict[str, Any] = {}
    for name, rows in samples.items():
        out[name] = {
            "n": len(rows),
            "create_us": median([c for c, _ in rows]) / 1e3,
            "close_us": median([d for _, d in rows]) / 1e3,
            "total_us": median([c + d for c, d in rows]) / 1e3,
        }
    for name in names:
        out[name]["ratio_vs_c"] = out[name]["total_us"] / out["c"]["total_us"]
    return out


def _c_runner(exe: Path, prog_fd: int, target: int, at: int, n: int, fds: list[int],
              netns: str | None = None) -> Callable[[], list[tuple[int, int]]]:
    args: list[object] = ["loop", prog_fd, target, at, n] + ([netns] if netns else [])
    return lambda: [(int(a), int(b)) for a, b in run_baseline(exe, args, fds)]


def cgroup_loop(exe: Path, *, rounds: int, per_round: int) -> dict[str, Any]:
    """cgroup inet egress create+close with a keeper link alive on a sibling cgroup."""
    with cgroups(2) as (cg, sibling), Program.load(ProgType.CGROUP_SKB, asm.return_imm(1),
                                                     expected_attach_type=EGRESS) as prog:
        cg_fd = os.open(cg, os.O_RDONLY | os.O_CLOEXEC)
        try:
            with link_create(prog, sibling, EGRESS):  # the keeper
                result = _interleave(rounds, {
                    "c": _c_runner(exe, prog.fd, cg_fd, int(EGRESS), per_round, [prog.fd, cg_fd]),
                    "lowlevel": lambda: lowlevel_times(prog.fd, cg_fd, int(EGRESS), per_round),
                    "facade": lambda: facade_times(prog, cg_fd, EGRESS, per_round),
                })
        finally:
            os.close(cg_fd)
    result["keeper"] = "cgroup inet egress link on a sibling cgroup"
    return result


def tcx_loop(exe: Path, *, rounds: int, per_round: int) -> dict[str, Any]:
    """tcx ingress create+close on veth0 in a private netns, keeper on veth1."""
    at = AttachType.TCX_INGRESS
    with private_netns("tcx") as netns, Program.load(ProgType.SCHED_CLS, asm.return_imm(-1)) as prog:
        ifindex = _ifindex("veth0")
        with link_create(prog, "veth1", at):  # the keeper
            result = _interleave(rounds, {
                "c": _c_runner(exe, prog.fd, ifindex, int(at), per_round, [prog.fd], netns),
                "lowlevel": lambda: lowlevel_times(prog.fd, ifindex, int(at), per_round),
                "facade": lambda: facade_times(prog, ifindex, at, per_round),
            })
    result["keeper"] = "tcx ingress link on the veth peer"
    return result


def _ifindex(dev: str) -> int:
    import socket

    return socket.if_nametoindex(dev)


# --- callgrind: user-space instructions per create+close, deterministic where wall time is noisy ----------

def _callgrind_total(cmd: list[str], fds: list[int], env: dict[str, str]) -> int:
    with tempfile.TemporaryDirectory(prefix="bpflink-cg-") as tmp:
        out = Path(tmp) / "callgrind.out"
        full = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd]
        res = subprocess.run(full, pass_fds=tuple(fds), capture_output=True, text=True, env=env)
        if res.returncode != 0:
            raise RuntimeError(f"callgrind failed ({' '.join(cmd)}):\n{res.stderr[-2000:]}")
        text = out.read_text()
    m = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
    if m is None:
        raise RuntimeError("callgrind output has no summary line")
    return int(m.group(1))


def callgrind(exe: Path, *, n: int) -> dict[str, Any]:
    """Instructions per create+close: (count for N iterations - count for 0) / N, for C and both Python paths."""
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = str(BENCH.parent) + os.pathsep + env.get("PYTHONPATH", "")
    out: dict[str, Any] = {"n": n}
    with cgroups(2) as (cg, sibling), Program.load(ProgType.CGROUP_SKB, asm.return_imm(1),
                                                     expected_attach_type=EGRESS) as prog:
        cg_fd = os.open(cg, os.O_RDONLY | os.O_CLOEXEC)
        try:
            with link_create(prog, sibling, EGRESS):
                fds = [prog.fd, cg_fd]
                args = [str(prog.fd), str(cg_fd), str(int(EGRESS))]
                commands = {
                    "c": [str(exe), "count", *args],
                    "lowlevel": [sys.executable, str(BENCH / "pyloop.py"), "lowlevel", *args],
                    "facade": [sys.executable, str(BENCH / "pyloop.py"), "facade", *args],
                }
                for name, cmd in commands.items():
                    full = _callgrind_total([*cmd, str(n)], fds, env)
                    zero = _callgrind_total([*cmd, "0"], fds, env)
                    out[name] = {"instructions_per_iter": (full - zero) / n, "total_n": full, "total_0": zero}
        finally:
            os.close(cg_fd)
    return out
