"""Facts about the running kernel, in one place with one cache that a forked child starts without.

What cannot change while a process runs is read once and cached: the release, the config, the active LSMs,
and every answer learned by trial (``trial``/``remember``: which attach types link, whether ``BPF_PROG_QUERY``
knows the multi-program fields, ...). What can change is read on every call: the lockdown mode (it can be
raised at run time), the process's capabilities (it may drop them) and the mounts (tests and agents mount
bpffs, tracefs and cgroup2 while bpflink runs). A forked child forgets the cache and gets a fresh trial lock:
it may run under other privileges or in other namespaces, and a thread of the parent may have held the lock
at fork.

>>> from bpflink import kernel
>>> kernel.version() >= (5, 0) and kernel.release().startswith("%d." % kernel.version()[0])
True
>>> kernel.trial("doctest: one plus one", lambda: 1 + 1)  # run once, then remembered until fork
2
"""

from __future__ import annotations

import gzip
import os
import re
import stat
import threading
import warnings
import zlib
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

_T = TypeVar("_T")

#: capability numbers (``linux/capability.h``) that bpflink's messages name
CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 12, 21, 38, 39

_facts: dict[Hashable, Any] = {}
_trial_lock = threading.Lock()


def _forget_in_child() -> None:
    global _trial_lock
    _facts.clear()
    _trial_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)


# --- the cache ------------------------------------------------------------------------------------------------


def recall(key: Hashable, default: Any = None) -> Any:
    """What was learned about ``key`` in this process, ``default`` when nothing was.

    >>> recall("doctest: never learned") is None
    True
    """
    return _facts.get(key, default)


def remember(key: Hashable, value: Any) -> None:
    """Keep ``value`` as the answer for ``key`` until the process forks (or ``forget``)."""
    _facts[key] = value


def trial(key: Hashable, run: Callable[[], _T]) -> _T:
    """``run()``'s answer for ``key``, computed on first use and remembered. Two threads asking at once may
    both run it (a trial is idempotent); callers whose trials must not overlap hold ``trial_lock()``."""
    try:
        value: _T = _facts[key]
        return value
    except KeyError:
        pass
    value = run()
    _facts[key] = value
    return value


def forget(key: Hashable | None = None) -> None:
    """Forget ``key`` (everything when None): the next use asks the kernel again."""
    if key is None:
        _facts.clear()
    else:
        _facts.pop(key, None)


@contextmanager
def trial_lock() -> Iterator[None]:
    """Held while trials that must not run twice at once (the attach-type probes) run. Not re-entrant; code
    running under it in another thread must not take it (the probes' private thread does not)."""
    with _trial_lock:
        yield


# --- release and config ---------------------------------------------------------------------------------------


def release() -> str:
    """The running kernel's release string (``uname -r``)."""
    return trial("release", lambda: os.uname().release)


def version() -> tuple[int, int]:
    """The running kernel's (major, minor); (0, 0) when the release does not start with them."""

    def parse() -> tuple[int, int]:
        m = re.match(r"(\d+)\.(\d+)", release())
        return (int(m.group(1)), int(m.group(2))) if m else (0, 0)

    return trial("version", parse)


def config() -> dict[str, str] | None:
    """The running kernel's config (``$BPFLINK_KERNEL_CONFIG``, ``/proc/config.gz`` or
    ``/boot/config-$(uname -r)``), None if unreadable. scripts/vmtest sets ``BPFLINK_KERNEL_CONFIG`` to the config
    shipped in the guest's .deb."""
    return trial("config", _read_kernel_config)


def _read_kernel_config() -> dict[str, str] | None:
    override = os.environ.get("BPFLINK_KERNEL_CONFIG")
    if override:  # the explicit file wins over /proc/config.gz; an unreadable one is reported and ignored
        text = _read_config(override)
        if text is not None:
            return text
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            return _parse_config(f.read())
    except (OSError, EOFError, UnicodeDecodeError, zlib.error):
        pass
    for path in (f"/boot/config-{release()}", f"/lib/modules/{release()}/config"):
        if os.path.exists(path):
            return _read_config(path)
    return None


def _read_config(path: str) -> dict[str, str] | None:
    try:
        # O_NONBLOCK and a regular-file check: a FIFO there must not hang the first error message
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, encoding="utf-8") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ValueError("not a regular file")
            return _parse_config(f.read())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        warnings.warn(f"ignoring kernel config {path!r}: {exc}", RuntimeWarning, stacklevel=5)
        return None


def _parse_config(text: str) -> dict[str, str]:
    return dict(re.findall(r"^(CONFIG_\w+)=(.*)$", text, re.M))


# --- security -------------------------------------------------------------------------------------------------


def lockdown() -> str | None:
    """The active kernel lockdown mode (``integrity``/``confidentiality``), None when off or unreadable."""
    try:
        with open("/sys/kernel/security/lockdown") as f:
            text = f.read()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    mode = text[start + 1:end] if 0 <= start < end else ""
    return mode if mode and mode != "none" else None


def active_lsms() -> tuple[list[str], str]:
    """(the active LSMs, where that came from): securityfs, else the boot ``lsm=``, else ``CONFIG_LSM``."""
    return trial("active_lsms", _read_active_lsms)


def _read_active_lsms() -> tuple[list[str], str]:
    try:
        with open("/sys/kernel/security/lsm") as f:
            return f.read().strip().split(","), "/sys/kernel/security/lsm"
    except OSError:
        pass
    try:
        with open("/proc/cmdline") as f:
            for word in f.read().split():
                if word.startswith("lsm="):
                    return word[4:].split(","), "the boot command line"
    except OSError:
        pass
    configured = (config() or {}).get("CONFIG_LSM", "").strip('"')
    return (configured.split(",") if configured else []), "CONFIG_LSM"


def capabilities() -> int:
    """This process's effective capability set (``CapEff`` of ``/proc/self/status``) as a bit mask; 0 when
    unreadable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def has_capabilities(*caps: int) -> bool:
    """Whether this process holds every capability in ``caps`` (e.g. ``CAP_BPF, CAP_PERFMON``)."""
    eff = capabilities()
    return all(eff >> cap & 1 for cap in caps)


# --- mounts ---------------------------------------------------------------------------------------------------


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _mountinfo() -> list[str] | None:
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            return f.read().decode(errors="replace").splitlines()
    except OSError:
        return None


def mounts(fstype: str) -> list[str]:
    """Mount points of file systems of ``fstype`` visible to this process, one per superblock, in mount order
    (``/proc/self/mountinfo``; empty when it cannot be read)."""
    return _mounts(_mountinfo() or [], fstype)


def _mounts(lines: list[str], fstype: str) -> list[str]:
    seen: set[str] = set()
    found = []
    for line in lines:
        left, sep, right = line.partition(" - ")
        parts = left.split()
        if not sep or len(parts) < 5 or right.split()[:1] != [fstype]:
            continue
        if parts[2] in seen:  # the same superblock mounted again
            continue
        seen.add(parts[2])
        found.append(_unescape(parts[4]))
    return found


def cgroup2_mount() -> str | None:
    """The first cgroup v2 mount point, None when none is mounted."""
    found = mounts("cgroup2")
    return found[0] if found else None


def bpffs_mounts() -> list[str]:
    """Mount points of every bpffs visible to this process (one per superblock); ``/sys/fs/bpf`` when
    ``/proc`` cannot tell and that directory exists."""
    lines = _mountinfo()
    if lines is None:
        return ["/sys/fs/bpf"] if os.path.isdir("/sys/fs/bpf") else []
    return _mounts(lines, "bpf")


#: where tracefs is mounted by convention (the second through debugfs)
TRACEFS_PATHS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def tracefs_mount() -> str | None:
    """The tracefs mount point (one holding ``events/``), None when tracefs is not mounted."""
    # the conventional places first: a stat each, where reading mountinfo costs ~0.1 ms per attach
    for path in TRACEFS_PATHS:
        if os.path.isdir(path + "/events"):
            return path
    for path in mounts("tracefs"):
        if os.path.isdir(os.path.join(path, "events")):
            return path
    return None


__all__ = ["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON", "CAP_SYS_ADMIN", "TRACEFS_PATHS", "active_lsms",
           "bpffs_mounts", "capabilities", "cgroup2_mount", "config", "forget", "has_capabilities", "lockdown",
           "mounts", "recall", "release", "remember", "tracefs_mount", "trial", "trial_lock", "version"]
