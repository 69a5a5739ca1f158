/* stress_select.c: producers, select routers and sinks (the select
 * scenario).
 *
 * The processes form groups of up to 96 around four channels: in0
 * (rendezvous), in1 (capacity 4), out0 (rendezvous) and out1 (capacity 2).
 * A third of each group produce: each message goes out through one select
 * with a send case on in0 and one on in1. A third route: a router holds up
 * to 4 messages and selects over receiving on in0 and in1 (while it has
 * room) and sending its oldest message on out0 and out1 (while it holds
 * one). The rest are sinks: they select over receiving on out0 and out1.
 * Every select draws its deadline, 0 (a poll) 1 time in 4, a few
 * microseconds ahead 1 in 4, forever otherwise (an expired one is drawn
 * again), and its policy, PRIORITY 1 in 4, FAIR otherwise.
 * Closing: the last producer of a group closes in0 and in1; a router drops
 * an input from its select once the input's case fires with -EPIPE (closed
 * and drained) and leaves when it has no input and holds nothing; the last
 * router closes out0 and out1; sinks leave when both are closed.
 * The accounting: the receive case that did not fire leaves its buffer
 * untouched, and every message reaches a sink exactly once (the ledger). */
#include "stress.h"

#define US ((int64_t)1000)
#define ROUTER_HOLD 4

struct sel_scn {
    struct stress_ctx *c;
    uint32_t P, M;               /* producers in all, messages each */
    struct stress_ledger ledger; /* P * M bits: messages that reached a sink */
};

struct sel_group {
    struct sel_scn *z;
    weft_chan in[2], out[2];
    atomic_uint producers, routers; /* still running */
};

enum { PRODUCER, ROUTER, SINK };
static const char *const role_names[] = {"producer", "router", "sink"};

struct sel_proc {
    struct sel_group *g;
    uint32_t id; /* producers: their global id; others: an index for their generator */
    int role;
};

/* A message that no sender makes: what a receive buffer holds before the select. */
static const struct stress_msg poison = {UINT32_MAX, UINT32_MAX, 0};

/* weft_select with a drawn deadline and policy, again while it expires.
 * Returns the index of the case that fired, or -1 after recording why not. */
static int sel_select(struct stress_ctx *c, weft_case *cases, size_t n, uint64_t *rng,
                      uint64_t local[C_COUNT])
{
    for (;;) {
        uint64_t r = stress_below(rng, 8);
        int64_t deadline = r < 2   ? 0
                           : r < 4 ? weft_now() + (int64_t)(1 + stress_below(rng, 20)) * US
                                   : WEFT_FOREVER;
        int policy = stress_below(rng, 4) == 0 ? WEFT_SELECT_PRIORITY : WEFT_SELECT_FAIR;
        int i = weft_select(cases, n, policy, deadline);
        if (i >= 0 && (size_t)i < n)
            return i;
        if (i != -ETIMEDOUT) {
            stress_fail(c, "weft_select returned %d (%s)", i, weft_strerror(i));
            return -1;
        }
        local[deadline == 0 ? C_POLLS : C_TIMEOUTS]++;
    }
}

static bool untouched(struct stress_ctx *c, const struct stress_msg *m, int fired)
{
    if (m->from == poison.from && m->seq == poison.seq)
        return true;
    stress_fail(c, "case %d fired, and the other receive case's buffer was written", fired);
    return false;
}

static void end_of(struct stress_ctx *c, atomic_uint *running, const weft_chan ch[2])
{
    if (atomic_fetch_sub(running, 1) == 1)
        for (int k = 0; k < 2; k++)
            stress_rc(c, weft_chan_close(ch[k]), 0, "select: weft_chan_close");
}

static intptr_t producer(struct sel_group *g, uint32_t id)
{
    struct stress_ctx *c = g->z->c;
    uint64_t local[C_COUNT] = {0};
    uint64_t rng = stress_seed_for(c, id);
    intptr_t ret = 0;
    for (uint32_t seq = 0; seq < g->z->M; seq++) {
        struct stress_msg m = stress_msg_make(c, id, seq);
        weft_case cases[2] = {WEFT_SEND(g->in[0], &m), WEFT_SEND(g->in[1], &m)};
        int i = sel_select(c, cases, 2, &rng, local);
        if (i < 0 || !stress_rc(c, cases[i].result, 0, "select: producer's send case")) {
            ret = 1;
            break;
        }
        local[C_SENT]++;
    }
    end_of(c, &g->producers, g->in);
    stress_flush(c, local);
    return ret;
}

static intptr_t router(struct sel_group *g, uint32_t id)
{
    struct stress_ctx *c = g->z->c;
    uint64_t local[C_COUNT] = {0};
    uint64_t rng = stress_seed_for(c, id);
    struct stress_msg q[ROUTER_HOLD], in[2], out;
    unsigned head = 0, held = 0;
    bool closed[2] = {false, false};
    intptr_t ret = 0;
    for (int k = 0; k < ROUTER_HOLD; k++)
        q[k] = poison;
    while (!(closed[0] && closed[1] && held == 0)) {
        in[0] = in[1] = poison;
        out = q[head];
        weft_case cases[4] = {WEFT_RECV(g->in[0], &in[0]), WEFT_RECV(g->in[1], &in[1]),
                              WEFT_SEND(g->out[0], &out), WEFT_SEND(g->out[1], &out)};
        for (int k = 0; k < 2; k++) {
            cases[k].disabled = closed[k] || held == ROUTER_HOLD;
            cases[2 + k].disabled = held == 0;
        }
        int i = sel_select(c, cases, 4, &rng, local);
        if (i < 0) {
            ret = 1;
            break;
        }
        if (i < 2 && cases[i].result == -EPIPE) {
            closed[i] = true;
            continue;
        }
        if (!stress_rc(c, cases[i].result, 0, "select: router's case")) {
            ret = 1;
            break;
        }
        if (i >= 2) {
            local[C_SENT]++;
            head = (head + 1) % ROUTER_HOLD;
            held--;
            continue;
        }
        local[C_RECEIVED]++;
        local[C_RENDEZVOUS] += i == 0;
        if (untouched(c, &in[1 - i], i) && stress_msg_check(c, &in[i], g->z->P, g->z->M))
            q[(head + held++) % ROUTER_HOLD] = in[i];
    }
    end_of(c, &g->routers, g->out);
    stress_flush(c, local);
    return ret;
}

static intptr_t sink(struct sel_group *g, uint32_t id)
{
    struct stress_ctx *c = g->z->c;
    uint64_t local[C_COUNT] = {0};
    uint64_t rng = stress_seed_for(c, id);
    struct stress_msg in[2];
    bool closed[2] = {false, false};
    intptr_t ret = 0;
    while (!(closed[0] && closed[1])) {
        in[0] = in[1] = poison;
        weft_case cases[2] = {WEFT_RECV(g->out[0], &in[0]), WEFT_RECV(g->out[1], &in[1])};
        cases[0].disabled = closed[0];
        cases[1].disabled = closed[1];
        int i = sel_select(c, cases, 2, &rng, local);
        if (i < 0) {
            ret = 1;
            break;
        }
        if (cases[i].result == -EPIPE) {
            closed[i] = true;
            continue;
        }
        if (!stress_rc(c, cases[i].result, 0, "select: sink's case")) {
            ret = 1;
            break;
        }
        local[C_RECEIVED]++;
        local[C_RENDEZVOUS] += i == 0;
        if (!untouched(c, &in[1 - i], i) || !stress_msg_check(c, &in[i], g->z->P, g->z->M))
            continue;
        if (!stress_ledger_mark(&g->z->ledger, (uint64_t)in[i].from * g->z->M + in[i].seq))
            stress_flaw(c, C_DUPLICATED, 1, "producer %u: message %u reached the sinks twice",
                        in[i].from, in[i].seq);
    }
    stress_flush(c, local);
    return ret;
}

static intptr_t sel_proc(void *arg)
{
    const struct sel_proc *a = arg;
    return a->role == PRODUCER ? producer(a->g, a->id)
           : a->role == ROUTER ? router(a->g, a->id)
                               : sink(a->g, a->id);
}

/* Lays out the groups, their channels and their processes. */
static void sel_layout(struct sel_scn *z, struct sel_group *groups, uint32_t ngroups,
                       struct sel_proc *procs)
{
    static const size_t caps[4] = {0, 4, 0, 2}; /* in0, in1, out0, out1 */
    uint32_t n = (uint32_t)z->c->p->procs, p = 0, producers = 0;
    for (uint32_t k = 0; k < ngroups; k++) {
        struct sel_group *g = &groups[k];
        uint32_t size = n / ngroups + (k < n % ngroups);
        uint32_t np = size / 3, nr = size / 3;
        g->z = z;
        for (int j = 0; j < 2; j++) {
            g->in[j] = stress_chan(z->c, caps[j]);
            g->out[j] = stress_chan(z->c, caps[2 + j]);
        }
        atomic_init(&g->producers, np);
        atomic_init(&g->routers, nr);
        for (uint32_t i = 0; i < size; i++, p++)
            procs[p] = i < np   ? (struct sel_proc){g, producers++, PRODUCER}
                       : i < np + nr ? (struct sel_proc){g, p, ROUTER}
                                     : (struct sel_proc){g, p, SINK};
    }
    z->P = producers;
}

intptr_t stress_select(struct stress_ctx *c)
{
    uint64_t local[C_COUNT] = {0};
    uint64_t rng = stress_seed_for(c, UINT64_MAX);
    uint32_t n = (uint32_t)c->p->procs;
    uint32_t ngroups = (n + 95) / 96;
    struct sel_scn *z = stress_alloc(c, 1, sizeof *z);
    struct sel_group *groups = stress_alloc(c, ngroups, sizeof *groups);
    struct sel_proc *procs = stress_alloc(c, n, sizeof *procs);
    weft_pid *pids = stress_alloc(c, n, sizeof *pids);
    uint32_t *order = stress_alloc(c, n, sizeof *order);
    if (!z || !groups || !procs || !pids || !order)
        return 0;
    *z = (struct sel_scn){.c = c, .M = (uint32_t)c->p->msgs};
    sel_layout(z, groups, ngroups, procs);
    bool ok = stress_ledger_init(c, &z->ledger, (uint64_t)z->P * z->M);
    if (ok) {
        for (uint32_t i = 0; i < n; i++)
            order[i] = i;
        stress_shuffle(&rng, order, n);
        for (uint32_t i = 0; i < n; i++) {
            struct sel_proc *a = &procs[order[i]];
            pids[order[i]] = stress_spawn(c, local, sel_proc, a, -1, role_names[a->role], a->id);
        }
        for (uint32_t i = 0; i < n; i++)
            stress_join(c, local, pids[i], 0, WEFT_FOREVER);
        uint64_t total = (uint64_t)z->P * z->M;
        uint64_t lost = total - stress_ledger_marked(&z->ledger, 0, total);
        if (lost)
            stress_flaw(c, C_LOST, lost, "select: %llu of %llu messages never reached a sink",
                        (unsigned long long)lost, (unsigned long long)total);
    }
    for (uint32_t k = 0; k < ngroups; k++)
        for (int j = 0; j < 2; j++) {
            stress_chan_end(c, groups[k].in[j], ok);
            stress_chan_end(c, groups[k].out[j], ok);
        }
    stress_flush(c, local);
    return 0;
}
