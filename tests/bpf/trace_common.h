/* Shared by the trace_*.bpf.c test programs: a hits map keyed by u64 (the attach cookie, plus a tag),
 * a value map (last return value seen per key) and a tgid filter in cfg[0] (0: count every process). */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define TAG_RETURN (1ULL << 32)
#define TAG_ENTRY (2ULL << 32)

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} cfg SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 256);
    __type(key, __u64);
    __type(value, __u64);
} hits SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 256);
    __type(key, __u64);
    __type(value, __u64);
} values SEC(".maps");

static __always_inline int wanted(void)
{
    __u32 zero = 0;
    __u64 *tgid = bpf_map_lookup_elem(&cfg, &zero);
    return !tgid || !*tgid || *tgid == bpf_get_current_pid_tgid() >> 32;
}

static __always_inline void bump(__u64 key)
{
    __u64 one = 1, *value = bpf_map_lookup_elem(&hits, &key);
    if (value) {
        __sync_fetch_and_add(value, 1);
        return;
    }
    if (bpf_map_update_elem(&hits, &key, &one, BPF_NOEXIST) == 0)
        return;
    value = bpf_map_lookup_elem(&hits, &key); /* another CPU inserted it first */
    if (value)
        __sync_fetch_and_add(value, 1);
}

static __always_inline void remember(__u64 key, __u64 value)
{
    bpf_map_update_elem(&values, &key, &value, BPF_ANY);
}
