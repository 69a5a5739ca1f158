/* test-scale.c: a million simultaneously blocked processes on a default
 * Linux (vm.max_map_count 65530), and their cancellation at shutdown. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>

#include "test.h"


static atomic_long started, canceled, other_rc;

static intptr_t block_forever(void *arg)
{
    atomic_fetch_add_explicit(&started, 1, memory_order_relaxed);
    int rc = weft_sleep(WEFT_FOREVER);
    if (rc == -ECANCELED)
        atomic_fetch_add_explicit(&canceled, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&other_rc, 1, memory_order_relaxed);
    return 0;
}

static long count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    long lines = 0;
    int c;
    while ((c = getc(f)) != EOF)
        lines += c == '\n';
    fclose(f);
    return lines;
}

static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    cr_assert_not_null(f);
    char line[256];
    long kb = -1;
    size_t len = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            sscanf(line + len + 1, "%ld", &kb);
            break;
        }
    fclose(f);
    return kb;
}

static long max_map_count(void)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long n = -1;
    if (f) {
        if (fscanf(f, "%ld", &n) != 1)
            n = -1;
        fclose(f);
    }
    return n;
}

static intptr_t million_main(void *arg)
{
    long n = *(long *)arg;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.detached = 1;
    long rss0 = status_kb("VmRSS");
    int64_t t0 = weft_now();
    for (long i = 0; i < n; i++) {
        int rc = weft_spawn(NULL, block_forever, NULL, &opts);
        cr_assert_eq(rc, 0, "spawn %ld of %ld: %d (%s)", i, n, rc, weft_strerror(rc));
    }
    while (atomic_load(&started) < n)
        ASSERT_OK(weft_sleep(weft_now() + 1000000));
    int64_t spawn_ns = weft_now() - t0;

    /* All are blocked now: none has ended. */
    ASSERT_CMP(atomic_load(&canceled) + atomic_load(&other_rc), ==, 0);
    long maps = count_lines("/proc/self/maps");
    long rss = status_kb("VmRSS");
    cr_log_info("%ld blocked processes: spawned in %lld ms, %ld mappings, RSS %ld MiB "
                "(%ld bytes each)", n, (long long)(spawn_ns / 1000000), maps, rss / 1024,
                (rss - rss0) * 1024 / n);
    /* TSan maps the state of each fiber (one per process) by itself, two
     * mappings each: the count measures the sanitizer there, not weft. */
    const char *san = getenv("WEFT_SANITIZE");
    if (!san || strcmp(san, "thread") != 0)
        cr_assert_lt(maps, 30000,
                 "%ld blocked processes use %ld memory mappings (vm.max_map_count is %ld)", n, maps,
                 max_map_count());
    return 1;
}

Test(scale, million_blocked_processes, .timeout = 120)
{
    long n = test_sanitized() ? 20000 : 1000000;
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = 2;
    intptr_t r = 0;
    int64_t t0 = weft_now();
    /* main returns with every process still blocked: the shutdown cancels
     * them all and waits for them to return. */
    ASSERT_OK(weft_run(million_main, &n, &cfg, &r));
    ASSERT_CMP(r, ==, 1);
    cr_log_info("run and shutdown took %lld ms", (long long)((weft_now() - t0) / 1000000));
    ASSERT_CMP(atomic_load(&started), ==, n);
    cr_assert_eq(atomic_load(&canceled), n, "%ld of %ld blocked processes saw -ECANCELED",
                 atomic_load(&canceled), n);
    cr_assert_eq(atomic_load(&other_rc), 0, "%ld sleeps ended otherwise", atomic_load(&other_rc));
}
