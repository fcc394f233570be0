"""Netfilter links (``opts.Netfilter``) inside a private network namespace.

The test's UDP datagrams cross a veth pair in the namespace (tests/netns.py); a netfilter program at
``LOCAL_IN`` of that namespace drops and counts them while its link lives. ``link_create`` runs with the
calling thread inside the namespace, because the kernel registers the hook in the creator's namespace.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bpflink import (
    AttachType,
    LinkType,
    NfInetHook,
    NfProto,
    Object,
    Program,
    ProgType,
    asm,
    link_create,
    lowlevel,
    opts,
)
from bpflink.info import NetfilterLinkInfo
from honest_skips import unsupported
from netns import NetPair, netns  # noqa: F401  (fixture)

NF = AttachType.NETFILTER
LOCAL_IN = opts.Netfilter(NfProto.IPV4, NfInetHook.LOCAL_IN, priority=-100)


@pytest.fixture
def nf_obj(bpf_objects: dict[str, Path]) -> Iterator[Object]:
    try:
        obj = Object.open(bpf_objects["nf_udp"])
    except OSError as exc:  # kernels before 6.4 have no netfilter program type
        unsupported("netfilter", exc)
    with obj:
        yield obj


def test_netfilter_drops_and_counts_then_close_restores(netns: NetPair, nf_obj: Object) -> None:  # noqa: F811
    assert netns.udp_deliveries(3) == 3
    with nf_obj.program("nf_drop") as prog, nf_obj.map("counters") as counters:
        with netns.entered():
            link = link_create(prog, None, NF, LOCAL_IN)
        with link:
            assert netns.udp_deliveries(4) == 0
            assert counters.lookup_int(0) == 4
            info = link.info()
            assert isinstance(info, NetfilterLinkInfo)
            assert info.type == LinkType.NETFILTER and info.prog_id == prog.id
            assert (info.pf, info.hooknum, info.priority, info.flags) == (NfProto.IPV4, NfInetHook.LOCAL_IN, -100, 0)
        assert netns.udp_deliveries(3) == 3
        assert counters.lookup_int(0) == 4


def test_netfilter_hook_is_per_namespace(netns: NetPair, nf_obj: Object) -> None:  # noqa: F811
    # the hook lives in the namespace of the thread that created the link: another namespace's traffic passes
    with NetPair("nf-other") as other, nf_obj.program("nf_drop") as prog, nf_obj.map("counters") as counters:
        with other.entered():
            link = link_create(prog, None, NF, LOCAL_IN)
        with link:
            assert netns.udp_deliveries(3) == 3
            assert counters.lookup_int(0) == 0
            assert other.udp_deliveries(2) == 0
            assert counters.lookup_int(0) == 2


def test_netfilter_defrag_flag_is_accepted(netns: NetPair, nf_obj: Object) -> None:  # noqa: F811
    defrag = opts.Netfilter(NfProto.IPV4, NfInetHook.LOCAL_IN, priority=-100, defrag=True)
    with nf_obj.program("nf_accept") as prog, nf_obj.map("counters") as counters:
        with netns.entered():
            link = link_create(prog, None, NF, defrag)
        with link:
            info = link.info()
            assert isinstance(info, NetfilterLinkInfo) and info.flags == lowlevel.lib.BPF_F_NETFILTER_IP_DEFRAG
            assert netns.udp_deliveries(3) == 3
            assert counters.lookup_int(1) == 3


def test_netfilter_two_hooks_ipv6_and_ordering_by_priority(netns: NetPair, nf_obj: Object) -> None:  # noqa: F811
    # a dropping program at a lower priority runs first: the accepting one never sees the datagrams
    with nf_obj.program("nf_drop") as drop, nf_obj.program("nf_accept") as accept, \
            nf_obj.map("counters") as counters:
        with netns.entered():
            first = link_create(drop, None, NF, opts.Netfilter(NfProto.IPV4, NfInetHook.LOCAL_IN, priority=-200))
            second = link_create(accept, None, NF, opts.Netfilter(NfProto.IPV4, NfInetHook.LOCAL_IN, priority=0))
            v6 = link_create(accept, None, NF, opts.Netfilter(NfProto.IPV6, NfInetHook.PRE_ROUTING, priority=5))
        with first, second, v6:
            info = v6.info()
            assert isinstance(info, NetfilterLinkInfo) and info.pf == NfProto.IPV6
            assert netns.udp_deliveries(2) == 0
            assert (counters.lookup_int(0), counters.lookup_int(1)) == (2, 0)


@pytest.mark.hostonly
@pytest.mark.parametrize(("kwargs", "exc", "words"), [
    ({"pf": 99, "hooknum": 1, "priority": 0}, ValueError, "pf must be"),
    ({"pf": NfProto.IPV4, "hooknum": 5, "priority": 0}, ValueError, "hooknum"),
    ({"pf": NfProto.IPV4, "hooknum": 1, "priority": -(1 << 31)}, ValueError, "priority"),
    ({"pf": NfProto.IPV4, "hooknum": 1, "priority": (1 << 31) - 1}, ValueError, "priority"),
    ({"pf": NfProto.IPV4, "hooknum": 1, "priority": 1 << 31}, ValueError, "priority"),
    ({"pf": NfProto.IPV4, "hooknum": 1, "priority": -400, "defrag": True}, ValueError, "> -400"),
    ({"pf": NfProto.IPV4, "hooknum": 1, "priority": 1.5}, TypeError, "int"),
    ({"pf": NfProto.IPV4, "hooknum": True, "priority": 0}, TypeError, "int"),
    ({"pf": NfProto.IPV4, "hooknum": 1, "priority": 0, "defrag": 1}, TypeError, "bool"),
])
def test_netfilter_bad_input_before_the_syscall(kwargs: dict[str, object], exc: type[Exception],
                                                words: str) -> None:
    with pytest.raises(exc, match=words):
        opts.Netfilter(**kwargs)  # type: ignore[arg-type]


def test_netfilter_opts_belong_to_netfilter_only() -> None:
    with Program.load(ProgType.SK_LOOKUP, asm.return_imm(1), expected_attach_type=AttachType.SK_LOOKUP) as prog, \
            pytest.raises(TypeError, match="Netfilter opts cannot"):
        link_create(prog, "/proc/self/ns/net", AttachType.SK_LOOKUP, LOCAL_IN)


@pytest.mark.hostonly
def test_netfilter_builder_leaves_link_flags_zero() -> None:
    # the kernel refuses link_create.flags != 0 for netfilter: defrag travels in netfilter.flags
    built = opts.Netfilter(NfProto.IPV4, NfInetHook.LOCAL_IN, priority=-100, defrag=True).build(NF)
    assert built.ptr.flags == 0
    assert built.ptr.netfilter.flags == lowlevel.lib.BPF_F_NETFILTER_IP_DEFRAG
    assert (built.ptr.netfilter.pf, built.ptr.netfilter.priority) == (NfProto.IPV4, -100)
