/* socket.c: TCP and Unix stream sockets for processes: listen, accept,
 * connect, read, write, shutdown.
 *
 * Every call that can wait follows io.h's protocol: sample the direction's
 * edge count, try the non-blocking syscall, and on EAGAIN wait for an edge
 * after the sample (or the deadline), then try again. A deadline of 0 makes
 * one attempt and gives -ETIMEDOUT if it could do nothing.
 *
 * errno is read only in the small noinline sys_* functions, right after
 * their syscall: a process may resume on another OS thread after a wait, and
 * glibc's __errno_location is declared const, so a compiler could otherwise
 * reuse the first thread's errno address across the wait.
 */
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "io.h"

/* weft.h keeps the address in bytes (it does not include <sys/socket.h>). */
_Static_assert(sizeof(((weft_addr *)0)->sa) >= sizeof(struct sockaddr_storage),
               "weft_addr holds any socket address");
static inline int addr_family(const weft_addr *a)
{
    return ((const struct sockaddr *)(const void *)&a->sa)->sa_family;
}

/* Runs call, of the given type, from a process (an exit signal ends it at
 * entry, or when the call's wait was cancelled by one) or from an outside
 * thread (counted inside the runtime meanwhile; -ESHUTDOWN without one). */
#define SOCK_CALL(type, call)                                 \
    do {                                                      \
        weft__det_point();                                    \
        struct weft__proc *self_ = weft__proc_current();      \
        if (self_) {                                          \
            weft__kill_check(self_);                          \
            type r_ = (call);                                 \
            if (r_ == -ECANCELED)                             \
                weft__kill_point();                           \
            return r_;                                        \
        }                                                     \
        int err_ = weft__outside_enter(true);                 \
        if (err_)                                             \
            return err_;                                      \
        type r_ = (call);                                     \
        weft__outside_leave();                                \
        return r_;                                            \
    } while (0)

/* The family of an address a socket can be bound or connected to (IPv4,
 * IPv6, or a Unix path: not an unnamed Unix address), or -EINVAL [misuse]. */
static int family_of(const weft_addr *a, const char *fn)
{
    if (!a)
        return weft__misuse(-EINVAL, "%s: addr is NULL", fn);
    int f = addr_family(a);
    size_t least = f == AF_INET ? sizeof(struct sockaddr_in)
                   : f == AF_INET6 ? sizeof(struct sockaddr_in6)
                   : f == AF_UNIX ? offsetof(struct sockaddr_un, sun_path) + 1 : 0;
    size_t most = f == AF_UNIX ? sizeof(struct sockaddr_un) : sizeof a->sa;
    if (!least || a->len < least || a->len > most)
        return weft__misuse(-EINVAL, "%s: an address of family %d, length %u", fn, f,
                            (unsigned)a->len);
    return f;
}

static int errno_code(int e)
{
    return e == ENOBUFS ? -ENOMEM : -e;
}

/* ---- the syscalls ----------------------------------------------------------------------- */

__attribute__((noinline)) static ssize_t sys_read(int fd, struct weft__fd *d, void *buf, size_t len)
{
    for (;;) {
        bool plain = weft__fd_not_socket(d);
        ssize_t n = plain ? read(fd, buf, len) : recv(fd, buf, len, MSG_DONTWAIT);
        if (n >= 0)
            return n;
        if (errno == ENOTSOCK && !plain) {
            weft__fd_set_not_socket(d); /* a pipe, say: read(2) from now on */
            continue;
        }
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? -EAGAIN : errno_code(errno);
    }
}

/* write(2) to a pipe whose reader is gone raises SIGPIPE: the signal is
 * blocked for the call, and one the call raised is taken back. */
static ssize_t write_quiet(int fd, const void *buf, size_t len)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t n = write(fd, buf, len);
    int e = errno;
    if (n < 0 && e == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return n;
}

__attribute__((noinline)) static ssize_t sys_write(int fd, struct weft__fd *d, const void *buf,
                                                   size_t len)
{
    for (;;) {
        bool plain = weft__fd_not_socket(d);
        ssize_t n = plain ? write_quiet(fd, buf, len)
                          : send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == ENOTSOCK && !plain) {
            weft__fd_set_not_socket(d);
            continue;
        }
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? -EAGAIN : errno_code(errno);
    }
}

__attribute__((noinline)) static int sys_accept(int fd, weft_addr *peer)
{
    peer->len = sizeof peer->sa;
    int nfd = accept4(fd, (struct sockaddr *)&peer->sa, &peer->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    return nfd >= 0 ? nfd : errno == EWOULDBLOCK ? -EAGAIN : errno_code(errno);
}

__attribute__((noinline)) static int sys_connect(int fd, const weft_addr *a)
{
    if (connect(fd, (const struct sockaddr *)&a->sa, a->len) == 0)
        return 0;
    return errno_code(errno);
}

/* 0 once fd's connect has succeeded, -ENOTCONN while it is under way, or
 * the code it failed with. */
__attribute__((noinline)) static int sys_connected(int fd)
{
    int e = 0;
    socklen_t len = sizeof e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
        return errno_code(errno);
    if (e)
        return errno_code(e);
    struct sockaddr_storage ss;
    len = sizeof ss;
    return getpeername(fd, (struct sockaddr *)&ss, &len) == 0 ? 0 : errno_code(errno);
}

/* A new socket of family, non-blocking and close-on-exec, or an error. */
static int sock_open(int family)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno_code(errno);
    weft__fd_opened(fd); /* whatever weft knew of an earlier fd of that number is stale */
    if (family != AF_UNIX) {
        int one = 1; /* small writes go out at once; best effort */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

/* Waits for dir of d after sample, unless the deadline is 0. */
static int await(struct weft__fd *d, int dir, weft__fd_token sample, int64_t deadline)
{
    return deadline == 0 ? -ETIMEDOUT : weft__fd_await(d, dir, sample, deadline);
}

/* ---- listen, accept, connect ------------------------------------------------------------- */

static int listen_on(const weft_addr *a, int family, int backlog)
{
    if (atomic_load_explicit(&weft__rt.state, memory_order_relaxed) != WEFT__RT_RUNNING)
        return -ECANCELED;
    int fd = sock_open(family);
    if (fd < 0)
        return fd;
    int one = 1, zero = 0;
    if (family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6) /* IPv4 too, where the system allows it */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    /* An existing Unix socket file is not removed: bind fails with
     * -EADDRINUSE, and the caller decides whether it is stale. */
    if (bind(fd, (const struct sockaddr *)&a->sa, a->len) != 0 ||
        listen(fd, backlog > 0 ? backlog : SOMAXCONN) != 0) {
        int err = errno_code(errno);
        weft_fd_close(fd);
        return err;
    }
    return fd;
}

int weft_listen(const weft_addr *addr, int backlog)
{
    int family = family_of(addr, "weft_listen");
    if (family < 0)
        return family;
    WEFT__FROM_ANYWHERE(listen_on(addr, family, backlog));
}

static int accept_on(int fd, weft_addr *peer, int64_t deadline)
{
    struct weft__fd *d;
    int err = weft__fd_get(fd, &d);
    if (err)
        return err;
    for (;;) {
        weft__fd_token t = weft__fd_sample(d, WEFT_FD_READ);
        weft_addr a;
        int nfd = sys_accept(fd, &a);
        if (nfd >= 0) {
            weft__fd_opened(nfd);
            if (addr_family(&a) == AF_INET || addr_family(&a) == AF_INET6) {
                int one = 1;
                setsockopt(nfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            }
            if (peer)
                *peer = a;
            return nfd;
        }
        switch (nfd) {
        case -EAGAIN:
            break;
        /* A connection that failed before it was taken (or that a
         * firewall rule refused: EPERM); Linux also passes on the new
         * connection's pending network errors: take the next. */
        case -EINTR: case -ECONNABORTED: case -EPROTO: case -ENETDOWN: case -ENOPROTOOPT:
        case -EHOSTDOWN: case -ENONET: case -EHOSTUNREACH: case -ENETUNREACH: case -EPERM:
            continue;
        default: /* -EMFILE, -ENFILE at once: the connection stays queued */
            return nfd;
        }
        if ((err = await(d, WEFT_FD_READ, t, deadline)) != 0)
            return err;
    }
}

int weft_accept(int fd, weft_addr *peer, int64_t deadline)
{
    SOCK_CALL(int, accept_on(fd, peer, deadline));
}

/* A Unix listener whose backlog is full refuses with EAGAIN, and nothing
 * tells when it has room: the connect is tried again after naps that
 * double from 0.5 ms to 50 ms. Returns -ETIMEDOUT once until has come. */
static int nap(int fd, int64_t until)
{
    struct weft__waiter *me = weft__waiter_self();
    weft__wait_open(me);
    weft__wait_why(me, WEFT__WHY_FD, (uint64_t)fd);
    return weft__wait(me, until);
}

static int connect_wait(int fd, struct weft__fd *d, const weft_addr *a, int64_t deadline)
{
    int64_t pause = 500 * 1000;
    int err;
    while ((err = sys_connect(fd, a)) == -EAGAIN && addr_family(a) == AF_UNIX) {
        if (deadline == 0 || (deadline > 0 && weft_now() >= deadline))
            return -ETIMEDOUT;
        int64_t until = weft_now() + pause;
        if ((err = nap(fd, deadline > 0 && deadline < until ? deadline : until)) != -ETIMEDOUT)
            return err;
        pause = pause < 25 * 1000 * 1000 ? 2 * pause : 50 * 1000 * 1000;
    }
    if (err != -EINPROGRESS && err != -EINTR && err != -EALREADY)
        return err; /* 0: done at once (a Unix socket) */
    for (;;) {
        weft__fd_token t = weft__fd_sample(d, WEFT_FD_WRITE);
        if ((err = sys_connected(fd)) != -ENOTCONN)
            return err;
        if ((err = await(d, WEFT_FD_WRITE, t, deadline)) != 0)
            return err;
    }
}

static int connect_to(const weft_addr *a, int family, int64_t deadline)
{
    if (atomic_load_explicit(&weft__rt.state, memory_order_relaxed) != WEFT__RT_RUNNING)
        return -ECANCELED;
    int fd = sock_open(family);
    if (fd < 0)
        return fd;
    struct weft__fd *d;
    int err = weft__fd_get(fd, &d);
    if (!err)
        err = connect_wait(fd, d, a, deadline);
    if (err) {
        weft_fd_close(fd); /* it may have been waited on */
        return err;
    }
    return fd;
}

int weft_connect(const weft_addr *addr, int64_t deadline)
{
    int family = family_of(addr, "weft_connect");
    if (family < 0)
        return family;
    SOCK_CALL(int, connect_to(addr, family, deadline));
}

/* ---- read and write ----------------------------------------------------------------------- */

/* Reads into buf (whole: until len bytes or the end of the stream), or
 * writes from it; returns the bytes moved, or the error that stopped it
 * before any (whole: any error). */
static ssize_t transfer(int fd, char *buf, size_t len, bool out, bool whole, int64_t deadline)
{
    struct weft__fd *d;
    int err = weft__fd_get(fd, &d);
    if (err)
        return err;
    int dir = out ? WEFT_FD_WRITE : WEFT_FD_READ;
    size_t done = 0;
    while (done < len) {
        weft__fd_token t = weft__fd_sample(d, dir);
        /* Emptied by the last read and no edge since: the read would find
         * nothing (one syscall less per request of a keep-alive server). */
        if (!out && deadline != 0 && weft__fd_drained(d, t)) {
            if ((err = await(d, dir, t, deadline)) != 0)
                return err;
            t = weft__fd_sample(d, dir);
        }
        ssize_t n = out ? sys_write(fd, d, buf + done, len - done)
                        : sys_read(fd, d, buf + done, len - done);
        if (!out && n > 0 && (size_t)n < len - done)
            weft__fd_set_drained(d, t);
        if (n > 0) {
            done += (size_t)n;
            if (!whole)
                break;
        } else if (n == 0) { /* the end of the stream */
            return done == 0 ? 0 : whole ? -EPIPE : (ssize_t)done;
        } else if (n != -EAGAIN) {
            return n;
        } else if ((err = await(d, dir, t, deadline)) != 0) {
            return err;
        }
    }
    return (ssize_t)done;
}

/* The arguments' misuse: NULL with a length, or a negative length cast. */
static int check_buf(const void *buf, size_t len, const char *fn)
{
    if (!buf && len)
        return weft__misuse(-EINVAL, "%s: buf is NULL, len %zu", fn, len);
    if (len > SSIZE_MAX)
        return weft__misuse(-EINVAL, "%s: len %zu above SSIZE_MAX (a negative size?)", fn, len);
    return 0;
}

ssize_t weft_read(int fd, void *buf, size_t len, int64_t deadline)
{
    int err = check_buf(buf, len, "weft_read");
    if (err || len == 0)
        return err;
    SOCK_CALL(ssize_t, transfer(fd, buf, len, false, false, deadline));
}

ssize_t weft_write(int fd, const void *buf, size_t len, int64_t deadline)
{
    int err = check_buf(buf, len, "weft_write");
    if (err || len == 0)
        return err;
    SOCK_CALL(ssize_t, transfer(fd, (char *)(uintptr_t)buf, len, true, false, deadline));
}

ssize_t weft_read_exactly(int fd, void *buf, size_t len, int64_t deadline)
{
    int err = check_buf(buf, len, "weft_read_exactly");
    if (err || len == 0)
        return err;
    SOCK_CALL(ssize_t, transfer(fd, buf, len, false, true, deadline));
}

ssize_t weft_write_all(int fd, const void *buf, size_t len, int64_t deadline)
{
    int err = check_buf(buf, len, "weft_write_all");
    if (err || len == 0)
        return err;
    SOCK_CALL(ssize_t, transfer(fd, (char *)(uintptr_t)buf, len, true, true, deadline));
}

/* ---- without waiting ---------------------------------------------------------------------- */

int weft_shutdown(int fd, int how)
{
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
        return weft__misuse(-EINVAL, "weft_shutdown: how %d (SHUT_RD, SHUT_WR, SHUT_RDWR)", how);
    if (fd < 0)
        return -EBADF;
    return shutdown(fd, how) == 0 ? 0 : errno_code(errno);
}

int weft_sock_addr(int fd, weft_addr *out)
{
    if (!out)
        return weft__misuse(-EINVAL, "weft_sock_addr: out is NULL");
    if (fd < 0)
        return -EBADF;
    weft_addr a;
    memset(&a, 0, sizeof a);
    a.len = sizeof a.sa;
    if (getsockname(fd, (struct sockaddr *)&a.sa, &a.len) != 0)
        return errno_code(errno);
    *out = a;
    return 0;
}
