/* call.c: request and reply, matched by a unique reference.
 *
 * A call monitors the callee under the request's reference, so that one
 * selective receive on that reference ends with the reply or with the
 * callee's DOWN, whichever comes first. Its scan starts at the end of the
 * caller's mailbox as it was before the request went out: a reply cannot be
 * older, so a large mailbox costs a call nothing. The reference is the
 * caller's awaiting_ref while it waits; replies with any other reference
 * are dropped when they arrive (mailbox.c), so a late reply is never seen.
 */
#include <string.h>

#include "actor.h"

static _Atomic uint64_t next_ref = 1;

uint64_t weft__new_ref(void)
{
    return atomic_fetch_add_explicit(&next_ref, 1, memory_order_relaxed);
}

static struct weft__msg *request(int tag, const void *data, size_t size, weft_pid from,
                                 uint64_t ref, uint32_t flags)
{
    struct weft__msg *m = weft__msg_alloc(size);
    if (!m)
        return NULL;
    m->tag = tag;
    m->flags = flags;
    m->from = from;
    m->ref = ref;
    m->reason = 0;
    if (size)
        memcpy(WEFT__MSG_DATA(m), data, size);
    return m;
}

static int call(weft_pid pid, int tag, const void *data, size_t size, weft_msg *reply,
                int64_t deadline)
{
    weft__det_point();
    struct weft__proc *self = weft__proc_current();
    weft__kill_check(self);
    struct weft__target me = {.mb = &self->mbox, .proc = self, .pid = self->pid};
    struct weft__target t;
    int found = weft__target_acquire(pid, &t);
    if (found)
        return found < 0 ? weft__misuse(-ESRCH, "weft_call: %#llx was never a pid",
                                        (unsigned long long)pid)
                         : -ESRCH;
    uint64_t ref = weft__new_ref();
    struct weft__msg *m = request(tag, data, size, self->pid, ref, 0);
    int err = m ? weft__monitor(&me, pid, ref) : -ENOMEM;
    if (err) {
        if (m)
            weft__msg_free(m);
        weft__target_release(&t);
        return err;
    }
    /* The reply can only come after what the caller's own list holds now
     * (awaiting_ref is read by the caller alone, as messages reach that list). */
    struct weft__mail *mail = &self->mail;
    struct weft__msg *mark = mail->tail;
    mail->awaiting_ref = ref;
    struct weft__msg *got = NULL;
    err = weft__deliver(&t, m, deadline);
    weft__target_release(&t);
    if (err) {
        weft__msg_free(m);
    } else {
        weft_match match = {.ref = ref};
        err = weft__receive_after(self, &match, mark, deadline, &got);
    }
    mail->awaiting_ref = 0;
    weft__demonitor(&me, ref);
    weft__mail_flush_down(self, ref);
    if (err) {
        if (err == -ECANCELED)
            weft__kill_point();
        return err;
    }
    if (got->tag == WEFT_TAG_DOWN) { /* it ended first */
        weft__msg_free(got);
        return -ESRCH;
    }
    weft__msg_expose(got, reply);
    return 0;
}

int weft_call(weft_pid pid, int tag, const void *data, size_t size, weft_msg *reply,
              int64_t deadline)
{
    if (!reply)
        return weft__misuse(-EINVAL, "weft_call: reply is NULL");
    if (tag < 1)
        return weft__misuse(-EINVAL, "weft_call: tag %d (user tags are >= 1)", tag);
    if (size > WEFT_MSG_MAX)
        return weft__misuse(-EMSGSIZE, "weft_call: %zu bytes (at most %zu)", size, WEFT_MSG_MAX);
    if (!data && size)
        return weft__misuse(-EINVAL, "weft_call: data is NULL for %zu bytes", size);
    struct weft__proc *self = weft__proc_current();
    if (!self || self->acting)
        return weft__misuse(-EPERM, "weft_call: only a process can wait for a reply");
    if (pid == self->pid) /* it would take its own request for the reply */
        return weft__misuse(-EDEADLK, "weft_call: a process calling itself");
    return call(pid, tag, data, size, reply, deadline);
}

static int reply_to(const weft_msg *req, int tag, const void *data, size_t size)
{
    weft__det_point();
    struct weft__target self;
    struct weft__msg *m = request(tag, data, size, weft__self_target(&self) ? self.pid : 0,
                                  req->ref, WEFT__MSG_REPLY);
    if (!m)
        return -ENOMEM;
    uint32_t queued;
    int err = weft__deliver_to(req->from, m, 0, &queued);
    if (err)
        weft__msg_free(m);
    return err;
}

int weft_reply(const weft_msg *request, int tag, const void *data, size_t size)
{
    /* A request has a user tag, a reference and a sender; a reply has them
     * too, but its block says so (a DOWN or an EXIT has a negative tag). */
    const struct weft__msg *block = request ? request->block_ : NULL;
    if (!request || request->tag < 1 || !request->ref || !request->from ||
        (block && (block->flags & WEFT__MSG_REPLY)))
        return weft__misuse(-EINVAL, "weft_reply: not a request from weft_call");
    if (tag < 1)
        return weft__misuse(-EINVAL, "weft_reply: tag %d (user tags are >= 1)", tag);
    if (size > WEFT_MSG_MAX)
        return weft__misuse(-EMSGSIZE, "weft_reply: %zu bytes (at most %zu)", size, WEFT_MSG_MAX);
    if (!data && size)
        return weft__misuse(-EINVAL, "weft_reply: data is NULL for %zu bytes", size);
    WEFT__FROM_ANYWHERE(reply_to(request, tag, data, size));
}
