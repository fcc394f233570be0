"""Threads and processes: concurrent link churn, the GIL released around C calls, fork, interpreter shutdown."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bpflink import AttachType, Link, Map, Program, ProgType, asm, link_create, lowlevel
from bpflink import links as bpflink_links
from conftest import CGROUP2, send_from
from privnet import PrivateNetns

EGRESS = AttachType.CGROUP_INET_EGRESS


def test_eight_threads_create_update_close_cgroup_links(cgroup: Path) -> None:
    """8 threads, each on its own child cgroup, churn links; every link they leave open still fires."""
    children = [cgroup / f"t{i}" for i in range(8)]
    for child in children:
        child.mkdir()
    errors: list[BaseException] = []
    survivors: list[Link] = []
    lock = threading.Lock()
    try:
        with Map.array(2) as counter, \
                Program.load(ProgType.CGROUP_SKB, asm.count_and_return(counter.fd, 1),
                             expected_attach_type=EGRESS) as passing, \
                Program.load(ProgType.CGROUP_SKB, asm.count_and_return(counter.fd, 0, key=1),
                             expected_attach_type=EGRESS) as dropping:
            start = threading.Barrier(8)

            def worker(child: Path) -> None:
                try:
                    fd = os.open(child, os.O_RDONLY | os.O_CLOEXEC)
                    start.wait()
                    for i in range(500):
                        link = link_create(passing, fd, EGRESS)
                        link.update(dropping, old_prog=passing)
                        assert link.prog_id == dropping.id
                        if i < 499:
                            link.close()
                        else:
                            with lock:
                                survivors.append(link)
                    os.close(fd)
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=worker, args=(c,)) for c in children]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            assert not errors, errors
            assert len(survivors) == 8
            for child in children:
                assert send_from(child) == 0
            assert counter.lookup_int(1) >= 40
            for link in survivors:
                link.close()
            assert send_from(children[0]) == 5
    finally:
        for child in children:
            child.rmdir()


def test_gil_is_released_during_the_c_call() -> None:
    """A Python thread keeps running while another blocks ~10 ms inside ``bpf_link_create`` (tcx waits for RCU).

    With the GIL held through the call, the ticker could not record a single tick inside it. The proof is the
    ticks inside each long call, not their spacing: the scheduler may pause the ticker for a few ms when another
    job (a QEMU guest beside the suite) holds the other CPU.
    """
    with PrivateNetns("gil") as ns, Program.load(ProgType.SCHED_CLS, asm.return_imm(0),
                                                 expected_attach_type=AttachType.TCX_INGRESS) as prog:
        ifindex = ns.ifindex("veth0")
        ticks: list[float] = []
        stop = threading.Event()

        def ticker() -> None:
            while not stop.is_set():
                ticks.append(time.perf_counter())
                time.sleep(0)  # a bare yield point; no timed sleep to stretch gaps

        windows: list[tuple[float, float]] = []

        def create() -> None:
            for _ in range(10):
                t0 = time.perf_counter()
                fd = lowlevel.bpf_link_create(prog.fd, ifindex, int(AttachType.TCX_INGRESS), None)
                t1 = time.perf_counter()
                assert fd >= 0, fd
                windows.append((t0, t1))
                os.close(fd)

        t = threading.Thread(target=ticker)
        t.start()
        try:
            ns.call(create)
        finally:
            stop.set()
            t.join()
        long_calls = [(a, b) for a, b in windows if b - a > 0.004]
        assert long_calls, f"no tcx create took > 4 ms here ({windows}); the test cannot show anything"
        for a, b in long_calls:
            inside = [x for x in ticks if a < x < b]
            gaps = [y - x for x, y in zip([a, *inside], [*inside, b])]
            assert len(inside) >= 10, \
                f"ticker stalled during a {1e3 * (b - a):.1f} ms C call: {len(inside)} ticks, max gap " \
                f"{1e3 * max(gaps):.1f} ms"


def test_link_after_fork(cgroup: Path) -> None:
    """The child's Link is a copy of the fd: close() there leaves the parent's link attached; info() works."""
    with Map.array() as counter, Program.load(ProgType.CGROUP_SKB, asm.count_and_return(counter.fd, 0),
                                              expected_attach_type=EGRESS) as prog:
        link = link_create(prog, cgroup, EGRESS)
        link_id = link.id
        pid = os.fork()
        if pid == 0:  # child: report through the exit status only
            code = 1
            try:
                if link.info().id == link_id and link.prog_id == prog.id:
                    link.close()
                    code = 0 if link.closed else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert send_from(cgroup) == 0  # the parent's link still drops
        # detach is on the shared kernel object: done in a child, it detaches the parent's link too
        pid = os.fork()
        if pid == 0:
            try:
                link.detach()
                link.close()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        assert send_from(cgroup) == 5
        assert link.info().id == link_id
        link.close()


SHUTDOWN = """
import os, sys, warnings
from bpflink import AttachType, Program, ProgType, asm, link_create
warnings.simplefilter("always")
E = AttachType.CGROUP_INET_EGRESS
PROG = Program.load(ProgType.CGROUP_SKB, asm.return_imm(0), expected_attach_type=E)
LINK = link_create(PROG, sys.argv[1], E)
print(LINK.id, flush=True)
class Late:
    def __del__(self):
        LINK.close()  # a finalizer that runs while the interpreter is tearing down
LATE = Late()
"""


@pytest.mark.parametrize("how", ["global", "finalizer"])
def test_shutdown_with_a_live_link_does_not_raise(cgroup: Path, how: str) -> None:
    code = SHUTDOWN if how == "finalizer" else SHUTDOWN.split("class Late")[0]
    res = subprocess.run([sys.executable, "-c", code, str(cgroup)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr, res.stderr
    link_id = int(res.stdout)
    with pytest.raises(FileNotFoundError):  # the process's exit released the link
        Link.from_id(link_id)
    assert send_from(cgroup) == 5
    assert CGROUP2 in cgroup.parents


def test_links_listing_while_another_thread_churns_links(cgroup: Path) -> None:
    """``links()`` racing link creation never raises (ids not yet settled answer EAGAIN, released ones ENOENT:
    both skipped) and always sees the link that stays alive the whole time."""
    stop = threading.Event()
    errors: list[BaseException] = []
    ingress = AttachType.CGROUP_INET_INGRESS
    # The keeper sits on another attach type so that each churned egress link is the only one of its type and
    # pays the static-key patching between id reservation and settling: a wide window for the race.
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS) as prog, \
            Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=ingress) as keep_prog, \
            link_create(keep_prog, cgroup, ingress) as keeper:
        child = cgroup / "churn"
        child.mkdir()
        fd = os.open(child, os.O_RDONLY | os.O_CLOEXEC)

        def churn() -> None:
            try:
                while not stop.is_set():
                    link_create(prog, fd, EGRESS).close()
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=churn)
        thread.start()
        try:
            for _ in range(300):
                assert keeper.id in {info.id for info in bpflink_links()}
        finally:
            stop.set()
            thread.join()
            os.close(fd)
            child.rmdir()
    assert not errors, errors
