"""``Map``: an fd owner for BPF maps, with just what users and tests need to count events.

>>> m = Map.create(MapType.ARRAY, key_size=4, value_size=8, max_entries=1)  # doctest: +SKIP
>>> m.lookup_int(0)  # doctest: +SKIP
0
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Union

from . import lowlevel as ll
from ._fd import FdOwner
from .enums import MapType
from .errors import check

KeyLike = Union[bytes, bytearray, memoryview, int]


class Map(FdOwner):
    """A BPF map fd with lookup/update/delete/iteration on raw bytes (ints are packed little-endian)."""

    def __init__(self, fd: int, *, key_size: int, value_size: int, name: str = "") -> None:
        super().__init__(fd)
        self.key_size = key_size
        self.value_size = value_size
        self.name = name

    @classmethod
    def create(cls, map_type: MapType | int, *, key_size: int, value_size: int, max_entries: int,
               name: str | None = None, flags: int = 0) -> Map:
        """``bpf_map_create``; raises ``OSError`` with a hint on failure."""
        opts = ll.new_map_create_opts()
        opts.map_flags = flags
        fd = check(ll.bpf_map_create(int(map_type), name.encode() if name else None, key_size, value_size,
                                     max_entries, opts), f"map_create({MapType(map_type).name})")
        return cls(fd, key_size=key_size, value_size=value_size, name=name or "")

    @classmethod
    def array(cls, max_entries: int = 1, *, value_size: int = 8, name: str | None = None) -> Map:
        """An array map of ``max_entries`` u64 counters (or ``value_size`` bytes each)."""
        return cls.create(MapType.ARRAY, key_size=4, value_size=value_size, max_entries=max_entries, name=name)

    def _key(self, key: KeyLike) -> bytes:
        raw = key.to_bytes(self.key_size, "little") if isinstance(key, int) else bytes(key)
        if len(raw) != self.key_size:
            raise ValueError(f"key must be {self.key_size} bytes, got {len(raw)}")
        return raw

    def lookup(self, key: KeyLike) -> bytes | None:
        """The value's bytes, or None when the key is absent."""
        value = ll.ffi.new("char[]", self.value_size)
        ret = ll.bpf_map_lookup_elem(self.fd, ll.ffi.from_buffer(self._key(key)), value)
        if ret == -2:  # ENOENT
            return None
        check(ret, f"map_lookup_elem({self.name or self.fd})")
        return bytes(ll.ffi.buffer(value, self.value_size))

    def lookup_int(self, key: KeyLike, default: int = 0) -> int:
        """The value read as a little-endian unsigned int (``default`` when absent)."""
        raw = self.lookup(key)
        return default if raw is None else int.from_bytes(raw, "little")

    def update(self, key: KeyLike, value: bytes | int, flags: int = 0) -> None:
        raw = value.to_bytes(self.value_size, "little") if isinstance(value, int) else bytes(value)
        if len(raw) != self.value_size:
            raise ValueError(f"value must be {self.value_size} bytes, got {len(raw)}")
        check(ll.bpf_map_update_elem(self.fd, ll.ffi.from_buffer(self._key(key)), ll.ffi.from_buffer(raw), flags),
              f"map_update_elem({self.name or self.fd})")

    def delete(self, key: KeyLike) -> None:
        check(ll.bpf_map_delete_elem(self.fd, ll.ffi.from_buffer(self._key(key))),
              f"map_delete_elem({self.name or self.fd})")

    def keys(self) -> Iterator[bytes]:
        key = ll.NULL
        nxt = ll.ffi.new("char[]", self.key_size)
        while ll.bpf_map_get_next_key(self.fd, key, nxt) == 0:
            raw = bytes(ll.ffi.buffer(nxt, self.key_size))
            yield raw
            key = ll.ffi.new("char[]", raw)

    def __repr__(self) -> str:
        return f"<Map {self.name!r} {'closed' if self.closed else f'fd={self._fd}'}>"
