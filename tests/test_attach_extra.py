"""bpflink.attach helpers on the running kernel: a raw tracepoint by name with a cookie (``bpf_get_attach_cookie``
sees it, counts match), and sampling perf events on every CPU as one handle (samples arrive on each CPU; hardware
events skip with the kernel's answer where the machine has no PMU)."""

from __future__ import annotations

import contextlib
import errno
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpflink import Object
from bpflink.attach import EVENTS, online_cpus, perf_sample, raw_tracepoint
from conftest import open_fds, perf_fds
from honest_skips import unsupported

_GETPPID = {"x86_64": 110, "aarch64": 173}
PERF_TYPE_HARDWARE = 0  # <linux/perf_event.h>


@pytest.fixture
def extra(bpf_objects: dict[str, Path]) -> Path:
    return bpf_objects["attach_extra"]


@contextlib.contextmanager
def _loaded(path: Path, program: str) -> Iterator[Object]:
    obj = Object.open(path, programs=[program])
    try:
        cfg = obj.map("cfg")
        cfg.update(0, os.getpid())
        cfg.update(1, _GETPPID.get(platform.machine(), 0))
        cfg.close()
        yield obj
    finally:
        obj.close()


def _read(obj: Object, name: str, keys: range) -> list[int]:
    m = obj.map(name)
    try:
        return [m.lookup_int(k) for k in keys]
    finally:
        m.close()


def test_raw_tracepoint_by_name_with_cookie(extra: Path) -> None:
    if platform.machine() not in _GETPPID:
        pytest.skip("the getppid syscall number of this architecture is not in the test's table")
    with contextlib.ExitStack() as stack:
        try:
            obj = stack.enter_context(_loaded(extra, "on_raw_tp_cookie"))
        except OSError as exc:  # the verifier knows bpf_get_attach_cookie() in raw_tp programs from 6.10
            unsupported("raw_tp_cookie", exc)
        prog = stack.enter_context(obj.program("on_raw_tp_cookie"))
        cookie = 0xC0FFEE_0000_0001
        with raw_tracepoint(prog, "sys_enter", cookie=cookie) as link:
            for _ in range(5):
                os.getppid()
            assert _read(obj, "raw_seen", range(2)) == [5, cookie]
            assert link.info().type.name == "RAW_TRACEPOINT"
        os.getppid()
        assert _read(obj, "raw_seen", range(2)) == [5, cookie]  # closed: no more calls
        with raw_tracepoint(prog, "sys_enter"):  # no cookie: the program reads 0
            os.getppid()
            assert _read(obj, "raw_seen", range(2)) == [6, 0]


@pytest.mark.hostonly
def test_raw_tracepoint_rejects_bad_arguments_before_any_syscall() -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(ValueError, match="cookie"):
            raw_tracepoint(r, "sys_enter", cookie=-1)
        with pytest.raises(ValueError, match="non-empty str without NUL"):
            raw_tracepoint(r, "sys\0enter")
        with pytest.raises(ValueError, match="non-empty str"):
            raw_tracepoint(r, "")
    finally:
        os.close(r)
        os.close(w)


def _burn_on_each(cpus: list[int], seconds: float) -> None:
    """Run on each CPU in turn, so every CPU's event has a busy task to sample."""
    before = os.sched_getaffinity(0)
    try:
        for cpu in cpus:
            os.sched_setaffinity(0, {cpu})
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pass
    finally:
        os.sched_setaffinity(0, before)


def _check_per_cpu(extra: Path, event: str, **how: int) -> None:
    cpus = sorted(set(online_cpus()) & os.sched_getaffinity(0))
    perf_before, fds_before = perf_fds(), open_fds()
    with _loaded(extra, "on_sample_cpu") as obj, obj.program("on_sample_cpu") as prog:
        try:
            link = perf_sample(prog, event, **how)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EOPNOTSUPP, errno.ENODEV) and EVENTS[event][0] == PERF_TYPE_HARDWARE:
                # a hardware event without a PMU (VMs): the kernel's own refusal is the reason
                pytest.skip(f"no hardware PMU for {event!r} here: {exc}")
            raise
        with link:
            assert len(link.perf_events) == len(online_cpus())
            _burn_on_each(cpus, 0.15)
            per_cpu = _read(obj, "samples", range(max(cpus) + 1))
            assert all(per_cpu[c] > 0 for c in cpus), f"samples per CPU: {per_cpu}"
        events = link.perf_events
        assert link.closed and all(ev.closed for ev in events)
        after = _read(obj, "samples", range(max(cpus) + 1))
        _burn_on_each(cpus[:1], 0.05)
        assert _read(obj, "samples", range(max(cpus) + 1)) == after  # closed: no more samples
    assert perf_fds() == perf_before and open_fds() == fds_before


def test_software_sampling_on_every_cpu_by_frequency(extra: Path) -> None:
    _check_per_cpu(extra, "cpu-clock", freq=1000)


def test_software_sampling_on_every_cpu_by_period(extra: Path) -> None:
    _check_per_cpu(extra, "cpu-clock", period=200_000)  # ns of CPU time per sample: ~5,000 per second


def test_hardware_sampling_on_every_cpu_or_the_kernels_reason(extra: Path) -> None:
    _check_per_cpu(extra, "cycles", freq=1000)
