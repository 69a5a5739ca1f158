/* chan.h: the channel layer's internals, shared by chan.c and select.c. */
#ifndef WEFT_CHAN_H
#define WEFT_CHAN_H

#include "internal.h"

/* A waiting send or receive: on its waiter's stack, linked in a channel's
 * queue under the channel's lock. Whoever unlinks it and claims its wait
 * (with index as the wait's result) completes it: writes status, then
 * resumes the waiter. */
struct weft__chan_op {
    struct weft__chan_op *next, *prev;
    struct weft__waiter *waiter;
    unsigned ticket;
    int index;       /* the select case it stands for (0 for a plain op) */
    int status;      /* set by the completer: 0, -EPIPE (closed), -EBADF (destroyed) */
    bool linked;     /* in a queue; read and written under the channel's lock */
    void *buf;       /* the element to send, or where to receive it */
};

/* head is also read without the lock (relaxed), by the non-blocking checks. */
struct weft__chanq {
    struct weft__chan_op *head, *tail;
};

/* Queues of waiting operations, under the lock of the object that owns the
 * queue (channels, dataflow variables, streams). head is stored atomically:
 * the lock-free checks below read it. */
static inline void weft__opq_push(struct weft__chanq *q, struct weft__chan_op *op)
{
    op->next = NULL;
    op->prev = q->tail;
    if (q->tail)
        q->tail->next = op;
    else
        __atomic_store_n(&q->head, op, __ATOMIC_RELAXED);
    q->tail = op;
    op->linked = true;
}

static inline void weft__opq_unlink(struct weft__chanq *q, struct weft__chan_op *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        __atomic_store_n(&q->head, op->next, __ATOMIC_RELAXED);
    if (op->next)
        op->next->prev = op->prev;
    else
        q->tail = op->prev;
    op->linked = false;
}

/* Pops the first op whose wait can still be claimed, and claims it with its
 * case index as the wait's result; ops claimed elsewhere (a select another
 * case fired, a timeout) are dropped. NULL: none. */
static inline __attribute__((always_inline)) struct weft__chan_op *
weft__opq_claim(struct weft__chanq *q)
{
    struct weft__chan_op *op;
    while ((op = q->head)) {
        weft__opq_unlink(q, op);
        if (weft__wait_claim(op->waiter, op->ticket, op->index))
            return op;
    }
    return NULL;
}

/* ---- pools of type-stable blocks ---------------------------------------------------- */

/* Channels, dataflow variables, streams and readers are type-stable (see
 * chan.c): a block is recycled only as a block of its own type while the
 * runtime runs, and freed at its stop. Blocks are cache-line aligned (each
 * starts with its lock, on a line of its own) and zeroed when first made. */
struct weft__pool_link {
    struct weft__pool_link *next_free, *next_all;
    void *mem; /* the allocation the block is aligned in */
};

struct weft__pool {
    weft__spinlock lock;
    size_t size; /* bytes of a block */
    size_t link; /* offset of its struct weft__pool_link */
    struct weft__pool_link *free, *all;
};

#define WEFT__POOL_INIT(type, member) {.size = sizeof(type), .link = offsetof(type, member)}

static inline void *weft__pool_obj(struct weft__pool *p, struct weft__pool_link *l)
{
    return (char *)l - p->link;
}

/* A recycled block as its last user left it, or a new zeroed one; NULL. */
static inline void *weft__pool_get(struct weft__pool *p)
{
    weft__spin_lock(&p->lock);
    struct weft__pool_link *l = p->free;
    if (l)
        p->free = l->next_free;
    weft__spin_unlock(&p->lock);
    if (l)
        return weft__pool_obj(p, l);
    void *mem = weft__calloc(p->size + WEFT__CACHELINE);
    if (!mem)
        return NULL;
    char *obj = (void *)(((uintptr_t)mem + WEFT__CACHELINE - 1) & ~(uintptr_t)(WEFT__CACHELINE - 1));
    l = (struct weft__pool_link *)(obj + p->link);
    l->mem = mem;
    weft__spin_lock(&p->lock);
    l->next_all = p->all;
    p->all = l;
    weft__spin_unlock(&p->lock);
    return obj;
}

static inline void weft__pool_put(struct weft__pool *p, void *obj)
{
    struct weft__pool_link *l = (struct weft__pool_link *)((char *)obj + p->link);
    weft__spin_lock(&p->lock);
    l->next_free = p->free;
    p->free = l;
    weft__spin_unlock(&p->lock);
}

/* Frees every block, live or recycled, after fini(obj) has freed what it
 * holds (runtime stop: no call is in progress any more). */
static inline void weft__pool_term(struct weft__pool *p, void (*fini)(void *obj))
{
    while (p->all) {
        struct weft__pool_link *l = p->all;
        p->all = l->next_all;
        fini(weft__pool_obj(p, l));
        weft__free(l->mem, p->size + WEFT__CACHELINE);
    }
    p->free = NULL;
}

enum { WEFT__CHAN_INLINE = 64 }; /* buffers up to this size live in the block */

/* The lock has a cache line of its own: a core spinning on it then does not
 * pull away the line the holder is writing. */
struct weft__chan {
    _Alignas(WEFT__CACHELINE) weft__spinlock lock;
    _Alignas(WEFT__CACHELINE) uint32_t elem_size, cap;
    uint64_t handle;            /* names the channel; 0 once destroyed. Written
                                   under the lock, read also without it */
    uint32_t count, head;       /* buffered elements; index of the oldest */
    bool closed;
    struct weft__chanq sendq, recvq;
    weft_pid last_user, prev_user; /* the two processes that used it last
                                      (deadlock report) */
    unsigned char *buf;
    struct weft__pool_link link;
    unsigned char inline_buf[WEFT__CHAN_INLINE];
};

/* Work a completed operation leaves for after the unlock: copy n bytes from
 * src to dst, then wake peer (whose wait is claimed already). */
struct weft__handoff {
    struct weft__chan_op *peer;
    void *dst;
    const void *src;
    size_t n;
    void *wake_senders;  /* a mailbox case: the waiter of a sender claimed for room */
};

/* The block named by handle ch, unlocked and unchecked (see chan.c), or NULL. */
static inline struct weft__chan *weft__chan_find(uint64_t ch)
{
    return (struct weft__chan *)weft__handle_peek(ch, WEFT__HANDLE_CHAN);
}

int weft__chan_wrong_size(struct weft__chan *c, uint64_t ch, size_t size);

/* With c locked: 0 if c is still ch and carries size-byte elements, or
 * -EBADF / -EMSGSIZE. */
static inline int weft__chan_check(struct weft__chan *c, uint64_t ch, size_t size)
{
    if (weft__unlikely(c->handle != ch))
        return -EBADF;
    if (weft__unlikely(size != c->elem_size))
        return weft__chan_wrong_size(c, ch, size);
    return 0;
}

/* With c locked: completes a send of src / a receive into dst by process me
 * (0: an outside thread) now if it can (true; *status is 0 or -EPIPE),
 * leaving work in *h for after the unlock. */
bool weft__chan_try_send(struct weft__chan *c, const void *src, weft_pid me, int *status,
                         struct weft__handoff *h);
bool weft__chan_try_recv(struct weft__chan *c, void *dst, weft_pid me, int *status,
                         struct weft__handoff *h);
void weft__handoff_finish(struct weft__handoff *h);
/* With c locked: queues op / removes it if it is still queued. */
void weft__chan_arm(struct weft__chan *c, bool send, struct weft__chan_op *op);
void weft__chan_disarm(struct weft__chan *c, bool send, struct weft__chan_op *op);
/* Closes ch for its owner's end (no misuse report): 0, -EPIPE, -EBADF. */
int weft__chan_close_quiet(weft_chan ch);
/* Batches, for the dataflow layer's edges (from a process): receives what
 * ch holds now, up to max elements, into dst, or waits until the deadline
 * for one; returns how many (>= 1), or weft_chan_recv's errors. Sends the
 * count elements at src in order, as many per lock hold as fit, waiting for
 * room as weft_chan_send does; returns 0, or its error with *sent telling
 * how many went before it. */
int weft__chan_recv_batch(weft_chan ch, void *dst, size_t size, unsigned max, int64_t deadline);
int weft__chan_send_batch(weft_chan ch, const void *src, size_t size, unsigned count,
                          unsigned *sent, int64_t deadline);
/* Frees every channel block (runtime stop). */
void weft__chan_pool_term(void);

/* Lock-free answers for non-blocking calls (Go's chan empty/full checks):
 * true only if c was ch, open, with size-byte elements and had nothing to
 * receive (or no room to send) at one moment. closed is read last: a channel
 * never reopens, so open then means open at the earlier reads too. */
static inline bool weft__chan_empty_unlocked(struct weft__chan *c, uint64_t ch, size_t size)
{
    if (__atomic_load_n(&c->handle, __ATOMIC_ACQUIRE) != ch ||
        __atomic_load_n(&c->elem_size, __ATOMIC_RELAXED) != size)
        return false;
    uint32_t cap = __atomic_load_n(&c->cap, __ATOMIC_RELAXED);
    bool empty = cap == 0 ? !__atomic_load_n(&c->sendq.head, __ATOMIC_RELAXED)
                             : __atomic_load_n(&c->count, __ATOMIC_RELAXED) == 0;
    atomic_thread_fence(memory_order_acquire);
    return empty && !__atomic_load_n(&c->closed, __ATOMIC_RELAXED) &&
           __atomic_load_n(&c->handle, __ATOMIC_RELAXED) == ch;
}

static inline bool weft__chan_full_unlocked(struct weft__chan *c, uint64_t ch, size_t size)
{
    if (__atomic_load_n(&c->handle, __ATOMIC_ACQUIRE) != ch ||
        __atomic_load_n(&c->elem_size, __ATOMIC_RELAXED) != size)
        return false;
    uint32_t cap = __atomic_load_n(&c->cap, __ATOMIC_RELAXED);
    bool full = cap == 0 ? !__atomic_load_n(&c->recvq.head, __ATOMIC_RELAXED)
                            : __atomic_load_n(&c->count, __ATOMIC_RELAXED) == cap;
    atomic_thread_fence(memory_order_acquire);
    return full && !__atomic_load_n(&c->closed, __ATOMIC_RELAXED) &&
           __atomic_load_n(&c->handle, __ATOMIC_RELAXED) == ch;
}

/* A kind of select case (select.c). find stores the case's object (unlocked)
 * in *obj and returns 0, or -EBADF, or another error it can see without the
 * lock; the other calls run with lock(obj) held. recheck: a wake-up only
 * says that something arrived, and the case must be tried again. */
struct weft__case_kind {
    int (*find)(const weft_case *c, void **obj);
    weft__spinlock *(*lock)(void *obj);
    int (*check)(void *obj, const weft_case *c);
    bool (*try)(void *obj, weft_case *c, weft_pid me, int *status, struct weft__handoff *h);
    void (*arm)(void *obj, weft_case *c, struct weft__chan_op *op);
    void (*disarm)(void *obj, weft_case *c, struct weft__chan_op *op);
    bool recheck;
};

/* mailbox.c */
extern const struct weft__case_kind weft__msg_case_kind;
void weft__handoff_wake_senders(void *waiter);

#endif
