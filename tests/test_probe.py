"""probe()/supports() agree with what the kernel actually does, leave nothing behind, and turn a refusal of a
missing feature into NotSupportedError naming the feature and its minimum kernel."""

from __future__ import annotations

import errno
import importlib
import os
import shutil
import time
from pathlib import Path

import pytest

import bpflink
from bpflink import AttachType, NotSupportedError, Program, ProgType, asm, link_create, lowlevel
from bpflink.features import FEATURES, explain
from conftest import open_fds
from privnet import PrivateNetns
from test_info import entry_file_offset

ffi = lowlevel.ffi
# the module, not the bpflink.probe() function that shadows it as a package attribute
probe_mod = importlib.import_module("bpflink.probe")


def prog_names() -> list[bytes]:
    """The names of every loaded program (bpf_prog_get_next_id / get_fd_by_id / get_info_by_fd)."""
    names, cur, nxt = [], 0, ffi.new("__u32 *")
    while lowlevel.lib.bpf_prog_get_next_id(cur, nxt) == 0:
        cur = int(nxt[0])
        fd = lowlevel.bpf_prog_get_fd_by_id(cur)
        if fd < 0:
            continue
        info = ffi.new("struct bpf_prog_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
        if lowlevel.bpf_prog_get_info_by_fd(fd, info, size) == 0:
            names.append(ffi.string(info.name))
        os.close(fd)
    return names


def test_probe_is_cached_and_leaves_no_program_fd_or_cgroup_behind() -> None:
    probe_mod._cache.clear()
    before = open_fds()
    results = bpflink.probe()
    assert open_fds() == before
    # closed, but netfilter links drop their program after an RCU grace period: give the kernel a moment
    deadline = time.monotonic() + 5
    while probe_mod.PROBE_PROG_NAME in prog_names() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert probe_mod.PROBE_PROG_NAME not in prog_names()
    mount = probe_mod._cgroup2_mount()
    assert mount is not None and not [p for p in os.listdir(mount) if p.startswith("bpflink-probe-")]
    assert {r.attach_type for r in results} == set(probe_mod.probeable())
    again = bpflink.probe()
    assert all(a is b for a, b in zip(results, again))  # the same cached objects
    for r in results:
        assert isinstance(r, bpflink.ProbeResult) and r.family == bpflink.families.family_of(r.attach_type)
        assert r.reason and (r.supported or r.errno is not None or r.reason.startswith("not probed"))
    with pytest.raises(AttributeError):
        results[0].supported = False  # type: ignore[misc]


def test_cgroup_egress_supported_and_really_attaches(cgroup: Path) -> None:
    assert bpflink.supports(AttachType.CGROUP_INET_EGRESS) is True
    assert bpflink.supports("cgroup_inet_egress") is True
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=AttachType.CGROUP_INET_EGRESS) \
            as prog, link_create(prog, cgroup, AttachType.CGROUP_INET_EGRESS) as link:
        assert link.info().prog_id == prog.id


def test_kprobe_multi_verdict_matches_a_real_attach() -> None:
    result = probe_mod.probe_attach_type(AttachType.TRACE_KPROBE_MULTI)
    with Program.load(ProgType.KPROBE, asm.return_imm(0), expected_attach_type=AttachType.TRACE_KPROBE_MULTI) as p:
        name = ffi.new("char[]", b"vprintk")
        syms = ffi.new("const char *[]", [name])
        opts = lowlevel.new_link_create_opts()
        opts.kprobe_multi.syms, opts.kprobe_multi.cnt = syms, 1
        try:
            link_create(p, None, AttachType.TRACE_KPROBE_MULTI, opts).close()
        except NotSupportedError as exc:
            assert not result.supported
            assert exc.errno == errno.EOPNOTSUPP and isinstance(exc, OSError)
            assert exc.feature == "kprobe_multi" and exc.min_kernel == "5.18" and "5.18" in str(exc)
            assert isinstance(exc.__cause__, OSError)  # the kernel's own answer stays attached
            # the reason is the probed one: the missing option here, never a guess
            assert explain("kprobe_multi") and explain("kprobe_multi") in result.reason
            return
        assert result.supported, "the probe said unsupported but the kernel attached"


def test_netkit_verdict_matches_a_real_attach_on_a_veth() -> None:
    result = probe_mod.probe_attach_type(AttachType.NETKIT_PRIMARY)
    with PrivateNetns("probe") as ns, Program.load(
            ProgType.SCHED_CLS, asm.return_imm(0), expected_attach_type=AttachType.NETKIT_PRIMARY) as prog:
        ifindex = ns.ifindex("veth0")
        with pytest.raises(OSError) as info:
            ns.call(link_create, prog, ifindex, AttachType.NETKIT_PRIMARY).close()
    if result.supported:  # a netkit kernel: a veth is simply not a netkit device
        assert info.value.errno == errno.ENXIO and not isinstance(info.value, NotSupportedError)
    else:
        assert isinstance(info.value, NotSupportedError) and info.value.feature == "netkit"
        assert info.value.min_kernel == FEATURES["netkit"].min_kernel_str
        assert "CONFIG_NETKIT" in result.reason or "6.7" in result.reason


def test_tcx_verdict_matches_a_real_attach() -> None:
    assert bpflink.supports(AttachType.TCX_INGRESS) == probe_mod.probe_attach_type("tcx_ingress").supported
    with PrivateNetns("probe-tcx") as ns, Program.load(
            ProgType.SCHED_CLS, asm.return_imm(0), expected_attach_type=AttachType.TCX_INGRESS) as prog:
        try:
            link = ns.call(link_create, prog, ns.ifindex("veth1"), AttachType.TCX_INGRESS)
        except NotSupportedError:
            assert not bpflink.supports(AttachType.TCX_INGRESS)
            return
        with link:
            assert bpflink.supports(AttachType.TCX_INGRESS)
            assert link.info().ifindex == ns.ifindex("veth1")  # type: ignore[attr-defined]


def test_uprobe_multi_verdict_matches_a_real_attach(tmp_path: Path) -> None:
    exe = tmp_path / "true-copy"
    shutil.copy("/bin/true", exe)
    with Program.load(ProgType.KPROBE, asm.return_imm(0), expected_attach_type=AttachType.TRACE_UPROBE_MULTI) as p:
        path = ffi.new("char[]", str(exe).encode())
        offsets = ffi.new("unsigned long[]", [entry_file_offset(exe)])
        opts = lowlevel.new_link_create_opts()
        opts.uprobe_multi.path, opts.uprobe_multi.offsets, opts.uprobe_multi.cnt = path, offsets, 1
        try:
            link_create(p, None, AttachType.TRACE_UPROBE_MULTI, opts).close()
            attached = True
        except NotSupportedError:
            attached = False
    assert attached == bpflink.supports(AttachType.TRACE_UPROBE_MULTI)


def test_a_callers_mistake_stays_a_plain_oserror(cgroup: Path) -> None:
    # EINVAL for a supported attach type (wrong program type) must not become NotSupportedError
    with Program.load(ProgType.XDP, asm.return_imm(2), expected_attach_type=AttachType.XDP) as prog, \
            pytest.raises(OSError) as info:
        link_create(prog, cgroup, AttachType.CGROUP_INET_EGRESS)
    assert info.value.errno == errno.EINVAL and not isinstance(info.value, NotSupportedError)


def test_probe_rejects_unprobeable_and_bad_names() -> None:
    with pytest.raises(ValueError, match="no probe"):
        bpflink.supports(AttachType.LIRC_MODE2)
    with pytest.raises((KeyError, ValueError)):
        bpflink.supports("no_such_attach_type")
    result = probe_mod.probe_attach_type(AttachType.CGROUP_INET_EGRESS)
    assert result.to_dict() == {"attach_type": "cgroup_inet_egress", "family": "cgroup", "supported": True,
                                "errno": None, "reason": result.reason}
