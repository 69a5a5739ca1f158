/* bench_dataflow.c: the dataflow benchmark pipeline, built on weft's graph
 * API (weft_graph_*). It does the work of its peers in peers/go/pipeline.go
 * and peers/tbb/ (see ../shared/BENCH.md):
 *
 *   S stages (default 4, weft-bench --stages S, S >= 2) joined by edges of
 *   capacity 64. Stage 1, a SOURCE node, emits the int64 values 1..N in
 *   order; stages 2..S-1, MAP nodes, map each value (even-numbered stages
 *   v -> v*3, odd-numbered v -> v+1: S=4 is source, *3, +1, sink); stage S,
 *   a SINK node, sums what it receives. Every node fires one at a time.
 *
 * The sum is checked against the same maps applied to 1..N in a plain loop
 * (for S=4: 3N(N+1)/2 + N; unsigned, wrapping arithmetic on both sides),
 * and the graph's counts against N. The graph is built before the clock
 * starts; the timed span runs from just before weft_graph_run until
 * weft_graph_wait_node has seen the sink end after its last value. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

enum { PIPELINE_CAPACITY = 64, PIPELINE_STAGES = 4 };

struct pipeline_state {
    long n;
    unsigned stages;
    int64_t next;       /* the source's next value */
    uint64_t sum;       /* the sink's sum */
    uint64_t count;     /* values the sink summed */
    double seconds;
    char why[256];      /* what went wrong, for run_pipeline to print */
};

/* Stage k's map (2 <= k <= S-1), as the checker's and the peers'. */
static inline uint64_t stage_map(unsigned k, uint64_t v)
{
    return k % 2 == 0 ? v * 3 : v + 1;
}

static int pipe_source(void *state, const void *const *in, void *const *out)
{
    struct pipeline_state *s = state;
    (void)in;
    if (s->next > s->n)
        return WEFT_NODE_END;
    memcpy(out[0], &s->next, sizeof s->next);
    s->next++;
    return 0;
}

static int pipe_times3(void *state, const void *const *in, void *const *out)
{
    (void)state;
    uint64_t v;
    memcpy(&v, in[0], sizeof v);
    v = stage_map(2, v);
    memcpy(out[0], &v, sizeof v);
    return 0;
}

static int pipe_plus1(void *state, const void *const *in, void *const *out)
{
    (void)state;
    uint64_t v;
    memcpy(&v, in[0], sizeof v);
    v = stage_map(3, v);
    memcpy(out[0], &v, sizeof v);
    return 0;
}

static int pipe_sink(void *state, const void *const *in, void *const *out)
{
    struct pipeline_state *s = state;
    (void)out;
    uint64_t v;
    memcpy(&v, in[0], sizeof v);
    s->sum += v;
    s->count++;
    return 0;
}

static void pipe_fail(struct pipeline_state *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void pipe_fail(struct pipeline_state *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
}

/* Builds the S-stage graph into g; its sink's index into *sink. */
static int pipeline_build(struct pipeline_state *s, weft_graph g, weft_node *sink)
{
    weft_node prev = -1;
    for (unsigned k = 1; k <= s->stages; k++) {
        weft_node_spec spec = {0};
        char name[32];
        if (k == 1) {
            snprintf(name, sizeof name, "s1-source");
            spec.kind = WEFT_NODE_SOURCE;
            spec.fn = pipe_source;
            spec.state = s;
        } else if (k == s->stages) {
            snprintf(name, sizeof name, "s%u-sink", k);
            spec.kind = WEFT_NODE_SINK;
            spec.fn = pipe_sink;
            spec.state = s;
        } else {
            snprintf(name, sizeof name, k % 2 == 0 ? "s%u-times3" : "s%u-plus1", k);
            spec.kind = WEFT_NODE_MAP;
            spec.fn = k % 2 == 0 ? pipe_times3 : pipe_plus1;
        }
        spec.name = name;
        spec.inputs = k == 1 ? 0 : 1;
        spec.outputs = k == s->stages ? 0 : 1;
        if (spec.inputs)
            spec.in_size[0] = sizeof(int64_t);
        if (spec.outputs)
            spec.out_size[0] = sizeof(int64_t);
        weft_node node;
        int err = weft_graph_add(g, &spec, &node);
        if (err) {
            pipe_fail(s, "weft_graph_add(%s): %s", name, weft_strerror(err));
            return err;
        }
        if (k > 1 && (err = weft_graph_connect(g, prev, 0, node, 0, PIPELINE_CAPACITY)) != 0) {
            pipe_fail(s, "weft_graph_connect(stage %u to %u): %s", k - 1, k, weft_strerror(err));
            return err;
        }
        prev = node;
    }
    *sink = prev;
    return 0;
}

static intptr_t pipeline_main(void *arg)
{
    struct pipeline_state *s = arg;
    weft_graph g;
    int err = weft_graph_make(&g, "pipeline");
    if (err) {
        pipe_fail(s, "weft_graph_make: %s", weft_strerror(err));
        return -1;
    }
    weft_node sink;
    intptr_t r = -1;
    if (pipeline_build(s, g, &sink) != 0)
        goto out;
    int64_t t0 = weft_now();
    if ((err = weft_graph_run(g, WEFT_FOREVER)) != 0) {
        pipe_fail(s, "weft_graph_run: %s", weft_strerror(err));
        goto out;
    }
    int sink_err = weft_graph_wait_node(g, sink, WEFT_FOREVER);
    s->seconds = (weft_now() - t0) / 1e9;
    int run_err = weft_graph_wait(g, WEFT_FOREVER);
    weft_graph_stats st;
    if ((err = weft_graph_get_stats(g, &st)) != 0) {
        pipe_fail(s, "weft_graph_get_stats: %s", weft_strerror(err));
        goto out;
    }
    if (sink_err || run_err) {
        pipe_fail(s, "the run failed: sink %s, graph %s (node '%s')", weft_strerror(sink_err),
                  weft_strerror(run_err), st.failed_name);
        goto out;
    }
    if (st.emitted != (uint64_t)s->n || st.consumed != (uint64_t)s->n || st.dropped != 0) {
        pipe_fail(s, "graph counts: emitted %" PRIu64 ", consumed %" PRIu64 ", dropped %" PRIu64
                  ", want %ld, %ld, 0", st.emitted, st.consumed, st.dropped, s->n, s->n);
        goto out;
    }
    r = 0;
out:
    if ((err = weft_graph_release(g)) != 0 && r == 0) {
        pipe_fail(s, "weft_graph_release: %s", weft_strerror(err));
        r = -1;
    }
    return r;
}

static int run_pipeline(const struct bench_args *args, struct bench_result *out)
{
    static struct pipeline_state s;
    s = (struct pipeline_state){.n = args->n, .next = 1,
                                .stages = args->stages ? args->stages : PIPELINE_STAGES};
    if (bench_run(args, pipeline_main, &s) != 0) {
        fprintf(stderr, "pipeline: %s\n", s.why[0] ? s.why : "the runtime failed");
        return 1;
    }
    uint64_t want = 0;
    for (long v = 1; v <= s.n; v++) {
        uint64_t x = (uint64_t)v;
        for (unsigned k = 2; k < s.stages; k++)
            x = stage_map(k, x);
        want += x;
    }
    if (s.count != (uint64_t)s.n || s.sum != want) {
        fprintf(stderr,
                "pipeline: %u stages: the sink got %" PRIu64 " values summing to %" PRIu64
                ", want %ld summing to %" PRIu64 "\n",
                s.stages, s.count, s.sum, s.n, want);
        return 1;
    }
    out->seconds = s.seconds;
    out->value = s.seconds * 1e9 / (double)s.n;
    return 0;
}

const struct bench bench_pipeline = {"pipeline", 10000000, "ns per item (--stages S, default 4)",
                                     run_pipeline};
