/* graph_cancel.c: the three ways a dataflow graph's run ends early (a node's
 * error, the run's deadline, a cancel from outside) and what each reports.
 *
 * Part 1, a failing node, on this graph:
 *
 *   numbers --> tee --------> square --> sum-squares
 *   SOURCE      BROADCAST     MAP        SINK
 *                  \
 *                   `-------> sum
 *                             SINK
 *
 * numbers emits 1, 2, ..., N; tee copies each value to both paths; square
 * emits v * v, but fails with -ERANGE on a v whose square is above LIMIT
 * (v > N / 2), which cancels the whole graph. Checked: weft_graph_wait
 * returns -ERANGE; the stats name square as the failed node;
 * weft_graph_wait_node gives square's -ERANGE and -ECANCELED for the sinks
 * (they were cancelled before their data ended); the stats count as emitted
 * exactly the values numbers emitted and as consumed exactly the firings of
 * the two sinks; sum-squares got 1, 4, 9, ... in order and no square above
 * LIMIT.
 *
 * Parts 2 to 4 check the accounting of a cancelled run on a linear graph,
 * numbers --> square --> sum-squares, where every node turns one value into
 * one value. (Behind tee one value becomes two, so whole-graph counts do not
 * add up the same way.) The stats count as dropped each value that a
 * cancellation discarded: taken from an edge but never fired on (or taken
 * by the firing that failed), emitted but never sent, or left in an edge,
 * each value once. On a linear path every value numbers emitted therefore
 * either reached sum-squares or was dropped on the way, and the check is
 *
 *     emitted == consumed + dropped
 *
 *  - part 2: square fails as in part 1 (its failing value is one of the
 *    dropped), and the result is -ERANGE;
 *  - part 3: sum-squares is slow (it sleeps SLOW_NS per value) and the run
 *    has a deadline DEADLINE_NS away: the result is -ETIMEDOUT, no node
 *    failed;
 *  - part 4: the same slow graph without a deadline; another process waits
 *    on a dataflow variable that sum-squares binds at its CANCEL_AT-th value,
 *    then calls weft_graph_cancel: the result is -ECANCELED, no node failed.
 *
 * Usage: example-graph_cancel [--n N] [--workers W] (N: 1000 or more,
 * default 1000000). Exits 0 only when every check passes. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "options.h"

enum {
    EDGE_CAP = 16,       /* values each edge buffers */
    CANCEL_AT = 100      /* part 4: sum-squares' value at which the canceller acts */
};
static const int64_t SLOW_NS = 100 * 1000;           /* parts 3, 4: sum-squares' sleep */
static const int64_t DEADLINE_NS = 20 * 1000 * 1000; /* part 3: the run's deadline */

/* The state of one run, shared by its nodes. Each counter belongs to one
 * node, whose firings run one at a time; the app reads them after
 * weft_graph_wait, which orders the run's writes before its return. */
struct run {
    int64_t n;            /* numbers emits 1..n */
    int64_t limit;        /* square fails on squares above it; 0: never */
    int64_t delay_ns;     /* sum-squares sleeps this long per value; 0: not */
    weft_dvar reached;    /* bound by sum-squares at its CANCEL_AT-th value, if set */
    int has_reached;
    uint64_t emitted;     /* numbers: values emitted */
    uint64_t failed;      /* square: firings that failed */
    uint64_t squares;     /* sum-squares: values consumed */
    uint64_t sums;        /* sum: values consumed */
    int out_of_order;     /* sum-squares: a value was not the next square */
};

/* numbers (SOURCE): 1, 2, ..., n, then the end. */
static int numbers_fn(void *state, const void *const *in, void *const *out)
{
    (void)in;
    struct run *r = state;
    if ((int64_t)r->emitted == r->n)
        return WEFT_NODE_END;
    int64_t v = (int64_t)++r->emitted;
    memcpy(out[0], &v, sizeof v);
    return 0;
}

/* square (MAP): v * v, or -ERANGE if that is above the limit. */
static int square_fn(void *state, const void *const *in, void *const *out)
{
    struct run *r = state;
    int64_t v;
    memcpy(&v, in[0], sizeof v);
    if (r->limit && v > r->limit / v) {
        r->failed++;
        return -ERANGE; /* fails the node: the graph is cancelled */
    }
    int64_t sq = v * v;
    memcpy(out[0], &sq, sizeof sq);
    return 0;
}

/* sum-squares (SINK): checks that the squares come in order; optionally
 * slow, and optionally binds r->reached at its CANCEL_AT-th value. */
static int sum_squares_fn(void *state, const void *const *in, void *const *out)
{
    (void)out;
    struct run *r = state;
    int64_t sq;
    memcpy(&sq, in[0], sizeof sq);
    int64_t k = (int64_t)++r->squares;
    if (sq != k * k)
        r->out_of_order = 1;
    if (r->has_reached && k == CANCEL_AT) {
        int err = weft_dvar_bind(r->reached, &k, sizeof k);
        if (err)
            return err;
    }
    return r->delay_ns ? weft_sleep(weft_now() + r->delay_ns) : 0;
}

/* sum (SINK): counts what it gets. */
static int sum_fn(void *state, const void *const *in, void *const *out)
{
    (void)in;
    (void)out;
    struct run *r = state;
    r->sums++;
    return 0;
}

/* Adds a node of kind with one int64_t port on each side that it has. */
static int add_node(weft_graph g, const char *name, int kind, unsigned outputs,
                    weft_node_fn fn, struct run *r, weft_node *node)
{
    weft_node_spec spec = {
        .name = name, .kind = kind, .fn = fn, .state = r,
        .inputs = kind == WEFT_NODE_SOURCE ? 0 : 1, .outputs = outputs,
    };
    for (unsigned i = 0; i < spec.inputs; i++)
        spec.in_size[i] = sizeof(int64_t);
    for (unsigned i = 0; i < spec.outputs; i++)
        spec.out_size[i] = sizeof(int64_t);
    return weft_graph_add(g, &spec, node);
}

/* ---- Checks and reports ---------------------------------------------------------- */

static int failures;

/* Prints one check and counts it if it failed. */
static void expect(int ok, const char *what)
{
    printf("  %s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok)
        failures++;
}

/* The name of each code this program meets. */
static const char *code_name(int err)
{
    switch (err) {
    case 0:
        return "0";
    case -ERANGE:
        return "-ERANGE";
    case -ETIMEDOUT:
        return "-ETIMEDOUT";
    case -ECANCELED:
        return "-ECANCELED";
    default:
        return weft_strerror(err);
    }
}

/* Prints the run's result and stats; returns 0 or get_stats' error. */
static int report(weft_graph g, int result, weft_graph_stats *st)
{
    int err = weft_graph_get_stats(g, st);
    if (err) {
        fprintf(stderr, "graph_cancel: weft_graph_get_stats: %s\n", weft_strerror(err));
        return err;
    }
    printf("  weft_graph_wait: %s; stats: result %s, failed node %d '%s', emitted %" PRIu64
           ", consumed %" PRIu64 ", dropped %" PRIu64 "\n",
           code_name(result), code_name(st->result), st->failed_node, st->failed_name,
           st->emitted, st->consumed, st->dropped);
    return 0;
}

/* ---- Part 1: a failing node behind a broadcast ------------------------------------ */

static int part_failing_broadcast(int64_t n)
{
    printf("part 1: square fails with -ERANGE above %" PRId64 "^2, tee feeds a second sink\n",
           n / 2);
    struct run r = {.n = n, .limit = (n / 2) * (n / 2)};
    weft_graph g;
    int err = weft_graph_make(&g, "broadcast");
    if (err)
        return err;
    weft_node numbers, tee, square, sum_squares, sum;
    err = add_node(g, "numbers", WEFT_NODE_SOURCE, 1, numbers_fn, &r, &numbers);
    if (!err)
        err = add_node(g, "tee", WEFT_NODE_BROADCAST, 2, NULL, &r, &tee);
    if (!err)
        err = add_node(g, "square", WEFT_NODE_MAP, 1, square_fn, &r, &square);
    if (!err)
        err = add_node(g, "sum-squares", WEFT_NODE_SINK, 0, sum_squares_fn, &r, &sum_squares);
    if (!err)
        err = add_node(g, "sum", WEFT_NODE_SINK, 0, sum_fn, &r, &sum);
    if (!err)
        err = weft_graph_connect(g, numbers, 0, tee, 0, EDGE_CAP);
    if (!err)
        err = weft_graph_connect(g, tee, 0, square, 0, EDGE_CAP);
    if (!err)
        err = weft_graph_connect(g, tee, 1, sum, 0, EDGE_CAP);
    if (!err)
        err = weft_graph_connect(g, square, 0, sum_squares, 0, EDGE_CAP);
    if (!err)
        err = weft_graph_run(g, WEFT_FOREVER);
    if (err)
        goto out;

    int result = weft_graph_wait(g, WEFT_FOREVER);
    weft_graph_stats st;
    err = report(g, result, &st);
    if (err)
        goto out;
    expect(result == -ERANGE, "the run's result is square's error, -ERANGE");
    expect(st.result == result, "the stats' result is the same");
    expect(st.failed_node == square && strcmp(st.failed_name, "square") == 0,
           "the stats name square as the failed node");
    expect(weft_graph_wait_node(g, square, 0) == -ERANGE,
           "weft_graph_wait_node(square) gives its own error");
    expect(weft_graph_wait_node(g, sum_squares, 0) == -ECANCELED &&
               weft_graph_wait_node(g, sum, 0) == -ECANCELED,
           "weft_graph_wait_node gives -ECANCELED for both sinks");
    expect(st.emitted == r.emitted, "emitted is what numbers emitted");
    expect(st.consumed == r.squares + r.sums, "consumed is what the two sinks consumed");
    expect(!r.out_of_order && (int64_t)r.squares <= n / 2,
           "sum-squares got 1, 4, 9, ... in order, none above the limit");
out:;
    int rerr = weft_graph_release(g);
    return err ? err : rerr;
}

/* ---- Parts 2 to 4: the accounting of a linear graph --------------------------------- */

/* Part 4's canceller: waits until sum-squares has reached CANCEL_AT values,
 * then cancels the run from outside the graph. */
struct canceller {
    weft_graph g;
    weft_dvar reached;
};

static intptr_t canceller(void *arg)
{
    const struct canceller *c = arg;
    int64_t k;
    int err = weft_dvar_get(c->reached, &k, sizeof k, WEFT_FOREVER);
    if (err)
        return err; /* failed by the app: the run ended before CANCEL_AT */
    return weft_graph_cancel(c->g);
}

enum ending { BY_ERROR, BY_DEADLINE, BY_CANCEL };

/* Runs numbers -> square -> sum-squares to the given ending and checks the
 * result and the accounting. */
static int part_linear(int64_t n, enum ending how)
{
    static const char *const title[] = {
        "part 2: linear graph, square fails with -ERANGE",
        "part 3: linear graph, slow sink, cut by the run's deadline",
        "part 4: linear graph, slow sink, cancelled by another process",
    };
    printf("%s\n", title[how]);
    struct run r = {.n = n};
    if (how == BY_ERROR)
        r.limit = (n / 2) * (n / 2);
    else
        r.delay_ns = SLOW_NS;

    weft_graph g;
    int err = weft_graph_make(&g, "linear");
    if (err)
        return err;
    struct canceller c = {.g = g};
    weft_pid pid;
    int spawned = 0;
    weft_node numbers, square, sum_squares;
    err = add_node(g, "numbers", WEFT_NODE_SOURCE, 1, numbers_fn, &r, &numbers);
    if (!err)
        err = add_node(g, "square", WEFT_NODE_MAP, 1, square_fn, &r, &square);
    if (!err)
        err = add_node(g, "sum-squares", WEFT_NODE_SINK, 0, sum_squares_fn, &r, &sum_squares);
    if (!err)
        err = weft_graph_connect(g, numbers, 0, square, 0, EDGE_CAP);
    if (!err)
        err = weft_graph_connect(g, square, 0, sum_squares, 0, EDGE_CAP);
    if (!err && how == BY_CANCEL) {
        err = weft_dvar_make(&c.reached, sizeof(int64_t));
        if (!err) {
            r.reached = c.reached;
            r.has_reached = 1;
            err = weft_spawn(&pid, canceller, &c, NULL);
            spawned = err == 0;
        }
    }
    if (!err)
        err = weft_graph_run(g, how == BY_DEADLINE ? weft_now() + DEADLINE_NS : WEFT_FOREVER);
    if (err)
        goto out;

    int result = weft_graph_wait(g, WEFT_FOREVER);
    weft_graph_stats st;
    err = report(g, result, &st);
    if (err)
        goto out;
    static const int want[] = {-ERANGE, -ETIMEDOUT, -ECANCELED};
    char what[96];
    snprintf(what, sizeof what, "the run's result is %s", code_name(want[how]));
    expect(result == want[how], what);
    if (how == BY_ERROR)
        expect(st.failed_node == square && strcmp(st.failed_name, "square") == 0,
               "the stats name square as the failed node");
    else
        expect(st.failed_node == -1 && st.failed_name[0] == '\0', "no node failed");
    expect(st.emitted == r.emitted && st.consumed == r.squares,
           "emitted and consumed are what numbers and sum-squares counted");
    expect(st.emitted == st.consumed + st.dropped, "emitted == consumed + dropped");
    if (how == BY_ERROR)
        expect(r.failed == 1 && st.dropped >= 1, "square failed once; its value is dropped");
    expect(!r.out_of_order, "sum-squares got the squares in order");
out:
    if (spawned) {
        /* If the run ended before CANCEL_AT, wake the canceller with an error. */
        if (weft_dvar_bound(c.reached) == 0)
            weft_dvar_fail(c.reached, -ECANCELED);
        intptr_t cr = -1;
        int jerr = weft_join(pid, &cr, WEFT_FOREVER);
        if (jerr && !err)
            err = jerr;
        if (!jerr)
            expect(cr == 0, "the canceller saw CANCEL_AT values and cancelled the run");
    }
    if (r.has_reached) {
        int derr = weft_dvar_release(c.reached);
        if (!err)
            err = derr;
    }
    int rerr = weft_graph_release(g);
    return err ? err : rerr;
}

static intptr_t app(void *arg)
{
    int64_t n = *(const int64_t *)arg;
    int err = part_failing_broadcast(n);
    for (int how = BY_ERROR; !err && how <= BY_CANCEL; how++)
        err = part_linear(n, (enum ending)how);
    if (err) {
        fprintf(stderr, "graph_cancel: %s\n", weft_strerror(err));
        return 1;
    }
    printf("graph_cancel: %s\n", failures ? "FAILED" : "every check passed");
    return failures != 0;
}

int main(int argc, char **argv)
{
    weft_config cfg;
    weft_config_init(&cfg);
    int64_t n = 1000000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--n") == 0)
            n = option_value(argc, argv, &i, 1000, 100000000); /* parts 3, 4 need 1000 */
        else if (strcmp(argv[i], "--workers") == 0)
            cfg.workers = (unsigned)option_value(argc, argv, &i, 0, WEFT_WORKERS_MAX);
        else {
            fprintf(stderr, "usage: %s [--n N] [--workers W]\n", argv[0]);
            return 2;
        }
    }
    intptr_t status = 1;
    int err = weft_run(app, &n, &cfg, &status);
    if (err)
        fprintf(stderr, "graph_cancel: weft_run: %s\n", weft_strerror(err));
    return err ? 1 : (int)status;
}
