/* net_util.h: what tests/test-net.c needs besides test.h: counting the open
 * descriptors and weft's live memory, raising and lowering RLIMIT_NOFILE, a
 * watchdog that dumps the processes of a run that hangs, and blocking
 * socket helpers for clients that are plain threads. */
#ifndef WEFT_NET_UTIL_H
#define WEFT_NET_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "weft.h"

/* ---- open descriptors ------------------------------------------------------------- */

/* The number of descriptors open now (the directory's own left out), or -1
 * if /proc/self/fd cannot be read (no descriptor free to read it with).
 * With list, also writes " fd:target" for each into it (truncated). */
static inline int net_fd_count(char *list, size_t size)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int self = dirfd(d), n = 0;
    size_t used = 0;
    if (list && size)
        list[0] = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        if (fd == self)
            continue;
        n++;
        if (list && used + 1 < size) {
            char path[64], target[96];
            snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
            ssize_t k = readlink(path, target, sizeof target - 1);
            target[k < 0 ? 0 : k] = 0;
            int w = snprintf(list + used, size - used, " %d:%s", fd, target);
            used = w < 0 ? size : used + (size_t)w;
        }
    }
    closedir(d);
    return n;
}

/* The open descriptor numbers, ascending, into fds (at most max); returns
 * how many are open (may exceed max), or -1. */
static inline int net_fd_list(int *fds, int max)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int self = dirfd(d), n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        if (fd == self)
            continue;
        if (n < max) { /* insertion keeps them sorted */
            int i = n;
            while (i > 0 && fds[i - 1] > fd) {
                fds[i] = fds[i - 1];
                i--;
            }
            fds[i] = fd;
        }
        n++;
    }
    closedir(d);
    return n;
}

/* ---- weft's live memory ----------------------------------------------------------- */

/* The allocation hook of test-alloc.c's kind: each block carries its size in
 * a header, so the live blocks and bytes are known, and a free or resize
 * with a wrong old size is counted. */
enum { NET_ALLOC_HEADER = 16 };

static struct net_mem {
    atomic_long blocks;   /* blocks weft holds now */
    atomic_long bytes;    /* bytes weft holds now */
    atomic_long total;    /* blocks handed out since the reset */
    atomic_long bad_size; /* frees or resizes with a wrong old size */
} net_mem;

static inline void *net_count_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    (void)ud;
    char *block = ptr ? (char *)ptr - NET_ALLOC_HEADER : NULL;
    if (block && *(size_t *)block != old_size)
        atomic_fetch_add(&net_mem.bad_size, 1);
    if (new_size == 0) {
        if (block) {
            atomic_fetch_sub(&net_mem.blocks, 1);
            atomic_fetch_sub(&net_mem.bytes, (long)old_size);
        }
        free(block);
        return NULL;
    }
    if (block) {
        char *moved = realloc(block, new_size + NET_ALLOC_HEADER);
        if (!moved)
            return NULL;
        *(size_t *)moved = new_size;
        atomic_fetch_add(&net_mem.bytes, (long)new_size - (long)old_size);
        return moved + NET_ALLOC_HEADER;
    }
    block = malloc(new_size + NET_ALLOC_HEADER);
    if (!block)
        return NULL;
    *(size_t *)block = new_size;
    atomic_fetch_add(&net_mem.blocks, 1);
    atomic_fetch_add(&net_mem.total, 1);
    atomic_fetch_add(&net_mem.bytes, (long)new_size);
    return block + NET_ALLOC_HEADER;
}

/* ---- descriptor limits ------------------------------------------------------------ */

/* Raises the soft RLIMIT_NOFILE to the hard one; returns the new soft limit. */
static inline long net_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -1;
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur;
}

/* ---- watchdog --------------------------------------------------------------------- */

/* A thread that writes weft_dump's report to standard error if the run it
 * watches outlives `seconds`, then aborts: a hang shows where each process
 * waits, and fails the case without waiting for its timeout. */
struct net_watchdog {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int seconds;
    const char *what;
    atomic_long *progress; /* if set, printed too: where the run was */
};

static inline void *net_watchdog_main(void *arg)
{
    struct net_watchdog *w = arg;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += w->seconds;
    pthread_mutex_lock(&w->mu);
    int rc = 0;
    while (!w->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&w->cv, &w->mu, &until);
    bool fire = !w->done;
    pthread_mutex_unlock(&w->mu);
    if (fire) {
        fprintf(stderr, "test-net: %s still running after %d s (progress %ld); the processes:\n",
                w->what, w->seconds, w->progress ? atomic_load(w->progress) : -1L);
        weft_dump(2);
        abort(); /* the case fails now, with the report above, not at its timeout */
    }
    return NULL;
}

static inline void net_watchdog_start(struct net_watchdog *w, const char *what, int seconds,
                                      atomic_long *progress)
{
    w->progress = progress;
    w->done = false;
    w->seconds = seconds;
    w->what = what;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&w->thread, NULL, net_watchdog_main, w) != 0)
        abort();
}

static inline void net_watchdog_stop(struct net_watchdog *w)
{
    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

/* ---- blocking sockets (for clients that are plain threads) ------------------------- */

/* A blocking TCP connection to addr, or a negative errno. */
static inline int net_connect_blocking(const weft_addr *addr)
{
    const struct sockaddr *sa = (const struct sockaddr *)(const void *)&addr->sa;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* A hang shows as an error after a minute, not as a stuck thread. */
    struct timeval tv = {.tv_sec = 60};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, sa, (socklen_t)addr->len) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* Sends all len bytes (no SIGPIPE); 0 or a negative errno. */
static inline int net_send_blocking(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t k = send(fd, p, len, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* Receives exactly len bytes: len, 0 at an end before the first byte,
 * -EPIPE at an end part way, or a negative errno. */
static inline ssize_t net_recv_blocking(int fd, void *buf, size_t len)
{
    char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t k = recv(fd, p + got, len - got, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (k == 0)
            return got == 0 ? 0 : -EPIPE;
        got += (size_t)k;
    }
    return (ssize_t)len;
}

/* Makes the next close of fd send a reset (RST) instead of an orderly end. */
static inline int net_set_linger0(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    return setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0 ? 0 : -errno;
}

/* Sleeps the calling OS thread for ns nanoseconds. */
static inline void net_thread_sleep(long ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000L, .tv_nsec = ns % 1000000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The local port of a socket, or -1. */
static inline int net_local_port(int fd)
{
    weft_addr a;
    socklen_t len = sizeof a.sa;
    if (getsockname(fd, WEFT_ADDR_SOCKADDR(&a), &len) != 0)
        return -1;
    a.len = (uint32_t)len;
    return weft_addr_port(&a);
}

#endif
