// kprobe_multi and uprobe_multi links: count per attach cookie; return probes also keep the return value.
#include "trace_common.h"

SEC("uprobe.multi")
int uprobe_multi_entry(struct pt_regs *ctx)
{
    if (wanted())
        bump(bpf_get_attach_cookie(ctx));
    return 0;
}

SEC("uretprobe.multi")
int uprobe_multi_return(struct pt_regs *ctx)
{
    __u64 cookie = bpf_get_attach_cookie(ctx);
    if (wanted()) {
        bump(cookie | TAG_RETURN);
        remember(cookie, PT_REGS_RC(ctx));
    }
    return 0;
}

SEC("kprobe.multi")
int kprobe_multi_entry(struct pt_regs *ctx)
{
    if (wanted())
        bump(bpf_get_attach_cookie(ctx));
    return 0;
}

SEC("kretprobe.multi")
int kprobe_multi_return(struct pt_regs *ctx)
{
    __u64 cookie = bpf_get_attach_cookie(ctx);
    if (wanted()) {
        bump(cookie | TAG_RETURN);
        remember(cookie, PT_REGS_RC(ctx));
    }
    return 0;
}
