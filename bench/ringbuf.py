"""Ring buffer and perf buffer consumers: C (libbpf), bpflink's callback, iteration and batch paths, and a naive
ctypes reader, against one producer in the kernel at full speed (``BPF_PROG_TEST_RUN`` with ``repeat`` on
tests/bpf/ringbuf_emit.bpf.c's socket filters, one 16 B or 256 B record per run).

    .venv/bin/python -m bench.ringbuf [--quick]      # table on stdout, bench/results/ringbuf.json

Also imported by tests/test_ringbuf.py and tests/test_perfbuf.py for ``test_run`` (the producer).
"""

from __future__ import annotations

from typing import Any

from bpflink._fd import as_fd
from bpflink._native import ffi, lib

# at least ETH_HLEN bytes: BPF_PROG_TEST_RUN builds an skb from them for the socket filter
PACKET = bytes(64)


def test_run(prog: Any, repeat: int) -> int:
    """Run ``prog`` ``repeat`` times in the kernel (one record each); the kernel's duration per run in ns."""
    retval = ffi.new("__u32 *")
    duration = ffi.new("__u32 *")
    err = lib.bpflink_test_run_repeat(as_fd(prog, "prog"), repeat, PACKET, len(PACKET), retval, duration)
    if err < 0:
        raise OSError(-err, f"BPF_PROG_TEST_RUN(repeat={repeat}) failed: errno {-err}")
    return int(duration[0])


test_run.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


# ---------------------------------------------------------------------------------------------------------------
# the benchmark
import argparse  # noqa: E402
import ctypes  # noqa: E402
import json  # noqa: E402
import mmap  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

from .common import BENCH, BUILD, LIBBPF, ROOT, machine, median  # noqa: E402

RING_BYTES = 32 << 20
PRODUCER_CPU = 0  # consumers (this process's main thread, the C child) run on the other CPUs
SOURCE = ROOT / "tests" / "bpf" / "ringbuf_emit.bpf.c"
SIZES = {16: ("ring16", "perf16"), 256: ("ring256", "perf256")}


def build(out_dir: Path = BUILD) -> tuple[Path, Path]:
    """The emitter object (RINGBUF_BYTES=32 MiB) and the C consumer, built against build/libbpf."""
    out_dir.mkdir(parents=True, exist_ok=True)
    obj, exe = out_dir / "ringbuf_emit.bpf.o", out_dir / "ringbuf"
    triplet = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True).stdout.strip()
    clang = shutil.which("clang") or "clang"
    steps = [
        [clang, "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", f"-DRINGBUF_BYTES={RING_BYTES}",
         f"-I{LIBBPF / 'include'}", f"-I/usr/include/{triplet}", "-c", str(SOURCE), "-o", str(obj)],
        ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{LIBBPF / 'include'}", "-o", str(exe),
         str(BENCH / "c" / "ringbuf.c"), str(LIBBPF / "lib" / "libbpf.a"), "-lelf", "-lz"],
    ]
    for cmd in steps:
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr}")
    return obj, exe


class Setup:
    def __init__(self, obj_path: Path, ring_bytes: int | None = None) -> None:
        from bpflink import Object

        self.obj = Object.open(obj_path, load=False)
        if ring_bytes is not None:  # the live ring runs with the drain thread use a ring an agent would size
            self.obj.configure_map("events", max_entries=ring_bytes)
        self.obj.load()
        self.events = self.obj.map("events")
        self.perf = self.obj.map("perf")
        self.state = self.obj.map("state")
        self.progs = {name: self.obj.program(name) for names in SIZES.values() for name in names}

    def dropped(self, perf: bool) -> int:
        return self.state.lookup_int(2 if perf else 1)

    def close(self) -> None:
        for p in self.progs.values():
            p.close()
        for m in (self.events, self.perf, self.state):
            m.close()
        self.obj.close()


# --- the naive ctypes readers (bench-only: the baseline a user without bpflink would write) -----------------------
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.syscall.restype = ctypes.c_long
_libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong]


def _mmap(fd: int, length: int, prot: int, offset: int) -> int:
    addr = _libc.mmap(None, length, prot, mmap.MAP_SHARED, fd, offset)
    if addr in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap")
    return int(addr)


class CtypesRing:
    """Walks a BPF ring buffer in Python: consumer page (rw), producer page + data mapped twice (ro)."""

    BUSY, DISCARD = 1 << 31, 1 << 30

    def __init__(self, fd: int, size: int) -> None:
        self.page = mmap.PAGESIZE
        self.size = size
        self.cons = _mmap(fd, self.page, mmap.PROT_READ | mmap.PROT_WRITE, 0)
        self.prod = _mmap(fd, self.page + 2 * size, mmap.PROT_READ, self.page)
        self.data = self.prod + self.page

    def consume(self, cb: Callable[[bytes], object]) -> int:
        n = 0
        cons = ctypes.c_ulong.from_address(self.cons)
        c = cons.value
        p = ctypes.c_ulong.from_address(self.prod).value
        mask = self.size - 1
        while c < p:
            hdr = ctypes.c_uint32.from_address(self.data + (c & mask)).value
            if hdr & self.BUSY:
                break
            length = hdr & ~(self.BUSY | self.DISCARD)
            if not hdr & self.DISCARD:
                cb(ctypes.string_at(self.data + (c & mask) + 8, length))
                n += 1
            c += (length + 8 + 7) & ~7
            cons.value = c
        return n

    def close(self) -> None:
        _libc.munmap(self.cons, self.page)
        _libc.munmap(self.prod, self.page + 2 * self.size)


class CtypesPerf:
    """Opens one BPF_OUTPUT perf event per CPU itself, puts them into the map and walks their rings in Python."""

    def __init__(self, map_: object, pages: int) -> None:
        self.page = mmap.PAGESIZE
        self.length = self.page * (1 + pages)
        self.bufs: list[tuple[int, int]] = []
        self.lost = 0
        attr = bytearray(128)
        # type SOFTWARE, size, config BPF_OUTPUT, sample_period 1, sample_type RAW, wakeup_events 1
        struct.pack_into("<IIQQQ", attr, 0, 1, 128, 10, 1, 1 << 10)
        struct.pack_into("<I", attr, 48, 1)
        cattr = ctypes.create_string_buffer(bytes(attr), 128)
        for cpu in range(os.cpu_count() or 1):
            fd = _libc.syscall(298, cattr, -1, cpu, -1, 8)
            if fd < 0:
                raise OSError(ctypes.get_errno(), "perf_event_open")
            addr = _mmap(fd, self.length, mmap.PROT_READ | mmap.PROT_WRITE, 0)
            _libc.ioctl(fd, 0x2400, 0)  # PERF_EVENT_IOC_ENABLE
            map_.update(cpu, fd)  # type: ignore[attr-defined]
            self.bufs.append((fd, addr))

    def consume(self, cb: Callable[[bytes], object]) -> int:
        n = 0
        size = self.length - self.page
        for _, base in self.bufs:
            head = ctypes.c_uint64.from_address(base + 1024).value
            tail_ref = ctypes.c_uint64.from_address(base + 1032)
            tail = tail_ref.value
            data = base + self.page
            while tail < head:
                at = tail % size
                hdr = ctypes.string_at(data + at, 8) if at + 8 <= size else \
                    ctypes.string_at(data + at, size - at) + ctypes.string_at(data, 8 - (size - at))
                rtype, _misc, rsize = struct.unpack("<IHH", hdr)
                if at + rsize <= size:
                    rec = ctypes.string_at(data + at, rsize)
                else:
                    rec = ctypes.string_at(data + at, size - at) + ctypes.string_at(data, rsize - (size - at))
                if rtype == 9:  # PERF_RECORD_SAMPLE: u32 size + raw data
                    raw = struct.unpack_from("<I", rec, 8)[0]
                    cb(rec[12:12 + raw])
                    n += 1
                elif rtype == 2:  # PERF_RECORD_LOST: u64 id, u64 lost
                    self.lost += struct.unpack_from("<Q", rec, 16)[0]
                tail += rsize
            tail_ref.value = tail
        return n

    def close(self) -> None:
        for fd, addr in self.bufs:
            _libc.munmap(addr, self.length)
            os.close(fd)


# --- consumers -----------------------------------------------------------------------------------------------------
PY_VARIANTS = ("callback", "iteration", "list", "batch", "numpy", "ctypes")
#: drain only: ``batch`` on a reader that took one untimed batch first (its pool block warm, as in a running
#: agent); ``batch`` itself times a fresh reader, its first block's page faults included
DRAIN_ONLY = ("batch-warm",)
#: live perf only: ``batch`` with ``PerfBuffer(wakeup_bytes=a quarter of a CPU's buffer)`` (a watermark), and
#: ``batch`` with ``PerfBuffer(background=True)`` (a native thread empties the kernel's buffers into a backlog),
#: and both readers busy 5 ms after each batch (an agent's own work, or a pause of the collector)
LIVE_PERF_ONLY = ("batch-wm", "batch-bg", "batch-busy", "batch-bg-busy")
BUSY_S = 0.005
#: live only: ``batch-wait`` waits inside ``poll_batch(WAIT_S)`` (woken by the kernel, as C's epoll loop),
#: ``batch-nap`` the same on a reader made with ``poll_interval=NAP_S`` (it naps and looks again, so no record
#: has a sleeping reader to wake)
LIVE_ONLY = ("batch-wait", "batch-nap")
WAIT_S = 0.05
NAP_S = 0.001
DTYPE16 = [("seq", "<u8"), ("cpu", "<u4"), ("tag", "<u4")]


def _dtype(size: int) -> list[tuple[str, str]]:
    return DTYPE16 if size == 16 else [*DTYPE16, ("payload", "V240")]


def _python_consumer(kind: str, variant: str, setup: Setup, size: int, pages: int) -> tuple[Any, Callable[[], int]]:
    """(reader to close, consume-once function returning records taken) for one variant."""
    from bpflink import PerfBuffer, RingBuffer

    perf = kind == "pb"
    sink: list[Any] = []
    if variant == "ctypes":
        if perf:
            reader: Any = CtypesPerf(setup.perf, pages)
        else:
            reader = CtypesRing(setup.events.fd, RING_BYTES)
        counter = [0]

        def cb(rec: bytes) -> None:
            counter[0] += 1

        return reader, lambda: reader.consume(cb)
    if variant == "callback":
        counter = [0]
        if perf:
            def pcb(cpu: int, rec: bytes) -> None:
                counter[0] += 1

            reader = PerfBuffer(setup.perf, pages=pages, callback=pcb)
        else:
            def rcb(rec: bytes) -> None:
                counter[0] += 1

            reader = RingBuffer(setup.events, callback=rcb)

        def once() -> int:
            before = counter[0]
            reader.poll(0)
            return counter[0] - before

        return reader, once
    if variant == "batch-wm":
        reader = PerfBuffer(setup.perf, pages=pages, wakeup_bytes=pages * mmap.PAGESIZE // 4)
        return reader, lambda: len(reader.poll_batch(0))
    if variant in ("batch-bg", "batch-busy", "batch-bg-busy"):
        background = variant != "batch-busy"
        if perf:
            reader = PerfBuffer(setup.perf, pages=pages, background=background)
        else:
            reader = RingBuffer(setup.events, background=background)
        if variant == "batch-bg":
            return reader, lambda: len(reader.poll_batch(0))

        def busy() -> int:
            n = len(reader.poll_batch(0))
            if n:
                time.sleep(BUSY_S)
            return n

        return reader, busy
    if variant in LIVE_ONLY:
        nap = NAP_S if variant == "batch-nap" else None
        reader = (PerfBuffer(setup.perf, pages=pages, poll_interval=nap) if perf
                  else RingBuffer(setup.events, poll_interval=nap))
        return reader, lambda: len(reader.poll_batch(WAIT_S))
    reader = PerfBuffer(setup.perf, pages=pages) if perf else RingBuffer(setup.events)
    if variant == "list":
        return reader, lambda: len(reader.poll(0))
    if variant in ("batch", "batch-warm"):
        return reader, lambda: len(reader.poll_batch(0))
    if variant == "numpy":
        dt = _dtype(size)
        return reader, lambda: len(reader.poll_batch(0, dtype=dt).array)
    if variant == "iteration":
        it = iter(reader)

        def take() -> int:
            # iteration blocks for the next record; the driver only calls this while records are due
            next(it)
            return 1

        sink.append(it)
        return reader, take
    raise ValueError(variant)


def _c_consumer(exe: Path, kind: str, fd: int, n: int, pages: int, mode: str) -> subprocess.Popen[str]:
    args = [str(exe), kind, str(fd), *([str(pages)] if kind == "pb" else []), str(n), mode]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            pass_fds=(fd,), text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(f"C consumer: {line} {proc.stderr.read() if proc.stderr else ''}")
    return proc


def _produce(setup: Setup, kind: str, size: int, n: int) -> tuple[int, float]:
    """Run the producer n times; (records it could not store, wall seconds)."""
    prog = setup.progs[SIZES[size][kind == "pb"]]
    before = setup.dropped(kind == "pb")
    home = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {PRODUCER_CPU})  # this thread only: perf samples all land in one CPU's buffer
    try:
        t0 = time.perf_counter()
        left = n
        while left:  # test_run's repeat is an int; chunks also keep one call from holding a CPU for seconds
            step = min(left, 1 << 20)
            test_run(prog, step)
            left -= step
        elapsed = time.perf_counter() - t0
    finally:
        os.sched_setaffinity(0, home)
    return setup.dropped(kind == "pb") - before, elapsed


def drain(exe: Path, setup: Setup, kind: str, size: int, n: int, pages: int, variant: str) -> dict[str, Any]:
    """Fill the ring with n records (no consumer running), then time one consumer taking them all."""
    if variant in ("c", "c-copy"):
        proc = _c_consumer(exe, kind, (setup.perf if kind == "pb" else setup.events).fd, n, pages,
                           "drain" if variant == "c" else "drain-copy")
        dropped, _ = _produce(setup, kind, size, n)
        if dropped:
            proc.kill()
            return {"error": f"{dropped} records did not fit"}
        out, _ = proc.communicate("go\n", timeout=120)
        count, lost, ns, cpu_ns = map(int, out.split())
        return {"records": count, "lost": lost, "seconds": ns / 1e9, "rate": count / (ns / 1e9),
                "cpu_rate": count / max(cpu_ns / 1e9, 1e-9)}
    reader, once = _python_consumer(kind, variant, setup, size, pages)
    try:
        if variant == "batch-warm":  # one untimed batch first: the reader's pool block is warm afterwards
            warm = min(n, (1 << 20) // (size + 8))
            _produce(setup, kind, size, warm)
            taken = 0
            while taken < warm:
                taken += once()
        dropped, _ = _produce(setup, kind, size, n)
        if dropped:
            return {"error": f"{dropped} records did not fit"}
        got = 0
        c0 = time.thread_time()
        t0 = time.perf_counter()
        while got < n:
            got += once()
        dt = time.perf_counter() - t0
        cpu_s = time.thread_time() - c0
    finally:
        reader.close()
    return {"records": got, "lost": 0, "seconds": dt, "rate": got / dt, "cpu_rate": got / max(cpu_s, 1e-9)}


def live(exe: Path, setup: Setup, kind: str, size: int, n: int, pages: int, variant: str) -> dict[str, Any]:
    """The producer at full speed (another thread/process) while the consumer runs: records/s and losses."""
    perf = kind == "pb"
    if variant == "c":
        proc = _c_consumer(exe, kind, (setup.perf if perf else setup.events).fd, n, pages, "live")
        t0 = time.monotonic_ns()
        dropped, produce_s = _produce(setup, kind, size, n)
        out, _ = proc.communicate(f"done {n - dropped}\n", timeout=300)
        count, lost, last = map(int, out.split())
        return {"records": count, "dropped": dropped, "lost_reported": lost, "seconds": (last - t0) / 1e9,
                "rate": count / max((last - t0) / 1e9, 1e-9), "produce_s": produce_s}
    if variant == "iteration":
        variant = "list"  # the live loop needs a non-blocking take; iteration's cost is in the drain figures
    reader, once = _python_consumer(kind, variant, setup, size, pages)
    result: dict[str, Any] = {}

    def producer() -> None:
        result["dropped"], result["produce_s"] = _produce(setup, kind, size, n)

    try:
        t = threading.Thread(target=producer)
        t0 = time.monotonic_ns()
        t.start()
        got, last = 0, t0
        while True:
            done = not t.is_alive()
            k = once()
            if k:
                got += k
                last = time.monotonic_ns()
            elif done and got >= n - result["dropped"]:
                break
            elif done and time.monotonic_ns() - last > 2e9:
                break  # records lost on the consumer side (the ctypes perf reader counts them as lost)
            elif not k:
                select_wait(reader)
        t.join()
    finally:
        reader.close()
    return {"records": got, "dropped": result["dropped"], "seconds": (last - t0) / 1e9,
            "rate": got / max((last - t0) / 1e9, 1e-9), "produce_s": result["produce_s"]}


def select_wait(reader: Any) -> None:
    if hasattr(reader, "fileno"):
        import select

        select.select([reader], [], [], 0.01)
    else:
        time.sleep(0.0005)


def run(quick: bool = False, rounds: int | None = None, live_pages: int = 64,
        only: tuple[str, ...] = ()) -> dict[str, Any]:
    import numpy  # noqa: F401  (imported here, not inside the first timed numpy round)

    obj, exe = build()
    setup = Setup(obj)
    home = os.sched_getaffinity(0)
    others = home - {PRODUCER_CPU}
    if others:
        os.sched_setaffinity(0, others)  # inherited by the C consumers; _produce moves its thread to PRODUCER_CPU
    load = os.getloadavg()
    r: dict[str, Any] = {"machine": machine(), "loadavg_before": load, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                         "quick": quick, "ring_bytes": RING_BYTES}
    rounds = rounds or (3 if quick else 5)
    r["rounds"] = rounds
    r["live_pages"] = live_pages
    counts = {16: 200_000 if quick else 1_000_000, 256: 40_000 if quick else 100_000}
    pages = 4096  # 16 MiB per CPU: a drained perf buffer holds the whole run
    variants = ("c", "c-copy", *PY_VARIANTS, *DRAIN_ONLY)
    try:
        for kind in ("rb", "pb"):
            for size in SIZES:
                if only and f"{kind}{size}" not in only:
                    continue
                n = counts[size] if kind == "rb" else min(counts[size], (pages * mmap.PAGESIZE) // (size + 24))
                key = f"{kind}{size}"
                runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
                for rnd in range(rounds):
                    order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
                    for v in order:
                        runs[v].append(drain(exe, setup, kind, size, n, pages, v))
                r[f"drain_{key}"] = _summary(runs, n)
                live_variants = ("c", *PY_VARIANTS, *LIVE_ONLY, *(LIVE_PERF_ONLY if kind == "pb" else ()))
                live_runs: dict[str, list[dict[str, Any]]] = {v: [] for v in live_variants}
                ln = n // 2
                for rnd in range(rounds):
                    order = live_variants[rnd % len(live_variants):] + live_variants[:rnd % len(live_variants)]
                    for v in order:
                        live_runs[v].append(live(exe, setup, kind, size, ln, live_pages, v))
                r[f"live_{key}"] = _summary(live_runs, ln, live=True)
                print(_table_part(key, r[f"drain_{key}"], r[f"live_{key}"]), flush=True)
    finally:
        setup.close()
        os.sched_setaffinity(0, home)  # bench/run's next part gets every CPU again
    r["loadavg_after"] = os.getloadavg()
    r["goals"] = goals(r)
    return r


def _summary(runs: dict[str, list[dict[str, Any]]], n: int, live: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"n": n}
    # "x C" compares with the counting-only C consumer; the c-copy row shows what copying each record costs C
    c_rate = median([x["rate"] for x in runs["c"] if "rate" in x] or [0.0])
    ct_rate = median([x["rate"] for x in runs.get("ctypes", []) if "rate" in x] or [0.0])
    c_cpu = median([x.get("cpu_rate", 0.0) for x in runs["c"] if "rate" in x] or [0.0])
    ct_cpu = median([x.get("cpu_rate", 0.0) for x in runs.get("ctypes", []) if "rate" in x] or [0.0])
    for v, xs in runs.items():
        ok = [x for x in xs if "rate" in x]
        if not ok:
            out[v] = {"error": xs[0].get("error") if xs else "no run"}
            continue
        rate = median([x["rate"] for x in ok])
        out[v] = {"rate": rate, "x_c": rate / c_rate if c_rate else None,
                  "x_ctypes": rate / ct_rate if ct_rate else None,
                  "records": [x["records"] for x in ok]}
        if not live:
            cpu = median([x["cpu_rate"] for x in ok])
            out[v]["cpu_rate"] = cpu
            out[v]["cpu_x_c"] = cpu / c_cpu if c_cpu else None
            out[v]["cpu_x_ctypes"] = cpu / ct_cpu if ct_cpu else None
        if live:
            out[v]["dropped"] = [x["dropped"] for x in ok]
    return out


def _table_part(key: str, d: dict[str, Any], lv: dict[str, Any]) -> str:
    lines = [f"\n{key}: drain {d['n']} records / live {lv['n']} records (median records/s)",
             f"  {'variant':13} {'drain rec/s':>13} {'x C':>6} {'x ctypes':>9} {'CPU-time x C':>13} "
             f"{'x ctypes':>9}   {'live rec/s':>12} {'x C':>6} {'dropped (per round)':>20}"]
    for v in [*d, *(x for x in lv if x not in d)]:
        if v == "n":
            continue
        a, b = d.get(v, {"rate": 0.0, "x_c": 0.0, "x_ctypes": 0.0, "cpu_x_c": 0.0, "cpu_x_ctypes": 0.0}), lv.get(v, {})
        if "rate" not in a:
            lines.append(f"  {v:13} {a.get('error')}")
            continue
        lines.append(f"  {v:13} {a['rate']:13,.0f} {a['x_c']:6.2f} {a['x_ctypes']:9.1f} {a['cpu_x_c']:13.2f} "
                     f"{a['cpu_x_ctypes']:9.1f}   "
                     f"{b.get('rate', 0):12,.0f} {b.get('x_c') or 0:6.2f} {b.get('dropped')!s:>20}")
    return "\n".join(lines)


KEYS = ("rb16", "rb256", "pb16", "pb256")


def goals(r: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """The issue's ratios per case, from the drain medians in CPU time: batch and numpy against the counting C
    consumer (goal >= 0.5) and the copying one, the per-record paths against the ctypes reader (goal >= 5)."""
    out: dict[str, dict[str, float | None]] = {}
    for key in KEYS:
        d = r.get(f"drain_{key}")
        if not d:
            continue

        def cpu(v: str, d: dict[str, Any] = d) -> float | None:
            rate = d.get(v, {}).get("cpu_rate")
            return float(rate) if rate else None

        def ratio(a: str, b: str) -> float | None:
            x, y = cpu(a), cpu(b)
            return x / y if x and y else None

        out[key] = {"batch/C": ratio("batch", "c"), "batch-warm/C": ratio("batch-warm", "c"),
                    "numpy/C": ratio("numpy", "c"), "batch-warm/c-copy": ratio("batch-warm", "c-copy"),
                    "batch/c-copy": ratio("batch", "c-copy"), "c-copy/C": ratio("c-copy", "c"),
                    "callback/ctypes": ratio("callback", "ctypes"), "iteration/ctypes": ratio("iteration", "ctypes"),
                    "list/ctypes": ratio("list", "ctypes")}
    return out


def table(r: dict[str, Any]) -> str:
    g = r.get("goals") or goals(r)
    lines = [f"\nring/perf buffers, drain, CPU-time ratios (medians of {r.get('rounds')} rounds; load average "
             f"{r['loadavg_before'][0]:.1f} before, {r['loadavg_after'][0]:.1f} after)",
             "  " + f"{'ratio':18}" + "".join(f"{k:>9}" for k in g)]
    for name in next(iter(g.values()), {}):
        cells = "".join(f"{g[k][name]:9.2f}" if g[k][name] is not None else f"{'-':>9}" for k in g)
        lines.append(f"  {name:18}{cells}")
    return "\n".join(lines)


#: ``--ring-background``: the ring an agent might size (a reader pausing 5 ms at a full-speed producer loses
#: records with it), the variants, and the records per round
BG_RING_BYTES = 256 << 10
BG_VARIANTS = ("c", "batch", "batch-bg", "batch-busy", "batch-bg-busy")
BG_RECORDS = 500_000


def run_ring_background(rounds: int) -> dict[str, Any]:
    """Live 16 B ring runs over a ``BG_RING_BYTES`` ring: readers with and without ``background=True``, idle or
    busy ``BUSY_S`` after each batch, against libbpf's C reader; records the program could not store, per round."""
    obj, exe = build()
    setup = Setup(obj, ring_bytes=BG_RING_BYTES)
    home = os.sched_getaffinity(0)
    others = home - {PRODUCER_CPU}
    if others:
        os.sched_setaffinity(0, others)
    r: dict[str, Any] = {"machine": machine(), "loadavg_before": os.getloadavg(), "rounds": rounds,
                         "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "ring_bytes": BG_RING_BYTES}
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in BG_VARIANTS}
    try:
        for rnd in range(rounds):
            for v in BG_VARIANTS[rnd % len(BG_VARIANTS):] + BG_VARIANTS[:rnd % len(BG_VARIANTS)]:
                runs[v].append(live(exe, setup, "rb", 16, BG_RECORDS, 0, v))
    finally:
        setup.close()
        os.sched_setaffinity(0, home)
    r["live_rb16"] = _summary(runs, BG_RECORDS, live=True)
    r["loadavg_after"] = os.getloadavg()
    return r


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.ringbuf")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--live-pages", type=int, default=64, help="pages per CPU of the live perf buffers (64)")
    ap.add_argument("--only", default="", help="cases, e.g. rb16,pb256 (default: all four)")
    ap.add_argument("--ring-background", action="store_true",
                    help=f"only live 16 B runs over a {BG_RING_BYTES >> 10} KiB ring, with and without "
                         "RingBuffer(background=True); writes results/ringbuf-background.json")
    args = ap.parse_args()
    if args.ring_background:
        bg = run_ring_background(args.rounds or 5)
        path = BENCH / "results" / "ringbuf-background.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(bg, indent=1) + "\n")
        print(f"live rb16 over a {BG_RING_BYTES >> 10} KiB ring, {BG_RECORDS:,} records a round "
              "(median records/s; records the program could not store, per round)")
        for v, x in bg["live_rb16"].items():
            if v != "n":
                print(f"  {v:14} {x.get('rate', 0):12,.0f}  {x.get('dropped')}")
        print(f"\nload average before {bg['loadavg_before']}, after {bg['loadavg_after']}; wrote {path}")
        return
    r = run(args.quick, args.rounds, args.live_pages, tuple(filter(None, args.only.split(","))))
    out = BENCH / "results" / "ringbuf.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(r, indent=1) + "\n")
    print(table(r))
    print(f"\nload average before {r['loadavg_before']}, after {r['loadavg_after']}; wrote {out}")


if __name__ == "__main__":
    main()
