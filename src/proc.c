/* proc.c: processes: spawn, join, detach, exit, self, yield, sleep, names.
 *
 * Lifetime. A process block is named by its pid's handle slot and freed when
 * the slot's last reference goes. A process holds one reference while it
 * runs (dropped after it has left its stack) and, while joinable, one for
 * the right to join it (dropped by the join or by detach). Every call that
 * looks a pid up holds a reference meanwhile, so a concurrent join or exit
 * never frees the block under it.
 *
 * Join. join_state is a set of bits changed by compare-and-swap: the exiting
 * process sets DEAD and, if it sees JOINING, wakes the joiner named in joiner
 * (with its ticket), then sets WOKEN. A joiner that times out clears JOINING;
 * a wake that loses the race to the timeout fails its claim and does nothing,
 * but it still reads the joiner's waiter: a joiner that finds DEAD as it
 * withdraws waits for WOKEN before it leaves.
 */
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

enum { PROC_CACHE_MAX = 1024 };

static struct weft__proc *proc_alloc(struct weft__worker *w)
{
    if (w && w->free_procs) {
        struct weft__proc *p = w->free_procs;
        w->free_procs = p->next;
        w->free_proc_count--;
        return p;
    }
    return weft__alloc(sizeof(struct weft__proc));
}

static void proc_free(struct weft__worker *w, struct weft__proc *p)
{
    if (w && w->free_proc_count < PROC_CACHE_MAX) {
        p->next = w->free_procs;
        w->free_procs = p;
        w->free_proc_count++;
        return;
    }
    weft__free(p, sizeof *p);
}

void weft__proc_cache_flush(struct weft__worker *w)
{
    while (w->free_procs) {
        struct weft__proc *p = w->free_procs;
        w->free_procs = p->next;
        weft__free(p, sizeof *p);
    }
    w->free_proc_count = 0;
}

/* Drops n references to p's pid; frees p with the last. w is the calling
 * thread's worker (NULL outside the runtime). */
static void release_on(struct weft__worker *w, struct weft__proc *p, uint32_t n)
{
    if (weft__handle_release(w ? &w->handles : NULL, p->pid, n))
        proc_free(w, p);
}

static void proc_release(struct weft__proc *p, uint32_t n)
{
    release_on(weft__worker_current(), p, n);
}

void weft__proc_release(struct weft__proc *p, uint32_t n)
{
    proc_release(p, n);
}

/* Takes a reference on the process named by pid, or NULL if there is none:
 * a joined process is gone for every call, even while its block lingers
 * until it has left its stack. */
static struct weft__proc *acquire(weft_pid pid)
{
    struct weft__proc *p = weft__handle_acquire(pid, WEFT__HANDLE_PROC);
    if (p && (atomic_load_explicit(&p->join_state, memory_order_acquire) & WEFT__JOIN_JOINED)) {
        proc_release(p, 1);
        return NULL;
    }
    return p;
}

static void mark_dead(struct weft__proc *p)
{
    unsigned st = atomic_load_explicit(&p->join_state, memory_order_relaxed);
    if (st == WEFT__JOIN_DETACHED) {
        /* Detached is final: nobody can join, no bit changes concurrently. */
        atomic_store_explicit(&p->join_state, st | WEFT__JOIN_DEAD, memory_order_relaxed);
        return;
    }
    unsigned old = atomic_fetch_or_explicit(&p->join_state, WEFT__JOIN_DEAD, memory_order_acq_rel);
    if (old & WEFT__JOIN_JOINING) {
        weft__wake(p->joiner, p->joiner_ticket, 0);
        /* A joiner whose wait ended otherwise meanwhile (its deadline) waits
         * for this before it leaves: until then its waiter is touched. */
        atomic_fetch_or_explicit(&p->join_state, WEFT__JOIN_WOKEN, memory_order_release);
    }
    if (p->is_main)
        weft__runtime_main_ended(p->result, p->failure);
}

/* After the switch away from an ended process: drop its running reference. */
static void on_exit_switched(struct weft__worker *w, struct weft__proc *p)
{
    release_on(w, p, 1);
}

static void on_unstarted(struct weft__worker *w, struct weft__proc *p)
{
    p->result = 0;
    weft__mbox_die(&p->mbox, p->pid, -ENOMEM, &p->mail);
    mark_dead(p);
}

static void install_hooks(void)
{
    weft__rt.exit_hook = on_exit_switched;
    weft__rt.unstarted_hook = on_unstarted;
}

_Noreturn static void finish(struct weft__proc *p, intptr_t result)
{
    p->result = result;
    /* Links, monitors and owned channels learn of the end before a joiner. */
    weft__mbox_die(&p->mbox, p->pid, result, &p->mail);
    mark_dead(p);
    weft__sched_exit();
}

_Noreturn void weft__proc_finish(struct weft__proc *p, intptr_t result)
{
    finish(p, result);
}

void weft__kill_point(void)
{
    struct weft__proc *p = weft__proc_current();
    if (p && !p->acting && atomic_load_explicit(&p->kill_pending, memory_order_acquire))
        finish(p, p->kill_reason);
}

void weft__proc_main(struct weft__proc *p)
{
    finish(p, p->fn(p->arg));
}

struct weft__proc *weft__proc_current(void)
{
    struct weft__worker *w = weft__worker_current();
    return w ? w->current : NULL;
}

uint64_t weft__rand(void)
{
    static _Thread_local uint64_t thread_rng;
    struct weft__worker *w = weft__worker_current();
    if (w)
        return weft__rand_next(&w->rng);
    if (!thread_rng)
        thread_rng = weft__rand_seed(weft__rt.seed, (uint64_t)(uintptr_t)&thread_rng);
    return weft__rand_next(&thread_rng);
}

void weft_spawn_opts_init(weft_spawn_opts *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->stack_size = weft__rt.default_stack;
    opts->worker = -1;
}

int(weft_spawn)(weft_pid *pid, weft_proc_fn fn, void *arg, const weft_spawn_opts *opts)
{
    return weft__spawn(NULL, pid, fn, arg, opts, false);
}

int weft_spawn_at(const char *site, weft_pid *pid, weft_proc_fn fn, void *arg,
                  const weft_spawn_opts *opts)
{
    return weft__spawn(site, pid, fn, arg, opts, false);
}

int weft__spawn(const char *site, weft_pid *pid, weft_proc_fn fn, void *arg,
                const weft_spawn_opts *opts, bool is_main)
{
    weft_spawn_opts defaults;
    if (!opts) {
        weft_spawn_opts_init(&defaults);
        opts = &defaults;
    }
    if (!fn)
        return weft__misuse(-EINVAL, "weft_spawn: fn is NULL");
    if (!pid && !opts->detached)
        return weft__misuse(-EINVAL, "weft_spawn: pid is NULL for a joinable process");
    if (opts->link && !weft__in_proc())
        return weft__misuse(-EPERM, "weft_spawn: link from outside any process");
    int cls = opts->stack_size == weft__rt.default_stack ? weft__rt.default_stack_class
                                                         : weft__stack_class(opts->stack_size);
    if (cls < 0)
        return weft__misuse(cls, "weft_spawn: stack size %zu outside %zu..%zu", opts->stack_size,
                            WEFT_STACK_MIN, WEFT_STACK_MAX);

    struct weft__worker *w = weft__worker_current();
    if (w) {
        if (atomic_load_explicit(&weft__rt.state, memory_order_relaxed) != WEFT__RT_RUNNING)
            return -ECANCELED;
    } else {
        int err = weft__outside_enter(false);
        if (err)
            return err;
    }
    int err = -EINVAL;
    if (opts->worker < -1 || opts->worker >= (int)weft__rt.nworkers) {
        err = weft__misuse(-EINVAL, "weft_spawn: worker %d out of range", opts->worker);
        goto fail;
    }
    struct weft__proc *p = proc_alloc(w);
    if (!p) {
        err = -ENOMEM;
        goto fail;
    }
    p->stack_lo = NULL;
    p->stack_class = cls;
    p->worker = -1;
    if (opts->pinned)
        p->worker = opts->worker >= 0 ? opts->worker : w ? (int)w->id : 0;
    atomic_store_explicit(&p->on_cpu, 0, memory_order_relaxed);
    atomic_store_explicit(&p->waiter.state, 0, memory_order_relaxed);
    p->waiter.proc = p;
    atomic_store_explicit(&p->timer.heap, NULL, memory_order_relaxed);
    p->timer.home = NULL;
    p->fn = fn;
    p->arg = arg;
    p->result = 0;
    p->failure = 0;
    p->joiner = NULL;
    p->site = site;
    p->is_main = is_main;
    p->det_priority = 0;
    p->det_queued = false;
    weft__mbox_init(&p->mbox, opts->trap_exits ? WEFT__MBOX_TRAP : 0);
    /* The rest of mail is read only under scan_valid or WAITING. */
    p->mail.head = p->mail.tail = p->mail.scan_after = NULL;
    p->mail.scan_valid = false;
    p->mail.awaiting_ref = 0;
    p->mail.taken = 0;
    p->acting = NULL;
    p->no_block = false;
    atomic_store_explicit(&p->kill_pending, false, memory_order_relaxed);
    p->before_block = NULL;
    p->kill_reason = 0;
    atomic_store_explicit(&p->waiter.why, WEFT__WHY_NONE, memory_order_relaxed);
    atomic_store_explicit(&p->join_state, opts->detached ? WEFT__JOIN_DETACHED : 0,
                          memory_order_relaxed);
    if (opts->name) {
        strncpy(p->name, opts->name, WEFT_NAME_MAX - 1);
        p->name[WEFT_NAME_MAX - 1] = '\0';
    } else {
        p->name[0] = '\0';
    }
    err = weft__handle_alloc(w ? &w->handles : NULL, p, WEFT__HANDLE_PROC,
                             opts->detached ? 1 : 2, &p->pid);
    if (err) {
        proc_free(w, p);
        goto fail;
    }
    if ((opts->mailbox_capacity && (err = weft__mbox_bound(&p->mbox, opts->mailbox_capacity)) != 0) ||
        (opts->link && (err = weft__link_spawned(&p->mbox, p->pid)) != 0)) {
        if (p->mbox.ext) /* nobody knows the new pid yet */
            weft__mbox_ext_free(&p->mbox);
        weft__handle_release(w ? &w->handles : NULL, p->pid, opts->detached ? 1 : 2);
        proc_free(w, p);
        goto fail;
    }
    if (pid)
        *pid = p->pid;
    if (w)
        atomic_store_explicit(&w->spawned, atomic_load_explicit(&w->spawned, memory_order_relaxed) + 1,
                              memory_order_release);
    else
        atomic_fetch_add(&weft__rt.outside_spawned, 1);
    /* Work-first: a process spawned by a process runs at once on the same
     * worker and its parent next, so spawn loops and trees stay hot in the
     * cache and their memory is bounded by their depth. */
    bool here = w && w->current && (p->worker < 0 || p->worker == (int)w->id) &&
                (opts->worker < 0 || opts->worker == (int)w->id);
    if (here)
        weft__sched_run_now(w, p);
    else if (opts->worker >= 0)
        weft__sched_ready_on(p, opts->worker);
    else
        weft__sched_ready(p, false);
    err = 0;
fail:
    if (!w)
        weft__outside_leave();
    return err;
}

static int join(weft_pid pid, intptr_t *result, int64_t deadline)
{
    weft__det_point();
    struct weft__proc *p = acquire(pid);
    if (!p)
        return weft__misuse(-ESRCH, "weft_join: no process %#llx", (unsigned long long)pid);
    struct weft__waiter *me = weft__waiter_self();
    if (me->proc == p) {
        proc_release(p, 1);
        return weft__misuse(-EDEADLK, "weft_join: a process cannot join itself");
    }
    unsigned st = atomic_load_explicit(&p->join_state, memory_order_acquire);
    for (;;) {
        if (st & WEFT__JOIN_JOINED) { /* joined, its slot not released yet */
            proc_release(p, 1);
            return weft__misuse(-ESRCH, "weft_join: process %#llx was already joined",
                                (unsigned long long)pid);
        }
        if (st & (WEFT__JOIN_DETACHED | WEFT__JOIN_JOINING)) {
            proc_release(p, 1);
            return weft__misuse(-EINVAL, "weft_join: process %#llx is detached or being joined",
                                (unsigned long long)pid);
        }
        if (st & WEFT__JOIN_DEAD) {
            if (atomic_compare_exchange_weak(&p->join_state, &st, st | WEFT__JOIN_JOINED))
                goto joined;
            continue;
        }
        p->joiner = me;
        p->joiner_ticket = weft__wait_open(me);
        if (atomic_compare_exchange_weak(&p->join_state, &st, st | WEFT__JOIN_JOINING))
            break;
        weft__wait_abandon(me, p->joiner_ticket); /* state changed: look again */
    }
    weft__wait_why(me, WEFT__WHY_JOIN, pid);
    int err = weft__wait(me, deadline);
    if (err) {
        /* Timed out or canceled: withdraw, so that a later join may try again. */
        unsigned old = atomic_fetch_and(&p->join_state, ~(unsigned)WEFT__JOIN_JOINING);
        /* Ended as we stopped waiting: its exit saw us waiting and tries to
         * wake us, a few instructions on. Our waiter (a thread's, or a
         * process block a spawn may reuse) must outlive that. */
        for (unsigned n = 0; (old & WEFT__JOIN_DEAD) && !(old & WEFT__JOIN_WOKEN); n++) {
            if (n < 100)
                weft__cpu_relax();
            else
                sched_yield(); /* the exiting thread lost its CPU */
            old = atomic_load_explicit(&p->join_state, memory_order_acquire);
        }
        proc_release(p, 1);
        return err;
    }
    atomic_fetch_or(&p->join_state, WEFT__JOIN_JOINED);
joined:
    if (result)
        *result = p->result;
    err = p->failure;
    proc_release(p, 2); /* ours and the join right */
    return err;
}


static int join_killable(weft_pid pid, intptr_t *result, int64_t deadline)
{
    struct weft__proc *self = weft__proc_current();
    if (self)
        weft__kill_check(self);
    int err = join(pid, result, deadline);
    if (err == -ECANCELED)
        weft__kill_point();
    return err;
}

int weft_join(weft_pid pid, intptr_t *result, int64_t deadline)
{
    WEFT__FROM_ANYWHERE(join_killable(pid, result, deadline));
}

static int detach(weft_pid pid)
{
    struct weft__proc *p = acquire(pid);
    if (!p)
        return weft__misuse(-ESRCH, "weft_detach: no process %#llx", (unsigned long long)pid);
    if (p->is_main) { /* weft_run joins it */
        proc_release(p, 1);
        return weft__misuse(-EINVAL, "weft_detach: weft_run's main process cannot be detached");
    }
    unsigned st = atomic_load(&p->join_state);
    do {
        if (st & WEFT__JOIN_JOINED) {
            proc_release(p, 1);
            return weft__misuse(-ESRCH, "weft_detach: process %#llx was already joined",
                                (unsigned long long)pid);
        }
        if (st & (WEFT__JOIN_DETACHED | WEFT__JOIN_JOINING)) {
            proc_release(p, 1);
            return weft__misuse(-EINVAL, "weft_detach: process %#llx is detached or being joined",
                                (unsigned long long)pid);
        }
    } while (!atomic_compare_exchange_weak(&p->join_state, &st, st | WEFT__JOIN_DETACHED));
    proc_release(p, 2); /* ours and the join right */
    return 0;
}

int weft_detach(weft_pid pid)
{
    WEFT__FROM_ANYWHERE(detach(pid));
}

weft_pid weft_self(void)
{
    struct weft__proc *p = weft__proc_current();
    return p ? p->acting ? weft__actor_pid(p->acting) : p->pid : 0;
}

int weft_worker_id(void)
{
    struct weft__worker *w = weft__worker_current();
    if (!w || !w->current)
        return weft__misuse(-EPERM, "weft_worker_id: not called from a process");
    return (int)w->id;
}

int weft_yield(void)
{
    struct weft__worker *w = weft__worker_current();
    if (!w || !w->current) {
        sched_yield();
        return 0;
    }
    weft__sched_yield(w);
    weft__kill_point();
    return atomic_load_explicit(&weft__rt.state, memory_order_relaxed) == WEFT__RT_STOPPING
               ? -ECANCELED : 0;
}

static int sleep_until(int64_t deadline)
{
    struct weft__waiter *me = weft__waiter_self();
    weft__wait_open(me);
    weft__wait_why(me, WEFT__WHY_SLEEP, 0);
    int err = weft__wait(me, deadline);
    return err == -ETIMEDOUT ? 0 : err;
}

int weft_sleep(int64_t deadline)
{
    struct weft__proc *self = weft__proc_current();
    if (self) {
        weft__kill_check(self);
        int err = sleep_until(deadline);
        if (err == -ECANCELED)
            weft__kill_point();
        return err;
    }
    /* A thread sleeping while a runtime runs counts as inside it (its
     * shutdown cancels the sleep; the deadlock detector sees the thread). */
    int err = weft__outside_enter(true);
    if (!err) {
        err = sleep_until(deadline);
        weft__outside_leave();
        return err;
    }
    /* No runtime: a thread needs none to sleep. */
    struct timespec ts = {.tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000};
    while (deadline > 0 && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    while (deadline < 0)
        pause();
    return 0;
}

int weft_exit(intptr_t result)
{
    struct weft__proc *p = weft__proc_current();
    if (!p)
        return weft__misuse(-EPERM, "weft_exit: not called from a process");
    if (p->acting) { /* an actor's handler: it ends when the handler returns */
        weft__actor_exit_request(p, result);
        return 0;
    }
    finish(p, result);
}

static int proc_name(weft_pid pid, char *buf, size_t len)
{
    struct weft__proc *p = acquire(pid);
    if (!p)
        return weft__misuse(-ESRCH, "weft_proc_name: no process %#llx", (unsigned long long)pid);
    int n = p->name[0] ? snprintf(buf, len, "%s", p->name)
                       : snprintf(buf, len, "fn@%p", (void *)(uintptr_t)p->fn);
    proc_release(p, 1);
    return n;
}

int weft_proc_name(weft_pid pid, char *buf, size_t len)
{
    if (!buf || len == 0)
        return weft__misuse(-EINVAL, "weft_proc_name: no buffer");
    WEFT__FROM_ANYWHERE(proc_name(pid, buf, len));
}

/* Drops n references taken through handle (which may differ from p->pid
 * while p is being recycled). */
static void release_handle(struct weft__proc *p, uint64_t handle, uint32_t n)
{
    if (weft__handle_release(NULL, handle, n))
        proc_free(NULL, p);
}

struct foreach_call {
    void (*fn)(struct weft__proc *p, void *arg);
    void *arg;
};

static void foreach_one(void *obj, uint64_t handle, void *arg)
{
    struct foreach_call *call = arg;
    call->fn(obj, call->arg);
    release_handle(obj, handle, 1);
}

void weft__proc_foreach(void (*fn)(struct weft__proc *p, void *arg), void *arg)
{
    struct foreach_call call = {fn, arg};
    weft__handle_foreach(WEFT__HANDLE_PROC, foreach_one, &call);
}

static void cancel_one(void *obj, uint64_t handle, void *arg)
{
    struct weft__proc *p = obj;
    weft__wait_cancel(&p->waiter);
    release_handle(p, handle, 1);
}

void weft__proc_cancel_all(void)
{
    weft__handle_foreach(WEFT__HANDLE_PROC, cancel_one, NULL);
}

/* A process that ended and was never joined: take the join right, as a join
 * would, and let the block go. */
static void reap_one(void *obj, uint64_t handle, void *arg)
{
    struct weft__proc *p = obj;
    unsigned st = atomic_load(&p->join_state);
    do {
        if (st & (WEFT__JOIN_DETACHED | WEFT__JOIN_JOINING | WEFT__JOIN_JOINED)) {
            release_handle(p, handle, 1); /* someone else holds the join right */
            return;
        }
    } while (!atomic_compare_exchange_weak(&p->join_state, &st, st | WEFT__JOIN_JOINED));
    release_handle(p, handle, 2);
}

void weft__proc_reap_all(void)
{
    weft__handle_foreach(WEFT__HANDLE_PROC, reap_one, NULL);
}

int weft__proc_layer_init(void)
{
    install_hooks();
    return 0;
}

void weft__before_block(struct weft__proc *p)
{
    void (*fn)(void *arg) = p->before_block;
    p->before_block = NULL;
    fn(p->before_block_arg);
}
