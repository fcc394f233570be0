"""BTF types as Python codecs: decode a map key/value or a global variable from bytes, encode one back.

The types are read once from a ``struct btf`` (libbpf's: an object's, or a map's from the kernel) into plain
Python objects, so a decoded ``Map`` keeps working after the ``Object`` and its BTF are gone.

- integers: ``int``, range-checked for their C width and signedness (``bool`` for ``_Bool``)
- ``char`` arrays: ``bytes`` with the trailing NULs stripped; encoded from ``str``/``bytes`` (NUL-padded)
- other arrays: ``list``; encoded from a sequence of the right length
- structs and unions: ``dict`` by member name; encoded from a mapping (missing members are zero), an instance
  of the struct's generated class (``Struct.pyclass``) or bytes. ``as_classes(ctype)`` is the same codec decoding
  every struct, nested ones too, to instances of its generated class instead of dicts
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
>>> key = Struct("struct comm_key", 20, [("pid", 0, u32), ("comm", 4, comm)])
>>> key.decode(key.encode({"pid": 7, "comm": "bash"}, "key"))
{'pid': 7, 'comm': b'bash'}
>>> as_classes(key).decode(key.encode(key.pyclass(pid=7, comm=b"bash"), "key"))
comm_key(pid=7, comm=b'bash')
"""

from __future__ import annotations

import keyword
import re
import struct
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

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
        self._pyclass: type[StructValue] | None = None
        self._classed: StructAsClass | None = None

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

    def __reduce__(self) -> Any:  # the generated class stays behind: it is made again on use
        return (Struct, (self.cname, self.size, self.members, self.bitfields))

    @property
    def pyclass(self) -> Any:  # a StructValue subclass
        """This struct's generated class (one per ``Struct``, so one per BTF type id of a ``Reader``).

        Named after the C struct, one slot per member in C order (bitfields last), frozen and hashable;
        nested structs decode to their own generated classes, arrays to lists, ``char`` arrays to ``bytes``.
        """
        cls = self._pyclass
        if cls is None:
            with _CLASS_LOCK:
                cls = self._pyclass
                if cls is None:
                    cls = self._pyclass = _make_class(self)
        return cls

    def encode(self, value: Any, what: str) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return super().encode(value, what)
        if isinstance(value, StructValue):
            if value._ctype.cname != self.cname or value._fields != tuple(self.names):
                raise TypeError(f"{what} ({self.cname}) takes a {self.cname}, not a {value._ctype.cname} "
                                f"({type(value).__name__})")
            value = value._members()
        if not isinstance(value, Mapping):
            raise TypeError(f"{what} ({self.cname}) takes a mapping of its members, an instance of its class or "
                            f"bytes, not {_describe(value)}")
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


_CLASS_LOCK = threading.Lock()


class StructValue:
    """Base of the classes generated for BTF structs (``Struct.pyclass``): frozen, with ``__slots__``.

    Built from members by position (C order) or by name; members not given are the zero value. Instances
    compare equal when of the same class with equal members, hash (so they key ``dict``s, as decoded struct
    keys must), and ``_asdict()`` gives the dict the default decoding would (nested structs as dicts too).

    >>> u8 = Int("__u8", 1, signed=False)
    >>> Point = Struct("struct point", 2, [("x", 0, u8), ("y", 1, u8)]).pyclass
    >>> p = Point(1, y=2)
    >>> p, p.x, p._asdict(), p == Point(x=1, y=2), Point.from_bytes(b"\\x03\\x04")
    (point(x=1, y=2), 1, {'x': 1, 'y': 2}, True, point(x=3, y=4))
    >>> bytes(p), p._replace(y=9)
    (b'\\x01\\x02', point(x=1, y=9))
    """

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _ctype: ClassVar[Struct]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__}() takes at most {len(fields)} members, got {len(args)}")
        values = dict(zip(fields, args))
        for name, value in kwargs.items():
            if name not in fields:
                raise TypeError(f"{type(self).__name__}() ({self._ctype.cname}) has no member {name!r}; "
                                f"it has {list(fields)}")
            if name in values:
                raise TypeError(f"{type(self).__name__}() got member {name!r} twice")
            values[name] = value
        zero = None
        for name in fields:
            if name not in values:
                if zero is None:
                    zero = as_classes(self._ctype).decode(bytes(self._ctype.size))
                values[name] = getattr(zero, name)
            object.__setattr__(self, name, values[name])

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Any:
        """Decode the first ``size`` bytes of ``data`` (a map value, a ring buffer record) into an instance."""
        size = cls._ctype.size
        if len(data) < size:
            raise ValueError(f"{cls._ctype.cname} is {size} bytes, got {len(data)}")
        return as_classes(cls._ctype).decode(data)

    def __bytes__(self) -> bytes:
        return self._ctype.encode(self, type(self).__name__)

    def _members(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._fields}

    def _asdict(self) -> dict[str, Any]:
        """The members as a dict, nested structs (in lists too) as dicts: what the default decoding gives."""
        return {name: _plain(getattr(self, name)) for name in self._fields}

    def _replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` applied (instances are frozen)."""
        return type(self)(**{**self._members(), **changes})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: use _replace({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        # the same C struct read through another Reader (or unpickled) has its own class: compare what C sees
        if type(other) is not type(self) and not (isinstance(other, StructValue) and other._fields == self._fields
                                                  and other._ctype.cname == self._ctype.cname):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._fields)

    def __hash__(self) -> int:
        return hash((type(self).__name__, _freeze([getattr(self, n) for n in self._fields])))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__name__}({inner})"

    def __reduce__(self) -> Any:
        return (_rebuild, (self._ctype, self._members()))


def _rebuild(ctype: Struct, members: dict[str, Any]) -> StructValue:
    cls: type[StructValue] = ctype.pyclass
    return cls(**members)


def _plain(value: Any) -> Any:
    if isinstance(value, StructValue):
        return value._asdict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _class_name(cname: str) -> str:
    name = cname.removeprefix("struct ").removeprefix("union ")
    name = re.sub(r"\W", "_", name) or "anon"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = "_" + name
    return name


def _make_class(ctype: Struct) -> type[StructValue]:
    fields = tuple(ctype.names)
    clash = [n for n in fields if hasattr(StructValue, n) or not n.isidentifier()]
    if clash or len(set(fields)) != len(fields):
        raise ValueError(f"{ctype.cname}: members {clash or fields} cannot be attributes of a generated class: "
                         "decode it as dicts")
    name = _class_name(ctype.cname)
    ns: dict[str, Any] = {"__slots__": fields, "_fields": fields, "_ctype": ctype, "__module__": __name__,
                          "__qualname__": name, "__doc__": f"``{ctype.cname}`` ({ctype.size} bytes): "
                                                          f"members {', '.join(fields)}."}
    return type(name, (StructValue,), ns)


class StructAsClass(CType):
    """A ``Struct`` codec decoding to its generated class (nested structs too); encodes what ``Struct`` does."""

    def __init__(self, plain: Struct) -> None:
        super().__init__(plain.cname, plain.size)
        self.plain = plain
        self.pyclass = plain.pyclass
        self.members = [(name, off, as_classes(t)) for name, off, t in plain.members]
        self.bitfields = plain.bitfields
        self.names = plain.names

    def decode(self, raw: bytes | bytearray | memoryview) -> Any:
        obj = object.__new__(self.pyclass)
        setter = object.__setattr__
        for name, off, t in self.members:
            setter(obj, name, t.decode(raw[off:off + t.size]))
        if self.bitfields:
            whole = int.from_bytes(raw[:self.size], "little")
            for name, bit, bits in self.bitfields:
                setter(obj, name, (whole >> bit) & ((1 << bits) - 1))
        return obj

    def encode(self, value: Any, what: str) -> bytes:
        return self.plain.encode(value, what)


def as_classes(ctype: CType) -> CType:
    """``ctype`` decoding structs (at any depth, in arrays too) to their generated classes instead of dicts.

    Types without a struct come back as they are; ``plain_type`` undoes it.
    """
    if isinstance(ctype, StructAsClass):
        return ctype
    if isinstance(ctype, Struct):
        classed = ctype._classed
        if classed is None:
            with _CLASS_LOCK:
                classed = ctype._classed
            if classed is None:
                classed = StructAsClass(ctype)
                with _CLASS_LOCK:
                    ctype._classed = ctype._classed or classed
                    classed = ctype._classed
        return classed
    if isinstance(ctype, Array) and not isinstance(ctype, _ClassedArray):
        elem = as_classes(ctype.elem)
        return ctype if elem is ctype.elem else _ClassedArray(ctype, elem)
    return ctype


class _ClassedArray(Array):
    def __init__(self, plain: Array, elem: CType) -> None:
        super().__init__(plain.cname, elem, plain.count)
        self.plain = plain


def plain_type(ctype: CType) -> CType:
    """The codec ``as_classes`` started from: structs decode to dicts again."""
    return ctype.plain if isinstance(ctype, (StructAsClass, _ClassedArray)) else ctype


def struct_class(ctype: CType) -> Any:  # a StructValue subclass or None
    """The generated class of ``ctype`` if it is a struct or union (either decoding), else ``None``."""
    ctype = plain_type(ctype)
    return ctype.pyclass if isinstance(ctype, Struct) else None


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
        self._structs: dict[int, Struct] = {}  # by stripped id: one Struct (so one generated class) per BTF type

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
            known = self._structs.get(tid)
            if known is not None:
                return known
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
            made = self._structs[tid] = Struct(cname, size, members, bitfields)
            return made
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


__all__ = ["Array", "CType", "Enum", "Float", "Int", "Reader", "Record", "Struct", "StructAsClass", "StructValue",
           "as_classes", "as_key", "from_kernel", "plain_type", "struct_class"]
