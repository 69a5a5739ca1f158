/* test-alloc.c: the allocation hook: every allocation goes through it and is
 * given back, failures give -ENOMEM without leaks or crashes, and the hook
 * cannot be swapped while weft holds memory. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#define TEST_PROC_CHECKS
#include "test.h"

/* Checks inside processes: counted, the first kept; asserted after the run
 * (a worker thread cannot end a Criterion test). */

/* ---- the counting allocator ---------------------------------------------------------- */

/* Each block carries its size in a header, to check the size weft passes
 * back when it resizes or frees. */
enum { HEADER = 16 };

static struct counting {
    atomic_long attempts;  /* allocation requests, failed ones included */
    atomic_long allocs;    /* blocks handed out */
    atomic_long frees;     /* blocks given back */
    atomic_long failed;    /* requests refused */
    atomic_long fail_at;   /* refuse the request with this number (1-based); 0: none */
    atomic_int fail_all;   /* refuse every request */
    atomic_long bad_size;  /* frees or resizes with a wrong old size */
    atomic_long bad_ud;    /* calls with another ud */
} ca;

static void *counting_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    if (ud != &ca)
        atomic_fetch_add(&ca.bad_ud, 1);
    char *block = ptr ? (char *)ptr - HEADER : NULL;
    if (block && *(size_t *)block != old_size)
        atomic_fetch_add(&ca.bad_size, 1);
    if (new_size == 0) {
        if (block)
            atomic_fetch_add(&ca.frees, 1);
        free(block);
        return NULL;
    }
    if (block) { /* resize */
        block = realloc(block, new_size + HEADER);
        if (!block)
            return NULL;
        *(size_t *)block = new_size;
        return block + HEADER;
    }
    long k = atomic_fetch_add(&ca.attempts, 1) + 1;
    if (atomic_load(&ca.fail_all) || k == atomic_load(&ca.fail_at)) {
        atomic_fetch_add(&ca.failed, 1);
        return NULL;
    }
    block = malloc(new_size + HEADER);
    if (!block)
        return NULL;
    *(size_t *)block = new_size;
    atomic_fetch_add(&ca.allocs, 1);
    return block + HEADER;
}

static void counting_reset(void)
{
    atomic_store(&ca.attempts, 0);
    atomic_store(&ca.allocs, 0);
    atomic_store(&ca.frees, 0);
    atomic_store(&ca.failed, 0);
    atomic_store(&ca.fail_at, 0);
    atomic_store(&ca.fail_all, 0);
    atomic_store(&ca.bad_size, 0);
    atomic_store(&ca.bad_ud, 0);
}

/* Asserts that everything taken was given back, with the right sizes, and
 * that the hook can therefore be swapped. */
static void assert_balanced(const char *when)
{
    cr_assert_eq(atomic_load(&ca.allocs), atomic_load(&ca.frees),
                 "%s: %ld allocations, %ld frees", when, atomic_load(&ca.allocs),
                 atomic_load(&ca.frees));
    cr_assert_eq(atomic_load(&ca.bad_size), 0, "%s: %ld frees/resizes with a wrong size", when,
                 atomic_load(&ca.bad_size));
    cr_assert_eq(atomic_load(&ca.bad_ud), 0, "%s: %ld calls with a wrong ud", when,
                 atomic_load(&ca.bad_ud));
    ASSERT_RC(weft_set_allocator(NULL, NULL), 0);
    ASSERT_RC(weft_set_allocator(counting_alloc, &ca), 0);
}

static intptr_t ret_arg(void *arg)
{
    return (intptr_t)arg;
}

/* ---- balance ------------------------------------------------------------------------- */

static intptr_t busy_child(void *arg)
{
    intptr_t i = (intptr_t)arg;
    if (i % 3 == 0)
        weft_sleep(weft_now() + 100000);
    else if (i % 3 == 1)
        weft_yield();
    return i;
}

static intptr_t busy_main(void *arg)
{
    enum { N = 2000 };
    static weft_pid pids[N];
    intptr_t sum = 0;
    for (int i = 0; i < N; i++)
        CHECK_RC(weft_spawn(&pids[i], busy_child, (void *)(intptr_t)i, NULL), 0);
    for (int i = 0; i < N; i++) {
        intptr_t r = 0;
        CHECK_RC(weft_join(pids[i], &r, WEFT_FOREVER), 0);
        sum += r;
    }
    return sum;
}

Test(alloc, counting_allocator_balances_after_run_and_stop, .timeout = 20)
{
    ASSERT_OK(weft_set_allocator(counting_alloc, &ca));
    for (unsigned workers = 1; workers <= 2; workers++) {
        counting_reset();
        intptr_t sum = test_run(workers, busy_main, NULL);
        ASSERT_CHECKS();
        cr_assert_eq(sum, 2000 * 1999 / 2);
        cr_assert_gt(atomic_load(&ca.allocs), 0, "weft allocated nothing through the hook");
        assert_balanced("after weft_run");

        counting_reset();
        weft_config cfg;
        weft_config_init(&cfg);
        cfg.workers = workers;
        ASSERT_OK(weft_start(&cfg));
        weft_pid pid;
        ASSERT_OK(weft_spawn(&pid, busy_child, (void *)(intptr_t)3, NULL));
        intptr_t r = 0;
        ASSERT_OK(weft_join(pid, &r, WEFT_FOREVER));
        cr_assert_eq(r, 3);
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        cr_assert_gt(atomic_load(&ca.allocs), 0);
        assert_balanced("after weft_stop");
    }
    ASSERT_OK(weft_set_allocator(NULL, NULL));
}

static intptr_t set_allocator_inside(void *arg)
{
    CHECK_RC(weft_set_allocator(NULL, NULL), -EBUSY);
    CHECK_RC(weft_set_allocator(counting_alloc, &ca), -EBUSY);
    return 0;
}

static atomic_int spinning;

static intptr_t spin_200ms(void *arg)
{
    atomic_store(&spinning, 1);
    int64_t end = weft_now() + 200 * 1000000;
    while (weft_now() < end)
        ;
    return 0;
}

Test(alloc, set_allocator_while_running_is_ebusy, .timeout = 20)
{
    ASSERT_OK(weft_set_allocator(counting_alloc, &ca));
    ASSERT_OK(weft_start(NULL));
    ASSERT_RC(weft_set_allocator(NULL, NULL), -EBUSY);
    ASSERT_RC(weft_set_allocator(counting_alloc, &ca), -EBUSY);
    weft_pid pid;
    ASSERT_OK(weft_spawn(&pid, set_allocator_inside, NULL, NULL));
    ASSERT_OK(weft_join(pid, NULL, WEFT_FOREVER));
    ASSERT_CHECKS();

    /* Still refused while stopping. */
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = 1;
    ASSERT_OK(weft_spawn(NULL, spin_200ms, NULL, &opts));
    while (!atomic_load(&spinning))
        ;
    ASSERT_RC(weft_stop(weft_now() + 20 * 1000000), -ETIMEDOUT);
    ASSERT_RC(weft_set_allocator(NULL, NULL), -EBUSY);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    assert_balanced("after weft_stop");
    ASSERT_OK(weft_set_allocator(NULL, NULL));
    ASSERT_OK(weft_set_allocator(NULL, NULL));
}

/* ---- failures ----------------------------------------------------------------------- */

Test(alloc, start_fails_cleanly_at_each_allocation, .timeout = 20)
{
    ASSERT_OK(weft_set_allocator(counting_alloc, &ca));
    for (unsigned workers = 1; workers <= 2; workers++) {
        int refused = 0;
        for (long k = 1;; k++) {
            cr_assert_lt(k, 1000, "weft_start kept failing");
            counting_reset();
            atomic_store(&ca.fail_at, k);
            weft_config cfg;
            weft_config_init(&cfg);
            cfg.workers = workers;
            int rc = weft_start(&cfg);
            cr_assert(rc == 0 || rc == -ENOMEM, "allocation %ld refused: weft_start returned %d (%s)",
                      k, rc, weft_strerror(rc));
            if (rc == 0) {
                ASSERT_RC(weft_workers(), (int)workers);
                ASSERT_OK(weft_stop(WEFT_FOREVER));
                assert_balanced("after a weft_start that succeeded");
                if (atomic_load(&ca.failed) == 0)
                    break; /* k is past the last allocation */
                continue;
            }
            refused++;
            cr_assert_eq(atomic_load(&ca.failed), 1);
            ASSERT_RC(weft_workers(), -ESHUTDOWN);
            assert_balanced("after weft_start failed");
        }
        cr_assert_gt(refused, 0, "no refused allocation made weft_start fail");
    }
    ASSERT_OK(weft_set_allocator(NULL, NULL));
}

/* A small program that allocates in many places (process blocks, handles,
 * timers, stacks), run with the k-th allocation refused. Everything it
 * spawned it joins, whatever failed. */
static intptr_t fi_grandchild(void *arg)
{
    return 1;
}

static intptr_t fi_child(void *arg)
{
    intptr_t i = (intptr_t)arg;
    int rc = weft_sleep(weft_now() + 100000);
    CHECK(rc == 0 || rc == -ENOMEM, "weft_sleep with allocation failures: %d", rc);
    intptr_t n = 1;
    if (i % 4 == 0) {
        weft_pid pid;
        rc = weft_spawn(&pid, fi_grandchild, NULL, NULL);
        CHECK(rc == 0 || rc == -ENOMEM, "weft_spawn with allocation failures: %d", rc);
        if (rc == 0) {
            intptr_t r = 0;
            rc = weft_join(pid, &r, WEFT_FOREVER);
            CHECK(rc == 0 || rc == -ENOMEM, "weft_join with allocation failures: %d", rc);
            n += rc == 0 ? r : 0;
        }
    }
    return n;
}

static intptr_t fi_main(void *arg)
{
    enum { N = 64 };
    weft_pid pids[N];
    int spawned[N];
    for (int i = 0; i < N; i++) {
        int rc = weft_spawn(&pids[i], fi_child, (void *)(intptr_t)i, NULL);
        CHECK(rc == 0 || rc == -ENOMEM, "weft_spawn with allocation failures: %d", rc);
        spawned[i] = rc == 0;
    }
    intptr_t total = 0;
    for (int i = 0; i < N; i++) {
        if (!spawned[i])
            continue;
        intptr_t r = 0;
        int rc = weft_join(pids[i], &r, WEFT_FOREVER);
        /* -ENOMEM: the process never ran, for want of a stack. */
        CHECK(rc == 0 || rc == -ENOMEM, "weft_join with allocation failures: %d", rc);
        total += rc == 0 ? r : 0;
    }
    return total;
}

Test(alloc, run_survives_failure_at_each_allocation, .timeout = 20)
{
    ASSERT_OK(weft_set_allocator(counting_alloc, &ca));
    for (unsigned workers = 1; workers <= 2; workers++) {
        int enomem = 0;
        long k;
        for (k = 1;; k++) {
            cr_assert_lt(k, 3000, "allocation failures never stopped");
            counting_reset();
            atomic_store(&ca.fail_at, k);
            weft_config cfg;
            weft_config_init(&cfg);
            cfg.workers = workers;
            intptr_t r = -1;
            int rc = weft_run(fi_main, NULL, &cfg, &r);
            ASSERT_CHECKS();
            cr_assert(rc == 0 || rc == -ENOMEM, "allocation %ld refused: weft_run returned %d (%s)",
                      k, rc, weft_strerror(rc));
            enomem += rc == -ENOMEM;
            if (rc == 0)
                cr_assert(r > 0 && r <= 64 + 16, "allocation %ld refused: main returned %ld", k, (long)r);
            assert_balanced("after a run with a refused allocation");
            if (atomic_load(&ca.failed) == 0) {
                cr_assert_eq(rc, 0);
                cr_assert_eq(r, 64 + 16, "a run without failures returned %ld", (long)r);
                break;
            }
        }
        cr_assert_gt(enomem, 0, "no refused allocation made weft_run fail");
        cr_assert_gt(k, 10, "only %ld allocations in a run", k - 1);
    }
    ASSERT_OK(weft_set_allocator(NULL, NULL));
}

/* Every allocation refused during a run: the per-worker caches carry the
 * spawns for a while, then weft_spawn gives -ENOMEM; once allocation works
 * again the program goes on. The spawned processes form a chain, each
 * blocked joining the one before, down to a gate. */
enum { CHAIN_MAX = 5000 };
static weft_pid chain[CHAIN_MAX];
static atomic_int chain_open;
static size_t chain_stack;

/* Joins the nearest earlier chain member that ran; 1 + its count. */
static intptr_t join_down(int k)
{
    for (int j = k - 1; j >= 0; j--) {
        intptr_t r = 0;
        int rc = weft_join(chain[j], &r, WEFT_FOREVER);
        if (rc == 0)
            return r + 1;
        /* -ENOMEM: it never ran (no stack), so it joined nobody: go on. */
        CHECK(rc == -ENOMEM, "chain %d: weft_join(chain[%d]) returned %d", k, j, rc);
        if (rc != -ENOMEM)
            return -100000;
    }
    return 0;
}

static intptr_t chain_link(void *arg)
{
    return join_down((int)(intptr_t)arg);
}

static intptr_t chain_gate(void *arg)
{
    while (!atomic_load(&chain_open)) {
        int rc = weft_sleep(weft_now() + 200000);
        if (rc == -ENOMEM)
            weft_yield();
        else if (rc != 0)
            break;
    }
    return 1;
}

static intptr_t exhaust_body(void *arg)
{
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.stack_size = chain_stack;
    /* Warm the caches up. */
    static weft_pid warm[500];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 500; i++)
            CHECK_RC(weft_spawn(&warm[i], busy_child, (void *)(intptr_t)i, &opts), 0);
        for (int i = 0; i < 500; i++)
            CHECK_RC(weft_join(warm[i], NULL, WEFT_FOREVER), 0);
    }
    atomic_store(&chain_open, 0);
    CHECK_RC(weft_spawn(&chain[0], chain_gate, NULL, &opts), 0);
    int n = 1, enomem = 0;
    atomic_store(&ca.fail_all, 1);
    while (n < CHAIN_MAX) {
        int rc = weft_spawn(&chain[n], chain_link, (void *)(intptr_t)n, &opts);
        if (rc == -ENOMEM) {
            enomem = 1;
            break;
        }
        CHECK_RC(rc, 0);
        if (rc)
            break;
        n++;
    }
    atomic_store(&ca.fail_all, 0);
    CHECK(enomem, "%d spawns with every allocation refused, none gave -ENOMEM", n - 1);
    CHECK(atomic_load(&ca.failed) > 0, "no allocation was refused");

    /* Allocation works again: the program goes on. */
    for (int i = 0; i < 100; i++) {
        weft_pid pid;
        intptr_t r = -1;
        CHECK_RC(weft_spawn(&pid, busy_child, (void *)(intptr_t)i, NULL), 0);
        CHECK_RC(weft_join(pid, &r, WEFT_FOREVER), 0);
        CHECK(r == i, "result %ld", (long)r);
    }
    atomic_store(&chain_open, 1);
    /* Counts the members that ran, the gate and this process. */
    intptr_t count = join_down(n);
    CHECK(count >= 2 && count <= n + 1, "the chain of %d counted %ld", n, (long)count);
    return n;
}

/* The caches that carry the spawns are the worker's: the body is pinned, so
 * that it does not move (stolen while the machine is busy) between warming
 * them up and using them. */
static intptr_t exhaust_main(void *arg)
{
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.pinned = 1;
    opts.worker = 0;
    weft_pid body;
    intptr_t n = -1;
    CHECK_RC(weft_spawn(&body, exhaust_body, NULL, &opts), 0);
    CHECK_RC(weft_join(body, &n, WEFT_FOREVER), 0);
    return n;
}

Test(alloc, spawn_gives_enomem_when_allocation_fails_then_recovers, .timeout = 20)
{
    chain_stack = test_sanitized() ? WEFT_STACK_DEFAULT : WEFT_STACK_MIN;
    ASSERT_OK(weft_set_allocator(counting_alloc, &ca));
    for (unsigned workers = 1; workers <= 2; workers++) {
        counting_reset();
        intptr_t n = test_run(workers, exhaust_main, NULL);
        ASSERT_CHECKS();
        cr_assert_gt(n, 1, "%u workers: not one spawn carried by the caches", workers);
        assert_balanced("after the run that exhausted memory");
    }
    ASSERT_OK(weft_set_allocator(NULL, NULL));
}

/* ---- memory of processes nobody joined ---------------------------------------------- */

static intptr_t spawn_unjoined_main(void *arg)
{
    weft_pid pid;
    CHECK_RC(weft_spawn(&pid, ret_arg, NULL, NULL), 0);
    return 0; /* never joins pid */
}

/* weft_run and weft_stop wait for every process and free the runtime: a
 * joinable process that was never joined (its joiner returned, or its join
 * was canceled by the shutdown) must not keep memory past the stop. */
Test(alloc, unjoined_process_memory_freed_at_stop, .timeout = 20)
{
    ASSERT_OK(weft_set_allocator(counting_alloc, &ca));
    counting_reset();
    cr_assert_eq(test_run(1, spawn_unjoined_main, NULL), 0);
    ASSERT_CHECKS();
    assert_balanced("after a run that left a process unjoined");
}
