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
