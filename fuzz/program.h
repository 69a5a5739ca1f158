/* program.h: the fuzz programs: how bytes decode into a small concurrent
 * program over weft's processes and channels, and the entry point that runs
 * one under weft_run and checks it (fuzz.c and replay.c both call fz_run).
 *
 * Encoding. Every byte string is a valid program; missing bytes read as 0.
 *
 *   header, 12 bytes:
 *     [0]     bits 0-1: schedule: 0 RANDOM, 1 PCT, 2 RANDOM, 3 THREADS (one
 *             worker: a model shared by the processes needs one OS thread)
 *             bits 2-3: logical workers - 1 (deterministic schedules only)
 *             bit 4:    run the program twice and require the same trace and
 *                       the same results (deterministic schedules only)
 *     [1..4]  seed, little-endian; the run uses seed + 1 (never 0)
 *     [5]     pct_depth (byte % 8; 0: the default)
 *     [6]     pct_steps / 8 (0: the default)
 *     [7]     allocation failure: bit 7 set: allocation number
 *             2 * (byte & 0x7f) + 1 since the start of weft_run fails, once
 *     [8..11] channel slot i's initial channel: byte % 6 == 0: none, else a
 *             channel of capacity (byte % 6) - 1, made by main before its ops
 *   then operations of 3 bytes [code, a, b], op = code & 15, m = code >> 4:
 *     0  END      the following ops belong to the next body (8 bodies;
 *                 body 0 is main's, the rest run in spawned processes)
 *     1  SPAWN    a process running body 1 + a % 7 in the next free process
 *                 slot (8 slots, main's included); m&1 detached, m&2 named,
 *                 m&4 pinned, m&8 on worker b % (workers + 1) (= workers:
 *                 out of range, -EINVAL)
 *     2  MAKE     a new channel in slot a&3, capacity (a>>2) % 5; m%4 == 1:
 *                 element size 0 (-EINVAL), m%4 == 2: too large (-E2BIG)
 *     3  SEND     on slot a&3, deadline class (a>>2)&3; m&1: wrong size
 *     4  RECV     as SEND
 *     5  CLOSE    slot a&3
 *     6  RELEASE  slot a&3 (the slot keeps the handle: later uses are stale)
 *     7  RETAIN   slot a&3
 *     8  SELECT   fair; 9 SELECT_PRI: priority. (m&3) + 1 cases, deadline
 *                 class (m>>2)&3; case i is nibble i of a | b << 8: bit 0
 *                 send (else receive), bits 1-2 slot, bit 3 disabled
 *     10 YIELD
 *     11 SLEEP    deadline class a&3
 *     12 JOIN     process slot a&7, deadline class (a>>3)&3
 *     13 DETACH   process slot a&7
 *     14 QUERY    m%8: 0 weft_chan_len, 1 weft_chan_cap of slot a&3,
 *                 2 weft_proc_name of process slot a&7, 3 weft_self and
 *                 weft_worker_id, 4 weft_dump (to /dev/null), 5 weft_workers,
 *                 6 and 7 as 0 and 1
 *     15 EXIT     weft_exit with the process's expected result
 *   Deadline classes: 0: 0 (poll), 1: now + 20 us, 2: now + 200 us,
 *   3: WEFT_FOREVER. A process slot or channel slot that holds nothing is
 *   named by handle 0 (-ESRCH, -EBADF).
 * Each body keeps its first FZ_OPS ops. Main, after its ops, closes every
 * channel made so far and drains it (unless the run was canceled).
 */
#ifndef FZ_PROGRAM_H
#define FZ_PROGRAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum {
    FZ_PROCS = 8,  /* process slots, main's (0) included */
    FZ_BODIES = 8, /* op lists; body 0 is main's */
    FZ_SLOTS = 4,  /* channel slots */
    FZ_OPS = 64,   /* ops kept per body */
    FZ_HEADER = 12,
    FZ_OP_BYTES = 3
};

enum fz_opcode {
    FZ_END, FZ_SPAWN, FZ_MAKE, FZ_SEND, FZ_RECV, FZ_CLOSE, FZ_RELEASE, FZ_RETAIN,
    FZ_SELECT, FZ_SELECT_PRI, FZ_YIELD, FZ_SLEEP, FZ_JOIN, FZ_DETACH, FZ_QUERY, FZ_EXIT
};

struct fz_op {
    uint8_t op; /* enum fz_opcode */
    uint8_t m;  /* the code's high nibble */
    uint8_t a, b;
};

struct fz_program {
    int schedule;         /* WEFT_SCHEDULE_* */
    unsigned workers;     /* 1 for THREADS */
    int twice;            /* run twice and compare (deterministic schedules) */
    uint64_t seed;        /* never 0 */
    unsigned pct_depth, pct_steps;
    unsigned fail_alloc;  /* 0: none, else the allocation number that fails */
    int init_cap[FZ_SLOTS]; /* -1: no initial channel */
    unsigned nops[FZ_BODIES];
    struct fz_op ops[FZ_BODIES][FZ_OPS];
};

/* Decodes size bytes at data (any bytes) into *p. */
void fz_decode(const uint8_t *data, size_t size, struct fz_program *p);

/* Writes *p to f, one op a line, for reading a crash input. */
void fz_print(const struct fz_program *p, FILE *f);

/* The name of an op code. */
const char *fz_op_name(int op);

/* Decodes and runs one input under weft_run with the counting allocator,
 * checks every invariant (model.h) and returns 0; a violation prints what
 * went wrong and calls abort(). Not reentrant: one input at a time. */
int fz_run(const uint8_t *data, size_t size);

/* Nonzero: fz_run prints the program and every op's result to stderr
 * (2: and the deterministic schedule's trace). */
extern int fz_verbose;

/* The input's name, if known: a violation names it. */
extern const char *fz_input_name;

/* Whether the environment's FUZZ_AVOID (a comma-separated list) names a
 * known bug whose trigger the interpreter should leave out, so that fuzzing
 * can go on while the bug is being fixed. Names: main-self-detach (main
 * does not detach itself), shutdown-race (the twice check compares the runs
 * only up to main's end). */
int fz_avoid(const char *bug);

#endif
