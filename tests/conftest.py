"""Fixtures for tests on the real kernel: bpffs/tracefs mounts, cgroups, network namespaces, BPF objects."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from bpflink.testing import Cgroup, CompileError, LeakSnapshot, compile_bpf, mount_kernel_filesystems
from netns import netns  # noqa: F401  (fixture: a private netns with a veth pair that carries traffic)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CGROUP2 = Path(os.environ.get("BPFLINK_CGROUP2", "/sys/fs/cgroup/unified"))
BPFFS = Path("/sys/fs/bpf")
TRACEFS = Path("/sys/kernel/tracing")
_counter = itertools.count()
# a sample user project of bpflink.testing, run by tests/test_plugin.py in its own pytest process
collect_ignore = ["sample_project"]


@pytest.fixture(scope="session", autouse=True)
def _kernel_filesystems() -> None:
    if os.geteuid() != 0:
        pytest.skip("bpflink's tests need root (they create real links on the running kernel)")
    mount_kernel_filesystems(cgroup2=CGROUP2)


@pytest.fixture
def cgroup() -> Iterator[Path]:
    """A fresh cgroup v2 directory under ``CGROUP2``, removed afterwards (bpflink.testing's ``Cgroup``, as the
    plugin's ``bpf_cgroup`` fixture; this one yields the path the suite's tests take)."""
    with Cgroup.create("test", parent=CGROUP2) as cg:
        yield cg.path


def run_in_cgroup(cgroup: Path, code: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` as a process inside ``cgroup``."""

    def enter() -> None:
        (cgroup / "cgroup.procs").write_text(str(os.getpid()))

    return subprocess.run([sys.executable, "-c", code], preexec_fn=enter, capture_output=True, text=True,
                          timeout=timeout)


UDP_SEND = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = 0
for _ in range({n}):
    try:
        s.sendto(b"x", ("127.0.0.1", {port})); sent += 1
    except OSError:
        pass
print(sent)
"""


def udp_port() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    return sock, sock.getsockname()[1]


def drain(sock: socket.socket) -> int:
    """How many datagrams arrived."""
    got = 0
    while True:
        try:
            sock.recv(64)
            got += 1
        except (TimeoutError, socket.timeout):
            return got


def sent_and_received(cgroup: Path, n: int = 5) -> tuple[int, int]:
    """Send ``n`` UDP datagrams to 127.0.0.1 from a process in ``cgroup``: (sends that succeeded, received)."""
    sock, port = udp_port()
    with sock:
        res = run_in_cgroup(cgroup, UDP_SEND.format(n=n, port=port))
        assert res.returncode == 0, res.stderr
        return int(res.stdout), drain(sock)


def send_from(cgroup: Path, n: int = 5) -> int:
    """How many of ``n`` UDP datagrams sent from a process in ``cgroup`` to 127.0.0.1 arrived."""
    return sent_and_received(cgroup, n)[1]


class _Objects(Mapping[str, Path]):
    """``tests/bpf/<name>.bpf.c`` compiled on first access by the plugin's ``compile_bpf`` (cached by content hash
    in ~/.cache/bpflink/objects: the QEMU guests see the host's cache read-only and reuse what the host run
    compiled instead of paying clang under TCG)."""

    def __init__(self) -> None:
        self._sources = {src.name.removesuffix(".bpf.c"): src for src in sorted((HERE / "bpf").glob("*.bpf.c"))}
        self._done: dict[str, Path] = {}

    def __getitem__(self, name: str) -> Path:
        if name not in self._done:
            try:
                self._done[name] = compile_bpf(self._sources[name])
            except CompileError as exc:
                pytest.fail(str(exc), pytrace=False)
        return self._done[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)


@pytest.fixture(scope="session")
def bpf_objects() -> Mapping[str, Path]:
    """Every ``tests/bpf/*.bpf.c`` by name, compiled when first used (the plugin's ``bpf_compile``)."""
    return _Objects()


@pytest.fixture
def emitter(bpf_objects: Mapping[str, Path]) -> Iterator[Any]:
    """test_ringbuf's ``Emitter`` on a fresh ``ringbuf_emit`` object (the ring and perf buffer tests share it)."""
    from bpflink import Object
    from test_ringbuf import Emitter

    em = Emitter(Object.open(bpf_objects["ringbuf_emit"]))
    try:
        yield em
    finally:
        em.close()


def python_sources(root: Path) -> list[Path]:
    """Every ``*.py`` under ``root``, sorted, never looking into ``__pycache__``: a guest reads this tree over 9p
    while the host's run may be writing bytecode there."""
    found: list[Path] = []
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        found += (Path(here) / f for f in files if f.endswith(".py"))
    return sorted(found)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def is_perf_fd(fd: int) -> bool:
    """Whether this process's ``fd`` is a perf event (its anon inode's name)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[perf_event]"
    except OSError:
        return False


def perf_fds() -> int:
    """How many perf event fds this process holds."""
    return sum(is_perf_fd(int(fd)) for fd in os.listdir("/proc/self/fd"))


# --- leak check: fds (and the BPF links/programs/maps among them) and pins, around tests -------------------------
# Autouse for the modules below (cheap: one /proc/self/fd listing and one bpffs listing per test), and for any test
# marked ``leakcheck``. Pins are compared by name among those holding this process's pid (tests run alongside
# other processes that pin too). Links are per-process fds here: the system-wide link count is not ours to judge.
LEAK_CHECKED_MODULES = frozenset({"test_hardening", "test_contracts", "test_fdowner", "test_iter", "test_probe",
                                  "test_errors_per_family"})


def _our_pins(leaks: list[str]) -> list[str]:
    """Leaked pins whose name carries this process's pid: other engineers' runs pin on the same bpffs."""
    pid = str(os.getpid())
    return [line for line in leaks if line.startswith("pin ") and pid in os.path.basename(line)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__.rsplit(".", 1)[-1] in LEAK_CHECKED_MODULES:
            item.add_marker("leakcheck")


@pytest.fixture(autouse=True)
def _leak_check(request: pytest.FixtureRequest) -> Iterator[None]:
    """The plugin's ``LeakSnapshot`` (as ``bpf_no_leaks``), counting only pins named after this process."""
    if request.node.get_closest_marker("leakcheck") is None:
        yield
        return
    snapshot = LeakSnapshot.take()
    yield
    leaks = snapshot.leaks()  # after gc: an owner dropped without close() is closed by its finalizer
    pins = _our_pins(leaks)
    for line in pins:
        os.unlink(line.removeprefix("pin "))
    fds = [line for line in leaks if not line.startswith("pin ")]
    assert not fds, "the test leaked fds:\n  " + "\n  ".join(fds)
    assert not pins, f"the test leaked pins: {pins}"
