// kprobe/uprobe sessions: one program at entry and at return. At entry it returns 0 (return run wanted),
// except for cookie 2 where it returns 1 (return run skipped), so the test sees the kernel obey it.
#include "trace_common.h"

// Entry or return? Not through the bpf_session_is_return kfunc: its prototype changed (Linux 7.x takes ctx) and
// libbpf refuses a declaration that does not match the running kernel. A per-task, per-probe flag does it on
// every kernel with sessions: set at entry when a return run will follow, found and cleared at return.
struct in_flight_key {
    __u64 pid_tgid;
    __u64 cookie;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, struct in_flight_key);
    __type(value, __u8);
} in_flight SEC(".maps");

static __always_inline int session(struct pt_regs *ctx)
{
    __u64 cookie = bpf_get_attach_cookie(ctx);
    struct in_flight_key key = { .pid_tgid = bpf_get_current_pid_tgid(), .cookie = cookie };
    __u8 one = 1;

    if (!wanted())
        return 0;
    if (bpf_map_lookup_elem(&in_flight, &key)) {
        bpf_map_delete_elem(&in_flight, &key);
        bump(cookie | TAG_RETURN);
        remember(cookie, PT_REGS_RC(ctx));
        return 0;
    }
    bump(cookie | TAG_ENTRY);
    if (cookie == 2)
        return 1; // no return run wanted: the kernel must skip it
    bpf_map_update_elem(&in_flight, &key, &one, BPF_ANY);
    return 0;
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
