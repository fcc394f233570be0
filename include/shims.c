/* bpflink's own C helpers, compiled into bpflink._ffi after <bpf/bpf.h> and <bpf/libbpf.h>. */
#include <stddef.h>
#include <stdio.h>
#include <stdarg.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#define BPFLINK_LIBBPF_AT_LEAST(maj, min) \
    (LIBBPF_MAJOR_VERSION > (maj) || (LIBBPF_MAJOR_VERSION == (maj) && LIBBPF_MINOR_VERSION >= (min)))

/* names for two anonymous member types of struct bpf_link_info (see include/info.h for why) */
typedef __typeof__(((struct bpf_link_info *)0)->iter) bpflink_link_iter_info;
typedef __typeof__(((struct bpf_link_info *)0)->perf_event) bpflink_link_perf_event_info;

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
    BPFLINK_MEMBER(struct bpf_link_info, raw_tracepoint.tp_name),
    BPFLINK_MEMBER(struct bpf_link_info, raw_tracepoint.tp_name_len),
    BPFLINK_MEMBER(struct bpf_link_info, tracing.attach_type),
    BPFLINK_MEMBER(struct bpf_link_info, tracing.target_obj_id),
    BPFLINK_MEMBER(struct bpf_link_info, tracing.target_btf_id),
    BPFLINK_MEMBER(struct bpf_link_info, cgroup.cgroup_id),
    BPFLINK_MEMBER(struct bpf_link_info, cgroup.attach_type),
    BPFLINK_MEMBER(struct bpf_link_info, iter.target_name),
    BPFLINK_MEMBER(struct bpf_link_info, iter.target_name_len),
    BPFLINK_MEMBER(struct bpf_link_info, iter.map.map_id),
    BPFLINK_MEMBER(struct bpf_link_info, iter.cgroup.cgroup_id),
    BPFLINK_MEMBER(struct bpf_link_info, iter.cgroup.order),
    BPFLINK_MEMBER(struct bpf_link_info, iter.task.tid),
    BPFLINK_MEMBER(struct bpf_link_info, iter.task.pid),
    BPFLINK_MEMBER(struct bpf_link_info, netns.netns_ino),
    BPFLINK_MEMBER(struct bpf_link_info, netns.attach_type),
    BPFLINK_MEMBER(struct bpf_link_info, xdp.ifindex),
    BPFLINK_MEMBER(struct bpf_link_info, struct_ops.map_id),
    BPFLINK_MEMBER(struct bpf_link_info, netfilter.pf),
    BPFLINK_MEMBER(struct bpf_link_info, netfilter.hooknum),
    BPFLINK_MEMBER(struct bpf_link_info, netfilter.priority),
    BPFLINK_MEMBER(struct bpf_link_info, netfilter.flags),
    BPFLINK_MEMBER(struct bpf_link_info, kprobe_multi.addrs),
    BPFLINK_MEMBER(struct bpf_link_info, kprobe_multi.count),
    BPFLINK_MEMBER(struct bpf_link_info, kprobe_multi.flags),
    BPFLINK_MEMBER(struct bpf_link_info, kprobe_multi.missed),
    BPFLINK_MEMBER(struct bpf_link_info, kprobe_multi.cookies),
    BPFLINK_MEMBER(struct bpf_link_info, uprobe_multi.path),
    BPFLINK_MEMBER(struct bpf_link_info, uprobe_multi.offsets),
    BPFLINK_MEMBER(struct bpf_link_info, uprobe_multi.ref_ctr_offsets),
    BPFLINK_MEMBER(struct bpf_link_info, uprobe_multi.cookies),
    BPFLINK_MEMBER(struct bpf_link_info, uprobe_multi.path_size),
    BPFLINK_MEMBER(struct bpf_link_info, uprobe_multi.count),
    BPFLINK_MEMBER(struct bpf_link_info, uprobe_multi.flags),
    BPFLINK_MEMBER(struct bpf_link_info, uprobe_multi.pid),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.type),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.uprobe.file_name),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.uprobe.name_len),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.uprobe.offset),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.uprobe.cookie),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.kprobe.func_name),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.kprobe.name_len),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.kprobe.offset),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.kprobe.addr),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.kprobe.missed),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.kprobe.cookie),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.tracepoint.tp_name),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.tracepoint.name_len),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.tracepoint.cookie),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.event.config),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.event.type),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.event.cookie),
    BPFLINK_MEMBER(struct bpf_link_info, tcx.ifindex),
    BPFLINK_MEMBER(struct bpf_link_info, tcx.attach_type),
    BPFLINK_MEMBER(struct bpf_link_info, netkit.ifindex),
    BPFLINK_MEMBER(struct bpf_link_info, netkit.attach_type),
#if BPFLINK_LIBBPF_AT_LEAST(1, 5)
    BPFLINK_MEMBER(struct bpf_link_info, sockmap.map_id),
    BPFLINK_MEMBER(struct bpf_link_info, sockmap.attach_type),
#endif
#if BPFLINK_LIBBPF_AT_LEAST(1, 6)
    BPFLINK_MEMBER(struct bpf_link_info, raw_tracepoint.cookie),
    BPFLINK_MEMBER(struct bpf_link_info, tracing.cookie),
    BPFLINK_MEMBER(struct bpf_link_info, perf_event.uprobe.ref_ctr_offset),
#endif
    BPFLINK_MEMBER(union bpf_iter_link_info, map.map_fd),
    BPFLINK_MEMBER(union bpf_iter_link_info, cgroup.order),
    BPFLINK_MEMBER(union bpf_iter_link_info, cgroup.cgroup_fd),
    BPFLINK_MEMBER(union bpf_iter_link_info, cgroup.cgroup_id),
    BPFLINK_MEMBER(union bpf_iter_link_info, task.tid),
    BPFLINK_MEMBER(union bpf_iter_link_info, task.pid),
    BPFLINK_MEMBER(union bpf_iter_link_info, task.pid_fd),
    BPFLINK_MEMBER(struct bpf_prog_query_opts, prog_cnt),
    BPFLINK_MEMBER(struct bpf_prog_query_opts, count),
    BPFLINK_MEMBER(struct perf_event_attr, sample_period),
    BPFLINK_MEMBER(struct perf_event_attr, sample_freq),
    BPFLINK_MEMBER(struct perf_event_attr, config1),
    BPFLINK_MEMBER(struct perf_event_attr, kprobe_func),
    BPFLINK_MEMBER(struct perf_event_attr, uprobe_path),
    BPFLINK_MEMBER(struct perf_event_attr, config2),
    BPFLINK_MEMBER(struct perf_event_attr, kprobe_addr),
    BPFLINK_MEMBER(struct perf_event_attr, probe_offset),
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

/* perf_event_open(2) has no libc wrapper; -errno like libbpf's calls, so errors.check handles it */
int bpflink_perf_event_open(struct perf_event_attr *attr, int pid, int cpu, int group_fd, unsigned long flags)
{
    long fd = syscall(__NR_perf_event_open, attr, pid, cpu, group_fd, flags);
    return fd < 0 ? -errno : (int)fd;
}

int bpflink_link_create_noopts(int prog_fd, int target_fd, int attach_type)
{
    return bpf_link_create(prog_fd, target_fd, (enum bpf_attach_type)attach_type, NULL);
}

/* One batch of the link walk `bpflink list` makes (the per-link syscalls stay the kernel's; the per-link
 * crossings between Python and C go): from start_id, up to `max` links are opened by id and their info read
 * once into infos[i] (zeroed first). Links of the types whose first info call tells everything and that
 * every supported uapi header names are closed here (fds[i] = -1); for the others fds[i] is the open fd
 * (a second call may be needed for names or arrays) and the caller closes it. Ids released or still being
 * set up (ENOENT/EAGAIN on open, ENOENT on info) are skipped. *last_id gets the last id visited, *done 1 at
 * the end of the walk. Returns the number of entries filled, or -errno of the first other failure. */
int bpflink_link_walk(__u32 start_id, struct bpf_link_info *infos, int *fds, int max, __u32 *last_id, int *done)
{
    __u32 id = start_id, next;
    int n = 0;

    *done = 0;
    while (n < max) {
        int err = bpf_link_get_next_id(id, &next);
        if (err) {
            if (err == -ENOENT) {
                *done = 1;
                break;
            }
            *last_id = id;
            return n ? n : err;
        }
        id = next;
        int fd = bpf_link_get_fd_by_id(id);
        if (fd < 0) {
            if (fd == -ENOENT || fd == -EAGAIN)
                continue;
            *last_id = id - 1;
            return n ? n : fd;
        }
        struct bpf_link_info *info = &infos[n];
        __u32 len = sizeof(*info);
        memset(info, 0, sizeof(*info));
        err = bpf_link_get_info_by_fd(fd, info, &len);
        if (err) {
            close(fd);
            if (err == -ENOENT)
                continue;
            *last_id = id - 1;
            return n ? n : err;
        }
        switch (info->type) {
        /* one info call tells all (the types every supported uapi header names; the caller closes the rest) */
        case BPF_LINK_TYPE_CGROUP:
        case BPF_LINK_TYPE_NETNS:
        case BPF_LINK_TYPE_XDP:
        case BPF_LINK_TYPE_TRACING:
        case BPF_LINK_TYPE_STRUCT_OPS:
            close(fd);
            fds[n] = -1;
            break;
        default:
            fds[n] = fd;
        }
        n++;
    }
    *last_id = id;
    return n;
}
