"""Input the kernel rejects, per attach family: the right errno, the builtin OSError subclass, and a hint.

Builders validate before the syscall, so kernel-side checks of families whose builders refuse the same input
are reached through the raw ``struct bpf_link_create_opts *`` escape hatch of ``link_create``.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bpflink import AttachType, Link, Program, ProgType, asm, link_create, lowlevel, opts
from bpflink.errors import ENOTSUPP, NotSupportedError
from bpflink.features import FEATURES
from honest_skips import unsupported
from privnet import PrivateNetns

EGRESS = AttachType.CGROUP_INET_EGRESS
_EXC = {errno.EPERM: PermissionError, errno.ENOENT: FileNotFoundError, errno.ESRCH: ProcessLookupError}


def expect(fn: Callable[[], Any], err: int, *words: str) -> OSError:
    """``fn()`` raises OSError ``err`` (as the builtin subclass when there is one) whose message has ``words``."""
    with pytest.raises(OSError) as info:
        link = fn()
        if isinstance(link, Link):
            link.close()
    exc = info.value
    if isinstance(exc, NotSupportedError) and exc.feature in FEATURES and err != errno.EOPNOTSUPP:
        unsupported(exc.feature, exc)  # the family itself is missing: a skip only where the kernel is too old
    assert exc.errno == err, f"expected {errno.errorcode.get(err)}, got {exc!r}"
    assert isinstance(exc, _EXC.get(err, OSError))
    text = str(exc)
    assert errno.errorcode.get(err, "") in text
    for word in words:
        assert word in text, f"hint {word!r} missing from {text!r}"
    return exc


def load(ptype: ProgType, at: AttachType, ret: int = 0) -> Program:
    return Program.load(ptype, asm.return_imm(ret), expected_attach_type=at)


@pytest.fixture(scope="module")
def netns() -> Iterator[PrivateNetns]:
    with PrivateNetns("errs") as ns:
        yield ns


# --- cgroup -------------------------------------------------------------------------------------------------
def test_cgroup_errors(cgroup: Path) -> None:
    with load(ProgType.CGROUP_SKB, EGRESS, 1) as prog, load(ProgType.CGROUP_SKB, EGRESS, 1) as other, \
            load(ProgType.CGROUP_SKB, EGRESS, 1) as absent, load(ProgType.SCHED_CLS, AttachType.TCX_INGRESS) as tc_prog:
        expect(lambda: link_create(tc_prog, cgroup, EGRESS), errno.EINVAL, "cgroup v2 directory",
               "expected_attach_type")
        with tempfile.TemporaryFile() as f:
            expect(lambda: link_create(prog, f.fileno(), EGRESS), errno.EBADF, "cgroup v2 directory")
        expect(lambda: link_create(prog, 1 << 30, EGRESS), errno.EBADF, "cgroup v2 directory")
        with link_create(prog, cgroup, EGRESS):
            try:
                link_create(other, cgroup, EGRESS, opts.Cgroup(expected_revision=1000)).close()
            except NotSupportedError as exc:  # probed: this kernel (< 6.17) would ignore cgroup ordering
                unsupported("cgroup_mprog", exc)
            except OSError:
                pass
            expect(lambda: link_create(other, cgroup, EGRESS, opts.Cgroup(expected_revision=1000)),
                   errno.ESTALE, "expected_revision")
            # unlike tcx (ENOENT), the cgroup code answers an anchor that is not attached there with EINVAL
            # (measured on 6.18), also for a program that is attached but through a link
            for anchor in (absent, prog, tc_prog):
                expect(lambda: link_create(other, cgroup, EGRESS, opts.Cgroup(before=anchor)),  # noqa: B023
                       errno.EINVAL, "anchor")


# --- tcx ----------------------------------------------------------------------------------------------------
def test_tcx_errors(netns: PrivateNetns) -> None:
    at = AttachType.TCX_INGRESS
    with load(ProgType.SCHED_CLS, at) as prog, load(ProgType.SCHED_CLS, at) as other, \
            load(ProgType.SCHED_CLS, at) as absent, load(ProgType.CGROUP_SKB, EGRESS) as cg_prog:
        ifindex = netns.ifindex("veth0")

        def in_ns(*args: Any) -> Callable[[], Any]:
            return lambda: netns.call(link_create, *args)

        expect(in_ns(prog, 0x7FFFFFFF, at), errno.ENODEV, "ifindex")
        expect(in_ns(cg_prog, ifindex, at), errno.EINVAL, "tcx")
        link = netns.call(link_create, prog, ifindex, at)
        with link:
            expect(in_ns(prog, ifindex, at), errno.EEXIST, "already attached")
            expect(in_ns(other, ifindex, at, opts.Tcx(expected_revision=1000)), errno.ESTALE, "expected_revision")
            expect(in_ns(other, ifindex, at, opts.Tcx(before=absent)), errno.ENOENT, "does not exist")
            with netns.call(link_create, other, ifindex, at, opts.Tcx(after=link)):
                expect(in_ns(absent, ifindex, at, opts.Tcx(before=cg_prog)), errno.EINVAL, "tcx")


# --- xdp ----------------------------------------------------------------------------------------------------
def test_xdp_errors(netns: PrivateNetns) -> None:
    with load(ProgType.XDP, AttachType.XDP, 2) as prog, load(ProgType.SCHED_CLS, AttachType.TCX_INGRESS) as tc:
        ifindex = netns.ifindex("veth1")
        # unlike tcx (ENODEV), the xdp link code answers an unknown ifindex with EINVAL
        expect(lambda: netns.call(link_create, prog, 0x7FFFFFFF, AttachType.XDP), errno.EINVAL, "ifindex")
        expect(lambda: netns.call(link_create, tc, ifindex, AttachType.XDP), errno.EINVAL, "XDP")
        with netns.call(link_create, prog, ifindex, AttachType.XDP):
            expect(lambda: netns.call(link_create, prog, ifindex, AttachType.XDP), errno.EBUSY,
                   "already has an XDP program")


# --- netfilter (raw opts: opts.Netfilter refuses these before the syscall) --------------------------------
def _netfilter_raw(pf: int, hooknum: int, priority: int) -> Any:
    o = lowlevel.new_link_create_opts()
    o.netfilter.pf, o.netfilter.hooknum, o.netfilter.priority = pf, hooknum, priority
    return o


def test_netfilter_errors() -> None:
    at = AttachType.NETFILTER
    try:
        prog = load(ProgType.NETFILTER, at, 1)
    except OSError as exc:  # kernels before 6.4 have no netfilter program type
        unsupported("netfilter", exc)
    with prog:
        ipv4 = 2  # NFPROTO_IPV4
        expect(lambda: link_create(prog, None, at, _netfilter_raw(99, 1, 0)), errno.EAFNOSUPPORT, "NFPROTO_IPV4")
        expect(lambda: link_create(prog, None, at, _netfilter_raw(ipv4, 7, 0)), errno.EPROTO, "hooknum")
        expect(lambda: link_create(prog, None, at, _netfilter_raw(ipv4, 1, -(1 << 31))), errno.ERANGE, "priority")
        link_create(prog, None, at, _netfilter_raw(ipv4, 1, 10)).close()  # and the valid one works


# --- uprobe_multi (raw opts) --------------------------------------------------------------------------------
def _uprobe_raw(path: bytes, offsets: list[int], pid: int = 0) -> tuple[Any, ...]:
    o = lowlevel.new_link_create_opts()
    c_path = lowlevel.ffi.new("char[]", path)
    c_offs = lowlevel.ffi.new("unsigned long[]", offsets or 1)
    o.uprobe_multi.path, o.uprobe_multi.offsets, o.uprobe_multi.cnt = c_path, c_offs, len(offsets)
    o.uprobe_multi.pid = pid
    return o, c_path, c_offs


def test_uprobe_multi_errors() -> None:
    at = AttachType.TRACE_UPROBE_MULTI
    exe = os.path.realpath("/bin/true").encode()
    with load(ProgType.KPROBE, at) as prog:
        def attempt(path: bytes, offsets: list[int], pid: int = 0) -> Callable[[], Any]:
            raw = _uprobe_raw(path, offsets, pid)
            return lambda: link_create(prog, None, at, raw[0])

        expect(attempt(b"/nonexistent/bpflink", [0x1000]), errno.ENOENT, "path does not exist")
        expect(attempt(b"/", [0x1000]), errno.EBADF, "not a regular file")
        expect(attempt(exe, [0x1000], pid=0x3FFFFFFF), errno.ESRCH, "no process")
        expect(attempt(exe, []), errno.EINVAL, "offset")


# --- kprobe_multi (raw opts) --------------------------------------------------------------------------------
def test_kprobe_multi_missing_symbol() -> None:
    at = AttachType.TRACE_KPROBE_MULTI
    o = lowlevel.new_link_create_opts()
    name = lowlevel.ffi.new("char[]", b"bpflink_no_such_kernel_function")
    syms = lowlevel.ffi.new("const char *[]", [name])
    o.kprobe_multi.syms, o.kprobe_multi.cnt = syms, 1
    with load(ProgType.KPROBE, at) as prog:
        try:
            link_create(prog, None, at, o).close()
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, ENOTSUPP):
                assert "CONFIG_FPROBE" in str(exc)  # the hint says what is missing...
                unsupported("kprobe_multi", exc)  # ...and the skip is honest only if the kernel lacks it
            assert exc.errno == errno.ESRCH and isinstance(exc, ProcessLookupError), exc
            assert "not traceable" in str(exc)
        else:
            pytest.fail("a missing kernel symbol was accepted")


# --- netns (sk_lookup), iter, perf_event: wrong kind of target or program -----------------------------------
def test_netns_perf_event_iter_errors() -> None:
    with load(ProgType.SK_LOOKUP, AttachType.SK_LOOKUP, 1) as sk, tempfile.TemporaryFile() as f:
        expect(lambda: link_create(sk, f.fileno(), AttachType.SK_LOOKUP), errno.EINVAL)
    # a plain kprobe program (a uprobe_multi one is refused with EINVAL before the target is looked at, on
    # kernels that know uprobe_multi): the target is checked by perf_event_get, EBADF for a non-perf fd
    with Program.load(ProgType.KPROBE, asm.return_imm(0)) as kp, tempfile.TemporaryFile() as f:
        expect(lambda: link_create(kp, f.fileno(), AttachType.PERF_EVENT), errno.EBADF, "perf event fd")
    with load(ProgType.CGROUP_SKB, EGRESS) as cg:
        expect(lambda: link_create(cg, None, AttachType.TRACE_ITER), errno.EINVAL)


# --- link operations ----------------------------------------------------------------------------------------
def test_update_errors(cgroup: Path) -> None:
    with load(ProgType.CGROUP_SKB, EGRESS, 1) as prog, load(ProgType.SCHED_CLS, AttachType.TCX_INGRESS) as tc, \
            link_create(prog, cgroup, EGRESS) as link:
        expect(lambda: link.update(tc), errno.EINVAL)  # another program type
        expect(lambda: link.update(prog, old_prog=tc), errno.EPERM, "old_prog")
        link.detach()
        expect(lambda: link.update(prog), errno.ENOLINK, "detached")


def test_error_messages_name_the_operation() -> None:
    exc = expect(lambda: link_create(0x7FFF0000, None, AttachType.XDP), errno.EBADF)
    assert (exc.strerror or "").startswith("link_create(XDP): Bad file descriptor")
