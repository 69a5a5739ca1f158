/* internal.h: declarations shared by the files of libweft, layer by layer.
 *
 * Layers, bottom up (each knows only those above it in this file):
 *   util (alloc, strict, clock, random, spinlock, futex)
 *   arch context      src/arch/context.h
 *   stack             pooled stacks with guard pages
 *   handle            generation-checked handle table
 *   timer             per-worker timer heaps
 *   runq, sched       run queues, workers, switching, parking
 *   det               the deterministic schedules' choices (sched.c acts on them)
 *   wait              blocking and waking a process or an outside thread
 *   proc, runtime     the public process and runtime calls
 */
#ifndef WEFT_INTERNAL_H
#define WEFT_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft.h"
#include "arch/context.h"

/* ---- util ------------------------------------------------------------------ */

#define WEFT__CACHELINE 64
#define WEFT__PAGE 4096

#define weft__likely(x) __builtin_expect(!!(x), 1)
#define weft__unlikely(x) __builtin_expect(!!(x), 0)
#define weft__container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Broken internal invariants abort, in every build. */
#define weft__assert(cond) \
    ((cond) ? (void)0 : weft__panic("%s:%d: assertion failed: %s", __FILE__, __LINE__, #cond))

#if defined(__SANITIZE_ADDRESS__)
#define WEFT__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT__ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT__TSAN 1
#endif
#endif

/* alloc.c: every heap allocation of weft goes through the user's hook. */
void *weft__alloc(size_t size);
void *weft__calloc(size_t size);
void weft__free(void *ptr, size_t size);

/* strict.c: misuse returns err, or aborts with a backtrace under WEFT_STRICT=1.
 * The message names what was wrong; it is printed only in strict mode. */
int weft__misuse(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void weft__panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* random.c: the one seeded source behind scheduling choices. */
uint64_t weft__rand_next(uint64_t *state);
uint64_t weft__rand_seed(uint64_t seed, uint64_t stream);

static inline void weft__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* A test-and-set lock for critical sections of a few instructions. */
typedef struct {
    atomic_uint locked;
} weft__spinlock;
void weft__spin_lock_slow(weft__spinlock *l);
static inline void weft__spin_lock(weft__spinlock *l)
{
    if (weft__unlikely(atomic_exchange_explicit(&l->locked, 1, memory_order_acquire)))
        weft__spin_lock_slow(l);
}
static inline void weft__spin_unlock(weft__spinlock *l)
{
    atomic_store_explicit(&l->locked, 0, memory_order_release);
}

/* clock.c: the OS's monotonic clock, even in deterministic mode (weft_now
 * is then virtual): for the waits of OS threads. */
int64_t weft__clock_real(void);
/* A deadline of weft_now's clock, as a deadline of the real one (the same
 * value unless deterministic mode makes weft_now virtual). */
int64_t weft__real_deadline(int64_t deadline);

/* futex on a 32-bit word; deadline is absolute real monotonic ns or -1. */
void weft__futex_wait(atomic_uint *word, unsigned expected, int64_t deadline);
void weft__futex_wake(atomic_uint *word, int count);

/* ---- stack ----------------------------------------------------------------- */

/* Stacks come in power-of-two classes from WEFT_STACK_MIN to WEFT_STACK_MAX.
 * A stack is [lo, lo + size); its lowest page is the guard page. */
enum { WEFT__STACK_CLASSES = 15, WEFT__STACK_CACHE = 32 };

/* A worker's private cache of free stacks, per class; no locking. */
struct weft__stack_cache {
    uint32_t count[WEFT__STACK_CLASSES];
    void *lo[WEFT__STACK_CLASSES][WEFT__STACK_CACHE];
};

/* The class of a requested size, or -EINVAL (too small) / -E2BIG (too large). */
int weft__stack_class(size_t size);
size_t weft__stack_class_size(int cls);
/* Takes a stack (cache may be NULL from outside threads). NULL: out of memory. */
void *weft__stack_get(struct weft__stack_cache *cache, int cls);
void weft__stack_put(struct weft__stack_cache *cache, int cls, void *lo);
void weft__stack_cache_flush(struct weft__stack_cache *cache);
/* Unmaps every stack; all must have been returned. */
void weft__stack_pool_term(void);
/* How guard pages are made: "guard-install", "mprotect" or "none". */
const char *weft__stack_guard_kind(void);

/* ---- handle ---------------------------------------------------------------- */

enum weft__handle_type {
    WEFT__HANDLE_PROC = 1,
    WEFT__HANDLE_CHAN = 2,
    WEFT__HANDLE_ACTOR = 3,
    WEFT__HANDLE_DVAR = 4,
    WEFT__HANDLE_STREAM = 5,
    WEFT__HANDLE_READER = 6,  /* a stream's reader */
    WEFT__HANDLE_GRAPH = 7
};

/* A worker's private cache of free slot indices. */
struct weft__handle_cache {
    uint32_t count;
    uint32_t index[64];
};

/* Allocates a handle naming obj with refs references. Returns 0 or -ENOMEM. */
int weft__handle_alloc(struct weft__handle_cache *cache, void *obj, int type, uint32_t refs,
                       uint64_t *handle);
/* Takes a reference: returns the object, or NULL if the handle is stale,
 * forged, of another type or has no references left. */
void *weft__handle_acquire(uint64_t handle, int type);
/* weft__handle_acquire for a handle of either type; stores which in *type. */
void *weft__handle_acquire_any(uint64_t handle, int type_a, int type_b, int *type);
/* handle named a live object of this runtime once, and no longer does (a
 * stale handle, as opposed to a forged one). */
bool weft__handle_was_live(uint64_t handle);
/* Takes a reference that its holder keeps (weft_chan_retain): 0, -EBADF as
 * weft__handle_acquire, or -EOVERFLOW once WEFT__HANDLE_KEPT_MAX are held,
 * which leaves room below the count's limit for the references that calls
 * in progress take and give back. */
int weft__handle_acquire_kept(uint64_t handle, int type);
#define WEFT__HANDLE_KEPT_MAX (0xFFFFFFu - 65536)
/* The table's slots, exposed for the inline lookup below. */
enum {
    WEFT__HANDLE_CHUNK_BITS = 12,
    WEFT__HANDLE_DIR_SIZE = 1 << 16,
    WEFT__HANDLE_REFS_MASK = 0xFFFFFF,
    WEFT__HANDLE_TYPE_SHIFT = 24
};
struct weft__handle_slot {
    _Atomic uint64_t state;  /* generation << 32 | type << 24 | references */
    _Atomic(void *) obj;
    uint32_t next_free;      /* free list link, under the table's lock */
    _Atomic uint32_t wrapped; /* the reuse count went round (in this runtime) */
};
extern _Atomic(struct weft__handle_slot *) weft__handle_dir[WEFT__HANDLE_DIR_SIZE];

static inline struct weft__handle_slot *weft__handle_slot_at(uint32_t index)
{
    if (index >> WEFT__HANDLE_CHUNK_BITS >= WEFT__HANDLE_DIR_SIZE) /* a forged handle */
        return NULL;
    struct weft__handle_slot *chunk = atomic_load_explicit(
        &weft__handle_dir[index >> WEFT__HANDLE_CHUNK_BITS], memory_order_acquire);
    return chunk ? &chunk[index & ((1u << WEFT__HANDLE_CHUNK_BITS) - 1)] : NULL;
}

/* The object named by handle, without taking a reference, or NULL. Only for
 * type-stable objects (their memory stays an object of that type while the
 * runtime runs), which the caller must re-check under their own lock. */
static inline void *weft__handle_peek(uint64_t handle, int type)
{
    struct weft__handle_slot *s = weft__handle_slot_at((uint32_t)handle);
    if (!s || (uint32_t)handle == 0)
        return NULL;
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    if (st >> 32 != handle >> 32 || (st & WEFT__HANDLE_REFS_MASK) == 0 ||
        (int)((st >> WEFT__HANDLE_TYPE_SHIFT) & 0xFF) != type)
        return NULL;
    /* The slot may be freed and reused for another type between the two
     * loads: the generation read again after obj tells (every free changes
     * it). Only the generation and type are compared: the references may
     * change meanwhile, through retains and releases by other threads,
     * and the handle is no less live for that. */
    void *obj = atomic_load_explicit(&s->obj, memory_order_acquire);
    uint64_t again = atomic_load_explicit(&s->state, memory_order_relaxed);
    if (again >> WEFT__HANDLE_TYPE_SHIFT != st >> WEFT__HANDLE_TYPE_SHIFT ||
        (again & WEFT__HANDLE_REFS_MASK) == 0)
        return NULL;
    return obj;
}
/* Takes one more reference on a handle already held. */
void weft__handle_retain(uint64_t handle);
/* Drops n references; returns true when they were the last, in which case the
 * slot is free again and the caller destroys the object. */
bool weft__handle_release(struct weft__handle_cache *cache, uint64_t handle, uint32_t n);
/* Calls fn on each live object of a type with one reference taken for it,
 * which fn must release. */
void weft__handle_foreach(int type, void (*fn)(void *obj, uint64_t handle, void *arg), void *arg);
void weft__handle_cache_flush(struct weft__handle_cache *cache);
int weft__handle_table_init(void);
void weft__handle_table_term(void);

/* ---- timer ----------------------------------------------------------------- */

struct weft__timer_heap;

/* A timer lives inside its owner (a process); the heap only points to it. */
struct weft__timer {
    int64_t when;                             /* absolute deadline */
    uint32_t index;                           /* position in the heap */
    _Atomic(struct weft__timer_heap *) heap;  /* heap holding it, or NULL */
    struct weft__timer_heap *home;            /* heap it was last armed in; only
                                                 its owner (who arms and cancels)
                                                 writes it */
    void (*fire)(struct weft__timer *);       /* called with the heap locked */
};

/* A heap entry keeps its timer's deadline beside it: comparisons read the
 * array only, not the timers (a server's heap holds one per connection). */
struct weft__timer_slot {
    int64_t when;
    struct weft__timer *timer;
};

struct weft__timer_heap {
    weft__spinlock lock;
    struct weft__timer_slot *items; /* 4-ary min-heap on when */
    uint32_t count, capacity;
    _Atomic int64_t next_when;   /* earliest deadline, INT64_MAX when empty */
};

void weft__timer_heap_init(struct weft__timer_heap *h);
void weft__timer_heap_term(struct weft__timer_heap *h);
/* Arms t in h. Returns 0 or -ENOMEM. */
int weft__timer_add(struct weft__timer_heap *h, struct weft__timer *t, int64_t when);
/* Disarms t if armed. When it returns, t's fire callback is not running.
 * Only t's owner calls it, never concurrently with weft__timer_add on t. */
void weft__timer_cancel(struct weft__timer *t);
/* Fires every timer of h due at now; returns how many fired. */
int weft__timer_run(struct weft__timer_heap *h, int64_t now);
static inline int64_t weft__timer_next(struct weft__timer_heap *h)
{
    return atomic_load_explicit(&h->next_when, memory_order_acquire);
}

/* ---- wait: the one way anything blocks -------------------------------------- */

struct weft__proc;
struct weft__worker;

/* A waiter is long-lived (inside a process, or per outside thread), so a wake
 * racing with the end of a wait never touches freed memory. Its state is
 * (sequence << 2) | phase; each wait gets a new sequence, and a waker names the
 * wait it means by its ticket (the state while open), so a late wake can never
 * claim a later wait. Exactly one wake, timeout or cancellation claims a wait. */
enum { WEFT__WAIT_OPEN = 1, WEFT__WAIT_CLAIMED = 2, WEFT__WAIT_PHASE = 3 };

/* What a wait is for, shown by weft_dump and the deadlock report. */
enum weft__why {
    WEFT__WHY_NONE,
    WEFT__WHY_SLEEP,      /* obj unused */
    WEFT__WHY_JOIN,       /* obj: the pid joined */
    WEFT__WHY_CHAN_SEND,  /* obj: the channel */
    WEFT__WHY_CHAN_RECV,
    WEFT__WHY_SELECT,     /* cases, ncases: the select's array */
    WEFT__WHY_RECV,       /* obj unused: a receive from its own mailbox */
    WEFT__WHY_MBOX_SEND,  /* obj: the pid whose full mailbox it waits on */
    WEFT__WHY_ACTORS,     /* an actor runner waiting for actors to run */
    WEFT__WHY_FD,         /* obj: the file descriptor */
    WEFT__WHY_OFFLOAD     /* obj unused: weft_offload waits for its function */
};

struct weft__waiter {
    atomic_uint state;        /* sequence << 2 | phase */
    int result;               /* written by the claimer before the wake-up */
    struct weft__proc *proc;  /* the process waiting, or NULL for a thread */
    atomic_uint futex;        /* outside threads: 1 once woken */
    struct weft__waiter *next_thread, *prev_thread; /* waiting threads (shutdown) */
    /* Diagnostics, written by the waiting side before it waits, read
     * racily (relaxed) by weft_dump. */
    atomic_int why;           /* enum weft__why */
    _Atomic uint64_t why_obj;
    _Atomic(const weft_case *) why_cases;
    atomic_size_t why_ncases;
    int64_t why_deadline;     /* the wait's deadline (-1: none) */
};

static inline void weft__wait_why(struct weft__waiter *w, enum weft__why why, uint64_t obj)
{
    atomic_store_explicit(&w->why, (int)why, memory_order_relaxed);
    atomic_store_explicit(&w->why_obj, obj, memory_order_relaxed);
}

/* link.c: the waiting side of the exit signals' barrier. A killer sets
 * kill_pending and then runs a process-wide barrier (membarrier) before it
 * looks at the wait, so that a waiter needs only a compiler barrier between
 * opening its wait and reading kill_pending; where membarrier is missing,
 * waiters take a full fence instead. */
extern atomic_bool weft__kill_fence_full;
static inline void weft__kill_fence(void)
{
    if (weft__unlikely(atomic_load_explicit(&weft__kill_fence_full, memory_order_relaxed)))
        atomic_thread_fence(memory_order_seq_cst);
    else
        atomic_signal_fence(memory_order_seq_cst);
}
/* Sets up the barrier (at the runtime's start). */
void weft__kill_barrier_init(void);

/* The waiter of the calling process or thread. */
struct weft__waiter *weft__waiter_self(void);
/* Opens a new wait and returns its ticket. Call before publishing the waiter
 * (with the ticket) to anything that may wake it. */
unsigned weft__wait_open(struct weft__waiter *w);
/* Closes an opened wait without blocking, when the caller decides not to wait
 * after all (a wait that was already claimed is consumed first). Every opened
 * wait ends in weft__wait or in this: an open wait left behind would be
 * claimed by the shutdown, resuming a process that is not blocked. */
void weft__wait_abandon(struct weft__waiter *w, unsigned ticket);
/* Blocks until the wait is claimed; returns the claimer's result, -ETIMEDOUT
 * at the deadline, or -ECANCELED when the runtime shuts down. */
int weft__wait(struct weft__waiter *w, int64_t deadline);
/* weft__wait, for a caller that knows the worker it runs on (NULL outside). */
int weft__wait_on(struct weft__worker *worker, struct weft__waiter *w, int64_t deadline);
/* Claims the wait named by ticket with result and wakes its owner; a woken
 * process runs next on the caller's worker. false: that wait is over. */
bool weft__wake(struct weft__waiter *w, unsigned ticket, int result);
/* weft__wake in two steps, for a waker that must finish its hand-over (copy
 * a message into the waiter's buffer) between them: after a successful
 * claim the waiter stays blocked until weft__wait_resume. */
static inline bool weft__wait_claim(struct weft__waiter *w, unsigned ticket, int result)
{
    unsigned expected = ticket;
    unsigned claimed = (ticket & ~(unsigned)WEFT__WAIT_PHASE) | WEFT__WAIT_CLAIMED;
    if (!atomic_compare_exchange_strong_explicit(&w->state, &expected, claimed,
                                                 memory_order_acq_rel, memory_order_relaxed))
        return false;
    w->result = result;
    return true;
}
void weft__wait_resume(struct weft__waiter *w);
/* weft__wait_resume from a caller running on worker self_worker (NULL outside). */
void weft__wait_resume_from(struct weft__worker *self_worker, struct weft__waiter *w);
/* The same, but a process goes to the back of the run queue, not to
 * run-next (the poller wakes many at once). */
void weft__wait_resume_queued(struct weft__worker *self_worker, struct weft__waiter *w);
/* Claims whatever wait w is in, with -ECANCELED (runtime shutdown). */
void weft__wait_cancel(struct weft__waiter *w);
/* Cancels the waits of every waiting outside thread. */
void weft__wait_cancel_threads(void);

/* ---- sched ----------------------------------------------------------------- */

enum { WEFT__RUNQ_SIZE = 256 };

/* A bounded ring: the owner pushes at tail (or at head) and pops at head;
 * thieves take from head. head, (tag << 32) | index, is changed only by
 * CAS; tail only by the owner. */
struct weft__runq {
    _Alignas(WEFT__CACHELINE) _Atomic uint64_t head;
    _Alignas(WEFT__CACHELINE) atomic_uint tail;
    _Alignas(WEFT__CACHELINE) _Atomic(struct weft__proc *) slot[WEFT__RUNQ_SIZE];
};

void weft__runq_init(struct weft__runq *q);
bool weft__runq_push(struct weft__runq *q, struct weft__proc *p);          /* owner */
bool weft__runq_push_front(struct weft__runq *q, struct weft__proc *p);    /* owner */
struct weft__proc *weft__runq_pop(struct weft__runq *q);                   /* owner */
/* Owner: moves half of a full queue plus p into batch[]; returns how many. */
uint32_t weft__runq_spill(struct weft__runq *q, struct weft__proc *p,
                          struct weft__proc **batch);
/* Thief: moves about half of victim's items into q (empty, owned by the
 * caller) and returns one of them to run, or NULL. */
struct weft__proc *weft__runq_steal(struct weft__runq *q, struct weft__runq *victim);
uint32_t weft__runq_len(struct weft__runq *q);

/* What the context that was just switched away from asked to happen to it,
 * done by the next context once the old one's registers are saved. */
enum weft__after {
    WEFT__AFTER_NONE,
    WEFT__AFTER_YIELD,  /* requeue it */
    WEFT__AFTER_BLOCK,  /* release it to whoever woke it */
    WEFT__AFTER_EXIT,   /* free its stack and call the exit hook */
    WEFT__AFTER_SPAWN   /* it spawned the new current one: it runs next */
};

/* A list of processes threaded through weft__proc.next. */
struct weft__plist {
    struct weft__proc *head, *tail;
};

/* One worker: an OS thread that runs processes. Fields written by other
 * threads are atomic; the rest belong to the worker's own thread. */
struct weft__worker {
    struct weft__runq runq;                    /* stealable FIFO */
    _Alignas(WEFT__CACHELINE) _Atomic(struct weft__proc *) runnext; /* LIFO slot */
    atomic_uint tick;                          /* counts scheduling decisions */
    unsigned runnext_streak;                   /* picks from run-next in a row */
    unsigned front_run;                        /* picks not from the runq's back, in a row */
    unsigned front_pending;                    /* front pushes not popped yet (about) */

    _Alignas(WEFT__CACHELINE) struct weft__proc *current; /* running process or NULL */
    struct weft__proc *prev;                   /* context just left, see after */
    struct weft__proc *handoff;                /* picked, still on another CPU: the
                                                  scheduler context runs it next */
    enum weft__after after;
    struct weft__ctx sched_ctx;                /* the thread's own stack */
    unsigned id;
    uint64_t rng;
    struct weft__proc *steal_watch;            /* runnext seen at a victim... */
    unsigned steal_watch_tick;                 /* ...at this victim tick */
    bool spinning;

    struct weft__timer_heap timers;
    struct weft__stack_cache stacks;
    struct weft__handle_cache handles;
    struct weft__proc *free_procs;             /* cache of process blocks */
    struct weft__msg *free_msgs;               /* cache of small message blocks: */
    uint32_t free_msg_count;                   /* ...free_msgs holds this many */
    struct weft__msg *spare_msgs;              /* ...and a full batch, or NULL */
    uint32_t free_proc_count;
    atomic_long spawned, exited;               /* written by this worker only */

    /* Processes pinned to this worker wait here when runnable. */
    weft__spinlock inbox_lock;
    struct weft__plist inbox;
    atomic_uint inbox_len;

    atomic_uint park_futex;                    /* 1: woken */
    atomic_bool parked;                        /* written under rt.idle_lock */
    int64_t park_until;                        /* its timeout while parked, under idle_lock */
    int64_t recheck_after;                     /* bound of a park while others are busy */
    bool polling;                              /* parked in poll_hook, under idle_lock */

    pthread_t thread;
    void *altstack;                            /* sigaltstack for overflows */
    void *thread_stack_lo;                     /* bounds of the OS thread stack */
    size_t thread_stack_size;
#ifdef WEFT__ASAN
    void *asan_fake_stack;
#endif
#ifdef WEFT__TSAN
    void *tsan_fiber;
#endif
};

/* The worker running the calling thread, or NULL outside the runtime.
 * Not inlined and never cached across a blocking call: a process may resume
 * on another worker (DESIGN.md 3.6). */
struct weft__worker *weft__worker_current(void);

/* The runtime: one per program at a time. */
/* TEARDOWN: weft_stop frees the runtime; no call may enter any more. */
enum { WEFT__RT_STOPPED, WEFT__RT_STARTING, WEFT__RT_RUNNING, WEFT__RT_STOPPING,
       WEFT__RT_TEARDOWN };

struct weft__runtime {
    atomic_int state;                          /* WEFT__RT_* */
    unsigned nworkers;
    struct weft__worker *workers;              /* cache-line aligned, inside... */
    void *workers_mem;                         /* ...this allocation */
    size_t default_stack;
    int default_stack_class;
    uint64_t seed;

    pthread_mutex_t global_lock;               /* the injection queue */
    struct weft__plist global;
    atomic_uint global_len;

    pthread_mutex_t idle_lock;                 /* parked workers */
    atomic_uint nidle, nspinning;

    atomic_long outside_spawned;               /* spawns from outside threads */
    atomic_long outside_active;                /* outside threads inside weft calls */
    atomic_long attached;                      /* weft_thread_attach count */
    atomic_long offload_waiting;               /* processes waiting in weft_offload */
    _Atomic int64_t next_wake;                 /* earliest timeout of a parked worker */
    atomic_uint stop_futex;                    /* bumped when a process exits while stopping */
    atomic_bool workers_exit;                  /* workers leave their loop */
    /* The proc layer's hooks: a process that could not get a stack ends
     * without running (unstarted_hook, on any thread); a process that ended
     * has left its stack (exit_hook, on the next context). */
    void (*unstarted_hook)(struct weft__worker *, struct weft__proc *);
    void (*exit_hook)(struct weft__worker *, struct weft__proc *);
    /* The debug layer's hook: the last worker is parking, with nothing to
     * run and no timer armed anywhere (called on that worker, no lock held).
     * true: look again in a while (an outside thread may still act). */
    bool (*stall_hook)(void);
    /* The io layer's poller (poll.c), set before the workers start; NULL
     * hooks: none. poll_hook waits for descriptor events until deadline
     * (0: only a look; INT64_MAX: no limit) and makes the processes they
     * wake runnable on w; poll_interrupt ends such a wait early;
     * poll_periodic is a busy worker's look (on a process's stack), taken
     * only when nobody has looked for a while. They return how many
     * processes they woke. poll_waiters counts waits on descriptors;
     * poller_busy: a parked worker waits in poll_hook (under idle_lock). */
    int (*poll_hook)(struct weft__worker *w, int64_t deadline);
    int (*poll_periodic)(struct weft__worker *w);
    void (*poll_interrupt)(void);
    atomic_long poll_waiters;
    atomic_bool poller_busy;

    /* weft_run: RUN_* of runtime.c, the word its thread waits on. */
    atomic_uint run_state;
    atomic_bool detect_deadlock;               /* weft_run with detection on */
};

extern struct weft__runtime weft__rt;

int weft__sched_start(unsigned nworkers);
void weft__sched_stop(void);
/* A thread outside the runtime waits on a descriptor (poll_waiters already
 * counts it): makes sure that a worker will poll, waking one if every
 * worker is parked and none waits in the poller. */
void weft__sched_poll_kick(void);
/* Makes p runnable. From a worker it goes to that worker's run-next slot
 * (lifo true) or queue; from outside, to the injection queue. */
void weft__sched_ready(struct weft__proc *p, bool lifo);
/* weft__sched_ready, for a caller that knows its worker w (NULL outside). */
void weft__sched_ready_from(struct weft__worker *w, struct weft__proc *p, bool lifo);
/* Makes p runnable on one given worker (its first run, or a pinned process). */
void weft__sched_ready_on(struct weft__proc *p, int worker);
/* Work-first spawn: runs the new process p at once on w, the caller's
 * worker; the calling process runs next (unless an idle worker steals it
 * first). p must be allowed on this worker. */
void weft__sched_run_now(struct weft__worker *w, struct weft__proc *p);
/* The calling process, running on w, gives up its worker until woken
 * (weft__sched_ready). Its waiter must be published before; see wait.c. */
void weft__sched_block_on(struct weft__worker *w);
/* Requeues the calling process, running on w, behind the runnable ones. */
void weft__sched_yield(struct weft__worker *w);
/* Ends the calling process: never returns; exit_hook runs after the switch. */
_Noreturn void weft__sched_exit(void);
/* Processes spawned and not yet ended, summed over workers. */
long weft__sched_live_procs(void);
/* Wakes an idle worker if work is waiting and nobody is looking for it. */
void weft__sched_notify(bool fenced);
/* A timer was armed for when: wakes a parked worker that would sleep past it. */
void weft__sched_timer_armed(int64_t when);

/* ---- mbox: every process and actor has a mailbox (mailbox.c, msg.c) -------- */

/* A message block: this header, then the payload (16-byte aligned). A weft
 * buffer (weft_buf_alloc) is the payload of a block not yet sent. */
struct weft__msg {
    struct weft__msg *next;
    int tag;
    uint32_t flags;            /* WEFT__MSG_* */
    weft_pid from;
    uint64_t ref;
    intptr_t reason;
    size_t size;               /* payload bytes */
};
enum {
    WEFT__MSG_REPLY = 1,       /* from weft_reply: dropped unless its call waits */
    WEFT__MSG_SIGNAL = 2       /* an exit signal to an actor (reason), not a message */
};
#define WEFT__MSG_DATA(m) ((void *)((char *)(m) + sizeof(struct weft__msg)))
#define WEFT__MSG_OF(data) ((struct weft__msg *)(void *)((char *)(data) - sizeof(struct weft__msg)))

/* msg.c: blocks come from the allocation hook through a per-worker cache. */
struct weft__msg *weft__msg_alloc(size_t size);
void weft__msg_free(struct weft__msg *m);
void weft__msg_free_list(struct weft__msg *m);
void weft__msg_cache_flush(struct weft__worker *w);
/* Frees the blocks of the shared depot (weft_stop, after the workers end). */
void weft__msg_depot_term(void);
/* Fills a public weft_msg from a block (which it then owns). */
void weft__msg_expose(struct weft__msg *m, weft_msg *out);

/* The rarely used parts of a mailbox's owner, allocated on first use. */
struct weft__mbox_ext;

/* The shared part of a mailbox, first in every process and actor. Senders
 * append under lock; the owner takes the whole list at once. */
struct weft__mbox {
    weft__spinlock lock;
    uint16_t flags;                  /* WEFT__MBOX_*, under lock */
    bool bounded;                    /* the owner's copy of BOUNDED */
    struct weft__msg *head, *tail;   /* arrived, not yet taken by the owner */
    /* Messages in the mailbox: sent - received (mod 2^32). sent is written
     * under lock, received by the owner alone: neither needs an atomic
     * read-modify-write. A process publishes received when it takes the
     * shared list (exactly, after each receive, when BOUNDED), so that its
     * receives do not write the line its senders lock: senders may then
     * count messages it has taken since. */
    atomic_uint sent, received;
    struct weft__mbox_ext *ext;      /* under lock; NULL until needed */
};
enum {
    WEFT__MBOX_DEAD = 1,       /* its owner has ended: sends are dropped */
    WEFT__MBOX_TRAP = 2,       /* exit signals become messages */
    WEFT__MBOX_ACTOR = 4,      /* the owner is a weft__actor */
    WEFT__MBOX_QUEUED = 8,     /* actor: in a run queue or running */
    WEFT__MBOX_WAITING = 16,   /* process: a receive waits (wait_ticket) */
    WEFT__MBOX_SENDERS = 32,   /* senders wait for room (ext->senders) */
    WEFT__MBOX_BOUNDED = 64,   /* ext->capacity holds its bound */
    WEFT__MBOX_SIFT = 128      /* the shared list holds a reply or a DOWN message */
};

/* A process's own view of its mailbox (touched only by the process). */
struct weft__mail {
    struct weft__msg *head, *tail;   /* taken from the shared list, in order */
    /* Resume point of selective receive: the messages up to and including
     * scan_after were checked against scan_match and not taken. */
    struct weft__msg *scan_after;
    weft_match scan_match;
    bool scan_valid;
    unsigned wait_ticket;            /* under mbox.lock while WAITING */
    int wait_index;                  /* the select case it fires (0: a receive) */
    uint64_t awaiting_ref;           /* the call waiting for a reply, or 0 */
    uint32_t taken;                  /* messages taken or dropped (see mbox.received) */
};

void weft__mbox_init(struct weft__mbox *mb, uint32_t flags);
/* Bounds mb to capacity messages (0: unbounded): 0 or -ENOMEM. */
int weft__mbox_bound(struct weft__mbox *mb, size_t capacity);
/* The owner of mb (pid) ended with reason: drops its messages, closes it
 * to senders, then signals links and monitors, closes owned channels and
 * frees its name. mail: the process's own list (NULL for an actor). */
void weft__mbox_die(struct weft__mbox *mb, weft_pid pid, intptr_t reason, struct weft__mail *mail);
/* actor.c */
struct weft__actor;
weft_pid weft__actor_pid(const struct weft__actor *a);
/* Messages the handler p runs has taken but its mailbox has not counted yet. */
uint32_t weft__actor_uncounted(struct weft__proc *p);
/* weft_exit in the handler p runs: the actor ends after it. */
void weft__actor_exit_request(struct weft__proc *p, intptr_t reason);
/* Frees the ext of an owner nobody has seen yet (a spawn that failed). */
void weft__mbox_ext_free(struct weft__mbox *mb);
/* link.c: links a new child (not yet running) with the caller; 0 or -ENOMEM. */
int weft__link_spawned(struct weft__mbox *child, weft_pid child_pid);
/* link.c: fn(arg) will run when the calling process ends, however it ends
 * (return, weft_exit, a kill), after its links, monitors and owned channels
 * are dealt with, on its own stack; it must not wait. One per process (a
 * second call replaces the first). 0, -EPERM (not a process) or -ENOMEM. */
int weft__at_end(void (*fn)(void *arg), void *arg);

/* ---- proc ------------------------------------------------------------------ */

/* A process. Fields marked [sched] belong to the scheduler layers. */
struct weft__proc {
    struct weft__ctx ctx;              /* [sched] saved context */
    void *stack_lo;                    /* [sched] NULL until it first runs */
    int stack_class;                   /* [sched] */
    int worker;                        /* [sched] pinned worker, or -1 */
    atomic_uint on_cpu;                /* [sched] 1 while a worker runs it */
    struct weft__proc *next;           /* [sched] list link while queued */
    struct weft__waiter waiter;        /* [wait] its blocking state */
    struct weft__timer timer;          /* [wait] deadline of the current wait */
    unsigned timer_ticket;             /* [wait] the wait the timer ends */
#ifdef WEFT__ASAN
    void *asan_fake_stack;
#endif
#ifdef WEFT__TSAN
    void *tsan_fiber;
#endif
    weft_proc_fn fn;
    void *arg;
    intptr_t result;
    weft_pid pid;
    atomic_uint join_state;            /* WEFT__JOIN_* bits */
    struct weft__waiter *joiner;       /* set before JOINING is published */
    unsigned joiner_ticket;
    int failure;                       /* -ENOMEM: it never ran for want of a stack */
    const char *site;                  /* where it was spawned ("file:line"), or NULL */
    bool is_main;                      /* weft_run's main process */
    struct weft__mbox mbox;            /* [mbox] its mailbox, shared part */
    struct weft__mail mail;            /* [mbox] its own part */
    struct weft__actor *acting;        /* [actor] the actor whose handler it runs */
    bool no_block;                     /* [actor] in a handler: waits fail */
    atomic_bool kill_pending;          /* [link] an exit signal ends it */
    /* [dataflow] run once, then cleared, at the entry of its next blocking
     * call (a graph node sends what it holds before it may wait) */
    void (*before_block)(void *arg);
    void *before_block_arg;
    intptr_t kill_reason;              /* [link] written before kill_pending */
    uint64_t det_priority;             /* [det] PCT priority, 0 until first runnable */
    bool det_queued;                   /* [det] in det.c's runnable set */
    char name[WEFT_NAME_MAX];
};

enum {
    WEFT__JOIN_DEAD = 1,      /* returned */
    WEFT__JOIN_DETACHED = 2,  /* nobody will join */
    WEFT__JOIN_JOINING = 4,   /* a joiner waits (joiner is set) */
    WEFT__JOIN_JOINED = 8,    /* the join right was used */
    WEFT__JOIN_WOKEN = 16     /* the exit is done with the joiner it saw waiting */
};

/* The calling process, or NULL on a thread outside the runtime. */
struct weft__proc *weft__proc_current(void);
/* Drops n references to p's pid (freeing p with the last). */
void weft__proc_release(struct weft__proc *p, uint32_t n);
/* Ends process p (the caller) with result, as weft_exit. */
_Noreturn void weft__proc_finish(struct weft__proc *p, intptr_t result);
/* A process that an exit signal has killed ends here: called by blocking
 * calls when their wait failed with -ECANCELED. */
void weft__kill_point(void);
/* At the entry of a blocking call of process p: its before_block hook runs
 * (out of line, cleared first, so that blocking calls inside it do not run
 * it again). Then an exit signal that came
 * while p computed ends it here, also when the call would not need to wait
 * (a process whose mailbox is never empty must still die). One relaxed load;
 * a signal this misses cancels the wait the call may open (wait.c). */
void weft__before_block(struct weft__proc *p);
static inline void weft__kill_check(struct weft__proc *p)
{
    if (weft__unlikely(p->before_block))
        weft__before_block(p);
    if (weft__unlikely(atomic_load_explicit(&p->kill_pending, memory_order_relaxed)))
        weft__kill_point();
}
static inline bool weft__in_proc(void)
{
    return weft__proc_current() != NULL;
}
/* A random number from the calling worker's (or thread's) seeded stream. */
uint64_t weft__rand(void);

/* weft_spawn_at; is_main marks weft_run's main process. */
int weft__spawn(const char *site, weft_pid *pid, weft_proc_fn fn, void *arg,
                const weft_spawn_opts *opts, bool is_main);

/* Entry of every process, called on its own stack by the scheduler. */
_Noreturn void weft__proc_main(struct weft__proc *p);
/* Calls fn on every process of the table (ended ones not yet joined too),
 * each kept alive during its call. */
void weft__proc_foreach(void (*fn)(struct weft__proc *p, void *arg), void *arg);
/* Ends every remaining process's waits with -ECANCELED. */
void weft__proc_cancel_all(void);
/* Frees the processes that ended and were never joined (runtime stop). */
void weft__proc_reap_all(void);
void weft__proc_cache_flush(struct weft__worker *w);
int weft__proc_layer_init(void);

/* ---- det: the choices of the deterministic schedules (det.c) -------------- */

/* True while a deterministic runtime runs: the det loop of sched.c replaces
 * the workers' threads, and weft_now is virtual. */
extern atomic_bool weft__det_on;
/* Called by weft_start before the det loop starts, with the schedule and
 * seed it chose. Returns 0 or -ENOMEM. */
int weft__det_start(const weft_config *cfg, int schedule, uint64_t seed);
void weft__det_stop(void);
/* Tells on stderr how to replay this run (a failure was found). */
void weft__det_print_seed(void);
int64_t weft__det_now(void);
/* The loop found every process waiting for a deadline: the clock jumps. */
void weft__det_advance_to(int64_t when);
/* p is runnable (det loop thread only). */
void weft__det_ready(struct weft__proc *p);
bool weft__det_runnable(void);
/* The next process to run and the logical worker to run it on, or NULL. */
struct weft__proc *weft__det_pick(unsigned nworkers, unsigned *worker);
/* The slice of the process numbered no (p, unless it exited) ended so. */
void weft__det_slice_ended(struct weft__proc *p, unsigned no, enum weft__after after);
bool weft__det_should_preempt(struct weft__proc *self);
void weft__det_preempted(struct weft__proc *self);
/* self calls weft_yield. */
void weft__det_yielding(struct weft__proc *self);
/* sched.c: a preemption point, taken by weft calls that other processes
 * could observe, so that a deterministic schedule can interleave them. The
 * process may resume on another worker: callers look theirs up after it. */
void weft__det_preempt_point(void);
static inline void weft__det_point(void)
{
    if (weft__unlikely(atomic_load_explicit(&weft__det_on, memory_order_relaxed)))
        weft__det_preempt_point();
}

/* Runs call from a process (self is the calling process) or from an outside
 * thread (self NULL), counted as inside the runtime (see weft__outside_enter): returns call's result. */
#define WEFT__FROM_ANYWHERE(call)                                               \
    do {                                                                        \
        struct weft__worker *worker = weft__worker_current();                   \
        struct weft__proc *self = worker ? worker->current : NULL;              \
        if (self)                                                               \
            return call;                                                        \
        int err_ = weft__outside_enter(true);                                   \
        if (err_)                                                               \
            return err_;                                                        \
        err_ = call;                                                            \
        weft__outside_leave();                                                  \
        return err_;                                                            \
    } while (0)

/* runtime.c: an outside thread inside a call that touches runtime objects
 * is counted, so that weft_stop frees nothing under it. enter returns 0, or
 * -ESHUTDOWN (no runtime), -ECANCELED (stopping, unless allowed). */
int weft__outside_enter(bool allow_stopping);
void weft__outside_leave(void);

/* weft_run's main process has ended with result, or never ran (failure
 * -ENOMEM): called by the proc layer. weft_run takes both from here rather
 * than joining main, whose pid stays valid until the runtime stops (so that
 * a deterministic run does not depend on when weft_run's thread gets to
 * it). */
void weft__runtime_main_ended(intptr_t result, int failure);
/* weft_run's main process has not ended yet. */
bool weft__runtime_main_running(void);
/* The deadlock detector found that no process can run again: it claims
 * the report (false: another worker did, or main has ended), writes it, then
 * tells weft_run, which stops the runtime and returns -EDEADLK. */
bool weft__runtime_deadlock_claim(void);
void weft__runtime_deadlocked(void);

/* debug.c: the deadlock detector and the dump (weft_dump, dump_signal). */
int weft__debug_start(int dump_signal);
void weft__debug_stop(void);

/* overflow.c */
int weft__overflow_install(void);
void weft__overflow_uninstall(void);
/* A worker thread's signal stack: mapped before the thread starts (so that
 * a failure is weft_start's -ENOMEM), installed and removed by the thread
 * itself, unmapped after it ended. */
int weft__overflow_stack_alloc(struct weft__worker *w);
void weft__overflow_stack_free(struct weft__worker *w);
void weft__overflow_thread_init(struct weft__worker *w);
void weft__overflow_thread_term(struct weft__worker *w);

#endif
