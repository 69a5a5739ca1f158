/* graph.c: dataflow graphs as objects: building, checking, describing,
 * stopping and waiting (the run itself is in graph_run.c).
 *
 * A graph is a handle-counted object. It is built by one caller at a time
 * under its lock, then frozen by weft_graph_run: from then on the nodes and
 * edges are read by the run's processes without a lock, so every edit
 * fails with -EBUSY. A graph runs once (-EALREADY after). The run holds a
 * reference of its own, dropped by its coordinator as its last act, so the
 * user may release the graph as soon as weft_graph_wait returns.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "graph.h"

static struct weft__graph *acquire(weft_graph h, const char *fn)
{
    struct weft__graph *g = weft__handle_acquire(h, WEFT__HANDLE_GRAPH);
    if (!g)
        weft__misuse(-EBADF, "%s: no graph %#llx", fn, (unsigned long long)h);
    return g;
}

static void put(struct weft__graph *g)
{
    struct weft__worker *w = weft__worker_current();
    if (weft__handle_release(w ? &w->handles : NULL, g->handle, 1))
        weft__graph_free(g);
}

/* The graph's own memory: its tables and its block. */
static void free_memory(struct weft__graph *g)
{
    weft__free(g->nodes, g->nodes_cap * sizeof *g->nodes);
    weft__free(g->edges, g->edges_cap * sizeof *g->edges);
    weft__free(g, sizeof *g);
}

void weft__graph_free(struct weft__graph *g)
{
    for (unsigned i = 0; i < g->nedges; i++)
        if (g->edges[i].ch)
            weft_chan_release(g->edges[i].ch);
    for (unsigned i = 0; i < g->nnodes; i++) {
        struct gnode *n = &g->nodes[i];
        weft_chan run_chans[] = {n->work, n->finished, n->tokens};
        for (unsigned k = 0; k < 3; k++)
            if (run_chans[k])
                weft_chan_release(run_chans[k]);
        if (n->done)
            weft_dvar_release(n->done);
    }
    if (g->done)
        weft_dvar_release(g->done);
    if (g->started)
        weft_dvar_release(g->started);
    free_memory(g);
}

/* At the runtime's stop every process has ended; the channels and dataflow
 * variables go with their own pools, so only the graphs' memory is left. */
static void term_one(void *obj, uint64_t handle, void *arg)
{
    (void)handle;
    (void)arg;
    weft__graph_run_free(obj);
    free_memory(obj);
}

void weft__graph_term(void)
{
    weft__handle_foreach(WEFT__HANDLE_GRAPH, term_one, NULL);
}

/* ---- building ------------------------------------------------------------------ */

static int graph_make(weft_graph *gh, const char *name)
{
    if (!gh)
        return weft__misuse(-EINVAL, "weft_graph_make: g is NULL");
    if (!name || !name[0])
        return weft__misuse(-EINVAL, "weft_graph_make: the name is NULL or empty");
    struct weft__graph *g = weft__calloc(sizeof *g);
    if (!g)
        return -ENOMEM;
    snprintf(g->name, sizeof g->name, "%s", name);
    int err = weft_dvar_make(&g->done, sizeof(int));
    if (!err)
        err = weft_dvar_make(&g->started, sizeof(int));
    if (err) { /* -ENOMEM, or -ECANCELED: the runtime stops */
        weft__graph_free(g);
        return err;
    }
    atomic_init(&g->result, GRAPH_RUNNING_RESULT);
    atomic_init(&g->failed_node, -1);
    struct weft__worker *w = weft__worker_current();
    if (weft__handle_alloc(w ? &w->handles : NULL, g, WEFT__HANDLE_GRAPH, 1, &g->handle) != 0) {
        weft__graph_free(g);
        return -ENOMEM;
    }
    *gh = g->handle;
    return 0;
}

int weft_graph_make(weft_graph *g, const char *name)
{
    WEFT__FROM_ANYWHERE(graph_make(g, name));
}

static const char *kind_name(int kind)
{
    static const char *const names[] = {
        [WEFT_NODE_SOURCE] = "source", [WEFT_NODE_MAP] = "map",
        [WEFT_NODE_SINK] = "sink",     [WEFT_NODE_MERGE] = "merge",
        [WEFT_NODE_FILTER] = "filter", [WEFT_NODE_BROADCAST] = "broadcast",
        [WEFT_NODE_SPLIT] = "split",   [WEFT_NODE_CUSTOM] = "custom",
    };
    return kind >= WEFT_NODE_SOURCE && kind <= WEFT_NODE_CUSTOM ? names[kind] : "?";
}

/* The rules of each kind: port counts (min..max), whether fn is required
 * (1), optional (0) or refused (-1), whether every port carries one size,
 * whether it may fire in parallel. */
struct kind_rule {
    unsigned in_min, in_max, out_min, out_max;
    int fn;
    bool one_size, parallel;
};

static const struct kind_rule rules[] = {
    [WEFT_NODE_SOURCE] = {0, 0, 1, WEFT_NODE_PORTS_MAX, 1, false, false},
    [WEFT_NODE_MAP] = {1, WEFT_NODE_PORTS_MAX, 0, WEFT_NODE_PORTS_MAX, 1, false, true},
    [WEFT_NODE_SINK] = {1, WEFT_NODE_PORTS_MAX, 0, 0, 1, false, true},
    [WEFT_NODE_MERGE] = {1, WEFT_NODE_PORTS_MAX, 1, 1, 0, false, false},
    [WEFT_NODE_FILTER] = {1, 1, 1, 1, 1, true, true},
    [WEFT_NODE_BROADCAST] = {1, 1, 1, WEFT_NODE_PORTS_MAX, -1, true, false},
    [WEFT_NODE_SPLIT] = {1, 1, 1, WEFT_NODE_PORTS_MAX, 0, true, true},
    [WEFT_NODE_CUSTOM] = {0, WEFT_NODE_PORTS_MAX, 0, WEFT_NODE_PORTS_MAX, 0, false, true},
};

static int check_spec(const weft_node_spec *s)
{
    if (s->kind < WEFT_NODE_SOURCE || s->kind > WEFT_NODE_CUSTOM)
        return weft__misuse(-EINVAL, "weft_graph_add: unknown node kind %d", s->kind);
    const struct kind_rule *r = &rules[s->kind];
    const char *k = kind_name(s->kind);
    if (s->inputs < r->in_min || s->inputs > r->in_max || s->outputs < r->out_min ||
        s->outputs > r->out_max)
        return weft__misuse(-EINVAL, "weft_graph_add: a %s node takes %u..%u inputs and %u..%u "
                            "outputs, not %u and %u", k, r->in_min, r->in_max, r->out_min,
                            r->out_max, s->inputs, s->outputs);
    if (s->kind == WEFT_NODE_CUSTOM ? !s->body : (r->fn == 1 && !s->fn))
        return weft__misuse(-EINVAL, "weft_graph_add: a %s node needs %s", k,
                            s->kind == WEFT_NODE_CUSTOM ? "a body" : "fn");
    if ((r->fn == -1 && s->fn) || (s->kind != WEFT_NODE_CUSTOM && s->body))
        return weft__misuse(-EINVAL, "weft_graph_add: a %s node takes no %s", k,
                            s->fn ? "fn" : "body");
    for (unsigned i = 0; i < s->inputs + s->outputs; i++) {
        size_t size = i < s->inputs ? s->in_size[i] : s->out_size[i - s->inputs];
        if (size == 0 || size > WEFT_CHAN_ELEM_MAX)
            return weft__misuse(-EINVAL, "weft_graph_add: %s port %u: size %zu outside 1..%zu",
                                i < s->inputs ? "input" : "output",
                                i < s->inputs ? i : i - s->inputs, size, WEFT_CHAN_ELEM_MAX);
        if (r->one_size && size != s->in_size[0])
            return weft__misuse(-EINVAL, "weft_graph_add: a %s node's ports carry one size", k);
    }
    if (s->kind == WEFT_NODE_MERGE && !s->fn)
        for (unsigned i = 0; i < s->inputs; i++)
            if (s->in_size[i] != s->out_size[0])
                return weft__misuse(-EINVAL, "weft_graph_add: a merge without fn passes values "
                                    "on: input %u's size is not the output's", i);
    if (s->parallel > 1 && !r->parallel)
        return weft__misuse(-EINVAL, "weft_graph_add: a %s node fires one at a time", k);
    if (s->parallel > 1) { /* parallel firings may travel packed, head and values */
        size_t in = 16, out = 16;
        for (unsigned i = 0; i < s->inputs; i++)
            in += (s->in_size[i] + 15) & ~(size_t)15;
        for (unsigned j = 0; j < s->outputs; j++)
            out += (s->out_size[j] + 15) & ~(size_t)15;
        if (in > WEFT_CHAN_ELEM_MAX || out > WEFT_CHAN_ELEM_MAX)
            return weft__misuse(-E2BIG, "weft_graph_add: a parallel %s node's values take %zu "
                                "bytes together, above %zu", k, in > out ? in : out,
                                WEFT_CHAN_ELEM_MAX);
    }
    if (s->parallel > PARALLEL_MAX)
        return weft__misuse(-EINVAL, "weft_graph_add: parallel %u above %d", s->parallel,
                            PARALLEL_MAX);
    if (s->stack_size && (s->stack_size < WEFT_STACK_MIN || s->stack_size > WEFT_STACK_MAX))
        return weft__misuse(-EINVAL, "weft_graph_add: stack size %zu outside %zu..%zu",
                            s->stack_size, WEFT_STACK_MIN, WEFT_STACK_MAX);
    return 0;
}

/* Grows *arr (of *cap elements of size bytes) to hold one more than n. */
static int reserve(void **arr, unsigned *cap, unsigned n, size_t size)
{
    if (n < *cap)
        return 0;
    unsigned ncap = *cap ? *cap * 2 : 8;
    void *bigger = weft__calloc(ncap * size);
    if (!bigger)
        return -ENOMEM;
    if (*arr) {
        memcpy(bigger, *arr, n * size);
        weft__free(*arr, *cap * size);
    }
    *arr = bigger;
    *cap = ncap;
    return 0;
}

/* With g locked: -EBUSY once the graph has been run. */
static int check_building(struct weft__graph *g, const char *fn)
{
    if (g->state != GRAPH_BUILDING)
        return weft__misuse(-EBUSY, "%s: graph '%s' is running or has run: it cannot change", fn,
                            g->name);
    return 0;
}

static int add_locked(struct weft__graph *g, const weft_node_spec *spec, weft_dvar done,
                      weft_node *node)
{
    int err = check_building(g, "weft_graph_add");
    if (err)
        return err;
    if (!spec->name || !spec->name[0])
        return weft__misuse(-EINVAL, "weft_graph_add: a node needs a name");
    if (strnlen(spec->name, WEFT_NAME_MAX) >= WEFT_NAME_MAX)
        return weft__misuse(-ENAMETOOLONG, "weft_graph_add: node name longer than %d bytes",
                            WEFT_NAME_MAX - 1);
    if ((err = check_spec(spec)) != 0)
        return err;
    for (unsigned i = 0; i < g->nnodes; i++)
        if (strcmp(g->nodes[i].name, spec->name) == 0)
            return weft__misuse(-EEXIST, "weft_graph_add: graph '%s' has a node '%s' already",
                                g->name, spec->name);
    if (g->nnodes == WEFT_GRAPH_NODES_MAX)
        return -E2BIG;
    if (reserve((void **)&g->nodes, &g->nodes_cap, g->nnodes, sizeof *g->nodes) != 0)
        return -ENOMEM;
    struct gnode *n = &g->nodes[g->nnodes];
    memset(n, 0, sizeof *n);
    n->spec = *spec;
    snprintf(n->name, sizeof n->name, "%s", spec->name);
    n->spec.name = n->name;
    n->done = done;
    if (n->spec.parallel == 0)
        n->spec.parallel = 1;
    for (unsigned p = 0; p < WEFT_NODE_PORTS_MAX; p++)
        n->in_edge[p] = n->out_edge[p] = -1;
    if (node)
        *node = (weft_node)g->nnodes;
    g->nnodes++;
    return 0;
}

static int graph_add(weft_graph gh, const weft_node_spec *spec, weft_node *node)
{
    if (!spec)
        return weft__misuse(-EINVAL, "weft_graph_add: spec is NULL");
    struct weft__graph *g = acquire(gh, "weft_graph_add");
    if (!g)
        return -EBADF;
    weft_dvar done; /* the node's result, made before the lock is taken */
    int err = weft_dvar_make(&done, sizeof(int));
    if (err) {
        put(g);
        return err;
    }
    weft__spin_lock(&g->lock);
    err = add_locked(g, spec, done, node);
    weft__spin_unlock(&g->lock);
    if (err)
        weft_dvar_release(done);
    put(g);
    return err;
}

int weft_graph_add(weft_graph g, const weft_node_spec *spec, weft_node *node)
{
    WEFT__FROM_ANYWHERE(graph_add(g, spec, node));
}

static int connect_locked(struct weft__graph *g, weft_node from, unsigned out_port, weft_node to,
                          unsigned in_port, size_t capacity)
{
    int err = check_building(g, "weft_graph_connect");
    if (err)
        return err;
    if (from < 0 || (unsigned)from >= g->nnodes || to < 0 || (unsigned)to >= g->nnodes)
        return weft__misuse(-EINVAL, "weft_graph_connect: no node %d in graph '%s'",
                            from < 0 || (unsigned)from >= g->nnodes ? from : to, g->name);
    struct gnode *a = &g->nodes[from], *b = &g->nodes[to];
    if (out_port >= a->spec.outputs)
        return weft__misuse(-EINVAL, "weft_graph_connect: '%s' has no output %u", a->name,
                            out_port);
    if (in_port >= b->spec.inputs)
        return weft__misuse(-EINVAL, "weft_graph_connect: '%s' has no input %u", b->name, in_port);
    if (a->out_edge[out_port] >= 0 || b->in_edge[in_port] >= 0)
        return weft__misuse(-EISCONN, "weft_graph_connect: %s %u of '%s' is connected already",
                            a->out_edge[out_port] >= 0 ? "output" : "input",
                            a->out_edge[out_port] >= 0 ? out_port : in_port,
                            a->out_edge[out_port] >= 0 ? a->name : b->name);
    size_t size = a->spec.out_size[out_port];
    if (size != b->spec.in_size[in_port])
        return weft__misuse(-EMSGSIZE, "weft_graph_connect: output %u of '%s' carries %zu bytes, "
                            "input %u of '%s' %zu", out_port, a->name, size, in_port, b->name,
                            b->spec.in_size[in_port]);
    if (capacity > WEFT_CHAN_BUFFER_MAX / size)
        return weft__misuse(-E2BIG, "weft_graph_connect: %zu values of %zu bytes exceed %zu bytes",
                            capacity, size, WEFT_CHAN_BUFFER_MAX);
    if (reserve((void **)&g->edges, &g->edges_cap, g->nedges, sizeof *g->edges) != 0)
        return -ENOMEM;
    g->edges[g->nedges] = (struct gedge){.from = from, .to = to, .out_port = out_port,
                                         .in_port = in_port, .size = size, .capacity = capacity};
    a->out_edge[out_port] = b->in_edge[in_port] = (int)g->nedges++;
    return 0;
}

static int graph_connect(weft_graph gh, weft_node from, unsigned out_port, weft_node to,
                         unsigned in_port, size_t capacity)
{
    struct weft__graph *g = acquire(gh, "weft_graph_connect");
    if (!g)
        return -EBADF;
    weft__spin_lock(&g->lock);
    int err = connect_locked(g, from, out_port, to, in_port, capacity);
    weft__spin_unlock(&g->lock);
    put(g);
    return err;
}

int weft_graph_connect(weft_graph g, weft_node from, unsigned out_port, weft_node to,
                       unsigned in_port, size_t capacity)
{
    WEFT__FROM_ANYWHERE(graph_connect(g, from, out_port, to, in_port, capacity));
}

/* ---- checking -------------------------------------------------------------------- */

/* Depth-first search along rendezvous edges only: a node met again while
 * on the current path closes a cycle in which no edge buffers, and such a
 * cycle can never move a value. Iterative, so that a long chain does not
 * use the caller's (small) process stack. colour: 0 unseen, 1 on the path,
 * 2 done. Returns a node on the cycle, or -1. */
static int rendezvous_cycle(const struct weft__graph *g, unsigned char *colour, unsigned *stack,
                            unsigned *next_port)
{
    for (unsigned root = 0; root < g->nnodes; root++) {
        if (colour[root])
            continue;
        unsigned depth = 0;
        stack[depth] = root;
        next_port[depth] = 0;
        colour[root] = 1;
        while (1) {
            unsigned v = stack[depth];
            const struct gnode *n = &g->nodes[v];
            if (next_port[depth] < n->spec.outputs) {
                int e = n->out_edge[next_port[depth]++];
                if (e < 0 || g->edges[e].capacity != 0)
                    continue;
                unsigned w = (unsigned)g->edges[e].to;
                if (colour[w] == 1)
                    return (int)w;
                if (colour[w] == 0) {
                    colour[w] = 1;
                    stack[++depth] = w;
                    next_port[depth] = 0;
                }
                continue;
            }
            colour[v] = 2;
            if (depth-- == 0)
                break;
        }
    }
    return -1;
}

static int explain(char *why, size_t len, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int explain(char *why, size_t len, int err, const char *fmt, ...)
{
    if (why && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* With g locked (or frozen). */
static int validate_locked(const struct weft__graph *g, char *why, size_t len)
{
    if (why && len)
        why[0] = '\0';
    if (g->nnodes == 0)
        return explain(why, len, -EINVAL, "graph '%s' has no nodes", g->name);
    for (unsigned i = 0; i < g->nnodes; i++) {
        const struct gnode *n = &g->nodes[i];
        for (unsigned p = 0; p < n->spec.inputs; p++)
            if (n->in_edge[p] < 0)
                return explain(why, len, -ENOTCONN, "input %u of node '%s' is not connected", p,
                               n->name);
        for (unsigned p = 0; p < n->spec.outputs; p++)
            if (n->out_edge[p] < 0)
                return explain(why, len, -ENOTCONN, "output %u of node '%s' is not connected", p,
                               n->name);
    }
    for (unsigned i = 0; i < g->nedges; i++) {
        const struct gedge *e = &g->edges[i];
        const struct gnode *a = &g->nodes[e->from], *b = &g->nodes[e->to];
        if (a->spec.out_size[e->out_port] != b->spec.in_size[e->in_port])
            return explain(why, len, -EMSGSIZE, "output %u of '%s' carries %zu bytes, input %u "
                           "of '%s' %zu", e->out_port, a->name, a->spec.out_size[e->out_port],
                           e->in_port, b->name, b->spec.in_size[e->in_port]);
    }
    /* One block: the search's stack and next ports, then the colours. */
    size_t bytes = g->nnodes * (2 * sizeof(unsigned) + 1);
    unsigned *mem = weft__calloc(bytes);
    if (!mem)
        return explain(why, len, -ENOMEM, "out of memory");
    int on_cycle = rendezvous_cycle(g, (unsigned char *)(mem + 2 * g->nnodes), mem,
                                    mem + g->nnodes);
    weft__free(mem, bytes);
    if (on_cycle >= 0)
        return explain(why, len, -EDEADLK, "node '%s' is on a cycle of rendezvous edges "
                       "(capacity 0): give one of them a buffer", g->nodes[on_cycle].name);
    return 0;
}

static int graph_validate(weft_graph gh, char *why, size_t len)
{
    struct weft__graph *g = acquire(gh, "weft_graph_validate");
    if (!g)
        return -EBADF;
    weft__spin_lock(&g->lock);
    int err = validate_locked(g, why, len);
    weft__spin_unlock(&g->lock);
    put(g);
    return err;
}

int weft_graph_validate(weft_graph g, char *why, size_t len)
{
    WEFT__FROM_ANYWHERE(graph_validate(g, why, len));
}

/* ---- describing ------------------------------------------------------------------- */

/* snprintf into a buffer in pieces, counting the whole length. */
struct text {
    char *buf;
    size_t len, total;
};

static void put_text(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_text(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = t->total < t->len ? t->len - t->total : 0;
    int n = vsnprintf(room ? t->buf + t->total : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->total += (size_t)n;
}

/* A name as a DOT string's contents: quotes and backslashes escaped. */
static void put_quoted(struct text *t, const char *s)
{
    for (; *s; s++)
        put_text(t, *s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
}

static void dot_locked(const struct weft__graph *g, struct text *t)
{
    put_text(t, "digraph \"");
    put_quoted(t, g->name);
    put_text(t, "\" {\n  rankdir=LR;\n  node [shape=box];\n");
    for (unsigned i = 0; i < g->nnodes; i++) {
        const struct gnode *n = &g->nodes[i];
        put_text(t, "  n%u [label=\"", i);
        put_quoted(t, n->name);
        put_text(t, "\\n%s", kind_name(n->spec.kind));
        if (n->spec.parallel > 1)
            put_text(t, " x%u%s", n->spec.parallel, n->spec.ordered ? " ordered" : "");
        put_text(t, "\"];\n");
    }
    for (unsigned i = 0; i < g->nedges; i++) {
        const struct gedge *e = &g->edges[i];
        put_text(t, "  n%d -> n%d [label=\"%u:%u %zuB cap %zu\"];\n", e->from, e->to, e->out_port,
                 e->in_port, e->size, e->capacity);
    }
    put_text(t, "}\n");
}

static int graph_dot(weft_graph gh, char *buf, size_t len)
{
    if (!buf && len)
        return weft__misuse(-EINVAL, "weft_graph_dot: buf is NULL with len %zu", len);
    struct weft__graph *g = acquire(gh, "weft_graph_dot");
    if (!g)
        return -EBADF;
    struct text t = {buf, len, 0};
    weft__spin_lock(&g->lock);
    dot_locked(g, &t);
    weft__spin_unlock(&g->lock);
    put(g);
    if (len)
        buf[t.total < len ? t.total : len - 1] = '\0';
    return t.total > INT_MAX ? -ENOMEM : (int)t.total;
}

int weft_graph_dot(weft_graph g, char *buf, size_t len)
{
    WEFT__FROM_ANYWHERE(graph_dot(g, buf, len));
}

/* ---- running, stopping, waiting ----------------------------------------------------- */

static int graph_run(weft_graph gh, int64_t deadline)
{
    struct weft__proc *self = weft__proc_current();
    if (self && self->no_block) /* it waits for the start */
        return weft__misuse(-EPERM, "weft_graph_run: called from an actor's handler");
    struct weft__graph *g = acquire(gh, "weft_graph_run");
    if (!g)
        return -EBADF;
    weft__spin_lock(&g->lock);
    int err = g->state != GRAPH_BUILDING
                  ? weft__misuse(-EALREADY, "weft_graph_run: graph '%s' runs once", g->name)
                  : validate_locked(g, NULL, 0);
    if (!err)
        __atomic_store_n(&g->state, GRAPH_RUNNING, __ATOMIC_RELEASE); /* frozen from now on */
    weft__spin_unlock(&g->lock);
    if (!err)
        err = weft__graph_start(g, deadline);
    put(g);
    return err;
}

int weft_graph_run(weft_graph g, int64_t deadline)
{
    WEFT__FROM_ANYWHERE(graph_run(g, deadline));
}

static void close_all(struct weft__graph *g)
{
    for (unsigned i = 0; i < g->nedges; i++)
        weft__chan_close_quiet(g->edges[i].ch);
    for (unsigned i = 0; i < g->nnodes; i++) {
        struct gnode *n = &g->nodes[i];
        weft__chan_close_quiet(n->work);
        weft__chan_close_quiet(n->finished);
        weft__chan_close_quiet(n->tokens);
    }
}

void weft__graph_stop(struct weft__graph *g, int err, weft_node node)
{
    weft__spin_lock(&g->lock);
    int expected = GRAPH_RUNNING_RESULT;
    bool first = atomic_compare_exchange_strong(&g->result, &expected, err);
    if (first) {
        atomic_store_explicit(&g->failed_node, node, memory_order_relaxed);
        atomic_store_explicit(&g->cancelled, true, memory_order_relaxed);
    }
    bool launched = g->launched;
    weft__spin_unlock(&g->lock);
    if (first && launched)
        close_all(g);
}

/* The run's start, once its channels exist: a stop that came before closes
 * them now. */
void weft__graph_launched(struct weft__graph *g)
{
    weft__spin_lock(&g->lock);
    g->launched = true;
    bool stopped = atomic_load_explicit(&g->cancelled, memory_order_relaxed);
    weft__spin_unlock(&g->lock);
    if (stopped)
        close_all(g);
}

/* g with a reference taken, if it has been run; else NULL with *err set. */
static struct weft__graph *acquire_run(weft_graph gh, const char *fn, int *err)
{
    struct weft__graph *g = acquire(gh, fn);
    if (!g) {
        *err = -EBADF;
        return NULL;
    }
    if (__atomic_load_n(&g->state, __ATOMIC_ACQUIRE) == GRAPH_BUILDING) {
        *err = weft__misuse(-EINVAL, "%s: graph '%s' has not been run", fn, g->name);
        put(g);
        return NULL;
    }
    return g;
}

static int graph_cancel(weft_graph gh)
{
    int err;
    struct weft__graph *g = acquire_run(gh, "weft_graph_cancel", &err);
    if (!g)
        return err;
    weft__graph_stop(g, -ECANCELED, -1);
    put(g);
    return 0;
}

int weft_graph_cancel(weft_graph g)
{
    WEFT__FROM_ANYWHERE(graph_cancel(g));
}

/* Reads a result bound to dv; the deadline passing is -EAGAIN (the run
 * goes on), told apart from a run that ended with -ETIMEDOUT. */
static int await_result(weft_dvar dv, int64_t deadline)
{
    int result;
    int err = weft_dvar_get(dv, &result, sizeof result, deadline);
    if (err == -ETIMEDOUT)
        return -EAGAIN;
    return err ? err : result;
}

static int graph_wait(weft_graph gh, int64_t deadline)
{
    int err;
    struct weft__graph *g = acquire_run(gh, "weft_graph_wait", &err);
    if (!g)
        return err;
    err = await_result(g->done, deadline);
    put(g);
    return err;
}

int weft_graph_wait(weft_graph g, int64_t deadline)
{
    WEFT__FROM_ANYWHERE(graph_wait(g, deadline));
}

static int graph_wait_node(weft_graph gh, weft_node node, int64_t deadline)
{
    int err;
    struct weft__graph *g = acquire_run(gh, "weft_graph_wait_node", &err);
    if (!g)
        return err;
    if (node < 0 || (unsigned)node >= g->nnodes)
        err = weft__misuse(-EINVAL, "weft_graph_wait_node: no node %d in graph '%s'", node,
                           g->name);
    else
        err = await_result(g->nodes[node].done, deadline);
    put(g);
    return err;
}

int weft_graph_wait_node(weft_graph g, weft_node node, int64_t deadline)
{
    WEFT__FROM_ANYWHERE(graph_wait_node(g, node, deadline));
}

static int graph_stats(weft_graph gh, weft_graph_stats *st)
{
    if (!st)
        return weft__misuse(-EINVAL, "weft_graph_get_stats: st is NULL");
    struct weft__graph *g = acquire(gh, "weft_graph_get_stats");
    if (!g)
        return -EBADF;
    memset(st, 0, sizeof *st);
    st->result = atomic_load(&g->result);
    st->failed_node = atomic_load(&g->failed_node);
    if (st->failed_node >= 0)
        snprintf(st->failed_name, sizeof st->failed_name, "%s", g->nodes[st->failed_node].name);
    st->emitted = atomic_load(&g->emitted);
    st->consumed = atomic_load(&g->consumed);
    st->dropped = atomic_load(&g->dropped);
    st->skipped = atomic_load(&g->skipped);
    put(g);
    return 0;
}

int weft_graph_get_stats(weft_graph g, weft_graph_stats *st)
{
    WEFT__FROM_ANYWHERE(graph_stats(g, st));
}

static int graph_release(weft_graph gh)
{
    struct weft__graph *g = acquire(gh, "weft_graph_release");
    if (!g)
        return -EBADF;
    weft__spin_lock(&g->lock);
    bool running = g->state == GRAPH_RUNNING;
    weft__spin_unlock(&g->lock);
    if (running) {
        int err = weft__misuse(-EBUSY, "weft_graph_release: graph '%s' is running: cancel it "
                               "and wait first", g->name);
        put(g);
        return err;
    }
    struct weft__worker *w = weft__worker_current();
    if (weft__handle_release(w ? &w->handles : NULL, gh, 2))
        weft__graph_free(g);
    return 0;
}

int weft_graph_release(weft_graph g)
{
    WEFT__FROM_ANYWHERE(graph_release(g));
}
