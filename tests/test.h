/* test.h: helpers shared by the test programs (Criterion). */
#ifndef WEFT_TEST_H
#define WEFT_TEST_H

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

/* Asserts that a weft call returned the expected code, naming both. */
#define ASSERT_RC(expr, expected)                                                           \
    do {                                                                                    \
        int rc_ = (int)(expr);                                                              \
        int exp_ = (int)(expected);                                                         \
        cr_assert_eq(rc_, exp_, "%s returned %d (%s), expected %d (%s)", #expr, rc_,        \
                     weft_strerror(rc_), exp_, weft_strerror(exp_));                        \
    } while (0)

#define ASSERT_OK(expr) ASSERT_RC(expr, 0)

/* Nonzero in a sanitizer build (CTest passes WEFT_SANITIZE): heavy cases
 * scale their counts down there. */
static inline int test_sanitized(void)
{
    const char *s = getenv("WEFT_SANITIZE");
    return s && s[0];
}

#define MS ((int64_t)1000000) /* nanoseconds */
#define US ((int64_t)1000)

/* Compares two integers and prints both on failure. */
#define ASSERT_CMP(a, op, b)                                                                \
    do {                                                                                    \
        long long a_ = (long long)(a), b_ = (long long)(b);                                 \
        cr_assert(a_ op b_, "%s = %lld, expected " #op " %s = %lld", #a, a_, #b, b_);      \
    } while (0)

/* CPU time (user + system) of the whole program, in ns. */
static inline int64_t test_cpu_ns(void)
{
    struct rusage ru;
    ASSERT_CMP(getrusage(RUSAGE_SELF, &ru), ==, 0);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* Milliseconds from now, as a weft deadline. */
static inline int64_t test_in_ms(int64_t ms)
{
    return weft_now() + ms * 1000000;
}

/* Runs fn as the main process of a runtime with `workers` workers and
 * returns its result, asserting that the runtime itself worked. */
static inline intptr_t test_run(unsigned workers, weft_proc_fn fn, void *arg)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = workers;
    intptr_t result = -12345;
    ASSERT_OK(weft_run(fn, arg, &cfg, &result));
    return result;
}

/* Starts an embedded runtime with `workers` workers. */
static inline void start_workers(unsigned workers)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = workers;
    ASSERT_OK(weft_start(&cfg));
}

/* Checks inside processes (define TEST_PROC_CHECKS before including this).
 * A failed cr_assert must not run on a worker thread (Criterion's assertions
 * longjmp to the test's thread), so a failed CHECK is counted and the first
 * one kept; ASSERT_CHECKS() after the run asserts that none failed. */
#ifdef TEST_PROC_CHECKS
static atomic_int check_failures;
static char check_first[512];

__attribute__((format(printf, 2, 3))) static void check_fail(int line, const char *fmt, ...)
{
    if (atomic_fetch_add(&check_failures, 1) != 0)
        return;
    int n = snprintf(check_first, sizeof check_first, "line %d: ", line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(check_first + n, sizeof check_first - (size_t)n, fmt, ap);
    va_end(ap);
}

#define CHECK(cond, ...)                        \
    do {                                        \
        if (!(cond))                            \
            check_fail(__LINE__, __VA_ARGS__);  \
    } while (0)

#define CHECK_RC(expr, expected)                                                              \
    do {                                                                                      \
        int rc_ = (int)(expr), exp_ = (int)(expected);                                        \
        if (rc_ != exp_)                                                                      \
            check_fail(__LINE__, "%s returned %d (%s), expected %d (%s)", #expr, rc_,         \
                       weft_strerror(rc_), exp_, weft_strerror(exp_));                        \
    } while (0)

#define ASSERT_CHECKS()                                                                       \
    cr_assert_eq(atomic_load(&check_failures), 0, "%d check(s) failed in processes; first: %s", \
                 atomic_load(&check_failures), check_first)

/* Helpers for tests that run many processes (channels, select). */
/* Runs fn as the main process at the given workers; it must return 0. The
 * checks are asserted first: a failed one explains what follows it (a main
 * process that gave up can leave the others deadlocked). */
static inline void run_at_workers(unsigned workers, weft_proc_fn fn, void *arg)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = workers;
    intptr_t r = -12345;
    int rc = weft_run(fn, arg, &cfg, &r);
    ASSERT_CHECKS();
    ASSERT_RC(rc, 0);
    cr_assert_eq(r, 0, "%u workers: main returned %ld", workers, (long)r);
}

static inline void run_1_and_2(weft_proc_fn fn, void *arg)
{
    run_at_workers(1, fn, arg);
    run_at_workers(2, fn, arg);
}

static inline weft_pid spawn_proc(weft_proc_fn fn, void *arg)
{
    weft_pid pid = 0;
    CHECK_RC(weft_spawn(&pid, fn, arg, NULL), 0);
    return pid;
}

/* Spawns fn(arg) starting on the given worker (modulo the workers there
 * are), pinned to it if asked and there is more than one worker: spreads a
 * test's processes over the workers. */
static inline weft_pid spawn_on(weft_proc_fn fn, void *arg, int worker, int pinned)
{
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    int n = weft_workers();
    opts.worker = n > 0 ? worker % n : -1;
    opts.pinned = pinned && n > 1;
    weft_pid pid = 0;
    CHECK_RC(weft_spawn(&pid, fn, arg, &opts), 0);
    return pid;
}

static inline intptr_t join_proc(weft_pid pid)
{
    intptr_t r = -12345;
    CHECK_RC(weft_join(pid, &r, WEFT_FOREVER), 0);
    return r;
}

static inline weft_chan make_chan(size_t elem_size, size_t cap)
{
    weft_chan ch = 0;
    CHECK_RC(weft_chan_make(&ch, elem_size, cap), 0);
    return ch;
}
#endif

#endif
