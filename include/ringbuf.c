/* bpflink's C side of RingBuffer/PerfBuffer (src/bpflink/ringbuf.py, perfbuf.py): the callbacks libbpf calls
 * for each record, a batch that copies many records out in one C loop, and a wait set that close() can wake.
 * libbpf walks the rings (ring_buffer__consume_n, perf_buffer__consume); nothing here reads a ring itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

/* value fixed in include/ringbuf.h too (cffi reads it from there) */
#define BPFLINK_WOKEN 2

struct bpflink_batch {
    char *data;
    size_t used;
    size_t cap;
    uint32_t *length;
    int32_t *source;
    size_t count;
    size_t slots;
    size_t stride;
    int with_source;
    int error;
    uint64_t dropped;
    uint32_t same_length;
};

struct bpflink_reader {
    struct bpflink_batch batch;
    int wait_fd;
    int wake_fd;
    uint64_t *lost;
    size_t ncpu;
    uint64_t lost_total;
};

struct bpflink_source { struct bpflink_reader *reader; int index; };

/* a batch this large after a burst is freed on reset rather than kept for the next poll */
#define BPFLINK_BATCH_KEEP (16u << 20)

static void bpflink_batch_free(struct bpflink_batch *b)
{
    free(b->data);
    free(b->length);
    free(b->source);
    b->data = NULL;
    b->length = NULL;
    b->source = NULL;
    b->used = b->cap = b->count = b->slots = 0;
}

void bpflink_batch_reset(struct bpflink_batch *b, size_t stride, int with_source)
{
    if (b->cap > BPFLINK_BATCH_KEEP || b->slots * 8 > BPFLINK_BATCH_KEEP)
        bpflink_batch_free(b);
    b->used = 0;
    b->count = 0;
    b->stride = stride;
    b->with_source = with_source;
    b->same_length = 0;
    b->error = 0;
    b->dropped = 0;
}

static int bpflink_batch_grow_slots(struct bpflink_batch *b)
{
    size_t slots = b->slots ? b->slots * 2 : 1024;
    uint32_t *length;
    int32_t *source;

    length = realloc(b->length, slots * sizeof(*length));
    if (!length)
        return -ENOMEM;
    b->length = length;
    source = realloc(b->source, slots * sizeof(*source));
    if (!source)
        return -ENOMEM;
    b->source = source;
    b->slots = slots;
    return 0;
}

static int bpflink_batch_add(struct bpflink_batch *b, int source, const void *data, size_t size)
{
    size_t at, room, need, cap;
    char *grown;

    /* the hot path of the batch readers: one bounds check, one memcpy, one or two stores */
    if (b->error)
        goto drop;
    if (b->count == b->slots && bpflink_batch_grow_slots(b))
        goto oom;
    at = b->stride ? b->count * b->stride : (b->used + 7) & ~(size_t)7;
    room = b->stride ? b->stride : size;
    need = at + room;
    if (need > b->cap) {
        cap = b->cap ? b->cap : 4096;
        while (cap < need)
            cap *= 2;
        grown = realloc(b->data, cap);
        if (!grown)
            goto oom;
        b->data = grown;
        b->cap = cap;
    }
    if (b->stride) {
        size_t n = size < b->stride ? size : b->stride;

        memcpy(b->data + at, data, n);
        memset(b->data + at + n, 0, b->stride - n);
    } else {
        memcpy(b->data + at, data, size);
    }
    if (!b->count)
        b->same_length = (uint32_t)size;
    else if (b->same_length != size)
        b->same_length = UINT32_MAX;
    b->length[b->count] = (uint32_t)size;
    if (b->with_source)
        b->source[b->count] = source;
    b->count++;
    b->used = need;
    return 0;
oom:
    b->error = -ENOMEM;
drop:
    b->dropped++;
    return -ENOMEM;
}

int bpflink_ring_sample(void *ctx, void *data, size_t size)
{
    struct bpflink_source *src = ctx;

    return bpflink_batch_add(&src->reader->batch, src->index, data, size);
}

void bpflink_perf_sample(void *ctx, int cpu, void *data, __u32 size)
{
    struct bpflink_reader *r = ctx;

    /* perf_buffer's sample callback cannot stop the walk: a record that finds no memory is counted in dropped */
    bpflink_batch_add(&r->batch, cpu, data, size);
}

void bpflink_perf_lost(void *ctx, int cpu, __u64 cnt)
{
    struct bpflink_reader *r = ctx;

    r->lost_total += cnt;
    if (cpu >= 0 && (size_t)cpu < r->ncpu)
        r->lost[cpu] += cnt;
}

int bpflink_reader_init(struct bpflink_reader *r, int libbpf_epoll_fd, size_t ncpu)
{
    struct epoll_event ev;
    int err;

    r->wait_fd = r->wake_fd = -1;
    if (ncpu) {
        r->lost = calloc(ncpu, sizeof(*r->lost));
        if (!r->lost)
            return -ENOMEM;
        r->ncpu = ncpu;
    }
    r->wait_fd = epoll_create1(EPOLL_CLOEXEC);
    if (r->wait_fd < 0)
        goto fail;
    r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->wake_fd < 0)
        goto fail;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.u32 = 0;
    if (epoll_ctl(r->wait_fd, EPOLL_CTL_ADD, libbpf_epoll_fd, &ev) < 0)
        goto fail;
    ev.data.u32 = 1;
    if (epoll_ctl(r->wait_fd, EPOLL_CTL_ADD, r->wake_fd, &ev) < 0)
        goto fail;
    return 0;
fail:
    err = -errno;
    bpflink_reader_release(r);
    return err;
}

void bpflink_reader_wake(struct bpflink_reader *r)
{
    uint64_t one = 1;

    /* the eventfd stays readable: every waiter, now and later, returns BPFLINK_WOKEN */
    if (r->wake_fd >= 0 && write(r->wake_fd, &one, sizeof(one)) < 0) {
        /* EAGAIN only when the counter is already huge: it is readable either way */
    }
}

void bpflink_reader_release(struct bpflink_reader *r)
{
    if (r->wait_fd >= 0)
        close(r->wait_fd);
    if (r->wake_fd >= 0)
        close(r->wake_fd);
    r->wait_fd = r->wake_fd = -1;
    free(r->lost);
    r->lost = NULL;
    r->ncpu = 0;
    bpflink_batch_free(&r->batch);
}

int bpflink_reader_wait(struct bpflink_reader *r, int timeout_ms)
{
    struct epoll_event ev[2];
    int i, n = epoll_wait(r->wait_fd, ev, 2, timeout_ms);

    if (n < 0)
        return -errno;
    for (i = 0; i < n; i++)
        if (ev[i].data.u32 == 1)
            return BPFLINK_WOKEN;
    return n > 0;
}

int bpflink_test_run_repeat(int prog_fd, int repeat, const void *data, __u32 size, __u32 *retval,
                            __u32 *duration_ns)
{
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = size, .repeat = repeat);
    int err = bpf_prog_test_run_opts(prog_fd, &opts);

    if (err)
        return -errno;
    *retval = opts.retval;
    *duration_ns = opts.duration;
    return 0;
}
