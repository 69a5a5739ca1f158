/* dvar.c: dataflow variables, single-assignment values whose readers wait
 * until they are bound.
 *
 * A variable is a block with a spinlock, its value (inline up to DVAR_INLINE
 * bytes, else a buffer allocated at make, so that a bind never allocates),
 * its state (unbound, bound, failed) and a queue of waiting reads (struct
 * weft__chan_op on the readers' stacks, as channels' waiting operations).
 * A bind copies the value in, then, still under the lock, claims every
 * waiting read, copies the value into its buffer and links it in a list; the
 * readers are resumed after the unlock. A reader that finds the variable
 * unbound queues its op under the same lock, so no bind can slip between its
 * look and its wait. Once bound, a variable never changes until destroyed:
 * reading it is a lock, a check and a copy.
 *
 * Lifetime: as channels (chan.c). User references are the handle's; the
 * last release destroys the variable, waking waiting readers with -EBADF.
 * Blocks are type-stable (recycled only as variables, freed at the
 * runtime's stop), so a call peeks the handle table, locks the block and
 * checks that its handle is still the one it was given.
 */
#include <string.h>

#include "dataflow.h"

enum { DVAR_INLINE = 64 };           /* values up to this size live in the block */
enum { UNBOUND = 0, BOUND = 1, FAILED = 2 };

struct weft__dvar {
    _Alignas(WEFT__CACHELINE) weft__spinlock lock;
    /* The rest is under the lock. handle and size are also read without
     * it (atomically) by select's find, which re-checks under the lock. */
    _Alignas(WEFT__CACHELINE) uint64_t handle; /* names the variable; 0 once destroyed */
    uint32_t size;                  /* bytes of the value */
    int state;                      /* UNBOUND, BOUND or FAILED */
    int err;                        /* FAILED: the error readers get */
    struct weft__chanq readers;     /* waiting reads, while UNBOUND */
    unsigned char *value;           /* inline_value or a buffer of size bytes */
    struct weft__pool_link link;
    unsigned char inline_value[DVAR_INLINE];
};

static struct weft__pool pool = WEFT__POOL_INIT(struct weft__dvar, link);

static void dvar_fini(void *obj)
{
    struct weft__dvar *d = obj;
    if (d->value && d->value != d->inline_value)
        weft__free(d->value, d->size);
    d->value = NULL;
}

void weft__dvar_pool_term(void)
{
    weft__pool_term(&pool, dvar_fini);
}

static inline struct weft__dvar *dvar_find(uint64_t dv)
{
    return weft__handle_peek(dv, WEFT__HANDLE_DVAR);
}

static int wrong_size(const char *fn, uint32_t holds, uint64_t dv, size_t size)
{
    return weft__misuse(-EMSGSIZE, "%s: dataflow variable %#llx holds %u bytes, not %zu", fn,
                        (unsigned long long)dv, holds, size);
}

/* With d locked: 0 if d is still dv and holds size-byte values. */
static inline int dvar_check(const char *fn, struct weft__dvar *d, uint64_t dv, size_t size)
{
    if (weft__unlikely(d->handle != dv))
        return -EBADF;
    if (weft__unlikely(size != d->size))
        return wrong_size(fn, d->size, dv, size);
    return 0;
}

/* With d locked and bound (or failed): copies the value out; 0 or the error. */
static inline int take_value(struct weft__dvar *d, void *dst)
{
    if (d->state == FAILED)
        return d->err;
    if (d->size == 8)
        memcpy(dst, d->value, 8);
    else
        memcpy(dst, d->value, d->size);
    return 0;
}

/* ---- make ------------------------------------------------------------------------------- */

static int dvar_make(weft_dvar *dv, size_t size)
{
    if (atomic_load_explicit(&weft__rt.state, memory_order_relaxed) != WEFT__RT_RUNNING)
        return -ECANCELED;
    struct weft__dvar *d = weft__pool_get(&pool);
    if (!d)
        return -ENOMEM;
    unsigned char *value = d->inline_value;
    if (size > sizeof d->inline_value && !(value = weft__alloc(size))) {
        weft__pool_put(&pool, d);
        return -ENOMEM;
    }
    struct weft__worker *w = weft__worker_current();
    uint64_t handle;
    if (weft__handle_alloc(w ? &w->handles : NULL, d, WEFT__HANDLE_DVAR, 1, &handle) != 0) {
        if (value != d->inline_value)
            weft__free(value, size);
        weft__pool_put(&pool, d);
        return -ENOMEM;
    }
    /* Published before these stores, but every use checks d->handle under
     * the lock, written last. */
    weft__spin_lock(&d->lock);
    __atomic_store_n(&d->size, (uint32_t)size, __ATOMIC_RELAXED);
    d->state = UNBOUND;
    d->err = 0;
    d->readers.head = d->readers.tail = NULL;
    d->value = value;
    __atomic_store_n(&d->handle, handle, __ATOMIC_RELEASE);
    weft__spin_unlock(&d->lock);
    *dv = handle;
    return 0;
}

int weft_dvar_make(weft_dvar *dv, size_t size)
{
    if (!dv)
        return weft__misuse(-EINVAL, "weft_dvar_make: dv is NULL");
    if (size == 0 || size > WEFT_DVAR_MAX)
        return weft__misuse(-EINVAL, "weft_dvar_make: size %zu outside 1..%zu", size,
                            (size_t)WEFT_DVAR_MAX);
    WEFT__FROM_ANYWHERE(dvar_make(dv, size));
}

/* ---- bind and fail ------------------------------------------------------------------------ */

/* Binds d (locked by the caller, unlocked here) to value, or to err if
 * value is NULL, and resumes every waiting reader. */
static int settle(struct weft__dvar *d, const void *value, int err)
{
    if (d->state != UNBOUND) {
        weft__spin_unlock(&d->lock);
        return -EALREADY;
    }
    if (value) {
        memcpy(d->value, value, d->size);
        d->state = BOUND;
    } else {
        d->err = err;
        d->state = FAILED;
    }
    /* Each claimed reader is blocked until resumed: its buffer is ours to
     * fill, here under the lock (after the unlock, a release could free the
     * value). */
    struct weft__chan_op *woken = NULL, *op;
    while ((op = weft__opq_claim(&d->readers))) {
        op->status = take_value(d, op->buf);
        op->next = woken;
        woken = op;
    }
    weft__spin_unlock(&d->lock);
    weft__opq_wake_list(weft__worker_current(), woken);
    return 0;
}

static int dvar_settle(const char *fn, weft_dvar dv, const void *value, size_t size, int err)
{
    struct weft__dvar *d = dvar_find(dv);
    if (!d)
        return weft__misuse(-EBADF, "%s: no dataflow variable %#llx", fn, (unsigned long long)dv);
    weft__spin_lock(&d->lock);
    if (d->handle != dv) {
        weft__spin_unlock(&d->lock);
        return weft__misuse(-EBADF, "%s: no dataflow variable %#llx", fn, (unsigned long long)dv);
    }
    if (value && size != d->size) {
        weft__spin_unlock(&d->lock);
        return wrong_size(fn, d->size, dv, size);
    }
    return settle(d, value, err);
}

int weft_dvar_bind(weft_dvar dv, const void *value, size_t size)
{
    if (!value)
        return weft__misuse(-EINVAL, "weft_dvar_bind: value is NULL");
    weft__det_point();
    WEFT__FROM_ANYWHERE(dvar_settle("weft_dvar_bind", dv, value, size, 0));
}

int weft_dvar_fail(weft_dvar dv, int err)
{
    if (err >= 0)
        return weft__misuse(-EINVAL, "weft_dvar_fail: %d is not an error code", err);
    weft__det_point();
    WEFT__FROM_ANYWHERE(dvar_settle("weft_dvar_fail", dv, NULL, 0, err));
}

/* ---- get ------------------------------------------------------------------------------------ */

/* d is unbound (locked; unlocked here): waits for a bind until deadline. */
__attribute__((noinline)) static int wait_bound(struct weft__worker *worker, struct weft__proc *self,
                                                struct weft__dvar *d, weft_dvar dv, void *value,
                                                int64_t deadline)
{
    if (deadline == 0) {
        weft__spin_unlock(&d->lock);
        return -ETIMEDOUT;
    }
    struct weft__waiter *me = self ? &self->waiter : weft__waiter_self();
    struct weft__chan_op op = {.waiter = me, .buf = value};
    op.ticket = weft__wait_open(me);
    weft__opq_push(&d->readers, &op);
    weft__spin_unlock(&d->lock);
    /* A wait the deadlock detector counts as a process waiting on a
     * channel: nothing but another process can bind it. */
    weft__wait_why(me, WEFT__WHY_CHAN_RECV, dv);
    int r = weft__wait_on(worker, me, deadline);
    if (r >= 0)
        return op.status; /* claimed by a bind or a destruction, which unlinked it */
    weft__spin_lock(&d->lock);
    if (op.linked)
        weft__opq_unlink(&d->readers, &op);
    weft__spin_unlock(&d->lock);
    return r;
}

static inline int dvar_get(struct weft__worker *worker, struct weft__proc *self, weft_dvar dv,
                           void *value, size_t size, int64_t deadline)
{
    if (self)
        weft__kill_check(self);
    struct weft__dvar *d = dvar_find(dv);
    if (weft__unlikely(!d))
        return -EBADF;
    weft__spin_lock(&d->lock);
    int err = dvar_check("weft_dvar_get", d, dv, size);
    if (weft__unlikely(err)) {
        weft__spin_unlock(&d->lock);
        return err;
    }
    if (weft__likely(d->state != UNBOUND)) {
        err = take_value(d, value);
        weft__spin_unlock(&d->lock);
        return err;
    }
    err = wait_bound(worker, self, d, dv, value, deadline);
    if (weft__unlikely(err == -ECANCELED) && self)
        weft__kill_point();
    return err;
}

int weft_dvar_get(weft_dvar dv, void *value, size_t size, int64_t deadline)
{
    if (!value)
        return weft__misuse(-EINVAL, "weft_dvar_get: value is NULL");
    weft__det_point(); /* before the worker is looked up: it may change */
    WEFT__FROM_ANYWHERE(dvar_get(worker, self, dv, value, size, deadline));
}

static int dvar_bound(weft_dvar dv)
{
    struct weft__dvar *d = dvar_find(dv);
    if (!d)
        return -EBADF;
    weft__spin_lock(&d->lock);
    int r = d->handle != dv ? -EBADF : d->state != UNBOUND;
    weft__spin_unlock(&d->lock);
    return r;
}

int weft_dvar_bound(weft_dvar dv)
{
    WEFT__FROM_ANYWHERE(dvar_bound(dv));
}

/* ---- references ------------------------------------------------------------------------------ */

static int dvar_retain(weft_dvar dv)
{
    int err = weft__handle_acquire_kept(dv, WEFT__HANDLE_DVAR);
    if (err == -EBADF)
        return weft__misuse(-EBADF, "weft_dvar_retain: no dataflow variable %#llx",
                            (unsigned long long)dv);
    return err;
}

int weft_dvar_retain(weft_dvar dv)
{
    WEFT__FROM_ANYWHERE(dvar_retain(dv));
}

static void destroy(struct weft__dvar *d)
{
    weft__spin_lock(&d->lock);
    __atomic_store_n(&d->handle, 0, __ATOMIC_RELAXED);
    struct weft__chan_op *woken = NULL;
    weft__opq_claim_all(&d->readers, &woken, -EBADF);
    unsigned char *value = d->value;
    size_t size = d->size;
    d->value = NULL;
    weft__spin_unlock(&d->lock);
    weft__opq_wake_list(weft__worker_current(), woken);
    if (value != d->inline_value)
        weft__free(value, size);
    weft__pool_put(&pool, d);
}

static int dvar_release(weft_dvar dv)
{
    weft__det_point();
    /* A reference first, so that a stale handle is refused rather than
     * releasing someone else's reference. */
    struct weft__dvar *d = weft__handle_acquire(dv, WEFT__HANDLE_DVAR);
    if (!d)
        return weft__misuse(-EBADF, "weft_dvar_release: no dataflow variable %#llx",
                            (unsigned long long)dv);
    struct weft__worker *w = weft__worker_current();
    if (weft__handle_release(w ? &w->handles : NULL, dv, 2))
        destroy(d);
    return 0;
}

int weft_dvar_release(weft_dvar dv)
{
    WEFT__FROM_ANYWHERE(dvar_release(dv));
}

/* ---- the variable as a case of select --------------------------------------------------------- */

static int case_find(const weft_case *c, void **obj)
{
    struct weft__dvar *d = dvar_find(c->handle);
    if (!d)
        return -EBADF;
    *obj = d;
    /* The size, as far as it can be seen without the lock. */
    uint32_t holds = __atomic_load_n(&d->size, __ATOMIC_RELAXED);
    if (__atomic_load_n(&d->handle, __ATOMIC_ACQUIRE) == c->handle && holds != c->size)
        return wrong_size("weft_select", holds, c->handle, c->size);
    return 0;
}

static weft__spinlock *case_lock(void *obj)
{
    return &((struct weft__dvar *)obj)->lock;
}

static int case_check(void *obj, const weft_case *c)
{
    return dvar_check("weft_select", obj, c->handle, c->size);
}

static bool case_try(void *obj, weft_case *c, weft_pid me, int *status, struct weft__handoff *h)
{
    struct weft__dvar *d = obj;
    if (d->state == UNBOUND)
        return false;
    *status = take_value(d, c->buf);
    return true;
}

static void case_arm(void *obj, weft_case *c, struct weft__chan_op *op)
{
    weft__opq_push(&((struct weft__dvar *)obj)->readers, op);
}

static void case_disarm(void *obj, weft_case *c, struct weft__chan_op *op)
{
    if (op->linked)
        weft__opq_unlink(&((struct weft__dvar *)obj)->readers, op);
}

/* A bind fills the buffer of the op it claims: no recheck. */
const struct weft__case_kind weft__dvar_case_kind = {case_find, case_lock, case_check, case_try,
                                                     case_arm, case_disarm, false};
