"""``links()``: every BPF link on the system, like ``bpftool link list``.

>>> # not run as a doctest: prints this machine's links, different everywhere
>>> for info in bpflink.links():  # doctest: +SKIP
...     print(info.id, info.type.name, info.prog_id)

Memory stays flat in the number of links: links are opened, read and closed in batches of 256 (in C), and
decoded one at a time.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import struct
from collections.abc import Iterator
from typing import Any

from . import info as _info
from . import lowlevel as ll
from .enums import AttachType, LinkType
from .errors import check
from .info import LinkInfo, decode

ffi = ll.ffi
_INFO_SIZE = ffi.sizeof("struct bpf_link_info")
_EPERM_HINT = "walking and opening links by id (BPF_LINK_GET_NEXT_ID, BPF_LINK_GET_FD_BY_ID) needs CAP_SYS_ADMIN"
_BATCH = 256


def _walk_failed(ret: int, what: str) -> None:
    check(ret, what, hint=_EPERM_HINT if ret == -errno.EPERM else None)


def link_ids() -> Iterator[int]:
    """The ids of all links, ascending (``bpf_link_get_next_id`` until ``ENOENT``)."""
    next_id = ffi.new("__u32 *")
    current = 0
    while True:
        ret = ll.bpf_link_get_next_id(current, next_id)
        if ret == -errno.ENOENT:
            return
        if ret < 0:
            _walk_failed(ret, f"link_get_next_id({current})")
        current = int(next_id[0])
        yield current


# The fixed-size link types most hosts carry thousands of, read from the batch buffer by one struct.unpack_from
# each (a cffi attribute access per member costs more than the whole unpack): value -> (layout, class, field
# names in layout order, index of the attach type or -1, the LinkType). Offsets come from the compiled headers.
_Fast = tuple[struct.Struct, type[LinkInfo], tuple[str, ...], int, LinkType]


def _fast_entry(lt: LinkType, cls: type[LinkInfo], member: str, fields: tuple[tuple[str, str], ...]) -> _Fast | None:
    names = ("type", "id", "prog_id", *(n for n, _ in fields))
    if {f.name for f in dataclasses.fields(cls)} != set(names):  # the dataclass changed: decode() does it
        return None
    fmt, pos = "=", 0
    try:
        spots = [(ffi.offsetof("struct bpf_link_info", n), c) for n, c in (("type", "I"), ("id", "I"),
                                                                             ("prog_id", "I"))]
        spots += [(ffi.offsetof("struct bpf_link_info", member, n), c) for n, c in fields]
    except (AttributeError, KeyError, TypeError, ffi.error):  # headers without the member
        return None
    for off, code in spots:
        if off < pos:
            return None
        fmt += "x" * (off - pos) + code
        pos = off + struct.calcsize("=" + code)
    return struct.Struct(fmt), cls, names, names.index("attach_type") if "attach_type" in names else -1, lt


def _fast_table() -> dict[int, _Fast]:
    at = (("attach_type", "I"),)
    wanted: list[tuple[str, str, str, tuple[tuple[str, str], ...]]] = [
        ("CGROUP", "CgroupLinkInfo", "cgroup", (("cgroup_id", "Q"), *at)),
        ("TCX", "TcxLinkInfo", "tcx", (("ifindex", "I"), *at)),
        ("NETKIT", "NetkitLinkInfo", "netkit", (("ifindex", "I"), *at)),
        ("NETNS", "NetnsLinkInfo", "netns", (("netns_ino", "I"), *at)),
        ("XDP", "XdpLinkInfo", "xdp", (("ifindex", "I"),)),
        ("STRUCT_OPS", "StructOpsLinkInfo", "struct_ops", (("map_id", "I"),)),
        ("NETFILTER", "NetfilterLinkInfo", "netfilter", (("pf", "I"), ("hooknum", "I"), ("priority", "i"),
                                                         ("flags", "I"))),
    ]
    table = {}
    for lt_name, cls_name, member, fields in wanted:
        lt = getattr(LinkType, lt_name, None)
        cls = getattr(_info, cls_name, None)
        if lt is None or cls is None or not lt.available or lt._value_ < 0:
            continue
        entry = _fast_entry(lt, cls, member, fields)
        if entry is not None:
            table[lt._value_] = entry
    return table


_FAST = _fast_table()
_ATTACH = {m._value_: m for m in AttachType if m._value_ >= 0}
_TYPE_WORD = ffi.offsetof("struct bpf_link_info", "type") // 4  # the type as the n-th __u32 of an info


def links() -> Iterator[LinkInfo]:
    """Decoded info of every link on the system. Needs CAP_SYS_ADMIN (``PermissionError`` otherwise).

    A link released between its id being listed and opened (``ENOENT``) is skipped, not an error; so is one
    still being set up (``EAGAIN``: the kernel has reserved its id but not yet settled it, and the creator may
    still abort it).

    The arrays of uprobe_multi and kprobe_multi links (``offsets``, ``ref_ctr_offsets``, ``addrs``, ``cookies``:
    up to a million values each) are not read while listing: the first access to one opens the link again by
    id and reads that array (``FileNotFoundError`` naming the link if it is gone by then; ``Link.info()`` reads
    them at once). No fd stays open for them.
    """
    # ids, fds and first info calls in C, 256 links per crossing (bpflink_link_walk in include/shims.c): the
    # fd stays open only for types whose decoding may make a second call (names, arrays) or that the C side
    # does not close. bench/cli.py compares this walk with the same loop in C.
    infos = ffi.new("struct bpf_link_info[]", _BATCH)
    fds = ffi.new("int[]", _BATCH)
    last, done = ffi.new("__u32 *"), ffi.new("int *")
    raw = ffi.buffer(infos)
    words = memoryview(raw).cast("B").cast("I")  # native __u32s: the type of info i at i * step + _TYPE_WORD
    walk, close, new = ll.bpflink_link_walk, os.close, object.__new__
    fast_get, attach_get, size, step = _FAST.get, _ATTACH.get, _INFO_SIZE, _INFO_SIZE // 4
    start = 0
    while True:
        n = int(walk(start, infos, fds, _BATCH, last, done))
        if n < 0:
            _walk_failed(n, "link walk (BPF_LINK_GET_NEXT_ID, GET_FD_BY_ID, GET_INFO_BY_FD)")
        batch_fds = ffi.unpack(fds, n)
        i = 0
        try:
            while i < n:
                fd = batch_fds[i]
                fast = fast_get(words[i * step + _TYPE_WORD])
                if fast is not None:
                    if fd >= 0:
                        close(fd)
                        batch_fds[i] = -1
                    layout, cls, names, at_index, lt = fast
                    values = layout.unpack_from(raw, i * size)
                    fields: dict[str, Any] = dict(zip(names, values))
                    fields["type"] = lt
                    if at_index >= 0:
                        v = values[at_index]
                        at = attach_get(v)
                        fields["attach_type"] = at if at is not None else AttachType(v)
                    decoded: LinkInfo = new(cls)
                    decoded.__dict__.update(fields)
                elif fd < 0:
                    decoded = decode(fd, infos[i], lazy=True)
                else:
                    try:
                        decoded = decode(fd, infos[i], lazy=True)
                    finally:
                        close(fd)  # before yielding: a consumer that stops early leaks nothing
                        batch_fds[i] = -1
                i += 1
                yield decoded
        finally:
            for fd in batch_fds[i:]:  # a consumer that stops early (or a failed decode) leaks no open fd
                if fd >= 0:
                    close(fd)
        if done[0]:
            return
        start = int(last[0])


__all__ = ["link_ids", "links"]
