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
