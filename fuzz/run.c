/* run.c: fz_run: one fuzz input, start to end: decode, install the counting
 * allocator, run the program under weft_run, check the final invariants
 * and that weft gave back every byte; with the "twice" bit, run it again
 * and require the same trace and the same results (deterministic mode). */
#include <stdlib.h>

#include "alloc.h"
#include "interp.h"
#include "model.h"

/* Digest of the trace lines of a deterministic run. */
struct trace_sum {
    uint64_t hash;
    unsigned long lines;
};

static void on_trace(void *ud, const char *event)
{
    struct trace_sum *t = ud;
    if (fz_frozen())
        return;
    for (const char *c = event; *c; c++)
        t->hash = (t->hash ^ (unsigned char)*c) * 0x100000001b3ull;
    t->hash = (t->hash ^ '\n') * 0x100000001b3ull;
    t->lines++;
    if (fz_verbose > 1)
        fprintf(stderr, "    trace: %s\n", event);
}

/* One run; the model's digest and the trace's come back through the args. */
static void run_once(const struct fz_program *prog, uint64_t *digest, struct trace_sum *trace)
{
    fz_model_init(prog);
    fz_alloc_install(prog->fail_alloc);
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = prog->workers;
    cfg.schedule = prog->schedule;
    cfg.seed = prog->seed;
    cfg.pct_depth = prog->pct_depth;
    cfg.pct_steps = prog->pct_steps;
    cfg.dump_signal = 0; /* no signal handling per run */
    *trace = (struct trace_sum){.hash = 0xcbf29ce484222325ull};
    cfg.trace = on_trace;
    cfg.trace_ud = trace;
    intptr_t result = -1;
    int rc = weft_run(fz_main, NULL, &cfg, &result);
    if (fz_verbose)
        fprintf(stderr, "fuzz: weft_run returned %d (%s), result %#lx, %lu trace lines\n", rc,
                weft_strerror(rc), (long)result, trace->lines);
    fz_model_finish(rc, result);
    FZ_CHECK(-1, fz_alloc_live_blocks() == 0 && fz_alloc_live_bytes() == 0,
             "leak: weft still holds %ld bytes in %ld blocks after weft_run returned",
             fz_alloc_live_bytes(), fz_alloc_live_blocks());
    *digest = fz_m.digest;
}

int fz_run(const uint8_t *data, size_t size)
{
    static int once;
    if (!once) {
        once = 1;
        unsetenv("WEFT_STRICT"); /* misuse is what the programs test: codes, not aborts */
    }
    static struct fz_program prog;
    fz_decode(data, size, &prog);
    /* FUZZ_MAX_WORKERS=n caps the logical workers: a diagnostic knob, to fuzz
     * past a known bug of multi-worker schedules while it is being fixed. */
    const char *cap = getenv("FUZZ_MAX_WORKERS");
    if (cap && atoi(cap) > 0 && prog.workers > (unsigned)atoi(cap))
        prog.workers = (unsigned)atoi(cap);
    if (fz_verbose)
        fz_print(&prog, stderr);
    uint64_t d1, d2;
    struct trace_sum t1, t2;
    run_once(&prog, &d1, &t1);
    if (prog.twice) {
        run_once(&prog, &d2, &t2);
        FZ_CHECK(-1, d1 == d2 && t1.hash == t2.hash && t1.lines == t2.lines,
                 "not deterministic: the same seed gave %s (%lu then %lu trace lines)",
                 d1 != d2 ? "other results" : "another trace", t1.lines, t2.lines);
    }
    return 0;
}
