/* tests/layout_probe.c -- what the C compiler says about struct bpf_link_create_opts: one line per member,
 * nested ones included, "member<TAB>offset<TAB>size", then "sizeof<TAB>size" and "libbpf<TAB>major.minor".
 * tests/test_wheel.py compiles it against the headers bpflink was built with and compares every line with
 * cffi's view (ffi.offsetof/ffi.sizeof) and with the table compiled into the extension (bpflink_layout_table).
 * Written on its own, from the header's documented members, so it is a second opinion, not a copy of shims.c. */
#include <stddef.h>
#include <stdio.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf_version.h>

#define OPTS struct bpf_link_create_opts
#define ROW(member) printf("%s\t%zu\t%zu\n", #member, offsetof(OPTS, member), sizeof(((OPTS *)0)->member))

int main(void)
{
    ROW(sz);
    ROW(flags);
    ROW(iter_info);
    ROW(iter_info_len);
    ROW(target_btf_id);

    ROW(perf_event);
    ROW(perf_event.bpf_cookie);

    ROW(kprobe_multi);
    ROW(kprobe_multi.flags);
    ROW(kprobe_multi.cnt);
    ROW(kprobe_multi.syms);
    ROW(kprobe_multi.addrs);
    ROW(kprobe_multi.cookies);

    ROW(uprobe_multi);
    ROW(uprobe_multi.flags);
    ROW(uprobe_multi.cnt);
    ROW(uprobe_multi.path);
    ROW(uprobe_multi.offsets);
    ROW(uprobe_multi.ref_ctr_offsets);
    ROW(uprobe_multi.cookies);
    ROW(uprobe_multi.pid);

    ROW(tracing);
    ROW(tracing.cookie);

    ROW(netfilter);
    ROW(netfilter.pf);
    ROW(netfilter.hooknum);
    ROW(netfilter.priority);
    ROW(netfilter.flags);

    ROW(tcx);
    ROW(tcx.relative_fd);
    ROW(tcx.relative_id);
    ROW(tcx.expected_revision);

    ROW(netkit);
    ROW(netkit.relative_fd);
    ROW(netkit.relative_id);
    ROW(netkit.expected_revision);

#if LIBBPF_MAJOR_VERSION > 1 || (LIBBPF_MAJOR_VERSION == 1 && LIBBPF_MINOR_VERSION >= 6)
    /* the cgroup member (mprog ordering for cgroup links) arrived in libbpf 1.6 */
    ROW(cgroup);
    ROW(cgroup.relative_fd);
    ROW(cgroup.relative_id);
    ROW(cgroup.expected_revision);
#endif

    printf("sizeof\t%zu\n", sizeof(OPTS));
    printf("libbpf\t%d.%d\n", LIBBPF_MAJOR_VERSION, LIBBPF_MINOR_VERSION);
    return 0;
}
