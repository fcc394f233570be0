// USDT programs for tests/test_usdt.py: libbpf's BPF-side USDT helpers (<bpf/usdt.bpf.h>) unchanged, so the
// spec maps bpflink fills must be exactly what libbpf's user-space side writes.
#include "trace_common.h"
#include <bpf/usdt.bpf.h>

#define TAG_ARGCNT (3ULL << 32)
#define TAG_ARG(i) ((4ULL + (i)) << 32)
#define NAME_LEN 64

/* counts per (file, function) of python:function__entry, read from the probe's first two arguments */
struct py_key {
    char file[NAME_LEN];
    char func[NAME_LEN];
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, struct py_key);
    __type(value, __u64);
} py_calls SEC(".maps");

static __always_inline void add(__u64 key, __u64 delta)
{
    __u64 *value = bpf_map_lookup_elem(&values, &key);
    if (value) {
        __sync_fetch_and_add(value, delta);
        return;
    }
    if (bpf_map_update_elem(&values, &key, &delta, BPF_NOEXIST) == 0)
        return;
    value = bpf_map_lookup_elem(&values, &key);
    if (value)
        __sync_fetch_and_add(value, delta);
}

/* any probe: hits per attach cookie, the argument count, and the sum of each of the first three arguments */
static __always_inline int generic(struct pt_regs *ctx)
{
    __u64 cookie = bpf_usdt_cookie(ctx);
    long v;
    int i;

    if (!wanted())
        return 0;
    bump(cookie);
    remember(cookie | TAG_ARGCNT, bpf_usdt_arg_cnt(ctx));
    for (i = 0; i < 3; i++) {
        if (bpf_usdt_arg(ctx, i, &v) == 0)
            add(cookie | TAG_ARG(i), v);
    }
    return 0;
}

SEC("usdt")
int usdt_generic(struct pt_regs *ctx)
{
    return generic(ctx);
}

/* the same through SEC("uprobe"): libbpf loads it without uprobe_multi's attach type, so bpflink attaches it with
 * one perf-event uprobe per call site (the path 6.1 kernels take for every usdt program) */
SEC("uprobe")
int usdt_generic_perf(struct pt_regs *ctx)
{
    return generic(ctx);
}

static __always_inline int count_py(void *file, void *func)
{
    struct py_key key = {};
    __u64 one = 1, *value;

    if (!wanted())
        return 0;
    bpf_probe_read_user_str(key.file, sizeof(key.file), file);
    bpf_probe_read_user_str(key.func, sizeof(key.func), func);
    value = bpf_map_lookup_elem(&py_calls, &key);
    if (value)
        __sync_fetch_and_add(value, 1);
    else if (bpf_map_update_elem(&py_calls, &key, &one, BPF_NOEXIST) != 0) {
        value = bpf_map_lookup_elem(&py_calls, &key);
        if (value)
            __sync_fetch_and_add(value, 1);
    }
    return 0;
}

SEC("usdt")
int BPF_USDT(py_entry, void *file, void *func, int line)
{
    return count_py(file, func);
}

/* auto-attach section: obj.attach() / bpflink.usdt.attach_section() resolve BINARY:PROVIDER:NAME */
SEC("usdt//usr/bin/python3.11:python:function__entry")
int BPF_USDT(py_entry_auto, void *file, void *func, int line)
{
    return count_py(file, func);
}
