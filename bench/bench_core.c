/* bench_core.c: the core runtime benchmarks: switch, spawn, memory, idle. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "bench.h"

/* ---- switch: two processes alternately yield on one worker ---------------- */

struct switch_state {
    long yields_each;
    double seconds;
};

static intptr_t yielder(void *arg)
{
    struct switch_state *s = arg;
    for (long i = 0; i < s->yields_each; i++)
        weft_yield();
    return s->yields_each;
}

static intptr_t switch_main(void *arg)
{
    struct switch_state *s = arg;
    weft_pid a, b;
    int64_t t0 = weft_now();
    if (weft_spawn(&a, yielder, s, NULL) || weft_spawn(&b, yielder, s, NULL))
        return -1;
    intptr_t ra = 0, rb = 0;
    weft_join(a, &ra, WEFT_FOREVER);
    weft_join(b, &rb, WEFT_FOREVER);
    s->seconds = (weft_now() - t0) / 1e9;
    return ra + rb;
}

static int run_switch(const struct bench_args *args, struct bench_result *out)
{
    struct switch_state s = {.yields_each = args->n / 2};
    intptr_t total = bench_run(args, switch_main, &s);
    if (total != 2 * s.yields_each) {
        fprintf(stderr, "switch: %ld yields done, %ld expected\n", (long)total, 2 * s.yields_each);
        return 1;
    }
    out->seconds = s.seconds;
    out->value = s.seconds * 1e9 / (double)total;
    return 0;
}

const struct bench bench_switch = {"switch", 10000000, "ns per switch", run_switch};

/* ---- spawn: spawn N trivial processes, then wait for all of them ------------
 * As Go's peer does with a WaitGroup: detached processes count themselves
 * done; the spawner then waits for the count (by short sleeps: weft has no
 * wait-group, and channels come later). */

struct spawn_state {
    long n;
    atomic_long done;
    double seconds;
};

static intptr_t trivial(void *arg)
{
    struct spawn_state *s = arg;
    atomic_fetch_add_explicit(&s->done, 1, memory_order_relaxed);
    return 0;
}

static intptr_t spawn_main(void *arg)
{
    struct spawn_state *s = arg;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = 1;
    int64_t t0 = weft_now();
    for (long i = 0; i < s->n; i++)
        if (weft_spawn(NULL, trivial, s, &opts) != 0)
            return -1;
    while (atomic_load(&s->done) < s->n)
        weft_sleep(weft_now() + 20000);
    s->seconds = (weft_now() - t0) / 1e9;
    return atomic_load(&s->done);
}

static int run_spawn(const struct bench_args *args, struct bench_result *out)
{
    struct spawn_state s = {.n = args->n};
    intptr_t done = bench_run(args, spawn_main, &s);
    if (done != args->n) {
        fprintf(stderr, "spawn: %ld processes ran, %ld expected\n", (long)done, args->n);
        return 1;
    }
    out->seconds = s.seconds;
    out->value = s.seconds * 1e9 / (double)args->n;
    return 0;
}

const struct bench bench_spawn = {"spawn", 1000000, "ns per process", run_spawn};

/* ---- memory: N processes blocked at once; bytes of RSS per process ---------- */

struct memory_state {
    long n;
    weft_chan gate;
    atomic_long blocked;
    long rss_before, rss_blocked;
    double seconds;
};

/* Blocks on a receive until the gate channel is closed. */
static intptr_t blocker(void *arg)
{
    struct memory_state *s = arg;
    char c;
    atomic_fetch_add_explicit(&s->blocked, 1, memory_order_relaxed);
    return weft_chan_recv(s->gate, &c, 1, WEFT_FOREVER) == -EPIPE ? 0 : 1;
}

static intptr_t memory_main(void *arg)
{
    struct memory_state *s = arg;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = 1;
    if (weft_chan_make(&s->gate, 1, 0) != 0)
        return -1;
    s->rss_before = bench_rss();
    int64_t t0 = weft_now();
    for (long i = 0; i < s->n; i++)
        if (weft_spawn(NULL, blocker, s, &opts) != 0)
            return -1;
    while (atomic_load(&s->blocked) < s->n)
        weft_sleep(weft_now() + 1000000);
    s->seconds = (weft_now() - t0) / 1e9;
    weft_sleep(weft_now() + 100000000); /* let every worker settle */
    s->rss_blocked = bench_rss();
    weft_chan_close(s->gate); /* releases every blocked process */
    weft_chan_release(s->gate);
    return 0;
}

static int run_memory(const struct bench_args *args, struct bench_result *out)
{
    struct memory_state s = {.n = args->n};
    if (bench_run(args, memory_main, &s) != 0 || atomic_load(&s.blocked) != s.n) {
        fprintf(stderr, "memory: %ld of %ld processes blocked\n", atomic_load(&s.blocked), s.n);
        return 1;
    }
    out->seconds = s.seconds;
    out->value = (double)(s.rss_blocked - s.rss_before) / (double)s.n;
    return 0;
}

const struct bench bench_memory = {"memory", 100000, "bytes per blocked process", run_memory};

/* ---- idle: one process sleeps N ms; CPU used meanwhile, % of one core ------ */

struct idle_state {
    long ms;
    double seconds, cpu_seconds;
};

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static intptr_t idle_main(void *arg)
{
    struct idle_state *s = arg;
    weft_sleep(weft_now() + 50000000); /* let the workers park first */
    double cpu0 = cpu_now();
    int64_t t0 = weft_now();
    int err = weft_sleep(t0 + s->ms * 1000000);
    int64_t t1 = weft_now();
    s->cpu_seconds = cpu_now() - cpu0;
    s->seconds = (t1 - t0) / 1e9;
    return err == 0 && t1 - t0 >= s->ms * 1000000 ? 0 : -1;
}

static int run_idle(const struct bench_args *args, struct bench_result *out)
{
    struct idle_state s = {.ms = args->n};
    if (bench_run(args, idle_main, &s) != 0) {
        fprintf(stderr, "idle: the sleep ended early or failed\n");
        return 1;
    }
    out->seconds = s.seconds;
    out->value = 100.0 * s.cpu_seconds / s.seconds;
    return 0;
}

const struct bench bench_idle = {"idle", 2000, "CPU % of one core while idle", run_idle};
