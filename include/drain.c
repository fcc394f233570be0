/* bpflink's drain thread behind PerfBuffer(background=True) and RingBuffer(background=True) (src/bpflink/perfbuf.py,
 * ringbuf.py): a native thread moves records out of libbpf's perf buffer or ring buffer into a backlog in this
 * process's memory as soon as the kernel signals them, without the GIL. Pauses of the Python reader (the garbage
 * collector, a slow callback, another thread holding the GIL, an import) then fill the backlog instead of the
 * kernel's buffers, which a producer at full speed fills in about a millisecond. Python consumes the backlog into
 * the same batch blocks as a direct consume (bpflink_batch_add, include/ringbuf.c), so every poll path works
 * unchanged.
 *
 * The backlog is a byte ring with one producer (the thread) and one consumer (the poller holding the reader's
 * consume lock): head and tail count bytes and only grow; each publishes its count with a release store and reads
 * the other's with an acquire load. An entry is struct bpflink_entry, then the sample padded to 8 bytes; an entry
 * of size BPFLINK_ENTRY_SKIP fills the end of the ring when the next one does not fit there. The thread walks the
 * kernel's buffers only while the backlog has room for two of the largest entries perf can produce (a
 * perf_event_header's size is 16 bits: the skipped end and the entry), and the walk stops as soon as it has not,
 * so every sample libbpf hands over fits. A full backlog leaves samples in the kernel's buffers, where the kernel
 * counts what it drops (PERF_RECORD_LOST, reported as lost like any other loss).
 *
 * A ring buffer cannot leave a record behind: libbpf has moved the ring's consumer position past a record when it
 * hands it over. So the ring callback waits, inside libbpf's walk, until the backlog has room for that record
 * (src/bpflink/ringbuf.py sizes the backlog to hold two of the largest records its rings can hold), and meanwhile
 * the ring fills and the BPF program's bpf_ringbuf_reserve/output fail (the program counts those). */
#include <pthread.h>
#include <signal.h>

#define BPFLINK_ENTRY_SKIP UINT32_MAX
#define BPFLINK_DRAIN_ROOM (2 * (65536 + 16))
/* how often the thread looks at the kernel's buffers without a wake-up (watermarks: samples below one wake
 * nobody) */
#define BPFLINK_DRAIN_LOOK_MS 100
/* records one ring walk takes before the thread tells the reader about them and walks on */
#define BPFLINK_DRAIN_RING_CHUNK 4096

struct bpflink_entry {
    uint32_t size;       /* the sample's bytes, or BPFLINK_ENTRY_SKIP */
    int32_t cpu;
};

struct bpflink_drain {
    char *ring;
    size_t cap;                  /* a power of two */
    uint64_t head;               /* bytes ever written: the thread stores, the consumer loads */
    uint64_t tail;               /* bytes ever consumed: the consumer stores, the thread loads */
    uint64_t announced;          /* the head as the thread last signalled ready_fd */
    struct perf_buffer *pb;      /* the kernel's buffers: a perf buffer, */
    struct ring_buffer *rb;      /* or rings */
    struct bpflink_reader *reader;  /* its lost counters */
    int events_fd;               /* epoll: libbpf's epoll fd and stop_fd */
    int room_fd;                 /* epoll: space_fd and stop_fd, while the backlog is full */
    int stop_fd;                 /* eventfd: bpflink_drain_stop */
    int space_fd;                /* eventfd: the consumer made room while the thread waited for it */
    int ready_fd;                /* eventfd: entries are waiting (in the Python reader's wait set) */
    int waiting;                 /* the thread waits for room */
    int error;                   /* -errno the thread stopped on, 0 while it runs */
    int started;
    int watching;                /* libbpf's epoll fd is in events_fd */
    int stopping;                /* the thread: a ring callback saw the stop while it waited for room */
    char *held;                  /* the ring record that callback had (libbpf consumed it): put first on restart */
    size_t held_size;
    int held_index;
    size_t next_buffer;          /* the kernel buffer the next walk starts with (round robin) */
    pthread_t thread;
};

static void bpflink_drain_close_fds(struct bpflink_drain *d)
{
    int *fds[] = { &d->events_fd, &d->room_fd, &d->stop_fd, &d->space_fd, &d->ready_fd };
    size_t i;

    for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}

/* A drain with a backlog of at least `bytes` (rounded up to a power of two), its eventfds and wait sets; the
 * thread starts with bpflink_drain_start. NULL + errno. */
struct bpflink_drain *bpflink_drain_new(size_t bytes)
{
    struct bpflink_drain *d = calloc(1, sizeof(*d));
    size_t cap = 1;
    int err;

    if (!d)
        return NULL;
    d->events_fd = d->room_fd = d->stop_fd = d->space_fd = d->ready_fd = -1;
    while (cap < bytes || cap < 2 * BPFLINK_DRAIN_ROOM)
        cap *= 2;
    d->cap = cap;
    d->ring = malloc(cap);  /* pages are touched by the thread as the backlog first reaches them */
    if (!d->ring)
        goto fail;
    d->events_fd = epoll_create1(EPOLL_CLOEXEC);
    d->room_fd = epoll_create1(EPOLL_CLOEXEC);
    d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    d->space_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    d->ready_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->events_fd < 0 || d->room_fd < 0 || d->stop_fd < 0 || d->space_fd < 0 || d->ready_fd < 0)
        goto fail;
    if (bpflink_epoll_add(d->events_fd, d->stop_fd, 1) || bpflink_epoll_add(d->room_fd, d->stop_fd, 1) ||
        bpflink_epoll_add(d->room_fd, d->space_fd, 0))
        goto fail;
    return d;
fail:
    err = errno ? errno : ENOMEM;
    bpflink_drain_close_fds(d);
    free(d->ring);
    free(d);
    errno = err;
    return NULL;
}

size_t bpflink_drain_capacity(const struct bpflink_drain *d)
{
    return d->cap;
}

int bpflink_drain_ready_fd(const struct bpflink_drain *d)
{
    return d->ready_fd;
}

/* the thread: bytes free in the backlog. A sequentially consistent load, which bpflink_drain_wait_room's
 * announce-then-look needs (on x86-64 and arm64 the same instruction as an acquire load). */
static size_t bpflink_drain_room(struct bpflink_drain *d)
{
    return d->cap - (size_t)(d->head - __atomic_load_n(&d->tail, __ATOMIC_SEQ_CST));
}

/* the thread: the bytes a record of size bytes takes at the head (the ring's end skipped when it would wrap) */
static size_t bpflink_drain_need(const struct bpflink_drain *d, size_t size)
{
    size_t at = d->head & (d->cap - 1), need = sizeof(struct bpflink_entry) + BPFLINK_ALIGN8(size);

    return at + need > d->cap ? need + (d->cap - at) : need;
}

/* the thread: tell the reader about the entries put since it last did */
static void bpflink_drain_announce(struct bpflink_drain *d)
{
    if (d->head != d->announced) {
        d->announced = d->head;
        bpflink_signal(d->ready_fd);
    }
}

/* the thread: one sample into the backlog (bpflink_drain_room said it fits) */
static void bpflink_drain_put(struct bpflink_drain *d, int cpu, const void *data, uint32_t size)
{
    uint64_t head = d->head;
    size_t at = head & (d->cap - 1), need = sizeof(struct bpflink_entry) + BPFLINK_ALIGN8((size_t)size);
    struct bpflink_entry *e;

    if (at + need > d->cap) {  /* it would wrap: the ring's end is skipped (at least 8 bytes: all 8-aligned) */
        e = (struct bpflink_entry *)(d->ring + at);
        e->size = BPFLINK_ENTRY_SKIP;
        head += d->cap - at;
        at = 0;
    }
    e = (struct bpflink_entry *)(d->ring + at);
    e->size = size;
    e->cpu = cpu;
    memcpy(e + 1, data, size);
    __atomic_store_n(&d->head, head + need, __ATOMIC_RELEASE);
}

/* perf_buffer__new_raw's event callback for a drained reader (ctx: the drain), on the thread */
static enum bpf_perf_event_ret bpflink_drain_event(void *ctx, int cpu, struct perf_event_header *e)
{
    struct bpflink_drain *d = ctx;
    const char *data;
    uint32_t size;

    if (bpflink_perf_sample(e, &data, &size)) {
        bpflink_drain_put(d, cpu, data, size);
        /* DONE ends this buffer's walk after this sample, which libbpf counts as consumed: it is in the backlog */
        return bpflink_drain_room(d) < BPFLINK_DRAIN_ROOM ? LIBBPF_PERF_EVENT_DONE : LIBBPF_PERF_EVENT_CONT;
    }
    bpflink_perf_lost(d->reader, cpu, e);
    return LIBBPF_PERF_EVENT_CONT;
}

/* bpflink_perf_open with the drain's callback (ctx: d). NULL + errno. */
struct perf_buffer *bpflink_perf_buffer_new_drained(int map_fd, size_t page_cnt, struct bpflink_drain *d,
                                                    uint32_t wakeup_bytes)
{
    return bpflink_perf_open(map_fd, page_cnt, wakeup_bytes, bpflink_drain_event, d);
}

/* the thread: wait until the backlog has want bytes free; 1 when stopped meanwhile */
static int bpflink_drain_wait_room(struct bpflink_drain *d, size_t want)
{
    struct epoll_event ev[2];
    uint64_t v;
    int n, i, stopped = 0;

    bpflink_drain_announce(d);  /* the reader makes the room: it must know what is waiting */
    /* announce, then look again: the consumer stores its tail before it reads waiting (both sequentially
     * consistent), so either it sees waiting and signals space_fd, or this look sees its tail */
    __atomic_store_n(&d->waiting, 1, __ATOMIC_SEQ_CST);
    while (!stopped && bpflink_drain_room(d) < want) {
        n = epoll_wait(d->room_fd, ev, 2, -1);
        for (i = 0; i < n; i++)
            stopped |= ev[i].data.u32 == 1;
        if (read(d->space_fd, &v, sizeof(v)) < 0) {
            /* EAGAIN: nothing signalled (a signal ended the wait); look again */
        }
    }
    __atomic_store_n(&d->waiting, 0, __ATOMIC_SEQ_CST);
    return stopped;
}

/* ring_buffer__new's sample callback for a drained RingBuffer (ctx: the ring's struct bpflink_source), on the
 * thread. libbpf has consumed the record already, so it waits here for room rather than drop it; once the drain
 * is stopped meanwhile, a negative return ends libbpf's walk (the record goes with the reader). */
static int bpflink_drain_ring_sample(void *ctx, void *data, size_t size)
{
    struct bpflink_source *src = ctx;
    struct bpflink_drain *d = src->reader->drain;
    size_t need = bpflink_drain_need(d, size);

    if (need > d->cap || size > UINT32_MAX - 8)
        return -E2BIG;  /* never with the backlog ringbuf.py sizes for its rings */
    if (bpflink_drain_room(d) < need && bpflink_drain_wait_room(d, need)) {
        /* kept for a restart (RingBuffer.add stops the thread to add a ring; lost only if malloc fails); a close
         * frees it */
        d->held = malloc(size ? size : 1);
        if (d->held) {
            memcpy(d->held, data, size);
            d->held_size = size;
            d->held_index = src->index;
        }
        d->stopping = 1;
        return -ECANCELED;
    }
    bpflink_drain_put(d, src->index, data, (uint32_t)size);
    return 0;
}

/* ring_buffer__new / ring_buffer__add with the drain's callback (ctx: src, whose reader is the drain's):
 * NULL + errno / -errno */
struct ring_buffer *bpflink_ring_buffer_new_drained(int map_fd, struct bpflink_source *src)
{
    return ring_buffer__new(map_fd, bpflink_drain_ring_sample, src, NULL);
}

int bpflink_ring_buffer_add_drained(struct ring_buffer *rb, int map_fd, struct bpflink_source *src)
{
    return ring_buffer__add(rb, map_fd, bpflink_drain_ring_sample, src);
}

/* the thread: one walk of the kernel's buffers into the backlog. 1 when more may be waiting at once (the backlog
 * ran short of room, or a ring walk took a whole chunk), 0 when the walk found the end, -errno on an error. */
static int bpflink_drain_walk(struct bpflink_drain *d)
{
    size_t nbuf, i;
    int err;

    if (d->rb) {
#if BPFLINK_HAS_ring_buffer__consume_n
        err = ring_buffer__consume_n(d->rb, BPFLINK_DRAIN_RING_CHUNK);
#else
        err = ring_buffer__consume(d->rb);
#endif
        if (err < 0)
            return d->stopping ? 0 : err;
        return err >= BPFLINK_DRAIN_RING_CHUNK;
    }
    nbuf = perf_buffer__buffer_cnt(d->pb);
    for (i = 0; i < nbuf; i++) {
        if (bpflink_drain_room(d) < BPFLINK_DRAIN_ROOM)
            return 1;
        err = perf_buffer__consume_buffer(d->pb, (d->next_buffer + i) % nbuf);
        if (err == -ENOENT)
            continue;  /* no buffer for that CPU (offline when libbpf opened them) */
        if (err < 0)
            return err == LIBBPF_PERF_EVENT_ERROR ? -ENOMEM : err;
    }
    if (nbuf)
        d->next_buffer = (d->next_buffer + 1) % nbuf;
    return 0;
}

static void *bpflink_drain_main(void *arg)
{
    struct bpflink_drain *d = arg;
    struct epoll_event ev[2];
    int more = 0, n, k, err;

    if (d->held) {  /* the record a stop interrupted comes first */
        size_t need = bpflink_drain_need(d, d->held_size);

        if (bpflink_drain_room(d) < need && bpflink_drain_wait_room(d, need))
            goto out;
        bpflink_drain_put(d, d->held_index, d->held, (uint32_t)d->held_size);
        free(d->held);
        d->held = NULL;
        more = 1;
    }
    for (;;) {
        if (bpflink_drain_room(d) < BPFLINK_DRAIN_ROOM) {
            if (bpflink_drain_wait_room(d, BPFLINK_DRAIN_ROOM))
                break;
            more = 1;  /* the kernel may have signalled while the backlog was full: walk without waiting */
        }
        if (!more) {
            n = epoll_wait(d->events_fd, ev, 2, BPFLINK_DRAIN_LOOK_MS);
            if (n < 0 && errno != EINTR) {
                err = -errno;
                goto fail;
            }
            for (k = 0; k < n; k++)
                if (ev[k].data.u32 == 1)
                    goto out;
        }
        more = bpflink_drain_walk(d);
        if (more < 0) {
            err = more;
            goto fail;
        }
        bpflink_drain_announce(d);
        if (d->stopping)
            break;
    }
out:
    return NULL;
fail:
    __atomic_store_n(&d->error, err, __ATOMIC_RELEASE);
    bpflink_signal(d->ready_fd);  /* the reader wakes, consumes what is left and raises the error */
    return NULL;
}

/* Start the thread on the kernel's buffers behind epoll_fd for reader r (again after bpflink_drain_stop: the
 * kernel's buffers may have changed, the epoll fd has not). 0 or -errno. */
static int bpflink_drain_launch(struct bpflink_drain *d, int epoll_fd, struct bpflink_reader *r)
{
    sigset_t all, old;
    int err;

    if (d->started)
        return -EBUSY;
    d->reader = r;
    r->drain = d;
    if (!d->watching) {
        if (bpflink_epoll_add(d->events_fd, epoll_fd, 0))
            return -errno;
        d->watching = 1;
    }
    /* the thread takes no signals: they go to Python's threads, where handlers run (Ctrl-C) */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&d->thread, NULL, bpflink_drain_main, d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err)
        return -err;
    d->started = 1;
    return 0;
}

/* Start the thread over pb (made by bpflink_perf_buffer_new_drained with d); r: the reader whose lost counters
 * the thread adds to. 0 or -errno. */
int bpflink_drain_start(struct bpflink_drain *d, struct perf_buffer *pb, struct bpflink_reader *r)
{
    d->pb = pb;
    return bpflink_drain_launch(d, perf_buffer__epoll_fd(pb), r);
}

/* Start (or restart) the thread over rb, whose rings were added with bpflink_ring_buffer_new/add_drained and
 * sources of reader r. 0 or -errno. */
int bpflink_drain_start_ring(struct bpflink_drain *d, struct ring_buffer *rb, struct bpflink_reader *r)
{
    d->rb = rb;
    return bpflink_drain_launch(d, ring_buffer__epoll_fd(rb), r);
}

/* -errno the thread stopped on, 0 while it runs */
int bpflink_drain_error(const struct bpflink_drain *d)
{
    return __atomic_load_n(&d->error, __ATOMIC_ACQUIRE);
}

/* The consumer: move entries from the backlog into r->batch until it holds its limit (bpflink_batch_reset).
 * 0, or -ENOMEM when the block could not grow (the entry that found no room is dropped, as a direct consume
 * drops it). */
int bpflink_drain_consume(struct bpflink_drain *d, struct bpflink_reader *r)
{
    struct bpflink_batch *b = r->batch;
    uint64_t tail = d->tail, head, v;
    int err = 0;

    if (read(d->ready_fd, &v, sizeof(v)) < 0) {
        /* EAGAIN: nothing signalled since the last consume; entries a limit left behind may still wait */
    }
    head = __atomic_load_n(&d->head, __ATOMIC_ACQUIRE);
    while (tail < head && b->count < b->limit) {
        size_t at = tail & (d->cap - 1);
        const struct bpflink_entry *e = (const struct bpflink_entry *)(d->ring + at);

        if (e->size == BPFLINK_ENTRY_SKIP) {
            tail += d->cap - at;
            continue;
        }
        tail += sizeof(*e) + BPFLINK_ALIGN8((size_t)e->size);
        if (bpflink_batch_add(b, e->cpu, e + 1, e->size)) {
            err = b->error;
            break;
        }
    }
    __atomic_store_n(&d->tail, tail, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&d->waiting, __ATOMIC_SEQ_CST))
        bpflink_signal(d->space_fd);
    if (tail < head)
        bpflink_signal(d->ready_fd);  /* a limit left entries: the fd stays readable for select() users */
    return err;
}

/* Stop the thread and wait for it (it ends its walk first). Idempotent; the drain can start again. */
void bpflink_drain_stop(struct bpflink_drain *d)
{
    uint64_t v;

    if (!d->started)
        return;
    bpflink_signal(d->stop_fd);
    pthread_join(d->thread, NULL);
    d->started = 0;
    d->stopping = 0;
    if (read(d->stop_fd, &v, sizeof(v)) < 0) {
        /* EAGAIN cannot happen: it was signalled above */
    }
}

/* Free the backlog and the fds; the thread must be stopped (or, in a fork()ed child, never existed there). */
void bpflink_drain_free(struct bpflink_drain *d)
{
    if (!d)
        return;
    bpflink_drain_close_fds(d);
    free(d->held);
    free(d->ring);
    free(d);
}
