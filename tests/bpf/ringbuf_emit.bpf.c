// SPDX-License-Identifier: GPL-2.0
/* Producers for RingBuffer/PerfBuffer (tests/test_ringbuf.py, test_perfbuf.py, bench/ringbuf.py): socket
 * filter programs run by BPF_PROG_TEST_RUN with repeat=N, one record per run. Every record carries a
 * sequence number (state[0]), the CPU and a tag; a refused output is counted in state[1] (ring) or state[2]
 * (perf), so the consumer can prove "received + dropped == produced". The bench compiles this file with a
 * larger RINGBUF_BYTES. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef RINGBUF_BYTES
#define RINGBUF_BYTES (256 * 1024)
#endif

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RINGBUF_BYTES);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096 * 4);
} second SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf SEC(".maps");

/* [0] next sequence number, [1] ring records refused (full), [2] perf records refused */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} state SEC(".maps");

#define TAG 0xb9f11a2bu

struct rec16 {
	__u64 seq;
	__u32 cpu;
	__u32 tag;
};

struct rec256 {
	__u64 seq;
	__u32 cpu;
	__u32 tag;
	__u8 payload[240];
};

static __always_inline __u64 next_seq(void)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&state, &key), seq;

	if (!v)
		return 0;
	/* test_run runs one iteration after another on one CPU: no concurrent writer */
	seq = *v;
	*v = seq + 1;
	return seq;
}

static __always_inline void refused(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&state, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("socket")
int ring16(struct __sk_buff *skb)
{
	struct rec16 *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

	if (!r) {
		refused(1);
		return 0;
	}
	r->seq = next_seq();
	r->cpu = bpf_get_smp_processor_id();
	r->tag = TAG;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("socket")
int ring256(struct __sk_buff *skb)
{
	struct rec256 *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

	if (!r) {
		refused(1);
		return 0;
	}
	r->seq = next_seq();
	r->cpu = bpf_get_smp_processor_id();
	r->tag = TAG;
	__builtin_memset(r->payload, 0xab, sizeof(r->payload));
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* one record into each ring: a RingBuffer over both maps sees both */
SEC("socket")
int ring_pair(struct __sk_buff *skb)
{
	struct rec16 r = { .seq = next_seq(), .cpu = bpf_get_smp_processor_id(), .tag = TAG };

	if (bpf_ringbuf_output(&events, &r, sizeof(r), 0))
		refused(1);
	if (bpf_ringbuf_output(&second, &r, sizeof(r), 0))
		refused(1);
	return 0;
}

SEC("socket")
int perf16(struct __sk_buff *skb)
{
	struct rec16 r = { .seq = next_seq(), .cpu = bpf_get_smp_processor_id(), .tag = TAG };

	if (bpf_perf_event_output(skb, &perf, BPF_F_CURRENT_CPU, &r, sizeof(r)))
		refused(2);
	return 0;
}

SEC("socket")
int perf256(struct __sk_buff *skb)
{
	struct rec256 r = { .seq = next_seq(), .cpu = bpf_get_smp_processor_id(), .tag = TAG };

	__builtin_memset(r.payload, 0xab, sizeof(r.payload));
	if (bpf_perf_event_output(skb, &perf, BPF_F_CURRENT_CPU, &r, sizeof(r)))
		refused(2);
	return 0;
}
