"""The Python create+close loops, timed (imported by bench.links) or untimed (run under callgrind).

Untimed, as a script: ``python bench/pyloop.py lowlevel|facade PROG_FD TARGET ATTACH_TYPE N``. It runs one
warm-up iteration (first calls resolve cffi symbols and fill caches), then N iterations, nothing else, so
callgrind's count for N minus its count for 0 is N times the steady-state cost of one create+close.
"""

from __future__ import annotations

import os
import sys
import time

import bpflink
from bpflink import AttachType, Program, link_create, lowlevel


def lowlevel_times(prog_fd: int, target: int, attach_type: int, n: int) -> list[tuple[int, int]]:
    """``lowlevel.bpf_link_create`` + ``os.close``: (create_ns, close_ns) per iteration."""
    create, close, clock = lowlevel.bpf_link_create, os.close, time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = clock()
        fd = create(prog_fd, target, attach_type, None)
        t1 = clock()
        if fd < 0:
            raise OSError(-fd, f"bpf_link_create: {os.strerror(-fd)}")
        close(fd)
        t2 = clock()
        out.append((t1 - t0, t2 - t1))
    return out


def facade_times(prog: Program, target: int, attach_type: AttachType, n: int) -> list[tuple[int, int]]:
    """``bpflink.link_create`` + ``Link.close``: (create_ns, close_ns) per iteration."""
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = clock()
        link = link_create(prog, target, attach_type)
        t1 = clock()
        link.close()
        t2 = clock()
        out.append((t1 - t0, t2 - t1))
    return out


def _untimed(mode: str, prog_fd: int, target: int, attach_type: int, n: int) -> None:
    if mode == "lowlevel":
        create, close = lowlevel.bpf_link_create, os.close
        for _ in range(n + 1):
            fd = create(prog_fd, target, attach_type, None)
            if fd < 0:
                raise OSError(-fd, "bpf_link_create")
            close(fd)
    elif mode == "facade":
        prog = Program(prog_fd)
        at = AttachType(attach_type)
        for _ in range(n + 1):
            link_create(prog, target, at).close()
        prog.detach_fd()  # the fd belongs to the driver
    elif mode != "import":  # "import": only the cost of importing bpflink (a sanity floor)
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    _mode, *_nums = sys.argv[1:]
    _untimed(_mode, *map(int, _nums))
    assert bpflink.__version__
