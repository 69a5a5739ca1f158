/* test-stream.c: streams: broadcast order per reader at different speeds,
 * readers made after writes, bounded backpressure by the slowest reader,
 * queue delivery exactly once to several readers, close, release of a
 * reader letting a writer on, unbounded growth (and its failure), deadlines,
 * select, outside threads, destruction while waiting, bad input and the
 * runtime's stop with live streams. */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#define TEST_PROC_CHECKS
#include "test.h"

static weft_stream make_stream(size_t elem, size_t cap, int mode)
{
    weft_stream s = 0;
    CHECK_RC(weft_stream_make(&s, elem, cap, mode), 0);
    return s;
}

static weft_stream make_reader(weft_stream s)
{
    weft_stream r = 0;
    CHECK_RC(weft_stream_reader(s, &r), 0);
    return r;
}

static int put(weft_stream s, long v, int64_t deadline)
{
    return weft_stream_write(s, &v, sizeof v, deadline);
}

/* Every call on h fails with -EBADF. */
static void check_all_ebadf(weft_stream h, int line)
{
    long v = 0;
    weft_stream r = 99;
    long rcs[] = {
        weft_stream_write(h, &v, sizeof v, 0), weft_stream_write(h, &v, sizeof v, test_in_ms(5)),
        weft_stream_read(h, &v, sizeof v, 0),  weft_stream_read(h, &v, sizeof v, WEFT_FOREVER),
        weft_stream_reader(h, &r),             weft_stream_close(h),
        weft_stream_len(h),                    weft_stream_retain(h),
        weft_stream_release(h),
    };
    for (size_t i = 0; i < sizeof rcs / sizeof rcs[0]; i++)
        if (rcs[i] != -EBADF)
            check_fail(line, "handle %#llx: call %zu returned %ld (%s), expected -EBADF",
                       (unsigned long long)h, i, rcs[i], weft_strerror((int)rcs[i]));
    if (v != 0 || r != 99)
        check_fail(line, "a refused call wrote its output");
}

/* ---- broadcast -------------------------------------------------------------------------- */

struct bcast {
    weft_stream s;
    long n;
    size_t cap;
};

struct bcast_reader {
    struct bcast *b;
    weft_stream r;
    int speed; /* 0: as fast as it can; k: yields k times, sleeps every 64 values */
};

/* Reads 0..n-1 in order, then -EPIPE; while it reads, it never lags more
 * than the capacity behind the writer. */
static intptr_t bcast_read_all(void *arg)
{
    struct bcast_reader *a = arg;
    for (long i = 0; i < a->b->n; i++) {
        long v = -1;
        int rc = weft_stream_read(a->r, &v, sizeof v, WEFT_FOREVER);
        if (rc != 0 || v != i) {
            check_fail(__LINE__, "reader (speed %d): value %ld: rc %d (%s), got %ld", a->speed, i, rc,
                       weft_strerror(rc), v);
            return 1;
        }
        long len = weft_stream_len(a->r);
        if (a->b->cap && len > (long)a->b->cap) {
            check_fail(__LINE__, "reader lags %ld values behind, capacity %zu", len, a->b->cap);
            return 1;
        }
        for (int k = 0; k < a->speed; k++)
            weft_yield();
        if (a->speed > 1 && i % 64 == 0)
            weft_sleep(weft_now() + 100 * US);
    }
    long v = -1;
    CHECK_RC(weft_stream_read(a->r, &v, sizeof v, WEFT_FOREVER), -EPIPE);
    CHECK_RC(weft_stream_read(a->r, &v, sizeof v, 0), -EPIPE);
    CHECK(v == -1, "a read at the end wrote %ld", v);
    CHECK_RC(weft_stream_release(a->r), 0);
    return 0;
}

/* Several readers at different speeds, on both workers, each see every
 * value in order, bounded (capacity 1, 4, 64) and unbounded. */
static intptr_t bcast_order_main(void *arg)
{
    static const size_t caps[] = {0, 1, 4, 64};
    long n = test_sanitized() ? 3000 : 30000;
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        struct bcast b = {.s = make_stream(sizeof(long), caps[k], WEFT_STREAM_BROADCAST), .n = n,
                          .cap = caps[k]};
        struct bcast_reader rd[4];
        weft_pid pids[4];
        for (int i = 0; i < 4; i++) {
            rd[i] = (struct bcast_reader){.b = &b, .r = make_reader(b.s), .speed = i};
            pids[i] = spawn_on(bcast_read_all, &rd[i], i, i % 2);
        }
        for (long i = 0; i < n; i++)
            if (put(b.s, i, WEFT_FOREVER) != 0) {
                check_fail(__LINE__, "write %ld failed", i);
                break;
            }
        CHECK_RC(weft_stream_close(b.s), 0);
        CHECK_RC(put(b.s, 1, 0), -EPIPE);
        for (int i = 0; i < 4; i++)
            CHECK(join_proc(pids[i]) == 0, "cap %zu: reader %d failed", caps[k], i);
        CHECK_RC(weft_stream_len(b.s), 0);
        CHECK_RC(weft_stream_release(b.s), 0);
        check_all_ebadf(b.s, __LINE__);
        if (atomic_load(&check_failures))
            break;
    }
    return 0;
}

Test(stream, broadcast_each_reader_sees_every_value_in_order, .timeout = 60)
{
    run_1_and_2(bcast_order_main, NULL);
}

/* A reader made after some writes sees only the values written after it;
 * a broadcast stream without readers drops what is written. */
static intptr_t late_reader_main(void *arg)
{
    for (size_t cap = 0; cap <= 8; cap += 8) {
        weft_stream s = make_stream(sizeof(long), cap, WEFT_STREAM_BROADCAST);
        for (long i = 0; i < 20; i++) /* nobody reads: dropped, never blocks */
            CHECK_RC(put(s, i, 0), 0);
        CHECK_RC(weft_stream_len(s), 0);
        weft_stream a = make_reader(s);
        CHECK_RC(weft_stream_len(a), 0);
        CHECK_RC(put(s, 100, 0), 0);
        CHECK_RC(put(s, 101, 0), 0);
        weft_stream b = make_reader(s);
        CHECK_RC(put(s, 102, 0), 0);
        CHECK_RC(weft_stream_len(a), 3);
        CHECK_RC(weft_stream_len(b), 1);
        CHECK_RC(weft_stream_len(s), 3); /* held for the slowest */
        long v;
        for (long want = 100; want <= 102; want++) {
            CHECK_RC(weft_stream_read(a, &v, sizeof v, 0), 0);
            CHECK(v == want, "a: got %ld, expected %ld", v, want);
        }
        CHECK_RC(weft_stream_read(b, &v, sizeof v, 0), 0);
        CHECK(v == 102, "b: got %ld", v);
        CHECK_RC(weft_stream_read(a, &v, sizeof v, 0), -ETIMEDOUT);
        CHECK_RC(weft_stream_read(b, &v, sizeof v, 0), -ETIMEDOUT);
        CHECK_RC(weft_stream_len(s), 0);
        /* The stream's own handle does not read a broadcast stream. */
        CHECK_RC(weft_stream_read(s, &v, sizeof v, 0), -EINVAL);
        CHECK_RC(weft_stream_release(a), 0);
        CHECK_RC(weft_stream_release(b), 0);
        CHECK_RC(weft_stream_release(s), 0);
    }
    return 0;
}

Test(stream, late_readers_see_only_later_values, .timeout = 30)
{
    run_1_and_2(late_reader_main, NULL);
}

/* ---- backpressure ------------------------------------------------------------------------ */

struct blocked_writer {
    weft_stream s;
    long v;
    atomic_int done;
};

static intptr_t write_forever(void *arg)
{
    struct blocked_writer *w = arg;
    int rc = put(w->s, w->v, WEFT_FOREVER);
    atomic_store(&w->done, 1);
    return rc;
}

/* A bounded broadcast stream: a fast reader keeps up, a slow one reads
 * nothing; the writer fills the capacity for the slow one and then waits
 * (deadline 0: -ETIMEDOUT; a deadline: after it). Each value the slow
 * reader takes lets exactly one more in, a blocked writer among them; the
 * fast reader sees every value meanwhile. */
static intptr_t backpressure_main(void *arg)
{
    enum { CAP = 4 };
    weft_stream s = make_stream(sizeof(long), CAP, WEFT_STREAM_BROADCAST);
    weft_stream fast = make_reader(s), slow = make_reader(s);
    long v, next_fast = 0;
    for (long i = 0; i < CAP; i++) {
        CHECK_RC(put(s, i, 0), 0);
        CHECK_RC(weft_stream_read(fast, &v, sizeof v, 0), 0);
        CHECK(v == next_fast++, "fast got %ld", v);
    }
    CHECK_RC(weft_stream_len(slow), CAP);
    CHECK_RC(weft_stream_len(fast), 0);
    CHECK_RC(put(s, 99, 0), -ETIMEDOUT);
    int64_t t0 = weft_now();
    CHECK_RC(put(s, 99, t0 + 10 * MS), -ETIMEDOUT);
    CHECK(weft_now() - t0 >= 10 * MS, "the write gave up early");
    CHECK_RC(weft_stream_len(fast), 0); /* the refused writes left nothing */
    long next_w = CAP; /* the next value to write */
    for (long i = 0; i < 3 * CAP; i++) {
        CHECK_RC(put(s, 1000, 0), -ETIMEDOUT); /* full, for the slow reader */
        if (i % 2) {
            CHECK_RC(weft_stream_read(slow, &v, sizeof v, 0), 0);
            CHECK(v == i, "slow got %ld, expected %ld", v, i);
            CHECK_RC(put(s, next_w++, 0), 0);
        } else {
            /* A writer that waits, let in by the slow reader's read. */
            struct blocked_writer w = {.s = s, .v = next_w++};
            weft_pid p = spawn_proc(write_forever, &w);
            weft_sleep(test_in_ms(1));
            CHECK(!atomic_load(&w.done), "the writer did not wait for the slow reader");
            CHECK_RC(weft_stream_read(slow, &v, sizeof v, 0), 0);
            CHECK(v == i, "slow got %ld, expected %ld", v, i);
            CHECK(join_proc(p) == 0, "the blocked writer failed");
        }
        CHECK_RC(weft_stream_len(slow), CAP);
        while (weft_stream_read(fast, &v, sizeof v, 0) == 0) {
            CHECK(v == next_fast, "fast got %ld, expected %ld", v, next_fast);
            next_fast++;
        }
    }
    /* A writer waits; the slow reader's release lets it on. */
    struct blocked_writer w = {.s = s, .v = next_w++};
    weft_pid p = spawn_proc(write_forever, &w);
    weft_sleep(test_in_ms(1));
    CHECK(!atomic_load(&w.done), "the writer did not wait for the slow reader");
    CHECK_RC(weft_stream_release(slow), 0);
    CHECK(join_proc(p) == 0, "the blocked writer failed");
    while (weft_stream_read(fast, &v, sizeof v, 0) == 0) {
        CHECK(v == next_fast, "fast got %ld, expected %ld", v, next_fast);
        next_fast++;
    }
    CHECK(next_fast == next_w, "fast saw %ld values of %ld", next_fast, next_w);
    /* Alone now, the fast reader is the slowest: it is let lag CAP values. */
    for (long i = 0; i < 3 * CAP; i++)
        CHECK_RC(put(s, i, 0), i < CAP ? 0 : -ETIMEDOUT);
    CHECK_RC(weft_stream_release(fast), 0);
    CHECK_RC(put(s, 5, 0), 0); /* no reader: dropped */
    CHECK_RC(weft_stream_release(s), 0);
    return 0;
}

Test(stream, bounded_broadcast_writer_waits_for_the_slowest_reader, .timeout = 30)
{
    run_1_and_2(backpressure_main, NULL);
}

/* Writers blocked on a broadcast stream held back by one reader: releasing
 * that reader lets them all on, in order, to the remaining reader; releasing
 * the last reader lets them on too, their values dropped. */
static intptr_t release_unblocks_main(void *arg)
{
    for (int last = 0; last < 2; last++) {
        weft_stream s = make_stream(sizeof(long), 2, WEFT_STREAM_BROADCAST);
        weft_stream keep = last ? 0 : make_reader(s);
        weft_stream lag = make_reader(s);
        CHECK_RC(put(s, 0, 0), 0);
        CHECK_RC(put(s, 1, 0), 0);
        long v;
        if (keep)
            for (long i = 0; i < 2; i++) {
                CHECK_RC(weft_stream_read(keep, &v, sizeof v, 0), 0);
                CHECK(v == i, "got %ld", v);
            }
        struct blocked_writer w[3];
        weft_pid p[3];
        for (int i = 0; i < 3; i++) {
            w[i] = (struct blocked_writer){.s = s, .v = 10 + i};
            p[i] = spawn_on(write_forever, &w[i], 0, 1);
            weft_sleep(test_in_ms(1));
        }
        for (int i = 0; i < 3; i++)
            CHECK(!atomic_load(&w[i].done), "writer %d did not wait", i);
        CHECK_RC(weft_stream_release(lag), 0);
        /* Two get in at once (capacity 2), the third once keep reads;
         * without keep, all three, their values dropped. */
        CHECK(join_proc(p[0]) == 0, "writer 0 failed");
        CHECK(join_proc(p[1]) == 0, "writer 1 failed");
        if (keep) {
            weft_sleep(test_in_ms(1));
            CHECK(!atomic_load(&w[2].done), "writer 2 did not wait for room");
            for (long i = 10; i < 13; i++) {
                CHECK_RC(weft_stream_read(keep, &v, sizeof v, WEFT_FOREVER), 0);
                CHECK(v == i, "got %ld, expected %ld", v, i);
            }
        }
        CHECK(join_proc(p[2]) == 0, "writer 2 failed");
        if (keep)
            CHECK_RC(weft_stream_release(keep), 0);
        CHECK_RC(weft_stream_len(s), 0);
        CHECK_RC(weft_stream_release(s), 0);
    }
    return 0;
}

Test(stream, releasing_a_reader_lets_blocked_writers_on, .timeout = 30)
{
    run_1_and_2(release_unblocks_main, NULL);
}

/* ---- queue ------------------------------------------------------------------------------- */

enum { QWRITERS = 3, QREADERS = 4 };

struct queue_run {
    weft_stream s;
    long per_writer;
    atomic_int *seen;       /* [QWRITERS * per_writer] */
    atomic_long count, sum;
    atomic_int writers_left;
};

struct queue_reader {
    struct queue_run *q;
    weft_stream r; /* a reader, or the stream itself */
    bool own;      /* r is a reader of its own, released at the end */
    int slow;
};

static intptr_t queue_writer(void *arg)
{
    struct queue_run *q = ((void **)arg)[0];
    long w = (long)(intptr_t)((void **)arg)[1];
    for (long i = 0; i < q->per_writer; i++)
        if (put(q->s, w * q->per_writer + i, WEFT_FOREVER) != 0) {
            check_fail(__LINE__, "writer %ld: write %ld failed", w, i);
            return 1;
        }
    if (atomic_fetch_sub(&q->writers_left, 1) == 1)
        CHECK_RC(weft_stream_close(q->s), 0);
    return 0;
}

static intptr_t queue_reader(void *arg)
{
    struct queue_reader *a = arg;
    long v, got = 0, last_of[QWRITERS];
    for (int i = 0; i < QWRITERS; i++)
        last_of[i] = -1;
    int rc;
    while ((rc = weft_stream_read(a->r, &v, sizeof v, WEFT_FOREVER)) == 0) {
        long total = QWRITERS * a->q->per_writer;
        if (v < 0 || v >= total) {
            check_fail(__LINE__, "read %ld, outside 0..%ld", v, total - 1);
            return 1;
        }
        atomic_fetch_add(&a->q->seen[v], 1);
        atomic_fetch_add(&a->q->count, 1);
        atomic_fetch_add(&a->q->sum, v);
        /* One writer's values reach one reader in the order written. */
        long w = v / a->q->per_writer;
        CHECK(v > last_of[w], "writer %ld's %ld came after %ld", w, v, last_of[w]);
        last_of[w] = v;
        got++;
        if (a->slow && got % 16 == 0)
            weft_yield();
    }
    CHECK_RC(rc, -EPIPE);
    if (a->own)
        CHECK_RC(weft_stream_release(a->r), 0);
    return 0;
}

/* Several writers and readers (readers of their own and the stream's own
 * handle) on a queue stream: every value is read exactly once (each value
 * seen once, count and sum match), bounded and unbounded. */
static intptr_t queue_once_main(void *arg)
{
    static const size_t caps[] = {0, 1, 3, 64};
    long per = test_sanitized() ? 2000 : 20000;
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        struct queue_run q = {.s = make_stream(sizeof(long), caps[k], WEFT_STREAM_QUEUE),
                              .per_writer = per};
        q.seen = calloc((size_t)QWRITERS * per, sizeof *q.seen);
        atomic_store(&q.writers_left, QWRITERS);
        struct queue_reader rd[QREADERS];
        weft_pid rp[QREADERS], wp[QWRITERS];
        void *wargs[QWRITERS][2];
        for (int i = 0; i < QREADERS; i++) {
            rd[i] = (struct queue_reader){.q = &q, .own = i != 0, .slow = i % 2};
            rd[i].r = rd[i].own ? make_reader(q.s) : q.s;
            rp[i] = spawn_on(queue_reader, &rd[i], i, 0);
        }
        for (int i = 0; i < QWRITERS; i++) {
            wargs[i][0] = &q;
            wargs[i][1] = (void *)(intptr_t)i;
            wp[i] = spawn_on(queue_writer, wargs[i], i + 1, 0);
        }
        for (int i = 0; i < QWRITERS; i++)
            CHECK(join_proc(wp[i]) == 0, "writer %d failed", i);
        for (int i = 0; i < QREADERS; i++)
            CHECK(join_proc(rp[i]) == 0, "reader %d failed", i);
        long total = QWRITERS * per;
        CHECK(atomic_load(&q.count) == total, "cap %zu: %ld values read, %ld written", caps[k],
              atomic_load(&q.count), total);
        CHECK(atomic_load(&q.sum) == total * (total - 1) / 2, "cap %zu: sum %ld", caps[k],
              atomic_load(&q.sum));
        for (long v = 0; v < total; v++)
            if (atomic_load(&q.seen[v]) != 1) {
                check_fail(__LINE__, "cap %zu: value %ld read %d times", caps[k], v,
                           atomic_load(&q.seen[v]));
                break;
            }
        CHECK_RC(weft_stream_release(q.s), 0);
        free(q.seen);
        if (atomic_load(&check_failures))
            break;
    }
    return 0;
}

Test(stream, queue_delivers_each_value_to_exactly_one_reader, .timeout = 60)
{
    run_1_and_2(queue_once_main, NULL);
}

/* A queue stream keeps what is written until someone reads it (its own
 * handle, or any reader), in order; its length is shared by all. */
static intptr_t queue_basics_main(void *arg)
{
    weft_stream s = make_stream(sizeof(long), 3, WEFT_STREAM_QUEUE);
    for (long i = 0; i < 3; i++)
        CHECK_RC(put(s, i, 0), 0);
    CHECK_RC(put(s, 3, 0), -ETIMEDOUT);
    weft_stream a = make_reader(s), b = make_reader(s);
    CHECK_RC(weft_stream_len(a), 3);
    CHECK_RC(weft_stream_len(s), 3);
    long v;
    CHECK_RC(weft_stream_read(a, &v, sizeof v, 0), 0);
    CHECK(v == 0, "got %ld", v);
    CHECK_RC(weft_stream_read(s, &v, sizeof v, 0), 0);
    CHECK(v == 1, "got %ld", v);
    CHECK_RC(weft_stream_read(b, &v, sizeof v, 0), 0);
    CHECK(v == 2, "got %ld", v);
    CHECK_RC(weft_stream_read(b, &v, sizeof v, 0), -ETIMEDOUT);
    CHECK_RC(weft_stream_len(b), 0);
    int64_t t0 = weft_now();
    CHECK_RC(weft_stream_read(s, &v, sizeof v, t0 + 10 * MS), -ETIMEDOUT);
    CHECK(weft_now() - t0 >= 10 * MS, "the read gave up early");
    CHECK(v == 2, "a read that timed out wrote %ld", v);
    CHECK_RC(weft_stream_release(a), 0);
    CHECK_RC(weft_stream_release(b), 0);
    CHECK_RC(weft_stream_release(s), 0);
    return 0;
}

Test(stream, queue_keeps_values_for_any_reader, .timeout = 30)
{
    run_1_and_2(queue_basics_main, NULL);
}

/* ---- close --------------------------------------------------------------------------------- */

struct waiting_op {
    weft_stream h;
    long v;
    int rc;
    atomic_int started;
};

static intptr_t read_waiting(void *arg)
{
    struct waiting_op *o = arg;
    o->v = 0;
    atomic_store(&o->started, 1);
    o->rc = weft_stream_read(o->h, &o->v, sizeof o->v, WEFT_FOREVER);
    return 0;
}

static intptr_t write_waiting(void *arg)
{
    struct waiting_op *o = arg;
    atomic_store(&o->started, 1);
    o->rc = put(o->h, 7, WEFT_FOREVER);
    return 0;
}

/* Closing: what was written is still read, then -EPIPE; writes fail with
 * -EPIPE; a second close is -EPIPE; readers waiting on an empty stream and
 * writers waiting on a full one wake with -EPIPE; a reader made after the
 * close gets -EPIPE (broadcast) or what is left (queue). */
static intptr_t close_main(void *arg)
{
    for (int mode = 0; mode < 2; mode++) {
        weft_stream s = make_stream(sizeof(long), 2, mode);
        weft_stream r1 = make_reader(s), r2 = make_reader(s);
        /* Waiting readers. */
        struct waiting_op ro[2] = {{.h = r1, .rc = 1}, {.h = mode ? s : r2, .rc = 1}};
        weft_pid rp[2];
        for (int i = 0; i < 2; i++)
            rp[i] = spawn_proc(read_waiting, &ro[i]);
        weft_sleep(test_in_ms(1));
        CHECK_RC(weft_stream_close(s), 0);
        for (int i = 0; i < 2; i++) {
            join_proc(rp[i]);
            CHECK_RC(ro[i].rc, -EPIPE);
            CHECK(ro[i].v == 0, "a read woken by the close wrote %ld", ro[i].v);
        }
        CHECK_RC(weft_stream_close(s), -EPIPE);
        CHECK_RC(put(s, 1, 0), -EPIPE);
        CHECK_RC(weft_stream_release(r1), 0);
        CHECK_RC(weft_stream_release(r2), 0);
        CHECK_RC(weft_stream_release(s), 0);

        /* Values written before the close are read after it; a waiting
         * writer wakes with -EPIPE, its value not written. */
        s = make_stream(sizeof(long), 2, mode);
        r1 = make_reader(s);
        CHECK_RC(put(s, 10, 0), 0);
        CHECK_RC(put(s, 11, 0), 0);
        struct waiting_op wo = {.h = s, .rc = 1};
        weft_pid wp = spawn_proc(write_waiting, &wo);
        weft_sleep(test_in_ms(1));
        CHECK_RC(weft_stream_close(s), 0);
        join_proc(wp);
        CHECK_RC(wo.rc, -EPIPE);
        weft_stream late = make_reader(s);
        long v;
        CHECK_RC(weft_stream_read(r1, &v, sizeof v, 0), 0);
        CHECK(v == 10, "got %ld", v);
        CHECK_RC(weft_stream_read(mode ? late : r1, &v, sizeof v, WEFT_FOREVER), 0);
        CHECK(v == 11, "got %ld", v);
        CHECK_RC(weft_stream_read(r1, &v, sizeof v, WEFT_FOREVER), -EPIPE);
        CHECK_RC(weft_stream_read(late, &v, sizeof v, WEFT_FOREVER), -EPIPE);
        if (mode)
            CHECK_RC(weft_stream_read(s, &v, sizeof v, 0), -EPIPE);
        CHECK_RC(weft_stream_len(r1), 0);
        CHECK_RC(weft_stream_release(late), 0);
        CHECK_RC(weft_stream_release(r1), 0);
        CHECK_RC(weft_stream_release(s), 0);
    }
    return 0;
}

Test(stream, close_lets_readers_drain_then_epipe, .timeout = 30)
{
    run_1_and_2(close_main, NULL);
}

/* ---- growth ----------------------------------------------------------------------------------- */

/* Unbounded streams grow to hold many values, of several sizes (inline
 * rings and rings allocated from the start), with the ring wrapped when it
 * grows: everything comes back in order, for each reader. */
static intptr_t growth_main(void *arg)
{
    static const size_t sizes[] = {8, 24, 100, 4096};
    long n = test_sanitized() ? 20000 : 200000;
    unsigned char *buf = malloc(4096), *got = malloc(4096);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t size = sizes[k];
        long count = size > 1000 ? n / 50 : n;
        for (int mode = 0; mode < 2; mode++) {
            weft_stream s = make_stream(size, 0, mode);
            weft_stream a = make_reader(s), b = make_reader(s);
            long written = 0, read_a = 0, read_b = 0;
            /* Write three, read two (a) and one (b), then the rest: the
             * ring wraps before it grows. */
            while (written < count) {
                for (int i = 0; i < 3 && written < count; i++, written++) {
                    memset(buf, 0, size);
                    memcpy(buf, &written, sizeof written);
                    if (size > sizeof written)
                        buf[size - 1] = (unsigned char)written;
                    if (weft_stream_write(s, buf, size, 0) != 0) {
                        check_fail(__LINE__, "size %zu: write %ld failed", size, written);
                        goto out;
                    }
                }
                for (int i = 0; i < 2 && read_a < written; i++, read_a++) {
                    CHECK_RC(weft_stream_read(a, got, size, 0), 0);
                    long v;
                    memcpy(&v, got, sizeof v);
                    CHECK(v == (mode ? read_a + read_b : read_a), "size %zu: a read %ld", size, v);
                }
                if (!mode && read_b < written && written % 2) {
                    CHECK_RC(weft_stream_read(b, got, size, 0), 0);
                    long v;
                    memcpy(&v, got, sizeof v);
                    CHECK(v == read_b && (size == sizeof v || got[size - 1] == (unsigned char)v),
                          "size %zu: b read %ld", size, v);
                    read_b++;
                }
                if (atomic_load(&check_failures))
                    goto out;
            }
            if (mode) {
                /* Queue: a took 2 of every 3; the rest is one queue. */
                CHECK_RC(weft_stream_len(s), written - read_a);
                long next = read_a;
                while (weft_stream_read(b, got, size, 0) == 0) {
                    long v;
                    memcpy(&v, got, sizeof v);
                    CHECK(v == next, "size %zu: queue read %ld, expected %ld", size, v, next);
                    next++;
                }
                CHECK(next == count, "size %zu: the queue ended at %ld", size, next);
            } else {
                CHECK_RC(weft_stream_len(a), count - read_a);
                CHECK_RC(weft_stream_len(b), count - read_b);
                for (; read_a < count; read_a++) {
                    long v = -1;
                    CHECK_RC(weft_stream_read(a, got, size, 0), 0);
                    memcpy(&v, got, sizeof v);
                    if (v != read_a) {
                        check_fail(__LINE__, "size %zu: a read %ld, expected %ld", size, v, read_a);
                        break;
                    }
                }
                for (; read_b < count; read_b++) {
                    long v = -1;
                    CHECK_RC(weft_stream_read(b, got, size, 0), 0);
                    memcpy(&v, got, sizeof v);
                    if (v != read_b) {
                        check_fail(__LINE__, "size %zu: b read %ld, expected %ld", size, v, read_b);
                        break;
                    }
                }
                CHECK_RC(weft_stream_len(s), 0);
            }
        out:
            CHECK_RC(weft_stream_release(a), 0);
            CHECK_RC(weft_stream_release(b), 0);
            CHECK_RC(weft_stream_release(s), 0);
            if (atomic_load(&check_failures))
                break;
        }
    }
    free(buf);
    free(got);
    return 0;
}

Test(stream, unbounded_streams_grow_and_keep_order, .timeout = 60)
{
    run_1_and_2(growth_main, NULL);
}

/* A counting allocation hook that can refuse: an unbounded stream whose
 * ring cannot grow refuses the write with -ENOMEM and goes on working; at
 * the stop, every block weft took has been given back. */
static struct {
    atomic_long live, bad_size;
    atomic_int refuse;
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
    if (!block && atomic_load(&counted.refuse))
        return NULL;
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

static intptr_t enomem_main(void *arg)
{
    for (int mode = 0; mode < 2; mode++) {
        weft_stream s = make_stream(sizeof(long), 0, mode);
        weft_stream r = make_reader(s);
        long i = 0;
        for (; i < 8; i++) /* the inline ring: no allocation */
            CHECK_RC(put(s, i, 0), 0);
        atomic_store(&counted.refuse, 1);
        CHECK_RC(put(s, 8, 0), -ENOMEM);
        CHECK_RC(put(s, 8, WEFT_FOREVER), -ENOMEM);
        atomic_store(&counted.refuse, 0);
        long v;
        CHECK_RC(weft_stream_read(r, &v, sizeof v, 0), 0);
        CHECK(v == 0, "got %ld", v);
        CHECK_RC(put(s, 8, 0), 0); /* room again */
        for (i = 9; i < 100; i++)
            CHECK_RC(put(s, i, 0), 0);
        for (long want = 1; want < 100; want++) {
            CHECK_RC(weft_stream_read(r, &v, sizeof v, 0), 0);
            CHECK(v == want, "got %ld, expected %ld", v, want);
        }
        CHECK_RC(weft_stream_release(r), 0);
        CHECK_RC(weft_stream_release(s), 0);
    }
    return 0;
}

Test(stream, growth_that_cannot_allocate_is_enomem, .timeout = 30)
{
    ASSERT_OK(weft_set_allocator(counting_alloc, NULL));
    for (unsigned workers = 1; workers <= 2; workers++) {
        weft_config cfg;
        weft_config_init(&cfg);
        cfg.workers = workers;
        intptr_t r = -1;
        ASSERT_OK(weft_run(enomem_main, NULL, &cfg, &r));
        ASSERT_CHECKS();
        cr_assert_eq(r, 0);
        cr_assert_eq(atomic_load(&counted.live), 0, "%ld blocks held after the run",
                     atomic_load(&counted.live));
    }
    cr_assert_eq(atomic_load(&counted.bad_size), 0);
    ASSERT_OK(weft_set_allocator(NULL, NULL));
}

/* ---- racing writers and readers at 2 workers ------------------------------------------------ */

struct relay {
    weft_stream s, r;
    long n;
};

static intptr_t relay_reader(void *arg)
{
    struct relay *a = arg;
    for (long i = 0; i < a->n; i++) {
        long v = -1;
        int rc = weft_stream_read(a->r, &v, sizeof v, i % 3 ? WEFT_FOREVER : test_in_ms(10000));
        if (rc != 0 || v != i) {
            check_fail(__LINE__, "value %ld: rc %d, got %ld", i, rc, v);
            return 1;
        }
    }
    return 0;
}

/* A writer on one worker and readers on both, each read racing the next
 * write (readers mostly wait, so values go straight into their buffers):
 * no value is lost, repeated, or reordered. */
static intptr_t relay_main(void *arg)
{
    long n = test_sanitized() ? 5000 : 100000;
    for (int round = 0; round < 4; round++) {
        int mode = round % 2 ? WEFT_STREAM_QUEUE : WEFT_STREAM_BROADCAST;
        size_t cap = round < 2 ? 0 : 2;
        weft_stream s = make_stream(sizeof(long), cap, mode);
        struct relay rl[3];
        weft_pid p[3];
        int nr = mode == WEFT_STREAM_QUEUE ? 1 : 3;
        for (int i = 0; i < nr; i++) {
            rl[i] = (struct relay){.s = s, .r = make_reader(s), .n = n};
            p[i] = spawn_on(relay_reader, &rl[i], i, 1);
        }
        for (long i = 0; i < n; i++)
            if (put(s, i, WEFT_FOREVER) != 0) {
                check_fail(__LINE__, "write %ld failed", i);
                break;
            }
        for (int i = 0; i < nr; i++) {
            CHECK(join_proc(p[i]) == 0, "round %d: reader %d failed", round, i);
            CHECK_RC(weft_stream_release(rl[i].r), 0);
        }
        CHECK_RC(weft_stream_release(s), 0);
        if (atomic_load(&check_failures))
            break;
    }
    return 0;
}

Test(stream, values_handed_to_waiting_readers_across_workers, .timeout = 60)
{
    run_at_workers(2, relay_main, NULL);
}

/* ---- select ------------------------------------------------------------------------------------ */

struct sel {
    weft_stream s;
    weft_stream r;
    weft_chan ch;
    int what; /* 0 write, 1 send, 2 close, 3 release the reader */
};

static intptr_t sel_later(void *arg)
{
    struct sel *a = arg;
    weft_sleep(test_in_ms(3));
    long v = 500 + a->what;
    switch (a->what) {
    case 0: return put(a->s, v, WEFT_FOREVER);
    case 1: return weft_chan_send(a->ch, &v, sizeof v, WEFT_FOREVER);
    case 2: return weft_stream_close(a->s);
    default: return weft_stream_release(a->r);
    }
}

/* A select over a stream reader and a channel fires what becomes ready: a
 * write (the value in the case's buffer), a send, a close (result -EPIPE),
 * the reader's release (result -EBADF); a queue stream's own handle works
 * as a case; a broadcast stream's handle is -EINVAL; a wrong size is
 * -EMSGSIZE. */
static intptr_t select_main(void *arg)
{
    for (int mode = 0; mode < 2; mode++)
        for (int what = 0; what < 4; what++)
            for (int policy = 0; policy < 2; policy++) {
                struct sel a = {.s = make_stream(sizeof(long), what % 2 ? 1 : 0, mode),
                                .ch = make_chan(sizeof(long), 0), .what = what};
                a.r = make_reader(a.s);
                long sv = 0, cv = 0;
                weft_case c[2] = {WEFT_STREAM_CASE(mode && what < 2 ? a.s : a.r, &sv),
                                  WEFT_RECV(a.ch, &cv)};
                CHECK_RC(weft_select(c, 2, policy, 0), -ETIMEDOUT);
                weft_pid p = spawn_proc(sel_later, &a);
                int rc = weft_select(c, 2, policy, WEFT_FOREVER);
                CHECK(join_proc(p) == 0, "mode %d what %d: the other side failed", mode, what);
                switch (what) {
                case 0:
                    CHECK(rc == 0 && c[0].result == 0 && sv == 500 && cv == 0,
                          "mode %d: write: rc %d result %d value %ld", mode, rc, c[0].result, sv);
                    break;
                case 1:
                    CHECK(rc == 1 && c[1].result == 0 && cv == 501 && sv == 0,
                          "mode %d: send: rc %d value %ld", mode, rc, cv);
                    break;
                case 2:
                    CHECK(rc == 0 && c[0].result == -EPIPE && sv == 0,
                          "mode %d: close: rc %d result %d", mode, rc, c[0].result);
                    break;
                default:
                    /* Released while it waits, or before it began. */
                    CHECK(((rc == 0 && c[0].result == -EBADF) || rc == -EBADF) && sv == 0,
                          "mode %d: release: rc %d result %d", mode, rc, c[0].result);
                    CHECK_RC(weft_select(c, 2, policy, 0), -EBADF);
                    break;
                }
                if (what != 3) {
                    /* Ready values are taken at once, in order. */
                    if (what != 2) {
                        for (long i = 0; i < 3; i++)
                            CHECK_RC(put(a.s, i, 0), i && what % 2 ? -ETIMEDOUT : 0);
                        c[1].disabled = 1;
                        CHECK_RC(weft_select(c, 2, policy, 0), 0);
                        CHECK(c[0].result == 0 && sv == 0, "a ready value: result %d, %ld",
                              c[0].result, sv);
                        c[1].disabled = 0;
                        CHECK_RC(weft_stream_close(a.s), 0);
                        if (what == 0)
                            for (long i = 1; i < 3; i++) {
                                CHECK_RC(weft_select(c, 2, policy, 0), 0);
                                CHECK(sv == i, "got %ld", sv);
                            }
                    }
                    CHECK_RC(weft_select(c, 2, policy, 0), 0);
                    CHECK_RC(c[0].result, -EPIPE);
                    CHECK_RC(weft_stream_release(a.r), 0);
                }
                CHECK_RC(weft_stream_release(a.s), 0);
                CHECK_RC(weft_chan_release(a.ch), 0);
            }
    /* Bad cases. */
    weft_stream s = make_stream(sizeof(long), 0, WEFT_STREAM_BROADCAST);
    weft_stream r = make_reader(s);
    long v;
    int small;
    weft_case bad[1] = {WEFT_STREAM_CASE(s, &v)};
    CHECK_RC(weft_select(bad, 1, WEFT_SELECT_FAIR, 0), -EINVAL);
    CHECK_RC(weft_select(bad, 1, WEFT_SELECT_FAIR, WEFT_FOREVER), -EINVAL);
    bad[0] = WEFT_STREAM_CASE(r, &small);
    CHECK_RC(weft_select(bad, 1, WEFT_SELECT_FAIR, WEFT_FOREVER), -EMSGSIZE);
    CHECK_RC(weft_stream_release(r), 0);
    bad[0] = WEFT_STREAM_CASE(r, &v);
    CHECK_RC(weft_select(bad, 1, WEFT_SELECT_FAIR, WEFT_FOREVER), -EBADF);
    CHECK_RC(weft_stream_release(s), 0);
    return 0;
}

Test(stream, select_over_a_stream_and_a_channel, .timeout = 30)
{
    run_1_and_2(select_main, NULL);
}

/* Selects waiting on several readers of one broadcast stream: one write
 * fires all of them; a select over two readers of the same stream takes one
 * value from one of them only. */
static intptr_t select_many_reader(void *arg)
{
    weft_stream r = *(weft_stream *)arg;
    long v = 0;
    weft_case c[1] = {WEFT_STREAM_CASE(r, &v)};
    int rc = weft_select(c, 1, WEFT_SELECT_FAIR, WEFT_FOREVER);
    return rc == 0 && c[0].result == 0 && v == 42 ? 0 : 1;
}

static intptr_t select_many_main(void *arg)
{
    int rounds = test_sanitized() ? 30 : 300;
    for (int round = 0; round < rounds; round++) {
        weft_stream s = make_stream(sizeof(long), round % 2, WEFT_STREAM_BROADCAST);
        weft_stream rs[8];
        weft_pid p[8];
        for (int i = 0; i < 8; i++) {
            rs[i] = make_reader(s);
            p[i] = spawn_on(select_many_reader, &rs[i], i, 0);
        }
        if (round % 3 == 0)
            weft_sleep(test_in_ms(1));
        CHECK_RC(put(s, 42, WEFT_FOREVER), 0);
        for (int i = 0; i < 8; i++) {
            CHECK(join_proc(p[i]) == 0, "round %d: select %d failed", round, i);
            CHECK_RC(weft_stream_len(rs[i]), 0);
        }
        /* Two readers in one select: one value, from one of them. */
        long v1 = 0, v2 = 0;
        weft_case c[2] = {WEFT_STREAM_CASE(rs[0], &v1), WEFT_STREAM_CASE(rs[1], &v2)};
        CHECK_RC(put(s, 43, 0), 0);
        int k = weft_select(c, 2, WEFT_SELECT_FAIR, 0);
        CHECK(k == 0 || k == 1, "select returned %d", k);
        CHECK(k == 0 ? v1 == 43 && v2 == 0 : v2 == 43 && v1 == 0, "values %ld %ld", v1, v2);
        CHECK_RC(weft_stream_len(rs[0]), k == 0 ? 0 : 1);
        CHECK_RC(weft_stream_len(rs[1]), k == 1 ? 0 : 1);
        for (int i = 0; i < 8; i++)
            CHECK_RC(weft_stream_release(rs[i]), 0);
        CHECK_RC(weft_stream_release(s), 0);
        if (atomic_load(&check_failures))
            break;
    }
    return 0;
}

Test(stream, one_write_fires_selects_on_every_reader, .timeout = 60)
{
    run_1_and_2(select_many_main, NULL);
}

/* ---- outside threads ------------------------------------------------------------------------- */

struct thread_reader {
    pthread_t thread;
    weft_stream r;
    long n;
    int bad;
};

static void *thread_read_all(void *arg)
{
    struct thread_reader *t = arg;
    for (long i = 0; i < t->n; i++) {
        long v = -1;
        if (weft_stream_read(t->r, &v, sizeof v, WEFT_FOREVER) != 0 || v != i) {
            t->bad = 1;
            return NULL;
        }
    }
    long v;
    if (weft_stream_read(t->r, &v, sizeof v, WEFT_FOREVER) != -EPIPE)
        t->bad = 2;
    return NULL;
}

static intptr_t proc_read_all(void *arg)
{
    thread_read_all(arg);
    return 0;
}

static intptr_t proc_write_all(void *arg)
{
    struct thread_reader *t = arg;
    for (long i = 0; i < t->n; i++)
        if (put(t->r, i, WEFT_FOREVER) != 0)
            return 1;
    return weft_stream_close(t->r);
}

/* Outside threads read a bounded broadcast stream that a process writes
 * (both block their own side), and a thread writes a queue that processes
 * read; a thread's read times out. */
Test(stream, outside_threads_read_and_write, .timeout = 60)
{
    long n = test_sanitized() ? 2000 : 20000;
    for (unsigned workers = 1; workers <= 2; workers++) {
        start_workers(workers);
        weft_stream s;
        ASSERT_OK(weft_stream_make(&s, sizeof(long), 4, WEFT_STREAM_BROADCAST));
        struct thread_reader t[3];
        for (int i = 0; i < 3; i++) {
            t[i] = (struct thread_reader){.n = n};
            ASSERT_OK(weft_stream_reader(s, &t[i].r));
            cr_assert_eq(pthread_create(&t[i].thread, NULL, thread_read_all, &t[i]), 0);
        }
        struct thread_reader w = {.r = s, .n = n};
        weft_pid wp;
        ASSERT_OK(weft_spawn(&wp, proc_write_all, &w, NULL));
        for (int i = 0; i < 3; i++) {
            pthread_join(t[i].thread, NULL);
            cr_assert_eq(t[i].bad, 0, "thread reader %d failed (%d)", i, t[i].bad);
            ASSERT_OK(weft_stream_release(t[i].r));
        }
        intptr_t r = -1;
        ASSERT_OK(weft_join(wp, &r, WEFT_FOREVER));
        cr_assert_eq(r, 0);
        ASSERT_OK(weft_stream_release(s));

        /* A thread writes; processes read a queue. */
        ASSERT_OK(weft_stream_make(&s, sizeof(long), 2, WEFT_STREAM_QUEUE));
        long v;
        int64_t t0 = weft_now();
        ASSERT_RC(weft_stream_read(s, &v, sizeof v, t0 + 10 * MS), -ETIMEDOUT);
        cr_assert_geq(weft_now() - t0, 10 * MS);
        struct thread_reader pr = {.r = s, .n = n};
        weft_pid rp;
        ASSERT_OK(weft_spawn(&rp, proc_read_all, &pr, NULL));
        for (long i = 0; i < n; i++)
            ASSERT_OK(put(s, i, WEFT_FOREVER));
        ASSERT_OK(weft_stream_close(s));
        ASSERT_OK(weft_join(rp, NULL, WEFT_FOREVER));
        cr_assert_eq(pr.bad, 0, "the process reader failed (%d)", pr.bad);
        ASSERT_OK(weft_stream_release(s));
        ASSERT_OK(weft_stop(WEFT_FOREVER));
    }
}

/* ---- destruction --------------------------------------------------------------------------------- */

/* A reader released while a process waits on it wakes it with -EBADF; a
 * queue stream whose last reference goes while a process waits to read its
 * handle, or to write to it, wakes them with -EBADF; every handle is then
 * stale. A stream released by its maker lives on while readers hold it. */
static intptr_t destroy_main(void *arg)
{
    for (int round = 0; round < 10; round++) {
        weft_stream s = make_stream(sizeof(long), 1, WEFT_STREAM_BROADCAST);
        weft_stream r = make_reader(s);
        struct waiting_op o = {.h = r, .rc = 1};
        weft_pid p = spawn_on(read_waiting, &o, round, 0);
        while (!atomic_load(&o.started))
            weft_yield();
        weft_sleep(test_in_ms(1));
        CHECK_RC(weft_stream_release(r), 0);
        join_proc(p);
        CHECK_RC(o.rc, -EBADF);
        check_all_ebadf(r, __LINE__);
        CHECK_RC(put(s, 1, 0), 0); /* no reader: dropped */

        /* The maker's release leaves the stream to its reader. */
        r = make_reader(s);
        CHECK_RC(weft_stream_release(s), 0);
        CHECK_RC(weft_stream_len(r), 0);
        long v;
        CHECK_RC(weft_stream_read(r, &v, sizeof v, 0), -ETIMEDOUT);
        CHECK_RC(weft_stream_release(r), 0);
        check_all_ebadf(s, __LINE__);

        /* A queue: a waiting read of its handle, a waiting write. */
        s = make_stream(sizeof(long), 1, WEFT_STREAM_QUEUE);
        struct waiting_op ro = {.h = s, .rc = 1};
        p = spawn_on(read_waiting, &ro, round + 1, 0);
        weft_sleep(test_in_ms(1));
        CHECK_RC(weft_stream_release(s), 0);
        join_proc(p);
        CHECK_RC(ro.rc, -EBADF);
        s = make_stream(sizeof(long), 1, WEFT_STREAM_QUEUE);
        CHECK_RC(put(s, 1, 0), 0);
        struct waiting_op wo = {.h = s, .rc = 1};
        p = spawn_on(write_waiting, &wo, round + 1, 0);
        weft_sleep(test_in_ms(1));
        CHECK_RC(weft_stream_release(s), 0);
        join_proc(p);
        CHECK_RC(wo.rc, -EBADF);
        check_all_ebadf(s, __LINE__);
    }
    return 0;
}

Test(stream, destruction_wakes_waiting_readers_and_writers_with_ebadf, .timeout = 30)
{
    run_1_and_2(destroy_main, NULL);
}

/* ---- bad input --------------------------------------------------------------------------------- */

static intptr_t bad_input_main(void *arg)
{
    weft_stream s = 77;
    CHECK_RC(weft_stream_make(NULL, 8, 0, 0), -EINVAL);
    CHECK_RC(weft_stream_make(&s, 0, 0, 0), -EINVAL);
    CHECK_RC(weft_stream_make(&s, WEFT_DVAR_MAX + 1, 0, 0), -EINVAL);
    CHECK_RC(weft_stream_make(&s, 8, 0, 2), -EINVAL);
    CHECK_RC(weft_stream_make(&s, 8, 0, -1), -EINVAL);
    CHECK_RC(weft_stream_make(&s, 8, WEFT_CHAN_BUFFER_MAX / 8 + 1, 0), -E2BIG);
    CHECK_RC(weft_stream_make(&s, 16, SIZE_MAX / 16 + 2, 1), -E2BIG);
    CHECK(s == 77, "a refused make wrote %llu", (unsigned long long)s);
    s = make_stream(sizeof(long), 2, WEFT_STREAM_BROADCAST);
    weft_stream r = make_reader(s);
    long v = 1;
    int small = 5;
    CHECK_RC(weft_stream_reader(s, NULL), -EINVAL);
    CHECK_RC(weft_stream_write(s, NULL, sizeof v, 0), -EINVAL);
    CHECK_RC(weft_stream_write(s, &small, sizeof small, 0), -EMSGSIZE);
    CHECK_RC(weft_stream_write(r, &v, sizeof v, 0), -EBADF); /* a reader's handle */
    CHECK_RC(weft_stream_close(r), -EBADF);
    weft_stream rr = 55;
    CHECK_RC(weft_stream_reader(r, &rr), -EBADF);
    CHECK(rr == 55, "a refused reader wrote its handle");
    CHECK_RC(weft_stream_read(r, NULL, sizeof v, 0), -EINVAL);
    CHECK_RC(weft_stream_read(r, &small, sizeof small, 0), -EMSGSIZE);
    CHECK_RC(weft_stream_read(s, &v, sizeof v, 0), -EINVAL);
    CHECK_RC(weft_stream_read(s, &v, sizeof v, WEFT_FOREVER), -EINVAL);
    CHECK_RC(weft_stream_len(r), 0); /* none of it wrote */
    CHECK_RC(put(s, 3, 0), 0);
    CHECK_RC(weft_stream_read(r, &small, sizeof small, WEFT_FOREVER), -EMSGSIZE);
    CHECK(small == 5, "a wrong-size read wrote %d", small);
    CHECK_RC(weft_stream_len(r), 1);
    /* Channels and variables are no streams, and the reverse. */
    weft_chan ch = make_chan(sizeof(long), 1);
    weft_dvar dv = 0;
    CHECK_RC(weft_dvar_make(&dv, sizeof(long)), 0);
    uint64_t others[] = {ch, dv, 0, 1, ~0ull, s ^ (1ull << 40)};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        check_all_ebadf(others[i], __LINE__);
    CHECK_RC(weft_chan_send(s, &v, sizeof v, 0), -EBADF);
    CHECK_RC(weft_chan_recv(r, &v, sizeof v, 0), -EBADF);
    CHECK_RC(weft_dvar_get(r, &v, sizeof v, 0), -EBADF);
    CHECK_RC(weft_chan_release(ch), 0);
    CHECK_RC(weft_dvar_release(dv), 0);
    /* References: retain and release work on both kinds of handle. */
    CHECK_RC(weft_stream_retain(r), 0);
    CHECK_RC(weft_stream_retain(s), 0);
    CHECK_RC(weft_stream_release(r), 0);
    CHECK_RC(weft_stream_release(s), 0);
    CHECK_RC(weft_stream_read(r, &v, sizeof v, 0), 0);
    CHECK(v == 3, "got %ld", v);
    CHECK_RC(weft_stream_release(r), 0);
    CHECK_RC(weft_stream_release(r), -EBADF);
    CHECK_RC(weft_stream_release(s), 0);
    CHECK_RC(weft_stream_release(s), -EBADF);
    return 0;
}

Test(stream, bad_arguments_give_their_codes, .timeout = 30)
{
    run_1_and_2(bad_input_main, NULL);
}

Test(stream, calls_without_runtime_are_eshutdown, .timeout = 30)
{
    weft_stream s = 5, r = 6;
    long v = 0;
    ASSERT_RC(weft_stream_make(&s, 8, 0, 0), -ESHUTDOWN);
    ASSERT_RC(weft_stream_make(NULL, 8, 0, 0), -EINVAL);
    ASSERT_RC(weft_stream_reader(s, &r), -ESHUTDOWN);
    ASSERT_RC(weft_stream_write(s, &v, sizeof v, 0), -ESHUTDOWN);
    ASSERT_RC(weft_stream_read(r, &v, sizeof v, WEFT_FOREVER), -ESHUTDOWN);
    ASSERT_RC(weft_stream_close(s), -ESHUTDOWN);
    ASSERT_RC(weft_stream_len(r), -ESHUTDOWN);
    ASSERT_RC(weft_stream_retain(s), -ESHUTDOWN);
    ASSERT_RC(weft_stream_release(s), -ESHUTDOWN);
    cr_assert_eq(r, 6);
}

/* ---- the runtime's stop ---------------------------------------------------------------------------- */

static intptr_t stuck_read(void *arg)
{
    weft_stream r = *(weft_stream *)arg;
    long v;
    return weft_stream_read(r, &v, sizeof v, WEFT_FOREVER);
}

static intptr_t stuck_write(void *arg)
{
    weft_stream s = *(weft_stream *)arg;
    return put(s, 1, WEFT_FOREVER);
}

/* weft_stop with streams and readers still held (values in them, grown
 * rings, allocated rings, a released stream whose reader lives on) and
 * processes waiting to read and to write: they wake with -ECANCELED and
 * every block is given back. */
Test(stream, stop_with_live_streams_frees_them, .timeout = 30)
{
    ASSERT_OK(weft_set_allocator(counting_alloc, NULL));
    for (unsigned workers = 1; workers <= 2; workers++) {
        start_workers(workers);
        weft_stream s[4], r[4];
        ASSERT_OK(weft_stream_make(&s[0], sizeof(long), 0, WEFT_STREAM_BROADCAST));
        ASSERT_OK(weft_stream_make(&s[1], 1000, 8, WEFT_STREAM_QUEUE));
        ASSERT_OK(weft_stream_make(&s[2], sizeof(long), 1, WEFT_STREAM_BROADCAST));
        ASSERT_OK(weft_stream_make(&s[3], 100, 0, WEFT_STREAM_QUEUE));
        for (int i = 0; i < 4; i++)
            ASSERT_OK(weft_stream_reader(s[i], &r[i]));
        static unsigned char big[1000];
        for (long i = 0; i < 1000; i++) /* grows */
            ASSERT_OK(put(s[0], i, 0));
        ASSERT_OK(weft_stream_write(s[1], big, 1000, 0));
        ASSERT_OK(put(s[2], 1, 0)); /* full */
        for (int i = 0; i < 10; i++)
            ASSERT_OK(weft_stream_write(s[3], big, 100, 0));
        ASSERT_OK(weft_stream_release(s[0])); /* its reader keeps it */
        weft_stream empty, er;
        ASSERT_OK(weft_stream_make(&empty, sizeof(long), 0, WEFT_STREAM_BROADCAST));
        ASSERT_OK(weft_stream_reader(empty, &er));
        weft_pid p[2];
        ASSERT_OK(weft_spawn(&p[0], stuck_read, &er, NULL));
        ASSERT_OK(weft_spawn(&p[1], stuck_write, &s[2], NULL));
        usleep(20000);
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        cr_assert_eq(atomic_load(&counted.live), 0, "%u workers: %ld blocks still held after the stop",
                     workers, atomic_load(&counted.live));
    }
    cr_assert_eq(atomic_load(&counted.bad_size), 0, "blocks given back with a wrong size");
    ASSERT_OK(weft_set_allocator(NULL, NULL));
}
