/* test-dvar.c: dataflow variables: bind, get and fail, a second bind,
 * values of every size, many readers waiting for one bind (races repeated
 * at 2 workers), deadlines, select over a variable and a channel, outside
 * threads, destruction while readers wait, references, the deadlock
 * detector, bad input and the runtime's stop with live variables. */
#define _GNU_SOURCE /* mkstemp */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#define TEST_PROC_CHECKS
#include "test.h"

static weft_dvar make_dvar(size_t size)
{
    weft_dvar dv = 0;
    CHECK_RC(weft_dvar_make(&dv, size), 0);
    return dv;
}

/* Every call on dv fails with -EBADF: the handle is stale (or forged). */
static void check_all_ebadf(weft_dvar dv, int line)
{
    long v = 0;
    int rcs[] = {
        weft_dvar_bind(dv, &v, sizeof v),      weft_dvar_fail(dv, -EIO),
        weft_dvar_get(dv, &v, sizeof v, 0),    weft_dvar_get(dv, &v, sizeof v, WEFT_FOREVER),
        weft_dvar_bound(dv),                   weft_dvar_retain(dv),
        weft_dvar_release(dv),
    };
    for (size_t i = 0; i < sizeof rcs / sizeof rcs[0]; i++)
        if (rcs[i] != -EBADF)
            check_fail(line, "handle %#llx: call %zu returned %d (%s), expected -EBADF",
                       (unsigned long long)dv, i, rcs[i], weft_strerror(rcs[i]));
    if (v != 0)
        check_fail(line, "a refused get wrote %ld", v);
}

/* ---- bind, get, fail --------------------------------------------------------------------- */

/* Values of each size (inline and allocated, up to WEFT_DVAR_MAX) come back
 * whole; the bind copies them (changing the source after the bind changes
 * nothing); a second bind or a fail is -EALREADY and leaves the first value. */
static intptr_t bind_get_main(void *arg)
{
    static const size_t sizes[] = {1, 7, 8, 63, 64, 65, 1000, 4096, WEFT_DVAR_MAX};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        unsigned char *src = malloc(n), *dst = malloc(n), *other = malloc(n);
        for (size_t i = 0; i < n; i++) {
            src[i] = (unsigned char)(i * 7 + k + 1);
            other[i] = (unsigned char)~src[i];
        }
        weft_dvar dv = make_dvar(n);
        CHECK_RC(weft_dvar_bound(dv), 0);
        memset(dst, 0xEE, n);
        CHECK_RC(weft_dvar_get(dv, dst, n, 0), -ETIMEDOUT);
        CHECK(dst[0] == 0xEE && dst[n - 1] == 0xEE, "size %zu: an unbound get wrote", n);
        CHECK_RC(weft_dvar_bind(dv, src, n), 0);
        memset(src, 0, n); /* the variable holds its own copy */
        CHECK_RC(weft_dvar_bound(dv), 1);
        CHECK_RC(weft_dvar_bind(dv, other, n), -EALREADY);
        CHECK_RC(weft_dvar_fail(dv, -EIO), -EALREADY);
        for (int rep = 0; rep < 3; rep++) {
            memset(dst, 0, n);
            CHECK_RC(weft_dvar_get(dv, dst, n, rep == 0 ? 0 : WEFT_FOREVER), 0);
            for (size_t i = 0; i < n; i++)
                if (dst[i] != (unsigned char)(i * 7 + k + 1)) {
                    check_fail(__LINE__, "size %zu: byte %zu is %u", n, i, dst[i]);
                    break;
                }
        }
        CHECK_RC(weft_dvar_release(dv), 0);
        check_all_ebadf(dv, __LINE__);
        free(src);
        free(dst);
        free(other);
    }
    return 0;
}

Test(dvar, bind_then_get_copies_values_of_every_size, .timeout = 30)
{
    run_1_and_2(bind_get_main, NULL);
}

/* A failed variable gives its error to every get (the buffer untouched),
 * counts as bound, and refuses binds and fails after. */
static intptr_t fail_main(void *arg)
{
    int errs[] = {-EIO, -1, -ENOSPC, -4095, INT_MIN};
    for (size_t k = 0; k < sizeof errs / sizeof errs[0]; k++) {
        weft_dvar dv = make_dvar(sizeof(long));
        CHECK_RC(weft_dvar_fail(dv, errs[k]), 0);
        CHECK_RC(weft_dvar_bound(dv), 1);
        long v = 77;
        CHECK_RC(weft_dvar_get(dv, &v, sizeof v, 0), errs[k]);
        CHECK_RC(weft_dvar_get(dv, &v, sizeof v, WEFT_FOREVER), errs[k]);
        CHECK(v == 77, "a failed get wrote %ld", v);
        CHECK_RC(weft_dvar_bind(dv, &v, sizeof v), -EALREADY);
        CHECK_RC(weft_dvar_fail(dv, -EINTR), -EALREADY);
        CHECK_RC(weft_dvar_get(dv, &v, sizeof v, 0), errs[k]);
        CHECK_RC(weft_dvar_release(dv), 0);
    }
    return 0;
}

Test(dvar, fail_gives_every_reader_the_error, .timeout = 30)
{
    run_1_and_2(fail_main, NULL);
}

/* ---- many readers, one bind ------------------------------------------------------------------ */

enum { READERS = 16 };

struct crowd {
    weft_dvar dv;
    int fail;              /* the variable is failed with -EIO instead of bound */
    atomic_int started;    /* readers about to get */
    atomic_int got;        /* readers that got the value (or the error) */
    atomic_int timed_out;  /* readers with a deadline that passed first */
};

struct payload {
    uint64_t a, b, c;
};

static intptr_t crowd_reader(void *arg)
{
    struct crowd *c = arg;
    atomic_fetch_add(&c->started, 1);
    struct payload p = {0, 0, 0};
    int rc = weft_dvar_get(c->dv, &p, sizeof p, WEFT_FOREVER);
    if (c->fail) {
        CHECK_RC(rc, -EIO);
        CHECK(p.a == 0, "a failed get wrote %llu", (unsigned long long)p.a);
    } else {
        CHECK_RC(rc, 0);
        CHECK(p.a == 11 && p.b == 22 && p.c == 33, "got %llu %llu %llu", (unsigned long long)p.a,
              (unsigned long long)p.b, (unsigned long long)p.c);
    }
    atomic_fetch_add(&c->got, 1);
    return 0;
}

/* A reader with a short deadline: gets the value or times out, never both,
 * never neither (a lost wake-up hangs the test). */
static intptr_t crowd_reader_timed(void *arg)
{
    struct crowd *c = arg;
    atomic_fetch_add(&c->started, 1);
    struct payload p = {0, 0, 0};
    int rc = weft_dvar_get(c->dv, &p, sizeof p, weft_now() + (int64_t)(weft_self() % 3) * 100 * US);
    if (rc == -ETIMEDOUT) {
        CHECK(p.a == 0, "a get that timed out wrote %llu", (unsigned long long)p.a);
        atomic_fetch_add(&c->timed_out, 1);
        return 0;
    }
    if (c->fail)
        CHECK_RC(rc, -EIO);
    else
        CHECK(rc == 0 && p.a == 11 && p.c == 33, "rc %d, got %llu", rc, (unsigned long long)p.a);
    atomic_fetch_add(&c->got, 1);
    return 0;
}

/* Readers on both workers wait (or are about to) when one bind comes: every
 * one of them gets the value. Round r: every other round the binder waits
 * until all readers have started, the others race the bind with the
 * readers' arrival; a quarter of the rounds fail the variable instead. */
static intptr_t crowd_main(void *arg)
{
    int rounds = test_sanitized() ? 60 : 400;
    for (int r = 0; r < rounds; r++) {
        struct crowd c = {.dv = make_dvar(sizeof(struct payload)), .fail = r % 4 == 3};
        weft_pid pids[READERS];
        for (int i = 0; i < READERS; i++)
            pids[i] = spawn_on(i % 4 == 3 ? crowd_reader_timed : crowd_reader, &c, i, i % 2);
        if (r % 2 == 0)
            while (atomic_load(&c.started) < READERS)
                weft_yield();
        struct payload p = {11, 22, 33};
        if (c.fail)
            CHECK_RC(weft_dvar_fail(c.dv, -EIO), 0);
        else
            CHECK_RC(weft_dvar_bind(c.dv, &p, sizeof p), 0);
        for (int i = 0; i < READERS; i++)
            CHECK(join_proc(pids[i]) == 0, "reader %d failed", i);
        int total = atomic_load(&c.got) + atomic_load(&c.timed_out);
        CHECK(total == READERS, "round %d: %d readers got the value, %d timed out", r,
              atomic_load(&c.got), atomic_load(&c.timed_out));
        CHECK(atomic_load(&c.got) >= READERS - READERS / 4, "round %d: only %d got it", r,
              atomic_load(&c.got));
        CHECK_RC(weft_dvar_release(c.dv), 0);
        if (atomic_load(&check_failures))
            break;
    }
    return 0;
}

Test(dvar, many_readers_waiting_all_get_one_bind, .timeout = 60)
{
    run_1_and_2(crowd_main, NULL);
}

/* A binder on the other worker races readers that arrive at the same time,
 * many times: no reader misses the bind. */
struct race {
    weft_dvar dv;
    atomic_int go;
};

static intptr_t race_binder(void *arg)
{
    struct race *rc = arg;
    while (!atomic_load(&rc->go))
        weft_yield();
    long v = 4242;
    return weft_dvar_bind(rc->dv, &v, sizeof v);
}

static intptr_t race_reader(void *arg)
{
    struct race *rc = arg;
    atomic_store(&rc->go, 1);
    long v = 0;
    int r = weft_dvar_get(rc->dv, &v, sizeof v, WEFT_FOREVER);
    return r ? r : v == 4242 ? 0 : 1;
}

static intptr_t bind_race_main(void *arg)
{
    int rounds = test_sanitized() ? 500 : 5000;
    for (int r = 0; r < rounds; r++) {
        struct race rc = {.dv = make_dvar(sizeof(long))};
        weft_pid b = spawn_on(race_binder, &rc, 1, 1);
        weft_pid a = spawn_on(race_reader, &rc, 0, 1);
        CHECK(join_proc(a) == 0, "round %d: the reader failed", r);
        CHECK(join_proc(b) == 0, "round %d: the binder failed", r);
        CHECK_RC(weft_dvar_release(rc.dv), 0);
        if (atomic_load(&check_failures))
            break;
    }
    return 0;
}

Test(dvar, bind_racing_a_reader_on_another_worker_is_never_missed, .timeout = 60)
{
    run_at_workers(2, bind_race_main, NULL);
}

/* ---- deadlines ----------------------------------------------------------------------------- */

static intptr_t deadline_main(void *arg)
{
    weft_dvar dv = make_dvar(sizeof(int));
    int v = 5;
    int64_t t0 = weft_now();
    CHECK_RC(weft_dvar_get(dv, &v, sizeof v, 0), -ETIMEDOUT);
    CHECK_RC(weft_dvar_get(dv, &v, sizeof v, t0 - 1000), -ETIMEDOUT);
    t0 = weft_now();
    CHECK_RC(weft_dvar_get(dv, &v, sizeof v, t0 + 20 * MS), -ETIMEDOUT);
    int64_t el = weft_now() - t0;
    CHECK(el >= 20 * MS && el < 2000 * MS, "a 20 ms deadline took %lld ns", (long long)el);
    CHECK(v == 5, "a get that timed out wrote %d", v);
    /* The timed-out wait left nothing queued: a bind now reaches no one,
     * and the variable still works. */
    int w = 9;
    CHECK_RC(weft_dvar_bind(dv, &w, sizeof w), 0);
    CHECK_RC(weft_dvar_get(dv, &v, sizeof v, t0 + 20 * MS), 0);
    CHECK(v == 9, "got %d", v);
    CHECK_RC(weft_dvar_release(dv), 0);
    return 0;
}

Test(dvar, deadlines_time_out_and_leave_no_trace, .timeout = 30)
{
    run_1_and_2(deadline_main, NULL);
}

/* ---- select ---------------------------------------------------------------------------------- */

struct sel {
    weft_dvar dv;
    weft_chan ch;
};

static intptr_t bind_later(void *arg)
{
    struct sel *s = arg;
    weft_sleep(test_in_ms(5));
    long v = 123;
    return weft_dvar_bind(s->dv, &v, sizeof v);
}

static intptr_t send_later(void *arg)
{
    struct sel *s = arg;
    weft_sleep(test_in_ms(5));
    long v = 456;
    return weft_chan_send(s->ch, &v, sizeof v, WEFT_FOREVER);
}

static intptr_t fail_later(void *arg)
{
    struct sel *s = arg;
    weft_sleep(test_in_ms(5));
    return weft_dvar_fail(s->dv, -ENOSPC);
}

static intptr_t release_later(void *arg)
{
    struct sel *s = arg;
    weft_sleep(test_in_ms(5));
    return weft_dvar_release(s->dv);
}

/* A select over an unbound variable and an empty channel fires the case
 * that becomes ready: the channel's, then (the variable bound meanwhile by
 * a waiting select's waker) the variable's, whose buffer holds the value. A
 * bound variable is ready at once, every time; a failed one fires with its
 * error as the case's result; a variable destroyed while a select waits
 * fires with -EBADF. */
static intptr_t select_main(void *arg)
{
    for (int policy = 0; policy < 2; policy++) {
        struct sel s = {.dv = make_dvar(sizeof(long)), .ch = make_chan(sizeof(long), 0)};
        long dv_v = 0, ch_v = 0;
        weft_case c[2] = {WEFT_DVAR_CASE(s.dv, &dv_v), WEFT_RECV(s.ch, &ch_v)};
        CHECK_RC(weft_select(c, 2, policy, 0), -ETIMEDOUT);
        CHECK_RC(weft_select(c, 2, policy, test_in_ms(5)), -ETIMEDOUT);

        weft_pid p = spawn_proc(send_later, &s);
        CHECK_RC(weft_select(c, 2, policy, WEFT_FOREVER), 1);
        CHECK(c[1].result == 0 && ch_v == 456 && dv_v == 0, "channel case: result %d, %ld %ld",
              c[1].result, ch_v, dv_v);
        CHECK(join_proc(p) == 0, "the sender failed");

        p = spawn_proc(bind_later, &s);
        CHECK_RC(weft_select(c, 2, policy, WEFT_FOREVER), 0);
        CHECK(c[0].result == 0 && dv_v == 123, "variable case: result %d, value %ld", c[0].result,
              dv_v);
        CHECK(join_proc(p) == 0, "the binder failed");
        for (int i = 0; i < 10; i++) {
            dv_v = 0;
            CHECK_RC(weft_select(c, 2, policy, 0), 0);
            CHECK(dv_v == 123, "bound: %ld", dv_v);
        }
        CHECK_RC(weft_dvar_release(s.dv), 0);

        s.dv = make_dvar(sizeof(long));
        c[0] = WEFT_DVAR_CASE(s.dv, &dv_v);
        dv_v = 0;
        p = spawn_proc(fail_later, &s);
        CHECK_RC(weft_select(c, 2, policy, WEFT_FOREVER), 0);
        CHECK(c[0].result == -ENOSPC && dv_v == 0, "failed variable: result %d, value %ld",
              c[0].result, dv_v);
        CHECK(join_proc(p) == 0, "the failer failed");
        CHECK_RC(weft_select(c, 2, policy, 0), 0);
        CHECK_RC(c[0].result, -ENOSPC);

        /* Destroyed while the select waits (the maker's reference is the
         * one the spawned process releases). */
        weft_dvar old = s.dv;
        CHECK_RC(weft_dvar_release(s.dv), 0);
        s.dv = make_dvar(sizeof(long));
        c[0] = WEFT_DVAR_CASE(s.dv, &dv_v);
        p = spawn_proc(release_later, &s);
        /* Released while it waits: the case fails; released before it
         * began (the releaser ran first): the select does. */
        int r = weft_select(c, 2, policy, WEFT_FOREVER);
        CHECK((r == 0 && c[0].result == -EBADF) || r == -EBADF, "select: %d, case %d", r,
              c[0].result);
        CHECK(join_proc(p) == 0, "the releaser failed");
        CHECK_RC(weft_select(c, 2, policy, 0), -EBADF);
        c[0] = WEFT_DVAR_CASE(old, &dv_v);
        CHECK_RC(weft_select(c, 2, policy, WEFT_FOREVER), -EBADF);

        /* A wrong size is misuse, as for channels. */
        int small = 0;
        s.dv = make_dvar(sizeof(long));
        weft_case bad[1] = {WEFT_DVAR_CASE(s.dv, &small)};
        CHECK_RC(weft_select(bad, 1, policy, 0), -EMSGSIZE);
        CHECK_RC(weft_dvar_release(s.dv), 0);
        CHECK_RC(weft_chan_release(s.ch), 0);
    }
    return 0;
}

Test(dvar, select_over_a_variable_and_a_channel, .timeout = 30)
{
    run_1_and_2(select_main, NULL);
}

/* Many selects wait on the same variable with their own channels; one bind
 * fires every one of them (and each channel stays untouched). */
struct sel_crowd {
    weft_dvar dv;
    weft_chan ch[READERS];
    atomic_int started;
};

struct sel_arg {
    struct sel_crowd *c;
    int i;
};

static intptr_t select_reader(void *arg)
{
    struct sel_arg *a = arg;
    long v = 0, w = 0;
    weft_case cases[2] = {WEFT_RECV(a->c->ch[a->i], &w), WEFT_DVAR_CASE(a->c->dv, &v)};
    atomic_fetch_add(&a->c->started, 1);
    int r = weft_select(cases, 2, a->i % 2, WEFT_FOREVER);
    return r == 1 && cases[1].result == 0 && v == 99 && w == 0 ? 0 : 1;
}

static intptr_t select_crowd_main(void *arg)
{
    int rounds = test_sanitized() ? 30 : 200;
    for (int r = 0; r < rounds; r++) {
        struct sel_crowd c = {.dv = make_dvar(sizeof(long))};
        struct sel_arg args[READERS];
        weft_pid pids[READERS];
        for (int i = 0; i < READERS; i++) {
            c.ch[i] = make_chan(sizeof(long), 1);
            args[i] = (struct sel_arg){&c, i};
            pids[i] = spawn_on(select_reader, &args[i], i, 0);
        }
        if (r % 2)
            while (atomic_load(&c.started) < READERS)
                weft_yield();
        long v = 99;
        CHECK_RC(weft_dvar_bind(c.dv, &v, sizeof v), 0);
        for (int i = 0; i < READERS; i++) {
            CHECK(join_proc(pids[i]) == 0, "round %d: select %d failed", r, i);
            CHECK_RC(weft_chan_len(c.ch[i]), 0);
            CHECK_RC(weft_chan_release(c.ch[i]), 0);
        }
        CHECK_RC(weft_dvar_release(c.dv), 0);
        if (atomic_load(&check_failures))
            break;
    }
    return 0;
}

Test(dvar, one_bind_fires_many_waiting_selects, .timeout = 60)
{
    run_1_and_2(select_crowd_main, NULL);
}

/* ---- outside threads ----------------------------------------------------------------------- */

struct thread_reader {
    pthread_t thread;
    weft_dvar dv;
    int64_t deadline;
    int rc;
    long v;
    atomic_int *started;
};

static void *thread_get(void *arg)
{
    struct thread_reader *t = arg;
    atomic_fetch_add(t->started, 1);
    t->rc = weft_dvar_get(t->dv, &t->v, sizeof t->v, t->deadline);
    return NULL;
}

static intptr_t proc_bind(void *arg)
{
    weft_dvar dv = *(weft_dvar *)arg;
    weft_sleep(test_in_ms(10));
    long v = 31337;
    return weft_dvar_bind(dv, &v, sizeof v);
}

static intptr_t proc_get(void *arg)
{
    weft_dvar dv = *(weft_dvar *)arg;
    long v = 0;
    int rc = weft_dvar_get(dv, &v, sizeof v, WEFT_FOREVER);
    return rc ? rc : v;
}

/* Threads outside the runtime block their own thread in weft_dvar_get until
 * a process binds; a thread binds for waiting processes; a thread's get
 * times out; a thread can make, fail and release variables. */
Test(dvar, outside_threads_wait_for_and_bind_variables, .timeout = 30)
{
    for (unsigned workers = 1; workers <= 2; workers++) {
        start_workers(workers);
        weft_dvar dv;
        ASSERT_OK(weft_dvar_make(&dv, sizeof(long)));
        atomic_int started = 0;
        struct thread_reader t[4];
        for (int i = 0; i < 4; i++) {
            t[i] = (struct thread_reader){.dv = dv, .deadline = WEFT_FOREVER, .rc = 12345,
                                          .started = &started};
            cr_assert_eq(pthread_create(&t[i].thread, NULL, thread_get, &t[i]), 0);
        }
        while (atomic_load(&started) < 4)
            usleep(100);
        weft_pid binder;
        ASSERT_OK(weft_spawn(&binder, proc_bind, &dv, NULL));
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i].thread, NULL);
            ASSERT_OK(t[i].rc);
            cr_assert_eq(t[i].v, 31337);
        }
        intptr_t r = -1;
        ASSERT_OK(weft_join(binder, &r, WEFT_FOREVER));
        cr_assert_eq(r, 0);
        ASSERT_OK(weft_dvar_release(dv));

        /* A thread binds for processes. */
        ASSERT_OK(weft_dvar_make(&dv, sizeof(long)));
        weft_pid readers[4];
        for (int i = 0; i < 4; i++)
            ASSERT_OK(weft_spawn(&readers[i], proc_get, &dv, NULL));
        usleep(5000);
        long v = 777;
        ASSERT_OK(weft_dvar_bind(dv, &v, sizeof v));
        ASSERT_RC(weft_dvar_bind(dv, &v, sizeof v), -EALREADY);
        for (int i = 0; i < 4; i++) {
            ASSERT_OK(weft_join(readers[i], &r, WEFT_FOREVER));
            cr_assert_eq(r, 777);
        }
        ASSERT_RC(weft_dvar_bound(dv), 1);
        ASSERT_OK(weft_dvar_release(dv));

        /* A thread's deadline; a thread fails a variable. */
        ASSERT_OK(weft_dvar_make(&dv, sizeof(long)));
        int64_t t0 = weft_now();
        ASSERT_RC(weft_dvar_get(dv, &v, sizeof v, t0 + 20 * MS), -ETIMEDOUT);
        cr_assert_geq(weft_now() - t0, 20 * MS);
        ASSERT_OK(weft_dvar_fail(dv, -EPROTO));
        ASSERT_RC(weft_dvar_get(dv, &v, sizeof v, WEFT_FOREVER), -EPROTO);
        ASSERT_OK(weft_dvar_release(dv));
        ASSERT_OK(weft_stop(WEFT_FOREVER));
    }
}

/* ---- destruction and references ------------------------------------------------------------- */

struct doomed {
    weft_dvar dv;
    atomic_int started;
};

static intptr_t doomed_reader(void *arg)
{
    struct doomed *d = arg;
    atomic_fetch_add(&d->started, 1);
    long v = 5;
    int rc = weft_dvar_get(d->dv, &v, sizeof v, weft_self() % 2 ? WEFT_FOREVER : test_in_ms(60000));
    return rc == -EBADF && v == 5 ? 0 : 1000 + rc;
}

/* The last release destroys the variable: readers waiting on it wake with
 * -EBADF (processes and a thread), its handle is stale for every call, and
 * a new variable that takes its slot is not reached through it. */
static intptr_t destroy_main(void *arg)
{
    for (int r = 0; r < 20; r++) {
        struct doomed d = {.dv = make_dvar(sizeof(long))};
        weft_pid pids[8];
        for (int i = 0; i < 8; i++)
            pids[i] = spawn_on(doomed_reader, &d, i, 0);
        if (r % 2)
            while (atomic_load(&d.started) < 8)
                weft_yield();
        weft_sleep(test_in_ms(1));
        CHECK_RC(weft_dvar_retain(d.dv), 0);
        CHECK_RC(weft_dvar_release(d.dv), 0); /* one left: nobody wakes */
        CHECK_RC(weft_dvar_bound(d.dv), 0);
        CHECK_RC(weft_dvar_release(d.dv), 0);
        for (int i = 0; i < 8; i++) {
            intptr_t rc = join_proc(pids[i]);
            CHECK(rc == 0, "round %d: reader %d returned %ld", r, i, (long)rc);
        }
        check_all_ebadf(d.dv, __LINE__);
        /* The slot's next variable is a new one. */
        weft_dvar again = make_dvar(sizeof(long));
        CHECK(again != d.dv, "a new variable got the old handle");
        check_all_ebadf(d.dv, __LINE__);
        CHECK_RC(weft_dvar_bound(again), 0);
        CHECK_RC(weft_dvar_release(again), 0);
    }
    return 0;
}

Test(dvar, last_release_wakes_waiting_readers_with_ebadf, .timeout = 30)
{
    run_1_and_2(destroy_main, NULL);
}

static intptr_t holder(void *arg)
{
    weft_dvar dv = *(weft_dvar *)arg;
    long v = 0;
    int rc = weft_dvar_get(dv, &v, sizeof v, WEFT_FOREVER);
    if (rc != 0 || v != 64)
        return 1;
    return weft_dvar_release(dv);
}

/* References: a reader that holds its own keeps the variable alive after the
 * maker releases; the variable goes only with the last reference. */
static intptr_t refs_main(void *arg)
{
    weft_dvar dv = make_dvar(sizeof(long));
    weft_pid pids[4];
    for (int i = 0; i < 4; i++) {
        CHECK_RC(weft_dvar_retain(dv), 0);
        pids[i] = spawn_proc(holder, &dv);
    }
    long v = 64;
    CHECK_RC(weft_dvar_bind(dv, &v, sizeof v), 0);
    CHECK_RC(weft_dvar_release(dv), 0);
    for (int i = 0; i < 4; i++)
        CHECK(join_proc(pids[i]) == 0, "holder %d failed", i);
    check_all_ebadf(dv, __LINE__);
    return 0;
}

Test(dvar, references_keep_the_variable_alive, .timeout = 30)
{
    run_1_and_2(refs_main, NULL);
}

/* ---- bad input ------------------------------------------------------------------------------ */

static intptr_t bad_input_main(void *arg)
{
    weft_dvar dv = 77;
    CHECK_RC(weft_dvar_make(NULL, 8), -EINVAL);
    CHECK_RC(weft_dvar_make(&dv, 0), -EINVAL);
    CHECK_RC(weft_dvar_make(&dv, WEFT_DVAR_MAX + 1), -EINVAL);
    CHECK_RC(weft_dvar_make(&dv, SIZE_MAX), -EINVAL);
    CHECK(dv == 77, "a refused make wrote %llu", (unsigned long long)dv);
    dv = make_dvar(sizeof(long));
    long v = 1;
    int small = 3;
    CHECK_RC(weft_dvar_bind(dv, NULL, sizeof v), -EINVAL);
    CHECK_RC(weft_dvar_bind(dv, &small, sizeof small), -EMSGSIZE);
    CHECK_RC(weft_dvar_bind(dv, &v, 0), -EMSGSIZE);
    CHECK_RC(weft_dvar_fail(dv, 0), -EINVAL);
    CHECK_RC(weft_dvar_fail(dv, 5), -EINVAL);
    CHECK_RC(weft_dvar_get(dv, NULL, sizeof v, 0), -EINVAL);
    CHECK_RC(weft_dvar_get(dv, &small, sizeof small, WEFT_FOREVER), -EMSGSIZE);
    CHECK_RC(weft_dvar_bound(dv), 0); /* none of it bound the variable */
    CHECK_RC(weft_dvar_bind(dv, &v, sizeof v), 0);
    CHECK_RC(weft_dvar_get(dv, &small, sizeof small, 0), -EMSGSIZE);
    CHECK(small == 3, "a wrong-size get wrote %d", small);
    /* A channel's handle is no variable, and a variable's no channel. */
    weft_chan ch = make_chan(sizeof(long), 1);
    CHECK_RC(weft_dvar_get(ch, &v, sizeof v, 0), -EBADF);
    CHECK_RC(weft_dvar_bind(ch, &v, sizeof v), -EBADF);
    CHECK_RC(weft_dvar_release(ch), -EBADF);
    CHECK_RC(weft_chan_send(dv, &v, sizeof v, 0), -EBADF);
    CHECK_RC(weft_chan_release(dv), -EBADF);
    CHECK_RC(weft_chan_release(ch), 0);
    uint64_t forged[] = {0, 1, 12345, ~0ull, dv + 1, dv ^ (1ull << 40)};
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++)
        check_all_ebadf(forged[i], __LINE__);
    CHECK_RC(weft_dvar_release(dv), 0);
    CHECK_RC(weft_dvar_release(dv), -EBADF);
    return 0;
}

Test(dvar, bad_arguments_give_their_codes, .timeout = 30)
{
    run_1_and_2(bad_input_main, NULL);
}

/* Without a runtime, every call that takes a handle is -ESHUTDOWN (after its
 * arguments are checked); with one stopping, a make is -ECANCELED. */
Test(dvar, calls_without_runtime_are_eshutdown, .timeout = 30)
{
    weft_dvar dv = 5;
    long v = 0;
    ASSERT_RC(weft_dvar_make(&dv, 8), -ESHUTDOWN);
    ASSERT_RC(weft_dvar_make(NULL, 8), -EINVAL);
    ASSERT_RC(weft_dvar_bind(dv, &v, sizeof v), -ESHUTDOWN);
    ASSERT_RC(weft_dvar_fail(dv, -EIO), -ESHUTDOWN);
    ASSERT_RC(weft_dvar_get(dv, &v, sizeof v, WEFT_FOREVER), -ESHUTDOWN);
    ASSERT_RC(weft_dvar_bound(dv), -ESHUTDOWN);
    ASSERT_RC(weft_dvar_retain(dv), -ESHUTDOWN);
    ASSERT_RC(weft_dvar_release(dv), -ESHUTDOWN);
    /* A handle of a stopped runtime stays dead in the next one. */
    start_workers(1);
    ASSERT_OK(weft_dvar_make(&dv, sizeof v));
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    ASSERT_RC(weft_dvar_bound(dv), -ESHUTDOWN);
    start_workers(1);
    ASSERT_RC(weft_dvar_bound(dv), -EBADF);
    ASSERT_RC(weft_dvar_get(dv, &v, sizeof v, WEFT_FOREVER), -EBADF);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

/* ---- the deadlock detector and the runtime's stop ------------------------------------------- */

static intptr_t lonely_reader(void *arg)
{
    weft_dvar dv = *(weft_dvar *)arg;
    long v;
    /* Woken by the shutdown that follows the detection. */
    CHECK_RC(weft_dvar_get(dv, &v, sizeof v, WEFT_FOREVER), -ECANCELED);
    return 0;
}

static intptr_t lonely_main(void *arg)
{
    static weft_dvar dv;
    dv = make_dvar(sizeof(long));
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.name = "waits-for-a-dvar";
    weft_pid pid = 0;
    CHECK_RC(weft_spawn(&pid, lonely_reader, &dv, &opts), 0);
    return weft_join(pid, NULL, WEFT_FOREVER);
}

/* A process waiting forever on a variable nobody will bind is blocked: the
 * deadlock detector of weft_run finds it, names it, and the stop frees the
 * variable (a leak would fail the ASan build). */
Test(dvar, reader_of_a_variable_nobody_binds_is_a_deadlock, .timeout = 30)
{
    for (unsigned workers = 1; workers <= 2; workers++) {
        char path[] = "/tmp/weft-dvar-XXXXXX";
        int file = mkstemp(path);
        cr_assert_geq(file, 0);
        unlink(path);
        int saved = dup(STDERR_FILENO);
        dup2(file, STDERR_FILENO);
        weft_config cfg;
        weft_config_init(&cfg);
        cfg.workers = workers;
        int rc = weft_run(lonely_main, NULL, &cfg, NULL);
        dup2(saved, STDERR_FILENO);
        close(saved);
        static char report[1 << 16];
        lseek(file, 0, SEEK_SET);
        ssize_t n = read(file, report, sizeof report - 1);
        report[n > 0 ? n : 0] = '\0';
        close(file);
        ASSERT_CHECKS();
        ASSERT_RC(rc, -EDEADLK);
        cr_assert(strstr(report, "waits-for-a-dvar") != NULL, "the report lacks the reader:\n%s",
                  report);
    }
}

static intptr_t stuck_reader(void *arg)
{
    weft_dvar dv = *(weft_dvar *)arg;
    long v;
    return weft_dvar_get(dv, &v, sizeof v, WEFT_FOREVER);
}

struct stuck_thread {
    pthread_t thread;
    weft_dvar dv;
    atomic_int entering;
    int rc;
};

static void *stuck_thread_get(void *arg)
{
    struct stuck_thread *t = arg;
    long v;
    atomic_store(&t->entering, 1);
    t->rc = weft_dvar_get(t->dv, &v, sizeof v, WEFT_FOREVER);
    return NULL;
}

/* A counting allocation hook: every block weft takes is given back, with
 * the size it was taken with (a block the stop forgot would stay counted:
 * the pools keep their blocks reachable, so a leak checker would not tell). */
static struct {
    atomic_long live, bad_size;
} counted;

static void *counting_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    size_t *block = ptr ? (size_t *)ptr - 2 : NULL;
    if (block && *block != old_size)
        atomic_fetch_add(&counted.bad_size, 1);
    if (new_size == 0) {
        if (block)
            atomic_fetch_sub(&counted.live, 1);
        free(block);
        return NULL;
    }
    if (block) {
        block = realloc(block, new_size + 2 * sizeof *block);
        if (block)
            *block = new_size;
        return block ? block + 2 : NULL;
    }
    block = malloc(new_size + 2 * sizeof *block);
    if (!block)
        return NULL;
    *block = new_size;
    atomic_fetch_add(&counted.live, 1);
    return block + 2;
}

/* weft_stop with variables still held (bound, unbound, failed, inline and
 * large, some with readers waiting: processes and a thread): the readers
 * wake with -ECANCELED (the thread: or -ESHUTDOWN, had it not got in yet),
 * and every variable is freed (the ASan build checks for leaks). */
Test(dvar, stop_with_live_variables_frees_them, .timeout = 30)
{
    ASSERT_OK(weft_set_allocator(counting_alloc, NULL));
    for (unsigned workers = 1; workers <= 2; workers++) {
        start_workers(workers);
        weft_dvar dv[6];
        size_t sizes[] = {8, 8, 8, 4096, WEFT_DVAR_MAX, 64};
        for (int i = 0; i < 6; i++)
            ASSERT_OK(weft_dvar_make(&dv[i], sizes[i]));
        static unsigned char big[WEFT_DVAR_MAX];
        ASSERT_OK(weft_dvar_bind(dv[0], big, 8));
        ASSERT_OK(weft_dvar_fail(dv[1], -EIO));
        ASSERT_OK(weft_dvar_bind(dv[4], big, WEFT_DVAR_MAX));
        weft_pid pids[3];
        for (int i = 0; i < 3; i++)
            ASSERT_OK(weft_spawn(&pids[i], stuck_reader, &dv[2], NULL));
        struct stuck_thread t = {.dv = dv[2], .rc = 12345};
        cr_assert_eq(pthread_create(&t.thread, NULL, stuck_thread_get, &t), 0);
        while (!atomic_load(&t.entering))
            usleep(100);
        usleep(20000);
        /* A released one is recycled, not leaked either. */
        ASSERT_OK(weft_dvar_release(dv[5]));
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        pthread_join(t.thread, NULL);
        cr_assert(t.rc == -ECANCELED || t.rc == -ESHUTDOWN, "the thread's get returned %d", t.rc);
        cr_assert_eq(atomic_load(&counted.live), 0, "%u workers: %ld blocks still held after the stop",
                     workers, atomic_load(&counted.live));
        cr_assert_eq(atomic_load(&counted.bad_size), 0, "blocks given back with a wrong size");
    }
    ASSERT_OK(weft_set_allocator(NULL, NULL));
}
