/* test-stress.c: oversubscribed stress of channels, select and processes:
 * the scenarios of tools/stress_core.h (which weft-soak runs for minutes) at
 * 1, 2, 4 and 8 workers on this 2-core machine, on 10 to 100,000 processes.
 * Each run checks an exact accounting: every message received exactly once,
 * in its sender's order where a channel has one receiver, nothing lost to a
 * close and nothing delivered whose send failed, every process joined with
 * its result, weft_stop returning 0. Under the sanitizers (WEFT_SANITIZE)
 * the sizes shrink (see big and msgs), never the worker counts. No timing
 * checks: a hang is caught by each run's watchdog, which dumps the
 * processes. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "../tools/stress_core.h"
#include "test.h"

static const unsigned worker_counts[] = {1, 2, 4, 8};

/* One size of a scenario: processes, and messages per sender in each build. */
struct size {
    long procs;
    long msgs;
};

enum { SIZES = 3 };

/* How much smaller runs are under a sanitizer: WEFT_SANITIZE=address
 * (ASan+UBSan, about 3 times slower) or thread (TSan, about 10 times). */
static bool under(const char *sanitizer)
{
    const char *s = getenv("WEFT_SANITIZE");
    return s && strcmp(s, sanitizer) == 0;
}

/* The largest size's processes: 100,000; 50,000 under ASan, 20,000 under TSan. */
static long big(void)
{
    return under("thread") ? 20000 : under("address") ? 50000 : 100000;
}

/* Messages per sender, divided by 4 under ASan and by 10 under TSan (at least 1). */
static long msgs(long release)
{
    long m = release / (under("thread") ? 10 : under("address") ? 4 : 1);
    return m < 1 ? 1 : m;
}

/* The seed of every run derives from WEFT_STRESS_SEED (default 1), so that a
 * failure can be replayed with weft-soak, whose command the message gives. */
static uint64_t base_seed(void)
{
    const char *s = getenv("WEFT_STRESS_SEED");
    return s && s[0] ? strtoull(s, NULL, 10) : 1;
}

static void run_one(int kind, unsigned workers, struct size sz, uint64_t seed)
{
    struct stress_params p = {
        .kind = kind, .workers = workers, .procs = sz.procs, .msgs = sz.msgs, .seed = seed};
    struct stress_tally t;
    int rc = stress_run(&p, &t);
    cr_assert_eq(rc, 0,
                 "%s at %u workers, %ld processes, %ld messages each: %" PRIu64 " failures "
                 "(lost %" PRIu64 ", duplicated %" PRIu64 ", reordered %" PRIu64 ", corrupt %" PRIu64
                 ", phantom %" PRIu64 "); first: %s\n  replay: weft-soak --rounds 1 --kind %s "
                 "--workers %u --procs %ld --msgs %ld --seed %" PRIu64,
                 stress_kind_name(kind), workers, sz.procs, sz.msgs, t.failures, t.lost,
                 t.duplicated, t.reordered, t.corrupt, t.phantom, t.first, stress_kind_name(kind),
                 workers, sz.procs, sz.msgs, seed);
    /* Implied by rc, spelt out as the contract. */
    ASSERT_CMP(t.stop_rc, ==, 0);
    ASSERT_CMP(t.joined, ==, t.spawned);
    ASSERT_CMP(t.received, ==, t.sent); /* every transfer counted at both ends */
    ASSERT_CMP(t.received, >, 0);
}

/* Runs kind on each size at every worker count. */
static void run_all(int kind, const struct size sizes[SIZES])
{
    uint64_t seed = base_seed() * 1000 + (uint64_t)kind * 100;
    for (int s = 0; s < SIZES; s++)
        for (size_t w = 0; w < sizeof worker_counts / sizeof worker_counts[0]; w++)
            run_one(kind, worker_counts[w], sizes[s], seed + (uint64_t)s * 10 + w);
}

/* Half send, half receive, over up to 64 channels of capacities 0, 1, 8, 0,
 * 128; one receiver per even channel (order checked), the rest shared; one
 * operation in 8 polls first; the driver closes after the senders end. */
Test(stress, mesh_of_mixed_channels_delivers_each_message_once_in_order, .timeout = 300)
{
    struct size sizes[SIZES] = {{10, msgs(20000)}, {1000, msgs(200)}, {big(), 2}};
    run_all(STRESS_MESH, sizes);
}

/* Producers select over two send cases, routers over two receive and two
 * send cases, sinks over two receive cases; deadlines 0, a few us ahead and
 * forever; FAIR and PRIORITY; closes propagate from producers to sinks. */
Test(stress, select_routers_with_deadlines_and_polls_deliver_each_message_once, .timeout = 300)
{
    struct size sizes[SIZES] = {{10, msgs(10000)}, {1000, msgs(100)}, {big(), 1}};
    run_all(STRESS_SELECT, sizes);
}

/* Each group's channel is closed while its senders (some with short
 * deadlines) and receivers are busy: sends that returned 0 arrive once,
 * sends that failed never, the channel ends empty. */
Test(stress, close_while_busy_loses_nothing_and_delivers_no_failed_send, .timeout = 300)
{
    struct size sizes[SIZES] = {{10, msgs(20000)}, {1000, msgs(200)}, {big(), 2}};
    run_all(STRESS_CLOSE, sizes);
}

/* Branches spawn children in waves of 1 to 32 (some with grandchildren),
 * collect one message from each and join them, some with deadline-0 joins. */
Test(stress, spawn_join_churn_joins_every_process_with_its_result, .timeout = 300)
{
    struct size sizes[SIZES] = {{10, 1}, {1000, 1}, {big(), 1}};
    run_all(STRESS_CHURN, sizes);
}

/* A token per ring of up to 100 processes on rendezvous channels: each hop
 * is checked, the close goes round once. */
Test(stress, rings_pass_every_token_hop_exactly_once, .timeout = 300)
{
    struct size sizes[SIZES] = {{10, msgs(100000)}, {1000, msgs(10000)}, {big(), 100}};
    run_all(STRESS_RING, sizes);
}

/* Many senders into up to 16 channels of 1,024 elements with one receiver
 * each: every sender's messages in order. */
Test(stress, bursts_through_large_buffers_keep_each_senders_order, .timeout = 300)
{
    struct size sizes[SIZES] = {{10, msgs(100000)}, {1000, msgs(1000)}, {big(), 2}};
    run_all(STRESS_BURST, sizes);
}
