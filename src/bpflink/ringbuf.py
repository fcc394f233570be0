"""``RingBuffer``: read ``BPF_MAP_TYPE_RINGBUF`` maps through libbpf's own ring buffer (``ring_buffer__*``).

libbpf walks the rings; bpflink adds three ways to receive what it hands over, all of them copies (no view into
the ring outlives the consumer position):

- ``poll(timeout)`` / ``consume()`` return the records as a list of ``bytes``; ``for rec in rb`` iterates them;
- ``RingBuffer(map, callback=fn)`` calls ``fn(record)`` per record (a negative return value stops the poll, as in
  libbpf; records already copied out then wait for the next call, so nothing is lost);
- ``poll_batch()`` / ``consume_batch()`` return a ``RecordBatch`` (one read-only ``memoryview`` of every record +
  lengths, offsets on demand, or a numpy structured array with ``dtype=``): one Python call per batch instead of
  one per record, and no Python object per record unless asked for.

Every path runs the same C loop: libbpf's ``ring_buffer__consume_n`` calls a C callback (include/ringbuf.c) that
copies each record into one growing block; the ``RecordBatch`` then owns that block as it is (no second copy) and
gives it back to the reader's pool of spare blocks when the last view of it is gone. (A cffi ``extern "Python"``
callback per record measured 1.25 µs a record here, mostly the GIL taken and given back around each call: the
batch, then a plain Python loop over it, costs a fifth of that; bench/README.md.)

``background=True`` (here and on ``PerfBuffer``) adds a native thread that moves records out of the kernel's
buffers into a backlog in this process as they arrive, without the GIL, so pauses of the Python reader fill the
backlog instead of the rings (include/drain.c).

Waiting happens on ``fileno()``, an epoll set holding libbpf's epoll fd and an eventfd that ``close()`` writes,
so closing from another thread wakes the poller (which returns what it has; later calls raise ``ValueError``).
``poll()`` waits in slices of at most ``SLICE`` seconds and a signal ends ``epoll_wait`` early, so Ctrl-C raises
``KeyboardInterrupt`` promptly.

>>> # not run as a doctest: needs a loaded object `obj` whose program writes a ring buffer
>>> rb = RingBuffer(obj.map("events"))  # doctest: +SKIP
>>> for record in rb.poll(timeout=1.0):  # doctest: +SKIP
...     seq = int.from_bytes(record[:8], "little")
>>> batch = rb.poll_batch(timeout=1.0, dtype=np.dtype([("seq", "<u8"), ("cpu", "<u4"), ("tag", "<u4")]))
...     # doctest: +SKIP
>>> batch.array["seq"]  # doctest: +SKIP
array([0, 1, 2, ...], dtype=uint64)
"""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from typing import Any, NamedTuple, Optional

from . import lowlevel as ll
from ._fd import as_fd
from ._fdowner import split
from ._native import ffi, has
from .errors import error

#: the longest single wait inside ``poll()``: the upper bound on how late a signal raised in another thread
#: (or a deferred handler) is noticed
SLICE = 0.1
#: the longest ``poll_interval`` (seconds): a reader looking less often than this is better served by a timeout
MAX_POLL_INTERVAL = 1.0
#: ``ring_buffer__consume_n`` is libbpf 1.5's; with an older system libbpf (sdist builds) a consume takes every
#: record there is
_CONSUME_N: Any = ll.ring_buffer__consume_n if has("ring_buffer__consume_n") else None
#: the most records one consume takes by default (libbpf's ``ring_buffer__consume_n``)
DEFAULT_BATCH = 65536
#: by default a consume stops near this many bytes of records, so the batch memory stays small and is reused
#: warm (fresh pages cost more than the copy on a VM: bench/README.md)
BATCH_BYTES = 1 << 20
# Small hand-overs: the records are new small objects, and a call's worth should fit in memory the allocator
# reuses (arenas freed and mapped again cost page faults, a lot of them on a VM).
#: the most records one ``poll()``/``consume()`` returns (or gives to callbacks); the rest come with the next calls
HAND_OVER = 8192
#: about how many bytes of records one ``poll()``/``consume()`` hands over
HAND_OVER_BYTES = 128 << 10
#: spare batch blocks a reader keeps for reuse (a batch's block returns to the pool when its last view is gone)
POOL_BLOCKS = 2
#: the largest block (bytes of records) the pool keeps; bigger ones, left by a burst, are freed
POOL_BLOCK_BYTES = 16 << 20
#: ``background=True``'s backlog unless ``backlog=`` says otherwise (bytes; allocated at once, its pages touched
#: as records first reach them)
DEFAULT_BACKLOG = 16 << 20
#: the smallest ``backlog=`` accepted; the C side rounds every backlog up to a power of two of at least 512 KiB
#: (two of the largest perf samples always fit) and, for rings, twice the largest ring and a little more
MIN_BACKLOG = 1
#: the largest ``backlog=`` accepted (16 GiB)
MAX_BACKLOG = 1 << 34
_INT_MAX = 0x7FFFFFFF
_NO_LIMIT = (1 << 64) - 1

RingCallback = Callable[[bytes], Optional[int]]


def _map_fdinfo(fd: int) -> dict[str, str]:
    """``/proc/self/fdinfo/FD`` of a BPF map (map_type, max_entries, ...); empty for anything else."""
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    info = dict(line.split(":", 1) for line in lines if ":" in line)
    return {k.strip(): v.strip() for k, v in info.items()} if "map_type" in info else {}


def _check_map(obj: object, what: str, want_type: int, want_name: str) -> int:
    """The fd of ``obj`` after checking (through fdinfo, no bpf() call) that it is a map of ``want_type``."""
    if isinstance(obj, (str, bytes, os.PathLike)):
        raise TypeError(f"{what} must be a Map, an int fd or have fileno(), not {type(obj).__name__} (open a pinned "
                        "map with Map.from_pin first)")
    fd = as_fd(obj, what)
    info = _map_fdinfo(fd)
    if not info:
        raise ValueError(f"{what} (fd {fd}) is not a BPF map")
    if int(info["map_type"]) != want_type:
        from .enums import MapType

        try:
            got = MapType(int(info["map_type"])).name
        except ValueError:
            got = info["map_type"]
        raise ValueError(f"{what} (fd {fd}) is a {got} map; {want_name} needs a {MapType(want_type).name} map")
    return fd


def _ring_bytes(fd: int) -> int:
    """A ring buffer map's size (its ``max_entries``), from fdinfo."""
    return int(_map_fdinfo(fd).get("max_entries", 0))


def _check_background(background: object, backlog: object) -> None:
    if type(background) is not bool:
        raise TypeError(f"background must be a bool, not {type(background).__name__}")
    if type(backlog) is not int:
        raise TypeError(f"backlog must be an int (bytes), not {type(backlog).__name__}")
    if not MIN_BACKLOG <= backlog <= MAX_BACKLOG:
        raise ValueError(f"backlog must be in {MIN_BACKLOG}..{MAX_BACKLOG} bytes, got {backlog}")


def _check_poll_interval(poll_interval: object) -> float | None:
    if poll_interval is None:
        return None
    if not isinstance(poll_interval, (int, float)) or isinstance(poll_interval, bool):
        raise TypeError(f"poll_interval must be a number of seconds or None, not {type(poll_interval).__name__}")
    if not 0 < poll_interval <= MAX_POLL_INTERVAL:
        raise ValueError(f"poll_interval must be in (0, {MAX_POLL_INTERVAL}] seconds, got {poll_interval}")
    return float(poll_interval)


def _keep(owner: object, _cdata: object) -> None:
    """A cffi destructor that only holds ``owner`` alive until its own cdata goes."""


class _Pool:
    """Spare batch blocks of one reader. A ``RecordBatch`` owns its block (the C memory its views show) and gives
    it back here when the last view of it is gone, so the next consume fills memory already touched (fresh pages
    cost more than the copy on a VM). Thread-safe without a lock: ``list.append``/``pop`` are atomic, and a block
    given back after ``close()`` is freed by the giver (it looks at ``closed`` again after appending)."""

    __slots__ = ("_free_block", "closed", "free")

    def __init__(self) -> None:
        self.closed = False
        self.free: list[Any] = []
        self._free_block = ll.bpflink_batch_free  # bound now: destructors may run late in interpreter shutdown

    def take(self) -> Any:
        try:
            return self.free.pop()
        except IndexError:
            pass
        blk = ll.bpflink_batch_new()
        if blk == ffi.NULL:
            raise MemoryError("no memory for a record batch")
        return blk

    def give(self, blk: Any, _cdata: object = None) -> None:
        if self.closed or len(self.free) >= POOL_BLOCKS or blk.cap > POOL_BLOCK_BYTES:
            self._free_block(blk)
            return
        self.free.append(blk)
        if self.closed:  # close() drained the pool meanwhile
            self.drain()

    def drain(self) -> None:
        while True:
            try:
                blk = self.free.pop()
            except IndexError:
                return
            self._free_block(blk)

    def close(self) -> None:
        self.closed = True
        self.drain()


def _align8(n: int) -> int:
    return (n + 7) & ~7


class RecordBatch:
    """Records copied out of the rings in one C loop, handed over without another copy.

    ``data`` is one read-only ``memoryview`` holding every record; ``lengths[i]`` is record ``i``'s size,
    ``offsets[i]`` where it starts (records follow each other at 8-byte aligned offsets), ``sources[i]`` its ring
    index (``RingBuffer``) or CPU (``PerfBuffer``, also ``cpus``): ``memoryview`` arrays of C integers, ready for
    ``numpy.frombuffer``. With a numpy ``dtype``, record ``i`` fills ``array[i]`` (cut or zero-padded to
    ``dtype.itemsize``; ``lengths`` keeps the real sizes) and sits at ``i * itemsize``; ``as_array(dtype)`` views
    a batch of equal-length records the same way without a dtype given up front.

    ``batch[i]``, iteration (lazy: ``bytes`` made as they are reached) and ``records()`` give records as
    ``bytes``. The memory belongs to the batch and every view of it: it is reused for a later batch only once
    the batch, ``data``, ``array`` and every other view made from them are gone.

    >>> # not run as a doctest: needs a ring buffer `rb` with records waiting (tests/test_ringbuf.py)
    >>> batch = rb.consume_batch()  # doctest: +SKIP
    >>> len(batch), batch[0], batch.lengths[0]  # doctest: +SKIP
    >>> np.frombuffer(batch.lengths, dtype=np.uint32)  # doctest: +SKIP
    """

    __slots__ = ("_buf", "_offsets", "_same_known", "_sources", "array", "data", "lengths", "lost", "stride")

    def __init__(self, data: Any, lengths: memoryview, sources: memoryview | None = None, *, stride: int = 0,
                 array: Any = None, lost: int = 0, same_length: int = 0) -> None:
        # _buf is what records are sliced from: bytes, or the cffi buffer over a C block (its slices are bytes)
        self._buf = bytes(data) if isinstance(data, memoryview) else data
        self.data = memoryview(self._buf).toreadonly()
        self._same_known = same_length  # all records this long (0: mixed; -1: not looked at yet)
        self.lengths = lengths
        self._sources = sources
        self._offsets: memoryview | None = None
        self.stride = stride
        self.array = array
        #: perf buffers: samples the kernel reported lost while this batch was read
        self.lost = lost

    @classmethod
    def _adopt(cls, blk: Any, pool: _Pool, stride: int, same: int = 0) -> RecordBatch:
        """A batch over C block ``blk`` (filled by a consume), which it owns from now on: the block goes back to
        ``pool`` when the last view of its memory is gone. The lengths' and sources' cdata hold the data's cdata
        alive, so its destructor, which gives the block back, runs after every view of the three arrays."""
        count = int(blk.count)
        owner = ffi.gc(blk.data, partial(pool.give, blk))
        lengths = memoryview(ffi.buffer(ffi.gc(blk.length, partial(_keep, owner)), 4 * count)).toreadonly()
        sources = None
        if blk.with_source:
            sources = memoryview(ffi.buffer(ffi.gc(blk.source, partial(_keep, owner)), 4 * count)).toreadonly()
            sources = sources.cast("i")
        # same: the C copy knew every record was that long; else (-1) a C loop looks only when a path needs it
        return cls(ffi.buffer(owner, int(blk.used)), lengths.cast("I"), sources, stride=stride,
                   same_length=same or -1)

    @property
    def _same(self) -> int:
        """The length of every record when they are all one length, else 0 (records() takes a faster path)."""
        same = self._same_known
        if same < 0:
            n = len(self.lengths)
            same = self._same_known = self.lengths[0] if n and ll.bpflink_lengths_same(
                ffi.from_buffer("uint32_t[]", self.lengths), n) else 0
        return same

    @property
    def sources(self) -> memoryview:
        """Each record's ring index (``RingBuffer``; all 0 with one ring) or CPU (``PerfBuffer``)."""
        if self._sources is None:
            self._sources = memoryview(bytes(4 * len(self.lengths))).cast("i")
        return self._sources

    @property
    def cpus(self) -> memoryview:
        """``sources`` under its perf buffer name."""
        return self.sources

    def _step(self) -> int:
        """The distance between records when it is the same for all (0: packed records of mixed lengths)."""
        return self.stride or (_align8(self._same) if self._same else 0)

    @property
    def offsets(self) -> memoryview:
        """Where each record starts in ``data`` (``uint64``, computed on first use)."""
        if self._offsets is None:
            from array import array

            n = len(self.lengths)
            step = self._step()
            if step or not n:
                offs = array("Q", range(0, n * step, step) if step else ())
            else:
                offs = array("Q", bytes(8 * n))
                ll.bpflink_batch_offsets(ffi.from_buffer("uint32_t[]", self.lengths), n,
                                          ffi.from_buffer("uint64_t[]", offs))
            self._offsets = memoryview(offs).toreadonly()
        return self._offsets

    def as_array(self, dtype: Any) -> Any:
        """The records as a read-only numpy structured array over ``data`` (no copy), one element per record:
        for batches whose records all sit the same distance apart (one length, or ``poll_batch(dtype=...)``'s
        fixed slots) at least ``dtype.itemsize`` bytes. Bytes past a record's length read as zeros.

        >>> # not run as a doctest: needs a ring buffer `rb` with records waiting
        >>> rb.consume_batch().as_array([("seq", "<u8"), ("cpu", "<u4"), ("tag", "<u4")])  # doctest: +SKIP
        """
        dt = _numpy_dtype(dtype)
        import numpy as np

        n = len(self.lengths)
        if not n:
            return np.empty(0, dtype=dt)
        step = self._step()
        if not step or step < dt.itemsize:
            lens = f"{min(self.lengths)}..{max(self.lengths)}" if not self._same else str(self._same)
            raise ValueError(f"as_array({dt}) needs records of one length of at least {dt.itemsize} bytes; this "
                             f"batch's records are {lens} bytes long (poll_batch(dtype=...) pads them in C)")
        return np.ndarray((n,), dtype=dt, buffer=self.data, strides=(step,))

    def __len__(self) -> int:
        return len(self.lengths)

    def _cut(self, n: int) -> int:
        return min(n, self.stride) if self.stride else n

    def __getitem__(self, i: int) -> bytes:
        if type(i) is not int:
            raise TypeError(f"RecordBatch indices must be int, not {type(i).__name__} (use slice(start, stop))")
        count = len(self.lengths)
        if i < 0:
            i += count
        if not 0 <= i < count:
            raise IndexError(f"record {i} out of range (this batch has {count})")
        step = self._step()
        off = i * step if step else self.offsets[i]
        return self._buf[off:off + self._cut(self.lengths[i])]

    def __iter__(self) -> Iterator[bytes]:
        n = len(self.lengths)
        for start in range(0, n, 1024):
            yield from self.slice(start, min(n, start + 1024))

    def slice(self, start: int, stop: int) -> list[bytes]:
        """Records ``start`` to ``stop`` as ``bytes``."""
        buf = self._buf
        start, stop, _ = slice(start, stop).indices(len(self.lengths))
        step = self._step()
        if self._same:  # one slice of the block as bytes, split in C: a Python slice a record costs ~3x more
            chunk = buf[start * step:stop * step]
            return split(chunk if type(chunk) is bytes else bytes(chunk), step, self._cut(self._same))
        lengths = self.lengths[start:stop]
        if step:  # stride, mixed lengths
            return [buf[o:o + min(n, step)] for o, n in zip(range(start * step, stop * step, step), lengths)]
        return [buf[o:o + n] for o, n in zip(self.offsets[start:stop], lengths)]

    def records(self) -> list[bytes]:
        """Every record as its own ``bytes`` (with a dtype: each cut to ``itemsize``)."""
        return self.slice(0, len(self.lengths))

    def __repr__(self) -> str:
        return f"<RecordBatch {len(self)} records, {len(self.data)} bytes>"


def _empty_batch(array: Any = None) -> RecordBatch:
    return RecordBatch(b"", memoryview(b"").cast("I"), memoryview(b"").cast("i"), array=array)


def _numpy_dtype(dtype: Any) -> Any:
    try:
        import numpy as np
    except ImportError as exc:  # pragma: no cover - numpy is optional
        raise ImportError("dtype= needs numpy (pip install numpy)") from exc
    dt = np.dtype(dtype)
    if dt.itemsize <= 0:
        raise ValueError(f"dtype {dt} has no size")
    return dt


class _Reader:
    """The lifecycle both readers share: an idempotent, thread-safe close that never frees what a poller in
    another thread (or an asyncio waiter) is still using, and one consumer at a time."""

    _kind = "reader"
    _consume_lock: threading.Lock
    #: whether the rings stay mapped in a fork()ed child (BPF ring buffer maps do; perf rings do not)
    _inherited_by_fork = True

    def _setup(self) -> None:
        self._lock = threading.Lock()  # guards _closed, _busy, _freed
        self._consume_lock = threading.Lock()  # one thread inside libbpf's consume at a time
        self._consumer: int | None = None  # thread id inside a poll (callbacks calling back in: an error)
        self._busy = 0
        self._closed = False
        self._freed = False
        self._pid = os.getpid()
        self._state = ffi.new("struct bpflink_reader *")
        self._state.wait_fd = self._state.wake_fd = -1
        self._pool = _Pool()
        self._drain: Any = None  # background=True: the drain thread and its backlog (include/drain.c)
        #: the backlog's size in bytes (what ``backlog=`` asked, rounded up to a power of two); 0 without
        #: background
        self.backlog = 0
        # records copied out of the rings but not handed over yet: beyond HAND_OVER in one call, or after a
        # callback raised or stopped the poll. _rest_src is None when every source is 0 (one ring)
        self._rest_rec: list[bytes] = []
        self._rest_src: list[int] | None = None
        # the batch a poll is handing over, sliced into records only as they are handed over
        self._pending: RecordBatch | None = None
        self._cursor = 0
        self._chunk = 4096  # records per consume when the caller sets no limit: BATCH_BYTES / average record
        #: None: a waiting poll sleeps until the kernel wakes it; else it looks every ``poll_interval`` seconds
        self.poll_interval: float | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------
    def _enter(self) -> None:
        with self._lock:
            if self._closed:
                raise ValueError(f"I/O operation on closed {self._kind}")
            if not self._inherited_by_fork and os.getpid() != self._pid:
                raise ValueError(f"this {self._kind} was made before fork(): the kernel does not map its rings "
                                 f"into the child (VM_DONTCOPY); make a new {self._kind} in the child")
            self._busy += 1

    def _leave(self) -> None:
        with self._lock:
            self._busy -= 1
            free = self._closed and self._busy == 0 and not self._freed
            if free:
                self._freed = True
        if free:
            self._free()

    def close(self) -> None:
        """Free libbpf's reader and the fds. Idempotent and thread-safe: a ``poll()`` running in another thread
        is woken and returns what it has; the memory goes when the last poller has left libbpf."""
        with self._lock:
            if getattr(self, "_closed", True):
                return
            self._closed = True
            if self._state.wake_fd >= 0:
                ll.bpflink_reader_wake(self._state)
            free = self._busy == 0 and not self._freed
            if free:
                self._freed = True
        if free:
            self._free()

    def _free(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _new_drain(self, backlog: int) -> None:
        self._drain = ll.bpflink_drain_new(backlog)
        if self._drain == ffi.NULL:
            self._drain = None
            raise error(ffi.errno or errno.ENOMEM, f"{self._kind}: a backlog of {backlog} bytes")
        self.backlog = ll.bpflink_drain_capacity(self._drain)

    def _stop_drain(self) -> None:
        """Stop the drain thread, before libbpf frees the buffers it walks (a fork()ed child has none to stop)."""
        if self._drain is not None and os.getpid() == self._pid:
            ll.bpflink_drain_stop(self._drain)

    def _free_drain(self) -> None:
        if self._drain is not None:
            ll.bpflink_drain_free(self._drain)
            self._drain = None

    def _consume_backlog(self) -> None:
        """A consume from the drain thread's backlog, in the order the thread took the records."""
        ret = ll.bpflink_drain_consume(self._drain, self._state)
        if ret < 0 and not self._state.batch.error:
            raise error(-ret, f"{self._kind}: the backlog")
        failed = ll.bpflink_drain_error(self._drain)
        if failed and not self._state.batch.count:
            raise error(-failed, f"{self._kind}: the drain thread's walk of the kernel's buffers")

    def _release_state(self) -> None:
        """Free the C reader's fds, counters and block, and the spare blocks (batches still alive free theirs)."""
        ll.bpflink_reader_release(self._state)
        self._pool.close()

    @property
    def closed(self) -> bool:
        return getattr(self, "_closed", True)

    def fileno(self) -> int:
        """An fd that is readable when records are waiting (or the reader was closed): for ``select``/``epoll``
        and event loops. Valid until ``close()``. It may wake once with nothing to read (a perf event reports each
        wake-up once, even after a consume took its samples): ``poll(0)`` then returns ``[]``."""
        if self.closed:
            raise ValueError(f"I/O operation on closed {self._kind}")
        return int(self._state.wait_fd)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def __copy__(self) -> Any:
        raise TypeError(f"{self._kind} cannot be copied (it owns libbpf's reader and fds)")

    def __deepcopy__(self, memo: object) -> Any:
        raise TypeError(f"{self._kind} cannot be copied (it owns libbpf's reader and fds)")

    def __reduce__(self) -> Any:
        raise TypeError(f"{self._kind} cannot be pickled")

    # --- consuming ---------------------------------------------------------------------------------------------
    def _consume_into(self, max_records: int, index: int | None = None) -> None:  # pragma: no cover
        raise NotImplementedError

    def _after_consume(self) -> int:
        """Bookkeeping after each consume (perf: lost counts); returns how many events it reported."""
        return 0

    def _with_source(self) -> bool:
        return True

    def _hand_over(self, srcs: list[int] | None, recs: list[bytes]) -> list[Any]:  # pragma: no cover
        """Give records to callbacks or return them; on a raise or stop, keep the rest with ``_keep``."""
        raise NotImplementedError

    def _keep(self, srcs: list[int] | None, recs: list[bytes]) -> None:
        """Put records back in front of the rest (they come first with the next call)."""
        if not recs:
            return
        if srcs is None and self._rest_src is None:
            self._rest_rec = recs + self._rest_rec
            return
        old = self._rest_src if self._rest_src is not None else [0] * len(self._rest_rec)
        self._rest_src = (srcs if srcs is not None else [0] * len(recs)) + old
        self._rest_rec = recs + self._rest_rec

    def _rest_batch(self, limit: int, stride: int) -> RecordBatch:
        """The records left from earlier polls, as a batch laid out as ``_collect`` lays one out."""
        from array import array

        self._materialize()
        srcs, recs = self._rest_src, self._rest_rec
        self._rest_rec, self._rest_src = recs[limit:], None if srcs is None else srcs[limit:]
        recs = recs[:limit]
        if self._rest_src is not None and not self._rest_rec:
            self._rest_src = None
        if stride:
            data = b"".join(r[:stride].ljust(stride, b"\0") for r in recs)
        else:
            data = b"".join(r.ljust((len(r) + 7) & ~7, b"\0") for r in recs)
        sources = None if srcs is None else memoryview(array("i", srcs[:limit])).toreadonly()
        lengths = array("I", map(len, recs))
        same = lengths[0] if lengths and lengths.count(lengths[0]) == len(lengths) else 0
        return RecordBatch(data, memoryview(lengths).toreadonly(), sources, stride=stride, same_length=same)

    def _materialize(self) -> None:
        """Move what is left of the pending batch into the rest lists."""
        batch, start = self._pending, self._cursor
        if batch is None:
            return
        self._pending = None
        recs = batch.records()[start:]
        srcs = None if batch._sources is None else batch._sources[start:].tolist()
        if srcs is None and self._rest_src is None:
            self._rest_rec += recs
        else:
            old = self._rest_src if self._rest_src is not None else [0] * len(self._rest_rec)
            self._rest_src = old + (srcs if srcs is not None else [0] * len(recs))
            self._rest_rec += recs

    def _has_rest(self) -> bool:
        return bool(self._rest_rec) or self._pending is not None

    def _next_records(self) -> tuple[list[int] | None, list[bytes]]:
        """Records to hand over now: those put back first, else the next slice of the pending batch."""
        if self._rest_rec:
            recs, self._rest_rec = self._rest_rec[:HAND_OVER], self._rest_rec[HAND_OVER:]
            srcs = None
            if self._rest_src is not None:
                srcs, self._rest_src = self._rest_src[:HAND_OVER], self._rest_src[HAND_OVER:]
                if not self._rest_rec:
                    self._rest_src = None
            return srcs, recs
        batch = self._pending
        assert batch is not None
        start = self._cursor
        total = len(batch.lengths)
        step = batch._same or max(1, len(batch.data) // max(total, 1))
        stop = min(total, start + max(1, min(HAND_OVER, HAND_OVER_BYTES // (step + 40))))
        recs = batch.slice(start, stop)
        srcs = None if batch._sources is None else batch._sources[start:stop].tolist()
        if stop >= total:
            self._pending = None
        else:
            self._cursor = stop
        return srcs, recs

    def _locked(self) -> _Consuming:
        if self._consumer == threading.get_ident():
            raise RuntimeError(f"{self._kind}: poll/consume called from inside one of its own callbacks")
        return _Consuming(self)

    def _collect(self, max_records: int, stride: int, index: int | None = None) -> RecordBatch | None:
        """Consume up to ``max_records`` into a C block and hand the block to a ``RecordBatch`` (no copy): None
        when nothing arrived."""
        st = self._state
        blk = st.batch
        if blk == ffi.NULL:
            blk = st.batch = self._pool.take()
        ll.bpflink_batch_reset(blk, stride, 1 if self._with_source() else 0, max_records)
        self._consume_into(max_records, index)
        same = ll.bpflink_batch_settle(blk)
        count = int(blk.count)
        if blk.error:
            dropped = int(blk.dropped)
            ll.bpflink_batch_reset(blk, 0, 0, 0)
            raise MemoryError(f"{self._kind}: no memory to copy records out ({dropped + count} records lost)")
        if not count:
            return None
        self._chunk = max(64, min(DEFAULT_BATCH, BATCH_BYTES * count // max(int(blk.used), 1)))
        st.batch = ffi.NULL  # the batch owns the block now; the next consume takes a spare one from the pool
        return RecordBatch._adopt(blk, self._pool, stride, same)

    def _wait(self, deadline: float | None) -> bool:
        """Wait for records until ``deadline`` (monotonic; None: forever) in slices; False once the deadline
        passed or the reader was closed."""
        while True:
            if self._closed:
                return False
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            if self.poll_interval is not None:
                nap = self.poll_interval if left is None else min(left, self.poll_interval)
                ret = ll.bpflink_reader_nap(self._state, max(1, int(nap * 1e6)))  # the GIL is released
                if ret == 0:
                    return True  # look again
            else:
                ms = int(SLICE * 1000) if left is None else max(0, min(int(left * 1000 + 0.999), int(SLICE * 1000)))
                ret = ll.bpflink_reader_wait(self._state, ms)  # the GIL is released while waiting
            if ret == ll.BPFLINK_WOKEN:
                return False
            if ret >= 0:
                # records, or a slice that ended quietly: look all the same, as poll_async does. Records below a
                # perf watermark wake nobody, and a perf wake-up an earlier consume took leaves the fd quiet
                # while records wait; so a poll collects them at least every SLICE seconds.
                return True
            if ret != -errno.EINTR:
                raise error(-ret, f"{self._kind}.poll: {'ppoll' if self.poll_interval is not None else 'epoll_wait'}")
            # EINTR: back in Python, where pending signal handlers run (Ctrl-C raises here)

    @staticmethod
    def _deadline(timeout: float | None) -> float | None:
        if timeout is None:
            return None
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
            raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
        if timeout != timeout:
            raise ValueError("timeout must not be NaN")
        return time.monotonic() + max(0.0, float(timeout))

    @staticmethod
    def _check_max(max_records: int) -> int:
        if type(max_records) is not int:
            raise TypeError(f"max_records must be an int, not {type(max_records).__name__}")
        if not 1 <= max_records <= _INT_MAX:
            raise ValueError(f"max_records must be in 1..{_INT_MAX}, got {max_records}")
        return max_records

    def _take(self, timeout: float | None, index: int | None = None) -> list[Any]:
        """The poll loop behind ``poll``/``consume``/iteration: records for the caller (the rest went to
        callbacks); returns as soon as anything was handed over, after the timeout, or when closed."""
        deadline = self._deadline(timeout)
        self._enter()
        try:
            with self._locked():
                while not self._closed:
                    if self._has_rest():
                        return self._hand_over(*self._next_records())
                    batch = self._collect(self._chunk, 0, index)
                    reported = self._after_consume()
                    if batch is not None:
                        self._pending, self._cursor = batch, 0
                        return self._hand_over(*self._next_records())
                    if reported:
                        return []
                    if deadline is not None and deadline <= time.monotonic():
                        break
                    if not self._wait(deadline):
                        if self._closed:
                            break
                        deadline = time.monotonic()  # one last look after the deadline
                return []
        finally:
            self._leave()

    def _batch(self, timeout: float | None, max_records: int | None, dtype: Any) -> RecordBatch:
        deadline = self._deadline(timeout)
        if max_records is not None:
            self._check_max(max_records)
        dt = None if dtype is None else _numpy_dtype(dtype)
        stride = 0 if dt is None else dt.itemsize
        self._enter()
        try:
            with self._locked():
                while not self._closed:
                    batch: RecordBatch | None
                    if self._has_rest():  # records a poll() left for later come first
                        batch = self._rest_batch(max_records or DEFAULT_BATCH, stride)
                    else:
                        batch = self._collect(self._chunk if max_records is None else max_records, stride)
                    lost = self._after_consume()
                    if batch is not None:
                        batch.lost = lost
                        if dt is not None:
                            import numpy as np

                            batch.array = np.frombuffer(batch.data, dtype=dt, count=len(batch))
                        return batch
                    if deadline is not None and deadline <= time.monotonic():
                        break
                    if not self._wait(deadline):
                        if self._closed:
                            break
                        deadline = time.monotonic()
        finally:
            self._leave()
        if dt is not None:
            import numpy as np

            return _empty_batch(np.empty(0, dtype=dt))
        return _empty_batch()

    def poll_batch(self, timeout: float | None = None, *, max_records: int | None = None,
                   dtype: Any = None) -> RecordBatch:
        """Wait up to ``timeout`` seconds (None: until records arrive or ``close()``) and copy up to
        ``max_records`` records out in one C loop (default: about ``BATCH_BYTES`` worth, at most
        ``DEFAULT_BATCH``). An empty batch after a timeout or a close. Callbacks are
        bypassed: every record is in the batch.

        With ``dtype`` (anything ``numpy.dtype`` accepts, e.g. a structured dtype matching the C struct),
        ``batch.array`` is a read-only numpy array with one element per record.
        """
        return self._batch(timeout, max_records, dtype)

    def consume_batch(self, *, max_records: int | None = None, dtype: Any = None) -> RecordBatch:
        """``poll_batch`` without waiting: what is in the rings now (up to ``max_records``)."""
        return self._batch(0, max_records, dtype)

    def __iter__(self) -> Iterator[Any]:
        """Every record as it arrives, forever; the loop ends when the reader is closed (from another thread,
        a signal handler or a callback)."""
        while not self._closed:
            try:
                records = self._take(None)
            except ValueError:
                if self._closed:
                    return
                raise
            yield from records

    async def poll_async(self, timeout: float | None = None) -> list[Any]:
        """``poll()`` for asyncio: waits on ``fileno()`` through the running loop (``add_reader``), never
        blocking it. Returns [] after a timeout or when the reader is closed meanwhile."""
        deadline = self._deadline(timeout)
        while True:
            records = self._take(0)
            if records or self._closed:
                return records
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return records
            # look again after a slice even without a watermark: a perf wake-up taken by an earlier consume can
            # leave the fd quiet while records wait (an async iteration hung in 1-vCPU guests)
            if self.poll_interval is not None:  # look again later without asking the kernel to wake us
                await asyncio.sleep(self.poll_interval if left is None else min(left, self.poll_interval))
            else:
                await self._readable(SLICE if left is None else min(left, SLICE))
            if self._closed:  # closed while waiting: the waiter returns, the next call raises
                return []

    async def _readable(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        self._enter()  # an asyncio waiter keeps the fds alive: close() defers freeing them until it is gone
        fd = int(self._state.wait_fd)
        fut: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        loop.add_reader(fd, ready)
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            loop.remove_reader(fd)
            self._leave()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Any]:
        while not self._closed:
            for record in await self.poll_async(None):
                yield record


class _Consuming:
    """``with self._locked():`` one consumer at a time, its thread remembered (callbacks must not re-enter)."""

    __slots__ = ("reader",)

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader

    def __enter__(self) -> None:
        self.reader._consume_lock.acquire()
        self.reader._consumer = threading.get_ident()

    def __exit__(self, *exc: object) -> None:
        self.reader._consumer = None
        self.reader._consume_lock.release()


def _stopped(ret: object) -> bool:
    """A callback's return value asks to stop the poll (libbpf's rule: a negative int)."""
    return ret is not None and type(ret) is int and ret < 0


class RingInfo(NamedTuple):
    """One ring's positions as libbpf reads them (``ring__*``): bytes produced/consumed since creation."""

    map_fd: int
    size: int
    consumer_pos: int
    producer_pos: int
    avail: int


class RingBuffer(_Reader):
    """A reader of one or more ``BPF_MAP_TYPE_RINGBUF`` maps over libbpf's ``ring_buffer``.

    ``maps``: a ``Map`` (or int fd, or anything with ``fileno()``), or a sequence of them. ``callback``: called
    with each record (``bytes``) of these maps; records of rings without a callback are returned by
    ``poll()``/``consume()``. The maps' fds are duplicated: closing the ``Map`` afterwards is fine.

    ``background=True`` starts a native thread (never holding the GIL; it inherits the creating thread's CPU
    affinity and blocks signals) that moves records into a backlog of ``backlog`` bytes as they arrive; every read
    path then reads the backlog, in the order the thread took records. The backlog holds at least two of the
    largest records the rings can hold (twice the largest ring and a little more), rounded up to a power of two
    (``self.backlog``). When it is full the thread waits for the reader, the rings fill, and the BPF program's
    ``bpf_ringbuf_reserve``/``bpf_ringbuf_output`` fail as they would without the thread. ``add()`` stops the
    thread, adds the ring and starts it again; ``close()`` stops it first.

    ``poll_interval`` (seconds, at most ``MAX_POLL_INTERVAL``): a waiting ``poll()``, batch, iteration or
    ``poll_async()`` sleeps that long and looks again, instead of sleeping until the kernel wakes it. The kernel
    wakes a sleeping reader whenever a program commits a record at the reader's consumer position, that is, every
    few records for a reader that keeps up, and the program pays for each wake-up (bench/README.md: 500,000
    records took 1.1-1.5 s to emit instead of 33 ms). Records then wait up to ``poll_interval`` in the ring: size it
    for what arrives meanwhile. ``fileno()`` and a ``background=True`` thread still wait to be woken.

    >>> # not run as a doctest: needs a loaded object `obj` and ring buffer maps `m1`, `m2`
    >>> with RingBuffer(obj.map("events")) as rb:  # doctest: +SKIP
    ...     records = rb.poll(timeout=1.0)
    >>> rb = RingBuffer([m1, m2], callback=print)  # doctest: +SKIP
    >>> rb.poll()  # doctest: +SKIP
    []
    >>> agent = RingBuffer(obj.map("events"), background=True)  # doctest: +SKIP
    >>> quiet = RingBuffer(obj.map("events"), poll_interval=0.001)  # doctest: +SKIP
    >>> batch = quiet.poll_batch(timeout=1.0)  # doctest: +SKIP
    """

    _kind = "RingBuffer"

    def __init__(self, maps: Any, callback: RingCallback | None = None, *, background: bool = False,
                 backlog: int = DEFAULT_BACKLOG, poll_interval: float | None = None) -> None:
        self._rb: Any = None
        self._fds: list[int] = []
        self._sources: list[Any] = []
        self._callbacks: list[RingCallback | None] = []
        self._setup()
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        _check_background(background, backlog)
        self.poll_interval = _check_poll_interval(poll_interval)
        items = list(maps) if isinstance(maps, (list, tuple)) else [maps]
        if not items:
            raise ValueError("RingBuffer needs at least one map")
        from .enums import MapType

        fds = [_check_map(m, "ring buffer map", int(MapType.RINGBUF), "RingBuffer") for m in items]
        try:
            if background:
                self._inherited_by_fork = False  # the child has the rings but not the thread
                self._new_drain(max([backlog] + [self._backlog_for(_ring_bytes(fd)) for fd in fds]))
            for fd in fds:
                self._add(fd, callback)
            if self._drain is not None:
                self._start_drain()
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _backlog_for(ring_bytes: int) -> int:
        """The backlog that holds two of the largest records a ring of ``ring_bytes`` can hold (each entry's
        8-byte header and padding, and the backlog's end skipped when an entry would wrap)."""
        return 2 * (ring_bytes + 16)

    def _start_drain(self) -> None:
        err = ll.bpflink_drain_start_ring(self._drain, self._rb, self._state)
        if err < 0:
            raise error(-err, "RingBuffer: start the drain thread")

    def add(self, map: Any, callback: RingCallback | None = None) -> int:
        """Add another ring buffer map (``ring_buffer__add``); returns its ring index."""
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        from .enums import MapType

        fd = _check_map(map, "ring buffer map", int(MapType.RINGBUF), "RingBuffer")
        self._enter()
        try:
            with self._locked():
                if self._drain is None:
                    return self._add(fd, callback)
                ring = _ring_bytes(fd)
                need = self._backlog_for(ring)
                if need > self.backlog:
                    raise ValueError(f"add: a ring of {ring} bytes needs a backlog of at least {need} bytes; this "
                                     f"RingBuffer's is {self.backlog} (pass backlog= when making it)")
                # libbpf's ring list may not change under the thread's walk: stop it, add, start it again
                ll.bpflink_drain_stop(self._drain)
                try:
                    return self._add(fd, callback)
                finally:
                    self._start_drain()
        finally:
            self._leave()

    def _add(self, fd: int, callback: RingCallback | None) -> int:
        index = len(self._fds)
        own = os.dup(fd)  # libbpf keeps the fd number: ours, so the caller may close its Map
        src = ffi.new("struct bpflink_source *")
        src.reader = self._state
        src.index = index
        try:
            if self._rb is None:
                drained = self._drain is not None
                rb = ll.bpflink_ring_buffer_new_drained(own, src) if drained else ll.bpflink_ring_buffer_new(own, src)
                if rb == ffi.NULL:
                    raise error(ffi.errno or errno.EINVAL, f"ring_buffer__new(map fd {fd})",
                                hint="the map must be a BPF_MAP_TYPE_RINGBUF map (Linux >= 5.8)")
                self._rb = rb
                # the reader waits on libbpf's epoll fd, or on the drain's: readable while its backlog holds records
                ready = ll.ring_buffer__epoll_fd(rb) if not drained else ll.bpflink_drain_ready_fd(self._drain)
                err = ll.bpflink_reader_init(self._state, ready, 0)
                if err < 0:
                    raise error(-err, "RingBuffer: epoll set")
            else:
                add = ll.bpflink_ring_buffer_add if self._drain is None else ll.bpflink_ring_buffer_add_drained
                err = add(self._rb, own, src)
                if err < 0:
                    raise error(-err, f"ring_buffer__add(map fd {fd})",
                                hint="the map must be a BPF_MAP_TYPE_RINGBUF map (Linux >= 5.8)")
        except BaseException:
            os.close(own)
            raise
        self._fds.append(own)
        self._sources.append(src)
        self._callbacks.append(callback)
        return index

    def _free(self) -> None:
        self._stop_drain()
        if self._rb is not None:
            ll.ring_buffer__free(self._rb)
            self._rb = None
        self._free_drain()
        self._release_state()
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    @property
    def ring_count(self) -> int:
        return len(self._fds)

    def ring_info(self, index: int = 0) -> RingInfo:
        """libbpf's view of ring ``index`` (``ring__size``, ``ring__consumer_pos``, ...)."""
        self._enter()
        try:
            if type(index) is not int or not 0 <= index < len(self._fds):
                raise IndexError(f"ring index {index!r} out of range (this RingBuffer has {len(self._fds)})")
            r = ll.ring_buffer__ring(self._rb, index)
            return RingInfo(int(ll.ring__map_fd(r)), int(ll.ring__size(r)), int(ll.ring__consumer_pos(r)),
                            int(ll.ring__producer_pos(r)), int(ll.ring__avail_data_size(r)))
        finally:
            self._leave()

    def _with_source(self) -> bool:
        return len(self._fds) > 1

    def _consume_into(self, max_records: int, index: int | None = None) -> None:
        if self._drain is not None:
            self._consume_backlog()
            return
        # without consume_n, what the C callback copies past max_records waits in order for the next call (_keep)
        ret = _CONSUME_N(self._rb, max_records) if _CONSUME_N is not None else ll.ring_buffer__consume(self._rb)
        if ret < 0 and not self._state.batch.error:
            raise error(-ret, "ring_buffer__consume")

    def _hand_over(self, srcs: list[int] | None, recs: list[bytes]) -> list[bytes]:
        callbacks = self._callbacks
        if srcs is None:  # one ring
            cb = callbacks[0]
            if cb is None:
                return recs
            i = 0
            try:
                for rec in recs:
                    i += 1
                    ret = cb(rec)
                    if ret is not None and type(ret) is int and ret < 0:  # _stopped(), inlined: the hot loop
                        break
            finally:
                self._keep(None, recs[i:])  # after a raise or a stop, the rest comes with the next call
            return []
        out: list[bytes] = []
        out_src: list[int] = []
        i = 0
        try:
            for src, rec in zip(srcs, recs):
                i += 1
                cb = callbacks[src]
                if cb is None:
                    out.append(rec)
                    out_src.append(src)
                elif _stopped(cb(rec)):
                    break
        except BaseException:
            self._keep(out_src + srcs[i:], out + recs[i:])  # what was meant for the caller comes next time
            raise
        self._keep(srcs[i:], recs[i:])
        return out

    def poll(self, timeout: float | None = None) -> list[bytes]:
        """Wait up to ``timeout`` seconds (None: until records arrive or ``close()``), then return the records
        that arrived (``bytes``, copies). Records of rings with a callback went to it instead. An exception
        raised by a callback propagates from here; the records after it come with the next call."""
        return self._take(timeout)

    def consume(self) -> list[bytes]:
        """The records in the rings now, without waiting (libbpf's ``ring_buffer__consume``)."""
        return self._take(0)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._fds)} ring(s)"
        if self._drain is not None and not self.closed:
            state += f" backlog={self.backlog}"
        return f"<RingBuffer {state}>"


__all__ = ["BATCH_BYTES", "DEFAULT_BACKLOG", "DEFAULT_BATCH", "HAND_OVER", "HAND_OVER_BYTES", "MAX_BACKLOG",
           "MAX_POLL_INTERVAL", "MIN_BACKLOG", "POOL_BLOCKS", "POOL_BLOCK_BYTES", "SLICE", "RecordBatch", "RingBuffer",
           "RingInfo"]
