// Network-namespace programs for tests/test_netns_links.py: sk_lookup (runs when the namespace looks up a
// socket for an arriving packet) and flow_dissector (runs when the namespace dissects a packet, e.g. for an
// RPS hash). They act only on the test's port TEST_PORT and count what they see.
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#define TEST_PORT 47001 /* tests/netns.py TEST_PORT */

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

static __always_inline void bump(__u32 key)
{
    __u64 *value = bpf_map_lookup_elem(&counters, &key);
    if (value)
        __sync_fetch_and_add(value, 1);
}

// counters[0]: lookups for TEST_PORT seen by lookup_pass
SEC("sk_lookup")
int lookup_pass(struct bpf_sk_lookup *ctx)
{
    if (ctx->local_port == TEST_PORT)
        bump(0);
    return SK_PASS;
}

// counters[1]: lookups for TEST_PORT refused by lookup_drop
SEC("sk_lookup")
int lookup_drop(struct bpf_sk_lookup *ctx)
{
    if (ctx->local_port != TEST_PORT)
        return SK_PASS;
    bump(1);
    return SK_DROP;
}

// counters[2]: packets dissected. Only counts, then reports no keys: the kernel's hash gets no flow fields.
SEC("flow_dissector")
int dissect_count(struct __sk_buff *skb)
{
    bump(2);
    return BPF_OK;
}

char LICENSE[] SEC("license") = "GPL";
