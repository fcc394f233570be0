"""Array arguments of the multi-probe builders: any int sequence or buffer, copied once into private bytes.

A buffer (``array('Q')``, numpy, ``bytes``, ``memoryview``) is copied with one C-level copy and checked without
a Python loop per element; a plain sequence goes through ``array.array`` (also a C loop). The copy is taken
when the builder is made, so the caller may reuse its array afterwards without moving any probe.

>>> to_u64_bytes("cookies", [1, 2]) == (1).to_bytes(8, "little") + (2).to_bytes(8, "little")
True
"""

from __future__ import annotations

import array
import sys
from collections.abc import Sequence
from typing import Any, Union

#: what the array arguments accept (Any: array.array, numpy and other buffers)
IntArray = Union[Sequence[int], bytes, bytearray, memoryview, Any]
MAX_CNT = 1 << 20  # the kernel's MAX_KPROBE_MULTI_CNT and MAX_UPROBE_MULTI_CNT (E2BIG past it)

_UNSIGNED = {"B": 1, "H": 2, "I": 4, "L": 8 if array.array("L").itemsize == 8 else 4, "Q": 8}
_SIGNED = {"b": 1, "h": 2, "i": 4, "l": array.array("l").itemsize, "q": 8}
_NATIVE = "<" if sys.byteorder == "little" else ">"


def _from_buffer(name: str, value: Any, width: int) -> bytes | None:
    """None when ``value`` is not a buffer; else its elements as native unsigned ints of ``width`` bytes."""
    if isinstance(value, str):
        return None
    try:
        mv = memoryview(value)
    except TypeError:
        return None
    fmt = mv.format
    if fmt[:1] in ("@", "=", "<", ">", "!"):
        order, fmt = fmt[0], fmt[1:]
        if (order in ">!" and _NATIVE == "<") or (order == "<" and _NATIVE == ">"):
            raise ValueError(f"{name}: a buffer in non-native byte order ({mv.format!r}) is not accepted; "
                             "convert it to native order first")
    if mv.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got {mv.ndim} dimensions")
    raw = mv.tobytes()  # the one copy (C-contiguous whatever the source layout)
    typed = isinstance(value, array.array) or hasattr(value, "dtype")  # array.array, numpy
    if fmt in ("B", "c") and not typed:  # bytes, bytearray, a byte memoryview: raw native C integers
        if len(raw) % width:
            raise ValueError(f"{name} as bytes must be a multiple of {width} bytes, got {len(raw)}")
        return raw
    if fmt not in _UNSIGNED and fmt not in _SIGNED:
        raise TypeError(f"{name} must hold integers, not buffer format {mv.format!r}")
    view = memoryview(raw).cast(fmt)  # type: ignore[call-overload]  # fmt was checked above
    if fmt in _SIGNED and len(view) and min(view) < 0:  # min() runs in C over the buffer
        raise ValueError(f"{name} must not hold negative values (min {min(view)})")
    if mv.itemsize == width:
        return raw
    wide = array.array("Q" if width == 8 else "I")
    if width < mv.itemsize and len(view) and max(view) >> (8 * width):
        raise ValueError(f"{name}: a value does not fit in {8 * width} bits")
    wide.extend(view)  # C-level widening/narrowing, no Python loop
    return wide.tobytes()


def to_uint_bytes(name: str, value: Any, width: int) -> bytes:
    """``value`` (sequence or buffer of ints) as packed native unsigned ints of ``width`` (4 or 8) bytes."""
    raw = _from_buffer(name, value, width)
    if raw is not None:
        return raw
    if isinstance(value, (str, dict)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence or buffer of ints, not {type(value).__name__}")
    if bool in set(map(type, value)):
        raise TypeError(f"{name} must hold ints, not bools")
    try:
        return array.array("Q" if width == 8 else "I", value).tobytes()
    except (TypeError, OverflowError):
        # only on failure: find the bad element to name it
        for i, item in enumerate(value):
            if not hasattr(item, "__index__"):
                raise TypeError(f"{name}[{i}] must be an int, not {type(item).__name__}") from None
            if not 0 <= item.__index__() < 1 << (8 * width):
                raise ValueError(f"{name}[{i}] must be in 0..{(1 << (8 * width)) - 1}, got {item}") from None
        raise


def to_u64_bytes(name: str, value: Any) -> bytes:
    return to_uint_bytes(name, value, 8)


def count(name: str, raw: bytes, width: int) -> int:
    n = len(raw) // width
    if not 1 <= n <= MAX_CNT:
        raise ValueError(f"{name} must hold 1..{MAX_CNT} entries (the kernel's cap), got {n}")
    return n


def strings(name: str, value: Any, *, max_len: int) -> tuple[bytes, ...]:
    """A sequence of non-empty ``str`` as encoded names without NUL, each shorter than ``max_len`` bytes."""
    if isinstance(value, (str, bytes, bytearray, dict)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of str, not {type(value).__name__}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}] must be a str, not {type(item).__name__}")
        try:
            b = item.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise ValueError(f"{name}[{i}] cannot be encoded: {item!r}") from None
        if not b or b"\0" in b or len(b) >= max_len:
            raise ValueError(f"{name}[{i}] must be a non-empty name without NUL, under {max_len} bytes: {item!r}")
        out.append(b)
    if not 1 <= len(out) <= MAX_CNT:
        raise ValueError(f"{name} must hold 1..{MAX_CNT} entries (the kernel's cap), got {len(out)}")
    return tuple(out)


def u64_view(raw: bytes) -> memoryview:
    """A read-only view of packed u64s."""
    return memoryview(raw).cast("Q")


def ulong_view(raw: bytes) -> memoryview:
    """A read-only view of packed C ``unsigned long``s."""
    return memoryview(raw).cast("L") if array.array("L").itemsize == 8 else memoryview(raw).cast("I")


def check_same_count(cnt: int, **arrays: int | None) -> None:
    for name, n in arrays.items():
        if n is not None and n != cnt:
            raise ValueError(f"{name} must hold as many entries as there are probes ({cnt}), got {n}")
