// Tracing links (fentry/fexit/fmod_ret/lsm/tp_btf) with cookies. security_task_getpgid is a plain global
// function on every architecture, and fmod_ret may modify security_* functions without error injection.
#include "trace_common.h"

SEC("fentry/security_task_getpgid")
int fentry_getpgid(void *ctx)
{
    if (wanted())
        bump(bpf_get_attach_cookie(ctx));
    return 0;
}

SEC("fexit/security_task_getpgid")
int fexit_getpgid(void *ctx)
{
    if (wanted())
        bump(bpf_get_attach_cookie(ctx) | TAG_RETURN);
    return 0;
}

// fail getpgid() with EPERM for the tgid in cfg only (never for other processes)
SEC("fmod_ret/security_task_getpgid")
int fmod_ret_getpgid(void *ctx)
{
    __u32 zero = 0;
    __u64 *tgid = bpf_map_lookup_elem(&cfg, &zero);
    if (!tgid || !*tgid || *tgid != bpf_get_current_pid_tgid() >> 32)
        return 0;
    bump(bpf_get_attach_cookie(ctx));
    return -1; /* -EPERM */
}

SEC("lsm/task_getpgid")
int lsm_getpgid(void *ctx)
{
    if (wanted())
        bump(bpf_get_attach_cookie(ctx));
    return 0;
}

SEC("tp_btf/sched_process_fork")
int tp_btf_fork(void *ctx)
{
    if (wanted())
        bump(bpf_get_attach_cookie(ctx));
    return 0;
}

// no cookie: before 6.10 tp_btf programs have no bpf_get_attach_cookie, so this one loads there too
SEC("tp_btf/sched_process_fork")
int tp_btf_plain(void *ctx)
{
    return 0;
}
