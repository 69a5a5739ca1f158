/* test-supervisor.c: supervisors: the three strategies restart exactly the
 * children they name, restart kinds, restart intensity and its period,
 * backoff and its jitter, orderly shutdown (reverse order, shutdown time,
 * kill), nested trees, requests during restarts, the parent's exit signal,
 * bad specs, start failures, outside threads and actors. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#define TEST_PROC_CHECKS
#include "test.h"

/* ---- children that report what happens to them -------------------------------------- */

enum { TAG_CRASH = 100, TAG_HELLO = 101 };
enum { EV_START = 1, EV_STOP = 2, EV_IGNORED = 3 };
/* What a child that traps exits does with its supervisor's WEFT_EXIT_SHUTDOWN. */
enum { ON_STOP_END = 0, ON_STOP_IGNORE = 1, ON_STOP_LINGER = 2 };

struct ev {
    int id;
    int kind;
    weft_pid pid;
};

/* Every start and every stop of a child, in the order they happened. Made
 * by each run's main (channels belong to one runtime). */
static weft_chan events;

struct kid {
    int id;
    int by_fn;         /* spawned by the supervisor (fn): records its own start */
    int trap;          /* traps exits: sees its stop, and records it */
    int on_stop;       /* ON_STOP_* */
    int64_t linger_ms; /* ON_STOP_LINGER: how long it takes to stop */
    int quiet;         /* records nothing (volume tests) */
    atomic_int starts;
};

static void record_pid(struct kid *k, int kind, weft_pid pid)
{
    if (k->quiet)
        return;
    struct ev e = {.id = k->id, .kind = kind, .pid = pid};
    CHECK_RC(weft_chan_send(events, &e, sizeof e, 0), 0);
}

static void record(struct kid *k, int kind)
{
    record_pid(k, kind, weft_self());
}

/* A child: serves its mailbox: TAG_CRASH (payload: an exit reason) ends it
 * with that reason; its supervisor's exit signal ends it (recorded if it
 * traps exits, as its on_stop says). */
static intptr_t kid_main(void *arg)
{
    struct kid *k = arg;
    if (k->by_fn) {
        /* Its first line may run after the supervisor has gone on to start
         * the next child: its start event is not in start order. */
        if (k->trap)
            weft_trap_exits(1);
        atomic_fetch_add(&k->starts, 1);
        record(k, EV_START);
    }
    for (;;) {
        weft_msg m;
        if (weft_recv(&m, NULL, WEFT_FOREVER) < 0)
            return 0; /* an exit signal (not trapped), or the runtime's end */
        if (m.tag == TAG_CRASH) {
            intptr_t reason;
            memcpy(&reason, m.data, sizeof reason);
            weft_msg_free(&m);
            return reason;
        }
        if (m.tag == WEFT_TAG_EXIT) {
            intptr_t reason = m.reason;
            weft_msg_free(&m);
            if (k->on_stop == ON_STOP_IGNORE) {
                record(k, EV_IGNORED);
                continue;
            }
            if (k->on_stop == ON_STOP_LINGER)
                weft_sleep(test_in_ms(k->linger_ms));
            record(k, EV_STOP);
            return reason;
        }
        weft_msg_free(&m);
    }
}

/* A child spec's start: spawns kid_main linked, as start callbacks must,
 * trapping exits from the start if it is to, and records the start from the
 * supervisor: start events are in start order. */
static int start_kid(void *arg, weft_pid *pid)
{
    struct kid *k = arg;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.link = 1;
    opts.detached = 1;
    opts.trap_exits = k->trap;
    int rc = weft_spawn(pid, kid_main, arg, &opts);
    if (rc == 0) {
        atomic_fetch_add(&k->starts, 1);
        record_pid(k, EV_START, *pid);
    }
    return rc;
}

/* A child started by start_kid. */
static weft_child_spec child(const char *name, struct kid *k)
{
    return (weft_child_spec){.name = name, .start = start_kid, .arg = k, .shutdown = 5000 * MS};
}

/* A child that the supervisor spawns itself (fn). */
static weft_child_spec fn_child(const char *name, struct kid *k)
{
    k->by_fn = 1;
    return (weft_child_spec){.name = name, .fn = kid_main, .arg = k, .shutdown = 5000 * MS};
}

static weft_sup_spec sup_spec(int strategy, weft_child_spec *children, size_t n)
{
    return (weft_sup_spec){.name = "test-sup", .strategy = strategy, .max_restarts = 100,
                           .period = 10000 * MS, .children = children, .nchildren = n};
}

static void crash(weft_pid pid, intptr_t reason)
{
    CHECK_RC(weft_send(pid, TAG_CRASH, &reason, sizeof reason, 0), 0);
}

static const char *ev_name(int kind)
{
    return kind == EV_START ? "start" : kind == EV_STOP ? "stop" : kind == EV_IGNORED ? "ignored" : "?";
}

/* The next event, which must be (id, kind), within 5 s; returns its pid. */
#define EXPECT_EV(id, kind) expect_ev(__LINE__, (id), (kind))
static weft_pid expect_ev(int line, int id, int kind)
{
    struct ev e = {.id = -1, .kind = 0};
    int rc = weft_chan_recv(events, &e, sizeof e, test_in_ms(5000));
    if (rc != 0)
        check_fail(line, "waiting for %s of %d: %d (%s)", ev_name(kind), id, rc, weft_strerror(rc));
    else if (e.id != id || e.kind != kind)
        check_fail(line, "event %s of %d, expected %s of %d", ev_name(e.kind), e.id, ev_name(kind),
                   id);
    return e.pid;
}

/* The next n events are the starts of children 0..n-1, in any order (fn
 * children record their own starts); stores their pids in pids[id]. */
#define EXPECT_STARTS(n, pids) expect_starts(__LINE__, (n), (pids))
static void expect_starts(int line, int n, weft_pid *pids)
{
    unsigned seen = 0;
    for (int i = 0; i < n; i++) {
        struct ev e = {.id = -1, .kind = 0};
        int rc = weft_chan_recv(events, &e, sizeof e, test_in_ms(5000));
        if (rc != 0 || e.kind != EV_START || e.id < 0 || e.id >= n || (seen & (1u << e.id))) {
            check_fail(line, "start %d of %d: rc %d, event %s of %d", i, n, rc, ev_name(e.kind),
                       e.id);
            return;
        }
        seen |= 1u << e.id;
        pids[e.id] = e.pid;
    }
}

/* Waits until pid has ended (its DOWN), and so until its supervisor has had
 * its EXIT in its mailbox, ahead of any request sent after this. */
#define WAIT_ENDED(pid) wait_ended(__LINE__, (pid))
static intptr_t wait_down(int line, uint64_t ref);
static uint64_t monitor(weft_pid pid);
static intptr_t wait_ended(int line, weft_pid pid)
{
    return wait_down(line, monitor(pid));
}

/* No event for ms. */
#define EXPECT_NO_EV(ms) expect_no_ev(__LINE__, (ms))
static void expect_no_ev(int line, int64_t ms)
{
    struct ev e;
    int rc = weft_chan_recv(events, &e, sizeof e, test_in_ms(ms));
    if (rc != -ETIMEDOUT)
        check_fail(line, "unexpected event (rc %d): %s of %d", rc, ev_name(e.kind), e.id);
}

#define WHICH(sup, name) which(__LINE__, (sup), (name))
static weft_pid which(int line, weft_pid sup, const char *name)
{
    weft_pid pid = 0;
    int rc = weft_sup_which(sup, name, &pid, test_in_ms(5000));
    if (rc != 0)
        check_fail(line, "weft_sup_which(%s): %d (%s)", name, rc, weft_strerror(rc));
    return pid;
}

static uint64_t monitor(weft_pid pid)
{
    uint64_t ref = 0;
    CHECK_RC(weft_monitor(pid, &ref), 0);
    return ref;
}

/* The reason of the DOWN of ref, within 5 s (-12345 if none came). */
#define WAIT_DOWN(ref) wait_down(__LINE__, (ref))
static intptr_t wait_down(int line, uint64_t ref)
{
    weft_match match = {.tag = WEFT_TAG_DOWN, .ref = ref};
    weft_msg m;
    int rc = weft_recv(&m, &match, test_in_ms(5000));
    if (rc != 0) {
        check_fail(line, "no DOWN: %d (%s)", rc, weft_strerror(rc));
        return -12345;
    }
    intptr_t reason = m.reason;
    weft_msg_free(&m);
    return reason;
}

static void events_open(void)
{
    events = make_chan(sizeof(struct ev), 4096);
}

static void events_close(void)
{
    EXPECT_NO_EV(0);
    CHECK_RC(weft_chan_release(events), 0);
}

static const char *abc[5] = {"a", "b", "c", "d", "e"};

static int rounds(int n)
{
    return test_sanitized() ? (n + 4) / 5 : n;
}

/* ---- strategies ------------------------------------------------------------------- */

/* One for one: a crashed child comes back with a new pid, the others keep
 * theirs, nothing else starts or stops. Children by fn and by start. */
static intptr_t one_for_one_main(void *arg)
{
    events_open();
    for (int round = 0; round < rounds(20); round++) {
        struct kid k[3] = {{.id = 0}, {.id = 1, .trap = 1}, {.id = 2}};
        weft_child_spec cs[3] = {fn_child("a", &k[0]), child("b", &k[1]), fn_child("c", &k[2])};
        weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 3);
        weft_pid sup = 0, p[3];
        CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
        EXPECT_STARTS(3, p);
        CHECK(WHICH(sup, "a") == p[0] && WHICH(sup, "b") == p[1] && WHICH(sup, "c") == p[2],
              "which does not name the started children");
        int victim = round % 3;
        crash(p[victim], 42);
        weft_pid np = EXPECT_EV(victim, EV_START);
        CHECK(np != p[victim] && np != 0, "restarted child %d has pid %llx (was %llx)", victim,
              (unsigned long long)np, (unsigned long long)p[victim]);
        for (int i = 0; i < 3; i++) {
            weft_pid now = WHICH(sup, abc[i]);
            CHECK(now == (i == victim ? np : p[i]), "round %d: child %d is %llx", round, i,
                  (unsigned long long)now);
        }
        CHECK_RC(weft_sup_restarts(sup, test_in_ms(5000)), 1);
        EXPECT_NO_EV(5);
        CHECK_RC(weft_sup_stop(sup, test_in_ms(5000)), 0);
        EXPECT_EV(1, EV_STOP); /* b traps exits: it records its stop */
        weft_pid dummy;
        CHECK_RC(weft_sup_which(sup, "a", &dummy, test_in_ms(100)), -ESRCH);
        CHECK_RC(weft_sup_stop(sup, test_in_ms(100)), -ESRCH);
    }
    events_close();
    return 0;
}

Test(sup, one_for_one_restarts_only_the_child_that_ended, .timeout = 60)
{
    run_1_and_2(one_for_one_main, NULL);
}

/* One for all: the others stop in reverse start order, then all start again
 * in order, each with a new pid. */
static intptr_t one_for_all_main(void *arg)
{
    events_open();
    for (int round = 0; round < rounds(20); round++) {
        struct kid k[3] = {{.id = 0, .trap = 1}, {.id = 1, .trap = 1}, {.id = 2, .trap = 1}};
        weft_child_spec cs[3] = {child("a", &k[0]), child("b", &k[1]), child("c", &k[2])};
        weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ALL, cs, 3);
        weft_pid sup = 0, p[3], np[3];
        CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
        for (int i = 0; i < 3; i++)
            p[i] = EXPECT_EV(i, EV_START);
        int victim = round % 3;
        crash(p[victim], 42);
        for (int i = 2; i >= 0; i--)
            if (i != victim)
                EXPECT_EV(i, EV_STOP);
        for (int i = 0; i < 3; i++) {
            np[i] = EXPECT_EV(i, EV_START);
            CHECK(np[i] != p[i] && np[i] != 0, "child %d kept its pid", i);
            CHECK(WHICH(sup, abc[i]) == np[i], "which(%d)", i);
        }
        CHECK_RC(weft_sup_restarts(sup, test_in_ms(5000)), 1);
        CHECK_RC(weft_sup_stop(sup, test_in_ms(5000)), 0);
        for (int i = 2; i >= 0; i--)
            EXPECT_EV(i, EV_STOP);
    }
    events_close();
    return 0;
}

Test(sup, one_for_all_stops_the_others_in_reverse_then_restarts_all_in_order, .timeout = 60)
{
    run_1_and_2(one_for_all_main, NULL);
}

/* Rest for one: the children started after the one that ended stop (in
 * reverse), then it and they start again in order; those before it keep
 * their pids. */
static intptr_t rest_for_one_main(void *arg)
{
    events_open();
    const char *names[4] = {"a", "b", "c", "d"};
    for (int round = 0; round < rounds(20); round++) {
        struct kid k[4];
        weft_child_spec cs[4];
        for (int i = 0; i < 4; i++) {
            k[i] = (struct kid){.id = i, .trap = 1};
            cs[i] = child(names[i], &k[i]);
        }
        weft_sup_spec spec = sup_spec(WEFT_REST_FOR_ONE, cs, 4);
        weft_pid sup = 0, p[4];
        CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
        for (int i = 0; i < 4; i++)
            p[i] = EXPECT_EV(i, EV_START);
        int victim = round % 4;
        crash(p[victim], 42);
        for (int i = 3; i > victim; i--)
            EXPECT_EV(i, EV_STOP);
        for (int i = victim; i < 4; i++) {
            weft_pid np = EXPECT_EV(i, EV_START);
            CHECK(np != p[i], "child %d kept its pid", i);
            p[i] = np;
        }
        for (int i = 0; i < 4; i++)
            CHECK(WHICH(sup, names[i]) == p[i], "round %d: child %d has another pid", round, i);
        CHECK_RC(weft_sup_restarts(sup, test_in_ms(5000)), 1);
        CHECK_RC(weft_sup_stop(sup, test_in_ms(5000)), 0);
        for (int i = 3; i >= 0; i--)
            EXPECT_EV(i, EV_STOP);
    }
    events_close();
    return 0;
}

Test(sup, rest_for_one_restarts_the_child_and_those_started_after_it, .timeout = 60)
{
    run_1_and_2(rest_for_one_main, NULL);
}

/* ---- restart kinds -------------------------------------------------------------------- */

/* Transient: not restarted after NORMAL or SHUTDOWN (its pid reads 0, it is
 * still a child), restarted after any other reason. Permanent: restarted
 * even after NORMAL. */
static intptr_t transient_main(void *arg)
{
    events_open();
    struct kid k[4] = {{.id = 0}, {.id = 1}, {.id = 2}, {.id = 3}};
    weft_child_spec cs[4] = {fn_child("normal", &k[0]), fn_child("shutdown", &k[1]),
                             fn_child("crash", &k[2]), fn_child("perm", &k[3])};
    for (int i = 0; i < 3; i++)
        cs[i].restart = WEFT_TRANSIENT;
    weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 4);
    weft_pid sup = 0, p[4];
    CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
    EXPECT_STARTS(4, p);
    crash(p[0], WEFT_EXIT_NORMAL);
    crash(p[1], WEFT_EXIT_SHUTDOWN);
    WAIT_ENDED(p[0]);
    WAIT_ENDED(p[1]);
    crash(p[2], 42);
    weft_pid np2 = EXPECT_EV(2, EV_START);
    CHECK(np2 != p[2], "the crashed transient child kept its pid");
    crash(p[3], WEFT_EXIT_NORMAL);
    weft_pid np3 = EXPECT_EV(3, EV_START);
    CHECK(np3 != p[3], "the permanent child kept its pid");
    EXPECT_NO_EV(30);
    CHECK(WHICH(sup, "normal") == 0, "a transient child that ended normally runs");
    CHECK(WHICH(sup, "shutdown") == 0, "a transient child that ended with SHUTDOWN runs");
    CHECK(WHICH(sup, "crash") == np2, "which(crash)");
    CHECK_RC(weft_sup_restarts(sup, test_in_ms(5000)), 2);
    CHECK_RC(weft_sup_stop(sup, test_in_ms(5000)), 0);
    events_close();
    return 0;
}

Test(sup, transient_restarts_only_after_an_abnormal_exit, .timeout = 30)
{
    run_1_and_2(transient_main, NULL);
}

/* Temporary: never restarted, whatever the reason, and no longer a child
 * once it has ended (-ENOENT); not counted as a restart. */
static intptr_t temporary_main(void *arg)
{
    events_open();
    struct kid k[3] = {{.id = 0}, {.id = 1}, {.id = 2}};
    weft_child_spec cs[3] = {fn_child("t0", &k[0]), child("t1", &k[1]), fn_child("p", &k[2])};
    cs[0].restart = cs[1].restart = WEFT_TEMPORARY;
    weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 3);
    weft_pid sup = 0, p[3];
    CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
    EXPECT_STARTS(3, p);
    crash(p[0], 42);
    crash(p[1], WEFT_EXIT_NORMAL);
    WAIT_ENDED(p[0]);
    WAIT_ENDED(p[1]);
    EXPECT_NO_EV(30);
    weft_pid pid = 1;
    CHECK_RC(weft_sup_which(sup, "t0", &pid, test_in_ms(5000)), -ENOENT);
    CHECK_RC(weft_sup_which(sup, "t1", &pid, test_in_ms(5000)), -ENOENT);
    CHECK(pid == 1, "a failed which wrote its pid");
    CHECK(WHICH(sup, "p") == p[2], "which(p)");
    CHECK_RC(weft_sup_restarts(sup, test_in_ms(5000)), 0);
    CHECK_RC(weft_sup_stop(sup, test_in_ms(5000)), 0);
    events_close();
    return 0;
}

Test(sup, temporary_is_never_restarted_and_is_removed, .timeout = 30)
{
    run_1_and_2(temporary_main, NULL);
}

/* A temporary child stopped by a group restart is not started again. */
static intptr_t temporary_group_main(void *arg)
{
    events_open();
    struct kid k[3] = {{.id = 0, .trap = 1}, {.id = 1, .trap = 1}, {.id = 2, .trap = 1}};
    weft_child_spec cs[3] = {child("a", &k[0]), child("tmp", &k[1]), child("c", &k[2])};
    cs[1].restart = WEFT_TEMPORARY;
    weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ALL, cs, 3);
    weft_pid sup = 0, p[3];
    CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
    for (int i = 0; i < 3; i++)
        p[i] = EXPECT_EV(i, EV_START);
    crash(p[0], 42);
    EXPECT_EV(2, EV_STOP);
    EXPECT_EV(1, EV_STOP);
    EXPECT_EV(0, EV_START);
    EXPECT_EV(2, EV_START);
    weft_pid pid;
    CHECK_RC(weft_sup_which(sup, "tmp", &pid, test_in_ms(5000)), -ENOENT);
    CHECK_RC(weft_sup_stop(sup, test_in_ms(5000)), 0);
    EXPECT_EV(2, EV_STOP);
    EXPECT_EV(0, EV_STOP);
    events_close();
    return 0;
}

Test(sup, temporary_stopped_by_a_group_restart_is_removed, .timeout = 30)
{
    run_1_and_2(temporary_group_main, NULL);
}

/* ---- intensity -------------------------------------------------------------------- */

/* max_restarts restarts within period are allowed; one more stops the
 * children (in reverse) and ends the supervisor with WEFT_EXIT_SHUTDOWN. */
static intptr_t intensity_main(void *arg)
{
    events_open();
    for (int round = 0; round < rounds(10); round++) {
        struct kid k[3] = {{.id = 0, .trap = 1}, {.id = 1}, {.id = 2, .trap = 1}};
        weft_child_spec cs[3] = {child("a", &k[0]), fn_child("b", &k[1]), child("c", &k[2])};
        weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 3);
        spec.max_restarts = 3;
        weft_pid sup = 0, p[3];
        CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
        EXPECT_STARTS(3, p);
        uint64_t ref = monitor(sup);
        for (int i = 0; i < 3; i++) {
            crash(p[1], 42);
            p[1] = EXPECT_EV(1, EV_START);
        }
        CHECK_RC(weft_sup_restarts(sup, test_in_ms(5000)), 3);
        crash(p[1], 42);
        EXPECT_EV(2, EV_STOP);
        EXPECT_EV(0, EV_STOP);
        intptr_t reason = WAIT_DOWN(ref);
        CHECK(reason == WEFT_EXIT_SHUTDOWN, "the supervisor ended with %ld", (long)reason);
        weft_pid pid;
        CHECK_RC(weft_sup_which(sup, "a", &pid, test_in_ms(100)), -ESRCH);
        CHECK(atomic_load(&k[1].starts) == 4, "b started %d times", atomic_load(&k[1].starts));
    }
    events_close();
    return 0;
}

Test(sup, intensity_exceeded_ends_the_supervisor_with_shutdown, .timeout = 60)
{
    run_1_and_2(intensity_main, NULL);
}

/* Restarts older than period do not count: one restart per 600 ms with
 * max_restarts 1 and period 500 ms goes on; two in a row end it. (A period
 * shorter than a stall of the machine would let the first of the two
 * expire.) */
static intptr_t intensity_period_main(void *arg)
{
    events_open();
    struct kid k = {.id = 0};
    weft_child_spec cs[1] = {child("a", &k)};
    weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 1);
    spec.max_restarts = 1;
    spec.period = 500 * MS;
    weft_pid sup = 0;
    CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
    weft_pid p = EXPECT_EV(0, EV_START);
    uint64_t ref = monitor(sup);
    for (int i = 0; i < 2; i++) {
        weft_sleep(test_in_ms(600));
        crash(p, 42);
        p = EXPECT_EV(0, EV_START);
    }
    CHECK_RC(weft_sup_restarts(sup, test_in_ms(5000)), 2);
    weft_sleep(test_in_ms(600));
    crash(p, 42);
    p = EXPECT_EV(0, EV_START);
    crash(p, 42); /* a second restart within 500 ms */
    intptr_t reason = WAIT_DOWN(ref);
    CHECK(reason == WEFT_EXIT_SHUTDOWN, "the supervisor ended with %ld", (long)reason);
    events_close();
    return 0;
}

Test(sup, intensity_counts_only_restarts_within_the_period, .timeout = 30)
{
    run_1_and_2(intensity_period_main, NULL);
}

/* max_restarts 0: the first end of a child that would be restarted ends
 * the supervisor. */
static intptr_t intensity_zero_main(void *arg)
{
    events_open();
    struct kid k[2] = {{.id = 0, .trap = 1}, {.id = 1}};
    weft_child_spec cs[2] = {child("a", &k[0]), child("b", &k[1])};
    weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 2);
    spec.max_restarts = 0;
    spec.period = 0;
    weft_pid sup = 0;
    CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
    EXPECT_EV(0, EV_START);
    weft_pid p = EXPECT_EV(1, EV_START);
    uint64_t ref = monitor(sup);
    crash(p, WEFT_EXIT_NORMAL); /* permanent: would be restarted */
    EXPECT_EV(0, EV_STOP);
    intptr_t reason = WAIT_DOWN(ref);
    CHECK(reason == WEFT_EXIT_SHUTDOWN, "the supervisor ended with %ld", (long)reason);
    events_close();
    return 0;
}

Test(sup, max_restarts_zero_ends_at_the_first_restart, .timeout = 30)
{
    run_1_and_2(intensity_zero_main, NULL);
}

/* A child whose restart fails (its start returns an error) counts a restart
 * per attempt, so that a child that can never start again ends the
 * supervisor. */
static atomic_int flaky_starts;

static int start_flaky(void *arg, weft_pid *pid)
{
    if (atomic_fetch_add(&flaky_starts, 1) > 0)
        return -EIO;
    return start_kid(arg, pid);
}

static intptr_t failed_restart_main(void *arg)
{
    events_open();
    atomic_store(&flaky_starts, 0);
    struct kid k[2] = {{.id = 0, .trap = 1}, {.id = 1}};
    weft_child_spec cs[2] = {child("a", &k[0]), child("flaky", &k[1])};
    cs[1].fn = NULL;
    cs[1].start = start_flaky;
    weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 2);
    spec.max_restarts = 5;
    weft_pid sup = 0;
    CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
    EXPECT_EV(0, EV_START);
    weft_pid p = EXPECT_EV(1, EV_START);
    uint64_t ref = monitor(sup);
    crash(p, 42);
    EXPECT_EV(0, EV_STOP);
    intptr_t reason = WAIT_DOWN(ref);
    CHECK(reason == WEFT_EXIT_SHUTDOWN, "the supervisor ended with %ld", (long)reason);
    /* The first start, then 5 restarts that fail: the 6th is one too many. */
    CHECK(atomic_load(&flaky_starts) == 6, "start called %d times", atomic_load(&flaky_starts));
    events_close();
    return 0;
}

Test(sup, failed_restarts_count_toward_intensity, .timeout = 30)
{
    run_1_and_2(failed_restart_main, NULL);
}

/* ---- backoff ----------------------------------------------------------------------- */

/* Consecutive restarts of a child wait backoff_min, then twice as long each
 * time up to backoff_max, each +-25%; a child that ran for backoff_max or
 * longer starts again from backoff_min. Requests are answered while the
 * supervisor waits to restart (the pid reads 0 then). */
static intptr_t backoff_main(void *arg)
{
    events_open();
    struct kid k[2] = {{.id = 0}, {.id = 1}};
    weft_child_spec cs[2] = {fn_child("a", &k[0]), fn_child("b", &k[1])};
    weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 2);
    spec.backoff_min = 50 * MS;
    spec.backoff_max = 400 * MS;
    weft_pid sup = 0, pids[2];
    CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
    EXPECT_STARTS(2, pids);
    weft_pid p = pids[0], b = pids[1];
    int64_t steps[] = {50, 100, 200, 400, 400};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        int64_t t0 = weft_now();
        crash(p, 42);
        WAIT_ENDED(p); /* its EXIT is queued ahead of the request */
        weft_pid now = 1;
        CHECK_RC(weft_sup_which(sup, "a", &now, test_in_ms(5000)), 0);
        int64_t answered = weft_now() - t0;
        /* The long waits: the request is answered during them, not after. */
        if (steps[i] >= 200) {
            CHECK(answered < steps[i] * 3 / 4 * MS, "step %zu: which took %lld ms", i,
                  (long long)(answered / MS));
            CHECK(now == 0, "step %zu: which answered %llx during the backoff", i,
                  (unsigned long long)now);
        }
        p = EXPECT_EV(0, EV_START);
        int64_t waited = weft_now() - t0;
        CHECK(waited >= steps[i] * 3 / 4 * MS, "step %zu: restarted after %lld ms, expected >= %lld",
              i, (long long)(waited / MS), (long long)(steps[i] * 3 / 4));
        CHECK(waited <= steps[i] * 5 / 4 * MS + 1000 * MS,
              "step %zu: restarted after %lld ms, expected about %lld", i,
              (long long)(waited / MS), (long long)steps[i]);
    }
    /* A run of backoff_max: the next restart waits backoff_min again. */
    weft_sleep(test_in_ms(450));
    int64_t t0 = weft_now();
    crash(p, 42);
    p = EXPECT_EV(0, EV_START);
    int64_t waited = weft_now() - t0;
    CHECK(waited >= 37 * MS && waited < 250 * MS, "after a long run: restarted after %lld ms",
          (long long)(waited / MS));
    CHECK(WHICH(sup, "b") == b, "the other child was restarted");
    CHECK_RC(weft_sup_stop(sup, test_in_ms(5000)), 0);
    events_close();
    return 0;
}

Test(sup, backoff_doubles_up_to_max_and_resets_after_a_long_run, .timeout = 60)
{
    run_1_and_2(backoff_main, NULL);
}

/* The jitter: restarts after the same step are spread over [0.75, 1.25] of
 * it, not all alike. */
static intptr_t jitter_main(void *arg)
{
    events_open();
    struct kid k = {.id = 0};
    weft_child_spec cs[1] = {child("a", &k)};
    weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 1);
    spec.backoff_min = 40 * MS;
    spec.backoff_max = 40 * MS; /* every step is 40 ms */
    weft_pid sup = 0;
    CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
    weft_pid p = EXPECT_EV(0, EV_START);
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 12; i++) {
        int64_t t0 = weft_now();
        crash(p, 42);
        p = EXPECT_EV(0, EV_START);
        int64_t w = weft_now() - t0;
        lo = w < lo ? w : lo;
        hi = w > hi ? w : hi;
        CHECK(w >= 30 * MS, "restart %d after %lld us", i, (long long)(w / US));
    }
    CHECK(hi - lo >= 2 * MS, "12 restarts all within %lld us: no jitter", (long long)((hi - lo) / US));
    CHECK_RC(weft_sup_stop(sup, test_in_ms(5000)), 0);
    events_close();
    return 0;
}

Test(sup, backoff_has_jitter, .timeout = 30)
{
    run_at_workers(2, jitter_main, NULL);
}

/* ---- shutdown ---------------------------------------------------------------------- */

/* weft_sup_stop stops the children in reverse start order, each after the
 * one after it has ended (one takes 30 ms), then the supervisor ends with
 * WEFT_EXIT_SHUTDOWN; a start-callback child stops like the others. */
static intptr_t stop_order_main(void *arg)
{
    events_open();
    const char *names[5] = {"a", "b", "c", "d", "e"};
    for (int round = 0; round < rounds(10); round++) {
        struct kid k[5];
        weft_child_spec cs[5];
        for (int i = 0; i < 5; i++) {
            k[i] = (struct kid){.id = i, .trap = 1};
            cs[i] = child(names[i], &k[i]);
        }
        k[2].on_stop = ON_STOP_LINGER;
        k[2].linger_ms = 30;
        cs[3].shutdown = WEFT_FOREVER;
        weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 5);
        weft_pid sup = 0;
        CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
        for (int i = 0; i < 5; i++)
            EXPECT_EV(i, EV_START);
        uint64_t ref = monitor(sup);
        CHECK_RC(weft_sup_stop(sup, test_in_ms(5000)), 0);
        for (int i = 4; i >= 0; i--)
            EXPECT_EV(i, EV_STOP);
        intptr_t reason = WAIT_DOWN(ref);
        CHECK(reason == WEFT_EXIT_SHUTDOWN, "the supervisor ended with %ld", (long)reason);
    }
    events_close();
    return 0;
}

Test(sup, stop_stops_children_in_reverse_start_order, .timeout = 60)
{
    run_1_and_2(stop_order_main, NULL);
}

/* A child that traps exits and ignores its shutdown signal is killed after
 * its shutdown time (its reason: WEFT_EXIT_KILLED); one granted WEFT_FOREVER
 * that takes a while is waited for; shutdown 0 kills at once (the child
 * never sees the signal). */
static intptr_t stubborn_main(void *arg)
{
    events_open();
    struct kid k[3] = {{.id = 0, .trap = 1, .on_stop = ON_STOP_LINGER, .linger_ms = 150},
                       {.id = 1, .trap = 1, .on_stop = ON_STOP_IGNORE},
                       {.id = 2, .trap = 1, .on_stop = ON_STOP_IGNORE}};
    weft_child_spec cs[3] = {child("slow", &k[0]), child("stubborn", &k[1]), child("instant", &k[2])};
    cs[0].shutdown = WEFT_FOREVER;
    cs[1].shutdown = 100 * MS;
    cs[2].shutdown = 0;
    weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 3);
    weft_pid sup = 0, p[3];
    CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
    uint64_t ref[3];
    for (int i = 0; i < 3; i++) {
        p[i] = EXPECT_EV(i, EV_START);
        ref[i] = monitor(p[i]);
    }
    int64_t t0 = weft_now();
    CHECK_RC(weft_sup_stop(sup, test_in_ms(5000)), 0);
    int64_t took = weft_now() - t0;
    CHECK(took >= 240 * MS, "the stop took %lld ms, expected 100 (kill) + 150 (slow)",
          (long long)(took / MS));
    intptr_t r2 = WAIT_DOWN(ref[2]);
    CHECK(r2 == WEFT_EXIT_KILLED, "shutdown 0: the child ended with %ld", (long)r2);
    EXPECT_EV(1, EV_IGNORED);
    intptr_t r1 = WAIT_DOWN(ref[1]);
    CHECK(r1 == WEFT_EXIT_KILLED, "the stubborn child ended with %ld", (long)r1);
    EXPECT_EV(0, EV_STOP);
    intptr_t r0 = WAIT_DOWN(ref[0]);
    CHECK(r0 == WEFT_EXIT_SHUTDOWN, "the slow child ended with %ld", (long)r0);
    events_close();
    return 0;
}

Test(sup, child_ignoring_shutdown_is_killed_after_its_shutdown_time, .timeout = 30)
{
    run_1_and_2(stubborn_main, NULL);
}

/* ---- nested trees ------------------------------------------------------------------- */

/* An inner supervisor whose child crashes more than its intensity allows
 * ends with WEFT_EXIT_SHUTDOWN; the outer one restarts it (and so its
 * child), leaving its other child alone. Stopping the outer stops the inner
 * tree first (reverse order). */
static intptr_t nested_main(void *arg)
{
    events_open();
    for (int round = 0; round < rounds(10); round++) {
        struct kid k[2] = {{.id = 0, .trap = 1}, {.id = 1, .trap = 1}};
        weft_child_spec inner_cs[1] = {child("x", &k[1])};
        weft_sup_spec inner = sup_spec(WEFT_ONE_FOR_ONE, inner_cs, 1);
        inner.name = "inner";
        inner.max_restarts = 1;
        weft_child_spec outer_cs[2] = {
            child("w", &k[0]),
            {.name = "inner", .start = weft_sup_start_child, .arg = &inner,
             .shutdown = WEFT_FOREVER},
        };
        weft_sup_spec outer = sup_spec(WEFT_ONE_FOR_ONE, outer_cs, 2);
        outer.name = "outer";
        weft_pid sup = 0;
        CHECK_RC(weft_sup_start(&sup, &outer, 0), 0);
        weft_pid w = EXPECT_EV(0, EV_START);
        weft_pid x = EXPECT_EV(1, EV_START);
        weft_pid in = WHICH(sup, "inner");
        CHECK(WHICH(in, "x") == x, "the inner supervisor does not name x");
        uint64_t ref = monitor(in);
        crash(x, 42);
        x = EXPECT_EV(1, EV_START); /* the inner supervisor's own restart */
        CHECK_RC(weft_sup_restarts(in, test_in_ms(5000)), 1);
        crash(x, 42);
        intptr_t reason = WAIT_DOWN(ref);
        CHECK(reason == WEFT_EXIT_SHUTDOWN, "the inner supervisor ended with %ld", (long)reason);
        weft_pid nx = EXPECT_EV(1, EV_START); /* started by the new inner supervisor */
        weft_pid nin = WHICH(sup, "inner");
        CHECK(nin != in && nin != 0, "the inner supervisor was not restarted");
        CHECK(WHICH(nin, "x") == nx, "the new inner supervisor does not name x");
        CHECK(WHICH(sup, "w") == w, "the outer supervisor's other child was restarted");
        CHECK_RC(weft_sup_restarts(sup, test_in_ms(5000)), 1);
        CHECK_RC(weft_sup_restarts(nin, test_in_ms(5000)), 0);
        ref = monitor(nin);
        CHECK_RC(weft_sup_stop(sup, test_in_ms(5000)), 0);
        EXPECT_EV(1, EV_STOP);
        EXPECT_EV(0, EV_STOP);
        reason = WAIT_DOWN(ref);
        CHECK(reason == WEFT_EXIT_SHUTDOWN, "the inner supervisor ended with %ld", (long)reason);
    }
    events_close();
    return 0;
}

Test(sup, nested_inner_exceeding_intensity_is_restarted_by_outer, .timeout = 60)
{
    run_1_and_2(nested_main, NULL);
}

/* ---- requests during restarts -------------------------------------------------------- */

struct race {
    weft_pid sup;
    int calls;
    atomic_int answered;
    atomic_int crashes; /* crash messages sent to a live child */
    atomic_int stop;
};

static const char *race_names[4] = {"k0", "k1", "k2", "k3"};

static intptr_t race_caller(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < r->calls; i++) {
        if (i % 5 == 4) {
            long n = weft_sup_restarts(r->sup, test_in_ms(10000));
            CHECK(n >= 0, "call %d: weft_sup_restarts: %ld (%s)", i, n, weft_strerror((int)n));
        } else {
            weft_pid pid = 0;
            int rc = weft_sup_which(r->sup, race_names[i % 4], &pid, test_in_ms(10000));
            CHECK(rc == 0, "call %d: weft_sup_which: %d (%s)", i, rc, weft_strerror(rc));
        }
        atomic_fetch_add(&r->answered, 1);
    }
    return 0;
}

static intptr_t race_crasher(void *arg)
{
    struct race *r = arg;
    uint64_t seed = 7;
    /* At least one crash, however fast the callers were. */
    while (!atomic_load(&r->stop) || atomic_load(&r->crashes) == 0) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        weft_pid pid = 0;
        if (weft_sup_which(r->sup, race_names[(seed >> 33) % 4], &pid, test_in_ms(10000)) == 0 &&
            pid != 0) {
            crash(pid, 42);
            atomic_fetch_add(&r->crashes, 1);
        }
        if (weft_sleep(test_in_ms(1)) < 0)
            break;
    }
    return 0;
}

/* Many weft_sup_which and weft_sup_restarts calls race with children that
 * crash and are restarted (one for all, with children that take a moment to
 * stop, so that requests arrive while the supervisor waits for an EXIT):
 * every call is answered. */
static intptr_t race_main(void *arg)
{
    int strategy = (int)(intptr_t)arg;
    events_open();
    for (int round = 0; round < rounds(5); round++) {
        struct kid k[4];
        weft_child_spec cs[4];
        for (int i = 0; i < 4; i++) {
            k[i] = (struct kid){.id = i, .trap = i % 2, .on_stop = ON_STOP_LINGER,
                                .linger_ms = 1, .quiet = 1};
            cs[i] = i < 2 ? child(race_names[i], &k[i]) : fn_child(race_names[i], &k[i]);
        }
        weft_sup_spec spec = sup_spec(strategy, cs, 4);
        spec.max_restarts = 1000000;
        weft_pid sup = 0;
        CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
        struct race r = {.sup = sup, .calls = test_sanitized() ? 100 : 400};
        enum { CALLERS = 6 };
        weft_pid callers[CALLERS];
        for (int i = 0; i < CALLERS; i++)
            callers[i] = spawn_on(race_caller, &r, i, 0);
        weft_pid crasher = spawn_on(race_crasher, &r, CALLERS, 0);
        for (int i = 0; i < CALLERS; i++)
            CHECK(join_proc(callers[i]) == 0, "caller %d", i);
        atomic_store(&r.stop, 1);
        join_proc(crasher);
        CHECK(atomic_load(&r.answered) == CALLERS * r.calls, "%d of %d calls answered",
              atomic_load(&r.answered), CALLERS * r.calls);
        /* A crash sent to a child that was live when named restarts it (or
         * the child had died in a restart already), but the supervisor may
         * not have seen its EXIT yet. */
        long restarts = 0;
        int64_t limit = test_in_ms(5000);
        while ((restarts = weft_sup_restarts(sup, limit)) == 0 && weft_now() < limit)
            weft_sleep(weft_now() + 1000000);
        CHECK(restarts > 0, "no restarts happened (%ld) after %d crashes", restarts,
              atomic_load(&r.crashes));
        CHECK_RC(weft_sup_stop(sup, test_in_ms(5000)), 0);
    }
    events_close();
    return 0;
}

Test(sup, requests_racing_with_crashing_children_are_all_answered, .timeout = 120)
{
    run_1_and_2(race_main, (void *)(intptr_t)WEFT_ONE_FOR_ALL);
    run_1_and_2(race_main, (void *)(intptr_t)WEFT_ONE_FOR_ONE);
    run_1_and_2(race_main, (void *)(intptr_t)WEFT_REST_FOR_ONE);
}

/* A request that arrives while the supervisor waits for a slow child to stop
 * stays queued and is answered once it has (not lost, not reordered with the
 * child's EXIT). */
static intptr_t slow_stop_request_main(void *arg)
{
    events_open();
    struct kid k[2] = {{.id = 0, .trap = 1, .on_stop = ON_STOP_LINGER, .linger_ms = 150},
                       {.id = 1}};
    weft_child_spec cs[2] = {child("slow", &k[0]), child("c", &k[1])};
    weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ALL, cs, 2);
    weft_pid sup = 0;
    CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
    weft_pid slow = EXPECT_EV(0, EV_START);
    weft_pid c = EXPECT_EV(1, EV_START);
    int64_t t0 = weft_now();
    crash(c, 42);
    WAIT_ENDED(c); /* its EXIT is in the supervisor's mailbox before the request */
    weft_pid now = 0;
    CHECK_RC(weft_sup_which(sup, "slow", &now, test_in_ms(5000)), 0);
    int64_t took = weft_now() - t0;
    CHECK(took >= 140 * MS, "answered after %lld ms, before the slow child had stopped",
          (long long)(took / MS));
    CHECK(now != slow && now != 0, "which answered %llx: not the restarted child",
          (unsigned long long)now);
    EXPECT_EV(0, EV_STOP);
    CHECK(EXPECT_EV(0, EV_START) == now, "which named another pid");
    EXPECT_EV(1, EV_START);
    CHECK_RC(weft_sup_stop(sup, test_in_ms(5000)), 0);
    EXPECT_EV(0, EV_STOP);
    events_close();
    return 0;
}

Test(sup, requests_queued_during_a_slow_stop_are_answered_after_it, .timeout = 30)
{
    run_1_and_2(slow_stop_request_main, NULL);
}

/* ---- bad specs and other errors -------------------------------------------------------- */

static intptr_t idle_main(void *arg)
{
    weft_msg m;
    while (weft_recv(&m, NULL, WEFT_FOREVER) == 0)
        weft_msg_free(&m);
    return 0;
}

static intptr_t bad_spec_main(void *arg)
{
    struct kid k = {.id = 0, .quiet = 1};
    weft_child_spec good[2] = {child("a", &k), child("b", &k)};
    weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, good, 2);
    weft_pid pid = 0;
    CHECK_RC(weft_sup_start(NULL, &spec, 0), -EINVAL);
    CHECK_RC(weft_sup_start(&pid, NULL, 0), -EINVAL);

    int strategies[] = {0, 4, -1};
    for (size_t i = 0; i < sizeof strategies / sizeof strategies[0]; i++) {
        weft_sup_spec s = spec;
        s.strategy = strategies[i];
        CHECK_RC(weft_sup_start(&pid, &s, 0), -EINVAL);
    }
    weft_sup_spec s = spec;
    s.nchildren = 0;
    CHECK_RC(weft_sup_start(&pid, &s, 0), -EINVAL); /* zero children */
    s = spec;
    s.children = NULL;
    CHECK_RC(weft_sup_start(&pid, &s, 0), -EINVAL);
    s = spec;
    s.period = 0;
    CHECK_RC(weft_sup_start(&pid, &s, 0), -EINVAL); /* period 0 with max_restarts */
    s.period = -5;
    CHECK_RC(weft_sup_start(&pid, &s, 0), -EINVAL);
    s = spec;
    s.backoff_min = -1;
    CHECK_RC(weft_sup_start(&pid, &s, 0), -EINVAL);

    weft_child_spec bad[2];
    s = spec;
    s.children = bad;
    bad[0] = good[0], bad[1] = good[1];
    bad[1].name = NULL;
    CHECK_RC(weft_sup_start(&pid, &s, 0), -EINVAL); /* missing name */
    bad[1].name = "";
    CHECK_RC(weft_sup_start(&pid, &s, 0), -EINVAL);
    bad[1].name = "a";
    CHECK_RC(weft_sup_start(&pid, &s, 0), -EINVAL); /* duplicate names */
    bad[1] = good[1];
    bad[1].start = NULL;
    bad[1].fn = NULL;
    CHECK_RC(weft_sup_start(&pid, &s, 0), -EINVAL); /* no way to start */
    bad[1].start = start_kid;
    bad[1].fn = kid_main;
    CHECK_RC(weft_sup_start(&pid, &s, 0), -EINVAL); /* two ways to start */
    int kinds[] = {4, -1, 100};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        bad[1] = good[1];
        bad[1].restart = kinds[i];
        CHECK_RC(weft_sup_start(&pid, &s, 0), -EINVAL); /* bad restart kind */
    }
    CHECK(pid == 0, "a failed start stored a pid");

    /* The other calls. */
    weft_pid other = spawn_proc(idle_main, NULL);
    CHECK_RC(weft_sup_stop(other, test_in_ms(100)), -ESRCH); /* not a supervisor */
    CHECK_RC(weft_sup_which(other, "a", &pid, test_in_ms(100)), -ESRCH);
    CHECK_RC(weft_sup_restarts(other, test_in_ms(100)), -ESRCH);
    CHECK_RC(weft_sup_stop(0, test_in_ms(100)), -ESRCH);
    weft_pid sup = 0;
    CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
    CHECK_RC(weft_sup_which(sup, NULL, &pid, test_in_ms(100)), -EINVAL);
    CHECK_RC(weft_sup_which(sup, "a", NULL, test_in_ms(100)), -EINVAL);
    CHECK_RC(weft_sup_which(sup, "nope", &pid, test_in_ms(1000)), -ENOENT);
    CHECK_RC(weft_sup_which(sup, "", &pid, test_in_ms(1000)), -ENOENT);
    CHECK_RC(weft_sup_stop(sup, test_in_ms(5000)), 0);
    CHECK_RC(weft_kill(other, WEFT_EXIT_KILL), 0);
    join_proc(other);
    return 0;
}

Test(sup, bad_specs_and_bad_arguments_give_the_named_codes, .timeout = 30)
{
    run_at_workers(1, bad_spec_main, NULL);
}

/* A child that fails to start: the children started before it are stopped
 * (in reverse), those after it never start, weft_sup_start returns its
 * error, and a linked caller that does not trap exits lives on. */
static int start_fails(void *arg, weft_pid *pid)
{
    return -EIO;
}

static intptr_t start_failure_main(void *arg)
{
    events_open();
    struct kid k[4] = {{.id = 0, .trap = 1}, {.id = 1, .trap = 1}, {.id = 2}, {.id = 3}};
    weft_child_spec cs[4] = {child("a", &k[0]), child("b", &k[1]),
                             {.name = "bad", .start = start_fails}, child("d", &k[3])};
    weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 4);
    for (int link = 0; link <= 1; link++) {
        weft_pid sup = 0;
        CHECK_RC(weft_sup_start(&sup, &spec, link), -EIO);
        CHECK(sup == 0, "a failed start stored a pid");
        EXPECT_EV(0, EV_START);
        EXPECT_EV(1, EV_START);
        EXPECT_EV(1, EV_STOP);
        EXPECT_EV(0, EV_STOP);
        EXPECT_NO_EV(20);
    }
    CHECK(atomic_load(&k[3].starts) == 0, "a child after the failed one started");
    weft_msg m;
    CHECK_RC(weft_recv(&m, NULL, 0), -ETIMEDOUT); /* no EXIT, no reply left over */
    events_close();
    return 0;
}

Test(sup, start_failure_stops_started_children_and_returns_the_error, .timeout = 30)
{
    run_1_and_2(start_failure_main, NULL);
}

/* ---- exit signals and links ------------------------------------------------------------ */

struct parent_arg {
    weft_chan out; /* the supervisor's pid */
    intptr_t reason;
};

static intptr_t parent_main(void *arg)
{
    struct parent_arg *pa = arg;
    static struct kid k[3];
    static weft_child_spec cs[3];
    for (int i = 0; i < 3; i++) {
        k[i] = (struct kid){.id = i, .trap = 1};
        cs[i] = child(abc[i], &k[i]);
    }
    weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 3);
    weft_pid sup = 0;
    CHECK_RC(weft_sup_start(&sup, &spec, 1), 0);
    CHECK_RC(weft_chan_send(pa->out, &sup, sizeof sup, WEFT_FOREVER), 0);
    weft_msg m;
    CHECK_RC(weft_recv(&m, &(weft_match){.tag = TAG_HELLO}, test_in_ms(5000)), 0);
    weft_msg_free(&m);
    return pa->reason;
}

/* The parent (the linked caller of weft_sup_start) ends: the supervisor
 * stops its children in reverse and ends with the parent's reason, normal
 * or not. */
static intptr_t parent_exit_main(void *arg)
{
    events_open();
    intptr_t reasons[] = {7, WEFT_EXIT_NORMAL, WEFT_EXIT_SHUTDOWN};
    for (size_t r = 0; r < sizeof reasons / sizeof reasons[0]; r++) {
        struct parent_arg pa = {.out = make_chan(sizeof(weft_pid), 1), .reason = reasons[r]};
        weft_pid parent = spawn_proc(parent_main, &pa);
        weft_pid sup = 0;
        CHECK_RC(weft_chan_recv(pa.out, &sup, sizeof sup, test_in_ms(5000)), 0);
        for (int i = 0; i < 3; i++)
            EXPECT_EV(i, EV_START);
        uint64_t ref = monitor(sup);
        CHECK_RC(weft_send(parent, TAG_HELLO, NULL, 0, 0), 0);
        for (int i = 2; i >= 0; i--)
            EXPECT_EV(i, EV_STOP);
        intptr_t reason = WAIT_DOWN(ref);
        CHECK(reason == reasons[r], "the parent ended with %ld, the supervisor with %ld",
              (long)reasons[r], (long)reason);
        CHECK(join_proc(parent) == reasons[r], "the parent's result");
        CHECK_RC(weft_chan_release(pa.out), 0);
    }
    events_close();
    return 0;
}

Test(sup, parent_exit_stops_children_and_ends_with_its_reason, .timeout = 30)
{
    run_1_and_2(parent_exit_main, NULL);
}

/* An exit signal from a process that is neither a child nor the parent:
 * abnormal stops it (children in reverse, its reason), normal is ignored. */
static intptr_t kill_main(void *arg)
{
    events_open();
    struct kid k[2] = {{.id = 0, .trap = 1}, {.id = 1, .trap = 1}};
    weft_child_spec cs[2] = {child("a", &k[0]), child("b", &k[1])};
    weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 2);
    weft_pid sup = 0;
    CHECK_RC(weft_sup_start(&sup, &spec, 0), 0);
    weft_pid a = EXPECT_EV(0, EV_START);
    EXPECT_EV(1, EV_START);
    uint64_t ref = monitor(sup);
    CHECK_RC(weft_kill(sup, WEFT_EXIT_NORMAL), 0);
    CHECK(WHICH(sup, "a") == a, "a normal exit signal changed something");
    EXPECT_NO_EV(10);
    CHECK_RC(weft_kill(sup, 99), 0);
    EXPECT_EV(1, EV_STOP);
    EXPECT_EV(0, EV_STOP);
    intptr_t reason = WAIT_DOWN(ref);
    CHECK(reason == 99, "the supervisor ended with %ld", (long)reason);
    events_close();
    return 0;
}

Test(sup, abnormal_exit_signal_stops_it_normal_is_ignored, .timeout = 30)
{
    run_1_and_2(kill_main, NULL);
}

/* The linked caller that stops its supervisor (which ends with the abnormal
 * WEFT_EXIT_SHUTDOWN) does not end with it. */
static intptr_t linked_stop_main(void *arg)
{
    events_open();
    struct kid k = {.id = 0, .trap = 1};
    weft_child_spec cs[1] = {child("a", &k)};
    weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 1);
    for (int i = 0; i < 3; i++) {
        weft_pid sup = 0;
        CHECK_RC(weft_sup_start(&sup, &spec, 1), 0);
        EXPECT_EV(0, EV_START);
        CHECK_RC(weft_sup_stop(sup, test_in_ms(5000)), 0);
        EXPECT_EV(0, EV_STOP);
        CHECK_RC(weft_yield(), 0); /* still alive: no exit signal */
    }
    weft_msg m;
    CHECK_RC(weft_recv(&m, NULL, test_in_ms(20)), -ETIMEDOUT);
    events_close();
    return 0;
}

Test(sup, stop_by_its_linked_caller_does_not_end_the_caller, .timeout = 30)
{
    run_1_and_2(linked_stop_main, NULL);
}

/* ---- outside threads and actors ------------------------------------------------------ */

/* weft_sup_start and weft_sup_stop work from a thread outside the runtime
 * (the handshake is a channel); link from there is misuse; weft_sup_which
 * is a call, which outside threads cannot make. */
Test(sup, start_and_stop_from_an_outside_thread, .timeout = 30)
{
    for (unsigned workers = 1; workers <= 2; workers++) {
        start_workers(workers);
        ASSERT_OK(weft_chan_make(&events, sizeof(struct ev), 64));
        struct kid k[2] = {{.id = 0, .trap = 1}, {.id = 1, .trap = 1}};
        weft_child_spec cs[2] = {child("a", &k[0]), child("b", &k[1])};
        weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 2);
        weft_pid sup = 0;
        ASSERT_RC(weft_sup_start(&sup, &spec, 1), -EPERM);
        ASSERT_OK(weft_sup_start(&sup, &spec, 0));
        cr_assert_neq(sup, 0);
        struct ev e;
        for (int i = 0; i < 2; i++) {
            ASSERT_OK(weft_chan_recv(events, &e, sizeof e, test_in_ms(5000)));
            cr_assert(e.id == i && e.kind == EV_START, "event %d %d", e.id, e.kind);
        }
        weft_pid pid;
        ASSERT_RC(weft_sup_which(sup, "a", &pid, test_in_ms(100)), -EPERM);
        ASSERT_OK(weft_sup_stop(sup, test_in_ms(5000)));
        for (int i = 1; i >= 0; i--) {
            ASSERT_OK(weft_chan_recv(events, &e, sizeof e, 0)); /* stopped before stop returned */
            cr_assert(e.id == i && e.kind == EV_STOP, "event %d %d", e.id, e.kind);
        }
        ASSERT_RC(weft_sup_stop(sup, test_in_ms(100)), -ESRCH);
        /* An exit signal from a thread (from: 0) while a child waits for its
         * restart (its pid reads 0): abnormal, it ends the supervisor. */
        struct kid k2 = {.id = 5};
        weft_child_spec cs2[1] = {child("a", &k2)};
        weft_sup_spec spec2 = sup_spec(WEFT_ONE_FOR_ONE, cs2, 1);
        spec2.backoff_min = spec2.backoff_max = 10000 * MS;
        ASSERT_OK(weft_sup_start(&sup, &spec2, 0));
        ASSERT_OK(weft_chan_recv(events, &e, sizeof e, test_in_ms(5000)));
        cr_assert(e.id == 5 && e.kind == EV_START, "event %d %d", e.id, e.kind);
        weft_chan gone; /* closed when the supervisor ends */
        ASSERT_OK(weft_chan_make(&gone, 1, 1));
        ASSERT_OK(weft_chan_set_owner(gone, sup));
        intptr_t reason = 42;
        ASSERT_OK(weft_send(e.pid, TAG_CRASH, &reason, sizeof reason, 0));
        ASSERT_OK(weft_sleep(test_in_ms(100))); /* the supervisor has had the EXIT */
        ASSERT_OK(weft_kill(sup, 99));
        char c;
        ASSERT_RC(weft_chan_recv(gone, &c, 1, test_in_ms(5000)), -EPIPE);
        ASSERT_OK(weft_chan_release(gone));
        /* A failed start from a thread. */
        weft_child_spec bad[1] = {{.name = "bad", .start = start_fails}};
        weft_sup_spec bspec = sup_spec(WEFT_ONE_FOR_ONE, bad, 1);
        ASSERT_RC(weft_sup_start(&sup, &bspec, 0), -EIO);
        ASSERT_OK(weft_chan_release(events));
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        ASSERT_CHECKS();
    }
}

/* From an actor's handler, which cannot wait, weft_sup_start and
 * weft_sup_stop fail with -EPERM (and start nothing). */
struct actor_result {
    weft_pid main;
    weft_pid sup;
};

static void actor_handler(void *state, weft_msg *msg)
{
    struct actor_result *ar = state;
    static struct kid k = {.id = 0};
    static weft_child_spec cs[1];
    cs[0] = child("a", &k);
    weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 1);
    weft_pid pid = 0;
    int rc[3];
    rc[0] = weft_sup_start(&pid, &spec, 0);
    rc[1] = weft_sup_start(&pid, &spec, 1);
    rc[2] = weft_sup_stop(ar->sup, 0);
    CHECK_RC(weft_send(ar->main, TAG_HELLO, rc, sizeof rc, 0), 0);
}

static intptr_t actor_main(void *arg)
{
    events_open();
    struct kid k = {.id = 0, .trap = 1};
    weft_child_spec cs[1] = {child("a", &k)};
    weft_sup_spec spec = sup_spec(WEFT_ONE_FOR_ONE, cs, 1);
    struct actor_result ar = {.main = weft_self()};
    CHECK_RC(weft_sup_start(&ar.sup, &spec, 0), 0);
    EXPECT_EV(0, EV_START);
    weft_pid actor;
    CHECK_RC(weft_actor_spawn(&actor, actor_handler, &ar, NULL), 0);
    CHECK_RC(weft_send(actor, TAG_HELLO, NULL, 0, 0), 0);
    weft_msg m;
    CHECK_RC(weft_recv(&m, &(weft_match){.tag = TAG_HELLO}, test_in_ms(5000)), 0);
    int rc[3] = {0, 0, 0};
    if (m.size == sizeof rc)
        memcpy(rc, m.data, sizeof rc);
    weft_msg_free(&m);
    for (int i = 0; i < 3; i++)
        CHECK(rc[i] == -EPERM, "call %d from an actor: %d (%s)", i, rc[i], weft_strerror(rc[i]));
    EXPECT_NO_EV(20); /* nothing started, nothing stopped */
    CHECK_RC(weft_sup_stop(ar.sup, test_in_ms(5000)), 0);
    EXPECT_EV(0, EV_STOP);
    CHECK_RC(weft_kill(actor, WEFT_EXIT_KILL), 0);
    events_close();
    return 0;
}

Test(sup, actor_handler_gets_eperm, .timeout = 30)
{
    run_1_and_2(actor_main, NULL);
}

/* ---- ends the supervisor learns of by monitor, and a killed supervisor ------------------- */

static weft_pid own_sup;

/* A child that stops its own supervisor: weft_sup_stop unlinks it first
 * (so that it would not end with the supervisor's SHUTDOWN), and the
 * supervisor learns of its end by its monitor. */
static intptr_t stop_own_sup(void *arg)
{
    weft_sleep(test_in_ms(10));
    weft_sup_stop(own_sup, WEFT_FOREVER); /* ends this process on the way */
    return 0;
}

static intptr_t child_stops_sup_main(void *arg)
{
    weft_child_spec ch[2] = {{.name = "idle", .fn = idle_main, .shutdown = 100 * MS},
                             {.name = "stopper", .fn = stop_own_sup, .shutdown = 100 * MS}};
    weft_sup_spec s = sup_spec(WEFT_ONE_FOR_ONE, ch, 2);
    CHECK_RC(weft_sup_start(&own_sup, &s, 0), 0);
    uint64_t ref = monitor(own_sup);
    intptr_t why = WAIT_DOWN(ref);
    CHECK(why == WEFT_EXIT_SHUTDOWN, "the supervisor ended with %ld", (long)why);
    weft_pid p;
    CHECK_RC(weft_sup_which(own_sup, "idle", &p, test_in_ms(100)), -ESRCH);
    return 0;
}

Test(sup, a_child_that_stops_its_own_supervisor, .timeout = 60)
{
    run_1_and_2(child_stops_sup_main, NULL);
}

/* A child whose start does not link it: the supervisor still sees it end
 * (by its monitor) when it stops it, instead of waiting forever. */
static int start_unlinked(void *arg, weft_pid *pid)
{
    return weft_spawn(pid, idle_main, NULL, NULL) < 0 ? -1 : 0;
}

static intptr_t unlinked_child_main(void *arg)
{
    weft_child_spec ch[1] = {{.name = "loose", .start = start_unlinked, .shutdown = 50 * MS}};
    weft_sup_spec s = sup_spec(WEFT_ONE_FOR_ONE, ch, 1);
    weft_pid sup, kid;
    CHECK_RC(weft_sup_start(&sup, &s, 0), 0);
    kid = which(__LINE__, sup, "loose");
    uint64_t ref = monitor(kid);
    CHECK_RC(weft_sup_stop(sup, test_in_ms(10000)), 0);
    intptr_t why = WAIT_DOWN(ref);
    CHECK(why == WEFT_EXIT_SHUTDOWN, "the child ended with %ld", (long)why);
    CHECK_RC(weft_join(kid, NULL, WEFT_FOREVER), 0);
    return 0;
}

Test(sup, stopping_a_child_its_start_did_not_link, .timeout = 60)
{
    run_1_and_2(unlinked_child_main, NULL);
}

/* weft_kill(sup, WEFT_EXIT_KILL) ends it in the middle of a wait: its
 * children end with it (linked), it is no longer a supervisor to
 * weft_sup_*, and it leaves nothing allocated. */
static atomic_long held;
static void *counting(void *ud, void *p, size_t old, size_t n)
{
    if (p)
        atomic_fetch_sub(&held, (long)old);
    if (!n) {
        free(p);
        return NULL;
    }
    void *q = realloc(p, n);
    if (q)
        atomic_fetch_add(&held, (long)n);
    return q;
}

static intptr_t killed_sup_main(void *arg)
{
    weft_child_spec ch[2] = {{.name = "a", .fn = idle_main}, {.name = "b", .fn = idle_main}};
    weft_sup_spec s = sup_spec(WEFT_ONE_FOR_ALL, ch, 2);
    weft_pid sup;
    CHECK_RC(weft_sup_start(&sup, &s, 0), 0);
    uint64_t ra = monitor(which(__LINE__, sup, "a")), rb = monitor(which(__LINE__, sup, "b"));
    uint64_t ref = monitor(sup);
    CHECK_RC(weft_kill(sup, WEFT_EXIT_KILL), 0);
    CHECK(WAIT_DOWN(ref) == WEFT_EXIT_KILLED, "the supervisor's reason");
    CHECK(WAIT_DOWN(ra) == WEFT_EXIT_KILLED, "child a's reason");
    CHECK(WAIT_DOWN(rb) == WEFT_EXIT_KILLED, "child b's reason");
    CHECK_RC(weft_sup_stop(sup, test_in_ms(100)), -ESRCH);
    CHECK(weft_sup_restarts(sup, test_in_ms(100)) == -ESRCH, "restarts of a killed supervisor");
    return 0;
}

Test(sup, a_killed_supervisor_leaves_nothing_behind, .timeout = 60)
{
    for (unsigned workers = 1; workers <= 2; workers++) {
        ASSERT_OK(weft_set_allocator(counting, NULL));
        run_at_workers(workers, killed_sup_main, NULL);
        cr_assert_eq(atomic_load(&held), 0, "%u workers: %ld bytes still held", workers,
                     atomic_load(&held));
        ASSERT_OK(weft_set_allocator(NULL, NULL));
    }
}
