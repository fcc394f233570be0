/* bpflink cdef: perf_event_open(2) for perf_event links (src/bpflink/perf.py). struct perf_event_attr is
 * partial ("...;"): its size and the offsets of named members come from <linux/perf_event.h>. The members of
 * its anonymous unions are checked against offsetof() in the table build_ffi.py generates (bpflink_layout_table).
 */
struct perf_event_attr {
    __u32 type;
    __u32 size;
    __u64 config;
    union { __u64 sample_period; __u64 sample_freq; };
    union { __u64 config1; __u64 kprobe_func; __u64 uprobe_path; };
    union { __u64 config2; __u64 kprobe_addr; __u64 probe_offset; };
    ...;
};

/* libc has no wrapper: syscall(__NR_perf_event_open, ...); returns the fd, or -errno */
int bpflink_perf_event_open(struct perf_event_attr *attr, int pid, int cpu, int group_fd, unsigned long flags);
/* sched_getcpu(3): the CPU the caller runs on, or -errno */
int bpflink_current_cpu(void);

#define PERF_TYPE_TRACEPOINT ...
#define PERF_TYPE_SOFTWARE ...
#define PERF_FLAG_FD_CLOEXEC ...
