/* echo.c: a TCP echo server, one process per connection.
 *
 * Processes:
 *  - The server process owns the listening socket. It waits in one
 *    weft_select on three cases: a connection's end record on the done
 *    channel, the stop channel being closed, and the listener becoming
 *    readable (WEFT_FD_CASE). For a readable listener it accepts what is
 *    queued (weft_accept with deadline 0) and spawns a connection process
 *    for each socket; it counts the connections open. When the stop
 *    channel is closed it closes the listener (weft_fd_close) and waits
 *    until every connection has sent its end record, then returns.
 *  - A connection process reads what has arrived (weft_read) and writes it
 *    back whole (weft_write_all) until the client closes its side (EOF),
 *    an error, or the idle deadline: a read or a write that makes no
 *    progress for --idle-ms ends the connection. It closes its socket with
 *    weft_fd_close and sends its end record (bytes echoed, why it ended).
 *
 * --self-test N runs the server in this program on an ephemeral port of
 * 127.0.0.1 with an idle deadline of 10 s (unless --idle-ms is given),
 * then N client processes at once. Each client sends MESSAGES messages of
 * sizes from 1 byte to 64 KiB (pseudo-random bytes, different for each
 * client), each in slices of at most 16 KiB, reading each slice's echo
 * before it sends the next (so that the bytes in flight always fit in the
 * sockets' buffers) and comparing it byte for byte; it then shuts down its
 * writing side and expects the end of the stream, which the server sends
 * when it has seen the EOF. One more client connects to a second server,
 * whose idle deadline is IDLE_TEST_MS (short, so that the test is quick;
 * the first one's is long, so that a loaded machine does not make its
 * clients look idle), sends nothing, and expects that server to close the
 * connection after its idle deadline. The test passes (exit 0) only if
 * every client passed, the first server accepted N connections, echoed
 * exactly the bytes the clients sent and saw N EOFs, the second accepted
 * one and saw one idle timeout, and both ended with no connection open
 * after the stop.
 *
 * Usage: example-echo [--port P] [--workers W] [--idle-ms T]
 *                     [--self-test N]
 * Without --self-test it serves on 0.0.0.0:P (default 7777; 0 picks a
 * free port) until killed: try `nc localhost 7777`. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "weft.h"
#include "options.h"

#define MS ((int64_t)1000000)

enum {
    BUF_SIZE = 8192,      /* a connection's read buffer, on its stack */
    ACCEPT_BATCH = 64,    /* most connections accepted per wake of the server */
    MESSAGES = 24,        /* messages per self-test client */
    SLICE = 16384,        /* most bytes a client has in flight */
    MSG_MAX = 65536,      /* largest message */
    IDLE_TEST_MS = 300    /* the self-test's idle server's deadline */
};

/* Why a connection ended, in its end record. */
enum { END_EOF, END_IDLE, END_ERROR };

/* What a connection process reports when it ends (on the done channel). */
struct conn_end {
    int64_t bytes; /* bytes echoed */
    int why;       /* END_* */
    int err;       /* END_ERROR: the weft error */
};

/* The server's state. The server process alone writes the counters while
 * it runs; the program reads them after joining it. */
struct server {
    int lfd;          /* the listening socket */
    int64_t idle_ns;  /* idle deadline of a connection */
    weft_chan stop;   /* closed to stop the server */
    weft_chan done;   /* struct conn_end, one per connection that ended */
    long open;        /* connections open now */
    long accepted;    /* connections accepted in all */
    long eofs, idles, errors; /* how they ended */
    int64_t bytes;    /* bytes echoed in all */
};

/* A new connection process's argument (it frees it). */
struct conn {
    int fd;
    struct server *server;
};

/* A connection: echoes until EOF, an error or the idle deadline; then
 * closes the socket and reports to the server. */
static intptr_t echo_conn(void *arg)
{
    struct conn c = *(struct conn *)arg;
    free(arg);
    char buf[BUF_SIZE];
    struct conn_end end = {0};
    for (;;) {
        ssize_t n = weft_read(c.fd, buf, sizeof buf, weft_now() + c.server->idle_ns);
        if (n > 0)
            n = weft_write_all(c.fd, buf, (size_t)n, weft_now() + c.server->idle_ns);
        if (n > 0) {
            end.bytes += n;
            continue;
        }
        end.why = n == 0 ? END_EOF : n == -ETIMEDOUT ? END_IDLE : END_ERROR;
        end.err = (int)n;
        break;
    }
    weft_fd_close(c.fd);
    /* The server waits for this record before it ends, so the send cannot
     * fail but for a shutdown of the runtime. */
    weft_chan_send(c.server->done, &end, sizeof end, WEFT_FOREVER);
    return 0;
}

/* Accepts the connections queued on the listener, at most ACCEPT_BATCH,
 * and spawns a process for each. */
static void accept_some(struct server *s)
{
    for (int k = 0; k < ACCEPT_BATCH; k++) {
        int fd = weft_accept(s->lfd, NULL, 0);
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM) {
            /* Out of descriptors: the connection stays queued; wait a
             * little for some to be closed rather than spin. */
            weft_sleep(weft_now() + 10 * MS);
            return;
        }
        if (fd < 0)
            return; /* -ETIMEDOUT: none queued now */
        struct conn *c = malloc(sizeof *c);
        weft_pid pid;
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        opts.detached = 1;
        int err = c ? 0 : -ENOMEM;
        if (c) {
            *c = (struct conn){fd, s};
            err = weft_spawn(&pid, echo_conn, c, &opts);
        }
        if (err) {
            free(c);
            weft_fd_close(fd);
            s->errors++;
            continue;
        }
        s->open++;
        s->accepted++;
    }
}

/* The server process: see the top of the file. Returns 0. */
static intptr_t serve(void *arg)
{
    struct server *s = arg;
    bool listening = true;
    while (listening || s->open > 0) {
        struct conn_end end;
        char byte;
        weft_case cases[3] = {WEFT_RECV(s->done, &end), WEFT_RECV(s->stop, &byte),
                              WEFT_FD_CASE(s->lfd, WEFT_FD_READ)};
        cases[1].disabled = cases[2].disabled = !listening;
        /* Priority: the end records first, so that the count of open
         * connections is current when the stop comes. */
        int i = weft_select(cases, 3, WEFT_SELECT_PRIORITY, WEFT_FOREVER);
        if (i == 0 && cases[0].result == 0) {
            s->open--;
            s->bytes += end.bytes;
            if (end.why == END_EOF)
                s->eofs++;
            else if (end.why == END_IDLE)
                s->idles++;
            else
                s->errors++;
        } else if (i == 1 || i < 0) {
            /* Stopped (the channel was closed), or the runtime is shutting
             * down (-ECANCELED): no more connections. */
            if (listening)
                weft_fd_close(s->lfd);
            listening = false;
            if (i < 0)
                return 0;
        } else if (i == 2) {
            accept_some(s);
        }
    }
    return 0;
}

/* Starts the server process on addr. */
static int server_start(struct server *s, const weft_addr *addr, int64_t idle_ns, weft_pid *pid)
{
    *s = (struct server){.idle_ns = idle_ns};
    int err = weft_listen(addr, 0);
    if (err < 0)
        return err;
    s->lfd = err;
    err = weft_chan_make(&s->stop, 1, 0);
    if (err)
        goto fail_listen;
    err = weft_chan_make(&s->done, sizeof(struct conn_end), 64);
    if (err)
        goto fail_stop;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.name = "echo-server";
    err = weft_spawn(pid, serve, s, &opts);
    if (err)
        goto fail_done;
    return 0;
fail_done:
    weft_chan_release(s->done);
fail_stop:
    weft_chan_release(s->stop);
fail_listen:
    weft_fd_close(s->lfd);
    return err;
}

/* ---- the self-test's clients --------------------------------------------------------- */

struct client {
    int id;
    const weft_addr *addr;
    int64_t sent;     /* bytes sent (and echoed back correctly) */
    char why[160];    /* what went wrong, or empty */
};

/* xorshift64*: the clients' bytes. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

/* Message sizes, taken in turn from a different start by each client. */
static const size_t sizes[] = {1, 2, 13, 100, 511, 1460, 1461, 4096, 8191, 16384, 40000, MSG_MAX};
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* A client: see the top of the file. Returns 0 or -1 (why says why). */
static intptr_t echo_client(void *arg)
{
    struct client *c = arg;
    uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(c->id + 1);
    unsigned char *out = malloc(MSG_MAX), *in = malloc(SLICE);
    int fd = -1;
    if (!out || !in) {
        snprintf(c->why, sizeof c->why, "out of memory");
        goto out;
    }
    int64_t deadline = weft_now() + 10000 * MS;
    fd = weft_connect(c->addr, deadline);
    if (fd < 0) {
        snprintf(c->why, sizeof c->why, "connect: %s", weft_strerror(fd));
        goto out;
    }
    for (int m = 0; m < MESSAGES; m++) {
        size_t len = sizes[(size_t)(c->id + m) % NSIZES];
        for (size_t i = 0; i < len; i++)
            out[i] = (unsigned char)next_random(&rng);
        for (size_t off = 0; off < len; off += SLICE) {
            size_t n = len - off < SLICE ? len - off : SLICE;
            ssize_t r = weft_write_all(fd, out + off, n, deadline);
            if (r == (ssize_t)n)
                r = weft_read_exactly(fd, in, n, deadline);
            if (r != (ssize_t)n) {
                snprintf(c->why, sizeof c->why, "message %d (%zu bytes) at %zu: %s", m, len,
                         off, r == 0 ? "end of stream" : weft_strerror((int)r));
                goto out;
            }
            if (memcmp(in, out + off, n) != 0) {
                size_t at = 0;
                while (in[at] == out[off + at])
                    at++;
                snprintf(c->why, sizeof c->why,
                         "message %d (%zu bytes): byte %zu echoed as %u, sent %u", m, len,
                         off + at, in[at], out[off + at]);
                goto out;
            }
            c->sent += (int64_t)n;
        }
    }
    /* Half-close: the server must see the EOF and close its side. */
    int err = weft_shutdown(fd, SHUT_WR);
    ssize_t r = err ? err : weft_read(fd, in, 1, deadline);
    if (r != 0)
        snprintf(c->why, sizeof c->why, "after the half-close: %s",
                 r > 0 ? "more bytes" : weft_strerror((int)r));
out:
    if (fd >= 0)
        weft_fd_close(fd);
    free(in);
    free(out);
    return c->why[0] ? -1 : 0;
}

/* The idle client: connects, sends nothing, and expects the server to
 * close the connection after its idle deadline (not much before it). */
static intptr_t idle_client(void *arg)
{
    struct client *c = arg;
    int64_t idle_ns = c->sent; /* the server's idle deadline, passed in */
    c->sent = 0;
    int64_t start = weft_now();
    int fd = weft_connect(c->addr, start + 10000 * MS);
    if (fd < 0) {
        snprintf(c->why, sizeof c->why, "idle client: connect: %s", weft_strerror(fd));
        return -1;
    }
    char byte;
    ssize_t r = weft_read(fd, &byte, 1, start + idle_ns + 10000 * MS);
    int64_t took = weft_now() - start;
    if (r != 0)
        snprintf(c->why, sizeof c->why, "idle client: %s instead of the end of stream",
                 r > 0 ? "a byte" : weft_strerror((int)r));
    else if (took < idle_ns - 50 * MS)
        snprintf(c->why, sizeof c->why, "idle client: closed after %" PRId64 " ms, idle is %" PRId64
                 " ms", took / MS, idle_ns / MS);
    weft_fd_close(fd);
    return c->why[0] ? -1 : 0;
}

struct options {
    int port;
    int64_t idle_ms; /* -1: not given */
    long self_test;  /* clients; 0: serve until killed */
};

/* Starts a server on an ephemeral port of 127.0.0.1; *addr gets its address. */
static int test_server(struct server *s, weft_addr *addr, int64_t idle_ns, weft_pid *pid)
{
    int err = weft_addr_ip(addr, "127.0.0.1", 0);
    if (!err)
        err = server_start(s, addr, idle_ns, pid);
    if (!err)
        err = weft_sock_addr(s->lfd, addr); /* the port it got */
    if (err)
        fprintf(stderr, "echo: starting a server: %s\n", weft_strerror(err));
    return err;
}

/* Stops server s (it closes its listener and waits for the connections
 * still open: none should be, every client has closed) and checks its
 * counts. Returns the number of failed checks. */
static int test_stop(struct server *s, weft_pid pid, const char *name, long accepted,
                     int64_t bytes, long eofs, long idles)
{
    weft_chan_close(s->stop);
    weft_join(pid, NULL, WEFT_FOREVER);
    weft_chan_release(s->stop);
    weft_chan_release(s->done);
    if (s->open == 0 && s->accepted == accepted && s->bytes == bytes && s->eofs == eofs &&
        s->idles == idles && s->errors == 0)
        return 0;
    fprintf(stderr,
            "echo: the %s server ended with %ld open, accepted %ld (expected %ld), echoed "
            "%" PRId64 " bytes (clients sent %" PRId64 "), %ld EOFs (expected %ld), %ld "
            "idle (expected %ld), %ld errors\n",
            name, s->open, s->accepted, accepted, s->bytes, bytes, s->eofs, eofs, s->idles,
            idles, s->errors);
    return 1;
}

/* The self-test: see the top of the file. Returns the number of failed checks. */
static int self_test(const struct options *o)
{
    weft_addr addr, idle_addr;
    struct server s, idle_s;
    weft_pid spid, idle_spid;
    int64_t idle_ns = (o->idle_ms >= 0 ? o->idle_ms : 10000) * MS;
    if (test_server(&s, &addr, idle_ns, &spid) != 0)
        return 1;
    if (test_server(&idle_s, &idle_addr, IDLE_TEST_MS * MS, &idle_spid) != 0)
        return 1 + test_stop(&s, spid, "first", 0, 0, 0, 0);
    long n = o->self_test;
    struct client *c = calloc((size_t)n + 1, sizeof *c);
    weft_pid *pid = calloc((size_t)n + 1, sizeof *pid);
    int bad = 0;
    long started = 0;
    for (; c && pid && started <= n; started++) {
        c[started] = (struct client){.id = (int)started, .addr = &addr};
        weft_proc_fn fn = echo_client;
        if (started == n) {
            fn = idle_client;
            c[started].addr = &idle_addr;
            c[started].sent = IDLE_TEST_MS * MS;
        }
        int err = weft_spawn(&pid[started], fn, &c[started], NULL);
        if (err) {
            fprintf(stderr, "echo: spawning client %ld: %s\n", started, weft_strerror(err));
            bad++;
            break;
        }
    }
    int64_t sent = 0;
    for (long i = 0; i < started; i++) {
        intptr_t r = -1;
        weft_join(pid[i], &r, WEFT_FOREVER);
        if (r != 0) {
            fprintf(stderr, "echo: client %ld: %s\n", i, c[i].why[0] ? c[i].why : "failed");
            bad++;
        }
        sent += c[i].sent;
    }
    long clients = started < n ? started : n;
    bad += test_stop(&s, spid, "first", clients, sent, clients, 0);
    bad += test_stop(&idle_s, idle_spid, "idle", started > n, 0, 0, started > n);
    if (!c || !pid) {
        fprintf(stderr, "echo: out of memory\n");
        bad++;
    }
    printf("echo: %ld clients echoed %" PRId64 " bytes in %d messages each, on %d workers: %s\n",
           n, sent, MESSAGES, weft_workers(), bad ? "WRONG" : "ok");
    free(pid);
    free(c);
    return bad;
}

static intptr_t app(void *arg)
{
    const struct options *o = arg;
    if (o->self_test > 0)
        return self_test(o) != 0;
    weft_addr addr;
    struct server s;
    weft_pid spid;
    int err = weft_addr_ip(&addr, NULL, o->port);
    if (!err)
        err = server_start(&s, &addr, (o->idle_ms >= 0 ? o->idle_ms : 60000) * MS, &spid);
    if (!err)
        err = weft_sock_addr(s.lfd, &addr);
    if (err) {
        fprintf(stderr, "echo: listening on port %d: %s\n", o->port, weft_strerror(err));
        return 1;
    }
    char text[64];
    weft_addr_format(&addr, text, sizeof text);
    printf("echo: listening on %s with %d workers\n", text, weft_workers());
    fflush(stdout);
    weft_join(spid, NULL, WEFT_FOREVER); /* until killed */
    return 0;
}

int main(int argc, char **argv)
{
    weft_config cfg;
    weft_config_init(&cfg);
    struct options o = {.port = 7777, .idle_ms = -1};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0)
            o.port = (int)option_value(argc, argv, &i, 0, 65535);
        else if (strcmp(argv[i], "--workers") == 0)
            cfg.workers = (unsigned)option_value(argc, argv, &i, 0, WEFT_WORKERS_MAX);
        else if (strcmp(argv[i], "--idle-ms") == 0)
            o.idle_ms = option_value(argc, argv, &i, 1, 86400000);
        else if (strcmp(argv[i], "--self-test") == 0)
            o.self_test = option_value(argc, argv, &i, 1, 400);
        else {
            fprintf(stderr,
                    "usage: %s [--port P] [--workers W] [--idle-ms T] [--self-test N]\n",
                    argv[0]);
            return 2;
        }
    }
    intptr_t status = 1;
    int err = weft_run(app, &o, &cfg, &status);
    if (err)
        fprintf(stderr, "echo: weft_run: %s\n", weft_strerror(err));
    return err ? 1 : (int)status;
}
