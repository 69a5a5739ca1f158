/* bench.h: the contract between weft-bench's driver and its benchmarks
 * (see ../shared/BENCH.md for names, parameters and the output line). */
#ifndef WEFT_BENCH_H
#define WEFT_BENCH_H

#include <stdint.h>

#include "weft.h"

struct bench_args {
    unsigned workers;   /* --workers, 0 = one per CPU */
    long n;             /* --n */
    unsigned stages;    /* --stages, pipeline only; 0 = its default */
};

/* What a benchmark measured: the driver prints it in the BENCH.md line. */
struct bench_result {
    double seconds;     /* total measured time */
    double value;       /* ns per op, or bytes per process, or CPU % */
};

struct bench {
    const char *name;
    long default_n;
    const char *unit;   /* what value means, for --list */
    /* Runs the benchmark; returns 0, or nonzero after printing to stderr why
     * the result is wrong. */
    int (*run)(const struct bench_args *args, struct bench_result *out);
};

/* Benchmarks, one file per family. */
extern const struct bench bench_switch, bench_spawn, bench_memory, bench_idle;
extern const struct bench bench_pingpong, bench_ring, bench_skynet, bench_fanin, bench_poll;
extern const struct bench bench_mailbox, bench_actor_pingpong, bench_actor_spawn, bench_actor_memory,
    bench_selective;
extern const struct bench bench_pipeline;

/* Runs fn(arg) as the main process of a runtime with args->workers workers;
 * returns fn's result, or a negative weft error. */
intptr_t bench_run(const struct bench_args *args, weft_proc_fn fn, void *arg);

/* Bytes of resident memory of this program (VmRSS). */
long bench_rss(void);

#endif
