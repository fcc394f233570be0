"""A private network namespace with a veth pair, and a worker thread that lives inside it.

``setns(CLONE_NEWNET)`` changes the netns of the calling *thread* only, so one dedicated thread can resolve
ifindexes and create xdp/tcx links on devices nobody else sees, while the test process (its fd table, RSS,
GC) stays the one being measured. The host's interfaces and the root netns's ``lo`` are never touched.

>>> with PrivateNetns("soak") as ns:  # doctest: +SKIP
...     ifindex = ns.call(socket.if_nametoindex, "veth0")
"""

from __future__ import annotations

import ctypes
import itertools
import os
import queue
import subprocess
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count()


def setns_thread(name: str) -> None:
    """Move the calling thread into ``/run/netns/<name>``."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)


class PrivateNetns:
    """``ip netns add bpflink-<tag>-<pid>-<n>`` with ``lo`` up and ``veth0``/``veth1`` (10.77.0.1/24, .2/24).

    ``call(fn, *args)`` runs ``fn`` in the namespace's worker thread and returns its result (or raises).
    """

    def __init__(self, tag: str) -> None:
        self.name = f"bpflink-{tag}-{os.getpid()}-{next(_counter)}"
        self._jobs: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], queue.Queue[Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", self.name, *args], check=True, capture_output=True)

    def __enter__(self) -> PrivateNetns:
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        try:
            self.ip("link", "set", "lo", "up")
            self.ip("link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
            self.ip("addr", "add", "10.77.0.1/24", "dev", "veth0")
            self.ip("addr", "add", "10.77.0.2/24", "dev", "veth1")
            self.ip("link", "set", "veth0", "up")
            self.ip("link", "set", "veth1", "up")
            ready: queue.Queue[BaseException | None] = queue.Queue()
            self._thread = threading.Thread(target=self._serve, args=(ready,), name=self.name, daemon=True)
            self._thread.start()
            err = ready.get()
            if err is not None:
                raise err
        except BaseException:
            self.__exit__()
            raise
        return self

    def _serve(self, ready: queue.Queue[BaseException | None]) -> None:
        try:
            setns_thread(self.name)
        except BaseException as exc:
            ready.put(exc)
            return
        ready.put(None)
        while (job := self._jobs.get()) is not None:
            fn, args, reply = job
            try:
                reply.put((True, fn(*args)))
            except BaseException as exc:
                reply.put((False, exc))

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        reply: queue.Queue[Any] = queue.Queue()
        self._jobs.put((fn, args, reply))
        ok, value = reply.get()
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def ifindex(self, dev: str) -> int:
        import socket

        return self.call(socket.if_nametoindex, dev)

    def __exit__(self, *exc: Any) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout=30)
            self._thread = None
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
