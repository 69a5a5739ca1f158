/* wait.c: blocking and waking, for a process or a thread outside the runtime.
 *
 * Every blocking call in weft is: open a wait (get a ticket), publish the
 * waiter and ticket where a waker will find them, then weft__wait. A waker
 * claims the wait by compare-and-swap on the waiter's state, so exactly one
 * of the wakers, the deadline and the runtime's shutdown ends it; the others
 * fail their claim and leave. The claimer writes the result, then makes the
 * process runnable (or sets the thread's futex word).
 *
 * Shutdown: weft_stop sets the runtime's state, then claims every open wait
 * with -ECANCELED, and again every 10 ms until every process has ended. A
 * wait opened concurrently with a pass either sees the state (and fails at
 * once) or is claimed by a later pass. No fence is needed on the waiting
 * side, which is every blocking call's fast path.
 */
#include <limits.h>

#include "fault.h"
#include "internal.h"

static _Thread_local struct weft__waiter thread_waiter;

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct weft__waiter *waiting_threads; /* outside threads in weft__wait */

struct weft__waiter *weft__waiter_self(void)
{
    struct weft__worker *w = weft__worker_current();
    if (w && w->current)
        return &w->current->waiter;
    return &thread_waiter;
}

unsigned weft__wait_open(struct weft__waiter *w)
{
    unsigned seq = atomic_load_explicit(&w->state, memory_order_relaxed) & ~(unsigned)WEFT__WAIT_PHASE;
    unsigned ticket = (seq + 4) | WEFT__WAIT_OPEN;
    atomic_store_explicit(&w->state, ticket, memory_order_release);
    return ticket;
}

/* Makes w's owner run again: a process becomes runnable (from worker sw, the
 * caller's, NULL outside), a thread's futex word is set last. */
static void resume_from(struct weft__worker *sw, struct weft__waiter *w, bool lifo)
{
    if (w->proc) {
        weft__sched_ready_from(sw, w->proc, lifo);
    } else {
        atomic_store_explicit(&w->futex, 1, memory_order_release);
        weft__futex_wake(&w->futex, 1);
    }
}

static void resume(struct weft__waiter *w, bool lifo)
{
    resume_from(w->proc ? weft__worker_current() : NULL, w, lifo);
}

bool weft__wake(struct weft__waiter *w, unsigned ticket, int result)
{
    if (!weft__wait_claim(w, ticket, result))
        return false;
    resume(w, true);
    return true;
}

void weft__wait_resume(struct weft__waiter *w)
{
    resume(w, true);
}

void weft__wait_resume_from(struct weft__worker *self_worker, struct weft__waiter *w)
{
    resume_from(self_worker, w, true);
}

void weft__wait_resume_queued(struct weft__worker *self_worker, struct weft__waiter *w)
{
    resume_from(self_worker, w, false);
}

void weft__wait_abandon(struct weft__waiter *w, unsigned ticket)
{
    unsigned expected = ticket;
    if (!atomic_compare_exchange_strong_explicit(&w->state, &expected,
                                                 ticket & ~(unsigned)WEFT__WAIT_PHASE,
                                                 memory_order_acq_rel, memory_order_relaxed))
        weft__wait(w, WEFT_FOREVER); /* claimed: consume the wake-up */
}

void weft__wait_cancel(struct weft__waiter *w)
{
    unsigned st = atomic_load_explicit(&w->state, memory_order_acquire);
    if ((st & WEFT__WAIT_PHASE) == WEFT__WAIT_OPEN && weft__wait_claim(w, st, -ECANCELED))
        resume(w, false);
}

static void on_timeout(struct weft__timer *t)
{
    struct weft__proc *p = weft__container_of(t, struct weft__proc, timer);
    if (weft__wait_claim(&p->waiter, p->timer_ticket, -ETIMEDOUT)) {
        /* A wait that timed out is a poll: under PCT it goes below the
         * others, as a yielder does (or a retry loop would starve them). */
        if (atomic_load_explicit(&weft__det_on, memory_order_relaxed))
            weft__det_yielding(p);
        resume(&p->waiter, false);
    }
}

/* Ends the wait now if it can: returns true with the result set. */
static bool settle_early(struct weft__waiter *w, unsigned ticket, int64_t deadline)
{
    if (atomic_load_explicit(&weft__rt.state, memory_order_relaxed) != WEFT__RT_RUNNING)
        return weft__wait_claim(w, ticket, -ECANCELED);
    if (w->proc) {
        /* An exit signal sets kill_pending, then cancels an open wait: the
         * store of the open ticket above and this load are ordered against
         * it by the killer's process-wide barrier (link.c). */
        weft__kill_fence();
        if (weft__unlikely(atomic_load_explicit(&w->proc->kill_pending, memory_order_relaxed)))
            return weft__wait_claim(w, ticket, -ECANCELED);
    }
    if (deadline == 0 || (deadline > 0 && deadline <= weft_now()))
        return weft__wait_claim(w, ticket, -ETIMEDOUT);
    return false;
}

static int wait_proc(struct weft__worker *worker, struct weft__waiter *w, unsigned ticket,
                     int64_t deadline)
{
    struct weft__proc *p = w->proc;
    bool timed = deadline > 0;
    if (timed) {
        p->timer.fire = on_timeout;
        p->timer_ticket = ticket;
        if (weft__timer_add(&worker->timers, &p->timer, deadline) != 0) {
            if (weft__wait_claim(w, ticket, -ENOMEM))
                return -ENOMEM;
            timed = false; /* claimed meanwhile: the waker will resume us */
            weft__fault_absorbed_note();
        } else {
            weft__sched_timer_armed(deadline);
        }
    }
    /* Claimed or not, park: a claimer that won the race has made (or will
     * make) us runnable, and that wake-up must be consumed here. */
    weft__sched_block_on(worker);
    if (timed && w->result != -ETIMEDOUT)
        weft__timer_cancel(&p->timer);
    return w->result;
}

static int wait_thread(struct weft__waiter *w, unsigned ticket, int64_t deadline)
{
    pthread_mutex_lock(&threads_lock);
    w->prev_thread = NULL;
    w->next_thread = waiting_threads;
    if (waiting_threads)
        waiting_threads->prev_thread = w;
    waiting_threads = w;
    pthread_mutex_unlock(&threads_lock);

    bool self = settle_early(w, ticket, deadline);
    /* The thread waits on the real clock (weft_now is virtual in
     * deterministic mode, where threads are not replayed anyway). */
    int64_t real_deadline = weft__real_deadline(deadline);
    /* Unless it claimed itself, the thread waits for the claimer's futex
     * store, the claimer's last touch of w. */
    while (!self && atomic_load_explicit(&w->futex, memory_order_acquire) == 0) {
        weft__futex_wait(&w->futex, 0, real_deadline);
        if (real_deadline >= 0 && weft__clock_real() >= real_deadline)
            self = weft__wait_claim(w, ticket, -ETIMEDOUT);
    }

    pthread_mutex_lock(&threads_lock);
    if (w->prev_thread)
        w->prev_thread->next_thread = w->next_thread;
    else
        waiting_threads = w->next_thread;
    if (w->next_thread)
        w->next_thread->prev_thread = w->prev_thread;
    pthread_mutex_unlock(&threads_lock);
    atomic_store_explicit(&w->futex, 0, memory_order_relaxed);
    return w->result;
}

int weft__wait_on(struct weft__worker *worker, struct weft__waiter *w, int64_t deadline)
{
    unsigned ticket = (atomic_load_explicit(&w->state, memory_order_relaxed) &
                       ~(unsigned)WEFT__WAIT_PHASE) | WEFT__WAIT_OPEN;
    __atomic_store_n(&w->why_deadline, deadline, __ATOMIC_RELAXED);
    int result;
    if (!w->proc)
        result = wait_thread(w, ticket, deadline);
    else if (weft__unlikely(w->proc->no_block) && deadline != 0 &&
             weft__wait_claim(w, ticket, -EPERM))
        result = weft__misuse(-EPERM, "a blocking weft call in an actor's handler");
    else if (settle_early(w, ticket, deadline))
        result = w->result;
    else
        result = wait_proc(worker, w, ticket, deadline);
    atomic_store_explicit(&w->why, WEFT__WHY_NONE, memory_order_relaxed);
    return result;
}

int weft__wait(struct weft__waiter *w, int64_t deadline)
{
    return weft__wait_on(w->proc ? weft__worker_current() : NULL, w, deadline);
}

void weft__wait_cancel_threads(void)
{
    pthread_mutex_lock(&threads_lock);
    for (struct weft__waiter *w = waiting_threads; w; w = w->next_thread)
        weft__wait_cancel(w);
    pthread_mutex_unlock(&threads_lock);
}
