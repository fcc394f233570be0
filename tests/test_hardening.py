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
from typing import Any

import pytest

import bpflink
from bpflink import AttachType, Link, Map, MapType, Program, ProgType, asm, link_create
from bpflink.perf import PerfEvent
from conftest import open_fds, send_from

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
            with pytest.raises(ValueError, match=r"0\.\.(2\*\*31-1|2147483647)"):
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
        assert send_from(cgroup, 4) == 0  # b's pin keeps the dropping program attached
        b2 = Link.from_pin(pin_path)
        b2.close()
        os.unlink(pin_path)
        assert send_from(cgroup, 4) == 4  # gone with its last reference


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


@pytest.mark.hostonly
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
        assert send_from(cgroup, 4) == 0  # the pin holds the link: the program still drops
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

@pytest.mark.hostonly
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


@pytest.mark.hostonly
def test_bytes_cgroup_path_target(cgroup: Path) -> None:
    with egress_prog(0) as prog, link_create(prog, os.fsencode(cgroup), EGRESS) as link:
        assert send_from(cgroup, 4) == 0
        ids = bpflink.query(os.fsencode(cgroup), EGRESS).link_ids  # None (or None per entry): not reported < 6.6
        assert ids is None or ids[-1] in (link.id, 0, None)
    assert send_from(cgroup, 4) == 4


# --- fork ------------------------------------------------------------------------------------------------------

def test_fork_while_probing_does_not_hang() -> None:
    """A thread inside probe() held its lock at fork(): the child's supports() blocked forever."""
    res = run_child("""
        import os, threading, bpflink
        from bpflink import kernel
        held, release = threading.Event(), threading.Event()
        def hold():
            with kernel.trial_lock():  # what a thread in the middle of probe() holds
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


@pytest.mark.hostonly
def test_fork_forgets_kernel_facts(cgroup: Path) -> None:
    """Every fact learned by trial (probe verdicts, the query's fields, cgroup ordering) lives in bpflink.kernel,
    which a forked child starts without."""
    res = run_child(f"""
        import os, bpflink
        from bpflink import AttachType, kernel
        from bpflink.opts import Cgroup
        bpflink.supports("CGROUP_INET_EGRESS")
        bpflink.query({str(cgroup)!r}, AttachType.CGROUP_INET_EGRESS)
        try:  # ordering asks the kernel once whether it keeps cgroup revisions
            Cgroup(expected_revision=1).build(AttachType.CGROUP_INET_EGRESS)
        except bpflink.NotSupportedError:
            pass
        kernel.config()
        learned = kernel.recall(("probe", AttachType.CGROUP_INET_EGRESS))
        assert learned is not None and kernel.recall("prog_query_mprog_fields") is not None
        assert kernel.recall("cgroup_revision") is not None
        pid = os.fork()
        if pid == 0:
            ok = (kernel.recall(("probe", AttachType.CGROUP_INET_EGRESS)) is None
                  and kernel.recall("prog_query_mprog_fields") is None and kernel.recall("cgroup_revision") is None
                  and kernel.recall("config") is None)
            os._exit(0 if ok else 4)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """, timeout=30)
    assert res.returncode == 0 and res.stdout.strip() == "0", (res.stdout, res.stderr)


# --- right answers ---------------------------------------------------------------------------------------------

def test_verifier_log_grows_past_one_mib(cgroup: Path) -> None:
    """A valid program whose log_level=2 log exceeds the old fixed 1 MiB buffer failed with ENOSPC."""
    insns = asm.return_imm(0)[:8] * 20000 + asm.return_imm(0)  # 20000 x "r0 = 0": ~1.4 MiB of log
    with Program.load(ProgType.CGROUP_SKB, insns, expected_attach_type=EGRESS, log_level=2) as prog, \
            link_create(prog, os.fspath(cgroup), EGRESS):
        assert send_from(cgroup, 4) == 0  # it loaded, and it runs
    with pytest.raises(bpflink.VerifierError) as info:
        # a fixed buffer the log overflows on every kernel (6.1/6.12 write less than 1 MiB for this program)
        Program.load(ProgType.CGROUP_SKB, insns, expected_attach_type=EGRESS, log_level=2, log_size=1 << 12)
    assert info.value.errno == errno.ENOSPC and "log_size" in str(info.value) and "r0 = 0" in info.value.log


@pytest.mark.hostonly
@pytest.mark.parametrize(("kwargs", "exc", "name"), [
    ({"attach_btf_id": -1}, ValueError, "attach_btf_id"), ({"prog_flags": 1 << 40}, ValueError, "prog_flags"),
    ({"log_level": -1}, ValueError, "log_level"), ({"log_level": "1"}, TypeError, "log_level"),
    ({"log_size": 64}, ValueError, "log_size"), ({"attach_prog_fd": -1}, ValueError, "attach_prog_fd"),
    ({"attach_btf_obj_fd": 1 << 32}, ValueError, "attach_btf_obj_fd"), ({"name": "a\0b"}, ValueError, "name"),
    ({"license": 3}, TypeError, "license"), ({"license": b"G\0PL"}, ValueError, "license")])
def test_load_arguments_are_checked_before_the_syscall(kwargs: dict[str, object], exc: type, name: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Raw cffi OverflowError/TypeError ("can't convert negative number to unsigned") reached users."""
    def no_syscall(*args: object) -> int:
        raise AssertionError("reached bpf_prog_load")

    monkeypatch.setattr(bpflink.lowlevel, "bpf_prog_load", no_syscall)
    with pytest.raises(exc, match=name):
        Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS, **kwargs)  # type: ignore[arg-type]


def test_bytes_name_and_license() -> None:
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS, name=b"bytesname",
                      license=b"GPL") as prog:
        ll = bpflink.lowlevel
        info = ll.ffi.new("struct bpf_prog_info *")
        size = ll.ffi.new("__u32 *", ll.ffi.sizeof("struct bpf_prog_info"))
        assert ll.bpf_prog_get_info_by_fd(prog.fd, info, size) == 0
        assert prog.name == "bytesname" and ll.ffi.string(info.name) == b"bytesname"  # the kernel's view


@pytest.mark.hostonly
@pytest.mark.parametrize(("value", "exc"), [(-1, ValueError), (1 << 32, ValueError), (0, ValueError),
                                            ("1", TypeError), (True, TypeError), (1.0, TypeError)])
def test_from_id_arguments(value: object, exc: type) -> None:
    with pytest.raises(exc, match="prog_id"):
        Program.from_id(value)  # type: ignore[arg-type]
    with pytest.raises(exc, match="link_id"):
        Link.from_id(value)  # type: ignore[arg-type]


@pytest.mark.hostonly
def test_libbpf_error_codes_have_text(tmp_path: Path) -> None:
    """libbpf's 4000+ codes printed as "Unknown error 4001"."""
    bogus = tmp_path / "not-elf.o"
    bogus.write_bytes(b"hello, not an ELF file\n")
    with pytest.raises(OSError) as info:
        bpflink.Object.open(bogus)
    assert "Unknown error" not in str(info.value) and "format invalid" in str(info.value)
    assert bpflink.errors.strerror(4001) == "BPF object format invalid"  # the choke point, whoever raises
    assert bpflink.errors.errno_name(4001) == "LIBBPF_ERRNO__FORMAT"


def test_close_after_the_fd_was_closed_underneath(cgroup: Path) -> None:
    with egress_prog() as prog:
        link = link_create(prog, os.fspath(cgroup), EGRESS)
        os.close(link.fd)
        with pytest.raises(OSError, match=r"Link: close\(fd \d+\).*EBADF.*closed underneath") as info:
            link.close()
        assert info.value.errno == errno.EBADF and link.closed
        link.close()  # idempotent from then on


# --- query: rare kernel answers by fault injection through lowlevel --------------------------------------------

def _hook_with_two(cgroup: Path) -> tuple[Program, list[Link]]:
    prog = egress_prog()
    links = [link_create(prog, os.fspath(cgroup), EGRESS, bpflink.opts.Cgroup()) for _ in range(2)]
    return prog, links


def test_query_under_churn_is_eagain(cgroup: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hook that grows between every count and fill ended in RuntimeError; now OSError(EAGAIN) with a hint."""
    prog, links = _hook_with_two(cgroup)
    real = bpflink.lowlevel.bpf_prog_query_opts

    def always_grown(target: int, at: int, opts: object) -> int:
        ret = real(target, at, opts)
        if ret >= 0 and opts.prog_ids:  # type: ignore[attr-defined]  # the filling call: "it grew meanwhile"
            opts.count = 99  # type: ignore[attr-defined]
            return -errno.ENOSPC
        return ret

    monkeypatch.setattr(bpflink.lowlevel, "bpf_prog_query_opts", always_grown)
    try:
        with pytest.raises(BlockingIOError) as info:
            bpflink.query(cgroup, EGRESS)
        assert info.value.errno == errno.EAGAIN and "try again" in str(info.value)
    finally:
        for link in links:
            link.close()
        prog.close()


def test_query_hook_shrinking_between_calls(cgroup: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook shrank between counting and filling: only what the kernel filled is reported."""
    prog, links = _hook_with_two(cgroup)
    real = bpflink.lowlevel.bpf_prog_query_opts

    def shrunk(target: int, at: int, opts: object) -> int:
        if opts.prog_ids:  # type: ignore[attr-defined]
            links[0].close()  # a real detach between the two calls, at exactly that point
        return real(target, at, opts)

    monkeypatch.setattr(bpflink.lowlevel, "bpf_prog_query_opts", shrunk)
    try:
        q = bpflink.query(cgroup, EGRESS)
        assert q.prog_ids == (prog.id,)
    finally:
        for link in links:
            link.close()
        prog.close()


# --- errors that fit the operation -----------------------------------------------------------------------------

def test_update_hint_is_about_update(cgroup: Path) -> None:
    """link.update(xdp_prog) on a cgroup link talked about the target's cgroup directory."""
    with egress_prog() as prog, link_create(prog, os.fspath(cgroup), EGRESS) as link, \
            Program.load(ProgType.XDP, asm.return_imm(2)) as xdp:
        with pytest.raises(OSError) as info:
            link.update(xdp)
        text = str(info.value)
        assert "cgroup v2 directory" not in text and "target" not in text and "new program" in text
        assert send_from(cgroup, 4) == 4  # the old program still runs


def test_map_errors_talk_about_maps() -> None:
    with pytest.raises(OSError) as info:
        Map.create(MapType.ARRAY, key_size=8, value_size=8, max_entries=1)  # arrays take 4-byte keys
    assert info.value.errno == errno.EINVAL and "map" in str(info.value) and "attach" not in str(info.value)
    with Map.array() as m, pytest.raises(OSError) as info:
        m.delete(0)
    assert "array maps" in str(info.value) and "attach" not in str(info.value)


def test_perf_event_errors_talk_about_perf_events(tmp_path: Path) -> None:
    from bpflink.perf import open_uprobe

    for path, offset in ((tmp_path / "missing", 0), ("/bin/true", 1 << 40)):
        with pytest.raises(OSError) as info:
            open_uprobe(path, offset)
        if isinstance(info.value, bpflink.NotSupportedError):
            pytest.skip(str(info.value))
        assert "target" not in str(info.value) and "perf_event_open" in str(info.value)


UNPRIV = r"""
import errno, json, os, sys
from bpflink import AttachType, Link, Program, ProgType, asm, link_create, query
import bpflink
out = {}
def step(name, fn):
    try:
        fn(); out[name] = {"ok": True}
    except OSError as exc:
        out[name] = {"type": type(exc).__name__, "errno": exc.errno, "msg": str(exc)}
# a socket filter for a cgroup hook: the kernel's EINVAL, which the probe must not replace
p = Program.load(ProgType.SOCKET_FILTER, asm.return_imm(0))
step("link_create", lambda: link_create(p, sys.argv[1], AttachType.CGROUP_INET_EGRESS))
step("from_id", lambda: Link.from_id(1))
step("list", lambda: list(bpflink.listing.link_ids()))
print(json.dumps(out))
"""


def test_probe_never_replaces_the_callers_error(cgroup: Path) -> None:
    """As nobody with CAP_BPF/NET_ADMIN/PERFMON a link_create EINVAL became the probe's own PermissionError
    (mkdir in the cgroup root). It stays the kernel's EINVAL; by-id and listing EPERMs name CAP_SYS_ADMIN."""
    if not Path("/usr/bin/setpriv").exists():
        pytest.skip("setpriv (util-linux) is missing")
    caps = "+bpf,+net_admin,+perfmon"
    res = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", f"--inh-caps={caps}",
                          f"--ambient-caps={caps}", sys.executable, "-c", UNPRIV, os.fspath(cgroup)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    import json

    out = json.loads(res.stdout)
    assert out["link_create"]["errno"] == errno.EINVAL, out
    assert "mkdir" not in out["link_create"]["msg"]
    for step in ("from_id", "list"):
        assert out[step]["errno"] == errno.EPERM and "CAP_SYS_ADMIN" in out[step]["msg"], out


def test_probe_verdict_when_it_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe whose target cannot be set up says "not probed: <why>" instead of raising."""
    from bpflink import kernel, probing
    from bpflink.probing._harness import Trial

    def refuse(self: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", "/sys/fs/cgroup/bpflink-probe-x")

    monkeypatch.setattr(Trial, "cgroup_fd", refuse)
    kernel.forget()
    try:
        result = probing.probe_attach_type(EGRESS)
        assert not result.supported and result.reason.startswith("not probed: PermissionError")
        assert probing.not_supported_error(EGRESS, errno.EINVAL) is None  # the caller's EINVAL stands
    finally:
        kernel.forget()  # later tests probe for real


@pytest.mark.hostonly
@pytest.mark.parametrize("kind", ["directory", "binary", "fifo"])
def test_bad_kernel_config_is_ignored(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "config"
    if kind == "directory":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\x7fELF\xff\xfe\x00" * 100)
    else:
        os.mkfifo(path)
    res = subprocess.run([sys.executable, "-W", "always", "-c",
                          "import bpflink.features as f; print(f.explain('tcx') is not None)"],
                         env={**os.environ, "BPFLINK_KERNEL_CONFIG": str(path)}, capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0 and res.stdout.strip() == "True", res.stderr
    assert "ignoring kernel config" in res.stderr


@pytest.mark.hostonly
def test_builders_fill_the_value_they_validated() -> None:
    """Builders validated __index__ then filled with int(): an object answering differently got through."""
    class Shifty:
        calls = 0

        def __index__(self) -> int:
            Shifty.calls += 1
            return 5 if Shifty.calls == 1 else 1 << 70

        def __int__(self) -> int:
            return -1

    built = bpflink.opts.PerfEvent(cookie=Shifty()).build(AttachType.PERF_EVENT)  # type: ignore[arg-type]
    assert int(built.ptr.perf_event.bpf_cookie) == 5
    Shifty.calls = 0
    built = bpflink.opts.Tracing(cookie=Shifty()).build(AttachType.TRACE_FENTRY)  # type: ignore[arg-type]
    assert int(built.ptr.tracing.cookie) == 5
    Shifty.calls = 0
    built = bpflink.opts.Iter(tid=Shifty()).build(AttachType.TRACE_ITER)  # type: ignore[arg-type]
    assert int(built.ptr.iter_info.task.tid) == 5


@pytest.mark.hostonly
def test_built_opts_outlive_their_builder_only_through_ptr() -> None:
    """Only ``.ptr`` of a temporary BuiltOpts is kept: the arrays it points into must stay alive."""
    import gc

    ptr = bpflink.opts.KprobeMulti(syms=["vprintk", "do_nanosleep"]).build(
        AttachType.TRACE_KPROBE_MULTI).ptr
    gc.collect()
    junk = [bytearray(b"\xff" * 64) for _ in range(1000)]  # reuse freed memory if it was freed
    syms = ptr.kprobe_multi.syms
    assert bpflink.lowlevel.ffi.string(syms[0]) == b"vprintk" and ptr.kprobe_multi.cnt == 2
    del junk


def test_cgroup_revision_zero_refuses_ordering(cgroup: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel whose cgroup query reports revision 0 (< 6.17) ignores before/after: bpflink must refuse them.
    Injected through lowlevel (the real query, its revision zeroed) instead of needing an old kernel."""
    from bpflink.opts import Cgroup, ProgId

    real = bpflink.lowlevel.bpf_prog_query_opts

    def revision_zero(target: int, at: int, opts: Any) -> int:
        ret = real(target, at, opts)
        opts.revision = 0
        return ret

    with egress_prog() as prog:
        monkeypatch.setattr(bpflink.lowlevel, "bpf_prog_query_opts", revision_zero)
        bpflink.kernel.forget("cgroup_revision")
        try:
            with pytest.raises(bpflink.NotSupportedError, match="revision"):
                link_create(prog, os.fspath(cgroup), EGRESS, Cgroup(before=ProgId(prog.id)))
            with link_create(prog, os.fspath(cgroup), EGRESS, Cgroup()):  # plain multi-attach still works
                assert send_from(cgroup, 4) == 4
        finally:
            bpflink.kernel.forget("cgroup_revision")


def test_shutdown_time_failure_is_the_kernels_error(cgroup: Path) -> None:
    """During interpreter finalization (sys.meta_path is None) a failed link_create raised ImportError from
    the probe's lazy import instead of the kernel's EINVAL."""
    res = run_child(f"""
        import os
        from bpflink import AttachType, Program, ProgType, asm, link_create
        prog = Program.load(ProgType.SOCKET_FILTER, asm.return_imm(0)).detach_fd()  # a raw fd: no finalizer
        cg = os.open({str(cgroup)!r}, os.O_RDONLY)
        class Late:
            def __del__(self, write=os.write, lc=link_create, p=prog, cg=cg, at=AttachType.CGROUP_INET_EGRESS):
                try:
                    lc(p, cg, at)  # a socket filter on a cgroup hook: EINVAL
                except BaseException as exc:
                    write(1, f"{{type(exc).__name__}} {{getattr(exc, 'errno', None)}}\\n".encode())
        late = Late()
    """, timeout=30)
    assert res.stdout.strip() == f"OSError {errno.EINVAL}", (res.stdout, res.stderr)


@pytest.mark.hostonly
def test_fd_bounds_are_inclusive() -> None:
    """0 and 2**31-1 are fds; -1 and 2**31 are not (as_fd, the check every fd argument goes through)."""
    from bpflink._fd import as_fd

    class IntFd(int):
        pass

    class Owner:
        def __init__(self, fd: object) -> None:
            self.fd = fd

        def fileno(self) -> object:
            return self.fd

    assert as_fd(0, "x") == 0 and as_fd((1 << 31) - 1, "x") == (1 << 31) - 1
    assert as_fd(Owner(IntFd(5)), "x") == 5 and type(as_fd(Owner(IntFd(5)), "x")) is int  # an int subclass
    for bad in (-1, 1 << 31):
        with pytest.raises(ValueError):
            as_fd(bad, "x")
    with pytest.raises(TypeError):
        as_fd(Owner(True), "x")


def test_path_target_replaced_between_stat_and_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file type is checked again on the opened fd: a FIFO swapped in after the stat() is still refused
    (simulated: stat() reports a regular file for the FIFO)."""
    import stat as stat_mod

    from bpflink._fd import open_path_target

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    real_stat = os.stat

    def lying_stat(path: object, *args: object, **kwargs: object) -> object:
        st = real_stat(path, *args, **kwargs)  # type: ignore[arg-type]
        return os.stat_result((stat_mod.S_IFREG | 0o644, *st[1:]))

    monkeypatch.setattr(os, "stat", lying_stat)
    before = open_fds()
    with pytest.raises(ValueError, match="FIFO"):
        open_path_target(fifo, "netns", "target")
    assert open_fds() == before


@pytest.mark.hostonly
def test_names_with_nul_are_refused_before_c() -> None:
    """C stops at a NUL: the name looked up would be another one."""
    from bpflink.opts.freplace import function_btf_id
    from bpflink.struct_ops import build_value

    with pytest.raises(ValueError, match="NUL"):
        build_value("tcp_congestion_ops\0x", {})
    with egress_prog() as prog, pytest.raises(ValueError, match="NUL"):
        function_btf_id(prog, "f\0g")


@pytest.mark.hostonly
def test_builder_arrays_reach_the_struct_and_big_endian_is_refused() -> None:
    """ref_ctr_offsets and cookies were never shown to reach what the kernel reads; a big-endian buffer must
    be refused (read natively it would be other offsets)."""
    import numpy as np

    from bpflink.opts import UprobeMulti

    with UprobeMulti(path="/bin/true", offsets=[0x10, 0x20], ref_ctr_offsets=[0x30, 0x40],
                     cookies=np.array([7, 8], dtype="<u8")).build(AttachType.TRACE_UPROBE_MULTI) as built:
        um = built.ptr.uprobe_multi
        assert um.cnt == 2 and [um.offsets[i] for i in range(2)] == [0x10, 0x20]
        assert [um.ref_ctr_offsets[i] for i in range(2)] == [0x30, 0x40]
        assert [um.cookies[i] for i in range(2)] == [7, 8]
        assert bpflink.lowlevel.ffi.string(um.path) == b"/bin/true"
    for field in ("offsets", "ref_ctr_offsets", "cookies"):
        kwargs: dict[str, Any] = {"offsets": [1, 2], field: np.array([1, 2], dtype=">u8")}
        with pytest.raises(ValueError, match="byte order"):
            UprobeMulti(path="/bin/true", **kwargs)


def test_kind_check_falls_back_to_proc_when_the_kernel_does_not_say(cgroup: Path, pin_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Where BPF_LINK_UPDATE is refused outright (EPERM of an unprivileged caller, injected here), the anon
    inode's name decides: a map pin is refused, a link pin opens."""
    with egress_prog() as prog, link_create(prog, os.fspath(cgroup), EGRESS) as link, Map.array() as m:
        link.pin(pin_path)
        map_pin = str(pin_path) + "-2"
        assert bpflink.lowlevel.bpf_obj_pin(m.fd, os.fsencode(map_pin)) == 0
        monkeypatch.setattr(bpflink.lowlevel, "bpf_link_update", lambda *a: -errno.EPERM)
        with Link.from_pin(pin_path) as again:
            assert again.id == link.id
        with pytest.raises(TypeError, match="bpf-map"):
            Link.from_pin(map_pin)


def test_update_map_on_a_non_struct_ops_link_hints_struct_ops(cgroup: Path) -> None:
    with egress_prog() as prog, link_create(prog, os.fspath(cgroup), EGRESS) as link, Map.array() as m:
        with pytest.raises(OSError) as info:
            link.update_map(m)
        assert info.value.errno == errno.EINVAL and "struct_ops" in str(info.value)


@pytest.mark.parametrize("at", [AttachType.XDP, AttachType.SK_LOOKUP])
def test_probe_in_its_private_netns(at: AttachType) -> None:
    """The probes of network hooks run in a private network namespace: they are probed, never 'not probed'."""
    from bpflink import probing

    result = probing.probe_attach_type(at)
    assert result.supported and not result.reason.startswith("not probed"), result


@pytest.mark.hostonly
@pytest.mark.parametrize(("insns", "exc"), [
    ([b"\x00" * 12], TypeError), ([1 << 64], TypeError), ([-1], TypeError), ([True], TypeError),
    ([], ValueError), (b"\x00" * 12, ValueError), (b"", ValueError), ("b7", TypeError)])
def test_instructions_are_checked(insns: object, exc: type, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_syscall(*args: object) -> int:
        raise AssertionError("reached bpf_prog_load")

    monkeypatch.setattr(bpflink.lowlevel, "bpf_prog_load", no_syscall)
    with pytest.raises(exc):
        Program.load(ProgType.CGROUP_SKB, insns, expected_attach_type=EGRESS)  # type: ignore[arg-type]


def test_instruction_forms_agree() -> None:
    """bytes, 8-byte chunks and u64 ints (the largest one included) are the same program to the kernel."""
    raw = asm.return_imm(1)
    ints = [int.from_bytes(raw[i:i + 8], "little") for i in range(0, len(raw), 8)]
    for form in (raw, [raw[:8], raw[8:]], ints, bytearray(raw), memoryview(raw)):
        with Program.load(ProgType.CGROUP_SKB, form, expected_attach_type=EGRESS) as prog:  # type: ignore[arg-type]
            assert prog.id > 0
    with pytest.raises(OSError):  # 2**64-1 is accepted by bpflink, refused by the kernel (a bad opcode)
        Program.load(ProgType.CGROUP_SKB, [(1 << 64) - 1, *ints], expected_attach_type=EGRESS)


def test_verifier_error_message_and_log() -> None:
    """A rejected program: VerifierError with the errno, the operation, and the log; no doubled prefix."""
    exit_only = asm.return_imm(0)[8:]  # "exit" without setting r0
    with pytest.raises(bpflink.VerifierError) as info:
        Program.load(ProgType.CGROUP_SKB, exit_only, expected_attach_type=EGRESS)
    exc = info.value
    assert exc.errno == errno.EACCES and str(exc).startswith("[Errno 13] prog_load(CGROUP_SKB): ")
    assert str(exc).count("[Errno") == 1 and "R0" in exc.log


def test_query_eperm_is_about_querying(cgroup: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """query's EPERM said "creating this link needs ..." (the link_create hint of the family)."""
    monkeypatch.setattr(bpflink.lowlevel, "bpf_prog_query_opts", lambda *a: -errno.EPERM)
    with pytest.raises(PermissionError) as info:
        bpflink.query(cgroup, EGRESS)
    assert "querying" in str(info.value) and "creating" not in str(info.value)
