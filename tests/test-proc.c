/* test-proc.c: processes: spawn and join, detach, self, exit, yield, sleep,
 * join deadlines, names, placement on workers, migration, trees and volume. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#define TEST_PROC_CHECKS
#include "test.h"

/* Checks inside processes. A worker thread cannot end a Criterion test (its
 * assertions longjmp to the test's thread), so a failed check is counted and
 * the first one kept; the test asserts after the run that none failed. */


static intptr_t ret_arg(void *arg)
{
    return (intptr_t)arg;
}

static intptr_t yield_ret_arg(void *arg)
{
    weft_yield();
    return (intptr_t)arg;
}

/* A gate that processes wait at, yielding, until the main process opens it. */
static atomic_int gate;

static intptr_t wait_gate(void *arg)
{
    while (!atomic_load(&gate))
        if (weft_yield() == -ECANCELED)
            break;
    return (intptr_t)arg;
}

/* ---- spawn and join ---------------------------------------------------------- */

static intptr_t spawn_join_many(void *arg)
{
    int n = (int)(intptr_t)arg;
    weft_pid *pids = calloc((size_t)n, sizeof *pids);
    for (int i = 0; i < n; i++)
        CHECK_RC(weft_spawn(&pids[i], (i & 1) ? yield_ret_arg : ret_arg, (void *)(intptr_t)(i + 1),
                            NULL), 0);
    intptr_t sum = 0;
    for (int i = 0; i < n; i++) {
        intptr_t r = -1;
        CHECK_RC(weft_join(pids[i], &r, WEFT_FOREVER), 0);
        CHECK(r == i + 1, "process %d returned %ld", i, (long)r);
        sum += r;
    }
    free(pids);
    return sum;
}

Test(proc, spawn_join_sums_results, .timeout = 20)
{
    int n = test_sanitized() ? 500 : 2000;
    for (unsigned workers = 1; workers <= 2; workers++)
        for (int round = 0; round < 10; round++) {
            intptr_t sum = test_run(workers, spawn_join_many, (void *)(intptr_t)n);
            cr_assert_eq(sum, (intptr_t)n * (n + 1) / 2, "%u workers, round %d: sum %ld, expected %ld",
                         workers, round, (long)sum, (long)n * (n + 1) / 2);
        }
    ASSERT_CHECKS();
}

static intptr_t sleep_then_7(void *arg)
{
    CHECK_RC(weft_sleep(test_in_ms(20)), 0);
    return 7;
}

static intptr_t join_waits_main(void *arg)
{
    for (int i = 0; i < 5; i++) {
        int64_t t0 = weft_now();
        weft_pid pid;
        CHECK_RC(weft_spawn(&pid, sleep_then_7, NULL, NULL), 0);
        intptr_t r = 0;
        CHECK_RC(weft_join(pid, &r, WEFT_FOREVER), 0);
        int64_t elapsed = weft_now() - t0;
        CHECK(r == 7, "result %ld", (long)r);
        CHECK(elapsed >= 20 * MS, "join returned after %lld ns, child sleeps 20 ms", (long long)elapsed);
    }
    return 0;
}

Test(proc, join_from_main_process_blocks_until_child_returns, .timeout = 20)
{
    run_1_and_2(join_waits_main, NULL);
}

/* A joinable pid stays valid after its process returned, until it is joined. */
static atomic_int child_done;

static intptr_t set_done_ret_arg(void *arg)
{
    atomic_store(&child_done, 1);
    return (intptr_t)arg;
}

static intptr_t pid_valid_until_joined_main(void *arg)
{
    for (int i = 0; i < 200; i++) {
        atomic_store(&child_done, 0);
        weft_pid pid;
        CHECK_RC(weft_spawn(&pid, set_done_ret_arg, (void *)(intptr_t)i, NULL), 0);
        while (!atomic_load(&child_done))
            weft_yield();
        for (int k = 0; k < 10; k++)
            weft_yield(); /* let it finish leaving its stack, wherever it ran */
        char buf[WEFT_NAME_MAX];
        CHECK(weft_proc_name(pid, buf, sizeof buf) > 0, "name of an ended, unjoined pid: %d",
              weft_proc_name(pid, buf, sizeof buf));
        /* Its worker's thread may have been preempted by the OS between the
         * store and the return: a non-blocking join succeeds once it ended. */
        intptr_t r = -1;
        int rc;
        while ((rc = weft_join(pid, &r, 0)) == -ETIMEDOUT)
            weft_yield();
        CHECK_RC(rc, 0);
        CHECK(r == i, "result %ld, expected %d", (long)r, i);
        CHECK_RC(weft_join(pid, &r, 0), -ESRCH);
        CHECK_RC(weft_proc_name(pid, buf, sizeof buf), -ESRCH);
    }
    return 0;
}

Test(proc, ended_pid_stays_valid_until_joined, .timeout = 20)
{
    run_1_and_2(pid_valid_until_joined_main, NULL);
}

/* A joined pid is released at once, even while its process, on another
 * worker, is still switching away from its stack. */
static intptr_t joined_pid_stale_body(void *arg)
{
    int iters = test_sanitized() ? 2000 : 10000;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.pinned = 1;
    opts.worker = 1;
    for (int i = 0; i < iters; i++) {
        atomic_store(&child_done, 0);
        weft_pid pid;
        CHECK_RC(weft_spawn(&pid, set_done_ret_arg, (void *)(intptr_t)i, &opts), 0);
        while (!atomic_load(&child_done))
            ; /* the child runs on the other worker */
        intptr_t r = -1;
        int rc;
        while ((rc = weft_join(pid, &r, 0)) == -ETIMEDOUT)
            ;
        CHECK_RC(rc, 0);
        char buf[WEFT_NAME_MAX];
        rc = weft_proc_name(pid, buf, sizeof buf);
        if (rc != -ESRCH) {
            check_fail(__LINE__, "iteration %d: weft_proc_name of a joined pid returned %d", i, rc);
            break;
        }
        CHECK_RC(weft_detach(pid), -ESRCH);
        CHECK_RC(weft_join(pid, NULL, 0), -ESRCH);
    }
    return 0;
}

static intptr_t joined_pid_stale_main(void *arg)
{
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.pinned = 1;
    opts.worker = 0;
    weft_pid pid;
    CHECK_RC(weft_spawn(&pid, joined_pid_stale_body, NULL, &opts), 0);
    CHECK_RC(weft_join(pid, NULL, WEFT_FOREVER), 0);
    return 0;
}

Test(proc, joined_pid_is_stale_at_once, .timeout = 20)
{
    cr_assert_eq(test_run(2, joined_pid_stale_main, NULL), 0);
    ASSERT_CHECKS();
}

/* ---- detach ------------------------------------------------------------------ */

/* Polls (yielding) until pid is stale; returns weft_proc_name's last code. */
static int wait_stale(weft_pid pid)
{
    char buf[WEFT_NAME_MAX];
    int64_t limit = test_in_ms(5000);
    int rc;
    while ((rc = weft_proc_name(pid, buf, sizeof buf)) > 0 && weft_now() < limit)
        weft_yield();
    return rc;
}

static intptr_t detach_main(void *arg)
{
    int iters = test_sanitized() ? 100 : 500;
    for (int i = 0; i < iters; i++) {
        /* Detached while it runs: the pid stays valid until it returns. */
        atomic_store(&gate, 0);
        weft_pid pid;
        CHECK_RC(weft_spawn(&pid, wait_gate, NULL, NULL), 0);
        CHECK_RC(weft_detach(pid), 0);
        char buf[WEFT_NAME_MAX];
        int n = weft_proc_name(pid, buf, sizeof buf);
        CHECK(n > 0, "weft_proc_name of a running detached process: %d", n);
        atomic_store(&gate, 1);
        CHECK_RC(wait_stale(pid), -ESRCH);
        CHECK_RC(weft_join(pid, NULL, 0), -ESRCH);
        CHECK_RC(weft_detach(pid), -ESRCH);

        /* Detached after it returned: stale at once (or as soon as it has
         * left its stack). */
        atomic_store(&child_done, 0);
        CHECK_RC(weft_spawn(&pid, set_done_ret_arg, NULL, NULL), 0);
        while (!atomic_load(&child_done))
            weft_yield();
        CHECK_RC(weft_detach(pid), 0);
        CHECK_RC(wait_stale(pid), -ESRCH);
        CHECK_RC(weft_join(pid, NULL, 0), -ESRCH);
    }
    return 0;
}

Test(proc, detach_makes_pid_stale_when_process_ends, .timeout = 20)
{
    run_1_and_2(detach_main, NULL);
}

static atomic_int detached_finished;

static intptr_t detached_body(void *arg)
{
    while (!atomic_load(&gate))
        if (weft_yield() == -ECANCELED)
            break;
    weft_yield();
    atomic_fetch_add(&detached_finished, 1);
    return 0;
}

static intptr_t detached_at_spawn_main(void *arg)
{
    int n = (int)(intptr_t)arg;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = 1;
    for (int i = 0; i < n; i++) {
        if (i % 2) {
            CHECK_RC(weft_spawn(NULL, detached_body, NULL, &opts), 0);
        } else {
            weft_pid pid = 0;
            CHECK_RC(weft_spawn(&pid, detached_body, NULL, &opts), 0);
            CHECK(pid != 0, "detached spawn stored pid 0");
            /* It waits at the gate: detached and running. */
            CHECK_RC(weft_join(pid, NULL, 0), -EINVAL);
            CHECK_RC(weft_detach(pid), -EINVAL);
        }
    }
    atomic_store(&gate, 1);
    return 0; /* weft_run waits for the detached processes */
}

Test(proc, detached_at_spawn_pid_null_allowed_and_all_run, .timeout = 20)
{
    int n = test_sanitized() ? 200 : 1000;
    for (unsigned workers = 1; workers <= 2; workers++)
        for (int round = 0; round < 5; round++) {
            atomic_store(&gate, 0);
            atomic_store(&detached_finished, 0);
            cr_assert_eq(test_run(workers, detached_at_spawn_main, (void *)(intptr_t)n), 0);
            cr_assert_eq(atomic_load(&detached_finished), n,
                         "%u workers: %d of %d detached processes finished", workers,
                         atomic_load(&detached_finished), n);
        }
    ASSERT_CHECKS();
}

/* ---- self and exit ------------------------------------------------------------- */

static intptr_t report_self(void *arg)
{
    *(weft_pid *)arg = weft_self();
    return 0;
}

static intptr_t self_main(void *arg)
{
    weft_pid me = weft_self();
    CHECK(me != 0, "weft_self in the main process is 0");
    weft_pid prev[100];
    for (int i = 0; i < 100; i++) {
        weft_pid pid = 0, seen = 0;
        CHECK_RC(weft_spawn(&pid, report_self, &seen, NULL), 0);
        CHECK_RC(weft_join(pid, NULL, WEFT_FOREVER), 0);
        CHECK(seen == pid, "weft_self in the child %#llx, spawn gave %#llx", (unsigned long long)seen,
              (unsigned long long)pid);
        CHECK(seen != me, "child's pid equals the parent's");
        for (int k = 0; k < i; k++)
            CHECK(prev[k] != pid, "pid %#llx reused after a join", (unsigned long long)pid);
        prev[i] = pid;
    }
    CHECK(weft_self() == me, "weft_self of main changed");
    return 0;
}

Test(proc, self_inside_equals_spawn_pid_and_outside_is_zero, .timeout = 20)
{
    cr_assert_eq(weft_self(), 0, "weft_self outside a runtime: %#llx", (unsigned long long)weft_self());
    for (unsigned workers = 1; workers <= 2; workers++)
        cr_assert_eq(test_run(workers, self_main, NULL), 0);
    cr_assert_eq(weft_self(), 0, "weft_self after a run: %#llx", (unsigned long long)weft_self());
    ASSERT_CHECKS();
}

static atomic_int after_exit;

__attribute__((noinline)) static void exit_deep(int depth, intptr_t result)
{
    if (depth == 0)
        weft_exit(result);
    else
        exit_deep(depth - 1, result);
    atomic_fetch_add(&after_exit, 1);
}

static intptr_t exiter(void *arg)
{
    exit_deep((int)((intptr_t)arg % 7), (intptr_t)arg * 3);
    atomic_fetch_add(&after_exit, 1);
    return -1;
}

static intptr_t exit_main(void *arg)
{
    weft_pid pids[100];
    for (int i = 0; i < 100; i++)
        CHECK_RC(weft_spawn(&pids[i], exiter, (void *)(intptr_t)i, NULL), 0);
    for (int i = 0; i < 100; i++) {
        intptr_t r = 0;
        CHECK_RC(weft_join(pids[i], &r, WEFT_FOREVER), 0);
        CHECK(r == i * 3, "process %d: result %ld, expected %d", i, (long)r, i * 3);
    }
    weft_exit(77); /* the main process too */
    atomic_fetch_add(&after_exit, 1);
    return 1;
}

Test(proc, exit_ends_process_with_result, .timeout = 20)
{
    for (unsigned workers = 1; workers <= 2; workers++) {
        atomic_store(&after_exit, 0);
        intptr_t r = test_run(workers, exit_main, NULL);
        cr_assert_eq(r, 77, "weft_run's result after main called weft_exit(77): %ld", (long)r);
        cr_assert_eq(atomic_load(&after_exit), 0, "code after weft_exit ran %d times",
                     atomic_load(&after_exit));
    }
    ASSERT_CHECKS();
}

/* ---- yield ----------------------------------------------------------------------- */

static struct {
    atomic_int started, len;
    char buf[64];
} ilog;

static intptr_t logger(void *arg)
{
    char me = (char)(intptr_t)arg;
    atomic_fetch_add(&ilog.started, 1);
    while (atomic_load(&ilog.started) < 2)
        weft_yield();
    for (int i = 0; i < 5; i++) {
        int k = atomic_fetch_add(&ilog.len, 1);
        ilog.buf[k] = me;
        weft_yield();
    }
    return 0;
}

/* arg: the worker to pin both loggers to, or -1 for no pinning. */
static intptr_t interleave_main(void *arg)
{
    int worker = (int)(intptr_t)arg;
    int iters = test_sanitized() ? 50 : 200;
    for (int it = 0; it < iters; it++) {
        atomic_store(&ilog.started, 0);
        atomic_store(&ilog.len, 0);
        memset(ilog.buf, 0, sizeof ilog.buf);
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        if (worker >= 0) {
            opts.pinned = 1;
            opts.worker = worker;
        }
        weft_pid a, b;
        CHECK_RC(weft_spawn(&a, logger, (void *)(intptr_t)'A', &opts), 0);
        CHECK_RC(weft_spawn(&b, logger, (void *)(intptr_t)'B', &opts), 0);
        CHECK_RC(weft_join(a, NULL, WEFT_FOREVER), 0);
        CHECK_RC(weft_join(b, NULL, WEFT_FOREVER), 0);
        int len = atomic_load(&ilog.len);
        CHECK(len == 10, "log length %d", len);
        for (int k = 1; k < len; k++)
            if (ilog.buf[k] == ilog.buf[k - 1]) {
                check_fail(__LINE__, "worker %d, iteration %d: no alternation in log \"%.10s\"",
                           worker, it, ilog.buf);
                break;
            }
    }
    return 0;
}

Test(proc, yield_interleaves_two_processes, .timeout = 20)
{
    cr_assert_eq(test_run(1, interleave_main, (void *)(intptr_t)-1), 0);
    cr_assert_eq(test_run(2, interleave_main, (void *)(intptr_t)0), 0);
    cr_assert_eq(test_run(2, interleave_main, (void *)(intptr_t)1), 0);
    ASSERT_CHECKS();
}

/* ---- sleep ----------------------------------------------------------------------- */

static intptr_t sleeper(void *arg)
{
    int64_t ms = (intptr_t)arg;
    int64_t t0 = weft_now();
    int rc = weft_sleep(t0 + ms * MS);
    int64_t elapsed = weft_now() - t0;
    CHECK_RC(rc, 0);
    CHECK(elapsed >= ms * MS, "slept %lld ns of %lld ms", (long long)elapsed, (long long)ms);
    CHECK(elapsed < (ms + 500) * MS, "slept %lld ns for %lld ms", (long long)elapsed, (long long)ms);
    return 0;
}

static intptr_t sleep_main(void *arg)
{
    /* A deadline now or in the past returns at once. */
    int64_t t0 = weft_now();
    CHECK_RC(weft_sleep(0), 0);
    CHECK_RC(weft_sleep(weft_now() - 1000 * MS), 0);
    CHECK(weft_now() - t0 < 1000 * MS, "sleep with a past deadline took %lld ns",
          (long long)(weft_now() - t0));
    sleeper((void *)(intptr_t)30);
    weft_pid pids[60];
    for (int i = 0; i < 60; i++)
        CHECK_RC(weft_spawn(&pids[i], sleeper, (void *)(intptr_t)(1 + i % 30), NULL), 0);
    for (int i = 0; i < 60; i++)
        CHECK_RC(weft_join(pids[i], NULL, WEFT_FOREVER), 0);
    return 0;
}

Test(proc, sleep_lasts_until_deadline, .timeout = 20)
{
    run_1_and_2(sleep_main, NULL);
}

/* Deadlines a few hundred nanoseconds ahead: they pass while the process is
 * between arming its timer and switching away, so the timer fires around
 * the switch. Each sleep must still return 0, after its deadline. */
static intptr_t sleep_just_ahead(void *arg)
{
    int n = test_sanitized() ? 5000 : 20000;
    uint64_t x = 88172645463325252ull + (uintptr_t)arg;
    for (int i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t deadline = weft_now() + (int64_t)(x % 400);
        int rc = weft_sleep(deadline);
        if (rc != 0 || weft_now() < deadline) {
            check_fail(__LINE__, "sleep %d: returned %d, %lld ns before its deadline", i, rc,
                       (long long)(deadline - weft_now()));
            break;
        }
    }
    return 0;
}

static intptr_t sleep_just_ahead_pair(void *arg)
{
    weft_pid pids[2];
    for (int i = 0; i < 2; i++)
        CHECK_RC(weft_spawn(&pids[i], sleep_just_ahead, (void *)(intptr_t)i, NULL), 0);
    for (int i = 0; i < 2; i++)
        CHECK_RC(weft_join(pids[i], NULL, WEFT_FOREVER), 0);
    return 0;
}

/* The only runnable process sleeps (the main one, everything else idle). */
Test(proc, sleep_with_deadline_just_ahead_returns_alone, .timeout = 10)
{
    run_1_and_2(sleep_just_ahead, NULL);
}

Test(proc, sleep_with_deadline_just_ahead_returns_in_pairs, .timeout = 10)
{
    run_1_and_2(sleep_just_ahead_pair, NULL);
}

/* ---- join deadlines ------------------------------------------------------------- */

static intptr_t join_deadline_main(void *arg)
{
    int iters = test_sanitized() ? 100 : 500;
    for (int i = 0; i < iters; i++) {
        atomic_store(&gate, 0);
        weft_pid pid;
        CHECK_RC(weft_spawn(&pid, wait_gate, (void *)(intptr_t)(i + 9), NULL), 0);
        intptr_t r = -1;
        CHECK_RC(weft_join(pid, &r, 0), -ETIMEDOUT);
        CHECK(r == -1, "a timed-out join wrote the result: %ld", (long)r);
        if (i % 50 == 0) {
            int64_t t0 = weft_now();
            CHECK_RC(weft_join(pid, &r, t0 + 5 * MS), -ETIMEDOUT);
            int64_t elapsed = weft_now() - t0;
            CHECK(elapsed >= 5 * MS && elapsed < 505 * MS, "join with a 5 ms deadline took %lld ns",
                  (long long)elapsed);
        }
        CHECK_RC(weft_join(pid, &r, 0), -ETIMEDOUT);
        atomic_store(&gate, 1);
        CHECK_RC(weft_join(pid, &r, WEFT_FOREVER), 0);
        CHECK(r == i + 9, "result %ld, expected %d", (long)r, i + 9);
    }
    return 0;
}

Test(proc, join_deadline_times_out_on_running_process_then_join_works, .timeout = 20)
{
    run_1_and_2(join_deadline_main, NULL);
}

static intptr_t gate_then_done(void *arg)
{
    wait_gate(NULL);
    atomic_store(&child_done, 1);
    return (intptr_t)arg;
}

static intptr_t join_after_timeout_main(void *arg)
{
    for (int i = 0; i < 100; i++) {
        atomic_store(&gate, 0);
        atomic_store(&child_done, 0);
        weft_pid pid;
        CHECK_RC(weft_spawn(&pid, gate_then_done, (void *)(intptr_t)i, NULL), 0);
        CHECK_RC(weft_join(pid, NULL, weft_now() + MS / 2), -ETIMEDOUT);
        atomic_store(&gate, 1);
        while (!atomic_load(&child_done))
            weft_yield();
        for (int k = 0; k < 10; k++)
            weft_yield();
        intptr_t r = -1;
        CHECK_RC(weft_join(pid, &r, WEFT_FOREVER), 0);
        CHECK(r == i, "result %ld, expected %d", (long)r, i);
    }
    return 0;
}

Test(proc, join_times_out_then_process_ends_then_join_works, .timeout = 20)
{
    run_1_and_2(join_after_timeout_main, NULL);
}

/* A join deadline racing with the process's end: whichever wins, a later
 * join gets the result exactly once. */
static intptr_t sleep_ns_ret(void *arg)
{
    int64_t ns = (intptr_t)arg;
    if (ns % 3)
        weft_sleep(weft_now() + ns);
    else
        for (int64_t k = 0; k < ns / 20000; k++)
            weft_yield();
    return (intptr_t)arg;
}

static intptr_t join_race_body(void *arg)
{
    uint64_t x = (uint64_t)(intptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    int iters = test_sanitized() ? 200 : 1000;
    for (int i = 0; i < iters; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        intptr_t ns = (intptr_t)(x % 200000);
        int64_t deadline = weft_now() + (int64_t)((x >> 20) % 200000);
        weft_pid pid;
        CHECK_RC(weft_spawn(&pid, sleep_ns_ret, (void *)ns, NULL), 0);
        intptr_t r = -1;
        int rc = weft_join(pid, &r, deadline);
        CHECK(rc == 0 || rc == -ETIMEDOUT, "join with a deadline: %d", rc);
        if (rc == -ETIMEDOUT) {
            CHECK(r == -1, "a timed-out join wrote the result");
            rc = weft_join(pid, &r, WEFT_FOREVER);
            CHECK_RC(rc, 0);
        }
        CHECK(r == ns, "result %ld, expected %ld", (long)r, (long)ns);
        CHECK_RC(weft_join(pid, &r, 0), -ESRCH);
        /* The next wait is not cut short by the join's deadline timer. */
        int64_t t0 = weft_now();
        CHECK_RC(weft_sleep(t0 + 100000), 0);
        int64_t slept = weft_now() - t0;
        CHECK(slept >= 100000, "iteration %d: a 100 us sleep after a timed join lasted %lld ns", i,
              (long long)slept);
    }
    return 0;
}

static intptr_t join_race_main(void *arg)
{
    weft_pid pids[4];
    for (int i = 0; i < 4; i++)
        CHECK_RC(weft_spawn(&pids[i], join_race_body, (void *)(intptr_t)(i + 1), NULL), 0);
    for (int i = 0; i < 4; i++)
        CHECK_RC(weft_join(pids[i], NULL, WEFT_FOREVER), 0);
    return 0;
}

Test(proc, join_deadline_races_with_process_end, .timeout = 20)
{
    run_1_and_2(join_race_main, NULL);
}

/* ---- names ----------------------------------------------------------------------- */

static intptr_t names_main(void *arg)
{
    char buf[64];
    /* weft_run names its main process "main". */
    CHECK_RC(weft_proc_name(weft_self(), buf, sizeof buf), 4);
    CHECK(strcmp(buf, "main") == 0, "main process's name \"%s\"", buf);

    atomic_store(&gate, 0);
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.name = "worker-7";
    weft_pid named, longer, unnamed;
    CHECK_RC(weft_spawn(&named, wait_gate, NULL, &opts), 0);
    const char *long_name = "a-process-name-that-is-much-longer-than-the-limit";
    opts.name = long_name;
    CHECK_RC(weft_spawn(&longer, wait_gate, NULL, &opts), 0);
    CHECK_RC(weft_spawn(&unnamed, wait_gate, NULL, NULL), 0);

    memset(buf, 'x', sizeof buf);
    CHECK_RC(weft_proc_name(named, buf, sizeof buf), 8);
    CHECK(strcmp(buf, "worker-7") == 0, "name \"%s\"", buf);

    /* A short buffer: truncated and terminated, the full length returned. */
    memset(buf, 'x', sizeof buf);
    CHECK_RC(weft_proc_name(named, buf, 4), 8);
    CHECK(strcmp(buf, "wor") == 0, "name in a 4-byte buffer \"%s\"", buf);
    CHECK(buf[4] == 'x', "wrote past the buffer");
    CHECK_RC(weft_proc_name(named, buf, 1), 8);
    CHECK(buf[0] == '\0', "name in a 1-byte buffer not empty");

    /* Names are copied truncated to WEFT_NAME_MAX - 1 bytes. */
    CHECK_RC(weft_proc_name(longer, buf, sizeof buf), WEFT_NAME_MAX - 1);
    CHECK(strlen(buf) == WEFT_NAME_MAX - 1 && strncmp(buf, long_name, WEFT_NAME_MAX - 1) == 0,
          "truncated name \"%s\"", buf);

    /* No name: the function's address. */
    char expected[64];
    int n = snprintf(expected, sizeof expected, "fn@%p", (void *)(uintptr_t)wait_gate);
    CHECK_RC(weft_proc_name(unnamed, buf, sizeof buf), n);
    CHECK(strcmp(buf, expected) == 0, "default name \"%s\", expected \"%s\"", buf, expected);
    CHECK(strncmp(buf, "fn@0x", 5) == 0, "default name \"%s\"", buf);

    atomic_store(&gate, 1);
    CHECK_RC(weft_join(named, NULL, WEFT_FOREVER), 0);
    CHECK_RC(weft_join(longer, NULL, WEFT_FOREVER), 0);
    /* The name outlives the process until it is joined. */
    atomic_store(&child_done, 0);
    weft_pid ended;
    opts.name = "ended";
    CHECK_RC(weft_spawn(&ended, set_done_ret_arg, NULL, &opts), 0);
    while (!atomic_load(&child_done))
        weft_yield();
    CHECK_RC(weft_proc_name(ended, buf, sizeof buf), 5);
    CHECK(strcmp(buf, "ended") == 0, "name of an ended process \"%s\"", buf);
    CHECK_RC(weft_join(ended, NULL, WEFT_FOREVER), 0);
    CHECK_RC(weft_proc_name(ended, buf, sizeof buf), -ESRCH);
    CHECK_RC(weft_join(unnamed, NULL, WEFT_FOREVER), 0);
    return 0;
}

Test(proc, names_copied_truncated_and_defaulted, .timeout = 20)
{
    run_1_and_2(names_main, NULL);
}

/* ---- placement ------------------------------------------------------------------- */

/* arg: the worker it must be on, or -1 for "the one it started on". */
static intptr_t pinned_body(void *arg)
{
    int expect = (int)(intptr_t)arg;
    int w0 = weft_worker_id();
    CHECK(expect < 0 || w0 == expect, "pinned process started on worker %d, pinned to %d", w0, expect);
    for (int i = 0; i < 300; i++) {
        if (i % 10 == 0)
            CHECK_RC(weft_sleep(weft_now() + 50000), 0);
        else
            weft_yield();
        int w = weft_worker_id();
        if (w != w0) {
            check_fail(__LINE__, "pinned process moved from worker %d to %d at step %d", w0, w, i);
            break;
        }
    }
    return w0;
}

static intptr_t busy_yielder(void *arg)
{
    for (int i = 0; i < 1000; i++)
        weft_yield();
    return 0;
}

static intptr_t pinned_main(void *arg)
{
    enum { PINNED = 8, FREE_PINNED = 4, BUSY = 16 };
    weft_pid pids[PINNED + FREE_PINNED + BUSY];
    int expect[PINNED + FREE_PINNED];
    int n = 0;
    for (int i = 0; i < BUSY; i++)
        CHECK_RC(weft_spawn(&pids[PINNED + FREE_PINNED + i], busy_yielder, NULL, NULL), 0);
    for (int i = 0; i < PINNED; i++) {
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        opts.pinned = 1;
        opts.worker = i % 2;
        expect[n] = i % 2;
        CHECK_RC(weft_spawn(&pids[n], pinned_body, (void *)(intptr_t)expect[n], &opts), 0);
        n++;
    }
    for (int i = 0; i < FREE_PINNED; i++) {
        /* Pinned to the worker it was spawned from. */
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        opts.pinned = 1;
        expect[n] = weft_worker_id();
        CHECK_RC(weft_spawn(&pids[n], pinned_body, (void *)(intptr_t)expect[n], &opts), 0);
        n++;
        weft_yield(); /* perhaps move, so that both workers get some */
    }
    for (int i = 0; i < n; i++) {
        intptr_t r = -1;
        CHECK_RC(weft_join(pids[i], &r, WEFT_FOREVER), 0);
        CHECK(r == expect[i], "pinned process %d ran on worker %ld, expected %d", i, (long)r, expect[i]);
    }
    for (int i = 0; i < BUSY; i++)
        CHECK_RC(weft_join(pids[PINNED + FREE_PINNED + i], NULL, WEFT_FOREVER), 0);
    return 0;
}

Test(proc, pinned_processes_stay_on_their_worker, .timeout = 20)
{
    int rounds = test_sanitized() ? 2 : 5;
    for (int i = 0; i < rounds; i++)
        cr_assert_eq(test_run(2, pinned_main, NULL), 0);
    ASSERT_CHECKS();
}

static intptr_t report_worker(void *arg)
{
    return weft_worker_id();
}

static intptr_t placement_main(void *arg)
{
    int iters = test_sanitized() ? 200 : 1000;
    for (int i = 0; i < iters; i++) {
        int want = i % 2;
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        opts.worker = want;
        weft_pid pid;
        CHECK_RC(weft_spawn(&pid, report_worker, NULL, &opts), 0);
        intptr_t r = -1;
        CHECK_RC(weft_join(pid, &r, WEFT_FOREVER), 0);
        CHECK(r == want, "opts.worker %d: first ran on worker %ld", want, (long)r);
        if (i % 7 == 0)
            weft_yield();
    }
    return 0;
}

Test(proc, opts_worker_places_first_run, .timeout = 20)
{
    cr_assert_eq(test_run(2, placement_main, NULL), 0);
    ASSERT_CHECKS();
}

static atomic_int ran_on[2];
static int64_t migrate_until;

/* Yields (sleeping now and then) at least `yields` times and for at least
 * 100 ms in all, so that a worker slow to wake up still gets its share. */
static intptr_t migrant(void *arg)
{
    int yields = (int)(intptr_t)arg;
    int first = weft_worker_id();
    int moved = 0;
    for (int i = 0; i < yields || weft_now() < migrate_until; i++) {
        if (i % 100 == 99)
            weft_sleep(weft_now() + 50000);
        else
            weft_yield();
        int w = weft_worker_id();
        CHECK(w == 0 || w == 1, "weft_worker_id %d at 2 workers", w);
        if (w == 0 || w == 1)
            atomic_store(&ran_on[w], 1);
        if (w != first)
            moved = 1;
    }
    return moved;
}

static intptr_t migration_main(void *arg)
{
    int n = test_sanitized() ? 50 : 200;
    int yields = test_sanitized() ? 300 : 1000;
    migrate_until = weft_now() + 100 * MS;
    weft_pid pids[200];
    for (int i = 0; i < n; i++)
        CHECK_RC(weft_spawn(&pids[i], migrant, (void *)(intptr_t)yields, NULL), 0);
    intptr_t moved = 0;
    for (int i = 0; i < n; i++) {
        intptr_t r = 0;
        CHECK_RC(weft_join(pids[i], &r, WEFT_FOREVER), 0);
        moved += r;
    }
    return moved;
}

Test(proc, processes_migrate_between_workers, .timeout = 20)
{
    intptr_t moved = test_run(2, migration_main, NULL);
    ASSERT_CHECKS();
    cr_assert(atomic_load(&ran_on[0]) && atomic_load(&ran_on[1]),
              "processes ran on worker 0: %d, worker 1: %d", atomic_load(&ran_on[0]),
              atomic_load(&ran_on[1]));
    cr_assert_gt(moved, 0, "no process changed worker across its yields and sleeps");
}

/* Work spawned from a process and kept runnable by yields must reach an idle
 * worker: 8 processes busy for 150 ms each cannot all stay on one of two
 * workers. The main process first computes for 20 ms without a weft call,
 * so that the other worker, finding nothing to do, parks. */
static atomic_long yields_on[2];

static intptr_t busy_yield_150ms(void *arg)
{
    int64_t end = weft_now() + 150 * MS;
    while (weft_now() < end) {
        int w = weft_worker_id();
        if (w == 0 || w == 1)
            atomic_fetch_add(&yields_on[w], 1);
        weft_yield();
    }
    return 0;
}

static intptr_t idle_worker_main(void *arg)
{
    int64_t end = weft_now() + 20 * MS;
    while (weft_now() < end)
        ;
    weft_pid pids[8];
    for (int i = 0; i < 8; i++)
        CHECK_RC(weft_spawn(&pids[i], busy_yield_150ms, NULL, NULL), 0);
    for (int i = 0; i < 8; i++)
        CHECK_RC(weft_join(pids[i], NULL, WEFT_FOREVER), 0);
    return 0;
}

Test(proc, idle_worker_takes_work_from_busy_worker, .timeout = 20)
{
    cr_assert_eq(test_run(2, idle_worker_main, NULL), 0);
    ASSERT_CHECKS();
    long y0 = atomic_load(&yields_on[0]), y1 = atomic_load(&yields_on[1]);
    cr_assert(y0 > 0 && y1 > 0,
              "8 busy processes for 150 ms at 2 workers: %ld yields on worker 0, %ld on worker 1",
              y0, y1);
}

/* ---- trees and volume ------------------------------------------------------------ */

static size_t tree_stack;

static intptr_t tree_node(void *arg)
{
    int depth = (int)(intptr_t)arg;
    if (depth == 0)
        return 1;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.stack_size = tree_stack;
    weft_pid kids[3];
    int rcs[3];
    for (int k = 0; k < 3; k++) {
        rcs[k] = weft_spawn(&kids[k], tree_node, (void *)(intptr_t)(depth - 1), &opts);
        CHECK_RC(rcs[k], 0);
    }
    intptr_t sum = 1;
    for (int k = 0; k < 3; k++) {
        if (rcs[k])
            continue;
        intptr_t r = 0;
        CHECK_RC(weft_join(kids[k], &r, WEFT_FOREVER), 0);
        sum += r;
    }
    return sum;
}

Test(proc, process_tree_depth_10_fanout_3_sums, .timeout = 20)
{
    int depth = test_sanitized() ? 7 : 10;
    tree_stack = test_sanitized() ? WEFT_STACK_DEFAULT : WEFT_STACK_MIN;
    intptr_t nodes = 0, level = 1;
    for (int d = 0; d <= depth; d++, level *= 3)
        nodes += level;
    for (unsigned workers = 1; workers <= 2; workers++) {
        intptr_t r = test_run(workers, tree_node, (void *)(intptr_t)depth);
        cr_assert_eq(r, nodes, "%u workers: tree counted %ld nodes, expected %ld", workers, (long)r,
                     (long)nodes);
    }
    ASSERT_CHECKS();
}

enum { VOLUME_MAX = 10000 };
static weft_pid volume_pids[VOLUME_MAX];
static atomic_int volume_ran[VOLUME_MAX];

static intptr_t tally(void *arg)
{
    intptr_t i = (intptr_t)arg;
    atomic_fetch_add(&volume_ran[i], 1);
    if (i % 2)
        weft_yield();
    return i;
}

static intptr_t volume_main(void *arg)
{
    int n = test_sanitized() ? 2000 : VOLUME_MAX;
    int rounds = test_sanitized() ? 5 : 20;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.stack_size = test_sanitized() ? WEFT_STACK_DEFAULT : WEFT_STACK_MIN;
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < n; i++) {
            volume_pids[i] = 0;
            CHECK_RC(weft_spawn(&volume_pids[i], tally, (void *)(intptr_t)i, &opts), 0);
        }
        for (int i = 0; i < n; i++) {
            intptr_t r = -1;
            CHECK_RC(weft_join(volume_pids[i], &r, WEFT_FOREVER), 0);
            CHECK(r == i, "round %d: process %d returned %ld", round, i, (long)r);
        }
        for (int i = 0; i < n; i++)
            if (atomic_load(&volume_ran[i]) != round + 1) {
                check_fail(__LINE__, "round %d: process %d ran %d times in all", round, i,
                           atomic_load(&volume_ran[i]));
                return -1;
            }
    }
    return (intptr_t)n * rounds;
}

Test(proc, ten_thousand_processes_twenty_rounds_nothing_lost, .timeout = 20)
{
    intptr_t total = test_run(2, volume_main, NULL);
    ASSERT_CHECKS();
    cr_assert_eq(total, test_sanitized() ? 2000 * 5 : VOLUME_MAX * 20, "%ld processes", (long)total);
}
