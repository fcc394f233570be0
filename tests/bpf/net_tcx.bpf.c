// tcx programs for the test's UDP datagrams (port TEST_PORT); other packets go on untouched (TCX_NEXT).
// tag_a/tag_b/tag_c append their letter to `order` and return TCX_NEXT, so one datagram leaves the execution
// order of the hook in the map; count_drop counts and drops, count_pass counts and passes.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define TEST_PORT 47001 /* tests/netns.py TEST_PORT */
#define ORDER_SLOTS 16

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

/* slot 0: how many entries `order` holds */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} order_len SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, ORDER_SLOTS);
    __type(key, __u32);
    __type(value, __u32);
} order SEC(".maps");

static __always_inline int is_test_udp(struct __sk_buff *skb)
{
    void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
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

static __always_inline int record(struct __sk_buff *skb, __u32 tag)
{
    __u32 zero = 0, i, *len, *slot;

    if (!is_test_udp(skb))
        return TCX_NEXT;
    len = bpf_map_lookup_elem(&order_len, &zero);
    if (!len)
        return TCX_NEXT;
    /* the test sends one datagram at a time: no concurrent writers */
    i = *len;
    *len = i + 1;
    slot = bpf_map_lookup_elem(&order, &i);
    if (slot)
        *slot = tag;
    return TCX_NEXT;
}

static __always_inline int count(struct __sk_buff *skb, __u32 key, int verdict)
{
    __u64 *value;

    if (!is_test_udp(skb))
        return TCX_NEXT;
    value = bpf_map_lookup_elem(&counters, &key);
    if (value)
        __sync_fetch_and_add(value, 1);
    return verdict;
}

SEC("tc")
int tag_a(struct __sk_buff *skb) { return record(skb, 'A'); }

SEC("tc")
int tag_b(struct __sk_buff *skb) { return record(skb, 'B'); }

SEC("tc")
int tag_c(struct __sk_buff *skb) { return record(skb, 'C'); }

SEC("tc")
int count_drop(struct __sk_buff *skb) { return count(skb, 0, TCX_DROP); }

SEC("tc")
int count_pass(struct __sk_buff *skb) { return count(skb, 1, TCX_PASS); }

char LICENSE[] SEC("license") = "GPL";
