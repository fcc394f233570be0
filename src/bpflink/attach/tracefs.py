"""kprobe and uprobe events made through tracefs ``kprobe_events``/``uprobe_events``: what the attach layer uses
where the perf PMU cannot make the probe (a kernel or config without the ``kprobe``/``uprobe`` PMU, a kretprobe
with ``maxactive``), as libbpf's legacy attach mode does. The event is then a tracepoint
(``<group>:<name>``) opened with ``perf_event_open``; removing it from tracefs is part of closing the handle.

>>> # not run as a doctest: adds a tracefs uprobe event; names and offsets differ per run and libc
>>> ev, probe = uprobe_event("/usr/lib/x86_64-linux-gnu/libc.so.6", 0x4f2a0)  # doctest: +SKIP
>>> probe.spec  # doctest: +SKIP
'p:bpflink/u4242_0 /usr/lib/x86_64-linux-gnu/libc.so.6:0x4f2a0'
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import threading
import time
from pathlib import Path

from .. import lowlevel as ll
from .. import perf
from ..opts._check import S32_MAX, integer, u64

GROUP = "bpflink"
_counter = itertools.count()
_lock = threading.Lock()
# EBUSY right after the perf event's close: its last reference may still be dropping (a perf_event link's
# release, deferred work): retried for up to this long
_REMOVE_RETRY_S = 0.5


def _event_name(prefix: str, what: str) -> str:
    """A unique event name: the kernel takes [A-Za-z0-9_], at most 63 characters (MAX_EVENT_NAME_LEN)."""
    with _lock:
        n = next(_counter)
    return f"{prefix}{os.getpid()}_{n}_{re.sub(r'[^A-Za-z0-9_]', '_', what)}"[:63]


class TracefsProbe:
    """A dynamic event in tracefs ``kprobe_events`` or ``uprobe_events`` (``kind``): made on construction,
    removed by ``close()`` (idempotent, thread-safe)."""

    def __init__(self, kind: str, spec: str, name: str) -> None:
        if kind not in ("kprobe", "uprobe"):
            raise ValueError(f"kind must be 'kprobe' or 'uprobe', got {kind!r}")
        self.kind = kind
        self.path = perf.tracefs() / f"{kind}_events"
        self.group, self.name = GROUP, name
        self.spec = spec
        self._lock = threading.Lock()
        self.closed = True
        if not self.path.exists():
            raise FileNotFoundError(errno.ENOENT, f"{self.path} does not exist: the kernel has no "
                                    f"{'CONFIG_KPROBE_EVENTS' if kind == 'kprobe' else 'CONFIG_UPROBE_EVENTS'}",
                                    str(self.path))
        self._write(spec)
        self.closed = False

    @property
    def tracepoint(self) -> str:
        """The event as a tracepoint name, ``"bpflink:<name>"``."""
        return f"{self.group}:{self.name}"

    def _write(self, line: str) -> None:
        # os.open, not open(..., "a"): Python's append mode seeks to the end, which tracefs refuses (EINVAL)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        try:
            os.write(fd, (line + "\n").encode())
        except OSError as exc:
            raise OSError(exc.errno, f"{self.path}: cannot add {line!r}: {exc.strerror} (the reason is in "
                          f"{self.path.parent / 'error_log'})") from None
        finally:
            os.close(fd)

    def close(self) -> None:
        """Remove the event (after the perf events on it are closed; EBUSY while one is still open)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            deadline = time.monotonic() + _REMOVE_RETRY_S
            while True:
                try:
                    self._write(f"-:{self.group}/{self.name}")
                    return
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        return  # gone already (ENOENT), or still in use elsewhere: nothing more to do here
                time.sleep(0.005)

    def __repr__(self) -> str:
        return f"<TracefsProbe {self.spec!r}{' closed' if self.closed else ''}>"


def local_cpu() -> int:
    """The CPU this thread runs on (0 if getcpu fails), for perf events opened with ``pid=-1``.

    A tracepoint/kprobe/uprobe perf event needs some CPU for ``pid=-1``, but the BPF program attached to it runs
    on every CPU (it hangs on the trace event, not on the CPU's context), so which one is free. libbpf always
    passes CPU 0; opening the event on *this* CPU installs it without a cross-CPU call that waits for the other
    CPU (measured here, 2 busy vCPUs: 20 tracepoint attaches 1.1 ms from CPU 0 vs up to 126 ms from CPU 1).
    """
    cpu = ll.bpflink_current_cpu()
    return cpu if cpu >= 0 else 0


def _open(probe: TracefsProbe, pid: int, cpu: int) -> perf.PerfEvent:
    try:
        ev = perf.open_tracepoint(probe.tracepoint, pid=pid, cpu=cpu)
    except BaseException:
        probe.close()
        raise
    ev.kind = f"{probe.kind}_events"  # the mechanism, in LegacyLink.events and error messages
    return ev


def kprobe_event(func: str, offset: int = 0, retprobe: bool = False, *,
                 maxactive: int = 0) -> tuple[perf.PerfEvent, TracefsProbe]:
    """A kprobe/kretprobe on ``func``+``offset`` through tracefs ``kprobe_events``, opened as a perf event.
    Close the event first, then the probe."""
    if not isinstance(func, str) or not re.fullmatch(r"[A-Za-z_.$][\w.$]*", func):
        raise ValueError(f"func must be a kernel symbol name, got {func!r}")
    off = u64("offset", offset)
    if not isinstance(maxactive, int) or isinstance(maxactive, bool) or not 0 <= maxactive <= 4096:
        raise ValueError(f"maxactive must be an int in 0..4096, got {maxactive!r}")
    name = _event_name("k" if not retprobe else "r", func)
    kind = "p" if not retprobe else f"r{maxactive or ''}"
    probe = TracefsProbe("kprobe", f"{kind}:{GROUP}/{name} {func}" + (f"+{off}" if off else ""), name)
    return _open(probe, -1, local_cpu()), probe


def uprobe_event(path: str | os.PathLike[str], offset: int, retprobe: bool = False, *, pid: int = -1,
                 ref_ctr_offset: int = 0) -> tuple[perf.PerfEvent, TracefsProbe]:
    """A uprobe/uretprobe at file ``offset`` of ``path`` through tracefs ``uprobe_events`` (``pid``: only that
    process; ``ref_ctr_offset``: a USDT semaphore), opened as a perf event. Close the event first, then the probe."""
    spath = os.fspath(path)
    if not isinstance(spath, str) or not spath or re.search(r"[\s\0]", spath):
        raise ValueError(f"uprobe_events takes a path without whitespace or NUL, got {path!r}")
    off = u64("offset", offset)
    ref = u64("ref_ctr_offset", ref_ctr_offset)
    p = integer("pid", pid, -1, S32_MAX)
    name = _event_name("u" if not retprobe else "ur", Path(spath).name)
    where = f"{spath}:{off:#x}" + (f"({ref:#x})" if ref else "")
    probe = TracefsProbe("uprobe", f"{'r' if retprobe else 'p'}:{GROUP}/{name} {where}", name)
    # a per-process event is opened on every CPU of that process; one for every process on this CPU (it fires on all)
    return _open(probe, p, -1 if p >= 0 else local_cpu()), probe


__all__ = ["GROUP", "TracefsProbe", "kprobe_event", "local_cpu", "uprobe_event"]
