/* test-misuse.c: the misuse matrix. Every public function of weft.h is called
 * with NULL pointers, never-valid handles (0, forged values, a handle of the
 * other type), stale handles (the object freed and its handle-table slot
 * reused by a new object), wrong sizes, with no runtime or one shutting
 * down, and from the wrong context; each call must return the code weft.h
 * documents, and leave every other object as it was. docs/misuse.md is the
 * same matrix as a table: keep the two in step.
 *
 * The matrix is one table of probes (function, column, contexts, expected
 * code, misuse or not). A probe may have variants (k: the bad inputs of its
 * cell) and, for handle columns, runs once per handle of the fixture's list
 * for that column. The contexts: a process and an outside thread of a running
 * runtime, a process and an outside thread of a runtime shutting down (a
 * weft_stop whose deadline passed), and no runtime (before the first start
 * and after a stop); rows named in_actor_* run their calls in the handler of
 * the fixture's actor, and rows named in_node_* in the body of the fixture
 * graph's custom node, asked from a process or an outside thread. After every
 * probe the fixture is checked: the live channels hold what they held, the
 * processes waiting on the gate channel still wait, the objects that took
 * stale slots are intact, the probing process's mailbox is empty and it traps
 * no exits, the actor took no stray message, the registry's name is in place.
 * At the end the waiters find their mailboxes as they were, and no link is
 * left (the probing process traps exits while the others end). */
#define _GNU_SOURCE /* setenv, unsetenv */
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_PROC_CHECKS
#include "test.h"

/* ---- contexts, columns, probes ------------------------------------------------------ */

enum ctx {
    IN_PROC = 1,     /* a process of a running runtime */
    IN_THREAD = 2,   /* an outside thread while a runtime runs */
    STOP_PROC = 4,   /* a process while the runtime shuts down */
    STOP_THREAD = 8, /* an outside thread while the runtime shuts down */
    NO_RT = 16       /* no runtime: before the first start, and after a stop */
};
#define RUN (IN_PROC | IN_THREAD)
#define STOPPING (STOP_PROC | STOP_THREAD)
#define LIVE (RUN | STOPPING)
#define ANY (LIVE | NO_RT)
#define OUTSIDE (IN_THREAD | STOP_THREAD | NO_RT)
#define INPROC (IN_PROC | STOP_PROC)

enum col { C_NULL, C_BAD, C_STALE, C_SIZE, C_RT, C_CTX, C_STATE };
static const char *const col_name[] = {"NULL", "never-valid", "stale", "size", "runtime", "context",
                                       "state"};

/* Which handle list a probe runs over (H_NONE: once, with handle 0). */
/* H_ENDED: pids of this runtime whose process or actor has ended (a send or
 * an exit signal to one is dropped, not refused); H_OLD: pids of an earlier
 * runtime (never pids of this one). */
/* H_DVAR, H_STREAM: handles that are no dataflow variable, no stream (nor
 * reader) or stale ones (a stream's list never holds a live reader: readers
 * are valid for reads). */
/* H_GRAPH: handles that are no graph, or stale ones. */
enum hkind { H_NONE, H_CHAN, H_PID, H_ENDED, H_OLD, H_DVAR, H_STREAM, H_GRAPH };

enum { HMAX = 128 };
enum { NGRAPHS = 7 }; /* the fixture's graphs whose state fx_check checks */
struct hlist {
    uint64_t h[HMAX];
    int n;
};

struct waiter {
    weft_chan gate;
    intptr_t result;
    long mail; /* messages its mailbox holds when the gate closes */
};

/* The io calls' fixture: plain descriptors and addresses, made once per
 * test before any runtime (they outlive runtimes), checked after every
 * probe (io_check). */
struct io_fx {
    char dir[64];        /* a directory for Unix sockets */
    char path[128];      /* dir/missing: no file there (upath) */
    weft_addr upath;
    int sp[2];           /* a Unix socket pair: sp[1] holds one byte ('q'), sp[0] nothing */
    int full[2];         /* a Unix socket pair: full[0] can take no more, nobody reads full[1] */
    int listen;          /* TCP, on laddr (127.0.0.1), nothing queued */
    weft_addr laddr;
    weft_addr refused;   /* 127.0.0.1 and a port nobody listens on */
    int unconnected;     /* a TCP socket, neither bound nor connected */
    int pipe[2];         /* a pipe, empty */
    int pipe_broken;     /* a pipe's write end whose read end is closed */
    int ufull;           /* a Unix listener on ufull_addr whose backlog is full */
    weft_addr ufull_addr;
    int held[8], nheld;  /* the connections filling ufull's backlog */
    int closed;          /* a descriptor number that was open and is closed */
};

/* The objects every probe must leave alone, and the handles it is given. */
struct fx {
    unsigned ctx;
    bool running;        /* the objects below exist (false: no runtime) */
    int nworkers;
    weft_chan gate;      /* rendezvous; peer, fresh_pid, chan_pid, detached and extra[] receive on it */
    weft_chan live;      /* capacity 4, holds SENT_A then SENT_B */
    weft_chan rv;        /* rendezvous, nobody waits on it */
    weft_chan closed;    /* capacity 1, closed, empty */
    weft_chan fresh;     /* capacity 2, holds FRESH_V; took the slot of a released channel */
    weft_chan pid_chan;  /* capacity 3; took the slot of a joined process */
    weft_pid peer;       /* joinable, named LONG_NAME (stored truncated) */
    weft_pid fresh_pid;  /* joinable, named "fresh"; took the slot of a joined process */
    weft_pid chan_pid;   /* joinable; took the slot of a released channel */
    weft_pid detached;   /* detached at spawn */
    weft_pid extra[8];   /* waiters spawned while looking for a reused slot */
    int nextra;
    weft_pid full;       /* a waiter whose mailbox of capacity 1 holds one message */
    weft_pid zombie;     /* returned, not joined */
    weft_pid actor;      /* answers the protocol of fx_actor, counts any other message */
    weft_chan actor_out; /* capacity 1: results of the probes the actor runs */
    weft_pid sup;        /* a supervisor of one child, "idle" */
    weft_pid sup_child;
    struct waiter w_peer, w_fresh, w_chan_pid, w_detached, w_extra, w_full;
    /* Handles to refuse: never valid; stale (freed, most with the slot
     * reused); valid until the runtime stopped (no-runtime context only). */
    struct hlist bad_ch, bad_pid, stale_ch, stale_pid, dead_ch, dead_pid, tmp;
    struct hlist ended_pid, old_pid; /* see H_ENDED, H_OLD */
    /* The dataflow layer's objects, and its handle lists (as the channels'). */
    weft_dvar dv_bound;  /* int, bound to SENT_A */
    weft_dvar dv_free;   /* int, unbound */
    weft_dvar dv_fresh;  /* int, bound to FRESH_V; took the slot of a released variable */
    weft_stream st;      /* BROADCAST of ints, capacity 1: full, its reader st_r holds SENT_A */
    weft_stream st_r;
    weft_stream st_q;    /* QUEUE of ints, capacity 2, holds SENT_B */
    weft_stream st_empty; /* QUEUE of ints, unbounded, empty */
    weft_stream st_closed; /* QUEUE of ints, closed, empty */
    weft_stream st_fresh; /* QUEUE of ints, capacity 2, holds FRESH_V; took a released stream's slot */
    struct hlist bad_dv, stale_dv, dead_dv, bad_st, stale_st, dead_st;
    /* The dataflow graphs (every port of ints unless said), and their
     * handle lists. */
    weft_graph g_build;  /* building: src -> map; map's output, the inputs of "wide" (8 bytes)
                            and "sink" loose (-ENOTCONN) */
    weft_graph g_ready;  /* building, valid: src -> snk, never run */
    weft_graph g_empty;  /* building, no nodes */
    weft_graph g_cycle;  /* building: maps ping and pong joined both ways by rendezvous edges */
    weft_graph g_fresh;  /* building: a custom node without ports; took a released graph's slot */
    weft_graph g_ended;  /* ran to its end: 3 values from src to snk, result 0 */
    weft_graph g_run;    /* running: the custom node "loop", its output joined to its input
                            (capacity 1, empty); its body runs probes (in_node) */
    weft_graph g_spare[4]; /* as g_ready: for the runs refused while shutting down */
    int g_count;         /* g_ended's source */
    weft_chan node_jobs, node_out; /* the probes g_run's node runs, and their results */
    char g_dot[NGRAPHS][640]; /* DOT of g_build .. g_run as built */
    int g_dotlen[NGRAPHS];
    struct hlist bad_g, stale_g, dead_g;
    int *elem;           /* exactly one int on the heap: an overrun is an ASan error */
    int fd_null, fd_ro, fd_broken; /* /dev/null for writing and for reading; a pipe without reader */
    struct io_fx io;     /* descriptors and addresses for the io calls (see io_open) */
};

struct probe {
    const char *id;   /* the probe's function, p_<id> */
    const char *fn;   /* the weft function it calls */
    enum col col;
    enum hkind hk;
    unsigned where;   /* contexts it runs in */
    int nvar;         /* variants: the inputs of the cell, k = 0..nvar-1 */
    int expect;
    bool misuse;      /* marked [misuse] in weft.h: aborts under WEFT_STRICT=1 */
    int (*call)(struct fx *f, uint64_t h, int k);
};

#define SENT_A 0x5A5A
#define SENT_B 0x6B6B
#define FRESH_V 0x7C7C
#define LONG_NAME "peer-0123456789-0123456789-0123456789"
#define TOUCHED 1000000 /* a probe's return when an error left its output changed */
enum { PEER_RESULT = 101, FRESH_RESULT = 102, CHAN_PID_RESULT = 103, DETACHED_RESULT = 104,
       EXTRA_RESULT = 105, FULL_RESULT = 106 };
#define STACK ((size_t)256 * 1024) /* the probing processes' stacks */

/* ---- failures: every one is kept (up to the log's size), not only the first --------- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char fail_log[32768];
static size_t fail_len;
static atomic_int nfail;
static atomic_long nprobes;
static char cur[256]; /* the probe being run, for fx_check's messages */
static bool trace;    /* MISUSE_TRACE set: each probe is named before it runs */

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    pthread_mutex_lock(&log_lock);
    atomic_fetch_add(&nfail, 1);
    size_t room = sizeof fail_log - fail_len - 2; /* and a newline, and the NUL */
    if (room > 256) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(fail_log + fail_len, room, fmt, ap);
        va_end(ap);
        fail_len += n < 0 ? 0 : (size_t)n < room ? (size_t)n : room - 1;
        fail_log[fail_len++] = '\n';
        fail_log[fail_len] = '\0';
    }
    pthread_mutex_unlock(&log_lock);
}

/* Prints every failure, then fails the case on the first. */
static void assert_no_failures(void)
{
    if (atomic_load(&nfail)) {
        fprintf(stderr, "misuse matrix: %d failure(s):\n%s", atomic_load(&nfail), fail_log);
        fflush(stderr);
    }
    if (getenv("MISUSE_VERBOSE"))
        fprintf(stderr, "misuse matrix: %ld probes\n", atomic_load(&nprobes));
    ASSERT_CHECKS();
    cr_assert_eq(atomic_load(&nfail), 0, "%d probe(s) failed (listed above)", atomic_load(&nfail));
}

/* ---- small helpers ------------------------------------------------------------------ */

static intptr_t ret_arg(void *arg)
{
    return (intptr_t)arg;
}

/* Waits on the gate: returns its result once the gate is closed (or the
 * runtime shuts down) if its mailbox holds what it held; anything else
 * means a probe reached it. */
static intptr_t gate_waiter(void *arg)
{
    struct waiter *w = arg;
    int v = 0;
    int rc = weft_chan_recv(w->gate, &v, sizeof v, WEFT_FOREVER);
    long mail = weft_mailbox_len();
    if (mail != w->mail)
        return -200000 - mail;
    if (rc == -EPIPE || rc == -ECANCELED)
        return w->result;
    return rc == 0 ? -100000 - v : rc;
}

static void hl_add(struct hlist *l, uint64_t h)
{
    if (l->n < HMAX)
        l->h[l->n++] = h;
    else
        check_fail(__LINE__, "handle list full");
}

static void hl_cat(struct hlist *dst, const struct hlist *src)
{
    for (int i = 0; i < src->n; i++)
        hl_add(dst, src->h[i]);
}

#define SLOT(h) ((uint32_t)(h))
#define GEN(h) ((h) >> 32)

/* Handles that name nothing, whatever the table holds: 0, slot 0, slots
 * beyond the table's directory, a generation no slot has had; and, given a
 * live handle, other generations of its slot and unused slots of its
 * generation. */
static void add_forged(struct hlist *l, uint64_t live)
{
    static const uint64_t fixed[] = {
        0, 1, 12345, 0xFFFFFFFFull, ~0ull, 1ull << 32, 0x100000001ull, 0x8000000000000000ull,
        0xdeadbeef12345ull, (1ull << 32) | ((1u << 28) + 1), (7ull << 32) | 0x10000000u,
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        hl_add(l, fixed[i]);
    for (uint32_t slot = 1; slot < 64; slot++)
        hl_add(l, 0x00ABCDEFull << 32 | slot);
    if (!live)
        return;
    hl_add(l, (uint64_t)SLOT(live));                    /* generation 0 */
    hl_add(l, live ^ (0x800000ull << 32));              /* far generation of a live slot */
    hl_add(l, live + (0x400000ull << 32));
    hl_add(l, live + (1ull << 32));                     /* the slot's next generation */
    hl_add(l, (live & ~0xFFFFFFFFull) | 4000);          /* an unused slot of a mapped chunk */
    hl_add(l, (live & ~0xFFFFFFFFull) | (5u << 12 | 7)); /* a slot of an unmapped chunk */
}

static const size_t wrong_sizes[] = {0, 1, 3, 5, 8, SIZE_MAX};
enum { NWRONG = sizeof wrong_sizes / sizeof wrong_sizes[0] };

static int64_t dl(int k) /* the two deadlines of a variant: do not block, or forever */
{
    return k ? WEFT_FOREVER : 0;
}

/* The three ways in: the weft_spawn macro (weft_spawn_at with this line), the
 * plain function, weft_spawn_at without a site. */
static int spawn_via(int entry, weft_pid *pid, weft_proc_fn fn, void *arg, const weft_spawn_opts *o)
{
    switch (entry % 3) {
    case 0:
        return weft_spawn(pid, fn, arg, o);
    case 1:
        return (weft_spawn)(pid, fn, arg, o);
    default:
        return weft_spawn_at(NULL, pid, fn, arg, o);
    }
}

/* A select of n cases out of the len in c: its return, or TOUCHED if it
 * failed but wrote a case's result. */
static int select_n_of(weft_case *c, size_t len, size_t n, int policy, int64_t deadline)
{
    for (size_t i = 0; i < len; i++)
        c[i].result = 777;
    int rc = weft_select(c, n, policy, deadline);
    for (size_t i = 0; rc < 0 && i < len; i++)
        if (c[i].result != 777)
            return TOUCHED;
    return rc;
}

static int select_untouched(weft_case *c, size_t n, int policy, int64_t deadline)
{
    return select_n_of(c, n, n, policy, deadline);
}

/* ---- the probes: runtime and memory ------------------------------------------------- */

static int p_strerror_unknown(struct fx *f, uint64_t h, int k)
{
    static const int codes[] = {1, 9999, -9999, -EXDEV, INT_MIN, INT_MAX};
    const char *s = weft_strerror(codes[k]);
    return s && s[0] && strcmp(s, weft_strerror(0)) != 0 ? 0 : 1;
}

static int p_now_any(struct fx *f, uint64_t h, int k)
{
    int64_t a = weft_now(), b = weft_now();
    return a > 0 && b >= a ? 0 : 1;
}

static int p_config_init_null(struct fx *f, uint64_t h, int k)
{
    weft_config_init(NULL);
    return 0;
}

static int p_opts_init_null(struct fx *f, uint64_t h, int k)
{
    weft_spawn_opts_init(NULL);
    return 0;
}

static void *plain_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, new_size);
}

static int p_set_allocator_busy(struct fx *f, uint64_t h, int k)
{
    return k ? weft_set_allocator(plain_alloc, NULL) : weft_set_allocator(NULL, NULL);
}

static int p_set_allocator_null(struct fx *f, uint64_t h, int k)
{
    return weft_set_allocator(NULL, NULL); /* restores the default */
}

static int p_run_null_fn(struct fx *f, uint64_t h, int k)
{
    intptr_t r = -7;
    int rc = weft_run(NULL, NULL, NULL, k ? NULL : &r);
    return r == -7 ? rc : TOUCHED;
}

/* Configurations weft_start and weft_run refuse with -EINVAL (k < 9) or
 * -E2BIG; and the limits, which they accept. */
static void bad_cfg(weft_config *cfg, int k)
{
    static const unsigned workers[] = {WEFT_WORKERS_MAX + 1, 100000};
    static const size_t small[] = {0, WEFT_STACK_MIN - 1};
    static const int sigs[] = {-1, NSIG, SIGSEGV, SIGKILL, SIGSTOP};
    static const size_t big[] = {WEFT_STACK_MAX + 1, SIZE_MAX};
    weft_config_init(cfg);
    cfg->workers = 1;
    if (k < 2)
        cfg->workers = workers[k];
    else if (k < 4)
        cfg->stack_size = small[k - 2];
    else if (k < 9)
        cfg->dump_signal = sigs[k - 4];
    else
        cfg->stack_size = big[k - 9];
}
enum { CFG_EINVAL = 9, CFG_E2BIG = 2 };

static int p_run_cfg_einval(struct fx *f, uint64_t h, int k)
{
    weft_config cfg;
    bad_cfg(&cfg, k);
    intptr_t r = -7;
    int rc = weft_run(ret_arg, (void *)(intptr_t)5, &cfg, &r);
    return r == -7 ? rc : TOUCHED;
}

static int p_run_cfg_e2big(struct fx *f, uint64_t h, int k)
{
    return p_run_cfg_einval(f, h, CFG_EINVAL + k);
}

/* The limits (k 0, 1), and cfg and result NULL (k 2). */
static int p_run_cfg_limits(struct fx *f, uint64_t h, int k)
{
    if (k == 2)
        return weft_run(ret_arg, NULL, NULL, NULL);
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = 1;
    cfg.stack_size = k ? WEFT_STACK_MAX : WEFT_STACK_MIN;
    cfg.dump_signal = 0;
    intptr_t r = -7;
    int rc = weft_run(ret_arg, (void *)(intptr_t)8, &cfg, &r);
    return rc == 0 && r != 8 ? TOUCHED : rc;
}

static int p_run_busy(struct fx *f, uint64_t h, int k)
{
    intptr_t r = -7;
    int rc = weft_run(ret_arg, NULL, NULL, &r);
    return r == -7 ? rc : TOUCHED;
}

static int p_start_cfg_einval(struct fx *f, uint64_t h, int k)
{
    weft_config cfg;
    bad_cfg(&cfg, k);
    return weft_start(&cfg);
}

static int p_start_cfg_e2big(struct fx *f, uint64_t h, int k)
{
    return p_start_cfg_einval(f, h, CFG_EINVAL + k);
}

static int p_start_null_cfg(struct fx *f, uint64_t h, int k)
{
    int rc = weft_start(NULL);
    return rc ? rc : weft_stop(WEFT_FOREVER);
}

static int p_start_busy(struct fx *f, uint64_t h, int k)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = 1;
    return weft_start(k ? &cfg : NULL);
}

static int p_stop(struct fx *f, uint64_t h, int k)
{
    return weft_stop(dl(k));
}

static int p_attach_none(struct fx *f, uint64_t h, int k)
{
    return weft_thread_attach();
}

static int p_detach_thread(struct fx *f, uint64_t h, int k)
{
    return weft_thread_detach();
}

static int p_attach_then_detach(struct fx *f, uint64_t h, int k)
{
    int a = weft_thread_attach();
    int d = a == 0 ? weft_thread_detach() : a;
    return a ? a : d;
}

static int p_workers_none(struct fx *f, uint64_t h, int k)
{
    return weft_workers();
}

static int p_workers_live(struct fx *f, uint64_t h, int k)
{
    return weft_workers() == f->nworkers ? 0 : 1;
}

/* ---- processes ------------------------------------------------------------------------ */

/* k % 3 the entry point, k / 3 joinable (opts NULL) or detached. */
static int p_spawn_null_fn(struct fx *f, uint64_t h, int k)
{
    weft_pid pid = 0;
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.detached = 1;
    return spawn_via(k, &pid, NULL, NULL, k / 3 ? &o : NULL);
}

static int p_spawn_null_pid(struct fx *f, uint64_t h, int k)
{
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.name = k / 3 ? "x" : NULL;
    return spawn_via(k, NULL, ret_arg, NULL, k / 3 ? &o : NULL);
}

static int p_spawn_stack_small(struct fx *f, uint64_t h, int k)
{
    weft_pid pid = 0;
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.stack_size = k / 3 ? WEFT_STACK_MIN - 1 : 0;
    return spawn_via(k, &pid, ret_arg, NULL, &o);
}

static int p_spawn_stack_big(struct fx *f, uint64_t h, int k)
{
    weft_pid pid = 0;
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.stack_size = k / 3 ? SIZE_MAX : WEFT_STACK_MAX + 1;
    return spawn_via(k, &pid, ret_arg, NULL, &o);
}

/* Workers out of range, pinned or not: k / 2 picks the worker. */
static int bad_worker(struct fx *f, int k)
{
    int n = f->running ? f->nworkers : 1;
    int workers[] = {n, n + 1, 1000, -2, INT_MIN};
    return workers[(k / 2) % 5];
}

static int p_spawn_bad_worker(struct fx *f, uint64_t h, int k)
{
    weft_pid pid = 0;
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.worker = bad_worker(f, k);
    o.pinned = k % 2;
    return spawn_via(k, &pid, ret_arg, NULL, &o);
}

/* Valid arguments: joinable with a pid, or detached without one. */
static int p_spawn_valid(struct fx *f, uint64_t h, int k)
{
    weft_pid pid = 0;
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.detached = k / 3;
    return spawn_via(k, o.detached ? NULL : &pid, ret_arg, NULL, &o);
}

/* The limits and a size between classes are accepted, by each entry point. */
static int p_spawn_stack_limits(struct fx *f, uint64_t h, int k)
{
    static const size_t good[] = {WEFT_STACK_MIN, WEFT_STACK_MIN + 1, 20000, WEFT_STACK_MAX};
    weft_pid pid = 0;
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.stack_size = good[k / 3];
    int rc = spawn_via(k, &pid, ret_arg, (void *)(intptr_t)(40 + k), &o);
    if (rc)
        return rc;
    intptr_t r = -1;
    rc = weft_join(pid, &r, WEFT_FOREVER);
    return rc == 0 && r != 40 + k ? TOUCHED : rc;
}

static int p_join_null_result(struct fx *f, uint64_t h, int k)
{
    weft_pid pid = 0;
    int rc = spawn_via(k, &pid, ret_arg, NULL, NULL);
    return rc ? rc : weft_join(pid, NULL, WEFT_FOREVER);
}

static int p_join(struct fx *f, uint64_t h, int k)
{
    intptr_t r = -7;
    int rc = weft_join(h, &r, dl(k));
    return r == -7 ? rc : TOUCHED;
}

static int p_join_self(struct fx *f, uint64_t h, int k)
{
    return p_join(f, weft_self(), k);
}

static int p_join_detached(struct fx *f, uint64_t h, int k)
{
    return p_join(f, f->detached, k);
}

static int p_detach(struct fx *f, uint64_t h, int k)
{
    return weft_detach(h);
}

static int p_detach_detached(struct fx *f, uint64_t h, int k)
{
    return weft_detach(f->detached);
}

static int p_self_outside(struct fx *f, uint64_t h, int k)
{
    return weft_self() == 0 ? 0 : 1;
}

static int p_self_in_proc(struct fx *f, uint64_t h, int k)
{
    char buf[WEFT_NAME_MAX];
    weft_pid me = weft_self();
    return me != 0 && weft_proc_name(me, buf, sizeof buf) > 0 ? 0 : 1;
}

static int p_yield(struct fx *f, uint64_t h, int k)
{
    return weft_yield();
}

static int p_sleep_past(struct fx *f, uint64_t h, int k)
{
    return weft_sleep(k ? weft_now() - 1000 * MS : 0);
}

static int p_sleep_stopping(struct fx *f, uint64_t h, int k)
{
    return k < 2 ? p_sleep_past(f, h, k) : weft_sleep(weft_now() + 5000 * MS);
}

static int p_exit_outside(struct fx *f, uint64_t h, int k)
{
    return weft_exit(k);
}

static int p_worker_id_outside(struct fx *f, uint64_t h, int k)
{
    return weft_worker_id();
}

static int p_worker_id_in_proc(struct fx *f, uint64_t h, int k)
{
    int id = weft_worker_id();
    return id >= 0 && id < f->nworkers ? 0 : id < 0 ? id : 1;
}

static int p_name_null_buf(struct fx *f, uint64_t h, int k)
{
    return weft_proc_name(f->peer ? f->peer : 0x100000001ull, NULL, k ? 0 : WEFT_NAME_MAX);
}

static int p_name_len0(struct fx *f, uint64_t h, int k)
{
    char buf[4] = "abc";
    int rc = weft_proc_name(f->peer ? f->peer : 0x100000001ull, buf, 0);
    return strcmp(buf, "abc") == 0 ? rc : TOUCHED;
}

static int p_name(struct fx *f, uint64_t h, int k)
{
    char buf[WEFT_NAME_MAX];
    return weft_proc_name(h, buf, sizeof buf);
}

/* Every buffer length from 1 to WEFT_NAME_MAX + 1, each buffer exactly that
 * long on the heap: the full length is returned, the copy truncated and
 * terminated, nothing written past the end. */
static int p_name_truncate(struct fx *f, uint64_t h, int k)
{
    size_t len = (size_t)k + 1, full = WEFT_NAME_MAX - 1;
    char *buf = malloc(len);
    memset(buf, 'x', len);
    int rc = weft_proc_name(f->peer, buf, len);
    size_t copied = len - 1 < full ? len - 1 : full;
    bool ok = rc == (int)full && buf[copied] == '\0' && memcmp(buf, LONG_NAME, copied) == 0;
    free(buf);
    return ok ? 0 : rc < 0 ? rc : TOUCHED;
}

/* ---- channels --------------------------------------------------------------------------- */

static int p_make_null(struct fx *f, uint64_t h, int k)
{
    return weft_chan_make(NULL, sizeof(int), k ? 4 : 0);
}

static int p_make_elem_bad(struct fx *f, uint64_t h, int k)
{
    static const size_t elem[] = {0, WEFT_CHAN_ELEM_MAX + 1, SIZE_MAX};
    weft_chan ch = 77;
    int rc = weft_chan_make(&ch, elem[k / 2], (size_t)(k % 2));
    return ch == 77 ? rc : TOUCHED;
}

/* Buffers above WEFT_CHAN_BUFFER_MAX, including products that wrap around
 * SIZE_MAX to a small number (16 and 0). */
static int p_make_buffer_big(struct fx *f, uint64_t h, int k)
{
    static const size_t elem[] = {1, WEFT_CHAN_ELEM_MAX, 16, 4, WEFT_CHAN_ELEM_MAX, 2};
    static const size_t cap[] = {WEFT_CHAN_BUFFER_MAX + 1, WEFT_CHAN_BUFFER_MAX / WEFT_CHAN_ELEM_MAX + 1,
                                 SIZE_MAX / 16 + 2, SIZE_MAX, SIZE_MAX / WEFT_CHAN_ELEM_MAX + 1,
                                 (size_t)1 << 63};
    weft_chan ch = 77;
    int rc = weft_chan_make(&ch, elem[k], cap[k]);
    return ch == 77 ? rc : TOUCHED;
}

/* The limits are accepted: the largest element, and (not under a sanitizer,
 * whose allocator would have to back it) the largest buffer. */
static int p_make_limits(struct fx *f, uint64_t h, int k)
{
    static const size_t elem[] = {1, WEFT_CHAN_ELEM_MAX, WEFT_CHAN_ELEM_MAX, WEFT_CHAN_ELEM_MAX};
    static const size_t cap[] = {0, 0, 1, WEFT_CHAN_BUFFER_MAX / WEFT_CHAN_ELEM_MAX};
    if (k == 3 && test_sanitized())
        return 0;
    weft_chan ch = 0;
    int rc = weft_chan_make(&ch, elem[k], cap[k]);
    if (rc)
        return rc;
    int c = weft_chan_cap(ch);
    rc = weft_chan_release(ch);
    return rc ? rc : c != (int)cap[k] ? TOUCHED : 0;
}

static int p_make_valid(struct fx *f, uint64_t h, int k)
{
    weft_chan ch = 77;
    int rc = weft_chan_make(&ch, sizeof(int), k ? 4 : 0);
    return rc == 0 ? (weft_chan_release(ch), 0) : ch == 77 ? rc : TOUCHED;
}

/* k: bit 0 the deadline, bit 1 the channel (buffered with elements, or the
 * gate with receivers waiting). */
static weft_chan pick(struct fx *f, int k)
{
    return k & 2 ? f->gate : f->live;
}

static int p_send_null(struct fx *f, uint64_t h, int k)
{
    return weft_chan_send(pick(f, k), NULL, sizeof(int), dl(k & 1));
}

static int p_recv_null(struct fx *f, uint64_t h, int k)
{
    return weft_chan_recv(pick(f, k), NULL, sizeof(int), dl(k & 1));
}

static int p_send(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return weft_chan_send(h, f->elem, sizeof(int), dl(k));
}

static int p_recv(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    int rc = weft_chan_recv(h, f->elem, sizeof(int), dl(k));
    return rc < 0 && *f->elem != 42 ? TOUCHED : rc;
}

/* Wrong sizes on the buffered channel (room and elements), the rendezvous
 * channel nobody waits on and the gate (receivers waiting), each with both
 * deadlines. The buffer holds one int: reading or writing size bytes would
 * be an ASan error. */
static weft_chan pick3(struct fx *f, int k)
{
    weft_chan chans[] = {f->live, f->rv, f->gate};
    return chans[k % 3];
}

static int p_send_size(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return weft_chan_send(pick3(f, k), f->elem, wrong_sizes[(k / 3) % NWRONG], dl(k / (3 * NWRONG)));
}

static int p_recv_size(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    int rc = weft_chan_recv(pick3(f, k), f->elem, wrong_sizes[(k / 3) % NWRONG], dl(k / (3 * NWRONG)));
    return rc < 0 && *f->elem != 42 ? TOUCHED : rc;
}

/* Operations that would wait, while the runtime shuts down. */
static int p_send_blocking(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return weft_chan_send(f->rv, f->elem, sizeof(int), k ? weft_now() + 5000 * MS : WEFT_FOREVER);
}

static int p_recv_blocking(struct fx *f, uint64_t h, int k)
{
    return weft_chan_recv(f->rv, f->elem, sizeof(int), k ? weft_now() + 5000 * MS : WEFT_FOREVER);
}

static int p_close(struct fx *f, uint64_t h, int k)
{
    return weft_chan_close(h);
}

static int p_close_twice(struct fx *f, uint64_t h, int k)
{
    return weft_chan_close(f->closed);
}

static int p_retain(struct fx *f, uint64_t h, int k)
{
    return weft_chan_retain(h);
}

static int p_release(struct fx *f, uint64_t h, int k)
{
    return weft_chan_release(h);
}

/* A release after the last one: k 0 at once, k 1 once another channel has
 * taken the slot (which must survive it). */
static int p_release_twice(struct fx *f, uint64_t h, int k)
{
    weft_chan a = 0, b = 0;
    int rc = weft_chan_make(&a, sizeof(int), 1);
    if (rc || (rc = weft_chan_release(a)))
        return rc ? rc : TOUCHED;
    if (k && (rc = weft_chan_make(&b, sizeof(int), 1)))
        return rc;
    rc = weft_chan_release(a);
    if (k && (weft_chan_cap(b) != 1 || weft_chan_release(b) != 0 || weft_chan_release(b) != -EBADF))
        return TOUCHED;
    return rc;
}

static int p_len(struct fx *f, uint64_t h, int k)
{
    return weft_chan_len(h);
}

static int p_cap(struct fx *f, uint64_t h, int k)
{
    return weft_chan_cap(h);
}

/* ---- dataflow variables ------------------------------------------------------------------ */

static int p_dvar_make_null(struct fx *f, uint64_t h, int k)
{
    return weft_dvar_make(NULL, k ? WEFT_DVAR_MAX : 1);
}

static int p_dvar_make_size(struct fx *f, uint64_t h, int k)
{
    static const size_t sizes[] = {0, WEFT_DVAR_MAX + 1, SIZE_MAX};
    weft_dvar dv = 77;
    int rc = weft_dvar_make(&dv, sizes[k]);
    return dv == 77 ? rc : TOUCHED;
}

/* The smallest and the largest value: made, bound, read back, released. */
static int p_dvar_make_limits(struct fx *f, uint64_t h, int k)
{
    size_t n = k ? WEFT_DVAR_MAX : 1;
    unsigned char *in = malloc(n), *out = calloc(1, n);
    memset(in, 0x5A, n);
    weft_dvar dv = 0;
    int rc = weft_dvar_make(&dv, n);
    if (rc == 0) {
        int a = weft_dvar_bind(dv, in, n), b = weft_dvar_get(dv, out, n, 0);
        int c = weft_dvar_release(dv);
        rc = a ? a : b ? b : c ? c : memcmp(in, out, n) ? TOUCHED : 0;
    }
    free(in);
    free(out);
    return rc;
}

static int p_dvar_make_valid(struct fx *f, uint64_t h, int k)
{
    weft_dvar dv = 77;
    int rc = weft_dvar_make(&dv, sizeof(int));
    return rc == 0 ? (weft_dvar_release(dv), 0) : dv == 77 ? rc : TOUCHED;
}

/* k bit 1: the bound or the free variable (no runtime: forged handles). */
static weft_dvar pick_dv(struct fx *f, int k)
{
    return f->running ? (k & 2 ? f->dv_free : f->dv_bound) : 0x100000001ull;
}

static int p_dvar_bind_null(struct fx *f, uint64_t h, int k)
{
    return weft_dvar_bind(pick_dv(f, k), NULL, sizeof(int));
}

static int p_dvar_bind(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return weft_dvar_bind(h, f->elem, sizeof(int));
}

/* Wrong sizes, on the bound and the free variable (which stays unbound). */
static int p_dvar_bind_size(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return weft_dvar_bind(pick_dv(f, (k / NWRONG) * 2), f->elem, wrong_sizes[k % NWRONG]);
}

static int p_dvar_bind_twice(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return k ? weft_dvar_fail(f->dv_bound, -EIO) : weft_dvar_bind(f->dv_bound, f->elem, sizeof(int));
}

static int p_dvar_fail_err(struct fx *f, uint64_t h, int k)
{
    static const int errs[] = {0, 1, INT_MAX};
    return weft_dvar_fail(pick_dv(f, 2), errs[k]);
}

static int p_dvar_fail(struct fx *f, uint64_t h, int k)
{
    return weft_dvar_fail(h, -EIO);
}

/* k bit 0: the deadline, bit 1: the variable. */
static int p_dvar_get_null(struct fx *f, uint64_t h, int k)
{
    return weft_dvar_get(pick_dv(f, k), NULL, sizeof(int), dl(k & 1));
}

static int p_dvar_get(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    int rc = weft_dvar_get(h, f->elem, sizeof(int), dl(k));
    return rc < 0 && *f->elem != 42 ? TOUCHED : rc;
}

/* Wrong sizes on both variables, with both deadlines: the one-int buffer
 * is never written past (nor written at all). */
static int p_dvar_get_size(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    int rc = weft_dvar_get(pick_dv(f, ((k / NWRONG) % 2) * 2), f->elem, wrong_sizes[k % NWRONG],
                           dl(k / (2 * NWRONG)));
    return *f->elem != 42 ? TOUCHED : rc;
}

static int p_dvar_get_unbound(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    int rc = weft_dvar_get(f->dv_free, f->elem, sizeof(int), 0);
    return *f->elem != 42 ? TOUCHED : rc;
}

static int p_dvar_get_blocking(struct fx *f, uint64_t h, int k)
{
    return weft_dvar_get(f->dv_free, f->elem, sizeof(int), k ? weft_now() + 5000 * MS : WEFT_FOREVER);
}

static int p_dvar_bound(struct fx *f, uint64_t h, int k)
{
    return weft_dvar_bound(h);
}

static int p_dvar_retain(struct fx *f, uint64_t h, int k)
{
    return weft_dvar_retain(h);
}

static int p_dvar_release(struct fx *f, uint64_t h, int k)
{
    return weft_dvar_release(h);
}

/* A release after the last one: k 0 at once, k 1 once another variable has
 * taken the slot (which must survive it). */
static int p_dvar_release_twice(struct fx *f, uint64_t h, int k)
{
    weft_dvar a = 0, b = 0;
    int rc = weft_dvar_make(&a, sizeof(int));
    if (rc || (rc = weft_dvar_release(a)))
        return rc ? rc : TOUCHED;
    if (k && (rc = weft_dvar_make(&b, sizeof(int))))
        return rc;
    rc = weft_dvar_release(a);
    if (k && (weft_dvar_bound(b) != 0 || weft_dvar_release(b) != 0 || weft_dvar_release(b) != -EBADF))
        return TOUCHED;
    return rc;
}

/* ---- streams -------------------------------------------------------------------------------- */

static int p_smake_null(struct fx *f, uint64_t h, int k)
{
    return weft_stream_make(NULL, sizeof(int), (size_t)k, k % 2);
}

/* Element sizes 0, above the largest; unknown modes. */
static int p_smake_bad(struct fx *f, uint64_t h, int k)
{
    static const size_t elem[] = {0, WEFT_DVAR_MAX + 1, SIZE_MAX, 4, 4, 4, 4};
    static const int modes[] = {0, 1, 0, -1, 2, INT_MAX, INT_MIN};
    weft_stream s = 77;
    int rc = weft_stream_make(&s, elem[k], (size_t)(k % 2), modes[k]);
    return s == 77 ? rc : TOUCHED;
}

/* Rings above WEFT_CHAN_BUFFER_MAX, products that wrap included. */
static int p_smake_big(struct fx *f, uint64_t h, int k)
{
    static const size_t elem[] = {1, WEFT_DVAR_MAX, 16, 4, WEFT_DVAR_MAX, 2};
    static const size_t cap[] = {WEFT_CHAN_BUFFER_MAX + 1, WEFT_CHAN_BUFFER_MAX / WEFT_DVAR_MAX + 1,
                                 SIZE_MAX / 16 + 2, SIZE_MAX, SIZE_MAX / WEFT_DVAR_MAX + 1,
                                 (size_t)1 << 63};
    weft_stream s = 77;
    int rc = weft_stream_make(&s, elem[k], cap[k], k % 2);
    return s == 77 ? rc : TOUCHED;
}

/* The limits: the smallest and the largest element, unbounded and bounded,
 * both modes; a value goes through each. */
static int p_smake_limits(struct fx *f, uint64_t h, int k)
{
    size_t n = k / 2 ? WEFT_DVAR_MAX : 1;
    unsigned char *in = malloc(n), *out = calloc(1, n);
    memset(in, 0x3C, n);
    weft_stream s = 0, r = 0;
    int rc = weft_stream_make(&s, n, (size_t)(k % 2), k % 2);
    if (rc == 0) {
        int a = weft_stream_reader(s, &r);
        int b = a ? a : weft_stream_write(s, in, n, 0);
        int c = b ? b : weft_stream_read(r, out, n, 0);
        int d = a ? 0 : weft_stream_release(r);
        int e = weft_stream_release(s);
        rc = a ? a : b ? b : c ? c : d ? d : e ? e : memcmp(in, out, n) ? TOUCHED : 0;
    }
    free(in);
    free(out);
    return rc;
}

static int p_smake_valid(struct fx *f, uint64_t h, int k)
{
    weft_stream s = 77;
    int rc = weft_stream_make(&s, sizeof(int), (size_t)k, k);
    return rc == 0 ? (weft_stream_release(s), 0) : s == 77 ? rc : TOUCHED;
}

static int p_sreader_null(struct fx *f, uint64_t h, int k)
{
    return weft_stream_reader(f->running ? (k ? f->st_q : f->st) : 0x100000001ull, NULL);
}

static int p_sreader(struct fx *f, uint64_t h, int k)
{
    weft_stream r = 77;
    int rc = weft_stream_reader(h, &r);
    return r == 77 ? rc : TOUCHED;
}

/* A reader's handle names no stream to make readers of, write or close. */
static int p_sreader_of_reader(struct fx *f, uint64_t h, int k)
{
    weft_stream r = 77;
    int rc = weft_stream_reader(f->st_r, &r);
    return r == 77 ? rc : TOUCHED;
}

/* k bit 0: the deadline; bit 1: the full broadcast stream or the queue. */
static weft_stream pick_st(struct fx *f, int k)
{
    return f->running ? (k & 2 ? f->st_q : f->st) : 0x100000001ull;
}

static int p_swrite_null(struct fx *f, uint64_t h, int k)
{
    return weft_stream_write(pick_st(f, k), NULL, sizeof(int), dl(k & 1));
}

static int p_swrite(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return weft_stream_write(h, f->elem, sizeof(int), dl(k));
}

static int p_swrite_reader(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return weft_stream_write(f->st_r, f->elem, sizeof(int), dl(k));
}

/* Wrong sizes on the full broadcast stream, the queue with room and the
 * empty queue, both deadlines: nothing written, no reader woken. */
static weft_stream pick_st3(struct fx *f, int k)
{
    weft_stream s[] = {f->st, f->st_q, f->st_empty};
    return s[k % 3];
}

static int p_swrite_size(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return weft_stream_write(pick_st3(f, k), f->elem, wrong_sizes[(k / 3) % NWRONG],
                             dl(k / (3 * NWRONG)));
}

static int p_swrite_closed(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return weft_stream_write(f->st_closed, f->elem, sizeof(int), dl(k));
}

static int p_swrite_full(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return weft_stream_write(f->st, f->elem, sizeof(int), k ? weft_now() + 2 * MS : 0);
}

static int p_swrite_blocking(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return weft_stream_write(f->st, f->elem, sizeof(int), k ? weft_now() + 5000 * MS : WEFT_FOREVER);
}

/* k bit 0: the deadline; bit 1: the reader or the queue (both hold a value). */
static int p_sread_null(struct fx *f, uint64_t h, int k)
{
    return weft_stream_read(f->running ? (k & 2 ? f->st_q : f->st_r) : 0x100000001ull, NULL,
                            sizeof(int), dl(k & 1));
}

static int p_sread(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    int rc = weft_stream_read(h, f->elem, sizeof(int), dl(k));
    return rc < 0 && *f->elem != 42 ? TOUCHED : rc;
}

/* A broadcast stream's own handle is read through a reader. */
static int p_sread_broadcast(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    int rc = weft_stream_read(f->st, f->elem, sizeof(int), dl(k));
    return *f->elem != 42 ? TOUCHED : rc;
}

/* Wrong sizes on the reader (a value waiting), the queue (one too) and the
 * empty queue, both deadlines. */
static int p_sread_size(struct fx *f, uint64_t h, int k)
{
    weft_stream s[] = {f->st_r, f->st_q, f->st_empty};
    *f->elem = 42;
    int rc = weft_stream_read(s[k % 3], f->elem, wrong_sizes[(k / 3) % NWRONG], dl(k / (3 * NWRONG)));
    return *f->elem != 42 ? TOUCHED : rc;
}

static int p_sread_closed(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    int rc = weft_stream_read(f->st_closed, f->elem, sizeof(int), dl(k));
    return *f->elem != 42 ? TOUCHED : rc;
}

static int p_sread_empty(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    int rc = weft_stream_read(f->st_empty, f->elem, sizeof(int), k ? weft_now() + 2 * MS : 0);
    return *f->elem != 42 ? TOUCHED : rc;
}

static int p_sread_blocking(struct fx *f, uint64_t h, int k)
{
    return weft_stream_read(f->st_empty, f->elem, sizeof(int),
                            k ? weft_now() + 5000 * MS : WEFT_FOREVER);
}

static int p_sclose(struct fx *f, uint64_t h, int k)
{
    return weft_stream_close(h);
}

static int p_sclose_reader(struct fx *f, uint64_t h, int k)
{
    return weft_stream_close(f->st_r);
}

static int p_sclose_twice(struct fx *f, uint64_t h, int k)
{
    return weft_stream_close(f->st_closed);
}

static int p_slen(struct fx *f, uint64_t h, int k)
{
    return (int)weft_stream_len(h);
}

static int p_sretain(struct fx *f, uint64_t h, int k)
{
    return weft_stream_retain(h);
}

static int p_srelease(struct fx *f, uint64_t h, int k)
{
    return weft_stream_release(h);
}

/* A release after the last one, of a stream (k 0) and of a reader (k 1),
 * whose slot a new stream has then taken (k 2, 3: it survives). */
static int p_srelease_twice(struct fx *f, uint64_t h, int k)
{
    weft_stream s = 0, r = 0, t = 0;
    int rc = weft_stream_make(&s, sizeof(int), 1, WEFT_STREAM_BROADCAST);
    if (rc || (rc = weft_stream_reader(s, &r)))
        return rc;
    if ((rc = weft_stream_release(r)) || (rc = weft_stream_release(s)))
        return rc;
    if (k / 2 && (rc = weft_stream_make(&t, sizeof(int), 1, WEFT_STREAM_QUEUE)))
        return rc;
    rc = weft_stream_release(k % 2 ? r : s);
    if (k / 2 && (weft_stream_len(t) != 0 || weft_stream_release(t) != 0 ||
                  weft_stream_release(t) != -EBADF))
        return TOUCHED;
    return rc;
}

/* ---- select ---------------------------------------------------------------------------- */

static int p_select_null_cases(struct fx *f, uint64_t h, int k)
{
    return weft_select(NULL, k ? WEFT_SELECT_MAX : 1, k % 2, dl(k));
}

static int p_select_null_buf(struct fx *f, uint64_t h, int k)
{
    weft_case c[2] = {WEFT_RECV(f->rv, f->elem), WEFT_RECV(f->live, f->elem)};
    c[1].buf = NULL;
    c[1].kind = k % 2 ? WEFT_CASE_SEND : WEFT_CASE_RECV;
    return select_untouched(c, 2, WEFT_SELECT_FAIR, dl(k / 2));
}

static int p_select_n(struct fx *f, uint64_t h, int k)
{
    static const size_t ns[] = {0, WEFT_SELECT_MAX + 1, SIZE_MAX};
    weft_case c[1] = {WEFT_RECV(f->live, f->elem)};
    return select_n_of(c, 1, ns[k], WEFT_SELECT_PRIORITY, 0);
}

static int p_select_kind(struct fx *f, uint64_t h, int k)
{
    static const int kinds[] = {0, WEFT_CASE_FD + 1, -1, INT_MAX, INT_MIN};
    weft_case c[2] = {WEFT_RECV(f->live, f->elem), WEFT_RECV(f->rv, f->elem)};
    c[1].kind = kinds[k];
    return select_untouched(c, 2, WEFT_SELECT_FAIR, 0);
}

static int p_select_policy(struct fx *f, uint64_t h, int k)
{
    static const int policies[] = {-1, WEFT_SELECT_PRIORITY + 1, INT_MAX, INT_MIN};
    weft_case c[1] = {WEFT_RECV(f->live, f->elem)};
    return select_untouched(c, 1, policies[k], 0);
}

/* A bad handle in case 1, beside case 0 on the buffered channel, which is
 * ready for a receive: nothing completes. k: bit 0 the bad case's kind, bit
 * 1 the policy, bit 2 the deadline. */
static int p_select(struct fx *f, uint64_t h, int k)
{
    int in = 0;
    *f->elem = 42;
    weft_case c[2] = {WEFT_RECV(f->live, &in), WEFT_RECV(h, f->elem)};
    if (k & 1)
        c[1].kind = WEFT_CASE_SEND;
    return select_untouched(c, 2, (k >> 1) & 1, dl(k & 4));
}

/* A wrong size in case 1 (k: size, kind, channel live or gate), beside a
 * ready receive. */
static int p_select_size(struct fx *f, uint64_t h, int k)
{
    int in = 0;
    *f->elem = 42;
    weft_case c[2] = {WEFT_RECV(f->live, &in), WEFT_RECV((k / (2 * NWRONG)) ? f->gate : f->live, f->elem)};
    c[1].size = wrong_sizes[k % NWRONG];
    if ((k / NWRONG) % 2)
        c[1].kind = WEFT_CASE_SEND;
    return select_untouched(c, 2, WEFT_SELECT_FAIR, dl(k % 2));
}

/* A dataflow case of the given kind with a bad handle (k bit 0: the
 * policy; bit 1: the deadline), beside a ready receive: nothing completes. */
static int select_df(struct fx *f, int kind, uint64_t h, int k)
{
    int in = 0;
    *f->elem = 42;
    weft_case c[2] = {WEFT_RECV(f->live, &in), WEFT_DVAR_CASE(h, f->elem)};
    c[1].kind = kind;
    int rc = select_untouched(c, 2, k & 1, dl(k & 2));
    return rc < 0 && (*f->elem != 42 || in != 0) ? TOUCHED : rc;
}

static int p_select_dvar(struct fx *f, uint64_t h, int k)
{
    return select_df(f, WEFT_CASE_DVAR, h, k);
}

static int p_select_stream(struct fx *f, uint64_t h, int k)
{
    return select_df(f, WEFT_CASE_STREAM, h, k);
}

/* Wrong sizes in a dataflow case (k: size, then the bound variable, the
 * reader and the queue), beside a ready receive. */
static int p_select_df_size(struct fx *f, uint64_t h, int k)
{
    int in = 0;
    *f->elem = 42;
    weft_case c[2] = {WEFT_RECV(f->live, &in), WEFT_DVAR_CASE(f->dv_bound, f->elem)};
    int which = (k / NWRONG) % 3;
    if (which) {
        c[1].kind = WEFT_CASE_STREAM;
        c[1].handle = which == 1 ? f->st_r : f->st_q;
    }
    c[1].size = wrong_sizes[k % NWRONG];
    int rc = select_untouched(c, 2, WEFT_SELECT_FAIR, dl(k / (3 * NWRONG)));
    return rc < 0 && (*f->elem != 42 || in != 0) ? TOUCHED : rc;
}

/* A broadcast stream's own handle as a case (beside a ready receive). */
static int p_select_df_broadcast(struct fx *f, uint64_t h, int k)
{
    int in = 0;
    *f->elem = 42;
    weft_case c[2] = {WEFT_RECV(f->live, &in), WEFT_STREAM_CASE(f->st, f->elem)};
    return select_untouched(c, 2, k % 2, dl(k / 2));
}

/* WEFT_SELECT_MAX cases are accepted (none ready: -ETIMEDOUT). */
static int p_select_max(struct fx *f, uint64_t h, int k)
{
    weft_case *c = malloc(WEFT_SELECT_MAX * sizeof *c);
    for (int i = 0; i < WEFT_SELECT_MAX; i++)
        c[i] = WEFT_RECV(f->rv, f->elem);
    int rc = select_untouched(c, WEFT_SELECT_MAX, k, 0);
    free(c);
    return rc;
}

/* Disabled cases are not checked: garbage in them is ignored. k 0: beside
 * an enabled receive on the rendezvous channel; k 1: every case disabled. */
static int p_select_disabled(struct fx *f, uint64_t h, int k)
{
    weft_case c[3] = {
        {.kind = 99, .disabled = 1, .handle = ~0ull, .buf = NULL, .size = 0},
        {.kind = WEFT_CASE_SEND, .disabled = 1, .handle = f->live, .buf = NULL, .size = SIZE_MAX},
        WEFT_RECV(f->rv, f->elem),
    };
    c[2].disabled = k;
    return select_untouched(c, 3, WEFT_SELECT_FAIR, 0);
}

static int p_select_blocking(struct fx *f, uint64_t h, int k)
{
    weft_case c[1] = {WEFT_RECV(f->rv, f->elem)};
    c[0].disabled = k == 2;
    return select_untouched(c, 1, WEFT_SELECT_FAIR, k == 1 ? weft_now() + 5000 * MS : WEFT_FOREVER);
}

/* ---- diagnostics ------------------------------------------------------------------------ */

/* Descriptors weft_dump cannot write to: negative, never open, read-only, a
 * pipe whose reader is gone (SIGPIPE is ignored in these tests). */
static int p_dump_bad_fd(struct fx *f, uint64_t h, int k)
{
    int fds[] = {-1, INT_MIN, INT_MAX, 1 << 20, f->fd_ro, f->fd_broken};
    return weft_dump(fds[k]);
}

static int p_dump_ok(struct fx *f, uint64_t h, int k)
{
    return weft_dump(f->fd_null);
}

/* ---- mailboxes, request and reply, actors, links, registry, supervisors -------------------- */

/* The fixture actor's protocol (user tags, >= 1). */
enum { TAG_USER = 1, TAG_PROBE = 0x4D310001, TAG_ECHO, TAG_DEFER, TAG_FLUSH, TAG_NOREPLY };
#define BROKE 1000001 /* a probe's own machinery failed: not weft's answer to the probe */
#define REASON ((intptr_t)77) /* an abnormal exit reason */

typedef int (*probe_fn)(struct fx *f, uint64_t h, int k);

/* The fixture actor's state: what it took besides its protocol (must stay
 * 0: every message a probe sends to it is refused), and a request it has
 * not answered yet. */
static struct actor_box {
    atomic_long stray;
    weft_msg deferred;
    bool has_deferred;
} abox;

/* A probe for the actor to run in its handler. */
struct actor_job {
    probe_fn fn;
    struct fx *f;
    uint64_t h;
    int k;
};

static void fx_actor(void *state, weft_msg *m)
{
    struct actor_box *b = state;
    switch (m->tag) {
    case TAG_PROBE: {
        struct actor_job j;
        memcpy(&j, m->data, sizeof j);
        int rc = j.fn(j.f, j.h, j.k);
        if (weft_chan_send(j.f->actor_out, &rc, sizeof rc, 0) != 0)
            atomic_fetch_add(&b->stray, 1000);
        break;
    }
    case TAG_ECHO:
        if (weft_reply(m, TAG_ECHO, m->data, m->size) != 0)
            atomic_fetch_add(&b->stray, 1000);
        break;
    case TAG_DEFER: /* answered at TAG_FLUSH, when the caller has given up */
        b->deferred = (weft_msg){.tag = m->tag, .from = m->from, .ref = m->ref};
        b->has_deferred = true;
        break;
    case TAG_FLUSH:
        if (!b->has_deferred || weft_reply(&b->deferred, TAG_ECHO, NULL, 0) != 0)
            atomic_fetch_add(&b->stray, 1000);
        b->has_deferred = false;
        break;
    case TAG_NOREPLY:
        break;
    default:
        atomic_fetch_add(&b->stray, 1);
    }
}

static void nop_actor(void *state, weft_msg *m)
{
}

/* Runs fn(f, h, k) in the fixture actor's handler and returns its result
 * (from a process or an outside thread of a running runtime). */
static int in_actor(struct fx *f, probe_fn fn, uint64_t h, int k)
{
    struct actor_job j = {fn, f, h, k};
    int out = 0;
    if (weft_send(f->actor, TAG_PROBE, &j, sizeof j, 0) != 0 ||
        weft_chan_recv(f->actor_out, &out, sizeof out, WEFT_FOREVER) != 0)
        return BROKE;
    return out;
}
#define IN_ACTOR(id)                                              \
    static int p_in_actor_##id(struct fx *f, uint64_t h, int k)   \
    {                                                             \
        return in_actor(f, a_##id, h, k);                         \
    }

static int a_nop(struct fx *f, uint64_t h, int k)
{
    return 0;
}

/* A live mailbox that a refused send must leave as it was: the caller's own
 * (fx_check sees it empty), else the fixture actor's (it counts strays);
 * with no runtime, a pid of nothing. */
static weft_pid mailbox_of(struct fx *f)
{
    weft_pid me = weft_self();
    return me ? me : f->running ? f->actor : 0x100000001ull;
}

/* A live process: the peer (no runtime: a pid of nothing). */
static weft_pid live_pid(struct fx *f)
{
    return f->running ? f->peer : 0x100000001ull;
}

/* Takes every message of the caller's mailbox; returns how many there were. */
static int drain(void)
{
    weft_msg m;
    int n = 0;
    while (weft_recv(&m, NULL, 0) == 0) {
        weft_msg_free(&m);
        n++;
    }
    return n;
}

static const int bad_tags[] = {0, WEFT_TAG_EXIT, WEFT_TAG_DOWN, -3, INT_MIN};
enum { NTAGS = sizeof bad_tags / sizeof bad_tags[0] };
static const size_t big_sizes[] = {WEFT_MSG_MAX + 1, WEFT_MSG_MAX * 2, SIZE_MAX / 2, SIZE_MAX};
enum { NBIG = sizeof big_sizes / sizeof big_sizes[0] };
static const size_t null_sizes[] = {1, 4, WEFT_MSG_MAX};
enum { NNULLS = sizeof null_sizes / sizeof null_sizes[0] };

/* weft_send: k % NTAGS the tag, k / NTAGS with a payload or not. */
static int p_msend_tag(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    bool data = k / NTAGS == 0;
    return weft_send(mailbox_of(f), bad_tags[k % NTAGS], data ? f->elem : NULL, data ? sizeof(int) : 0,
                     0);
}

/* Sizes above WEFT_MSG_MAX, with the one-int heap block (nothing may be
 * read from it) or NULL, both deadlines. */
static int p_msend_size(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return weft_send(mailbox_of(f), TAG_USER, (k / NBIG) % 2 ? NULL : f->elem, big_sizes[k % NBIG],
                     dl(k / (2 * NBIG)));
}

static int p_msend_null_data(struct fx *f, uint64_t h, int k)
{
    return weft_send(mailbox_of(f), TAG_USER, NULL, null_sizes[k % NNULLS], dl(k / NNULLS));
}

static int p_msend(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return weft_send(h, TAG_USER, f->elem, sizeof(int), dl(k));
}

/* The full bounded mailbox: deadline 0 gives -EAGAIN, a deadline soon
 * -ETIMEDOUT. */
static int p_msend_full_now(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return weft_send(f->full, TAG_USER, f->elem, sizeof(int), 0);
}

static int p_msend_full_wait(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return weft_send(f->full, TAG_USER, f->elem, sizeof(int), weft_now() + 2 * MS);
}

/* A valid send to the caller's own mailbox (no payload, or an int) comes
 * back as sent. */
static int p_msend_self(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    weft_pid me = weft_self();
    int rc = weft_send(me, TAG_USER + k, k ? f->elem : NULL, k ? sizeof(int) : 0, 0);
    if (rc)
        return rc;
    weft_msg m;
    if (weft_recv(&m, NULL, 0) != 0)
        return BROKE;
    bool ok = m.tag == TAG_USER + k && m.from == me && m.ref == 0 && m.reason == 0 &&
              m.size == (k ? sizeof(int) : 0) && (k ? *(int *)m.data == 42 : m.data == NULL);
    weft_msg_free(&m);
    return ok ? 0 : BROKE;
}

/* weft_send_buf with a buffer of one int, freed here unless weft took it
 * (a buffer freed twice, or never, is an ASan error). */
static int sendbuf_to(weft_pid pid, int tag, int64_t deadline)
{
    int *b = weft_buf_alloc(sizeof(int));
    if (!b)
        return BROKE;
    *b = 42;
    int rc = weft_send_buf(pid, tag, b, deadline);
    if (rc) {
        if (*b != 42)
            rc = TOUCHED;
        weft_buf_free(b);
    }
    return rc;
}

/* NULL buf: refused before the tag is looked at. */
static int p_sendbuf_null(struct fx *f, uint64_t h, int k)
{
    return weft_send_buf(mailbox_of(f), k % 2 ? 0 : TAG_USER, NULL, dl(k / 2));
}

static int p_sendbuf_tag(struct fx *f, uint64_t h, int k)
{
    return sendbuf_to(mailbox_of(f), bad_tags[k], 0);
}

static int p_sendbuf(struct fx *f, uint64_t h, int k)
{
    return sendbuf_to(h, TAG_USER, dl(k));
}

static int p_sendbuf_full_now(struct fx *f, uint64_t h, int k)
{
    return sendbuf_to(f->full, TAG_USER, 0);
}

static int p_sendbuf_full_wait(struct fx *f, uint64_t h, int k)
{
    return sendbuf_to(f->full, TAG_USER, weft_now() + 2 * MS);
}

/* Sent to the caller's own mailbox, the buffer comes back without a copy. */
static int p_sendbuf_self(struct fx *f, uint64_t h, int k)
{
    int *b = weft_buf_alloc(sizeof(int));
    if (!b)
        return BROKE;
    *b = 43;
    int rc = weft_send_buf(weft_self(), TAG_USER, b, 0);
    if (rc) {
        weft_buf_free(b);
        return rc;
    }
    weft_msg m;
    if (weft_recv(&m, NULL, 0) != 0)
        return BROKE;
    bool ok = m.data == b && m.size == sizeof(int) && *b == 43;
    void *t = weft_msg_take(&m);
    ok = ok && t == b && m.block_ == NULL && m.data == NULL;
    weft_buf_free(t);
    return ok ? 0 : BROKE;
}

static int p_buf_alloc_big(struct fx *f, uint64_t h, int k)
{
    void *b = weft_buf_alloc(big_sizes[k]);
    if (!b)
        return 0;
    weft_buf_free(b);
    return 1;
}

/* The limits and the small-block boundary: the size as asked, 16-byte
 * aligned, writable to its last byte. */
static int p_buf_alloc_limits(struct fx *f, uint64_t h, int k)
{
    static const size_t sizes[] = {0, 1, 64, 65, WEFT_MSG_MAX};
    size_t s = sizes[k];
    unsigned char *b = weft_buf_alloc(s);
    if (!b)
        return BROKE;
    bool ok = weft_buf_size(b) == s && (uintptr_t)b % 16 == 0;
    if (s) {
        b[0] = 1;
        b[s - 1] = 2;
    }
    weft_buf_free(b);
    return ok ? 0 : 1;
}

static int p_buf_null(struct fx *f, uint64_t h, int k)
{
    weft_buf_free(NULL);
    return weft_buf_size(NULL) == 0 ? 0 : 1;
}

/* weft_msg_free and weft_msg_take ignore NULL and a cleared message. */
static int p_msg_null(struct fx *f, uint64_t h, int k)
{
    weft_msg m = {0};
    weft_msg_free(NULL);
    weft_msg_free(&m);
    void *a = weft_msg_take(NULL), *b = weft_msg_take(&m);
    return a || b ? 1 : 0;
}

/* A message without payload: weft_msg_take gives NULL and frees it (once). */
static int p_msg_take_empty(struct fx *f, uint64_t h, int k)
{
    int rc = weft_send(weft_self(), TAG_USER, NULL, 0, 0);
    weft_msg m;
    if (rc || (rc = weft_recv(&m, NULL, 0)))
        return rc ? rc : BROKE;
    void *t = weft_msg_take(&m);
    bool ok = t == NULL && m.block_ == NULL;
    weft_msg_free(&m); /* cleared: nothing to do */
    return ok ? 0 : 1;
}

static const weft_match match_tag5 = {.tag = 5};

static int p_mrecv_null(struct fx *f, uint64_t h, int k)
{
    return weft_recv(NULL, k % 2 ? &match_tag5 : NULL, dl(k / 2));
}

/* A receive that fails leaves *msg as it was. */
static int recv_untouched(const weft_match *match, int64_t deadline)
{
    weft_msg m, ref;
    memset(&m, 0x5A, sizeof m);
    memset(&ref, 0x5A, sizeof ref);
    int rc = weft_recv(&m, match, deadline);
    if (rc == 0) {
        weft_msg_free(&m);
        return 0;
    }
    return memcmp(&m, &ref, sizeof m) ? TOUCHED : rc;
}

static int p_mrecv(struct fx *f, uint64_t h, int k)
{
    return recv_untouched(k % 2 ? &match_tag5 : NULL, dl(k / 2));
}

static int p_mrecv_soon(struct fx *f, uint64_t h, int k)
{
    return recv_untouched(NULL, weft_now() + 5000 * MS);
}

static int p_mbox_bound_outside(struct fx *f, uint64_t h, int k)
{
    return weft_mailbox_bound(k ? 0 : 1);
}

static int p_mbox_len_outside(struct fx *f, uint64_t h, int k)
{
    return (int)weft_mailbox_len();
}

/* Bounds the caller's mailbox (k 0: to 1, where a second send to itself
 * gives -EAGAIN; k 1: SIZE_MAX; k 2: 0), then unbounds it. */
static int p_mbox_bound(struct fx *f, uint64_t h, int k)
{
    static const size_t caps[] = {1, SIZE_MAX, 0};
    int rc = weft_mailbox_bound(caps[k]);
    if (rc)
        return rc;
    bool ok = true;
    if (k == 0) {
        ok = weft_send(weft_self(), TAG_USER, NULL, 0, 0) == 0 &&
             weft_send(weft_self(), TAG_USER, NULL, 0, 0) == -EAGAIN && weft_mailbox_len() == 1;
        ok = drain() == 1 && ok;
    }
    rc = weft_mailbox_bound(0);
    return rc ? rc : ok ? 0 : BROKE;
}

static int p_mbox_len(struct fx *f, uint64_t h, int k)
{
    return (int)weft_mailbox_len();
}

/* weft_call: the reply is written only on success. */
static int call_untouched(weft_pid pid, int tag, const void *data, size_t size, int64_t deadline)
{
    weft_msg r, ref;
    memset(&r, 0x5A, sizeof r);
    memset(&ref, 0x5A, sizeof ref);
    int rc = weft_call(pid, tag, data, size, &r, deadline);
    if (rc == 0) {
        weft_msg_free(&r);
        return 0;
    }
    return memcmp(&r, &ref, sizeof r) ? TOUCHED : rc;
}

static weft_pid callee(struct fx *f)
{
    return f->running ? f->actor : 0x100000001ull;
}

static int p_call_null_reply(struct fx *f, uint64_t h, int k)
{
    return weft_call(callee(f), TAG_ECHO, NULL, 0, NULL, dl(k));
}

static int p_call_tag(struct fx *f, uint64_t h, int k)
{
    return call_untouched(callee(f), bad_tags[k], NULL, 0, 0);
}

static int p_call_size(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return call_untouched(callee(f), TAG_ECHO, k / NBIG ? NULL : f->elem, big_sizes[k % NBIG], 0);
}

static int p_call_null_data(struct fx *f, uint64_t h, int k)
{
    return call_untouched(callee(f), TAG_ECHO, NULL, null_sizes[k], 0);
}

static int p_call_outside(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return call_untouched(callee(f), TAG_ECHO, f->elem, sizeof(int), dl(k));
}

static int p_call(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return call_untouched(h, TAG_ECHO, f->elem, sizeof(int), dl(k));
}

/* A process calling itself would take its own request for the reply. */
static int p_call_self(struct fx *f, uint64_t h, int k)
{
    *f->elem = 42;
    return call_untouched(weft_self(), TAG_ECHO, k ? f->elem : NULL, k ? sizeof(int) : 0, dl(k));
}

/* The fixture actor answers: the reply carries the payload back. */
static int p_call_echo(struct fx *f, uint64_t h, int k)
{
    *f->elem = 44;
    weft_msg r;
    int rc = weft_call(f->actor, TAG_ECHO, k ? f->elem : NULL, k ? sizeof(int) : 0, &r, WEFT_FOREVER);
    if (rc)
        return rc;
    bool ok = r.tag == TAG_ECHO && r.from == f->actor && r.ref != 0 &&
              r.size == (k ? sizeof(int) : 0) && (k ? *(int *)r.data == 44 : r.data == NULL);
    weft_msg_free(&r);
    return ok ? 0 : BROKE;
}

/* No answer by the deadline: -ETIMEDOUT (k 0: deadline 0; k 1: soon). */
static int p_call_timeout(struct fx *f, uint64_t h, int k)
{
    return call_untouched(f->actor, TAG_NOREPLY, NULL, 0, k ? weft_now() + 2 * MS : 0);
}

/* A reply that comes after the call gave up is dropped: the actor answers
 * once the caller is back (its answer and then the sync below are queued
 * in that order), and the caller's mailbox stays empty. */
static int p_call_late(struct fx *f, uint64_t h, int k)
{
    int rc = call_untouched(f->actor, TAG_DEFER, NULL, 0, k ? weft_now() + 2 * MS : 0);
    if (weft_send(f->actor, TAG_FLUSH, NULL, 0, 0) != 0 || in_actor(f, a_nop, 0, 0) != 0)
        return BROKE;
    return recv_untouched(NULL, 0) == -ETIMEDOUT && weft_mailbox_len() == 0 ? rc : TOUCHED;
}

/* While the runtime shuts down, a call fails with -ECANCELED (the request
 * stays in the actor's mailbox: actors no longer run then). */
static int p_call_stopping(struct fx *f, uint64_t h, int k)
{
    return call_untouched(f->actor, TAG_NOREPLY, NULL, 0, k ? WEFT_FOREVER : 0);
}

static int p_reply_null(struct fx *f, uint64_t h, int k)
{
    return weft_reply(NULL, TAG_ECHO, NULL, 0);
}

/* Not a request from weft_call: no reference, no sender, or neither. */
static int p_reply_not_request(struct fx *f, uint64_t h, int k)
{
    weft_msg req = {.tag = TAG_ECHO, .from = k & 1 ? 0 : mailbox_of(f), .ref = k & 2 ? 0 : 77};
    if (k == 0)
        req.from = 0, req.ref = 0;
    return weft_reply(&req, TAG_ECHO, NULL, 0);
}

static weft_msg fake_request(weft_pid from)
{
    return (weft_msg){.tag = TAG_ECHO, .from = from, .ref = 77};
}

static int p_reply_tag(struct fx *f, uint64_t h, int k)
{
    weft_msg req = fake_request(mailbox_of(f));
    return weft_reply(&req, bad_tags[k], NULL, 0);
}

static int p_reply_size(struct fx *f, uint64_t h, int k)
{
    weft_msg req = fake_request(mailbox_of(f));
    *f->elem = 42;
    return weft_reply(&req, TAG_ECHO, k / NBIG ? NULL : f->elem, big_sizes[k % NBIG]);
}

static int p_reply_null_data(struct fx *f, uint64_t h, int k)
{
    weft_msg req = fake_request(mailbox_of(f));
    return weft_reply(&req, TAG_ECHO, NULL, null_sizes[k]);
}

/* A request whose sender is h (0, which would make it no request at all, is
 * replaced by another pid of nothing, slot 0). */
static int p_reply(struct fx *f, uint64_t h, int k)
{
    weft_msg req = fake_request(h ? h : 1ull << 32);
    *f->elem = 42;
    return weft_reply(&req, TAG_ECHO, k ? f->elem : NULL, k ? sizeof(int) : 0);
}

/* A reply to a process that waits for no reply (the caller itself) is
 * accepted and dropped: it never arrives. */
static int p_reply_not_waiting(struct fx *f, uint64_t h, int k)
{
    weft_msg req = fake_request(weft_self());
    int rc = weft_reply(&req, TAG_ECHO, NULL, 0);
    return rc ? rc : recv_untouched(NULL, 0) != 0 && weft_mailbox_len() == 0 ? 0 : TOUCHED;
}

static int p_actor_opts_null(struct fx *f, uint64_t h, int k)
{
    weft_actor_opts_init(NULL);
    return 0;
}

/* k bit 0: opts NULL or given; bit 1: pid NULL or given. */
static int p_actor_null_fn(struct fx *f, uint64_t h, int k)
{
    weft_actor_opts o;
    weft_actor_opts_init(&o);
    weft_pid pid = 77;
    int rc = weft_actor_spawn(k & 2 ? NULL : &pid, NULL, NULL, k & 1 ? &o : NULL);
    return pid == 77 ? rc : TOUCHED;
}

static int p_actor_link_outside(struct fx *f, uint64_t h, int k)
{
    weft_actor_opts o;
    weft_actor_opts_init(&o);
    o.link = 1;
    o.trap_exits = k;
    weft_pid pid = 77;
    int rc = weft_actor_spawn(&pid, nop_actor, NULL, &o);
    return pid == 77 ? rc : TOUCHED;
}

/* Valid spawns: opts NULL, a long name, a bounded mailbox, trapping, linked
 * (from a process; it is unlinked before the kill), and pid NULL (an actor
 * nobody can reach, until the runtime stops). Each is then killed. */
static int p_actor_valid(struct fx *f, uint64_t h, int k)
{
    weft_actor_opts o;
    weft_actor_opts_init(&o);
    o.name = k == 1 ? LONG_NAME : NULL;
    o.mailbox_capacity = k == 2 ? 3 : 0;
    o.trap_exits = k == 3;
    o.link = k == 4 && weft_self() != 0;
    weft_pid pid = 0;
    int rc = weft_actor_spawn(k == 5 ? NULL : &pid, nop_actor, NULL, k ? &o : NULL);
    if (rc || k == 5)
        return rc;
    if (pid == 0 || (o.link && weft_unlink(pid) != 0))
        return BROKE;
    return weft_kill(pid, WEFT_EXIT_KILL);
}

/* Valid arguments with the runtime shutting down or gone. */
static int p_actor_spawn_rt(struct fx *f, uint64_t h, int k)
{
    weft_pid pid = 77;
    int rc = weft_actor_spawn(k ? &pid : NULL, nop_actor, NULL, NULL);
    return pid == 77 ? rc : TOUCHED;
}

static int p_link_outside(struct fx *f, uint64_t h, int k)
{
    return weft_link(k ? live_pid(f) : 0x100000001ull);
}

static int p_unlink_outside(struct fx *f, uint64_t h, int k)
{
    return weft_unlink(k ? live_pid(f) : 0x100000001ull);
}

static int p_link_self(struct fx *f, uint64_t h, int k)
{
    return weft_link(weft_self());
}

static int p_link(struct fx *f, uint64_t h, int k)
{
    return weft_link(h);
}

static int p_unlink(struct fx *f, uint64_t h, int k)
{
    return weft_unlink(h);
}

/* Links to live processes and to the actor, twice (one link), then one
 * unlink: fx_end finds no link left (it traps exits while they end). */
static int p_link_live(struct fx *f, uint64_t h, int k)
{
    weft_pid to[] = {f->peer, f->fresh_pid, f->actor};
    weft_pid pid = to[k];
    int a = weft_link(pid), b = weft_link(pid), c = weft_unlink(pid), d = weft_unlink(pid);
    return a ? a : b ? b : c ? c : d;
}

static const intptr_t kill_reasons[] = {WEFT_EXIT_NORMAL, REASON, WEFT_EXIT_KILL, WEFT_EXIT_SHUTDOWN};

static int p_kill(struct fx *f, uint64_t h, int k)
{
    return weft_kill(h, kill_reasons[k]);
}

/* A normal exit signal to a live process or actor that does not trap exits
 * is ignored: they go on (fx_check). */
static int p_kill_normal(struct fx *f, uint64_t h, int k)
{
    weft_pid to[] = {f->peer, f->fresh_pid, f->full, f->actor};
    return weft_kill(to[k], WEFT_EXIT_NORMAL);
}

static int p_trap_outside(struct fx *f, uint64_t h, int k)
{
    return weft_trap_exits(k);
}

/* On (any nonzero value), then off: returns the previous setting each time. */
static int p_trap(struct fx *f, uint64_t h, int k)
{
    static const int on[] = {1, 5, -1, INT_MIN};
    int a = weft_trap_exits(on[k]);
    int b = weft_trap_exits(0);
    return a < 0 ? a : b < 0 ? b : a == 0 && b == 1 ? 0 : BROKE;
}

static int p_monitor_null_ref(struct fx *f, uint64_t h, int k)
{
    return weft_monitor(k ? live_pid(f) : 0x100000001ull, NULL);
}

/* The reference is written only on success. */
static int monitor_untouched(weft_pid pid, uint64_t *ref)
{
    *ref = 99;
    int rc = weft_monitor(pid, ref);
    return rc < 0 && *ref != 99 ? TOUCHED : rc;
}

static int p_monitor_outside(struct fx *f, uint64_t h, int k)
{
    uint64_t ref;
    return monitor_untouched(k ? live_pid(f) : 0x100000001ull, &ref);
}

/* Monitoring a pid that is not alive: 0, and at once a DOWN with
 * WEFT_EXIT_NOPROC from it with the reference (k 0: received; k 1:
 * weft_demonitor removes it from the mailbox). */
static int p_monitor(struct fx *f, uint64_t h, int k)
{
    uint64_t ref;
    int rc = monitor_untouched(h, &ref);
    if (rc)
        return rc;
    if (k)
        return weft_demonitor(ref) == 0 && recv_untouched(NULL, 0) != 0 ? 0 : BROKE;
    weft_match down = {.tag = WEFT_TAG_DOWN, .ref = ref};
    weft_msg m;
    if (weft_recv(&m, &down, 0) != 0)
        return BROKE;
    bool ok = m.from == h && m.reason == WEFT_EXIT_NOPROC && m.size == 0;
    weft_msg_free(&m);
    return ok ? 0 : BROKE;
}

/* Monitoring a live process or actor, then demonitoring: no DOWN. */
static int p_monitor_live(struct fx *f, uint64_t h, int k)
{
    weft_pid to[] = {f->peer, f->actor};
    uint64_t ref;
    int rc = monitor_untouched(to[k], &ref);
    if (rc)
        return rc;
    rc = weft_demonitor(ref);
    return rc ? rc : recv_untouched(NULL, 0) == -ETIMEDOUT ? 0 : BROKE;
}

static int p_demonitor_outside(struct fx *f, uint64_t h, int k)
{
    return weft_demonitor(k);
}

/* References that are no monitor of the caller: 0, 1, ~0, one just ended. */
static int p_demonitor_unknown(struct fx *f, uint64_t h, int k)
{
    static const uint64_t refs[] = {0, 1, UINT64_MAX};
    if (k < 3)
        return weft_demonitor(refs[k]);
    uint64_t ref;
    int rc = weft_monitor(f->peer, &ref);
    if (rc || (rc = weft_demonitor(ref)))
        return BROKE;
    return weft_demonitor(ref);
}

/* weft_chan_set_owner with a bad channel (h) and a live pid. */
static int p_owner_chan(struct fx *f, uint64_t h, int k)
{
    return weft_chan_set_owner(h, live_pid(f));
}

/* With the buffered channel and pid h. */
static int p_owner_pid(struct fx *f, uint64_t h, int k)
{
    return weft_chan_set_owner(f->running ? f->live : 0x100000001ull, h);
}

/* Names weft refuses: NULL, "", WEFT_NAME_MAX bytes (terminated, in a
 * block of exactly that many plus one), WEFT_NAME_MAX bytes without a
 * terminator (a block of exactly that size: reading past it is an ASan
 * error), 100 bytes. */
static char *bad_name(int k)
{
    static const size_t lens[] = {0, 0, WEFT_NAME_MAX, WEFT_NAME_MAX, 100};
    if (k == 0)
        return NULL;
    size_t len = lens[k];
    bool terminated = k != 3;
    char *s = malloc(len + terminated);
    memset(s, 'n', len);
    if (terminated)
        s[len] = '\0';
    return s;
}
enum { NBADNAMES = 5 };

static int p_register_name(struct fx *f, uint64_t h, int k)
{
    char *name = bad_name(k);
    int rc = weft_register(name, live_pid(f));
    free(name);
    return rc;
}

static int p_register(struct fx *f, uint64_t h, int k)
{
    return weft_register("probe", h);
}

/* "fx-peer" is taken (by the peer): whoever asks, also the peer itself. */
static int p_register_taken(struct fx *f, uint64_t h, int k)
{
    weft_pid to[] = {f->fresh_pid, f->actor, f->peer};
    return weft_register("fx-peer", to[k]);
}

/* The peer has a name already. */
static int p_register_busy(struct fx *f, uint64_t h, int k)
{
    return weft_register(k ? "probe" : "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", f->peer);
}

/* Register, look up, unregister, look up, with the longest name, for a
 * process and for the actor. */
static int p_register_round(struct fx *f, uint64_t h, int k)
{
    static const char name[] = "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"; /* WEFT_NAME_MAX - 1 bytes */
    weft_pid to = k ? f->actor : f->fresh_pid, got = 0, none = 77;
    int rc = weft_register(name, to);
    if (rc)
        return rc;
    int a = weft_whereis(name, &got), b = weft_unregister(name), c = weft_whereis(name, &none);
    return a == 0 && got == to && b == 0 && c == -ENOENT && none == 77 ? 0 : BROKE;
}

static int p_unregister_name(struct fx *f, uint64_t h, int k)
{
    char *name = bad_name(k);
    int rc = weft_unregister(name);
    free(name);
    return rc;
}

static int p_unregister(struct fx *f, uint64_t h, int k)
{
    return weft_unregister(k ? "probe" : "fx-pee");
}

/* k < NBADNAMES: a bad name; else a good name and pid NULL. */
static int p_whereis_args(struct fx *f, uint64_t h, int k)
{
    if (k == NBADNAMES)
        return weft_whereis("fx-peer", NULL);
    char *name = bad_name(k);
    weft_pid pid = 77;
    int rc = weft_whereis(name, &pid);
    free(name);
    return pid == 77 ? rc : TOUCHED;
}

static int p_whereis(struct fx *f, uint64_t h, int k)
{
    weft_pid pid = 77;
    int rc = weft_whereis(k ? "probe" : "fx-pee", &pid);
    return pid == 77 ? rc : TOUCHED;
}

/* ---- supervisors ------------------------------------------------------------------------- */

static intptr_t idle_child(void *arg)
{
    weft_msg m;
    while (weft_recv(&m, NULL, WEFT_FOREVER) == 0)
        weft_msg_free(&m);
    return 0;
}

static int failing_start(void *arg, weft_pid *pid)
{
    return -EIO;
}

/* A valid spec of two idle children, "idle" and "idle2". */
struct spec {
    weft_sup_spec s;
    weft_child_spec c[2];
};

static void good_spec(struct spec *sp)
{
    sp->c[0] = (weft_child_spec){.name = "idle", .fn = idle_child, .shutdown = WEFT_FOREVER};
    sp->c[1] = (weft_child_spec){.name = "idle2", .fn = idle_child, .restart = WEFT_TEMPORARY};
    sp->s = (weft_sup_spec){.name = "probe-sup", .strategy = WEFT_ONE_FOR_ONE, .max_restarts = 3,
                            .period = 1000 * MS, .children = sp->c, .nchildren = 2};
}

/* The specs weft_sup_start refuses (-EINVAL). */
static void bad_spec(struct spec *sp, int k)
{
    static const int strategies[] = {0, WEFT_REST_FOR_ONE + 1, -1, INT_MIN};
    static const int restarts[] = {-1, WEFT_TEMPORARY + 1, INT_MAX, INT_MIN};
    good_spec(sp);
    if (k < 4)
        sp->s.strategy = strategies[k];
    else if (k == 4)
        sp->s.nchildren = 0;
    else if (k == 5)
        sp->s.children = NULL;
    else if (k == 6)
        sp->c[1].name = NULL;
    else if (k == 7)
        sp->c[1].name = "";
    else if (k == 8)
        sp->c[1].fn = NULL; /* neither start nor fn */
    else if (k == 9)
        sp->c[1].start = failing_start; /* both */
    else if (k < 14)
        sp->c[1].restart = restarts[k - 10];
    else if (k == 14)
        sp->c[1].name = "idle"; /* twice */
    else if (k < 17)
        sp->s.period = k == 15 ? 0 : -1; /* with max_restarts 3 */
    else
        sp->s.backoff_min = -1;
}
enum { NBADSPECS = 18 };

static int p_sup_start_null(struct fx *f, uint64_t h, int k)
{
    struct spec sp;
    good_spec(&sp);
    weft_pid pid = 77;
    int rc = weft_sup_start(k ? NULL : &pid, k ? &sp.s : NULL, 0);
    return pid == 77 ? rc : TOUCHED;
}

static int p_sup_start_spec(struct fx *f, uint64_t h, int k)
{
    struct spec sp;
    bad_spec(&sp, k);
    weft_pid pid = 77;
    int rc = weft_sup_start(&pid, &sp.s, 0);
    return pid == 77 ? rc : TOUCHED;
}

/* A valid spec, not linked (p_sup_start_link: linked). */
static int p_sup_start_rt(struct fx *f, uint64_t h, int k)
{
    struct spec sp;
    good_spec(&sp);
    weft_pid pid = 77;
    int rc = weft_sup_start(&pid, &sp.s, 0);
    return pid == 77 ? rc : TOUCHED;
}

static int p_sup_start_link(struct fx *f, uint64_t h, int k)
{
    struct spec sp;
    good_spec(&sp);
    weft_pid pid = 77;
    int rc = weft_sup_start(&pid, &sp.s, 1);
    return pid == 77 ? rc : TOUCHED;
}

/* A valid supervisor starts and stops (linked from a process for k 1;
 * weft_sup_stop unlinks it first). From a process its child answers. */
static int p_sup_start_valid(struct fx *f, uint64_t h, int k)
{
    struct spec sp;
    good_spec(&sp);
    weft_pid pid = 0, child = 0;
    bool proc = weft_self() != 0;
    int rc = weft_sup_start(&pid, &sp.s, k && proc);
    if (rc)
        return rc;
    bool ok = pid != 0;
    if (proc)
        ok = ok && weft_sup_which(pid, "idle2", &child, WEFT_FOREVER) == 0 && child != 0 &&
             weft_sup_restarts(pid, WEFT_FOREVER) == 0;
    rc = weft_sup_stop(pid, WEFT_FOREVER);
    return rc ? rc : ok ? 0 : BROKE;
}

/* A child whose start fails: its error comes back, *pid untouched. */
static int p_sup_start_fails(struct fx *f, uint64_t h, int k)
{
    struct spec sp;
    good_spec(&sp);
    sp.c[k].fn = NULL;
    sp.c[k].start = failing_start;
    weft_pid pid = 77;
    int rc = weft_sup_start(&pid, &sp.s, 0);
    return pid == 77 ? rc : TOUCHED;
}

static int p_sup_stop(struct fx *f, uint64_t h, int k)
{
    return weft_sup_stop(h, dl(k));
}

/* Live processes and the actor are not supervisors. */
static int p_sup_stop_not_sup(struct fx *f, uint64_t h, int k)
{
    weft_pid to[] = {f->peer, f->actor, f->sup_child};
    return weft_sup_stop(to[k], 0);
}

static int p_sup_which_null(struct fx *f, uint64_t h, int k)
{
    weft_pid pid = 77;
    weft_pid sup = f->running ? f->sup : 0x100000001ull;
    int rc = k ? weft_sup_which(sup, "idle", NULL, 0) : weft_sup_which(sup, NULL, &pid, 0);
    return pid == 77 ? rc : TOUCHED;
}

static int sup_which_untouched(weft_pid sup, const char *name, int64_t deadline)
{
    weft_pid pid = 77;
    int rc = weft_sup_which(sup, name, &pid, deadline);
    return pid == 77 ? rc : TOUCHED;
}

static int p_sup_which(struct fx *f, uint64_t h, int k)
{
    return sup_which_untouched(h, "idle", dl(k));
}

static int p_sup_which_not_sup(struct fx *f, uint64_t h, int k)
{
    weft_pid to[] = {f->peer, f->actor, f->sup_child};
    return sup_which_untouched(to[k], "idle", 0);
}

/* No child of that name ("" and a prefix included): -ENOENT. */
static int p_sup_which_unknown(struct fx *f, uint64_t h, int k)
{
    static const char *const names[] = {"nope", "", "idl", "idle-"};
    return sup_which_untouched(f->sup, names[k], WEFT_FOREVER);
}

static int p_sup_which_live(struct fx *f, uint64_t h, int k)
{
    weft_pid pid = 0;
    int rc = weft_sup_which(f->sup, "idle", &pid, WEFT_FOREVER);
    return rc ? rc : pid == f->sup_child ? 0 : BROKE;
}

static int p_sup_which_fx(struct fx *f, uint64_t h, int k)
{
    return sup_which_untouched(f->sup, "idle", dl(k));
}

static int p_sup_restarts(struct fx *f, uint64_t h, int k)
{
    return (int)weft_sup_restarts(h, dl(k));
}

static int p_sup_restarts_not_sup(struct fx *f, uint64_t h, int k)
{
    weft_pid to[] = {f->peer, f->actor, f->sup_child};
    return (int)weft_sup_restarts(to[k], 0);
}

static int p_sup_restarts_fx(struct fx *f, uint64_t h, int k)
{
    return (int)weft_sup_restarts(f->sup, k ? 0 : WEFT_FOREVER);
}

/* ---- the mailbox in select ---------------------------------------------------------------- */

/* A WEFT_CASE_MSG case (k: match any or tag 5; deadline), beside nothing. */
static int p_select_msg(struct fx *f, uint64_t h, int k)
{
    weft_msg m;
    weft_case c[1] = {WEFT_MSG_CASE(&m, k % 2 ? &match_tag5 : NULL)};
    int rc = select_untouched(c, 1, WEFT_SELECT_FAIR, dl(k / 2));
    if (rc == 0)
        weft_msg_free(&m);
    return rc;
}

/* A mailbox case that would wait, while the runtime shuts down. */
static int p_select_msg_blocking(struct fx *f, uint64_t h, int k)
{
    weft_msg m;
    weft_case c[1] = {WEFT_MSG_CASE(&m, NULL)};
    return select_untouched(c, 1, WEFT_SELECT_FAIR, k ? weft_now() + 5000 * MS : WEFT_FOREVER);
}

/* The mailbox case in a handler (k: deadline 0, then a wait): -EPERM. */
static int a_select_msg(struct fx *f, uint64_t h, int k)
{
    weft_msg m;
    weft_case c[1] = {WEFT_MSG_CASE(&m, NULL)};
    return select_untouched(c, 1, WEFT_SELECT_FAIR, k ? weft_now() + 100 * MS : 0);
}
IN_ACTOR(select_msg)

static int p_select_msg_size(struct fx *f, uint64_t h, int k)
{
    weft_msg m;
    weft_case c[1] = {WEFT_MSG_CASE(&m, NULL)};
    c[0].size = wrong_sizes[k];
    return select_untouched(c, 1, WEFT_SELECT_FAIR, 0);
}

/* ---- dataflow graphs -------------------------------------------------------------------------- */

/* The fixture's graphs (struct fx) are built of these; none of them runs
 * a node function except g_ended's, to its end, in fx_build. */
static int g_nop(void *state, const void *const *in, void *const *out)
{
    return 0;
}

/* g_ended's source: 1, 2, 3, then the end (state: the count so far). */
static int g_src3(void *state, const void *const *in, void *const *out)
{
    int *n = state;
    if (*n >= 3)
        return WEFT_NODE_END;
    *(int *)out[0] = ++*n;
    return 0;
}

/* A source without end, for a graph that a probe cancels. */
static int g_src_endless(void *state, const void *const *in, void *const *out)
{
    *(int *)out[0] = 1;
    return 0;
}

static int g_body_nop(void *state, weft_node_io *io)
{
    return 0;
}

/* A node of kind with its usual ports (all of ints) and what it needs to be
 * accepted: fn for the kinds that take one, a body for CUSTOM. */
static weft_node_spec node_spec(int kind, const char *name)
{
    static const struct { unsigned in, out; bool fn; } shape[] = {
        [WEFT_NODE_SOURCE] = {0, 1, true},    [WEFT_NODE_MAP] = {1, 1, true},
        [WEFT_NODE_SINK] = {1, 0, true},      [WEFT_NODE_MERGE] = {2, 1, false},
        [WEFT_NODE_FILTER] = {1, 1, true},    [WEFT_NODE_BROADCAST] = {1, 2, false},
        [WEFT_NODE_SPLIT] = {1, 2, false},    [WEFT_NODE_CUSTOM] = {1, 1, false},
    };
    weft_node_spec s = {.name = name, .kind = kind};
    s.inputs = shape[kind].in;
    s.outputs = shape[kind].out;
    for (unsigned i = 0; i < WEFT_NODE_PORTS_MAX; i++)
        s.in_size[i] = s.out_size[i] = sizeof(int);
    s.fn = shape[kind].fn ? g_nop : NULL;
    s.body = kind == WEFT_NODE_CUSTOM ? g_body_nop : NULL;
    return s;
}

/* The fixture graph's custom node runs probes in its body, as the fixture
 * actor does in its handler: a probe reaches the node's ports through
 * node_io. While from_thread holds node_hold, the body outlives the
 * cancellation of the runtime's shutdown, so that the graph is still
 * running in the shutting-down contexts. */
static weft_node_io *node_io;
static atomic_int node_hold;

struct node_job {
    int (*fn)(struct fx *f, uint64_t h, int k);
    struct fx *f;
    uint64_t h;
    int k;
};

static int fx_node_body(void *state, weft_node_io *io)
{
    struct fx *f = state;
    weft_chan jobs = f->node_jobs, out = f->node_out;
    node_io = io;
    struct node_job j;
    int rc;
    while ((rc = weft_chan_recv(jobs, &j, sizeof j, WEFT_FOREVER)) == 0) {
        int r = j.fn(j.f, j.h, j.k);
        if (weft_chan_send(out, &r, sizeof r, 0) != 0)
            return -EIO; /* fails the graph: fx_check sees it */
    }
    if (rc == -ECANCELED)
        while (atomic_load(&node_hold)) {
            weft_yield();
            usleep(100);
        }
    return 0;
}

/* Runs fn(f, h, k) in the body of g_run's node and returns its result
 * (from a process or an outside thread of a running runtime). */
static int in_node(struct fx *f, int (*fn)(struct fx *f, uint64_t h, int k), uint64_t h, int k)
{
    struct node_job j = {fn, f, h, k};
    int out = 0;
    if (weft_chan_send(f->node_jobs, &j, sizeof j, WEFT_FOREVER) != 0 ||
        weft_chan_recv(f->node_out, &out, sizeof out, WEFT_FOREVER) != 0)
        return BROKE;
    return out;
}
#define IN_NODE(id)                                              \
    static int p_in_node_##id(struct fx *f, uint64_t h, int k)   \
    {                                                            \
        return in_node(f, n_##id, h, k);                         \
    }

/* A graph that a probe makes for itself: src -> snk, or no nodes. */
static weft_graph temp_graph(const char *name, bool nodes, weft_node_fn src)
{
    weft_graph g = 0;
    if (weft_graph_make(&g, name) != 0)
        return 0;
    if (!nodes)
        return g;
    weft_node_spec a = node_spec(WEFT_NODE_SOURCE, "src"), z = node_spec(WEFT_NODE_SINK, "snk");
    a.fn = src;
    weft_node na = -1, nz = -1;
    if (weft_graph_add(g, &a, &na) || weft_graph_add(g, &z, &nz) ||
        weft_graph_connect(g, na, 0, nz, 0, 2)) {
        weft_graph_release(g);
        return 0;
    }
    return g;
}

/* weft_graph_make: g NULL, name NULL, name "": *g untouched. */
static int p_gmake_null(struct fx *f, uint64_t h, int k)
{
    weft_graph g = 77;
    if (k == 0)
        return weft_graph_make(NULL, "x");
    int rc = weft_graph_make(&g, k == 1 ? NULL : "");
    return g == 77 ? rc : TOUCHED;
}

static int p_gmake_valid(struct fx *f, uint64_t h, int k)
{
    weft_graph g = 77;
    int rc = weft_graph_make(&g, "g");
    return rc == 0 ? (weft_graph_release(g), 0) : g == 77 ? rc : TOUCHED;
}

/* Names of 1, 31, 32 and 100 bytes: accepted, kept whole up to 31 bytes
 * (DOT shows the name). */
static int p_gmake_names(struct fx *f, uint64_t h, int k)
{
    static const size_t lens[] = {1, WEFT_NAME_MAX - 1, WEFT_NAME_MAX, 100};
    size_t n = lens[k];
    char *name = malloc(n + 1);
    memset(name, 'g', n);
    name[n] = '\0';
    weft_graph g = 0;
    int rc = weft_graph_make(&g, name);
    if (rc == 0) {
        char dot[256], want[128];
        size_t keep = n < WEFT_NAME_MAX - 1 ? n : WEFT_NAME_MAX - 1;
        snprintf(want, sizeof want, "digraph \"%.*s\" {", (int)keep, name);
        int len = weft_graph_dot(g, dot, sizeof dot);
        int rel = weft_graph_release(g);
        rc = rel ? rel : len < 0 ? len : strncmp(dot, want, strlen(want)) ? TOUCHED : 0;
    }
    free(name);
    return rc;
}

/* The specs weft_graph_add refuses with -EINVAL [misuse]. */
static weft_node_spec bad_node_spec(int k)
{
    weft_node_spec s = node_spec(WEFT_NODE_MAP, "bad");
    switch (k) {
    case 0: s.name = NULL; break;
    case 1: s.name = ""; break;
    case 2: s.kind = 0; break;
    case 3: s.kind = WEFT_NODE_CUSTOM + 1; break;
    case 4: s.kind = -1; break;
    case 5: s.kind = INT_MIN; break;
    case 6: s = node_spec(WEFT_NODE_SOURCE, "bad"), s.inputs = 1; break;
    case 7: s = node_spec(WEFT_NODE_SOURCE, "bad"), s.outputs = 0; break;
    case 8: s = node_spec(WEFT_NODE_SOURCE, "bad"), s.outputs = WEFT_NODE_PORTS_MAX + 1; break;
    case 9: s.inputs = 0; break;
    case 10: s.inputs = WEFT_NODE_PORTS_MAX + 1; break;
    case 11: s.outputs = WEFT_NODE_PORTS_MAX + 1; break;
    case 12: s.inputs = UINT_MAX; break;
    case 13: s = node_spec(WEFT_NODE_SINK, "bad"), s.outputs = 1; break;
    case 14: s = node_spec(WEFT_NODE_MERGE, "bad"), s.outputs = 0; break;
    case 15: s = node_spec(WEFT_NODE_MERGE, "bad"), s.outputs = 2; break;
    case 16: s = node_spec(WEFT_NODE_FILTER, "bad"), s.inputs = 2; break;
    case 17: s = node_spec(WEFT_NODE_FILTER, "bad"), s.outputs = 2; break;
    case 18: s = node_spec(WEFT_NODE_BROADCAST, "bad"), s.outputs = 0; break;
    case 19: s = node_spec(WEFT_NODE_SPLIT, "bad"), s.inputs = 2; break;
    case 20: s = node_spec(WEFT_NODE_CUSTOM, "bad"), s.inputs = WEFT_NODE_PORTS_MAX + 1; break;
    case 21: s = node_spec(WEFT_NODE_SOURCE, "bad"), s.fn = NULL; break;
    case 22: s.fn = NULL; break;
    case 23: s = node_spec(WEFT_NODE_SINK, "bad"), s.fn = NULL; break;
    case 24: s = node_spec(WEFT_NODE_FILTER, "bad"), s.fn = NULL; break;
    case 25: s = node_spec(WEFT_NODE_CUSTOM, "bad"), s.body = NULL; break;
    case 26: s = node_spec(WEFT_NODE_BROADCAST, "bad"), s.fn = g_nop; break;
    case 27: s.body = g_body_nop; break;
    case 28: s = node_spec(WEFT_NODE_SOURCE, "bad"), s.body = g_body_nop; break;
    case 29: s.in_size[0] = 0; break;
    case 30: s.out_size[0] = 0; break;
    case 31: s.in_size[0] = WEFT_CHAN_ELEM_MAX + 1; break;
    case 32: s = node_spec(WEFT_NODE_SINK, "bad"), s.in_size[0] = SIZE_MAX; break;
    case 33: s = node_spec(WEFT_NODE_FILTER, "bad"), s.out_size[0] = 8; break;
    case 34: s = node_spec(WEFT_NODE_BROADCAST, "bad"), s.out_size[1] = 8; break;
    case 35: s = node_spec(WEFT_NODE_SPLIT, "bad"), s.out_size[1] = 2; break;
    case 36: s = node_spec(WEFT_NODE_MERGE, "bad"), s.in_size[1] = 8; break; /* no fn */
    case 37: s = node_spec(WEFT_NODE_SOURCE, "bad"), s.parallel = 2; break;
    case 38: s = node_spec(WEFT_NODE_MERGE, "bad"), s.parallel = 2; break;
    case 39: s = node_spec(WEFT_NODE_BROADCAST, "bad"), s.parallel = 2; break;
    case 40: s.parallel = 1025; break;
    case 41: s = node_spec(WEFT_NODE_CUSTOM, "bad"), s.parallel = UINT_MAX; break;
    case 42: s.stack_size = 1; break;
    case 43: s.stack_size = WEFT_STACK_MIN - 1; break;
    case 44: s.stack_size = WEFT_STACK_MAX + 1; break;
    default: s.stack_size = SIZE_MAX; break;
    }
    return s;
}
enum { NBADSPEC = 46 };

static int add_untouched(weft_graph g, const weft_node_spec *s)
{
    weft_node n = 77;
    int rc = weft_graph_add(g, s, &n);
    return n == 77 ? rc : TOUCHED;
}

static int p_gadd_spec(struct fx *f, uint64_t h, int k)
{
    weft_node_spec s = bad_node_spec(k);
    return add_untouched(f->g_build, &s);
}

/* spec NULL, on the loose graph, the running one and a forged handle
 * (checked before the handle). */
static int p_gadd_null(struct fx *f, uint64_t h, int k)
{
    weft_graph g[] = {f->g_build, f->g_run, 0x100000001ull};
    weft_node n = 77;
    int rc = weft_graph_add(g[k], NULL, &n);
    return n == 77 ? rc : TOUCHED;
}

static int p_gadd(struct fx *f, uint64_t h, int k)
{
    weft_node_spec s = node_spec(WEFT_NODE_SINK, "more");
    return add_untouched(h, &s);
}

/* Names of WEFT_NAME_MAX bytes without a terminator (an exact block) and
 * of 100 bytes. */
static int p_gadd_name(struct fx *f, uint64_t h, int k)
{
    size_t n = k ? 101 : WEFT_NAME_MAX;
    char *name = malloc(n);
    memset(name, 'n', n);
    if (k)
        name[n - 1] = '\0';
    weft_node_spec s = node_spec(WEFT_NODE_SINK, name);
    int rc = add_untouched(f->g_build, &s);
    free(name);
    return rc;
}

static int p_gadd_exists(struct fx *f, uint64_t h, int k)
{
    weft_node_spec s = node_spec(WEFT_NODE_SINK, k ? "map" : "src");
    return add_untouched(f->g_build, &s);
}

/* A running graph and one that has run. */
static int p_gadd_busy(struct fx *f, uint64_t h, int k)
{
    weft_node_spec s = node_spec(WEFT_NODE_SINK, "more");
    return add_untouched(k ? f->g_ended : f->g_run, &s);
}

/* Shutting down: a valid spec, a bad one, the running graph: the runtime's
 * state is checked before the spec and the graph's state. */
static int p_gadd_stopping(struct fx *f, uint64_t h, int k)
{
    weft_node_spec s = k == 1 ? bad_node_spec(2) : node_spec(WEFT_NODE_SINK, "more");
    return add_untouched(k == 2 ? f->g_run : f->g_build, &s);
}

/* The limits, each on a graph of its own: a 31-byte name; 16 inputs and
 * outputs of 1 byte and WEFT_CHAN_ELEM_MAX; a custom node without ports;
 * the smallest and the largest stack; a merge without fn of 16 inputs; a
 * split without fn of 16 outputs, 1024 firings in order; node NULL. */
static int p_gadd_limits(struct fx *f, uint64_t h, int k)
{
    char name[WEFT_NAME_MAX];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    weft_node_spec s = node_spec(WEFT_NODE_MAP, "lim");
    switch (k) {
    case 0: s.name = name; break;
    case 1:
        s.inputs = s.outputs = WEFT_NODE_PORTS_MAX;
        for (unsigned i = 0; i < WEFT_NODE_PORTS_MAX; i++)
            s.in_size[i] = s.out_size[i] = i % 2 ? WEFT_CHAN_ELEM_MAX : 1;
        break;
    case 2: s = node_spec(WEFT_NODE_CUSTOM, "lim"), s.inputs = s.outputs = 0, s.parallel = 7; break;
    case 3: s.stack_size = WEFT_STACK_MIN; break;
    case 4: s.stack_size = WEFT_STACK_MAX; break;
    case 5: s = node_spec(WEFT_NODE_MERGE, "lim"), s.inputs = WEFT_NODE_PORTS_MAX; break;
    case 6:
        s = node_spec(WEFT_NODE_SPLIT, "lim");
        s.outputs = WEFT_NODE_PORTS_MAX;
        s.parallel = 1024;
        s.ordered = 1;
        break;
    default: break;
    }
    weft_graph g = temp_graph("limits", false, NULL);
    if (!g)
        return BROKE;
    weft_node n = 77;
    int rc = weft_graph_add(g, &s, k == 7 ? NULL : &n);
    int rel = weft_graph_release(g);
    return rc ? rc : rel ? rel : (k == 7 ? n != 77 : n != 0) ? TOUCHED : 0;
}

/* g_build's nodes: 0 "src" (its output connected to map's input), 1 "map"
 * (its output loose), 2 "wide" (a sink of 8 bytes, loose), 3 "sink" (a
 * sink of ints, loose). */
struct edge_args {
    int from;
    unsigned out;
    int to;
    unsigned in;
    size_t cap;
};

static int p_gconnect(struct fx *f, uint64_t h, int k)
{
    return weft_graph_connect(h, 1, 0, 3, 0, 1);
}

static int connect_on(weft_graph g, const struct edge_args *e)
{
    return weft_graph_connect(g, e->from, e->out, e->to, e->in, e->cap);
}

/* No such node or port. */
static int p_gconnect_einval(struct fx *f, uint64_t h, int k)
{
    static const struct edge_args e[] = {
        {-1, 0, 3, 0, 1}, {4, 0, 3, 0, 1}, {INT_MAX, 0, 3, 0, 1}, {INT_MIN, 0, 3, 0, 1},
        {1, 0, -1, 0, 1}, {1, 0, 4, 0, 1}, {1, 0, INT_MAX, 0, 1}, {1, 0, INT_MIN, 0, 1},
        {1, 1, 3, 0, 1}, {1, 16, 3, 0, 1}, {1, UINT_MAX, 3, 0, 1}, {3, 0, 1, 0, 1},
        {1, 0, 3, 1, 1}, {1, 0, 3, 16, 1}, {1, 0, 3, UINT_MAX, 1},
    };
    return connect_on(f->g_build, &e[k]);
}

/* A port connected already: src's output, map's input (to itself). */
static int p_gconnect_isconn(struct fx *f, uint64_t h, int k)
{
    static const struct edge_args e[] = {{0, 0, 3, 0, 1}, {1, 0, 1, 0, 1}, {0, 0, 1, 0, 0}};
    return connect_on(f->g_build, &e[k]);
}

/* map's output (ints) to wide's input (8 bytes), capacities 0 and 5. */
static int p_gconnect_size(struct fx *f, uint64_t h, int k)
{
    struct edge_args e = {1, 0, 2, 0, k ? 5 : 0};
    return connect_on(f->g_build, &e);
}

/* Buffers above WEFT_CHAN_BUFFER_MAX (ints). */
static int p_gconnect_big(struct fx *f, uint64_t h, int k)
{
    static const size_t caps[] = {WEFT_CHAN_BUFFER_MAX / sizeof(int) + 1, SIZE_MAX / 4 + 1, SIZE_MAX};
    struct edge_args e = {1, 0, 3, 0, caps[k]};
    return connect_on(f->g_build, &e);
}

/* A running graph and one that has run. */
static int p_gconnect_busy(struct fx *f, uint64_t h, int k)
{
    return weft_graph_connect(k ? f->g_ended : f->g_run, 0, 0, 0, 0, 1);
}

/* The limits, on a graph of its own: capacities 0 and the largest for
 * elements of 1 byte and of WEFT_CHAN_ELEM_MAX; a node joined to itself by
 * a rendezvous edge (accepted; validation then finds the cycle). */
static int p_gconnect_limits(struct fx *f, uint64_t h, int k)
{
    weft_graph g = temp_graph("limits", false, NULL);
    if (!g)
        return BROKE;
    size_t size = k % 2 ? WEFT_CHAN_ELEM_MAX : 1;
    weft_node_spec a = node_spec(WEFT_NODE_SOURCE, "a"), z = node_spec(WEFT_NODE_SINK, "z"),
                   m = node_spec(WEFT_NODE_MAP, "self");
    a.out_size[0] = z.in_size[0] = size;
    weft_node na = -1, nz = -1, nm = -1;
    int rc = weft_graph_add(g, &a, &na);
    rc = rc ? rc : weft_graph_add(g, &z, &nz);
    rc = rc ? rc : weft_graph_add(g, &m, &nm);
    rc = rc ? rc : weft_graph_connect(g, na, 0, nz, 0, k / 2 ? WEFT_CHAN_BUFFER_MAX / size : 0);
    rc = rc ? rc : weft_graph_connect(g, nm, 0, nm, 0, 0);
    char why[128] = "";
    int v = rc ? 0 : weft_graph_validate(g, why, sizeof why);
    int rel = weft_graph_release(g);
    if (rc || rel)
        return rc ? rc : rel;
    return v == -EDEADLK && strstr(why, "'self'") ? 0 : TOUCHED;
}

static int p_gvalidate(struct fx *f, uint64_t h, int k)
{
    char *why = malloc(64);
    memset(why, 'w', 64);
    int rc = weft_graph_validate(h, why, 64);
    bool touched = why[0] != 'w';
    free(why);
    return touched ? TOUCHED : rc;
}

/* why NULL, with len 0 and 64; why with len 0 (not written). */
static int p_gvalidate_null(struct fx *f, uint64_t h, int k)
{
    char why = 'w';
    int rc = weft_graph_validate(f->g_build, k == 2 ? &why : NULL, k ? 64 * (k == 1) : 0);
    return why != 'w' ? TOUCHED : rc;
}

/* The explanation in exact blocks of 1..70 bytes: truncated, terminated,
 * never written past. */
static int p_gvalidate_why(struct fx *f, uint64_t h, int k)
{
    static const char full[] = "output 0 of node 'map' is not connected";
    size_t len = (size_t)k + 1;
    char *why = malloc(len);
    memset(why, 'w', len);
    int rc = weft_graph_validate(f->g_build, why, len);
    size_t want = len - 1 < sizeof full - 1 ? len - 1 : sizeof full - 1;
    bool ok = strnlen(why, len) == want && strncmp(why, full, want) == 0;
    free(why);
    return ok ? rc : TOUCHED;
}

static int p_gvalidate_empty(struct fx *f, uint64_t h, int k)
{
    return weft_graph_validate(f->g_empty, NULL, 0);
}

static int p_gvalidate_cycle(struct fx *f, uint64_t h, int k)
{
    return weft_graph_validate(f->g_cycle, NULL, 0);
}

/* A valid graph, never run, running, ended: 0, and why holds "". */
static int p_gvalidate_ok(struct fx *f, uint64_t h, int k)
{
    weft_graph g[] = {f->g_ready, f->g_run, f->g_ended, f->g_fresh};
    char why[8] = "xxxxxxx";
    int rc = weft_graph_validate(g[k], why, sizeof why);
    return rc == 0 && why[0] ? TOUCHED : rc;
}

static int p_gdot(struct fx *f, uint64_t h, int k)
{
    char *buf = malloc(64);
    memset(buf, 'd', 64);
    int rc = weft_graph_dot(h, buf, 64);
    bool touched = buf[0] != 'd';
    free(buf);
    return touched ? TOUCHED : rc;
}

/* buf NULL with len 1, 100, SIZE_MAX, on g_build and a forged handle
 * (checked before the handle). */
static int p_gdot_null(struct fx *f, uint64_t h, int k)
{
    static const size_t lens[] = {1, 100, SIZE_MAX};
    return weft_graph_dot(k / 3 ? 0x100000001ull : f->g_build, NULL, lens[k % 3]);
}

/* buf NULL with len 0: the length of the text, nothing written. */
static int p_gdot_len0(struct fx *f, uint64_t h, int k)
{
    char c = 'd';
    int rc = weft_graph_dot(f->g_build, k ? &c : NULL, 0);
    return c != 'd' ? TOUCHED : rc == f->g_dotlen[0] ? 0 : rc;
}

/* Exact blocks of 1, 2, 10, 100 bytes, the text's length, and one more:
 * the whole length each time, truncated, terminated. */
static int p_gdot_truncate(struct fx *f, uint64_t h, int k)
{
    int full = f->g_dotlen[0];
    size_t lens[] = {1, 2, 10, 100, (size_t)full, (size_t)full + 1};
    size_t len = lens[k];
    char *buf = malloc(len);
    memset(buf, 'd', len);
    int rc = weft_graph_dot(f->g_build, buf, len);
    size_t want = len - 1 < (size_t)full ? len - 1 : (size_t)full;
    bool ok = strnlen(buf, len) == want && strncmp(buf, f->g_dot[0], want) == 0;
    free(buf);
    return !ok ? TOUCHED : rc == full ? 0 : rc;
}

static int p_grun(struct fx *f, uint64_t h, int k)
{
    return weft_graph_run(h, dl(k));
}

/* A graph runs once: the running one and the one that has run. */
static int p_grun_twice(struct fx *f, uint64_t h, int k)
{
    return weft_graph_run(k / 2 ? f->g_ended : f->g_run, dl(k % 2));
}

/* Refused by validation: the graph stays as it was, buildable. */
static int p_grun_loose(struct fx *f, uint64_t h, int k)
{
    return weft_graph_run(f->g_build, dl(k));
}

static int p_grun_empty(struct fx *f, uint64_t h, int k)
{
    return weft_graph_run(f->g_empty, dl(k));
}

static int p_grun_cycle(struct fx *f, uint64_t h, int k)
{
    return weft_graph_run(f->g_cycle, dl(k));
}

/* Shutting down: a valid graph's run fails, and the graph has ended with
 * that code (a spare per context and variant). */
static int p_grun_stopping(struct fx *f, uint64_t h, int k)
{
    weft_graph g = f->g_spare[(f->ctx == STOP_THREAD ? 2 : 0) + k];
    int rc = weft_graph_run(g, dl(k));
    int w = weft_graph_wait(g, 0);
    return w == rc ? rc : TOUCHED;
}

static int p_gwait(struct fx *f, uint64_t h, int k)
{
    return weft_graph_wait(h, dl(k));
}

/* Not run: the loose, the valid, the empty and the cyclic graph (whose
 * runs validation refused), both deadlines. */
static int p_gwait_not_run(struct fx *f, uint64_t h, int k)
{
    weft_graph g[] = {f->g_build, f->g_ready, f->g_empty, f->g_cycle};
    return weft_graph_wait(g[k / 2], dl(k % 2));
}

/* The run goes on past the wait's deadline (0, now + 2 ms). */
static int p_gwait_running(struct fx *f, uint64_t h, int k)
{
    return weft_graph_wait(f->g_run, k ? weft_now() + 2 * MS : 0);
}

static int p_gwait_blocking(struct fx *f, uint64_t h, int k)
{
    return weft_graph_wait(f->g_run, k ? weft_now() + 5000 * MS : WEFT_FOREVER);
}

static int p_gwait_ended(struct fx *f, uint64_t h, int k)
{
    return weft_graph_wait(f->g_ended, dl(k));
}

static int p_gwait_node(struct fx *f, uint64_t h, int k)
{
    return weft_graph_wait_node(h, 0, dl(k));
}

static int p_gwait_node_not_run(struct fx *f, uint64_t h, int k)
{
    weft_graph g[] = {f->g_build, f->g_ready};
    return weft_graph_wait_node(g[k / 2], 0, dl(k % 2));
}

/* No such node: -1, 2, INT_MAX, INT_MIN and 1 in the running graph (1
 * node); -1, 2, INT_MAX, INT_MIN in the ended one (2 nodes). */
static int p_gwait_node_range(struct fx *f, uint64_t h, int k)
{
    static const weft_node nodes[] = {-1, 2, INT_MAX, INT_MIN, 1};
    return weft_graph_wait_node(k < 5 ? f->g_run : f->g_ended, nodes[k % 5], dl(k % 2));
}

static int p_gwait_node_running(struct fx *f, uint64_t h, int k)
{
    return weft_graph_wait_node(f->g_run, 0, k ? weft_now() + 2 * MS : 0);
}

static int p_gwait_node_blocking(struct fx *f, uint64_t h, int k)
{
    return weft_graph_wait_node(f->g_run, 0, k ? weft_now() + 5000 * MS : WEFT_FOREVER);
}

static int p_gwait_node_ended(struct fx *f, uint64_t h, int k)
{
    return weft_graph_wait_node(f->g_ended, k / 2, dl(k % 2));
}

static int p_gcancel(struct fx *f, uint64_t h, int k)
{
    return weft_graph_cancel(h);
}

static int p_gcancel_not_run(struct fx *f, uint64_t h, int k)
{
    weft_graph g[] = {f->g_build, f->g_ready, f->g_empty, f->g_cycle};
    return weft_graph_cancel(g[k]);
}

/* The ended graph: 0, and its result stays 0 (fx_check). */
static int p_gcancel_ended(struct fx *f, uint64_t h, int k)
{
    return weft_graph_cancel(f->g_ended);
}

/* A run of its own, cancelled (twice): the wait gives -ECANCELED, and every
 * value the source emitted was consumed or dropped. */
static int p_gcancel_running(struct fx *f, uint64_t h, int k)
{
    weft_graph g = temp_graph("cancelled", true, g_src_endless);
    if (!g)
        return BROKE;
    int rc = weft_graph_run(g, WEFT_FOREVER);
    if (rc) {
        weft_graph_release(g);
        return rc;
    }
    if (k)
        weft_sleep(weft_now() + MS);
    int c1 = weft_graph_cancel(g), c2 = weft_graph_cancel(g);
    int w = weft_graph_wait(g, WEFT_FOREVER);
    weft_graph_stats st;
    int s = weft_graph_get_stats(g, &st);
    int rel = weft_graph_release(g);
    if (c1 || c2 || s || rel || st.result != w || st.failed_node != -1 ||
        st.emitted != st.consumed + st.dropped)
        return TOUCHED;
    return w;
}

static int stats_untouched(weft_graph g)
{
    weft_graph_stats *st = malloc(sizeof *st);
    memset(st, 0xAB, sizeof *st);
    int rc = weft_graph_get_stats(g, st);
    bool touched = ((unsigned char *)st)[0] != 0xAB;
    free(st);
    return rc && touched ? TOUCHED : rc;
}

static int p_gstats(struct fx *f, uint64_t h, int k)
{
    return stats_untouched(h);
}

/* st NULL on the loose, the running and the ended graph and a forged
 * handle (checked before the handle). */
static int p_gstats_null(struct fx *f, uint64_t h, int k)
{
    weft_graph g[] = {f->g_build, f->g_run, f->g_ended, 0x100000001ull};
    return weft_graph_get_stats(g[k], NULL);
}

/* Before the run (the loose and the valid graph): result -EINPROGRESS, as
 * while running. */
static int p_gstats_not_run(struct fx *f, uint64_t h, int k)
{
    weft_graph_stats st;
    int rc = weft_graph_get_stats(k ? f->g_ready : f->g_build, &st);
    if (rc)
        return rc;
    return st.failed_node == -1 && !st.failed_name[0] && !st.emitted && !st.consumed && !st.dropped
               ? st.result
               : TOUCHED;
}

static int p_grelease(struct fx *f, uint64_t h, int k)
{
    return weft_graph_release(h);
}

static int p_grelease_running(struct fx *f, uint64_t h, int k)
{
    return weft_graph_release(f->g_run);
}

/* A release after the last one: k 0 at once; k 1 once a new graph may have
 * taken the slot (it survives); k 2 of a graph whose run validation
 * refused. */
static int p_grelease_twice(struct fx *f, uint64_t h, int k)
{
    weft_graph a = temp_graph("twice", k == 2, g_nop), b = 0;
    if (!a)
        return BROKE;
    if (k == 2) {
        weft_node_spec z = node_spec(WEFT_NODE_SINK, "loose");
        int rc = weft_graph_add(a, &z, NULL);
        if (rc || (rc = weft_graph_run(a, 0)) != -ENOTCONN)
            return rc ? rc : BROKE;
    }
    int rc = weft_graph_release(a);
    if (rc)
        return rc;
    if (k == 1 && !(b = temp_graph("survivor", false, NULL)))
        return BROKE;
    rc = weft_graph_release(a);
    if (k == 1 && (weft_graph_validate(b, NULL, 0) != -EINVAL || weft_graph_release(b) != 0 ||
                   weft_graph_release(b) != -EBADF))
        return TOUCHED;
    return rc;
}

/* The ports of a custom node with io NULL: every call, both deadlines, with
 * or without a runtime. */
static int p_node_null_io(struct fx *f, uint64_t h, int k)
{
    int v = 42;
    unsigned port = 77;
    int rc;
    switch (k / 2) {
    case 0: rc = weft_node_recv(NULL, 0, &v, dl(k % 2)); break;
    case 1: rc = weft_node_recv_any(NULL, &port, &v, dl(k % 2)); break;
    default: rc = weft_node_send(NULL, 0, &v, dl(k % 2)); break;
    }
    return v != 42 || port != 77 ? TOUCHED : rc;
}

/* In the body of g_run's node (ports: input 0 and output 0, of ints, one
 * edge of capacity 1 from the output to the input, empty). */
static int n_null(struct fx *f, uint64_t h, int k)
{
    int v = 42;
    unsigned port = 77;
    int rc;
    switch (k / 2) {
    case 0: rc = weft_node_recv(node_io, 0, NULL, dl(k % 2)); break;
    case 1: rc = weft_node_recv_any(node_io, &port, NULL, dl(k % 2)); break;
    case 2: rc = weft_node_recv_any(node_io, NULL, &v, dl(k % 2)); break;
    default: rc = weft_node_send(node_io, 0, NULL, dl(k % 2)); break;
    }
    return v != 42 || port != 77 ? TOUCHED : rc;
}
IN_NODE(null)

/* No such port: 1, 16, UINT_MAX, for recv and send. */
static int n_port(struct fx *f, uint64_t h, int k)
{
    static const unsigned ports[] = {1, WEFT_NODE_PORTS_MAX, UINT_MAX};
    int *v = malloc(sizeof *v);
    *v = 42;
    int rc = k < 3 ? weft_node_recv(node_io, ports[k], v, 0) : weft_node_send(node_io, ports[k - 3], v, 0);
    bool touched = *v != 42;
    free(v);
    return touched ? TOUCHED : rc;
}
IN_NODE(port)

/* The input is empty: recv and recv_any, deadline 0 and now + 2 ms. */
static int n_empty(struct fx *f, uint64_t h, int k)
{
    int v = 42;
    unsigned port = 77;
    int64_t deadline = k % 2 ? weft_now() + 2 * MS : 0;
    int rc = k / 2 ? weft_node_recv_any(node_io, &port, &v, deadline)
                   : weft_node_recv(node_io, 0, &v, deadline);
    return v != 42 || port != 77 ? TOUCHED : rc;
}
IN_NODE(empty)

/* The output is full after one send: a second one times out (deadline 0,
 * now + 2 ms); the value is then taken back. */
static int n_full(struct fx *f, uint64_t h, int k)
{
    int a = 5, b = 6, v = 0;
    unsigned port = 77;
    int rc = weft_node_send(node_io, 0, &a, 0);
    if (rc)
        return rc;
    int again = weft_node_send(node_io, 0, &b, k ? weft_now() + 2 * MS : 0);
    int back = weft_node_recv_any(node_io, &port, &v, 0);
    return back || v != 5 || port != 0 ? TOUCHED : again;
}
IN_NODE(full)

/* Valid calls: a value sent comes back through recv and recv_any. */
static int n_roundtrip(struct fx *f, uint64_t h, int k)
{
    int a = 9, v = 0;
    unsigned port = 77;
    int rc = weft_node_send(node_io, 0, &a, WEFT_FOREVER);
    if (rc)
        return rc;
    rc = k ? weft_node_recv_any(node_io, &port, &v, WEFT_FOREVER)
           : weft_node_recv(node_io, 0, &v, WEFT_FOREVER);
    return rc ? rc : v != 9 || (k && port != 0) ? TOUCHED : 0;
}
IN_NODE(roundtrip)

/* fx_check: the loop edge is empty. */
static int n_edge_empty(struct fx *f, uint64_t h, int k)
{
    int v = 0;
    return weft_node_recv(node_io, 0, &v, 0);
}

/* The graph calls that would wait: the running graph's end, its node's. */
static int a_graph(struct fx *f, uint64_t h, int k)
{
    int64_t deadline = weft_now() + 100 * MS;
    return k ? weft_graph_wait_node(f->g_run, 0, deadline) : weft_graph_wait(f->g_run, deadline);
}
IN_ACTOR(graph)

/* What works in a handler: building, checking, describing, stats and
 * release of a graph; waits that need not wait (an ended run; deadline
 * 0). */
static int a_graph_works(struct fx *f, uint64_t h, int k)
{
    weft_graph g = temp_graph("in-handler", true, g_nop);
    if (!g)
        return 1;
    weft_graph_stats st;
    char dot[512];
    int r[6] = {weft_graph_validate(g, NULL, 0), weft_graph_dot(g, dot, sizeof dot) > 0 ? 0 : 1,
                weft_graph_get_stats(g, &st), weft_graph_release(g),
                weft_graph_wait(f->g_ended, weft_now() + 100 * MS),
                weft_graph_wait(f->g_run, 0) == -EAGAIN ? 0 : 1};
    for (int i = 0; i < 6; i++)
        if (r[i])
            return 10 + i;
    return 0;
}
IN_ACTOR(graph_works)

/* ---- from an actor's handler: every wait is refused ------------------------------------------- */

static int a_recv(struct fx *f, uint64_t h, int k)
{
    return recv_untouched(NULL, dl(k));
}
IN_ACTOR(recv)

static int a_call(struct fx *f, uint64_t h, int k)
{
    return call_untouched(f->peer, TAG_ECHO, NULL, 0, dl(k));
}
IN_ACTOR(call)

/* A send to the full mailbox: deadline 0, -EAGAIN (a_send_full_now); a
 * deadline, -EPERM. */
static int a_send_full_now(struct fx *f, uint64_t h, int k)
{
    return k ? sendbuf_to(f->full, TAG_USER, 0) : weft_send(f->full, TAG_USER, NULL, 0, 0);
}
IN_ACTOR(send_full_now)

static int a_send_full(struct fx *f, uint64_t h, int k)
{
    int64_t deadline = weft_now() + (k % 2 ? 300 : 100) * MS;
    return k / 2 ? sendbuf_to(f->full, TAG_USER, deadline) : weft_send(f->full, TAG_USER, NULL, 0, deadline);
}
IN_ACTOR(send_full)

static int a_join(struct fx *f, uint64_t h, int k)
{
    intptr_t r = -7;
    int rc = weft_join(f->peer, &r, weft_now() + (k ? 300 : 100) * MS);
    return r == -7 ? rc : TOUCHED;
}
IN_ACTOR(join)

static int a_sleep(struct fx *f, uint64_t h, int k)
{
    return weft_sleep(weft_now() + (k ? 300 : 100) * MS);
}
IN_ACTOR(sleep)

static int a_chan(struct fx *f, uint64_t h, int k)
{
    int64_t deadline = weft_now() + (k / 2 ? 300 : 100) * MS;
    *f->elem = 42;
    return k % 2 ? weft_chan_send(f->rv, f->elem, sizeof(int), deadline)
                 : weft_chan_recv(f->rv, f->elem, sizeof(int), deadline);
}
IN_ACTOR(chan)

/* The dataflow calls that would wait: a get of the free variable, a read of
 * the empty queue, a write to the full broadcast stream. */
static int a_dataflow(struct fx *f, uint64_t h, int k)
{
    int64_t deadline = weft_now() + 100 * MS;
    *f->elem = 42;
    switch (k) {
    case 0: return weft_dvar_get(f->dv_free, f->elem, sizeof(int), deadline);
    case 1: return weft_stream_read(f->st_empty, f->elem, sizeof(int), deadline);
    default: return weft_stream_write(f->st, f->elem, sizeof(int), deadline);
    }
}
IN_ACTOR(dataflow)

static int a_sup_stop(struct fx *f, uint64_t h, int k)
{
    return weft_sup_stop(f->sup, k ? WEFT_FOREVER : 0);
}
IN_ACTOR(sup_stop)

static int a_sup_which(struct fx *f, uint64_t h, int k)
{
    return sup_which_untouched(f->sup, "idle", dl(k));
}
IN_ACTOR(sup_which)

static int a_sup_restarts(struct fx *f, uint64_t h, int k)
{
    return (int)weft_sup_restarts(f->sup, dl(k));
}
IN_ACTOR(sup_restarts)

/* weft_sup_start waits for the children's starts (k: linked or not). */
static int a_sup_start(struct fx *f, uint64_t h, int k)
{
    struct spec sp;
    good_spec(&sp);
    weft_pid pid = 77;
    int rc = weft_sup_start(&pid, &sp.s, k);
    return pid == 77 ? rc : TOUCHED;
}
IN_ACTOR(sup_start)

static int a_link_self(struct fx *f, uint64_t h, int k)
{
    return weft_link(weft_self());
}
IN_ACTOR(link_self)

/* What works in a handler: weft_self is the actor, its mailbox can be
 * bounded and counted, it may trap exits, link, monitor and spawn. (The
 * count is not asserted to be 0: it includes the message being handled,
 * see docs/misuse.md.) */
static int a_works(struct fx *f, uint64_t h, int k)
{
    if (weft_self() != f->actor)
        return 1;
    switch (k) {
    case 0:
        return weft_mailbox_len() >= 0 && weft_mailbox_bound(2) == 0 && weft_mailbox_bound(0) == 0 ? 0 : 2;
    case 1:
        return weft_trap_exits(1) == 0 && weft_trap_exits(0) == 1 ? 0 : 3;
    case 2:
        return p_link_live(f, h, 0);
    case 3: {
        uint64_t ref = 0;
        return weft_monitor(f->peer, &ref) == 0 && weft_demonitor(ref) == 0 ? 0 : 4;
    }
    default: {
        weft_actor_opts o;
        weft_actor_opts_init(&o);
        o.link = 1;
        weft_pid pid = 0;
        int rc = weft_actor_spawn(&pid, nop_actor, NULL, &o);
        return rc ? rc : weft_unlink(pid) == 0 && weft_kill(pid, WEFT_EXIT_KILL) == 0 ? 0 : 5;
    }
    }
}
IN_ACTOR(works)

/* ---- file descriptors, sockets, addresses, the offload pool ---------------------------------- */

/* Descriptors no call can use: negative, beyond any limit, beyond the
 * poller's table, and a number that was open and is closed. */
enum { NBADFD = 5 };
static int bad_fd(struct fx *f, int k)
{
    int fds[NBADFD] = {-1, INT_MIN, INT_MAX, 1 << 20, f->io.closed};
    return fds[k % NBADFD];
}

/* A deadline that waits (k odd: a later one) or, for a_* probes in a
 * handler, a short one. */
static int64_t wait_dl(int k)
{
    return k % 2 ? weft_now() + 5000 * MS : WEFT_FOREVER;
}

/* weft_fd_wait's events that are not READ and/or WRITE. */
static const int bad_events[] = {0, WEFT_FD_ERROR, WEFT_FD_HUP, 16, -1, INT_MAX, INT_MIN,
                                 WEFT_FD_READ | WEFT_FD_ERROR};
enum { NBADEVENTS = sizeof bad_events / sizeof bad_events[0] };

static int p_fd_wait_events(struct fx *f, uint64_t h, int k)
{
    return weft_fd_wait(f->io.sp[0], bad_events[k / 2], dl(k % 2));
}

static int p_fd_wait_bad(struct fx *f, uint64_t h, int k)
{
    return weft_fd_wait(bad_fd(f, k / 2), WEFT_FD_READ, dl(k % 2));
}

/* No runtime: the open socket and the bad descriptors alike. */
static int p_fd_wait_rt(struct fx *f, uint64_t h, int k)
{
    return weft_fd_wait(k / 2 ? bad_fd(f, k / 2 - 1) : f->io.sp[0], WEFT_FD_READ, dl(k % 2));
}

/* A wait that would block: the empty end of the socket pair. */
static int p_fd_wait_blocking(struct fx *f, uint64_t h, int k)
{
    return weft_fd_wait(f->io.sp[0], WEFT_FD_READ, wait_dl(k));
}

static int p_fd_wait_empty(struct fx *f, uint64_t h, int k)
{
    return weft_fd_wait(f->io.sp[0], WEFT_FD_READ, k ? weft_now() + 2 * MS : 0);
}

/* Ready now: the end holding a byte for READ, either end for WRITE. 0
 * when the events returned are the ones ready. */
static int p_fd_wait_ready(struct fx *f, uint64_t h, int k)
{
    static const int ask[] = {WEFT_FD_READ, WEFT_FD_WRITE, WEFT_FD_READ | WEFT_FD_WRITE, WEFT_FD_WRITE};
    static const int want[] = {WEFT_FD_READ, WEFT_FD_WRITE, WEFT_FD_READ | WEFT_FD_WRITE, WEFT_FD_WRITE};
    int fd = k == 3 ? f->io.sp[0] : f->io.sp[1];
    int rc = weft_fd_wait(fd, ask[k], WEFT_FOREVER);
    return rc == want[k] ? 0 : rc;
}

static int a_fd_wait(struct fx *f, uint64_t h, int k)
{
    return weft_fd_wait(f->io.sp[0], WEFT_FD_READ, weft_now() + (k ? 300 : 100) * MS);
}
IN_ACTOR(fd_wait)

static int a_fd_poll(struct fx *f, uint64_t h, int k)
{
    return weft_fd_wait(k ? f->io.sp[1] : f->io.sp[0], WEFT_FD_READ, 0) == (k ? WEFT_FD_READ : -ETIMEDOUT)
               ? 0
               : 1;
}
IN_ACTOR(fd_poll)

static int p_fd_close_bad(struct fx *f, uint64_t h, int k)
{
    return k < NBADFD ? weft_fd_close(bad_fd(f, k)) : weft_fd_forget(bad_fd(f, k - NBADFD));
}

/* A pipe's two ends, closed (k 0) or forgotten (k 1) through weft: 0,
 * and closed (or still open). */
static int p_fd_close_open(struct fx *f, uint64_t h, int k)
{
    int p[2];
    if (pipe(p) != 0)
        return BROKE;
    int rc[2];
    for (int i = 0; i < 2; i++)
        rc[i] = k ? weft_fd_forget(p[i]) : weft_fd_close(p[i]);
    bool open0 = fcntl(p[0], F_GETFD) >= 0, open1 = fcntl(p[1], F_GETFD) >= 0;
    if (k) {
        close(p[0]);
        close(p[1]);
    }
    if (rc[0] || rc[1])
        return rc[0] ? rc[0] : rc[1];
    return open0 == (k != 0) && open1 == (k != 0) ? 0 : TOUCHED;
}

/* The offload pool: fn and abandon count their runs. abandon runs, on a
 * helper thread, exactly when a call with abandon set fails with
 * -ETIMEDOUT or -ECANCELED: such a probe waits for it (io_check then
 * finds every count as the calls said). */
static atomic_int offload_runs, offload_expected, offload_abandons, offload_abandons_expected;

static void count_run(void *arg)
{
    atomic_fetch_add(&offload_runs, 1);
}

static void count_abandon(void *arg)
{
    atomic_fetch_add(&offload_abandons, 1);
}

static int offload_counted(weft_offload_fn *abandon, int64_t deadline)
{
    int rc = weft_offload(count_run, NULL, abandon, deadline);
    if (rc == 0)
        atomic_fetch_add(&offload_expected, 1);
    if (abandon && (rc == -ETIMEDOUT || rc == -ECANCELED)) {
        int want = atomic_fetch_add(&offload_abandons_expected, 1) + 1;
        for (int i = 0; i < 2000 && atomic_load(&offload_abandons) < want; i++)
            usleep(1000);
    }
    return rc;
}

static int p_offload_null(struct fx *f, uint64_t h, int k)
{
    return weft_offload(NULL, f, k / 2 ? count_abandon : NULL, dl(k % 2));
}

static int p_offload_valid(struct fx *f, uint64_t h, int k)
{
    return offload_counted(k / 2 ? count_abandon : NULL, dl(k % 2));
}

static int p_offload_runs(struct fx *f, uint64_t h, int k)
{
    return offload_counted(k ? count_abandon : NULL, WEFT_FOREVER);
}

static int p_offload_past(struct fx *f, uint64_t h, int k)
{
    return offload_counted(k / 2 ? count_abandon : NULL, k % 2 ? weft_now() - 1000 * MS : 0);
}

static int a_offload(struct fx *f, uint64_t h, int k)
{
    return weft_offload(count_run, f, k ? count_abandon : NULL, weft_now() + 100 * MS);
}
IN_ACTOR(offload)

/* Addresses. A probe's output is an exact heap block, its bytes 0x5a
 * before the call: TOUCHED if a refused call wrote it. */
static weft_addr *addr_block(void)
{
    weft_addr *a = malloc(sizeof *a);
    memset(a, 0x5a, sizeof *a);
    return a;
}

static int untouched(weft_addr *a, int rc)
{
    weft_addr fresh;
    memset(&fresh, 0x5a, sizeof fresh);
    bool same = memcmp(a, &fresh, sizeof fresh) == 0;
    free(a);
    return rc < 0 && !same ? TOUCHED : rc;
}

static const int bad_ports[] = {-1, 65536, INT_MIN, INT_MAX};
enum { NBADPORTS = sizeof bad_ports / sizeof bad_ports[0] };

static int p_addr_ip_null(struct fx *f, uint64_t h, int k)
{
    return weft_addr_ip(NULL, k ? NULL : "127.0.0.1", 80);
}

static int p_addr_ip_port(struct fx *f, uint64_t h, int k)
{
    weft_addr *a = addr_block();
    return untouched(a, weft_addr_ip(a, k / NBADPORTS ? NULL : "::1", bad_ports[k % NBADPORTS]));
}

static const char *const not_literals[] = {"", "localhost", "1.2.3", "1.2.3.4.5", "256.0.0.1",
                                           " 1.2.3.4", "::g", "[::1]", "fe80::1%",
                                           "fe80::1%no-such-if", "1.2.3.4:80"};
enum { NNOTLIT = sizeof not_literals / sizeof not_literals[0] };

static int p_addr_ip_text(struct fx *f, uint64_t h, int k)
{
    weft_addr *a = addr_block();
    if (k < NNOTLIT)
        return untouched(a, weft_addr_ip(a, not_literals[k], 80));
    char *longer = malloc(300); /* digits beyond any literal */
    memset(longer, '1', 299);
    longer[299] = '\0';
    int rc = untouched(a, weft_addr_ip(a, longer, 80));
    free(longer);
    return rc;
}

/* Literals and the ends of the port range: 0, and the text back. */
static int p_addr_ip_valid(struct fx *f, uint64_t h, int k)
{
    static const char *const ips[] = {"127.0.0.1", "::1", NULL, "fe80::1%1"};
    static const char *const texts[] = {"127.0.0.1:", "[::1]:", "0.0.0.0:", "[fe80::1%"};
    weft_addr a;
    int port = k / 4 ? 65535 : 0;
    int rc = weft_addr_ip(&a, ips[k % 4], port);
    if (rc)
        return rc;
    char buf[64];
    return weft_addr_port(&a) == port && weft_addr_format(&a, buf, sizeof buf) > 0 &&
                   strncmp(buf, texts[k % 4], strlen(texts[k % 4])) == 0
               ? 0
               : TOUCHED;
}

static int p_addr_unix_null(struct fx *f, uint64_t h, int k)
{
    weft_addr a;
    return k ? weft_addr_unix(&a, NULL) : weft_addr_unix(NULL, "/tmp/x");
}

/* Paths of 108 and 200 bytes, and 108 bytes without a terminator (an
 * exact block): sockaddr_un holds 107 and the terminator. */
static int p_addr_unix_long(struct fx *f, uint64_t h, int k)
{
    size_t n = k == 1 ? 200 : 108;
    char *path = malloc(k == 2 ? n : n + 1);
    memset(path, 'p', n);
    if (k != 2)
        path[n] = '\0';
    weft_addr *a = addr_block();
    int rc = untouched(a, weft_addr_unix(a, path));
    free(path);
    return rc;
}

static int p_addr_unix_empty(struct fx *f, uint64_t h, int k)
{
    weft_addr *a = addr_block();
    return untouched(a, weft_addr_unix(a, ""));
}

/* 1 and 107 bytes, exact blocks: 0, and the text back. */
static int p_addr_unix_valid(struct fx *f, uint64_t h, int k)
{
    size_t n = k ? 107 : 1;
    char *path = malloc(n + 1);
    memset(path, 'u', n);
    path[n] = '\0';
    weft_addr a;
    int rc = weft_addr_unix(&a, path);
    char buf[128];
    if (!rc && (weft_addr_format(&a, buf, sizeof buf) != (int)(5 + n) || strcmp(buf + 5, path)))
        rc = TOUCHED;
    free(path);
    return rc;
}

/* Addresses of no family, or with a length that does not fit theirs. */
enum { NBADADDRS = 7 };
static weft_addr bad_addr(int k)
{
    weft_addr a;
    memset(&a, 0, sizeof a);
    struct sockaddr *sa = (struct sockaddr *)&a.sa;
    static const int fam[NBADADDRS] = {0, 99, AF_INET, AF_INET6, AF_UNIX, AF_INET, AF_UNIX};
    static const unsigned len[NBADADDRS] = {16, 16, 4, 16, 1, 129, 200};
    sa->sa_family = (sa_family_t)fam[k];
    a.len = len[k];
    return a;
}

static int p_addr_format_null(struct fx *f, uint64_t h, int k)
{
    weft_addr a;
    weft_addr_ip(&a, "1.2.3.4", 5);
    char buf[64];
    return k ? weft_addr_format(&a, NULL, k == 1 ? 1 : 64) : weft_addr_format(NULL, buf, sizeof buf);
}

static int p_addr_format_family(struct fx *f, uint64_t h, int k)
{
    weft_addr a = bad_addr(k);
    char *buf = malloc(64);
    memset(buf, 'x', 64);
    int rc = weft_addr_format(&a, buf, 64);
    bool same = buf[0] == 'x' && buf[63] == 'x';
    free(buf);
    return rc < 0 && !same ? TOUCHED : rc;
}

/* Exact blocks of 1 to 12 bytes for "127.0.0.1:80" (12): -ENOSPC, the text
 * truncated and terminated; 13 bytes: 12; size 0: -ENOSPC, nothing written. */
static int p_addr_format_size(struct fx *f, uint64_t h, int k)
{
    weft_addr a;
    weft_addr_ip(&a, "127.0.0.1", 80);
    size_t size = (size_t)k;
    char *buf = malloc(size ? size : 1);
    buf[0] = 'x';
    int rc = weft_addr_format(&a, buf, size);
    int want = k <= 12 ? -ENOSPC : 12;
    bool ok = size == 0 ? buf[0] == 'x'
                        : strlen(buf) == (size < 13 ? size - 1 : 12) &&
                              strncmp(buf, "127.0.0.1:80", strlen(buf)) == 0;
    free(buf);
    return rc == want && ok ? 0 : rc == want ? TOUCHED : rc;
}

static int p_addr_port_null(struct fx *f, uint64_t h, int k)
{
    if (k == 0)
        return weft_addr_port(NULL);
    weft_addr a = bad_addr(k - 1);
    return weft_addr_port(&a);
}

static int p_addr_port_unix(struct fx *f, uint64_t h, int k)
{
    return weft_addr_port(&f->io.upath);
}

static int p_resolve_null(struct fx *f, uint64_t h, int k)
{
    weft_addr *a = addr_block();
    int64_t d = dl(k % 2);
    return untouched(a, k / 2 ? weft_addr_resolve("localhost", 80, AF_UNSPEC, NULL, 1, d)
                              : weft_addr_resolve(NULL, 80, AF_UNSPEC, a, 1, d));
}

/* max 0, -1, INT_MIN; ports; families -1, AF_UNIX, 99, INT_MAX. */
static int p_resolve_range(struct fx *f, uint64_t h, int k)
{
    static const int maxes[] = {0, -1, INT_MIN}, families[] = {-1, AF_UNIX, 99, INT_MAX};
    int max = 1, port = 80, family = AF_UNSPEC;
    if (k < 3)
        max = maxes[k];
    else if (k < 3 + NBADPORTS)
        port = bad_ports[k - 3];
    else
        family = families[k - 3 - NBADPORTS];
    weft_addr *a = addr_block();
    return untouched(a, weft_addr_resolve(k % 2 ? "localhost" : "127.0.0.1", port, family, a, max, 0));
}
enum { NRESOLVERANGE = 3 + NBADPORTS + 4 };

/* Literals resolve at once, with or without a runtime: 1 (returned as 0
 * with the address checked). */
static int p_resolve_literal(struct fx *f, uint64_t h, int k)
{
    weft_addr *a = addr_block();
    int rc = weft_addr_resolve(k ? "::1" : "127.0.0.1", 80, AF_UNSPEC, a, 1, WEFT_FOREVER);
    int port = weft_addr_port(a);
    free(a);
    return rc == 1 && port == 80 ? 0 : rc;
}

/* A literal of the other family than asked: -ENXIO. */
static int p_resolve_family(struct fx *f, uint64_t h, int k)
{
    weft_addr *a = addr_block();
    return untouched(a, k ? weft_addr_resolve("127.0.0.1", 80, AF_INET6, a, 1, WEFT_FOREVER)
                          : weft_addr_resolve("::1", 80, AF_INET, a, 1, WEFT_FOREVER));
}

/* A name (it needs the offload pool). */
static int p_resolve_name(struct fx *f, uint64_t h, int k)
{
    weft_addr *a = addr_block();
    return untouched(a, weft_addr_resolve("localhost", 80, AF_UNSPEC, a, 1, wait_dl(k)));
}

static int p_resolve_past(struct fx *f, uint64_t h, int k)
{
    weft_addr *a = addr_block();
    return untouched(a, weft_addr_resolve("localhost", 80, AF_UNSPEC, a, 1,
                                          k ? weft_now() - 1000 * MS : 0));
}

static int a_resolve(struct fx *f, uint64_t h, int k)
{
    weft_addr *a = addr_block();
    return untouched(a, weft_addr_resolve("localhost", 80, AF_UNSPEC, a, 1, weft_now() + 100 * MS));
}
IN_ACTOR(resolve)

static int p_sock_addr_null(struct fx *f, uint64_t h, int k)
{
    return weft_sock_addr(k ? f->io.listen : -1, NULL);
}

static int p_sock_addr_bad(struct fx *f, uint64_t h, int k)
{
    weft_addr *a = addr_block();
    return untouched(a, weft_sock_addr(bad_fd(f, k), a));
}

static int p_sock_addr_notsock(struct fx *f, uint64_t h, int k)
{
    weft_addr *a = addr_block();
    return untouched(a, weft_sock_addr(k ? f->fd_ro : f->io.pipe[0], a));
}

/* The fixture listener's address: 0 when it comes back whole. */
static int p_sock_addr_valid(struct fx *f, uint64_t h, int k)
{
    weft_addr a;
    int rc = weft_sock_addr(f->io.listen, &a);
    return rc ? rc : a.len == f->io.laddr.len && memcmp(&a.sa, &f->io.laddr.sa, a.len) == 0 ? 0 : TOUCHED;
}

/* listen and connect: NULL, and the addresses of no family (k). */
static int p_listen_null(struct fx *f, uint64_t h, int k)
{
    return weft_listen(NULL, k ? 0 : 16);
}

static int p_listen_family(struct fx *f, uint64_t h, int k)
{
    if (k == NBADADDRS) { /* an unnamed Unix address: nothing to bind */
        weft_addr a = bad_addr(4);
        a.len = sizeof(sa_family_t);
        return weft_listen(&a, 0);
    }
    weft_addr a = bad_addr(k);
    return weft_listen(&a, 0);
}

/* A valid address: TCP on a free port of 127.0.0.1 (k 0), a Unix path in
 * the fixture's directory (k 1). A listener made is closed again. */
static int p_listen_valid(struct fx *f, uint64_t h, int k)
{
    weft_addr a;
    weft_addr_ip(&a, "127.0.0.1", 0);
    int rc = weft_listen(k ? &f->io.upath : &a, 0);
    if (rc >= 0) {
        weft_fd_close(rc);
        unlink(f->io.path);
        return 0;
    }
    return rc;
}

static int p_listen_in_use(struct fx *f, uint64_t h, int k)
{
    return weft_listen(k ? &f->io.ufull_addr : &f->io.laddr, 0);
}

static int p_accept_bad(struct fx *f, uint64_t h, int k)
{
    weft_addr *a = addr_block();
    return untouched(a, weft_accept(bad_fd(f, k / 2), a, dl(k % 2)));
}

static int p_accept_rt(struct fx *f, uint64_t h, int k)
{
    weft_addr *a = addr_block();
    return untouched(a, weft_accept(k / 2 ? bad_fd(f, k / 2 - 1) : f->io.listen, a, dl(k % 2)));
}

static int p_accept_blocking(struct fx *f, uint64_t h, int k)
{
    weft_addr *a = addr_block();
    return untouched(a, weft_accept(f->io.listen, a, wait_dl(k)));
}

static int p_accept_empty(struct fx *f, uint64_t h, int k)
{
    weft_addr *a = addr_block();
    return untouched(a, weft_accept(f->io.listen, a, k ? weft_now() + 2 * MS : 0));
}

static int p_accept_notsock(struct fx *f, uint64_t h, int k)
{
    return weft_accept(k ? f->fd_ro : f->io.pipe[0], NULL, dl(k % 2));
}

static int p_accept_not_listening(struct fx *f, uint64_t h, int k)
{
    return weft_accept(k / 2 ? f->io.unconnected : f->io.sp[0], NULL, dl(k % 2));
}

static int a_accept(struct fx *f, uint64_t h, int k)
{
    return weft_accept(f->io.listen, NULL, weft_now() + (k ? 300 : 100) * MS);
}
IN_ACTOR(accept)

static int p_connect_null(struct fx *f, uint64_t h, int k)
{
    return weft_connect(NULL, dl(k));
}

static int p_connect_family(struct fx *f, uint64_t h, int k)
{
    weft_addr a = bad_addr(k / 2);
    return weft_connect(&a, dl(k % 2));
}

/* Valid addresses: the refused port, the missing path, the listener. */
static int p_connect_rt(struct fx *f, uint64_t h, int k)
{
    const weft_addr *a[] = {&f->io.refused, &f->io.upath, &f->io.laddr};
    int rc = weft_connect(a[k / 2], dl(k % 2));
    if (rc >= 0)
        weft_fd_close(rc);
    return rc;
}

static int p_connect_refused(struct fx *f, uint64_t h, int k)
{
    return weft_connect(&f->io.refused, k ? weft_now() + 5000 * MS : WEFT_FOREVER);
}

static int p_connect_no_path(struct fx *f, uint64_t h, int k)
{
    return weft_connect(&f->io.upath, dl(k));
}

/* The Unix listener whose backlog is full: a connect waits for room. */
static int p_connect_full(struct fx *f, uint64_t h, int k)
{
    int rc = weft_connect(&f->io.ufull_addr, k ? weft_now() + 2 * MS : 0);
    if (rc >= 0)
        weft_fd_close(rc);
    return rc;
}

static int a_connect(struct fx *f, uint64_t h, int k)
{
    int rc = weft_connect(&f->io.ufull_addr, weft_now() + (k ? 300 : 100) * MS);
    if (rc >= 0)
        weft_fd_close(rc);
    return rc;
}
IN_ACTOR(connect)

/* Reads and writes: which call (k % 4: read, read_exactly, write,
 * write_all), then the variant. Every buffer is f->elem, one int. */
enum { NRW = 4 };
static ssize_t rw(int which, int fd, void *buf, size_t len, int64_t deadline)
{
    switch (which) {
    case 0: return weft_read(fd, buf, len, deadline);
    case 1: return weft_read_exactly(fd, buf, len, deadline);
    case 2: return weft_write(fd, buf, len, deadline);
    default: return weft_write_all(fd, buf, len, deadline);
    }
}

/* A read's descriptor that would wait: the empty end of the pair; a
 * write's: the full socket. */
static int idle_fd(struct fx *f, int which)
{
    return which < 2 ? f->io.sp[0] : f->io.full[0];
}

static int rw_untouched(int which, int fd, size_t len, int64_t deadline)
{
    int *buf = malloc(sizeof *buf);
    *buf = 42;
    ssize_t rc = rw(which, fd, buf, len, deadline);
    bool same = *buf == 42;
    free(buf);
    return rc < 0 && !same ? TOUCHED : (int)rc;
}

static int p_rw_null(struct fx *f, uint64_t h, int k)
{
    return (int)rw(k % NRW, f->io.sp[1], NULL, k / NRW % 2 ? 64 : 1, dl(k / (2 * NRW)));
}

static int p_rw_size(struct fx *f, uint64_t h, int k)
{
    static const size_t sizes[] = {SIZE_MAX, (size_t)SSIZE_MAX + 1, (size_t)(ssize_t)INT_MIN};
    return rw_untouched(k % NRW, f->io.sp[1], sizes[k / NRW % 3], dl(k / (3 * NRW)));
}

/* Length 0: 0 at once, whatever the buffer (NULL or not), the descriptor
 * and the runtime. */
static int p_rw_len0(struct fx *f, uint64_t h, int k)
{
    int fd = k / NRW % 2 ? bad_fd(f, 0) : idle_fd(f, k % NRW);
    return (int)rw(k % NRW, fd, k / (2 * NRW) % 2 ? NULL : f->elem, 0, WEFT_FOREVER);
}

static int p_rw_bad(struct fx *f, uint64_t h, int k)
{
    return rw_untouched(k % NRW, bad_fd(f, k / NRW % NBADFD), sizeof(int), dl(k / (NRW * NBADFD)));
}

/* No runtime: the pair's end that holds a byte, the bad descriptors. */
static int p_rw_rt(struct fx *f, uint64_t h, int k)
{
    int v = k / NRW;
    return rw_untouched(k % NRW, v / 2 ? bad_fd(f, v / 2 - 1) : f->io.sp[1], sizeof(int), dl(v % 2));
}

static int p_rw_blocking(struct fx *f, uint64_t h, int k)
{
    return rw_untouched(k % NRW, idle_fd(f, k % NRW), sizeof(int), wait_dl(k / NRW));
}

static int p_rw_empty(struct fx *f, uint64_t h, int k)
{
    return rw_untouched(k % NRW, idle_fd(f, k % NRW), sizeof(int),
                        k / NRW ? weft_now() + 2 * MS : 0);
}

/* The wrong direction: a read of /dev/null opened for writing, a write to
 * it opened for reading. */
static int p_rw_wrong_mode(struct fx *f, uint64_t h, int k)
{
    int which = k % NRW;
    return rw_untouched(which, which < 2 ? f->fd_null : f->fd_ro, sizeof(int), dl(k / NRW));
}

/* A write to a pipe whose reader is gone (SIGPIPE is not raised: the
 * matrix ignores it, tests/test-socket.c checks it is never sent). */
static int p_write_broken(struct fx *f, uint64_t h, int k)
{
    return rw_untouched(2 + k % 2, f->io.pipe_broken, sizeof(int), dl(k / 2));
}

static int a_rw(struct fx *f, uint64_t h, int k)
{
    return rw_untouched(k % NRW, idle_fd(f, k % NRW), sizeof(int), weft_now() + 100 * MS);
}
IN_ACTOR(rw)

static int p_shutdown_how(struct fx *f, uint64_t h, int k)
{
    static const int hows[] = {-1, 3, INT_MAX, INT_MIN};
    return weft_shutdown(k / 4 ? bad_fd(f, 0) : f->io.sp[0], hows[k % 4]);
}

static int p_shutdown_bad(struct fx *f, uint64_t h, int k)
{
    return weft_shutdown(bad_fd(f, k), SHUT_RDWR);
}

static int p_shutdown_notsock(struct fx *f, uint64_t h, int k)
{
    return weft_shutdown(k ? f->fd_ro : f->io.pipe[0], SHUT_WR);
}

static int p_shutdown_notconn(struct fx *f, uint64_t h, int k)
{
    return weft_shutdown(f->io.unconnected, k ? SHUT_RDWR : SHUT_WR);
}

/* ---- the table ---------------------------------------------------------------------------- */

#define M true  /* [misuse] */
#define R false /* a run-time code */
#define ROW(id, fn, col, hk, where, nvar, expect, misuse) \
    {#id, fn, col, hk, where, nvar, expect, misuse, p_##id}
#define ROWF(id, call, fn, col, hk, where, nvar, expect, misuse) \
    {#id, fn, col, hk, where, nvar, expect, misuse, p_##call}
#define RW_FNS "weft_read, weft_read_exactly, weft_write, weft_write_all"

static const struct probe probes[] = {
    /* errors, time, memory */
    ROW(strerror_unknown, "weft_strerror", C_BAD, H_NONE, ANY, 6, 0, R),
    ROW(now_any, "weft_now", C_RT, H_NONE, ANY, 1, 0, R),
    ROW(set_allocator_busy, "weft_set_allocator", C_RT, H_NONE, LIVE, 2, -EBUSY, M),
    ROW(set_allocator_null, "weft_set_allocator", C_NULL, H_NONE, NO_RT, 1, 0, R),
    /* runtime */
    ROW(config_init_null, "weft_config_init", C_NULL, H_NONE, ANY, 1, 0, R),
    ROW(run_null_fn, "weft_run", C_NULL, H_NONE, NO_RT, 2, -EINVAL, M),
    ROW(run_cfg_einval, "weft_run", C_SIZE, H_NONE, NO_RT, CFG_EINVAL, -EINVAL, M),
    ROW(run_cfg_e2big, "weft_run", C_SIZE, H_NONE, NO_RT, CFG_E2BIG, -E2BIG, M),
    ROW(run_busy, "weft_run", C_CTX, H_NONE, LIVE, 1, -EBUSY, M),
    ROW(start_cfg_einval, "weft_start", C_SIZE, H_NONE, NO_RT, CFG_EINVAL, -EINVAL, M),
    ROW(start_cfg_e2big, "weft_start", C_SIZE, H_NONE, NO_RT, CFG_E2BIG, -E2BIG, M),
    ROW(start_busy, "weft_start", C_CTX, H_NONE, LIVE, 2, -EBUSY, M),
    ROWF(stop_in_proc, stop, "weft_stop", C_CTX, H_NONE, INPROC, 2, -EPERM, M),
    ROWF(stop_none, stop, "weft_stop", C_RT, H_NONE, NO_RT, 2, -ESHUTDOWN, R),
    ROW(attach_none, "weft_thread_attach", C_RT, H_NONE, NO_RT, 1, -ESHUTDOWN, R),
    ROW(attach_then_detach, "weft_thread_attach", C_RT, H_NONE, LIVE, 1, 0, R),
    ROWF(detach_thread_none, detach_thread, "weft_thread_detach", C_RT, H_NONE, NO_RT, 1, -ESHUTDOWN, R),
    ROWF(detach_thread_unattached, detach_thread, "weft_thread_detach", C_STATE, H_NONE, LIVE, 1,
         -EINVAL, M),
    ROW(workers_none, "weft_workers", C_RT, H_NONE, NO_RT, 1, -ESHUTDOWN, R),
    ROW(workers_live, "weft_workers", C_RT, H_NONE, LIVE, 1, 0, R),
    /* processes */
    ROW(opts_init_null, "weft_spawn_opts_init", C_NULL, H_NONE, ANY, 1, 0, R),
    ROW(spawn_null_fn, "weft_spawn(_at)", C_NULL, H_NONE, ANY, 6, -EINVAL, M),
    ROW(spawn_null_pid, "weft_spawn(_at)", C_NULL, H_NONE, ANY, 6, -EINVAL, M),
    ROW(spawn_stack_small, "weft_spawn(_at)", C_SIZE, H_NONE, ANY, 6, -EINVAL, M),
    ROW(spawn_stack_big, "weft_spawn(_at)", C_SIZE, H_NONE, ANY, 6, -E2BIG, M),
    ROW(spawn_stack_limits, "weft_spawn(_at)", C_SIZE, H_NONE, RUN, 12, 0, R),
    ROW(spawn_bad_worker, "weft_spawn(_at)", C_SIZE, H_NONE, RUN, 10, -EINVAL, M),
    ROWF(spawn_bad_worker_stopping, spawn_bad_worker, "weft_spawn(_at)", C_RT, H_NONE, STOPPING, 10,
         -ECANCELED, R),
    ROWF(spawn_bad_worker_none, spawn_bad_worker, "weft_spawn(_at)", C_RT, H_NONE, NO_RT, 10, -ESHUTDOWN, R),
    ROWF(spawn_stopping, spawn_valid, "weft_spawn(_at)", C_RT, H_NONE, STOPPING, 6, -ECANCELED, R),
    ROWF(spawn_none, spawn_valid, "weft_spawn(_at)", C_RT, H_NONE, NO_RT, 6, -ESHUTDOWN, R),
    ROW(join_null_result, "weft_join", C_NULL, H_NONE, RUN, 3, 0, R),
    ROWF(join_bad, join, "weft_join", C_BAD, H_PID, LIVE, 2, -ESRCH, M),
    ROWF(join_stale, join, "weft_join", C_STALE, H_PID, LIVE, 2, -ESRCH, M),
    ROWF(join_none, join, "weft_join", C_RT, H_PID, NO_RT, 2, -ESHUTDOWN, R),
    ROW(join_self, "weft_join", C_CTX, H_NONE, INPROC, 2, -EDEADLK, M),
    ROW(join_detached, "weft_join", C_STATE, H_NONE, RUN, 2, -EINVAL, M),
    ROWF(detach_bad, detach, "weft_detach", C_BAD, H_PID, LIVE, 1, -ESRCH, M),
    ROWF(detach_stale, detach, "weft_detach", C_STALE, H_PID, LIVE, 1, -ESRCH, M),
    ROWF(detach_none, detach, "weft_detach", C_RT, H_PID, NO_RT, 1, -ESHUTDOWN, R),
    ROW(detach_detached, "weft_detach", C_STATE, H_NONE, RUN, 1, -EINVAL, M),
    ROW(self_outside, "weft_self", C_CTX, H_NONE, OUTSIDE, 1, 0, R),
    ROW(self_in_proc, "weft_self", C_CTX, H_NONE, INPROC, 1, 0, R),
    ROWF(yield_ok, yield, "weft_yield", C_CTX, H_NONE, OUTSIDE | IN_PROC, 1, 0, R),
    ROWF(yield_stopping, yield, "weft_yield", C_RT, H_NONE, STOP_PROC, 1, -ECANCELED, R),
    ROW(sleep_past, "weft_sleep", C_RT, H_NONE, RUN | NO_RT, 2, 0, R),
    ROW(sleep_stopping, "weft_sleep", C_RT, H_NONE, STOPPING, 3, -ECANCELED, R),
    ROW(exit_outside, "weft_exit", C_CTX, H_NONE, OUTSIDE, 2, -EPERM, M),
    ROW(name_null_buf, "weft_proc_name", C_NULL, H_NONE, ANY, 2, -EINVAL, M),
    ROW(name_len0, "weft_proc_name", C_SIZE, H_NONE, ANY, 1, -EINVAL, M),
    ROW(name_truncate, "weft_proc_name", C_SIZE, H_NONE, LIVE, WEFT_NAME_MAX + 1, 0, R),
    ROWF(name_bad, name, "weft_proc_name", C_BAD, H_PID, LIVE, 1, -ESRCH, M),
    ROWF(name_stale, name, "weft_proc_name", C_STALE, H_PID, LIVE, 1, -ESRCH, M),
    ROWF(name_none, name, "weft_proc_name", C_RT, H_PID, NO_RT, 1, -ESHUTDOWN, R),
    ROW(worker_id_outside, "weft_worker_id", C_CTX, H_NONE, OUTSIDE, 1, -EPERM, M),
    ROW(worker_id_in_proc, "weft_worker_id", C_CTX, H_NONE, INPROC, 1, 0, R),
    /* channels */
    ROW(make_null, "weft_chan_make", C_NULL, H_NONE, ANY, 2, -EINVAL, M),
    ROW(make_elem_bad, "weft_chan_make", C_SIZE, H_NONE, ANY, 6, -EINVAL, M),
    ROW(make_buffer_big, "weft_chan_make", C_SIZE, H_NONE, ANY, 6, -E2BIG, M),
    ROW(make_limits, "weft_chan_make", C_SIZE, H_NONE, RUN, 4, 0, R),
    ROWF(make_stopping, make_valid, "weft_chan_make", C_RT, H_NONE, STOPPING, 2, -ECANCELED, R),
    ROWF(make_none, make_valid, "weft_chan_make", C_RT, H_NONE, NO_RT, 2, -ESHUTDOWN, R),
    ROW(send_null, "weft_chan_send", C_NULL, H_NONE, ANY, 4, -EINVAL, M),
    ROWF(send_bad, send, "weft_chan_send", C_BAD, H_CHAN, LIVE, 2, -EBADF, R),
    ROWF(send_stale, send, "weft_chan_send", C_STALE, H_CHAN, LIVE, 2, -EBADF, R),
    ROWF(send_none, send, "weft_chan_send", C_RT, H_CHAN, NO_RT, 2, -ESHUTDOWN, R),
    ROW(send_size, "weft_chan_send", C_SIZE, H_NONE, LIVE, 6 * NWRONG, -EMSGSIZE, M),
    ROW(send_blocking, "weft_chan_send", C_RT, H_NONE, STOPPING, 2, -ECANCELED, R),
    ROW(recv_null, "weft_chan_recv", C_NULL, H_NONE, ANY, 4, -EINVAL, M),
    ROWF(recv_bad, recv, "weft_chan_recv", C_BAD, H_CHAN, LIVE, 2, -EBADF, R),
    ROWF(recv_stale, recv, "weft_chan_recv", C_STALE, H_CHAN, LIVE, 2, -EBADF, R),
    ROWF(recv_none, recv, "weft_chan_recv", C_RT, H_CHAN, NO_RT, 2, -ESHUTDOWN, R),
    ROW(recv_size, "weft_chan_recv", C_SIZE, H_NONE, LIVE, 6 * NWRONG, -EMSGSIZE, M),
    ROW(recv_blocking, "weft_chan_recv", C_RT, H_NONE, STOPPING, 2, -ECANCELED, R),
    ROWF(close_bad, close, "weft_chan_close", C_BAD, H_CHAN, LIVE, 1, -EBADF, M),
    ROWF(close_stale, close, "weft_chan_close", C_STALE, H_CHAN, LIVE, 1, -EBADF, M),
    ROWF(close_none, close, "weft_chan_close", C_RT, H_CHAN, NO_RT, 1, -ESHUTDOWN, R),
    ROW(close_twice, "weft_chan_close", C_STATE, H_NONE, LIVE, 1, -EPIPE, M),
    ROWF(retain_bad, retain, "weft_chan_retain", C_BAD, H_CHAN, LIVE, 1, -EBADF, M),
    ROWF(retain_stale, retain, "weft_chan_retain", C_STALE, H_CHAN, LIVE, 1, -EBADF, M),
    ROWF(retain_none, retain, "weft_chan_retain", C_RT, H_CHAN, NO_RT, 1, -ESHUTDOWN, R),
    ROWF(release_bad, release, "weft_chan_release", C_BAD, H_CHAN, LIVE, 1, -EBADF, M),
    ROWF(release_stale, release, "weft_chan_release", C_STALE, H_CHAN, LIVE, 1, -EBADF, M),
    ROWF(release_none, release, "weft_chan_release", C_RT, H_CHAN, NO_RT, 1, -ESHUTDOWN, R),
    ROW(release_twice, "weft_chan_release", C_STATE, H_NONE, RUN, 2, -EBADF, M),
    ROWF(len_bad, len, "weft_chan_len", C_BAD, H_CHAN, LIVE, 1, -EBADF, R),
    ROWF(len_stale, len, "weft_chan_len", C_STALE, H_CHAN, LIVE, 1, -EBADF, R),
    ROWF(len_none, len, "weft_chan_len", C_RT, H_CHAN, NO_RT, 1, -ESHUTDOWN, R),
    ROWF(cap_bad, cap, "weft_chan_cap", C_BAD, H_CHAN, LIVE, 1, -EBADF, R),
    ROWF(cap_stale, cap, "weft_chan_cap", C_STALE, H_CHAN, LIVE, 1, -EBADF, R),
    ROWF(cap_none, cap, "weft_chan_cap", C_RT, H_CHAN, NO_RT, 1, -ESHUTDOWN, R),
    /* select */
    ROW(select_null_cases, "weft_select", C_NULL, H_NONE, ANY, 2, -EINVAL, M),
    ROW(select_null_buf, "weft_select", C_NULL, H_NONE, ANY, 4, -EINVAL, M),
    ROW(select_n, "weft_select", C_SIZE, H_NONE, ANY, 3, -EINVAL, M),
    ROW(select_kind, "weft_select", C_BAD, H_NONE, ANY, 5, -EINVAL, M),
    ROW(select_policy, "weft_select", C_BAD, H_NONE, ANY, 4, -EINVAL, M),
    ROWF(select_bad, select, "weft_select", C_BAD, H_CHAN, LIVE, 8, -EBADF, R),
    ROWF(select_stale, select, "weft_select", C_STALE, H_CHAN, LIVE, 8, -EBADF, R),
    ROWF(select_none, select, "weft_select", C_RT, H_CHAN, NO_RT, 8, -ESHUTDOWN, R),
    ROW(select_size, "weft_select", C_SIZE, H_NONE, LIVE, 4 * NWRONG, -EMSGSIZE, M),
    ROW(select_max, "weft_select", C_SIZE, H_NONE, LIVE, 2, -ETIMEDOUT, R),
    ROW(select_disabled, "weft_select", C_BAD, H_NONE, LIVE, 2, -ETIMEDOUT, R),
    ROW(select_blocking, "weft_select", C_RT, H_NONE, STOPPING, 3, -ECANCELED, R),
    /* dataflow variables */
    ROW(dvar_make_null, "weft_dvar_make", C_NULL, H_NONE, ANY, 2, -EINVAL, M),
    ROW(dvar_make_size, "weft_dvar_make", C_SIZE, H_NONE, ANY, 3, -EINVAL, M),
    ROW(dvar_make_limits, "weft_dvar_make", C_SIZE, H_NONE, RUN, 2, 0, R),
    ROWF(dvar_make_stopping, dvar_make_valid, "weft_dvar_make", C_RT, H_NONE, STOPPING, 1, -ECANCELED, R),
    ROWF(dvar_make_none, dvar_make_valid, "weft_dvar_make", C_RT, H_NONE, NO_RT, 1, -ESHUTDOWN, R),
    ROW(dvar_bind_null, "weft_dvar_bind", C_NULL, H_NONE, ANY, 4, -EINVAL, M),
    ROWF(dvar_bind_bad, dvar_bind, "weft_dvar_bind", C_BAD, H_DVAR, LIVE, 1, -EBADF, M),
    ROWF(dvar_bind_stale, dvar_bind, "weft_dvar_bind", C_STALE, H_DVAR, LIVE, 1, -EBADF, M),
    ROWF(dvar_bind_none, dvar_bind, "weft_dvar_bind", C_RT, H_DVAR, NO_RT, 1, -ESHUTDOWN, R),
    ROW(dvar_bind_size, "weft_dvar_bind", C_SIZE, H_NONE, LIVE, 2 * NWRONG, -EMSGSIZE, M),
    ROW(dvar_bind_twice, "weft_dvar_bind, weft_dvar_fail", C_STATE, H_NONE, LIVE, 2, -EALREADY, R),
    ROW(dvar_fail_err, "weft_dvar_fail", C_SIZE, H_NONE, ANY, 3, -EINVAL, M),
    ROWF(dvar_fail_bad, dvar_fail, "weft_dvar_fail", C_BAD, H_DVAR, LIVE, 1, -EBADF, M),
    ROWF(dvar_fail_stale, dvar_fail, "weft_dvar_fail", C_STALE, H_DVAR, LIVE, 1, -EBADF, M),
    ROWF(dvar_fail_none, dvar_fail, "weft_dvar_fail", C_RT, H_DVAR, NO_RT, 1, -ESHUTDOWN, R),
    ROW(dvar_get_null, "weft_dvar_get", C_NULL, H_NONE, ANY, 4, -EINVAL, M),
    ROWF(dvar_get_bad, dvar_get, "weft_dvar_get", C_BAD, H_DVAR, LIVE, 2, -EBADF, R),
    ROWF(dvar_get_stale, dvar_get, "weft_dvar_get", C_STALE, H_DVAR, LIVE, 2, -EBADF, R),
    ROWF(dvar_get_none, dvar_get, "weft_dvar_get", C_RT, H_DVAR, NO_RT, 2, -ESHUTDOWN, R),
    ROW(dvar_get_size, "weft_dvar_get", C_SIZE, H_NONE, LIVE, 4 * NWRONG, -EMSGSIZE, M),
    ROW(dvar_get_unbound, "weft_dvar_get", C_STATE, H_NONE, LIVE, 1, -ETIMEDOUT, R),
    ROW(dvar_get_blocking, "weft_dvar_get", C_RT, H_NONE, STOPPING, 2, -ECANCELED, R),
    ROWF(dvar_bound_bad, dvar_bound, "weft_dvar_bound", C_BAD, H_DVAR, LIVE, 1, -EBADF, R),
    ROWF(dvar_bound_stale, dvar_bound, "weft_dvar_bound", C_STALE, H_DVAR, LIVE, 1, -EBADF, R),
    ROWF(dvar_bound_none, dvar_bound, "weft_dvar_bound", C_RT, H_DVAR, NO_RT, 1, -ESHUTDOWN, R),
    ROWF(dvar_retain_bad, dvar_retain, "weft_dvar_retain", C_BAD, H_DVAR, LIVE, 1, -EBADF, M),
    ROWF(dvar_retain_stale, dvar_retain, "weft_dvar_retain", C_STALE, H_DVAR, LIVE, 1, -EBADF, M),
    ROWF(dvar_retain_none, dvar_retain, "weft_dvar_retain", C_RT, H_DVAR, NO_RT, 1, -ESHUTDOWN, R),
    ROWF(dvar_release_bad, dvar_release, "weft_dvar_release", C_BAD, H_DVAR, LIVE, 1, -EBADF, M),
    ROWF(dvar_release_stale, dvar_release, "weft_dvar_release", C_STALE, H_DVAR, LIVE, 1, -EBADF, M),
    ROWF(dvar_release_none, dvar_release, "weft_dvar_release", C_RT, H_DVAR, NO_RT, 1, -ESHUTDOWN, R),
    ROW(dvar_release_twice, "weft_dvar_release", C_STATE, H_NONE, RUN, 2, -EBADF, M),
    ROWF(select_dvar_bad, select_dvar, "weft_select (dataflow cases)", C_BAD, H_DVAR, LIVE, 4, -EBADF, R),
    ROWF(select_dvar_stale, select_dvar, "weft_select (dataflow cases)", C_STALE, H_DVAR, LIVE, 4,
         -EBADF, R),
    ROWF(select_dvar_none, select_dvar, "weft_select (dataflow cases)", C_RT, H_DVAR, NO_RT, 4,
         -ESHUTDOWN, R),
    ROWF(select_stream_bad, select_stream, "weft_select (dataflow cases)", C_BAD, H_STREAM, LIVE, 4,
         -EBADF, R),
    ROWF(select_stream_stale, select_stream, "weft_select (dataflow cases)", C_STALE, H_STREAM, LIVE, 4,
         -EBADF, R),
    ROWF(select_stream_none, select_stream, "weft_select (dataflow cases)", C_RT, H_STREAM, NO_RT, 4,
         -ESHUTDOWN, R),
    ROW(select_df_size, "weft_select (dataflow cases)", C_SIZE, H_NONE, LIVE, 6 * NWRONG, -EMSGSIZE, M),
    ROW(select_df_broadcast, "weft_select (dataflow cases)", C_BAD, H_NONE, LIVE, 4, -EINVAL, M),
    /* streams */
    ROW(smake_null, "weft_stream_make", C_NULL, H_NONE, ANY, 2, -EINVAL, M),
    ROW(smake_bad, "weft_stream_make", C_SIZE, H_NONE, ANY, 7, -EINVAL, M),
    ROW(smake_big, "weft_stream_make", C_SIZE, H_NONE, ANY, 6, -E2BIG, M),
    ROW(smake_limits, "weft_stream_make", C_SIZE, H_NONE, RUN, 4, 0, R),
    ROWF(smake_stopping, smake_valid, "weft_stream_make", C_RT, H_NONE, STOPPING, 2, -ECANCELED, R),
    ROWF(smake_none, smake_valid, "weft_stream_make", C_RT, H_NONE, NO_RT, 2, -ESHUTDOWN, R),
    ROW(sreader_null, "weft_stream_reader", C_NULL, H_NONE, ANY, 2, -EINVAL, M),
    ROWF(sreader_bad, sreader, "weft_stream_reader", C_BAD, H_STREAM, LIVE, 1, -EBADF, M),
    ROWF(sreader_stale, sreader, "weft_stream_reader", C_STALE, H_STREAM, LIVE, 1, -EBADF, M),
    ROWF(sreader_none, sreader, "weft_stream_reader", C_RT, H_STREAM, NO_RT, 1, -ESHUTDOWN, R),
    ROW(sreader_of_reader, "weft_stream_reader", C_BAD, H_NONE, LIVE, 1, -EBADF, M),
    ROW(swrite_null, "weft_stream_write", C_NULL, H_NONE, ANY, 4, -EINVAL, M),
    ROWF(swrite_bad, swrite, "weft_stream_write", C_BAD, H_STREAM, LIVE, 2, -EBADF, M),
    ROWF(swrite_stale, swrite, "weft_stream_write", C_STALE, H_STREAM, LIVE, 2, -EBADF, M),
    ROWF(swrite_none, swrite, "weft_stream_write", C_RT, H_STREAM, NO_RT, 2, -ESHUTDOWN, R),
    ROW(swrite_reader, "weft_stream_write", C_BAD, H_NONE, LIVE, 2, -EBADF, M),
    ROW(swrite_size, "weft_stream_write", C_SIZE, H_NONE, LIVE, 6 * NWRONG, -EMSGSIZE, M),
    ROW(swrite_closed, "weft_stream_write", C_STATE, H_NONE, LIVE, 2, -EPIPE, R),
    ROW(swrite_full, "weft_stream_write", C_STATE, H_NONE, RUN, 2, -ETIMEDOUT, R),
    ROW(swrite_blocking, "weft_stream_write", C_RT, H_NONE, STOPPING, 2, -ECANCELED, R),
    ROW(sread_null, "weft_stream_read", C_NULL, H_NONE, ANY, 4, -EINVAL, M),
    ROWF(sread_bad, sread, "weft_stream_read", C_BAD, H_STREAM, LIVE, 2, -EBADF, R),
    ROWF(sread_stale, sread, "weft_stream_read", C_STALE, H_STREAM, LIVE, 2, -EBADF, R),
    ROWF(sread_none, sread, "weft_stream_read", C_RT, H_STREAM, NO_RT, 2, -ESHUTDOWN, R),
    ROW(sread_broadcast, "weft_stream_read", C_BAD, H_NONE, LIVE, 2, -EINVAL, M),
    ROW(sread_size, "weft_stream_read", C_SIZE, H_NONE, LIVE, 6 * NWRONG, -EMSGSIZE, M),
    ROW(sread_closed, "weft_stream_read", C_STATE, H_NONE, LIVE, 2, -EPIPE, R),
    ROW(sread_empty, "weft_stream_read", C_STATE, H_NONE, RUN, 2, -ETIMEDOUT, R),
    ROW(sread_blocking, "weft_stream_read", C_RT, H_NONE, STOPPING, 2, -ECANCELED, R),
    ROWF(sclose_bad, sclose, "weft_stream_close", C_BAD, H_STREAM, LIVE, 1, -EBADF, M),
    ROWF(sclose_stale, sclose, "weft_stream_close", C_STALE, H_STREAM, LIVE, 1, -EBADF, M),
    ROWF(sclose_none, sclose, "weft_stream_close", C_RT, H_STREAM, NO_RT, 1, -ESHUTDOWN, R),
    ROW(sclose_reader, "weft_stream_close", C_BAD, H_NONE, LIVE, 1, -EBADF, M),
    ROW(sclose_twice, "weft_stream_close", C_STATE, H_NONE, LIVE, 1, -EPIPE, M),
    ROWF(slen_bad, slen, "weft_stream_len", C_BAD, H_STREAM, LIVE, 1, -EBADF, R),
    ROWF(slen_stale, slen, "weft_stream_len", C_STALE, H_STREAM, LIVE, 1, -EBADF, R),
    ROWF(slen_none, slen, "weft_stream_len", C_RT, H_STREAM, NO_RT, 1, -ESHUTDOWN, R),
    ROWF(sretain_bad, sretain, "weft_stream_retain", C_BAD, H_STREAM, LIVE, 1, -EBADF, M),
    ROWF(sretain_stale, sretain, "weft_stream_retain", C_STALE, H_STREAM, LIVE, 1, -EBADF, M),
    ROWF(sretain_none, sretain, "weft_stream_retain", C_RT, H_STREAM, NO_RT, 1, -ESHUTDOWN, R),
    ROWF(srelease_bad, srelease, "weft_stream_release", C_BAD, H_STREAM, LIVE, 1, -EBADF, M),
    ROWF(srelease_stale, srelease, "weft_stream_release", C_STALE, H_STREAM, LIVE, 1, -EBADF, M),
    ROWF(srelease_none, srelease, "weft_stream_release", C_RT, H_STREAM, NO_RT, 1, -ESHUTDOWN, R),
    ROW(srelease_twice, "weft_stream_release", C_STATE, H_NONE, RUN, 4, -EBADF, M),
    ROW(in_actor_dataflow, "weft_dvar_get, weft_stream_read/write", C_CTX, H_NONE, RUN, 3, -EPERM, M),
    /* dataflow graphs */
    ROW(gmake_null, "weft_graph_make", C_NULL, H_NONE, LIVE, 3, -EINVAL, M),
    ROWF(gmake_null_none, gmake_null, "weft_graph_make", C_RT, H_NONE, NO_RT, 3, -ESHUTDOWN, R),
    ROWF(gmake_none, gmake_valid, "weft_graph_make", C_RT, H_NONE, NO_RT, 1, -ESHUTDOWN, R),
    ROW(gmake_names, "weft_graph_make", C_SIZE, H_NONE, RUN, 4, 0, R),
    ROW(gadd_null, "weft_graph_add", C_NULL, H_NONE, LIVE, 3, -EINVAL, M),
    ROWF(gadd_null_none, gadd_null, "weft_graph_add", C_RT, H_NONE, NO_RT, 3, -ESHUTDOWN, R),
    ROWF(gadd_bad, gadd, "weft_graph_add", C_BAD, H_GRAPH, LIVE, 1, -EBADF, M),
    ROWF(gadd_stale, gadd, "weft_graph_add", C_STALE, H_GRAPH, LIVE, 1, -EBADF, M),
    ROWF(gadd_none, gadd, "weft_graph_add", C_RT, H_GRAPH, NO_RT, 1, -ESHUTDOWN, R),
    ROW(gadd_spec, "weft_graph_add", C_SIZE, H_NONE, RUN, NBADSPEC, -EINVAL, M),
    ROW(gadd_name, "weft_graph_add", C_SIZE, H_NONE, RUN, 2, -ENAMETOOLONG, M),
    ROW(gadd_exists, "weft_graph_add", C_STATE, H_NONE, RUN, 2, -EEXIST, M),
    ROW(gadd_busy, "weft_graph_add", C_STATE, H_NONE, RUN, 2, -EBUSY, M),
    ROW(gadd_stopping, "weft_graph_add", C_RT, H_NONE, STOPPING, 3, -ECANCELED, R),
    ROW(gadd_limits, "weft_graph_add", C_SIZE, H_NONE, RUN, 8, 0, R),
    ROWF(gconnect_bad, gconnect, "weft_graph_connect", C_BAD, H_GRAPH, LIVE, 1, -EBADF, M),
    ROWF(gconnect_stale, gconnect, "weft_graph_connect", C_STALE, H_GRAPH, LIVE, 1, -EBADF, M),
    ROWF(gconnect_none, gconnect, "weft_graph_connect", C_RT, H_GRAPH, NO_RT, 1, -ESHUTDOWN, R),
    ROW(gconnect_einval, "weft_graph_connect", C_SIZE, H_NONE, LIVE, 15, -EINVAL, M),
    ROW(gconnect_isconn, "weft_graph_connect", C_STATE, H_NONE, LIVE, 3, -EISCONN, M),
    ROW(gconnect_size, "weft_graph_connect", C_SIZE, H_NONE, LIVE, 2, -EMSGSIZE, M),
    ROW(gconnect_big, "weft_graph_connect", C_SIZE, H_NONE, LIVE, 3, -E2BIG, M),
    ROW(gconnect_busy, "weft_graph_connect", C_STATE, H_NONE, LIVE, 2, -EBUSY, M),
    ROW(gconnect_limits, "weft_graph_connect", C_SIZE, H_NONE, RUN, 4, 0, R),
    ROWF(gvalidate_bad, gvalidate, "weft_graph_validate", C_BAD, H_GRAPH, LIVE, 1, -EBADF, M),
    ROWF(gvalidate_stale, gvalidate, "weft_graph_validate", C_STALE, H_GRAPH, LIVE, 1, -EBADF, M),
    ROWF(gvalidate_none, gvalidate, "weft_graph_validate", C_RT, H_GRAPH, NO_RT, 1, -ESHUTDOWN, R),
    ROW(gvalidate_null, "weft_graph_validate", C_NULL, H_NONE, LIVE, 3, -ENOTCONN, R),
    ROW(gvalidate_why, "weft_graph_validate", C_SIZE, H_NONE, LIVE, 70, -ENOTCONN, R),
    ROW(gvalidate_empty, "weft_graph_validate", C_STATE, H_NONE, LIVE, 1, -EINVAL, R),
    ROW(gvalidate_cycle, "weft_graph_validate", C_STATE, H_NONE, LIVE, 1, -EDEADLK, R),
    ROW(gvalidate_ok, "weft_graph_validate", C_STATE, H_NONE, LIVE, 4, 0, R),
    ROWF(gdot_bad, gdot, "weft_graph_dot", C_BAD, H_GRAPH, LIVE, 1, -EBADF, M),
    ROWF(gdot_stale, gdot, "weft_graph_dot", C_STALE, H_GRAPH, LIVE, 1, -EBADF, M),
    ROWF(gdot_none, gdot, "weft_graph_dot", C_RT, H_GRAPH, NO_RT, 1, -ESHUTDOWN, R),
    ROW(gdot_null, "weft_graph_dot", C_NULL, H_NONE, LIVE, 6, -EINVAL, M),
    ROWF(gdot_null_none, gdot_null, "weft_graph_dot", C_RT, H_NONE, NO_RT, 6, -ESHUTDOWN, R),
    ROW(gdot_len0, "weft_graph_dot", C_SIZE, H_NONE, LIVE, 2, 0, R),
    ROW(gdot_truncate, "weft_graph_dot", C_SIZE, H_NONE, LIVE, 6, 0, R),
    ROWF(grun_bad, grun, "weft_graph_run", C_BAD, H_GRAPH, LIVE, 2, -EBADF, M),
    ROWF(grun_stale, grun, "weft_graph_run", C_STALE, H_GRAPH, LIVE, 2, -EBADF, M),
    ROWF(grun_none, grun, "weft_graph_run", C_RT, H_GRAPH, NO_RT, 2, -ESHUTDOWN, R),
    ROW(grun_twice, "weft_graph_run", C_STATE, H_NONE, LIVE, 4, -EALREADY, M),
    ROW(grun_loose, "weft_graph_run", C_STATE, H_NONE, LIVE, 2, -ENOTCONN, R),
    ROW(grun_empty, "weft_graph_run", C_STATE, H_NONE, LIVE, 2, -EINVAL, R),
    ROW(grun_cycle, "weft_graph_run", C_STATE, H_NONE, LIVE, 2, -EDEADLK, R),
    ROW(grun_stopping, "weft_graph_run", C_RT, H_NONE, STOPPING, 2, -ECANCELED, R),
    ROWF(gwait_bad, gwait, "weft_graph_wait", C_BAD, H_GRAPH, LIVE, 2, -EBADF, M),
    ROWF(gwait_stale, gwait, "weft_graph_wait", C_STALE, H_GRAPH, LIVE, 2, -EBADF, M),
    ROWF(gwait_none, gwait, "weft_graph_wait", C_RT, H_GRAPH, NO_RT, 2, -ESHUTDOWN, R),
    ROW(gwait_not_run, "weft_graph_wait", C_STATE, H_NONE, LIVE, 8, -EINVAL, M),
    ROW(gwait_running, "weft_graph_wait", C_STATE, H_NONE, RUN, 2, -EAGAIN, R),
    ROWF(gwait_running_stopping, gwait_running, "weft_graph_wait", C_RT, H_NONE, STOPPING, 1, -EAGAIN, R),
    ROW(gwait_blocking, "weft_graph_wait", C_RT, H_NONE, STOPPING, 2, -ECANCELED, R),
    ROW(gwait_ended, "weft_graph_wait", C_STATE, H_NONE, LIVE, 2, 0, R),
    ROWF(gwait_node_bad, gwait_node, "weft_graph_wait_node", C_BAD, H_GRAPH, LIVE, 2, -EBADF, M),
    ROWF(gwait_node_stale, gwait_node, "weft_graph_wait_node", C_STALE, H_GRAPH, LIVE, 2, -EBADF, M),
    ROWF(gwait_node_none, gwait_node, "weft_graph_wait_node", C_RT, H_GRAPH, NO_RT, 2, -ESHUTDOWN, R),
    ROW(gwait_node_not_run, "weft_graph_wait_node", C_STATE, H_NONE, LIVE, 4, -EINVAL, M),
    ROW(gwait_node_range, "weft_graph_wait_node", C_SIZE, H_NONE, LIVE, 9, -EINVAL, M),
    ROW(gwait_node_running, "weft_graph_wait_node", C_STATE, H_NONE, RUN, 2, -EAGAIN, R),
    ROWF(gwait_node_running_stopping, gwait_node_running, "weft_graph_wait_node", C_RT, H_NONE,
         STOPPING, 1, -EAGAIN, R),
    ROW(gwait_node_blocking, "weft_graph_wait_node", C_RT, H_NONE, STOPPING, 2, -ECANCELED, R),
    ROW(gwait_node_ended, "weft_graph_wait_node", C_STATE, H_NONE, LIVE, 4, 0, R),
    ROW(in_actor_graph, "weft_graph_wait, weft_graph_wait_node", C_CTX, H_NONE, RUN, 2, -EPERM, M),
    ROW(in_actor_graph_works, "weft_graph_*", C_CTX, H_NONE, RUN, 1, 0, R),
    ROWF(gcancel_bad, gcancel, "weft_graph_cancel", C_BAD, H_GRAPH, LIVE, 1, -EBADF, M),
    ROWF(gcancel_stale, gcancel, "weft_graph_cancel", C_STALE, H_GRAPH, LIVE, 1, -EBADF, M),
    ROWF(gcancel_none, gcancel, "weft_graph_cancel", C_RT, H_GRAPH, NO_RT, 1, -ESHUTDOWN, R),
    ROW(gcancel_not_run, "weft_graph_cancel", C_STATE, H_NONE, LIVE, 4, -EINVAL, M),
    ROW(gcancel_ended, "weft_graph_cancel", C_STATE, H_NONE, LIVE, 1, 0, R),
    ROW(gcancel_running, "weft_graph_cancel", C_STATE, H_NONE, RUN, 2, -ECANCELED, R),
    ROWF(gstats_bad, gstats, "weft_graph_get_stats", C_BAD, H_GRAPH, LIVE, 1, -EBADF, M),
    ROWF(gstats_stale, gstats, "weft_graph_get_stats", C_STALE, H_GRAPH, LIVE, 1, -EBADF, M),
    ROWF(gstats_none, gstats, "weft_graph_get_stats", C_RT, H_GRAPH, NO_RT, 1, -ESHUTDOWN, R),
    ROW(gstats_null, "weft_graph_get_stats", C_NULL, H_NONE, LIVE, 4, -EINVAL, M),
    ROWF(gstats_null_none, gstats_null, "weft_graph_get_stats", C_RT, H_NONE, NO_RT, 4, -ESHUTDOWN, R),
    ROW(gstats_not_run, "weft_graph_get_stats", C_STATE, H_NONE, LIVE, 2, -EINPROGRESS, R),
    ROWF(grelease_bad, grelease, "weft_graph_release", C_BAD, H_GRAPH, LIVE, 1, -EBADF, M),
    ROWF(grelease_stale, grelease, "weft_graph_release", C_STALE, H_GRAPH, LIVE, 1, -EBADF, M),
    ROWF(grelease_none, grelease, "weft_graph_release", C_RT, H_GRAPH, NO_RT, 1, -ESHUTDOWN, R),
    ROW(grelease_running, "weft_graph_release", C_STATE, H_NONE, LIVE, 1, -EBUSY, M),
    ROW(grelease_twice, "weft_graph_release", C_STATE, H_NONE, RUN, 3, -EBADF, M),
    ROW(node_null_io, "weft_node_recv, weft_node_recv_any, weft_node_send", C_NULL, H_NONE, ANY, 6,
        -EINVAL, M),
    ROW(in_node_null, "weft_node_recv, weft_node_recv_any, weft_node_send", C_NULL, H_NONE, RUN, 8,
        -EINVAL, M),
    ROW(in_node_port, "weft_node_recv, weft_node_send", C_SIZE, H_NONE, RUN, 6, -EINVAL, M),
    ROW(in_node_empty, "weft_node_recv, weft_node_recv_any", C_STATE, H_NONE, RUN, 4, -ETIMEDOUT, R),
    ROW(in_node_full, "weft_node_send", C_STATE, H_NONE, RUN, 2, -ETIMEDOUT, R),
    ROW(in_node_roundtrip, "weft_node_recv, weft_node_recv_any, weft_node_send", C_STATE, H_NONE, RUN,
        2, 0, R),
    /* diagnostics */
    ROW(dump_bad_fd, "weft_dump", C_BAD, H_NONE, RUN | STOP_PROC, 6, -EBADF, R),
    ROW(dump_ok, "weft_dump", C_RT, H_NONE, RUN, 1, 0, R),
    ROWF(dump_none, dump_ok, "weft_dump", C_RT, H_NONE, STOP_THREAD | NO_RT, 1, -ESHUTDOWN, R),
    /* mailboxes */
    ROW(msend_tag, "weft_send", C_SIZE, H_NONE, ANY, 2 * NTAGS, -EINVAL, M),
    ROW(msend_size, "weft_send", C_SIZE, H_NONE, ANY, 4 * NBIG, -EMSGSIZE, M),
    ROW(msend_null_data, "weft_send", C_NULL, H_NONE, ANY, 2 * NNULLS, -EINVAL, M),
    ROWF(msend_bad, msend, "weft_send", C_BAD, H_PID, LIVE, 2, -ESRCH, M),
    ROWF(msend_ended, msend, "weft_send", C_STALE, H_ENDED, LIVE, 2, 0, R),
    ROWF(msend_old, msend, "weft_send", C_STALE, H_OLD, LIVE, 2, -ESRCH, M),
    ROWF(msend_none, msend, "weft_send", C_RT, H_PID, NO_RT, 2, -ESHUTDOWN, R),
    ROW(msend_full_now, "weft_send", C_STATE, H_NONE, RUN, 1, -EAGAIN, R),
    ROW(msend_full_wait, "weft_send", C_STATE, H_NONE, RUN, 1, -ETIMEDOUT, R),
    ROW(msend_self, "weft_send", C_CTX, H_NONE, INPROC, 2, 0, R),
    ROW(sendbuf_null, "weft_send_buf", C_NULL, H_NONE, ANY, 4, -EINVAL, M),
    ROW(sendbuf_tag, "weft_send_buf", C_SIZE, H_NONE, ANY, NTAGS, -EINVAL, M),
    ROWF(sendbuf_bad, sendbuf, "weft_send_buf", C_BAD, H_PID, LIVE, 2, -ESRCH, M),
    ROWF(sendbuf_ended, sendbuf, "weft_send_buf", C_STALE, H_ENDED, LIVE, 2, 0, R),
    ROWF(sendbuf_old, sendbuf, "weft_send_buf", C_STALE, H_OLD, LIVE, 2, -ESRCH, M),
    ROWF(sendbuf_none, sendbuf, "weft_send_buf", C_RT, H_PID, NO_RT, 2, -ESHUTDOWN, R),
    ROW(sendbuf_full_now, "weft_send_buf", C_STATE, H_NONE, RUN, 1, -EAGAIN, R),
    ROW(sendbuf_full_wait, "weft_send_buf", C_STATE, H_NONE, RUN, 1, -ETIMEDOUT, R),
    ROW(sendbuf_self, "weft_send_buf", C_CTX, H_NONE, INPROC, 1, 0, R),
    ROW(buf_alloc_big, "weft_buf_alloc", C_SIZE, H_NONE, ANY, NBIG, 0, R),
    ROW(buf_alloc_limits, "weft_buf_alloc", C_SIZE, H_NONE, ANY, 5, 0, R),
    ROW(buf_null, "weft_buf_free, weft_buf_size", C_NULL, H_NONE, ANY, 1, 0, R),
    ROW(msg_null, "weft_msg_free, weft_msg_take", C_NULL, H_NONE, ANY, 1, 0, R),
    ROW(msg_take_empty, "weft_msg_take", C_STATE, H_NONE, INPROC, 1, 0, R),
    ROW(mrecv_null, "weft_recv", C_NULL, H_NONE, ANY, 4, -EINVAL, M),
    ROWF(mrecv_outside, mrecv, "weft_recv", C_CTX, H_NONE, OUTSIDE, 4, -EPERM, M),
    ROWF(mrecv_empty, mrecv, "weft_recv", C_STATE, H_NONE, IN_PROC, 2, -ETIMEDOUT, R),
    ROWF(mrecv_stopping, mrecv, "weft_recv", C_RT, H_NONE, STOP_PROC, 4, -ECANCELED, R),
    ROW(mrecv_soon, "weft_recv", C_RT, H_NONE, STOP_PROC, 1, -ECANCELED, R),
    ROW(in_actor_recv, "weft_recv", C_CTX, H_NONE, RUN, 2, -EPERM, M),
    ROW(mbox_bound_outside, "weft_mailbox_bound", C_CTX, H_NONE, OUTSIDE, 2, -EPERM, M),
    ROW(mbox_bound, "weft_mailbox_bound", C_SIZE, H_NONE, INPROC, 3, 0, R),
    ROW(mbox_len_outside, "weft_mailbox_len", C_CTX, H_NONE, OUTSIDE, 1, -EPERM, M),
    ROW(mbox_len, "weft_mailbox_len", C_CTX, H_NONE, INPROC, 1, 0, R),
    /* A thread has no mailbox: -EPERM first, runtime or not, as weft_recv. */
    ROWF(select_msg_outside, select_msg, "weft_select (mailbox case)", C_CTX, H_NONE, OUTSIDE, 4,
         -EPERM, M),
    ROW(in_actor_select_msg, "weft_select (mailbox case)", C_CTX, H_NONE, RUN, 2, -EPERM, M),
    ROWF(select_msg_empty, select_msg, "weft_select (mailbox case)", C_STATE, H_NONE, INPROC, 2,
         -ETIMEDOUT, R),
    ROW(select_msg_blocking, "weft_select (mailbox case)", C_RT, H_NONE, STOP_PROC, 2, -ECANCELED, R),
    ROW(select_msg_size, "weft_select (mailbox case)", C_SIZE, H_NONE, INPROC, NWRONG, -EMSGSIZE, M),
    /* request and reply */
    ROW(call_null_reply, "weft_call", C_NULL, H_NONE, ANY, 2, -EINVAL, M),
    ROW(call_tag, "weft_call", C_SIZE, H_NONE, ANY, NTAGS, -EINVAL, M),
    ROW(call_size, "weft_call", C_SIZE, H_NONE, ANY, 2 * NBIG, -EMSGSIZE, M),
    ROW(call_null_data, "weft_call", C_NULL, H_NONE, ANY, NNULLS, -EINVAL, M),
    ROW(call_outside, "weft_call", C_CTX, H_NONE, OUTSIDE, 2, -EPERM, M),
    ROW(in_actor_call, "weft_call", C_CTX, H_NONE, RUN, 2, -EPERM, M),
    ROWF(call_bad, call, "weft_call", C_BAD, H_PID, INPROC, 2, -ESRCH, M),
    ROWF(call_ended, call, "weft_call", C_STALE, H_ENDED, INPROC, 2, -ESRCH, R),
    ROWF(call_old, call, "weft_call", C_STALE, H_OLD, INPROC, 2, -ESRCH, M),
    ROW(call_self, "weft_call", C_STATE, H_NONE, INPROC, 2, -EDEADLK, M),
    ROW(call_echo, "weft_call", C_STATE, H_NONE, IN_PROC, 2, 0, R),
    ROW(call_timeout, "weft_call", C_STATE, H_NONE, IN_PROC, 2, -ETIMEDOUT, R),
    ROW(call_late, "weft_call", C_STATE, H_NONE, IN_PROC, 2, -ETIMEDOUT, R),
    ROW(call_stopping, "weft_call", C_RT, H_NONE, STOP_PROC, 2, -ECANCELED, R),
    ROW(reply_null, "weft_reply", C_NULL, H_NONE, ANY, 1, -EINVAL, M),
    ROW(reply_not_request, "weft_reply", C_NULL, H_NONE, ANY, 3, -EINVAL, M),
    ROW(reply_tag, "weft_reply", C_SIZE, H_NONE, ANY, NTAGS, -EINVAL, M),
    ROW(reply_size, "weft_reply", C_SIZE, H_NONE, ANY, 2 * NBIG, -EMSGSIZE, M),
    ROW(reply_null_data, "weft_reply", C_NULL, H_NONE, ANY, NNULLS, -EINVAL, M),
    ROWF(reply_bad, reply, "weft_reply", C_BAD, H_PID, LIVE, 2, -ESRCH, M),
    ROWF(reply_ended, reply, "weft_reply", C_STALE, H_ENDED, LIVE, 2, 0, R),
    ROWF(reply_old, reply, "weft_reply", C_STALE, H_OLD, LIVE, 2, -ESRCH, M),
    ROWF(reply_none, reply, "weft_reply", C_RT, H_PID, NO_RT, 2, -ESHUTDOWN, R),
    ROW(reply_not_waiting, "weft_reply", C_STATE, H_NONE, INPROC, 1, 0, R),
    /* actors */
    ROW(actor_opts_null, "weft_actor_opts_init", C_NULL, H_NONE, ANY, 1, 0, R),
    ROW(actor_null_fn, "weft_actor_spawn", C_NULL, H_NONE, ANY, 4, -EINVAL, M),
    ROW(actor_link_outside, "weft_actor_spawn", C_CTX, H_NONE, OUTSIDE, 2, -EPERM, M),
    ROW(actor_valid, "weft_actor_spawn", C_CTX, H_NONE, RUN, 6, 0, R),
    ROWF(actor_spawn_stopping, actor_spawn_rt, "weft_actor_spawn", C_RT, H_NONE, STOPPING, 2, -ECANCELED, R),
    ROWF(actor_spawn_none, actor_spawn_rt, "weft_actor_spawn", C_RT, H_NONE, NO_RT, 2, -ESHUTDOWN, R),
    ROW(in_actor_send_full_now, "weft_send(_buf)", C_STATE, H_NONE, RUN, 2, -EAGAIN, R),
    ROW(in_actor_send_full, "weft_send(_buf)", C_CTX, H_NONE, RUN, 4, -EPERM, M),
    ROW(in_actor_join, "weft_join", C_CTX, H_NONE, RUN, 2, -EPERM, M),
    ROW(in_actor_sleep, "weft_sleep", C_CTX, H_NONE, RUN, 2, -EPERM, M),
    ROW(in_actor_chan, "weft_chan_send/recv", C_CTX, H_NONE, RUN, 4, -EPERM, M),
    ROW(in_actor_works, "weft_self, weft_mailbox_*, weft_trap_exits, weft_link, weft_monitor, "
        "weft_actor_spawn", C_CTX, H_NONE, RUN, 5, 0, R),
    /* links, monitors, exit signals */
    ROW(link_outside, "weft_link", C_CTX, H_NONE, OUTSIDE, 2, -EPERM, M),
    ROW(link_self, "weft_link", C_STATE, H_NONE, INPROC, 1, -EINVAL, M),
    ROW(in_actor_link_self, "weft_link", C_STATE, H_NONE, RUN, 1, -EINVAL, M),
    ROWF(link_bad, link, "weft_link", C_BAD, H_PID, INPROC, 1, -ESRCH, M),
    ROWF(link_ended, link, "weft_link", C_STALE, H_ENDED, INPROC, 1, -ESRCH, R),
    ROWF(link_old, link, "weft_link", C_STALE, H_OLD, INPROC, 1, -ESRCH, M),
    ROW(link_live, "weft_link, weft_unlink", C_STATE, H_NONE, IN_PROC, 3, 0, R),
    ROW(unlink_outside, "weft_unlink", C_CTX, H_NONE, OUTSIDE, 2, -EPERM, M),
    ROWF(unlink_bad, unlink, "weft_unlink", C_BAD, H_PID, INPROC, 1, 0, R),
    ROWF(unlink_ended, unlink, "weft_unlink", C_STALE, H_ENDED, INPROC, 1, 0, R),
    ROWF(unlink_old, unlink, "weft_unlink", C_STALE, H_OLD, INPROC, 1, 0, R),
    ROWF(kill_bad, kill, "weft_kill", C_BAD, H_PID, LIVE, 4, -ESRCH, M),
    ROWF(kill_ended, kill, "weft_kill", C_STALE, H_ENDED, LIVE, 4, 0, R),
    ROWF(kill_old, kill, "weft_kill", C_STALE, H_OLD, LIVE, 4, -ESRCH, M),
    ROWF(kill_none, kill, "weft_kill", C_RT, H_PID, NO_RT, 4, -ESHUTDOWN, R),
    ROW(kill_normal, "weft_kill", C_STATE, H_NONE, RUN, 4, 0, R),
    ROW(trap_outside, "weft_trap_exits", C_CTX, H_NONE, OUTSIDE, 2, -EPERM, M),
    ROW(trap, "weft_trap_exits", C_CTX, H_NONE, INPROC, 4, 0, R),
    ROW(monitor_null_ref, "weft_monitor", C_NULL, H_NONE, ANY, 2, -EINVAL, M),
    ROW(monitor_outside, "weft_monitor", C_CTX, H_NONE, OUTSIDE, 2, -EPERM, M),
    ROWF(monitor_bad, monitor, "weft_monitor", C_BAD, H_PID, INPROC, 1, -ESRCH, M),
    ROWF(monitor_ended, monitor, "weft_monitor", C_STALE, H_ENDED, INPROC, 2, 0, R),
    ROWF(monitor_old, monitor, "weft_monitor", C_STALE, H_OLD, INPROC, 1, -ESRCH, M),
    ROW(monitor_live, "weft_monitor", C_STATE, H_NONE, IN_PROC, 2, 0, R),
    ROW(demonitor_outside, "weft_demonitor", C_CTX, H_NONE, OUTSIDE, 2, -EPERM, M),
    ROW(demonitor_unknown, "weft_demonitor", C_BAD, H_NONE, INPROC, 4, -ENOENT, M),
    ROWF(owner_bad_chan, owner_chan, "weft_chan_set_owner", C_BAD, H_CHAN, LIVE, 1, -EBADF, M),
    ROWF(owner_stale_chan, owner_chan, "weft_chan_set_owner", C_STALE, H_CHAN, LIVE, 1, -EBADF, M),
    ROWF(owner_bad_pid, owner_pid, "weft_chan_set_owner", C_BAD, H_PID, LIVE, 1, -ESRCH, M),
    ROWF(owner_ended, owner_pid, "weft_chan_set_owner", C_STALE, H_ENDED, LIVE, 1, -ESRCH, R),
    ROWF(owner_old, owner_pid, "weft_chan_set_owner", C_STALE, H_OLD, LIVE, 1, -ESRCH, M),
    ROWF(owner_none, owner_chan, "weft_chan_set_owner", C_RT, H_CHAN, NO_RT, 1, -ESHUTDOWN, R),
    /* registry */
    ROW(register_name, "weft_register", C_NULL, H_NONE, ANY, NBADNAMES, -EINVAL, M),
    ROWF(register_bad, register, "weft_register", C_BAD, H_PID, LIVE, 1, -ESRCH, M),
    ROWF(register_ended, register, "weft_register", C_STALE, H_ENDED, LIVE, 1, -ESRCH, R),
    ROWF(register_old, register, "weft_register", C_STALE, H_OLD, LIVE, 1, -ESRCH, M),
    ROWF(register_none, register, "weft_register", C_RT, H_PID, NO_RT, 1, -ESHUTDOWN, R),
    ROW(register_taken, "weft_register", C_STATE, H_NONE, RUN, 3, -EEXIST, R),
    ROW(register_busy, "weft_register", C_STATE, H_NONE, RUN, 2, -EBUSY, R),
    ROW(register_round, "weft_register, weft_whereis, weft_unregister", C_STATE, H_NONE, RUN, 2, 0, R),
    ROW(unregister_name, "weft_unregister", C_NULL, H_NONE, ANY, NBADNAMES, -EINVAL, M),
    ROWF(unregister_unknown, unregister, "weft_unregister", C_STATE, H_NONE, LIVE, 2, -ENOENT, R),
    ROWF(unregister_none, unregister, "weft_unregister", C_RT, H_NONE, NO_RT, 2, -ESHUTDOWN, R),
    ROW(whereis_args, "weft_whereis", C_NULL, H_NONE, ANY, NBADNAMES + 1, -EINVAL, M),
    ROWF(whereis_unknown, whereis, "weft_whereis", C_STATE, H_NONE, LIVE, 2, -ENOENT, R),
    ROWF(whereis_none, whereis, "weft_whereis", C_RT, H_NONE, NO_RT, 2, -ESHUTDOWN, R),
    /* supervisors */
    ROW(sup_start_null, "weft_sup_start", C_NULL, H_NONE, ANY, 2, -EINVAL, M),
    ROW(sup_start_spec, "weft_sup_start", C_BAD, H_NONE, ANY, NBADSPECS, -EINVAL, M),
    ROWF(sup_start_link_outside, sup_start_link, "weft_sup_start", C_CTX, H_NONE, OUTSIDE, 1, -EPERM, M),
    ROWF(sup_start_stopping, sup_start_rt, "weft_sup_start", C_RT, H_NONE, STOPPING, 1, -ECANCELED, R),
    ROWF(sup_start_none, sup_start_rt, "weft_sup_start", C_RT, H_NONE, NO_RT, 1, -ESHUTDOWN, R),
    ROW(in_actor_sup_start, "weft_sup_start", C_CTX, H_NONE, RUN, 2, -EPERM, M),
    ROW(sup_start_valid, "weft_sup_start", C_STATE, H_NONE, RUN, 2, 0, R),
    ROW(sup_start_fails, "weft_sup_start", C_STATE, H_NONE, RUN, 2, -EIO, R),
    ROWF(sup_stop_bad, sup_stop, "weft_sup_stop", C_BAD, H_PID, LIVE, 2, -ESRCH, R),
    ROWF(sup_stop_ended, sup_stop, "weft_sup_stop", C_STALE, H_ENDED, LIVE, 2, -ESRCH, R),
    ROWF(sup_stop_old, sup_stop, "weft_sup_stop", C_STALE, H_OLD, LIVE, 2, -ESRCH, R),
    ROW(sup_stop_not_sup, "weft_sup_stop", C_STATE, H_NONE, RUN, 3, -ESRCH, R),
    ROWF(sup_stop_none, sup_stop, "weft_sup_stop", C_RT, H_PID, NO_RT, 2, -ESHUTDOWN, R),
    ROWF(sup_which_none, sup_which, "weft_sup_which", C_RT, H_PID, NO_RT, 2, -ESHUTDOWN, R),
    ROWF(sup_restarts_none, sup_restarts, "weft_sup_restarts", C_RT, H_PID, NO_RT, 2, -ESHUTDOWN, R),
    ROW(in_actor_sup_stop, "weft_sup_stop", C_CTX, H_NONE, RUN, 2, -EPERM, M),
    ROW(sup_which_null, "weft_sup_which", C_NULL, H_NONE, ANY, 2, -EINVAL, M),
    ROWF(sup_which_bad, sup_which, "weft_sup_which", C_BAD, H_PID, LIVE, 2, -ESRCH, R),
    ROWF(sup_which_ended, sup_which, "weft_sup_which", C_STALE, H_ENDED, LIVE, 2, -ESRCH, R),
    ROWF(sup_which_old, sup_which, "weft_sup_which", C_STALE, H_OLD, LIVE, 2, -ESRCH, R),
    ROW(sup_which_not_sup, "weft_sup_which", C_STATE, H_NONE, RUN, 3, -ESRCH, R),
    ROW(sup_which_unknown, "weft_sup_which", C_STATE, H_NONE, IN_PROC, 4, -ENOENT, R),
    ROW(sup_which_live, "weft_sup_which", C_STATE, H_NONE, IN_PROC, 1, 0, R),
    ROWF(sup_which_outside, sup_which_fx, "weft_sup_which", C_CTX, H_NONE, IN_THREAD, 2, -EPERM, M),
    ROW(in_actor_sup_which, "weft_sup_which", C_CTX, H_NONE, RUN, 2, -EPERM, M),
    ROWF(sup_restarts_bad, sup_restarts, "weft_sup_restarts", C_BAD, H_PID, LIVE, 2, -ESRCH, R),
    ROWF(sup_restarts_ended, sup_restarts, "weft_sup_restarts", C_STALE, H_ENDED, LIVE, 2, -ESRCH, R),
    ROWF(sup_restarts_old, sup_restarts, "weft_sup_restarts", C_STALE, H_OLD, LIVE, 2, -ESRCH, R),
    ROW(sup_restarts_not_sup, "weft_sup_restarts", C_STATE, H_NONE, RUN, 3, -ESRCH, R),
    ROWF(sup_restarts_live, sup_restarts_fx, "weft_sup_restarts", C_STATE, H_NONE, IN_PROC, 1, 0, R),
    ROWF(sup_restarts_outside, sup_restarts_fx, "weft_sup_restarts", C_CTX, H_NONE, IN_THREAD, 2, -EPERM,
         M),
    ROW(in_actor_sup_restarts, "weft_sup_restarts", C_CTX, H_NONE, RUN, 2, -EPERM, M),
    /* file descriptors */
    ROW(fd_wait_events, "weft_fd_wait", C_SIZE, H_NONE, ANY, 2 * NBADEVENTS, -EINVAL, M),
    ROW(fd_wait_bad, "weft_fd_wait", C_BAD, H_NONE, LIVE, 2 * NBADFD, -EBADF, R),
    ROWF(fd_wait_none, fd_wait_rt, "weft_fd_wait", C_RT, H_NONE, NO_RT, 2 * (NBADFD + 1), -ESHUTDOWN, R),
    ROWF(fd_wait_stopping, fd_wait_blocking, "weft_fd_wait", C_RT, H_NONE, STOPPING, 2, -ECANCELED, R),
    ROW(fd_wait_empty, "weft_fd_wait", C_STATE, H_NONE, RUN, 2, -ETIMEDOUT, R),
    ROW(fd_wait_ready, "weft_fd_wait", C_STATE, H_NONE, LIVE, 4, 0, R),
    ROW(in_actor_fd_wait, "weft_fd_wait", C_CTX, H_NONE, RUN, 2, -EPERM, M),
    ROW(in_actor_fd_poll, "weft_fd_wait", C_CTX, H_NONE, RUN, 2, 0, R),
    ROW(fd_close_bad, "weft_fd_close, weft_fd_forget", C_BAD, H_NONE, ANY, 2 * NBADFD, -EBADF, R),
    ROW(fd_close_open, "weft_fd_close, weft_fd_forget", C_STATE, H_NONE, ANY, 2, 0, R),
    /* the offload pool */
    ROW(offload_null, "weft_offload", C_NULL, H_NONE, ANY, 4, -EINVAL, M),
    ROWF(offload_none, offload_valid, "weft_offload", C_RT, H_NONE, NO_RT, 4, -ESHUTDOWN, R),
    ROWF(offload_stopping, offload_valid, "weft_offload", C_RT, H_NONE, STOPPING, 4, -ECANCELED, R),
    ROW(offload_runs, "weft_offload", C_STATE, H_NONE, RUN, 2, 0, R),
    ROW(offload_past, "weft_offload", C_STATE, H_NONE, RUN, 4, -ETIMEDOUT, R),
    ROW(in_actor_offload, "weft_offload", C_CTX, H_NONE, RUN, 2, -EPERM, M),
    /* addresses */
    ROW(addr_ip_null, "weft_addr_ip", C_NULL, H_NONE, ANY, 2, -EINVAL, M),
    ROW(addr_ip_port, "weft_addr_ip", C_SIZE, H_NONE, ANY, 2 * NBADPORTS, -EINVAL, M),
    ROW(addr_ip_text, "weft_addr_ip", C_BAD, H_NONE, ANY, NNOTLIT + 1, -EINVAL, R),
    ROW(addr_ip_valid, "weft_addr_ip", C_SIZE, H_NONE, ANY, 8, 0, R),
    ROW(addr_unix_null, "weft_addr_unix", C_NULL, H_NONE, ANY, 2, -EINVAL, M),
    ROW(addr_unix_long, "weft_addr_unix", C_SIZE, H_NONE, ANY, 3, -ENAMETOOLONG, R),
    ROW(addr_unix_empty, "weft_addr_unix", C_SIZE, H_NONE, ANY, 1, -EINVAL, R),
    ROW(addr_unix_valid, "weft_addr_unix", C_SIZE, H_NONE, ANY, 2, 0, R),
    ROW(addr_format_null, "weft_addr_format", C_NULL, H_NONE, ANY, 3, -EINVAL, M),
    ROW(addr_format_family, "weft_addr_format", C_BAD, H_NONE, ANY, NBADADDRS, -EINVAL, M),
    ROW(addr_format_size, "weft_addr_format", C_SIZE, H_NONE, ANY, 14, 0, R),
    ROW(addr_port_null, "weft_addr_port", C_NULL, H_NONE, ANY, NBADADDRS + 1, -EINVAL, M),
    ROW(addr_port_unix, "weft_addr_port", C_STATE, H_NONE, ANY, 1, -EINVAL, R),
    ROW(resolve_null, "weft_addr_resolve", C_NULL, H_NONE, ANY, 4, -EINVAL, M),
    ROW(resolve_range, "weft_addr_resolve", C_SIZE, H_NONE, ANY, NRESOLVERANGE, -EINVAL, M),
    ROW(resolve_literal, "weft_addr_resolve", C_STATE, H_NONE, ANY, 2, 0, R),
    ROW(resolve_family, "weft_addr_resolve", C_STATE, H_NONE, ANY, 2, -ENXIO, R),
    ROWF(resolve_none, resolve_name, "weft_addr_resolve", C_RT, H_NONE, NO_RT, 2, -ESHUTDOWN, R),
    ROWF(resolve_stopping, resolve_name, "weft_addr_resolve", C_RT, H_NONE, STOPPING, 2, -ECANCELED, R),
    ROW(resolve_past, "weft_addr_resolve", C_STATE, H_NONE, RUN, 2, -ETIMEDOUT, R),
    ROW(in_actor_resolve, "weft_addr_resolve", C_CTX, H_NONE, RUN, 1, -EPERM, M),
    /* sockets */
    ROW(sock_addr_null, "weft_sock_addr", C_NULL, H_NONE, ANY, 2, -EINVAL, M),
    ROW(sock_addr_bad, "weft_sock_addr", C_BAD, H_NONE, ANY, NBADFD, -EBADF, R),
    ROW(sock_addr_notsock, "weft_sock_addr", C_STATE, H_NONE, ANY, 2, -ENOTSOCK, R),
    ROW(sock_addr_valid, "weft_sock_addr", C_STATE, H_NONE, ANY, 1, 0, R),
    ROW(listen_null, "weft_listen", C_NULL, H_NONE, ANY, 2, -EINVAL, M),
    ROW(listen_family, "weft_listen", C_BAD, H_NONE, ANY, NBADADDRS + 1, -EINVAL, M),
    ROWF(listen_none, listen_valid, "weft_listen", C_RT, H_NONE, NO_RT, 2, -ESHUTDOWN, R),
    ROWF(listen_stopping, listen_valid, "weft_listen", C_RT, H_NONE, STOPPING, 2, -ECANCELED, R),
    ROWF(listen_works, listen_valid, "weft_listen", C_STATE, H_NONE, RUN, 2, 0, R),
    ROW(listen_in_use, "weft_listen", C_STATE, H_NONE, RUN, 2, -EADDRINUSE, R),
    ROW(accept_bad, "weft_accept", C_BAD, H_NONE, LIVE, 2 * NBADFD, -EBADF, R),
    ROWF(accept_none, accept_rt, "weft_accept", C_RT, H_NONE, NO_RT, 2 * (NBADFD + 1), -ESHUTDOWN, R),
    ROWF(accept_stopping, accept_blocking, "weft_accept", C_RT, H_NONE, STOPPING, 2, -ECANCELED, R),
    ROW(accept_empty, "weft_accept", C_STATE, H_NONE, RUN, 2, -ETIMEDOUT, R),
    ROW(accept_notsock, "weft_accept", C_STATE, H_NONE, LIVE, 2, -ENOTSOCK, R),
    ROW(accept_not_listening, "weft_accept", C_STATE, H_NONE, LIVE, 4, -EINVAL, R),
    ROW(in_actor_accept, "weft_accept", C_CTX, H_NONE, RUN, 2, -EPERM, M),
    ROW(connect_null, "weft_connect", C_NULL, H_NONE, ANY, 2, -EINVAL, M),
    ROW(connect_family, "weft_connect", C_BAD, H_NONE, ANY, 2 * NBADADDRS, -EINVAL, M),
    ROWF(connect_none, connect_rt, "weft_connect", C_RT, H_NONE, NO_RT, 6, -ESHUTDOWN, R),
    ROWF(connect_stopping, connect_rt, "weft_connect", C_RT, H_NONE, STOPPING, 6, -ECANCELED, R),
    ROW(connect_refused, "weft_connect", C_STATE, H_NONE, RUN, 2, -ECONNREFUSED, R),
    ROW(connect_no_path, "weft_connect", C_STATE, H_NONE, RUN, 2, -ENOENT, R),
    ROW(connect_full, "weft_connect", C_STATE, H_NONE, RUN, 2, -ETIMEDOUT, R),
    ROW(in_actor_connect, "weft_connect", C_CTX, H_NONE, RUN, 2, -EPERM, M),
    ROW(rw_null, RW_FNS, C_NULL, H_NONE, ANY, 4 * NRW, -EINVAL, M),
    ROW(rw_size, RW_FNS, C_SIZE, H_NONE, ANY, 6 * NRW, -EINVAL, M),
    ROW(rw_len0, RW_FNS, C_SIZE, H_NONE, ANY, 4 * NRW, 0, R),
    ROW(rw_bad, RW_FNS, C_BAD, H_NONE, LIVE, 2 * NBADFD * NRW, -EBADF, R),
    ROWF(rw_none, rw_rt, RW_FNS, C_RT, H_NONE, NO_RT, 2 * (NBADFD + 1) * NRW, -ESHUTDOWN, R),
    ROWF(rw_stopping, rw_blocking, RW_FNS, C_RT, H_NONE, STOPPING, 2 * NRW, -ECANCELED, R),
    ROW(rw_empty, RW_FNS, C_STATE, H_NONE, RUN, 2 * NRW, -ETIMEDOUT, R),
    ROW(rw_wrong_mode, RW_FNS, C_STATE, H_NONE, LIVE, 2 * NRW, -EBADF, R),
    ROW(write_broken, "weft_write, weft_write_all", C_STATE, H_NONE, LIVE, 4, -EPIPE, R),
    ROW(in_actor_rw, RW_FNS, C_CTX, H_NONE, RUN, NRW, -EPERM, M),
    ROW(shutdown_how, "weft_shutdown", C_SIZE, H_NONE, ANY, 8, -EINVAL, M),
    ROW(shutdown_bad, "weft_shutdown", C_BAD, H_NONE, ANY, NBADFD, -EBADF, R),
    ROW(shutdown_notsock, "weft_shutdown", C_STATE, H_NONE, ANY, 2, -ENOTSOCK, R),
    ROW(shutdown_notconn, "weft_shutdown", C_STATE, H_NONE, ANY, 2, -ENOTCONN, R),
    /* Last: these start and stop a runtime, so the rows before them run
     * before the first start in that case. */
    ROW(run_cfg_limits, "weft_run", C_SIZE, H_NONE, NO_RT, 3, 0, R),
    ROW(start_null_cfg, "weft_start", C_NULL, H_NONE, NO_RT, 1, 0, R),
};
enum { NPROBES = sizeof probes / sizeof probes[0] };

/* ---- the fixture ---------------------------------------------------------------------------- */

static weft_pid spawn_waiter(struct waiter *w, const char *name, int detached)
{
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.name = name;
    o.detached = detached;
    weft_pid pid = 0;
    CHECK_RC(weft_spawn(&pid, gate_waiter, w, &o), 0);
    return pid;
}

/* A process that has ended and been joined: its pid is stale, its slot free
 * on this worker. */
static weft_pid joined_pid(void)
{
    weft_pid pid = spawn_proc(ret_arg, NULL);
    CHECK_RC(weft_join(pid, NULL, WEFT_FOREVER), 0);
    return pid;
}

static void add_extra(struct fx *f, weft_pid pid)
{
    if (f->nextra < (int)(sizeof f->extra / sizeof f->extra[0]))
        f->extra[f->nextra++] = pid;
    else
        check_fail(__LINE__, "too many extra waiters");
}

/* The dataflow layer's objects and stale handles (see struct fx), built as
 * fx_build builds the channels. */
static void fx_build_dataflow(struct fx *f)
{
    int v = SENT_A;
    CHECK_RC(weft_dvar_make(&f->dv_bound, sizeof(int)), 0);
    CHECK_RC(weft_dvar_bind(f->dv_bound, &v, sizeof v), 0);
    CHECK_RC(weft_dvar_make(&f->dv_free, sizeof(int)), 0);
    CHECK_RC(weft_stream_make(&f->st, sizeof(int), 1, WEFT_STREAM_BROADCAST), 0);
    CHECK_RC(weft_stream_reader(f->st, &f->st_r), 0);
    CHECK_RC(weft_stream_write(f->st, &v, sizeof v, 0), 0);
    CHECK_RC(weft_stream_make(&f->st_q, sizeof(int), 2, WEFT_STREAM_QUEUE), 0);
    v = SENT_B;
    CHECK_RC(weft_stream_write(f->st_q, &v, sizeof v, 0), 0);
    CHECK_RC(weft_stream_make(&f->st_empty, sizeof(int), 0, WEFT_STREAM_QUEUE), 0);
    CHECK_RC(weft_stream_make(&f->st_closed, sizeof(int), 1, WEFT_STREAM_QUEUE), 0);
    CHECK_RC(weft_stream_close(f->st_closed), 0);

    /* A variable's slot taken by a variable, a stream's by a stream. */
    weft_dvar old = 0, neu = 0;
    CHECK_RC(weft_dvar_make(&old, sizeof(int)), 0);
    for (int i = 0; i < 8; i++) {
        CHECK_RC(weft_dvar_release(old), 0);
        CHECK_RC(weft_dvar_make(&neu, sizeof(int)), 0);
        if (SLOT(neu) == SLOT(old))
            break;
        old = neu;
    }
    CHECK(SLOT(neu) == SLOT(old), "no variable took a released variable's slot");
    hl_add(&f->stale_dv, old);
    f->dv_fresh = neu;
    v = FRESH_V;
    CHECK_RC(weft_dvar_bind(f->dv_fresh, &v, sizeof v), 0);
    CHECK_RC(weft_stream_make(&old, sizeof(int), 2, WEFT_STREAM_QUEUE), 0);
    for (int i = 0; i < 8; i++) {
        CHECK_RC(weft_stream_release(old), 0);
        CHECK_RC(weft_stream_make(&neu, sizeof(int), 2, WEFT_STREAM_QUEUE), 0);
        if (SLOT(neu) == SLOT(old))
            break;
        old = neu;
    }
    CHECK(SLOT(neu) == SLOT(old), "no stream took a released stream's slot");
    hl_add(&f->stale_st, old);
    f->st_fresh = neu;
    CHECK_RC(weft_stream_write(f->st_fresh, &v, sizeof v, 0), 0);

    /* Released, the slot not (yet) reused: a variable, a stream, a reader
     * (its stream released with it). */
    CHECK_RC(weft_dvar_make(&old, sizeof(int)), 0);
    CHECK_RC(weft_dvar_release(old), 0);
    hl_add(&f->stale_dv, old);
    CHECK_RC(weft_stream_make(&old, sizeof(int), 0, WEFT_STREAM_BROADCAST), 0);
    CHECK_RC(weft_stream_reader(old, &neu), 0);
    CHECK_RC(weft_stream_release(old), 0);
    CHECK_RC(weft_stream_release(neu), 0);
    hl_add(&f->stale_st, old);
    hl_add(&f->stale_st, neu);
}

/* The dataflow graphs of the fixture (see struct fx), and stale graph
 * handles: one whose slot a new graph took, one whose slot is free. */
static void fx_build_graphs(struct fx *f)
{
    f->node_jobs = make_chan(sizeof(struct node_job), 1);
    f->node_out = make_chan(sizeof(int), 1);
    weft_node n = -1;
    weft_node_spec s;

    /* Loose: src -> map; map's output, wide's and sink's inputs loose. */
    CHECK_RC(weft_graph_make(&f->g_build, "fx-build"), 0);
    s = node_spec(WEFT_NODE_SOURCE, "src");
    CHECK_RC(weft_graph_add(f->g_build, &s, &n), 0);
    s = node_spec(WEFT_NODE_MAP, "map");
    CHECK_RC(weft_graph_add(f->g_build, &s, &n), 0);
    s = node_spec(WEFT_NODE_SINK, "wide");
    s.in_size[0] = 8;
    CHECK_RC(weft_graph_add(f->g_build, &s, &n), 0);
    s = node_spec(WEFT_NODE_SINK, "sink");
    CHECK_RC(weft_graph_add(f->g_build, &s, &n), 0);
    CHECK(n == 3, "g_build's fourth node is %d", n);
    CHECK_RC(weft_graph_connect(f->g_build, 0, 0, 1, 0, 2), 0);

    /* Valid, never run; the spares likewise. */
    f->g_ready = temp_graph("fx-ready", true, g_nop);
    CHECK(f->g_ready != 0, "g_ready");
    for (int i = 0; i < 4; i++) {
        f->g_spare[i] = temp_graph("fx-spare", true, g_nop);
        CHECK(f->g_spare[i] != 0, "g_spare");
    }
    CHECK_RC(weft_graph_make(&f->g_empty, "fx-empty"), 0);

    /* Two maps joined both ways by rendezvous edges. */
    CHECK_RC(weft_graph_make(&f->g_cycle, "fx-cycle"), 0);
    s = node_spec(WEFT_NODE_MAP, "ping");
    CHECK_RC(weft_graph_add(f->g_cycle, &s, NULL), 0);
    s = node_spec(WEFT_NODE_MAP, "pong");
    CHECK_RC(weft_graph_add(f->g_cycle, &s, NULL), 0);
    CHECK_RC(weft_graph_connect(f->g_cycle, 0, 0, 1, 0, 0), 0);
    CHECK_RC(weft_graph_connect(f->g_cycle, 1, 0, 0, 0, 0), 0);

    /* Ran to its end: 3 values from src to snk. */
    f->g_count = 0;
    weft_graph g = temp_graph("fx-ended", false, NULL);
    CHECK(g != 0, "g_ended");
    s = node_spec(WEFT_NODE_SOURCE, "src");
    s.fn = g_src3;
    s.state = &f->g_count;
    CHECK_RC(weft_graph_add(g, &s, NULL), 0);
    s = node_spec(WEFT_NODE_SINK, "snk");
    CHECK_RC(weft_graph_add(g, &s, NULL), 0);
    CHECK_RC(weft_graph_connect(g, 0, 0, 1, 0, 1), 0);
    CHECK_RC(weft_graph_run(g, WEFT_FOREVER), 0);
    CHECK_RC(weft_graph_wait(g, WEFT_FOREVER), 0);
    f->g_ended = g;

    /* Running: the custom node "loop", its output joined to its input. */
    CHECK_RC(weft_graph_make(&f->g_run, "fx-run"), 0);
    s = node_spec(WEFT_NODE_CUSTOM, "loop");
    s.body = fx_node_body;
    s.state = f;
    CHECK_RC(weft_graph_add(f->g_run, &s, NULL), 0);
    CHECK_RC(weft_graph_connect(f->g_run, 0, 0, 0, 0, 1), 0);
    CHECK_RC(weft_graph_run(f->g_run, WEFT_FOREVER), 0);

    /* A graph's slot taken by a graph (one without nodes: its blocks are
     * freed after its slot, so the next graph's slot is the same one). */
    weft_graph old = 0, neu = 0;
    CHECK_RC(weft_graph_make(&old, "old"), 0);
    for (int i = 0; i < 8; i++) {
        CHECK_RC(weft_graph_release(old), 0);
        CHECK_RC(weft_graph_make(&neu, "fx-fresh"), 0);
        if (SLOT(neu) == SLOT(old))
            break;
        old = neu;
    }
    CHECK(SLOT(neu) == SLOT(old), "no graph took a released graph's slot");
    hl_add(&f->stale_g, old);
    f->g_fresh = neu;
    s = node_spec(WEFT_NODE_CUSTOM, "fresh");
    s.inputs = s.outputs = 0;
    CHECK_RC(weft_graph_add(f->g_fresh, &s, NULL), 0);
    /* Released, the slot not (yet) reused. */
    CHECK_RC(weft_graph_make(&old, "gone"), 0);
    CHECK_RC(weft_graph_release(old), 0);
    hl_add(&f->stale_g, old);

    weft_graph gs[] = {f->g_build, f->g_ready, f->g_empty, f->g_cycle, f->g_fresh, f->g_ended, f->g_run};
    for (int i = 0; i < NGRAPHS; i++) {
        f->g_dotlen[i] = weft_graph_dot(gs[i], f->g_dot[i], sizeof f->g_dot[i]);
        CHECK(f->g_dotlen[i] > 0 && (size_t)f->g_dotlen[i] < sizeof f->g_dot[i], "DOT of graph %d: %d",
              i, f->g_dotlen[i]);
    }
}

/* Builds the objects. Runs as a process pinned to worker 0, so that a slot
 * freed here is the next one handed out here (the worker's free-slot cache
 * is last in, first out); each reuse is checked, and retried if another
 * worker took the slot. */
static void fx_build(struct fx *f)
{
    f->gate = make_chan(sizeof(int), 0);
    f->w_peer = (struct waiter){f->gate, PEER_RESULT, 0};
    f->w_fresh = (struct waiter){f->gate, FRESH_RESULT, 0};
    f->w_chan_pid = (struct waiter){f->gate, CHAN_PID_RESULT, 0};
    f->w_detached = (struct waiter){f->gate, DETACHED_RESULT, 0};
    f->w_extra = (struct waiter){f->gate, EXTRA_RESULT, 0};

    f->live = make_chan(sizeof(int), 4);
    int v = SENT_A;
    CHECK_RC(weft_chan_send(f->live, &v, sizeof v, 0), 0);
    v = SENT_B;
    CHECK_RC(weft_chan_send(f->live, &v, sizeof v, 0), 0);
    f->rv = make_chan(sizeof(int), 0);
    f->closed = make_chan(sizeof(int), 1);
    CHECK_RC(weft_chan_close(f->closed), 0);
    f->peer = spawn_waiter(&f->w_peer, LONG_NAME, 0);
    f->detached = spawn_waiter(&f->w_detached, "detached", 1);

    /* A channel's slot taken by a channel. */
    weft_chan old = make_chan(sizeof(int), 2), neu = 0;
    for (int i = 0; i < 8; i++) {
        CHECK_RC(weft_chan_release(old), 0);
        neu = make_chan(sizeof(int), 2);
        if (SLOT(neu) == SLOT(old))
            break;
        old = neu;
    }
    CHECK(SLOT(neu) == SLOT(old), "no channel took a released channel's slot");
    hl_add(&f->stale_ch, old);
    f->fresh = neu;
    v = FRESH_V;
    CHECK_RC(weft_chan_send(f->fresh, &v, sizeof v, 0), 0);

    /* A channel's slot taken by a process. */
    for (int i = 0; i < 8; i++) {
        old = make_chan(sizeof(int), 1);
        CHECK_RC(weft_chan_release(old), 0);
        f->chan_pid = spawn_waiter(&f->w_chan_pid, "chan_pid", 0);
        if (SLOT(f->chan_pid) == SLOT(old))
            break;
        add_extra(f, f->chan_pid);
    }
    CHECK(SLOT(f->chan_pid) == SLOT(old), "no process took a released channel's slot");
    hl_add(&f->stale_ch, old);

    /* A process's slot taken by a process. */
    weft_pid oldp = 0;
    for (int i = 0; i < 8; i++) {
        oldp = joined_pid();
        f->fresh_pid = spawn_waiter(&f->w_fresh, "fresh", 0);
        if (SLOT(f->fresh_pid) == SLOT(oldp))
            break;
        add_extra(f, f->fresh_pid);
    }
    CHECK(SLOT(f->fresh_pid) == SLOT(oldp), "no process took a joined process's slot");
    hl_add(&f->stale_pid, oldp);

    /* A process's slot taken by a channel. */
    for (int i = 0; i < 8; i++) {
        oldp = joined_pid();
        f->pid_chan = make_chan(sizeof(int), 3);
        if (SLOT(f->pid_chan) == SLOT(oldp))
            break;
        CHECK_RC(weft_chan_release(f->pid_chan), 0);
    }
    CHECK(SLOT(f->pid_chan) == SLOT(oldp), "no channel took a joined process's slot");
    hl_add(&f->stale_pid, oldp);

    /* Released or joined, the slot not (yet) reused; a detached process that
     * has returned. */
    old = make_chan(sizeof(int), 1);
    CHECK_RC(weft_chan_release(old), 0);
    hl_add(&f->stale_ch, old);
    hl_add(&f->stale_pid, joined_pid());
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.detached = 1;
    /* Work-first on this pinned process's worker: it has returned, and its
     * slot is free, when weft_spawn returns (no polling: a stale pid is
     * misuse under WEFT_STRICT=1). */
    CHECK_RC(weft_spawn(&oldp, ret_arg, NULL, &o), 0);
    hl_add(&f->stale_pid, oldp);

    /* Ended: the pids above, stale in this runtime; a process that returned
     * and is not joined (work-first: it has returned when weft_spawn
     * returns); an actor that was killed. */
    hl_cat(&f->ended_pid, &f->stale_pid);
    f->zombie = spawn_proc(ret_arg, NULL);
    hl_add(&f->ended_pid, f->zombie);
    weft_pid dead = 0;
    uint64_t ref = 0;
    weft_msg m;
    weft_match down = {.tag = WEFT_TAG_DOWN};
    CHECK_RC(weft_actor_spawn(&dead, nop_actor, NULL, NULL), 0);
    CHECK_RC(weft_monitor(dead, &ref), 0);
    CHECK_RC(weft_kill(dead, WEFT_EXIT_KILL), 0);
    down.ref = ref;
    CHECK_RC(weft_recv(&m, &down, WEFT_FOREVER), 0);
    CHECK(m.reason == WEFT_EXIT_KILLED, "the killed actor ended with %ld", (long)m.reason);
    weft_msg_free(&m);
    hl_add(&f->ended_pid, dead);

    /* The actor layer: the actor, a full bounded mailbox, a name, a
     * supervisor. */
    atomic_store(&abox.stray, 0);
    abox.has_deferred = false;
    f->actor_out = make_chan(sizeof(int), 1);
    weft_actor_opts ao;
    weft_actor_opts_init(&ao);
    ao.name = "fx-actor";
    CHECK_RC(weft_actor_spawn(&f->actor, fx_actor, &abox, &ao), 0);
    f->w_full = (struct waiter){f->gate, FULL_RESULT, 1};
    weft_spawn_opts fo;
    weft_spawn_opts_init(&fo);
    fo.name = "full";
    fo.mailbox_capacity = 1;
    CHECK_RC(weft_spawn(&f->full, gate_waiter, &f->w_full, &fo), 0);
    v = 0;
    CHECK_RC(weft_send(f->full, TAG_USER, &v, sizeof v, 0), 0);
    CHECK_RC(weft_send(f->full, TAG_USER, &v, sizeof v, 0), -EAGAIN);
    CHECK_RC(weft_register("fx-peer", f->peer), 0);
    struct spec sp;
    good_spec(&sp);
    sp.s.name = "fx-sup";
    sp.s.nchildren = 1;
    CHECK_RC(weft_sup_start(&f->sup, &sp.s, 0), 0);
    CHECK_RC(weft_sup_which(f->sup, "idle", &f->sup_child, WEFT_FOREVER), 0);

    /* Pids of an earlier runtime: live slots under the previous and the next
     * runtime's epoch (the top 8 bits of the generation); fx_start adds an
     * earlier fixture's pids. */
    weft_pid lives[] = {f->peer, f->actor, f->sup};
    for (size_t i = 0; i < sizeof lives / sizeof lives[0]; i++) {
        hl_add(&f->old_pid, lives[i] - (1ull << 56));
        hl_add(&f->old_pid, lives[i] + (1ull << 56));
    }

    fx_build_dataflow(f);
    fx_build_graphs(f);

    /* Never valid: forged values, and live handles of the other types. */
    add_forged(&f->bad_ch, f->live);
    add_forged(&f->bad_pid, f->peer);
    add_forged(&f->bad_dv, f->dv_bound);
    add_forged(&f->bad_st, f->st);
    add_forged(&f->bad_g, f->g_build);
    weft_pid pids[] = {f->peer, f->fresh_pid, f->chan_pid, f->detached, f->actor, f->sup};
    weft_chan chans[] = {f->live, f->gate, f->fresh, f->pid_chan, f->rv, f->closed, f->actor_out};
    weft_dvar dvars[] = {f->dv_bound, f->dv_free, f->dv_fresh};
    weft_stream streams[] = {f->st, f->st_r, f->st_q, f->st_empty, f->st_closed, f->st_fresh};
    weft_graph graphs[] = {f->g_build, f->g_ready, f->g_empty, f->g_cycle, f->g_fresh, f->g_ended, f->g_run};
    for (size_t i = 0; i < sizeof pids / sizeof pids[0]; i++) {
        hl_add(&f->bad_ch, pids[i]);
        hl_add(&f->bad_dv, pids[i]);
        hl_add(&f->bad_st, pids[i]);
        hl_add(&f->bad_g, pids[i]);
    }
    for (size_t i = 0; i < sizeof chans / sizeof chans[0]; i++) {
        hl_add(&f->bad_pid, chans[i]);
        hl_add(&f->bad_dv, chans[i]);
        hl_add(&f->bad_st, chans[i]);
        hl_add(&f->bad_g, chans[i]);
    }
    for (size_t i = 0; i < sizeof dvars / sizeof dvars[0]; i++) {
        hl_add(&f->bad_ch, dvars[i]);
        hl_add(&f->bad_pid, dvars[i]);
        hl_add(&f->bad_st, dvars[i]);
        hl_add(&f->bad_g, dvars[i]);
    }
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++) {
        hl_add(&f->bad_ch, streams[i]);
        hl_add(&f->bad_pid, streams[i]);
        hl_add(&f->bad_dv, streams[i]);
        hl_add(&f->bad_g, streams[i]);
    }
    for (size_t i = 0; i < sizeof graphs / sizeof graphs[0]; i++) {
        hl_add(&f->bad_ch, graphs[i]);
        hl_add(&f->bad_pid, graphs[i]);
        hl_add(&f->bad_dv, graphs[i]);
        hl_add(&f->bad_st, graphs[i]);
    }
}

static intptr_t fx_builder(void *arg)
{
    fx_build(arg);
    return 0;
}

/* Starts the fixture for a context of a running runtime. prev: the fixture
 * of an earlier runtime, whose handles are all stale here (or NULL). */
static void fx_start(struct fx *f, unsigned ctx, const struct fx *prev)
{
    struct fx keep = *f; /* the descriptors and the element buffer survive */
    memset(f, 0, sizeof *f);
    f->elem = keep.elem;
    f->fd_null = keep.fd_null;
    f->fd_ro = keep.fd_ro;
    f->fd_broken = keep.fd_broken;
    f->io = keep.io;
    f->ctx = ctx;
    f->running = true;
    f->nworkers = weft_workers();
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.worker = 0;
    o.pinned = 1;
    o.stack_size = STACK;
    weft_pid b = 0;
    CHECK_RC(weft_spawn(&b, fx_builder, f, &o), 0);
    CHECK_RC(weft_join(b, NULL, WEFT_FOREVER), 0);
    if (prev) {
        hl_cat(&f->stale_ch, &prev->dead_ch);
        hl_cat(&f->stale_ch, &prev->stale_ch);
        hl_cat(&f->stale_pid, &prev->dead_pid);
        hl_cat(&f->stale_pid, &prev->stale_pid);
        hl_cat(&f->stale_dv, &prev->dead_dv);
        hl_cat(&f->stale_dv, &prev->stale_dv);
        hl_cat(&f->stale_st, &prev->dead_st);
        hl_cat(&f->stale_st, &prev->stale_st);
        hl_cat(&f->stale_g, &prev->dead_g);
        hl_cat(&f->stale_g, &prev->stale_g);
        hl_cat(&f->old_pid, &prev->dead_pid);
        hl_cat(&f->old_pid, &prev->ended_pid);
    }
}

/* Every handle the fixture holds, for the no-runtime context after a stop
 * and the stale lists of the next runtime. */
static void fx_collect_dead(struct fx *f)
{
    f->dead_ch.n = f->dead_pid.n = 0;
    weft_chan chans[] = {f->live, f->gate, f->fresh, f->pid_chan, f->rv, f->closed, f->actor_out};
    weft_pid pids[] = {f->peer, f->fresh_pid, f->chan_pid, f->detached, f->full, f->zombie, f->actor,
                       f->sup, f->sup_child};
    for (size_t i = 0; i < sizeof chans / sizeof chans[0]; i++)
        hl_add(&f->dead_ch, chans[i]);
    for (size_t i = 0; i < sizeof pids / sizeof pids[0]; i++)
        hl_add(&f->dead_pid, pids[i]);
    f->dead_dv.n = f->dead_st.n = 0;
    weft_dvar dvars[] = {f->dv_bound, f->dv_free, f->dv_fresh};
    weft_stream streams[] = {f->st, f->st_r, f->st_q, f->st_empty, f->st_closed, f->st_fresh};
    for (size_t i = 0; i < sizeof dvars / sizeof dvars[0]; i++)
        hl_add(&f->dead_dv, dvars[i]);
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++)
        hl_add(&f->dead_st, streams[i]);
    f->dead_g.n = 0;
    weft_graph graphs[] = {f->g_build, f->g_ready, f->g_empty, f->g_cycle, f->g_fresh, f->g_ended,
                           f->g_run, f->g_spare[0], f->g_spare[1], f->g_spare[2], f->g_spare[3]};
    for (size_t i = 0; i < sizeof graphs / sizeof graphs[0]; i++)
        hl_add(&f->dead_g, graphs[i]);
}

/* The fixture with no runtime: after a stop every handle it held is dead;
 * before the first start there are only forged handles. */
static void fx_no_runtime(struct fx *f, bool after_stop)
{
    f->ctx = NO_RT;
    f->running = false;
    if (after_stop) {
        fx_collect_dead(f);
        return;
    }
    f->bad_ch.n = f->bad_pid.n = f->stale_ch.n = f->stale_pid.n = 0;
    f->dead_ch.n = f->dead_pid.n = f->ended_pid.n = f->old_pid.n = 0;
    f->bad_dv.n = f->stale_dv.n = f->dead_dv.n = f->bad_st.n = f->stale_st.n = f->dead_st.n = 0;
    f->bad_g.n = f->stale_g.n = f->dead_g.n = 0;
    add_forged(&f->bad_g, 0);
    add_forged(&f->bad_dv, 0);
    add_forged(&f->bad_st, 0);
    add_forged(&f->bad_ch, 0);
    add_forged(&f->bad_pid, 0);
}

/* The dataflow objects hold what they held: the variables' values (the free
 * one still unbound), each stream's values (taken and put back), lengths,
 * the closed stream still closed. */
static void fx_check_dataflow(struct fx *f)
{
    int a = 0, b = 0, c = 0, rc[12];
    rc[0] = weft_dvar_get(f->dv_bound, &a, sizeof a, 0);
    rc[1] = weft_dvar_get(f->dv_fresh, &b, sizeof b, 0);
    rc[2] = weft_dvar_bound(f->dv_free);
    if (rc[0] || a != SENT_A || rc[1] || b != FRESH_V || rc[2] != 0)
        fail("%s: a dataflow variable changed: get %d gave %#x, in the reused slot %d gave %#x, "
             "the free one bound %d", cur, rc[0], a, rc[1], b, rc[2]);
    a = b = 0;
    rc[0] = (int)weft_stream_len(f->st);
    rc[1] = (int)weft_stream_len(f->st_r);
    rc[2] = weft_stream_read(f->st_r, &a, sizeof a, 0);
    rc[3] = weft_stream_write(f->st, &a, sizeof a, 0);
    rc[4] = weft_stream_read(f->st_q, &b, sizeof b, 0);
    rc[5] = weft_stream_write(f->st_q, &b, sizeof b, 0);
    rc[6] = (int)weft_stream_len(f->st_q);
    rc[7] = weft_stream_read(f->st_fresh, &c, sizeof c, 0);
    rc[8] = weft_stream_write(f->st_fresh, &c, sizeof c, 0);
    rc[9] = (int)weft_stream_len(f->st_empty);
    rc[10] = weft_stream_write(f->st_closed, &c, sizeof c, 0);
    rc[11] = (int)weft_stream_len(f->st_closed);
    if (rc[0] != 1 || rc[1] != 1 || rc[2] || a != SENT_A || rc[3] || rc[4] || b != SENT_B || rc[5] ||
        rc[6] != 1 || rc[7] || c != FRESH_V || rc[8] || rc[9] || rc[10] != -EPIPE || rc[11])
        fail("%s: a stream changed: len %d, reader len %d, read %d gave %#x, written back %d; queue "
             "read %d gave %#x, back %d, len %d; in the reused slot read %d gave %#x, back %d; "
             "empty len %d; closed write %d len %d", cur, rc[0], rc[1], rc[2], a, rc[3], rc[4], b,
             rc[5], rc[6], rc[7], c, rc[8], rc[9], rc[10], rc[11]);
}

/* The graphs are as built: the same DOT text, validation, result and
 * counts; the running one still runs and its loop edge is empty. */
static void fx_check_graphs(struct fx *f)
{
    static const int valid[NGRAPHS] = {-ENOTCONN, 0, -EINVAL, -EDEADLK, 0, 0, 0};
    weft_graph gs[] = {f->g_build, f->g_ready, f->g_empty, f->g_cycle, f->g_fresh, f->g_ended, f->g_run};
    for (int i = 0; i < NGRAPHS; i++) {
        char dot[sizeof f->g_dot[0]];
        int len = weft_graph_dot(gs[i], dot, sizeof dot);
        int v = weft_graph_validate(gs[i], NULL, 0);
        weft_graph_stats st;
        int s = weft_graph_get_stats(gs[i], &st);
        bool ended = gs[i] == f->g_ended;
        if (len != f->g_dotlen[i] || strcmp(dot, f->g_dot[i]) != 0 || v != valid[i] || s ||
            st.result != (ended ? 0 : -EINPROGRESS) || st.failed_node != -1 || st.failed_name[0] ||
            st.emitted != (ended ? 3u : 0u) || st.consumed != (ended ? 3u : 0u) || st.dropped)
            fail("%s: graph %d changed: DOT %d bytes (%d before), validate %d, stats %d: result %d, "
                 "failed node %d, emitted %llu, consumed %llu, dropped %llu", cur, i, len,
                 f->g_dotlen[i], v, s, st.result, st.failed_node, (unsigned long long)st.emitted,
                 (unsigned long long)st.consumed, (unsigned long long)st.dropped);
    }
    int rc[4];
    rc[0] = weft_graph_wait(f->g_ended, 0);
    rc[1] = weft_graph_wait(f->g_run, 0);
    rc[2] = weft_graph_wait_node(f->g_run, 0, 0);
    rc[3] = f->ctx & RUN ? in_node(f, n_edge_empty, 0, 0) : -ETIMEDOUT;
    if (rc[0] || rc[1] != -EAGAIN || rc[2] != -EAGAIN || rc[3] != -ETIMEDOUT)
        fail("%s: a graph's run changed: the ended one's wait %d, the running one's %d, its node's %d, "
             "its loop edge %d", cur, rc[0], rc[1], rc[2], rc[3]);
}

static void io_check(struct fx *f);

/* Nothing the probe should not have touched has changed. */
static void fx_check(struct fx *f)
{
    io_check(f);
    if (!f->running) {
        int w = weft_workers();
        if (w != -ESHUTDOWN) {
            fail("%s: left a runtime running (weft_workers %d); stopped it", cur, w);
            weft_stop(WEFT_FOREVER);
        }
        return;
    }
    int a = 0, b = 0, rc[12];
    rc[0] = weft_chan_len(f->live);
    rc[1] = weft_chan_cap(f->live);
    rc[2] = weft_chan_recv(f->live, &a, sizeof a, 0);
    rc[3] = weft_chan_recv(f->live, &b, sizeof b, 0);
    int sa = SENT_A, sb = SENT_B;
    rc[4] = weft_chan_send(f->live, &sa, sizeof sa, 0);
    rc[5] = weft_chan_send(f->live, &sb, sizeof sb, 0);
    if (rc[0] != 2 || rc[1] != 4 || rc[2] || rc[3] || a != SENT_A || b != SENT_B || rc[4] || rc[5])
        fail("%s: the buffered channel changed: len %d cap %d, receives %d %d gave %#x %#x, "
             "sends back %d %d", cur, rc[0], rc[1], rc[2], rc[3], a, b, rc[4], rc[5]);
    /* The channel in a stale handle's slot: its value, taken and put back
     * (a send fails if a probe closed it). */
    int fv = 0, fr = weft_chan_recv(f->fresh, &fv, sizeof fv, 0);
    int fs = fr == 0 ? weft_chan_send(f->fresh, &fv, sizeof fv, 0) : fr;
    if (fr || fv != FRESH_V || fs)
        fail("%s: the channel in a reused slot changed: receive %d gave %#x, send back %d", cur, fr,
             fv, fs);
    rc[0] = weft_chan_len(f->fresh);
    rc[1] = weft_chan_cap(f->fresh);
    rc[2] = weft_chan_cap(f->pid_chan);
    rc[3] = weft_chan_len(f->rv);
    rc[4] = weft_chan_cap(f->rv);
    rc[5] = weft_chan_len(f->closed);
    rc[6] = weft_chan_send(f->closed, &sa, sizeof sa, 0);
    rc[7] = weft_chan_len(f->gate);
    rc[8] = weft_chan_cap(f->gate);
    if (rc[0] != 1 || rc[1] != 2 || rc[2] != 3 || rc[3] || rc[4] || rc[5] || rc[6] != -EPIPE ||
        rc[7] || rc[8])
        fail("%s: a channel changed: fresh len %d cap %d, pid_chan cap %d, rendezvous len %d cap %d, "
             "closed len %d send %d, gate len %d cap %d", cur, rc[0], rc[1], rc[2], rc[3], rc[4],
             rc[5], rc[6], rc[7], rc[8]);
    char buf[WEFT_NAME_MAX];
    rc[0] = weft_proc_name(f->fresh_pid, buf, sizeof buf);
    if (rc[0] != 5 || strcmp(buf, "fresh") != 0)
        fail("%s: the process in a reused slot changed: name %d", cur, rc[0]);
    rc[0] = weft_proc_name(f->peer, buf, sizeof buf);
    if (rc[0] != WEFT_NAME_MAX - 1)
        fail("%s: weft_proc_name(peer) %d", cur, rc[0]);
    fx_check_dataflow(f);
    fx_check_graphs(f);
    /* The actor layer: the actor took no stray message (one sent just now
     * may still be on its way: fx_end waits for them), nor did the probing
     * process, which traps no exits; no probe result is left over. */
    long stray = atomic_exchange(&abox.stray, 0);
    if (stray)
        fail("%s (or a probe shortly before it: the actor runs on its own): the fixture actor took %ld "
             "stray message(s) (or failed to answer: 1000 each)", cur, stray);
    if ((rc[0] = weft_chan_len(f->actor_out)) != 0)
        fail("%s: the actor's result channel holds %d", cur, rc[0]);
    if (weft_self() && weft_mailbox_len() != 0) {
        /* The count includes replies that came after their call gave up
         * until a receive drops them: only what a receive returns counts. */
        weft_msg m;
        int got = weft_recv(&m, NULL, 0);
        if (got == 0) {
            fail("%s: message(s) left in the probing process's mailbox (the first: tag %d, from %#llx, "
                 "reason %ld)", cur, m.tag, (unsigned long long)m.from, (long)m.reason);
            weft_msg_free(&m);
            drain();
        } else if (weft_mailbox_len() != 0) {
            fail("%s: the probing process's mailbox counts %ld message(s) that it cannot receive", cur,
                 weft_mailbox_len());
        }
    }
    if (weft_self()) {
        if ((rc[0] = weft_trap_exits(0)) != 0)
            fail("%s: the probing process was left trapping exits (%d)", cur, rc[0]);
    }
    if (f->ctx & STOPPING)
        return; /* the waiters were canceled: they may have returned */
    weft_pid named = 0;
    if ((rc[0] = weft_whereis("fx-peer", &named)) != 0 || named != f->peer)
        fail("%s: the name fx-peer changed: %d, %#llx", cur, rc[0], (unsigned long long)named);
    weft_pid waiting[] = {f->peer, f->fresh_pid, f->chan_pid, f->full};
    for (size_t i = 0; i < sizeof waiting / sizeof waiting[0]; i++)
        if ((rc[0] = weft_join(waiting[i], NULL, 0)) != -ETIMEDOUT)
            fail("%s: process %#llx no longer waits on the gate: join %d", cur,
                 (unsigned long long)waiting[i], rc[0]);
    if ((rc[0] = weft_proc_name(f->detached, buf, sizeof buf)) != 8)
        fail("%s: the detached process changed: name %d", cur, rc[0]);
}

/* Ends a running fixture: the waiters return their results, and each channel
 * had exactly the one reference it was made with (a second release is
 * refused). */
static void fx_end(struct fx *f)
{
    bool proc = weft_self() != 0;
    /* A round trip through the actor: whatever was sent to it before has
     * been handled, and none of it was a stray. */
    CHECK_RC(in_actor(f, a_nop, 0, 0), 0);
    CHECK(atomic_load(&abox.stray) == 0, "the fixture actor took %ld stray message(s)",
          atomic_load(&abox.stray));
    weft_pid child = 0;
    if (proc) {
        CHECK_RC(weft_sup_which(f->sup, "idle", &child, WEFT_FOREVER), 0);
        CHECK(child == f->sup_child, "the supervisor's child changed");
        CHECK_RC(weft_sup_restarts(f->sup, WEFT_FOREVER), 0);
    }
    CHECK_RC(weft_sup_stop(f->sup, WEFT_FOREVER), 0);
    /* A link that a probe left between the probing process and the actor or
     * a waiter would now bring an exit signal: trapped, it would stay in the
     * mailbox. */
    weft_msg m;
    if (proc) {
        CHECK_RC(weft_trap_exits(1), 0);
        uint64_t ref = 0;
        CHECK_RC(weft_monitor(f->actor, &ref), 0);
        CHECK_RC(weft_kill(f->actor, REASON), 0);
        weft_match down = {.tag = WEFT_TAG_DOWN, .ref = ref};
        CHECK_RC(weft_recv(&m, &down, WEFT_FOREVER), 0);
        CHECK(m.reason == REASON, "the actor ended with %ld", (long)m.reason);
        weft_msg_free(&m);
    }
    CHECK_RC(weft_chan_close(f->gate), 0);
    weft_pid pids[] = {f->peer, f->fresh_pid, f->chan_pid, f->full, f->zombie};
    intptr_t results[] = {PEER_RESULT, FRESH_RESULT, CHAN_PID_RESULT, FULL_RESULT, 0};
    for (size_t i = 0; i < sizeof pids / sizeof pids[0]; i++) {
        intptr_t r = -1;
        CHECK_RC(weft_join(pids[i], &r, WEFT_FOREVER), 0);
        CHECK(r == results[i], "process %zu returned %ld, expected %ld", i, (long)r, (long)results[i]);
    }
    for (int i = 0; i < f->nextra; i++) {
        intptr_t r = -1;
        CHECK_RC(weft_join(f->extra[i], &r, WEFT_FOREVER), 0);
        CHECK(r == EXTRA_RESULT, "extra waiter returned %ld", (long)r);
    }
    if (proc) {
        int rc = weft_recv(&m, NULL, 0);
        CHECK(rc == -ETIMEDOUT, "a message was left for the probing process: tag %d from %#llx, reason %ld",
              rc ? 0 : m.tag, rc ? 0ull : (unsigned long long)m.from, rc ? 0L : (long)m.reason);
        if (rc == 0)
            weft_msg_free(&m);
        CHECK_RC(weft_trap_exits(0), 1);
    }
    int v = 0;
    CHECK_RC(weft_chan_recv(f->fresh, &v, sizeof v, 0), 0);
    CHECK(v == FRESH_V, "the channel in a reused slot gave %#x", v);
    weft_chan chans[] = {f->live, f->gate, f->fresh, f->pid_chan, f->rv, f->closed, f->actor_out};
    for (size_t i = 0; i < sizeof chans / sizeof chans[0]; i++) {
        CHECK_RC(weft_chan_release(chans[i]), 0);
        CHECK_RC(weft_chan_release(chans[i]), -EBADF);
    }
    weft_dvar dvars[] = {f->dv_bound, f->dv_free, f->dv_fresh};
    for (size_t i = 0; i < sizeof dvars / sizeof dvars[0]; i++) {
        CHECK_RC(weft_dvar_release(dvars[i]), 0);
        CHECK_RC(weft_dvar_release(dvars[i]), -EBADF);
    }
    /* The reader first: it holds a reference on its stream. */
    weft_stream streams[] = {f->st_r, f->st, f->st_q, f->st_empty, f->st_closed, f->st_fresh};
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++) {
        CHECK_RC(weft_stream_release(streams[i]), 0);
        CHECK_RC(weft_stream_release(streams[i]), -EBADF);
    }
    /* The running graph ends with its node's body (its jobs closed). The
     * run drops its own reference just after the end that the wait sees,
     * so a second release of g_run could take that one: it is released
     * once. */
    CHECK_RC(weft_chan_close(f->node_jobs), 0);
    CHECK_RC(weft_graph_wait(f->g_run, WEFT_FOREVER), 0);
    CHECK_RC(weft_graph_wait_node(f->g_run, 0, WEFT_FOREVER), 0);
    CHECK_RC(weft_graph_release(f->g_run), 0);
    weft_graph graphs[] = {f->g_build, f->g_ready, f->g_empty, f->g_cycle, f->g_fresh, f->g_ended,
                           f->g_spare[0], f->g_spare[1], f->g_spare[2], f->g_spare[3]};
    for (size_t i = 0; i < sizeof graphs / sizeof graphs[0]; i++) {
        CHECK_RC(weft_graph_release(graphs[i]), 0);
        CHECK_RC(weft_graph_release(graphs[i]), -EBADF);
    }
    weft_chan node_chans[] = {f->node_jobs, f->node_out};
    for (size_t i = 0; i < 2; i++) {
        CHECK_RC(weft_chan_release(node_chans[i]), 0);
        CHECK_RC(weft_chan_release(node_chans[i]), -EBADF);
    }
}

/* ---- the io fixture ------------------------------------------------------------------------ */

/* A TCP socket bound to 127.0.0.1 on a free port, its address in *a. */
static int bound_tcp(weft_addr *a)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&in, sizeof in) == 0);
    memset(a, 0, sizeof *a);
    socklen_t len = sizeof a->sa;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a->sa, &len), 0);
    a->len = len;
    return fd;
}

static void io_open(struct fx *f)
{
    struct io_fx *io = &f->io;
    memset(io, 0, sizeof *io);
    strcpy(io->dir, "/tmp/weft-misuse-XXXXXX");
    cr_assert_not_null(mkdtemp(io->dir));
    snprintf(io->path, sizeof io->path, "%s/missing", io->dir);
    cr_assert_eq(weft_addr_unix(&io->upath, io->path), 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, io->sp), 0);
    cr_assert_eq(send(io->sp[0], "q", 1, 0), 1);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, io->full), 0);
    static char block[4096];
    while (send(io->full[0], block, sizeof block, MSG_NOSIGNAL) > 0) {
    }
    while (send(io->full[0], block, 1, MSG_NOSIGNAL) > 0) {
    }
    io->listen = bound_tcp(&io->laddr);
    cr_assert_eq(listen(io->listen, 16), 0);
    close(bound_tcp(&io->refused));
    io->unconnected = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert_eq(pipe2(io->pipe, O_NONBLOCK | O_CLOEXEC), 0);
    int p[2];
    cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    close(p[0]);
    io->pipe_broken = p[1];
    char path[128];
    snprintf(path, sizeof path, "%s/full", io->dir);
    cr_assert_eq(weft_addr_unix(&io->ufull_addr, path), 0);
    io->ufull = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert_eq(bind(io->ufull, (struct sockaddr *)&io->ufull_addr.sa, io->ufull_addr.len), 0);
    cr_assert_eq(listen(io->ufull, 0), 0);
    for (io->nheld = 0; io->nheld < 8; io->nheld++) {
        int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (connect(c, (struct sockaddr *)&io->ufull_addr.sa, io->ufull_addr.len) != 0) {
            cr_assert_eq(errno, EAGAIN, "connect to the Unix listener: %s", strerror(errno));
            close(c);
            break;
        }
        io->held[io->nheld] = c;
    }
    cr_assert(io->nheld < 8, "a Unix listener of backlog 0 took 8 connections");
    io->closed = fcntl(f->fd_ro, F_DUPFD_CLOEXEC, 900);
    if (io->closed < 0)
        io->closed = dup(f->fd_ro);
    close(io->closed);
}

static void io_close(struct fx *f)
{
    struct io_fx *io = &f->io;
    int fds[] = {io->sp[0], io->sp[1], io->full[0], io->full[1], io->listen, io->unconnected,
                 io->pipe[0], io->pipe[1], io->pipe_broken, io->ufull};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        close(fds[i]);
    for (int i = 0; i < io->nheld; i++)
        close(io->held[i]);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", io->dir);
    cr_assert_eq(system(cmd), 0);
}

/* The io fixture is as made: the pair's byte waits in sp[1] and sp[0] is
 * empty, full[0] takes nothing, no connection waits on the listener, no
 * file appeared at the missing path; the offload pool ran fn exactly when
 * a call returned 0, and abandon exactly when one with abandon set failed
 * with -ETIMEDOUT or -ECANCELED. */
static void io_check(struct fx *f)
{
    struct io_fx *io = &f->io;
    char c[2] = {0, 0};
    ssize_t peek = recv(io->sp[1], c, 2, MSG_PEEK | MSG_DONTWAIT);
    ssize_t empty = recv(io->sp[0], c + 1, 1, MSG_PEEK | MSG_DONTWAIT);
    ssize_t more = send(io->full[0], "", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    int conn = accept4(io->listen, NULL, NULL, SOCK_CLOEXEC);
    if (conn >= 0)
        close(conn);
    struct stat st;
    bool there = stat(io->path, &st) == 0;
    if (peek != 1 || c[0] != 'q' || empty != -1 || more != -1 || conn >= 0 || there)
        fail("%s: the io fixture changed: the pair's byte %zd (%c), its empty end %zd, the full "
             "socket took %zd, a connection was queued %d, a file at the missing path %d",
             cur, peek, c[0], empty, more, conn >= 0, there);
    int runs = atomic_load(&offload_runs), expected = atomic_load(&offload_expected);
    int abandons = atomic_load(&offload_abandons);
    int abandons_expected = atomic_load(&offload_abandons_expected);
    if (runs != expected || abandons != abandons_expected) {
        fail("%s: the offload pool ran fn %d times and abandon %d times, the calls said %d and %d",
             cur, runs, abandons, expected, abandons_expected);
        atomic_store(&offload_expected, runs);
        atomic_store(&offload_abandons_expected, abandons);
    }
}

/* ---- running the table ------------------------------------------------------------------- */

static const char *ctx_name(unsigned ctx)
{
    switch (ctx) {
    case IN_PROC: return "process";
    case IN_THREAD: return "outside thread";
    case STOP_PROC: return "process, shutting down";
    case STOP_THREAD: return "outside thread, shutting down";
    default: return "no runtime";
    }
}

static const struct hlist *handles_for(struct fx *f, const struct probe *r)
{
    static const struct hlist none = {.n = 1};
    if (r->hk == H_NONE)
        return &none;
    if (r->hk == H_ENDED)
        return &f->ended_pid;
    if (r->hk == H_OLD)
        return &f->old_pid;
    const struct hlist *bad, *stale, *dead;
    switch (r->hk) {
    case H_CHAN: bad = &f->bad_ch, stale = &f->stale_ch, dead = &f->dead_ch; break;
    case H_DVAR: bad = &f->bad_dv, stale = &f->stale_dv, dead = &f->dead_dv; break;
    case H_STREAM: bad = &f->bad_st, stale = &f->stale_st, dead = &f->dead_st; break;
    case H_GRAPH: bad = &f->bad_g, stale = &f->stale_g, dead = &f->dead_g; break;
    default: bad = &f->bad_pid, stale = &f->stale_pid, dead = &f->dead_pid; break;
    }
    if (r->col == C_BAD)
        return bad;
    if (r->col == C_STALE)
        return stale;
    /* No runtime: every handle, valid, stale or forged. */
    f->tmp.n = 0;
    hl_cat(&f->tmp, bad);
    hl_cat(&f->tmp, stale);
    hl_cat(&f->tmp, dead);
    return &f->tmp;
}

/* Runs one probe with one handle and variant; returns what it returned. */
static int run_one(struct fx *f, const struct probe *r, uint64_t h, int k)
{
    snprintf(cur, sizeof cur, "%s [%s, %s] in %s, handle %#llx, variant %d", r->fn, r->id,
             col_name[r->col], ctx_name(f->ctx), (unsigned long long)h, k);
    if (trace) {
        fprintf(stderr, "%s\n", cur);
        fflush(stderr);
    }
    int rc = r->call(f, h, k);
    atomic_fetch_add(&nprobes, 1);
    if (rc != r->expect)
        fail("%s: returned %d (%s), expected %d (%s)", cur, rc,
             rc == TOUCHED ? "an output was written"
             : rc == BROKE ? "the probe's own steps failed"
                           : weft_strerror(rc),
             r->expect,
             weft_strerror(r->expect));
    fx_check(f);
    return rc;
}

/* Runs every probe that applies to the fixture's context. */
static void run_probes(struct fx *f)
{
    for (int i = 0; i < NPROBES; i++) {
        const struct probe *r = &probes[i];
        if (!(r->where & f->ctx))
            continue;
        const struct hlist *hs = handles_for(f, r);
        for (int j = 0; j < hs->n; j++)
            for (int k = 0; k < r->nvar; k++)
                run_one(f, r, hs->h[j], k);
    }
}

/* ---- the contexts --------------------------------------------------------------------- */

static struct fx fx, prev_fx;

static void files_open(struct fx *f)
{
    unsetenv("WEFT_STRICT"); /* read at the first misuse: the matrix wants the codes */
    trace = getenv("MISUSE_TRACE") != NULL;
    signal(SIGPIPE, SIG_IGN);
    f->elem = malloc(sizeof(int));
    f->fd_null = open("/dev/null", O_WRONLY);
    f->fd_ro = open("/dev/null", O_RDONLY);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    close(p[0]);
    f->fd_broken = p[1];
    cr_assert(f->fd_null >= 0 && f->fd_ro >= 0);
    io_open(f);
}

static void files_close(struct fx *f)
{
    io_close(f);
    close(f->fd_null);
    close(f->fd_ro);
    close(f->fd_broken);
    free(f->elem);
}

static weft_config config(unsigned workers)
{
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = workers;
    cfg.stack_size = STACK;
    return cfg;
}

Test(misuse, before_the_first_start, .timeout = 60)
{
    files_open(&fx);
    fx_no_runtime(&fx, false);
    run_probes(&fx);
    files_close(&fx);
    assert_no_failures();
}

/* From a process: the matrix, then (no runtime) every handle of the stopped
 * runtime, then a second runtime whose stale lists hold the first's handles. */
static intptr_t proc_main(void *arg)
{
    fx_start(&fx, IN_PROC, arg);
    run_probes(&fx);
    fx_end(&fx);
    return 0;
}

static void in_process(unsigned workers)
{
    files_open(&fx);
    weft_config cfg = config(workers);
    intptr_t r = -1;
    ASSERT_OK(weft_run(proc_main, NULL, &cfg, &r));
    cr_assert_eq(r, 0);
    fx_no_runtime(&fx, true);
    run_probes(&fx);
    prev_fx = fx;
    cfg = config(3 - workers);
    ASSERT_OK(weft_run(proc_main, &prev_fx, &cfg, &r));
    files_close(&fx);
    assert_no_failures();
}

Test(misuse, from_a_process_1_worker, .timeout = 120)
{
    in_process(1);
}

Test(misuse, from_a_process_2_workers, .timeout = 120)
{
    in_process(2);
}

/* Shutting down: a process that ignores the cancellation keeps the runtime
 * in weft_stop's shutting-down state; it runs the matrix as a process of
 * that runtime, then waits to be let go. */
static atomic_int holdout_probed, holdout_release;

static intptr_t holdout(void *arg)
{
    struct fx *f = arg;
    while (weft_yield() != -ECANCELED)
        usleep(100);
    struct fx mine = *f; /* the outside thread's probes use f meanwhile */
    mine.ctx = STOP_PROC;
    run_probes(&mine);
    atomic_store(&holdout_probed, 1);
    while (!atomic_load(&holdout_release)) {
        weft_yield();
        usleep(100);
    }
    return 0;
}

/* From an outside thread: the matrix while the runtime runs, then as it
 * shuts down (from a process and from the thread), then with no runtime,
 * then in a second runtime with the first one's handles as stale. */
static void from_thread(unsigned workers)
{
    files_open(&fx);
    weft_config cfg = config(workers);
    ASSERT_OK(weft_start(&cfg));
    fx_start(&fx, IN_THREAD, NULL);
    run_probes(&fx);

    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.detached = 1;
    o.stack_size = STACK;
    atomic_store(&node_hold, 1); /* g_run keeps running through the shutdown */
    ASSERT_OK(weft_spawn(NULL, holdout, &fx, &o));
    int rc;
    int64_t limit = weft_now() + 30000 * MS;
    do
        rc = weft_stop(weft_now() + 10 * MS);
    while (rc == -ETIMEDOUT && !atomic_load(&holdout_probed) && weft_now() < limit);
    ASSERT_RC(rc, -ETIMEDOUT);
    cr_assert(atomic_load(&holdout_probed), "the holdout process never ran its probes");
    fx.ctx = STOP_THREAD;
    run_probes(&fx);
    atomic_store(&holdout_release, 1);
    atomic_store(&node_hold, 0);
    ASSERT_OK(weft_stop(WEFT_FOREVER));

    fx_no_runtime(&fx, true);
    run_probes(&fx);

    prev_fx = fx;
    cfg = config(3 - workers);
    ASSERT_OK(weft_start(&cfg));
    fx_start(&fx, IN_THREAD, &prev_fx);
    run_probes(&fx);
    fx_end(&fx);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    files_close(&fx);
    assert_no_failures();
}

Test(misuse, from_an_outside_thread_1_worker, .timeout = 120)
{
    from_thread(1);
}

Test(misuse, from_an_outside_thread_2_workers, .timeout = 120)
{
    from_thread(2);
}

/* ---- contexts that the table cannot express -------------------------------------------- */

/* A thread created by a process is outside the runtime, whatever created it. */
static atomic_int inner_rc[6];

static void *inner_thread(void *arg)
{
    atomic_store(&inner_rc[0], weft_exit(3));
    atomic_store(&inner_rc[1], weft_worker_id());
    atomic_store(&inner_rc[2], weft_self() == 0 ? 0 : 1);
    atomic_store(&inner_rc[3], weft_yield());
    atomic_store(&inner_rc[4], weft_start(NULL));
    atomic_store(&inner_rc[5], weft_join(*(weft_pid *)arg, NULL, WEFT_FOREVER)); /* blocks the thread */
    return NULL;
}

static intptr_t exits_with_42(void *arg)
{
    weft_exit(42);
    return 7; /* never reached */
}

/* A process that tried to join itself can still be joined by another. */
static intptr_t joins_itself(void *arg)
{
    intptr_t r = -1;
    CHECK_RC(weft_join(weft_self(), &r, WEFT_FOREVER), -EDEADLK);
    CHECK_RC(weft_join(weft_self(), &r, 0), -EDEADLK);
    CHECK(r == -1, "a refused join wrote the result");
    return 5;
}

static intptr_t contexts_main(void *arg)
{
    weft_pid child = spawn_proc(exits_with_42, NULL);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, inner_thread, &child) == 0, "pthread_create");
    pthread_join(t, NULL); /* blocks this worker: the child runs on the other */
    int expect[] = {-EPERM, -EPERM, 0, 0, -EBUSY, 0};
    for (int i = 0; i < 6; i++)
        CHECK(atomic_load(&inner_rc[i]) == expect[i], "call %d from a thread made by a process: %d", i,
              atomic_load(&inner_rc[i]));
    weft_pid pid = spawn_proc(joins_itself, NULL);
    intptr_t r = -1;
    CHECK_RC(weft_join(pid, &r, WEFT_FOREVER), 0);
    CHECK(r == 5, "the process that joined itself returned %ld", (long)r);
    pid = spawn_proc(exits_with_42, NULL);
    CHECK_RC(weft_join(pid, &r, WEFT_FOREVER), 0);
    CHECK(r == 42, "weft_exit(42) gave %ld", (long)r);
    return 0;
}

Test(misuse, threads_made_by_processes_and_exit_and_self_join, .timeout = 60)
{
    unsetenv("WEFT_STRICT");
    run_at_workers(2, contexts_main, NULL);
}

/* weft_stop from an outside thread while weft_run owns the runtime is
 * refused (-EPERM): weft_run's main runs on and its result comes back. */
static atomic_int run_main_started, foreign_stop_rc;

static intptr_t sleepy_main(void *arg)
{
    atomic_store(&run_main_started, 1);
    return 1000 + weft_sleep(weft_now() + 2000 * MS); /* 1000, or 1000 - ECANCELED */
}

static void *foreign_stopper(void *arg)
{
    while (!atomic_load(&run_main_started))
        usleep(100);
    atomic_store(&foreign_stop_rc, weft_stop(weft_now() + 5000 * MS));
    return NULL;
}

Test(misuse, stop_from_a_thread_while_weft_run_owns_the_runtime, .timeout = 60)
{
    unsetenv("WEFT_STRICT");
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, foreign_stopper, NULL), 0);
    weft_config cfg = config(2);
    intptr_t r = -1;
    int rc = weft_run(sleepy_main, NULL, &cfg, &r);
    pthread_join(t, NULL);
    int stop_rc = atomic_load(&foreign_stop_rc);
    ASSERT_RC(stop_rc, -EPERM);
    ASSERT_RC(rc, 0);
    cr_assert_eq(r, 1000, "weft_run gave main's result as %ld", (long)r);
    ASSERT_RC(weft_workers(), -ESHUTDOWN);
}

/* Retains past the limit fail with -EOVERFLOW, never abort; the channel
 * then still works and is destroyed by as many releases as retains
 * succeeded. */
static intptr_t retain_many_main(void *arg)
{
    weft_chan ch = make_chan(sizeof(int), 1);
    long ok = 0;
    int rc = 0;
    for (long i = 0; i < (1L << 24) + 16; i++) {
        if ((rc = weft_chan_retain(ch)) != 0)
            break;
        ok++;
    }
    /* The creator's reference and 16,711,678 retains: the most a channel
     * can have (weft.h). */
    CHECK(rc == -EOVERFLOW && ok == 16711678, "retain stopped after %ld with %d", ok, rc);
    int v = 9;
    CHECK_RC(weft_chan_send(ch, &v, sizeof v, 0), 0);
    CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), 0);
    for (long i = 0; i < ok; i++)
        if ((rc = weft_chan_release(ch)) != 0) {
            CHECK_RC(rc, 0);
            break;
        }
    CHECK_RC(weft_chan_release(ch), 0);
    CHECK_RC(weft_chan_len(ch), -EBADF);
    return 0;
}

Test(misuse, chan_retain_past_the_reference_count_limit, .timeout = 120)
{
    unsetenv("WEFT_STRICT");
    run_at_workers(1, retain_many_main, NULL);
}

/* WEFT_GRAPH_NODES_MAX nodes, then one more: -E2BIG (not misuse), the graph
 * unchanged. Not a row of the matrix: each node's result is a dataflow
 * variable, and 4096 of them take handle-table slots that the forged
 * handles count on being unused. */
static intptr_t graph_full_main(void *arg)
{
    weft_graph g = temp_graph("full", false, NULL);
    CHECK(g != 0, "temp_graph");
    char name[16];
    int rc = 0;
    for (int i = 0; i < WEFT_GRAPH_NODES_MAX && rc == 0; i++) {
        snprintf(name, sizeof name, "n%d", i);
        weft_node_spec s = node_spec(WEFT_NODE_SINK, name);
        weft_node n = -1;
        rc = weft_graph_add(g, &s, &n);
        if (rc == 0 && n != i)
            rc = TOUCHED;
    }
    if (rc == 0) {
        weft_node_spec s = node_spec(WEFT_NODE_SINK, "one-more");
        rc = add_untouched(g, &s);
    }
    CHECK_RC(rc, -E2BIG);
    char why[64];
    CHECK_RC(weft_graph_validate(g, why, sizeof why), -ENOTCONN);
    CHECK(strstr(why, "'n0'") != NULL, "validate: %s", why);
    CHECK(weft_graph_dot(g, NULL, 0) > 0, "dot of the full graph");
    CHECK_RC(weft_graph_release(g), 0);
    return 0;
}

Test(misuse, graph_add_past_the_node_limit, .timeout = 120)
{
    unsetenv("WEFT_STRICT");
    run_at_workers(1, graph_full_main, NULL);
}

/* ---- WEFT_STRICT=1 ------------------------------------------------------------------------ */

/* Each probe again, in a child with WEFT_STRICT=1: a [misuse] code aborts
 * with "weft: misuse: ... (<strerror>)" on stderr, any other code is
 * returned. One child per probe and handle (the first and the last of its
 * list), variant 0, from a process when the probe runs there, else with no
 * runtime. */
static const struct probe *strict_row;
static int strict_handle; /* 0: the first of the list, 1: the last */

static int strict_call(struct fx *f)
{
    const struct hlist *hs = handles_for(f, strict_row);
    uint64_t h = hs->h[strict_handle ? hs->n - 1 : 0];
    return strict_row->call(f, h, 0);
}

/* 0 if the probe returned what its row expects; else says what it returned. */
static int strict_verdict(int rc)
{
    if (rc == strict_row->expect)
        return 0;
    fprintf(stderr, "the probe returned %d (%s)\n", rc, weft_strerror(rc));
    return 100;
}

/* Returns (the runtime then stops, and its threads end before the child's
 * _exit: under TSan an _exit beside running threads sleeps a second). */
static intptr_t strict_main(void *arg)
{
    fx_start(&fx, IN_PROC, NULL);
    return strict_verdict(strict_call(&fx));
}

static void strict_child(void)
{
    setenv("WEFT_STRICT", "1", 1);
    signal(SIGPIPE, SIG_IGN);
    fx.elem = malloc(sizeof(int));
    fx.fd_null = open("/dev/null", O_WRONLY);
    fx.fd_ro = open("/dev/null", O_RDONLY);
    fx.fd_broken = -1;
    if (strict_row->where & IN_PROC) {
        weft_config cfg = config(1);
        intptr_t r = 101;
        int rc = weft_run(strict_main, NULL, &cfg, &r);
        _exit(rc == 0 ? (int)r : 102);
    }
    fx_no_runtime(&fx, false);
    _exit(strict_verdict(strict_call(&fx)));
}

Test(misuse, strict_mode_aborts_on_exactly_the_misuse_codes, .timeout = 300)
{
    int children = 0;
    fx.fd_ro = open("/dev/null", O_RDONLY);
    io_open(&fx); /* shared by the children */
    for (int i = 0; i < NPROBES; i++) {
        strict_row = &probes[i];
        if (!(strict_row->where & (IN_PROC | NO_RT)))
            continue;
        for (strict_handle = 0; strict_handle < (strict_row->hk == H_NONE ? 1 : 2); strict_handle++) {
            int fds[2];
            cr_assert_eq(pipe(fds), 0);
            fflush(NULL);
            pid_t pid = fork();
            cr_assert_neq(pid, -1, "fork failed");
            if (pid == 0) {
                close(fds[0]);
                dup2(fds[1], STDERR_FILENO);
                close(fds[1]);
                strict_child();
            }
            close(fds[1]);
            static char err[16384];
            size_t len = 0;
            ssize_t n;
            while ((n = read(fds[0], err + len, sizeof err - 1 - len)) > 0)
                len += (size_t)n;
            err[len] = '\0';
            close(fds[0]);
            int status = 0;
            cr_assert_eq(waitpid(pid, &status, 0), pid);
            children++;
            const char *where = strict_row->where & IN_PROC ? "from a process" : "with no runtime";
            bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
            if (strict_row->misuse) {
                if (!aborted || !strstr(err, "weft: misuse: ") ||
                    !strstr(err, weft_strerror(strict_row->expect)))
                    fail("WEFT_STRICT=1: %s [%s] %s, handle %d: expected an abort with \"weft: misuse: "
                         "... (%s)\"; status %#x, stderr: %.300s",
                         strict_row->fn, strict_row->id, where, strict_handle,
                         weft_strerror(strict_row->expect), status, err);
            } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || strstr(err, "misuse")) {
                fail("WEFT_STRICT=1: %s [%s] %s, handle %d: expected %d (%s) returned; status %#x "
                     "(exit %d, signal %d), stderr: %.300s",
                     strict_row->fn, strict_row->id, where, strict_handle, strict_row->expect,
                     weft_strerror(strict_row->expect), status,
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                     WIFSIGNALED(status) ? WTERMSIG(status) : 0, err);
            }
        }
    }
    io_close(&fx);
    close(fx.fd_ro);
    cr_assert_gt(children, 50);
    if (getenv("MISUSE_VERBOSE"))
        fprintf(stderr, "misuse matrix: %d strict children\n", children);
    assert_no_failures();
}
