/* chan.c: CSP channels of fixed-size elements, buffered or rendezvous.
 *
 * A channel is a ring buffer and two queues of waiting operations (senders,
 * receivers), under one spinlock. A waiting operation (struct weft__chan_op)
 * lives on its waiter's stack; whoever completes it unlinks it, claims its
 * wait (weft__wait_claim: exactly one completion, timeout, cancellation or
 * destruction wins), copies the element and wakes it. An op whose wait was
 * already claimed elsewhere (a select fired by another case) is unlinked and
 * skipped. Invariants under the lock: senders wait only while the buffer is
 * full, receivers only while it is empty; a closed channel has no waiters.
 *
 * Lifetime. User references are the handle's references; the last release
 * destroys the channel. Operations do not take references: channel blocks
 * are type-stable (recycled only as channels, freed at runtime stop), so an
 * operation peeks the handle table, locks the block and checks that its
 * handle is still the one it was given. A destroyed channel fails that check
 * with -EBADF; the destruction has woken (and unlinked) every waiter.
 */
#include <string.h>

#include "chan.h"

static struct weft__pool pool = WEFT__POOL_INIT(struct weft__chan, link);

static void chan_fini(void *obj)
{
    struct weft__chan *c = obj;
    if (c->buf && c->buf != c->inline_buf)
        weft__free(c->buf, (size_t)c->cap * c->elem_size);
}

void weft__chan_pool_term(void)
{
    weft__pool_term(&pool, chan_fini);
}

/* ---- the operations on a locked channel ----------------------------------------- */

static inline unsigned char *slot(struct weft__chan *c, uint32_t i)
{
    return c->buf + (size_t)i * c->elem_size;
}

/* Copies one element; the common 8-byte case without a call. */
static inline void copy_elem(void *dst, const void *src, size_t n)
{
    if (n == 8)
        memcpy(dst, src, 8);
    else
        memcpy(dst, src, n);
}

static inline void note_user(struct weft__chan *c, weft_pid me)
{
    if (me && c->last_user != me) { /* atomic for weft_dump, which reads without the lock */
        __atomic_store_n(&c->prev_user, c->last_user, __ATOMIC_RELAXED);
        __atomic_store_n(&c->last_user, me, __ATOMIC_RELAXED);
    }
}

static inline void handoff_finish(struct weft__worker *w, struct weft__handoff *h)
{
    struct weft__chan_op *peer = h->peer;
    if (weft__unlikely(h->wake_senders))
        weft__handoff_wake_senders(h->wake_senders);
    if (!peer)
        return;
    if (h->n)
        copy_elem(h->dst, h->src, h->n);
    peer->status = 0;
    weft__wait_resume_from(w, peer->waiter);
}

void weft__handoff_finish(struct weft__handoff *h)
{
    handoff_finish(weft__worker_current(), h);
}

static inline __attribute__((always_inline)) bool try_send(struct weft__chan *c, const void *src,
                                                            weft_pid me, int *status,
                                                            struct weft__handoff *h)
{
    note_user(c, me);
    if (c->closed) {
        *status = -EPIPE;
        return true;
    }
    struct weft__chan_op *r = weft__opq_claim(&c->recvq);
    if (r) {
        *h = (struct weft__handoff){.peer = r, .dst = r->buf, .src = src, .n = c->elem_size};
        *status = 0;
        return true;
    }
    if (c->count < c->cap) {
        uint32_t tail = c->head + c->count;
        if (tail >= c->cap)
            tail -= c->cap;
        copy_elem(slot(c, tail), src, c->elem_size);
        __atomic_store_n(&c->count, c->count + 1, __ATOMIC_RELAXED);
        *status = 0;
        return true;
    }
    return false;
}

static inline __attribute__((always_inline)) bool try_recv(struct weft__chan *c, void *dst,
                                                            weft_pid me, int *status,
                                                            struct weft__handoff *h)
{
    note_user(c, me);
    if (c->count > 0) {
        copy_elem(dst, slot(c, c->head), c->elem_size);
        /* A waiting sender means a full buffer: its element takes the slot
         * just emptied, which is the tail. */
        struct weft__chan_op *s = weft__opq_claim(&c->sendq);
        if (s) {
            copy_elem(slot(c, c->head), s->buf, c->elem_size);
            *h = (struct weft__handoff){.peer = s};
        } else {
            __atomic_store_n(&c->count, c->count - 1, __ATOMIC_RELAXED);
        }
        if (++c->head == c->cap)
            c->head = 0;
        *status = 0;
        return true;
    }
    struct weft__chan_op *s = weft__opq_claim(&c->sendq);
    if (s) {
        *h = (struct weft__handoff){.peer = s, .dst = dst, .src = s->buf, .n = c->elem_size};
        *status = 0;
        return true;
    }
    if (c->closed) {
        *status = -EPIPE;
        return true;
    }
    return false;
}

bool weft__chan_try_send(struct weft__chan *c, const void *src, weft_pid me, int *status,
                         struct weft__handoff *h)
{
    return try_send(c, src, me, status, h);
}

bool weft__chan_try_recv(struct weft__chan *c, void *dst, weft_pid me, int *status,
                         struct weft__handoff *h)
{
    return try_recv(c, dst, me, status, h);
}

void weft__chan_arm(struct weft__chan *c, bool send, struct weft__chan_op *op)
{
    weft__opq_push(send ? &c->sendq : &c->recvq, op);
}

void weft__chan_disarm(struct weft__chan *c, bool send, struct weft__chan_op *op)
{
    if (op->linked)
        weft__opq_unlink(send ? &c->sendq : &c->recvq, op);
}

/* Unlinks every waiter, claims each and returns the claimed ones as a list
 * (through next) for wake_all, once the lock is dropped. */
static struct weft__chan_op *claim_all(struct weft__chan *c)
{
    struct weft__chan_op *woken = NULL, *op;
    struct weft__chanq *queues[2] = {&c->sendq, &c->recvq};
    for (int i = 0; i < 2; i++) {
        while ((op = weft__opq_claim(queues[i]))) {
            op->next = woken;
            woken = op;
        }
    }
    return woken;
}

static void wake_all(struct weft__chan_op *op, int status)
{
    while (op) {
        struct weft__chan_op *next = op->next; /* op is gone once resumed */
        op->status = status;
        weft__wait_resume(op->waiter);
        op = next;
    }
}

/* ---- handles --------------------------------------------------------------------- */

int weft__chan_wrong_size(struct weft__chan *c, uint64_t ch, size_t size)
{
    return weft__misuse(-EMSGSIZE, "channel %#llx carries %u-byte elements, not %zu",
                        (unsigned long long)ch, c->elem_size, size);
}


/* ---- the public calls -------------------------------------------------------------- */

static int chan_make(weft_chan *ch, size_t elem_size, size_t capacity)
{
    if (atomic_load_explicit(&weft__rt.state, memory_order_relaxed) != WEFT__RT_RUNNING)
        return -ECANCELED;
    struct weft__chan *c = weft__pool_get(&pool);
    if (!c)
        return -ENOMEM;
    size_t bytes = capacity * elem_size;
    unsigned char *buf = c->inline_buf;
    if (bytes > sizeof c->inline_buf && !(buf = weft__alloc(bytes))) {
        weft__pool_put(&pool, c);
        return -ENOMEM;
    }
    struct weft__worker *w = weft__worker_current();
    uint64_t handle;
    if (weft__handle_alloc(w ? &w->handles : NULL, c, WEFT__HANDLE_CHAN, 1, &handle) != 0) {
        if (buf != c->inline_buf)
            weft__free(buf, bytes);
        weft__pool_put(&pool, c);
        return -ENOMEM;
    }
    /* The handle is published before these stores, but every use of the
     * block checks c->handle under the lock, written last. */
    weft__spin_lock(&c->lock);
    __atomic_store_n(&c->elem_size, (uint32_t)elem_size, __ATOMIC_RELAXED);
    __atomic_store_n(&c->cap, (uint32_t)capacity, __ATOMIC_RELAXED);
    __atomic_store_n(&c->count, 0, __ATOMIC_RELAXED);
    c->head = 0;
    __atomic_store_n(&c->closed, false, __ATOMIC_RELAXED);
    __atomic_store_n(&c->sendq.head, NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&c->recvq.head, NULL, __ATOMIC_RELAXED);
    c->sendq.tail = c->recvq.tail = NULL;
    __atomic_store_n(&c->last_user, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&c->prev_user, 0, __ATOMIC_RELAXED);
    c->buf = buf;
    __atomic_store_n(&c->handle, handle, __ATOMIC_RELEASE);
    weft__spin_unlock(&c->lock);
    *ch = handle;
    return 0;
}

int weft_chan_make(weft_chan *ch, size_t elem_size, size_t capacity)
{
    if (!ch)
        return weft__misuse(-EINVAL, "weft_chan_make: ch is NULL");
    if (elem_size == 0 || elem_size > WEFT_CHAN_ELEM_MAX)
        return weft__misuse(-EINVAL, "weft_chan_make: element size %zu outside 1..%zu", elem_size,
                            WEFT_CHAN_ELEM_MAX);
    if (capacity > WEFT_CHAN_BUFFER_MAX / elem_size)
        return weft__misuse(-E2BIG, "weft_chan_make: %zu elements of %zu bytes exceed %zu bytes",
                            capacity, elem_size, WEFT_CHAN_BUFFER_MAX);
    WEFT__FROM_ANYWHERE(chan_make(ch, elem_size, capacity));
}

/* Waits with op queued on c (locked by the caller, unlocked here), from a
 * process running on worker or an outside thread (worker NULL). */
static int wait_on(struct weft__worker *worker, struct weft__chan *c, bool send,
                   struct weft__chan_op *op, weft_chan ch, int64_t deadline)
{
    struct weft__waiter *me = op->waiter;
    op->ticket = weft__wait_open(me);
    weft__chan_arm(c, send, op);
    weft__spin_unlock(&c->lock);
    weft__wait_why(me, send ? WEFT__WHY_CHAN_SEND : WEFT__WHY_CHAN_RECV, ch);
    int r = weft__wait_on(worker, me, deadline);
    if (r >= 0)
        return op->status; /* completed: its completer unlinked it */
    weft__spin_lock(&c->lock);
    weft__chan_disarm(c, send, op);
    weft__spin_unlock(&c->lock);
    return r;
}

static inline struct weft__waiter *waiter_of(struct weft__proc *self)
{
    return self ? &self->waiter : weft__waiter_self();
}

/* The operation cannot complete now (c is locked; unlocked here): waits for
 * it, unless the deadline says not to. Out of line, so that the fast path
 * saves few registers. */
__attribute__((noinline)) static int block(struct weft__worker *worker, struct weft__proc *self,
                                           struct weft__chan *c, bool send, weft_chan ch,
                                           void *elem, int64_t deadline)
{
    if (deadline == 0) {
        weft__spin_unlock(&c->lock);
        return -ETIMEDOUT;
    }
    struct weft__chan_op op = {.waiter = waiter_of(self), .buf = elem};
    return wait_on(worker, c, send, &op, ch, deadline);
}

/* One send or receive by self, running on worker (both NULL: an outside
 * thread). */
static inline __attribute__((always_inline)) int chan_op(struct weft__worker *worker,
                                                         struct weft__proc *self, bool send,
                                                         weft_chan ch, void *elem, size_t size,
                                                         int64_t deadline)
{
    if (self)
        weft__kill_check(self);
    struct weft__chan *c = weft__chan_find(ch);
    if (weft__unlikely(!c))
        return -EBADF;
    /* Non-blocking on an empty (full) channel: no lock, no store. */
    if (deadline == 0 && (send ? weft__chan_full_unlocked(c, ch, size)
                               : weft__chan_empty_unlocked(c, ch, size)))
        return -ETIMEDOUT;
    weft__spin_lock(&c->lock);
    int err = weft__chan_check(c, ch, size);
    if (weft__unlikely(err)) {
        weft__spin_unlock(&c->lock);
        return err;
    }
    struct weft__handoff h;
    h.peer = NULL;
    h.wake_senders = NULL;
    weft_pid me = self ? self->pid : 0;
    if (send ? try_send(c, elem, me, &err, &h) : try_recv(c, elem, me, &err, &h)) {
        weft__spin_unlock(&c->lock);
        handoff_finish(worker, &h);
        return err;
    }
    err = block(worker, self, c, send, ch, elem, deadline);
    if (weft__unlikely(err == -ECANCELED) && self)
        weft__kill_point();
    return err;
}

int weft_chan_send(weft_chan ch, const void *elem, size_t size, int64_t deadline)
{
    if (!elem)
        return weft__misuse(-EINVAL, "weft_chan_send: elem is NULL");
    weft__det_point(); /* before the worker is looked up: it may change */
    WEFT__FROM_ANYWHERE(chan_op(worker, self, true, ch, (void *)(uintptr_t)elem, size, deadline));
}

int weft_chan_recv(weft_chan ch, void *elem, size_t size, int64_t deadline)
{
    if (!elem)
        return weft__misuse(-EINVAL, "weft_chan_recv: elem is NULL");
    weft__det_point();
    WEFT__FROM_ANYWHERE(chan_op(worker, self, false, ch, elem, size, deadline));
}

/* quiet: an owner's end closes its channels; one already closed or gone is
 * no misuse then. */
static int chan_close_as(weft_chan ch, bool quiet)
{
    struct weft__chan *c = weft__chan_find(ch);
    if (!c)
        return quiet ? -EBADF
                     : weft__misuse(-EBADF, "weft_chan_close: no channel %#llx", (unsigned long long)ch);
    weft__spin_lock(&c->lock);
    if (c->handle != ch) {
        weft__spin_unlock(&c->lock);
        return quiet ? -EBADF
                     : weft__misuse(-EBADF, "weft_chan_close: no channel %#llx", (unsigned long long)ch);
    }
    if (c->closed) {
        weft__spin_unlock(&c->lock);
        return quiet ? -EPIPE
                     : weft__misuse(-EPIPE, "weft_chan_close: channel %#llx is already closed",
                                    (unsigned long long)ch);
    }
    __atomic_store_n(&c->closed, true, __ATOMIC_RELAXED);
    /* Before the queues empty: a lock-free check that sees them empty then
     * sees closed too (it pairs with the check's acquire fence). */
    atomic_thread_fence(memory_order_release);
    struct weft__chan_op *woken = claim_all(c);
    weft__spin_unlock(&c->lock);
    wake_all(woken, -EPIPE);
    return 0;
}

static int chan_close(weft_chan ch)
{
    weft__det_point();
    return chan_close_as(ch, false);
}

int weft__chan_close_quiet(weft_chan ch)
{
    return chan_close_as(ch, true);
}

int weft_chan_close(weft_chan ch)
{
    WEFT__FROM_ANYWHERE(chan_close(ch));
}

static int chan_retain(weft_chan ch)
{
    /* A reference taken through the table, then kept: one more user. */
    int err = weft__handle_acquire_kept(ch, WEFT__HANDLE_CHAN);
    if (err == -EBADF)
        return weft__misuse(-EBADF, "weft_chan_retain: no channel %#llx", (unsigned long long)ch);
    return err;
}

int weft_chan_retain(weft_chan ch)
{
    WEFT__FROM_ANYWHERE(chan_retain(ch));
}

static void destroy(struct weft__chan *c)
{
    weft__spin_lock(&c->lock);
    __atomic_store_n(&c->handle, 0, __ATOMIC_RELAXED);
    atomic_thread_fence(memory_order_release); /* as in chan_close */
    struct weft__chan_op *woken = claim_all(c);
    unsigned char *buf = c->buf;
    size_t bytes = (size_t)c->cap * c->elem_size;
    c->buf = NULL;
    __atomic_store_n(&c->count, 0, __ATOMIC_RELAXED);
    weft__spin_unlock(&c->lock);
    wake_all(woken, -EBADF);
    if (buf != c->inline_buf)
        weft__free(buf, bytes);
    weft__pool_put(&pool, c);
}

static int chan_release(weft_chan ch)
{
    weft__det_point();
    /* Take a reference first, so that a stale handle is refused rather than
     * releasing someone else's reference. */
    struct weft__chan *c = weft__handle_acquire(ch, WEFT__HANDLE_CHAN);
    if (!c)
        return weft__misuse(-EBADF, "weft_chan_release: no channel %#llx", (unsigned long long)ch);
    struct weft__worker *w = weft__worker_current();
    if (weft__handle_release(w ? &w->handles : NULL, ch, 2))
        destroy(c);
    return 0;
}

int weft_chan_release(weft_chan ch)
{
    WEFT__FROM_ANYWHERE(chan_release(ch));
}

static int chan_query(weft_chan ch, bool cap)
{
    struct weft__chan *c = weft__chan_find(ch);
    if (!c)
        return -EBADF;
    weft__spin_lock(&c->lock);
    int r = c->handle != ch ? -EBADF : (int)(cap ? c->cap : c->count);
    weft__spin_unlock(&c->lock);
    return r;
}

int weft_chan_len(weft_chan ch)
{
    WEFT__FROM_ANYWHERE(chan_query(ch, false));
}

int weft_chan_cap(weft_chan ch)
{
    WEFT__FROM_ANYWHERE(chan_query(ch, true));
}

/* ---- batches (the dataflow layer's edges) ---------------------------------------------- */

/* Takes what c holds now, up to max elements, into dst, c locked: the
 * buffered ones first, each slot refilled from a waiting sender (a waiting
 * sender means a full buffer), then those of senders waiting on a
 * rendezvous channel. The senders served are claimed and listed in *woken
 * for wake_all after the unlock. Returns how many were taken. */
static unsigned take_batch(struct weft__chan *c, unsigned char *dst, unsigned max,
                           struct weft__chan_op **woken)
{
    size_t n = c->elem_size;
    unsigned got = 0;
    while (got < max) {
        struct weft__chan_op *s;
        if (c->count > 0) {
            copy_elem(dst + got * n, slot(c, c->head), n);
            if ((s = weft__opq_claim(&c->sendq))) {
                copy_elem(slot(c, c->head), s->buf, n);
                s->next = *woken;
                *woken = s;
            } else {
                __atomic_store_n(&c->count, c->count - 1, __ATOMIC_RELAXED);
            }
            if (++c->head == c->cap)
                c->head = 0;
        } else if ((s = weft__opq_claim(&c->sendq))) {
            copy_elem(dst + got * n, s->buf, n);
            s->next = *woken;
            *woken = s;
        } else {
            break;
        }
        got++;
    }
    return got;
}

/* Puts elements of src into c, c locked: to waiting receivers first, then
 * into the buffer while it has room. Returns how many were put. */
static unsigned put_batch(struct weft__chan *c, const unsigned char *src, unsigned count,
                          struct weft__chan_op **woken)
{
    size_t n = c->elem_size;
    unsigned put = 0;
    struct weft__chan_op *r;
    while (put < count && (r = weft__opq_claim(&c->recvq))) {
        copy_elem(r->buf, src + put * n, n);
        r->next = *woken;
        *woken = r;
        put++;
    }
    while (put < count && c->count < c->cap) {
        uint32_t tail = c->head + c->count;
        if (tail >= c->cap)
            tail -= c->cap;
        copy_elem(slot(c, tail), src + put * n, n);
        __atomic_store_n(&c->count, c->count + 1, __ATOMIC_RELAXED);
        put++;
    }
    return put;
}

int weft__chan_recv_batch(weft_chan ch, void *dst, size_t size, unsigned max, int64_t deadline)
{
    weft__det_point();
    struct weft__worker *worker = weft__worker_current();
    struct weft__proc *self = worker ? worker->current : NULL;
    struct weft__chan *c = weft__chan_find(ch);
    if (!c || !self)
        return c ? weft_chan_recv(ch, dst, size, deadline) : -EBADF;
    weft__kill_check(self);
    weft__spin_lock(&c->lock);
    int err = weft__chan_check(c, ch, size);
    if (err) {
        weft__spin_unlock(&c->lock);
        return err;
    }
    note_user(c, self->pid);
    struct weft__chan_op *woken = NULL;
    unsigned got = take_batch(c, dst, max, &woken);
    weft__spin_unlock(&c->lock);
    wake_all(woken, 0);
    if (got)
        return (int)got;
    err = weft_chan_recv(ch, dst, size, deadline); /* waits for one */
    return err ? err : 1;
}

int weft__chan_send_batch(weft_chan ch, const void *src, size_t size, unsigned count,
                          unsigned *sent, int64_t deadline)
{
    const unsigned char *from = src;
    *sent = 0;
    weft__det_point();
    struct weft__chan *c = weft__chan_find(ch);
    if (!c)
        return -EBADF;
    while (*sent < count) {
        weft__spin_lock(&c->lock);
        int err = weft__chan_check(c, ch, size);
        if (!err && c->closed)
            err = -EPIPE;
        if (err) {
            weft__spin_unlock(&c->lock);
            return err;
        }
        struct weft__chan_op *woken = NULL;
        *sent += put_batch(c, from + *sent * size, count - *sent, &woken);
        weft__spin_unlock(&c->lock);
        wake_all(woken, 0);
        if (*sent == count)
            break;
        /* No room: wait to send the next one, then try a batch again. */
        if ((err = weft_chan_send(ch, from + *sent * size, size, deadline)) != 0)
            return err;
        ++*sent;
    }
    return 0;
}
