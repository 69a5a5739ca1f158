/* test-strict.c: WEFT_STRICT=1 turns misuse into an abort with a message;
 * without it the same calls return their error codes. Strict mode is read
 * once per process, so each case runs in a forked child whose environment is
 * set before its first weft call. */
#define _GNU_SOURCE /* setenv, unsetenv */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

/* A pid that was never handed out: a generation no slot has yet. */
#define FORGED_PID ((weft_pid)0x00ABCDEFull << 32 | 3)

typedef int (*child_fn)(void);

struct outcome {
    int status;      /* from waitpid */
    char err[8192];  /* what the child wrote to stderr */
};

/* Runs fn in a child with WEFT_STRICT set to strict (NULL: unset); the
 * child exits with fn's result. */
static void run_child(const char *strict, child_fn fn, struct outcome *out)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork failed");
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        if (strict)
            setenv("WEFT_STRICT", strict, 1);
        else
            unsetenv("WEFT_STRICT");
        _exit(fn());
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], out->err + len, sizeof out->err - 1 - len)) > 0)
        len += (size_t)n;
    out->err[len] = '\0';
    close(fds[0]);
    cr_assert_eq(waitpid(pid, &out->status, 0), pid);
}

static void assert_aborted_with(const struct outcome *out, const char *function)
{
    cr_assert(WIFSIGNALED(out->status) && WTERMSIG(out->status) == SIGABRT,
              "the child was not aborted: status %#x (exit %d), stderr: %s", out->status,
              WIFEXITED(out->status) ? WEXITSTATUS(out->status) : -1, out->err);
    cr_assert(strstr(out->err, "misuse") != NULL, "no \"misuse\" on stderr: %s", out->err);
    cr_assert(strstr(out->err, function) != NULL, "\"%s\" not named on stderr: %s", function, out->err);
}

static void assert_exited_ok(const struct outcome *out)
{
    cr_assert(WIFEXITED(out->status) && WEXITSTATUS(out->status) == 0,
              "the child failed: status %#x (exit %d, signal %d), stderr: %s", out->status,
              WIFEXITED(out->status) ? WEXITSTATUS(out->status) : -1,
              WIFSIGNALED(out->status) ? WTERMSIG(out->status) : 0, out->err);
    cr_assert(strstr(out->err, "misuse") == NULL, "a misuse message without strict mode: %s", out->err);
}

static intptr_t ret_arg(void *arg)
{
    return (intptr_t)arg;
}

/* ---- the children: each returns 0 when the call returned what it should ------------ */

static int join_forged(void)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = 1;
    if (weft_start(&cfg) != 0)
        return 10;
    weft_pid pid;
    if (weft_spawn(&pid, ret_arg, NULL, NULL) != 0 || weft_join(pid, NULL, WEFT_FOREVER) != 0)
        return 11;
    int rc = weft_join(FORGED_PID, NULL, 0);
    if (rc != -ESRCH)
        return 12;
    return weft_stop(WEFT_FOREVER) == 0 ? 0 : 13;
}

static int spawn_null_fn(void)
{
    if (weft_start(NULL) != 0)
        return 10;
    weft_pid pid;
    int rc = weft_spawn(&pid, NULL, NULL, NULL);
    weft_stop(WEFT_FOREVER);
    return rc == -EINVAL ? 0 : 12;
}

static int exit_outside(void)
{
    return weft_exit(3) == -EPERM ? 0 : 12;
}

static atomic_int stop_rc;

static intptr_t stop_inside(void *arg)
{
    atomic_store(&stop_rc, weft_stop(WEFT_FOREVER));
    return 0;
}

static int stop_from_process(void)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = 2;
    if (weft_run(stop_inside, NULL, &cfg, NULL) != 0)
        return 10;
    return atomic_load(&stop_rc) == -EPERM ? 0 : 12;
}

/* Errors that are not misuse never abort, strict or not. */
static atomic_int gate;

static intptr_t wait_gate(void *arg)
{
    while (!atomic_load(&gate))
        if (weft_yield() == -ECANCELED)
            break;
    return 0;
}

static int plain_errors(void)
{
    weft_pid pid;
    if (weft_spawn(&pid, ret_arg, NULL, NULL) != -ESHUTDOWN)
        return 10;
    if (weft_stop(WEFT_FOREVER) != -ESHUTDOWN)
        return 11;
    if (weft_workers() != -ESHUTDOWN)
        return 12;
    if (weft_start(NULL) != 0)
        return 13;
    if (weft_spawn(&pid, wait_gate, NULL, NULL) != 0)
        return 14;
    if (weft_join(pid, NULL, 0) != -ETIMEDOUT)
        return 15;
    if (weft_join(pid, NULL, weft_now() + 1000000) != -ETIMEDOUT)
        return 16;
    atomic_store(&gate, 1);
    if (weft_join(pid, NULL, WEFT_FOREVER) != 0)
        return 17;
    if (weft_stop(WEFT_FOREVER) != 0)
        return 18;
    return 0;
}

/* ---- the cases --------------------------------------------------------------------------- */

Test(strict, join_forged_pid_aborts_with_message, .timeout = 20)
{
    struct outcome out;
    run_child("1", join_forged, &out);
    assert_aborted_with(&out, "weft_join");
}

Test(strict, join_forged_pid_returns_esrch_without_strict, .timeout = 20)
{
    struct outcome out;
    run_child(NULL, join_forged, &out);
    assert_exited_ok(&out);
    run_child("0", join_forged, &out);
    assert_exited_ok(&out);
    run_child("", join_forged, &out);
    assert_exited_ok(&out);
}

Test(strict, spawn_null_fn_aborts, .timeout = 20)
{
    struct outcome out;
    run_child("1", spawn_null_fn, &out);
    assert_aborted_with(&out, "weft_spawn");
    run_child(NULL, spawn_null_fn, &out);
    assert_exited_ok(&out);
}

Test(strict, exit_outside_process_aborts, .timeout = 20)
{
    struct outcome out;
    run_child("1", exit_outside, &out);
    assert_aborted_with(&out, "weft_exit");
    run_child(NULL, exit_outside, &out);
    assert_exited_ok(&out);
}

Test(strict, stop_from_process_aborts, .timeout = 20)
{
    struct outcome out;
    run_child("1", stop_from_process, &out);
    assert_aborted_with(&out, "weft_stop");
    run_child(NULL, stop_from_process, &out);
    assert_exited_ok(&out);
}

Test(strict, errors_that_are_not_misuse_do_not_abort, .timeout = 20)
{
    struct outcome out;
    run_child("1", plain_errors, &out);
    assert_exited_ok(&out);
}

/* The same through Criterion: the test process itself must die of SIGABRT. */
Test(strict, misuse_raises_sigabrt_in_test_process, .signal = SIGABRT, .timeout = 20)
{
    setenv("WEFT_STRICT", "1", 1);
    ASSERT_OK(weft_start(NULL));
    weft_join(FORGED_PID, NULL, 0);
    cr_assert_fail("weft_join of a forged pid returned under WEFT_STRICT=1");
}
