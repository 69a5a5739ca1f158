/* stress_proc.c: the scenarios about processes more than messages: churn
 * (spawn and join in waves) and ring (a token around rings of rendezvous
 * channels, one switch per hop). */
#include "stress.h"

/* ---- churn ------------------------------------------------------------------------ */

/* Up to 64 branches spawn the children in waves of 1 to 32. A child sends
 * one message (its id) to its branch, over the branch's channel (rendezvous
 * or capacity 8, in turn), and returns a value derived from its id; one
 * child in 5 yields first, one in 16 first spawns a grandchild and joins it.
 * The branch receives the wave's messages, then joins the wave's children
 * (1 in 4 with a deadline-0 join first, which may find the child running),
 * checking each result. Every id arrives exactly once (the ledger) and every
 * process is joined with the value it had to return. */

enum { WAVE_MAX = 32 };

struct churn {
    struct stress_ctx *c;
    uint32_t children;           /* children in all (ids 0 .. children - 1) */
    struct stress_ledger ledger; /* one bit per child: its message arrived */
};

struct churn_child;

struct churn_branch {
    struct churn *h;
    uint32_t index, first, count; /* its children: ids first .. first + count - 1 */
    weft_chan ch;
    struct churn_child *kids;     /* [WAVE_MAX] the arguments of a wave's children */
};

struct churn_child {
    struct churn_branch *b;
    uint32_t id;
};


static intptr_t child_result(uint32_t id)
{
    return (intptr_t)id * 3 + 1;
}

static intptr_t grandchild(void *arg)
{
    return (intptr_t)(uintptr_t)arg ^ 0x5a5a;
}

static intptr_t churn_child(void *arg)
{
    const struct churn_child *a = arg;
    struct stress_ctx *c = a->b->h->c;
    uint64_t local[C_COUNT] = {0};
    if (a->id % 16 == 0) {
        weft_pid pid = stress_spawn(c, local, grandchild, (void *)(uintptr_t)a->id, -1,
                                    "grandchild", a->id);
        stress_join(c, local, pid, (intptr_t)a->id ^ 0x5a5a, WEFT_FOREVER);
    }
    if (a->id % 5 == 0) {
        local[C_YIELDS]++;
        stress_rc(c, weft_yield(), 0, "churn: weft_yield");
    }
    struct stress_msg m = stress_msg_make(c, a->id, 0);
    intptr_t ret = child_result(a->id);
    if (stress_rc(c, weft_chan_send(a->b->ch, &m, sizeof m, WEFT_FOREVER), 0, "churn: send"))
        local[C_SENT]++;
    else
        ret = -1;
    stress_flush(c, local);
    return ret;
}

/* Receives the n messages of the wave of children first .. first + w - 1. */
static void churn_collect(struct churn_branch *b, uint32_t first, uint32_t w, uint32_t n,
                          uint64_t local[C_COUNT])
{
    struct churn *h = b->h;
    struct stress_ctx *c = h->c;
    uint64_t rdv = weft_chan_cap(b->ch) == 0;
    for (uint32_t i = 0; i < n; i++) {
        struct stress_msg m;
        if (!stress_rc(c, weft_chan_recv(b->ch, &m, sizeof m, WEFT_FOREVER), 0, "churn: receive"))
            return;
        local[C_RECEIVED]++;
        local[C_RENDEZVOUS] += rdv;
        if (!stress_msg_check(c, &m, h->children, 1))
            continue;
        if (m.from - first >= w)
            stress_flaw(c, C_CORRUPT, 1, "child %u's message reached the wave of %u..%u", m.from,
                        first, first + w - 1);
        else if (!stress_ledger_mark(&h->ledger, m.from))
            stress_flaw(c, C_DUPLICATED, 1, "child %u's message arrived twice", m.from);
    }
}

static intptr_t churn_branch(void *arg)
{
    struct churn_branch *b = arg;
    struct stress_ctx *c = b->h->c;
    uint64_t local[C_COUNT] = {0};
    uint64_t rng = stress_seed_for(c, (uint64_t)1 << 40 | b->index);
    struct churn_child *kids = b->kids;
    weft_pid pids[WAVE_MAX];
    for (uint32_t next = b->first, end = b->first + b->count; next < end;) {
        uint32_t w = 1 + (uint32_t)stress_below(&rng, WAVE_MAX), spawned = 0;
        if (w > end - next)
            w = end - next;
        for (uint32_t i = 0; i < w; i++) {
            kids[i] = (struct churn_child){b, next + i};
            int worker = stress_below(&rng, 4) == 0 ? (int)stress_below(&rng, c->p->workers) : -1;
            pids[i] = stress_spawn(c, local, churn_child, &kids[i], worker, "child", next + i);
            spawned += pids[i] != 0;
        }
        churn_collect(b, next, w, spawned, local);
        for (uint32_t i = 0; i < w; i++)
            stress_join(c, local, pids[i], child_result(next + i),
                        stress_below(&rng, 4) == 0 ? 0 : WEFT_FOREVER);
        next += w;
    }
    stress_flush(c, local);
    return 0;
}

intptr_t stress_churn(struct stress_ctx *c)
{
    uint64_t local[C_COUNT] = {0};
    uint32_t n = (uint32_t)c->p->procs;
    uint32_t nb = n / 64 < 1 ? 1 : n / 64 > 64 ? 64 : n / 64;
    struct churn *h = stress_alloc(c, 1, sizeof *h);
    struct churn_branch *branches = stress_alloc(c, nb, sizeof *branches);
    weft_pid *pids = stress_alloc(c, nb, sizeof *pids);
    if (!h || !branches || !pids)
        return 0;
    /* n = branches + children + children / 16 grandchildren, about. */
    *h = (struct churn){.c = c, .children = (uint32_t)((uint64_t)(n - nb) * 16 / 17)};
    bool ok = stress_ledger_init(c, &h->ledger, h->children);
    for (uint32_t k = 0, first = 0; ok && k < nb; k++) {
        uint32_t count = h->children / nb + (k < h->children % nb);
        struct churn_child *kids = stress_alloc(c, WAVE_MAX, sizeof *kids);
        branches[k] = (struct churn_branch){h, k, first, count, stress_chan(c, k % 2 ? 8 : 0), kids};
        first += count;
        ok = kids != NULL;
    }
    if (ok) {
        for (uint32_t k = 0; k < nb; k++)
            pids[k] = stress_spawn(c, local, churn_branch, &branches[k], (int)k, "branch", k);
        for (uint32_t k = 0; k < nb; k++)
            stress_join(c, local, pids[k], 0, WEFT_FOREVER);
        uint64_t lost = h->children - stress_ledger_marked(&h->ledger, 0, h->children);
        if (lost)
            stress_flaw(c, C_LOST, lost, "churn: %llu of %u children's messages never arrived",
                        (unsigned long long)lost, h->children);
    }
    for (uint32_t k = 0; k < nb; k++)
        stress_chan_end(c, branches[k].ch, false);
    stress_flush(c, local);
    return 0;
}

/* ---- ring ------------------------------------------------------------------------- */

/* Rings of up to 100 processes; process i of a ring receives on channel i
 * and sends on channel i + 1 (mod L), all rendezvous. Process 0 starts the
 * ring's token with value 1; each hop adds one, until value H (msgs). So
 * process i receives exactly i, i + L, i + 2L, ... (process 0: L, 2L, ...):
 * a lost, repeated or extra token shows at once. The process that receives
 * H closes its outgoing channel; a process whose incoming channel is closed
 * closes its outgoing one and leaves, so the close goes round once. */

struct ring {
    struct stress_ctx *c;
    uint32_t index, L, H; /* the ring's number, length and hops */
    weft_chan *ch;        /* [L] */
    atomic_uint hops;     /* tokens received, added by each process at its end */
};

struct ring_proc {
    struct ring *r;
    uint32_t i;
};

/* Sends value v on ch, the token of ring r. */
static bool pass(struct ring *r, weft_chan ch, uint32_t v, uint64_t local[C_COUNT])
{
    struct stress_msg m = stress_msg_make(r->c, r->index, v);
    if (!stress_rc(r->c, weft_chan_send(ch, &m, sizeof m, WEFT_FOREVER), 0, "ring: send"))
        return false;
    local[C_SENT]++;
    return true;
}

static intptr_t ring_proc(void *arg)
{
    const struct ring_proc *a = arg;
    struct ring *r = a->r;
    struct stress_ctx *c = r->c;
    uint64_t local[C_COUNT] = {0};
    weft_chan in = r->ch[a->i], out = r->ch[(a->i + 1) % r->L];
    uint32_t due = a->i ? a->i : r->L, hops = 0;
    bool out_closed = false, ok = a->i != 0 || pass(r, out, 1, local);
    while (ok) {
        struct stress_msg m;
        int rc = weft_chan_recv(in, &m, sizeof m, WEFT_FOREVER);
        if (rc == -EPIPE)
            break;
        if (!stress_rc(c, rc, 0, "ring: receive"))
            break;
        hops++;
        if (!stress_msg_check(c, &m, r->index + 1, r->H + 1) || m.from != r->index) {
            stress_fail(c, "ring %u: a foreign token", r->index);
            break;
        }
        if (m.seq != due)
            stress_flaw(c, m.seq > due ? C_LOST : C_REORDERED, 1,
                        "ring %u, process %u: token %u, expected %u", r->index, a->i, m.seq, due);
        due = m.seq + r->L;
        if (m.seq == r->H) {
            out_closed = stress_rc(c, weft_chan_close(out), 0, "ring: close");
            continue;
        }
        ok = pass(r, out, m.seq + 1, local);
    }
    if (!out_closed)
        stress_rc(c, weft_chan_close(out), 0, "ring: close on the way round");
    local[C_RECEIVED] += hops;
    local[C_RENDEZVOUS] += hops;
    atomic_fetch_add_explicit(&r->hops, hops, memory_order_relaxed);
    stress_flush(c, local);
    return 0;
}

intptr_t stress_ring(struct stress_ctx *c)
{
    uint64_t local[C_COUNT] = {0};
    uint32_t n = (uint32_t)c->p->procs;
    uint32_t nr = (n + 99) / 100;
    struct ring *rings = stress_alloc(c, nr, sizeof *rings);
    struct ring_proc *procs = stress_alloc(c, n, sizeof *procs);
    weft_chan *chans = stress_alloc(c, n, sizeof *chans);
    weft_pid *pids = stress_alloc(c, n, sizeof *pids);
    if (!rings || !procs || !chans || !pids)
        return 0;
    for (uint32_t k = 0, p = 0; k < nr; k++) {
        struct ring *r = &rings[k];
        r->c = c;
        r->index = k;
        r->L = n / nr + (k < n % nr);
        r->H = (uint32_t)c->p->msgs;
        r->ch = &chans[p];
        atomic_init(&r->hops, 0);
        for (uint32_t i = 0; i < r->L; i++, p++) {
            chans[p] = stress_chan(c, 0);
            procs[p] = (struct ring_proc){r, i};
        }
    }
    /* Each ring's process 0 last: the others wait for the token. */
    for (uint32_t k = 0, p = 0; k < nr; p += rings[k++].L)
        for (uint32_t i = rings[k].L; i-- > 0;)
            pids[p + i] = stress_spawn(c, local, ring_proc, &procs[p + i], -1, "ring", p + i);
    for (uint32_t p = 0; p < n; p++)
        stress_join(c, local, pids[p], 0, WEFT_FOREVER);
    for (uint32_t k = 0; k < nr; k++)
        if (atomic_load(&rings[k].hops) != rings[k].H)
            stress_flaw(c, C_LOST, 1, "ring %u: %u hops, expected %u", k,
                        atomic_load(&rings[k].hops), rings[k].H);
    for (uint32_t p = 0; p < n; p++)
        stress_chan_end(c, chans[p], true);
    stress_flush(c, local);
    return 0;
}
