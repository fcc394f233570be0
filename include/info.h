/* bpflink cdef: struct bpf_link_info (uapi <linux/bpf.h>), decoded in info.py. The per-type union is anonymous
 * with named structs, and nested anonymous members cannot be partial in cffi: each struct below lists a prefix of
 * the uapi members (that is all cffi needs to place them), and build_ffi.py generates an offsetof table of every
 * one, checked against the C compiler at import. A member newer than the oldest uapi header bpflink builds
 * against (Linux 6.1's) sits in an @if block: build_ffi.py drops it when the headers lack it, and
 * bpflink._native.has() says so at run time. Unnamed padding bitfields are left out: natural alignment puts
 * the next member at the same offset. */
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
/*@if struct bpf_link_info.perf_event*/
typedef struct {
    __u32 type;
    union {
        struct { __u64 file_name; __u32 name_len; __u32 offset;
/*@if struct bpf_link_info.perf_event.uprobe.cookie*/
                 __u64 cookie;
/*@end*/
/*@if struct bpf_link_info.perf_event.uprobe.ref_ctr_offset*/
                 __u64 ref_ctr_offset;
/*@end*/
        } uprobe;
        struct { __u64 func_name; __u32 name_len; __u32 offset; __u64 addr;
/*@if struct bpf_link_info.perf_event.kprobe.missed*/
                 __u64 missed;
/*@end*/
/*@if struct bpf_link_info.perf_event.kprobe.cookie*/
                 __u64 cookie;
/*@end*/
        } kprobe;
        struct { __u64 tp_name; __u32 name_len;
/*@if struct bpf_link_info.perf_event.tracepoint.cookie*/
                 __u64 cookie;
/*@end*/
        } tracepoint;
        struct { __u64 config; __u32 type;
/*@if struct bpf_link_info.perf_event.event.cookie*/
                 __u64 cookie;
/*@end*/
        } event;
    };
    ...;
} bpflink_link_perf_event_info;
/*@end*/
struct bpf_link_info {
    __u32 type;
    __u32 id;
    __u32 prog_id;
    union {
        struct { __u64 tp_name; __u32 tp_name_len;
/*@if struct bpf_link_info.raw_tracepoint.cookie*/
                 __u64 cookie;
/*@end*/
        } raw_tracepoint;
        struct { __u32 attach_type; __u32 target_obj_id; __u32 target_btf_id;
/*@if struct bpf_link_info.tracing.cookie*/
                 __u64 cookie;
/*@end*/
        } tracing;
        struct { __u64 cgroup_id; __u32 attach_type; } cgroup;
        bpflink_link_iter_info iter;
        struct { __u32 netns_ino; __u32 attach_type; } netns;
        struct { __u32 ifindex; } xdp;
/*@if struct bpf_link_info.struct_ops*/
        struct { __u32 map_id; } struct_ops;
/*@end*/
/*@if struct bpf_link_info.netfilter*/
        struct { __u32 pf; __u32 hooknum; __s32 priority; __u32 flags; } netfilter;
/*@end*/
/*@if struct bpf_link_info.kprobe_multi*/
        struct { __u64 addrs; __u32 count; __u32 flags;
/*@if struct bpf_link_info.kprobe_multi.missed*/
                 __u64 missed;
/*@end*/
/*@if struct bpf_link_info.kprobe_multi.cookies*/
                 __u64 cookies;
/*@end*/
        } kprobe_multi;
/*@end*/
/*@if struct bpf_link_info.uprobe_multi*/
        struct { __u64 path; __u64 offsets; __u64 ref_ctr_offsets; __u64 cookies; __u32 path_size; __u32 count;
                 __u32 flags; __u32 pid; } uprobe_multi;
/*@end*/
/*@if struct bpf_link_info.perf_event*/
        bpflink_link_perf_event_info perf_event;
/*@end*/
/*@if struct bpf_link_info.tcx*/
        struct { __u32 ifindex; __u32 attach_type; } tcx;
/*@end*/
/*@if struct bpf_link_info.netkit*/
        struct { __u32 ifindex; __u32 attach_type; } netkit;
/*@end*/
/*@if struct bpf_link_info.sockmap*/
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
