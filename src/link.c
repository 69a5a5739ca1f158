/* link.c: links, monitors, exit signals, trapping, owned channels.
 *
 * Each owner's links, monitors and owned channels live in its mailbox's ext,
 * under the mailbox's lock, and the DEAD flag is set under that lock when it
 * ends: a link or monitor made concurrently with the end either finds DEAD
 * (and reports it) or is in the lists the end goes through. Two mailboxes
 * are locked in address order. Every message an end sends (exit signals,
 * DOWN) is allocated when the link or monitor is made, so that ending never
 * fails for want of memory.
 *
 * Killing a process: the signal sets kill_pending (under the victim's
 * mailbox lock), then runs a process-wide barrier, then cancels the victim's
 * open wait. The victim reads kill_pending after opening any wait (wait.c)
 * and at the end of every blocking call that failed with -ECANCELED, where
 * it ends (weft__kill_point). The barrier is membarrier(2): it orders the
 * victim's ticket store before its kill_pending load without a fence on the
 * victim's side, which every wait takes. An actor is killed by its runner,
 * which meets the signal in its mailbox in order with its messages.
 */
#include <linux/membarrier.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "actor.h"
#include "chan.h"

atomic_bool weft__kill_fence_full;

static bool membarrier_ok;

void weft__kill_barrier_init(void)
{
    static bool tried;
    if (tried)
        return;
    tried = true;
#ifdef SYS_membarrier
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
        membarrier_ok = true;
#endif
    atomic_store(&weft__kill_fence_full, !membarrier_ok);
}

static void kill_barrier(void)
{
    if (atomic_load_explicit(&weft__det_on, memory_order_relaxed))
        return; /* one thread */
#ifdef SYS_membarrier
    if (membarrier_ok && syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
        return;
#endif
    atomic_thread_fence(memory_order_seq_cst);
}

static void lock_two(struct weft__mbox *a, struct weft__mbox *b)
{
    if (a > b) {
        struct weft__mbox *t = a;
        a = b;
        b = t;
    }
    weft__spin_lock(&a->lock);
    if (b != a)
        weft__spin_lock(&b->lock);
}

static void unlock_two(struct weft__mbox *a, struct weft__mbox *b)
{
    weft__spin_unlock(&a->lock);
    if (b != a)
        weft__spin_unlock(&b->lock);
}

static struct weft__msg *exit_msg(weft_pid from, intptr_t reason)
{
    struct weft__msg *m = weft__msg_alloc(0);
    if (m) {
        m->tag = WEFT_TAG_EXIT;
        m->flags = 0;
        m->from = from;
        m->ref = 0;
        m->reason = reason;
    }
    return m;
}

/* ---- exit signals ------------------------------------------------------------------------ */

/* What an exit signal did under its target's lock, and what is left for
 * after the unlock (signal_done). */
enum signal_outcome {
    SIGNAL_DROPPED,  /* ignored, or the target has ended: m is to be freed */
    SIGNAL_PUSHED,   /* an EXIT message, or an actor's signal, was appended */
    SIGNAL_KILL      /* kill_pending is set: barrier, then cancel its wait */
};

/* With t's mailbox locked: delivers the exit signal m (its reason set). */
static enum signal_outcome signal_locked(struct weft__target *t, struct weft__msg *m,
                                         struct weft__push *after)
{
    struct weft__mbox *mb = t->mb;
    if (t->actor) { /* its runner decides, in order with its messages */
        m->flags = WEFT__MSG_SIGNAL;
        return weft__mbox_push_locked(t, m, after) ? SIGNAL_PUSHED : SIGNAL_DROPPED;
    }
    if (mb->flags & WEFT__MBOX_DEAD)
        return SIGNAL_DROPPED;
    intptr_t reason = m->reason;
    bool trap = mb->flags & WEFT__MBOX_TRAP;
    if (reason == WEFT_EXIT_KILL || (!trap && reason != WEFT_EXIT_NORMAL)) {
        struct weft__proc *p = t->proc;
        if (!atomic_load_explicit(&p->kill_pending, memory_order_relaxed)) {
            p->kill_reason = reason == WEFT_EXIT_KILL ? WEFT_EXIT_KILLED : reason;
            atomic_store_explicit(&p->kill_pending, true, memory_order_seq_cst);
        }
        return SIGNAL_KILL;
    }
    if (!trap)
        return SIGNAL_DROPPED; /* NORMAL, not trapped */
    m->flags = 0;
    return weft__mbox_push_locked(t, m, after) ? SIGNAL_PUSHED : SIGNAL_DROPPED;
}

static void signal_done(struct weft__target *t, struct weft__msg *m, enum signal_outcome o,
                        const struct weft__push *after)
{
    if (o == SIGNAL_PUSHED) {
        weft__mbox_push_done(t, after);
        return;
    }
    weft__msg_free(m);
    if (o == SIGNAL_KILL) {
        kill_barrier();
        weft__wait_cancel(&t->proc->waiter);
    }
}

void weft__signal(struct weft__target *t, struct weft__msg *m)
{
    struct weft__push after;
    weft__spin_lock(&t->mb->lock);
    enum signal_outcome o = signal_locked(t, m, &after);
    weft__spin_unlock(&t->mb->lock);
    signal_done(t, m, o, &after);
}

bool weft__actor_signal(struct weft__actor *a, struct weft__msg *m, intptr_t *reason)
{
    weft__spin_lock(&a->mbox.lock);
    bool trap = a->mbox.flags & WEFT__MBOX_TRAP;
    weft__spin_unlock(&a->mbox.lock);
    m->flags = 0;
    if (m->reason == WEFT_EXIT_KILL) {
        *reason = WEFT_EXIT_KILLED;
        return true;
    }
    if (trap) {
        m->tag = WEFT_TAG_EXIT; /* the handler gets it */
        return false;
    }
    m->tag = 0; /* ignored */
    if (m->reason == WEFT_EXIT_NORMAL)
        return false;
    *reason = m->reason;
    return true;
}

static int do_kill(weft_pid pid, intptr_t reason)
{
    weft__det_point();
    struct weft__target t, self;
    int found = weft__target_acquire(pid, &t);
    if (found < 0)
        return weft__misuse(-ESRCH, "weft_kill: %#llx was never a pid", (unsigned long long)pid);
    if (found > 0)
        return 0;
    struct weft__msg *m = exit_msg(weft__self_target(&self) ? self.pid : 0, reason);
    if (!m) {
        weft__target_release(&t);
        return -ENOMEM;
    }
    weft__signal(&t, m);
    weft__target_release(&t);
    weft__kill_point(); /* it may have been the caller */
    return 0;
}

int weft_kill(weft_pid pid, intptr_t reason)
{
    WEFT__FROM_ANYWHERE(do_kill(pid, reason));
}

int weft_trap_exits(int on)
{
    struct weft__target self;
    if (!weft__self_target(&self))
        return weft__misuse(-EPERM, "weft_trap_exits: not a process or actor");
    weft__spin_lock(&self.mb->lock);
    int was = (self.mb->flags & WEFT__MBOX_TRAP) != 0;
    if (on)
        self.mb->flags |= WEFT__MBOX_TRAP;
    else
        self.mb->flags &= ~(uint32_t)WEFT__MBOX_TRAP;
    weft__spin_unlock(&self.mb->lock);
    return was;
}

/* ---- links ------------------------------------------------------------------------------ */

static void link_free(struct weft__link *l)
{
    if (l->signal)
        weft__msg_free(l->signal);
    weft__free(l, sizeof *l);
}

static struct weft__link *link_new(weft_pid to, weft_pid from)
{
    struct weft__link *l = weft__alloc(sizeof *l);
    if (!l)
        return NULL;
    l->next = NULL;
    l->pid = to;
    l->signal = exit_msg(from, 0);
    if (!l->signal) {
        weft__free(l, sizeof *l);
        return NULL;
    }
    return l;
}

static bool has_link(struct weft__mbox_ext *ext, weft_pid pid)
{
    for (struct weft__link *l = ext->links; l; l = l->next)
        if (l->pid == pid)
            return true;
    return false;
}

/* With ext's mailbox locked: unlinks and returns the link to pid, or NULL. */
static struct weft__link *take_link(struct weft__mbox_ext *ext, weft_pid pid)
{
    for (struct weft__link **l = &ext->links; *l; l = &(*l)->next)
        if ((*l)->pid == pid) {
            struct weft__link *found = *l;
            *l = found->next;
            return found;
        }
    return NULL;
}

/* Links a and b (both acquired). 0, -ESRCH (b has ended) or -ENOMEM. */
static int link_two(struct weft__target *a, struct weft__target *b)
{
    struct weft__mbox_ext *ea = weft__mbox_ext(a->mb), *eb = weft__mbox_ext(b->mb);
    struct weft__link *la = link_new(b->pid, a->pid), *lb = link_new(a->pid, b->pid);
    int err = 0;
    if (!la || !lb || !ea) {
        err = -ENOMEM;
    } else {
        lock_two(a->mb, b->mb);
        /* A mailbox has no ext when it died first, or when the ext could
         * not be allocated (DEAD is for good: one not dead now never was). */
        if ((b->mb->flags & WEFT__MBOX_DEAD) || (a->mb->flags & WEFT__MBOX_DEAD)) {
            err = -ESRCH;
        } else if (!eb) {
            err = -ENOMEM;
        } else if (!has_link(ea, b->pid)) {
            la->next = ea->links;
            ea->links = la;
            lb->next = eb->links;
            eb->links = lb;
            la = lb = NULL;
        }
        unlock_two(a->mb, b->mb);
    }
    if (la)
        link_free(la);
    if (lb)
        link_free(lb);
    return err;
}

int weft__link_spawned(struct weft__mbox *child, weft_pid child_pid)
{
    struct weft__target self, c = {.mb = child, .pid = child_pid};
    if (!weft__self_target(&self))
        return -EPERM;
    return link_two(&self, &c) ? -ENOMEM : 0;
}

static int do_link(weft_pid pid)
{
    struct weft__target self, t;
    if (!weft__self_target(&self))
        return weft__misuse(-EPERM, "weft_link: not a process or actor");
    if (pid == self.pid)
        return weft__misuse(-EINVAL, "weft_link: a process cannot link to itself");
    weft__det_point();
    weft__self_target(&self); /* the point may have moved the process */
    int found = weft__target_acquire(pid, &t);
    if (found)
        return found < 0 ? weft__misuse(-ESRCH, "weft_link: %#llx was never a pid",
                                        (unsigned long long)pid)
                         : -ESRCH;
    int err = link_two(&self, &t);
    weft__target_release(&t);
    return err;
}

int weft_link(weft_pid pid)
{
    return do_link(pid);
}

int weft_unlink(weft_pid pid)
{
    struct weft__target self, t;
    if (!weft__self_target(&self))
        return weft__misuse(-EPERM, "weft_unlink: not a process or actor");
    weft__det_point();
    weft__self_target(&self);
    if (weft__target_acquire(pid, &t) != 0) {
        /* It has ended: its side is gone; drop ours. */
        weft__spin_lock(&self.mb->lock);
        struct weft__link *l = self.mb->ext ? take_link(self.mb->ext, pid) : NULL;
        weft__spin_unlock(&self.mb->lock);
        if (l)
            link_free(l);
        return 0;
    }
    lock_two(self.mb, t.mb);
    struct weft__link *la = self.mb->ext ? take_link(self.mb->ext, pid) : NULL;
    struct weft__link *lb = t.mb->ext && !(t.mb->flags & WEFT__MBOX_DEAD)
                                ? take_link(t.mb->ext, self.pid) : NULL;
    unlock_two(self.mb, t.mb);
    weft__target_release(&t);
    if (la)
        link_free(la);
    if (lb)
        link_free(lb);
    return 0;
}

/* ---- monitors --------------------------------------------------------------------------- */

static struct weft__msg *down_msg(weft_pid from, uint64_t ref)
{
    struct weft__msg *m = weft__msg_alloc(0);
    if (m) {
        m->tag = WEFT_TAG_DOWN;
        m->flags = 0;
        m->from = from;
        m->ref = ref;
        m->reason = WEFT_EXIT_NOPROC;
    }
    return m;
}

static int watch_add(struct weft__mbox_ext *ext, uint64_t ref, weft_pid target)
{
    if (ext->nwatching == ext->capwatching) {
        uint32_t cap = ext->capwatching ? ext->capwatching * 2 : 4;
        struct weft__watch *w = weft__alloc(cap * sizeof *w);
        if (!w)
            return -ENOMEM;
        if (ext->nwatching)
            memcpy(w, ext->watching, ext->nwatching * sizeof *w);
        if (ext->watching)
            weft__free(ext->watching, ext->capwatching * sizeof *w);
        ext->watching = w;
        ext->capwatching = cap;
    }
    ext->watching[ext->nwatching++] = (struct weft__watch){ref, target};
    return 0;
}

int weft__monitor(struct weft__target *self, weft_pid target, uint64_t ref)
{
    struct weft__mbox_ext *mine = weft__mbox_ext(self->mb);
    struct weft__monitor *mon = weft__alloc(sizeof *mon);
    struct weft__msg *down = down_msg(target, ref);
    if (!mine || !mon || !down || watch_add(mine, ref, target) != 0) {
        if (mon)
            weft__free(mon, sizeof *mon);
        if (down)
            weft__msg_free(down);
        return -ENOMEM;
    }
    mon->ref = ref;
    mon->watcher = self->pid;
    mon->down = down;
    struct weft__target t;
    bool alive = weft__target_acquire(target, &t) == 0;
    if (alive) {
        struct weft__mbox_ext *ext = weft__mbox_ext(t.mb);
        weft__spin_lock(&t.mb->lock);
        alive = ext && !(t.mb->flags & WEFT__MBOX_DEAD);
        if (alive) {
            mon->next = ext->monitors;
            ext->monitors = mon;
        }
        weft__spin_unlock(&t.mb->lock);
        weft__target_release(&t);
        if (alive)
            return 0;
    }
    /* Not alive: the DOWN comes at once. Its watch entry stays until
     * demonitor or the end, harmlessly. */
    weft__free(mon, sizeof *mon);
    weft__mbox_push(self, down);
    return 0;
}

bool weft__watch_take(struct weft__mbox_ext *ext, uint64_t ref, weft_pid *target)
{
    if (!ext)
        return false;
    for (uint32_t i = 0; i < ext->nwatching; i++)
        if (ext->watching[i].ref == ref) {
            if (target)
                *target = ext->watching[i].target;
            ext->watching[i] = ext->watching[--ext->nwatching];
            return true;
        }
    return false;
}

/* The monitor ref that watcher holds on target: unhooked and freed with
 * its DOWN, unless target has ended (its end owns them). */
static void unhook_monitor(weft_pid target, uint64_t ref, weft_pid watcher)
{
    struct weft__target t;
    if (weft__target_acquire(target, &t) != 0)
        return;
    struct weft__monitor *found = NULL;
    weft__spin_lock(&t.mb->lock);
    if (t.mb->ext && !(t.mb->flags & WEFT__MBOX_DEAD))
        for (struct weft__monitor **m = &t.mb->ext->monitors; *m; m = &(*m)->next)
            if ((*m)->ref == ref && (*m)->watcher == watcher) {
                found = *m;
                *m = found->next;
                break;
            }
    weft__spin_unlock(&t.mb->lock);
    weft__target_release(&t);
    if (found) {
        weft__msg_free(found->down);
        weft__free(found, sizeof *found);
    }
}

bool weft__demonitor(struct weft__target *self, uint64_t ref)
{
    weft_pid target;
    if (!weft__watch_take(self->mb->ext, ref, &target)) /* the owner's own: stable */
        return false;
    unhook_monitor(target, ref, self->pid);
    return true;
}

static int monitor(weft_pid pid, uint64_t *ref)
{
    struct weft__target self;
    if (!weft__self_target(&self))
        return weft__misuse(-EPERM, "weft_monitor: not a process or actor");
    weft__det_point();
    weft__self_target(&self);
    struct weft__target t;
    int found = weft__target_acquire(pid, &t);
    if (found < 0)
        return weft__misuse(-ESRCH, "weft_monitor: %#llx was never a pid", (unsigned long long)pid);
    if (found == 0)
        weft__target_release(&t);
    uint64_t r = weft__new_ref();
    int err = weft__monitor(&self, pid, r);
    if (!err)
        *ref = r;
    return err;
}

int weft_monitor(weft_pid pid, uint64_t *ref)
{
    if (!ref)
        return weft__misuse(-EINVAL, "weft_monitor: ref is NULL");
    return monitor(pid, ref);
}

int weft_demonitor(uint64_t ref)
{
    struct weft__target self;
    if (!weft__self_target(&self))
        return weft__misuse(-EPERM, "weft_demonitor: not a process or actor");
    bool had = weft__demonitor(&self, ref);
    /* Its DOWN may be in the mailbox already (the monitor is then over). */
    if (self.proc && weft__mail_flush_down(self.proc, ref))
        had = true;
    if (!had)
        return weft__misuse(-ENOENT, "weft_demonitor: no monitor %#llx", (unsigned long long)ref);
    return 0;
}

/* ---- owned channels ---------------------------------------------------------------------- */

static int set_owner(weft_chan ch, weft_pid pid)
{
    if (weft_chan_cap(ch) < 0)
        return weft__misuse(-EBADF, "weft_chan_set_owner: bad channel %#llx", (unsigned long long)ch);
    struct weft__target t;
    int found = weft__target_acquire(pid, &t);
    if (found)
        return found < 0 ? weft__misuse(-ESRCH, "weft_chan_set_owner: %#llx was never a pid",
                                        (unsigned long long)pid)
                         : -ESRCH;
    struct weft__mbox_ext *ext = weft__mbox_ext(t.mb);
    struct weft__owned *o = weft__alloc(sizeof *o);
    int err = 0;
    if (!o) {
        err = -ENOMEM;
    } else {
        o->ch = ch;
        weft__spin_lock(&t.mb->lock);
        if (t.mb->flags & WEFT__MBOX_DEAD) {
            err = -ESRCH;
        } else if (!ext) { /* not dead now, so never was: no memory */
            err = -ENOMEM;
        } else {
            o->next = ext->owned;
            ext->owned = o;
            o = NULL;
        }
        weft__spin_unlock(&t.mb->lock);
        if (o)
            weft__free(o, sizeof *o);
    }
    weft__target_release(&t);
    return err;
}

int weft_chan_set_owner(weft_chan ch, weft_pid pid)
{
    WEFT__FROM_ANYWHERE(set_owner(ch, pid));
}

/* ---- the end ------------------------------------------------------------------------------ */

void weft__ext_die(struct weft__mbox_ext *ext, weft_pid pid, intptr_t reason)
{
    /* A process that returned WEFT_EXIT_KILL passes it on as KILLED: only
     * weft_kill's signal is untrappable. */
    intptr_t passed = reason == WEFT_EXIT_KILL ? WEFT_EXIT_KILLED : reason;
    while (ext->links) {
        struct weft__link *l = ext->links;
        ext->links = l->next;
        struct weft__target t;
        if (weft__target_acquire(l->pid, &t) == 0) {
            /* The back-link is taken and the signal delivered in one hold of
             * the other side's lock: either its weft_unlink came first (and
             * no signal follows its return), or the signal is in. */
            struct weft__msg *m = l->signal;
            m->reason = passed;
            struct weft__push after;
            enum signal_outcome o = SIGNAL_DROPPED;
            weft__spin_lock(&t.mb->lock);
            struct weft__link *back = t.mb->ext && !(t.mb->flags & WEFT__MBOX_DEAD)
                                          ? take_link(t.mb->ext, pid) : NULL;
            if (back) {
                l->signal = NULL;
                o = signal_locked(&t, m, &after);
            }
            weft__spin_unlock(&t.mb->lock);
            if (back) {
                link_free(back);
                signal_done(&t, m, o, &after);
            }
            weft__target_release(&t);
        }
        link_free(l);
    }
    while (ext->monitors) {
        struct weft__monitor *mon = ext->monitors;
        ext->monitors = mon->next;
        struct weft__target t;
        if (weft__target_acquire(mon->watcher, &t) == 0) {
            mon->down->reason = reason;
            weft__mbox_push(&t, mon->down);
            weft__target_release(&t);
        } else {
            weft__msg_free(mon->down);
        }
        weft__free(mon, sizeof *mon);
    }
    /* The monitors it held: their targets forget them. */
    for (uint32_t i = 0; i < ext->nwatching; i++)
        unhook_monitor(ext->watching[i].target, ext->watching[i].ref, pid);
    if (ext->watching)
        weft__free(ext->watching, ext->capwatching * sizeof *ext->watching);
    while (ext->owned) {
        struct weft__owned *o = ext->owned;
        ext->owned = o->next;
        weft__chan_close_quiet(o->ch); /* already closed or gone: nothing to do */
        weft__free(o, sizeof *o);
    }
    if (ext->registered)
        weft__registry_drop(ext->name, pid);
    if (ext->at_end)
        ext->at_end(ext->at_end_arg);
    weft__free(ext, sizeof *ext);
}

int weft__at_end(void (*fn)(void *arg), void *arg)
{
    struct weft__target self;
    if (!weft__self_target(&self) || !self.proc)
        return -EPERM;
    struct weft__mbox_ext *ext = weft__mbox_ext(self.mb);
    if (!ext)
        return -ENOMEM; /* the caller runs: its mailbox is not dead */
    weft__spin_lock(&self.mb->lock);
    ext->at_end = fn;
    ext->at_end_arg = arg;
    weft__spin_unlock(&self.mb->lock);
    return 0;
}
