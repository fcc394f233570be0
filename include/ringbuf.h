/* bpflink cdef: ring buffers and perf buffers over libbpf's ring_buffer__* / ring__* / perf_buffer__*
 * (src/bpflink/ringbuf.py, perfbuf.py), and the C helpers of include/ringbuf.c. */
struct ring_buffer;
struct ring;
struct perf_buffer;
typedef int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size);
typedef void (*perf_buffer_sample_fn)(void *ctx, int cpu, void *data, __u32 size);
typedef void (*perf_buffer_lost_fn)(void *ctx, int cpu, __u64 cnt);

struct ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn sample_cb, void *ctx, const void *opts);
void ring_buffer__free(struct ring_buffer *rb);
int ring_buffer__add(struct ring_buffer *rb, int map_fd, ring_buffer_sample_fn sample_cb, void *ctx);
int ring_buffer__poll(struct ring_buffer *rb, int timeout_ms);
int ring_buffer__consume(struct ring_buffer *rb);
/*@if ring_buffer__consume_n*/
int ring_buffer__consume_n(struct ring_buffer *rb, size_t n);
/*@end*/
int ring_buffer__epoll_fd(const struct ring_buffer *rb);
struct ring *ring_buffer__ring(struct ring_buffer *rb, unsigned int idx);
unsigned long ring__consumer_pos(const struct ring *r);
unsigned long ring__producer_pos(const struct ring *r);
size_t ring__avail_data_size(const struct ring *r);
size_t ring__size(const struct ring *r);
int ring__map_fd(const struct ring *r);

struct perf_buffer *perf_buffer__new(int map_fd, size_t page_cnt, perf_buffer_sample_fn sample_cb,
                                     perf_buffer_lost_fn lost_cb, void *ctx, const void *opts);
void perf_buffer__free(struct perf_buffer *pb);
int perf_buffer__epoll_fd(const struct perf_buffer *pb);
int perf_buffer__poll(struct perf_buffer *pb, int timeout_ms);
int perf_buffer__consume(struct perf_buffer *pb);
int perf_buffer__consume_buffer(struct perf_buffer *pb, size_t buf_idx);
size_t perf_buffer__buffer_cnt(const struct perf_buffer *pb);
int perf_buffer__buffer_fd(const struct perf_buffer *pb, size_t buf_idx);
int libbpf_num_possible_cpus(void);

/* A batch of records copied out of the rings by C (one Python call hands over many records). Record i is
 * length[i] bytes; records follow each other at 8-byte aligned offsets (stride 0) or sit at i*stride;
 * source[i] (when with_source) is its ring index (ring buffer) or CPU (perf buffer). */
struct bpflink_batch {
    char *data;
    size_t used;
    size_t cap;
    uint32_t *length;
    int32_t *source;
    size_t count;
    size_t slots;
    size_t stride;   /* 0: packed, 8-byte aligned; else each record cut or zero-padded to stride bytes */
    int with_source;
    int error;       /* -ENOMEM once the batch could not grow */
    uint64_t dropped;/* records consumed from a ring but not stored (the batch could not grow) */
    uint32_t same_length; /* every record's length when they are all equal, else UINT32_MAX */
    ...;
};

/* One reader (a RingBuffer or PerfBuffer): the batch its callbacks fill, its wait set and lost counters. */
struct bpflink_reader {
    struct bpflink_batch batch;
    int wait_fd;         /* epoll set: libbpf's epoll fd + wake_fd */
    int wake_fd;         /* eventfd written by close() so every waiter returns */
    uint64_t *lost;      /* perf: lost samples per CPU, ncpu entries */
    size_t ncpu;
    uint64_t lost_total;
    ...;
};
/* the ctx libbpf hands back for one ring: which reader, which ring */
struct bpflink_source { struct bpflink_reader *reader; int index; ...; };

#define BPFLINK_WOKEN 2

int bpflink_reader_init(struct bpflink_reader *r, int libbpf_epoll_fd, size_t ncpu);
void bpflink_reader_wake(struct bpflink_reader *r);
void bpflink_reader_release(struct bpflink_reader *r);
/* wait up to timeout_ms for records or a wake-up: 1 records may be there, 0 timeout, BPFLINK_WOKEN, -errno */
int bpflink_reader_wait(struct bpflink_reader *r, int timeout_ms);
void bpflink_batch_reset(struct bpflink_batch *b, size_t stride, int with_source);
/* the callbacks given to libbpf (ctx: a struct bpflink_source for rings, the struct bpflink_reader for perf) */
int bpflink_ring_sample(void *ctx, void *data, size_t size);
void bpflink_perf_sample(void *ctx, int cpu, void *data, __u32 size);
void bpflink_perf_lost(void *ctx, int cpu, __u64 cnt);

/* BPF_PROG_TEST_RUN with repeat (tests and bench/ringbuf.py drive producers with it): 0 or -errno */
int bpflink_test_run_repeat(int prog_fd, int repeat, const void *data, __u32 size, __u32 *retval,
                            __u32 *duration_ns);
