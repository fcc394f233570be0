"""Issue 13: no call may crash, hang, close or delete what it does not own. Each test failed on main before
the fix it names; crash- and hang-prone ones run in a child process with a timeout."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import bpflink
from bpflink import AttachType, Link, Map, Program, ProgType, asm, link_create
from bpflink.perf import PerfEvent
from conftest import UDP_SEND, drain, open_fds, run_in_cgroup, udp_port

EGRESS = AttachType.CGROUP_INET_EGRESS
BPFFS = Path("/sys/fs/bpf")


def run_child(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a child: a crash or a hang fails the test instead of killing the run."""
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the child hung (> {timeout} s): {exc.stderr!r}")


def egress_prog(ret: int = 1) -> Program:
    return Program.load(ProgType.CGROUP_SKB, asm.return_imm(ret), expected_attach_type=EGRESS)


def sent_through(cgroup: Path, n: int = 4) -> int:
    sock, port = udp_port()
    with sock:
        res = run_in_cgroup(cgroup, UDP_SEND.format(n=n, port=port))
        assert res.returncode == 0, res.stderr
        return drain(sock)


@pytest.fixture
def pin_path() -> object:
    path = BPFFS / f"bpflink-harden-{os.getpid()}-{os.urandom(4).hex()}"
    yield path
    for p in (path, Path(str(path) + "-2")):
        if os.path.lexists(p):
            os.unlink(p)


# --- owning only what is ours: fds ---------------------------------------------------------------------------

@pytest.mark.hostonly
@pytest.mark.parametrize("make", [
    lambda fd: Link(fd), lambda fd: Program(fd), lambda fd: Map(fd, key_size=4, value_size=8),
    lambda fd: PerfEvent(fd, kind="tracepoint", name="x")], ids=["Link", "Program", "Map", "PerfEvent"])
@pytest.mark.parametrize("offset", [1 << 32, 1 << 31, -(1 << 32), 1 << 64])
def test_fd_out_of_range_never_truncates(make: object, offset: int) -> None:
    """``Link(2**32 + fd)`` was truncated to ``fd`` (a RuntimeWarning only): closing it closed our file."""
    r, w = os.pipe()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match=r"0\.\.2\*\*31-1"):
                make(offset + r)  # type: ignore[operator]
        os.fstat(r)  # still open: nothing closed it
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.hostonly
@pytest.mark.parametrize("bad", [True, 1.0, "3", None])
def test_fd_of_wrong_type(bad: object) -> None:
    with pytest.raises(TypeError):
        Link(bad)  # type: ignore[arg-type]


def test_program_of_a_map_fd_is_refused() -> None:
    """``Program(map_fd).id`` used to report the map's id: the kernel is asked what the fd is."""
    with Map.array() as m:
        with pytest.raises(TypeError, match="not a BPF program"):
            Program(m.fd)
        assert not m.closed and m.lookup_int(0) == 0  # the caller's fd was left alone
    with egress_prog() as prog, Program(os.dup(prog.fd)) as again:
        assert again.id == prog.id


def test_attach_type_is_read_only(cgroup: Path) -> None:
    with egress_prog() as prog, link_create(prog, os.fspath(cgroup), EGRESS) as link:
        with pytest.raises(AttributeError):
            link.attach_type = "anything"  # type: ignore[misc]
        assert link.attach_type is EGRESS


# --- pins ------------------------------------------------------------------------------------------------------

def test_unpin_refuses_a_path_re_pinned_by_another_link(cgroup: Path, pin_path: Path) -> None:
    """The pin was removed and another link pinned at the same path: unpin() used to delete that pin."""
    with egress_prog(0) as prog, link_create(prog, os.fspath(cgroup), EGRESS) as a, \
            link_create(prog, os.fspath(cgroup), EGRESS) as b:
        a.pin(pin_path)
        os.unlink(pin_path)
        b.pin(pin_path)
        with pytest.raises(ValueError, match=f"link id {b.id}.*nothing was deleted"):
            a.unpin()
        with Link.from_pin(pin_path) as held:
            assert held.id == b.id  # still b's pin
        b.close()
        a.close()
        assert sent_through(cgroup) == 0  # b's pin keeps the dropping program attached
        b2 = Link.from_pin(pin_path)
        b2.close()
        os.unlink(pin_path)
        assert sent_through(cgroup) == 4  # gone with its last reference


def test_unpin_refuses_a_path_now_holding_a_map(cgroup: Path, pin_path: Path) -> None:
    with egress_prog() as prog, link_create(prog, os.fspath(cgroup), EGRESS) as link, Map.array() as m:
        link.pin(pin_path)
        os.unlink(pin_path)
        assert bpflink.lowlevel.bpf_obj_pin(m.fd, os.fsencode(pin_path)) == 0
        with pytest.raises(ValueError, match="not a link"):
            link.unpin()
        assert pin_path.exists()


def test_unpin_of_own_pin(cgroup: Path, pin_path: Path) -> None:
    with egress_prog() as prog, link_create(prog, os.fspath(cgroup), EGRESS) as link:
        link.pin(pin_path)
        link.unpin()
        assert not pin_path.exists() and link.pinned_path is None


@pytest.mark.parametrize("kind", ["str", "bytes", "PathLike", "bytes PathLike"])
def test_bytes_and_pathlike_pin_paths(cgroup: Path, pin_path: Path, kind: str) -> None:
    class BytesPath(os.PathLike):  # type: ignore[type-arg]
        def __fspath__(self) -> bytes:
            return os.fsencode(pin_path)

    path: object = {"str": os.fspath(pin_path), "bytes": os.fsencode(pin_path), "PathLike": pin_path,
                    "bytes PathLike": BytesPath()}[kind]
    with egress_prog(0) as prog, link_create(prog, os.fspath(cgroup), EGRESS) as link:
        link.pin(path)  # type: ignore[arg-type]
        with Link.from_pin(path) as again:  # type: ignore[arg-type]
            assert again.id == link.id
        link.close()
        assert sent_through(cgroup) == 0  # the pin holds the link: the program still drops
        again2 = Link.from_pin(path)  # type: ignore[arg-type]
        again2.unpin() if again2.pinned_path else os.unlink(pin_path)
        again2.close()


@pytest.mark.parametrize("path", ["{p}\0tail", b"{p}\0tail"])
def test_nul_in_pin_path(cgroup: Path, pin_path: Path, path: str | bytes) -> None:
    """A NUL used to pin at the truncated path (leaking that pin); from_pin("a\\0b") opened "a"."""
    full = path.replace("{p}", os.fspath(pin_path)) if isinstance(path, str) else \
        path.replace(b"{p}", os.fsencode(pin_path))
    with egress_prog() as prog, link_create(prog, os.fspath(cgroup), EGRESS) as link:
        with pytest.raises(ValueError, match="NUL"):
            link.pin(full)  # type: ignore[arg-type]
        assert not pin_path.exists() and link.pinned_path is None
        link.pin(pin_path)
        with pytest.raises(ValueError, match="NUL"):
            Link.from_pin(full)  # type: ignore[arg-type]


def test_from_pin_refuses_a_map_without_proc(pin_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without /proc (simulated: readlink fails) a map pin became a "Link"; the kernel is asked instead."""
    def no_proc(*args: object, **kwargs: object) -> str:
        raise FileNotFoundError(errno.ENOENT, "no /proc")

    with Map.array() as m:
        assert bpflink.lowlevel.bpf_obj_pin(m.fd, os.fsencode(pin_path)) == 0
        monkeypatch.setattr(os, "readlink", no_proc)
        before = open_fds()
        with pytest.raises(TypeError, match="not a link"):
            Link.from_pin(pin_path)
        assert open_fds() == before  # the fd bpf_obj_get opened was closed


def test_from_pin_of_a_directory_is_not_about_the_verifier(tmp_path: Path) -> None:
    d = BPFFS / f"bpflink-harden-dir-{os.getpid()}"
    d.mkdir()
    try:
        with pytest.raises(OSError) as info:
            Link.from_pin(d)
        assert "verifier" not in str(info.value) and "not a pinned BPF object" in str(info.value)
    finally:
        d.rmdir()


# --- path targets never hang -----------------------------------------------------------------------------------

def test_fifo_targets_do_not_hang(tmp_path: Path) -> None:
    """A FIFO as a cgroup/netns target (link_create, query) blocked forever in open()."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    res = run_child(f"""
        import os, bpflink
        from bpflink import AttachType, Program, ProgType, asm, link_create, query
        prog = Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=AttachType.CGROUP_INET_EGRESS)
        n = len(os.listdir("/proc/self/fd"))
        for call in (lambda: link_create(prog, {str(fifo)!r}, AttachType.CGROUP_INET_EGRESS),
                     lambda: link_create(prog, {os.fsencode(fifo)!r}, AttachType.SK_LOOKUP),
                     lambda: query({str(fifo)!r}, AttachType.CGROUP_INET_EGRESS),
                     lambda: query({str(fifo)!r}, AttachType.FLOW_DISSECTOR)):
            try:
                call()
            except ValueError as exc:
                assert "FIFO" in str(exc), exc
            else:
                raise SystemExit("accepted a FIFO")
        assert len(os.listdir("/proc/self/fd")) == n
        print("ok")
    """, timeout=30)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_bytes_cgroup_path_target(cgroup: Path) -> None:
    with egress_prog(0) as prog, link_create(prog, os.fsencode(cgroup), EGRESS) as link:
        assert sent_through(cgroup) == 0
        assert bpflink.query(os.fsencode(cgroup), EGRESS).link_ids[-1] in (link.id, 0)
    assert sent_through(cgroup) == 4


# --- fork ------------------------------------------------------------------------------------------------------

def test_fork_while_probing_does_not_hang() -> None:
    """A thread inside probe() held its lock at fork(): the child's supports() blocked forever."""
    res = run_child("""
        import importlib, os, threading, bpflink
        probe = importlib.import_module("bpflink.probe")  # bpflink.probe is also the function probe()
        held, release = threading.Event(), threading.Event()
        def hold():
            with probe._lock:  # what a thread in the middle of probe() holds
                held.set()
                release.wait()
        t = threading.Thread(target=hold, daemon=True)
        t.start()
        held.wait()
        pid = os.fork()
        if pid == 0:
            ok = bpflink.supports("CGROUP_INET_EGRESS")
            os._exit(0 if ok else 3)
        release.set()
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """, timeout=30)
    assert res.returncode == 0 and res.stdout.strip() == "0", (res.stdout, res.stderr)


def test_fork_forgets_kernel_facts() -> None:
    res = run_child("""
        import importlib, os, bpflink
        from bpflink.opts import mprog
        probe = importlib.import_module("bpflink.probe")
        query = importlib.import_module("bpflink.query")
        bpflink.supports("CGROUP_INET_EGRESS")
        query._mprog_fields = True
        mprog._kernel_orders_cgroups()
        pid = os.fork()
        if pid == 0:
            ok = (not probe._cache and query._mprog_fields is None
                  and mprog._kernel_orders_cgroups.cache_info().currsize == 0)
            os._exit(0 if ok else 4)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """, timeout=30)
    assert res.returncode == 0 and res.stdout.strip() == "0", (res.stdout, res.stderr)
