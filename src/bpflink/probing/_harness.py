"""The trial harness: harmless targets for the probes, made on first use and removed afterwards, in a thread of
its own whose network namespace is private.

``unshare(CLONE_NEWNET)`` moves only the calling thread, so XDP, netfilter, sk_lookup and flow dissector links
made by a probe never touch a real device or the caller's namespace; the namespace dies with the thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import threading
from collections.abc import Callable

from .. import kernel
from .. import lowlevel as ll
from ..enums import MapType
from ..errors import errno_name

#: the name of every probe program (how tests check none is left behind)
PROBE_PROG_NAME = b"bpflink_probe"
_CLONE_NEWNET = 0x40000000


class Unavailable(Exception):
    """A probe target could not be set up (no cgroup v2 mount, no private netns): not the kernel's verdict."""


class Trial:
    """Targets shared by the probes of one ``probe()`` call, made on first use, removed by ``close()``."""

    def __init__(self) -> None:
        self._fds: list[int] = []
        self._cgroup: str | None = None
        self._cgroup_fd = -1
        self._netns_error: str | None = None
        self._netns = False
        self._netns_fd = -1

    def cgroup_fd(self) -> int:
        """An empty cgroup made for the trial."""
        if self._cgroup is None:
            root = kernel.cgroup2_mount()
            if root is None:
                raise Unavailable("no cgroup v2 file system is mounted")
            path = os.path.join(root, f"bpflink-probe-{os.getpid()}-{threading.get_ident()}")
            os.mkdir(path)
            self._cgroup = path
            self._cgroup_fd = self._keep(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        return self._cgroup_fd

    def private_netns(self) -> None:
        """Move the probing thread into a network namespace of its own (once)."""
        if not self._netns and self._netns_error is None:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(_CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                self._netns_error = f"cannot create a private network namespace to probe in ({errno_name(err)})"
            else:
                self._netns = True
        if self._netns_error:
            raise Unavailable(self._netns_error)

    def netns_fd(self) -> int:
        """An fd of the probing thread's private network namespace."""
        self.private_netns()
        if self._netns_fd < 0:
            self._netns_fd = self._keep(os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC))
        return self._netns_fd

    def lo_ifindex(self) -> int:
        """The ifindex of ``lo`` in the private network namespace."""
        self.private_netns()
        return socket.if_nametoindex("lo")

    def sockmap_fd(self) -> int:
        """A sockmap nobody uses."""
        fd = ll.bpf_map_create(int(MapType.SOCKMAP), None, 4, 4, 1, None)
        if fd < 0:
            raise Unavailable(f"cannot create a sockmap to probe with ({errno_name(-fd)})")
        return self._keep(fd)

    def devnull_fd(self) -> int:
        """An fd that is no perf event."""
        return self._keep(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))

    def _keep(self, fd: int) -> int:
        self._fds.append(fd)
        return fd

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        if self._cgroup is not None:
            with contextlib.suppress(OSError):  # a process moved in meanwhile: leave it to its owner
                os.rmdir(self._cgroup)
            self._cgroup = None


def run_in_private_thread(fn: Callable[[Trial], None]) -> None:
    """Run ``fn`` with a fresh ``Trial`` in a new thread (its private network namespace dies with it), closing
    the trial's targets afterwards; an exception of ``fn`` is raised in the caller."""
    errors: list[BaseException] = []

    def body() -> None:
        trial = Trial()
        try:
            fn(trial)
        except BaseException as exc:  # pragma: no cover - re-raised in the caller
            errors.append(exc)
        finally:
            trial.close()

    thread = threading.Thread(target=body, name="bpflink-probe", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


__all__ = ["PROBE_PROG_NAME", "Trial", "Unavailable", "run_in_private_thread"]
