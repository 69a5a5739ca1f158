/* poll.c: file descriptor readiness, polled by the workers themselves.
 *
 * One epoll set serves the runtime. A descriptor enters it the first time
 * something waits on it, with every event edge-triggered, and stays until
 * weft_fd_close / weft_fd_forget (or weft__fd_opened for a new descriptor of
 * the same number). There is no poller thread: a worker that runs out of
 * work looks at the set without waiting (find_work), one parked worker at a
 * time waits in it instead of on its futex (sched.c park), and a busy
 * worker looks now and then when nobody has for a while. sched.c knows only
 * the hooks below (poll, interrupt), not epoll.
 *
 * The state of descriptor number n is the type-stable block table[n]; its
 * generation moves on whenever weft lets go of the number, and events carry
 * (n, generation) so that a late event of an earlier descriptor is dropped.
 * Each direction counts the edges seen (seq), under the block's lock, and
 * every waiting op (a weft_fd_wait, a socket call's await, a select case)
 * sits in the block's one queue with the events it wants in op->buf. An
 * edge bumps seq and wakes every op that wants it: waiters never consume an
 * edge for one another, so any number may wait on one descriptor.
 */
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "dataflow.h"
#include "io.h"

struct weft__fd {
    _Alignas(WEFT__CACHELINE) weft__spinlock lock;
    int fd;
    _Atomic uint32_t gen;     /* written under the lock, sampled without */
    _Atomic uint32_t seq[2];  /* edges seen: [0] read, [1] write */
    uint8_t registered;       /* in the epoll set (under the lock) */
    bool always_ready;        /* epoll refused it: a regular file */
    bool not_socket;          /* recv/send gave ENOTSOCK */
    bool closing;             /* between fd_release and fd_released */
    bool ended;               /* a hang-up or an error was seen (latched) */
    _Atomic weft__fd_token drained; /* a read found it empty after this sample, plus 1 */
    struct weft__chanq waiters; /* ops; op->buf holds the events they want */
};

enum {
    CHUNK_FDS = 1024,     /* blocks per chunk of the table */
    CHUNKS = 4096,        /* descriptors up to 4M */
    POLL_BATCH = 128,     /* events per epoll_wait from the scheduler's context */
    PERIODIC_BATCH = 8    /* events per look of a busy worker (on a process's stack) */
};
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#define HAVE_PWAIT2 1 /* nanosecond timeouts */
#else
#define HAVE_PWAIT2 0
#endif
#define WAKE_DATA UINT64_MAX /* the interrupting eventfd's epoll data */
/* A busy worker looks at the set when nobody has for this long (ns). */
#define PERIODIC_AFTER ((int64_t)1000 * 1000)

static struct {
    int epfd, wakefd;
    _Atomic(struct weft__fd *) chunks[CHUNKS];
    weft__spinlock grow_lock;
    _Atomic int64_t last_poll;
    _Atomic rlim_t fd_limit; /* the soft limit of open files, as last read */
    atomic_bool no_pwait2;   /* the kernel has no epoll_pwait2 */
} io = {.epfd = -1, .wakefd = -1};

static inline unsigned dir_index(int dir)
{
    return dir == WEFT_FD_WRITE;
}

/* ---- the table ----------------------------------------------------------------- */

static struct weft__fd *chunk_make(unsigned c)
{
    struct weft__fd *chunk = weft__calloc(CHUNK_FDS * sizeof *chunk + WEFT__CACHELINE);
    if (!chunk)
        return NULL;
    struct weft__fd *aligned = (void *)(((uintptr_t)chunk + WEFT__CACHELINE) &
                                        ~(uintptr_t)(WEFT__CACHELINE - 1));
    /* The allocation's address sits just before the aligned blocks. */
    ((void **)aligned)[-1] = chunk;
    for (unsigned i = 0; i < CHUNK_FDS; i++)
        aligned[i].fd = (int)(c * CHUNK_FDS + i);
    return aligned;
}

/* weft lets go of a number in a window of two syscalls (take it out of the
 * set, close it: see fd_release). The number can be given out again inside
 * it, to a socket (weft__fd_opened) or to anyone: whoever comes for the
 * number then waits the window out, so that it meets the new generation.
 * A wait of the old descriptor that comes now finds it closed (-EBADF). */
static void wait_closed(struct weft__fd *d)
{
    for (unsigned spins = 0; __atomic_load_n(&d->closing, __ATOMIC_ACQUIRE); spins++) {
        if (spins < 64)
            weft__cpu_relax();
        else
            sched_yield();
    }
}

/* Whether fd is below the limit of open files (read again when it may
 * have been raised), so that a wild number makes no chunk. */
static bool below_limit(int fd)
{
    if ((rlim_t)fd < atomic_load_explicit(&io.fd_limit, memory_order_relaxed))
        return true;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return false;
    atomic_store_explicit(&io.fd_limit, rl.rlim_cur, memory_order_relaxed);
    return (rlim_t)fd < rl.rlim_cur;
}

int weft__fd_get(int fd, struct weft__fd **out)
{
    if (weft__unlikely(io.epfd < 0))
        return -ESHUTDOWN;
    if (fd < 0 || (unsigned)fd >= (unsigned)CHUNKS * CHUNK_FDS)
        return -EBADF;
    unsigned c = (unsigned)fd / CHUNK_FDS;
    struct weft__fd *chunk = atomic_load_explicit(&io.chunks[c], memory_order_acquire);
    if (weft__unlikely(!chunk)) {
        if (!below_limit(fd))
            return -EBADF;
        weft__spin_lock(&io.grow_lock);
        chunk = atomic_load_explicit(&io.chunks[c], memory_order_relaxed);
        if (!chunk && (chunk = chunk_make(c)))
            atomic_store_explicit(&io.chunks[c], chunk, memory_order_release);
        weft__spin_unlock(&io.grow_lock);
        if (!chunk)
            return -ENOMEM;
    }
    struct weft__fd *d = &chunk[(unsigned)fd % CHUNK_FDS];
    wait_closed(d);
    *out = d;
    return 0;
}

static struct weft__fd *fd_peek(int fd)
{
    if (fd < 0 || (unsigned)fd >= (unsigned)CHUNKS * CHUNK_FDS)
        return NULL;
    struct weft__fd *chunk =
        atomic_load_explicit(&io.chunks[(unsigned)fd / CHUNK_FDS], memory_order_acquire);
    return chunk ? &chunk[(unsigned)fd % CHUNK_FDS] : NULL;
}

bool weft__fd_not_socket(struct weft__fd *d)
{
    return __atomic_load_n(&d->not_socket, __ATOMIC_RELAXED);
}

void weft__fd_set_not_socket(struct weft__fd *d)
{
    __atomic_store_n(&d->not_socket, true, __ATOMIC_RELAXED);
}

/* ---- registration ---------------------------------------------------------------- */

static uint64_t event_data(struct weft__fd *d, uint32_t gen)
{
    return (uint64_t)gen << 32 | (uint32_t)d->fd;
}

/* Puts d in the epoll set unless it is (generation gen). 0, -EBADF (not
 * open, or weft let go of it since gen), -ENOMEM, -ENOSPC (epoll's limit of
 * watches), or 1: epoll refuses it, it is always ready. The epoll_ctl runs
 * outside the lock; a racing second registration sees EEXIST and renews
 * the first with the same data. */
static int fd_register(struct weft__fd *d, uint32_t gen)
{
    /* Registered already (every wait but a descriptor's first): a stale
     * answer is caught by the generation check under the lock, later. */
    if (__atomic_load_n(&d->registered, __ATOMIC_RELAXED) &&
        atomic_load_explicit(&d->gen, memory_order_relaxed) == gen)
        return 0;
    weft__spin_lock(&d->lock);
    int state = atomic_load_explicit(&d->gen, memory_order_relaxed) != gen || d->closing ? -EBADF
                : d->always_ready                                          ? 1
                : d->registered                                            ? 0
                                                                           : 2;
    weft__spin_unlock(&d->lock);
    if (state != 2)
        return state;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = event_data(d, gen)};
    int err = 0;
    /* EEXIST: a registration of an earlier generation that weft forgot
     * while the file stayed open (a race with weft_fd_forget): renew it. */
    if (epoll_ctl(io.epfd, EPOLL_CTL_ADD, d->fd, &ev) != 0 &&
        (errno != EEXIST || epoll_ctl(io.epfd, EPOLL_CTL_MOD, d->fd, &ev) != 0))
        err = errno == EPERM ? 1 : -errno;
    weft__spin_lock(&d->lock);
    if (atomic_load_explicit(&d->gen, memory_order_relaxed) != gen) {
        err = -EBADF; /* let go of meanwhile: fd_release took it out again */
    } else if (err == 1) {
        __atomic_store_n(&d->always_ready, true, __ATOMIC_RELAXED);
    } else if (err == 0) {
        __atomic_store_n(&d->registered, 1, __ATOMIC_RELAXED);
    }
    weft__spin_unlock(&d->lock);
    return err;
}

/* Lets go of d's descriptor: its waiters fail with -EBADF, the generation
 * moves on. Returns whether it was in the epoll set: the caller takes it
 * out (and closes it) while no new wait can begin (closing), then calls
 * fd_released, which moves the generation on again, so that a wait that
 * began with the generation of the closing window fails too. */
static bool fd_release(struct weft__fd *d)
{
    struct weft__worker *w = weft__worker_current();
    struct weft__chan_op *woken = NULL;
    weft__spin_lock(&d->lock);
    bool was = d->registered;
    /* Stored atomically: fd_register and weft__fd_opened read them unlocked. */
    __atomic_store_n(&d->registered, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&d->always_ready, false, __ATOMIC_RELAXED);
    __atomic_store_n(&d->not_socket, false, __ATOMIC_RELAXED);
    __atomic_store_n(&d->ended, false, __ATOMIC_RELAXED);
    __atomic_store_n(&d->closing, true, __ATOMIC_RELAXED);
    atomic_store_explicit(&d->gen, atomic_load_explicit(&d->gen, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    weft__opq_claim_all(&d->waiters, &woken, -EBADF);
    weft__spin_unlock(&d->lock);
    weft__opq_wake_list(w, woken);
    return was;
}

static void fd_released(struct weft__fd *d)
{
    weft__spin_lock(&d->lock);
    __atomic_store_n(&d->closing, false, __ATOMIC_RELEASE);
    atomic_store_explicit(&d->gen, atomic_load_explicit(&d->gen, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    weft__spin_unlock(&d->lock);
}

void weft__fd_opened(int fd)
{
    struct weft__fd *d = fd_peek(fd);
    if (d)
        wait_closed(d);
    if (d && (__atomic_load_n(&d->registered, __ATOMIC_RELAXED) ||
              __atomic_load_n(&d->always_ready, __ATOMIC_RELAXED) ||
              __atomic_load_n(&d->not_socket, __ATOMIC_RELAXED) ||
              __atomic_load_n(&d->waiters.head, __ATOMIC_RELAXED))) {
        fd_release(d); /* the old file is closed: epoll has dropped it */
        fd_released(d);
    }
}

static int let_go(int fd, bool close_it)
{
    struct weft__fd *d = io.epfd >= 0 ? fd_peek(fd) : NULL;
    if (d && fd_release(d))
        epoll_ctl(io.epfd, EPOLL_CTL_DEL, fd, NULL);
    int err = 0;
    if (close_it)
        err = fd < 0 || (close(fd) != 0 && errno == EBADF) ? -EBADF : 0;
    else
        err = fd >= 0 && fcntl(fd, F_GETFD) >= 0 ? 0 : -EBADF;
    if (d)
        fd_released(d);
    return err;
}

int weft_fd_close(int fd)
{
    return let_go(fd, true);
}

int weft_fd_forget(int fd)
{
    return let_go(fd, false);
}

/* ---- waiting ------------------------------------------------------------------------- */

weft__fd_token weft__fd_sample(struct weft__fd *d, int dir)
{
    uint32_t gen = atomic_load_explicit(&d->gen, memory_order_acquire);
    uint32_t seq = atomic_load_explicit(&d->seq[dir_index(dir)], memory_order_acquire);
    return (uint64_t)gen << 32 | seq;
}

bool weft__fd_drained(struct weft__fd *d, weft__fd_token sample)
{
    return atomic_load_explicit(&d->drained, memory_order_relaxed) == sample + 1 &&
           !__atomic_load_n(&d->ended, __ATOMIC_RELAXED);
}

void weft__fd_set_drained(struct weft__fd *d, weft__fd_token sample)
{
    atomic_store_explicit(&d->drained, sample + 1, memory_order_relaxed);
}

static void count_waiter(long by)
{
    atomic_fetch_add_explicit(&weft__rt.poll_waiters, by, memory_order_relaxed);
}

/* Queues op for events on d, unless an edge of theirs came after the
 * samples (seq, per direction) or d was let go of since gen: then returns
 * the ready events or -EBADF without queueing. 0: queued, wait. */
static int fd_arm(struct weft__fd *d, uint32_t gen, const uint32_t seq[2], int events,
                  struct weft__chan_op *op)
{
    int ready = 0;
    weft__spin_lock(&d->lock);
    if (atomic_load_explicit(&d->gen, memory_order_relaxed) != gen || d->closing) {
        ready = -EBADF;
    } else {
        for (int dir = WEFT_FD_READ; dir <= WEFT_FD_WRITE; dir <<= 1)
            if ((events & dir) &&
                atomic_load_explicit(&d->seq[dir_index(dir)], memory_order_relaxed) != seq[dir_index(dir)])
                ready |= dir;
        if (!ready)
            weft__opq_push(&d->waiters, op);
    }
    weft__spin_unlock(&d->lock);
    return ready;
}

/* Waits for op's wake-up (or the deadline) and takes op out of d's queue. */
static int fd_sleep(struct weft__fd *d, struct weft__waiter *me, struct weft__chan_op *op,
                    int64_t deadline)
{
    count_waiter(1);
    if (!me->proc)
        weft__sched_poll_kick();
    weft__wait_why(me, WEFT__WHY_FD, (uint64_t)d->fd);
    int r = weft__wait(me, deadline);
    weft__spin_lock(&d->lock);
    if (op->linked)
        weft__opq_unlink(&d->waiters, op);
    weft__spin_unlock(&d->lock);
    count_waiter(-1);
    return r == 0 ? op->status : r;
}

int weft__fd_await(struct weft__fd *d, int dir, weft__fd_token sample, int64_t deadline)
{
    uint32_t gen = (uint32_t)(sample >> 32);
    int err = fd_register(d, gen);
    if (err)
        return err == 1 ? 0 : err;
    uint32_t seq[2] = {(uint32_t)sample, (uint32_t)sample};
    struct weft__waiter *me = weft__waiter_self();
    unsigned ticket = weft__wait_open(me);
    struct weft__chan_op op = {.waiter = me, .ticket = ticket, .buf = (void *)(uintptr_t)dir};
    int ready = fd_arm(d, gen, seq, dir, &op);
    if (ready) {
        weft__wait_abandon(me, ticket);
        return ready < 0 ? ready : 0;
    }
    int r = fd_sleep(d, me, &op, deadline);
    return r < 0 ? r : 0;
}

/* poll(2) without waiting: the events of want fd has now. An error or a
 * hang-up makes every direction asked for ready too (the call that follows
 * does not block: it ends or fails), reported with ERROR / HUP. -EBADF if
 * fd is not open. */
static int level(int fd, int want)
{
    struct pollfd p = {.fd = fd,
                       .events = (short)(((want & WEFT_FD_READ) ? POLLIN | POLLRDHUP : 0) |
                                         ((want & WEFT_FD_WRITE) ? POLLOUT : 0))};
    if (poll(&p, 1, 0) <= 0)
        return 0;
    if (p.revents & POLLNVAL)
        return -EBADF;
    int ready = ((p.revents & POLLIN) ? WEFT_FD_READ : 0) | ((p.revents & POLLOUT) ? WEFT_FD_WRITE : 0);
    if (p.revents & POLLERR)
        ready |= want | WEFT_FD_ERROR;
    if (p.revents & (POLLHUP | POLLRDHUP))
        ready |= (want & WEFT_FD_READ) | WEFT_FD_HUP;
    if (p.revents & POLLHUP)
        ready |= want;
    return ready;
}

static int fd_wait(int fd, int events, int64_t deadline)
{
    struct weft__fd *d;
    int err = weft__fd_get(fd, &d);
    if (err)
        return err;
    uint32_t gen = atomic_load_explicit(&d->gen, memory_order_acquire);
    if ((err = fd_register(d, gen)) != 0)
        return err == 1 ? events : err;
    for (;;) {
        weft__fd_token rt = weft__fd_sample(d, WEFT_FD_READ), wt = weft__fd_sample(d, WEFT_FD_WRITE);
        if ((uint32_t)(rt >> 32) != gen)
            return -EBADF;
        int now = level(fd, events);
        if (now != 0)
            return now;
        if (deadline == 0)
            return -ETIMEDOUT;
        uint32_t seq[2] = {(uint32_t)rt, (uint32_t)wt};
        struct weft__waiter *me = weft__waiter_self();
        unsigned ticket = weft__wait_open(me);
        struct weft__chan_op op = {.waiter = me, .ticket = ticket, .buf = (void *)(uintptr_t)events};
        int ready = fd_arm(d, gen, seq, events, &op);
        if (ready) {
            weft__wait_abandon(me, ticket);
            if (ready < 0)
                return ready;
            continue; /* an edge came after the look: look again */
        }
        /* An edge says that something happened, not that the descriptor
         * is still ready (another process may have taken the data): look. */
        int r = fd_sleep(d, me, &op, deadline);
        if (r <= 0)
            return r;
    }
}

int weft_fd_wait(int fd, int events, int64_t deadline)
{
    if (events == 0 || (events & ~(WEFT_FD_READ | WEFT_FD_WRITE)))
        return weft__misuse(-EINVAL, "weft_fd_wait: events %#x (WEFT_FD_READ and/or WEFT_FD_WRITE)",
                            (unsigned)events);
    struct weft__proc *self = weft__proc_current();
    if (self) {
        weft__kill_check(self);
        int r = fd_wait(fd, events, deadline);
        if (r == -ECANCELED)
            weft__kill_point();
        return r;
    }
    int err = weft__outside_enter(true);
    if (err)
        return err;
    err = fd_wait(fd, events, deadline);
    weft__outside_leave();
    return err;
}

/* ---- the poller -------------------------------------------------------------------------- */

/* An event of epoll: bumps the directions it names and claims the ops that
 * want them, adding them to *woken. */
static void fd_event(uint64_t data, uint32_t mask, struct weft__chan_op **woken)
{
    struct weft__fd *d = fd_peek((int)(uint32_t)data);
    if (!d)
        return;
    int ready = ((mask & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ? WEFT_FD_READ : 0) |
                ((mask & (EPOLLOUT | EPOLLHUP | EPOLLERR)) ? WEFT_FD_WRITE : 0);
    int extra = ((mask & EPOLLERR) ? WEFT_FD_ERROR : 0) |
                ((mask & (EPOLLHUP | EPOLLRDHUP)) ? WEFT_FD_HUP : 0);
    weft__spin_lock(&d->lock);
    if (atomic_load_explicit(&d->gen, memory_order_relaxed) != (uint32_t)(data >> 32)) {
        weft__spin_unlock(&d->lock);
        return; /* an event of a descriptor weft has let go of */
    }
    if (extra)
        __atomic_store_n(&d->ended, true, __ATOMIC_RELAXED); /* before the seq release */
    for (int dir = WEFT_FD_READ; dir <= WEFT_FD_WRITE; dir <<= 1)
        if (ready & dir)
            atomic_fetch_add_explicit(&d->seq[dir_index(dir)], 1, memory_order_release);
    struct weft__chan_op *op = d->waiters.head;
    while (op) {
        struct weft__chan_op *next = op->next;
        int want = (int)(uintptr_t)op->buf;
        if (want & ready) {
            weft__opq_unlink(&d->waiters, op);
            if (weft__wait_claim(op->waiter, op->ticket, op->index)) {
                op->status = (want & ready) | extra;
                op->next = *woken;
                *woken = op;
            }
        }
        op = next;
    }
    weft__spin_unlock(&d->lock);
}

/* Waits for events until deadline (0: only a look; INT64_MAX: no limit),
 * at most cap of them into evs, and makes runnable on w the processes they
 * wake, at the back of its queue. Returns how many. */
static int poll_events(struct weft__worker *w, int64_t deadline, struct epoll_event *evs, int cap)
{
    int n;
    if (deadline == 0) {
        n = epoll_wait(io.epfd, evs, cap, 0);
    } else {
        int64_t left = deadline == INT64_MAX ? -1 : weft__real_deadline(deadline) - weft__clock_real();
        if (deadline != INT64_MAX && left < 0)
            left = 0;
        n = -1;
#if HAVE_PWAIT2
        if (!atomic_load_explicit(&io.no_pwait2, memory_order_relaxed)) {
            struct timespec ts = {.tv_sec = left / 1000000000, .tv_nsec = left % 1000000000};
            n = epoll_pwait2(io.epfd, evs, cap, deadline == INT64_MAX ? NULL : &ts, NULL);
            if (n < 0 && errno == ENOSYS)
                atomic_store_explicit(&io.no_pwait2, true, memory_order_relaxed);
        }
#endif
        /* Before Linux 5.11 (or under valgrind 3.19): milliseconds, rounded up. */
        if (n < 0 && (!HAVE_PWAIT2 || atomic_load_explicit(&io.no_pwait2, memory_order_relaxed)))
            n = epoll_wait(io.epfd, evs, cap, left < 0 ? -1 : (int)((left + 999999) / 1000000));
    }
    /* Written only when it moves on much: the line is read by every
     * worker's periodic check. */
    int64_t now = weft_now();
    if (now - atomic_load_explicit(&io.last_poll, memory_order_relaxed) > PERIODIC_AFTER / 8)
        atomic_store_explicit(&io.last_poll, now, memory_order_relaxed);
    struct weft__chan_op *woken = NULL;
    for (int i = 0; i < n; i++) {
        if (evs[i].data.u64 == WAKE_DATA) {
            uint64_t v;
            if (read(io.wakefd, &v, sizeof v) < 0) {
                /* drained by another worker meanwhile */
            }
            continue;
        }
        fd_event(evs[i].data.u64, evs[i].events, &woken);
    }
    int count = 0;
    while (woken) {
        struct weft__chan_op *next = woken->next; /* gone once resumed */
        weft__wait_resume_queued(w, woken->waiter);
        woken = next;
        count++;
    }
    return count;
}

static int poll_hook(struct weft__worker *w, int64_t deadline)
{
    struct epoll_event evs[POLL_BATCH];
    return poll_events(w, deadline, evs, POLL_BATCH);
}

/* A busy worker's look: only when nobody has looked for a while. */
static int poll_periodic(struct weft__worker *w)
{
    if (weft_now() - atomic_load_explicit(&io.last_poll, memory_order_relaxed) < PERIODIC_AFTER)
        return 0;
    struct epoll_event evs[PERIODIC_BATCH];
    return poll_events(w, 0, evs, PERIODIC_BATCH);
}

static void poll_interrupt(void)
{
    uint64_t one = 1;
    if (write(io.wakefd, &one, sizeof one) < 0) {
        /* the counter is full: the poller has plenty to read already */
    }
}

/* ---- select's WEFT_CASE_FD -------------------------------------------------------------- */

static int case_find(const weft_case *c, void **obj)
{
    if (c->size == 0 || (c->size & ~(size_t)(WEFT_FD_READ | WEFT_FD_WRITE)))
        return weft__misuse(-EINVAL, "weft_select: an fd case with events %#zx", c->size);
    if (c->handle > INT32_MAX)
        return -EBADF;
    struct weft__fd *d;
    int err = weft__fd_get((int)c->handle, &d);
    if (err)
        return err;
    err = fd_register(d, atomic_load_explicit(&d->gen, memory_order_acquire));
    if (err < 0)
        return err;
    *obj = d;
    return 0;
}

static weft__spinlock *case_lock(void *obj)
{
    return &((struct weft__fd *)obj)->lock;
}

static int case_check(void *obj, const weft_case *c)
{
    return 0;
}

/* Under the lock: a descriptor ready now completes the case. A regular
 * file always is. An edge that wakes the select only says "look again"
 * (recheck), so the result is always the level seen here. */
static bool case_try(void *obj, weft_case *c, weft_pid me, int *status, struct weft__handoff *h)
{
    struct weft__fd *d = obj;
    int now = d->closing ? -EBADF : d->always_ready ? (int)c->size : level(d->fd, (int)c->size);
    if (now == 0)
        return false;
    *status = now;
    return true;
}

static void case_arm(void *obj, weft_case *c, struct weft__chan_op *op)
{
    op->buf = (void *)(uintptr_t)c->size;
    weft__opq_push(&((struct weft__fd *)obj)->waiters, op);
    count_waiter(1);
}

static void case_disarm(void *obj, weft_case *c, struct weft__chan_op *op)
{
    if (op->linked)
        weft__opq_unlink(&((struct weft__fd *)obj)->waiters, op);
    count_waiter(-1);
}

const struct weft__case_kind weft__fd_case_kind = {case_find, case_lock, case_check, case_try,
                                                   case_arm, case_disarm, true};

/* ---- start and stop ----------------------------------------------------------------------- */

int weft__io_start(void)
{
    io.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (io.epfd < 0)
        return errno == ENOMEM ? -ENOMEM : -EMFILE;
    io.wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_DATA};
    if (io.wakefd < 0 || epoll_ctl(io.epfd, EPOLL_CTL_ADD, io.wakefd, &ev) != 0) {
        int err = errno == ENOMEM ? -ENOMEM : -EMFILE;
        weft__io_stop();
        return err;
    }
    atomic_store(&io.last_poll, weft_now());
    weft__rt.poll_periodic = poll_periodic;
    weft__rt.poll_interrupt = poll_interrupt;
    weft__rt.poll_hook = poll_hook;
    return 0;
}

/* After every process has ended and the workers have stopped. */
void weft__io_stop(void)
{
    weft__rt.poll_hook = NULL;
    weft__rt.poll_periodic = NULL;
    weft__rt.poll_interrupt = NULL;
    if (io.wakefd >= 0)
        close(io.wakefd);
    if (io.epfd >= 0)
        close(io.epfd);
    io.wakefd = io.epfd = -1;
    for (unsigned c = 0; c < CHUNKS; c++) {
        struct weft__fd *chunk = atomic_load_explicit(&io.chunks[c], memory_order_relaxed);
        if (chunk)
            weft__free(((void **)chunk)[-1], CHUNK_FDS * sizeof *chunk + WEFT__CACHELINE);
        atomic_store_explicit(&io.chunks[c], NULL, memory_order_relaxed);
    }
}
