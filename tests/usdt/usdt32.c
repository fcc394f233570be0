/* An i386 executable with USDT probes for tests/test_usdt.py's 32-bit listing: freestanding (no 32-bit libc
 * needed), built with gcc -m32 -c and linked with ld -m elf_i386. Never run: only its notes are read. */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

unsigned short p32_hello_semaphore __attribute__((unused, section(".probes")));
unsigned short p32_plain_semaphore __attribute__((unused, section(".probes")));
int counter;

void _start(void)
{
    for (int i = 0; i < 3; i++) {
        STAP_PROBE2(p32, hello, i, &counter);
        counter += i;
        STAP_PROBE2(p32, hello, counter, 5);
    }
    STAP_PROBE(p32, plain);
    for (;;) {
    }
}
