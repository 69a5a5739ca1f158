/* actor.c: stackless actors, run by one runner process per worker.
 *
 * An actor is 80 bytes (struct weft__actor) from a slab, plus its handle
 * slot: no stack. When a message reaches an idle actor, the sender marks it
 * QUEUED (under the actor's mailbox lock) and puts it in the run queue of
 * the worker it runs on; that worker's runner, a process pinned to it,
 * takes actors from its queue and calls the handler once per message, on
 * its own stack. A runner with nothing to do steals half of another's
 * queue, or sleeps; a sender that queues an actor wakes the runner of its
 * queue if it sleeps, and a sleeping runner elsewhere when the queue holds
 * more than one actor (work for a second core).
 *
 * A runner drains at most BUDGET messages of one actor before it moves to
 * the next, and yields its worker every YIELD_EVERY actors, so that neither
 * other actors nor the worker's processes starve.
 *
 * While a handler runs, its runner acts as the actor: weft_self, sends,
 * links and monitors name the actor, and waits fail with -EPERM (no_block).
 */
#include <stdio.h>
#include <string.h>

#include "actor.h"

enum {
    BUDGET = 64,        /* messages of one actor per turn */
    YIELD_EVERY = 32,   /* actors run between two yields of the worker */
    LIFO_MAX = 1024,    /* actors queued in front in a row */
    SLAB_CHUNK = 64 * 1024,
    CACHE_MAX = 1024,
    CACHE_MOVE = 512
};

/* An idle actor costs its block and its handle slot: at most 128 bytes. */
_Static_assert(sizeof(struct weft__actor) + sizeof(struct weft__handle_slot) <= 128,
               "an idle actor outgrows 128 bytes");

/* One per worker: its run queue, its runner, its slab cache. */
struct runner {
    _Alignas(WEFT__CACHELINE) weft__spinlock lock;
    struct weft__actor *head, *tail;   /* run queue, under lock */
    atomic_uint len;                   /* written under lock, read without */
    bool sleeping;                     /* the runner waits (ticket), under lock */
    unsigned ticket;
    struct weft__proc *proc;           /* the runner */
    unsigned id;
    unsigned lifo_streak;              /* actors queued in front in a row, under lock */
    uint32_t uncounted;                /* taken from the running actor, not yet in received */
    bool exit_requested;               /* weft_exit in the running handler */
    intptr_t exit_reason;
    struct weft__actor *free;          /* slab cache (the runner's worker only) */
    uint32_t nfree;
};

static struct {
    pthread_mutex_t start_lock;
    atomic_bool started;
    struct runner *runners;            /* [n] */
    void *runners_mem;
    unsigned n;
    atomic_uint sleepers;              /* runners asleep */
    atomic_uint next_outside;          /* round robin for outside threads */
    weft__spinlock slab_lock;          /* the shared slab: */
    struct weft__actor *free;          /* free actors */
    char *carve, *carve_end;           /* the chunk being cut */
    void *chunks;                      /* every chunk, linked through its first word */
} actors = {.start_lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- slab ------------------------------------------------------------------------------ */

static struct weft__actor *slab_take_shared(void)
{
    weft__spin_lock(&actors.slab_lock);
    struct weft__actor *a = actors.free;
    if (a) {
        actors.free = a->next;
    } else {
        if (!actors.carve || (size_t)(actors.carve_end - actors.carve) < sizeof *a) {
            weft__spin_unlock(&actors.slab_lock);
            void *chunk = weft__alloc(SLAB_CHUNK);
            if (!chunk)
                return NULL;
            weft__spin_lock(&actors.slab_lock);
            *(void **)chunk = actors.chunks;
            actors.chunks = chunk;
            actors.carve = (char *)chunk + 16;
            actors.carve_end = (char *)chunk + SLAB_CHUNK;
        }
        a = (struct weft__actor *)(void *)actors.carve;
        actors.carve += sizeof *a;
    }
    weft__spin_unlock(&actors.slab_lock);
    return a;
}

static struct runner *my_runner(void)
{
    struct weft__worker *w = weft__worker_current();
    return w && atomic_load_explicit(&actors.started, memory_order_acquire) ? &actors.runners[w->id]
                                                                           : NULL;
}

static struct weft__actor *slab_alloc(void)
{
    struct runner *r = my_runner();
    if (r && r->free) {
        struct weft__actor *a = r->free;
        r->free = a->next;
        r->nfree--;
        return a;
    }
    return slab_take_shared();
}

static void slab_free(struct weft__actor *a)
{
    struct runner *r = my_runner();
    if (r) {
        a->next = r->free;
        r->free = a;
        if (++r->nfree < CACHE_MAX)
            return;
        /* Too many here: half goes back to the shared list. */
        struct weft__actor *first = r->free, *last = first;
        for (int i = 1; i < CACHE_MOVE; i++)
            last = last->next;
        r->free = last->next;
        r->nfree -= CACHE_MOVE;
        weft__spin_lock(&actors.slab_lock);
        last->next = actors.free;
        actors.free = first;
        weft__spin_unlock(&actors.slab_lock);
        return;
    }
    weft__spin_lock(&actors.slab_lock);
    a->next = actors.free;
    actors.free = a;
    weft__spin_unlock(&actors.slab_lock);
}

void weft__actor_release(struct weft__actor *a)
{
    struct weft__worker *w = weft__worker_current();
    if (weft__handle_release(w ? &w->handles : NULL, a->pid, 1))
        slab_free(a);
}

weft_pid weft__actor_pid(const struct weft__actor *a)
{
    return a->pid;
}

/* ---- run queues -------------------------------------------------------------------------- */

static void queue_push(struct runner *r, struct weft__actor *a)
{
    a->next = NULL;
    if (r->tail)
        r->tail->next = a;
    else
        r->head = a;
    r->tail = a;
    atomic_store_explicit(&r->len, atomic_load_explicit(&r->len, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void queue_push_front(struct runner *r, struct weft__actor *a)
{
    a->next = r->head;
    r->head = a;
    if (!r->tail)
        r->tail = a;
    atomic_store_explicit(&r->len, atomic_load_explicit(&r->len, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static struct weft__actor *queue_pop(struct runner *r)
{
    struct weft__actor *a = r->head;
    if (a) {
        r->head = a->next;
        if (!r->head)
            r->tail = NULL;
        atomic_store_explicit(&r->len, atomic_load_explicit(&r->len, memory_order_relaxed) - 1,
                              memory_order_relaxed);
    }
    return a;
}

/* With r locked: if its runner sleeps, returns its ticket to wake. */
static bool take_sleeper(struct runner *r, unsigned *ticket)
{
    if (!r->sleeping)
        return false;
    r->sleeping = false;
    *ticket = r->ticket;
    return true;
}

/* Wakes one sleeping runner other than r's, to steal. */
static void wake_thief(struct runner *r)
{
    for (unsigned k = 1; k < actors.n; k++) {
        struct runner *o = &actors.runners[(r->id + k) % actors.n];
        unsigned ticket;
        weft__spin_lock(&o->lock);
        bool wake = take_sleeper(o, &ticket);
        weft__spin_unlock(&o->lock);
        if (wake) {
            weft__wake(&o->proc->waiter, ticket, 0);
            return;
        }
    }
}

void weft__actor_schedule(struct weft__actor *a)
{
    struct weft__worker *w = weft__worker_current();
    unsigned id = w ? w->id
                    : atomic_fetch_add_explicit(&actors.next_outside, 1, memory_order_relaxed) % actors.n;
    struct runner *r = &actors.runners[id];
    /* Queued by a handler on this worker: it runs next (its data is hot, and
     * a tree of actors unfolds depth first, its memory bounded by its depth),
     * up to LIFO_MAX in a row, so that the others are not starved. */
    bool lifo = w && w->current && w->current->acting;
    unsigned ticket;
    weft__spin_lock(&r->lock);
    if (lifo && r->lifo_streak < LIFO_MAX) {
        queue_push_front(r, a);
        r->lifo_streak++;
    } else {
        queue_push(r, a);
        r->lifo_streak = 0;
    }
    bool wake = take_sleeper(r, &ticket);
    bool surplus = atomic_load_explicit(&r->len, memory_order_relaxed) > 1;
    weft__spin_unlock(&r->lock);
    if (wake)
        weft__wake(&r->proc->waiter, ticket, 0);
    else if (surplus && atomic_load_explicit(&actors.sleepers, memory_order_relaxed) > 0)
        wake_thief(r);
}

/* Takes about half of another runner's queue: returns one actor to run and
 * queues the rest at r. */
static struct weft__actor *steal(struct runner *r)
{
    for (unsigned k = 1; k < actors.n; k++) {
        struct runner *v = &actors.runners[(r->id + k) % actors.n];
        if (atomic_load_explicit(&v->len, memory_order_relaxed) == 0)
            continue;
        weft__spin_lock(&v->lock);
        uint32_t take = (atomic_load_explicit(&v->len, memory_order_relaxed) + 1) / 2;
        struct weft__actor *got = NULL, *last = NULL;
        for (uint32_t i = 0; i < take; i++) {
            struct weft__actor *a = queue_pop(v);
            if (last)
                last->next = a;
            else
                got = a;
            last = a;
        }
        weft__spin_unlock(&v->lock);
        if (!got)
            continue;
        last->next = NULL;
        if (got->next) {
            weft__spin_lock(&r->lock);
            for (struct weft__actor *a = got->next, *next; a; a = next) {
                next = a->next;
                queue_push(r, a);
            }
            weft__spin_unlock(&r->lock);
        }
        return got;
    }
    return NULL;
}

/* ---- running an actor ----------------------------------------------------------------------- */

static void actor_die(struct weft__actor *a, intptr_t reason)
{
    weft__mbox_die(&a->mbox, a->pid, reason, NULL);
    if (a->on_exit)
        a->on_exit(a->state, reason);
    weft__actor_release(a); /* its life's reference */
}

/* Puts the unprocessed rest of a batch (rest to last) back in front of a's
 * mailbox. */
static void put_back(struct weft__mbox *mb, struct weft__msg *rest, struct weft__msg *last)
{
    weft__spin_lock(&mb->lock);
    last->next = mb->head;
    mb->head = rest;
    if (!mb->tail)
        mb->tail = last;
    weft__spin_unlock(&mb->lock);
}

/* Runs a's handler on up to BUDGET messages; returns with a idle, queued
 * again, or ended. */
static void run_actor(struct runner *r, struct weft__proc *self, struct weft__actor *a)
{
    struct weft__mbox *mb = &a->mbox;
    self->acting = a;
    self->no_block = true;
    unsigned budget = BUDGET;
    for (;;) {
        weft__spin_lock(&mb->lock);
        if (r->uncounted) {
            atomic_store_explicit(&mb->received,
                                  atomic_load_explicit(&mb->received, memory_order_relaxed) +
                                      r->uncounted,
                                  memory_order_relaxed);
            r->uncounted = 0;
        }
        struct weft__msg *batch = mb->head, *batch_tail = mb->tail;
        if (!batch) {
            mb->flags &= ~(uint32_t)WEFT__MBOX_QUEUED;
            weft__spin_unlock(&mb->lock);
            break;
        }
        if (budget == 0) {
            weft__spin_unlock(&mb->lock);
            weft__spin_lock(&r->lock);
            queue_push(r, a);
            weft__spin_unlock(&r->lock);
            break;
        }
        mb->head = mb->tail = NULL;
        weft__spin_unlock(&mb->lock);
        while (batch) {
            struct weft__msg *m = batch;
            batch = m->next;
            m->next = NULL;
            /* Counted at once where a sender may wait for room; else with
             * the next lock, so that handlers do not write the line senders
             * lock at each message. */
            if (mb->bounded)
                weft__mbox_taken(mb);
            else
                r->uncounted++;
            intptr_t reason;
            if (m->flags & WEFT__MSG_SIGNAL) {
                bool ends = weft__actor_signal(a, m, &reason);
                if (ends || !(m->tag == WEFT_TAG_EXIT)) {
                    weft__msg_free(m);
                    if (ends) {
                        weft__msg_free_list(batch);
                        actor_die(a, reason);
                        goto out;
                    }
                    continue;
                }
            }
            if (m->tag == WEFT_TAG_DOWN && !weft__watch_take(mb->ext, m->ref, NULL)) {
                weft__msg_free(m); /* its monitor is over */
                continue;
            }
            weft_msg view;
            weft__msg_expose(m, &view);
            a->fn(a->state, &view);
            if (view.block_ == m) /* neither taken nor freed by the handler */
                weft__msg_free(m);
            if (r->exit_requested) {
                r->exit_requested = false;
                weft__msg_free_list(batch);
                actor_die(a, r->exit_reason);
                goto out;
            }
            if (--budget == 0 && batch) {
                put_back(mb, batch, batch_tail);
                break;
            }
        }
    }
out:
    r->exit_requested = false; /* also when on_exit called weft_exit */
    r->uncounted = 0;
    self->acting = NULL;
    self->no_block = false;
}

uint32_t weft__actor_uncounted(struct weft__proc *p)
{
    return actors.runners[p->worker].uncounted;
}

void weft__actor_exit_request(struct weft__proc *p, intptr_t reason)
{
    struct runner *r = &actors.runners[p->worker];
    r->exit_requested = true;
    r->exit_reason = reason;
}

static int runner_sleep(struct runner *r, struct weft__proc *self)
{
    weft__spin_lock(&r->lock);
    if (r->head) {
        weft__spin_unlock(&r->lock);
        return 0;
    }
    r->sleeping = true;
    r->ticket = weft__wait_open(&self->waiter);
    weft__spin_unlock(&r->lock);
    atomic_fetch_add_explicit(&actors.sleepers, 1, memory_order_relaxed);
    weft__wait_why(&self->waiter, WEFT__WHY_ACTORS, 0);
    int err = weft__wait(&self->waiter, WEFT_FOREVER);
    atomic_fetch_sub_explicit(&actors.sleepers, 1, memory_order_relaxed);
    weft__spin_lock(&r->lock);
    r->sleeping = false;
    weft__spin_unlock(&r->lock);
    return err;
}

static intptr_t runner_main(void *arg)
{
    struct runner *r = arg;
    struct weft__proc *self = weft__proc_current();
    unsigned ran = 0;
    while (atomic_load_explicit(&weft__rt.state, memory_order_relaxed) == WEFT__RT_RUNNING) {
        weft__spin_lock(&r->lock);
        struct weft__actor *a = queue_pop(r);
        weft__spin_unlock(&r->lock);
        if (!a)
            a = steal(r);
        if (!a) {
            runner_sleep(r, self);
            continue;
        }
        run_actor(r, self, a);
        if (++ran % YIELD_EVERY == 0)
            weft_yield();
    }
    return 0;
}

/* Starts the runners with the first actor (again after a failed start:
 * runners already running keep their place). */
static int ensure_runners(void)
{
    if (weft__likely(atomic_load_explicit(&actors.started, memory_order_acquire)))
        return 0;
    pthread_mutex_lock(&actors.start_lock);
    int err = 0;
    if (atomic_load_explicit(&actors.started, memory_order_relaxed))
        goto out;
    unsigned n = weft__rt.nworkers;
    if (!actors.runners_mem) {
        void *mem = weft__calloc(n * sizeof(struct runner) + WEFT__CACHELINE);
        if (!mem) {
            err = -ENOMEM;
            goto out;
        }
        struct runner *rs = (struct runner *)(((uintptr_t)mem + WEFT__CACHELINE - 1) &
                                              ~(uintptr_t)(WEFT__CACHELINE - 1));
        for (unsigned i = 0; i < n; i++)
            rs[i].id = i;
        actors.runners = rs;
        actors.runners_mem = mem;
        actors.n = n;
    }
    for (unsigned i = 0; i < n; i++) {
        struct runner *r = &actors.runners[i];
        if (r->proc)
            continue;
        weft_spawn_opts o;
        weft_spawn_opts_init(&o);
        char name[WEFT_NAME_MAX];
        snprintf(name, sizeof name, "weft-actors/%u", i);
        o.name = name;
        o.worker = (int)i;
        o.pinned = 1;
        o.detached = 1;
        weft_pid pid;
        if ((err = (weft_spawn)(&pid, runner_main, r, &o)) != 0)
            goto out;
        /* The runner may have run already (it sleeps: no actor exists to
         * be queued before started is set below). */
        struct weft__proc *p = weft__handle_acquire(pid, WEFT__HANDLE_PROC);
        if (!p) { /* it ran and ended at once: the runtime is stopping */
            err = -ECANCELED;
            goto out;
        }
        /* Not addressable: signals and messages to a runner drop. */
        weft__spin_lock(&p->mbox.lock);
        p->mbox.flags |= WEFT__MBOX_DEAD;
        weft__spin_unlock(&p->mbox.lock);
        r->proc = p; /* this reference is kept until the runtime stops */
    }
    atomic_store_explicit(&actors.started, true, memory_order_release);
out:
    pthread_mutex_unlock(&actors.start_lock);
    return err;
}

/* ---- spawning --------------------------------------------------------------------------- */

void weft_actor_opts_init(weft_actor_opts *opts)
{
    if (opts)
        memset(opts, 0, sizeof *opts);
}

static int spawn_actor(weft_pid *pid, weft_actor_fn fn, void *state, const weft_actor_opts *opts)
{
    if (atomic_load_explicit(&weft__rt.state, memory_order_relaxed) != WEFT__RT_RUNNING)
        return -ECANCELED;
    weft__det_point();
    int err = ensure_runners();
    if (err)
        return err;
    struct weft__actor *a = slab_alloc();
    if (!a)
        return -ENOMEM;
    weft__mbox_init(&a->mbox, WEFT__MBOX_ACTOR | (opts->trap_exits ? WEFT__MBOX_TRAP : 0));
    a->fn = fn;
    a->state = state;
    a->on_exit = opts->on_exit;
    a->next = NULL;
    struct weft__worker *w = weft__worker_current();
    err = weft__handle_alloc(w ? &w->handles : NULL, a, WEFT__HANDLE_ACTOR, 1, &a->pid);
    if (err) {
        slab_free(a);
        return err;
    }
    if (opts->name) {
        struct weft__mbox_ext *ext = weft__mbox_ext(&a->mbox);
        if (!ext)
            err = -ENOMEM;
        else
            snprintf(ext->label, sizeof ext->label, "%s", opts->name);
    }
    if (!err && opts->mailbox_capacity)
        err = weft__mbox_bound(&a->mbox, opts->mailbox_capacity);
    if (!err && opts->link)
        err = weft__link_spawned(&a->mbox, a->pid);
    if (err) {
        /* Nobody knows its pid yet: it ends without a trace. */
        if (a->mbox.ext)
            weft__mbox_ext_free(&a->mbox);
        weft__actor_release(a);
        return err;
    }
    if (pid)
        *pid = a->pid;
    return 0;
}

int weft_actor_spawn(weft_pid *pid, weft_actor_fn fn, void *state, const weft_actor_opts *opts)
{
    weft_actor_opts defaults;
    if (!opts) {
        weft_actor_opts_init(&defaults);
        opts = &defaults;
    }
    if (!fn)
        return weft__misuse(-EINVAL, "weft_actor_spawn: fn is NULL");
    if (opts->link && !weft__in_proc())
        return weft__misuse(-EPERM, "weft_actor_spawn: link from outside any process");
    WEFT__FROM_ANYWHERE(spawn_actor(pid, fn, state, opts));
}

/* ---- the end -------------------------------------------------------------------------------- */

static void stop_one(void *obj, uint64_t handle, void *arg)
{
    struct weft__actor *a = obj;
    weft__spin_lock(&a->mbox.lock);
    bool dead = a->mbox.flags & WEFT__MBOX_DEAD;
    weft__spin_unlock(&a->mbox.lock);
    if (!dead) {
        weft__mbox_die(&a->mbox, a->pid, WEFT_EXIT_SHUTDOWN, NULL);
        if (a->on_exit)
            a->on_exit(a->state, WEFT_EXIT_SHUTDOWN);
        weft__handle_release(NULL, handle, 1);
    }
    weft__handle_release(NULL, handle, 1);
}

void weft__actor_stop_all(void)
{
    if (!actors.runners_mem)
        return;
    weft__handle_foreach(WEFT__HANDLE_ACTOR, stop_one, NULL);
    for (unsigned i = 0; i < actors.n; i++)
        if (actors.runners[i].proc)
            weft__proc_release(actors.runners[i].proc, 1);
    /* Every actor is gone: the slab goes back whole. */
    while (actors.chunks) {
        void *next = *(void **)actors.chunks;
        weft__free(actors.chunks, SLAB_CHUNK);
        actors.chunks = next;
    }
    actors.free = NULL;
    actors.carve = actors.carve_end = NULL;
    weft__free(actors.runners_mem, actors.n * sizeof(struct runner) + WEFT__CACHELINE);
    actors.runners = NULL;
    actors.runners_mem = NULL;
    actors.n = 0;
    atomic_store_explicit(&actors.sleepers, 0, memory_order_relaxed);
    atomic_store_explicit(&actors.started, false, memory_order_release);
}
