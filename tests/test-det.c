/* test-det.c: the deterministic schedules: the same seed replays the same
 * execution (byte-identical traces), the virtual clock, the seed of a
 * failing run, WEFT_SEED, threads outside the runtime, and the explorer
 * finding (and replaying) bugs planted in small programs. */
#define _GNU_SOURCE /* setenv, mkstemp, pread, clock_gettime */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "explore.h"
#include "test.h"

/* ---- traces ------------------------------------------------------------------ */

struct trace_buf {
    char *text;
    size_t len, cap;
    unsigned lines;
};

static void collect(void *ud, const char *event)
{
    struct trace_buf *t = ud;
    size_t n = strlen(event);
    if (t->len + n + 2 > t->cap) {
        t->cap = (t->len + n + 2) * 2;
        t->text = realloc(t->text, t->cap);
        cr_assert_not_null(t->text);
    }
    memcpy(t->text + t->len, event, n);
    t->len += n;
    t->text[t->len++] = '\n';
    t->text[t->len] = '\0';
    t->lines++;
}

/* A small program with every kind of event: spawns, a buffered and a
 * rendezvous channel, select with a deadline, sleeps, joins. */
static intptr_t busy_worker(void *arg)
{
    weft_chan *ch = arg;
    int sum = 0, v;
    for (int i = 0; i < 20; i++) {
        v = i;
        if (weft_chan_send(ch[0], &v, sizeof v, WEFT_FOREVER) != 0)
            return -1;
        if (i % 5 == 0)
            weft_sleep(weft_now() + 1000 * US);
    }
    while (weft_chan_recv(ch[1], &v, sizeof v, WEFT_FOREVER) == 0)
        sum += v;
    return sum;
}

static intptr_t busy_main(void *arg)
{
    weft_chan ch[2];
    if (weft_chan_make(&ch[0], sizeof(int), 2) || weft_chan_make(&ch[1], sizeof(int), 0))
        return -1;
    weft_pid pids[3];
    for (int i = 0; i < 3; i++)
        if (weft_spawn(&pids[i], busy_worker, ch, NULL))
            return -1;
    int got = 0, v;
    while (got < 60) {
        weft_case cases[1] = {WEFT_RECV(ch[0], &v)};
        int r = weft_select(cases, 1, WEFT_SELECT_FAIR, weft_now() + 300 * US);
        if (r == 0)
            got++;
        else if (r != -ETIMEDOUT)
            return -2;
    }
    for (v = 0; v < 9; v++)
        weft_chan_send(ch[1], &v, sizeof v, WEFT_FOREVER);
    weft_chan_close(ch[1]);
    intptr_t total = 0, r;
    for (int i = 0; i < 3; i++) {
        if (weft_join(pids[i], &r, WEFT_FOREVER))
            return -3;
        total += r;
    }
    weft_chan_release(ch[0]);
    weft_chan_release(ch[1]);
    return total == 36 ? 0 : -4;
}

static void traced_run(struct trace_buf *t, int schedule, uint64_t seed, weft_proc_fn fn)
{
    memset(t, 0, sizeof *t);
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = 3;
    cfg.schedule = schedule;
    cfg.seed = seed;
    cfg.trace = collect;
    cfg.trace_ud = t;
    intptr_t r = -1;
    ASSERT_OK(weft_run(fn, NULL, &cfg, &r));
    cr_assert_eq(r, 0, "the traced program failed: %ld", (long)r);
}

static void check_replays(int schedule)
{
    struct trace_buf a, b, c;
    traced_run(&a, schedule, 42, busy_main);
    traced_run(&b, schedule, 42, busy_main);
    traced_run(&c, schedule, 43, busy_main);
    cr_assert_gt(a.lines, 200, "only %u events", a.lines);
    cr_assert_eq(a.len, b.len, "seed 42 twice: %zu and %zu bytes of trace", a.len, b.len);
    cr_assert(memcmp(a.text, b.text, a.len) == 0, "seed 42 twice: the traces differ");
    cr_assert(a.len != c.len || memcmp(a.text, c.text, a.len) != 0,
              "seeds 42 and 43 gave the same execution");
    free(a.text);
    free(b.text);
    free(c.text);
}

Test(det, the_same_seed_gives_byte_identical_traces_random, .timeout = 60)
{
    check_replays(WEFT_SCHEDULE_RANDOM);
}

Test(det, the_same_seed_gives_byte_identical_traces_pct, .timeout = 60)
{
    check_replays(WEFT_SCHEDULE_PCT);
}

/* WEFT_SEED in the environment turns a threaded configuration into a
 * deterministic run, which replays too. */
Test(det, weft_seed_in_the_environment_makes_a_run_replay, .timeout = 60)
{
    setenv("WEFT_SEED", "1234", 1);
    struct trace_buf a, b;
    traced_run(&a, WEFT_SCHEDULE_THREADS, 0, busy_main);
    traced_run(&b, WEFT_SCHEDULE_THREADS, 99, busy_main);
    unsetenv("WEFT_SEED");
    cr_assert_gt(a.lines, 200);
    cr_assert(strstr(a.text, "seed 1234") != NULL, "the trace does not name seed 1234");
    cr_assert(a.len == b.len && memcmp(a.text, b.text, a.len) == 0, "the two runs differ");
    free(a.text);
    free(b.text);
}

/* ---- the virtual clock ------------------------------------------------------------ */

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static intptr_t sleeper_hour(void *arg)
{
    int64_t t0 = weft_now();
    if (weft_sleep(t0 + (int64_t)3600 * 1000 * MS) != 0)
        return -1;
    return weft_now() - t0 >= (int64_t)3600 * 1000 * MS ? 0 : -2;
}

static intptr_t clock_main(void *arg)
{
    weft_pid a, b;
    if (weft_spawn(&a, sleeper_hour, NULL, NULL) || weft_spawn(&b, sleeper_hour, NULL, NULL))
        return -1;
    /* A receive that times out after a virtual day. */
    weft_chan ch;
    int v;
    if (weft_chan_make(&ch, sizeof v, 0))
        return -1;
    int64_t t0 = weft_now();
    int rc = weft_chan_recv(ch, &v, sizeof v, t0 + (int64_t)86400 * 1000 * MS);
    intptr_t ra = -9, rb = -9;
    weft_join(a, &ra, WEFT_FOREVER);
    weft_join(b, &rb, WEFT_FOREVER);
    weft_chan_release(ch);
    if (rc != -ETIMEDOUT || weft_now() - t0 < (int64_t)86400 * 1000 * MS)
        return -3;
    return ra || rb ? -4 : 0;
}

Test(det, the_virtual_clock_jumps_to_the_next_deadline, .timeout = 30)
{
    int64_t t0 = real_ns();
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.schedule = WEFT_SCHEDULE_RANDOM;
    cfg.seed = 5;
    intptr_t r = -1;
    ASSERT_OK(weft_run(clock_main, NULL, &cfg, &r));
    cr_assert_eq(r, 0, "clock_main: %ld", (long)r);
    cr_assert_lt(real_ns() - t0, 10000 * MS, "a virtual hour took real time");
}

/* ---- failures print their seed ----------------------------------------------------- */

static intptr_t lonely_receiver(void *arg)
{
    weft_chan ch;
    int v;
    if (weft_chan_make(&ch, sizeof v, 0))
        return -1;
    return weft_chan_recv(ch, &v, sizeof v, WEFT_FOREVER);
}

Test(det, a_deadlock_prints_the_seed_that_replays_it, .timeout = 30)
{
    char path[] = "/tmp/weft-det-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    int saved = dup(2);
    dup2(fd, 2);
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.schedule = WEFT_SCHEDULE_PCT;
    cfg.seed = 77;
    int rc = weft_run(lonely_receiver, NULL, &cfg, NULL);
    dup2(saved, 2);
    close(saved);
    ASSERT_RC(rc, -EDEADLK);
    char text[8192] = {0};
    cr_assert_gt(pread(fd, text, sizeof text - 1, 0), 0);
    close(fd);
    cr_assert(strstr(text, "seed 77: replay with WEFT_SEED=77 WEFT_SCHEDULE=pct") != NULL,
              "the report does not say how to replay: %s", text);
}

Test(det, an_unknown_schedule_is_refused, .timeout = 10)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.schedule = 3;
    ASSERT_RC(weft_start(&cfg), -EINVAL);
    cfg.schedule = -1;
    ASSERT_RC(weft_start(&cfg), -EINVAL);
    ASSERT_RC(weft_run(busy_main, NULL, &cfg, NULL), -EINVAL);
}

/* ---- outside threads and pinned processes ------------------------------------------- */

static intptr_t echo(void *arg)
{
    weft_chan ch = *(weft_chan *)arg;
    int v;
    while (weft_chan_recv(ch, &v, sizeof v, WEFT_FOREVER) == 0) {
        v++;
        if (weft_chan_send(ch, &v, sizeof v, WEFT_FOREVER) != 0)
            return -1;
    }
    return 0;
}

/* An embedded deterministic runtime still serves the program's threads
 * (their timing is not replayed): spawn, send, receive, time out, stop. */
Test(det, outside_threads_talk_to_a_deterministic_runtime, .timeout = 30)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.schedule = WEFT_SCHEDULE_RANDOM;
    cfg.seed = 9;
    cfg.workers = 2;
    ASSERT_OK(weft_start(&cfg));
    weft_chan ch;
    ASSERT_OK(weft_chan_make(&ch, sizeof(int), 0));
    weft_pid pid;
    ASSERT_OK(weft_spawn(&pid, echo, &ch, NULL));
    for (int i = 0; i < 100; i++) {
        int v = i;
        ASSERT_OK(weft_chan_send(ch, &v, sizeof v, WEFT_FOREVER));
        ASSERT_OK(weft_chan_recv(ch, &v, sizeof v, WEFT_FOREVER));
        cr_assert_eq(v, i + 1);
    }
    int v;
    int64_t t0 = real_ns();
    ASSERT_RC(weft_chan_recv(ch, &v, sizeof v, weft_now() + 20 * MS), -ETIMEDOUT);
    cr_assert_geq(real_ns() - t0, 19 * MS, "a thread's 20 ms deadline did not take real time");
    ASSERT_OK(weft_chan_close(ch));
    intptr_t r = -1;
    ASSERT_OK(weft_join(pid, &r, WEFT_FOREVER));
    cr_assert_eq(r, 0);
    ASSERT_OK(weft_chan_release(ch));
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

static intptr_t report_worker(void *arg)
{
    int want = (int)(intptr_t)arg;
    for (int i = 0; i < 10; i++) {
        if (weft_worker_id() != want)
            return -1;
        weft_yield();
    }
    return 0;
}

static intptr_t pinned_main(void *arg)
{
    weft_pid pids[3];
    for (int i = 0; i < 3; i++) {
        weft_spawn_opts o;
        weft_spawn_opts_init(&o);
        o.worker = i;
        o.pinned = 1;
        if (weft_spawn(&pids[i], report_worker, (void *)(intptr_t)i, &o))
            return -1;
    }
    intptr_t bad = 0, r;
    for (int i = 0; i < 3; i++) {
        weft_join(pids[i], &r, WEFT_FOREVER);
        bad |= r;
    }
    return bad;
}

Test(det, pinned_processes_run_on_their_logical_worker, .timeout = 30)
{
    struct explore_opts o = {.workers = 3, .seeds = 200};
    cr_assert_eq(explore(pinned_main, NULL, &o), 0);
}

/* ---- the explorer finds planted bugs ---------------------------------------------------- */

/* A lost update: each process reads the shared counter, talks on a channel
 * (a point where another process may run), then writes it back. */
static int planted_counter;

static intptr_t racy_increment(void *arg)
{
    weft_chan ch = *(weft_chan *)arg;
    int seen = planted_counter;
    int v = 0;
    weft_chan_send(ch, &v, sizeof v, 0); /* a weft call: the race window */
    planted_counter = seen + 1;
    return 0;
}

static intptr_t lost_update_main(void *arg)
{
    weft_chan ch;
    if (weft_chan_make(&ch, sizeof(int), 8))
        return -1;
    weft_pid a, b;
    weft_spawn(&a, racy_increment, &ch, NULL);
    weft_spawn(&b, racy_increment, &ch, NULL);
    weft_join(a, NULL, WEFT_FOREVER);
    weft_join(b, NULL, WEFT_FOREVER);
    weft_chan_release(ch);
    EXPLORE_CHECK(planted_counter == 2, "counter %d after two increments", planted_counter);
    return 0;
}

static void reset_counter(void)
{
    planted_counter = 0;
}

static void check_found_and_replays(int schedule)
{
    struct explore_opts o = {.seeds = 2000, .schedule = schedule, .reset = reset_counter};
    uint64_t seed = explore(lost_update_main, NULL, &o);
    cr_assert_neq(seed, 0, "the lost update was never found in 2000 runs");
    /* The failing seed fails again, every time: it replays. */
    for (int i = 0; i < 5; i++) {
        struct explore_opts one = {.first_seed = seed, .seeds = 1, .schedule = schedule,
                                   .reset = reset_counter};
        cr_assert_eq(explore(lost_update_main, NULL, &one), seed);
    }
}

Test(det, the_explorer_finds_a_lost_update_and_replays_it_random, .timeout = 60)
{
    check_found_and_replays(WEFT_SCHEDULE_RANDOM);
}

Test(det, the_explorer_finds_a_lost_update_and_replays_it_pct, .timeout = 60)
{
    check_found_and_replays(WEFT_SCHEDULE_PCT);
}

/* An ordering bug of depth 2 (Burckhardt et al.): the consumer assumes the
 * producer's first message comes before the reset it sends itself. */
static intptr_t order_producer(void *arg)
{
    weft_chan ch = *(weft_chan *)arg;
    int v = 1;
    weft_yield();
    weft_chan_send(ch, &v, sizeof v, WEFT_FOREVER);
    return 0;
}

static intptr_t order_main(void *arg)
{
    weft_chan ch;
    if (weft_chan_make(&ch, sizeof(int), 2))
        return -1;
    weft_pid p;
    weft_spawn(&p, order_producer, &ch, NULL);
    int v = 0;
    weft_chan_send(ch, &v, sizeof v, WEFT_FOREVER); /* the reset */
    weft_chan_recv(ch, &v, sizeof v, WEFT_FOREVER);
    weft_join(p, NULL, WEFT_FOREVER);
    weft_chan_release(ch);
    EXPLORE_CHECK(v == 1, "the reset (0) came before the producer's 1");
    return 0;
}

Test(det, the_explorer_finds_an_ordering_bug_under_both_schedules, .timeout = 60)
{
    struct explore_opts o = {.seeds = 2000, .schedule = WEFT_SCHEDULE_RANDOM};
    cr_assert_neq(explore(order_main, NULL, &o), 0);
    o.schedule = WEFT_SCHEDULE_PCT;
    cr_assert_neq(explore(order_main, NULL, &o), 0);
}

/* A deadline passes while other processes keep running (one polls with
 * yields and never blocks): its timer fires anyway, as in the threaded
 * mode, and under PCT the poller does not starve the sleeper. */
static int sleeper_done;

static intptr_t sleeps_then_flags(void *arg)
{
    weft_sleep(weft_now() + 1000 * US);
    sleeper_done = 1;
    return 0;
}

static intptr_t polling_main(void *arg)
{
    weft_pid pid;
    if (weft_spawn(&pid, sleeps_then_flags, NULL, NULL))
        return -1;
    long polls = 0;
    while (!sleeper_done) {
        weft_yield();
        EXPLORE_CHECK(++polls < 10000000, "the sleeper's timer never fired");
    }
    weft_join(pid, NULL, WEFT_FOREVER);
    return 0;
}

static void reset_sleeper(void)
{
    sleeper_done = 0;
}

Test(det, a_timer_fires_while_other_processes_run, .timeout = 60)
{
    struct explore_opts o = {.seeds = 200, .reset = reset_sleeper};
    cr_assert_eq(explore(polling_main, NULL, &o), 0);
}

/* WEFT_TRACE=1 writes a deterministic run's trace to standard error. */
Test(det, weft_trace_writes_the_trace_to_stderr, .timeout = 30)
{
    char path[] = "/tmp/weft-trace-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    int saved = dup(2);
    dup2(fd, 2);
    setenv("WEFT_TRACE", "1", 1);
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.schedule = WEFT_SCHEDULE_RANDOM;
    cfg.seed = 3;
    intptr_t r = -1;
    int rc = weft_run(busy_main, NULL, &cfg, &r);
    unsetenv("WEFT_TRACE");
    dup2(saved, 2);
    close(saved);
    ASSERT_OK(rc);
    cr_assert_eq(r, 0);
    char text[4096] = {0};
    cr_assert_gt(pread(fd, text, sizeof text - 1, 0), 0);
    close(fd);
    cr_assert(strncmp(text, "weft-trace: 0 0 start random seed 3\n", 36) == 0,
              "the trace starts with: %.80s", text);
    cr_assert(strstr(text, "weft-trace: 1 ") && strstr(text, " run #"), "no run event in: %.200s",
              text);
}
