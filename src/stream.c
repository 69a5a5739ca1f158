/* stream.c: streams, dataflow queues of fixed-size values read through
 * readers: BROADCAST (every reader sees every value, at its own pace) and
 * QUEUE (each value goes to exactly one reader).
 *
 * A stream is a ring of values numbered by sequence: [head, tail) are held.
 * All its state, and its readers', is under the stream's one spinlock.
 *  - BROADCAST: each reader has a cursor (pos, the number of the next value
 *    it reads); head is the smallest cursor, so a value is dropped once
 *    every reader has read it, and at_head counts the readers at head (when
 *    it drops to 0, a scan of the readers finds the new head: O(readers)
 *    per value the slowest reader passes, O(1) per read amortized). A
 *    stream without readers holds nothing, and drops what is written.
 *  - QUEUE: head is the one consumption point; the stream's own read point
 *    is a reader embedded in the stream (self), which its handle names.
 * A reader waits with an op (struct weft__chan_op, on its stack) in its
 * reader's queue, and the reader joins the stream's list of waiting
 * readers. A waiting reader has read everything (BROADCAST: pos == tail;
 * QUEUE: the ring is empty), so a write hands its value straight to the
 * waiting ops (BROADCAST: one op of every waiting reader; QUEUE: the first
 * waiting reader's, the readers taking turns), copying it into their
 * buffers under the lock, and stores it only if a reader still has to read
 * it. A writer of a full bounded stream waits in the stream's writers
 * queue; whoever frees room (a read that moves head, a reader's release)
 * claims it, appends its value and resumes it, so writers keep their
 * order. An unbounded stream's ring doubles when full (allocated with the
 * lock dropped; -ENOMEM when that fails).
 *
 * Lifetime: stream and reader handles are counted references, as channels'
 * (chan.c); a reader holds a reference on its stream, so a stream is
 * destroyed once its handles and its readers are released. Blocks are
 * type-stable (streams and readers each in their own pool, freed at the
 * runtime's stop): a call peeks the handle table, locks the stream and
 * checks the handle under the lock. A reader's stream never changes while
 * its handle lives; a stale reader handle fails that check. Destroying a
 * reader or a stream wakes its waiting ops with -EBADF.
 */
#include <string.h>

#include "dataflow.h"

enum { STREAM_INLINE = 64 }; /* rings up to this size live in the block */

struct weft__stream;

struct weft__reader {
    /* Its stream, set before the handle is published and never changed
     * while the handle lives (read without the lock by select). */
    _Atomic(struct weft__stream *) stream;
    /* The rest is under the stream's lock. handle is also read without it
     * (atomically), and re-checked under it. */
    uint64_t handle;                        /* 0 once released */
    uint64_t pos;                           /* BROADCAST: the next value it reads */
    struct weft__chanq waitq;               /* its waiting reads */
    struct weft__reader *next, *prev;       /* the stream's readers */
    struct weft__reader *wnext, *wprev;     /* the stream's waiting readers */
    bool waiting;                           /* in that list */
    bool self;                              /* a stream's own read point (fixed) */
    struct weft__pool_link link;
};

struct weft__stream {
    _Alignas(WEFT__CACHELINE) weft__spinlock lock;
    /* The rest is under the lock; handle, elem_size and mode are also read
     * without it (atomically) by select's find, which re-checks. */
    _Alignas(WEFT__CACHELINE) uint64_t handle; /* 0 once destroyed */
    uint32_t elem_size;
    int mode;                      /* WEFT_STREAM_BROADCAST or _QUEUE */
    size_t cap;                    /* 0: unbounded */
    bool closed;
    uint64_t head, tail;           /* values [head, tail) are held */
    unsigned char *ring;           /* ring_n slots; the value numbered head is at ring_head */
    size_t ring_n, ring_head;
    uint32_t nreaders;             /* readers made and not released */
    uint32_t at_head;              /* BROADCAST: readers whose pos is head */
    struct weft__reader *readers;
    struct weft__reader *wait_head, *wait_tail; /* readers with waiting reads */
    struct weft__chanq writers;    /* writers waiting for room */
    struct weft__reader self;      /* QUEUE: the read point of the stream's handle */
    struct weft__pool_link link;
    unsigned char inline_ring[STREAM_INLINE];
};

static struct weft__pool streams = WEFT__POOL_INIT(struct weft__stream, link);
static struct weft__pool readers = WEFT__POOL_INIT(struct weft__reader, link);

static void stream_fini(void *obj)
{
    struct weft__stream *s = obj;
    if (s->ring && s->ring != s->inline_ring)
        weft__free(s->ring, s->ring_n * s->elem_size);
    s->ring = NULL;
}

static void reader_fini(void *obj)
{
}

void weft__stream_pool_term(void)
{
    weft__pool_term(&readers, reader_fini);
    weft__pool_term(&streams, stream_fini);
}

static inline uint64_t handle_of(struct weft__reader *r)
{
    return __atomic_load_n(&r->handle, __ATOMIC_ACQUIRE);
}

static inline struct weft__stream *stream_of(struct weft__reader *r)
{
    return atomic_load_explicit(&r->stream, memory_order_acquire);
}

/* Claimed ops, resumed after the unlock (through next). */
struct wakes {
    struct weft__chan_op *head;
};

static inline void wake_add(struct wakes *w, struct weft__chan_op *op, int status)
{
    op->status = status;
    op->next = w->head;
    w->head = op;
}

/* ---- the ring --------------------------------------------------------------------- */

static inline unsigned char *slot(struct weft__stream *s, uint64_t seq)
{
    size_t i = s->ring_head + (size_t)(seq - s->head);
    if (i >= s->ring_n)
        i -= s->ring_n;
    return s->ring + i * s->elem_size;
}

static inline void copy_elem(void *dst, const void *src, size_t n)
{
    if (n == 8)
        memcpy(dst, src, 8);
    else
        memcpy(dst, src, n);
}

/* Moves head forward to seq (at most tail), dropping the values before it. */
static inline void drop_to(struct weft__stream *s, uint64_t seq)
{
    size_t i = s->ring_head + (size_t)(seq - s->head); /* seq - head <= ring_n */
    if (i >= s->ring_n)
        i -= s->ring_n;
    s->ring_head = s->ring_n ? i : 0;
    s->head = seq;
}

/* ---- waiting readers --------------------------------------------------------------- */

static void wait_link(struct weft__stream *s, struct weft__reader *r)
{
    r->wnext = NULL;
    r->wprev = s->wait_tail;
    if (s->wait_tail)
        s->wait_tail->wnext = r;
    else
        s->wait_head = r;
    s->wait_tail = r;
    r->waiting = true;
}

static void wait_unlink(struct weft__stream *s, struct weft__reader *r)
{
    if (r->wprev)
        r->wprev->wnext = r->wnext;
    else
        s->wait_head = r->wnext;
    if (r->wnext)
        r->wnext->wprev = r->wprev;
    else
        s->wait_tail = r->wprev;
    r->waiting = false;
}

static void reader_arm(struct weft__stream *s, struct weft__reader *r, struct weft__chan_op *op)
{
    weft__opq_push(&r->waitq, op);
    if (!r->waiting)
        wait_link(s, r);
}

static void reader_disarm(struct weft__stream *s, struct weft__reader *r, struct weft__chan_op *op)
{
    if (!op->linked)
        return;
    weft__opq_unlink(&r->waitq, op);
    if (!r->waitq.head && r->waiting)
        wait_unlink(s, r);
}

/* The first claimable op of r, claimed; r leaves the waiting list once it
 * has none left. */
static struct weft__chan_op *reader_claim(struct weft__stream *s, struct weft__reader *r)
{
    struct weft__chan_op *op = weft__opq_claim(&r->waitq);
    if (!r->waitq.head && r->waiting)
        wait_unlink(s, r);
    return op;
}

/* Claims every op of r with status. */
static void reader_claim_all(struct weft__stream *s, struct weft__reader *r, int status,
                             struct wakes *w)
{
    struct weft__chan_op *op;
    while ((op = weft__opq_claim(&r->waitq)))
        wake_add(w, op, status);
    if (r->waiting)
        wait_unlink(s, r);
}

/* ---- appending and reading, with the stream locked ------------------------------------ */

/* Appends the value at src (room is there: the caller checked). */
static void append(struct weft__stream *s, const void *src, struct wakes *w)
{
    size_t n = s->elem_size;
    if (s->mode == WEFT_STREAM_QUEUE) {
        /* Waiting readers mean an empty ring: the first one takes it. */
        struct weft__reader *r;
        while ((r = s->wait_head)) {
            struct weft__chan_op *op = reader_claim(s, r);
            if (!op)
                continue;
            if (r->waiting && r != s->wait_tail) { /* the readers take turns */
                wait_unlink(s, r);
                wait_link(s, r);
            }
            copy_elem(op->buf, src, n);
            wake_add(w, op, 0);
            return;
        }
        copy_elem(slot(s, s->tail), src, n);
        s->tail++;
        return;
    }
    /* BROADCAST: every waiting reader is at tail and takes it now. */
    uint64_t t = s->tail;
    uint32_t delivered = 0;
    for (struct weft__reader *r = s->wait_head, *next; r; r = next) {
        next = r->wnext;
        weft__assert(r->pos == t);
        struct weft__chan_op *op = reader_claim(s, r);
        if (!op)
            continue;
        copy_elem(op->buf, src, n);
        wake_add(w, op, 0);
        r->pos = t + 1;
        delivered++;
    }
    if (delivered < s->nreaders)
        copy_elem(slot(s, t), src, n);
    s->tail = t + 1;
    if (s->head == t) { /* every reader was at t */
        if (delivered == s->nreaders)
            drop_to(s, t + 1);
        else
            s->at_head -= delivered;
    }
}

/* Lets waiting writers append while there is room (after head moved). In a
 * BROADCAST stream without readers, their values are dropped. */
static void admit_writers(struct weft__stream *s, struct wakes *w)
{
    while (s->writers.head && s->tail - s->head < s->cap) {
        struct weft__chan_op *op = weft__opq_claim(&s->writers);
        if (!op)
            break;
        if (s->mode == WEFT_STREAM_QUEUE || s->nreaders > 0)
            append(s, op->buf, w);
        wake_add(w, op, 0);
    }
}

/* BROADCAST: head is the smallest cursor again (or tail, without readers). */
static void rescan_head(struct weft__stream *s)
{
    uint64_t min = s->tail;
    uint32_t at = 0;
    for (struct weft__reader *r = s->readers; r; r = r->next) {
        if (r->pos < min) {
            min = r->pos;
            at = 0;
        }
        if (r->pos == min)
            at++;
    }
    drop_to(s, min);
    s->at_head = at;
}

/* r leaves position old (BROADCAST), by a read or its release. */
static void left(struct weft__stream *s, uint64_t old, struct wakes *w)
{
    if (old == s->head && --s->at_head == 0) {
        if (s->nreaders == 1) { /* the one reader is the slowest */
            drop_to(s, s->readers->pos);
            s->at_head = 1;
        } else {
            rescan_head(s);
        }
        admit_writers(s, w);
    }
}

/* Reads the next value of r into dst if there is one (0), or -EPIPE if the
 * stream is closed and r has read everything; false: it must wait. */
static bool try_read(struct weft__stream *s, struct weft__reader *r, void *dst, int *status,
                     struct wakes *w)
{
    if (s->mode == WEFT_STREAM_QUEUE) {
        if (s->head < s->tail) {
            copy_elem(dst, slot(s, s->head), s->elem_size);
            drop_to(s, s->head + 1);
            admit_writers(s, w);
            *status = 0;
            return true;
        }
    } else if (r->pos < s->tail) {
        copy_elem(dst, slot(s, r->pos), s->elem_size);
        left(s, r->pos++, w);
        *status = 0;
        return true;
    }
    if (s->closed) {
        *status = -EPIPE;
        return true;
    }
    return false;
}

/* An unbounded stream is full: makes its ring twice as large. The lock is
 * dropped for the allocation and taken again: 0 (look again: anything may
 * have changed), -ENOMEM, or -EBADF (destroyed meanwhile). */
static int grow(struct weft__stream *s, uint64_t handle)
{
    size_t n = s->elem_size, old_n = s->ring_n;
    size_t new_n = old_n ? 2 * old_n : 4;
    if (new_n > ((size_t)1 << 40) / n) /* far beyond any memory: refused as such */
        return -ENOMEM;
    weft__spin_unlock(&s->lock);
    unsigned char *ring = weft__alloc(new_n * n);
    weft__spin_lock(&s->lock);
    if (!ring)
        return -ENOMEM;
    if (s->handle != handle) {
        weft__free(ring, new_n * n);
        return -EBADF;
    }
    size_t count = (size_t)(s->tail - s->head);
    if (new_n <= s->ring_n || count < s->ring_n) { /* grown or drained meanwhile */
        weft__free(ring, new_n * n);
        return 0;
    }
    size_t first = s->ring_n - s->ring_head;
    if (first > count)
        first = count;
    memcpy(ring, s->ring + s->ring_head * n, first * n);
    memcpy(ring + first * n, s->ring, (count - first) * n);
    if (s->ring != s->inline_ring)
        weft__free(s->ring, s->ring_n * n);
    s->ring = ring;
    s->ring_n = new_n;
    s->ring_head = 0;
    return 0;
}

static void wake_all(struct wakes *w)
{
    weft__opq_wake_list(weft__worker_current(), w->head);
}

/* ---- lookups ------------------------------------------------------------------------- */

static inline struct weft__stream *stream_find(uint64_t h)
{
    return weft__handle_peek(h, WEFT__HANDLE_STREAM);
}

/* The read point named by h: a reader, or a stream's own. NULL: neither. */
static inline struct weft__reader *reader_find(uint64_t h)
{
    struct weft__reader *r = weft__handle_peek(h, WEFT__HANDLE_READER);
    if (r)
        return r;
    struct weft__stream *s = stream_find(h);
    return s ? &s->self : NULL;
}

static int wrong_size(const char *fn, uint32_t holds, uint64_t h, size_t size)
{
    return weft__misuse(-EMSGSIZE, "%s: stream %#llx carries %u-byte values, not %zu", fn,
                        (unsigned long long)h, holds, size);
}

static int not_a_stream(const char *fn, uint64_t h)
{
    if (weft__handle_peek(h, WEFT__HANDLE_READER))
        return weft__misuse(-EBADF, "%s: %#llx is a stream's reader, not a stream", fn,
                            (unsigned long long)h);
    return weft__misuse(-EBADF, "%s: no stream %#llx", fn, (unsigned long long)h);
}

static int broadcast_self(const char *fn, uint64_t h)
{
    return weft__misuse(-EINVAL, "%s: %#llx is a BROADCAST stream: read it through a reader", fn,
                        (unsigned long long)h);
}

/* With s locked, r's stream: 0 if r is still h and reads size-byte values. */
static inline int read_check(const char *fn, struct weft__stream *s, struct weft__reader *r,
                             uint64_t h, size_t size)
{
    if (weft__unlikely(handle_of(r) != h)) /* r may belong to another stream now */
        return -EBADF;
    if (weft__unlikely(r->self && s->mode == WEFT_STREAM_BROADCAST))
        return broadcast_self(fn, h);
    if (weft__unlikely(size != s->elem_size))
        return wrong_size(fn, s->elem_size, h, size);
    return 0;
}

/* ---- make ------------------------------------------------------------------------------ */

static int stream_make(weft_stream *out, size_t elem_size, size_t capacity, int mode)
{
    if (atomic_load_explicit(&weft__rt.state, memory_order_relaxed) != WEFT__RT_RUNNING)
        return -ECANCELED;
    struct weft__stream *s = weft__pool_get(&streams);
    if (!s)
        return -ENOMEM;
    unsigned char *ring = s->inline_ring;
    size_t ring_n = capacity, bytes = capacity * elem_size;
    if (capacity == 0)
        ring_n = sizeof s->inline_ring / elem_size;
    else if (bytes > sizeof s->inline_ring && !(ring = weft__alloc(bytes))) {
        weft__pool_put(&streams, s);
        return -ENOMEM;
    }
    /* Fixed for the block's life; before the handle is published. */
    atomic_store_explicit(&s->self.stream, s, memory_order_relaxed);
    if (!s->self.self)
        s->self.self = true;
    struct weft__worker *w = weft__worker_current();
    uint64_t handle;
    if (weft__handle_alloc(w ? &w->handles : NULL, s, WEFT__HANDLE_STREAM, 1, &handle) != 0) {
        if (ring != s->inline_ring)
            weft__free(ring, bytes);
        weft__pool_put(&streams, s);
        return -ENOMEM;
    }
    /* Published before these stores, but every use checks the handle under
     * the lock, written last. */
    weft__spin_lock(&s->lock);
    __atomic_store_n(&s->elem_size, (uint32_t)elem_size, __ATOMIC_RELAXED);
    __atomic_store_n(&s->mode, mode, __ATOMIC_RELAXED);
    s->cap = capacity;
    s->closed = false;
    s->head = s->tail = 0;
    s->ring = ring;
    s->ring_n = ring_n;
    s->ring_head = 0;
    s->nreaders = s->at_head = 0;
    s->readers = s->wait_head = s->wait_tail = NULL;
    s->writers.head = s->writers.tail = NULL;
    s->self.waitq.head = s->self.waitq.tail = NULL;
    s->self.waiting = false;
    __atomic_store_n(&s->self.handle, handle, __ATOMIC_RELEASE);
    __atomic_store_n(&s->handle, handle, __ATOMIC_RELEASE);
    weft__spin_unlock(&s->lock);
    *out = handle;
    return 0;
}

int weft_stream_make(weft_stream *s, size_t elem_size, size_t capacity, int mode)
{
    if (!s)
        return weft__misuse(-EINVAL, "weft_stream_make: s is NULL");
    if (elem_size == 0 || elem_size > WEFT_DVAR_MAX)
        return weft__misuse(-EINVAL, "weft_stream_make: element size %zu outside 1..%zu", elem_size,
                            (size_t)WEFT_DVAR_MAX);
    if (mode != WEFT_STREAM_BROADCAST && mode != WEFT_STREAM_QUEUE)
        return weft__misuse(-EINVAL, "weft_stream_make: unknown mode %d", mode);
    if (capacity > WEFT_CHAN_BUFFER_MAX / elem_size)
        return weft__misuse(-E2BIG, "weft_stream_make: %zu values of %zu bytes exceed %zu bytes",
                            capacity, elem_size, WEFT_CHAN_BUFFER_MAX);
    WEFT__FROM_ANYWHERE(stream_make(s, elem_size, capacity, mode));
}

/* ---- destruction ------------------------------------------------------------------------ */

/* The last reference of the stream is gone (its readers are all released):
 * waiting writers and reads of its own handle wake with -EBADF. */
static void stream_destroy(struct weft__stream *s)
{
    struct wakes w = {NULL};
    weft__spin_lock(&s->lock);
    weft__assert(s->nreaders == 0);
    __atomic_store_n(&s->handle, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->self.handle, 0, __ATOMIC_RELAXED);
    weft__opq_claim_all(&s->writers, &w.head, -EBADF);
    reader_claim_all(s, &s->self, -EBADF, &w);
    unsigned char *ring = s->ring;
    size_t bytes = s->ring_n * s->elem_size;
    s->ring = NULL;
    s->ring_n = 0;
    s->head = s->tail = 0;
    weft__spin_unlock(&s->lock);
    wake_all(&w);
    if (ring != s->inline_ring)
        weft__free(ring, bytes);
    weft__pool_put(&streams, s);
}

/* Drops one reference of stream handle sh (s's). */
static void stream_unref(struct weft__stream *s, uint64_t sh)
{
    struct weft__worker *w = weft__worker_current();
    if (weft__handle_release(w ? &w->handles : NULL, sh, 1))
        stream_destroy(s);
}

/* The last reference of reader r is gone: its waiting reads wake with
 * -EBADF, it stops holding writers back, and its stream reference goes. */
static void reader_destroy(struct weft__reader *r)
{
    struct weft__stream *s = stream_of(r);
    struct wakes w = {NULL};
    weft__spin_lock(&s->lock);
    uint64_t sh = s->handle;
    __atomic_store_n(&r->handle, 0, __ATOMIC_RELAXED);
    reader_claim_all(s, r, -EBADF, &w);
    if (r->prev)
        r->prev->next = r->next;
    else
        s->readers = r->next;
    if (r->next)
        r->next->prev = r->prev;
    s->nreaders--;
    if (s->mode == WEFT_STREAM_BROADCAST) {
        if (s->nreaders == 0) { /* nobody can read what is held */
            drop_to(s, s->tail);
            s->at_head = 0;
            admit_writers(s, &w);
        } else {
            left(s, r->pos, &w);
        }
    }
    weft__spin_unlock(&s->lock);
    wake_all(&w);
    weft__pool_put(&readers, r);
    stream_unref(s, sh);
}

/* ---- readers ----------------------------------------------------------------------------- */

static int stream_reader(weft_stream sh, weft_stream *out)
{
    weft__det_point();
    int err = weft__handle_acquire_kept(sh, WEFT__HANDLE_STREAM);
    if (err == -EBADF)
        return not_a_stream("weft_stream_reader", sh);
    if (err)
        return err;
    struct weft__stream *s = stream_find(sh); /* live: we hold a reference */
    struct weft__reader *r = weft__pool_get(&readers);
    if (!r) {
        stream_unref(s, sh);
        return -ENOMEM;
    }
    atomic_store_explicit(&r->stream, s, memory_order_release);
    struct weft__worker *w = weft__worker_current();
    uint64_t rh;
    if (weft__handle_alloc(w ? &w->handles : NULL, r, WEFT__HANDLE_READER, 1, &rh) != 0) {
        weft__pool_put(&readers, r);
        stream_unref(s, sh);
        return -ENOMEM;
    }
    weft__spin_lock(&s->lock);
    r->pos = s->tail;
    r->waitq.head = r->waitq.tail = NULL;
    r->waiting = false; /* r->self is false in every reader block */
    r->prev = NULL;
    r->next = s->readers;
    if (s->readers)
        s->readers->prev = r;
    s->readers = r;
    s->nreaders++;
    if (s->mode == WEFT_STREAM_BROADCAST && r->pos == s->head)
        s->at_head++;
    __atomic_store_n(&r->handle, rh, __ATOMIC_RELEASE);
    weft__spin_unlock(&s->lock);
    *out = rh;
    return 0;
}

int weft_stream_reader(weft_stream s, weft_stream *reader)
{
    if (!reader)
        return weft__misuse(-EINVAL, "weft_stream_reader: reader is NULL");
    WEFT__FROM_ANYWHERE(stream_reader(s, reader));
}

/* ---- write ---------------------------------------------------------------------------------- */

static inline struct weft__waiter *waiter_of(struct weft__proc *self)
{
    return self ? &self->waiter : weft__waiter_self();
}

/* A write that must wait for room (s locked; unlocked here). */
__attribute__((noinline)) static int wait_room(struct weft__worker *worker, struct weft__proc *self,
                                               struct weft__stream *s, weft_stream sh,
                                               const void *value, int64_t deadline)
{
    if (deadline == 0) {
        weft__spin_unlock(&s->lock);
        return -ETIMEDOUT;
    }
    struct weft__waiter *me = waiter_of(self);
    struct weft__chan_op op = {.waiter = me, .buf = (void *)(uintptr_t)value};
    op.ticket = weft__wait_open(me);
    weft__opq_push(&s->writers, &op);
    weft__spin_unlock(&s->lock);
    weft__wait_why(me, WEFT__WHY_CHAN_SEND, sh);
    int r = weft__wait_on(worker, me, deadline);
    if (r >= 0)
        return op.status; /* appended (or dropped), closed or destroyed */
    weft__spin_lock(&s->lock);
    if (op.linked)
        weft__opq_unlink(&s->writers, &op);
    weft__spin_unlock(&s->lock);
    return r;
}

static int stream_write(struct weft__worker *worker, struct weft__proc *self, weft_stream sh,
                        const void *value, size_t size, int64_t deadline)
{
    if (self)
        weft__kill_check(self);
    struct weft__stream *s = stream_find(sh);
    if (weft__unlikely(!s))
        return not_a_stream("weft_stream_write", sh);
    weft__spin_lock(&s->lock);
    if (weft__unlikely(s->handle != sh)) {
        weft__spin_unlock(&s->lock);
        return not_a_stream("weft_stream_write", sh);
    }
    if (weft__unlikely(size != s->elem_size)) {
        uint32_t holds = s->elem_size;
        weft__spin_unlock(&s->lock);
        return wrong_size("weft_stream_write", holds, sh, size);
    }
    struct wakes w = {NULL};
    int err = 0;
    for (;;) {
        if (s->closed) {
            err = -EPIPE;
            break;
        }
        if (s->mode == WEFT_STREAM_BROADCAST && s->nreaders == 0)
            break; /* nobody can ever read it */
        uint64_t held = s->tail - s->head;
        if (s->cap) {
            if (held < s->cap) {
                append(s, value, &w);
                break;
            }
            err = wait_room(worker, self, s, sh, value, deadline);
            if (weft__unlikely(err == -ECANCELED) && self)
                weft__kill_point();
            return err;
        }
        if (held < s->ring_n) {
            append(s, value, &w);
            break;
        }
        if ((err = grow(s, sh)) != 0)
            break;
    }
    weft__spin_unlock(&s->lock);
    wake_all(&w);
    return err;
}

int weft_stream_write(weft_stream s, const void *value, size_t size, int64_t deadline)
{
    if (!value)
        return weft__misuse(-EINVAL, "weft_stream_write: value is NULL");
    weft__det_point();
    WEFT__FROM_ANYWHERE(stream_write(worker, self, s, value, size, deadline));
}

/* ---- read ----------------------------------------------------------------------------------- */

/* A read that must wait (s locked; unlocked here). */
__attribute__((noinline)) static int wait_value(struct weft__worker *worker, struct weft__proc *self,
                                                struct weft__stream *s, struct weft__reader *r,
                                                weft_stream h, void *value, int64_t deadline)
{
    if (deadline == 0) {
        weft__spin_unlock(&s->lock);
        return -ETIMEDOUT;
    }
    struct weft__waiter *me = waiter_of(self);
    struct weft__chan_op op = {.waiter = me, .buf = value};
    op.ticket = weft__wait_open(me);
    reader_arm(s, r, &op);
    weft__spin_unlock(&s->lock);
    weft__wait_why(me, WEFT__WHY_CHAN_RECV, h);
    int res = weft__wait_on(worker, me, deadline);
    if (res >= 0)
        return op.status; /* a value, closed, or destroyed */
    /* s, not r's stream now: a reader released meanwhile has unlinked op
     * under s's lock, and may belong to another stream already. */
    weft__spin_lock(&s->lock);
    reader_disarm(s, r, &op);
    weft__spin_unlock(&s->lock);
    return res;
}

static int stream_read(struct weft__worker *worker, struct weft__proc *self, weft_stream h,
                       void *value, size_t size, int64_t deadline)
{
    if (self)
        weft__kill_check(self);
    struct weft__reader *r = reader_find(h);
    if (weft__unlikely(!r))
        return -EBADF;
    struct weft__stream *s = stream_of(r);
    weft__spin_lock(&s->lock);
    int err = read_check("weft_stream_read", s, r, h, size);
    if (weft__unlikely(err)) {
        weft__spin_unlock(&s->lock);
        return err;
    }
    struct wakes w = {NULL};
    if (try_read(s, r, value, &err, &w)) {
        weft__spin_unlock(&s->lock);
        if (w.head)
            weft__opq_wake_list(worker, w.head);
        return err;
    }
    err = wait_value(worker, self, s, r, h, value, deadline);
    if (weft__unlikely(err == -ECANCELED) && self)
        weft__kill_point();
    return err;
}

int weft_stream_read(weft_stream reader, void *value, size_t size, int64_t deadline)
{
    if (!value)
        return weft__misuse(-EINVAL, "weft_stream_read: value is NULL");
    weft__det_point();
    WEFT__FROM_ANYWHERE(stream_read(worker, self, reader, value, size, deadline));
}

/* ---- close, len, references -------------------------------------------------------------------- */

static int stream_close(weft_stream sh)
{
    weft__det_point();
    struct weft__stream *s = stream_find(sh);
    if (!s)
        return not_a_stream("weft_stream_close", sh);
    weft__spin_lock(&s->lock);
    if (s->handle != sh) {
        weft__spin_unlock(&s->lock);
        return not_a_stream("weft_stream_close", sh);
    }
    if (s->closed) {
        weft__spin_unlock(&s->lock);
        return weft__misuse(-EPIPE, "weft_stream_close: stream %#llx is already closed",
                            (unsigned long long)sh);
    }
    s->closed = true;
    /* Waiting readers have read everything there is: they are done. */
    struct wakes w = {NULL};
    weft__opq_claim_all(&s->writers, &w.head, -EPIPE);
    while (s->wait_head)
        reader_claim_all(s, s->wait_head, -EPIPE, &w);
    weft__spin_unlock(&s->lock);
    wake_all(&w);
    return 0;
}

int weft_stream_close(weft_stream s)
{
    WEFT__FROM_ANYWHERE(stream_close(s));
}

static long stream_len(weft_stream h)
{
    struct weft__reader *r = reader_find(h);
    if (!r)
        return -EBADF;
    struct weft__stream *s = stream_of(r);
    weft__spin_lock(&s->lock);
    long n;
    if (handle_of(r) != h)
        n = -EBADF;
    else if (s->mode == WEFT_STREAM_BROADCAST && !r->self)
        n = (long)(s->tail - r->pos);
    else
        n = (long)(s->tail - s->head);
    weft__spin_unlock(&s->lock);
    return n;
}

long weft_stream_len(weft_stream reader)
{
    WEFT__FROM_ANYWHERE(stream_len(reader));
}

static int stream_retain(weft_stream h)
{
    int err = weft__handle_acquire_kept(h, WEFT__HANDLE_STREAM);
    if (err == -EBADF)
        err = weft__handle_acquire_kept(h, WEFT__HANDLE_READER);
    if (err == -EBADF)
        return weft__misuse(-EBADF, "weft_stream_retain: no stream or reader %#llx",
                            (unsigned long long)h);
    return err;
}

int weft_stream_retain(weft_stream s)
{
    WEFT__FROM_ANYWHERE(stream_retain(s));
}

static int stream_release(weft_stream h)
{
    weft__det_point();
    int type;
    /* A reference first, so that a stale handle is refused rather than
     * releasing someone else's reference. */
    void *obj = weft__handle_acquire_any(h, WEFT__HANDLE_STREAM, WEFT__HANDLE_READER, &type);
    if (!obj)
        return weft__misuse(-EBADF, "weft_stream_release: no stream or reader %#llx",
                            (unsigned long long)h);
    struct weft__worker *w = weft__worker_current();
    if (weft__handle_release(w ? &w->handles : NULL, h, 2)) {
        if (type == WEFT__HANDLE_STREAM)
            stream_destroy(obj);
        else
            reader_destroy(obj);
    }
    return 0;
}

int weft_stream_release(weft_stream s)
{
    WEFT__FROM_ANYWHERE(stream_release(s));
}

/* ---- a stream's values as a case of select ------------------------------------------------------ */

static int case_find(const weft_case *c, void **obj)
{
    struct weft__reader *r = reader_find(c->handle);
    if (!r)
        return -EBADF;
    *obj = r;
    /* What can be seen without the lock (checked again under it). */
    struct weft__stream *s = stream_of(r);
    if (handle_of(r) != c->handle)
        return 0;
    if (r->self && __atomic_load_n(&s->mode, __ATOMIC_RELAXED) == WEFT_STREAM_BROADCAST)
        return broadcast_self("weft_select", c->handle);
    uint32_t holds = __atomic_load_n(&s->elem_size, __ATOMIC_RELAXED);
    if (holds != c->size)
        return wrong_size("weft_select", holds, c->handle, c->size);
    return 0;
}

static weft__spinlock *case_lock(void *obj)
{
    return &stream_of(obj)->lock;
}

static int case_check(void *obj, const weft_case *c)
{
    struct weft__reader *r = obj;
    return read_check("weft_select", stream_of(r), r, c->handle, c->size);
}

static bool case_try(void *obj, weft_case *c, weft_pid me, int *status, struct weft__handoff *h)
{
    struct weft__reader *r = obj;
    struct wakes w = {NULL};
    if (!try_read(stream_of(r), r, c->buf, status, &w))
        return false;
    /* The ops a read claimed (writers let in, readers served) all have
     * status 0: the first is resumed after select's unlock, the others
     * (a rare case) here. */
    if (w.head) {
        for (struct weft__chan_op *op = w.head->next, *next; op; op = next) {
            next = op->next;
            weft__wait_resume(op->waiter);
        }
        h->peer = w.head;
    }
    return true;
}

static void case_arm(void *obj, weft_case *c, struct weft__chan_op *op)
{
    struct weft__reader *r = obj;
    reader_arm(stream_of(r), r, op);
}

static void case_disarm(void *obj, weft_case *c, struct weft__chan_op *op)
{
    struct weft__reader *r = obj;
    /* op unlinked already if r was released: then r may belong to another
     * stream, whose lock is not held. */
    if (op->linked)
        reader_disarm(stream_of(r), r, op);
}

/* A write fills the buffer of the op it claims: no recheck. */
const struct weft__case_kind weft__stream_case_kind = {case_find, case_lock, case_check, case_try,
                                                       case_arm, case_disarm, false};
