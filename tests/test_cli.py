"""The ``bpflink`` command line, run as a real subprocess against real links: output, JSON, exit codes."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import bpflink
from bpflink import AttachType, Link, Map, Program, ProgType, asm, link_create
from bpflink.features import kernel_version
from conftest import BPFFS, UDP_SEND, drain, run_in_cgroup, udp_port
from privnet import PrivateNetns
from test_info import bpftool_links

EGRESS = AttachType.CGROUP_INET_EGRESS
SCRIPT = Path(sys.executable).parent / "bpflink"


def cli(*args: str, netns: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "bpflink", *args]
    if netns is not None:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def cli_json(*args: str, netns: str | None = None) -> Any:
    res = cli(*args, "--json", netns=netns)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.mark.hostonly
def test_probe_table_json_and_require_exit_codes() -> None:
    expected = {r.attach_type.name.lower(): r for r in bpflink.probe()}
    data = cli_json("probe")
    assert {d["attach_type"]: d["supported"] for d in data} == {k: r.supported for k, r in expected.items()}
    assert next(d for d in data if d["attach_type"] == "cgroup_inet_egress")["supported"] is True
    table = cli("probe")
    assert table.returncode == 0 and table.stdout.splitlines()[0].split() == ["ATTACH", "TYPE", "FAMILY",
                                                                              "SUPPORTED", "REASON"]
    assert cli("probe", "--require", "cgroup_inet_egress,cgroup").returncode == 0
    missing = [name for name, r in expected.items() if not r.supported]
    if missing:  # here: kprobe_multi (no CONFIG_FPROBE), netkit (no CONFIG_NETKIT)
        res = cli("probe", "--require", f"cgroup,{missing[0]}")
        assert res.returncode == 1 and missing[0] in res.stderr and "missing" in res.stderr
        assert expected[missing[0]].reason in res.stderr
    bad = cli("probe", "--require", "tcx,no_such_thing")
    assert bad.returncode == 2 and "no_such_thing" in bad.stderr and "Traceback" not in bad.stderr


BTF_TARGETS = {"iter": AttachType.TRACE_ITER, "fentry": AttachType.TRACE_FENTRY, "fmod_ret": AttachType.MODIFY_RETURN,
               "lsm": AttachType.LSM_MAC, "tp_btf": AttachType.TRACE_RAW_TP, "struct_ops": AttachType.STRUCT_OPS,
               "lsm_cgroup": AttachType.LSM_CGROUP}


@pytest.mark.hostonly
def test_probe_rows_and_require_for_btf_targets() -> None:
    # here: iter, tp_btf and struct_ops exit 0; fentry, fmod_ret, lsm and lsm_cgroup 1 (lockdown EPERM).
    # One process per verdict kind, not per name: each CLI run probes again and costs ~20 s in a TCG guest.
    results = dict(zip(BTF_TARGETS, bpflink.probe(list(BTF_TARGETS.values()))))
    rows = {d["attach_type"]: d for d in cli_json("probe")}
    for name, at in BTF_TARGETS.items():
        row = rows[at.name.lower()]
        assert (row["supported"], row["reason"]) == (results[name].supported, results[name].reason), name
    supported = [name for name, r in results.items() if r.supported]
    missing = [name for name, r in results.items() if not r.supported]
    if supported:
        res = cli("probe", "--require", ",".join(supported))
        assert res.returncode == 0, res.stderr
        assert all(BTF_TARGETS[name].name.lower() in res.stdout for name in supported)
    if missing:
        res = cli("probe", "--require", ",".join(missing))
        assert res.returncode == 1
        for name in missing:
            assert f"{name} (" in res.stderr and results[name].reason in res.stderr, (name, res.stderr)


@pytest.mark.hostonly
def test_console_script_runs_probe() -> None:
    assert SCRIPT.exists(), "the console script is installed by pip install -e . (scripts/setup)"
    res = subprocess.run([str(SCRIPT), "probe", "--require", "cgroup"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "cgroup_inet_egress" in res.stdout


def test_list_json_agrees_with_bpftool_and_table_is_aligned(cgroup: Path) -> None:
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS) as prog, \
            link_create(prog, cgroup, EGRESS) as a, link_create(prog, cgroup, AttachType.CGROUP_INET_INGRESS) as b:
        ours = {d["id"]: d for d in cli_json("list") if d["id"] in (a.id, b.id)}
        tool = bpftool_links()
        assert ours == {a.id: tool[a.id], b.id: tool[b.id]}
        assert ours[a.id]["cgroup_id"] == os.stat(cgroup).st_ino
        lines = cli("list").stdout.splitlines()
        header, row = lines[0], next(ln for ln in lines if ln.split()[0] == str(a.id))
        assert header.split() == ["ID", "TYPE", "PROG", "NAME", "TAG", "DETAILS"]
        assert row.index("cgroup") == header.index("TYPE") and row.index(str(prog.id)) == header.index("PROG")
        assert f"cgroup_id={os.stat(cgroup).st_ino}" in row and "attach_type=cgroup_inet_egress" in row
        tag = prog_tag(prog.id)
        assert row.index(tag) == header.index("TAG") and "DETACHED" not in row
        b.detach()
        row_b = next(ln for ln in cli("list").stdout.splitlines() if ln.split()[0] == str(b.id))
        assert "DETACHED cgroup_id=0" in row_b


def test_list_shows_tcx_links_in_another_netns() -> None:
    with PrivateNetns("cli") as ns, Program.load(ProgType.SCHED_CLS, asm.return_imm(0),
                                                 expected_attach_type=AttachType.TCX_INGRESS) as prog:
        ifindex = ns.ifindex("veth1")
        with ns.call(link_create, prog, ifindex, AttachType.TCX_INGRESS) as link:
            entry = next(d for d in cli_json("list") if d["id"] == link.id)
            assert entry == {"id": link.id, "type": "tcx", "prog_id": prog.id, "ifindex": ifindex,
                             "attach_type": "tcx_ingress"}
            q = cli_json("query", "--dev", "veth1", "--attach", "tcx_ingress", netns=ns.name)
            assert [(e["prog_id"], e["link_id"]) for e in q["entries"]] == [(prog.id, link.id)]
            assert q["revision"] == ns.call(bpflink.query, "veth1", AttachType.TCX_INGRESS).revision >= 2


def prog_tag(prog_id: int) -> str:
    """The program's tag as bpftool shows it (an independent reader)."""
    out = subprocess.run(["bpftool", "prog", "show", "id", str(prog_id), "-j"], capture_output=True, text=True,
                         check=True).stdout
    return str(json.loads(out)["tag"])


@pytest.mark.hostonly
def test_show_pin_detach_on_a_live_link(cgroup: Path) -> None:
    pin = BPFFS / f"bpflink-cli-{os.getpid()}"
    with Map.array() as counter, Program.load(ProgType.CGROUP_SKB, asm.count_and_return(counter.fd, 0),
                                              expected_attach_type=EGRESS) as prog, \
            link_create(prog, cgroup, EGRESS) as link:
        assert cli_json("show", str(link.id)) == link.info().to_dict()
        shown = cli("show", str(link.id)).stdout
        assert "cgroup_inet_egress" in shown and str(prog.id) in shown
        rows = dict(line.split(None, 1) for line in shown.splitlines()[1:])
        assert rows["prog_tag"] == prog_tag(prog.id) and rows["state"] == "attached" and rows["pinned"] == "-"

        res = cli("pin", str(link.id), str(pin))
        assert res.returncode == 0, res.stderr
        try:
            with Link.from_pin(pin) as pinned:
                assert pinned.id == link.id
            again = cli("pin", str(link.id), str(pin))  # the path exists now
            assert again.returncode == 1 and "EEXIST" in again.stderr and len(again.stderr.splitlines()) == 1
            assert f"link {link.id}" in again.stderr and str(pin) in again.stderr
            rows = dict(line.split(None, 1) for line in cli("show", str(link.id)).stdout.splitlines()[1:])
            assert rows["pinned"] == str(pin)
            res = cli("unpin", str(pin))
            assert res.returncode == 0 and f"unpinned link {link.id} at {pin}" in res.stdout, res.stderr
            assert not pin.exists()
        finally:
            if pin.exists():
                os.unlink(pin)

        sock, port = udp_port()
        with sock:
            assert run_in_cgroup(cgroup, UDP_SEND.format(n=2, port=port)).returncode == 0
            assert drain(sock) == 0  # attached: dropped
            assert cli("detach", str(link.id)).returncode == 0  # held by this test, the command's parent
            assert run_in_cgroup(cgroup, UDP_SEND.format(n=2, port=port)).returncode == 0
            assert drain(sock) == 2  # detached by the CLI: delivered
        assert link.info().cgroup_id == 0  # type: ignore[attr-defined]
        again = cli("detach", str(link.id))
        assert again.returncode == 0 and f"link {link.id} was already detached" in again.stdout
        rows = dict(line.split(None, 1) for line in cli("show", str(link.id)).stdout.splitlines()[1:])
        assert rows["state"] == "detached"
        q = cli_json("query", "--cgroup", str(cgroup), "--attach", "cgroup_inet_egress")
        assert q["entries"] == []


def test_query_cgroup_lists_the_link(cgroup: Path) -> None:
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS) as prog, \
            link_create(prog, cgroup, EGRESS) as link:
        q = cli_json("query", "--cgroup", str(cgroup), "--attach", "cgroup_inet_egress")
        assert q == json.loads(json.dumps(dataclasses.asdict(bpflink.query(cgroup, EGRESS))))
        # cgroup hooks report the program; link ids only where the kernel fills them (6.18 here does not), and
        # none at all (null) before 6.6, whose BPF_PROG_QUERY has no link_ids nor revision (EINVAL if passed)
        assert [e["prog_id"] for e in q["entries"]] == [prog.id]
        if kernel_version() < (6, 6):
            assert {e["link_id"] for e in q["entries"]} == {None} and q["revision"] is None
        else:
            assert {e["link_id"] for e in q["entries"]} <= {0, link.id} and q["revision"] is not None
        table = cli("query", "--cgroup", str(cgroup), "--attach", "cgroup_inet_egress").stdout
        header, row = table.splitlines()[1:3]
        assert header.split() == ["#", "PROG", "LINK", "FLAGS"] and row.split()[:2] == ["0", str(prog.id)]


@pytest.mark.hostonly
@pytest.mark.parametrize(("args", "code", "needle"), [
    (("show", "4294967295"), 1, "ENOENT"),
    (("detach", "4294967295"), 1, "ENOENT"),
    (("show", "abc"), 2, "not a link id"),
    (("query", "--dev", "no-such-dev0", "--attach", "tcx_ingress"), 2,
     "ENODEV: no network device named 'no-such-dev0'"),
    (("query", "--dev", "/sys/fs/cgroup", "--attach", "tcx_ingress"), 2, "EINVAL: --dev takes a network interface"),
    (("query", "--cgroup", "lo", "--attach", "cgroup_inet_egress"), 2, "'lo' is a network interface"),
    (("query", "--cgroup", "/etc/hostname", "--attach", "cgroup_inet_egress"), 1, "ENOTDIR: query --cgroup /etc/"),
    (("detach", "--force"), 2, "EINVAL"),
    (("unpin", "/etc/hostname"), 1, "/etc/hostname"),
    (("query", "--cgroup", "/nonexistent-bpflink", "--attach", "cgroup_inet_egress"), 1,
     "ENOENT: query --cgroup /nonexistent-bpflink"),
    (("query", "--cgroup", "/sys/fs/cgroup", "--attach", "bogus_attach"), 2, "bogus_attach"),
])
def test_errors_are_one_line_with_errno_name_and_exit_code(args: tuple[str, ...], code: int, needle: str) -> None:
    res = cli(*args)
    assert res.returncode == code, (res.stdout, res.stderr)
    assert needle in res.stderr and "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert re.match(rf"bpflink {args[0]}: E[A-Z0-9]+: ", last), last  # every error line names an errno
    if code == 1:
        assert len(res.stderr.strip().splitlines()) == 1
    if "--json" not in args and args[0] in ("show", "query"):  # with --json: the same error on stdout too
        res_json = cli(*args, "--json")
        assert res_json.returncode == code
        data = json.loads(res_json.stdout)
        assert set(data) == {"error", "errno"} and data["errno"] == last.split(": ")[1]


@pytest.mark.hostonly
def test_debug_shows_the_traceback() -> None:
    res = cli("--debug", "show", "4294967295")
    assert res.returncode != 0 and "Traceback" in res.stderr and "FileNotFoundError" in res.stderr
    res = cli("show", "4294967295", "--debug")
    assert res.returncode != 0 and "Traceback" in res.stderr


@pytest.mark.hostonly
def test_version_names_bpflink_and_libbpf() -> None:
    for cmd in ([str(SCRIPT), "--version"], [sys.executable, "-m", "bpflink", "--version"]):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        want = f"bpflink {bpflink.__version__} (libbpf {bpflink.libbpf_version()})\n"
        assert res.returncode == 0 and res.stdout == want, res


@pytest.mark.hostonly
@pytest.mark.parametrize("command", ["probe --json", "explain tcx_ingress --json", "list"])
def test_closed_pipe_ends_quietly(command: str) -> None:
    # the reader is gone before we write: Unix tools die of SIGPIPE without a word
    script = f"{SCRIPT} {command} | true; echo ${{PIPESTATUS[0]}}"
    res = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert res.stderr == "" and res.stdout.strip() in ("0", "141"), (res.stdout, res.stderr)


@pytest.mark.hostonly
def test_list_into_head_is_quiet(cgroup: Path) -> None:
    subs = [cgroup / f"sub{i}" for i in range(6)]
    links: list[Link] = []
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS) as prog:
        try:
            for sub in subs:
                sub.mkdir()
                for at in (EGRESS, AttachType.CGROUP_INET_INGRESS):  # 64 programs per hook at most
                    links += [link_create(prog, sub, at) for _ in range(60)]
            # ~90 KB of JSON, more than a pipe holds: the writer is still writing when head has gone
            res = subprocess.run(["bash", "-c", f"{SCRIPT} list --json | head -1; echo ${{PIPESTATUS[0]}}"],
                                 capture_output=True, text=True, timeout=60)
            assert res.stderr == "" and res.stdout.splitlines() == ["[", "141"], res
        finally:
            for link in links:
                link.close()
            for sub in subs:
                if sub.exists():
                    sub.rmdir()


def test_fast_decoder_equals_info_for_every_kind(tmp_path: Path, cgroup: Path) -> None:
    """The CLI's decoder (bpflink._rawinfo) gives exactly LinkInfo.to_dict() for every link kind made here,
    and list/show print the same; a perf_event link's show names its tracepoint."""
    import shutil

    from bpflink._rawinfo import ATTACH_NAMES, LINK_NAMES, link_dict
    from bpflink.enums import LinkType
    from test_info import entry_file_offset, perf_event_open_tracepoint

    assert all(AttachType(v).name.lower() == n for v, n in ATTACH_NAMES.items())
    assert all(LinkType(v).name.lower() == n for v, n in LINK_NAMES.items())
    ffi = bpflink.lowlevel.ffi
    exe = tmp_path / "true-copy"
    shutil.copy("/bin/true", exe)
    made: list[Link] = []
    pfd = perf_event_open_tracepoint("syscalls", "sys_enter_getppid")
    try:
        with Map.array() as counter, \
                Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS) as skb, \
                Program.load(ProgType.TRACEPOINT, asm.count_and_return(counter.fd, 0)) as tp, \
                Program.load(ProgType.KPROBE, asm.count_and_return(counter.fd, 0),
                             expected_attach_type=AttachType.TRACE_UPROBE_MULTI) as up:
            made.append(link_create(skb, cgroup, EGRESS))
            detached = link_create(skb, cgroup, AttachType.CGROUP_INET_INGRESS)
            detached.detach()
            made.append(detached)
            opts = bpflink.lowlevel.new_link_create_opts()
            opts.perf_event.bpf_cookie = 7
            made.append(link_create(tp, pfd, AttachType.PERF_EVENT, opts))
            if bpflink.supports(AttachType.TRACE_UPROBE_MULTI):
                path = ffi.new("char[]", str(exe).encode())
                offsets = ffi.new("unsigned long[]", [entry_file_offset(exe)])
                cookies = ffi.new("__u64[]", [0xABC])
                opts = bpflink.lowlevel.new_link_create_opts()
                um = opts.uprobe_multi
                um.path, um.offsets, um.cookies, um.cnt = path, offsets, cookies, 1
                made.append(link_create(up, None, AttachType.TRACE_UPROBE_MULTI, opts))
            listed = {d["id"]: d for d in cli_json("list")}
            for link in made:
                want = link.info().to_dict()
                assert link_dict(link.fd) == want
                assert listed[link.id] == want
                assert cli_json("show", str(link.id)) == want
            shown = dict(line.split(None, 1) for line in cli("show", str(made[2].id)).stdout.splitlines()[1:])
            if kernel_version() >= (6, 6):
                assert shown["event"] == "tracepoint sys_enter_getppid"
            assert shown["state"] == "-"  # perf_event info cannot tell
    finally:
        for link in made:
            link.close()
        os.close(pfd)


@pytest.mark.hostonly
def test_json_writer_matches_json_dumps() -> None:
    from bpflink.cli import _json

    samples: list[Any] = [[], {}, [1, 2], {"a": [1, 2, 3], "b": None, "c": True, "d": "x\"\u00e9\n", "f": 1.5,
                                       "e": [{"x": 1}, {"y": []}], "g": False, "h": -(2**63)},
                          [{"id": 1, "type": "cgroup", "offsets": list(range(5))}]]
    for value in samples:
        assert _json(value) == json.dumps(value, indent=2)
    # the list writer's C-encoder path, and its fallback when a string could be mistaken for a separator
    import contextlib
    import io

    from bpflink.cli import _stream_json_list

    items = [{"id": i, "type": "cgroup", "name": n, "x": None} for i, n in
             enumerate(["plain", 'a, "b', "ends with, ", "\u00e9[{", ""])]
    items.append({"id": 9, "offsets": [1, 2], "nested": {"k": "v"}})
    for count in (0, 1, len(items), 3000):
        rows = (items * 500)[:count]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            _stream_json_list(iter(rows))
        assert out.getvalue() == json.dumps(rows, indent=2) + "\n"


@pytest.mark.hostonly
def test_cli_benchmark_runs_on_a_small_count(tmp_path: Path) -> None:
    """bench/cli.py end to end on ~150 links of every kind it makes (no timing assertions: bench/README.md)."""
    from conftest import ROOT

    out = tmp_path / "cli.json"
    res = subprocess.run([sys.executable, "-m", "bench.cli", "--links", "150", "--rounds", "1", "--offsets", "300",
                          "--tcx", "4", "--netns", "2", "--perf", "2", "--uprobes", "1", "--uprobe-offsets", "20",
                          "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["population"]["total"] == 150
    assert data["population"]["made"] == {"uprobe_multi": 2, "perf_event": 2, "tcx": 4, "netns": 2, "cgroup": 140}
    assert data["scale"]["bpflink.links()"]["links"] >= 150 and data["scale"]["C loop"]["links"] >= 150
    assert {"bpflink list --json", "python -c pass", "bpflink probe --json"} <= data["cold"].keys()
    assert "show uprobe_multi 300" in data["big"] and "query 64" in data["big"]
    assert "bpflink.links()" in res.stdout


@pytest.mark.hostonly
def test_explain_is_a_dry_run_that_agrees_with_the_kernel_facts() -> None:
    from bpflink.features import FEATURES, kernel_config

    data = cli_json("explain", "tcx_ingress")
    assert data["attach_type"] == "tcx_ingress" and data["family"] == "tcx" and "BPF_LINK_CREATE" in data["mechanism"]
    assert data["kernel"] == {"running": "%d.%d" % kernel_version(), "needs": FEATURES["tcx"].min_kernel_str,
                              "ok": kernel_version() >= FEATURES["tcx"].min_kernel}
    config = kernel_config()
    if config is not None:
        assert data["config"] == {"CONFIG_NET_XGRESS": config.get("CONFIG_NET_XGRESS", "not set")}
    caps = data["capabilities"]
    assert caps["needed"] == ["CAP_BPF", "CAP_NET_ADMIN"]
    status = Path("/proc/self/status").read_text()
    eff = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("CapEff:")), 16)
    assert ("CAP_NET_ADMIN" in caps["held"]) == bool(eff >> 12 & 1) and caps["missing"] == []  # root here
    assert data["quirks"] and data["lockdown"]
    text = cli("explain", "perf_event").stdout
    assert "kretprobe on a missing symbol" in text and "caps        needs CAP_BPF + CAP_PERFMON" in text
    bad = cli("explain", "no_such_type")
    assert bad.returncode == 2 and "EINVAL" in bad.stderr and "no_such_type" in bad.stderr


def test_batch_walk_leaks_no_fd_when_stopped_early() -> None:
    from bpflink._rawinfo import walk
    from conftest import open_fds
    from test_info import perf_event_open_tracepoint

    names = ("sys_enter_getppid", "sys_enter_getpid", "sys_enter_getuid")
    pfds = [perf_event_open_tracepoint("syscalls", n) for n in names]
    try:
        with Program.load(ProgType.TRACEPOINT, asm.return_imm(0)) as prog:
            made = [link_create(prog, pfd, AttachType.PERF_EVENT) for pfd in pfds]
            try:
                ids = {link.id for link in made}
                before = open_fds()
                seen = []
                for info, fd in walk(batch=2):
                    if int(info.id) in ids:  # type: ignore[attr-defined]
                        seen.append((int(info.id), fd))  # type: ignore[attr-defined]
                    if fd >= 0:
                        os.close(fd)
                assert {i for i, _ in seen} == ids and all(fd >= 0 for _, fd in seen)  # perf_event: fd kept
                assert open_fds() == before
                gen = walk(batch=64)
                _, fd = next(gen)  # the rest of this batch holds open fds of perf_event links...
                if fd >= 0:
                    os.close(fd)
                gen.close()  # ...closed when the consumer stops
                assert open_fds() == before
            finally:
                for link in made:
                    link.close()
    finally:
        for pfd in pfds:
            os.close(pfd)
