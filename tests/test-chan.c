/* test-chan.c: channels: rendezvous and buffered exchange, FIFO order and
 * copying of elements of several sizes, many senders and receivers, deadlines,
 * close, reference counting and stale handles, outside threads, length and
 * capacity, bad input, allocation failure and the runtime's shutdown. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#define TEST_PROC_CHECKS
#include "test.h"

/* Every call on ch fails with -EBADF: the handle is stale (or forged). */
static void check_all_ebadf(weft_chan ch, int line)
{
    int v = 0;
    int rcs[] = {
        weft_chan_send(ch, &v, sizeof v, 0),  weft_chan_send(ch, &v, sizeof v, test_in_ms(5)),
        weft_chan_recv(ch, &v, sizeof v, 0),  weft_chan_recv(ch, &v, sizeof v, WEFT_FOREVER),
        weft_chan_close(ch),                  weft_chan_retain(ch),
        weft_chan_release(ch),                weft_chan_len(ch),
        weft_chan_cap(ch),
    };
    for (size_t i = 0; i < sizeof rcs / sizeof rcs[0]; i++)
        if (rcs[i] != -EBADF)
            check_fail(line, "handle %#llx: call %zu returned %d (%s), expected -EBADF",
                       (unsigned long long)ch, i, rcs[i], weft_strerror(rcs[i]));
}

/* A small deterministic generator for the tests' own choices. */
static uint64_t lcg_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* ---- rendezvous ----------------------------------------------------------------------- */

struct order_rx {
    weft_chan ch;
    int n;
    atomic_int got; /* values received so far */
};

static intptr_t recv_in_order(void *arg)
{
    struct order_rx *rx = arg;
    for (int i = 0; i < rx->n; i++) {
        int v = -1;
        int rc = weft_chan_recv(rx->ch, &v, sizeof v, WEFT_FOREVER);
        if (rc != 0 || v != i) {
            check_fail(__LINE__, "receive %d: rc %d (%s), value %d", i, rc, weft_strerror(rc), v);
            return 1;
        }
        atomic_store(&rx->got, i + 1);
    }
    return 0;
}

/* A rendezvous channel buffers nothing: a send with nobody receiving times
 * out, and a send completes only once the receiver has taken the element (so
 * the receiver has finished the previous receive before the next send ends). */
static intptr_t rendezvous_main(void *arg)
{
    int n = test_sanitized() ? 2000 : 20000;
    weft_chan ch = make_chan(sizeof(int), 0);
    CHECK_RC(weft_chan_cap(ch), 0);
    int v = 7;
    CHECK_RC(weft_chan_send(ch, &v, sizeof v, 0), -ETIMEDOUT);
    CHECK_RC(weft_chan_len(ch), 0);
    CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), -ETIMEDOUT);
    CHECK(v == 7, "a failed receive wrote %d", v);

    struct order_rx rx = {.ch = ch, .n = n};
    weft_pid pid = spawn_proc(recv_in_order, &rx);
    for (int i = 0; i < n; i++) {
        int rc = weft_chan_send(ch, &i, sizeof i, WEFT_FOREVER);
        if (rc != 0) {
            check_fail(__LINE__, "send %d: %d (%s)", i, rc, weft_strerror(rc));
            break;
        }
        int got = atomic_load(&rx.got);
        if (got < i) {
            check_fail(__LINE__, "send %d completed while the receiver had taken only %d", i, got);
            break;
        }
        CHECK_RC(weft_chan_len(ch), 0);
    }
    CHECK(join_proc(pid) == 0, "the receiver failed");
    CHECK_RC(weft_chan_send(ch, &v, sizeof v, 0), -ETIMEDOUT); /* nobody waits any more */
    CHECK_RC(weft_chan_release(ch), 0);
    return 0;
}

Test(chan, rendezvous_send_completes_only_with_a_receiver, .timeout = 30)
{
    run_1_and_2(rendezvous_main, NULL);
}

/* ---- buffered channels against a model queue ----------------------------------------- */

struct triple {
    uint64_t a, b, c;
};

/* Random sends and receives (non-blocking) on one buffered channel, checked
 * against a model ring: FIFO order across wrap-arounds, send refused exactly
 * when full, receive refused exactly when empty, weft_chan_len exact. */
static intptr_t buffered_model_main(void *arg)
{
    size_t caps[] = {1, 2, 3, 7, 64};
    uint64_t seed = 12345;
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        size_t cap = caps[k];
        weft_chan ch = make_chan(sizeof(struct triple), cap);
        CHECK_RC(weft_chan_cap(ch), (int)cap);
        struct triple model[64];
        size_t head = 0, count = 0;
        uint64_t next = 1;
        for (int step = 0; step < 20000; step++) {
            /* Bias towards filling or draining in phases, to hit full and empty often. */
            bool want_send = (lcg_next(&seed) % 100) < ((step / 50) % 2 ? 70u : 30u);
            if (want_send) {
                struct triple t = {next, ~next, next * 3};
                int rc = weft_chan_send(ch, &t, sizeof t, 0);
                if (count == cap) {
                    CHECK_RC(rc, -ETIMEDOUT);
                } else {
                    CHECK_RC(rc, 0);
                    model[(head + count) % cap] = t;
                    count++;
                    next++;
                }
            } else {
                struct triple t = {0, 0, 0};
                int rc = weft_chan_recv(ch, &t, sizeof t, 0);
                if (count == 0) {
                    CHECK_RC(rc, -ETIMEDOUT);
                } else {
                    CHECK_RC(rc, 0);
                    struct triple e = model[head];
                    if (t.a != e.a || t.b != e.b || t.c != e.c) {
                        check_fail(__LINE__, "cap %zu step %d: received %llu, expected %llu", cap,
                                   step, (unsigned long long)t.a, (unsigned long long)e.a);
                        return 1;
                    }
                    head = (head + 1) % cap;
                    count--;
                }
            }
            int len = weft_chan_len(ch);
            if (len != (int)count) {
                check_fail(__LINE__, "cap %zu step %d: weft_chan_len %d, model %zu", cap, step, len,
                           count);
                return 1;
            }
        }
        CHECK_RC(weft_chan_release(ch), 0);
    }
    return 0;
}

Test(chan, buffered_fifo_full_and_empty_match_a_model_queue, .timeout = 30)
{
    run_1_and_2(buffered_model_main, NULL);
}

/* A full buffer with senders waiting: each receive takes the oldest buffered
 * element and the first waiting sender's element moves into the buffer (the
 * length stays at the capacity); waiting senders are served in the order they
 * came. One worker: a spawned process runs at once until it blocks, so the
 * spawn order is the order of waiting. */
static intptr_t blocked_send_value(void *arg)
{
    weft_chan *chv = arg;
    int v = (int)chv[1];
    return weft_chan_send(chv[0], &v, sizeof v, WEFT_FOREVER);
}

static intptr_t waiting_senders_main(void *arg)
{
    weft_chan ch = make_chan(sizeof(int), 3);
    int v;
    for (v = 1; v <= 3; v++)
        CHECK_RC(weft_chan_send(ch, &v, sizeof v, 0), 0);
    CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), 0); /* 1: the ring's head moves on */
    CHECK(v == 1, "received %d", v);
    v = 4;
    CHECK_RC(weft_chan_send(ch, &v, sizeof v, 0), 0); /* wraps to slot 0 */
    CHECK_RC(weft_chan_len(ch), 3);
    weft_chan args[3][2];
    weft_pid pids[3];
    for (int i = 0; i < 3; i++) {
        args[i][0] = ch;
        args[i][1] = (weft_chan)(5 + i);
        pids[i] = spawn_proc(blocked_send_value, args[i]);
    }
    CHECK_RC(weft_chan_len(ch), 3);
    int expect[] = {2, 3, 4, 5, 6, 7};
    for (int i = 0; i < 6; i++) {
        v = -1;
        CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), 0);
        CHECK(v == expect[i], "receive %d: %d, expected %d", i, v, expect[i]);
        int len = weft_chan_len(ch);
        int want = i < 3 ? 3 : 5 - i;
        CHECK(len == want, "after receive %d: length %d, expected %d", i, len, want);
    }
    CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), -ETIMEDOUT);
    for (int i = 0; i < 3; i++)
        CHECK(join_proc(pids[i]) == 0, "sender %d failed", i);
    CHECK_RC(weft_chan_release(ch), 0);
    return 0;
}

Test(chan, waiting_senders_refill_the_buffer_in_order, .timeout = 30)
{
    intptr_t r = test_run(1, waiting_senders_main, NULL);
    ASSERT_CHECKS();
    cr_assert_eq(r, 0);
}

/* ---- element sizes and copying ------------------------------------------------------------- */

enum { GUARD = 16 };

static unsigned char pattern(int msg, size_t byte, size_t size)
{
    return (unsigned char)(msg * 31 + byte * 7 + size + (byte >> 8));
}

struct sized {
    weft_chan ch;
    size_t size;
    int n;
};

/* Receives n elements into a buffer with guard bytes after it: each element
 * arrives whole, and nothing past elem_size is written. */
static intptr_t recv_sized(void *arg)
{
    struct sized *s = arg;
    unsigned char *buf = malloc(s->size + GUARD);
    for (int m = 0; m < s->n; m++) {
        memset(buf, 0x55, s->size + GUARD);
        int rc = weft_chan_recv(s->ch, buf, s->size, WEFT_FOREVER);
        if (rc != 0) {
            check_fail(__LINE__, "size %zu, message %d: %d (%s)", s->size, m, rc, weft_strerror(rc));
            break;
        }
        for (size_t b = 0; b < s->size; b++)
            if (buf[b] != pattern(m, b, s->size)) {
                check_fail(__LINE__, "size %zu, message %d: byte %zu is %#x, expected %#x", s->size, m,
                           b, buf[b], pattern(m, b, s->size));
                free(buf);
                return 1;
            }
        for (size_t b = s->size; b < s->size + GUARD; b++)
            if (buf[b] != 0x55) {
                check_fail(__LINE__, "size %zu: receive wrote past the element (byte %zu)", s->size, b);
                free(buf);
                return 1;
            }
    }
    free(buf);
    return 0;
}

/* Elements of 1, 8, 24, 4096 bytes and WEFT_CHAN_ELEM_MAX, over rendezvous
 * and buffered channels (small buffers inline, larger ones not): each arrives
 * intact, and the sender may scribble over its buffer as soon as the send
 * returns (the element was copied). */
static intptr_t sizes_main(void *arg)
{
    size_t sizes[] = {1, 8, 24, 4096, WEFT_CHAN_ELEM_MAX};
    size_t caps[] = {0, 1, 4};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
        for (size_t ci = 0; ci < sizeof caps / sizeof caps[0]; ci++) {
            struct sized s = {.size = sizes[si], .n = sizes[si] > 4096 ? 20 : 200};
            s.ch = make_chan(s.size, caps[ci]);
            CHECK_RC(weft_chan_cap(s.ch), (int)caps[ci]);
            weft_pid pid = spawn_proc(recv_sized, &s);
            unsigned char *buf = malloc(s.size);
            for (int m = 0; m < s.n; m++) {
                for (size_t b = 0; b < s.size; b++)
                    buf[b] = pattern(m, b, s.size);
                CHECK_RC(weft_chan_send(s.ch, buf, s.size, WEFT_FOREVER), 0);
                memset(buf, 0xEE, s.size); /* reused at once */
            }
            CHECK(join_proc(pid) == 0, "size %zu cap %zu: receiver failed", s.size, caps[ci]);
            free(buf);
            CHECK_RC(weft_chan_release(s.ch), 0);
        }
    return 0;
}

Test(chan, elements_of_each_size_arrive_whole_and_are_copied, .timeout = 30)
{
    run_1_and_2(sizes_main, NULL);
}

/* ---- many senders, many receivers ---------------------------------------------------------- */

enum { MPMC_SENDERS = 4, MPMC_RECEIVERS = 4 };

struct mpmc {
    weft_chan ch;
    int per_sender;
    atomic_int *seen; /* per value: times received */
    atomic_llong sum;
    atomic_int received;
};

struct mpmc_arg {
    struct mpmc *m;
    int index;
};

static intptr_t mpmc_sender(void *arg)
{
    struct mpmc_arg *a = arg;
    for (int i = 0; i < a->m->per_sender; i++) {
        int v = a->index * a->m->per_sender + i;
        int rc = weft_chan_send(a->m->ch, &v, sizeof v, WEFT_FOREVER);
        if (rc != 0) {
            check_fail(__LINE__, "sender %d, value %d: %d (%s)", a->index, v, rc, weft_strerror(rc));
            return 1;
        }
        if (i % 64 == 0)
            weft_yield();
    }
    return 0;
}

/* Receives until the channel is closed and drained. */
static intptr_t mpmc_receiver(void *arg)
{
    struct mpmc *m = arg;
    int total = MPMC_SENDERS * m->per_sender;
    for (;;) {
        int v = -1;
        int rc = weft_chan_recv(m->ch, &v, sizeof v, WEFT_FOREVER);
        if (rc == -EPIPE)
            return 0;
        if (rc != 0 || v < 0 || v >= total) {
            check_fail(__LINE__, "receive: rc %d (%s), value %d", rc, weft_strerror(rc), v);
            return 1;
        }
        atomic_fetch_add(&m->seen[v], 1);
        atomic_fetch_add(&m->sum, v);
        atomic_fetch_add(&m->received, 1);
    }
}

static intptr_t mpmc_main(void *arg)
{
    int per = test_sanitized() ? 1000 : 5000;
    int total = MPMC_SENDERS * per;
    size_t caps[] = {0, 1, 16};
    for (size_t ci = 0; ci < sizeof caps / sizeof caps[0]; ci++) {
        struct mpmc m = {.per_sender = per};
        m.seen = calloc((size_t)total, sizeof *m.seen);
        m.ch = make_chan(sizeof(int), caps[ci]);
        weft_pid rx[MPMC_RECEIVERS], tx[MPMC_SENDERS];
        struct mpmc_arg args[MPMC_SENDERS];
        for (int r = 0; r < MPMC_RECEIVERS; r++)
            rx[r] = spawn_on(mpmc_receiver, &m, r, 0);
        for (int s = 0; s < MPMC_SENDERS; s++) {
            args[s] = (struct mpmc_arg){&m, s};
            tx[s] = spawn_on(mpmc_sender, &args[s], s + 1, 0);
        }
        for (int s = 0; s < MPMC_SENDERS; s++)
            CHECK(join_proc(tx[s]) == 0, "sender %d failed", s);
        CHECK_RC(weft_chan_close(m.ch), 0);
        for (int r = 0; r < MPMC_RECEIVERS; r++)
            CHECK(join_proc(rx[r]) == 0, "receiver %d failed", r);
        CHECK(atomic_load(&m.received) == total, "cap %zu: %d values received of %d", caps[ci],
              atomic_load(&m.received), total);
        long long expect = (long long)total * (total - 1) / 2;
        CHECK(atomic_load(&m.sum) == expect, "cap %zu: sum %lld, expected %lld", caps[ci],
              atomic_load(&m.sum), expect);
        for (int v = 0; v < total; v++)
            if (atomic_load(&m.seen[v]) != 1) {
                check_fail(__LINE__, "cap %zu: value %d received %d times", caps[ci], v,
                           atomic_load(&m.seen[v]));
                break;
            }
        CHECK_RC(weft_chan_release(m.ch), 0);
        free(m.seen);
    }
    return 0;
}

Test(chan, many_senders_many_receivers_each_value_once, .timeout = 30)
{
    for (int round = 0; round < (test_sanitized() ? 2 : 20); round++)
        run_1_and_2(mpmc_main, NULL);
}

/* ---- deadlines --------------------------------------------------------------------------- */

static intptr_t sleep_then_send(void *arg)
{
    weft_chan ch = *(weft_chan *)arg;
    weft_sleep(test_in_ms(20));
    int v = 42;
    return weft_chan_send(ch, &v, sizeof v, WEFT_FOREVER);
}

static intptr_t recv_one(void *arg)
{
    weft_chan ch = *(weft_chan *)arg;
    int v = -1;
    int rc = weft_chan_recv(ch, &v, sizeof v, WEFT_FOREVER);
    return rc ? rc : v;
}

/* Checks that op (a call with the given deadline) returned -ETIMEDOUT no
 * earlier than the deadline and within a generous bound after it. */
#define CHECK_TIMES_OUT(call, deadline_ms)                                                        \
    do {                                                                                          \
        int64_t t0_ = weft_now(), dl_ = t0_ + (deadline_ms) * MS;                                 \
        int rc_ = (call);                                                                         \
        int64_t el_ = weft_now() - t0_;                                                           \
        CHECK(rc_ == -ETIMEDOUT, "%s returned %d (%s)", #call, rc_, weft_strerror(rc_));          \
        CHECK(weft_now() >= dl_ && el_ < ((deadline_ms) + 2000) * MS,                             \
              "%s: returned after %lld ns for a %d ms deadline", #call, (long long)el_,           \
              (int)(deadline_ms));                                                                \
    } while (0)

static intptr_t deadlines_main(void *arg)
{
    for (size_t cap = 0; cap <= 2; cap += 2) {
        weft_chan ch = make_chan(sizeof(int), cap);
        int v = -1;
        /* Empty: a receive with deadline 0 or in the past does not wait. */
        int64_t t0 = weft_now();
        CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), -ETIMEDOUT);
        CHECK_RC(weft_chan_recv(ch, &v, sizeof v, weft_now() - 1000 * MS), -ETIMEDOUT);
        CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 1), -ETIMEDOUT);
        CHECK(weft_now() - t0 < 1000 * MS, "non-blocking receives took %lld ns",
              (long long)(weft_now() - t0));
        /* Empty: a receive with a deadline waits for it. */
        CHECK_TIMES_OUT(weft_chan_recv(ch, &v, sizeof v, dl_), 20);
        CHECK(v == -1, "a timed-out receive wrote %d", v);
        /* It left no receiver behind: a non-blocking send finds nobody
         * (rendezvous), or fills the buffer that nobody drains. */
        int x = 11;
        if (cap == 0) {
            CHECK_RC(weft_chan_send(ch, &x, sizeof x, 0), -ETIMEDOUT);
        } else {
            CHECK_RC(weft_chan_send(ch, &x, sizeof x, 0), 0);
            CHECK_RC(weft_chan_send(ch, &x, sizeof x, 0), 0);
            CHECK_RC(weft_chan_len(ch), 2);
        }
        /* Full: a send with deadline 0, in the past or ahead times out. */
        x = 99;
        t0 = weft_now();
        CHECK_RC(weft_chan_send(ch, &x, sizeof x, 0), -ETIMEDOUT);
        CHECK_RC(weft_chan_send(ch, &x, sizeof x, weft_now() - 1000 * MS), -ETIMEDOUT);
        CHECK(weft_now() - t0 < 1000 * MS, "non-blocking sends took %lld ns",
              (long long)(weft_now() - t0));
        CHECK_TIMES_OUT(weft_chan_send(ch, &x, sizeof x, dl_), 20);
        /* The timed-out sends left nothing: the buffer holds its two 11s
         * and then nothing, and no rendezvous sender waits. */
        for (size_t i = 0; i < cap; i++) {
            v = -1;
            CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), 0);
            CHECK(v == 11, "cap %zu: received %d after timed-out sends, expected 11", cap, v);
        }
        v = -1;
        CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), -ETIMEDOUT);
        CHECK(v == -1, "cap %zu: a timed-out send left %d behind", cap, v);
        CHECK_RC(weft_chan_len(ch), 0);

        /* A normal exchange afterwards pairs exactly once. */
        weft_pid pid = spawn_proc(recv_one, &ch);
        x = 5;
        CHECK_RC(weft_chan_send(ch, &x, sizeof x, WEFT_FOREVER), 0);
        CHECK(join_proc(pid) == 5, "cap %zu: the receiver got something else", cap);
        CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), -ETIMEDOUT);

        /* Any negative deadline waits as long as it takes. */
        pid = spawn_proc(sleep_then_send, &ch);
        v = -1;
        CHECK_RC(weft_chan_recv(ch, &v, sizeof v, -2), 0);
        CHECK(v == 42, "received %d", v);
        CHECK_RC(join_proc(pid), 0);
        CHECK_RC(weft_chan_release(ch), 0);
    }
    return 0;
}

Test(chan, deadlines_time_out_and_leave_no_trace, .timeout = 30)
{
    run_1_and_2(deadlines_main, NULL);
}

/* Senders and receivers with deadlines of a few microseconds race with each
 * other: a value is received exactly when its send returned 0, so that a
 * timed-out operation neither delivers nor loses anything. */
struct race {
    weft_chan ch;
    int per_sender;
    atomic_uchar *sent, *got;
    atomic_int ok_sends;
};

struct race_arg {
    struct race *r;
    int index;
};

static intptr_t racing_sender(void *arg)
{
    struct race_arg *a = arg;
    struct race *r = a->r;
    for (int i = 0; i < r->per_sender; i++) {
        int v = a->index * r->per_sender + i;
        int64_t dl = i % 5 == 0 ? 0 : weft_now() + (i % 7) * 15 * US;
        int rc = weft_chan_send(r->ch, &v, sizeof v, dl);
        if (rc == 0) {
            atomic_store(&r->sent[v], 1);
            atomic_fetch_add(&r->ok_sends, 1);
        } else if (rc != -ETIMEDOUT) {
            check_fail(__LINE__, "send: %d (%s)", rc, weft_strerror(rc));
            return 1;
        }
    }
    return 0;
}

static intptr_t racing_receiver(void *arg)
{
    struct race *r = arg;
    for (int k = 0;; k++) {
        int v = -1;
        int64_t dl = k % 3 == 0 ? 0 : weft_now() + (k % 5) * 20 * US;
        int rc = weft_chan_recv(r->ch, &v, sizeof v, dl);
        if (rc == -EPIPE)
            return 0;
        if (rc == -ETIMEDOUT)
            continue;
        if (rc != 0 || v < 0 || v >= 2 * r->per_sender) {
            check_fail(__LINE__, "receive: rc %d (%s), value %d", rc, weft_strerror(rc), v);
            return 1;
        }
        if (atomic_fetch_add(&r->got[v], 1) != 0) {
            check_fail(__LINE__, "value %d received twice", v);
            return 1;
        }
    }
}

static intptr_t timeout_race_main(void *arg)
{
    int per = test_sanitized() ? 2000 : 10000;
    for (size_t cap = 0; cap <= 1; cap++) {
        struct race r = {.per_sender = per};
        r.sent = calloc((size_t)2 * per, 1);
        r.got = calloc((size_t)2 * per, 1);
        r.ch = make_chan(sizeof(int), cap);
        struct race_arg a[2] = {{&r, 0}, {&r, 1}};
        weft_pid rx[2], tx[2];
        for (int i = 0; i < 2; i++)
            rx[i] = spawn_on(racing_receiver, &r, i, 0);
        for (int i = 0; i < 2; i++)
            tx[i] = spawn_on(racing_sender, &a[i], i, 1);
        for (int i = 0; i < 2; i++)
            CHECK(join_proc(tx[i]) == 0, "sender failed");
        CHECK_RC(weft_chan_close(r.ch), 0);
        for (int i = 0; i < 2; i++)
            CHECK(join_proc(rx[i]) == 0, "receiver failed");
        int mismatches = 0, first = -1;
        for (int v = 0; v < 2 * per; v++)
            if (atomic_load(&r.sent[v]) != atomic_load(&r.got[v]) && mismatches++ == 0)
                first = v;
        CHECK(mismatches == 0, "cap %zu: %d values with send result and receipt disagreeing "
              "(first %d: sent %d, received %d)", cap, mismatches, first,
              first >= 0 ? atomic_load(&r.sent[first]) : 0, first >= 0 ? atomic_load(&r.got[first]) : 0);
        CHECK(atomic_load(&r.ok_sends) > 0, "cap %zu: no send ever succeeded", cap);
        CHECK_RC(weft_chan_release(r.ch), 0);
        free(r.sent);
        free(r.got);
    }
    return 0;
}

Test(chan, timeouts_racing_with_partners_deliver_exactly_once, .timeout = 30)
{
    int rounds = test_sanitized() ? 3 : 40;
    for (int i = 0; i < rounds; i++)
        run_1_and_2(timeout_race_main, NULL);
}

/* The same race with an outside thread on each side: a thread's timed-out
 * wait (which claims its own wait) against a process completing it. */
static void *thread_racing_sender(void *arg)
{
    racing_sender(arg);
    return NULL;
}

static void *thread_racing_receiver(void *arg)
{
    racing_receiver(arg);
    return NULL;
}

Test(chan, thread_timeouts_racing_with_processes_deliver_exactly_once, .timeout = 30)
{
    int per = test_sanitized() ? 2000 : 10000;
    for (int round = 0; round < (test_sanitized() ? 4 : 16); round++) {
        unsigned workers = 1 + round % 2;
        size_t cap = (size_t)(round / 2) % 2;
        start_workers(workers);
        struct race r = {.per_sender = per};
        r.sent = calloc((size_t)2 * per, 1);
        r.got = calloc((size_t)2 * per, 1);
        ASSERT_OK(weft_chan_make(&r.ch, sizeof(int), cap));
        struct race_arg a[2] = {{&r, 0}, {&r, 1}};
        weft_pid prx, ptx;
        pthread_t trx, ttx;
        ASSERT_OK(weft_spawn(&prx, racing_receiver, &r, NULL));
        cr_assert_eq(pthread_create(&trx, NULL, thread_racing_receiver, &r), 0);
        ASSERT_OK(weft_spawn(&ptx, racing_sender, &a[0], NULL));
        cr_assert_eq(pthread_create(&ttx, NULL, thread_racing_sender, &a[1]), 0);
        pthread_join(ttx, NULL);
        ASSERT_OK(weft_join(ptx, NULL, WEFT_FOREVER));
        ASSERT_OK(weft_chan_close(r.ch));
        pthread_join(trx, NULL);
        ASSERT_OK(weft_join(prx, NULL, WEFT_FOREVER));
        ASSERT_CHECKS();
        int ok = 0;
        for (int v = 0; v < 2 * per; v++) {
            ok += atomic_load(&r.sent[v]);
            cr_assert_eq(atomic_load(&r.sent[v]), atomic_load(&r.got[v]),
                         "%u workers, cap %zu: value %d: send %s, received %d times", workers, cap, v,
                         atomic_load(&r.sent[v]) ? "succeeded" : "timed out", atomic_load(&r.got[v]));
        }
        cr_assert_gt(ok, 0, "no send succeeded");
        ASSERT_OK(weft_chan_release(r.ch));
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        free(r.sent);
        free(r.got);
    }
}

/* ---- close ------------------------------------------------------------------------------- */

/* Closing keeps what is buffered: receivers drain it in order, then get
 * -EPIPE (waiting or not); sends fail with -EPIPE; a second close is -EPIPE. */
static intptr_t close_drain_main(void *arg)
{
    weft_chan ch = make_chan(sizeof(int), 5);
    for (int i = 0; i < 5; i++)
        CHECK_RC(weft_chan_send(ch, &i, sizeof i, 0), 0);
    CHECK_RC(weft_chan_close(ch), 0);
    int v = 100;
    CHECK_RC(weft_chan_send(ch, &v, sizeof v, 0), -EPIPE);
    CHECK_RC(weft_chan_send(ch, &v, sizeof v, WEFT_FOREVER), -EPIPE);
    CHECK_RC(weft_chan_close(ch), -EPIPE);
    CHECK_RC(weft_chan_len(ch), 5);
    CHECK_RC(weft_chan_cap(ch), 5);
    for (int i = 0; i < 5; i++) {
        v = -1;
        CHECK_RC(weft_chan_recv(ch, &v, sizeof v, i % 2 ? 0 : WEFT_FOREVER), 0);
        CHECK(v == i, "drained %d, expected %d", v, i);
    }
    v = -1;
    CHECK_RC(weft_chan_recv(ch, &v, sizeof v, WEFT_FOREVER), -EPIPE);
    CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), -EPIPE);
    CHECK_RC(weft_chan_recv(ch, &v, sizeof v, test_in_ms(10)), -EPIPE);
    CHECK(v == -1, "a receive on a closed, drained channel wrote %d", v);
    CHECK_RC(weft_chan_len(ch), 0);
    CHECK_RC(weft_chan_close(ch), -EPIPE);
    CHECK_RC(weft_chan_release(ch), 0);

    /* A closed rendezvous channel. */
    ch = make_chan(sizeof(int), 0);
    CHECK_RC(weft_chan_close(ch), 0);
    CHECK_RC(weft_chan_send(ch, &v, sizeof v, 0), -EPIPE);
    CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), -EPIPE);
    CHECK_RC(weft_chan_recv(ch, &v, sizeof v, WEFT_FOREVER), -EPIPE);
    CHECK_RC(weft_chan_close(ch), -EPIPE);
    CHECK_RC(weft_chan_release(ch), 0);
    return 0;
}

Test(chan, close_keeps_buffered_values_then_epipe, .timeout = 30)
{
    run_1_and_2(close_drain_main, NULL);
}

enum { BLOCKED = 4 };

struct blocked {
    weft_chan ch;
    int value;
    atomic_int rc;
    atomic_int entered;
};

static intptr_t blocked_recv(void *arg)
{
    struct blocked *b = arg;
    int v = -1;
    atomic_store(&b->entered, 1);
    int rc = weft_chan_recv(b->ch, &v, sizeof v, WEFT_FOREVER);
    atomic_store(&b->rc, rc);
    if (rc != 0 && v != -1)
        check_fail(__LINE__, "a failed receive (%d) wrote %d", rc, v);
    return rc == 0 ? v : 0;
}

static intptr_t blocked_send(void *arg)
{
    struct blocked *b = arg;
    atomic_store(&b->entered, 1);
    int rc = weft_chan_send(b->ch, &b->value, sizeof b->value, WEFT_FOREVER);
    atomic_store(&b->rc, rc);
    return 0;
}

/* Spawns BLOCKED processes running fn on ch, and waits until they have
 * entered their call and had time to block (at one worker each spawned
 * process runs until it blocks before the spawner goes on). */
static void spawn_blocked(struct blocked *b, weft_pid *pids, weft_chan ch, weft_proc_fn fn, int base)
{
    for (int i = 0; i < BLOCKED; i++) {
        b[i].ch = ch;
        b[i].value = base + i;
        atomic_store(&b[i].rc, 12345);
        atomic_store(&b[i].entered, 0);
        pids[i] = spawn_proc(fn, &b[i]);
    }
    for (int i = 0; i < BLOCKED; i++)
        while (!atomic_load(&b[i].entered))
            weft_yield();
    weft_sleep(test_in_ms(20));
    for (int i = 0; i < BLOCKED; i++)
        CHECK(atomic_load(&b[i].rc) == 12345, "process %d returned %d before the channel changed", i,
              atomic_load(&b[i].rc));
}

static void join_blocked(struct blocked *b, weft_pid *pids, int expect_rc, const char *what)
{
    for (int i = 0; i < BLOCKED; i++) {
        join_proc(pids[i]);
        int rc = atomic_load(&b[i].rc);
        CHECK(rc == expect_rc, "%s %d returned %d (%s), expected %d (%s)", what, i, rc,
              weft_strerror(rc), expect_rc, weft_strerror(expect_rc));
    }
}

/* Deadline 0 does not wait, but it does pair with a partner already
 * waiting: a non-blocking send hands its element to a waiting receiver and a
 * non-blocking receive takes one from a waiting sender, on rendezvous and on
 * buffered channels. (At one worker the partners are waiting for sure; at two
 * they are after a short while, so the calls are retried until a limit.) */
static int poll_op(int send, weft_chan ch, int *v)
{
    int64_t limit = test_in_ms(5000);
    int rc;
    while ((rc = send ? weft_chan_send(ch, v, sizeof *v, 0) : weft_chan_recv(ch, v, sizeof *v, 0)) ==
               -ETIMEDOUT &&
           weft_now() < limit)
        weft_yield();
    return rc;
}

static intptr_t nonblocking_pairs_main(void *arg)
{
    struct blocked b[BLOCKED];
    weft_pid pids[BLOCKED];
    for (size_t cap = 0; cap <= 2; cap += 2) {
        weft_chan ch = make_chan(sizeof(int), cap);
        spawn_blocked(b, pids, ch, blocked_recv, 0);
        intptr_t sum = 0;
        for (int i = 0; i < BLOCKED; i++) {
            int v = 10 + i;
            CHECK_RC(poll_op(1, ch, &v), 0);
        }
        for (int i = 0; i < BLOCKED; i++) {
            sum += join_proc(pids[i]);
            CHECK_RC(atomic_load(&b[i].rc), 0);
        }
        CHECK(sum == 10 + 11 + 12 + 13, "cap %zu: receivers got a sum of %ld", cap, (long)sum);
        CHECK_RC(weft_chan_len(ch), 0);

        for (size_t i = 0; i < cap; i++) {
            int v = 100;
            CHECK_RC(weft_chan_send(ch, &v, sizeof v, 0), 0);
        }
        spawn_blocked(b, pids, ch, blocked_send, 20);
        int total = 0;
        for (size_t i = 0; i < BLOCKED + cap; i++) {
            int v = -1;
            CHECK_RC(poll_op(0, ch, &v), 0);
            total += v;
        }
        join_blocked(b, pids, 0, "sender");
        CHECK(total == (int)cap * 100 + 20 + 21 + 22 + 23, "cap %zu: received a sum of %d", cap, total);
        int v;
        CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), -ETIMEDOUT);
        CHECK_RC(weft_chan_release(ch), 0);
    }
    return 0;
}

Test(chan, nonblocking_operations_pair_with_waiting_partners, .timeout = 30)
{
    run_1_and_2(nonblocking_pairs_main, NULL);
}

/* Close wakes every waiting receiver and sender with -EPIPE; the elements of
 * the senders were not sent, and what was buffered before stays. */
static intptr_t close_wakes_main(void *arg)
{
    struct blocked b[BLOCKED];
    weft_pid pids[BLOCKED];

    weft_chan ch = make_chan(sizeof(int), 0);
    spawn_blocked(b, pids, ch, blocked_recv, 0);
    CHECK_RC(weft_chan_close(ch), 0);
    join_blocked(b, pids, -EPIPE, "receiver on a rendezvous channel");
    CHECK_RC(weft_chan_release(ch), 0);

    ch = make_chan(sizeof(int), 0);
    spawn_blocked(b, pids, ch, blocked_send, 100);
    CHECK_RC(weft_chan_close(ch), 0);
    join_blocked(b, pids, -EPIPE, "sender on a rendezvous channel");
    int v = -1;
    CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), -EPIPE);
    CHECK_RC(weft_chan_release(ch), 0);

    ch = make_chan(sizeof(int), 3);
    spawn_blocked(b, pids, ch, blocked_recv, 0);
    CHECK_RC(weft_chan_close(ch), 0);
    join_blocked(b, pids, -EPIPE, "receiver on an empty buffered channel");
    CHECK_RC(weft_chan_release(ch), 0);

    ch = make_chan(sizeof(int), 3);
    for (int i = 0; i < 3; i++)
        CHECK_RC(weft_chan_send(ch, &i, sizeof i, 0), 0);
    spawn_blocked(b, pids, ch, blocked_send, 100);
    CHECK_RC(weft_chan_close(ch), 0);
    join_blocked(b, pids, -EPIPE, "sender on a full buffered channel");
    for (int i = 0; i < 3; i++) {
        v = -1;
        CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), 0);
        CHECK(v == i, "after close: drained %d, expected %d", v, i);
    }
    CHECK_RC(weft_chan_recv(ch, &v, sizeof v, WEFT_FOREVER), -EPIPE);
    CHECK_RC(weft_chan_release(ch), 0);
    return 0;
}

Test(chan, close_wakes_blocked_senders_and_receivers_with_epipe, .timeout = 30)
{
    run_1_and_2(close_wakes_main, NULL);
}

/* Senders and receivers race with close: every send that returned 0 is
 * received exactly once, none that returned -EPIPE is received, and once a
 * send has failed with -EPIPE every later one does too. One sender and one
 * receiver go through weft_select (beside a case on an idle channel). */
enum { CR_SENDERS = 3, CR_RECEIVERS = 2, CR_PER = 20000 };

struct close_race {
    weft_chan ch, idle;
    atomic_int rx_ids;
    atomic_uchar *sent, *got;
    atomic_int received;
};

struct close_race_arg {
    struct close_race *r;
    int index;
};

static intptr_t close_race_sender(void *arg)
{
    struct close_race_arg *a = arg;
    for (int i = 0; i < CR_PER; i++) {
        int v = a->index * CR_PER + i;
        int rc;
        if (a->index == CR_SENDERS - 1) {
            int idle_v = -1;
            weft_case cases[2] = {WEFT_RECV(a->r->idle, &idle_v), WEFT_SEND(a->r->ch, &v)};
            rc = weft_select(cases, 2, WEFT_SELECT_FAIR, WEFT_FOREVER);
            if (rc == 1)
                rc = cases[1].result;
            else
                check_fail(__LINE__, "select send: %d (%s)", rc, weft_strerror(rc));
        } else {
            rc = weft_chan_send(a->r->ch, &v, sizeof v, WEFT_FOREVER);
        }
        if (rc == -EPIPE) {
            int w = -1;
            CHECK_RC(weft_chan_send(a->r->ch, &w, sizeof w, WEFT_FOREVER), -EPIPE);
            return 0;
        }
        if (rc != 0) {
            check_fail(__LINE__, "send: %d (%s)", rc, weft_strerror(rc));
            return 1;
        }
        atomic_store(&a->r->sent[v], 1);
    }
    return 0;
}

static intptr_t close_race_receiver(void *arg)
{
    struct close_race *r = arg;
    bool by_select = atomic_fetch_add(&r->rx_ids, 1) == 0;
    for (;;) {
        int v = -1, rc;
        if (by_select) {
            int idle_v = -1;
            weft_case cases[2] = {WEFT_RECV(r->ch, &v), WEFT_RECV(r->idle, &idle_v)};
            rc = weft_select(cases, 2, WEFT_SELECT_FAIR, WEFT_FOREVER);
            if (rc == 0)
                rc = cases[0].result;
            else
                check_fail(__LINE__, "select receive: %d (%s)", rc, weft_strerror(rc));
        } else {
            rc = weft_chan_recv(r->ch, &v, sizeof v, WEFT_FOREVER);
        }
        if (rc == -EPIPE)
            return 0;
        if (rc != 0 || v < 0 || v >= CR_SENDERS * CR_PER) {
            check_fail(__LINE__, "receive: rc %d (%s), value %d", rc, weft_strerror(rc), v);
            return 1;
        }
        atomic_fetch_add(&r->got[v], 1);
        atomic_fetch_add(&r->received, 1);
    }
}

static intptr_t close_race_main(void *arg)
{
    int rounds = test_sanitized() ? 6 : 120;
    for (int round = 0; round < rounds; round++) {
        size_t cap = (size_t)(round % 3) * 2; /* 0, 2, 4 */
        struct close_race r = {0};
        r.sent = calloc(CR_SENDERS * CR_PER, 1);
        r.got = calloc(CR_SENDERS * CR_PER, 1);
        r.ch = make_chan(sizeof(int), cap);
        r.idle = make_chan(sizeof(int), 0);
        weft_pid rx[CR_RECEIVERS], tx[CR_SENDERS];
        struct close_race_arg a[CR_SENDERS];
        for (int i = 0; i < CR_RECEIVERS; i++)
            rx[i] = spawn_on(close_race_receiver, &r, i, 0);
        for (int i = 0; i < CR_SENDERS; i++) {
            a[i] = (struct close_race_arg){&r, i};
            tx[i] = spawn_on(close_race_sender, &a[i], i + 1, i == 0);
        }
        int threshold = 1 + (round * 997) % 3000;
        while (atomic_load(&r.received) < threshold)
            weft_yield();
        CHECK_RC(weft_chan_close(r.ch), 0);
        for (int i = 0; i < CR_SENDERS; i++)
            CHECK(join_proc(tx[i]) == 0, "sender failed");
        for (int i = 0; i < CR_RECEIVERS; i++)
            CHECK(join_proc(rx[i]) == 0, "receiver failed");
        for (int v = 0; v < CR_SENDERS * CR_PER; v++) {
            int s = atomic_load(&r.sent[v]), g = atomic_load(&r.got[v]);
            if (s != g) {
                check_fail(__LINE__, "round %d (cap %zu): value %d: send %s, received %d times", round,
                           cap, v, s ? "succeeded" : "failed or not made", g);
                break;
            }
        }
        CHECK_RC(weft_chan_release(r.ch), 0);
        CHECK_RC(weft_chan_release(r.idle), 0);
        free(r.sent);
        free(r.got);
    }
    return 0;
}

Test(chan, close_racing_with_senders_and_receivers_loses_nothing, .timeout = 30)
{
    run_1_and_2(close_race_main, NULL);
}

/* ---- lifetime: references and stale handles ------------------------------------------------ */

/* Each retain adds a reference that one release takes back; the last
 * release makes the handle stale for every call. */
static intptr_t refcount_main(void *arg)
{
    weft_chan ch = make_chan(sizeof(int), 2);
    for (int i = 0; i < 3; i++)
        CHECK_RC(weft_chan_retain(ch), 0);
    int v = 1;
    CHECK_RC(weft_chan_send(ch, &v, sizeof v, 0), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_RC(weft_chan_release(ch), 0);
        CHECK_RC(weft_chan_cap(ch), 2);
        CHECK_RC(weft_chan_len(ch), 1);
    }
    v = -1;
    CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), 0);
    CHECK(v == 1, "received %d", v);
    CHECK_RC(weft_chan_release(ch), 0);
    check_all_ebadf(ch, __LINE__);

    /* Retain after close still counts; a closed channel is not destroyed. */
    ch = make_chan(sizeof(int), 0);
    CHECK_RC(weft_chan_close(ch), 0);
    CHECK_RC(weft_chan_retain(ch), 0);
    CHECK_RC(weft_chan_release(ch), 0);
    CHECK_RC(weft_chan_cap(ch), 0);
    CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), -EPIPE);
    CHECK_RC(weft_chan_release(ch), 0);
    check_all_ebadf(ch, __LINE__);
    return 0;
}

Test(chan, retain_and_release_count_references, .timeout = 30)
{
    run_1_and_2(refcount_main, NULL);
}

/* Taking and dropping references on a channel changes nothing for those
 * using it meanwhile: no send or receive fails (a lookup that compared the
 * reference count, not the handle's generation, saw the handle as stale
 * while another worker counted). Two pinned pairs exchange on one channel
 * while two other processes retain and release it. */
struct churn {
    weft_chan ch;
    atomic_int stop;
    atomic_long failures;
};

enum { CHURN_VALUES = 20000 };

static intptr_t churn_refs(void *arg)
{
    struct churn *c = arg;
    for (unsigned n = 1; !atomic_load(&c->stop); n++) {
        CHECK_RC(weft_chan_retain(c->ch), 0);
        CHECK_RC(weft_chan_release(c->ch), 0);
        if (n % 64 == 0)
            weft_yield(); /* the users share the worker */
    }
    return 0;
}

/* A failed user closes the channel, so that its partners end too. */
static void churn_failed(struct churn *c, int rc)
{
    atomic_fetch_add(&c->failures, 1);
    CHECK_RC(rc, 0);
    for (int tries = 0; tries < 1000 && weft_chan_close(c->ch) == -EBADF; tries++) {
    }
}

static intptr_t churn_sender(void *arg)
{
    struct churn *c = arg;
    for (int i = 0; i < CHURN_VALUES; i++) {
        int rc = weft_chan_send(c->ch, &i, sizeof i, WEFT_FOREVER);
        if (rc != 0) {
            churn_failed(c, rc);
            return 1;
        }
    }
    return 0;
}

static intptr_t churn_receiver(void *arg)
{
    struct churn *c = arg;
    for (int i = 0; i < CHURN_VALUES; i++) {
        int v, rc = weft_chan_recv(c->ch, &v, sizeof v, WEFT_FOREVER);
        if (rc != 0) {
            churn_failed(c, rc);
            return 1;
        }
    }
    return 0;
}

static intptr_t churn_main(void *arg)
{
    for (size_t cap = 0; cap <= 8; cap += 8) {
        struct churn c = {.ch = make_chan(sizeof(int), cap)};
        weft_pid refs[2], users[4];
        for (int i = 0; i < 2; i++)
            refs[i] = spawn_on(churn_refs, &c, i, 1);
        for (int i = 0; i < 4; i++)
            users[i] = spawn_on(i % 2 ? churn_receiver : churn_sender, &c, i / 2, 1);
        for (int i = 0; i < 4; i++)
            join_proc(users[i]);
        atomic_store(&c.stop, 1);
        for (int i = 0; i < 2; i++)
            join_proc(refs[i]);
        CHECK(atomic_load(&c.failures) == 0, "capacity %zu: %ld sends or receives failed", cap,
              atomic_load(&c.failures));
        CHECK_RC(weft_chan_release(c.ch), 0);
    }
    return 0;
}

Test(chan, references_taken_meanwhile_never_fail_a_send_or_receive, .timeout = 60)
{
    run_1_and_2(churn_main, NULL);
}

/* A holder that keeps its own reference keeps the channel alive after the
 * maker released its reference: buffered values are still delivered. */
struct holder {
    weft_chan ch;
    atomic_int go;
};

static intptr_t holder_drains(void *arg)
{
    struct holder *h = arg;
    while (!atomic_load(&h->go))
        weft_yield();
    int sum = 0, v;
    int rc;
    while ((rc = weft_chan_recv(h->ch, &v, sizeof v, WEFT_FOREVER)) == 0)
        sum += v;
    CHECK_RC(rc, -EPIPE);
    CHECK_RC(weft_chan_release(h->ch), 0);
    return sum;
}

static intptr_t holder_main(void *arg)
{
    for (int round = 0; round < 200; round++) {
        struct holder h = {0};
        h.ch = make_chan(sizeof(int), 10);
        CHECK_RC(weft_chan_retain(h.ch), 0); /* the holder's reference */
        weft_pid pid = spawn_proc(holder_drains, &h);
        for (int i = 1; i <= 10; i++)
            CHECK_RC(weft_chan_send(h.ch, &i, sizeof i, 0), 0);
        CHECK_RC(weft_chan_close(h.ch), 0);
        CHECK_RC(weft_chan_release(h.ch), 0);
        atomic_store(&h.go, 1);
        intptr_t sum = join_proc(pid);
        CHECK(sum == 55, "round %d: the holder received a sum of %ld, expected 55", round, (long)sum);
        check_all_ebadf(h.ch, __LINE__);
    }
    return 0;
}

Test(chan, holder_reference_keeps_channel_alive_after_maker_releases, .timeout = 30)
{
    run_1_and_2(holder_main, NULL);
}

/* Releasing the last reference destroys the channel: every waiting sender
 * and receiver wakes with -EBADF, whatever was buffered is dropped, and the
 * handle is stale. */
static intptr_t release_wakes_main(void *arg)
{
    struct blocked b[BLOCKED];
    weft_pid pids[BLOCKED];

    weft_chan ch = make_chan(sizeof(int), 0);
    spawn_blocked(b, pids, ch, blocked_recv, 0);
    CHECK_RC(weft_chan_release(ch), 0);
    join_blocked(b, pids, -EBADF, "receiver on a rendezvous channel");
    check_all_ebadf(ch, __LINE__);

    ch = make_chan(sizeof(int), 0);
    spawn_blocked(b, pids, ch, blocked_send, 100);
    CHECK_RC(weft_chan_release(ch), 0);
    join_blocked(b, pids, -EBADF, "sender on a rendezvous channel");
    check_all_ebadf(ch, __LINE__);

    ch = make_chan(sizeof(int), 2);
    spawn_blocked(b, pids, ch, blocked_recv, 0);
    CHECK_RC(weft_chan_release(ch), 0);
    join_blocked(b, pids, -EBADF, "receiver on an empty buffered channel");
    check_all_ebadf(ch, __LINE__);

    ch = make_chan(sizeof(int), 2);
    for (int i = 0; i < 2; i++)
        CHECK_RC(weft_chan_send(ch, &i, sizeof i, 0), 0);
    spawn_blocked(b, pids, ch, blocked_send, 100);
    CHECK_RC(weft_chan_release(ch), 0);
    join_blocked(b, pids, -EBADF, "sender on a full buffered channel");
    check_all_ebadf(ch, __LINE__);
    return 0;
}

Test(chan, release_of_last_reference_wakes_waiters_with_ebadf, .timeout = 30)
{
    run_1_and_2(release_wakes_main, NULL);
}

/* Processes keep using a handle while the main process releases it and makes
 * new channels (which reuse the freed channel's memory): before the release
 * their calls work, after it they all fail with -EBADF, and they never touch
 * the new channel that took the old one's place. */
enum { STALE_MARK = 0x0BAD };

struct stale_race {
    weft_chan idle;         /* a channel nobody sends to */
    weft_chan *handles;     /* per round: the channel the hammers use */
    atomic_int round;       /* published after handles[round] */
    atomic_int released;    /* the last round whose channel was released */
    atomic_int stop;
    atomic_long calls_after;
};

static intptr_t stale_hammer(void *arg)
{
    struct stale_race *s = arg;
    int k = 0;
    while (!atomic_load(&s->stop)) {
        int round = atomic_load(&s->round);
        weft_chan ch = s->handles[round];
        bool was_released = atomic_load(&s->released) >= round;
        int v = STALE_MARK, rc;
        switch (k++ % 7) {
        case 0:
            rc = weft_chan_send(ch, &v, sizeof v, 0);
            CHECK(rc == -EBADF || (!was_released && (rc == 0 || rc == -ETIMEDOUT)),
                  "send on a racing handle: %d (released before: %d)", rc, was_released);
            break;
        case 1:
            rc = weft_chan_recv(ch, &v, sizeof v, 0);
            CHECK(rc == -EBADF || (!was_released && (rc == 0 || rc == -ETIMEDOUT)),
                  "receive on a racing handle: %d (released before: %d)", rc, was_released);
            CHECK(rc != 0 || v == STALE_MARK, "received %d from the hammered channel", v);
            break;
        case 2:
            rc = weft_chan_len(ch);
            CHECK(rc == -EBADF || (!was_released && rc >= 0 && rc <= 4),
                  "length of a racing handle: %d (released before: %d)", rc, was_released);
            break;
        case 3:
            rc = weft_chan_cap(ch);
            CHECK(rc == -EBADF || (!was_released && rc == 4),
                  "capacity of a racing handle: %d (released before: %d)", rc, was_released);
            break;
        case 4: /* waits a little: may be woken by the release */
            rc = weft_chan_recv(ch, &v, sizeof v, weft_now() + 30 * US);
            CHECK(rc == -EBADF || (!was_released && (rc == 0 || rc == -ETIMEDOUT)),
                  "timed receive on a racing handle: %d (released before: %d)", rc, was_released);
            CHECK(rc != 0 || v == STALE_MARK, "received %d from the hammered channel", v);
            break;
        case 5:
            rc = weft_chan_send(ch, &v, sizeof v, weft_now() + 30 * US);
            CHECK(rc == -EBADF || (!was_released && (rc == 0 || rc == -ETIMEDOUT)),
                  "timed send on a racing handle: %d (released before: %d)", rc, was_released);
            break;
        default: {
            int idle = -1;
            weft_case cases[2] = {WEFT_RECV(ch, &v), WEFT_RECV(s->idle, &idle)};
            cases[0].result = 12345;
            rc = weft_select(cases, 2, WEFT_SELECT_FAIR, weft_now() + 30 * US);
            /* Fired with the value, or with -EBADF if released while it
             * waited; -EBADF from the select itself for a stale handle. */
            bool ok = rc == -EBADF ||
                      (!was_released && (rc == -ETIMEDOUT ||
                                         (rc == 0 && cases[0].result == 0 && v == STALE_MARK) ||
                                         (rc == 0 && cases[0].result == -EBADF)));
            CHECK(ok, "select on a racing handle: %d, result %d, value %d (released before: %d)", rc,
                  cases[0].result, v, was_released);
            break;
        }
        }
        if (was_released)
            atomic_fetch_add(&s->calls_after, 1);
        if (k % 32 == 0)
            weft_yield();
    }
    return 0;
}

static intptr_t stale_race_main(void *arg)
{
    int rounds = test_sanitized() ? 2000 : 50000;
    struct stale_race s = {0};
    s.handles = calloc((size_t)rounds + 1, sizeof *s.handles);
    s.idle = make_chan(sizeof(int), 0);
    atomic_store(&s.released, -1);
    s.handles[0] = make_chan(sizeof(int), 4);
    weft_pid pids[2];
    for (int i = 0; i < 2; i++)
        pids[i] = spawn_on(stale_hammer, &s, i + 1, 1);
    for (int round = 0; round < rounds; round++) {
        weft_chan old = s.handles[round];
        for (int i = 0; i < 5; i++)
            weft_yield();
        CHECK_RC(weft_chan_release(old), 0);
        atomic_store(&s.released, round);
        /* The next channel: very likely the same block. */
        weft_chan fresh = make_chan(sizeof(int), 4);
        CHECK(fresh != old, "a new channel got the released handle %#llx", (unsigned long long)old);
        for (int i = 0; i < 4; i++) {
            int v = 1000 + i;
            CHECK_RC(weft_chan_send(fresh, &v, sizeof v, 0), 0);
        }
        for (int i = 0; i < 5; i++)
            weft_yield(); /* let the hammers at the old handle */
        CHECK_RC(weft_chan_len(fresh), 4);
        for (int i = 0; i < 4; i++) {
            int v = -1;
            CHECK_RC(weft_chan_recv(fresh, &v, sizeof v, 0), 0);
            CHECK(v == 1000 + i, "round %d: the new channel gave %d, expected %d", round, v, 1000 + i);
        }
        CHECK_RC(weft_chan_len(fresh), 0);
        /* Hand the fresh channel to the hammers for the next round. */
        s.handles[round + 1] = fresh;
        atomic_store(&s.round, round + 1);
    }
    atomic_store(&s.stop, 1);
    for (int i = 0; i < 2; i++)
        join_proc(pids[i]);
    CHECK_RC(weft_chan_release(s.handles[rounds]), 0);
    CHECK_RC(weft_chan_release(s.idle), 0);
    CHECK(atomic_load(&s.calls_after) > 0, "the hammers never used a released handle");
    free(s.handles);
    return 0;
}

Test(chan, stale_handle_never_reaches_a_reused_channel, .timeout = 30)
{
    run_1_and_2(stale_race_main, NULL);
}

/* Processes pinned to a worker poll a channel (non-blocking receives and
 * yields) while an unpinned process on the same worker is the one that
 * sends: the pollers must not keep the sender from running. Each poller
 * gives up after 5 s, so that starvation fails the test instead of hanging
 * it. */
struct pollers {
    weft_chan ch;
    atomic_int received, gave_up;
};

static intptr_t pinned_poller(void *arg)
{
    struct pollers *p = arg;
    int64_t limit = test_in_ms(5000);
    for (;;) {
        int v;
        int rc = weft_chan_recv(p->ch, &v, sizeof v, 0);
        if (rc == -EPIPE)
            return 0;
        if (rc == 0)
            atomic_fetch_add(&p->received, 1);
        else if (rc != -ETIMEDOUT)
            return rc;
        if (weft_now() > limit) {
            atomic_fetch_add(&p->gave_up, 1);
            return 0;
        }
        weft_yield();
    }
}

static intptr_t pollers_main(void *arg)
{
    struct pollers p = {0};
    p.ch = make_chan(sizeof(int), 4);
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.worker = 0;
    opts.pinned = 1;
    weft_pid pids[2];
    for (int i = 0; i < 2; i++)
        CHECK_RC(weft_spawn(&pids[i], pinned_poller, &p, &opts), 0);
    weft_yield();
    for (int i = 0; i < 100 && !atomic_load(&p.gave_up); i++) {
        int rc;
        while ((rc = weft_chan_send(p.ch, &i, sizeof i, test_in_ms(100))) == -ETIMEDOUT &&
               !atomic_load(&p.gave_up))
            ;
        CHECK(rc == 0 || atomic_load(&p.gave_up), "send: %d (%s)", rc, weft_strerror(rc));
        weft_yield();
    }
    CHECK_RC(weft_chan_close(p.ch), 0);
    for (int i = 0; i < 2; i++)
        CHECK(join_proc(pids[i]) == 0, "poller %d failed", i);
    CHECK(atomic_load(&p.gave_up) == 0 && atomic_load(&p.received) == 100,
          "the pinned pollers received %d of 100 values; %d gave up after 5 s, the sender starved",
          atomic_load(&p.received), atomic_load(&p.gave_up));
    CHECK_RC(weft_chan_release(p.ch), 0);
    return 0;
}

Test(chan, pinned_pollers_do_not_starve_the_sender, .timeout = 30)
{
    run_at_workers(1, pollers_main, NULL);
}

/* Forged handles: never a channel, never a crash. */
static intptr_t forged_main(void *arg)
{
    weft_chan ch = make_chan(sizeof(int), 1);
    weft_chan forged[] = {
        0,
        12345,
        ~(weft_chan)0,
        0xFFFFFFFFull,
        (weft_chan)1 << 32,
        ch ^ ((weft_chan)0x800000 << 32),  /* another generation of a live slot */
        ch + ((weft_chan)1 << 32),
        weft_self(),                       /* a process's pid */
        (weft_chan)7 << 32 | 0x10000000u,  /* beyond the table */
        (weft_chan)0xABCDEF << 32 | 3,
    };
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++)
        check_all_ebadf(forged[i], __LINE__);
    /* The real channel is untouched. */
    CHECK_RC(weft_chan_cap(ch), 1);
    CHECK_RC(weft_chan_len(ch), 0);
    CHECK_RC(weft_chan_release(ch), 0);
    return 0;
}

Test(chan, forged_handles_and_pids_are_ebadf, .timeout = 30)
{
    run_1_and_2(forged_main, NULL);
}

/* A runtime's channels do not outlive it: their handles are stale in the
 * next runtime, even once it has made channels of its own. */
static weft_chan previous[3];

static intptr_t make_and_keep(void *arg)
{
    for (int i = 0; i < 3; i++) {
        previous[i] = make_chan(sizeof(int), (size_t)i);
        if (i > 0) {
            int v = i;
            CHECK_RC(weft_chan_send(previous[i], &v, sizeof v, 0), 0);
        }
    }
    return 0; /* never released: the stop destroys them */
}

static intptr_t use_previous(void *arg)
{
    for (int i = 0; i < 3; i++)
        check_all_ebadf(previous[i], __LINE__);
    weft_chan now[3];
    for (int i = 0; i < 3; i++) {
        now[i] = make_chan(sizeof(int), (size_t)i);
        for (int k = 0; k < 3; k++)
            CHECK(now[i] != previous[k], "a new channel has the previous runtime's handle %#llx",
                  (unsigned long long)previous[k]);
    }
    for (int i = 0; i < 3; i++)
        check_all_ebadf(previous[i], __LINE__);
    for (int i = 0; i < 3; i++) {
        CHECK_RC(weft_chan_len(now[i]), 0);
        CHECK_RC(weft_chan_release(now[i]), 0);
    }
    return 0;
}

Test(chan, handles_of_a_previous_runtime_are_stale, .timeout = 30)
{
    for (int round = 0; round < 3; round++) {
        cr_assert_eq(test_run(1 + round % 2, make_and_keep, NULL), 0);
        cr_assert_eq(test_run(2 - round % 2, use_previous, NULL), 0);
        ASSERT_CHECKS();
    }
    /* And across weft_start/weft_stop, from the test's thread. */
    start_workers(1);
    weft_chan ch;
    ASSERT_OK(weft_chan_make(&ch, sizeof(int), 1));
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    start_workers(2);
    int v = 0;
    ASSERT_RC(weft_chan_send(ch, &v, sizeof v, 0), -EBADF);
    ASSERT_RC(weft_chan_len(ch), -EBADF);
    ASSERT_RC(weft_chan_release(ch), -EBADF);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

/* ---- outside threads --------------------------------------------------------------------- */

struct echo {
    weft_chan in, out;
};

/* Receives values until `in` is closed, answering each with 2v+1 on out. */
static intptr_t echo_proc(void *arg)
{
    struct echo *e = arg;
    intptr_t n = 0;
    for (;;) {
        int v;
        int rc = weft_chan_recv(e->in, &v, sizeof v, WEFT_FOREVER);
        if (rc == -EPIPE)
            return n;
        if (rc != 0)
            return -1000 + rc;
        v = 2 * v + 1;
        if ((rc = weft_chan_send(e->out, &v, sizeof v, WEFT_FOREVER)) != 0)
            return -2000 + rc;
        n++;
    }
}

enum { ECHO_THREADS = 2 };

struct echo_thread {
    pthread_t thread;
    struct echo *e;
    int index, n;
    atomic_int *seen;
    int bad, first_rc;
};

/* Sends n values and receives n answers, alternately, blocking the thread. */
static void *echo_client(void *arg)
{
    struct echo_thread *t = arg;
    for (int i = 0; i < t->n; i++) {
        int v = t->index * t->n + i;
        int rc = weft_chan_send(t->e->in, &v, sizeof v, WEFT_FOREVER);
        if (rc == 0) {
            v = -1;
            rc = weft_chan_recv(t->e->out, &v, sizeof v, WEFT_FOREVER);
        }
        if (rc != 0 || v < 1 || v % 2 == 0 || (v - 1) / 2 >= ECHO_THREADS * t->n) {
            t->bad++;
            t->first_rc = rc;
            return NULL;
        }
        atomic_fetch_add(&t->seen[(v - 1) / 2], 1);
    }
    return NULL;
}

/* Plain threads exchange values with processes over rendezvous and buffered
 * channels; each answer arrives exactly once. */
Test(chan, outside_threads_exchange_with_processes, .timeout = 30)
{
    int n = test_sanitized() ? 500 : 5000;
    for (unsigned workers = 1; workers <= 2; workers++)
        for (size_t cap = 0; cap <= 3; cap += 3) {
            start_workers(workers);
            struct echo e;
            ASSERT_OK(weft_chan_make(&e.in, sizeof(int), cap));
            ASSERT_OK(weft_chan_make(&e.out, sizeof(int), cap));
            weft_pid echos[2];
            for (int i = 0; i < 2; i++)
                ASSERT_OK(weft_spawn(&echos[i], echo_proc, &e, NULL));
            atomic_int *seen = calloc((size_t)ECHO_THREADS * n, sizeof *seen);
            struct echo_thread th[ECHO_THREADS];
            for (int i = 0; i < ECHO_THREADS; i++) {
                th[i] = (struct echo_thread){.e = &e, .index = i, .n = n, .seen = seen};
                cr_assert_eq(pthread_create(&th[i].thread, NULL, echo_client, &th[i]), 0);
            }
            for (int i = 0; i < ECHO_THREADS; i++) {
                pthread_join(th[i].thread, NULL);
                cr_assert_eq(th[i].bad, 0, "%u workers, cap %zu: thread %d failed (rc %d, %s)", workers,
                             cap, i, th[i].first_rc, weft_strerror(th[i].first_rc));
            }
            for (int v = 0; v < ECHO_THREADS * n; v++)
                cr_assert_eq(atomic_load(&seen[v]), 1, "%u workers, cap %zu: answer to %d seen %d times",
                             workers, cap, v, atomic_load(&seen[v]));
            ASSERT_OK(weft_chan_close(e.in));
            intptr_t total = 0;
            for (int i = 0; i < 2; i++) {
                intptr_t r = -1;
                ASSERT_OK(weft_join(echos[i], &r, WEFT_FOREVER));
                cr_assert_geq(r, 0, "echo process failed: %ld", (long)r);
                total += r;
            }
            cr_assert_eq(total, ECHO_THREADS * n);
            ASSERT_OK(weft_chan_release(e.in));
            ASSERT_OK(weft_chan_release(e.out));
            ASSERT_OK(weft_stop(WEFT_FOREVER));
            free(seen);
        }
}

static intptr_t sleep_then_recv(void *arg)
{
    weft_chan ch = *(weft_chan *)arg;
    weft_sleep(test_in_ms(30));
    int v = -1;
    int rc = weft_chan_recv(ch, &v, sizeof v, WEFT_FOREVER);
    return rc ? rc : v;
}

/* An outside thread blocks its own thread: its send on a rendezvous
 * channel waits for the process's receive; its receive waits for a send;
 * its deadlines time out as a process's do. */
Test(chan, outside_thread_blocks_and_times_out, .timeout = 30)
{
    for (unsigned workers = 1; workers <= 2; workers++) {
        start_workers(workers);
        weft_chan ch;
        ASSERT_OK(weft_chan_make(&ch, sizeof(int), 0));
        int v = 77;
        ASSERT_RC(weft_chan_send(ch, &v, sizeof v, 0), -ETIMEDOUT);
        ASSERT_RC(weft_chan_recv(ch, &v, sizeof v, 0), -ETIMEDOUT);
        int64_t t0 = weft_now();
        ASSERT_RC(weft_chan_recv(ch, &v, sizeof v, t0 + 20 * MS), -ETIMEDOUT);
        int64_t el = weft_now() - t0;
        cr_assert(el >= 20 * MS && el < 2020 * MS, "a 20 ms receive deadline took %lld ns", (long long)el);
        t0 = weft_now();
        ASSERT_RC(weft_chan_send(ch, &v, sizeof v, t0 + 20 * MS), -ETIMEDOUT);
        el = weft_now() - t0;
        cr_assert(el >= 20 * MS && el < 2020 * MS, "a 20 ms send deadline took %lld ns", (long long)el);

        /* t0 is taken before the spawn: the process starts its sleep
         * at or after t0, so the sleep ends at least 30 ms after it. */
        weft_pid pid;
        t0 = weft_now();
        ASSERT_OK(weft_spawn(&pid, sleep_then_recv, &ch, NULL));
        v = 31;
        ASSERT_OK(weft_chan_send(ch, &v, sizeof v, WEFT_FOREVER));
        cr_assert_geq(weft_now() - t0, 30 * MS, "the send returned before the receiver took it");
        intptr_t r = 0;
        ASSERT_OK(weft_join(pid, &r, WEFT_FOREVER));
        cr_assert_eq(r, 31);

        t0 = weft_now();
        ASSERT_OK(weft_spawn(&pid, sleep_then_send, &ch, NULL));
        v = -1;
        ASSERT_OK(weft_chan_recv(ch, &v, sizeof v, test_in_ms(5000)));
        cr_assert_geq(weft_now() - t0, 20 * MS);
        cr_assert_eq(v, 42);
        ASSERT_OK(weft_join(pid, &r, WEFT_FOREVER));
        ASSERT_OK(weft_chan_release(ch));
        ASSERT_OK(weft_stop(WEFT_FOREVER));
    }
}

struct stuck_thread {
    pthread_t thread;
    weft_chan ch;
    int send;
    atomic_int entering;
    int rc;
    int64_t elapsed;
};

static void *stuck_op(void *arg)
{
    struct stuck_thread *t = arg;
    int v = 5;
    atomic_store(&t->entering, 1);
    int64_t t0 = weft_now();
    t->rc = t->send ? weft_chan_send(t->ch, &v, sizeof v, WEFT_FOREVER)
                    : weft_chan_recv(t->ch, &v, sizeof v, test_in_ms(60000));
    t->elapsed = weft_now() - t0;
    return NULL;
}

/* weft_stop releases threads blocked in weft_chan_recv and weft_chan_send
 * with -ECANCELED. Whether a thread is inside its call yet cannot be
 * observed: one that got there only after the stop finished gets
 * -ESHUTDOWN instead; after a 20 ms head start most must be canceled. */
Test(chan, thread_blocked_on_channel_canceled_by_stop, .timeout = 30)
{
    int canceled = 0, total = 0;
    for (int round = 0; round < 10; round++) {
        start_workers(1 + round % 2);
        weft_chan ch[4];
        ASSERT_OK(weft_chan_make(&ch[0], sizeof(int), 0));
        ASSERT_OK(weft_chan_make(&ch[1], sizeof(int), 2));
        ASSERT_OK(weft_chan_make(&ch[2], sizeof(int), 1));
        int v = 1;
        ASSERT_OK(weft_chan_send(ch[2], &v, sizeof v, 0)); /* full: a send blocks */
        ASSERT_OK(weft_chan_make(&ch[3], sizeof(int), 0));
        /* Receivers on an empty rendezvous and an empty buffered channel,
         * senders on a full buffered and on another rendezvous channel. */
        struct stuck_thread t[4] = {
            {.ch = ch[0], .send = 0}, {.ch = ch[1], .send = 0}, {.ch = ch[2], .send = 1},
            {.ch = ch[3], .send = 1},
        };
        for (int i = 0; i < 4; i++) {
            t[i].rc = 12345;
            cr_assert_eq(pthread_create(&t[i].thread, NULL, stuck_op, &t[i]), 0);
        }
        for (int i = 0; i < 4; i++)
            while (!atomic_load(&t[i].entering))
                sched_yield();
        weft_sleep(test_in_ms(20));
        int64_t t0 = weft_now();
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        cr_assert_lt(weft_now() - t0, 5000 * MS, "weft_stop took %lld ns", (long long)(weft_now() - t0));
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i].thread, NULL);
            cr_assert(t[i].rc == -ECANCELED || t[i].rc == -ESHUTDOWN,
                      "round %d, thread %d (%s): %d (%s)", round, i, t[i].send ? "send" : "receive",
                      t[i].rc, weft_strerror(t[i].rc));
            cr_assert_lt(t[i].elapsed, 10000 * MS);
            canceled += t[i].rc == -ECANCELED;
            total++;
        }
    }
    cr_assert_gt(canceled, total / 2, "only %d of %d blocked threads were canceled by weft_stop",
                 canceled, total);
}

/* ---- weft_chan_len and weft_chan_cap ------------------------------------------------------ */

static intptr_t len_cap_main(void *arg)
{
    size_t caps[] = {0, 1, 5, 1000};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        weft_chan ch = make_chan(sizeof(short), caps[i]);
        CHECK_RC(weft_chan_cap(ch), (int)caps[i]);
        CHECK_RC(weft_chan_len(ch), 0);
        short v = 3;
        for (size_t k = 0; k < caps[i]; k++) {
            CHECK_RC(weft_chan_send(ch, &v, sizeof v, 0), 0);
            CHECK_RC(weft_chan_len(ch), (int)k + 1);
            CHECK_RC(weft_chan_cap(ch), (int)caps[i]);
        }
        CHECK_RC(weft_chan_send(ch, &v, sizeof v, 0), -ETIMEDOUT);
        CHECK_RC(weft_chan_len(ch), (int)caps[i]);
        CHECK_RC(weft_chan_close(ch), 0);
        CHECK_RC(weft_chan_len(ch), (int)caps[i]);
        CHECK_RC(weft_chan_cap(ch), (int)caps[i]);
        for (size_t k = caps[i]; k > 0; k--) {
            CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), 0);
            CHECK_RC(weft_chan_len(ch), (int)k - 1);
        }
        CHECK_RC(weft_chan_release(ch), 0);
    }
    /* A rendezvous channel with senders waiting still has length 0. */
    weft_chan ch = make_chan(sizeof(int), 0);
    struct blocked b[BLOCKED];
    weft_pid pids[BLOCKED];
    spawn_blocked(b, pids, ch, blocked_send, 10);
    CHECK_RC(weft_chan_len(ch), 0);
    int sum = 0;
    for (int i = 0; i < BLOCKED; i++) {
        int v = 0;
        CHECK_RC(weft_chan_recv(ch, &v, sizeof v, WEFT_FOREVER), 0);
        sum += v;
    }
    join_blocked(b, pids, 0, "sender");
    CHECK(sum == 10 + 11 + 12 + 13, "received a sum of %d", sum);
    CHECK_RC(weft_chan_release(ch), 0);
    return 0;
}

Test(chan, len_and_cap_report_buffer_state, .timeout = 30)
{
    run_1_and_2(len_cap_main, NULL);
}

/* ---- bad input ------------------------------------------------------------------------------ */

static void check_bad_make(void)
{
    weft_chan ch = 0;
    CHECK_RC(weft_chan_make(NULL, 4, 1), -EINVAL);
    CHECK_RC(weft_chan_make(&ch, 0, 1), -EINVAL);
    CHECK_RC(weft_chan_make(&ch, 0, 0), -EINVAL);
    CHECK_RC(weft_chan_make(&ch, WEFT_CHAN_ELEM_MAX + 1, 0), -EINVAL);
    CHECK_RC(weft_chan_make(&ch, SIZE_MAX, 1), -EINVAL);
    CHECK_RC(weft_chan_make(&ch, 1, WEFT_CHAN_BUFFER_MAX + 1), -E2BIG);
    CHECK_RC(weft_chan_make(&ch, 1024, WEFT_CHAN_BUFFER_MAX / 1024 + 1), -E2BIG);
    CHECK_RC(weft_chan_make(&ch, WEFT_CHAN_ELEM_MAX, WEFT_CHAN_BUFFER_MAX / WEFT_CHAN_ELEM_MAX + 1), -E2BIG);
    CHECK_RC(weft_chan_make(&ch, 2, SIZE_MAX), -E2BIG);        /* the product overflows */
    CHECK_RC(weft_chan_make(&ch, 3, SIZE_MAX / 2 + 2), -E2BIG); /* idem, wrapping to small */
    /* The limits themselves are accepted (a rendezvous channel of the largest
     * elements; the largest buffer only in plain builds: 1 GiB, untouched). */
    CHECK_RC(weft_chan_make(&ch, WEFT_CHAN_ELEM_MAX, 0), 0);
    CHECK_RC(weft_chan_release(ch), 0);
    if (!test_sanitized()) {
        CHECK_RC(weft_chan_make(&ch, WEFT_CHAN_ELEM_MAX, WEFT_CHAN_BUFFER_MAX / WEFT_CHAN_ELEM_MAX), 0);
        CHECK_RC(weft_chan_cap(ch), (int)(WEFT_CHAN_BUFFER_MAX / WEFT_CHAN_ELEM_MAX));
        CHECK_RC(weft_chan_release(ch), 0);
    }
}

static void check_bad_ops(void)
{
    weft_chan ch = 0, rv = 0;
    CHECK_RC(weft_chan_make(&ch, 8, 2), 0);
    CHECK_RC(weft_chan_make(&rv, 8, 0), 0);
    char buf[16] = {0};
    CHECK_RC(weft_chan_send(ch, NULL, 8, 0), -EINVAL);
    CHECK_RC(weft_chan_send(ch, NULL, 8, WEFT_FOREVER), -EINVAL);
    CHECK_RC(weft_chan_recv(ch, NULL, 8, 0), -EINVAL);
    CHECK_RC(weft_chan_recv(ch, NULL, 8, WEFT_FOREVER), -EINVAL);
    size_t wrong[] = {0, 1, 7, 9, 16, SIZE_MAX};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        CHECK_RC(weft_chan_send(ch, buf, wrong[i], 0), -EMSGSIZE);
        CHECK_RC(weft_chan_send(ch, buf, wrong[i], WEFT_FOREVER), -EMSGSIZE);
        CHECK_RC(weft_chan_recv(ch, buf, wrong[i], 0), -EMSGSIZE);
        CHECK_RC(weft_chan_recv(ch, buf, wrong[i], WEFT_FOREVER), -EMSGSIZE);
        CHECK_RC(weft_chan_send(rv, buf, wrong[i], WEFT_FOREVER), -EMSGSIZE);
        CHECK_RC(weft_chan_recv(rv, buf, wrong[i], WEFT_FOREVER), -EMSGSIZE);
    }
    /* The refused calls left the channel as it was. */
    CHECK_RC(weft_chan_len(ch), 0);
    CHECK_RC(weft_chan_send(ch, buf, 8, 0), 0);
    CHECK_RC(weft_chan_recv(ch, buf, 9, 0), -EMSGSIZE);
    CHECK_RC(weft_chan_len(ch), 1);
    CHECK_RC(weft_chan_recv(ch, buf, 8, 0), 0);
    CHECK_RC(weft_chan_release(ch), 0);
    CHECK_RC(weft_chan_release(rv), 0);
}

static intptr_t bad_input_main(void *arg)
{
    check_bad_make();
    check_bad_ops();
    return 0;
}

Test(chan, bad_arguments_from_process_and_thread, .timeout = 30)
{
    run_1_and_2(bad_input_main, NULL);
    start_workers(2);
    check_bad_make();
    check_bad_ops();
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    ASSERT_CHECKS();
}

/* A wrong-size send does not pair with a waiting receiver: the receiver
 * stays waiting and gets the next, well-sized element. */
static intptr_t wrong_size_pairing_main(void *arg)
{
    weft_chan ch = make_chan(sizeof(int), 0);
    struct blocked b[BLOCKED];
    weft_pid pids[BLOCKED];
    spawn_blocked(b, pids, ch, blocked_recv, 0);
    long long big = 0x7777777777LL;
    for (int i = 0; i < BLOCKED; i++)
        CHECK_RC(weft_chan_send(ch, &big, sizeof big, WEFT_FOREVER), -EMSGSIZE);
    for (int i = 0; i < BLOCKED; i++)
        CHECK(atomic_load(&b[i].rc) == 12345, "receiver %d woke on a refused send", i);
    intptr_t sum = 0;
    for (int i = 0; i < BLOCKED; i++) {
        int v = 100 + i;
        CHECK_RC(weft_chan_send(ch, &v, sizeof v, WEFT_FOREVER), 0);
    }
    for (int i = 0; i < BLOCKED; i++)
        sum += join_proc(pids[i]);
    CHECK(sum == 100 + 101 + 102 + 103, "receivers got a sum of %ld", (long)sum);
    CHECK_RC(weft_chan_release(ch), 0);
    return 0;
}

Test(chan, wrong_size_send_does_not_pair, .timeout = 30)
{
    run_1_and_2(wrong_size_pairing_main, NULL);
}

/* Without a runtime every call is -ESHUTDOWN (argument checks first), before
 * the first runtime and after a stop. */
static void check_no_runtime(weft_chan ch)
{
    weft_chan out = 0;
    int v = 0;
    ASSERT_RC(weft_chan_make(&out, sizeof v, 0), -ESHUTDOWN);
    ASSERT_RC(weft_chan_make(&out, sizeof v, 4), -ESHUTDOWN);
    ASSERT_RC(weft_chan_send(ch, &v, sizeof v, 0), -ESHUTDOWN);
    ASSERT_RC(weft_chan_send(ch, &v, sizeof v, WEFT_FOREVER), -ESHUTDOWN);
    ASSERT_RC(weft_chan_recv(ch, &v, sizeof v, 0), -ESHUTDOWN);
    ASSERT_RC(weft_chan_recv(ch, &v, sizeof v, WEFT_FOREVER), -ESHUTDOWN);
    ASSERT_RC(weft_chan_close(ch), -ESHUTDOWN);
    ASSERT_RC(weft_chan_retain(ch), -ESHUTDOWN);
    ASSERT_RC(weft_chan_release(ch), -ESHUTDOWN);
    ASSERT_RC(weft_chan_len(ch), -ESHUTDOWN);
    ASSERT_RC(weft_chan_cap(ch), -ESHUTDOWN);
}

Test(chan, calls_without_runtime_are_eshutdown, .timeout = 30)
{
    check_no_runtime(0x100000001ull);
    start_workers(1);
    weft_chan ch;
    ASSERT_OK(weft_chan_make(&ch, sizeof(int), 4));
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    check_no_runtime(ch);
}

/* ---- allocation failure --------------------------------------------------------------------- */

static struct {
    atomic_long allocs, frees, failed;
    atomic_int fail_all;
} fa;

static void *failing_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    if (new_size == 0) {
        if (ptr)
            atomic_fetch_add(&fa.frees, 1);
        free(ptr);
        return NULL;
    }
    if (ptr)
        return realloc(ptr, new_size);
    if (atomic_load(&fa.fail_all)) {
        atomic_fetch_add(&fa.failed, 1);
        return NULL;
    }
    void *p = malloc(new_size);
    if (p)
        atomic_fetch_add(&fa.allocs, 1);
    return p;
}

/* With every allocation refused, making a channel fails with -ENOMEM (no
 * block to recycle, or no room for its buffer); once allocation works again
 * channels are made and used as before. */
static intptr_t enomem_main(void *arg)
{
    weft_chan ch = 0;
    atomic_store(&fa.fail_all, 1);
    int rc1 = weft_chan_make(&ch, sizeof(int), 0);
    int rc2 = weft_chan_make(&ch, sizeof(int), 100);
    atomic_store(&fa.fail_all, 0);
    CHECK_RC(rc1, -ENOMEM);
    CHECK_RC(rc2, -ENOMEM);

    /* A released block is recycled without allocating: a small channel can
     * still be made, but a buffer that does not fit in the block cannot. */
    ch = make_chan(sizeof(int), 100);
    CHECK_RC(weft_chan_release(ch), 0);
    weft_chan small = 0;
    atomic_store(&fa.fail_all, 1);
    rc2 = weft_chan_make(&ch, sizeof(int), 100);
    rc1 = weft_chan_make(&small, sizeof(int), 2);
    atomic_store(&fa.fail_all, 0);
    CHECK_RC(rc2, -ENOMEM);
    CHECK(rc1 == 0 || rc1 == -ENOMEM, "small channel with allocation refused: %d", rc1);
    if (rc1 == 0) {
        int v = 9;
        CHECK_RC(weft_chan_send(small, &v, sizeof v, 0), 0);
        CHECK_RC(weft_chan_recv(small, &v, sizeof v, 0), 0);
        CHECK(v == 9, "received %d", v);
        CHECK_RC(weft_chan_release(small), 0);
    }

    /* Usable again. */
    weft_chan chans[20];
    for (int i = 0; i < 20; i++) {
        chans[i] = make_chan(sizeof(int), (size_t)i * 10);
        CHECK_RC(weft_chan_cap(chans[i]), i * 10);
    }
    struct echo e = {make_chan(sizeof(int), 0), make_chan(sizeof(int), 0)};
    weft_pid pid = spawn_proc(echo_proc, &e);
    for (int i = 0; i < 100; i++) {
        int v = i;
        CHECK_RC(weft_chan_send(e.in, &v, sizeof v, WEFT_FOREVER), 0);
        CHECK_RC(weft_chan_recv(e.out, &v, sizeof v, WEFT_FOREVER), 0);
        CHECK(v == 2 * i + 1, "answer %d to %d", v, i);
    }
    CHECK_RC(weft_chan_close(e.in), 0);
    CHECK(join_proc(pid) == 100, "the echo process failed");
    for (int i = 0; i < 20; i++)
        CHECK_RC(weft_chan_release(chans[i]), 0);
    CHECK_RC(weft_chan_release(e.in), 0);
    CHECK_RC(weft_chan_release(e.out), 0);
    return 0;
}

Test(chan, make_gives_enomem_when_allocation_fails_then_recovers, .timeout = 30)
{
    ASSERT_OK(weft_set_allocator(failing_alloc, NULL));
    for (unsigned workers = 1; workers <= 2; workers++) {
        atomic_store(&fa.allocs, 0);
        atomic_store(&fa.frees, 0);
        atomic_store(&fa.failed, 0);
        intptr_t r = test_run(workers, enomem_main, NULL);
        ASSERT_CHECKS();
        cr_assert_eq(r, 0);
        cr_assert_gt(atomic_load(&fa.failed), 0, "no allocation was refused");
        cr_assert_eq(atomic_load(&fa.allocs), atomic_load(&fa.frees),
                     "%ld allocations, %ld frees after the run", atomic_load(&fa.allocs),
                     atomic_load(&fa.frees));
    }
    ASSERT_OK(weft_set_allocator(NULL, NULL)); /* nothing held: swappable */
}

/* ---- the runtime's shutdown ----------------------------------------------------------------- */

static atomic_int shutdown_canceled, shutdown_other, shutdown_entered;
static weft_chan shutdown_idle; /* a channel nobody sends to */

static intptr_t stuck_forever(void *arg)
{
    struct blocked *b = arg;
    int v = 0;
    atomic_fetch_add(&shutdown_entered, 1);
    int64_t dl = b->value % 2 ? WEFT_FOREVER : test_in_ms(60000);
    int rc = b->value >= 100 ? weft_chan_send(b->ch, &v, sizeof v, dl)
                             : weft_chan_recv(b->ch, &v, sizeof v, dl);
    if (rc == -ECANCELED)
        atomic_fetch_add(&shutdown_canceled, 1);
    else
        atomic_fetch_add(&shutdown_other, 1);
    /* A later call that would block is refused too, at once. */
    if (weft_chan_recv(shutdown_idle, &v, sizeof v, WEFT_FOREVER) != -ECANCELED)
        atomic_fetch_add(&shutdown_other, 1);
    return 0;
}

static struct blocked shutdown_b[8];

/* Processes blocked on channels (with and without deadlines) when the main
 * process returns: the shutdown cancels each with -ECANCELED. */
static intptr_t shutdown_main(void *arg)
{
    weft_chan rv = make_chan(sizeof(int), 0);
    weft_chan full = make_chan(sizeof(int), 1);
    weft_chan empty = make_chan(sizeof(int), 3);
    int v = 0;
    CHECK_RC(weft_chan_send(full, &v, sizeof v, 0), 0);
    weft_chan chans[8] = {rv, rv, empty, empty, full, full, 0, 0};
    int values[8] = {0, 1, 2, 3, 100, 101, 102, 103};
    weft_chan rv2 = make_chan(sizeof(int), 0);
    shutdown_idle = make_chan(sizeof(int), 0);
    chans[6] = chans[7] = rv2; /* senders on a rendezvous channel */
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = 1;
    for (int i = 0; i < 8; i++) {
        shutdown_b[i].ch = chans[i];
        shutdown_b[i].value = values[i];
        CHECK_RC(weft_spawn(NULL, stuck_forever, &shutdown_b[i], &opts), 0);
    }
    while (atomic_load(&shutdown_entered) < 8)
        weft_yield();
    weft_sleep(test_in_ms(20));
    CHECK(atomic_load(&shutdown_canceled) + atomic_load(&shutdown_other) == 0,
          "a blocked process returned before the shutdown");
    return 0; /* with everything blocked and the channels never released */
}

Test(chan, shutdown_cancels_processes_blocked_on_channels, .timeout = 30)
{
    for (unsigned workers = 1; workers <= 2; workers++) {
        atomic_store(&shutdown_canceled, 0);
        atomic_store(&shutdown_other, 0);
        atomic_store(&shutdown_entered, 0);
        int64_t t0 = weft_now();
        intptr_t r = test_run(workers, shutdown_main, NULL);
        ASSERT_CHECKS();
        cr_assert_eq(r, 0);
        cr_assert_lt(weft_now() - t0, 10000 * MS, "the shutdown waited for the deadlines");
        cr_assert_eq(atomic_load(&shutdown_canceled), 8, "%u workers: %d of 8 blocked processes "
                     "canceled, %d other results", workers, atomic_load(&shutdown_canceled),
                     atomic_load(&shutdown_other));
        cr_assert_eq(atomic_load(&shutdown_other), 0);
    }
}

/* Threads outside the runtime keep calling channel operations while
 * weft_stop tears the runtime down: every call either works, is canceled or
 * finds no runtime; none touches freed memory (ASan watches). */
static atomic_int teardown_go;
static weft_chan teardown_ch;

static void *teardown_user(void *arg)
{
    while (!atomic_load(&teardown_go))
        sched_yield();
    for (;;) {
        int64_t v = 1;
        int rc = weft_chan_send(teardown_ch, &v, sizeof v, 0);
        if (rc == -ESHUTDOWN)
            return NULL;
        rc = weft_chan_recv(teardown_ch, &v, sizeof v, 0);
        if (rc == -ESHUTDOWN)
            return NULL;
        if (rc != 0 && rc != -ETIMEDOUT && rc != -ECANCELED && rc != -EBADF)
            return (void *)(intptr_t)rc;
    }
}

Test(chan, outside_calls_racing_stop_touch_nothing_freed, .timeout = 60)
{
    for (int round = 0; round < 20; round++) {
        start_workers(2);
        ASSERT_OK(weft_chan_make(&teardown_ch, sizeof(int64_t), 4));
        atomic_store(&teardown_go, 0);
        pthread_t t[3];
        for (int i = 0; i < 3; i++)
            cr_assert_eq(pthread_create(&t[i], NULL, teardown_user, NULL), 0);
        atomic_store(&teardown_go, 1);
        for (int64_t until = weft_now() + 2 * MS; weft_now() < until;)
            sched_yield();
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        for (int i = 0; i < 3; i++) {
            void *rc;
            pthread_join(t[i], &rc);
            cr_assert_eq((intptr_t)rc, 0, "a call returned %d", (int)(intptr_t)rc);
        }
    }
}
