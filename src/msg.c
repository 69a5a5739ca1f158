/* msg.c: message blocks and weft buffers.
 *
 * A message is one block from the allocation hook: a struct weft__msg
 * header, then the payload. A weft buffer is the payload of a block that
 * has not been sent yet, so that a zero-copy send moves the block whole.
 * Blocks with payloads up to SMALL bytes all have room for SMALL bytes and
 * are recycled through a per-worker cache: a message costs no call to the
 * hook in a steady stream, on either side.
 *
 * A stream between workers empties the sender's cache and fills the
 * receiver's. The cache is two lists of up to BATCH blocks, the one in use
 * and a full spare (a magazine and its reserve): a receiver whose lists are
 * both full hands the spare to a shared depot, and a sender whose lists are
 * both empty takes a batch from it. Such a stream also stays off the hook,
 * takes the depot's lock once per BATCH messages and never walks a list.
 */
#include <string.h>

#include "internal.h"

enum { SMALL = 64, BATCH = 256, DEPOT_MAX = 64 };

/* Full batches of BATCH blocks, each linked through next; a batch's first
 * block holds the link to the next batch in its payload. */
static struct {
    weft__spinlock lock;
    struct weft__msg *batches;
    atomic_uint count;         /* batches; written under lock, peeked without */
} depot;

#define NEXT_BATCH(m) (*(struct weft__msg **)WEFT__MSG_DATA(m))

static size_t block_size(size_t size)
{
    return sizeof(struct weft__msg) + (size < SMALL ? SMALL : size);
}

static void free_list(struct weft__msg *m)
{
    while (m) {
        struct weft__msg *next = m->next;
        weft__free(m, block_size(SMALL));
        m = next;
    }
}

/* A full batch from the depot, or NULL. */
static struct weft__msg *depot_take(void)
{
    if (!atomic_load_explicit(&depot.count, memory_order_relaxed))
        return NULL;
    weft__spin_lock(&depot.lock);
    struct weft__msg *b = depot.batches;
    if (b) {
        depot.batches = NEXT_BATCH(b);
        atomic_store_explicit(&depot.count, atomic_load_explicit(&depot.count, memory_order_relaxed) - 1,
                              memory_order_relaxed);
    }
    weft__spin_unlock(&depot.lock);
    return b;
}

/* Gives a full batch to the depot, or to the hook when the depot is full. */
static void depot_give(struct weft__msg *b)
{
    weft__spin_lock(&depot.lock);
    unsigned n = atomic_load_explicit(&depot.count, memory_order_relaxed);
    if (n < DEPOT_MAX) {
        NEXT_BATCH(b) = depot.batches;
        depot.batches = b;
        atomic_store_explicit(&depot.count, n + 1, memory_order_relaxed);
        b = NULL;
    }
    weft__spin_unlock(&depot.lock);
    free_list(b);
}

struct weft__msg *weft__msg_alloc(size_t size)
{
    if (size <= SMALL) {
        struct weft__worker *w = weft__worker_current();
        if (w && !w->free_msgs) {
            struct weft__msg *b = w->spare_msgs ? w->spare_msgs : depot_take();
            if (b == w->spare_msgs)
                w->spare_msgs = NULL;
            w->free_msgs = b;
            w->free_msg_count = b ? BATCH : 0;
        }
        if (w && w->free_msgs) {
            struct weft__msg *m = w->free_msgs;
            w->free_msgs = m->next;
            w->free_msg_count--;
            if (m->next) /* freed by a receiver, perhaps on another core */
                __builtin_prefetch(m->next, 1);
            m->size = size;
            return m;
        }
    }
    struct weft__msg *m = weft__alloc(block_size(size));
    if (m)
        m->size = size;
    return m;
}

void weft__msg_free(struct weft__msg *m)
{
    if (m->size <= SMALL) {
        struct weft__worker *w = weft__worker_current();
        if (w) {
            if (w->free_msg_count == BATCH) {
                if (w->spare_msgs)
                    depot_give(w->spare_msgs);
                w->spare_msgs = w->free_msgs;
                w->free_msgs = NULL;
                w->free_msg_count = 0;
            }
            m->next = w->free_msgs;
            w->free_msgs = m;
            w->free_msg_count++;
            return;
        }
    }
    weft__free(m, block_size(m->size));
}

void weft__msg_free_list(struct weft__msg *m)
{
    while (m) {
        struct weft__msg *next = m->next;
        weft__msg_free(m);
        m = next;
    }
}

void weft__msg_cache_flush(struct weft__worker *w)
{
    free_list(w->free_msgs);
    free_list(w->spare_msgs);
    w->free_msgs = w->spare_msgs = NULL;
    w->free_msg_count = 0;
}

void weft__msg_depot_term(void)
{
    while (depot.batches) {
        struct weft__msg *b = depot.batches;
        depot.batches = NEXT_BATCH(b);
        free_list(b);
    }
    atomic_store_explicit(&depot.count, 0, memory_order_relaxed);
}

void weft__msg_expose(struct weft__msg *m, weft_msg *out)
{
    out->tag = m->tag;
    out->from = m->from;
    out->ref = m->ref;
    out->reason = m->reason;
    out->size = m->size;
    out->data = m->size ? WEFT__MSG_DATA(m) : NULL;
    out->block_ = m;
}

void *weft_buf_alloc(size_t size)
{
    if (size > WEFT_MSG_MAX)
        return NULL;
    struct weft__msg *m = weft__msg_alloc(size);
    return m ? WEFT__MSG_DATA(m) : NULL;
}

void weft_buf_free(void *buf)
{
    if (buf)
        weft__msg_free(WEFT__MSG_OF(buf));
}

size_t weft_buf_size(const void *buf)
{
    return buf ? WEFT__MSG_OF(buf)->size : 0;
}

void weft_msg_free(weft_msg *msg)
{
    if (!msg || !msg->block_)
        return;
    weft__msg_free(msg->block_);
    memset(msg, 0, sizeof *msg);
}

void *weft_msg_take(weft_msg *msg)
{
    if (!msg || !msg->block_)
        return NULL;
    struct weft__msg *m = msg->block_;
    void *data = NULL;
    if (m->size > 0)
        data = WEFT__MSG_DATA(m);
    else
        weft__msg_free(m);
    memset(msg, 0, sizeof *msg);
    return data;
}
