/* bench/c/ringbuf.c -- the C floor for bench/ringbuf.py: libbpf's ring_buffer / perf_buffer consumers with a
 * callback that only counts (and reads each record's first 8 bytes), no binding.
 *
 *   ringbuf rb MAP_FD N drain|drain-copy|live
 *   ringbuf pb MAP_FD PAGES N drain|drain-copy|live
 *
 * The Python driver owns the map (fd inherited) and produces records with BPF_PROG_TEST_RUN. Protocol on
 * stdin/stdout: the consumer prints "ready" once libbpf's reader exists; in drain mode it then waits for "go",
 * times consume calls until N records arrived and prints "COUNT LOST NS CPU_NS" (wall and this thread's CPU
 * time). In live mode it consumes at once
 * (epoll on libbpf's fd, then ring_buffer__consume/perf_buffer__consume) while the driver produces, reads
 * "done EXPECTED" when the producer finished and stops at EXPECTED records: "COUNT LOST LAST_RECORD_MONO_NS".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

static unsigned long long count, lost, seqsum, last_ns;
/* drain-copy: each record is also copied into a reused 1 MiB buffer with its length, as any consumer that keeps
 * records past the consumer position must do (bpflink's batch path does this, then hands the buffer over) */
static int copy_out;
static char copy_buf[(1 << 20) + 4096];
static unsigned int copy_len[(1 << 20) / 8];
static size_t copy_at, copy_n;

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static unsigned long long cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "ringbuf: %s: %s (errno %d)\n", what, strerror(err), err);
	exit(1);
}

static int on_ring(void *ctx, void *data, size_t size)
{
	unsigned long long seq;

	(void)ctx;
	(void)size;
	memcpy(&seq, data, sizeof(seq));
	seqsum += seq;
	count++;
	if (copy_out) {
		if (copy_at + size > (1 << 20) || copy_n == sizeof(copy_len) / sizeof(copy_len[0]))
			copy_at = copy_n = 0;
		memcpy(copy_buf + copy_at, data, size);
		copy_len[copy_n++] = size;
		copy_at = (copy_at + size + 7) & ~(size_t)7;
	}
	return 0;
}

static void on_perf(void *ctx, int cpu, void *data, __u32 size)
{
	(void)cpu;
	on_ring(ctx, data, size);
}

static void on_lost(void *ctx, int cpu, __u64 n)
{
	(void)ctx;
	(void)cpu;
	lost += n;
}

struct reader {
	struct ring_buffer *rb;
	struct perf_buffer *pb;
};

static void consume(struct reader *r)
{
	unsigned long long before = count;
	int err = r->rb ? ring_buffer__consume(r->rb) : perf_buffer__consume(r->pb);

	if (err < 0)
		die("consume", -err);
	if (count != before)
		last_ns = now_ns();
}

int main(int argc, char **argv)
{
	struct reader r = { 0 };
	unsigned long long n, expected = ~0ULL, t0;
	int perf = argc == 6 && !strcmp(argv[1], "pb");
	int fd, live;
	char line[128];

	if (!(argc == 5 && !strcmp(argv[1], "rb")) && !perf) {
		fprintf(stderr, "usage: ringbuf rb MAP_FD N drain|live | ringbuf pb MAP_FD PAGES N drain|live\n");
		return 2;
	}
	fd = atoi(argv[2]);
	n = strtoull(argv[perf ? 4 : 3], NULL, 10);
	live = !strcmp(argv[perf ? 5 : 4], "live");
	copy_out = !strcmp(argv[perf ? 5 : 4], "drain-copy");
	if (perf)
		r.pb = perf_buffer__new(fd, strtoul(argv[3], NULL, 10), on_perf, on_lost, NULL, NULL);
	else
		r.rb = ring_buffer__new(fd, on_ring, NULL, NULL);
	if (!r.rb && !r.pb)
		die(perf ? "perf_buffer__new" : "ring_buffer__new", errno);
	printf("ready\n");
	fflush(stdout);
	if (!live) {
		if (!fgets(line, sizeof(line), stdin))
			die("stdin", EIO);
		unsigned long long c0 = cpu_ns();

		t0 = now_ns();
		while (count < n)
			consume(&r);
		printf("%llu %llu %llu %llu\n", count, lost, now_ns() - t0, cpu_ns() - c0);
	} else {
		struct pollfd fds[2] = {
			{ .fd = perf ? perf_buffer__epoll_fd(r.pb) : ring_buffer__epoll_fd(r.rb), .events = POLLIN },
			{ .fd = 0, .events = POLLIN },
		};
		while (count < expected) {
			if (poll(fds, expected == ~0ULL ? 2 : 1, 100) < 0 && errno != EINTR)
				die("poll", errno);
			consume(&r);
			if (expected == ~0ULL && (fds[1].revents & POLLIN)) {
				if (!fgets(line, sizeof(line), stdin) || sscanf(line, "done %llu", &expected) != 1)
					die("stdin", EIO);
			}
		}
		printf("%llu %llu %llu\n", count, lost, last_ns);
	}
	if (r.rb)
		ring_buffer__free(r.rb);
	if (r.pb)
		perf_buffer__free(r.pb);
	return seqsum == 0 && count > 1; /* seqsum read so the compiler keeps the record reads */
}
