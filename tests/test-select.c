/* test-select.c: weft_select over channel cases: exactly one case fires,
 * a process never matches itself, stress over mixed channels (after Go's
 * runtime/chan_test.go), fairness and priority, guards, deadlines, closed and
 * destroyed channels, many cases, outside threads, bad input. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#define TEST_PROC_CHECKS
#include "test.h"

/* A generous deadline for selects that must complete: a lost wake-up shows
 * as -ETIMEDOUT with a message instead of a hang. */
static int64_t soon(void)
{
    return test_in_ms(10000);
}

/* Sends n ints (first, first+1, ...) on ch, then returns 0. */
struct sender {
    weft_chan ch;
    int first, n;
    int64_t delay_ms; /* sleep before the first send */
};

static intptr_t send_ints(void *arg)
{
    struct sender *s = arg;
    if (s->delay_ms)
        weft_sleep(test_in_ms(s->delay_ms));
    for (int i = 0; i < s->n; i++) {
        int v = s->first + i;
        int rc = weft_chan_send(s->ch, &v, sizeof v, soon());
        if (rc != 0) {
            check_fail(__LINE__, "send of %d: %d (%s)", v, rc, weft_strerror(rc));
            return 1;
        }
    }
    return 0;
}

/* ---- exactly one case fires ------------------------------------------------------------ */

/* Two senders, one on each of two channels; a third process receives every
 * value through a select on both. The buffer of the case that did not fire
 * stays untouched, each sender's values arrive once and in order, and the
 * counts add up. */
struct two_recv {
    weft_chan ch[2];
    int n; /* per channel */
    size_t cap;
};

static intptr_t two_recv_main(void *arg)
{
    struct two_recv *t = arg;
    for (int k = 0; k < 2; k++)
        t->ch[k] = make_chan(sizeof(int), t->cap);
    struct sender s[2] = {{t->ch[0], 0, t->n, 0}, {t->ch[1], 1000000, t->n, 0}};
    weft_pid pids[2];
    for (int k = 0; k < 2; k++)
        pids[k] = spawn_on(send_ints, &s[k], k, 1);
    int next[2] = {0, 1000000}, count[2] = {0, 0};
    for (int i = 0; i < 2 * t->n; i++) {
        int v[2] = {-1, -1};
        weft_case cases[2] = {WEFT_RECV(t->ch[0], &v[0]), WEFT_RECV(t->ch[1], &v[1])};
        cases[0].result = cases[1].result = 12345;
        int r = weft_select(cases, 2, WEFT_SELECT_FAIR, soon());
        if (r != 0 && r != 1) {
            check_fail(__LINE__, "select %d returned %d (%s)", i, r, weft_strerror(r));
            return 1;
        }
        if (cases[r].result != 0 || v[1 - r] != -1 || v[r] != next[r]) {
            check_fail(__LINE__, "select %d fired case %d: result %d, values %d and %d, expected %d",
                       i, r, cases[r].result, v[0], v[1], next[r]);
            return 1;
        }
        next[r]++;
        count[r]++;
    }
    for (int k = 0; k < 2; k++) {
        CHECK(join_proc(pids[k]) == 0, "sender %d failed", k);
        CHECK(count[k] == t->n, "channel %d: %d values, expected %d", k, count[k], t->n);
        int v;
        CHECK_RC(weft_chan_recv(t->ch[k], &v, sizeof v, 0), -ETIMEDOUT);
        CHECK_RC(weft_chan_release(t->ch[k]), 0);
    }
    return 0;
}

Test(select, two_recv_cases_never_both_fire, .timeout = 60)
{
    int n = test_sanitized() ? 10000 : 50000; /* per channel: 100,000 selects in a release build */
    for (int round = 0; round < (test_sanitized() ? 1 : 10); round++)
        for (size_t cap = 0; cap <= 3; cap += 3) {
            struct two_recv t = {.n = n, .cap = cap};
            run_at_workers(2, two_recv_main, &t);
        }
}

/* The mirror image: one process sends every value through a select with a
 * send case on each of two channels; a receiver on each channel. Each value
 * reaches exactly the receiver of the case that fired, once. */
struct two_send {
    weft_chan ch[2];
    size_t cap;
    int total;
    atomic_int *owner; /* per value: 1 + the channel it arrived on */
    int *fired;        /* per value: the case that fired for it */
};

struct two_send_rx {
    struct two_send *t;
    int k;
};

static intptr_t two_send_receiver(void *arg)
{
    struct two_send_rx *rx = arg;
    int last = -1, n = 0;
    for (;;) {
        int v = -1;
        int rc = weft_chan_recv(rx->t->ch[rx->k], &v, sizeof v, soon());
        if (rc == -EPIPE)
            return n;
        if (rc != 0 || v < 0 || v >= rx->t->total || v <= last) {
            check_fail(__LINE__, "receiver %d: rc %d (%s), value %d after %d", rx->k, rc,
                       weft_strerror(rc), v, last);
            return -1;
        }
        int prev = atomic_exchange(&rx->t->owner[v], 1 + rx->k);
        if (prev != 0) {
            check_fail(__LINE__, "value %d arrived on channel %d and on channel %d", v, prev - 1,
                       rx->k);
            return -1;
        }
        last = v;
        n++;
    }
}

static intptr_t two_send_main(void *arg)
{
    struct two_send *t = arg;
    for (int k = 0; k < 2; k++)
        t->ch[k] = make_chan(sizeof(int), t->cap);
    struct two_send_rx rx[2] = {{t, 0}, {t, 1}};
    weft_pid pids[2];
    for (int k = 0; k < 2; k++)
        pids[k] = spawn_on(two_send_receiver, &rx[k], k, 1);
    int count[2] = {0, 0};
    for (int i = 0; i < t->total; i++) {
        int v = i;
        weft_case cases[2] = {WEFT_SEND(t->ch[0], &v), WEFT_SEND(t->ch[1], &v)};
        int r = weft_select(cases, 2, WEFT_SELECT_FAIR, soon());
        if ((r != 0 && r != 1) || cases[r].result != 0) {
            check_fail(__LINE__, "select %d returned %d (%s)", i, r, weft_strerror(r));
            return 1;
        }
        t->fired[i] = r;
        count[r]++;
    }
    for (int k = 0; k < 2; k++)
        CHECK_RC(weft_chan_close(t->ch[k]), 0);
    for (int k = 0; k < 2; k++) {
        intptr_t n = join_proc(pids[k]);
        CHECK(n == count[k], "receiver %d got %ld values, the select sent %d there", k, (long)n,
              count[k]);
        CHECK_RC(weft_chan_release(t->ch[k]), 0);
    }
    for (int i = 0; i < t->total; i++)
        if (atomic_load(&t->owner[i]) != 1 + t->fired[i]) {
            check_fail(__LINE__, "value %d: case %d fired, arrived on %d", i, t->fired[i],
                       atomic_load(&t->owner[i]) - 1);
            break;
        }
    CHECK(count[0] > 0 && count[1] > 0, "one channel never used: %d / %d", count[0], count[1]);
    return 0;
}

Test(select, two_send_cases_never_both_fire, .timeout = 60)
{
    int total = test_sanitized() ? 20000 : 100000;
    for (int round = 0; round < (test_sanitized() ? 2 : 20); round++) {
        struct two_send t = {.total = total, .cap = round % 2 ? 3 : 0};
        t.owner = calloc((size_t)total, sizeof *t.owner);
        t.fired = calloc((size_t)total, sizeof *t.fired);
        run_at_workers(2, two_send_main, &t);
        free(t.owner);
        free(t.fired);
    }
}

/* ---- a process never matches itself (Go's TestSelfSelect) ------------------------------- */

/* Alone, a process selecting a send and a receive on one rendezvous channel
 * finds no partner: it times out. */
static intptr_t self_alone_main(void *arg)
{
    weft_chan ch = make_chan(sizeof(int), 0);
    for (int policy = 0; policy <= 1; policy++) {
        int out = 1, in = -1;
        weft_case cases[2] = {WEFT_SEND(ch, &out), WEFT_RECV(ch, &in)};
        CHECK_RC(weft_select(cases, 2, policy, 0), -ETIMEDOUT);
        int64_t t0 = weft_now();
        CHECK_RC(weft_select(cases, 2, policy, test_in_ms(20)), -ETIMEDOUT);
        CHECK(weft_now() - t0 >= 20 * MS, "timed out early");
        CHECK(in == -1, "the select received %d from itself", in);
        /* Both cases of the same order reversed. */
        weft_case rev[2] = {WEFT_RECV(ch, &in), WEFT_SEND(ch, &out)};
        CHECK_RC(weft_select(rev, 2, policy, test_in_ms(5)), -ETIMEDOUT);
    }
    /* And nothing was left queued: a non-blocking send finds no receiver. */
    int v = 3;
    CHECK_RC(weft_chan_send(ch, &v, sizeof v, 0), -ETIMEDOUT);
    CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), -ETIMEDOUT);
    CHECK_RC(weft_chan_release(ch), 0);
    return 0;
}

Test(select, alone_send_and_recv_on_one_channel_times_out, .timeout = 30)
{
    run_1_and_2(self_alone_main, NULL);
}

/* Two processes each select a send and a receive on the same channel, many
 * times, in both case orders: on a rendezvous channel every exchange pairs
 * the two processes (never one with itself), so each receives exactly the
 * other's values, in order; on a buffered one nothing is lost. */
struct self_sel {
    weft_chan ch;
    size_t cap;
    int iters, pinned;
    int sent[2], recvd[2];
    long long sent_sum[2], recvd_sum[2];
};

struct self_arg {
    struct self_sel *s;
    int p;
};

static intptr_t self_selector(void *arg)
{
    struct self_arg *a = arg;
    struct self_sel *s = a->s;
    int seq = 0, last_from_other = -1;
    for (int i = 0; i < s->iters; i++) {
        int out = a->p << 24 | seq, in = -1;
        weft_case cases[2] = {WEFT_SEND(s->ch, &out), WEFT_RECV(s->ch, &in)};
        if (a->p == 1 && i % 2) {
            cases[0] = WEFT_RECV(s->ch, &in);
            cases[1] = WEFT_SEND(s->ch, &out);
        }
        int r = weft_select(cases, 2, i % 3 ? WEFT_SELECT_FAIR : WEFT_SELECT_PRIORITY, soon());
        if (r != 0 && r != 1) {
            check_fail(__LINE__, "process %d, select %d: %d (%s)", a->p, i, r, weft_strerror(r));
            return 1;
        }
        if (cases[r].kind == WEFT_CASE_SEND) {
            s->sent[a->p]++;
            s->sent_sum[a->p] += out;
            seq++;
        } else {
            int from = in >> 24, n = in & 0xFFFFFF;
            if (s->cap == 0 && from == a->p) {
                check_fail(__LINE__, "process %d received its own value %#x", a->p, in);
                return 1;
            }
            if (from == 1 - a->p) {
                if (n <= last_from_other) {
                    check_fail(__LINE__, "process %d: value %d of the other after %d", a->p, n,
                               last_from_other);
                    return 1;
                }
                last_from_other = n;
            }
            s->recvd[a->p]++;
            s->recvd_sum[a->p] += in;
        }
    }
    return 0;
}

static intptr_t self_select_main(void *arg)
{
    struct self_sel *s = arg;
    for (size_t cap = 0; cap <= 10; cap += 10) {
        memset(s->sent, 0, sizeof s->sent);
        memset(s->recvd, 0, sizeof s->recvd);
        memset(s->sent_sum, 0, sizeof s->sent_sum);
        memset(s->recvd_sum, 0, sizeof s->recvd_sum);
        s->cap = cap;
        s->ch = make_chan(sizeof(int), cap);
        struct self_arg a[2] = {{s, 0}, {s, 1}};
        weft_pid pids[2];
        for (int p = 0; p < 2; p++)
            pids[p] = s->pinned ? spawn_on(self_selector, &a[p], p, 1) : spawn_proc(self_selector, &a[p]);
        for (int p = 0; p < 2; p++)
            CHECK(join_proc(pids[p]) == 0, "process %d failed", p);
        /* What is still buffered was sent and not received. */
        long long left_sum = 0;
        int left = 0, v;
        while (weft_chan_recv(s->ch, &v, sizeof v, 0) == 0) {
            left++;
            left_sum += v;
        }
        int sent = s->sent[0] + s->sent[1], recvd = s->recvd[0] + s->recvd[1];
        CHECK(sent == recvd + left, "cap %zu: %d sent, %d received, %d left", cap, sent, recvd, left);
        CHECK(s->sent_sum[0] + s->sent_sum[1] == s->recvd_sum[0] + s->recvd_sum[1] + left_sum,
              "cap %zu: sums of sent and received values differ", cap);
        if (cap == 0)
            CHECK(s->sent[0] == s->recvd[1] && s->sent[1] == s->recvd[0] && left == 0,
                  "rendezvous: sent %d/%d, received %d/%d", s->sent[0], s->sent[1], s->recvd[0],
                  s->recvd[1]);
        CHECK_RC(weft_chan_release(s->ch), 0);
    }
    return 0;
}

Test(select, send_and_recv_on_same_channel_never_match_themselves, .timeout = 60)
{
    struct self_sel s = {.iters = test_sanitized() ? 5000 : 20000};
    for (int round = 0; round < 4; round++) {
        s.pinned = round % 2;
        run_1_and_2(self_select_main, &s);
    }
}

/* ---- stress (Go's TestSelectStress) -------------------------------------------------------- */

/* Four channels of capacities 0, 0, 2 and 3. On each, a plain sender and a
 * plain receiver move n values; one process sends n values on every channel
 * through one select, another receives n from every channel through one
 * select, disabling a channel's case once its n are done. Every value (tagged
 * with its channel, its source and its sequence number) arrives exactly once,
 * on its own channel, in order from each source. */
enum { ST_CHANS = 4 };

struct stress {
    weft_chan ch[ST_CHANS];
    int n;
    atomic_int *seen;           /* [ST_CHANS][2][n] */
    atomic_int received[ST_CHANS];
};

static int st_value(int chan, int source, int seq, int n)
{
    return (chan * 2 + source) * n + seq;
}

struct st_arg {
    struct stress *s;
    int k;
};

/* Checks a received value; last[] holds the last sequence number per source. */
static bool st_receive(struct stress *s, int k, int v, int *last)
{
    int n = s->n;
    if (v < 0 || v >= ST_CHANS * 2 * n || v / (2 * n) != k) {
        check_fail(__LINE__, "channel %d carried value %d (of channel %d)", k, v, v / (2 * n));
        return false;
    }
    int source = (v / n) % 2, seq = v % n;
    if (seq <= last[source]) {
        check_fail(__LINE__, "channel %d, source %d: %d after %d", k, source, seq, last[source]);
        return false;
    }
    last[source] = seq;
    if (atomic_fetch_add(&s->seen[v], 1) != 0) {
        check_fail(__LINE__, "value %d received twice", v);
        return false;
    }
    atomic_fetch_add(&s->received[k], 1);
    return true;
}

static intptr_t st_plain_sender(void *arg)
{
    struct st_arg *a = arg;
    for (int i = 0; i < a->s->n; i++) {
        int v = st_value(a->k, 0, i, a->s->n);
        int rc = weft_chan_send(a->s->ch[a->k], &v, sizeof v, soon());
        if (rc) {
            check_fail(__LINE__, "plain send on %d: %d (%s)", a->k, rc, weft_strerror(rc));
            return 1;
        }
    }
    return 0;
}

static intptr_t st_plain_receiver(void *arg)
{
    struct st_arg *a = arg;
    int last[2] = {-1, -1};
    for (int i = 0; i < a->s->n; i++) {
        int v = -1;
        int rc = weft_chan_recv(a->s->ch[a->k], &v, sizeof v, soon());
        if (rc) {
            check_fail(__LINE__, "plain receive on %d: %d (%s)", a->k, rc, weft_strerror(rc));
            return 1;
        }
        if (!st_receive(a->s, a->k, v, last))
            return 1;
    }
    return 0;
}

static intptr_t st_select_sender(void *arg)
{
    struct stress *s = arg;
    int sent[ST_CHANS] = {0};
    int vals[ST_CHANS];
    weft_case cases[ST_CHANS];
    for (int k = 0; k < ST_CHANS; k++)
        cases[k] = WEFT_SEND(s->ch[k], &vals[k]);
    for (int i = 0; i < ST_CHANS * s->n; i++) {
        for (int k = 0; k < ST_CHANS; k++) {
            vals[k] = st_value(k, 1, sent[k], s->n);
            cases[k].disabled = sent[k] == s->n;
        }
        int r = weft_select(cases, ST_CHANS, WEFT_SELECT_FAIR, soon());
        if (r < 0 || r >= ST_CHANS || cases[r].result != 0 || sent[r] >= s->n) {
            check_fail(__LINE__, "select send %d: %d (%s)", i, r, weft_strerror(r));
            return 1;
        }
        sent[r]++;
    }
    return 0;
}

static intptr_t st_select_receiver(void *arg)
{
    struct stress *s = arg;
    int got[ST_CHANS] = {0};
    int vals[ST_CHANS];
    int last[ST_CHANS][2];
    weft_case cases[ST_CHANS];
    for (int k = 0; k < ST_CHANS; k++) {
        cases[k] = WEFT_RECV(s->ch[k], &vals[k]);
        last[k][0] = last[k][1] = -1;
    }
    for (int i = 0; i < ST_CHANS * s->n; i++) {
        for (int k = 0; k < ST_CHANS; k++) {
            vals[k] = -1;
            cases[k].disabled = got[k] == s->n;
        }
        int r = weft_select(cases, ST_CHANS, WEFT_SELECT_FAIR, soon());
        if (r < 0 || r >= ST_CHANS || cases[r].result != 0) {
            check_fail(__LINE__, "select receive %d: %d (%s)", i, r, weft_strerror(r));
            return 1;
        }
        for (int k = 0; k < ST_CHANS; k++)
            if (k != r && vals[k] != -1) {
                check_fail(__LINE__, "case %d fired but case %d's buffer was written", r, k);
                return 1;
            }
        if (!st_receive(s, r, vals[r], last[r]))
            return 1;
        got[r]++;
    }
    return 0;
}

static intptr_t stress_main(void *arg)
{
    struct stress *s = arg;
    size_t caps[ST_CHANS] = {0, 0, 2, 3};
    for (int k = 0; k < ST_CHANS; k++) {
        s->ch[k] = make_chan(sizeof(int), caps[k]);
        atomic_store(&s->received[k], 0);
    }
    struct st_arg a[ST_CHANS];
    weft_pid pids[2 * ST_CHANS + 2];
    int np = 0;
    for (int k = 0; k < ST_CHANS; k++) {
        a[k] = (struct st_arg){s, k};
        pids[np++] = spawn_on(st_plain_sender, &a[k], k, 0);
        pids[np++] = spawn_on(st_plain_receiver, &a[k], k + 1, 0);
    }
    pids[np++] = spawn_on(st_select_sender, s, 0, 1);
    pids[np++] = spawn_on(st_select_receiver, s, 1, 1);
    for (int i = 0; i < np; i++)
        CHECK(join_proc(pids[i]) == 0, "process %d failed", i);
    for (int k = 0; k < ST_CHANS; k++) {
        CHECK(atomic_load(&s->received[k]) == 2 * s->n, "channel %d: %d received, expected %d", k,
              atomic_load(&s->received[k]), 2 * s->n);
        CHECK_RC(weft_chan_len(s->ch[k]), 0);
        CHECK_RC(weft_chan_release(s->ch[k]), 0);
    }
    for (int v = 0; v < ST_CHANS * 2 * s->n; v++)
        if (atomic_load(&s->seen[v]) != 1) {
            check_fail(__LINE__, "value %d received %d times", v, atomic_load(&s->seen[v]));
            break;
        }
    return 0;
}

Test(select, stress_four_channels_ten_processes, .timeout = 60)
{
    /* n values per channel and role: 4 channels x 4 roles x n operations,
     * 100,000 in a release build. */
    struct stress s = {.n = test_sanitized() ? 1250 : 6250};
    s.seen = calloc((size_t)ST_CHANS * 2 * s.n, sizeof *s.seen);
    for (int round = 0; round < (test_sanitized() ? 3 : 10); round++) {
        memset(s.seen, 0, (size_t)ST_CHANS * 2 * s.n * sizeof *s.seen);
        run_at_workers(2, stress_main, &s);
    }
    memset(s.seen, 0, (size_t)ST_CHANS * 2 * s.n * sizeof *s.seen);
    run_at_workers(1, stress_main, &s);
    free(s.seen);
}

/* ---- fairness and priority -------------------------------------------------------------- */

/* Two channels each hold N elements, so that both cases of every select are
 * ready. FAIR: over N selects each case fires with probability 1/2; the
 * count of case 0 is Binomial(N, 1/2), standard deviation sqrt(N)/2 = 158
 * for N = 100,000, and by Hoeffding's bound it leaves [45%, 55%] with
 * probability at most 2 exp(-2 N 0.05^2) = 2 exp(-500): never by chance. Each
 * channel's elements come out in order. PRIORITY: the first ready case in
 * array order always fires. */
static intptr_t fairness_main(void *arg)
{
    int n = test_sanitized() ? 20000 : 100000;
    weft_chan ch[2];
    for (int k = 0; k < 2; k++) {
        ch[k] = make_chan(sizeof(int), (size_t)n);
        for (int i = 0; i < n; i++)
            CHECK_RC(weft_chan_send(ch[k], &i, sizeof i, 0), 0);
    }
    int count[2] = {0, 0};
    for (int i = 0; i < n; i++) {
        int v[2] = {-1, -1};
        weft_case cases[2] = {WEFT_RECV(ch[0], &v[0]), WEFT_RECV(ch[1], &v[1])};
        int r = weft_select(cases, 2, WEFT_SELECT_FAIR, 0);
        if ((r != 0 && r != 1) || v[r] != count[r] || v[1 - r] != -1) {
            check_fail(__LINE__, "select %d: %d, values %d %d", i, r, v[0], v[1]);
            return 1;
        }
        count[r]++;
    }
    CHECK(count[0] >= n * 45 / 100 && count[0] <= n * 55 / 100,
          "FAIR: case 0 fired %d times of %d", count[0], n);
    for (int k = 0; k < 2; k++)
        CHECK_RC(weft_chan_len(ch[k]), n - count[k]);

    /* Three ready cases, FAIR: each gets about a third (the third channel
     * is refilled whenever its case fires, so that all three stay ready). */
    int third[3] = {0, 0, 0};
    weft_chan c3 = make_chan(sizeof(int), 1);
    int one = 1;
    CHECK_RC(weft_chan_send(c3, &one, sizeof one, 0), 0);
    for (int i = 0; i < n / 2; i++) {
        int v[3];
        weft_case cases[3] = {WEFT_RECV(ch[0], &v[0]), WEFT_RECV(ch[1], &v[1]), WEFT_RECV(c3, &v[2])};
        int r = weft_select(cases, 3, WEFT_SELECT_FAIR, 0);
        if (r < 0 || r > 2) {
            check_fail(__LINE__, "select: %d", r);
            return 1;
        }
        third[r]++;
        if (r == 2)
            CHECK_RC(weft_chan_send(c3, &one, sizeof one, 0), 0);
        if (weft_chan_len(ch[0]) == 0 || weft_chan_len(ch[1]) == 0)
            break;
    }
    int m = third[0] + third[1] + third[2];
    /* Binomial(m, 1/3): standard deviation 0.2% of m = 50,000 (0.5% at
     * 10,000 in sanitizer builds); [28%, 39%] is more than 10 of them away. */
    for (int k = 0; k < 3; k++)
        CHECK(third[k] >= m * 28 / 100 && third[k] <= m * 39 / 100,
              "FAIR over 3: case %d fired %d times of %d", k, third[k], m);
    CHECK_RC(weft_chan_release(c3), 0);

    /* PRIORITY: always the first ready case. */
    for (int i = 0; i < 2000; i++) {
        int v[2] = {-1, -1};
        weft_case cases[2] = {WEFT_RECV(ch[i % 2], &v[0]), WEFT_RECV(ch[1 - i % 2], &v[1])};
        int r = weft_select(cases, 2, WEFT_SELECT_PRIORITY, 0);
        if (r != 0 || v[1] != -1) {
            check_fail(__LINE__, "PRIORITY select %d fired case %d", i, r);
            return 1;
        }
    }
    /* PRIORITY with the first case not ready: the second ready one wins. */
    weft_chan empty = make_chan(sizeof(int), 0);
    for (int i = 0; i < 2000; i++) {
        int v[3] = {-1, -1, -1};
        weft_case cases[3] = {WEFT_RECV(empty, &v[0]), WEFT_RECV(ch[1], &v[1]), WEFT_RECV(ch[0], &v[2])};
        int r = weft_select(cases, 3, WEFT_SELECT_PRIORITY, soon());
        if (r != 1) {
            check_fail(__LINE__, "PRIORITY select %d fired case %d, expected 1", i, r);
            return 1;
        }
    }
    CHECK_RC(weft_chan_release(empty), 0);
    for (int k = 0; k < 2; k++)
        CHECK_RC(weft_chan_release(ch[k]), 0);
    return 0;
}

Test(select, fair_is_uniform_priority_takes_first_ready, .timeout = 30)
{
    run_1_and_2(fairness_main, NULL);
}

/* ---- guards ------------------------------------------------------------------------------ */

/* A disabled case never fires, even when its channel is ready; with every
 * case disabled a select just waits for its deadline. */
static intptr_t guards_main(void *arg)
{
    weft_chan ready = make_chan(sizeof(int), 4);
    weft_chan roomy = make_chan(sizeof(int), 4);
    weft_chan idle = make_chan(sizeof(int), 0);
    int v = 7, in = -1, out = 8;
    CHECK_RC(weft_chan_send(ready, &v, sizeof v, 0), 0);
    for (int policy = 0; policy <= 1; policy++)
        for (int i = 0; i < 200; i++) {
            weft_case cases[3] = {WEFT_RECV(ready, &in), WEFT_SEND(roomy, &out), WEFT_RECV(idle, &in)};
            cases[0].disabled = 1;
            cases[1].disabled = 1;
            int64_t dl = i == 0 ? test_in_ms(10) : 0;
            CHECK_RC(weft_select(cases, 3, policy, dl), -ETIMEDOUT);
            CHECK(in == -1, "a disabled receive wrote %d", in);
        }
    CHECK_RC(weft_chan_len(ready), 1);
    CHECK_RC(weft_chan_len(roomy), 0);

    /* Only the enabled case of several ready ones fires. */
    for (int i = 0; i < 200; i++) {
        CHECK_RC(weft_chan_send(roomy, &v, sizeof v, 0), 0);
        int a = -1, b = -1;
        weft_case cases[2] = {WEFT_RECV(ready, &a), WEFT_RECV(roomy, &b)};
        cases[0].disabled = 1;
        int r = weft_select(cases, 2, i % 2, 0);
        CHECK(r == 1 && b == 7 && a == -1, "select %d: %d (a %d, b %d)", i, r, a, b);
    }
    CHECK_RC(weft_chan_len(ready), 1);

    /* Every case disabled: -ETIMEDOUT at the deadline, at once for 0. */
    weft_case all[2] = {WEFT_RECV(ready, &in), WEFT_SEND(roomy, &out)};
    all[0].disabled = all[1].disabled = 1;
    CHECK_RC(weft_select(all, 2, WEFT_SELECT_FAIR, 0), -ETIMEDOUT);
    int64_t t0 = weft_now();
    CHECK_RC(weft_select(all, 2, WEFT_SELECT_FAIR, t0 + 20 * MS), -ETIMEDOUT);
    int64_t el = weft_now() - t0;
    CHECK(el >= 20 * MS && el < 2020 * MS, "an all-disabled select with a 20 ms deadline took %lld ns",
          (long long)el);
    t0 = weft_now();
    CHECK_RC(weft_select(all, 2, WEFT_SELECT_PRIORITY, t0 - 1), -ETIMEDOUT);
    CHECK(weft_now() - t0 < 1000 * MS, "a past deadline blocked");

    /* A disabled case may hold anything: unknown kind, NULL buffer, stale or
     * forged handle, wrong size. */
    weft_chan stale = make_chan(sizeof(int), 1);
    CHECK_RC(weft_chan_release(stale), 0);
    weft_case junk[5] = {
        {.kind = 99, .disabled = 1},
        {.kind = WEFT_CASE_RECV, .disabled = 1, .handle = ready, .buf = NULL, .size = 4},
        {.kind = WEFT_CASE_SEND, .disabled = 1, .handle = stale, .buf = &out, .size = 4},
        {.kind = WEFT_CASE_RECV, .disabled = 1, .handle = ready, .buf = &in, .size = 3},
        WEFT_RECV(ready, &in),
    };
    CHECK_RC(weft_select(junk, 5, WEFT_SELECT_FAIR, 0), 4);
    CHECK(in == 7, "received %d", in);
    CHECK_RC(weft_select(junk, 4, WEFT_SELECT_FAIR, 0), -ETIMEDOUT);

    CHECK_RC(weft_chan_release(ready), 0);
    CHECK_RC(weft_chan_release(roomy), 0);
    CHECK_RC(weft_chan_release(idle), 0);
    return 0;
}

Test(select, disabled_cases_never_fire, .timeout = 30)
{
    run_1_and_2(guards_main, NULL);
}

/* ---- deadlines ------------------------------------------------------------------------------ */

/* Deadline 0: -ETIMEDOUT when no case is ready, at once; the index of the
 * ready case otherwise, also for a send to a waiting receiver and a receive
 * from a waiting sender. */
static intptr_t recv_int(void *arg)
{
    weft_chan ch = *(weft_chan *)arg;
    int v = -1;
    int rc = weft_chan_recv(ch, &v, sizeof v, soon());
    return rc ? rc : v;
}

static intptr_t nonblocking_main(void *arg)
{
    weft_chan rv = make_chan(sizeof(int), 0);
    weft_chan buf = make_chan(sizeof(int), 1);
    int in = -1, out = 5;
    weft_case cases[3] = {WEFT_RECV(rv, &in), WEFT_SEND(rv, &out), WEFT_RECV(buf, &in)};
    int64_t t0 = weft_now();
    for (int i = 0; i < 1000; i++)
        CHECK_RC(weft_select(cases, 3, i % 2, 0), -ETIMEDOUT);
    CHECK(weft_now() - t0 < 2000 * MS, "1000 non-blocking selects took %lld ns",
          (long long)(weft_now() - t0));
    /* Something buffered: that case. */
    CHECK_RC(weft_chan_send(buf, &out, sizeof out, 0), 0);
    CHECK_RC(weft_select(cases, 3, WEFT_SELECT_FAIR, 0), 2);
    CHECK(in == 5 && cases[2].result == 0, "received %d, result %d", in, cases[2].result);
    CHECK_RC(weft_select(cases, 3, WEFT_SELECT_FAIR, 0), -ETIMEDOUT);

    /* A receiver waiting on the rendezvous channel: the send case. Selects
     * with deadline 0 race with the receiver's arrival: poll. */
    weft_pid pid = spawn_proc(recv_int, &rv);
    weft_case send_only[2] = {WEFT_SEND(rv, &out), WEFT_RECV(buf, &in)};
    out = 66;
    int r;
    int64_t limit = test_in_ms(5000);
    while ((r = weft_select(send_only, 2, WEFT_SELECT_FAIR, 0)) == -ETIMEDOUT && weft_now() < limit)
        weft_yield();
    CHECK(r == 0, "non-blocking select with a waiting receiver: %d", r);
    CHECK(join_proc(pid) == 66, "the receiver got something else");

    /* A sender waiting: the receive case. */
    struct sender s = {rv, 77, 1, 0};
    pid = spawn_proc(send_ints, &s);
    weft_case recv_only[2] = {WEFT_RECV(rv, &in), WEFT_RECV(buf, &in)};
    in = -1;
    limit = test_in_ms(5000);
    while ((r = weft_select(recv_only, 2, WEFT_SELECT_PRIORITY, 0)) == -ETIMEDOUT && weft_now() < limit)
        weft_yield();
    CHECK(r == 0 && in == 77, "non-blocking select with a waiting sender: %d, received %d", r, in);
    CHECK(join_proc(pid) == 0, "the sender failed");
    CHECK_RC(weft_chan_release(rv), 0);
    CHECK_RC(weft_chan_release(buf), 0);
    return 0;
}

Test(select, deadline_zero_never_blocks_and_takes_ready_case, .timeout = 30)
{
    run_1_and_2(nonblocking_main, NULL);
}

/* A select that timed out leaves nothing queued: a sender that comes later
 * finds no receiver (its non-blocking send fails), and a value sent later
 * goes to the next receiver, not into the old select's buffer. */
static intptr_t expired_main(void *arg)
{
    for (size_t cap = 0; cap <= 1; cap++) {
        weft_chan a = make_chan(sizeof(int), 0), b = make_chan(sizeof(int), cap);
        int va = -1, vb = -1;
        weft_case cases[2] = {WEFT_RECV(a, &va), WEFT_RECV(b, &vb)};
        int64_t t0 = weft_now();
        CHECK_RC(weft_select(cases, 2, WEFT_SELECT_FAIR, t0 + 20 * MS), -ETIMEDOUT);
        int64_t el = weft_now() - t0;
        CHECK(el >= 20 * MS && el < 2020 * MS, "a 20 ms select deadline took %lld ns", (long long)el);
        int x = 5;
        CHECK_RC(weft_chan_send(a, &x, sizeof x, 0), -ETIMEDOUT);
        if (cap == 0)
            CHECK_RC(weft_chan_send(b, &x, sizeof x, 0), -ETIMEDOUT);

        /* Send-side: a select whose send cases expired sent nothing. */
        int out = 9;
        weft_case sends[2] = {WEFT_SEND(a, &out), WEFT_SEND(a, &out)};
        CHECK_RC(weft_select(sends, 2, WEFT_SELECT_PRIORITY, test_in_ms(10)), -ETIMEDOUT);
        CHECK_RC(weft_chan_recv(a, &x, sizeof x, 0), -ETIMEDOUT);

        /* Later exchanges work and reach the right place. */
        weft_pid pid = spawn_proc(recv_int, &a);
        x = 123;
        CHECK_RC(weft_chan_send(a, &x, sizeof x, soon()), 0);
        CHECK(join_proc(pid) == 123, "the later receiver did not get the value");
        CHECK(va == -1 && vb == -1, "the expired select's buffers were written: %d %d", va, vb);
        struct sender s = {a, 400, 1, 5};
        pid = spawn_proc(send_ints, &s);
        CHECK_RC(weft_select(cases, 2, WEFT_SELECT_FAIR, soon()), 0);
        CHECK(va == 400, "the next select received %d", va);
        CHECK(join_proc(pid) == 0, "sender failed");
        CHECK_RC(weft_chan_release(a), 0);
        CHECK_RC(weft_chan_release(b), 0);
    }
    return 0;
}

Test(select, expired_select_leaves_nothing_queued, .timeout = 30)
{
    run_1_and_2(expired_main, NULL);
}

/* Selects with deadlines of a few microseconds race with senders that also
 * time out: a value is received exactly when its send returned 0. */
struct sel_race {
    weft_chan ch[2];
    int per_sender;
    atomic_uchar *sent, *got;
    atomic_int senders_left;
};

struct sel_race_arg {
    struct sel_race *r;
    int index;
};

static intptr_t sel_race_sender(void *arg)
{
    struct sel_race_arg *a = arg;
    struct sel_race *r = a->r;
    for (int i = 0; i < r->per_sender; i++) {
        int v = a->index * r->per_sender + i;
        int64_t dl = i % 4 == 0 ? 0 : weft_now() + (i % 5) * 20 * US;
        int rc = weft_chan_send(r->ch[a->index], &v, sizeof v, dl);
        if (rc == 0)
            atomic_store(&r->sent[v], 1);
        else if (rc != -ETIMEDOUT) {
            check_fail(__LINE__, "send: %d (%s)", rc, weft_strerror(rc));
            break;
        }
    }
    atomic_fetch_sub(&r->senders_left, 1);
    return 0;
}

static intptr_t sel_race_selector(void *arg)
{
    struct sel_race *r = arg;
    int total = 2 * r->per_sender;
    for (int k = 0;; k++) {
        bool last_pass = atomic_load(&r->senders_left) == 0;
        int v[2] = {-1, -1};
        weft_case cases[2] = {WEFT_RECV(r->ch[0], &v[0]), WEFT_RECV(r->ch[1], &v[1])};
        int64_t dl = k % 3 == 0 ? 0 : weft_now() + (k % 4) * 25 * US;
        int s = weft_select(cases, 2, k % 2 ? WEFT_SELECT_FAIR : WEFT_SELECT_PRIORITY, dl);
        if (s == -ETIMEDOUT) {
            if (v[0] != -1 || v[1] != -1) {
                check_fail(__LINE__, "a timed-out select received %d / %d", v[0], v[1]);
                return 1;
            }
            if (last_pass)
                return 0; /* the senders had ended before this select began */
            continue;
        }
        if ((s != 0 && s != 1) || cases[s].result != 0 || v[s] < 0 || v[s] >= total ||
            v[1 - s] != -1) {
            check_fail(__LINE__, "select: %d (%s), values %d / %d", s, weft_strerror(s), v[0], v[1]);
            return 1;
        }
        if (atomic_fetch_add(&r->got[v[s]], 1) != 0) {
            check_fail(__LINE__, "value %d received twice", v[s]);
            return 1;
        }
    }
}

static intptr_t sel_race_main(void *arg)
{
    int per = test_sanitized() ? 2000 : 10000;
    for (size_t cap = 0; cap <= 1; cap++) {
        struct sel_race r = {.per_sender = per};
        r.sent = calloc((size_t)2 * per, 1);
        r.got = calloc((size_t)2 * per, 1);
        for (int k = 0; k < 2; k++)
            r.ch[k] = make_chan(sizeof(int), cap);
        atomic_store(&r.senders_left, 2);
        weft_pid sel = spawn_proc(sel_race_selector, &r);
        struct sel_race_arg a[2] = {{&r, 0}, {&r, 1}};
        weft_pid tx[2];
        for (int i = 0; i < 2; i++)
            tx[i] = spawn_on(sel_race_sender, &a[i], i, 1);
        for (int i = 0; i < 2; i++)
            join_proc(tx[i]);
        CHECK(join_proc(sel) == 0, "selector failed");
        int ok = 0;
        for (int v = 0; v < 2 * per; v++) {
            ok += atomic_load(&r.sent[v]);
            if (atomic_load(&r.sent[v]) != atomic_load(&r.got[v])) {
                check_fail(__LINE__, "cap %zu: value %d: send %s, received %d times", cap, v,
                           atomic_load(&r.sent[v]) ? "succeeded" : "timed out",
                           atomic_load(&r.got[v]));
                break;
            }
        }
        CHECK(ok > 0, "no send succeeded");
        for (int k = 0; k < 2; k++)
            CHECK_RC(weft_chan_release(r.ch[k]), 0);
        free(r.sent);
        free(r.got);
    }
    return 0;
}

Test(select, timeouts_racing_with_senders_deliver_exactly_once, .timeout = 60)
{
    int rounds = test_sanitized() ? 3 : 45;
    for (int i = 0; i < rounds; i++)
        run_1_and_2(sel_race_main, NULL);
}

/* ---- closed and destroyed channels ----------------------------------------------------------- */

/* A receive case on a closed, drained channel fires with result -EPIPE; a
 * send case on a closed channel fires with -EPIPE; buffered values still come
 * first. */
static intptr_t closed_main(void *arg)
{
    weft_chan c = make_chan(sizeof(int), 2), idle = make_chan(sizeof(int), 0);
    int v = 10, in = -1, out = 1;
    CHECK_RC(weft_chan_send(c, &v, sizeof v, 0), 0);
    CHECK_RC(weft_chan_close(c), 0);
    weft_case cases[2] = {WEFT_RECV(idle, &in), WEFT_RECV(c, &in)};
    cases[1].result = 12345;
    CHECK_RC(weft_select(cases, 2, WEFT_SELECT_FAIR, soon()), 1);
    CHECK(cases[1].result == 0 && in == 10, "buffered value after close: result %d, value %d",
          cases[1].result, in);
    for (int i = 0; i < 3; i++) {
        in = -1;
        cases[1].result = 12345;
        CHECK_RC(weft_select(cases, 2, i % 2, i == 2 ? soon() : 0), 1);
        CHECK(cases[1].result == -EPIPE, "receive case on a closed channel: result %d", cases[1].result);
        CHECK(in == -1, "a receive case that failed wrote %d", in);
    }
    weft_case sends[2] = {WEFT_RECV(idle, &in), WEFT_SEND(c, &out)};
    for (int i = 0; i < 3; i++) {
        sends[1].result = 12345;
        CHECK_RC(weft_select(sends, 2, i % 2, i == 2 ? soon() : 0), 1);
        CHECK(sends[1].result == -EPIPE, "send case on a closed channel: result %d", sends[1].result);
    }
    CHECK_RC(weft_chan_len(c), 0);
    CHECK_RC(weft_chan_release(c), 0);
    CHECK_RC(weft_chan_release(idle), 0);
    return 0;
}

Test(select, closed_channel_cases_fire_with_epipe, .timeout = 30)
{
    run_1_and_2(closed_main, NULL);
}

/* Selects blocked on a channel are woken by its close (result -EPIPE) and
 * by the release of its last reference (result -EBADF), for receive and send
 * cases; the other cases stay untouched. */
struct blocked_sel {
    weft_chan target, idle;
    int send; /* the target case sends (the channel must be full) */
    atomic_int entered;
    int index, result, value;
};

static intptr_t blocked_selector(void *arg)
{
    struct blocked_sel *b = arg;
    int in = -1, out = 5, idle_in = -1;
    weft_case cases[2] = {WEFT_RECV(b->idle, &idle_in),
                          b->send ? WEFT_SEND(b->target, &out) : WEFT_RECV(b->target, &in)};
    cases[1].result = 12345;
    atomic_store(&b->entered, 1);
    b->index = weft_select(cases, 2, WEFT_SELECT_FAIR, soon());
    b->result = cases[1].result;
    b->value = in;
    if (idle_in != -1)
        check_fail(__LINE__, "the idle case's buffer was written: %d", idle_in);
    return 0;
}

enum { NSEL = 4 };

static void close_or_release_wakes(int release, size_t cap, int send)
{
    weft_chan target = make_chan(sizeof(int), cap), idle = make_chan(sizeof(int), 0);
    for (size_t i = 0; send && i < cap; i++) {
        int v = 0;
        CHECK_RC(weft_chan_send(target, &v, sizeof v, 0), 0);
    }
    struct blocked_sel b[NSEL];
    weft_pid pids[NSEL];
    for (int i = 0; i < NSEL; i++) {
        b[i] = (struct blocked_sel){.target = target, .idle = idle, .send = send, .index = 12345};
        pids[i] = spawn_proc(blocked_selector, &b[i]);
    }
    for (int i = 0; i < NSEL; i++)
        while (!atomic_load(&b[i].entered))
            weft_yield();
    weft_sleep(test_in_ms(20));
    CHECK_RC(release ? weft_chan_release(target) : weft_chan_close(target), 0);
    int expect = release ? -EBADF : -EPIPE;
    for (int i = 0; i < NSEL; i++) {
        join_proc(pids[i]);
        /* A select that started after a release sees a bad handle: -EBADF
         * from weft_select itself (possible at two workers only). */
        if (release && b[i].index == -EBADF)
            continue;
        CHECK(b[i].index == 1 && b[i].result == expect && b[i].value == -1,
              "%s %s case (cap %zu): select returned %d, result %d (%s), value %d",
              release ? "release" : "close", send ? "send" : "receive", cap, b[i].index, b[i].result,
              weft_strerror(b[i].result), b[i].value);
    }
    if (!release)
        CHECK_RC(weft_chan_release(target), 0);
    CHECK_RC(weft_chan_release(idle), 0);
}

static intptr_t close_release_main(void *arg)
{
    for (int release = 0; release <= 1; release++) {
        close_or_release_wakes(release, 0, 0);
        close_or_release_wakes(release, 0, 1);
        close_or_release_wakes(release, 2, 0);
        close_or_release_wakes(release, 2, 1);
    }
    return 0;
}

Test(select, blocked_select_woken_by_close_and_by_release, .timeout = 30)
{
    run_1_and_2(close_release_main, NULL);
}

/* ---- many cases ----------------------------------------------------------------------------- */

/* 100 channels (more than the 8 cases kept on the stack), one ready: the
 * select fires that one, non-blocking or after waiting. */
enum { MANY = 100 };

struct many {
    weft_chan ch[MANY];
    int k, delay_ms;
};

static intptr_t many_sender(void *arg)
{
    struct many *m = arg;
    weft_sleep(test_in_ms(m->delay_ms));
    int v = 1000 + m->k;
    return weft_chan_send(m->ch[m->k], &v, sizeof v, soon());
}

static intptr_t many_main(void *arg)
{
    struct many m;
    for (int i = 0; i < MANY; i++)
        m.ch[i] = make_chan(sizeof(int), i % 2); /* rendezvous and buffered */
    int vals[MANY];
    weft_case cases[MANY];
    uint64_t seed = 99;
    for (int round = 0; round < 200; round++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        m.k = (int)((seed >> 33) % MANY);
        m.delay_ms = round % 20 == 0 ? 5 : 0;
        for (int i = 0; i < MANY; i++) {
            vals[i] = -1;
            cases[i] = WEFT_RECV(m.ch[i], &vals[i]);
        }
        int policy = round % 2;
        int r;
        if (m.k % 2 && round % 3 == 0) {
            /* Buffered: ready before the select, non-blocking. */
            int v = 1000 + m.k;
            CHECK_RC(weft_chan_send(m.ch[m.k], &v, sizeof v, 0), 0);
            r = weft_select(cases, MANY, policy, 0);
        } else {
            weft_pid pid = spawn_proc(many_sender, &m);
            r = weft_select(cases, MANY, policy, soon());
            CHECK(join_proc(pid) == 0, "sender failed");
        }
        if (r != m.k || vals[m.k] != 1000 + m.k || cases[m.k].result != 0) {
            check_fail(__LINE__, "round %d: ready case %d, select returned %d, value %d", round, m.k, r,
                       r >= 0 && r < MANY ? vals[r] : 0);
            return 1;
        }
        for (int i = 0; i < MANY; i++)
            if (i != m.k && vals[i] != -1) {
                check_fail(__LINE__, "round %d: case %d's buffer written", round, i);
                return 1;
            }
        /* Nothing left queued on the other channels. */
        int v = 1;
        CHECK_RC(weft_chan_send(m.ch[(m.k + 2) % MANY], &v, sizeof v, 0),
                 (m.k + 2) % 2 ? 0 : -ETIMEDOUT);
        if ((m.k + 2) % 2)
            CHECK_RC(weft_chan_recv(m.ch[(m.k + 2) % MANY], &v, sizeof v, 0), 0);
    }
    /* With nothing ready: -ETIMEDOUT at the deadline. */
    int64_t t0 = weft_now();
    CHECK_RC(weft_select(cases, MANY, WEFT_SELECT_FAIR, t0 + 20 * MS), -ETIMEDOUT);
    CHECK(weft_now() - t0 >= 20 * MS, "timed out early");
    for (int i = 0; i < MANY; i++)
        CHECK_RC(weft_chan_release(m.ch[i]), 0);

    /* WEFT_SELECT_MAX cases on one channel are accepted; one more is not. */
    weft_chan one = make_chan(sizeof(int), 1);
    weft_case *big = calloc(WEFT_SELECT_MAX + 1, sizeof *big);
    int in = -1;
    for (int i = 0; i <= WEFT_SELECT_MAX; i++)
        big[i] = WEFT_RECV(one, &in);
    int v = 31;
    CHECK_RC(weft_chan_send(one, &v, sizeof v, 0), 0);
    int r = weft_select(big, WEFT_SELECT_MAX, WEFT_SELECT_FAIR, 0);
    CHECK(r >= 0 && r < WEFT_SELECT_MAX && in == 31, "select over %d cases: %d, value %d",
          WEFT_SELECT_MAX, r, in);
    CHECK_RC(weft_select(big, WEFT_SELECT_MAX, WEFT_SELECT_PRIORITY, 0), -ETIMEDOUT);
    CHECK_RC(weft_chan_send(one, &v, sizeof v, 0), 0);
    CHECK_RC(weft_select(big, WEFT_SELECT_MAX, WEFT_SELECT_PRIORITY, 0), 0);
    CHECK_RC(weft_select(big, WEFT_SELECT_MAX + 1, WEFT_SELECT_FAIR, 0), -EINVAL);
    /* Blocking over the same channel 1024 times (one lock taken once), woken
     * by a later sender: exactly one case fires. */
    for (int policy = 0; policy <= 1; policy++) {
        in = -1;
        struct sender s = {one, 50 + policy, 1, 5};
        weft_pid pid = spawn_proc(send_ints, &s);
        r = weft_select(big, WEFT_SELECT_MAX, policy, soon());
        CHECK(r >= 0 && r < WEFT_SELECT_MAX && in == 50 + policy,
              "blocking select over %d cases of one channel: %d, value %d", WEFT_SELECT_MAX, r, in);
        CHECK(join_proc(pid) == 0, "sender failed");
        CHECK_RC(weft_chan_len(one), 0);
    }
    free(big);
    CHECK_RC(weft_chan_release(one), 0);
    return 0;
}

Test(select, more_than_eight_cases_one_ready, .timeout = 30)
{
    run_1_and_2(many_main, NULL);
}

/* ---- outside threads -------------------------------------------------------------------------- */

struct thread_sel {
    pthread_t thread;
    weft_chan ch[2], back;
    int n;
    int bad, first_rc, count[2];
    int64_t timeout_elapsed;
    int timeout_rc;
};

/* Receives n values from two channels through selects, answering each on
 * back through a select with a send case, blocking the thread. */
static void *thread_selector(void *arg)
{
    struct thread_sel *t = arg;
    int next[2] = {0, 0};
    for (int i = 0; i < t->n; i++) {
        int v[2] = {-1, -1};
        weft_case cases[2] = {WEFT_RECV(t->ch[0], &v[0]), WEFT_RECV(t->ch[1], &v[1])};
        int r = weft_select(cases, 2, WEFT_SELECT_FAIR, soon());
        if ((r != 0 && r != 1) || v[r] != next[r] || v[1 - r] != -1) {
            t->bad++;
            t->first_rc = r;
            return NULL;
        }
        next[r]++;
        t->count[r]++;
        weft_case ans[1] = {WEFT_SEND(t->back, &v[r])};
        if ((r = weft_select(ans, 1, WEFT_SELECT_PRIORITY, soon())) != 0) {
            t->bad++;
            t->first_rc = r;
            return NULL;
        }
    }
    /* Nothing is sent any more: a deadline expires. */
    int v[2];
    weft_case cases[2] = {WEFT_RECV(t->ch[0], &v[0]), WEFT_RECV(t->ch[1], &v[1])};
    int64_t t0 = weft_now();
    t->timeout_rc = weft_select(cases, 2, WEFT_SELECT_FAIR, t0 + 20 * MS);
    t->timeout_elapsed = weft_now() - t0;
    return NULL;
}

static intptr_t drain_back(void *arg)
{
    struct thread_sel *t = arg;
    long long sum = 0;
    for (int i = 0; i < t->n; i++) {
        int v;
        int rc = weft_chan_recv(t->back, &v, sizeof v, soon());
        if (rc)
            return -1;
        sum += v;
    }
    return (intptr_t)sum;
}

Test(select, select_from_outside_thread, .timeout = 30)
{
    int n = test_sanitized() ? 1000 : 10000;
    for (unsigned workers = 1; workers <= 2; workers++) {
        start_workers(workers);
        struct thread_sel t = {.n = 2 * n};
        ASSERT_OK(weft_chan_make(&t.ch[0], sizeof(int), 0));
        ASSERT_OK(weft_chan_make(&t.ch[1], sizeof(int), 2));
        ASSERT_OK(weft_chan_make(&t.back, sizeof(int), workers == 1 ? 0 : 1));
        struct sender s[2] = {{t.ch[0], 0, n, 0}, {t.ch[1], 0, n, 0}};
        weft_pid pids[3];
        for (int k = 0; k < 2; k++)
            ASSERT_OK(weft_spawn(&pids[k], send_ints, &s[k], NULL));
        ASSERT_OK(weft_spawn(&pids[2], drain_back, &t, NULL));
        cr_assert_eq(pthread_create(&t.thread, NULL, thread_selector, &t), 0);
        pthread_join(t.thread, NULL);
        cr_assert_eq(t.bad, 0, "%u workers: the thread's select returned %d (%s)", workers, t.first_rc,
                     weft_strerror(t.first_rc));
        cr_assert(t.count[0] == n && t.count[1] == n, "counts %d and %d, expected %d", t.count[0],
                  t.count[1], n);
        ASSERT_RC(t.timeout_rc, -ETIMEDOUT);
        cr_assert(t.timeout_elapsed >= 20 * MS && t.timeout_elapsed < 2020 * MS,
                  "a 20 ms deadline took %lld ns", (long long)t.timeout_elapsed);
        intptr_t r = -1;
        for (int k = 0; k < 2; k++) {
            ASSERT_OK(weft_join(pids[k], &r, WEFT_FOREVER));
            cr_assert_eq(r, 0);
        }
        ASSERT_OK(weft_join(pids[2], &r, WEFT_FOREVER));
        cr_assert_eq(r, (intptr_t)n * (n - 1), "the answers summed to %ld", (long)r);
        ASSERT_OK(weft_chan_release(t.ch[0]));
        ASSERT_OK(weft_chan_release(t.ch[1]));
        ASSERT_OK(weft_chan_release(t.back));
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        ASSERT_CHECKS();
    }
}

struct stuck_sel {
    pthread_t thread;
    weft_chan ch;
    atomic_int entering;
    int rc;
};

static void *stuck_selector(void *arg)
{
    struct stuck_sel *t = arg;
    int v = -1, w = 1;
    weft_case cases[2] = {WEFT_RECV(t->ch, &v), WEFT_SEND(t->ch, &w)};
    atomic_store(&t->entering, 1);
    t->rc = weft_select(cases, 2, WEFT_SELECT_FAIR, WEFT_FOREVER);
    return NULL;
}

/* A thread blocked in weft_select is released by weft_stop with -ECANCELED
 * (-ESHUTDOWN if it only got there after the stop; most must be canceled). */
Test(select, thread_blocked_in_select_canceled_by_stop, .timeout = 30)
{
    int canceled = 0, total = 0;
    for (int round = 0; round < 10; round++) {
        start_workers(1 + round % 2);
        struct stuck_sel t[2];
        for (int i = 0; i < 2; i++) {
            t[i].rc = 12345;
            atomic_store(&t[i].entering, 0);
            ASSERT_OK(weft_chan_make(&t[i].ch, sizeof(int), 0));
            cr_assert_eq(pthread_create(&t[i].thread, NULL, stuck_selector, &t[i]), 0);
        }
        for (int i = 0; i < 2; i++)
            while (!atomic_load(&t[i].entering))
                sched_yield();
        weft_sleep(test_in_ms(20));
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        for (int i = 0; i < 2; i++) {
            pthread_join(t[i].thread, NULL);
            cr_assert(t[i].rc == -ECANCELED || t[i].rc == -ESHUTDOWN, "round %d: select returned %d (%s)",
                      round, t[i].rc, weft_strerror(t[i].rc));
            canceled += t[i].rc == -ECANCELED;
            total++;
        }
    }
    cr_assert_gt(canceled, total / 2, "only %d of %d blocked selects canceled", canceled, total);
}

/* ---- the runtime's shutdown ---------------------------------------------------------------- */

static atomic_int sel_canceled, sel_other, sel_entered;

static intptr_t select_forever(void *arg)
{
    weft_chan ch = (weft_chan)(uintptr_t)arg;
    int v = -1;
    weft_case cases[1] = {WEFT_RECV(ch, &v)};
    atomic_fetch_add(&sel_entered, 1);
    int rc = weft_select(cases, 1, WEFT_SELECT_FAIR, WEFT_FOREVER);
    atomic_fetch_add(rc == -ECANCELED ? &sel_canceled : &sel_other, 1);
    return 0;
}

static intptr_t select_shutdown_main(void *arg)
{
    weft_chan ch = make_chan(sizeof(int), 0);
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = 1;
    for (int i = 0; i < 4; i++)
        CHECK_RC(weft_spawn(NULL, select_forever, (void *)(uintptr_t)ch, &opts), 0);
    while (atomic_load(&sel_entered) < 4)
        weft_yield();
    weft_sleep(test_in_ms(20));
    return 0;
}

Test(select, shutdown_cancels_blocked_selects, .timeout = 30)
{
    for (unsigned workers = 1; workers <= 2; workers++) {
        atomic_store(&sel_canceled, 0);
        atomic_store(&sel_other, 0);
        atomic_store(&sel_entered, 0);
        run_at_workers(workers, select_shutdown_main, NULL);
        cr_assert_eq(atomic_load(&sel_canceled), 4, "%d of 4 canceled, %d other", atomic_load(&sel_canceled),
                     atomic_load(&sel_other));
    }
}

/* ---- bad input ---------------------------------------------------------------------------------- */

static void check_select_args(void)
{
    weft_chan ch = 0, stale = 0;
    CHECK_RC(weft_chan_make(&ch, sizeof(int), 1), 0);
    CHECK_RC(weft_chan_make(&stale, sizeof(int), 1), 0);
    CHECK_RC(weft_chan_release(stale), 0);
    int v = 0;
    weft_case ok[1] = {WEFT_RECV(ch, &v)};
    CHECK_RC(weft_select(NULL, 1, WEFT_SELECT_FAIR, 0), -EINVAL);
    CHECK_RC(weft_select(NULL, 0, WEFT_SELECT_FAIR, 0), -EINVAL);
    CHECK_RC(weft_select(ok, 0, WEFT_SELECT_FAIR, 0), -EINVAL);
    CHECK_RC(weft_select(ok, 0, WEFT_SELECT_FAIR, WEFT_FOREVER), -EINVAL);
    CHECK_RC(weft_select(ok, WEFT_SELECT_MAX + 1, WEFT_SELECT_FAIR, 0), -EINVAL);
    CHECK_RC(weft_select(ok, SIZE_MAX, WEFT_SELECT_FAIR, 0), -EINVAL);
    CHECK_RC(weft_select(ok, 1, 2, 0), -EINVAL);
    CHECK_RC(weft_select(ok, 1, -1, 0), -EINVAL);
    int kinds[] = {0, WEFT_CASE_FD + 1, -1, 1000};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        weft_case c[2] = {WEFT_RECV(ch, &v), WEFT_RECV(ch, &v)};
        c[1].kind = kinds[i];
        CHECK_RC(weft_select(c, 2, WEFT_SELECT_FAIR, 0), -EINVAL);
        CHECK_RC(weft_select(c, 2, WEFT_SELECT_PRIORITY, WEFT_FOREVER), -EINVAL);
    }
    weft_case nullbuf[1] = {{.kind = WEFT_CASE_RECV, .handle = ch, .buf = NULL, .size = 4}};
    CHECK_RC(weft_select(nullbuf, 1, WEFT_SELECT_FAIR, 0), -EINVAL);
    nullbuf[0].kind = WEFT_CASE_SEND;
    CHECK_RC(weft_select(nullbuf, 1, WEFT_SELECT_FAIR, WEFT_FOREVER), -EINVAL);

    /* A stale or forged channel in an enabled case, with nothing ready. */
    weft_chan bad[] = {stale, 0, 12345, weft_self() ? weft_self() : 0x100000001ull};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        weft_case c[2] = {WEFT_RECV(ch, &v), WEFT_SEND(bad[i], &v)};
        CHECK_RC(weft_select(c, 2, WEFT_SELECT_FAIR, 0), -EBADF);
        CHECK_RC(weft_select(c, 2, WEFT_SELECT_PRIORITY, WEFT_FOREVER), -EBADF);
        c[1].kind = WEFT_CASE_RECV;
        CHECK_RC(weft_select(c, 2, WEFT_SELECT_FAIR, test_in_ms(5)), -EBADF);
        /* Disabled, it is fine. */
        c[1].disabled = 1;
        CHECK_RC(weft_select(c, 2, WEFT_SELECT_FAIR, 0), -ETIMEDOUT);
    }
    /* A wrong size, with nothing ready. */
    long long big = 0;
    char small = 0;
    weft_case w1[2] = {WEFT_RECV(ch, &v), WEFT_RECV(ch, &big)};
    CHECK_RC(weft_select(w1, 2, WEFT_SELECT_FAIR, 0), -EMSGSIZE);
    CHECK_RC(weft_select(w1, 2, WEFT_SELECT_PRIORITY, WEFT_FOREVER), -EMSGSIZE);
    weft_case w2[1] = {WEFT_SEND(ch, &small)};
    CHECK_RC(weft_select(w2, 1, WEFT_SELECT_FAIR, WEFT_FOREVER), -EMSGSIZE);
    w1[1].disabled = 1;
    CHECK_RC(weft_select(w1, 2, WEFT_SELECT_FAIR, 0), -ETIMEDOUT);
    /* None of the refused selects changed the channel. */
    CHECK_RC(weft_chan_len(ch), 0);
    CHECK_RC(weft_chan_release(ch), 0);
}

static intptr_t select_args_main(void *arg)
{
    check_select_args();
    return 0;
}

Test(select, bad_arguments_from_process_and_thread, .timeout = 30)
{
    run_1_and_2(select_args_main, NULL);
    start_workers(2);
    check_select_args();
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    ASSERT_CHECKS();
}

/* A bad case is reported whatever the other cases are doing: a select with
 * a stale channel, or a wrong size, in an enabled case fails with -EBADF or
 * -EMSGSIZE even when another case is ready, and completes nothing. (With
 * FAIR the cases are tried in random order, so anything else would make the
 * same select sometimes fail and sometimes succeed.) */
static intptr_t bad_case_beside_ready_main(void *arg)
{
    weft_chan ch = make_chan(sizeof(int), 1), stale = make_chan(sizeof(int), 1);
    CHECK_RC(weft_chan_release(stale), 0);
    int v = 4;
    CHECK_RC(weft_chan_send(ch, &v, sizeof v, 0), 0);
    int ebadf = 0, emsgsize = 0, fired = 0;
    for (int i = 0; i < 100; i++) {
        int in = -1;
        long long big = 0;
        weft_case c1[2] = {WEFT_RECV(ch, &in), WEFT_RECV(stale, &in)};
        int r = weft_select(c1, 2, i % 2 ? WEFT_SELECT_FAIR : WEFT_SELECT_PRIORITY, 0);
        if (r == -EBADF)
            ebadf++;
        weft_case c2[2] = {WEFT_RECV(ch, &in), WEFT_RECV(ch, &big)};
        int r2 = weft_select(c2, 2, i % 2 ? WEFT_SELECT_FAIR : WEFT_SELECT_PRIORITY, 0);
        if (r2 == -EMSGSIZE)
            emsgsize++;
        if (r >= 0 || r2 >= 0) {
            fired++;
            CHECK_RC(weft_chan_send(ch, &v, sizeof v, 0), 0); /* refill */
        }
    }
    CHECK(ebadf == 100 && emsgsize == 100 && fired == 0,
          "of 100 selects each with a ready case: %d gave -EBADF for a stale case, %d gave "
          "-EMSGSIZE for a wrong size, %d completed a case instead",
          ebadf, emsgsize, fired);
    CHECK_RC(weft_chan_release(ch), 0);
    return 0;
}

Test(select, bad_case_reported_even_when_another_case_is_ready, .timeout = 30)
{
    run_at_workers(1, bad_case_beside_ready_main, NULL);
}

Test(select, select_without_runtime_is_eshutdown, .timeout = 30)
{
    int v = 0;
    weft_case c[1] = {WEFT_RECV(0x100000001ull, &v)};
    ASSERT_RC(weft_select(c, 1, WEFT_SELECT_FAIR, 0), -ESHUTDOWN);
    ASSERT_RC(weft_select(c, 1, WEFT_SELECT_FAIR, WEFT_FOREVER), -ESHUTDOWN);
    c[0].disabled = 1;
    ASSERT_RC(weft_select(c, 1, WEFT_SELECT_FAIR, test_in_ms(5)), -ESHUTDOWN);
    start_workers(1);
    weft_chan ch;
    ASSERT_OK(weft_chan_make(&ch, sizeof v, 1));
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    weft_case d[1] = {WEFT_RECV(ch, &v)};
    ASSERT_RC(weft_select(d, 1, WEFT_SELECT_PRIORITY, WEFT_FOREVER), -ESHUTDOWN);
}

/* ---- allocation failure ------------------------------------------------------------------------ */

static atomic_int refuse;
static atomic_long live_blocks;

static void *refusing_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    if (new_size == 0) {
        if (ptr)
            atomic_fetch_sub(&live_blocks, 1);
        free(ptr);
        return NULL;
    }
    if (ptr)
        return realloc(ptr, new_size);
    if (atomic_load(&refuse))
        return NULL;
    void *p = malloc(new_size);
    if (p)
        atomic_fetch_add(&live_blocks, 1);
    return p;
}

/* A select of more than 8 cases needs memory: without it, -ENOMEM and no
 * case completed; small selects need none. */
static intptr_t select_enomem_main(void *arg)
{
    weft_chan ch = make_chan(sizeof(int), 1);
    int v = 3, in[9];
    CHECK_RC(weft_chan_send(ch, &v, sizeof v, 0), 0);
    weft_case cases[9];
    for (int i = 0; i < 9; i++) {
        in[i] = -1;
        cases[i] = WEFT_RECV(ch, &in[i]);
    }
    atomic_store(&refuse, 1);
    int big = weft_select(cases, 9, WEFT_SELECT_FAIR, 0);
    int small = weft_select(cases, 8, WEFT_SELECT_FAIR, 0);
    atomic_store(&refuse, 0);
    CHECK_RC(big, -ENOMEM);
    CHECK(small >= 0 && small < 8 && in[small] == 3, "an 8-case select without memory: %d", small);
    CHECK_RC(weft_chan_send(ch, &v, sizeof v, 0), 0);
    int r = weft_select(cases, 9, WEFT_SELECT_FAIR, 0);
    CHECK(r >= 0 && r < 9, "a 9-case select once memory is back: %d", r);
    CHECK_RC(weft_chan_release(ch), 0);
    return 0;
}

Test(select, many_cases_without_memory_is_enomem, .timeout = 30)
{
    ASSERT_OK(weft_set_allocator(refusing_alloc, NULL));
    run_1_and_2(select_enomem_main, NULL);
    cr_assert_eq(atomic_load(&live_blocks), 0, "%ld blocks still held", atomic_load(&live_blocks));
    ASSERT_OK(weft_set_allocator(NULL, NULL));
}
