/* C baseline for bench/maps.py: read a hash map (u32 keys 0..n-1, u64 values) inherited as an fd.
 *   maps batch <fd> <rounds> <chunk>   whole map by bpf_map_lookup_batch, ns per round and entries read
 *   maps lookup <fd> <n> <rounds>      n one-by-one bpf_map_lookup_elem calls, ns per lookup
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long walk(int fd, __u32 chunk, unsigned char *keys, unsigned char *values, long *entries)
{
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    __u32 in = 0, out = 0, count;
    long total = 0;
    int first = 1;
    long long t0 = now_ns();
    for (;;) {
        count = chunk;
        int ret = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys + total * 4, values + total * 8, &count,
                                       &opts);
        total += count;
        if (ret < 0 && errno == ENOENT)
            break;
        if (ret < 0) {
            perror("bpf_map_lookup_batch");
            exit(1);
        }
        in = out;
        first = 0;
    }
    *entries = total;
    return now_ns() - t0;
}

int main(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    int fd = atoi(argv[2]);
    if (!strcmp(argv[1], "batch")) {
        int rounds = atoi(argv[3]);
        __u32 chunk = (__u32)atoi(argv[4]);
        struct bpf_map_info info = {};
        __u32 len = sizeof(info);
        if (bpf_map_get_info_by_fd(fd, &info, &len))
            return 1;
        unsigned char *keys = malloc((size_t)info.max_entries * 4 + chunk * 4);
        unsigned char *values = malloc((size_t)info.max_entries * 8 + chunk * 8);
        for (int r = 0; r < rounds; r++) {
            long entries;
            long long ns = walk(fd, chunk, keys, values, &entries);
            printf("batch %lld %ld\n", ns, entries);
        }
        return 0;
    }
    if (!strcmp(argv[1], "lookup")) {
        __u32 n = (__u32)atoi(argv[3]);
        int rounds = atoi(argv[4]);
        for (int r = 0; r < rounds; r++) {
            __u64 value, sum = 0;
            long long t0 = now_ns();
            for (__u32 k = 0; k < n; k++) {
                if (bpf_map_lookup_elem(fd, &k, &value))
                    return 1;
                sum += value;
            }
            long long ns = now_ns() - t0;
            printf("lookup %lld %u %llu\n", ns, n, (unsigned long long)sum);
        }
        return 0;
    }
    return 2;
}
