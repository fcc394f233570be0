"""Ordering on a cgroup hook (``opts.Cgroup(before=/after=/anchor=/expected_revision=)``, kernel >= 6.17) and
``bpflink.query`` on cgroups.

The order is proven by the programs: a process in the cgroup sends one UDP datagram (inside a private network
namespace) and each cgroup_skb egress program appends its letter to a map as it runs.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from bpflink import AttachType, HookEntry, HookQuery, Link, NotSupportedError, Object, Program, link_create, opts
from bpflink import query as hook_query
from bpflink.opts import Anchor, LinkId, ProgId
from honest_skips import unsupported
from netns import TEST_PORT, NetPair

EGRESS = AttachType.CGROUP_INET_EGRESS
ALLOW_MULTI = 2  # BPF_F_ALLOW_MULTI: how the kernel records every cgroup link

SEND_ONE = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(({src!r}, 0))
s.sendto(b"order", ({dst!r}, {port}))
"""


class Hook:
    """A cgroup with the net_cgroup programs, a namespace to send from, and the order the programs record."""

    def __init__(self, cgroup: Path, ns: NetPair, obj: Object, stack: ExitStack) -> None:
        self.cgroup, self.ns, self.obj, self.stack = cgroup, ns, obj, stack
        self.order = stack.enter_context(obj.map("order"))
        self.length = stack.enter_context(obj.map("order_len"))

    def progs(self, *names: str) -> list[Program]:
        return [self.stack.enter_context(self.obj.program(n)) for n in names]

    def attach(self, prog: Program, o: opts.Cgroup | None = None) -> Link:
        return self.stack.enter_context(link_create(prog, self.cgroup, EGRESS, o))

    def query(self) -> HookQuery:
        return hook_query(self.cgroup, EGRESS)

    def run_order(self) -> str:
        """Send one datagram from a process in the cgroup; the letters the programs wrote, in order."""
        self.length.update(0, 0)

        def enter() -> None:
            (self.cgroup / "cgroup.procs").write_text(str(os.getpid()))

        code = SEND_ONE.format(src=self.ns.addr_a, dst=self.ns.addr_b, port=TEST_PORT)
        res = subprocess.run(["ip", "netns", "exec", self.ns.name, sys.executable, "-c", code], preexec_fn=enter,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        return "".join(chr(self.order.lookup_int(i)) for i in range(self.length.lookup_int(0)))


@pytest.fixture
def hook(cgroup: Path, netns: NetPair, bpf_objects: dict[str, Path]) -> Iterator[Hook]:
    with Object.open(bpf_objects["net_cgroup"]) as obj, ExitStack() as stack:
        yield Hook(cgroup, netns, obj, stack)


def ordered_attach(hook: Hook, prog: Program, o: opts.Cgroup) -> Link:
    """Attach with ordering opts; an honest skip where the kernel or libbpf lacks cgroup ordering."""
    try:
        return hook.attach(prog, o)
    except NotSupportedError as exc:  # kernel < 6.17 (probed: no revision), or compiled against libbpf < 1.6
        unsupported("cgroup_mprog", exc, extra_reason=exc.reason if "libbpf < 1.6" in exc.reason else None)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        unsupported("cgroup_mprog", exc)


# Anchors are links here: the kernel (6.18) refuses a program anchor (fd or ProgId) for a program it holds through a
# link with EINVAL (see test_cgroup_program_anchor_for_a_linked_program_is_einval).
ORDER_CASES: dict[str, tuple[Callable[[Link, Link, Program, Program], opts.Cgroup], str]] = {
    "before_link": (lambda la, lb, a, b: opts.Cgroup(before=la), "CAB"),
    "after_link": (lambda la, lb, a, b: opts.Cgroup(after=la), "ACB"),
    "before_LinkId": (lambda la, lb, a, b: opts.Cgroup(before=LinkId(lb.id)), "ACB"),
    "anchor_head": (lambda la, lb, a, b: opts.Cgroup(anchor=Anchor.head()), "CAB"),
    "anchor_tail": (lambda la, lb, a, b: opts.Cgroup(anchor=Anchor.tail()), "ABC"),
    "after_link_expected_revision": (lambda la, lb, a, b: opts.Cgroup(after=la, expected_revision=3), "ACB"),
}


def test_cgroup_link_before_another_runs_first_and_query_agrees(hook: Hook) -> None:
    a, b = hook.progs("tag_a", "tag_b")
    empty = hook.query()
    la = hook.attach(a)
    assert hook.run_order() == "A"
    one = hook.query()
    ordered_attach(hook, b, opts.Cgroup(before=la))  # BPF_F_BEFORE | BPF_F_LINK relative to link A
    # kernels without cgroup ordering (skipped above) report no revision (0)
    assert empty == HookQuery(1, 0, ())  # nothing attached yet: revision 1
    assert one == HookQuery(2, ALLOW_MULTI, (HookEntry(a.id, 0, ALLOW_MULTI),))
    assert hook.run_order() == "BA"
    q = hook.query()
    assert q.revision == 3
    assert q.prog_ids == (b.id, a.id)  # execution order
    assert q.link_ids == (0, 0)  # the kernel reports no link ids for cgroups
    # not inside the namespace: `ip netns exec` remounts /sys, which hides the cgroup2 mount
    tree = json.loads(subprocess.run(["bpftool", "-j", "cgroup", "tree", str(hook.cgroup)], check=True,
                                     capture_output=True, text=True, timeout=60).stdout)
    assert [p["id"] for entry in tree for p in entry["programs"] if p["attach_type"] == "cgroup_inet_egress"] \
        == list(q.prog_ids)
    la.close()
    assert hook.run_order() == "B"
    assert hook.query().revision == 4  # a cgroup keeps counting when links go


@pytest.mark.parametrize("case", list(ORDER_CASES))
def test_cgroup_order_is_what_the_anchor_asks(hook: Hook, case: str) -> None:
    make_opts, expected = ORDER_CASES[case]
    a, b, c = hook.progs("tag_a", "tag_b", "tag_c")
    la, lb = hook.attach(a), hook.attach(b)  # plain multi-attach appends
    assert hook.run_order() == "AB"
    ordered_attach(hook, c, make_opts(la, lb, a, b))
    assert hook.run_order() == expected
    ids = {"A": a.id, "B": b.id, "C": c.id}
    assert hook.query().prog_ids == tuple(ids[x] for x in expected)
    assert hook.query().revision == 4


def test_cgroup_stale_expected_revision_is_estale(hook: Hook) -> None:
    a, b = hook.progs("tag_a", "tag_b")
    la = hook.attach(a)
    stale = 1  # the revision of the empty hook, before A came
    with pytest.raises(OSError) as exc:
        ordered_attach(hook, b, opts.Cgroup(before=la, expected_revision=stale))
    assert exc.value.errno == errno.ESTALE and "query" in str(exc.value)
    assert hook.run_order() == "A"  # the refused link changed nothing
    ordered_attach(hook, b, opts.Cgroup(before=la, expected_revision=hook.query().revision))
    assert hook.run_order() == "BA"


def test_cgroup_anchor_not_on_the_hook_is_enoent(hook: Hook) -> None:
    a, b, c = hook.progs("tag_a", "tag_b", "tag_c")
    hook.attach(a)
    child = hook.cgroup / "child"
    child.mkdir()
    hook.stack.callback(child.rmdir)  # runs after the link below is closed
    elsewhere = hook.stack.enter_context(link_create(b, child, EGRESS))  # a link, but on another cgroup
    for o in (opts.Cgroup(after=elsewhere), opts.Cgroup(before=LinkId(elsewhere.id))):
        with pytest.raises(FileNotFoundError) as exc:
            ordered_attach(hook, c, o)
        assert exc.value.errno == errno.ENOENT and "anchor" in str(exc.value)
    assert hook.run_order() == "A"


def test_cgroup_program_anchor_for_a_linked_program_is_einval(hook: Hook) -> None:
    a, b, c = hook.progs("tag_a", "tag_b", "tag_c")
    la = hook.attach(a)
    hook.attach(b)
    ordered_attach(hook, c, opts.Cgroup(after=la)).close()  # the kernel orders cgroup links at all (else: skip)
    for o in (opts.Cgroup(before=b), opts.Cgroup(after=ProgId(a.id))):
        with pytest.raises(OSError) as exc:
            hook.attach(c, o)
        assert exc.value.errno == errno.EINVAL and "by link" in str(exc.value)
    assert hook.run_order() == "AB"
    assert hook.query().revision == 5  # A, B, C in and out; the refused ones changed nothing
