/* test-runtime.c: weft_run, weft_start and weft_stop: results, restarts,
 * worker counts, shutdown with cancellation, stop deadlines. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_* */
#include <sched.h>
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

static int run_with(unsigned workers, weft_proc_fn fn, void *arg, intptr_t *result)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = workers;
    return weft_run(fn, arg, &cfg, result);
}

/* ---- weft_run ---------------------------------------------------------------- */

Test(runtime, run_returns_main_result, .timeout = 20)
{
    intptr_t values[] = {0, 1, -1, 42, INTPTR_MAX, INTPTR_MIN};
    for (unsigned workers = 1; workers <= 2; workers++)
        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
            intptr_t r = 12345;
            ASSERT_OK(run_with(workers, ret_arg, (void *)values[i], &r));
            cr_assert_eq(r, values[i], "%u workers: result %ld, expected %ld", workers, (long)r,
                         (long)values[i]);
        }
}

static weft_pid first_run_pid;

static intptr_t restart_main(void *arg)
{
    int round = (int)(intptr_t)arg;
    weft_pid me = weft_self();
    CHECK(me != 0, "round %d: weft_self is 0", round);
    if (round > 0) {
        /* A pid of an earlier runtime is stale in this one. */
        char buf[WEFT_NAME_MAX];
        CHECK_RC(weft_join(first_run_pid, NULL, 0), -ESRCH);
        CHECK_RC(weft_proc_name(first_run_pid, buf, sizeof buf), -ESRCH);
        CHECK_RC(weft_detach(first_run_pid), -ESRCH);
    } else {
        first_run_pid = me;
    }
    weft_pid pid;
    CHECK_RC(weft_spawn(&pid, ret_arg, (void *)(intptr_t)round, NULL), 0);
    intptr_t r = -1;
    CHECK_RC(weft_join(pid, &r, WEFT_FOREVER), 0);
    return r * 10;
}

Test(runtime, run_twice_in_a_row_restarts, .timeout = 20)
{
    for (int round = 0; round < 10; round++) {
        intptr_t r = -1;
        ASSERT_OK(run_with(1 + round % 2, restart_main, (void *)(intptr_t)round, &r));
        cr_assert_eq(r, round * 10, "round %d: result %ld", round, (long)r);
        ASSERT_RC(weft_workers(), -ESHUTDOWN);
    }
    ASSERT_CHECKS();
}

static atomic_int main_ran;

static intptr_t count_main(void *arg)
{
    atomic_fetch_add(&main_ran, 1);
    return weft_workers();
}

static int cpus_in_mask(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0, "sched_getaffinity failed");
    return CPU_COUNT(&set);
}

Test(runtime, result_null_and_cfg_null_allowed, .timeout = 20)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = 1;
    ASSERT_OK(weft_run(count_main, NULL, &cfg, NULL));
    cr_assert_eq(atomic_load(&main_ran), 1, "main ran %d times", atomic_load(&main_ran));

    intptr_t r = -1;
    ASSERT_OK(weft_run(count_main, NULL, NULL, &r));
    cr_assert_eq(atomic_load(&main_ran), 2, "main ran %d times", atomic_load(&main_ran));
    cr_assert_eq(r, cpus_in_mask(), "cfg NULL: %ld workers, %d CPUs in the affinity mask", (long)r,
                 cpus_in_mask());
    ASSERT_OK(weft_run(count_main, NULL, NULL, NULL));
}

Test(runtime, config_init_fills_defaults, .timeout = 20)
{
    weft_config cfg;
    memset(&cfg, 0xA5, sizeof cfg);
    weft_config_init(&cfg);
    cr_assert_eq(cfg.workers, 0);
    cr_assert_eq(cfg.stack_size, WEFT_STACK_DEFAULT, "stack_size %zu", cfg.stack_size);
    cr_assert_eq(cfg.seed, 0);
}

Test(runtime, workers_one_two_and_auto, .timeout = 20)
{
    for (unsigned workers = 1; workers <= 4; workers++) {
        intptr_t r = -1;
        ASSERT_OK(run_with(workers, count_main, NULL, &r));
        cr_assert_eq(r, (intptr_t)workers, "cfg.workers %u: weft_workers() %ld", workers, (long)r);
    }
    int cpus = cpus_in_mask();
    intptr_t r = -1;
    ASSERT_OK(run_with(0, count_main, NULL, &r));
    cr_assert_eq(r, cpus, "cfg.workers 0: weft_workers() %ld, %d CPUs in the affinity mask", (long)r,
                 cpus);

    /* Auto follows the calling thread's mask, not the machine. */
    cpu_set_t all, one;
    CPU_ZERO(&all);
    cr_assert_eq(sched_getaffinity(0, sizeof all, &all), 0);
    int first = 0;
    while (!CPU_ISSET(first, &all))
        first++;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0, "sched_setaffinity failed");
    r = -1;
    int rc = run_with(0, count_main, NULL, &r);
    sched_setaffinity(0, sizeof all, &all);
    ASSERT_OK(rc);
    cr_assert_eq(r, 1, "one CPU in the mask: weft_workers() %ld", (long)r);
}

Test(runtime, seed_in_config_accepted, .timeout = 20)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = 2;
    cfg.seed = 12345;
    intptr_t r = -1;
    ASSERT_OK(weft_run(ret_arg, (void *)(intptr_t)5, &cfg, &r));
    cr_assert_eq(r, 5);
}

/* ---- shutdown when main returns ----------------------------------------------------- */

static atomic_int saw_canceled, saw_other, other_rc;

static void count_rc(int rc)
{
    if (rc == -ECANCELED) {
        atomic_fetch_add(&saw_canceled, 1);
    } else {
        atomic_fetch_add(&saw_other, 1);
        atomic_store(&other_rc, rc);
    }
}

static intptr_t sleep_forever(void *arg)
{
    count_rc(weft_sleep(WEFT_FOREVER));
    return 0;
}

static intptr_t sleep_an_hour(void *arg)
{
    count_rc(weft_sleep(weft_now() + 3600 * 1000 * MS));
    return 0;
}

static intptr_t spawn_sleepers_main(void *arg)
{
    int n = (int)(intptr_t)arg;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = 1;
    for (int i = 0; i < n; i++) {
        if (i % 5 == 4)
            weft_yield(); /* some sleep before main returns, some after */
        CHECK_RC(weft_spawn(NULL, i % 2 ? sleep_an_hour : sleep_forever, NULL, &opts), 0);
    }
    return 42;
}

Test(runtime, main_returning_cancels_sleeping_processes, .timeout = 20)
{
    int n = 100;
    int rounds = test_sanitized() ? 20 : 100;
    for (unsigned workers = 1; workers <= 2; workers++)
        for (int round = 0; round < rounds; round++) {
            atomic_store(&saw_canceled, 0);
            atomic_store(&saw_other, 0);
            int64_t t0 = weft_now();
            intptr_t r = test_run(workers, spawn_sleepers_main, (void *)(intptr_t)n);
            int64_t elapsed = weft_now() - t0;
            ASSERT_CHECKS();
            cr_assert_eq(r, 42);
            cr_assert_eq(atomic_load(&saw_other), 0, "%d sleeps returned something else, e.g. %d",
                         atomic_load(&saw_other), atomic_load(&other_rc));
            cr_assert_eq(atomic_load(&saw_canceled), n, "%u workers, round %d: %d of %d sleepers saw -ECANCELED",
                         workers, round, atomic_load(&saw_canceled), n);
            cr_assert_lt(elapsed, 5000 * MS, "weft_run took %lld ns", (long long)elapsed);
        }
}

static atomic_int spawn_canceled;

static intptr_t spawn_after_cancel(void *arg)
{
    int rc = (int)(intptr_t)arg ? weft_sleep(WEFT_FOREVER) : 0;
    if (!(intptr_t)arg)
        while ((rc = weft_yield()) == 0)
            ;
    CHECK_RC(rc, -ECANCELED);
    weft_pid pid = 0;
    rc = weft_spawn(&pid, ret_arg, NULL, NULL);
    CHECK_RC(rc, -ECANCELED);
    if (rc == 0)
        weft_join(pid, NULL, WEFT_FOREVER);
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = 1;
    int rc2 = weft_spawn(NULL, ret_arg, NULL, &opts);
    CHECK_RC(rc2, -ECANCELED);
    if (rc == -ECANCELED && rc2 == -ECANCELED)
        atomic_fetch_add(&spawn_canceled, 1);
    /* Blocking calls keep failing at once. */
    CHECK_RC(weft_sleep(WEFT_FOREVER), -ECANCELED);
    CHECK_RC(weft_yield(), -ECANCELED);
    return 0;
}

static intptr_t spawn_after_cancel_main(void *arg)
{
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = 1;
    for (int i = 0; i < 20; i++)
        CHECK_RC(weft_spawn(NULL, spawn_after_cancel, (void *)(intptr_t)(i % 2), &opts), 0);
    return 0;
}

Test(runtime, spawn_after_shutdown_began_is_canceled, .timeout = 20)
{
    for (unsigned workers = 1; workers <= 2; workers++)
        for (int round = 0; round < 20; round++) {
            atomic_store(&spawn_canceled, 0);
            cr_assert_eq(test_run(workers, spawn_after_cancel_main, NULL), 0);
            ASSERT_CHECKS();
            cr_assert_eq(atomic_load(&spawn_canceled), 20, "%d of 20 spawns saw -ECANCELED",
                         atomic_load(&spawn_canceled));
        }
}

/* ---- outside a runtime, start and stop ------------------------------------------------ */

Test(runtime, workers_outside_runtime_is_eshutdown, .timeout = 20)
{
    ASSERT_RC(weft_workers(), -ESHUTDOWN);
    cr_assert_eq(test_run(1, ret_arg, NULL), 0);
    ASSERT_RC(weft_workers(), -ESHUTDOWN);
}

Test(runtime, start_twice_is_ebusy, .timeout = 20)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = 2;
    ASSERT_OK(weft_start(&cfg));
    ASSERT_RC(weft_workers(), 2);
    ASSERT_RC(weft_start(&cfg), -EBUSY);
    ASSERT_RC(weft_start(NULL), -EBUSY);
    intptr_t r = -1;
    ASSERT_RC(weft_run(ret_arg, NULL, NULL, &r), -EBUSY);
    cr_assert_eq(r, -1, "a refused weft_run wrote its result");
    ASSERT_RC(weft_workers(), 2);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    ASSERT_RC(weft_workers(), -ESHUTDOWN);
    ASSERT_OK(weft_start(NULL));
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

Test(runtime, stop_without_runtime_is_eshutdown, .timeout = 20)
{
    ASSERT_RC(weft_stop(WEFT_FOREVER), -ESHUTDOWN);
    ASSERT_RC(weft_stop(0), -ESHUTDOWN);
    ASSERT_OK(weft_start(NULL));
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    ASSERT_RC(weft_stop(WEFT_FOREVER), -ESHUTDOWN);
}

static atomic_int busy_started, busy_release, busy_done;

/* Computes until released (20 s at most), making no weft call: it ignores
 * cancellation. Released, not timed, so that a stalled test thread cannot
 * see it end early. */
static intptr_t busy_until_released(void *arg)
{
    atomic_store(&busy_started, 1);
    int64_t give_up = weft_now() + 20000 * MS;
    while (!atomic_load(&busy_release) && weft_now() < give_up)
        ;
    atomic_store(&busy_done, 1);
    return 0;
}

Test(runtime, stop_deadline_passes_while_process_ignores_cancel, .timeout = 60)
{
    for (unsigned workers = 1; workers <= 2; workers++) {
        atomic_store(&busy_started, 0);
        atomic_store(&busy_release, 0);
        atomic_store(&busy_done, 0);
        start_workers(workers);
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        opts.detached = 1;
        ASSERT_OK(weft_spawn(NULL, busy_until_released, NULL, &opts));
        while (!atomic_load(&busy_started))
            sched_yield();
        int64_t t0 = weft_now();
        ASSERT_RC(weft_stop(t0 + 50 * MS), -ETIMEDOUT);
        int64_t elapsed = weft_now() - t0;
        cr_assert_geq(elapsed, 50 * MS, "weft_stop gave up after %lld ns", (long long)elapsed);
        cr_assert_lt(elapsed, 5000 * MS, "weft_stop with a 50 ms deadline took %lld ns",
                     (long long)elapsed);

        /* Shutting down: spawning is refused, the runtime is still there. */
        weft_pid pid;
        ASSERT_RC(weft_spawn(&pid, ret_arg, NULL, NULL), -ECANCELED);
        ASSERT_RC(weft_workers(), (int)workers);
        ASSERT_RC(weft_start(NULL), -EBUSY);
        ASSERT_RC(weft_stop(0), -ETIMEDOUT);

        atomic_store(&busy_release, 1);
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        cr_assert(atomic_load(&busy_done), "weft_stop returned while a process ran");
        ASSERT_RC(weft_workers(), -ESHUTDOWN);
        ASSERT_RC(weft_stop(WEFT_FOREVER), -ESHUTDOWN);
    }
}

static intptr_t yield_until_canceled(void *arg)
{
    atomic_store(&busy_started, 1);
    int rc;
    while ((rc = weft_yield()) == 0)
        ;
    CHECK_RC(rc, -ECANCELED);
    return 0;
}

Test(runtime, stop_within_deadline_when_processes_cooperate, .timeout = 20)
{
    for (unsigned workers = 1; workers <= 2; workers++) {
        atomic_store(&busy_started, 0);
        start_workers(workers);
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        opts.detached = 1;
        for (int i = 0; i < 10; i++)
            ASSERT_OK(weft_spawn(NULL, yield_until_canceled, NULL, &opts));
        while (!atomic_load(&busy_started))
            sched_yield();
        ASSERT_OK(weft_stop(weft_now() + 2000 * MS));
    }
    ASSERT_CHECKS();
}

static atomic_int start_stop_canceled;

static intptr_t sleep_forever_counted(void *arg)
{
    if (weft_sleep(WEFT_FOREVER) == -ECANCELED)
        atomic_fetch_add(&start_stop_canceled, 1);
    return 0;
}

Test(runtime, start_stop_fifty_times, .timeout = 20)
{
    for (int i = 0; i < 50; i++) {
        weft_config cfg;
        weft_config_init(&cfg);
        cfg.workers = 1 + i % 2;
        ASSERT_OK(weft_start(&cfg));
        weft_pid pid;
        ASSERT_OK(weft_spawn(&pid, ret_arg, (void *)(intptr_t)i, NULL));
        intptr_t r = -1;
        ASSERT_OK(weft_join(pid, &r, WEFT_FOREVER));
        cr_assert_eq(r, i, "start %d: result %ld", i, (long)r);
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        opts.detached = 1;
        ASSERT_OK(weft_spawn(NULL, sleep_forever_counted, NULL, &opts));
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        cr_assert_eq(atomic_load(&start_stop_canceled), i + 1, "start %d: %d sleepers canceled", i,
                     atomic_load(&start_stop_canceled));
    }
}

/* weft_run owns its main process: main cannot detach itself (weft_run
 * would have nothing to join), and another process joining main does not
 * take main's result away from weft_run. */
static weft_pid main_pid;

static intptr_t joins_main(void *arg)
{
    intptr_t r = -1;
    int rc = weft_join(main_pid, &r, WEFT_FOREVER);
    return rc ? rc : r;
}

static intptr_t owned_main(void *arg)
{
    main_pid = weft_self();
    if (weft_detach(main_pid) != -EINVAL)
        return -1;
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.detached = 1;
    if (weft_spawn(NULL, joins_main, NULL, &o) != 0)
        return -2;
    weft_yield(); /* let the joiner start waiting */
    return 77;
}

Test(runtime, weft_run_keeps_its_main_process, .timeout = 20)
{
    setenv("WEFT_STRICT", "0", 1);
    for (unsigned workers = 1; workers <= 2; workers++) {
        intptr_t r = test_run(workers, owned_main, NULL);
        cr_assert_eq(r, 77, "%u workers: weft_run gave %ld", workers, (long)r);
    }
}
