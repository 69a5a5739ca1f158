/* test-scenarios.c: the races of the channel and process layers, each run
 * under EXPLORE_SEEDS deterministic schedules (RANDOM and PCT, alternately)
 * and checked against what a sequential execution allows: nothing sent and
 * accepted is lost or received twice, an operation that failed had no
 * effect, every process ends and is accounted for, and every blocked
 * operation returns exactly once (the det loop aborts if a process is made
 * runnable twice).
 *
 * Each scenario records what its processes saw in a global record (the
 * processes of a deterministic run share one OS thread), cleared before each
 * run; the run's seed chooses the scenario's sizes, so a replay rebuilds the
 * same scenario. A failure prints the seed and the command that replays it. */
#include <stdbool.h>

#include "explore.h"
#include "test.h"

static uint64_t seeds(void)
{
    return EXPLORE_SEEDS;
}

static void run_scenario(weft_proc_fn fn, void (*reset)(void), intptr_t (*check)(void))
{
    struct explore_opts o = {.workers = 2, .seeds = seeds(), .reset = reset, .check = check};
    uint64_t failed = explore(fn, NULL, &o);
    cr_assert_eq(failed, 0, "seed %llu failed (see above)", (unsigned long long)failed);
}

/* ---- close racing with senders and receivers ----------------------------------------- */

enum { CS_SENDERS = 3, CS_PER = 4, CS_RECEIVERS = 2 };

static struct {
    weft_chan ch;
    int send_rc[CS_SENDERS][CS_PER];
    int received[CS_SENDERS][CS_PER];
    int last_seq[CS_RECEIVERS][CS_SENDERS];
    int recv_end[CS_RECEIVERS];
    int close_rc;
} cs;

static void cs_reset(void)
{
    memset(&cs, 0, sizeof cs);
    for (int r = 0; r < CS_RECEIVERS; r++)
        for (int s = 0; s < CS_SENDERS; s++)
            cs.last_seq[r][s] = -1;
}

static intptr_t cs_sender(void *arg)
{
    int s = (int)(intptr_t)arg;
    for (int k = 0; k < CS_PER; k++) {
        int v = s * 100 + k;
        cs.send_rc[s][k] = weft_chan_send(cs.ch, &v, sizeof v, WEFT_FOREVER);
    }
    return 0;
}

static intptr_t cs_receiver(void *arg)
{
    int r = (int)(intptr_t)arg;
    for (;;) {
        int v = -1;
        int rc = weft_chan_recv(cs.ch, &v, sizeof v, WEFT_FOREVER);
        if (rc) {
            cs.recv_end[r] = rc;
            return 0;
        }
        int s = v / 100, k = v % 100;
        EXPLORE_CHECK(s >= 0 && s < CS_SENDERS && k >= 0 && k < CS_PER, "received %d", v);
        cs.received[s][k]++;
        EXPLORE_CHECK(k > cs.last_seq[r][s], "receiver %d got %d after %d from sender %d", r, k,
                      cs.last_seq[r][s], s);
        cs.last_seq[r][s] = k;
    }
}

static intptr_t cs_closer(void *arg)
{
    for (int i = 0; i < (int)(intptr_t)arg; i++)
        weft_yield();
    cs.close_rc = weft_chan_close(cs.ch);
    return 0;
}

static intptr_t close_race_main(void *arg)
{
    size_t cap = explore_seed % 4; /* rendezvous, 1, 2, 3 */
    EXPLORE_CHECK(weft_chan_make(&cs.ch, sizeof(int), cap) == 0, "make");
    weft_pid pids[CS_SENDERS + CS_RECEIVERS + 1];
    int n = 0;
    for (int s = 0; s < CS_SENDERS; s++)
        EXPLORE_CHECK(weft_spawn(&pids[n++], cs_sender, (void *)(intptr_t)s, NULL) == 0, "spawn");
    for (int r = 0; r < CS_RECEIVERS; r++)
        EXPLORE_CHECK(weft_spawn(&pids[n++], cs_receiver, (void *)(intptr_t)r, NULL) == 0, "spawn");
    EXPLORE_CHECK(weft_spawn(&pids[n++], cs_closer, (void *)(intptr_t)(explore_seed / 4 % 6), NULL) == 0,
                  "spawn");
    for (int i = 0; i < n; i++)
        EXPLORE_CHECK(weft_join(pids[i], NULL, WEFT_FOREVER) == 0, "join %d", i);
    EXPLORE_CHECK(cs.close_rc == 0, "close returned %d", cs.close_rc);
    for (int s = 0; s < CS_SENDERS; s++) {
        bool closed_seen = false;
        for (int k = 0; k < CS_PER; k++) {
            int rc = cs.send_rc[s][k], got = cs.received[s][k];
            EXPLORE_CHECK(rc == 0 || rc == -EPIPE, "send %d.%d returned %d", s, k, rc);
            EXPLORE_CHECK(!closed_seen || rc == -EPIPE, "send %d.%d succeeded after -EPIPE", s, k);
            closed_seen |= rc == -EPIPE;
            /* Accepted: received exactly once (receivers drain the buffer
             * after the close). Refused: never received. */
            EXPLORE_CHECK(got == (rc == 0), "value %d.%d: send %d, received %d times", s, k, rc, got);
        }
    }
    for (int r = 0; r < CS_RECEIVERS; r++)
        EXPLORE_CHECK(cs.recv_end[r] == -EPIPE, "receiver %d ended with %d", r, cs.recv_end[r]);
    EXPLORE_CHECK(weft_chan_len(cs.ch) == 0, "%d values left behind", weft_chan_len(cs.ch));
    EXPLORE_CHECK(weft_chan_release(cs.ch) == 0, "release");
    return 0;
}

Test(scenarios, close_races_with_senders_and_receivers, .timeout = 600)
{
    run_scenario(close_race_main, cs_reset, NULL);
}

/* ---- select with deadlines racing sends ------------------------------------------------- */

enum { ST_PER = 6 };

static struct {
    weft_chan ch[2];
    int send_rc[2][ST_PER];
    int received[2][ST_PER];
    int timeouts;
} st;

static void st_reset(void)
{
    memset(&st, 0, sizeof st);
}

/* Sends ST_PER values with short deadlines, then closes its channel. */
static intptr_t st_sender(void *arg)
{
    int c = (int)(intptr_t)arg;
    for (int k = 0; k < ST_PER; k++) {
        int v = c * 100 + k;
        int64_t patience = (int64_t)(1 + (k + c) % 3) * 2 * US;
        st.send_rc[c][k] = weft_chan_send(st.ch[c], &v, sizeof v, weft_now() + patience);
    }
    return weft_chan_close(st.ch[c]);
}

static intptr_t select_timeout_main(void *arg)
{
    size_t cap = explore_seed % 3 == 2 ? 1 : 0;
    for (int c = 0; c < 2; c++)
        EXPLORE_CHECK(weft_chan_make(&st.ch[c], sizeof(int), cap) == 0, "make");
    weft_pid pids[2];
    for (int c = 0; c < 2; c++)
        EXPLORE_CHECK(weft_spawn(&pids[c], st_sender, (void *)(intptr_t)c, NULL) == 0, "spawn");
    int v[2];
    weft_case cases[2] = {WEFT_RECV(st.ch[0], &v[0]), WEFT_RECV(st.ch[1], &v[1])};
    int policy = explore_seed / 3 % 2 ? WEFT_SELECT_FAIR : WEFT_SELECT_PRIORITY;
    while (!cases[0].disabled || !cases[1].disabled) {
        v[0] = v[1] = -1;
        int i = weft_select(cases, 2, policy, weft_now() + 3 * US);
        if (i == -ETIMEDOUT) {
            st.timeouts++;
            EXPLORE_CHECK(v[0] == -1 && v[1] == -1, "a select that timed out received a value");
            continue;
        }
        EXPLORE_CHECK(i == 0 || i == 1, "select returned %d", i);
        EXPLORE_CHECK(v[1 - i] == -1, "case %d fired, case %d received too", i, 1 - i);
        if (cases[i].result == -EPIPE) {
            cases[i].disabled = 1;
            continue;
        }
        EXPLORE_CHECK(cases[i].result == 0, "case result %d", cases[i].result);
        int c = v[i] / 100, k = v[i] % 100;
        EXPLORE_CHECK(c == i && k >= 0 && k < ST_PER, "case %d received %d", i, v[i]);
        st.received[c][k]++;
    }
    for (int c = 0; c < 2; c++) {
        intptr_t r = -1;
        EXPLORE_CHECK(weft_join(pids[c], &r, WEFT_FOREVER) == 0 && r == 0, "sender %d: %ld", c, (long)r);
        for (int k = 0; k < ST_PER; k++) {
            int rc = st.send_rc[c][k];
            EXPLORE_CHECK(rc == 0 || rc == -ETIMEDOUT, "send %d.%d returned %d", c, k, rc);
            EXPLORE_CHECK(st.received[c][k] == (rc == 0), "value %d.%d: send %d, received %d times",
                          c, k, rc, st.received[c][k]);
        }
        EXPLORE_CHECK(weft_chan_release(st.ch[c]) == 0, "release");
    }
    return 0;
}

Test(scenarios, select_deadlines_race_with_sends, .timeout = 600)
{
    run_scenario(select_timeout_main, st_reset, NULL);
}

/* ---- spawn, join and exit ------------------------------------------------------------------ */

static struct {
    int grandchild_runs;
    int detached_ran;
    int join_timeouts;
    int second_joiner_rc[2];
    intptr_t second_joiner_result[2];
} sj;

static void sj_reset(void)
{
    memset(&sj, 0, sizeof sj);
}

static intptr_t grandchild(void *arg)
{
    sj.grandchild_runs++;
    weft_yield();
    return 7;
}

/* Joins with short deadlines until the join succeeds: a timed-out join
 * withdraws and may be tried again. */
static int patient_join(weft_pid pid, intptr_t *r)
{
    for (;;) {
        int rc = weft_join(pid, r, weft_now() + 2 * US);
        if (rc != -ETIMEDOUT)
            return rc;
        sj.join_timeouts++;
    }
}

static intptr_t spawns_and_joins(void *arg)
{
    weft_pid g;
    if (weft_spawn(&g, grandchild, NULL, NULL))
        return -1;
    intptr_t r = -1;
    int rc = patient_join(g, &r);
    return rc ? rc : 100 + r;
}

static void exit_deep(int depth)
{
    if (depth == 0) {
        weft_exit(11);
        return; /* weft_exit returns only outside a process */
    }
    weft_yield();
    exit_deep(depth - 1);
}

static intptr_t exits_from_deep(void *arg)
{
    exit_deep(3);
    return -1; /* never reached */
}

static intptr_t detached_child(void *arg)
{
    weft_yield();
    sj.detached_ran++;
    return 0;
}

static intptr_t sleeps_briefly(void *arg)
{
    weft_sleep(weft_now() + 3 * US);
    return 3;
}

/* Two processes join one target: exactly one gets its result; the other
 * is refused (-EINVAL while the first waits, -ESRCH once it has joined). */
static intptr_t second_joiner(void *arg)
{
    weft_pid *target = arg;
    int me = target[1] != 0;
    sj.second_joiner_rc[me] = weft_join(target[0], &sj.second_joiner_result[me], WEFT_FOREVER);
    return 0;
}

static intptr_t spawn_join_main(void *arg)
{
    weft_pid kids[3];
    weft_proc_fn fns[3] = {spawns_and_joins, exits_from_deep, sleeps_briefly};
    intptr_t want[3] = {107, 11, 3};
    for (int i = 0; i < 3; i++)
        EXPLORE_CHECK(weft_spawn(&kids[i], fns[i], NULL, NULL) == 0, "spawn %d", i);
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.detached = 1;
    EXPLORE_CHECK(weft_spawn(NULL, detached_child, NULL, &o) == 0, "spawn detached");
    weft_pid target, joiners[2];
    weft_pid args[2][2];
    EXPLORE_CHECK(weft_spawn(&target, sleeps_briefly, NULL, NULL) == 0, "spawn target");
    for (int j = 0; j < 2; j++) {
        args[j][0] = target;
        args[j][1] = (weft_pid)j;
        EXPLORE_CHECK(weft_spawn(&joiners[j], second_joiner, args[j], NULL) == 0, "spawn joiner");
    }
    for (int i = 0; i < 3; i++) {
        intptr_t r = -1;
        EXPLORE_CHECK(patient_join(kids[i], &r) == 0, "join %d", i);
        EXPLORE_CHECK(r == want[i], "child %d returned %ld, expected %ld", i, (long)r, (long)want[i]);
        EXPLORE_CHECK(weft_join(kids[i], &r, 0) == -ESRCH, "a second join of %d", i);
    }
    for (int j = 0; j < 2; j++)
        EXPLORE_CHECK(weft_join(joiners[j], NULL, WEFT_FOREVER) == 0, "joiner %d", j);
    int won = (sj.second_joiner_rc[0] == 0) + (sj.second_joiner_rc[1] == 0);
    EXPLORE_CHECK(won == 1, "%d joiners of one process succeeded (%d, %d)", won,
                  sj.second_joiner_rc[0], sj.second_joiner_rc[1]);
    for (int j = 0; j < 2; j++) {
        int rc = sj.second_joiner_rc[j];
        EXPLORE_CHECK(rc == 0 ? sj.second_joiner_result[j] == 3 : rc == -EINVAL || rc == -ESRCH,
                      "joiner %d: %d", j, rc);
    }
    while (sj.detached_ran == 0)
        weft_yield();
    EXPLORE_CHECK(sj.grandchild_runs == 1, "the grandchild ran %d times", sj.grandchild_runs);
    return 0;
}

Test(scenarios, spawn_join_and_exit_race, .timeout = 600)
{
    run_scenario(spawn_join_main, sj_reset, NULL);
}

/* ---- shutdown with processes blocked everywhere ---------------------------------------- */

enum { SD_KINDS = 8 };

static struct {
    weft_chan empty, full;
    weft_pid sleeper;
    int result[SD_KINDS];
    int started[SD_KINDS];
} sd;

static void sd_reset(void)
{
    memset(&sd, 0, sizeof sd);
    for (int i = 0; i < SD_KINDS; i++)
        sd.result[i] = 12345;
}

static intptr_t sd_spinner(void *arg)
{
    while (weft_yield() == 0)
        ;
    return 0;
}

static intptr_t sd_blocked(void *arg)
{
    int kind = (int)(intptr_t)arg;
    int v = 0, rc = 0;
    weft_spawn_opts detached;
    weft_spawn_opts_init(&detached);
    detached.detached = 1;
    sd.started[kind] = 1;
    switch (kind) {
    case 0: rc = weft_chan_recv(sd.empty, &v, sizeof v, WEFT_FOREVER); break;
    case 1: rc = weft_chan_send(sd.full, &v, sizeof v, WEFT_FOREVER); break;
    case 2: {
        weft_case c[2] = {WEFT_RECV(sd.empty, &v), WEFT_SEND(sd.full, &v)};
        rc = weft_select(c, 2, WEFT_SELECT_FAIR, WEFT_FOREVER);
        break;
    }
    case 3: rc = weft_sleep(weft_now() + (int64_t)3600 * 1000 * MS); break;
    case 4: rc = weft_join(sd.sleeper, NULL, WEFT_FOREVER); break;
    case 5: rc = weft_chan_recv(sd.empty, &v, sizeof v, weft_now() + (int64_t)3600 * 1000 * MS); break;
    case 6: /* yields until the shutdown says to stop */
        while ((rc = weft_yield()) == 0)
            ;
        break;
    case 7: /* spawns until spawning is refused */
        while ((rc = weft_spawn(NULL, sd_spinner, NULL, &detached)) == 0)
            weft_yield();
        break;
    }
    sd.result[kind] = rc;
    return 0;
}

static intptr_t shutdown_main(void *arg)
{
    int v = 0;
    EXPLORE_CHECK(weft_chan_make(&sd.empty, sizeof v, 0) == 0, "make");
    EXPLORE_CHECK(weft_chan_make(&sd.full, sizeof v, 1) == 0, "make");
    EXPLORE_CHECK(weft_chan_send(sd.full, &v, sizeof v, 0) == 0, "fill");
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.detached = 1;
    EXPLORE_CHECK(weft_spawn(&sd.sleeper, sd_blocked, (void *)(intptr_t)3, NULL) == 0, "spawn");
    for (int k = 0; k < SD_KINDS; k++)
        if (k != 3)
            EXPLORE_CHECK(weft_spawn(NULL, sd_blocked, (void *)(intptr_t)k, &o) == 0, "spawn %d", k);
    /* Returns at a point the schedule chooses: some have not even started. */
    for (uint64_t i = 0; i < explore_seed % 5; i++)
        weft_yield();
    return 0;
}

/* Every allocation is counted: the runs leave nothing behind. */
static long live_bytes;

static void *counting_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    live_bytes += (long)new_size - (long)(ptr ? old_size : 0);
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, new_size);
}

static intptr_t shutdown_check(void)
{
    for (int k = 0; k < SD_KINDS; k++) {
        int rc = sd.result[k];
        if (!sd.started[k] && rc == 12345)
            continue; /* never ran: canceled before its first slice */
        /* The joiner (4) returns 0 when the sleeper it joins ended first. */
        EXPLORE_CHECK(rc == -ECANCELED || (k == 4 && rc == 0), "blocked process %d ended with %d",
                      k, rc);
    }
    EXPLORE_CHECK(live_bytes == 0, "%ld bytes still allocated after the run", live_bytes);
    return 0;
}

Test(scenarios, shutdown_with_processes_blocked_everywhere, .timeout = 600)
{
    ASSERT_OK(weft_set_allocator(counting_alloc, NULL));
    run_scenario(shutdown_main, sd_reset, shutdown_check);
    ASSERT_OK(weft_set_allocator(NULL, NULL));
}
