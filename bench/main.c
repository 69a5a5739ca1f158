/* main.c: weft-bench, the benchmark driver. Usage:
 *     weft-bench NAME [--workers W] [--n N]
 *     weft-bench pipeline [--workers W] [--n N] [--stages S]
 *     weft-bench --list
 * Prints one line, last: <bench> weft <workers> <N> <total_seconds> <value>. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static const struct bench *const benches[] = {
    &bench_switch, &bench_spawn, &bench_pingpong, &bench_ring, &bench_skynet, &bench_fanin,
    &bench_memory, &bench_idle, &bench_poll,
    &bench_mailbox, &bench_actor_pingpong, &bench_actor_spawn, &bench_actor_memory, &bench_selective,
    &bench_pipeline,
};
enum { NBENCH = sizeof benches / sizeof benches[0] };

intptr_t bench_run(const struct bench_args *args, weft_proc_fn fn, void *arg)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = args->workers;
    intptr_t result = 0;
    int err = weft_run(fn, arg, &cfg, &result);
    if (err) {
        fprintf(stderr, "weft_run: %s\n", weft_strerror(err));
        return err;
    }
    return result;
}

long bench_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

static int usage(void)
{
    fprintf(stderr, "usage: weft-bench NAME [--workers W] [--n N]\n"
                    "       weft-bench pipeline [--workers W] [--n N] [--stages S]\n"
                    "       weft-bench --list\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < NBENCH; i++)
            printf("%-16s N=%-10ld %s\n", benches[i]->name, benches[i]->default_n, benches[i]->unit);
        return 0;
    }
    const struct bench *b = NULL;
    for (int i = 0; i < NBENCH; i++)
        if (strcmp(argv[1], benches[i]->name) == 0)
            b = benches[i];
    if (!b) {
        fprintf(stderr, "weft-bench: no benchmark '%s' (see --list)\n", argv[1]);
        return 2;
    }
    struct bench_args args = {.workers = 0, .n = b->default_n};
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
            args.workers = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc)
            args.n = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--stages") == 0 && i + 1 < argc && b == &bench_pipeline) {
            long s = strtol(argv[++i], NULL, 10);
            if (s < 2 || s > WEFT_GRAPH_NODES_MAX)
                return usage();
            args.stages = (unsigned)s;
        } else
            return usage();
    }
    if (args.n <= 0)
        return usage();
    struct bench_result r = {0, 0};
    if (b->run(&args, &r) != 0)
        return 1;
    unsigned shown = args.workers;
    if (shown == 0) {
        weft_start(NULL);
        shown = (unsigned)weft_workers();
        weft_stop(WEFT_FOREVER);
    }
    printf("%s weft %u %ld %.6f %.*f\n", b->name, shown, args.n, r.seconds,
           b == &bench_idle ? 3 : 1, r.value);
    return 0;
}
