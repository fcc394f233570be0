// cgroup_skb egress programs for the test's UDP datagrams (port TEST_PORT): tag_a/tag_b/tag_c append their letter
// to `order` and let the packet pass, so one datagram leaves the cgroup hook's execution order in the map.
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define TEST_PORT 47001 /* tests/netns.py TEST_PORT */
#define ORDER_SLOTS 16

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

static __always_inline int record(struct __sk_buff *skb, __u32 tag)
{
    struct iphdr ip;
    struct udphdr udp;
    __u32 zero = 0, i, *len, *slot;

    /* cgroup_skb sees the packet from its IP header on */
    if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) || ip.version != 4 || ip.protocol != IPPROTO_UDP)
        return 1;
    if (bpf_skb_load_bytes(skb, ip.ihl * 4, &udp, sizeof(udp)) || udp.dest != bpf_htons(TEST_PORT))
        return 1;
    len = bpf_map_lookup_elem(&order_len, &zero);
    if (!len)
        return 1;
    /* the test sends one datagram at a time: no concurrent writers */
    i = *len;
    *len = i + 1;
    slot = bpf_map_lookup_elem(&order, &i);
    if (slot)
        *slot = tag;
    return 1;
}

SEC("cgroup_skb/egress")
int tag_a(struct __sk_buff *skb) { return record(skb, 'A'); }

SEC("cgroup_skb/egress")
int tag_b(struct __sk_buff *skb) { return record(skb, 'B'); }

SEC("cgroup_skb/egress")
int tag_c(struct __sk_buff *skb) { return record(skb, 'C'); }

char LICENSE[] SEC("license") = "GPL";
