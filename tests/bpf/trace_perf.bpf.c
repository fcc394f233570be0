// perf_event links: count per attach cookie (tracepoint, kprobe/kretprobe and uprobe perf events).
#include "trace_common.h"

SEC("tracepoint")
int tp_cookie(void *ctx)
{
    if (wanted())
        bump(bpf_get_attach_cookie(ctx));
    return 0;
}

SEC("kprobe")
int kprobe_cookie(struct pt_regs *ctx)
{
    if (wanted())
        bump(bpf_get_attach_cookie(ctx));
    return 0;
}

SEC("uprobe")
int uprobe_cookie(struct pt_regs *ctx)
{
    if (wanted())
        bump(bpf_get_attach_cookie(ctx));
    return 0;
}
