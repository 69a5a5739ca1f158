/* det.c: the deterministic schedules' choices: which process runs next,
 * when a running one is preempted, and the virtual clock.
 *
 * In deterministic mode the workers are logical: one OS thread (sched.c's
 * det loop) gives each turn to one of them. Every process slice starts and
 * ends in the loop, so no two ever overlap, and every choice the loop makes
 * comes from here, drawn from one generator seeded by weft_config.seed.
 * Given the same seed and program, and no outside thread taking part, the
 * calls reach here in the same order and make the same choices: the run
 * replays event for event, and the trace says so.
 *
 * Everything here runs on the det loop's thread (the only worker thread),
 * except weft__det_now, which any thread may call.
 *
 * RANDOM draws the next process uniformly among the runnable ones and
 * preempts at a preemption point (weft__det_point) with probability 1/4.
 * PCT gives each process a random priority when it is first made runnable,
 * always runs the runnable process of highest priority, and at depth - 1
 * steps drawn from [1, steps] lowers the running process below all others
 * (Burckhardt, Kothari, Musuvathi, Nagarakatte: "A randomized scheduler
 * with probabilistic guarantees of finding bugs", ASPLOS 2010). A step is a
 * pick or a preemption point.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum {
    READY_INITIAL = 256,
    PCT_MAX_DEPTH = 64,
    SLICE_NS = 1000,           /* virtual time of a process slice */
    PREEMPT_ONE_IN = 4         /* RANDOM: chance of a preemption at a point */
};

/* PCT priorities, highest first: a process's initial one (random, top bit
 * set); the i-th change point's, CHANGED_PRIORITY + i; a yielder's, below
 * CHANGED_PRIORITY and below every earlier yielder's. */
#define CHANGED_PRIORITY (1ull << 40)

atomic_bool weft__det_on;

static struct {
    int schedule;
    uint64_t seed;
    uint64_t rng;
    _Atomic int64_t now;          /* the virtual clock */
    int64_t start;                /* its value at the start (traces show offsets) */
    uint64_t steps;
    /* The runnable processes, in no order; overflow holds those that did not
     * fit when the array could not grow (never lost, taken back later). */
    struct weft__proc **ready;
    uint32_t nready, cap;
    struct weft__plist overflow;
    /* PCT */
    uint64_t change_at[PCT_MAX_DEPTH];
    unsigned nchanges, changes_done;
    uint64_t yield_floor;         /* the priority of the latest yielder */
    void (*trace)(void *, const char *);
    void *trace_ud;
} det;

/* ---- trace ---------------------------------------------------------------------- */

static unsigned proc_no(const struct weft__proc *p)
{
    return (unsigned)(uint32_t)p->pid; /* the handle slot: the same in every replay */
}

__attribute__((format(printf, 1, 2))) static void trace(const char *fmt, ...)
{
    if (!det.trace)
        return;
    char line[160];
    int n = snprintf(line, sizeof line, "%llu %lld ", (unsigned long long)det.steps,
                     (long long)(atomic_load_explicit(&det.now, memory_order_relaxed) - det.start));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    det.trace(det.trace_ud, line);
}

/* WEFT_TRACE=1: the trace on standard error, to watch a replay. */
static void trace_to_stderr(void *ud, const char *event)
{
    fprintf(stderr, "weft-trace: %s\n", event);
}

static const char *why_name(int why)
{
    static const char *const names[] = {"", "sleep", "join", "chan-send", "chan-recv", "select"};
    return why >= 0 && why < (int)(sizeof names / sizeof *names) ? names[why] : "?";
}

/* ---- lifecycle --------------------------------------------------------------------- */

int weft__det_start(const weft_config *cfg, int schedule, uint64_t seed)
{
    memset(&det, 0, sizeof det);
    det.ready = weft__alloc(READY_INITIAL * sizeof *det.ready);
    if (!det.ready)
        return -ENOMEM;
    det.cap = READY_INITIAL;
    det.schedule = schedule;
    det.seed = seed;
    det.rng = weft__rand_seed(seed, 0xde7);
    det.trace = cfg->trace;
    det.trace_ud = cfg->trace_ud;
    const char *env = getenv("WEFT_TRACE");
    if (!det.trace && env && *env && strcmp(env, "0") != 0)
        det.trace = trace_to_stderr;
    det.start = weft__clock_real();
    atomic_store(&det.now, det.start);
    det.yield_floor = CHANGED_PRIORITY - 1;
    if (schedule == WEFT_SCHEDULE_PCT) {
        unsigned depth = cfg->pct_depth ? cfg->pct_depth : 3;
        uint64_t horizon = cfg->pct_steps ? cfg->pct_steps : 1000;
        det.nchanges = (depth > PCT_MAX_DEPTH ? PCT_MAX_DEPTH : depth) - 1;
        for (unsigned i = 0; i < det.nchanges; i++)
            det.change_at[i] = 1 + weft__rand_next(&det.rng) % horizon;
    }
    atomic_store(&weft__det_on, true);
    trace("start %s seed %llu", schedule == WEFT_SCHEDULE_PCT ? "pct" : "random",
          (unsigned long long)seed);
    return 0;
}

/* After the det loop has ended: nothing is runnable any more. */
void weft__det_stop(void)
{
    atomic_store(&weft__det_on, false);
    weft__free(det.ready, det.cap * sizeof *det.ready);
    det.ready = NULL;
}

void weft__det_print_seed(void)
{
    fprintf(stderr, "weft: deterministic schedule %s, seed %llu: replay with WEFT_SEED=%llu%s\n",
            det.schedule == WEFT_SCHEDULE_PCT ? "pct" : "random", (unsigned long long)det.seed,
            (unsigned long long)det.seed, det.schedule == WEFT_SCHEDULE_PCT ? " WEFT_SCHEDULE=pct" : "");
}

/* ---- the clock ---------------------------------------------------------------------- */

int64_t weft__det_now(void)
{
    /* A process reading the clock moves it on, so that one waiting for the
     * clock to pass a value (without blocking) gets there. The reads of
     * other threads do not move it: their timing is not replayed. */
    struct weft__worker *w = weft__worker_current();
    if (w && w->current)
        return atomic_fetch_add_explicit(&det.now, 1, memory_order_relaxed) + 1;
    return atomic_load_explicit(&det.now, memory_order_relaxed);
}

void weft__det_advance_to(int64_t when)
{
    int64_t now = atomic_load_explicit(&det.now, memory_order_relaxed);
    if (when > now) {
        atomic_store_explicit(&det.now, when, memory_order_relaxed);
        trace("clock +%lld", (long long)(when - now));
    }
}

/* ---- the runnable set ------------------------------------------------------------------ */

static uint64_t new_priority(void)
{
    /* Above every lowered priority, and never 0 (unset). */
    return weft__rand_next(&det.rng) | (1ull << 63);
}

void weft__det_ready(struct weft__proc *p)
{
    /* Every wait ends in exactly one wake-up: a process made runnable twice,
     * or while it runs, is a bug of the layers above, caught here. */
    if (p->det_queued || atomic_load_explicit(&p->on_cpu, memory_order_relaxed))
        weft__panic("deterministic mode: process #%u made runnable twice", proc_no(p));
    p->det_queued = true;
    if (det.schedule == WEFT_SCHEDULE_PCT && !p->det_priority)
        p->det_priority = new_priority();
    trace("ready #%u", proc_no(p));
    if (det.nready == det.cap) {
        struct weft__proc **bigger = weft__alloc(2 * det.cap * sizeof *bigger);
        if (!bigger) {
            p->next = NULL;
            if (det.overflow.tail)
                det.overflow.tail->next = p;
            else
                det.overflow.head = p;
            det.overflow.tail = p;
            return;
        }
        memcpy(bigger, det.ready, det.nready * sizeof *bigger);
        weft__free(det.ready, det.cap * sizeof *det.ready);
        det.ready = bigger;
        det.cap *= 2;
    }
    det.ready[det.nready++] = p;
}

bool weft__det_runnable(void)
{
    return det.nready || det.overflow.head;
}

static void take_back_overflow(void)
{
    while (det.overflow.head && det.nready < det.cap) {
        struct weft__proc *p = det.overflow.head;
        det.overflow.head = p->next;
        if (!det.overflow.head)
            det.overflow.tail = NULL;
        det.ready[det.nready++] = p;
    }
}

static uint32_t highest_priority(void)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < det.nready; i++)
        if (det.ready[i]->det_priority > det.ready[best]->det_priority ||
            (det.ready[i]->det_priority == det.ready[best]->det_priority &&
             proc_no(det.ready[i]) < proc_no(det.ready[best])))
            best = i;
    return best;
}

/* PCT: a change point at this step lowers p, the running process, below
 * every priority not lowered yet. */
static void lower_at_change_point(struct weft__proc *p)
{
    for (unsigned i = 0; i < det.nchanges; i++) {
        if (det.change_at[i] == det.steps) {
            p->det_priority = CHANGED_PRIORITY + ++det.changes_done;
            trace("lower #%u", proc_no(p));
        }
    }
}

struct weft__proc *weft__det_pick(unsigned nworkers, unsigned *worker)
{
    take_back_overflow();
    if (det.nready == 0)
        return NULL;
    det.steps++;
    uint32_t i = det.schedule == WEFT_SCHEDULE_PCT
                     ? highest_priority()
                     : (uint32_t)(weft__rand_next(&det.rng) % det.nready);
    struct weft__proc *p = det.ready[i];
    p->det_queued = false;
    uint32_t candidates = det.nready;
    det.ready[i] = det.ready[--det.nready];
    *worker = p->worker >= 0 ? (unsigned)p->worker
                             : (unsigned)(weft__rand_next(&det.rng) % nworkers);
    trace("run #%u %s (1 of %u) w%u", proc_no(p), p->name, candidates, *worker);
    if (det.schedule == WEFT_SCHEDULE_PCT)
        lower_at_change_point(p);
    return p;
}

void weft__det_slice_ended(struct weft__proc *p, unsigned no, enum weft__after after)
{
    switch (after) {
    case WEFT__AFTER_YIELD:
        trace("yield #%u", no);
        break;
    case WEFT__AFTER_BLOCK:
        trace("block #%u %s", no, why_name(atomic_load_explicit(&p->waiter.why, memory_order_relaxed)));
        break;
    case WEFT__AFTER_EXIT:
        trace("exit #%u", no); /* p may be freed */
        break;
    default:
        trace("back #%u", no);
        break;
    }
    atomic_fetch_add_explicit(&det.now, SLICE_NS, memory_order_relaxed);
}

/* ---- preemption ----------------------------------------------------------------------- */

bool weft__det_should_preempt(struct weft__proc *self)
{
    if (det.schedule != WEFT_SCHEDULE_PCT)
        return weft__rand_next(&det.rng) % PREEMPT_ONE_IN == 0;
    det.steps++;
    lower_at_change_point(self);
    for (uint32_t i = 0; i < det.nready; i++)
        if (det.ready[i]->det_priority > self->det_priority)
            return true;
    return det.overflow.head != NULL;
}

/* A process that yields waits for another to act (a busy wait): under PCT
 * it goes below every other process, or it could run again at once for
 * ever while the one it waits for sits lower. */
void weft__det_yielding(struct weft__proc *self)
{
    if (det.schedule == WEFT_SCHEDULE_PCT)
        self->det_priority = det.yield_floor--;
}

void weft__det_preempted(struct weft__proc *self)
{
    trace("preempt #%u", proc_no(self));
}
