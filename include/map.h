/* bpflink cdef: maps (<bpf/bpf.h>). */
struct bpf_map_create_opts {
    size_t sz;
    __u32 btf_fd;
    __u32 btf_vmlinux_value_type_id; /* struct_ops maps: the kernel's bpf_struct_ops_<name> value type */
    __u32 map_flags;
    ...;
};
int bpf_map_create(enum bpf_map_type map_type, const char *map_name, __u32 key_size, __u32 value_size,
                   __u32 max_entries, const struct bpf_map_create_opts *opts);
int bpf_map_lookup_elem(int fd, const void *key, void *value);
int bpf_map_update_elem(int fd, const void *key, const void *value, __u64 flags);
int bpf_map_delete_elem(int fd, const void *key);
int bpf_map_get_next_key(int fd, const void *key, void *next_key);
