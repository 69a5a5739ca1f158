/* sieve.c: the concurrent prime sieve (McIlroy's, as in Hoare's CSP paper
 * and Go's "prime sieve").
 *
 * Processes and the protocol between them:
 *   generator --c0--> filter(2) --c1--> filter(3) --c2--> ... --> app
 *  - generator sends 2, 3, 4, ... on its output channel;
 *  - filter(p) copies its input to its output, dropping the multiples of p;
 *  - app (the first process) reads the end of the pipeline: the first number
 *    to reach it is the next prime p, so it splices a new filter(p) between
 *    the pipeline's end and itself and reads from the new end.
 * Every channel is a rendezvous channel and is closed by its *reader*, which
 * means "I want no more": once app has its N primes it closes its input; the
 * writer of that channel sees -EPIPE on its next send, closes its own input
 * and returns, and so on upstream until the generator returns. app then joins
 * every process: none is left blocked.
 *
 * Usage: example-sieve [--n N] [--workers W]. Checks the primes against a
 * sequential sieve of Eratosthenes; exits 0 only when they match. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "options.h"

struct stage {
    weft_chan in, out; /* the generator has no input */
    long prime;        /* filters only */
};

/* generator: sends 2, 3, 4, ... until its reader closes the channel. */
static intptr_t generator(void *arg)
{
    const struct stage *s = arg;
    for (long v = 2;; v++) {
        int err = weft_chan_send(s->out, &v, sizeof v, WEFT_FOREVER);
        if (err == -EPIPE)
            return 0; /* the reader wants no more */
        if (err)
            return err;
    }
}

/* filter(p): passes on the numbers that p does not divide. When its reader
 * closes the output, it closes its own input (telling its writer to stop)
 * and returns. */
static intptr_t filter(void *arg)
{
    const struct stage *s = arg;
    for (;;) {
        long v;
        int err = weft_chan_recv(s->in, &v, sizeof v, WEFT_FOREVER);
        if (err)
            return err; /* only this filter closes its input: never -EPIPE */
        if (v % s->prime == 0)
            continue;
        err = weft_chan_send(s->out, &v, sizeof v, WEFT_FOREVER);
        if (err == -EPIPE)
            break;
        if (err)
            return err;
    }
    return weft_chan_close(s->in);
}

struct sieve {
    long n;              /* primes wanted */
    long *primes;        /* the n primes found */
    struct stage *stage; /* stage[0]: generator; stage[i]: filter of the i-th prime */
    weft_pid *pid;       /* pid[i] runs stage[i] */
    long nstage;
};

/* Starts stage i (reading s->stage[i].in, if any) with the given output. */
static int start_stage(struct sieve *s, long i, weft_chan out)
{
    char name[WEFT_NAME_MAX];
    struct stage *st = &s->stage[i];
    st->out = out;
    if (i == 0)
        snprintf(name, sizeof name, "generator");
    else
        snprintf(name, sizeof name, "filter-%ld", st->prime);
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.name = name;
    int err = weft_spawn(&s->pid[i], i == 0 ? generator : filter, st, &opts);
    if (err == 0)
        s->nstage = i + 1;
    return err;
}

/* Builds the pipeline while reading from it: returns 0 with s->primes
 * filled, or a weft error. app holds the one reference to each channel
 * until stop_pipeline releases them, after every stage has returned. */
static int run_pipeline(struct sieve *s)
{
    weft_chan ch;
    int err = weft_chan_make(&ch, sizeof(long), 0);
    if (err)
        return err;
    err = start_stage(s, 0, ch);
    if (err) {
        weft_chan_release(ch);
        return err;
    }
    for (long i = 0; err == 0 && i < s->n; i++) {
        err = weft_chan_recv(ch, &s->primes[i], sizeof(long), WEFT_FOREVER);
        if (err || i == s->n - 1)
            break;
        /* Splice filter(prime) between the pipeline's end and us. */
        weft_chan next;
        err = weft_chan_make(&next, sizeof(long), 0);
        if (err)
            break;
        s->stage[i + 1].in = ch;
        s->stage[i + 1].prime = s->primes[i];
        err = start_stage(s, i + 1, next);
        if (err) {
            weft_chan_release(next);
            break;
        }
        ch = next;
    }
    /* We want no more (also after an error): the pipeline winds down. */
    int cerr = weft_chan_close(ch);
    return err ? err : cerr;
}

/* Joins every stage and releases every channel. Returns 0 when every stage
 * ended cleanly. */
static int stop_pipeline(struct sieve *s)
{
    int bad = 0;
    for (long i = 0; i < s->nstage; i++) {
        intptr_t r = -1;
        int err = weft_join(s->pid[i], &r, WEFT_FOREVER);
        if (err || r) {
            fprintf(stderr, "sieve: stage %ld ended badly: %s\n", i,
                    weft_strerror(err ? err : (int)r));
            bad = 1;
        }
    }
    /* stage[i].out is stage[i+1].in; the last out is the one we read. */
    for (long i = 0; i < s->nstage; i++)
        weft_chan_release(s->stage[i].out);
    return bad ? -1 : 0;
}

/* The first n primes by the sequential sieve of Eratosthenes, into out. */
static int sequential_primes(long n, long *out)
{
    for (long limit = 64;; limit *= 2) {
        char *composite = calloc((size_t)limit, 1);
        if (!composite)
            return -1;
        long found = 0;
        for (long i = 2; i < limit && found < n; i++) {
            if (composite[i])
                continue;
            out[found++] = i;
            for (long j = i * i; j < limit; j += i)
                composite[j] = 1;
        }
        free(composite);
        if (found == n)
            return 0;
    }
}

static void print_primes(const long *p, long n)
{
    for (long i = 0; i < n; i++)
        printf("%ld%c", p[i], i % 15 == 14 || i == n - 1 ? '\n' : ' ');
}

/* app: runs the sieve, then checks it. Returns the exit status. */
static intptr_t app(void *arg)
{
    struct sieve *s = arg;
    int64_t t0 = weft_now();
    int err = run_pipeline(s);
    if (err)
        fprintf(stderr, "sieve: pipeline: %s\n", weft_strerror(err));
    int stop = stop_pipeline(s);
    double ms = (weft_now() - t0) / 1e6;
    if (err || stop)
        return 1;

    long *expect = malloc((size_t)s->n * sizeof *expect);
    if (!expect || sequential_primes(s->n, expect)) {
        fprintf(stderr, "sieve: out of memory\n");
        free(expect);
        return 1;
    }
    print_primes(s->primes, s->n);
    int status = 0;
    for (long i = 0; i < s->n; i++) {
        if (s->primes[i] != expect[i]) {
            fprintf(stderr, "sieve: prime #%ld is %ld, expected %ld\n", i + 1, s->primes[i],
                    expect[i]);
            status = 1;
            break;
        }
    }
    printf("%ld primes through %ld processes on %d workers in %.1f ms: %s\n", s->n, s->nstage,
           weft_workers(), ms, status ? "WRONG" : "ok");
    free(expect);
    return status;
}

int main(int argc, char **argv)
{
    weft_config cfg;
    weft_config_init(&cfg);
    struct sieve s = {.n = 1000};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--n") == 0)
            s.n = option_value(argc, argv, &i, 1, 100000);
        else if (strcmp(argv[i], "--workers") == 0)
            cfg.workers = (unsigned)option_value(argc, argv, &i, 0, WEFT_WORKERS_MAX);
        else {
            fprintf(stderr, "usage: %s [--n N] [--workers W]\n", argv[0]);
            return 2;
        }
    }
    s.primes = calloc((size_t)s.n, sizeof *s.primes);
    s.stage = calloc((size_t)s.n, sizeof *s.stage);
    s.pid = calloc((size_t)s.n, sizeof *s.pid);
    intptr_t status = 1;
    int err = s.primes && s.stage && s.pid ? weft_run(app, &s, &cfg, &status) : -ENOMEM;
    if (err)
        fprintf(stderr, "sieve: weft_run: %s\n", weft_strerror(err));
    free(s.primes);
    free(s.stage);
    free(s.pid);
    return err ? 1 : (int)status;
}
