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

/* ---- pools of type-stable blocks ---------------------------------------------------- */

/* Dataflow variables, streams and readers are type-stable, as channels are
 * (see chan.c): a block is recycled only as a block of its own type while the
 * runtime runs, and freed at its stop. Blocks are cache-line aligned (each
 * starts with its lock, on a line of its own) and zeroed when first made. */
struct weft__pool_link {
    struct weft__pool_link *next_free, *next_all;
    void *mem; /* the allocation the block is aligned in */
};

struct weft__pool {
    weft__spinlock lock;
    size_t size; /* bytes of a block */
    size_t link; /* offset of its struct weft__pool_link */
    struct weft__pool_link *free, *all;
};

#define WEFT__POOL_INIT(type, member) {.size = sizeof(type), .link = offsetof(type, member)}

static inline void *weft__pool_obj(struct weft__pool *p, struct weft__pool_link *l)
{
    return (char *)l - p->link;
}

/* A recycled block as its last user left it, or a new zeroed one; NULL. */
static inline void *weft__pool_get(struct weft__pool *p)
{
    weft__spin_lock(&p->lock);
    struct weft__pool_link *l = p->free;
    if (l)
        p->free = l->next_free;
    weft__spin_unlock(&p->lock);
    if (l)
        return weft__pool_obj(p, l);
    void *mem = weft__calloc(p->size + WEFT__CACHELINE);
    if (!mem)
        return NULL;
    char *obj = (void *)(((uintptr_t)mem + WEFT__CACHELINE - 1) & ~(uintptr_t)(WEFT__CACHELINE - 1));
    l = (struct weft__pool_link *)(obj + p->link);
    l->mem = mem;
    weft__spin_lock(&p->lock);
    l->next_all = p->all;
    p->all = l;
    weft__spin_unlock(&p->lock);
    return obj;
}

static inline void weft__pool_put(struct weft__pool *p, void *obj)
{
    struct weft__pool_link *l = (struct weft__pool_link *)((char *)obj + p->link);
    weft__spin_lock(&p->lock);
    l->next_free = p->free;
    p->free = l;
    weft__spin_unlock(&p->lock);
}

/* Frees every block, live or recycled, after fini(obj) has freed what it
 * holds (runtime stop: no call is in progress any more). */
static inline void weft__pool_term(struct weft__pool *p, void (*fini)(void *obj))
{
    while (p->all) {
        struct weft__pool_link *l = p->all;
        p->all = l->next_all;
        fini(weft__pool_obj(p, l));
        weft__free(l->mem, p->size + WEFT__CACHELINE);
    }
    p->free = NULL;
}

#endif
