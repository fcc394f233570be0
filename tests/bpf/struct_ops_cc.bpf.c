// Two minimal TCP congestion controls for tests/test_struct_ops.py, as struct_ops maps in ".struct_ops.link"
// (created with BPF_F_LINK: loading registers nothing; a BPF_STRUCT_OPS link does). Both carry the same name,
// as replacing a congestion control through the link needs; only their ssthresh differs.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define CC_NAME "bpflink_cc"

// The members of the kernel's struct tcp_congestion_ops set here; libbpf matches them by name.
struct sock;
struct tcp_congestion_ops {
    __u32 (*ssthresh)(struct sock *sk);
    void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
    __u32 (*undo_cwnd)(struct sock *sk);
    char name[16];
};

// struct_ops programs get their arguments as an array of u64
SEC("struct_ops/ssthresh")
__u32 cc_ssthresh(unsigned long long *ctx)
{
    return 2;
}

SEC("struct_ops/ssthresh")
__u32 cc_ssthresh_big(unsigned long long *ctx)
{
    return 64;
}

SEC("struct_ops/cong_avoid")
void cc_cong_avoid(unsigned long long *ctx)
{
}

SEC("struct_ops/undo_cwnd")
__u32 cc_undo_cwnd(unsigned long long *ctx)
{
    return 10;
}

SEC(".struct_ops.link")
struct tcp_congestion_ops cc_small = {
    .ssthresh = (void *)cc_ssthresh,
    .cong_avoid = (void *)cc_cong_avoid,
    .undo_cwnd = (void *)cc_undo_cwnd,
    .name = CC_NAME,
};

SEC(".struct_ops.link")
struct tcp_congestion_ops cc_big = {
    .ssthresh = (void *)cc_ssthresh_big,
    .cong_avoid = (void *)cc_cong_avoid,
    .undo_cwnd = (void *)cc_undo_cwnd,
    .name = CC_NAME,
};

char LICENSE[] SEC("license") = "GPL";
