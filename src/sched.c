/* sched.c: workers, run queues, switching, stealing and parking.
 *
 * Each worker is an OS thread with a stealable FIFO run queue, a LIFO
 * run-next slot (a process woken by the running one runs right after it, so
 * message pairs stay on one core), an inbox for processes pinned to it, and
 * its own timer heap. Processes made runnable from outside the runtime go to
 * the global injection queue.
 *
 * Switching. A process that blocks, yields or ends picks the next process
 * from its worker's local queues and switches to it directly; only when there
 * is none does it switch to the worker's scheduler context (the OS thread's
 * own stack), which looks further: due timers (its own and other workers'),
 * descriptor events (the io layer's poll hook, while descriptors are waited
 * on), the global queue, other workers' queues, then spins a bounded time,
 * then parks: on a futex, or, for one parked worker at a time while
 * descriptors are waited on, in the poller. What must happen to the context
 * just left (requeue it, let it go, free its stack) is done by the next
 * context right after the switch, in finish_switch, once the old registers
 * are saved.
 *
 * A process may be made runnable by a waker before it has finished switching
 * out. on_cpu covers that window: the worker that picks it waits until the
 * old worker has cleared on_cpu in finish_switch.
 *
 * Parking without lost wake-ups. A worker about to park marks itself idle
 * under idle_lock, issues a full fence, then looks once more at every queue.
 * Whoever adds work that only another worker can take (global queue, a pinned
 * inbox) fences, then looks at the idle count. Work added to a worker's own
 * queue never needs another worker: waking an idle one then only adds
 * parallelism, and the check is a plain load.
 */
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "internal.h"

#ifdef WEFT__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef WEFT__TSAN
#include <sanitizer/tsan_interface.h>
#endif

enum {
    SPIN_ROUNDS = 32,      /* full searches before parking... */
    SPIN_PAUSES = 64,      /* ...with this many pause instructions between */
    PERIODIC_EVERY = 8,    /* the pinned inbox first, every this many picks */
    GLOBAL_EVERY = 64,     /* the global queue first, every this many picks; */
    TIMERS_PHASE = 32,     /* the clock, half-way between */
    RUNNEXT_STREAK = 64,   /* picks from run-next in a row before the run queue's turn */
    FRONT_RUN_MAX = 4096,  /* picks from run-next and the queue's front before its back's turn */
    PROC_STACK_OFFSET = WEFT__PAGE /* usable stack starts above the guard page */
};

/* A stalled runtime that an outside thread may still wake is looked at
 * again this often (ns), for the deadlock detector. */
#define STALL_RECHECK ((int64_t)10 * 1000 * 1000)
/* A parked worker looks again after this long (ns) while another is busy,
 * twice as long after each look that found nothing, up to the maximum. */
#define BUSY_RECHECK ((int64_t)100 * 1000)
/* A deterministic runtime with nothing to run looks at the poller this often (ns). */
#define DET_POLL_EVERY ((int64_t)1000 * 1000)
#define BUSY_RECHECK_MAX ((int64_t)128 * 1000 * 1000)

struct weft__runtime weft__rt = {
    .default_stack = WEFT_STACK_DEFAULT,
    .default_stack_class = 2, /* WEFT_STACK_DEFAULT is WEFT_STACK_MIN << 2 */
    .global_lock = PTHREAD_MUTEX_INITIALIZER,
    .idle_lock = PTHREAD_MUTEX_INITIALIZER,
};

static _Thread_local struct weft__worker *tls_worker;

#if defined(__clang__)
__attribute__((noinline))
#else
__attribute__((noinline, noipa))
#endif
struct weft__worker *weft__worker_current(void)
{
    return tls_worker;
}

/* ---- queues ------------------------------------------------------------------ */

static void plist_push(struct weft__plist *l, struct weft__proc *p)
{
    p->next = NULL;
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
}

static struct weft__proc *plist_pop(struct weft__plist *l)
{
    struct weft__proc *p = l->head;
    if (p) {
        l->head = p->next;
        if (!l->head)
            l->tail = NULL;
    }
    return p;
}

static void global_push(struct weft__proc **batch, uint32_t n)
{
    pthread_mutex_lock(&weft__rt.global_lock);
    for (uint32_t i = 0; i < n; i++)
        plist_push(&weft__rt.global, batch[i]);
    atomic_fetch_add(&weft__rt.global_len, n);
    pthread_mutex_unlock(&weft__rt.global_lock);
}

/* Takes a fair share of the global queue: one to run, the rest into w's own
 * queue as far as it has room. */
static struct weft__proc *global_pop(struct weft__worker *w)
{
    if (atomic_load_explicit(&weft__rt.global_len, memory_order_relaxed) == 0)
        return NULL;
    pthread_mutex_lock(&weft__rt.global_lock);
    uint32_t len = atomic_load_explicit(&weft__rt.global_len, memory_order_relaxed);
    uint32_t n = len / weft__rt.nworkers + 1;
    if (n > len)
        n = len;
    uint32_t room = WEFT__RUNQ_SIZE - weft__runq_len(&w->runq) + 1;
    if (n > room)
        n = room;
    if (n > WEFT__RUNQ_SIZE / 2)
        n = WEFT__RUNQ_SIZE / 2;
    struct weft__proc *run = n ? plist_pop(&weft__rt.global) : NULL;
    for (uint32_t i = 1; i < n; i++) {
        bool pushed = weft__runq_push(&w->runq, plist_pop(&weft__rt.global));
        weft__assert(pushed);
    }
    atomic_fetch_sub(&weft__rt.global_len, n);
    pthread_mutex_unlock(&weft__rt.global_lock);
    return run;
}

/* The run queue is full: moves half of it, and p, to the global queue. */
__attribute__((noinline)) static void spill(struct weft__worker *w, struct weft__proc *p)
{
    struct weft__proc *batch[WEFT__RUNQ_SIZE / 2 + 1];
    while (!weft__runq_push(&w->runq, p)) {
        uint32_t n = weft__runq_spill(&w->runq, p, batch);
        if (n) {
            global_push(batch, n);
            return;
        }
    }
}

static inline void local_push(struct weft__worker *w, struct weft__proc *p)
{
    if (weft__unlikely(!weft__runq_push(&w->runq, p)))
        spill(w, p);
}

static void inbox_push(struct weft__worker *w, struct weft__proc *p)
{
    weft__spin_lock(&w->inbox_lock);
    plist_push(&w->inbox, p);
    atomic_fetch_add(&w->inbox_len, 1);
    weft__spin_unlock(&w->inbox_lock);
}

static struct weft__proc *inbox_pop(struct weft__worker *w)
{
    if (atomic_load_explicit(&w->inbox_len, memory_order_relaxed) == 0)
        return NULL;
    weft__spin_lock(&w->inbox_lock);
    struct weft__proc *p = plist_pop(&w->inbox);
    if (p)
        atomic_fetch_sub(&w->inbox_len, 1);
    weft__spin_unlock(&w->inbox_lock);
    return p;
}

/* ---- parking ----------------------------------------------------------------- */

/* next_wake = the earliest timeout of the parked workers. Called with
 * idle_lock held, whenever the set of parked workers changes. */
static void refresh_next_wake(void)
{
    int64_t m = INT64_MAX;
    for (unsigned i = 0; i < weft__rt.nworkers; i++) {
        struct weft__worker *v = &weft__rt.workers[i];
        if (atomic_load_explicit(&v->parked, memory_order_relaxed) && v->park_until < m)
            m = v->park_until;
    }
    atomic_store(&weft__rt.next_wake, m);
}

/* Wakes w if it is parked. Called with idle_lock held. */
static bool unpark_locked(struct weft__worker *w)
{
    if (!atomic_load_explicit(&w->parked, memory_order_relaxed))
        return false;
    atomic_store_explicit(&w->parked, false, memory_order_relaxed);
    refresh_next_wake();
    atomic_fetch_sub(&weft__rt.nidle, 1);
    atomic_fetch_add(&weft__rt.nspinning, 1); /* it wakes up looking for work */
    atomic_store_explicit(&w->park_futex, 1, memory_order_release);
    if (w->polling)
        weft__rt.poll_interrupt();
    else
        weft__futex_wake(&w->park_futex, 1);
    return true;
}

static void unpark(struct weft__worker *w)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&w->parked, memory_order_relaxed))
        return;
    pthread_mutex_lock(&weft__rt.idle_lock);
    unpark_locked(w);
    pthread_mutex_unlock(&weft__rt.idle_lock);
}

__attribute__((noinline)) static void unpark_one(void)
{
    pthread_mutex_lock(&weft__rt.idle_lock);
    unsigned n = weft__rt.nworkers;
    unsigned start = (unsigned)weft_now() % n;
    for (unsigned i = 0; i < n; i++)
        if (unpark_locked(&weft__rt.workers[(start + i) % n]))
            break;
    pthread_mutex_unlock(&weft__rt.idle_lock);
}

/* Work only this worker's queues hold: waking an idle worker adds
 * parallelism, and missing one costs none (see the top of the file). */
static inline void notify_local(void)
{
    if (weft__unlikely(atomic_load_explicit(&weft__rt.nidle, memory_order_relaxed) != 0) &&
        atomic_load_explicit(&weft__rt.nspinning, memory_order_relaxed) == 0)
        unpark_one();
}

void weft__sched_notify(bool fenced)
{
    if (fenced)
        atomic_thread_fence(memory_order_seq_cst);
    notify_local();
}

void weft__sched_poll_kick(void)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&weft__rt.nidle, memory_order_relaxed) == weft__rt.nworkers &&
        !atomic_load_explicit(&weft__rt.poller_busy, memory_order_relaxed))
        unpark_one();
}

/* The timer is in its heap (published before the fence); a parking worker
 * marks itself parked, fences, then reads the heaps once more: either it
 * sees the timer or this sees its timeout. */
void weft__sched_timer_armed(int64_t when)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (when < atomic_load_explicit(&weft__rt.next_wake, memory_order_relaxed) &&
        atomic_load_explicit(&weft__rt.nidle, memory_order_relaxed) != 0 &&
        atomic_load_explicit(&weft__rt.nspinning, memory_order_relaxed) == 0)
        unpark_one();
}

void weft__sched_ready_on(struct weft__proc *p, int worker)
{
    if (weft__unlikely(atomic_load_explicit(&weft__det_on, memory_order_relaxed))) {
        weft__sched_ready_from(weft__worker_current(), p, false);
        return;
    }
    struct weft__worker *owner = &weft__rt.workers[worker];
    inbox_push(owner, p);
    if (owner != weft__worker_current())
        unpark(owner);
}

/* Deterministic mode: the det loop's thread (w set) hands p to det.c; an
 * outside thread queues it globally for the loop to take. */
__attribute__((noinline)) static void det_ready_from(struct weft__worker *w, struct weft__proc *p)
{
    if (w) {
        weft__det_ready(p);
    } else {
        global_push(&p, 1);
        weft__sched_notify(true);
    }
}

/* Makes p runnable on w, the calling thread's worker (NULL outside). */
void weft__sched_ready_from(struct weft__worker *w, struct weft__proc *p, bool lifo)
{
    if (weft__unlikely(atomic_load_explicit(&weft__det_on, memory_order_relaxed))) {
        det_ready_from(w, p);
        return;
    }
    if (p->worker >= 0) {
        weft__sched_ready_on(p, p->worker);
        return;
    }
    if (!w) {
        global_push(&p, 1);
        weft__sched_notify(true);
        return;
    }
    if (lifo) {
        /* Only the owner makes run-next non-NULL (thieves only empty it), so
         * an empty slot can be filled with a plain store. */
        if (!atomic_load_explicit(&w->runnext, memory_order_relaxed)) {
            atomic_store_explicit(&w->runnext, p, memory_order_release);
            return; /* runs when the waker blocks; no other worker needed */
        }
        p = atomic_exchange_explicit(&w->runnext, p, memory_order_acq_rel);
        if (!p)
            return;
        /* The one displaced from run-next is the next most recent: it runs
         * before older work (a spawn tree unwinds depth-first, so its
         * memory stays bounded by its depth). */
        if (weft__runq_push_front(&w->runq, p)) {
            w->front_pending++;
            notify_local();
            return;
        }
    }
    local_push(w, p);
    notify_local();
}

void weft__sched_ready(struct weft__proc *p, bool lifo)
{
    weft__sched_ready_from(weft__worker_current(), p, lifo);
}

/* ---- switching --------------------------------------------------------------- */

static void proc_start(void *arg);

/* Gives p its stack when it first runs. false: none could be had. */
static bool give_stack(struct weft__worker *w, struct weft__proc *p)
{
    char *lo = weft__stack_get(&w->stacks, p->stack_class);
    if (!lo)
        return false;
    size_t size = weft__stack_class_size(p->stack_class) - PROC_STACK_OFFSET;
    p->stack_lo = lo;
#ifdef WEFT__ASAN
    __asan_unpoison_memory_region(lo + PROC_STACK_OFFSET, size);
    p->asan_fake_stack = NULL;
#endif
#ifdef WEFT__TSAN
    p->tsan_fiber = __tsan_create_fiber(0);
#endif
    weft__ctx_make(&p->ctx, lo + PROC_STACK_OFFSET, size, proc_start, p);
    return true;
}

static void count_exit(struct weft__worker *w)
{
    atomic_store_explicit(&w->exited, atomic_load_explicit(&w->exited, memory_order_relaxed) + 1,
                          memory_order_release);
    if (atomic_load_explicit(&weft__rt.state, memory_order_relaxed) != WEFT__RT_RUNNING) {
        atomic_fetch_add(&weft__rt.stop_futex, 1);
        weft__futex_wake(&weft__rt.stop_futex, INT_MAX);
    }
}

/* Done by the context that was switched to, for the one switched from. */
static void finish_switch(struct weft__worker *w)
{
    struct weft__proc *p = w->prev;
    if (!p)
        return;
    w->prev = NULL;
    switch (w->after) {
    case WEFT__AFTER_YIELD:
        atomic_store_explicit(&p->on_cpu, 0, memory_order_release);
        if (weft__unlikely(atomic_load_explicit(&weft__det_on, memory_order_relaxed))) {
            weft__det_ready(p);
        } else if (p->worker >= 0) {
            inbox_push(w, p);
        } else {
            local_push(w, p);
            notify_local(); /* an idle worker may take it */
        }
        break;
    case WEFT__AFTER_BLOCK:
        atomic_store_explicit(&p->on_cpu, 0, memory_order_release);
        break;
    case WEFT__AFTER_EXIT:
#ifdef WEFT__TSAN
        __tsan_destroy_fiber(p->tsan_fiber);
#endif
        weft__stack_put(&w->stacks, p->stack_class, p->stack_lo);
        p->stack_lo = NULL;
        count_exit(w);
        weft__rt.exit_hook(w, p);
        break;
    case WEFT__AFTER_SPAWN:
        atomic_store_explicit(&p->on_cpu, 0, memory_order_release);
        weft__sched_ready_from(w, p, true);
        /* The parent waits in run-next while its child runs: if the child
         * computes for long, an idle worker must be awake to steal it. */
        notify_local();
        break;
    case WEFT__AFTER_NONE:
        break;
    }
}

/* Switches from w's current context (a process, or the scheduler when
 * current is NULL) to next (NULL: the scheduler). Returns when the old
 * context is resumed, possibly on another worker. */
static void switch_to(struct weft__worker *w, struct weft__proc *next, enum weft__after after)
{
    struct weft__proc *cur = w->current;
    if (weft__unlikely(next == cur && cur))
        return; /* woken (say by its own timer, fired while picking) before it left */
    struct weft__ctx *from = cur ? &cur->ctx : &w->sched_ctx;
    struct weft__ctx *to = &w->sched_ctx;
    if (next && atomic_load_explicit(&next->on_cpu, memory_order_acquire)) {
        /* next is still leaving another worker, which may itself be waiting
         * for cur to leave this one: wait for it on the scheduler's stack,
         * once cur is off (worker_main runs the handoff). */
        if (cur) {
            w->handoff = next;
            next = NULL;
        } else {
            while (atomic_load_explicit(&next->on_cpu, memory_order_acquire))
                weft__cpu_relax();
        }
    }
    if (next) {
        atomic_store_explicit(&next->on_cpu, 1, memory_order_relaxed);
        to = &next->ctx;
    }
    w->prev = cur;
    w->after = after;
    w->current = next;
#ifdef WEFT__ASAN
    void **fake = after == WEFT__AFTER_EXIT ? NULL : cur ? &cur->asan_fake_stack : &w->asan_fake_stack;
    if (next)
        __sanitizer_start_switch_fiber(fake, (char *)next->stack_lo + PROC_STACK_OFFSET,
                                       weft__stack_class_size(next->stack_class) - PROC_STACK_OFFSET);
    else
        __sanitizer_start_switch_fiber(fake, w->thread_stack_lo, w->thread_stack_size);
#endif
#ifdef WEFT__TSAN
    __tsan_switch_to_fiber(next ? next->tsan_fiber : w->tsan_fiber, 0);
#endif
    weft__ctx_switch(from, to);
    w = weft__worker_current();
#ifdef WEFT__ASAN
    __sanitizer_finish_switch_fiber(cur ? cur->asan_fake_stack : w->asan_fake_stack, NULL, NULL);
#endif
    finish_switch(w);
}

static void proc_start(void *arg)
{
    struct weft__proc *p = arg;
    struct weft__worker *w = weft__worker_current();
#ifdef WEFT__ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    finish_switch(w);
    weft__proc_main(p);
}

/* ---- picking ----------------------------------------------------------------- */

static int run_due_timers(struct weft__worker *w, bool all);

/* Ends p without running it: no memory for its stack (join says -ENOMEM). */
static void end_unstarted(struct weft__worker *w, struct weft__proc *p)
{
    p->failure = -ENOMEM;
    weft__rt.unstarted_hook(w, p);
    count_exit(w);
    weft__rt.exit_hook(w, p);
}

/* First run of p: its stack, or its end if none can be had. */
__attribute__((noinline)) static struct weft__proc *first_run(struct weft__worker *w,
                                                              struct weft__proc *p)
{
    if (give_stack(w, p))
        return p;
    end_unstarted(w, p);
    return NULL;
}

/* p, ready to be switched to (with a stack), or NULL if it had to end. */
static inline struct weft__proc *with_stack(struct weft__worker *w, struct weft__proc *p)
{
    return p && !p->stack_lo ? first_run(w, p) : p;
}

/* Every source goes first now and then, so that none starves the others:
 * pinned processes that keep yielding (the inbox), the global queue; due
 * timers are fired as often. tick is a multiple of PERIODIC_EVERY. */
__attribute__((noinline)) static struct weft__proc *pick_periodic(struct weft__worker *w,
                                                                  unsigned tick)
{
    struct weft__proc *p = inbox_pop(w);
    unsigned phase = tick % GLOBAL_EVERY;
    if (!p && phase == 0)
        p = global_pop(w);
    if (!p && phase == TIMERS_PHASE) {
        if (weft__timer_next(&w->timers) != INT64_MAX)
            run_due_timers(w, false);
        if (atomic_load_explicit(&weft__rt.poll_waiters, memory_order_relaxed) > 0)
            weft__rt.poll_periodic(w);
    }
    return p;
}

/* The run queue's head, counting picks of processes that did not come in
 * at its back. Processes that keep waking and displacing one another (a
 * pipeline of three or more on one worker) run from run-next and the front
 * of the queue only, and would starve its back: after FRONT_RUN_MAX such
 * picks in a row, the head goes to the back and the one after it runs.
 * Rare enough that a spawn tree still unfolds depth first. front_pending
 * counts the front pushes not yet popped (thieves, who take from the front
 * too, can leave it high: then a rotation comes early, which is harmless);
 * it lives in the worker, not in the process, so that a wake writes no
 * line of the process it would not write anyway. */
static struct weft__proc *pop_front_run(struct weft__worker *w)
{
    struct weft__proc *p = weft__runq_pop(&w->runq);
    if (!p || w->front_pending == 0) {
        w->front_pending = 0;
        w->front_run = 0;
        return p;
    }
    w->front_pending--;
    if (weft__unlikely(++w->front_run >= FRONT_RUN_MAX)) {
        w->front_run = 0;
        struct weft__proc *second = weft__runq_pop(&w->runq);
        if (second) {
            local_push(w, p);
            p = second;
            if (w->front_pending)
                w->front_pending--;
        }
    }
    return p;
}

/* The next process from w's own queues, without blocking. */
static struct weft__proc *pick_local(struct weft__worker *w)
{
    unsigned tick = atomic_load_explicit(&w->tick, memory_order_relaxed) + 1;
    atomic_store_explicit(&w->tick, tick, memory_order_relaxed);
    for (;;) {
        struct weft__proc *p = NULL;
        if (weft__unlikely(tick % PERIODIC_EVERY == 0))
            p = pick_periodic(w, tick);
        /* A message pair waking each other through run-next gives way to
         * the run queue after a streak of RUNNEXT_STREAK picks. */
        if (!p && weft__unlikely(w->runnext_streak >= RUNNEXT_STREAK)) {
            w->runnext_streak = 0;
            p = pop_front_run(w);
        }
        if (!p && atomic_load_explicit(&w->runnext, memory_order_relaxed) &&
            (p = atomic_exchange_explicit(&w->runnext, NULL, memory_order_acquire))) {
            w->runnext_streak++;
            w->front_run++;
        }
        if (!p && (p = pop_front_run(w)))
            w->runnext_streak = 0;
        if (!p)
            p = inbox_pop(w);
        if (!p || (p = with_stack(w, p)))
            return p;
    }
}

/* Fires due timers of w, and with all those of every other worker too (an
 * idle worker serves the timers of busy ones). Returns how many fired. */
static int run_due_timers(struct weft__worker *w, bool all)
{
    int64_t now = weft_now();
    int fired = weft__timer_run(&w->timers, now);
    for (unsigned i = 0; all && i < weft__rt.nworkers; i++)
        if (&weft__rt.workers[i] != w)
            fired += weft__timer_run(&weft__rt.workers[i].timers, now);
    return fired;
}

/* Steals from the other workers, starting at a random one. A victim's
 * run-next process is taken only once it has waited there across two looks
 * while the victim made no scheduling decision (the victim is stuck on a long
 * computation), so that message pairs are not split between cores. */
static struct weft__proc *steal(struct weft__worker *w)
{
    unsigned n = weft__rt.nworkers;
    unsigned start = (unsigned)(weft__rand_next(&w->rng) % n);
    for (unsigned i = 0; i < n; i++) {
        struct weft__worker *v = &weft__rt.workers[(start + i) % n];
        if (v == w)
            continue;
        struct weft__proc *p = weft__runq_steal(&w->runq, &v->runq);
        if (p)
            return p;
        struct weft__proc *rn = atomic_load_explicit(&v->runnext, memory_order_acquire);
        unsigned vtick = atomic_load_explicit(&v->tick, memory_order_relaxed);
        if (!rn)
            continue;
        if (w->steal_watch == rn && w->steal_watch_tick == vtick &&
            atomic_compare_exchange_strong(&v->runnext, &rn, NULL)) {
            w->steal_watch = NULL;
            return rn;
        }
        w->steal_watch = rn;
        w->steal_watch_tick = vtick;
    }
    return NULL;
}

static bool work_visible(struct weft__worker *w)
{
    if (atomic_load(&weft__rt.global_len) || atomic_load(&w->inbox_len) ||
        atomic_load(&weft__rt.workers_exit))
        return true;
    int64_t now = weft_now();
    for (unsigned i = 0; i < weft__rt.nworkers; i++) {
        struct weft__worker *v = &weft__rt.workers[i];
        if (weft__runq_len(&v->runq) || weft__timer_next(&v->timers) <= now)
            return true;
    }
    return false;
}

static void stop_spinning(struct weft__worker *w)
{
    if (w->spinning) {
        w->spinning = false;
        atomic_fetch_sub(&weft__rt.nspinning, 1);
    }
}

static int64_t earliest_timer(void)
{
    int64_t deadline = INT64_MAX;
    for (unsigned i = 0; i < weft__rt.nworkers; i++) {
        int64_t t = weft__timer_next(&weft__rt.workers[i].timers);
        deadline = t < deadline ? t : deadline;
    }
    return deadline;
}

/* Counts w idle, parked until `until`, then fences: a waker that adds work
 * after reading the idle count either sees w parked or is seen by w's look
 * at the queues after this. */
static void enter_parked(struct weft__worker *w, int64_t until, bool may_poll)
{
    pthread_mutex_lock(&weft__rt.idle_lock);
    stop_spinning(w);
    /* One parked worker at a time waits in the poller, while descriptors
     * are waited on; its wakers interrupt it instead of its futex. */
    w->polling = may_poll && weft__rt.poll_hook &&
                 atomic_load_explicit(&weft__rt.poll_waiters, memory_order_relaxed) > 0 &&
                 !atomic_load_explicit(&weft__rt.poller_busy, memory_order_relaxed);
    if (w->polling)
        atomic_store_explicit(&weft__rt.poller_busy, true, memory_order_relaxed);
    w->park_until = until;
    atomic_store_explicit(&w->parked, true, memory_order_relaxed);
    refresh_next_wake();
    atomic_fetch_add(&weft__rt.nidle, 1);
    pthread_mutex_unlock(&weft__rt.idle_lock);
    atomic_thread_fence(memory_order_seq_cst);
}

/* Ends w's park, counted as spinning (looking for work) or not. A waker's
 * unpark_locked has already moved it from idle to spinning; a worker that
 * woke by itself (timeout, work seen) moves itself. */
static void leave_parked(struct weft__worker *w, bool spinning)
{
    pthread_mutex_lock(&weft__rt.idle_lock);
    if (w->polling) {
        w->polling = false;
        atomic_store_explicit(&weft__rt.poller_busy, false, memory_order_relaxed);
    }
    if (atomic_load_explicit(&w->parked, memory_order_relaxed)) {
        atomic_store_explicit(&w->parked, false, memory_order_relaxed);
        refresh_next_wake();
        atomic_fetch_sub(&weft__rt.nidle, 1);
        if (spinning)
            atomic_fetch_add(&weft__rt.nspinning, 1);
    } else if (!spinning) {
        atomic_fetch_sub(&weft__rt.nspinning, 1);
    }
    pthread_mutex_unlock(&weft__rt.idle_lock);
}

/* Parks w until woken, its timers' next deadline, or, while another worker
 * is busy, BUSY_RECHECK: returns true when that last one ended the park. */
static bool park(struct weft__worker *w)
{
    int64_t deadline = earliest_timer();
    enter_parked(w, deadline, true);

    /* Look again after the fence: work or a timer added meanwhile by a thread
     * that did not see us parked yet. The earlier deadline stands too: it
     * is the one next_wake shows to weft__sched_timer_armed. */
    int64_t again = earliest_timer();
    deadline = again < deadline ? again : deadline;
    bool recheck = false;
    if (!work_visible(w)) {
        bool all_idle = atomic_load(&weft__rt.nidle) == weft__rt.nworkers;
        /* A process waiting on a descriptor may be woken from outside. */
        bool fd_waits = atomic_load(&weft__rt.poll_waiters) > 0;
        if (deadline == INT64_MAX && weft__rt.stall_hook && all_idle && !fd_waits &&
            weft__rt.stall_hook())
            deadline = weft_now() + STALL_RECHECK;
        /* Work a busy worker holds may never wake us: its run-next process
         * (stealable only at a second look) or a push whose waker read nidle
         * before our increment reached it (no fence on that side). */
        if (!all_idle && weft_now() + w->recheck_after < deadline) {
            deadline = weft_now() + w->recheck_after;
            recheck = true;
        }
        if (w->polling) {
            /* Woken processes are in w's queue: the park ends with them. */
            while (atomic_load_explicit(&w->park_futex, memory_order_acquire) == 0 &&
                   weft__rt.poll_hook(w, deadline) == 0)
                if (deadline != INT64_MAX && weft_now() >= deadline)
                    break;
        } else {
            while (atomic_load_explicit(&w->park_futex, memory_order_acquire) == 0) {
                weft__futex_wait(&w->park_futex, 0, deadline == INT64_MAX ? -1 : deadline);
                if (deadline != INT64_MAX && weft_now() >= deadline)
                    break;
            }
        }
    }
    leave_parked(w, true);
    bool rechecking = recheck && atomic_load_explicit(&w->park_futex, memory_order_relaxed) == 0;
    /* Rechecks that keep finding nothing back off; finding work resets. */
    if (rechecking && w->recheck_after < BUSY_RECHECK_MAX)
        w->recheck_after *= 2;
    atomic_store_explicit(&w->park_futex, 0, memory_order_relaxed);
    w->spinning = true;
    return rechecking;
}

/* The scheduler loop's search: returns a process to run, or NULL when the
 * workers must exit. */
static struct weft__proc *find_work(struct weft__worker *w)
{
    struct weft__proc *p = pick_local(w);
    if (p)
        return p;
    if (!w->spinning) {
        w->spinning = true;
        atomic_fetch_add(&weft__rt.nspinning, 1);
    }
    for (unsigned spins = 0;;) {
        if (atomic_load_explicit(&weft__rt.workers_exit, memory_order_acquire)) {
            stop_spinning(w);
            return NULL;
        }
        if (run_due_timers(w, true) > 0 && (p = pick_local(w)))
            break;
        /* Descriptors, once per search (the park waits on them). */
        if (spins == 0 && atomic_load_explicit(&weft__rt.poll_waiters, memory_order_relaxed) > 0 &&
            weft__rt.poll_hook(w, 0) > 0 && (p = pick_local(w)))
            break;
        if ((p = with_stack(w, global_pop(w))) || (p = with_stack(w, steal(w))) ||
            (p = pick_local(w)))
            break;
        if (spins++ < SPIN_ROUNDS) {
            for (int i = 0; i < SPIN_PAUSES; i++)
                weft__cpu_relax();
            continue;
        }
        /* Back from a recheck with nothing found: park again at once. */
        spins = park(w) ? SPIN_ROUNDS : 0;
    }
    stop_spinning(w);
    w->recheck_after = BUSY_RECHECK;
    /* The last searcher found work: more may be waiting, wake a helper. */
    if (atomic_load_explicit(&weft__rt.nspinning, memory_order_relaxed) == 0 &&
        (weft__runq_len(&w->runq) > 0 || atomic_load(&weft__rt.global_len) > 0))
        weft__sched_notify(true);
    return p;
}

/* ---- the calls of the layers above --------------------------------------------- */

/* In deterministic mode every slice ends in the det loop, which chooses. */
static inline bool det_on(void)
{
    return weft__unlikely(atomic_load_explicit(&weft__det_on, memory_order_relaxed));
}

void weft__sched_block_on(struct weft__worker *w)
{
    switch_to(w, det_on() ? NULL : pick_local(w), WEFT__AFTER_BLOCK);
}

void weft__sched_yield(struct weft__worker *w)
{
    if (det_on()) {
        weft__det_yielding(w->current);
        switch_to(w, NULL, WEFT__AFTER_YIELD);
        return;
    }
    struct weft__proc *next = pick_local(w);
    if (!next && run_due_timers(w, false) > 0)
        next = pick_local(w);
    if (!next)
        next = with_stack(w, global_pop(w));
    if (next)
        switch_to(w, next, WEFT__AFTER_YIELD);
}

void weft__sched_run_now(struct weft__worker *w, struct weft__proc *p)
{
    if (det_on()) {
        weft__det_ready(p);
        weft__det_point();
        return;
    }
    if ((p = with_stack(w, p)))
        switch_to(w, p, WEFT__AFTER_SPAWN);
}

void weft__sched_exit(void)
{
    struct weft__worker *w = weft__worker_current();
    switch_to(w, det_on() ? NULL : pick_local(w), WEFT__AFTER_EXIT);
    weft__panic("an ended process was resumed");
}

long weft__sched_live_procs(void)
{
    /* Exits are read before spawns: every exit counted has its spawn counted,
     * so the sum never undercounts. */
    long live = 0;
    for (unsigned i = 0; i < weft__rt.nworkers; i++)
        live -= atomic_load_explicit(&weft__rt.workers[i].exited, memory_order_acquire);
    live += atomic_load(&weft__rt.outside_spawned);
    for (unsigned i = 0; i < weft__rt.nworkers; i++)
        live += atomic_load_explicit(&weft__rt.workers[i].spawned, memory_order_acquire);
    return live;
}

/* ---- workers ----------------------------------------------------------------- */

/* The calling thread becomes w's: its stack bounds (for the sanitizers'
 * fiber switches), its TSan fiber, its signal stack. */
static void thread_enter(struct weft__worker *w)
{
    tls_worker = w;
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &w->thread_stack_lo, &w->thread_stack_size);
        pthread_attr_destroy(&attr);
    }
#ifdef WEFT__TSAN
    w->tsan_fiber = __tsan_get_current_fiber();
#endif
    weft__overflow_thread_init(w);
}

static void *worker_main(void *arg)
{
    struct weft__worker *w = arg;
    thread_enter(w);
    struct weft__proc *p;
    for (;;) {
        if ((p = w->handoff))
            w->handoff = NULL; /* picked while still leaving another worker */
        else if (!(p = find_work(w)))
            break;
        switch_to(w, p, WEFT__AFTER_NONE);
    }
    weft__overflow_thread_term(w);
    tls_worker = NULL;
    return NULL;
}

/* ---- deterministic mode -------------------------------------------------------- */

/* The det loop's thread waits for an outside thread (a wake-up through the
 * global queue, weft_stop) as a parked worker does, so that the wakers of
 * the threaded mode find it; real_deadline -1: no limit. */
static void det_park(struct weft__worker *w, int64_t real_deadline)
{
    enter_parked(w, INT64_MAX, false);
    while (!atomic_load(&weft__rt.global_len) && !atomic_load(&weft__rt.workers_exit) &&
           atomic_load_explicit(&w->park_futex, memory_order_acquire) == 0) {
        weft__futex_wait(&w->park_futex, 0, real_deadline);
        if (real_deadline >= 0 && weft__clock_real() >= real_deadline)
            break;
    }
    leave_parked(w, false);
    atomic_store_explicit(&w->park_futex, 0, memory_order_relaxed);
}

/* Runs every process slice of a deterministic runtime, on one OS thread:
 * takes what outside threads queued, lets det.c choose a process and a
 * logical worker and runs it until it blocks, yields or ends; when nothing
 * is runnable, jumps the clock to the earliest deadline; when nothing is
 * armed either, asks the deadlock detector, then waits for outside threads. */
static void det_loop(struct weft__worker *w0)
{
    struct weft__runtime *rt = &weft__rt;
    while (!atomic_load_explicit(&rt->workers_exit, memory_order_acquire)) {
        tls_worker = w0;
        struct weft__proc *p;
        if (atomic_load_explicit(&rt->global_len, memory_order_relaxed)) {
            pthread_mutex_lock(&rt->global_lock);
            while ((p = plist_pop(&rt->global))) {
                atomic_fetch_sub(&rt->global_len, 1);
                weft__det_ready(p);
            }
            pthread_mutex_unlock(&rt->global_lock);
        }
        /* Timers the clock has passed fire before the next pick, as the
         * threaded mode fires them while processes run: a deadline can race
         * with processes that never block. */
        if (earliest_timer() <= weft_now())
            run_due_timers(w0, true);
        /* Descriptor events are outside the replay, as threads are. */
        if (atomic_load_explicit(&rt->poll_waiters, memory_order_relaxed) > 0)
            rt->poll_hook(w0, 0);
        unsigned wi;
        if ((p = weft__det_pick(rt->nworkers, &wi))) {
            struct weft__worker *w = &rt->workers[wi];
            tls_worker = w;
            unsigned no = (unsigned)(uint32_t)p->pid;
            if ((p = with_stack(w, p))) {
                switch_to(w, p, WEFT__AFTER_NONE);
                weft__det_slice_ended(p, no, w->after);
            }
            continue;
        }
        int64_t when = earliest_timer();
        if (when != INT64_MAX) {
            /* Before the clock jumps, descriptors get the time it skips,
             * in real time: their events come from outside the replay. */
            if (atomic_load_explicit(&rt->poll_waiters, memory_order_relaxed) > 0 &&
                rt->poll_hook(w0, when) > 0)
                continue;
            weft__det_advance_to(when);
            run_due_timers(w0, true);
            continue;
        }
        int64_t real_deadline = WEFT_FOREVER;
        if (atomic_load_explicit(&rt->poll_waiters, memory_order_relaxed) > 0)
            real_deadline = weft__clock_real() + DET_POLL_EVERY;
        else if (rt->stall_hook && weft__rt.stall_hook())
            real_deadline = weft__clock_real() + STALL_RECHECK;
        if (!weft__det_runnable()) /* a deadlock's report cancels every process */
            det_park(w0, real_deadline);
    }
}

static void *det_main(void *arg)
{
    struct weft__worker *w0 = arg;
    thread_enter(w0);
    /* Every logical worker's scheduler context lives on this thread. */
    for (unsigned i = 1; i < weft__rt.nworkers; i++) {
        weft__rt.workers[i].thread_stack_lo = w0->thread_stack_lo;
        weft__rt.workers[i].thread_stack_size = w0->thread_stack_size;
#ifdef WEFT__TSAN
        weft__rt.workers[i].tsan_fiber = w0->tsan_fiber;
#endif
    }
    det_loop(w0);
    weft__overflow_thread_term(w0);
    tls_worker = NULL;
    return NULL;
}

void weft__det_preempt_point(void)
{
    struct weft__worker *w = weft__worker_current();
    struct weft__proc *self = w ? w->current : NULL;
    if (self && weft__det_should_preempt(self)) {
        weft__det_preempted(self);
        switch_to(w, NULL, WEFT__AFTER_YIELD);
    }
}

static void worker_term(struct weft__worker *w)
{
    weft__overflow_stack_free(w);
    weft__proc_cache_flush(w);
    weft__msg_cache_flush(w);
    weft__stack_cache_flush(&w->stacks);
    weft__handle_cache_flush(&w->handles);
    weft__timer_heap_term(&w->timers);
}

/* Ends the first `started` worker threads and frees every worker. */
static void stop_workers(unsigned started)
{
    struct weft__runtime *rt = &weft__rt;
    atomic_store(&rt->workers_exit, true);
    pthread_mutex_lock(&rt->idle_lock);
    for (unsigned i = 0; i < started; i++) {
        atomic_store(&rt->workers[i].park_futex, 1);
        weft__futex_wake(&rt->workers[i].park_futex, 1);
    }
    if (rt->poll_interrupt)
        rt->poll_interrupt(); /* a worker parked in the poller */
    pthread_mutex_unlock(&rt->idle_lock);
    for (unsigned i = 0; i < started; i++)
        pthread_join(rt->workers[i].thread, NULL);
    for (unsigned i = 0; i < rt->nworkers; i++)
        worker_term(&rt->workers[i]);
    weft__free(rt->workers_mem, rt->nworkers * sizeof *rt->workers + WEFT__CACHELINE);
    rt->workers_mem = NULL;
    rt->workers = NULL;
    rt->nworkers = 0;
}

int weft__sched_start(unsigned nworkers)
{
    struct weft__runtime *rt = &weft__rt;
    /* The hook promises malloc's alignment only: align to a cache line. */
    rt->workers_mem = weft__alloc(nworkers * sizeof *rt->workers + WEFT__CACHELINE);
    if (!rt->workers_mem)
        return -ENOMEM;
    rt->workers = (void *)(((uintptr_t)rt->workers_mem + WEFT__CACHELINE - 1) &
                           ~(uintptr_t)(WEFT__CACHELINE - 1));
    memset(rt->workers, 0, nworkers * sizeof *rt->workers);
    rt->nworkers = nworkers;
    atomic_store(&rt->workers_exit, false);
    atomic_store(&rt->nidle, 0);
    atomic_store(&rt->nspinning, 0);
    atomic_store(&rt->outside_spawned, 0);
    atomic_store(&rt->next_wake, INT64_MAX);
    atomic_store(&rt->global_len, 0);
    rt->global.head = rt->global.tail = NULL;
    for (unsigned i = 0; i < nworkers; i++) {
        struct weft__worker *w = &rt->workers[i];
        weft__runq_init(&w->runq);
        weft__timer_heap_init(&w->timers);
        w->id = i;
        w->rng = weft__rand_seed(rt->seed, i);
        w->recheck_after = BUSY_RECHECK;
    }
    /* Deterministic mode: one thread runs every logical worker. */
    unsigned threads = weft__det_on ? 1 : nworkers;
    void *(*thread_main)(void *) = weft__det_on ? det_main : worker_main;
    for (unsigned i = 0; i < threads; i++) {
        if (weft__overflow_stack_alloc(&rt->workers[i]) != 0) {
            stop_workers(0);
            return -ENOMEM;
        }
    }
    unsigned started = 0;
    while (started < threads &&
           weft__fault_pthread_create(&rt->workers[started].thread, NULL, thread_main,
                                      &rt->workers[started]) == 0)
        started++;
    if (started < threads) {
        stop_workers(started);
        return -EAGAIN;
    }
    return 0;
}

void weft__sched_stop(void)
{
    stop_workers(weft__det_on ? 1 : weft__rt.nworkers);
}
