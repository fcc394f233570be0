"""Fixtures for tests on the real kernel: bpffs/tracefs mounts, cgroups, network namespaces, BPF objects."""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpflink.testing import Cgroup
from netns import netns  # noqa: F401  (fixture: a private netns with a veth pair that carries traffic)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CGROUP2 = Path(os.environ.get("BPFLINK_CGROUP2", "/sys/fs/cgroup/unified"))
BPFFS = Path("/sys/fs/bpf")
TRACEFS = Path("/sys/kernel/tracing")
_counter = itertools.count()
# a sample user project of bpflink.testing, run by tests/test_plugin.py in its own pytest process
collect_ignore = ["sample_project"]


def _mounted(path: Path) -> bool:
    return subprocess.run(["mountpoint", "-q", str(path)]).returncode == 0


def _mount(fstype: str, path: Path) -> None:
    if not _mounted(path):
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", fstype, fstype if fstype != "tracefs" else "nodev", str(path)], check=True)


@pytest.fixture(scope="session", autouse=True)
def _kernel_filesystems() -> None:
    if os.geteuid() != 0:
        pytest.skip("bpflink's tests need root (they create real links on the running kernel)")
    _mount("bpf", BPFFS)
    _mount("tracefs", TRACEFS)
    if not (CGROUP2 / "cgroup.procs").exists():
        CGROUP2.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "cgroup2", "none", str(CGROUP2)], check=True)


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


@pytest.fixture(scope="session")
def bpf_objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every ``tests/bpf/*.bpf.c`` compiled with Debian's clang against the headers bpflink was built with.

    Cached in ``build/bpf-objects/<key>/``, the key hashing the sources, the command and clang's version: the
    QEMU guests (read-only root) then reuse what the host run compiled instead of paying ~90 s of clang under TCG.
    """
    clang = shutil.which("clang")
    if clang is None:
        pytest.fail("clang is missing: run scripts/setup (apt-get install clang)")
    include = ROOT / "build" / "libbpf" / "include"
    triplet = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True).stdout.strip()
    flags = ["-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", f"-I{include}", f"-I/usr/include/{triplet}"]
    sources = sorted((HERE / "bpf").glob("*.bpf.c"))
    key = hashlib.sha256(repr(flags).encode())
    key.update(subprocess.run([clang, "--version"], capture_output=True).stdout)
    for path in sorted((HERE / "bpf").iterdir()):
        key.update(path.name.encode() + b"\0" + path.read_bytes())
    for header in sorted(include.rglob("*.h")):
        key.update(header.read_bytes())
    cached = ROOT / "build" / "bpf-objects" / key.hexdigest()[:16]
    names = {src.name.removesuffix(".bpf.c"): src.name.replace(".c", ".o") for src in sources}
    if not all((cached / obj).exists() for obj in names.values()):
        out = tmp_path_factory.mktemp("bpf")
        for src in sources:
            res = subprocess.run([clang, *flags, "-c", str(src), "-o", str(out / src.name.replace(".c", ".o"))],
                                 capture_output=True, text=True)
            if res.returncode != 0:
                pytest.fail(f"clang failed on {src.name}:\n{res.stderr}")
        try:  # publish whole or not at all; a read-only tree (guests) or a concurrent run just keeps its own
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(out, cached.with_suffix(f".tmp{os.getpid()}"))
            os.rename(cached.with_suffix(f".tmp{os.getpid()}"), cached)
        except OSError:
            shutil.rmtree(cached.with_suffix(f".tmp{os.getpid()}"), ignore_errors=True)
            return {name: out / obj for name, obj in names.items()}
    return {name: cached / obj for name, obj in names.items()}


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
