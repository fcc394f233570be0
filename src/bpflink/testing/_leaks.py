"""``LeakSnapshot``: what this process holds (fds, and through them kernel links, maps, programs) and what is
pinned on bpffs, to tell what a test created and left behind.

Kernel objects are attributed through this process's fds (``/proc/self/fdinfo`` names the link/map/program id
and type) and through new pins; objects other processes create meanwhile are not counted. New pins named, or
inside a directory named, ``bpflink-...-<pid>-...`` after another live process (a parallel worker's ``bpffs``,
another test run's pins) are left out; pins other programs make elsewhere on bpffs during the test are counted.

>>> # not run as a doctest: the leaks shown are a test's, ids differ per machine
>>> before = LeakSnapshot.take()  # doctest: +SKIP
>>> # ... the code under test ...
>>> before.leaks()  # doctest: +SKIP
['fd 9: bpf_link id=42 type=cgroup prog_id=77 (anon_inode:bpf_link)']
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from ._names import NAME_RE, mountpoint

_KINDS = {"anon_inode:bpf_link": "bpf_link", "anon_inode:bpf-map": "bpf_map", "anon_inode:bpf-prog": "bpf_prog"}


def _fds() -> dict[int, str]:
    out = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own fd, closed by now
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return out


def _fdinfo(fd: int) -> dict[str, str]:
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except OSError:
        return {}


def describe_fd(fd: int, target: str) -> str:
    """``fd 9: bpf_link id=42 type=cgroup prog_id=77`` for BPF objects; the readlink target otherwise."""
    kind = _KINDS.get(target)
    if kind is None:
        return f"fd {fd}: {target}"
    info = _fdinfo(fd)
    if kind == "bpf_link":
        parts = [f"id={info.get('link_id', '?')}", f"type={info.get('link_type', '?')}",
                 f"prog_id={info.get('prog_id', '?')}"]
    elif kind == "bpf_map":
        parts = [f"id={info.get('map_id', '?')}", f"type={info.get('map_type', '?')}"]
    else:
        parts = [f"id={info.get('prog_id', '?')}", f"type={info.get('prog_type', '?')}",
                 f"tag={info.get('prog_tag', '?')}"]
    name = _bpf_name(kind, fd)
    if name:
        parts.insert(1, f"name={name}")
    return f"fd {fd}: {kind} " + " ".join(parts)


def _bpf_name(kind: str, fd: int) -> str | None:
    """The program's (for a link: its program's) or map's name, through bpflink; None when unavailable."""
    try:
        from bpflink import lowlevel as ll

        if kind == "bpf_link":
            info = ll.ffi.new("struct bpf_link_info *")
            size = ll.ffi.new("__u32 *", ll.ffi.sizeof("struct bpf_link_info"))
            if ll.bpf_link_get_info_by_fd(fd, info, size) != 0:
                return None
            pfd = ll.bpf_prog_get_fd_by_id(info.prog_id)
            if pfd < 0:
                return None
            try:
                return _bpf_name("bpf_prog", pfd)
            finally:
                os.close(pfd)
        if kind == "bpf_prog":
            pinfo = ll.ffi.new("struct bpf_prog_info *")
            size = ll.ffi.new("__u32 *", ll.ffi.sizeof("struct bpf_prog_info"))
            if ll.bpf_prog_get_info_by_fd(fd, pinfo, size) != 0:
                return None
            return ll.ffi.string(pinfo.name).decode(errors="replace") or None
        return None  # bpflink declares no map info call
    except Exception:  # naming is a courtesy: the fd and id are already in the message
        return None


def _pins(root: str | None) -> set[str]:
    if root is None:
        return set()
    found: set[str] = set()
    for base, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not _foreign(d)]
        found.update(os.path.join(base, f) for f in files if not _foreign(f))
    return found


def _foreign(name: str) -> bool:
    """A pin or directory another live process made under a ``bpflink-`` name carrying its pid: a parallel
    worker's private bpffs dir (``bpflink-<worker>-<pid>-<n>``), or a pin such as ``bpflink-agent-<pid>-...``."""
    m = NAME_RE.match(name)
    if m:
        pid = int(m.group("pid"))
        return pid != os.getpid() and os.path.exists(f"/proc/{pid}")
    if not name.startswith("bpflink-"):
        return False
    numbers = {int(part) for part in name.split("-")[1:] if part.isdigit() and len(part) < 8}
    if os.getpid() in numbers:
        return False
    return any(os.path.exists(f"/proc/{n}") for n in numbers if n > 1)


@dataclass
class LeakSnapshot:
    """The fds of this process and the pins on bpffs at one moment."""

    fds: dict[int, str]
    pins: set[str]
    bpffs: str | None
    owned_fds: set[int] = field(default_factory=set)
    owned_paths: set[str] = field(default_factory=set)

    @classmethod
    def take(cls) -> LeakSnapshot:
        gc.collect()
        bpffs = os.environ.get("BPFLINK_BPFFS") or mountpoint("bpf")
        return cls(_fds(), _pins(bpffs), bpffs)

    def own(self, fds: Iterable[int] = (), paths: Iterable[str] = ()) -> None:
        """Exclude ``fds``, and ``paths`` with everything under them (held by fixtures that clean them up
        themselves)."""
        self.owned_fds.update(fds)
        self.owned_paths.update(os.fspath(p) for p in paths)

    def leaks(self) -> list[str]:
        """What exists now and did not at ``take()`` (after a garbage collection, so objects nothing refers to
        any more have been finalised): one line per fd or pin."""
        gc.collect()
        now = _fds()
        out = [describe_fd(fd, target) for fd, target in sorted(now.items())
               if fd not in self.owned_fds and self.fds.get(fd) != target]
        owned = tuple(p.rstrip("/") + "/" for p in self.owned_paths)
        for pin in sorted(_pins(self.bpffs) - self.pins):
            if pin not in self.owned_paths and not pin.startswith(owned):  # an owned pin, or one under an owned dir
                out.append(f"pin {pin}")
        return out
