/* runtime.c: starting and stopping the runtime, in both forms: weft_run owns
 * the program; weft_start/weft_stop embed it beside the program's threads.
 *
 * Stopping: the state goes to STOPPING (spawns now fail with -ECANCELED),
 * every open wait is claimed with -ECANCELED and every later one fails at
 * once; weft_stop then waits until no process is alive and no outside thread
 * is inside a weft call, and only then frees the processes never joined, ends
 * the workers and frees what the runtime held.
 */
#include <limits.h>
#include <signal.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataflow.h"
#include "io.h"
#include "actor.h"

static pthread_mutex_t lifecycle_lock = PTHREAD_MUTEX_INITIALIZER;
/* Set (under lifecycle_lock) while weft_run owns the runtime: only weft_run
 * stops it then. */
static bool run_owned;
/* Deterministic mode: the det thread began weft_run's stop (det_begin_stop). */
static atomic_bool det_stop_begun;

enum { CANCEL_EVERY = 10 * 1000 * 1000 }; /* ns between cancellation passes of weft_stop */

/* Counts before checking the state: weft_stop sets the state first and reads
 * the count after, so it either sees this thread or this thread sees it. */
int weft__outside_enter(bool allow_stopping)
{
    atomic_fetch_add(&weft__rt.outside_active, 1);
    int st = atomic_load(&weft__rt.state);
    if (st == WEFT__RT_RUNNING || (st == WEFT__RT_STOPPING && allow_stopping))
        return 0;
    weft__outside_leave();
    return st == WEFT__RT_STOPPING ? -ECANCELED : -ESHUTDOWN;
}

void weft__outside_leave(void)
{
    atomic_fetch_sub(&weft__rt.outside_active, 1);
    if (atomic_load(&weft__rt.state) == WEFT__RT_STOPPING) {
        atomic_fetch_add(&weft__rt.stop_futex, 1);
        weft__futex_wake(&weft__rt.stop_futex, INT_MAX);
    }
}

int weft_thread_attach(void)
{
    int st = atomic_load(&weft__rt.state);
    if (st != WEFT__RT_RUNNING && st != WEFT__RT_STOPPING)
        return -ESHUTDOWN;
    atomic_fetch_add(&weft__rt.attached, 1);
    return 0;
}

int weft_thread_detach(void)
{
    int st = atomic_load(&weft__rt.state);
    if (st != WEFT__RT_RUNNING && st != WEFT__RT_STOPPING)
        return -ESHUTDOWN;
    long n = atomic_load(&weft__rt.attached);
    do {
        if (n <= 0)
            return weft__misuse(-EINVAL, "weft_thread_detach: no thread is attached");
    } while (!atomic_compare_exchange_weak(&weft__rt.attached, &n, n - 1));
    return 0;
}

void weft_config_init(weft_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->stack_size = WEFT_STACK_DEFAULT;
    cfg->dump_signal = SIGQUIT;
}

/* The schedule and seed of a run: cfg's, unless cfg asks for threads and
 * WEFT_SEED=<n> is set (WEFT_SCHEDULE=pct for PCT), so that any program
 * replays a failing seed without a rebuild. */
static int schedule_of(const weft_config *cfg, uint64_t *seed)
{
    const char *env = getenv("WEFT_SEED");
    if (cfg->schedule == WEFT_SCHEDULE_THREADS && env && *env) {
        *seed = strtoull(env, NULL, 0);
        const char *kind = getenv("WEFT_SCHEDULE");
        return kind && strcmp(kind, "pct") == 0 ? WEFT_SCHEDULE_PCT : WEFT_SCHEDULE_RANDOM;
    }
    *seed = cfg->seed;
    return cfg->schedule;
}

static unsigned cpus_available(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static int start(const weft_config *cfg, bool by_run);

int weft_start(const weft_config *cfg)
{
    return start(cfg, false);
}

static int start(const weft_config *cfg, bool by_run)
{
    weft_config defaults;
    if (!cfg) {
        weft_config_init(&defaults);
        cfg = &defaults;
    }
    if (cfg->workers > WEFT_WORKERS_MAX)
        return weft__misuse(-EINVAL, "weft_start: %u workers, at most %d", cfg->workers, WEFT_WORKERS_MAX);
    if (cfg->dump_signal < 0 || cfg->dump_signal >= NSIG || cfg->dump_signal == SIGSEGV ||
        cfg->dump_signal == SIGKILL || cfg->dump_signal == SIGSTOP)
        return weft__misuse(-EINVAL, "weft_start: dump_signal %d cannot be used", cfg->dump_signal);
    int cls = weft__stack_class(cfg->stack_size);
    if (cls < 0)
        return weft__misuse(cls, "weft_start: stack size %zu outside %zu..%zu", cfg->stack_size,
                            WEFT_STACK_MIN, WEFT_STACK_MAX);
    if (cfg->schedule < WEFT_SCHEDULE_THREADS || cfg->schedule > WEFT_SCHEDULE_PCT)
        return weft__misuse(-EINVAL, "weft_start: unknown schedule %d", cfg->schedule);
    if (cfg->offload_threads > WEFT_OFFLOAD_THREADS_MAX)
        return weft__misuse(-EINVAL, "weft_start: %u offload threads, at most %d",
                            cfg->offload_threads, WEFT_OFFLOAD_THREADS_MAX);
    if (weft__worker_current())
        return weft__misuse(-EBUSY, "weft_start: called from inside the running runtime");

    pthread_mutex_lock(&lifecycle_lock);
    int expected = WEFT__RT_STOPPED;
    if (!atomic_compare_exchange_strong(&weft__rt.state, &expected, WEFT__RT_STARTING)) {
        pthread_mutex_unlock(&lifecycle_lock);
        return weft__misuse(-EBUSY, "weft_start: a runtime is already running");
    }
    unsigned n = cfg->workers ? cfg->workers : cpus_available();
    if (n > WEFT_WORKERS_MAX)
        n = WEFT_WORKERS_MAX;
    weft__rt.default_stack = cfg->stack_size;
    weft__rt.default_stack_class = cls;
    uint64_t seed;
    int schedule = schedule_of(cfg, &seed);
    if (schedule != WEFT_SCHEDULE_THREADS && !seed)
        seed = 1;
    weft__rt.seed = seed ? seed : (uint64_t)weft_now() ^ ((uint64_t)getpid() << 32);

    atomic_store(&weft__rt.attached, 0);
    atomic_store(&weft__rt.offload_waiting, 0);
    int err = weft__handle_table_init();
    if (!err)
        err = weft__proc_layer_init();
    if (!err)
        weft__kill_barrier_init();
    /* Deterministic mode is on before the scheduler starts its thread. */
    if (!err && schedule != WEFT_SCHEDULE_THREADS)
        err = weft__det_start(cfg, schedule, seed);
    if (!err)
        err = weft__overflow_install();
    /* The debug layer's hook is installed before the workers read it. */
    if (!err)
        err = weft__debug_start(cfg->dump_signal);
    /* The poller's hooks are in place before the workers read them; the
     * offload pool starts no thread until a call needs one. */
    if (!err) {
        bool io_started = false, offload_started = false;
        if ((err = weft__io_start()) == 0)
            io_started = true;
        if (!err && (err = weft__offload_init(cfg->offload_threads ? cfg->offload_threads
                                                                   : WEFT_OFFLOAD_THREADS_DEFAULT)) == 0)
            offload_started = true;
        if (!err)
            err = weft__sched_start(n);
        if (err) {
            if (offload_started)
                weft__offload_stop();
            if (io_started)
                weft__io_stop();
            weft__debug_stop();
        }
    }
    if (!err) {
        run_owned = by_run;
        atomic_store(&weft__rt.state, WEFT__RT_RUNNING);
    }
    if (err) {
        if (atomic_load(&weft__det_on))
            weft__det_stop();
        weft__overflow_uninstall();
        weft__handle_table_term();
        weft__stack_pool_term();
        atomic_store(&weft__rt.state, WEFT__RT_STOPPED);
    }
    pthread_mutex_unlock(&lifecycle_lock);
    return err;
}

static int stop(int64_t deadline, bool by_run)
{
    pthread_mutex_lock(&lifecycle_lock);
    if (run_owned && !by_run) {
        pthread_mutex_unlock(&lifecycle_lock);
        return weft__misuse(-EPERM, "weft_stop: the runtime belongs to weft_run; return from its main");
    }
    int expected = WEFT__RT_RUNNING;
    if (!atomic_compare_exchange_strong(&weft__rt.state, &expected, WEFT__RT_STOPPING) &&
        expected != WEFT__RT_STOPPING) {
        pthread_mutex_unlock(&lifecycle_lock);
        return -ESHUTDOWN;
    }
    /* The deadline is on weft's clock (virtual in deterministic mode); the
     * waits below are on the real one. */
    deadline = weft__real_deadline(deadline);
    int64_t next_cancel = 0;
    for (;;) {
        unsigned seen = atomic_load(&weft__rt.stop_futex);
        int64_t now = weft__clock_real();
        if (now >= next_cancel) {
            /* Again every 10 ms: a wait opened while a pass ran may have
             * missed both the pass and the state (see wait.c). */
            /* After det_begin_stop, every wait of a process fails at once:
             * passes from here would only add wake-ups at times the replay
             * does not control. */
            if (!atomic_load(&det_stop_begun))
                weft__proc_cancel_all();
            weft__wait_cancel_threads();
            /* A pass over a million processes takes a while: never spend
             * more than a fifth of the time on passes. */
            int64_t took = weft__clock_real() - now;
            next_cancel = now + (took * 5 > CANCEL_EVERY ? took * 5 : CANCEL_EVERY);
        }
        /* Outside threads first: one still inside weft_spawn has counted its
         * process by the time it leaves. Then no call may enter any more
         * (TEARDOWN), and a call that entered meanwhile is waited for:
         * both sides are sequentially consistent (see weft__outside_enter). */
        if (atomic_load(&weft__rt.outside_active) == 0 && weft__sched_live_procs() == 0) {
            atomic_store(&weft__rt.state, WEFT__RT_TEARDOWN);
            if (atomic_load(&weft__rt.outside_active) == 0)
                break;
            atomic_store(&weft__rt.state, WEFT__RT_STOPPING);
        }
        if (deadline >= 0 && now >= deadline) {
            pthread_mutex_unlock(&lifecycle_lock);
            return -ETIMEDOUT;
        }
        /* Exits bump stop_futex. */
        int64_t until = next_cancel;
        if (deadline >= 0 && deadline < until)
            until = deadline;
        weft__futex_wait(&weft__rt.stop_futex, seen, until);
    }
    weft__debug_stop();
    weft__actor_stop_all();
    weft__proc_reap_all();
    weft__registry_term();
    weft__graph_term();
    weft__stream_pool_term();
    weft__dvar_pool_term();
    weft__chan_pool_term();
    weft__offload_stop();
    weft__sched_stop();
    weft__io_stop();
    weft__msg_depot_term();
    if (atomic_load(&weft__det_on))
        weft__det_stop();
    weft__overflow_uninstall();
    weft__handle_table_term();
    weft__stack_pool_term();
    run_owned = false;
    atomic_store(&det_stop_begun, false);
    atomic_store(&weft__rt.state, WEFT__RT_STOPPED);
    pthread_mutex_unlock(&lifecycle_lock);
    return 0;
}

int weft_stop(int64_t deadline)
{
    if (weft__worker_current())
        return weft__misuse(-EPERM, "weft_stop: called from a process; return from it instead");
    return stop(deadline, false);
}

/* weft_run's thread waits on run_state, outside every weft call, so that
 * it does not count as an outside thread that could still wake a process. */
enum { RUN_MAIN_RUNNING, RUN_MAIN_ENDED, RUN_DETECTING, RUN_DEADLOCKED };

/* Deterministic mode: weft_run's shutdown starts on the det loop's thread,
 * at a step of the replayed execution, rather than whenever weft_run's own
 * thread gets to it (the clock could jump meanwhile, and a sleep end where
 * it would have been canceled). weft_stop then finds it STOPPING. */
static void det_begin_stop(void)
{
    int expected = WEFT__RT_RUNNING;
    if (atomic_load(&weft__det_on) &&
        atomic_compare_exchange_strong(&weft__rt.state, &expected, WEFT__RT_STOPPING)) {
        atomic_store(&det_stop_begun, true);
        weft__proc_cancel_all();
    }
}

/* Main's outcome, written before run_state says RUN_MAIN_ENDED. */
static intptr_t main_result;
static int main_failure;

void weft__runtime_main_ended(intptr_t result, int failure)
{
    unsigned expected = RUN_MAIN_RUNNING;
    main_result = result;
    main_failure = failure;
    /* The deterministic stop is done before weft_run's thread may go on to
     * its own (which then adds nothing); it is idempotent, and harmless if
     * a deadlock report wins the race below. */
    if (atomic_load(&weft__rt.run_state) == RUN_MAIN_RUNNING)
        det_begin_stop();
    if (atomic_compare_exchange_strong(&weft__rt.run_state, &expected, RUN_MAIN_ENDED))
        weft__futex_wake(&weft__rt.run_state, 1);
}

bool weft__runtime_main_running(void)
{
    return atomic_load(&weft__rt.run_state) == RUN_MAIN_RUNNING;
}

bool weft__runtime_deadlock_claim(void)
{
    unsigned expected = RUN_MAIN_RUNNING;
    return atomic_compare_exchange_strong(&weft__rt.run_state, &expected, RUN_DETECTING);
}

void weft__runtime_deadlocked(void)
{
    det_begin_stop();
    atomic_store(&weft__rt.run_state, RUN_DEADLOCKED);
    weft__futex_wake(&weft__rt.run_state, 1);
}

int weft_run(weft_proc_fn main_fn, void *arg, const weft_config *cfg, intptr_t *result)
{
    if (!main_fn)
        return weft__misuse(-EINVAL, "weft_run: main_fn is NULL");
    weft_config defaults;
    if (!cfg) {
        weft_config_init(&defaults);
        cfg = &defaults;
    }
    int err = start(cfg, true);
    if (err)
        return err;
    atomic_store(&weft__rt.run_state, RUN_MAIN_RUNNING);
    atomic_store(&weft__rt.detect_deadlock, true);
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.name = "main";
    weft_pid pid;
    intptr_t r = 0;
    err = weft__spawn(NULL, &pid, main_fn, arg, &opts, true);
    if (!err) {
        unsigned st;
        while ((st = atomic_load(&weft__rt.run_state)) == RUN_MAIN_RUNNING || st == RUN_DETECTING)
            weft__futex_wait(&weft__rt.run_state, st, WEFT_FOREVER);
        /* main_result is main's only once it ended first (RUN_MAIN_ENDED):
         * after a deadlock, main may still be writing it. */
        err = st == RUN_DEADLOCKED ? -EDEADLK : main_failure;
        if (st == RUN_MAIN_ENDED)
            r = main_result;
    }
    if (err == -EDEADLK && atomic_load(&weft__det_on))
        weft__det_print_seed();
    atomic_store(&weft__rt.detect_deadlock, false);
    int stop_err = stop(WEFT_FOREVER, true);
    if (!err && result)
        *result = r;
    return err ? err : stop_err;
}

int weft_workers(void)
{
    int st = atomic_load(&weft__rt.state);
    if (st != WEFT__RT_RUNNING && st != WEFT__RT_STOPPING)
        return -ESHUTDOWN;
    return (int)weft__rt.nworkers;
}
