// Netfilter program for tests/test_netfilter.py: drop ("nf_drop") or count and accept ("nf_accept") the
// test's UDP datagrams (port TEST_PORT); everything else is accepted untouched.
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define TEST_PORT 47001 /* tests/netns.py TEST_PORT */
#define NF_DROP 0
#define NF_ACCEPT 1

// The kernel's types, reduced to the members read here; CO-RE relocates them against vmlinux BTF.
struct sk_buff {
    unsigned char *head;
    __u16 network_header;
} __attribute__((preserve_access_index));

struct nf_hook_state;
struct bpf_nf_ctx {
    const struct nf_hook_state *state;
    struct sk_buff *skb;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

static __always_inline int is_test_udp(struct bpf_nf_ctx *ctx)
{
    struct sk_buff *skb = ctx->skb;
    unsigned char *ip_start = skb->head + skb->network_header;
    struct iphdr ip;
    struct udphdr udp;

    if (bpf_probe_read_kernel(&ip, sizeof(ip), ip_start) || ip.version != 4 || ip.protocol != IPPROTO_UDP)
        return 0;
    if (bpf_probe_read_kernel(&udp, sizeof(udp), ip_start + ip.ihl * 4))
        return 0;
    return udp.dest == bpf_htons(TEST_PORT);
}

static __always_inline void bump(__u32 key)
{
    __u64 *value = bpf_map_lookup_elem(&counters, &key);
    if (value)
        __sync_fetch_and_add(value, 1);
}

SEC("netfilter")
int nf_drop(struct bpf_nf_ctx *ctx)
{
    if (!is_test_udp(ctx))
        return NF_ACCEPT;
    bump(0);
    return NF_DROP;
}

SEC("netfilter")
int nf_accept(struct bpf_nf_ctx *ctx)
{
    if (is_test_udp(ctx))
        bump(1);
    return NF_ACCEPT;
}

char LICENSE[] SEC("license") = "GPL";
