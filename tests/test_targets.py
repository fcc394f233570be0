"""bpflink.targets: library names as the dynamic loader resolves them, a library only one process mapped, and
binaries inside another mount namespace (a tmpfs mounted only there, via unshare -m) probed by pid + their
in-namespace path; two "containers" of one image attached once."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bpflink import Object, targets
from bpflink.attach import uprobe, uprobe_in
from tracehelp import Binaries, build_binaries

N = 7
KEY = 11  # on_bare_uprobe's counter in tests/bpf/attach_sections.bpf.c


@pytest.fixture(scope="module")
def bins(tmp_path_factory: pytest.TempPathFactory) -> Binaries:
    return build_binaries(tmp_path_factory.mktemp("targets"))


def _ldconfig(name: str) -> str | None:
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        m = re.match(rf"\s+{re.escape(name)} \(([^)]*)\) => (\S+)", line)
        if m and ("x86-64" in m.group(1) or "AArch64" in m.group(1) or "64" in m.group(1)):
            return m.group(2)
    return None


@pytest.mark.hostonly
def test_library_names_like_the_loader() -> None:
    want = _ldconfig("libc.so.6")
    if want is None:
        pytest.skip("ldconfig -p lists no 64-bit libc.so.6 here")
    same = os.stat(want)
    for name in ("libc.so.6", "c", "libc.so"):
        t = targets.resolve_binary(name)
        assert (t.dev, t.ino) == (same.st_dev, same.st_ino), name
    with pytest.raises(FileNotFoundError, match=r"no library 'bpflink_none'.*this mount namespace"):
        targets.resolve_binary("bpflink_none")


@pytest.mark.hostonly
def test_ld_library_path(bins: Binaries, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError):
        targets.resolve_binary("libbpflinkt.so")
    monkeypatch.setenv("LD_LIBRARY_PATH", str(bins.lib.parent))
    assert targets.resolve_binary("libbpflinkt.so").path == str(bins.lib)
    assert targets.resolve_binary("bpflinkt").path == str(bins.lib)


@contextmanager
def _waiting(argv: list[str], exe_suffix: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """Start ``argv`` (ending in the target's "N wait" arguments); yield once its exe is the target."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                # the loader has mapped its libraries once main() sleeps reading stdin ("S" in /proc/PID/stat;
                # exec and ld.so never sleep): a fixed pause was not enough under TCG on a loaded host
                if os.readlink(f"/proc/{proc.pid}/exe").endswith(exe_suffix) and \
                        Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "S":
                    break
            except OSError:
                pass
            if proc.poll() is not None:
                raise AssertionError(f"{argv} exited: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.01)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert proc.wait(timeout=10) == 0


def _obj(bpf_objects: dict[str, Path], tgid: int = 0) -> Object:
    obj = Object.open(bpf_objects["attach_sections"], programs=["on_bare_uprobe"])
    cfg = obj.map("cfg")
    cfg.update(0, tgid)
    cfg.close()
    return obj


def _count(obj: Object) -> int:
    with obj.map("hits") as m:
        return m.lookup_int(KEY)


def test_library_only_one_process_mapped(bins: Binaries, bpf_objects: dict[str, Path]) -> None:
    with _waiting([str(bins.with_lib), str(N), "wait"], "uprobe_target_lib") as proc:
        t = targets.resolve_binary("libbpflinkt.so", pid=proc.pid)
        assert (t.dev, t.ino) == (os.stat(bins.lib).st_dev, os.stat(bins.lib).st_ino)
        assert t.name == str(bins.lib) and t.pids == (proc.pid,)
        with _obj(bpf_objects, proc.pid) as obj, obj.program("on_bare_uprobe") as prog, \
                uprobe(prog, "libbpflinkt.so", "bpflink_lib_fn", pid=proc.pid):
            _go(proc)
            assert _count(obj) == N


def _unshare(script: str) -> list[str]:
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script]


def test_binary_in_private_mount_namespace(bins: Binaries, bpf_objects: dict[str, Path], tmp_path: Path) -> None:
    ctr = tmp_path / "ctr"
    ctr.mkdir()  # empty on the host; a tmpfs with the binary is mounted on it only inside the namespace
    app = f"{ctr}/app"
    script = f"mount -t tmpfs none {ctr} && cp {bins.pie} {app} && exec {app} {N} wait"
    with _waiting(_unshare(script), "/app") as proc:
        assert not os.path.exists(app)
        with pytest.raises(FileNotFoundError, match=r"does not exist in this mount namespace"):
            targets.resolve_binary(app)
        t = targets.resolve_binary(app, pid=proc.pid)
        assert t.path.startswith(f"/proc/{proc.pid}/") and "mnt:[" in (t.mnt_ns or "")
        assert t.mnt_ns != f"mount namespace {os.readlink('/proc/self/ns/mnt')} of pid {proc.pid}"
        with pytest.raises(FileNotFoundError, match=rf"'/bpflink/none' does not exist in mount namespace mnt:\["
                                                    rf"\d+\] of pid {proc.pid}"):
            targets.resolve_binary("/bpflink/none", pid=proc.pid)
        with _obj(bpf_objects, proc.pid) as obj, obj.program("on_bare_uprobe") as prog, \
                uprobe(prog, app, "bpflink_t_one", pid=proc.pid):
            _go(proc)
            assert _count(obj) == N
    with pytest.raises(ProcessLookupError, match=f"process {proc.pid} is gone"):
        targets.resolve_binary(app, pid=proc.pid)


def test_same_image_in_two_containers_attached_once(bins: Binaries, bpf_objects: dict[str, Path],
                                                   tmp_path: Path) -> None:
    image, other, ctr = tmp_path / "image", tmp_path / "other", tmp_path / "ctr"
    for d in (image, other, ctr):
        d.mkdir()
    shutil.copy(bins.pie, image / "app")
    shutil.copy(bins.pie, other / "app")  # same bytes, another file: attached separately
    app = f"{ctr}/app"
    with _waiting(_unshare(f"mount --bind {image} {ctr} && exec {app} {N} wait"), "/app") as a, \
            _waiting(_unshare(f"mount --bind {image} {ctr} && exec {app} {N} wait"), "/app") as b, \
            _waiting(_unshare(f"mount --bind {other} {ctr} && exec {app} {N} wait"), "/app") as c:
        found = targets.resolve_targets(app, [a.pid, b.pid, c.pid])
        assert [t.pids for t in found] == [(a.pid, b.pid), (c.pid,)]
        with _obj(bpf_objects) as obj, obj.program("on_bare_uprobe") as prog, \
                uprobe_in(prog, app, "bpflink_t_one", [a.pid, b.pid, c.pid]) as group:
            assert len(group) == 2
            for p in (a, b, c):
                _go(p)
            assert _count(obj) == 3 * N


@pytest.mark.hostonly
def test_bare_names_relative_paths_and_mapped_files(tmp_path: Path) -> None:
    """One resolver for uprobes and USDT: a bare name is an executable in PATH first (libbpf's rule), then a
    library; with pid= a relative path is relative to that process's working directory; mapped_files lists each
    distinct mapped file once."""
    true = shutil.which("true")
    assert true is not None
    t = targets.resolve_binary("true")
    assert (t.dev, t.ino) == (os.stat(true).st_dev, os.stat(true).st_ino)
    (tmp_path / "x").write_bytes(b"\x7fELF")
    with subprocess.Popen(["sleep", "30"], cwd=tmp_path) as proc:
        try:
            deadline = time.monotonic() + 10  # until the loader has mapped libc (exec and ld.so take a moment)
            while time.monotonic() < deadline and "libc.so" not in Path(f"/proc/{proc.pid}/maps").read_text():
                time.sleep(0.01)
            t = targets.resolve_binary("./x", pid=proc.pid)
            assert t.path == f"/proc/{proc.pid}/root{tmp_path}/x" and t.name == f"{tmp_path}/x"
            files = targets.mapped_files(proc.pid)
            assert len({f.key for f in files}) == len(files)
            sleep = os.stat(shutil.which("sleep") or "/bin/sleep")
            assert (sleep.st_dev, sleep.st_ino) in {f.key for f in files}
            assert any(os.path.basename(f.name).startswith("libc.so") for f in files)
        finally:
            proc.kill()
    with pytest.raises(FileNotFoundError, match=r"no executable 'bpflink_none' in PATH"):
        targets.resolve_binary("bpflink_none")
    with pytest.raises(ValueError, match="pid must be in"):
        targets.resolve_binary("/bin/true", pid=0)


@pytest.mark.hostonly
def test_no_permission_to_another_users_process_root() -> None:
    """Resolving inside a process this user may not ptrace: a PermissionError naming the process and what is
    needed (run as nobody against this root-owned test process)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv (util-linux) to run a child as nobody")
    code = ("import sys\nfrom bpflink import targets\n"
            "try:\n    targets.resolve_binary('/bin/true', pid=int(sys.argv[1]))\n"
            "except PermissionError as exc:\n    print('EACCES', exc)\n")
    res = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code,
                          str(os.getpid())], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("EACCES") and f"process {os.getpid()}" in res.stdout
    assert "CAP_SYS_PTRACE" in res.stdout, res.stdout


def test_deleted_library_through_map_files(bins: Binaries, bpf_objects: dict[str, Path], tmp_path: Path) -> None:
    """A library deleted after the process mapped it: found through /proc/PID/map_files, and the probe fires."""
    libdir = tmp_path / "lib"
    libdir.mkdir()
    shutil.copy(bins.lib, libdir / bins.lib.name)
    env = {**os.environ, "LD_LIBRARY_PATH": str(libdir)}  # ahead of the binary's RUNPATH
    with _waiting([str(bins.with_lib), str(N), "wait"], "uprobe_target_lib", env=env) as proc:
        (libdir / bins.lib.name).unlink()
        t = targets.resolve_binary("libbpflinkt.so", pid=proc.pid)
        assert t.path.startswith(f"/proc/{proc.pid}/map_files/") and t.name == str(libdir / bins.lib.name)
        with _obj(bpf_objects, proc.pid) as obj, obj.program("on_bare_uprobe") as prog, \
                uprobe(prog, "libbpflinkt.so", "bpflink_lib_fn", pid=proc.pid):
            _go(proc)
            assert _count(obj) == N
