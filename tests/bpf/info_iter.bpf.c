// An iterator over a map's elements for tests/test_info.py: writes every key (u32) to the seq file.
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

SEC("iter/bpf_map_elem")
int dump_keys(struct bpf_iter__bpf_map_elem *ctx)
{
    __u32 *key = ctx->key;

    if (!key || !ctx->value)
        return 0;
    bpf_seq_write(ctx->meta->seq, key, sizeof(*key));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
