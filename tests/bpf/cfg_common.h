/* Shared by attach_extra.bpf.c and attach_sections.bpf.c: the settings a test writes before it triggers a
 * program, cfg[0] = the tgid to count (0: any process) and cfg[1] as each program says, read with cfg_get. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} cfg SEC(".maps");

static __always_inline __u64 cfg_get(__u32 i)
{
    __u64 *v = bpf_map_lookup_elem(&cfg, &i);
    return v ? *v : 0;
}
