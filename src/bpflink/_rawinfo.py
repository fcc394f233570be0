"""Link info straight to JSON-ready dicts and JSON text, for the command line and ``links()``'s walk.

``link_dict`` produces exactly ``bpflink.info.link_info(fd).to_dict()`` (tests/test_cli.py checks every kind the
tests create) without importing ``enum``, ``typing`` or ``dataclasses``: names come from the compiled headers'
own enum tables (``ffi.typeof("enum bpf_attach_type").elements``), arrays are unpacked by cffi in C (or, for
``show``, left in their C buffer as ``U64s``, whose JSON text is written in C).
``json_list`` is ``bpflink list --json``: the walk and the text of each link in C (include/linkjson.c), named
from the same tables, byte for byte what the Python writer prints (tests/test_listing_json.py).
"""

from __future__ import annotations

import os

from . import lowlevel as ll
from ._native import ABSENT, constant, ffi, has

TYPE_CHECKING = False  # typing's costs milliseconds of CLI start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

_INFO_SIZE = ffi.sizeof("struct bpf_link_info")
_NAME_FALLBACK = 4096  # kernels before 6.13 report no perf_event name length (info.py: same rule)
_ENOENT, _EAGAIN, _ENOSPC = 2, 11, 28
_ITER_MAP_TARGETS = frozenset({"bpf_map_elem", "bpf_sk_storage_map", "sockmap"})
_ITER_TASK_TARGETS = frozenset({"task", "task_file", "task_vma"})


def _names(ctype: str, prefix: str) -> dict[int, str]:
    try:
        elements = ffi.typeof(ctype).elements
    except (ffi.error, AttributeError):  # pragma: no cover - headers without the enum
        return {}
    return {v: n[len(prefix):].lower() for v, n in elements.items() if n.startswith(prefix)}


ATTACH_NAMES = _names("enum bpf_attach_type", "BPF_")
LINK_NAMES = _names("enum bpf_link_type", "BPF_LINK_TYPE_")
_PERF = {constant(f"BPF_PERF_EVENT_{n}"): n.lower()
         for n in ("UNSPEC", "UPROBE", "URETPROBE", "KPROBE", "KRETPROBE", "TRACEPOINT", "EVENT")
         if has(f"BPF_PERF_EVENT_{n}")}


def attach_name(value: int) -> str:
    return ATTACH_NAMES.get(value) or f"unknown_{value}"


def link_type_name(value: int) -> str:
    return LINK_NAMES.get(value) or f"unknown_{value}"


class InfoError(Exception):
    """A failed ``bpf_link_get_info_by_fd``: ``err`` is the errno (the caller words the exception)."""

    def __init__(self, err: int) -> None:
        super().__init__(err)
        self.err = err


def _get(fd: int, info: object) -> int:
    size = ffi.new("__u32 *", _INFO_SIZE)
    return ll.bpf_link_get_info_by_fd(fd, info, size)


def raw(fd: int) -> object:
    info = ffi.new("struct bpf_link_info *")
    ret = _get(fd, info)
    if ret < 0:
        raise InfoError(-ret)
    return info


def _again(fd: int, first: object) -> object:
    info = ffi.new("struct bpf_link_info *")
    info.type = first.type  # type: ignore[attr-defined]
    return info


def _call(fd: int, info: object) -> None:
    ret = _get(fd, info)
    if ret < 0 and -ret != _ENOSPC:  # ENOSPC: it grew in between; what fit was filled (info.py: same rule)
        raise InfoError(-ret)


def _str(buf: object) -> str:
    return str(ffi.string(buf).decode(errors="replace"))


def _buf(size: int) -> object:
    return ffi.new("char[]", max(size, 1) if size else _NAME_FALLBACK)


def _addr(buf: object) -> int:
    return int(ffi.cast("uintptr_t", buf))


def _member(obj: object, name: str) -> int:
    return int(getattr(obj, name, 0))


def link_dict(fd: int, info: object | None = None, *, raw_arrays: bool = False) -> dict[str, object]:
    """``LinkInfo.to_dict()`` of the link behind ``fd`` (``info``: a first call already made).

    ``raw_arrays``: offsets, addresses and cookies stay ``U64s`` (C buffers whose JSON text is written in C) instead
    of lists of ints: ``show ID --json`` of a link with 100,000 offsets makes no Python int for them.
    """
    i = raw(fd) if info is None else info
    t = int(i.type)  # type: ignore[attr-defined]
    name = LINK_NAMES.get(t)
    d: dict[str, object] = {"id": int(i.id), "type": name or f"unknown_{t}",  # type: ignore[attr-defined]
                            "prog_id": int(i.prog_id)}  # type: ignore[attr-defined]
    if name is None:
        return d
    fill = _DECODERS.get(name)
    if fill is not None:
        fill(fd, i, d)
        if not raw_arrays and name in _ARRAY_KINDS:
            for k, v in d.items():
                if type(v) is U64s:
                    d[k] = v.ints()
    return d


def _cgroup(fd: int, i: object, d: dict[str, object]) -> None:
    c = i.cgroup  # type: ignore[attr-defined]
    d["cgroup_id"] = int(c.cgroup_id)
    d["attach_type"] = attach_name(int(c.attach_type))


def _tcx(fd: int, i: object, d: dict[str, object]) -> None:
    c = i.tcx  # type: ignore[attr-defined]
    d["ifindex"] = int(c.ifindex)
    d["attach_type"] = attach_name(int(c.attach_type))


def _netkit(fd: int, i: object, d: dict[str, object]) -> None:
    c = i.netkit  # type: ignore[attr-defined]
    d["ifindex"] = int(c.ifindex)
    d["attach_type"] = attach_name(int(c.attach_type))


def _netns(fd: int, i: object, d: dict[str, object]) -> None:
    c = i.netns  # type: ignore[attr-defined]
    d["netns_ino"] = int(c.netns_ino)
    d["attach_type"] = attach_name(int(c.attach_type))


def _xdp(fd: int, i: object, d: dict[str, object]) -> None:
    d["ifindex"] = int(i.xdp.ifindex)  # type: ignore[attr-defined]


def _struct_ops(fd: int, i: object, d: dict[str, object]) -> None:
    d["map_id"] = int(i.struct_ops.map_id)  # type: ignore[attr-defined]


def _netfilter(fd: int, i: object, d: dict[str, object]) -> None:
    nf = i.netfilter  # type: ignore[attr-defined]
    d.update(pf=int(nf.pf), hooknum=int(nf.hooknum), priority=int(nf.priority), flags=int(nf.flags))


def _sockmap(fd: int, i: object, d: dict[str, object]) -> None:
    sm = getattr(i, "sockmap", None)
    if sm is None:  # headers without it: info.py decodes a plain LinkInfo
        return
    d["map_id"] = int(sm.map_id)
    d["attach_type"] = attach_name(int(sm.attach_type))


def _tracing(fd: int, i: object, d: dict[str, object]) -> None:
    tr = i.tracing  # type: ignore[attr-defined]
    d.update(attach_type=attach_name(int(tr.attach_type)), target_obj_id=int(tr.target_obj_id),
             target_btf_id=int(tr.target_btf_id), cookie=_member(tr, "cookie"))


def _raw_tp(fd: int, i: object, d: dict[str, object]) -> None:
    full = _again(fd, i)
    buf = _buf(int(i.raw_tracepoint.tp_name_len))  # type: ignore[attr-defined]
    full.raw_tracepoint.tp_name = _addr(buf)  # type: ignore[attr-defined]
    full.raw_tracepoint.tp_name_len = len(buf)  # type: ignore[attr-defined, arg-type]
    _call(fd, full)
    d["tp_name"] = _str(buf)
    d["cookie"] = _member(full.raw_tracepoint, "cookie")  # type: ignore[attr-defined]


def _iter(fd: int, i: object, d: dict[str, object]) -> None:
    full = _again(fd, i)
    buf = _buf(int(i.iter.target_name_len))  # type: ignore[attr-defined]
    full.iter.target_name = _addr(buf)  # type: ignore[attr-defined]
    full.iter.target_name_len = len(buf)  # type: ignore[attr-defined, arg-type]
    _call(fd, full)
    target = _str(buf)
    it = full.iter  # type: ignore[attr-defined]
    is_map, is_cg, is_task = target in _ITER_MAP_TARGETS, target == "cgroup", target in _ITER_TASK_TARGETS
    d.update(target_name=target, map_id=int(it.map.map_id) if is_map else None,
             cgroup_id=int(it.cgroup.cgroup_id) if is_cg else None, order=int(it.cgroup.order) if is_cg else None,
             tid=int(it.task.tid) if is_task else None, pid=int(it.task.pid) if is_task else None)


class Ints(list):  # type: ignore[type-arg]
    """A list known to hold only ints (an array the kernel filled): the JSON writer prints it in one step."""

    __slots__ = ()


class U64s:
    """``n`` unsigned 64-bit values in a C buffer the kernel filled: ``ints()`` makes the list, ``json(indent)`` the
    text the Python writer would print for that list (``_json(list, indent)``), written in C."""

    __slots__ = ("_buf", "_n")

    def __init__(self, buf: object, n: int) -> None:
        self._buf, self._n = buf, n

    def __len__(self) -> int:
        return self._n

    def head(self, k: int) -> list[int]:
        """The first ``k`` values (or fewer)."""
        return list(ffi.unpack(self._buf, min(k, self._n))) if self._n else []

    def ints(self) -> list[int]:
        return Ints(ffi.unpack(self._buf, self._n)) if self._n else Ints()

    def json(self, indent: str) -> str:
        if not self._n:
            return "[]"
        inner, outer = (indent + "  ").encode(), indent.encode()
        cap = 3 + self._n * (22 + len(inner)) + len(outer)  # "[", per value ",\n" inner and 20 digits, "\n" outer "]"
        out = ffi.new("char[]", cap)
        need = ll.bpflink_json_u64s(self._buf, self._n, inner, len(inner), outer, len(outer), out, cap)
        if need > cap:  # pragma: no cover - the bound above is the writer's worst case
            raise AssertionError(f"bpflink_json_u64s: {need} bytes > {cap}")
        return str(ffi.unpack(out, need).decode("ascii"))


def _unpack(buf: object, n: int) -> U64s:
    return U64s(buf, n)


def _kprobe_multi(fd: int, i: object, d: dict[str, object]) -> None:
    km = i.kprobe_multi  # type: ignore[attr-defined]
    count = int(km.count)
    addrs = cookies = None
    if count:
        full = _again(fd, i)
        addrs, cookies = ffi.new("__u64[]", count), ffi.new("__u64[]", count)
        full.kprobe_multi.addrs, full.kprobe_multi.cookies = _addr(addrs), _addr(cookies)  # type: ignore[attr-defined]
        full.kprobe_multi.count = count  # type: ignore[attr-defined]
        _call(fd, full)
        km = full.kprobe_multi  # type: ignore[attr-defined]
    n = min(count, int(km.count))
    d.update(addrs=_unpack(addrs, n) if addrs is not None else U64s(None, 0),
             cookies=_unpack(cookies, n) if cookies is not None else U64s(None, 0), count=int(km.count),
             flags=int(km.flags),
             missed=int(km.missed))


def _uprobe_multi(fd: int, i: object, d: dict[str, object]) -> None:
    um0 = i.uprobe_multi  # type: ignore[attr-defined]
    count = int(um0.count)
    full = _again(fd, i)
    path = _buf(int(um0.path_size))
    um = full.uprobe_multi  # type: ignore[attr-defined]
    um.path, um.path_size = _addr(path), len(path)  # type: ignore[arg-type]
    arrays = [ffi.new("__u64[]", count) for _ in range(3)] if count else []
    if count:
        um.offsets, um.ref_ctr_offsets, um.cookies = (_addr(a) for a in arrays)
        um.count = count
    _call(fd, full)
    um = full.uprobe_multi  # type: ignore[attr-defined]
    n = min(count, int(um.count))
    offs, refs, cookies = (_unpack(a, n) for a in arrays) if count else (U64s(None, 0),) * 3
    d.update(path=_str(path), offsets=offs, ref_ctr_offsets=refs, cookies=cookies, count=int(um.count),
             flags=int(um.flags), pid=int(um.pid))


_PERF_NAME = {"uprobe": ("uprobe", "file_name"), "uretprobe": ("uprobe", "file_name"),
              "kprobe": ("kprobe", "func_name"), "kretprobe": ("kprobe", "func_name"),
              "tracepoint": ("tracepoint", "tp_name")}


def _perf_event(fd: int, i: object, d: dict[str, object]) -> None:
    pe = i.perf_event  # type: ignore[attr-defined]
    t = int(pe.type)
    ptype = _PERF.get(t, "unspec")
    d["perf_type"] = ptype
    if t == 0:  # before 6.6: nothing reported (info.py: None rather than zero)
        d.update(dict.fromkeys(("name", "offset", "addr", "missed", "cookie", "ref_ctr_offset", "config",
                                "event_type")))
        return
    name = ""
    if ptype in _PERF_NAME:
        member, field = _PERF_NAME[ptype]
        full = _again(fd, i)
        buf = _buf(int(getattr(pe, member).name_len))
        part = getattr(full.perf_event, member)  # type: ignore[attr-defined]
        setattr(part, field, _addr(buf))
        part.name_len = len(buf)  # type: ignore[arg-type]
        _call(fd, full)
        pe, name = full.perf_event, _str(buf)  # type: ignore[attr-defined]
    f = dict(offset=0, addr=0, missed=0, cookie=0, ref_ctr_offset=0, config=0, event_type=0)
    if ptype in ("uprobe", "uretprobe"):
        f.update(offset=int(pe.uprobe.offset), cookie=int(pe.uprobe.cookie),
                 ref_ctr_offset=_member(pe.uprobe, "ref_ctr_offset"))
    elif ptype in ("kprobe", "kretprobe"):
        f.update(offset=int(pe.kprobe.offset), addr=int(pe.kprobe.addr), missed=int(pe.kprobe.missed),
                 cookie=int(pe.kprobe.cookie))
    elif ptype == "tracepoint":
        f.update(cookie=int(pe.tracepoint.cookie))
    elif ptype == "event":
        f.update(config=int(pe.event.config), event_type=int(pe.event.type), cookie=int(pe.event.cookie))
    d["name"] = name
    d.update(f)


_DECODERS = {
    "cgroup": _cgroup, "tcx": _tcx, "netkit": _netkit, "netns": _netns, "xdp": _xdp, "struct_ops": _struct_ops,
    "netfilter": _netfilter, "sockmap": _sockmap, "tracing": _tracing, "raw_tracepoint": _raw_tp, "iter": _iter,
    "kprobe_multi": _kprobe_multi, "uprobe_multi": _uprobe_multi, "perf_event": _perf_event,
}
_DECODERS = {k: f for k, f in _DECODERS.items() if f"struct bpf_link_info.{k}" not in ABSENT}  # headers lack it
_ARRAY_KINDS = frozenset({"kprobe_multi", "uprobe_multi"})  # the decoders that give U64s

#: the link-info field that reads 0 once a link of that type is detached from its hook
DETACHED_FIELD = {"cgroup": "cgroup_id", "tcx": "ifindex", "xdp": "ifindex", "netkit": "ifindex",
                  "netns": "netns_ino", "sockmap": "map_id", "struct_ops": "map_id"}


def is_detached(d: dict[str, object]) -> bool | None:
    """True/False for link types whose info shows detachment; None where the info cannot tell."""
    field = DETACHED_FIELD.get(str(d["type"]))
    if field is None or field not in d:
        return None
    return d[field] == 0


def json_names(attach: dict[int, str], link: dict[int, str], perf: dict[int, str]) -> list[object]:
    """``struct bpflink_json_names`` for ``bpflink_link_walk_json`` (first) and the buffers it points into."""
    names = ffi.new("struct bpflink_json_names *")
    keep: list[object] = [names]
    longest = 0
    for field, table in (("attach", attach), ("link", link), ("perf", perf)):
        table = {v: n for v, n in table.items() if 0 <= v < 4096}  # enum values: small and dense
        count = max(table, default=-1) + 1
        arr = ffi.new("char *[]", max(count, 1))
        for value, name in table.items():
            text = ffi.new("char[]", name.encode())
            keep.append(text)
            arr[value] = text
            longest = max(longest, len(name))
        keep.append(arr)
        setattr(names, field, arr)
        setattr(names, "n_" + field, count)
    names.name_max = longest
    return keep


_JSON_NAMES: list[object] = []  # built on first use from the tables the Python path names things with


_JSON_BUFFER = 1 << 18


def json_list(pending: Callable[[object, int], str | None], names: list[object] | None = None) -> Iterator[str]:
    """The text of ``bpflink list --json`` in chunks (about 256 KiB each), formatted in C
    (``bpflink_link_walk_json``, include/linkjson.c) exactly as the Python writer would.

    ``pending(info, fd)`` gives the list element of a link the C code leaves to Python (a link type it does not
    format, or a second info call that failed: the Python path reports that); None skips the link. The fd is
    closed here. ``names``: ``json_names(...)`` other than the headers' (tests). Raises ``InfoError`` when the
    walk itself fails (EPERM without CAP_SYS_ADMIN).
    """
    if names is None:
        if not _JSON_NAMES:
            _JSON_NAMES.extend(json_names(ATTACH_NAMES, LINK_NAMES, _PERF))
        names = _JSON_NAMES
    cnames = names[0]
    st = ffi.new("struct bpflink_json_walk *")
    st.first = 1
    cap = _JSON_BUFFER
    buf = ffi.new("char[]", cap)
    walk_json, unpack = ll.bpflink_link_walk_json, ffi.unpack
    while True:
        n = walk_json(st, cnames, buf, cap)
        if n < 0:
            raise InfoError(-n)
        if st.len:
            yield unpack(buf, st.len).decode("ascii")
        if st.need:  # one link's text alone outgrows the buffer: one as large as it says, for that link only
            cap = st.need
            buf = ffi.new("char[]", cap)
            continue
        if cap != _JSON_BUFFER and n:
            cap = _JSON_BUFFER
            buf = ffi.new("char[]", cap)
        fd = st.pending_fd
        if fd >= 0:
            try:
                text = pending(st.pending, fd)
            finally:
                os.close(fd)
            if text is not None:
                yield ("[\n  " if st.first else ",\n  ") + text
                st.first = 0
            continue
        if st.done:
            break
    yield "[]\n" if st.first else "\n]\n"


def json_string(data: bytes) -> str:
    """The C formatter's JSON string for ``data`` (the tests compare it with Python's for odd bytes)."""
    need = ll.bpflink_json_string(data, len(data), ffi.NULL, 0)
    out = ffi.new("char[]", need)
    if ll.bpflink_json_string(data, len(data), out, need) != need:
        raise AssertionError("bpflink_json_string: length changed")
    return str(ffi.unpack(out, need).decode("ascii"))


def walk(batch: int = 256) -> Iterator[tuple[object, int]]:
    """``(first-call info, fd or -1)`` of every link, from ``bpflink_link_walk`` (include/shims.c) in batches.

    The fd is open for the link types whose info may need a second call (the caller closes it) and -1 for
    the others (closed in C). Each info lives in a batch buffer: use it before the next item. Raises
    ``InfoError`` when the walk fails (EPERM without CAP_SYS_ADMIN).
    """
    infos = ffi.new("struct bpf_link_info[]", batch)
    fds = ffi.new("int[]", batch)
    last, done = ffi.new("__u32 *"), ffi.new("int *")
    start = 0
    while True:
        n = ll.bpflink_link_walk(start, infos, fds, batch, last, done)
        if n < 0:
            raise InfoError(-n)
        i = 0
        try:
            while i < n:
                fd = fds[i]
                yield infos[i], fd
                i += 1
        finally:
            for j in range(i + 1, n):  # a consumer that stops early leaks none of the batch's open fds
                if fds[j] >= 0:
                    os.close(fds[j])
        if done[0]:
            return
        start = int(last[0])


__all__ = ["ATTACH_NAMES", "LINK_NAMES", "InfoError", "attach_name", "is_detached", "link_dict", "link_type_name"]
