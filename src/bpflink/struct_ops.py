"""struct_ops maps for ``BPF_STRUCT_OPS`` links: write the map's value the way the kernel lays it out.

A struct_ops map created with ``BPF_F_LINK`` (libbpf does so for ``SEC(".struct_ops.link")``) registers
nothing until a link is created, and the kernel refuses the link (``EINVAL``) until the map holds its value:
``struct bpf_struct_ops_<type>`` whose ``data`` member is the ops struct, with each function pointer slot
holding the fd of the program that implements it. libbpf writes that value only inside its own attach
call, so ``write_value`` builds it from vmlinux BTF and ``bpf_map_update_elem``.

>>> # not run as a doctest: needs a loaded object `obj` with a struct_ops map (tests/test_struct_ops.py)
>>> ops = obj.map("my_cc")  # doctest: +SKIP
>>> write_value(ops, "tcp_congestion_ops", {"ssthresh": obj.program("ssthresh"), "name": b"my_cc"})  # doctest: +SKIP
>>> link = link_create(ops, None, AttachType.STRUCT_OPS)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Union

from . import lowlevel as ll
from ._fd import FdLike, HasFileno, as_fd
from .errors import check, error
from .map import Map

#: a member value: a program (fd or fd owner) for a function pointer, bytes for arrays, int for integers
Member = Union[FdLike, bytes]


def _members(btf: Any, type_id: int) -> Iterator[tuple[str, int, int]]:
    """(name, byte offset, type id) of each member of struct ``type_id``."""
    t = ll.btf__type_by_id(btf, type_id)
    vlen = t.info & 0xFFFF
    kind_flag = t.info >> 31
    members = ll.ffi.cast("struct btf_member *", ll.ffi.cast("char *", t) + ll.ffi.sizeof("struct btf_type"))
    for i in range(vlen):
        m = members[i]
        bits = m.offset & 0xFFFFFF if kind_flag else m.offset  # kind_flag: bitfield size in the top byte
        yield ll.ffi.string(ll.btf__name_by_offset(btf, m.name_off)).decode(), bits // 8, int(m.type)


def _struct_id(btf: Any, name: str) -> int:
    tid = int(ll.btf__find_by_name_kind(btf, name.encode(), ll.BTF_KIND_STRUCT))
    if tid < 0:
        raise ValueError(f"vmlinux BTF has no struct {name}: the kernel lacks this struct_ops type")
    return tid


def build_value(type_name: str, members: Mapping[str, Member], value_size: int | None = None) -> bytes:
    """The bytes of ``struct bpf_struct_ops_<type_name>`` with ``members`` filled (others zero).

    Function pointer members take a program (its fd goes in the slot), array members bytes (zero-padded),
    integer members an int. ``ValueError`` for unknown members or sizes that do not fit.
    """
    if not isinstance(type_name, str) or not type_name or "\0" in type_name:
        raise (TypeError if not isinstance(type_name, str) else ValueError)(
            f"type_name must be a non-empty struct name without NUL, got {type_name!r}")
    btf = ll.btf__load_vmlinux_btf()
    err = ll.libbpf_get_error(btf)
    if err:
        raise error(-err, "btf__load_vmlinux_btf", hint="the kernel needs CONFIG_DEBUG_INFO_BTF")
    try:
        value_id = _struct_id(btf, f"bpf_struct_ops_{type_name}")
        size = int(ll.btf__resolve_size(btf, value_id))
        if value_size is not None and value_size != size:
            raise ValueError(f"the map's value is {value_size} bytes, struct bpf_struct_ops_{type_name} {size}: "
                             f"is it a struct_ops map of {type_name}?")
        data_off = {name: off for name, off, _ in _members(btf, value_id)}.get("data")
        if data_off is None:
            raise ValueError(f"struct bpf_struct_ops_{type_name} has no data member")
        layout = {name: (off, tid) for name, off, tid in _members(btf, _struct_id(btf, type_name))}
        buf = bytearray(size)
        for name, value in members.items():
            if name not in layout:
                raise ValueError(f"struct {type_name} has no member {name!r}; it has {sorted(layout)}")
            off, tid = layout[name]
            msize = int(ll.btf__resolve_size(btf, tid))
            if isinstance(value, (bytes, bytearray)):
                if len(value) >= msize:
                    raise ValueError(f"{name} takes at most {msize - 1} bytes (NUL-terminated), got {len(value)}")
                raw = bytes(value)
            elif isinstance(value, HasFileno) or (isinstance(value, int) and not isinstance(value, bool)):
                fd = as_fd(value, name)
                if msize <= 0 or fd >> (8 * msize):  # a raw OverflowError otherwise
                    raise ValueError(f"{name} is a {msize}-byte member: {fd} does not fit")
                raw = fd.to_bytes(msize, "little")  # a function pointer slot holds a prog fd
            else:
                raise TypeError(f"{name} must be a program (fd or fileno()) or bytes, not {type(value).__name__}")
            start = data_off + off
            buf[start:start + len(raw)] = raw
        return bytes(buf)
    finally:
        ll.btf__free(btf)


def write_value(ops_map: Map, type_name: str, members: Mapping[str, Member]) -> None:
    """Build the value (``build_value``) and store it in the struct_ops map (key 0); once per map."""
    value = build_value(type_name, members, ops_map.value_size or None)
    key = ll.ffi.new("__u32 *", 0)
    check(ll.bpf_map_update_elem(ops_map.fd, key, ll.ffi.from_buffer(value), 0),
          f"struct_ops map {ops_map.name or ops_map.fd}: write value",
          hint="each program must be the one loaded for that member (libbpf sets its attach type); a value "
               "already written cannot change (EBUSY)")


__all__ = ["Member", "build_value", "write_value"]
