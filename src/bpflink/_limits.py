"""The integer ranges the kernel's ABI fixes, named once, and the checks that enforce them before any syscall.

>>> u32("flags", 7), FD_MAX
(7, 2147483647)
"""

from __future__ import annotations

from typing import Any

U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1
S32_MIN, S32_MAX = -(1 << 31), (1 << 31) - 1
#: the largest fd (and ifindex) the kernel's ``int``/``__u32`` fields take: an fd is a non-negative C int
FD_MAX = S32_MAX


def integer(name: str, value: Any, lo: int, hi: int) -> int:
    """``value`` as an int in ``lo..hi``: ``TypeError`` for non-ints (bool included), else ``ValueError``."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    v = value.__index__()
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {v}")
    return int(v)


def u32(name: str, value: Any) -> int:
    return integer(name, value, 0, U32_MAX)


def u64(name: str, value: Any) -> int:
    return integer(name, value, 0, U64_MAX)


def s32(name: str, value: Any) -> int:
    return integer(name, value, S32_MIN, S32_MAX)
