/* test-errors.c: the errors of a process's life that need a race or a
 * sequence to reach (a second joiner, detach and join of detached processes,
 * pids freed while others look them up), sleeping outside a process, and the
 * names of the codes. The misuse matrix proper (NULL, never-valid and stale
 * handles, sizes, no runtime, wrong context) is tests/test-misuse.c. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#define TEST_PROC_CHECKS
#include "test.h"

/* Checks inside processes: counted, the first kept; asserted after the run
 * (a worker thread cannot end a Criterion test). */


static intptr_t ret_arg(void *arg)
{
    return (intptr_t)arg;
}

static atomic_int gate;

static intptr_t wait_gate(void *arg)
{
    while (!atomic_load(&gate))
        if (weft_yield() == -ECANCELED)
            break;
    return (intptr_t)arg;
}

/* ---- weft_join and weft_detach --------------------------------------------------------- */

/* Two processes join one: the first waits, the second gets -EINVAL. */
static atomic_int joiner_rc[2];
static atomic_int joiners_done;
static weft_pid join_target;

static intptr_t joiner(void *arg)
{
    int k = (int)(intptr_t)arg;
    intptr_t r = -1;
    int rc = weft_join(join_target, &r, WEFT_FOREVER);
    if (rc == 0 && r != 77)
        check_fail(__LINE__, "joiner %d: result %ld", k, (long)r);
    atomic_store(&joiner_rc[k], rc);
    atomic_fetch_add(&joiners_done, 1);
    return 0;
}

static intptr_t join_twice_main(void *arg)
{
    int iters = test_sanitized() ? 100 : 500;
    for (int i = 0; i < iters; i++) {
        atomic_store(&gate, 0);
        atomic_store(&joiners_done, 0);
        atomic_store(&joiner_rc[0], 1);
        atomic_store(&joiner_rc[1], 1);
        CHECK_RC(weft_spawn(&join_target, wait_gate, (void *)(intptr_t)77, NULL), 0);
        weft_pid j[2];
        CHECK_RC(weft_spawn(&j[0], joiner, (void *)(intptr_t)0, NULL), 0);
        CHECK_RC(weft_spawn(&j[1], joiner, (void *)(intptr_t)1, NULL), 0);
        /* The target waits at the gate: the first joiner blocks, the second
         * is refused and returns. */
        int64_t limit = weft_now() + 5000 * MS;
        while (atomic_load(&joiners_done) < 1 && weft_now() < limit)
            weft_yield();
        int done = atomic_load(&joiners_done);
        CHECK(done == 1, "iteration %d: %d joiners returned while the target runs", i, done);
        int refused = atomic_load(&joiner_rc[0]) != 1 ? 0 : 1;
        CHECK_RC(atomic_load(&joiner_rc[refused]), -EINVAL);
        /* The main process is a third joiner: refused too. */
        CHECK_RC(weft_join(join_target, NULL, 0), -EINVAL);
        CHECK_RC(weft_detach(join_target), -EINVAL);
        atomic_store(&gate, 1);
        CHECK_RC(weft_join(j[0], NULL, WEFT_FOREVER), 0);
        CHECK_RC(weft_join(j[1], NULL, WEFT_FOREVER), 0);
        CHECK_RC(atomic_load(&joiner_rc[1 - refused]), 0);
        CHECK_RC(weft_join(join_target, NULL, 0), -ESRCH);
    }
    return 0;
}

Test(errors, second_concurrent_joiner_is_einval, .timeout = 20)
{
    run_1_and_2(join_twice_main, NULL);
}

static atomic_int ended;

static intptr_t set_ended(void *arg)
{
    atomic_store(&ended, 1);
    return 0;
}

static int wait_stale(weft_pid pid)
{
    char buf[WEFT_NAME_MAX];
    int64_t limit = weft_now() + 5000 * MS;
    int rc;
    while ((rc = weft_proc_name(pid, buf, sizeof buf)) > 0 && weft_now() < limit)
        weft_yield();
    return rc;
}

static intptr_t detach_errors_main(void *arg)
{
    for (int i = 0; i < 100; i++) {
        atomic_store(&gate, 0);
        weft_pid pid;
        CHECK_RC(weft_spawn(&pid, wait_gate, NULL, NULL), 0);
        CHECK_RC(weft_detach(pid), 0);
        /* Detached and running. */
        CHECK_RC(weft_detach(pid), -EINVAL);
        CHECK_RC(weft_join(pid, NULL, 0), -EINVAL);
        CHECK_RC(weft_join(pid, NULL, WEFT_FOREVER), -EINVAL);
        atomic_store(&gate, 1);
        /* Ended: stale. */
        CHECK_RC(wait_stale(pid), -ESRCH);
        CHECK_RC(weft_join(pid, NULL, WEFT_FOREVER), -ESRCH);
        CHECK_RC(weft_detach(pid), -ESRCH);

        /* Detached at spawn. */
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        opts.detached = 1;
        atomic_store(&gate, 0);
        CHECK_RC(weft_spawn(&pid, wait_gate, NULL, &opts), 0);
        CHECK_RC(weft_detach(pid), -EINVAL);
        CHECK_RC(weft_join(pid, NULL, 0), -EINVAL);
        atomic_store(&gate, 1);
        CHECK_RC(wait_stale(pid), -ESRCH);
        CHECK_RC(weft_detach(pid), -ESRCH);

        /* Joined: stale for detach. */
        atomic_store(&ended, 0);
        CHECK_RC(weft_spawn(&pid, set_ended, NULL, NULL), 0);
        CHECK_RC(weft_join(pid, NULL, WEFT_FOREVER), 0);
        CHECK_RC(weft_detach(pid), -ESRCH);
    }
    return 0;
}

Test(errors, detach_twice_einval_join_detached_einval_then_esrch, .timeout = 20)
{
    run_1_and_2(detach_errors_main, NULL);
}

/* A thread needs no runtime to sleep: it sleeps until the deadline. */
Test(errors, sleep_outside_process_without_runtime_sleeps_until_deadline, .timeout = 20)
{
    int64_t t0 = weft_now();
    ASSERT_OK(weft_sleep(0));
    ASSERT_OK(weft_sleep(t0 - 1000 * MS));
    cr_assert_lt(weft_now() - t0, 1000 * MS, "weft_sleep with a past deadline took %lld ns",
                 (long long)(weft_now() - t0));
    t0 = weft_now();
    ASSERT_OK(weft_sleep(t0 + 30 * MS));
    int64_t elapsed = weft_now() - t0;
    cr_assert(elapsed >= 30 * MS && elapsed < 530 * MS, "slept %lld ns for 30 ms", (long long)elapsed);
    ASSERT_RC(weft_workers(), -ESHUTDOWN);
}

Test(errors, sleep_outside_process_with_runtime_sleeps, .timeout = 20)
{
    start_workers(1);
    ASSERT_OK(weft_sleep(0));
    int64_t t0 = weft_now();
    ASSERT_OK(weft_sleep(t0 + 20 * MS));
    int64_t elapsed = weft_now() - t0;
    cr_assert(elapsed >= 20 * MS && elapsed < 520 * MS, "slept %lld ns for 20 ms", (long long)elapsed);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

/* ---- weft_strerror ----------------------------------------------------------------------- */

Test(errors, strerror_names_each_code_distinctly, .timeout = 20)
{
    int codes[] = {-EINVAL,    -ESRCH,    -ENOMEM,  -ETIMEDOUT,   -ECANCELED,   -ESHUTDOWN,
                   -EBUSY,     -EDEADLK,  -EPERM,   -E2BIG,       -EAGAIN,      -EALREADY,
                   -EINPROGRESS, -ENOTCONN, -EISCONN, -ENAMETOOLONG, -ECONNABORTED, -ERANGE};
    size_t n = sizeof codes / sizeof codes[0];
    const char *ok = weft_strerror(0);
    cr_assert(ok && ok[0], "weft_strerror(0) empty");
    for (size_t i = 0; i < n; i++) {
        const char *s = weft_strerror(codes[i]);
        cr_assert(s && s[0], "weft_strerror(%d) empty", codes[i]);
        cr_assert_str_neq(s, ok, "weft_strerror(%d) same as for 0: \"%s\"", codes[i], s);
        for (size_t k = 0; k < i; k++)
            cr_assert_str_neq(s, weft_strerror(codes[k]), "codes %d and %d share \"%s\"", codes[i],
                              codes[k], s);
    }
    int unknown[] = {-9999, 1, 9999, -2147483647 - 1};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = weft_strerror(unknown[i]);
        cr_assert(s && s[0], "weft_strerror(%d) NULL or empty", unknown[i]);
        for (size_t k = 0; k < n; k++)
            cr_assert_str_neq(s, weft_strerror(codes[k]), "unknown %d named like %d: \"%s\"",
                              unknown[i], codes[k], s);
    }
}

/* ---- stale pids under a race ----------------------------------------------------------- */

enum { RING = 64 };
static _Atomic weft_pid ring[RING];
static atomic_int producing, checker_started;
static atomic_long checked;

static intptr_t yield_twice(void *arg)
{
    weft_yield();
    weft_yield();
    return 0;
}

/* Spawns short-lived processes and publishes their pids. arg: 1 detached
 * (released when they end), 0 joinable (joined here). */
static intptr_t producer(void *arg)
{
    int detached = (int)(intptr_t)arg;
    int n = test_sanitized() ? 4000 : 20000;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = detached;
    opts.stack_size = WEFT_STACK_DEFAULT;
    /* Overlap with the checker whatever the OS does with the threads: start
     * once it runs, go on until it has looked at enough pids. */
    while (!atomic_load(&checker_started))
        weft_yield();
    for (int i = 0; i < n || atomic_load(&checked) < 1000; i++) {
        weft_pid pid = 0;
        int rc = weft_spawn(&pid, i % 3 ? ret_arg : yield_twice, NULL, &opts);
        CHECK_RC(rc, 0);
        atomic_store(&ring[i % RING], pid);
        if (!detached && rc == 0 && i % 2 == 0)
            CHECK_RC(weft_join(pid, NULL, WEFT_FOREVER), 0);
        else if (!detached && rc == 0)
            CHECK_RC(weft_detach(pid), 0);
        if (i % 16 == 0)
            weft_yield();
    }
    atomic_store(&producing, 0);
    return 0;
}

/* Looks the published pids up while the producer's worker frees them. */
static intptr_t checker(void *arg)
{
    int detached = (int)(intptr_t)arg;
    char buf[WEFT_NAME_MAX];
    long k = 0;
    atomic_store(&checker_started, 1);
    while (atomic_load(&producing)) {
        weft_pid pid = atomic_load(&ring[k++ % RING]);
        if (!pid)
            continue;
        int rc = weft_proc_name(pid, buf, sizeof buf);
        CHECK(rc > 0 || rc == -ESRCH, "weft_proc_name of a racing pid: %d", rc);
        /* A generation far from the current one is never valid. */
        rc = weft_proc_name(pid ^ ((weft_pid)0x800000 << 32), buf, sizeof buf);
        CHECK_RC(rc, -ESRCH);
        if (detached) {
            /* Detached: refused while it runs, stale once it ended. */
            rc = weft_join(pid, NULL, 0);
            CHECK(rc == -EINVAL || rc == -ESRCH, "weft_join of a racing detached pid: %d", rc);
            rc = weft_detach(pid);
            CHECK(rc == -EINVAL || rc == -ESRCH, "weft_detach of a racing detached pid: %d", rc);
        }
        atomic_fetch_add(&checked, 1);
        if (k % 64 == 0)
            weft_yield();
    }
    return 0;
}

static intptr_t stale_race_main(void *arg)
{
    int detached = (int)(intptr_t)arg;
    for (int i = 0; i < RING; i++)
        atomic_store(&ring[i], 0);
    atomic_store(&producing, 1);
    atomic_store(&checker_started, 0);
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.pinned = 1;
    weft_pid p, c;
    opts.worker = 0;
    CHECK_RC(weft_spawn(&p, producer, (void *)(intptr_t)detached, &opts), 0);
    opts.worker = 1;
    CHECK_RC(weft_spawn(&c, checker, (void *)(intptr_t)detached, &opts), 0);
    CHECK_RC(weft_join(p, NULL, WEFT_FOREVER), 0);
    CHECK_RC(weft_join(c, NULL, WEFT_FOREVER), 0);
    return 0;
}

Test(errors, stale_pids_stay_esrch_while_freed_concurrently, .timeout = 20)
{
    for (int detached = 0; detached <= 1; detached++)
        for (int round = 0; round < 3; round++) {
            atomic_store(&checked, 0);
            cr_assert_eq(test_run(2, stale_race_main, (void *)(intptr_t)detached), 0);
            ASSERT_CHECKS();
            cr_assert_geq(atomic_load(&checked), 1000, "the checker looked %ld pids up",
                          atomic_load(&checked));
        }
}
