/* A shared library for uprobe tests: symbols resolved in a .so, probes hit through any process mapping it. */
__attribute__((noinline)) int bpflink_lib_fn(int x) { __asm__ volatile(""); return x + 10; }
