// Map element iterator for tests/test_iter.py, apart from iter_dump.bpf.c because some kernels refuse to load
// it (EPERM) while they load task and cgroup iterators.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct seq_file;
struct bpf_iter_meta {
    struct seq_file *seq;
    __u64 session_id;
    __u64 seq_num;
} __attribute__((preserve_access_index));

struct bpf_map;
struct bpf_iter__bpf_map_elem {
    struct bpf_iter_meta *meta;
    struct bpf_map *map;
    void *key;
    void *value;
} __attribute__((preserve_access_index));

// "key value" per element of a map with u32 keys and u64 values
SEC("iter/bpf_map_elem")
int dump_map(struct bpf_iter__bpf_map_elem *ctx)
{
    struct seq_file *seq = ctx->meta->seq;
    __u32 *key = ctx->key;
    __u64 *value = ctx->value;

    if (!key || !value)
        return 0;
    BPF_SEQ_PRINTF(seq, "%u %llu\n", *key, *value);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
