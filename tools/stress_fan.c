/* stress_fan.c: senders and receivers over a set of channels, the mesh and
 * burst scenarios.
 *
 * Sender s sends its M messages on channel s % C. A channel with one
 * receiver checks each sender's messages in order; a channel with several
 * marks them in the ledger. The driver joins the senders, closes every
 * channel and joins the receivers, which drain what the channels still
 * buffer and then see -EPIPE: the close may lose nothing.
 *  - mesh: half the processes send, half receive, over 2 to 64 channels of
 *    capacities 0, 1, 8, 0 and 128 in turn; even channels have one receiver,
 *    odd ones share the rest; one operation in 8 polls (deadline 0) first.
 *  - burst: up to 16 channels of 1,024 elements with one receiver each and
 *    every other process a sender: many messages per switch. */
#include "stress.h"

struct fan {
    struct stress_ctx *c;
    uint32_t S, R, C, M;     /* senders, receivers, channels, messages per sender */
    unsigned poll_one_in;    /* 1 in this many operations polls first; 0: never */
    weft_chan *ch;           /* [C] */
    size_t *cap;             /* [C] capacities */
    uint32_t *rchan;         /* [R] the channel of each receiver */
    uint32_t *nrecv;         /* [C] receivers of each channel */
    uint32_t **next;         /* [C] channels with one receiver: per sender (index s / C)
                              * the next sequence number due; written by that receiver */
    struct stress_ledger ledger; /* S * M bits: messages of channels with several receivers */
};

/* The argument of one process: sender id, or receiver index. */
struct fan_proc {
    struct fan *f;
    uint32_t id;
};

static bool poll_now(const struct fan *f, uint64_t *rng)
{
    return f->poll_one_in && stress_below(rng, f->poll_one_in) == 0;
}

static intptr_t fan_sender(void *arg)
{
    const struct fan_proc *a = arg;
    struct fan *f = a->f;
    struct stress_ctx *c = f->c;
    uint64_t local[C_COUNT] = {0};
    uint64_t rng = stress_seed_for(c, a->id);
    weft_chan ch = f->ch[a->id % f->C];
    intptr_t ret = 0;
    for (uint32_t seq = 0; seq < f->M; seq++) {
        struct stress_msg m = stress_msg_make(c, a->id, seq);
        int rc = -ETIMEDOUT;
        if (poll_now(f, &rng)) {
            rc = weft_chan_send(ch, &m, sizeof m, 0);
            local[C_POLLS] += rc == -ETIMEDOUT;
        }
        if (rc == -ETIMEDOUT)
            rc = weft_chan_send(ch, &m, sizeof m, WEFT_FOREVER);
        if (!stress_rc(c, rc, 0, "fan: weft_chan_send")) {
            ret = 1;
            break;
        }
        local[C_SENT]++;
    }
    stress_flush(c, local);
    return ret;
}

static intptr_t fan_receiver(void *arg)
{
    const struct fan_proc *a = arg;
    struct fan *f = a->f;
    struct stress_ctx *c = f->c;
    uint64_t local[C_COUNT] = {0};
    uint64_t rng = stress_seed_for(c, (uint64_t)f->S + a->id);
    uint32_t k = f->rchan[a->id];
    weft_chan ch = f->ch[k];
    uint64_t rdv = f->cap[k] == 0;
    uint32_t *next = f->nrecv[k] == 1 ? f->next[k] : NULL;
    intptr_t ret = 0;
    for (;;) {
        struct stress_msg m;
        int rc = -ETIMEDOUT;
        if (poll_now(f, &rng)) {
            rc = weft_chan_recv(ch, &m, sizeof m, 0);
            local[C_POLLS] += rc == -ETIMEDOUT;
        }
        if (rc == -ETIMEDOUT)
            rc = weft_chan_recv(ch, &m, sizeof m, WEFT_FOREVER);
        if (rc == -EPIPE)
            break; /* closed and drained */
        if (!stress_rc(c, rc, 0, "fan: weft_chan_recv")) {
            ret = 1;
            break;
        }
        local[C_RECEIVED]++;
        local[C_RENDEZVOUS] += rdv;
        if (!stress_msg_check(c, &m, f->S, f->M))
            continue;
        if (m.from % f->C != k)
            stress_flaw(c, C_CORRUPT, 1, "sender %u's message arrived on channel %u", m.from, k);
        else if (next)
            stress_in_order(c, &next[m.from / f->C], &m);
        else if (!stress_ledger_mark(&f->ledger, (uint64_t)m.from * f->M + m.seq))
            stress_flaw(c, C_DUPLICATED, 1, "sender %u: message %u arrived twice", m.from, m.seq);
    }
    stress_flush(c, local);
    return ret;
}

/* Messages of sender s that arrived. */
static uint64_t arrived(struct fan *f, uint32_t s)
{
    uint32_t k = s % f->C;
    if (f->nrecv[k] == 1)
        return f->next[k][s / f->C];
    return stress_ledger_marked(&f->ledger, (uint64_t)s * f->M, (uint64_t)(s + 1) * f->M);
}

/* Spawns the processes in a shuffled order, joins the senders, closes,
 * joins the receivers, then checks that every message arrived. */
static void fan_exchange(struct fan *f, struct fan_proc *procs, weft_pid *pids, uint32_t *order)
{
    struct stress_ctx *c = f->c;
    uint64_t local[C_COUNT] = {0};
    uint64_t rng = stress_seed_for(c, UINT64_MAX);
    uint32_t n = f->S + f->R;
    for (uint32_t i = 0; i < n; i++) {
        procs[i] = (struct fan_proc){f, i < f->S ? i : i - f->S};
        order[i] = i;
    }
    stress_shuffle(&rng, order, n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t p = order[i];
        int worker = stress_below(&rng, 4) == 0 ? (int)stress_below(&rng, c->p->workers) : -1;
        pids[p] = p < f->S ? stress_spawn(c, local, fan_sender, &procs[p], worker, "sender", p)
                           : stress_spawn(c, local, fan_receiver, &procs[p], worker, "receiver",
                                          p - f->S);
    }
    for (uint32_t i = 0; i < f->S; i++)
        stress_join(c, local, pids[i], 0, stress_below(&rng, 16) == 0 ? 0 : WEFT_FOREVER);
    for (uint32_t k = 0; k < f->C; k++)
        stress_rc(c, weft_chan_close(f->ch[k]), 0, "fan: weft_chan_close");
    for (uint32_t i = f->S; i < n; i++)
        stress_join(c, local, pids[i], 0, WEFT_FOREVER);

    uint64_t lost = 0;
    for (uint32_t s = 0; s < f->S; s++)
        lost += f->M - arrived(f, s);
    if (lost)
        stress_flaw(c, C_LOST, lost, "%llu of %llu messages never arrived",
                    (unsigned long long)lost, (unsigned long long)f->S * f->M);
    stress_flush(c, local);
}

/* Runs the shape f describes (S, R, C, M, cap, rchan, poll_one_in set). */
static void fan_run(struct fan *f)
{
    struct stress_ctx *c = f->c;
    uint32_t n = f->S + f->R;
    f->ch = stress_alloc(c, f->C, sizeof *f->ch);
    f->nrecv = stress_alloc(c, f->C, sizeof *f->nrecv);
    f->next = stress_alloc(c, f->C, sizeof *f->next);
    struct fan_proc *procs = stress_alloc(c, n, sizeof *procs);
    weft_pid *pids = stress_alloc(c, n, sizeof *pids);
    uint32_t *order = stress_alloc(c, n, sizeof *order);
    bool ok = f->ch && f->nrecv && f->next && procs && pids && order &&
              stress_ledger_init(c, &f->ledger, (uint64_t)f->S * f->M);
    for (uint32_t j = 0; ok && j < f->R; j++)
        f->nrecv[f->rchan[j]]++;
    for (uint32_t k = 0; ok && k < f->C; k++) {
        f->ch[k] = stress_chan(c, f->cap[k]);
        if (f->nrecv[k] == 1)
            ok = (f->next[k] = stress_alloc(c, (f->S + f->C - 1) / f->C, sizeof **f->next)) != NULL;
    }
    if (ok)
        fan_exchange(f, procs, pids, order);
    for (uint32_t k = 0; f->ch && k < f->C; k++)
        stress_chan_end(c, f->ch[k], ok);
}

static uint32_t clamp32(uint64_t v, uint32_t lo, uint32_t hi)
{
    return v < lo ? lo : v > hi ? hi : (uint32_t)v;
}

/* The shape's arrays, in memory that outlives the driver (stress_alloc). */
static struct fan *fan_make(struct stress_ctx *c, uint32_t S, uint32_t R, uint32_t C)
{
    struct fan *f = stress_alloc(c, 1, sizeof *f);
    if (!f)
        return NULL;
    *f = (struct fan){.c = c, .S = S, .R = R, .C = C, .M = (uint32_t)c->p->msgs};
    f->cap = stress_alloc(c, C, sizeof *f->cap);
    f->rchan = stress_alloc(c, R, sizeof *f->rchan);
    return f->cap && f->rchan ? f : NULL;
}

intptr_t stress_mesh(struct stress_ctx *c)
{
    static const size_t caps[] = {0, 1, 8, 0, 128};
    uint32_t n = (uint32_t)c->p->procs, S = n / 2, C = clamp32(n / 16, 2, 64);
    struct fan *f = fan_make(c, S, n - S, C < S ? C : S);
    if (!f)
        return 0;
    f->poll_one_in = 8;
    for (uint32_t k = 0; k < f->C; k++)
        f->cap[k] = caps[k % (sizeof caps / sizeof caps[0])];
    /* One receiver on every channel, the others on the odd channels. */
    for (uint32_t j = 0; j < f->R; j++)
        f->rchan[j] = j < f->C ? j : f->C < 2 ? 0 : 1 + 2 * ((j - f->C) % (f->C / 2));
    fan_run(f);
    return 0;
}

intptr_t stress_burst(struct stress_ctx *c)
{
    uint32_t n = (uint32_t)c->p->procs, C = clamp32(n / 5, 1, 16);
    struct fan *f = fan_make(c, n - C, C, C);
    if (!f)
        return 0;
    for (uint32_t k = 0; k < f->C; k++) {
        f->cap[k] = 1024;
        f->rchan[k] = k;
    }
    fan_run(f);
    return 0;
}
