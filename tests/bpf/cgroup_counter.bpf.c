// Counts egress packets of the cgroup and drops them (program "count_drop") or lets them pass ("count_pass").
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

static __always_inline void bump(__u32 key)
{
    __u64 *value = bpf_map_lookup_elem(&counters, &key);
    if (value)
        __sync_fetch_and_add(value, 1);
}

SEC("cgroup_skb/egress")
int count_drop(struct __sk_buff *skb)
{
    bump(0);
    return 0;
}

SEC("cgroup_skb/egress")
int count_pass(struct __sk_buff *skb)
{
    bump(1);
    return 1;
}

char LICENSE[] SEC("license") = "GPL";
