/* model.h: the shadow state of a fuzz program and the invariants it checks.
 *
 * The processes of a fuzz program share one model. They run on one OS thread
 * (one worker, or a deterministic schedule), and a process leaves the CPU
 * only inside a weft call, so model updates need no lock; but between the
 * moment a call takes effect and the moment its caller records it, other
 * processes may run (a blocked call is completed by another process; a
 * deterministic schedule preempts at the entry of calls). The model is
 * therefore exact only where nothing else overlapped, and elsewhere accepts
 * every result some order of the overlapping calls allows:
 *  - every call on a channel is bracketed by fz_chan_begin/fz_chan_end,
 *    which count the calls in flight and those started (monotone), so that
 *    a call can tell whether a close or a release overlapped with it;
 *  - a call is "quiet" when no other call on its channel was in flight or
 *    ended while it ran: its result must then be exactly the model's.
 *
 * Invariants (a violation prints what and where, then aborts):
 *  - every call returns one of its documented codes, the one the model
 *    predicts when quiet (poll results, priority select, len, cap, stale
 *    handles, release twice, close twice, join twice, self-join, ...);
 *  - every value received was sent (its send is in flight or succeeded), on
 *    that channel, intact, at most once; a failed send was never received;
 *  - per receiver, values from one sender on one channel arrive in the order
 *    sent; per sender and channel, the values received are a prefix of those
 *    sent successfully (buffer order); on a channel main closed and drained,
 *    every value sent was received (none lost);
 *  - a canceled call before main returned means a real deadlock: every live
 *    process was in a call without deadline, nothing completed afterwards,
 *    and weft_run returns -EDEADLK exactly then;
 *  - every process ends; weft_run returns 0 or -EDEADLK (or -ENOMEM when an
 *    allocation failed before main ran) with main's result; after it, no
 *    memory is held through the allocation hook.
 */
#ifndef FZ_MODEL_H
#define FZ_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "program.h"
#include "weft.h"

enum {
    FZ_INSTS = 32,              /* channels made per run, at most */
    FZ_SEQS = FZ_OPS * 4 + 8,   /* values sent per process, at most */
    FZ_NOCHAN = -1              /* no channel: the slot holds handle 0 */
};

/* The element every channel carries (FZ_ELEM bytes). */
struct fz_value {
    uint16_t proc; /* sender's process slot */
    uint16_t inst; /* channel it was sent on */
    uint32_t seq;  /* sender's sequence number */
    uint64_t check; /* hash of the above and the run's salt */
};
#define FZ_ELEM sizeof(struct fz_value)

/* One channel the program made. */
struct fz_chan {
    weft_chan h;
    int cap;
    int refs;            /* committed references: 1 at make, +retain, -release */
    bool closed;         /* a close returned 0 */
    bool destroyed;      /* a release took the last reference */
    bool uncertain;      /* lifecycle calls overlapped: no exact checks */
    bool drained;        /* main closed it and received until -EPIPE */
    int busy;            /* calls on it in flight */
    unsigned version;    /* bumped when a call on it ends */
    unsigned closes, releases, retains; /* calls started, monotone */
    int closing, releasing, retaining;  /* ... and in flight */
    long sent, recvd;    /* committed successful sends and receives */
};

enum fz_pstate { FZ_P_FREE, FZ_P_SPAWNING, FZ_P_RUNNING, FZ_P_DONE, FZ_P_FAILED };

/* One process slot. */
struct fz_proc {
    enum fz_pstate state;
    int body;
    weft_pid pid;        /* 0 until known */
    bool detached;       /* committed (spawned so, or weft_detach returned 0) */
    bool joined;         /* a join returned 0 */
    bool named;
    bool pinned;         /* must run on worker home */
    int home;            /* -1 until known */
    unsigned joins, detaches; /* calls started, monotone */
    int joining, detaching;   /* ... and in flight */
    intptr_t result;     /* what it returns (or passes to weft_exit) */
    uint32_t seq;        /* sequence number of its next value */
    int opi;             /* index of the op it runs, for messages */
};

struct fz_model {
    const struct fz_program *prog;
    uint64_t salt;
    struct fz_chan chan[FZ_INSTS];
    int nchan;
    int slot[FZ_SLOTS];  /* channel in each slot, or FZ_NOCHAN */
    struct fz_proc proc[FZ_PROCS];
    int nproc;
    int alive;           /* processes spawned and not yet ended */
    int in_forever;      /* processes inside a call without deadline */
    bool main_started, main_done;
    bool main_detached;  /* main detached itself: weft_run has no result to give */
    bool cancel_seen;    /* a call was canceled before main returned */
    uint64_t digest;     /* every result in order: a deterministic run's fingerprint */
    /* The schedule's trace lines, hashed: those up to the last result noted
     * (committed) and all of them (pending). */
    uint64_t trace_hash, pending_hash;
    unsigned long trace_lines, pending_lines;
};

extern struct fz_model fz_m;

/* Reports a broken invariant and aborts. */
_Noreturn void fz_fail(int proc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define FZ_CHECK(proc, cond, ...)       \
    do {                                \
        if (!(cond))                    \
            fz_fail((proc), __VA_ARGS__); \
    } while (0)

void fz_model_init(const struct fz_program *prog);
/* FUZZ_AVOID=shutdown-race, and main has ended or a deadlock was declared:
 * the digests stop here (trace lines since the last result are dropped). */
bool fz_frozen(void);
/* Folds a result into the digest (and prints it when verbose). */
void fz_note(int proc, const char *what, long rc);
/* Folds a line of the schedule's trace into the trace's digest. */
void fz_trace_line(const char *event);

/* ---- calls and cancellation ---- */

/* Around a call that may block without deadline (forever): counts it. */
void fz_forever_begin(bool forever);
/* The first thing done with every result: -ECANCELED before main returned
 * must be a deadlock (see above); after one, results must be cancellations
 * (late_ok: but for a join, which may find its process returned). Ends the
 * forever count. Returns true if the process must stop (rc is -ECANCELED). */
bool fz_result(int proc, int rc, bool forever, bool late_ok);

/* ---- channels ---- */

/* What a call on a channel saw when it started. */
struct fz_snap {
    int ci; /* the channel, or FZ_NOCHAN */
    bool closed, destroyed;
    unsigned version, closes, releases;
    int closing, releasing, busy;
};
void fz_chan_begin(int ci, struct fz_snap *s);
/* Whether a close / a destruction may have happened by now. */
bool fz_maybe_closed(const struct fz_snap *s);
bool fz_maybe_destroyed(const struct fz_snap *s);
/* Nothing else touched the channel during the call. */
bool fz_quiet(const struct fz_snap *s);
/* Elements buffered, per the model (exact when quiet). */
long fz_count(int ci);
void fz_chan_end(const struct fz_snap *s);

/* ---- values ---- */

/* A fresh value from proc for channel ci, marked as being sent. */
void fz_value_new(int proc, int ci, struct fz_value *v);
/* The send of v ended: sent (ok) or not. */
void fz_value_sent(int proc, const struct fz_value *v, bool ok);
/* proc received v from channel ci. */
void fz_value_received(int proc, int ci, const struct fz_value *v);
/* Fills a receive buffer with a pattern that no value has / checks it. */
void fz_value_poison(struct fz_value *v);
bool fz_value_poisoned(const struct fz_value *v);

/* ---- the end ---- */

/* After weft_run returned rc with main's result: the final invariants. */
void fz_model_finish(int rc, intptr_t result);

#endif
