/* http_hello.c: weft-http-hello, an HTTP/1.1 server that answers every GET
 * with "Hello, World!\n", one process per connection.
 *
 * Processes:
 *  - The acceptor owns the listening socket: it waits (weft_select) for the
 *    stop channel to be closed or the listener to become readable, accepts
 *    what is queued and spawns a detached connection process per socket,
 *    with the smallest stack (WEFT_STACK_MIN). Out of descriptors (-EMFILE,
 *    -ENFILE) it sleeps 10 ms and tries again: the connection stays queued.
 *    When stopped it closes the listener (weft_fd_close) and returns.
 *  - A connection process reads into a buffer of BUF_SIZE bytes on its own
 *    stack, answers every complete request in the buffer in order, and
 *    reads again. Requests may be pipelined (several in one read) or split
 *    across reads; a body announced by Content-Length is read and dropped.
 *    It ends, closing its socket, at the end of the stream, on an error, a
 *    request that asks for it (Connection: close, or HTTP/1.0 without
 *    keep-alive) or cannot be answered on a kept connection, or when no
 *    byte has arrived for the idle time (--idle-ms).
 *
 * Why it is cheap:
 *  - Every answer is a constant (the table `answers`, written once at
 *    start). Answers to the requests of one read are gathered as runs of
 *    the same answer, and a run is written from a block that holds REPEAT
 *    copies of it: the usual case, any number of pipelined GETs, is one
 *    weft_write_all of bytes that are already laid out, with no copy and no
 *    formatting. (Date is left out so that the answer stays a constant.)
 *  - Nothing is allocated per request or per connection besides the
 *    process: the buffer and the parser's state live on its stack.
 *  - A request costs one read and one write in the common case, plus the
 *    read that finds the socket empty and waits.
 *  - An idle connection process touches the top page of its stack (the
 *    buffer and the frames down to the wait), so it costs that page and
 *    its control block: BUF_SIZE is kept to 2 KiB for that.
 *
 * Protocol choices: lines may end in CRLF or a bare LF; empty lines before
 * a request line are skipped; a method other than GET and HEAD gets 405
 * (with Allow) and the connection stays open; a malformed request gets 400,
 * a version other than HTTP/1.x gets 505, Transfer-Encoding gets 501, and a
 * request head longer than BUF_SIZE gets 431: each of those closes the
 * connection. A connection that is closed after an answer is closed
 * gracefully: the server shuts down its sending side and drops what the
 * client still sends for up to LINGER_MS, so that the client reads the
 * answer before it sees a reset.
 *
 * At start the program raises its soft limit of open files to the hard one,
 * so that some ten thousand connections fit. SIGINT and SIGTERM stop it:
 * the handler writes to a pipe that the main process waits on with
 * weft_fd_wait; the main process then stops the acceptor and returns, and
 * weft_run cancels the connection processes (their waits fail with
 * -ECANCELED and they close their sockets).
 *
 * --self-test N runs the server in this program on an ephemeral port of
 * 127.0.0.1 with an idle time of 10 s (unless --idle-ms is given) and N
 * client processes that each open CONNS_PER_CLIENT connections and check
 * every answer (status, headers, body, whether the connection stays open):
 * keep-alive requests one at a time, pipelined requests of every method in
 * one write, a request split in four writes, a hundred pipelined GETs that
 * straddle the server's buffer, a body larger than that buffer sent in two
 * parts, Connection: close, HTTP/1.0 with and without keep-alive, an
 * oversize header (431), a bad request line (400), HTTP/3.0 (505) and
 * Transfer-Encoding (501). One more client connects to a second server
 * whose idle time is IDLE_TEST_MS (the first one's is long, so that a
 * loaded machine does not make its clients look idle), sends nothing, and
 * expects the connection closed after that time. It exits 0 only if every
 * check passed, the servers accepted every connection and, once stopped,
 * had none open.
 *
 * Usage: weft-http-hello [--port P] [--workers W] [--idle-ms T] [--self-test N]
 *   --port P       TCP port on 0.0.0.0 (default 8080; 0: a free port)
 *   --workers W    worker threads (default 0: one per CPU)
 *   --idle-ms T    close a connection after T ms without a byte (default 60000) */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weft.h"
#include "options.h"

#define MS ((int64_t)1000000)

enum {
    BUF_SIZE = 2048,    /* a connection's read buffer: the longest request head */
    REPEAT = 32,        /* copies of each answer in its block: the longest run */
    ACCEPT_BATCH = 64,  /* most connections accepted per wake of the acceptor */
    LINGER_MS = 2000,   /* most time spent draining a connection being closed */
    LINGER_BYTES = 1 << 16, /* most bytes drained from it */
    IDLE_TEST_MS = 300  /* the self-test's second server's idle time */
};

/* ---- the answers ----------------------------------------------------------------------- */

#define BODY_OK "Hello, World!\n"
#define HEAD_OK "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n"
_Static_assert(sizeof BODY_OK - 1 == 14, "Content-Length of the 200 answer");
#define BODY_405 "Method Not Allowed\n"
#define HEAD_405                                                                        \
    "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Type: text/plain\r\n" \
    "Content-Length: 19\r\n"
_Static_assert(sizeof BODY_405 - 1 == 19, "Content-Length of the 405 answer");
/* The error answers that close the connection: status line, reason as body. */
#define CLOSING(code, reason, len)                                                       \
    "HTTP/1.1 " code " " reason "\r\nContent-Type: text/plain\r\nContent-Length: " len   \
    "\r\nConnection: close\r\n\r\n" reason "\n"
#define KEEP_ALIVE "Connection: keep-alive\r\n"
#define CLOSE "Connection: close\r\n"

/* The kinds of answer. GET, HEAD and 405 come in three variants, in this
 * order: the connection stays open (HTTP/1.1), stays open and the answer
 * says so (HTTP/1.0 with keep-alive), or closes. */
enum {
    A_GET, A_GET_KEEP_ALIVE, A_GET_CLOSE,
    A_HEAD, A_HEAD_KEEP_ALIVE, A_HEAD_CLOSE,
    A_405, A_405_KEEP_ALIVE, A_405_CLOSE,
    A_400, A_431, A_501, A_505,
    A_KINDS
};
enum { V_KEEP, V_KEEP_ALIVE, V_CLOSE }; /* the variants, added to A_GET, A_HEAD, A_405 */

struct answer {
    const char *text;
    size_t len;        /* strlen(text) */
    char *copies;      /* REPEAT copies of text, back to back (made at start) */
};

static struct answer answers[A_KINDS] = {
    [A_GET] = {.text = HEAD_OK "\r\n" BODY_OK},
    [A_GET_KEEP_ALIVE] = {.text = HEAD_OK KEEP_ALIVE "\r\n" BODY_OK},
    [A_GET_CLOSE] = {.text = HEAD_OK CLOSE "\r\n" BODY_OK},
    [A_HEAD] = {.text = HEAD_OK "\r\n"},
    [A_HEAD_KEEP_ALIVE] = {.text = HEAD_OK KEEP_ALIVE "\r\n"},
    [A_HEAD_CLOSE] = {.text = HEAD_OK CLOSE "\r\n"},
    [A_405] = {.text = HEAD_405 "\r\n" BODY_405},
    [A_405_KEEP_ALIVE] = {.text = HEAD_405 KEEP_ALIVE "\r\n" BODY_405},
    [A_405_CLOSE] = {.text = HEAD_405 CLOSE "\r\n" BODY_405},
    [A_400] = {.text = CLOSING("400", "Bad Request", "12")},
    [A_431] = {.text = CLOSING("431", "Request Header Fields Too Large", "32")},
    [A_501] = {.text = CLOSING("501", "Not Implemented", "16")},
    [A_505] = {.text = CLOSING("505", "HTTP Version Not Supported", "27")},
};

/* Checks each answer's Content-Length against its body (HEAD answers: the
 * body of GET) and lays out the blocks of copies. Returns 0, -EINVAL (a
 * wrong length) or -ENOMEM. */
static int answers_init(void)
{
    for (int k = 0; k < A_KINDS; k++) {
        struct answer *a = &answers[k];
        a->len = strlen(a->text);
        const char *blank = strstr(a->text, "\r\n\r\n");
        const char *length = strstr(a->text, "Content-Length: ");
        size_t body = blank ? a->len - (size_t)(blank + 4 - a->text) : 0;
        bool head = k >= A_HEAD && k <= A_HEAD_CLOSE;
        if (!blank || !length || strtoul(length + 16, NULL, 10) != (head ? 14 : body))
            return -EINVAL;
        a->copies = malloc(a->len * REPEAT);
        if (!a->copies)
            return -ENOMEM;
        for (int i = 0; i < REPEAT; i++)
            memcpy(a->copies + (size_t)i * a->len, a->text, a->len);
    }
    return 0;
}

static void answers_term(void)
{
    for (int k = 0; k < A_KINDS; k++) {
        free(answers[k].copies);
        answers[k].copies = NULL;
    }
}

/* ---- the request parser ------------------------------------------------------------------ */

/* What the server needs of a request head. */
struct request {
    int answer;    /* A_* */
    bool keep;     /* the connection stays open after the answer */
    uint64_t body; /* bytes of body that follow the head (Content-Length) */
};

/* The largest Content-Length taken: 2^53, far above anything real. */
#define BODY_MAX ((uint64_t)1 << 53)

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* Whether p[0..n) is the lower-case word w, ignoring case. */
static bool word_is(const char *p, size_t n, const char *w, size_t wn)
{
    if (n != wn)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(p[i]) != w[i])
            return false;
    return true;
}

/* The head being parsed: what its header lines said so far. */
struct head {
    bool close, keep_alive; /* Connection: close, keep-alive */
    bool has_length;        /* a Content-Length was given */
    bool chunked;           /* Transfer-Encoding was given */
    bool bad;               /* a malformed header line */
    uint64_t length;
};

/* Reads the comma-separated tokens of a Connection value v[0..n). */
static void parse_connection(const char *v, size_t n, struct head *h)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (word_is(v + start, i - start, "close", 5))
            h->close = true;
        else if (word_is(v + start, i - start, "keep-alive", 10))
            h->keep_alive = true;
    }
}

/* Reads a Content-Length value v[0..n): digits only, and the same value
 * if given twice. */
static void parse_length(const char *v, size_t n, struct head *h)
{
    uint64_t x = 0;
    if (n == 0)
        h->bad = true;
    for (size_t i = 0; i < n && !h->bad; i++) {
        if (v[i] < '0' || v[i] > '9' || x > BODY_MAX / 10)
            h->bad = true;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (x > BODY_MAX || (h->has_length && x != h->length))
        h->bad = true;
    h->has_length = true;
    h->length = x;
}

/* Reads the header line s[0..n) (without its line end) into h. */
static void parse_header(const char *s, size_t n, struct head *h)
{
    const char *colon = memchr(s, ':', n);
    /* No name, a space before the colon, or a folded line: malformed. */
    if (!colon || colon == s || colon[-1] == ' ' || colon[-1] == '\t' || s[0] == ' ' ||
        s[0] == '\t') {
        h->bad = true;
        return;
    }
    size_t name = (size_t)(colon - s);
    const char *v = colon + 1, *end = s + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    /* Only three names matter; their lengths tell them apart cheaply. */
    if (name == 10 && word_is(s, name, "connection", 10))
        parse_connection(v, (size_t)(end - v), h);
    else if (name == 14 && word_is(s, name, "content-length", 14))
        parse_length(v, (size_t)(end - v), h);
    else if (name == 17 && word_is(s, name, "transfer-encoding", 17))
        h->chunked = true;
}

/* The end of the line that starts at s, before end: the address of its
 * '\n', or NULL if the line is not complete. *text_end gets the end of its
 * text (before "\r\n" or "\n"). */
static const char *line_end(const char *s, const char *end, const char **text_end)
{
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    if (nl)
        *text_end = nl > s && nl[-1] == '\r' ? nl - 1 : nl;
    return nl;
}

/* Parses the request head at the start of p[0..len). Returns its length
 * (> 0, counting empty lines before it) and fills *r, or 0 when the head is
 * not complete yet. A bad request line is answered without waiting for the
 * rest of the head (the connection closes anyway). */
static size_t parse_request(const char *p, size_t len, struct request *r)
{
    const char *s = p, *end = p + len, *text;
    while (s < end && (*s == '\r' || *s == '\n'))
        s++;
    const char *nl = line_end(s, end, &text);
    if (!nl)
        return 0;

    /* The request line: method SP target SP HTTP/d.d */
    *r = (struct request){.answer = A_400, .keep = false};
    if (text - s < 12) /* shorter than "M / HTTP/1.1" */
        return (size_t)(nl + 1 - p);
    const char *sp = memchr(s, ' ', (size_t)(text - s));
    const char *version = text - 8;
    if (!sp || sp == s || version <= sp + 1 || version[-1] != ' ' ||
        memcmp(version, "HTTP/", 5) != 0 || version[5] < '0' || version[5] > '9' ||
        version[6] != '.' || version[7] < '0' || version[7] > '9' ||
        memchr(sp + 1, ' ', (size_t)(version - 1 - (sp + 1))))
        return (size_t)(nl + 1 - p); /* 400 */
    if (version[5] != '1') {
        r->answer = A_505;
        return (size_t)(nl + 1 - p);
    }
    bool http10 = version[7] == '0';
    int base = sp - s == 3 && memcmp(s, "GET", 3) == 0    ? A_GET
               : sp - s == 4 && memcmp(s, "HEAD", 4) == 0 ? A_HEAD
                                                          : A_405;

    /* The header lines, up to the empty line. */
    struct head h = {0};
    for (s = nl + 1;; s = nl + 1) {
        nl = line_end(s, end, &text);
        if (!nl)
            return 0;
        if (text == s)
            break;
        parse_header(s, (size_t)(text - s), &h);
    }
    size_t used = (size_t)(nl + 1 - p);
    if (h.bad)
        return used; /* 400 */
    if (h.chunked) {
        r->answer = A_501;
        return used;
    }
    r->keep = http10 ? h.keep_alive && !h.close : !h.close;
    r->answer = base + (!r->keep ? V_CLOSE : http10 ? V_KEEP_ALIVE : V_KEEP);
    r->body = h.length;
    return used;
}

/* ---- connections ------------------------------------------------------------------------- */

/* A server's settings and counters. */
struct server {
    int lfd;                 /* the listening socket */
    weft_chan stop;          /* closed to stop the acceptor */
    int64_t idle_ns;         /* a connection's idle time */
    weft_proc_fn conn_fn;    /* its connection processes' function */
    weft_spawn_opts conn_opts; /* detached, smallest stack */
    atomic_long open;        /* connection processes running */
    atomic_long accepted;    /* connections accepted in all */
};

/* The answers of a connection not written yet: a run of count answers of
 * one kind (count <= REPEAT). */
struct pending {
    int kind;
    int count;
};

/* Writes the pending run by the deadline. Returns 0, or a weft error (the
 * connection is lost). */
static int flush(int fd, struct pending *out, int64_t deadline)
{
    if (out->count == 0)
        return 0;
    const struct answer *a = &answers[out->kind];
    ssize_t n = weft_write_all(fd, a->copies, a->len * (size_t)out->count, deadline);
    out->count = 0;
    return n < 0 ? (int)n : 0;
}

/* Adds an answer of kind to the pending run, writing the run first if it
 * is of another kind or full. Returns 0, or a weft error. */
static int answer(int fd, struct pending *out, int kind, int64_t deadline)
{
    if (out->count > 0 && (out->kind != kind || out->count == REPEAT)) {
        int err = flush(fd, out, deadline);
        if (err)
            return err;
    }
    out->kind = kind;
    out->count++;
    return 0;
}

/* Closes a connection after its last answer: shuts down the sending side
 * (the client sees the end after the answer) and drops what the client
 * still sends until it closes too, for at most LINGER_MS and LINGER_BYTES,
 * so that the kernel does not reset the connection under unread bytes
 * before the client has read the answer. */
static void close_gracefully(int fd, char *buf, size_t size)
{
    if (weft_shutdown(fd, SHUT_WR) == 0) {
        int64_t deadline = weft_now() + LINGER_MS * MS;
        size_t dropped = 0;
        ssize_t n;
        while (dropped < LINGER_BYTES && (n = weft_read(fd, buf, size, deadline)) > 0)
            dropped += (size_t)n;
    }
    weft_fd_close(fd);
}

/* The servers: [0] serves; [1] is the self-test's second server, whose
 * idle time is short. A connection process knows its server by the
 * function it runs (conn_0 or conn_1), and its socket from its argument:
 * nothing is allocated for it. */
static struct server servers[2];

/* A connection process of server s: see the top of the file. */
static intptr_t http_conn(struct server *s, int fd)
{
    const int64_t idle_ns = s->idle_ns;
    char buf[BUF_SIZE];
    size_t have = 0;      /* bytes of an incomplete request head at buf[0..have) */
    uint64_t skip = 0;    /* bytes of a body still to drop */
    struct pending out = {0};
    bool keep = true;     /* false: the last answer closes the connection */
    /* The idle time counts from the last bytes read; the answers to them
     * must be written by then too. One clock read per read. */
    int64_t deadline = weft_now() + idle_ns;
    for (;;) {
        ssize_t n = weft_read(fd, buf + have, sizeof buf - have, deadline);
        if (n <= 0)
            break; /* the end, an error, the idle time, or -ECANCELED */
        deadline = weft_now() + idle_ns;
        size_t end = have + (size_t)n, pos = 0;
        /* Invariant: buf[pos..end) is unparsed; the answers of the
         * requests before pos are written or in out, in order. */
        while (keep) {
            if (skip > 0) {
                size_t k = end - pos < skip ? end - pos : (size_t)skip;
                pos += k;
                skip -= k;
                if (skip > 0)
                    break;
            }
            struct request r;
            size_t used = parse_request(buf + pos, end - pos, &r);
            if (used == 0)
                break;
            pos += used;
            skip = r.body;
            keep = r.keep;
            if (answer(fd, &out, r.answer, deadline) != 0)
                goto lost;
        }
        have = end - pos;
        if (keep && have == sizeof buf && answer(fd, &out, A_431, deadline) != 0)
            goto lost; /* a head that does not fit */
        keep = keep && have < sizeof buf;
        if (flush(fd, &out, deadline) != 0)
            goto lost;
        if (!keep) {
            close_gracefully(fd, buf, sizeof buf);
            goto done;
        }
        if (have > 0 && pos > 0)
            memmove(buf, buf + pos, have);
    }
lost:
    weft_fd_close(fd);
done:
    atomic_fetch_sub_explicit(&s->open, 1, memory_order_relaxed);
    return 0;
}

static intptr_t conn_0(void *arg)
{
    return http_conn(&servers[0], (int)(intptr_t)arg);
}

static intptr_t conn_1(void *arg)
{
    return http_conn(&servers[1], (int)(intptr_t)arg);
}

/* Accepts the connections queued on the listener, at most ACCEPT_BATCH,
 * and spawns a process for each. */
static void accept_some(struct server *s)
{
    for (int k = 0; k < ACCEPT_BATCH; k++) {
        int fd = weft_accept(s->lfd, NULL, 0);
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM) {
            /* Out of descriptors: the connection stays queued; wait a
             * little for some to be closed rather than spin or give up. */
            weft_sleep(weft_now() + 10 * MS);
            return;
        }
        if (fd < 0)
            return; /* -ETIMEDOUT: none queued now */
        atomic_fetch_add_explicit(&s->open, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->accepted, 1, memory_order_relaxed);
        weft_pid pid;
        if (weft_spawn(&pid, s->conn_fn, (void *)(intptr_t)fd, &s->conn_opts) != 0) {
            weft_fd_close(fd);
            atomic_fetch_sub_explicit(&s->open, 1, memory_order_relaxed);
        }
    }
}

/* The acceptor process: see the top of the file. */
static intptr_t acceptor(void *arg)
{
    struct server *s = arg;
    for (;;) {
        char byte;
        weft_case cases[2] = {WEFT_RECV(s->stop, &byte), WEFT_FD_CASE(s->lfd, WEFT_FD_READ)};
        if (weft_select(cases, 2, WEFT_SELECT_PRIORITY, WEFT_FOREVER) != 1)
            break; /* stopped, or the runtime is shutting down */
        accept_some(s);
    }
    weft_fd_close(s->lfd);
    return 0;
}

/* Listens on addr and starts the acceptor of servers[index]. */
static int server_start(int index, const weft_addr *addr, int64_t idle_ns, weft_pid *pid)
{
    struct server *s = &servers[index];
    s->idle_ns = idle_ns;
    s->conn_fn = index == 0 ? conn_0 : conn_1;
    atomic_init(&s->open, 0);
    atomic_init(&s->accepted, 0);
    weft_spawn_opts_init(&s->conn_opts);
    s->conn_opts.stack_size = WEFT_STACK_MIN;
    s->conn_opts.detached = 1;
    /* The kernel caps the backlog at net.core.somaxconn. */
    int err = weft_listen(addr, 65535);
    if (err < 0)
        return err;
    s->lfd = err;
    err = weft_chan_make(&s->stop, 1, 0);
    if (err)
        goto fail_listen;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.name = "acceptor";
    err = weft_spawn(pid, acceptor, s, &opts);
    if (err)
        goto fail_chan;
    return 0;
fail_chan:
    weft_chan_release(s->stop);
fail_listen:
    weft_fd_close(s->lfd);
    return err;
}

/* Stops the acceptor (it closes the listener) and joins it. */
static void server_stop(struct server *s, weft_pid pid)
{
    weft_chan_close(s->stop);
    weft_join(pid, NULL, WEFT_FOREVER);
    weft_chan_release(s->stop);
}

/* ---- the self-test's clients --------------------------------------------------------------- */

enum { CONNS_PER_CLIENT = 9, PIPELINED_GETS = 100, BIG_BODY = 3000 };

struct client {
    int id;
    const weft_addr *addr;
    int64_t idle_ns;   /* the idle client: the server's idle time */
    int answers;       /* answers checked */
    const char *step;  /* the request being checked, for the report */
    char why[200];     /* what went wrong, or empty */
};

/* A client's connection and its receive buffer. */
struct peer {
    int fd;
    int64_t deadline;
    size_t pos, len;
    char buf[8192];
};

/* What a client expects of an answer's Connection header. */
enum { C_NONE, C_KEEP_ALIVE, C_CLOSE };

/* An answer as the client read it. */
struct reply {
    int status;
    long length;      /* Content-Length, or -1 */
    int connection;   /* C_* */
    bool allow, text; /* an Allow naming GET; Content-Type: text/plain */
    char body[64];
    size_t body_len;
};

static bool fail(struct client *c, const char *what, int err)
{
    if (!c->why[0])
        snprintf(c->why, sizeof c->why, "client %d: %s: %.120s%s%s", c->id,
                 c->step ? c->step : "connecting", what, err ? ": " : "",
                 err ? weft_strerror(err) : "");
    return false;
}

static bool send_text(struct client *c, struct peer *p, const char *text, size_t len)
{
    ssize_t n = weft_write_all(p->fd, text, len, p->deadline);
    return n == (ssize_t)len || fail(c, "writing", (int)n);
}

static bool send_str(struct client *c, struct peer *p, const char *text)
{
    return send_text(c, p, text, strlen(text));
}

/* Reads one CRLF-terminated line (without it) into line[0..size). */
static bool read_line(struct client *c, struct peer *p, char *line, size_t size)
{
    size_t n = 0;
    for (;;) {
        if (p->pos == p->len) {
            ssize_t r = weft_read(p->fd, p->buf, sizeof p->buf, p->deadline);
            if (r <= 0)
                return fail(c, r == 0 ? "the answer ended early" : "reading", (int)r);
            p->pos = 0;
            p->len = (size_t)r;
        }
        char ch = p->buf[p->pos++];
        if (ch == '\n')
            break;
        if (n + 1 >= size)
            return fail(c, "an answer line too long", 0);
        line[n++] = ch;
    }
    if (n == 0 || line[n - 1] != '\r')
        return fail(c, "an answer line without CRLF", 0);
    line[n - 1] = '\0';
    return true;
}

/* Reads one answer; head: to a HEAD request (no body). */
static bool read_reply(struct client *c, struct peer *p, bool head, struct reply *r)
{
    char line[256];
    *r = (struct reply){.length = -1};
    if (!read_line(c, p, line, sizeof line))
        return false;
    if (strncmp(line, "HTTP/1.1 ", 9) != 0 || sscanf(line + 9, "%3d", &r->status) != 1)
        return fail(c, "a bad status line", 0);
    while (read_line(c, p, line, sizeof line) && line[0]) {
        char *colon = strchr(line, ':');
        if (!colon || colon[1] != ' ')
            return fail(c, "a bad header line", 0);
        *colon = '\0';
        const char *v = colon + 2;
        if (strcmp(line, "Content-Length") == 0)
            r->length = atol(v);
        else if (strcmp(line, "Connection") == 0)
            r->connection = strcmp(v, "close") == 0        ? C_CLOSE
                            : strcmp(v, "keep-alive") == 0 ? C_KEEP_ALIVE
                                                           : -1;
        else if (strcmp(line, "Allow") == 0)
            r->allow = strstr(v, "GET") != NULL;
        else if (strcmp(line, "Content-Type") == 0)
            r->text = strcmp(v, "text/plain") == 0;
        else
            return fail(c, "an unexpected header", 0);
    }
    if (c->why[0])
        return false;
    if (r->length < 0 || r->length > (long)sizeof r->body)
        return fail(c, "a bad Content-Length", 0);
    for (r->body_len = 0; !head && r->body_len < (size_t)r->length; r->body_len++) {
        if (p->pos == p->len) {
            ssize_t n = weft_read(p->fd, p->buf, sizeof p->buf, p->deadline);
            if (n <= 0)
                return fail(c, "the body ended early", (int)n);
            p->pos = 0;
            p->len = (size_t)n;
        }
        r->body[r->body_len] = p->buf[p->pos++];
    }
    return true;
}

/* Reads an answer and checks it: status, the Connection header, and the
 * body and headers that go with the status. */
static bool expect(struct client *c, struct peer *p, const char *req, bool head, int status,
                   int connection)
{
    struct reply r;
    c->step = req;
    if (!read_reply(c, p, head, &r))
        return false;
    char what[160];
    const char *body = status == 200 ? BODY_OK : status == 405 ? BODY_405 : NULL;
    bool ok = r.status == status && r.connection == connection && r.text &&
              (status != 405 || r.allow);
    if (body) /* HEAD: the length of the body GET would get, but no body */
        ok = ok && (size_t)r.length == strlen(body) &&
             (head ? r.body_len == 0 : r.body_len == strlen(body) &&
                                           memcmp(r.body, body, r.body_len) == 0);
    else
        ok = ok && r.length > 0 && r.body_len == (size_t)r.length;
    if (!ok) {
        snprintf(what, sizeof what,
                 "got status %d, connection %d, %zu body bytes; expected %d, %d",
                 r.status, r.connection, r.body_len, status, connection);
        return fail(c, what, 0);
    }
    c->answers++;
    return true;
}

/* Expects the server to have closed the connection (after its answer). */
static bool expect_end(struct client *c, struct peer *p, const char *req)
{
    if (p->pos < p->len)
        return fail(c, "bytes after the last answer", 0);
    ssize_t n = weft_read(p->fd, p->buf, sizeof p->buf, p->deadline);
    c->step = req;
    if (n != 0)
        return fail(c, "the connection stayed open", n < 0 ? (int)n : 0);
    return true;
}

static bool open_peer(struct client *c, struct peer *p)
{
    p->pos = p->len = 0;
    p->deadline = weft_now() + 20000 * MS;
    p->fd = weft_connect(c->addr, p->deadline);
    return p->fd >= 0 || fail(c, "connect", p->fd);
}

static void close_peer(struct peer *p)
{
    if (p->fd >= 0)
        weft_fd_close(p->fd);
    p->fd = -1;
}

#define GET "GET /hello HTTP/1.1\r\nHost: localhost\r\nUser-Agent: self-test\r\n\r\n"

/* The keep-alive connection: one request at a time, pipelined requests of
 * every kind, a split request, many pipelined GETs, a large body, then
 * Connection: close. */
static bool keep_alive_conn(struct client *c, struct peer *p)
{
    for (int i = 0; i < 3; i++)
        if (!send_str(c, p, GET) || !expect(c, p, "GET", false, 200, C_NONE))
            return false;
    /* Pipelined: every request in one write, the answers in order. */
    static const char mixed[] =
        GET "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
            "POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nfoo=bar"
            "\r\nGET / HTTP/1.1\n\n" /* an empty line first; bare LFs */
            "DELETE /x HTTP/1.1\r\nconnection: Keep-Alive\r\n\r\n"
            "GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    if (!send_str(c, p, mixed) || !expect(c, p, "pipelined GET", false, 200, C_NONE) ||
        !expect(c, p, "pipelined HEAD", true, 200, C_NONE) ||
        !expect(c, p, "pipelined POST", false, 405, C_NONE) ||
        !expect(c, p, "pipelined GET with LFs", false, 200, C_NONE) ||
        !expect(c, p, "pipelined DELETE", false, 405, C_NONE) ||
        !expect(c, p, "pipelined GET with a body", false, 200, C_NONE))
        return false;
    /* Split in four writes, with pauses: the server sees the pieces. */
    static const char *const pieces[] = {"GE", "T / HTTP/1.1\r\nHo", "st: x\r\n\r", "\n"};
    for (int i = 0; i < 4; i++) {
        if (!send_str(c, p, pieces[i]))
            return false;
        weft_sleep(weft_now() + MS);
    }
    if (!expect(c, p, "split GET", false, 200, C_NONE))
        return false;
    /* Many GETs in one write: they straddle the server's buffer, and their
     * answers come in runs. */
    size_t glen = strlen(GET);
    char *many = malloc(glen * PIPELINED_GETS);
    if (!many)
        return fail(c, "out of memory", 0);
    for (int i = 0; i < PIPELINED_GETS; i++)
        memcpy(many + (size_t)i * glen, GET, glen);
    bool ok = send_text(c, p, many, glen * PIPELINED_GETS);
    free(many);
    for (int i = 0; ok && i < PIPELINED_GETS; i++)
        ok = expect(c, p, "one of many pipelined GETs", false, 200, C_NONE);
    if (!ok)
        return false;
    /* A body larger than the server's buffer, in two parts, then a GET. */
    char body[BIG_BODY];
    memset(body, 'b', sizeof body);
    char head[128];
    snprintf(head, sizeof head, "PUT /big HTTP/1.1\r\nContent-Length: %d\r\n\r\n", BIG_BODY);
    if (!send_str(c, p, head) || !send_text(c, p, body, BIG_BODY / 3))
        return false;
    weft_sleep(weft_now() + MS);
    if (!send_text(c, p, body, BIG_BODY - BIG_BODY / 3) || !send_str(c, p, GET) ||
        !expect(c, p, "PUT with a large body", false, 405, C_NONE) ||
        !expect(c, p, "GET after a large body", false, 200, C_NONE))
        return false;
    /* Connection: close: the answer says so, then the end. A request
     * pipelined behind it is not answered. */
    return send_str(c, p, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n" GET) &&
           expect(c, p, "GET with Connection: close", false, 200, C_CLOSE) &&
           expect_end(c, p, "Connection: close");
}

/* One request on a connection of its own, one answer, then the end. */
static bool one_shot(struct client *c, const char *req, size_t len, const char *what,
                     bool head, int status, int connection)
{
    struct peer *p = malloc(sizeof *p);
    if (!p)
        return fail(c, "out of memory", 0);
    c->step = what;
    bool ok = open_peer(c, p) && send_text(c, p, req, len) &&
              expect(c, p, what, head, status, connection) && expect_end(c, p, what);
    close_peer(p);
    free(p);
    return ok;
}

#define ONE_SHOT(c, req, what, head, status, connection) \
    one_shot((c), (req), sizeof(req) - 1, (what), (head), (status), (connection))

/* A request whose head is twice the server's buffer (made by self_test
 * before the clients start). */
static char big[2 * BUF_SIZE + 64];

static void make_big(void)
{
    memset(big, 'a', sizeof big - 1);
    memcpy(big, "GET / HTTP/1.1\r\nX-Big: ", 23);
    memcpy(big + sizeof big - 5, "\r\n\r\n", 5); /* and the final NUL */
}

/* A client: every scenario, on CONNS_PER_CLIENT connections. */
static intptr_t http_client(void *arg)
{
    struct client *c = arg;
    struct peer *p = malloc(sizeof *p);
    if (!p) {
        fail(c, "out of memory", 0);
        return -1;
    }
    p->fd = -1;
    bool ok = open_peer(c, p) && keep_alive_conn(c, p);
    close_peer(p);
    /* HTTP/1.0 with keep-alive: two answers that say keep-alive. */
    ok = ok && open_peer(c, p) &&
         send_str(c, p, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") &&
         expect(c, p, "HTTP/1.0 keep-alive", false, 200, C_KEEP_ALIVE) &&
         send_str(c, p, "HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") &&
         expect(c, p, "HTTP/1.0 keep-alive HEAD", true, 200, C_KEEP_ALIVE);
    close_peer(p);
    free(p);
    /* Connections that end with their first answer. */
    ok = ok && ONE_SHOT(c, "GET / HTTP/1.0\r\n\r\n", "HTTP/1.0", false, 200, C_CLOSE) &&
         ONE_SHOT(c, "HEAD / HTTP/1.0\r\nUser-Agent: x\r\n\r\n", "HTTP/1.0 HEAD", true, 200,
                  C_CLOSE) &&
         ONE_SHOT(c, "OPTIONS * HTTP/1.0\r\n\r\n", "HTTP/1.0 OPTIONS", false, 405, C_CLOSE) &&
         one_shot(c, big, sizeof big - 1, "an oversize header", false, 431, C_CLOSE) &&
         ONE_SHOT(c, "NONSENSE\r\n\r\n", "a bad request line", false, 400, C_CLOSE) &&
         ONE_SHOT(c, "GET / HTTP/3.0\r\n\r\n", "HTTP/3.0", false, 505, C_CLOSE) &&
         ONE_SHOT(c, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                  "Transfer-Encoding", false, 501, C_CLOSE);
    return ok ? 0 : -1;
}

/* The idle client: connects, sends nothing, and expects the server to
 * close the connection after its idle time (not much before it). */
static intptr_t idle_client(void *arg)
{
    struct client *c = arg;
    int64_t start = weft_now();
    int fd = weft_connect(c->addr, start + 10000 * MS);
    if (fd < 0)
        return fail(c, "idle client: connect", fd), -1;
    char byte;
    ssize_t n = weft_read(fd, &byte, 1, start + c->idle_ns + 10000 * MS);
    int64_t took = weft_now() - start;
    weft_fd_close(fd);
    if (n != 0)
        return fail(c, "idle client: the connection stayed open", n < 0 ? (int)n : 0), -1;
    if (took < c->idle_ns - 50 * MS)
        return fail(c, "idle client: closed before the idle time", 0), -1;
    return 0;
}

struct options {
    int port;
    int64_t idle_ms; /* -1: not given */
    long self_test;  /* clients; 0: serve */
    int signal_fd;   /* the read end of the signal pipe (serving) */
};

/* Starts servers[index] on an ephemeral port of 127.0.0.1; *addr gets its
 * address. */
static int test_server(int index, weft_addr *addr, int64_t idle_ns, weft_pid *pid)
{
    int err = weft_addr_ip(addr, "127.0.0.1", 0);
    if (!err)
        err = server_start(index, addr, idle_ns, pid);
    if (!err)
        err = weft_sock_addr(servers[index].lfd, addr);
    if (err)
        fprintf(stderr, "weft-http-hello: starting a server: %s\n", weft_strerror(err));
    return err;
}

/* Stops servers[index] and waits until its connection processes have
 * ended (every client has closed its connections: they see the end, or
 * their idle time). Returns 1 if they have not after 10 s, or if it did
 * not accept `accepted` connections; else 0. */
static int test_stop(int index, weft_pid pid, long accepted)
{
    struct server *s = &servers[index];
    server_stop(s, pid);
    int64_t deadline = weft_now() + 10000 * MS;
    while (atomic_load(&s->open) > 0 && weft_now() < deadline)
        weft_sleep(weft_now() + MS);
    long open = atomic_load(&s->open), got = atomic_load(&s->accepted);
    if (open == 0 && got == accepted)
        return 0;
    fprintf(stderr, "weft-http-hello: server %d: %ld connections still open, %ld accepted "
            "(expected %ld)\n", index, open, got, accepted);
    return 1;
}

/* The self-test: see the top of the file. Returns the number of failed checks. */
static int self_test(const struct options *o)
{
    weft_addr addr, idle_addr;
    weft_pid apid, idle_apid;
    int64_t idle_ns = (o->idle_ms >= 0 ? o->idle_ms : 10000) * MS;
    if (test_server(0, &addr, idle_ns, &apid) != 0)
        return 1;
    if (test_server(1, &idle_addr, IDLE_TEST_MS * MS, &idle_apid) != 0)
        return 1 + test_stop(0, apid, 0);
    long n = o->self_test;
    struct client *c = calloc((size_t)n + 1, sizeof *c);
    weft_pid *pid = calloc((size_t)n + 1, sizeof *pid);
    int bad = !c || !pid;
    long started = 0;
    make_big();
    for (; !bad && started <= n; started++) {
        c[started] = (struct client){.id = (int)started, .addr = &addr};
        if (started == n) {
            c[started].addr = &idle_addr;
            c[started].idle_ns = IDLE_TEST_MS * MS;
        }
        int err = weft_spawn(&pid[started], started < n ? http_client : idle_client,
                             &c[started], NULL);
        if (err) {
            fprintf(stderr, "weft-http-hello: spawning client %ld: %s\n", started,
                    weft_strerror(err));
            bad++;
            break;
        }
    }
    long checked = 0;
    for (long i = 0; i < started; i++) {
        intptr_t r = -1;
        weft_join(pid[i], &r, WEFT_FOREVER);
        if (r != 0) {
            fprintf(stderr, "weft-http-hello: %s\n", c[i].why[0] ? c[i].why : "a client failed");
            bad++;
        }
        checked += c[i].answers;
    }
    long clients = started < n ? started : n;
    bad += test_stop(0, apid, bad ? atomic_load(&servers[0].accepted) : clients * CONNS_PER_CLIENT);
    bad += test_stop(1, idle_apid, started > n);
    printf("weft-http-hello: %ld clients checked %ld answers on %ld connections, on %d workers: "
           "%s\n",
           n, checked, atomic_load(&servers[0].accepted), weft_workers(), bad ? "WRONG" : "ok");
    free(pid);
    free(c);
    return bad;
}

/* Serves until SIGINT or SIGTERM. */
static int serve(const struct options *o)
{
    struct server *s = &servers[0];
    weft_addr addr;
    weft_pid apid;
    int err = weft_addr_ip(&addr, NULL, o->port);
    if (!err)
        err = server_start(0, &addr, (o->idle_ms >= 0 ? o->idle_ms : 60000) * MS, &apid);
    if (!err)
        err = weft_sock_addr(s->lfd, &addr);
    if (err) {
        fprintf(stderr, "weft-http-hello: listening on port %d: %s\n", o->port,
                weft_strerror(err));
        return 1;
    }
    printf("weft-http-hello: listening on 0.0.0.0:%d with %d workers\n", weft_addr_port(&addr),
           weft_workers());
    fflush(stdout);
    err = weft_fd_wait(o->signal_fd, WEFT_FD_READ, WEFT_FOREVER);
    /* A second signal ends the program at once. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    server_stop(s, apid);
    printf("weft-http-hello: stopping (%ld connections open)\n", atomic_load(&s->open));
    /* The pipe stays open until weft_run has returned: a late signal must
     * not write to a pipe without a reader. */
    weft_fd_forget(o->signal_fd);
    return err < 0 && err != -ECANCELED;
}

static intptr_t app(void *arg)
{
    const struct options *o = arg;
    return o->self_test > 0 ? self_test(o) != 0 : serve(o);
}

/* The signal pipe's write end, for the handler. */
static int signal_pipe = -1;

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    char byte = 1;
    ssize_t n = write(signal_pipe, &byte, 1); /* full: a byte is there already */
    (void)n;
    errno = saved;
}

/* Raises the soft limit of open files to the hard limit, as Go's runtime
 * does: a server of ten thousand connections needs that many descriptors. */
static void raise_file_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    weft_config cfg;
    weft_config_init(&cfg);
    struct options o = {.port = 8080, .idle_ms = -1, .signal_fd = -1};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0)
            o.port = (int)option_value(argc, argv, &i, 0, 65535);
        else if (strcmp(argv[i], "--workers") == 0)
            cfg.workers = (unsigned)option_value(argc, argv, &i, 0, WEFT_WORKERS_MAX);
        else if (strcmp(argv[i], "--idle-ms") == 0)
            o.idle_ms = option_value(argc, argv, &i, 1, 86400000);
        else if (strcmp(argv[i], "--self-test") == 0)
            o.self_test = option_value(argc, argv, &i, 1, 1000);
        else {
            fprintf(stderr,
                    "usage: %s [--port P] [--workers W] [--idle-ms T] [--self-test N]\n",
                    argv[0]);
            return 2;
        }
    }
    raise_file_limit(); /* before weft_run: the runtime sizes its tables by it */
    if (answers_init() != 0) {
        fprintf(stderr, "weft-http-hello: the answers do not hold together\n");
        answers_term();
        return 1;
    }
    int fds[2] = {-1, -1};
    if (o.self_test == 0) {
        if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
            perror("weft-http-hello: pipe2");
            answers_term();
            return 1;
        }
        o.signal_fd = fds[0];
        signal_pipe = fds[1];
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    intptr_t status = 1;
    int err = weft_run(app, &o, &cfg, &status);
    if (err)
        fprintf(stderr, "weft-http-hello: weft_run: %s\n", weft_strerror(err));
    if (fds[0] >= 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        close(fds[0]);
        close(fds[1]);
    }
    answers_term();
    return err ? 1 : (int)status;
}
