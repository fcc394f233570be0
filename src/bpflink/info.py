"""Typed, frozen views of ``struct bpf_link_info``: one dataclass per link type, all of them ``LinkInfo``.

Variable-length parts (names, paths, address and offset arrays) take a second ``bpf_link_get_info_by_fd``
call with buffers sized from the first. A link type the compiled headers do not know (a newer kernel) gives
the plain ``LinkInfo``.

>>> # not run as a doctest: needs a link; ids differ on every machine
>>> link.info()  # doctest: +SKIP
CgroupLinkInfo(type=<LinkType.CGROUP: 3>, id=12, prog_id=40, cgroup_id=5301, attach_type=<AttachType...>)
"""

from __future__ import annotations

import dataclasses
import enum
import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import lowlevel as ll
from ._native import ABSENT, constant, has
from .enums import AttachType, LinkType
from .errors import check

_ffi = ll.ffi
_INFO_SIZE = _ffi.sizeof("struct bpf_link_info")
# kernels before 6.13 do not report perf_event name lengths: fall back to a buffer this large (PATH_MAX)
_NAME_FALLBACK = 4096
# iterator targets whose link info carries a map id, a cgroup, or a task (kernel fill_link_info callbacks)
_ITER_MAP_TARGETS = frozenset({"bpf_map_elem", "bpf_sk_storage_map", "sockmap"})
_ITER_TASK_TARGETS = frozenset({"task", "task_file", "task_vma"})


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


@dataclass(frozen=True)
class KprobeMultiLinkInfo(LinkInfo):
    """``addrs`` are zeros unless the caller may see kernel addresses (kptr_restrict)."""

    addrs: tuple[int, ...]
    cookies: tuple[int, ...]
    count: int
    flags: int
    missed: int


@dataclass(frozen=True)
class UprobeMultiLinkInfo(LinkInfo):
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


def _array(buf: Any, count: int) -> tuple[int, ...]:
    # ffi.unpack converts in C: 100,000 offsets in ~2 ms instead of ~30 ms element by element
    return tuple(_ffi.unpack(buf, count)) if buf is not None and count else ()


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


# --- per type -----------------------------------------------------------------------------------------------


def _raw_tp(fd: int, info: Any, base: dict[str, Any]) -> LinkInfo:
    def fill(i: Any) -> list[Any]:
        buf = _name_buffer(info.raw_tracepoint.tp_name_len)
        i.raw_tracepoint.tp_name = int(_ffi.cast("uintptr_t", buf))
        i.raw_tracepoint.tp_name_len = len(buf)
        return [buf]

    full, (buf,) = _refill(fd, info, fill)
    return RawTracepointLinkInfo(**base, tp_name=_string(buf), cookie=_member(full, "raw_tracepoint.cookie"))


def _iter(fd: int, info: Any, base: dict[str, Any]) -> LinkInfo:
    def fill(i: Any) -> list[Any]:
        buf = _name_buffer(info.iter.target_name_len)
        i.iter.target_name = int(_ffi.cast("uintptr_t", buf))
        i.iter.target_name_len = len(buf)
        return [buf]

    full, (buf,) = _refill(fd, info, fill)
    target = _string(buf)
    it = full.iter
    is_map, is_cgroup, is_task = target in _ITER_MAP_TARGETS, target == "cgroup", target in _ITER_TASK_TARGETS
    return IterLinkInfo(
        **base, target_name=target,
        map_id=int(it.map.map_id) if is_map else None,
        cgroup_id=int(it.cgroup.cgroup_id) if is_cgroup else None,
        order=int(it.cgroup.order) if is_cgroup else None,
        tid=int(it.task.tid) if is_task else None,
        pid=int(it.task.pid) if is_task else None,
    )


def _kprobe_multi(fd: int, info: Any, base: dict[str, Any]) -> LinkInfo:
    km = info.kprobe_multi
    count = int(km.count)
    addrs = cookies = None
    if count:
        def fill(i: Any) -> list[Any]:
            a, c = _ffi.new("__u64[]", count), _ffi.new("__u64[]", count)
            i.kprobe_multi.addrs = int(_ffi.cast("uintptr_t", a))
            i.kprobe_multi.cookies = int(_ffi.cast("uintptr_t", c))
            i.kprobe_multi.count = count
            return [a, c]

        info, (addrs, cookies) = _refill(fd, info, fill)
        km = info.kprobe_multi
    n = min(count, int(km.count))
    return KprobeMultiLinkInfo(**base, addrs=_array(addrs, n), cookies=_array(cookies, n), count=int(km.count),
                               flags=int(km.flags), missed=int(km.missed))


def _uprobe_multi(fd: int, info: Any, base: dict[str, Any]) -> LinkInfo:
    count = int(info.uprobe_multi.count)
    path_size = int(info.uprobe_multi.path_size)

    def fill(i: Any) -> list[Any]:
        path = _name_buffer(path_size)
        i.uprobe_multi.path = int(_ffi.cast("uintptr_t", path))
        i.uprobe_multi.path_size = len(path)
        arrays = [_ffi.new("__u64[]", count) for _ in range(3)] if count else [None] * 3
        if count:
            i.uprobe_multi.offsets, i.uprobe_multi.ref_ctr_offsets, i.uprobe_multi.cookies = (
                int(_ffi.cast("uintptr_t", a)) for a in arrays)
            i.uprobe_multi.count = count
        return [path, *arrays]

    full, (path, offsets, refs, cookies) = _refill(fd, info, fill)
    um = full.uprobe_multi
    n = min(count, int(um.count))
    return UprobeMultiLinkInfo(**base, path=_string(path), offsets=_array(offsets, n),
                               ref_ctr_offsets=_array(refs, n), cookies=_array(cookies, n), count=int(um.count),
                               flags=int(um.flags), pid=int(um.pid))


# which perf_event member holds the name pointer, per event type
_PERF_NAME = {
    PerfEventType.UPROBE: ("uprobe", "file_name"), PerfEventType.URETPROBE: ("uprobe", "file_name"),
    PerfEventType.KPROBE: ("kprobe", "func_name"), PerfEventType.KRETPROBE: ("kprobe", "func_name"),
    PerfEventType.TRACEPOINT: ("tracepoint", "tp_name"),
}


def _perf_event(fd: int, info: Any, base: dict[str, Any]) -> LinkInfo:
    pe = info.perf_event
    try:
        ptype = PerfEventType(int(pe.type))
    except ValueError:
        ptype = PerfEventType.UNSPEC
    if int(pe.type) == 0:  # the kernel (< 6.6) has no fill_link_info for perf_event links
        return PerfEventLinkInfo(**base, perf_type=ptype, name=None, offset=None, addr=None, missed=None,
                                 cookie=None, ref_ctr_offset=None, config=None, event_type=None)
    name = ""
    if ptype in _PERF_NAME:
        member, field = _PERF_NAME[ptype]

        def fill(i: Any) -> list[Any]:
            buf = _name_buffer(int(getattr(pe, member).name_len))
            part = getattr(i.perf_event, member)
            setattr(part, field, int(_ffi.cast("uintptr_t", buf)))
            part.name_len = len(buf)
            return [buf]

        info, (buf,) = _refill(fd, info, fill)
        pe, name = info.perf_event, _string(buf)
    fields: dict[str, Any] = dict(offset=0, addr=0, missed=0, cookie=0, ref_ctr_offset=0, config=0, event_type=0)
    if ptype in (PerfEventType.UPROBE, PerfEventType.URETPROBE):
        fields.update(offset=int(pe.uprobe.offset), cookie=int(pe.uprobe.cookie),
                      ref_ctr_offset=_member(pe, "uprobe.ref_ctr_offset"))
    elif ptype in (PerfEventType.KPROBE, PerfEventType.KRETPROBE):
        fields.update(offset=int(pe.kprobe.offset), addr=int(pe.kprobe.addr), missed=int(pe.kprobe.missed),
                      cookie=int(pe.kprobe.cookie))
    elif ptype == PerfEventType.TRACEPOINT:
        fields.update(cookie=int(pe.tracepoint.cookie))
    elif ptype == PerfEventType.EVENT:
        fields.update(config=int(pe.event.config), event_type=int(pe.event.type), cookie=int(pe.event.cookie))
    return PerfEventLinkInfo(**base, perf_type=ptype, name=name, **fields)


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


def _tracing(info: Any, base: dict[str, Any]) -> LinkInfo:
    tr = info.tracing
    base.update(attach_type=_at(tr.attach_type), target_obj_id=int(tr.target_obj_id),
                target_btf_id=int(tr.target_btf_id), cookie=_member(info, "tracing.cookie"))
    return _new(TracingLinkInfo, base)


def _cgroup(info: Any, base: dict[str, Any]) -> LinkInfo:
    c = info.cgroup
    base["cgroup_id"] = int(c.cgroup_id)
    base["attach_type"] = _at(c.attach_type)
    return _new(CgroupLinkInfo, base)


def _netns(info: Any, base: dict[str, Any]) -> LinkInfo:
    n = info.netns
    base["netns_ino"] = int(n.netns_ino)
    base["attach_type"] = _at(n.attach_type)
    return _new(NetnsLinkInfo, base)


def _xdp(info: Any, base: dict[str, Any]) -> LinkInfo:
    base["ifindex"] = int(info.xdp.ifindex)
    return _new(XdpLinkInfo, base)


def _struct_ops(info: Any, base: dict[str, Any]) -> LinkInfo:
    base["map_id"] = int(info.struct_ops.map_id)
    return _new(StructOpsLinkInfo, base)


def _netfilter(info: Any, base: dict[str, Any]) -> LinkInfo:
    nf = info.netfilter
    base.update(pf=int(nf.pf), hooknum=int(nf.hooknum), priority=int(nf.priority), flags=int(nf.flags))
    return _new(NetfilterLinkInfo, base)


def _tcx(info: Any, base: dict[str, Any]) -> LinkInfo:
    t = info.tcx
    base["ifindex"] = int(t.ifindex)
    base["attach_type"] = _at(t.attach_type)
    return _new(TcxLinkInfo, base)


def _netkit(info: Any, base: dict[str, Any]) -> LinkInfo:
    n = info.netkit
    base["ifindex"] = int(n.ifindex)
    base["attach_type"] = _at(n.attach_type)
    return _new(NetkitLinkInfo, base)


def _sockmap(info: Any, base: dict[str, Any]) -> LinkInfo:
    if not hasattr(info, "sockmap"):  # headers without it: the plain LinkInfo
        return _new(LinkInfo, base)
    sm = info.sockmap
    base["map_id"] = int(sm.map_id)
    base["attach_type"] = _at(sm.attach_type)
    return _new(SockmapLinkInfo, base)


#: the link types without variable-length parts (one call was enough), by raw value
_FIXED: dict[int, Callable[[Any, dict[str, Any]], LinkInfo]] = {
    t._value_: f for t, f in (
        (LinkType.TRACING, _tracing), (LinkType.CGROUP, _cgroup), (LinkType.NETNS, _netns), (LinkType.XDP, _xdp),
        (LinkType.STRUCT_OPS, _struct_ops), (LinkType.NETFILTER, _netfilter), (LinkType.TCX, _tcx),
        (LinkType.NETKIT, _netkit), (LinkType.SOCKMAP, _sockmap))
    if t.available and f"struct bpf_link_info.{t.name.lower()}" not in ABSENT  # the headers lack its member
}

_VARIABLE: dict[int, Callable[[int, Any, dict[str, Any]], LinkInfo]] = {
    t._value_: f for t, f in (
        (LinkType.RAW_TRACEPOINT, _raw_tp), (LinkType.ITER, _iter), (LinkType.KPROBE_MULTI, _kprobe_multi),
        (LinkType.UPROBE_MULTI, _uprobe_multi), (LinkType.PERF_EVENT, _perf_event))
    if t.available and f"struct bpf_link_info.{t.name.lower()}" not in ABSENT
}


def decode(fd: int, info: Any) -> LinkInfo:
    """Decode a first-call ``info`` of the link behind ``fd``, making the second call where needed."""
    t = int(info.type)
    lt = _LINK_TYPES.get(t)
    base: dict[str, Any] = {"type": lt if lt is not None else LinkType(t), "id": int(info.id),
                            "prog_id": int(info.prog_id)}
    if lt is None:  # a type the compiled headers do not know (UNKNOWN_<n>)
        return _new(LinkInfo, base)
    fixed = _FIXED.get(t)
    if fixed is not None:
        return fixed(info, base)
    variable = _VARIABLE.get(t)
    if variable is not None:
        return variable(fd, info, base)
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
