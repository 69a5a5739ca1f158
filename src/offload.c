/* offload.c: the offload pool. weft_offload runs a blocking function on a
 * helper thread while the calling process waits without holding its worker
 * (a thread outside the runtime blocks its own thread, as in any weft call).
 *
 * The pool is a FIFO of jobs and at most pool.max helper threads, started
 * one at a time when a job is queued and no free thread is left for it,
 * and kept until the runtime stops. The pool and its jobs' states are under
 * pool.lock, held for a few instructions at a time (never while fn or
 * abandon runs).
 *
 * A job's life, and who frees it. A job is a heap block so that an
 * abandoned one can outlive its caller. Its state moves only so:
 *
 *            caller gives up, abandon set (or the call failed at its entry)
 *   QUEUED ----------------------------------------------> ABANDONED, queued
 *     |  \  caller gives up, abandon NULL:                  | helper: skips fn,
 *     |   `-> unlinked, freed by the caller (fn never runs)  | abandon, frees it
 *     | helper dequeues it
 *     v               fn returns
 *   RUNNING ------------------------------> DONE: freed by the caller
 *     | caller gives up, abandon set
 *     v               fn returns
 *   ABANDONED, running --------------------> helper: abandon, frees it
 *
 * Every transition is made under pool.lock, each by one side only, and
 * DONE and ABANDONED are final:
 *  - the caller frees a job it unlinked while QUEUED (helpers find jobs
 *    only through the queue, so none can reach it any more), a job it finds
 *    DONE (the helper wrote DONE under the lock and never touches the job
 *    after releasing it), or a job it never queued;
 *  - the helper frees a job it finds ABANDONED, when it dequeues it or
 *    after fn (the caller wrote ABANDONED under the lock and never touches
 *    the job again), after calling abandon(arg).
 * So exactly one side frees each job, once. The same states give the
 * contract of abandon: it is called, exactly once, iff the call returns
 * -ETIMEDOUT or -ECANCELED (or an exit signal ends the caller inside it)
 * with abandon set.
 *
 * Waking the caller. The caller's wait (wait.c) is opened and its ticket
 * stored in the job under the lock. The helper claims that ticket under the
 * lock too, and resumes the caller after releasing it: a successful claim
 * keeps the caller blocked until the resume (so its waiter, which a thread
 * outside the runtime keeps in thread-local storage, cannot go away), and a
 * failed claim (the wait already ended) touches nothing more.
 *
 * A caller without abandon whose deadline passes while fn runs waits on,
 * since fn may still write to what arg points to (the caller's stack). When
 * a cancellation (weft_stop, an exit signal) ends its wait, every later
 * wait would end at once: it then waits in a way that cancellation cannot
 * shorten (outwait below), and returns once fn has.
 */
#include <signal.h>
#include <string.h>

#include "fault.h"
#include "io.h"

/* What a caller's wait shows in weft_dump. */
#define OFFLOAD_WHY WEFT__WHY_OFFLOAD

enum job_state { QUEUED, RUNNING, DONE, ABANDONED };

struct job {
    struct job *prev, *next;        /* links in pool's queue while queued */
    weft_offload_fn *fn, *abandon;  /* fixed at submission */
    void *arg;
    enum job_state state;           /* under pool.lock; see the diagram above */
    struct weft__waiter *waiter;    /* the caller's, set at submission */
    unsigned ticket;                /* the caller's open wait, under pool.lock */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t work;            /* idle helpers wait here for a job */
    pthread_cond_t done;            /* outside threads in outwait wait here */
    struct job *head, *tail;        /* queued jobs, oldest first */
    unsigned queued;                /* jobs in the queue */
    unsigned max;                   /* most helper threads; 0: not set (default) */
    unsigned nthreads;              /* helpers started and not yet joined */
    unsigned busy;                  /* helpers between taking a job and settling it */
    unsigned idle;                  /* helpers waiting on work */
    unsigned outwaiting;            /* outside threads waiting on done */
    bool stopping;                  /* helpers end once the queue is empty */
    pthread_t *threads;             /* max entries, the first nthreads started */
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .work = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
};

/* ---- the pool's threads ------------------------------------------------------------ */

static void enqueue(struct job *job)
{
    job->next = NULL;
    job->prev = pool.tail;
    if (pool.tail)
        pool.tail->next = job;
    else
        pool.head = job;
    pool.tail = job;
    pool.queued++;
}

static void unlink_job(struct job *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        pool.head = job->next;
    if (job->next)
        job->next->prev = job->prev;
    else
        pool.tail = job->prev;
    pool.queued--;
}

/* Queues a job the caller has given up, first: its abandon is all that is
 * left to run. */
static void push_abandoned(struct job *job)
{
    job->state = ABANDONED;
    job->prev = NULL;
    job->next = pool.head;
    if (pool.head)
        pool.head->prev = job;
    else
        pool.tail = job;
    pool.head = job;
    pool.queued++;
}

/* A helper is done with job's fn (lock held; fn skipped if it was abandoned
 * while queued): the job is the caller's to free again, or, abandoned, the
 * helper's. Returns with the lock held. */
static void finish(struct job *job)
{
    if (job->state == ABANDONED) {
        pthread_mutex_unlock(&pool.lock);
        job->abandon(job->arg);
        weft__free(job, sizeof *job);
        pthread_mutex_lock(&pool.lock);
        pool.busy--;
        return;
    }
    weft__assert(job->state == RUNNING);
    job->state = DONE;
    /* Free before the caller runs again: its next call must not start a
     * thread for want of this one. */
    pool.busy--;
    struct weft__waiter *w = job->waiter;
    bool claimed = weft__wait_claim(w, job->ticket, 0);
    if (pool.outwaiting)
        pthread_cond_broadcast(&pool.done);
    pthread_mutex_unlock(&pool.lock);
    if (claimed)
        weft__wait_resume(w); /* our last touch of w; the job may be gone already */
    pthread_mutex_lock(&pool.lock);
}

static void *helper_main(void *unused)
{
    (void)unused;
    pthread_setname_np(pthread_self(), "weft-offload");
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (!pool.head && !pool.stopping) {
            pool.idle++;
            pthread_cond_wait(&pool.work, &pool.lock);
            pool.idle--;
        }
        struct job *job = pool.head;
        if (!job)
            break; /* stopping, and nothing is queued */
        unlink_job(job);
        pool.busy++;
        if (job->state == QUEUED) {
            job->state = RUNNING;
            pthread_mutex_unlock(&pool.lock);
            job->fn(job->arg);
            pthread_mutex_lock(&pool.lock);
        }
        finish(job);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

/* Starts one more helper (lock held). It inherits a mask that blocks every
 * signal, so that the program's handlers run on its own threads, not in the
 * middle of fn. 0, -ENOMEM or -EAGAIN. */
static int start_thread(void)
{
    if (!pool.threads && !(pool.threads = weft__alloc(pool.max * sizeof *pool.threads)))
        return -ENOMEM;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = weft__fault_pthread_create(&pool.threads[pool.nthreads], NULL, helper_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err)
        return -EAGAIN;
    pool.nthreads++;
    return 0;
}

int weft__offload_init(unsigned max_threads)
{
    pthread_mutex_lock(&pool.lock);
    weft__assert(pool.nthreads == 0 && !pool.head);
    if (max_threads == 0)
        max_threads = WEFT_OFFLOAD_THREADS_DEFAULT;
    pool.max = max_threads < WEFT_OFFLOAD_THREADS_MAX ? max_threads : WEFT_OFFLOAD_THREADS_MAX;
    pthread_mutex_unlock(&pool.lock);
    return 0;
}

/* Every process has ended and no outside thread is inside a weft call, so
 * no caller waits; only abandoned jobs may be left, queued (abandon alone
 * to run) or running (fn, then abandon). Helpers leave once the queue is
 * empty, so each of them ends before its helper is joined. */
void weft__offload_stop(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.stopping = true;
    pthread_cond_broadcast(&pool.work);
    unsigned n = pool.nthreads;
    pthread_mutex_unlock(&pool.lock);
    for (unsigned i = 0; i < n; i++)
        pthread_join(pool.threads[i], NULL);

    pthread_mutex_lock(&pool.lock);
    weft__assert(!pool.head && pool.busy == 0 && pool.idle == 0 && pool.outwaiting == 0);
    weft__free(pool.threads, pool.max * sizeof *pool.threads);
    pool.threads = NULL;
    pool.nthreads = 0;
    pool.max = 0;
    pool.stopping = false;
    pthread_mutex_unlock(&pool.lock);
}

/* ---- the caller's side --------------------------------------------------------------- */

/* Queues job, starting a helper if every one that is not busy has a queued
 * job to take already. With w, job is QUEUED and w's wait for it opened;
 * without, job is ABANDONED (the call failed at its entry) and nobody waits.
 * 0, or -ENOMEM / -EAGAIN when no helper could start and none runs: job is
 * then not queued. */
static int submit(struct job *job, struct weft__waiter *w)
{
    pthread_mutex_lock(&pool.lock);
    weft__assert(!pool.stopping);
    if (pool.max == 0) /* weft__offload_init has not run: the default */
        pool.max = WEFT_OFFLOAD_THREADS_DEFAULT;
    unsigned ticket = 0;
    if (w) {
        job->waiter = w;
        job->ticket = ticket = weft__wait_open(w);
        enqueue(job);
    } else {
        push_abandoned(job);
    }
    int err = 0;
    if (pool.queued > pool.nthreads - pool.busy && pool.nthreads < pool.max)
        err = start_thread();
    if (err && pool.nthreads == 0)
        unlink_job(job);
    else
        err = 0; /* a helper that runs will take it */
    if (!err && pool.idle)
        pthread_cond_signal(&pool.work);
    pthread_mutex_unlock(&pool.lock);
    if (w && err)
        weft__wait_abandon(w, ticket);
    else if (w)
        weft__wait_why(w, OFFLOAD_WHY, 0);
    return err;
}

/* Waits (lock held, job RUNNING, its caller's wait cancelled) until fn has
 * returned, which a cancellation cannot cut short: a process blocks on its
 * worker without the early checks of weft__wait (which would end each wait
 * at once now), woken by the helper's claim, or by a shutdown pass (then it
 * blocks again); a thread waits on pool.done. Returns with the lock held. */
static void outwait(struct job *job, struct weft__waiter *w)
{
    if (!w->proc) {
        pool.outwaiting++;
        while (job->state != DONE)
            pthread_cond_wait(&pool.done, &pool.lock);
        pool.outwaiting--;
        return;
    }
    __atomic_store_n(&w->why_deadline, WEFT_FOREVER, __ATOMIC_RELAXED);
    while (job->state != DONE) {
        job->ticket = weft__wait_open(w);
        pthread_mutex_unlock(&pool.lock);
        weft__wait_why(w, OFFLOAD_WHY, 0);
        /* Claimed or not, block: a claimer has made (or will make) the
         * process runnable, and that wake-up is consumed here. */
        weft__sched_block_on(weft__worker_current());
        pthread_mutex_lock(&pool.lock);
    }
    atomic_store_explicit(&w->why, WEFT__WHY_NONE, memory_order_relaxed);
}

/* Waits for a queued job until the deadline and settles it. Returns 0 when
 * fn has returned, else the wait's error; stores in *cancelled whether a
 * wait ended in -ECANCELED. */
static int await(struct job *job, struct weft__waiter *w, int64_t deadline, bool *cancelled)
{
    int err = weft__wait(w, deadline);
    *cancelled = err == -ECANCELED;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        if (job->state == DONE) {
            err = 0;
            break;
        }
        weft__assert(err != 0); /* the helper's claim comes with DONE */
        /* Given up: -ETIMEDOUT or -ECANCELED hand arg to abandon, if set
         * (-ENOMEM, the wait's timer, leaves it to the caller). */
        bool hand_over = job->abandon && err != -ENOMEM;
        if (job->state == QUEUED) {
            unlink_job(job); /* fn never runs */
            if (hand_over) {
                push_abandoned(job);
                job = NULL;
            }
            break;
        }
        if (hand_over) {
            job->state = ABANDONED; /* the helper's from now on */
            job = NULL;
            break;
        }
        if (*cancelled) {
            outwait(job, w);
            err = 0;
            break;
        }
        /* The deadline passed (or its timer could not be had) while fn
         * runs: wait on without one. */
        job->ticket = weft__wait_open(w);
        pthread_mutex_unlock(&pool.lock);
        weft__wait_why(w, OFFLOAD_WHY, 0);
        err = weft__wait(w, WEFT_FOREVER);
        *cancelled = err == -ECANCELED;
        pthread_mutex_lock(&pool.lock);
    }
    pthread_mutex_unlock(&pool.lock);
    if (job)
        weft__free(job, sizeof *job);
    return err;
}

/* weft_offload for self, the calling process, or an outside thread (NULL). */
static int offload(struct weft__proc *self, weft_offload_fn *fn, void *arg,
                   weft_offload_fn *abandon, int64_t deadline)
{
    /* A call that fails at its entry with -ETIMEDOUT or -ECANCELED still
     * hands arg to abandon: the code alone tells the caller who owns arg. */
    int early = 0;
    if (atomic_load_explicit(&weft__rt.state, memory_order_relaxed) != WEFT__RT_RUNNING)
        early = -ECANCELED;
    else if (deadline >= 0 && deadline <= weft_now())
        early = -ETIMEDOUT; /* fn cannot start before the deadline */
    else if (self && self->no_block)
        return weft__misuse(-EPERM, "weft_offload: a blocking weft call in an actor's handler");
    if (early && !abandon)
        return early;
    struct job *job = weft__alloc(sizeof *job);
    if (!job)
        return -ENOMEM;
    memset(job, 0, sizeof *job);
    job->fn = fn;
    job->abandon = abandon;
    job->arg = arg;
    job->state = QUEUED;
    if (early) {
        int err = submit(job, NULL);
        if (err)
            weft__free(job, sizeof *job);
        return err ? err : early;
    }
    /* A process waiting for a helper is like an attached outside thread to
     * the deadlock detector: the helper may still wake it. (An outside
     * thread is counted already, as inside a weft call.) Counted apart from
     * the attached threads, which weft_thread_detach takes back. */
    if (self)
        atomic_fetch_add(&weft__rt.offload_waiting, 1);
    struct weft__waiter *w = weft__waiter_self();
    bool cancelled = false;
    int err = submit(job, w);
    if (err)
        weft__free(job, sizeof *job);
    else
        err = await(job, w, deadline, &cancelled);
    if (self) {
        atomic_fetch_sub(&weft__rt.offload_waiting, 1);
        if (cancelled)
            weft__kill_point(); /* ends it here if an exit signal cancelled it */
    }
    return err;
}

int weft_offload(weft_offload_fn *fn, void *arg, weft_offload_fn *abandon, int64_t deadline)
{
    if (!fn)
        return weft__misuse(-EINVAL, "weft_offload: fn is NULL");
    weft__det_point(); /* before the process is looked up: it may move */
    struct weft__proc *self = weft__proc_current();
    if (self) {
        weft__kill_check(self);
        return offload(self, fn, arg, abandon, deadline);
    }
    /* Counted while the runtime stops too, so that an abandoned job queued
     * then still has its helpers (weft_stop waits for this call). */
    int err = weft__outside_enter(true);
    if (err)
        return err;
    err = offload(NULL, fn, arg, abandon, deadline);
    weft__outside_leave();
    return err;
}
