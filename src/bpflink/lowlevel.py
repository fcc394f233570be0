"""The exact C mirror: one function per C call the package makes (libbpf, bpf(), libelf, bpflink's own C
helpers), returning what C returns (an fd, 0, -errno, a pointer), and the C constants passed to them.

No policy, no exceptions from errno: the facade (``bpflink.link_create`` and friends) adds those, through
``bpflink.errors``. This is the only module that touches the extension's ``lib`` (tests/test_lowlevel_rule.py
enforces it). Pointers are cffi objects; ``new_*_opts()`` give zeroed opts structs with ``sz`` already set.
A constant the compiled headers lacked is a ``bpflink._native.Absent``: any use raises ``NotSupportedError``
naming the header (``bpflink._native.has(name)`` asks first).

>>> from bpflink import lowlevel
>>> opts = lowlevel.new_link_create_opts()
>>> int(opts.sz) == lowlevel.ffi.sizeof("struct bpf_link_create_opts")
True
"""

from __future__ import annotations

from ._native import constant, has
from ._native import ffi as ffi
from ._native import lib as lib

TYPE_CHECKING = False  # not typing's: `import bpflink` imports this module (through _log), typing costs ~2 ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    CData = Any  # a cffi pointer; cffi has no static types
NULL = ffi.NULL


def address_of(name: str) -> CData:
    """``&name``: the address of a C function in the extension (a callback handed to libbpf, the no-opts
    link_create handed to bpflink._fdowner)."""
    return ffi.addressof(lib, name)


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


# the per-element calls of Map are the C functions themselves (no Python frame in between: bench/maps.py)
#: ``int bpf_map_lookup_elem(int fd, const void *key, void *value)``
bpf_map_lookup_elem: Callable[[int, CData, CData], int] = lib.bpf_map_lookup_elem
#: ``int bpf_map_update_elem(int fd, const void *key, const void *value, __u64 flags)``
bpf_map_update_elem: Callable[[int, CData, CData, int], int] = lib.bpf_map_update_elem


def bpf_map_delete_elem(fd: int, key: CData) -> int:
    """``int bpf_map_delete_elem(int fd, const void *key)``."""
    return int(lib.bpf_map_delete_elem(fd, key))


def bpf_map_get_next_key(fd: int, key: CData, next_key: CData) -> int:
    """``int bpf_map_get_next_key(int fd, const void *key, void *next_key)``."""
    return int(lib.bpf_map_get_next_key(fd, key, next_key))


def bpf_prog_query_opts(target: int, attach_type: int, opts: CData) -> int:
    """``int bpf_prog_query_opts(int target, enum bpf_attach_type, struct bpf_prog_query_opts *)``."""
    return int(lib.bpf_prog_query_opts(target, attach_type, opts))


# --- Programs and maps (<bpf/bpf.h>) ------------------------------------------------------------------------------


def bpf_prog_bind_map(prog_fd: int, map_fd: int, opts: CData) -> int:
    """``int bpf_prog_bind_map(int prog_fd, int map_fd, const void *opts)``."""
    return int(lib.bpf_prog_bind_map(prog_fd, map_fd, opts))


def bpf_prog_get_next_id(start_id: int, next_id: CData) -> int:
    """``int bpf_prog_get_next_id(__u32 start_id, __u32 *next_id)``."""
    return int(lib.bpf_prog_get_next_id(start_id, next_id))


def bpf_map_get_info_by_fd(map_fd: int, info: CData, info_len: CData) -> int:
    """``int bpf_map_get_info_by_fd(int map_fd, struct bpf_map_info *info, __u32 *info_len)``."""
    return int(lib.bpf_map_get_info_by_fd(map_fd, info, info_len))


def bpf_map_get_fd_by_id(map_id: int) -> int:
    """``int bpf_map_get_fd_by_id(__u32 id)``."""
    return int(lib.bpf_map_get_fd_by_id(map_id))


def bpf_map_lookup_elem_flags(fd: int, key: CData, value: CData, flags: int) -> int:
    """``int bpf_map_lookup_elem_flags(int fd, const void *key, void *value, __u64 flags)``."""
    return int(lib.bpf_map_lookup_elem_flags(fd, key, value, flags))


def bpf_map_lookup_and_delete_elem(fd: int, key: CData, value: CData) -> int:
    """``int bpf_map_lookup_and_delete_elem(int fd, const void *key, void *value)``."""
    return int(lib.bpf_map_lookup_and_delete_elem(fd, key, value))


def bpf_map_freeze(fd: int) -> int:
    """``int bpf_map_freeze(int fd)``."""
    return int(lib.bpf_map_freeze(fd))


def bpf_map_lookup_batch(fd: int, in_batch: CData, out_batch: CData, keys: CData, values: CData, count: CData,
                         opts: CData) -> int:
    """``int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, __u32 *count,
    const struct bpf_map_batch_opts *opts)``.
    """
    return int(lib.bpf_map_lookup_batch(fd, in_batch, out_batch, keys, values, count, opts))


def bpf_map_lookup_and_delete_batch(fd: int, in_batch: CData, out_batch: CData, keys: CData, values: CData,
                                    count: CData, opts: CData) -> int:
    """``int bpf_map_lookup_and_delete_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values,
    __u32 *count, const struct bpf_map_batch_opts *opts)``.
    """
    return int(lib.bpf_map_lookup_and_delete_batch(fd, in_batch, out_batch, keys, values, count, opts))


def bpf_map_update_batch(fd: int, keys: CData, values: CData, count: CData, opts: CData) -> int:
    """``int bpf_map_update_batch(int fd, const void *keys, const void *values, __u32 *count, const struct
    bpf_map_batch_opts *opts)``.
    """
    return int(lib.bpf_map_update_batch(fd, keys, values, count, opts))


def bpf_map_delete_batch(fd: int, keys: CData, count: CData, opts: CData) -> int:
    """``int bpf_map_delete_batch(int fd, const void *keys, __u32 *count, const struct bpf_map_batch_opts *opts)``."""
    return int(lib.bpf_map_delete_batch(fd, keys, count, opts))


def bpf_raw_tracepoint_open_opts(prog_fd: int, opts: CData) -> int:
    """``int bpf_raw_tracepoint_open_opts(int prog_fd, struct bpf_raw_tp_opts *opts)``."""
    return int(lib.bpf_raw_tracepoint_open_opts(prog_fd, opts))


# --- The object API (<bpf/libbpf.h>): open, configure, load -------------------------------------------------------


def bpf_object__open_file(path: bytes, opts: CData) -> CData:
    """``struct bpf_object *bpf_object__open_file(const char *path, const void *opts)``."""
    return lib.bpf_object__open_file(path, opts)


def bpf_object__load(obj: CData) -> int:
    """``int bpf_object__load(struct bpf_object *obj)``."""
    return int(lib.bpf_object__load(obj))


def bpf_object__close(obj: CData) -> None:
    """``void bpf_object__close(struct bpf_object *obj)``."""
    lib.bpf_object__close(obj)


def bpf_object__next_program(obj: CData, prog: CData) -> CData:
    """``struct bpf_program *bpf_object__next_program(const struct bpf_object *obj, struct bpf_program *prog)``."""
    return lib.bpf_object__next_program(obj, prog)


def bpf_object__next_map(obj: CData, map: CData) -> CData:
    """``struct bpf_map *bpf_object__next_map(const struct bpf_object *obj, const struct bpf_map *map)``."""
    return lib.bpf_object__next_map(obj, map)


def bpf_object__btf(obj: CData) -> CData:
    """``struct btf *bpf_object__btf(const struct bpf_object *obj)``."""
    return lib.bpf_object__btf(obj)


def bpf_program__name(prog: CData) -> CData:
    """``const char *bpf_program__name(const struct bpf_program *prog)``."""
    return lib.bpf_program__name(prog)


def bpf_program__section_name(prog: CData) -> CData:
    """``const char *bpf_program__section_name(const struct bpf_program *prog)``."""
    return lib.bpf_program__section_name(prog)


def bpf_program__fd(prog: CData) -> int:
    """``int bpf_program__fd(const struct bpf_program *prog)``."""
    return int(lib.bpf_program__fd(prog))


def bpf_program__autoload(prog: CData) -> bool:
    """``bool bpf_program__autoload(const struct bpf_program *prog)``."""
    return bool(lib.bpf_program__autoload(prog))


def bpf_program__set_autoload(prog: CData, autoload: bool) -> int:
    """``int bpf_program__set_autoload(struct bpf_program *prog, bool autoload)``."""
    return int(lib.bpf_program__set_autoload(prog, autoload))


def bpf_program__type(prog: CData) -> int:
    """``enum bpf_prog_type bpf_program__type(const struct bpf_program *prog)``."""
    return int(lib.bpf_program__type(prog))


def bpf_program__set_type(prog: CData, prog_type: int) -> int:
    """``int bpf_program__set_type(struct bpf_program *prog, enum bpf_prog_type type)``."""
    return int(lib.bpf_program__set_type(prog, prog_type))


def bpf_program__expected_attach_type(prog: CData) -> int:
    """``enum bpf_attach_type bpf_program__expected_attach_type(const struct bpf_program *prog)``."""
    return int(lib.bpf_program__expected_attach_type(prog))


def bpf_program__set_expected_attach_type(prog: CData, attach_type: int) -> int:
    """``int bpf_program__set_expected_attach_type(struct bpf_program *prog, enum bpf_attach_type type)``."""
    return int(lib.bpf_program__set_expected_attach_type(prog, attach_type))


def bpf_program__set_log_buf(prog: CData, log_buf: CData, log_size: int) -> int:
    """``int bpf_program__set_log_buf(struct bpf_program *prog, char *log_buf, size_t log_size)``."""
    return int(lib.bpf_program__set_log_buf(prog, log_buf, log_size))


def bpf_program__set_attach_target(prog: CData, attach_prog_fd: int, attach_func_name: bytes | CData) -> int:
    """``int bpf_program__set_attach_target(struct bpf_program *prog, int attach_prog_fd, const char
    *attach_func_name)``.
    """
    return int(lib.bpf_program__set_attach_target(prog, attach_prog_fd, attach_func_name))


def bpf_map__name(map: CData) -> CData:
    """``const char *bpf_map__name(const struct bpf_map *map)``."""
    return lib.bpf_map__name(map)


def bpf_map__fd(map: CData) -> int:
    """``int bpf_map__fd(const struct bpf_map *map)``."""
    return int(lib.bpf_map__fd(map))


def bpf_map__is_internal(map: CData) -> bool:
    """``bool bpf_map__is_internal(const struct bpf_map *map)``."""
    return bool(lib.bpf_map__is_internal(map))


def bpf_map__key_size(map: CData) -> int:
    """``__u32 bpf_map__key_size(const struct bpf_map *map)``."""
    return int(lib.bpf_map__key_size(map))


def bpf_map__value_size(map: CData) -> int:
    """``__u32 bpf_map__value_size(const struct bpf_map *map)``."""
    return int(lib.bpf_map__value_size(map))


def bpf_map__btf_key_type_id(map: CData) -> int:
    """``__u32 bpf_map__btf_key_type_id(const struct bpf_map *map)``."""
    return int(lib.bpf_map__btf_key_type_id(map))


def bpf_map__btf_value_type_id(map: CData) -> int:
    """``__u32 bpf_map__btf_value_type_id(const struct bpf_map *map)``."""
    return int(lib.bpf_map__btf_value_type_id(map))


def bpf_map__set_max_entries(map: CData, max_entries: int) -> int:
    """``int bpf_map__set_max_entries(struct bpf_map *map, __u32 max_entries)``."""
    return int(lib.bpf_map__set_max_entries(map, max_entries))


def bpf_map__set_value_size(map: CData, size: int) -> int:
    """``int bpf_map__set_value_size(struct bpf_map *map, __u32 size)``."""
    return int(lib.bpf_map__set_value_size(map, size))


def bpf_map__set_pin_path(map: CData, path: bytes | CData) -> int:
    """``int bpf_map__set_pin_path(struct bpf_map *map, const char *path)``."""
    return int(lib.bpf_map__set_pin_path(map, path))


def bpf_map__reuse_fd(map: CData, fd: int) -> int:
    """``int bpf_map__reuse_fd(struct bpf_map *map, int fd)``."""
    return int(lib.bpf_map__reuse_fd(map, fd))


def bpf_map__set_autocreate(map: CData, autocreate: bool) -> int:
    """``int bpf_map__set_autocreate(struct bpf_map *map, bool autocreate)``."""
    return int(lib.bpf_map__set_autocreate(map, autocreate))


def bpf_map__initial_value(map: CData, psize: CData) -> CData:
    """``void *bpf_map__initial_value(const struct bpf_map *map, size_t *psize)``."""
    return lib.bpf_map__initial_value(map, psize)


def libbpf_prog_type_by_name(name: bytes, prog_type: CData, expected_attach_type: CData) -> int:
    """``int libbpf_prog_type_by_name(const char *name, enum bpf_prog_type *prog_type, enum bpf_attach_type
    *expected_attach_type)``.
    """
    return int(lib.libbpf_prog_type_by_name(name, prog_type, expected_attach_type))


# --- libbpf itself ------------------------------------------------------------------------------------------------


def libbpf_get_error(ptr: CData) -> int:
    """``long libbpf_get_error(const void *ptr)``."""
    return int(lib.libbpf_get_error(ptr))


def libbpf_strerror(err: int, buf: CData, size: int) -> int:
    """``int libbpf_strerror(int err, char *buf, size_t size)``."""
    return int(lib.libbpf_strerror(err, buf, size))


def libbpf_major_version() -> int:
    """``__u32 libbpf_major_version(void)``."""
    return int(lib.libbpf_major_version())


def libbpf_minor_version() -> int:
    """``__u32 libbpf_minor_version(void)``."""
    return int(lib.libbpf_minor_version())


def libbpf_version_string() -> CData:
    """``const char *libbpf_version_string(void)``."""
    return lib.libbpf_version_string()


def libbpf_num_possible_cpus() -> int:
    """``int libbpf_num_possible_cpus(void)``."""
    return int(lib.libbpf_num_possible_cpus())


# --- BTF (<bpf/btf.h>) --------------------------------------------------------------------------------------------


def btf__load_vmlinux_btf() -> CData:
    """``struct btf *btf__load_vmlinux_btf(void)``."""
    return lib.btf__load_vmlinux_btf()


def btf__load_from_kernel_by_id(btf_id: int) -> CData:
    """``struct btf *btf__load_from_kernel_by_id(__u32 id)``."""
    return lib.btf__load_from_kernel_by_id(btf_id)


def btf__new_empty() -> CData:
    """``struct btf *btf__new_empty(void)``."""
    return lib.btf__new_empty()


def btf__free(btf: CData) -> None:
    """``void btf__free(struct btf *btf)``."""
    lib.btf__free(btf)


def btf__type_cnt(btf: CData) -> int:
    """``__u32 btf__type_cnt(const struct btf *btf)``."""
    return int(lib.btf__type_cnt(btf))


def btf__type_by_id(btf: CData, type_id: int) -> CData:
    """``const struct btf_type *btf__type_by_id(const struct btf *btf, __u32 id)``."""
    return lib.btf__type_by_id(btf, type_id)


def btf__name_by_offset(btf: CData, offset: int) -> CData:
    """``const char *btf__name_by_offset(const struct btf *btf, __u32 offset)``."""
    return lib.btf__name_by_offset(btf, offset)


def btf__resolve_size(btf: CData, type_id: int) -> int:
    """``__s64 btf__resolve_size(const struct btf *btf, __u32 type_id)``."""
    return int(lib.btf__resolve_size(btf, type_id))


def btf__find_by_name_kind(btf: CData, type_name: bytes, kind: int) -> int:
    """``__s32 btf__find_by_name_kind(const struct btf *btf, const char *type_name, __u32 kind)``."""
    return int(lib.btf__find_by_name_kind(btf, type_name, kind))


def btf__add_int(btf: CData, name: bytes, byte_sz: int, encoding: int) -> int:
    """``int btf__add_int(struct btf *btf, const char *name, size_t byte_sz, int encoding)``."""
    return int(lib.btf__add_int(btf, name, byte_sz, encoding))


def btf__load_into_kernel(btf: CData) -> int:
    """``int btf__load_into_kernel(struct btf *btf)``."""
    return int(lib.btf__load_into_kernel(btf))


def btf__fd(btf: CData) -> int:
    """``int btf__fd(const struct btf *btf)``."""
    return int(lib.btf__fd(btf))


# --- Ring and perf buffers (<bpf/libbpf.h>) and bpflink's reader helpers (include/ringbuf.c) ----------------------


def ring_buffer__new(map_fd: int, sample_cb: CData, ctx: CData, opts: CData) -> CData:
    """``struct ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn sample_cb, void *ctx, const void
    *opts)``.
    """
    return lib.ring_buffer__new(map_fd, sample_cb, ctx, opts)


def ring_buffer__add(rb: CData, map_fd: int, sample_cb: CData, ctx: CData) -> int:
    """``int ring_buffer__add(struct ring_buffer *rb, int map_fd, ring_buffer_sample_fn sample_cb, void *ctx)``."""
    return int(lib.ring_buffer__add(rb, map_fd, sample_cb, ctx))


def ring_buffer__free(rb: CData) -> None:
    """``void ring_buffer__free(struct ring_buffer *rb)``."""
    lib.ring_buffer__free(rb)


def ring_buffer__consume(rb: CData) -> int:
    """``int ring_buffer__consume(struct ring_buffer *rb)``."""
    return int(lib.ring_buffer__consume(rb))


#: ``int ring_buffer__consume_n(struct ring_buffer *rb, size_t n)``: the C function itself (the reader's hot
#: path), or None when the compiled libbpf lacks it (libbpf < 1.5; ``_native.has("ring_buffer__consume_n")``)
ring_buffer__consume_n: Callable[[CData, int], int] | None = (
    lib.ring_buffer__consume_n if has("ring_buffer__consume_n") else None)


def ring_buffer__epoll_fd(rb: CData) -> int:
    """``int ring_buffer__epoll_fd(const struct ring_buffer *rb)``."""
    return int(lib.ring_buffer__epoll_fd(rb))


def ring_buffer__ring(rb: CData, idx: int) -> CData:
    """``struct ring *ring_buffer__ring(struct ring_buffer *rb, unsigned int idx)``."""
    return lib.ring_buffer__ring(rb, idx)


def ring__consumer_pos(r: CData) -> int:
    """``unsigned long ring__consumer_pos(const struct ring *r)``."""
    return int(lib.ring__consumer_pos(r))


def ring__producer_pos(r: CData) -> int:
    """``unsigned long ring__producer_pos(const struct ring *r)``."""
    return int(lib.ring__producer_pos(r))


def ring__avail_data_size(r: CData) -> int:
    """``size_t ring__avail_data_size(const struct ring *r)``."""
    return int(lib.ring__avail_data_size(r))


def ring__size(r: CData) -> int:
    """``size_t ring__size(const struct ring *r)``."""
    return int(lib.ring__size(r))


def ring__map_fd(r: CData) -> int:
    """``int ring__map_fd(const struct ring *r)``."""
    return int(lib.ring__map_fd(r))


def perf_buffer__new(map_fd: int, page_cnt: int, sample_cb: CData, lost_cb: CData, ctx: CData, opts: CData) -> CData:
    """``struct perf_buffer *perf_buffer__new(int map_fd, size_t page_cnt, perf_buffer_sample_fn sample_cb,
    perf_buffer_lost_fn lost_cb, void *ctx, const void *opts)``.
    """
    return lib.perf_buffer__new(map_fd, page_cnt, sample_cb, lost_cb, ctx, opts)


def perf_buffer__free(pb: CData) -> None:
    """``void perf_buffer__free(struct perf_buffer *pb)``."""
    lib.perf_buffer__free(pb)


def perf_buffer__epoll_fd(pb: CData) -> int:
    """``int perf_buffer__epoll_fd(const struct perf_buffer *pb)``."""
    return int(lib.perf_buffer__epoll_fd(pb))


def perf_buffer__consume(pb: CData) -> int:
    """``int perf_buffer__consume(struct perf_buffer *pb)``."""
    return int(lib.perf_buffer__consume(pb))


def perf_buffer__consume_buffer(pb: CData, buf_idx: int) -> int:
    """``int perf_buffer__consume_buffer(struct perf_buffer *pb, size_t buf_idx)``."""
    return int(lib.perf_buffer__consume_buffer(pb, buf_idx))


def perf_buffer__buffer_cnt(pb: CData) -> int:
    """``size_t perf_buffer__buffer_cnt(const struct perf_buffer *pb)``."""
    return int(lib.perf_buffer__buffer_cnt(pb))


def perf_buffer__buffer_fd(pb: CData, buf_idx: int) -> int:
    """``int perf_buffer__buffer_fd(const struct perf_buffer *pb, size_t buf_idx)``."""
    return int(lib.perf_buffer__buffer_fd(pb, buf_idx))


def bpflink_reader_init(r: CData, libbpf_epoll_fd: int, ncpu: int) -> int:
    """``int bpflink_reader_init(struct bpflink_reader *r, int libbpf_epoll_fd, size_t ncpu)``."""
    return int(lib.bpflink_reader_init(r, libbpf_epoll_fd, ncpu))


def bpflink_reader_wake(r: CData) -> None:
    """``void bpflink_reader_wake(struct bpflink_reader *r)``."""
    lib.bpflink_reader_wake(r)


def bpflink_reader_release(r: CData) -> None:
    """``void bpflink_reader_release(struct bpflink_reader *r)``."""
    lib.bpflink_reader_release(r)


def bpflink_reader_wait(r: CData, timeout_ms: int) -> int:
    """``int bpflink_reader_wait(struct bpflink_reader *r, int timeout_ms)``."""
    return int(lib.bpflink_reader_wait(r, timeout_ms))


def bpflink_reader_nap(r: CData, usec: int) -> int:
    """``int bpflink_reader_nap(struct bpflink_reader *r, long usec)``."""
    return int(lib.bpflink_reader_nap(r, usec))


def bpflink_batch_reset(b: CData, stride: int, with_source: int, limit: int) -> None:
    """``void bpflink_batch_reset(struct bpflink_batch *b, size_t stride, int with_source, size_t limit)``."""
    lib.bpflink_batch_reset(b, stride, with_source, limit)


def bpflink_batch_new() -> CData:
    """``struct bpflink_batch *bpflink_batch_new(void)``."""
    return lib.bpflink_batch_new()


# the C function itself: batch blocks are freed from destructors that may run late in interpreter shutdown
#: ``void bpflink_batch_free(struct bpflink_batch *b)``
bpflink_batch_free: Callable[[CData], None] = lib.bpflink_batch_free


def bpflink_batch_settle(b: CData) -> int:
    """``size_t bpflink_batch_settle(struct bpflink_batch *b)``."""
    return int(lib.bpflink_batch_settle(b))


def bpflink_batch_same_length(b: CData) -> int:
    """``int bpflink_batch_same_length(const struct bpflink_batch *b)``."""
    return int(lib.bpflink_batch_same_length(b))


def bpflink_lengths_same(length: CData, count: int) -> int:
    """``int bpflink_lengths_same(const uint32_t *length, size_t count)``."""
    return int(lib.bpflink_lengths_same(length, count))


def bpflink_batch_offsets(length: CData, count: int, out: CData) -> None:
    """``void bpflink_batch_offsets(const uint32_t *length, size_t count, uint64_t *out)``."""
    lib.bpflink_batch_offsets(length, count, out)


def bpflink_ring_buffer_new(map_fd: int, src: CData) -> CData:
    """``struct ring_buffer *bpflink_ring_buffer_new(int map_fd, struct bpflink_source *src)``."""
    return lib.bpflink_ring_buffer_new(map_fd, src)


def bpflink_ring_buffer_add(rb: CData, map_fd: int, src: CData) -> int:
    """``int bpflink_ring_buffer_add(struct ring_buffer *rb, int map_fd, struct bpflink_source *src)``."""
    return int(lib.bpflink_ring_buffer_add(rb, map_fd, src))


def bpflink_perf_buffer_new(map_fd: int, page_cnt: int, r: CData, wakeup_bytes: int = 0) -> CData:
    """``struct perf_buffer *bpflink_perf_buffer_new(int map_fd, size_t page_cnt, struct bpflink_reader *r,
    uint32_t wakeup_bytes)``."""
    return lib.bpflink_perf_buffer_new(map_fd, page_cnt, r, wakeup_bytes)


def bpflink_perf_consume(pb: CData, r: CData, only: int) -> int:
    """``int bpflink_perf_consume(struct perf_buffer *pb, struct bpflink_reader *r, int only)``."""
    return int(lib.bpflink_perf_consume(pb, r, only))


def bpflink_drain_new(nbytes: int) -> CData:
    """``struct bpflink_drain *bpflink_drain_new(size_t bytes)``."""
    return lib.bpflink_drain_new(nbytes)


def bpflink_drain_capacity(d: CData) -> int:
    """``size_t bpflink_drain_capacity(const struct bpflink_drain *d)``."""
    return int(lib.bpflink_drain_capacity(d))


def bpflink_drain_ready_fd(d: CData) -> int:
    """``int bpflink_drain_ready_fd(const struct bpflink_drain *d)``."""
    return int(lib.bpflink_drain_ready_fd(d))


def bpflink_perf_buffer_new_drained(map_fd: int, page_cnt: int, d: CData, wakeup_bytes: int = 0) -> CData:
    """``struct perf_buffer *bpflink_perf_buffer_new_drained(int map_fd, size_t page_cnt, struct bpflink_drain *d,
    uint32_t wakeup_bytes)``."""
    return lib.bpflink_perf_buffer_new_drained(map_fd, page_cnt, d, wakeup_bytes)


def bpflink_drain_start(d: CData, pb: CData, r: CData) -> int:
    """``int bpflink_drain_start(struct bpflink_drain *d, struct perf_buffer *pb, struct bpflink_reader *r)``."""
    return int(lib.bpflink_drain_start(d, pb, r))


def bpflink_ring_buffer_new_drained(map_fd: int, src: CData) -> CData:
    """``struct ring_buffer *bpflink_ring_buffer_new_drained(int map_fd, struct bpflink_source *src)``."""
    return lib.bpflink_ring_buffer_new_drained(map_fd, src)


def bpflink_ring_buffer_add_drained(rb: CData, map_fd: int, src: CData) -> int:
    """``int bpflink_ring_buffer_add_drained(struct ring_buffer *rb, int map_fd, struct bpflink_source *src)``."""
    return int(lib.bpflink_ring_buffer_add_drained(rb, map_fd, src))


def bpflink_drain_start_ring(d: CData, rb: CData, r: CData) -> int:
    """``int bpflink_drain_start_ring(struct bpflink_drain *d, struct ring_buffer *rb, struct bpflink_reader *r)``."""
    return int(lib.bpflink_drain_start_ring(d, rb, r))


def bpflink_drain_error(d: CData) -> int:
    """``int bpflink_drain_error(const struct bpflink_drain *d)``."""
    return int(lib.bpflink_drain_error(d))


def bpflink_drain_consume(d: CData, r: CData) -> int:
    """``int bpflink_drain_consume(struct bpflink_drain *d, struct bpflink_reader *r)``."""
    return int(lib.bpflink_drain_consume(d, r))


def bpflink_drain_stop(d: CData) -> None:
    """``void bpflink_drain_stop(struct bpflink_drain *d)`` (joins the thread; the GIL is released meanwhile)."""
    lib.bpflink_drain_stop(d)


def bpflink_drain_free(d: CData) -> None:
    """``void bpflink_drain_free(struct bpflink_drain *d)``."""
    lib.bpflink_drain_free(d)


# --- bpflink's own C helpers (include/shims.c) --------------------------------------------------------------------


def bpflink_perf_event_open(attr: CData, pid: int, cpu: int, group_fd: int, flags: int) -> int:
    """``int bpflink_perf_event_open(struct perf_event_attr *attr, int pid, int cpu, int group_fd, unsigned long
    flags)``.
    """
    return int(lib.bpflink_perf_event_open(attr, pid, cpu, group_fd, flags))


def bpflink_current_cpu() -> int:
    """``int bpflink_current_cpu(void)``."""
    return int(lib.bpflink_current_cpu())


def bpflink_link_walk(start_id: int, infos: CData, fds: CData, max: int, last_id: CData, done: CData) -> int:
    """``int bpflink_link_walk(__u32 start_id, struct bpf_link_info *infos, int *fds, int max, __u32 *last_id, int
    *done)``.
    """
    return int(lib.bpflink_link_walk(start_id, infos, fds, max, last_id, done))


def bpflink_link_walk_json(st: CData, names: CData, buf: CData, cap: int) -> int:
    """``int bpflink_link_walk_json(struct bpflink_json_walk *st, const struct bpflink_json_names *names, char *buf,
    size_t cap)``: one batch of ``bpflink list --json`` (include/linkjson.c).
    """
    return int(lib.bpflink_link_walk_json(st, names, buf, cap))


def bpflink_json_string(s: bytes | CData, n: int, out: CData, cap: int) -> int:
    """``size_t bpflink_json_string(const char *s, size_t n, char *out, size_t cap)``: include/linkjson.c's JSON
    string writer (tests compare it with Python's).
    """
    return int(lib.bpflink_json_string(s, n, out, cap))


def bpflink_json_u64s(a: CData, n: int, inner: bytes, inner_len: int, indent: bytes, indent_len: int, out: CData,
                      cap: int) -> int:
    """``size_t bpflink_json_u64s(const __u64 *a, size_t n, const char *inner, size_t inner_len, const char *indent,
    size_t indent_len, char *out, size_t cap)``: include/linkjson.c's writer of an indented JSON list of u64s.
    """
    return int(lib.bpflink_json_u64s(a, n, inner, inner_len, indent, indent_len, out, cap))


def bpflink_route_libbpf_print(enable: int) -> None:
    """``void bpflink_route_libbpf_print(int enable)``."""
    lib.bpflink_route_libbpf_print(enable)


# --- libelf (<libelf.h>, <gelf.h>): ELF files for symbol resolution (symbols.py) ----------------------------------


def elf_version(version: int) -> int:
    """``unsigned int elf_version(unsigned int version)``."""
    return int(lib.elf_version(version))


def elf_begin(fd: int, cmd: int, ref: CData) -> CData:
    """``Elf *elf_begin(int fd, int cmd, Elf *ref)``."""
    return lib.elf_begin(fd, cmd, ref)


def elf_memory(image: CData, size: int) -> CData:
    """``Elf *elf_memory(char *image, size_t size)``."""
    return lib.elf_memory(image, size)


def elf_end(elf: CData) -> int:
    """``int elf_end(Elf *elf)``."""
    return int(lib.elf_end(elf))


def elf_kind(elf: CData) -> int:
    """``int elf_kind(Elf *elf)``."""
    return int(lib.elf_kind(elf))


def gelf_getclass(elf: CData) -> int:
    """``int gelf_getclass(Elf *elf)``."""
    return int(lib.gelf_getclass(elf))


def gelf_getehdr(elf: CData, dst: CData) -> CData:
    """``GElf_Ehdr *gelf_getehdr(Elf *elf, GElf_Ehdr *dst)``."""
    return lib.gelf_getehdr(elf, dst)


def elf_getshdrnum(elf: CData, dst: CData) -> int:
    """``int elf_getshdrnum(Elf *elf, size_t *dst)``."""
    return int(lib.elf_getshdrnum(elf, dst))


def elf_getshdrstrndx(elf: CData, dst: CData) -> int:
    """``int elf_getshdrstrndx(Elf *elf, size_t *dst)``."""
    return int(lib.elf_getshdrstrndx(elf, dst))


def elf_getphdrnum(elf: CData, dst: CData) -> int:
    """``int elf_getphdrnum(Elf *elf, size_t *dst)``."""
    return int(lib.elf_getphdrnum(elf, dst))


def elf_nextscn(elf: CData, scn: CData) -> CData:
    """``Elf_Scn *elf_nextscn(Elf *elf, Elf_Scn *scn)``."""
    return lib.elf_nextscn(elf, scn)


def gelf_getshdr(scn: CData, dst: CData) -> CData:
    """``GElf_Shdr *gelf_getshdr(Elf_Scn *scn, GElf_Shdr *dst)``."""
    return lib.gelf_getshdr(scn, dst)


def gelf_getphdr(elf: CData, ndx: int, dst: CData) -> CData:
    """``GElf_Phdr *gelf_getphdr(Elf *elf, int ndx, GElf_Phdr *dst)``."""
    return lib.gelf_getphdr(elf, ndx, dst)


def elf_getdata(scn: CData, data: CData) -> CData:
    """``Elf_Data *elf_getdata(Elf_Scn *scn, Elf_Data *data)``."""
    return lib.elf_getdata(scn, data)


def elf_rawdata(scn: CData, data: CData) -> CData:
    """``Elf_Data *elf_rawdata(Elf_Scn *scn, Elf_Data *data)``."""
    return lib.elf_rawdata(scn, data)


def elf_errmsg(error: int) -> CData:
    """``const char *elf_errmsg(int error)``."""
    return lib.elf_errmsg(error)


# --- libelf: USDT notes (usdt.py) -----------------------------------------------------------------------------------


def gelf_getnote(data: CData, offset: int, result: CData, name_offset: CData, desc_offset: CData) -> int:
    """``size_t gelf_getnote(Elf_Data *data, size_t offset, GElf_Nhdr *result, size_t *name_offset,
    size_t *desc_offset)``: the next note's offset, 0 when the note at ``offset`` does not fit in ``data``."""
    return int(lib.gelf_getnote(data, offset, result, name_offset, desc_offset))


def elf_getident(elf: CData, dst: CData) -> CData:
    """``char *elf_getident(Elf *elf, size_t *dst)``."""
    return lib.elf_getident(elf, dst)


def elf_strptr(elf: CData, section: int, offset: int) -> CData:
    """``char *elf_strptr(Elf *elf, size_t section, size_t offset)``."""
    return lib.elf_strptr(elf, section, offset)


# --- Flags and values the package passes to the calls above (a name the headers lacked is an Absent: see _native) ---
BPF_F_REPLACE: int = constant("BPF_F_REPLACE")
BPF_F_ALLOW_MULTI: int = constant("BPF_F_ALLOW_MULTI")
BPF_F_KPROBE_MULTI_RETURN: int = constant("BPF_F_KPROBE_MULTI_RETURN")
BPF_F_UPROBE_MULTI_RETURN: int = constant("BPF_F_UPROBE_MULTI_RETURN")
PERF_TYPE_TRACEPOINT: int = constant("PERF_TYPE_TRACEPOINT")
PERF_TYPE_SOFTWARE: int = constant("PERF_TYPE_SOFTWARE")
PERF_TYPE_HARDWARE: int = constant("PERF_TYPE_HARDWARE")
PERF_FLAG_FD_CLOEXEC: int = constant("PERF_FLAG_FD_CLOEXEC")
PERF_COUNT_HW_CPU_CYCLES: int = constant("PERF_COUNT_HW_CPU_CYCLES")
PERF_COUNT_HW_INSTRUCTIONS: int = constant("PERF_COUNT_HW_INSTRUCTIONS")
PERF_COUNT_HW_CACHE_REFERENCES: int = constant("PERF_COUNT_HW_CACHE_REFERENCES")
PERF_COUNT_HW_CACHE_MISSES: int = constant("PERF_COUNT_HW_CACHE_MISSES")
PERF_COUNT_HW_BRANCH_INSTRUCTIONS: int = constant("PERF_COUNT_HW_BRANCH_INSTRUCTIONS")
PERF_COUNT_HW_BRANCH_MISSES: int = constant("PERF_COUNT_HW_BRANCH_MISSES")
PERF_COUNT_HW_REF_CPU_CYCLES: int = constant("PERF_COUNT_HW_REF_CPU_CYCLES")
PERF_COUNT_SW_CPU_CLOCK: int = constant("PERF_COUNT_SW_CPU_CLOCK")
PERF_COUNT_SW_TASK_CLOCK: int = constant("PERF_COUNT_SW_TASK_CLOCK")
PERF_COUNT_SW_PAGE_FAULTS: int = constant("PERF_COUNT_SW_PAGE_FAULTS")
PERF_COUNT_SW_CONTEXT_SWITCHES: int = constant("PERF_COUNT_SW_CONTEXT_SWITCHES")
PERF_COUNT_SW_CPU_MIGRATIONS: int = constant("PERF_COUNT_SW_CPU_MIGRATIONS")
LIBBPF_WARN: int = constant("LIBBPF_WARN")
LIBBPF_INFO: int = constant("LIBBPF_INFO")
LIBBPF_DEBUG: int = constant("LIBBPF_DEBUG")
BPFLINK_WOKEN: int = constant("BPFLINK_WOKEN")


# --- BTF kinds and int encodings ----------------------------------------------------------------------------------
BTF_KIND_INT: int = constant("BTF_KIND_INT")
BTF_KIND_PTR: int = constant("BTF_KIND_PTR")
BTF_KIND_ARRAY: int = constant("BTF_KIND_ARRAY")
BTF_KIND_STRUCT: int = constant("BTF_KIND_STRUCT")
BTF_KIND_UNION: int = constant("BTF_KIND_UNION")
BTF_KIND_ENUM: int = constant("BTF_KIND_ENUM")
BTF_KIND_FWD: int = constant("BTF_KIND_FWD")
BTF_KIND_TYPEDEF: int = constant("BTF_KIND_TYPEDEF")
BTF_KIND_VOLATILE: int = constant("BTF_KIND_VOLATILE")
BTF_KIND_CONST: int = constant("BTF_KIND_CONST")
BTF_KIND_RESTRICT: int = constant("BTF_KIND_RESTRICT")
BTF_KIND_FUNC: int = constant("BTF_KIND_FUNC")
BTF_KIND_FUNC_PROTO: int = constant("BTF_KIND_FUNC_PROTO")
BTF_KIND_VAR: int = constant("BTF_KIND_VAR")
BTF_KIND_DATASEC: int = constant("BTF_KIND_DATASEC")
BTF_KIND_FLOAT: int = constant("BTF_KIND_FLOAT")
BTF_KIND_DECL_TAG: int = constant("BTF_KIND_DECL_TAG")
BTF_KIND_TYPE_TAG: int = constant("BTF_KIND_TYPE_TAG")
BTF_KIND_ENUM64: int = constant("BTF_KIND_ENUM64")
BTF_INT_SIGNED: int = constant("BTF_INT_SIGNED")
BTF_INT_CHAR: int = constant("BTF_INT_CHAR")
BTF_INT_BOOL: int = constant("BTF_INT_BOOL")


# --- libelf -------------------------------------------------------------------------------------------------------
EV_CURRENT: int = constant("EV_CURRENT")
ELF_C_READ: int = constant("ELF_C_READ")
ELF_K_ELF: int = constant("ELF_K_ELF")
ELFCLASS32: int = constant("ELFCLASS32")
ELFCLASS64: int = constant("ELFCLASS64")
PT_LOAD: int = constant("PT_LOAD")
EI_DATA: int = constant("EI_DATA")
ELFDATA2LSB: int = constant("ELFDATA2LSB")
SHT_NOTE: int = constant("SHT_NOTE")
PF_X: int = constant("PF_X")


# the functions (and ffi, lib, NULL); the constants are plain attributes, listed in the sections above
__all__ = [name for name, value in list(globals().items())
           if name.isidentifier() and not name.startswith("_") and name not in ("TYPE_CHECKING", "annotations")
           and (callable(value) or value is None or name in ("NULL", "ffi", "lib"))
           and not isinstance(value, type) and name not in ("constant", "has")]
