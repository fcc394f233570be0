"""perf_event_open(2) helpers: the perf event fds a ``BPF_PERF_EVENT`` link attaches a program to.

>>> # not run as a doctest: needs a loaded tracepoint program `prog` (tests/test_perf_event.py)
>>> with open_tracepoint("syscalls:sys_enter_getpid") as ev:  # doctest: +SKIP
...     link = link_create(prog, ev, AttachType.PERF_EVENT, opts.PerfEvent(cookie=7))

A BPF program on a tracepoint/kprobe/uprobe perf event runs on every CPU, whatever ``cpu`` the event was
opened on (the program hangs off the trace event, not the per-CPU perf event); ``pid`` filters only
uprobes (and per-task software events). That is why the defaults are ``pid=-1, cpu=0``, as libbpf does.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Any

from . import kernel
from . import lowlevel as ll
from ._fd import FdOwner
from .errors import NotSupportedError, check
from .opts._check import S32_MAX, integer, u64

_PMU_DIR = Path("/sys/bus/event_source/devices")
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


class PerfEventFd(FdOwner):
    """An open perf event fd (``kind``: ``"tracepoint"``, ``"kprobe"``, ``"uprobe"``; ``name``: what it probes).
    Also importable as ``bpflink.perf.PerfEvent``, its first name (``bpflink.opts.PerfEvent`` is the opts
    builder of the link made on it).

    Pass it as the target of ``link_create(prog, event, AttachType.PERF_EVENT, opts.PerfEvent(...))``.
    Keep it open while the link lives; closing both detaches the program.
    """

    def __init__(self, fd: int, *, kind: str, name: str) -> None:
        super().__init__(fd)
        self.kind = kind
        self.name = name

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return f"<PerfEvent {self.kind} {self.name!r} {state}>"


#: the first name of ``PerfEventFd``, used in this module and by callers
PerfEvent = PerfEventFd


def tracefs() -> Path:
    """The tracefs mount point (``bpflink.kernel.tracefs_mount``); ``FileNotFoundError`` saying how to mount it
    when it is not mounted. A library call never mounts file systems: that is the administrator's (or a test
    fixture's) decision."""
    found = kernel.tracefs_mount()
    if found is None:
        where = kernel.TRACEFS_PATHS[0]
        raise FileNotFoundError(errno.ENOENT, f"tracefs is not mounted (as root: mount -t tracefs nodev {where})",
                                where)
    return Path(found)


_tracefs_root: list[str] = []  # the last mount point found; re-checked when a lookup under it fails


def _read_id(root: str, cat: str, name: str) -> int | None:
    try:
        fd = os.open(f"{root}/events/{cat}/{name}/id", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return int(os.read(fd, 64))
    finally:
        os.close(fd)


def tracepoint_id(tracepoint: str) -> int:
    """The id of ``"category:name"`` (or ``"category/name"``) from tracefs ``events/<cat>/<name>/id``."""
    if not isinstance(tracepoint, str):
        raise TypeError(f"tracepoint must be a str like 'syscalls:sys_enter_getpid', not {type(tracepoint).__name__}")
    cat, sep, name = tracepoint.replace("/", ":", 1).partition(":")
    if not sep or not all(_NAME.fullmatch(p) and p not in (".", "..") for p in (cat, name)):
        raise ValueError(f"tracepoint must be 'category:name', got {tracepoint!r}")
    # the mount point is remembered: stat()ing tracefs' events/ costs as much as the id read itself (eventfs);
    # a miss looks again, so a remount or an unmount is noticed on the next failing lookup
    if _tracefs_root:
        found = _read_id(_tracefs_root[0], cat, name)
        if found is not None:
            return found
    root = str(tracefs())
    _tracefs_root[:] = [root]
    found = _read_id(root, cat, name)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, f"no tracepoint {tracepoint!r} (see {root}/events)",
                                f"{root}/events/{cat}/{name}/id")
    return found


def _pmu(name: str, feature: str, config: str) -> tuple[int, Path]:
    """The dynamic PMU type of ``kprobe``/``uprobe`` and its sysfs directory."""
    path = _PMU_DIR / name
    try:
        return int((path / "type").read_text()), path
    except FileNotFoundError:
        raise NotSupportedError(feature, f"no {name} PMU in {_PMU_DIR} (kernel lacks {config})") from None


def _format_bit(pmu: Path, field: str) -> int:
    """The config bit of a one-bit format field, e.g. ``format/retprobe`` reads ``config:0``."""
    text = (pmu / "format" / field).read_text().strip()
    m = re.fullmatch(r"config:(\d+)", text)
    if not m:
        raise ValueError(f"unexpected {pmu / 'format' / field}: {text!r}")
    return int(m.group(1))


def _pid_cpu(pid: Any, cpu: Any) -> tuple[int, int]:
    p = integer("pid", pid, -1, S32_MAX)
    c = integer("cpu", cpu, -1, S32_MAX)
    if p == -1 and c == -1:
        raise ValueError("pid=-1 (every process) needs a cpu >= 0: perf events cannot be for every process "
                         "on every CPU")
    return p, c


def _open(attr: Any, pid: int, cpu: int, what: str, kind: str, name: str) -> PerfEvent:
    attr.size = ll.ffi.sizeof("struct perf_event_attr")
    fd = ll.bpflink_perf_event_open(attr, pid, cpu, -1, ll.PERF_FLAG_FD_CLOEXEC)
    check(fd, what, family="perf_event")
    return PerfEvent(fd, kind=kind, name=name)


def open_tracepoint(tracepoint: str, *, pid: int = -1, cpu: int = 0) -> PerfEvent:
    """Open a perf event on tracepoint ``"category:name"`` (``PERF_TYPE_TRACEPOINT``).

    >>> open_tracepoint("sched:sched_process_exec")
    <PerfEvent tracepoint 'sched:sched_process_exec' fd=...>
    """
    p, c = _pid_cpu(pid, cpu)
    tp_id = tracepoint_id(tracepoint)
    attr = ll.ffi.new("struct perf_event_attr *")
    attr.type = ll.PERF_TYPE_TRACEPOINT
    attr.config = tp_id
    attr.sample_period = 1
    return _open(attr, p, c, f"perf_event_open(tracepoint {tracepoint})", "tracepoint", tracepoint)


def open_kprobe(func: str, offset: int = 0, retprobe: bool = False, *, pid: int = -1, cpu: int = 0) -> PerfEvent:
    """Open a kprobe (or kretprobe) perf event on kernel function ``func`` + ``offset`` via the kprobe PMU.

    ``NotSupportedError`` when the kernel has no kprobe PMU (``CONFIG_KPROBE_EVENTS``).

    >>> # not run as a doctest: needs CONFIG_KPROBES (this host has none); fds differ per run
    >>> open_kprobe("do_nanosleep", retprobe=True)  # doctest: +SKIP
    <PerfEvent kprobe 'do_nanosleep' fd=5>
    """
    if not isinstance(func, str) or not func or "\0" in func:
        raise (TypeError if not isinstance(func, str) else ValueError)(
            f"func must be a non-empty kernel function name without NUL, got {func!r}")
    off = u64("offset", offset)
    if not isinstance(retprobe, bool):
        raise TypeError(f"retprobe must be a bool, not {type(retprobe).__name__}")
    p, c = _pid_cpu(pid, cpu)
    pmu_type, pmu = _pmu("kprobe", "kprobe perf events", "CONFIG_KPROBES/CONFIG_KPROBE_EVENTS")
    name = ll.ffi.new("char[]", func.encode())
    attr = ll.ffi.new("struct perf_event_attr *")
    attr.type = pmu_type
    attr.config = (1 << _format_bit(pmu, "retprobe")) if retprobe else 0
    attr.kprobe_func = int(ll.ffi.cast("uintptr_t", name))
    attr.probe_offset = off
    try:
        return _open(attr, p, c, f"perf_event_open(kprobe {func}+{off:#x})", "kprobe", func)
    finally:
        del name  # the kernel copied the name during the call


def open_uprobe(path: str | os.PathLike[str], offset: int, retprobe: bool = False, *, pid: int = -1,
                cpu: int | None = None, ref_ctr_offset: int = 0) -> PerfEvent:
    """Open a uprobe (or uretprobe) perf event at file ``offset`` of ELF ``path`` via the uprobe PMU.

    ``offset`` is a file offset (``bpflink.symbols.symbol_offset``). ``pid``: only that process (-1: all).
    ``ref_ctr_offset``: a USDT semaphore's file offset, if the PMU supports it.

    >>> from bpflink.symbols import symbol_offset
    >>> from bpflink.targets import resolve_binary
    >>> libc = resolve_binary("libc.so.6").path
    >>> open_uprobe(libc, symbol_offset(libc, "getpid"))
    <PerfEvent uprobe '/...libc.so.6+0x...' fd=...>
    """
    spath = os.fsencode(path)
    if not spath or b"\0" in spath:
        raise ValueError(f"path must be a non-empty file name without NUL, got {path!r}")
    off = u64("offset", offset)
    ref = u64("ref_ctr_offset", ref_ctr_offset)
    if not isinstance(retprobe, bool):
        raise TypeError(f"retprobe must be a bool, not {type(retprobe).__name__}")
    p, c = _pid_cpu(pid, (0 if pid == -1 else -1) if cpu is None else cpu)
    pmu_type, pmu = _pmu("uprobe", "uprobe perf events", "CONFIG_UPROBE_EVENTS")
    config = (1 << _format_bit(pmu, "retprobe")) if retprobe else 0
    if ref:
        fmt = (pmu / "format" / "ref_ctr_offset").read_text().strip()
        m = re.fullmatch(r"config:(\d+)-(\d+)", fmt)
        if not m:
            raise NotSupportedError("uprobe ref_ctr_offset", f"the uprobe PMU has no ref_ctr_offset field ({fmt!r})")
        lo, hi = int(m.group(1)), int(m.group(2))
        if ref >> (hi - lo + 1):
            raise ValueError(f"ref_ctr_offset {ref:#x} does not fit the PMU's {hi - lo + 1}-bit field")
        config |= ref << lo
    name = ll.ffi.new("char[]", spath)
    attr = ll.ffi.new("struct perf_event_attr *")
    attr.type = pmu_type
    attr.config = config
    attr.uprobe_path = int(ll.ffi.cast("uintptr_t", name))
    attr.probe_offset = off
    label = f"{os.fsdecode(spath)}+{off:#x}"
    try:
        return _open(attr, p, c, f"perf_event_open(uprobe {label})", "uprobe", label)
    finally:
        del name


__all__ = ["PerfEvent", "PerfEventFd", "open_kprobe", "open_tracepoint", "open_uprobe", "tracefs", "tracepoint_id"]
