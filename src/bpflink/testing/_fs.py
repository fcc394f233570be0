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
        os.makedirs(DEFAULT_BPFFS, exist_ok=True)
        res = subprocess.run(["mount", "-t", "bpf", "bpf", DEFAULT_BPFFS], capture_output=True, text=True)
        if res.returncode == 0:
            return Path(DEFAULT_BPFFS)
        raise PermissionError(f"no bpffs mounted and `mount -t bpf bpf {DEFAULT_BPFFS}` failed: {res.stderr.strip()}")
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
