/* bench_chan.c: the channel benchmarks: pingpong, ring, skynet, fanin. Each
 * does the work of its Go peer in peers/go/ (see ../shared/BENCH.md). */
#include <stdio.h>

#include "bench.h"

#define SEND(ch, v) weft_chan_send((ch), &(v), sizeof(v), WEFT_FOREVER)
#define RECV(ch, v) weft_chan_recv((ch), &(v), sizeof(v), WEFT_FOREVER)

/* ---- pingpong: a counter passed back and forth over one unbuffered channel -------- */

struct pingpong_state {
    long n;
    weft_chan ch;
    int64_t final;
    double seconds;
};

static intptr_t pong(void *arg)
{
    struct pingpong_state *s = arg;
    for (long i = 0; i < s->n; i++) {
        int64_t v;
        if (RECV(s->ch, v) != 0)
            return -1;
        v++;
        if (SEND(s->ch, v) != 0)
            return -1;
    }
    return 0;
}

static intptr_t pingpong_main(void *arg)
{
    struct pingpong_state *s = arg;
    if (weft_chan_make(&s->ch, sizeof(int64_t), 0) != 0)
        return -1;
    weft_pid p;
    if (weft_spawn(&p, pong, s, NULL) != 0)
        return -1;
    int64_t t0 = weft_now(), v = 0;
    for (long i = 0; i < s->n; i++) {
        v++;
        if (SEND(s->ch, v) != 0 || RECV(s->ch, v) != 0)
            return -1;
    }
    intptr_t r = -1;
    weft_join(p, &r, WEFT_FOREVER);
    s->seconds = (weft_now() - t0) / 1e9;
    s->final = v;
    weft_chan_release(s->ch);
    return r;
}

static int run_pingpong(const struct bench_args *args, struct bench_result *out)
{
    struct pingpong_state s = {.n = args->n};
    if (bench_run(args, pingpong_main, &s) != 0 || s.final != 2 * s.n) {
        fprintf(stderr, "pingpong: final message %lld, want %ld\n", (long long)s.final, 2 * s.n);
        return 1;
    }
    out->seconds = s.seconds;
    out->value = s.seconds * 1e9 / (double)s.n;
    return 0;
}

const struct bench bench_pingpong = {"pingpong", 5000000, "ns per round trip", run_pingpong};

/* ---- ring: 503 processes pass a decrementing token around ------------------------ */

enum { RING_SIZE = 503 };

struct ring_state {
    weft_chan chans[RING_SIZE];
    weft_chan winner;
    int64_t id;
    double seconds;
};

struct ring_member {
    struct ring_state *s;
    int64_t id;
};

static intptr_t ring_member(void *arg)
{
    struct ring_member *m = arg;
    weft_chan in = m->s->chans[m->id - 1], out = m->s->chans[m->id % RING_SIZE];
    int64_t t;
    while (RECV(in, t) == 0) { /* ends when the channel is closed at shutdown */
        if (t == 0)
            return SEND(m->s->winner, m->id);
        t--;
        if (SEND(out, t) != 0)
            return -1;
    }
    return 0;
}

static intptr_t ring_main(void *arg)
{
    struct ring_state *s = arg;
    static struct ring_member members[RING_SIZE];
    weft_pid pids[RING_SIZE];
    if (weft_chan_make(&s->winner, sizeof(int64_t), 1) != 0)
        return -1;
    for (int i = 0; i < RING_SIZE; i++)
        if (weft_chan_make(&s->chans[i], sizeof(int64_t), 0) != 0)
            return -1;
    for (int i = 0; i < RING_SIZE; i++) {
        members[i] = (struct ring_member){s, i + 1};
        if (weft_spawn(&pids[i], ring_member, &members[i], NULL) != 0)
            return -1;
    }
    int64_t n = s->id, t0 = weft_now();
    if (SEND(s->chans[0], n) != 0 || RECV(s->winner, s->id) != 0)
        return -1;
    s->seconds = (weft_now() - t0) / 1e9;
    intptr_t bad = 0;
    for (int i = 0; i < RING_SIZE; i++)
        weft_chan_close(s->chans[i]);
    for (int i = 0; i < RING_SIZE; i++) {
        intptr_t r = -1;
        weft_join(pids[i], &r, WEFT_FOREVER);
        bad |= r;
        weft_chan_release(s->chans[i]);
    }
    weft_chan_release(s->winner);
    return bad;
}

static int run_ring(const struct bench_args *args, struct bench_result *out)
{
    static struct ring_state s;
    s.id = args->n; /* the token in, the winner's id out */
    int64_t want = args->n % RING_SIZE + 1;
    if (bench_run(args, ring_main, &s) != 0 || s.id != want) {
        fprintf(stderr, "ring: the token reached 0 at id %lld, want %lld\n", (long long)s.id,
                (long long)want);
        return 1;
    }
    out->seconds = s.seconds;
    out->value = s.seconds * 1e9 / (double)args->n;
    return 0;
}

const struct bench bench_ring = {"ring", 10000000, "ns per hop", run_ring};

/* ---- skynet: a 10-ary tree of processes sums the numbers of its leaves ------------- */

struct skynet_node {
    weft_chan out;
    int64_t num, size;
};

static intptr_t skynet(void *arg)
{
    struct skynet_node *node = arg;
    if (node->size == 1)
        return SEND(node->out, node->num);
    weft_chan rc;
    if (weft_chan_make(&rc, sizeof(int64_t), 0) != 0)
        return -1;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = 1;
    struct skynet_node children[10];
    int64_t part = node->size / 10, extra = node->size % 10, sub = node->num;
    int nchildren = 0;
    for (int i = 0; i < 10; i++) {
        int64_t sz = part + (i < extra);
        if (sz == 0)
            continue;
        children[nchildren] = (struct skynet_node){rc, sub, sz};
        if (weft_spawn(NULL, skynet, &children[nchildren], &opts) != 0)
            return -1;
        sub += sz;
        nchildren++;
    }
    int64_t sum = 0;
    for (int i = 0; i < nchildren; i++) {
        int64_t v;
        if (RECV(rc, v) != 0)
            return -1;
        sum += v;
    }
    weft_chan_release(rc);
    return SEND(node->out, sum);
}

struct skynet_state {
    int64_t n, sum;
    double seconds;
};

static intptr_t skynet_main(void *arg)
{
    struct skynet_state *s = arg;
    struct skynet_node root;
    if (weft_chan_make(&root.out, sizeof(int64_t), 0) != 0)
        return -1;
    root.num = 0;
    root.size = s->n;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = 1;
    int64_t t0 = weft_now();
    if (weft_spawn(NULL, skynet, &root, &opts) != 0 || RECV(root.out, s->sum) != 0)
        return -1;
    s->seconds = (weft_now() - t0) / 1e9;
    weft_chan_release(root.out);
    return 0;
}

static int run_skynet(const struct bench_args *args, struct bench_result *out)
{
    struct skynet_state s = {.n = args->n};
    int64_t want = s.n * (s.n - 1) / 2;
    if (bench_run(args, skynet_main, &s) != 0 || s.sum != want) {
        fprintf(stderr, "skynet: sum %lld, want %lld\n", (long long)s.sum, (long long)want);
        return 1;
    }
    out->seconds = s.seconds;
    out->value = s.seconds * 1e9 / (double)s.n;
    return 0;
}

const struct bench bench_skynet = {"skynet", 1000000, "ns per leaf (total ms = seconds*1000)",
                                   run_skynet};

/* ---- fanin: 1000 producers into one channel of capacity 1024, one consumer ---------- */

enum { FANIN_PRODUCERS = 1000, FANIN_CAPACITY = 1024 };

struct fanin_state {
    int64_t n, sum;
    weft_chan ch;
    double seconds;
};

struct fanin_producer {
    struct fanin_state *s;
    int64_t first;
};

static intptr_t producer(void *arg)
{
    struct fanin_producer *p = arg;
    for (int64_t v = p->first; v < p->s->n; v += FANIN_PRODUCERS)
        if (SEND(p->s->ch, v) != 0)
            return -1;
    return 0;
}

static intptr_t fanin_main(void *arg)
{
    struct fanin_state *s = arg;
    static struct fanin_producer producers[FANIN_PRODUCERS];
    weft_pid pids[FANIN_PRODUCERS];
    if (weft_chan_make(&s->ch, sizeof(int64_t), FANIN_CAPACITY) != 0)
        return -1;
    int64_t t0 = weft_now();
    for (int i = 0; i < FANIN_PRODUCERS; i++) {
        producers[i] = (struct fanin_producer){s, i};
        if (weft_spawn(&pids[i], producer, &producers[i], NULL) != 0)
            return -1;
    }
    for (int64_t i = 0; i < s->n; i++) {
        int64_t v;
        if (RECV(s->ch, v) != 0)
            return -1;
        s->sum += v;
    }
    s->seconds = (weft_now() - t0) / 1e9;
    intptr_t bad = 0;
    for (int i = 0; i < FANIN_PRODUCERS; i++) {
        intptr_t r = -1;
        weft_join(pids[i], &r, WEFT_FOREVER);
        bad |= r;
    }
    weft_chan_release(s->ch);
    return bad;
}

static int run_fanin(const struct bench_args *args, struct bench_result *out)
{
    struct fanin_state s = {.n = args->n};
    int64_t want = s.n * (s.n - 1) / 2;
    if (bench_run(args, fanin_main, &s) != 0 || s.sum != want) {
        fprintf(stderr, "fanin: sum %lld, want %lld\n", (long long)s.sum, (long long)want);
        return 1;
    }
    out->seconds = s.seconds;
    out->value = s.seconds * 1e9 / (double)s.n;
    return 0;
}

const struct bench bench_fanin = {"fanin", 10000000, "ns per message", run_fanin};

/* ---- poll: non-blocking receives on an empty channel (not in BENCH.md) --------------
 * The floor for the lock-free empty check: a few ns, no lock, no
 * system call. */

struct poll_state {
    long n;
    double seconds;
    long timeouts;
};

static intptr_t poll_main(void *arg)
{
    struct poll_state *s = arg;
    weft_chan ch;
    if (weft_chan_make(&ch, sizeof(int64_t), 0) != 0)
        return -1;
    int64_t v, t0 = weft_now();
    for (long i = 0; i < s->n; i++)
        s->timeouts += weft_chan_recv(ch, &v, sizeof v, 0) == -ETIMEDOUT;
    s->seconds = (weft_now() - t0) / 1e9;
    weft_chan_release(ch);
    return 0;
}

static int run_poll(const struct bench_args *args, struct bench_result *out)
{
    struct poll_state s = {.n = args->n};
    if (bench_run(args, poll_main, &s) != 0 || s.timeouts != s.n) {
        fprintf(stderr, "poll: %ld of %ld receives timed out\n", s.timeouts, s.n);
        return 1;
    }
    out->seconds = s.seconds;
    out->value = s.seconds * 1e9 / (double)s.n;
    return 0;
}

const struct bench bench_poll = {"poll", 10000000, "ns per non-blocking receive on an empty channel",
                                 run_poll};
