"""Without privileges every refusal is a ``PermissionError`` naming the capability; with the right ones links work.

The script runs as ``nobody`` through ``setpriv``, inside the test's cgroup, with no capabilities or with
ambient CAP_BPF (+CAP_NET_ADMIN, +CAP_PERFMON). ``kernel.unprivileged_bpf_disabled`` (1 or 2 on most
distributions) decides whether an uncapable user may call ``bpf()`` at all; the expectations below read it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT

SCRIPT = r"""
import json, os, socket, sys
from bpflink import AttachType, Map, Program, ProgType, asm, link_create
E = AttachType.CGROUP_INET_EGRESS
out = {}
def step(name, fn):
    try:
        value = fn()
        out[name] = {"ok": True}
        return value
    except OSError as exc:
        out[name] = {"ok": False, "type": type(exc).__name__, "errno": exc.errno, "msg": str(exc)}
counter = step("map_create", Map.array)
if counter is not None:
    prog = step("load_cgroup_skb", lambda: Program.load(ProgType.CGROUP_SKB, asm.count_and_return(counter.fd, 0),
                                                         expected_attach_type=E))
    step("load_sched_cls", lambda: Program.load(ProgType.SCHED_CLS, asm.return_imm(0),
                                                expected_attach_type=AttachType.TCX_INGRESS))
    step("load_kprobe", lambda: Program.load(ProgType.KPROBE, asm.return_imm(0),
                                             expected_attach_type=AttachType.TRACE_UPROBE_MULTI))
    if prog is not None:
        link = step("link_cgroup", lambda: link_create(prog, sys.argv[1], E))
        if link is not None:
            rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); rx.bind(("127.0.0.1", 0)); rx.settimeout(0.3)
            tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for _ in range(5):
                try:
                    tx.sendto(b"x", rx.getsockname())
                except OSError:
                    pass
            got = 0
            try:
                while True:
                    rx.recv(8); got += 1
            except OSError:
                pass
            out["fired"] = {"received": got, "counted": counter.lookup_int(0)}
            link.close()
print(json.dumps(out))
"""


def sysctl_unprivileged_bpf_disabled() -> int:
    return int(Path("/proc/sys/kernel/unprivileged_bpf_disabled").read_text())


def run_as_nobody(cgroup: Path, caps: list[str]) -> dict[str, Any]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv is missing (util-linux)")
    inh = ",".join(["-all", *(f"+{c}" for c in caps)])
    cmd = [setpriv, "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", f"--inh-caps={inh}"]
    if caps:
        cmd.append("--ambient-caps=" + ",".join(f"+{c}" for c in caps))
    cmd += [sys.executable, "-c", SCRIPT, str(cgroup)]

    def enter() -> None:
        (cgroup / "cgroup.procs").write_text(str(os.getpid()))

    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT / "src")}
    res = subprocess.run(cmd, preexec_fn=enter, capture_output=True, text=True, timeout=60, env=env, cwd="/")
    assert res.returncode == 0, res.stderr
    result: dict[str, Any] = json.loads(res.stdout)
    return result


def refused(step: dict[str, Any], *caps: str) -> None:
    assert not step["ok"], step
    assert step["type"] == "PermissionError" and step["errno"] == 1, step
    for cap in caps:
        assert cap in step["msg"], f"{cap} not named in {step['msg']!r}"


def test_no_capabilities(cgroup: Path) -> None:
    out = run_as_nobody(cgroup, [])
    if sysctl_unprivileged_bpf_disabled() == 0:  # bpf() is open to users: a map works, privileged loads do not
        assert out["map_create"]["ok"]
        refused(out["load_sched_cls"], "CAP_BPF", "CAP_NET_ADMIN")
        refused(out["load_kprobe"], "CAP_BPF", "CAP_PERFMON")
    else:
        refused(out["map_create"], "CAP_BPF")
        assert list(out) == ["map_create"]


def test_cap_bpf_only(cgroup: Path) -> None:
    out = run_as_nobody(cgroup, ["bpf"])
    assert out["map_create"]["ok"] and out["load_cgroup_skb"]["ok"]  # cgroup_skb needs CAP_BPF alone
    refused(out["load_sched_cls"], "CAP_BPF", "CAP_NET_ADMIN")
    refused(out["load_kprobe"], "CAP_PERFMON")
    refused(out["link_cgroup"], "CAP_NET_ADMIN")


def test_cap_bpf_net_admin_cgroup_link_fires(cgroup: Path) -> None:
    out = run_as_nobody(cgroup, ["bpf", "net_admin"])
    assert all(out[s]["ok"] for s in ("map_create", "load_cgroup_skb", "load_sched_cls", "link_cgroup")), out
    refused(out["load_kprobe"], "CAP_PERFMON")
    assert out["fired"]["received"] == 0 and out["fired"]["counted"] >= 5, out["fired"]


def test_cap_bpf_perfmon_loads_tracing_programs(cgroup: Path) -> None:
    out = run_as_nobody(cgroup, ["bpf", "perfmon"])
    assert out["load_kprobe"]["ok"], out
    refused(out["load_sched_cls"], "CAP_NET_ADMIN")
    refused(out["link_cgroup"], "CAP_NET_ADMIN")
