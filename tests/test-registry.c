/* test-registry.c: names for pids (weft_register, weft_whereis, weft_unregister): errors, names freed at the end of their owner, races for one name, outside threads. */
#define _GNU_SOURCE /* unsetenv */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#define TEST_PROC_CHECKS
#include "test.h"

/* A pid that was never handed out (a generation no slot has had yet). */
#define FORGED_PID ((weft_pid)0x00ABCDEFull << 32 | 3)

enum { T_GO = 1, T_STOP, T_EXIT, T_PING, T_PONG, SENTINEL = 12345 };

/* Returns 1000 + the tag of the first message it gets. */
static intptr_t sleeper(void *arg)
{
    weft_msg m;
    int rc = weft_recv(&m, NULL, WEFT_FOREVER);
    if (rc)
        return -1000 + rc;
    int tag = m.tag;
    weft_msg_free(&m);
    return 1000 + tag;
}

static intptr_t ret_arg(void *arg)
{
    return (intptr_t)arg;
}

static intptr_t join_by(weft_pid pid, int line)
{
    intptr_t r = SENTINEL;
    int rc = weft_join(pid, &r, test_in_ms(10000));
    if (rc != 0)
        check_fail(line, "join of %#llx: %d (%s)", (unsigned long long)pid, rc, weft_strerror(rc));
    return r;
}
#define CHECK_JOIN(pid, want)                                                                      \
    do {                                                                                           \
        intptr_t r_ = join_by((pid), __LINE__), w_ = (intptr_t)(want);                             \
        CHECK(r_ == w_, "%s ended with %ld, expected %ld", #pid, (long)r_, (long)w_);              \
    } while (0)

/* Checks that name names want (0: no pid, -ENOENT). */
static void check_whereis(const char *name, weft_pid want, int line)
{
    weft_pid got = 0;
    int rc = weft_whereis(name, &got);
    if (want == 0 && rc != -ENOENT)
        check_fail(line, "whereis(\"%s\"): %d (%s), pid %#llx; expected -ENOENT", name, rc,
                   weft_strerror(rc), (unsigned long long)got);
    else if (want != 0 && (rc != 0 || got != want))
        check_fail(line, "whereis(\"%s\"): %d (%s), pid %#llx; expected %#llx", name, rc,
                   weft_strerror(rc), (unsigned long long)got, (unsigned long long)want);
}
#define CHECK_WHEREIS(name, want) check_whereis((name), (want), __LINE__)

/* Waits until pid has ended (through a monitor), without joining it. */
static void wait_ended(weft_pid pid)
{
    uint64_t ref;
    CHECK_RC(weft_monitor(pid, &ref), 0);
    weft_match mt = {.tag = WEFT_TAG_DOWN, .ref = ref};
    weft_msg m;
    CHECK_RC(weft_recv(&m, &mt, test_in_ms(5000)), 0);
    weft_msg_free(&m);
}

/* An actor: T_EXIT reason: weft_exit; T_PING: answers T_PONG. */
static atomic_int actor_exits;

static void actor_fn(void *state, weft_msg *m)
{
    if (m->tag == T_EXIT)
        weft_exit(*(intptr_t *)m->data);
    else if (m->tag == T_PING)
        CHECK_RC(weft_send(m->from, T_PONG, NULL, 0, 0), 0);
}

static void count_exit(void *state, intptr_t reason)
{
    atomic_fetch_add(&actor_exits, 1);
}

static weft_pid spawn_actor(void)
{
    weft_actor_opts o;
    weft_actor_opts_init(&o);
    o.on_exit = count_exit;
    weft_pid pid = 0;
    CHECK_RC(weft_actor_spawn(&pid, actor_fn, NULL, &o), 0);
    return pid;
}

/* Waits up to 5 s for actor_exits to reach n. */
static void wait_actor_exits(int n, int line)
{
    int64_t limit = weft_now() + 5000 * MS;
    while (atomic_load(&actor_exits) < n && weft_now() < limit)
        weft_sleep(test_in_ms(1));
    if (atomic_load(&actor_exits) != n)
        check_fail(line, "%d actors ended, expected %d", atomic_load(&actor_exits), n);
}

/* ---- register, whereis, unregister ----------------------------------------------------- */

static intptr_t basics_main(void *arg)
{
    weft_pid me = weft_self(), p = spawn_proc(sleeper, NULL);
    CHECK_RC(weft_register("alpha", p), 0);
    CHECK_RC(weft_register("beta", me), 0);
    CHECK_WHEREIS("alpha", p);
    CHECK_WHEREIS("beta", me);
    CHECK_WHEREIS("alph", 0);
    CHECK_WHEREIS("alphaa", 0);
    /* A name names its pid: a message to it arrives. */
    weft_pid to = 0;
    CHECK_RC(weft_whereis("alpha", &to), 0);
    CHECK_RC(weft_send(to, T_STOP, NULL, 0, 0), 0);
    CHECK_JOIN(p, 1000 + T_STOP);
    CHECK_WHEREIS("alpha", 0);
    /* Unregistering frees the name and the pid: both can be taken again. */
    CHECK_RC(weft_unregister("beta"), 0);
    CHECK_WHEREIS("beta", 0);
    CHECK_RC(weft_unregister("beta"), -ENOENT);
    CHECK_RC(weft_register("gamma", me), 0);
    CHECK_WHEREIS("gamma", me);
    CHECK_RC(weft_unregister("gamma"), 0);
    CHECK_RC(weft_register("beta", me), 0);
    CHECK_WHEREIS("beta", me);
    CHECK_RC(weft_unregister("beta"), 0);
    /* Actors have names too. */
    weft_pid x = spawn_actor();
    CHECK_RC(weft_register("an-actor", x), 0);
    CHECK_WHEREIS("an-actor", x);
    CHECK_RC(weft_whereis("an-actor", &to), 0);
    CHECK_RC(weft_send(to, T_PING, NULL, 0, 0), 0);
    weft_msg m;
    weft_match mt = {.tag = T_PONG, .from = x};
    CHECK_RC(weft_recv(&m, &mt, test_in_ms(5000)), 0);
    weft_msg_free(&m);
    CHECK_RC(weft_unregister("an-actor"), 0);
    CHECK_WHEREIS("an-actor", 0);
    /* The longest name (WEFT_NAME_MAX - 1 bytes), copied: the caller's buffer
     * may change afterwards. Names differing in their last byte differ. */
    char name[WEFT_NAME_MAX];
    memset(name, 'n', WEFT_NAME_MAX - 1);
    name[WEFT_NAME_MAX - 1] = '\0';
    CHECK_RC(weft_register(name, me), 0);
    char copy[WEFT_NAME_MAX];
    memcpy(copy, name, sizeof name);
    name[WEFT_NAME_MAX - 2] = 'm';
    CHECK_WHEREIS(copy, me);
    CHECK_WHEREIS(name, 0);
    CHECK_RC(weft_register(name, x), 0);
    CHECK_WHEREIS(name, x);
    CHECK_WHEREIS(copy, me);
    CHECK_RC(weft_unregister(copy), 0);
    CHECK_RC(weft_unregister(name), 0);
    /* Many names at once (several per hash bucket), each with its pid. */
    enum { N = 600 };
    static weft_pid pids[N];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "proc-%d", i);
        pids[i] = spawn_proc(sleeper, NULL);
        CHECK_RC(weft_register(name, pids[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "proc-%d", i);
        CHECK_WHEREIS(name, pids[i]);
        if (i % 2)
            CHECK_RC(weft_unregister(name), 0);
    }
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "proc-%d", i);
        CHECK_WHEREIS(name, i % 2 ? 0 : pids[i]);
        CHECK_RC(weft_send(pids[i], T_STOP, NULL, 0, 0), 0);
        CHECK_JOIN(pids[i], 1000 + T_STOP);
        CHECK_WHEREIS(name, 0);
    }
    return 0;
}

Test(registry, register_whereis_unregister, .timeout = 30)
{
    run_1_and_2(basics_main, NULL);
}

static intptr_t errors_main(void *arg)
{
    weft_pid me = weft_self(), p = spawn_proc(sleeper, NULL), to = 0;
    CHECK_RC(weft_register("taken", p), 0);
    /* -EEXIST: the name is taken (by another pid, or by this one); the owner keeps it. */
    CHECK_RC(weft_register("taken", me), -EEXIST);
    CHECK_RC(weft_register("taken", p), -EEXIST);
    CHECK_WHEREIS("taken", p);
    /* -EBUSY: the pid has a name; the new name is not taken. */
    CHECK_RC(weft_register("second", p), -EBUSY);
    CHECK_WHEREIS("second", 0);
    CHECK_WHEREIS("taken", p);
    /* -ESRCH: a pid that has ended (not joined; joined), forged, or 0. */
    weft_pid d = spawn_proc(ret_arg, (void *)3);
    wait_ended(d);
    CHECK_RC(weft_register("dead", d), -ESRCH);
    CHECK_JOIN(d, 3);
    CHECK_RC(weft_register("dead", d), -ESRCH);
    CHECK_RC(weft_register("dead", FORGED_PID), -ESRCH);
    CHECK_RC(weft_register("dead", 0), -ESRCH);
    CHECK_WHEREIS("dead", 0);
    /* -EINVAL: NULL, empty or too long names (WEFT_NAME_MAX bytes and more). */
    char longer[WEFT_NAME_MAX + 8];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    char just_too_long[WEFT_NAME_MAX + 1];
    memset(just_too_long, 'y', WEFT_NAME_MAX);
    just_too_long[WEFT_NAME_MAX] = '\0';
    const char *bad[] = {NULL, "", longer, just_too_long};
    for (int i = 0; i < 4; i++) {
        CHECK_RC(weft_register(bad[i], me), -EINVAL);
        CHECK_RC(weft_unregister(bad[i]), -EINVAL);
        to = 77;
        CHECK_RC(weft_whereis(bad[i], &to), -EINVAL);
        CHECK(to == 77, "a refused whereis wrote pid %#llx", (unsigned long long)to);
    }
    just_too_long[WEFT_NAME_MAX - 1] = '\0'; /* WEFT_NAME_MAX - 1 bytes: fine */
    CHECK_RC(weft_register(just_too_long, me), 0);
    CHECK_RC(weft_whereis("taken", NULL), -EINVAL);
    /* -ENOENT: unknown names. */
    CHECK_RC(weft_whereis("unknown", &to), -ENOENT);
    CHECK_RC(weft_unregister("unknown"), -ENOENT);
    CHECK_RC(weft_unregister(just_too_long), 0);
    CHECK_RC(weft_send(p, T_STOP, NULL, 0, 0), 0);
    CHECK_JOIN(p, 1000 + T_STOP);
    return 0;
}

Test(registry, taken_busy_dead_bad_and_unknown_names, .timeout = 30)
{
    unsetenv("WEFT_STRICT");
    run_1_and_2(errors_main, NULL);
}

/* ---- names of ended owners ------------------------------------------------------------- */

/* Registers itself under arg; then T_STOP ends it normally, T_EXIT with 1,
 * T_PING links it to the pid sent (answered with T_PONG). */
static intptr_t register_self_then_wait(void *arg)
{
    CHECK_RC(weft_register((const char *)arg, weft_self()), 0);
    for (;;) {
        weft_msg m;
        int rc = weft_recv(&m, NULL, WEFT_FOREVER);
        if (rc)
            return -1000 + rc;
        int tag = m.tag;
        if (tag == T_PING) {
            CHECK_RC(weft_link(*(weft_pid *)m.data), 0);
            CHECK_RC(weft_send(m.from, T_PONG, NULL, 0, 0), 0);
        }
        weft_msg_free(&m);
        if (tag != T_PING)
            return tag == T_STOP ? 0 : 1;
    }
}

static intptr_t wait_go(void *arg)
{
    weft_msg m;
    weft_match mt = {.tag = T_GO};
    int rc = weft_recv(&m, &mt, WEFT_FOREVER);
    if (rc)
        return -1000 + rc;
    weft_msg_free(&m);
    return (intptr_t)arg;
}

static intptr_t ended_owner_main(void *arg)
{
    atomic_store(&actor_exits, 0);
    /* A process that returns (normally, abnormally), is killed, or is ended by a link. */
    for (int how = 0; how < 4; how++) {
        weft_pid p = spawn_proc(register_self_then_wait, "owner");
        weft_pid q = 0;
        int64_t limit = weft_now() + 5000 * MS;
        while (weft_whereis("owner", &q) != 0 && weft_now() < limit)
            weft_sleep(test_in_ms(1));
        CHECK(q == p, "end %d: whereis gave %#llx, not %#llx", how, (unsigned long long)q,
              (unsigned long long)p);
        intptr_t want = how == 0 ? 0 : how == 1 ? 1 : how == 2 ? 5 : 6;
        if (how < 2) {
            CHECK_RC(weft_send(p, how == 0 ? T_STOP : T_EXIT, NULL, 0, 0), 0);
        } else if (how == 2) {
            CHECK_RC(weft_kill(p, 5), 0);
        } else {
            weft_pid peer = spawn_proc(wait_go, (void *)6);
            CHECK_RC(weft_send(p, T_PING, &peer, sizeof peer, 0), 0);
            weft_msg m;
            weft_match mt = {.tag = T_PONG, .from = p};
            CHECK_RC(weft_recv(&m, &mt, test_in_ms(5000)), 0);
            weft_msg_free(&m);
            CHECK_RC(weft_send(peer, T_GO, NULL, 0, 0), 0);
            CHECK_JOIN(peer, 6);
        }
        CHECK_JOIN(p, want);
        CHECK_WHEREIS("owner", 0);
        CHECK_RC(weft_unregister("owner"), -ENOENT);
        /* Free for another pid. */
        weft_pid r = spawn_proc(sleeper, NULL);
        CHECK_RC(weft_register("owner", r), 0);
        CHECK_WHEREIS("owner", r);
        CHECK_RC(weft_send(r, T_STOP, NULL, 0, 0), 0);
        CHECK_JOIN(r, 1000 + T_STOP);
        CHECK_WHEREIS("owner", 0);
    }
    /* An actor ending by weft_exit, or killed: the name is gone once on_exit has run. */
    for (int how = 0; how < 2; how++) {
        weft_pid x = spawn_actor();
        CHECK_RC(weft_register("an-actor", x), 0);
        intptr_t why = 9;
        if (how == 0)
            CHECK_RC(weft_send(x, T_EXIT, &why, sizeof why, 0), 0);
        else
            CHECK_RC(weft_kill(x, WEFT_EXIT_KILL), 0);
        wait_actor_exits(how + 1, __LINE__);
        CHECK_WHEREIS("an-actor", 0);
        CHECK_RC(weft_register("an-actor", weft_self()), 0);
        CHECK_RC(weft_unregister("an-actor"), 0);
    }
    /* A name unregistered, then taken by another: the first owner's end
     * leaves it to the second; the first may take a new name meanwhile. */
    weft_pid p = spawn_proc(sleeper, NULL), q = spawn_proc(sleeper, NULL);
    CHECK_RC(weft_register("moved", p), 0);
    CHECK_RC(weft_unregister("moved"), 0);
    CHECK_RC(weft_register("moved", q), 0);
    CHECK_RC(weft_register("other", p), 0);
    CHECK_RC(weft_kill(p, 7), 0);
    CHECK_JOIN(p, 7);
    CHECK_WHEREIS("moved", q);
    CHECK_WHEREIS("other", 0);
    CHECK_RC(weft_send(q, T_STOP, NULL, 0, 0), 0);
    CHECK_JOIN(q, 1000 + T_STOP);
    CHECK_WHEREIS("moved", 0);
    return 0;
}

Test(registry, name_is_freed_when_its_process_or_actor_ends, .timeout = 30)
{
    run_1_and_2(ended_owner_main, NULL);
}

/* ---- races ------------------------------------------------------------------------------- */

enum { CONTENDERS = 8 };

struct contest {
    weft_chan gate;   /* closed to let every contender go at once */
    const char *name;
    weft_pid main;
};

/* Waits at the gate, registers itself under the contest's name, reports the
 * code to main and keeps the name (if it won) until T_STOP. */
static intptr_t contender(void *arg)
{
    struct contest *c = arg;
    int v;
    CHECK_RC(weft_chan_recv(c->gate, &v, sizeof v, WEFT_FOREVER), -EPIPE);
    int rc = weft_register(c->name, weft_self());
    CHECK_RC(weft_send(c->main, T_PONG, &rc, sizeof rc, 0), 0);
    weft_msg m;
    weft_match mt = {.tag = T_STOP};
    CHECK_RC(weft_recv(&m, &mt, WEFT_FOREVER), 0);
    weft_msg_free(&m);
    return rc;
}

/* Rounds of contenders released at once: exactly one gets the name, the
 * others -EEXIST, and whereis names the winner. The name is then freed by
 * weft_unregister or by the winner's end. */
static intptr_t race_register_main(void *arg)
{
    static struct contest c;
    int rounds = test_sanitized() ? 60 : 300;
    for (int round = 0; round < rounds; round++) {
        c.gate = make_chan(sizeof(int), 0);
        c.name = round % 3 ? "the-one" : "another-one";
        c.main = weft_self();
        weft_pid pids[CONTENDERS];
        for (int i = 0; i < CONTENDERS; i++)
            pids[i] = spawn_on(contender, &c, i, 0);
        weft_yield();
        CHECK_RC(weft_chan_close(c.gate), 0);
        weft_pid winner = 0;
        int wins = 0, lost = 0;
        for (int i = 0; i < CONTENDERS; i++) {
            weft_msg m;
            if (weft_recv(&m, &(weft_match){.tag = T_PONG}, test_in_ms(10000)) != 0) {
                check_fail(__LINE__, "round %d: %d contenders reported", round, i);
                break;
            }
            int rc = *(int *)m.data;
            if (rc == 0) {
                wins++;
                winner = m.from;
            } else if (rc == -EEXIST) {
                lost++;
            } else {
                check_fail(__LINE__, "round %d: a contender's register returned %d", round, rc);
            }
            weft_msg_free(&m);
        }
        CHECK(wins == 1 && lost == CONTENDERS - 1, "round %d: %d won, %d lost", round, wins, lost);
        CHECK_WHEREIS(c.name, winner);
        if (round & 1) {
            CHECK_RC(weft_unregister(c.name), 0);
            CHECK_WHEREIS(c.name, 0);
        }
        for (int i = 0; i < CONTENDERS; i++)
            CHECK_RC(weft_send(pids[i], T_STOP, NULL, 0, 0), 0);
        for (int i = 0; i < CONTENDERS; i++) {
            intptr_t r = join_by(pids[i], __LINE__);
            CHECK(r == (pids[i] == winner ? 0 : -EEXIST), "round %d: contender %d returned %ld", round,
                  i, (long)r);
        }
        CHECK_WHEREIS(c.name, 0); /* every contender has ended */
        CHECK_RC(weft_chan_release(c.gate), 0);
        if (atomic_load(&check_failures))
            break;
    }
    return 0;
}

Test(registry, race_many_processes_register_one_name_exactly_one_wins, .timeout = 60)
{
    run_1_and_2(race_register_main, NULL);
}

static void spin_a_little(int i)
{
    int64_t until = weft_now() + (i * 7) % 64 * US;
    while (weft_now() < until)
        ;
}

struct taker {
    int i;
    weft_pid main;
};

/* Registers "contested" (after a while), tells main, returns the code on T_STOP. */
static intptr_t take_name(void *arg)
{
    struct taker *t = arg;
    spin_a_little(t->i);
    int rc = weft_register("contested", weft_self());
    CHECK_RC(weft_send(t->main, T_PONG, NULL, 0, 0), 0);
    weft_msg m;
    weft_match mt = {.tag = T_STOP};
    CHECK_RC(weft_recv(&m, &mt, WEFT_FOREVER), 0);
    weft_msg_free(&m);
    return rc;
}

/* A name taken as its owner ends: the new registration fails with -EEXIST
 * (and the name is free after the owner's join) or succeeds (and the new
 * pid keeps it): never both, never a name left to the dead. */
static intptr_t race_owner_end_main(void *arg)
{
    int n = test_sanitized() ? 400 : 2000, took = 0;
    (void)took;
    for (int i = 0; i < n; i++) {
        weft_pid old = spawn_on(wait_go, (void *)(intptr_t)(i & 1), i, 0);
        CHECK_RC(weft_register("contested", old), 0);
        struct taker t = {i, weft_self()};
        weft_pid q = spawn_on(take_name, &t, i + 1, 0);
        spin_a_little(i * 3);
        CHECK_RC(weft_send(old, T_GO, NULL, 0, 0), 0);
        CHECK_JOIN(old, i & 1);
        weft_msg m;
        weft_match mt = {.tag = T_PONG, .from = q};
        CHECK_RC(weft_recv(&m, &mt, test_in_ms(10000)), 0); /* q has registered, or failed to */
        weft_msg_free(&m);
        weft_pid holder = 0;
        int rc = weft_whereis("contested", &holder);
        CHECK(rc == -ENOENT || (rc == 0 && holder == q), "iteration %d: whereis %d, pid %#llx (new %#llx)",
              i, rc, (unsigned long long)holder, (unsigned long long)q);
        CHECK_RC(weft_send(q, T_STOP, NULL, 0, 0), 0);
        intptr_t r = join_by(q, __LINE__);
        CHECK(r == 0 || r == -EEXIST, "iteration %d: the new register returned %ld", i, (long)r);
        CHECK((r == 0) == (rc == 0), "iteration %d: register %ld, then whereis %d", i, (long)r, rc);
        took += r == 0;
        CHECK_WHEREIS("contested", 0);
        if (atomic_load(&check_failures))
            break;
    }
    return 0;
}

Test(registry, race_register_while_the_owner_ends, .timeout = 60)
{
    run_at_workers(2, race_owner_end_main, NULL);
}

/* ---- outside threads and the runtime's end --------------------------------------------------- */

enum { THREADS = 4, PER_THREAD = 50 };

struct thread_job {
    int index;
    weft_pid mine;      /* a process of its own, to race for "shared" */
    int shared_rc;
    int errors;         /* calls that returned something else than expected */
    char first[160];
    atomic_int *go;
};

static void job_fail(struct thread_job *j, const char *what, int rc)
{
    if (j->errors++ == 0)
        snprintf(j->first, sizeof j->first, "thread %d: %s returned %d (%s)", j->index, what, rc,
                 weft_strerror(rc));
}

static void *thread_names(void *arg)
{
    struct thread_job *j = arg;
    char name[WEFT_NAME_MAX];
    int rc;
    while (!atomic_load(j->go))
        ;
    j->shared_rc = weft_register("shared", j->mine);
    for (int k = 0; k < PER_THREAD; k++) {
        snprintf(name, sizeof name, "t%d-%d", j->index, k);
        weft_pid p = 0, got = 0;
        if ((rc = k % 2 ? weft_actor_spawn(&p, actor_fn, NULL, NULL) : weft_spawn(&p, sleeper, NULL, NULL)))
            job_fail(j, "spawn", rc);
        if ((rc = weft_register(name, p)) != 0)
            job_fail(j, "register", rc);
        if ((rc = weft_register(name, p)) != -EEXIST)
            job_fail(j, "register again", rc);
        if ((rc = weft_whereis(name, &got)) != 0 || got != p)
            job_fail(j, "whereis", rc);
        if (k % 3 == 0 && (rc = weft_unregister(name)) != 0)
            job_fail(j, "unregister", rc);
        if (k % 2 == 0) { /* the process ends; its name (if any) goes with it */
            intptr_t r = 0;
            if ((rc = weft_send(p, T_STOP, NULL, 0, 0)) != 0 || (rc = weft_join(p, &r, test_in_ms(10000))) != 0)
                job_fail(j, "stop", rc);
            if ((rc = weft_whereis(name, &got)) != -ENOENT)
                job_fail(j, "whereis of an ended process", rc);
        } else if ((rc = weft_kill(p, WEFT_EXIT_KILL)) != 0) {
            job_fail(j, "kill", rc);
        }
    }
    return NULL;
}

/* Threads outside the runtime register, look up and unregister names of
 * processes and actors, and race for one name: exactly one wins. At the
 * runtime's stop the registry empties: -ESHUTDOWN, then nothing after a restart. */
Test(registry, outside_threads_register_and_the_registry_ends_with_the_runtime, .timeout = 60)
{
    unsetenv("WEFT_STRICT");
    int rounds = test_sanitized() ? 3 : 10;
    for (int round = 0; round < rounds; round++) {
        start_workers(2);
        weft_pid me_old = 0;
        if (round > 0)
            ASSERT_RC(weft_whereis("shared", &me_old), -ENOENT); /* the last runtime's names are gone */
        static atomic_int go;
        atomic_store(&go, 0);
        struct thread_job jobs[THREADS];
        pthread_t th[THREADS];
        for (int i = 0; i < THREADS; i++) {
            jobs[i] = (struct thread_job){.index = i, .go = &go};
            ASSERT_OK(weft_spawn(&jobs[i].mine, sleeper, NULL, NULL));
            cr_assert_eq(pthread_create(&th[i], NULL, thread_names, &jobs[i]), 0);
        }
        atomic_store(&go, 1);
        for (int i = 0; i < THREADS; i++)
            pthread_join(th[i], NULL);
        ASSERT_CHECKS();
        int wins = 0;
        weft_pid holder = 0;
        ASSERT_OK(weft_whereis("shared", &holder));
        for (int i = 0; i < THREADS; i++) {
            cr_assert_eq(jobs[i].errors, 0, "%d errors; first: %s", jobs[i].errors, jobs[i].first);
            cr_assert(jobs[i].shared_rc == 0 || jobs[i].shared_rc == -EEXIST, "thread %d: register %d",
                      i, jobs[i].shared_rc);
            if (jobs[i].shared_rc == 0) {
                wins++;
                cr_assert_eq(holder, jobs[i].mine, "thread %d won, whereis gave %#llx", i,
                             (unsigned long long)holder);
            }
        }
        cr_assert_eq(wins, 1, "round %d: %d threads won \"shared\"", round, wins);
        ASSERT_OK(weft_stop(WEFT_FOREVER));
        weft_pid p = 0;
        ASSERT_RC(weft_whereis("shared", &p), -ESHUTDOWN);
        ASSERT_RC(weft_register("shared", holder), -ESHUTDOWN);
        ASSERT_RC(weft_unregister("shared"), -ESHUTDOWN);
    }
}
