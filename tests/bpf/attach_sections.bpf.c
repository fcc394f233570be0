// bpflink.attach: one program per section convention, each counting into hits[key] for this test's process
// (cfg[0] = tgid; cfg[1] = the getppid syscall number for the raw tracepoint).
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "cfg_common.h"

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 32);
    __type(key, __u32);
    __type(value, __u64);
} hits SEC(".maps");

static __always_inline int mine(void)
{
    __u64 tgid = cfg_get(0);
    return !tgid || tgid == bpf_get_current_pid_tgid() >> 32;
}

static __always_inline void bump(__u32 key)
{
    __u64 *v = bpf_map_lookup_elem(&hits, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_tp(void *ctx) { if (mine()) bump(1); return 0; }

SEC("raw_tp/sys_enter")
int on_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
    if (mine() && ctx->args[1] == cfg_get(1))
        bump(2);
    return 0;
}

SEC("uprobe/libc.so.6:getppid")
int on_uprobe(struct pt_regs *ctx) { if (mine()) bump(3); return 0; }

SEC("uretprobe.multi/libc.so.6:getppi*")
int on_uretprobe_multi(struct pt_regs *ctx) { if (mine()) bump(4); return 0; }

SEC("iter/task")
int on_iter(void *ctx) { bump(5); return 0; }

SEC("perf_event")
int on_sample(void *ctx) { bump(6); return 0; }

SEC("xdp")
int on_xdp(struct xdp_md *ctx) { bump(7); return XDP_PASS; }

SEC("cgroup_skb/egress")
int on_egress(struct __sk_buff *skb) { bump(8); return 1; }

SEC("kprobe")
int on_bare_kprobe(struct pt_regs *ctx) { bump(9); return 0; }

SEC("tracepoint")
int on_bare_tp(void *ctx) { if (mine()) bump(10); return 0; }

SEC("uprobe")
int on_bare_uprobe(struct pt_regs *ctx) { if (mine()) bump(11); return 0; }

/* kprobes (tests/test_attach_kprobe.py): getpgid(2) calls security_task_getpgid once per call */
SEC("kprobe/security_task_getpgid")
int on_kprobe(struct pt_regs *ctx) { if (mine()) bump(12); return 0; }

SEC("kretprobe/security_task_getpgid")
int on_kretprobe(struct pt_regs *ctx) { if (mine()) bump(13); return 0; }

SEC("ksyscall/getpgid")
int on_ksyscall(struct pt_regs *ctx) { if (mine()) bump(14); return 0; }

SEC("kprobe.multi/security_task_getpg*")
int on_kprobe_multi(struct pt_regs *ctx) { if (mine()) bump(15); return 0; }

SEC("kprobe.multi")
int on_kprobe_multi_bare(struct pt_regs *ctx) { if (mine()) bump(16); return 0; }

/* tp_btf: attached with BPF_RAW_TRACEPOINT_OPEN (no name), which kernels before 6.10 also take */
SEC("tp_btf/sys_enter")
int on_tp_btf(__u64 *ctx)
{
    if (mine() && ctx[1] == cfg_get(1))
        bump(17);
    return 0;
}
