/* bounded_buffer.c: producers and consumers over a bounded buffer, which in
 * CSP is simply a buffered channel.
 *
 * Processes and the protocol between them:
 *  - P producers each send ITEMS items (producer id, sequence number 0, 1,
 *    2, ...) on `buffer`, a channel of capacity 16: a producer blocks while
 *    the buffer is full.
 *  - C consumers receive from `buffer` until it is closed and drained
 *    (-EPIPE), checking each item, and return how many they received.
 *  - The last producer to finish closes `buffer`. Producers count themselves
 *    out through `unfinished`, a channel of capacity 1 holding the number of
 *    producers still sending: receiving it takes the counter (no other
 *    producer can hold it meanwhile), sending it back puts it back. The one
 *    that brings it to 0 closes the buffer.
 *  - app starts everyone, joins everyone and checks the totals.
 *
 * What is checked:
 *  - every item (p, s) was received exactly once, by any consumer, and the
 *    consumers' counts add up to P * ITEMS;
 *  - order: one producer's items enter the buffer in sequence order and the
 *    buffer is FIFO, so the items of producer p are taken out in sequence
 *    order. With several consumers that order is spread over them, and the
 *    moments at which they look at their items interleave freely; what
 *    each consumer can check is that the sequence numbers of p it sees
 *    increase (not that they are consecutive). Each consumer checks that.
 *
 * Usage: example-bounded_buffer [--producers P] [--consumers C]
 *        [--items ITEMS per producer] [--workers W]. Exits 0 only when every
 * check passes. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "options.h"

enum { CAPACITY = 16 };

struct item {
    int producer;
    long seq;
};

struct shop {
    long producers, consumers, items; /* items per producer */
    weft_chan buffer;                 /* struct item, capacity CAPACITY */
    weft_chan unfinished;             /* long, capacity 1: producers still sending */
    atomic_uchar *received;           /* [producer * items + seq]: times received */
    atomic_long disorder;             /* items seen out of order, or malformed */
};

struct producer {
    int id;
    struct shop *shop;
};

struct consumer {
    int id;
    struct shop *shop;
    long *last_seq; /* [producer]: last sequence number seen, -1 for none */
};

/* Counts one producer out; the last one closes the buffer. */
static int producer_done(struct shop *s)
{
    long left;
    int err = weft_chan_recv(s->unfinished, &left, sizeof left, WEFT_FOREVER);
    if (err)
        return err;
    if (--left == 0)
        err = weft_chan_close(s->buffer);
    int e2 = weft_chan_send(s->unfinished, &left, sizeof left, WEFT_FOREVER);
    return err ? err : e2;
}

/* producer: sends its items in sequence order, then counts itself out.
 * Returns the number of items sent, or a negative weft error. */
static intptr_t producer(void *arg)
{
    const struct producer *p = arg;
    struct shop *s = p->shop;
    for (long seq = 0; seq < s->items; seq++) {
        struct item it = {p->id, seq};
        int err = weft_chan_send(s->buffer, &it, sizeof it, WEFT_FOREVER);
        if (err)
            return err;
    }
    int err = producer_done(s);
    return err ? err : s->items;
}

/* Checks one received item and records it. */
static void check_item(struct consumer *c, struct item it)
{
    struct shop *s = c->shop;
    if (it.producer < 0 || it.producer >= s->producers || it.seq < 0 || it.seq >= s->items) {
        atomic_fetch_add(&s->disorder, 1); /* malformed */
        return;
    }
    atomic_fetch_add(&s->received[it.producer * s->items + it.seq], 1);
    if (it.seq <= c->last_seq[it.producer])
        atomic_fetch_add(&s->disorder, 1);
    c->last_seq[it.producer] = it.seq;
}

/* consumer: receives until the buffer is closed and empty; returns the
 * number of items received, or a negative weft error. */
static intptr_t consumer(void *arg)
{
    struct consumer *c = arg;
    long count = 0;
    for (;;) {
        struct item it;
        int err = weft_chan_recv(c->shop->buffer, &it, sizeof it, WEFT_FOREVER);
        if (err == -EPIPE)
            return count; /* closed and drained: every producer is done */
        if (err)
            return err;
        check_item(c, it);
        count++;
    }
}

/* Spawns fn(arg) named "<what>-<i>". */
static int start(weft_pid *pid, weft_proc_fn fn, void *arg, const char *what, int i)
{
    char name[WEFT_NAME_MAX];
    snprintf(name, sizeof name, "%s-%d", what, i);
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.name = name;
    return weft_spawn(pid, fn, arg, &opts);
}

/* Joins the n processes of pid; adds their results to *total. Returns the
 * number of processes that failed. */
static int join_all(const weft_pid *pid, long n, const char *what, long *total)
{
    int failed = 0;
    for (long i = 0; i < n; i++) {
        intptr_t r = -1;
        int err = weft_join(pid[i], &r, WEFT_FOREVER);
        if (err || r < 0) {
            fprintf(stderr, "bounded_buffer: %s-%ld: %s\n", what, i,
                    weft_strerror(err ? err : (int)r));
            failed++;
        } else
            *total += r;
    }
    return failed;
}

/* Checks that every item was sent and received exactly once, in order. */
static int check_totals(struct shop *s, long produced, long consumed)
{
    long expect = s->producers * s->items;
    if (produced != expect) {
        fprintf(stderr, "bounded_buffer: producers sent %ld items, expected %ld\n", produced,
                expect);
        return 1;
    }
    for (long i = 0; i < expect; i++) {
        int times = atomic_load(&s->received[i]);
        if (times != 1) {
            fprintf(stderr, "bounded_buffer: item (%ld, %ld) received %d times\n",
                    i / s->items, i % s->items, times);
            return 1;
        }
    }
    if (consumed != expect) {
        fprintf(stderr, "bounded_buffer: consumers counted %ld items, expected %ld\n", consumed,
                expect);
        return 1;
    }
    long bad = atomic_load(&s->disorder);
    if (bad) {
        fprintf(stderr, "bounded_buffer: %ld items out of order or malformed\n", bad);
        return 1;
    }
    return 0;
}

/* The per-process arguments and pids, allocated by app. */
struct crew {
    struct producer *prod;
    struct consumer *cons;
    weft_pid *prod_pid, *cons_pid;
    long *last_seq; /* consumers * producers */
};

static int hire(struct shop *s, struct crew *w)
{
    w->prod = calloc((size_t)s->producers, sizeof *w->prod);
    w->cons = calloc((size_t)s->consumers, sizeof *w->cons);
    w->prod_pid = calloc((size_t)s->producers, sizeof *w->prod_pid);
    w->cons_pid = calloc((size_t)s->consumers, sizeof *w->cons_pid);
    w->last_seq = malloc((size_t)(s->consumers * s->producers) * sizeof *w->last_seq);
    s->received = calloc((size_t)(s->producers * s->items), sizeof *s->received);
    if (!w->prod || !w->cons || !w->prod_pid || !w->cons_pid || !w->last_seq || !s->received)
        return -ENOMEM;
    for (long i = 0; i < s->consumers * s->producers; i++)
        w->last_seq[i] = -1;
    return 0;
}

static void dismiss(struct shop *s, struct crew *w)
{
    free(w->prod);
    free(w->cons);
    free(w->prod_pid);
    free(w->cons_pid);
    free(w->last_seq);
    free(s->received);
}

/* Runs the producers and consumers to the end. Returns 0 when all of them
 * ended cleanly, with the numbers of items sent and received added to
 * *produced and *consumed. */
static int run_shop(struct shop *s, struct crew *w, long *produced, long *consumed)
{
    long started_c = 0, started_p = 0;
    int err = 0;
    for (; err == 0 && started_c < s->consumers; started_c++) {
        w->cons[started_c] = (struct consumer){(int)started_c, s,
                                               w->last_seq + started_c * s->producers};
        if ((err = start(&w->cons_pid[started_c], consumer, &w->cons[started_c], "consumer",
                         (int)started_c)))
            break;
    }
    for (; err == 0 && started_p < s->producers; started_p++) {
        w->prod[started_p] = (struct producer){(int)started_p, s};
        if ((err = start(&w->prod_pid[started_p], producer, &w->prod[started_p], "producer",
                         (int)started_p)))
            break;
    }
    if (err) {
        fprintf(stderr, "bounded_buffer: spawn: %s\n", weft_strerror(err));
        weft_chan_close(s->buffer); /* unblocks everyone; producers then fail */
    }
    int failed = join_all(w->prod_pid, started_p, "producer", produced);
    failed += join_all(w->cons_pid, started_c, "consumer", consumed);
    return err || failed ? -1 : 0;
}

/* app: sets up the channels and the crew, runs the shop, checks. */
static intptr_t app(void *arg)
{
    struct shop *s = arg;
    struct crew w = {0};
    long produced = 0, consumed = 0;
    int64_t t0 = weft_now();
    int err = hire(s, &w);
    if (err == 0 && (err = weft_chan_make(&s->buffer, sizeof(struct item), CAPACITY)) == 0 &&
        (err = weft_chan_make(&s->unfinished, sizeof(long), 1)) == 0)
        err = weft_chan_send(s->unfinished, &s->producers, sizeof(long), 0);
    int status = 1;
    if (err)
        fprintf(stderr, "bounded_buffer: setting up: %s\n", weft_strerror(err));
    else if (run_shop(s, &w, &produced, &consumed) == 0)
        status = check_totals(s, produced, consumed);
    if (s->buffer)
        weft_chan_release(s->buffer);
    if (s->unfinished)
        weft_chan_release(s->unfinished);
    dismiss(s, &w);
    printf("%ld producers -> buffer of %d -> %ld consumers: %ld items on %d workers in %.1f ms: "
           "%s\n",
           s->producers, CAPACITY, s->consumers, consumed, weft_workers(),
           (weft_now() - t0) / 1e6, status ? "WRONG" : "ok");
    return status;
}

int main(int argc, char **argv)
{
    weft_config cfg;
    weft_config_init(&cfg);
    static struct shop s = {.producers = 4, .consumers = 4, .items = 100000}; /* holds atomics */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--producers") == 0)
            s.producers = option_value(argc, argv, &i, 1, 10000);
        else if (strcmp(argv[i], "--consumers") == 0)
            s.consumers = option_value(argc, argv, &i, 1, 10000);
        else if (strcmp(argv[i], "--items") == 0)
            s.items = option_value(argc, argv, &i, 0, 10000000);
        else if (strcmp(argv[i], "--workers") == 0)
            cfg.workers = (unsigned)option_value(argc, argv, &i, 0, WEFT_WORKERS_MAX);
        else {
            fprintf(stderr,
                    "usage: %s [--producers P] [--consumers C] [--items N] [--workers W]\n",
                    argv[0]);
            return 2;
        }
    }
    intptr_t status = 1;
    int err = weft_run(app, &s, &cfg, &status);
    if (err)
        fprintf(stderr, "bounded_buffer: weft_run: %s\n", weft_strerror(err));
    return err ? 1 : (int)status;
}
