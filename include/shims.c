/* bpflink's own C helpers, compiled into bpflink._ffi after <bpf/bpf.h> and <bpf/libbpf.h>. */
#include <stddef.h>
#include <stdio.h>
#include <stdarg.h>

#define BPFLINK_LIBBPF_AT_LEAST(maj, min) \
    (LIBBPF_MAJOR_VERSION > (maj) || (LIBBPF_MAJOR_VERSION == (maj) && LIBBPF_MINOR_VERSION >= (min)))

struct bpflink_layout { const char *type; const char *member; size_t offset; size_t size; };

#define BPFLINK_MEMBER(type, member) \
    { #type, #member, offsetof(type, member), sizeof(((type *)0)->member) }

const struct bpflink_layout bpflink_layout_table[] = {
    BPFLINK_MEMBER(struct bpf_link_create_opts, perf_event.bpf_cookie),
    BPFLINK_MEMBER(struct bpf_link_create_opts, kprobe_multi.flags),
    BPFLINK_MEMBER(struct bpf_link_create_opts, kprobe_multi.cnt),
    BPFLINK_MEMBER(struct bpf_link_create_opts, kprobe_multi.syms),
    BPFLINK_MEMBER(struct bpf_link_create_opts, kprobe_multi.addrs),
    BPFLINK_MEMBER(struct bpf_link_create_opts, kprobe_multi.cookies),
    BPFLINK_MEMBER(struct bpf_link_create_opts, uprobe_multi.flags),
    BPFLINK_MEMBER(struct bpf_link_create_opts, uprobe_multi.cnt),
    BPFLINK_MEMBER(struct bpf_link_create_opts, uprobe_multi.path),
    BPFLINK_MEMBER(struct bpf_link_create_opts, uprobe_multi.offsets),
    BPFLINK_MEMBER(struct bpf_link_create_opts, uprobe_multi.ref_ctr_offsets),
    BPFLINK_MEMBER(struct bpf_link_create_opts, uprobe_multi.cookies),
    BPFLINK_MEMBER(struct bpf_link_create_opts, uprobe_multi.pid),
    BPFLINK_MEMBER(struct bpf_link_create_opts, tracing.cookie),
    BPFLINK_MEMBER(struct bpf_link_create_opts, netfilter.pf),
    BPFLINK_MEMBER(struct bpf_link_create_opts, netfilter.hooknum),
    BPFLINK_MEMBER(struct bpf_link_create_opts, netfilter.priority),
    BPFLINK_MEMBER(struct bpf_link_create_opts, netfilter.flags),
    BPFLINK_MEMBER(struct bpf_link_create_opts, tcx.relative_fd),
    BPFLINK_MEMBER(struct bpf_link_create_opts, tcx.relative_id),
    BPFLINK_MEMBER(struct bpf_link_create_opts, tcx.expected_revision),
    BPFLINK_MEMBER(struct bpf_link_create_opts, netkit.relative_fd),
    BPFLINK_MEMBER(struct bpf_link_create_opts, netkit.relative_id),
    BPFLINK_MEMBER(struct bpf_link_create_opts, netkit.expected_revision),
#if BPFLINK_LIBBPF_AT_LEAST(1, 6)
    BPFLINK_MEMBER(struct bpf_link_create_opts, cgroup.relative_fd),
    BPFLINK_MEMBER(struct bpf_link_create_opts, cgroup.relative_id),
    BPFLINK_MEMBER(struct bpf_link_create_opts, cgroup.expected_revision),
#endif
    BPFLINK_MEMBER(struct bpf_prog_query_opts, prog_cnt),
    BPFLINK_MEMBER(struct bpf_prog_query_opts, count),
};
const size_t bpflink_layout_count = sizeof(bpflink_layout_table) / sizeof(bpflink_layout_table[0]);

static void _bpflink_on_libbpf_print(int level, const char *msg);

static int bpflink_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
    char line[2048];
    vsnprintf(line, sizeof(line), fmt, args);
    _bpflink_on_libbpf_print((int)level, line);
    return 0;
}

void bpflink_route_libbpf_print(int enable)
{
    libbpf_set_print(enable ? bpflink_print : NULL);
}
