/* Runs bpflinkt_run(1..N) (from usdt_probes.c, linked in or from libbpflinkusdt.so) and prints how often the
 * guarded probe's semaphore was up. `usdt_target N wait` first prints "ready" and waits for a line on stdin,
 * so a test can attach by pid before the probes run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bpflinkt_run(long i, long *guarded);

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1, guarded = 0;
    char line[16];

    if (argc > 2 && strcmp(argv[2], "wait") == 0) {
        printf("ready\n");
        fflush(stdout);
        if (!fgets(line, sizeof(line), stdin))
            return 1;
    }
    for (long i = 1; i <= n; i++)
        bpflinkt_run(i, &guarded);
    printf("%ld\n", guarded);
    return 0;
}
