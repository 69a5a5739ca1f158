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

#endif
