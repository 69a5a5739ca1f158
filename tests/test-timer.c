/* test-timer.c: the clock, sleeping, deadlines and the timers behind them. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#include "test.h"




static uint64_t rand_state;

static uint64_t rand_next(void)
{
    /* xorshift64*: deterministic given the seed printed by rand_seed. */
    rand_state ^= rand_state >> 12;
    rand_state ^= rand_state << 25;
    rand_state ^= rand_state >> 27;
    return rand_state * UINT64_C(2685821657736338717);
}

static uint64_t rand_seed(void)
{
    uint64_t seed = (uint64_t)weft_now() | 1;
    rand_state = seed;
    return seed;
}

/* ---- weft_now -------------------------------------------------------------- */

Test(timer, now_is_monotonic_and_matches_clock, .timeout = 10)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t before = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    int64_t prev = weft_now();
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t after = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    cr_assert(before <= prev && prev <= after,
              "weft_now %lld is not CLOCK_MONOTONIC, read between %lld and %lld", (long long)prev,
              (long long)before, (long long)after);
    for (int i = 0; i < 1000000; i++) {
        int64_t t = weft_now();
        cr_assert(t >= prev, "weft_now went back: %lld after %lld (step %d)", (long long)t,
                  (long long)prev, i);
        prev = t;
    }
}

/* Inside processes that migrate between workers, and across workers: a clock
 * value published by one process is never above a value read after it. */
static _Atomic int64_t mono_last;

static intptr_t mono_proc(void *arg)
{
    int64_t prev = 0;
    for (int i = 0; i < 20000; i++) {
        int64_t seen = atomic_load(&mono_last);
        int64_t t = weft_now();
        cr_assert(t >= prev, "weft_now went back in a process: %lld after %lld", (long long)t,
                  (long long)prev);
        cr_assert(t >= seen, "weft_now %lld is below %lld, published earlier by another process",
                  (long long)t, (long long)seen);
        int64_t cur = atomic_load(&mono_last);
        while (cur < t && !atomic_compare_exchange_weak(&mono_last, &cur, t)) {
        }
        prev = t;
        if (i % 64 == 0)
            ASSERT_OK(weft_yield());
    }
    return 0;
}

static intptr_t mono_main(void *arg)
{
    weft_pid pids[4];
    for (int i = 0; i < 4; i++)
        ASSERT_OK(weft_spawn(&pids[i], mono_proc, NULL, NULL));
    for (int i = 0; i < 4; i++)
        ASSERT_OK(weft_join(pids[i], NULL, WEFT_FOREVER));
    return 1;
}

Test(timer, now_is_monotonic_across_workers, .timeout = 20)
{
    for (unsigned workers = 1; workers <= 2; workers++)
        ASSERT_CMP(test_run(workers, mono_main, NULL), ==, 1);
}

/* ---- deadlines in the past ------------------------------------------------- */

static atomic_int spinner_stop;
static atomic_long spinner_steps;

static intptr_t spinner(void *arg)
{
    while (!atomic_load(&spinner_stop)) {
        atomic_fetch_add(&spinner_steps, 1);
        weft_yield();
    }
    return 0;
}

/* At one worker, with another process runnable: a sleep that must not block
 * returns 0 without letting the other process run. */
static intptr_t past_main(void *arg)
{
    weft_pid pid;
    ASSERT_OK(weft_spawn(&pid, spinner, NULL, NULL)); /* runs at once, then yields to us */
    long before = atomic_load(&spinner_steps);
    cr_assert_geq(before, 1, "the spawned process never ran (%ld steps)", before);
    int64_t deadlines[] = {0, 1, weft_now() - 1000 * MS, weft_now() - 1, weft_now()};
    for (size_t i = 0; i < sizeof deadlines / sizeof deadlines[0]; i++) {
        int64_t t0 = weft_now();
        ASSERT_OK(weft_sleep(deadlines[i]));
        int64_t took = weft_now() - t0;
        long steps = atomic_load(&spinner_steps);
        cr_assert_eq(steps, before,
                     "weft_sleep(%lld) (a past deadline) blocked: the other process ran %ld times",
                     (long long)deadlines[i], steps - before);
        cr_assert_lt(took, 500 * MS, "weft_sleep(%lld) took %lld ns", (long long)deadlines[i],
                     (long long)took);
    }
    /* A deadline in the future does block: the other process runs meanwhile. */
    ASSERT_OK(weft_sleep(test_in_ms(2)));
    cr_assert_gt(atomic_load(&spinner_steps), before, "a 2 ms sleep let nothing run");
    atomic_store(&spinner_stop, 1);
    ASSERT_OK(weft_join(pid, NULL, WEFT_FOREVER));
    return 1;
}

Test(timer, sleep_past_deadline_returns_at_once, .timeout = 10)
{
    ASSERT_CMP(test_run(1, past_main, NULL), ==, 1);
}

Test(timer, sleep_from_outside_thread, .timeout = 10)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = 2;
    ASSERT_OK(weft_start(&cfg));
    int64_t deadlines[] = {0, 1, weft_now() - 1};
    for (size_t i = 0; i < sizeof deadlines / sizeof deadlines[0]; i++) {
        int64_t t0 = weft_now();
        ASSERT_OK(weft_sleep(deadlines[i]));
        cr_assert_lt(weft_now() - t0, 500 * MS, "weft_sleep(%lld) from a thread blocked",
                     (long long)deadlines[i]);
    }
    for (int i = 0; i < 20; i++) {
        int64_t d = weft_now() + (i % 5 + 1) * MS;
        ASSERT_OK(weft_sleep(d));
        int64_t t = weft_now();
        cr_assert_geq(t, d, "a thread woke %lld ns before its deadline", (long long)(d - t));
        cr_assert_lt(t - d, 500 * MS, "a thread woke %lld ns late", (long long)(t - d));
    }
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

/* Deadlines a few hundred ns ahead: most pass while the sleeper is on its
 * way to block, a case the scheduler must handle. The loop runs under a
 * deadline so that a hang is reported as such. */
static atomic_long near_done;

static intptr_t near_sleeper(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        int rc = weft_sleep(weft_now() + (i % 16) * 50);
        cr_assert_eq(rc, 0, "sleep %ld: %d (%s)", i, rc, weft_strerror(rc));
        atomic_store(&near_done, i + 1);
    }
    return 1;
}

Test(timer, deadlines_passing_while_blocking, .timeout = 30)
{
    long n = test_sanitized() ? 20000 : 100000;
    for (unsigned workers = 1; workers <= 2; workers++) {
        start_workers(workers);
        atomic_store(&near_done, 0);
        weft_pid pids[2];
        for (int i = 0; i < 2; i++)
            ASSERT_OK(weft_spawn(&pids[i], near_sleeper, (void *)(intptr_t)n, NULL));
        for (int i = 0; i < 2; i++) {
            intptr_t r = 0;
            int rc = weft_join(pids[i], &r, weft_now() + 10000 * MS);
            cr_assert_eq(rc, 0,
                         "%u workers: processes sleeping to deadlines 0-750 ns ahead hung: join "
                         "returned %d (%s) after 10 s; one had done %ld of %ld sleeps",
                         workers, rc, weft_strerror(rc), atomic_load(&near_done), n);
            ASSERT_CMP(r, ==, 1);
        }
        ASSERT_OK(weft_stop(WEFT_FOREVER));
    }
}

/* ---- ordering -------------------------------------------------------------- */

enum { ORDER_N = 200 };

static struct {
    int64_t deadline[ORDER_N];
    int64_t woke[ORDER_N];
    int rc[ORDER_N];
    int log[ORDER_N];
    atomic_int logged;
} order;

/* Sleepers are spawned first and wait at a gate (a channel closed when
 * their deadlines are set): spawning is slow under TSan, and a sleeper
 * whose deadline had passed before it could sleep would log out of order. */
static weft_chan order_gate;

static intptr_t order_sleeper(void *arg)
{
    int i = (int)(intptr_t)arg;
    int v;
    if (weft_chan_recv(order_gate, &v, sizeof v, WEFT_FOREVER) != -EPIPE)
        order.rc[i] = -1;
    else
        order.rc[i] = weft_sleep(order.deadline[i]);
    order.woke[i] = weft_now();
    order.log[atomic_fetch_add(&order.logged, 1)] = i;
    return 0;
}

static intptr_t order_main(void *arg)
{
    int64_t tolerance = *(int64_t *)arg;
    int workers = weft_workers();
    uint64_t seed = rand_seed();
    memset(&order, 0, sizeof order);
    ASSERT_OK(weft_chan_make(&order_gate, sizeof(int), 0));
    weft_pid pids[ORDER_N];
    for (int i = 0; i < ORDER_N; i++)
        ASSERT_OK(weft_spawn(&pids[i], order_sleeper, (void *)(intptr_t)i, NULL));
    int64_t base = weft_now() + 20 * MS;
    for (int i = 0; i < ORDER_N; i++)
        order.deadline[i] = base + (int64_t)(rand_next() % (uint64_t)(100 * MS));
    ASSERT_OK(weft_chan_close(order_gate));
    for (int i = 0; i < ORDER_N; i++)
        ASSERT_OK(weft_join(pids[i], NULL, WEFT_FOREVER));
    ASSERT_OK(weft_chan_release(order_gate));

    /* Upper bounds are generous: on a loaded 2-vCPU VM a whole program can
     * stall for 100 ms and more. */
    int64_t late_max = test_sanitized() ? 1000 * MS : 500 * MS;
    ASSERT_CMP(atomic_load(&order.logged), ==, ORDER_N);
    for (int i = 0; i < ORDER_N; i++) {
        ASSERT_OK(order.rc[i]);
        cr_assert_geq(order.woke[i], order.deadline[i],
                      "%d workers: sleeper %d woke %lld ns before its deadline (seed %llu)",
                      workers, i, (long long)(order.deadline[i] - order.woke[i]),
                      (unsigned long long)seed);
        cr_assert_lt(order.woke[i] - order.deadline[i], late_max,
                     "%d workers: sleeper %d (deadline +%lld us) woke %lld us after its deadline "
                     "(seed %llu)",
                     workers, i, (long long)((order.deadline[i] - base) / US),
                     (long long)((order.woke[i] - order.deadline[i]) / US), (unsigned long long)seed);
    }
    /* Wake order follows the deadlines: none logs after a process whose
     * deadline is later than its own by more than the tolerance. */
    int64_t latest = INT64_MIN;
    int latest_who = -1;
    for (int k = 0; k < ORDER_N; k++) {
        int i = order.log[k];
        cr_assert_geq(order.deadline[i] + tolerance, latest,
                      "%d workers: wake %d: sleeper %d (deadline +%lld us) woke after sleeper %d (deadline +%lld us); "
                      "tolerance %lld us (seed %llu)",
                      workers, k, i, (long long)((order.deadline[i] - base) / US), latest_who,
                      (long long)((latest - base) / US), (long long)(tolerance / US),
                      (unsigned long long)seed);
        if (order.deadline[i] > latest) {
            latest = order.deadline[i];
            latest_who = i;
        }
    }
    return 1;
}

Test(timer, sleepers_wake_in_deadline_order, .timeout = 20)
{
    /* One worker: the order is exact. Two: processes woken by different
     * workers (or stolen) may swap when their deadlines are close. */
    int64_t exact = 0;
    int64_t loose = test_sanitized() ? 100 * MS : 50 * MS;
    for (int rep = 0; rep < 5; rep++) {
        ASSERT_CMP(test_run(1, order_main, &exact), ==, 1);
        ASSERT_CMP(test_run(2, order_main, &loose), ==, 1);
    }
}

/* ---- many sleepers cost no CPU --------------------------------------------- */

static int64_t many_deadline;
static atomic_int many_early, many_woke, many_bad_rc;

static weft_chan many_gate; /* as order_gate: closed once many_deadline is set */

static intptr_t many_sleeper(void *arg)
{
    int v;
    int rc = weft_chan_recv(many_gate, &v, sizeof v, WEFT_FOREVER);
    if (rc == -EPIPE)
        rc = weft_sleep(many_deadline);
    if (rc != 0)
        atomic_fetch_add(&many_bad_rc, 1);
    if (weft_now() < many_deadline)
        atomic_fetch_add(&many_early, 1);
    atomic_fetch_add(&many_woke, 1);
    return 0;
}

static intptr_t many_main(void *arg)
{
    int n = test_sanitized() ? 1000 : 5000;
    weft_pid *pids = malloc((size_t)n * sizeof *pids);
    cr_assert_not_null(pids);
    /* They all sleep until 700 ms after the gate opens; the program is
     * measured while they sleep, from when all are asleep to 50 ms before
     * they wake. */
    ASSERT_OK(weft_chan_make(&many_gate, sizeof(int), 0));
    for (int i = 0; i < n; i++)
        ASSERT_OK(weft_spawn(&pids[i], many_sleeper, NULL, NULL));
    many_deadline = weft_now() + 700 * MS;
    ASSERT_OK(weft_chan_close(many_gate));
    ASSERT_OK(weft_sleep(test_in_ms(5))); /* let any spawn still starting go to sleep */
    int64_t t1 = weft_now(), c1 = test_cpu_ns();
    ASSERT_OK(weft_sleep(many_deadline - 50 * MS));
    int64_t t2 = weft_now(), c2 = test_cpu_ns();
    cr_assert_eq(atomic_load(&many_woke), 0, "%d sleepers woke early", atomic_load(&many_woke));
    int64_t wall = t2 - t1, cpu = c2 - c1;
    cr_log_info("%d sleepers: %lld us of CPU in %lld us", n, (long long)(cpu / US), (long long)(wall / US));
    cr_assert_gt(wall, 400 * MS, "measured only %lld ms", (long long)(wall / MS));
    /* The goal is < 1% of a core; 5% of one core leaves room for noise. */
    cr_assert_lt(cpu, wall / 20,
                 "%d sleeping processes used %lld us of CPU in %lld us (%.1f%% of a core)", n,
                 (long long)(cpu / US), (long long)(wall / US), 100.0 * (double)cpu / (double)wall);
    for (int i = 0; i < n; i++)
        ASSERT_OK(weft_join(pids[i], NULL, WEFT_FOREVER));
    ASSERT_CMP(atomic_load(&many_woke), ==, n);
    cr_assert_eq(atomic_load(&many_early), 0, "%d of %d sleepers woke before the deadline",
                 atomic_load(&many_early), n);
    cr_assert_eq(atomic_load(&many_bad_rc), 0, "%d sleeps failed", atomic_load(&many_bad_rc));
    ASSERT_OK(weft_chan_release(many_gate));
    free(pids);
    return 1;
}

Test(timer, many_sleepers_cost_no_cpu, .timeout = 20)
{
    ASSERT_CMP(test_run(2, many_main, NULL), ==, 1);
}

/* ---- join deadlines -------------------------------------------------------- */

static intptr_t sleep_then_7(void *arg)
{
    int64_t until = *(int64_t *)arg;
    ASSERT_OK(weft_sleep(until));
    return 7;
}

static void check_join_times_out(void)
{
    int64_t child_until = weft_now() + 300 * MS;
    weft_pid pid;
    ASSERT_OK(weft_spawn(&pid, sleep_then_7, &child_until, NULL));
    intptr_t r = 0;

    int64_t d = weft_now() + 50 * MS;
    ASSERT_RC(weft_join(pid, &r, d), -ETIMEDOUT);
    int64_t t = weft_now();
    cr_assert_geq(t, d, "join timed out %lld ns before its deadline", (long long)(d - t));
    cr_assert_lt(t - d, 500 * MS, "join timed out %lld ms after its deadline", (long long)((t - d) / MS));

    int64_t t0 = weft_now();
    ASSERT_RC(weft_join(pid, &r, 0), -ETIMEDOUT);
    ASSERT_RC(weft_join(pid, &r, weft_now() - 1), -ETIMEDOUT);
    cr_assert_lt(weft_now() - t0, 500 * MS, "a join with a past deadline blocked");
    cr_assert_eq(r, 0, "a timed-out join stored a result (%ld)", (long)r);

    ASSERT_OK(weft_join(pid, &r, weft_now() + 5000 * MS));
    ASSERT_CMP(r, ==, 7);
    ASSERT_CMP(weft_now(), >=, child_until);
    ASSERT_RC(weft_join(pid, &r, 0), -ESRCH);
}

static intptr_t join_timeout_main(void *arg)
{
    check_join_times_out();
    return 1;
}

Test(timer, join_deadline_times_out, .timeout = 20)
{
    for (unsigned workers = 1; workers <= 2; workers++)
        ASSERT_CMP(test_run(workers, join_timeout_main, NULL), ==, 1);
    /* From a thread outside the runtime. */
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = 2;
    ASSERT_OK(weft_start(&cfg));
    check_join_times_out();
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

/* A join's deadline and the child's exit land at about the same time: the
 * join either succeeds or times out (at or after its deadline), and after a
 * time-out the child can still be joined with its result. */
static int race_outcomes[2];

static void join_race_round(void)
{
    int64_t child_until = weft_now() + 1 * MS + (int64_t)(rand_next() % (200 * US));
    int64_t d = child_until - 100 * US + (int64_t)(rand_next() % (200 * US));
    weft_pid pid;
    ASSERT_OK(weft_spawn(&pid, sleep_then_7, &child_until, NULL));
    intptr_t r = 0;
    int rc = weft_join(pid, &r, d);
    if (rc == -ETIMEDOUT) {
        int64_t t = weft_now();
        cr_assert_geq(t, d, "join timed out %lld ns early", (long long)(d - t));
        race_outcomes[1]++;
        ASSERT_OK(weft_join(pid, &r, weft_now() + 5000 * MS));
    } else {
        ASSERT_OK(rc);
        race_outcomes[0]++;
    }
    ASSERT_CMP(r, ==, 7);
}

static intptr_t join_race_main(void *arg)
{
    int rounds = *(int *)arg;
    for (int i = 0; i < rounds; i++)
        join_race_round();
    return 1;
}

Test(timer, join_deadline_races_exit, .timeout = 30)
{
    uint64_t seed = rand_seed();
    int rounds = test_sanitized() ? 100 : 300;
    for (unsigned workers = 1; workers <= 2; workers++)
        cr_assert_eq(test_run(workers, join_race_main, &rounds), 1, "seed %llu",
                     (unsigned long long)seed);
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = 2;
    ASSERT_OK(weft_start(&cfg));
    for (int i = 0; i < rounds; i++)
        join_race_round();
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    cr_log_info("join races: %d joined, %d timed out", race_outcomes[0], race_outcomes[1]);
}

/* ---- shutdown cancels sleepers --------------------------------------------- */

static atomic_int cancel_rc[2];

static intptr_t cancel_sleeper(void *arg)
{
    int i = (int)(intptr_t)arg;
    atomic_store(&cancel_rc[i], weft_sleep(i == 0 ? WEFT_FOREVER : weft_now() + 10000 * MS));
    return 0;
}

static intptr_t cancel_main(void *arg)
{
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = 1;
    for (int i = 0; i < 2; i++)
        ASSERT_OK(weft_spawn(NULL, cancel_sleeper, (void *)(intptr_t)i, &opts));
    ASSERT_OK(weft_sleep(test_in_ms(5)));
    return 1;
}

Test(timer, shutdown_cancels_sleepers, .timeout = 20)
{
    for (unsigned workers = 1; workers <= 2; workers++) {
        atomic_store(&cancel_rc[0], 1);
        atomic_store(&cancel_rc[1], 1);
        int64_t t0 = weft_now();
        ASSERT_CMP(test_run(workers, cancel_main, NULL), ==, 1);
        int64_t took = weft_now() - t0;
        cr_assert_lt(took, 2000 * MS, "shutdown waited %lld ms for sleepers", (long long)(took / MS));
        ASSERT_RC(atomic_load(&cancel_rc[0]), -ECANCELED);
        ASSERT_RC(atomic_load(&cancel_rc[1]), -ECANCELED);
    }
}

/* ---- an idle worker serves a busy worker's timers --------------------------- */

static struct {
    atomic_int asleep, woke;
    int first_worker;
    int64_t slept_at, woke_at;
    int64_t busy_ns;
} busy;

/* A: sleeps 50 ms on the worker it starts on. */
static intptr_t busy_sleeper(void *arg)
{
    busy.first_worker = weft_worker_id();
    busy.slept_at = weft_now();
    atomic_store(&busy.asleep, 1);
    ASSERT_OK(weft_sleep(busy.slept_at + 50 * MS));
    busy.woke_at = weft_now();
    atomic_store(&busy.woke, 1);
    return 0;
}

/* B: computes without yielding until A woke, for 500 ms at most. */
static intptr_t busy_computer(void *arg)
{
    int64_t t0 = weft_now();
    while (!atomic_load(&busy.woke) && weft_now() - t0 < 500 * MS) {
    }
    busy.busy_ns = weft_now() - t0;
    return 0;
}

/* Spawns A to start on worker 0, then B pinned to worker 0, from the
 * worker the driver is pinned to. */
static intptr_t busy_driver(void *arg)
{
    memset(&busy, 0, sizeof busy);
    /* Compute first: meanwhile the other worker runs dry and parks. */
    int64_t until = weft_now() + 5 * MS;
    while (weft_now() < until) {
    }
    weft_spawn_opts a, b;
    weft_spawn_opts_init(&a);
    a.worker = 0; /* starts there, not pinned */
    weft_spawn_opts_init(&b);
    b.worker = 0;
    b.pinned = 1;
    weft_pid pa, pb;
    ASSERT_OK(weft_spawn(&pa, busy_sleeper, NULL, &a));
    while (!atomic_load(&busy.asleep))
        ASSERT_OK(weft_sleep(test_in_ms(1)));
    ASSERT_OK(weft_sleep(test_in_ms(1))); /* A's timer is armed by now */
    ASSERT_OK(weft_spawn(&pb, busy_computer, NULL, &b));
    ASSERT_OK(weft_join(pa, NULL, WEFT_FOREVER));
    ASSERT_OK(weft_join(pb, NULL, WEFT_FOREVER));
    cr_assert_eq(busy.first_worker, 0, "A started on worker %d", busy.first_worker);
    int64_t slept = busy.woke_at - busy.slept_at;
    cr_assert_geq(slept, 50 * MS, "A woke after %lld us, before its deadline", (long long)(slept / US));
    cr_assert_lt(slept, 400 * MS,
                 "A's 50 ms sleep on worker 0 took %lld ms while B kept worker 0 busy for %lld ms "
                 "(driver on worker %d): worker 1 was idle but did not fire A's timer",
                 (long long)(slept / MS), (long long)(busy.busy_ns / MS), (int)(intptr_t)arg);
    return 1;
}

static intptr_t busy_main(void *arg)
{
    int driver_worker = (int)(intptr_t)arg;
    weft_spawn_opts d;
    weft_spawn_opts_init(&d);
    d.worker = driver_worker;
    d.pinned = 1;
    weft_pid pid;
    intptr_t r = 0;
    ASSERT_OK(weft_spawn(&pid, busy_driver, arg, &d));
    ASSERT_OK(weft_join(pid, &r, WEFT_FOREVER));
    return r;
}

Test(timer, idle_worker_fires_busy_workers_timer_driver_elsewhere, .timeout = 20)
{
    for (int rep = 0; rep < 5; rep++)
        ASSERT_CMP(test_run(2, busy_main, (void *)(intptr_t)1), ==, 1);
}

Test(timer, idle_worker_fires_busy_workers_timer, .timeout = 20)
{
    /* Everything starts on worker 0 while worker 1 idles. */
    for (int rep = 0; rep < 5; rep++)
        ASSERT_CMP(test_run(2, busy_main, (void *)(intptr_t)0), ==, 1);
}
