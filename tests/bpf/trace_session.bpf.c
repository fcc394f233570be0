// kprobe/uprobe sessions: one program at entry and at return. At entry it returns 0 (return run wanted),
// except for cookie 2 where it returns 1 (return run skipped), so the test sees the kernel obey it.
#include "trace_common.h"

// the kfunc as Linux 6.10..6.18 declare it (no arguments); libbpf resolves it against the kernel's BTF
extern bool bpf_session_is_return(void) __ksym;

static __always_inline int session(struct pt_regs *ctx)
{
    __u64 cookie = bpf_get_attach_cookie(ctx);
    if (!wanted())
        return 0;
    if (bpf_session_is_return()) {
        bump(cookie | TAG_RETURN);
        remember(cookie, PT_REGS_RC(ctx));
        return 0;
    }
    bump(cookie | TAG_ENTRY);
    return cookie == 2;
}

SEC("uprobe.session")
int uprobe_session(struct pt_regs *ctx)
{
    return session(ctx);
}

SEC("kprobe.session")
int kprobe_session(struct pt_regs *ctx)
{
    return session(ctx);
}
