/* Probed by tests/test_uprobe_multi.py and test_perf_event.py: `uprobe_target N [wait]` calls
 * bpflink_t_one N times, bpflink_t_two 2N times, bpflink_t_three 3N times (and, when built with -DWITH_LIB,
 * the shared library's bpflink_lib_fn N times), then prints the sum. With "wait" it first reads a line from
 * stdin, so a test can attach a pid-filtered probe to the running process before it calls anything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) int bpflink_t_one(int x) { __asm__ volatile(""); return x + 1; }
__attribute__((noinline)) int bpflink_t_two(int x) { __asm__ volatile(""); return x + 2; }
__attribute__((noinline)) int bpflink_t_three(int x) { __asm__ volatile(""); return x + 3; }
#ifdef WITH_LIB
int bpflink_lib_fn(int x);
#endif

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1, s = 0;
    char line[16];
    if (argc > 2 && strcmp(argv[2], "wait") == 0 && !fgets(line, sizeof(line), stdin))
        return 1;
    for (int i = 0; i < n; i++)
        s = bpflink_t_one(s);
    for (int i = 0; i < 2 * n; i++)
        s = bpflink_t_two(s);
    for (int i = 0; i < 3 * n; i++)
        s = bpflink_t_three(s);
#ifdef WITH_LIB
    for (int i = 0; i < n; i++)
        s = bpflink_lib_fn(s);
#endif
    printf("%d\n", s);
    return 0;
}
