"""Peers measured side by side where they work here, or the reason they do not.

bcc (Debian's python3-bpfcc) lives in Debian's /usr/bin/python3, not in the venv, so its part runs there in a
subprocess: N uprobes attached one by one (bcc's way) vs bpflink's one uprobe_multi link with N offsets.
pylibbpf (PyPI) is installed into a venv of its own under build/bench/.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import BUILD

BCC_SCRIPT = r"""
import ctypes, json, os, re, sys, time
prog_fd, path, offsets = int(sys.argv[1]), sys.argv[2].encode(), [int(x) for x in sys.argv[3].split(",")]
try:
    from bcc import BPF
    from bcc.libbcc import lib
except Exception as exc:
    print(json.dumps({"ok": False, "why": f"import bcc failed: {exc}"})); sys.exit(0)
try:
    BPF(text="int probe(void *ctx) { return 0; }")
    compiles = True
except Exception:
    compiles = False  # no kernel headers: measure bcc's attach call with the driver's program instead
# one perf-event uprobe per offset through libbcc's bpf_attach_uprobe: the call BPF.attach_uprobe makes for each
# probe (event name "p_<path>_0x<offset>" as bcc names them); detach: close + bpf_detach_uprobe, as bcc does
tag = re.sub(rb"[^a-zA-Z0-9_]", b"_", path)
t0 = time.perf_counter()
fds = []
for off in offsets:
    ev = b"p_%s_0x%x" % (tag, off)
    fd = lib.bpf_attach_uprobe(prog_fd, 0, ev, path, off, -1)
    if fd < 0:
        print(json.dumps({"ok": False, "why": f"bcc bpf_attach_uprobe failed at offset {off:#x}"})); sys.exit(0)
    fds.append((ev, fd))
t1 = time.perf_counter()
for ev, fd in fds:
    os.close(fd)
    lib.bpf_detach_uprobe(ev)
t2 = time.perf_counter()
print(json.dumps({"ok": True, "bcc_compiles": compiles, "attach_ms": (t1 - t0) * 1e3, "detach_ms": (t2 - t1) * 1e3}))
"""


def bcc(binary: Path, offsets: list[int], n_values: list[int]) -> dict[str, Any]:
    """bcc attaching N uprobes one by one (Debian's python3) vs one bpflink uprobe_multi link, side by side."""
    from bpflink import AttachType, Program, ProgType, asm, link_create, opts

    py = Path("/usr/bin/python3")
    if not py.exists():
        return {"ok": False, "why": "/usr/bin/python3 is missing"}
    out: dict[str, Any] = {"points": [], "how": "libbcc bpf_attach_uprobe per offset (what BPF.attach_uprobe "
                                               "calls per probe) vs bpflink.link_create(opts.UprobeMulti)"}
    multi_at = AttachType.TRACE_UPROBE_MULTI
    with Program.load(ProgType.KPROBE, asm.return_imm(0)) as single, \
            Program.load(ProgType.KPROBE, asm.return_imm(0), expected_attach_type=multi_at) as multi:
        for n in n_values:
            res = subprocess.run([str(py), "-c", BCC_SCRIPT, str(single.fd), str(binary),
                                  ",".join(map(str, offsets[:n]))], pass_fds=(single.fd,),
                                 capture_output=True, text=True, timeout=900)
            try:
                row = json.loads(res.stdout.strip().splitlines()[-1])
            except (IndexError, json.JSONDecodeError):
                return {"ok": False, "why": f"bcc run failed: {res.stderr.strip()[-400:]}"}
            if not row["ok"]:
                return {"ok": False, "why": row["why"]}
            t0 = time.perf_counter()
            link = link_create(multi, None, multi_at, opts.UprobeMulti(binary, offsets=offsets[:n]))
            t1 = time.perf_counter()
            link.close()
            t2 = time.perf_counter()
            row.update(bpflink_attach_ms=(t1 - t0) * 1e3, bpflink_detach_ms=(t2 - t1) * 1e3)
            row["attach_ratio"] = row["attach_ms"] / row["bpflink_attach_ms"]
            row["detach_ratio"] = row["detach_ms"] / row["bpflink_detach_ms"]
            out["points"].append({"n": n, **row})
    out["ok"] = True
    if not out["points"][0]["bcc_compiles"]:
        out["note"] = ("bcc cannot compile programs here (no kernel headers, no CONFIG_IKHEADERS), so the program "
                       "is loaded by the driver and handed to bcc's attach call")
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
