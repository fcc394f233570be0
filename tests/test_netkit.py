"""netkit links (``opts.Netkit``, kernel >= 6.7 with CONFIG_NETKIT) on a netkit pair inside a private namespace.

``dev_a`` is the primary, ``dev_b`` its peer. Programs attached as ``NETKIT_PRIMARY`` run on what the primary
transmits (``addr_a`` -> ``addr_b``), ``NETKIT_PEER`` ones on what the peer transmits; both take the primary's
ifindex. The order is proven by the programs (tests/bpf/net_tcx.bpf.c: netkit runs sched_cls programs with the
same NEXT/PASS/DROP verdicts as tcx). Where the pair cannot be made, the test makes a real netkit attach on a
veth and lets tests/honest_skips.py decide: skip when the kernel lacks netkit, fail when it should have it.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from bpflink import AttachType, HookEntry, Link, LinkType, Map, Object, Program, link_create, opts, query
from bpflink.opts import Anchor, LinkId
from honest_skips import unsupported
from netns import NetkitUnavailable, NetPair

PRIMARY, PEER = AttachType.NETKIT_PRIMARY, AttachType.NETKIT_PEER


@pytest.fixture
def netkit(request: pytest.FixtureRequest, bpf_objects: dict[str, Path]) -> Iterator[NetPair]:
    """A namespace with a netkit pair; or, after a real attempt, the probed reason why not."""
    try:
        with NetPair("netkit", kind="netkit") as ns:
            yield ns
            return
    except NetkitUnavailable as unavailable:
        reason = unavailable
    # the device could not be made: ask the kernel itself by attaching a netkit link to a veth
    with NetPair("netkit-veth") as ns, Object.open(bpf_objects["net_tcx"]) as obj, obj.program("tag_a") as prog:
        try:
            with ns.entered():
                link_create(prog, ns.dev_a, PRIMARY).close()
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # the kernel knows netkit: only the device creation failed
                pytest.fail(f"netkit is supported (a veth is ENXIO) but the pair could not be made: {reason}")
            unsupported("netkit", exc)
    pytest.fail(f"a netkit link on a veth was accepted ({reason})")


def attach(ns: NetPair, stack: ExitStack, prog: Program, at: AttachType, o: Any = None) -> Link:
    with ns.entered():
        return stack.enter_context(link_create(prog, ns.dev_a, at, o))  # always the primary's ifindex


def order_after_one(ns: NetPair, order: Map, length: Map, *, reverse: bool = False) -> str:
    length.update(0, 0)
    ns.udp_deliveries(1, reverse=reverse)
    return "".join(chr(order.lookup_int(i)) for i in range(length.lookup_int(0)))


def test_netkit_primary_and_peer_fire_in_the_asked_order(netkit: NetPair, bpf_objects: dict[str, Path]) -> None:
    ns = netkit
    assert ns.udp_deliveries(2) == 2 and ns.udp_deliveries(2, reverse=True) == 2
    with Object.open(bpf_objects["net_tcx"]) as obj, ExitStack() as stack:
        a, b, c, drop = (stack.enter_context(obj.program(n)) for n in ("tag_a", "tag_b", "tag_c", "count_drop"))
        order, length, counters = (stack.enter_context(obj.map(n)) for n in ("order", "order_len", "counters"))
        with ns.entered():
            assert query(ns.dev_a, PRIMARY).entries == ()
        la = attach(ns, stack, a, PRIMARY)
        assert la.info().type == LinkType.NETKIT
        lb = attach(ns, stack, b, PRIMARY, opts.Netkit(before=la))
        lc = attach(ns, stack, c, PRIMARY, opts.Netkit(anchor=Anchor.after(LinkId(la.id))))
        assert order_after_one(ns, order, length) == "BAC"
        assert order_after_one(ns, order, length, reverse=True) == ""  # the peer's hook is another one
        with ns.entered():
            q = query(ns.dev_a, PRIMARY)
        assert q.entries == (HookEntry(b.id, lb.id, 0), HookEntry(a.id, la.id, 0), HookEntry(c.id, lc.id, 0))

        # the peer: drop and count what the peer sends; the primary's direction still flows
        peer = attach(ns, stack, drop, PEER, opts.Netkit(expected_revision=1))
        assert ns.udp_deliveries(3, reverse=True) == 0 and counters.lookup_int(0) == 3
        assert ns.udp_deliveries(2) == 2
        with ns.entered():
            assert query(ns.dev_a, PEER).entries == (HookEntry(drop.id, peer.id, 0),)
            stale = query(ns.dev_a, PEER).revision - 1
        with pytest.raises(OSError) as exc:
            attach(ns, stack, a, PEER, opts.Netkit(expected_revision=stale))
        assert exc.value.errno == errno.ESTALE
        peer.close()
        assert ns.udp_deliveries(3, reverse=True) == 3 and counters.lookup_int(0) == 3
