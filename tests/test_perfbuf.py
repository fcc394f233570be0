"""PerfBuffer on the real kernel: the socket filters of tests/bpf/ringbuf_emit.bpf.c, run N times on one pinned
CPU by BPF_PROG_TEST_RUN, emit N samples with bpf_perf_event_output; every sample arrives with its CPU, or is
counted lost exactly as often as the program saw bpf_perf_event_output fail. (Closing under pollers and Ctrl-C
for PerfBuffer run in tests/test_ringbuf.py's child-process tests.)"""

from __future__ import annotations

import asyncio
import gc
import os
import select
import struct
import sys
import time
import weakref
from collections.abc import Iterator

import pytest

import bpflink
from bpflink import Map, MapType, PerfBuffer
from bpflink.perfbuf import DEFAULT_BACKLOG, PerfRecord
from conftest import open_fds
from test_ringbuf import TAG, Emitter

REC16 = struct.Struct("<QII")


@pytest.fixture
def cpu() -> Iterator[int]:
    """Pin this thread to one CPU: BPF_F_CURRENT_CPU then puts every sample in that CPU's buffer."""
    before = os.sched_getaffinity(0)
    chosen = max(before)
    os.sched_setaffinity(0, {chosen})
    try:
        yield chosen
    finally:
        os.sched_setaffinity(0, before)


def check(records: list[PerfRecord], want: range, cpu: int, size: int = 16) -> None:
    seqs = []
    for rec in records:
        assert type(rec) is PerfRecord and (rec.cpu, rec.data) == tuple(rec)
        seq, rcpu, tag = REC16.unpack_from(rec.data)
        assert (tag, rcpu, rec.cpu) == (TAG, cpu, cpu)
        # the kernel pads a raw sample so that its u32 size + data is a multiple of 8 bytes
        assert len(rec.data) == size + (-(size + 4) % 8) and bytes(rec) == rec.data
        seqs.append(seq)
    assert seqs == list(want)


def test_poll_returns_every_sample_with_its_cpu(emitter: Emitter, cpu: int) -> None:
    with PerfBuffer(emitter.perf, pages=8) as pb:
        assert pb.buffer_count >= 1
        want = emitter.run("perf16", 500)
        records = pb.poll(timeout=2)
        check(records, want, cpu)
        assert pb.lost == 0 and emitter.dropped(ring=False) == 0
        want = emitter.run("perf256", 50)
        got = pb.consume()
        check(got, want, cpu, 256)
        assert all(r.data[16:256] == b"\xab" * 240 for r in got)
        assert pb.consume() == []


def test_lost_samples_are_counted_exactly(emitter: Emitter, cpu: int) -> None:
    lost: list[tuple[int, int]] = []
    with PerfBuffer(emitter.perf, pages=1, lost_callback=lambda c, n: lost.append((c, n))) as pb:
        want = emitter.run("perf256", 1000)  # 1000 x 272 B into one 4 KiB buffer: most are lost
        first = pb.consume()
        refused = emitter.dropped(ring=False)
        assert refused > 0 and len(first) + refused == 1000
        check(first, range(want[0], want[0] + len(first)), cpu, 256)
        # the kernel writes its "lost" record before the next sample that fits
        more = emitter.run("perf16", 1)
        second = pb.consume()
        assert [r.data[:8] for r in second] == [more[0].to_bytes(8, "little")]
        assert pb.lost == refused and pb.lost_per_cpu == {cpu: refused} and lost == [(cpu, refused)]


def test_callback_and_its_exception(emitter: Emitter, cpu: int) -> None:
    got: list[tuple[int, bytes]] = []
    with PerfBuffer(emitter.perf, pages=8, callback=lambda c, d: got.append((c, d))) as pb:
        want = emitter.run("perf16", 300)
        assert pb.poll(timeout=2) == []
        check([PerfRecord(c, d) for c, d in got], want, cpu)

    seen: list[tuple[int, bytes]] = []

    def fussy(c: int, d: bytes) -> None:
        seen.append((c, d))
        if len(seen) == 5:
            raise KeyError("fifth")

    with PerfBuffer(emitter.perf, pages=8, callback=fussy) as pb:
        want = emitter.run("perf16", 20)
        with pytest.raises(KeyError, match="fifth"):
            pb.consume()
        # libbpf's perf loop cannot stop: the samples after the raising one were kept and come next
        pb.consume()
        check([PerfRecord(c, d) for c, d in seen], want, cpu)


def test_batch_numpy_iteration_select_asyncio(emitter: Emitter, cpu: int) -> None:
    np = pytest.importorskip("numpy")
    dt = np.dtype([("seq", "<u8"), ("cpu", "<u4"), ("tag", "<u4")])
    with PerfBuffer(emitter.perf, pages=16) as pb:
        want = emitter.run("perf16", 1000)
        batch = pb.poll_batch(timeout=2, dtype=dt)
        assert batch.array["seq"].tolist() == list(want) and set(batch.cpus.tolist()) == {cpu}
        assert batch.lengths.tolist() == [20] * 1000 and batch.lost == 0
        want = emitter.run("perf16", 10)
        batch = pb.consume_batch()
        check([PerfRecord(c, r) for c, r in zip(batch.cpus, batch)], want, cpu)
        want = emitter.run("perf16", 10)
        it = iter(pb)
        check([next(it) for _ in range(10)], want, cpu)
        # (a perf event reports each wake-up once even when a consume already took the samples, so an empty
        # buffer may look readable once: no assertion on that direction)
        pb.poll(timeout=0)
        select.select([pb], [], [], 0)
        emitter.run("perf16", 1)
        assert select.select([pb], [], [], 2)[0] == [pb]
        assert len(pb.consume()) == 1

        async def main() -> list[PerfRecord]:
            loop = asyncio.get_running_loop()
            # run_in_executor's thread is not pinned: the samples may land in any CPU's buffer
            fut = loop.run_in_executor(None, emitter.run, "perf16", 100)
            got: list[PerfRecord] = []
            async for rec in pb:
                got.append(rec)
                if len(got) == 100:
                    break
            await fut
            return got

        got = asyncio.run(main())
        assert sorted(REC16.unpack_from(r.data)[0] for r in got) == list(range(want[-1] + 2, want[-1] + 102))


def test_max_records_caps_a_perf_batch_and_nothing_is_lost(emitter: Emitter, cpu: int) -> None:
    with PerfBuffer(emitter.perf, pages=16) as pb:
        want = emitter.run("perf16", 1000)
        sizes, got = [], []
        while len(got) < 1000:
            batch = pb.consume_batch(max_records=300)
            assert batch.lost == 0 and set(batch.cpus.tolist()) <= {cpu}
            sizes.append(len(batch))
            got += [PerfRecord(c, r) for c, r in zip(batch.cpus, batch)]
        assert sizes == [300, 300, 300, 100] and len(pb.consume_batch()) == 0
        check(got, want, cpu)
        assert pb.lost == 0 and emitter.dropped(ring=False) == 0


@pytest.mark.parametrize("cap", [None, 257])
def test_a_batch_over_every_cpu_keeps_each_samples_cpu_through_changes_of_size(emitter: Emitter,
                                                                               cap: int | None) -> None:
    """Runs of 16 B and 256 B samples from every CPU, taken in batches that span CPUs (and, capped, stop inside a
    run): each record carries the CPU its program ran on, which must be the CPU the batch names for it."""
    home = os.sched_getaffinity(0)
    want: dict[int, list[tuple[int, int]]] = {}
    with PerfBuffer(emitter.perf, pages=64) as pb:
        try:
            for c in sorted(home):
                os.sched_setaffinity(0, {c})
                for prog, n, size in (("perf16", 300, 16), ("perf256", 20, 256), ("perf16", 200, 16)):
                    want.setdefault(c, []).extend((seq, size + (-(size + 4) % 8)) for seq in emitter.run(prog, n))
        finally:
            os.sched_setaffinity(0, home)
        assert emitter.dropped(ring=False) == 0
        got: dict[int, list[tuple[int, int]]] = {}
        total = sum(map(len, want.values()))
        sizes = []
        while sum(map(len, got.values())) < total:
            batch = pb.consume_batch() if cap is None else pb.consume_batch(max_records=cap)
            assert len(batch) > 0 and batch.lost == 0
            sizes.append(len(batch))
            for c, rec in zip(batch.cpus.tolist(), batch):
                seq, rcpu, tag = REC16.unpack_from(rec)
                assert (tag, rcpu) == (TAG, c)
                got.setdefault(c, []).append((seq, len(rec)))
        assert got == want and pb.lost == 0
        if cap is not None:
            assert sizes == [cap] * (total // cap) + ([total % cap] if total % cap else [])
        else:
            assert len(sizes) == 1


def test_consume_buffer_and_no_fd_leak(emitter: Emitter, cpu: int) -> None:
    before = open_fds()
    for _ in range(5):
        with PerfBuffer(emitter.perf, pages=2) as pb:
            want = emitter.run("perf16", 3)
            # buffer indexes follow libbpf's CPU list (all possible CPUs online here)
            got = [r for i in range(pb.buffer_count) for r in pb.consume_buffer(i)]
            check(got, want, cpu)
    assert open_fds() == before


def _bursts(emitter: Emitter, count: int, each: int, pause: float) -> range:
    """count bursts of `each` 16 B samples, `pause` seconds apart, nobody polling: the sequence numbers sent."""
    first = emitter.seq()
    for _ in range(count):
        emitter.run("perf16", each)
        time.sleep(pause)
    return range(first, emitter.seq())


def test_background_thread_keeps_what_a_paused_reader_would_lose(emitter: Emitter, cpu: int) -> None:
    """Ten bursts of 100 samples (32 B each) into 2 pages per CPU (256 fit), the reader paused throughout: a plain
    reader keeps what the kernel buffer holds and the kernel refuses the rest; with background=True the drain
    thread moves each burst into the backlog during the pause, and every sample arrives, in order."""
    dropped = emitter.dropped(ring=False)
    with PerfBuffer(emitter.perf, pages=2) as plain:
        want = _bursts(emitter, 10, 100, 0.02)
        got = plain.consume()
        refused = emitter.dropped(ring=False) - dropped
        assert refused > 0 and len(got) + refused == len(want)
    dropped = emitter.dropped(ring=False)
    for asked, backlog in ((1, 512 << 10), ((3 << 20) + 1, 4 << 20), (DEFAULT_BACKLOG, DEFAULT_BACKLOG)):
        with PerfBuffer(emitter.perf, pages=2, background=True, backlog=asked) as sized:
            # a power of two, at least 512 KiB: two of the largest samples perf can write always fit
            assert sized.backlog == backlog and f"backlog={backlog}" in repr(sized)
    with PerfBuffer(emitter.perf, pages=2, background=True) as pb:
        want = _bursts(emitter, 10, 100, 0.15)
        assert emitter.dropped(ring=False) == dropped
        check(pb.poll(timeout=2), want, cpu)
        assert pb.lost == 0 and pb.consume() == []
        # every read path reads the backlog: batches (capped, with a dtype), iteration, callbacks
        want = _bursts(emitter, 3, 100, 0.15)
        first = pb.consume_batch(max_records=250)
        rest = pb.poll_batch(timeout=2, dtype=[("seq", "<u8"), ("cpu", "<u4"), ("tag", "<u4")])
        assert len(first) == 250 and rest.array["seq"].tolist() == list(want[250:])
        check([PerfRecord(c, r) for c, r in zip(first.cpus, first)], want[:250], cpu)
        want = _bursts(emitter, 1, 50, 0.15)
        it = iter(pb)
        check([next(it) for _ in want], want, cpu)
        with pytest.raises(ValueError, match="background"):
            pb.consume_buffer(0)


def test_background_backlog_full_then_the_kernel_counts_the_loss(emitter: Emitter, cpu: int) -> None:
    """A flood nobody reads fills the backlog (512 KiB: ~12,000 entries of 32 B before the thread stops, keeping
    room for two of the largest samples) and the kernel buffer; the kernel refuses the rest. Bursts of 200 fit
    the kernel buffer (256), so the thread, given a pause after each, moves every burst until the backlog is
    full. Everything stored arrives, stored + refused = sent, the kernel's lost records reach lost_callback, and
    close() stops a thread waiting for room at once, fds and all."""
    before = open_fds()
    lost: list[tuple[int, int]] = []
    dropped = emitter.dropped(ring=False)
    with PerfBuffer(emitter.perf, pages=2, background=True, backlog=1,
                    lost_callback=lambda c, n: lost.append((c, n))) as pb:
        want = _bursts(emitter, 70, 200, 0.02)
        refused = emitter.dropped(ring=False) - dropped
        assert refused > 0
        got: list[PerfRecord] = []
        while more := pb.poll(timeout=0.5):  # the thread moves the kernel buffer's once the reader made room
            got += more
        assert len(got) + refused == len(want) and len(got) > 8000
        seqs = [REC16.unpack_from(r.data)[0] for r in got]
        assert seqs == sorted(seqs) and set(seqs) <= set(want)
        emitter.run("perf16", 1)  # the kernel writes its lost record before the next sample that fits
        deadline = time.monotonic() + 5
        while pb.lost < refused and time.monotonic() < deadline:
            pb.poll(timeout=0.2)
        # one lost record or several: the kernel writes one whenever space frees up while the thread resumes
        assert pb.lost == refused and sum(n for _, n in lost) == refused and {c for c, _ in lost} == {cpu}
    with PerfBuffer(emitter.perf, pages=2, background=True, backlog=1) as full:
        _bursts(emitter, 70, 200, 0.01)  # the thread now waits for room that nobody makes
        t0 = time.monotonic()
        full.close()
        assert time.monotonic() - t0 < 2
    assert open_fds() == before


def test_background_bad_input() -> None:
    from bpflink import MapType

    with Map.create(MapType.PERF_EVENT_ARRAY, key_size=4, value_size=4, max_entries=os.cpu_count() or 1) as m:
        with pytest.raises(TypeError, match="background"):
            PerfBuffer(m, background=1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="backlog"):
            PerfBuffer(m, background=True, backlog=1.5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="backlog"):
            PerfBuffer(m, background=True, backlog=0)


@pytest.mark.hostonly
@pytest.mark.leakcheck
def test_wakeup_bytes_wakes_at_the_watermark_and_poll_still_collects_below_it(emitter: Emitter, cpu: int) -> None:
    with PerfBuffer(emitter.perf, pages=8, wakeup_bytes=8192) as pb:
        assert pb.wakeup_bytes == 8192
        want = emitter.run("perf16", 10)  # 10 x 32 B: below the watermark, the fd stays quiet
        assert select.select([pb], [], [], 0.05)[0] == []
        t0 = time.monotonic()
        check(pb.poll(timeout=None), want, cpu)  # collected after a wait slice all the same
        assert time.monotonic() - t0 < 5
        want = emitter.run("perf16", 10)
        check(asyncio.run(pb.poll_async(None)), want, cpu)
        want = emitter.run("perf256", 40)  # 40 x 272 B: past the watermark, readable at once
        assert select.select([pb], [], [], 2)[0] == [pb]
        check(pb.poll(timeout=0), want, cpu, 256)
        assert pb.lost == 0 and emitter.dropped(ring=False) == 0


def test_bad_input() -> None:
    with Map.create(MapType.RINGBUF, key_size=0, value_size=0, max_entries=4096) as ring, \
            Map.create(MapType.PERF_EVENT_ARRAY, key_size=4, value_size=4, max_entries=os.cpu_count() or 1) as pa:
        for pages in (0, 3, 12, -4):
            with pytest.raises(ValueError, match="power of two"):
                PerfBuffer(pa, pages=pages)
        with pytest.raises(TypeError, match="pages"):
            PerfBuffer(pa, pages=2.0)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="PerfBuffer needs a PERF_EVENT_ARRAY map"):
            PerfBuffer(ring)
        for wake in (-1, 4096):
            with pytest.raises(ValueError, match=r"wakeup_bytes must be in 0..4095"):
                PerfBuffer(pa, pages=1, wakeup_bytes=wake)
        with pytest.raises(TypeError, match="wakeup_bytes must be an int"):
            PerfBuffer(pa, pages=1, wakeup_bytes=1.5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="lost_callback"):
            PerfBuffer(pa, lost_callback=1)  # type: ignore[arg-type]
        pb = PerfBuffer(pa, pages=1)
        with pytest.raises(IndexError):
            pb.consume_buffer(pb.buffer_count)
        pb.close()
        pb.close()
        for call in (pb.poll, pb.consume, pb.consume_batch, pb.fileno, lambda: pb.buffer_count):
            with pytest.raises(ValueError, match=r"^I/O operation on closed PerfBuffer$"):
                call()
        assert bpflink.PerfBuffer is PerfBuffer
        t0 = time.monotonic()
        with PerfBuffer(pa, pages=1) as pb2:
            assert pb2.poll(timeout=0.1) == [] and time.monotonic() - t0 < 2


def test_records_are_built_in_c_with_exact_references() -> None:
    """PerfRecords of a poll come from _fdowner.pairs (one C loop): real PerfRecords, each field one new
    reference, and bad input refused before anything is built."""
    from bpflink._fdowner import pairs

    cpus = [1, 2, 300]
    datas = [b"a" * 9, b"b" * 9, b"c" * 9]
    before = [sys.getrefcount(d) for d in datas]
    recs = pairs(PerfRecord, cpus, datas)
    assert recs == [PerfRecord(1, b"a" * 9), PerfRecord(2, b"b" * 9), PerfRecord(300, b"c" * 9)]
    assert all(type(r) is PerfRecord for r in recs) and recs[2].cpu == 300 and bytes(recs[0]) == b"a" * 9
    assert [sys.getrefcount(d) for d in datas] == [b + 1 for b in before]
    del recs
    assert [sys.getrefcount(d) for d in datas] == before
    assert pairs(PerfRecord, [], []) == []
    with pytest.raises(ValueError, match="differ in length"):
        pairs(PerfRecord, [1], [])
    with pytest.raises(TypeError, match="tuple subclass"):
        pairs(list, [1], [b""])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tuple subclass"):
        pairs(tuple, [1], [b""])
    with pytest.raises(TypeError):
        pairs(PerfRecord, (1,), [b""])  # type: ignore[arg-type]


def test_records_without_references_to_containers_are_left_to_reference_counting() -> None:
    """pairs() untracks a record only when it can never be part of a cycle: a tuple subclass without __dict__
    holding objects the collector does not track. Anything else stays tracked, so cycles are still collected."""
    from bpflink._fdowner import pairs

    recs = pairs(PerfRecord, [1, 2], [b"x" * 16, b"y" * 16])
    assert not any(gc.is_tracked(r) for r in recs) and gc.is_tracked(recs)

    class WithDict(tuple):  # instances have a __dict__: one could come to hold the record itself
        pass

    class Marker:
        pass

    held = pairs(WithDict, [1], [b"x"])[0]
    assert gc.is_tracked(held)
    held.self = held  # a cycle through __dict__
    held.marker = Marker()  # tuples take no weak references; what the record holds does
    ref = weakref.ref(held.marker)
    del held
    gc.collect()
    assert ref() is None
    # a field that is a container keeps its record tracked
    assert gc.is_tracked(pairs(PerfRecord, [[]], [b""])[0])


def test_fixed_size_records_are_split_in_c() -> None:
    """RecordBatch turns records of one length into bytes through _fdowner.split: exact slices, a cut when the
    stride is longer than the record, and input that does not divide refused."""
    from bpflink._fdowner import split

    data = bytes(range(48))
    assert split(data, 16, 16) == [data[0:16], data[16:32], data[32:48]]
    assert split(data, 16, 5) == [data[0:5], data[16:21], data[32:37]]
    assert split(b"", 8, 8) == [] and split(data, 48, 0) == [b""]
    for bad in ((data, 0, 0), (data, 16, 17), (data, 16, -1), (data, 32, 8)):
        with pytest.raises(ValueError, match="do not hold records"):
            split(*bad)
    with pytest.raises(TypeError):
        split(bytearray(data), 16, 16)  # type: ignore[arg-type]
