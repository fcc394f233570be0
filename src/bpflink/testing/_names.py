"""Names of everything the plugin creates: ``bpflink-<worker>-<pid>-<n>``, so parallel runs (pytest-xdist
workers, several pytest processes) never collide, and a leftover names the process that made it."""

from __future__ import annotations

import itertools
import os
import re

_counter = itertools.count()
#: how a leftover from another process is recognised (its pid is the third part)
NAME_RE = re.compile(r"^bpflink-(?P<worker>[a-z0-9]+)-(?P<pid>\d+)-(?P<n>\d+)")


def unique(kind: str = "") -> str:
    """A fresh name: ``bpflink-gw0-1234-7`` (``kind`` appended: ``bpflink-gw0-1234-7-cg``)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "m").lower()
    worker = re.sub(r"[^a-z0-9]", "", worker)[:8] or "m"
    name = f"bpflink-{worker}-{os.getpid()}-{next(_counter)}"
    return f"{name}-{kind}" if kind else name


def mountpoint(fstype: str) -> str | None:
    """The first mount point of ``fstype`` in this mount namespace (``/proc/self/mounts``), or None."""
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == fstype:
                    return parts[1].replace("\\040", " ")
    except OSError:
        return None
    return None


def _dead(name: str) -> bool:
    m = NAME_RE.match(name)
    if m is None:
        return False
    return int(m.group("pid")) != os.getpid() and not os.path.exists(f"/proc/{m.group('pid')}")


_swept = False


def sweep() -> list[str]:
    """Remove what processes that are gone (killed before their cleanup ran) left behind under the plugin's names:
    network namespaces, cgroups at the cgroup2 root, directories at the bpffs root. Done once per process, on the
    first fixture use; what it removed, for the record."""
    global _swept
    if _swept:
        return []
    _swept = True
    import shutil
    import subprocess

    removed = []
    if os.path.isdir("/run/netns"):
        for name in os.listdir("/run/netns"):
            if _dead(name):
                ip = shutil.which("ip") or "/usr/sbin/ip"
                if subprocess.run([ip, "netns", "del", name], capture_output=True, timeout=60).returncode == 0:
                    removed.append(f"/run/netns/{name}")
    from pathlib import Path

    from ._cgroup import Cgroup
    from ._fs import BpfDir

    kinds: tuple[tuple[str | None, type[Cgroup] | type[BpfDir]], ...] = (
        (os.environ.get("BPFLINK_CGROUP2") or mountpoint("cgroup2"), Cgroup),
        (os.environ.get("BPFLINK_BPFFS") or mountpoint("bpf"), BpfDir))
    for root, kind in kinds:
        if not root or not os.path.isdir(root):
            continue
        for name in os.listdir(root):
            if _dead(name) and os.path.isdir(os.path.join(root, name)):
                try:
                    kind(Path(root, name)).close()
                    removed.append(os.path.join(root, name))
                except OSError:
                    pass
    return removed
