/* weft.h: the public interface of weft, lightweight processes and message
 * passing for C11.
 *
 * Conventions that hold for every function below:
 *  - A call returns an int: >= 0 is success, a negative errno code is the
 *    failure (-EINVAL, -ESRCH, -ETIMEDOUT, ...). weft reports nothing through
 *    errno (its value after a weft call is unspecified). weft_strerror()
 *    names every code.
 *  - Deadlines are absolute nanoseconds of the monotonic clock (weft_now()).
 *    A deadline in the past (0 is the usual spelling) means "do not block";
 *    WEFT_FOREVER (-1, or any negative value) means wait as long as it takes.
 *  - Handles (pids) are 64-bit values checked by generation: a stale, forged
 *    or already released pid gives -ESRCH, never a crash.
 *  - -ESHUTDOWN: no runtime is running. -ECANCELED: the runtime is shutting
 *    down and the calling process should return.
 *  - Codes marked [misuse] below are caller errors. With WEFT_STRICT=1 in
 *    the environment (any value but empty or 0) they print a message with a
 *    backtrace and abort instead of returning: a development aid.
 */
#ifndef WEFT_H
#define WEFT_H

#include <errno.h> /* the codes weft returns, negated */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h> /* ssize_t */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(WEFT_BUILDING) && defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

/* ---- Errors and time ------------------------------------------------------ */

/* A short English description of a weft return code (a negative errno value,
 * or 0). Never NULL; the string is static. */
WEFT_API const char *weft_strerror(int err);

/* Wait without limit. */
#define WEFT_FOREVER ((int64_t)-1)

/* Nanoseconds of the monotonic clock. Deadlines are absolute values of it. */
WEFT_API int64_t weft_now(void);

/* ---- Memory --------------------------------------------------------------- */

/* The allocation hook, in the style of Lua's lua_Alloc. weft calls it as
 * fn(ud, NULL, 0, n) to allocate n bytes, fn(ud, p, old, n) to resize and
 * fn(ud, p, old, 0) to free (it must return NULL then). Returning NULL for
 * an allocation makes the weft call that needed it fail with -ENOMEM.
 * Process stacks do not come from the hook: they are mapped with mmap. */
typedef void *(*weft_alloc_fn)(void *ud, void *ptr, size_t old_size, size_t new_size);

/* Replaces the allocation hook (NULL restores the default, built on malloc).
 * Errors: -EBUSY [misuse] while a runtime is running or memory taken through
 * the previous hook is still held by weft. */
WEFT_API int weft_set_allocator(weft_alloc_fn fn, void *ud);

/* ---- Runtime -------------------------------------------------------------- */

/* Smallest, default and largest process stack sizes, in bytes. Sizes are
 * rounded up to a power of two; the size includes one guard page. */
#define WEFT_STACK_MIN ((size_t)16 * 1024)
#define WEFT_STACK_DEFAULT ((size_t)64 * 1024)
#define WEFT_STACK_MAX ((size_t)256 * 1024 * 1024)

/* Largest number of workers a runtime accepts. */
#define WEFT_WORKERS_MAX 256

typedef struct weft_config {
    /* Worker OS threads. 0: one per CPU in the calling thread's affinity mask. */
    unsigned workers;
    /* Stack size of processes spawned without options. */
    size_t stack_size;
    /* Seed of the random source behind every scheduling choice (steal
     * victims, select order; in a deterministic schedule, every choice).
     * 0: drawn from the clock (deterministic schedules: 1). */
    uint64_t seed;
    /* A signal (such as SIGQUIT, the default) that makes weft write the
     * report of weft_dump to standard error and go on running; 0: none. It
     * is installed only while the signal has its default disposition. */
    int dump_signal;
    /* WEFT_SCHEDULE_THREADS (the default): workers are OS threads. The
     * deterministic schedules (see below) run the workers as logical workers
     * on one OS thread, every choice drawn from seed. */
    int schedule;
    /* WEFT_SCHEDULE_PCT: the number of priority change points plus one (the
     * depth of the bugs it aims at; 0: 3), spread over the first pct_steps
     * scheduling steps (0: 1000). */
    unsigned pct_depth;
    unsigned pct_steps;
    /* Deterministic schedules: called with every scheduling event (one line
     * of text, without a newline, valid during the call) on the scheduler's
     * thread; it must not call weft. NULL: none. The same seed and program
     * give the same lines, byte for byte. */
    void (*trace)(void *trace_ud, const char *event);
    void *trace_ud;
    /* Most helper threads of the offload pool (weft_offload), started as
     * calls need them. 0: WEFT_OFFLOAD_THREADS_DEFAULT. */
    unsigned offload_threads;
} weft_config;

/* Schedules. Deterministic mode: the workers are logical workers that take
 * turns on one OS thread; which process runs next, when a running process
 * is preempted (at weft calls), select's order and every other choice come
 * from one generator seeded by weft_config.seed, and weft_now() is a virtual
 * clock that moves a little at every step and jumps to the next deadline
 * when every process waits for one. The same seed gives the same execution,
 * event for event, as long as no thread outside the runtime takes part.
 *  - RANDOM: the next process is drawn uniformly from the runnable ones, and
 *    a process is preempted at a weft call with probability 1/4.
 *  - PCT: probabilistic concurrency testing (Burckhardt et al., 2010): the
 *    runnable process of highest priority runs, priorities are random, and
 *    pct_depth - 1 times the running process drops below all others.
 * weft_start reads WEFT_SEED=<n> from the environment: when set (and cfg
 * asks for THREADS), the run is deterministic (RANDOM, or PCT when
 * WEFT_SCHEDULE=pct) with that seed, so that a failing seed replays without
 * a rebuild. A deterministic run that fails (a deadlock, a panic) prints its
 * seed. */
enum {
    WEFT_SCHEDULE_THREADS = 0,
    WEFT_SCHEDULE_RANDOM = 1,
    WEFT_SCHEDULE_PCT = 2
};

/* Fills *cfg with the defaults: workers 0 (auto), WEFT_STACK_DEFAULT, seed 0,
 * dump_signal SIGQUIT, schedule THREADS. */
WEFT_API void weft_config_init(weft_config *cfg);

typedef intptr_t (*weft_proc_fn)(void *arg);

/* Runs a whole program: starts a runtime, runs main_fn(arg) as its first
 * process and, when main_fn returns, shuts the runtime down as weft_stop
 * does, waiting for every other process to finish (their blocking calls
 * fail with -ECANCELED). Stores main_fn's result in *result (may be NULL).
 * Main's pid stays valid until then (other processes may join it; it cannot
 * be detached). cfg may be NULL for the defaults.
 * Deadlock: when no process can ever run again (every process is blocked on
 * channels or joins, no deadline or sleep is pending, no outside thread is
 * inside a weft call and none is attached: weft_thread_attach), weft_run
 * writes a report to standard error naming
 * each blocked process, what it waits on, where it was spawned and the cycle
 * of waits if there is one, cancels every process as weft_stop does and
 * returns -EDEADLK. (Embedded runtimes, weft_start, cannot tell: an outside
 * thread may always send later. weft_dump shows the same report.)
 * Returns 0, or: -EDEADLK (see above), -EINVAL [misuse] (main_fn NULL, bad cfg), -E2BIG [misuse]
 * (cfg's stack size above WEFT_STACK_MAX), -EBUSY [misuse] (a runtime is
 * already running), -ENOMEM, -EAGAIN (a worker thread could not start). */
WEFT_API int weft_run(weft_proc_fn main_fn, void *arg, const weft_config *cfg, intptr_t *result);

/* Starts a runtime in the background, for programs that keep their own
 * threads: any thread may then spawn and join processes. cfg may be NULL.
 * Errors: -EINVAL [misuse] (more than WEFT_WORKERS_MAX workers, stack size
 * below WEFT_STACK_MIN, a dump_signal that is not a signal number or is
 * SIGSEGV, SIGKILL or SIGSTOP, an unknown schedule), -E2BIG [misuse] (stack
 * size above WEFT_STACK_MAX),
 * -EBUSY [misuse] (already running, or called from a process), -ENOMEM,
 * -EAGAIN (a worker thread, or the dump signal's thread, could not start). */
WEFT_API int weft_start(const weft_config *cfg);

/* Stops the runtime started by weft_start (one that weft_run owns ends
 * when its main returns: -EPERM [misuse]): from now on spawning fails with
 * -ECANCELED and the blocking calls of every remaining process fail with
 * -ECANCELED; waits until every process has returned, then ends the workers
 * and frees the runtime, including processes that ended and were never
 * joined (their pids become stale). A runtime can be started again
 * afterwards. Must be called from a thread outside the runtime.
 * Errors: -ESHUTDOWN (not running), -EPERM [misuse] (called from a process),
 * -ETIMEDOUT (processes were still running at the deadline; the runtime
 * stays in its shutting-down state and weft_stop may be called again). */
WEFT_API int weft_stop(int64_t deadline);

/* Declare, and end, the attachment of a thread outside the runtime that
 * will talk to its processes (send on their channels, spawn, join). While
 * any thread is attached, weft_run's deadlock detector does not declare a
 * deadlock: the thread may still wake a process. (A thread blocked inside a
 * weft call is counted anyway; attaching covers the time between its calls.)
 * Attachments are counted, not tied to a thread: a thread may attach before
 * it creates the thread that will feed the processes, and that thread
 * detaches when done. Errors: -ESHUTDOWN (no runtime), -EINVAL [misuse]
 * (detach without an attachment). */
WEFT_API int weft_thread_attach(void);
WEFT_API int weft_thread_detach(void);

/* Number of workers of the running runtime, or -ESHUTDOWN. */
WEFT_API int weft_workers(void);

/* ---- Processes ------------------------------------------------------------ */

/* A process id: generation-checked, never 0. */
typedef uint64_t weft_pid;

typedef struct weft_spawn_opts {
    /* Name shown in diagnostics; copied, truncated to WEFT_NAME_MAX-1 bytes.
     * NULL: the function's address is shown instead. */
    const char *name;
    /* Stack size in bytes, WEFT_STACK_MIN..WEFT_STACK_MAX. */
    size_t stack_size;
    /* Worker to start on, or -1 for the scheduler's choice. */
    int worker;
    /* Nonzero: the process never leaves its worker (the one given above, or
     * else the one it was spawned from, or worker 0 when spawned from outside
     * the runtime), so it may use thread-local storage. */
    int pinned;
    /* Nonzero: the process is detached from the start (see weft_detach). */
    int detached;
    /* Nonzero: the new process is linked to the caller (a process or an
     * actor's handler) before it can run, as weft_link would (Erlang's
     * spawn_link). From outside the runtime: -EPERM [misuse]. */
    int link;
    /* Nonzero: the process traps exit signals from the start (see
     * weft_trap_exits). */
    int trap_exits;
    /* Its mailbox holds at most this many messages (0: unbounded). */
    size_t mailbox_capacity;
} weft_spawn_opts;

#define WEFT_NAME_MAX 32

/* Fills *opts with the defaults: no name, the stack size of the running (or
 * last) runtime's configuration, worker -1, not pinned, joinable. */
WEFT_API void weft_spawn_opts_init(weft_spawn_opts *opts);

/* Creates a process that runs fn(arg) and makes it runnable. Works from a
 * process or from any thread while a runtime runs. opts may be NULL for the
 * defaults. On success stores the new pid in *pid (may be NULL only for a
 * detached process) and returns 0. A joinable process's pid stays valid
 * after it returns, until it is joined.
 * Work-first: spawned from a process, the new process runs at once on the
 * same worker and the caller resumes as soon as it blocks or ends (or earlier
 * on another worker, if an idle worker steals the caller). From outside the
 * runtime, or with opts->worker naming another worker, it is queued.
 * The process's stack is taken when it first runs; if none can be had then,
 * it ends without running and joining it gives -ENOMEM.
 * Errors: -EINVAL [misuse] (fn NULL; pid NULL for a joinable process; worker
 * out of range; stack size below WEFT_STACK_MIN), -E2BIG [misuse] (stack
 * size above WEFT_STACK_MAX), -ENOMEM, -ECANCELED (runtime shutting down),
 * -ESHUTDOWN (no runtime). */
WEFT_API int weft_spawn(weft_pid *pid, weft_proc_fn fn, void *arg, const weft_spawn_opts *opts);

/* weft_spawn, recording where it was called from (file:line, a string that
 * must outlive the process) for diagnostics: the weft_spawn macro below
 * passes the caller's position. (weft_spawn)(...) calls the plain function. */
WEFT_API int weft_spawn_at(const char *site, weft_pid *pid, weft_proc_fn fn, void *arg,
                           const weft_spawn_opts *opts);
#define WEFT__STR2(x) #x
#define WEFT__STR(x) WEFT__STR2(x)
#define weft_spawn(pid, fn, arg, opts) \
    weft_spawn_at(__FILE__ ":" WEFT__STR(__LINE__), (pid), (fn), (arg), (opts))

/* Waits until process pid returns (or calls weft_exit) and stores its result
 * in *result (may be NULL); the pid is then released. Only one caller may
 * join a process. From a thread outside the runtime it blocks that thread.
 * Errors: -ESRCH [misuse] (unknown, stale or already joined pid), -EINVAL
 * [misuse] (the process is detached, or another caller is joining it),
 * -EDEADLK [misuse] (a process joining itself), -ETIMEDOUT (deadline passed;
 * the process can still be joined later), -ECANCELED (runtime shutting
 * down), -ENOMEM (the process never ran for want of a stack; the pid is
 * released; or no memory for the deadline's timer), -ESHUTDOWN. */
WEFT_API int weft_join(weft_pid pid, intptr_t *result, int64_t deadline);

/* Gives up the right to join pid: its resources are released as soon as it
 * returns, and its pid becomes stale then.
 * Errors: -ESRCH [misuse] (unknown, stale or joined pid), -EINVAL [misuse]
 * (already detached, being joined, or weft_run's main process, which
 * weft_run joins), -ESHUTDOWN. */
WEFT_API int weft_detach(weft_pid pid);

/* The calling process's pid, or 0 when called from outside any process. */
WEFT_API weft_pid weft_self(void);

/* Lets other runnable processes run. From a thread outside the runtime it
 * yields the OS thread and returns 0. From a process returns 0, or
 * -ECANCELED when the runtime is shutting down. */
WEFT_API int weft_yield(void);

/* Blocks the calling process (or thread) until the deadline. Returns 0 once
 * the deadline has passed, -ECANCELED (runtime shutting down) or -ENOMEM (no
 * memory for the timer). A thread outside the runtime may call it with or
 * without a runtime running; while one runs, its shutdown cancels the sleep
 * too. */
WEFT_API int weft_sleep(int64_t deadline);

/* Ends the calling process with the given result, as if its function had
 * returned it. Does not return when called from a process; from outside
 * returns -EPERM [misuse]. */
WEFT_API int weft_exit(intptr_t result);

/* Copies pid's name into buf (always NUL-terminated, truncated to len).
 * Returns the name's full length, or -ESRCH [misuse] (unknown or stale pid),
 * -EINVAL [misuse] (buf NULL or len 0), -ESHUTDOWN (no runtime). */
WEFT_API int weft_proc_name(weft_pid pid, char *buf, size_t len);

/* Index (0..workers-1) of the worker running the calling process, or -EPERM
 * [misuse] when called from outside any process. */
WEFT_API int weft_worker_id(void);

/* ---- Channels --------------------------------------------------------------- */

/* A channel handle: generation-checked, never 0. A stale, released or forged
 * handle gives -EBADF, never a crash. */
typedef uint64_t weft_chan;

/* Largest element size, and largest buffer (capacity times element size). */
#define WEFT_CHAN_ELEM_MAX ((size_t)64 * 1024)
#define WEFT_CHAN_BUFFER_MAX ((size_t)1 << 30)

/* Creates a channel of elements of elem_size bytes that buffers up to
 * capacity of them; capacity 0 makes a rendezvous channel, where a send
 * completes only when a receiver takes the element. Values are copied in
 * and out; to move large data, send pointers and document that the receiver
 * owns what it receives. The caller holds one reference (see
 * weft_chan_release). Works from processes and outside threads.
 * Errors: -EINVAL [misuse] (ch NULL, elem_size 0 or above
 * WEFT_CHAN_ELEM_MAX), -E2BIG [misuse] (capacity * elem_size above
 * WEFT_CHAN_BUFFER_MAX), -ENOMEM, -ECANCELED, -ESHUTDOWN. */
WEFT_API int weft_chan_make(weft_chan *ch, size_t elem_size, size_t capacity);

/* Sends the elem_size bytes at elem: into the buffer if it has room, or to a
 * waiting receiver, or else waits until the deadline for either. Senders
 * that wait are served in order.
 * Errors: -EPIPE (the channel is closed, before or while waiting; the
 * element was not sent), -ETIMEDOUT (deadline passed; not sent),
 * -EBADF (bad handle, or the channel was destroyed while waiting),
 * -EMSGSIZE [misuse] (size is not the channel's element size), -EINVAL
 * [misuse] (elem NULL), -ECANCELED, -ENOMEM (no memory for the deadline's
 * timer), -ESHUTDOWN. */
WEFT_API int weft_chan_send(weft_chan ch, const void *elem, size_t size, int64_t deadline);

/* Receives one element into elem: the oldest buffered one, or one from a
 * waiting sender, or else waits until the deadline for one. A closed channel
 * still hands out what it buffered; once empty, receives fail with -EPIPE.
 * Errors: as weft_chan_send, with -EPIPE meaning closed and drained. */
WEFT_API int weft_chan_recv(weft_chan ch, void *elem, size_t size, int64_t deadline);

/* Closes the channel: later sends fail with -EPIPE; receivers drain the
 * buffer, then get -EPIPE; waiting senders and receivers wake with -EPIPE.
 * Closing does not release the caller's reference.
 * Errors: -EPIPE [misuse] (already closed), -EBADF [misuse], -ESHUTDOWN. */
WEFT_API int weft_chan_close(weft_chan ch);

/* Takes one more reference on the channel, for a process that will release
 * it on its own. Errors: -EBADF [misuse], -EOVERFLOW (16,711,679 references,
 * the most a channel can have, are held), -ESHUTDOWN. */
WEFT_API int weft_chan_retain(weft_chan ch);

/* Drops one reference. With the last one the channel is destroyed: its
 * handle becomes stale (-EBADF), buffered elements are dropped and waiting
 * senders and receivers wake with -EBADF. A channel still used by other
 * processes is therefore safe to release as long as each holds its own
 * reference (weft_chan_retain). The runtime's stop destroys every channel.
 * Errors: -EBADF [misuse] (stale handle, or no reference left), -ESHUTDOWN. */
WEFT_API int weft_chan_release(weft_chan ch);

/* Elements buffered now (a snapshot), or -EBADF, -ESHUTDOWN. */
WEFT_API int weft_chan_len(weft_chan ch);

/* The channel's capacity, or -EBADF, -ESHUTDOWN. */
WEFT_API int weft_chan_cap(weft_chan ch);

/* ---- Select ------------------------------------------------------------------- */

/* Kinds of select cases. Later layers add kinds (the mailbox, timers, file
 * descriptors, process exits) to the same select. */
enum {
    WEFT_CASE_SEND = 1, /* send *buf (size bytes) on channel handle */
    WEFT_CASE_RECV = 2, /* receive into buf (size bytes) from channel handle */
    WEFT_CASE_MSG = 3,  /* receive from the caller's mailbox into buf, a
                           weft_msg (size: sizeof(weft_msg)); handle: a
                           weft_match * cast to uint64_t, or 0 for any */
    WEFT_CASE_DVAR = 4, /* read dataflow variable handle into buf once it is
                           bound (result: 0, or the error it was failed with) */
    WEFT_CASE_STREAM = 5, /* read the next value of stream reader handle (or
                           of a QUEUE stream) into buf (result: 0, or -EPIPE
                           once the stream is closed and read to its end) */
    WEFT_CASE_FD = 6      /* file descriptor handle is ready for the events in
                           size (WEFT_FD_READ, WEFT_FD_WRITE); buf unused
                           (result: the ready events, as weft_fd_wait) */
};

typedef struct weft_case {
    int kind;          /* WEFT_CASE_* */
    int disabled;      /* guard: nonzero leaves the case out of this select */
    uint64_t handle;   /* the channel */
    void *buf;         /* send: the element; receive: where it goes */
    size_t size;       /* element size */
    int result;        /* out, for the case that fired: 0, -EPIPE (closed) or
                        * -EBADF (the channel was destroyed while waiting) */
} weft_case;

/* Case initialisers: weft_case cases[] = {WEFT_RECV(in, &v), WEFT_SEND(out, &w)}; */
#define WEFT_SEND(ch, ptr) \
    ((weft_case){.kind = WEFT_CASE_SEND, .handle = (ch), .buf = (void *)(ptr), .size = sizeof *(ptr)})
#define WEFT_RECV(ch, ptr) \
    ((weft_case){.kind = WEFT_CASE_RECV, .handle = (ch), .buf = (ptr), .size = sizeof *(ptr)})
/* match: a const weft_match * (NULL: any message). */
#define WEFT_MSG_CASE(msgptr, match)                                                   \
    ((weft_case){.kind = WEFT_CASE_MSG, .handle = (uint64_t)(uintptr_t)(match),        \
                 .buf = (msgptr), .size = sizeof(weft_msg)})
#define WEFT_DVAR_CASE(dv, ptr) \
    ((weft_case){.kind = WEFT_CASE_DVAR, .handle = (dv), .buf = (ptr), .size = sizeof *(ptr)})
#define WEFT_STREAM_CASE(reader, ptr) \
    ((weft_case){.kind = WEFT_CASE_STREAM, .handle = (reader), .buf = (ptr), .size = sizeof *(ptr)})
#define WEFT_FD_CASE(fd, events) \
    ((weft_case){.kind = WEFT_CASE_FD, .handle = (uint64_t)(int64_t)(fd), .size = (size_t)(events)})

/* Policies of weft_select. */
enum {
    WEFT_SELECT_FAIR = 0,    /* uniformly random among the ready cases */
    WEFT_SELECT_PRIORITY = 1 /* the first ready case in array order (occam's PRI ALT) */
};

/* Most cases in one select. */
#define WEFT_SELECT_MAX 1024

/* Waits until one of the n cases can complete, completes exactly that one
 * and returns its index; its result field says how (a send or receive on a
 * closed channel completes with -EPIPE). Disabled cases are ignored; with
 * every case disabled it just waits for the deadline. A deadline of 0 makes
 * it non-blocking. A process may send and receive on the same channel in
 * one select; it never matches itself.
 * Errors: -ETIMEDOUT (no case completed by the deadline), -EINVAL [misuse]
 * (cases NULL, n 0 or above WEFT_SELECT_MAX, an unknown kind or policy, a
 * NULL buf), -EBADF (an enabled case names a bad channel, or a
 * descriptor that is not open; one closed through weft while the select
 * waits completes its case with -EBADF instead), -EMSGSIZE
 * [misuse] (a size differs from its channel's element size), -ECANCELED,
 * -ENOMEM, -ESHUTDOWN. */
WEFT_API int weft_select(weft_case *cases, size_t n, int policy, int64_t deadline);

/* ---- Mailboxes ------------------------------------------------------------------ */

/* Every process and every actor has a mailbox, addressed by its pid. A
 * message is a tag, a payload (copied by value, or a weft buffer moved
 * whole) and the sender's pid. Sends to one mailbox from one sender arrive
 * in the order they were sent. Mailboxes are unbounded unless given a
 * capacity (weft_spawn_opts, weft_actor_opts, weft_mailbox_bound): then a
 * send to a full mailbox waits until its deadline (backpressure).
 *
 * Tags: user messages have tags >= 1. Negative tags are weft's own messages:
 * WEFT_TAG_EXIT (an exit signal trapped by weft_trap_exits) and
 * WEFT_TAG_DOWN (a monitored process or actor ended). Tag 0 in a
 * weft_match means any tag. */
enum {
    WEFT_TAG_EXIT = -1, /* from: the pid that ended or signalled; reason: why */
    WEFT_TAG_DOWN = -2  /* from: the monitored pid; ref: the monitor; reason: why */
};

/* Largest payload of a message (copied or moved). */
#define WEFT_MSG_MAX ((size_t)64 * 1024 * 1024)

/* A received message. The receiver owns it and gives it back with
 * weft_msg_free (or keeps its payload with weft_msg_take). */
typedef struct weft_msg {
    int tag;
    weft_pid from;     /* the sender (0: a thread outside the runtime) */
    uint64_t ref;      /* weft_call's request and reply, DOWN's monitor; else 0 */
    intptr_t reason;   /* EXIT and DOWN: the exit reason; else 0 */
    void *data;        /* the payload (NULL when size is 0), 16-byte aligned
                        * when the allocation hook's blocks are (malloc's are) */
    size_t size;
    void *block_;      /* weft's own */
} weft_msg;

/* Which messages a receive takes: each field set narrows it (0: any).
 * A zero-initialized weft_match takes the oldest message. The predicate
 * runs in the receiver, on each candidate once per receive, and must not
 * call weft; it returns nonzero to take the message. */
typedef struct weft_match {
    int tag;
    weft_pid from;
    uint64_t ref;
    int (*pred)(const weft_msg *msg, void *arg);
    void *arg;
} weft_match;

/* Sends a message of the size bytes at data (NULL when size is 0) to pid's
 * mailbox, copying them. Never waits unless pid's mailbox is bounded and
 * full: then waits until the deadline for room. A pid whose process or
 * actor has ended (a stale pid) takes the message and drops it: the send
 * succeeds, as in Erlang. Works from processes, actors and outside threads.
 * Errors: -EINVAL [misuse] (tag < 1, data NULL with size > 0),
 * -EMSGSIZE [misuse] (size above WEFT_MSG_MAX), -ESRCH [misuse] (pid was
 * never a pid of this runtime), -EAGAIN (bounded mailbox full and deadline
 * 0), -ETIMEDOUT (still full at a later deadline), -EPERM [misuse] (waiting
 * from an actor's handler: pass deadline 0 there), -ENOMEM, -ECANCELED,
 * -ESHUTDOWN. On an error the message was not sent. */
WEFT_API int weft_send(weft_pid pid, int tag, const void *data, size_t size, int64_t deadline);

/* Zero-copy messages. A weft buffer holds up to WEFT_MSG_MAX bytes, 16-byte
 * aligned; weft_buf_alloc returns NULL when out of memory or for a size
 * above WEFT_MSG_MAX. weft_send_buf moves buf whole into pid's mailbox:
 * on success the caller gives it up (it must not touch it again; to a dead
 * pid it is freed); on an error the caller still owns it. Errors as
 * weft_send, and -EINVAL [misuse] for a NULL buf. */
WEFT_API void *weft_buf_alloc(size_t size);
WEFT_API void weft_buf_free(void *buf);
WEFT_API size_t weft_buf_size(const void *buf);
WEFT_API int weft_send_buf(weft_pid pid, int tag, void *buf, int64_t deadline);

/* Receives into *msg the oldest message of the caller's mailbox that match
 * takes (NULL: any), waiting until the deadline for one. Selective receive
 * leaves the others in place, in order; a receive looks at each message at
 * most once (arrivals while it waits are checked alone), and a repeated
 * receive with the same match resumes where the last one stopped, so that
 * a large mailbox does not make it quadratic.
 * Errors: -ETIMEDOUT, -EINVAL [misuse] (msg NULL), -EPERM [misuse] (called
 * from an outside thread, which has no mailbox, or from an actor's handler,
 * which receives through its handler), -ECANCELED, -ENOMEM. */
WEFT_API int weft_recv(weft_msg *msg, const weft_match *match, int64_t deadline);

/* Frees a received message (msg's fields are cleared). NULL and a cleared
 * msg are ignored. */
WEFT_API void weft_msg_free(weft_msg *msg);

/* Takes a received message's payload as a weft buffer that the caller now
 * owns (to weft_buf_free, or to send on with weft_send_buf), without a copy,
 * and frees the rest of the message. NULL when the message has no payload. */
WEFT_API void *weft_msg_take(weft_msg *msg);

/* Bounds the caller's mailbox to capacity messages (0: unbounded). Messages
 * already queued stay. Errors: -EPERM [misuse] (not a process or actor),
 * -ENOMEM. */
WEFT_API int weft_mailbox_bound(size_t capacity);

/* Messages in the caller's mailbox now, or -EPERM [misuse] (not a process
 * or actor). */
WEFT_API long weft_mailbox_len(void);

/* ---- Request and reply ---------------------------------------------------------- */

/* Sends a request (tag, data, size as weft_send) carrying a new unique
 * reference, and waits until the deadline for the reply to it, stored in
 * *reply (to weft_msg_free). The callee answers with weft_reply. A reply
 * that arrives after the call gave up is dropped, never delivered later.
 * Errors: -ESRCH (pid is not alive, or ended before replying), -ETIMEDOUT,
 * -EPERM [misuse] (from an outside thread or an actor's handler: actors
 * send requests with weft_send and get the answer as a message),
 * -EDEADLK [misuse] (pid is the caller's own), the errors of weft_send,
 * -ECANCELED, -ENOMEM. */
WEFT_API int weft_call(weft_pid pid, int tag, const void *data, size_t size, weft_msg *reply,
                       int64_t deadline);

/* Answers request (a message received from weft_call) with a message to
 * its sender carrying the request's reference. A reply to a caller that
 * has given up is dropped. Errors: -EINVAL [misuse] (request NULL or not
 * from weft_call), and those of weft_send (it never waits). */
WEFT_API int weft_reply(const weft_msg *request, int tag, const void *data, size_t size);

/* ---- Actors ---------------------------------------------------------------------- */

/* A stackless actor: fn(state, msg) runs once per message, in order, on a
 * worker's own stack; the actor has no stack of its own (at most 128 bytes
 * while idle). It has a pid like a process: the same sends, calls, links,
 * monitors and registry. msg is freed when fn returns unless fn takes its
 * payload (weft_msg_take). fn must not wait: a call that would block
 * (receive, call, join, sleep, a channel op with a deadline, a send to a full
 * mailbox with a deadline) fails with -EPERM [misuse] instead. A handler that
 * must wait sends itself a message, or spawns a process to do it. Inside fn,
 * weft_self() is the actor's pid and weft_exit(reason) ends the actor when
 * fn returns (it returns 0 there). */
typedef void (*weft_actor_fn)(void *state, weft_msg *msg);

typedef struct weft_actor_opts {
    /* Name for diagnostics (copied, truncated to WEFT_NAME_MAX-1), or NULL. */
    const char *name;
    /* Called once when the actor ends, with its exit reason, on the worker
     * that ran it last (it must not wait): frees the state. Actors still
     * alive at weft_stop get it from the stopping thread, with
     * WEFT_EXIT_SHUTDOWN. NULL: none. */
    void (*on_exit)(void *state, intptr_t reason);
    /* Nonzero: linked to the caller before it can run (see weft_link). */
    int link;
    /* Nonzero: it traps exit signals (they arrive as WEFT_TAG_EXIT messages). */
    int trap_exits;
    /* Its mailbox holds at most this many messages (0: unbounded). */
    size_t mailbox_capacity;
} weft_actor_opts;

/* Fills *opts with the defaults: no name, no on_exit, not linked, no
 * trapping, unbounded. */
WEFT_API void weft_actor_opts_init(weft_actor_opts *opts);

/* Creates an actor with handler fn and state (owned by the actor from now
 * on: on_exit gets it back), and stores its pid in *pid (may be NULL). It
 * runs when messages arrive. opts may be NULL for the defaults.
 * Errors: -EINVAL [misuse] (fn NULL), -EPERM [misuse] (link from an outside
 * thread), -ENOMEM, -ECANCELED, -ESHUTDOWN. */
WEFT_API int weft_actor_spawn(weft_pid *pid, weft_actor_fn fn, void *state,
                              const weft_actor_opts *opts);

/* ---- Links, monitors, exit signals ---------------------------------------------- */

/* Exit reasons. A process's exit reason is its result (its function's
 * return value or weft_exit's argument); an actor's is weft_exit's argument
 * (or WEFT_EXIT_NORMAL). WEFT_EXIT_NORMAL (0) is a normal exit; any other
 * value is abnormal. The values below are weft's own. */
#define WEFT_EXIT_NORMAL ((intptr_t)0)
#define WEFT_EXIT_KILL ((intptr_t)INTPTR_MIN)           /* weft_kill: not trappable */
#define WEFT_EXIT_KILLED ((intptr_t)INTPTR_MIN + 1)     /* ended by WEFT_EXIT_KILL */
#define WEFT_EXIT_NOPROC ((intptr_t)INTPTR_MIN + 2)     /* DOWN of a pid already dead */
#define WEFT_EXIT_SHUTDOWN ((intptr_t)INTPTR_MIN + 3)   /* asked to stop (supervisors) */

/* Links the caller (a process or an actor's handler) with pid, both ways.
 * When either ends, the other receives an exit signal with the reason: if
 * it traps exits, a WEFT_TAG_EXIT message; else, for an abnormal reason, it
 * ends too with the same reason (a process at its current or next blocking
 * weft call, whose wait fails with -ECANCELED first; an actor when it comes
 * to the signal, which keeps its place after the messages queued before it).
 * Linking twice is one link.
 * Errors: -ESRCH (pid has ended; [misuse] if it never was a pid of this
 * runtime), -EINVAL [misuse] (pid is the caller's own), -EPERM [misuse]
 * (not a process or actor), -ENOMEM. */
WEFT_API int weft_link(weft_pid pid);

/* Removes the link with pid (none: 0). Errors: -EPERM [misuse] (not a
 * process or actor). */
WEFT_API int weft_unlink(weft_pid pid);

/* Sends pid an exit signal with reason, as if a linked process ended with
 * it (Erlang's exit/2): WEFT_EXIT_KILL ends pid even if it traps exits
 * (its reason becomes WEFT_EXIT_KILLED). A pid that has ended takes the
 * signal and ignores it. Works from outside threads (from: 0).
 * Errors: -ESRCH [misuse] (never a pid of this runtime), -ENOMEM, -ESHUTDOWN. */
WEFT_API int weft_kill(weft_pid pid, intptr_t reason);

/* Sets whether the caller traps exit signals (nonzero: they arrive as
 * WEFT_TAG_EXIT messages). Returns the previous setting (0 or 1), or
 * -EPERM [misuse] (not a process or actor). */
WEFT_API int weft_trap_exits(int on);

/* Monitors pid: when it ends, the caller receives one WEFT_TAG_DOWN message
 * with its reason and *ref; if pid is not alive, at once, with reason
 * WEFT_EXIT_NOPROC. Monitoring is one-way and can be stacked.
 * Errors: -EINVAL [misuse] (ref NULL), -ESRCH [misuse] (never a pid of this
 * runtime), -EPERM [misuse] (not a process or actor), -ENOMEM. */
WEFT_API int weft_monitor(weft_pid pid, uint64_t *ref);

/* Ends the monitor ref; a DOWN message of it already in the caller's
 * mailbox is removed. Errors: -ENOENT [misuse] (not one of the caller's
 * monitors), -EPERM [misuse] (not a process or actor). */
WEFT_API int weft_demonitor(uint64_t ref);

/* Makes pid the owner of channel ch: when pid ends, ch is closed (as
 * weft_chan_close), so that receivers learn that their producer is gone.
 * Errors: -EBADF [misuse] (bad channel), -ESRCH (pid has ended; [misuse]
 * if it never was a pid of this runtime), -ENOMEM, -ESHUTDOWN. */
WEFT_API int weft_chan_set_owner(weft_chan ch, weft_pid pid);

/* ---- Registry ---------------------------------------------------------------------- */

/* Names pid (a process or an actor) until it ends or the name is
 * unregistered. name: 1..WEFT_NAME_MAX-1 bytes, copied.
 * Errors: -EEXIST (the name is taken), -EBUSY (pid already has a name),
 * -ESRCH (pid has ended; [misuse] if it never was a pid of this runtime),
 * -EINVAL [misuse] (name NULL, empty or too long), -ENOMEM, -ESHUTDOWN. */
WEFT_API int weft_register(const char *name, weft_pid pid);
/* Errors: -ENOENT (no such name), -EINVAL [misuse], -ESHUTDOWN. */
WEFT_API int weft_unregister(const char *name);
/* Stores the pid registered under name in *pid. Errors: -ENOENT, -EINVAL
 * [misuse] (name or pid NULL), -ESHUTDOWN. */
WEFT_API int weft_whereis(const char *name, weft_pid *pid);

/* ---- Supervisors ------------------------------------------------------------------ */

/* A supervisor is a process that starts children, links to them, traps
 * their exits and restarts them by its strategy:
 *  - ONE_FOR_ONE: only the child that ended is restarted;
 *  - ONE_FOR_ALL: every other child is stopped, then all are restarted;
 *  - REST_FOR_ONE: the children started after it are stopped, then it and
 *    they are restarted, in order.
 * Restart kinds: PERMANENT children are always restarted, TRANSIENT ones
 * only after an abnormal exit (not NORMAL or SHUTDOWN), TEMPORARY never.
 * Intensity: more than max_restarts restarts within period ns make the
 * supervisor stop its children and end with reason WEFT_EXIT_SHUTDOWN
 * (its own supervisor, if any, then acts). Consecutive restarts of one
 * child wait backoff_min ns, doubling up to backoff_max, with +-25% jitter
 * (0: restart at once). Stopping a child (its supervisor stops, or the
 * strategy demands it): an exit signal WEFT_EXIT_SHUTDOWN, then WEFT_EXIT_KILL
 * if it has not ended after the child's shutdown ns (WEFT_FOREVER: wait).
 * Children stop in the reverse of their start order. Requests sent to the
 * supervisor while it restarts children stay in its mailbox and are
 * answered. */
enum { WEFT_ONE_FOR_ONE = 1, WEFT_ONE_FOR_ALL = 2, WEFT_REST_FOR_ONE = 3 };
enum { WEFT_PERMANENT = 1, WEFT_TRANSIENT = 2, WEFT_TEMPORARY = 3 };

typedef struct weft_child_spec {
    const char *name;  /* required, unique within the supervisor */
    /* How to start the child, one of:
     *  - start(arg, &pid): called in the supervisor, must spawn the child
     *    linked to the caller (opts.link = 1) and store its pid; returns 0
     *    or a negative code (counted as a failed start);
     *  - fn and arg: a process running fn(arg), spawned linked. */
    int (*start)(void *arg, weft_pid *pid);
    weft_proc_fn fn;
    void *arg;
    int restart;       /* WEFT_PERMANENT (0 means PERMANENT), TRANSIENT, TEMPORARY */
    int64_t shutdown;  /* ns granted to stop before a kill; 0: kill at once; WEFT_FOREVER */
} weft_child_spec;

typedef struct weft_sup_spec {
    const char *name;          /* diagnostics, or NULL */
    int strategy;              /* WEFT_ONE_FOR_ONE, ... */
    unsigned max_restarts;     /* intensity: restarts allowed in period (0: none) */
    int64_t period;            /* ns */
    int64_t backoff_min, backoff_max; /* ns between restarts of one child */
    const weft_child_spec *children;  /* copied by weft_sup_start */
    size_t nchildren;
} weft_sup_spec;

/* Starts a supervisor process with spec's children, started in order (if
 * one fails to start, those started are stopped and the error returned),
 * and stores its pid; it waits for the starts, so it is called from a
 * process or an outside thread. With link nonzero (from a process), the
 * supervisor is linked to the caller. Errors: -EINVAL [misuse] (spec or pid
 * NULL, unknown strategy or restart kind, zero children, a child without a
 * name or way to start, duplicate names, period <= 0 with max_restarts > 0,
 * a negative backoff), -EPERM [misuse] (from an actor's handler, or link
 * from an outside thread), -ESRCH (the supervisor was killed while it
 * started), the error of a child's start, -ENOMEM, -ECANCELED, -ESHUTDOWN. */
WEFT_API int weft_sup_start(weft_pid *pid, const weft_sup_spec *spec, int link);

/* A child spec's start for a nested supervisor: arg is a weft_sup_spec. */
WEFT_API int weft_sup_start_child(void *spec, weft_pid *pid);

/* Stops the supervisor: its children in reverse start order, each granted
 * its shutdown time, then the supervisor, which ends with WEFT_EXIT_SHUTDOWN.
 * Waits until it has ended or the deadline. Errors: -ESRCH (not a
 * supervisor that is alive), -ETIMEDOUT, -EPERM [misuse] (from an actor's
 * handler), -ECANCELED, -ESHUTDOWN. */
WEFT_API int weft_sup_stop(weft_pid sup, int64_t deadline);

/* The pid of sup's child named name now (0 while it is being restarted,
 * -ENOENT if no child has that name), asked of the supervisor by a call.
 * Errors: those of weft_call, -ENOENT, -EINVAL [misuse] (name or pid NULL). */
WEFT_API int weft_sup_which(weft_pid sup, const char *name, weft_pid *pid, int64_t deadline);

/* Restarts counted so far by sup (for tests and monitoring), or an error of
 * weft_call. */
WEFT_API long weft_sup_restarts(weft_pid sup, int64_t deadline);

/* ---- Dataflow variables ------------------------------------------------------------ */

/* A dataflow variable: a single-assignment value of a fixed size (Oz's
 * logic variables, GPars' DataflowVariable). It starts unbound; the first
 * bind sets it for good and wakes every reader; readers of an unbound
 * variable wait until it is bound or their deadline. It can instead be
 * failed with an error, which every reader then gets: a producer that
 * cannot make the value tells its consumers why. Readiness is a select case
 * (WEFT_DVAR_CASE). Handles are counted references, as channels are. */
typedef uint64_t weft_dvar;

/* Largest value of a dataflow variable (and of a stream element). */
#define WEFT_DVAR_MAX WEFT_CHAN_ELEM_MAX

/* Creates an unbound variable of size-byte values; the caller holds one
 * reference. Works from processes and outside threads. Errors: -EINVAL
 * [misuse] (dv NULL, size 0 or above WEFT_DVAR_MAX), -ENOMEM, -ECANCELED,
 * -ESHUTDOWN. */
WEFT_API int weft_dvar_make(weft_dvar *dv, size_t size);

/* Binds dv to the size bytes at value (copied), once and for all, and wakes
 * its readers. Never waits. Errors: -EALREADY (dv is already bound or
 * failed: the value stays the first one), -EMSGSIZE [misuse] (size is not
 * dv's), -EINVAL [misuse] (value NULL), -EBADF [misuse] (bad handle),
 * -ESHUTDOWN. */
WEFT_API int weft_dvar_bind(weft_dvar dv, const void *value, size_t size);

/* Binds dv to the error err (a negative code): its readers get err instead
 * of a value. Errors: -EALREADY, -EINVAL [misuse] (err >= 0), -EBADF
 * [misuse], -ESHUTDOWN. */
WEFT_API int weft_dvar_fail(weft_dvar dv, int err);

/* Copies dv's value into value once it is bound, waiting until the
 * deadline for that (deadline 0: only if it is bound now). Returns 0, or
 * the error dv was failed with, or: -ETIMEDOUT (still unbound at the
 * deadline), -EMSGSIZE [misuse] (size is not dv's), -EINVAL [misuse]
 * (value NULL), -EBADF (bad handle, or dv destroyed while waiting),
 * -ECANCELED, -ENOMEM (no memory for the deadline's timer), -ESHUTDOWN.
 * Choose failure codes that the caller can tell from these. */
WEFT_API int weft_dvar_get(weft_dvar dv, void *value, size_t size, int64_t deadline);

/* 1 if dv is bound (to a value or an error), 0 if not, or -EBADF,
 * -ESHUTDOWN. */
WEFT_API int weft_dvar_bound(weft_dvar dv);

/* References, as weft_chan_retain and weft_chan_release: the last release
 * destroys dv (readers still waiting wake with -EBADF). */
WEFT_API int weft_dvar_retain(weft_dvar dv);
WEFT_API int weft_dvar_release(weft_dvar dv);

/* ---- Streams ------------------------------------------------------------------------ */

/* A stream is a dataflow queue of fixed-size values, written in order and
 * closed once at the end. Its values are read through readers:
 *  - WEFT_STREAM_BROADCAST: every reader sees every value written after the
 *    reader was made, in order (GPars' DataflowBroadcast, Oz's streams): make
 *    the readers before the first write for them to see everything;
 *  - WEFT_STREAM_QUEUE: each value goes to exactly one reader (a work queue,
 *    GPars' DataflowQueue); the stream's own handle reads as a reader too.
 * Capacity 0 makes the stream unbounded: writes never wait. Otherwise a
 * write waits while capacity values are unread (BROADCAST: by the slowest
 * reader), which pushes back on a fast writer. Once closed and read to its
 * end, a reader gets -EPIPE. A stream's values are also a select case
 * (WEFT_STREAM_CASE). Stream and reader handles are counted references;
 * releasing a reader stops it from holding writers back. */
typedef uint64_t weft_stream;

enum { WEFT_STREAM_BROADCAST = 0, WEFT_STREAM_QUEUE = 1 };

/* Creates a stream of elem_size-byte values; the caller holds one reference.
 * Errors: -EINVAL [misuse] (s NULL, elem_size 0 or above WEFT_DVAR_MAX, an
 * unknown mode), -E2BIG [misuse] (capacity * elem_size above
 * WEFT_CHAN_BUFFER_MAX), -ENOMEM, -ECANCELED, -ESHUTDOWN. */
WEFT_API int weft_stream_make(weft_stream *s, size_t elem_size, size_t capacity, int mode);

/* Makes a reader of s, which holds a reference on s until it is released.
 * Errors: -EBADF [misuse] (s is not a stream), -ENOMEM, -ESHUTDOWN. */
WEFT_API int weft_stream_reader(weft_stream s, weft_stream *reader);

/* Appends the size bytes at value, waiting until the deadline for room in
 * a bounded stream. A BROADCAST stream without readers drops the value (no
 * one can ever read it) and returns 0. Errors: -EPIPE (closed; not
 * written), -ETIMEDOUT (still full at the deadline; not written),
 * -EMSGSIZE [misuse], -EINVAL [misuse] (value NULL), -EBADF (bad handle or
 * a reader's handle; [misuse] unless destroyed while waiting), -ECANCELED,
 * -ENOMEM (an unbounded stream could not grow; or no timer), -ESHUTDOWN. */
WEFT_API int weft_stream_write(weft_stream s, const void *value, size_t size, int64_t deadline);

/* Reads the next value of reader (a reader, or a QUEUE stream) into value,
 * waiting until the deadline for one. Errors: -EPIPE (closed, and every
 * value written has been read), -ETIMEDOUT, -EMSGSIZE [misuse], -EINVAL
 * [misuse] (value NULL, or a BROADCAST stream's own handle: read through a
 * reader), -EBADF, -ECANCELED, -ENOMEM, -ESHUTDOWN. */
WEFT_API int weft_stream_read(weft_stream reader, void *value, size_t size, int64_t deadline);

/* Closes s: writes fail with -EPIPE from now on, readers read what was
 * written, then get -EPIPE; waiting writers wake with -EPIPE. Errors:
 * -EPIPE [misuse] (already closed), -EBADF [misuse], -ESHUTDOWN. */
WEFT_API int weft_stream_close(weft_stream s);

/* Values written and not yet read by reader (a snapshot), or -EBADF. */
WEFT_API long weft_stream_len(weft_stream reader);

/* References of streams and readers, as channels'. The last release of a
 * stream destroys it once its readers are released too. */
WEFT_API int weft_stream_retain(weft_stream s);
WEFT_API int weft_stream_release(weft_stream s);

/* ---- Dataflow graphs ------------------------------------------------------------- */

/* A graph of nodes (operators) joined by edges, built, checked, then run
 * once. Each edge is a bounded channel from one node's output port to
 * another's input port; a node fires when its inputs hold what its kind
 * needs, so the readiness of data drives the run, and a slow node pushes
 * back on its producers through the full edges before it. Each node runs
 * as one or more processes named after it (weft_dump and the deadlock
 * report show them). The end of the data flows through the graph: a source
 * that ends closes its outputs, and a node whose inputs have ended finishes
 * what it holds, closes its outputs and ends. The run ends when every node
 * has ended, or at the first error: a node function's error, a cancel or
 * the run's deadline cancels the whole graph. Cancelling stops every node
 * at its next firing or wait. On a path where each firing takes one value
 * and emits one, every value a source emitted is consumed by a sink,
 * skipped or dropped, exactly once (weft_graph_get_stats).
 * A node of one process and at most one input moves its values in batches
 * (up to 64 per channel operation), but sends what it holds before any call
 * that may block, its function's included: batching never holds a value
 * back while the node waits. */
typedef uint64_t weft_graph;

/* A node: its index in the graph, from 0 in the order of weft_graph_add. */
typedef int weft_node;

/* Most input (and output) ports of one node, and most nodes in a graph. */
#define WEFT_NODE_PORTS_MAX 16
#define WEFT_GRAPH_NODES_MAX 4096

enum {
    /* No inputs, 1+ outputs: fn is called again and again; it fills out[]
     * and returns 0 to emit them, or WEFT_NODE_END to end. */
    WEFT_NODE_SOURCE = 1,
    /* 1+ inputs (a join: it fires when every input holds a value), 0+
     * outputs: fn(state, in, out) returns 0 to emit every out[], or
     * WEFT_NODE_SKIP to emit nothing this time. The node ends when any of
     * its inputs has ended (no more whole sets can come). */
    WEFT_NODE_MAP = 2,
    /* A map without outputs, at the end of the flow: weft_graph_wait_node
     * awaits it. */
    WEFT_NODE_SINK = 3,
    /* 1+ inputs, 1 output: fires on any input that holds a value. With fn,
     * in[] holds only that input's value (the others are NULL); without,
     * the value goes out as it is (every size must be the output's). Ends
     * when all its inputs have ended. */
    WEFT_NODE_MERGE = 4,
    /* 1 input, 1 output of the same size: fn(state, in, NULL) returns 0 to
     * pass the value on, WEFT_NODE_SKIP to drop it. */
    WEFT_NODE_FILTER = 5,
    /* 1 input, 1+ outputs of its size: every output gets a copy. No fn. */
    WEFT_NODE_BROADCAST = 6,
    /* 1 input, 1+ outputs of its size: fn(state, in, NULL) returns the
     * index of the output the value goes to (without fn: each in turn). */
    WEFT_NODE_SPLIT = 7,
    /* User-defined: body(state, io) runs as a process and moves values
     * itself with weft_node_recv, weft_node_recv_any and weft_node_send;
     * its outputs close when it returns. */
    WEFT_NODE_CUSTOM = 8
};

/* What node functions return besides 0 and negative errors. */
#define WEFT_NODE_END 1
#define WEFT_NODE_SKIP 2

/* A node function. in[i] points at input i's value (read-only, valid
 * during the call, 16-byte aligned), out[j] at room for output j's value
 * (16-byte aligned). It runs in a process of the node, so it may block (and
 * must not keep pointers to its arguments). A negative return value is an
 * error that fails the node and cancels the graph; a positive value its
 * kind does not take fails it with -ERANGE. What fn writes to state is seen
 * by the caller of weft_graph_wait or weft_graph_wait_node after it returns. */
typedef int (*weft_node_fn)(void *state, const void *const *in, void *const *out);

/* A custom node's ports, for its body. */
typedef struct weft_node_io weft_node_io;
typedef int (*weft_node_body)(void *state, weft_node_io *io);

typedef struct weft_node_spec {
    const char *name;     /* required: 1..WEFT_NAME_MAX-1 bytes, unique in the graph */
    int kind;             /* WEFT_NODE_* */
    unsigned inputs, outputs;                /* port counts, by kind (above) */
    size_t in_size[WEFT_NODE_PORTS_MAX];     /* element size of each input port */
    size_t out_size[WEFT_NODE_PORTS_MAX];    /* element size of each output port */
    weft_node_fn fn;      /* by kind (above) */
    weft_node_body body;  /* WEFT_NODE_CUSTOM */
    void *state;          /* fn's and body's first argument, shared by their firings */
    /* Firings at once (0 or 1: one at a time). MAP, SINK, FILTER and SPLIT:
     * up to parallel firings run in parallel processes (fn must then be
     * safe to call concurrently); CUSTOM: parallel processes run body. */
    unsigned parallel;
    /* With parallel > 1, MAP, FILTER and SPLIT: nonzero keeps the outputs
     * in the order of the inputs (a reorder buffer of at most 2 * parallel
     * firings); zero lets them out as they finish. */
    int ordered;
    size_t stack_size;    /* of the node's processes (0: the runtime's default) */
} weft_node_spec;

/* Creates an empty graph named name (for diagnostics and DOT: copied,
 * truncated to WEFT_NAME_MAX-1 bytes). The caller holds one reference.
 * Errors: -EINVAL [misuse] (g NULL, name NULL or empty), -ENOMEM,
 * -ESHUTDOWN. */
WEFT_API int weft_graph_make(weft_graph *g, const char *name);

/* Adds a node built from spec (copied) and stores its index in *node (may
 * be NULL). Errors: -EINVAL [misuse] (spec NULL, an unknown kind, port
 * counts or sizes that the kind does not allow, a size of 0 or above
 * WEFT_CHAN_ELEM_MAX, a missing fn or body, parallel for a kind without or
 * above 1024, a stack size outside WEFT_STACK_MIN..WEFT_STACK_MAX), -E2BIG
 * [misuse] (parallel > 1 and the inputs, or the outputs, take more than
 * WEFT_CHAN_ELEM_MAX bytes together, plus 16 per value),
 * -ENAMETOOLONG [misuse] (name of WEFT_NAME_MAX bytes or more), -EEXIST
 * [misuse] (the name is taken in this graph), -EBUSY [misuse] (the graph
 * is running or has run), -E2BIG (WEFT_GRAPH_NODES_MAX nodes already),
 * -EBADF [misuse] (bad graph), -ENOMEM. */
WEFT_API int weft_graph_add(weft_graph g, const weft_node_spec *spec, weft_node *node);

/* Joins output port out_port of node from to input port in_port of node to
 * by an edge that buffers capacity values (0: a rendezvous, where a value
 * passes only when the next node takes it). Errors: -EMSGSIZE [misuse] (the
 * ports' element sizes differ), -EISCONN [misuse] (one of the ports is
 * connected already: fan out through BROADCAST or SPLIT, fan in through
 * MERGE), -EINVAL [misuse] (no such node or port), -E2BIG [misuse]
 * (capacity times the size above WEFT_CHAN_BUFFER_MAX), -EBUSY [misuse],
 * -EBADF [misuse], -ENOMEM. */
WEFT_API int weft_graph_connect(weft_graph g, weft_node from, unsigned out_port, weft_node to,
                                unsigned in_port, size_t capacity);

/* Checks that g can run: it has nodes, every port is connected, every edge
 * joins ports of one size, and every cycle has an edge that buffers. On a
 * problem writes a one-line explanation naming the node and port into why
 * (NUL-terminated, truncated to len; why may be NULL) and returns: -EINVAL
 * (no nodes), -ENOTCONN (a port is not connected), -EMSGSIZE (sizes differ),
 * -EDEADLK (a cycle of rendezvous edges). Also -EBADF [misuse]. */
WEFT_API int weft_graph_validate(weft_graph g, char *why, size_t len);

/* Writes g as a Graphviz DOT digraph into buf (NUL-terminated, truncated to
 * len; buf may be NULL with len 0): a box per node labelled with its name
 * and kind (and parallel, when above 1), an arrow per edge labelled with
 * its ports, element size and capacity. Returns the length of the whole
 * text (as snprintf), or -EBADF [misuse], -ENOMEM. */
WEFT_API int weft_graph_dot(weft_graph g, char *buf, size_t len);

/* Validates g (failing with its codes), then starts its run: the nodes'
 * processes and a coordinator process that ends the run. The run is
 * cancelled with -ETIMEDOUT at deadline (WEFT_FOREVER: no limit; a deadline
 * already past cancels it at once). Returns once every node has started.
 * A node process killed from outside (weft_kill) fails its node with the
 * kill's reason when that is an error code, else with -ECONNABORTED.
 * Errors: those of weft_graph_validate, -EALREADY [misuse] (g has run or is
 * running: a graph runs once), -EPERM [misuse] (from an actor's handler:
 * it waits for the start), -EBADF [misuse], -ENOMEM (what had started has
 * ended again), -ECANCELED, -ESHUTDOWN. */
WEFT_API int weft_graph_run(weft_graph g, int64_t deadline);

/* Waits until the run of g has ended (every process it started has ended),
 * or the deadline. Returns the run's result: 0 when every node ended at the
 * end of its data, else the error that ended it: a node function's error
 * (weft_graph_get_stats names the node), -ECANCELED (weft_graph_cancel), or
 * -ETIMEDOUT (the run's deadline). Errors besides: -EAGAIN (the deadline
 * passed first: the run goes on), -EINVAL [misuse] (g has not been run),
 * -EBADF [misuse], -ECANCELED (the runtime is shutting down), -ENOMEM. */
WEFT_API int weft_graph_wait(weft_graph g, int64_t deadline);

/* Waits until every process of node has ended (a sink has consumed all it
 * will get), or the deadline. Returns 0 if the node ended at the end of its
 * data, its own error, or -ECANCELED if the run was cancelled before it
 * ended. Errors besides: -EAGAIN (deadline), -EINVAL [misuse] (no such
 * node, or g has not been run), -EBADF [misuse], -ENOMEM. */
WEFT_API int weft_graph_wait_node(weft_graph g, weft_node node, int64_t deadline);

/* Cancels the run of g with -ECANCELED (if it has not ended already: then
 * nothing changes). Never waits; works from anywhere, a node included.
 * Errors: -EINVAL [misuse] (g has not been run), -EBADF [misuse]. */
WEFT_API int weft_graph_cancel(weft_graph g);

typedef struct weft_graph_stats {
    int result;                   /* as weft_graph_wait; -EINPROGRESS until the run ends */
    weft_node failed_node;        /* the node whose error ended the run, or -1 */
    char failed_name[WEFT_NAME_MAX]; /* its name, or "" */
    uint64_t emitted;             /* values emitted by the sources (custom nodes
                                     without inputs: values they sent) */
    uint64_t consumed;            /* values taken by sinks' firings (custom nodes
                                     without outputs: values they received) */
    uint64_t skipped;             /* values a firing took and let go on purpose:
                                     WEFT_NODE_SKIP of a filter, map, sink or merge */
    uint64_t dropped;             /* values discarded unprocessed: taken from an
                                     edge when the run was stopped, given to a
                                     firing that failed, sent to a node that had
                                     ended, or left in an edge at the end */
} weft_graph_stats;

/* Fills *st. The counts are final once the run has ended. Errors: -EINVAL
 * [misuse] (st NULL), -EBADF [misuse]. */
WEFT_API int weft_graph_get_stats(weft_graph g, weft_graph_stats *st);

/* Releases the caller's reference on g. A graph that is running cannot be
 * released: -EBUSY [misuse] (cancel it and wait first). Errors: -EBADF
 * [misuse]. */
WEFT_API int weft_graph_release(weft_graph g);

/* A custom node's input and output, each waiting until the deadline; io is
 * valid only in its own body. weft_node_recv reads input port;
 * weft_node_recv_any the first input that holds a value into value (room
 * for the largest input), storing its port in *port. Returns 0, or -EPIPE (the port
 * has ended; for recv_any: every input has), -ECANCELED (the graph is
 * cancelled: the body should return), -ETIMEDOUT, -EINVAL [misuse] (io or
 * value NULL, no such port). weft_node_send returns 0, -EPIPE (the next
 * node has ended: the value is dropped), -ECANCELED, -ETIMEDOUT, -EINVAL
 * [misuse]. */
WEFT_API int weft_node_recv(weft_node_io *io, unsigned port, void *value, int64_t deadline);
WEFT_API int weft_node_recv_any(weft_node_io *io, unsigned *port, void *value, int64_t deadline);
WEFT_API int weft_node_send(weft_node_io *io, unsigned port, const void *value, int64_t deadline);

/* ---- File descriptors ------------------------------------------------------------ */

/* A process that waits for a file descriptor blocks only itself: the
 * workers watch every waited-on descriptor with one epoll set, polled while
 * they look for work (no thread is dedicated to it). A thread outside the
 * runtime blocks its own OS thread.
 *
 * weft registers a descriptor with the poller the first time a process waits
 * on it, and keeps it until weft_fd_close or weft_fd_forget. A descriptor
 * that was waited on must be closed with weft_fd_close (or forgotten with
 * weft_fd_forget before a plain close(2)): weft cannot see a close(2), and a
 * new descriptor given the same number would inherit a stale registration.
 * The calls below expect descriptors in non-blocking mode; the sockets
 * weft makes are. */

/* Readiness events. WEFT_FD_ERROR and WEFT_FD_HUP are reported, never asked for. */
enum {
    WEFT_FD_READ = 1,  /* readable, or a listening socket has a connection */
    WEFT_FD_WRITE = 2, /* writable */
    WEFT_FD_ERROR = 4, /* an error is pending on it */
    WEFT_FD_HUP = 8    /* the peer hung up (reads will end) */
};

/* Waits until fd is ready for one of events (level-triggered, as poll(2):
 * returns at once if it is ready now) or until the deadline; many processes
 * may wait on one descriptor, and each is woken. Returns the ready events
 * (> 0; ERROR and HUP come with whatever was asked). A regular file is
 * always ready. As with poll(2), the operation that follows may still find
 * nothing to do (another process took the data): it must handle EAGAIN.
 * Errors: -EBADF (fd is not open, or was closed or forgotten through weft
 * while waited on), -EINVAL [misuse] (events 0, or bits other than READ and
 * WRITE), -ETIMEDOUT, -ECANCELED, -ENOMEM, -ESHUTDOWN. */
WEFT_API int weft_fd_wait(int fd, int events, int64_t deadline);

/* Wakes every process waiting on fd (their calls fail with -EBADF), takes
 * fd out of the poller and closes it. Returns 0, or -EBADF (not open). */
WEFT_API int weft_fd_close(int fd);

/* As weft_fd_close, but leaves fd open: weft forgets it, for code that
 * hands it to another event loop or closes it itself. 0, or -EBADF. */
WEFT_API int weft_fd_forget(int fd);

/* ---- Sockets ------------------------------------------------------------------------ */

/* TCP over IPv4 and IPv6, and Unix stream sockets, for processes. Sockets
 * are plain file descriptors in non-blocking, close-on-exec mode: setsockopt
 * and the other socket calls work on them; close them with weft_fd_close.
 * Every call that can wait takes a deadline, and completes as much as it
 * can before it: the read and write calls never block a worker. A deadline
 * of 0 (or past) makes one attempt: -ETIMEDOUT if it could do nothing.
 * Writes never raise SIGPIPE. From a thread outside the runtime the calls
 * block that thread. The calls that wait, and weft_listen and weft_connect,
 * need a running runtime (-ESHUTDOWN without one; listen and connect give
 * -ECANCELED while it shuts down, the others as any wait); the address
 * calls, weft_sock_addr and weft_shutdown work without one. A weft_addr
 * output is written only when its call succeeds. */

/* An address: IPv4, IPv6 or a Unix socket path. sa holds a struct
 * sockaddr_storage and len its used bytes: WEFT_ADDR_SOCKADDR(a) is the
 * struct sockaddr * for the socket calls. (weft.h does not include
 * <sys/socket.h>, whose names, such as connect, would clash with a
 * program's own.) */
typedef struct weft_addr {
    union {
        unsigned char bytes[128];
        uint64_t align_;
    } sa;
    uint32_t len;
} weft_addr;
#define WEFT_ADDR_SOCKADDR(a) ((struct sockaddr *)(void *)&(a)->sa)

/* Fills *out from a numeric IPv4 or IPv6 literal ("127.0.0.1", "::1",
 * "fe80::1%eth0", "fe80::1%2") and a port; no name lookup. ip NULL: every
 * IPv4 address (0.0.0.0). Errors: -EINVAL [misuse] (out NULL, port outside
 * 0..65535), -EINVAL (ip is not a literal, or names an unknown interface). */
WEFT_API int weft_addr_ip(weft_addr *out, const char *ip, int port);

/* Fills *out with a Unix socket path. Errors: -EINVAL [misuse] (NULL),
 * -EINVAL (an empty path), -ENAMETOOLONG (path longer than sockaddr_un
 * holds: 107 bytes on Linux). */
WEFT_API int weft_addr_unix(weft_addr *out, const char *path);

/* Resolves host (a name or a literal) on the offload pool, so the caller's
 * worker goes on running others; family: AF_UNSPEC, AF_INET or AF_INET6.
 * Stores up to max distinct addresses, in getaddrinfo's order, with the
 * given port in out; returns how many (>= 1). A literal is answered at
 * once, without the pool or a runtime (-ENXIO if it is of the other family
 * than asked). The deadline holds even while the name server does not
 * answer (the lookup is then left to finish on its helper thread).
 * Errors: -ENXIO (the name does not resolve), -EAGAIN (the name server
 * failed for now, or none could be reached), -EIO (it failed for good),
 * -EINVAL [misuse] (host or out NULL, max < 1, port or family out of
 * range), -ETIMEDOUT, -ECANCELED, -ENOMEM, -ESHUTDOWN (a name, no runtime);
 * -EAGAIN also when no offload thread could start. */
WEFT_API int weft_addr_resolve(const char *host, int port, int family, weft_addr *out, int max,
                               int64_t deadline);

/* Writes "1.2.3.4:80", "[::1]:80", "[fe80::1%eth0]:80" or "unix:/path"
 * into buf (always terminated; an unnamed Unix address is "unix:", an
 * abstract one "unix:@name"); returns the text's length, or -EINVAL
 * [misuse] (NULL, an unknown family or a length that does not fit it),
 * -ENOSPC (buf too small: truncated; size 0: nothing written). */
WEFT_API int weft_addr_format(const weft_addr *addr, char *buf, size_t size);

/* The port of an IP address, or -EINVAL (a Unix address), -EINVAL
 * [misuse] (NULL, an unknown family or a length that does not fit it). */
WEFT_API int weft_addr_port(const weft_addr *addr);

/* The local address a socket is bound to (after listening on port 0, say).
 * 0, or -EBADF, -ENOTSOCK, -EINVAL [misuse] (out NULL). Needs no runtime. */
WEFT_API int weft_sock_addr(int fd, weft_addr *out);

/* A listening stream socket on addr (TCP or Unix by its family; IP sockets
 * get SO_REUSEADDR, IPv6 ones accept IPv4 too where the system allows).
 * backlog <= 0: SOMAXCONN. weft never removes a Unix socket's file: a path
 * that exists (a stale socket of an earlier run too) gives -EADDRINUSE, and
 * closing the listener leaves the file; unlink(2) it. Returns the
 * descriptor, or -EADDRINUSE, -EACCES, -EADDRNOTAVAIL, -EAFNOSUPPORT,
 * -ENOENT (a Unix path's directory is missing), -EMFILE/-ENFILE (out of
 * descriptors), -EINVAL [misuse] (addr NULL, of no known family, or an
 * unnamed Unix address), -ENOMEM, -ECANCELED, -ESHUTDOWN. */
WEFT_API int weft_listen(const weft_addr *addr, int backlog);

/* Waits for a connection on listening socket fd; stores the peer's
 * address in *peer unless NULL (a Unix client's is usually unnamed). TCP
 * connections get TCP_NODELAY. A connection that failed before it was
 * taken is skipped. Returns the new descriptor, or -ETIMEDOUT,
 * -EMFILE/-ENFILE (out of descriptors, at once whatever the deadline: the
 * pending connection stays queued, so a server sleeps a little and tries
 * again), -EINVAL (fd does not listen), -EBADF, -ENOTSOCK, -ECANCELED,
 * -ENOMEM, -ESHUTDOWN. */
WEFT_API int weft_accept(int fd, weft_addr *peer, int64_t deadline);

/* Connects a new stream socket to addr (TCP ones get TCP_NODELAY). A Unix
 * listener whose backlog is full is tried again, after naps of 0.5 to 50
 * ms, until it takes the connection or the deadline passes. Returns the
 * descriptor, or -ECONNREFUSED (also: a Unix path nobody listens on),
 * -ENETUNREACH, -EHOSTUNREACH, -ETIMEDOUT (the deadline came first), -ENOENT
 * (no Unix socket at that path), -EMFILE/-ENFILE, -EAGAIN (no local port
 * free), -EINVAL [misuse] (addr NULL, of no known family, or an unnamed
 * Unix address), -ECANCELED, -ENOMEM, -ESHUTDOWN. On any error the socket
 * is closed. */
WEFT_API int weft_connect(const weft_addr *addr, int64_t deadline);

/* Reads what has arrived, 1 to len bytes, waiting for the first byte until
 * the deadline. Returns the count, 0 at the end of the stream, or
 * -ECONNRESET (the peer reset the connection), -ETIMEDOUT, -EBADF,
 * -EINVAL [misuse] (buf NULL with len > 0, len above SSIZE_MAX: a negative
 * size cast to size_t), -ECANCELED, -ESHUTDOWN, or another negated errno of
 * recv(2)/read(2). len 0 returns 0 at once, without looking at fd. Any
 * number of processes may read one socket; each byte goes to one of them.
 * The read and write calls also work on pipes and other descriptors that
 * are not sockets (read(2), write(2)), which must be non-blocking. */
WEFT_API ssize_t weft_read(int fd, void *buf, size_t len, int64_t deadline);

/* Writes 1 to len bytes, waiting for room until the deadline. Returns the
 * count, or -EPIPE / -ECONNRESET (the peer is gone), -ETIMEDOUT, and
 * weft_read's other errors. */
WEFT_API ssize_t weft_write(int fd, const void *buf, size_t len, int64_t deadline);

/* Reads exactly len bytes, the deadline holding for all of them. Returns
 * len; 0 if the stream ended before its first byte; -EPIPE if it ended
 * part way; weft_read's errors otherwise (the bytes read before an error
 * are in buf and gone from the stream, but not counted). */
WEFT_API ssize_t weft_read_exactly(int fd, void *buf, size_t len, int64_t deadline);

/* Writes all len bytes, the deadline holding for all of them. Returns len,
 * or weft_write's errors (after a partial write, which the error does not
 * say). */
WEFT_API ssize_t weft_write_all(int fd, const void *buf, size_t len, int64_t deadline);

/* Shuts down reading, writing or both (SHUT_RD, SHUT_WR, SHUT_RDWR); a
 * process waiting on fd sees the end. 0, or -EBADF, -ENOTCONN, -ENOTSOCK,
 * -EINVAL [misuse] (an unknown how). Needs no runtime. */
WEFT_API int weft_shutdown(int fd, int how);

/* ---- Offload pool ------------------------------------------------------------------- */

/* Runs blocking code (getaddrinfo, disk I/O, a blocking C library) on a
 * pool of helper threads while the calling process waits without holding
 * its worker. The pool starts threads as calls need them, up to
 * weft_config.offload_threads; further calls queue in order.
 *
 * weft_offload runs fn(arg) on a helper thread and returns 0 once it has
 * returned (0 always means fn ran to its end). If the deadline comes (or
 * the process is cancelled) first:
 *  - fn has not started: it never will; the call fails.
 *  - fn is running: with abandon NULL, the call waits for fn to return
 *    whatever the deadline, and returns 0; otherwise it fails at once.
 * abandon (if not NULL) runs exactly once, on a helper thread, if and only
 * if the call fails with -ETIMEDOUT or -ECANCELED (also at entry: a
 * deadline already past, a runtime stopping; and when an exit signal ends
 * the caller while it waits): after fn if fn had started, in its place if
 * not. It owns arg from then on (it frees what the caller can no longer
 * take). On every other result arg stays with the caller.
 * fn and abandon run outside the runtime: they may use weft only as a
 * thread outside the runtime may.
 * Errors: -ETIMEDOUT, -ECANCELED, -EINVAL [misuse] (fn NULL), -EPERM
 * [misuse] (from an actor's handler, with a deadline ahead), -ENOMEM,
 * -EAGAIN (no helper thread could start and none runs), -ESHUTDOWN. */
typedef void weft_offload_fn(void *arg);
WEFT_API int weft_offload(weft_offload_fn *fn, void *arg, weft_offload_fn *abandon,
                          int64_t deadline);

/* Default and largest offload pool sizes. */
#define WEFT_OFFLOAD_THREADS_DEFAULT 16
#define WEFT_OFFLOAD_THREADS_MAX 1024

/* ---- Diagnostics ---------------------------------------------------------------- */

/* Writes a report of every process to fd: pid, name, where it was spawned,
 * and what it is blocked on (which channel, send or receive, which process
 * it joins, a sleep). Safe to call from any thread while the runtime runs;
 * the report is a snapshot that running processes may change under it.
 * Errors: -EBADF (fd not writable), -ENOMEM, -ESHUTDOWN. */
WEFT_API int weft_dump(int fd);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_H */
