/* test-offload.c: the offload pool (weft_offload), from weft.h's contract:
 * fn runs on a helper thread and its effects are seen after the call; the
 * pool never runs more than offload_threads functions at once; workers go
 * on running processes meanwhile; a deadline or a cancellation drops a
 * queued job, abandons a running one to abandon(arg), or (abandon NULL)
 * waits for fn; threads start lazily and weft_stop joins them; bad input,
 * no memory and no threads give their codes.
 *
 * Blocking functions wait on gates that the test opens, so that the
 * assertions are about order and counts; the few durations (deadlines of
 * tens of ms) only decide which of two orders is tested, never pass/fail. */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define TEST_PROC_CHECKS
#include "test.h"
#include "../src/fault.h"

/* ---- helpers ------------------------------------------------------------------------- */

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* A gate that blocking functions wait on (helper threads: plain sleeps). */
struct gate {
    atomic_int open;
    atomic_int entered;   /* functions that reached the gate */
    atomic_int passed;    /* functions that went through it */
};

static void gate_pass(struct gate *g)
{
    atomic_fetch_add(&g->entered, 1);
    while (!atomic_load(&g->open))
        sleep_ms(1);
    atomic_fetch_add(&g->passed, 1);
}

/* Waits (a process, or a thread) until the count reaches n. */
static void await_count(atomic_int *count, int n)
{
    while (atomic_load(count) < n) {
        if (weft_self())
            weft_sleep(weft_now() + MS);
        else
            sleep_ms(1);
    }
}

/* A job whose fn waits at gate, then marks fn_done; abandon checks that fn
 * had returned and counts itself. */
struct gated {
    struct gate *gate;
    atomic_int fn_runs, fn_done, abandons, abandon_after_fn;
};

static void gated_fn(void *arg)
{
    struct gated *j = arg;
    atomic_fetch_add(&j->fn_runs, 1);
    gate_pass(j->gate);
    atomic_fetch_add(&j->fn_done, 1);
}

static void gated_abandon(void *arg)
{
    struct gated *j = arg;
    if (atomic_load(&j->fn_done) == 1)
        atomic_fetch_add(&j->abandon_after_fn, 1);
    atomic_fetch_add(&j->abandons, 1);
}

static void count_fn(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* Counts fn and abandon apart, for calls that must run neither fn nor
 * both. */
struct tally {
    atomic_int fn_runs, abandons;
};

static void tally_fn(void *arg)
{
    atomic_fetch_add(&((struct tally *)arg)->fn_runs, 1);
}

static void tally_abandon(void *arg)
{
    atomic_fetch_add(&((struct tally *)arg)->abandons, 1);
}

static int run_cfg(weft_config *cfg, weft_proc_fn fn, void *arg)
{
    intptr_t r = -12345;
    int rc = weft_run(fn, arg, cfg, &r);
    ASSERT_CHECKS();
    ASSERT_RC(rc, 0);
    return (int)r;
}

static void run_with(unsigned workers, unsigned threads, weft_proc_fn fn, void *arg)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = workers;
    cfg.offload_threads = threads;
    cr_assert_eq(run_cfg(&cfg, fn, arg), 0, "main failed");
}

static void start_with(unsigned workers, unsigned threads)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = workers;
    cfg.offload_threads = threads;
    ASSERT_OK(weft_start(&cfg));
}

/* Threads of this program now (/proc/self/task). */
static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* ---- fn runs, and its effects are seen ------------------------------------------------- */

struct effect {
    int in;
    int out;
    pthread_t thread;
    char text[32];
};

static void effect_fn(void *arg)
{
    struct effect *e = arg;
    e->out = e->in * 2;
    e->thread = pthread_self();
    snprintf(e->text, sizeof e->text, "ran %d", e->in);
}

static intptr_t effect_main(void *arg)
{
    for (int i = 0; i < 20; i++) {
        struct effect e = {.in = i}; /* on the process's stack */
        CHECK_RC(weft_offload(effect_fn, &e, NULL, WEFT_FOREVER), 0);
        CHECK(e.out == 2 * i, "round %d: out %d", i, e.out);
        char want[32];
        snprintf(want, sizeof want, "ran %d", i);
        CHECK(strcmp(e.text, want) == 0, "round %d: text '%s'", i, e.text);
        CHECK(!pthread_equal(e.thread, pthread_self()), "fn ran on the worker's thread");
    }
    /* A deadline that does not pass changes nothing. */
    struct effect e = {.in = 21};
    CHECK_RC(weft_offload(effect_fn, &e, NULL, weft_now() + 60000 * MS), 0);
    CHECK(e.out == 42, "out %d", e.out);
    return 0;
}

Test(offload, fn_runs_and_its_effect_is_visible_after_the_call, .timeout = 30)
{
    run_with(1, 0, effect_main, NULL);
    run_with(2, 0, effect_main, NULL);
}

/* The only process waits for a helper: no deadlock (weft_run would say
 * -EDEADLK if the detector took the wait for one). */
static void nap_fn(void *arg)
{
    sleep_ms(100);
    atomic_store((atomic_int *)arg, 1);
}

static intptr_t lonely_main(void *arg)
{
    atomic_int done = 0;
    CHECK_RC(weft_offload(nap_fn, &done, NULL, WEFT_FOREVER), 0);
    CHECK(atomic_load(&done) == 1, "fn did not run");
    return 0;
}

Test(offload, a_process_waiting_for_a_helper_is_no_deadlock, .timeout = 30)
{
    run_with(1, 0, lonely_main, NULL);
}

/* The waiting process is not an attached thread: a helper's stray
 * weft_thread_detach is misuse (-EINVAL) and takes nothing from the count
 * the detector reads, which still reports a deadlock after the call. */
static void stray_detach_fn(void *arg)
{
    sleep_ms(20);
    *(int *)arg = weft_thread_detach();
}

static intptr_t stray_detach_main(void *arg)
{
    int rc = 1;
    CHECK_RC(weft_offload(stray_detach_fn, &rc, NULL, WEFT_FOREVER), 0);
    CHECK_RC(rc, -EINVAL);
    weft_chan lonely = make_chan(sizeof(int), 0);
    int v;
    CHECK_RC(weft_chan_recv(lonely, &v, sizeof v, WEFT_FOREVER), -ECANCELED);
    return 0;
}

Test(offload, a_stray_detach_takes_nothing_from_a_waiting_process, .timeout = 30)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = 1;
    intptr_t r = -12345;
    ASSERT_RC(weft_run(stray_detach_main, NULL, &cfg, &r), -EDEADLK);
    ASSERT_CHECKS();
}

/* ---- the bound -------------------------------------------------------------------------- */

enum { BOUND = 4, BOUND_PROCS = 200 };

static struct {
    atomic_int running, max_running, completed;
    pthread_mutex_t lock;
    pthread_t seen[BOUND_PROCS];
    int nseen;
} bound = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void bound_fn(void *arg)
{
    int now = atomic_fetch_add(&bound.running, 1) + 1;
    int max = atomic_load(&bound.max_running);
    while (now > max && !atomic_compare_exchange_weak(&bound.max_running, &max, now))
        ;
    pthread_mutex_lock(&bound.lock);
    int i = 0;
    while (i < bound.nseen && !pthread_equal(bound.seen[i], pthread_self()))
        i++;
    if (i == bound.nseen)
        bound.seen[bound.nseen++] = pthread_self();
    pthread_mutex_unlock(&bound.lock);
    sleep_ms(20);
    atomic_fetch_sub(&bound.running, 1);
    atomic_fetch_add(&bound.completed, 1);
}

static intptr_t bound_proc(void *arg)
{
    return weft_offload(bound_fn, NULL, NULL, WEFT_FOREVER);
}

static intptr_t bound_main(void *arg)
{
    static weft_pid pids[BOUND_PROCS];
    for (int i = 0; i < BOUND_PROCS; i++)
        pids[i] = spawn_proc(bound_proc, NULL);
    for (int i = 0; i < BOUND_PROCS; i++) {
        intptr_t r = -1;
        CHECK_RC(weft_join(pids[i], &r, WEFT_FOREVER), 0);
        CHECK(r == 0, "process %d: weft_offload returned %ld", i, (long)r);
    }
    return 0;
}

Test(offload, never_more_than_offload_threads_run_at_once, .timeout = 60)
{
    run_with(2, BOUND, bound_main, NULL);
    cr_assert_eq(atomic_load(&bound.completed), BOUND_PROCS);
    ASSERT_CMP(atomic_load(&bound.max_running), <=, BOUND);
    ASSERT_CMP(bound.nseen, <=, BOUND);
    /* 200 jobs of 20 ms on 4 threads: all 4 ran together at some point. */
    ASSERT_CMP(atomic_load(&bound.max_running), ==, BOUND);
}

/* ---- workers go on while fns block ------------------------------------------------------ */

enum { ROUNDS = 1000 };
static atomic_int rounds;
static atomic_int blocked_fns;

/* Blocks its helper until the ping-pong below has made ROUNDS rounds: only
 * possible if the one worker runs it meanwhile. */
static void until_rounds_fn(void *arg)
{
    atomic_fetch_add(&blocked_fns, 1);
    while (atomic_load(&rounds) < ROUNDS)
        sleep_ms(1);
}

static intptr_t blocker_proc(void *arg)
{
    return weft_offload(until_rounds_fn, NULL, NULL, WEFT_FOREVER);
}

static intptr_t echo_proc(void *arg)
{
    weft_chan *ch = arg;
    int v;
    while (weft_chan_recv(ch[0], &v, sizeof v, WEFT_FOREVER) == 0)
        if (weft_chan_send(ch[1], &v, sizeof v, WEFT_FOREVER) != 0)
            break;
    return 0;
}

static intptr_t progress_main(void *arg)
{
    weft_pid blockers[BOUND];
    for (int i = 0; i < BOUND; i++)
        blockers[i] = spawn_proc(blocker_proc, NULL);
    await_count(&blocked_fns, BOUND); /* every helper is blocked now */
    weft_chan ch[2];
    CHECK_RC(weft_chan_make(&ch[0], sizeof(int), 0), 0);
    CHECK_RC(weft_chan_make(&ch[1], sizeof(int), 0), 0);
    weft_pid echo = spawn_proc(echo_proc, ch);
    for (int i = 0; i < ROUNDS; i++) {
        int v = i, back = -1;
        CHECK_RC(weft_chan_send(ch[0], &v, sizeof v, WEFT_FOREVER), 0);
        CHECK_RC(weft_chan_recv(ch[1], &back, sizeof back, WEFT_FOREVER), 0);
        CHECK(back == i, "echo %d for %d", back, i);
        atomic_fetch_add(&rounds, 1);
    }
    CHECK_RC(weft_chan_close(ch[0]), 0);
    CHECK_RC(weft_join(echo, NULL, WEFT_FOREVER), 0);
    for (int i = 0; i < BOUND; i++) {
        intptr_t r = -1;
        CHECK_RC(weft_join(blockers[i], &r, WEFT_FOREVER), 0);
        CHECK(r == 0, "blocker %d: %ld", i, (long)r);
    }
    CHECK_RC(weft_chan_release(ch[0]), 0);
    CHECK_RC(weft_chan_release(ch[1]), 0);
    return 0;
}

Test(offload, one_worker_runs_processes_while_every_helper_blocks, .timeout = 60)
{
    run_with(1, BOUND, progress_main, NULL);
    ASSERT_CMP(atomic_load(&rounds), ==, ROUNDS);
}

/* ---- deadlines ------------------------------------------------------------------------- */

static struct gate gate1;
static struct gated first = {.gate = &gate1};
static atomic_int late_runs, next_runs;
static struct tally late_handed;

static intptr_t gated_proc(void *arg)
{
    return weft_offload(gated_fn, arg, NULL, WEFT_FOREVER);
}

/* One helper, busy at gate1: a job queued behind it with a deadline times
 * out and never runs, not even once the helper is free; with abandon, arg
 * goes to abandon all the same (the code tells who owns arg). */
static intptr_t queued_main(void *arg)
{
    weft_pid busy = spawn_proc(gated_proc, &first);
    await_count(&gate1.entered, 1);
    CHECK_RC(weft_offload(count_fn, &late_runs, NULL, weft_now() + 50 * MS), -ETIMEDOUT);
    CHECK_RC(weft_offload(tally_fn, &late_handed, tally_abandon, weft_now() + 20 * MS),
             -ETIMEDOUT);
    CHECK(atomic_load(&first.fn_done) == 0, "the gate was open");
    atomic_store(&gate1.open, 1);
    intptr_t r = -1;
    CHECK_RC(weft_join(busy, &r, WEFT_FOREVER), 0);
    CHECK(r == 0, "the busy job: %ld", (long)r);
    /* FIFO: a job queued now runs after anything still queued. */
    CHECK_RC(weft_offload(count_fn, &next_runs, NULL, WEFT_FOREVER), 0);
    CHECK(atomic_load(&late_runs) == 0, "a timed-out job ran %d times", atomic_load(&late_runs));
    return 0;
}

Test(offload, a_job_whose_deadline_passes_while_queued_never_runs, .timeout = 30)
{
    run_with(1, 1, queued_main, NULL);
    cr_assert_eq(atomic_load(&late_runs), 0);
    cr_assert_eq(atomic_load(&next_runs), 1);
    cr_assert_eq(atomic_load(&late_handed.fn_runs), 0);
    cr_assert_eq(atomic_load(&late_handed.abandons), 1);
    cr_assert_eq(atomic_load(&first.abandons), 0);
}

/* A call whose deadline may pass before a helper takes its job (a thread
 * slow to start on a loaded machine): retried, with a deadline ms later,
 * until fn has begun, since a job that timed out in the queue never runs. */
static int offload_until_begun(weft_offload_fn *fn, struct gated *j, weft_offload_fn *abandon,
                               int64_t ms, _Atomic int64_t *deadline)
{
    for (;;) {
        int rc = weft_offload(fn, j, abandon, atomic_load(deadline));
        if (rc != -ETIMEDOUT || atomic_load(&j->gate->entered) > 0)
            return rc;
        atomic_store(deadline, weft_now() + ms * MS);
    }
}

static struct gate gate2;
static struct gated abandoned = {.gate = &gate2};
static atomic_int dropped_abandons;

/* With one helper, the abandon of a job dropped from the queue runs before
 * the retried job's fn. */
static void count_abandon(void *arg)
{
    struct gated *j = arg;
    if (atomic_load(&j->gate->entered) == 0) /* dropped from the queue: retried */
        atomic_fetch_add(&dropped_abandons, 1);
    else
        gated_abandon(j);
}

/* A deadline while fn runs, with abandon: the call returns -ETIMEDOUT while
 * fn is still at the gate; abandon runs once, after fn. */
static intptr_t abandon_main(void *arg)
{
    _Atomic int64_t deadline = weft_now() + 50 * MS;
    CHECK_RC(offload_until_begun(gated_fn, &abandoned, count_abandon, 50, &deadline), -ETIMEDOUT);
    CHECK(atomic_load(&gate2.entered) == 1, "fn had not started: %d", atomic_load(&gate2.entered));
    CHECK(atomic_load(&abandoned.fn_done) == 0, "returned after fn");
    CHECK(atomic_load(&abandoned.abandons) == 0, "abandon ran before fn returned");
    atomic_store(&gate2.open, 1);
    await_count(&abandoned.abandons, 1);
    CHECK(atomic_load(&abandoned.abandon_after_fn) == 1, "abandon ran before fn returned");
    return 0;
}

Test(offload, a_deadline_while_fn_runs_hands_arg_to_abandon, .timeout = 30)
{
    run_with(1, 1, abandon_main, NULL);
    /* weft_run has stopped the pool: no second call can come now. */
    cr_assert_eq(atomic_load(&abandoned.fn_runs), 1);
    cr_assert_eq(atomic_load(&abandoned.abandons), 1);
    cr_assert_eq(atomic_load(&abandoned.abandon_after_fn), 1);
}

static struct gate gate3;
static struct gated waited = {.gate = &gate3};
static _Atomic int64_t waited_deadline;

/* Opens the gate well after the deadline of the call whose fn waits there. */
static intptr_t opener_proc(void *arg)
{
    struct gate *g = arg;
    await_count(&g->entered, 1);
    weft_sleep(atomic_load(&waited_deadline) + 30 * MS);
    atomic_store(&g->open, 1);
    return 0;
}

/* Without abandon the call outwaits its deadline: it returns 0 once fn has
 * returned, which the gate allows only after the deadline. */
static intptr_t no_abandon_main(void *arg)
{
    atomic_store(&gate3.open, 0); /* it runs twice */
    atomic_store(&gate3.entered, 0);
    atomic_store(&waited.fn_done, 0);
    atomic_store(&waited_deadline, weft_now() + 30 * MS);
    weft_pid opener = spawn_proc(opener_proc, &gate3);
    CHECK_RC(offload_until_begun(gated_fn, &waited, NULL, 30, &waited_deadline), 0);
    CHECK(atomic_load(&waited.fn_done) == 1, "returned before fn");
    CHECK(weft_now() >= atomic_load(&waited_deadline), "the gate opened before the deadline");
    CHECK_RC(weft_join(opener, NULL, WEFT_FOREVER), 0);
    return 0;
}

Test(offload, without_abandon_the_call_waits_for_fn_past_its_deadline, .timeout = 30)
{
    run_with(1, 1, no_abandon_main, NULL);
    run_with(2, 1, no_abandon_main, NULL);
}

/* ---- cancellation: weft_stop and exit signals -------------------------------------------- */

enum { UNSET = 12345 };
static struct gate stop_gate;
static struct gated stop_abandoned = {.gate = &stop_gate};
static struct gated stop_waited = {.gate = &stop_gate};
static atomic_int stop_queued_runs;
static atomic_int r_abandoned = UNSET, r_waited = UNSET, r_queued = UNSET, r_thread = UNSET;
static atomic_int waited_stack_ok;
static atomic_int submitted;

static intptr_t stop_abandoned_proc(void *arg)
{
    atomic_store(&r_abandoned, weft_offload(gated_fn, &stop_abandoned, gated_abandon, WEFT_FOREVER));
    return 0;
}

struct on_stack {
    struct gated *g;
    int written;
};

static void on_stack_fn(void *arg)
{
    struct on_stack *s = arg;
    gated_fn(s->g);
    s->written = 7; /* after the gate: the caller must still be waiting */
}

static intptr_t stop_waited_proc(void *arg)
{
    struct on_stack s = {.g = &stop_waited};
    atomic_store(&r_waited, weft_offload(on_stack_fn, &s, NULL, WEFT_FOREVER));
    atomic_store(&waited_stack_ok, s.written == 7);
    return 0;
}

/* Its deadline passes while fn runs (it waits on), then the stop comes. */
static struct gated stop_overdue = {.gate = &stop_gate};
static atomic_int r_overdue = UNSET, overdue_stack_ok;
static _Atomic int64_t overdue_deadline;

static intptr_t stop_overdue_proc(void *arg)
{
    struct on_stack s = {.g = &stop_overdue};
    int rc;
    do { /* until fn has begun: a job that timed out in the queue never runs */
        atomic_store(&overdue_deadline, weft_now() + 10 * MS);
        rc = weft_offload(on_stack_fn, &s, NULL, atomic_load(&overdue_deadline));
    } while (rc == -ETIMEDOUT && atomic_load(&stop_overdue.fn_runs) == 0);
    atomic_store(&r_overdue, rc);
    atomic_store(&overdue_stack_ok, s.written == 7);
    return 0;
}

/* An outside thread outwaits fn as a process does. */
static struct gated stop_thread_waited = {.gate = &stop_gate};
static atomic_int r_thread_waited = UNSET, thread_stack_ok;

static void *stop_waiting_thread(void *arg)
{
    struct on_stack s = {.g = &stop_thread_waited};
    atomic_store(&r_thread_waited, weft_offload(on_stack_fn, &s, NULL, WEFT_FOREVER));
    atomic_store(&thread_stack_ok, s.written == 7);
    return NULL;
}

static intptr_t stop_queued_proc(void *arg)
{
    atomic_fetch_add(&submitted, 1);
    atomic_store(&r_queued, weft_offload(count_fn, &stop_queued_runs, NULL, WEFT_FOREVER));
    return 0;
}

static struct tally stop_handed, stop_late;
static atomic_int r_handed = UNSET, r_late = UNSET;

static intptr_t stop_handed_proc(void *arg)
{
    atomic_fetch_add(&submitted, 1);
    atomic_store(&r_handed, weft_offload(tally_fn, &stop_handed, tally_abandon, WEFT_FOREVER));
    /* Called again once the runtime stops: fails at its entry, and arg
     * still goes to abandon. */
    while (weft_sleep(WEFT_FOREVER) != -ECANCELED)
        ;
    atomic_store(&r_late, weft_offload(tally_fn, &stop_late, tally_abandon, WEFT_FOREVER));
    return 0;
}

static void *stop_thread(void *arg)
{
    atomic_fetch_add(&submitted, 1);
    atomic_store(&r_thread, weft_offload(count_fn, &stop_queued_runs, NULL, WEFT_FOREVER));
    return NULL;
}

/* Opens the gate once the calls that must fail have failed (so that they
 * can only have failed by the stop's cancellation). */
static void *stop_opener(void *arg)
{
    while (atomic_load(&r_abandoned) == UNSET || atomic_load(&r_queued) == UNSET ||
           atomic_load(&r_thread) == UNSET || atomic_load(&r_late) == UNSET)
        sleep_ms(1);
    atomic_store(&stop_gate.open, 1);
    return NULL;
}

Test(offload, stop_cancels_queued_and_abandoned_jobs_and_waits_for_the_rest, .timeout = 60)
{
    start_with(2, 4);
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.detached = 1;
    ASSERT_OK(weft_spawn(NULL, stop_abandoned_proc, NULL, &o));
    ASSERT_OK(weft_spawn(NULL, stop_waited_proc, NULL, &o));
    ASSERT_OK(weft_spawn(NULL, stop_overdue_proc, NULL, &o));
    pthread_t waiting, t, opener;
    cr_assert_eq(pthread_create(&waiting, NULL, stop_waiting_thread, NULL), 0);
    await_count(&stop_gate.entered, 4); /* every helper is busy */
    ASSERT_OK(weft_spawn(NULL, stop_queued_proc, NULL, &o));
    ASSERT_OK(weft_spawn(NULL, stop_handed_proc, NULL, &o));
    cr_assert_eq(pthread_create(&t, NULL, stop_thread, NULL), 0);
    await_count(&submitted, 3);
    /* Let the calls queue (else they fail at entry: -ECANCELED too) and
     * the overdue deadline pass (else the stop cancels its first wait). */
    while (weft_now() < atomic_load(&overdue_deadline) + 20 * MS)
        sleep_ms(5);
    cr_assert_eq(pthread_create(&opener, NULL, stop_opener, NULL), 0);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    pthread_join(waiting, NULL);
    pthread_join(t, NULL);
    pthread_join(opener, NULL);
    ASSERT_CHECKS();
    /* Those without abandon outwaited fn, and stop waited for them. */
    cr_assert_eq(atomic_load(&r_overdue), 0, "overdue: %d", atomic_load(&r_overdue));
    cr_assert_eq(atomic_load(&overdue_stack_ok), 1);
    cr_assert_eq(atomic_load(&r_thread_waited), 0, "thread: %d", atomic_load(&r_thread_waited));
    cr_assert_eq(atomic_load(&thread_stack_ok), 1);
    cr_assert_eq(atomic_load(&r_abandoned), -ECANCELED, "abandoned: %d", atomic_load(&r_abandoned));
    cr_assert_eq(atomic_load(&r_queued), -ECANCELED, "queued: %d", atomic_load(&r_queued));
    cr_assert_eq(atomic_load(&r_thread), -ECANCELED, "thread: %d", atomic_load(&r_thread));
    cr_assert_eq(atomic_load(&stop_queued_runs), 0, "a cancelled job ran");
    cr_assert_eq(atomic_load(&r_handed), -ECANCELED, "handed: %d", atomic_load(&r_handed));
    cr_assert_eq(atomic_load(&stop_handed.fn_runs), 0);
    cr_assert_eq(atomic_load(&stop_handed.abandons), 1);
    cr_assert_eq(atomic_load(&r_late), -ECANCELED, "late: %d", atomic_load(&r_late));
    cr_assert_eq(atomic_load(&stop_late.fn_runs), 0);
    cr_assert_eq(atomic_load(&stop_late.abandons), 1);
    /* The waiting process outwaited fn, and stop waited for it. */
    cr_assert_eq(atomic_load(&r_waited), 0, "waited: %d", atomic_load(&r_waited));
    cr_assert_eq(atomic_load(&waited_stack_ok), 1);
    /* stop joined the helper that ran the abandoned fn, after abandon. */
    cr_assert_eq(atomic_load(&stop_abandoned.fn_done), 1);
    cr_assert_eq(atomic_load(&stop_abandoned.abandons), 1);
    cr_assert_eq(atomic_load(&stop_abandoned.abandon_after_fn), 1);
    cr_assert_eq(atomic_load(&stop_waited.abandons), 0);
}

static struct gate kill_gate;
static struct gated kill_waited = {.gate = &kill_gate};
static struct gated kill_abandoned = {.gate = &kill_gate};
static atomic_int kill_stack_written;

static void kill_stack_fn(void *arg)
{
    struct on_stack *s = arg;
    gated_fn(s->g);
    s->written = 7;
    atomic_store(&kill_stack_written, 1);
}

static intptr_t kill_waited_proc(void *arg)
{
    struct on_stack s = {.g = &kill_waited};
    weft_offload(kill_stack_fn, &s, NULL, WEFT_FOREVER);
    return -1; /* not reached: the kill ends it */
}

static intptr_t kill_abandoned_proc(void *arg)
{
    weft_offload(gated_fn, &kill_abandoned, gated_abandon, WEFT_FOREVER);
    return -1;
}

static intptr_t kill_main(void *arg)
{
    weft_pid w = spawn_proc(kill_waited_proc, NULL);
    weft_pid a = spawn_proc(kill_abandoned_proc, NULL);
    await_count(&kill_gate.entered, 2);
    CHECK_RC(weft_kill(w, 42), 0);
    CHECK_RC(weft_kill(a, 43), 0);
    /* With abandon: ends at once, fn still at the gate. */
    intptr_t r = 0;
    CHECK_RC(weft_join(a, &r, WEFT_FOREVER), 0);
    CHECK(r == 43, "abandoning process ended with %ld", (long)r);
    CHECK(atomic_load(&kill_abandoned.fn_done) == 0, "fn passed a closed gate");
    /* Without: still waiting for fn (a join that times out). */
    CHECK_RC(weft_join(w, &r, weft_now() + 50 * MS), -ETIMEDOUT);
    atomic_store(&kill_gate.open, 1);
    CHECK_RC(weft_join(w, &r, WEFT_FOREVER), 0);
    CHECK(r == 42, "waiting process ended with %ld", (long)r);
    CHECK(atomic_load(&kill_stack_written) == 1, "the process ended before fn returned");
    await_count(&kill_abandoned.abandons, 1);
    return 0;
}

Test(offload, an_exit_signal_ends_the_caller_after_fn_or_at_once_with_abandon, .timeout = 30)
{
    run_with(2, 2, kill_main, NULL);
    cr_assert_eq(atomic_load(&kill_abandoned.abandons), 1);
    cr_assert_eq(atomic_load(&kill_abandoned.abandon_after_fn), 1);
    cr_assert_eq(atomic_load(&kill_waited.abandons), 0);
}

/* ---- outside threads --------------------------------------------------------------------- */

static struct gate thread_gate;
static struct gated thread_busy = {.gate = &thread_gate};

static void *busy_thread(void *arg)
{
    intptr_t rc = weft_offload(gated_fn, &thread_busy, NULL, WEFT_FOREVER);
    return (void *)rc;
}

Test(offload, a_thread_outside_the_runtime_blocks_its_own_thread, .timeout = 30)
{
    start_with(1, 1);
    struct effect e = {.in = 5};
    ASSERT_OK(weft_offload(effect_fn, &e, NULL, WEFT_FOREVER));
    cr_assert_eq(e.out, 10);
    cr_assert(!pthread_equal(e.thread, pthread_self()));
    /* The one helper busy for another thread: a deadline passes in the queue. */
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, busy_thread, NULL), 0);
    await_count(&thread_gate.entered, 1);
    atomic_int runs = 0;
    ASSERT_RC(weft_offload(count_fn, &runs, NULL, weft_now() + 30 * MS), -ETIMEDOUT);
    atomic_store(&thread_gate.open, 1);
    void *rc;
    pthread_join(t, &rc);
    cr_assert_eq((intptr_t)rc, 0);
    ASSERT_OK(weft_offload(count_fn, &runs, NULL, WEFT_FOREVER));
    cr_assert_eq(atomic_load(&runs), 1);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

/* ---- deterministic schedules ------------------------------------------------------------- */

static void det_fn(void *arg)
{
    sleep_ms(2);
    *(int *)arg += 1;
}

static intptr_t det_proc(void *arg)
{
    int v = (int)(intptr_t)arg;
    CHECK_RC(weft_offload(det_fn, &v, NULL, WEFT_FOREVER), 0);
    return v;
}

static intptr_t det_main(void *arg)
{
    weft_pid p[6];
    for (int i = 0; i < 6; i++)
        p[i] = spawn_proc(det_proc, (void *)(intptr_t)(10 * i));
    int mine = 100;
    CHECK_RC(weft_offload(det_fn, &mine, NULL, WEFT_FOREVER), 0);
    CHECK(mine == 101, "main's fn: %d", mine);
    for (int i = 0; i < 6; i++) {
        intptr_t r = -1;
        CHECK_RC(weft_join(p[i], &r, WEFT_FOREVER), 0);
        CHECK(r == 10 * i + 1, "process %d: %ld", i, (long)r);
    }
    return 0;
}

Test(offload, works_in_deterministic_schedules, .timeout = 60)
{
    for (int schedule = WEFT_SCHEDULE_RANDOM; schedule <= WEFT_SCHEDULE_PCT; schedule++) {
        for (uint64_t seed = 1; seed <= 5; seed++) {
            weft_config cfg;
            weft_config_init(&cfg);
            cfg.workers = 2;
            cfg.schedule = schedule;
            cfg.seed = seed;
            cfg.offload_threads = 2;
            cr_assert_eq(run_cfg(&cfg, det_main, NULL), 0, "schedule %d seed %llu", schedule,
                         (unsigned long long)seed);
        }
    }
}

/* ---- threads: lazily started, joined by stop, signals blocked ---------------------------- */

static void mask_fn(void *arg)
{
    sigset_t set;
    pthread_sigmask(SIG_BLOCK, NULL, &set);
    *(int *)arg = sigismember(&set, SIGINT) == 1 && sigismember(&set, SIGUSR1) == 1 &&
                  sigismember(&set, SIGTERM) == 1;
}

static struct gate late_gate;
static struct gated late_abandoned = {.gate = &late_gate};

static void *late_opener(void *arg)
{
    sleep_ms(50);
    atomic_store(&late_gate.open, 1);
    return NULL;
}

Test(offload, threads_start_at_first_use_and_stop_joins_them, .timeout = 30)
{
    /* A runtime first: a sanitizer's runtime starts a thread of its own
     * with the program's first ones. */
    start_with(1, 1);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    int before = thread_count();
    start_with(1, 4);
    int started = thread_count();
    sleep_ms(20);
    cr_assert_eq(thread_count(), started, "the pool started a thread before any call");
    int blocked = 0;
    ASSERT_OK(weft_offload(mask_fn, &blocked, NULL, WEFT_FOREVER));
    cr_assert_eq(blocked, 1, "a helper thread takes signals");
    cr_assert_eq(thread_count(), started + 1, "one call, one helper");
    /* Sequential calls reuse the idle helper. */
    for (int i = 0; i < 10; i++)
        ASSERT_OK(weft_offload(mask_fn, &blocked, NULL, WEFT_FOREVER));
    cr_assert_eq(thread_count(), started + 1);
    /* An abandoned fn still running at stop: stop waits for it and abandon. */
    ASSERT_RC(weft_offload(gated_fn, &late_abandoned, gated_abandon, weft_now() + 10 * MS),
              -ETIMEDOUT);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, late_opener, NULL), 0);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    cr_assert_eq(atomic_load(&late_abandoned.abandons), 1, "stop returned before abandon ran");
    pthread_join(t, NULL);
    cr_assert_eq(thread_count(), before, "threads left after stop");
    /* A new runtime starts its pool afresh. */
    start_with(1, 1);
    ASSERT_OK(weft_offload(mask_fn, &blocked, NULL, WEFT_FOREVER));
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    cr_assert_eq(thread_count(), before);
}

/* ---- bad input and failures --------------------------------------------------------------- */

static atomic_int handler_rc = UNSET;

static void offload_handler(void *state, weft_msg *m)
{
    atomic_store(&handler_rc, weft_offload(count_fn, state, NULL, WEFT_FOREVER));
}

static intptr_t misuse_main(void *arg)
{
    atomic_int *runs = arg;
    CHECK_RC(weft_offload(NULL, runs, NULL, WEFT_FOREVER), -EINVAL);
    CHECK_RC(weft_offload(NULL, runs, count_fn, 0), -EINVAL);
    /* A deadline already past: fn cannot start before it. */
    CHECK_RC(weft_offload(count_fn, runs, NULL, 0), -ETIMEDOUT);
    CHECK_RC(weft_offload(count_fn, runs, NULL, weft_now() - MS), -ETIMEDOUT);
    /* With abandon, arg goes to it, fn never running. */
    static struct tally past;
    CHECK_RC(weft_offload(tally_fn, &past, tally_abandon, 0), -ETIMEDOUT);
    await_count(&past.abandons, 1);
    CHECK(atomic_load(&past.fn_runs) == 0, "fn ran after its deadline");
    /* An actor's handler must not wait. */
    weft_pid a;
    CHECK_RC(weft_actor_spawn(&a, offload_handler, runs, NULL), 0);
    CHECK_RC(weft_send(a, 1, NULL, 0, WEFT_FOREVER), 0);
    while (atomic_load(&handler_rc) == UNSET)
        weft_sleep(weft_now() + MS);
    CHECK_RC(atomic_load(&handler_rc), -EPERM);
    return 0;
}

Test(offload, bad_input_gives_its_code_and_fn_never_runs, .timeout = 30)
{
    unsetenv("WEFT_STRICT");
    atomic_int runs = 0;
    /* No runtime. */
    ASSERT_RC(weft_offload(count_fn, &runs, NULL, WEFT_FOREVER), -ESHUTDOWN);
    ASSERT_RC(weft_offload(NULL, &runs, NULL, WEFT_FOREVER), -EINVAL);
    /* Too many threads. */
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.offload_threads = WEFT_OFFLOAD_THREADS_MAX + 1;
    ASSERT_RC(weft_start(&cfg), -EINVAL);
    cfg.offload_threads = WEFT_OFFLOAD_THREADS_MAX;
    cfg.workers = 1;
    ASSERT_OK(weft_start(&cfg));
    ASSERT_RC(weft_offload(NULL, &runs, NULL, WEFT_FOREVER), -EINVAL);
    ASSERT_RC(weft_offload(count_fn, &runs, NULL, 0), -ETIMEDOUT);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    /* After shutdown. */
    ASSERT_RC(weft_offload(count_fn, &runs, NULL, WEFT_FOREVER), -ESHUTDOWN);
    run_with(2, 0, misuse_main, &runs);
    cr_assert_eq(atomic_load(&runs), 0, "fn ran after a refused call");
}

/* Allocation failures: the counting hook of test-alloc.c, in short. */
enum { HEADER = 16 };
static atomic_long alloc_attempts, alloc_live, fail_at;

static void *failing_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    char *block = ptr ? (char *)ptr - HEADER : NULL;
    if (new_size == 0) {
        if (block)
            atomic_fetch_sub(&alloc_live, 1);
        free(block);
        return NULL;
    }
    if (block) {
        block = realloc(block, new_size + HEADER);
        return block ? block + HEADER : NULL;
    }
    if (atomic_fetch_add(&alloc_attempts, 1) + 1 == atomic_load(&fail_at))
        return NULL;
    block = malloc(new_size + HEADER);
    if (!block)
        return NULL;
    atomic_fetch_add(&alloc_live, 1);
    return block + HEADER;
}

static atomic_int oom_rc;

/* The k-th allocation of a first weft_offload fails: -ENOMEM and fn never
 * ran, or (k beyond what the call allocates) success. */
static intptr_t oom_main(void *arg)
{
    long k = (long)(intptr_t)arg;
    atomic_int runs = 0;
    atomic_store(&fail_at, atomic_load(&alloc_attempts) + k);
    int rc = weft_offload(count_fn, &runs, NULL, WEFT_FOREVER);
    atomic_store(&fail_at, 0);
    atomic_store(&oom_rc, rc);
    CHECK(rc == 0 || rc == -ENOMEM, "allocation %ld failed: %d", k, rc);
    CHECK(atomic_load(&runs) == (rc == 0), "fn ran %d times, rc %d", atomic_load(&runs), rc);
    /* Whatever failed, the pool works afterwards. */
    CHECK_RC(weft_offload(count_fn, &runs, NULL, WEFT_FOREVER), 0);
    /* -ENOMEM leaves arg to the caller: abandon never runs. */
    struct tally t = {0};
    atomic_store(&fail_at, atomic_load(&alloc_attempts) + 1);
    CHECK_RC(weft_offload(tally_fn, &t, tally_abandon, 0), -ENOMEM);
    atomic_store(&fail_at, atomic_load(&alloc_attempts) + 1);
    CHECK_RC(weft_offload(tally_fn, &t, tally_abandon, WEFT_FOREVER), -ENOMEM);
    atomic_store(&fail_at, 0);
    CHECK_RC(weft_offload(count_fn, &runs, NULL, WEFT_FOREVER), 0);
    CHECK(atomic_load(&t.fn_runs) == 0 && atomic_load(&t.abandons) == 0, "ran %d, abandoned %d",
          atomic_load(&t.fn_runs), atomic_load(&t.abandons));
    return 0;
}

Test(offload, out_of_memory_gives_enomem_and_leaks_nothing, .timeout = 60)
{
    ASSERT_OK(weft_set_allocator(failing_alloc, NULL));
    int failures = 0;
    for (long k = 1;; k++) {
        cr_assert(k < 100, "weft_offload allocates without end");
        atomic_store(&oom_rc, UNSET);
        run_with(1, 0, oom_main, (void *)(intptr_t)k);
        cr_assert_eq(atomic_load(&alloc_live), 0, "k %ld: %ld blocks leaked", k,
                     atomic_load(&alloc_live));
        if (atomic_load(&oom_rc) == 0)
            break;
        failures++;
    }
    ASSERT_CMP(failures, >=, 1); /* the job block, at least */
    ASSERT_OK(weft_set_allocator(NULL, NULL));
}

static void *offload_from_thread(void *arg)
{
    intptr_t rc = weft_offload(count_fn, arg, NULL, WEFT_FOREVER);
    return (void *)rc;
}

static intptr_t eagain_main(void *arg)
{
    atomic_int *runs = arg;
    CHECK_RC(weft_offload(count_fn, runs, NULL, WEFT_FOREVER), -EAGAIN);
    return 0;
}

Test(offload, no_helper_thread_gives_eagain, .timeout = 30)
{
    start_with(1, 2);
    atomic_int runs = 0;
    weft__fault_arm(WEFT__FAULT_THREAD, 1, true);
    ASSERT_RC(weft_offload(count_fn, &runs, NULL, WEFT_FOREVER), -EAGAIN);
    weft_pid p;
    ASSERT_OK(weft_spawn(&p, eagain_main, &runs, NULL));
    ASSERT_OK(weft_join(p, NULL, WEFT_FOREVER));
    cr_assert_eq(atomic_load(&runs), 0);
    weft__fault_reset();
    /* One helper runs: a second that cannot start leaves the job queued for it. */
    ASSERT_OK(weft_offload(count_fn, &runs, NULL, WEFT_FOREVER));
    weft__fault_arm(WEFT__FAULT_THREAD, 1, true);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, offload_from_thread, &runs), 0);
    for (int i = 0; i < 4; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        cr_assert_eq((intptr_t)rc, 0);
    }
    weft__fault_reset();
    cr_assert_eq(atomic_load(&runs), 5);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    ASSERT_CHECKS();
}

static intptr_t pool_size_main(void *arg)
{
    return 0;
}

/* A pool larger than WEFT_OFFLOAD_THREADS_MAX is refused by weft_start and
 * weft_run; the largest one is taken (its threads start only when needed). */
Test(offload, pool_size_is_checked_at_start)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = 1;
    cfg.offload_threads = WEFT_OFFLOAD_THREADS_MAX + 1;
    ASSERT_RC(weft_start(&cfg), -EINVAL);
    intptr_t r = -7;
    ASSERT_RC(weft_run(pool_size_main, NULL, &cfg, &r), -EINVAL);
    cr_assert_eq(r, -7, "main ran");
    cfg.offload_threads = WEFT_OFFLOAD_THREADS_MAX;
    ASSERT_OK(weft_start(&cfg));
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}
