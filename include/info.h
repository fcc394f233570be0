/* bpflink cdef: struct bpf_link_info (uapi), decoded in info.py. The per-type union is anonymous with named
 * structs, and nested anonymous members cannot be partial in cffi: each struct below lists a prefix of the
 * uapi members (that is all cffi needs to place them), and include/shims.c's offsetof table checks every
 * one against the C compiler at import. Members newer than libbpf 1.4's uapi copy are marked. Unnamed
 * padding bitfields are left out: natural alignment puts the next member at the same offset. */
/* iter and perf_event hold anonymous unions of several structs: cffi lays those out wrongly when they sit
 * in an anonymous struct (it places the union's members one after another). shims.c names the two types
 * with __typeof__, so these partial typedefs get every offset from the C compiler instead. */
typedef struct {
    __u64 target_name;
    __u32 target_name_len;
    union { struct { __u32 map_id; } map; };
    union { struct { __u64 cgroup_id; __u32 order; } cgroup; struct { __u32 tid; __u32 pid; } task; };
    ...;
} bpflink_link_iter_info;
typedef struct {
    __u32 type;
    union {
        struct { __u64 file_name; __u32 name_len; __u32 offset; __u64 cookie;
/*@requires libbpf >= 1.6*/
                 __u64 ref_ctr_offset;
/*@end*/
        } uprobe;
        struct { __u64 func_name; __u32 name_len; __u32 offset; __u64 addr; __u64 missed; __u64 cookie; } kprobe;
        struct { __u64 tp_name; __u32 name_len; __u64 cookie; } tracepoint;
        struct { __u64 config; __u32 type; __u64 cookie; } event;
    };
    ...;
} bpflink_link_perf_event_info;
struct bpf_link_info {
    __u32 type;
    __u32 id;
    __u32 prog_id;
    union {
        struct { __u64 tp_name; __u32 tp_name_len;
/*@requires libbpf >= 1.6*/
                 __u64 cookie;
/*@end*/
        } raw_tracepoint;
        struct { __u32 attach_type; __u32 target_obj_id; __u32 target_btf_id;
/*@requires libbpf >= 1.6*/
                 __u64 cookie;
/*@end*/
        } tracing;
        struct { __u64 cgroup_id; __u32 attach_type; } cgroup;
        bpflink_link_iter_info iter;
        struct { __u32 netns_ino; __u32 attach_type; } netns;
        struct { __u32 ifindex; } xdp;
        struct { __u32 map_id; } struct_ops;
        struct { __u32 pf; __u32 hooknum; __s32 priority; __u32 flags; } netfilter;
        struct { __u64 addrs; __u32 count; __u32 flags; __u64 missed; __u64 cookies; } kprobe_multi;
        struct { __u64 path; __u64 offsets; __u64 ref_ctr_offsets; __u64 cookies; __u32 path_size; __u32 count;
                 __u32 flags; __u32 pid; } uprobe_multi;
        bpflink_link_perf_event_info perf_event;
        struct { __u32 ifindex; __u32 attach_type; } tcx;
        struct { __u32 ifindex; __u32 attach_type; } netkit;
/*@requires libbpf >= 1.5*/
        struct { __u32 map_id; __u32 attach_type; } sockmap;
/*@end*/
    };
    ...;
};
struct bpf_prog_info {
    __u32 type;
    __u32 id;
    char name[...];
    __u32 btf_id;
    unsigned char tag[8];
    __u32 nr_map_ids;
    __u64 map_ids;
    ...;
};
int bpf_prog_get_info_by_fd(int prog_fd, struct bpf_prog_info *info, __u32 *info_len);
int bpf_prog_get_fd_by_id(__u32 id);
int bpf_prog_get_next_id(__u32 start_id, __u32 *next_id);
