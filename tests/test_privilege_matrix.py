"""Measured: what a process running as ``nobody`` can do with a given capability set, when a privileged process
hands it BPF program fds (as an agent handing work to a less privileged helper does), and what it can do alone.

The privileged side (this test, root) loads one program per family, creates a sockmap, opens the perf event,
creates a cgroup, a bpffs directory owned by nobody and a private network namespace (with a netkit pair where
the kernel has netkit); the helper runs under ``setpriv`` in that namespace with only the listed capabilities
(ambient) and the fds inherited, tries each link and reports ``ok`` or the errno.
``pytest -s tests/test_privilege_matrix.py`` prints the table the README's Security section shows; the host test
checks every row this kernel can measure is exactly the README's (host only: kernels differ), and the netkit
row is checked where netkit exists (``scripts/vmtest --kernel 6.12 --pytest tests/test_privilege_matrix.py``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

pytestmark = pytest.mark.hostonly

CAP_SETS = ([], ["net_admin"], ["perfmon"], ["bpf"], ["bpf", "net_admin"], ["bpf", "perfmon"])
ROWS = ("load CGROUP_SKB", "map array", "map sockmap", "link cgroup", "link tcx", "link xdp", "link netkit",
        "link netfilter", "link sk_lookup", "link perf_event", "link uprobe_multi", "link tp_btf", "link iter",
        "read the iter link", "link sockmap", "pin a link (own bpffs dir)")
NETKIT_DEV = "bpflinknk0"

HELPER = r"""
import json, os, sys
from bpflink import AttachType as A, Link, Map, MapType, Program, ProgType, asm, link_create, opts
from bpflink.opts import Netfilter
from bpflink import NfInetHook, NfProto
fds, cgroup, pindir = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
out, made = {}, []
def step(name, fn):
    try:
        value = fn()
        out[name] = "ok"
        return value
    except OSError as exc:
        out[name] = exc.__class__.__name__ + ":" + (os.strerror(exc.errno) if exc.errno else "?")
p = fds.__getitem__  # plain int fds: a Program would own (and close) them
step("load CGROUP_SKB", lambda: Program.load(ProgType.CGROUP_SKB, asm.return_imm(1),
                                             expected_attach_type=A.CGROUP_INET_EGRESS).close())
step("map array", lambda: Map.array().close())
step("map sockmap", lambda: Map.create(MapType.SOCKMAP, key_size=4, value_size=4, max_entries=1).close())
made.append(step("link cgroup", lambda: link_create(p("cgroup"), cgroup, A.CGROUP_INET_EGRESS)))
made.append(step("link tcx", lambda: link_create(p("tcx"), 1, A.TCX_INGRESS)))
made.append(step("link xdp", lambda: link_create(p("xdp"), 1, A.XDP)))
if "netkit" in fds:  # the device was made in this namespace by root before setpriv
    made.append(step("link netkit", lambda: link_create(p("netkit"), fds["netkit_dev"], A.NETKIT_PRIMARY)))
nf = Netfilter(pf=NfProto.IPV4, hooknum=NfInetHook.LOCAL_IN, priority=-50)
made.append(step("link netfilter", lambda: link_create(p("netfilter"), None, A.NETFILTER, nf)))
made.append(step("link sk_lookup", lambda: link_create(p("sk_lookup"), "/proc/self/ns/net", A.SK_LOOKUP)))
made.append(step("link perf_event", lambda: link_create(p("perf_event"), fds["perf_event_fd"], A.PERF_EVENT)))
um = opts.UprobeMulti(path=fds["uprobe_path"], offsets=[fds["uprobe_offset"]])
made.append(step("link uprobe_multi", lambda: link_create(p("uprobe_multi"), None, A.TRACE_UPROBE_MULTI, um)))
made.append(step("link tp_btf", lambda: link_create(p("tp_btf"), None, A.TRACE_RAW_TP)))
it = step("link iter", lambda: link_create(p("iter"), None, A.TRACE_ITER))
made.append(it)
def read_tasks():
    text = it.read_iter(text=True)
    if str(os.getpid()) not in text.split():  # dump_task prints "tgid pid comm" per task
        raise OSError(0, "no line for this process in " + repr(text[:80]))
if it is not None:
    step("read the iter link", read_tasks)
made.append(step("link sockmap", lambda: link_create(p("sockmap"), fds["sockmap_map"], A.SK_MSG_VERDICT)))
link = next((m for m in made if m is not None), None)
if link is None:
    out["pin a link (own bpffs dir)"] = "n/a (no link)"
else:
    step("pin a link (own bpffs dir)", lambda: link.pin(os.path.join(pindir, "l")))
for m in made:
    if m is not None:
        m.close()
print(json.dumps(out))
"""


def netkit_reason() -> str | None:
    """None when this kernel makes netkit links and an ``ip`` can make the device; else the probed reason."""
    from bpflink import AttachType, probe
    from bpflink.testing._netns import netkit_ip

    (result,) = probe([AttachType.NETKIT_PRIMARY])
    if not result.supported:
        return f"netkit: {result.reason}"
    if netkit_ip() is None:
        return "netkit: no `ip` here knows `type netkit` (iproute2 >= 6.7)"
    return None


@contextmanager
def handed_programs(objects: dict[str, Path], netkit: bool) -> Iterator[dict[str, Any]]:
    """Root loads one program per family, creates a sockmap and opens a tracepoint perf event; the fds stay
    open (inheritable). Programs that name a BTF target (tp_btf, iter) and the sk_msg one come from the
    suite's compiled objects."""
    from bpflink import AttachType as A
    from bpflink import Map, MapType, Program, ProgType, asm, perf, symbols

    with ExitStack() as stack:
        def load(key: str, ptype: ProgType, ret: int, at: A) -> int:
            prog = stack.enter_context(Program.load(ptype, asm.return_imm(ret), expected_attach_type=at))
            os.set_inheritable(prog.fd, True)
            return prog.fd

        def from_object(obj: str, name: str) -> int:
            prog = stack.enter_context(Program.from_object(objects[obj], name))
            os.set_inheritable(prog.fd, True)
            return prog.fd

        fds: dict[str, Any] = {
            "cgroup": load("cgroup", ProgType.CGROUP_SKB, 1, A.CGROUP_INET_EGRESS),
            "tcx": load("tcx", ProgType.SCHED_CLS, 0, A.TCX_INGRESS),
            "xdp": load("xdp", ProgType.XDP, 2, A.XDP),
            "netfilter": load("netfilter", ProgType.NETFILTER, 1, A.NETFILTER),
            "sk_lookup": load("sk_lookup", ProgType.SK_LOOKUP, 1, A.SK_LOOKUP),
            "perf_event": load("perf_event", ProgType.TRACEPOINT, 0, A.PERF_EVENT),
            "uprobe_multi": load("uprobe_multi", ProgType.KPROBE, 0, A.TRACE_UPROBE_MULTI),
            "tp_btf": from_object("trace_tracing", "tp_btf_plain"),
            "iter": from_object("iter_dump", "dump_task"),
            "sockmap": from_object("sk_sockmap", "msg_pass"),
        }
        if netkit:
            fds["netkit"] = load("netkit", ProgType.SCHED_CLS, 0, A.NETKIT_PRIMARY)
            fds["netkit_dev"] = NETKIT_DEV
        sockmap = stack.enter_context(Map.create(MapType.SOCKMAP, key_size=4, value_size=4, max_entries=1))
        os.set_inheritable(sockmap.fd, True)
        fds["sockmap_map"] = sockmap.fd
        ev = stack.enter_context(perf.open_tracepoint("syscalls:sys_enter_getpid"))
        os.set_inheritable(ev.fd, True)
        fds["perf_event_fd"] = ev.fd
        libc = Path("/lib") / f"{os.uname().machine}-linux-gnu" / "libc.so.6"
        fds["uprobe_path"] = str(libc)
        fds["uprobe_offset"] = symbols.symbol_offset(libc, "getpid")
        yield fds


def measure(cgroup: Path, objects: dict[str, Path]) -> dict[str, dict[str, str]]:
    """Per capability set (column key ``"bpf+net_admin"``, ``"none"``...), per row: ``ok`` or the refusal.
    Rows this kernel cannot measure (netkit without CONFIG_NETKIT) are absent."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv is missing (util-linux)")
    results: dict[str, dict[str, str]] = {}
    os.chmod(cgroup, 0o755)  # as cgroups are made by default: the helper may open it, not write it
    netkit = netkit_reason() is None
    with handed_programs(objects, netkit) as fds, tempfile.TemporaryDirectory(dir="/sys/fs/bpf") as pinroot:
        pins = Path(pinroot) / "nobody"
        pins.mkdir()
        shutil.chown(pins, "nobody", "nogroup")
        os.chmod(pinroot, 0o755)
        pass_fds = [v for k, v in fds.items() if k not in ("uprobe_path", "uprobe_offset", "netkit_dev")]
        # root makes the netkit pair inside the helper's fresh namespace, then drops to nobody there
        prelude = (["sh", "-c", f'"$0" link add {NETKIT_DEV} type netkit >/dev/null && exec "$@"', netkit_ip_path()]
                   if netkit else [])
        for caps in CAP_SETS:
            inh = ",".join(["-all", *(f"+{c}" for c in caps)])
            cmd = ["unshare", "--net", *prelude, setpriv, "--reuid", "nobody", "--regid", "nogroup",
                   "--clear-groups", f"--inh-caps={inh}",
                   *(["--ambient-caps=" + ",".join(f"+{c}" for c in caps)] if caps else []),
                   sys.executable, "-c", HELPER, json.dumps(fds), str(cgroup), str(pins)]
            env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT / "src")}
            res = subprocess.run(cmd, pass_fds=pass_fds, capture_output=True, text=True, timeout=120, env=env,
                                 cwd="/")
            assert res.returncode == 0, res.stderr
            results["+".join(caps) or "none"] = json.loads(res.stdout.strip().splitlines()[-1])
            for leftover in pins.iterdir():
                leftover.unlink()
    return results


def netkit_ip_path() -> str:
    from bpflink.testing._netns import netkit_ip

    ip = netkit_ip()
    assert ip is not None
    return ip


def table(results: dict[str, dict[str, str]], rows: tuple[str, ...] = ROWS) -> str:
    """The README's markdown table; only the ``rows`` that were measured (present in every column)."""
    cols = list(results)
    def cell(v: str) -> str:
        return "yes" if v == "ok" else v.split(":", 1)[-1].replace("Operation not permitted", "EPERM") \
            .replace("Permission denied", "EACCES").replace("Invalid argument", "EINVAL")
    head = "| as nobody, handed program fds by root | " + " | ".join(
        c.replace("net_admin", "CAP_NET_ADMIN").replace("perfmon", "CAP_PERFMON").replace("bpf", "CAP_BPF")
        .replace("+", " + ").replace("none", "no capability") for c in cols) + " |"
    lines = [head, "|---" * (len(cols) + 1) + "|"]
    for row in rows:
        if any(row not in results[c] for c in cols):
            continue
        lines.append(f"| {row} | " + " | ".join(cell(results[c].get(row, "?")) for c in cols) + " |")
    return "\n".join(lines)


def readme_table() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- privileges:begin -->\n(.*?)\n<!-- privileges:end -->", readme, re.S)
    assert found, "README has no privileges table markers"
    return found.group(1).strip().splitlines()


def _skip_without_restriction() -> None:
    if Path("/proc/sys/kernel/unprivileged_bpf_disabled").read_text().strip() == "0":
        pytest.skip("kernel.unprivileged_bpf_disabled=0: the table is for 1/2 (the distributions' default)")


@pytest.mark.hostonly
def test_readme_privilege_table_is_what_this_kernel_answers(cgroup: Path, bpf_objects: dict[str, Path]) -> None:
    """Every row this kernel can measure equals the README's; the others (netkit here) are in the README,
    measured on a kernel that has them (test_netkit_row_is_what_this_kernel_answers, run in the guests)."""
    _skip_without_restriction()
    measured = table(measure(cgroup, bpf_objects)).splitlines()
    print("\n".join(measured))
    readme = readme_table()
    assert [line.split(" | ")[0] for line in readme[2:]] == [f"| {row}" for row in ROWS], "README rows differ"
    assert measured[:2] == readme[:2]
    missing = [line for line in measured[2:] if line not in readme]
    assert missing == [], "re-measured rows differ from the README's:\n" + "\n".join(measured)
    unmeasured = [row for row in ROWS if not any(line.startswith(f"| {row} |") for line in measured)]
    assert unmeasured in ([], ["link netkit"]), unmeasured
    if unmeasured:
        print(f"not measurable on this kernel: {unmeasured}: {netkit_reason()}")


def test_netkit_row_is_what_this_kernel_answers(cgroup: Path, bpf_objects: dict[str, Path]) -> None:
    """The netkit row, measured where netkit exists (the 6.12/7.3 QEMU guests; the host has no CONFIG_NETKIT)."""
    reason = netkit_reason()
    if reason is not None:
        pytest.skip(reason)
    _skip_without_restriction()
    measured = table(measure(cgroup, bpf_objects), ("link netkit",)).splitlines()
    print("\n".join(measured))
    assert measured[2] in readme_table(), "re-measured netkit row differs from the README's:\n" + measured[2]
