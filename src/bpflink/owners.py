"""Who holds a link: processes with an fd of it (``/proc/*/fdinfo``) and the bpffs pins that refer to it.

>>> # not run as a doctest: needs link 42 and shows this machine's processes
>>> held = bpflink.owners(42)  # doctest: +SKIP
>>> [(p.pid, p.comm, p.fd) for p in held.processes], held.pins  # doctest: +SKIP
([(1234, 'agent', 7)], ('/sys/fs/bpf/agent/egress',))

Both walks are best effort against a moving system: processes exiting, fds closing, pins being removed and
directories we may not read are skipped (``skipped`` counts them), never an error. The bpffs walk is bounded
(``max_entries`` directory entries over all mounts).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from . import kernel
from . import lowlevel as ll

# a link's fd reads "bpf-link" when opened by id or pin, "bpf_link" from link_create on recent kernels
_LINK_INODES = frozenset({"anon_inode:bpf-link", "anon_inode:bpf_link"})
#: upper bound on directory entries visited over all bpffs mounts, per walk
MAX_ENTRIES = 200_000


@dataclass(frozen=True)
class Holder:
    """A process holding an fd of a link."""

    pid: int
    comm: str
    fd: int


@dataclass(frozen=True)
class Owners:
    """Who keeps a link alive: ``processes`` (``Holder``s) and ``pins`` (bpffs paths)."""

    link_id: int
    processes: tuple[Holder, ...]
    pins: tuple[str, ...]
    skipped: int = 0  # processes or paths that vanished or could not be read during the walk

    def others(self, pid: int | None = None) -> tuple[Holder, ...]:
        """The holders other than process ``pid`` (this process by default)."""
        me = os.getpid() if pid is None else pid
        return tuple(h for h in self.processes if h.pid != me)

    def to_dict(self) -> dict[str, object]:
        return {"link_id": self.link_id, "pids": [{"pid": h.pid, "comm": h.comm, "fd": h.fd} for h in self.processes],
                "pinned": list(self.pins)}


@dataclass
class _Walk:
    skipped: int = 0
    found: dict[int, list[object]] = field(default_factory=dict)


def _comm(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().decode(errors="replace").rstrip("\n")
    except OSError:
        return "?"


def fd_holders(link_ids: Iterable[int] | None = None) -> tuple[dict[int, list[Holder]], int]:
    """``{link_id: [Holder, ...]}`` for every process on the system (or only the ``link_ids`` asked for).

    Reads ``/proc/PID/fd`` links first and opens ``fdinfo`` only for BPF link fds. Returns the map and how
    many processes or fds could not be read.
    """
    wanted = None if link_ids is None else set(link_ids)
    found: dict[int, list[Holder]] = {}
    skipped = 0
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return found, 1
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # exited, or not ours to read
            skipped += 1
            continue
        comm: str | None = None
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") not in _LINK_INODES:
                    continue
                link_id = _fdinfo_link_id(f"/proc/{pid}/fdinfo/{fd}")
            except (OSError, ValueError):
                skipped += 1
                continue
            if wanted is not None and link_id not in wanted:
                continue
            if comm is None:
                comm = _comm(pid)
            found.setdefault(link_id, []).append(Holder(int(pid), comm, int(fd)))
    return found, skipped


def _fdinfo_link_id(path: str) -> int:
    with open(path, "rb") as f:
        text = f.read()
    at = text.find(b"\nlink_id:")
    if at < 0:
        raise ValueError(f"{path}: no link_id")
    end = text.find(b"\n", at + 1)
    return int(text[at + 9:end if end > 0 else len(text)])


def bpffs_mounts() -> list[str]:
    """Mount points of every bpffs visible to this process, from ``/proc/self/mountinfo`` (one per superblock)."""
    return kernel.bpffs_mounts()


def _files(roots: Iterable[str], limit: int, walk: _Walk) -> Iterator[str]:
    budget = limit
    stack = list(roots)
    while stack:
        top = stack.pop()
        try:
            it = os.scandir(top)
        except OSError:
            walk.skipped += 1
            continue
        with it:
            for entry in it:
                budget -= 1
                if budget < 0:
                    walk.skipped += 1
                    return
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif stat.S_ISREG(entry.stat(follow_symlinks=False).st_mode):
                        yield entry.path
                except OSError:
                    walk.skipped += 1


def pin_index(link_ids: Iterable[int] | None = None, *, roots: Iterable[str] | None = None,
              max_entries: int = MAX_ENTRIES) -> tuple[dict[int, list[str]], int]:
    """``{link_id: [pin path, ...]}`` over every bpffs mount (or ``roots``), and how many entries were skipped.

    Each file is opened with ``bpf_obj_get`` and kept only when it is a link; programs and maps are skipped.
    """
    wanted = None if link_ids is None else set(link_ids)
    walk = _Walk()
    found: dict[int, list[str]] = {}
    for path in _files(bpffs_mounts() if roots is None else roots, max_entries, walk):
        fd = ll.bpf_obj_get(path.encode())
        if fd < 0:
            if fd not in (-errno.ENOENT, -errno.EACCES, -errno.EPERM):
                walk.skipped += 1
            continue
        try:
            if os.readlink(f"/proc/self/fd/{fd}") not in _LINK_INODES:
                continue
            link_id = _fdinfo_link_id(f"/proc/self/fdinfo/{fd}")
        except (OSError, ValueError):
            walk.skipped += 1
            continue
        finally:
            os.close(fd)
        if wanted is None or link_id in wanted:
            found.setdefault(link_id, []).append(path)
    return found, walk.skipped


def owners(link_id: int) -> Owners:
    """Processes holding an fd of link ``link_id`` (``.pid``, ``.comm``, ``.fd``) and the pins referring to it.

    Includes this process when it holds the link (``Owners.others()`` leaves it out).
    """
    if isinstance(link_id, bool) or not isinstance(link_id, int):
        raise TypeError(f"link_id must be an int, not {type(link_id).__name__}")
    if not 0 < link_id < 1 << 32:
        raise ValueError(f"link_id must be in 1..2**32-1, got {link_id}")
    holders, skipped_fd = fd_holders([link_id])  # before the pin walk, whose own fds would show up here
    pins, skipped_pins = pin_index([link_id])
    return Owners(link_id, tuple(holders.get(link_id, ())), tuple(sorted(pins.get(link_id, ()))),
                  skipped_fd + skipped_pins)


__all__ = ["Holder", "Owners", "bpffs_mounts", "fd_holders", "owners", "pin_index"]

from ._callable import make_callable  # noqa: E402  (bpflink.owners(...) calls owners(); see _callable)

make_callable(__name__)
