/* test-stack.c: process stacks: guard pages and overflow reports, reuse,
 * per-spawn sizes. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"


#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)
#define PAGE ((size_t)4096)

/* Resident memory of this program, in bytes. */
static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    cr_assert_not_null(f);
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    cr_assert_gt(kb, 0, "no VmRSS in /proc/self/status");
    return kb * 1024;
}

/* Writes n bytes of a buffer on the calling process's stack and reads them
 * back; returns their sum. */
__attribute__((noinline)) static long use_stack(size_t n, unsigned char fill)
{
    unsigned char buf[n];
    memset(buf, fill, n);
    __asm__ __volatile__("" : : "r"(buf) : "memory");
    long sum = 0;
    for (size_t i = 0; i < n; i += 512)
        sum += buf[i];
    sum += buf[n - 1];
    return sum;
}

static long expected_sum(size_t n, unsigned char fill)
{
    return (long)fill * (long)((n + 511) / 512 + 1);
}

/* ---- overflow --------------------------------------------------------------- */

static volatile int never; /* keeps the recursion from being proven endless */

__attribute__((noinline)) static int recurse(int depth)
{
    volatile char frame[1024];
    frame[0] = (char)depth;
    frame[sizeof frame - 1] = (char)depth;
    if (never)
        return frame[0];
    return recurse(depth + 1) + frame[depth % (int)sizeof frame];
}

static intptr_t deep(void *arg)
{
    return recurse(0);
}

struct overflow_case {
    const char *guard;   /* WEFT_GUARD, or NULL */
    unsigned workers;
    const char *name;    /* name of the overflowing process, or NULL */
    size_t stack_size;
};

static intptr_t overflow_main(void *arg)
{
    const struct overflow_case *c = arg;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.name = c->name;
    if (c->stack_size)
        opts.stack_size = c->stack_size;
    weft_pid pid;
    ASSERT_OK(weft_spawn(&pid, deep, NULL, &opts));
    weft_join(pid, NULL, WEFT_FOREVER);
    return 0;
}

/* Runs the case in a child process; returns its stderr, and its wait status
 * in *status. */
static char *run_overflow_child(const struct overflow_case *c, int *status)
{
    int fds[2];
    ASSERT_CMP(pipe(fds), ==, 0);
    fflush(NULL);
    pid_t child = fork();
    ASSERT_CMP(child, >=, 0);
    if (child == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        signal(SIGABRT, SIG_DFL);
        signal(SIGSEGV, SIG_DFL);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        if (c->guard)
            setenv("WEFT_GUARD", c->guard, 1);
        else
            unsetenv("WEFT_GUARD");
        weft_config cfg;
        weft_config_init(&cfg);
        cfg.workers = c->workers;
        weft_run(overflow_main, (void *)c, &cfg, NULL);
        fprintf(stderr, "the overflowing process did not kill the program\n");
        _exit(3);
    }
    close(fds[1]);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    cr_assert_not_null(out);
    ssize_t n;
    while ((n = read(fds[0], out + len, cap - 1 - len)) > 0 && len + (size_t)n < cap - 1)
        len += (size_t)n;
    if (n > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(fds[0]);
    ASSERT_CMP(waitpid(child, status, 0), ==, child);
    return out;
}

static void check_overflow(const struct overflow_case *c)
{
    int status = 0;
    char *err = run_overflow_child(c, &status);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
              "guard %s, %u workers: the child %s %d, expected to die of SIGABRT; stderr:\n%s",
              c->guard ? c->guard : "(default)", c->workers,
              WIFSIGNALED(status) ? "died of signal" : "exited with",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), err);
    char want[64];
    if (c->name)
        snprintf(want, sizeof want, "stack overflow in process \"%s\"", c->name);
    else
        snprintf(want, sizeof want, "stack overflow in process \"fn@0x");
    cr_assert_not_null(strstr(err, want), "guard %s: stderr lacks '%s':\n%s",
                       c->guard ? c->guard : "(default)", want, err);
    cr_assert_not_null(strstr(err, "pid 0x"), "stderr lacks the pid:\n%s", err);
    free(err);
}

/* Each case runs in a forked child, forked before any runtime starts in
 * this process. Under ASan and TSan weft's handler is installed after the
 * sanitizer's and sees the guard-page fault first. */
Test(stack, overflow_names_the_process, .timeout = 30)
{
    struct overflow_case cases[] = {
        {NULL, 1, "deep", 0},
        {NULL, 2, "deep", 0},
        {NULL, 1, NULL, 0},
        {NULL, 1, "deep", WEFT_STACK_MIN},
        {NULL, 2, "deep", 1 * MiB},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_overflow(&cases[i]);
}

Test(stack, overflow_names_the_process_mprotect_guard, .timeout = 30)
{
    struct overflow_case cases[] = {
        {"mprotect", 1, "deep", 0},
        {"mprotect", 2, "deep", 0},
        {"mprotect", 1, "deep", WEFT_STACK_MIN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_overflow(&cases[i]);
}

/* ---- reuse ------------------------------------------------------------------ */

/* Stacks seen by processes run one after the other: the address of a local
 * of each, by 64 KiB (the default stack size). */
enum { SEEN_MAX = 4096 };
static uintptr_t seen_stack[SEEN_MAX];
static int seen_count;

static void note_stack(uintptr_t addr)
{
    uintptr_t s = addr / WEFT_STACK_DEFAULT;
    for (int i = 0; i < seen_count; i++)
        if (seen_stack[i] == s)
            return;
    if (seen_count < SEEN_MAX)
        seen_stack[seen_count++] = s;
}

static intptr_t touch_32k(void *arg)
{
    int local;
    __asm__ __volatile__("" : : "r"(&local) : "memory");
    note_stack((uintptr_t)&local);
    return use_stack(32 * KiB, 0x5a);
}

/* Under TSan each process's fiber leaves about 1 KiB of the sanitizer's own
 * bookkeeping behind, so RSS measures the sanitizer there: only the count
 * of distinct stacks is checked. */
static int rss_meaningful(void)
{
    const char *s = getenv("WEFT_SANITIZE");
    return !s || strcmp(s, "thread") != 0;
}

static intptr_t reuse_main(void *arg)
{
    int n = *(int *)arg;
    long sum = expected_sum(32 * KiB, 0x5a);
    for (int i = 0; i < 1000; i++) { /* warm up the pools */
        weft_pid pid;
        ASSERT_OK(weft_spawn(&pid, touch_32k, NULL, NULL));
        ASSERT_OK(weft_join(pid, NULL, WEFT_FOREVER));
    }
    long before = rss_bytes();
    seen_count = 0;
    for (int i = 0; i < n; i++) {
        weft_pid pid;
        intptr_t r = 0;
        ASSERT_OK(weft_spawn(&pid, touch_32k, NULL, NULL));
        ASSERT_OK(weft_join(pid, &r, WEFT_FOREVER));
        ASSERT_CMP(r, ==, sum);
    }
    long growth = rss_bytes() - before;
    /* One at a time, at most a few stacks (per-worker caches) take turns. */
    cr_assert_leq(seen_count, 64,
                  "%d processes run one after the other used %d%s different stacks", n, seen_count,
                  seen_count == SEEN_MAX ? " or more" : "");
    if (rss_meaningful())
        cr_assert_lt(growth, (long)(20 * MiB),
                     "%d processes that each touched 32 KiB of stack, one after the other, grew "
                     "RSS by %ld KiB: stacks are not reused", n, growth / 1024);
    return 1;
}

Test(stack, stacks_are_reused, .timeout = 30)
{
    int n = test_sanitized() ? 10000 : 100000;
    ASSERT_CMP(test_run(1, reuse_main, &n), ==, 1);
    ASSERT_CMP(test_run(2, reuse_main, &n), ==, 1);
}

/* Many stacks at once, twice: the second wave reuses the first one's. */
static atomic_int wave_go, wave_ready;

static intptr_t wave_proc(void *arg)
{
    long s = use_stack(32 * KiB, 0x33);
    atomic_fetch_add(&wave_ready, 1);
    while (!atomic_load(&wave_go))
        ASSERT_OK(weft_sleep(weft_now() + 1000000));
    return s;
}

static intptr_t wave_main(void *arg)
{
    int n = test_sanitized() ? 1000 : 5000;
    weft_pid *pids = malloc((size_t)n * sizeof *pids);
    cr_assert_not_null(pids);
    long peak[2] = {0, 0};
    for (int wave = 0; wave < 2; wave++) {
        atomic_store(&wave_go, 0);
        atomic_store(&wave_ready, 0);
        for (int i = 0; i < n; i++)
            ASSERT_OK(weft_spawn(&pids[i], wave_proc, NULL, NULL));
        while (atomic_load(&wave_ready) < n)
            ASSERT_OK(weft_sleep(weft_now() + 1000000));
        peak[wave] = rss_bytes();
        atomic_store(&wave_go, 1);
        for (int i = 0; i < n; i++) {
            intptr_t r = 0;
            ASSERT_OK(weft_join(pids[i], &r, WEFT_FOREVER));
            ASSERT_CMP(r, ==, expected_sum(32 * KiB, 0x33));
        }
    }
    if (rss_meaningful())
        cr_assert_lt(peak[1] - peak[0], (long)(20 * MiB),
                 "a second wave of %d processes grew RSS from %ld to %ld KiB", n, peak[0] / 1024,
                 peak[1] / 1024);
    free(pids);
    return 1;
}

Test(stack, a_second_wave_reuses_stacks, .timeout = 30)
{
    ASSERT_CMP(test_run(2, wave_main, NULL), ==, 1);
}

/* ---- sizes ------------------------------------------------------------------- */

struct use_case {
    size_t stack_size; /* for weft_spawn_opts; 0: the runtime's default */
    size_t use;        /* bytes of local buffer the process writes */
};

static intptr_t use_proc(void *arg)
{
    const struct use_case *u = arg;
    return use_stack(u->use, 0xa5);
}

static intptr_t sizes_main(void *arg)
{
    const struct use_case cases[] = {
        {1 * MiB, 512 * KiB},
        {WEFT_STACK_MIN, 8 * KiB},
        {WEFT_STACK_DEFAULT, 32 * KiB},
        /* Not a power of two: usable to the size asked for less the guard
         * page (and room for the frames above the buffer). */
        {100000, 100000 - PAGE - 1024},
        {WEFT_STACK_MIN + 1, WEFT_STACK_MIN - PAGE - 1024},
        {3 * MiB + 5, 3 * MiB - PAGE - 1024},
        {64 * MiB, 32 * MiB},
        {WEFT_STACK_MAX, 1 * MiB},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        opts.stack_size = cases[i].stack_size;
        weft_pid pid;
        intptr_t r = 0;
        int rc = weft_spawn(&pid, use_proc, (void *)&cases[i], &opts);
        cr_assert_eq(rc, 0, "spawn with stack_size %zu: %d (%s)", cases[i].stack_size, rc,
                     weft_strerror(rc));
        ASSERT_OK(weft_join(pid, &r, WEFT_FOREVER));
        cr_assert_eq(r, expected_sum(cases[i].use, 0xa5), "stack_size %zu, %zu bytes used",
                     cases[i].stack_size, cases[i].use);
    }
    return 1;
}

Test(stack, per_spawn_stack_sizes, .timeout = 30)
{
    for (unsigned workers = 1; workers <= 2; workers++)
        ASSERT_CMP(test_run(workers, sizes_main, NULL), ==, 1);
}

static intptr_t bad_sizes_main(void *arg)
{
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    weft_pid pid = 0;
    opts.stack_size = WEFT_STACK_MIN - 1;
    ASSERT_RC(weft_spawn(&pid, use_proc, NULL, &opts), -EINVAL);
    opts.stack_size = 0;
    ASSERT_RC(weft_spawn(&pid, use_proc, NULL, &opts), -EINVAL);
    opts.stack_size = WEFT_STACK_MAX + 1;
    ASSERT_RC(weft_spawn(&pid, use_proc, NULL, &opts), -E2BIG);
    opts.stack_size = (size_t)-1;
    ASSERT_RC(weft_spawn(&pid, use_proc, NULL, &opts), -E2BIG);
    return 1;
}

Test(stack, stack_size_out_of_range, .timeout = 10)
{
    ASSERT_CMP(test_run(1, bad_sizes_main, NULL), ==, 1);
}

/* The runtime's default stack size applies to spawns without a size. */
static intptr_t default_size_main(void *arg)
{
    static const struct use_case big = {0, 512 * KiB};
    weft_pid pid;
    intptr_t r = 0;
    ASSERT_OK(weft_spawn(&pid, use_proc, (void *)&big, NULL));
    ASSERT_OK(weft_join(pid, &r, WEFT_FOREVER));
    ASSERT_CMP(r, ==, expected_sum(big.use, 0xa5));
    return 1;
}

Test(stack, runtime_default_stack_size, .timeout = 10)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = 2;
    cfg.stack_size = 1 * MiB;
    intptr_t r = 0;
    ASSERT_OK(weft_run(default_size_main, NULL, &cfg, &r));
    ASSERT_CMP(r, ==, 1);
}
