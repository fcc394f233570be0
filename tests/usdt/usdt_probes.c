/* USDT probes for tests/test_usdt.py, built into a shared library and into a PIE executable.
 * bpflinkt:site has three call sites with different argument locations; bpflinkt:guarded fires only while its
 * semaphore is raised (a tracer attached), as *_ENABLED() checks do. */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

/* what `dtrace -G` would generate: one semaphore per probe, in .probes */
unsigned short bpflinkt_site_semaphore __attribute__((unused, section(".probes")));
unsigned short bpflinkt_guarded_semaphore __attribute__((unused, section(".probes")));
#define BPFLINKT_GUARDED_ENABLED() __builtin_expect(bpflinkt_guarded_semaphore, 0)

static volatile long sink;

__attribute__((noinline)) void bpflinkt_run(long i, long *guarded)
{
    long big = i * 1000;
    int neg = (int)-i;
    const char *tag = "bpflink";

    STAP_PROBE3(bpflinkt, site, i, neg, big);        /* site 1: i, -i, 1000 i */
    sink += i;
    STAP_PROBE3(bpflinkt, site, i, 7, -3);           /* site 2: i, constants */
    sink += i;
    STAP_PROBE3(bpflinkt, site, i, tag[0], big + 1);  /* site 3: i, 'b', 1000 i + 1 */
    if (BPFLINKT_GUARDED_ENABLED()) {
        ++*guarded;
        STAP_PROBE1(bpflinkt, guarded, i);
    }
}
