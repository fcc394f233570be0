"""Soak: many link create/close (and update) cycles leave the fd table, RSS and the kernel's links unchanged.

Counts: cgroup 100,000 cycles always (a keeper link of the same attach type on a sibling cgroup keeps the
static key on, so a cycle is the ~6 us syscall pair rather than ~130 us of kernel text patching). tcx and
uprobe_multi wait for RCU grace periods (~16-25 ms and ~20-60 ms per cycle here), so the default run does a few
hundred cycles and ``BPFLINK_SOAK=full`` does 10,000 of each (about 4 and 8 minutes).

RSS tolerance (``RSS_SLACK``, 1 MiB): after a warm-up that fills the allocator's pools and caches, a leak of
a single 16-byte object per cycle would grow RSS by 1.6 MB over 100,000 cycles; 1 MiB sits above the noise of
pymalloc arena reuse (256 KiB arenas) and below that. The per-cycle bound scales it for the smaller counts.
"""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bpflink import AttachType, Map, Program, ProgType, asm, link_create, lowlevel
from bpflink.errors import check
from bpflink.info import raw_link_info
from conftest import CGROUP2, open_fds, send_from
from privnet import PrivateNetns

pytestmark = pytest.mark.slow

FULL = os.environ.get("BPFLINK_SOAK", "") == "full"
CGROUP_CYCLES = 100_000
SLOW_CYCLES = 10_000 if FULL else 300
RSS_SLACK = 1 << 20
EGRESS = AttachType.CGROUP_INET_EGRESS


# --- measuring ----------------------------------------------------------------------------------------------
def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def kernel_links_of(prog_ids: set[int]) -> int:
    """How many links the kernel holds whose program is one of ``prog_ids`` (walks every link id).

    Other processes may create links meanwhile; counting only our programs' links keeps the check exact.
    """
    count, cur = 0, 0
    nxt = lowlevel.ffi.new("__u32 *")
    while lowlevel.bpf_link_get_next_id(cur, nxt) == 0:
        cur = int(nxt[0])
        fd = lowlevel.bpf_link_get_fd_by_id(cur)
        if fd < 0:  # vanished in between
            continue
        try:
            if int(raw_link_info(fd).prog_id) in prog_ids:
                count += 1
        finally:
            os.close(fd)
    return count


@dataclass
class Snapshot:
    fds: int
    rss: int
    links: int


def snapshot(prog_ids: set[int]) -> Snapshot:
    gc.collect()
    return Snapshot(open_fds(), rss(), kernel_links_of(prog_ids))


def soak(cycle: Callable[[], None], n: int, prog_ids: set[int], warmup: int = 1000) -> tuple[Snapshot, Snapshot]:
    for _ in range(min(warmup, n)):
        cycle()
    before = snapshot(prog_ids)
    for _ in range(n):
        cycle()
    return before, snapshot(prog_ids)


def assert_steady(before: Snapshot, after: Snapshot, n: int) -> None:
    assert after.fds == before.fds, f"fd leak: {before.fds} -> {after.fds} open fds after {n} cycles"
    assert after.links == before.links, f"kernel link leak: {before.links} -> {after.links} links of our programs"
    grown = after.rss - before.rss
    print(f"{n} cycles: fds {before.fds}->{after.fds}, links {before.links}->{after.links}, "
          f"RSS {before.rss / 1024:.0f}->{after.rss / 1024:.0f} KiB ({grown:+d} B)")
    assert grown <= RSS_SLACK, f"RSS grew {grown} bytes over {n} cycles ({grown / n:.1f} B/cycle)"


@contextmanager
def counting_warnings() -> Iterator[list[int]]:
    """Count ResourceWarnings without storing them (100,000 recorded warnings would themselves grow RSS)."""
    seen = [0]

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, ResourceWarning):
            seen[0] += 1

    with warnings.catch_warnings():
        warnings.simplefilter("always")  # "always" keeps nothing in __warningregistry__
        warnings.showwarning = show
        yield seen


# --- cgroup -------------------------------------------------------------------------------------------------
@pytest.fixture
def sibling_cgroup() -> Iterator[Path]:
    path = CGROUP2 / f"bpflink-soak-keeper-{os.getpid()}"
    path.mkdir()
    try:
        yield path
    finally:
        path.rmdir()


def assert_cgroup_link_fires(cgroup: Path, prog_ids: set[int]) -> None:
    """After the soak a fresh link still attaches and drops, and closing it restores traffic."""
    with Map.array() as counter, Program.load(ProgType.CGROUP_SKB, asm.count_and_return(counter.fd, 0),
                                              expected_attach_type=EGRESS) as drop:
        with link_create(drop, cgroup, EGRESS):
            assert send_from(cgroup) == 0
        assert counter.lookup_int(0) >= 5
    assert send_from(cgroup) == 5


@pytest.mark.parametrize("mode", ["close", "gc"])
def test_cgroup_create_close_100k(cgroup: Path, sibling_cgroup: Path, mode: str) -> None:
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS) as prog, \
            link_create(prog, sibling_cgroup, EGRESS):
        ids = {prog.id}
        cg = os.open(cgroup, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if mode == "close":
                def cycle() -> None:
                    link_create(prog, cg, EGRESS).close()
                before, after = soak(cycle, CGROUP_CYCLES, ids)
            else:
                def cycle() -> None:
                    link_create(prog, cg, EGRESS)  # dropped at once: refcount GC closes it, with a warning
                with counting_warnings() as seen:
                    before, after = soak(cycle, CGROUP_CYCLES, ids)
                assert seen[0] == CGROUP_CYCLES + 1000, "every GC-closed link must warn (ResourceWarning)"
        finally:
            os.close(cg)
        assert before.links == 1  # the keeper
        assert_steady(before, after, CGROUP_CYCLES)
    assert_cgroup_link_fires(cgroup, ids)


def test_cgroup_update_loop_100k(cgroup: Path) -> None:
    with Map.array(2) as counter, \
            Program.load(ProgType.CGROUP_SKB, asm.count_and_return(counter.fd, 0), expected_attach_type=EGRESS) as a, \
            Program.load(ProgType.CGROUP_SKB, asm.count_and_return(counter.fd, 1, key=1),
                         expected_attach_type=EGRESS) as b, \
            link_create(a, cgroup, EGRESS) as link:
        progs = [a, b]
        state = [0]

        def cycle() -> None:
            state[0] ^= 1
            link.update(progs[state[0]], old_prog=progs[state[0] ^ 1])

        before, after = soak(cycle, CGROUP_CYCLES, {a.id, b.id})
        assert_steady(before, after, CGROUP_CYCLES)
        assert before.links == after.links == 1
        # 101,000 swaps (warm-up included): an even number, so the dropping program runs again
        assert link.prog_id == a.id
        assert send_from(cgroup) == 0 and counter.lookup_int(0) >= 5
        link.update(b, old_prog=a)
        assert send_from(cgroup) == 5 and counter.lookup_int(1) >= 5


# --- tcx on a veth in a private netns ----------------------------------------------------------------------
TCX_PASS = 0


def test_tcx_create_close_and_update_soak() -> None:
    with PrivateNetns("soak") as ns, Map.array() as counter, \
            Program.load(ProgType.SCHED_CLS, asm.return_imm(TCX_PASS),
                         expected_attach_type=AttachType.TCX_EGRESS) as plain, \
            Program.load(ProgType.SCHED_CLS, asm.count_and_return(counter.fd, TCX_PASS),
                         expected_attach_type=AttachType.TCX_EGRESS) as counting:
        ifindex = ns.ifindex("veth0")
        ids = {plain.id, counting.id}

        def cycle() -> None:
            ns.call(lambda: link_create(plain, ifindex, AttachType.TCX_EGRESS).close())

        before, after = soak(cycle, SLOW_CYCLES, ids, warmup=50)
        assert_steady(before, after, SLOW_CYCLES)
        assert after.links == 0

        def gc_cycle() -> None:
            ns.call(lambda: link_create(plain, ifindex, AttachType.TCX_EGRESS) and None)

        with counting_warnings() as seen:
            before, after = soak(gc_cycle, SLOW_CYCLES // 3, ids, warmup=20)
        assert seen[0] == SLOW_CYCLES // 3 + 20
        assert_steady(before, after, SLOW_CYCLES // 3)

        link = ns.call(link_create, plain, ifindex, AttachType.TCX_EGRESS)
        with link:
            progs = [plain, counting]
            state = [0]

            def update_cycle() -> None:
                state[0] ^= 1
                link.update(progs[state[0]])

            before, after = soak(update_cycle, SLOW_CYCLES // 3 * 2, ids, warmup=20)  # even: plain runs now
            assert_steady(before, after, SLOW_CYCLES // 3 * 2)
            assert after.links == 1 and link.prog_id == plain.id
            link.update(counting)
            # a static neighbour and a /32 route make 10.77.0.3 leave through veth0 without ARP
            ns.ip("neigh", "add", "10.77.0.3", "lladdr", "02:00:00:00:00:03", "dev", "veth0")
            ns.ip("route", "add", "10.77.0.3/32", "dev", "veth0")

            def send() -> None:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    for _ in range(5):
                        s.sendto(b"x", ("10.77.0.3", 9))

            ns.call(send)
            assert counter.lookup_int(0) >= 5


# --- uprobe_multi (raw opts through lowlevel until opts.UprobeMulti lands) ---------------------------------
TARGET_C = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) int bpflink_soak_target(int x) { __asm__ volatile(""); return x + 1; }
int main(int argc, char **argv) { int n = atoi(argv[1]), s = 0; for (int i = 0; i < n; i++) s = bpflink_soak_target(s);
  printf("%d\n", s); return 0; }
"""


def file_offset(binary: Path, symbol: str) -> int:
    """A function's file offset: symbol value - section address + section file offset (``readelf``)."""
    syms = subprocess.run(["readelf", "-sW", str(binary)], check=True, capture_output=True, text=True).stdout
    value, shndx = next((int(f[1], 16), int(f[6])) for f in (line.split() for line in syms.splitlines())
                        if len(f) >= 8 and f[7] == symbol)
    secs = subprocess.run(["readelf", "-SW", str(binary)], check=True, capture_output=True, text=True).stdout
    for line in secs.splitlines():
        line = line.replace("[ ", "[")
        f = line.split()
        if f and f[0] == f"[{shndx}]":
            return value - int(f[3], 16) + int(f[4], 16)
    raise LookupError(f"section {shndx} of {binary}")


@pytest.fixture(scope="module")
def uprobe_target(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    d = tmp_path_factory.mktemp("uprobe")
    (d / "target.c").write_text(TARGET_C)
    subprocess.run(["gcc", "-O1", "-o", str(d / "target"), str(d / "target.c")], check=True)
    return d / "target", file_offset(d / "target", "bpflink_soak_target")


def uprobe_multi_raw(prog: Program, path: bytes, offsets: Any) -> int:
    opts = lowlevel.new_link_create_opts()
    opts.uprobe_multi.path = path_c = lowlevel.ffi.new("char[]", path)
    opts.uprobe_multi.offsets = offsets
    opts.uprobe_multi.cnt = len(offsets)
    fd = lowlevel.bpf_link_create(prog.fd, 0, int(AttachType.TRACE_UPROBE_MULTI), opts)
    del path_c
    return fd


def test_uprobe_multi_create_close_soak(uprobe_target: tuple[Path, int]) -> None:
    binary, offset = uprobe_target
    offsets = lowlevel.ffi.new("unsigned long[]", [offset])
    with Map.array() as counter, Program.load(ProgType.KPROBE, asm.count_and_return(counter.fd, 0),
                                              expected_attach_type=AttachType.TRACE_UPROBE_MULTI) as prog:
        def cycle() -> None:
            fd = check(uprobe_multi_raw(prog, bytes(binary), offsets), "uprobe_multi", family="uprobe_multi")
            os.close(fd)

        before, after = soak(cycle, SLOW_CYCLES, {prog.id}, warmup=20)
        assert_steady(before, after, SLOW_CYCLES)
        assert after.links == 0
        fd = check(uprobe_multi_raw(prog, bytes(binary), offsets), "uprobe_multi", family="uprobe_multi")
        try:
            out = subprocess.run([str(binary), "7"], check=True, capture_output=True, text=True).stdout
            assert out.strip() == "7"
            assert counter.lookup_int(0) == 7
        finally:
            os.close(fd)
