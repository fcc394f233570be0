"""XDP and tcx links on a veth pair inside a private network namespace, and ``bpflink.query`` on tcx hooks.

Every test shows the link firing: the test's UDP datagrams (tests/netns.py) stop arriving while a dropping link
lives, a BPF counter counts them, and they arrive again once it is closed. Ordering is proven by the programs
themselves: each appends its letter to a map as the datagram passes, so the map holds the execution order.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from bpflink import AttachType, HookEntry, HookQuery, Link, LinkType, Map, Object, Program, link_create, opts, query
from bpflink.errors import NotSupportedError
from bpflink.opts import Anchor, LinkId, ProgId
from honest_skips import unsupported
from netns import NetPair

INGRESS, EGRESS = AttachType.TCX_INGRESS, AttachType.TCX_EGRESS


class OrderLog:
    """Reads the execution order the tag_* programs leave in the ``order`` map."""

    def __init__(self, obj: Object, stack: ExitStack) -> None:
        self.order = stack.enter_context(obj.map("order"))
        self.length = stack.enter_context(obj.map("order_len"))

    def after_one_datagram(self, ns: NetPair) -> str:
        self.length.update(0, 0)
        ns.udp_deliveries(1)
        return "".join(chr(self.order.lookup_int(i)) for i in range(self.length.lookup_int(0)))


@pytest.fixture
def tcx(bpf_objects: dict[str, Path]) -> Iterator[tuple[Object, ExitStack]]:
    """The loaded net_tcx object and an ExitStack that closes what the test takes from it (links first)."""
    with Object.open(bpf_objects["net_tcx"]) as obj, ExitStack() as stack:
        yield obj, stack


def take(obj: Object, stack: ExitStack, *names: str) -> list[Program]:
    return [stack.enter_context(obj.program(n)) for n in names]


def attach(ns: NetPair, stack: ExitStack, prog: Program, dev: str, at: AttachType, o: Any = None) -> Link:
    """link_create on a device of the namespace; closed by ``stack``."""
    with ns.entered():
        return stack.enter_context(link_create(prog, dev, at, o))


def query_in(ns: NetPair, target: Any, at: AttachType) -> HookQuery:
    """``query`` from inside the namespace (an ifindex means a device of the caller's namespace)."""
    with ns.entered():
        return query(target, at)


def bpftool_tcx(ns: NetPair, dev: str, kind: str) -> list[tuple[int, int]]:
    """(prog_id, link_id) of ``dev``'s tcx hook ``kind`` as ``bpftool net show`` lists them."""
    out = ns.bpftool("net", "show", "dev", dev)
    return [(e["prog_id"], e["link_id"]) for e in out[0].get("tc", []) if e["kind"] == kind]


# --- XDP ------------------------------------------------------------------------------------------------------

def test_xdp_drops_counts_update_swaps_and_close_restores(netns: NetPair, bpf_objects: dict[str, Path]) -> None:
    assert netns.udp_deliveries(3) == 3
    with Object.open(bpf_objects["net_xdp"]) as obj, ExitStack() as stack:
        drop, passing = take(obj, stack, "xdp_drop", "xdp_pass")
        counters: Map = stack.enter_context(obj.map("counters"))
        link = attach(netns, stack, drop, netns.dev_b, AttachType.XDP)
        assert link.info().type == LinkType.XDP and link.prog_id == drop.id
        assert netns.udp_deliveries(3) == 0
        assert counters.lookup_int(0) == 3
        link.update(passing)  # atomically swap: now it counts and passes
        assert link.prog_id == passing.id
        assert netns.udp_deliveries(3) == 3
        assert (counters.lookup_int(0), counters.lookup_int(1)) == (3, 3)
        link.update(drop, old_prog=passing)
        assert netns.udp_deliveries(2) == 0 and counters.lookup_int(0) == 5
        link.close()
        assert netns.udp_deliveries(3) == 3
        assert (counters.lookup_int(0), counters.lookup_int(1)) == (5, 3)  # detached: nothing counts


def test_xdp_second_link_on_a_device_is_ebusy_with_hint(netns: NetPair, bpf_objects: dict[str, Path]) -> None:
    with Object.open(bpf_objects["net_xdp"]) as obj, ExitStack() as stack:
        drop, passing = take(obj, stack, "xdp_drop", "xdp_pass")
        first = attach(netns, stack, drop, netns.dev_b, AttachType.XDP)
        with pytest.raises(OSError) as exc:
            attach(netns, stack, passing, netns.dev_b, AttachType.XDP, opts.Xdp())
        assert exc.value.errno == errno.EBUSY
        assert "already has an XDP program" in str(exc.value)
        assert netns.udp_deliveries(2) == 0  # the first link still holds the device
        first.close()
        second = attach(netns, stack, passing, netns.dev_b, AttachType.XDP)  # free again
        assert netns.udp_deliveries(2) == 2 and second.prog_id == passing.id


# --- tcx: firing ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("at", "end"), [(INGRESS, "b"), (EGRESS, "a")], ids=["ingress", "egress"])
def test_tcx_drops_and_counts_then_close_restores(netns: NetPair, tcx: tuple[Object, ExitStack], at: AttachType,
                                                  end: str) -> None:
    obj, stack = tcx
    dev = netns.dev_b if end == "b" else netns.dev_a  # the datagram leaves dev_a and arrives on dev_b
    drop, passing = take(obj, stack, "count_drop", "count_pass")
    counters: Map = stack.enter_context(obj.map("counters"))
    link = attach(netns, stack, drop, dev, at)
    assert link.info().type == LinkType.TCX
    assert netns.udp_deliveries(3) == 0
    assert counters.lookup_int(0) == 3
    link.update(passing)
    assert netns.udp_deliveries(3) == 3 and counters.lookup_int(1) == 3
    link.update(drop)
    link.close()
    assert netns.udp_deliveries(3) == 3
    assert counters.lookup_int(0) == 3  # detached: nothing counts


# --- tcx: ordering, proven by the programs ---------------------------------------------------------------------

# (opts for C given links a, b and programs a, b) -> the order after A and B were appended, then C attached
ORDER_CASES: dict[str, tuple[Callable[[Link, Link, Program, Program], opts.Tcx], str]] = {
    "before_link": (lambda la, lb, a, b: opts.Tcx(before=la), "CAB"),
    "after_link": (lambda la, lb, a, b: opts.Tcx(after=la), "ACB"),
    "before_program": (lambda la, lb, a, b: opts.Tcx(before=b), "ACB"),
    "before_prog_fd_int": (lambda la, lb, a, b: opts.Tcx(before=a.fd), "CAB"),
    "after_ProgId": (lambda la, lb, a, b: opts.Tcx(after=ProgId(a.id)), "ACB"),
    "before_LinkId": (lambda la, lb, a, b: opts.Tcx(before=LinkId(lb.id)), "ACB"),
    "anchor_after_LinkId": (lambda la, lb, a, b: opts.Tcx(anchor=Anchor.after(LinkId(lb.id))), "ABC"),
    "anchor_head": (lambda la, lb, a, b: opts.Tcx(anchor=Anchor.head()), "CAB"),
    "anchor_tail": (lambda la, lb, a, b: opts.Tcx(anchor=Anchor.tail()), "ABC"),
    "before_link_expected_revision": (lambda la, lb, a, b: opts.Tcx(before=lb, expected_revision=3), "ACB"),
}


@pytest.mark.parametrize("case", list(ORDER_CASES))
def test_tcx_order_is_what_the_anchor_asks_and_query_agrees(netns: NetPair, tcx: tuple[Object, ExitStack],
                                                            case: str) -> None:
    obj, stack = tcx
    make_opts, expected = ORDER_CASES[case]
    log = OrderLog(obj, stack)
    a, b, c = take(obj, stack, "tag_a", "tag_b", "tag_c")
    dev = netns.dev_b
    dev_ifindex = netns.ifindex(dev)
    assert query_in(netns, dev_ifindex, INGRESS) == HookQuery(1, 0, ())  # empty hook: revision 1
    la = attach(netns, stack, a, dev, INGRESS)
    lb = attach(netns, stack, b, dev, INGRESS)  # no opts: appended
    assert log.after_one_datagram(netns) == "AB"
    lc = attach(netns, stack, c, dev, INGRESS, make_opts(la, lb, a, b))
    assert log.after_one_datagram(netns) == expected

    q = query_in(netns, dev_ifindex, INGRESS)
    by_letter = {"A": (a, la), "B": (b, lb), "C": (c, lc)}
    assert q.revision == 4  # 1 + three attaches
    assert q.entries == tuple(HookEntry(by_letter[x][0].id, by_letter[x][1].id, 0) for x in expected)
    assert query_in(netns, dev, INGRESS) == q  # by device name
    assert bpftool_tcx(netns, dev, "tcx/ingress") == [(e.prog_id, e.link_id) for e in q.entries]
    assert query_in(netns, dev_ifindex, EGRESS) == HookQuery(1, 0, ())  # the other direction is untouched


def test_tcx_stale_expected_revision_is_estale_with_hint(netns: NetPair, tcx: tuple[Object, ExitStack]) -> None:
    obj, stack = tcx
    log = OrderLog(obj, stack)
    a, b = take(obj, stack, "tag_a", "tag_b")
    ifindex = netns.ifindex(netns.dev_b)
    rev = query_in(netns, ifindex, INGRESS).revision
    la = attach(netns, stack, a, netns.dev_b, INGRESS, opts.Tcx(expected_revision=rev))
    with pytest.raises(OSError) as exc:
        attach(netns, stack, b, netns.dev_b, INGRESS, opts.Tcx(before=la, expected_revision=rev))
    assert exc.value.errno == errno.ESTALE
    assert "expected_revision" in str(exc.value) and "query" in str(exc.value)
    assert log.after_one_datagram(netns) == "A"  # the refused link changed nothing
    fresh = query_in(netns, ifindex, INGRESS).revision
    attach(netns, stack, b, netns.dev_b, INGRESS, opts.Tcx(before=la, expected_revision=fresh))
    assert log.after_one_datagram(netns) == "BA"


def test_tcx_same_program_twice_is_eexist(netns: NetPair, tcx: tuple[Object, ExitStack]) -> None:
    obj, stack = tcx
    (a,) = take(obj, stack, "tag_a")
    la = attach(netns, stack, a, netns.dev_b, INGRESS)
    for o in (None, opts.Tcx(after=la), opts.Tcx(anchor=Anchor.head())):
        with pytest.raises(FileExistsError) as exc:
            attach(netns, stack, a, netns.dev_b, INGRESS, o)
        assert exc.value.errno == errno.EEXIST and "already attached" in str(exc.value)
    # the same program may sit on the other direction of the device
    attach(netns, stack, a, netns.dev_b, EGRESS)


def test_tcx_anchor_not_on_the_hook_is_enoent(netns: NetPair, tcx: tuple[Object, ExitStack]) -> None:
    obj, stack = tcx
    a, b, c = take(obj, stack, "tag_a", "tag_b", "tag_c")
    attach(netns, stack, a, netns.dev_b, INGRESS)
    lb = attach(netns, stack, b, netns.dev_a, EGRESS)  # another hook
    for o in (opts.Tcx(before=lb), opts.Tcx(after=c), opts.Tcx(before=LinkId(lb.id))):
        with pytest.raises(FileNotFoundError) as exc:
            attach(netns, stack, c, netns.dev_b, INGRESS, o)
        assert exc.value.errno == errno.ENOENT and "anchor" in str(exc.value)


def test_anchor_values_the_kernel_would_misread_are_refused_before_the_syscall() -> None:
    with pytest.raises(ValueError, match="fd 0"):
        opts.Tcx(before=0)  # relative_fd 0 means "no anchor": this would silently become head
    with pytest.raises(ValueError, match="expected_revision"):
        opts.Tcx(expected_revision=0)  # 0 switches the kernel's check off
    with pytest.raises(ValueError):
        ProgId(0)
    with pytest.raises(ValueError):
        LinkId(0)
    with pytest.raises(ValueError, match="at most one"):
        opts.Tcx(before=ProgId(1), after=ProgId(2))


# --- query ----------------------------------------------------------------------------------------------------

def test_query_revision_counts_every_attach_and_detach(netns: NetPair, tcx: tuple[Object, ExitStack]) -> None:
    obj, stack = tcx
    a, b = take(obj, stack, "tag_a", "tag_b")
    ifindex = netns.ifindex(netns.dev_a)
    assert query_in(netns, ifindex, EGRESS).revision == 1
    la = attach(netns, stack, a, netns.dev_a, EGRESS)
    assert query_in(netns, ifindex, EGRESS) == HookQuery(2, 0, (HookEntry(a.id, la.id, 0),))
    lb = attach(netns, stack, b, netns.dev_a, EGRESS, opts.Tcx(anchor=Anchor.head()))
    assert query_in(netns, ifindex, EGRESS).entries == (HookEntry(b.id, lb.id, 0), HookEntry(a.id, la.id, 0))
    assert query_in(netns, ifindex, EGRESS).revision == 3
    lb.detach()  # detaching is a change too; the fd stays open
    assert query_in(netns, ifindex, EGRESS) == HookQuery(4, 0, (HookEntry(a.id, la.id, 0),))
    la.close()
    # the last program gone, the kernel frees the device's tcx bundle: an empty hook is revision 1 again
    assert query_in(netns, ifindex, EGRESS) == HookQuery(1, 0, ())


def test_query_bad_input_fails_before_any_syscall() -> None:
    with pytest.raises(TypeError):
        query(None, INGRESS)
    with pytest.raises(ValueError, match="no network device"):
        query("bpflink-nonexistent0", INGRESS)
    with pytest.raises(TypeError):
        query("/sys/class/net", INGRESS)
    with pytest.raises(ValueError):
        query(0, INGRESS)
    with pytest.raises(TypeError):
        query(1.5, INGRESS)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        query(1, "not_an_attach_type")


def test_query_unknown_ifindex_is_enodev(netns: NetPair) -> None:
    with pytest.raises(OSError) as exc:
        query_in(netns, 0x7FFFFFF0, INGRESS)
    if isinstance(exc.value, NotSupportedError):  # a kernel without tcx (< 6.6) cannot look at the device
        unsupported("tcx", exc.value)
    assert exc.value.errno == errno.ENODEV
