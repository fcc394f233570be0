"""Private network namespaces and device pairs inside them (``ip netns`` names, so ``ip netns list`` shows them).

``Netns``: a named namespace with ``lo`` up. ``with ns:`` moves the *calling thread* into it (``setns``) and back;
``ns.run(fn, *args)`` calls ``fn`` in a short-lived thread inside it. Sockets created and ifindexes resolved inside
belong to the namespace, and ``link_create`` on such an ifindex attaches there.

``PeerPair``: a veth (or netkit) pair ``dev_a`` (``addr_a``) <-> ``dev_b`` (``addr_b``), both ends in one private
namespace, up, addressed. Normally a packet between two local addresses takes the loopback shortcut; policy
routing inside the namespace (the ``local`` table moved behind per-peer routes, and looked up first for what
arrives on a pair end) sends it through the pair instead, so a UDP datagram ``addr_a`` -> ``addr_b`` leaves
``dev_a`` (tcx egress) and arrives on ``dev_b`` (XDP, tcx ingress). Nothing outside the namespace is touched.

>>> ns = Netns().create()
>>> with ns:
...     socket.if_nameindex()
[(1, 'lo')]
>>> ns.close()
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import queue
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ._names import unique

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
#: the UDP port ``PeerPair.udp_deliveries`` sends to by default
TEST_PORT = 47001


class NetkitUnavailable(OSError):
    """The netkit pair could not be made: no ``ip`` knows ``type netkit``, or the kernel refused the device."""


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns(CLONE_NEWNET): {os.strerror(err)}")


def _ip() -> str:
    ip = shutil.which("ip") or "/usr/sbin/ip"
    if not os.access(ip, os.X_OK):
        raise FileNotFoundError(errno.ENOENT, "`ip` (iproute2) is missing: the netns fixtures use it")
    return ip


@functools.lru_cache(maxsize=1)
def netkit_ip() -> str | None:
    """The first ``ip`` that knows ``type netkit`` (iproute2 >= 6.7): ``$BPFLINK_IP``, ``ip`` on PATH (the QEMU
    guests put a new enough one first), or None."""
    for ip in (os.environ.get("BPFLINK_IP"), shutil.which("ip")):
        if ip and os.access(ip, os.X_OK):
            res = subprocess.run([ip, "link", "help"], capture_output=True, text=True, timeout=30)
            if "netkit" in res.stdout + res.stderr:
                return ip
    return None


class Netns:
    """A private, named network namespace (``/run/netns/<name>``) with ``lo`` up; ``close()`` deletes it and every
    device in it. ``fd``: an fd of the namespace (for ``link_create`` of SK_LOOKUP / FLOW_DISSECTOR)."""

    def __init__(self, tag: str = "ns") -> None:
        self.name = unique(tag)
        self.path = f"/run/netns/{self.name}"
        self._fd: int | None = None
        self._created = False
        self._homes = threading.local()

    def create(self) -> Netns:
        subprocess.run([_ip(), "netns", "add", self.name], check=True, capture_output=True, timeout=60)
        self._created = True
        try:
            self.ip("link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise
        return self

    @property
    def fd(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        return self._fd

    def fileno(self) -> int:
        return self.fd

    # --- running things inside ------------------------------------------------------------------------------
    def ip(self, *args: str) -> str:
        """``ip -n <ns> args...``; RuntimeError with ip's message when it fails; its stdout otherwise."""
        res = subprocess.run([_ip(), "-n", self.name, *args], capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise RuntimeError(f"ip -n {self.name} {' '.join(args)}: {res.stderr.strip()}")
        return res.stdout

    def exec(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``ip netns exec <ns> cmd...`` (a new process inside); CalledProcessError when ``check`` and it fails."""
        return subprocess.run([_ip(), "netns", "exec", self.name, *cmd], capture_output=True, text=True,
                              timeout=timeout, check=check)

    def batch(self, commands: list[tuple[str, ...]]) -> None:
        """Several ``ip`` commands (``("addr", "add", ...)``) in one ``ip -n <ns> -batch -`` process, in order;
        RuntimeError with ip's message at the first that fails. One process instead of one each: what a pair
        setup costs is mostly process starts (~100 ms each under QEMU TCG)."""
        if not commands:
            return
        script = "".join(" ".join(cmd) + "\n" for cmd in commands)
        res = subprocess.run([_ip(), "-n", self.name, "-batch", "-"], input=script, capture_output=True, text=True,
                             timeout=60)
        if res.returncode != 0:
            raise RuntimeError(f"ip -n {self.name} -batch: {res.stderr.strip()}")

    def sysctl(self, key: str, value: str) -> None:
        """Set ``key`` (``net.ipv4.conf.all.rp_filter``) inside the namespace."""
        self.sysctls({key: value})

    def sysctls(self, values: dict[str, str]) -> None:
        """Set several sysctls inside the namespace: written to /proc/sys by a thread in it (a net sysctl file
        belongs to the namespace of the thread that opens it), no process started."""
        def write() -> None:
            for key, value in values.items():
                with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                    f.write(value)

        self.run(write)

    @contextlib.contextmanager
    def entered(self) -> Iterator[Netns]:
        """Move the calling thread into the namespace for the ``with`` block; always moves it back."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(self.fd)
            try:
                yield self
            finally:
                _setns(home)
        finally:
            os.close(home)

    def __enter__(self) -> Netns:
        """Enter the namespace in the calling thread (nestable); ``__exit__`` returns to where it was."""
        if not self._created:
            raise RuntimeError(f"{self.name} is not created (or already closed)")
        stack = getattr(self._homes, "stack", None)
        if stack is None:
            stack = self._homes.stack = []
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(self.fd)
        except BaseException:
            os.close(home)
            raise
        stack.append(home)
        return self

    def __exit__(self, *exc: object) -> None:
        home = self._homes.stack.pop()
        try:
            _setns(home)
        finally:
            os.close(home)

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a new thread that lives inside the namespace; its result, or what it raised.

        >>> ns = Netns().create()
        >>> ns.run(socket.if_nametoindex, "lo"), ns.run(socket.if_nameindex)
        (1, [(1, 'lo')])
        >>> ns.close()
        """
        box: list[Any] = []

        def body() -> None:
            try:
                _setns(self.fd)
                box.append((True, fn(*args, **kwargs)))
            except BaseException as exc:
                box.append((False, exc))

        thread = threading.Thread(target=body, name=f"{self.name}-run", daemon=True)
        thread.start()
        thread.join()
        ok, value = box[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def worker(self) -> NetnsWorker:
        """A thread that stays inside the namespace until closed (``with ns.worker() as w: w.call(fn, *args)``):
        unlike ``run``, every call runs on the same thread (no thread start per call, a stable thread id).

        >>> # not run as a doctest: needs a namespace `ns` (Netns().create())
        >>> with ns.worker() as w:  # doctest: +SKIP
        ...     link = w.call(link_create, prog, w.call(socket.if_nametoindex, "veth0"), AttachType.XDP)
        """
        return NetnsWorker(self)

    def add_veth(self, dev_a: str, dev_b: str, *, addr_a: str | None = None, addr_b: str | None = None) -> None:
        """A plain veth pair inside (both ends up; ``addr_*`` in CIDR form, e.g. ``"10.77.0.1/24"``). For a pair
        that carries traffic between its two addresses, use ``PeerPair``."""
        cmds: list[tuple[str, ...]] = [("link", "add", dev_a, "type", "veth", "peer", "name", dev_b)]
        for dev, addr in ((dev_a, addr_a), (dev_b, addr_b)):
            if addr is not None:
                cmds.append(("addr", "add", addr, "dev", dev))
            cmds.append(("link", "set", dev, "up"))
        self.batch(cmds)

    def ifindex(self, dev: str) -> int:
        return self.run(socket.if_nametoindex, dev)

    def devices(self) -> list[str]:
        """The device names inside, as the namespace itself sees them."""
        return [name for _, name in self.run(socket.if_nameindex)]

    def close(self) -> None:
        """Delete the namespace (and its devices). Idempotent."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._created:
            self._created = False
            subprocess.run([_ip(), "netns", "del", self.name], capture_output=True, timeout=60)

    def __repr__(self) -> str:
        return f"Netns({self.name!r})"


class NetnsWorker:
    """One thread inside a ``Netns`` running the calls given to ``call`` in order; ``close()`` (or leaving the
    ``with``) ends it, and with it closes nothing the calls returned."""

    def __init__(self, ns: Netns) -> None:
        self.netns = ns
        self._jobs: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], queue.Queue[Any]] | None] = queue.Queue()
        ready: queue.Queue[BaseException | None] = queue.Queue()
        self._thread: threading.Thread | None = threading.Thread(target=self._serve, args=(ready,),
                                                                 name=f"{ns.name}-worker", daemon=True)
        self._thread.start()
        err = ready.get()
        if err is not None:
            self._thread.join()
            self._thread = None
            raise err

    def _serve(self, ready: queue.Queue[BaseException | None]) -> None:
        try:
            self.netns.__enter__()
        except BaseException as exc:
            ready.put(exc)
            return
        try:
            ready.put(None)
            while (job := self._jobs.get()) is not None:
                fn, args, reply = job
                try:
                    reply.put((True, fn(*args)))
                except BaseException as exc:
                    reply.put((False, exc))
        finally:
            self.netns.__exit__(None, None, None)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the worker thread; its result, or what it raised."""
        if self._thread is None:
            raise ValueError("I/O operation on closed NetnsWorker")
        reply: queue.Queue[Any] = queue.Queue()
        self._jobs.put((fn, args, reply))
        ok, value = reply.get()
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def ifindex(self, dev: str) -> int:
        return self.call(socket.if_nametoindex, dev)

    def close(self) -> None:
        """End the thread (idempotent); it leaves the namespace first."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def __enter__(self) -> NetnsWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PeerPair:
    """A veth or netkit pair in its own private ``Netns`` (``self.netns``), both ends up and addressed; ``close()``
    deletes the namespace. ``kind="netkit"``: ``dev_a`` is the primary, ``dev_b`` its peer (L2 mode)."""

    def __init__(self, kind: str = "veth", *, dev_a: str = "bpf0", dev_b: str = "bpf1",
                 addr_a: str = "10.201.0.1", addr_b: str = "10.201.0.2") -> None:
        if kind not in ("veth", "netkit"):
            raise ValueError(f"kind must be 'veth' or 'netkit', not {kind!r}")
        self.kind = kind
        self.dev_a, self.dev_b, self.addr_a, self.addr_b = dev_a, dev_b, addr_a, addr_b
        self.netns = Netns(kind)

    @property
    def name(self) -> str:
        return self.netns.name

    def create(self) -> PeerPair:
        self.netns.create()
        try:
            self._setup()
        except BaseException:
            self.netns.close()
            raise
        return self

    def _setup(self) -> None:
        ns, a, b = self.netns, self.dev_a, self.dev_b
        if self.kind == "veth":
            ns.ip("link", "add", a, "type", "veth", "peer", "name", b)
        else:
            ip = netkit_ip()
            if ip is None:
                raise NetkitUnavailable(errno.ENOENT, "no `ip` knows `type netkit` (iproute2 >= 6.7; set BPFLINK_IP)")
            res = subprocess.run([ip, "-n", ns.name, "link", "add", a, "type", "netkit", "mode", "l2", "peer",
                                  "name", b], capture_output=True, text=True, timeout=60)
            if res.returncode != 0:
                raise NetkitUnavailable(errno.EOPNOTSUPP, f"{ip} link add type netkit: {res.stderr.strip()}")
        # no IPv6: router/neighbour solicitations would be noise on the hooks under test; a local source address
        # arrives on the other end: accept it
        sysctls = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}
        for conf in ("all", "default", a, b):
            sysctls[f"net.ipv4.conf.{conf}.accept_local"] = "1"
            sysctls[f"net.ipv4.conf.{conf}.rp_filter"] = "0"
        ns.sysctls(sysctls)
        cmds: list[tuple[str, ...]] = []
        for dev, addr in ((a, self.addr_a), (b, self.addr_b)):
            cmds += [("addr", "add", f"{addr}/30", "dev", dev), ("link", "set", dev, "up")]
        cmds += [("rule", "add", "pref", "1000", "lookup", "local"), ("rule", "del", "pref", "0")]
        cmds += [("rule", "add", "pref", "10", "iif", dev, "lookup", "local") for dev in (a, b)]
        for table, (dev, dst, src) in enumerate(((a, self.addr_b, self.addr_a), (b, self.addr_a, self.addr_b)), 100):
            cmds += [("route", "add", dst, "dev", dev, "src", src, "table", str(table)),
                     ("rule", "add", "pref", "20", "to", dst, "lookup", str(table))]
        ns.batch(cmds)
        macs = {link["ifname"]: link["address"] for link in json.loads(ns.ip("-j", "link", "show"))}
        # static neighbours: no ARP on the hooks
        ns.batch([("neigh", "replace", dst, "lladdr", macs[peer], "dev", dev, "nud", "permanent")
                  for dev, dst, peer in ((a, self.addr_b, b), (b, self.addr_a, a))])

    @property
    def ifindex_a(self) -> int:
        return self.netns.ifindex(self.dev_a)

    @property
    def ifindex_b(self) -> int:
        return self.netns.ifindex(self.dev_b)

    def udp_deliveries(self, n: int = 3, *, port: int = TEST_PORT, timeout: float = 0.3,
                       reverse: bool = False) -> int:
        """Send ``n`` UDP datagrams ``addr_a`` -> ``addr_b:port`` (``reverse``: the other way) through the pair;
        how many arrived."""
        src, dst = (self.addr_b, self.addr_a) if reverse else (self.addr_a, self.addr_b)
        with self.netns:
            rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with rx, tx:
            rx.bind((dst, port))
            rx.settimeout(timeout)
            tx.bind((src, 0))
            for i in range(n):
                tx.sendto(b"bpflink-%d" % i, (dst, port))
            got = 0
            with contextlib.suppress(TimeoutError, socket.timeout):
                while got < n:
                    rx.recv(64)
                    got += 1
            return got

    def close(self) -> None:
        self.netns.close()

    def __enter__(self) -> PeerPair:
        self.netns.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.netns.__exit__(*exc)

    def __repr__(self) -> str:
        return f"PeerPair({self.kind!r}, {self.dev_a}<->{self.dev_b} in {self.netns.name})"
