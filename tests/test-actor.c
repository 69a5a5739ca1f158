/* test-actor.c: stackless actors (weft_actor_spawn), from weft.h's contract:
 * the handler runs once per message, in order, never twice at once, with
 * its state and weft_self(); weft_exit in a handler ends the actor after the
 * handler returns and on_exit runs once with the reason; calls that would
 * block are -EPERM in a handler (and abort under WEFT_STRICT=1) while their
 * non-blocking forms work; ping-pong between actors; a million idle actors
 * and their memory; actors and processes exchanging messages and calls;
 * actors spawning actors; outside threads sending to actors; bounded actor
 * mailboxes; payloads taken in a handler; the runtime's end with idle
 * actors. */
#define _GNU_SOURCE /* setenv, unsetenv */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_PROC_CHECKS
#include "test.h"

enum { T_DATA = 1, T_STOP = 2, T_REPORT = 3, T_OTHER = 4, T_DONE = 5, T_GO = 6 };

static int recv_tag(weft_msg *m, int tag, int64_t deadline)
{
    weft_match mt = {.tag = tag};
    return weft_recv(m, &mt, deadline);
}

/* Waits up to 5 s for *flag to reach want; returns its value. */
static int wait_for(atomic_int *flag, int want)
{
    int64_t limit = weft_now() + 5000 * MS;
    while (atomic_load(flag) < want && weft_now() < limit)
        weft_sleep(weft_now() + 1 * MS);
    return atomic_load(flag);
}

static void *spawn_actor(weft_pid *pid, weft_actor_fn fn, void *state, void (*on_exit)(void *, intptr_t))
{
    weft_actor_opts o;
    weft_actor_opts_init(&o);
    o.on_exit = on_exit;
    CHECK_RC(weft_actor_spawn(pid, fn, state, &o), 0);
    return state;
}

/* ---- order, state, self, exit, on_exit ------------------------------------------------ */

struct counter {
    weft_pid pid;          /* as weft_actor_spawn stored it */
    long next;             /* next sequence number expected from main */
    long others;           /* messages from the other senders */
    atomic_int inside;     /* handlers running now */
    int self_wrong;        /* handler runs where weft_self() was not pid */
    int exit_rc;           /* weft_exit's return in the handler */
    int after_exit;        /* the handler went on after weft_exit */
    long after_stop;       /* handler runs after the one that exited */
    bool stopped;
};

static atomic_int exit_calls;
static atomic_intptr_t exit_reason;
static void *_Atomic exit_state;

static void record_exit(void *state, intptr_t reason)
{
    atomic_store(&exit_reason, reason);
    atomic_store(&exit_state, state);
    atomic_fetch_add(&exit_calls, 1);
}

static void counter_fn(void *state, weft_msg *m)
{
    struct counter *c = state;
    if (atomic_fetch_add(&c->inside, 1) != 0)
        check_fail(__LINE__, "two runs of one actor's handler at once");
    if (weft_self() != c->pid)
        c->self_wrong++;
    if (c->stopped)
        c->after_stop++;
    switch (m->tag) {
    case T_DATA: {
        long v = *(long *)m->data;
        if (v != c->next)
            check_fail(__LINE__, "message %ld handled when %ld was due", v, c->next);
        c->next = v + 1;
        break;
    }
    case T_OTHER:
        c->others++;
        break;
    case T_STOP: {
        long counts[2] = {c->next, c->others};
        CHECK_RC(weft_send(m->from, T_REPORT, counts, sizeof counts, 0), 0);
        c->exit_rc = weft_exit(77);
        c->after_exit = 1;
        c->stopped = true;
        break;
    }
    default:
        check_fail(__LINE__, "unexpected tag %d", m->tag);
    }
    atomic_fetch_sub(&c->inside, 1);
}

struct other_sender {
    weft_pid to;
    int n;
};

static intptr_t send_others(void *arg)
{
    struct other_sender *o = arg;
    for (int i = 0; i < o->n; i++) {
        CHECK_RC(weft_send(o->to, T_OTHER, &i, sizeof i, 0), 0);
        if (i % 32 == 0)
            weft_yield();
    }
    return 0;
}

/* Main sends N numbered messages while two processes (on the workers) send
 * others: the handler sees main's in order, each once, never two runs at
 * once, weft_self() its pid. T_STOP makes it report and weft_exit(77): the
 * handler finishes (weft_exit returned 0), messages queued behind are not
 * handled, on_exit runs once with 77 and the state. */
static intptr_t order_main(void *arg)
{
    long n = test_sanitized() ? 5000 : 50000;
    int per = 2000;
    atomic_store(&exit_calls, 0);
    struct counter *c = calloc(1, sizeof *c);
    spawn_actor(&c->pid, counter_fn, c, record_exit);
    struct other_sender os = {c->pid, per};
    weft_pid senders[2] = {spawn_on(send_others, &os, 0, 0), spawn_on(send_others, &os, 1, 0)};
    for (long i = 0; i < n; i++)
        CHECK_RC(weft_send(c->pid, T_DATA, &i, sizeof i, 0), 0);
    for (int s = 0; s < 2; s++)
        CHECK_RC(join_proc(senders[s]), 0);
    CHECK_RC(weft_send(c->pid, T_STOP, NULL, 0, 0), 0);
    for (long i = n; i < n + 5; i++) /* behind the stop: never handled */
        CHECK_RC(weft_send(c->pid, T_DATA, &i, sizeof i, 0), 0);
    weft_msg m;
    CHECK_RC(recv_tag(&m, T_REPORT, test_in_ms(20000)), 0);
    long *counts = m.data;
    CHECK(counts && counts[0] == n && counts[1] == 2 * per, "handled %ld of %ld, %ld of %d others",
          counts ? counts[0] : -1, n, counts ? counts[1] : -1, 2 * per);
    CHECK(m.from == c->pid, "the report came from %#llx", (unsigned long long)m.from);
    weft_msg_free(&m);
    CHECK(wait_for(&exit_calls, 1) == 1, "on_exit ran %d times", atomic_load(&exit_calls));
    CHECK(atomic_load(&exit_reason) == 77, "on_exit reason %ld", (long)atomic_load(&exit_reason));
    CHECK(atomic_load(&exit_state) == c, "on_exit got state %p, not %p", atomic_load(&exit_state),
          (void *)c);
    weft_sleep(test_in_ms(20));
    CHECK(atomic_load(&exit_calls) == 1, "on_exit ran %d times", atomic_load(&exit_calls));
    CHECK(c->exit_rc == 0 && c->after_exit, "weft_exit in a handler returned %d (went on: %d)",
          c->exit_rc, c->after_exit);
    CHECK(c->after_stop == 0, "%ld messages handled after weft_exit", c->after_stop);
    CHECK(c->self_wrong == 0, "weft_self() was not the actor's pid in %d runs", c->self_wrong);
    CHECK(c->next == n, "handled up to %ld", c->next);
    long x = 1;
    CHECK_RC(weft_send(c->pid, T_DATA, &x, sizeof x, 0), 0); /* to an ended actor: dropped */
    free(c);
    return 0;
}

Test(actor, handler_runs_once_per_message_in_order_then_exits, .timeout = 60)
{
    run_1_and_2(order_main, NULL);
}

/* ---- blocking calls in a handler ---------------------------------------------------------- */

struct blocker {
    weft_pid main;
    weft_pid waiter;   /* a process waiting on gate */
    weft_pid full;     /* a process with capacity 1, holding one message, waiting on gate */
    weft_chan gate, empty, one, rv;
    weft_pid spawned;  /* a process the handler spawned */
    int runs;
};

static intptr_t gate_wait(void *arg)
{
    int v;
    weft_chan gate = *(weft_chan *)arg;
    int rc = weft_chan_recv(gate, &v, sizeof v, WEFT_FOREVER);
    long len = weft_mailbox_len();
    return rc == -EPIPE ? len : -1000 + rc;
}

static intptr_t ret_arg(void *arg)
{
    return (intptr_t)arg;
}

static void blocker_fn(void *state, weft_msg *msg)
{
    struct blocker *b = state;
    weft_msg r;
    int v = 0;
    b->runs++;
    /* Receiving is never a handler's business; the rest only when it waits. */
    CHECK_RC(weft_recv(&r, NULL, 0), -EPERM);
    CHECK_RC(weft_recv(&r, NULL, WEFT_FOREVER), -EPERM);
    CHECK_RC(weft_recv(&r, NULL, test_in_ms(10)), -EPERM);
    CHECK_RC(weft_call(b->main, 1, &v, sizeof v, &r, WEFT_FOREVER), -EPERM);
    CHECK_RC(weft_call(b->main, 1, &v, sizeof v, &r, test_in_ms(10)), -EPERM);
    CHECK_RC(weft_sleep(test_in_ms(10)), -EPERM);
    CHECK_RC(weft_sleep(WEFT_FOREVER), -EPERM);
    CHECK_RC(weft_chan_recv(b->empty, &v, sizeof v, test_in_ms(10)), -EPERM);
    CHECK_RC(weft_chan_recv(b->empty, &v, sizeof v, WEFT_FOREVER), -EPERM);
    CHECK_RC(weft_chan_send(b->rv, &v, sizeof v, WEFT_FOREVER), -EPERM);
    weft_case c[1] = {WEFT_RECV(b->empty, &v)};
    CHECK_RC(weft_select(c, 1, WEFT_SELECT_FAIR, test_in_ms(10)), -EPERM);
    CHECK_RC(weft_join(b->waiter, NULL, WEFT_FOREVER), -EPERM);
    CHECK_RC(weft_join(b->waiter, NULL, test_in_ms(10)), -EPERM);
    CHECK_RC(weft_send(b->full, 1, &v, sizeof v, WEFT_FOREVER), -EPERM);
    CHECK_RC(weft_send(b->full, 1, &v, sizeof v, test_in_ms(10)), -EPERM);
    /* What does not wait works. */
    CHECK_RC(weft_sleep(0), 0);
    CHECK_RC(weft_chan_recv(b->empty, &v, sizeof v, 0), -ETIMEDOUT);
    v = 0;
    CHECK_RC(weft_chan_recv(b->one, &v, sizeof v, 0), 0);
    CHECK(v == 5, "received %d", v);
    CHECK_RC(weft_chan_send(b->one, &v, sizeof v, 0), 0);
    CHECK_RC(weft_chan_send(b->rv, &v, sizeof v, 0), -ETIMEDOUT);
    CHECK_RC(weft_select(c, 1, WEFT_SELECT_FAIR, 0), -ETIMEDOUT);
    CHECK_RC(weft_join(b->waiter, NULL, 0), -ETIMEDOUT);
    CHECK_RC(weft_send(b->full, 1, &v, sizeof v, 0), -EAGAIN);
    CHECK_RC(weft_send(b->main, T_OTHER, &v, sizeof v, WEFT_FOREVER), 0); /* unbounded: never waits */
    /* A handler that must wait spawns a process to do it. */
    if (b->runs == 1)
        CHECK_RC(weft_spawn(&b->spawned, ret_arg, (void *)(intptr_t)33, NULL), 0);
    CHECK_RC(weft_send(msg->from, T_DONE, NULL, 0, 0), 0);
}

/* Every call that would block is refused with -EPERM in a handler, and
 * nothing happened (the full mailbox still holds one message, the waiter
 * still waits); the non-blocking forms work; the actor keeps working. */
static intptr_t blocking_main(void *arg)
{
    struct blocker b = {.main = weft_self()};
    b.gate = make_chan(sizeof(int), 0);
    b.empty = make_chan(sizeof(int), 1);
    b.one = make_chan(sizeof(int), 2);
    b.rv = make_chan(sizeof(int), 0);
    int v = 5;
    CHECK_RC(weft_chan_send(b.one, &v, sizeof v, 0), 0);
    b.waiter = spawn_proc(gate_wait, &b.gate);
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.mailbox_capacity = 1;
    CHECK_RC(weft_spawn(&b.full, gate_wait, &b.gate, &o), 0);
    CHECK_RC(weft_send(b.full, 1, &v, sizeof v, 0), 0);
    weft_pid a;
    spawn_actor(&a, blocker_fn, &b, NULL);
    weft_msg m;
    for (int round = 0; round < 2; round++) {
        CHECK_RC(weft_send(a, T_GO, NULL, 0, 0), 0);
        CHECK_RC(recv_tag(&m, T_DONE, test_in_ms(10000)), 0);
        weft_msg_free(&m);
        CHECK_RC(recv_tag(&m, T_OTHER, 0), 0);
        weft_msg_free(&m);
    }
    CHECK(b.runs == 2, "the handler ran %d times", b.runs);
    CHECK(weft_mailbox_len() == 0, "%ld messages left", weft_mailbox_len());
    intptr_t r = -1;
    CHECK_RC(weft_join(b.spawned, &r, WEFT_FOREVER), 0);
    CHECK(r == 33, "the handler's process returned %ld", (long)r);
    CHECK_RC(weft_chan_close(b.gate), 0);
    CHECK(join_proc(b.waiter) == 0, "the waiter ended otherwise");
    CHECK(join_proc(b.full) == 1, "the bounded process did not end with exactly its one message");
    CHECK_RC(weft_chan_len(b.one), 1);
    weft_chan chans[] = {b.gate, b.empty, b.one, b.rv};
    for (int i = 0; i < 4; i++)
        CHECK_RC(weft_chan_release(chans[i]), 0);
    return 0;
}

Test(actor, blocking_calls_in_a_handler_are_eperm, .timeout = 30)
{
    unsetenv("WEFT_STRICT");
    run_1_and_2(blocking_main, NULL);
}

/* Under WEFT_STRICT=1 the same refusal aborts, naming the call; without it
 * the call returns -EPERM. In a forked child: strict mode is read once. */
static atomic_int strict_rc = 12345;

static void strict_handler(void *state, weft_msg *m)
{
    weft_msg r;
    atomic_store(&strict_rc, weft_recv(&r, NULL, WEFT_FOREVER));
}

static intptr_t strict_main(void *arg)
{
    weft_pid a;
    if (weft_actor_spawn(&a, strict_handler, NULL, NULL) != 0 || weft_send(a, 1, NULL, 0, 0) != 0)
        return 2;
    int64_t limit = weft_now() + 5000 * MS;
    while (atomic_load(&strict_rc) == 12345 && weft_now() < limit)
        weft_sleep(weft_now() + MS);
    return atomic_load(&strict_rc) == -EPERM ? 0 : 3;
}

static void strict_child(const char *strict, int *status, char *err, size_t errlen)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        if (strict)
            setenv("WEFT_STRICT", strict, 1);
        else
            unsetenv("WEFT_STRICT");
        weft_config cfg;
        weft_config_init(&cfg);
        cfg.workers = 2;
        intptr_t r = -1;
        int rc = weft_run(strict_main, NULL, &cfg, &r);
        _exit(rc == 0 ? (int)r : 10);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], err + len, errlen - 1 - len)) > 0)
        len += (size_t)n;
    err[len] = '\0';
    close(fds[0]);
    cr_assert_eq(waitpid(pid, status, 0), pid);
}

Test(actor, strict_mode_aborts_on_a_blocking_call_in_a_handler, .timeout = 30)
{
    static char err[16384];
    int status = 0;
    strict_child("1", &status, err, sizeof err);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
              "weft_recv in a handler under WEFT_STRICT=1: status %#x (exit %d), stderr: %s", status,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1, err);
    cr_assert(strstr(err, "misuse") && strstr(err, "weft_recv"), "stderr: %s", err);
    strict_child(NULL, &status, err, sizeof err);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "without strict mode: status %#x (exit %d), stderr: %s", status,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1, err);
    cr_assert(strstr(err, "misuse") == NULL, "a misuse message without strict mode: %s", err);
}

/* ---- ping-pong ------------------------------------------------------------------------- */

struct pinger {
    weft_pid peer, main, self;
    long n, count;
};

static void ping_fn(void *state, weft_msg *m)
{
    struct pinger *p = state;
    if (m->tag == T_GO) {
        p->count = 0;
    } else {
        long v = *(long *)m->data;
        if (m->tag != T_REPORT || v != p->count || m->from != p->peer) {
            check_fail(__LINE__, "pong %ld (tag %d) when %ld was due", v, m->tag, p->count);
            return;
        }
        if (++p->count == p->n) {
            CHECK_RC(weft_send(p->main, T_DONE, &p->count, sizeof p->count, 0), 0);
            return;
        }
    }
    CHECK_RC(weft_send(p->peer, T_DATA, &p->count, sizeof p->count, 0), 0);
}

static void pong_fn(void *state, weft_msg *m)
{
    weft_pid *pinger = state;
    if (m->from != *pinger)
        check_fail(__LINE__, "ping from %#llx", (unsigned long long)m->from);
    CHECK_RC(weft_send(m->from, T_REPORT, m->data, m->size, 0), 0);
}

/* 100,000 round trips between two actors (fewer under sanitizers), each
 * carrying its number; the pinger tells main when done. */
static intptr_t pingpong_main(void *arg)
{
    struct pinger p = {.main = weft_self(), .n = test_sanitized() ? 20000 : 100000};
    spawn_actor(&p.self, ping_fn, &p, NULL);
    spawn_actor(&p.peer, pong_fn, &p.self, NULL);
    int64_t t0 = weft_now();
    CHECK_RC(weft_send(p.self, T_GO, NULL, 0, 0), 0);
    weft_msg m;
    CHECK_RC(recv_tag(&m, T_DONE, test_in_ms(60000)), 0);
    CHECK(m.size == sizeof(long) && *(long *)m.data == p.n, "done after %ld",
          m.size ? *(long *)m.data : -1);
    CHECK(m.from == p.self, "done from %#llx", (unsigned long long)m.from);
    weft_msg_free(&m);
    (void)t0;
    return 0;
}

Test(actor, ping_pong_between_actors, .timeout = 60)
{
    run_1_and_2(pingpong_main, NULL);
}

/* ---- a million idle actors ------------------------------------------------------------ */

static void idle_fn(void *state, weft_msg *m)
{
    int i = (int)(intptr_t)state;
    if (weft_send(m->from, i + 1, NULL, 0, 0) != 0)
        check_fail(__LINE__, "actor %d could not reply", i);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static double bytes_per_actor;
static int million_n;

/* N idle actors (state: their index, no allocation of the test's own) are
 * spawned, the resident memory they add is measured, then each gets one
 * message and replies with its index as the tag: every one replies, once,
 * from its own pid. The memory bound (<= 200 bytes per idle actor) is a
 * sanity check in plain builds (the goal, 128, is a benchmark's). */
static intptr_t million_main(void *arg)
{
    int n = million_n;
    weft_pid *pids = malloc((size_t)n * sizeof *pids);
    unsigned char *seen = malloc((size_t)n);
    memset(pids, 0, (size_t)n * sizeof *pids);
    memset(seen, 0, (size_t)n);
    long before = rss_kb();
    for (int i = 0; i < n; i++) {
        int rc = weft_actor_spawn(&pids[i], idle_fn, (void *)(intptr_t)i, NULL);
        if (rc != 0) {
            check_fail(__LINE__, "spawning actor %d: %d (%s)", i, rc, weft_strerror(rc));
            return 1;
        }
    }
    long after = rss_kb();
    bytes_per_actor = (double)(after - before) * 1024.0 / n;
    for (int i = 0; i < n; i++)
        if (weft_send(pids[i], T_GO, NULL, 0, 0) != 0) {
            check_fail(__LINE__, "send to actor %d failed", i);
            return 1;
        }
    for (int k = 0; k < n; k++) {
        weft_msg m;
        int rc = weft_recv(&m, NULL, test_in_ms(60000));
        if (rc != 0) {
            check_fail(__LINE__, "%d replies of %d, then %d (%s)", k, n, rc, weft_strerror(rc));
            return 1;
        }
        int i = m.tag - 1;
        if (i < 0 || i >= n || seen[i] || m.from != pids[i]) {
            check_fail(__LINE__, "reply %d: tag %d from %#llx", k, m.tag, (unsigned long long)m.from);
            return 1;
        }
        seen[i] = 1;
        weft_msg_free(&m);
    }
    free(pids);
    free(seen);
    return 0;
}

Test(actor, a_million_idle_actors_answer_a_broadcast, .timeout = 120)
{
    million_n = test_sanitized() ? 100000 : 1000000;
    run_at_workers(2, million_main, NULL);
    if (getenv("ACTOR_VERBOSE"))
        fprintf(stderr, "%d idle actors: %.1f resident bytes each\n", million_n, bytes_per_actor);
    if (!test_sanitized())
        cr_assert_leq(bytes_per_actor, 200.0, "%.1f resident bytes per idle actor (bound 200)",
                      bytes_per_actor);
}

/* ---- actors and processes --------------------------------------------------------------- */

/* Answers a plain message with value + 1 (tag 6), a request with value * 2
 * (weft_reply, tag 7). */
static void echo_fn(void *state, weft_msg *m)
{
    long v = *(long *)m->data;
    if (m->ref) {
        v *= 2;
        CHECK_RC(weft_reply(m, 7, &v, sizeof v), 0);
    } else {
        v += 1;
        CHECK_RC(weft_send(m->from, 6, &v, sizeof v, 0), 0);
    }
}

static intptr_t echo_client(void *arg)
{
    weft_pid actor = *(weft_pid *)arg;
    int n = test_sanitized() ? 300 : 2000;
    uint64_t last_ref = 0;
    for (long i = 0; i < n; i++) {
        weft_msg m;
        CHECK_RC(weft_send(actor, 1, &i, sizeof i, 0), 0);
        int rc = recv_tag(&m, 6, test_in_ms(10000));
        CHECK_RC(rc, 0);
        if (rc)
            return 1;
        CHECK(m.from == actor && *(long *)m.data == i + 1, "echo of %ld: %ld", i, *(long *)m.data);
        weft_msg_free(&m);
        rc = weft_call(actor, 1, &i, sizeof i, &m, test_in_ms(10000));
        CHECK_RC(rc, 0);
        if (rc)
            return 1;
        CHECK(m.tag == 7 && m.from == actor && m.size == sizeof(long) && *(long *)m.data == 2 * i,
              "reply to %ld: tag %d value %ld", i, m.tag, *(long *)m.data);
        CHECK(m.ref != 0 && m.ref != last_ref, "reply ref %llu (last %llu)", (unsigned long long)m.ref,
              (unsigned long long)last_ref);
        last_ref = m.ref;
        weft_msg_free(&m);
    }
    CHECK(weft_mailbox_len() == 0, "%ld messages left", weft_mailbox_len());
    return 0;
}

/* Three processes, each sending plain messages and making calls to one
 * actor, which answers each with weft_send or weft_reply from its handler. */
static intptr_t exchange_main(void *arg)
{
    weft_pid actor;
    spawn_actor(&actor, echo_fn, NULL, NULL);
    weft_pid clients[3];
    for (int i = 0; i < 3; i++)
        clients[i] = spawn_on(echo_client, &actor, i, 0);
    for (int i = 0; i < 3; i++)
        CHECK_RC(join_proc(clients[i]), 0);
    return 0;
}

Test(actor, actors_and_processes_exchange_messages_and_calls, .timeout = 60)
{
    run_1_and_2(exchange_main, NULL);
}

/* ---- actors spawning actors ---------------------------------------------------------------- */

struct tree_msg {
    weft_pid report;
    int depth;
};

static intptr_t leaf_process(void *arg)
{
    weft_pid report = (weft_pid)(uintptr_t)arg;
    return weft_send(report, 2, NULL, 0, 0);
}

/* Reports its pid, spawns four children one level down (a leaf spawns a
 * detached process instead), then ends. */
static void tree_fn(void *state, weft_msg *m)
{
    struct tree_msg t = *(struct tree_msg *)m->data;
    weft_pid me = weft_self();
    CHECK_RC(weft_send(t.report, 1, &me, sizeof me, 0), 0);
    if (t.depth > 0) {
        for (int k = 0; k < 4; k++) {
            weft_pid child = 0;
            CHECK_RC(weft_actor_spawn(&child, tree_fn, NULL, NULL), 0);
            struct tree_msg c = {t.report, t.depth - 1};
            CHECK_RC(weft_send(child, T_GO, &c, sizeof c, 0), 0);
        }
    } else {
        weft_spawn_opts o;
        weft_spawn_opts_init(&o);
        o.detached = 1;
        CHECK_RC(weft_spawn(NULL, leaf_process, (void *)(uintptr_t)t.report, &o), 0);
    }
    weft_exit(0);
}

static int cmp_pid(const void *a, const void *b)
{
    weft_pid x = *(const weft_pid *)a, y = *(const weft_pid *)b;
    return x < y ? -1 : x > y;
}

static intptr_t tree_main(void *arg)
{
    enum { NODES = 1 + 4 + 16 + 64, LEAVES = 64 };
    weft_pid root;
    spawn_actor(&root, tree_fn, NULL, NULL);
    struct tree_msg t = {weft_self(), 3};
    CHECK_RC(weft_send(root, T_GO, &t, sizeof t, 0), 0);
    weft_pid got[NODES];
    for (int i = 0; i < NODES; i++) {
        weft_msg m;
        CHECK_RC(recv_tag(&m, 1, test_in_ms(10000)), 0);
        got[i] = *(weft_pid *)m.data;
        CHECK(m.from == got[i], "a node reported %#llx from %#llx", (unsigned long long)got[i],
              (unsigned long long)m.from);
        weft_msg_free(&m);
    }
    CHECK(got[0] == root, "the first report was not the root's");
    qsort(got, NODES, sizeof got[0], cmp_pid);
    for (int i = 1; i < NODES; i++)
        CHECK(got[i] != got[i - 1], "pid %#llx reported twice", (unsigned long long)got[i]);
    for (int i = 0; i < LEAVES; i++) {
        weft_msg m;
        CHECK_RC(recv_tag(&m, 2, test_in_ms(10000)), 0);
        weft_msg_free(&m);
    }
    CHECK(weft_mailbox_len() == 0, "%ld messages left", weft_mailbox_len());
    return 0;
}

Test(actor, actors_spawn_actors_and_processes, .timeout = 30)
{
    run_1_and_2(tree_main, NULL);
}

/* ---- outside threads --------------------------------------------------------------------- */

struct tally {
    weft_chan out;
    long next[2];
    long total, expect;
    int bad_from;
};

static void tally_fn(void *state, weft_msg *m)
{
    struct tally *t = state;
    int s = ((int *)m->data)[0], k = ((int *)m->data)[1];
    if (m->from != 0)
        t->bad_from++;
    if (s < 0 || s > 1 || k != t->next[s])
        check_fail(__LINE__, "thread %d's message %d when %ld was due", s, k, s >= 0 && s <= 1 ? t->next[s] : -1);
    else
        t->next[s]++;
    if (++t->total == t->expect)
        CHECK_RC(weft_chan_send(t->out, &t->total, sizeof t->total, 0), 0);
}

struct tsender {
    weft_pid to;
    int index, n;
};

static void *thread_sender(void *arg)
{
    struct tsender *ts = arg;
    for (int k = 0; k < ts->n; k++) {
        int p[2] = {ts->index, k};
        int rc = weft_send(ts->to, 1, p, sizeof p, WEFT_FOREVER);
        if (rc != 0) {
            check_fail(__LINE__, "thread %d, send %d: %d", ts->index, k, rc);
            break;
        }
    }
    return NULL;
}

/* An embedded runtime: an outside thread spawns an actor; two threads send
 * to it; each thread's messages are handled in order, with from 0; the
 * actor reports through a channel (it cannot wait, the thread can). */
Test(actor, outside_threads_send_to_an_actor, .timeout = 30)
{
    int n = test_sanitized() ? 5000 : 50000;
    for (unsigned workers = 1; workers <= 2; workers++) {
        start_workers(workers);
        struct tally t = {.expect = 2L * n};
        ASSERT_OK(weft_chan_make(&t.out, sizeof(long), 1));
        weft_pid a;
        ASSERT_OK(weft_actor_spawn(&a, tally_fn, &t, NULL));
        struct tsender ts[2] = {{a, 0, n}, {a, 1, n}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            cr_assert_eq(pthread_create(&th[i], NULL, thread_sender, &ts[i]), 0);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        long total = 0;
        ASSERT_OK(weft_chan_recv(t.out, &total, sizeof total, test_in_ms(20000)));
        ASSERT_CHECKS();
        cr_assert_eq(total, 2L * n);
        cr_assert_eq(t.bad_from, 0, "%d messages from a thread had a nonzero from", t.bad_from);
        ASSERT_OK(weft_chan_release(t.out));
        ASSERT_OK(weft_stop(WEFT_FOREVER));
    }
}

/* ---- bounded actor mailboxes ---------------------------------------------------------------- */

struct slow {
    atomic_int hold;    /* the handler spins while set */
    atomic_int started;
    atomic_long handled;
};

static void slow_fn(void *state, weft_msg *m)
{
    struct slow *s = state;
    atomic_store(&s->started, 1);
    int64_t limit = weft_now() + 10000 * MS;
    while (atomic_load(&s->hold) && weft_now() < limit)
        sched_yield();
    atomic_fetch_add(&s->handled, 1);
}

/* An actor of capacity 2 whose handler spins on its first message (on the
 * other worker): two more sends fill the mailbox (the message being handled
 * has left it), then sends are refused with -EAGAIN at deadline 0 and
 * -ETIMEDOUT at a deadline; all that were accepted are handled once it is
 * let go. Two workers: the spinning handler holds one. */
static intptr_t bounded_actor_main(void *arg)
{
    struct slow s;
    atomic_store(&s.hold, 1);
    atomic_store(&s.started, 0);
    atomic_store(&s.handled, 0);
    weft_actor_opts o;
    weft_actor_opts_init(&o);
    o.mailbox_capacity = 2;
    weft_pid a;
    CHECK_RC(weft_actor_spawn(&a, slow_fn, &s, &o), 0);
    int ok = 1, rc = 0;
    CHECK_RC(weft_send(a, 1, &rc, sizeof rc, 0), 0);
    int64_t limit = weft_now() + 5000 * MS;
    while (!atomic_load(&s.started) && weft_now() < limit)
        weft_sleep(test_in_ms(1));
    CHECK(atomic_load(&s.started), "the actor never ran");
    for (int i = 0; i < 10; i++) {
        rc = weft_send(a, 1, &i, sizeof i, 0);
        if (rc != 0)
            break;
        ok++;
    }
    CHECK(rc == -EAGAIN && ok == 3, "%d sends accepted by a busy actor of capacity 2, then %d", ok,
          rc);
    int x = 1;
    CHECK_RC(weft_send(a, 1, &x, sizeof x, test_in_ms(20)), -ETIMEDOUT);
    atomic_store(&s.hold, 0);
    limit = weft_now() + 5000 * MS;
    while (atomic_load(&s.handled) < ok && weft_now() < limit)
        weft_sleep(test_in_ms(1));
    weft_sleep(test_in_ms(10));
    CHECK(atomic_load(&s.handled) == ok, "%ld handled, %d accepted", atomic_load(&s.handled), ok);
    return 0;
}

Test(actor, bounded_actor_mailbox_refuses_when_full, .timeout = 30)
{
    run_at_workers(2, bounded_actor_main, NULL);
}

/* ---- payloads taken in a handler, and memory ---------------------------------------------- */

static void forward_fn(void *state, weft_msg *m)
{
    weft_pid to = *(weft_pid *)state;
    void *data = m->data;
    int tag = m->tag;
    void *b = weft_msg_take(m); /* m is given up */
    CHECK(b == data && b != NULL, "weft_msg_take in a handler gave %p for %p", b, data);
    CHECK_RC(weft_send_buf(to, tag, b, 0), 0);
}

static atomic_long handled_plain;

static void plain_fn(void *state, weft_msg *m)
{
    atomic_fetch_add(&handled_plain, 1);
}

static struct {
    atomic_long live, allocs, frees;
} mem;

static void *counting_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    if (new_size == 0) {
        if (ptr) {
            atomic_fetch_sub(&mem.live, (long)old_size);
            atomic_fetch_add(&mem.frees, 1);
        }
        free(ptr);
        return NULL;
    }
    void *p = realloc(ptr, new_size);
    if (p) {
        atomic_fetch_add(&mem.live, (long)new_size - (long)(ptr ? old_size : 0));
        if (!ptr)
            atomic_fetch_add(&mem.allocs, 1);
    }
    return p;
}

/* A handler that takes the payload and forwards it moves the same buffer;
 * one that does not take it has it freed when it returns: 1,000 messages of
 * 4 KiB handled leave nothing held. */
static intptr_t take_main(void *arg)
{
    weft_pid me = weft_self(), fwd, plain;
    spawn_actor(&fwd, forward_fn, &me, NULL);
    for (int i = 0; i < 10; i++) {
        void *b = weft_buf_alloc(4096);
        *(void **)b = b;
        CHECK_RC(weft_send_buf(fwd, 1 + i, b, 0), 0);
        weft_msg m;
        CHECK_RC(recv_tag(&m, 1 + i, test_in_ms(10000)), 0);
        CHECK(m.data == b && m.from == fwd && m.size == 4096, "forwarded buffer at %p, sent %p", m.data, b);
        weft_msg_free(&m);
    }
    char text[] = "copied, then taken";
    CHECK_RC(weft_send(fwd, 99, text, sizeof text, 0), 0);
    weft_msg m;
    CHECK_RC(recv_tag(&m, 99, test_in_ms(10000)), 0);
    CHECK(m.size == sizeof text && strcmp(m.data, text) == 0, "forwarded copy: %zu bytes", m.size);
    weft_msg_free(&m);

    atomic_store(&handled_plain, 0);
    spawn_actor(&plain, plain_fn, NULL, NULL);
    static unsigned char payload[4096];
    long before = atomic_load(&mem.live);
    for (int i = 0; i < 1000; i++)
        CHECK_RC(weft_send(plain, 1, payload, sizeof payload, 0), 0);
    int64_t limit = weft_now() + 5000 * MS;
    while (atomic_load(&handled_plain) < 1000 && weft_now() < limit)
        weft_sleep(test_in_ms(1));
    CHECK(atomic_load(&handled_plain) == 1000, "%ld handled", atomic_load(&handled_plain));
    long left = atomic_load(&mem.live) - before;
    limit = weft_now() + 2000 * MS;
    while (left > 256 * 1024 && weft_now() < limit) {
        weft_sleep(test_in_ms(1));
        left = atomic_load(&mem.live) - before;
    }
    CHECK(left <= 256 * 1024, "1,000 handled messages of 4 KiB: %ld bytes still held", left);
    return 0;
}

Test(actor, handler_payloads_taken_or_freed, .timeout = 30)
{
    for (unsigned workers = 1; workers <= 2; workers++) {
        ASSERT_OK(weft_set_allocator(counting_alloc, NULL));
        atomic_store(&mem.live, 0);
        atomic_store(&mem.allocs, 0);
        atomic_store(&mem.frees, 0);
        run_at_workers(workers, take_main, NULL);
        cr_assert_eq(atomic_load(&mem.allocs), atomic_load(&mem.frees), "%ld allocations, %ld frees",
                     atomic_load(&mem.allocs), atomic_load(&mem.frees));
        ASSERT_OK(weft_set_allocator(NULL, NULL));
    }
}

/* ---- the runtime's end with idle actors --------------------------------------------------- */

static atomic_int ended;

static void count_exit(void *state, intptr_t reason)
{
    atomic_fetch_add(&ended, 1);
    free(state);
}

static void nothing_fn(void *state, weft_msg *m)
{
}

/* 100 actors, some having handled a message, some with messages queued,
 * all idle when main returns: the runtime ends (weft_run returns), each
 * actor's on_exit runs exactly once (freeing its state: ASan's leak check
 * sees the rest), and weft gives back all it allocated. */
static intptr_t idle_end_main(void *arg)
{
    for (int i = 0; i < 100; i++) {
        weft_pid a;
        spawn_actor(&a, nothing_fn, malloc(64), count_exit);
        if (i % 3 == 0)
            CHECK_RC(weft_send(a, 1, &i, sizeof i, 0), 0);
    }
    weft_sleep(test_in_ms(5));
    return 0;
}

Test(actor, idle_actors_end_with_the_runtime, .timeout = 30)
{
    for (unsigned workers = 1; workers <= 2; workers++) {
        atomic_store(&ended, 0);
        ASSERT_OK(weft_set_allocator(counting_alloc, NULL));
        atomic_store(&mem.allocs, 0);
        atomic_store(&mem.frees, 0);
        run_at_workers(workers, idle_end_main, NULL);
        cr_assert_eq(atomic_load(&ended), 100, "%u workers: on_exit ran %d times for 100 actors",
                     workers, atomic_load(&ended));
        cr_assert_eq(atomic_load(&mem.allocs), atomic_load(&mem.frees), "%ld allocations, %ld frees",
                     atomic_load(&mem.allocs), atomic_load(&mem.frees));
        ASSERT_OK(weft_set_allocator(NULL, NULL));
    }
}

/* ---- bad arguments --------------------------------------------------------------------------- */

static intptr_t bad_spawn_main(void *arg)
{
    weft_pid a = 77;
    CHECK_RC(weft_actor_spawn(&a, NULL, NULL, NULL), -EINVAL);
    CHECK(a == 77, "a refused spawn wrote the pid");
    CHECK_RC(weft_actor_spawn(NULL, nothing_fn, NULL, NULL), 0); /* pid may be NULL */
    weft_actor_opts_init(NULL);
    /* A process calling itself would take its own request for the reply. */
    weft_msg reply = {0};
    CHECK_RC(weft_call(weft_self(), 1, NULL, 0, &reply, WEFT_FOREVER), -EDEADLK);
    CHECK(reply.block_ == NULL && weft_mailbox_len() == 0, "a refused call left a message");
    return 0;
}

Test(actor, spawn_arguments, .timeout = 30)
{
    run_1_and_2(bad_spawn_main, NULL);
    start_workers(1);
    weft_actor_opts o;
    weft_actor_opts_init(&o);
    o.link = 1;
    weft_pid a;
    ASSERT_RC(weft_actor_spawn(&a, nothing_fn, NULL, &o), -EPERM); /* a thread cannot link */
    o.link = 0;
    ASSERT_OK(weft_actor_spawn(&a, nothing_fn, NULL, &o));
    ASSERT_OK(weft_send(a, 1, NULL, 0, 0));
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    ASSERT_RC(weft_actor_spawn(&a, nothing_fn, NULL, NULL), -ESHUTDOWN);
    ASSERT_CHECKS();
}
