// Data-path test object: per-syscall counts for one process. A .rodata target pid set before load, .bss and
// .data counters read live, a per-CPU counter, a hash keyed by a struct with a char comm[16].
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct comm_key {
    __u32 pid;
    char comm[16];
};

struct comm_val {
    __u64 count;
    __s32 last_nr;
    __u8 flags[4];
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, struct comm_key);
    __type(value, struct comm_val);
} by_comm SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} percpu_hits SEC(".maps");

const volatile __u32 target_tgid = 0;
const volatile __s16 nr_filter = -1;
const volatile char tag[8] = "none";
__u64 hits = 0;                 /* .bss */
__s32 last_nr = -1;             /* .data */
__u64 scale = 3;                /* .data */
struct comm_key last_key = {};  /* .bss */
__u32 seen_tag = 0;             /* .bss */
__u16 ports[4] = {1, 2, 3, 4};  /* .data */
struct comm_val defaults = {.count = 1}; /* .data */

struct sys_enter_args {
    __u64 pad;
    long id;
    unsigned long args[6];
};

SEC("tracepoint/raw_syscalls/sys_enter")
int count_sys_enter(struct sys_enter_args *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    if ((__u32)(id >> 32) != target_tgid)
        return 0;
    if (nr_filter >= 0 && ctx->id != nr_filter)
        return 0;
    __sync_fetch_and_add(&hits, 1);
    last_nr = ctx->id;
    seen_tag = tag[0] | (tag[1] << 8);
    __u32 zero = 0;
    __u64 *c = bpf_map_lookup_elem(&percpu_hits, &zero);
    if (c)
        *c += 1;
    struct comm_key key = {};
    key.pid = (__u32)id;
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    last_key = key;
    struct comm_val *v = bpf_map_lookup_elem(&by_comm, &key);
    if (v) {
        __sync_fetch_and_add(&v->count, scale);
        v->last_nr = ctx->id;
    } else {
        struct comm_val init = {.count = scale, .last_nr = ctx->id, .flags = {1, 2, 3, 4}};
        bpf_map_update_elem(&by_comm, &key, &init, BPF_NOEXIST);
    }
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
