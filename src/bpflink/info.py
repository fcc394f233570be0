"""Typed, frozen views of ``struct bpf_link_info``: one dataclass per link type, all of them ``LinkInfo``.

Variable-length parts (names, paths, address and offset arrays) take a second ``bpf_link_get_info_by_fd``
call with buffers sized from the first. The arrays of multi-probe links (up to 2^20 values each) become tuples
only when read: ``Link.info()`` copies them out at once, ``links()`` leaves them in the kernel until asked
(``UprobeMultiLinkInfo``). A link type the compiled headers do not know (a newer kernel) gives the plain
``LinkInfo``.

>>> # not run as a doctest: needs a link; ids differ on every machine
>>> link.info()  # doctest: +SKIP
CgroupLinkInfo(type=<LinkType.CGROUP: 3>, id=12, prog_id=40, cgroup_id=5301, attach_type=<AttachType...>)
"""

from __future__ import annotations

import array
import dataclasses
import enum
import errno
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from . import lowlevel as ll
from ._native import ABSENT, constant, has
from .enums import AttachType, LinkType
from .errors import check, error

_ffi = ll.ffi
_INFO_SIZE = _ffi.sizeof("struct bpf_link_info")
# kernels before 6.13 do not report perf_event name lengths: fall back to a buffer this large (PATH_MAX)
_NAME_FALLBACK = 4096


def _lib_int(name: str, default: int) -> int:
    return constant(name) if has(name) else default


class PerfEventType(enum.IntEnum):
    """``enum bpf_perf_event_type``: what a perf_event link's event is."""

    UNSPEC = _lib_int("BPF_PERF_EVENT_UNSPEC", 0)
    UPROBE = _lib_int("BPF_PERF_EVENT_UPROBE", -1)
    URETPROBE = _lib_int("BPF_PERF_EVENT_URETPROBE", -2)
    KPROBE = _lib_int("BPF_PERF_EVENT_KPROBE", -3)
    KRETPROBE = _lib_int("BPF_PERF_EVENT_KRETPROBE", -4)
    TRACEPOINT = _lib_int("BPF_PERF_EVENT_TRACEPOINT", -5)
    EVENT = _lib_int("BPF_PERF_EVENT_EVENT", -6)


def _json_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    return value


@dataclass(frozen=True)
class LinkInfo:
    """The fields every link has; also what a link type unknown to the compiled headers decodes to."""

    type: LinkType
    id: int
    prog_id: int

    def details(self) -> dict[str, Any]:
        """The per-type fields (everything but type, id and prog_id), JSON-ready: enums as lowercase names.

        >>> CgroupLinkInfo(LinkType.CGROUP, 1, 2, cgroup_id=9, attach_type=AttachType.CGROUP_INET_EGRESS).details()
        {'cgroup_id': 9, 'attach_type': 'cgroup_inet_egress'}
        """
        return {f.name: _json_value(getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.name not in ("type", "id", "prog_id")}

    def to_dict(self) -> dict[str, Any]:
        """All fields, JSON-ready (``type`` as e.g. ``"cgroup"``, like ``bpftool link list -j``)."""
        return {"id": self.id, "type": _json_value(self.type), "prog_id": self.prog_id, **self.details()}


@dataclass(frozen=True)
class RawTracepointLinkInfo(LinkInfo):
    tp_name: str
    cookie: int


@dataclass(frozen=True)
class TracingLinkInfo(LinkInfo):
    attach_type: AttachType
    target_obj_id: int  # the target program's id for freplace, else the BTF object's id
    target_btf_id: int
    cookie: int


@dataclass(frozen=True)
class CgroupLinkInfo(LinkInfo):
    cgroup_id: int  # 0 once detached
    attach_type: AttachType


@dataclass(frozen=True)
class IterLinkInfo(LinkInfo):
    """``target_name`` decides which of the others the kernel filled: map iterators set ``map_id``, the
    cgroup iterator ``cgroup_id`` and ``order``, task iterators ``tid`` and ``pid``; the rest are None."""

    target_name: str
    map_id: int | None
    cgroup_id: int | None
    order: int | None
    tid: int | None
    pid: int | None


@dataclass(frozen=True)
class NetnsLinkInfo(LinkInfo):
    netns_ino: int
    attach_type: AttachType


@dataclass(frozen=True)
class XdpLinkInfo(LinkInfo):
    ifindex: int  # 0 once detached


@dataclass(frozen=True)
class StructOpsLinkInfo(LinkInfo):
    map_id: int


@dataclass(frozen=True)
class NetfilterLinkInfo(LinkInfo):
    pf: int
    hooknum: int
    priority: int
    flags: int


class _LazyArrays:
    """The array fields (offsets, addresses, cookies) of a multi-probe link's info, made on first access.

    An instance made by a decoder has the scalar fields in its ``__dict__`` and, instead of the arrays, a source
    (``_Buffers`` or ``_ById``) under ``_arrays_source``: reading an array field that is not there yet asks the
    source, stores the tuple (later reads are plain attribute reads) and returns it. Every path that reads the
    fields (``==``, ``hash``, ``repr``, ``to_dict``, ``dataclasses.asdict``, pickling) sees the same tuples as
    an eagerly built instance; one built with all fields (``UprobeMultiLinkInfo(...)``) has no source at all.
    ``array(name)`` gives the values as ``array('Q')`` without a Python int per element.
    """

    __slots__ = ()
    _ARRAYS: ClassVar[tuple[str, ...]] = ()

    if not TYPE_CHECKING:  # mypy: the fields are declared on the dataclasses; no catch-all attribute
        def __getattr__(self, name: str) -> Any:
            source = self.__dict__.get("_arrays_source") if name in type(self)._ARRAYS else None
            if source is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            value = source.values(name)
            self.__dict__[name] = value  # frozen dataclass: set once, as its __init__ would
            return value

    def array(self, name: str) -> array.array[int]:
        """The array field ``name`` as ``array('Q')`` (8 bytes per value, no Python int per element); a copy.

        >>> # not run as a doctest: needs a uprobe_multi link's info (offsets differ on every machine)
        >>> info.array("offsets")  # doctest: +SKIP
        array('Q', [4176, 4240])
        >>> numpy.frombuffer(info.array("offsets"), dtype=numpy.uint64)  # doctest: +SKIP
        array([4176, 4240], dtype=uint64)
        """
        if name not in type(self)._ARRAYS:
            raise ValueError(f"{type(self).__name__} has no array {name!r} (it has {', '.join(self._ARRAYS)})")
        done = self.__dict__.get(name)
        source = self.__dict__.get("_arrays_source")
        if done is not None or source is None:
            return array.array("Q", getattr(self, name))
        return array.array("Q", source.raw(name))

    def __repr__(self) -> str:
        # the dataclass repr, except that an array that can no longer be read (its link gone) does not make
        # repr raise: it shows as <not read: why>
        parts = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            try:
                value = repr(getattr(self, f.name))
            except OSError as exc:
                value = f"<not read: {exc}>"
            parts.append(f"{f.name}={value}")
        return f"{type(self).__qualname__}({', '.join(parts)})"

    def __getstate__(self) -> dict[str, Any]:
        # pickle and copy: the values themselves, never the source (C buffers, a link id on this host)
        state = {k: v for k, v in self.__dict__.items() if k != "_arrays_source"}
        for name in type(self)._ARRAYS:
            state[name] = getattr(self, name)
        return state


class _Buffers:
    """Arrays the kernel already copied out (``Link.info()``): C buffers of ``n`` values each; a tuple of ints is
    made from one on first access (``ffi.unpack`` converts in C) and the buffer then dropped."""

    __slots__ = ("_bufs", "_done", "_lock", "_n")

    def __init__(self, bufs: dict[str, Any], n: int) -> None:
        self._bufs, self._n, self._lock = bufs, n, threading.Lock()
        self._done: dict[str, tuple[int, ...]] = {}  # threads asking at once all get the one tuple

    def raw(self, name: str) -> bytes:
        with self._lock:
            buf = self._bufs.get(name)
            if buf is None:
                return array.array("Q", self._done.get(name, ())).tobytes()
            return bytes(_ffi.buffer(buf, 8 * self._n)) if self._n else b""

    def values(self, name: str) -> tuple[int, ...]:
        with self._lock:
            done = self._done.get(name)
            if done is None:
                buf = self._bufs.pop(name, None)
                done = self._done[name] = tuple(_ffi.unpack(buf, self._n)) if buf is not None and self._n else ()
            return done


class _ById:
    """Arrays not read yet (``links()``): on first access the link is opened again by id and one more
    ``bpf_link_get_info_by_fd`` copies the arrays out; the fd is closed before returning, so an info object
    never holds one. A link released since it was listed raises ``FileNotFoundError`` (ENOENT, naming the link
    and the array); reopening needs CAP_SYS_ADMIN, as listing did."""

    __slots__ = ("_count", "_done", "_groups", "_id", "_lock", "_member", "_spare", "_type")

    def __init__(self, link_id: int, link_type: int, member: str, count: int,
                 groups: dict[str, tuple[str, ...]]) -> None:
        self._id, self._type, self._member, self._count, self._groups = link_id, link_type, member, count, groups
        self._lock = threading.Lock()
        self._spare: dict[str, tuple[Any, int]] = {}
        self._done: dict[str, tuple[int, ...]] = {}

    def _fetch(self, name: str) -> tuple[dict[str, Any], int]:
        """C buffers for ``name`` and the arrays the kernel insists on copying with it, and how many values."""
        count = self._count
        if not count:
            return {}, 0
        fd = ll.bpf_link_get_fd_by_id(self._id)
        if fd < 0:
            hint = {-errno.ENOENT: f"link {self._id} was released after it was listed: its {name} can no longer "
                                   "be read",
                    -errno.EPERM: f"reading a listed link's {name} opens it again by id, which needs CAP_SYS_ADMIN"}
            check(fd, f"link_get_fd_by_id({self._id})", op="info", hint=hint.get(fd))
        try:
            info = _ffi.new("struct bpf_link_info *")
            info.type = self._type
            part = getattr(info, self._member)
            bufs = {n: _ffi.new("__u64[]", count) for n in self._groups[name]}
            for n, buf in bufs.items():
                setattr(part, n, int(_ffi.cast("uintptr_t", buf)))
            part.count = count
            ret = _get(fd, info)
            if ret < 0 and -ret != errno.ENOSPC:
                check(ret, f"link_get_info_by_fd(link {self._id}: {name})")
        finally:
            os.close(fd)
        if int(info.type) != self._type:  # ids are not reused before they wrap around 2^31; checked all the same
            raise error(errno.ENOENT, f"link_get_fd_by_id({self._id})", op="info",
                        hint=f"link {self._id} was released after it was listed (the id now names another link)")
        return bufs, min(count, int(getattr(info, self._member).count))

    def _take(self, name: str) -> tuple[Any, int]:
        spare = self._spare.pop(name, None)  # copied out with an array asked before (kprobe_multi: both at once)
        if spare is not None:
            return spare
        bufs, n = self._fetch(name)
        self._spare.update((k, (b, n)) for k, b in bufs.items() if k != name)
        return bufs.get(name), n

    def raw(self, name: str) -> bytes:
        with self._lock:
            if name in self._done:
                return array.array("Q", self._done[name]).tobytes()
            buf, n = self._take(name)
            self._spare[name] = (buf, n)  # array() copies: the tuple may still be asked for
            return bytes(_ffi.buffer(buf, 8 * n)) if n else b""

    def values(self, name: str) -> tuple[int, ...]:
        with self._lock:
            done = self._done.get(name)
            if done is None:  # threads asking at once: one read, one tuple
                buf, n = self._take(name)
                done = self._done[name] = tuple(_ffi.unpack(buf, n)) if n else ()
            return done


def _lazy(cls: type[LinkInfo], fields: dict[str, Any], source: _Buffers | _ById) -> LinkInfo:
    """An instance of a ``_LazyArrays`` dataclass whose array fields ``source`` makes on first access."""
    obj = _new(cls, fields)
    obj.__dict__["_arrays_source"] = source
    return obj


@dataclass(frozen=True, repr=False)  # _LazyArrays.__repr__
class KprobeMultiLinkInfo(_LazyArrays, LinkInfo):
    """``addrs`` are zeros unless the caller may see kernel addresses (kptr_restrict).

    ``addrs`` and ``cookies`` (``count`` values each) are tuples made on first access: ``Link.info()`` copies
    them out of the kernel at once and makes each tuple when it is read; ``links()`` reads neither while listing
    and opens the link again by id on first access (see ``_LazyArrays``). ``array(name)``: the values as
    ``array('Q')`` without a Python int each.
    """

    _ARRAYS = ("addrs", "cookies")

    addrs: tuple[int, ...]
    cookies: tuple[int, ...]
    count: int
    flags: int
    missed: int


@dataclass(frozen=True, repr=False)  # _LazyArrays.__repr__
class UprobeMultiLinkInfo(_LazyArrays, LinkInfo):
    """``offsets``, ``ref_ctr_offsets`` and ``cookies`` (``count`` values each) are tuples made on first access:
    ``Link.info()`` copies them out of the kernel at once (the link may be closed right after) and makes each
    tuple when it is read; ``links()`` reads none of them while listing, and on first access opens the link
    again by id for the one array asked (``FileNotFoundError`` if the link is gone by then). ``array(name)``:
    the values as ``array('Q')`` without a Python int each.
    """

    _ARRAYS = ("offsets", "ref_ctr_offsets", "cookies")
    path: str
    offsets: tuple[int, ...]
    ref_ctr_offsets: tuple[int, ...]
    cookies: tuple[int, ...]
    count: int
    flags: int
    pid: int


@dataclass(frozen=True)
class PerfEventLinkInfo(LinkInfo):
    """``name`` is the tracepoint name, the kprobe's function or the uprobe's file ("" for plain events).
    ``offset``/``addr``/``missed`` are for probes, ``config``/``event_type`` for plain perf events.

    Kernels before 6.6 report nothing about a perf_event link but its type, id and program: ``perf_type`` is
    then ``UNSPEC`` (a 6.6+ kernel always names the event's type) and every other field None (``reported``
    is False), not reported rather than zero.
    """

    perf_type: PerfEventType
    name: str | None
    offset: int | None
    addr: int | None
    missed: int | None
    cookie: int | None
    ref_ctr_offset: int | None
    config: int | None
    event_type: int | None

    @property
    def reported(self) -> bool:
        """Whether the kernel reported the event's details (6.6+)."""
        return self.name is not None


@dataclass(frozen=True)
class TcxLinkInfo(LinkInfo):
    ifindex: int  # 0 once detached
    attach_type: AttachType


@dataclass(frozen=True)
class NetkitLinkInfo(LinkInfo):
    ifindex: int
    attach_type: AttachType


@dataclass(frozen=True)
class SockmapLinkInfo(LinkInfo):
    map_id: int
    attach_type: AttachType


# --- the two calls ------------------------------------------------------------------------------------------


def _get(fd: int, info: Any) -> int:
    size = _ffi.new("__u32 *", _INFO_SIZE)
    return ll.bpf_link_get_info_by_fd(fd, info, size)


def raw_link_info(fd: int) -> Any:
    """One ``bpf_link_get_info_by_fd`` into a fresh, zeroed ``struct bpf_link_info`` (no buffers)."""
    info = _ffi.new("struct bpf_link_info *")
    check(_get(fd, info), "link_get_info_by_fd")
    return info


def _member(info: Any, path: str, default: int = 0) -> int:
    """A member the compiled headers may lack (``cookie`` before libbpf 1.6): ``default`` then."""
    obj = info
    for name in path.split("."):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            return default
    return int(obj)


def _string(buf: Any) -> str:
    return str(_ffi.string(buf).decode(errors="replace"))


def _refill(fd: int, first: Any, fill: Callable[[Any], list[Any]]) -> tuple[Any, list[Any]]:
    """The second call: a fresh info whose pointers ``fill`` sets (it returns the buffers it made).

    ENOSPC means the object grew in between (or, for names, an old kernel reported no length): the
    kernel still filled what fit, so that result is used rather than failing.
    """
    info = _ffi.new("struct bpf_link_info *")
    info.type = first.type
    bufs = fill(info)
    ret = _get(fd, info)
    if ret < 0 and -ret != errno.ENOSPC:
        check(ret, "link_get_info_by_fd")
    return info, bufs


def _name_buffer(size: int) -> Any:
    return _ffi.new("char[]", max(size, 1) if size else _NAME_FALLBACK)


def _refill_name(fd: int, first: Any, member: str, ptr: str, length: str) -> tuple[Any, str]:
    """The second call for a link whose variable part is one name: ``first.<member>.<length>`` sizes the buffer
    whose address goes in ``<member>.<ptr>``. Returns the full info and the name."""

    def fill(i: Any) -> list[Any]:
        buf = _name_buffer(int(getattr(getattr(first, member), length)))
        part = getattr(i, member)
        setattr(part, ptr, int(_ffi.cast("uintptr_t", buf)))
        setattr(part, length, len(buf))
        return [buf]

    full, (buf,) = _refill(fd, first, fill)
    return full, _string(buf)


# --- per type -----------------------------------------------------------------------------------------------


def _new(cls: type[LinkInfo], fields: dict[str, Any]) -> LinkInfo:
    """A frozen dataclass instance without its generated ``__init__`` (one ``object.__setattr__`` per field):
    listing thousands of links spends most of its Python time there otherwise (bench/cli.py)."""
    obj = object.__new__(cls)
    obj.__dict__.update(fields)
    return obj


# value -> member for the members the compiled headers define: a dict lookup instead of an enum call
_LINK_TYPES = {m._value_: m for m in LinkType if m._value_ >= 0 and not m._name_.startswith("UNKNOWN_")}
_ATTACH_TYPES = {m._value_: m for m in AttachType if m._value_ >= 0}


def _at(value: Any) -> AttachType:
    v = int(value)
    member = _ATTACH_TYPES.get(v)  # not `or`: CGROUP_INET_INGRESS is 0, a falsy IntEnum member
    return member if member is not None else AttachType(v)


#: raw link type -> decoder, from the family records (bpflink.families: each family decodes its own links). A
#: decoder gets this module (its LinkInfo classes and the two-call helpers) as its last argument rather than
#: importing it: importing the family registry must not cost this module's dataclasses.
_DECODERS: dict[int, Callable[[int, Any, dict[str, Any], ModuleType], LinkInfo]] = {}


def _decoders() -> dict[int, Callable[[int, Any, dict[str, Any], ModuleType], LinkInfo]]:
    if not _DECODERS:
        from . import families  # deferred: only decoding needs the records

        table = {}
        for fam in families.all():
            for name, decoder in fam.info.items():
                lt = LinkType[name]
                if lt.available and f"struct bpf_link_info.{name.lower()}" not in ABSENT:  # headers lack it
                    table[lt._value_] = decoder
        _DECODERS.update(table)
    return _DECODERS


def _listed_uprobe_multi(fd: int, first: Any, base: dict[str, Any]) -> LinkInfo:
    """``links()``: the path now (one more call, no arrays), the arrays by id when asked (``_ById``)."""
    full, path = _refill_name(fd, first, "uprobe_multi", "path", "path_size")
    um = full.uprobe_multi
    fields = {**base, "path": path, "count": int(um.count), "flags": int(um.flags), "pid": int(um.pid)}
    # one array per call: the kernel copies only the arrays it is given
    groups: dict[str, tuple[str, ...]] = {n: (n,) for n in UprobeMultiLinkInfo._ARRAYS}
    return _lazy(UprobeMultiLinkInfo, fields, _ById(base["id"], int(first.type), "uprobe_multi", int(um.count),
                                                    groups))


def _listed_kprobe_multi(fd: int, first: Any, base: dict[str, Any]) -> LinkInfo:
    """``links()``: the first call has every scalar; the arrays by id when asked (``_ById``)."""
    km = first.kprobe_multi
    count = int(km.count)
    fields = {**base, "count": count, "flags": int(km.flags), "missed": _member(km, "missed")}
    both = ("addrs", "cookies")  # the kernel copies cookies only into a call that also takes addrs
    return _lazy(KprobeMultiLinkInfo, fields, _ById(base["id"], int(first.type), "kprobe_multi", count,
                                                    dict.fromkeys(both, both)))


#: link type name -> the decoder ``links()`` uses instead of the family's: variable arrays left for later
_LISTED = {"UPROBE_MULTI": _listed_uprobe_multi, "KPROBE_MULTI": _listed_kprobe_multi}
_LISTED_BY_VALUE = {LinkType[n]._value_: f for n, f in _LISTED.items()
                    if n in LinkType.__members__ and LinkType[n].available
                    and f"struct bpf_link_info.{n.lower()}" not in ABSENT}


def decode(fd: int, info: Any, *, lazy: bool = False) -> LinkInfo:
    """Decode a first-call ``info`` of the link behind ``fd``, making the second call where needed.

    ``lazy`` (``links()``): leave a multi-probe link's arrays unread until asked for (``UprobeMultiLinkInfo``);
    they are then read by the link's id, not through ``fd``, which the caller may close at once.
    """
    t = int(info.type)
    lt = _LINK_TYPES.get(t)
    base: dict[str, Any] = {"type": lt if lt is not None else LinkType(t), "id": int(info.id),
                            "prog_id": int(info.prog_id)}
    if lt is None:  # a type the compiled headers do not know (UNKNOWN_<n>)
        return _new(LinkInfo, base)
    if lazy:
        listed = _LISTED_BY_VALUE.get(t)
        if listed is not None:
            return listed(fd, info, base)
    decoder = (_DECODERS or _decoders()).get(t)
    if decoder is not None:
        return decoder(fd, info, base, sys.modules[__name__])
    return _new(LinkInfo, base)


def link_info(fd: int) -> LinkInfo:
    """Decode the link behind ``fd`` into the ``LinkInfo`` subclass of its type."""
    return decode(fd, raw_link_info(fd))


__all__ = [
    "CgroupLinkInfo", "IterLinkInfo", "KprobeMultiLinkInfo", "LinkInfo", "NetfilterLinkInfo", "NetkitLinkInfo",
    "NetnsLinkInfo", "PerfEventLinkInfo", "PerfEventType", "RawTracepointLinkInfo", "SockmapLinkInfo",
    "StructOpsLinkInfo", "TcxLinkInfo", "TracingLinkInfo", "UprobeMultiLinkInfo", "XdpLinkInfo", "decode",
    "link_info", "raw_link_info",
]
