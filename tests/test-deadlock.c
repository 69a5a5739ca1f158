/* test-deadlock.c: the deadlock detector of weft_run, weft_dump and the dump
 * signal. Reports go to standard error (the detector, the signal) or to a
 * given fd (weft_dump); each case captures them in a temporary file. */
#define _GNU_SOURCE /* mkstemp, sigaction */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#define TEST_PROC_CHECKS
#include "test.h"

/* ---- capturing what weft writes ---------------------------------------------------- */

static char report[1 << 16];

/* Redirects standard error to a fresh temporary file; returns the saved fd. */
static int capture_stderr(int *file)
{
    char path[] = "/tmp/weft-test-XXXXXX";
    *file = mkstemp(path);
    cr_assert_geq(*file, 0);
    unlink(path);
    int saved = dup(STDERR_FILENO);
    cr_assert_geq(saved, 0);
    cr_assert_geq(dup2(*file, STDERR_FILENO), 0);
    return saved;
}

/* Restores standard error and reads what was written into report[]. */
static void end_capture(int saved, int file)
{
    dup2(saved, STDERR_FILENO);
    close(saved);
    lseek(file, 0, SEEK_SET);
    ssize_t n = read(file, report, sizeof report - 1);
    report[n > 0 ? n : 0] = '\0';
    close(file);
}

#define ASSERT_REPORT_HAS(text) \
    cr_assert(strstr(report, (text)) != NULL, "the report lacks \"%s\":\n%s", (text), report)
#define ASSERT_REPORT_LACKS(text) \
    cr_assert(strstr(report, (text)) == NULL, "the report has \"%s\":\n%s", (text), report)

static intptr_t run_captured(unsigned workers, weft_proc_fn fn, void *arg, int *rc)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = workers;
    intptr_t result = -12345;
    int file, saved = capture_stderr(&file);
    *rc = weft_run(fn, arg, &cfg, &result);
    end_capture(saved, file);
    return result;
}

static void spawn_named(weft_pid *pid, weft_proc_fn fn, void *arg, const char *name)
{
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.name = name;
    CHECK_RC(weft_spawn(pid, fn, arg, &opts), 0);
}

/* ---- a process waiting on a channel nobody else holds ------------------------------- */

static intptr_t lonely(void *arg)
{
    weft_chan ch = *(weft_chan *)arg;
    int v;
    /* Woken by the shutdown that follows the detection. */
    CHECK_RC(weft_chan_recv(ch, &v, sizeof v, WEFT_FOREVER), -ECANCELED);
    return 0;
}

static intptr_t lonely_main(void *arg)
{
    static weft_chan ch;
    CHECK_RC(weft_chan_make(&ch, sizeof(int), 0), 0);
    weft_pid pid;
    spawn_named(&pid, lonely, &ch, "lonely-receiver");
    return weft_join(pid, NULL, WEFT_FOREVER);
}

Test(deadlock, receiver_on_a_channel_nobody_else_holds, .timeout = 30)
{
    for (unsigned workers = 1; workers <= 2; workers++) {
        int rc;
        run_captured(workers, lonely_main, NULL, &rc);
        ASSERT_CHECKS();
        ASSERT_RC(rc, -EDEADLK);
        ASSERT_REPORT_HAS("deadlock");
        ASSERT_REPORT_HAS("lonely-receiver");
        ASSERT_REPORT_HAS("receiving on channel");
        ASSERT_REPORT_HAS("no other process has used it");
        ASSERT_REPORT_HAS("test-deadlock.c:"); /* where it was spawned */
        ASSERT_REPORT_HAS("main (pid");
        ASSERT_REPORT_HAS("joining lonely-receiver");
        ASSERT_REPORT_LACKS("cycle of waits");
    }
}

/* ---- the dining philosophers, all holding their left fork ---------------------------- */

enum { SEATS = 5 };

struct table {
    weft_chan fork[SEATS];   /* capacity 1: holds the fork while it lies on the table */
    weft_chan seated;        /* each philosopher reports holding its left fork */
    weft_chan go;            /* closed once all hold their left fork */
};

struct seat {
    struct table *t;
    int i;
};

static intptr_t philosopher(void *arg)
{
    struct seat *s = arg;
    char fork, token = 1;
    CHECK_RC(weft_chan_recv(s->t->fork[s->i], &fork, 1, WEFT_FOREVER), 0);
    CHECK_RC(weft_chan_send(s->t->seated, &token, 1, WEFT_FOREVER), 0);
    CHECK_RC(weft_chan_recv(s->t->go, &token, 1, WEFT_FOREVER), -EPIPE);
    /* Every right fork is some neighbour's left fork: this never returns. */
    CHECK_RC(weft_chan_recv(s->t->fork[(s->i + 1) % SEATS], &fork, 1, WEFT_FOREVER), -ECANCELED);
    return 0;
}

static intptr_t dinner_main(void *arg)
{
    static struct table t;
    static struct seat seats[SEATS];
    static const char *names[SEATS] = {"philosopher-0", "philosopher-1", "philosopher-2",
                                       "philosopher-3", "philosopher-4"};
    char fork = 1, token;
    CHECK_RC(weft_chan_make(&t.seated, 1, SEATS), 0);
    CHECK_RC(weft_chan_make(&t.go, 1, 0), 0);
    for (int i = 0; i < SEATS; i++) {
        CHECK_RC(weft_chan_make(&t.fork[i], 1, 1), 0);
        CHECK_RC(weft_chan_send(t.fork[i], &fork, 1, WEFT_FOREVER), 0);
    }
    weft_pid pids[SEATS];
    for (int i = 0; i < SEATS; i++) {
        seats[i] = (struct seat){&t, i};
        spawn_named(&pids[i], philosopher, &seats[i], names[i]);
    }
    for (int i = 0; i < SEATS; i++)
        CHECK_RC(weft_chan_recv(t.seated, &token, 1, WEFT_FOREVER), 0);
    CHECK_RC(weft_chan_close(t.go), 0);
    for (int i = 0; i < SEATS; i++)
        weft_join(pids[i], NULL, WEFT_FOREVER);
    return 0;
}

Test(deadlock, dining_philosophers_report_the_cycle, .timeout = 60)
{
    int rounds = test_sanitized() ? 5 : 40;
    for (int k = 0; k < rounds; k++) {
        int rc;
        run_captured(1 + (unsigned)k % 2, dinner_main, NULL, &rc);
        ASSERT_CHECKS();
        ASSERT_RC(rc, -EDEADLK);
        for (int i = 0; i < SEATS; i++) {
            char line[64];
            snprintf(line, sizeof line, "philosopher-%d (pid", i);
            ASSERT_REPORT_HAS(line);
        }
        ASSERT_REPORT_HAS("receiving on channel");
        ASSERT_REPORT_HAS("last used by philosopher-");
        /* The cycle goes round the table: each waits for the next one's fork. */
        ASSERT_REPORT_HAS("cycle of waits: philosopher-");
        const char *cycle = strstr(report, "cycle of waits: ");
        int arrows = 0;
        for (const char *p = cycle; (p = strstr(p, " -> ")) && p < strchr(cycle, '\n'); p++)
            arrows++;
        cr_assert_eq(arrows, SEATS, "a cycle of %d waits:\n%s", arrows, report);
    }
}

/* ---- no false alarms ---------------------------------------------------------------- */

/* main returns while others stay blocked: weft_run cancels them, returns 0,
 * and prints nothing. */
static intptr_t leave_blocked_main(void *arg)
{
    static weft_chan ch;
    CHECK_RC(weft_chan_make(&ch, sizeof(int), 0), 0);
    for (int i = 0; i < 10; i++) {
        weft_pid pid;
        spawn_named(&pid, lonely, &ch, "left-behind");
    }
    weft_sleep(weft_now() + 5 * MS);
    return 7;
}

Test(deadlock, main_returning_is_not_a_deadlock, .timeout = 30)
{
    for (int k = 0; k < 20; k++) {
        int rc;
        intptr_t r = run_captured(1 + (unsigned)k % 2, leave_blocked_main, NULL, &rc);
        ASSERT_CHECKS();
        ASSERT_OK(rc);
        cr_assert_eq(r, 7);
        cr_assert_eq(report[0], '\0', "unexpected output:\n%s", report);
    }
}

/* Every process blocked, but one with a deadline: that is a wait, not a
 * deadlock; the deadline ends it and the program finishes. */
static intptr_t timed_receiver(void *arg)
{
    weft_chan ch = *(weft_chan *)arg;
    int v;
    return weft_chan_recv(ch, &v, sizeof v, weft_now() + 50 * MS) == -ETIMEDOUT ? 1 : 0;
}

static intptr_t timed_main(void *arg)
{
    static weft_chan ch;
    CHECK_RC(weft_chan_make(&ch, sizeof(int), 0), 0);
    weft_pid pid;
    spawn_named(&pid, timed_receiver, &ch, "timed");
    intptr_t r = 0;
    CHECK_RC(weft_join(pid, &r, WEFT_FOREVER), 0);
    return r;
}

Test(deadlock, a_pending_deadline_is_not_a_deadlock, .timeout = 30)
{
    int rc;
    cr_assert_eq(run_captured(2, timed_main, NULL, &rc), 1);
    ASSERT_CHECKS();
    ASSERT_OK(rc);
    cr_assert_eq(report[0], '\0', "unexpected output:\n%s", report);
}

/* A thread outside the runtime may still wake the processes while it is
 * attached (between its calls) or inside a weft call (here: a receive with
 * a deadline): every process may then be blocked without a deadlock being
 * declared. */
static weft_chan feed, kick;

static void *late_sender(void *arg)
{
    int v = 42;
    usleep(30000); /* attached, outside any weft call */
    int rc = weft_chan_recv(kick, &v, sizeof v, weft_now() + 50 * MS);
    if (rc != -ETIMEDOUT)
        return (void *)(intptr_t)(rc ? rc : -1);
    v = 42;
    rc = weft_chan_send(feed, &v, sizeof v, WEFT_FOREVER);
    weft_thread_detach();
    return (void *)(intptr_t)rc;
}

static intptr_t fed_main(void *arg)
{
    CHECK_RC(weft_chan_make(&feed, sizeof(int), 0), 0);
    CHECK_RC(weft_chan_make(&kick, sizeof(int), 0), 0);
    CHECK_RC(weft_thread_attach(), 0); /* on behalf of the thread it starts */
    pthread_t t;
    CHECK(pthread_create(&t, NULL, late_sender, NULL) == 0, "pthread_create");
    int v = 0;
    CHECK_RC(weft_chan_recv(feed, &v, sizeof v, WEFT_FOREVER), 0);
    void *trc;
    pthread_join(t, &trc); /* it has returned from its send: a short block */
    CHECK((intptr_t)trc == 0, "the thread's send returned %d", (int)(intptr_t)trc);
    return v;
}

Test(deadlock, attached_outside_threads_are_counted, .timeout = 30)
{
    for (unsigned workers = 1; workers <= 2; workers++) {
        int rc;
        intptr_t r = run_captured(workers, fed_main, NULL, &rc);
        cr_assert_eq(r, 42, "fed_main returned %ld, weft_run %d, report:\n%s", (long)r, rc, report);
        ASSERT_CHECKS();
        ASSERT_OK(rc);
        cr_assert_eq(report[0], '\0', "unexpected output:\n%s", report);
    }
}

/* ---- weft_dump and the dump signal ---------------------------------------------------- */

static intptr_t sleeper(void *arg)
{
    return weft_sleep(WEFT_FOREVER) == -ECANCELED ? 0 : 1;
}

static intptr_t selector(void *arg)
{
    weft_chan *chans = arg;
    int a, b = 1;
    weft_case cases[3] = {WEFT_RECV(chans[0], &a), WEFT_SEND(chans[1], &b), WEFT_RECV(chans[0], &a)};
    cases[2].disabled = 1;
    return weft_select(cases, 3, WEFT_SELECT_FAIR, WEFT_FOREVER) == -ECANCELED ? 0 : 1;
}

static int dump_to_report(void)
{
    char path[] = "/tmp/weft-dump-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path);
    int rc = weft_dump(fd);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, report, sizeof report - 1);
    report[n > 0 ? n : 0] = '\0';
    close(fd);
    return rc;
}

/* Dumps into report[] until it has both texts (the processes have reached
 * their waits), for 5 s at most. */
static void dump_until(const char *text, const char *other)
{
    int64_t limit = weft_now() + 5000 * MS;
    do {
        CHECK_RC(dump_to_report(), 0);
        if (strstr(report, text) && strstr(report, other))
            return;
    } while (weft_sleep(weft_now() + MS) == 0 && weft_now() < limit);
}

static intptr_t dump_main(void *arg)
{
    static weft_chan chans[2];
    CHECK_RC(weft_chan_make(&chans[0], sizeof(int), 0), 0);
    CHECK_RC(weft_chan_make(&chans[1], sizeof(int), 0), 0);
    weft_pid a, b;
    spawn_named(&a, sleeper, NULL, "the-sleeper");
    spawn_named(&b, selector, chans, "the-selector");
    dump_until("sleeping", "select over receive on channel");
    return 0;
}

Test(deadlock, dump_names_every_process_and_its_wait, .timeout = 30)
{
    cr_assert_eq(test_run(2, dump_main, NULL), 0);
    ASSERT_CHECKS();
    ASSERT_REPORT_HAS("3 processes");
    ASSERT_REPORT_HAS("the-sleeper (pid");
    ASSERT_REPORT_HAS("sleeping");
    ASSERT_REPORT_HAS("the-selector (pid");
    ASSERT_REPORT_HAS("select over receive on channel");
    ASSERT_REPORT_HAS(", send on channel");
    ASSERT_REPORT_HAS("main (pid");
    ASSERT_REPORT_HAS("running or runnable"); /* main itself, while it dumps */
}

Test(deadlock, dump_errors)
{
    ASSERT_RC(weft_dump(2), -ESHUTDOWN);
    ASSERT_OK(weft_start(NULL));
    ASSERT_RC(weft_dump(-1), -EBADF);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    close(fds[1]);
    ASSERT_RC(weft_dump(fds[0]), -EBADF); /* read end: not writable */
    close(fds[0]);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

static intptr_t signal_main(void *arg)
{
    weft_pid a;
    spawn_named(&a, sleeper, NULL, "signalled-sleeper");
    dump_until("signalled-sleeper (pid", "sleeping");
    raise(SIGQUIT);
    /* The dump thread writes to standard error, a file here: wait for it. */
    static char seen[sizeof report];
    int64_t limit = weft_now() + 10000 * MS;
    do {
        ssize_t n = pread(STDERR_FILENO, seen, sizeof seen - 1, 0);
        seen[n > 0 ? n : 0] = '\0';
        if (strstr(seen, "signalled-sleeper (pid"))
            break;
    } while (weft_sleep(weft_now() + MS) == 0 && weft_now() < limit);
    return 0;
}

Test(deadlock, sigquit_writes_the_dump_and_the_program_goes_on, .timeout = 30)
{
    int rc;
    cr_assert_eq(run_captured(2, signal_main, NULL, &rc), 0);
    ASSERT_CHECKS();
    ASSERT_OK(rc);
    ASSERT_REPORT_HAS("signalled-sleeper (pid");
    ASSERT_REPORT_HAS("sleeping");
    /* The default disposition is back after the stop. */
    struct sigaction sa;
    cr_assert_eq(sigaction(SIGQUIT, NULL, &sa), 0);
    cr_assert(sa.sa_handler == SIG_DFL);
}

static void user_handler(int sig)
{
}

Test(deadlock, dump_signal_leaves_a_program_handler_alone, .timeout = 30)
{
    struct sigaction sa = {.sa_handler = user_handler};
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGQUIT, &sa, NULL), 0);
    ASSERT_OK(weft_start(NULL));
    struct sigaction now;
    cr_assert_eq(sigaction(SIGQUIT, NULL, &now), 0);
    cr_assert(now.sa_handler == user_handler);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    cr_assert_eq(sigaction(SIGQUIT, NULL, &now), 0);
    cr_assert(now.sa_handler == user_handler);
}

Test(deadlock, dump_signal_zero_installs_nothing_and_bad_ones_are_refused)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cr_assert_eq(cfg.dump_signal, SIGQUIT);
    cfg.dump_signal = 0;
    ASSERT_OK(weft_start(&cfg));
    struct sigaction now;
    cr_assert_eq(sigaction(SIGQUIT, NULL, &now), 0);
    cr_assert(now.sa_handler == SIG_DFL);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    int bad[] = {-1, SIGKILL, SIGSTOP, SIGSEGV, 100000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.dump_signal = bad[i];
        ASSERT_RC(weft_start(&cfg), -EINVAL);
    }
}

Test(deadlock, attach_errors)
{
    ASSERT_RC(weft_thread_attach(), -ESHUTDOWN);
    ASSERT_RC(weft_thread_detach(), -ESHUTDOWN);
    ASSERT_OK(weft_start(NULL));
    ASSERT_RC(weft_thread_detach(), -EINVAL);
    ASSERT_OK(weft_thread_attach());
    ASSERT_OK(weft_thread_detach());
    ASSERT_RC(weft_thread_detach(), -EINVAL);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

/* Without the attachment, the same program is declared deadlocked while the
 * thread sleeps outside weft: the documented limit of the detector. */
static atomic_int unattached_detected;

static void *unattached_sender(void *arg)
{
    while (!atomic_load(&unattached_detected))
        usleep(1000);
    int v = 42;
    return (void *)(intptr_t)weft_chan_send(feed, &v, sizeof v, 0);
}

static intptr_t unattached_main(void *arg)
{
    CHECK_RC(weft_chan_make(&feed, sizeof(int), 0), 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, unattached_sender, NULL) == 0, "pthread_create");
    pthread_detach(t);
    int v = 0;
    CHECK_RC(weft_chan_recv(feed, &v, sizeof v, WEFT_FOREVER), -ECANCELED);
    return v;
}

Test(deadlock, unattached_thread_is_not_seen, .timeout = 30)
{
    int rc;
    run_captured(2, unattached_main, NULL, &rc);
    atomic_store(&unattached_detected, 1);
    ASSERT_CHECKS();
    ASSERT_RC(rc, -EDEADLK);
    usleep(200000); /* the thread's late send finds no runtime: -ESHUTDOWN or -EBADF */
}
