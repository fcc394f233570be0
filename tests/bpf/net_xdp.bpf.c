// XDP on the receiving veth end: count the test's UDP datagrams (port TEST_PORT) and drop them ("xdp_drop") or
// let them pass ("xdp_pass"). Everything else passes untouched.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define TEST_PORT 47001 /* tests/netns.py TEST_PORT */

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

static __always_inline int is_test_udp(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = (void *)(eth + 1);
    struct udphdr *udp;

    if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP)
        return 0;
    udp = (void *)ip + ip->ihl * 4;
    if ((void *)(udp + 1) > end)
        return 0;
    return udp->dest == bpf_htons(TEST_PORT);
}

static __always_inline void bump(__u32 key)
{
    __u64 *value = bpf_map_lookup_elem(&counters, &key);
    if (value)
        __sync_fetch_and_add(value, 1);
}

SEC("xdp")
int xdp_drop(struct xdp_md *ctx)
{
    if (!is_test_udp(ctx))
        return XDP_PASS;
    bump(0);
    return XDP_DROP;
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
    if (!is_test_udp(ctx))
        return XDP_PASS;
    bump(1);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
