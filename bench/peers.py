"""Peers measured side by side where they work here, or the reason they do not.

bcc (Debian's python3-bpfcc) lives in Debian's /usr/bin/python3, not in the venv, so its part runs there in a
subprocess: N uprobes attached one by one (bcc's way) vs bpflink's one uprobe_multi link with N offsets.
pylibbpf (PyPI) is installed into a venv of its own under build/bench/.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .common import BUILD

BCC_SCRIPT = r"""
import json, sys, time
offsets = [int(x) for x in sys.argv[2].split(",")]
try:
    from bcc import BPF
except Exception as exc:
    print(json.dumps({"ok": False, "why": f"import bcc failed: {exc}"})); sys.exit(0)
try:
    b = BPF(text="int probe(void *ctx) { return 0; }")
except Exception as exc:
    print(json.dumps({"ok": False, "why": f"bcc cannot compile a program here: {exc}"})); sys.exit(0)
t0 = time.perf_counter()
for off in offsets:
    b.attach_uprobe(name=sys.argv[1], addr=off, fn_name="probe")
t1 = time.perf_counter()
b.cleanup()
t2 = time.perf_counter()
print(json.dumps({"ok": True, "attach_ms": (t1 - t0) * 1e3, "detach_ms": (t2 - t1) * 1e3}))
"""


def bcc(binary: Path, offsets: list[int], n_values: list[int]) -> dict[str, Any]:
    """bcc attaching N uprobes one by one (Debian's python3), or why it cannot."""
    py = Path("/usr/bin/python3")
    if not py.exists():
        return {"ok": False, "why": "/usr/bin/python3 is missing"}
    out: dict[str, Any] = {"points": []}
    for n in n_values:
        res = subprocess.run([str(py), "-c", BCC_SCRIPT, str(binary), ",".join(map(str, offsets[:n]))],
                             capture_output=True, text=True, timeout=600)
        try:
            row = json.loads(res.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            return {"ok": False, "why": f"bcc run failed: {res.stderr.strip()[-400:]}"}
        if not row["ok"]:
            reason = " ".join(line for line in res.stderr.splitlines()
                              if "kernel headers" in line or "kheaders" in line)
            return {"ok": False, "why": row["why"] + (f" ({reason.strip()})" if reason else "")}
        out["points"].append({"n": n, **row})
    out["ok"] = True
    return out


def pylibbpf() -> dict[str, Any]:
    """Install pylibbpf into build/bench/peers-venv (pip) and report what it offers for this comparison."""
    venv = BUILD / "peers-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    probe = ("import pylibbpf, importlib.metadata as m; print(m.version('pylibbpf')); "
             "print(','.join(n for n in dir(pylibbpf.BpfProgram) if not n.startswith('_')))")
    res = subprocess.run([str(py), "-c", probe], capture_output=True, text=True)
    if res.returncode != 0:
        inst = subprocess.run([str(py), "-m", "pip", "install", "-q", "pylibbpf"], capture_output=True, text=True)
        if inst.returncode != 0:
            return {"ok": False, "why": f"pip install pylibbpf failed: {inst.stderr.strip()[-300:]}"}
        res = subprocess.run([str(py), "-c", probe], capture_output=True, text=True)
        if res.returncode != 0:
            return {"ok": False, "why": f"pylibbpf installed but does not import: {res.stderr.strip()[-300:]}"}
    version, methods = res.stdout.split()
    return {"ok": False, "version": version, "program_methods": methods.split(","),
            "why": f"pylibbpf {version} installs, but a program can only be attached with BpfProgram.attach() "
                   "(libbpf's auto-attach from the ELF section name: no target fd, attach type or opts), so "
                   "neither the keeper cgroup loop nor uprobe_multi with given offsets can be expressed in it"}
