/* graph_run.c: running a dataflow graph.
 *
 * Every edge is a weft channel of the edge's capacity. Every node runs as
 * processes named after it, all linked to one coordinator process:
 *  - one process per firing slot (parallel of them) that gathers a set of
 *    inputs, fires and emits, when the node has at most one input and keeps
 *    no order: the edges are many-to-many channels, so the firings share
 *    the input edge safely;
 *  - otherwise (a join of several inputs, or ordered outputs) a dispatcher
 *    gathers each set, numbers it and passes it on an internal channel to
 *    parallel workers; with ordered outputs the workers hand their results
 *    to a reorderer, which emits them by number. Tokens bound how far the
 *    dispatcher runs ahead of the reorderer (2 * parallel firings), so the
 *    reorder buffer never overflows.
 * The end of the data is the closing of channels: a node whose inputs are
 * closed and drained ends, and the last of its processes closes its outputs
 * (and its inputs, so that producers still sending stop too).
 * Stopping (an error, a cancel, the deadline) sets the graph's cancelled
 * flag and closes every channel, which wakes every process; each process
 * checks the flag after it gathers a set, so none fires after the stop.
 * Accounting: a value is counted dropped where it is discarded: by the
 * process that holds it, or, for what is left in channels, by the
 * coordinator, which drains them once every process has ended. So each
 * value a source emitted is consumed by a sink, or dropped once.
 */
#include <stdio.h>
#include <string.h>

#include "graph.h"

enum role { ROLE_FIRE, ROLE_STREAM, ROLE_DISPATCH, ROLE_WORKER, ROLE_REORDER, ROLE_CUSTOM };

/* A streamed node (one process, at most one input) moves up to BATCH_MAX
 * values per channel operation, within BATCH_BYTES per port: one lock hold
 * and one wake-up per batch instead of per value, which is what a value
 * crossing cores costs most. */
enum { BATCH_MAX = 64, BATCH_BYTES = 16 * 1024 };

/* What a firing emits. */
enum { EMIT_NONE = -1, EMIT_ALL = -2 }; /* >= 0: only that output */

/* Internal items are laid out in 16-byte steps, so that values keep the
 * alignment a node function may expect of them. */
#define ALIGN16(n) (((n) + 15) & ~(size_t)15)
enum { ITEM_HEAD = 16 }; /* seq (8 bytes) and the outcome (4) */

/* One process of a node, and a custom node's ports (weft_node_io). Owned
 * by the coordinator, which frees it after the process has ended. */
struct weft_node_io {
    struct weft__graph *g;
    struct gnode *n;
    weft_node index;
    int role;
    weft_pid pid;
    bool ended;                 /* the coordinator has seen it end */
    intptr_t reason;
    weft_chan in[WEFT_NODE_PORTS_MAX], out[WEFT_NODE_PORTS_MAX];
    const void *inp[WEFT_NODE_PORTS_MAX];
    void *outp[WEFT_NODE_PORTS_MAX];
    bool out_open[WEFT_NODE_PORTS_MAX];
    unsigned outputs_open;
    unsigned next_split;        /* SPLIT without fn: the next output */
    uint64_t emitted, consumed, dropped, skipped; /* flushed to the graph at its end */
    weft_case cases[WEFT_NODE_PORTS_MAX]; /* MERGE and weft_node_recv_any */
    struct weft__proc *self;    /* its process */
    unsigned batch;             /* values moved per channel operation (streamed) */
    bool passes_input;          /* FILTER, SPLIT, BROADCAST: the input goes out as it is */
    unsigned staged;            /* values staged in all (streamed) */
    uint32_t firing;            /* streamed: firings so far (wrapping) */
    unsigned pending[WEFT_NODE_PORTS_MAX]; /* values staged per output */
    uint32_t *staged_by[WEFT_NODE_PORTS_MAX]; /* the firing of each staged value */
    unsigned char *in_batch;    /* streamed: the values taken from input 0 */
    unsigned char *out_batch[WEFT_NODE_PORTS_MAX]; /* streamed: staged outputs */
    unsigned char *item;        /* dispatcher and workers: one packed item */
    unsigned char *slots;       /* reorderer: 2 * parallel items */
    size_t size;                /* of this block */
    _Alignas(16) unsigned char buf[]; /* the values: inputs, then outputs */
};

/* ---- node layout ------------------------------------------------------------------ */

static size_t in_offset(const struct gnode *n, unsigned port)
{
    size_t off = 0;
    for (unsigned i = 0; i < port; i++)
        off += ALIGN16(n->spec.in_size[i]);
    return off;
}

static size_t out_offset(const struct gnode *n, unsigned port)
{
    size_t off = 0;
    for (unsigned i = 0; i < port; i++)
        off += ALIGN16(n->spec.out_size[i]);
    return off;
}

static size_t work_item_size(const struct gnode *n)
{
    return ITEM_HEAD + in_offset(n, n->spec.inputs);
}

static size_t finished_item_size(const struct gnode *n)
{
    /* FILTER and SPLIT pass their input on as their output. */
    return ITEM_HEAD + out_offset(n, n->spec.outputs);
}

static bool dispatched(const struct gnode *n)
{
    int k = n->spec.kind;
    if (n->spec.parallel <= 1 || k == WEFT_NODE_CUSTOM)
        return false;
    bool ordered = n->spec.ordered && (k == WEFT_NODE_MAP || k == WEFT_NODE_FILTER ||
                                       k == WEFT_NODE_SPLIT) && n->spec.outputs > 0;
    return ordered || n->spec.inputs > 1;
}

static bool ordered(const struct gnode *n)
{
    return dispatched(n) && n->spec.ordered && n->spec.outputs > 0 &&
           n->spec.kind != WEFT_NODE_SINK;
}

/* ---- ending ---------------------------------------------------------------------------- */

static inline bool stopped(const struct weft__graph *g)
{
    return atomic_load_explicit(&g->cancelled, memory_order_relaxed);
}

static void close_list(const weft_chan *chs, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        weft__chan_close_quiet(chs[i]);
}

/* The process fails the node with err (a node function's error). */
static intptr_t fail(struct weft_node_io *io, int err)
{
    int expected = 0;
    atomic_compare_exchange_strong(&io->n->result, &expected, err);
    weft__graph_stop(io->g, err, io->index);
    return err;
}

/* A process's end: its counts go to the graph; the last of the processes
 * that send the node's outputs closes them, and its inputs. */
static intptr_t finish(struct weft_node_io *io, intptr_t result)
{
    struct weft__graph *g = io->g;
    struct gnode *n = io->n;
    if (io->emitted)
        atomic_fetch_add(&g->emitted, io->emitted);
    if (io->consumed)
        atomic_fetch_add(&g->consumed, io->consumed);
    if (io->dropped)
        atomic_fetch_add(&g->dropped, io->dropped);
    if (io->skipped)
        atomic_fetch_add(&g->skipped, io->skipped);
    if (result == 0 && stopped(g))
        result = -ECANCELED;
    switch (io->role) {
    case ROLE_DISPATCH:
        close_list(io->in, n->spec.inputs);
        weft__chan_close_quiet(n->work);
        break;
    case ROLE_WORKER:
        if (ordered(n)) {
            if (atomic_fetch_sub(&n->workers_live, 1) == 1)
                weft__chan_close_quiet(n->finished);
        } else if (atomic_fetch_sub(&n->live, 1) == 1) {
            close_list(io->out, n->spec.outputs);
        }
        break;
    default: /* FIRE, CUSTOM, REORDER */
        if (atomic_fetch_sub(&n->live, 1) == 1) {
            close_list(io->in, n->spec.inputs);
            close_list(io->out, n->spec.outputs);
        }
    }
    return result;
}

/* ---- gathering, firing, emitting -------------------------------------------------- */

/* Receives a whole set (one value per input, in port order) into io->inp.
 * 0, or -EPIPE (an input has ended: no whole set can come; the values
 * taken so far are dropped), -ECANCELED. */
static int gather_join(struct weft_node_io *io)
{
    const struct gnode *n = io->n;
    for (unsigned i = 0; i < n->spec.inputs; i++) {
        int err = weft_chan_recv(io->in[i], (void *)io->inp[i], n->spec.in_size[i], WEFT_FOREVER);
        if (weft__unlikely(err)) {
            io->dropped += i;
            return err;
        }
    }
    return 0;
}

/* MERGE and recv_any: the first input that holds a value. Its port, or
 * -EPIPE once every input has ended, -ECANCELED. */
static int gather_any(struct weft_node_io *io, int64_t deadline)
{
    unsigned n = io->n->spec.inputs, open = 0;
    for (unsigned k = 0; k < n; k++)
        open += !io->cases[k].disabled;
    if (open == 0)
        return -EPIPE;
    while (1) {
        int i = weft_select(io->cases, n, WEFT_SELECT_FAIR, deadline);
        if (i < 0)
            return i;
        if (io->cases[i].result == 0)
            return i;
        io->cases[i].disabled = 1; /* ended */
        if (--open == 0)
            return -EPIPE;
    }
}

/* A node function's answer for a firing that emits: 0 (all outputs) or
 * WEFT_NODE_SKIP (none); anything else positive is out of the contract. */
static int emits(int r, int *what)
{
    if (r == 0 || r == WEFT_NODE_SKIP) {
        *what = r == 0 ? EMIT_ALL : EMIT_NONE;
        return 0;
    }
    return r < 0 ? r : -ERANGE;
}

/* Calls the node's function on io->inp into io->outp and stores what to
 * emit in *what (EMIT_ALL, EMIT_NONE or an output). Returns 0, WEFT_NODE_END
 * (a source's end) or the function's error. */
static int fire(struct weft_node_io *io, int port, int *what)
{
    const weft_node_spec *s = &io->n->spec;
    int r;
    switch (s->kind) {
    case WEFT_NODE_SOURCE:
        r = s->fn(s->state, NULL, io->outp);
        return r == WEFT_NODE_END ? r : emits(r, what);
    case WEFT_NODE_MAP:
    case WEFT_NODE_SINK:
        r = s->fn(s->state, io->inp, io->outp);
        if (s->kind == WEFT_NODE_SINK && (r == 0 || r == WEFT_NODE_SKIP))
            io->consumed += s->inputs;
        else if (r == WEFT_NODE_SKIP)
            io->skipped += s->inputs;
        return emits(r, what);
    case WEFT_NODE_FILTER:
        r = s->fn(s->state, io->inp, NULL);
        if (r == WEFT_NODE_SKIP)
            io->skipped++;
        return emits(r, what);
    case WEFT_NODE_SPLIT:
        r = s->fn ? s->fn(s->state, io->inp, NULL) : (int)(io->next_split++ % s->outputs);
        if (r < 0 || (unsigned)r >= s->outputs)
            return r < 0 ? r : -ERANGE;
        *what = r;
        return 0;
    case WEFT_NODE_MERGE:
        if (!s->fn) {
            io->outp[0] = (void *)io->inp[port];
            *what = EMIT_ALL;
            return 0;
        }
        for (unsigned i = 0; i < s->inputs; i++)
            io->inp[i] = (int)i == port ? io->buf + in_offset(io->n, i) : NULL;
        r = s->fn(s->state, io->inp, io->outp);
        if (r == WEFT_NODE_SKIP)
            io->skipped++;
        return emits(r, what);
    default: /* BROADCAST */
        *what = EMIT_ALL;
        return 0;
    }
}

/* Sends what a firing emits from out[]. false: the process should end (the
 * graph is stopped, or every output has ended). */
static bool emit(struct weft_node_io *io, int what, void *const *out)
{
    const weft_node_spec *s = &io->n->spec;
    unsigned first = what >= 0 ? (unsigned)what : 0;
    unsigned last = what >= 0 ? (unsigned)what + 1 : what == EMIT_ALL ? s->outputs : 0;
    if (s->kind == WEFT_NODE_SOURCE)
        io->emitted += last - first;
    for (unsigned j = first; j < last; j++) {
        if (weft__unlikely(!io->out_open[j])) {
            io->dropped++;
            continue;
        }
        int err = weft_chan_send(io->out[j], out[j], s->out_size[j], WEFT_FOREVER);
        if (weft__likely(err == 0))
            continue;
        io->dropped++;
        if (err != -EPIPE || stopped(io->g))
            return false;
        io->out_open[j] = false; /* the next node has ended */
        io->outputs_open--;
    }
    return io->outputs_open > 0 || s->outputs == 0;
}

/* The loop of a node without dispatcher: gather, fire, emit, until the end
 * of its data, a stop or an error. */
static intptr_t run_fire(struct weft_node_io *io)
{
    const weft_node_spec *s = &io->n->spec;
    bool any = s->kind == WEFT_NODE_MERGE;
    while (1) {
        int port = 0, err = 0;
        if (s->inputs)
            err = any ? (port = gather_any(io, WEFT_FOREVER)) < 0 ? port : 0 : gather_join(io);
        else if (weft__unlikely(stopped(io->g)))
            break;
        if (weft__unlikely(err))
            return finish(io, err == -EPIPE ? 0 : err);
        unsigned held = any ? 1 : s->inputs;
        if (weft__unlikely(stopped(io->g))) {
            io->dropped += held;
            break;
        }
        int what, r = fire(io, port, &what);
        if (weft__unlikely(r == WEFT_NODE_END))
            break;
        if (weft__unlikely(r < 0)) {
            io->dropped += held;
            return finish(io, fail(io, r));
        }
        if (!emit(io, what, io->outp))
            break;
    }
    return finish(io, 0);
}

/* ---- streamed nodes: batches in, batches out ------------------------------------- */

/* A port's send failed with err after sent of its staged values: they
 * are dropped. false: the process should end (the graph is stopped); else
 * the next node has ended and the port is closed to this node. */
static bool port_failed(struct weft_node_io *io, unsigned j, unsigned sent, int err)
{
    io->dropped += io->pending[j] - sent;
    if (err != -EPIPE || stopped(io->g))
        return false;
    io->out_open[j] = false;
    io->outputs_open--;
    return true;
}

/* Sends the staged outputs, as many per lock hold as fit. Where a port has
 * no room, it waits to send only the staged value that a node sending one
 * value at a time would have been blocked on: the one of the earliest
 * firing (the first port among equals). So batching adds no wait that
 * sending one value at a time would not have: a broadcast feeding both
 * inputs of a join through small edges still moves. false: the process
 * should end (the graph is stopped, or every output has ended). */
static bool flush(struct weft_node_io *io)
{
    const weft_node_spec *s = &io->n->spec;
    unsigned sent[WEFT_NODE_PORTS_MAX] = {0};
    bool go = true;
    io->self->before_block = NULL;
    while (go && io->staged) {
        int first = -1;
        for (unsigned j = 0; j < s->outputs && go; j++) {
            unsigned put;
            if (sent[j] == io->pending[j])
                continue;
            int err = weft__chan_send_batch(io->out[j], io->out_batch[j] + sent[j] * s->out_size[j],
                                            s->out_size[j], io->pending[j] - sent[j], &put, 0);
            sent[j] += put;
            if (err && err != -ETIMEDOUT) {
                go = port_failed(io, j, sent[j], err);
                sent[j] = io->pending[j];
            }
            if (sent[j] < io->pending[j] &&
                (first < 0 || (int32_t)(io->staged_by[j][sent[j]] -
                                        io->staged_by[first][sent[first]]) < 0))
                first = (int)j;
        }
        if (!go || first < 0)
            break;
        unsigned j = (unsigned)first;
        int err = weft_chan_send(io->out[j], io->out_batch[j] + sent[j] * s->out_size[j],
                                 s->out_size[j], WEFT_FOREVER);
        if (err) {
            go = port_failed(io, j, sent[j], err);
            sent[j] = io->pending[j];
        } else {
            sent[j]++;
        }
    }
    for (unsigned j = 0; j < s->outputs; j++) {
        if (sent[j] < io->pending[j])
            io->dropped += io->pending[j] - sent[j];
        io->pending[j] = 0;
    }
    io->staged = 0;
    return go && (io->outputs_open > 0 || s->outputs == 0);
}

static void flush_before_block(void *io)
{
    flush(io);
}

/* Stages what a firing emits (a copy of the input for the kinds that pass
 * it on, else of what fn wrote); flushes when a port's batch is full. The
 * node's process sends what it holds before any blocking call it makes, fn's
 * included (before_block), so a staged value never waits on something else
 * than its own edge. */
static bool stage(struct weft_node_io *io, int what)
{
    const weft_node_spec *s = &io->n->spec;
    unsigned first = what >= 0 ? (unsigned)what : 0;
    unsigned last = what >= 0 ? (unsigned)what + 1 : what == EMIT_ALL ? s->outputs : 0;
    bool full = false;
    uint32_t firing = io->firing++;
    if (s->kind == WEFT_NODE_SOURCE)
        io->emitted += last - first;
    for (unsigned j = first; j < last; j++) {
        if (weft__unlikely(!io->out_open[j])) {
            io->dropped++;
            continue;
        }
        unsigned k = io->pending[j]++;
        memcpy(io->out_batch[j] + k * s->out_size[j], io->passes_input ? io->inp[0] : io->outp[j],
               s->out_size[j]);
        io->staged_by[j][k] = firing;
        full |= k + 1 == io->batch;
        if (io->staged++ == 0) {
            io->self->before_block = flush_before_block;
            io->self->before_block_arg = io;
        }
    }
    return !full || flush(io);
}

/* The loop of a node of one process and at most one input: take a batch,
 * fire on each value, stage the outputs, send them as batches. */
static intptr_t run_stream(struct weft_node_io *io)
{
    const weft_node_spec *s = &io->n->spec;
    intptr_t result = 0;
    io->self = weft__proc_current();
    while (1) {
        unsigned got = io->batch;
        if (s->inputs) {
            int r = weft__chan_recv_batch(io->in[0], io->in_batch, s->in_size[0], io->batch,
                                          WEFT_FOREVER);
            if (weft__unlikely(r < 0)) {
                if (r != -EPIPE)
                    result = r;
                break;
            }
            got = (unsigned)r;
        }
        for (unsigned at = 0; at < got; at++) {
            if (weft__unlikely(stopped(io->g))) {
                io->dropped += s->inputs ? got - at : 0;
                goto out;
            }
            if (s->inputs)
                io->inp[0] = io->in_batch + at * s->in_size[0];
            int what, r = fire(io, 0, &what);
            if (weft__unlikely(r == WEFT_NODE_END))
                goto out;
            if (weft__unlikely(r < 0)) {
                io->dropped += s->inputs ? got - at : 0;
                intptr_t err = fail(io, r); /* stops the graph: the flush drops */
                flush(io);
                return finish(io, err);
            }
            if (weft__unlikely(!stage(io, what))) {
                io->dropped += s->inputs ? got - at - 1 : 0;
                goto out;
            }
        }
        if (!flush(io))
            goto out;
    }
out:
    flush(io);
    return finish(io, result);
}

/* ---- parallel firings with a dispatcher ------------------------------------------ */

static intptr_t run_dispatch(struct weft_node_io *io)
{
    struct gnode *n = io->n;
    bool in_order = ordered(n);
    uint64_t seq = 0;
    while (1) {
        unsigned char token;
        if (in_order && weft_chan_recv(n->tokens, &token, 1, WEFT_FOREVER) != 0)
            break;
        int err = gather_join(io);
        if (err)
            return finish(io, err == -EPIPE ? 0 : err);
        if (stopped(io->g)) {
            io->dropped += n->spec.inputs;
            break;
        }
        memcpy(io->item, &seq, sizeof seq);
        seq++;
        if (weft_chan_send(n->work, io->item, work_item_size(n), WEFT_FOREVER) != 0) {
            io->dropped += n->spec.inputs;
            break;
        }
    }
    return finish(io, 0);
}

/* How many values an emit of what carries. */
static unsigned values_of(const struct gnode *n, int what)
{
    return what >= 0 ? 1 : what == EMIT_ALL ? n->spec.outputs : 0;
}

static intptr_t run_worker(struct weft_node_io *io)
{
    struct gnode *n = io->n;
    const weft_node_spec *s = &n->spec;
    bool in_order = ordered(n);
    unsigned char *result = io->buf + in_offset(n, s->inputs); /* finished item */
    void *out[WEFT_NODE_PORTS_MAX];
    for (unsigned j = 0; j < s->outputs; j++)
        out[j] = result + ITEM_HEAD + out_offset(n, j);
    while (1) {
        if (weft_chan_recv(n->work, io->item, work_item_size(n), WEFT_FOREVER) != 0)
            break;
        if (stopped(io->g)) {
            io->dropped += s->inputs;
            break;
        }
        for (unsigned i = 0; i < s->inputs; i++)
            io->inp[i] = io->item + ITEM_HEAD + in_offset(n, i);
        for (unsigned j = 0; j < s->outputs; j++)
            io->outp[j] = out[j];
        int what, r = fire(io, 0, &what);
        if (r < 0) {
            io->dropped += s->inputs;
            return finish(io, fail(io, r));
        }
        if (io->passes_input)
            memcpy(out[what >= 0 ? what : 0], io->inp[0], s->in_size[0]);
        if (!in_order) {
            if (!emit(io, what, out))
                break;
            continue;
        }
        memcpy(result, io->item, sizeof(uint64_t)); /* the seq */
        memcpy(result + 8, &what, sizeof what);
        if (weft_chan_send(n->finished, result, finished_item_size(n), WEFT_FOREVER) != 0) {
            io->dropped += values_of(n, what);
            break;
        }
    }
    return finish(io, 0);
}

/* Emits finished firings in the order of their numbers. Firing seq sits in
 * slot seq % window until those before it are out; the dispatcher takes a
 * token per firing and gets it back here, so no more than window are ever
 * between them. */
static intptr_t run_reorder(struct weft_node_io *io)
{
    struct gnode *n = io->n;
    size_t isz = finished_item_size(n);
    uint64_t window = 2 * (uint64_t)n->spec.parallel, next = 0;
    bool *full = (bool *)(io->slots + window * isz);
    void *out[WEFT_NODE_PORTS_MAX];
    bool go = true;
    while (go && weft_chan_recv(n->finished, io->item, isz, WEFT_FOREVER) == 0) {
        uint64_t seq;
        memcpy(&seq, io->item, sizeof seq);
        memcpy(io->slots + (seq % window) * isz, io->item, isz);
        full[seq % window] = true;
        while (go && full[next % window]) {
            unsigned char *slot = io->slots + (next % window) * isz;
            int what;
            memcpy(&what, slot + 8, sizeof what);
            full[next % window] = false;
            next++;
            for (unsigned j = 0; j < n->spec.outputs; j++)
                out[j] = slot + ITEM_HEAD + out_offset(n, j);
            unsigned char token = 0;
            weft_chan_send(n->tokens, &token, 1, 0); /* never full: see above */
            if (stopped(io->g)) {
                io->dropped += values_of(n, what);
                go = false;
            } else {
                go = emit(io, what, out);
            }
        }
    }
    for (uint64_t i = 0; i < window; i++) /* firings whose turn never came */
        if (full[i]) {
            int what;
            memcpy(&what, io->slots + i * isz + 8, sizeof what);
            io->dropped += values_of(n, what);
        }
    return finish(io, 0);
}

/* ---- custom nodes ---------------------------------------------------------------------- */

static intptr_t run_custom(struct weft_node_io *io)
{
    const weft_node_spec *s = &io->n->spec;
    int r = s->body(s->state, io);
    return finish(io, r < 0 && !(r == -ECANCELED && stopped(io->g)) ? fail(io, r) : 0);
}

static int check_io(weft_node_io *io, unsigned port, bool input, const void *value,
                    const char *fn)
{
    if (!io || !value)
        return weft__misuse(-EINVAL, "%s: %s is NULL", fn, io ? "value" : "io");
    if (port >= (input ? io->n->spec.inputs : io->n->spec.outputs))
        return weft__misuse(-EINVAL, "%s: node '%s' has no %s %u", fn, io->n->name,
                            input ? "input" : "output", port);
    return 0;
}

/* A closed channel after a stop means the stop, not the end of the data. */
static int port_result(weft_node_io *io, int err)
{
    return err == -EPIPE && stopped(io->g) ? -ECANCELED : err;
}

int weft_node_recv(weft_node_io *io, unsigned port, void *value, int64_t deadline)
{
    int err = check_io(io, port, true, value, "weft_node_recv");
    if (err)
        return err;
    if (stopped(io->g))
        return -ECANCELED;
    err = port_result(io, weft_chan_recv(io->in[port], value, io->n->spec.in_size[port],
                                         deadline));
    if (err == 0 && io->n->spec.outputs == 0) /* a custom sink */
        io->consumed++;
    return err;
}

int weft_node_recv_any(weft_node_io *io, unsigned *port, void *value, int64_t deadline)
{
    int err = check_io(io, 0, true, value, "weft_node_recv_any");
    if (err)
        return err;
    if (!port)
        return weft__misuse(-EINVAL, "weft_node_recv_any: port is NULL");
    if (stopped(io->g))
        return -ECANCELED;
    for (unsigned i = 0; i < io->n->spec.inputs; i++)
        io->cases[i].buf = value;
    int i = gather_any(io, deadline);
    if (i < 0)
        return port_result(io, i);
    *port = (unsigned)i;
    if (io->n->spec.outputs == 0)
        io->consumed++;
    return 0;
}

int weft_node_send(weft_node_io *io, unsigned port, const void *value, int64_t deadline)
{
    int err = check_io(io, port, false, value, "weft_node_send");
    if (err)
        return err;
    if (stopped(io->g))
        return -ECANCELED;
    if (io->n->spec.inputs == 0) /* a custom source */
        io->emitted++;
    err = port_result(io, weft_chan_send(io->out[port], value, io->n->spec.out_size[port],
                                         deadline));
    if (err && io->n->spec.inputs == 0)
        io->dropped++;
    return err;
}

/* ---- processes ---------------------------------------------------------------------------- */

static intptr_t node_main(void *arg)
{
    struct weft_node_io *io = arg;
    switch (io->role) {
    case ROLE_DISPATCH:
        return run_dispatch(io);
    case ROLE_WORKER:
        return run_worker(io);
    case ROLE_REORDER:
        return run_reorder(io);
    case ROLE_CUSTOM:
        return run_custom(io);
    case ROLE_STREAM:
        return run_stream(io);
    default:
        return run_fire(io);
    }
}

/* Values per batch of a streamed node: BATCH_MAX, fewer for large values. */
static unsigned batch_of(const struct gnode *n)
{
    size_t largest = n->spec.inputs ? n->spec.in_size[0] : 1;
    for (unsigned j = 0; j < n->spec.outputs; j++)
        if (n->spec.out_size[j] > largest)
            largest = n->spec.out_size[j];
    size_t b = BATCH_BYTES / largest;
    return b < 1 ? 1 : b > BATCH_MAX ? BATCH_MAX : (unsigned)b;
}

/* A process's block: the io, its input and output values, the packed items
 * its role handles, and a streamed node's batches. */
static struct weft_node_io *io_make(struct weft__graph *g, weft_node index, int role)
{
    struct gnode *n = &g->nodes[index];
    size_t values = in_offset(n, n->spec.inputs) + out_offset(n, n->spec.outputs);
    size_t item = 0, slots = 0;
    if (role == ROLE_DISPATCH || role == ROLE_WORKER)
        item = ALIGN16(work_item_size(n));
    if (role == ROLE_WORKER)
        values = in_offset(n, n->spec.inputs) + ALIGN16(finished_item_size(n));
    if (role == ROLE_REORDER) {
        item = ALIGN16(finished_item_size(n));
        slots = 2 * (size_t)n->spec.parallel * (finished_item_size(n) + 1);
    }
    unsigned batch = role == ROLE_STREAM ? batch_of(n) : 0;
    size_t batches = 0;
    if (batch) {
        batches = n->spec.inputs ? ALIGN16(batch * n->spec.in_size[0]) : 0;
        for (unsigned j = 0; j < n->spec.outputs; j++)
            batches += ALIGN16(batch * n->spec.out_size[j]) + ALIGN16(batch * sizeof(uint32_t));
    }
    size_t size = sizeof(struct weft_node_io) + ALIGN16(values) + item + slots + batches;
    struct weft_node_io *io = weft__calloc(size);
    if (!io)
        return NULL;
    io->size = size;
    if (batch) {
        unsigned char *at = io->buf + ALIGN16(values);
        io->batch = batch;
        if (n->spec.inputs) {
            io->in_batch = at;
            at += ALIGN16(batch * n->spec.in_size[0]);
        }
        for (unsigned j = 0; j < n->spec.outputs; j++) {
            io->out_batch[j] = at;
            at += ALIGN16(batch * n->spec.out_size[j]);
            io->staged_by[j] = (uint32_t *)at;
            at += ALIGN16(batch * sizeof(uint32_t));
        }
    }
    io->g = g;
    io->n = n;
    io->index = index;
    io->role = role;
    io->item = item ? io->buf + ALIGN16(values) : NULL;
    io->slots = slots ? io->item + item : NULL;
    for (unsigned i = 0; i < n->spec.inputs; i++) {
        io->in[i] = g->edges[n->in_edge[i]].ch;
        /* A dispatcher gathers straight into the item it passes on. */
        io->inp[i] = (role == ROLE_DISPATCH ? io->item + ITEM_HEAD : io->buf) + in_offset(n, i);
        io->cases[i] = (weft_case){.kind = WEFT_CASE_RECV, .handle = io->in[i],
                                   .buf = (void *)io->inp[i], .size = n->spec.in_size[i]};
    }
    size_t outs = in_offset(n, n->spec.inputs);
    int k = n->spec.kind;
    io->passes_input = k == WEFT_NODE_FILTER || k == WEFT_NODE_SPLIT || k == WEFT_NODE_BROADCAST;
    for (unsigned j = 0; j < n->spec.outputs; j++) {
        io->out[j] = g->edges[n->out_edge[j]].ch;
        io->out_open[j] = true;
        io->outp[j] = io->passes_input ? (void *)io->inp[0] : io->buf + outs + out_offset(n, j);
    }
    io->outputs_open = n->spec.outputs;
    return io;
}

/* The processes a node runs as, in io_make's roles. */
static unsigned roles_of(const struct gnode *n, int *roles, unsigned max)
{
    unsigned k = 0, p = n->spec.parallel;
    if (n->spec.kind == WEFT_NODE_CUSTOM) {
        for (; k < p && k < max; k++)
            roles[k] = ROLE_CUSTOM;
        return k;
    }
    if (p == 1 && n->spec.inputs <= 1 && n->spec.kind != WEFT_NODE_MERGE) {
        roles[k++] = ROLE_STREAM;
        return k;
    }
    if (!dispatched(n)) {
        for (; k < p && k < max; k++)
            roles[k] = ROLE_FIRE;
        return k;
    }
    roles[k++] = ROLE_DISPATCH;
    for (unsigned i = 0; i < p && k < max; i++)
        roles[k++] = ROLE_WORKER;
    if (ordered(n) && k < max)
        roles[k++] = ROLE_REORDER;
    return k;
}

/* ---- the coordinator -------------------------------------------------------------------------- */

struct run {
    struct weft__graph *g;
    struct weft_node_io **procs;
    unsigned nprocs, running;
    unsigned *left;           /* per node: its processes still running */
};

static void run_free(struct run *r)
{
    for (unsigned i = 0; i < r->nprocs; i++)
        if (r->procs[i])
            weft__free(r->procs[i], r->procs[i]->size);
    weft__free(r->procs, r->nprocs * sizeof *r->procs);
    weft__free(r->left, r->g->nnodes * sizeof *r->left);
}

static int spawn_all(struct run *r)
{
    struct weft__graph *g = r->g;
    int roles[PARALLEL_ROLES];
    unsigned total = 0;
    for (unsigned i = 0; i < g->nnodes; i++)
        total += roles_of(&g->nodes[i], roles, PARALLEL_ROLES);
    r->procs = weft__calloc(total * sizeof *r->procs);
    r->left = weft__calloc(g->nnodes * sizeof *r->left);
    if (!r->procs || !r->left)
        return -ENOMEM;
    r->nprocs = total;
    unsigned p = 0;
    for (unsigned i = 0; i < g->nnodes; i++) {
        struct gnode *n = &g->nodes[i];
        unsigned k = roles_of(n, roles, PARALLEL_ROLES);
        unsigned senders = 0;
        for (unsigned j = 0; j < k; j++) {
            if (!(r->procs[p + j] = io_make(g, (weft_node)i, roles[j])))
                return -ENOMEM;
            senders += roles[j] != ROLE_DISPATCH && !(roles[j] == ROLE_WORKER && ordered(n));
        }
        /* The last of the processes that send the outputs closes them. */
        atomic_store(&n->live, senders);
        atomic_store(&n->workers_live, ordered(n) ? n->spec.parallel : 0);
        p += k;
    }
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    size_t default_stack = opts.stack_size;
    opts.link = 1;
    opts.detached = 1;
    for (p = 0; p < total; p++) {
        struct weft_node_io *io = r->procs[p];
        char name[WEFT_NAME_MAX];
        snprintf(name, sizeof name, "%s", io->n->name);
        opts.name = name;
        opts.stack_size = io->n->spec.stack_size ? io->n->spec.stack_size : default_stack;
        int err = weft_spawn(&io->pid, node_main, io, &opts);
        if (err) {
            /* Those not started never end: count them out now. */
            for (unsigned q = p; q < total; q++)
                r->procs[q]->ended = true;
            return err;
        }
        r->left[io->index]++;
        r->running++;
    }
    return 0;
}

static struct weft_node_io *proc_of(struct run *r, weft_pid pid)
{
    for (unsigned i = 0; i < r->nprocs; i++)
        if (r->procs[i]->pid == pid && !r->procs[i]->ended)
            return r->procs[i];
    return NULL;
}

/* A node's result: its own error; else -ECANCELED if one of its processes
 * was stopped by the graph's stop; else 0. */
static int node_result(struct run *r, weft_node index)
{
    int own = atomic_load(&r->g->nodes[index].result);
    if (own)
        return own;
    for (unsigned i = 0; i < r->nprocs; i++)
        if (r->procs[i]->index == index && r->procs[i]->reason != 0)
            return -ECANCELED;
    return 0;
}

static void bind_result(weft_dvar dv, int result)
{
    weft_dvar_bind(dv, &result, sizeof result); /* -EALREADY: bound before */
}

/* A process has ended with reason (its result, or a kill's reason). */
static void ended(struct run *r, struct weft_node_io *io, intptr_t reason)
{
    io->ended = true;
    io->reason = reason;
    r->running--;
    struct weft__graph *g = r->g;
    bool ours = reason == 0 || reason == -ECANCELED || reason == atomic_load(&io->n->result);
    if (!ours) { /* killed from outside: the node fails with what it can tell */
        int err = reason < 0 && reason > -4096 ? (int)reason : -ECONNABORTED;
        int expected = 0;
        atomic_compare_exchange_strong(&io->n->result, &expected, err);
        weft__graph_stop(g, err, io->index);
    }
    if (--r->left[io->index] == 0)
        bind_result(io->n->done, node_result(r, io->index));
}

/* Counts what the run left in its channels as dropped. */
static void drain(struct weft__graph *g)
{
    unsigned char *buf = weft__alloc(WEFT_CHAN_ELEM_MAX);
    if (!buf)
        return;
    uint64_t left = 0;
    for (unsigned i = 0; i < g->nedges; i++)
        while (weft_chan_recv(g->edges[i].ch, buf, g->edges[i].size, 0) == 0)
            left++;
    for (unsigned i = 0; i < g->nnodes; i++) {
        struct gnode *n = &g->nodes[i];
        if (n->work)
            while (weft_chan_recv(n->work, buf, work_item_size(n), 0) == 0)
                left += n->spec.inputs;
        if (n->finished)
            while (weft_chan_recv(n->finished, buf, finished_item_size(n), 0) == 0) {
                int what;
                memcpy(&what, buf + 8, sizeof what);
                left += values_of(n, what);
            }
    }
    weft__free(buf, WEFT_CHAN_ELEM_MAX);
    atomic_fetch_add(&g->dropped, left);
}

static intptr_t coordinator(void *arg)
{
    struct run *r = arg;
    struct weft__graph *g = r->g;
    weft_trap_exits(1);
    int err = spawn_all(r);
    if (err) /* what did start ends first: bound below */
        weft__graph_stop(g, err, -1);
    else
        bind_result(g->started, 0);
    int64_t deadline = g->deadline;
    while (r->running > 0) {
        weft_msg msg;
        int rc = weft_recv(&msg, NULL, deadline);
        if (rc == -ETIMEDOUT) {
            weft__graph_stop(g, -ETIMEDOUT, -1);
            deadline = WEFT_FOREVER;
            continue;
        }
        if (rc == -ECANCELED)
            return 0; /* the runtime stops: weft__graph_term frees the rest */
        if (rc == 0 && msg.tag == WEFT_TAG_EXIT) {
            struct weft_node_io *io = proc_of(r, msg.from);
            if (io)
                ended(r, io, msg.reason);
        }
        if (rc == 0)
            weft_msg_free(&msg);
    }
    drain(g);
    int expected = GRAPH_RUNNING_RESULT;
    atomic_compare_exchange_strong(&g->result, &expected, 0);
    for (unsigned i = 0; i < g->nnodes; i++) { /* nodes whose processes never started */
        int own = atomic_load(&g->nodes[i].result);
        bind_result(g->nodes[i].done, own ? own : atomic_load(&g->result) ? -ECANCELED : 0);
    }
    weft__spin_lock(&g->lock);
    __atomic_store_n(&g->state, GRAPH_ENDED, __ATOMIC_RELEASE);
    weft__spin_unlock(&g->lock);
    weft__graph_run_free(g);
    bind_result(g->done, atomic_load(&g->result));
    if (err)
        bind_result(g->started, err);
    weft_graph_release(g->handle); /* the run's reference */
    return 0;
}

void weft__graph_run_free(struct weft__graph *g)
{
    if (g->run) {
        run_free(g->run);
        weft__free(g->run, sizeof(struct run));
        g->run = NULL;
    }
}

/* ---- starting ---------------------------------------------------------------------------- */

static int make_channels(struct weft__graph *g)
{
    for (unsigned i = 0; i < g->nedges; i++) {
        struct gedge *e = &g->edges[i];
        int err = weft_chan_make(&e->ch, e->size, e->capacity);
        if (err)
            return err;
    }
    for (unsigned i = 0; i < g->nnodes; i++) {
        struct gnode *n = &g->nodes[i];
        if (!dispatched(n))
            continue;
        unsigned p = n->spec.parallel;
        int err = weft_chan_make(&n->work, work_item_size(n), p);
        if (!err && ordered(n)) {
            err = weft_chan_make(&n->finished, finished_item_size(n), p);
            if (!err)
                err = weft_chan_make(&n->tokens, 1, 2 * p);
            unsigned char token = 0;
            for (unsigned t = 0; !err && t < 2 * p; t++)
                err = weft_chan_send(n->tokens, &token, 1, 0);
        }
        if (err)
            return err;
    }
    return 0;
}

int weft__graph_start(struct weft__graph *g, int64_t deadline)
{
    g->deadline = deadline;
    struct run *r = weft__calloc(sizeof *r);
    int err = r ? make_channels(g) : -ENOMEM;
    if (!err) {
        r->g = g;
        g->run = r;
        weft__handle_retain(g->handle); /* the run's, dropped by the coordinator */
        weft__graph_launched(g);
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        opts.name = g->name;
        opts.detached = 1;
        err = weft_spawn(NULL, coordinator, r, &opts);
        if (err) {
            g->run = NULL;
            weft__handle_release(NULL, g->handle, 1); /* the user's remains */
        }
    }
    if (err) { /* nothing runs: the run ends here with err */
        if (r)
            weft__free(r, sizeof *r);
        weft__graph_stop(g, err, -1);
        for (unsigned i = 0; i < g->nnodes; i++)
            bind_result(g->nodes[i].done, err);
        weft__spin_lock(&g->lock);
        __atomic_store_n(&g->state, GRAPH_ENDED, __ATOMIC_RELEASE);
        weft__spin_unlock(&g->lock);
        bind_result(g->done, err);
        return err;
    }
    int started;
    err = weft_dvar_get(g->started, &started, sizeof started, WEFT_FOREVER);
    return err ? err : started;
}
