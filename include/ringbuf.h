/* bpflink cdef: ring buffers and perf buffers over libbpf's ring_buffer__* / ring__* / perf_buffer__*
 * (src/bpflink/ringbuf.py, perfbuf.py), and the C helpers of include/ringbuf.c, which defines the structs: the
 * members below are the ones Python reads or sets; "...;" lets cffi take the layout from the compiler. */
struct ring_buffer;
struct ring;
struct perf_buffer;
typedef int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size);
typedef void (*perf_buffer_sample_fn)(void *ctx, int cpu, void *data, __u32 size);
typedef void (*perf_buffer_lost_fn)(void *ctx, int cpu, __u64 cnt);

/* (RingBuffer/PerfBuffer create their readers through bpflink_ring_buffer_new/_add and bpflink_perf_buffer_new,
 * which hand libbpf bpflink's C callbacks; libbpf's own constructors stay declared for bpflink.lowlevel) */
struct ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn sample_cb, void *ctx, const void *opts);
int ring_buffer__add(struct ring_buffer *rb, int map_fd, ring_buffer_sample_fn sample_cb, void *ctx);
void ring_buffer__free(struct ring_buffer *rb);
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
int perf_buffer__consume(struct perf_buffer *pb);
int perf_buffer__consume_buffer(struct perf_buffer *pb, size_t buf_idx);
int perf_buffer__epoll_fd(const struct perf_buffer *pb);
size_t perf_buffer__buffer_cnt(const struct perf_buffer *pb);
int perf_buffer__buffer_fd(const struct perf_buffer *pb, size_t buf_idx);
int libbpf_num_possible_cpus(void);

/* A block of records copied out of the rings: record i is length[i] bytes at i*stride, or (stride 0) packed at
 * 8-byte aligned offsets; source[i] (with_source) is its ring index or CPU. */
struct bpflink_batch {
    char *data;
    size_t used;
    size_t cap;
    uint32_t *length;
    int32_t *source;
    size_t count;
    int with_source;
    int error;
    uint64_t dropped;
    ...;
};

/* One reader: the block its callbacks fill (NULL after a hand-over), its wait set and lost counters. */
struct bpflink_reader {
    struct bpflink_batch *batch;
    int wait_fd;
    int wake_fd;
    uint64_t *lost;
    uint64_t lost_total;
    ...;
};
/* the ctx libbpf hands back for one ring: which reader, which ring */
struct bpflink_source { struct bpflink_reader *reader; int index; ...; };

enum bpflink_wait_result { BPFLINK_WOKEN, ... };

struct bpflink_batch *bpflink_batch_new(void);
void bpflink_batch_free(struct bpflink_batch *b);
/* empty b for the next consume; limit: the most records a perf consume stores */
void bpflink_batch_reset(struct bpflink_batch *b, size_t stride, int with_source, size_t limit);
/* after a consume, before the block is read: lengths and used written out; every record's length when all are
 * one length, else 0 */
size_t bpflink_batch_settle(struct bpflink_batch *b);
/* 1 when every record of b is as long as the first */
int bpflink_batch_same_length(const struct bpflink_batch *b);
/* 1 when all count lengths are equal */
int bpflink_lengths_same(const uint32_t *length, size_t count);
void bpflink_batch_offsets(const uint32_t *length, size_t count, uint64_t *out);

/* r's wait set: ready_fd (libbpf's epoll fd, or a drain's ready fd) and r->wake_fd */
int bpflink_reader_init(struct bpflink_reader *r, int ready_fd, size_t ncpu);
void bpflink_reader_wake(struct bpflink_reader *r);
void bpflink_reader_release(struct bpflink_reader *r);
/* wait up to timeout_ms for records or a wake-up: 1 records may be there, 0 timeout, BPFLINK_WOKEN, -errno */
int bpflink_reader_wait(struct bpflink_reader *r, int timeout_ms);
/* sleep usec without joining the rings' wait queues, ended early only by a wake-up: 0, BPFLINK_WOKEN, -errno */
int bpflink_reader_nap(struct bpflink_reader *r, long usec);
/* ring_buffer__new / ring_buffer__add with bpflink's sample callback (ctx: src): NULL + errno / -errno */
struct ring_buffer *bpflink_ring_buffer_new(int map_fd, struct bpflink_source *src);
int bpflink_ring_buffer_add(struct ring_buffer *rb, int map_fd, struct bpflink_source *src);
/* perf_buffer__new_raw with bpflink's event callback (ctx: the reader); wakeup_bytes 0: wake per sample, else a
 * watermark in bytes; NULL + errno */
struct perf_buffer *bpflink_perf_buffer_new(int map_fd, size_t page_cnt, struct bpflink_reader *r,
                                            uint32_t wakeup_bytes);
/* consume into r->batch until it holds its limit: buffer `only`, or every buffer round robin (only < 0) */
int bpflink_perf_consume(struct perf_buffer *pb, struct bpflink_reader *r, int only);

/* BPF_PROG_TEST_RUN with repeat (tests and bench/ringbuf.py drive producers with it): 0 or -errno */
int bpflink_test_run_repeat(int prog_fd, int repeat, const void *data, __u32 size, __u32 *retval,
                            __u32 *duration_ns);

/* PerfBuffer/RingBuffer(background=True): a native thread moves records from libbpf's perf buffer or ring buffer
 * into a backlog as they arrive (include/drain.c); the reader consumes the backlog into its batch blocks */
struct bpflink_drain;
/* a drain with a backlog of at least bytes (a power of two); NULL + errno */
struct bpflink_drain *bpflink_drain_new(size_t bytes);
size_t bpflink_drain_capacity(const struct bpflink_drain *d);
/* readable while entries wait: the fd the reader's wait set watches */
int bpflink_drain_ready_fd(const struct bpflink_drain *d);
/* perf_buffer__new_raw with the drain's event callback (ctx: d); NULL + errno */
struct perf_buffer *bpflink_perf_buffer_new_drained(int map_fd, size_t page_cnt, struct bpflink_drain *d,
                                                    uint32_t wakeup_bytes);
/* ring_buffer__new / ring_buffer__add with the drain's sample callback (ctx: src of the drain's reader) */
struct ring_buffer *bpflink_ring_buffer_new_drained(int map_fd, struct bpflink_source *src);
int bpflink_ring_buffer_add_drained(struct ring_buffer *rb, int map_fd, struct bpflink_source *src);
/* start the thread over pb, adding lost samples to r's counters: 0 or -errno */
int bpflink_drain_start(struct bpflink_drain *d, struct perf_buffer *pb, struct bpflink_reader *r);
/* start (or, after bpflink_drain_stop, restart) the thread over rb for reader r: 0 or -errno */
int bpflink_drain_start_ring(struct bpflink_drain *d, struct ring_buffer *rb, struct bpflink_reader *r);
/* -errno the thread stopped on, 0 while it runs */
int bpflink_drain_error(const struct bpflink_drain *d);
/* backlog -> r->batch up to its limit: 0 or -ENOMEM */
int bpflink_drain_consume(struct bpflink_drain *d, struct bpflink_reader *r);
/* stop the thread and join it (idempotent; the drain may start again) */
void bpflink_drain_stop(struct bpflink_drain *d);
/* free the backlog and fds (the thread stopped, or a fork()ed child where it never ran) */
void bpflink_drain_free(struct bpflink_drain *d);
