/* stress.h: what the stress scenarios share inside tools/stress_*.c: the
 * run's context and counters, failure records, a seeded generator, tagged
 * messages, the ledger of messages seen, and spawn/join with accounting
 * (stress_account.c). */
#ifndef WEFT_STRESS_H
#define WEFT_STRESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stress_core.h"
#include "weft.h"

/* Counters of a run. Processes count in a local array and add it to the
 * context once, at their end (stress_flush), so that the hot paths touch no
 * shared line; flaws (C_LOST..C_PHANTOM) are added at once, they are rare. */
enum {
    C_SENT,
    C_RECEIVED,
    C_LOST,
    C_DUPLICATED,
    C_CORRUPT,
    C_REORDERED,
    C_PHANTOM,
    C_RENDEZVOUS,
    C_SPAWNED,
    C_JOINED,
    C_YIELDS,
    C_TIMEOUTS,
    C_POLLS,
    C_COUNT
};

struct stress_block;

struct stress_ctx {
    const struct stress_params *p;
    uint64_t salt;                   /* mixed into every message tag */
    _Atomic uint64_t count[C_COUNT]; /* the run's totals */
    atomic_ulong failures;           /* every failure */
    atomic_int first_claimed;        /* set by the failure that writes first */
    atomic_int first_ready;          /* set once first is written */
    char first[320];                 /* valid once first_ready is set */
    _Atomic(struct stress_block *) blocks; /* stress_alloc's, freed after the stop */
};

/* Zeroed memory that lives until the runtime has stopped, freed by
 * stress_run: a process that a hang's cancellation leaves running after its
 * driver gave up on it still finds its arguments. Any process may call it.
 * Returns NULL (after recording the failure) without memory. */
void *stress_alloc(struct stress_ctx *c, size_t n, size_t size);
/* Frees every block of stress_alloc (stress_run, once the runtime stopped). */
void stress_free_all(struct stress_ctx *c);

/* Records a failure: counts it and, if it is the first, describes it. */
__attribute__((format(printf, 2, 3))) void stress_fail(struct stress_ctx *c, const char *fmt, ...);

/* A flaw in the accounting: n messages counted under counter (C_LOST ..
 * C_PHANTOM) and as failures; the first failure is described. */
__attribute__((format(printf, 4, 5))) void stress_flaw(struct stress_ctx *c, int counter, uint64_t n,
                                                       const char *fmt, ...);

/* Checks a weft call's result; a mismatch is a failure naming the call. */
bool stress_rc(struct stress_ctx *c, int rc, int expected, const char *what);

/* Adds a process's local counters to the run's, and clears them. */
void stress_flush(struct stress_ctx *c, uint64_t local[C_COUNT]);

/* ---- a seeded generator (splitmix64) --------------------------------------- */

static inline uint64_t stress_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t stress_rand(uint64_t *state)
{
    *state += 0x9e3779b97f4a7c15ull;
    return stress_mix(*state);
}

/* Uniform enough in 0..n-1 (n > 0). */
static inline uint64_t stress_below(uint64_t *state, uint64_t n)
{
    return stress_rand(state) % n;
}

/* The generator state of process `who` of a run. */
static inline uint64_t stress_seed_for(const struct stress_ctx *c, uint64_t who)
{
    return stress_mix(c->p->seed * 0x9e3779b97f4a7c15ull + who + 1);
}

/* ---- tagged messages ----------------------------------------------------------- */

/* One message: its sender, its sequence number among that sender's, and a
 * tag that depends on both and on the run. 16 bytes. */
struct stress_msg {
    uint32_t from;
    uint32_t seq;
    uint64_t tag;
};

static inline struct stress_msg stress_msg_make(const struct stress_ctx *c, uint32_t from, uint32_t seq)
{
    uint64_t tag = stress_mix(c->salt ^ ((uint64_t)from << 32 | seq));
    return (struct stress_msg){from, seq, tag};
}

/* True when m is intact and comes from one of nfrom senders with fewer than
 * nseq messages each; otherwise records it as corrupt. */
bool stress_msg_check(struct stress_ctx *c, const struct stress_msg *m, uint32_t nfrom,
                      uint32_t nseq);

/* The check of a channel with one receiver: each sender's messages arrive
 * in order, so *next (the sender's next sequence number, starting at 0) must
 * be m's. A gap is counted lost, an older message as reordered (or
 * duplicated: either way it came twice or late). */
static inline void stress_in_order(struct stress_ctx *c, uint32_t *next, const struct stress_msg *m)
{
    if (m->seq == *next) {
        ++*next;
    } else if (m->seq > *next) {
        stress_flaw(c, C_LOST, m->seq - *next, "sender %u: message %u arrived when %u was due",
                    m->from, m->seq, *next);
        *next = m->seq + 1;
    } else {
        stress_flaw(c, C_REORDERED, 1, "sender %u: message %u arrived again or late, after %u",
                    m->from, m->seq, *next - 1);
    }
}

/* ---- the ledger: one bit per message that may arrive -------------------------- */

struct stress_ledger {
    _Atomic uint64_t *words;
    uint64_t bits;
};

/* Makes a ledger of `bits` clear bits (stress_alloc). Returns false without memory. */
bool stress_ledger_init(struct stress_ctx *c, struct stress_ledger *l, uint64_t bits);

/* Marks bit i; false if it was marked already (a duplicate). Any thread. */
static inline bool stress_ledger_mark(struct stress_ledger *l, uint64_t i)
{
    uint64_t m = (uint64_t)1 << (i & 63);
    return !(atomic_fetch_or_explicit(&l->words[i >> 6], m, memory_order_relaxed) & m);
}

/* Bits marked in [from, to). Call once the processes that mark have ended. */
uint64_t stress_ledger_marked(struct stress_ledger *l, uint64_t from, uint64_t to);

/* ---- processes and channels with accounting ----------------------------------- */

/* Spawns fn(arg), joinable, named "<name> <index>" (shown by weft_dump),
 * counted under C_SPAWNED in local; worker: a worker to start on (modulo the
 * workers there are), or -1. Returns the pid, or 0 after recording the
 * failure. */
weft_pid stress_spawn(struct stress_ctx *c, uint64_t local[C_COUNT], weft_proc_fn fn, void *arg,
                      int worker, const char *name, uint32_t index);

/* Joins pid (deadline: first try, then forever) and checks its result;
 * counted under C_JOINED when it is the expected one. */
bool stress_join(struct stress_ctx *c, uint64_t local[C_COUNT], weft_pid pid, intptr_t expected,
                 int64_t first_deadline);

/* Makes a channel of struct stress_msg (every scenario's element) holding up
 * to cap of them (0: rendezvous); 0 after recording a failure. */
weft_chan stress_chan(struct stress_ctx *c, size_t cap);

/* Ends a channel at the end of a scenario, once its users have ended:
 * nothing may be left in it (a receive gives -EPIPE if it was closed,
 * -ETIMEDOUT if not), then releases it. */
void stress_chan_end(struct stress_ctx *c, weft_chan ch, bool closed);

/* Shuffles a[0..n-1] (the order processes are spawned in). */
void stress_shuffle(uint64_t *state, uint32_t *a, size_t n);

/* ---- the scenarios: each is the body of the driver process ------------------- */

intptr_t stress_mesh(struct stress_ctx *c);
intptr_t stress_select(struct stress_ctx *c);
intptr_t stress_close(struct stress_ctx *c);
intptr_t stress_churn(struct stress_ctx *c);
intptr_t stress_ring(struct stress_ctx *c);
intptr_t stress_burst(struct stress_ctx *c);

#endif
