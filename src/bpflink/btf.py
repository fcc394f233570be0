"""BTF types as Python codecs: decode a map key/value or a global variable from bytes, encode one back.

The types are read once from a ``struct btf`` (libbpf's: an object's, or a map's from the kernel) into plain
Python objects, so a decoded ``Map`` keeps working after the ``Object`` and its BTF are gone.

- integers: ``int``, range-checked for their C width and signedness (``bool`` for ``_Bool``)
- ``char`` arrays: ``bytes`` with the trailing NULs stripped; encoded from ``str``/``bytes`` (NUL-padded)
- other arrays: ``list``; encoded from a sequence of the right length
- structs and unions: ``dict`` by member name; encoded from a mapping (missing members are zero) or bytes
- enums: ``int``; encoded from an ``int`` or an enumerator name
- anything else (pointers are u64, floats are floats): raw ``bytes`` of the type's size

>>> u32 = Int("unsigned int", 4, signed=False)
>>> u32.decode(b"\\x05\\x00\\x00\\x00")
5
>>> u32.encode(2**32, "counter")
Traceback (most recent call last):
TypeError: counter (unsigned int) takes an int in 0..4294967295, got 4294967296
>>> comm = Array("char[16]", Int("char", 1, signed=True, char=True), 16)
>>> comm.decode(comm.encode("bash", "comm"))
b'bash'
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from . import lowlevel as ll
from ._native import ffi


class CType:
    """One C type: ``cname`` (as C spells it, for messages), ``size`` in bytes."""

    def __init__(self, cname: str, size: int) -> None:
        self.cname = cname
        self.size = size

    def decode(self, raw: bytes | bytearray | memoryview) -> Any:
        return bytes(raw[:self.size])

    def encode(self, value: Any, what: str) -> bytes:
        """``value`` as this type's bytes; ``TypeError`` naming ``what`` and the C type otherwise."""
        if isinstance(value, (bytes, bytearray, memoryview)) and len(value) == self.size:
            return bytes(value)
        raise TypeError(f"{what} ({self.cname}) takes {self.size} bytes, got {_describe(value)}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.cname} ({self.size} bytes)>"


def _describe(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"{len(value)} bytes"
    return f"{type(value).__name__} {value!r}"[:80]


class Int(CType):
    def __init__(self, cname: str, size: int, *, signed: bool, char: bool = False, boolean: bool = False) -> None:
        super().__init__(cname, size)
        self.signed, self.char, self.boolean = signed, char, boolean
        bits = size * 8
        self.lo, self.hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)

    def decode(self, raw: bytes | bytearray | memoryview) -> Any:
        value = int.from_bytes(raw[:self.size], "little", signed=self.signed)
        return bool(value) if self.boolean else value

    def encode(self, value: Any, what: str) -> bytes:
        if self.char and isinstance(value, (bytes, str)) and len(value) == 1:
            value = ord(value)
        if isinstance(value, (bytes, bytearray, memoryview)) and not self.char:
            return super().encode(value, what)
        if not isinstance(value, int) or (isinstance(value, bool) and not self.boolean):
            raise TypeError(f"{what} ({self.cname}) takes an int, not {_describe(value)}")
        if not self.lo <= value <= self.hi:
            raise TypeError(f"{what} ({self.cname}) takes an int in {self.lo}..{self.hi}, got {value}")
        return int(value).to_bytes(self.size, "little", signed=self.signed)


class Float(CType):
    def decode(self, raw: bytes | bytearray | memoryview) -> Any:
        if self.size in (4, 8):
            return struct.unpack("<f" if self.size == 4 else "<d", bytes(raw[:self.size]))[0]
        return super().decode(raw)

    def encode(self, value: Any, what: str) -> bytes:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and self.size in (4, 8):
            return struct.pack("<f" if self.size == 4 else "<d", value)
        return super().encode(value, what)


class Enum(CType):
    def __init__(self, cname: str, size: int, *, signed: bool, values: dict[str, int]) -> None:
        super().__init__(cname, size)
        self.values = values
        self._int = Int(cname, size, signed=signed)

    def decode(self, raw: bytes | bytearray | memoryview) -> Any:
        return self._int.decode(raw)

    def encode(self, value: Any, what: str) -> bytes:
        if isinstance(value, str):
            if value not in self.values:
                raise TypeError(f"{what} ({self.cname}) has no enumerator {value!r}; it has {sorted(self.values)}")
            value = self.values[value]
        return self._int.encode(value, what)


class Array(CType):
    def __init__(self, cname: str, elem: CType, count: int) -> None:
        super().__init__(cname, elem.size * count)
        self.elem, self.count = elem, count

    @property
    def is_string(self) -> bool:
        return isinstance(self.elem, Int) and self.elem.char

    def decode(self, raw: bytes | bytearray | memoryview) -> Any:
        if self.is_string:
            data = bytes(raw[:self.size])
            end = data.find(b"\0")
            return data if end < 0 else data[:end]
        step = self.elem.size
        return [self.elem.decode(raw[i * step:(i + 1) * step]) for i in range(self.count)]

    def encode(self, value: Any, what: str) -> bytes:
        if self.is_string:
            if isinstance(value, str):
                value = value.encode()
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise TypeError(f"{what} ({self.cname}) takes str or bytes, not {_describe(value)}")
            if len(value) > self.size:
                raise TypeError(f"{what} ({self.cname}) holds at most {self.size} bytes, got {len(value)}")
            return bytes(value).ljust(self.size, b"\0")
        if isinstance(value, (bytes, bytearray, memoryview)):
            return super().encode(value, what)
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise TypeError(f"{what} ({self.cname}) takes a sequence of {self.count}, not {_describe(value)}")
        if len(value) != self.count:
            raise TypeError(f"{what} ({self.cname}) takes {self.count} elements, got {len(value)}")
        return b"".join(self.elem.encode(v, f"{what}[{i}]") for i, v in enumerate(value))


class Struct(CType):
    """A struct or union: ``members`` are (name, byte offset, type); bitfields are (name, bit offset, bits)."""

    def __init__(self, cname: str, size: int, members: list[tuple[str, int, CType]],
                 bitfields: list[tuple[str, int, int]] | None = None) -> None:
        super().__init__(cname, size)
        self.members = members
        self.bitfields = bitfields or []

    @property
    def names(self) -> list[str]:
        return [m[0] for m in self.members] + [b[0] for b in self.bitfields]

    def decode(self, raw: bytes | bytearray | memoryview) -> Any:
        out: dict[str, Any] = {name: t.decode(raw[off:off + t.size]) for name, off, t in self.members}
        if self.bitfields:
            whole = int.from_bytes(raw[:self.size], "little")
            for name, bit, bits in self.bitfields:
                out[name] = (whole >> bit) & ((1 << bits) - 1)
        return out

    def encode(self, value: Any, what: str) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return super().encode(value, what)
        if not isinstance(value, Mapping):
            raise TypeError(f"{what} ({self.cname}) takes a mapping of its members or bytes, not {_describe(value)}")
        unknown = set(value) - set(self.names)
        if unknown:
            raise TypeError(f"{what} ({self.cname}) has no member {sorted(map(str, unknown))}; "
                            f"it has {self.names}")
        buf = bytearray(self.size)
        for name, off, t in self.members:
            if name in value:
                buf[off:off + t.size] = t.encode(value[name], f"{what}.{name}")
        if self.bitfields:
            whole = int.from_bytes(buf, "little")
            for name, bit, bits in self.bitfields:
                if name in value:
                    v = value[name]
                    if not isinstance(v, int) or not 0 <= v < 1 << bits:
                        raise TypeError(f"{what}.{name} ({bits}-bit field) takes an int in 0..{(1 << bits) - 1}")
                    whole = (whole & ~(((1 << bits) - 1) << bit)) | (v << bit)
            buf = bytearray(whole.to_bytes(self.size, "little"))
        return bytes(buf)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple((k, _freeze(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


class Record(dict):  # type: ignore[type-arg]
    """A decoded struct used as a map key: a read-only ``dict`` that is hashable, so ``dict(m.items())`` works.

    >>> k = Record(pid=1, comm=b"bash")
    >>> {k: 3}[Record(pid=1, comm=b"bash")], k == {"pid": 1, "comm": b"bash"}
    (3, True)
    """

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(_freeze(dict(self)))

    def _readonly(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a decoded map key is read-only: copy it with dict(key) to change it")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = __ior__ = _readonly

    def __reduce__(self) -> Any:
        return (Record, (dict(self),))


def as_key(value: Any) -> Any:
    """``value`` with a top-level ``dict`` made a hashable ``Record`` (keys of maps keyed by a struct)."""
    return Record(value) if type(value) is dict else value


def _u32s(btf: Any, type_id: int) -> Any:
    ptr = ll.btf__type_by_id(btf, type_id) if 0 <= type_id < 1 << 32 else ffi.NULL
    if ptr == ffi.NULL:  # an id the BTF lacks: never dereference it
        raise ValueError(f"BTF has no type id {type_id}")
    return ffi.cast("__u32 *", ptr)


class Reader:
    """Turns type ids of one ``struct btf *`` into ``CType`` codecs (cached per id)."""

    def __init__(self, btf: Any) -> None:
        self.btf = btf
        self._cache: dict[int, CType] = {}

    def name(self, off: int) -> str:
        ptr = ll.btf__name_by_offset(self.btf, off)
        return "" if ptr == ffi.NULL else ffi.string(ptr).decode(errors="replace")

    def kind(self, type_id: int) -> tuple[int, int, bool]:
        """(kind, vlen, kind_flag) of ``type_id``."""
        info = int(_u32s(self.btf, type_id)[1])
        return (info >> 24) & 0x1F, info & 0xFFFF, bool(info >> 31)

    def strip(self, type_id: int) -> int:
        """Follow typedef/const/volatile/restrict/type tags to the underlying type."""
        for _ in range(64):
            kind = self.kind(type_id)[0]
            if kind not in (ll.BTF_KIND_TYPEDEF, ll.BTF_KIND_CONST, ll.BTF_KIND_VOLATILE,
                            ll.BTF_KIND_RESTRICT, ll.BTF_KIND_TYPE_TAG):
                return type_id
            type_id = int(_u32s(self.btf, type_id)[2])
        raise ValueError("BTF type chain too long")

    def cname(self, type_id: int, depth: int = 0) -> str:
        """The type as C would spell it (``const volatile int``, ``char[16]``, ``struct key``)."""
        if type_id == 0:
            return "void"
        kind, _, _ = self.kind(type_id)
        t = _u32s(self.btf, type_id)
        name = self.name(int(t[0]))
        prefix = {ll.BTF_KIND_STRUCT: "struct ", ll.BTF_KIND_UNION: "union ", ll.BTF_KIND_ENUM: "enum ",
                  ll.BTF_KIND_ENUM64: "enum "}.get(kind, "")
        if kind in (ll.BTF_KIND_CONST, ll.BTF_KIND_VOLATILE, ll.BTF_KIND_RESTRICT) and depth < 32:
            word = {ll.BTF_KIND_CONST: "const", ll.BTF_KIND_VOLATILE: "volatile"}.get(kind, "restrict")
            return f"{word} {self.cname(int(t[2]), depth + 1)}"
        if kind == ll.BTF_KIND_PTR and depth < 32:
            return f"{self.cname(int(t[2]), depth + 1)} *"
        if kind == ll.BTF_KIND_ARRAY and depth < 32:
            return f"{self.cname(int(t[3]), depth + 1)}[{int(t[5])}]"
        return prefix + (name or "(anon)")

    def ctype(self, type_id: int) -> CType:
        cached = self._cache.get(type_id)
        if cached is None:
            cached = self._cache[type_id] = self._build(type_id, 0)
        return cached

    def _build(self, type_id: int, depth: int) -> CType:
        if depth > 32:
            raise ValueError("BTF types nest too deep")
        cname = self.cname(type_id)
        tid = self.strip(type_id)
        kind, vlen, kflag = self.kind(tid)
        t = _u32s(self.btf, tid)
        size = int(ll.btf__resolve_size(self.btf, tid)) if kind != ll.BTF_KIND_FWD else 0
        if kind == ll.BTF_KIND_INT:
            enc = (int(t[3]) >> 24) & 0xF
            return Int(cname, size, signed=bool(enc & ll.BTF_INT_SIGNED), char=bool(enc & ll.BTF_INT_CHAR),
                       boolean=bool(enc & ll.BTF_INT_BOOL))
        if kind == ll.BTF_KIND_PTR:
            return Int(cname, size, signed=False)
        if kind == ll.BTF_KIND_FLOAT:
            return Float(cname, size)
        if kind in (ll.BTF_KIND_ENUM, ll.BTF_KIND_ENUM64):
            values: dict[str, int] = {}
            for i in range(vlen):
                if kind == ll.BTF_KIND_ENUM:
                    v = int(t[3 + 2 * i + 1])
                    values[self.name(int(t[3 + 2 * i]))] = v - (1 << 32) if kflag and v >= 1 << 31 else v
                else:
                    v = int(t[3 + 3 * i + 1]) | (int(t[3 + 3 * i + 2]) << 32)
                    values[self.name(int(t[3 + 3 * i]))] = v - (1 << 64) if kflag and v >= 1 << 63 else v
            return Enum(cname, size, signed=kflag, values=values)
        if kind == ll.BTF_KIND_ARRAY:
            elem_id, count = int(t[3]), int(t[5])
            elem = self._build(elem_id, depth + 1)
            if isinstance(elem, Int) and elem.size == 1 and self.name(int(_u32s(self.btf, self.strip(elem_id))[0])) \
                    == "char":
                elem.char = True
            return Array(cname, elem, count)
        if kind in (ll.BTF_KIND_STRUCT, ll.BTF_KIND_UNION):
            members: list[tuple[str, int, CType]] = []
            bitfields: list[tuple[str, int, int]] = []
            for i in range(vlen):
                name_off, mtype, moff = int(t[3 + 3 * i]), int(t[3 + 3 * i + 1]), int(t[3 + 3 * i + 2])
                name = self.name(name_off) or f"_anon{i}"
                bit_off, bits = (moff & 0xFFFFFF, moff >> 24) if kflag else (moff, 0)
                mt = self._build(mtype, depth + 1)
                if bits or bit_off % 8:  # a bitfield (kind_flag) or an old-style one by offset
                    bitfields.append((name, bit_off, bits or mt.size * 8))
                else:
                    members.append((name, bit_off // 8, mt))
            return Struct(cname, size, members, bitfields)
        return CType(cname, max(size, 0))

    def datasecs(self) -> list[tuple[str, int, list[tuple[str, int, int]]]]:
        """Every DATASEC: (section name, its type id, [(variable name, offset, type id)])."""
        out: list[tuple[str, int, list[tuple[str, int, int]]]] = []
        for tid in range(1, int(ll.btf__type_cnt(self.btf))):
            kind, vlen, _ = self.kind(tid)
            if kind != ll.BTF_KIND_DATASEC:
                continue
            t = _u32s(self.btf, tid)
            variables = []
            for i in range(vlen):
                var_id, off = int(t[3 + 3 * i]), int(t[3 + 3 * i + 1])
                if self.kind(var_id)[0] != ll.BTF_KIND_VAR:
                    continue
                v = _u32s(self.btf, var_id)
                variables.append((self.name(int(v[0])), off, int(v[2])))
            out.append((self.name(int(t[0])), tid, variables))
        return out


def from_kernel(btf_id: int, *type_ids: int) -> list[CType | None]:
    """Codecs for ``type_ids`` of the kernel's BTF object ``btf_id`` (None for id 0 or on failure)."""
    if not btf_id or not any(type_ids):
        return [None for _ in type_ids]
    btf = ll.btf__load_from_kernel_by_id(btf_id)
    if btf == ffi.NULL or ll.libbpf_get_error(btf):
        return [None for _ in type_ids]
    try:
        reader = Reader(btf)
        out: list[CType | None] = []
        for t in type_ids:
            try:
                out.append(reader.ctype(t) if t else None)
            except ValueError:
                out.append(None)
        return out
    finally:
        ll.btf__free(btf)


__all__ = ["Array", "CType", "Enum", "Float", "Int", "Reader", "Record", "Struct", "as_key", "from_kernel"]
