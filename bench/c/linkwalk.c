/* bench/c/linkwalk.c -- the C floor for listing links: for every link id (bpf_link_get_next_id), open it
 * (bpf_link_get_fd_by_id), read its info once (bpf_link_get_info_by_fd) and close it; print
 * "<links> <ns>" for the whole walk, repeated <rounds> times (argv[1], default 1). Ids released or still
 * being set up while walking (ENOENT, EAGAIN) are skipped, as bpflink.links() skips them. */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 1;
	unsigned long long sum = 0;

	for (int r = 0; r < rounds; r++) {
		__u32 id = 0, next;
		long long t0 = now_ns();
		int n = 0;

		while (bpf_link_get_next_id(id, &next) == 0) {
			struct bpf_link_info info;
			__u32 len = sizeof(info);
			int fd;

			id = next;
			fd = bpf_link_get_fd_by_id(id);
			if (fd < 0) {
				if (errno == ENOENT || errno == EAGAIN)
					continue;
				fprintf(stderr, "bpf_link_get_fd_by_id(%u): %s\n", id, strerror(errno));
				return 1;
			}
			memset(&info, 0, sizeof(info));
			if (bpf_link_get_info_by_fd(fd, &info, &len) == 0) {
				sum += info.prog_id; /* use the answer */
				n++;
			}
			close(fd);
		}
		printf("%d %lld\n", n, now_ns() - t0);
	}
	return sum == 0xffffffffffffffffULL; /* never: keeps the reads */
}
