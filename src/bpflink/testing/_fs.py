"""``BpfDir``: a private directory on bpffs for pins, removed with everything pinned in it.

>>> # not run as a doctest: needs a link `link` to pin
>>> d = BpfDir.create()  # doctest: +SKIP
>>> link.pin(d.path / "egress")  # doctest: +SKIP
>>> d.close()  # unpins and removes  # doctest: +SKIP
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ._names import mountpoint, unique

DEFAULT_BPFFS = "/sys/fs/bpf"
DEFAULT_TRACEFS = "/sys/kernel/tracing"
DEFAULT_CGROUP2 = "/sys/fs/cgroup"


def ensure_mounted(fstype: str, path: str | os.PathLike[str]) -> Path:
    """``path`` with ``fstype`` (``bpf``, ``tracefs``, ``cgroup2``) mounted on it: left alone when something is
    already mounted there (or, for cgroup2, a hierarchy is there), else mounted (needs root). OSError naming the
    ``mount`` command when that fails."""
    where = Path(path)
    if (where / "cgroup.procs").exists() if fstype == "cgroup2" else os.path.ismount(where):
        return where
    where.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", fstype, fstype, str(where)], capture_output=True, text=True)
    if res.returncode != 0:
        raise PermissionError(f"`mount -t {fstype} {fstype} {where}` failed: {res.stderr.strip()}")
    return where


def mount_kernel_filesystems(*, cgroup2: str | os.PathLike[str] | None = None) -> None:
    """What BPF tests expect mounted: bpffs at /sys/fs/bpf, tracefs at /sys/kernel/tracing and a cgroup v2
    hierarchy at ``cgroup2`` (default: ``$BPFLINK_CGROUP2`` or /sys/fs/cgroup). Needs root for what is missing.

    >>> # not run as a doctest: mounts file systems on this machine (needs root)
    >>> mount_kernel_filesystems(cgroup2="/sys/fs/cgroup/unified")  # doctest: +SKIP
    """
    ensure_mounted("bpf", DEFAULT_BPFFS)
    ensure_mounted("tracefs", DEFAULT_TRACEFS)
    ensure_mounted("cgroup2", cgroup2 or os.environ.get("BPFLINK_CGROUP2") or DEFAULT_CGROUP2)


def bpffs_root(*, mount: bool = True) -> Path:
    """Where bpffs is mounted (``$BPFLINK_BPFFS``, else the first ``bpf`` mount); with ``mount`` and none mounted,
    mounts it at /sys/fs/bpf (needs root). OSError when there is none."""
    env = os.environ.get("BPFLINK_BPFFS")
    if env:
        return Path(env)
    found = mountpoint("bpf")
    if found is not None:
        return Path(found)
    if mount:
        return ensure_mounted("bpf", DEFAULT_BPFFS)
    raise FileNotFoundError("no bpffs mounted")


class BpfDir:
    """``<bpffs>/bpflink-<worker>-<pid>-<n>``: ``path`` to pin under; ``close()`` unpins everything inside and
    removes the directory (idempotent)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, tag: str = "fs") -> BpfDir:
        path = bpffs_root() / unique(tag)
        path.mkdir()
        return cls(path)

    def pins(self) -> list[Path]:
        """Everything pinned inside now (files, recursively)."""
        return sorted(p for p in self.path.rglob("*") if not p.is_dir()) if self.path.exists() else []

    def close(self) -> None:
        if not self.path.exists():
            return
        for root, dirs, files in os.walk(self.path, topdown=False):
            for name in files:
                os.unlink(os.path.join(root, name))
            for name in dirs:
                os.rmdir(os.path.join(root, name))
        os.rmdir(self.path)

    def __truediv__(self, other: str) -> Path:
        return self.path / other

    def __fspath__(self) -> str:
        return str(self.path)

    def __enter__(self) -> BpfDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"BpfDir({str(self.path)!r})"
