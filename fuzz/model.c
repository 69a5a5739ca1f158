/* model.c: the shadow state of a fuzz program: channels, values in flight,
 * cancellation, and the final invariants (the contract is in model.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "model.h"

struct fz_model fz_m;
int fz_verbose;
const char *fz_input_name;

/* What became of each value: indexed by sender and sequence number. */
enum { V_NONE, V_SENDING, V_SENT, V_FAILED };
struct vrec {
    uint8_t state;  /* V_* */
    uint8_t recvd;  /* received (once at most) */
    int8_t ci;      /* the channel it was sent on */
};
static struct vrec vals[FZ_PROCS][FZ_SEQS];

/* Per receiver, channel and sender: the sequence number last received (-1). */
static int32_t last_seq[FZ_PROCS][FZ_INSTS][FZ_PROCS];

void fz_fail(int proc, const char *fmt, ...)
{
    const struct fz_program *p = fz_m.prog;
    fflush(stdout);
    fprintf(stderr, "\nfuzz: invariant violated");
    if (proc >= 0 && proc < FZ_PROCS) {
        const struct fz_proc *pr = &fz_m.proc[proc];
        int opi = pr->opi;
        const struct fz_op *op = opi >= 0 && (unsigned)opi < p->nops[pr->body]
                                     ? &p->ops[pr->body][opi] : NULL;
        fprintf(stderr, " in process %d (body %d), op %d", proc, pr->body, opi);
        if (op)
            fprintf(stderr, " (%s m=%x a=%02x b=%02x)", fz_op_name(op->op), op->m, op->a, op->b);
        else if (opi >= 0)
            fprintf(stderr, " (main's closing drain)");
    }
    fputs(": ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nfuzz: the program%s%s (%d processes, %d channels made):\n",
            fz_input_name ? " " : "", fz_input_name ? fz_input_name : "", fz_m.nproc, fz_m.nchan);
    fz_print(p, stderr);
    abort();
}

static uint64_t mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 29);
}

void fz_model_init(const struct fz_program *prog)
{
    memset(&fz_m, 0, sizeof fz_m);
    fz_m.prog = prog;
    fz_m.salt = mix(prog->seed, 0x5eed);
    fz_m.trace_hash = fz_m.pending_hash = 0xcbf29ce484222325ull;
    for (int i = 0; i < FZ_SLOTS; i++)
        fz_m.slot[i] = FZ_NOCHAN;
    memset(vals, 0, sizeof vals);
    memset(last_seq, 0xff, sizeof last_seq);
}

bool fz_frozen(void)
{
    static int avoid = -1;
    if (avoid < 0)
        avoid = fz_avoid("shutdown-race");
    return avoid && ((fz_m.main_started && fz_m.proc[0].state == FZ_P_DONE) || fz_m.cancel_seen);
}

void fz_trace_line(const char *event)
{
    if (fz_verbose > 1)
        fprintf(stderr, "    trace: %s\n", event);
    if (fz_frozen())
        return;
    uint64_t h = fz_m.pending_hash;
    for (const char *c = event; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
    fz_m.pending_hash = (h ^ '\n') * 0x100000001b3ull;
    fz_m.pending_lines++;
}

void fz_note(int proc, const char *what, long rc)
{
    if (!fz_frozen()) {
        fz_m.digest = mix(fz_m.digest, ((uint64_t)proc << 40) ^ ((uint64_t)(uint8_t)what[0] << 32) ^
                                       (uint32_t)rc);
        fz_m.trace_hash = fz_m.pending_hash;
        fz_m.trace_lines = fz_m.pending_lines;
    }
    if (fz_verbose)
        fprintf(stderr, "  [p%d op %d] %s -> %ld%s%s\n", proc, fz_m.proc[proc].opi, what, rc,
                rc < 0 ? " " : "", rc < 0 ? weft_strerror((int)rc) : "");
}

/* ---- calls and cancellation ---- */

void fz_forever_begin(bool forever)
{
    if (forever)
        fz_m.in_forever++;
}

bool fz_result(int proc, int rc, bool forever, bool late_ok)
{
    if (rc == -ECANCELED && !fz_m.main_done) {
        /* Before main returned, only the deadlock detector cancels: every
         * live process waited without deadline, so this call did too. */
        FZ_CHECK(proc, forever, "-ECANCELED from a call with a deadline (or none that blocks) "
                                "before main returned: a deadlock declared while this process "
                                "could still run");
        if (!fz_m.cancel_seen) {
            fz_m.cancel_seen = true;
            FZ_CHECK(proc, fz_m.alive == fz_m.in_forever,
                     "deadlock declared while only %d of %d live processes waited without "
                     "deadline", fz_m.in_forever, fz_m.alive);
        }
    } else if (fz_m.cancel_seen && !fz_m.main_done && !late_ok) {
        fz_fail(proc, "a call returned %d (%s) after the deadlock was declared", rc,
                weft_strerror(rc));
    }
    if (forever)
        fz_m.in_forever--;
    return rc == -ECANCELED;
}

/* ---- channels ---- */

void fz_chan_begin(int ci, struct fz_snap *s)
{
    memset(s, 0, sizeof *s);
    s->ci = ci;
    if (ci == FZ_NOCHAN)
        return;
    struct fz_chan *c = &fz_m.chan[ci];
    s->closed = c->closed;
    s->destroyed = c->destroyed;
    s->version = c->version;
    s->closes = c->closes;
    s->releases = c->releases;
    s->closing = c->closing;
    s->releasing = c->releasing;
    s->busy = c->busy;
    c->busy++;
}

bool fz_maybe_closed(const struct fz_snap *s)
{
    if (s->ci == FZ_NOCHAN)
        return false;
    const struct fz_chan *c = &fz_m.chan[s->ci];
    return c->closed || s->closing > 0 || c->closes != s->closes;
}

bool fz_maybe_destroyed(const struct fz_snap *s)
{
    if (s->ci == FZ_NOCHAN)
        return true;
    const struct fz_chan *c = &fz_m.chan[s->ci];
    return c->destroyed || c->uncertain || s->releasing > 0 || c->releases != s->releases;
}

bool fz_quiet(const struct fz_snap *s)
{
    if (s->ci == FZ_NOCHAN)
        return true;
    const struct fz_chan *c = &fz_m.chan[s->ci];
    return !c->uncertain && s->busy == 0 && c->busy == 1 && c->version == s->version;
}

long fz_count(int ci)
{
    return fz_m.chan[ci].sent - fz_m.chan[ci].recvd;
}

void fz_chan_end(const struct fz_snap *s)
{
    if (s->ci == FZ_NOCHAN)
        return;
    fz_m.chan[s->ci].busy--;
    fz_m.chan[s->ci].version++;
}

/* ---- values ---- */

static uint64_t value_check(unsigned proc, unsigned inst, uint32_t seq)
{
    return mix(mix(fz_m.salt, proc), ((uint64_t)inst << 32) | seq);
}

void fz_value_new(int proc, int ci, struct fz_value *v)
{
    struct fz_proc *p = &fz_m.proc[proc];
    FZ_CHECK(proc, p->seq < FZ_SEQS, "out of sequence numbers");
    uint32_t seq = p->seq++;
    uint16_t inst = ci == FZ_NOCHAN ? 0xffff : (uint16_t)ci;
    *v = (struct fz_value){.proc = (uint16_t)proc, .inst = inst, .seq = seq,
                           .check = value_check((unsigned)proc, inst, seq)};
    vals[proc][seq].state = V_SENDING;
    vals[proc][seq].ci = (int8_t)ci;
}

void fz_value_sent(int proc, const struct fz_value *v, bool ok)
{
    uint8_t *st = &vals[v->proc][v->seq].state;
    FZ_CHECK(proc, *st == V_SENDING, "value %u/%u ended its send twice", v->proc, v->seq);
    if (ok) {
        *st = V_SENT;
        fz_m.chan[vals[v->proc][v->seq].ci].sent++;
    } else {
        FZ_CHECK(proc, !vals[v->proc][v->seq].recvd,
                 "value %u/%u was received, but its send failed", v->proc, v->seq);
        *st = V_FAILED;
    }
}

void fz_value_received(int proc, int ci, const struct fz_value *v)
{
    FZ_CHECK(proc, ci != FZ_NOCHAN, "a value came from handle 0");
    FZ_CHECK(proc, v->proc < fz_m.nproc && v->seq < fz_m.proc[v->proc].seq &&
                       v->check == value_check(v->proc, v->inst, v->seq),
             "received a value never sent or corrupt: proc %u inst %u seq %u check %#llx",
             v->proc, v->inst, v->seq, (unsigned long long)v->check);
    FZ_CHECK(proc, v->inst == ci, "value %u/%u was sent on channel %u, received from channel %d",
             v->proc, v->seq, v->inst, ci);
    struct vrec *r = &vals[v->proc][v->seq];
    FZ_CHECK(proc, r->state == V_SENDING || r->state == V_SENT,
             "value %u/%u received, but its send %s", v->proc, v->seq,
             r->state == V_FAILED ? "failed" : "never started");
    FZ_CHECK(proc, !r->recvd, "value %u/%u received twice", v->proc, v->seq);
    r->recvd = 1;
    int32_t *last = &last_seq[proc][ci][v->proc];
    FZ_CHECK(proc, (int32_t)v->seq > *last,
             "FIFO: received value %u/%u from channel %d after %u/%d", v->proc, v->seq, ci,
             v->proc, *last);
    *last = (int32_t)v->seq;
    fz_m.chan[ci].recvd++;
}

enum { POISON = 0xa5 };

void fz_value_poison(struct fz_value *v)
{
    memset(v, POISON, sizeof *v);
}

bool fz_value_poisoned(const struct fz_value *v)
{
    const unsigned char *b = (const unsigned char *)v;
    for (size_t i = 0; i < sizeof *v; i++)
        if (b[i] != POISON)
            return false;
    return true;
}

/* ---- the end ---- */

static void check_values(void)
{
    for (int p = 0; p < fz_m.nproc; p++) {
        /* Per channel: the values received are a prefix of those sent. */
        int gap[FZ_INSTS];
        for (int i = 0; i < FZ_INSTS; i++)
            gap[i] = -1;
        for (uint32_t s = 0; s < fz_m.proc[p].seq; s++) {
            struct vrec *r = &vals[p][s];
            FZ_CHECK(-1, r->state != V_SENDING, "the send of value %d/%u never ended", p, s);
            if (r->state != V_SENT)
                continue;
            FZ_CHECK(-1, r->recvd || !fz_m.chan[r->ci].drained,
                     "value %d/%u sent on channel %d was lost: main drained the channel", p, s,
                     r->ci);
            if (!r->recvd && gap[r->ci] < 0)
                gap[r->ci] = (int)s;
            FZ_CHECK(-1, !r->recvd || gap[r->ci] < 0,
                     "FIFO: value %d/%u on channel %d was received, %d/%d sent before it never was",
                     p, s, r->ci, p, gap[r->ci]);
        }
    }
}

void fz_model_finish(int rc, intptr_t result)
{
    if (rc == -ENOMEM) {
        FZ_CHECK(-1, fz_alloc_failed() && !fz_m.main_started,
                 "weft_run: -ENOMEM %s", fz_m.main_started ? "after main ran" : "with no failed allocation");
        return;
    }
    FZ_CHECK(-1, rc == 0 || rc == -EDEADLK, "weft_run returned %d (%s)", rc, weft_strerror(rc));
    FZ_CHECK(-1, fz_m.main_started, "weft_run returned %d but main never ran", rc);
    FZ_CHECK(-1, (rc == -EDEADLK) == fz_m.cancel_seen,
             rc ? "weft_run returned -EDEADLK, but no call was canceled before main returned"
                : "a call was canceled before main returned, but weft_run returned 0");
    FZ_CHECK(-1, rc != 0 || fz_m.main_detached || result == fz_m.proc[0].result,
             "weft_run's result %ld is not main's %ld", (long)result, (long)fz_m.proc[0].result);
    FZ_CHECK(-1, fz_m.alive == 0, "%d processes never ended", fz_m.alive);
    FZ_CHECK(-1, fz_m.in_forever == 0, "in_forever %d at the end", fz_m.in_forever);
    check_values();
}
