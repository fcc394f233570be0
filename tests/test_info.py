"""Link.info() and bpflink.links() on real links of every family this kernel supports, checked three ways: the
link fires, info() gives back what was passed in, and bpftool (an independent decoder) agrees."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any

import pytest

import bpflink
from bpflink import AttachType, Link, LinkInfo, LinkType, Map, Program, ProgType, asm, link_create, lowlevel
from bpflink.features import explain
from bpflink.info import (
    CgroupLinkInfo,
    IterLinkInfo,
    NetfilterLinkInfo,
    NetnsLinkInfo,
    PerfEventLinkInfo,
    PerfEventType,
    TcxLinkInfo,
    UprobeMultiLinkInfo,
    XdpLinkInfo,
    decode,
)
from bpflink.listing import link_ids
from conftest import TRACEFS, UDP_SEND, drain, open_fds, run_in_cgroup, udp_port
from honest_skips import unsupported
from privnet import PrivateNetns

ffi = lowlevel.ffi
EGRESS = AttachType.CGROUP_INET_EGRESS


# --- helpers that create links with lowlevel calls and raw opts ----------------------------------------------


def counting(prog_type: ProgType, counter: Map, verdict: int, expected: AttachType | None) -> Program:
    return Program.load(prog_type, asm.count_and_return(counter.fd, verdict), expected_attach_type=expected)


def bpftool_links() -> dict[int, dict[str, Any]]:
    tool = shutil.which("bpftool")
    if tool is None:
        pytest.fail("bpftool is missing: run scripts/setup")
    for _ in range(20):
        done = subprocess.run([tool, "link", "list", "-j"], capture_output=True, text=True)
        # bpftool skips only ENOENT ids: one another process is still setting up (EAGAIN) aborts its walk
        if done.returncode == 0 or "Resource temporarily unavailable" not in done.stdout + done.stderr:
            break
    done.check_returncode()
    return {entry["id"]: entry for entry in json.loads(done.stdout)}


def perf_event_open_tracepoint(category: str, name: str) -> int:
    """``perf_event_open`` on a tracepoint for this process on any CPU (the 64-byte PERF_ATTR_SIZE_VER0 attr)."""
    tp_id = int((TRACEFS / "events" / category / name / "id").read_text())
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    attr = struct.pack("<IIQQQQQII", 2, 64, tp_id, 1, 0, 0, 0, 1, 0).ljust(64, b"\0")  # PERF_TYPE_TRACEPOINT
    buf = ctypes.create_string_buffer(attr, 64)
    fd = libc.syscall(298, buf, os.getpid(), -1, -1, 8)  # __NR_perf_event_open (x86_64), PERF_FLAG_FD_CLOEXEC
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"perf_event_open: {os.strerror(err)}")
    return int(fd)


def entry_file_offset(path: Path) -> int:
    """File offset of an ELF executable's entry point (an instruction boundary: safe for a uprobe)."""
    data = path.read_bytes()
    entry, phoff = struct.unpack_from("<QQ", data, 0x18)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and p_vaddr <= entry < p_vaddr + p_filesz:  # PT_LOAD
            return int(entry - p_vaddr + p_offset)
    raise ValueError(f"{path}: entry point in no PT_LOAD segment")


def send_raw_frame(dev: str) -> None:
    """One Ethernet frame out of ``dev`` (AF_PACKET): it arrives on the veth peer's ingress, XDP and tcx."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((dev, 0))
        s.send(b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + b"bpflink-info".ljust(46, b"\0"))


@contextmanager
def alive(*objs: Any) -> Iterator[None]:
    with ExitStack() as stack:
        for obj in objs:
            stack.enter_context(obj)
        yield


# --- one family at a time --------------------------------------------------------------------------------------


def test_cgroup_info_round_trips_and_matches_bpftool_then_detach_zeroes(cgroup: Path) -> None:
    with Map.array() as counter, counting(ProgType.CGROUP_SKB, counter, 0, EGRESS) as prog, \
            link_create(prog, cgroup, EGRESS) as link:
        sock, port = udp_port()
        with sock:
            assert run_in_cgroup(cgroup, UDP_SEND.format(n=3, port=port)).returncode == 0
            assert drain(sock) == 0 and counter.lookup_int(0) == 3  # the link fires
        info = link.info()
        assert isinstance(info, CgroupLinkInfo) and type(info) is CgroupLinkInfo
        assert (info.type, info.id, info.prog_id) == (LinkType.CGROUP, link.id, prog.id)
        assert info.cgroup_id == os.stat(cgroup).st_ino and info.attach_type == EGRESS
        assert bpftool_links()[link.id] == info.to_dict()  # every key and value, as bpftool spells them
        listed = {i.id: i for i in bpflink.links()}
        assert listed[link.id] == info
        with pytest.raises(FrozenInstanceError):
            info.prog_id = 0  # type: ignore[misc]
        link.detach()
        after = link.info()
        assert after.cgroup_id == 0 and after.prog_id == prog.id


def test_xdp_and_tcx_info_on_a_private_veth() -> None:
    with PrivateNetns("info") as ns, Map.array(2) as counter, \
            counting(ProgType.XDP, counter, 2, AttachType.XDP) as xdp_prog, \
            Program.load(ProgType.SCHED_CLS, asm.count_and_return(counter.fd, 0, key=1),
                         expected_attach_type=AttachType.TCX_INGRESS) as tcx_prog:
        ifindex = ns.ifindex("veth1")
        xdp = ns.call(link_create, xdp_prog, ifindex, AttachType.XDP)
        tcx = ns.call(link_create, tcx_prog, ifindex, AttachType.TCX_INGRESS)
        with xdp, tcx:
            ns.call(send_raw_frame, "veth0")
            assert counter.lookup_int(0) >= 1 and counter.lookup_int(1) >= 1  # XDP passed it on to tcx
            xi, ti = xdp.info(), tcx.info()
            assert isinstance(xi, XdpLinkInfo) and (xi.ifindex, xi.prog_id) == (ifindex, xdp_prog.id)
            assert isinstance(ti, TcxLinkInfo)
            assert (ti.ifindex, ti.attach_type, ti.prog_id) == (ifindex, AttachType.TCX_INGRESS, tcx_prog.id)
            tool = bpftool_links()
            for info in (xi, ti):
                theirs = tool[info.id]
                assert (theirs["type"], theirs["prog_id"], theirs["ifindex"]) == (
                    info.type.name.lower(), info.prog_id, ifindex)
            assert tool[ti.id]["attach_type"] == "tcx_ingress"


def test_netfilter_info_in_a_private_netns() -> None:
    hook = bpflink.NfInetHook.LOCAL_OUT

    def attach(prog: Program) -> Link:
        opts = lowlevel.new_link_create_opts()
        opts.netfilter.pf, opts.netfilter.hooknum, opts.netfilter.priority = int(bpflink.NfProto.IPV4), int(hook), -7
        return link_create(prog, None, AttachType.NETFILTER, opts)

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"x", ("10.77.0.1", 9))

    with Map.array() as counter, ExitStack() as stack:
        try:
            prog = stack.enter_context(counting(ProgType.NETFILTER, counter, 1, AttachType.NETFILTER))
        except OSError as exc:  # kernels before 6.4 have no netfilter program type
            unsupported("netfilter", exc)
        ns = stack.enter_context(PrivateNetns("info-nf"))
        link = stack.enter_context(ns.call(attach, prog))
        ns.call(send)
        assert counter.lookup_int(0) >= 1
        info = link.info()
        assert isinstance(info, NetfilterLinkInfo)
        assert (info.pf, info.hooknum, info.priority, info.flags) == (int(bpflink.NfProto.IPV4), int(hook), -7, 0)
        theirs = bpftool_links()[info.id]
        assert (theirs["type"], theirs["prog_id"], theirs["pf"], theirs["hook"], theirs["prio"]) == (
            "netfilter", prog.id, info.pf, info.hooknum, info.priority)


def test_netns_sk_lookup_info_in_a_private_netns() -> None:
    def attach(prog: Program) -> Link:
        with open("/proc/thread-self/ns/net") as ns_file:
            return link_create(prog, ns_file.fileno(), AttachType.SK_LOOKUP)

    def send() -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            rx.bind(("127.0.0.1", 0))
            rx.settimeout(2)
            tx.sendto(b"x", rx.getsockname())
            return len(rx.recv(16))

    with PrivateNetns("info-sk") as ns, Map.array() as counter, \
            counting(ProgType.SK_LOOKUP, counter, 1, AttachType.SK_LOOKUP) as prog, ns.call(attach, prog) as link:
        assert ns.call(send) == 1 and counter.lookup_int(0) >= 1  # SK_PASS: looked up, still delivered
        info = link.info()
        assert isinstance(info, NetnsLinkInfo)
        assert (info.netns_ino, info.attach_type) == (os.stat(f"/run/netns/{ns.name}").st_ino, AttachType.SK_LOOKUP)
        theirs = bpftool_links()[info.id]
        assert (theirs["type"], theirs["prog_id"], theirs["netns_ino"], theirs["attach_type"]) == (
            "netns", prog.id, info.netns_ino, "sk_lookup")


def test_perf_event_tracepoint_info_name_and_cookie() -> None:
    pfd = perf_event_open_tracepoint("syscalls", "sys_enter_getppid")
    try:
        with Map.array() as counter, counting(ProgType.TRACEPOINT, counter, 0, None) as prog:
            opts = lowlevel.new_link_create_opts()
            opts.perf_event.bpf_cookie = 0xC00C1E
            with link_create(prog, pfd, AttachType.PERF_EVENT, opts) as link:
                os.getppid()
                os.getppid()
                assert counter.lookup_int(0) >= 2
                info = link.info()
                assert isinstance(info, PerfEventLinkInfo)
                theirs = bpftool_links()[info.id]
                assert (theirs["type"], theirs["prog_id"]) == ("perf_event", prog.id)
                if explain("perf_event_link_info"):  # < 6.6: the kernel reports no perf_event details at all
                    assert not info.reported and "tracepoint" not in theirs
                    assert (info.perf_type, info.name, info.cookie, info.offset) == (
                        PerfEventType.UNSPEC, None, None, None)
                    return
                assert info.reported
                assert (info.perf_type, info.name, info.cookie) == (
                    PerfEventType.TRACEPOINT, "sys_enter_getppid", 0xC00C1E)
                assert theirs.get("tracepoint") == "sys_enter_getppid"
                assert theirs.get("cookie", info.cookie) == info.cookie
    finally:
        os.close(pfd)


def test_uprobe_multi_info_path_offsets_cookies(tmp_path: Path) -> None:
    exe = tmp_path / "true-copy"  # our own copy: no other process runs the probed code
    shutil.copy("/bin/true", exe)
    entry = entry_file_offset(exe)
    with Map.array() as counter, counting(ProgType.KPROBE, counter, 0, AttachType.TRACE_UPROBE_MULTI) as prog:
        path = ffi.new("char[]", str(exe).encode())
        offsets = ffi.new("unsigned long[]", [entry])
        cookies = ffi.new("__u64[]", [0xABC])
        opts = lowlevel.new_link_create_opts()
        um = opts.uprobe_multi
        um.path, um.offsets, um.cookies, um.cnt = path, offsets, cookies, 1
        with link_create(prog, None, AttachType.TRACE_UPROBE_MULTI, opts) as link:
            subprocess.run([str(exe)], check=True)
            assert counter.lookup_int(0) == 1
            info = link.info()
            assert isinstance(info, UprobeMultiLinkInfo)
            assert (info.path, info.offsets, info.cookies, info.count, info.pid) == (
                str(exe), (entry,), (0xABC,), 1, 0)
            assert info.ref_ctr_offsets == (0,)
            theirs = bpftool_links()[info.id]
            assert (theirs["type"], theirs["prog_id"], theirs["path"], theirs["func_cnt"]) == (
                "uprobe_multi", prog.id, str(exe), 1)
            assert [f["offset"] for f in theirs["funcs"]] == [entry]
            assert [f["cookie"] for f in theirs["funcs"]] == [0xABC]


def test_iter_info_target_and_task_filter(bpf_objects: dict[str, Path]) -> None:
    try:
        prog = Program.from_object(bpf_objects["info_iter"], "dump_pids")
    except PermissionError as exc:
        unsupported("iter", exc, extra_reason=tracing_loads_refused())
    with prog:
        raw = ffi.new("char[]", ffi.sizeof("union bpf_iter_link_info"))
        ffi.cast("__u32 *", raw)[0] = os.getpid()  # .task.tid is the union's first member: one thread only
        opts = lowlevel.new_link_create_opts()
        opts.iter_info = ffi.cast("union bpf_iter_link_info *", raw)
        opts.iter_info_len = ffi.sizeof("union bpf_iter_link_info")
        with link_create(prog, None, AttachType.TRACE_ITER, opts) as link:
            fd = lowlevel.bpf_iter_create(link.fd)
            assert fd >= 0
            with os.fdopen(fd, "rb") as out:
                data = out.read()
            if len(data) != 4:  # kernels before 6.1 ignore the task iterator's tid filter: every task runs
                unsupported("iter_task_filter", ValueError(f"the task iterator ran {len(data) // 4} times"))
            assert struct.unpack("<I", data) == (os.getpid(),)  # the iterator ran, on our thread only
            info = link.info()
            assert isinstance(info, IterLinkInfo)
            assert (info.target_name, info.tid, info.pid, info.map_id) == ("task", os.getpid(), 0, None)
            theirs = bpftool_links()[info.id]
            assert (theirs["type"], theirs["prog_id"], theirs["target_name"]) == ("iter", prog.id, "task")
            assert theirs.get("tid", info.tid) == info.tid


def tracing_loads_refused() -> str | None:
    """Established by trial: does this kernel refuse every BPF_PROG_TYPE_TRACING load with EPERM? (An fentry
    load with a bogus BTF id answers EINVAL/ESRCH on kernels that allow tracing programs.)"""
    try:
        Program.load(ProgType.TRACING, asm.return_imm(0), expected_attach_type=AttachType.TRACE_FENTRY,
                     attach_btf_id=0x7FFFFFF).close()
    except OSError as exc:
        if exc.errno == errno.EPERM:
            return "this kernel refuses tracing-type program loads (a minimal fentry load answered EPERM as root)"
    return None


def test_kprobe_multi_info_or_honest_skip() -> None:
    with Program.load(ProgType.KPROBE, asm.return_imm(0), expected_attach_type=AttachType.TRACE_KPROBE_MULTI) as p:
        name = ffi.new("char[]", b"vprintk")
        syms = ffi.new("const char *[]", [name])
        cookies = ffi.new("__u64[]", [7])
        opts = lowlevel.new_link_create_opts()
        opts.kprobe_multi.syms, opts.kprobe_multi.cookies, opts.kprobe_multi.cnt = syms, cookies, 1
        try:
            link = link_create(p, None, AttachType.TRACE_KPROBE_MULTI, opts)
        except OSError as exc:
            unsupported("kprobe_multi", exc)
        with link:
            info = link.info()
            assert info.type == LinkType.KPROBE_MULTI and info.count == 1  # type: ignore[attr-defined]
            assert info.cookies == (7,)  # type: ignore[attr-defined]
            (listed,) = [i for i in bpflink.links() if i.id == link.id]  # its arrays read by id when asked
            assert (listed.cookies, len(listed.addrs)) == ((7,), 1)  # type: ignore[attr-defined]
            assert listed == info
            late = link.info()
        # info() copied the arrays out while the link was there; their tuples are made on first access
        assert "addrs" not in vars(late) and late.array("cookies").tolist() == [7]  # type: ignore[attr-defined]
        assert (late.cookies, len(late.addrs)) == ((7,), 1) and late == info  # type: ignore[attr-defined]


# --- listing and robustness -----------------------------------------------------------------------------------


def test_links_lists_every_id_bpftool_lists_and_closes_its_fds(cgroup: Path) -> None:
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS) as prog, \
            link_create(prog, cgroup, EGRESS) as a, link_create(prog, cgroup, AttachType.CGROUP_INET_INGRESS) as b:
        before = open_fds()
        ours = [i for i in bpflink.links() if i.id in (a.id, b.id)]
        assert open_fds() == before
        assert [(i.id, i.prog_id) for i in ours] == [(a.id, prog.id), (b.id, prog.id)]
        assert {i.attach_type for i in ours} == {EGRESS, AttachType.CGROUP_INET_INGRESS}  # type: ignore[attr-defined]
        ids = list(link_ids())
        assert ids == sorted(ids) and {a.id, b.id} <= set(ids)
        tool = bpftool_links()
        assert {a.id, b.id} <= tool.keys()


def test_unknown_link_type_decodes_to_plain_linkinfo(cgroup: Path) -> None:
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS) as prog, \
            link_create(prog, cgroup, EGRESS) as link:
        raw = bpflink.info.raw_link_info(link.fd)
        raw.type = 0x7777  # what a newer kernel's link type looks like to these headers
        info = decode(link.fd, raw)
        assert type(info) is LinkInfo and info.id == link.id and info.type.name == "UNKNOWN_30583"
        assert info.to_dict() == {"id": link.id, "type": "unknown_30583", "prog_id": prog.id}


def test_link_id_takes_one_info_call_where_info_takes_two(monkeypatch: pytest.MonkeyPatch) -> None:
    pfd = perf_event_open_tracepoint("syscalls", "sys_enter_getppid")
    try:
        with Program.load(ProgType.TRACEPOINT, asm.return_imm(0)) as prog, \
                link_create(prog, pfd, AttachType.PERF_EVENT) as link:
            calls: list[int] = []
            real = lowlevel.bpf_link_get_info_by_fd

            def counted(fd: int, info: Any, size: Any) -> int:
                calls.append(fd)
                return real(fd, info, size)

            monkeypatch.setattr(lowlevel, "bpf_link_get_info_by_fd", counted)
            link_id = link.id
            assert len(calls) == 1
            info = link.info()
            # the tracepoint's name needs the second call; a kernel < 6.6 reports no perf_event details (no
            # name either), so one call is all there is to make there
            reported = not explain("perf_event_link_info")
            assert isinstance(info, PerfEventLinkInfo) and info.reported == reported
            assert len(calls) == (3 if reported else 2) and info.id == link_id
            with Link.from_id(link_id) as again:
                assert again.info() == info
    finally:
        os.close(pfd)


# --- libbpf's messages --------------------------------------------------------------------------------------


def test_libbpf_messages_reach_logging_with_levels(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bogus = tmp_path / "not-elf.bpf.o"
    bogus.write_bytes(b"this is not an ELF object")
    caplog.set_level(logging.DEBUG, logger="bpflink.libbpf")
    with pytest.raises(OSError):
        bpflink.Object.open(bogus)
    records = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "bpflink.libbpf"]
    assert (logging.WARNING, f"libbpf: elf: '{bogus}' is not a proper ELF object") in records
    assert any(level == logging.DEBUG and "loading object" in msg for level, msg in records)
    assert all(not msg.endswith("\n") for _level, msg in records)

    caplog.clear()
    bpflink.route_libbpf_print(False)
    try:
        with pytest.raises(OSError):
            bpflink.Object.open(bogus)
        assert not [r for r in caplog.records if r.name == "bpflink.libbpf"]
    finally:
        bpflink.route_libbpf_print(True)
