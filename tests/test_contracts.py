"""The contract every public class holding a kernel object or C memory keeps, checked over a table of factories:

construct; ``copy``/``deepcopy``/``pickle`` refused with a clear ``TypeError``; ``close()`` twice; every public
method after close raises ``ValueError("I/O operation on closed X")``; the same calls from 8 threads racing a
close; the object used and closed in a ``fork()``ed child -- and never a signal, a hang, or any exception but
``TypeError``/``ValueError``/``OSError``. Each factory runs in a child process with a timeout.

To add a class: a factory in ``FACTORIES`` and its public surface in ``SURFACE``
(every public name must be listed: a new method without a contract fails ``test_surface_is_complete``).
"""

from __future__ import annotations

import contextlib
import copy
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ALLOWED = (TypeError, ValueError, OSError)


@dataclass
class Env:
    cgroup: str
    keep: list[Any]  # what a factory's object depends on (its program...), closed after the run

    def pin_path(self) -> str:
        return f"/sys/fs/bpf/bpflink-contract-{os.getpid()}-{threading.get_ident()}"


def _egress_prog() -> Any:
    from bpflink import AttachType, Program, ProgType, asm

    return Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=AttachType.CGROUP_INET_EGRESS)


def make_link(env: Env) -> Any:
    from bpflink import AttachType, link_create

    prog = _egress_prog()
    env.keep.append(prog)
    return link_create(prog, env.cgroup, AttachType.CGROUP_INET_EGRESS)


def make_program(env: Env) -> Any:
    return _egress_prog()


def make_perf_event(env: Env) -> Any:
    from bpflink.perf import open_tracepoint

    return open_tracepoint("syscalls:sys_enter_getpid")


def make_built_opts(env: Env) -> Any:
    from bpflink import AttachType, opts

    return opts.Iter(cgroup=env.cgroup, order=opts.CgroupIterOrder.SELF_ONLY).build(AttachType.TRACE_ITER)


def make_map(env: Env) -> Any:
    from bpflink import Map, MapType

    return Map.create(MapType.HASH, key_size=4, value_size=8, max_entries=16)


def make_ring_buffer(env: Env) -> Any:
    from bpflink import Map, MapType, RingBuffer

    ring = Map.create(MapType.RINGBUF, key_size=0, value_size=0, max_entries=4096)
    env.keep.append(ring)
    return RingBuffer(ring)


def make_background_ring_buffer(env: Env) -> Any:
    """RingBuffer with its drain thread: close, fork and threads must stop or forget the thread."""
    from bpflink import Map, MapType, RingBuffer

    ring = Map.create(MapType.RINGBUF, key_size=0, value_size=0, max_entries=4096)
    env.keep.append(ring)
    return RingBuffer(ring, background=True, backlog=1)


def make_perf_buffer(env: Env) -> Any:
    from bpflink import Map, MapType, PerfBuffer, possible_cpus

    array = Map.create(MapType.PERF_EVENT_ARRAY, key_size=4, value_size=4, max_entries=possible_cpus())
    env.keep.append(array)
    return PerfBuffer(array, pages=1)


def make_background_perf_buffer(env: Env) -> Any:
    """The same class with its drain thread: close, fork and threads must stop or forget the thread."""
    from bpflink import Map, MapType, PerfBuffer, possible_cpus

    array = Map.create(MapType.PERF_EVENT_ARRAY, key_size=4, value_size=4, max_entries=possible_cpus())
    env.keep.append(array)
    return PerfBuffer(array, pages=1, background=True, backlog=1)


def make_object(env: Env) -> Any:
    from bpflink import Object

    return Object.open(os.environ["BPFLINK_CONTRACT_OBJECT"])  # tests/bpf/ringbuf_emit.bpf.c, loaded


def make_legacy_link(env: Env) -> Any:
    from bpflink import Program, ProgType, asm
    from bpflink.attach import tracepoint

    prog = Program.load(ProgType.TRACEPOINT, asm.return_imm(0))
    env.keep.append(prog)
    return tracepoint(prog, "syscalls:sys_enter_getpid", mode="legacy")  # PERF_EVENT_IOC_SET_BPF, no link


def make_link_group(env: Env) -> Any:
    from bpflink import LinkGroup

    return LinkGroup([make_link(env)])


FACTORIES: dict[str, Callable[[Env], Any]] = {
    "Link": make_link,
    "Program": make_program,
    "PerfEvent": make_perf_event,
    "BuiltOpts": make_built_opts,
    "Map": make_map,
    "RingBuffer": make_ring_buffer,
    "RingBuffer+background": make_background_ring_buffer,
    "PerfBuffer": make_perf_buffer,
    "PerfBuffer+background": make_background_perf_buffer,
    "Object": make_object,
    "LinkGroup": make_link_group,
    "LegacyLink": make_legacy_link,
}

# public name -> a call of it; names in DATA are plain attributes (no kernel object behind them)
Call = Callable[[Any, Env], Any]
_FD_OWNER: dict[str, Call] = {
    "fd": lambda o, e: o.fd,
    "fileno": lambda o, e: o.fileno(),
    "detach_fd": lambda o, e: o.detach_fd(),
}
SURFACE: dict[str, dict[str, Call]] = {
    "Link": {
        **_FD_OWNER,
        "id": lambda o, e: o.id,
        "prog_id": lambda o, e: o.prog_id,
        "info": lambda o, e: o.info(),
        "update": lambda o, e: o.update(e.keep[0]),
        "update_map": lambda o, e: o.update_map(e.keep[0]),
        "detach": lambda o, e: o.detach(),
        "open_iter": lambda o, e: o.open_iter().close(),
        "read_iter": lambda o, e: o.read_iter(),
        "pin": lambda o, e: (o.pin(e.pin_path()), o.unpin()),
        "owners": lambda o, e: o.owners(),
    },
    "Program": {**_FD_OWNER, "id": lambda o, e: o.id},
    "PerfEvent": dict(_FD_OWNER),
    "BuiltOpts": {"ptr": lambda o, e: o.ptr},
    "Map": {
        **_FD_OWNER,
        "info": lambda o, e: o.info(),
        "set_types": lambda o, e: o.set_types("<I", "<Q"),
        "update": lambda o, e: o.update(1, 2),
        "lookup": lambda o, e: o.lookup(1),
        "lookup_int": lambda o, e: o.lookup_int(1),
        "lookup_raw": lambda o, e: o.lookup_raw(1),
        "sum": lambda o, e: o.sum(1),
        "delete": lambda o, e: o.delete(1),
        "count": lambda o, e: o.count(),
        "keys": lambda o, e: list(o.keys()),
        "values": lambda o, e: list(o.values()),
        "items": lambda o, e: list(o.items()),
        "lookup_batch": lambda o, e: o.lookup_batch(),
        "lookup_and_delete_batch": lambda o, e: o.lookup_and_delete_batch(),
        "update_batch": lambda o, e: o.update_batch([3], [4]),
        "delete_batch": lambda o, e: o.delete_batch([3]),
        "push": lambda o, e: o.push(5),
        "pop": lambda o, e: o.pop(),
        "peek": lambda o, e: o.peek(),
        "may_contain": lambda o, e: o.may_contain(5),
        "pin": lambda o, e: (o.pin(e.pin_path()), o.unpin()),
        "freeze": lambda o, e: o.freeze(),
    },
    "RingBuffer": {
        "fileno": lambda o, e: o.fileno(),
        "poll": lambda o, e: o.poll(0),
        "consume": lambda o, e: o.consume(),
        "poll_batch": lambda o, e: o.poll_batch(0),
        "consume_batch": lambda o, e: o.consume_batch(),
        "poll_async": lambda o, e: __import__("asyncio").run(o.poll_async(0)),
        "ring_info": lambda o, e: o.ring_info(0),
        "add": lambda o, e: o.add(e.keep[0]),
    },
    "PerfBuffer": {
        "fileno": lambda o, e: o.fileno(),
        "poll": lambda o, e: o.poll(0),
        "consume": lambda o, e: o.consume(),
        "consume_buffer": lambda o, e: o.consume_buffer(0),
        "poll_batch": lambda o, e: o.poll_batch(0),
        "consume_batch": lambda o, e: o.consume_batch(),
        "poll_async": lambda o, e: __import__("asyncio").run(o.poll_async(0)),
    },
    "Object": {
        "program_names": lambda o, e: o.program_names,
        "map_names": lambda o, e: o.map_names,
        "maps": lambda o, e: [m.close() for m in o.maps().values()],
        "map": lambda o, e: o.map("events").close(),
        "program": lambda o, e: o.program(o.program_names[0]).close(),
        "globals": lambda o, e: list(o.globals),
        "load": lambda o, e: o.load(),  # loaded already: ValueError
        "configure_map": lambda o, e: o.configure_map("events", max_entries=8192),  # after load: ValueError
        "configure_program": lambda o, e: o.configure_program(o.program_names[0], autoload=True),
        "attach": lambda o, e: o.attach(o.program_names[0]),  # SEC("socket") has no target: ValueError
        "attach_all": lambda o, e: o.attach_all(skip_untargeted=True),
    },
    "LegacyLink": {
        "fd": lambda o, e: o.fd,
        "fileno": lambda o, e: o.fileno(),
        "info": lambda o, e: o.info(),
        "id": lambda o, e: o.id,  # NotSupportedError (an OSError): no kernel link before 5.15
        "prog_id": lambda o, e: o.prog_id,
        "update": lambda o, e: o.update(e.keep[0]),
        "update_map": lambda o, e: o.update_map(e.keep[0]),
        "detach": lambda o, e: o.detach(),
        "pin": lambda o, e: o.pin(e.pin_path()),
        "owners": lambda o, e: o.owners(),
        "open_iter": lambda o, e: o.open_iter().close(),
        "read_iter": lambda o, e: o.read_iter(),
    },
    "LinkGroup": {
        "add": lambda o, e: o.add(make_link(e)).close(),
        "as_dict": lambda o, e: o.as_dict(),
        "items": lambda o, e: o.items(),
        "names": lambda o, e: o.names(),
    },
}
DATA: dict[str, set[str]] = {
    # unpin: ValueError "not pinned"; ensure: a classmethod (tests/test_lifecycle.py); perf_event: None here
    "Link": {"attach_type", "pinned_path", "closed", "close", "unpin", "ensure", "perf_event", "kind", "legacy"},
    "Program": {"name", "prog_type", "expected_attach_type", "maps", "closed", "close", "section_name"},
    "PerfEvent": {"kind", "name", "closed", "close"},
    "BuiltOpts": {"keepalive", "closed", "close"},
    # id: the kernel's id, read once and kept (as Link.id); loaded/ring_count/lost...: state kept in Python
    "Map": {"id", "percpu", "key_type", "value_type", "name", "map_type", "key_size", "value_size",
            "max_entries", "flags", "pinned_path", "closed", "close", "unpin", "key_class", "value_class"},
    "RingBuffer": {"ring_count", "closed", "close", "backlog", "poll_interval"},
    "PerfBuffer": {"pages", "buffer_count", "lost", "lost_per_cpu", "closed", "close", "wakeup_bytes", "backlog",
                   "poll_interval"},
    "Object": {"loaded", "path", "closed", "close"},
    "LinkGroup": {"closed", "close"},
    "LegacyLink": {"attach_type", "pinned_path", "closed", "close", "unpin", "ensure", "perf_event", "perf_events",
                   "kind", "legacy", "detach_fd", "mechanism", "events"},
}


# a factory "Class+variant" makes the same class another way: the same surface and data
for _variant in [k for k in FACTORIES if "+" in k]:
    SURFACE[_variant] = SURFACE[_variant.split("+")[0]]
    DATA[_variant] = DATA[_variant.split("+")[0]]


def _public(obj: Any) -> set[str]:
    cls = type(obj)
    names = set()
    for name in dir(obj):
        if name.startswith("_"):
            continue
        raw = next((k.__dict__[name] for k in cls.__mro__ if name in k.__dict__), None)
        if isinstance(raw, (classmethod, staticmethod)):
            continue  # constructors, not methods of an instance
        names.add(name)
    return names


def _expect_closed(name: str, what: str, call: Call, obj: Any, env: Env) -> None:
    try:
        call(obj, env)
    except ValueError as exc:
        assert f"I/O operation on closed {name}" in str(exc), f"{name}.{what} after close: {exc}"
    else:
        raise AssertionError(f"{name}.{what} after close did not raise")


def _allowed(fn: Callable[[], Any], problems: list[str], label: str) -> None:
    try:
        fn()
    except ALLOWED:
        pass
    except BaseException as exc:
        problems.append(f"{label}: {type(exc).__name__}: {exc}")


def run_contract(name: str, cgroup: str) -> None:
    """The whole contract for one factory (in a child process: see test_contract)."""
    env = Env(cgroup, [])
    surface = SURFACE[name]
    cls_name = name.split("+")[0]  # the class's name, which its messages carry
    try:
        obj = FACTORIES[name](env)
    except OSError as exc:  # this kernel cannot make one (no tracefs, a missing feature): the parent skips
        print(f"cannot make a {name} here: {exc}")
        sys.exit(77)
    try:
        # copy, deepcopy, pickle: a clear TypeError naming the class
        for fn in (copy.copy, copy.deepcopy, pickle.dumps):
            try:
                fn(obj)
            except TypeError as exc:
                assert cls_name in str(exc), f"{fn.__name__}({name}): {exc}"
            else:
                raise AssertionError(f"{fn.__name__}({name}) did not raise TypeError")
        # close twice, then every public method
        obj.close()
        obj.close()
        assert obj.closed
        after_close: list[str] = []
        for what, call in surface.items():
            try:
                _expect_closed(cls_name, what, call, obj, env)
            except AssertionError as exc:
                after_close.append(str(exc))
        assert not after_close, after_close

        # 8 threads calling everything while one of them closes
        problems: list[str] = []
        for _ in range(3):
            obj = FACTORIES[name](env)
            start = threading.Barrier(8)

            def worker(i: int, target: Any = obj, start: threading.Barrier = start) -> None:
                start.wait()
                for round_ in range(20):
                    for what, call in surface.items():
                        if what != "detach_fd":  # would hand the fd to this thread: it is then closed here
                            _allowed(lambda c=call: c(target, env), problems, f"thread {i} {what}")
                    if i == 0 and round_ == 5:
                        _allowed(target.close, problems, "close")
                _allowed(target.close, problems, "close")

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
                assert not t.is_alive(), "a thread hung"
            assert obj.closed
        assert not problems, problems

        # fork: the child uses and closes its copy; the parent's object is unaffected
        obj = FACTORIES[name](env)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                child_problems: list[str] = []
                for what, call in surface.items():
                    if what not in ("detach", "detach_fd"):  # detach would act on the shared kernel object
                        _allowed(lambda c=call: c(obj, env), child_problems, f"child {what}")
                obj.close()
                obj.close()
                code = 1 if child_problems else 0
                if child_problems:
                    print(child_problems, file=sys.stderr)
            finally:
                os._exit(code)
        deadline = time.monotonic() + 30
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                raise AssertionError("the forked child hung")
            time.sleep(0.01)
        assert os.waitstatus_to_exitcode(status) == 0, f"forked child: status {status}"
        assert not obj.closed
        from bpflink import NotSupportedError

        for what in ("fd", "id"):
            if what in surface:
                with contextlib.suppress(NotSupportedError):  # a legacy attachment has no kernel link id
                    surface[what](obj, env)  # still usable in the parent
        obj.close()
    finally:
        for kept in env.keep:
            kept.close()
        # every thread pins under its own name; one whose unpin lost the race with close leaves its pin behind
        for left in Path("/sys/fs/bpf").glob(f"bpflink-contract-{os.getpid()}-*"):
            with contextlib.suppress(OSError):
                left.unlink()
    print("contract ok")


@pytest.fixture
def contract_env(bpf_objects: dict[str, Path]) -> dict[str, str]:
    return {**os.environ, "BPFLINK_CONTRACT_OBJECT": str(bpf_objects["ringbuf_emit"])}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_contract(name: str, cgroup: Path, contract_env: dict[str, str]) -> None:
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import test_contracts as t; " \
           f"t.run_contract({name!r}, {str(cgroup)!r})"
    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env=contract_env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{name}: the contract run hung: {exc.stderr!r}")
    if res.returncode == 77:
        pytest.skip(res.stdout.strip())
    assert res.returncode == 0 and "contract ok" in res.stdout, \
        f"{name}: exit {res.returncode} (a negative exit is a signal)\n{res.stdout}\n{res.stderr}"


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_surface_is_complete(name: str, cgroup: Path, contract_env: dict[str, str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Every public name of the class is either a call in SURFACE or a plain attribute in DATA."""
    monkeypatch.setenv("BPFLINK_CONTRACT_OBJECT", contract_env["BPFLINK_CONTRACT_OBJECT"])
    env = Env(str(cgroup), [])
    try:
        obj = FACTORIES[name](env)
    except OSError as exc:
        pytest.skip(f"cannot make a {name} here: {exc}")
    try:
        missing = _public(obj) - set(SURFACE[name]) - DATA[name]
        assert not missing, f"{name} has public names without a contract: {sorted(missing)}"
    finally:
        obj.close()
        for kept in env.keep:
            kept.close()
