/* bpflink cdef: the link calls of <bpf/bpf.h>. Layouts are partial ("...;"): offsets and sizes come from
 * the headers at compile time. Nested anonymous members cannot be partial in cffi, so build_ffi.py generates
 * an offsetof() table of every nested member (bpflink_layout_table), which _native checks at import. */
/* union bpf_iter_link_info: include/iter.h */

struct bpf_link_create_opts {
    size_t sz;
    __u32 flags;
    union bpf_iter_link_info *iter_info;
    __u32 iter_info_len;
    __u32 target_btf_id;
    union {
        struct { __u64 bpf_cookie; } perf_event;
        struct { __u32 flags; __u32 cnt; const char **syms; const unsigned long *addrs; const __u64 *cookies; } kprobe_multi;
        struct { __u32 flags; __u32 cnt; const char *path; const unsigned long *offsets;
                 const unsigned long *ref_ctr_offsets; const __u64 *cookies; __u32 pid; } uprobe_multi;
        struct { __u64 cookie; } tracing;
        struct { __u32 pf; __u32 hooknum; __s32 priority; __u32 flags; } netfilter;
        struct { __u32 relative_fd; __u32 relative_id; __u64 expected_revision; } tcx;
        struct { __u32 relative_fd; __u32 relative_id; __u64 expected_revision; } netkit;
/*@if struct bpf_link_create_opts.cgroup*/
        struct { __u32 relative_fd; __u32 relative_id; __u64 expected_revision; } cgroup;
/*@end*/
    };
    ...;
};

struct bpf_link_update_opts {
    size_t sz;
    __u32 flags;
    __u32 old_prog_fd;
    __u32 old_map_fd;
    ...;
};

int bpf_link_create(int prog_fd, int target_fd, enum bpf_attach_type attach_type,
                    const struct bpf_link_create_opts *opts);
int bpf_link_detach(int link_fd);
int bpf_prog_attach(int prog_fd, int attachable_fd, enum bpf_attach_type type, unsigned int flags);
int bpf_prog_detach2(int prog_fd, int attachable_fd, enum bpf_attach_type type);
int bpf_link_update(int link_fd, int new_prog_fd, const struct bpf_link_update_opts *opts);
int bpf_iter_create(int link_fd);
int bpf_link_get_next_id(__u32 start_id, __u32 *next_id);
int bpf_link_get_fd_by_id(__u32 id);
int bpf_link_get_info_by_fd(int link_fd, struct bpf_link_info *info, __u32 *info_len);
int bpf_obj_pin(int fd, const char *pathname);
int bpf_obj_get(const char *pathname);

struct bpf_prog_query_opts {
    size_t sz;
    __u32 query_flags;
    __u32 attach_flags;
    __u32 *prog_ids;
    union { __u32 prog_cnt; __u32 count; };
    __u32 *prog_attach_flags;
    __u32 *link_ids;
    __u32 *link_attach_flags;
    __u64 revision;
    ...;
};
int bpf_prog_query_opts(int target, enum bpf_attach_type type, struct bpf_prog_query_opts *opts);
