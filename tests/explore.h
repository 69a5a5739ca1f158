/* explore.h: runs a scenario under many deterministic schedules and reports
 * the first seed that fails, which then replays.
 *
 * A scenario is the main process of a weft_run; it returns 0 when every
 * check it made held, and anything else (a line of text in
 * explore_failure() says what) when one failed. For each seed the explorer
 * runs it in a fresh deterministic runtime, alternately under the RANDOM
 * and the PCT schedule (or only the one asked for), and stops at the first
 * failure: a nonzero result, or weft_run itself failing (a deadlock is
 * -EDEADLK). It prints how to replay that one run:
 *     WEFT_SEED=<n> [WEFT_SCHEDULE=pct] <test program> --filter <case>
 * and with WEFT_SEED set, the explorer runs that seed alone, so the same
 * command reruns exactly the failing execution (add a trace to watch it).
 */
#ifndef WEFT_EXPLORE_H
#define WEFT_EXPLORE_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

struct explore_opts {
    unsigned workers;     /* logical workers (0: 2) */
    uint64_t first_seed;  /* 0: 1 */
    uint64_t seeds;       /* how many runs */
    int schedule;         /* WEFT_SCHEDULE_RANDOM or _PCT; 0: both, alternately */
    unsigned pct_depth;   /* 0: weft's default (3) */
    unsigned pct_steps;   /* 0: the steps of one RANDOM run (calibrated) */
    void (*reset)(void);  /* if set: before each run, clears the scenario's records */
    intptr_t (*check)(void); /* if set: after each run that passed, checks what
                                only the end of the run shows (0: pass) */
};

/* The seed of the run in progress: scenarios derive their sizes from it, so
 * that a replay rebuilds the same scenario. */
static uint64_t explore_seed;

/* The failing run's explanation, written by EXPLORE_CHECK. */
static char explore_why[256];

__attribute__((format(printf, 3, 4))) static inline intptr_t
explore_fail_at(int line, const char *expr, const char *fmt, ...)
{
    if (!explore_why[0]) {
        int n = snprintf(explore_why, sizeof explore_why, "line %d: %s: ", line, expr);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(explore_why + n, sizeof explore_why - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return 1;
}

/* In a scenario (or a function returning its result): fails the run when
 * cond is false, saying why (a printf format and its arguments). */
#define EXPLORE_CHECK(cond, ...)                                            \
    do {                                                                    \
        if (!(cond))                                                        \
            return explore_fail_at(__LINE__, #cond, __VA_ARGS__);           \
    } while (0)

static inline void explore_config(weft_config *cfg, const struct explore_opts *o, uint64_t seed,
                                  int schedule)
{
    weft_config_init(cfg);
    cfg->workers = o->workers ? o->workers : 2;
    cfg->dump_signal = 0; /* no dump thread per run */
    cfg->seed = seed;
    cfg->schedule = schedule;
    cfg->pct_depth = o->pct_depth;
    cfg->pct_steps = o->pct_steps;
}

/* The trace of a calibration run: its lines start with the step count. */
static void explore_count_steps(void *ud, const char *event)
{
    unsigned *steps = ud;
    unsigned n = (unsigned)strtoul(event, NULL, 10);
    if (n > *steps)
        *steps = n;
}

/* PCT spreads its change points over the steps a run takes: one RANDOM
 * run counts them, when the caller did not say. */
static inline unsigned explore_calibrate(weft_proc_fn fn, void *arg, const struct explore_opts *o)
{
    weft_config cfg;
    explore_config(&cfg, o, 1, WEFT_SCHEDULE_RANDOM);
    unsigned steps = 0;
    cfg.trace = explore_count_steps;
    cfg.trace_ud = &steps;
    explore_seed = 1;
    if (o->reset)
        o->reset();
    intptr_t result;
    weft_run(fn, arg, &cfg, &result);
    return steps ? steps : 1;
}

/* Runs fn(arg) under each seed; returns 0 when every run passed, else the
 * failing seed (after printing it). */
static inline uint64_t explore(weft_proc_fn fn, void *arg, const struct explore_opts *o)
{
    uint64_t first = o->first_seed ? o->first_seed : 1, count = o->seeds;
    const char *env = getenv("WEFT_SEED");
    int only_schedule = o->schedule;
    if (env && *env) { /* replay one run */
        first = strtoull(env, NULL, 0);
        count = 1;
        const char *kind = getenv("WEFT_SCHEDULE");
        only_schedule = kind && strcmp(kind, "pct") == 0 ? WEFT_SCHEDULE_PCT : WEFT_SCHEDULE_RANDOM;
    }
    struct explore_opts calibrated = *o;
    if (!o->pct_steps && only_schedule != WEFT_SCHEDULE_RANDOM)
        calibrated.pct_steps = explore_calibrate(fn, arg, o);
    for (uint64_t seed = first; seed < first + count; seed++) {
        int schedule = only_schedule ? only_schedule
                                     : seed % 2 ? WEFT_SCHEDULE_RANDOM : WEFT_SCHEDULE_PCT;
        weft_config cfg;
        explore_config(&cfg, &calibrated, seed, schedule);
        explore_why[0] = '\0';
        explore_seed = seed;
        if (o->reset)
            o->reset();
        intptr_t result = 0;
        int rc = weft_run(fn, arg, &cfg, &result);
        if (rc == 0 && result == 0 && (!o->check || o->check() == 0))
            continue;
        fprintf(stderr,
                "explore: seed %" PRIu64 " (%s) failed: %s%s%s\n"
                "explore: replay with WEFT_SEED=%" PRIu64 "%s\n",
                seed, schedule == WEFT_SCHEDULE_PCT ? "pct" : "random",
                rc ? "weft_run returned " : "", rc ? weft_strerror(rc) : "",
                explore_why[0] ? explore_why : "", seed,
                schedule == WEFT_SCHEDULE_PCT ? " WEFT_SCHEDULE=pct" : "");
        return seed;
    }
    return 0;
}

/* How many seeds a CI run explores: at least 10,000 everywhere. */
#define EXPLORE_SEEDS 10000

#endif
