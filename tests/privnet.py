"""A private network namespace with a veth pair, and a worker thread that lives inside it.

``setns(CLONE_NEWNET)`` changes the netns of the calling *thread* only, so one dedicated thread can resolve
ifindexes and create xdp/tcx links on devices nobody else sees, while the test process (its fd table, RSS,
GC) stays the one being measured. The host's interfaces and the root netns's ``lo`` are never touched.

>>> with PrivateNetns("soak") as ns:  # doctest: +SKIP
...     ifindex = ns.call(socket.if_nametoindex, "veth0")
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from bpflink.testing import Netns

T = TypeVar("T")


class PrivateNetns:
    """A ``bpflink.testing.Netns`` (``bpflink-<worker>-<pid>-<n>-<tag>``, ``lo`` up) with ``veth0``/``veth1``
    (10.77.0.1/24, .2/24) and one worker thread that stays inside it.

    ``call(fn, *args)`` runs ``fn`` in that thread and returns its result (or raises): the same thread every
    time, so the soak and GIL tests measure link calls, not thread creation (``Netns.run`` makes a thread per call).
    """

    def __init__(self, tag: str) -> None:
        self._ns = Netns(tag)
        self.name = self._ns.name
        self._jobs: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], queue.Queue[Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def ip(self, *args: str) -> None:
        self._ns.ip(*args)

    def __enter__(self) -> PrivateNetns:
        self._ns.create()
        try:
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
        entered = self._ns.entered()
        try:
            entered.__enter__()
        except BaseException as exc:
            ready.put(exc)
            return
        try:  # the thread's whole life inside the namespace; its fds are closed before __exit__'s join returns
            ready.put(None)
            while (job := self._jobs.get()) is not None:
                fn, args, reply = job
                try:
                    reply.put((True, fn(*args)))
                except BaseException as exc:
                    reply.put((False, exc))
        finally:
            entered.__exit__(None, None, None)

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
        self._ns.close()
