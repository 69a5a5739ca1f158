/* test-errors.c: bad input and misuse: each documented error code of the
 * runtime and process calls, and stale pids under a race. */
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

/* ---- weft_spawn ------------------------------------------------------------------- */

/* The argument checks of weft_spawn; the caller is a process or a thread. */
static void check_spawn_args(void)
{
    weft_pid pid = 0;
    weft_spawn_opts opts;

    CHECK_RC(weft_spawn(&pid, NULL, NULL, NULL), -EINVAL);
    CHECK_RC(weft_spawn(NULL, ret_arg, NULL, NULL), -EINVAL);

    weft_spawn_opts_init(&opts);
    opts.stack_size = 0;
    CHECK_RC(weft_spawn(&pid, ret_arg, NULL, &opts), -EINVAL);
    opts.stack_size = WEFT_STACK_MIN - 1;
    CHECK_RC(weft_spawn(&pid, ret_arg, NULL, &opts), -EINVAL);
    opts.stack_size = WEFT_STACK_MAX + 1;
    CHECK_RC(weft_spawn(&pid, ret_arg, NULL, &opts), -E2BIG);
    opts.stack_size = SIZE_MAX;
    CHECK_RC(weft_spawn(&pid, ret_arg, NULL, &opts), -E2BIG);

    int bad_workers[] = {2, 3, 1000, -2, -1000};
    for (size_t i = 0; i < sizeof bad_workers / sizeof bad_workers[0]; i++) {
        weft_spawn_opts_init(&opts);
        opts.worker = bad_workers[i];
        CHECK_RC(weft_spawn(&pid, ret_arg, NULL, &opts), -EINVAL);
        opts.pinned = 1;
        CHECK_RC(weft_spawn(&pid, ret_arg, NULL, &opts), -EINVAL);
    }

    /* The limits themselves are accepted, and so is a size between classes. */
    size_t good[] = {WEFT_STACK_MIN, WEFT_STACK_MIN + 1, 20000, WEFT_STACK_MAX};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        weft_spawn_opts_init(&opts);
        opts.stack_size = good[i];
        intptr_t r = -1;
        int rc = weft_spawn(&pid, ret_arg, (void *)(intptr_t)i, &opts);
        CHECK(rc == 0, "stack size %zu: weft_spawn returned %d (%s)", good[i], rc, weft_strerror(rc));
        if (rc == 0) {
            CHECK_RC(weft_join(pid, &r, WEFT_FOREVER), 0);
            CHECK(r == (intptr_t)i, "stack size %zu: result %ld", good[i], (long)r);
        }
    }
}

static intptr_t spawn_args_main(void *arg)
{
    check_spawn_args();
    return 0;
}

Test(errors, spawn_bad_arguments_from_process, .timeout = 20)
{
    cr_assert_eq(test_run(2, spawn_args_main, NULL), 0);
    ASSERT_CHECKS();
}

Test(errors, spawn_bad_arguments_from_thread, .timeout = 20)
{
    start_workers(2);
    check_spawn_args();
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    ASSERT_CHECKS();
}

Test(errors, spawn_without_runtime_is_eshutdown, .timeout = 20)
{
    weft_pid pid = 0;
    ASSERT_RC(weft_spawn(&pid, ret_arg, NULL, NULL), -ESHUTDOWN);
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = 1;
    ASSERT_RC(weft_spawn(NULL, ret_arg, NULL, &opts), -ESHUTDOWN);
    cr_assert_eq(test_run(1, ret_arg, NULL), 0);
    ASSERT_RC(weft_spawn(&pid, ret_arg, NULL, NULL), -ESHUTDOWN);
}

/* ---- weft_join and weft_detach --------------------------------------------------------- */

static intptr_t join_bad_pids_main(void *arg)
{
    intptr_t r = -1;
    CHECK_RC(weft_join(0, &r, WEFT_FOREVER), -ESRCH);
    CHECK_RC(weft_detach(0), -ESRCH);

    weft_pid pid;
    CHECK_RC(weft_spawn(&pid, ret_arg, (void *)(intptr_t)3, NULL), 0);
    CHECK_RC(weft_join(pid, &r, WEFT_FOREVER), 0);
    CHECK(r == 3, "result %ld", (long)r);
    /* Stale: already joined. */
    r = -1;
    CHECK_RC(weft_join(pid, &r, WEFT_FOREVER), -ESRCH);
    CHECK_RC(weft_join(pid, &r, 0), -ESRCH);
    CHECK(r == -1, "a failed join wrote the result");
    CHECK_RC(weft_detach(pid), -ESRCH);

    /* Forged within the table: another generation of a slot in use, of
     * a free slot, and of slots that exist. */
    weft_pid me = weft_self();
    CHECK_RC(weft_join(me ^ ((weft_pid)0x800000 << 32), &r, 0), -ESRCH);
    CHECK_RC(weft_join(pid + ((weft_pid)0x400000 << 32), &r, 0), -ESRCH);
    for (uint32_t slot = 1; slot < 64; slot++)
        CHECK_RC(weft_join((weft_pid)0x00ABCDEF << 32 | slot, &r, 0), -ESRCH);
    return 0;
}

Test(errors, join_of_zero_stale_and_forged_in_table_pids_is_esrch, .timeout = 20)
{
    run_1_and_2(join_bad_pids_main, NULL);
}

/* Pids whose slot index lies beyond any slot the table can have. */
static const weft_pid far_forged[] = {
    0xdeadbeef12345ull, 0xFFFFFFFFull, ~(weft_pid)0, (weft_pid)1 << 32 | ((1u << 28) + 1),
    (weft_pid)7 << 32 | 0x10000000u,
};

static intptr_t join_far_forged_main(void *arg)
{
    char buf[WEFT_NAME_MAX];
    for (size_t i = 0; i < sizeof far_forged / sizeof far_forged[0]; i++) {
        CHECK_RC(weft_join(far_forged[i], NULL, 0), -ESRCH);
        CHECK_RC(weft_detach(far_forged[i]), -ESRCH);
        CHECK_RC(weft_proc_name(far_forged[i], buf, sizeof buf), -ESRCH);
    }
    return 0;
}

Test(errors, join_of_forged_pid_beyond_table_is_esrch, .timeout = 20)
{
    cr_assert_eq(test_run(1, join_far_forged_main, NULL), 0);
    ASSERT_CHECKS();
}

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

static intptr_t join_self(void *arg)
{
    intptr_t r = -1;
    CHECK_RC(weft_join(weft_self(), &r, WEFT_FOREVER), -EDEADLK);
    CHECK_RC(weft_join(weft_self(), &r, 0), -EDEADLK);
    CHECK(r == -1, "a failed join wrote the result");
    return 5;
}

static intptr_t join_self_main(void *arg)
{
    join_self(NULL);
    /* The refused self-join left the process joinable by others. */
    weft_pid pid;
    CHECK_RC(weft_spawn(&pid, join_self, NULL, NULL), 0);
    intptr_t r = -1;
    CHECK_RC(weft_join(pid, &r, WEFT_FOREVER), 0);
    CHECK(r == 5, "result %ld", (long)r);
    return 0;
}

Test(errors, join_self_is_edeadlk, .timeout = 20)
{
    run_1_and_2(join_self_main, NULL);
}

Test(errors, join_and_detach_without_runtime_are_eshutdown, .timeout = 20)
{
    ASSERT_RC(weft_join(0x100000001ull, NULL, 0), -ESHUTDOWN);
    ASSERT_RC(weft_detach(0x100000001ull), -ESHUTDOWN);
}

/* ---- calls that need a process ----------------------------------------------------------- */

Test(errors, exit_and_worker_id_outside_process_are_eperm, .timeout = 20)
{
    ASSERT_RC(weft_exit(1), -EPERM);
    ASSERT_RC(weft_worker_id(), -EPERM);
    start_workers(2);
    ASSERT_RC(weft_exit(1), -EPERM);
    ASSERT_RC(weft_worker_id(), -EPERM);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

Test(errors, yield_outside_process_returns_0, .timeout = 20)
{
    ASSERT_OK(weft_yield());
    start_workers(1);
    ASSERT_OK(weft_yield());
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    ASSERT_OK(weft_yield());
}

/* A thread needs no runtime to sleep: it sleeps until the deadline. */
Test(errors, sleep_outside_process_without_runtime_sleeps_until_deadline, .timeout = 20)
{
    int64_t t0 = weft_now();
    ASSERT_OK(weft_sleep(0));
    ASSERT_OK(weft_sleep(t0 - 1000 * MS));
    cr_assert_lt(weft_now() - t0, 50 * MS, "weft_sleep with a past deadline took %lld ns",
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

/* ---- weft_proc_name ------------------------------------------------------------------- */

static intptr_t name_errors_main(void *arg)
{
    char buf[WEFT_NAME_MAX];
    weft_pid me = weft_self();
    CHECK_RC(weft_proc_name(me, NULL, 10), -EINVAL);
    CHECK_RC(weft_proc_name(me, buf, 0), -EINVAL);
    CHECK_RC(weft_proc_name(0, buf, sizeof buf), -ESRCH);
    weft_pid pid;
    CHECK_RC(weft_spawn(&pid, ret_arg, NULL, NULL), 0);
    CHECK_RC(weft_join(pid, NULL, WEFT_FOREVER), 0);
    CHECK_RC(weft_proc_name(pid, buf, sizeof buf), -ESRCH);
    CHECK_RC(weft_proc_name(me ^ ((weft_pid)0x800000 << 32), buf, sizeof buf), -ESRCH);
    return 0;
}

Test(errors, proc_name_null_buffer_einval_stale_pid_esrch_no_runtime_eshutdown, .timeout = 20)
{
    cr_assert_eq(test_run(1, name_errors_main, NULL), 0);
    ASSERT_CHECKS();
    char buf[8];
    ASSERT_RC(weft_proc_name(0x100000001ull, buf, sizeof buf), -ESHUTDOWN);
    ASSERT_RC(weft_proc_name(0x100000001ull, NULL, sizeof buf), -EINVAL);
    /* From a thread while a runtime runs: the same codes as from a process. */
    start_workers(1);
    ASSERT_RC(weft_proc_name(0x100000001ull, buf, sizeof buf), -ESRCH);
    ASSERT_RC(weft_proc_name(0x100000001ull, buf, 0), -EINVAL);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

/* ---- runtime calls ------------------------------------------------------------------- */

Test(errors, start_and_run_with_bad_config, .timeout = 20)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = WEFT_WORKERS_MAX + 1;
    ASSERT_RC(weft_start(&cfg), -EINVAL);
    ASSERT_RC(weft_run(ret_arg, NULL, &cfg, NULL), -EINVAL);
    cfg.workers = 100000;
    ASSERT_RC(weft_start(&cfg), -EINVAL);

    weft_config_init(&cfg);
    cfg.stack_size = 0;
    ASSERT_RC(weft_start(&cfg), -EINVAL);
    cfg.stack_size = WEFT_STACK_MIN - 1;
    ASSERT_RC(weft_start(&cfg), -EINVAL);
    ASSERT_RC(weft_run(ret_arg, NULL, &cfg, NULL), -EINVAL);
    cfg.stack_size = WEFT_STACK_MAX + 1;
    ASSERT_RC(weft_start(&cfg), -E2BIG);
    ASSERT_RC(weft_run(ret_arg, NULL, &cfg, NULL), -E2BIG);

    /* Nothing was left running. */
    ASSERT_RC(weft_workers(), -ESHUTDOWN);
    ASSERT_RC(weft_stop(WEFT_FOREVER), -ESHUTDOWN);

    /* The limits are accepted. */
    weft_config_init(&cfg);
    cfg.workers = 1;
    cfg.stack_size = WEFT_STACK_MIN;
    intptr_t r = -1;
    ASSERT_OK(weft_run(ret_arg, (void *)(intptr_t)8, &cfg, &r));
    cr_assert_eq(r, 8);
}

Test(errors, run_with_null_fn_is_einval, .timeout = 20)
{
    intptr_t r = -1;
    ASSERT_RC(weft_run(NULL, NULL, NULL, &r), -EINVAL);
    cr_assert_eq(r, -1, "a refused weft_run wrote its result");
    ASSERT_RC(weft_workers(), -ESHUTDOWN);
}

static intptr_t runtime_calls_from_process(void *arg)
{
    CHECK_RC(weft_stop(WEFT_FOREVER), -EPERM);
    CHECK_RC(weft_stop(0), -EPERM);
    CHECK_RC(weft_start(NULL), -EBUSY);
    CHECK_RC(weft_run(ret_arg, NULL, NULL, NULL), -EBUSY);
    CHECK_RC(weft_set_allocator(NULL, NULL), -EBUSY);
    return 9;
}

Test(errors, stop_from_process_is_eperm, .timeout = 20)
{
    for (unsigned workers = 1; workers <= 2; workers++)
        cr_assert_eq(test_run(workers, runtime_calls_from_process, NULL), 9);
    ASSERT_CHECKS();
}

/* ---- weft_strerror ----------------------------------------------------------------------- */

Test(errors, strerror_names_each_code_distinctly, .timeout = 20)
{
    int codes[] = {-EINVAL, -ESRCH, -ENOMEM, -ETIMEDOUT, -ECANCELED, -ESHUTDOWN,
                   -EBUSY,  -EDEADLK, -EPERM, -E2BIG,    -EAGAIN};
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
    int unknown[] = {-9999, -EXDEV, 1, 9999, -2147483647 - 1};
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
