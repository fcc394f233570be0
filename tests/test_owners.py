"""bpflink.owners / Link.owners on real links: a child process holding an fd and a bpffs pin are found;
``detach`` refuses while another process holds the link, ``detach --force`` names it and stops the link."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import bpflink
from bpflink import AttachType, Link, Map, Program, ProgType, asm, link_create
from bpflink.owners import bpffs_mounts, fd_holders, pin_index
from conftest import BPFFS, UDP_SEND, drain, run_in_cgroup, udp_port

EGRESS = AttachType.CGROUP_INET_EGRESS
SCRIPT = Path(sys.executable).parent / "bpflink"
HOLDER = "import sys, time; print('ready', flush=True); sys.stdin.readline()"


@pytest.fixture
def held(cgroup: Path) -> Iterator[tuple[Link, subprocess.Popen[str], int, Path, Map]]:
    """A counting egress link held by this process, by a child process (fd ``child_fd`` there) and a pin.
    The CLI counts this process (its parent) as the caller's own; the child is someone else's."""
    pin = BPFFS / f"bpflink-owners-{os.getpid()}-{time.monotonic_ns()}"
    with Map.array() as counter, Program.load(ProgType.CGROUP_SKB, asm.count_and_return(counter.fd, 1),
                                              expected_attach_type=EGRESS) as prog:
        link = link_create(prog, cgroup, EGRESS)
        link.pin(pin)
        child_fd = link.fd
        child = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True, pass_fds=(child_fd,))
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            yield link, child, child_fd, pin, counter
        finally:
            child.communicate("", timeout=30)
            link.close()
            if os.path.lexists(pin):
                os.unlink(pin)


def sent_counted(cgroup: Path, counter: Map) -> int:
    before = counter.lookup_int(0)
    sock, port = udp_port()
    with sock:
        assert run_in_cgroup(cgroup, UDP_SEND.format(n=3, port=port)).returncode == 0
        assert drain(sock) == 3
    return counter.lookup_int(0) - before


def test_owners_finds_the_child_and_the_pin(held: tuple[Link, subprocess.Popen[str], int, Path, Map],
                                           bpf_no_leaks: object) -> None:
    link, child, child_fd, pin, _ = held
    found = bpflink.owners(link.id)
    holders = {(h.pid, h.fd) for h in found.processes}
    assert (child.pid, child_fd) in holders and (os.getpid(), link.fd) in holders
    assert next(h.comm for h in found.processes if h.pid == child.pid) == Path(sys.executable).name[:15]
    assert found.pins == (str(pin),)
    assert [h.pid for h in found.others()] == [child.pid]
    assert link.owners() == found or link.owners().pins == found.pins
    assert str(BPFFS) in bpffs_mounts()
    # the system-wide indexes agree
    assert (child.pid, child_fd) in {(h.pid, h.fd) for h in fd_holders()[0][link.id]}
    assert pin_index()[0][link.id] == [str(pin)]
    with pytest.raises(ValueError):
        bpflink.owners(0)
    with pytest.raises(TypeError):
        bpflink.owners("1")  # type: ignore[arg-type]


def test_list_owners_json_and_table(held: tuple[Link, subprocess.Popen[str], int, Path, Map]) -> None:
    link, child, child_fd, pin, _ = held
    res = subprocess.run([str(SCRIPT), "list", "--owners", "--json"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    entry = next(d for d in json.loads(res.stdout) if d["id"] == link.id)
    assert entry["pinned"] == [str(pin)]
    assert {"pid": child.pid, "comm": Path(sys.executable).name[:15], "fd": child_fd} in entry["pids"]
    table = subprocess.run([str(SCRIPT), "list", "--owners"], capture_output=True, text=True, timeout=60).stdout
    row = next(ln for ln in table.splitlines() if ln.split()[0] == str(link.id))
    assert f"{child.pid}/" in row and f"/fd{child_fd}" in row and f"pinned={pin}" in row


def test_detach_refuses_then_force_names_holders_and_stops_the_link(
        cgroup: Path, held: tuple[Link, subprocess.Popen[str], int, Path, Map]) -> None:
    link, child, _, pin, counter = held
    assert sent_counted(cgroup, counter) == 3
    res = subprocess.run([str(SCRIPT), "detach", str(link.id)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "EBUSY" in res.stderr and f"pid {child.pid}" in res.stderr
    assert f"link {link.id}" in res.stderr and "--force" in res.stderr
    assert sent_counted(cgroup, counter) == 3  # refused: still attached
    res = subprocess.run([str(SCRIPT), "detach", "--force", str(link.id)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert f"detached link {link.id}" in res.stdout and f"pid {child.pid}" in res.stdout and str(pin) in res.stdout
    assert sent_counted(cgroup, counter) == 0  # the link no longer fires
    assert bpflink.query(cgroup, EGRESS).prog_ids == ()
    with Link.from_pin(pin) as again:  # still pinned (and held): detached, not destroyed
        assert again.id == link.id and again.info().cgroup_id == 0  # type: ignore[attr-defined]


def test_walks_are_robust_to_unreadable_and_vanishing_entries(tmp_path: Path) -> None:
    # a root that is not bpffs and a path that does not exist: skipped, never an error
    (tmp_path / "plain").write_text("x")
    found, skipped = pin_index(roots=[str(tmp_path), str(tmp_path / "gone")], max_entries=10)
    assert found == {} and skipped >= 1
    found, skipped = pin_index(roots=[str(tmp_path)], max_entries=0)
    assert found == {} and skipped == 1
