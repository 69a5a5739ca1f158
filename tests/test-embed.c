/* test-embed.c: weft_start/weft_stop beside the program's own threads:
 * plain threads spawn, join and sleep; weft_stop releases blocked threads. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "test.h"


/* After a stop, weft holds no memory: the allocation hook can be swapped
 * (weft_set_allocator refuses while any block taken through it is held). */
static void assert_nothing_held(const char *when)
{
    int rc = weft_set_allocator(NULL, NULL);
    cr_assert_eq(rc, 0, "%s: weft_set_allocator returned %d (%s): memory still held after weft_stop",
                 when, rc, weft_strerror(rc));
}

static intptr_t ret_arg(void *arg)
{
    return (intptr_t)arg;
}

static intptr_t yield_ret_arg(void *arg)
{
    weft_yield();
    if ((intptr_t)arg % 5 == 0)
        weft_sleep(weft_now() + 50000);
    return (intptr_t)arg;
}

/* What a thread saw: failures are recorded and asserted by the test. */
struct thread_job {
    pthread_t thread;
    int index, count;
    intptr_t sum;
    int bad_rc, bad_result;
    int first_rc;
};

static void *spawn_join_thread(void *arg)
{
    struct thread_job *job = arg;
    weft_pid *pids = calloc((size_t)job->count, sizeof *pids);
    job->sum = 0;
    for (int i = 0; i < job->count; i++) {
        int rc = weft_spawn(&pids[i], i % 2 ? yield_ret_arg : ret_arg,
                            (void *)(intptr_t)(job->index * 100000 + i), NULL);
        if (rc) {
            job->bad_rc++;
            job->first_rc = job->first_rc ? job->first_rc : rc;
            pids[i] = 0;
        }
    }
    for (int i = 0; i < job->count; i++) {
        intptr_t r = -1;
        int rc = weft_join(pids[i], &r, WEFT_FOREVER);
        if (rc) {
            job->bad_rc++;
            job->first_rc = job->first_rc ? job->first_rc : rc;
        } else if (r != job->index * 100000 + i) {
            job->bad_result++;
        } else {
            job->sum += r;
        }
    }
    free(pids);
    return NULL;
}

/* Four threads spawn and join at once; returns nothing, asserts. */
static void threads_spawn_and_join(int per_thread)
{
    enum { THREADS = 4 };
    struct thread_job jobs[THREADS];
    for (int t = 0; t < THREADS; t++) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t].index = t;
        jobs[t].count = per_thread;
        cr_assert_eq(pthread_create(&jobs[t].thread, NULL, spawn_join_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(jobs[t].thread, NULL);
        cr_assert_eq(jobs[t].bad_rc, 0, "thread %d: %d calls failed, first with %d (%s)", t,
                     jobs[t].bad_rc, jobs[t].first_rc, weft_strerror(jobs[t].first_rc));
        cr_assert_eq(jobs[t].bad_result, 0, "thread %d: %d wrong results", t, jobs[t].bad_result);
        intptr_t expect = (intptr_t)t * 100000 * per_thread + (intptr_t)per_thread * (per_thread - 1) / 2;
        cr_assert_eq(jobs[t].sum, expect, "thread %d: sum %ld, expected %ld", t, (long)jobs[t].sum,
                     (long)expect);
    }
}

Test(embed, threads_spawn_and_join_concurrently, .timeout = 20)
{
    int per_thread = test_sanitized() ? 200 : 1000;
    int rounds = test_sanitized() ? 3 : 10;
    for (unsigned workers = 1; workers <= 2; workers++) {
        start_workers(workers);
        for (int round = 0; round < rounds; round++)
            threads_spawn_and_join(per_thread);
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        assert_nothing_held("threads joined everything");
    }
}

Test(embed, start_stop_start_again_with_threads, .timeout = 20)
{
    for (int i = 0; i < 6; i++) {
        start_workers(1 + i % 2);
        threads_spawn_and_join(test_sanitized() ? 50 : 200);
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        ASSERT_RC(weft_workers(), -ESHUTDOWN);
        assert_nothing_held("start/stop with threads");
    }
}

static void *spawn_after_stop_thread(void *arg)
{
    weft_pid pid = 0;
    *(int *)arg = weft_spawn(&pid, ret_arg, NULL, NULL);
    return NULL;
}

Test(embed, spawn_from_thread_after_stop_is_eshutdown, .timeout = 20)
{
    start_workers(2);
    threads_spawn_and_join(10);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    int rc = 12345;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, spawn_after_stop_thread, &rc), 0);
    pthread_join(t, NULL);
    ASSERT_RC(rc, -ESHUTDOWN);
    weft_pid pid;
    ASSERT_RC(weft_spawn(&pid, ret_arg, NULL, NULL), -ESHUTDOWN);
}

/* ---- sleeping threads --------------------------------------------------------------- */

struct sleep_job {
    pthread_t thread;
    atomic_int entering;
    int64_t ms;
    int rc;
    int64_t elapsed;
};

static void *sleep_thread(void *arg)
{
    struct sleep_job *job = arg;
    atomic_store(&job->entering, 1);
    int64_t t0 = weft_now();
    job->rc = weft_sleep(job->ms < 0 ? WEFT_FOREVER : t0 + job->ms * MS);
    job->elapsed = weft_now() - t0;
    return NULL;
}

Test(embed, sleep_from_plain_thread_blocks_until_deadline, .timeout = 20)
{
    start_workers(1);
    struct sleep_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i].ms = 10 + 15 * i;
        jobs[i].rc = 12345;
        cr_assert_eq(pthread_create(&jobs[i].thread, NULL, sleep_thread, &jobs[i]), 0);
    }
    /* And the test's own thread. */
    struct sleep_job self = {.ms = 30, .rc = 12345};
    sleep_thread(&self);
    ASSERT_OK(self.rc);
    cr_assert(self.elapsed >= 30 * MS && self.elapsed < 530 * MS, "slept %lld ns for 30 ms",
              (long long)self.elapsed);
    for (int i = 0; i < 4; i++) {
        pthread_join(jobs[i].thread, NULL);
        ASSERT_OK(jobs[i].rc);
        cr_assert(jobs[i].elapsed >= jobs[i].ms * MS && jobs[i].elapsed < (jobs[i].ms + 500) * MS,
                  "thread %d slept %lld ns for %lld ms", i, (long long)jobs[i].elapsed,
                  (long long)jobs[i].ms);
    }
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

/* A thread sleeping in weft_sleep when weft_stop runs is released with
 * -ECANCELED. Whether a thread is inside weft_sleep yet cannot be observed, so
 * a thread that got there only after the stop sleeps its full 300 ms
 * instead (and returns 0); most must have been canceled. */
Test(embed, thread_sleeping_released_by_stop, .timeout = 20)
{
    int canceled = 0;
    for (int round = 0; round < 20; round++) {
        start_workers(1 + round % 2);
        struct sleep_job jobs[4];
        for (int i = 0; i < 4; i++) {
            jobs[i].ms = 300;
            jobs[i].rc = 12345;
            atomic_store(&jobs[i].entering, 0);
            cr_assert_eq(pthread_create(&jobs[i].thread, NULL, sleep_thread, &jobs[i]), 0);
        }
        for (int i = 0; i < 4; i++)
            while (!atomic_load(&jobs[i].entering))
                sched_yield();
        for (int spin = 0; spin < 1000; spin++)
            sched_yield();
        int64_t t0 = weft_now();
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        for (int i = 0; i < 4; i++) {
            pthread_join(jobs[i].thread, NULL);
            if (jobs[i].rc == -ECANCELED) {
                canceled++;
                cr_assert_lt(jobs[i].elapsed, 300 * MS, "a canceled sleep lasted %lld ns",
                             (long long)jobs[i].elapsed);
            } else {
                ASSERT_RC(jobs[i].rc, 0);
                cr_assert_geq(jobs[i].elapsed, 300 * MS, "sleep returned 0 after %lld ns",
                              (long long)jobs[i].elapsed);
            }
        }
        cr_assert_lt(weft_now() - t0, 5000 * MS);
    }
    cr_assert_gt(canceled, 40, "only %d of 80 sleeping threads were canceled by weft_stop", canceled);
}

/* ---- a thread blocked in weft_join when the runtime stops ------------------------------ */

static intptr_t sleep_forever(void *arg)
{
    int rc = weft_sleep(WEFT_FOREVER);
    return rc == -ECANCELED ? 1 : 1000 + rc;
}

struct join_job {
    pthread_t thread;
    weft_pid pid;
    atomic_int entering;
    int rc;
    intptr_t result;
};

static void *join_thread(void *arg)
{
    struct join_job *job = arg;
    job->result = -1;
    atomic_store(&job->entering, 1);
    job->rc = weft_join(job->pid, &job->result, WEFT_FOREVER);
    return NULL;
}

/* Starts a thread joining pid and returns once the join is in place:
 * weft_detach on a pid being joined is refused with -EINVAL. A detach that
 * succeeds came first, so the thread's join must fail (-EINVAL); the caller
 * then tries again with a new process. */
static bool start_joiner(struct join_job *job, weft_pid pid)
{
    job->pid = pid;
    job->rc = 12345;
    atomic_store(&job->entering, 0);
    cr_assert_eq(pthread_create(&job->thread, NULL, join_thread, job), 0);
    while (!atomic_load(&job->entering))
        sched_yield();
    for (int spin = 0; spin < 1000; spin++)
        sched_yield();
    int rc = weft_detach(pid);
    if (rc == -EINVAL)
        return true;
    ASSERT_RC(rc, 0);
    pthread_join(job->thread, NULL);
    ASSERT_RC(job->rc, -EINVAL);
    return false;
}

Test(embed, thread_blocked_in_join_released_when_stop_cancels_process, .timeout = 20)
{
    enum { JOINERS = 4 };
    int rounds = test_sanitized() ? 50 : 200;
    for (int round = 0; round < rounds; round++) {
        start_workers(1 + round % 2);
        struct join_job jobs[JOINERS];
        for (int i = 0; i < JOINERS; i++) {
            for (;;) {
                weft_pid pid;
                ASSERT_OK(weft_spawn(&pid, sleep_forever, NULL, NULL));
                if (start_joiner(&jobs[i], pid))
                    break;
            }
        }
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        for (int i = 0; i < JOINERS; i++) {
            pthread_join(jobs[i].thread, NULL);
            /* Released either by the process's end (it returned 1 after its
             * sleep was canceled) or by the cancellation of the join itself. */
            cr_assert(jobs[i].rc == 0 || jobs[i].rc == -ECANCELED,
                      "round %d, joiner %d: weft_join returned %d (%s)", round, i, jobs[i].rc,
                      weft_strerror(jobs[i].rc));
            if (jobs[i].rc == 0)
                cr_assert_eq(jobs[i].result, 1, "joined result %ld", (long)jobs[i].result);
        }
        /* Joined or not, the processes were freed by the stop. */
        assert_nothing_held("after joins released by weft_stop");
    }
}

/* ---- spawning threads racing with weft_stop ---------------------------------------------- */

static atomic_int raced_ran, raced_spawned;
static atomic_int race_go;

enum { RACE_CAP = 4000 };

struct race_job {
    pthread_t thread;
    int spawned;
    int last_rc;
};

static intptr_t count_run(void *arg)
{
    atomic_fetch_add(&raced_ran, 1);
    return 0;
}

static void *spawn_until_refused(void *arg)
{
    struct race_job *job = arg;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = 1;
    while (!atomic_load(&race_go))
        ;
    int rc = 0;
    while (job->spawned < RACE_CAP && (rc = weft_spawn(NULL, count_run, NULL, &opts)) == 0) {
        job->spawned++;
        atomic_fetch_add(&raced_spawned, 1);
    }
    job->last_rc = rc;
    return NULL;
}

/* weft_stop either waits for a process spawned from outside or refuses the
 * spawn: every spawn that succeeded ran before weft_stop returned. */
Test(embed, spawns_racing_with_stop_all_run_or_are_refused, .timeout = 20)
{
    int rounds = test_sanitized() ? 30 : 100;
    for (int round = 0; round < rounds; round++) {
        start_workers(1 + round % 2);
        atomic_store(&raced_ran, 0);
        atomic_store(&raced_spawned, 0);
        atomic_store(&race_go, 0);
        struct race_job jobs[3];
        for (int t = 0; t < 3; t++) {
            memset(&jobs[t], 0, sizeof jobs[t]);
            cr_assert_eq(pthread_create(&jobs[t].thread, NULL, spawn_until_refused, &jobs[t]), 0);
        }
        atomic_store(&race_go, 1);
        /* Stop while they spawn: after some number of spawns. */
        int threshold = 1 + 100 * (round % 10);
        while (atomic_load(&raced_spawned) < threshold)
            sched_yield();
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        int ran = atomic_load(&raced_ran);
        int spawned = 0;
        for (int t = 0; t < 3; t++) {
            pthread_join(jobs[t].thread, NULL);
            cr_assert(jobs[t].last_rc == -ECANCELED || jobs[t].last_rc == -ESHUTDOWN ||
                          (jobs[t].last_rc == 0 && jobs[t].spawned == RACE_CAP),
                      "spawn refused with %d (%s)", jobs[t].last_rc, weft_strerror(jobs[t].last_rc));
            spawned += jobs[t].spawned;
        }
        cr_assert_eq(ran, spawned, "round %d: %d processes spawned, %d ran before weft_stop returned",
                     round, spawned, ran);
        assert_nothing_held("after spawns raced with weft_stop");
    }
}
