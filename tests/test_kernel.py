"""bpflink.kernel: the facts agree with what the system itself says, mounts are found where they are, trial
answers are remembered once and forgotten by a forked child, and ``perf.tracefs()`` never mounts anything."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import bpflink
from bpflink import kernel

pytestmark = pytest.mark.hostonly  # reading /proc and /sys: no kernel-version-dependent behaviour


def test_release_version_and_config_are_the_running_kernels() -> None:
    assert kernel.release() == os.uname().release
    assert "%d.%d" % kernel.version() == ".".join(os.uname().release.split(".")[:2])
    config = kernel.config()
    if config is not None:  # BPF links need the bpf() syscall: a readable config says so
        assert config.get("CONFIG_BPF_SYSCALL") == "y"
    assert bpflink.features.kernel_version() == kernel.version() and bpflink.features.kernel_config() is config


def test_security_facts_match_securityfs() -> None:
    try:
        text = Path("/sys/kernel/security/lockdown").read_text()
    except OSError:
        text = "[none]"
    mode = text[text.index("[") + 1:text.index("]")]
    assert kernel.lockdown() == (None if mode == "none" else mode)
    lsms, source = kernel.active_lsms()
    if source == "/sys/kernel/security/lsm":
        assert ",".join(lsms) == Path(source).read_text().strip()
    # root in the initial user namespace holds every capability bpflink names
    assert kernel.has_capabilities(kernel.CAP_BPF, kernel.CAP_PERFMON, kernel.CAP_SYS_ADMIN) == (os.geteuid() == 0)


def test_mounts_are_found(cgroup: Path) -> None:
    root = kernel.cgroup2_mount()
    assert root is not None and cgroup.is_relative_to(root)  # the fixture's cgroup lives under it
    assert os.path.ismount("/sys/fs/bpf") == ("/sys/fs/bpf" in kernel.bpffs_mounts())
    tracefs = kernel.tracefs_mount()
    assert tracefs is not None and os.path.isdir(os.path.join(tracefs, "events"))  # conftest mounts it


def test_trial_runs_once_and_forget_asks_again() -> None:
    calls: list[int] = []
    key = ("test_kernel", os.getpid())
    try:
        assert [kernel.trial(key, lambda: calls.append(1) or len(calls)) for _ in range(3)] == [1, 1, 1]
        assert kernel.recall(key) == 1
        kernel.forget(key)
        assert kernel.recall(key) is None and kernel.trial(key, lambda: calls.append(1) or len(calls)) == 2
    finally:
        kernel.forget(key)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_tracefs_is_never_mounted_by_the_library() -> None:
    """In a private mount namespace without tracefs: a clear error naming the mount command, and no mount."""
    code = textwrap.dedent("""
        import subprocess
        from bpflink import kernel, perf
        for path in (*kernel.TRACEFS_PATHS, *kernel.mounts("tracefs")):
            subprocess.run(["umount", "-l", path], capture_output=True)
        assert kernel.tracefs_mount() is None, kernel.mounts("tracefs")
        try:
            perf.tracefs()
        except FileNotFoundError as exc:
            print(exc.strerror)
        print(kernel.mounts("tracefs"))
    """)
    res = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=60)
    if res.returncode != 0 and "unshare failed" in res.stderr:
        pytest.skip(f"no private mount namespace here: {res.stderr.strip()}")
    assert res.returncode == 0, res.stderr
    message, mounted = res.stdout.splitlines()
    assert "tracefs is not mounted" in message and "mount -t tracefs nodev /sys/kernel/tracing" in message
    assert mounted == "[]"  # nothing was mounted behind the caller's back
