// Iterator programs for tests/test_iter.py. Each prints one line per object with bpf_seq_printf; the test
// reads the lines back through Link.read_iter(). The kernel types are reduced to the members read here
// (CO-RE relocates them against vmlinux BTF).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct seq_file;
struct bpf_iter_meta {
    struct seq_file *seq;
    __u64 session_id;
    __u64 seq_num;
} __attribute__((preserve_access_index));

struct task_struct {
    int pid;
    int tgid;
    char comm[16];
} __attribute__((preserve_access_index));

struct bpf_iter__task {
    struct bpf_iter_meta *meta;
    struct task_struct *task;
} __attribute__((preserve_access_index));

struct kernfs_node {
    __u64 id;
} __attribute__((preserve_access_index));

struct cgroup {
    struct kernfs_node *kn;
    int level;
} __attribute__((preserve_access_index));

struct bpf_iter__cgroup {
    struct bpf_iter_meta *meta;
    struct cgroup *cgroup;
} __attribute__((preserve_access_index));

// "tgid pid comm" per task (thread)
SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
    struct seq_file *seq = ctx->meta->seq;
    struct task_struct *task = ctx->task;

    if (!task)
        return 0;
    BPF_SEQ_PRINTF(seq, "%d %d %s\n", task->tgid, task->pid, task->comm);
    return 0;
}

// "cgroup_id level" per cgroup visited
SEC("iter/cgroup")
int dump_cgroup(struct bpf_iter__cgroup *ctx)
{
    struct seq_file *seq = ctx->meta->seq;
    struct cgroup *cgrp = ctx->cgroup;

    if (!cgrp)
        return 0;
    BPF_SEQ_PRINTF(seq, "%llu %d\n", cgrp->kn->id, cgrp->level);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
