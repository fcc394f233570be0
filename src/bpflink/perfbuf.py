"""``PerfBuffer``: read a ``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` through libbpf's ``perf_buffer__*``.

libbpf opens one ``PERF_COUNT_SW_BPF_OUTPUT`` event per CPU with ``pages`` pages of ring each, stores their fds in
the map and walks the rings; bpflink hands over copies. Records carry their CPU (``PerfRecord(cpu, data)``);
the kernel pads each raw sample so that its 4-byte size plus the data is a multiple of 8, so ``data`` may be up
to 4 bytes longer than what the program passed to ``bpf_perf_event_output`` (as in C). Samples the kernel
could not store (the ring was full) are counted: ``lost``, ``lost_per_cpu`` and ``lost_callback(cpu, count)``,
reported after the consume that read the kernel's lost record (the kernel writes it when space frees up,
before the next sample that fits).

The rest is ``RingBuffer``'s surface: ``poll``/``consume``, a callback form (``callback(cpu, data)``),
iteration, ``poll_batch``/``consume_batch`` (one C loop copying every waiting record; numpy with ``dtype=``),
``fileno()``, ``poll_async``/``async for``, and a close that is safe while another thread polls.

``background=True`` adds a native thread that moves samples out of the kernel's buffers into a backlog of
``backlog`` bytes as soon as they arrive, without the GIL: pauses of the Python reader (the garbage collector,
a slow callback, another thread holding the GIL) then fill the backlog, not the kernel's buffers, which a
producer at full speed fills in about a millisecond. Every read path reads the backlog instead; when it is full
the thread stops and the kernel counts what it drops, reported as ``lost`` as usual.

>>> # not run as a doctest: needs a loaded object `obj` with a perf event array map
>>> with PerfBuffer(obj.map("events"), pages=64) as pb:  # doctest: +SKIP
...     for rec in pb.poll(timeout=1.0):
...         print(rec.cpu, rec.data[:8])
>>> pb.lost  # doctest: +SKIP
0
"""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Callable
from typing import Any, NamedTuple, Optional

from . import lowlevel as ll
from ._fdowner import pairs
from ._native import ffi
from .errors import error
from .ringbuf import DEFAULT_BACKLOG as DEFAULT_BACKLOG  # the backlog constants stay importable from here
from .ringbuf import MAX_BACKLOG as MAX_BACKLOG
from .ringbuf import MIN_BACKLOG as MIN_BACKLOG
from .ringbuf import RecordBatch, _check_background, _check_map, _check_poll_interval, _Reader

PerfCallback = Callable[[int, bytes], Optional[object]]
LostCallback = Callable[[int, int], Optional[object]]


class PerfRecord(NamedTuple):
    """One sample: the CPU whose buffer held it and its raw bytes (a copy)."""

    cpu: int
    data: bytes

    def __bytes__(self) -> bytes:
        return self.data


class PerfBuffer(_Reader):
    """A reader of a perf event array over libbpf's ``perf_buffer``: one ring of ``pages`` pages (a power of
    two) per possible CPU (at most the map's ``max_entries``).

    ``callback(cpu, data)`` receives every sample instead of ``poll()``; ``lost_callback(cpu, count)`` the
    samples the kernel dropped. The map's fd is duplicated: closing the ``Map`` afterwards is fine.
    ``wakeup_bytes``: 0 wakes a waiting reader on every sample (libbpf's default); N > 0 once a CPU's buffer
    holds N bytes, much cheaper for the producer at high rates (a poll still collects what sits below it every
    ``SLICE`` seconds). Samples are lost when a buffer fills before the reader runs: raise ``pages`` for bursts,
    or let a thread empty the buffers as samples arrive.

    ``background=True`` starts that thread (native, never holding the GIL; it inherits the creating thread's
    CPU affinity and blocks signals): it moves samples into a backlog of ``backlog`` bytes (rounded up to a power
    of two of at least 512 KiB; ``self.backlog``), and every read path reads the backlog, in the order the thread
    took samples. A full backlog stops the thread until the reader catches up; meanwhile the kernel's buffers
    fill and the kernel counts what it drops (``lost``). ``consume_buffer`` is not available (the thread owns the
    kernel's buffers); ``close()`` stops the thread first.

    ``poll_interval`` (seconds): a waiting poll sleeps that long and looks again instead of sleeping until the
    kernel wakes it (as ``RingBuffer``'s). Unlike a ring's, a perf sample's wake-up is raised whether or not a
    reader sleeps, so only ``wakeup_bytes`` spares the producer; with a watermark, ``poll_interval`` bounds how
    long samples below it wait (``SLICE`` otherwise). ``fileno()`` and a ``background=True`` thread still wait to
    be woken.

    >>> # not run as a doctest: needs a loaded object `obj` with a perf event array map
    >>> pb = PerfBuffer(obj.map("events"), pages=8, lost_callback=lambda cpu, n: print("lost", n))
    ... # doctest: +SKIP
    >>> agent = PerfBuffer(obj.map("events"), pages=64, background=True)  # doctest: +SKIP
    """

    _kind = "PerfBuffer"
    _inherited_by_fork = False

    def __init__(self, map: Any, pages: int = 64, *, callback: PerfCallback | None = None,
                 lost_callback: LostCallback | None = None, wakeup_bytes: int = 0, background: bool = False,
                 backlog: int = DEFAULT_BACKLOG, poll_interval: float | None = None) -> None:
        self._pb: Any = None
        self._fd = -1
        self._setup()
        self.poll_interval = _check_poll_interval(poll_interval)
        if type(pages) is not int:
            raise TypeError(f"pages must be an int, not {type(pages).__name__}")
        if pages <= 0 or pages & (pages - 1):
            raise ValueError(f"pages must be a power of two (pages per CPU buffer), got {pages}")
        if type(wakeup_bytes) is not int:
            raise TypeError(f"wakeup_bytes must be an int, not {type(wakeup_bytes).__name__}")
        if not 0 <= wakeup_bytes < pages * mmap.PAGESIZE:
            raise ValueError(f"wakeup_bytes must be in 0..{pages * mmap.PAGESIZE - 1} (below one CPU's buffer "
                             f"of {pages} pages), got {wakeup_bytes}")
        _check_background(background, backlog)
        for name, cb in (("callback", callback), ("lost_callback", lost_callback)):
            if cb is not None and not callable(cb):
                raise TypeError(f"{name} must be callable, not {type(cb).__name__}")
        from .enums import MapType

        fd = _check_map(map, "perf event array", int(MapType.PERF_EVENT_ARRAY), "PerfBuffer")
        self._callback = callback
        self._lost_callback = lost_callback
        self._lost_seen: list[int] = []
        self.pages = pages
        #: 0: the kernel wakes a waiting poll on every sample (libbpf's perf_buffer__new); else once a CPU's
        #: buffer holds this many bytes (a poll's timeout still collects what sits below it)
        self.wakeup_bytes = wakeup_bytes
        ncpu = ll.libbpf_num_possible_cpus()
        if ncpu <= 0:
            raise error(-ncpu if ncpu < 0 else errno.EINVAL, "libbpf_num_possible_cpus")
        own = os.dup(fd)
        try:
            # the lost array must exist before libbpf can call bpflink_perf_lost
            self._lost_seen = [0] * ncpu
            if background:
                self._new_drain(backlog)
                pb = ll.bpflink_perf_buffer_new_drained(own, pages, self._drain, wakeup_bytes)
            else:
                pb = ll.bpflink_perf_buffer_new(own, pages, self._state, wakeup_bytes)
            if pb == ffi.NULL:
                raise error(ffi.errno or errno.EINVAL, f"perf_buffer__new(map fd {fd}, pages={pages})",
                            hint="the map must be a BPF_MAP_TYPE_PERF_EVENT_ARRAY; each CPU's buffer is locked "
                                 "memory (lower pages or raise RLIMIT_MEMLOCK / perf_event_mlock_kb)")
            self._pb = pb
            self._fd = own
            # the reader waits on libbpf's epoll fd, or on the drain's: readable while its backlog holds samples
            ready = ll.perf_buffer__epoll_fd(pb) if self._drain is None else ll.bpflink_drain_ready_fd(self._drain)
            err = ll.bpflink_reader_init(self._state, ready, ncpu)
            if err < 0:
                raise error(-err, "PerfBuffer: epoll set")
            if self._drain is not None:
                err = ll.bpflink_drain_start(self._drain, pb, self._state)
                if err < 0:
                    raise error(-err, "PerfBuffer: start the drain thread")
        except BaseException:
            if self._fd < 0:
                os.close(own)
            self.close()
            raise

    def _free(self) -> None:
        self._stop_drain()
        if self._pb is not None and os.getpid() != self._pid:
            # a fork()ed child: perf_buffer__free would disable the perf events the parent shares (same open
            # files) and unmap rings the child never had; close the child's copies of the fds, and leave
            # libbpf's small bookkeeping (the child's copy of the parent's heap) alone
            for i in range(int(ll.perf_buffer__buffer_cnt(self._pb))):
                fd = ll.perf_buffer__buffer_fd(self._pb, i)
                if fd >= 0:
                    os.close(fd)
            os.close(ll.perf_buffer__epoll_fd(self._pb))
            self._pb = None
        if self._pb is not None:
            ll.perf_buffer__free(self._pb)
            self._pb = None
        self._free_drain()
        self._release_state()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @property
    def buffer_count(self) -> int:
        """How many per-CPU buffers libbpf opened (``perf_buffer__buffer_cnt``)."""
        self._enter()
        try:
            return int(ll.perf_buffer__buffer_cnt(self._pb))
        finally:
            self._leave()

    @property
    def lost(self) -> int:
        """Samples the kernel reported lost so far (every CPU)."""
        return sum(self._lost_seen)

    @property
    def lost_per_cpu(self) -> dict[int, int]:
        """{cpu: samples lost} for the CPUs that lost any."""
        return {cpu: n for cpu, n in enumerate(self._lost_seen) if n}

    def _after_consume(self) -> int:
        return self._report_lost()

    def _report_lost(self) -> int:
        """Take libbpf's lost counts into ``lost``; call ``lost_callback`` per CPU with the new losses."""
        st = self._state
        new = 0
        if st.lost_total != sum(self._lost_seen):
            for cpu in range(len(self._lost_seen)):
                delta = int(st.lost[cpu]) - self._lost_seen[cpu]
                if delta:
                    self._lost_seen[cpu] += delta
                    new += delta
                    if self._lost_callback is not None:
                        self._lost_callback(cpu, delta)
        return new

    def _consume_into(self, max_records: int, index: int | None = None) -> None:
        if self._drain is not None:
            self._consume_backlog()
            return
        # libbpf's raw perf buffer with bpflink's event callback, which stops a buffer's walk at max_records
        ret = ll.bpflink_perf_consume(self._pb, self._state, -1 if index is None else index)
        if ret < 0 and not self._state.batch.error:
            raise error(-ret, "perf_buffer__consume_buffer")

    def _hand_over(self, srcs: list[int] | None, recs: list[bytes]) -> list[PerfRecord]:
        cpus = srcs if srcs is not None else [0] * len(recs)
        cb = self._callback
        if cb is None:
            # made in one C loop: NamedTuple's __new__ is a Python function, and even tuple.__new__ mapped over
            # the pairs costs ~200 ns a record
            return pairs(PerfRecord, cpus, recs)
        i = 0
        try:
            for cpu, rec in zip(cpus, recs):
                i += 1
                ret = cb(cpu, rec)
                if ret is not None and type(ret) is int and ret < 0:  # _stopped(), inlined: the hot loop
                    break
        finally:
            self._keep(cpus[i:], recs[i:])  # after a raise or a stop, the rest comes with the next call
        return []

    def poll(self, timeout: float | None = None) -> list[PerfRecord]:
        """Wait up to ``timeout`` seconds (None: until records arrive or ``close()``) and return the samples
        as ``PerfRecord(cpu, data)`` (``[]`` with a callback: they went to it). Exceptions from callbacks
        propagate from here."""
        return self._take(timeout)

    def consume(self) -> list[PerfRecord]:
        """Every sample waiting in every CPU's buffer, without waiting (``perf_buffer__consume``)."""
        return self._take(0)

    def consume_buffer(self, index: int) -> list[PerfRecord]:
        """The samples waiting in buffer ``index`` only (``perf_buffer__consume_buffer``; index in
        ``range(buffer_count)``, not a CPU number when some CPUs are offline)."""
        if type(index) is not int:
            raise TypeError(f"index must be an int, not {type(index).__name__}")
        if self._drain is not None:
            raise ValueError("consume_buffer: with background=True the drain thread reads the kernel's buffers; "
                             "use consume() or poll()")
        count = self.buffer_count
        if not 0 <= index < count:
            raise IndexError(f"buffer index {index} out of range (this PerfBuffer has {count})")
        return self._take(0, index=index)

    def poll_batch(self, timeout: float | None = None, *, max_records: int | None = None,
                   dtype: Any = None) -> RecordBatch:
        """Like ``RingBuffer.poll_batch``; ``batch.cpus`` gives each record's CPU and ``batch.lost`` the samples
        reported lost meanwhile. ``max_records`` caps the batch as for rings: the walk of the per-CPU buffers
        stops there (round robin across calls, so a busy CPU cannot starve the others)."""
        return self._batch(timeout, max_records, dtype)

    def __repr__(self) -> str:
        if self.closed:
            return "<PerfBuffer closed>"
        return f"<PerfBuffer pages={self.pages}{f' backlog={self.backlog}' if self._drain is not None else ''}>"


__all__ = ["PerfBuffer", "PerfRecord"]
