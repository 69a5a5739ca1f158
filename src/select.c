/* select.c: one wait over many cases, fair or by priority.
 *
 * Cases are reached through a table of case kinds, so that later layers
 * (the mailbox, timers, file descriptors, process exits) add kinds without
 * touching the algorithm. A kind's objects must be type-stable (see chan.c)
 * and guarded by a spinlock.
 *
 * The algorithm is Go's, with a lock-light first pass:
 *  1. In policy order (a random permutation of the enabled cases, or array
 *     order), lock each object alone and complete the first case that can.
 *  2. Otherwise lock every object at once, in address order (so two selects
 *     never deadlock), look once more, then open one wait, queue an op on
 *     every case and unlock. Nothing can complete a case between the look
 *     and the queueing, so the selecting process never has to claim its own
 *     wait, and never meets its own ops (a send and a receive on one channel
 *     in one select do not match each other).
 *  3. Whoever completes one op claims the wait; exactly one claim succeeds
 *     (a completion, the deadline or the shutdown). The waker then removes
 *     the remaining ops, each under its object's lock.
 */
#include <stdlib.h>
#include <string.h>

#include "dataflow.h"
#include "io.h"

#define case_kind weft__case_kind

/* ---- channel cases ---------------------------------------------------------------- */

static int chan_find(const weft_case *c, void **obj)
{
    struct weft__chan *ch = weft__chan_find(c->handle);
    if (!ch)
        return -EBADF;
    *obj = ch;
    /* The size, as far as it can be seen without the lock. */
    if (__atomic_load_n(&ch->handle, __ATOMIC_ACQUIRE) == c->handle &&
        __atomic_load_n(&ch->elem_size, __ATOMIC_RELAXED) != c->size)
        return weft__chan_wrong_size(ch, c->handle, c->size);
    return 0;
}

static weft__spinlock *chan_lock(void *obj)
{
    return &((struct weft__chan *)obj)->lock;
}

static int chan_check(void *obj, const weft_case *c)
{
    return weft__chan_check(obj, c->handle, c->size);
}

static bool send_try(void *obj, weft_case *c, weft_pid me, int *status, struct weft__handoff *h)
{
    return weft__chan_try_send(obj, c->buf, me, status, h);
}

static bool recv_try(void *obj, weft_case *c, weft_pid me, int *status, struct weft__handoff *h)
{
    return weft__chan_try_recv(obj, c->buf, me, status, h);
}

static void send_arm(void *obj, weft_case *c, struct weft__chan_op *op)
{
    weft__chan_arm(obj, true, op);
}

static void recv_arm(void *obj, weft_case *c, struct weft__chan_op *op)
{
    weft__chan_arm(obj, false, op);
}

static void send_disarm(void *obj, weft_case *c, struct weft__chan_op *op)
{
    weft__chan_disarm(obj, true, op);
}

static void recv_disarm(void *obj, weft_case *c, struct weft__chan_op *op)
{
    weft__chan_disarm(obj, false, op);
}

enum { KINDS = WEFT_CASE_FD + 1 };

static const struct case_kind chan_send_kind = {chan_find, chan_lock, chan_check, send_try,
                                                send_arm, send_disarm, false};
static const struct case_kind chan_recv_kind = {chan_find, chan_lock, chan_check, recv_try,
                                                recv_arm, recv_disarm, false};

static const struct case_kind *const kinds[KINDS] = {
    [WEFT_CASE_SEND] = &chan_send_kind,
    [WEFT_CASE_RECV] = &chan_recv_kind,
    [WEFT_CASE_MSG] = &weft__msg_case_kind,
    [WEFT_CASE_DVAR] = &weft__dvar_case_kind,
    [WEFT_CASE_STREAM] = &weft__stream_case_kind,
    [WEFT_CASE_FD] = &weft__fd_case_kind,
};

/* wait_all's answer when a recheck case was woken but found nothing. */
enum { RETRY = -1000 };

/* ---- the algorithm -------------------------------------------------------------------- */

enum { STACK_CASES = 8 };

/* Per enabled case: its object and its op while queued. */
struct armed {
    void *obj;
    weft__spinlock *lock;
    struct weft__chan_op op;
};

struct selection {
    weft_case *cases;
    weft_pid me;         /* the selecting process (0: a thread) */
    uint32_t m;          /* enabled cases */
    uint32_t *order;     /* [m] case indices, in the order to try them */
    uint32_t *locks;     /* [m] positions in order, sorted by lock address */
    struct armed *armed; /* [m] by position in order */
};

static const struct case_kind *kind_of(const weft_case *c)
{
    return kinds[c->kind];
}

static void shuffle(uint32_t *order, uint32_t m)
{
    for (uint32_t i = m; i > 1; i--) {
        uint32_t j = (uint32_t)(weft__rand() % i);
        uint32_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
}

/* Finds every case's object first, so that a bad case is reported even
 * when another case is ready. */
static int find_all(struct selection *s)
{
    for (uint32_t k = 0; k < s->m; k++) {
        weft_case *c = &s->cases[s->order[k]];
        const struct case_kind *kind = kind_of(c);
        struct armed *a = &s->armed[k];
        int err = kind->find(c, &a->obj);
        if (err)
            return err;
        a->lock = kind->lock(a->obj);
    }
    return 0;
}

/* Pass 1: each object alone. Returns the index of the case completed, -1 if
 * none could be, or an error. */
static int try_each(struct selection *s)
{
    int err = find_all(s);
    if (err)
        return err;
    for (uint32_t k = 0; k < s->m; k++) {
        weft_case *c = &s->cases[s->order[k]];
        const struct case_kind *kind = kind_of(c);
        struct armed *a = &s->armed[k];
        weft__spin_lock(a->lock);
        err = kind->check(a->obj, c);
        struct weft__handoff h = {0};
        if (!err && kind->try(a->obj, c, s->me, &c->result, &h)) {
            weft__spin_unlock(a->lock);
            weft__handoff_finish(&h);
            return (int)s->order[k];
        }
        weft__spin_unlock(a->lock);
        if (err)
            return err;
    }
    return -1;
}

static int by_lock_address(const void *x, const void *y, const struct armed *armed)
{
    uintptr_t a = (uintptr_t)armed[*(const uint32_t *)x].lock;
    uintptr_t b = (uintptr_t)armed[*(const uint32_t *)y].lock;
    return a < b ? -1 : a > b;
}

static void sort_locks(struct selection *s)
{
    /* Insertion sort: selects are small, and it needs no qsort_r. */
    for (uint32_t k = 0; k < s->m; k++) {
        uint32_t v = s->locks[k] = k, j = k;
        while (j > 0 && by_lock_address(&s->locks[j - 1], &v, s->armed) > 0) {
            s->locks[j] = s->locks[j - 1];
            j--;
        }
        s->locks[j] = v;
    }
}

static void lock_all(struct selection *s)
{
    weft__spinlock *last = NULL;
    for (uint32_t k = 0; k < s->m; k++) {
        weft__spinlock *l = s->armed[s->locks[k]].lock;
        if (l != last)
            weft__spin_lock(l);
        last = l;
    }
}

static void unlock_all(struct selection *s)
{
    weft__spinlock *last = NULL;
    for (uint32_t k = 0; k < s->m; k++) {
        weft__spinlock *l = s->armed[s->locks[k]].lock;
        if (l != last)
            weft__spin_unlock(l);
        last = l;
    }
}

/* Passes 2 and 3. */
static int wait_all(struct selection *s, int64_t deadline)
{
    struct weft__waiter *me = weft__waiter_self();
    sort_locks(s);
    lock_all(s);
    for (uint32_t k = 0; k < s->m; k++) {
        weft_case *c = &s->cases[s->order[k]];
        int err = kind_of(c)->check(s->armed[k].obj, c);
        if (err) {
            unlock_all(s);
            return err;
        }
    }
    for (uint32_t k = 0; k < s->m; k++) {
        weft_case *c = &s->cases[s->order[k]];
        struct weft__handoff h = {0};
        if (kind_of(c)->try(s->armed[k].obj, c, s->me, &c->result, &h)) {
            unlock_all(s);
            weft__handoff_finish(&h);
            return (int)s->order[k];
        }
    }
    unsigned ticket = weft__wait_open(me);
    for (uint32_t k = 0; k < s->m; k++) {
        weft_case *c = &s->cases[s->order[k]];
        struct armed *a = &s->armed[k];
        a->op = (struct weft__chan_op){.waiter = me, .ticket = ticket, .index = (int)s->order[k],
                                       .buf = c->buf};
        kind_of(c)->arm(a->obj, c, &a->op);
    }
    unlock_all(s);

    atomic_store_explicit(&me->why_cases, s->cases, memory_order_relaxed);
    atomic_store_explicit(&me->why_ncases, s->m, memory_order_relaxed);
    weft__wait_why(me, WEFT__WHY_SELECT, 0);
    int r = weft__wait(me, deadline);

    for (uint32_t k = 0; k < s->m; k++) {
        weft_case *c = &s->cases[s->order[k]];
        struct armed *a = &s->armed[k];
        weft__spin_lock(a->lock);
        kind_of(c)->disarm(a->obj, c, &a->op);
        weft__spin_unlock(a->lock);
        if ((int)s->order[k] == r)
            c->result = a->op.status;
    }
    if (r >= 0 && kind_of(&s->cases[r])->recheck && s->cases[r].result >= 0) {
        /* Something arrived for that case: take it, or wait again. An
         * error (a descriptor let go of: its number may be another's by
         * now) is the case's result as it is. */
        uint32_t k = 0;
        while (s->order[k] != (uint32_t)r)
            k++;
        struct armed *a = &s->armed[k];
        struct weft__handoff h = {0};
        weft__spin_lock(a->lock);
        bool done = kind_of(&s->cases[r])->try(a->obj, &s->cases[r], s->me, &s->cases[r].result, &h);
        weft__spin_unlock(a->lock);
        weft__handoff_finish(&h);
        if (!done)
            return RETRY;
    }
    return r;
}

/* A select with every case disabled: a sleep until the deadline. */
static int wait_none(int64_t deadline)
{
    if (deadline == 0)
        return -ETIMEDOUT;
    struct weft__waiter *me = weft__waiter_self();
    weft__wait_open(me);
    atomic_store_explicit(&me->why_ncases, 0, memory_order_relaxed);
    weft__wait_why(me, WEFT__WHY_SELECT, 0);
    return weft__wait(me, deadline);
}

static int select_cases(weft_case *cases, size_t n, int policy, int64_t deadline)
{
    weft__det_point();
    uint32_t stack_order[STACK_CASES], stack_locks[STACK_CASES];
    struct armed stack_armed[STACK_CASES];
    struct selection s = {.cases = cases, .me = weft_self(), .order = stack_order,
                          .locks = stack_locks, .armed = stack_armed};
    void *mem = NULL;
    size_t bytes = n * (2 * sizeof(uint32_t) + sizeof(struct armed));
    if (n > STACK_CASES) {
        if (!(mem = weft__alloc(bytes)))
            return -ENOMEM;
        s.armed = mem;
        s.order = (uint32_t *)(s.armed + n);
        s.locks = s.order + n;
    }
    for (uint32_t i = 0; i < n; i++)
        if (!cases[i].disabled)
            s.order[s.m++] = i;
    int r;
    if (s.m == 0) {
        r = wait_none(deadline);
    } else {
        if (policy == WEFT_SELECT_FAIR)
            shuffle(s.order, s.m);
        do {
            r = try_each(&s);
            if (r == -1)
                r = deadline == 0 ? -ETIMEDOUT : wait_all(&s, deadline);
        } while (r == RETRY);
    }
    if (mem)
        weft__free(mem, bytes);
    return r;
}

int weft_select(weft_case *cases, size_t n, int policy, int64_t deadline)
{
    if (!cases || n == 0 || n > WEFT_SELECT_MAX)
        return weft__misuse(-EINVAL, "weft_select: %zu cases at %p (1..%d needed)", n,
                            (void *)cases, WEFT_SELECT_MAX);
    if (policy != WEFT_SELECT_FAIR && policy != WEFT_SELECT_PRIORITY)
        return weft__misuse(-EINVAL, "weft_select: unknown policy %d", policy);
    for (size_t i = 0; i < n; i++) {
        if (cases[i].disabled)
            continue;
        if (cases[i].kind <= 0 || cases[i].kind >= KINDS || !kinds[cases[i].kind])
            return weft__misuse(-EINVAL, "weft_select: case %zu has unknown kind %d", i,
                                cases[i].kind);
        if (!cases[i].buf && cases[i].kind != WEFT_CASE_FD)
            return weft__misuse(-EINVAL, "weft_select: case %zu has a NULL buffer", i);
        /* Checked here, not by the case's find: -EPERM is -1, which the
         * passes below read as "no case ready". */
        if (cases[i].kind == WEFT_CASE_MSG) {
            struct weft__proc *self = weft__proc_current();
            if (!self || self->acting)
                return weft__misuse(-EPERM, "weft_select: case %zu: a mailbox case needs a process",
                                    i);
        }
    }
    if (weft__in_proc()) {
        weft__kill_check(weft__proc_current());
        int r = select_cases(cases, n, policy, deadline);
        if (r == -ECANCELED)
            weft__kill_point();
        return r;
    }
    int err = weft__outside_enter(true);
    if (err)
        return err;
    err = select_cases(cases, n, policy, deadline);
    weft__outside_leave();
    return err;
}
