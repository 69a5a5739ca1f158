/* test-fd.c: waiting on file descriptors: readiness of pipes (level-
 * triggered: ready now means at once), deadlines, many processes on one
 * descriptor, weft_fd_close and weft_fd_forget waking the waiters with
 * -EBADF, hang-ups, regular files, the select case, outside threads, busy
 * workers that must still poll, deterministic mode, the runtime's stop and
 * bad input. */
#define _GNU_SOURCE /* pipe2 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

#define TEST_PROC_CHECKS
#include "test.h"

static void make_pipe(int p[2])
{
    cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static void close_pipe(int p[2])
{
    weft_fd_close(p[0]);
    weft_fd_close(p[1]);
}

/* ---- readiness -------------------------------------------------------------------------- */

struct pair {
    int fds[2];
    atomic_int woken;
    int rounds;
};

static intptr_t write_later(void *arg)
{
    struct pair *pr = arg;
    weft_sleep(weft_now() + 2 * MS);
    CHECK_RC(write(pr->fds[1], "x", 1), 1);
    return 0;
}

/* A waiter sleeps until another process writes; the byte is there when it
 * wakes. Repeated, at 1 and 2 workers. */
static intptr_t wake_main(void *arg)
{
    struct pair pr;
    make_pipe(pr.fds);
    for (int i = 0; i < 50; i++) {
        weft_pid w = spawn_proc(write_later, &pr);
        CHECK_RC(weft_fd_wait(pr.fds[0], WEFT_FD_READ, weft_now() + 5000 * MS), WEFT_FD_READ);
        char c = 0;
        CHECK_RC(read(pr.fds[0], &c, 1), 1);
        CHECK(c == 'x', "read %d", c);
        join_proc(w);
    }
    close_pipe(pr.fds);
    return 0;
}

Test(fd, a_write_wakes_the_waiter)
{
    run_1_and_2(wake_main, NULL);
}

/* Ready now means at once, and stays so until read: level-triggered, as
 * poll(2); an empty pipe's write end is writable, a full one is not until
 * its reader drains it. */
static intptr_t level_main(void *arg)
{
    int p[2];
    make_pipe(p);
    CHECK_RC(weft_fd_wait(p[0], WEFT_FD_READ, 0), -ETIMEDOUT);
    CHECK_RC(weft_fd_wait(p[1], WEFT_FD_WRITE, 0), WEFT_FD_WRITE);
    CHECK_RC(write(p[1], "ab", 2), 2);
    CHECK_RC(weft_fd_wait(p[0], WEFT_FD_READ, WEFT_FOREVER), WEFT_FD_READ);
    CHECK_RC(weft_fd_wait(p[0], WEFT_FD_READ, WEFT_FOREVER), WEFT_FD_READ);
    enum { N = 65536 };
    char *buf = malloc(N); /* more than a process's default stack */
    CHECK_RC(read(p[0], buf, 1), 1);
    CHECK_RC(weft_fd_wait(p[0], WEFT_FD_READ | WEFT_FD_WRITE, 0), WEFT_FD_READ);
    CHECK_RC(read(p[0], buf, N), 1);
    CHECK_RC(weft_fd_wait(p[0], WEFT_FD_READ, weft_now() + 10 * MS), -ETIMEDOUT);

    while (write(p[1], buf, N) > 0) {
    }
    CHECK_RC(weft_fd_wait(p[1], WEFT_FD_WRITE, weft_now() + 10 * MS), -ETIMEDOUT);
    while (read(p[0], buf, N) > 0) {
    }
    CHECK_RC(weft_fd_wait(p[1], WEFT_FD_WRITE, weft_now() + 5000 * MS), WEFT_FD_WRITE);
    free(buf);
    close_pipe(p);
    return 0;
}

Test(fd, level_triggered_readiness_and_deadlines)
{
    run_1_and_2(level_main, NULL);
}

/* ---- many waiters, close, forget ---------------------------------------------------------- */

enum { WAITERS = 100 };

struct crowd {
    int fds[2];
    int expect;          /* what every waiter must get */
    atomic_int arrived;  /* waiters about to wait */
    atomic_int done;
};

static intptr_t crowd_waiter(void *arg)
{
    struct crowd *c = arg;
    atomic_fetch_add(&c->arrived, 1);
    int r = weft_fd_wait(c->fds[0], WEFT_FD_READ, weft_now() + 10000 * MS);
    CHECK_RC(r, c->expect);
    atomic_fetch_add(&c->done, 1);
    return 0;
}

/* Lets every waiter reach its wait (they all arrived, and a few yields and
 * sleeps later they are blocked: nothing else wakes them). */
static void let_them_block(struct crowd *c)
{
    while (atomic_load(&c->arrived) < WAITERS)
        weft_yield();
    weft_sleep(weft_now() + 2 * MS);
}

/* One write wakes every process waiting on the descriptor; none takes the
 * edge from the others. */
static intptr_t crowd_write_main(void *arg)
{
    for (int round = 0; round < 20; round++) {
        struct crowd c = {.expect = WEFT_FD_READ};
        make_pipe(c.fds);
        weft_pid pids[WAITERS];
        for (int i = 0; i < WAITERS; i++)
            pids[i] = spawn_on(crowd_waiter, &c, i, 0);
        let_them_block(&c);
        CHECK_RC(write(c.fds[1], "x", 1), 1);
        for (int i = 0; i < WAITERS; i++)
            join_proc(pids[i]);
        CHECK_RC(atomic_load(&c.done), WAITERS);
        close_pipe(c.fds);
    }
    return 0;
}

Test(fd, one_edge_wakes_every_waiter)
{
    run_1_and_2(crowd_write_main, NULL);
}

/* weft_fd_close while they wait: every waiter fails with -EBADF, and a
 * wait on the closed number fails too. Racy by nature: the close may come
 * while some are still arriving; repeated. */
static intptr_t crowd_close_main(void *arg)
{
    for (int round = 0; round < 50; round++) {
        struct crowd c = {.expect = -EBADF};
        make_pipe(c.fds);
        weft_pid pids[WAITERS];
        for (int i = 0; i < WAITERS; i++)
            pids[i] = spawn_on(crowd_waiter, &c, i, 0);
        if (round % 2 == 0)
            let_them_block(&c);
        else
            while (atomic_load(&c.arrived) < WAITERS / 2)
                weft_yield();
        /* The ones not waiting yet find the number closed: -EBADF too. */
        CHECK_RC(weft_fd_close(c.fds[0]), 0);
        for (int i = 0; i < WAITERS; i++)
            join_proc(pids[i]);
        CHECK_RC(atomic_load(&c.done), WAITERS);
        CHECK_RC(weft_fd_wait(c.fds[0], WEFT_FD_READ, 0), -EBADF);
        CHECK_RC(weft_fd_close(c.fds[0]), -EBADF);
        weft_fd_close(c.fds[1]);
    }
    return 0;
}

Test(fd, close_wakes_every_waiter_with_ebadf)
{
    run_1_and_2(crowd_close_main, NULL);
}

/* weft_fd_forget wakes the waiters but leaves the descriptor open, and a
 * later wait registers it again. The waiters run on the forgetting
 * process's worker, pinned: every one that arrived is then blocked (one
 * still on its way to its wait when the forget came would register the
 * descriptor again and wait out its deadline). */
static intptr_t forget_body(void *arg)
{
    struct crowd c = {.expect = -EBADF};
    make_pipe(c.fds);
    weft_pid pids[WAITERS];
    for (int i = 0; i < WAITERS; i++)
        pids[i] = spawn_on(crowd_waiter, &c, weft_worker_id(), 1);
    let_them_block(&c);
    CHECK_RC(weft_fd_forget(c.fds[0]), 0);
    for (int i = 0; i < WAITERS; i++)
        join_proc(pids[i]);
    CHECK(fcntl(c.fds[0], F_GETFD) >= 0, "forget closed the descriptor");
    struct pair pr = {.fds = {c.fds[0], c.fds[1]}};
    weft_pid w = spawn_proc(write_later, &pr);
    CHECK_RC(weft_fd_wait(c.fds[0], WEFT_FD_READ, weft_now() + 5000 * MS), WEFT_FD_READ);
    join_proc(w);
    CHECK_RC(weft_fd_forget(c.fds[0]), 0);
    CHECK_RC(close(c.fds[0]), 0);
    CHECK_RC(weft_fd_forget(c.fds[0]), -EBADF);
    weft_fd_close(c.fds[1]);
    return 0;
}

static intptr_t forget_main(void *arg)
{
    join_proc(spawn_on(forget_body, NULL, 0, 1));
    return 0;
}

Test(fd, forget_wakes_the_waiters_and_leaves_it_open)
{
    run_1_and_2(forget_main, NULL);
}

/* The write end closed: the reader sees READ with HUP. A regular file is
 * always ready. */
static intptr_t hup_file_main(void *arg)
{
    int p[2];
    make_pipe(p);
    CHECK_RC(weft_fd_close(p[1]), 0);
    CHECK_RC(weft_fd_wait(p[0], WEFT_FD_READ, weft_now() + 5000 * MS), WEFT_FD_READ | WEFT_FD_HUP);
    weft_fd_close(p[0]);

    char path[] = "/tmp/weft-test-fd-XXXXXX";
    int f = mkstemp(path);
    CHECK(f >= 0, "mkstemp");
    unlink(path);
    CHECK_RC(weft_fd_wait(f, WEFT_FD_READ, WEFT_FOREVER), WEFT_FD_READ);
    CHECK_RC(weft_fd_wait(f, WEFT_FD_READ | WEFT_FD_WRITE, 0), WEFT_FD_READ | WEFT_FD_WRITE);
    CHECK_RC(weft_fd_close(f), 0);
    return 0;
}

Test(fd, hang_up_and_regular_files)
{
    run_1_and_2(hup_file_main, NULL);
}

/* ---- select --------------------------------------------------------------------------- */

static intptr_t send_later(void *arg)
{
    weft_sleep(weft_now() + 2 * MS);
    int v = 7;
    CHECK_RC(weft_chan_send(*(weft_chan *)arg, &v, sizeof v, WEFT_FOREVER), 0);
    return 0;
}

static intptr_t close_later(void *arg)
{
    weft_sleep(weft_now() + 2 * MS);
    CHECK_RC(weft_fd_close(*(int *)arg), 0);
    return 0;
}

/* An fd case beside a channel case: whichever becomes ready fires, with
 * the fd's events as its result; a close while selecting gives -EBADF. */
static intptr_t select_main(void *arg)
{
    for (int round = 0; round < 20; round++) {
        struct pair pr;
        make_pipe(pr.fds);
        weft_chan ch = make_chan(sizeof(int), 0);
        int v = 0;
        weft_case cases[] = {WEFT_FD_CASE(pr.fds[0], WEFT_FD_READ), WEFT_RECV(ch, &v)};

        weft_pid w = spawn_proc(write_later, &pr);
        CHECK_RC(weft_select(cases, 2, WEFT_SELECT_FAIR, weft_now() + 5000 * MS), 0);
        CHECK_RC(cases[0].result, WEFT_FD_READ);
        join_proc(w);
        char c;
        CHECK_RC(read(pr.fds[0], &c, 1), 1);

        w = spawn_proc(send_later, &ch);
        CHECK_RC(weft_select(cases, 2, WEFT_SELECT_FAIR, weft_now() + 5000 * MS), 1);
        CHECK(v == 7, "received %d", v);
        join_proc(w);

        CHECK_RC(weft_select(cases, 2, WEFT_SELECT_FAIR, 0), -ETIMEDOUT);

        w = spawn_proc(close_later, &pr.fds[0]);
        CHECK_RC(weft_select(cases, 2, WEFT_SELECT_PRIORITY, weft_now() + 5000 * MS), 0);
        CHECK_RC(cases[0].result, -EBADF);
        join_proc(w);
        CHECK_RC(weft_select(cases, 1, WEFT_SELECT_PRIORITY, 0), -EBADF);
        weft_fd_close(pr.fds[1]);
        weft_chan_release(ch);
    }
    weft_case bad = WEFT_FD_CASE(0, 0);
    CHECK_RC(weft_select(&bad, 1, WEFT_SELECT_FAIR, 0), -EINVAL);
    bad = WEFT_FD_CASE(-1, WEFT_FD_READ);
    CHECK_RC(weft_select(&bad, 1, WEFT_SELECT_FAIR, 0), -EBADF);
    return 0;
}

Test(fd, select_over_a_descriptor_and_a_channel)
{
    run_1_and_2(select_main, NULL);
}

/* A close while a select waits on the number gives the case -EBADF, even
 * when the number is reused at once by a descriptor that is ready: the
 * select must not look at the newcomer. (At 1 worker the closer reuses the
 * number before the select runs again, every time.) */
static intptr_t close_and_reuse(void *arg)
{
    int fd = *(int *)arg;
    weft_sleep(weft_now() + 2 * MS);
    int q[2];
    CHECK_RC(pipe(q), 0);
    CHECK_RC(weft_fd_close(fd), 0);
    CHECK_RC(dup2(q[0], fd), fd);
    CHECK_RC(write(q[1], "x", 1), 1);
    close(q[0]);
    close(q[1]);
    return 0;
}

static intptr_t select_reuse_main(void *arg)
{
    for (int round = 0; round < 20; round++) {
        int p[2];
        make_pipe(p);
        weft_case c = WEFT_FD_CASE(p[0], WEFT_FD_READ);
        weft_pid w = spawn_proc(close_and_reuse, &p[0]);
        CHECK_RC(weft_select(&c, 1, WEFT_SELECT_FAIR, weft_now() + 5000 * MS), 0);
        CHECK(c.result == -EBADF, "round %d: the case gave %d, not -EBADF", round, c.result);
        join_proc(w);
        CHECK_RC(weft_fd_close(p[0]), 0); /* the newcomer */
        CHECK_RC(weft_fd_close(p[1]), 0);
    }
    return 0;
}

Test(fd, select_on_a_closed_number_reused_at_once_gives_ebadf)
{
    run_1_and_2(select_reuse_main, NULL);
}

/* ---- outside threads, busy workers, stop ------------------------------------------------------- */

static void *thread_writes_later(void *arg)
{
    usleep(20000);
    cr_assert_eq(write(*(int *)arg, "x", 1), 1);
    return NULL;
}

/* A thread outside the runtime waits while every worker is parked: some
 * worker must poll for it (it is the only waiter). */
Test(fd, an_outside_thread_waits_while_the_workers_park)
{
    start_workers(2);
    int p[2];
    make_pipe(p);
    pthread_t t;
    pthread_create(&t, NULL, thread_writes_later, &p[1]);
    ASSERT_RC(weft_fd_wait(p[0], WEFT_FD_READ, weft_now() + 10000 * MS), WEFT_FD_READ);
    pthread_join(t, NULL);
    ASSERT_RC(weft_fd_wait(p[0], WEFT_FD_READ, 0), WEFT_FD_READ);
    close_pipe(p);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

static atomic_bool busy_woken;

static intptr_t busy_loop(void *arg)
{
    int64_t give_up = weft_now() + 20000 * MS;
    while (!atomic_load(&busy_woken) && weft_now() < give_up)
        weft_yield();
    return atomic_load(&busy_woken) ? 0 : -1;
}

static intptr_t busy_waiter(void *arg)
{
    int r = weft_fd_wait(*(int *)arg, WEFT_FD_READ, weft_now() + 20000 * MS);
    atomic_store(&busy_woken, true);
    return r;
}

/* Every worker keeps running yielding processes, so none ever runs out of
 * work: a busy worker's periodic look must still find the event. */
static intptr_t busy_main(void *arg)
{
    int p[2];
    make_pipe(p);
    atomic_store(&busy_woken, false);
    int n = weft_workers();
    weft_pid waiter = spawn_proc(busy_waiter, &p[0]);
    weft_sleep(weft_now() + 5 * MS); /* it waits now */
    weft_pid busy[4];
    for (int i = 0; i < 2 * n; i++)
        busy[i] = spawn_on(busy_loop, NULL, i, 0);
    pthread_t t;
    pthread_create(&t, NULL, thread_writes_later, &p[1]);
    CHECK_RC(join_proc(waiter), WEFT_FD_READ);
    for (int i = 0; i < 2 * n; i++)
        CHECK_RC(join_proc(busy[i]), 0);
    pthread_join(t, NULL);
    close_pipe(p);
    return 0;
}

Test(fd, busy_workers_still_poll)
{
    run_1_and_2(busy_main, NULL);
}

static intptr_t wait_forever(void *arg)
{
    return weft_fd_wait(*(int *)arg, WEFT_FD_READ, WEFT_FOREVER);
}

/* weft_stop ends a wait on a descriptor with -ECANCELED. */
Test(fd, stop_cancels_waits)
{
    start_workers(2);
    int p[2];
    make_pipe(p);
    weft_pid pid[10];
    for (int i = 0; i < 10; i++)
        ASSERT_OK(weft_spawn(&pid[i], wait_forever, &p[0], NULL));
    usleep(10000);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    close(p[0]);
    close(p[1]);
}

/* A deterministic schedule polls too (descriptor events come from outside
 * the replay, as threads do). */
Test(fd, deterministic_schedule)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = 2;
    cfg.schedule = WEFT_SCHEDULE_RANDOM;
    cfg.seed = 42;
    intptr_t r = -1;
    ASSERT_OK(weft_run(wake_main, NULL, &cfg, &r));
    ASSERT_CHECKS();
    cr_assert_eq(r, 0);
}

/* ---- bad input --------------------------------------------------------------------------- */

static intptr_t bad_main(void *arg)
{
    int p[2];
    make_pipe(p);
    CHECK_RC(weft_fd_wait(p[0], 0, 0), -EINVAL);
    CHECK_RC(weft_fd_wait(p[0], WEFT_FD_HUP, 0), -EINVAL);
    CHECK_RC(weft_fd_wait(p[0], 0x100, 0), -EINVAL);
    CHECK_RC(weft_fd_wait(-1, WEFT_FD_READ, 0), -EBADF);
    CHECK_RC(weft_fd_wait(-1, WEFT_FD_READ, WEFT_FOREVER), -EBADF);
    CHECK_RC(weft_fd_wait(1 << 30, WEFT_FD_READ, WEFT_FOREVER), -EBADF);
    int closed = dup(p[0]);
    close(closed);
    CHECK_RC(weft_fd_wait(closed, WEFT_FD_READ, WEFT_FOREVER), -EBADF);
    CHECK_RC(weft_fd_close(-1), -EBADF);
    CHECK_RC(weft_fd_forget(-1), -EBADF);
    CHECK_RC(weft_fd_close(closed), -EBADF);
    close_pipe(p);
    return 0;
}

Test(fd, bad_input)
{
    run_1_and_2(bad_main, NULL);
}

Test(fd, no_runtime)
{
    int p[2];
    make_pipe(p);
    ASSERT_RC(weft_fd_wait(p[0], WEFT_FD_READ, 0), -ESHUTDOWN);
    ASSERT_RC(weft_fd_close(p[0]), 0);
    ASSERT_RC(weft_fd_close(p[1]), 0);
}
