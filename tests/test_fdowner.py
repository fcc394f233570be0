"""The C fd owner (include/fdowner.c) and link_create's C fast path: same behaviour as the Python they replaced.

Also ``import bpflink`` laziness: the public names resolve on first use, exactly as eager imports gave them.
"""

from __future__ import annotations

import enum
import errno
import gc
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

import bpflink
from bpflink import AttachType, Link, Map, Program, ProgType, asm, link_create
from bpflink._fd import FdOwner
from conftest import open_fds, send_from

EGRESS = AttachType.CGROUP_INET_EGRESS


class _Fd(int):
    """An int subclass: not the fast path's exact int, so link_create takes the Python path."""


# the guests run the C fast path ("program") and the Python path; the other argument forms reach the same two
# calls after user-space conversions, checked on the host only
_HOSTONLY = pytest.mark.hostonly


@pytest.mark.parametrize("how", ["program", pytest.param("int fds", marks=_HOSTONLY),
                                 pytest.param("int attach type", marks=_HOSTONLY), "int subclass (Python path)",
                                 pytest.param("path", marks=_HOSTONLY)])
def test_link_create_paths_make_the_same_working_link(cgroup: Path, how: str) -> None:
    with Map.array() as counter, Program.load(ProgType.CGROUP_SKB, asm.count_and_return(counter.fd, 0),
                                              expected_attach_type=EGRESS) as prog:
        cg = os.open(cgroup, os.O_RDONLY | os.O_CLOEXEC)
        try:
            args: dict[str, tuple[object, object, object]] = {
                "program": (prog, cg, EGRESS), "int fds": (prog.fd, cg, EGRESS),
                "int attach type": (prog, cg, int(EGRESS)),
                "int subclass (Python path)": (_Fd(prog.fd), _Fd(cg), EGRESS),
                "path": (prog, cgroup, EGRESS),
            }
            with link_create(*args[how]) as link:  # type: ignore[arg-type]
                assert type(link) is Link and link.attach_type is EGRESS and not link.closed
                assert link.fd == link.fileno() == link._fd >= 0
                assert send_from(cgroup) == 0 and counter.lookup_int(0) >= 5
                assert link.info().prog_id == prog.id
            assert link.closed and send_from(cgroup) == 5
        finally:
            os.close(cg)


def test_fast_path_leaves_bad_input_to_the_python_checks(cgroup: Path) -> None:
    class Other(enum.IntEnum):
        EGRESS = int(AttachType.CGROUP_INET_EGRESS)

    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS) as prog:
        before = open_fds()
        with pytest.raises(TypeError, match="attach_type"):
            link_create(prog, 0, True)  # a bool is an int to C, not to bpflink
        cg = os.open(cgroup, os.O_RDONLY | os.O_CLOEXEC)
        try:  # another int enum with the same value: the Python path takes it as that int, as before
            with link_create(prog, cg, Other.EGRESS) as link:
                assert link.attach_type is EGRESS
        finally:
            os.close(cg)
        with pytest.raises(ValueError, match="fd must be in"):
            link_create(prog, 2**31, EGRESS)
        with pytest.raises(ValueError, match="fd must be in"):
            link_create(prog, 2**70, EGRESS)  # overflows a C long: the Python path says so
        with pytest.raises(OSError) as exc:
            link_create(prog, 9999, EGRESS)  # the C path's negative errno becomes the usual OSError
        assert exc.value.errno == errno.EBADF and "CGROUP_INET_EGRESS" in str(exc.value)
        prog.close()
        with pytest.raises(ValueError, match="closed Program"):
            link_create(prog, 0, EGRESS)
        assert open_fds() == before - 1


def test_finalizer_closes_even_when_warnings_are_errors() -> None:
    r, w = os.pipe()
    os.close(w)
    owner = FdOwner(r)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)  # the Python __del__ used to leak the fd here
        del owner
        gc.collect()
    with pytest.raises(OSError) as exc:
        os.fstat(r)
    assert exc.value.errno == errno.EBADF


def test_owner_in_a_reference_cycle_is_collected_closed_with_a_warning() -> None:
    r, w = os.pipe()
    os.close(w)
    owner = FdOwner(r)
    owner.me = owner  # type: ignore[attr-defined]
    del owner
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [str(c.message) for c in caught if c.category is ResourceWarning] == [f"unclosed FdOwner (fd {r})"]
    with pytest.raises(OSError):
        os.fstat(r)


def test_with_calls_the_subclass_close_and_close_races_close_once() -> None:
    closed: list[int] = []

    class Sub(FdOwner):
        def close(self) -> None:
            closed.append(self._fd)
            super().close()

    r, w = os.pipe()
    os.close(w)
    with Sub(r) as sub:
        assert sub.fileno() == r
    assert closed == [r] and sub.closed
    with pytest.raises(ValueError, match="closed Sub"):
        sub.fileno()

    owners = [FdOwner(os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)) for _ in range(50)]
    errors: list[BaseException] = []

    def close_all() -> None:
        try:
            for o in owners:
                o.close()  # a second close from another thread must find it closed, never EBADF
        except BaseException as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    threads = [threading.Thread(target=close_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(o.closed for o in owners)


@pytest.mark.hostonly
def test_import_is_lazy_and_names_resolve_like_eager_imports() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import bpflink\n"
        "new = set(sys.modules) - before\n"
        "assert not {'bpflink.info', 'bpflink.opts', 'logging', 'typing'} & new, sorted(new)\n"
        "import bpflink.cli\n"  # imports the probe and query submodules first
        "assert callable(bpflink.probe) and callable(bpflink.query) and bpflink.supports\n"
        "from bpflink import *\n"
        "assert all(n in dir(bpflink) for n in bpflink.__all__)\n"
        "assert bpflink.opts.Tcx is bpflink.opts.mprog.Tcx and 'Tcx' in dir(bpflink.opts)\n"
        "assert bpflink.errors.NotSupportedError is bpflink.NotSupportedError\n"
        "assert not hasattr(bpflink, 'no_such_name')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert bpflink.link_create is link_create
