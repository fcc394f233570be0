"""A private network namespace with a veth pair, and a worker thread that lives inside it.

``setns(CLONE_NEWNET)`` changes the netns of the calling *thread* only, so one dedicated thread can resolve
ifindexes and create xdp/tcx links on devices nobody else sees, while the test process (its fd table, RSS,
GC) stays the one being measured. The host's interfaces and the root netns's ``lo`` are never touched.
Everything here is bpflink.testing's (``Netns``, ``Netns.add_veth``, ``Netns.worker``); this only fixes the
suite's device names and addresses.

>>> with PrivateNetns("soak") as ns:  # doctest: +SKIP
...     ifindex = ns.call(socket.if_nametoindex, "veth0")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from bpflink.testing import Netns, NetnsWorker

T = TypeVar("T")


class PrivateNetns:
    """A ``bpflink.testing.Netns`` (``bpflink-<worker>-<pid>-<n>-<tag>``, ``lo`` up) with ``veth0``/``veth1``
    (10.77.0.1/24, .2/24) and one ``NetnsWorker`` thread that stays inside it: ``call(fn, *args)`` runs there,
    the same thread every time, so the soak and GIL tests measure link calls, not thread creation."""

    def __init__(self, tag: str) -> None:
        self._ns = Netns(tag)
        self.name = self._ns.name
        self._worker: NetnsWorker | None = None

    def ip(self, *args: str) -> None:
        self._ns.ip(*args)

    def __enter__(self) -> PrivateNetns:
        self._ns.create()
        try:
            self._ns.add_veth("veth0", "veth1", addr_a="10.77.0.1/24", addr_b="10.77.0.2/24")
            self._worker = self._ns.worker()
        except BaseException:
            self.__exit__()
            raise
        return self

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._worker is None:
            raise ValueError(f"{self.name} is not entered")
        return self._worker.call(fn, *args)

    def ifindex(self, dev: str) -> int:
        import socket

        return self.call(socket.if_nametoindex, dev)

    def __exit__(self, *exc: Any) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        self._ns.close()
