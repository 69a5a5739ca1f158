/* runner.c: runs the test cases registered through criterion.h (TSan build),
 * each in a forked child under a timeout, and prints Criterion-like results
 * ending with "N passed, N failed, N skipped".
 * Options: --filter GLOB (suite/name), --timeout S (default per case: 60);
 * Criterion's --jobs and --short-filename are accepted and ignored. */
#define _POSIX_C_SOURCE 200809L
#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "criterion/criterion.h"

enum { MAX_TESTS = 512, EXIT_SKIP = 77 };

static struct test {
    const char *suite, *name;
    void (*fn)(void);
    struct criterion_test_params params;
} tests[MAX_TESTS];
static int ntests;

void criterion_register(const char *suite, const char *name, void (*fn)(void),
                        struct criterion_test_params params)
{
    if (ntests == MAX_TESTS) {
        fprintf(stderr, "runner: more than %d tests\n", MAX_TESTS);
        exit(2);
    }
    tests[ntests++] = (struct test){suite, name, fn, params};
}

void criterion_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
    fprintf(stderr, "[----] %s:%d: Assertion Failed: %s\n", file, line, expr);
    if (fmt[0]) {
        va_list ap;
        va_start(ap, fmt);
        fputs("[----]   ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    fflush(stderr);
    _exit(1); /* from any thread of the case: the whole case fails */
}

void criterion_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("[SKIP] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    _exit(EXIT_SKIP);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs one case; returns 0 passed, 1 failed, 2 skipped. */
static int run(const struct test *t, double default_timeout)
{
    double timeout = t->params.timeout > 0 ? t->params.timeout : default_timeout;
    double start = now_s();
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        alarm((unsigned)(timeout + 0.999));
        t->fn();
        fflush(NULL);
        _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    double took = now_s() - start;
    const char *why = NULL;
    char buf[64];
    if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SKIP)
        return 2;
    if (t->params.signal) {
        if (!WIFSIGNALED(status) || WTERMSIG(status) != t->params.signal) {
            snprintf(buf, sizeof buf, "expected signal %d", t->params.signal);
            why = buf;
        }
    } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
        snprintf(buf, sizeof buf, "timed out after %.0f s", timeout);
        why = buf;
    } else if (WIFSIGNALED(status)) {
        snprintf(buf, sizeof buf, "CRASH! signal %d", WTERMSIG(status));
        why = buf;
    } else if (WEXITSTATUS(status) != 0) {
        snprintf(buf, sizeof buf, "exit status %d", WEXITSTATUS(status));
        why = buf;
    }
    if (why)
        fprintf(stderr, "[FAIL] %s::%s: %s (%.2fs)\n", t->suite, t->name, why, took);
    else
        fprintf(stderr, "[PASS] %s::%s: (%.2fs)\n", t->suite, t->name, took);
    return why ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *filter = NULL;
    double default_timeout = 60;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
            filter = argv[++i];
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            default_timeout = atof(argv[++i]);
        else if (strcmp(argv[i], "--jobs") == 0 && i + 1 < argc)
            i++;
        else if (strcmp(argv[i], "--short-filename") != 0) {
            fprintf(stderr, "usage: %s [--filter GLOB] [--timeout S]\n", argv[0]);
            return 2;
        }
    }
    int counts[3] = {0, 0, 0};
    for (int i = 0; i < ntests; i++) {
        char full[256];
        snprintf(full, sizeof full, "%s/%s", tests[i].suite, tests[i].name);
        if (tests[i].params.disabled || (filter && fnmatch(filter, full, 0) != 0))
            continue;
        counts[run(&tests[i], default_timeout)]++;
    }
    printf("%d passed, %d failed, %d skipped\n", counts[0], counts[1], counts[2]);
    return counts[1] ? 1 : 0;
}
