/* bpflink cdef: maps (<bpf/bpf.h>). */
struct bpf_map_create_opts {
    size_t sz;
    __u32 btf_fd;
    __u32 btf_vmlinux_value_type_id; /* struct_ops maps: the kernel's bpf_struct_ops_<name> value type */
    __u32 map_flags;
    __u32 btf_key_type_id;
    __u32 btf_value_type_id;
    __u64 map_extra;
    __u32 inner_map_fd;
    ...;
};
int bpf_map_create(enum bpf_map_type map_type, const char *map_name, __u32 key_size, __u32 value_size,
                   __u32 max_entries, const struct bpf_map_create_opts *opts);
int bpf_map_lookup_elem(int fd, const void *key, void *value);
int bpf_map_update_elem(int fd, const void *key, const void *value, __u64 flags);
int bpf_map_delete_elem(int fd, const void *key);
int bpf_map_get_next_key(int fd, const void *key, void *next_key);
/* what the kernel says about a map (uapi struct bpf_map_info, the members bpflink reads) */
struct bpf_map_info {
    __u32 type;
    __u32 id;
    __u32 key_size;
    __u32 value_size;
    __u32 max_entries;
    __u32 map_flags;
    char name[16];
    __u32 ifindex;
    __u32 btf_vmlinux_value_type_id;
    __u64 netns_dev;
    __u64 netns_ino;
    __u32 btf_id;
    __u32 btf_key_type_id;
    __u32 btf_value_type_id;
    ...;
};
int bpf_map_get_info_by_fd(int map_fd, struct bpf_map_info *info, __u32 *info_len);
int bpf_map_get_fd_by_id(__u32 id);
int bpf_map_lookup_elem_flags(int fd, const void *key, void *value, __u64 flags);
int bpf_map_lookup_and_delete_elem(int fd, const void *key, void *value);
int bpf_map_freeze(int fd);
struct bpf_map_batch_opts { size_t sz; __u64 elem_flags; __u64 flags; ...; };
int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, __u32 *count,
                         const struct bpf_map_batch_opts *opts);
int bpf_map_lookup_and_delete_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values,
                                    __u32 *count, const struct bpf_map_batch_opts *opts);
int bpf_map_update_batch(int fd, const void *keys, const void *values, __u32 *count,
                         const struct bpf_map_batch_opts *opts);
int bpf_map_delete_batch(int fd, const void *keys, __u32 *count, const struct bpf_map_batch_opts *opts);
#define BPF_F_LOCK ...
#define BPF_F_MMAPABLE ...
