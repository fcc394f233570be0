"""The exact C mirror: one function per libbpf call, returning what C returns (an fd, 0, or -errno).

No policy, no exceptions from errno: the facade (``bpflink.link_create`` and friends) adds those.
Pointers are cffi objects; ``new_*_opts()`` give zeroed opts structs with ``sz`` already set.

>>> from bpflink import lowlevel
>>> opts = lowlevel.new_link_create_opts()
>>> int(opts.sz) == lowlevel.ffi.sizeof("struct bpf_link_create_opts")
True
"""

from __future__ import annotations

from typing import Any

from ._native import ffi as ffi
from ._native import lib as lib

CData = Any  # a cffi pointer; cffi has no static types
NULL = ffi.NULL


def _new_opts(ctype: str) -> CData:
    opts = ffi.new(f"struct {ctype} *")  # zero-filled: libbpf rejects stray bytes past known fields
    opts.sz = ffi.sizeof(f"struct {ctype}")
    return opts


def new_link_create_opts() -> CData:
    """A zeroed ``struct bpf_link_create_opts *`` with ``sz`` set."""
    return _new_opts("bpf_link_create_opts")


def new_link_update_opts() -> CData:
    """A zeroed ``struct bpf_link_update_opts *`` with ``sz`` set."""
    return _new_opts("bpf_link_update_opts")


def new_prog_load_opts() -> CData:
    """A zeroed ``struct bpf_prog_load_opts *`` with ``sz`` set."""
    return _new_opts("bpf_prog_load_opts")


def new_map_create_opts() -> CData:
    """A zeroed ``struct bpf_map_create_opts *`` with ``sz`` set."""
    return _new_opts("bpf_map_create_opts")


def new_prog_query_opts() -> CData:
    """A zeroed ``struct bpf_prog_query_opts *`` with ``sz`` set."""
    return _new_opts("bpf_prog_query_opts")


def bpf_link_create(prog_fd: int, target_fd: int, attach_type: int, opts: CData | None = None) -> int:
    """``int bpf_link_create(int prog_fd, int target_fd, enum bpf_attach_type, const opts *)``."""
    ret: int = lib.bpf_link_create(prog_fd, target_fd, attach_type, NULL if opts is None else opts)
    return ret  # cffi already returns a Python int for C int; int() would only cost time on the hot path


def bpf_link_update(link_fd: int, new_prog_fd: int, opts: CData | None = None) -> int:
    """``int bpf_link_update(int link_fd, int new_prog_fd, const struct bpf_link_update_opts *)``."""
    return int(lib.bpf_link_update(link_fd, new_prog_fd, NULL if opts is None else opts))


def bpf_link_detach(link_fd: int) -> int:
    """``int bpf_link_detach(int link_fd)``."""
    return int(lib.bpf_link_detach(link_fd))


def bpf_prog_attach(prog_fd: int, attachable_fd: int, attach_type: int, flags: int) -> int:
    """``int bpf_prog_attach(int prog_fd, int attachable_fd, enum bpf_attach_type, unsigned int flags)``."""
    return int(lib.bpf_prog_attach(prog_fd, attachable_fd, attach_type, flags))


def bpf_prog_detach2(prog_fd: int, attachable_fd: int, attach_type: int) -> int:
    """``int bpf_prog_detach2(int prog_fd, int attachable_fd, enum bpf_attach_type)``."""
    return int(lib.bpf_prog_detach2(prog_fd, attachable_fd, attach_type))


def bpf_iter_create(link_fd: int) -> int:
    """``int bpf_iter_create(int link_fd)``: an fd to read the iterator's output from."""
    return int(lib.bpf_iter_create(link_fd))


def bpf_link_get_next_id(start_id: int, next_id: CData) -> int:
    """``int bpf_link_get_next_id(__u32 start_id, __u32 *next_id)``."""
    return int(lib.bpf_link_get_next_id(start_id, next_id))


def bpf_link_get_fd_by_id(link_id: int) -> int:
    """``int bpf_link_get_fd_by_id(__u32 id)``."""
    return int(lib.bpf_link_get_fd_by_id(link_id))


def bpf_link_get_info_by_fd(link_fd: int, info: CData, info_len: CData) -> int:
    """``int bpf_link_get_info_by_fd(int fd, struct bpf_link_info *info, __u32 *info_len)``."""
    return int(lib.bpf_link_get_info_by_fd(link_fd, info, info_len))


def bpf_prog_get_info_by_fd(prog_fd: int, info: CData, info_len: CData) -> int:
    """``int bpf_prog_get_info_by_fd(int fd, struct bpf_prog_info *info, __u32 *info_len)``."""
    return int(lib.bpf_prog_get_info_by_fd(prog_fd, info, info_len))


def bpf_prog_get_fd_by_id(prog_id: int) -> int:
    """``int bpf_prog_get_fd_by_id(__u32 id)``."""
    return int(lib.bpf_prog_get_fd_by_id(prog_id))


def bpf_obj_pin(fd: int, path: bytes) -> int:
    """``int bpf_obj_pin(int fd, const char *pathname)``."""
    return int(lib.bpf_obj_pin(fd, path))


def bpf_obj_get(path: bytes) -> int:
    """``int bpf_obj_get(const char *pathname)``."""
    return int(lib.bpf_obj_get(path))


def bpf_prog_load(prog_type: int, name: bytes | None, license: bytes, insns: CData, insn_cnt: int,
                  opts: CData | None = None) -> int:
    """``int bpf_prog_load(type, name, license, const struct bpf_insn *, size_t cnt, opts *)``."""
    return int(lib.bpf_prog_load(prog_type, NULL if name is None else name, license, insns, insn_cnt,
                                 NULL if opts is None else opts))


def bpf_map_create(map_type: int, name: bytes | None, key_size: int, value_size: int, max_entries: int,
                   opts: CData | None = None) -> int:
    """``int bpf_map_create(type, name, key_size, value_size, max_entries, opts *)``."""
    return int(lib.bpf_map_create(map_type, NULL if name is None else name, key_size, value_size,
                                  max_entries, NULL if opts is None else opts))


def bpf_map_lookup_elem(fd: int, key: CData, value: CData) -> int:
    """``int bpf_map_lookup_elem(int fd, const void *key, void *value)``."""
    return int(lib.bpf_map_lookup_elem(fd, key, value))


def bpf_map_update_elem(fd: int, key: CData, value: CData, flags: int) -> int:
    """``int bpf_map_update_elem(int fd, const void *key, const void *value, __u64 flags)``."""
    return int(lib.bpf_map_update_elem(fd, key, value, flags))


def bpf_map_delete_elem(fd: int, key: CData) -> int:
    """``int bpf_map_delete_elem(int fd, const void *key)``."""
    return int(lib.bpf_map_delete_elem(fd, key))


def bpf_map_get_next_key(fd: int, key: CData, next_key: CData) -> int:
    """``int bpf_map_get_next_key(int fd, const void *key, void *next_key)``."""
    return int(lib.bpf_map_get_next_key(fd, key, next_key))


def bpf_prog_query_opts(target: int, attach_type: int, opts: CData) -> int:
    """``int bpf_prog_query_opts(int target, enum bpf_attach_type, struct bpf_prog_query_opts *)``."""
    return int(lib.bpf_prog_query_opts(target, attach_type, opts))


__all__ = [name for name in dir() if name.startswith(("bpf_", "new_"))] + ["NULL", "ffi", "lib"]
