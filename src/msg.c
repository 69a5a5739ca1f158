/* msg.c: message blocks and weft buffers.
 *
 * A message is one block from the allocation hook: a struct weft__msg
 * header, then the payload. A weft buffer is the payload of a block that
 * has not been sent yet, so that a zero-copy send moves the block whole.
 * Blocks with payloads up to SMALL bytes all have room for SMALL bytes and
 * are recycled through a per-worker cache: a message costs no call to the
 * hook in a steady stream, on either side.
 */
#include <string.h>

#include "internal.h"

enum { SMALL = 64, CACHE_MAX = 512 };

static size_t block_size(size_t size)
{
    return sizeof(struct weft__msg) + (size < SMALL ? SMALL : size);
}

struct weft__msg *weft__msg_alloc(size_t size)
{
    if (size <= SMALL) {
        struct weft__worker *w = weft__worker_current();
        if (w && w->free_msgs) {
            struct weft__msg *m = w->free_msgs;
            w->free_msgs = m->next;
            w->free_msg_count--;
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
        if (w && w->free_msg_count < CACHE_MAX) {
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
    struct weft__msg *m = w->free_msgs;
    w->free_msgs = NULL;
    w->free_msg_count = 0;
    while (m) {
        struct weft__msg *next = m->next;
        weft__free(m, block_size(SMALL));
        m = next;
    }
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
