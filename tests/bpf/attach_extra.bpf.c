// bpflink.attach helpers not covered by attach_sections (its own object, because a raw_tp program reading its
// cookie does not load before 6.10): a raw tracepoint by name with a cookie, and sampling perf events counted
// per CPU. cfg[0] = tgid to count (0: any); cfg[1] = the getppid syscall number.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "cfg_common.h"

char LICENSE[] SEC("license") = "GPL";

/* raw_tp: [0] calls seen, [1] the last cookie seen */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} raw_seen SEC(".maps");

/* samples per CPU (CPU numbers >= 256 are not counted) */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, __u64);
} samples SEC(".maps");

SEC("raw_tp/sys_enter")
int on_raw_tp_cookie(struct bpf_raw_tracepoint_args *ctx)
{
    __u64 tgid = cfg_get(0);
    __u32 k0 = 0, k1 = 1;
    __u64 *n, *last;

    if ((tgid && tgid != bpf_get_current_pid_tgid() >> 32) || ctx->args[1] != cfg_get(1))
        return 0;
    n = bpf_map_lookup_elem(&raw_seen, &k0);
    last = bpf_map_lookup_elem(&raw_seen, &k1);
    if (n && last) {
        __sync_fetch_and_add(n, 1);
        *last = bpf_get_attach_cookie(ctx);
    }
    return 0;
}

SEC("perf_event")
int on_sample_cpu(void *ctx)
{
    __u32 cpu = bpf_get_smp_processor_id();
    __u64 *v = bpf_map_lookup_elem(&samples, &cpu);

    if (v)
        __sync_fetch_and_add(v, 1);
    return 0;
}
