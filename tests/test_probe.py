"""probe()/supports() agree with what the kernel actually does, leave nothing behind, and turn a refusal of a
missing feature into NotSupportedError naming the feature and its minimum kernel."""

from __future__ import annotations

import errno
import os
import shutil
import time
from pathlib import Path

import pytest

import bpflink
from bpflink import (
    AttachType,
    Map,
    NotSupportedError,
    Object,
    Program,
    ProgType,
    asm,
    kernel,
    link_create,
    lowlevel,
    opts,
)
from bpflink import probing as probe_mod
from bpflink.errors import VerifierError
from bpflink.features import FEATURES, explain
from bpflink.probing import _btf
from bpflink.symbols import btf_id
from conftest import open_fds, run_in_cgroup
from privnet import PrivateNetns
from test_info import entry_file_offset
from test_struct_ops import AVAILABLE, CC, ready_map
from tracehelp import RETURN, hits, load

ffi = lowlevel.ffi
OUR_CC = f"bpflinkp{os.getpid() % 10_000_000}"  # the struct_ops probe's name (other processes probe too)


def prog_names(after: int = 0) -> list[bytes]:
    """The names of every loaded program with an id above ``after`` (bpf_prog_get_next_id / get_fd_by_id /
    get_info_by_fd)."""
    names, cur, nxt = [], after, ffi.new("__u32 *")
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


def last_prog_id() -> int:
    cur, nxt = 0, ffi.new("__u32 *")
    while lowlevel.lib.bpf_prog_get_next_id(cur, nxt) == 0:
        cur = int(nxt[0])
    return cur


def assert_no_probe_program_left(first: int) -> None:
    """No probe program loaded since id ``first`` is left. Closed is not yet freed: netfilter links and struct_ops
    maps drop their programs after RCU grace periods, seconds on a busy host (measured up to ~11 s here with other
    jobs on both CPUs). Programs loaded before ``first`` may be other processes' probes on a shared host."""
    deadline = time.monotonic() + 30
    while probe_mod.PROBE_PROG_NAME in prog_names(first) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert probe_mod.PROBE_PROG_NAME not in prog_names(first)


def test_probe_is_cached_and_leaves_no_program_fd_or_cgroup_behind() -> None:
    kernel.forget()
    before, first = open_fds(), last_prog_id()
    results = bpflink.probe()
    assert open_fds() == before
    assert_no_probe_program_left(first)
    mount = kernel.cgroup2_mount()
    assert mount is not None and not [p for p in os.listdir(mount) if p.startswith("bpflink-probe-")]
    assert OUR_CC not in AVAILABLE.read_text().split()  # the struct_ops probe's congestion control
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
    with pytest.raises(ValueError, match=r"no probe for LIRC_MODE2: .*BPF_PROG_ATTACH only"):
        bpflink.supports(AttachType.LIRC_MODE2)
    # every attach type the headers know is probed, except those the kernel makes no link of
    rest = [at for at in AttachType if at.available and at not in probe_mod.probeable()]
    assert {at.name for at in rest} <= set(probe_mod._NO_LINK)
    for at in rest:
        with pytest.raises(ValueError, match="makes no link of this attach type"):
            bpflink.supports(at)
    with pytest.raises((KeyError, ValueError)):
        bpflink.supports("no_such_attach_type")
    result = probe_mod.probe_attach_type(AttachType.CGROUP_INET_EGRESS)
    assert result.to_dict() == {"attach_type": "cgroup_inet_egress", "family": "cgroup", "supported": True,
                                "errno": None, "reason": result.reason}


# --- attach types whose program names a BTF target at load (bpflink.probing._btf) ------------------------------
ME = os.getpid()  # getpgid(0) skips the security hook; an explicit pid goes through it


def refused_as_probed(result: bpflink.ProbeResult, exc: BaseException) -> None:
    """The real attempt failed: the probe must have said so, with the same errno and a specific reason."""
    assert isinstance(exc, OSError) and not result.supported, f"the probe said supported, but: {exc!r}"
    assert result.errno == exc.errno or isinstance(exc, NotSupportedError), (result, exc)
    mode = kernel.lockdown()
    if exc.errno == errno.EPERM and mode and os.geteuid() == 0:
        assert "EPERM" in result.reason and f"lockdown ('{mode}')" in result.reason


def test_iter_verdict_matches_an_iterator_that_reads_output(bpf_objects: dict[str, Path]) -> None:
    result = probe_mod.probe_attach_type(AttachType.TRACE_ITER)
    # only the task iterator: the file's cgroup iterator needs 6.1 (its load would fail the whole object)
    with Object.open(bpf_objects["iter_dump"], programs=["dump_task"]) as obj, obj.program("dump_task") as prog:
        try:
            link = link_create(prog, None, AttachType.TRACE_ITER)
        except OSError as exc:
            refused_as_probed(result, exc)
            return
        with link:
            lines = link.read_iter(text=True).splitlines()
    assert any(line.startswith(f"{ME} {ME} ") for line in lines)  # "tgid pid comm" of this process
    assert result.supported and "read" in result.reason


TRAMPOLINES = {  # attach type: (program in tests/bpf/trace_tracing.bpf.c, cookie, key flag)
    AttachType.TRACE_FENTRY: ("fentry_getpgid", 31, 0), AttachType.TRACE_FEXIT: ("fexit_getpgid", 32, RETURN),
    AttachType.MODIFY_RETURN: ("fmod_ret_getpgid", 33, 0), AttachType.LSM_MAC: ("lsm_getpgid", 34, 0)}


@pytest.mark.parametrize("at", list(TRAMPOLINES), ids=lambda at: at.name.lower())
def test_trampoline_verdict_matches_a_real_link_that_fires(at: AttachType, bpf_objects: dict[str, Path]) -> None:
    result = probe_mod.probe_attach_type(at)
    name, cookie, flag = TRAMPOLINES[at]
    try:
        prog = load(bpf_objects["trace_tracing"], name, only_me=True)
    except (OSError, VerifierError) as exc:
        refused_as_probed(result, exc)
        return
    with prog:
        try:
            link = link_create(prog, None, at, opts.Tracing(cookie=cookie))
        except OSError as exc:
            refused_as_probed(result, exc)
            return
        with link:
            if at == AttachType.MODIFY_RETURN:  # the program makes getpgid fail for this process
                with pytest.raises(PermissionError):
                    os.getpgid(ME)
            else:
                os.getpgid(ME)
            fired = hits(prog, cookie | flag)
    # an lsm link is created even where bpf is no active LSM, but then never runs: the probe says unsupported
    assert result.supported == (fired == 1), (result, fired)


def fork_twice() -> None:
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)


def test_tp_btf_verdict_matches_a_real_link_that_fires(bpf_objects: dict[str, Path]) -> None:
    result = probe_mod.probe_attach_type(AttachType.TRACE_RAW_TP)
    fork_tp = btf_id("btf_trace_sched_process_fork", "typedef")
    with Map.array(1) as counter, Program.load(ProgType.TRACING, asm.count_and_return(counter.fd, 0),
                                               expected_attach_type=AttachType.TRACE_RAW_TP,
                                               attach_btf_id=fork_tp) as prog:
        try:
            link = link_create(prog, None, AttachType.TRACE_RAW_TP)
        except OSError as exc:
            refused_as_probed(result, exc)
            return
        with link:
            fork_twice()
            assert counter.lookup_int(0) >= 2  # every fork on the system counts
    assert result.supported
    # the cookie: read with bpf_get_attach_cookie, which tp_btf programs may call only where the probe says so
    try:
        cookie_prog = load(bpf_objects["trace_tracing"], "tp_btf_fork", only_me=True)
    except (OSError, VerifierError) as exc:
        assert "no cookies" in result.reason and exc.errno == errno.EINVAL, (result, exc)
        return
    assert "no cookies" not in result.reason
    with cookie_prog, link_create(cookie_prog, None, AttachType.TRACE_RAW_TP, opts.Tracing(cookie=35)):
        fork_twice()
        assert hits(cookie_prog, 35) == 2


BIND = "import os, socket; socket.socket(socket.AF_UNIX).bind(f'\\0bpflink-probe-{os.getpid()}')"


def test_lsm_cgroup_verdict_matches_a_link_that_denies_bind(cgroup: Path) -> None:
    result = probe_mod.probe_attach_type(AttachType.LSM_CGROUP)
    with Map.array(1) as counter:
        try:  # returns 0: deny
            prog = Program.load(ProgType.LSM, asm.count_and_return(counter.fd, 0),
                                expected_attach_type=AttachType.LSM_CGROUP,
                                attach_btf_id=btf_id("bpf_lsm_socket_bind"))
        except OSError as exc:
            refused_as_probed(result, exc)
            return
        with prog:
            try:
                link = link_create(prog, cgroup, AttachType.LSM_CGROUP)
            except OSError as exc:
                refused_as_probed(result, exc)
                return
            with link:
                inside = run_in_cgroup(cgroup, BIND)
                denied = inside.returncode != 0 and "PermissionError" in inside.stderr
                count = counter.lookup_int(0)
            assert run_in_cgroup(cgroup, BIND).returncode == 0  # the link is gone
    assert result.supported == denied == (count == 1), (result, inside.stderr, count)


def test_struct_ops_verdict_matches_a_registered_congestion_control(bpf_objects: dict[str, Path]) -> None:
    result = probe_mod.probe_attach_type(AttachType.STRUCT_OPS)
    try:
        obj = Object.open(bpf_objects["struct_ops_cc"])
    except OSError as exc:  # before 6.4 the kernel refuses struct_ops maps with BPF_F_LINK
        assert not result.supported and "BPF_F_LINK" in result.reason, (result, exc)
        return
    with obj, ready_map(obj, "cc_small", "cc_ssthresh") as ops:
        try:
            link = link_create(ops, None, AttachType.STRUCT_OPS)
        except OSError as exc:
            refused_as_probed(result, exc)
            return
        with link:
            assert CC in AVAILABLE.read_text().split()
    assert result.supported


def test_fsession_verdict_matches_a_real_link_that_fires() -> None:
    result = probe_mod.probe_attach_type(AttachType.TRACE_FSESSION)
    with Map.array(1) as counter:
        try:
            prog = Program.load(ProgType.TRACING, asm.count_and_return(counter.fd, 0),
                                expected_attach_type=AttachType.TRACE_FSESSION,
                                attach_btf_id=btf_id("security_task_getpgid"))
        except OSError as exc:
            refused_as_probed(result, exc)
            if exc.errno == errno.EINVAL:
                assert explain("fsession") and explain("fsession") in result.reason
            return
        with prog:
            try:
                link = link_create(prog, None, AttachType.TRACE_FSESSION, opts.Tracing(cookie=36))
            except OSError as exc:
                refused_as_probed(result, exc)
                return
            with link:
                before = counter.lookup_int(0)
                os.getpgid(ME)
                runs = counter.lookup_int(0) - before
    assert runs >= 2 and result.supported  # at entry and at return


def test_probe_of_btf_targets_leaves_no_fd_program_or_congestion_control() -> None:
    wanted = [at for at in probe_mod.probeable() if at.name in _btf.NAMES]
    assert {at.name for at in wanted} >= {"TRACE_ITER", "TRACE_FENTRY", "TRACE_RAW_TP", "STRUCT_OPS", "LSM_MAC"}
    first = last_prog_id()
    for _ in range(3):  # no cache: each round loads, links and closes again
        kernel.forget()
        before = open_fds()
        results = bpflink.probe(wanted)
        assert open_fds() == before
    assert all(r.reason for r in results)
    assert_no_probe_program_left(first)
    assert OUR_CC not in AVAILABLE.read_text().split()


@pytest.mark.hostonly
@pytest.mark.parametrize(("arg", "exc"), [(True, TypeError), (None, TypeError), (1.0, TypeError), (b"xdp", TypeError),
                                          (10_000, ValueError), ("no_such_type", ValueError),
                                          ("LIRC_MODE2", ValueError)])
def test_bad_attach_types_are_refused_before_any_trial(arg: object, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        probe_mod.probe_attach_type(arg)  # type: ignore[arg-type]


@pytest.mark.hostonly
def test_probe_takes_a_collection() -> None:
    with pytest.raises(TypeError, match="probe_attach_type"):
        bpflink.probe("tcx_ingress")  # type: ignore[arg-type]
    assert bpflink.probe([]) == ()
