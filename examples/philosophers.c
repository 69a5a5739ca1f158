/* philosophers.c: Dijkstra's dining philosophers, as in Hoare's CSP book.
 *
 * Five philosophers sit at a round table with a fork between each two
 * neighbours: philosopher i's left fork is fork i, its right fork is fork
 * (i+1) mod 5. A fork is a channel of capacity 1 holding one token (the
 * fork's number): picking the fork up is receiving the token, putting it
 * down is sending it back. A philosopher eats only with both forks.
 *
 * Default mode, a correct solution: a footman (Hoare's butler) lets at most
 * four philosophers sit at the table at once, so at least one seated
 * philosopher can always get both forks and nobody starves for ever. The
 * footman is a channel of capacity 4 holding four seat tokens: sitting down
 * is receiving a seat, getting up is sending it back. Each philosopher eats
 * M times (--meals M); the program checks that each did, and that a fork
 * was never held by two philosophers at once: every fork has an owner
 * field, claimed (compare-and-swap from "nobody") right after the token is
 * received and released right before it is sent back.
 *
 * --deadlock: the classic deadlock, made certain: no footman; every
 * philosopher picks up its left fork, then all of them meet at a barrier,
 * then each reaches for its right fork, which its neighbour holds. Every
 * process then waits for ever, and weft_run's deadlock detector must end
 * the run: it reports the blocked philosophers on stderr and returns
 * -EDEADLK. The program exits 0 only if it did.
 *
 * The barrier is a "barrier" process and two channels: each philosopher
 * sends on `arrived`, then receives on `go`; the barrier process receives
 * five arrivals, then closes `go`, which wakes every receiver at once
 * (a receive on a closed, empty channel fails with -EPIPE: here, "go").
 *
 * Usage: example-philosophers [--meals M] [--deadlock] [--workers W]. */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "options.h"

enum { N = 5, SEATS = N - 1, NOBODY = -1 };

struct table {
    bool deadlock;          /* --deadlock mode */
    long meals;             /* meals each philosopher eats (default mode) */
    weft_chan fork[N];      /* capacity 1: the token is there when the fork is free */
    weft_chan footman;      /* capacity SEATS: free seats (default mode) */
    weft_chan arrived, go;  /* the barrier (--deadlock mode) */
    atomic_int owner[N];    /* who holds fork i, or NOBODY */
    atomic_long violations; /* a fork found in the wrong hands */
};

struct philosopher {
    int id;
    struct table *t;
};

static int left_fork(int i)
{
    return i;
}

static int right_fork(int i)
{
    return (i + 1) % N;
}

/* Picks fork f up: receives its token, then claims the owner field. */
static int take_fork(struct table *t, int f, int me)
{
    int token;
    int err = weft_chan_recv(t->fork[f], &token, sizeof token, WEFT_FOREVER);
    if (err)
        return err;
    int nobody = NOBODY;
    if (token != f || !atomic_compare_exchange_strong(&t->owner[f], &nobody, me))
        atomic_fetch_add(&t->violations, 1);
    return 0;
}

/* Puts fork f down: gives up the owner field, then sends the token back. */
static int put_fork(struct table *t, int f, int me)
{
    int expect = me;
    if (!atomic_compare_exchange_strong(&t->owner[f], &expect, NOBODY))
        atomic_fetch_add(&t->violations, 1);
    return weft_chan_send(t->fork[f], &f, sizeof f, WEFT_FOREVER);
}

/* Eats one meal: both forks must be ours throughout. */
static int eat(struct table *t, int me)
{
    for (int bite = 0; bite < 3; bite++) {
        if (atomic_load(&t->owner[left_fork(me)]) != me ||
            atomic_load(&t->owner[right_fork(me)]) != me)
            atomic_fetch_add(&t->violations, 1);
        int err = weft_yield(); /* let the neighbours try to grab our forks */
        if (err)
            return err;
    }
    return 0;
}

/* The first of two results that is an error, or 0. */
static int first_error(int a, int b)
{
    return a ? a : b;
}

/* One meal with the footman's leave: sit, pick up left then right fork,
 * eat, put the forks down, get up. What was taken is given back also when
 * a step fails. */
static int dine_once(struct table *t, int me)
{
    int seat;
    int err = weft_chan_recv(t->footman, &seat, sizeof seat, WEFT_FOREVER);
    if (err)
        return err;
    err = take_fork(t, left_fork(me), me);
    if (err == 0) {
        err = take_fork(t, right_fork(me), me);
        if (err == 0) {
            err = eat(t, me);
            err = first_error(err, put_fork(t, right_fork(me), me));
        }
        err = first_error(err, put_fork(t, left_fork(me), me));
    }
    return first_error(err, weft_chan_send(t->footman, &seat, sizeof seat, WEFT_FOREVER));
}

/* philosopher (default mode): thinks, then eats, M times. Returns the number
 * of meals eaten, or a negative weft error. */
static intptr_t philosopher(void *arg)
{
    const struct philosopher *p = arg;
    long eaten = 0;
    for (; eaten < p->t->meals; eaten++) {
        int err = weft_yield(); /* think */
        if (err == 0)
            err = dine_once(p->t, p->id);
        if (err)
            return err;
    }
    return eaten;
}

/* philosopher (--deadlock mode): left fork, barrier, right fork. Never gets
 * past the right fork; returns the error that ends its wait (-ECANCELED
 * once the deadlock is detected). */
static intptr_t greedy_philosopher(void *arg)
{
    const struct philosopher *p = arg;
    struct table *t = p->t;
    char token = 0;
    int err = take_fork(t, left_fork(p->id), p->id);
    if (err == 0)
        err = weft_chan_send(t->arrived, &token, sizeof token, WEFT_FOREVER);
    if (err == 0) {
        err = weft_chan_recv(t->go, &token, sizeof token, WEFT_FOREVER);
        if (err == -EPIPE) /* go was closed: everyone holds a left fork */
            err = take_fork(t, right_fork(p->id), p->id);
        else if (err == 0)
            err = -EPROTO; /* nobody sends on go */
    }
    return err;
}

/* barrier: waits until all N philosophers arrived, then lets them all go. */
static intptr_t barrier(void *arg)
{
    struct table *t = arg;
    for (int i = 0; i < N; i++) {
        char token;
        int err = weft_chan_recv(t->arrived, &token, sizeof token, WEFT_FOREVER);
        if (err)
            return err;
    }
    return weft_chan_close(t->go);
}

/* Makes the channels: forks with their tokens, and the footman's seats or
 * the barrier. */
static int set_table(struct table *t)
{
    int err = 0;
    atomic_init(&t->violations, 0);
    for (int f = 0; f < N && err == 0; f++) {
        atomic_init(&t->owner[f], NOBODY);
        if ((err = weft_chan_make(&t->fork[f], sizeof(int), 1)) == 0)
            err = weft_chan_send(t->fork[f], &f, sizeof f, 0);
    }
    if (err == 0 && !t->deadlock && (err = weft_chan_make(&t->footman, sizeof(int), SEATS)) == 0)
        for (int s = 0; s < SEATS && err == 0; s++)
            err = weft_chan_send(t->footman, &s, sizeof s, 0);
    if (err == 0 && t->deadlock && (err = weft_chan_make(&t->arrived, 1, 0)) == 0)
        err = weft_chan_make(&t->go, 1, 0);
    return err;
}

static void clear_table(struct table *t)
{
    weft_chan all[] = {t->fork[0], t->fork[1], t->fork[2], t->fork[3], t->fork[4],
                       t->footman, t->arrived, t->go};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i])
            weft_chan_release(all[i]);
}

/* app: sets the table, seats the philosophers (and, in --deadlock mode,
 * the barrier), waits for them all and checks the meals. */
static intptr_t app(void *arg)
{
    struct table *t = arg;
    struct philosopher ph[N];
    weft_pid pid[N], barrier_pid = 0;
    int started = 0, err = set_table(t);
    if (err == 0 && t->deadlock) {
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        opts.name = "barrier";
        err = weft_spawn(&barrier_pid, barrier, t, &opts);
    }
    for (; err == 0 && started < N; started++) {
        char name[WEFT_NAME_MAX];
        snprintf(name, sizeof name, "philosopher-%d", started);
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        opts.name = name;
        ph[started] = (struct philosopher){started, t};
        err = weft_spawn(&pid[started], t->deadlock ? greedy_philosopher : philosopher,
                         &ph[started], &opts);
        if (err)
            break;
    }
    if (err)
        fprintf(stderr, "philosophers: setting the table: %s\n", weft_strerror(err));

    /* In --deadlock mode these joins end only when the runtime cancels us. */
    int status = err != 0;
    for (int i = 0; i < started; i++) {
        intptr_t meals = -1;
        int jerr = weft_join(pid[i], &meals, WEFT_FOREVER);
        if (t->deadlock)
            continue;
        if (jerr || meals < 0) {
            fprintf(stderr, "philosophers: philosopher-%d: %s\n", i,
                    weft_strerror(jerr ? jerr : (int)meals));
            status = 1;
        } else if (meals != t->meals) {
            fprintf(stderr, "philosophers: philosopher-%d ate %ld meals, expected %ld\n", i,
                    (long)meals, t->meals);
            status = 1;
        }
    }
    if (barrier_pid)
        weft_join(barrier_pid, NULL, WEFT_FOREVER);
    clear_table(t);
    if (t->deadlock)
        return status;

    long bad = atomic_load(&t->violations);
    if (bad) {
        fprintf(stderr, "philosophers: %ld times a fork was in the wrong hands\n", bad);
        status = 1;
    }
    printf("%d philosophers ate %ld meals each on %d workers, forks never shared: %s\n", N,
           t->meals, weft_workers(), status ? "WRONG" : "ok");
    return status;
}

int main(int argc, char **argv)
{
    weft_config cfg;
    weft_config_init(&cfg);
    static struct table t = {.meals = 1000}; /* static: holds atomics */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--meals") == 0)
            t.meals = option_value(argc, argv, &i, 0, 100000000);
        else if (strcmp(argv[i], "--deadlock") == 0)
            t.deadlock = true;
        else if (strcmp(argv[i], "--workers") == 0)
            cfg.workers = (unsigned)option_value(argc, argv, &i, 0, WEFT_WORKERS_MAX);
        else {
            fprintf(stderr, "usage: %s [--meals M] [--deadlock] [--workers W]\n", argv[0]);
            return 2;
        }
    }
    intptr_t status = 1;
    int err = weft_run(app, &t, &cfg, &status);
    if (t.deadlock) {
        if (err == -EDEADLK) {
            printf("deadlock detected, as it had to be: weft_run returned -EDEADLK\n");
            return 0;
        }
        fprintf(stderr, "philosophers --deadlock: weft_run returned %d (%s), expected -EDEADLK\n",
                err, weft_strerror(err));
        return 1;
    }
    if (err)
        fprintf(stderr, "philosophers: weft_run: %s\n", weft_strerror(err));
    return err ? 1 : (int)status;
}
