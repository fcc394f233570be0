"""perf_event links: a program on a tracepoint, uprobe or kprobe perf event fires, sees its cookie
(``bpf_get_attach_cookie``) and stops when the link closes; perf.open_* and opts.PerfEvent validate first."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from bpflink import AttachType, Program, link_create, opts, perf
from bpflink.errors import NotSupportedError, VerifierError
from bpflink.symbols import symbol_offset
from honest_skips import unsupported
from tracehelp import FUNCS, RETURN, Binaries, build_binaries, hits, load, run

PERF = AttachType.PERF_EVENT

# getpgid/getsid of pid 0 skip the security hook (kernel/sys.c); an explicit pid goes through it
ME = os.getpid()


def _load(obj: Path, name: str, *, only_me: bool = False) -> Program:
    """These programs read bpf_get_attach_cookie(), which the verifier knows from 5.15 (with perf_event links)."""
    try:
        return load(obj, name, only_me=only_me)
    except VerifierError as exc:
        unsupported("bpf_cookie", exc)


@pytest.fixture(scope="module")
def bins(tmp_path_factory: pytest.TempPathFactory) -> Binaries:
    return build_binaries(tmp_path_factory.mktemp("perf_uprobe"))


@pytest.fixture
def obj(bpf_objects: dict[str, Path]) -> Path:
    return bpf_objects["trace_perf"]


def test_tracepoint_links_fire_with_their_cookies_and_stop_on_close(obj: Path) -> None:
    with _load(obj, "tp_cookie", only_me=True) as prog, \
            perf.open_tracepoint("syscalls:sys_enter_getpid") as ev1, \
            perf.open_tracepoint("syscalls/sys_exit_getpid") as ev2:  # one program per tracepoint
        assert ev1.kind == "tracepoint" and "sys_enter_getpid" in repr(ev1)
        with link_create(prog, ev1, PERF, opts.PerfEvent(cookie=0xC00C1E)), \
                link_create(prog, ev2.fileno(), PERF, opts.PerfEvent(cookie=7)):
            for _ in range(5):
                os.getpid()
            assert hits(prog, 0xC00C1E) == 5
            assert hits(prog, 7) == 5
        for _ in range(3):
            os.getpid()
        assert (hits(prog, 0xC00C1E), hits(prog, 7)) == (5, 5)  # closed links no longer fire


def test_tracepoint_link_without_opts_has_cookie_zero(obj: Path) -> None:
    with _load(obj, "tp_cookie", only_me=True) as prog, perf.open_tracepoint("syscalls:sys_enter_getpid") as ev, \
            link_create(prog, ev, PERF):
        os.getpid()
        os.getpid()
        assert hits(prog, 0) == 2


def test_uprobe_perf_event_cookie_pid_filter_and_retprobe(obj: Path, bins: Binaries) -> None:
    offset = symbol_offset(bins.pie, FUNCS[0])
    with _load(obj, "uprobe_cookie") as prog:
        with perf.open_uprobe(bins.pie, offset) as entry, perf.open_uprobe(bins.pie, offset, retprobe=True) as ret, \
                link_create(prog, entry, PERF, opts.PerfEvent(cookie=1)), \
                link_create(prog, ret, PERF, opts.PerfEvent(cookie=1 | RETURN)):
            run(bins.pie, 4)
            assert hits(prog, 1) == 4
            assert hits(prog, 1 | RETURN) == 4
        # a pid filter: only our own process would be probed, so the target's calls are not counted
        with perf.open_uprobe(bins.pie, offset, pid=os.getpid()) as mine, \
                link_create(prog, mine, PERF, opts.PerfEvent(cookie=2)):
            run(bins.pie, 4)
            assert hits(prog, 2) == 0


def test_kprobe_perf_event_fires_with_cookie(obj: Path) -> None:
    try:
        entry = perf.open_kprobe("security_task_getpgid")
    except (NotSupportedError, OSError) as exc:
        unsupported("kprobe_perf_event", exc)
    with entry, perf.open_kprobe("security_task_getpgid", retprobe=True) as ret, \
            _load(obj, "kprobe_cookie", only_me=True) as prog, \
            link_create(prog, entry, PERF, opts.PerfEvent(cookie=11)), \
            link_create(prog, ret, PERF, opts.PerfEvent(cookie=12)):
        for _ in range(3):
            os.getpgid(ME)
        assert hits(prog, 11) == 3
        assert hits(prog, 12) == 3


def test_kprobe_unknown_function_is_an_oserror() -> None:
    try:
        with perf.open_kprobe("bpflink_no_such_function_xyz"):
            pytest.fail("a kprobe on a missing function was opened")
    except NotSupportedError as exc:
        unsupported("kprobe_perf_event", exc)
    except OSError as exc:
        assert exc.errno in (errno.ENOENT, errno.EINVAL), exc


# --- validation: before any syscall -------------------------------------------------------------------------
@pytest.mark.hostonly
@pytest.mark.parametrize("cookie", [-1, 1 << 64])
def test_perf_event_cookie_range(cookie: int) -> None:
    with pytest.raises(ValueError, match="cookie"):
        opts.PerfEvent(cookie=cookie)


@pytest.mark.hostonly
@pytest.mark.parametrize("cookie", ["1", 1.0, True, None])
def test_perf_event_cookie_type(cookie: object) -> None:
    with pytest.raises(TypeError, match="cookie"):
        opts.PerfEvent(cookie=cookie)  # type: ignore[arg-type]


@pytest.mark.hostonly
def test_perf_event_opts_refuse_other_attach_types() -> None:
    with pytest.raises(TypeError, match=r"PerfEvent.*TRACE_UPROBE_MULTI"):
        opts.PerfEvent(cookie=1).build(AttachType.TRACE_UPROBE_MULTI)
    b = opts.PerfEvent(cookie=5).build(PERF)  # a temporary would free the struct before the field is read
    assert int(b.ptr.perf_event.bpf_cookie) == 5


@pytest.mark.hostonly
@pytest.mark.parametrize(("name", "exc"), [("sys_enter_getpid", ValueError), ("a:b:c", ValueError),
                                           ("../x:y", ValueError), ("", ValueError), (b"syscalls:x", TypeError)])
def test_tracepoint_names(name: object, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        perf.open_tracepoint(name)  # type: ignore[arg-type]


def test_missing_tracepoint_and_bad_pid_cpu() -> None:
    with pytest.raises(FileNotFoundError, match="no tracepoint"):
        perf.open_tracepoint("syscalls:bpflink_nope")
    with pytest.raises(ValueError, match="cpu"):
        perf.open_tracepoint("syscalls:sys_enter_getpid", pid=-1, cpu=-1)
    with pytest.raises(ValueError, match="pid"):
        perf.open_tracepoint("syscalls:sys_enter_getpid", pid=-2)
    with pytest.raises(ValueError, match="offset"):
        perf.open_uprobe("/bin/true", -1)
    with pytest.raises(TypeError, match="retprobe"):
        perf.open_uprobe("/bin/true", 0, retprobe=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NUL"):
        perf.open_kprobe("a\0b")


def test_tracepoint_id_matches_tracefs() -> None:
    path = perf.tracefs() / "events" / "syscalls" / "sys_enter_getpid" / "id"
    assert perf.tracepoint_id("syscalls:sys_enter_getpid") == int(path.read_text())


@pytest.mark.usefixtures("bpf_no_leaks")
def test_perf_event_fds_are_closed() -> None:
    for _ in range(20):
        with perf.open_tracepoint("syscalls:sys_enter_getpid") as ev:
            assert ev.fileno() >= 0
        assert ev.closed
