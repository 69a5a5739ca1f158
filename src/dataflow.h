/* dataflow.h: the dataflow layer's internals (dvar.c, stream.c, graph.c)
 * that the layers' seams need: select's case kinds and the runtime's stop. */
#ifndef WEFT_DATAFLOW_H
#define WEFT_DATAFLOW_H

#include "chan.h"

/* select.c: WEFT_CASE_DVAR and WEFT_CASE_STREAM. */
extern const struct weft__case_kind weft__dvar_case_kind;
extern const struct weft__case_kind weft__stream_case_kind;

/* The runtime's stop, after every process has ended: frees every graph,
 * stream and dataflow variable still held. */
void weft__graph_term(void);
void weft__stream_pool_term(void);
void weft__dvar_pool_term(void);

/* ---- queues of waiting operations (chan.h's weft__opq_*) ------------------------- */

/* Claims every op of q with status and adds them to the list *woken
 * (through next), for weft__opq_wake_list. */
static inline void weft__opq_claim_all(struct weft__chanq *q, struct weft__chan_op **woken,
                                       int status)
{
    struct weft__chan_op *op;
    while ((op = weft__opq_claim(q))) {
        op->status = status;
        op->next = *woken;
        *woken = op;
    }
}

/* Resumes the ops of a list of claimed ones (their status written), after
 * the object's unlock; w: the caller's worker (NULL outside). */
static inline void weft__opq_wake_list(struct weft__worker *w, struct weft__chan_op *op)
{
    while (op) {
        struct weft__chan_op *next = op->next; /* op is gone once resumed */
        weft__wait_resume_from(w, op->waiter);
        op = next;
    }
}

#endif
