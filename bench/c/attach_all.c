/* bench/c/attach_all.c -- libbpf's own "attach every program by its section" loop, the floor for
 * bpflink's Object.attach_all (bench/attach.py).
 *
 *   attach_all OBJECT REPS     per rep: open+load (untimed), then "attach_ns close_ns COUNT"
 *   attach_all uprobe OBJECT LIBRARY FUNCTION REPS
 *                              the object's first program by library name and function, resolved by libbpf
 *                              (bpf_program__attach_uprobe_opts with func_name): per rep "attach_ns"
 *   attach_all kprobe_multi OBJECT PATTERN REPS
 *                              the object's first program on every function matching PATTERN
 *                              (bpf_program__attach_kprobe_multi_opts): per rep "attach_ns close_ns"
 *
 * attach: bpf_program__attach() for each program of the object, as a skeleton's attach does;
 * close: bpf_link__destroy() of each, one by one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/libbpf.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int uprobe_mode(char **argv)
{
	struct bpf_object *obj = bpf_object__open_file(argv[2], NULL);
	struct bpf_program *prog;

	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "attach_all: cannot load %s\n", argv[2]);
		return 1;
	}
	prog = bpf_object__next_program(obj, NULL);
	for (int rep = 0; rep < atoi(argv[5]); rep++) {
		LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = argv[4]);
		long long t0 = now_ns();
		struct bpf_link *link = bpf_program__attach_uprobe_opts(prog, -1, argv[3], 0, &opts);
		long long t1 = now_ns();

		if (!link) {
			fprintf(stderr, "attach_all: uprobe %s:%s: %s\n", argv[3], argv[4], strerror(errno));
			return 1;
		}
		printf("%lld\n", t1 - t0);
		bpf_link__destroy(link);
	}
	bpf_object__close(obj);
	return 0;
}

static int kprobe_multi_mode(char **argv)
{
	struct bpf_object *obj = bpf_object__open_file(argv[2], NULL);
	struct bpf_program *prog;

	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "attach_all: cannot load %s\n", argv[2]);
		return 1;
	}
	prog = bpf_object__next_program(obj, NULL);
	for (int rep = 0; rep < atoi(argv[4]); rep++) {
		long long t0 = now_ns(), t1, t2;
		struct bpf_link *link = bpf_program__attach_kprobe_multi_opts(prog, argv[3], NULL);

		t1 = now_ns();
		if (!link) {
			fprintf(stderr, "attach_all: kprobe_multi %s: %s\n", argv[3], strerror(errno));
			return 1;
		}
		bpf_link__destroy(link);
		t2 = now_ns();
		printf("%lld %lld\n", t1 - t0, t2 - t1);
	}
	bpf_object__close(obj);
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_link *links[256];

	if (argc == 6 && strcmp(argv[1], "uprobe") == 0)
		return uprobe_mode(argv);
	if (argc == 5 && strcmp(argv[1], "kprobe_multi") == 0)
		return kprobe_multi_mode(argv);

	if (argc != 3) {
		fprintf(stderr, "usage: attach_all OBJECT REPS\n");
		return 2;
	}
	for (int rep = 0; rep < atoi(argv[2]); rep++) {
		struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
		struct bpf_program *prog;
		long long t0, t1, t2;
		int n = 0;

		if (!obj || bpf_object__load(obj)) {
			fprintf(stderr, "attach_all: cannot load %s\n", argv[1]);
			return 1;
		}
		t0 = now_ns();
		bpf_object__for_each_program(prog, obj) {
			struct bpf_link *link = bpf_program__attach(prog);

			if (!link || n == 256) {
				fprintf(stderr, "attach_all: %s: %s\n", bpf_program__name(prog), strerror(errno));
				return 1;
			}
			links[n++] = link;
		}
		t1 = now_ns();
		for (int i = 0; i < n; i++)
			bpf_link__destroy(links[i]);
		t2 = now_ns();
		printf("%lld %lld %d\n", t1 - t0, t2 - t1, n);
		bpf_object__close(obj);
	}
	return 0;
}
