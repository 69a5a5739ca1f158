/* stress_core.c: runs one stress scenario (stress_run): a runtime of its
 * own, the driver process under a watchdog, the stop, and the tally.
 *
 * Switches are not visible through weft's API, so the tally gives a proxy
 * (stress_switches): transfers on rendezvous channels plus processes
 * started. A rendezvous transfer pairs a sender with a receiver that was
 * already waiting, so exactly one of the two parked and was switched back
 * in; a process start is a switch onto a new stack. Waits on buffered
 * channels, selects that timed out, yields and joins switch too and are not
 * counted, so the proxy stays below the true count (a waiter woken before it
 * finished parking is the one case the other way). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

#define SEC ((int64_t)1000000000)

static const char *const kind_names[STRESS_KINDS] = {"mesh", "select", "close", "churn", "ring",
                                                     "burst"};

static intptr_t (*const scenarios[STRESS_KINDS])(struct stress_ctx *) = {
    stress_mesh, stress_select, stress_close, stress_churn, stress_ring, stress_burst,
};

const char *stress_kind_name(int kind)
{
    return kind >= 0 && kind < STRESS_KINDS ? kind_names[kind] : "?";
}

uint64_t stress_switches(const struct stress_tally *t)
{
    return t->rendezvous + t->spawned;
}

/* ---- one run -------------------------------------------------------------------------- */

static intptr_t driver(void *arg)
{
    struct stress_ctx *c = arg;
    return scenarios[c->p->kind](c);
}

static bool params_ok(struct stress_ctx *c, const struct stress_params *p)
{
    if (p->kind < 0 || p->kind >= STRESS_KINDS || p->workers < 1 ||
        p->workers > WEFT_WORKERS_MAX || p->procs < 3 || p->procs > 100000000 || p->msgs < 1 ||
        p->msgs > 2000000000) {
        stress_fail(c, "bad parameters: kind %d, %u workers, %ld processes, %ld messages", p->kind,
                    p->workers, p->procs, p->msgs);
        return false;
    }
    return true;
}

/* Starts the runtime, runs the driver under the watchdog, stops the runtime. */
static void run_runtime(struct stress_ctx *c, const struct stress_params *p, struct stress_tally *t)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = p->workers;
    cfg.seed = p->seed ? p->seed : 1;
    if (!stress_rc(c, weft_start(&cfg), 0, "weft_start"))
        return;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.name = "stress driver";
    weft_pid pid = 0;
    int rc = weft_spawn(&pid, driver, c, &opts);
    if (stress_rc(c, rc, 0, "weft_spawn of the driver")) {
        atomic_fetch_add(&c->count[C_SPAWNED], 1);
        int64_t watchdog = p->watchdog_ns > 0 ? p->watchdog_ns : 120 * SEC;
        intptr_t r = -1;
        rc = weft_join(pid, &r, weft_now() + watchdog);
        if (rc == -ETIMEDOUT) {
            stress_fail(c, "hang: still running after %lld s (the processes are dumped above)",
                        (long long)(watchdog / SEC));
            weft_dump(2);
        } else if (stress_rc(c, rc, 0, "weft_join of the driver")) {
            atomic_fetch_add(&c->count[C_JOINED], 1);
            if (r != 0)
                stress_fail(c, "the driver returned %ld", (long)r);
        }
    }
    t->stop_rc = weft_stop(weft_now() + 30 * SEC);
    if (t->stop_rc != 0) {
        stress_fail(c, "weft_stop returned %d (%s)", t->stop_rc, weft_strerror(t->stop_rc));
        if (t->stop_rc == -ETIMEDOUT) {
            weft_dump(2);
            weft_stop(WEFT_FOREVER); /* the runtime must be gone before the caller goes on */
        }
    }
}

int stress_run(const struct stress_params *p, struct stress_tally *t)
{
    memset(t, 0, sizeof *t);
    struct stress_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(t->first, sizeof t->first, "no memory for the context");
        t->failures = 1;
        return -1;
    }
    c->p = p;
    c->salt = stress_mix(p->seed ^ 0x5ca1ab1e0ddba11ull);
    if (params_ok(c, p))
        run_runtime(c, p, t);

    uint64_t n[C_COUNT];
    for (int i = 0; i < C_COUNT; i++)
        n[i] = atomic_load(&c->count[i]);
    if (n[C_SPAWNED] != n[C_JOINED])
        stress_fail(c, "%llu processes spawned, %llu joined with the right result",
                    (unsigned long long)n[C_SPAWNED], (unsigned long long)n[C_JOINED]);
    t->sent = n[C_SENT];
    t->received = n[C_RECEIVED];
    t->lost = n[C_LOST];
    t->duplicated = n[C_DUPLICATED];
    t->corrupt = n[C_CORRUPT];
    t->reordered = n[C_REORDERED];
    t->phantom = n[C_PHANTOM];
    t->rendezvous = n[C_RENDEZVOUS];
    t->spawned = n[C_SPAWNED];
    t->joined = n[C_JOINED];
    t->yields = n[C_YIELDS];
    t->timeouts = n[C_TIMEOUTS];
    t->polls = n[C_POLLS];
    t->failures = atomic_load(&c->failures);
    if (atomic_load(&c->first_ready))
        memcpy(t->first, c->first, sizeof t->first);
    stress_free_all(c);
    free(c);
    return t->failures ? -1 : 0;
}

void stress_tally_add(struct stress_tally *sum, const struct stress_tally *a)
{
    sum->sent += a->sent;
    sum->received += a->received;
    sum->lost += a->lost;
    sum->duplicated += a->duplicated;
    sum->corrupt += a->corrupt;
    sum->reordered += a->reordered;
    sum->phantom += a->phantom;
    sum->rendezvous += a->rendezvous;
    sum->spawned += a->spawned;
    sum->joined += a->joined;
    sum->yields += a->yields;
    sum->timeouts += a->timeouts;
    sum->polls += a->polls;
    sum->failures += a->failures;
    if (!sum->stop_rc)
        sum->stop_rc = a->stop_rc;
    if (!sum->first[0] && a->first[0])
        memcpy(sum->first, a->first, sizeof sum->first);
}
