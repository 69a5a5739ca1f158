/* graph.h: dataflow graphs' internals, shared by graph.c (building,
 * checking, describing) and graph_run.c (running). */
#ifndef WEFT_GRAPH_H
#define WEFT_GRAPH_H

#include "dataflow.h"

/* Most firings of one node at once, and most processes of one node. */
enum { PARALLEL_MAX = 1024, PARALLEL_ROLES = PARALLEL_MAX + 2 };

enum graph_state { GRAPH_BUILDING, GRAPH_RUNNING, GRAPH_ENDED };

/* Result of a run still in progress (weft_graph_stats.result). */
#define GRAPH_RUNNING_RESULT (-EINPROGRESS)

struct gedge {
    weft_node from, to;
    unsigned out_port, in_port;
    size_t size, capacity;
    weft_chan ch;             /* made by the run */
};

struct gnode {
    weft_node_spec spec;      /* spec.name points at name */
    char name[WEFT_NAME_MAX];
    int in_edge[WEFT_NODE_PORTS_MAX];  /* edge index per port, or -1 */
    int out_edge[WEFT_NODE_PORTS_MAX];
    /* Run state. */
    weft_dvar done;           /* bound with the node's result once all its
                                 processes have ended */
    unsigned procs;           /* processes the run gave it (coordinator's) */
    atomic_uint live;         /* its processes that send its outputs, still
                                 running: the last one out closes them */
    atomic_uint workers_live; /* ordered parallel firings: workers still
                                 running (the last one closes finished) */
    atomic_int result;        /* its own error, or 0 */
    weft_chan work, finished, tokens; /* parallel firings (graph_run.c) */
};

struct weft__graph {
    weft__spinlock lock;      /* state changes and edits */
    int state;                /* enum graph_state: written under lock, also
                                 read without (atomically) */
    bool launched;            /* the run's channels exist (under lock) */
    uint64_t handle;
    char name[WEFT_NAME_MAX];
    struct gnode *nodes;
    struct gedge *edges;
    unsigned nnodes, nedges, nodes_cap, edges_cap;
    /* Run state. */
    int64_t deadline;
    atomic_bool cancelled;    /* read by every firing (relaxed) */
    atomic_int result;        /* GRAPH_RUNNING_RESULT until the first end */
    atomic_int failed_node;   /* -1, or the node whose error set result */
    weft_dvar done, started;
    struct run *run;          /* the run's processes (graph_run.c), until it ends */
    _Atomic uint64_t emitted, consumed, dropped, skipped;
};

/* graph.c */
void weft__graph_free(struct weft__graph *g);
/* Ends the run with err (the first end wins: later ones change nothing)
 * and, for node >= 0, names the failed node; then closes every channel of
 * the run so that every process of it wakes. */
void weft__graph_stop(struct weft__graph *g, int err, weft_node node);

/* The run's channels exist now: closes them if a stop came first. */
void weft__graph_launched(struct weft__graph *g);

/* graph_run.c */
int weft__graph_start(struct weft__graph *g, int64_t deadline);
/* Frees the run's processes' blocks (the runtime's stop: they have ended). */
void weft__graph_run_free(struct weft__graph *g);

#endif
