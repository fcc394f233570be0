"""The core: link_create on a real cgroup, Link operations, Program/Map/Object, bad input, fd leaks."""

from __future__ import annotations

import errno
import gc
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import bpflink
from bpflink import AttachType, Link, LinkType, Map, Program, ProgType, asm, link_create, lowlevel
from bpflink.errors import VerifierError
from conftest import BPFFS, open_fds, send_from, sent_and_received

EGRESS = AttachType.CGROUP_INET_EGRESS


def counting_prog(counter: Map, verdict: int) -> Program:
    return Program.load(ProgType.CGROUP_SKB, asm.count_and_return(counter.fd, verdict), expected_attach_type=EGRESS)


def test_version_and_libbpf() -> None:
    assert bpflink.__version__
    major, minor = (int(x) for x in bpflink.libbpf_version().split("."))
    assert (major, minor) >= (1, 4)


def test_cgroup_link_drops_and_counts_then_close_restores(cgroup: Path) -> None:
    assert sent_and_received(cgroup) == (5, 5)
    with Map.array() as counter, counting_prog(counter, 0) as prog:
        link = link_create(prog, cgroup, EGRESS)
        assert isinstance(link, Link) and link.fd >= 3
        _sent, received = sent_and_received(cgroup)
        assert received == 0
        assert counter.lookup_int(0) >= 5
        info = link.info()
        assert info.type == LinkType.CGROUP and info.prog_id == prog.id and info.id == link.id
        link.close()
        assert link.closed
        link.close()  # idempotent
        assert send_from(cgroup) == 5


def test_lowlevel_mirror_returns_fd_or_negative_errno(cgroup: Path) -> None:
    with Map.array() as counter, counting_prog(counter, 0) as prog:
        cg = os.open(cgroup, os.O_RDONLY)
        try:
            opts = lowlevel.new_link_create_opts()
            fd = lowlevel.bpf_link_create(prog.fd, cg, int(EGRESS), opts)
            assert fd >= 3
            assert send_from(cgroup) == 0 and counter.lookup_int(0) >= 5
            os.close(fd)
            # a cgroup_skb program cannot be a tcx program: C returns -EINVAL, and so do we
            assert lowlevel.bpf_link_create(prog.fd, 1, int(AttachType.TCX_INGRESS), None) == -errno.EINVAL
            assert lowlevel.bpf_link_create(prog.fd, 9999, int(EGRESS), None) == -errno.EBADF
        finally:
            os.close(cg)


def test_update_swaps_program_and_replace_checks_old(cgroup: Path) -> None:
    with Map.array(2) as counter, counting_prog(counter, 0) as drop, Program.load(
        ProgType.CGROUP_SKB, asm.count_and_return(counter.fd, 1, key=1), expected_attach_type=EGRESS
    ) as passing, link_create(drop, cgroup, EGRESS) as link:
        assert send_from(cgroup) == 0
        link.update(passing)
        assert link.prog_id == passing.id
        assert send_from(cgroup) == 5
        assert counter.lookup_int(1) >= 5
        with pytest.raises(PermissionError) as exc:  # old_prog is not the current program
            link.update(drop, old_prog=drop)
        assert exc.value.errno == errno.EPERM
        link.update(drop, old_prog=passing)
        assert send_from(cgroup) == 0


def test_pin_from_pin_outlives_the_fd(cgroup: Path) -> None:
    pin = BPFFS / f"bpflink-test-{os.getpid()}"
    with Map.array() as counter, counting_prog(counter, 0) as prog:
        link = link_create(prog, cgroup, EGRESS)
        link.pin(pin)
        link_id = link.id
        link.close()
        assert send_from(cgroup) == 0  # still attached through the pin
        again = Link.from_pin(pin)
        assert again.id == link_id
        by_id = Link.from_id(link_id)
        assert by_id.info().prog_id == prog.id
        by_id.close()
        os.unlink(pin)
        again.close()
        assert send_from(cgroup) == 5
    with pytest.raises(FileNotFoundError):
        Link.from_pin(pin)


def test_pin_unpin_and_from_pin_of_non_link(cgroup: Path) -> None:
    pin = BPFFS / f"bpflink-test-unpin-{os.getpid()}"
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS) as prog:
        with link_create(prog, cgroup, EGRESS) as link:
            link.pin(pin)
            assert link.pinned_path == str(pin)
            link.unpin()
            assert not pin.exists()
            with pytest.raises(ValueError):
                link.unpin()
        assert lowlevel.bpf_obj_pin(prog.fd, str(pin).encode()) == 0
        try:
            with pytest.raises(TypeError, match="not a link"):
                Link.from_pin(pin)
        finally:
            os.unlink(pin)


def test_detach_stops_the_effect_fd_stays_open(cgroup: Path) -> None:
    with Map.array() as counter, counting_prog(counter, 0) as prog, link_create(prog, cgroup, EGRESS) as link:
        assert send_from(cgroup) == 0
        link.detach()
        assert not link.closed
        assert send_from(cgroup) == 5
        assert link.info().type == LinkType.CGROUP
        with pytest.raises(OSError) as exc:
            link.update(prog)
        assert exc.value.errno == errno.ENOLINK


def test_program_from_object_attaches_and_counts(cgroup: Path, bpf_objects: dict[str, Path]) -> None:
    prog = Program.from_object(bpf_objects["cgroup_counter"], "count_drop")
    with prog:
        assert prog.prog_type == ProgType.CGROUP_SKB and prog.expected_attach_type == EGRESS
        counters = prog.maps["counters"]
        with link_create(prog, cgroup, EGRESS):
            assert send_from(cgroup, 7) == 0
        assert counters.lookup_int(0) == 7
        assert counters.lookup_int(1) == 0
    assert counters.closed
    with pytest.raises(KeyError, match="no program"):
        Program.from_object(bpf_objects["cgroup_counter"], "nope")


def test_closed_link_raises_value_error(cgroup: Path) -> None:
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS) as prog:
        link = link_create(prog, cgroup, EGRESS)
        link.close()
        for op in (link.info, link.detach, lambda: link.update(prog), lambda: link.pin("/sys/fs/bpf/x"),
                   link.fileno):
            with pytest.raises(ValueError, match="closed"):
                op()


def test_garbage_collected_link_closes_with_resource_warning(cgroup: Path) -> None:
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(0), expected_attach_type=EGRESS) as prog:
        before = open_fds()
        link = link_create(prog, cgroup, EGRESS)
        assert send_from(cgroup) == 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del link
            gc.collect()
        assert any(issubclass(w.category, ResourceWarning) for w in caught)
        assert open_fds() == before
        assert send_from(cgroup) == 5


@pytest.mark.parametrize(
    ("prog", "target", "attach_type", "opts", "exc"),
    [
        ("3", 0, EGRESS, None, TypeError),
        (3.0, 0, EGRESS, None, TypeError),
        (True, 0, EGRESS, None, TypeError),
        (-1, 0, EGRESS, None, ValueError),
        (3, -5, EGRESS, None, ValueError),
        (3, object(), EGRESS, None, TypeError),
        (3, 0, 10_000, None, ValueError),
        (3, 0, "no_such_attach", None, ValueError),
        (3, 0, 1.5, None, TypeError),
        (3, 0, EGRESS, {"flags": 1}, TypeError),
        (3, 0, EGRESS, bpflink.opts.Xdp(), TypeError),
        (3, 0, AttachType.XDP, bpflink.opts.Tcx(), TypeError),
    ],
)
def test_bad_input_raises_before_any_syscall(prog: object, target: object, attach_type: object, opts: object,
                                              exc: type[Exception]) -> None:
    with pytest.raises(exc):
        link_create(prog, target, attach_type, opts)  # type: ignore[arg-type]


def test_opts_for_the_wrong_attach_type_names_both() -> None:
    with pytest.raises(TypeError, match=r"Xdp.*CGROUP_INET_EGRESS"):
        link_create(3, 0, EGRESS, bpflink.opts.Xdp())


def test_kernel_refusal_is_oserror_with_errno_and_hint(cgroup: Path) -> None:
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS) as prog:
        with pytest.raises(OSError) as exc:
            link_create(prog, 9999, EGRESS)  # not an open fd
        assert exc.value.errno == errno.EBADF
        assert "CGROUP_INET_EGRESS" in str(exc.value) and "EBADF" in str(exc.value)
        with pytest.raises(OSError) as exc:
            link_create(prog, cgroup, AttachType.CGROUP_INET4_CONNECT)  # prog type mismatch
        assert exc.value.errno == errno.EINVAL and "expected_attach_type" in str(exc.value)


def test_verifier_error_carries_the_log() -> None:
    bad = asm.exit_()  # r0 is never set
    with pytest.raises(VerifierError) as exc:
        Program.load(ProgType.CGROUP_SKB, bad, expected_attach_type=EGRESS)
    assert exc.value.errno == errno.EACCES
    assert "R0" in exc.value.log


def test_ten_thousand_create_close_cycles_leak_no_fd(cgroup: Path) -> None:
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS) as prog:
        cg = os.open(cgroup, os.O_RDONLY)
        try:
            keeper = link_create(prog, cg, EGRESS)  # keeps the static key on: each cycle stays fast
            before = open_fds()
            for _ in range(10_000):
                link_create(prog, cg, EGRESS).close()
            assert open_fds() == before
            keeper.close()
        finally:
            os.close(cg)


def test_fork_child_closing_its_copy_keeps_parent_link(cgroup: Path) -> None:
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(0), expected_attach_type=EGRESS) as prog, \
            link_create(prog, cgroup, EGRESS) as link:
        code = subprocess.run([sys.executable, "-c", "import os, sys; print(os.getpid())"], capture_output=True)
        assert code.returncode == 0
        pid = os.fork()
        if pid == 0:
            link.close()
            os._exit(0)
        os.waitpid(pid, 0)
        assert not link.closed
        assert send_from(cgroup) == 0
