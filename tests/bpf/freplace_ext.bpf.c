// EXT programs for tests/test_freplace.py: replacements for decide() of freplace_target.bpf.c. They drop the
// test's port and count each call, so the target's verdict visibly changes while the freplace link lives.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define TEST_PORT 47001 /* tests/netns.py TEST_PORT */

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} calls SEC(".maps");

static __always_inline void bump(__u32 key)
{
    __u64 *value = bpf_map_lookup_elem(&calls, &key);
    if (value)
        __sync_fetch_and_add(value, 1);
}

SEC("freplace/decide")
int decide_drop(__u32 port)
{
    bump(0);
    return port == TEST_PORT ? SK_DROP : SK_PASS;
}

SEC("freplace/decide")
int decide_drop_too(__u32 port)
{
    bump(1);
    return port == TEST_PORT ? SK_DROP : SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
