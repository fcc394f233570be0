/* bpflink's C side of RingBuffer/PerfBuffer (src/bpflink/ringbuf.py, perfbuf.py): the callbacks libbpf calls
 * for each record copy it into a batch block, so one Python call hands over many records at once; a wait set that
 * close() can wake. libbpf walks the rings (ring_buffer__consume_n, perf_buffer__consume_buffer); nothing here
 * reads a ring itself.
 *
 * The structs are defined here only: include/ringbuf.h declares for cffi the members Python reads, followed by
 * "...;", and cffi takes their layout from the compiler. */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

enum bpflink_wait_result { BPFLINK_WOKEN = 2 };

/* One block of records copied out of the rings. One owner at a time: the reader while libbpf's callbacks fill it,
 * then the RecordBatch Python builds over it (its data, length and source arrays, without another copy), which
 * gives it back to the reader's pool or frees it (src/bpflink/ringbuf.py: _Pool). */
struct bpflink_batch {
    char *data;          /* record i at i * stride, or (stride 0) packed at 8-byte aligned offsets */
    size_t used;         /* bytes of data holding records (each padded to its 8-byte or stride slot) */
    size_t cap;          /* bytes allocated at data */
    uint32_t *length;    /* length[i]: record i's size as the producer stored it */
    int32_t *source;     /* source[i]: record i's ring index or CPU (with_source only) */
    size_t count;        /* records stored */
    size_t slots;        /* entries allocated at length and source */
    size_t stride;       /* 0: packed; else each record cut or zero-padded to stride bytes */
    size_t limit;        /* perf buffers: the walk stops once count reaches limit */
    int with_source;
    int error;           /* -ENOMEM once the block could not grow */
    uint64_t dropped;    /* records libbpf consumed that found no room (after an error) */
    /* A run: while every record is run_size bytes, record i goes to i * run_room and only count (and the source,
     * when asked for) is written; bpflink_batch_settle fills in length[] and used afterwards. So the hot path
     * carries one counter through memory instead of three. run_limit is the count the run may reach before the
     * block must grow; 0 outside a run, which sends every record to the general path. */
    size_t run_size;     /* SIZE_MAX until the first record of a block that may run */
    size_t run_room;
    size_t run_n;        /* bytes copied per record: run_size, or less when a stride cuts it */
    size_t run_limit;
    size_t open_slots;   /* the general hot path's bound: slots outside a run, 0 in one (so it never runs there) */
    int run;             /* 1 while the records so far form a run */
    /* The perf walk's hot path (bpflink_perf_event): a sample event of hot_event bytes whose raw size is run_size
     * goes straight into the run while count < hot_limit, the least of run_limit and limit - 1, so neither the
     * block's room nor the walk's stop needs a check of its own. 0 whenever the run cannot take the next record. */
    size_t hot_limit;
    size_t hot_event;
};

struct bpflink_drain;  /* include/drain.c */

/* One reader (a RingBuffer or PerfBuffer): the block its callbacks fill, its wait set and lost counters. */
struct bpflink_reader {
    struct bpflink_batch *batch;  /* NULL between a hand-over and the next consume */
    int wait_fd;                  /* epoll set: libbpf's epoll fd + wake_fd */
    int wake_fd;                  /* eventfd written by close() so every waiter returns */
    uint64_t *lost;               /* perf: lost samples per CPU, ncpu entries */
    size_t ncpu;
    uint64_t lost_total;
    size_t next_buffer;           /* perf: the buffer the next capped consume starts with */
    int walk_cpu;                 /* perf: the CPU of the buffer being walked (bpflink_perf_walk) */
    struct bpflink_drain *drain;  /* rings with a drain thread: where its ring callback puts records */
};

/* the ctx libbpf hands back for one ring: which reader, which ring */
struct bpflink_source { struct bpflink_reader *reader; int index; };

#define BPFLINK_ALIGN8(n) (((n) + 7) & ~(size_t)7)

struct bpflink_batch *bpflink_batch_new(void)
{
    return calloc(1, sizeof(struct bpflink_batch));
}

void bpflink_batch_free(struct bpflink_batch *b)
{
    if (!b)
        return;
    free(b->data);
    free(b->length);
    free(b->source);
    free(b);
}

void bpflink_batch_reset(struct bpflink_batch *b, size_t stride, int with_source, size_t limit)
{
    b->used = 0;
    b->count = 0;
    b->stride = stride;
    b->limit = limit;
    b->with_source = with_source;
    b->error = 0;
    b->dropped = 0;
    b->run = 1;
    b->run_size = SIZE_MAX;
    b->run_limit = 0;
    b->open_slots = 0;
    b->hot_limit = 0;
}

/* the slow path of bpflink_batch_add: room for one more record ending at byte need */
static __attribute__((noinline)) int bpflink_batch_grow(struct bpflink_batch *b, size_t need)
{
    if (b->error)
        return b->error;
    if (b->count >= b->slots) {
        size_t slots = b->slots ? b->slots * 2 : 4096;
        uint32_t *length = realloc(b->length, slots * sizeof(*length));
        int32_t *source;

        if (!length)
            goto oom;
        b->length = length;
        source = realloc(b->source, slots * sizeof(*source));
        if (!source)
            goto oom;
        b->source = source;
        b->slots = slots;
        if (!b->run)
            b->open_slots = slots;
    }
    if (need > b->cap || !b->data) {
        size_t cap = b->cap ? b->cap : 64 * 1024;
        char *grown;

        while (cap < need)
            cap *= 2;
        grown = realloc(b->data, cap);
        if (!grown)
            goto oom;
        b->data = grown;
        b->cap = cap;
    }
    return 0;
oom:
    b->error = -ENOMEM;
    return b->error;
}

static __attribute__((noinline)) int bpflink_copy_out(char *dst, const void *src, size_t n, int ret)
{
    memcpy(dst, src, n);
    return ret;
}

/* A record of n >= 8 bytes into its slot of room bytes (room - n < 8): the padding zeroed first (a block never
 * shows bytes of an earlier batch), the record over it; up to 32 bytes with fixed-size moves, beyond by a
 * tail-called memcpy, so the hot path makes no call that would need saved registers. Returns ret (the caller's
 * own return value, so the memcpy stays a tail call). */
static inline __attribute__((always_inline)) int bpflink_slot_copy(char *dst, const void *data, size_t n,
                                                                   size_t room, int ret)
{
    if (room != n)
        memset(dst + room - 8, 0, 8);
    if (n <= 16) {
        memcpy(dst, data, 8);
        memcpy(dst + n - 8, (const char *)data + n - 8, 8);
        return ret;
    }
    if (n <= 32) {
        memcpy(dst, data, 16);
        memcpy(dst + n - 16, (const char *)data + n - 16, 16);
        return ret;
    }
    return bpflink_copy_out(dst, data, n, ret);
}

/* dst[0..count) = value: one store, then doubling copies of what is filled (memcpy's wide moves instead of a
 * store an entry) */
static void bpflink_fill32(void *dst, size_t count, uint32_t value)
{
    char *at = dst;
    size_t done, n;

    if (!count)
        return;
    memcpy(at, &value, sizeof(value));
    for (done = 1; done < count; done += n) {
        n = done < count - done ? done : count - done;
        memcpy(at + done * sizeof(value), at, n * sizeof(value));
    }
}

/* Write out what a run left implicit (each record's length, the bytes used) and leave run mode. */
static void bpflink_run_end(struct bpflink_batch *b)
{
    if (b->run && b->run_size != SIZE_MAX && b->count) {
        bpflink_fill32(b->length, b->count, (uint32_t)b->run_size);
        b->used = b->count * b->run_room;
    }
    b->run = 0;
    b->run_limit = 0;
    b->hot_limit = 0;
    b->open_slots = b->slots;
}

/* every case of adding a record the hot path does not take (a run's start and growth, a record ending a run,
 * growth, padding of 8 bytes or more, records under 8 bytes) */
static __attribute__((noinline)) int bpflink_batch_add_any(struct bpflink_batch *b, int source, const void *data,
                                                           size_t size)
{
    size_t i = b->count, at, room, n;
    char *dst;

    if (b->run) {
        if (b->run_size == SIZE_MAX) {  /* the block's first record: a run starts if its slot needs no memset */
            room = b->stride ? b->stride : BPFLINK_ALIGN8(size);
            n = size < room ? size : room;
            if (n >= 8 && room - n < 8) {
                b->run_size = size;
                b->run_room = room;
                b->run_n = n;
            }
        }
        if (size == b->run_size) {
            room = b->run_room;
            if (bpflink_batch_grow(b, (i + 1) * room)) {
                b->dropped++;
                return b->error;
            }
            b->run_limit = b->slots < b->cap / room ? b->slots : b->cap / room;
            if (b->with_source)
                b->source[i] = source;
            b->count = i + 1;
            return bpflink_slot_copy(b->data + i * room, data, b->run_n, room, 0);
        }
        bpflink_run_end(b);
    }
    if (b->stride) {
        at = i * b->stride;
        room = b->stride;
        n = size < room ? size : room;
    } else {
        at = b->used;
        room = BPFLINK_ALIGN8(size);
        n = size;
    }
    if ((i >= b->slots || at + room > b->cap) && bpflink_batch_grow(b, at + room)) {
        b->dropped++;
        return b->error;
    }
    dst = b->data + at;
    memcpy(dst, data, n);
    memset(dst + n, 0, room - n);  /* padding: a block never shows bytes of an earlier batch */
    b->length[i] = (uint32_t)size;
    if (b->with_source)
        b->source[i] = source;
    b->count = i + 1;
    b->used = at + room;
    return 0;
}

/* The hot path of every reader, kept free of calls but tail calls (so it saves no registers). In a run (every
 * record one length) a record costs its copy, its source when asked for and the count. Otherwise a record of 8
 * bytes or more that fits its slot (8-byte aligned, or the stride, which may cut it) in a block with room is
 * copied with its length and source. The rest takes bpflink_batch_add_any. */
static inline __attribute__((always_inline)) int bpflink_batch_add(struct bpflink_batch *b, int source,
                                                                   const void *data, size_t size)
{
    size_t i = b->count, at, room, n;

    if (size == b->run_size && i < b->run_limit) {
        if (b->with_source)
            b->source[i] = source;
        b->count = i + 1;
        return bpflink_slot_copy(b->data + i * b->run_room, data, b->run_n, b->run_room, 0);
    }
    at = b->used;
    room = b->stride ? b->stride : BPFLINK_ALIGN8(size);
    n = size < room ? size : room;  /* less than size only when a stride cuts the record */
    if (n < 8 || room - n >= 8 || i >= b->open_slots || at + room > b->cap)
        return bpflink_batch_add_any(b, source, data, size);
    b->length[i] = (uint32_t)size;
    if (b->with_source)
        b->source[i] = source;
    b->count = i + 1;
    b->used = at + room;
    return bpflink_slot_copy(b->data + at, data, n, room, 0);
}

/* After a consume, before anything reads the block: a run's lengths and used written out. Returns the length of
 * every record when the block holds one run, else 0 (mixed lengths, or no record). */
size_t bpflink_batch_settle(struct bpflink_batch *b)
{
    size_t same = b->run && b->count ? b->run_size : 0;

    bpflink_run_end(b);
    return same;
}

/* 1 when all count lengths are equal (or count is 0): RecordBatch asks only when a path needs it */
int bpflink_lengths_same(const uint32_t *length, size_t count)
{
    uint32_t first = count ? length[0] : 0, diff = 0;
    size_t i;

    for (i = 1; i < count; i++)
        diff |= length[i] ^ first;
    return diff == 0;
}

/* 1 when every record of b is as long as the first (or b is empty) */
int bpflink_batch_same_length(const struct bpflink_batch *b)
{
    if (b->run)
        return 1;
    return bpflink_lengths_same(b->length, b->count);
}

/* ring_buffer__new's sample callback (ctx: the ring's struct bpflink_source). A negative return stops libbpf's
 * consume; the record it was given is consumed all the same (counted in dropped). Static and handed to libbpf
 * from C, so libbpf calls it directly (not through cffi's wrapper and the PLT). */
static int bpflink_ring_sample(void *ctx, void *data, size_t size)
{
    struct bpflink_source *src = ctx;

    return bpflink_batch_add(src->reader->batch, src->index, data, size);
}

/* ring_buffer__new / ring_buffer__add with bpflink_ring_sample: NULL + errno / -errno */
struct ring_buffer *bpflink_ring_buffer_new(int map_fd, struct bpflink_source *src)
{
    return ring_buffer__new(map_fd, bpflink_ring_sample, src, NULL);
}

int bpflink_ring_buffer_add(struct ring_buffer *rb, int map_fd, struct bpflink_source *src)
{
    return ring_buffer__add(rb, map_fd, bpflink_ring_sample, src);
}

/* A perf event's raw sample: the header, a u32 size, the data. 1 and the data with its size (never past the event
 * libbpf handed over) when e is a sample, else 0. */
static inline int bpflink_perf_sample(const struct perf_event_header *e, const char **data, uint32_t *size)
{
    const char *body = (const char *)(e + 1);
    size_t avail = e->size >= sizeof(*e) ? e->size - sizeof(*e) : 0;

    if (e->type != PERF_RECORD_SAMPLE || avail < 4)
        return 0;
    memcpy(size, body, sizeof(*size));
    if (*size > avail - 4)
        *size = (uint32_t)(avail - 4);
    *data = body + 4;
    return 1;
}

/* A lost record (the header, a u64 id, a u64 count) into r's counters. Atomic adds: with a drain thread
 * (include/drain.c) they run on that thread while the reader reads them. */
static void bpflink_perf_lost(struct bpflink_reader *r, int cpu, const struct perf_event_header *e)
{
    const char *body = (const char *)(e + 1);
    uint64_t lost;

    if (e->type != PERF_RECORD_LOST || e->size < sizeof(*e) + 16)
        return;
    memcpy(&lost, body + 8, sizeof(lost));
    if (cpu >= 0 && (size_t)cpu < r->ncpu)
        __atomic_fetch_add(&r->lost[cpu], lost, __ATOMIC_RELAXED);
    __atomic_fetch_add(&r->lost_total, lost, __ATOMIC_RELEASE);
}

/* Every event the perf hot path does not take: a run's first sample and its growth, samples of another size or
 * past the limit, lost records. Sets the hot path's bound for the events that follow. */
static __attribute__((noinline)) enum bpf_perf_event_ret bpflink_perf_event_any(struct bpflink_reader *r, int cpu,
                                                                               struct perf_event_header *e)
{
    struct bpflink_batch *b = r->batch;
    const char *data;
    uint32_t size;
    size_t stop;

    r->walk_cpu = cpu;
    if (!bpflink_perf_sample(e, &data, &size)) {
        bpflink_perf_lost(r, cpu, e);
        return LIBBPF_PERF_EVENT_CONT;
    }
    if (bpflink_batch_add(b, cpu, data, size)) {
        b->hot_limit = 0;
        return LIBBPF_PERF_EVENT_DONE;  /* no memory: leave the rest in the ring */
    }
    stop = b->limit ? b->limit - 1 : 0;
    if (b->run && size == b->run_size) {
        b->hot_event = e->size;
        b->hot_limit = b->run_limit < stop ? b->run_limit : stop;
    } else {
        b->hot_limit = 0;
    }
    return b->count >= b->limit ? LIBBPF_PERF_EVENT_DONE : LIBBPF_PERF_EVENT_CONT;
}

/* perf_buffer__new_raw's event callback (ctx: the reader). Returning LIBBPF_PERF_EVENT_DONE ends the walk of this
 * buffer after this event (which libbpf counts as consumed: it is in the batch). The hot path takes a sample of
 * the run's size below hot_limit: its event size (checked first: it bounds the raw size read after it), its raw
 * size, then the copy, with no other test and no call but a tail call; the rest goes to bpflink_perf_event_any.
 * Every sample of one walk comes from one CPU, so the hot path leaves source[] to bpflink_perf_walk. */
static enum bpf_perf_event_ret bpflink_perf_event(void *ctx, int cpu, struct perf_event_header *e)
{
    struct bpflink_reader *r = ctx;
    struct bpflink_batch *b = r->batch;
    size_t i = b->count;
    uint32_t raw;

    if (e->type == PERF_RECORD_SAMPLE && e->size == b->hot_event && i < b->hot_limit) {
        memcpy(&raw, e + 1, sizeof(raw));
        if (raw == b->run_size) {
            b->count = i + 1;  /* its source (cpu) is written when the walk ends: bpflink_perf_walk */
            return bpflink_slot_copy(b->data + i * b->run_room, (const char *)(e + 1) + 4, b->run_n, b->run_room,
                                     LIBBPF_PERF_EVENT_CONT);
        }
    }
    return bpflink_perf_event_any(r, cpu, e);
}

/* libbpf's perf buffer with an event callback of bpflink's: what perf_buffer__new sets up (one BPF_OUTPUT software
 * event per CPU, raw samples), with a walk that can stop after any record. wakeup_bytes 0: a wake-up per sample,
 * as perf_buffer__new; else the kernel wakes the reader once a buffer holds that many bytes (watermark).
 * NULL + errno. */
static struct perf_buffer *bpflink_perf_open(int map_fd, size_t page_cnt, uint32_t wakeup_bytes,
                                             perf_buffer_event_fn on_event, void *ctx)
{
    struct perf_event_attr attr;

    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_BPF_OUTPUT;
    attr.sample_type = PERF_SAMPLE_RAW;
    if (wakeup_bytes) {
        attr.watermark = 1;
        attr.wakeup_watermark = wakeup_bytes;
    } else {
        attr.wakeup_events = 1;
    }
    return perf_buffer__new_raw(map_fd, page_cnt, &attr, on_event, ctx, NULL);
}

/* bpflink_perf_open with bpflink_perf_event (ctx: the reader) */
struct perf_buffer *bpflink_perf_buffer_new(int map_fd, size_t page_cnt, struct bpflink_reader *r,
                                            uint32_t wakeup_bytes)
{
    return bpflink_perf_open(map_fd, page_cnt, wakeup_bytes, bpflink_perf_event, r);
}

/* One walk of buffer idx: its first sample takes the slow path, which notes the buffer's CPU (libbpf maps buffers
 * to CPUs, and tells only the callback), then every record the walk stored gets that CPU as its source. */
static int bpflink_perf_walk(struct perf_buffer *pb, struct bpflink_reader *r, size_t idx)
{
    struct bpflink_batch *b = r->batch;
    size_t start = b->count;
    int err;

    b->hot_limit = 0;
    err = perf_buffer__consume_buffer(pb, idx);
    if (b->count > start)
        bpflink_fill32(b->source + start, b->count - start, (uint32_t)r->walk_cpu);
    return err;
}

/* Consume perf samples into r->batch until it holds limit records (batch_reset set the limit): buffer only, or
 * (only < 0) every buffer round robin from where the last capped consume stopped, so one busy CPU cannot starve
 * the others. 0 or -errno. */
int bpflink_perf_consume(struct perf_buffer *pb, struct bpflink_reader *r, int only)
{
    struct bpflink_batch *b = r->batch;
    size_t n = perf_buffer__buffer_cnt(pb), i, idx = 0;
    int err;

    if (only >= 0) {
        err = bpflink_perf_walk(pb, r, (size_t)only);
        return err == LIBBPF_PERF_EVENT_ERROR ? -ENOMEM : err;
    }
    for (i = 0; i < n && b->count < b->limit && !b->error; i++) {
        idx = (r->next_buffer + i) % n;
        err = bpflink_perf_walk(pb, r, idx);
        if (err < 0)
            return err == LIBBPF_PERF_EVENT_ERROR ? -ENOMEM : err;  /* libbpf could not copy a wrapped event */
    }
    if (n)
        r->next_buffer = (idx + 1) % n;
    return 0;
}

/* where each record of a packed batch starts (stride 0): the same 8-byte aligned walk bpflink_batch_add made */
void bpflink_batch_offsets(const uint32_t *length, size_t count, uint64_t *out)
{
    uint64_t at = 0;
    size_t i;

    for (i = 0; i < count; i++) {
        out[i] = at;
        at += BPFLINK_ALIGN8((uint64_t)length[i]);
    }
}

/* one more on eventfd fd, which is readable from then on */
static void bpflink_signal(int fd)
{
    uint64_t one = 1;

    if (write(fd, &one, sizeof(one)) < 0) {
        /* EAGAIN only when the counter is already huge: it is readable either way */
    }
}

/* fd into epoll set epfd, readable events reported with data.u32 = tag: 0 or -1 + errno */
static int bpflink_epoll_add(int epfd, int fd, uint32_t tag)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.u32 = tag;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

void bpflink_reader_release(struct bpflink_reader *r);

/* r's wait set: ready_fd (libbpf's epoll fd, or a drain's eventfd) and the wake_fd close() writes */
int bpflink_reader_init(struct bpflink_reader *r, int ready_fd, size_t ncpu)
{
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
    if (bpflink_epoll_add(r->wait_fd, ready_fd, 0) || bpflink_epoll_add(r->wait_fd, r->wake_fd, 1))
        goto fail;
    return 0;
fail:
    err = -errno;
    bpflink_reader_release(r);
    return err;
}

void bpflink_reader_wake(struct bpflink_reader *r)
{
    /* the eventfd stays readable: every waiter, now and later, returns BPFLINK_WOKEN */
    if (r->wake_fd >= 0)
        bpflink_signal(r->wake_fd);
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
    bpflink_batch_free(r->batch);
    r->batch = NULL;
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

/* glibc and musl declare it only under _GNU_SOURCE; this is their prototype */
extern int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout, const sigset_t *sigmask);

/* A poll_interval reader's wait: it sleeps on the wake eventfd only, so no producer has a waiter to wake (a
 * ring's commit, or a perf sample, that finds a reader asleep on its queue pays for waking it). */
int bpflink_reader_nap(struct bpflink_reader *r, long usec)
{
    struct pollfd pfd = { .fd = r->wake_fd, .events = POLLIN };
    struct timespec ts = { .tv_sec = usec / 1000000, .tv_nsec = (usec % 1000000) * 1000 };
    int n = ppoll(&pfd, 1, &ts, NULL);

    if (n < 0)
        return -errno;
    return n > 0 ? BPFLINK_WOKEN : 0;
}

/* The packet the program leaves goes to a buffer of the input's size: the kernel copies it out once per call,
 * and valgrind 3.19's model of BPF_PROG_TEST_RUN reports a NULL data_out as unaddressable bytes. */
int bpflink_test_run_repeat(int prog_fd, int repeat, const void *data, __u32 size, __u32 *retval,
                            __u32 *duration_ns)
{
    void *out = malloc(size ? size : 1);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = size, .data_out = out,
                .data_size_out = size, .repeat = repeat);
    int err;

    if (!out)
        return -ENOMEM;
    err = bpf_prog_test_run_opts(prog_fd, &opts) ? -errno : 0;
    free(out);
    if (err)
        return err;
    *retval = opts.retval;
    *duration_ns = opts.duration;
    return 0;
}
