"""A private network namespace with a veth pair whose two ends really talk to each other, plus fixtures.

Both veth ends live in the namespace (``ip netns add bpflink-<tag>-<pid>-<n>``); nothing outside it is touched.
Normally a packet between two local addresses takes the loopback shortcut and never crosses the veth. Policy
routing (inside the namespace only) sends it through the cable instead: the ``local`` table is moved behind a
rule that routes each peer address out of the *other* end, and packets arriving on a veth end are looked up in
``local`` first, so they are delivered. So a UDP datagram from ``addr_a`` to ``addr_b`` leaves ``dev_a``
(tcx egress of ``dev_a``) and arrives on ``dev_b`` (XDP and tcx ingress of ``dev_b``).

``Netns(tag, kind="netkit")`` builds the same with a netkit pair (``dev_a`` the primary, ``dev_b`` its peer, L2
mode) using the first ``ip`` that knows ``type netkit`` (iproute2 >= 6.7: ``$BPFLINK_IP``, ``ip`` on PATH,
``build/vm/iproute2/bin/ip``); when the device cannot be made, ``__enter__`` raises ``NetkitUnavailable``.

``entered()`` moves the *calling thread* into the namespace (``setns``) and back: sockets created and
ifindexes resolved inside it belong to the namespace, and ``link_create`` on such an ifindex attaches there.

>>> with Netns("demo") as ns:  # doctest: +SKIP
...     with ns.entered():
...         link = bpflink.link_create(prog, ns.dev_b, AttachType.XDP)
...     assert ns.udp_deliveries(3) == 0
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import itertools
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CLONE_NEWNET = 0x40000000
#: the UDP port the tests' BPF programs (tests/bpf/net_*.bpf.c, TEST_PORT) act on; nothing else uses it
TEST_PORT = 47001
_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count()
# 10.201.<n>.0/30 per namespace: distinct per namespace only to keep bpftool/tcpdump output readable
_subnets = itertools.count(1)


class NetkitUnavailable(OSError):
    """The netkit pair could not be created (no netkit-capable ``ip``, or the kernel refused the device)."""


@functools.lru_cache(maxsize=1)
def netkit_ip() -> str | None:
    """The first ``ip`` binary that knows ``type netkit`` (iproute2 >= 6.7), or None."""
    root = Path(__file__).resolve().parent.parent
    candidates = [os.environ.get("BPFLINK_IP"), shutil.which("ip"), str(root / "build/vm/iproute2/bin/ip"),
                  "/tmp/bpfvm/iproute2/bin/ip"]
    for ip in candidates:
        if ip and os.access(ip, os.X_OK):
            res = subprocess.run([ip, "link", "help"], capture_output=True, text=True, timeout=30)
            if "netkit" in res.stdout + res.stderr:
                return ip
    return None


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns(CLONE_NEWNET): {os.strerror(err)}")


class Netns:
    """A named network namespace holding ``lo`` and a veth pair ``dev_a`` (``addr_a``) <-> ``dev_b`` (``addr_b``).

    Cleanup (``close()``, or leaving the ``with``) deletes the namespace and with it both devices.
    """

    def __init__(self, tag: str, kind: str = "veth") -> None:
        if kind not in ("veth", "netkit"):
            raise ValueError(f"kind must be 'veth' or 'netkit', not {kind!r}")
        self.kind = kind
        self.name = f"bpflink-{tag}-{os.getpid()}-{next(_counter)}"
        net = next(_subnets) % 250
        self.dev_a, self.dev_b = "bpfl0", "bpfl1"
        self.addr_a, self.addr_b = f"10.201.{net}.1", f"10.201.{net}.2"
        self._created = False

    # --- running things inside ------------------------------------------------------------------------------
    def run(self, *cmd: str, check: bool = True, ip: str = "ip") -> subprocess.CompletedProcess[str]:
        """``ip netns exec <ns> cmd...``; ``CalledProcessError`` (with stderr) when ``check`` and it fails."""
        res = subprocess.run([ip, "netns", "exec", self.name, *cmd], capture_output=True, text=True, timeout=60)
        if check and res.returncode != 0:
            raise subprocess.CalledProcessError(res.returncode, res.args, res.stdout, res.stderr)
        return res

    def ip(self, *args: str) -> None:
        res = subprocess.run(["ip", "-n", self.name, *args], capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise RuntimeError(f"ip -n {self.name} {' '.join(args)}: {res.stderr.strip()}")

    def sysctl(self, key: str, value: str) -> None:
        self.run("sysctl", "-q", "-w", f"{key}={value}")

    def bpftool(self, *args: str) -> Any:
        """``bpftool -j args...`` run inside the namespace, decoded."""
        tool = shutil.which("bpftool") or "/usr/sbin/bpftool"
        return json.loads(self.run(tool, "-j", *args).stdout or "null")

    @contextlib.contextmanager
    def entered(self) -> Iterator[Netns]:
        """Move the calling thread into the namespace for the ``with`` block; always moves it back."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            target = os.open(f"/run/netns/{self.name}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(target)
            finally:
                os.close(target)
            try:
                yield self
            finally:
                _setns(home)
        finally:
            os.close(home)

    def ifindex(self, dev: str) -> int:
        with self.entered():
            return socket.if_nametoindex(dev)

    # --- traffic --------------------------------------------------------------------------------------------
    def udp_deliveries(self, n: int = 3, *, port: int = TEST_PORT, timeout: float = 0.3,
                       reverse: bool = False) -> int:
        """Send ``n`` UDP datagrams ``addr_a`` -> ``addr_b:port`` (``reverse``: ``addr_b`` -> ``addr_a``) through
        the pair; how many arrived."""
        src, dst = (self.addr_b, self.addr_a) if reverse else (self.addr_a, self.addr_b)
        with self.entered():
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

    # --- life cycle -----------------------------------------------------------------------------------------
    def __enter__(self) -> Netns:
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True, timeout=60)
        self._created = True
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def _setup(self) -> None:
        a, b = self.dev_a, self.dev_b
        self.ip("link", "set", "lo", "up")
        if self.kind == "veth":
            self.ip("link", "add", a, "type", "veth", "peer", "name", b)
        else:
            self._add_netkit()
        # no IPv6: router/neighbour solicitations would be noise on the hooks under test
        self.sysctl("net.ipv6.conf.all.disable_ipv6", "1")
        self.sysctl("net.ipv6.conf.default.disable_ipv6", "1")
        for dev, addr in ((a, self.addr_a), (b, self.addr_b)):
            self.ip("addr", "add", f"{addr}/30", "dev", dev)
            self.ip("link", "set", dev, "up")
        # a source address that is local to this namespace arrives on the other end: accept it
        for conf in ("all", "default", a, b):
            self.sysctl(f"net.ipv4.conf.{conf}.accept_local", "1")
            self.sysctl(f"net.ipv4.conf.{conf}.rp_filter", "0")
        # local table after the cable routes for output, but first for what arrives on a veth end
        self.ip("rule", "add", "pref", "1000", "lookup", "local")
        self.ip("rule", "del", "pref", "0")
        for dev in (a, b):
            self.ip("rule", "add", "pref", "10", "iif", dev, "lookup", "local")
        for table, (dev, dst, src) in enumerate(((a, self.addr_b, self.addr_a), (b, self.addr_a, self.addr_b)), 100):
            self.ip("route", "add", dst, "dev", dev, "src", src, "table", str(table))
            self.ip("rule", "add", "pref", "20", "to", dst, "lookup", str(table))
        # static neighbours: no ARP traffic on the hooks, no resolution delay
        for dev, dst, peer in ((a, self.addr_b, b), (b, self.addr_a, a)):
            mac = self._mac(peer)
            self.ip("neigh", "replace", dst, "lladdr", mac, "dev", dev, "nud", "permanent")

    def _add_netkit(self) -> None:
        ip = netkit_ip()
        if ip is None:
            raise NetkitUnavailable(errno.ENOENT, "no `ip` knows `type netkit` (needs iproute2 >= 6.7; set BPFLINK_IP)")
        # L2 mode: the programs see an Ethernet header, as on veth
        res = subprocess.run([ip, "-n", self.name, "link", "add", self.dev_a, "type", "netkit", "mode", "l2", "peer",
                              "name", self.dev_b], capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise NetkitUnavailable(errno.EOPNOTSUPP, f"{ip} link add type netkit: {res.stderr.strip()}")

    def _mac(self, dev: str) -> str:
        out = subprocess.run(["ip", "-n", self.name, "-j", "link", "show", dev], check=True, capture_output=True,
                             text=True, timeout=60).stdout
        return str(json.loads(out)[0]["address"])

    def close(self) -> None:
        if self._created:
            self._created = False
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=60)

    def __exit__(self, *exc: Any) -> None:
        self.close()


@pytest.fixture
def netns(request: pytest.FixtureRequest) -> Iterator[Netns]:
    """A fresh ``Netns`` (veth pair that carries traffic), deleted afterwards."""
    tag = request.node.name.removeprefix("test_")[:12].replace("[", "").replace("]", "")
    with Netns(tag or "t") as ns:
        yield ns


__all__ = ["TEST_PORT", "NetkitUnavailable", "Netns", "netkit_ip", "netns"]
