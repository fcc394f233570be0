/* bench/c/baseline.c -- the C floor bpflink is compared with: the same libbpf calls, no binding.
 *
 * Built at bench time by bench/run against build/libbpf (libbpf.a -lelf -lz). The Python driver loads the
 * programs and opens the targets, then hands the fds over (subprocess pass_fds), so C and Python create
 * links from the very same program onto the very same target, in the same kernel state.
 *
 *   baseline loop    PROG_FD TARGET ATTACH_TYPE N [NETNS_PATH]   per iteration: "create_ns close_ns"
 *   baseline count   PROG_FD TARGET ATTACH_TYPE N                same loop, untimed, silent (for callgrind)
 *   baseline uprobe  PROG_FD BINARY OFFSETS_FILE COUNT REPS      per rep: "build_ns create_ns close_ns"
 *   baseline kprobe  PROG_FD SYMS_FILE COUNT                     one attempt: "ok create_ns close_ns" or "err ERRNO"
 *   baseline kallsyms NAMES_FILE COUNT                           parse /proc/kallsyms, resolve: "parse_ns found"
 *
 * TARGET is a cgroup fd or an ifindex; with NETNS_PATH the process first enters that network namespace
 * (an ifindex only means something inside its namespace).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "baseline: %s: %s (errno %d)\n", what, strerror(err), err);
	exit(1);
}

static void enter_netns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || setns(fd, CLONE_NEWNET) != 0)
		die(path, errno);
	close(fd);
}

/* read COUNT native-endian u64 from a file the driver wrote (offsets for uprobe_multi) */
static unsigned long *read_u64s(const char *path, size_t count)
{
	unsigned long *buf = calloc(count ? count : 1, sizeof(*buf));
	FILE *f = fopen(path, "rb");

	if (!buf || !f || fread(buf, sizeof(*buf), count, f) != count)
		die(path, errno ? errno : EIO);
	fclose(f);
	return buf;
}

/* read COUNT newline-separated names (kprobe_multi symbols, kallsyms look-ups) */
static char **read_lines(const char *path, size_t count)
{
	char **names = calloc(count ? count : 1, sizeof(*names));
	FILE *f = fopen(path, "r");
	char line[512];
	size_t i = 0;

	if (!names || !f)
		die(path, errno);
	while (i < count && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		names[i++] = strdup(line);
	}
	fclose(f);
	if (i != count)
		die("short names file", EINVAL);
	return names;
}

static int cmd_loop(int argc, char **argv, int timed)
{
	int prog_fd, target, attach_type, n, i, fd;
	long long t0, t1, t2;

	if (argc < 6)
		die("usage: loop PROG_FD TARGET ATTACH_TYPE N [NETNS]", EINVAL);
	prog_fd = atoi(argv[2]);
	target = atoi(argv[3]);
	attach_type = atoi(argv[4]);
	n = atoi(argv[5]);
	if (argc > 6)
		enter_netns(argv[6]);
	if (!timed) {
		/* what callgrind counts: exactly libbpf's bpf_link_create + close, nothing else; one extra
		 * warm-up iteration (lazy PLT binding), as the Python loop does, so N minus 0 is N steady ones */
		for (i = 0; i <= n; i++) {
			fd = bpf_link_create(prog_fd, target, attach_type, NULL);
			if (fd < 0)
				die("bpf_link_create", -fd);
			close(fd);
		}
		return 0;
	}
	for (i = 0; i < n; i++) {
		t0 = now_ns();
		fd = bpf_link_create(prog_fd, target, attach_type, NULL);
		t1 = now_ns();
		if (fd < 0)
			die("bpf_link_create", -fd);
		close(fd);
		t2 = now_ns();
		printf("%lld %lld\n", t1 - t0, t2 - t1);
	}
	return 0;
}

static int cmd_uprobe(int argc, char **argv)
{
	int prog_fd, reps, r, fd;
	size_t count;
	unsigned long *offsets;
	const char *binary;
	long long t0, t1, t2, t3;

	if (argc < 7)
		die("usage: uprobe PROG_FD BINARY OFFSETS_FILE COUNT REPS", EINVAL);
	prog_fd = atoi(argv[2]);
	binary = argv[3];
	count = strtoul(argv[5], NULL, 10);
	reps = atoi(argv[6]);
	offsets = read_u64s(argv[4], count);
	for (r = 0; r < reps; r++) {
		t0 = now_ns();
		LIBBPF_OPTS(bpf_link_create_opts, opts,
			.uprobe_multi.path = binary,
			.uprobe_multi.offsets = offsets,
			.uprobe_multi.cnt = count);
		t1 = now_ns();
		fd = bpf_link_create(prog_fd, 0, BPF_TRACE_UPROBE_MULTI, &opts);
		t2 = now_ns();
		if (fd < 0)
			die("bpf_link_create(uprobe_multi)", -fd);
		close(fd);
		t3 = now_ns();
		printf("%lld %lld %lld\n", t1 - t0, t2 - t1, t3 - t2);
	}
	return 0;
}

static int cmd_kprobe(int argc, char **argv)
{
	int prog_fd, fd;
	size_t count;
	char **syms;
	long long t0, t1, t2;

	if (argc < 5)
		die("usage: kprobe PROG_FD SYMS_FILE COUNT", EINVAL);
	prog_fd = atoi(argv[2]);
	count = strtoul(argv[4], NULL, 10);
	syms = read_lines(argv[3], count);
	LIBBPF_OPTS(bpf_link_create_opts, opts,
		.kprobe_multi.syms = (const char **)syms,
		.kprobe_multi.cnt = count);
	t0 = now_ns();
	fd = bpf_link_create(prog_fd, 0, BPF_TRACE_KPROBE_MULTI, &opts);
	t1 = now_ns();
	if (fd < 0) {
		printf("err %d\n", -fd);
		return 0;
	}
	close(fd);
	t2 = now_ns();
	printf("ok %lld %lld\n", t1 - t0, t2 - t1);
	return 0;
}

/* user-space symbol resolution: one pass over /proc/kallsyms, looking each line's name up among the wanted
 * names (sorted once, bsearch per line), as a tool resolving kprobe_multi addrs itself would */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_kallsyms(int argc, char **argv)
{
	size_t count, found = 0;
	char **names, line[512], name[256], type;
	unsigned long long addr;
	long long t0, t1;
	FILE *f;

	if (argc < 4)
		die("usage: kallsyms NAMES_FILE COUNT", EINVAL);
	count = strtoul(argv[3], NULL, 10);
	names = read_lines(argv[2], count);
	t0 = now_ns();
	qsort(names, count, sizeof(*names), cmp_str);
	f = fopen("/proc/kallsyms", "r");
	if (!f)
		die("/proc/kallsyms", errno);
	while (fgets(line, sizeof(line), f)) {
		char *key = name;

		if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3)
			continue;
		if (bsearch(&key, names, count, sizeof(*names), cmp_str))
			found++;
	}
	fclose(f);
	t1 = now_ns();
	printf("%lld %zu\n", t1 - t0, found);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die("usage: baseline loop|count|uprobe|kprobe|kallsyms ...", EINVAL);
	if (!strcmp(argv[1], "loop"))
		return cmd_loop(argc, argv, 1);
	if (!strcmp(argv[1], "count"))
		return cmd_loop(argc, argv, 0);
	if (!strcmp(argv[1], "uprobe"))
		return cmd_uprobe(argc, argv);
	if (!strcmp(argv[1], "kprobe"))
		return cmd_kprobe(argc, argv);
	if (!strcmp(argv[1], "kallsyms"))
		return cmd_kallsyms(argc, argv);
	die(argv[1], EINVAL);
	return 1;
}
