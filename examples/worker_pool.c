/* worker_pool.c: a supervised pool of workers that fail, and a dispatcher
 * that loses no job.
 *
 * Processes and the protocol between them:
 *  - A supervisor (weft_sup_start, ONE_FOR_ONE) runs P worker processes,
 *    "worker-0" .. "worker-<P-1>", and restarts each one that ends.
 *  - The dispatcher, a process registered as "dispatcher", accepts jobs from
 *    clients and hands them to workers, at most PREFETCH in flight per
 *    worker; it remembers which jobs each worker holds.
 *  - A worker, when it starts (the first time or after a restart), says
 *    HELLO to the dispatcher, which monitors it (weft_monitor). It then
 *    takes JOB messages, computes the job's checksum and sends RESULT to
 *    the dispatcher. With probability 1/FAIL_ONE_IN per job it fails
 *    instead, before answering: it ends with the abnormal reason CRASHED,
 *    and the jobs it held (the one at hand and those queued in its mailbox)
 *    are gone with it.
 *  - When a worker ends, the dispatcher gets its DOWN message and puts the
 *    jobs the worker held back at the front of its queue; the supervisor
 *    meanwhile starts a new worker, whose HELLO brings it into service.
 *  - The dispatcher forwards each job's first RESULT to the client that
 *    submitted it; a result for a job that is done already (possible only
 *    if a worker's DOWN overtook its last RESULT) is dropped and counted.
 *  - C clients submit the jobs (SUBMIT, a weft_call answered ACCEPTED once
 *    the dispatcher has taken the job), J in all, then wait for their
 *    results, which arrive as plain messages.
 *
 * What is checked (the program exits 0 only if all hold): every job was
 * accepted; each client received the result of each of its jobs exactly
 * once (no job lost, none duplicated, nothing extra in its mailbox after
 * the dispatcher has ended) and each result is the right checksum; the
 * supervisor's restart count (weft_sup_restarts) equals the number of
 * worker failures, and so does the number of DOWN messages with reason
 * CRASHED the dispatcher got; nothing was left queued or in flight.
 *
 * Usage: example-worker_pool [--jobs J] [--workers-in-pool P]
 *        [--clients C] [--workers W]. */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "options.h"

/* Message tags. */
enum {
    TAG_SUBMIT = 1, /* client -> dispatcher (weft_call): struct job_msg */
    TAG_ACCEPTED,   /* its answer */
    TAG_REJECTED,   /* its answer to a malformed or repeated job */
    TAG_HELLO,      /* worker -> dispatcher: a worker has started */
    TAG_JOB,        /* dispatcher -> worker: struct job_msg */
    TAG_RESULT,     /* worker -> dispatcher -> client: struct result_msg */
    TAG_STOP,       /* app -> dispatcher: end */
    TAG_ALL_IN,     /* client -> app: all my results are in (or I gave up) */
    TAG_FINISH      /* app -> client: the dispatcher has ended */
};

enum { PREFETCH = 2, FAIL_ONE_IN = 20, CHECKSUM_ROUNDS = 1000 };

/* A worker's exit reason when it fails. */
#define CRASHED ((intptr_t)77)

/* How long (ns) a client waits for its next result before it calls a job
 * lost, and app for the supervisor's answers. */
#define PATIENCE ((int64_t)10 * 1000000000)

struct job_msg {
    long job;
};

struct result_msg {
    long job;
    uint64_t value;
};

/* What the dispatcher counted, written by it before it returns. */
struct dispatch_stats {
    long accepted, done;
    long redispatched; /* jobs put back in the queue after their worker ended */
    long late;         /* results dropped: their job was done already */
    long hellos, downs, crash_downs;
    long left;         /* jobs still queued or in flight at the end */
    long errors;       /* malformed messages, failed sends */
};

struct pool {
    long jobs;                  /* J */
    int size;                   /* P */
    int clients;                /* C */
    weft_pid dispatcher;
    atomic_long crashes;        /* worker failures, counted before each one */
    atomic_ulong incarnations;  /* workers started: seeds their random sources */
    struct dispatch_stats stats;
};

/* The job: a checksum of the job's number, enough work to be worth handing out. */
static uint64_t checksum(long job)
{
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)job;
    for (int i = 0; i < CHECKSUM_ROUNDS; i++) {
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 29;
        h += (uint64_t)i;
    }
    return h;
}

/* xorshift64*, seeded through splitmix64. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

static uint64_t seed(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x ? x : 1;
}

/* ---- worker ---------------------------------------------------------------- */

/* worker: a child of the supervisor. Runs until the supervisor stops it
 * (its receive then fails with -ECANCELED) or until it fails. */
static intptr_t worker(void *arg)
{
    struct pool *p = arg;
    uint64_t rng = seed(atomic_fetch_add(&p->incarnations, 1) + (uint64_t)weft_now());
    int err = weft_send(p->dispatcher, TAG_HELLO, NULL, 0, 0);
    while (err == 0) {
        weft_msg msg;
        weft_match match = {.tag = TAG_JOB, .from = p->dispatcher};
        if ((err = weft_recv(&msg, &match, WEFT_FOREVER)) != 0)
            break;
        struct job_msg job = {-1};
        if (msg.size == sizeof job)
            memcpy(&job, msg.data, sizeof job);
        weft_msg_free(&msg);
        if (next_random(&rng) % FAIL_ONE_IN == 0) {
            atomic_fetch_add(&p->crashes, 1);
            weft_exit(CRASHED); /* the job is lost with us: the dispatcher redoes it */
        }
        struct result_msg r = {job.job, checksum(job.job)};
        err = weft_send(p->dispatcher, TAG_RESULT, &r, sizeof r, 0);
    }
    return err == -ECANCELED ? WEFT_EXIT_NORMAL : err; /* stopped, or a real error */
}

/* ---- dispatcher ------------------------------------------------------------ */

enum { NEW, QUEUED, IN_FLIGHT, DONE }; /* a job's state */

/* A worker in service and the jobs it holds. */
struct slot {
    weft_pid pid;
    uint64_t ref;              /* our monitor of it */
    long inflight[PREFETCH];
    int n;
};

struct dispatcher {
    struct pool *p;
    unsigned char *state; /* [J] NEW, QUEUED, IN_FLIGHT or DONE */
    weft_pid *client;     /* [J] who submitted the job */
    long *queue;          /* [J] ring of QUEUED jobs (and DONE ones to skip) */
    long head, count;
    struct slot *w;       /* [cap] workers in service */
    int nw, cap;
    int next_worker;      /* where the next round of dispatching starts */
    struct dispatch_stats s;
};

static void push_back(struct dispatcher *d, long job)
{
    d->queue[(d->head + d->count++) % d->p->jobs] = job;
}

static void push_front(struct dispatcher *d, long job)
{
    d->head = (d->head + d->p->jobs - 1) % d->p->jobs;
    d->queue[d->head] = job;
    d->count++;
}

static long pop_front(struct dispatcher *d)
{
    long job = d->queue[d->head];
    d->head = (d->head + 1) % d->p->jobs;
    d->count--;
    return job;
}

static struct slot *find_worker(struct dispatcher *d, weft_pid pid)
{
    for (int i = 0; i < d->nw; i++)
        if (d->w[i].pid == pid)
            return &d->w[i];
    return NULL;
}

/* Hands queued jobs to the workers that have room, starting with a
 * different worker each time. */
static void dispatch(struct dispatcher *d)
{
    for (int k = 0; k < d->nw && d->count > 0; k++) {
        struct slot *w = &d->w[(d->next_worker + k) % d->nw];
        while (w->n < PREFETCH && d->count > 0) {
            long job = pop_front(d);
            if (d->state[job] != QUEUED)
                continue; /* done while it waited in the queue */
            struct job_msg m = {job};
            if (weft_send(w->pid, TAG_JOB, &m, sizeof m, 0) != 0) {
                d->s.errors++;
                push_front(d, job);
                return;
            }
            d->state[job] = IN_FLIGHT;
            w->inflight[w->n++] = job;
        }
    }
    if (d->nw)
        d->next_worker = (d->next_worker + 1) % d->nw;
}

static void on_submit(struct dispatcher *d, const weft_msg *msg)
{
    struct job_msg m = {-1};
    if (msg->size == sizeof m)
        memcpy(&m, msg->data, sizeof m);
    if (m.job < 0 || m.job >= d->p->jobs || d->state[m.job] != NEW) {
        d->s.errors++;
        weft_reply(msg, TAG_REJECTED, NULL, 0);
        return;
    }
    d->state[m.job] = QUEUED;
    d->client[m.job] = msg->from;
    push_back(d, m.job);
    d->s.accepted++;
    if (weft_reply(msg, TAG_ACCEPTED, NULL, 0) != 0)
        d->s.errors++;
}

static void on_hello(struct dispatcher *d, weft_pid pid)
{
    if (d->nw == d->cap) {
        int cap = d->cap ? 2 * d->cap : 8;
        struct slot *w = realloc(d->w, (size_t)cap * sizeof *w);
        if (!w) {
            d->s.errors++;
            return;
        }
        d->w = w;
        d->cap = cap;
    }
    struct slot *w = &d->w[d->nw];
    *w = (struct slot){.pid = pid};
    if (weft_monitor(pid, &w->ref) != 0) {
        d->s.errors++;
        return;
    }
    d->nw++;
    d->s.hellos++;
}

static void on_result(struct dispatcher *d, const weft_msg *msg)
{
    struct result_msg r = {-1, 0};
    if (msg->size == sizeof r)
        memcpy(&r, msg->data, sizeof r);
    if (r.job < 0 || r.job >= d->p->jobs) {
        d->s.errors++;
        return;
    }
    struct slot *w = find_worker(d, msg->from);
    for (int i = 0; w && i < w->n; i++)
        if (w->inflight[i] == r.job) {
            w->inflight[i] = w->inflight[--w->n];
            break;
        }
    if (d->state[r.job] == DONE) {
        d->s.late++;
        return;
    }
    d->state[r.job] = DONE;
    d->s.done++;
    if (weft_send(d->client[r.job], TAG_RESULT, &r, sizeof r, 0) != 0)
        d->s.errors++;
}

/* A worker ended: the jobs it held go back to the front of the queue. */
static void on_down(struct dispatcher *d, const weft_msg *msg)
{
    d->s.downs++;
    if (msg->reason == CRASHED)
        d->s.crash_downs++;
    for (int i = 0; i < d->nw; i++) {
        struct slot *w = &d->w[i];
        if (w->ref != msg->ref)
            continue;
        for (int k = 0; k < w->n; k++)
            if (d->state[w->inflight[k]] == IN_FLIGHT) {
                d->state[w->inflight[k]] = QUEUED;
                push_front(d, w->inflight[k]);
                d->s.redispatched++;
            }
        d->w[i] = d->w[--d->nw];
        return;
    }
    d->s.errors++; /* a DOWN of no worker of ours */
}

/* dispatcher: serves its mailbox until app says STOP. */
static intptr_t dispatcher(void *arg)
{
    struct pool *p = arg;
    struct dispatcher d = {.p = p};
    d.state = calloc((size_t)p->jobs + 1, 1);
    d.client = calloc((size_t)p->jobs + 1, sizeof *d.client);
    d.queue = calloc((size_t)p->jobs + 1, sizeof *d.queue);
    int err = d.state && d.client && d.queue ? 0 : -ENOMEM;
    while (err == 0) {
        weft_msg msg;
        if ((err = weft_recv(&msg, NULL, WEFT_FOREVER)) != 0)
            break;
        int stop = 0;
        switch (msg.tag) {
        case TAG_SUBMIT: on_submit(&d, &msg); break;
        case TAG_HELLO: on_hello(&d, msg.from); break;
        case TAG_RESULT: on_result(&d, &msg); break;
        case WEFT_TAG_DOWN: on_down(&d, &msg); break;
        case TAG_STOP: stop = 1; break;
        default: d.s.errors++; break;
        }
        weft_msg_free(&msg);
        if (stop)
            break;
        dispatch(&d);
    }
    for (long j = 0; j < p->jobs && d.state; j++)
        if (d.state[j] == QUEUED || d.state[j] == IN_FLIGHT)
            d.s.left++;
    p->stats = d.s;
    free(d.w);
    free(d.queue);
    free(d.client);
    free(d.state);
    return err;
}

/* ---- clients ----------------------------------------------------------------- */

struct client {
    struct pool *p;
    weft_pid app;
    int id;
    long mine, got;     /* jobs submitted and accepted, results received */
    long wrong, twice;  /* results with a bad value, or for a job not ours, or seen twice */
    long extra;         /* results found after the dispatcher had ended */
    int err;            /* the weft error that stopped it, or 0 */
};

/* Receives the results of the c->mine jobs submitted. */
static int collect(struct client *c, unsigned char *seen)
{
    while (c->got < c->mine) {
        weft_msg msg;
        weft_match match = {.tag = TAG_RESULT};
        int err = weft_recv(&msg, &match, weft_now() + PATIENCE);
        if (err)
            return err; /* -ETIMEDOUT: a job is lost */
        struct result_msg r = {-1, 0};
        if (msg.size == sizeof r)
            memcpy(&r, msg.data, sizeof r);
        weft_msg_free(&msg);
        long k = r.job / c->p->clients; /* our k-th job is c->id + k * C */
        if (r.job < 0 || r.job % c->p->clients != c->id || k >= c->mine ||
            r.value != checksum(r.job))
            c->wrong++;
        else if (seen[k]++)
            c->twice++;
        else
            c->got++;
    }
    return 0;
}

/* client: submits its share of the jobs (c->id, c->id + C, ...), collects
 * the results, tells app, and after FINISH checks that nothing else came. */
static intptr_t client(void *arg)
{
    struct client *c = arg;
    long share = (c->p->jobs - c->id + c->p->clients - 1) / c->p->clients;
    unsigned char *seen = calloc((size_t)share + 1, 1);
    weft_pid d = 0;
    int err = seen ? weft_whereis("dispatcher", &d) : -ENOMEM;
    for (long job = c->id; err == 0 && job < c->p->jobs; job += c->p->clients) {
        struct job_msg m = {job};
        weft_msg reply;
        err = weft_call(d, TAG_SUBMIT, &m, sizeof m, &reply, weft_now() + PATIENCE);
        if (err == 0) {
            if (reply.tag == TAG_ACCEPTED)
                c->mine++;
            else
                err = -EPROTO;
            weft_msg_free(&reply);
        }
    }
    if (err == 0)
        err = collect(c, seen);
    c->err = err;
    free(seen);
    int e2 = weft_send(c->app, TAG_ALL_IN, NULL, 0, 0);
    weft_msg msg;
    weft_match finish = {.tag = TAG_FINISH, .from = c->app};
    if (e2 == 0 && (e2 = weft_recv(&msg, &finish, WEFT_FOREVER)) == 0)
        weft_msg_free(&msg);
    weft_match result = {.tag = TAG_RESULT};
    while (e2 == 0 && weft_recv(&msg, &result, 0) == 0) { /* deadline 0: what is there */
        c->extra++;
        weft_msg_free(&msg);
    }
    if (c->err == 0)
        c->err = e2;
    return 0;
}

/* ---- app ----------------------------------------------------------------------- */

struct options {
    long jobs;
    int size, clients;
};

/* Checks what everyone counted; returns the number of failed checks. */
static int check(const struct pool *p, const struct client *c, long restarts)
{
    int bad = 0;
    long got = 0;
    for (int i = 0; i < p->clients; i++) {
        got += c[i].got;
        if (c[i].err || c[i].wrong || c[i].twice || c[i].extra) {
            fprintf(stderr,
                    "worker_pool: client %d: %s; %ld of %ld results, %ld wrong, %ld twice, "
                    "%ld extra\n",
                    i, weft_strerror(c[i].err), c[i].got, c[i].mine, c[i].wrong, c[i].twice,
                    c[i].extra);
            bad++;
        }
    }
    const struct dispatch_stats *s = &p->stats;
    if (got != p->jobs || s->accepted != p->jobs || s->done != p->jobs || s->left || s->errors) {
        fprintf(stderr,
                "worker_pool: %ld jobs, %ld accepted, %ld done, %ld results received, %ld left "
                "over, %ld dispatcher errors\n",
                p->jobs, s->accepted, s->done, got, s->left, s->errors);
        bad++;
    }
    long crashes = atomic_load(&p->crashes);
    if (restarts != crashes || s->crash_downs != crashes) {
        fprintf(stderr,
                "worker_pool: %ld worker failures, %ld restarts, %ld DOWN messages with reason "
                "CRASHED\n",
                crashes, restarts, s->crash_downs);
        bad++;
    }
    return bad;
}

/* Waits for one message with tag from any sender. */
static int await(int tag, int64_t deadline)
{
    weft_msg msg;
    weft_match match = {.tag = tag};
    int err = weft_recv(&msg, &match, deadline);
    if (err == 0)
        weft_msg_free(&msg);
    return err;
}

static intptr_t app(void *arg)
{
    const struct options *o = arg;
    static struct pool p; /* static: holds atomics */
    p.jobs = o->jobs;
    p.size = o->size;
    p.clients = o->clients;
    atomic_init(&p.crashes, 0);
    atomic_init(&p.incarnations, 0);
    weft_child_spec *spec = calloc((size_t)p.size, sizeof *spec);
    char (*names)[WEFT_NAME_MAX] = calloc((size_t)p.size, sizeof *names);
    struct client *c = calloc((size_t)p.clients, sizeof *c);
    weft_pid *cpid = calloc((size_t)p.clients, sizeof *cpid);
    weft_pid sup = 0;
    int started = 0, err = spec && names && c && cpid ? 0 : -ENOMEM;

    /* The dispatcher first: the workers greet it as they start. */
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.name = "dispatcher";
    if (err == 0 && (err = weft_spawn(&p.dispatcher, dispatcher, &p, &opts)) == 0)
        err = weft_register("dispatcher", p.dispatcher);
    for (int i = 0; i < p.size && spec && names; i++) {
        snprintf(names[i], sizeof names[i], "worker-%d", i);
        spec[i] = (weft_child_spec){.name = names[i], .fn = worker, .arg = &p,
                                    .restart = WEFT_PERMANENT, .shutdown = 1000000000};
    }
    weft_sup_spec sup_spec = {
        .name = "pool",
        .strategy = WEFT_ONE_FOR_ONE,
        .max_restarts = (unsigned)(p.jobs + 100), /* failures are expected: J/20 or so */
        .period = (int64_t)3600 * 1000000000,
        .children = spec,
        .nchildren = (size_t)p.size,
    };
    if (err == 0)
        err = weft_sup_start(&sup, &sup_spec, 0);
    for (; err == 0 && started < p.clients; started++) {
        c[started] = (struct client){.p = &p, .app = weft_self(), .id = started};
        char name[WEFT_NAME_MAX];
        snprintf(name, sizeof name, "client-%d", started);
        opts.name = name;
        if ((err = weft_spawn(&cpid[started], client, &c[started], &opts)) != 0)
            break;
    }
    for (int i = 0; i < started && err == 0; i++) /* the clients time out on their own */
        err = await(TAG_ALL_IN, WEFT_FOREVER);

    long restarts = -1;
    if (err == 0) {
        restarts = weft_sup_restarts(sup, weft_now() + PATIENCE);
        if (restarts < 0)
            err = (int)restarts;
    }
    if (sup) {
        int e = weft_sup_stop(sup, weft_now() + PATIENCE);
        err = err ? err : e;
    }
    if (p.dispatcher) {
        intptr_t result = 0;
        int e = weft_send(p.dispatcher, TAG_STOP, NULL, 0, 0);
        if (e == 0)
            e = weft_join(p.dispatcher, &result, WEFT_FOREVER);
        err = err ? err : e ? e : (int)result;
    }
    for (int i = 0; i < started; i++) {
        weft_send(cpid[i], TAG_FINISH, NULL, 0, 0);
        weft_join(cpid[i], NULL, WEFT_FOREVER);
    }
    int bad = err != 0;
    if (err)
        fprintf(stderr, "worker_pool: %s\n", weft_strerror(err));
    else
        bad = check(&p, c, restarts);
    printf("worker_pool: %ld jobs done by %d workers, each result received once and right; "
           "restarts: %ld after %ld failures (%ld jobs handed out again) on %d workers: %s\n",
           p.stats.done, p.size, restarts, (long)atomic_load(&p.crashes), p.stats.redispatched,
           weft_workers(), bad ? "WRONG" : "ok");
    if (p.stats.late)
        printf("worker_pool: %ld late results dropped\n", p.stats.late);
    free(cpid);
    free(c);
    free(names);
    free(spec);
    return bad;
}

int main(int argc, char **argv)
{
    weft_config cfg;
    weft_config_init(&cfg);
    struct options o = {.jobs = 2000, .size = 4, .clients = 4};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--jobs") == 0)
            o.jobs = option_value(argc, argv, &i, 1, 10000000);
        else if (strcmp(argv[i], "--workers-in-pool") == 0)
            o.size = (int)option_value(argc, argv, &i, 1, 10000);
        else if (strcmp(argv[i], "--clients") == 0)
            o.clients = (int)option_value(argc, argv, &i, 1, 10000);
        else if (strcmp(argv[i], "--workers") == 0)
            cfg.workers = (unsigned)option_value(argc, argv, &i, 0, WEFT_WORKERS_MAX);
        else {
            fprintf(stderr,
                    "usage: %s [--jobs J] [--workers-in-pool P] [--clients C] [--workers W]\n",
                    argv[0]);
            return 2;
        }
    }
    intptr_t status = 1;
    int err = weft_run(app, &o, &cfg, &status);
    if (err)
        fprintf(stderr, "worker_pool: weft_run: %s\n", weft_strerror(err));
    return err ? 1 : (int)status;
}
