/* supervisor.c: supervision trees (Erlang/OTP's supervisor), built on the
 * public calls only: processes, mailboxes, request and reply, links.
 *
 * A supervisor is a detached process that traps exits. It starts its
 * children linked to itself, then serves its mailbox in one loop:
 *  - WEFT_TAG_EXIT from a child: restart by kind, strategy and intensity;
 *  - WEFT_TAG_EXIT from its parent (any reason) or from anyone else with an
 *    abnormal reason: stop the children, end with that reason;
 *  - weft_sup_which and weft_sup_restarts requests: answered with weft_reply;
 *  - a stop request: stop the children, end with WEFT_EXIT_SHUTDOWN.
 * Waits inside the loop (for a child to stop) are selective receives on
 * (WEFT_TAG_EXIT, child): everything else stays queued, in order, for the
 * loop. Restarts delayed by backoff are not waits: the loop's receive has
 * the earliest restart as its deadline, so requests are answered meanwhile.
 *
 * Handshakes. weft_sup_start waits on a channel (outside threads have no
 * mailbox) of capacity 1 into which the supervisor puts its start result;
 * the channel is owned by the supervisor (weft_chan_set_owner), so that its
 * end closes it and no caller waits for a supervisor that is gone.
 * weft_sup_stop waits for a DOWN (processes) or for the close of a channel
 * owned by the supervisor (outside threads).
 *
 * Ownership. weft_sup_start copies the spec into one allocation (struct sup
 * with its children and their names), which the supervisor process owns
 * from the moment it is spawned and frees when it ends. A child's arg is
 * the caller's: it must outlive the supervisor.
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "internal.h"

/* The supervisor's own request tags (user tags, >= 1; unlikely values so
 * that a stray message is not taken for one: it would be dropped). */
enum {
    TAG_WHICH = 0x53555001, /* payload: a child's name; reply: struct answer */
    TAG_RESTARTS,           /* no payload; reply: struct answer */
    TAG_STOP,               /* no payload, no reply: the supervisor ends */
    TAG_ANSWER              /* the replies */
};

/* A reply: value is 0 or -ENOENT for TAG_WHICH, the count for TAG_RESTARTS. */
struct answer {
    int64_t value;
    weft_pid pid;
};

struct child {
    const char *name; /* copied, in the supervisor's allocation */
    int (*start)(void *arg, weft_pid *pid);
    weft_proc_fn fn;
    void *arg;          /* the caller's */
    int restart;        /* WEFT_PERMANENT, WEFT_TRANSIENT or WEFT_TEMPORARY */
    int64_t shutdown;   /* ns granted to stop; negative: wait forever */
    weft_pid pid;       /* the running child, or 0 */
    bool pending;       /* to be started again at restart_at */
    bool removed;       /* a temporary child that ended: no longer a child */
    int64_t restart_at; /* when pending: the earliest time of its restart */
    int64_t started_at; /* the latest start attempt: its uptime resets the backoff */
    int64_t delay;      /* the latest backoff step before jitter (0: none yet) */
};

struct sup {
    struct sup *next_live; /* the list of live supervisors, under live_lock */
    weft_pid self;         /* set by the supervisor process when it starts */
    weft_pid parent;       /* the caller of weft_sup_start if linked, else 0 */
    weft_chan ready;       /* the start handshake: one int, the start result */
    int strategy;
    unsigned max_restarts;
    int64_t period;
    int64_t backoff_min, backoff_max; /* backoff_max >= backoff_min */
    uint64_t rand;         /* xorshift64 state for the jitter */
    long restarts;         /* restarts counted, for weft_sup_restarts */
    int64_t *times;        /* ring of the times of the restarts within period */
    size_t times_head, times_len, times_cap;
    size_t n;
    struct child *children; /* in start order, in this allocation */
    size_t size;            /* bytes of this allocation */
};

/* ---- the live supervisors ------------------------------------------------------- */

/* The supervisors alive now, so that weft_sup_stop and the requests tell a
 * supervisor from any other process (which would never answer) at once.
 * A supervisor adds itself when it starts and removes itself before it
 * ends. Pids are never reused within a runtime's life (see weft.h). */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sup *live_head;

static void live_add(struct sup *s)
{
    pthread_mutex_lock(&live_lock);
    s->next_live = live_head;
    live_head = s;
    pthread_mutex_unlock(&live_lock);
}

/* Removes s if it is there. */
static void live_del(struct sup *s)
{
    pthread_mutex_lock(&live_lock);
    struct sup **p = &live_head;
    while (*p && *p != s)
        p = &(*p)->next_live;
    if (*p)
        *p = s->next_live;
    pthread_mutex_unlock(&live_lock);
}

static bool live_has(weft_pid pid)
{
    bool found = false;
    pthread_mutex_lock(&live_lock);
    for (struct sup *s = live_head; s && !found; s = s->next_live)
        found = pid != 0 && s->self == pid;
    pthread_mutex_unlock(&live_lock);
    return found;
}

/* ---- time -------------------------------------------------------------------------- */

/* The deadline ns from now: WEFT_FOREVER for a negative ns, and the end of
 * time for one too large to add. */
static int64_t after(int64_t ns)
{
    int64_t now = weft_now();
    if (ns < 0)
        return WEFT_FOREVER;
    return ns > INT64_MAX - now ? INT64_MAX : now + ns;
}

static uint64_t next_rand(struct sup *s)
{
    s->rand ^= s->rand << 13;
    s->rand ^= s->rand >> 7;
    s->rand ^= s->rand << 17;
    return s->rand;
}

/* Records a restart now. Returns false when it is one too many: more than
 * max_restarts within period. The ring holds only the restarts still
 * within period, so it grows to max_restarts + 1 entries at most; without
 * memory to grow, the oldest entry gives way (the count is then low). */
static bool count_restart(struct sup *s)
{
    s->restarts++;
    if (s->max_restarts == 0)
        return false;
    int64_t now = weft_now();
    while (s->times_len > 0 && now - s->times[s->times_head] >= s->period) {
        s->times_head = (s->times_head + 1) % s->times_cap;
        s->times_len--;
    }
    if (s->times_len == s->times_cap) {
        size_t cap = s->times_cap ? s->times_cap * 2 : 8;
        int64_t *t = cap <= SIZE_MAX / sizeof *t ? weft__alloc(cap * sizeof *t) : NULL;
        if (t) {
            for (size_t i = 0; i < s->times_len; i++)
                t[i] = s->times[(s->times_head + i) % s->times_cap];
            weft__free(s->times, s->times_cap * sizeof *s->times);
            s->times = t;
            s->times_cap = cap;
            s->times_head = 0;
        } else if (s->times_cap > 0) { /* drop the oldest */
            s->times_head = (s->times_head + 1) % s->times_cap;
            s->times_len--;
        } else {
            return true; /* nothing recorded: this restart goes uncounted */
        }
    }
    s->times[(s->times_head + s->times_len) % s->times_cap] = now;
    s->times_len++;
    return s->times_len <= s->max_restarts;
}

/* The delay before c's next restart: backoff_min after a first end (or
 * after a run of backoff_max or longer), else twice the last step up to
 * backoff_max; then +-25% jitter. */
static int64_t backoff(struct sup *s, struct child *c)
{
    if (s->backoff_min == 0)
        return 0;
    int64_t uptime = weft_now() - c->started_at;
    if (c->delay == 0 || uptime >= s->backoff_max)
        c->delay = s->backoff_min;
    else
        c->delay = c->delay > s->backoff_max / 2 ? s->backoff_max : c->delay * 2;
    int64_t quarter = c->delay / 4;
    return c->delay - quarter + (int64_t)(next_rand(s) % (2 * (uint64_t)quarter + 1));
}

/* ---- starting and stopping children ------------------------------------------------ */

static int start_child(struct sup *s, struct child *c)
{
    weft_pid pid = 0;
    int rc;
    c->started_at = weft_now();
    c->pending = false;
    if (c->start) {
        rc = c->start(c->arg, &pid);
        if (rc >= 0 && pid == 0)
            rc = weft__misuse(-EINVAL, "supervisor child '%s': start returned %d without a pid",
                              c->name, rc);
    } else {
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        opts.name = c->name;
        opts.link = 1;
        opts.detached = 1; /* nobody joins it: its end is the link's EXIT */
        rc = weft_spawn(&pid, c->fn, c->arg, &opts);
    }
    if (rc < 0)
        return rc;
    c->pid = pid;
    return 0;
}

/* A child's end, as the supervisor learns it: the link's EXIT, or the DOWN
 * of a monitor when the link is gone (the child unlinked itself, say by
 * weft_sup_stop on its own supervisor, or its start did not link it). */
struct end_watch {
    weft_pid pid;
    uint64_t ref;   /* 0: no monitor */
    bool down;      /* the DOWN was taken: the monitor is over */
};

static int is_end(const weft_msg *m, void *arg)
{
    const struct end_watch *e = arg;
    return (m->tag == WEFT_TAG_EXIT && m->from == e->pid) ||
           (e->ref && m->tag == WEFT_TAG_DOWN && m->ref == e->ref);
}

/* Waits for e's end, leaving every other message. An end signals links
 * before monitors, so when the link holds, its EXIT is the one taken. */
static int wait_end(struct end_watch *e, int64_t deadline)
{
    weft_match match = {.pred = is_end, .arg = e};
    weft_msg msg;
    int rc = weft_recv(&msg, &match, deadline);
    if (rc == 0) {
        e->down = msg.tag == WEFT_TAG_DOWN;
        weft_msg_free(&msg);
    }
    return rc;
}

/* Stops c if it runs: WEFT_EXIT_SHUTDOWN, its shutdown time, then
 * WEFT_EXIT_KILL. Returns once its end has been seen (or, when the runtime
 * is shutting down, once the waits fail). */
static void stop_child(struct child *c)
{
    weft_pid pid = c->pid;
    if (pid == 0)
        return;
    c->pid = 0;
    struct end_watch e = {.pid = pid};
    if (weft_monitor(pid, &e.ref) != 0)
        e.ref = 0; /* no memory: the link's EXIT alone */
    int rc = -ETIMEDOUT;
    if (c->shutdown != 0) {
        weft_kill(pid, WEFT_EXIT_SHUTDOWN);
        rc = wait_end(&e, after(c->shutdown));
    }
    if (rc != 0) {
        weft_kill(pid, WEFT_EXIT_KILL); /* not trappable */
        if (rc != -ECANCELED)           /* the runtime's shutdown fails every wait */
            rc = wait_end(&e, WEFT_FOREVER);
    }
    if (e.ref && !e.down)
        weft_demonitor(e.ref); /* and its DOWN, if it came */
}

/* Stops children [from, to) in reverse order, except skip. With drop,
 * temporary children among them are removed (a group restart does not
 * start them again). */
static void stop_range(struct sup *s, size_t from, size_t to, size_t skip, bool drop)
{
    for (size_t i = to; i-- > from;) {
        struct child *c = &s->children[i];
        if (i == skip || c->pid == 0)
            continue;
        stop_child(c);
        if (drop && c->restart == WEFT_TEMPORARY)
            c->removed = true;
    }
}

/* Child i ended (or failed to start again) with reason. Returns false when
 * the supervisor must end: restart intensity exceeded. */
static bool child_ended(struct sup *s, size_t i, intptr_t reason)
{
    struct child *c = &s->children[i];
    c->pid = 0;
    bool restart = c->restart == WEFT_PERMANENT ||
                   (c->restart == WEFT_TRANSIENT && reason != WEFT_EXIT_NORMAL &&
                    reason != WEFT_EXIT_SHUTDOWN);
    if (!restart) {
        if (c->restart == WEFT_TEMPORARY)
            c->removed = true;
        return true;
    }
    if (!count_restart(s))
        return false;
    int64_t at = after(backoff(s, c));
    size_t from = i, to = i + 1;
    if (s->strategy == WEFT_ONE_FOR_ALL)
        from = 0, to = s->n;
    else if (s->strategy == WEFT_REST_FOR_ONE)
        to = s->n;
    stop_range(s, from, to, i, true);
    /* One deadline for the whole group: restart_due starts due children in
     * start order, so the group comes back in order. */
    for (size_t j = from; j < to; j++) {
        if (!s->children[j].removed) {
            s->children[j].pending = true;
            s->children[j].restart_at = at;
        }
    }
    return true;
}

/* Starts the pending children whose time has come, in start order. A start
 * that fails counts as an end of that child. Returns false when the
 * supervisor must end. */
static bool restart_due(struct sup *s)
{
    for (;;) {
        int64_t now = weft_now();
        size_t i = 0;
        while (i < s->n && !(s->children[i].pending && s->children[i].restart_at <= now))
            i++;
        if (i == s->n)
            return true;
        int rc = start_child(s, &s->children[i]);
        if (rc == -ECANCELED)
            return false; /* the runtime is shutting down */
        if (rc < 0 && !child_ended(s, i, rc))
            return false;
    }
}

/* The loop's deadline: the earliest pending restart, or forever. */
static int64_t next_deadline(const struct sup *s)
{
    int64_t deadline = WEFT_FOREVER;
    for (size_t i = 0; i < s->n; i++) {
        const struct child *c = &s->children[i];
        if (c->pending && (deadline == WEFT_FOREVER || c->restart_at < deadline))
            deadline = c->restart_at;
    }
    return deadline;
}

/* ---- the supervisor process ---------------------------------------------------------- */

static void answer(const weft_msg *req, int64_t value, weft_pid pid)
{
    struct answer a = {.value = value, .pid = pid};
    if (req->ref != 0) /* a plain send carrying our tag has nobody to answer */
        weft_reply(req, TAG_ANSWER, &a, sizeof a);
}

static void answer_which(struct sup *s, const weft_msg *req)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct child *c = &s->children[i];
        if (!c->removed && strlen(c->name) == req->size &&
            (req->size == 0 || memcmp(c->name, req->data, req->size) == 0)) {
            answer(req, 0, c->pid);
            return;
        }
    }
    answer(req, -ENOENT, 0);
}

/* Handles one message. Returns true, with the exit reason in *reason, when
 * the supervisor must end. */
static bool handle(struct sup *s, const weft_msg *m, intptr_t *reason)
{
    switch (m->tag) {
    case WEFT_TAG_EXIT:
        for (size_t i = 0; i < s->n && m->from != 0; i++) { /* from 0: an outside thread */
            if (s->children[i].pid == m->from) {
                *reason = WEFT_EXIT_SHUTDOWN;
                return !child_ended(s, i, m->reason);
            }
        }
        /* Not a child: the parent's end (any reason) ends the supervisor, as
         * does an abnormal exit signal from anyone (weft_kill, a link of
         * someone else's making); a normal one is ignored, as by a process
         * that does not trap exits. */
        *reason = m->reason;
        return (s->parent != 0 && m->from == s->parent) || m->reason != WEFT_EXIT_NORMAL;
    case TAG_WHICH:
        answer_which(s, m);
        return false;
    case TAG_RESTARTS:
        answer(m, s->restarts, 0);
        return false;
    case TAG_STOP:
        *reason = WEFT_EXIT_SHUTDOWN;
        return true;
    default: /* DOWN messages, stray user messages: dropped */
        return false;
    }
}

static intptr_t serve(struct sup *s)
{
    for (;;) {
        if (!restart_due(s))
            return WEFT_EXIT_SHUTDOWN;
        weft_msg msg;
        int rc = weft_recv(&msg, NULL, next_deadline(s));
        if (rc == -ETIMEDOUT)
            continue;
        if (rc == -ENOMEM && weft_yield() == 0)
            continue; /* no timer for the deadline: try again */
        if (rc < 0) /* -ECANCELED: the runtime is shutting down */
            return WEFT_EXIT_SHUTDOWN;
        intptr_t reason = 0;
        bool end = handle(s, &msg, &reason);
        weft_msg_free(&msg);
        if (end)
            return reason;
    }
}

static void sup_destroy(struct sup *s)
{
    if (s->times)
        weft__free(s->times, s->times_cap * sizeof *s->times);
    weft__free(s, s->size);
}

/* Reports the start result to weft_sup_start. The channel has room for it;
 * a caller that gave up has released the channel: -EBADF, ignored. */
static void report(struct sup *s, int result)
{
    weft_chan_send(s->ready, &result, sizeof result, 0);
}

/* The supervisor's end, however it comes (a return, or WEFT_EXIT_KILL in
 * the middle of a wait): it leaves the live list and is freed. */
static void sup_end(void *arg)
{
    struct sup *s = arg;
    live_del(s);
    sup_destroy(s);
}

static intptr_t sup_main(void *arg)
{
    struct sup *s = arg;
    s->self = weft_self();
    s->rand = ((uint64_t)weft_now() ^ (s->self * 0x9E3779B97F4A7C15u)) | 1;
    if (weft__at_end(sup_end, s) != 0) {
        report(s, -ENOMEM);
        sup_destroy(s);
        return -ENOMEM;
    }
    live_add(s);
    intptr_t reason;
    int rc = 0;
    size_t i;
    for (i = 0; i < s->n && rc >= 0; i++)
        rc = start_child(s, &s->children[i]);
    if (rc < 0) {
        stop_range(s, 0, s->n, SIZE_MAX, false);
        /* The caller learns the error from the handshake: unlinked first, so
         * that the supervisor's end with it does not end the caller too. */
        if (s->parent != 0)
            weft_unlink(s->parent);
        reason = rc;
    } else {
        report(s, 0);
        reason = serve(s);
        stop_range(s, 0, s->n, SIZE_MAX, false);
    }
    live_del(s);
    if (rc < 0)
        report(s, rc); /* after live_del: the pid is dead to weft_sup_* once it is returned */
    return reason; /* sup_end frees s */
}

/* ---- the public calls ---------------------------------------------------------------- */

static int check_spec(const weft_sup_spec *spec)
{
    if (spec->strategy < WEFT_ONE_FOR_ONE || spec->strategy > WEFT_REST_FOR_ONE)
        return weft__misuse(-EINVAL, "weft_sup_start: unknown strategy %d", spec->strategy);
    if (spec->nchildren == 0 || !spec->children)
        return weft__misuse(-EINVAL, "weft_sup_start: no children");
    if (spec->max_restarts > 0 && spec->period <= 0)
        return weft__misuse(-EINVAL, "weft_sup_start: period %lld with max_restarts %u",
                            (long long)spec->period, spec->max_restarts);
    if (spec->backoff_min < 0 || spec->backoff_max < 0)
        return weft__misuse(-EINVAL, "weft_sup_start: negative backoff");
    for (size_t i = 0; i < spec->nchildren; i++) {
        const weft_child_spec *c = &spec->children[i];
        if (!c->name || !c->name[0])
            return weft__misuse(-EINVAL, "weft_sup_start: child %zu has no name", i);
        if (!c->start == !c->fn)
            return weft__misuse(-EINVAL, "weft_sup_start: child '%s' needs one of start and fn",
                                c->name);
        if (c->restart < 0 || c->restart > WEFT_TEMPORARY)
            return weft__misuse(-EINVAL, "weft_sup_start: child '%s': unknown restart kind %d",
                                c->name, c->restart);
        for (size_t j = 0; j < i; j++)
            if (strcmp(spec->children[j].name, c->name) == 0)
                return weft__misuse(-EINVAL, "weft_sup_start: two children named '%s'", c->name);
    }
    return 0;
}

/* Copies spec into one allocation: struct sup, the children, their names. */
static struct sup *sup_create(const weft_sup_spec *spec)
{
    size_t n = spec->nchildren;
    if (n > (SIZE_MAX - sizeof(struct sup)) / sizeof(struct child))
        return NULL;
    size_t size = sizeof(struct sup) + n * sizeof(struct child);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(spec->children[i].name) + 1;
        if (len > SIZE_MAX - size)
            return NULL;
        size += len;
    }
    struct sup *s = weft__calloc(size);
    if (!s)
        return NULL;
    s->size = size;
    s->strategy = spec->strategy;
    s->max_restarts = spec->max_restarts;
    s->period = spec->period;
    /* Capped so that the jitter's +25% cannot overflow. */
    s->backoff_min = spec->backoff_min < INT64_MAX / 2 ? spec->backoff_min : INT64_MAX / 2;
    s->backoff_max = spec->backoff_max < INT64_MAX / 2 ? spec->backoff_max : INT64_MAX / 2;
    if (s->backoff_max < s->backoff_min)
        s->backoff_max = s->backoff_min;
    s->n = n;
    s->children = (struct child *)(s + 1);
    char *names = (char *)(s->children + n);
    for (size_t i = 0; i < n; i++) {
        const weft_child_spec *cs = &spec->children[i];
        struct child *c = &s->children[i];
        size_t len = strlen(cs->name) + 1;
        memcpy(names, cs->name, len);
        c->name = names;
        names += len;
        c->start = cs->start;
        c->fn = cs->fn;
        c->arg = cs->arg;
        c->restart = cs->restart ? cs->restart : WEFT_PERMANENT;
        c->shutdown = cs->shutdown < 0 ? WEFT_FOREVER : cs->shutdown;
    }
    return s;
}

/* 0 if the caller may wait on its mailbox, else the error of a receive:
 * -EPERM [misuse] from an actor's handler, -ECANCELED, ... A selective
 * receive that can take nothing (no monitor has this ref), not blocking. */
static int may_wait(void)
{
    weft_match none = {.tag = WEFT_TAG_DOWN, .ref = UINT64_MAX};
    weft_msg msg;
    int rc = weft_recv(&msg, &none, 0);
    if (rc == 0)
        weft_msg_free(&msg);
    return rc == -ETIMEDOUT ? 0 : rc;
}

int weft_sup_start(weft_pid *pid, const weft_sup_spec *spec, int link)
{
    if (!spec || !pid)
        return weft__misuse(-EINVAL, "weft_sup_start: %s is NULL", spec ? "pid" : "spec");
    int rc = check_spec(spec);
    if (rc < 0)
        return rc;
    weft_pid self = weft_self();
    if (link && self == 0)
        return weft__misuse(-EPERM, "weft_sup_start: link from an outside thread");
    if (self != 0 && (rc = may_wait()) < 0)
        return rc;
    struct sup *s = sup_create(spec);
    if (!s)
        return -ENOMEM;
    weft_chan ready;
    if ((rc = weft_chan_make(&ready, sizeof(int), 1)) < 0)
        goto fail_chan;
    s->ready = ready;
    s->parent = link ? self : 0;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.name = spec->name;
    opts.trap_exits = 1;
    opts.link = link != 0;
    opts.detached = 1;
    weft_pid sup;
    if ((rc = weft_spawn(&sup, sup_main, s, &opts)) < 0)
        goto fail_spawn;
    /* From here s belongs to the supervisor. Make it the channel's owner, so
     * that its end closes the channel and no wait below outlasts it. */
    int result = 0;
    rc = weft_chan_set_owner(ready, sup);
    if (rc == -ESRCH) {
        /* It has already ended: after reporting a failed start, or without
         * ever running (no stack for it). */
        if (weft_chan_recv(ready, &result, sizeof result, 0) < 0)
            result = -ENOMEM;
    } else {
        rc = weft_chan_recv(ready, &result, sizeof result, WEFT_FOREVER);
        if (rc == -EPIPE) {
            result = -ESRCH; /* it ended without reporting: killed */
        } else if (rc < 0) {
            weft_kill(sup, WEFT_EXIT_SHUTDOWN); /* the caller is being stopped */
            result = rc;
        }
    }
    weft_chan_release(ready);
    if (result < 0)
        return result;
    *pid = sup;
    return 0;

fail_spawn:
    weft_chan_release(ready);
fail_chan:
    sup_destroy(s);
    return rc;
}

int weft_sup_start_child(void *spec, weft_pid *pid)
{
    return weft_sup_start(pid, spec, 1);
}

/* weft_sup_stop from an outside thread: waits for the close of a channel
 * that the supervisor owns. */
static int stop_from_thread(weft_pid sup, int64_t deadline)
{
    weft_chan ch;
    int rc = weft_chan_make(&ch, 1, 1);
    if (rc < 0)
        return rc;
    if ((rc = weft_chan_set_owner(ch, sup)) == 0 &&
        (rc = weft_send(sup, TAG_STOP, NULL, 0, 0)) == 0) {
        char c;
        rc = weft_chan_recv(ch, &c, sizeof c, deadline);
        if (rc == -EPIPE) /* closed: the supervisor has ended */
            rc = 0;
    }
    weft_chan_release(ch);
    return rc;
}

/* No runtime: -ESHUTDOWN, as every call that takes a handle. */
static bool no_runtime(void)
{
    return atomic_load_explicit(&weft__rt.state, memory_order_acquire) == WEFT__RT_STOPPED;
}

int weft_sup_stop(weft_pid sup, int64_t deadline)
{
    if (no_runtime())
        return -ESHUTDOWN;
    if (!live_has(sup))
        return -ESRCH;
    weft_pid self = weft_self();
    if (self == 0)
        return stop_from_thread(sup, deadline);
    if (self == sup)
        return weft__misuse(-EDEADLK, "weft_sup_stop: a supervisor stopping itself");
    int rc = may_wait();
    if (rc < 0)
        return rc;
    uint64_t ref;
    if ((rc = weft_monitor(sup, &ref)) < 0)
        return rc;
    /* The supervisor ends with WEFT_EXIT_SHUTDOWN, an abnormal reason: a
     * caller linked to it (it started it) is not to end with it. */
    weft_unlink(sup);
    if ((rc = weft_send(sup, TAG_STOP, NULL, 0, 0)) == 0) {
        weft_match down = {.tag = WEFT_TAG_DOWN, .from = sup, .ref = ref};
        weft_msg msg;
        if ((rc = weft_recv(&msg, &down, deadline)) == 0) {
            rc = msg.reason == WEFT_EXIT_NOPROC ? -ESRCH : 0;
            weft_msg_free(&msg);
            return rc;
        }
    }
    weft_demonitor(ref);
    return rc;
}

/* Asks sup by a call: tag's request, with data as payload. */
static int ask(weft_pid sup, int tag, const void *data, size_t size, struct answer *a,
               int64_t deadline)
{
    if (no_runtime())
        return -ESHUTDOWN;
    if (!live_has(sup))
        return -ESRCH;
    if (sup == weft_self()) /* a child's start callback asking its own supervisor */
        return weft__misuse(-EDEADLK, "weft_sup_*: a supervisor asking itself");
    weft_msg reply;
    int rc = weft_call(sup, tag, data, size, &reply, deadline);
    if (rc < 0)
        return rc;
    weft__assert(reply.size == sizeof *a);
    memcpy(a, reply.data, sizeof *a);
    weft_msg_free(&reply);
    return 0;
}

int weft_sup_which(weft_pid sup, const char *name, weft_pid *pid, int64_t deadline)
{
    if (!name || !pid)
        return weft__misuse(-EINVAL, "weft_sup_which: %s is NULL", name ? "pid" : "name");
    struct answer a;
    int rc = ask(sup, TAG_WHICH, name, strlen(name), &a, deadline);
    if (rc < 0)
        return rc;
    if (a.value < 0)
        return (int)a.value;
    *pid = a.pid;
    return 0;
}

long weft_sup_restarts(weft_pid sup, int64_t deadline)
{
    struct answer a;
    int rc = ask(sup, TAG_RESTARTS, NULL, 0, &a, deadline);
    return rc < 0 ? rc : (long)a.value;
}
