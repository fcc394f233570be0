/* libbpf's own USDT attach, as the reference bpflink's must match (tests/test_usdt.py) and race (bench/usdt.py).
 *
 *   libbpf_usdt OBJ PROG BINARY PROVIDER NAME COOKIE   attach once, print "prog_id N", every filled spec of
 *                                                      __bpf_usdt_specs as "spec ID HEX", "ready", wait for a line
 *   libbpf_usdt OBJ PROG BINARY --all ROUNDS           attach to every probe given on stdin ("provider name" per
 *                                                      line), then destroy the links, ROUNDS times; print the
 *                                                      median ns of the attach phase and of the destroy phase
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    struct bpf_object *obj;
    struct bpf_program *prog;
    char line[256];

    if (argc < 6) {
        fprintf(stderr, "usage: %s OBJ PROG BINARY (PROVIDER NAME COOKIE | --all ROUNDS)\n", argv[0]);
        return 2;
    }
    libbpf_set_print(NULL);
    obj = bpf_object__open_file(argv[1], NULL);
    if (!obj || bpf_object__load(obj)) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    prog = bpf_object__find_program_by_name(obj, argv[2]);
    if (!prog) {
        fprintf(stderr, "no program %s\n", argv[2]);
        return 1;
    }
    if (strcmp(argv[4], "--all") == 0) {
        char providers[64][64], names[64][64];
        struct bpf_link *links[64];
        int n = 0, rounds = atoi(argv[5]);
        long long *attach = calloc(rounds, sizeof(*attach)), *destroy = calloc(rounds, sizeof(*destroy));

        while (n < 64 && fgets(line, sizeof(line), stdin))
            if (sscanf(line, "%63s %63s", providers[n], names[n]) == 2)
                n++;
        for (int r = 0; r < rounds; r++) {
            long long t0 = now_ns();
            for (int i = 0; i < n; i++) {
                links[i] = bpf_program__attach_usdt(prog, -1, argv[3], providers[i], names[i], NULL);
                if (!links[i]) {
                    fprintf(stderr, "attach %s:%s failed\n", providers[i], names[i]);
                    return 1;
                }
            }
            long long t1 = now_ns();
            for (int i = 0; i < n; i++)
                bpf_link__destroy(links[i]);
            attach[r] = t1 - t0;
            destroy[r] = now_ns() - t1;
        }
        qsort(attach, rounds, sizeof(*attach), cmp_ll);
        qsort(destroy, rounds, sizeof(*destroy), cmp_ll);
        printf("%lld %lld\n", attach[rounds / 2], destroy[rounds / 2]);
        return 0;
    }

    LIBBPF_OPTS(bpf_usdt_opts, opts, .usdt_cookie = argc > 6 ? strtoull(argv[6], NULL, 0) : 0);
    struct bpf_link *link = bpf_program__attach_usdt(prog, -1, argv[3], argv[4], argv[5], &opts);
    if (!link) {
        fprintf(stderr, "bpf_program__attach_usdt failed\n");
        return 1;
    }
    struct bpf_prog_info info = {};
    __u32 len = sizeof(info);
    bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len);
    printf("prog_id %u\n", info.id);
    struct bpf_map *specs = bpf_object__find_map_by_name(obj, "__bpf_usdt_specs");
    __u32 size = bpf_map__value_size(specs);
    unsigned char *value = calloc(1, size), *zero = calloc(1, size);
    for (__u32 key = 0; key < bpf_map__max_entries(specs); key++) {
        if (bpf_map_lookup_elem(bpf_map__fd(specs), &key, value) || !memcmp(value, zero, size))
            continue;
        printf("spec %u ", key);
        for (__u32 i = 0; i < size; i++)
            printf("%02x", value[i]);
        printf("\n");
    }
    printf("ready\n");
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin))
        line[0] = 0;
    bpf_link__destroy(link);
    bpf_object__close(obj);
    return 0;
}
