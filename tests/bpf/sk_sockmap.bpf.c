// Sockmap programs for tests/test_sockmap.py: each counts what it sees in counters[<slot>] and passes or
// drops it. They run for sockets the test puts into a sockmap/sockhash that a sockmap link attaches them to.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 8);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

static __always_inline void bump(__u32 key)
{
    __u64 *value = bpf_map_lookup_elem(&counters, &key);
    if (value)
        __sync_fetch_and_add(value, 1);
}

// BPF_SK_MSG_VERDICT: runs on sendmsg() of a socket in the map
SEC("sk_msg")
int msg_pass(struct sk_msg_md *msg)
{
    bump(0);
    return SK_PASS;
}

SEC("sk_msg")
int msg_drop(struct sk_msg_md *msg)
{
    bump(1);
    return SK_DROP;
}

// BPF_SK_SKB_STREAM_PARSER: the whole skb is one message
SEC("sk_skb/stream_parser")
int skb_parse(struct __sk_buff *skb)
{
    bump(2);
    return skb->len;
}

// BPF_SK_SKB_STREAM_VERDICT: runs on data received by a socket in the map
SEC("sk_skb/stream_verdict")
int skb_stream_pass(struct __sk_buff *skb)
{
    bump(3);
    return SK_PASS;
}

SEC("sk_skb/stream_verdict")
int skb_stream_drop(struct __sk_buff *skb)
{
    bump(4);
    return SK_DROP;
}

// BPF_SK_SKB_VERDICT: like stream_verdict, without a parser
SEC("sk_skb/verdict")
int skb_verdict_drop(struct __sk_buff *skb)
{
    bump(5);
    return SK_DROP;
}

char LICENSE[] SEC("license") = "GPL";
