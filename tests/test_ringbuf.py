"""RingBuffer on the real kernel: a socket filter run N times by BPF_PROG_TEST_RUN (tests/bpf/ringbuf_emit.bpf.c)
emits one record per run with a sequence number; exactly those N records arrive through every path (poll,
consume, callback, iteration, batch, numpy, several rings, select, asyncio). Closing under a poller and Ctrl-C
during poll() run in child processes."""

from __future__ import annotations

import asyncio
import copy
import pickle
import select
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bpflink
from bpflink import Map, MapType, Object, RingBuffer
from bpflink.ringbuf import DEFAULT_BACKLOG
from conftest import ROOT, open_fds

sys.path.insert(0, str(ROOT))
from bench.ringbuf import test_run

TAG = 0xB9F11A2B
REC16 = struct.Struct("<QII")


class Emitter:
    """The loaded producer object: its programs, rings and state counters."""

    def __init__(self, obj: Object) -> None:
        self.obj = obj
        self.events = obj.map("events")
        self.second = obj.map("second")
        self.perf = obj.map("perf")
        self.state = obj.map("state")
        self.progs = {name: obj.program(name) for name in ("ring16", "ring256", "ring_pair", "perf16", "perf256")}

    def seq(self) -> int:
        return self.state.lookup_int(0)

    def dropped(self, ring: bool = True) -> int:
        return self.state.lookup_int(1 if ring else 2)

    def run(self, prog: str, n: int) -> range:
        """Emit n records; the sequence numbers they carry."""
        first = self.seq()
        test_run(self.progs[prog], n)
        return range(first, first + n)

    def close(self) -> None:
        for p in self.progs.values():
            p.close()
        for m in (self.events, self.second, self.perf, self.state):
            m.close()
        self.obj.close()


def seqs(records: Any) -> list[int]:
    out = []
    for rec in records:
        seq, _cpu, tag = REC16.unpack_from(rec)
        assert tag == TAG
        out.append(seq)
    return out


def test_poll_returns_exactly_the_records_emitted(emitter: Emitter) -> None:
    with RingBuffer(emitter.events) as rb:
        want = emitter.run("ring16", 1000)
        records = rb.poll(timeout=2)
        assert all(type(r) is bytes and len(r) == 16 for r in records)
        assert seqs(records) == list(want)
        assert emitter.dropped() == 0
        info = rb.ring_info()
        assert info.consumer_pos == info.producer_pos == 1000 * (16 + 8) and info.avail == 0
        assert info.size == 256 * 1024
        big = emitter.run("ring256", 300)
        records = rb.poll(timeout=2)
        assert [len(r) for r in records] == [256] * 300
        assert seqs(records) == list(big)
        assert all(r[16:] == b"\xab" * 240 for r in records)


def test_records_decode_into_a_generated_struct_class(emitter: Emitter) -> None:
    # RingBuffer hands out bytes (rings carry no BTF type); a generated class decodes them, as for map values
    from bpflink.btf import Array, Int, Struct

    u8, u32 = Int("__u8", 1, signed=False), Int("__u32", 4, signed=False)
    Rec = Struct("struct rec256", 256, [("seq", 0, Int("__u64", 8, signed=False)), ("cpu", 8, u32),
                                        ("tag", 12, u32), ("payload", 16, Array("__u8[240]", u8, 240))]).pyclass
    with RingBuffer(emitter.events) as rb:
        want = emitter.run("ring256", 50)
        got = [Rec.from_bytes(r) for r in rb.poll(timeout=2)]
        assert [r.seq for r in got] == list(want) and {r.tag for r in got} == {TAG}
        assert all(r.payload == [0xAB] * 240 for r in got)
        assert bytes(got[0]) == REC16.pack(want[0], got[0].cpu, TAG) + b"\xab" * 240
        with pytest.raises(ValueError, match="is 256 bytes, got 16"):
            Rec.from_bytes(b"\0" * 16)


def test_consume_does_not_wait(emitter: Emitter) -> None:
    with RingBuffer(emitter.events) as rb:
        t0 = time.monotonic()
        assert rb.consume() == []
        assert rb.poll(timeout=0) == []
        assert time.monotonic() - t0 < 0.5
        t0 = time.monotonic()
        assert rb.poll(timeout=0.2) == []
        assert 0.15 < time.monotonic() - t0 < 2
        want = emitter.run("ring16", 500)
        assert seqs(rb.consume()) == list(want)
        assert rb.consume() == []


def test_callback_gets_every_record_and_its_exception_propagates(emitter: Emitter) -> None:
    got: list[bytes] = []
    with RingBuffer(emitter.events, callback=got.append) as rb:
        want = emitter.run("ring16", 400)
        assert rb.poll(timeout=2) == []  # records went to the callback
        assert seqs(got) == list(want)

    class Boom(Exception):
        pass

    seen: list[bytes] = []

    def fussy(rec: bytes) -> None:
        seen.append(rec)
        if len(seen) == 10:
            raise Boom("tenth")

    with RingBuffer(emitter.events, callback=fussy) as rb:
        want = emitter.run("ring16", 100)
        with pytest.raises(Boom, match="tenth"):
            rb.poll(timeout=2)
        assert len(seen) == 10
        rb.consume()  # the records after the raising one were kept for the next call
        assert seqs(seen) == list(want)


def test_negative_callback_return_stops_the_consume(emitter: Emitter) -> None:
    seen: list[bytes] = []

    def one_at_a_time(rec: bytes) -> int:
        seen.append(rec)
        return -1

    with RingBuffer(emitter.events, callback=one_at_a_time) as rb:
        want = emitter.run("ring16", 5)
        for i in range(1, 6):
            rb.consume()
            assert len(seen) == i
        assert seqs(seen) == list(want)


def test_iteration_yields_records_until_closed(emitter: Emitter) -> None:
    rb = RingBuffer(emitter.events)
    want = emitter.run("ring16", 300)
    got = []
    for rec in rb:
        got.append(rec)
        if len(got) == 300:
            break
    assert seqs(got) == list(want)
    # a reader thread iterating ends when another thread closes the buffer
    done = threading.Event()
    tail: list[bytes] = []

    def reader() -> None:
        tail.extend(rb)
        done.set()

    t = threading.Thread(target=reader)
    t.start()
    more = emitter.run("ring16", 50)
    deadline = time.monotonic() + 5
    while len(tail) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    rb.close()
    assert done.wait(5)
    t.join()
    assert seqs(tail) == list(more)


def test_batch_and_numpy(emitter: Emitter) -> None:
    np = pytest.importorskip("numpy")
    with RingBuffer(emitter.events) as rb:
        want = emitter.run("ring16", 2000)
        batch = rb.consume_batch(max_records=500)
        assert len(batch) == 500 and seqs(batch) == list(want[:500])
        assert batch.lengths.tolist() == [16] * 500 and batch.sources.tolist() == [0] * 500
        assert batch[499] == bytes(list(batch)[499])
        batch = rb.poll_batch(timeout=2)
        assert len(batch) == 1500 and seqs(batch.records()) == list(want[500:])
        assert len(rb.consume_batch()) == 0
        dt = np.dtype([("seq", "<u8"), ("cpu", "<u4"), ("tag", "<u4")])
        want = emitter.run("ring16", 3000)
        arr = rb.poll_batch(timeout=2, dtype=dt).array
        assert arr.dtype == dt and arr["seq"].tolist() == list(want) and (arr["tag"] == TAG).all()
        # a dtype shorter than the record: each row holds the record's start, lengths the real size
        want = emitter.run("ring256", 100)
        b = rb.poll_batch(timeout=2, dtype=dt)
        assert b.array["seq"].tolist() == list(want) and b.lengths.tolist() == [256] * 100
        assert len(rb.consume_batch(dtype=dt).array) == 0


def test_batch_memory_outlives_the_batch_and_the_reader(emitter: Emitter) -> None:
    """A batch hands over the C block itself: every view of it keeps it alive, however many batches later."""
    np = pytest.importorskip("numpy")
    dt = np.dtype([("seq", "<u8"), ("cpu", "<u4"), ("tag", "<u4")])
    rb = RingBuffer(emitter.events)
    want = emitter.run("ring16", 1000)
    batch = rb.consume_batch()
    data, lengths, arr = batch.data, batch.lengths, batch.as_array(dt)
    assert data.readonly and not arr.flags.writeable and lengths.format == "I"
    first = batch[0]
    del batch
    for _ in range(4):  # the pool hands out spare blocks; none of them may be the block still viewed
        emitter.run("ring16", 1000)
        assert len(rb.consume_batch()) == 1000
    rb.close()
    assert arr["seq"].tolist() == list(want) and bytes(data[:16]) == first and lengths.tolist() == [16] * 1000
    assert np.frombuffer(lengths, dtype=np.uint32).sum() == 16000


def test_batch_of_mixed_lengths(emitter: Emitter) -> None:
    np = pytest.importorskip("numpy")
    with RingBuffer(emitter.events) as rb:
        a, b, c = emitter.run("ring16", 3), emitter.run("ring256", 2), emitter.run("ring16", 1)
        batch = rb.consume_batch()
        assert batch.lengths.tolist() == [16, 16, 16, 256, 256, 16]
        assert batch.offsets.tolist() == [0, 16, 32, 48, 304, 560]
        assert seqs(batch) == [*a, *b, *c] and [len(r) for r in batch] == batch.lengths.tolist()
        assert batch[-1] == batch.records()[5] and batch[3][16:] == b"\xab" * 240
        with pytest.raises(ValueError, match="one length"):
            batch.as_array([("seq", "<u8")])
        with pytest.raises(IndexError):
            batch[6]
        # with a dtype, C pads or cuts every record to its slot
        emitter.run("ring16", 2)
        emitter.run("ring256", 1)
        padded = rb.consume_batch(dtype=[("seq", "<u8"), ("cpu", "<u4"), ("tag", "<u4"), ("pad", "<u8")])
        assert padded.array["pad"].tolist() == [0, 0, int.from_bytes(b"\xab" * 8, "little")]
        assert padded.as_array(np.dtype("<u8")).tolist() == padded.array["seq"].tolist()


def test_a_run_of_one_length_grows_breaks_and_restarts_in_a_reused_block(emitter: Emitter) -> None:
    """Records of one length are copied without their lengths (C writes those once the consume ends): a run that
    outgrows its block, a record that ends it, and the next batch in a block given back must all read exactly."""
    np = pytest.importorskip("numpy")
    with RingBuffer(emitter.events) as rb:
        # 6,000 records: past the block's first 4,096 length slots and 64 KiB, so the run grows twice
        a, b, c = emitter.run("ring16", 6000), emitter.run("ring256", 1), emitter.run("ring16", 3)
        batch = rb.consume_batch(max_records=10000)
        assert batch.lengths.tolist() == [16] * 6000 + [256] + [16] * 3
        assert batch.offsets.tolist()[5999:] == [95984, 96000, 96256, 96272, 96288]
        assert seqs(batch) == [*a, *b, *c] and batch[6000][16:] == b"\xab" * 240
        assert len(batch.data) == 6000 * 16 + 256 + 3 * 16
        del batch  # its block goes back to the pool: the next batch is copied into it
        want = emitter.run("ring16", 5000)
        again = rb.consume_batch(max_records=10000)
        assert again.lengths.tolist() == [16] * 5000 and len(again.data) == 80000
        assert again.as_array([("seq", "<u8"), ("cpu", "<u4"), ("tag", "<u4")])["seq"].tolist() == list(want)
        # a dtype shorter than the record cuts each into its slot; lengths keep the real size
        want = emitter.run("ring256", 300)
        cut = rb.consume_batch(dtype=np.dtype([("seq", "<u8"), ("cpu", "<u4"), ("tag", "<u4")]))
        assert cut.lengths.tolist() == [256] * 300 and cut.array["seq"].tolist() == list(want)
        assert len(cut.data) == 300 * 16


def test_several_rings_in_one_reader(emitter: Emitter) -> None:
    with RingBuffer([emitter.events, emitter.second]) as rb:
        assert rb.ring_count == 2
        want = emitter.run("ring_pair", 200)
        batch = rb.poll_batch(timeout=2)
        assert len(batch) == 400
        by_ring: dict[int, list[bytes]] = {0: [], 1: []}
        for src, rec in zip(batch.sources, batch):
            by_ring[src].append(rec)
        assert seqs(by_ring[0]) == seqs(by_ring[1]) == list(want)
    # add() with its own callback: ring 0's records are returned, ring 1's go to the callback
    side: list[bytes] = []
    with RingBuffer(emitter.events) as rb:
        assert rb.add(emitter.second, callback=side.append) == 1
        want = emitter.run("ring_pair", 50)
        got: list[bytes] = []
        deadline = time.monotonic() + 5
        while (len(got) < 50 or len(side) < 50) and time.monotonic() < deadline:
            got += rb.poll(timeout=0.5)
        assert seqs(got) == seqs(side) == list(want)


def test_fileno_works_with_select(emitter: Emitter) -> None:
    with RingBuffer(emitter.events) as rb:
        assert select.select([rb], [], [], 0)[0] == []
        emitter.run("ring16", 3)
        assert select.select([rb], [], [], 2)[0] == [rb]
        assert len(rb.consume()) == 3
        assert select.select([rb], [], [], 0)[0] == []
        ep = select.epoll()
        ep.register(rb.fileno(), select.EPOLLIN)
        emitter.run("ring16", 1)
        assert ep.poll(2) and len(rb.consume()) == 1
        ep.close()


def test_asyncio(emitter: Emitter) -> None:
    async def main() -> tuple[list[bytes], list[bytes], float]:
        rb = RingBuffer(emitter.events)
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        assert await rb.poll_async(timeout=0.1) == []
        waited = time.monotonic() - t0
        producer = loop.run_in_executor(None, emitter.run, "ring16", 500)
        got = []
        async for rec in rb:
            got.append(rec)
            if len(got) == 500:
                break
        await producer
        # a waiter is woken by close() and gets [] (closing under it is safe)
        waiter = asyncio.ensure_future(rb.poll_async())
        await asyncio.sleep(0.05)
        rb.close()
        tail = await asyncio.wait_for(waiter, 5)
        return got, tail, waited

    got, tail, waited = asyncio.run(main())
    assert len(got) == 500 and seqs(got) == sorted(seqs(got))
    assert tail == [] and 0.05 < waited < 2


@pytest.mark.parametrize("kind", ["ring", "perf"])
def test_poll_interval_readers_nap_and_still_get_every_record(emitter: Emitter, kind: str) -> None:
    """A poll_interval reader sleeps and looks again instead of waiting on the rings' wait queues: records a
    program emits while it naps arrive through poll, poll_batch, iteration and poll_async, and close() from
    another thread ends a nap at once."""
    from bpflink import PerfBuffer

    perf = kind == "perf"
    prog = "perf16" if perf else "ring16"

    def data(records: Any) -> list[bytes]:
        return [bytes(r) for r in records]  # a PerfRecord's bytes are its data

    def emit_soon(n: int) -> range:
        first = emitter.seq()
        threading.Timer(0.05, emitter.run, (prog, n)).start()
        return range(first, first + n)

    reader: Any = (PerfBuffer(emitter.perf, pages=16, poll_interval=0.005) if perf
                   else RingBuffer(emitter.events, poll_interval=0.005))
    with reader:
        assert reader.poll_interval == 0.005
        t0 = time.monotonic()
        assert reader.poll(timeout=0.05) == [] and time.monotonic() - t0 >= 0.05
        want, got = emit_soon(300), []
        while len(got) < 300 and time.monotonic() - t0 < 10:
            got += data(reader.poll(timeout=5))
        assert seqs(got) == list(want)
        want, got = emit_soon(300), []
        while len(got) < 300 and time.monotonic() - t0 < 20:
            got += data(reader.poll_batch(timeout=5).records())
        assert seqs(got) == list(want)
        want, it = emit_soon(50), iter(reader)
        assert seqs(data(next(it) for _ in range(50))) == list(want)

        async def main() -> list[bytes]:
            want_async = emit_soon(50)
            out: list[bytes] = []
            async for rec in reader:
                out += data([rec])
                if len(out) == 50:
                    break
            assert seqs(out) == list(want_async)
            waiter = asyncio.ensure_future(reader.poll_async())
            await asyncio.sleep(0.02)
            reader.close()  # the napping waiter returns [] at its next look
            return await asyncio.wait_for(waiter, 5)

        assert asyncio.run(main()) == []
    reader = RingBuffer(emitter.events, poll_interval=1.0)
    done: list[float] = []
    poller = threading.Thread(target=lambda: (reader.poll(timeout=30), done.append(time.monotonic())))
    poller.start()
    time.sleep(0.1)
    closed = time.monotonic()
    reader.close()
    poller.join(10)
    assert done and done[0] - closed < 0.5  # the eventfd ended the 1 s nap (0.9 s of it left)
    for bad, exc in ((0, ValueError), (-1, ValueError), (1.5, ValueError), (float("nan"), ValueError),
                     ("0.1", TypeError), (True, TypeError)):
        with pytest.raises(exc, match="poll_interval"):
            RingBuffer(emitter.events, poll_interval=bad)
        with pytest.raises(exc, match="poll_interval"):
            PerfBuffer(emitter.perf, poll_interval=bad)


def test_maps_outlive_the_callers_map_and_no_fd_leaks(emitter: Emitter) -> None:
    before = open_fds()
    for _ in range(20):
        with emitter.obj.map("events") as m:  # a Map of its own, closed before the reader is used
            rb = RingBuffer(m)
        want = emitter.run("ring16", 2)  # the caller's Map is closed: the reader holds its own fd
        assert seqs(rb.consume()) == list(want)
        rb.close()
    assert open_fds() == before


@pytest.mark.hostonly
def test_bad_input_is_refused_before_any_syscall(tmp_path: Path) -> None:
    with Map.array(1) as arr, Map.create(MapType.RINGBUF, key_size=0, value_size=0, max_entries=4096) as ring:
        with pytest.raises(ValueError, match="is a ARRAY map; RingBuffer needs a RINGBUF map"):
            RingBuffer(arr)
        with pytest.raises(ValueError, match="not a BPF map"):
            RingBuffer(0)
        with pytest.raises(TypeError, match=r"Map\.from_pin"):
            RingBuffer(str(tmp_path))
        with pytest.raises(TypeError, match="callback must be callable"):
            RingBuffer(ring, callback=3)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="at least one map"):
            RingBuffer([])
        rb = RingBuffer(ring)
        with pytest.raises(TypeError, match="timeout"):
            rb.poll("1")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="max_records"):
            rb.consume_batch(max_records=0)
        with pytest.raises(IndexError):
            rb.ring_info(1)
        for attempt in (lambda: copy.copy(rb), lambda: copy.deepcopy(rb), lambda: pickle.dumps(rb)):
            with pytest.raises(TypeError):
                attempt()
        rb.close()
        rb.close()
        assert rb.closed and "closed" in repr(rb)
        for call in (rb.poll, rb.consume, rb.consume_batch, rb.fileno, lambda: rb.add(ring), rb.ring_info):
            with pytest.raises(ValueError, match=r"^I/O operation on closed RingBuffer$"):
                call()
        assert bpflink.RingBuffer is RingBuffer



# --- background=True: a drain thread empties the rings into a backlog --------------------------------------------
@pytest.fixture
def small_ring(bpf_objects: dict[str, Path]) -> Iterator[Emitter]:
    """The producers with a 4 KiB ``events`` ring (170 records of 16 B), its size set before load."""
    obj = Object.open(bpf_objects["ringbuf_emit"], load=False)
    obj.configure_map("events", max_entries=4096)
    obj.load()
    em = Emitter(obj)
    try:
        yield em
    finally:
        em.close()


def _bursts(emitter: Emitter, prog: str, count: int, each: int, pause: float) -> tuple[range, int]:
    """count bursts of ``each`` records, ``pause`` seconds apart, nobody polling: (the sequence numbers stored,
    the records the program could not store). A record takes a sequence number only once its reserve worked."""
    first, dropped = emitter.seq(), emitter.dropped()
    for _ in range(count):
        emitter.run(prog, each)
        time.sleep(pause)
    return range(first, emitter.seq()), emitter.dropped() - dropped


def test_background_thread_keeps_what_a_paused_reader_would_lose(small_ring: Emitter) -> None:
    """Ten bursts of 100 records (24 B each with the ring's header) into a 4 KiB ring (170 fit), the reader paused
    throughout: a plain reader gets what the ring holds and the program's reserve fails for the rest; with
    background=True the drain thread moves each burst into the backlog during the pause, and every record
    arrives, in order, through every read path."""
    em = small_ring
    with RingBuffer(em.events) as plain:
        stored, refused = _bursts(em, "ring16", 10, 100, 0.02)
        assert refused > 0 and len(stored) + refused == 1000
        assert seqs(plain.consume()) == list(stored)
    for asked, backlog in ((1, 512 << 10), ((3 << 20) + 1, 4 << 20), (DEFAULT_BACKLOG, DEFAULT_BACKLOG)):
        with RingBuffer(em.events, background=True, backlog=asked) as sized:
            # a power of two, at least 512 KiB, and two of the largest records the ring can hold
            assert sized.backlog == backlog and f"backlog={backlog}" in repr(sized)
    with Map.create(MapType.RINGBUF, key_size=0, value_size=0, max_entries=1 << 20) as big, \
            RingBuffer([em.events, big], background=True, backlog=1) as sized:
        assert sized.backlog == 4 << 20  # 2 * (1 MiB + 16) rounded up
    with RingBuffer(em.events, background=True) as rb:
        stored, refused = _bursts(em, "ring16", 10, 100, 0.15)
        assert refused == 0 and len(stored) == 1000
        assert seqs(rb.poll(timeout=2)) == list(stored) and rb.consume() == []
        # batches (capped, with a dtype), iteration
        stored, refused = _bursts(em, "ring16", 3, 100, 0.15)
        first = rb.consume_batch(max_records=250)
        rest = rb.poll_batch(timeout=2, dtype=[("seq", "<u8"), ("cpu", "<u4"), ("tag", "<u4")])
        assert refused == 0 and seqs(first) == list(stored[:250])
        assert rest.array["seq"].tolist() == list(stored[250:])
        stored, _ = _bursts(em, "ring16", 1, 50, 0.15)
        it = iter(rb)
        assert seqs([next(it) for _ in stored]) == list(stored)
    got: list[bytes] = []
    with RingBuffer(em.events, callback=got.append, background=True) as rb:
        stored, _ = _bursts(em, "ring16", 3, 100, 0.15)
        assert rb.poll(timeout=2) == [] and seqs(got) == list(stored)


def test_background_backlog_full_then_the_program_is_refused(small_ring: Emitter) -> None:
    """A flood nobody reads fills the backlog (512 KiB: at least ~16,000 entries of 24 B before the thread waits
    for room) and then the 4 KiB ring; the program's reserve fails for the rest. Everything stored arrives in
    order, stored + refused = sent, the thread goes on once the reader made room, and close() stops a thread
    waiting for room at once, fds and all."""
    em = small_ring
    before = open_fds()
    with RingBuffer(em.events, background=True, backlog=1) as rb:
        stored, refused = _bursts(em, "ring16", 160, 150, 0.02)
        assert refused > 0 and len(stored) + refused == 160 * 150
        got: list[bytes] = []
        while more := rb.poll(timeout=0.5):  # the thread moves the ring's records once the reader made room
            got += more
        assert seqs(got) == list(stored) and len(got) > 16000
        later, refused = _bursts(em, "ring16", 1, 100, 0.1)
        assert refused == 0 and seqs(rb.poll(timeout=2)) == list(later)
    with RingBuffer(em.events, background=True, backlog=1) as full:
        _bursts(em, "ring16", 160, 150, 0.01)  # the thread now waits for room that nobody makes
        t0 = time.monotonic()
        full.close()
        assert time.monotonic() - t0 < 2
    assert open_fds() == before


def test_background_add_restarts_the_thread_and_loses_nothing(emitter: Emitter) -> None:
    """add() stops the thread, adds the ring and starts it again. Stopped while it waited for room with a record
    libbpf had already handed over (256 B records, a 256 KiB ring, a 1 MiB backlog: one walk may bring more than
    the backlog's free room), the thread keeps that record and puts it first when it starts again: the sequence
    numbers stay contiguous."""
    em = emitter
    with RingBuffer(em.events, background=True, backlog=1) as rb:
        assert rb.backlog == 1 << 20
        first, dropped = em.seq(), em.dropped()
        sent = 0
        for _ in range(40):  # until both the backlog and the ring are full
            em.run("ring256", 500)
            sent += 500
            time.sleep(0.05)
            if em.dropped() > dropped:
                break
        assert em.dropped() > dropped
        # the thread waits for 128 KiB of room before it walks: make that much (497 entries of 264 B), less than
        # the full ring's 262 KiB, so the walk runs out of room halfway and waits holding a record
        got = list(rb.consume_batch(max_records=497))
        time.sleep(0.3)
        assert rb.add(em.second) == 1
        assert rb.ring_count == 2 and "2 ring(s)" in repr(rb)
        while len(batch := rb.poll_batch(timeout=0.5)):
            assert set(batch.sources) == {0}
            got += batch
        assert seqs(got) == list(range(first, em.seq()))
        assert len(got) + em.dropped() - dropped == sent
        pair = em.run("ring_pair", 20)
        by_ring: dict[int, list[bytes]] = {0: [], 1: []}
        deadline = time.monotonic() + 5
        while len(by_ring[1]) < 20 and time.monotonic() < deadline:
            batch = rb.poll_batch(timeout=0.5)
            for src, rec in zip(batch.sources, batch):
                by_ring[src].append(rec)
        assert seqs(by_ring[0]) == seqs(by_ring[1]) == list(pair)
    with Map.create(MapType.RINGBUF, key_size=0, value_size=0, max_entries=4096) as ring, \
            RingBuffer(ring, background=True, backlog=1) as one:
        assert one.backlog == 512 << 10
        with pytest.raises(ValueError, match="needs a backlog of at least 524320"):
            one.add(em.events)  # 256 KiB: two of its largest records need a little more than 512 KiB
        assert one.ring_count == 1


def test_background_bad_input() -> None:
    with Map.create(MapType.RINGBUF, key_size=0, value_size=0, max_entries=4096) as m:
        with pytest.raises(TypeError, match="background"):
            RingBuffer(m, background=1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="backlog"):
            RingBuffer(m, background=True, backlog=1.5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="backlog"):
            RingBuffer(m, background=True, backlog=0)


# --- in a child process: a hang or crash fails the test instead of killing the run ----------------------------
CHILD_PRELUDE = """
import os, sys, threading, time, signal
sys.path.insert(0, {root!r})
from bpflink import Object, RingBuffer, PerfBuffer
from bench.ringbuf import test_run
obj = Object.open({obj!r})
events, perf = obj.map("events"), obj.map("perf")
progs = {{n: obj.program(n) for n in ("ring16", "perf16")}}
def make(kind):
    nap = 1.0 if kind.endswith("-nap") else None  # the longest nap: close() and signals must end it early
    if kind.startswith("ring"):
        return RingBuffer(events, background=kind == "ring-background", poll_interval=nap)
    return PerfBuffer(perf, pages=4, background=kind == "perf-background", poll_interval=nap)
"""

CLOSE_WHILE_POLLING = """
prog = progs["ring16" if {kind!r}.startswith("ring") else "perf16"]
for i in range(60):
    rb = make({kind!r})
    out = {{}}
    def poller():
        t0 = time.monotonic()
        got = 0
        try:
            while True:
                got += len(rb.poll())
        except ValueError as exc:
            out["exc"] = str(exc)
        out["got"] = got
    threads = [threading.Thread(target=poller) for _ in range(2)]
    for t in threads:
        t.start()
    if i % 2:
        test_run(prog, 200)        # records arriving while the pollers run
    time.sleep(0.002 * (i % 5))
    closed = time.monotonic()
    rb.close()
    for t in threads:
        t.join(5)
        assert not t.is_alive(), "a poller did not return after close()"
    if {kind!r}.endswith("-nap"):
        assert time.monotonic() - closed < 0.9, "close() did not end the pollers' 1 s naps"
    assert out["exc"].startswith("I/O operation on closed"), out
    rb.close()
print("ok")
"""

SIGINT_DURING_POLL = """
rb = make({kind!r})
print("ready", flush=True)
t0 = time.monotonic()
try:
    if {how!r} == "poll":
        rb.poll()
    else:
        for _ in rb:
            pass
except KeyboardInterrupt:
    print("interrupted", time.monotonic() - t0, flush=True)
rb.close()
"""


def child(bpf_objects: dict[str, Path], body: str, **fmt: str) -> subprocess.Popen[str]:
    code = CHILD_PRELUDE.format(root=str(ROOT), obj=str(bpf_objects["ringbuf_emit"])) + body.format(**fmt)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("kind", ["ring", "ring-background", "ring-nap", "perf", "perf-background", "perf-nap"])
def test_close_while_other_threads_poll(bpf_objects: dict[str, Path], kind: str) -> None:
    proc = child(bpf_objects, CLOSE_WHILE_POLLING, kind=kind)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and out.strip() == "ok", err


@pytest.mark.parametrize(("kind", "how"), [("ring", "poll"), ("ring", "iter"), ("perf", "poll"),
                                           ("ring-background", "poll"), ("perf-background", "poll"),
                                           ("ring-nap", "iter"), ("perf-nap", "poll")])
def test_ctrl_c_interrupts_poll(bpf_objects: dict[str, Path], kind: str, how: str) -> None:
    proc = child(bpf_objects, SIGINT_DURING_POLL, kind=kind, how=how)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # inside epoll_wait by now
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        latency = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.split()[0] == "interrupted", (out, err)
    assert latency < 5  # the child's exit included; in the child, poll() returned right after the signal


def test_big_polls_hand_over_in_slices_and_batches_keep_the_order(emitter: Emitter,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import bpflink.ringbuf

    monkeypatch.setattr(bpflink.ringbuf, "HAND_OVER", 1000)
    with RingBuffer(emitter.events) as rb:
        want = emitter.run("ring16", 5000)
        first = rb.poll(timeout=2)  # takes more than HAND_OVER from the ring, hands over HAND_OVER
        second = rb.poll(timeout=2)
        assert len(first) == len(second) == 1000
        rest = rb.consume_batch()  # the records the polls kept come first, in order
        assert len(rest) > 0 and [len(r) for r in rest] == [16] * len(rest)
        got = first + second + list(rest)
        while len(got) < 5000:
            more = rb.consume()
            assert more
            got += more
        assert seqs(got) == list(want)


def test_callback_may_close_but_not_poll_its_reader(emitter: Emitter) -> None:
    seen: list[bytes] = []
    errors: list[BaseException] = []

    def closing(rec: bytes) -> None:
        seen.append(rec)
        if len(seen) == 1:
            try:
                rb.poll(0)
            except RuntimeError as exc:
                errors.append(exc)
        if len(seen) == 3:
            rb.close()  # freed once the poll running this callback has left libbpf

    rb = RingBuffer(emitter.events, callback=closing)
    emitter.run("ring16", 10)
    assert rb.poll(timeout=2) == []
    assert len(errors) == 1 and "inside one of its own callbacks" in str(errors[0])
    assert len(seen) == 10 and rb.closed  # the records already copied out were still handed over
    with pytest.raises(ValueError, match="closed RingBuffer"):
        rb.poll()
