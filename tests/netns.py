"""bpflink's test-suite face of ``bpflink.testing.PeerPair``: a private network namespace with a veth (or netkit)
pair whose two ends really talk to each other, plus the ``netns`` fixture.

The namespace, the pair, the policy routing that sends traffic between the two addresses through the cable and
``udp_deliveries`` are the plugin's (one implementation; see its docstring). What this adds is the suite's
interface: ``with NetPair(tag) as ns`` creates and deletes (the plugin's ``with`` enters instead), ``entered()``,
``run(*cmd)`` (``ip netns exec``), ``bpftool(...)``, and a distinct subnet per namespace (readable bpftool/tcpdump
output).

>>> with NetPair("demo") as ns:  # doctest: +SKIP
...     with ns.entered():
...         link = bpflink.link_create(prog, ns.dev_b, AttachType.XDP)
...     assert ns.udp_deliveries(3) == 0
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from bpflink.testing import NetkitUnavailable, PeerPair
from bpflink.testing._netns import TEST_PORT, netkit_ip

# 10.201.<n>.0/30 per namespace: distinct per namespace only to keep bpftool/tcpdump output readable
_subnets = itertools.count(1)


class NetPair(PeerPair):
    """A named network namespace holding ``lo`` and a pair ``dev_a`` (``addr_a``) <-> ``dev_b`` (``addr_b``).

    Cleanup (``close()``, or leaving the ``with``) deletes the namespace and with it both devices.
    """

    def __init__(self, tag: str, kind: str = "veth") -> None:
        net = next(_subnets) % 250
        super().__init__(kind, dev_a="bpfl0", dev_b="bpfl1", addr_a=f"10.201.{net}.1", addr_b=f"10.201.{net}.2")
        self.tag = tag

    def run(self, *cmd: str, check: bool = True, ip: str = "ip") -> subprocess.CompletedProcess[str]:
        """``ip netns exec <ns> cmd...``; ``CalledProcessError`` (with stderr) when ``check`` and it fails."""
        res = subprocess.run([ip, "netns", "exec", self.name, *cmd], capture_output=True, text=True, timeout=60)
        if check and res.returncode != 0:
            raise subprocess.CalledProcessError(res.returncode, res.args, res.stdout, res.stderr)
        return res

    def ip(self, *args: str) -> None:
        self.netns.ip(*args)

    def sysctl(self, key: str, value: str) -> None:
        self.netns.sysctl(key, value)

    def bpftool(self, *args: str) -> Any:
        """``bpftool -j args...`` run inside the namespace, decoded."""
        tool = shutil.which("bpftool") or "/usr/sbin/bpftool"
        return json.loads(self.run(tool, "-j", *args).stdout or "null")

    @contextlib.contextmanager
    def entered(self) -> Iterator[NetPair]:
        """Move the calling thread into the namespace for the ``with`` block; always moves it back."""
        with self.netns.entered():
            yield self

    def ifindex(self, dev: str) -> int:
        return self.netns.ifindex(dev)

    def __enter__(self) -> NetPair:  # type: ignore[override]  # creates (the plugin's PeerPair enters)
        self.create()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@pytest.fixture
def netns(request: pytest.FixtureRequest) -> Iterator[NetPair]:
    """A fresh ``NetPair`` (veth pair that carries traffic), deleted afterwards."""
    tag = request.node.name.removeprefix("test_")[:12].replace("[", "").replace("]", "")
    with NetPair(tag or "t") as ns:
        yield ns


__all__ = ["TEST_PORT", "NetPair", "NetkitUnavailable", "netkit_ip", "netns"]
