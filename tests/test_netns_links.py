"""Network-namespace links: ``BPF_SK_LOOKUP`` and ``BPF_FLOW_DISSECTOR``, whose target is a netns (an fd, or a
path such as ``/run/netns/<name>`` that ``link_create`` opens). Both fire on real traffic through a veth pair in
a private namespace (tests/netns.py): sk_lookup when a datagram arrives for the test's port, the flow dissector
when a packet fanout group hashes an arriving packet."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpflink import AttachType, LinkType, Map, Object, link_create
from bpflink.info import NetnsLinkInfo
from netns import NetPair, netns  # noqa: F401  (fixture)

LOOKUP, DISSECTOR = AttachType.SK_LOOKUP, AttachType.FLOW_DISSECTOR
# <linux/if_ether.h>, <linux/socket.h>, <linux/if_packet.h>: not in Python's socket module
ETH_P_IP, SOL_PACKET, PACKET_FANOUT, PACKET_FANOUT_HASH = 0x0800, 263, 18, 0


@pytest.fixture
def obj(bpf_objects: dict[str, Path]) -> Iterator[Object]:
    with Object.open(bpf_objects["sk_netns"]) as o:
        yield o


@pytest.fixture
def counters(obj: Object) -> Iterator[Map]:
    with obj.map("counters") as m:
        yield m


def ns_path(ns: NetPair) -> str:
    return f"/run/netns/{ns.name}"


def test_sk_lookup_counts_then_drops_after_update(netns: NetPair, obj: Object, counters: Map) -> None:  # noqa: F811
    with obj.program("lookup_pass") as passing, obj.program("lookup_drop") as dropping:
        with link_create(passing, ns_path(netns), LOOKUP) as link:
            assert netns.udp_deliveries(3) == 3
            assert counters.lookup_int(0) == 3
            link.update(dropping, old_prog=passing)  # the same link now steers the lookups to a drop
            assert netns.udp_deliveries(3) == 0
            assert (counters.lookup_int(0), counters.lookup_int(1)) == (3, 3)
            info = link.info()
            assert isinstance(info, NetnsLinkInfo) and info.type == LinkType.NETNS
            assert (info.netns_ino, info.attach_type, info.prog_id) == (os.stat(ns_path(netns)).st_ino, LOOKUP,
                                                                        dropping.id)
            link.detach()  # netns links can be detached: the hook is gone while the fd stays open
            assert netns.udp_deliveries(2) == 2
            detached = link.info()
            assert isinstance(detached, NetnsLinkInfo) and detached.netns_ino == 0
        assert counters.lookup_int(1) == 3


def test_sk_lookup_target_as_fd_of_the_thread_namespace(netns: NetPair, obj: Object,  # noqa: F811
                                                        counters: Map) -> None:
    with obj.program("lookup_drop") as prog:
        with netns.entered():
            fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            with link_create(prog, fd, LOOKUP):
                assert netns.udp_deliveries(2) == 0
                assert counters.lookup_int(1) == 2
        finally:
            os.close(fd)
        assert netns.udp_deliveries(2) == 2  # closed: lookups are back to normal


def hash_fanout(ns: NetPair) -> socket.socket:
    """An AF_PACKET socket on the receiving veth end in a PACKET_FANOUT_HASH group: the kernel computes the flow
    hash of every packet arriving there (``__skb_get_hash_symmetric``), so the namespace's dissector runs."""
    with ns.entered():
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sock.bind((ns.dev_b, 0))
    sock.setsockopt(SOL_PACKET, PACKET_FANOUT, (PACKET_FANOUT_HASH << 16) | (os.getpid() & 0xFFFF))
    return sock


def test_flow_dissector_runs_for_packet_fanout_hashing(netns: NetPair, obj: Object,  # noqa: F811
                                                       counters: Map) -> None:
    with obj.program("dissect_count") as prog, link_create(prog, ns_path(netns), DISSECTOR) as link:
        # nothing in this namespace asks for a flow hash of these datagrams yet
        assert netns.udp_deliveries(3) == 3
        assert counters.lookup_int(2) == 0
        with hash_fanout(netns):
            assert netns.udp_deliveries(4) == 4
            assert counters.lookup_int(2) >= 4
        info = link.info()
        assert isinstance(info, NetnsLinkInfo) and info.attach_type == DISSECTOR
        # one flow dissector per namespace
        with pytest.raises(OSError, match="one flow dissector") as exc:
            link_create(prog, ns_path(netns), DISSECTOR).close()
        assert exc.value.errno == errno.E2BIG
    count = counters.lookup_int(2)
    with hash_fanout(netns):
        assert netns.udp_deliveries(2) == 2
    assert counters.lookup_int(2) == count  # closed: the kernel's own dissector is back


def test_netns_target_must_be_a_namespace(obj: Object) -> None:
    with obj.program("lookup_pass") as prog, pytest.raises(OSError, match="network namespace") as exc:
        link_create(prog, "/proc/self/cgroup", LOOKUP).close()
    assert exc.value.errno == errno.EINVAL
