"""CPU facts the kernel's per-CPU maps depend on.

A per-CPU map holds one value for each *possible* CPU (``/sys/devices/system/cpu/possible``), not each online
one: a lookup writes that many slots, whatever ``os.cpu_count()`` says.

>>> parse_cpu_list("0-3,6,8-9")
[0, 1, 2, 3, 6, 8, 9]
>>> possible_cpus() >= 1
True
"""

from __future__ import annotations

import os

_POSSIBLE = "/sys/devices/system/cpu/possible"
_cached: int | None = None


def parse_cpu_list(text: str) -> list[int]:
    """The CPUs of a kernel cpu list (``0-3,5``); ``ValueError`` on anything else."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"not a kernel cpu list: {text!r}")
        first, last = int(lo), int(hi) if sep else int(lo)
        if last < first:
            raise ValueError(f"not a kernel cpu list: {text!r}")
        cpus.extend(range(first, last + 1))
    return cpus


def possible_cpus() -> int:
    """How many value slots a per-CPU map has: the highest possible CPU + 1 (as libbpf counts them)."""
    global _cached
    if _cached is None:
        with open(_POSSIBLE) as f:
            _cached = max(parse_cpu_list(f.read())) + 1
    return _cached


def _reset_after_fork() -> None:  # a fact of the machine; kept, but re-read lazily in case of checkpointing
    global _cached
    _cached = None


os.register_at_fork(after_in_child=_reset_after_fork)

__all__ = ["parse_cpu_list", "possible_cpus"]
