/* bench_actor.c: the actor benchmarks: mailbox, actor-pingpong, actor-spawn,
 * actor-memory. Each does the work of its Erlang and CAF peers in
 * peers/erlang/ and peers/caf/ (see ../shared/BENCH.md); the timed span is
 * the same as theirs (noted at each benchmark).
 *
 * Every message here carries an int64_t payload (or none). A handler that
 * finds something wrong records why (the first report wins) and sends the
 * main process a FAIL message, so that main never waits for a result that
 * will not come. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

enum {
    TAG_DATA = 1,    /* mailbox: a sender's value (tag 1, as BENCH's brief says) */
    TAG_READY,       /* to main: a process is up and waiting */
    TAG_DONE,        /* to main: the measured work is over */
    TAG_FAIL,        /* to main: a check failed, see fail_why */
    TAG_GO,          /* actor-pingpong: main starts A */
    TAG_PING,
    TAG_PONG,
    TAG_STOP,        /* ends an actor */
    TAG_START,       /* actor-spawn: a parent starts its child */
    TAG_SUBTREE,     /* actor-spawn: a child's subtree size, to its parent */
    TAG_STOPPED      /* actor-memory: an idle actor was stopped, to main */
};

/* ---- shared helpers ------------------------------------------------------------------- */

static weft_pid main_pid;          /* the benchmark's main process */
static atomic_flag failed = ATOMIC_FLAG_INIT;
static char fail_why[256];

/* Records the first failure and wakes main. Callable from handlers and processes. */
static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failf(const char *fmt, ...)
{
    if (!atomic_flag_test_and_set(&failed)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(fail_why, sizeof fail_why, fmt, ap);
        va_end(ap);
    }
    weft_send(main_pid, TAG_FAIL, NULL, 0, 0);
}

static int send_i64(weft_pid to, int tag, int64_t v)
{
    return weft_send(to, tag, &v, sizeof v, 0);
}

/* The payload of a message sent with send_i64; -1 after a failf if it has none. */
static int64_t msg_i64(const weft_msg *m)
{
    int64_t v;
    if (m->size != sizeof v) {
        failf("message of tag %d has %zu bytes, want %zu", m->tag, m->size, sizeof v);
        return -1;
    }
    memcpy(&v, m->data, sizeof v);
    return v;
}

/* Main's receive of the next message of tag (or a FAIL). Returns the payload
 * (0 when it has none), or -1 after a failure (reported on stderr by the caller). */
static int64_t main_wait(int tag)
{
    for (;;) {
        weft_msg m;
        int err = weft_recv(&m, NULL, WEFT_FOREVER);
        if (err != 0) {
            failf("main: weft_recv: %s", weft_strerror(err));
            return -1;
        }
        if (m.tag == TAG_FAIL) {
            weft_msg_free(&m);
            return -1;
        }
        if (m.tag != tag) {
            failf("main: received tag %d, want %d", m.tag, tag);
            weft_msg_free(&m);
            return -1;
        }
        int64_t v = m.size ? msg_i64(&m) : 0;
        weft_msg_free(&m);
        return v;
    }
}

/* Reports on stderr why a benchmark failed: its own check, or a recorded failure. */
static int report(const char *bench, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int report(const char *bench, const char *fmt, ...)
{
    fprintf(stderr, "%s: ", bench);
    if (atomic_flag_test_and_set(&failed)) {
        fprintf(stderr, "%s\n", fail_why);
    } else {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    return 1;
}

static int recorded_failure(void)
{
    if (atomic_flag_test_and_set(&failed))
        return 1;
    atomic_flag_clear(&failed);
    return 0;
}

/* A field of /proc/self/status given in kB (VmRSS, VmHWM), in bytes; -1 if absent. */
static long status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t len = strlen(key);
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, len) == 0 && line[len] == ':' &&
            sscanf(line + len + 1, " %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

#define SENDERS 20

/* ---- mailbox: 20 senders, one receiver's mailbox -------------------------------------
 * Sender s sends s*per+j, j = 0..per-1, in order (tag 1, int64 payload). The
 * receiver checks that each sender's values increase, each sender's last value
 * and the sum N(N-1)/2. Timed, as the peers: from just before spawning the
 * senders (the receiver already waits in weft_recv) until the receiver has
 * taken the N-th message (it reads the clock). */

struct mailbox_state {
    long n, per;
    weft_pid receiver;
    int64_t t1;
};

struct sender_arg {
    struct mailbox_state *s;
    int64_t first;
};

static intptr_t sender(void *arg)
{
    struct sender_arg *a = arg;
    weft_pid to = a->s->receiver;
    int64_t end = a->first + a->s->per;
    for (int64_t v = a->first; v < end; v++) {
        int err = weft_send(to, TAG_DATA, &v, sizeof v, WEFT_FOREVER);
        if (err != 0) {
            failf("sender: weft_send: %s", weft_strerror(err));
            return -1;
        }
    }
    return 0;
}

static intptr_t mailbox_receiver(void *arg)
{
    struct mailbox_state *s = arg;
    int64_t last[SENDERS], sum = 0;
    for (int i = 0; i < SENDERS; i++)
        last[i] = -1;
    if (weft_send(main_pid, TAG_READY, NULL, 0, 0) != 0)
        return -1;
    for (long i = 0; i < s->n; i++) {
        weft_msg m;
        int err = weft_recv(&m, NULL, WEFT_FOREVER);
        if (err != 0) {
            failf("receiver: weft_recv: %s", weft_strerror(err));
            return -1;
        }
        int64_t v;
        if (m.tag != TAG_DATA || m.size != sizeof v) {
            failf("receiver: message of tag %d and %zu bytes", m.tag, m.size);
            weft_msg_free(&m);
            return -1;
        }
        memcpy(&v, m.data, sizeof v);
        weft_msg_free(&m);
        int64_t sn = v / s->per;
        if (v < 0 || sn >= SENDERS) {
            failf("receiver: value %" PRId64 " out of range", v);
            return -1;
        }
        if (v <= last[sn]) {
            failf("receiver: sender %" PRId64 " sent %" PRId64 " after %" PRId64, sn, v, last[sn]);
            return -1;
        }
        last[sn] = v;
        sum += v;
    }
    s->t1 = weft_now();
    for (int i = 0; i < SENDERS; i++)
        if (last[i] != (int64_t)(i + 1) * s->per - 1) {
            failf("receiver: last value of sender %d is %" PRId64 ", want %" PRId64, i, last[i],
                  (int64_t)(i + 1) * s->per - 1);
            return -1;
        }
    int64_t want = (int64_t)s->n * (s->n - 1) / 2;
    if (sum != want) {
        failf("receiver: sum %" PRId64 ", want %" PRId64, sum, want);
        return -1;
    }
    return weft_send(main_pid, TAG_DONE, NULL, 0, 0) == 0 ? 0 : -1;
}

static intptr_t mailbox_main(void *arg)
{
    struct mailbox_state *s = arg;
    main_pid = weft_self();
    int err = weft_spawn(&s->receiver, mailbox_receiver, s, NULL);
    if (err != 0) {
        failf("weft_spawn: %s", weft_strerror(err));
        return -1;
    }
    if (main_wait(TAG_READY) < 0)
        return -1;
    struct sender_arg args[SENDERS];
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = 1;
    int64_t t0 = weft_now();
    for (int i = 0; i < SENDERS; i++) {
        args[i] = (struct sender_arg){s, (int64_t)i * s->per};
        if ((err = weft_spawn(NULL, sender, &args[i], &opts)) != 0) {
            failf("weft_spawn: %s", weft_strerror(err));
            return -1;
        }
    }
    /* The receiver's DONE, or a FAIL from the receiver or a sender. */
    if (main_wait(TAG_DONE) < 0)
        return -1;
    intptr_t r = -1;
    if ((err = weft_join(s->receiver, &r, WEFT_FOREVER)) != 0) {
        failf("weft_join: %s", weft_strerror(err));
        return -1;
    }
    if (r != 0)
        return -1;
    s->t1 -= t0;
    return 0;
}

static int run_mailbox(const struct bench_args *args, struct bench_result *out)
{
    if (args->n % SENDERS != 0) {
        fprintf(stderr, "mailbox: N must be a multiple of %d, got %ld\n", SENDERS, args->n);
        return 1;
    }
    struct mailbox_state s = {.n = args->n, .per = args->n / SENDERS};
    if (bench_run(args, mailbox_main, &s) != 0 || recorded_failure())
        return report("mailbox", "failed");
    out->seconds = s.t1 / 1e9;
    out->value = (double)s.t1 / (double)s.n;
    return 0;
}

const struct bench bench_mailbox = {"mailbox", 2000000, "ns per message", run_mailbox};

/* ---- actor-pingpong: two actors, N round trips through their mailboxes ----------------
 * A sends (ping, K) to B, B answers (pong, K), K = 1..N, each side checks K.
 * After the N-th pong A tells B to stop, tells main and ends. Timed, as the
 * Erlang peer: from main's GO to A (both actors exist) until main has A's DONE.
 * Then main monitors both and waits for their DOWN messages, so that neither
 * outlives the benchmark. */

struct ping_state {
    weft_pid b;
    long n;
    int64_t k;
};

struct pong_state {
    int64_t expect;
    long n;
};

static void ping_fn(void *state, weft_msg *m)
{
    struct ping_state *a = state;
    int err = 0;
    if (m->tag == TAG_GO) {
        a->k = 1;
        err = send_i64(a->b, TAG_PING, a->k);
    } else if (m->tag == TAG_PONG) {
        int64_t v = msg_i64(m);
        if (v != a->k) {
            failf("A received pong %" PRId64 ", want %" PRId64, v, a->k);
            weft_exit(1);
            return;
        }
        if (a->k == a->n) {
            if ((err = weft_send(a->b, TAG_STOP, NULL, 0, 0)) == 0 &&
                (err = send_i64(main_pid, TAG_DONE, a->k)) == 0)
                weft_exit(WEFT_EXIT_NORMAL);
        } else {
            err = send_i64(a->b, TAG_PING, ++a->k);
        }
    } else {
        failf("A received tag %d", m->tag);
    }
    if (err != 0)
        failf("A: weft_send: %s", weft_strerror(err));
}

static void pong_fn(void *state, weft_msg *m)
{
    struct pong_state *b = state;
    if (m->tag == TAG_PING) {
        int64_t v = msg_i64(m);
        if (v != b->expect) {
            failf("B received ping %" PRId64 ", want %" PRId64, v, b->expect);
            weft_exit(1);
            return;
        }
        b->expect++;
        int err = send_i64(m->from, TAG_PONG, v);
        if (err != 0)
            failf("B: weft_send: %s", weft_strerror(err));
    } else if (m->tag == TAG_STOP) {
        if (b->expect != b->n + 1)
            failf("B stopped after %" PRId64 " pings, want %ld", b->expect - 1, b->n);
        weft_exit(WEFT_EXIT_NORMAL);
    } else {
        failf("B received tag %d", m->tag);
    }
}

struct apingpong_state {
    long n;
    struct ping_state a;
    struct pong_state b;
    int64_t final, ns;
};

static intptr_t apingpong_main(void *arg)
{
    struct apingpong_state *s = arg;
    main_pid = weft_self();
    weft_pid a, b;
    int err;
    s->a = (struct ping_state){.n = s->n};
    s->b = (struct pong_state){.expect = 1, .n = s->n};
    if ((err = weft_actor_spawn(&b, pong_fn, &s->b, NULL)) != 0 ||
        (s->a.b = b, err = weft_actor_spawn(&a, ping_fn, &s->a, NULL)) != 0) {
        failf("weft_actor_spawn: %s", weft_strerror(err));
        return -1;
    }
    int64_t t0 = weft_now();
    if ((err = weft_send(a, TAG_GO, NULL, 0, WEFT_FOREVER)) != 0) {
        failf("weft_send: %s", weft_strerror(err));
        return -1;
    }
    s->final = main_wait(TAG_DONE);
    s->ns = weft_now() - t0;
    if (s->final < 0)
        return -1;
    /* Wait until both have ended. */
    uint64_t refs[2];
    if ((err = weft_monitor(a, &refs[0])) != 0 || (err = weft_monitor(b, &refs[1])) != 0) {
        failf("weft_monitor: %s", weft_strerror(err));
        return -1;
    }
    for (int downs = 0; downs < 2;) {
        weft_msg m;
        if ((err = weft_recv(&m, NULL, WEFT_FOREVER)) != 0) {
            failf("main: weft_recv: %s", weft_strerror(err));
            return -1;
        }
        int tag = m.tag;
        weft_msg_free(&m);
        if (tag == TAG_FAIL)
            return -1;
        if (tag != WEFT_TAG_DOWN) {
            failf("main: received tag %d, want DOWN", tag);
            return -1;
        }
        downs++;
    }
    return 0;
}

static int run_apingpong(const struct bench_args *args, struct bench_result *out)
{
    struct apingpong_state s = {.n = args->n};
    if (bench_run(args, apingpong_main, &s) != 0 || recorded_failure() || s.final != s.n)
        return report("actor-pingpong", "A ended at round trip %" PRId64 ", want %ld", s.final,
                      s.n);
    out->seconds = s.ns / 1e9;
    out->value = (double)s.ns / (double)s.n;
    return 0;
}

const struct bench bench_actor_pingpong = {"actor-pingpong", 5000000, "ns per round trip",
                                           run_apingpong};

/* ---- actor-spawn: a binary tree of 2^D - 1 stackless actors --------------------------
 * The root is at level 1. An actor at level < D spawns two children, counts
 * their two replies (each the size of the child's subtree) in its handler,
 * then sends 1 + their sum to its parent and ends; a leaf replies 1 at once.
 * An actor runs only when a message arrives: its parent starts it with START
 * (the peers' actors start on their own). Each actor's state is a malloc'd
 * node, freed by on_exit. Timed: from just before spawning the root until main
 * has its reply, which must be 2^D - 1. Prints the peak RSS (VmHWM) on stderr. */

struct node {
    weft_pid parent;
    int level, depth, got;
    int64_t sum;
};

static weft_actor_opts node_opts;

static void node_fn(void *state, weft_msg *m);

static void node_free(void *state, intptr_t reason)
{
    (void)reason;
    free(state);
}

/* Spawns and starts a child of level `level` whose parent is the caller. */
static int node_spawn(int level, int depth)
{
    struct node *c = malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    *c = (struct node){.parent = weft_self(), .level = level, .depth = depth};
    weft_pid pid;
    int err = weft_actor_spawn(&pid, node_fn, c, &node_opts);
    if (err != 0) {
        free(c);
        return err;
    }
    return weft_send(pid, TAG_START, NULL, 0, 0);
}

static void node_reply(struct node *n, int64_t count)
{
    int err = send_i64(n->parent, TAG_SUBTREE, count);
    if (err != 0)
        failf("node: weft_send: %s", weft_strerror(err));
    weft_exit(WEFT_EXIT_NORMAL);
}

static void node_fn(void *state, weft_msg *m)
{
    struct node *n = state;
    if (m->tag == TAG_START) {
        if (n->level >= n->depth) {
            node_reply(n, 1);
            return;
        }
        int err = node_spawn(n->level + 1, n->depth);
        if (err == 0)
            err = node_spawn(n->level + 1, n->depth);
        if (err != 0)
            failf("node at level %d: spawning a child: %s", n->level, weft_strerror(err));
    } else if (m->tag == TAG_SUBTREE) {
        n->sum += msg_i64(m);
        if (++n->got == 2)
            node_reply(n, 1 + n->sum);
    } else {
        failf("node received tag %d", m->tag);
    }
}

struct aspawn_state {
    int depth;
    int64_t count, ns;
};

static intptr_t aspawn_main(void *arg)
{
    struct aspawn_state *s = arg;
    main_pid = weft_self();
    weft_actor_opts_init(&node_opts);
    node_opts.on_exit = node_free;
    int64_t t0 = weft_now();
    struct node *root = malloc(sizeof *root);
    if (!root)
        return -1;
    *root = (struct node){.parent = main_pid, .level = 1, .depth = s->depth};
    weft_pid pid;
    int err = weft_actor_spawn(&pid, node_fn, root, &node_opts);
    if (err == 0)
        err = weft_send(pid, TAG_START, NULL, 0, WEFT_FOREVER);
    if (err != 0) {
        failf("root: %s", weft_strerror(err));
        return -1;
    }
    s->count = main_wait(TAG_SUBTREE);
    s->ns = weft_now() - t0;
    return s->count < 0 ? -1 : 0;
}

static int run_aspawn(const struct bench_args *args, struct bench_result *out)
{
    if (args->n > 30) {
        fprintf(stderr, "actor-spawn: depth %ld is too large (at most 30)\n", args->n);
        return 1;
    }
    struct aspawn_state s = {.depth = (int)args->n};
    int64_t want = ((int64_t)1 << s.depth) - 1;
    if (bench_run(args, aspawn_main, &s) != 0 || recorded_failure() || s.count != want)
        return report("actor-spawn", "the root counted %" PRId64 " actors, want %" PRId64, s.count,
                      want);
    fprintf(stderr, "peak_rss_bytes %ld\n", status_bytes("VmHWM"));
    out->seconds = s.ns / 1e9;
    out->value = (double)s.ns / (double)want;
    return 0;
}

const struct bench bench_actor_spawn = {"actor-spawn", 20, "ns per actor (N: tree depth)",
                                        run_aspawn};

/* ---- actor-memory: N idle stackless actors; bytes of RSS per actor -------------------
 * VmRSS is read before spawning and again after a 100 ms settle (as the
 * memory benchmark and the Erlang peer). The pid array is allocated and
 * touched before the first reading. Then each actor gets STOP, replies
 * STOPPED to main and ends; main counts the N replies. Timed: the spawning. */

struct amemory_state {
    long n;
    weft_pid *pids;
    long rss_before, rss_after;
    int64_t ns;
    long stopped;
};

static void idle_fn(void *state, weft_msg *m)
{
    (void)state;
    if (m->tag != TAG_STOP) {
        failf("idle actor received tag %d", m->tag);
        return;
    }
    int err = weft_send(main_pid, TAG_STOPPED, NULL, 0, 0);
    if (err != 0)
        failf("idle actor: weft_send: %s", weft_strerror(err));
    weft_exit(WEFT_EXIT_NORMAL);
}

static intptr_t amemory_main(void *arg)
{
    struct amemory_state *s = arg;
    main_pid = weft_self();
    int err;
    s->rss_before = bench_rss();
    int64_t t0 = weft_now();
    for (long i = 0; i < s->n; i++)
        if ((err = weft_actor_spawn(&s->pids[i], idle_fn, NULL, NULL)) != 0) {
            failf("weft_actor_spawn (actor %ld): %s", i, weft_strerror(err));
            return -1;
        }
    s->ns = weft_now() - t0;
    weft_sleep(weft_now() + 100000000); /* let every worker settle */
    s->rss_after = bench_rss();
    for (long i = 0; i < s->n; i++)
        if ((err = weft_send(s->pids[i], TAG_STOP, NULL, 0, WEFT_FOREVER)) != 0) {
            failf("weft_send (actor %ld): %s", i, weft_strerror(err));
            return -1;
        }
    for (; s->stopped < s->n; s->stopped++)
        if (main_wait(TAG_STOPPED) < 0)
            return -1;
    return 0;
}

static int run_amemory(const struct bench_args *args, struct bench_result *out)
{
    struct amemory_state s = {.n = args->n};
    s.pids = malloc((size_t)s.n * sizeof *s.pids);
    if (!s.pids) {
        fprintf(stderr, "actor-memory: no memory for %ld pids\n", s.n);
        return 1;
    }
    memset(s.pids, 0, (size_t)s.n * sizeof *s.pids);
    int bad = bench_run(args, amemory_main, &s) != 0 || recorded_failure() || s.stopped != s.n;
    free(s.pids);
    if (bad)
        return report("actor-memory", "%ld of %ld actors stopped", s.stopped, s.n);
    out->seconds = s.ns / 1e9;
    out->value = (double)(s.rss_after - s.rss_before) / (double)s.n;
    return 0;
}

const struct bench bench_actor_memory = {"actor-memory", 1000000, "bytes per idle actor",
                                         run_amemory};

/* ---- selective (weft only, not in BENCH.md): selective receive behind a backlog ---------
 * Main queues N messages of tag DATA to itself, then N times sends itself a
 * PING and takes it by its tag: each PING waits behind all N DATA messages.
 * A receive that rescanned the mailbox would cost O(N) per round (N^2 in
 * all); weft's resumes after what the last receive with the same match
 * checked. Reported: ns per round (a send and a selective receive), which
 * must not grow with N. Then the backlog is drained and checked in order. */

static intptr_t selective_main(void *arg)
{
    struct bench_result *r = arg;
    long n = (long)r->value;
    weft_pid self = weft_self();
    main_pid = self;
    for (long i = 0; i < n; i++)
        if (send_i64(self, TAG_DATA, i) != 0) {
            failf("send to self failed");
            return -1;
        }
    weft_match ping = {.tag = TAG_PING};
    int64_t t0 = weft_now();
    for (long i = 0; i < n; i++) {
        weft_msg m;
        int err = send_i64(self, TAG_PING, i);
        if (err == 0)
            err = weft_recv(&m, &ping, 0);
        if (err != 0) {
            failf("round %ld: %s", i, weft_strerror(err));
            return -1;
        }
        int64_t v = msg_i64(&m);
        weft_msg_free(&m);
        if (v != i) {
            failf("round %ld took ping %" PRId64, i, v);
            return -1;
        }
    }
    r->seconds = (weft_now() - t0) / 1e9;
    if (weft_mailbox_len() != n) {
        failf("%ld messages left behind, want %ld", weft_mailbox_len(), n);
        return -1;
    }
    for (long i = 0; i < n; i++) {
        weft_msg m;
        if (weft_recv(&m, NULL, 0) != 0 || m.tag != TAG_DATA || msg_i64(&m) != i) {
            failf("backlog message %ld is missing or out of order", i);
            return -1;
        }
        weft_msg_free(&m);
    }
    return 0;
}

static int run_selective(const struct bench_args *args, struct bench_result *out)
{
    struct bench_result r = {0, (double)args->n};
    if (bench_run(args, selective_main, &r) != 0 || recorded_failure())
        return report("selective", "failed");
    out->seconds = r.seconds;
    out->value = r.seconds * 1e9 / (double)args->n;
    return 0;
}

const struct bench bench_selective = {"selective", 100000, "ns per selective receive behind N",
                                      run_selective};
