/* test-sched.c: workers, stealing, pinning, fairness, parking and waking. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#include "test.h"




/* Computes without yielding for ns of wall time. */
static void spin_for(int64_t ns)
{
    int64_t end = weft_now() + ns;
    while (weft_now() < end) {
    }
}

static void thread_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static uint64_t rand_state = 1;

static uint64_t rand_next(void)
{
    rand_state ^= rand_state >> 12;
    rand_state ^= rand_state << 25;
    rand_state ^= rand_state >> 27;
    return rand_state * UINT64_C(2685821657736338717);
}

static void start_runtime(unsigned workers)
{
    start_workers(workers);
    ASSERT_CMP(weft_workers(), ==, (int)workers);
}

/* ---- both workers run processes ---------------------------------------------- */

static atomic_int seen_on[2];

static intptr_t short_cpu(void *arg)
{
    spin_for(100 * US);
    int id = weft_worker_id();
    cr_assert(id == 0 || id == 1, "weft_worker_id() = %d at 2 workers", id);
    atomic_fetch_add(&seen_on[id], 1);
    return id;
}

static intptr_t both_main(void *arg)
{
    enum { N = 1000 };
    static weft_pid pids[N];
    spin_for(5 * MS); /* the other worker runs dry and parks meanwhile */
    for (int i = 0; i < N; i++)
        ASSERT_OK(weft_spawn(&pids[i], short_cpu, NULL, NULL));
    for (int i = 0; i < N; i++)
        ASSERT_OK(weft_join(pids[i], NULL, WEFT_FOREVER));
    return 1;
}

Test(sched, both_workers_run_processes, .timeout = 20)
{
    for (int rep = 0; rep < 5; rep++) {
        atomic_store(&seen_on[0], 0);
        atomic_store(&seen_on[1], 0);
        ASSERT_CMP(test_run(2, both_main, NULL), ==, 1);
        int a = atomic_load(&seen_on[0]), b = atomic_load(&seen_on[1]);
        ASSERT_CMP(a + b, ==, 1000);
        cr_assert(a > 0 && b > 0,
                  "1000 CPU-bound processes (100 us each) spawned by one process at 2 workers: "
                  "%d ran on worker 0, %d on worker 1 (round %d)", a, b, rep);
    }
}

/* ---- work stealing --------------------------------------------------------- */

enum { STEAL_N = 100 };
static const int64_t steal_each = 2 * MS;

/* How a child holds its worker for steal_each without yielding. */
enum hold { HOLD_SPIN, HOLD_SYSCALL };

static intptr_t steal_child_spin(void *arg)
{
    spin_for(steal_each);
    atomic_fetch_add(&seen_on[weft_worker_id()], 1);
    return 0;
}

/* Blocks its worker's thread in the kernel: to the scheduler this is the
 * same as computing (the worker makes no scheduling decision meanwhile),
 * but it needs no CPU, so the timing does not depend on how many CPUs the
 * machine has free for this test. */
static atomic_int in_syscall, most_in_syscall;

static intptr_t steal_child_syscall(void *arg)
{
    int now = atomic_fetch_add(&in_syscall, 1) + 1;
    int most = atomic_load(&most_in_syscall);
    while (now > most && !atomic_compare_exchange_weak(&most_in_syscall, &most, now)) {
    }
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)steal_each};
    while (nanosleep(&ts, &ts) != 0) {
    }
    atomic_fetch_sub(&in_syscall, 1);
    atomic_fetch_add(&seen_on[weft_worker_id()], 1);
    return 0;
}

struct steal_run {
    enum hold hold;
    int detached;
};

/* Spawns STEAL_N children that each hold their worker for steal_each;
 * returns the wall time until all have finished. */
static intptr_t steal_spawner(void *arg)
{
    const struct steal_run *run = arg;
    weft_pid pids[STEAL_N];
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = run->detached;
    weft_proc_fn child = run->hold == HOLD_SPIN ? steal_child_spin : steal_child_syscall;
    /* Compute first: meanwhile the other worker runs dry and parks, so it
     * has to be woken to help. */
    spin_for(5 * MS);
    int64_t t0 = weft_now();
    for (int i = 0; i < STEAL_N; i++)
        ASSERT_OK(weft_spawn(run->detached ? NULL : &pids[i], child, NULL, &opts));
    if (run->detached) {
        while (atomic_load(&seen_on[0]) + atomic_load(&seen_on[1]) < STEAL_N)
            ASSERT_OK(weft_sleep(weft_now() + 100 * US));
    } else {
        for (int i = 0; i < STEAL_N; i++)
            ASSERT_OK(weft_join(pids[i], NULL, WEFT_FOREVER));
    }
    return (intptr_t)(weft_now() - t0);
}

static intptr_t steal_main(void *arg)
{
    /* The spawner starts on worker 0 (not pinned: it may be stolen too). */
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.worker = 0;
    weft_pid pid;
    intptr_t wall = 0;
    ASSERT_OK(weft_spawn(&pid, steal_spawner, arg, &opts));
    ASSERT_OK(weft_join(pid, &wall, WEFT_FOREVER));
    return wall;
}

/* One process spawns STEAL_N children that hold their worker 2 ms each:
 * at 2 workers the other worker must take part (steal the spawner or the
 * children). Children blocked in the kernel need no CPU, so two of them
 * must be seen blocked at once: the other worker ran one while the first
 * was held. (Not timed: a wall-time bound fails on a loaded machine.) */
static void check_stealing(enum hold hold, int detached)
{
    struct steal_run run = {hold, detached};
    const char *kind = hold == HOLD_SPIN ? (detached ? "computing, detached" : "computing, joined")
                                         : (detached ? "in a syscall, detached" : "in a syscall, joined");
    int64_t serial = STEAL_N * steal_each;
    for (int rep = 0; rep < 3; rep++) {
        atomic_store(&seen_on[0], 0);
        atomic_store(&seen_on[1], 0);
        atomic_store(&most_in_syscall, 0);
        int64_t wall = test_run(2, steal_main, &run);
        int a = atomic_load(&seen_on[0]), b = atomic_load(&seen_on[1]);
        ASSERT_CMP(a + b, ==, STEAL_N);
        cr_log_info("stealing (%s): %lld ms at 2 workers (%d on worker 0, %d on 1)", kind,
                    (long long)(wall / MS), a, b);
        cr_assert(a >= STEAL_N / 10 && b >= STEAL_N / 10,
                  "%d children holding their worker %lld ms each without yielding (%s), spawned "
                  "by one process at 2 workers: %d ran on worker 0 and %d on worker 1 (%lld ms; "
                  "round %d)",
                  STEAL_N, (long long)(steal_each / MS), kind, a, b, (long long)(wall / MS), rep);
        if (hold == HOLD_SYSCALL)
            cr_assert_eq(atomic_load(&most_in_syscall), 2,
                         "%d children holding their worker %lld ms each (%s) at 2 workers: at "
                         "most %d at once (%lld ms, serial %lld; %d ran on worker 0, %d on "
                         "worker 1; round %d)",
                         STEAL_N, (long long)(steal_each / MS), kind,
                         atomic_load(&most_in_syscall), (long long)(wall / MS),
                         (long long)(serial / MS), a, b, rep);
    }
}

Test(sched, idle_worker_steals_cpu_bound_work_joined, .timeout = 20)
{
    check_stealing(HOLD_SPIN, 0);
}

Test(sched, idle_worker_steals_cpu_bound_work_detached, .timeout = 20)
{
    check_stealing(HOLD_SPIN, 1);
}

Test(sched, idle_worker_steals_blocked_worker_work_joined, .timeout = 20)
{
    check_stealing(HOLD_SYSCALL, 0);
}

Test(sched, idle_worker_steals_blocked_worker_work_detached, .timeout = 20)
{
    check_stealing(HOLD_SYSCALL, 1);
}

/* ---- a chain of joins -------------------------------------------------------- */

enum { CHAIN_DEPTH = 1000 };

static intptr_t chain_link(void *arg)
{
    intptr_t depth = (intptr_t)arg;
    if (depth == CHAIN_DEPTH)
        return 0;
    weft_pid next;
    ASSERT_OK(weft_spawn(&next, chain_link, (void *)(depth + 1), NULL));
    if (depth % 3 == 0)
        ASSERT_OK(weft_yield());
    intptr_t r = -1;
    ASSERT_OK(weft_join(next, &r, WEFT_FOREVER));
    return r + 1;
}

Test(sched, chain_of_joins_wakes_each_joiner, .timeout = 30)
{
    int reps = test_sanitized() ? 5 : 20;
    for (int rep = 0; rep < reps; rep++)
        for (unsigned workers = 1; workers <= 2; workers++) {
            intptr_t r = test_run(workers, chain_link, (void *)(intptr_t)0);
            cr_assert_eq(r, CHAIN_DEPTH, "chain of %d joins returned %ld at %u workers (round %d)",
                         CHAIN_DEPTH, (long)r, workers, rep);
        }
}

/* ---- pinned processes never migrate ------------------------------------------ */

static atomic_long pinned_steps, pressure_steps;
static atomic_int pressure_stop;

static intptr_t trivial(void *arg)
{
    return (intptr_t)arg;
}

static intptr_t pinned_proc(void *arg)
{
    int expect = (int)(intptr_t)arg;
    int steps = test_sanitized() ? 300 : 2000;
    for (int i = 0; i < steps; i++) {
        int id = weft_worker_id();
        cr_assert_eq(id, expect, "a process pinned to worker %d ran on worker %d (step %d)", expect,
                     id, i);
        switch (i % 4) {
        case 0:
            ASSERT_OK(weft_yield());
            break;
        case 1:
            ASSERT_OK(weft_sleep(weft_now() + (int64_t)(i % 7) * 10 * US));
            break;
        case 2: {
            weft_pid child;
            intptr_t r = 0;
            ASSERT_OK(weft_spawn(&child, trivial, (void *)(intptr_t)i, NULL));
            ASSERT_OK(weft_join(child, &r, WEFT_FOREVER));
            ASSERT_CMP(r, ==, i);
            break;
        }
        default:
            spin_for(2 * US);
            break;
        }
        atomic_fetch_add(&pinned_steps, 1);
    }
    ASSERT_CMP(weft_worker_id(), ==, expect);
    return 0;
}

/* Unpinned processes that keep both run queues full. */
static intptr_t pressure_proc(void *arg)
{
    while (!atomic_load(&pressure_stop)) {
        spin_for(5 * US);
        atomic_fetch_add(&pressure_steps, 1);
        ASSERT_OK(weft_yield());
    }
    return 0;
}

static intptr_t pinned_main(void *arg)
{
    enum { PRESSURE = 64, PINNED_EACH = 8 };
    weft_pid pressure[PRESSURE], pinned[3 * PINNED_EACH];
    atomic_store(&pressure_stop, 0);
    for (int i = 0; i < PRESSURE; i++)
        ASSERT_OK(weft_spawn(&pressure[i], pressure_proc, NULL, NULL));
    int n = 0;
    for (int i = 0; i < PINNED_EACH; i++)
        for (int w = 0; w < 2; w++) {
            weft_spawn_opts opts;
            weft_spawn_opts_init(&opts);
            opts.worker = w;
            opts.pinned = 1;
            ASSERT_OK(weft_spawn(&pinned[n++], pinned_proc, (void *)(intptr_t)w, &opts));
        }
    for (int i = 0; i < PINNED_EACH; i++) {
        /* Pinned to the spawner's worker: no worker named. */
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        opts.pinned = 1;
        int here = weft_worker_id();
        ASSERT_OK(weft_spawn(&pinned[n++], pinned_proc, (void *)(intptr_t)here, &opts));
        ASSERT_OK(weft_yield()); /* may move this (unpinned) spawner */
    }
    for (int i = 0; i < n; i++)
        ASSERT_OK(weft_join(pinned[i], NULL, WEFT_FOREVER));
    atomic_store(&pressure_stop, 1);
    for (int i = 0; i < PRESSURE; i++)
        ASSERT_OK(weft_join(pressure[i], NULL, WEFT_FOREVER));
    return n;
}

Test(sched, pinned_processes_never_migrate, .timeout = 30)
{
    int steps = test_sanitized() ? 300 : 2000;
    for (int rep = 0; rep < 3; rep++) {
        atomic_store(&pinned_steps, 0);
        intptr_t n = test_run(2, pinned_main, NULL);
        ASSERT_CMP(atomic_load(&pinned_steps), ==, n * steps);
        ASSERT_CMP(atomic_load(&pressure_steps), >, 0);
    }
}

/* ---- yield is round robin ---------------------------------------------------- */

enum { FAIR_PROCS = 4, FAIR_YIELDS = 10000 };
static int fair_log[FAIR_PROCS * FAIR_YIELDS];
static int fair_len;
static int fair_count[FAIR_PROCS];

static intptr_t fair_proc(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (int i = 0; i < FAIR_YIELDS; i++) {
        fair_log[fair_len++] = me; /* one worker: no data race */
        fair_count[me]++;
        ASSERT_OK(weft_yield());
    }
    return 0;
}

static intptr_t fair_main(void *arg)
{
    weft_pid pids[FAIR_PROCS];
    for (int i = 0; i < FAIR_PROCS; i++)
        ASSERT_OK(weft_spawn(&pids[i], fair_proc, (void *)(intptr_t)i, NULL));
    for (int i = 0; i < FAIR_PROCS; i++)
        ASSERT_OK(weft_join(pids[i], NULL, WEFT_FOREVER));
    return 1;
}

Test(sched, yield_is_round_robin, .timeout = 20)
{
    ASSERT_CMP(test_run(1, fair_main, NULL), ==, 1);
    ASSERT_CMP(fair_len, ==, FAIR_PROCS * FAIR_YIELDS);
    for (int i = 0; i < FAIR_PROCS; i++)
        ASSERT_CMP(fair_count[i], ==, FAIR_YIELDS);
    /* The first round holds each process once... */
    int seen = 0;
    for (int k = 0; k < FAIR_PROCS; k++)
        seen |= 1 << fair_log[k];
    cr_assert_eq(seen, (1 << FAIR_PROCS) - 1, "first round: %d %d %d %d", fair_log[0], fair_log[1],
                 fair_log[2], fair_log[3]);
    /* ...and every later step repeats the round: between two turns of a
     * process, each other one ran exactly once. */
    for (int k = FAIR_PROCS; k < fair_len; k++)
        cr_assert_eq(fair_log[k], fair_log[k - FAIR_PROCS],
                     "step %d ran process %d, but %d steps before it ran %d (log %d %d %d %d %d)",
                     k, fair_log[k], FAIR_PROCS, fair_log[k - FAIR_PROCS], fair_log[k - 4],
                     fair_log[k - 3], fair_log[k - 2], fair_log[k - 1], fair_log[k]);
}

/* ---- an idle runtime uses no CPU ---------------------------------------------- */

static void check_idle(const char *what)
{
    int64_t c0 = test_cpu_ns(), t0 = weft_now();
    thread_sleep_ms(500);
    int64_t cpu = test_cpu_ns() - c0, wall = weft_now() - t0;
    cr_log_info("idle (%s): %lld us of CPU in %lld ms", what, (long long)(cpu / US),
                (long long)(wall / MS));
    /* The goal is < 1% of a core; 5% leaves room for noise. */
    cr_assert_lt(cpu, wall / 20, "an idle runtime (%s) used %lld us of CPU in %lld ms (%.1f%%)",
                 what, (long long)(cpu / US), (long long)(wall / MS),
                 100.0 * (double)cpu / (double)wall);
}

static intptr_t sleep_long(void *arg)
{
    int rc = weft_sleep(weft_now() + 60000 * MS);
    return rc;
}

Test(sched, idle_runtime_uses_no_cpu, .timeout = 20)
{
    start_runtime(2);
    check_idle("just started");
    for (int i = 0; i < 500; i++) {
        weft_pid pid;
        ASSERT_OK(weft_spawn(&pid, short_cpu, NULL, NULL));
        ASSERT_OK(weft_join(pid, NULL, WEFT_FOREVER));
    }
    check_idle("after work");
    weft_pid sleeper;
    ASSERT_OK(weft_spawn(&sleeper, sleep_long, NULL, NULL));
    check_idle("one process sleeping 60 s");
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

/* ---- no lost wake-ups ------------------------------------------------------- */

static intptr_t short_sleeper(void *arg)
{
    int64_t ns = (int64_t)(intptr_t)arg;
    ASSERT_OK(weft_sleep(weft_now() + ns));
    return 1;
}

static intptr_t sleep_joiner(void *arg)
{
    weft_pid pid = *(weft_pid *)arg;
    intptr_t r = 0;
    int rc = weft_join(pid, &r, weft_now() + 5000 * MS);
    cr_assert_eq(rc, 0, "joining a process that sleeps <= 200 us: %d (%s): a wake-up was lost", rc,
                 weft_strerror(rc));
    return r;
}

static intptr_t yield_once(void *arg)
{
    ASSERT_OK(weft_yield());
    return 1;
}

static intptr_t spawn_joiner(void *arg)
{
    intptr_t sum = 0;
    for (int i = 0; i < 3; i++) {
        weft_pid pid;
        intptr_t r = 0;
        ASSERT_OK(weft_spawn(&pid, yield_once, NULL, NULL));
        ASSERT_OK(weft_join(pid, &r, weft_now() + 5000 * MS));
        sum += r;
    }
    return sum;
}

static intptr_t lost_main(void *arg)
{
    int iters = *(int *)arg;
    for (int i = 0; i < iters; i++) {
        weft_pid s, j, p;
        int64_t ns = (int64_t)(rand_next() % (200 * US + 1));
        ASSERT_OK(weft_spawn(&s, short_sleeper, (void *)(intptr_t)ns, NULL));
        ASSERT_OK(weft_spawn(&j, sleep_joiner, &s, NULL));
        ASSERT_OK(weft_spawn(&p, spawn_joiner, NULL, NULL));
        intptr_t rj = 0, rp = 0;
        int rc = weft_join(j, &rj, weft_now() + 5000 * MS);
        cr_assert_eq(rc, 0, "iteration %d: join: %d (%s)", i, rc, weft_strerror(rc));
        rc = weft_join(p, &rp, weft_now() + 5000 * MS);
        cr_assert_eq(rc, 0, "iteration %d: join: %d (%s)", i, rc, weft_strerror(rc));
        ASSERT_CMP(rj, ==, 1);
        ASSERT_CMP(rp, ==, 3);
        if (i % 2)
            ASSERT_OK(weft_sleep(weft_now() + (int64_t)(rand_next() % (50 * US))));
    }
    return 1;
}

Test(sched, no_lost_wakeups, .timeout = 30)
{
    rand_state = (uint64_t)weft_now() | 1;
    int iters = test_sanitized() ? 500 : 2000;
    for (unsigned workers = 2; workers >= 1; workers--) {
        /* Joined under a deadline, so that a hang fails with a message. */
        start_runtime(workers);
        weft_pid pid;
        intptr_t r = 0;
        ASSERT_OK(weft_spawn(&pid, lost_main, &iters, NULL));
        int rc = weft_join(pid, &r, weft_now() + 12000 * MS);
        cr_assert_eq(rc, 0, "%u workers: %d rounds of sleep/spawn/join did not finish in 12 s: %d (%s)",
                     workers, iters, rc, weft_strerror(rc));
        ASSERT_CMP(r, ==, 1);
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        iters /= 4;
    }
}

/* ---- outside spawns wake a parked runtime ------------------------------------- */

struct outside_job {
    int64_t start_to_join; /* ns from spawn to joined */
    int64_t start_to_run;  /* ns from spawn to the process running */
    int64_t spawned_at, ran_at;
    int rc_spawn, rc_join;
    intptr_t result;
    int opts_kind;
};

static intptr_t outside_proc(void *arg)
{
    struct outside_job *job = arg;
    job->ran_at = weft_now();
    if (job->opts_kind == 3)
        ASSERT_OK(weft_sleep(weft_now() + 1 * MS));
    return 42;
}

static void *outside_thread(void *arg)
{
    struct outside_job *job = arg;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    if (job->opts_kind == 1)
        opts.worker = 1;
    if (job->opts_kind == 2) {
        opts.worker = 0;
        opts.pinned = 1;
    }
    weft_pid pid;
    job->spawned_at = weft_now();
    job->rc_spawn = weft_spawn(&pid, outside_proc, job, &opts);
    if (job->rc_spawn == 0)
        job->rc_join = weft_join(pid, &job->result, weft_now() + 5000 * MS);
    job->start_to_join = weft_now() - job->spawned_at;
    job->start_to_run = job->ran_at - job->spawned_at;
    return NULL;
}

Test(sched, outside_spawn_wakes_parked_runtime, .timeout = 30)
{
    start_runtime(2);
    for (int i = 0; i < 50; i++) {
        /* Workers park within microseconds of running dry; some rounds idle
         * longer, in case parking only deepens with time. */
        thread_sleep_ms(i < 5 ? 100 : 20);
        struct outside_job job;
        memset(&job, 0, sizeof job);
        job.opts_kind = i % 4;
        pthread_t t;
        ASSERT_CMP(pthread_create(&t, NULL, outside_thread, &job), ==, 0);
        ASSERT_CMP(pthread_join(t, NULL), ==, 0);
        ASSERT_OK(job.rc_spawn);
        ASSERT_OK(job.rc_join);
        ASSERT_CMP(job.result, ==, 42);
        cr_assert_lt(job.start_to_join, 2000 * MS,
                     "round %d (kind %d): a process spawned from a thread into an idle runtime "
                     "ran after %lld us and was joined after %lld us",
                     i, job.opts_kind, (long long)(job.start_to_run / US),
                     (long long)(job.start_to_join / US));
    }
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

Test(sched, worker_id_outside_a_process, .timeout = 10)
{
    ASSERT_RC(weft_worker_id(), -EPERM);
    start_runtime(2);
    ASSERT_RC(weft_worker_id(), -EPERM);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

/* ---- a message pair does not starve the run queue ------------------------------ */

/* Two processes wake each other through run-next for ever (a rendezvous
 * ping-pong) on one worker, until a third one, waiting in the run queue,
 * runs and stops them: the run queue must get a turn. */
static atomic_int pair_stop;
static weft_chan pair_ch;

static intptr_t pair_member(void *arg)
{
    int64_t v = 0;
    long rounds = 0;
    while (!atomic_load(&pair_stop)) {
        if (arg ? weft_chan_send(pair_ch, &v, sizeof v, WEFT_FOREVER) != 0
                : weft_chan_recv(pair_ch, &v, sizeof v, WEFT_FOREVER) != 0)
            break;
        rounds++;
    }
    return rounds;
}

static intptr_t stopper(void *arg)
{
    weft_yield(); /* into the run queue, behind the pair */
    atomic_store(&pair_stop, 1);
    return weft_chan_close(pair_ch);
}

static intptr_t pair_main(void *arg)
{
    weft_pid a, b, s;
    if (weft_chan_make(&pair_ch, sizeof(int64_t), 0) != 0 ||
        weft_spawn(&s, stopper, NULL, NULL) != 0 || weft_spawn(&a, pair_member, NULL, NULL) != 0 ||
        weft_spawn(&b, pair_member, (void *)1, NULL) != 0)
        return -1;
    intptr_t ra = 0, rb = 0, rs = -1;
    weft_join(a, &ra, WEFT_FOREVER);
    weft_join(b, &rb, WEFT_FOREVER);
    weft_join(s, &rs, WEFT_FOREVER);
    weft_chan_release(pair_ch);
    return rs == 0 && ra > 0 ? 1 : 0;
}

Test(sched, message_pair_does_not_starve_run_queue, .timeout = 20)
{
    ASSERT_CMP(test_run(1, pair_main, NULL), ==, 1);
}

/* A parent that spawned a child waits in its worker's run-next slot while
 * the child computes until the parent has run: the idle worker must take
 * the parent, even when it parked just before the parent got there (it
 * looks again while another worker is busy). Repeated, to meet the window. */
static atomic_int parent_ran;

static intptr_t compute_until_parent_runs(void *arg)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!atomic_load(&parent_ran)) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 5)
            return -1; /* the parent starved */
    }
    return 0;
}

static intptr_t starving_parent_main(void *arg)
{
    for (int i = 0; i < 300; i++) {
        atomic_store(&parent_ran, 0);
        weft_pid pid;
        if (weft_spawn(&pid, compute_until_parent_runs, NULL, NULL) != 0)
            return -1000;
        atomic_store(&parent_ran, 1);
        intptr_t r = -2;
        if (weft_join(pid, &r, WEFT_FOREVER) != 0 || r != 0)
            return i + 1; /* the round whose parent starved */
        /* Let the other worker go idle and park again. */
        weft_sleep(weft_now() + 100 * US);
    }
    return 0;
}

Test(sched, parent_in_run_next_is_taken_by_an_idle_worker, .timeout = 60)
{
    intptr_t r = test_run(2, starving_parent_main, NULL);
    cr_assert_eq(r, 0, "round %ld: the parent did not run for 5 s while its child computed",
                 (long)r);
}
