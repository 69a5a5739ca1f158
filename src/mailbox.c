/* mailbox.c: sending to a pid, and a process's receive (plain, selective,
 * or as a case of select).
 *
 * A mailbox is two lists. Senders append to the shared one under the
 * mailbox's spinlock; the owner moves it whole to its own list (struct
 * weft__mail) and scans that one without the lock, so a long selective
 * receive never holds senders up. Per-sender order holds because appends
 * are ordered by the lock and the move keeps order.
 *
 * Waking: a process about to wait sets WAITING with its ticket under the
 * lock; the sender that appends next clears it and wakes that ticket after
 * unlocking (a late wake names a wait that is over, and fails its claim).
 * An actor is QUEUED while it is in a run queue or running: the sender that
 * finds it idle queues it (actor.c).
 *
 * Selective receive looks at each message once per receive: it keeps its
 * place while it waits, so an arrival is checked alone. A receive with the
 * same match as the previous one resumes after the last message that one
 * checked (scan_after), so that taking replies out of a large mailbox is
 * not quadratic. Replies (weft_reply) that no call waits for are dropped as
 * they move to the owner's list.
 */
#include <string.h>

#include "actor.h"
#include "chan.h"

/* ---- who a pid names ------------------------------------------------------------- */

int weft__target_acquire(weft_pid pid, struct weft__target *t)
{
    int type;
    void *obj = weft__handle_acquire_any(pid, WEFT__HANDLE_PROC, WEFT__HANDLE_ACTOR, &type);
    if (!obj)
        return weft__handle_was_live(pid) ? 1 : -ESRCH;
    t->pid = pid;
    if (type == WEFT__HANDLE_PROC) {
        t->proc = obj;
        t->actor = NULL;
        t->mb = &t->proc->mbox;
    } else {
        t->proc = NULL;
        t->actor = obj;
        t->mb = &t->actor->mbox;
    }
    return 0;
}

void weft__target_release(struct weft__target *t)
{
    if (t->proc)
        weft__proc_release(t->proc, 1);
    else
        weft__actor_release(t->actor);
}

bool weft__self_target(struct weft__target *t)
{
    struct weft__proc *p = weft__proc_current();
    if (!p)
        return false;
    if (p->acting) {
        t->actor = p->acting;
        t->proc = NULL;
        t->mb = &p->acting->mbox;
        t->pid = p->acting->pid;
    } else {
        t->actor = NULL;
        t->proc = p;
        t->mb = &p->mbox;
        t->pid = p->pid;
    }
    return true;
}

void weft__mbox_init(struct weft__mbox *mb, uint32_t flags)
{
    atomic_store_explicit(&mb->lock.locked, 0, memory_order_relaxed);
    mb->flags = (uint16_t)flags;
    mb->bounded = false;
    mb->head = mb->tail = NULL;
    atomic_store_explicit(&mb->sent, 0, memory_order_relaxed);
    atomic_store_explicit(&mb->received, 0, memory_order_relaxed);
    mb->ext = NULL;
}

static uint32_t queued(struct weft__mbox *mb)
{
    return atomic_load_explicit(&mb->sent, memory_order_relaxed) -
           atomic_load_explicit(&mb->received, memory_order_relaxed);
}

/* With mb locked: its bound, 0 if none. */
static uint32_t capacity_of(struct weft__mbox *mb)
{
    return (mb->flags & WEFT__MBOX_BOUNDED) ? mb->ext->capacity : 0;
}

static bool has_room(struct weft__mbox *mb)
{
    uint32_t cap = capacity_of(mb);
    return !cap || queued(mb) < cap;
}

struct weft__mbox_ext *weft__mbox_ext(struct weft__mbox *mb)
{
    weft__spin_lock(&mb->lock);
    struct weft__mbox_ext *ext = mb->ext;
    weft__spin_unlock(&mb->lock);
    if (ext)
        return ext;
    struct weft__mbox_ext *fresh = weft__calloc(sizeof *fresh);
    if (!fresh)
        return NULL;
    weft__spin_lock(&mb->lock);
    if (!mb->ext && !(mb->flags & WEFT__MBOX_DEAD)) {
        mb->ext = fresh;
        fresh = NULL;
    }
    ext = mb->ext;
    weft__spin_unlock(&mb->lock);
    if (fresh)
        weft__free(fresh, sizeof *fresh);
    return ext;
}

void weft__mbox_ext_free(struct weft__mbox *mb)
{
    weft__free(mb->ext, sizeof *mb->ext);
    mb->ext = NULL;
}

/* ---- sending ------------------------------------------------------------------------ */

/* Senders whose waits were claimed under the mailbox lock, to resume after it. */
enum { WAKE_BATCH = 16 };
struct sender_wakes {
    unsigned n;
    struct weft__waiter *w[WAKE_BATCH];
};

/* With mb locked: unlinks the senders waiting for room, first come first,
 * and claims their waits, until n (at most WAKE_BATCH) are claimed. The
 * claim is made under the lock because a sender's record lives on its
 * stack: one whose wait ends on its own (deadline, shutdown) leaves as soon
 * as it can take the lock, while one claimed here stays parked until
 * resume_senders. A sender that lost the claim is unlinked all the same
 * and looks for room itself. Returns true if senders remain and fewer than
 * n were claimed: the caller unlocks, resumes these, and calls again. */
static bool take_senders(struct weft__mbox *mb, uint32_t n, struct sender_wakes *out)
{
    out->n = 0;
    struct weft__mbox_ext *ext = mb->ext;
    if (!(mb->flags & WEFT__MBOX_SENDERS) || !ext)
        return false;
    while (out->n < n && out->n < WAKE_BATCH && ext->senders) {
        struct weft__sender_wait *s = ext->senders;
        ext->senders = s->next;
        if (weft__wait_claim(s->waiter, s->ticket, 0))
            out->w[out->n++] = s->waiter;
    }
    if (!ext->senders) {
        mb->flags &= ~(uint32_t)WEFT__MBOX_SENDERS;
        return false;
    }
    return out->n < n;
}

static void resume_senders(const struct sender_wakes *s)
{
    for (unsigned i = 0; i < s->n; i++)
        weft__wait_resume(s->w[i]);
}

/* Claims and resumes up to n waiting senders; mb is locked on entry and on
 * return, unlocked between batches. */
static void wake_senders_locked(struct weft__mbox *mb, uint32_t n)
{
    struct sender_wakes s;
    while (take_senders(mb, n, &s)) {
        n -= s.n;
        weft__spin_unlock(&mb->lock);
        resume_senders(&s);
        weft__spin_lock(&mb->lock);
    }
    if (s.n) {
        weft__spin_unlock(&mb->lock);
        resume_senders(&s);
        weft__spin_lock(&mb->lock);
    }
}

static void remove_sender(struct weft__mbox *mb, struct weft__sender_wait *me)
{
    struct weft__mbox_ext *ext = mb->ext;
    if (!ext)
        return;
    for (struct weft__sender_wait **s = &ext->senders; *s; s = &(*s)->next)
        if (*s == me) {
            *s = me->next;
            break;
        }
    if (!ext->senders)
        mb->flags &= ~(uint32_t)WEFT__MBOX_SENDERS;
}

/* With mb locked and room checked: appends m. Returns what to do after the
 * unlock: the process to wake (with *ticket, *index) or the actor to queue. */
static void append(struct weft__target *t, struct weft__msg *m, unsigned *ticket, int *index,
                   bool *wake, bool *queue)
{
    struct weft__mbox *mb = t->mb;
    m->next = NULL;
    if (mb->tail)
        mb->tail->next = m;
    else
        mb->head = m;
    mb->tail = m;
    atomic_store_explicit(&mb->sent, atomic_load_explicit(&mb->sent, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if ((m->flags & WEFT__MSG_REPLY) || m->tag == WEFT_TAG_DOWN)
        mb->flags |= WEFT__MBOX_SIFT;
    if (t->actor) {
        if (!(mb->flags & WEFT__MBOX_QUEUED)) {
            mb->flags |= WEFT__MBOX_QUEUED;
            *queue = true;
        }
    } else if (mb->flags & WEFT__MBOX_WAITING) {
        mb->flags &= ~(uint32_t)WEFT__MBOX_WAITING;
        *ticket = t->proc->mail.wait_ticket;
        *index = t->proc->mail.wait_index;
        *wake = true;
    }
}

bool weft__mbox_push_locked(struct weft__target *t, struct weft__msg *m, struct weft__push *after)
{
    after->wake = after->queue = false;
    if (t->mb->flags & WEFT__MBOX_DEAD)
        return false;
    append(t, m, &after->ticket, &after->index, &after->wake, &after->queue);
    return true;
}

void weft__mbox_push_done(struct weft__target *t, const struct weft__push *after)
{
    if (after->queue)
        weft__actor_schedule(t->actor);
    else if (after->wake)
        weft__wake(&t->proc->waiter, after->ticket, after->index);
}

void weft__mbox_push(struct weft__target *t, struct weft__msg *m)
{
    struct weft__push after;
    weft__spin_lock(&t->mb->lock);
    bool pushed = weft__mbox_push_locked(t, m, &after);
    weft__spin_unlock(&t->mb->lock);
    if (pushed)
        weft__mbox_push_done(t, &after);
    else
        weft__msg_free(m);
}

int weft__deliver(struct weft__target *t, struct weft__msg *m, int64_t deadline)
{
    struct weft__mbox *mb = t->mb;
    struct weft__sender_wait me = {0};
    int err = 0;
    weft__spin_lock(&mb->lock);
    for (;;) {
        if (mb->flags & WEFT__MBOX_DEAD) {
            weft__spin_unlock(&mb->lock);
            weft__msg_free(m);
            return 0;
        }
        if (has_room(mb) || (m->flags & WEFT__MSG_REPLY)) /* a caller waits for a reply */
            break;
        if (deadline == 0) {
            weft__spin_unlock(&mb->lock);
            return -EAGAIN;
        }
        if (err) { /* woken without room, or not woken at all */
            weft__spin_unlock(&mb->lock);
            return err;
        }
        struct weft__proc *self = weft__proc_current();
        if (self && self->no_block) {
            weft__spin_unlock(&mb->lock);
            return weft__misuse(-EPERM, "weft_send: an actor's handler cannot wait for room");
        }
        /* Wait for room, queued behind earlier senders. */
        if (!mb->ext) {
            weft__spin_unlock(&mb->lock);
            if (!weft__mbox_ext(mb))
                return -ENOMEM;
            weft__spin_lock(&mb->lock);
            continue;
        }
        me.waiter = weft__waiter_self();
        me.ticket = weft__wait_open(me.waiter);
        me.next = NULL;
        struct weft__sender_wait **tail = &mb->ext->senders;
        while (*tail)
            tail = &(*tail)->next;
        *tail = &me;
        mb->flags |= WEFT__MBOX_SENDERS;
        weft__spin_unlock(&mb->lock);
        weft__wait_why(me.waiter, WEFT__WHY_MBOX_SEND, t->pid);
        err = weft__wait(me.waiter, deadline);
        weft__spin_lock(&mb->lock);
        if (err) {
            remove_sender(mb, &me);
            /* Room may have been made as the deadline passed: look once more. */
        }
    }
    unsigned ticket = 0;
    int index = 0;
    bool wake = false, queue = false;
    append(t, m, &ticket, &index, &wake, &queue);
    t->queued = queued(mb);
    /* A sender woken for room that we did not need passes it on. */
    struct sender_wakes pass;
    pass.n = 0;
    if (me.waiter && capacity_of(mb) && has_room(mb))
        take_senders(mb, 1, &pass);
    weft__spin_unlock(&mb->lock);
    if (weft__unlikely(pass.n))
        resume_senders(&pass);
    if (queue)
        weft__actor_schedule(t->actor);
    else if (wake)
        weft__wake(&t->proc->waiter, ticket, index);
    return 0;
}

int weft__deliver_to(weft_pid pid, struct weft__msg *m, int64_t deadline, uint32_t *queued)
{
    struct weft__target t;
    int found = weft__target_acquire(pid, &t);
    if (found) {
        if (found < 0)
            return weft__misuse(-ESRCH, "weft_send: %#llx was never a pid", (unsigned long long)pid);
        weft__msg_free(m); /* it has ended: dropped */
        *queued = 0;
        return 0;
    }
    t.queued = 0;
    int err = weft__deliver(&t, m, deadline);
    weft__target_release(&t);
    *queued = t.queued;
    return err;
}

static int check_send(int tag, size_t size)
{
    if (tag < 1)
        return weft__misuse(-EINVAL, "weft_send: tag %d (user tags are >= 1)", tag);
    if (size > WEFT_MSG_MAX)
        return weft__misuse(-EMSGSIZE, "weft_send: %zu bytes (at most %zu)", size, WEFT_MSG_MAX);
    return 0;
}

/* A send that leaves a multiple of YIELD_AT messages queued (counting those
 * the owner took since it last published its count) yields the sender's
 * worker: an owner on the same worker runs, so that an unbounded mailbox
 * stays small and its blocks hot in the caches instead of growing by whole
 * send loops (Erlang charges such a sender more reductions); an owner on
 * another worker is not slowed, the sender only lets its neighbours run. */
enum { YIELD_AT = 64 };

static int send_block(weft_pid pid, struct weft__msg *m, int64_t deadline)
{
    weft__det_point();
    uint32_t queued;
    int err = weft__deliver_to(pid, m, deadline, &queued);
    if (err == -ECANCELED)
        weft__kill_point();
    if (!err && queued >= YIELD_AT && queued % YIELD_AT == 0) {
        struct weft__worker *w = weft__worker_current();
        if (w && w->current)
            weft__sched_yield(w);
    }
    return err;
}

static int send_copy(weft_pid pid, int tag, const void *data, size_t size, int64_t deadline)
{
    struct weft__msg *m = weft__msg_alloc(size);
    if (!m)
        return -ENOMEM;
    struct weft__target self;
    m->tag = tag;
    m->flags = 0;
    m->from = weft__self_target(&self) ? self.pid : 0;
    m->ref = 0;
    m->reason = 0;
    if (size)
        memcpy(WEFT__MSG_DATA(m), data, size);
    int err = send_block(pid, m, deadline);
    if (err)
        weft__msg_free(m);
    return err;
}

int weft_send(weft_pid pid, int tag, const void *data, size_t size, int64_t deadline)
{
    int err = check_send(tag, size);
    if (err)
        return err;
    if (!data && size)
        return weft__misuse(-EINVAL, "weft_send: data is NULL for %zu bytes", size);
    WEFT__FROM_ANYWHERE(send_copy(pid, tag, data, size, deadline));
}

static int send_moved(weft_pid pid, int tag, void *buf, int64_t deadline)
{
    struct weft__msg *m = WEFT__MSG_OF(buf);
    struct weft__target self;
    m->tag = tag;
    m->flags = 0;
    m->from = weft__self_target(&self) ? self.pid : 0;
    m->ref = 0;
    m->reason = 0;
    return send_block(pid, m, deadline);
}

int weft_send_buf(weft_pid pid, int tag, void *buf, int64_t deadline)
{
    if (!buf)
        return weft__misuse(-EINVAL, "weft_send_buf: buf is NULL");
    int err = check_send(tag, 0);
    if (err)
        return err;
    WEFT__FROM_ANYWHERE(send_moved(pid, tag, buf, deadline));
}

/* ---- the owner's side ------------------------------------------------------------- */

static bool match_one(const weft_match *mt, struct weft__msg *m)
{
    if (!mt)
        return true;
    if (mt->tag && m->tag != mt->tag)
        return false;
    if (mt->from && m->from != mt->from)
        return false;
    if (mt->ref && m->ref != mt->ref)
        return false;
    if (mt->pred) {
        weft_msg view;
        weft__msg_expose(m, &view);
        return mt->pred(&view, mt->arg) != 0;
    }
    return true;
}

static bool same_match(const weft_match *a, const weft_match *b)
{
    static const weft_match any;
    if (!a)
        a = &any;
    return a->tag == b->tag && a->from == b->from && a->ref == b->ref && a->pred == b->pred &&
           a->arg == b->arg;
}

/* The shared list, taken whole by its owner, with what file_mail needs. */
struct arrivals {
    struct weft__msg *head, *tail;
    struct weft__mbox_ext *ext;
    bool sift;                       /* it may hold messages to drop */
};

/* With the mailbox locked (owner only): takes the shared list whole and
 * publishes what the owner has taken. */
static void take_shared(struct weft__proc *self, struct arrivals *a)
{
    struct weft__mbox *mb = &self->mbox;
    a->head = mb->head;
    a->tail = mb->tail;
    a->ext = mb->ext;
    a->sift = mb->flags & WEFT__MBOX_SIFT;
    mb->flags &= ~(uint32_t)WEFT__MBOX_SIFT;
    mb->head = mb->tail = NULL;
    atomic_store_explicit(&mb->received, self->mail.taken, memory_order_relaxed);
}

/* Appends the arrivals to the owner's list, in order, but for replies no
 * call waits for and DOWN messages of monitors that are over: returns those.
 * Needs no lock: the blocks are the owner's now, and so are awaiting_ref and
 * ext's watches. Without such messages the list moves whole, unread: a
 * block is first touched by the receive that takes it. */
static struct weft__msg *file_mail(struct weft__proc *self, const struct arrivals *a)
{
    struct weft__mail *mail = &self->mail;
    if (!a->head)
        return NULL;
    if (!a->sift) {
        if (mail->tail)
            mail->tail->next = a->head;
        else
            mail->head = a->head;
        mail->tail = a->tail;
        return NULL;
    }
    struct weft__msg *m = a->head, *dropped = NULL;
    while (m) {
        struct weft__msg *next = m->next;
        if (((m->flags & WEFT__MSG_REPLY) && m->ref != mail->awaiting_ref) ||
            (m->tag == WEFT_TAG_DOWN && !weft__watch_take(a->ext, m->ref, NULL))) {
            m->next = dropped;
            dropped = m;
            mail->taken++;
        } else {
            m->next = NULL;
            if (mail->tail)
                mail->tail->next = m;
            else
                mail->head = m;
            mail->tail = m;
        }
        m = next;
    }
    return dropped;
}

/* Unlinks m (after prev, or the head) from the owner's list. */
static void unlink_mail(struct weft__mail *mail, struct weft__msg *prev, struct weft__msg *m)
{
    if (prev)
        prev->next = m->next;
    else
        mail->head = m->next;
    if (mail->tail == m)
        mail->tail = prev;
    if (mail->scan_after == m)
        mail->scan_after = prev;
    m->next = NULL;
}

/* One scan of a receive: from *cursor (the last message it checked, NULL:
 * none yet) to the end of the owner's list. */
static struct weft__msg *scan(struct weft__mail *mail, const weft_match *match,
                              struct weft__msg **cursor)
{
    struct weft__msg *prev = *cursor;
    struct weft__msg *m = prev ? prev->next : mail->head;
    for (; m; prev = m, m = m->next)
        if (match_one(match, m)) {
            if (m->next) /* the next receive's, likely written on another core */
                __builtin_prefetch(m->next);
            unlink_mail(mail, prev, m);
            *cursor = prev;
            return m;
        }
    *cursor = prev;
    return NULL;
}

/* Where a receive with match starts: after what the last one checked if it
 * had the same match. */
static struct weft__msg *scan_start(struct weft__mail *mail, const weft_match *match)
{
    return mail->scan_valid && same_match(match, &mail->scan_match) ? mail->scan_after : NULL;
}

static void scan_end(struct weft__mail *mail, const weft_match *match, struct weft__msg *cursor)
{
    static const weft_match any;
    mail->scan_match = match ? *match : any;
    mail->scan_after = cursor;
    mail->scan_valid = true;
}

/* A message left an actor's mailbox: one less counted, room for a waiting sender. */
void weft__mbox_taken(struct weft__mbox *mb)
{
    atomic_store_explicit(&mb->received, atomic_load_explicit(&mb->received, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    /* A sender that found no room registered under the lock before; one
     * that looks after our unlock sees the store above. */
    if (mb->bounded) {
        struct sender_wakes s;
        weft__spin_lock(&mb->lock);
        take_senders(mb, 1, &s);
        weft__spin_unlock(&mb->lock);
        resume_senders(&s);
    }
}

/* With a bounded mailbox locked: publishes what its owner has taken or
 * dropped, and claims senders for the room there is (up to WAKE_BATCH). */
static void publish_room_locked(struct weft__proc *self, struct sender_wakes *s)
{
    struct weft__mbox *mb = &self->mbox;
    atomic_store_explicit(&mb->received, self->mail.taken, memory_order_relaxed);
    uint32_t cap = capacity_of(mb), n = queued(mb);
    s->n = 0;
    if (cap && n < cap)
        take_senders(mb, cap - n, s);
}

static void publish_room(struct weft__proc *self)
{
    struct sender_wakes s;
    weft__spin_lock(&self->mbox.lock);
    publish_room_locked(self, &s);
    weft__spin_unlock(&self->mbox.lock);
    resume_senders(&s);
}

/* A message left a process's mailbox: counted, published at once when the
 * mailbox is bounded (room for a waiting sender). */
static void mail_taken(struct weft__proc *self)
{
    self->mail.taken++;
    if (self->mbox.bounded)
        publish_room(self);
}

/* Frees what file_mail dropped; in a bounded mailbox that is room. */
static void free_dropped(struct weft__proc *self, struct weft__msg *dropped)
{
    if (!dropped)
        return;
    weft__msg_free_list(dropped);
    if (self->mbox.bounded)
        publish_room(self);
}

/* A receive that has checked the messages up to cursor already. */
static int receive_from(struct weft__proc *self, const weft_match *match, struct weft__msg *cursor,
                        int64_t deadline, struct weft__msg **out)
{
    struct weft__mail *mail = &self->mail;
    struct weft__mbox *mb = &self->mbox;
    struct weft__msg *m = scan(mail, match, &cursor);
    int err = 0;
    while (!m) {
        weft__spin_lock(&mb->lock);
        if (mb->head) {
            struct arrivals a;
            take_shared(self, &a);
            weft__spin_unlock(&mb->lock);
            free_dropped(self, file_mail(self, &a));
            m = scan(mail, match, &cursor);
            continue;
        }
        if (err) {
            weft__spin_unlock(&mb->lock);
            break;
        }
        struct weft__waiter *me = &self->waiter;
        mail->wait_ticket = weft__wait_open(me);
        mail->wait_index = 0;
        mb->flags |= WEFT__MBOX_WAITING;
        weft__spin_unlock(&mb->lock);
        weft__wait_why(me, WEFT__WHY_RECV, 0);
        err = weft__wait(me, deadline);
        if (err) {
            weft__spin_lock(&mb->lock);
            mb->flags &= ~(uint32_t)WEFT__MBOX_WAITING;
            weft__spin_unlock(&mb->lock);
            if (err == -ECANCELED) /* a message that came meanwhile waits */
                break;
        }
        /* Woken by an arrival, or timed out: look at what came once more. */
    }
    scan_end(mail, match, cursor);
    if (!m)
        return err;
    mail_taken(self);
    *out = m;
    return 0;
}

int weft__receive(struct weft__proc *self, const weft_match *match, int64_t deadline,
                  struct weft__msg **out)
{
    return receive_from(self, match, scan_start(&self->mail, match), deadline, out);
}

int weft__receive_after(struct weft__proc *self, const weft_match *match, struct weft__msg *mark,
                        int64_t deadline, struct weft__msg **out)
{
    return receive_from(self, match, mark, deadline, out);
}

static int recv(weft_msg *msg, const weft_match *match, int64_t deadline)
{
    struct weft__proc *self = weft__proc_current();
    if (!self)
        return weft__misuse(-EPERM, "weft_recv: outside threads have no mailbox");
    if (self->acting)
        return weft__misuse(-EPERM, "weft_recv: an actor receives through its handler");
    weft__det_point();
    weft__kill_check(self);
    struct weft__msg *m;
    int err = weft__receive(self, match, deadline, &m);
    if (err) {
        if (err == -ECANCELED)
            weft__kill_point();
        return err;
    }
    weft__msg_expose(m, msg);
    return 0;
}

int weft_recv(weft_msg *msg, const weft_match *match, int64_t deadline)
{
    if (!msg)
        return weft__misuse(-EINVAL, "weft_recv: msg is NULL");
    return recv(msg, match, deadline);
}

bool weft__mail_flush_down(struct weft__proc *self, uint64_t ref)
{
    struct weft__mbox *mb = &self->mbox;
    struct arrivals a;
    weft__spin_lock(&mb->lock);
    take_shared(self, &a);
    weft__spin_unlock(&mb->lock);
    free_dropped(self, file_mail(self, &a));
    struct weft__mail *mail = &self->mail;
    struct weft__msg *prev = NULL;
    for (struct weft__msg *m = mail->head; m; prev = m, m = m->next)
        if (m->tag == WEFT_TAG_DOWN && m->ref == ref) {
            unlink_mail(mail, prev, m);
            weft__msg_free(m);
            mail_taken(self);
            return true;
        }
    return false;
}

int weft__mbox_bound(struct weft__mbox *mb, size_t capacity)
{
    if (!weft__mbox_ext(mb))
        return -ENOMEM;
    weft__spin_lock(&mb->lock);
    uint32_t cap = capacity > UINT32_MAX ? UINT32_MAX : (uint32_t)capacity;
    mb->ext->capacity = cap;
    if (cap)
        mb->flags |= WEFT__MBOX_BOUNDED;
    else
        mb->flags &= ~(uint32_t)WEFT__MBOX_BOUNDED;
    mb->bounded = cap != 0;
    uint32_t n = queued(mb);
    wake_senders_locked(mb, !cap ? UINT32_MAX : n < cap ? cap - n : 0);
    weft__spin_unlock(&mb->lock);
    return 0;
}

int weft_mailbox_bound(size_t capacity)
{
    struct weft__target self;
    if (!weft__self_target(&self))
        return weft__misuse(-EPERM, "weft_mailbox_bound: not a process or actor");
    if (self.proc) { /* the bound counts what the process has taken until now */
        weft__spin_lock(&self.mb->lock);
        atomic_store_explicit(&self.mb->received, self.proc->mail.taken, memory_order_relaxed);
        weft__spin_unlock(&self.mb->lock);
    }
    return weft__mbox_bound(self.mb, capacity);
}

long weft_mailbox_len(void)
{
    struct weft__target self;
    if (!weft__self_target(&self))
        return weft__misuse(-EPERM, "weft_mailbox_len: not a process or actor");
    if (self.proc) { /* sift the arrivals first: late replies and stale DOWNs do not count */
        struct arrivals a;
        weft__spin_lock(&self.mb->lock);
        take_shared(self.proc, &a);
        weft__spin_unlock(&self.mb->lock);
        free_dropped(self.proc, file_mail(self.proc, &a));
        return (long)(atomic_load_explicit(&self.mb->sent, memory_order_relaxed) - self.proc->mail.taken);
    }
    return (long)(queued(self.mb) - weft__actor_uncounted(weft__proc_current()));
}

/* ---- the end of a mailbox ------------------------------------------------------------ */

void weft__mbox_die(struct weft__mbox *mb, weft_pid pid, intptr_t reason, struct weft__mail *mail)
{
    weft__spin_lock(&mb->lock);
    mb->flags |= WEFT__MBOX_DEAD;
    mb->flags &= ~(uint32_t)WEFT__MBOX_WAITING;
    struct weft__msg *queued = mb->head;
    mb->head = mb->tail = NULL;
    if (weft__unlikely(mb->flags & WEFT__MBOX_SENDERS))
        wake_senders_locked(mb, UINT32_MAX); /* they see DEAD and drop their message */
    struct weft__mbox_ext *ext = mb->ext;
    mb->ext = NULL;
    weft__spin_unlock(&mb->lock);
    if (queued)
        weft__msg_free_list(queued);
    if (mail && mail->head) {
        weft__msg_free_list(mail->head);
        mail->head = mail->tail = mail->scan_after = NULL;
        mail->scan_valid = false;
    }
    if (ext)
        weft__ext_die(ext, pid, reason);
}

/* ---- the mailbox as a case of select -------------------------------------------------- */

static int msg_case_find(const weft_case *c, void **obj)
{
    struct weft__proc *self = weft__proc_current();
    if (!self || self->acting)
        return weft__misuse(-EPERM, "weft_select: a mailbox case needs a process");
    if (c->size != sizeof(weft_msg))
        return weft__misuse(-EMSGSIZE, "weft_select: a mailbox case's size is sizeof(weft_msg)");
    *obj = self;
    return 0;
}

static weft__spinlock *msg_case_lock(void *obj)
{
    return &((struct weft__proc *)obj)->mbox.lock;
}

static int msg_case_check(void *obj, const weft_case *c)
{
    return 0;
}

/* With the mailbox locked: takes a matching message now if there is one. */
static bool msg_case_try(void *obj, weft_case *c, weft_pid me, int *status,
                         struct weft__handoff *h)
{
    struct weft__proc *self = obj;
    const weft_match *match = (const weft_match *)(uintptr_t)c->handle;
    struct weft__mail *mail = &self->mail;
    struct arrivals a;
    take_shared(self, &a);
    struct weft__msg *dropped = file_mail(self, &a);
    /* The dropped blocks are the owner's now: freed under the lock all the
     * same. In a bounded mailbox they are room: the senders claimed for it
     * are resumed here, under the lock (a rare path), as select may take
     * nothing and leave no handoff to do it after the unlock. */
    if (dropped) {
        weft__msg_free_list(dropped);
        if (self->mbox.bounded) {
            struct sender_wakes w;
            publish_room_locked(self, &w);
            resume_senders(&w);
        }
    }
    struct weft__msg *cursor = scan_start(mail, match);
    struct weft__msg *m = scan(mail, match, &cursor);
    scan_end(mail, match, cursor);
    if (!m)
        return false;
    struct weft__mbox *mb = &self->mbox;
    atomic_store_explicit(&mb->received, ++mail->taken, memory_order_relaxed);
    struct sender_wakes w;
    take_senders(mb, 1, &w);
    h->wake_senders = w.n ? w.w[0] : NULL;
    weft__msg_expose(m, c->buf);
    *status = 0;
    return true;
}

static void msg_case_arm(void *obj, weft_case *c, struct weft__chan_op *op)
{
    struct weft__proc *self = obj;
    self->mail.wait_ticket = op->ticket;
    self->mail.wait_index = op->index;
    self->mbox.flags |= WEFT__MBOX_WAITING;
}

static void msg_case_disarm(void *obj, weft_case *c, struct weft__chan_op *op)
{
    struct weft__proc *self = obj;
    if ((self->mbox.flags & WEFT__MBOX_WAITING) && self->mail.wait_ticket == op->ticket)
        self->mbox.flags &= ~(uint32_t)WEFT__MBOX_WAITING;
}

const struct weft__case_kind weft__msg_case_kind = {
    msg_case_find, msg_case_lock, msg_case_check, msg_case_try, msg_case_arm, msg_case_disarm,
    true,
};

void weft__handoff_wake_senders(void *waiter)
{
    weft__wait_resume(waiter);
}
