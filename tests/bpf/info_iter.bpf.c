// A task iterator for tests/test_info.py: writes the pid of every task it visits (u32) to the seq file.
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
} __attribute__((preserve_access_index));

struct bpf_iter__task {
    struct bpf_iter_meta *meta;
    struct task_struct *task;
} __attribute__((preserve_access_index));

SEC("iter/task")
int dump_pids(struct bpf_iter__task *ctx)
{
    struct task_struct *task = ctx->task;
    __u32 pid;

    if (!task)
        return 0;
    pid = task->pid;
    bpf_seq_write(ctx->meta->seq, &pid, sizeof(pid));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
