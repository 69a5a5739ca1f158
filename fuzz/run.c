/* run.c: fz_run: one fuzz input, start to end: decode, install the counting
 * allocator, run the program under weft_run, check the final invariants
 * and that weft gave back every byte; with the "twice" bit, run it again
 * and require the same trace and the same results (deterministic mode). */
#include <stdlib.h>

#include "alloc.h"
#include "interp.h"
#include "model.h"

static void on_trace(void *ud, const char *event)
{
    (void)ud;
    fz_trace_line(event);
}

/* What a deterministic run must repeat. */
struct outcome {
    uint64_t digest, trace_hash;
    unsigned long trace_lines;
};

/* One run. */
static void run_once(const struct fz_program *prog, struct outcome *out)
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
    cfg.trace = on_trace;
    intptr_t result = -1;
    int rc = weft_run(fz_main, NULL, &cfg, &result);
    if (fz_verbose)
        fprintf(stderr, "fuzz: weft_run returned %d (%s), result %#lx, %lu trace lines\n", rc,
                weft_strerror(rc), (long)result, fz_m.pending_lines);
    fz_model_finish(rc, result);
    FZ_CHECK(-1, fz_alloc_live_blocks() == 0 && fz_alloc_live_bytes() == 0,
             "leak: weft still holds %ld bytes in %ld blocks after weft_run returned",
             fz_alloc_live_bytes(), fz_alloc_live_blocks());
    *out = (struct outcome){fz_m.digest, fz_m.trace_hash, fz_m.trace_lines};
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
    struct outcome o1, o2;
    run_once(&prog, &o1);
    if (prog.twice) {
        run_once(&prog, &o2);
        FZ_CHECK(-1, o1.digest == o2.digest && o1.trace_hash == o2.trace_hash,
                 "not deterministic: the same seed gave %s (%lu then %lu trace lines)",
                 o1.digest != o2.digest ? "other results" : "another trace", o1.trace_lines,
                 o2.trace_lines);
    }
    return 0;
}
