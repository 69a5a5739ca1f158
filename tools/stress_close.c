/* stress_close.c: channels closed while their senders and receivers are
 * busy (the close scenario).
 *
 * The processes form groups of up to 64 around one channel each (capacity
 * 0, 1 or 16 in turn): senders, receivers (exactly one in every other group,
 * which then checks each sender's order) and a closer. The closer waits
 * until a random number of the group's messages has arrived (up to three
 * quarters of them; the receiver that takes the last of them tells it over
 * a channel of its own, after the closer has yielded a few times), then
 * closes the channel. (The closer does not yield until then: a thousand
 * processes that yield in a loop on one worker make every other process wait
 * a round of them each time it is displaced, which is fair but quadratic.) Senders send until -EPIPE, one
 * send in 4 with a deadline a few microseconds ahead (retried when it
 * expires); receivers receive until -EPIPE. The accounting: a send that
 * returned 0 arrives exactly once (lost otherwise), a send that returned
 * -EPIPE never arrives (a phantom otherwise), the channel ends empty. */
#include "stress.h"

#define US ((int64_t)1000)

struct close_scn {
    struct stress_ctx *c;
    uint32_t S, M;               /* senders in all, messages each may send */
    uint32_t *sent;              /* [S] sends that returned 0, set by each sender at its end */
    struct stress_ledger ledger; /* S * M bits: messages received */
};

struct close_group {
    struct close_scn *z;
    weft_chan ch;
    weft_chan trigger;      /* capacity 1: one message when threshold is reached */
    uint32_t first, S, R;   /* senders first .. first + S - 1, and R receivers */
    uint64_t threshold;     /* messages received before the closer closes */
    atomic_ulong received;  /* messages the group's receivers took so far */
    uint32_t *next;         /* R == 1: per sender (s - first) the next sequence number due */
};

enum { SENDER, RECEIVER, CLOSER };
static const char *const role_names[] = {"sender", "receiver", "closer"};

struct close_proc {
    struct close_group *g;
    uint32_t id; /* senders: their global id; others: an index for their generator */
    int role;
};

static intptr_t close_sender(struct close_group *g, uint32_t id)
{
    struct stress_ctx *c = g->z->c;
    uint64_t local[C_COUNT] = {0};
    uint64_t rng = stress_seed_for(c, id);
    uint32_t seq;
    intptr_t ret = 0;
    for (seq = 0; seq < g->z->M; seq++) {
        struct stress_msg m = stress_msg_make(c, id, seq);
        int rc;
        do {
            bool timed = stress_below(&rng, 4) == 0;
            int64_t deadline = timed ? weft_now() + (int64_t)(1 + stress_below(&rng, 20)) * US
                                     : WEFT_FOREVER;
            rc = weft_chan_send(g->ch, &m, sizeof m, deadline);
            local[C_TIMEOUTS] += rc == -ETIMEDOUT;
        } while (rc == -ETIMEDOUT);
        if (rc == -EPIPE)
            break; /* closed: this message was not sent */
        if (!stress_rc(c, rc, 0, "close: weft_chan_send")) {
            ret = 1;
            break;
        }
        local[C_SENT]++;
    }
    g->z->sent[id] = seq;
    stress_flush(c, local);
    return ret;
}

static intptr_t close_receiver(struct close_group *g)
{
    struct stress_ctx *c = g->z->c;
    uint64_t local[C_COUNT] = {0};
    uint64_t rdv = weft_chan_cap(g->ch) == 0;
    intptr_t ret = 0;
    for (;;) {
        struct stress_msg m;
        int rc = weft_chan_recv(g->ch, &m, sizeof m, WEFT_FOREVER);
        if (rc == -EPIPE)
            break;
        if (!stress_rc(c, rc, 0, "close: weft_chan_recv")) {
            ret = 1;
            break;
        }
        local[C_RECEIVED]++;
        local[C_RENDEZVOUS] += rdv;
        if (atomic_fetch_add_explicit(&g->received, 1, memory_order_relaxed) + 1 == g->threshold) {
            struct stress_msg t = stress_msg_make(c, 0, 0);
            stress_rc(c, weft_chan_send(g->trigger, &t, sizeof t, 0), 0, "close: trigger");
        }
        if (!stress_msg_check(c, &m, g->z->S, g->z->M))
            continue;
        if (m.from - g->first >= g->S)
            stress_flaw(c, C_CORRUPT, 1, "sender %u's message reached another group", m.from);
        else if (!stress_ledger_mark(&g->z->ledger, (uint64_t)m.from * g->z->M + m.seq))
            stress_flaw(c, C_DUPLICATED, 1, "sender %u: message %u arrived twice", m.from, m.seq);
        else if (g->next)
            stress_in_order(c, &g->next[m.from - g->first], &m);
    }
    stress_flush(c, local);
    return ret;
}

static intptr_t close_closer(struct close_group *g)
{
    struct stress_ctx *c = g->z->c;
    uint64_t local[C_COUNT] = {0};
    intptr_t ret = 0;
    for (int i = 0; i < 4 && atomic_load(&g->received) < g->threshold; i++) {
        local[C_YIELDS]++;
        if (!stress_rc(c, weft_yield(), 0, "close: weft_yield"))
            ret = 1;
    }
    struct stress_msg m;
    if (g->threshold > 0 &&
        !stress_rc(c, weft_chan_recv(g->trigger, &m, sizeof m, WEFT_FOREVER), 0, "close: wait"))
        ret = 1;
    if (!stress_rc(c, weft_chan_close(g->ch), 0, "close: weft_chan_close"))
        ret = 1;
    m = stress_msg_make(c, 0, 0);
    stress_rc(c, weft_chan_send(g->ch, &m, sizeof m, 0), -EPIPE, "close: send after close");
    stress_flush(c, local);
    return ret;
}

static intptr_t close_proc(void *arg)
{
    const struct close_proc *a = arg;
    return a->role == SENDER ? close_sender(a->g, a->id)
           : a->role == RECEIVER ? close_receiver(a->g)
                                 : close_closer(a->g);
}

/* Lays out the groups and their processes; false without memory. */
static bool close_layout(struct close_scn *z, struct close_group *groups, uint32_t ngroups,
                         struct close_proc *procs, uint64_t *rng)
{
    static const size_t caps[] = {0, 1, 16};
    uint32_t n = (uint32_t)z->c->p->procs, p = 0, sender = 0;
    for (uint32_t k = 0; k < ngroups; k++) {
        struct close_group *g = &groups[k];
        uint32_t size = n / ngroups + (k < n % ngroups);
        g->z = z;
        g->R = k % 2 ? 1 : (size - 1) / 2;
        g->S = size - 1 - g->R;
        g->first = sender;
        g->threshold = stress_below(rng, (uint64_t)g->S * z->M * 3 / 4 + 1);
        atomic_init(&g->received, 0);
        g->ch = stress_chan(z->c, caps[k % 3]);
        g->trigger = stress_chan(z->c, 1);
        if (g->R == 1 && !(g->next = stress_alloc(z->c, g->S, sizeof *g->next)))
            return false;
        for (uint32_t i = 0; i < g->S; i++)
            procs[p++] = (struct close_proc){g, sender++, SENDER};
        for (uint32_t i = 0; i < g->R; i++, p++)
            procs[p] = (struct close_proc){g, p, RECEIVER};
        procs[p] = (struct close_proc){g, p, CLOSER};
        p++;
    }
    z->S = sender;
    return true;
}

/* Checks every sender's messages against what its sends returned. */
static void close_account(struct close_scn *z)
{
    uint64_t lost = 0, phantom = 0;
    for (uint64_t s = 0; s < z->S; s++) {
        uint64_t base = s * z->M, sent = z->sent[s];
        lost += sent - stress_ledger_marked(&z->ledger, base, base + sent);
        phantom += stress_ledger_marked(&z->ledger, base + sent, base + z->M);
    }
    if (lost)
        stress_flaw(z->c, C_LOST, lost, "close: %llu messages sent but never received",
                    (unsigned long long)lost);
    if (phantom)
        stress_flaw(z->c, C_PHANTOM, phantom,
                    "close: %llu messages received although their send failed",
                    (unsigned long long)phantom);
}

intptr_t stress_close(struct stress_ctx *c)
{
    uint64_t local[C_COUNT] = {0};
    uint64_t rng = stress_seed_for(c, UINT64_MAX);
    uint32_t n = (uint32_t)c->p->procs;
    uint32_t ngroups = (n + 63) / 64;
    struct close_scn *z = stress_alloc(c, 1, sizeof *z);
    struct close_group *groups = stress_alloc(c, ngroups, sizeof *groups);
    struct close_proc *procs = stress_alloc(c, n, sizeof *procs);
    weft_pid *pids = stress_alloc(c, n, sizeof *pids);
    uint32_t *order = stress_alloc(c, n, sizeof *order);
    if (!z || !groups || !procs || !pids || !order)
        return 0;
    *z = (struct close_scn){.c = c, .M = (uint32_t)c->p->msgs};
    bool ok = close_layout(z, groups, ngroups, procs, &rng) &&
              (z->sent = stress_alloc(c, z->S, sizeof *z->sent)) &&
              stress_ledger_init(c, &z->ledger, (uint64_t)z->S * z->M);
    if (ok) {
        for (uint32_t i = 0; i < n; i++)
            order[i] = i;
        stress_shuffle(&rng, order, n);
        for (uint32_t i = 0; i < n; i++) {
            struct close_proc *a = &procs[order[i]];
            pids[order[i]] = stress_spawn(c, local, close_proc, a, -1, role_names[a->role], a->id);
        }
        for (uint32_t i = 0; i < n; i++)
            stress_join(c, local, pids[i], 0, WEFT_FOREVER);
        close_account(z);
    }
    for (uint32_t k = 0; k < ngroups; k++) {
        stress_chan_end(c, groups[k].ch, ok);
        stress_chan_end(c, groups[k].trigger, false);
    }
    stress_flush(c, local);
    return 0;
}
