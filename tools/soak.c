/* soak.c: weft-soak, the stress scenarios of tests/test-stress.c run in
 * rounds until a chosen number of minutes has passed. Usage:
 *     weft-soak [--minutes M] [--workers W] [--seed S]
 *               [--kind NAME] [--procs N] [--msgs M] [--rounds R]
 *               [--watchdog SECONDS] [--quiet]
 * Round r runs scenario r mod 6 (or --kind's), at 1, 2, 4 and 8 workers in
 * turn (or W), on 10 to 100,000 processes in turn (or N), with seed S + r
 * (sizes shrink under the sanitizers, see SOAK_DIV). Each round starts and
 * stops its own runtime and checks its own exact accounting
 * (tools/stress_core.h). A line per round, then the totals:
 * messages, switches (a proxy, see tools/stress_core.c) and their rates, and
 * "lost: 0, duplicated: 0" or the failures, each failed round with the
 * command that replays it. Exit status 0 only when nothing failed. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stress_core.h"
#include "weft.h"

struct options {
    double minutes;
    unsigned workers; /* 0: rotate */
    uint64_t seed;
    int kind;         /* -1: rotate */
    long procs, msgs; /* 0: by the round */
    long rounds;      /* 0: until the time is up */
    double watchdog;  /* seconds after which a round is a hang; 0: the default */
    int quiet;
};

/* Under a sanitizer rounds carry fewer messages (ASan+UBSan runs about 3
 * times slower, TSan 10 to 30 times), and under TSan fewer processes: it
 * keeps a trace of several hundred KiB per fiber (per process), and 100,000
 * live processes exhaust its mappings. */
#if defined(__SANITIZE_THREAD__)
#define SOAK_TSAN 1
#elif defined(__SANITIZE_ADDRESS__)
#define SOAK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SOAK_TSAN 1
#elif __has_feature(address_sanitizer)
#define SOAK_ASAN 1
#endif
#endif
#if defined(SOAK_TSAN)
#define SOAK_BIG 20000
#define SOAK_DIV 20
#elif defined(SOAK_ASAN)
#define SOAK_BIG 100000
#define SOAK_DIV 3
#else
#define SOAK_BIG 100000
#define SOAK_DIV 1
#endif

static const unsigned worker_counts[] = {1, 2, 4, 8};
static const long sizes[] = {10, 1000, 10000, SOAK_BIG};

/* Messages each sender sends in a round of kind on n processes: sized so a
 * round takes about a second in a release build, burst carries the volume
 * and ring the switches. */
static long round_msgs(int kind, long n)
{
    long m;
    switch (kind) {
    case STRESS_MESH:
        m = 2000000 / (n / 2);
        break;
    case STRESS_SELECT:
        m = 300000 / (n / 3);
        break;
    case STRESS_CLOSE:
        m = 1000000 / n;
        break;
    case STRESS_RING:
        m = 20000000 / ((n + 99) / 100); /* hops per ring */
        break;
    case STRESS_BURST:
        m = 100000000 / n;
        break;
    default:
        return 1; /* churn: one message per child */
    }
    return m / SOAK_DIV + 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int usage(void)
{
    fprintf(stderr, "usage: weft-soak [--minutes M] [--workers W] [--seed S] [--kind NAME]\n"
                    "                 [--procs N] [--msgs M] [--rounds R] [--watchdog SECONDS]\n"
                    "                 [--quiet]\n"
                    "kinds: mesh select close churn ring burst\n");
    return 2;
}

static int number(const char *s, double min, double max, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return errno == 0 && end != s && *end == 0 && *v >= min && *v <= max;
}

static int parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){.minutes = 10, .seed = (uint64_t)time(NULL), .kind = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
            continue;
        }
        if (!v)
            return 0;
        i++;
        if (strcmp(a, "--kind") == 0) {
            for (o->kind = 0; o->kind < STRESS_KINDS; o->kind++)
                if (strcmp(v, stress_kind_name(o->kind)) == 0)
                    break;
            if (o->kind == STRESS_KINDS)
                return 0;
        } else if (strcmp(a, "--minutes") == 0 && number(v, 0, 1e6, &x)) {
            o->minutes = x;
        } else if (strcmp(a, "--workers") == 0 && number(v, 1, WEFT_WORKERS_MAX, &x)) {
            o->workers = (unsigned)x;
        } else if (strcmp(a, "--seed") == 0 && number(v, 0, 1.8e19, &x)) {
            o->seed = strtoull(v, NULL, 10);
        } else if (strcmp(a, "--procs") == 0 && number(v, 3, 1e7, &x)) {
            o->procs = (long)x;
        } else if (strcmp(a, "--msgs") == 0 && number(v, 1, 2e9, &x)) {
            o->msgs = (long)x;
        } else if (strcmp(a, "--rounds") == 0 && number(v, 1, 1e12, &x)) {
            o->rounds = (long)x;
        } else if (strcmp(a, "--watchdog") == 0 && number(v, 1, 1e6, &x)) {
            o->watchdog = x;
        } else {
            return 0;
        }
    }
    return 1;
}

/* The parameters of round r. */
static struct stress_params round_params(const struct options *o, long r)
{
    struct stress_params p = {0};
    p.kind = o->kind >= 0 ? o->kind : (int)(r % STRESS_KINDS);
    p.workers = o->workers ? o->workers : worker_counts[(r / STRESS_KINDS) % 4];
    p.procs = o->procs ? o->procs : sizes[(r / STRESS_KINDS / 4 + r) % 4];
    p.msgs = o->msgs ? o->msgs : round_msgs(p.kind, p.procs);
    p.seed = o->seed + (uint64_t)r;
    p.watchdog_ns = (int64_t)(o->watchdog * 1e9);
    return p;
}

static void report(const struct stress_tally *t, long rounds, long failed, double secs,
                   uint64_t seed)
{
    uint64_t sw = stress_switches(t);
    printf("weft-soak: %ld rounds in %.1f minutes (seed %llu), %ld failed\n", rounds, secs / 60,
           (unsigned long long)seed, failed);
    printf("messages: %.4g received (%.3g/s), %.4g sent\n", (double)t->received,
           t->received / secs, (double)t->sent);
    printf("switches: %.4g (%.3g/s; proxy: rendezvous transfers + process starts)\n", (double)sw,
           sw / secs);
    printf("processes: %llu spawned, %llu joined; yields %llu, expired deadlines %llu, "
           "empty polls %llu\n",
           (unsigned long long)t->spawned, (unsigned long long)t->joined,
           (unsigned long long)t->yields, (unsigned long long)t->timeouts,
           (unsigned long long)t->polls);
    printf("lost: %llu, duplicated: %llu, reordered: %llu, corrupt: %llu, phantom: %llu, "
           "failures: %llu\n",
           (unsigned long long)t->lost, (unsigned long long)t->duplicated,
           (unsigned long long)t->reordered, (unsigned long long)t->corrupt,
           (unsigned long long)t->phantom, (unsigned long long)t->failures);
    if (t->failures)
        printf("first failure: %s\n", t->first);
}

int main(int argc, char **argv)
{
    struct options o;
    if (!parse(argc, argv, &o))
        return usage();
    struct stress_tally sum;
    memset(&sum, 0, sizeof sum);
    double start = now_s(), end = start + o.minutes * 60;
    long r = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    while ((o.rounds ? r < o.rounds : now_s() < end)) {
        struct stress_params p = round_params(&o, r);
        struct stress_tally t;
        double t0 = now_s();
        int rc = stress_run(&p, &t);
        double took = now_s() - t0;
        stress_tally_add(&sum, &t);
        if (rc != 0 || !o.quiet)
            printf("round %ld: %-6s %u workers, %6ld processes, %8ld msgs: %6.2f s, %.3g messages,"
                   " %.3g switches: %s\n",
                   r, stress_kind_name(p.kind), p.workers, p.procs, p.msgs, took,
                   (double)t.received, (double)stress_switches(&t), rc ? "FAILED" : "ok");
        if (rc != 0) {
            failed++;
            printf("  %llu failures, first: %s\n  replay: %s --rounds 1 --kind %s --workers %u "
                   "--procs %ld --msgs %ld --seed %llu\n",
                   (unsigned long long)t.failures, t.first, argv[0], stress_kind_name(p.kind),
                   p.workers, p.procs, p.msgs, (unsigned long long)p.seed);
        }
        r++;
    }
    report(&sum, r, failed, now_s() - start, o.seed);
    return failed == 0 && sum.failures == 0 ? 0 : 1;
}
