/* test-graph.c: dataflow graphs: every node kind, joins kept aligned,
 * parallel firings with and without order, custom nodes, validation and
 * DOT, failures and cancellation with exact accounting of what was
 * dropped, deadlines, the deadlock detector naming the nodes, bad input,
 * and graphs used from outside threads and cut by the runtime's stop. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TEST_PROC_CHECKS
#include "test.h"

#define I64 sizeof(int64_t)
#define VAL(p) (*(const int64_t *)(p))
#define OUT(p) (*(int64_t *)(p))

/* ---- node functions --------------------------------------------------------------------- */

/* A source of 1..limit (limit < 0: without end), optionally yielding now
 * and then so that the other processes get to run. */
struct counter {
    int64_t next, limit;
};

static int count_up(void *state, const void *const *in, void *const *out)
{
    struct counter *c = state;
    if (c->limit >= 0 && c->next > c->limit)
        return WEFT_NODE_END;
    OUT(out[0]) = c->next++;
    return 0;
}

static int times3(void *state, const void *const *in, void *const *out)
{
    OUT(out[0]) = VAL(in[0]) * 3;
    return 0;
}

static int plus1(void *state, const void *const *in, void *const *out)
{
    OUT(out[0]) = VAL(in[0]) + 1;
    return 0;
}

/* A sink that sums and counts, and checks that values come in increasing
 * order when asked to. */
struct summer {
    int64_t sum, count, last;
    bool check_order;
    atomic_long order_faults;
};

static int sum_up(void *state, const void *const *in, void *const *out)
{
    struct summer *s = state;
    int64_t v = VAL(in[0]);
    if (s->check_order && v <= s->last)
        atomic_fetch_add(&s->order_faults, 1);
    s->last = v;
    s->sum += v;
    s->count++;
    return 0;
}

/* Sums with atomics: for parallel sinks. */
struct atomic_summer {
    atomic_llong sum, count;
};

static int sum_atomic(void *state, const void *const *in, void *const *out)
{
    struct atomic_summer *s = state;
    atomic_fetch_add(&s->sum, VAL(in[0]));
    atomic_fetch_add(&s->count, 1);
    return 0;
}

static weft_node_spec source_spec(const char *name, struct counter *c)
{
    return (weft_node_spec){.name = name, .kind = WEFT_NODE_SOURCE, .outputs = 1,
                            .out_size = {I64}, .fn = count_up, .state = c};
}

static weft_node_spec map_spec(const char *name, weft_node_fn fn)
{
    return (weft_node_spec){.name = name, .kind = WEFT_NODE_MAP, .inputs = 1, .outputs = 1,
                            .in_size = {I64}, .out_size = {I64}, .fn = fn};
}

static weft_node_spec sink_spec(const char *name, weft_node_fn fn, void *state)
{
    return (weft_node_spec){.name = name, .kind = WEFT_NODE_SINK, .inputs = 1,
                            .in_size = {I64}, .fn = fn, .state = state};
}

static weft_node add(weft_graph g, weft_node_spec spec)
{
    weft_node n = -1;
    CHECK_RC(weft_graph_add(g, &spec, &n), 0);
    return n;
}

static void connect(weft_graph g, weft_node a, unsigned out, weft_node b, unsigned in, size_t cap)
{
    CHECK_RC(weft_graph_connect(g, a, out, b, in, cap), 0);
}

static weft_graph make_graph(const char *name)
{
    weft_graph g = 0;
    CHECK_RC(weft_graph_make(&g, name), 0);
    return g;
}

/* Runs g to its end and returns the run's result. */
static int run_graph(weft_graph g)
{
    CHECK_RC(weft_graph_run(g, WEFT_FOREVER), 0);
    return weft_graph_wait(g, WEFT_FOREVER);
}

static weft_graph_stats stats_of(weft_graph g)
{
    weft_graph_stats st;
    memset(&st, 0xAB, sizeof st);
    CHECK_RC(weft_graph_get_stats(g, &st), 0);
    return st;
}

/* ---- a linear pipeline ----------------------------------------------------------------------- */

static intptr_t pipeline_main(void *arg)
{
    int64_t n = test_sanitized() ? 20000 : 200000;
    for (int round = 0; round < 5; round++) {
        struct counter c = {1, n};
        struct summer s = {.check_order = true};
        weft_graph g = make_graph("pipeline");
        weft_node a = add(g, source_spec("numbers", &c)), b = add(g, map_spec("times3", times3)),
                  m = add(g, map_spec("plus1", plus1)), z = add(g, sink_spec("sum", sum_up, &s));
        connect(g, a, 0, b, 0, 64);
        connect(g, b, 0, m, 0, round); /* capacities 0 (rendezvous) .. 4 */
        connect(g, m, 0, z, 0, 64);
        CHECK_RC(run_graph(g), 0);
        CHECK(s.sum == 3 * n * (n + 1) / 2 + n, "sum %lld", (long long)s.sum);
        CHECK(atomic_load(&s.order_faults) == 0, "values out of order");
        weft_graph_stats st = stats_of(g);
        CHECK(st.result == 0 && st.failed_node == -1 && st.failed_name[0] == '\0',
              "stats: result %d, failed %d", st.result, st.failed_node);
        CHECK(st.emitted == (uint64_t)n && st.consumed == (uint64_t)n && st.dropped == 0,
              "emitted %llu consumed %llu dropped %llu", (unsigned long long)st.emitted,
              (unsigned long long)st.consumed, (unsigned long long)st.dropped);
        CHECK_RC(weft_graph_wait_node(g, z, 0), 0);
        CHECK_RC(weft_graph_wait_node(g, a, 0), 0);
        CHECK_RC(weft_graph_release(g), 0);
    }
    return 0;
}

Test(graph, a_pipeline_delivers_every_value_in_order, .timeout = 120)
{
    run_1_and_2(pipeline_main, NULL);
}

/* ---- join, broadcast, merge, filter, split ------------------------------------------------------ */

/* in[0] = 3x, in[1] = x + 1 from the same x: a join that pairs values from
 * different sets would break the relation. */
struct pair_check {
    atomic_long bad, count;
};

static int pair_up(void *state, const void *const *in, void *const *out)
{
    struct pair_check *p = state;
    if (VAL(in[0]) / 3 + 1 != VAL(in[1]))
        atomic_fetch_add(&p->bad, 1);
    atomic_fetch_add(&p->count, 1);
    if (out[0])
        OUT(out[0]) = VAL(in[1]);
    return 0;
}

/* numbers -> broadcast -> (times3, plus1) -> join. parallel > 1 puts a
 * dispatcher in front of the join's firings. */
static intptr_t join_main(void *arg)
{
    unsigned parallel = (unsigned)(uintptr_t)arg;
    int64_t n = test_sanitized() ? 5000 : 50000;
    struct counter c = {1, n};
    struct pair_check p = {0};
    weft_graph g = make_graph("join");
    weft_node src = add(g, source_spec("numbers", &c));
    weft_node bc = add(g, (weft_node_spec){.name = "copy", .kind = WEFT_NODE_BROADCAST,
                                           .inputs = 1, .outputs = 2, .in_size = {I64},
                                           .out_size = {I64, I64}});
    weft_node t3 = add(g, map_spec("times3", times3)), p1 = add(g, map_spec("plus1", plus1));
    weft_node j = add(g, (weft_node_spec){.name = "pair", .kind = WEFT_NODE_SINK, .inputs = 2,
                                          .in_size = {I64, I64}, .fn = pair_up, .state = &p,
                                          .parallel = parallel});
    connect(g, src, 0, bc, 0, 16);
    connect(g, bc, 0, t3, 0, 3);
    connect(g, bc, 1, p1, 0, 7);
    connect(g, t3, 0, j, 0, 5);
    connect(g, p1, 0, j, 1, 1);
    CHECK_RC(run_graph(g), 0);
    CHECK(atomic_load(&p.count) == n && atomic_load(&p.bad) == 0, "%ld sets, %ld mismatched",
          atomic_load(&p.count), atomic_load(&p.bad));
    weft_graph_stats st = stats_of(g);
    CHECK(st.consumed == 2 * (uint64_t)n && st.dropped == 0, "consumed %llu dropped %llu",
          (unsigned long long)st.consumed, (unsigned long long)st.dropped);
    CHECK_RC(weft_graph_release(g), 0);
    return 0;
}

Test(graph, a_join_pairs_values_of_one_set, .timeout = 60)
{
    run_1_and_2(join_main, (void *)(uintptr_t)1);
}

Test(graph, a_parallel_join_keeps_its_sets_whole, .timeout = 60)
{
    run_1_and_2(join_main, (void *)(uintptr_t)3);
}

static int keep_even(void *state, const void *const *in, void *const *out)
{
    return VAL(in[0]) % 2 == 0 ? 0 : WEFT_NODE_SKIP;
}

static int by_parity(void *state, const void *const *in, void *const *out)
{
    return (int)(VAL(in[0]) % 2);
}

/* Two sources merged, filtered to the even values, split by parity of
 * value / 2 into two sinks (fn), and the same without fn (in turn). */
static intptr_t kinds_main(void *arg)
{
    int64_t n = test_sanitized() ? 4000 : 40000;
    for (int with_fn = 0; with_fn < 2; with_fn++) {
        struct counter c1 = {1, n}, c2 = {1, n};
        struct summer s0 = {0}, s1 = {0};
        weft_graph g = make_graph("kinds");
        weft_node a = add(g, source_spec("a", &c1)), b = add(g, source_spec("b", &c2));
        weft_node m = add(g, (weft_node_spec){.name = "merge", .kind = WEFT_NODE_MERGE,
                                              .inputs = 2, .outputs = 1, .in_size = {I64, I64},
                                              .out_size = {I64}});
        weft_node f = add(g, (weft_node_spec){.name = "even", .kind = WEFT_NODE_FILTER,
                                              .inputs = 1, .outputs = 1, .in_size = {I64},
                                              .out_size = {I64}, .fn = keep_even});
        weft_node h = add(g, map_spec("plus1", plus1)); /* odd values now */
        weft_node sp = add(g, (weft_node_spec){.name = "split", .kind = WEFT_NODE_SPLIT,
                                               .inputs = 1, .outputs = 2, .in_size = {I64},
                                               .out_size = {I64, I64},
                                               .fn = with_fn ? by_parity : NULL});
        weft_node z0 = add(g, sink_spec("sink0", sum_up, &s0)),
                  z1 = add(g, sink_spec("sink1", sum_up, &s1));
        connect(g, a, 0, m, 0, 8);
        connect(g, b, 0, m, 1, 8);
        connect(g, m, 0, f, 0, 8);
        connect(g, f, 0, h, 0, 8);
        connect(g, h, 0, sp, 0, 8);
        connect(g, sp, 0, z0, 0, 8);
        connect(g, sp, 1, z1, 0, 8);
        CHECK_RC(run_graph(g), 0);
        /* Even values of 1..n, twice, each plus 1. */
        int64_t evens = n / 2, want = 2 * (2 * (evens * (evens + 1) / 2) + evens);
        CHECK(s0.count + s1.count == 2 * evens, "%lld values", (long long)(s0.count + s1.count));
        CHECK(s0.sum + s1.sum == want, "sum %lld, want %lld", (long long)(s0.sum + s1.sum),
              (long long)want);
        if (with_fn) /* every value is odd: all go to output 1 */
            CHECK(s0.count == 0, "%lld odd values went to output 0", (long long)s0.count);
        else /* in turn */
            CHECK(s0.count == evens && s1.count == evens, "split %lld / %lld",
                  (long long)s0.count, (long long)s1.count);
        weft_graph_stats st = stats_of(g);
        CHECK(st.emitted == 2 * (uint64_t)n && st.consumed == 2 * (uint64_t)evens &&
                  st.skipped == 2 * (uint64_t)(n - evens) && st.dropped == 0,
              "emitted %llu consumed %llu dropped %llu", (unsigned long long)st.emitted,
              (unsigned long long)st.consumed, (unsigned long long)st.dropped);
        CHECK_RC(weft_graph_release(g), 0);
    }
    return 0;
}

Test(graph, merge_filter_split_and_broadcast, .timeout = 60)
{
    run_1_and_2(kinds_main, NULL);
}

/* A merge with fn sees only the input that fired. */
static int tag_port(void *state, const void *const *in, void *const *out)
{
    int nonnull = (in[0] != NULL) + (in[1] != NULL);
    if (nonnull != 1)
        return -EPROTO;
    OUT(out[0]) = in[0] ? VAL(in[0]) : -VAL(in[1]);
    return 0;
}

static intptr_t merge_fn_main(void *arg)
{
    struct counter c1 = {1, 1000}, c2 = {1, 1000};
    struct summer s = {0};
    weft_graph g = make_graph("merge-fn");
    weft_node a = add(g, source_spec("a", &c1)), b = add(g, source_spec("b", &c2));
    weft_node m = add(g, (weft_node_spec){.name = "merge", .kind = WEFT_NODE_MERGE, .inputs = 2,
                                          .outputs = 1, .in_size = {I64, I64},
                                          .out_size = {I64}, .fn = tag_port});
    weft_node z = add(g, sink_spec("sum", sum_up, &s));
    connect(g, a, 0, m, 0, 4);
    connect(g, b, 0, m, 1, 0);
    connect(g, m, 0, z, 0, 4);
    CHECK_RC(run_graph(g), 0);
    CHECK(s.count == 2000 && s.sum == 0, "count %lld sum %lld", (long long)s.count,
          (long long)s.sum);
    CHECK_RC(weft_graph_release(g), 0);
    return 0;
}

Test(graph, a_merge_function_sees_the_input_that_fired, .timeout = 30)
{
    run_1_and_2(merge_fn_main, NULL);
}

/* ---- parallel firings ------------------------------------------------------------------------ */

/* Slow and uneven: some firings yield a few times, so that they finish out
 * of order. */
static int uneven_times3(void *state, const void *const *in, void *const *out)
{
    int64_t v = VAL(in[0]);
    for (int64_t i = 0; i < (v * 7919) % 5; i++)
        weft_yield();
    OUT(out[0]) = v * 3;
    return 0;
}

static int uneven_even(void *state, const void *const *in, void *const *out)
{
    int64_t v = VAL(in[0]);
    for (int64_t i = 0; i < (v * 7919) % 3; i++)
        weft_yield();
    return v % 2 == 0 ? 0 : WEFT_NODE_SKIP;
}

static intptr_t parallel_main(void *arg)
{
    int ordered = (int)(uintptr_t)arg;
    int64_t n = test_sanitized() ? 3000 : 30000;
    for (unsigned k = 2; k <= 8; k *= 2) {
        struct counter c = {1, n};
        struct summer s = {.check_order = ordered};
        weft_graph g = make_graph("parallel");
        weft_node a = add(g, source_spec("numbers", &c));
        weft_node_spec m = map_spec("times3", uneven_times3);
        m.parallel = k;
        m.ordered = ordered;
        weft_node b = add(g, m);
        weft_node f = add(g, (weft_node_spec){.name = "even", .kind = WEFT_NODE_FILTER,
                                              .inputs = 1, .outputs = 1, .in_size = {I64},
                                              .out_size = {I64}, .fn = uneven_even,
                                              .parallel = k, .ordered = ordered});
        weft_node z = add(g, sink_spec("sum", sum_up, &s));
        connect(g, a, 0, b, 0, 4);
        connect(g, b, 0, f, 0, 4);
        connect(g, f, 0, z, 0, 4);
        CHECK_RC(run_graph(g), 0);
        int64_t half = n / 2; /* 3x is even when x is */
        CHECK(s.count == half && s.sum == 6 * (half * (half + 1) / 2), "k %u: count %lld sum %lld",
              k, (long long)s.count, (long long)s.sum);
        if (ordered)
            CHECK(atomic_load(&s.order_faults) == 0, "k %u: %ld values out of order", k,
                  atomic_load(&s.order_faults));
        CHECK_RC(weft_graph_release(g), 0);
    }
    return 0;
}

Test(graph, parallel_firings_keep_order_when_asked, .timeout = 120)
{
    run_1_and_2(parallel_main, (void *)(uintptr_t)1);
}

Test(graph, parallel_firings_unordered_lose_nothing, .timeout = 120)
{
    run_1_and_2(parallel_main, (void *)(uintptr_t)0);
}

/* Unordered firings on two workers do overlap: a parallel sink of 4 whose
 * firings each wait for a second one to be inside fn at the same time. */
struct overlap {
    atomic_int inside, max_inside;
};

static int overlapping(void *state, const void *const *in, void *const *out)
{
    struct overlap *o = state;
    int now = atomic_fetch_add(&o->inside, 1) + 1;
    int seen = atomic_load(&o->max_inside);
    while (now > seen && !atomic_compare_exchange_weak(&o->max_inside, &seen, now))
        ;
    for (int i = 0; i < 20 && atomic_load(&o->max_inside) < 2; i++)
        weft_sleep(weft_now() + 100 * US);
    atomic_fetch_sub(&o->inside, 1);
    return 0;
}

static intptr_t overlap_main(void *arg)
{
    struct counter c = {1, 200};
    struct overlap o = {0};
    weft_graph g = make_graph("overlap");
    weft_node a = add(g, source_spec("numbers", &c));
    weft_node_spec z = sink_spec("slow", overlapping, &o);
    z.parallel = 4;
    weft_node b = add(g, z);
    connect(g, a, 0, b, 0, 8);
    CHECK_RC(run_graph(g), 0);
    CHECK(atomic_load(&o.max_inside) >= 2, "firings never overlapped");
    CHECK_RC(weft_graph_release(g), 0);
    return 0;
}

Test(graph, parallel_firings_run_at_once, .timeout = 30)
{
    run_1_and_2(overlap_main, NULL);
}

/* ---- custom nodes ------------------------------------------------------------------------------- */

/* Adds consecutive pairs of input 0, and passes input 1 on as it is,
 * through weft_node_recv_any; ends when both inputs have. */
static int pairs_body(void *state, weft_node_io *io)
{
    int64_t held = 0, v;
    bool holding = false;
    unsigned port;
    int err;
    while ((err = weft_node_recv_any(io, &port, &v, WEFT_FOREVER)) == 0) {
        if (port == 1) {
            if ((err = weft_node_send(io, 0, &v, WEFT_FOREVER)) != 0)
                return err;
            continue;
        }
        if (!holding) {
            held = v;
            holding = true;
            continue;
        }
        int64_t s = held + v;
        holding = false;
        if ((err = weft_node_send(io, 0, &s, WEFT_FOREVER)) != 0)
            return err;
    }
    return err == -EPIPE ? 0 : err;
}

static intptr_t custom_main(void *arg)
{
    struct counter c1 = {1, 1000}, c2 = {1, 10};
    struct summer s = {0};
    weft_graph g = make_graph("custom");
    weft_node a = add(g, source_spec("a", &c1)), b = add(g, source_spec("b", &c2));
    weft_node p = add(g, (weft_node_spec){.name = "pairs", .kind = WEFT_NODE_CUSTOM, .inputs = 2,
                                          .outputs = 1, .in_size = {I64, I64},
                                          .out_size = {I64}, .body = pairs_body});
    weft_node z = add(g, sink_spec("sum", sum_up, &s));
    connect(g, a, 0, p, 0, 4);
    connect(g, b, 0, p, 1, 4);
    connect(g, p, 0, z, 0, 4);
    CHECK_RC(run_graph(g), 0);
    CHECK(s.count == 500 + 10 && s.sum == 500500 + 55, "count %lld sum %lld",
          (long long)s.count, (long long)s.sum);
    CHECK_RC(weft_graph_release(g), 0);
    return 0;
}

Test(graph, a_custom_node_moves_values_itself, .timeout = 30)
{
    run_1_and_2(custom_main, NULL);
}

/* ---- a node sends what it holds before it waits ------------------------------------------- */

/* A request and its answer through the graph: the source reads requests
 * from a channel that the driver fills only after the answer to the last
 * one came out of the sink. Nodes send in batches, but never hold a value
 * while they wait, or this would stall after the first request. */
struct echo {
    weft_chan requests, answers;
};

static int read_request(void *state, const void *const *in, void *const *out)
{
    struct echo *e = state;
    int err = weft_chan_recv(e->requests, out[0], I64, WEFT_FOREVER);
    return err == -EPIPE ? WEFT_NODE_END : err;
}

static int slow_times3(void *state, const void *const *in, void *const *out)
{
    weft_sleep(weft_now() + 10 * US); /* a function that waits */
    OUT(out[0]) = VAL(in[0]) * 3;
    return 0;
}

static int answer(void *state, const void *const *in, void *const *out)
{
    struct echo *e = state;
    return weft_chan_send(e->answers, in[0], I64, WEFT_FOREVER);
}

static intptr_t echo_main(void *arg)
{
    struct echo e = {make_chan(I64, 0), make_chan(I64, 0)};
    weft_graph g = make_graph("echo");
    weft_node a = add(g, (weft_node_spec){.name = "requests", .kind = WEFT_NODE_SOURCE,
                                          .outputs = 1, .out_size = {I64}, .fn = read_request,
                                          .state = &e});
    weft_node b = add(g, map_spec("times3", slow_times3)), m = add(g, map_spec("plus1", plus1));
    weft_node z = add(g, sink_spec("answers", answer, &e));
    connect(g, a, 0, b, 0, 64);
    connect(g, b, 0, m, 0, 64);
    connect(g, m, 0, z, 0, 64);
    CHECK_RC(weft_graph_run(g, WEFT_FOREVER), 0);
    bool stalled = false;
    for (int64_t i = 1; i <= 200 && !stalled; i++) {
        int64_t got = 0;
        CHECK_RC(weft_chan_send(e.requests, &i, I64, WEFT_FOREVER), 0);
        int rc = weft_chan_recv(e.answers, &got, I64, test_in_ms(5000));
        CHECK(rc == 0 && got == 3 * i + 1, "request %lld: rc %d, answer %lld", (long long)i, rc,
              (long long)got);
        stalled = rc != 0;
    }
    CHECK_RC(weft_chan_close(e.requests), 0);
    if (stalled)
        weft_graph_cancel(g);
    CHECK_RC(weft_graph_wait(g, WEFT_FOREVER), stalled ? -ECANCELED : 0);
    CHECK_RC(weft_graph_release(g), 0);
    weft_chan_release(e.requests);
    weft_chan_release(e.answers);
    return 0;
}

Test(graph, nodes_send_what_they_hold_before_they_wait, .timeout = 60)
{
    run_1_and_2(echo_main, NULL);
}

/* ---- failures, cancellation, deadlines ---------------------------------------------------------- */

static int fail_at_1000(void *state, const void *const *in, void *const *out)
{
    if (VAL(in[0]) == 1000)
        return -ERANGE;
    OUT(out[0]) = VAL(in[0]);
    return 0;
}

/* What a source emitted is consumed, skipped or dropped, exactly once: on
 * a linear path, emitted == consumed + dropped + skipped. */
static void check_accounting(weft_graph g, int line)
{
    weft_graph_stats st = stats_of(g);
    if (st.emitted != st.consumed + st.dropped + st.skipped)
        check_fail(line, "emitted %llu != consumed %llu + dropped %llu + skipped %llu",
                   (unsigned long long)st.emitted, (unsigned long long)st.consumed,
                   (unsigned long long)st.dropped, (unsigned long long)st.skipped);
}

static intptr_t failing_main(void *arg)
{
    int rounds = test_sanitized() ? 10 : 50;
    for (int round = 0; round < rounds; round++) {
        struct counter c = {1, 1000000};
        struct summer s = {0};
        weft_graph g = make_graph("failing");
        weft_node a = add(g, source_spec("numbers", &c));
        weft_node_spec f = map_spec("boom", fail_at_1000);
        f.parallel = (unsigned)(round % 3) + 1; /* plain, parallel, parallel ordered */
        f.ordered = round % 3 == 2;
        weft_node b = add(g, f), m = add(g, map_spec("plus1", plus1));
        weft_node z = add(g, sink_spec("sum", sum_up, &s));
        connect(g, a, 0, b, 0, 64);
        connect(g, b, 0, m, 0, 64);
        connect(g, m, 0, z, 0, 64);
        CHECK_RC(run_graph(g), -ERANGE);
        weft_graph_stats st = stats_of(g);
        CHECK(st.result == -ERANGE && st.failed_node == b && strcmp(st.failed_name, "boom") == 0,
              "result %d, failed node %d '%s'", st.result, st.failed_node, st.failed_name);
        CHECK(st.emitted >= 1000 && st.emitted < 1000000, "emitted %llu",
              (unsigned long long)st.emitted);
        /* In order (one instance, or ordered), nothing after 1000 passes
         * it. Unordered instances may finish later values before the
         * failure's cancel reaches them. */
        bool in_order = f.parallel == 1 || f.ordered;
        CHECK((uint64_t)s.count == st.consumed && (in_order ? s.count < 1000 : s.count < (int64_t)st.emitted),
              "sink took %lld of %llu emitted (parallel %u%s)", (long long)s.count,
              (unsigned long long)st.emitted, f.parallel, f.ordered ? ", ordered" : "");
        check_accounting(g, __LINE__);
        CHECK_RC(weft_graph_wait_node(g, b, 0), -ERANGE);
        CHECK_RC(weft_graph_wait_node(g, a, 0), -ECANCELED);
        int zr = weft_graph_wait_node(g, z, 0);
        CHECK(zr == -ECANCELED || zr == 0, "sink: %d", zr);
        CHECK_RC(weft_graph_release(g), 0);
    }
    return 0;
}

Test(graph, a_failing_node_cancels_the_graph_and_is_named, .timeout = 120)
{
    run_1_and_2(failing_main, NULL);
}

struct canceller {
    weft_graph g;
    int64_t after;
};

static intptr_t cancel_later(void *arg)
{
    struct canceller *c = arg;
    weft_sleep(weft_now() + c->after);
    CHECK_RC(weft_graph_cancel(c->g), 0);
    return 0;
}

static intptr_t cancel_main(void *arg)
{
    int rounds = test_sanitized() ? 10 : 40;
    for (int round = 0; round < rounds; round++) {
        struct counter c = {1, -1}; /* without end */
        struct summer s = {0};
        weft_graph g = make_graph("endless");
        weft_node a = add(g, source_spec("numbers", &c));
        weft_node_spec t = map_spec("times3", times3);
        t.parallel = (unsigned)(round % 3) + 1;
        t.ordered = round % 3 == 2;
        weft_node b = add(g, t), z = add(g, sink_spec("sum", sum_up, &s));
        connect(g, a, 0, b, 0, (size_t)round % 5);
        connect(g, b, 0, z, 0, 64);
        CHECK_RC(weft_graph_run(g, WEFT_FOREVER), 0);
        CHECK_RC(weft_graph_wait(g, 0), -EAGAIN);
        struct canceller cc = {g, (round % 4) * 200 * US};
        weft_pid pid = spawn_proc(cancel_later, &cc);
        CHECK_RC(weft_graph_wait(g, WEFT_FOREVER), -ECANCELED);
        join_proc(pid);
        weft_graph_stats st = stats_of(g);
        CHECK(st.result == -ECANCELED && st.failed_node == -1, "result %d failed %d", st.result,
              st.failed_node);
        check_accounting(g, __LINE__);
        CHECK_RC(weft_graph_cancel(g), 0); /* after the end: changes nothing */
        CHECK_RC(weft_graph_wait(g, 0), -ECANCELED);
        CHECK_RC(weft_graph_release(g), 0);
    }
    return 0;
}

Test(graph, a_cancel_stops_the_run_and_accounts_for_every_value, .timeout = 120)
{
    run_1_and_2(cancel_main, NULL);
}

static intptr_t deadline_main(void *arg)
{
    struct counter c = {1, -1};
    struct summer s = {0};
    weft_graph g = make_graph("deadline");
    weft_node a = add(g, source_spec("numbers", &c)), z = add(g, sink_spec("sum", sum_up, &s));
    connect(g, a, 0, z, 0, 16);
    int64_t t0 = weft_now();
    CHECK_RC(weft_graph_run(g, t0 + 200 * MS), 0);
    CHECK_RC(weft_graph_wait(g, WEFT_FOREVER), -ETIMEDOUT);
    CHECK(weft_now() - t0 >= 200 * MS, "ended before its deadline");
    check_accounting(g, __LINE__);
    CHECK(s.count > 0, "nothing flowed");
    CHECK_RC(weft_graph_release(g), 0);
    return 0;
}

Test(graph, the_run_deadline_cancels_with_etimedout, .timeout = 30)
{
    run_1_and_2(deadline_main, NULL);
}

/* After the end of every input, weft_node_recv_any says so at once. */
static int drain_twice(void *state, weft_node_io *io)
{
    int64_t v;
    unsigned port;
    int err;
    while ((err = weft_node_recv_any(io, &port, &v, WEFT_FOREVER)) == 0)
        ;
    if (err != -EPIPE)
        return -EPROTO;
    return weft_node_recv_any(io, &port, &v, test_in_ms(5000)) == -EPIPE ? 0 : -EPROTO;
}

/* A custom source: its sends count as emitted. */
static int custom_numbers(void *state, weft_node_io *io)
{
    for (int64_t i = 1; i <= 100; i++) {
        int err = weft_node_send(io, 0, &i, WEFT_FOREVER);
        if (err)
            return err;
    }
    return 0;
}

static intptr_t custom_end_main(void *arg)
{
    weft_graph g = make_graph("custom-end");
    weft_node a = add(g, (weft_node_spec){.name = "numbers", .kind = WEFT_NODE_CUSTOM,
                                          .outputs = 1, .out_size = {I64},
                                          .body = custom_numbers});
    weft_node z = add(g, (weft_node_spec){.name = "drain", .kind = WEFT_NODE_CUSTOM,
                                          .inputs = 1, .in_size = {I64}, .body = drain_twice});
    connect(g, a, 0, z, 0, 4);
    CHECK_RC(run_graph(g), 0);
    weft_graph_stats st = stats_of(g);
    CHECK(st.emitted == 100 && st.consumed == 100 && st.dropped == 0,
          "emitted %llu consumed %llu dropped %llu", (unsigned long long)st.emitted,
          (unsigned long long)st.consumed, (unsigned long long)st.dropped);
    CHECK_RC(weft_graph_release(g), 0);
    return 0;
}

Test(graph, custom_nodes_are_counted_and_see_the_end_at_once, .timeout = 30)
{
    run_1_and_2(custom_end_main, NULL);
}

/* A sink whose function returns what its kind does not take fails with
 * -ERANGE, and that value is dropped, not consumed. */
static int sink_returns_3(void *state, const void *const *in, void *const *out)
{
    return VAL(in[0]) == 5 ? 3 : 0;
}

static intptr_t bad_return_main(void *arg)
{
    struct counter c = {1, 1000};
    weft_graph g = make_graph("bad-return");
    weft_node a = add(g, source_spec("numbers", &c)), z = add(g, sink_spec("odd", sink_returns_3, NULL));
    connect(g, a, 0, z, 0, 4);
    CHECK_RC(run_graph(g), -ERANGE);
    weft_graph_stats st = stats_of(g);
    CHECK(st.consumed == 4 && strcmp(st.failed_name, "odd") == 0, "consumed %llu, failed '%s'",
          (unsigned long long)st.consumed, st.failed_name);
    check_accounting(g, __LINE__);
    CHECK_RC(weft_graph_release(g), 0);
    return 0;
}

Test(graph, a_return_value_out_of_contract_fails_the_node, .timeout = 30)
{
    run_1_and_2(bad_return_main, NULL);
}

/* A source that fails: what it emitted before is consumed or dropped. */
static int count_then_fail(void *state, const void *const *in, void *const *out)
{
    struct counter *c = state;
    if (c->next == c->limit)
        return -EIO;
    OUT(out[0]) = c->next++;
    return 0;
}

static intptr_t failing_source_main(void *arg)
{
    struct counter c = {1, 500};
    struct summer s = {0};
    weft_graph g = make_graph("failing-source");
    weft_node a = add(g, (weft_node_spec){.name = "numbers", .kind = WEFT_NODE_SOURCE,
                                          .outputs = 1, .out_size = {I64},
                                          .fn = count_then_fail, .state = &c});
    weft_node b = add(g, map_spec("times3", times3)), z = add(g, sink_spec("sum", sum_up, &s));
    connect(g, a, 0, b, 0, 8);
    connect(g, b, 0, z, 0, 8);
    CHECK_RC(run_graph(g), -EIO);
    weft_graph_stats st = stats_of(g);
    CHECK(st.emitted == 499 && strcmp(st.failed_name, "numbers") == 0, "emitted %llu, failed '%s'",
          (unsigned long long)st.emitted, st.failed_name);
    check_accounting(g, __LINE__);
    CHECK_RC(weft_graph_release(g), 0);
    return 0;
}

Test(graph, a_failing_source_accounts_for_what_it_emitted, .timeout = 30)
{
    run_1_and_2(failing_source_main, NULL);
}

/* ---- checking and drawing -------------------------------------------------------------------- */

static intptr_t validate_main(void *arg)
{
    char why[200];
    struct counter c = {1, 10};
    struct summer s = {0};
    weft_graph g = make_graph("check");
    CHECK_RC(weft_graph_validate(g, why, sizeof why), -EINVAL);
    weft_node a = add(g, source_spec("numbers", &c)), b = add(g, map_spec("times3", times3));
    CHECK_RC(weft_graph_validate(g, why, sizeof why), -ENOTCONN);
    CHECK(strstr(why, "'numbers'") != NULL, "why: %s", why);
    connect(g, a, 0, b, 0, 1);
    CHECK_RC(weft_graph_validate(g, why, sizeof why), -ENOTCONN);
    CHECK(strstr(why, "output 0 of node 'times3'") != NULL, "why: %s", why);
    CHECK_RC(weft_graph_run(g, WEFT_FOREVER), -ENOTCONN); /* not run: still editable */
    weft_node z = add(g, sink_spec("sum", sum_up, &s));
    connect(g, b, 0, z, 0, 1);
    CHECK_RC(weft_graph_validate(g, NULL, 0), 0);
    CHECK_RC(weft_graph_validate(g, why, sizeof why), 0);
    CHECK(why[0] == '\0', "why: %s", why);
    CHECK_RC(weft_graph_release(g), 0);

    /* A cycle of rendezvous edges cannot move; one buffer lets it. */
    for (size_t cap = 0; cap < 2; cap++) {
        weft_graph h = make_graph("cycle");
        weft_node src = add(h, source_spec("numbers", &c));
        weft_node j = add(h, (weft_node_spec){.name = "join", .kind = WEFT_NODE_MAP, .inputs = 2,
                                              .outputs = 1, .in_size = {I64, I64},
                                              .out_size = {I64}, .fn = pair_up});
        weft_node bc = add(h, (weft_node_spec){.name = "fork", .kind = WEFT_NODE_BROADCAST,
                                               .inputs = 1, .outputs = 2, .in_size = {I64},
                                               .out_size = {I64, I64}});
        weft_node out = add(h, sink_spec("out", sum_up, &s));
        connect(h, src, 0, j, 0, 4);
        connect(h, j, 0, bc, 0, 0);
        connect(h, bc, 0, j, 1, cap);
        connect(h, bc, 1, out, 0, 4);
        CHECK_RC(weft_graph_validate(h, why, sizeof why), cap ? 0 : -EDEADLK);
        if (!cap)
            CHECK(strstr(why, "cycle") != NULL, "why: %s", why);
        CHECK_RC(weft_graph_release(h), 0);
    }
    return 0;
}

Test(graph, validation_names_what_is_wrong, .timeout = 30)
{
    run_at_workers(1, validate_main, NULL);
}

static intptr_t dot_main(void *arg)
{
    struct counter c = {1, 10};
    weft_graph g = make_graph("say \"hi\"");
    weft_node a = add(g, source_spec("numbers", &c));
    weft_node_spec m = map_spec("times3", times3);
    m.parallel = 4;
    m.ordered = 1;
    weft_node b = add(g, m);
    weft_node z = add(g, sink_spec("sum", sum_up, NULL));
    connect(g, a, 0, b, 0, 64);
    connect(g, b, 0, z, 0, 0);
    char dot[2048];
    int len = weft_graph_dot(g, dot, sizeof dot);
    CHECK(len > 0 && (size_t)len == strlen(dot), "length %d, text %zu", len, strlen(dot));
    const char *want[] = {"digraph \"say \\\"hi\\\"\"", "numbers\\nsource", "times3\\nmap x4 ordered",
                          "sum\\nsink", "n0 -> n1 [label=\"0:0 8B cap 64\"]",
                          "n1 -> n2 [label=\"0:0 8B cap 0\"]"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK(strstr(dot, want[i]) != NULL, "no '%s' in:\n%s", want[i], dot);
    char small[10];
    CHECK_RC(weft_graph_dot(g, small, sizeof small), len);
    CHECK(strlen(small) == sizeof small - 1 && memcmp(small, dot, sizeof small - 1) == 0,
          "truncated: '%s'", small);
    CHECK_RC(weft_graph_dot(g, NULL, 0), len);
    CHECK_RC(weft_graph_release(g), 0);
    return 0;
}

Test(graph, dot_names_nodes_kinds_and_capacities, .timeout = 30)
{
    run_at_workers(1, dot_main, NULL);
}

/* ---- the deadlock detector ------------------------------------------------------------------------ */

static char report[1 << 16];

static intptr_t stalled_main(void *arg)
{
    /* A join whose second input waits for its own output: after the first
     * value, every process of the graph blocks for good. */
    static struct counter c = {1, 5};
    static struct summer s;
    weft_graph g = make_graph("stalled");
    weft_node src = add(g, source_spec("numbers", &c));
    weft_node j = add(g, (weft_node_spec){.name = "stuck-join", .kind = WEFT_NODE_MAP,
                                          .inputs = 2, .outputs = 1, .in_size = {I64, I64},
                                          .out_size = {I64}, .fn = pair_up});
    weft_node bc = add(g, (weft_node_spec){.name = "feedback", .kind = WEFT_NODE_BROADCAST,
                                           .inputs = 1, .outputs = 2, .in_size = {I64},
                                           .out_size = {I64, I64}});
    weft_node out = add(g, sink_spec("out", sum_up, &s));
    connect(g, src, 0, j, 0, 1);
    connect(g, j, 0, bc, 0, 1);
    connect(g, bc, 0, j, 1, 1);
    connect(g, bc, 1, out, 0, 1);
    CHECK_RC(weft_graph_run(g, WEFT_FOREVER), 0);
    int rc = weft_graph_wait(g, WEFT_FOREVER);
    CHECK(rc == -ECANCELED, "wait: %d", rc); /* woken by the shutdown after the report */
    return 0;
}

Test(graph, a_stalled_graph_is_reported_with_its_nodes, .timeout = 30)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = 2;
    char path[] = "/tmp/weft-test-XXXXXX";
    int file = mkstemp(path);
    cr_assert_geq(file, 0);
    unlink(path);
    int saved = dup(STDERR_FILENO);
    dup2(file, STDERR_FILENO);
    int rc = weft_run(stalled_main, NULL, &cfg, NULL);
    dup2(saved, STDERR_FILENO);
    close(saved);
    lseek(file, 0, SEEK_SET);
    ssize_t n = read(file, report, sizeof report - 1);
    report[n > 0 ? n : 0] = '\0';
    close(file);
    ASSERT_CHECKS();
    ASSERT_RC(rc, -EDEADLK);
    cr_assert(strstr(report, "stuck-join") && strstr(report, "feedback"),
              "the report does not name the nodes:\n%s", report);
}

/* ---- bad input -------------------------------------------------------------------------------------- */

static intptr_t misuse_main(void *arg)
{
    struct counter c = {1, 10};
    struct summer s = {0};
    weft_graph g = make_graph("misuse");
    weft_node_spec src = source_spec("numbers", &c);
    weft_node a = add(g, src);
    CHECK_RC(weft_graph_add(g, &src, NULL), -EEXIST);
    weft_node_spec bad = src;
    bad.name = NULL;
    CHECK_RC(weft_graph_add(g, &bad, NULL), -EINVAL);
    bad.name = "0123456789012345678901234567890123456789";
    CHECK_RC(weft_graph_add(g, &bad, NULL), -ENAMETOOLONG);
    bad = src;
    bad.name = "other";
    bad.kind = 99;
    CHECK_RC(weft_graph_add(g, &bad, NULL), -EINVAL);
    bad.kind = WEFT_NODE_SOURCE;
    bad.fn = NULL;
    CHECK_RC(weft_graph_add(g, &bad, NULL), -EINVAL);
    bad.fn = count_up;
    bad.parallel = 2; /* a source fires one at a time */
    CHECK_RC(weft_graph_add(g, &bad, NULL), -EINVAL);
    bad.parallel = 0;
    bad.out_size[0] = 0;
    CHECK_RC(weft_graph_add(g, &bad, NULL), -EINVAL);
    bad = map_spec("small", times3);
    bad.inputs = 0;
    CHECK_RC(weft_graph_add(g, &bad, NULL), -EINVAL);
    CHECK_RC(weft_graph_add(g, NULL, NULL), -EINVAL);
    bad = map_spec("huge", times3); /* parallel firings travel packed: too big */
    bad.in_size[0] = bad.out_size[0] = WEFT_CHAN_ELEM_MAX;
    bad.parallel = 2;
    CHECK_RC(weft_graph_add(g, &bad, NULL), -E2BIG);

    weft_node_spec narrow = map_spec("narrow", times3);
    narrow.in_size[0] = 4;
    weft_node b = add(g, narrow);
    CHECK_RC(weft_graph_connect(g, a, 0, b, 0, 8), -EMSGSIZE);
    weft_node m = add(g, map_spec("times3", times3));
    weft_node z = add(g, sink_spec("sum", sum_up, &s));
    CHECK_RC(weft_graph_connect(g, a, 1, m, 0, 8), -EINVAL);
    CHECK_RC(weft_graph_connect(g, a, 0, 42, 0, 8), -EINVAL);
    CHECK_RC(weft_graph_connect(g, a, 0, m, 0, WEFT_CHAN_BUFFER_MAX), -E2BIG);
    connect(g, a, 0, m, 0, 8);
    CHECK_RC(weft_graph_connect(g, a, 0, z, 0, 8), -EISCONN);
    connect(g, m, 0, z, 0, 8);
    CHECK_RC(weft_graph_wait(g, 0), -EINVAL);       /* not run yet */
    CHECK_RC(weft_graph_cancel(g), -EINVAL);
    CHECK_RC(weft_graph_wait_node(g, z, 0), -EINVAL);
    CHECK_RC(weft_graph_run(g, WEFT_FOREVER), -ENOTCONN); /* "narrow" is loose */

    weft_graph h = make_graph("ok");
    struct counter c2 = {1, -1};
    weft_node ha = add(h, source_spec("numbers", &c2)), hz = add(h, sink_spec("sum", sum_up, &s));
    connect(h, ha, 0, hz, 0, 8);
    CHECK_RC(weft_graph_run(h, WEFT_FOREVER), 0);
    CHECK_RC(weft_graph_run(h, WEFT_FOREVER), -EALREADY);
    CHECK_RC(weft_graph_add(h, &src, NULL), -EBUSY);
    CHECK_RC(weft_graph_connect(h, ha, 0, hz, 0, 8), -EBUSY);
    CHECK_RC(weft_graph_release(h), -EBUSY);
    CHECK_RC(weft_graph_wait_node(h, 7, 0), -EINVAL);
    CHECK_RC(weft_graph_get_stats(h, NULL), -EINVAL);
    weft_graph_stats st = stats_of(h);
    CHECK_RC(st.result, -EINPROGRESS);
    CHECK_RC(weft_graph_cancel(h), 0);
    CHECK_RC(weft_graph_wait(h, WEFT_FOREVER), -ECANCELED);
    CHECK_RC(weft_graph_run(h, WEFT_FOREVER), -EALREADY);
    CHECK_RC(weft_graph_release(h), 0);
    /* Stale handles. */
    CHECK_RC(weft_graph_release(h), -EBADF);
    CHECK_RC(weft_graph_add(h, &src, NULL), -EBADF);
    CHECK_RC(weft_graph_connect(h, 0, 0, 1, 0, 1), -EBADF);
    CHECK_RC(weft_graph_validate(h, NULL, 0), -EBADF);
    CHECK_RC(weft_graph_dot(h, NULL, 0), -EBADF);
    CHECK_RC(weft_graph_run(h, WEFT_FOREVER), -EBADF);
    CHECK_RC(weft_graph_wait(h, 0), -EBADF);
    CHECK_RC(weft_graph_cancel(h), -EBADF);
    CHECK_RC(weft_graph_get_stats(h, &st), -EBADF);
    CHECK_RC(weft_graph_make(NULL, "x"), -EINVAL);
    weft_graph k;
    CHECK_RC(weft_graph_make(&k, NULL), -EINVAL);
    CHECK_RC(weft_graph_make(&k, ""), -EINVAL);
    CHECK_RC(weft_node_recv(NULL, 0, &st, 0), -EINVAL);
    CHECK_RC(weft_node_send(NULL, 0, &st, 0), -EINVAL);
    CHECK_RC(weft_graph_release(g), 0);
    return 0;
}

Test(graph, bad_input_gets_named_codes, .timeout = 30)
{
    run_at_workers(1, misuse_main, NULL);
}

Test(graph, calls_without_a_runtime_say_eshutdown)
{
    weft_graph g;
    ASSERT_RC(weft_graph_make(&g, "g"), -ESHUTDOWN);
    ASSERT_RC(weft_graph_run(1, 0), -ESHUTDOWN);
    ASSERT_RC(weft_graph_wait(1, 0), -ESHUTDOWN);
    ASSERT_RC(weft_graph_cancel(1), -ESHUTDOWN);
    ASSERT_RC(weft_graph_release(1), -ESHUTDOWN);
}

/* ---- outside threads and the runtime's stop ---------------------------------------------------------- */

Test(graph, built_run_and_awaited_from_an_outside_thread, .timeout = 30)
{
    start_workers(2);
    struct counter c = {1, 10000};
    struct summer s = {0};
    weft_graph g;
    ASSERT_OK(weft_graph_make(&g, "outside"));
    weft_node_spec a = source_spec("numbers", &c), z = sink_spec("sum", sum_up, &s);
    weft_node na, nz;
    ASSERT_OK(weft_graph_add(g, &a, &na));
    ASSERT_OK(weft_graph_add(g, &z, &nz));
    ASSERT_OK(weft_graph_connect(g, na, 0, nz, 0, 32));
    ASSERT_OK(weft_graph_run(g, WEFT_FOREVER));
    ASSERT_RC(weft_graph_wait_node(g, nz, WEFT_FOREVER), 0);
    ASSERT_RC(weft_graph_wait(g, WEFT_FOREVER), 0);
    cr_assert_eq(s.sum, 10000 * 10001 / 2);
    ASSERT_OK(weft_graph_release(g));
    ASSERT_OK(weft_stop(WEFT_FOREVER));
}

Test(graph, the_runtime_stop_ends_a_running_graph, .timeout = 30)
{
    for (int round = 0; round < 5; round++) {
        start_workers(2);
        struct counter c = {1, -1};
        struct atomic_summer s = {0};
        weft_graph g;
        ASSERT_OK(weft_graph_make(&g, "endless"));
        weft_node_spec a = source_spec("numbers", &c), m = map_spec("times3", times3),
                       z = sink_spec("sum", sum_atomic, &s);
        m.parallel = 3;
        m.ordered = round % 2;
        weft_node na, nm, nz;
        ASSERT_OK(weft_graph_add(g, &a, &na));
        ASSERT_OK(weft_graph_add(g, &m, &nm));
        ASSERT_OK(weft_graph_add(g, &z, &nz));
        ASSERT_OK(weft_graph_connect(g, na, 0, nm, 0, 4));
        ASSERT_OK(weft_graph_connect(g, nm, 0, nz, 0, 4));
        ASSERT_OK(weft_graph_run(g, WEFT_FOREVER));
        while (atomic_load(&s.count) < 1000)
            usleep(100);
        ASSERT_OK(weft_stop(WEFT_FOREVER)); /* frees the graph: leak checkers watch */
    }
}
