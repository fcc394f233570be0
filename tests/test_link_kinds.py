"""The Link contract, run on every link kind this kernel can make (and skipped, with the probed reason, on the
kinds it cannot): ``check_link_contract`` takes a freshly made link and checks, against the kernel's answers,

- ``info()``: the link type, the id and the program id the kernel reports;
- ``pin`` then ``Link.from_pin``: a ``Link`` (not a program or map) of the same kernel link; ``unpin`` removes it;
- ``Link.from_id``: the same kernel link again; ``detach_fd`` hands its fd over working;
- ``update`` (``update_map`` for struct_ops): the kernel runs the new program (its ``prog_id``), or, for kinds
  without program replacement, an ``OSError`` naming the operation with the kernel's EINVAL/EOPNOTSUPP;
- ``detach``: the fd stays usable (``info()`` still answers), or EOPNOTSUPP for kinds that cannot detach;
- ``close``: idempotent, later calls say "closed", the kernel drops the link (``from_id`` finds nothing);
- no fd, link, program, map or pin is left (the plugin's ``bpf_no_leaks``).

``LegacyLink`` (no kernel link object) keeps its own contract: the operations a kernel link would need refuse
with ``NotSupportedError``, ``info()`` names the mechanism, ``close()`` detaches.

A family test file can run the same check on the links it makes: ``from test_link_kinds import check_link_contract``.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bpflink import AttachType, Link, LinkType, Map, MapType, Object, Program, ProgType, asm, link_create, opts
from bpflink.errors import NotSupportedError
from honest_skips import unsupported

#: kernel answers for an operation a link kind does not implement: bpf_link_update without ``update_prog`` is
#: EINVAL (netfilter's says EOPNOTSUPP), bpf_link_detach without ``detach`` is EOPNOTSUPP
NO_UPDATE = (errno.EINVAL, errno.EOPNOTSUPP)
NO_DETACH = (errno.EOPNOTSUPP, errno.EINVAL)


def _gone(link_id: int) -> bool:
    """The kernel no longer knows link ``link_id`` (freed after its last reference; allow it a moment)."""
    for _ in range(50):
        try:
            Link.from_id(link_id).close()
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return True
            raise
        time.sleep(0.02)
    return False


def check_link_contract(link: Link, link_type: LinkType, pin_dir: Path, *, replacement: Program | None = None,
                        new_map: Map | None = None, detaches: bool = True) -> None:
    """Check the Link contract on ``link`` (freshly made, of kernel link type ``link_type``); closes it.

    ``replacement``: a program the kind accepts in ``update`` (None: the kind cannot replace its program);
    ``new_map``: for struct_ops, a ready map for ``update_map``; ``detaches``: whether the kind implements detach.
    """
    assert isinstance(link, Link) and not link.closed and link.fd == link.fileno() >= 0
    info = link.info()
    assert info.type == link_type, f"info().type {info.type!r}, expected {link_type!r}"
    assert info.id == link.id > 0
    first_prog = link.prog_id
    assert info.prog_id == first_prog

    path = pin_dir / "link"
    link.pin(path)
    assert link.pinned_path == str(path) and path.exists()
    with Link.from_pin(path) as again:
        assert type(again) is Link and again.id == link.id and again.info().type == link_type
    link.unpin()
    assert not path.exists() and link.pinned_path is None

    with Link.from_id(link.id) as again:
        assert type(again) is Link and again.id == link.id and again.info().type == link_type
        raw = again.detach_fd()  # the caller owns the fd now; the Link is closed without closing it
        assert again.closed and raw != link.fd
    with Link(raw) as handed:  # still a working fd of the same link
        assert handed.id == link.id

    if new_map is not None:
        link.update_map(new_map)
        assert getattr(link.info(), "map_id", None) == new_map.id  # the kernel runs the new ops
    elif replacement is not None:
        link.update(replacement)
        assert link.prog_id == replacement.id != first_prog  # the kernel runs the new program
        old = _prog_fd_of(first_prog)
        try:
            with pytest.raises(OSError) as wrong:  # BPF_F_REPLACE with a program that is not the current one
                link.update(replacement, old_prog=old)
        finally:
            os.close(old)
        assert wrong.value.errno == errno.EPERM and "update" in str(wrong.value)
        assert link.prog_id == replacement.id
    else:
        probe = Program.load(ProgType.SOCKET_FILTER, asm.return_imm(0))
        with probe, pytest.raises(OSError) as refused:
            link.update(probe)
        assert refused.value.errno in NO_UPDATE and "update" in str(refused.value), refused.value
        assert link.prog_id == first_prog

    if detaches:
        link.detach()
        assert link.info().type == link_type  # the fd stays: the kernel still answers for the detached link
    else:
        with pytest.raises(OSError) as refused_detach:
            link.detach()
        assert refused_detach.value.errno in NO_DETACH and "detach" in str(refused_detach.value)

    link_id = link.id
    link.close()
    link.close()
    assert link.closed
    with pytest.raises(ValueError, match="closed"):
        link.info()
    with pytest.raises(ValueError, match="closed"):
        link.pin(pin_dir / "late")
    assert _gone(link_id), f"link id {link_id} still exists after close()"


def _prog_fd_of(prog_id: int) -> int:
    from bpflink import lowlevel as ll

    fd = int(ll.lib.bpf_prog_get_fd_by_id(prog_id))
    assert fd >= 0, f"program id {prog_id}: {os.strerror(-fd)}"
    return fd


# --- one factory per kind: (link, link type, update replacement / new map, detaches) ------------------------------


@dataclass
class Made:
    link: Link
    link_type: LinkType
    replacement: Program | None = None
    new_map: Map | None = None
    detaches: bool = True


class Ctx:
    def __init__(self, request: pytest.FixtureRequest, stack: ExitStack) -> None:
        self.request, self.stack = request, stack

    def fixture(self, name: str) -> Any:
        return self.request.getfixturevalue(name)

    def prog(self, prog_type: ProgType, attach_type: AttachType | None = None, ret: int = 0) -> Program:
        return self.stack.enter_context(Program.load(prog_type, asm.return_imm(ret), expected_attach_type=attach_type))

    def obj(self, name: str, programs: list[str] | None = None) -> Object:
        return self.stack.enter_context(Object.open(self.fixture("bpf_objects")[name], programs=programs))

    def create(self, feature: str, make: Callable[[], Link]) -> Link:
        try:
            return make()
        except OSError as exc:
            unsupported(feature, exc)


def _cgroup(c: Ctx) -> Made:
    at = AttachType.CGROUP_INET_EGRESS
    cg = c.fixture("bpf_cgroup")
    link = c.create("cgroup", lambda: link_create(c.prog(ProgType.CGROUP_SKB, at, 1), cg.fd, at, opts.Cgroup()))
    return Made(link, LinkType.CGROUP, c.prog(ProgType.CGROUP_SKB, at, 1))


def _on_pair(c: Ctx, feature: str, prog_type: ProgType, at: AttachType, ret: int, link_type: LinkType,
             builder: opts.LinkOpts, fixture: str | None = None) -> Made:
    if fixture is None:  # a plain veth: the contract sends no traffic (bpf_veth's routing costs ~25 `ip` calls)
        ns = c.fixture("bpf_netns")
        ns.add_veth("bpf0", "bpf1")
        ifindex = ns.ifindex("bpf1")
    else:  # netkit: both its hooks are reached through the primary device (the peer's ifindex is EACCES)
        pair = c.fixture(fixture)
        ifindex = pair.ifindex_a
        ns = pair.netns
    with ns:  # link_create resolves the ifindex in the calling thread's namespace
        link = c.create(feature, lambda: link_create(c.prog(prog_type, at, ret), ifindex, at, builder))
    return Made(link, link_type, c.prog(prog_type, at, ret))


def _xdp(c: Ctx) -> Made:
    return _on_pair(c, "xdp", ProgType.XDP, AttachType.XDP, 2, LinkType.XDP, opts.Xdp())


def _tcx(c: Ctx) -> Made:
    return _on_pair(c, "tcx", ProgType.SCHED_CLS, AttachType.TCX_INGRESS, 0, LinkType.TCX, opts.Tcx())


def _netkit(c: Ctx) -> Made:
    return _on_pair(c, "netkit", ProgType.SCHED_CLS, AttachType.NETKIT_PEER, 0, LinkType.NETKIT, opts.Netkit(),
                    "bpf_netkit")


def _netfilter(c: Ctx) -> Made:
    ns = c.fixture("bpf_netns")
    hook = opts.Netfilter(2, 1, priority=-128)  # NFPROTO_IPV4, NF_INET_LOCAL_IN
    with ns:  # netfilter links hook the calling thread's namespace
        link = c.create("netfilter", lambda: link_create(c.prog(ProgType.NETFILTER, AttachType.NETFILTER, 1),
                                                         None, AttachType.NETFILTER, hook))
    return Made(link, LinkType.NETFILTER)  # bpf_nf_link_update: EOPNOTSUPP


def _netns(c: Ctx, prog_type: ProgType, at: AttachType, ret: int) -> Made:
    ns = c.fixture("bpf_netns")
    link = c.create("netns", lambda: link_create(c.prog(prog_type, at, ret), ns.path, at))
    return Made(link, LinkType.NETNS, c.prog(prog_type, at, ret))


def _sk_lookup(c: Ctx) -> Made:
    return _netns(c, ProgType.SK_LOOKUP, AttachType.SK_LOOKUP, 1)


def _flow_dissector(c: Ctx) -> Made:
    return _netns(c, ProgType.FLOW_DISSECTOR, AttachType.FLOW_DISSECTOR, 0)


def _iter(c: Ctx) -> Made:
    first = c.obj("iter_dump", ["dump_task"]).program("dump_task")
    second = c.obj("iter_dump", ["dump_task"]).program("dump_task")
    c.stack.enter_context(first)
    c.stack.enter_context(second)
    link = c.create("iter", lambda: link_create(first, None, AttachType.TRACE_ITER))
    return Made(link, LinkType.ITER, second, detaches=False)


def _tracepoint(c: Ctx) -> Made:
    from bpflink.attach import tracepoint

    prog = c.prog(ProgType.TRACEPOINT)
    link = c.create("perf_event", lambda: tracepoint(prog, "syscalls:sys_enter_getppid", mode="link"))
    return Made(link, LinkType.PERF_EVENT, detaches=False)


def _uprobe(c: Ctx) -> Made:
    from bpflink.attach import uprobe

    prog = c.prog(ProgType.KPROBE)
    link = c.create("perf_event", lambda: uprobe(prog, "libc.so.6", "getppid", mode="link"))
    return Made(link, LinkType.PERF_EVENT, detaches=False)


def _kprobe(c: Ctx) -> Made:
    from bpflink.attach import kprobe

    prog = c.prog(ProgType.KPROBE)
    link = c.create("kprobe_perf_event", lambda: kprobe(prog, "security_task_getpgid", mode="link"))
    return Made(link, LinkType.PERF_EVENT, detaches=False)


def _uprobe_multi(c: Ctx) -> Made:
    from bpflink.attach import uprobe_multi

    prog = c.prog(ProgType.KPROBE, AttachType.TRACE_UPROBE_MULTI)
    link = c.create("uprobe_multi", lambda: uprobe_multi(prog, "libc.so.6", ["getppid"], mode="link"))
    return Made(link, LinkType.UPROBE_MULTI, detaches=False)


def _kprobe_multi(c: Ctx) -> Made:
    from bpflink.attach import kprobe_multi

    prog = c.prog(ProgType.KPROBE, AttachType.TRACE_KPROBE_MULTI)
    link = c.create("kprobe_multi", lambda: kprobe_multi(prog, ["security_task_getpgid"], mode="link"))
    return Made(link, LinkType.KPROBE_MULTI, detaches=False)


def _raw_tp(c: Ctx) -> Made:
    from bpflink.attach import raw_tracepoint

    prog = c.prog(ProgType.RAW_TRACEPOINT)
    link = c.create("tracing", lambda: raw_tracepoint(prog, "sys_enter"))
    return Made(link, LinkType.RAW_TRACEPOINT, detaches=False)


def _tp_btf_prog(c: Ctx) -> Program:
    try:
        prog: Program = c.stack.enter_context(c.obj("attach_sections", ["on_tp_btf"]).program("on_tp_btf"))
    except OSError as exc:
        unsupported("tracing", exc)
    return prog


def _tp_btf(c: Ctx) -> Made:
    prog = _tp_btf_prog(c)
    link = c.create("tp_btf_link", lambda: link_create(prog, None, AttachType.TRACE_RAW_TP))
    return Made(link, LinkType.RAW_TRACEPOINT, detaches=False)  # tp_btf links are raw_tp links to the kernel


def _tp_btf_raw_tp_open(c: Ctx) -> Made:
    """tp_btf through BPF_RAW_TRACEPOINT_OPEN (no name: the load-time target): the kernel makes a raw_tp link."""
    from bpflink.attach import raw_tracepoint

    prog = _tp_btf_prog(c)
    link = c.create("tracing", lambda: raw_tracepoint(prog, None))
    return Made(link, LinkType.RAW_TRACEPOINT, detaches=False)


def _fentry(c: Ctx) -> Made:
    from test_tracing import load_trampoline_prog

    prog = c.stack.enter_context(load_trampoline_prog(c.fixture("bpf_objects")["trace_tracing"], "fentry_getpgid"))
    link = c.create("tracing", lambda: link_create(prog, None, AttachType.TRACE_FENTRY))
    return Made(link, LinkType.TRACING, detaches=False)


def _sockmap(c: Ctx) -> Made:
    at = AttachType.SK_MSG_VERDICT
    sockmap = c.stack.enter_context(Map.create(MapType.SOCKMAP, key_size=4, value_size=4, max_entries=1))
    link = c.create("sockmap", lambda: link_create(c.prog(ProgType.SK_MSG, at, 1), sockmap, at))
    return Made(link, LinkType.SOCKMAP, c.prog(ProgType.SK_MSG, at, 1))


def _struct_ops(c: Ctx) -> Made:
    from test_struct_ops import ready_map

    try:
        obj = c.obj("struct_ops_cc")
    except OSError as exc:  # before 6.4 the kernel refuses struct_ops maps with BPF_F_LINK
        unsupported("struct_ops", exc)
    first = c.stack.enter_context(ready_map(obj, "cc_small", "cc_ssthresh"))
    second = c.stack.enter_context(ready_map(obj, "cc_big", "cc_ssthresh_big"))
    link = c.create("struct_ops", lambda: link_create(first, None, AttachType.STRUCT_OPS))
    return Made(link, LinkType.STRUCT_OPS, new_map=second)


KINDS: dict[str, Callable[[Ctx], Made]] = {
    "cgroup": _cgroup, "xdp": _xdp, "tcx": _tcx, "netkit": _netkit, "netfilter": _netfilter,
    "sk_lookup": _sk_lookup, "flow_dissector": _flow_dissector, "iter": _iter, "tracepoint": _tracepoint,
    "uprobe": _uprobe, "kprobe": _kprobe, "uprobe_multi": _uprobe_multi, "kprobe_multi": _kprobe_multi,
    "raw_tp": _raw_tp, "tp_btf": _tp_btf, "fentry": _fentry,
    "tp_btf_raw_tp_open": _tp_btf_raw_tp_open, "sockmap": _sockmap, "struct_ops": _struct_ops,
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_link_contract(kind: str, request: pytest.FixtureRequest, bpffs: Path, bpf_no_leaks: Any) -> None:
    with ExitStack() as stack:
        made = KINDS[kind](Ctx(request, stack))
        stack.callback(made.link.close)  # a failed check still closes it
        check_link_contract(made.link, made.link_type, bpffs, replacement=made.replacement, new_map=made.new_map,
                            detaches=made.detaches)


# --- links without a kernel link object -------------------------------------------------------------------------


def check_legacy_contract(link: Any, kind: str) -> None:
    """A ``LegacyLink``: what needs a kernel link refuses with ``NotSupportedError``; ``close()`` detaches."""
    from bpflink.attach import LegacyLink

    assert isinstance(link, LegacyLink) and link.legacy and link.kind == kind
    info = link.info()
    assert info.kind == kind and info.legacy and info.events
    for call in (lambda: link.id, lambda: link.prog_id, lambda: link.pin("/sys/fs/bpf/never"),
                 lambda: link.update(0), lambda: link.detach()):
        with pytest.raises(NotSupportedError) as refused:
            call()
        assert kind in str(refused.value)
    link.close()
    link.close()
    assert link.closed
    with pytest.raises(ValueError, match="closed"):
        link.info()


@pytest.mark.bpf_no_autoskip
def test_legacy_perf_event_ioctl_contract(bpf_no_leaks: Any) -> None:
    from bpflink.attach import tracepoint

    with Program.load(ProgType.TRACEPOINT, asm.return_imm(0)) as prog:
        link = tracepoint(prog, "syscalls:sys_enter_getppid", mode="legacy")
        try:
            check_legacy_contract(link, "perf_event_ioctl")
        finally:
            link.close()


@pytest.mark.bpf_no_autoskip
def test_legacy_prog_attach_contract(bpf_cgroup: Any, bpf_no_leaks: Any) -> None:
    from bpflink import query
    from bpflink.attach.legacy import prog_attach

    at = AttachType.CGROUP_INET_EGRESS
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=at) as prog:
        link = prog_attach(prog, bpf_cgroup.path, at)
        try:
            assert prog.id in [e.prog_id for e in query(bpf_cgroup.path, at).entries]
            check_legacy_contract(link, "prog_attach")
            assert prog.id not in [e.prog_id for e in query(bpf_cgroup.path, at).entries]  # close() detached it
        finally:
            link.close()
