// A program the verifier refuses (reads past the map value) next to one it accepts: load errors name the culprit.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} slots SEC(".maps");

SEC("socket")
int fine_prog(struct __sk_buff *skb)
{
    return 0;
}

SEC("socket")
int reads_past_value(struct __sk_buff *skb)
{
    __u32 key = 0;
    __u64 *v = bpf_map_lookup_elem(&slots, &key);
    if (!v)
        return 0;
    return (int)v[4];
}

char LICENSE[] SEC("license") = "GPL";
