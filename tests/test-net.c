/* test-net.c: server robustness over loopback, and processes waiting on
 * file descriptors. A small server (one process per connection, weft_accept,
 * weft_read / weft_read_exactly / weft_write_all, a length-prefixed
 * protocol) serves thousands of concurrent connections, slow clients, clients
 * that vanish mid-request (an orderly close or a reset), clients whose
 * request stalls past the server's read deadline, and clients that arrive
 * when the process is out of descriptors (a low RLIMIT_NOFILE); it keeps
 * serving the others throughout. Many processes wait on one descriptor and
 * are all woken by one write, or by weft_fd_close / weft_fd_forget with
 * -EBADF (also while blocked in accept, read, write and select); readers
 * compete for bytes on one pipe; select mixes WEFT_FD_CASE with channel
 * cases; writes to a vanished peer fail without raising SIGPIPE. Every
 * scenario runs at 1 and 2 workers and ends with the descriptors it started
 * with and every byte weft took through the allocation hook given back.
 * No timing assertions: an order is proven by a gate (slow clients hold
 * their last byte until every fast one has its answers), deadlines are
 * checked from below only, and waits for an event have limits far beyond
 * need that only catch hangs (a watchdog then dumps the processes and
 * aborts). Under WEFT_SANITIZE the counts shrink. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define TEST_PROC_CHECKS
#include "net_util.h"
#include "test.h"

/* A wait for something that must happen: far beyond what it takes, so that
 * only a hang reaches it. */
#define LONG_MS 60000

static bool under(const char *sanitizer)
{
    const char *s = getenv("WEFT_SANITIZE");
    return s && strcmp(s, sanitizer) == 0;
}

/* A count for the release build, ASan+UBSan and TSan. */
static long scaled(long release, long asan, long tsan)
{
    return under("thread") ? tsan : under("address") ? asan : release;
}

/* Waits (polling, from a process) until *v reaches target; false if it has
 * not after LONG_MS. */
static bool wait_at_least(atomic_long *v, long target)
{
    int64_t limit = test_in_ms(LONG_MS);
    while (atomic_load(v) < target) {
        if (weft_now() > limit)
            return false;
        if (weft_sleep(weft_now() + 200 * US) != 0)
            return false;
    }
    return true;
}

/* ---- the protocol --------------------------------------------------------------------- */

/* A request is a 4-byte header (an operation and a 24-bit big-endian
 * length), then its payload:
 *  - ECHO: len bytes (at most MAX_PAYLOAD); the answer is the same header,
 *    then the payload reversed with each byte plus 1;
 *  - BULK: no payload; the answer is the same header, then len * BULK_UNIT
 *    bytes of bulk_byte(offset). */
enum { HDR = 4, OP_ECHO = 'E', OP_BULK = 'B', MAX_PAYLOAD = 4096, BULK_UNIT = 8192 };

static void put_header(uint8_t *h, int op, uint32_t len)
{
    h[0] = (uint8_t)op;
    h[1] = (uint8_t)(len >> 16);
    h[2] = (uint8_t)(len >> 8);
    h[3] = (uint8_t)len;
}

static uint32_t header_len(const uint8_t *h)
{
    return (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

/* Byte i of the payload of request k of client id. */
static uint8_t req_byte(unsigned id, unsigned k, size_t i)
{
    return (uint8_t)(id * 131u + k * 31u + i * 7u + (i >> 8));
}

static uint8_t bulk_byte(size_t off)
{
    return (uint8_t)(off ^ (off >> 11) ^ 0x5a);
}

/* Payload lengths 0..299, varied by client and request. */
static size_t echo_len(unsigned id, unsigned k)
{
    return (id * 37u + k * 101u) % 300u;
}

/* Writes request k of client id, of len payload bytes, into buf; returns
 * its size. */
static size_t make_echo(uint8_t *buf, unsigned id, unsigned k, size_t len)
{
    put_header(buf, OP_ECHO, (uint32_t)len);
    for (size_t i = 0; i < len; i++)
        buf[HDR + i] = req_byte(id, k, i);
    return HDR + len;
}

/* 0 if buf holds the right answer to request k of client id, else -EBADMSG. */
static int check_echo(const uint8_t *buf, unsigned id, unsigned k, size_t len)
{
    if (buf[0] != OP_ECHO || header_len(buf) != len)
        return -EBADMSG;
    for (size_t i = 0; i < len; i++)
        if (buf[HDR + i] != (uint8_t)(req_byte(id, k, len - 1 - i) + 1))
            return -EBADMSG;
    return 0;
}

/* ---- the server ----------------------------------------------------------------------- */

struct server;

/* One accepted connection, served by its own process. */
struct conn {
    struct server *s;
    int fd;
    weft_pid pid;
    long served;     /* requests answered */
    intptr_t result; /* how its process ended; written before s->ended counts it */
};

struct server {
    int lfd;          /* the listening socket */
    weft_addr addr;   /* its address (127.0.0.1, a port of the kernel's choice) */
    int64_t req_ns;   /* limit on reading a request once its first byte came; 0: none */
    weft_pid acceptor;
    atomic_bool stopping; /* the acceptor's next connection is the stop's poke */
    struct conn *conns;   /* conns[0..nconns): written by the acceptor only */
    long cap;
    atomic_long nconns;
    atomic_long accepted; /* connections accepted (the poke left out) */
    atomic_long served;   /* requests answered, all connections */
    atomic_long open;     /* connection processes running now */
    atomic_long max_open;
    atomic_long ended;    /* connection processes that have ended */
    atomic_long emfile;   /* accepts that failed for want of a descriptor */
};

/* The end of a connection part way through a request: its code. */
static intptr_t part_way(ssize_t r, int64_t deadline)
{
    if (r == 0)
        return -EPIPE; /* the stream ended inside the request */
    if (r == -ETIMEDOUT) {
        int64_t now = weft_now();
        CHECK(now >= deadline, "a read deadline fired %lld ns early", (long long)(deadline - now));
    }
    return r < 0 ? r : -EIO;
}

/* Answers an ECHO request whose header is hdr. */
static __attribute__((noinline)) intptr_t serve_echo(struct conn *c, const uint8_t *hdr,
                                                     int64_t deadline)
{
    uint8_t in[MAX_PAYLOAD], out[HDR + MAX_PAYLOAD];
    uint32_t len = header_len(hdr);
    if (len > MAX_PAYLOAD)
        return -EPROTO;
    if (len > 0) {
        ssize_t r = weft_read_exactly(c->fd, in, len, deadline);
        if (r != (ssize_t)len)
            return part_way(r, deadline);
    }
    memcpy(out, hdr, HDR);
    for (uint32_t i = 0; i < len; i++)
        out[HDR + i] = (uint8_t)(in[len - 1 - i] + 1);
    ssize_t w = weft_write_all(c->fd, out, HDR + len, WEFT_FOREVER);
    if (w != (ssize_t)(HDR + len))
        return w < 0 ? w : -EIO;
    return 0;
}

/* Answers a BULK request: len * BULK_UNIT bytes, a unit per write. */
static __attribute__((noinline)) intptr_t serve_bulk(struct conn *c, const uint8_t *hdr)
{
    uint8_t unit[BULK_UNIT];
    ssize_t w = weft_write_all(c->fd, hdr, HDR, WEFT_FOREVER);
    if (w != HDR)
        return w < 0 ? w : -EIO;
    size_t total = (size_t)header_len(hdr) * BULK_UNIT;
    for (size_t off = 0; off < total; off += BULK_UNIT) {
        for (size_t i = 0; i < BULK_UNIT; i++)
            unit[i] = bulk_byte(off + i);
        w = weft_write_all(c->fd, unit, BULK_UNIT, WEFT_FOREVER);
        if (w != BULK_UNIT)
            return w < 0 ? w : -EIO;
    }
    return 0;
}

/* Serves requests until the client ends (0) or something fails (its code).
 * The wait for a request's first byte has no limit; the rest of it must
 * come within s->req_ns. */
static intptr_t conn_serve(struct conn *c)
{
    struct server *s = c->s;
    for (;;) {
        uint8_t hdr[HDR];
        ssize_t r = weft_read(c->fd, hdr, 1, WEFT_FOREVER);
        if (r <= 0)
            return r; /* 0: the client ended between requests */
        int64_t deadline = s->req_ns ? weft_now() + s->req_ns : WEFT_FOREVER;
        r = weft_read_exactly(c->fd, hdr + 1, HDR - 1, deadline);
        if (r != HDR - 1)
            return part_way(r, deadline);
        intptr_t rc = hdr[0] == OP_ECHO   ? serve_echo(c, hdr, deadline)
                      : hdr[0] == OP_BULK ? serve_bulk(c, hdr)
                                          : -EPROTO;
        if (rc != 0)
            return rc;
        c->served++;
        atomic_fetch_add(&s->served, 1);
    }
}

static intptr_t conn_main(void *arg)
{
    struct conn *c = arg;
    struct server *s = c->s;
    long open = atomic_fetch_add(&s->open, 1) + 1;
    long max = atomic_load(&s->max_open);
    while (open > max && !atomic_compare_exchange_weak(&s->max_open, &max, open)) {
    }
    intptr_t rc = conn_serve(c);
    atomic_fetch_sub(&s->open, 1);
    CHECK_RC(weft_fd_close(c->fd), 0);
    c->result = rc;
    atomic_fetch_add(&s->ended, 1);
    return rc;
}

/* Accepts until the stop's poke; out of descriptors, it retries every 2 ms
 * (the connection stays queued meanwhile). */
static intptr_t acceptor_main(void *arg)
{
    struct server *s = arg;
    for (;;) {
        weft_addr peer;
        memset(&peer, 0, sizeof peer);
        int fd = weft_accept(s->lfd, &peer, WEFT_FOREVER);
        if (fd == -EMFILE || fd == -ENFILE) {
            atomic_fetch_add(&s->emfile, 1);
            if (weft_sleep(weft_now() + 2 * MS) != 0)
                return -ECANCELED;
            continue;
        }
        if (fd < 0) {
            CHECK(fd == -ECANCELED, "weft_accept: %d (%s)", fd, weft_strerror(fd));
            return fd;
        }
        if (atomic_load(&s->stopping)) {
            CHECK_RC(weft_fd_close(fd), 0);
            return 0;
        }
        int family = WEFT_ADDR_SOCKADDR(&peer)->sa_family;
        CHECK(family == AF_INET && weft_addr_port(&peer) > 0,
              "weft_accept's peer: family %d, port %d", family, weft_addr_port(&peer));
        long i = atomic_load(&s->nconns);
        if (i == s->cap) {
            check_fail(__LINE__, "more than %ld connections", s->cap);
            CHECK_RC(weft_fd_close(fd), 0);
            continue;
        }
        struct conn *c = &s->conns[i];
        *c = (struct conn){.s = s, .fd = fd, .result = 12345};
        atomic_fetch_add(&s->accepted, 1);
        /* The slot is published before the spawn: the process runs at once
         * and may end (and be counted in ended) before the spawn returns. */
        atomic_store(&s->nconns, i + 1);
        int rc = weft_spawn(&c->pid, conn_main, c, NULL);
        if (rc != 0) {
            check_fail(__LINE__, "spawning a connection's process: %d (%s)", rc, weft_strerror(rc));
            CHECK_RC(weft_fd_close(fd), 0);
            c->pid = 0;
            c->result = rc;
            atomic_fetch_add(&s->ended, 1);
        }
    }
}

/* Listens on 127.0.0.1 (a free port) with room for cap connections. */
static void server_start(struct server *s, long cap, int64_t req_ns)
{
    memset(s, 0, sizeof *s);
    s->req_ns = req_ns;
    s->cap = cap;
    s->conns = calloc((size_t)cap, sizeof *s->conns);
    CHECK(s->conns != NULL, "calloc");
    weft_addr a;
    CHECK_RC(weft_addr_ip(&a, "127.0.0.1", 0), 0);
    s->lfd = weft_listen(&a, 0);
    CHECK(s->lfd >= 0, "weft_listen: %d (%s)", s->lfd, weft_strerror(s->lfd));
    CHECK_RC(weft_sock_addr(s->lfd, &s->addr), 0);
    CHECK(weft_addr_port(&s->addr) > 0, "listening on port %d", weft_addr_port(&s->addr));
    s->acceptor = spawn_proc(acceptor_main, s);
}

/* Stops the acceptor (a connection made after `stopping` is set), closes
 * the listening socket and joins every connection's process; their clients
 * must have ended. */
static void server_stop(struct server *s)
{
    atomic_store(&s->stopping, true);
    int poke = weft_connect(&s->addr, test_in_ms(LONG_MS));
    CHECK(poke >= 0, "the stop's connection: %d (%s)", poke, weft_strerror(poke));
    CHECK(join_proc(s->acceptor) == 0, "the acceptor failed");
    if (poke >= 0)
        CHECK_RC(weft_fd_close(poke), 0);
    CHECK_RC(weft_fd_close(s->lfd), 0);
    long n = atomic_load(&s->nconns);
    for (long i = 0; i < n; i++) {
        if (!s->conns[i].pid)
            continue; /* never started */
        intptr_t r = join_proc(s->conns[i].pid);
        CHECK(r == s->conns[i].result, "connection %ld: joined %ld, recorded %ld", i, (long)r,
              (long)s->conns[i].result);
    }
    CHECK(atomic_load(&s->ended) == n, "%ld connections, %ld ended", n, atomic_load(&s->ended));
}

static void server_free(struct server *s)
{
    free(s->conns);
    s->conns = NULL;
}

/* The number of connections that ended with rc, and the first other code. */
static long conns_with(struct server *s, long from, long to, intptr_t rc, intptr_t *other)
{
    long n = 0;
    for (long i = from; i < to; i++) {
        if (s->conns[i].result == rc)
            n++;
        else if (other && *other == 0)
            *other = s->conns[i].result;
    }
    return n;
}

/* ---- clients that are processes ---------------------------------------------------------- */

/* Reads and checks the answer to request k of client id. */
static __attribute__((noinline)) int echo_answer(int fd, unsigned id, unsigned k, size_t len,
                                                 int64_t deadline)
{
    uint8_t buf[HDR + MAX_PAYLOAD];
    ssize_t r = weft_read_exactly(fd, buf, HDR + len, deadline);
    if (r != (ssize_t)(HDR + len))
        return r < 0 ? (int)r : -EPIPE;
    return check_echo(buf, id, k, len);
}

/* Sends request k of client id (len payload bytes) and checks the answer:
 * 0, -EBADMSG (a wrong answer) or the failing call's code. */
static __attribute__((noinline)) int echo_request(int fd, unsigned id, unsigned k, size_t len,
                                                  int64_t deadline)
{
    uint8_t buf[HDR + MAX_PAYLOAD];
    size_t n = make_echo(buf, id, k, len);
    ssize_t r = weft_write_all(fd, buf, n, deadline);
    if (r != (ssize_t)n)
        return r < 0 ? (int)r : -EIO;
    return echo_answer(fd, id, k, len, deadline);
}

/* Asks for units * BULK_UNIT bytes and checks every one. */
static __attribute__((noinline)) int bulk_request(int fd, uint32_t units, int64_t deadline)
{
    uint8_t buf[BULK_UNIT];
    put_header(buf, OP_BULK, units);
    ssize_t r = weft_write_all(fd, buf, HDR, deadline);
    if (r != HDR)
        return r < 0 ? (int)r : -EIO;
    r = weft_read_exactly(fd, buf, HDR, deadline);
    if (r != HDR)
        return r < 0 ? (int)r : -EPIPE;
    if (buf[0] != OP_BULK || header_len(buf) != units)
        return -EBADMSG;
    for (size_t off = 0; off < (size_t)units * BULK_UNIT; off += BULK_UNIT) {
        r = weft_read_exactly(fd, buf, BULK_UNIT, deadline);
        if (r != BULK_UNIT)
            return r < 0 ? (int)r : -EPIPE;
        for (size_t i = 0; i < BULK_UNIT; i++)
            if (buf[i] != bulk_byte(off + i))
                return -EBADMSG;
    }
    return 0;
}

/* A client that connects, makes reqs ECHO requests (and a bulk one of
 * bulk units, if any), checks every answer and closes. */
struct plain_client {
    const weft_addr *addr;
    unsigned id;
    unsigned reqs;
    uint32_t bulk;
    atomic_long *ticket; /* if set, taken when all answers are in */
    long my_ticket;
};

static intptr_t plain_client_main(void *arg)
{
    struct plain_client *c = arg;
    int64_t limit = test_in_ms(LONG_MS);
    int fd = weft_connect(c->addr, limit);
    if (fd < 0) {
        check_fail(__LINE__, "client %u: weft_connect: %d (%s)", c->id, fd, weft_strerror(fd));
        return fd;
    }
    int rc = 0;
    for (unsigned k = 0; rc == 0 && k < c->reqs; k++)
        rc = echo_request(fd, c->id, k, echo_len(c->id, k), limit);
    if (rc == 0 && c->bulk)
        rc = bulk_request(fd, c->bulk, limit);
    if (c->ticket)
        c->my_ticket = atomic_fetch_add(c->ticket, 1);
    CHECK_RC(weft_fd_close(fd), 0);
    CHECK(rc == 0, "client %u: %d (%s)", c->id, rc, weft_strerror(rc));
    return rc;
}

/* Runs n plain clients (ids from id0) and joins them; the number that failed. */
static long run_plain_clients(const weft_addr *addr, long n, unsigned id0, unsigned reqs,
                              uint32_t bulk)
{
    struct plain_client *cl = calloc((size_t)n, sizeof *cl);
    weft_pid *pids = calloc((size_t)n, sizeof *pids);
    for (long i = 0; i < n; i++) {
        cl[i] = (struct plain_client){.addr = addr, .id = id0 + (unsigned)i, .reqs = reqs,
                                      .bulk = i == 0 ? bulk : 0};
        pids[i] = spawn_on(plain_client_main, &cl[i], (int)i, 0);
    }
    long failed = 0;
    for (long i = 0; i < n; i++)
        failed += join_proc(pids[i]) != 0;
    free(cl);
    free(pids);
    return failed;
}

/* Where a scenario is (a round number, say), for the watchdog's report. */
static atomic_long net_progress;

/* ---- the harness ---------------------------------------------------------------------------- */

/* Runs fn as the main process at `workers` workers under a watchdog, with
 * weft's memory counted; asserts that the run and its checks passed, that
 * as many descriptors are open as before and that weft holds no memory. */
static void net_run(unsigned workers, weft_proc_fn fn, void *arg, const char *what)
{
    static char before[8192], after[8192];
    int fds0 = net_fd_count(before, sizeof before);
    cr_assert_geq(fds0, 0, "cannot read /proc/self/fd");
    atomic_store(&net_mem.blocks, 0);
    atomic_store(&net_mem.bytes, 0);
    atomic_store(&net_mem.total, 0);
    atomic_store(&net_mem.bad_size, 0);
    ASSERT_OK(weft_set_allocator(net_count_alloc, NULL));

    struct net_watchdog w;
    static char label[128];
    snprintf(label, sizeof label, "%s at %u workers", what, workers);
    atomic_store(&net_progress, -1);
    net_watchdog_start(&w, label, (int)scaled(30, 60, 90), &net_progress);
    weft_config cfg;
    weft_config_init(&cfg);
    cfg.workers = workers;
    intptr_t r = -12345;
    int rc = weft_run(fn, arg, &cfg, &r);
    net_watchdog_stop(&w);

    ASSERT_CHECKS();
    cr_assert_eq(rc, 0, "%s at %u workers: weft_run returned %d (%s)", what, workers, rc,
                 weft_strerror(rc));
    cr_assert_eq(r, 0, "%s at %u workers: main returned %ld", what, workers, (long)r);
    int fds1 = net_fd_count(after, sizeof after);
    cr_assert_eq(fds1, fds0, "%s at %u workers: %d descriptors open before, %d after\n before:%s\n after:%s",
                 what, workers, fds0, fds1, before, after);
    cr_assert_eq(atomic_load(&net_mem.blocks), 0,
                 "%s at %u workers: weft still holds %ld blocks (%ld bytes) after weft_run", what,
                 workers, atomic_load(&net_mem.blocks), atomic_load(&net_mem.bytes));
    cr_assert_eq(atomic_load(&net_mem.bytes), 0);
    cr_assert_eq(atomic_load(&net_mem.bad_size), 0, "frees with a wrong size");
    cr_assert_gt(atomic_load(&net_mem.total), 0, "weft allocated nothing through the hook");
    ASSERT_OK(weft_set_allocator(NULL, NULL));
}

/* A test case's start: SIGPIPE kills, as it does by default, so that a write
 * that raised it fails the case. */
static void net_case_init(void)
{
    signal(SIGPIPE, SIG_DFL);
}

/* ---- thousands of concurrent connections ------------------------------------------------- */

struct many {
    struct server s;
    long n;
    weft_chan ready; /* each client's code once its first two answers are in */
    weft_chan gate;  /* closed once every client has reported */
};

struct many_client {
    struct many *m;
    unsigned id;
};

static intptr_t many_client_main(void *arg)
{
    struct many_client *c = arg;
    struct many *m = c->m;
    int64_t limit = test_in_ms(LONG_MS);
    int fd = weft_connect(&m->s.addr, limit);
    int rc = fd < 0 ? fd : 0;
    for (unsigned k = 0; rc == 0 && k < 2; k++)
        rc = echo_request(fd, c->id, k, echo_len(c->id, k), limit);
    CHECK_RC(weft_chan_send(m->ready, &rc, sizeof rc, WEFT_FOREVER), 0);
    if (fd < 0)
        return rc;
    char g;
    CHECK_RC(weft_chan_recv(m->gate, &g, 1, WEFT_FOREVER), -EPIPE);
    if (rc == 0) /* every connection open: each is still served */
        rc = echo_request(fd, c->id, 2, echo_len(c->id, 2), test_in_ms(LONG_MS));
    CHECK_RC(weft_fd_close(fd), 0);
    return rc;
}

/* n clients connect at once and each makes two requests; only when all are
 * answered (so all n connections are open at both ends) does the gate let
 * them make a third and close. */
static intptr_t many_main(void *arg)
{
    struct many *m = arg;
    long n = m->n;
    int fds0 = net_fd_count(NULL, 0);
    server_start(&m->s, n + 8, 0);
    m->ready = make_chan(sizeof(int), (size_t)n);
    m->gate = make_chan(1, 0);
    int base = net_fd_count(NULL, 0);
    struct many_client *cl = calloc((size_t)n, sizeof *cl);
    weft_pid *pids = calloc((size_t)n, sizeof *pids);
    for (long i = 0; i < n; i++) {
        cl[i] = (struct many_client){.m = m, .id = (unsigned)i};
        pids[i] = spawn_proc(many_client_main, &cl[i]);
    }
    long failed = 0;
    int first = 0;
    for (long i = 0; i < n; i++) {
        int rep = 0;
        CHECK_RC(weft_chan_recv(m->ready, &rep, sizeof rep, WEFT_FOREVER), 0);
        if (rep != 0 && failed++ == 0)
            first = rep;
    }
    CHECK(failed == 0, "%ld of %ld clients failed; first: %d (%s)", failed, n, first,
          weft_strerror(first));
    /* Every connection is open now, at both ends. */
    CHECK(atomic_load(&m->s.accepted) == n, "accepted %ld of %ld", atomic_load(&m->s.accepted), n);
    CHECK(atomic_load(&m->s.open) == n, "%ld connection processes running, expected %ld",
          atomic_load(&m->s.open), n);
    int fds = net_fd_count(NULL, 0);
    CHECK(fds == base + 2 * n, "%d descriptors open with %ld connections; expected %d + 2 * %ld",
          fds, n, base, n);
    CHECK_RC(weft_chan_close(m->gate), 0);
    failed = 0;
    for (long i = 0; i < n; i++)
        failed += join_proc(pids[i]) != 0;
    CHECK(failed == 0, "%ld clients failed their third request", failed);
    server_stop(&m->s);
    intptr_t other = 0;
    long clean = conns_with(&m->s, 0, atomic_load(&m->s.nconns), 0, &other);
    CHECK(clean == n, "%ld of %ld connections ended cleanly; another ended with %ld (%s)", clean, n,
          (long)other, weft_strerror((int)other));
    CHECK(atomic_load(&m->s.served) == 3 * n, "served %ld requests, expected %ld",
          atomic_load(&m->s.served), 3 * n);
    CHECK(atomic_load(&m->s.max_open) == n, "at most %ld connections open at once, expected %ld",
          atomic_load(&m->s.max_open), n);
    CHECK_RC(weft_chan_release(m->ready), 0);
    CHECK_RC(weft_chan_release(m->gate), 0);
    free(cl);
    free(pids);
    server_free(&m->s);
    CHECK(net_fd_count(NULL, 0) == fds0, "descriptors: %d at main's start, %d at its end", fds0,
          net_fd_count(NULL, 0));
    return 0;
}

Test(net, thousands_of_concurrent_connections_each_answered, .timeout = 240)
{
    net_case_init();
    long limit = net_raise_nofile();
    cr_assert_gt(limit, 0, "RLIMIT_NOFILE");
    long want = scaled(4000, 3000, 2000);
    long fit = (limit - net_fd_count(NULL, 0) - 64) / 2; /* two descriptors per connection */
    long n = want < fit ? want : fit;
    cr_assert_geq(n, 100, "RLIMIT_NOFILE's hard limit %ld leaves room for %ld connections", limit,
                  fit);
    if (n < want)
        fprintf(stderr, "test-net: %ld connections (the descriptor limit is %ld)\n", n, limit);
    for (unsigned w = 1; w <= 2; w++) {
        struct many m = {.n = n};
        net_run(w, many_main, &m, "thousands of connections");
    }
}

/* ---- slow clients ------------------------------------------------------------------------- */

enum { SLOW_LEN = 48, SLOW_HALF = HDR + SLOW_LEN / 2 };

struct slow {
    struct server s;
    int nslow_procs, nslow_threads, nfast;
    unsigned reqs;
    weft_chan mid;  /* a slow client has sent the first half of its request */
    weft_chan gate; /* closed once every fast client has all its answers */
    weft_chan done; /* a slow client's code at its end */
    atomic_long ticket;
};

struct slow_client {
    struct slow *sl;
    unsigned id;
    pthread_t thread;
    long my_ticket;
};

/* Sends request 0 of c a byte at a time, 1 ms apart, reporting on mid when
 * half of it is out; holds the last byte until the gate opens; then checks
 * the answer. From a process. */
static intptr_t slow_proc_main(void *arg)
{
    struct slow_client *c = arg;
    struct slow *sl = c->sl;
    int64_t limit = test_in_ms(LONG_MS);
    uint8_t req[HDR + SLOW_LEN];
    size_t n = make_echo(req, c->id, 0, SLOW_LEN);
    int fd = weft_connect(&sl->s.addr, limit);
    int rc = fd < 0 ? fd : 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (i == SLOW_HALF)
            CHECK_RC(weft_chan_send(sl->mid, &rc, sizeof rc, WEFT_FOREVER), 0);
        if (rc == 0) {
            ssize_t r = weft_write_all(fd, req + i, 1, limit);
            rc = r == 1 ? 0 : r < 0 ? (int)r : -EIO;
            weft_sleep(weft_now() + 1 * MS);
        }
    }
    char g;
    CHECK_RC(weft_chan_recv(sl->gate, &g, 1, WEFT_FOREVER), -EPIPE);
    if (rc == 0) {
        ssize_t r = weft_write_all(fd, req + n - 1, 1, limit);
        rc = r == 1 ? 0 : r < 0 ? (int)r : -EIO;
    }
    if (rc == 0)
        rc = echo_answer(fd, c->id, 0, SLOW_LEN, limit);
    c->my_ticket = atomic_fetch_add(&sl->ticket, 1);
    if (fd >= 0)
        CHECK_RC(weft_fd_close(fd), 0);
    CHECK_RC(weft_chan_send(sl->done, &rc, sizeof rc, WEFT_FOREVER), 0);
    return rc;
}

/* The same from a plain thread with a blocking socket. */
static void *slow_thread_main(void *arg)
{
    struct slow_client *c = arg;
    struct slow *sl = c->sl;
    uint8_t req[HDR + SLOW_LEN], ans[HDR + SLOW_LEN];
    size_t n = make_echo(req, c->id, 0, SLOW_LEN);
    int fd = net_connect_blocking(&sl->s.addr);
    int rc = fd < 0 ? fd : 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (i == SLOW_HALF)
            CHECK_RC(weft_chan_send(sl->mid, &rc, sizeof rc, WEFT_FOREVER), 0);
        if (rc == 0) {
            rc = net_send_blocking(fd, req + i, 1);
            net_thread_sleep(1000000);
        }
    }
    char g;
    CHECK_RC(weft_chan_recv(sl->gate, &g, 1, WEFT_FOREVER), -EPIPE);
    if (rc == 0)
        rc = net_send_blocking(fd, req + n - 1, 1);
    if (rc == 0) {
        ssize_t r = net_recv_blocking(fd, ans, sizeof ans);
        rc = r == (ssize_t)sizeof ans ? check_echo(ans, c->id, 0, SLOW_LEN) : r < 0 ? (int)r : -EPIPE;
    }
    c->my_ticket = atomic_fetch_add(&sl->ticket, 1);
    if (fd >= 0)
        close(fd); /* never waited on through weft */
    CHECK_RC(weft_chan_send(sl->done, &rc, sizeof rc, WEFT_FOREVER), 0);
    CHECK_RC(weft_thread_detach(), 0);
    return NULL;
}

/* Slow clients (processes and threads) send half their request a byte at a
 * time; then fast clients connect and make all their requests while the
 * slow ones go on trickling; the slow ones hold their last byte until every
 * fast one has its answers. So the fast ones are served while the slow ones
 * are mid-request, and the slow ones are served afterwards. */
static intptr_t slow_main(void *arg)
{
    struct slow *sl = arg;
    int nslow = sl->nslow_procs + sl->nslow_threads;
    int fds0 = net_fd_count(NULL, 0);
    server_start(&sl->s, nslow + sl->nfast + 8, 0);
    sl->mid = make_chan(sizeof(int), (size_t)nslow);
    sl->done = make_chan(sizeof(int), (size_t)nslow);
    sl->gate = make_chan(1, 0);
    atomic_store(&sl->ticket, 0);
    struct slow_client *sc = calloc((size_t)nslow, sizeof *sc);
    weft_pid *spids = calloc((size_t)nslow, sizeof *spids);
    for (int i = 0; i < nslow; i++) {
        sc[i] = (struct slow_client){.sl = sl, .id = 100000u + (unsigned)i};
        if (i < sl->nslow_procs) {
            spids[i] = spawn_on(slow_proc_main, &sc[i], i, 0);
        } else {
            CHECK_RC(weft_thread_attach(), 0); /* the thread detaches at its end */
            CHECK(pthread_create(&sc[i].thread, NULL, slow_thread_main, &sc[i]) == 0, "pthread_create");
        }
    }
    for (int i = 0; i < nslow; i++) {
        int rc = -1;
        CHECK_RC(weft_chan_recv(sl->mid, &rc, sizeof rc, WEFT_FOREVER), 0);
        CHECK(rc == 0, "a slow client failed before its first half: %d (%s)", rc, weft_strerror(rc));
    }
    CHECK(atomic_load(&sl->s.served) == 0, "served %ld before any request was whole",
          atomic_load(&sl->s.served));

    struct plain_client *fc = calloc((size_t)sl->nfast, sizeof *fc);
    weft_pid *fpids = calloc((size_t)sl->nfast, sizeof *fpids);
    for (int i = 0; i < sl->nfast; i++) {
        fc[i] = (struct plain_client){.addr = &sl->s.addr, .id = (unsigned)i, .reqs = sl->reqs,
                                      .ticket = &sl->ticket};
        fpids[i] = spawn_on(plain_client_main, &fc[i], i, 0);
    }
    long failed = 0;
    for (int i = 0; i < sl->nfast; i++)
        failed += join_proc(fpids[i]) != 0;
    CHECK(failed == 0, "%ld fast clients failed", failed);
    /* Every fast request is answered; no slow one is, as each still holds
     * its last byte, and their connections are all open. (The server counts
     * an answer once its write returned, which may be after the client read
     * it: wait for the count.) */
    wait_at_least(&sl->s.served, (long)sl->nfast * sl->reqs);
    CHECK(atomic_load(&sl->s.served) == (long)sl->nfast * sl->reqs,
          "served %ld requests while the slow clients were mid-request, expected %ld",
          atomic_load(&sl->s.served), (long)sl->nfast * sl->reqs);
    CHECK(atomic_load(&sl->s.open) >= nslow, "%ld connections open, %d slow clients mid-request",
          atomic_load(&sl->s.open), nslow);
    CHECK_RC(weft_chan_close(sl->gate), 0);
    failed = 0;
    for (int i = 0; i < nslow; i++) {
        int rc = -1;
        CHECK_RC(weft_chan_recv(sl->done, &rc, sizeof rc, WEFT_FOREVER), 0);
        failed += rc != 0;
    }
    CHECK(failed == 0, "%ld slow clients failed", failed);
    for (int i = 0; i < nslow; i++) {
        if (i < sl->nslow_procs)
            join_proc(spids[i]);
        else
            pthread_join(sc[i].thread, NULL); /* it has reported: it is at its end */
    }
    long fast_last = -1, slow_first = -1;
    for (int i = 0; i < sl->nfast; i++)
        if (fc[i].my_ticket > fast_last)
            fast_last = fc[i].my_ticket;
    for (int i = 0; i < nslow; i++)
        if (slow_first < 0 || sc[i].my_ticket < slow_first)
            slow_first = sc[i].my_ticket;
    CHECK(fast_last < slow_first, "a slow client finished (ticket %ld) before the last fast one (%ld)",
          slow_first, fast_last);

    server_stop(&sl->s);
    long total = nslow + sl->nfast;
    intptr_t other = 0;
    CHECK(conns_with(&sl->s, 0, atomic_load(&sl->s.nconns), 0, &other) == total,
          "a connection ended with %ld (%s)", (long)other, weft_strerror((int)other));
    CHECK(atomic_load(&sl->s.served) == (long)sl->nfast * sl->reqs + nslow, "served %ld",
          atomic_load(&sl->s.served));
    CHECK_RC(weft_chan_release(sl->mid), 0);
    CHECK_RC(weft_chan_release(sl->done), 0);
    CHECK_RC(weft_chan_release(sl->gate), 0);
    free(sc);
    free(spids);
    free(fc);
    free(fpids);
    server_free(&sl->s);
    CHECK(net_fd_count(NULL, 0) == fds0, "descriptors: %d at main's start, %d at its end", fds0,
          net_fd_count(NULL, 0));
    return 0;
}

Test(net, fast_clients_are_served_while_slow_ones_are_mid_request, .timeout = 240)
{
    net_case_init();
    for (unsigned w = 1; w <= 2; w++) {
        struct slow sl = {.nslow_procs = 8, .nslow_threads = 4,
                          .nfast = (int)scaled(200, 100, 50), .reqs = 5};
        net_run(w, slow_main, &sl, "slow clients");
    }
}

/* ---- clients that vanish mid-request ---------------------------------------------------- */

enum vanish_kind {
    V_CONNECT_CLOSE, /* connects and closes: no request at all */
    V_HALF_FIN,      /* part of a request, then an orderly close */
    V_HALF_RST,      /* part of a request, then a reset */
    V_FULL_FIN,      /* a whole request, closed before the answer is read */
    V_FULL_RST,      /* a whole request, reset before the answer is read */
    V_BULK_RST,      /* asks for 32 MiB, reads 1 KiB of it, resets */
    V_KINDS
};

static const char *const vanish_names[V_KINDS] = {"connect-close", "half-fin", "half-rst",
                                                  "full-fin",      "full-rst", "bulk-rst"};

enum { V_LEN = 100, V_BULK_UNITS = 4096, V_BULK_READ = 1024 };

/* The codes a connection's process may end with, per kind of vanishing. */
static bool vanish_allowed(int kind, intptr_t rc)
{
    switch (kind) {
    case V_CONNECT_CLOSE:
        return rc == 0; /* nothing was sent: a clean end */
    case V_HALF_FIN:
        return rc == -EPIPE; /* the stream ended inside a request */
    case V_HALF_RST:
    case V_BULK_RST:
        return rc == -ECONNRESET || rc == -EPIPE; /* the request, or the answer, cannot finish */
    default:
        return rc == 0 || rc == -ECONNRESET || rc == -EPIPE;
    }
}

/* How much of the request a half-request client sends: part of the
 * payload, or two bytes of the header. */
static size_t vanish_half(unsigned id)
{
    return id % 2 ? 2 : HDR + V_LEN / 2;
}

struct vanish_run;

struct vclient {
    struct vanish_run *v;
    int kind;
    unsigned id;
    pthread_t thread;
    int rc; /* the client's own calls: 0 if they all worked */
};

struct vanish_run {
    struct server s;
    int per_kind; /* clients per kind: half processes, half threads */
    atomic_long threads_done;
    long tally[V_KINDS][4]; /* per kind: ended 0, -EPIPE, -ECONNRESET, other */
};

static void *vanish_thread_main(void *arg)
{
    struct vclient *c = arg;
    uint8_t req[HDR + V_LEN], buf[V_BULK_READ];
    size_t n = make_echo(req, c->id, 0, V_LEN);
    int fd = net_connect_blocking(&c->v->s.addr);
    int rc = fd < 0 ? fd : 0;
    if (rc == 0) {
        switch (c->kind) {
        case V_HALF_FIN:
        case V_HALF_RST:
            rc = net_send_blocking(fd, req, vanish_half(c->id));
            break;
        case V_FULL_FIN:
        case V_FULL_RST:
            rc = net_send_blocking(fd, req, n);
            break;
        case V_BULK_RST:
            put_header(req, OP_BULK, V_BULK_UNITS);
            rc = net_send_blocking(fd, req, HDR);
            if (rc == 0) {
                ssize_t r = net_recv_blocking(fd, buf, sizeof buf);
                rc = r == (ssize_t)sizeof buf ? 0 : r < 0 ? (int)r : -EPIPE;
            }
            break;
        }
        if (c->kind == V_HALF_RST || c->kind == V_FULL_RST || c->kind == V_BULK_RST)
            if (rc == 0)
                rc = net_set_linger0(fd);
        close(fd);
    }
    c->rc = rc;
    atomic_fetch_add(&c->v->threads_done, 1);
    return NULL;
}

static intptr_t vanish_proc_main(void *arg)
{
    struct vclient *c = arg;
    uint8_t req[HDR + V_LEN], buf[V_BULK_READ];
    size_t n = make_echo(req, c->id, 0, V_LEN);
    int64_t limit = test_in_ms(LONG_MS);
    int fd = weft_connect(&c->v->s.addr, limit);
    int rc = fd < 0 ? fd : 0;
    if (rc == 0) {
        ssize_t r = 0, want = 0;
        switch (c->kind) {
        case V_HALF_FIN:
        case V_HALF_RST:
            want = (ssize_t)vanish_half(c->id);
            r = weft_write_all(fd, req, (size_t)want, limit);
            break;
        case V_FULL_FIN:
        case V_FULL_RST:
            want = (ssize_t)n;
            r = weft_write_all(fd, req, n, limit);
            break;
        case V_BULK_RST:
            put_header(req, OP_BULK, V_BULK_UNITS);
            want = HDR;
            r = weft_write_all(fd, req, HDR, limit);
            if (r == HDR) {
                want = sizeof buf;
                r = weft_read_exactly(fd, buf, sizeof buf, limit);
            }
            break;
        }
        rc = r == want ? 0 : r < 0 ? (int)r : -EIO;
        if (c->kind == V_HALF_RST || c->kind == V_FULL_RST || c->kind == V_BULK_RST)
            if (rc == 0)
                rc = net_set_linger0(fd);
        CHECK_RC(weft_fd_close(fd), 0);
    }
    c->rc = rc;
    return 0;
}

/* Each kind in turn: per_kind clients vanish (half of them processes, half
 * plain threads), then every one of their connections' processes must have
 * ended with a code that kind allows; afterwards new clients (with a bulk
 * answer among them) are served in full. */
static intptr_t vanish_main(void *arg)
{
    struct vanish_run *v = arg;
    int nb = v->per_kind;
    int fds0 = net_fd_count(NULL, 0);
    server_start(&v->s, (long)V_KINDS * nb + 64, 0);
    memset(v->tally, 0, sizeof v->tally);
    struct vclient *cl = calloc((size_t)nb, sizeof *cl);
    weft_pid *pids = calloc((size_t)nb, sizeof *pids);
    for (int kind = 0; kind < V_KINDS; kind++) {
        long first = atomic_load(&v->s.nconns), ended0 = atomic_load(&v->s.ended);
        atomic_store(&v->threads_done, 0);
        int nthreads = nb / 2;
        for (int i = 0; i < nb; i++) {
            cl[i] = (struct vclient){.v = v, .kind = kind, .id = (unsigned)(kind * 1000 + i),
                                     .rc = 12345};
            if (i < nthreads)
                CHECK(pthread_create(&cl[i].thread, NULL, vanish_thread_main, &cl[i]) == 0,
                      "pthread_create");
            else
                pids[i] = spawn_on(vanish_proc_main, &cl[i], i, 0);
        }
        for (int i = nthreads; i < nb; i++)
            join_proc(pids[i]);
        CHECK(wait_at_least(&v->threads_done, nthreads), "%s: the client threads hang",
              vanish_names[kind]);
        for (int i = 0; i < nthreads; i++)
            pthread_join(cl[i].thread, NULL);
        for (int i = 0; i < nb; i++)
            CHECK(cl[i].rc == 0, "%s client %d (%s): %d (%s)", vanish_names[kind], i,
                  i < nthreads ? "thread" : "process", cl[i].rc, weft_strerror(cl[i].rc));
        /* Their connections' processes all end, each with a code this kind allows. */
        CHECK(wait_at_least(&v->s.ended, ended0 + nb), "%s: %ld of %d connections ended",
              vanish_names[kind], atomic_load(&v->s.ended) - ended0, nb);
        long last = atomic_load(&v->s.nconns);
        CHECK(last == first + nb, "%s: %ld connections accepted, expected %d", vanish_names[kind],
              last - first, nb);
        for (long i = first; i < last; i++) {
            intptr_t rc = v->s.conns[i].result;
            CHECK(vanish_allowed(kind, rc), "%s: a connection's process ended with %ld (%s)",
                  vanish_names[kind], (long)rc, weft_strerror((int)rc));
            v->tally[kind][rc == 0 ? 0 : rc == -EPIPE ? 1 : rc == -ECONNRESET ? 2 : 3]++;
        }
        if (atomic_load(&check_failures))
            break;
    }
    /* The server goes on serving. */
    long first = atomic_load(&v->s.nconns);
    long failed = run_plain_clients(&v->s.addr, 20, 500000, 5, 64);
    CHECK(failed == 0, "%ld clients after the vanished ones failed", failed);
    server_stop(&v->s);
    intptr_t other = 0;
    long n = atomic_load(&v->s.nconns);
    CHECK(conns_with(&v->s, first, n, 0, &other) == n - first,
          "a connection after the vanished ones ended with %ld (%s)", (long)other,
          weft_strerror((int)other));
    free(cl);
    free(pids);
    server_free(&v->s);
    CHECK(net_fd_count(NULL, 0) == fds0, "descriptors: %d at main's start, %d at its end", fds0,
          net_fd_count(NULL, 0));
    return 0;
}

Test(net, clients_vanishing_mid_request_end_only_their_connections, .timeout = 240)
{
    net_case_init();
    for (unsigned w = 1; w <= 2; w++) {
        struct vanish_run v = {.per_kind = (int)scaled(40, 20, 12)};
        net_run(w, vanish_main, &v, "vanishing clients");
        fprintf(stderr, "test-net: vanishing clients at %u workers, connections ended with "
                        "0/-EPIPE/-ECONNRESET/other:", w);
        for (int k = 0; k < V_KINDS; k++)
            fprintf(stderr, " %s %ld/%ld/%ld/%ld", vanish_names[k], v.tally[k][0], v.tally[k][1],
                    v.tally[k][2], v.tally[k][3]);
        fputc('\n', stderr);
    }
}

/* ---- deadlines that expire mid-read --------------------------------------------------------- */

struct stall_run {
    struct server s;
    int nprocs, nthreads; /* stalled clients */
    int nnormal;
    unsigned reqs;
    weft_chan stalled;        /* a stalled client has sent its part */
    atomic_long threads_done;
};

struct stall_client {
    struct stall_run *st;
    unsigned id;
    pthread_t thread;
    int rc;
};

/* Sends part of a request, then waits for the server to give up on it: the
 * end of the stream, no sooner than the server's read deadline after the
 * part was sent. */
static intptr_t stall_proc_main(void *arg)
{
    struct stall_client *c = arg;
    struct stall_run *st = c->st;
    uint8_t req[HDR + V_LEN];
    make_echo(req, c->id, 0, V_LEN);
    int64_t limit = test_in_ms(LONG_MS);
    int fd = weft_connect(&st->s.addr, limit);
    int rc = fd < 0 ? fd : 0;
    int64_t t0 = weft_now();
    if (rc == 0) {
        ssize_t r = weft_write_all(fd, req, vanish_half(c->id), limit);
        rc = r == (ssize_t)vanish_half(c->id) ? 0 : r < 0 ? (int)r : -EIO;
    }
    CHECK_RC(weft_chan_send(st->stalled, &rc, sizeof rc, WEFT_FOREVER), 0);
    if (rc == 0) {
        char b;
        ssize_t r = weft_read(fd, &b, 1, limit);
        rc = r == 0 ? 0 : r < 0 ? (int)r : -EBADMSG;
        int64_t took = weft_now() - t0;
        CHECK(rc != 0 || took >= st->s.req_ns, "the server closed %lld ns after the request began, "
              "its deadline is %lld ns", (long long)took, (long long)st->s.req_ns);
    }
    if (fd >= 0)
        CHECK_RC(weft_fd_close(fd), 0);
    c->rc = rc;
    return 0;
}

static void *stall_thread_main(void *arg)
{
    struct stall_client *c = arg;
    struct stall_run *st = c->st;
    uint8_t req[HDR + V_LEN];
    make_echo(req, c->id, 0, V_LEN);
    int fd = net_connect_blocking(&st->s.addr);
    int rc = fd < 0 ? fd : 0;
    int64_t t0 = weft_now();
    if (rc == 0)
        rc = net_send_blocking(fd, req, vanish_half(c->id));
    CHECK_RC(weft_chan_send(st->stalled, &rc, sizeof rc, WEFT_FOREVER), 0);
    if (rc == 0) {
        char b;
        ssize_t r = recv(fd, &b, 1, 0);
        rc = r == 0 ? 0 : r < 0 ? -errno : -EBADMSG;
        int64_t took = weft_now() - t0;
        CHECK(rc != 0 || took >= st->s.req_ns, "the server closed %lld ns after the request began, "
              "its deadline is %lld ns", (long long)took, (long long)st->s.req_ns);
    }
    if (fd >= 0)
        close(fd);
    c->rc = rc;
    atomic_fetch_add(&st->threads_done, 1);
    CHECK_RC(weft_thread_detach(), 0);
    return NULL;
}

/* Stalled clients (processes and threads) send part of a request and stop;
 * normal clients are served meanwhile; each stalled connection's process
 * ends with -ETIMEDOUT after the deadline and closes its socket (the client
 * sees the end of the stream); clients that come afterwards are served. */
static intptr_t stall_main(void *arg)
{
    struct stall_run *st = arg;
    int nstall = st->nprocs + st->nthreads;
    int fds0 = net_fd_count(NULL, 0);
    server_start(&st->s, nstall + 2L * st->nnormal + 8, st->s.req_ns);
    st->stalled = make_chan(sizeof(int), (size_t)nstall);
    atomic_store(&st->threads_done, 0);
    struct stall_client *sc = calloc((size_t)nstall, sizeof *sc);
    weft_pid *pids = calloc((size_t)nstall, sizeof *pids);
    for (int i = 0; i < nstall; i++) {
        sc[i] = (struct stall_client){.st = st, .id = 200000u + (unsigned)i, .rc = 12345};
        if (i < st->nprocs) {
            pids[i] = spawn_on(stall_proc_main, &sc[i], i, 0);
        } else {
            CHECK_RC(weft_thread_attach(), 0);
            CHECK(pthread_create(&sc[i].thread, NULL, stall_thread_main, &sc[i]) == 0, "pthread_create");
        }
    }
    for (int i = 0; i < nstall; i++) {
        int rc = -1;
        CHECK_RC(weft_chan_recv(st->stalled, &rc, sizeof rc, WEFT_FOREVER), 0);
        CHECK(rc == 0, "a stalled client failed to send its part: %d (%s)", rc, weft_strerror(rc));
    }
    /* Normal clients while the stalled ones wait for their deadline. */
    long failed = run_plain_clients(&st->s.addr, st->nnormal, 0, st->reqs, 0);
    CHECK(failed == 0, "%ld clients beside the stalled ones failed", failed);
    for (int i = 0; i < st->nprocs; i++)
        join_proc(pids[i]);
    CHECK(wait_at_least(&st->threads_done, st->nthreads), "the stalled threads hang");
    for (int i = st->nprocs; i < nstall; i++)
        pthread_join(sc[i].thread, NULL);
    for (int i = 0; i < nstall; i++)
        CHECK(sc[i].rc == 0, "stalled client %d (%s): %d (%s), expected the end of the stream", i,
              i < st->nprocs ? "process" : "thread", sc[i].rc, weft_strerror(sc[i].rc));
    /* And after the timeouts. */
    failed = run_plain_clients(&st->s.addr, st->nnormal, 1000, st->reqs, 0);
    CHECK(failed == 0, "%ld clients after the stalled ones failed", failed);
    server_stop(&st->s);
    long n = atomic_load(&st->s.nconns);
    long timed_out = conns_with(&st->s, 0, n, -ETIMEDOUT, NULL);
    long clean = conns_with(&st->s, 0, n, 0, NULL);
    CHECK(timed_out == nstall, "%ld connections timed out, %d stalled", timed_out, nstall);
    CHECK(clean == n - nstall, "%ld connections ended cleanly, expected %ld", clean, n - nstall);
    CHECK(atomic_load(&st->s.served) == 2L * st->nnormal * st->reqs, "served %ld",
          atomic_load(&st->s.served));
    CHECK_RC(weft_chan_release(st->stalled), 0);
    free(sc);
    free(pids);
    server_free(&st->s);
    CHECK(net_fd_count(NULL, 0) == fds0, "descriptors: %d at main's start, %d at its end", fds0,
          net_fd_count(NULL, 0));
    return 0;
}

Test(net, read_deadline_mid_request_closes_only_the_stalled_connections, .timeout = 240)
{
    net_case_init();
    for (unsigned w = 1; w <= 2; w++) {
        struct stall_run st = {.nprocs = 6, .nthreads = 4, .nnormal = (int)scaled(50, 30, 20),
                               .reqs = 10};
        st.s.req_ns = 150 * MS;
        net_run(w, stall_main, &st, "stalled clients");
    }
}

/* ---- running out of descriptors ------------------------------------------------------------- */

enum { EXH_EXISTING = 3, EXH_FREE = 5, EXH_QUEUED = 5, EXH_CLIENTS = EXH_FREE + EXH_QUEUED };

struct exhaust {
    struct server s;
    weft_chan answered; /* a client's id, each time one has an answer */
    weft_chan gate1;    /* closed when the descriptors have run out: existing clients ask again */
    weft_chan gate2;    /* closed to let the answered clients close */
    int socks[EXH_CLIENTS]; /* made before the limit is lowered, connected after */
    struct rlimit saved;
    long soft;          /* the lowered limit */
};

struct exh_client {
    struct exhaust *e;
    unsigned id;
    int fd; /* a made socket, or -1: connect with weft_connect */
};

static void exh_report(struct exhaust *e, unsigned id)
{
    int v = (int)id;
    CHECK_RC(weft_chan_send(e->answered, &v, sizeof v, WEFT_FOREVER), 0);
}

/* Connected before the descriptors run out; asks once, then again while
 * they are out, then closes. */
static intptr_t exh_existing_main(void *arg)
{
    struct exh_client *c = arg;
    struct exhaust *e = c->e;
    int64_t limit = test_in_ms(LONG_MS);
    int fd = weft_connect(&e->s.addr, limit);
    CHECK(fd >= 0, "weft_connect: %d (%s)", fd, weft_strerror(fd));
    if (fd < 0)
        return fd;
    CHECK_RC(echo_request(fd, c->id, 0, echo_len(c->id, 0), limit), 0);
    exh_report(e, c->id);
    char g;
    CHECK_RC(weft_chan_recv(e->gate1, &g, 1, WEFT_FOREVER), -EPIPE);
    CHECK_RC(echo_request(fd, c->id, 1, echo_len(c->id, 1), limit), 0);
    exh_report(e, c->id);
    CHECK_RC(weft_chan_recv(e->gate2, &g, 1, WEFT_FOREVER), -EPIPE);
    CHECK_RC(weft_fd_close(fd), 0);
    return 0;
}

/* Connects its socket made beforehand (so that only the server's accepts
 * need descriptors), asks, reports the answer, closes after gate2. */
static intptr_t exh_new_main(void *arg)
{
    struct exh_client *c = arg;
    struct exhaust *e = c->e;
    int64_t limit = test_in_ms(LONG_MS);
    int fd = c->fd;
    int rc = 0;
    if (connect(fd, WEFT_ADDR_SOCKADDR(&e->s.addr), (socklen_t)e->s.addr.len) != 0) {
        rc = -errno;
        if (rc == -EINPROGRESS) {
            int ev = weft_fd_wait(fd, WEFT_FD_WRITE, limit);
            int err = 0;
            socklen_t len = sizeof err;
            CHECK(ev > 0 && (ev & WEFT_FD_WRITE), "weft_fd_wait for the connection: %d", ev);
            CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0, "getsockopt");
            rc = -err;
        }
    }
    CHECK(rc == 0, "client %u: connect: %d (%s)", c->id, rc, weft_strerror(rc));
    if (rc == 0) {
        rc = echo_request(fd, c->id, 0, echo_len(c->id, 0), limit);
        CHECK(rc == 0, "client %u: %d (%s)", c->id, rc, weft_strerror(rc));
    }
    exh_report(e, c->id);
    char g;
    CHECK_RC(weft_chan_recv(e->gate2, &g, 1, WEFT_FOREVER), -EPIPE);
    CHECK_RC(weft_fd_close(fd), 0);
    return rc;
}

/* Lowers the soft RLIMIT_NOFILE so that exactly `free_fds` descriptors can
 * still be opened: fills the gaps below the highest open descriptor with
 * /dev/null (returned in fillers, to close later) and sets the limit that
 * many above it. Returns the number of fillers, or -1. */
static int exh_lower_limit(struct exhaust *e, int free_fds, int *fillers, int max_fillers)
{
    enum { MAXFDS = 4096 };
    static int open_fds[MAXFDS];
    int n = net_fd_list(open_fds, MAXFDS);
    if (n < 1 || n > MAXFDS)
        return -1;
    int nf = 0;
    for (int i = 0, want = 0; i < n; want = open_fds[i++] + 1)
        for (int fd = want; fd < open_fds[i]; fd++) {
            if (nf == max_fillers)
                return -1;
            int f = open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (f != fd) { /* something else opened descriptors meanwhile */
                if (f >= 0)
                    close(f);
                for (int k = 0; k < nf; k++)
                    close(fillers[k]);
                return -1;
            }
            fillers[nf++] = f;
        }
    CHECK(getrlimit(RLIMIT_NOFILE, &e->saved) == 0, "getrlimit");
    struct rlimit rl = e->saved;
    rl.rlim_cur = (rlim_t)open_fds[n - 1] + 1 + (rlim_t)free_fds;
    e->soft = (long)rl.rlim_cur;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit(%ld): %s", e->soft, strerror(errno));
    return nf;
}

/* Existing clients are connected and served. Then the soft limit is
 * lowered so that the server can accept EXH_FREE more connections, and
 * EXH_CLIENTS new ones arrive (their sockets made beforehand): the server
 * accepts exactly EXH_FREE, then its accept fails with -EMFILE and the rest
 * stay queued; the existing clients are still served meanwhile. Once the
 * answered clients close, the queued ones are accepted and served. */
static intptr_t exhaust_main(void *arg)
{
    struct exhaust *e = arg;
    int fds0 = net_fd_count(NULL, 0);
    server_start(&e->s, EXH_EXISTING + EXH_CLIENTS + 8, 0);
    e->answered = make_chan(sizeof(int), 64);
    e->gate1 = make_chan(1, 0);
    e->gate2 = make_chan(1, 0);
    struct exh_client old[EXH_EXISTING], fresh[EXH_CLIENTS];
    weft_pid old_pids[EXH_EXISTING], fresh_pids[EXH_CLIENTS];
    for (int i = 0; i < EXH_EXISTING; i++) {
        old[i] = (struct exh_client){.e = e, .id = (unsigned)i, .fd = -1};
        old_pids[i] = spawn_on(exh_existing_main, &old[i], i, 0);
    }
    for (int i = 0; i < EXH_EXISTING; i++) {
        int id = -1;
        CHECK_RC(weft_chan_recv(e->answered, &id, sizeof id, WEFT_FOREVER), 0);
    }
    for (int i = 0; i < EXH_CLIENTS; i++) {
        e->socks[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        CHECK(e->socks[i] >= 0, "socket: %s", strerror(errno));
    }
    int fillers[256];
    int nfill = exh_lower_limit(e, EXH_FREE, fillers, 256);
    CHECK(nfill >= 0, "could not lower the descriptor limit");
    if (nfill < 0)
        return 1;
    long accepted0 = atomic_load(&e->s.accepted);

    for (int i = 0; i < EXH_CLIENTS; i++) {
        fresh[i] = (struct exh_client){.e = e, .id = 100u + (unsigned)i, .fd = e->socks[i]};
        fresh_pids[i] = spawn_on(exh_new_main, &fresh[i], i, 0);
    }
    CHECK_RC(weft_chan_close(e->gate1), 0);
    /* The existing clients' second answers, and the EXH_FREE accepted ones'. */
    int old_answers = 0, new_answers = 0;
    for (int i = 0; i < EXH_EXISTING + EXH_FREE; i++) {
        int id = -1;
        CHECK_RC(weft_chan_recv(e->answered, &id, sizeof id, WEFT_FOREVER), 0);
        if (id < 100)
            old_answers++;
        else
            new_answers++;
    }
    CHECK(old_answers == EXH_EXISTING && new_answers == EXH_FREE,
          "answers while out of descriptors: %d existing (expected %d), %d new (expected %d)",
          old_answers, EXH_EXISTING, new_answers, EXH_FREE);
    CHECK(wait_at_least(&e->s.emfile, 1), "the server's accept never failed with -EMFILE "
          "(limit %ld, %ld accepted)", e->soft, atomic_load(&e->s.accepted) - accepted0);
    /* Out of descriptors, nothing more is accepted and no queued client is
     * answered, however long the acceptor retries. */
    long emfile0 = atomic_load(&e->s.emfile);
    CHECK(wait_at_least(&e->s.emfile, emfile0 + 3), "the acceptor stopped retrying");
    CHECK(atomic_load(&e->s.accepted) - accepted0 == EXH_FREE,
          "accepted %ld with %d descriptors free", atomic_load(&e->s.accepted) - accepted0, EXH_FREE);
    CHECK(weft_chan_len(e->answered) == 0, "%d queued clients answered with no descriptor free",
          weft_chan_len(e->answered));
    /* The answered clients close; the queued ones are accepted and served. */
    CHECK_RC(weft_chan_close(e->gate2), 0);
    for (int i = 0; i < EXH_QUEUED; i++) {
        int id = -1;
        CHECK_RC(weft_chan_recv(e->answered, &id, sizeof id, WEFT_FOREVER), 0);
        CHECK(id >= 100, "an existing client answered twice more");
    }
    CHECK(atomic_load(&e->s.accepted) - accepted0 == EXH_CLIENTS, "accepted %ld of %d",
          atomic_load(&e->s.accepted) - accepted0, EXH_CLIENTS);
    for (int i = 0; i < EXH_CLIENTS; i++)
        CHECK(join_proc(fresh_pids[i]) == 0, "new client %d failed", i);
    for (int i = 0; i < EXH_EXISTING; i++)
        CHECK(join_proc(old_pids[i]) == 0, "existing client %d failed", i);
    CHECK(setrlimit(RLIMIT_NOFILE, &e->saved) == 0, "restoring RLIMIT_NOFILE: %s", strerror(errno));
    for (int i = 0; i < nfill; i++)
        close(fillers[i]);
    server_stop(&e->s);
    long n = atomic_load(&e->s.nconns);
    intptr_t other = 0;
    CHECK(conns_with(&e->s, 0, n, 0, &other) == n, "a connection ended with %ld (%s)", (long)other,
          weft_strerror((int)other));
    CHECK(n == EXH_EXISTING + EXH_CLIENTS, "%ld connections", n);
    CHECK_RC(weft_chan_release(e->answered), 0);
    CHECK_RC(weft_chan_release(e->gate1), 0);
    CHECK_RC(weft_chan_release(e->gate2), 0);
    server_free(&e->s);
    CHECK(net_fd_count(NULL, 0) == fds0, "descriptors: %d at main's start, %d at its end", fds0,
          net_fd_count(NULL, 0));
    return 0;
}

Test(net, out_of_descriptors_the_server_serves_its_connections_and_accepts_later, .timeout = 240)
{
    net_case_init();
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    for (unsigned w = 1; w <= 2; w++) {
        struct exhaust e;
        memset(&e, 0, sizeof e);
        net_run(w, exhaust_main, &e, "descriptor exhaustion");
        fprintf(stderr, "test-net: out of descriptors at %u workers: soft limit %ld, accept failed "
                        "with -EMFILE %ld times, %ld connections served\n", w, e.soft,
                atomic_load(&e.s.emfile), atomic_load(&e.s.nconns));
        struct rlimit now;
        cr_assert_eq(getrlimit(RLIMIT_NOFILE, &now), 0);
        cr_assert_eq(now.rlim_cur, rl.rlim_cur, "the limit was not restored");
    }
}

/* ---- many processes waiting on one descriptor ---------------------------------------------- */

struct wround {
    int fd;
    int events;
    atomic_int started;
    atomic_int returned;
};

struct waiter {
    struct wround *r;
    int64_t deadline;
    int rc;
};

static intptr_t waiter_main(void *arg)
{
    struct waiter *w = arg;
    atomic_fetch_add(&w->r->started, 1);
    w->rc = weft_fd_wait(w->r->fd, w->r->events, w->deadline);
    atomic_fetch_add(&w->r->returned, 1);
    return 0;
}

/* A non-blocking pipe (kind 0) or Unix socket pair (kind 1): fds[0] is the
 * end waited on for reading, fds[1] the one written. */
static void make_pair(int kind, int fds[2])
{
    if (kind == 0)
        CHECK(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
    else
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0,
              "socketpair: %s", strerror(errno));
}

static void put_byte(int fd)
{
    char b = 'x';
    CHECK(write(fd, &b, 1) == 1, "write: %s", strerror(errno));
}

static void take_byte(int fd)
{
    char b;
    CHECK(read(fd, &b, 1) == 1, "read: %s", strerror(errno));
}

/* Spawns n waiters on r (spread over the workers). */
static void spawn_waiters(struct wround *r, struct waiter *w, weft_pid *pids, int n, int64_t deadline)
{
    atomic_store(&r->started, 0);
    atomic_store(&r->returned, 0);
    for (int i = 0; i < n; i++) {
        w[i] = (struct waiter){.r = r, .deadline = deadline, .rc = 12345};
        pids[i] = spawn_on(waiter_main, &w[i], i, 0);
    }
}

/* Waits until all n waiters have started, then a little longer so that
 * most are inside weft_fd_wait (the checks hold whether they are or not);
 * none may have returned. */
static void waiters_settle(struct wround *r, int n, const char *when)
{
    while (atomic_load(&r->started) < n)
        weft_yield();
    weft_sleep(weft_now() + 2 * MS);
    CHECK(atomic_load(&r->returned) == 0, "%s: %d waiters returned with nothing ready", when,
          atomic_load(&r->returned));
}

/* Joins the n waiters; each must have returned want. */
static void join_waiters(struct waiter *w, weft_pid *pids, int n, int want, const char *when)
{
    int bad = 0, first = 0;
    for (int i = 0; i < n; i++) {
        join_proc(pids[i]);
        if (w[i].rc != want && bad++ == 0)
            first = w[i].rc;
    }
    CHECK(bad == 0, "%s: %d of %d waiters returned something else than %d (%s); first %d (%s)", when,
          bad, n, want, weft_strerror(want), first, weft_strerror(first));
}

struct forget_run {
    int n;
    int kind;
    struct waiter *w;
    weft_pid *pids;
};

/* Runs pinned to its worker, with its waiters pinned there too: as
 * processes run until they block, every waiter that has started is inside
 * weft_fd_wait once the driver runs again, so the forget cannot come before
 * a wait (a wait begun after the forget would register the descriptor
 * anew, and its plain close(2) would strand the waiter). n waiters are all
 * woken by one write; weft_fd_forget wakes the next n with -EBADF and
 * leaves the descriptor open and usable; after a plain close(2), a new
 * descriptor of the same number is waited on afresh. */
static intptr_t forget_driver_main(void *arg)
{
    struct forget_run *f = arg;
    int n = f->n, me = weft_worker_id();
    int p[2], t[2];
    make_pair(f->kind, p);
    make_pair(f->kind, t);
    struct wround r = {.fd = p[0], .events = WEFT_FD_READ};
    for (int phase = 0; phase < 2; phase++) {
        atomic_store(&r.started, 0);
        atomic_store(&r.returned, 0);
        for (int i = 0; i < n; i++) {
            f->w[i] = (struct waiter){.r = &r, .deadline = WEFT_FOREVER, .rc = 12345};
            f->pids[i] = spawn_on(waiter_main, &f->w[i], me, 1);
        }
        while (atomic_load(&r.started) < n)
            weft_yield();
        CHECK(atomic_load(&r.returned) == 0, "pinned: %d waiters returned with nothing ready",
              atomic_load(&r.returned));
        if (phase == 0) {
            put_byte(p[1]);
            join_waiters(f->w, f->pids, n, WEFT_FD_READ, "pinned, woken by one write");
            take_byte(p[0]);
        } else {
            CHECK_RC(weft_fd_forget(p[0]), 0);
            join_waiters(f->w, f->pids, n, -EBADF, "forgotten while waited on");
        }
    }
    CHECK(fcntl(p[0], F_GETFD) >= 0, "weft_fd_forget closed the descriptor");
    put_byte(p[1]);
    CHECK(weft_fd_wait(p[0], WEFT_FD_READ, test_in_ms(LONG_MS)) == WEFT_FD_READ,
          "waiting on a forgotten descriptor again");
    take_byte(p[0]);
    CHECK_RC(weft_fd_forget(p[0]), 0);
    int num = p[0];
    close(num); /* forgotten: a plain close is allowed */
    CHECK(dup3(t[0], num, O_CLOEXEC) == num, "dup3: %s", strerror(errno));
    close(t[0]); /* never waited on */
    atomic_store(&r.started, 0);
    atomic_store(&r.returned, 0);
    for (int i = 0; i < n; i++) {
        f->w[i] = (struct waiter){.r = &r, .deadline = WEFT_FOREVER, .rc = 12345};
        f->pids[i] = spawn_on(waiter_main, &f->w[i], me, 1);
    }
    while (atomic_load(&r.started) < n)
        weft_yield();
    CHECK(atomic_load(&r.returned) == 0, "%d waiters on the new descriptor returned at once",
          atomic_load(&r.returned));
    put_byte(t[1]);
    join_waiters(f->w, f->pids, n, WEFT_FD_READ, "a new descriptor after forget and close");
    CHECK_RC(weft_fd_close(num), 0);
    CHECK_RC(weft_fd_close(t[1]), 0);
    CHECK_RC(weft_fd_close(p[1]), 0);
    return 0;
}

/* A reader of one byte: w->rc is the byte, or the error. */
static intptr_t reader_main(void *arg)
{
    struct waiter *w = arg;
    uint8_t b = 0;
    ssize_t r = weft_read(w->r->fd, &b, 1, WEFT_FOREVER);
    w->rc = r == 1 ? b : r < 0 ? (int)r : -EIO;
    return 0;
}

static void spawn_readers(int fd, struct waiter *w, weft_pid *pids, int n)
{
    static struct wround r; /* only its fd is read */
    r.fd = fd;
    for (int i = 0; i < n; i++) {
        w[i] = (struct waiter){.r = &r, .rc = 12345};
        pids[i] = spawn_on(reader_main, &w[i], i, 0);
    }
}

/* Joins n readers of bytes 0..n-1 (n <= 256): each byte read once. */
static void join_readers(struct waiter *w, weft_pid *pids, int n)
{
    int seen[256] = {0}, bad = 0;
    for (int i = 0; i < n; i++) {
        join_proc(pids[i]);
        if (w[i].rc >= 0 && w[i].rc < n)
            seen[w[i].rc]++;
        else if (bad++ == 0)
            check_fail(__LINE__, "a competing reader got %d (%s)", w[i].rc, weft_strerror(w[i].rc));
    }
    for (int b = 0; b < n && !bad; b++)
        if (seen[b] != 1 && bad++ == 0)
            check_fail(__LINE__, "byte %d was read %d times", b, seen[b]);
}

struct many_waiters {
    int n;
    int rounds;
};

/* On a pipe and on a socket pair, alternately: one write wakes every waiter
 * with WEFT_FD_READ; while the byte is unread, new waiters return at once;
 * once it is read they wait again until the next write; weft_fd_close then
 * wakes every one with -EBADF. A descriptor of another number keeps its
 * waiters through that close, and a new descriptor given the closed one's
 * number (dup3 onto it) is waited on afresh. Then forget_driver_main. */
static intptr_t many_waiters_main(void *arg)
{
    struct many_waiters *mw = arg;
    int n = mw->n;
    int fds0 = net_fd_count(NULL, 0);
    struct waiter *w = calloc((size_t)n, sizeof *w), *w2 = calloc((size_t)n, sizeof *w2);
    weft_pid *pids = calloc((size_t)n, sizeof *pids), *pids2 = calloc((size_t)n, sizeof *pids2);
    for (int round = 0; round < mw->rounds && !atomic_load(&check_failures); round++) {
        int kind = round % 2, p[2], q[2];
        make_pair(kind, p);
        make_pair(kind, q);
        struct wround r = {.fd = p[0], .events = WEFT_FD_READ};
        struct wround r2 = {.fd = q[0], .events = WEFT_FD_READ};

        spawn_waiters(&r, w, pids, n, WEFT_FOREVER);
        waiters_settle(&r, n, "before the write");
        put_byte(p[1]);
        join_waiters(w, pids, n, WEFT_FD_READ, "woken by one write");

        spawn_waiters(&r, w, pids, n, WEFT_FOREVER); /* the byte is still there */
        join_waiters(w, pids, n, WEFT_FD_READ, "while readable");

        take_byte(p[0]);
        spawn_waiters(&r, w, pids, n, WEFT_FOREVER);
        waiters_settle(&r, n, "after the byte was read");
        put_byte(p[1]);
        join_waiters(w, pids, n, WEFT_FD_READ, "woken by the second write");
        take_byte(p[0]);

        /* n readers compete for n bytes written one at a time: each byte
         * is read exactly once, and every reader gets one (a reader woken
         * for a byte another took waits again). */
        spawn_readers(p[0], w, pids, n);
        for (int i = 0; i < n; i++) {
            uint8_t b = (uint8_t)i;
            CHECK(write(p[1], &b, 1) == 1, "write: %s", strerror(errno));
            if (i % 3 == 0)
                weft_yield();
        }
        join_readers(w, pids, n);

        /* Close while they wait on p[0], with others waiting on q[0]. A
         * pair made first will lend its read end to p[0]'s number. */
        int t[2];
        make_pair(kind, t);
        int num = p[0];
        spawn_waiters(&r, w, pids, n, WEFT_FOREVER);
        spawn_waiters(&r2, w2, pids2, n, WEFT_FOREVER);
        waiters_settle(&r, n, "before the close");
        CHECK_RC(weft_fd_close(num), 0);
        join_waiters(w, pids, n, -EBADF, "closed while waited on");
        weft_sleep(weft_now() + 1 * MS);
        CHECK(atomic_load(&r2.returned) == 0, "%d waiters on another descriptor woke at the close",
              atomic_load(&r2.returned));
        put_byte(q[1]);
        join_waiters(w2, pids2, n, WEFT_FD_READ, "the other descriptor, after the close");
        take_byte(q[0]);
        CHECK_RC(weft_fd_wait(num, WEFT_FD_READ, 0), -EBADF); /* closed: not open */
        CHECK_RC(weft_fd_close(num), -EBADF);

        /* A new descriptor with the closed one's number is waited on afresh. */
        CHECK(dup3(t[0], num, O_CLOEXEC) == num, "dup3: %s", strerror(errno));
        close(t[0]); /* never waited on */
        spawn_waiters(&r, w, pids, n, WEFT_FOREVER);
        waiters_settle(&r, n, "on the number reused");
        put_byte(t[1]);
        join_waiters(w, pids, n, WEFT_FD_READ, "the number reused");
        take_byte(num);
        CHECK_RC(weft_fd_close(num), 0);
        CHECK_RC(weft_fd_close(t[1]), 0);
        CHECK_RC(weft_fd_close(p[1]), 0);
        CHECK_RC(weft_fd_close(q[0]), 0);
        CHECK_RC(weft_fd_close(q[1]), 0);

        /* weft_fd_forget, from a process pinned with its waiters. */
        struct forget_run f = {.n = n, .kind = kind, .w = w, .pids = pids};
        weft_pid fp = spawn_on(forget_driver_main, &f, round, 1);
        CHECK(join_proc(fp) == 0, "the forget driver failed");
    }
    free(w);
    free(w2);
    free(pids);
    free(pids2);
    CHECK(net_fd_count(NULL, 0) == fds0, "descriptors: %d at main's start, %d at its end", fds0,
          net_fd_count(NULL, 0));
    return 0;
}

Test(net, many_processes_waiting_on_one_descriptor_all_wake, .timeout = 240)
{
    net_case_init();
    for (unsigned w = 1; w <= 2; w++) {
        struct many_waiters mw = {.n = 100, .rounds = (int)scaled(20, 10, 6)};
        net_run(w, many_waiters_main, &mw, "many waiters");
    }
}

/* Closes a descriptor through weft from its own process. */
static intptr_t closer_main(void *arg)
{
    return weft_fd_close(*(int *)arg);
}

struct close_race {
    int n;
    int rounds;
};

/* Round after round, n processes wait on one descriptor (a pipe or a
 * socket pair) and it is closed while they wait, or while some are still
 * getting there: at once, after a yield, once all have started, or a
 * little after that; by main or by a process on another worker. Every
 * waiter returns -EBADF (those with a short deadline may time out first);
 * none hangs. */
static intptr_t close_race_main(void *arg)
{
    struct close_race *cr = arg;
    int n = cr->n;
    int fds0 = net_fd_count(NULL, 0);
    struct waiter *w = calloc((size_t)n, sizeof *w);
    weft_pid *pids = calloc((size_t)n, sizeof *pids);
    long bad = 0;
    for (int round = 0; round < cr->rounds && bad == 0; round++) {
        atomic_store(&net_progress, round);
        int p[2];
        make_pair(round % 2, p);
        struct wround r = {.fd = p[0], .events = WEFT_FD_READ};
        atomic_store(&r.started, 0);
        atomic_store(&r.returned, 0);
        for (int i = 0; i < n; i++) {
            /* One waiter in 8 has a deadline of about a millisecond. */
            w[i] = (struct waiter){.r = &r, .rc = 12345,
                                   .deadline = i % 8 == 7 ? weft_now() + 1 * MS : WEFT_FOREVER};
            pids[i] = spawn_on(waiter_main, &w[i], i, 0);
        }
        switch ((round / 2) % 4) {
        case 0:
            break;
        case 1:
            weft_yield();
            break;
        case 2:
            while (atomic_load(&r.started) < n)
                weft_yield();
            break;
        case 3:
            while (atomic_load(&r.started) < n)
                weft_yield();
            weft_sleep(weft_now() + 1 * MS);
            break;
        }
        int fd = p[0];
        if ((round / 8) % 2 == 0) {
            intptr_t rc = closer_main(&fd);
            CHECK(rc == 0, "round %d: closing: %ld", round, (long)rc);
        } else {
            weft_pid cp = spawn_on(closer_main, &fd, weft_worker_id() + 1, 0);
            CHECK(join_proc(cp) == 0, "round %d: the closer failed", round);
        }
        /* Every waiter returns: the join has no deadline, but the watchdog
         * reports a hang. */
        for (int i = 0; i < n; i++) {
            join_proc(pids[i]);
            bool ok = w[i].rc == -EBADF || (i % 8 == 7 && w[i].rc == -ETIMEDOUT);
            if (!ok && bad++ == 0)
                check_fail(__LINE__, "round %d (%s): waiter %d returned %d (%s), expected -EBADF",
                           round, round % 2 ? "socket pair" : "pipe", i, w[i].rc,
                           weft_strerror(w[i].rc));
        }
        CHECK_RC(weft_fd_close(p[1]), 0);
    }
    free(w);
    free(pids);
    CHECK(net_fd_count(NULL, 0) == fds0, "descriptors: %d at main's start, %d at its end", fds0,
          net_fd_count(NULL, 0));
    return 0;
}

Test(net, close_while_many_wait_wakes_every_waiter_with_ebadf, .timeout = 240)
{
    net_case_init();
    for (unsigned w = 1; w <= 2; w++) {
        struct close_race cr = {.n = (int)scaled(100, 50, 30), .rounds = (int)scaled(200, 200, 100)};
        net_run(w, close_race_main, &cr, "close while waiting");
    }
}

/* ---- a close wakes every kind of waiter ------------------------------------------------------ */

enum { BW_ACCEPT, BW_READ, BW_READ_EXACTLY, BW_WRITE_ALL, BW_WAIT_WRITE, BW_SELECT, BW_KINDS };

static const char *const bw_names[BW_KINDS] = {"weft_accept", "weft_read", "weft_read_exactly",
                                               "weft_write_all", "weft_fd_wait(WRITE)",
                                               "weft_select"};

struct blocked {
    int kind;
    int fd;
    weft_chan ch;
    atomic_int *started;
    int rc;
};

static intptr_t blocked_main(void *arg)
{
    struct blocked *b = arg;
    static char big[1 << 20]; /* only read from */
    char buf[64];
    atomic_fetch_add(b->started, 1);
    switch (b->kind) {
    case BW_ACCEPT:
        b->rc = weft_accept(b->fd, NULL, WEFT_FOREVER);
        break;
    case BW_READ:
        b->rc = (int)weft_read(b->fd, buf, sizeof buf, WEFT_FOREVER);
        break;
    case BW_READ_EXACTLY:
        b->rc = (int)weft_read_exactly(b->fd, buf, sizeof buf, WEFT_FOREVER);
        break;
    case BW_WRITE_ALL:
        b->rc = (int)weft_write_all(b->fd, big, sizeof big, WEFT_FOREVER);
        break;
    case BW_WAIT_WRITE:
        b->rc = weft_fd_wait(b->fd, WEFT_FD_WRITE, WEFT_FOREVER);
        break;
    case BW_SELECT: {
        int v;
        weft_case cases[] = {WEFT_FD_CASE(b->fd, WEFT_FD_READ), WEFT_RECV(b->ch, &v)};
        int i = weft_select(cases, 2, WEFT_SELECT_FAIR, WEFT_FOREVER);
        b->rc = i == 0 ? cases[0].result : i < 0 ? i : 1000 + i;
        break;
    }
    }
    return 0;
}

/* Fills the send buffer of a socket so that writes must wait. */
static void fill_socket(int fd)
{
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    static char junk[65536];
    while (send(fd, junk, sizeof junk, MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
    }
    while (send(fd, junk, 1, MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
    }
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK, "filling a socket: %s", strerror(errno));
}

struct close_kinds {
    int rounds;
    int per_kind;
};

/* Processes blocked in weft_accept (a listening socket), weft_read and
 * weft_read_exactly (a connected socket with nothing to read), select on
 * that socket beside a channel, weft_write_all and weft_fd_wait(WRITE) (a
 * socket whose send buffer is full): weft_fd_close of each descriptor
 * wakes every one of them with -EBADF. */
static intptr_t close_kinds_main(void *arg)
{
    struct close_kinds *ck = arg;
    int fds0 = net_fd_count(NULL, 0);
    int total = BW_KINDS * ck->per_kind;
    struct blocked *b = calloc((size_t)total, sizeof *b);
    weft_pid *pids = calloc((size_t)total, sizeof *pids);
    for (int round = 0; round < ck->rounds && !atomic_load(&check_failures); round++) {
        weft_addr a;
        CHECK_RC(weft_addr_ip(&a, "127.0.0.1", 0), 0);
        int lfd = weft_listen(&a, 0);
        CHECK(lfd >= 0, "weft_listen: %d", lfd);
        int rs[2], ws[2];
        make_pair(1, rs);
        make_pair(1, ws);
        fill_socket(ws[0]);
        weft_chan ch = make_chan(sizeof(int), 0);
        atomic_int started = 0;
        for (int i = 0; i < total; i++) {
            int kind = i % BW_KINDS;
            int fd = kind == BW_ACCEPT                                ? lfd
                     : kind == BW_WRITE_ALL || kind == BW_WAIT_WRITE ? ws[0]
                                                                      : rs[0];
            b[i] = (struct blocked){.kind = kind, .fd = fd, .ch = ch, .started = &started,
                                    .rc = 12345};
            pids[i] = spawn_on(blocked_main, &b[i], i, 0);
        }
        if (round % 2) { /* else some may still be on their way */
            while (atomic_load(&started) < total)
                weft_yield();
            weft_sleep(weft_now() + 1 * MS);
        }
        CHECK_RC(weft_fd_close(lfd), 0);
        CHECK_RC(weft_fd_close(rs[0]), 0);
        CHECK_RC(weft_fd_close(ws[0]), 0);
        for (int i = 0; i < total; i++) {
            join_proc(pids[i]);
            /* A select that began after the close may refuse its closed
             * descriptor as a whole (-EBADF) rather than fire its case. */
            CHECK(b[i].rc == -EBADF, "round %d: a process blocked in %s returned %d (%s) at the close",
                  round, bw_names[b[i].kind], b[i].rc, weft_strerror(b[i].rc));
        }
        /* The peers see the end of the stream. */
        char c;
        CHECK(read(rs[1], &c, 1) == 0, "the peer of a closed socket: %s", strerror(errno));
        CHECK_RC(weft_fd_close(rs[1]), 0);
        CHECK_RC(weft_fd_close(ws[1]), 0);
        CHECK_RC(weft_chan_release(ch), 0);
    }
    free(b);
    free(pids);
    CHECK(net_fd_count(NULL, 0) == fds0, "descriptors: %d at main's start, %d at its end", fds0,
          net_fd_count(NULL, 0));
    return 0;
}

Test(net, close_wakes_processes_blocked_in_every_socket_call, .timeout = 240)
{
    net_case_init();
    for (unsigned w = 1; w <= 2; w++) {
        struct close_kinds ck = {.rounds = (int)scaled(40, 20, 10), .per_kind = 4};
        net_run(w, close_kinds_main, &ck, "close wakes every kind of waiter");
    }
}

/* ---- select with a descriptor case ---------------------------------------------------------- */

struct sel_peer {
    int action; /* 0: write a byte to fd; 1: send value on ch; 2: weft_fd_close(fd); 3: drain fd */
    int fd;
    weft_chan ch;
    int value;
    int delay; /* 0: none; 1: a yield; 2: 1 ms */
};

static intptr_t sel_peer_main(void *arg)
{
    struct sel_peer *p = arg;
    if (p->delay == 1)
        weft_yield();
    else if (p->delay == 2)
        weft_sleep(weft_now() + 1 * MS);
    switch (p->action) {
    case 0:
        put_byte(p->fd);
        return 0;
    case 1:
        return weft_chan_send(p->ch, &p->value, sizeof p->value, WEFT_FOREVER);
    case 2:
        return weft_fd_close(p->fd);
    default: {
        static char sink[65536];
        while (recv(p->fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
        }
        return 0;
    }
    }
}

struct sel_run {
    int rounds;
};

/* Select over WEFT_FD_CASE and a channel case: the descriptor case fires
 * when a byte arrives (result WEFT_FD_READ), the channel case when a value
 * is sent; with both ready, PRIORITY takes the first listed and FAIR takes
 * each now and then; nothing ready times out (not before the deadline); a
 * disabled descriptor case is ignored; a write case fires when the peer
 * drains a full socket; a close wakes the select with -EBADF. */
static intptr_t select_main(void *arg)
{
    struct sel_run *sr = arg;
    int fds0 = net_fd_count(NULL, 0);
    for (int round = 0; round < sr->rounds && !atomic_load(&check_failures); round++) {
        int p[2];
        make_pair(round % 2, p);
        weft_chan ch = make_chan(sizeof(int), 1);
        int v = -1, delay = round % 3;

        /* Nothing ready. */
        weft_case cases[2] = {WEFT_FD_CASE(p[0], WEFT_FD_READ), WEFT_RECV(ch, &v)};
        CHECK_RC(weft_select(cases, 2, WEFT_SELECT_FAIR, 0), -ETIMEDOUT);
        int64_t deadline = weft_now() + 1 * MS;
        CHECK_RC(weft_select(cases, 2, WEFT_SELECT_FAIR, deadline), -ETIMEDOUT);
        CHECK(weft_now() >= deadline, "select timed out early");

        /* A byte arrives. */
        struct sel_peer peer = {.action = 0, .fd = p[1], .ch = ch, .delay = delay};
        weft_pid pp = spawn_on(sel_peer_main, &peer, round + 1, 0);
        cases[0] = WEFT_FD_CASE(p[0], WEFT_FD_READ);
        cases[1] = WEFT_RECV(ch, &v);
        int i = weft_select(cases, 2, WEFT_SELECT_FAIR, test_in_ms(LONG_MS));
        CHECK(i == 0 && cases[0].result == WEFT_FD_READ,
              "round %d: a byte arrived: select %d, fd case's result %d", round, i, cases[0].result);
        CHECK(join_proc(pp) == 0, "the peer failed");
        take_byte(p[0]);

        /* A value is sent. */
        peer = (struct sel_peer){.action = 1, .fd = p[1], .ch = ch, .value = 1000 + round,
                                 .delay = delay};
        pp = spawn_on(sel_peer_main, &peer, round + 1, 0);
        cases[0] = WEFT_FD_CASE(p[0], WEFT_FD_READ);
        cases[1] = WEFT_RECV(ch, &v);
        i = weft_select(cases, 2, WEFT_SELECT_FAIR, test_in_ms(LONG_MS));
        CHECK(i == 1 && cases[1].result == 0 && v == 1000 + round,
              "round %d: a value was sent: select %d, result %d, value %d", round, i,
              cases[1].result, v);
        CHECK(join_proc(pp) == 0, "the peer failed");

        /* Both ready. */
        put_byte(p[1]);
        int val = 7;
        CHECK_RC(weft_chan_send(ch, &val, sizeof val, 0), 0);
        cases[0] = WEFT_FD_CASE(p[0], WEFT_FD_READ);
        cases[1] = WEFT_RECV(ch, &v);
        CHECK_RC(weft_select(cases, 2, WEFT_SELECT_PRIORITY, 0), 0);
        CHECK(cases[0].result == WEFT_FD_READ, "priority: the fd case's result %d", cases[0].result);
        weft_case rev[2] = {WEFT_RECV(ch, &v), WEFT_FD_CASE(p[0], WEFT_FD_READ)};
        CHECK_RC(weft_select(rev, 2, WEFT_SELECT_PRIORITY, 0), 0);
        CHECK(v == 7, "priority: received %d", v);
        int seen[2] = {0, 0};
        for (int k = 0; k < 64; k++) {
            CHECK_RC(weft_chan_send(ch, &val, sizeof val, 0), 0);
            cases[0] = WEFT_FD_CASE(p[0], WEFT_FD_READ);
            cases[1] = WEFT_RECV(ch, &v);
            i = weft_select(cases, 2, WEFT_SELECT_FAIR, 0);
            CHECK(i == 0 || i == 1, "fair: select %d", i);
            if (i == 0 || i == 1)
                seen[i]++;
            if (i == 0) /* the value is still buffered */
                CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), 0);
        }
        CHECK(seen[0] > 0 && seen[1] > 0, "fair select over 64 tries: fd %d, channel %d", seen[0],
              seen[1]);
        /* A disabled descriptor case is ignored though ready. */
        cases[0] = WEFT_FD_CASE(p[0], WEFT_FD_READ);
        cases[0].disabled = 1;
        cases[1] = WEFT_RECV(ch, &v);
        CHECK_RC(weft_select(cases, 2, WEFT_SELECT_FAIR, 0), -ETIMEDOUT);
        take_byte(p[0]);

        /* A write case on a full socket fires when the peer drains it. */
        if (round % 2) {
            fill_socket(p[0]);
            peer = (struct sel_peer){.action = 3, .fd = p[1], .delay = delay};
            pp = spawn_on(sel_peer_main, &peer, round + 1, 0);
            cases[0] = WEFT_FD_CASE(p[0], WEFT_FD_WRITE);
            cases[1] = WEFT_RECV(ch, &v);
            i = weft_select(cases, 2, WEFT_SELECT_FAIR, test_in_ms(LONG_MS));
            CHECK(i == 0 && (cases[0].result & WEFT_FD_WRITE),
                  "round %d: drained: select %d, fd case's result %d", round, i, cases[0].result);
            CHECK(join_proc(pp) == 0, "the peer failed");
        }

        /* A close wakes the select. */
        peer = (struct sel_peer){.action = 2, .fd = p[0], .delay = delay};
        pp = spawn_on(sel_peer_main, &peer, round + 1, 0);
        cases[0] = WEFT_FD_CASE(p[0], WEFT_FD_READ);
        cases[1] = WEFT_RECV(ch, &v);
        i = weft_select(cases, 2, WEFT_SELECT_FAIR, test_in_ms(LONG_MS));
        /* Closed before the select looked at it, the descriptor may be
         * refused as a whole: -EBADF either way, never the channel. */
        CHECK((i == 0 && cases[0].result == -EBADF) || i == -EBADF,
              "round %d: closed while selected: select %d, fd case's result %d", round, i,
              cases[0].result);
        CHECK(join_proc(pp) == 0, "the closer failed");
        CHECK_RC(weft_fd_close(p[1]), 0);
        CHECK_RC(weft_chan_release(ch), 0);
    }
    CHECK(net_fd_count(NULL, 0) == fds0, "descriptors: %d at main's start, %d at its end", fds0,
          net_fd_count(NULL, 0));
    return 0;
}

Test(net, select_mixes_descriptor_and_channel_cases, .timeout = 240)
{
    net_case_init();
    for (unsigned w = 1; w <= 2; w++) {
        struct sel_run sr = {.rounds = (int)scaled(200, 100, 50)};
        net_run(w, select_main, &sr, "select with descriptors");
    }
}

/* ---- writes to a peer that is gone ----------------------------------------------------------- */

/* Writes to a pipe whose reader is gone from an outside thread. */
static void *epipe_thread_main(void *arg)
{
    int *rc = arg;
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
        *rc = -errno;
        return NULL;
    }
    close(p[0]);
    *rc = (int)weft_write(p[1], "x", 1, WEFT_FOREVER);
    weft_fd_close(p[1]);
    return NULL;
}

static bool sigpipe_pending(void)
{
    sigset_t set;
    sigpending(&set);
    return sigismember(&set, SIGPIPE);
}

/* With SIGPIPE at its default action (the process would end), writes to a
 * pipe whose reader is gone, to a Unix socket whose peer is closed, and to
 * a TCP connection after its reset was read (and after a reset that a write
 * drew) fail with -EPIPE (or -ECONNRESET where the reset is news), from
 * processes and from an outside thread; no SIGPIPE is left pending. */
static intptr_t epipe_main(void *arg)
{
    int fds0 = net_fd_count(NULL, 0);
    static const char big[200000];
    for (int round = 0; round < 20 && !atomic_load(&check_failures); round++) {
        int p[2];
        make_pair(0, p);
        close(p[0]); /* never waited on */
        CHECK_RC(weft_write(p[1], "x", 1, WEFT_FOREVER), -EPIPE);
        CHECK_RC(weft_write_all(p[1], big, sizeof big, WEFT_FOREVER), -EPIPE);
        CHECK_RC(weft_fd_close(p[1]), 0);

        make_pair(1, p);
        close(p[1]);
        CHECK_RC(weft_write(p[0], "x", 1, WEFT_FOREVER), -EPIPE);
        CHECK_RC(weft_write_all(p[0], big, sizeof big, WEFT_FOREVER), -EPIPE);
        CHECK_RC(weft_fd_close(p[0]), 0);

        /* TCP: the client resets; the server reads the reset, then writes. */
        weft_addr a;
        CHECK_RC(weft_addr_ip(&a, "127.0.0.1", 0), 0);
        int lfd = weft_listen(&a, 0);
        CHECK(lfd >= 0, "weft_listen: %d", lfd);
        CHECK_RC(weft_sock_addr(lfd, &a), 0);
        int c = weft_connect(&a, test_in_ms(LONG_MS));
        int s = weft_accept(lfd, NULL, test_in_ms(LONG_MS));
        CHECK(c >= 0 && s >= 0, "connect %d, accept %d", c, s);
        CHECK_RC(net_set_linger0(c), 0);
        CHECK_RC(weft_fd_close(c), 0);
        char b;
        CHECK_RC(weft_read(s, &b, 1, test_in_ms(LONG_MS)), -ECONNRESET);
        CHECK_RC(weft_write(s, "x", 1, WEFT_FOREVER), -EPIPE);
        CHECK_RC(weft_write_all(s, big, sizeof big, WEFT_FOREVER), -EPIPE);
        CHECK_RC(weft_fd_close(s), 0);

        /* TCP: the client closes in order; the server writes until the
         * reset that its writes draw comes back, then once more. */
        c = weft_connect(&a, test_in_ms(LONG_MS));
        s = weft_accept(lfd, NULL, test_in_ms(LONG_MS));
        CHECK(c >= 0 && s >= 0, "connect %d, accept %d", c, s);
        CHECK_RC(weft_fd_close(c), 0);
        ssize_t r = 1;
        int64_t limit = test_in_ms(LONG_MS);
        while (r > 0 && weft_now() < limit) {
            r = weft_write(s, "x", 1, limit);
            if (r > 0)
                weft_sleep(weft_now() + 100 * US);
        }
        CHECK(r == -ECONNRESET || r == -EPIPE, "writing to a closed peer: %ld (%s)", (long)r,
              weft_strerror((int)r));
        CHECK_RC(weft_write(s, "x", 1, WEFT_FOREVER), -EPIPE);
        CHECK_RC(weft_fd_close(s), 0);
        CHECK_RC(weft_fd_close(lfd), 0);

        int trc = 12345;
        pthread_t t;
        CHECK(pthread_create(&t, NULL, epipe_thread_main, &trc) == 0, "pthread_create");
        pthread_join(t, NULL); /* it never waits */
        CHECK_RC(trc, -EPIPE);
        CHECK(!sigpipe_pending(), "a SIGPIPE is pending");
    }
    CHECK(net_fd_count(NULL, 0) == fds0, "descriptors: %d at main's start, %d at its end", fds0,
          net_fd_count(NULL, 0));
    return 0;
}

Test(net, writes_to_a_vanished_peer_fail_without_sigpipe, .timeout = 240)
{
    net_case_init();
    for (unsigned w = 1; w <= 2; w++)
        net_run(w, epipe_main, NULL, "writes to a vanished peer");
}
