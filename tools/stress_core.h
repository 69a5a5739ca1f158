/* stress_core.h: the stress scenarios that tests/test-stress.c runs at CI
 * sizes and weft-soak runs for minutes. A scenario starts a runtime of its
 * own, runs its processes, checks an exact accounting of every message and
 * every process, stops the runtime and returns a tally.
 *
 * The accounting is exact, not statistical: every message carries its
 * sender and sequence number and a tag derived from both (a torn or stale
 * copy shows), and a scenario knows which messages must arrive: on a
 * channel with one receiver, each sender's messages in order (any loss,
 * duplicate or reordering shows at the next message); elsewhere, each
 * message marks a bit of a ledger (a second mark is a duplicate, a bit left
 * clear is a loss). Every spawned process is joined and its result checked.
 *
 * Nothing here uses a test framework: a failure is counted in the tally
 * and the first one described in words, so that the soak can report it and
 * a test can assert on it. */
#ifndef WEFT_STRESS_CORE_H
#define WEFT_STRESS_CORE_H

#include <stdint.h>

enum stress_kind {
    STRESS_MESH,   /* senders and receivers on mixed rendezvous and buffered channels */
    STRESS_SELECT, /* producers, select routers (deadlines, polls) and sinks */
    STRESS_CLOSE,  /* channels closed while their senders and receivers are busy */
    STRESS_CHURN,  /* waves of spawn, report, join; nested spawns */
    STRESS_RING,   /* tokens around rings of rendezvous channels: switch-heavy */
    STRESS_BURST,  /* fan-in over large buffers: message-heavy */
    STRESS_KINDS
};

struct stress_params {
    int kind;            /* enum stress_kind */
    unsigned workers;    /* 1..WEFT_WORKERS_MAX */
    long procs;          /* processes to run besides the driver (each kind rounds
                          * it to its shape; at least 3) */
    long msgs;           /* messages per sender (RING: hops per ring), >= 1 */
    uint64_t seed;       /* the runtime's seed and the scenario's own choices */
    int64_t watchdog_ns; /* a run still going after this long is a hang: the
                          * processes are dumped and canceled. 0: 120 s */
};

struct stress_tally {
    uint64_t sent;       /* sends that returned 0 */
    uint64_t received;   /* messages received (each checked) */
    uint64_t lost;       /* sent but never received */
    uint64_t duplicated; /* received more than once */
    uint64_t corrupt;    /* received with a wrong tag or sender */
    uint64_t reordered;  /* out of its sender's order where order is due */
    uint64_t phantom;    /* received although its send failed (closed channel) */
    uint64_t rendezvous; /* transfers on rendezvous channels (each parks a process) */
    uint64_t spawned;    /* processes spawned, the driver included */
    uint64_t joined;     /* processes joined with the result they had to give */
    uint64_t yields;     /* weft_yield calls */
    uint64_t timeouts;   /* operations with a future deadline that expired */
    uint64_t polls;      /* operations with deadline 0 that found nothing */
    uint64_t failures;   /* every failure, the counts above included */
    int stop_rc;         /* what weft_stop returned */
    char first[320];     /* the first failure in words, or "" */
};

/* The kind's name ("mesh", "select", ...), or "?". */
const char *stress_kind_name(int kind);

/* Switches counted for a tally: a proxy, see stress_core.c. */
uint64_t stress_switches(const struct stress_tally *t);

/* Runs one scenario from a thread outside any runtime (none may be
 * running): fills *t (zeroed first) and returns 0 when nothing failed, or
 * -1 (t->first says why). The caller owns both structures. */
int stress_run(const struct stress_params *p, struct stress_tally *t);

/* Adds the counts of a to sum (stop_rc: the first nonzero one; first: the
 * first failure described). */
void stress_tally_add(struct stress_tally *sum, const struct stress_tally *a);

#endif
