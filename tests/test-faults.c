/* test-faults.c: fault injection sweeps. A scenario that uses a slice of the
 * whole API (runtime start and stop, spawns from a thread and from
 * processes, channels made, sent on, received from, closed and released,
 * select, a sleep, joins with and without a deadline, weft_dump) is run once
 * counting what it takes: allocations through the hook, mmaps, thread
 * creations (src/fault.h). Then, for every N from 1 to that count, it runs
 * again with the Nth of them failing, and again with every one from the Nth
 * on failing. Each run must fail cleanly:
 *  - every call returns its success value, the injected error (-ENOMEM;
 *    -EAGAIN for a thread) or a documented consequence of an earlier
 *    failure (a join of a process that never ran, a close by the other side,
 *    ...), and one injected failure is reported by exactly one call (by at
 *    least one when every later call fails too);
 *  - nothing crashes or hangs (the case's timeout);
 *  - after weft_stop every byte taken through the hook is given back, every
 *    thread is joined, every stack slab and signal stack is unmapped;
 *  - a fresh runtime then runs a small program.
 *
 * Exact counts need one OS thread running processes: one worker, or a
 * deterministic schedule. With two worker threads, which one runs what
 * decides which per-worker cache (process blocks, handle slots, stacks,
 * timer heaps) serves a request, and so how many requests a run makes and in
 * which order. On one thread the runs repeat their requests exactly, and
 * the sweeps assert it (a run with the Nth failing reaches call N); with two
 * they go on until a run reaches no injected failure.
 *
 * Every injected failure is reported by the call that needed the resource
 * (a worker's signal stack is mapped by weft_start before its thread starts).
 *
 * The handle table's chunks are mapped once per process and never unmapped,
 * so the sweeps cannot reach them after their first run: two cases below
 * fail the first and a later chunk's mapping directly.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS, O_CLOEXEC, nanosleep */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "../src/fault.h"

/* ---- the allocation hook: counts, refuses, tracks live bytes ------------------------- */

enum { HEADER = 16 }; /* each block carries its size, to check what weft passes back */

static struct heap {
    atomic_long calls;       /* allocation requests since the last arming */
    atomic_long fail_at;     /* the request (1-based) refused; 0: none */
    atomic_bool sticky;      /* every request after fail_at refused too */
    atomic_long injected;    /* requests refused */
    atomic_long live_bytes;  /* handed out and not given back */
    atomic_long live_blocks;
    atomic_long bad_size;    /* frees or resizes naming a wrong old size */
} heap;

static void *heap_fn(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    char *block = ptr ? (char *)ptr - HEADER : NULL;
    if (block && *(size_t *)block != old_size)
        atomic_fetch_add(&heap.bad_size, 1);
    if (new_size == 0) {
        if (block) {
            atomic_fetch_sub(&heap.live_bytes, (long)old_size);
            atomic_fetch_sub(&heap.live_blocks, 1);
        }
        free(block);
        return NULL;
    }
    long n = atomic_fetch_add(&heap.calls, 1) + 1;
    long at = atomic_load(&heap.fail_at);
    if (at && (n == at || (n > at && atomic_load(&heap.sticky)))) {
        atomic_fetch_add(&heap.injected, 1);
        return NULL;
    }
    char *grown = realloc(block, new_size + HEADER);
    if (!grown)
        return NULL;
    *(size_t *)grown = new_size;
    atomic_fetch_add(&heap.live_bytes, (long)new_size - (block ? (long)old_size : 0));
    if (!block)
        atomic_fetch_add(&heap.live_blocks, 1);
    return grown + HEADER;
}

/* ---- what is injected -------------------------------------------------------------------- */

enum kind { ALLOC, MMAP, THREAD, NO_KIND };
static const char *const kind_names[] = {"allocation", "mmap", "thread creation"};

/* Counts every kind from 0 and arms kind k (NO_KIND: none) to fail its nth
 * call from now, with sticky every later one too. mmap and threads are
 * always counted, so that weft__fault_mapped sees every mapping. */
static void arm(enum kind k, long nth, bool sticky)
{
    atomic_store(&heap.calls, 0);
    atomic_store(&heap.injected, 0);
    atomic_store(&heap.sticky, sticky);
    atomic_store(&heap.fail_at, k == ALLOC ? nth : 0);
    weft__fault_arm(WEFT__FAULT_MMAP, k == MMAP ? nth : 0, sticky);
    weft__fault_arm(WEFT__FAULT_THREAD, k == THREAD ? nth : 0, sticky);
}

static long calls_of(enum kind k)
{
    return k == ALLOC ? atomic_load(&heap.calls)
                      : weft__fault_calls(k == MMAP ? WEFT__FAULT_MMAP : WEFT__FAULT_THREAD);
}

static long injected_of(enum kind k)
{
    return k == ALLOC ? atomic_load(&heap.injected)
                      : weft__fault_injected(k == MMAP ? WEFT__FAULT_MMAP : WEFT__FAULT_THREAD);
}

/* Call before anything of weft runs in this test process. */
static void faults_setup(void)
{
    weft__fault_reset();
    arm(NO_KIND, 0, false);
    ASSERT_OK(weft_set_allocator(heap_fn, NULL));
}

/* ---- the scenario ------------------------------------------------------------------------- */

/* Every public call the scenario makes, by the code that makes it. */
enum call {
    /* the test thread */
    START, OUT_MAKE, SPAWN_MAIN, JOIN_MAIN, OUT_SELECT, OUT_CLOSE, OUT_RELEASE, DUMP_OUTSIDE, STOP,
    /* main, a process */
    DATA_MAKE, ACK_MAKE, PR_SPAWN, C_SPAWN, PR_JOIN, CLOSE_DATA, M_SELECT, CLOSE_ACK, C_JOIN,
    G_SPAWN, G_JOIN, G_JOIN2, M_DUMP, RELEASE_DATA, RELEASE_ACK, SEND_OUT,
    /* the producer and the consumer */
    PR_SEND, PR_CLOSE, C_SLEEP, C_RECV_END, C_SEND,
    CALLS
};
static const char *const call_names[CALLS] = {
    "weft_start", "weft_chan_make(out)", "weft_spawn(main)", "weft_join(main)",
    "weft_select(out) from the thread", "weft_chan_close(out)", "weft_chan_release(out)",
    "weft_dump from the thread", "weft_stop",
    "weft_chan_make(data)", "weft_chan_make(ack)", "weft_spawn(producer)", "weft_spawn(consumer)",
    "weft_join(producer)", "weft_chan_close(data) by main", "weft_select(ack) of 9 cases",
    "weft_chan_close(ack)", "weft_join(consumer)", "weft_spawn(grandchild)",
    "weft_join(grandchild) with a deadline", "weft_join(grandchild) again", "weft_dump from main",
    "weft_chan_release(data)", "weft_chan_release(ack)", "weft_chan_send(out)",
    "weft_chan_send(data)", "weft_chan_close(data) by the producer", "weft_sleep",
    "weft_chan_recv(data) at the end", "weft_chan_send(ack)",
};

enum {
    UNSET = 12345, /* a call that was not made */
    K = 8,         /* elements the producer sends */
    CAP = 16,      /* data's capacity: the producer never blocks; 128 bytes, not inline */
    ACK_CASE = 3,  /* main's select: 9 cases (more than fit on its stack), this one enabled */
    G_RESULT = 7,
    MAIN_RESULT = 99
};
#define G_STACK ((size_t)128 * 1024) /* another stack class than the default: its own slab */

struct outcome {
    int rc[CALLS];
    bool m_ran, pr_ran, c_ran, g_ran;
    weft_chan out, data, ack;
    int64_t pr_sum, c_sum, m_sum, m_summary, summary;
    int pr_count, c_count, select_case;
    intptr_t main_result, g_result;
};

static int devnull = -1;
/* The schedule of the scenario's runtime (WEFT_SCHEDULE_*). */
static int schedule = WEFT_SCHEDULE_THREADS;

static intptr_t grandchild(void *arg)
{
    struct outcome *o = arg;
    o->g_ran = true;
    weft_yield();
    return G_RESULT;
}

/* Sends 1..K on data (buffered: never blocks), then closes it. */
static intptr_t producer(void *arg)
{
    struct outcome *o = arg;
    o->pr_ran = true;
    o->rc[PR_SEND] = 0;
    for (int64_t v = 1; v <= K; v++) {
        int rc = weft_chan_send(o->data, &v, sizeof v, WEFT_FOREVER);
        if (rc) {
            o->rc[PR_SEND] = rc;
            break;
        }
        o->pr_sum += v;
        o->pr_count++;
    }
    o->rc[PR_CLOSE] = weft_chan_close(o->data);
    return 0;
}

/* Sleeps a little, drains data until it is closed, then hands the sum to
 * main through the rendezvous channel ack. */
static intptr_t consumer(void *arg)
{
    struct outcome *o = arg;
    o->c_ran = true;
    o->rc[C_SLEEP] = weft_sleep(weft_now() + 200 * US);
    int rc;
    int64_t v;
    while ((rc = weft_chan_recv(o->data, &v, sizeof v, WEFT_FOREVER)) == 0) {
        o->c_sum += v;
        o->c_count++;
    }
    o->rc[C_RECV_END] = rc;
    if (o->ack)
        o->rc[C_SEND] = weft_chan_send(o->ack, &o->c_sum, sizeof o->c_sum, WEFT_FOREVER);
    return 0;
}

/* The scenario's main process. Whatever fails, it never waits for a
 * process that may not exist: it joins the producer (which never blocks)
 * before closing data if the producer did not, and closes ack (which wakes
 * a consumer whose hand-over was refused) before joining the consumer. */
static intptr_t scenario_main(void *arg)
{
    struct outcome *o = arg;
    o->m_ran = true;
    o->rc[DATA_MAKE] = weft_chan_make(&o->data, sizeof(int64_t), CAP);
    o->rc[ACK_MAKE] = weft_chan_make(&o->ack, sizeof(int64_t), 0);
    if (o->rc[ACK_MAKE])
        o->ack = 0;
    weft_pid pr = 0, c = 0, g = 0;
    if (o->rc[DATA_MAKE] == 0) {
        o->rc[PR_SPAWN] = weft_spawn(&pr, producer, o, NULL);
        o->rc[C_SPAWN] = weft_spawn(&c, consumer, o, NULL);
    }
    if (o->rc[PR_SPAWN] == 0)
        o->rc[PR_JOIN] = weft_join(pr, NULL, WEFT_FOREVER);
    if (o->rc[DATA_MAKE] == 0 && o->rc[PR_CLOSE] != 0)
        o->rc[CLOSE_DATA] = weft_chan_close(o->data);

    if (o->rc[C_SPAWN] == 0 && o->ack) {
        weft_case cases[9] = {{0}};
        for (int i = 0; i < 9; i++)
            cases[i].disabled = 1;
        cases[ACK_CASE] = WEFT_RECV(o->ack, &o->m_sum);
        cases[ACK_CASE].result = UNSET;
        o->rc[M_SELECT] = weft_select(cases, 9, WEFT_SELECT_FAIR, weft_now() + 10000 * MS);
        o->select_case = cases[ACK_CASE].result;
    }
    if (o->ack)
        o->rc[CLOSE_ACK] = weft_chan_close(o->ack);
    if (o->rc[C_SPAWN] == 0)
        o->rc[C_JOIN] = weft_join(c, NULL, WEFT_FOREVER);

    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.stack_size = G_STACK;
    o->rc[G_SPAWN] = weft_spawn(&g, grandchild, o, &opts);
    if (o->rc[G_SPAWN] == 0) {
        o->rc[G_JOIN] = weft_join(g, &o->g_result, weft_now() + 10000 * MS);
        /* -ENOMEM: either g never ran (its pid is gone) or the deadline's
         * timer could not be had (g is still joinable): only a second join
         * tells them apart. */
        if (o->rc[G_JOIN] == -ENOMEM)
            o->rc[G_JOIN2] = weft_join(g, &o->g_result, WEFT_FOREVER);
    }
    o->rc[M_DUMP] = weft_dump(devnull);
    if (o->rc[DATA_MAKE] == 0)
        o->rc[RELEASE_DATA] = weft_chan_release(o->data);
    if (o->ack)
        o->rc[RELEASE_ACK] = weft_chan_release(o->ack);
    o->m_summary = (o->rc[M_SELECT] == ACK_CASE ? o->m_sum : -1) + 1000 * o->g_result;
    if (o->out)
        o->rc[SEND_OUT] = weft_chan_send(o->out, &o->m_summary, sizeof o->m_summary, WEFT_FOREVER);
    return MAIN_RESULT;
}

/* The scenario, from the test thread: starts a runtime, runs main, takes
 * its summary from a channel, dumps, stops. */
static void scenario(struct outcome *o, unsigned workers)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < CALLS; i++)
        o->rc[i] = UNSET;
    o->main_result = o->g_result = -1;
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = workers;
    cfg.dump_signal = SIGQUIT; /* its thread is one of those created */
    cfg.schedule = schedule;
    cfg.seed = 1;
    o->rc[START] = weft_start(&cfg);
    if (o->rc[START])
        return;
    o->rc[OUT_MAKE] = weft_chan_make(&o->out, sizeof(int64_t), 1);
    if (o->rc[OUT_MAKE])
        o->out = 0;
    weft_pid pid = 0;
    o->rc[SPAWN_MAIN] = weft_spawn(&pid, scenario_main, o, NULL);
    if (o->rc[SPAWN_MAIN] == 0)
        o->rc[JOIN_MAIN] = weft_join(pid, &o->main_result, WEFT_FOREVER);
    if (o->out) {
        weft_case c[1] = {WEFT_RECV(o->out, &o->summary)};
        o->rc[OUT_SELECT] = weft_select(c, 1, WEFT_SELECT_FAIR, 0);
        o->rc[OUT_CLOSE] = weft_chan_close(o->out);
        o->rc[OUT_RELEASE] = weft_chan_release(o->out);
    }
    o->rc[DUMP_OUTSIDE] = weft_dump(devnull);
    o->rc[STOP] = weft_stop(WEFT_FOREVER);
}

/* ---- checking a run ------------------------------------------------------------------------ */

static char run_name[160]; /* which run is being checked, for the messages */

/* Every result of the run, for the message of a failed check. */
static void print_outcome(const struct outcome *o)
{
    fprintf(stderr, "%s:\n", run_name);
    for (int i = 0; i < CALLS; i++)
        if (o->rc[i] != UNSET)
            fprintf(stderr, "  %-40s %d\n", call_names[i], o->rc[i]);
    fprintf(stderr, "  ran: main %d, producer %d, consumer %d, grandchild %d\n", o->m_ran, o->pr_ran,
            o->c_ran, o->g_ran);
}

/* The call's result must be one of the n values given. */
static void expect_in(const struct outcome *o, enum call c, const int *ok, size_t n)
{
    int rc = o->rc[c];
    for (size_t i = 0; i < n; i++)
        if (rc == ok[i])
            return;
    print_outcome(o);
    cr_assert_fail("%s: %s returned %d (%s)%s", run_name, call_names[c], rc,
                   rc == UNSET ? "not called" : weft_strerror(rc),
                   rc == UNSET ? "" : ", which is not allowed there");
}
#define EXPECT(o, c, ...) \
    expect_in((o), (c), (const int[]){__VA_ARGS__}, sizeof((int[]){__VA_ARGS__}) / sizeof(int))

/* Checks every result against the others: what failed and what followed. */
static void check_consistent(const struct outcome *o)
{
    EXPECT(o, START, 0, -ENOMEM, -EAGAIN);
    if (o->rc[START]) {
        for (int i = START + 1; i < CALLS; i++)
            EXPECT(o, (enum call)i, UNSET);
        return;
    }
    EXPECT(o, OUT_MAKE, 0, -ENOMEM);
    EXPECT(o, SPAWN_MAIN, 0, -ENOMEM);
    if (o->rc[SPAWN_MAIN] == 0) /* -ENOMEM: main never ran, for want of a stack */
        EXPECT(o, JOIN_MAIN, o->m_ran ? 0 : -ENOMEM);
    else
        EXPECT(o, JOIN_MAIN, UNSET);
    if (o->m_ran)
        cr_assert_eq(o->main_result, MAIN_RESULT, "%s: main returned %ld", run_name,
                     (long)o->main_result);
    bool out = o->rc[OUT_MAKE] == 0;
    EXPECT(o, OUT_SELECT, !out ? UNSET : o->rc[SEND_OUT] == 0 ? 0 : -ETIMEDOUT);
    if (o->rc[OUT_SELECT] == 0)
        cr_assert_eq(o->summary, o->m_summary, "%s: summary %lld, main sent %lld", run_name,
                     (long long)o->summary, (long long)o->m_summary);
    EXPECT(o, OUT_CLOSE, out ? 0 : UNSET);
    EXPECT(o, OUT_RELEASE, out ? 0 : UNSET);
    EXPECT(o, DUMP_OUTSIDE, 0, -ENOMEM);
    EXPECT(o, STOP, 0);

    if (!o->m_ran) {
        for (int i = DATA_MAKE; i < CALLS; i++)
            EXPECT(o, (enum call)i, UNSET);
        return;
    }
    EXPECT(o, DATA_MAKE, 0, -ENOMEM);
    EXPECT(o, ACK_MAKE, 0, -ENOMEM);
    bool data = o->rc[DATA_MAKE] == 0, ack = o->rc[ACK_MAKE] == 0;
    bool pr = data && o->rc[PR_SPAWN] == 0, c = data && o->rc[C_SPAWN] == 0;
    if (data) {
        EXPECT(o, PR_SPAWN, 0, -ENOMEM);
        EXPECT(o, C_SPAWN, 0, -ENOMEM);
    } else {
        EXPECT(o, PR_SPAWN, UNSET);
        EXPECT(o, C_SPAWN, UNSET);
    }

    /* The producer: joined, -ENOMEM if it never ran; it sends all, then closes. */
    EXPECT(o, PR_JOIN, !pr ? UNSET : o->pr_ran ? 0 : -ENOMEM);
    EXPECT(o, PR_SEND, o->pr_ran ? 0 : UNSET);
    EXPECT(o, PR_CLOSE, o->pr_ran ? 0 : UNSET);
    if (o->pr_ran)
        cr_assert_eq(o->pr_count, K, "%s: the producer sent %d of %d", run_name, o->pr_count, K);
    EXPECT(o, CLOSE_DATA, data && !o->pr_ran ? 0 : UNSET);

    /* The consumer: drains what was sent, then hands the sum over. */
    EXPECT(o, C_JOIN, !c ? UNSET : o->c_ran ? 0 : -ENOMEM);
    if (o->c_ran)
        EXPECT(o, C_SLEEP, 0, -ENOMEM);
    else
        EXPECT(o, C_SLEEP, UNSET);
    EXPECT(o, C_RECV_END, o->c_ran ? -EPIPE : UNSET);
    if (o->c_ran)
        cr_assert(o->c_sum == o->pr_sum && o->c_count == o->pr_count,
                  "%s: the consumer received %d elements (sum %lld), the producer sent %d (sum %lld)",
                  run_name, o->c_count, (long long)o->c_sum, o->pr_count, (long long)o->pr_sum);
    /* The consumer's hand-over waits without a deadline: taken, or refused
     * by the close (checked again against the select below). */
    EXPECT(o, C_SEND, !(o->c_ran && ack) ? UNSET : 0, -EPIPE);
    /* main's select: the sum, or -ENOMEM (its array, its deadline's timer),
     * or the deadline if the consumer never ran. */
    if (c && ack)
        EXPECT(o, M_SELECT, ACK_CASE, -ENOMEM, o->c_ran ? ACK_CASE : -ETIMEDOUT);
    else
        EXPECT(o, M_SELECT, UNSET);
    if (o->rc[M_SELECT] == ACK_CASE)
        cr_assert(o->select_case == 0 && o->m_sum == o->c_sum,
                  "%s: main's select took %lld (case result %d), the consumer sent %lld", run_name,
                  (long long)o->m_sum, o->select_case, (long long)o->c_sum);
    /* The consumer's hand-over: taken by the select, or refused by the close. */
    EXPECT(o, C_SEND, !(o->c_ran && ack) ? UNSET : o->rc[M_SELECT] == ACK_CASE ? 0 : -EPIPE);
    EXPECT(o, CLOSE_ACK, ack ? 0 : UNSET);

    /* The grandchild, on a stack of another class. */
    EXPECT(o, G_SPAWN, 0, -ENOMEM);
    if (o->rc[G_SPAWN] == 0)
        EXPECT(o, G_JOIN, 0, -ENOMEM);
    else
        EXPECT(o, G_JOIN, UNSET);
    /* The first join's -ENOMEM: g never ran (its pid is gone: -ESRCH now),
     * or the timer failed and g is still joinable (0; or -ENOMEM if it has
     * not run yet and then finds no stack either). */
    if (o->rc[G_JOIN] == -ENOMEM && o->g_ran)
        EXPECT(o, G_JOIN2, 0);
    else if (o->rc[G_JOIN] == -ENOMEM)
        EXPECT(o, G_JOIN2, -ESRCH, -ENOMEM);
    else
        EXPECT(o, G_JOIN2, UNSET);
    if (o->rc[G_JOIN] == 0 || o->rc[G_JOIN2] == 0)
        cr_assert(o->g_ran && o->g_result == G_RESULT, "%s: the grandchild returned %ld", run_name,
                  (long)o->g_result);

    EXPECT(o, M_DUMP, 0, -ENOMEM);
    EXPECT(o, RELEASE_DATA, data ? 0 : UNSET);
    EXPECT(o, RELEASE_ACK, ack ? 0 : UNSET);
    EXPECT(o, SEND_OUT, out ? 0 : UNSET);
}

/* How many calls returned err. */
static int count_rc(const struct outcome *o, int err)
{
    int n = 0;
    for (int i = 0; i < CALLS; i++)
        n += o->rc[i] == err;
    return n;
}

/* The run that nothing disturbed: everything worked. */
static void check_complete(const struct outcome *o)
{
    check_consistent(o);
    for (int i = 0; i < CALLS; i++)
        EXPECT(o, (enum call)i, i == M_SELECT ? ACK_CASE : i == C_RECV_END ? -EPIPE
                              : i == G_JOIN2 || i == CLOSE_DATA ? UNSET : 0);
    cr_assert_eq(o->summary, K * (K + 1) / 2 + 1000 * G_RESULT, "%s: summary %lld", run_name,
                 (long long)o->summary);
}

/* Threads of this process now. */
static int threads_now(void)
{
    DIR *d = opendir("/proc/self/task");
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* What a stopped runtime leaves behind: handle table chunks (mapped once
 * per process, never unmapped) and nothing else. */
static struct {
    int threads;
    long mapped;
} baseline;

static void take_baseline(void)
{
    baseline.threads = threads_now();
    baseline.mapped = weft__fault_mapped();
}

/* After weft_stop (or a failed weft_start): no runtime, every byte back to
 * the hook, every thread joined, every mapping but the baseline's gone. */
static void check_released(void)
{
    ASSERT_RC(weft_workers(), -ESHUTDOWN);
    cr_assert(atomic_load(&heap.live_bytes) == 0 && atomic_load(&heap.live_blocks) == 0,
              "%s: %ld bytes in %ld blocks still held after the stop", run_name,
              atomic_load(&heap.live_bytes), atomic_load(&heap.live_blocks));
    cr_assert_eq(atomic_load(&heap.bad_size), 0, "%s: blocks given back with a wrong size", run_name);
    cr_assert_eq(weft__fault_mapped(), baseline.mapped, "%s: %ld bytes mapped, %ld expected",
                 run_name, weft__fault_mapped(), baseline.mapped);
    /* A joined thread may stay listed for a moment after pthread_join. */
    int n = threads_now();
    for (int i = 0; i < 1000 && n != baseline.threads; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        n = threads_now();
    }
    cr_assert_eq(n, baseline.threads, "%s: %d threads, %d before", run_name, n, baseline.threads);
}

static intptr_t small_program(void *arg)
{
    weft_chan ch;
    int v = 5;
    if (weft_chan_make(&ch, sizeof v, 1) || weft_chan_send(ch, &v, sizeof v, WEFT_FOREVER) ||
        weft_chan_recv(ch, &v, sizeof v, weft_now() + 1000 * MS) || weft_chan_release(ch) ||
        weft_sleep(weft_now() + 10 * US))
        return -1;
    return v;
}

/* A fresh runtime works: start, a process with a channel and a sleep, stop. */
static void check_usable(unsigned workers)
{
    arm(NO_KIND, 0, false);
    start_workers(workers);
    weft_pid pid;
    intptr_t r = 0;
    ASSERT_OK(weft_spawn(&pid, small_program, NULL, NULL));
    ASSERT_OK(weft_join(pid, &r, WEFT_FOREVER));
    cr_assert_eq(r, 5, "%s, then a fresh runtime: its program returned %ld", run_name, (long)r);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    check_released();
}

/* ---- the sweeps ------------------------------------------------------------------------------- */

/* One OS thread runs the workers' processes (one worker, or a deterministic
 * schedule): every run makes the same calls in the same order. */
static bool exact(unsigned workers)
{
    return workers == 1 || schedule != WEFT_SCHEDULE_THREADS;
}

static const char *mode_name(unsigned workers)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "%u %sworker%s%s", workers,
             schedule != WEFT_SCHEDULE_THREADS ? "logical " : "", workers > 1 ? "s" : "",
             schedule != WEFT_SCHEDULE_THREADS ? " (deterministic)" : "");
    return buf;
}

struct sweep_result {
    long count;    /* calls of the kind in an undisturbed run */
    long runs;     /* runs with a failure injected */
};

/* Runs the scenario undisturbed until its count settles: the first run in a
 * process maps the handle table, later runs do not. Returns the count. */
static long count_calls(enum kind k, unsigned workers)
{
    static struct outcome o;
    arm(NO_KIND, 0, false);
    snprintf(run_name, sizeof run_name, "%s, warm-up run", mode_name(workers));
    scenario(&o, workers);
    check_complete(&o);
    take_baseline();
    check_released();
    long count = -1;
    for (int i = 0; i < 2; i++) {
        arm(NO_KIND, 0, false);
        snprintf(run_name, sizeof run_name, "%s, counting run %d", mode_name(workers), i + 1);
        scenario(&o, workers);
        check_complete(&o);
        check_released();
        long n = calls_of(k);
        /* One thread: the same requests in the same order, every time. */
        if (exact(workers) && count >= 0)
            cr_assert_eq(n, count, "%s: %ld %ss, %ld in the run before", run_name, n, kind_names[k],
                         count);
        if (n > count)
            count = n;
    }
    return count;
}

/* Fails the Nth call of kind k (with sticky every later one too), for every
 * N the scenario reaches, and checks each run. */
static struct sweep_result sweep(enum kind k, unsigned workers, bool sticky)
{
    static struct outcome o;
    struct sweep_result res = {.count = count_calls(k, workers)};
    int err = k == THREAD ? -EAGAIN : -ENOMEM;
    for (long n = 1;; n++) {
        cr_assert_lt(n, res.count + 200, "%ss kept failing past the count", kind_names[k]);
        snprintf(run_name, sizeof run_name, "%s, %s %ld of %ld%s refused", mode_name(workers),
                 kind_names[k], n, res.count, sticky ? " and every later one" : "");
        arm(k, n, sticky);
        long absorbed0 = weft__fault_absorbed();
        scenario(&o, workers);
        long absorbed = weft__fault_absorbed() - absorbed0;
        long injected = injected_of(k);
        long calls = calls_of(k);
        arm(NO_KIND, 0, false);
        check_consistent(&o);
        check_released();
        if (injected == 0) {
            /* Past the last call: the run was undisturbed. On one thread
             * every N up to the count must be reached. */
            check_complete(&o);
            cr_assert(!exact(workers) || n > res.count, "%s: the run made only %ld %ss", run_name,
                      calls, kind_names[k]);
            if (n > res.count)
                break;
            continue;
        }
        res.runs++;
        cr_assert(sticky || injected == 1, "%s: %ld failures injected", run_name, injected);
        int reported = count_rc(&o, err);
        /* A failure may be absorbed: a wait whose timer could not be had
         * ends all the same when its waker claims it meanwhile (2 workers). */
        cr_assert(reported > 0 || (absorbed > 0 && !exact(workers)),
                  "%s: no call reported the failure", run_name);
        cr_assert(sticky || reported == (absorbed ? 0 : 1), "%s: %d calls reported %s for one failure"
                  " (%ld absorbed)", run_name, reported, weft_strerror(err), absorbed);
        check_usable(workers);
    }
    fprintf(stderr, "faults: %s, %s%s: %ld per run, %ld runs with failures\n", mode_name(workers),
            kind_names[k], sticky ? " and all later" : "", res.count, res.runs);
    return res;
}

static void open_devnull(void)
{
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    cr_assert_geq(devnull, 0);
}

Test(faults, every_allocation_fails_cleanly_at_1_worker, .timeout = 120)
{
    open_devnull();
    faults_setup();
    struct sweep_result r = sweep(ALLOC, 1, false);
    cr_assert_geq(r.count, 10, "only %ld allocations in the scenario", r.count);
    cr_assert_eq(r.runs, r.count);
}

Test(faults, every_allocation_from_n_on_fails_cleanly_at_1_worker, .timeout = 120)
{
    open_devnull();
    faults_setup();
    struct sweep_result r = sweep(ALLOC, 1, true);
    cr_assert_eq(r.runs, r.count);
}

/* Two workers interleave differently every time: a few rounds. */
Test(faults, every_allocation_fails_cleanly_at_2_workers, .timeout = 120)
{
    open_devnull();
    faults_setup();
    for (int round = 0; round < 4; round++) {
        sweep(ALLOC, 2, false);
        sweep(ALLOC, 2, true);
    }
}

/* A deterministic schedule runs two logical workers on one thread: exact
 * counts with two workers' caches. */
Test(faults, every_failure_in_deterministic_mode_fails_cleanly, .timeout = 120)
{
    open_devnull();
    faults_setup();
    schedule = WEFT_SCHEDULE_RANDOM;
    for (int sticky = 0; sticky <= 1; sticky++) {
        struct sweep_result r = sweep(ALLOC, 2, sticky);
        cr_assert_eq(r.runs, r.count);
        sweep(MMAP, 2, sticky);
        r = sweep(THREAD, 2, sticky);
        cr_assert_eq(r.runs, r.count);
    }
}

Test(faults, every_mmap_fails_cleanly, .timeout = 120)
{
    open_devnull();
    faults_setup();
    for (unsigned workers = 1; workers <= 2; workers++) {
        struct sweep_result r = sweep(MMAP, workers, false);
        cr_assert_geq(r.count, 2, "%u worker(s): only %ld mmaps", workers, r.count);
        sweep(MMAP, workers, true);
    }
}

Test(faults, every_thread_creation_fails_cleanly, .timeout = 120)
{
    open_devnull();
    faults_setup();
    for (unsigned workers = 1; workers <= 2; workers++) {
        struct sweep_result r = sweep(THREAD, workers, false);
        /* The dump signal's thread at least (worker threads once sched.c
         * creates them through the wrapper). */
        cr_assert_geq(r.count, 1, "%u worker(s): no thread creation counted", workers);
        cr_assert_eq(r.runs, r.count);
    }
}

static void *thread_fn(void *arg)
{
    return arg;
}

/* The handle table's first chunk is mapped by the first handle a process
 * ever takes: fail that mapping, in a fresh test process. */
Test(faults, first_handle_table_mapping_fails_cleanly, .timeout = 60)
{
    faults_setup();
    snprintf(run_name, sizeof run_name, "the handle table's first mapping refused");
    /* A first thread makes TSan start its own background thread. */
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, thread_fn, NULL), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    take_baseline();
    start_workers(1);
    /* The worker maps its signal stack first; then the next mmap is ours. */
    int64_t give_up = weft_now() + 5000 * MS;
    while (weft__fault_calls(WEFT__FAULT_MMAP) < 1 && weft_now() < give_up)
        weft_yield();
    cr_assert_eq(weft__fault_calls(WEFT__FAULT_MMAP), 1, "the worker mapped no signal stack");
    weft__fault_arm(WEFT__FAULT_MMAP, 1, false);
    weft_chan ch;
    ASSERT_RC(weft_chan_make(&ch, sizeof(int), 1), -ENOMEM);
    cr_assert_eq(weft__fault_injected(WEFT__FAULT_MMAP), 1);
    weft_pid pid;
    ASSERT_OK(weft_spawn(&pid, small_program, NULL, NULL)); /* maps it now */
    intptr_t r = 0;
    ASSERT_OK(weft_join(pid, &r, WEFT_FOREVER));
    cr_assert_eq(r, 5);
    ASSERT_OK(weft_chan_make(&ch, sizeof(int), 1));
    ASSERT_OK(weft_chan_release(ch));
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    /* The chunk stays mapped (see src/handle.c): the new baseline. */
    cr_assert_gt(weft__fault_mapped(), baseline.mapped);
    baseline.mapped = weft__fault_mapped();
    check_released();
    check_usable(1);
}

/* A later chunk of the handle table, from a process (whose worker caches
 * free slots in batches): with every mapping refused, channels are made
 * until the slots already mapped run out, then weft_chan_make gives
 * -ENOMEM; once mapping works again it succeeds. */
enum { CHANS_MAX = 8192 };
static weft_chan chans[CHANS_MAX + 1];

static intptr_t fill_handle_table(void *arg)
{
    weft__fault_arm(WEFT__FAULT_MMAP, 1, true);
    int n = 0, rc = 0;
    while (n < CHANS_MAX && (rc = weft_chan_make(&chans[n], sizeof(int), 0)) == 0)
        n++;
    long refused = weft__fault_injected(WEFT__FAULT_MMAP);
    weft__fault_arm(WEFT__FAULT_MMAP, 0, false);
    int again = weft_chan_make(&chans[n], sizeof(int), 0);
    for (int i = 0; i < n + (again == 0); i++)
        if (weft_chan_release(chans[i]) != 0)
            return -1;
    /* n channels before -ENOMEM, at least one refused mapping, then success. */
    return rc == -ENOMEM && refused >= 1 && again == 0 ? n : -2;
}

Test(faults, later_handle_table_mapping_fails_cleanly, .timeout = 60)
{
    faults_setup();
    snprintf(run_name, sizeof run_name, "a later handle table mapping refused");
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, thread_fn, NULL), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    take_baseline();
    start_workers(1);
    weft_pid pid;
    intptr_t n = 0;
    ASSERT_OK(weft_spawn(&pid, fill_handle_table, NULL, NULL));
    ASSERT_OK(weft_join(pid, &n, WEFT_FOREVER));
    /* A chunk holds 4096 slots; slot 0 is never used, pids take some. */
    cr_assert(n > 4000 && n < 4096, "%ld channels made before -ENOMEM", (long)n);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    baseline.mapped = weft__fault_mapped(); /* the chunks stay mapped */
    check_released();
    check_usable(1);
}

/* The facility itself: counting, failing once or from N on, pass-through
 * when disarmed, the mapped-bytes count. */

Test(faults, wrappers_count_and_inject, .timeout = 20)
{
    weft__fault_reset();
    enum { LEN = 16 * 4096 };
    void *p = weft__fault_mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(p, MAP_FAILED);
    cr_assert_eq(weft__fault_calls(WEFT__FAULT_MMAP), 0, "counted while disarmed");
    ASSERT_OK(weft__fault_munmap(p, LEN));
    cr_assert_eq(weft__fault_mapped(), 0);

    for (int sticky = 0; sticky <= 1; sticky++) {
        weft__fault_arm(WEFT__FAULT_MMAP, 2, sticky);
        void *got[4];
        for (int i = 0; i < 4; i++) {
            errno = 0;
            got[i] = weft__fault_mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                      -1, 0);
            bool should_fail = i == 1 || (sticky && i > 1);
            cr_assert_eq(got[i] == MAP_FAILED, should_fail, "sticky %d, call %d", sticky, i + 1);
            if (should_fail)
                cr_assert_eq(errno, ENOMEM);
        }
        cr_assert_eq(weft__fault_calls(WEFT__FAULT_MMAP), 4);
        cr_assert_eq(weft__fault_injected(WEFT__FAULT_MMAP), sticky ? 3 : 1);
        cr_assert_eq(weft__fault_mapped(), (long)(sticky ? 1 : 3) * LEN);
        for (int i = 0; i < 4; i++)
            if (got[i] != MAP_FAILED)
                ASSERT_OK(weft__fault_munmap(got[i], LEN));
        cr_assert_eq(weft__fault_mapped(), 0);
    }

    weft__fault_arm(WEFT__FAULT_THREAD, 1, false);
    pthread_t t;
    cr_assert_eq(weft__fault_pthread_create(&t, NULL, thread_fn, NULL), EAGAIN);
    cr_assert_eq(weft__fault_pthread_create(&t, NULL, thread_fn, &t), 0);
    void *ret = NULL;
    cr_assert_eq(pthread_join(t, &ret), 0);
    cr_assert_eq(ret, &t);
    cr_assert_eq(weft__fault_calls(WEFT__FAULT_THREAD), 2);
    cr_assert_eq(weft__fault_injected(WEFT__FAULT_THREAD), 1);

    /* Disarmed: the counters stay readable, calls pass through uncounted. */
    weft__fault_disarm(WEFT__FAULT_THREAD);
    cr_assert_eq(weft__fault_pthread_create(&t, NULL, thread_fn, NULL), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_eq(weft__fault_calls(WEFT__FAULT_THREAD), 2);
    weft__fault_reset();
    cr_assert_eq(atomic_load(&weft__fault_active), 0);
    cr_assert_eq(weft__fault_calls(WEFT__FAULT_MMAP), 0);
}
