/* debug.c: what every process is doing: weft_dump, the dump signal, and the
 * deadlock detector of weft_run.
 *
 * Deadlock. The scheduler calls the stall hook when its last worker is about
 * to park with nothing runnable and no timer armed. If, in weft_run, main is
 * still alive, no outside thread is inside a weft call or attached
 * (weft_thread_attach) and no process waits for an offload helper, nothing
 * can ever wake a process again: every live process waits on another
 * process (a channel, a join) or on nothing. The detector then writes the
 * report and tells weft_run, which stops the runtime and returns -EDEADLK.
 *
 * The wait-for graph behind "the cycle of waits": a process joining P waits
 * for P; a process blocked on a channel waits for the other process that
 * used the channel last (the one that took the fork, or was the peer of the
 * last exchange). That is a heuristic for channels, exact for joins; a
 * cycle found in it is shown as such, never used to decide anything.
 *
 * The dump signal's handler only bumps a counter and wakes a dump thread,
 * which writes the report with ordinary (not signal-safe) calls.
 */
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "fault.h"

enum { MAX_EDGES = 8, MAX_CASES = 8, OUT_BUF = 4096 };

/* A snapshot of one process. */
struct entry {
    weft_pid pid;
    char name[WEFT_NAME_MAX + 24];
    const char *site;
    bool is_main, blocked, ended;
    int why;
    uint64_t obj;
    struct {
        int kind;
        uint64_t handle;
    } cases[MAX_CASES];        /* the enabled cases of a select, copied */
    size_t ncases;
    int64_t deadline;
    weft_pid edges[MAX_EDGES]; /* processes it waits for */
    int nedges;
    int color;                 /* cycle search: 0 new, 1 on the path, 2 done */
};

struct snapshot {
    struct entry *e;
    size_t n, cap;
    bool oom;
};

/* ---- output ------------------------------------------------------------------------- */

struct out {
    int fd;
    int err;
    size_t len;
    char buf[OUT_BUF];
};

static void out_flush(struct out *o)
{
    size_t done = 0;
    while (done < o->len && !o->err) {
        ssize_t k = write(o->fd, o->buf + done, o->len - done);
        if (k < 0 && errno != EINTR)
            o->err = -EBADF;
        else if (k > 0)
            done += (size_t)k;
    }
    o->len = 0;
}

__attribute__((format(printf, 2, 3))) static void out_printf(struct out *o, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    size_t n = (size_t)k < sizeof line ? (size_t)k : sizeof line - 1;
    if (o->len + n > sizeof o->buf)
        out_flush(o);
    memcpy(o->buf + o->len, line, n);
    o->len += n;
}

/* ---- the snapshot ---------------------------------------------------------------------- */

/* The process other than self that used channel ch last, or 0. */
static weft_pid chan_peer(uint64_t ch, weft_pid self)
{
    struct weft__chan *c = weft__chan_find(ch);
    if (!c || __atomic_load_n(&c->handle, __ATOMIC_ACQUIRE) != ch)
        return 0;
    weft_pid last = __atomic_load_n(&c->last_user, __ATOMIC_RELAXED);
    return last != self ? last : __atomic_load_n(&c->prev_user, __ATOMIC_RELAXED);
}

static void add_edge(struct entry *e, weft_pid to)
{
    for (int i = 0; i < e->nedges; i++)
        if (e->edges[i] == to)
            return;
    if (to && to != e->pid && e->nedges < MAX_EDGES)
        e->edges[e->nedges++] = to;
}

static void take(struct weft__proc *p, void *arg)
{
    struct snapshot *s = arg;
    /* A joined process is gone, even while its block lingers until it has
     * left its stack (proc.c): not shown as "ended, not joined yet". */
    if (atomic_load_explicit(&p->join_state, memory_order_acquire) & WEFT__JOIN_JOINED)
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        struct entry *e = weft__alloc(cap * sizeof *e);
        if (!e) {
            s->oom = true;
            return;
        }
        if (s->n)
            memcpy(e, s->e, s->n * sizeof *e);
        weft__free(s->e, s->cap * sizeof *e);
        s->e = e;
        s->cap = cap;
    }
    struct entry *e = &s->e[s->n++];
    memset(e, 0, sizeof *e);
    e->pid = p->pid;
    if (p->name[0])
        snprintf(e->name, sizeof e->name, "%s", p->name);
    else
        snprintf(e->name, sizeof e->name, "fn@%p", (void *)(uintptr_t)p->fn);
    e->site = p->site;
    e->is_main = p->is_main;
    e->ended = atomic_load_explicit(&p->join_state, memory_order_acquire) & WEFT__JOIN_DEAD;
    struct weft__waiter *w = &p->waiter;
    unsigned state = atomic_load_explicit(&w->state, memory_order_acquire);
    e->blocked = !e->ended && (state & WEFT__WAIT_PHASE) == WEFT__WAIT_OPEN;
    if (!e->blocked)
        return;
    e->why = atomic_load_explicit(&w->why, memory_order_relaxed);
    e->obj = atomic_load_explicit(&w->why_obj, memory_order_relaxed);
    e->deadline = __atomic_load_n(&w->why_deadline, __ATOMIC_RELAXED);
    if (e->why == WEFT__WHY_SELECT) {
        /* The array belongs to the selecting process: copied now, and kept
         * only if the same wait is still open afterwards. */
        const weft_case *cases = atomic_load_explicit(&w->why_cases, memory_order_relaxed);
        size_t n = atomic_load_explicit(&w->why_ncases, memory_order_relaxed);
        for (size_t i = 0; cases && i < n && e->ncases < MAX_CASES; i++) {
            if (cases[i].disabled)
                continue;
            e->cases[e->ncases].kind = cases[i].kind;
            e->cases[e->ncases++].handle = cases[i].handle;
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&w->state, memory_order_relaxed) != state) {
            e->blocked = false;
            return;
        }
    }
    switch (e->why) {
    case WEFT__WHY_JOIN:
        add_edge(e, e->obj);
        break;
    case WEFT__WHY_CHAN_SEND:
    case WEFT__WHY_CHAN_RECV:
        add_edge(e, chan_peer(e->obj, e->pid));
        break;
    case WEFT__WHY_SELECT:
        for (size_t i = 0; i < e->ncases; i++)
            if (e->cases[i].kind != WEFT_CASE_MSG)
                add_edge(e, chan_peer(e->cases[i].handle, e->pid));
        break;
    case WEFT__WHY_MBOX_SEND:
        add_edge(e, e->obj);
        break;
    default:
        break;
    }
}

static int by_pid(const void *a, const void *b)
{
    weft_pid x = ((const struct entry *)a)->pid, y = ((const struct entry *)b)->pid;
    return x < y ? -1 : x > y;
}

static struct entry *lookup(struct snapshot *s, weft_pid pid)
{
    struct entry key = {.pid = pid};
    return s->n ? bsearch(&key, s->e, s->n, sizeof *s->e, by_pid) : NULL;
}

static const char *name_of(struct snapshot *s, weft_pid pid)
{
    struct entry *e = lookup(s, pid);
    return e ? e->name : "(ended)";
}

/* ---- the report ------------------------------------------------------------------------- */

static void print_wait(struct out *o, struct snapshot *s, struct entry *e)
{
    switch (e->why) {
    case WEFT__WHY_SLEEP:
        out_printf(o, "sleeping");
        break;
    case WEFT__WHY_JOIN:
        out_printf(o, "joining %s (pid %#llx)", name_of(s, e->obj), (unsigned long long)e->obj);
        break;
    case WEFT__WHY_CHAN_SEND:
    case WEFT__WHY_CHAN_RECV: {
        weft_pid peer = chan_peer(e->obj, e->pid);
        out_printf(o, "%s channel %#llx", e->why == WEFT__WHY_CHAN_SEND ? "sending on" : "receiving on",
                   (unsigned long long)e->obj);
        if (peer)
            out_printf(o, " (last used by %s, pid %#llx)", name_of(s, peer), (unsigned long long)peer);
        else
            out_printf(o, " (no other process has used it)");
        break;
    }
    case WEFT__WHY_SELECT: {
        size_t shown = 0;
        out_printf(o, "select over");
        for (size_t i = 0; i < e->ncases; i++) {
            if (e->cases[i].kind == WEFT_CASE_MSG) {
                out_printf(o, "%s its mailbox", shown++ ? "," : "");
                continue;
            }
            if (e->cases[i].kind == WEFT_CASE_FD) {
                out_printf(o, "%s file descriptor %lld", shown++ ? "," : "",
                           (long long)(int64_t)e->cases[i].handle);
                continue;
            }
            out_printf(o, "%s %s channel %#llx", shown++ ? "," : "",
                       e->cases[i].kind == WEFT_CASE_SEND ? "send on" : "receive on",
                       (unsigned long long)e->cases[i].handle);
        }
        if (!shown)
            out_printf(o, " no enabled case");
        break;
    }
    case WEFT__WHY_RECV:
        out_printf(o, "receiving from its mailbox");
        break;
    case WEFT__WHY_MBOX_SEND:
        out_printf(o, "sending to the full mailbox of %s (pid %#llx)", name_of(s, e->obj),
                   (unsigned long long)e->obj);
        break;
    case WEFT__WHY_ACTORS:
        out_printf(o, "an idle actor runner, waiting for actors to run");
        break;
    case WEFT__WHY_FD:
        out_printf(o, "waiting for file descriptor %d", (int)e->obj);
        break;
    case WEFT__WHY_OFFLOAD:
        out_printf(o, "waiting for a function on the offload pool");
        break;
    default:
        out_printf(o, "waiting");
        break;
    }
    if (e->deadline >= 0)
        out_printf(o, ", until a deadline in %lld ms",
                   (long long)((e->deadline - weft_now()) / 1000000));
}

static void print_entry(struct out *o, struct snapshot *s, struct entry *e)
{
    out_printf(o, "  %s (pid %#llx, spawned %s%s): ", e->name, (unsigned long long)e->pid,
               e->site ? "at " : "", e->site ? e->site : e->is_main ? "by weft_run" : "at an unknown place");
    if (e->ended)
        out_printf(o, "ended, not joined yet");
    else if (e->blocked)
        print_wait(o, s, e);
    else
        out_printf(o, "running or runnable");
    out_printf(o, "\n");
}

/* Depth-first search for a cycle through blocked processes; prints the first. */
static bool find_cycle(struct snapshot *s, struct entry *e, struct entry **path, size_t depth,
                       struct out *o)
{
    e->color = 1;
    path[depth] = e;
    for (int i = 0; i < e->nedges; i++) {
        struct entry *next = lookup(s, e->edges[i]);
        if (!next || !next->blocked)
            continue;
        if (next->color == 1) {
            size_t start = 0;
            while (path[start] != next)
                start++;
            out_printf(o, "weft: cycle of waits: ");
            for (size_t k = start; k <= depth; k++)
                out_printf(o, "%s -> ", path[k]->name);
            out_printf(o, "%s\n", next->name);
            return true;
        }
        if (next->color == 0 && find_cycle(s, next, path, depth + 1, o))
            return true;
    }
    e->color = 2;
    return false;
}

/* Writes the report to fd. Returns 0, -EBADF (a write failed) or -ENOMEM:
 * memory ran out, and the report written, if any, says what it lacks. */
static int report(int fd, const char *headline)
{
    struct snapshot s = {0};
    weft__proc_foreach(take, &s);
    if (s.n)
        qsort(s.e, s.n, sizeof *s.e, by_pid);
    struct out *o = weft__alloc(sizeof *o);
    if (!o) {
        weft__free(s.e, s.cap * sizeof *s.e);
        return -ENOMEM;
    }
    o->fd = fd;
    o->err = 0;
    o->len = 0;
    if (headline)
        out_printf(o, "weft: %s\n", headline);
    out_printf(o, "weft: %zu processes%s:\n", s.n, s.oom ? " (out of memory: some not shown)" : "");
    for (size_t i = 0; i < s.n; i++)
        print_entry(o, &s, &s.e[i]);
    struct entry **path = s.n ? weft__alloc(s.n * sizeof *path) : NULL;
    bool cycle = false;
    for (size_t i = 0; path && !cycle && i < s.n; i++)
        if (s.e[i].blocked && s.e[i].color == 0)
            cycle = find_cycle(&s, &s.e[i], path, 0, o);
    if (path)
        weft__free(path, s.n * sizeof *path);
    else if (s.n)
        out_printf(o, "weft: (out of memory: cycles of waits not searched)\n");
    out_flush(o);
    int err = o->err;
    if (!err && (s.oom || (s.n && !path)))
        err = -ENOMEM;
    weft__free(o, sizeof *o);
    weft__free(s.e, s.cap * sizeof *s.e);
    return err;
}

int weft_dump(int fd)
{
    if (fd < 0)
        return -EBADF;
    if (weft__in_proc())
        return report(fd, NULL);
    int err = weft__outside_enter(false);
    if (err)
        return err == -ECANCELED ? -ESHUTDOWN : err;
    err = report(fd, NULL);
    weft__outside_leave();
    return err;
}

/* ---- deadlock ---------------------------------------------------------------------------- */

/* Nothing is runnable anywhere and no timer is armed. */
static bool quiescent(void)
{
    struct weft__runtime *rt = &weft__rt;
    /* The det loop asks only when nothing is runnable; it is no idle worker. */
    if ((!atomic_load(&weft__det_on) && atomic_load(&rt->nidle) != rt->nworkers) ||
        atomic_load(&rt->global_len) != 0)
        return false;
    for (unsigned i = 0; i < rt->nworkers; i++) {
        struct weft__worker *w = &rt->workers[i];
        if (weft__runq_len(&w->runq) || atomic_load(&w->runnext) || atomic_load(&w->inbox_len) ||
            weft__timer_next(&w->timers) != INT64_MAX)
            return false;
    }
    return true;
}

static bool on_stall(void)
{
    struct weft__runtime *rt = &weft__rt;
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load(&rt->detect_deadlock) || !weft__runtime_main_running() ||
        atomic_load(&rt->state) != WEFT__RT_RUNNING)
        return false;
    /* Live processes first: a spawn from outside counts its process before
     * it pushes it, from inside its call, so a process counted here is
     * either pushed or its spawner still inside. Outside threads are read
     * before the queues: whatever a thread did before it left its call or
     * detached (a send that woke a process) is then seen by quiescent().
     * One inside a call or attached may still wake a process: the parking
     * worker looks again in a while. */
    if (weft__sched_live_procs() == 0)
        return false;
    bool outside = atomic_load(&rt->outside_active) != 0 || atomic_load(&rt->attached) != 0 ||
                   atomic_load(&rt->offload_waiting) != 0;
    if (!quiescent())
        return false;
    if (outside)
        return true;
    if (weft__runtime_deadlock_claim()) {
        report(STDERR_FILENO, "deadlock: no process can run again (weft_run returns -EDEADLK)");
        weft__runtime_deadlocked();
    }
    return false;
}

/* ---- the dump signal ------------------------------------------------------------------------ */

static struct {
    int signal;               /* installed, or 0 */
    struct sigaction previous;
    pthread_t thread;
    atomic_uint requests;     /* bumped by the handler */
    atomic_bool quit;
} dumper;

static void on_dump_signal(int sig)
{
    int saved = errno;
    atomic_fetch_add(&dumper.requests, 1);
    weft__futex_wake(&dumper.requests, 1);
    errno = saved;
}

static void *dump_thread(void *arg)
{
    unsigned seen = atomic_load(&dumper.requests);
    while (!atomic_load(&dumper.quit)) {
        weft__futex_wait(&dumper.requests, seen, WEFT_FOREVER);
        unsigned now = atomic_load(&dumper.requests);
        if (now != seen && !atomic_load(&dumper.quit))
            weft_dump(STDERR_FILENO);
        seen = now;
    }
    return NULL;
}

int weft__debug_start(int dump_signal)
{
    weft__rt.stall_hook = on_stall;
    dumper.signal = 0;
    if (!dump_signal)
        return 0;
    struct sigaction current;
    if (sigaction(dump_signal, NULL, &current) != 0 || current.sa_handler != SIG_DFL ||
        (current.sa_flags & SA_SIGINFO))
        return 0; /* the program handles it: leave it alone */
    atomic_store(&dumper.quit, false);
    if (weft__fault_pthread_create(&dumper.thread, NULL, dump_thread, NULL) != 0)
        return -EAGAIN;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_dump_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(dump_signal, &sa, &dumper.previous);
    dumper.signal = dump_signal;
    return 0;
}

void weft__debug_stop(void)
{
    if (!dumper.signal)
        return;
    sigaction(dumper.signal, &dumper.previous, NULL);
    dumper.signal = 0;
    atomic_store(&dumper.quit, true);
    atomic_fetch_add(&dumper.requests, 1);
    weft__futex_wake(&dumper.requests, 1);
    pthread_join(dumper.thread, NULL);
}
