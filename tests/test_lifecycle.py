"""Link.ensure / ensure_group on real cgroup hooks: idempotence, races between agents, restarts without a gap,
and a crash at every step (agents are child processes; the crash is a SIGKILL at a step of ensure())."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bpflink
from bpflink import AttachType, Link, Map, Program, ProgType, asm, link_create, lowlevel
from bpflink.lifecycle import EnsureConflictError, PinMismatchError, Want, ensure_group
from conftest import BPFFS, UDP_SEND, drain, run_in_cgroup, udp_port

EGRESS = AttachType.CGROUP_INET_EGRESS

AGENT = r'''
import json, os, signal, sys
from bpflink import AttachType, Link, Map, Program, ProgType, asm, lowlevel as ll
from bpflink import lifecycle
cfg = json.loads(sys.argv[1])
def step(name):
    if name == cfg.get("crash_at"):
        os.kill(os.getpid(), signal.SIGKILL)
    if name == cfg.get("pause_at"):
        print("at " + name, flush=True)
        sys.stdin.readline()
lifecycle._step = step
map_fd = ll.bpf_obj_get(cfg["map"].encode()) if cfg.get("map") else -1
insns = asm.count_and_return(map_fd, 1, key=cfg["key"]) if map_fd >= 0 else asm.return_imm(1)
prog = Program.load(ProgType.CGROUP_SKB, insns, expected_attach_type=AttachType.CGROUP_INET_EGRESS,
                    name=cfg["name"])
try:
    link, what = Link.ensure(cfg["pin"], prog, cfg["cgroup"], "cgroup_inet_egress")
    print(json.dumps({"what": what, "prog": prog.id, "link": link.id}), flush=True)
except OSError as exc:
    print(json.dumps({"error": type(exc).__name__, "errno": exc.errno, "msg": str(exc)}), flush=True)
'''


def agent(**cfg: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", AGENT, json.dumps(cfg)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    data: dict[str, Any] = json.loads(out.splitlines()[-1])
    return data


def attached(cgroup: Path) -> tuple[int, ...]:
    return bpflink.query(cgroup, EGRESS).prog_ids


def settled(cgroup: Path, n: int) -> tuple[int, ...]:
    """The programs at the hook once a killed child's link is released (the kernel may need a moment)."""
    deadline = time.monotonic() + 5
    while len(ids := attached(cgroup)) != n and time.monotonic() < deadline:
        time.sleep(0.02)
    return ids


@pytest.fixture
def pin() -> Iterator[Path]:
    path = BPFFS / f"bpflink-ensure-{os.getpid()}-{time.monotonic_ns()}"
    yield path
    if os.path.lexists(path):
        os.unlink(path)


@pytest.fixture
def pinned_counter() -> Iterator[tuple[Map, str]]:
    """A 2-slot counter map pinned so agent processes can use it."""
    path = str(BPFFS / f"bpflink-ensure-map-{os.getpid()}-{time.monotonic_ns()}")
    with Map.array(2) as counter:
        assert lowlevel.bpf_obj_pin(counter.fd, path.encode()) == 0
        try:
            yield counter, path
        finally:
            os.unlink(path)


def count_prog(counter: Map, key: int, name: str) -> Program:
    return Program.load(ProgType.CGROUP_SKB, asm.count_and_return(counter.fd, 1, key=key),
                        expected_attach_type=EGRESS, name=name)


def sent_and_counted(cgroup: Path, counter: Map, key: int, n: int = 3) -> int:
    before = counter.lookup_int(key)
    sock, port = udp_port()
    with sock:
        assert run_in_cgroup(cgroup, UDP_SEND.format(n=n, port=port)).returncode == 0
        assert drain(sock) == n
    return counter.lookup_int(key) - before


def test_ensure_creates_keeps_and_swaps(cgroup: Path, pin: Path, bpf_no_leaks: Any) -> None:
    bpf_no_leaks.own(paths=[pin])  # the pin is the point: the fixture removes it
    with Map.array(2) as counter, count_prog(counter, 0, "v1") as v1, count_prog(counter, 0, "v1") as v1_again, \
            count_prog(counter, 1, "v2") as v2:
        link, what = Link.ensure(pin, v1, cgroup, EGRESS)
        with link:
            assert what == "created" and link.pinned_path == str(pin)
            first_id = link.id
        # the pin alone keeps it: the hook runs v1
        assert attached(cgroup) == (v1.id,) and sent_and_counted(cgroup, counter, 0) == 3
        link, what = Link.ensure(pin, v1, cgroup, EGRESS)
        with link:
            assert (what, link.id) == ("unchanged", first_id)
        # a reload of the same code over the same maps is the same program: no swap
        link, what = Link.ensure(str(pin), v1_again, str(cgroup), "cgroup_inet_egress")
        with link:
            assert what == "unchanged" and link.prog_id == v1.id
        link, what = Link.ensure(pin, v2, cgroup, EGRESS)
        with link:
            assert (what, link.id, link.prog_id) == ("updated", first_id, v2.id)
        assert attached(cgroup) == (v2.id,) and sent_and_counted(cgroup, counter, 1) == 3
        assert sent_and_counted(cgroup, counter, 0) == 0


def test_pin_holding_something_else_is_refused_and_left_alone(cgroup: Path, tmp_path: Path, pin: Path) -> None:
    other = Path(str(cgroup) + "-other")
    other.mkdir()
    try:
        with Map.array() as m, Program.load(ProgType.CGROUP_SKB, asm.return_imm(1),
                                            expected_attach_type=EGRESS) as prog:
            assert lowlevel.bpf_obj_pin(m.fd, str(pin).encode()) == 0
            with pytest.raises(PinMismatchError, match="a map, not a link"):
                Link.ensure(pin, prog, cgroup, EGRESS)
            os.unlink(pin)
            cases = [(link_create(prog, cgroup, AttachType.CGROUP_INET_INGRESS), "attach type cgroup_inet_ingress"),
                     (link_create(prog, other, EGRESS), "another target")]
            for held, needle in cases:
                with held:
                    held.pin(pin)
                    with pytest.raises(PinMismatchError, match=needle) as exc:
                        Link.ensure(pin, prog, cgroup, EGRESS)
                    assert exc.value.errno == 17 and "nothing was changed" in str(exc.value)
                    with Link.from_pin(pin) as still:
                        assert still.id == held.id
                    os.unlink(pin)
            assert attached(cgroup) == ()
            with link_create(prog, cgroup, EGRESS) as gone:
                gone.pin(pin)
                gone.detach()
                with pytest.raises(PinMismatchError, match="detached"):
                    Link.ensure(pin, prog, cgroup, EGRESS)
        with pytest.raises(ValueError, match="NUL"):
            Link.ensure(str(pin) + "\0x", 0, cgroup, EGRESS)
    finally:
        other.rmdir()


def _overlapping(cgroup: Path, pin: Path, names: tuple[str, str]) -> list[dict[str, Any]]:
    """Two agents that both read the pin before either writes (each pauses after its read)."""
    procs = [agent(pin=str(pin), cgroup=str(cgroup), name=n, key=0, pause_at="read") for n in names]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "at read"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    return [result(p) for p in procs]


def test_two_agents_racing_to_create_one_wins_the_other_is_told(cgroup: Path, pin: Path) -> None:
    outcomes = _overlapping(cgroup, pin, ("agent_a", "agent_b"))
    won = [o for o in outcomes if "what" in o]
    lost = [o for o in outcomes if "error" in o]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert won[0]["what"] == "created"
    assert lost[0]["error"] == "EnsureConflictError" and lost[0]["errno"] == 17
    assert f"link {won[0]['link']}" in lost[0]["msg"] and "lost a race" in lost[0]["msg"]
    with Link.from_pin(pin) as link:
        assert link.id == won[0]["link"]
        assert settled(cgroup, 1) == (link.prog_id,)


def test_two_agents_racing_to_update_one_wins_the_other_is_told(cgroup: Path, pin: Path) -> None:
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS, name="old") as old:
        link, _ = Link.ensure(pin, old, cgroup, EGRESS)
        link.close()
    outcomes = _overlapping(cgroup, pin, ("agent_a", "agent_b"))
    won = [o for o in outcomes if "what" in o]
    lost = [o for o in outcomes if "error" in o]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert won[0]["what"] == "updated" and lost[0]["errno"] == 1  # EPERM: BPF_F_REPLACE's old program is gone
    assert f"swapped it to prog {won[0]['prog']}" in lost[0]["msg"]
    assert attached(cgroup) == (won[0]["prog"],)


def test_restarted_agent_swaps_with_no_gap_under_traffic(cgroup: Path, pin: Path,
                                                         pinned_counter: tuple[Map, str]) -> None:
    counter, map_path = pinned_counter
    assert result(agent(pin=str(pin), cgroup=str(cgroup), name="v1", key=0, map=map_path))["what"] == "created"
    sock, port = udp_port()
    with sock:
        # sends until told to stop (stdin closes), so the restart happens in the middle of the traffic
        sender = (f"import os, select, socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nsent = 0\n"
                  f"while not select.select([0], [], [], 0)[0]:\n"
                  f"    for _ in range(50):\n"
                  f"        try:\n            s.sendto(b'x', ('127.0.0.1', {port})); sent += 1\n"
                  f"        except OSError:\n            pass\n"
                  f"print(sent)\n")
        traffic = subprocess.Popen([sys.executable, "-c", sender], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   text=True, preexec_fn=lambda: (cgroup / "cgroup.procs").write_text(str(os.getpid())))
        while counter.lookup_int(0) < 100 and traffic.poll() is None:  # traffic is flowing through v1
            time.sleep(0.001)
        restarted = result(agent(pin=str(pin), cgroup=str(cgroup), name="v2", key=1, map=map_path))
        swapped_at = counter.lookup_int(1)
        while counter.lookup_int(1) < swapped_at + 100 and traffic.poll() is None:  # and now through v2
            time.sleep(0.001)
        out, _ = traffic.communicate("", timeout=60)
        sent = int(out)
    assert restarted["what"] == "updated"
    v1, v2 = counter.lookup_int(0), counter.lookup_int(1)
    # every packet ran through exactly one of the two programs: no window without one, never both
    assert v1 + v2 == sent, (v1, v2, sent)
    assert v1 >= 100 and v2 >= 100, (v1, v2)
    assert attached(cgroup) == (restarted["prog"],)


@pytest.mark.parametrize(("pre", "crash_at", "after"), [
    (False, "read", 0), (False, "created", 0), (False, "pinned", 1),
    (True, "read", "old"), (True, "updated", "new"),
])
def test_a_crash_at_each_step_leaves_old_or_new_attached(cgroup: Path, pin: Path, pre: bool, crash_at: str,
                                                         after: object) -> None:
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS, name="old") as old:
        if pre:
            Link.ensure(pin, old, cgroup, EGRESS)[0].close()
        proc = agent(pin=str(pin), cgroup=str(cgroup), name="new", key=0, crash_at=crash_at)
        proc.communicate(timeout=60)
        assert proc.returncode == -9
        if after == "old":
            assert settled(cgroup, 1) == (old.id,)
        elif after == "new":
            (new_id,) = settled(cgroup, 1)
            assert new_id != old.id
            with Link.from_pin(pin) as link:
                assert link.prog_id == new_id
        else:
            assert len(settled(cgroup, after)) == after  # type: ignore[arg-type]
            assert pin.exists() == (after == 1)
        # the next start converges: one program, the pinned link's
        final = result(agent(pin=str(pin), cgroup=str(cgroup), name="next", key=0))
        assert final["what"] in ("created", "updated")
        assert settled(cgroup, 1) == (final["prog"],)


def test_group_dry_run_then_apply_and_prune(cgroup: Path, tmp_path: Path) -> None:
    group = BPFFS / f"bpflink-group-{os.getpid()}"
    try:
        with Map.array(2) as counter, count_prog(counter, 0, "eg") as eg, count_prog(counter, 1, "ing") as ing, \
                count_prog(counter, 1, "eg2") as eg2:
            wants = [Want("egress", eg, cgroup, EGRESS), Want("ingress", ing, cgroup, "cgroup_inet_ingress")]
            plan = ensure_group(group, wants, dry_run=True)
            assert [(c.name, c.action) for c in plan] == [("egress", "created"), ("ingress", "created")]
            assert not group.exists() and attached(cgroup) == ()
            done = ensure_group(group, wants)
            assert [c.action for c in done] == ["created", "created"]
            assert attached(cgroup) == (eg.id,)
            wants2 = [Want("egress", eg2, cgroup, EGRESS)]
            plan = ensure_group(group, wants2, dry_run=True, prune=True)
            assert [(c.name, c.action) for c in plan] == [("egress", "updated"), ("ingress", "removed")]
            assert f"prog {eg.id}" in plan[0].detail and f"prog {eg2.id}" in plan[0].detail
            assert attached(cgroup) == (eg.id,)  # a dry run changes nothing
            done = ensure_group(group, wants2, prune=True)
            assert [(c.name, c.action) for c in done] == [("egress", "updated"), ("ingress", "removed")]
            assert attached(cgroup) == (eg2.id,) and sorted(os.listdir(group)) == ["egress"]
            assert bpflink.query(cgroup, AttachType.CGROUP_INET_INGRESS).prog_ids == ()
            # a wrong pin anywhere: nothing changes
            bad = [Want("egress", eg, cgroup, "cgroup_inet_ingress")]
            with pytest.raises(PinMismatchError):
                ensure_group(group, bad)
            assert attached(cgroup) == (eg2.id,)
    finally:
        for name in os.listdir(group) if group.exists() else ():
            os.unlink(group / name)
        if group.exists():
            group.rmdir()


def test_ensure_conflict_error_is_an_oserror() -> None:
    assert issubclass(EnsureConflictError, OSError) and issubclass(PinMismatchError, OSError)
