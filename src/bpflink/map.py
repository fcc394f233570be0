"""``Map``: an fd owner for BPF maps of every kind, with values typed from BTF where it is known.

A ``Map`` asks the kernel what it is (type, key/value size, max_entries, flags, name, id, BTF ids): sizes a
caller passes are checked against that, never trusted. Keys and values are decoded by their BTF types (maps of
an ``Object``, or any map created with BTF), by a codec the caller gives (``struct`` format, ctypes type,
numpy dtype, ``bpflink.btf.CType``), or stay raw ``bytes``. Integer keys are packed little-endian.

Per-CPU maps (``PERCPU_ARRAY``, ``PERCPU_HASH``, ``LRU_PERCPU_HASH``, ``PERCPU_CGROUP_STORAGE``) hold one
value per *possible* CPU (``bpflink.possible_cpus()``): ``lookup`` returns a list of that length, ``update``
takes such a list or one value written to every CPU, and ``sum(key)`` adds a counter up.

>>> m = Map.create(MapType.HASH, key_size=4, value_size=8, max_entries=16)
>>> m.update(1, 42); m.lookup(1), 1 in m, dict(m.items())
(b'*\\x00\\x00\\x00\\x00\\x00\\x00\\x00', True, {b'\\x01\\x00\\x00\\x00': b'*\\x00\\x00\\x00\\x00\\x00\\x00\\x00'})
>>> # not run as a doctest: the values depend on the number of possible CPUs (2 shown)
>>> m = Map.create(MapType.PERCPU_ARRAY, key_size=4, value_size=8, max_entries=1, value_type="<Q")  # doctest: +SKIP
>>> m.update(0, 1); m.lookup(0), m.sum(0)  # doctest: +SKIP
([1, 1], 2)
"""

from __future__ import annotations

import errno
import os
import struct
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Union

from . import lowlevel as ll
from ._fd import FdOwner, as_fd
from .btf import CType, as_classes, as_key, from_kernel, plain_type, struct_class
from .cpus import possible_cpus
from .enums import MapType, MapUpdateFlags
from .errors import check

KeyLike = Union[bytes, bytearray, memoryview, int, Any]
BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK = (MapUpdateFlags.ANY, MapUpdateFlags.NOEXIST, MapUpdateFlags.EXIST,
                                               MapUpdateFlags.LOCK)

PERCPU_TYPES = frozenset(t for t in (MapType.PERCPU_ARRAY, MapType.PERCPU_HASH, MapType.LRU_PERCPU_HASH,
                                     MapType.PERCPU_CGROUP_STORAGE_DEPRECATED) if t.available)
# types whose keys are 0..max_entries-1: len() is max_entries, no walk needed
ARRAY_TYPES = frozenset(t for t in (
    MapType.ARRAY, MapType.PERCPU_ARRAY, MapType.PROG_ARRAY, MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY,
    MapType.ARRAY_OF_MAPS, MapType.DEVMAP, MapType.CPUMAP, MapType.XSKMAP, MapType.SOCKMAP,
    MapType.REUSEPORT_SOCKARRAY) if t.available)
# types without keys: a value store (queue, stack, bloom filter) or a channel (ring buffers)
KEYLESS_TYPES = frozenset(t for t in (MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER, MapType.RINGBUF,
                                      MapType.USER_RINGBUF, MapType.ARENA) if t.available)
_RINGS = frozenset(t for t in (MapType.RINGBUF, MapType.USER_RINGBUF) if t.available)
# local storage maps: keys are fds of the owner (socket, task pidfd, cgroup, inode), and there is no walk
_STORAGE_TYPES = frozenset(t for t in (MapType.SK_STORAGE, MapType.INODE_STORAGE, MapType.TASK_STORAGE,
                                       MapType.CGRP_STORAGE) if t.available)

# (errno) -> hint for map element operations; chosen per operation below where the meaning differs
_ELEM_HINTS: dict[int, str] = {
    errno.E2BIG: "the map is full (max_entries reached): delete entries or create it bigger",
    errno.ENOENT: "no such key in the map",
    errno.EEXIST: "the key exists and BPF_NOEXIST was given",
    errno.EINVAL: "a flag this map type lacks (BPF_F_LOCK needs a bpf_spin_lock in the value; EXIST/NOEXIST "
                  "mean nothing for arrays), an index past max_entries, or a key/value of the wrong kind",
    errno.EPERM: "the map is frozen or read-only for user space (BPF_F_RDONLY, .rodata after load), "
                 "or the caller lacks CAP_BPF",
    errno.EOPNOTSUPP: "this map type does not support this operation from user space",
    errno.ENOTSUP: "this map type does not support this operation from user space",
    524: "this map type does not support this operation from user space",
    errno.EBADF: "for a map of maps/programs/sockets the value must be an open fd of the right kind",
}


_TYPE_HINTS: dict[tuple[int, str], str] = {
    (errno.EBADF, "STORAGE"): "the key of a local storage map is an fd of its owner (socket, pidfd, cgroup "
                              "directory, file)",
    (errno.ENOSPC, "SOCK"): "a socket map's value reads back as a u64 socket cookie: create it with value_size 8",
    (errno.ENOENT, "CGROUP_STORAGE"): "cgroup storage entries exist only while a program using the map is "
                                      "attached to that cgroup",
}


def _hint(err_ret: int, extra: str | None = None, mtype: MapType | None = None) -> str | None:
    if extra:
        return extra
    if mtype is not None:
        group = ("STORAGE" if mtype in _STORAGE_TYPES else "SOCK" if mtype in (MapType.SOCKMAP, MapType.SOCKHASH)
                 else "CGROUP_STORAGE" if "CGROUP_STORAGE" in mtype.name else "")
        found = _TYPE_HINTS.get((-err_ret, group))
        if found:
            return found
    return _ELEM_HINTS.get(-err_ret)


def _round8(n: int) -> int:
    return (n + 7) & ~7


@dataclass(frozen=True)
class MapInfo:
    """What the kernel says about a map (``struct bpf_map_info``)."""

    type: MapType
    id: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    name: str
    ifindex: int
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int
    btf_vmlinux_value_type_id: int


def map_info(fd: int) -> MapInfo:
    """``bpf_map_get_info_by_fd`` decoded; ``OSError`` when ``fd`` is not a map the kernel knows."""
    info = ll.ffi.new("struct bpf_map_info *")
    size = ll.ffi.new("__u32 *", ll.ffi.sizeof("struct bpf_map_info"))
    check(ll.bpf_map_get_info_by_fd(fd, info, size), f"map_get_info_by_fd({fd})",
          hint="the fd is not a BPF map")
    return MapInfo(type=MapType(int(info.type)), id=int(info.id), key_size=int(info.key_size),
                   value_size=int(info.value_size), max_entries=int(info.max_entries), flags=int(info.map_flags),
                   name=ll.ffi.string(info.name).decode(errors="replace"), ifindex=int(info.ifindex),
                   btf_id=int(info.btf_id), btf_key_type_id=int(info.btf_key_type_id),
                   btf_value_type_id=int(info.btf_value_type_id),
                   btf_vmlinux_value_type_id=int(info.btf_vmlinux_value_type_id))


def _fd_kind(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def _kernel_says_map(fd: int, info: MapInfo) -> bool:
    """Without /proc to name the fd's kind: BPF_MAP_LOOKUP_ELEM with NULL key and value answers EINVAL only for
    an fd that is not a map (a map fails later: EFAULT copying the key, ENOENT, ENOTSUPP...; nothing changes).
    An arena answers EINVAL itself, so for a map reporting that type the test cannot tell."""
    ret = int(ll.bpf_map_lookup_elem(fd, ll.NULL, ll.NULL))
    return ret != -errno.EINVAL or info.type == MapType.ARENA


def _check_int(value: object, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{what} must be in {lo}..{hi}, got {value}")
    return int(value)


def _c_path(path: str | bytes | os.PathLike[str] | os.PathLike[bytes], what: str) -> bytes:
    raw = os.fsencode(path)
    if b"\0" in raw:
        raise ValueError(f"{what} must not contain NUL bytes: {raw!r}")
    if not raw:
        raise ValueError(f"{what} must not be empty")
    return raw


class Codec:
    """Turns a key or value between bytes and Python (``CType``, struct format, ctypes type or numpy dtype)."""

    def __init__(self, spec: Any, size: int, what: str) -> None:
        self.spec = spec
        self.size = size
        self.what = what
        self.fmt: str | None = None
        self.decode: Callable[[bytes], Any]
        self.encode: Callable[[Any], bytes]
        if isinstance(spec, CType):
            if spec.size != size:
                raise ValueError(f"{what} type {spec.cname} is {spec.size} bytes, the map's {what} {size}")
            self.decode = spec.decode
            self.encode = lambda v: spec.encode(v, what)
            self.fmt = {(1, False): "B", (2, False): "H", (4, False): "I", (8, False): "Q", (1, True): "b",
                        (2, True): "h", (4, True): "i", (8, True): "q"}.get((size, bool(getattr(spec, "signed", 0)))) \
                if type(spec).__name__ == "Int" and not getattr(spec, "boolean", False) else None
        elif isinstance(spec, str):
            st = struct.Struct(spec)
            if st.size != size:
                raise ValueError(f"{what} format {spec!r} is {st.size} bytes, the map's {what} {size}")
            single = len(st.unpack(bytes(size))) == 1
            code = spec.lstrip("<=")
            if single and code in ("B", "H", "I", "Q", "b", "h", "i", "q") and sys.byteorder == "little":
                self.fmt = code
            self.decode = (lambda b: st.unpack(b)[0]) if single else st.unpack
            self.encode = (lambda v: st.pack(v)) if single else (lambda v: st.pack(*v))
        elif hasattr(spec, "from_buffer_copy"):  # a ctypes type
            import ctypes

            if ctypes.sizeof(spec) != size:
                raise ValueError(f"{what} ctypes type {spec.__name__} is {ctypes.sizeof(spec)} bytes, "
                                 f"the map's {what} {size}")
            simple = hasattr(spec, "_type_") and isinstance(spec._type_, str)
            self.decode = (lambda b: spec.from_buffer_copy(b).value) if simple else spec.from_buffer_copy
            self.encode = (lambda v: bytes(v if isinstance(v, spec) else spec(v)))
        elif hasattr(spec, "itemsize") and hasattr(spec, "fields"):  # a numpy dtype
            if spec.itemsize != size:
                raise ValueError(f"{what} dtype {spec} is {spec.itemsize} bytes, the map's {what} {size}")
            import numpy as np

            def dec(b: bytes) -> Any:
                v = np.frombuffer(b, dtype=spec)[0]
                return v.item() if spec.fields is None else v

            self.decode = dec
            self.encode = lambda v: np.asarray(v, dtype=spec).tobytes()
        else:
            raise TypeError(f"{what}_type must be a struct format, a ctypes type, a numpy dtype or a "
                            f"bpflink.btf.CType, not {type(spec).__name__}")

    @property
    def cname(self) -> str:
        return str(getattr(self.spec, "cname", self.spec))


class Map(FdOwner):
    """A BPF map. ``Map(fd)`` takes ownership of ``fd`` (a map fd) once it is checked to be one.

    ``key_size``/``value_size``, when given, must match the kernel's (``ValueError`` otherwise; the fd then stays
    the caller's). ``key_type``/``value_type``: how to decode (see the module doc); maps of an ``Object`` get
    theirs from its BTF.
    """

    def __init__(self, fd: int, *, key_size: int | None = None, value_size: int | None = None,
                 name: str | None = None, key_type: Any = None, value_type: Any = None) -> None:
        fd = _check_int(fd, "fd", 0, 0x7FFFFFFF)
        kind = _fd_kind(fd)
        if kind is not None and kind.startswith("anon_inode:") and kind != "anon_inode:bpf-map":
            raise TypeError(f"fd {fd} is not a BPF map ({kind.removeprefix('anon_inode:')})")
        info = map_info(fd)
        if kind is None and not _kernel_says_map(fd, info):
            raise TypeError(f"fd {fd} is not a BPF map (the kernel refuses a map lookup on it)")
        for what, given, real in (("key_size", key_size, info.key_size), ("value_size", value_size,
                                                                           info.value_size)):
            if given is not None and given not in (real, 0):  # 0: the "unknown" older callers passed
                raise ValueError(f"{what}={given} but the kernel's map {info.name or info.id} has {what} {real}")
        self._info = info
        self.map_type = info.type
        self.key_size = info.key_size
        self.value_size = info.value_size
        self.max_entries = info.max_entries
        self.flags = info.flags
        self.name = name or info.name
        self.percpu = info.type in PERCPU_TYPES
        self._ncpu = possible_cpus() if self.percpu else 1
        self._stride = _round8(info.value_size) if self.percpu else info.value_size
        self._vbytes = max(self._stride * self._ncpu, 1)
        self._keyless = info.type in KEYLESS_TYPES
        self._key_limit = 1 << (8 * info.key_size) if info.key_size else 0
        self._pinned: bytes | None = None
        self._key_codec = Codec(key_type, info.key_size, "key") if key_type is not None else None
        self._value_codec = Codec(value_type, info.value_size, "value") if value_type is not None else None
        self._key_fast = self._key_codec is None or self._key_codec.fmt in ("B", "H", "I", "Q")
        self._fd = fd

    # --- construction ----------------------------------------------------------------------------------------
    @classmethod
    def create(cls, map_type: MapType | int, *, key_size: int, value_size: int, max_entries: int,
               name: str | bytes | None = None, flags: int = 0, key_type: Any = None,
               value_type: Any = None, btf_fd: int | None = None, btf_key_type_id: int = 0,
               btf_value_type_id: int = 0, map_extra: int | None = None, inner_map: Any = None) -> Map:
        """``bpf_map_create``; ``TypeError``/``ValueError`` on bad arguments, ``OSError`` with a hint on refusal.

        ``inner_map``: for ``ARRAY_OF_MAPS``/``HASH_OF_MAPS``, a map (or fd) shaped like the ones it will hold.
        """
        mtype = MapType(_check_int(map_type, "map_type", 0, 0xFFFFFFFF))
        ks = _check_int(key_size, "key_size", 0, 0xFFFFFFFF)
        vs = _check_int(value_size, "value_size", 0, 0xFFFFFFFF)
        me = _check_int(max_entries, "max_entries", 0, 0xFFFFFFFF)
        fl = _check_int(int(flags) if isinstance(flags, MapUpdateFlags) else flags, "flags", 0, 0xFFFFFFFF)
        cname: bytes | None = None
        if name is not None:
            cname = name.encode() if isinstance(name, str) else bytes(name) if isinstance(name, bytes) else None
            if cname is None:
                raise TypeError(f"name must be str or bytes, not {type(name).__name__}")
            if b"\0" in cname:
                raise ValueError("name must not contain NUL bytes")
            cname = cname[:15]
        opts = ll.new_map_create_opts()
        opts.map_flags = fl
        if btf_fd is not None:
            opts.btf_fd = _check_int(btf_fd, "btf_fd", 0, 0x7FFFFFFF)
            opts.btf_key_type_id = _check_int(btf_key_type_id, "btf_key_type_id", 0, 0xFFFFFFFF)
            opts.btf_value_type_id = _check_int(btf_value_type_id, "btf_value_type_id", 0, 0xFFFFFFFF)
        if inner_map is not None:
            opts.inner_map_fd = as_fd(inner_map, "inner_map")
        if map_extra is not None:
            opts.map_extra = _check_int(map_extra, "map_extra", 0, (1 << 64) - 1)
        ret = ll.bpf_map_create(int(mtype), cname, ks, vs, me, opts)
        fd = check(ret, f"map_create({mtype.name})", hint=_create_hint if ret == -errno.EINVAL else None)
        try:
            return cls(fd, key_type=key_type, value_type=value_type)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def array(cls, max_entries: int = 1, *, value_size: int = 8, name: str | None = None) -> Map:
        """An array map of ``max_entries`` u64 counters (or ``value_size`` bytes each)."""
        return cls.create(MapType.ARRAY, key_size=4, value_size=value_size, max_entries=max_entries, name=name)

    @classmethod
    def from_id(cls, map_id: int, *, key_type: Any = None, value_type: Any = None, btf: bool = True) -> Map:
        """A new fd to the map with kernel id ``map_id``; with ``btf`` its keys/values decode by the map's BTF."""
        mid = _check_int(map_id, "map_id", 1, 0xFFFFFFFF)
        fd = check(ll.bpf_map_get_fd_by_id(mid), f"map_get_fd_by_id({mid})",
                   hint="no map with that id (or CAP_SYS_ADMIN is missing: opening by id needs it)")
        return cls._adopt(fd, key_type, value_type, btf)

    @classmethod
    def from_pin(cls, path: str | bytes | os.PathLike[str] | os.PathLike[bytes], *, key_type: Any = None,
                 value_type: Any = None, btf: bool = True) -> Map:
        """Open a map pinned in bpffs (``TypeError`` if the pin holds a program or link)."""
        raw = _c_path(path, "path")
        fd = check(ll.bpf_obj_get(raw), f"bpf_obj_get({os.fsdecode(raw)})",
                   hint="nothing is pinned there, or it is not on a bpffs mount")
        return cls._adopt(fd, key_type, value_type, btf)

    @classmethod
    def _adopt(cls, fd: int, key_type: Any, value_type: Any, btf: bool) -> Map:
        try:
            if btf and (key_type is None or value_type is None):
                info = map_info(fd)
                k, v = from_kernel(info.btf_id, info.btf_key_type_id, info.btf_value_type_id)
                key_type = key_type if key_type is not None else k if k is not None and k.size == info.key_size \
                    else None
                value_type = value_type if value_type is not None else v if v is not None and \
                    v.size == info.value_size else None
            return cls(fd, key_type=key_type, value_type=value_type)
        except BaseException:
            os.close(fd)
            raise

    # --- what it is ------------------------------------------------------------------------------------------
    def info(self) -> MapInfo:
        """The kernel's current view of the map (``struct bpf_map_info``)."""
        return map_info(self.fd)

    @property
    def id(self) -> int:
        return self._info.id

    @property
    def key_type(self) -> Any:
        return None if self._key_codec is None else self._key_codec.spec

    @property
    def value_type(self) -> Any:
        return None if self._value_codec is None else self._value_codec.spec

    @property
    def key_class(self) -> Any:  # a bpflink.btf.StructValue subclass or None
        """The generated class of a BTF struct key (``None`` if the key is not one); see ``set_types``."""
        return struct_class(self.key_type) if isinstance(self.key_type, CType) else None

    @property
    def value_class(self) -> Any:  # a bpflink.btf.StructValue subclass or None
        """The generated class of a BTF struct value (``None`` if the value is not one); see ``set_types``."""
        return struct_class(self.value_type) if isinstance(self.value_type, CType) else None

    def set_types(self, key_type: Any = None, value_type: Any = None, *, structs: str | None = None) -> Map:
        """Decode keys/values with these codecs from now on (None keeps the current one); returns the map.

        ``structs="class"``: BTF structs (keys, values, nested ones) decode to instances of a class generated
        per struct (``key_class``/``value_class``: named after the C struct, members as frozen attributes in C
        order) instead of dicts; ``structs="dict"`` goes back to dicts, the default. Either way ``update``,
        ``lookup`` and the batch calls take an instance, a mapping or bytes.

        >>> # not run as a doctest: needs a loaded object `obj` (tests/bpf/data_counts.bpf.c)
        >>> counts = obj.map("by_comm").set_types(structs="class")  # doctest: +SKIP
        >>> next(counts.items())  # doctest: +SKIP
        (comm_key(pid=4242, comm=b'bash'), comm_val(count=3, last_nr=59, flags=[1, 2, 3, 4]))
        >>> counts.update(counts.key_class(pid=1, comm=b"init"), counts.value_class(count=5))  # doctest: +SKIP
        """
        self.fd  # noqa: B018  -- a closed Map says so before anything else
        if structs not in (None, "dict", "class"):
            raise ValueError(f"structs must be 'dict' or 'class', not {structs!r}")
        key_codec = Codec(key_type, self.key_size, "key") if key_type is not None else self._key_codec
        value_codec = Codec(value_type, self.value_size, "value") if value_type is not None else \
            self._value_codec
        if structs is not None:
            convert = as_classes if structs == "class" else plain_type
            key_codec, value_codec = (Codec(convert(c.spec), c.size, c.what)
                                      if c is not None and isinstance(c.spec, CType) else c
                                      for c in (key_codec, value_codec))
        self._key_codec, self._value_codec = key_codec, value_codec
        self._key_fast = self._key_codec is None or self._key_codec.fmt in ("B", "H", "I", "Q")
        return self

    @property
    def _what(self) -> str:
        return f"map {self.name or self._info.id} ({self.map_type.name})"

    # --- keys and values -------------------------------------------------------------------------------------
    def _key(self, key: KeyLike) -> bytes:
        if type(key) is int and self._key_fast and 0 <= key < self._key_limit:  # the common case first
            return key.to_bytes(self.key_size, "little")
        if isinstance(key, (bytes, bytearray, memoryview)):
            raw = bytes(key)
        elif self._key_codec is not None:
            raw = self._key_codec.encode(key)
        elif isinstance(key, int) and not isinstance(key, bool):
            if not 0 <= key < 1 << (8 * self.key_size) or self.key_size == 0:
                raise ValueError(f"key {key} does not fit the map's {self.key_size}-byte key")
            raw = key.to_bytes(self.key_size, "little")
        else:
            raise TypeError(f"key must be bytes or an int, not {type(key).__name__}")
        if len(raw) != self.key_size:
            raise ValueError(f"key must be {self.key_size} bytes, got {len(raw)}")
        return raw

    def _one_value(self, value: Any, what: str = "value") -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            raw = bytes(value)
        elif self._value_codec is not None:
            raw = self._value_codec.encode(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value < 1 << (8 * self.value_size) or self.value_size == 0:
                raise ValueError(f"{what} {value} does not fit the map's {self.value_size}-byte value")
            raw = value.to_bytes(self.value_size, "little")
        else:
            raise TypeError(f"{what} must be bytes or an int, not {type(value).__name__}")
        if len(raw) != self.value_size:
            raise ValueError(f"{what} must be {self.value_size} bytes, got {len(raw)}")
        return raw

    def _value_buf(self, value: Any) -> bytes:
        """The bytes the kernel reads for one element: per-CPU maps take ``round_up(size, 8)`` x possible CPUs."""
        if not self.percpu:
            return self._one_value(value)
        pad = b"\0" * (self._stride - self.value_size)
        if isinstance(value, (list, tuple)):
            if len(value) != self._ncpu:
                raise ValueError(f"a per-CPU value takes one value per possible CPU ({self._ncpu}), got {len(value)}")
            return b"".join(self._one_value(v, f"value[{i}]") + pad for i, v in enumerate(value))
        return (self._one_value(value) + pad) * self._ncpu

    def _decode_key(self, raw: bytes) -> Any:
        return raw if self._key_codec is None else as_key(self._key_codec.decode(raw))

    def _decode_value(self, raw: bytes | memoryview) -> Any:
        if not self.percpu:
            if type(raw) is not bytes:
                raw = bytes(raw)
            return raw if self._value_codec is None else self._value_codec.decode(raw)
        s, n = self._stride, self.value_size
        parts = [bytes(raw[i * s:i * s + n]) for i in range(self._ncpu)]
        return parts if self._value_codec is None else [self._value_codec.decode(p) for p in parts]

    def _check_keyed(self, op: str) -> None:
        self.fd  # noqa: B018  -- a closed Map says so before anything else
        if self.map_type in KEYLESS_TYPES:
            use = ("a RingBuffer" if self.map_type in _RINGS else "mmap (an arena is memory shared with programs)"
                   if self.map_type == MapType.ARENA else "push()/pop()/peek()/may_contain()")
            raise TypeError(f"{self._what} has no keys: {op} does not apply (use {use})")

    # --- element operations ----------------------------------------------------------------------------------
    def lookup_raw(self, key: KeyLike) -> bytes | None:
        """The value's bytes as the kernel wrote them (per-CPU: every CPU's slot, 8-byte aligned), or None."""
        if self._keyless:
            self._check_keyed("lookup")
        kraw = self._key(key)
        size = self._vbytes
        value = _new("char[]", size)
        ret = _lookup_elem(self.fd, _from_buffer(kraw), value)
        if ret < 0:
            if ret == -errno.ENOENT:
                return None
            check(ret, f"{self._what}: lookup", hint=_hint(ret, mtype=self.map_type))
        out: bytes = _buffer(value, size)[:]
        return out

    def lookup(self, key: KeyLike, default: Any = None) -> Any:
        """The value (decoded; a list with one per possible CPU for per-CPU maps), or ``default`` if absent."""
        raw = self.lookup_raw(key)
        return default if raw is None else self._decode_value(raw)

    def __getitem__(self, key: KeyLike) -> Any:
        raw = self.lookup_raw(key)
        if raw is None:
            raise KeyError(key)
        return self._decode_value(raw)

    def __setitem__(self, key: KeyLike, value: Any) -> None:
        self.update(key, value)

    def __delitem__(self, key: KeyLike) -> None:
        try:
            self.delete(key)
        except FileNotFoundError:
            raise KeyError(key) from None

    def lookup_int(self, key: KeyLike, default: int = 0) -> int:
        """The value read as a little-endian unsigned int (``default`` when absent); per-CPU maps: the sum."""
        raw = self.lookup_raw(key)
        if raw is None:
            return default
        if self.percpu:
            return sum(int.from_bytes(raw[i * self._stride:i * self._stride + self.value_size], "little")
                       for i in range(self._ncpu))
        return int.from_bytes(raw, "little")

    def sum(self, key: KeyLike, default: int = 0) -> int:
        """A per-CPU counter added over every CPU (the value must decode to an int)."""
        self.fd  # noqa: B018  -- a closed Map says so before anything else
        if not self.percpu:
            raise TypeError(f"{self._what} is not a per-CPU map: use lookup()")
        values = self.lookup(key)
        if values is None:
            return default
        total = 0
        for v in values:
            total += v if isinstance(v, int) else int.from_bytes(v, "little")
        return total

    def update(self, key: KeyLike, value: Any, flags: MapUpdateFlags | int = MapUpdateFlags.ANY) -> None:
        """Create or replace ``key`` (``flags``: ``MapUpdateFlags.NOEXIST``/``EXIST``/``LOCK``)."""
        if self._keyless:
            self._check_keyed("update")
        fl = flags if type(flags) is int and 0 <= flags < 1 << 64 else \
            _check_int(int(flags) if isinstance(flags, MapUpdateFlags) else flags, "flags", 0, (1 << 64) - 1)
        kraw, vraw = self._key(key), self._value_buf(value)
        ret = _update_elem(self.fd, _from_buffer(kraw), _from_buffer(vraw), fl)
        if ret < 0:
            extra = None
            if -ret == errno.EEXIST:
                extra = "the key exists and BPF_NOEXIST was given"
            elif -ret == errno.ENOENT and "CGROUP_STORAGE" not in self.map_type.name:
                extra = "the key is absent and BPF_EXIST was given"
            check(ret, f"{self._what}: update", hint=_hint(ret, extra, self.map_type))

    def delete(self, key: KeyLike) -> None:
        """Delete ``key`` (``FileNotFoundError`` when absent, ``del m[key]`` a ``KeyError``; arrays cannot delete:
        ``OSError`` EINVAL)."""
        self._check_keyed("delete")
        kraw = self._key(key)
        ret = ll.bpf_map_delete_elem(self.fd, ll.ffi.from_buffer(kraw))
        check(ret, f"{self._what}: delete", hint=_hint(ret, "array maps cannot delete elements (set them to zero)"
                                                       if -ret == errno.EINVAL and self.map_type in ARRAY_TYPES
                                                       else None, self.map_type))

    def __contains__(self, key: object) -> bool:
        return self.lookup_raw(key) is not None

    def __len__(self) -> int:
        """For array-like maps: ``max_entries`` (every index exists). Other maps: ``TypeError``, use ``count()``."""
        if self.map_type in ARRAY_TYPES:
            return self.max_entries
        raise TypeError(f"{self._what}: its size is not cheap to know (a walk): use count()")

    def __bool__(self) -> bool:
        return True

    def count(self) -> int:
        """How many keys the map holds, by walking them."""
        return sum(1 for _ in self._raw_keys())

    # --- iteration ---------------------------------------------------------------------------------------------
    def _raw_keys(self) -> Iterator[bytes]:
        self._check_keyed("keys()")
        if self.map_type in _STORAGE_TYPES:
            raise TypeError(f"{self._what}: local storage maps cannot be walked from user space")
        key = ll.NULL
        nxt = ll.ffi.new("char[]", max(self.key_size, 1))
        while True:
            ret = ll.bpf_map_get_next_key(self.fd, key, nxt)
            if ret == -errno.ENOENT:
                return
            check(ret, f"{self._what}: get_next_key", hint=_hint(ret, mtype=self.map_type))
            raw = bytes(ll.ffi.buffer(nxt, self.key_size))
            yield raw
            key = ll.ffi.new("char[]", raw)

    def keys(self) -> Iterator[Any]:
        """Every key (decoded); errors raise, a map without keys raises ``TypeError``."""
        for raw in self._raw_keys():
            yield self._decode_key(raw)

    def __iter__(self) -> Iterator[Any]:
        return self.keys()

    def values(self) -> Iterator[Any]:
        for _, v in self.items():
            yield v

    def items(self) -> Iterator[tuple[Any, Any]]:
        """(key, value) pairs: by ``lookup_batch`` where the kernel has it for this map type, else a walk."""
        self._check_keyed("items()")
        if _batch_ok.get(int(self.map_type), True) and self.map_type not in _STORAGE_TYPES:
            try:
                batch = self.lookup_batch()
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP, 524, errno.ENOTSUP):
                    raise
                _batch_ok[int(self.map_type)] = False
            else:
                yield from batch.items()
                return
        for raw in self._raw_keys():
            value = self.lookup_raw(raw)
            if value is not None:  # deleted between the walk and the lookup
                yield self._decode_key(raw), self._decode_value(value)

    # --- batches ---------------------------------------------------------------------------------------------
    def lookup_batch(self, *, chunk: int = 0) -> Batch:
        """Every element in a few ``bpf_map_lookup_batch`` calls, as one ``Batch`` (raw buffers + decoders)."""
        return self._batch(False, chunk)

    def lookup_and_delete_batch(self, *, chunk: int = 0) -> Batch:
        """Every element read and deleted (``bpf_map_lookup_and_delete_batch``): e.g. drain a hash of counters."""
        return self._batch(True, chunk)

    def _batch(self, delete: bool, chunk: int) -> Batch:
        self._check_keyed("lookup_batch")
        chunk = _check_int(chunk, "chunk", 0, 1 << 24) or min(max(self.max_entries, 1), 1 << 16)
        fn = ll.bpf_map_lookup_and_delete_batch if delete else ll.bpf_map_lookup_batch
        op = "lookup_and_delete_batch" if delete else "lookup_batch"
        opts = ll.ffi.new("struct bpf_map_batch_opts *")
        opts.sz = ll.ffi.sizeof("struct bpf_map_batch_opts")
        token = max(self.key_size, 8)
        in_b, out_b = ll.ffi.new("char[]", token), ll.ffi.new("char[]", token)
        count = ll.ffi.new("__u32 *")
        vsize = self._stride * self._ncpu
        keys_parts: list[bytes] = []
        values_parts: list[bytes] = []
        total = 0
        first = True
        while True:
            kbuf = ll.ffi.new("char[]", max(chunk * self.key_size, 1))
            vbuf = ll.ffi.new("char[]", max(chunk * vsize, 1))
            count[0] = chunk
            ret = fn(self.fd, ll.NULL if first else in_b, out_b, kbuf, vbuf, count, opts)
            n = int(count[0])
            if ret == -errno.ENOSPC and n == 0:  # a hash bucket holds more than chunk entries
                chunk *= 2
                continue
            if ret < 0 and ret != -errno.ENOENT:
                check(ret, f"{self._what}: {op}", hint=_hint(ret, mtype=self.map_type))
            if n:
                keys_parts.append(ll.ffi.buffer(kbuf, n * self.key_size)[:])
                values_parts.append(ll.ffi.buffer(vbuf, n * vsize)[:])
                total += n
            if ret == -errno.ENOENT:
                break
            ll.ffi.memmove(in_b, out_b, token)
            first = False
        return Batch(self, b"".join(keys_parts), b"".join(values_parts), total)

    def update_batch(self, keys: Sequence[Any] | Any, values: Sequence[Any] | Any,
                     flags: MapUpdateFlags | int = MapUpdateFlags.ANY) -> int:
        """Write many elements in one call; ``keys``/``values``: sequences, or buffers (numpy arrays) of packed
        elements. Returns how many were written."""
        self._check_keyed("update_batch")
        kraw, n = self._pack_keys(keys)
        vraw = self._pack_values(values, n)
        fl = _check_int(int(flags), "flags", 0, (1 << 64) - 1)
        opts = ll.ffi.new("struct bpf_map_batch_opts *")
        opts.sz = ll.ffi.sizeof("struct bpf_map_batch_opts")
        opts.elem_flags = fl
        count = ll.ffi.new("__u32 *", n)
        ret = ll.bpf_map_update_batch(self.fd, ll.ffi.from_buffer(kraw), ll.ffi.from_buffer(vraw), count, opts)
        check(ret, f"{self._what}: update_batch ({int(count[0])} of {n} written)",
              hint=_hint(ret, mtype=self.map_type))
        return int(count[0])

    def delete_batch(self, keys: Sequence[Any] | Any) -> int:
        """Delete many keys in one call (``KeyError``-like ``OSError`` ENOENT if one is absent)."""
        self._check_keyed("delete_batch")
        kraw, n = self._pack_keys(keys)
        opts = ll.ffi.new("struct bpf_map_batch_opts *")
        opts.sz = ll.ffi.sizeof("struct bpf_map_batch_opts")
        count = ll.ffi.new("__u32 *", n)
        ret = ll.bpf_map_delete_batch(self.fd, ll.ffi.from_buffer(kraw), count, opts)
        check(ret, f"{self._what}: delete_batch ({int(count[0])} of {n} deleted)",
              hint=_hint(ret, mtype=self.map_type))
        return int(count[0])

    def _pack_keys(self, keys: Any) -> tuple[bytes, int]:
        if _is_buffer(keys):
            raw = memoryview(keys).cast("B").tobytes()
            if not self.key_size or len(raw) % self.key_size:
                raise ValueError(f"keys buffer must be a multiple of the {self.key_size}-byte key")
            return raw, len(raw) // self.key_size
        items = list(keys)
        return b"".join(self._key(k) for k in items), len(items)

    def _pack_values(self, values: Any, n: int) -> bytes:
        vsize = self._stride * self._ncpu
        if _is_buffer(values):
            raw = memoryview(values).cast("B").tobytes()
        else:
            raw = b"".join(self._value_buf(v) for v in values)
        if len(raw) != n * vsize:
            raise ValueError(f"values must be {n} x {vsize} bytes (one per key), got {len(raw)}")
        return raw

    # --- value stores: queue, stack, bloom filter ---------------------------------------------------------------
    def push(self, value: Any, flags: MapUpdateFlags | int = MapUpdateFlags.ANY) -> None:
        """Queue/stack: push a value (``BPF_EXIST`` overwrites the oldest when full); bloom filter: add one."""
        self._check_valued("push")
        vraw = self._one_value(value)
        ret = ll.bpf_map_update_elem(self.fd, ll.NULL, ll.ffi.from_buffer(vraw), int(flags))
        check(ret, f"{self._what}: push", hint=_hint(ret, mtype=self.map_type))

    def pop(self) -> Any:
        """Queue/stack: take the next value (``KeyError`` when empty)."""
        self._check_valued("pop", bloom=False)
        value = ll.ffi.new("char[]", max(self.value_size, 1))
        ret = ll.bpf_map_lookup_and_delete_elem(self.fd, ll.NULL, value)
        if ret == -errno.ENOENT:
            raise KeyError(f"{self._what} is empty")
        check(ret, f"{self._what}: pop", hint=_hint(ret, mtype=self.map_type))
        return self._decode_value(ll.ffi.buffer(value, self.value_size)[:])

    def peek(self) -> Any:
        """Queue/stack: the next value without taking it (None when empty)."""
        self._check_valued("peek", bloom=False)
        value = ll.ffi.new("char[]", max(self.value_size, 1))
        ret = ll.bpf_map_lookup_elem(self.fd, ll.NULL, value)
        if ret == -errno.ENOENT:
            return None
        check(ret, f"{self._what}: peek", hint=_hint(ret, mtype=self.map_type))
        return self._decode_value(ll.ffi.buffer(value, self.value_size)[:])

    def may_contain(self, value: Any) -> bool:
        """Bloom filter: False if ``value`` was surely never pushed."""
        self.fd  # noqa: B018  -- a closed Map says so before anything else
        if self.map_type != MapType.BLOOM_FILTER:
            raise TypeError(f"{self._what} is not a bloom filter")
        vraw = self._one_value(value)
        ret = ll.bpf_map_lookup_elem(self.fd, ll.NULL, ll.ffi.from_buffer(vraw))
        if ret == -errno.ENOENT:
            return False
        check(ret, f"{self._what}: may_contain", hint=_hint(ret, mtype=self.map_type))
        return True

    def _check_valued(self, op: str, bloom: bool = True) -> None:
        self.fd  # noqa: B018  -- a closed Map says so before anything else
        ok = {MapType.QUEUE, MapType.STACK} | ({MapType.BLOOM_FILTER} if bloom else set())
        if self.map_type not in ok:
            raise TypeError(f"{self._what}: {op}() is for queue/stack{'/bloom filter' if bloom else ''} maps")

    def freeze(self) -> None:
        """Make the map read-only for user space (``bpf_map_freeze``)."""
        check(ll.bpf_map_freeze(self.fd), f"{self._what}: freeze",
              hint="already frozen, a map type that cannot be frozen, or a writable mmap of it exists")

    # --- pinning ---------------------------------------------------------------------------------------------
    def pin(self, path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> None:
        """Pin in bpffs: the map then outlives this fd and this process."""
        raw = _c_path(path, "path")
        check(ll.bpf_obj_pin(self.fd, raw), f"{self._what}: pin {os.fsdecode(raw)}",
              hint="path must be on a bpffs mount (mount -t bpf bpf /sys/fs/bpf) and not exist yet")
        self._pinned = raw

    @property
    def pinned_path(self) -> str | None:
        return None if self._pinned is None else os.fsdecode(self._pinned)

    def unpin(self) -> None:
        """Remove the pin this Map made; if the path now holds another object, raise and delete nothing."""
        if self._pinned is None:
            raise ValueError("this Map was not pinned by pin(); unlink the bpffs path to unpin it")
        path = self._pinned
        fd = ll.bpf_obj_get(path)
        if fd == -errno.ENOENT:
            self._pinned = None
            raise FileNotFoundError(errno.ENOENT, f"{self._what}: the pin {os.fsdecode(path)} is gone already")
        check(fd, f"{self._what}: unpin {os.fsdecode(path)}")
        try:
            kind = _fd_kind(fd)
            same = (kind in (None, "anon_inode:bpf-map")) and map_info(fd).id == self.id
        except OSError:
            same = False
        finally:
            os.close(fd)
        if not same:
            raise ValueError(f"{os.fsdecode(path)} no longer holds {self._what} (id {self.id}): not removed")
        os.unlink(path)
        self._pinned = None

    def __reduce__(self) -> Any:
        raise TypeError("a Map owns a file descriptor and cannot be copied or pickled; pin it and use "
                        "Map.from_pin(), or Map.from_id()")

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return f"<Map {self.name!r} {self.map_type.name} {state}>"


_batch_ok: dict[int, bool] = {}
# bound once: the element calls are the hot path of lookup loops (bench/maps.py)
_new = ll.ffi.new
_from_buffer = ll.ffi.from_buffer
_buffer = ll.ffi.buffer
_lookup_elem = ll.bpf_map_lookup_elem
_update_elem = ll.bpf_map_update_elem
_create_hint = ("the kernel refused this map: a type it lacks, sizes this type does not allow (e.g. RINGBUF "
                "max_entries a power-of-2 multiple of the page size, key_size 0 for QUEUE/STACK/BLOOM_FILTER), "
                "or flags the type does not take")


def _is_buffer(obj: Any) -> bool:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return True
    return hasattr(obj, "__array_interface__") or hasattr(obj, "__buffer__")


class Batch:
    """The result of a batch lookup: ``count`` elements in two packed buffers.

    ``keys_raw``/``values_raw`` hold them as the kernel wrote them (per-CPU values: ``round_up(value_size, 8)``
    per CPU); ``keys()``, ``values()``, ``items()`` decode; ``numpy(key_dtype, value_dtype)`` views them as
    arrays without a Python object per element.
    """

    def __init__(self, owner: Map, keys_raw: bytes, values_raw: bytes, count: int) -> None:
        self.map = owner
        self.keys_raw = keys_raw
        self.values_raw = values_raw
        self.count = count

    def __len__(self) -> int:
        return self.count

    def _fast(self, codec: Codec | None, raw: bytes, size: int) -> list[Any] | None:
        fmt = codec.fmt if codec is not None else None
        if fmt is not None and size == struct.calcsize(fmt):
            out: list[Any] = memoryview(raw).cast(fmt).tolist()  # type: ignore[call-overload]
            return out
        return None

    def keys(self) -> list[Any]:
        m = self.map
        fast = self._fast(m._key_codec, self.keys_raw, m.key_size)
        if fast is not None:
            return fast
        ks = m.key_size
        return [m._decode_key(self.keys_raw[i * ks:(i + 1) * ks]) for i in range(self.count)]

    def values(self) -> list[Any]:
        m = self.map
        if not m.percpu:
            fast = self._fast(m._value_codec, self.values_raw, m.value_size)
            if fast is not None:
                return fast
        vs = m._stride * m._ncpu
        view = memoryview(self.values_raw)
        return [m._decode_value(view[i * vs:(i + 1) * vs]) for i in range(self.count)]

    def items(self) -> Iterator[tuple[Any, Any]]:
        return zip(self.keys(), self.values())

    def numpy(self, key_dtype: Any = None, value_dtype: Any = None) -> tuple[Any, Any]:
        """(keys, values) as numpy arrays (``uint8`` rows by default; per-CPU values shaped (count, cpus))."""
        import numpy as np

        m = self.map
        kd = np.dtype(key_dtype) if key_dtype is not None else np.dtype((np.uint8, (m.key_size,)))
        keys = np.frombuffer(self.keys_raw, dtype=kd, count=self.count)
        if m.percpu:
            vd = np.dtype(value_dtype) if value_dtype is not None else np.dtype((np.uint8, (m.value_size,)))
            row = np.dtype({"names": ["v"], "formats": [vd], "itemsize": m._stride})
            values = np.frombuffer(self.values_raw, dtype=row).reshape(self.count, m._ncpu)["v"]
        else:
            vd = np.dtype(value_dtype) if value_dtype is not None else np.dtype((np.uint8, (m.value_size,)))
            values = np.frombuffer(self.values_raw, dtype=vd, count=self.count)
        return keys, values


__all__ = ["Batch", "Codec", "Map", "MapInfo", "MapUpdateFlags", "map_info"]  # + BPF_ANY, BPF_NOEXIST, ...: aliases
