/* actor.h: internals shared by the mailbox, actor, link, call and registry
 * files: who a pid names, and the rarely used state of a mailbox's owner. */
#ifndef WEFT_ACTOR_H
#define WEFT_ACTOR_H

#include "internal.h"

/* A stackless actor: 80 bytes, plus its 24-byte handle slot, while it has
 * no ext (a name, a bound, links, monitors: see weft__mbox_ext). */
struct weft__actor {
    struct weft__mbox mbox;
    weft_actor_fn fn;
    void *state;
    void (*on_exit)(void *state, intptr_t reason);
    weft_pid pid;
    struct weft__actor *next;  /* run queue link, or slab free list */
};

/* What a pid names, with one reference held on it. */
struct weft__target {
    struct weft__mbox *mb;
    struct weft__proc *proc;   /* the process, or NULL for an actor */
    struct weft__actor *actor;
    weft_pid pid;
    uint32_t queued;           /* weft__deliver: messages in it after ours */
};

/* Takes a reference on pid's owner: 0, 1 when pid names an owner that has
 * ended (a stale pid: messages to it are dropped), or -ESRCH when it was
 * never a pid of this runtime. */
int weft__target_acquire(weft_pid pid, struct weft__target *t);
void weft__target_release(struct weft__target *t);

/* The calling process or actor: its mailbox and pid; false from an outside
 * thread. */
bool weft__self_target(struct weft__target *t);

/* A sender blocked on a full bounded mailbox (on its stack). */
struct weft__sender_wait {
    struct weft__sender_wait *next;
    struct weft__waiter *waiter;
    unsigned ticket;
};

/* A monitor, held by the monitored owner's ext, with its DOWN message. */
struct weft__monitor {
    struct weft__monitor *next;
    uint64_t ref;
    weft_pid watcher;
    struct weft__msg *down;
};

/* A monitor as its watcher knows it. */
struct weft__watch {
    uint64_t ref;
    weft_pid target;
};

/* One end of a link: the other pid, and the exit signal this side will
 * send it, allocated with the link so that an ending never allocates. */
struct weft__link {
    struct weft__link *next;
    weft_pid pid;
    struct weft__msg *signal;
};

struct weft__owned {
    struct weft__owned *next;
    weft_chan ch;
};

struct weft__mbox_ext {
    uint32_t capacity;                  /* under mbox.lock, with BOUNDED */
    struct weft__sender_wait *senders;  /* under mbox.lock */
    struct weft__link *links;           /* under mbox.lock */
    struct weft__monitor *monitors;     /* under mbox.lock */
    struct weft__owned *owned;          /* under mbox.lock */
    struct weft__watch *watching;       /* the owner's alone */
    uint32_t nwatching, capwatching;
    bool registered;                    /* name is in the registry (under its lock) */
    char name[WEFT_NAME_MAX];           /* registered name */
    char label[WEFT_NAME_MAX];          /* an actor's name for diagnostics */
    void (*at_end)(void *arg);          /* weft__at_end's, run last by weft__ext_die */
    void *at_end_arg;
};

/* mb's ext, allocated if needed; NULL when out of memory. Call unlocked. */
struct weft__mbox_ext *weft__mbox_ext(struct weft__mbox *mb);

/* mailbox.c: appends m to t's mailbox, waiting for room in a bounded one
 * until deadline. 0: delivered or dropped (owner ended; m freed); else an
 * error and m is still the caller's. */
int weft__deliver(struct weft__target *t, struct weft__msg *m, int64_t deadline);
/* Appends m to t's mailbox whatever its capacity (signals, DOWN messages,
 * replies); drops it if the owner has ended. */
void weft__mbox_push(struct weft__target *t, struct weft__msg *m);
/* weft__mbox_push in two steps, for a caller that holds t's lock: the
 * append (false: the owner has ended, m is still the caller's), then, after
 * the unlock, the wake it calls for. */
struct weft__push {
    unsigned ticket;
    int index;
    bool wake, queue;
};
bool weft__mbox_push_locked(struct weft__target *t, struct weft__msg *m, struct weft__push *after);
void weft__mbox_push_done(struct weft__target *t, const struct weft__push *after);
/* Looks pid up and delivers m: as weft__deliver, -ESRCH for a forged pid;
 * *queued as weft__target.queued. */
int weft__deliver_to(weft_pid pid, struct weft__msg *m, int64_t deadline, uint32_t *queued);
/* The calling process takes the oldest message match takes, waiting until
 * deadline: 0 with *out set, or an error. */
int weft__receive(struct weft__proc *self, const weft_match *match, int64_t deadline,
                  struct weft__msg **out);
/* A message left mb (taken by its owner): one less counted, and room for a
 * sender waiting on a bounded mailbox. */
void weft__mbox_taken(struct weft__mbox *mb);
/* weft__receive that skips what the caller's own list held up to mark (its
 * tail at some earlier point, or NULL): for replies, which are newer. */
int weft__receive_after(struct weft__proc *self, const weft_match *match, struct weft__msg *mark,
                        int64_t deadline, struct weft__msg **out);
/* Removes from the caller's mailbox (a process) the DOWN message of ref;
 * true if there was one. */
bool weft__mail_flush_down(struct weft__proc *self, uint64_t ref);

/* actor.c */
/* a's mailbox went from idle to QUEUED: puts it in a run queue. */
void weft__actor_schedule(struct weft__actor *a);
void weft__actor_release(struct weft__actor *a);
/* Ends every actor left (runtime stop, no process left to run them). */
void weft__actor_stop_all(void);

/* link.c: the exit signal m (tag WEFT_TAG_EXIT, from, reason; WEFT_EXIT_KILL
 * only from weft_kill) reaches t, which takes m over. */
void weft__signal(struct weft__target *t, struct weft__msg *m);
/* Sets up a monitor of target by the caller (self) under ref; the DOWN
 * comes at once (reason NOPROC) if target has ended. 0 or -ENOMEM. */
int weft__monitor(struct weft__target *self, weft_pid target, uint64_t ref);
/* The owner of ext forgets its monitor ref (and stores its target); false
 * if it had none: a DOWN of ref is then stale (demonitored, or a call's). */
bool weft__watch_take(struct weft__mbox_ext *ext, uint64_t ref, weft_pid *target);
/* Removes the caller's monitor ref; false if it had none. */
bool weft__demonitor(struct weft__target *self, uint64_t ref);
/* The ext of an owner that ended: links, monitors, owned channels, name. */
void weft__ext_die(struct weft__mbox_ext *ext, weft_pid pid, intptr_t reason);
/* Actors: the runner met a signal message m in a's mailbox. Returns true
 * when a must end (with *reason); false when it was ignored or turned into
 * an EXIT message left in m for the handler. */
bool weft__actor_signal(struct weft__actor *a, struct weft__msg *m, intptr_t *reason);

/* registry.c */
void weft__registry_drop(const char *name, weft_pid pid);
void weft__registry_term(void);

/* call.c: a new unique reference. */
uint64_t weft__new_ref(void);

#endif
