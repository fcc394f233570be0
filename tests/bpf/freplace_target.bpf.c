// Target of tests/test_freplace.py: an sk_lookup program whose verdict comes from the global function
// decide(). Global (not static, not inlined) functions keep their own BTF, so an EXT program can replace them.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define TEST_PORT 47001 /* tests/netns.py TEST_PORT */

// volatile: keeps clang from folding decide() into its caller
volatile int verdict = SK_PASS;

__attribute__((noinline)) int decide(__u32 port)
{
    return port == TEST_PORT ? verdict : SK_PASS;
}

SEC("sk_lookup")
int lookup_target(struct bpf_sk_lookup *ctx)
{
    return decide(ctx->local_port) == SK_DROP ? SK_DROP : SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
