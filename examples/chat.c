/* chat.c: a line-based chat server: connection processes around a room actor.
 *
 * Processes and the protocol between them:
 *  - The room is a stackless actor that alone holds the set of members. A
 *    connection process sends it JOIN when it starts, NICK to take or
 *    change its name, SAY for each line of text and LEAVE when it ends; the
 *    room sends each member the lines to show as LINE messages: "NAME: text"
 *    for what a named member said, and notices ("* NAME joined", "* OLD is
 *    now NEW", "* NAME left", "* NAME was dropped: too slow") to every named
 *    member. The speaker's own copy comes as OWN, not LINE: every SAY and
 *    NICK is acknowledged by exactly one OWN (its line, its notice, or a
 *    refusal). A member without a name receives nothing but answers to
 *    itself until it takes one. The room monitors each member, so that one
 *    that ends without LEAVE is removed all the same.
 *  - A connection process serves one socket. It is one process, not a
 *    reader and a writer: it waits in one weft_select on three cases, in
 *    priority order: its kick channel (closed by the room to drop it), its
 *    mailbox (WEFT_MSG_CASE: the lines to write) and its socket
 *    (WEFT_FD_CASE: input). Lines to write are gathered from the mailbox
 *    into one buffer and written together; while it writes, it watches the
 *    kick channel beside the socket. Flow control: it reads no input while
 *    SAY_WINDOW of its requests are unacknowledged, so a member cannot
 *    talk faster than the room relays (the room's mailbox, unbounded, stays
 *    short); and it drains its mailbox before it reads more input. One
 *    process keeps the state in one place (no shared buffer, no second
 *    process to stop when either side ends).
 *  - The server process accepts connections (weft_select on the listener,
 *    a stop channel and the connections' end records) and spawns a
 *    connection process for each; stopped, it closes the listener with
 *    weft_fd_close and waits until every connection has ended.
 *
 * Slow members: a member's outbox is its process's mailbox, bounded to
 * OUTBOX lines. The room never waits on a member: it sends with deadline 0,
 * and a member whose mailbox is full (or whose send fails otherwise) is
 * dropped: the room closes its kick channel, removes it and tells the
 * others. A member that reads nothing for WRITE_TIMEOUT_MS is dropped by its
 * own process. The kernel's send buffer of a connection is set to SNDBUF,
 * so a slow member holds at most that plus OUTBOX lines of memory before
 * it is dropped. So the room goes on at the pace of the others, and each
 * member receives every line sent while it is in the room, in order, or is
 * disconnected: it never sees a line missing (dropping lines instead would
 * leave gaps nobody is told about).
 *
 * The kick channel is shared: the connection process makes it and takes a
 * second reference for the room before JOIN (weft_chan_retain); the room
 * releases that reference when the member leaves or is dropped, so a
 * handle the room holds is never stale.
 *
 * Protocol (lines end in "\n"; a "\r" before it is dropped): "/nick NAME"
 * takes or changes the name (1..NICK_MAX letters, digits, '-' or '_', not
 * taken); "/quit" leaves; any other line is said to the room; lines longer
 * than LINE_MAX bytes are cut there.
 *
 * --self-test N, on an ephemeral port of 127.0.0.1:
 *  1. N clients join ("/nick cI"), each waits for its own join notice, then
 *     all start together and each says LINES lines, one at a time (the next
 *     once the room has sent the previous back to it, so that at most N
 *     lines are in flight to any member). Each client checks that it
 *     receives every client's lines, its own included, each sender's in the
 *     order said, none twice; then it sends /quit and expects the end.
 *  2. A slow member: "sleeper" joins and stops reading; "flooder" says long
 *     lines, reading its own back, until the room drops the sleeper (it
 *     sees the notice). The flooder must receive all its lines in order;
 *     the sleeper then reads what it was sent: a gapless prefix of the
 *     flooder's lines, then the end of the stream.
 * Then the server is stopped and the room ended. It exits 0 only if every
 * client passed and the counts agree: the server accepted N + 2
 * connections and none is open; the room saw N + 2 joins, N + 1 leaves and
 * one drop, relayed N * LINES + the flooder's lines (and its end line), and
 * ended empty.
 *
 * Usage: example-chat [--port P] [--workers W] [--self-test N]
 * Without --self-test it serves on 0.0.0.0:P (default 7778; 0 picks a free
 * port) until killed: try `nc localhost 7778` in two terminals. */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
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
    NICK_MAX = 24,         /* longest name */
    LINE_MAX = 1024,       /* longest line said */
    IN_SIZE = 2048,        /* a connection's input buffer */
    OUT_SIZE = 16384,      /* a connection's output buffer: lines written together */
    OUTBOX = 256,          /* lines a member's mailbox holds */
    SAY_WINDOW = 8,        /* a member's SAY and NICK not yet acknowledged, at most */
    SNDBUF = 65536,        /* a connection's kernel send buffer (SO_SNDBUF) */
    WRITE_TIMEOUT_MS = 10000, /* a member that reads nothing this long is dropped */
    ACCEPT_BATCH = 64,     /* most connections accepted per wake of the server */
    LINES = 20,            /* lines each self-test client says */
    FLOOD_MAX = 200000     /* most lines the flooder says before giving up */
};

/* The longest line the room sends: "NAME: " + text + "\n". */
#define SENT_MAX (NICK_MAX + 2 + LINE_MAX + 1)

/* Message tags. */
enum {
    TAG_JOIN = 1, /* connection -> room: weft_chan kick (a reference for the room) */
    TAG_NICK,     /* connection -> room: the name wanted */
    TAG_SAY,      /* connection -> room: a line of text (without "\n") */
    TAG_LEAVE,    /* connection -> room */
    TAG_LINE,     /* room -> connection: a line to write (with "\n") */
    TAG_OWN,      /* room -> connection: as LINE, and it acknowledges a SAY or NICK */
    TAG_STOP      /* app -> room: end */
};

/* ---- the room ----------------------------------------------------------------------------- */

struct member {
    weft_pid pid;     /* the connection process */
    weft_chan kick;   /* its kick channel; the room holds a reference */
    uint64_t monitor; /* the room's monitor of pid */
    bool slow;        /* a send to it failed: to be dropped */
    char nick[NICK_MAX + 1]; /* empty: no name yet */
};

/* What the room counted; copied out when it ends. */
struct room_stats {
    long joins, leaves, drops; /* members that joined, left, were dropped */
    long said;                 /* lines said and relayed */
    long members;              /* members when it ended */
};

/* The room's state, owned by the actor (freed by room_exit). Members are
 * kept in an array in no particular order: a member is found by a linear
 * search of its pid, which is fine at the sizes of this example (a large
 * server would index them). */
struct room {
    struct member *m;
    size_t n, cap;
    struct room_stats stats;
    struct room_stats *out; /* where room_exit copies stats */
};

static struct member *find(struct room *r, weft_pid pid)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->m[i].pid == pid)
            return &r->m[i];
    return NULL;
}

/* Sends line to member m (tag: TAG_LINE or TAG_OWN), never waiting; a
 * member whose mailbox is full is marked slow (dropped by sweep). */
static void send_line(struct member *m, int tag, const char *line, size_t len)
{
    if (!m->slow && weft_send(m->pid, tag, line, len, 0) != 0)
        m->slow = true;
}

/* Sends line to every named member; speaker (NULL: none) gets it as the
 * acknowledgement of its request. */
static void broadcast(struct room *r, const char *line, size_t len, const struct member *speaker)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->m[i].nick[0])
            send_line(&r->m[i], &r->m[i] == speaker ? TAG_OWN : TAG_LINE, line, len);
}

/* Formats a notice (fmt takes one or two strings; a second that it does
 * not take is ignored) and broadcasts it. */
static void announce(struct room *r, const struct member *speaker, const char *fmt,
                     const char *a, const char *b)
{
    char buf[SENT_MAX];
    int len = snprintf(buf, sizeof buf, fmt, a, b);
    broadcast(r, buf, (size_t)len < sizeof buf ? (size_t)len : sizeof buf - 1, speaker);
}

/* Removes member m (its monitor already ended or to be ended by the
 * caller) and tells the others, with notice (NULL: nobody is told). */
static void remove_member(struct room *r, struct member *m, const char *notice)
{
    char nick[NICK_MAX + 1];
    memcpy(nick, m->nick, sizeof nick);
    weft_chan_release(m->kick);
    *m = r->m[--r->n]; /* the last takes its place */
    if (notice && nick[0])
        announce(r, NULL, notice, nick, "");
}

/* Drops the members marked slow. Each drop's notice may mark others. */
static void sweep(struct room *r)
{
    for (size_t i = 0; i < r->n;) {
        struct member *m = &r->m[i];
        if (!m->slow) {
            i++;
            continue;
        }
        weft_chan_close(m->kick); /* its process sees it and ends */
        weft_demonitor(m->monitor);
        r->stats.drops++;
        remove_member(r, m, "* %s was dropped: too slow\n");
        i = 0; /* the notice may have marked a member already passed */
    }
}

/* Whether name (len bytes) is a valid name. */
static bool valid_nick(const char *name, size_t len)
{
    if (len == 0 || len > NICK_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

static void room_join(struct room *r, weft_msg *msg)
{
    weft_chan kick;
    if (msg->size != sizeof kick || find(r, msg->from))
        return; /* malformed: never sent by this program */
    memcpy(&kick, msg->data, sizeof kick);
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        struct member *m = realloc(r->m, cap * sizeof *m);
        if (!m) { /* no room for it: it is dropped at once */
            weft_chan_close(kick);
            weft_chan_release(kick);
            return;
        }
        r->m = m;
        r->cap = cap;
    }
    struct member *m = &r->m[r->n];
    *m = (struct member){.pid = msg->from, .kick = kick};
    if (weft_monitor(m->pid, &m->monitor) != 0) {
        weft_chan_close(kick);
        weft_chan_release(kick);
        return;
    }
    r->n++;
    r->stats.joins++;
    send_line(m, TAG_LINE, "* choose a name: /nick NAME\n", 28);
}

static void room_nick(struct room *r, struct member *m, const char *name, size_t len)
{
    char line[SENT_MAX];
    char nick[NICK_MAX + 1];
    bool taken = false;
    if (valid_nick(name, len)) {
        memcpy(nick, name, len);
        nick[len] = '\0';
        for (size_t i = 0; i < r->n; i++)
            taken = taken || strcmp(r->m[i].nick, nick) == 0;
    }
    if (!valid_nick(name, len) || taken) {
        int n = snprintf(line, sizeof line, "* that name is %s\n", taken ? "taken" : "not valid");
        send_line(m, TAG_OWN, line, (size_t)n);
        return;
    }
    char old[NICK_MAX + 1];
    memcpy(old, m->nick, sizeof old);
    memcpy(m->nick, nick, sizeof nick);
    if (old[0])
        announce(r, m, "* %s is now %s\n", old, nick);
    else
        announce(r, m, "* %s joined\n", nick, "");
}

static void room_say(struct room *r, struct member *m, const char *text, size_t len)
{
    if (!m->nick[0]) {
        send_line(m, TAG_OWN, "* choose a name first: /nick NAME\n", 34);
        return;
    }
    char line[SENT_MAX];
    size_t nick = strlen(m->nick);
    if (len > LINE_MAX)
        len = LINE_MAX;
    memcpy(line, m->nick, nick);
    memcpy(line + nick, ": ", 2);
    memcpy(line + nick + 2, text, len);
    line[nick + 2 + len] = '\n';
    r->stats.said++;
    broadcast(r, line, nick + 3 + len, m);
}

/* The room's handler: one message at a time, never waiting. */
static void room(void *state, weft_msg *msg)
{
    struct room *r = state;
    struct member *m = msg->tag == TAG_JOIN || msg->tag == TAG_STOP ? NULL : find(r, msg->from);
    switch (msg->tag) {
    case TAG_JOIN:
        room_join(r, msg);
        break;
    case TAG_NICK:
        if (m)
            room_nick(r, m, msg->data, msg->size);
        break;
    case TAG_SAY:
        if (m)
            room_say(r, m, msg->data, msg->size);
        break;
    case TAG_LEAVE:
    case WEFT_TAG_DOWN: /* it ended without LEAVE */
        if (m && (msg->tag == WEFT_TAG_DOWN ? msg->ref == m->monitor : true)) {
            if (msg->tag == TAG_LEAVE)
                weft_demonitor(m->monitor);
            r->stats.leaves++;
            remove_member(r, m, "* %s left\n");
        }
        break;
    case TAG_STOP:
        weft_exit(WEFT_EXIT_NORMAL);
        return;
    }
    sweep(r);
}

/* The room's end: copies its counts out and frees its state. Members still
 * in it (at a shutdown) give their kick channels back. */
static void room_exit(void *state, intptr_t reason)
{
    (void)reason;
    struct room *r = state;
    r->stats.members = (long)r->n;
    if (r->out)
        *r->out = r->stats;
    for (size_t i = 0; i < r->n; i++)
        weft_chan_release(r->m[i].kick);
    free(r->m);
    free(r);
}

/* Starts a room; its counts go to *out when it ends. */
static int room_start(weft_pid *pid, struct room_stats *out)
{
    struct room *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->out = out;
    weft_actor_opts opts;
    weft_actor_opts_init(&opts);
    opts.name = "room";
    opts.on_exit = room_exit;
    int err = weft_actor_spawn(pid, room, r, &opts);
    if (err)
        free(r);
    return err;
}

/* ---- connections -------------------------------------------------------------------------- */

/* Why a connection ended, in its end record. */
enum { END_QUIT, END_EOF, END_DROPPED, END_ERROR };

/* The server's state. The server process alone writes the counters while
 * it runs; the program reads them after joining it. */
struct server {
    int lfd;          /* the listening socket */
    weft_pid room;
    weft_chan stop;   /* closed to stop the server */
    weft_chan done;   /* int: an END_*, one per connection that ended */
    long open;        /* connections open now */
    long accepted;
    long ends[4];     /* connections ended, by END_* */
};

/* A new connection process's argument (it frees it). */
struct conn {
    int fd;
    struct server *server;
};

/* Writes out[0..len) to fd, waiting at most WRITE_TIMEOUT_MS, unless the
 * kick channel is closed first. Returns 0, -ECONNABORTED (kicked), or a
 * weft error. */
static int write_out(int fd, weft_chan kick, const char *out, size_t len)
{
    int64_t deadline = weft_now() + WRITE_TIMEOUT_MS * MS;
    while (len > 0) {
        ssize_t n = weft_write(fd, out, len, 0);
        if (n > 0) {
            out += n;
            len -= (size_t)n;
            continue;
        }
        if (n != -ETIMEDOUT && n != -EAGAIN)
            return (int)n;
        char byte;
        weft_case cases[2] = {WEFT_RECV(kick, &byte), WEFT_FD_CASE(fd, WEFT_FD_WRITE)};
        int i = weft_select(cases, 2, WEFT_SELECT_PRIORITY, deadline);
        if (i == 0)
            return -ECONNABORTED;
        if (i < 0)
            return i;
    }
    return 0;
}

/* Appends the payload of a LINE or OWN message to out (the caller made
 * room for SENT_MAX bytes); counts an OWN as an acknowledgement. */
static void gather(char *out, size_t *len, const weft_msg *msg, long *unacked)
{
    if (msg->tag != TAG_LINE && msg->tag != TAG_OWN)
        return; /* nothing else is sent to a connection */
    if (msg->tag == TAG_OWN)
        (*unacked)--;
    size_t n = msg->size < SENT_MAX ? msg->size : SENT_MAX;
    memcpy(out + *len, msg->data, n);
    *len += n;
}

/* Handles one input line s[0..len) (without its end). Returns 1 if it sent
 * the room a request that it will acknowledge, 0 if not, -1 for /quit. */
static int input_line(weft_pid room, char *s, size_t len)
{
    if (len > 0 && s[len - 1] == '\r')
        len--;
    if (len == 0)
        return 0;
    if (len == 5 && memcmp(s, "/quit", 5) == 0)
        return -1;
    /* The room's mailbox is unbounded: these sends do not wait. */
    if (len >= 6 && memcmp(s, "/nick ", 6) == 0)
        return weft_send(room, TAG_NICK, s + 6, len - 6, WEFT_FOREVER) == 0;
    return weft_send(room, TAG_SAY, s, len < LINE_MAX ? len : LINE_MAX, WEFT_FOREVER) == 0;
}

/* A connection's input: the bytes read and not yet handled are
 * buf[start..end). */
struct input {
    size_t start, end;
    bool cutting;     /* dropping the rest of a line that was too long */
    char buf[IN_SIZE];
};

/* Handles the complete lines of in while fewer than SAY_WINDOW requests
 * are unacknowledged. Returns false for /quit. */
static bool consume(struct input *in, weft_pid room, long *unacked)
{
    while (*unacked < SAY_WINDOW) {
        char *s = in->buf + in->start;
        char *nl = memchr(s, '\n', in->end - in->start);
        int r = 0;
        if (!nl) {
            if (in->end - in->start < sizeof in->buf)
                break; /* the rest of the line is still to come */
            /* A line longer than the buffer: say its start, drop the rest. */
            if (!in->cutting)
                r = input_line(room, s, LINE_MAX);
            in->cutting = true;
            in->start = in->end = 0;
        } else {
            in->start += (size_t)(nl - s) + 1;
            if (!in->cutting)
                r = input_line(room, s, (size_t)(nl - s));
            in->cutting = false;
        }
        if (r < 0)
            return false;
        *unacked += r;
    }
    return true;
}

/* A connection process: see the top of the file. */
static intptr_t chat_conn(void *arg)
{
    struct conn c = *(struct conn *)arg;
    free(arg);
    weft_pid room = c.server->room;
    int why = END_ERROR;
    weft_chan kick;
    if (weft_chan_make(&kick, 1, 0) != 0)
        goto closed;
    /* The room's reference; it releases it (the room's mailbox is unbounded:
     * the send does not wait). */
    if (weft_chan_retain(kick) != 0)
        goto released;
    if (weft_send(room, TAG_JOIN, &kick, sizeof kick, WEFT_FOREVER) != 0) {
        weft_chan_release(kick); /* the room's, which it never got */
        goto released;
    }

    struct input in = {0};
    char out[OUT_SIZE];
    long unacked = 0; /* SAY and NICK sent, not yet acknowledged (OWN) */
    for (;;) {
        weft_msg msg;
        char byte;
        weft_case cases[3] = {WEFT_RECV(kick, &byte), WEFT_MSG_CASE(&msg, NULL),
                              WEFT_FD_CASE(c.fd, WEFT_FD_READ)};
        /* Flow control: no input while the room has SAY_WINDOW requests of
         * ours to handle, so that a fast talker cannot flood the room's
         * mailbox (nor its own outbox with its echoes). */
        cases[2].disabled = unacked >= SAY_WINDOW;
        int i = weft_select(cases, 3, WEFT_SELECT_PRIORITY, WEFT_FOREVER);
        if (i == 0) {
            why = END_DROPPED;
            break;
        }
        if (i < 0)
            break; /* -ECANCELED: the runtime is shutting down */
        if (i == 1) {
            /* Gather what the mailbox holds into one write. */
            size_t len = 0;
            gather(out, &len, &msg, &unacked);
            weft_msg_free(&msg);
            while (len + SENT_MAX <= OUT_SIZE && weft_recv(&msg, NULL, 0) == 0) {
                gather(out, &len, &msg, &unacked);
                weft_msg_free(&msg);
            }
            int err = write_out(c.fd, kick, out, len);
            if (err) {
                why = err == -ECONNABORTED ? END_DROPPED : END_ERROR;
                break;
            }
        } else {
            if (in.start > 0) { /* make room at the end */
                memmove(in.buf, in.buf + in.start, in.end - in.start);
                in.end -= in.start;
                in.start = 0;
            }
            ssize_t n = weft_read(c.fd, in.buf + in.end, sizeof in.buf - in.end, 0);
            if (n == -ETIMEDOUT || n == -EAGAIN)
                continue; /* readable no more: not here */
            if (n <= 0) {
                why = n == 0 ? END_EOF : END_ERROR;
                break;
            }
            in.end += (size_t)n;
        }
        /* Lines that waited for acknowledgements, or that just came. */
        if (!consume(&in, room, &unacked)) {
            why = END_QUIT;
            break;
        }
    }
    weft_send(room, TAG_LEAVE, NULL, 0, WEFT_FOREVER);
released:
    weft_chan_release(kick);
closed:
    weft_fd_close(c.fd);
    /* The server waits for this record before it ends. */
    weft_chan_send(c.server->done, &why, sizeof why, WEFT_FOREVER);
    return 0;
}

/* Accepts the connections queued on the listener, at most ACCEPT_BATCH,
 * and spawns a process for each, with a mailbox of OUTBOX lines. */
static void accept_some(struct server *s)
{
    for (int k = 0; k < ACCEPT_BATCH; k++) {
        int fd = weft_accept(s->lfd, NULL, 0);
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM) {
            weft_sleep(weft_now() + 10 * MS); /* wait for descriptors to be freed */
            return;
        }
        if (fd < 0)
            return; /* -ETIMEDOUT: none queued now */
        int sndbuf = SNDBUF; /* best effort */
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        struct conn *c = malloc(sizeof *c);
        weft_pid pid;
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        opts.detached = 1;
        opts.mailbox_capacity = OUTBOX;
        int err = c ? 0 : -ENOMEM;
        if (c) {
            *c = (struct conn){fd, s};
            err = weft_spawn(&pid, chat_conn, c, &opts);
        }
        if (err) {
            free(c);
            weft_fd_close(fd);
            s->ends[END_ERROR]++;
            continue;
        }
        s->open++;
        s->accepted++;
    }
}

/* The server process: see the top of the file. */
static intptr_t serve(void *arg)
{
    struct server *s = arg;
    bool listening = true;
    while (listening || s->open > 0) {
        int why;
        char byte;
        weft_case cases[3] = {WEFT_RECV(s->done, &why), WEFT_RECV(s->stop, &byte),
                              WEFT_FD_CASE(s->lfd, WEFT_FD_READ)};
        cases[1].disabled = cases[2].disabled = !listening;
        int i = weft_select(cases, 3, WEFT_SELECT_PRIORITY, WEFT_FOREVER);
        if (i == 0 && cases[0].result == 0) {
            s->open--;
            s->ends[why >= 0 && why < 4 ? why : END_ERROR]++;
        } else if (i == 1 || i < 0) {
            if (listening)
                weft_fd_close(s->lfd);
            listening = false;
            if (i < 0)
                return 0; /* -ECANCELED: the runtime is shutting down */
        } else if (i == 2) {
            accept_some(s);
        }
    }
    return 0;
}

static int server_start(struct server *s, const weft_addr *addr, weft_pid room, weft_pid *pid)
{
    *s = (struct server){.room = room};
    int err = weft_listen(addr, 0);
    if (err < 0)
        return err;
    s->lfd = err;
    err = weft_chan_make(&s->stop, 1, 0);
    if (err)
        goto fail_listen;
    err = weft_chan_make(&s->done, sizeof(int), 64);
    if (err)
        goto fail_stop;
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.name = "chat-server";
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

/* ---- the self-test's clients ------------------------------------------------------------------ */

/* A client's connection, read line by line. */
struct peer {
    int fd;
    int64_t deadline;
    size_t pos, len;
    char buf[8192];
};

/* What the clients share. */
struct test {
    const weft_addr *addr;
    long n;              /* phase 1 clients */
    weft_chan ready;     /* int: a client has joined */
    weft_chan go;        /* closed: start talking */
    weft_chan wake;      /* closed: the sleeper may read */
    atomic_bool flood_stop; /* the flooder's writer stops */
    long flooded;        /* lines the flooder said */
};

struct client {
    int id;
    struct test *t;
    struct peer *peer; /* the flooder's connection, shared with its writer */
    char why[200];
};

static bool fail(struct client *c, const char *what, int err)
{
    if (!c->why[0])
        snprintf(c->why, sizeof c->why, "client %d: %.120s%s%s", c->id, what, err ? ": " : "",
                 err ? weft_strerror(err) : "");
    return false;
}

static bool say(struct client *c, struct peer *p, const char *line, size_t len)
{
    ssize_t n = weft_write_all(p->fd, line, len, p->deadline);
    return n == (ssize_t)len || fail(c, "writing", (int)n);
}

/* Reads one line (without "\n") into line[0..size). Returns its length
 * plus one (an empty line is not the end), 0 at the end of the stream, or
 * a weft error (-EPIPE: the stream ended inside a line; -EPROTO: the line
 * is too long). */
static long read_line(struct peer *p, char *line, size_t size)
{
    size_t n = 0;
    for (;;) {
        if (p->pos == p->len) {
            ssize_t r = weft_read(p->fd, p->buf, sizeof p->buf, p->deadline);
            if (r == 0 && n == 0)
                return 0;
            if (r <= 0)
                return r == 0 ? -EPIPE : (long)r;
            p->pos = 0;
            p->len = (size_t)r;
        }
        char ch = p->buf[p->pos++];
        if (ch == '\n')
            break;
        if (n + 1 >= size)
            return -EPROTO;
        line[n++] = ch;
    }
    line[n] = '\0';
    return (long)n + 1;
}

/* read_line, with a failure recorded in c (returns -1 then). */
static long next_line(struct client *c, struct peer *p, char *line, size_t size)
{
    long r = read_line(p, line, size);
    if (r < 0)
        return fail(c, "reading a line", (int)r), -1;
    return r;
}

static bool connect_peer(struct client *c, struct peer *p)
{
    p->pos = p->len = 0;
    p->deadline = weft_now() + 30000 * MS;
    p->fd = weft_connect(c->t->addr, p->deadline);
    return p->fd >= 0 || fail(c, "connect", p->fd);
}

/* Takes name and waits for the room to announce it (skipping the
 * greeting). */
static bool join_as(struct client *c, struct peer *p, const char *name)
{
    char line[SENT_MAX + 1], want[64];
    int n = snprintf(line, sizeof line, "/nick %s\n", name);
    snprintf(want, sizeof want, "* %s joined", name);
    if (!say(c, p, line, (size_t)n))
        return false;
    for (;;) {
        long r = next_line(c, p, line, sizeof line);
        if (r <= 0)
            return r == 0 ? fail(c, "the end before joining", 0) : false;
        if (strcmp(line, want) == 0)
            return true;
        if (line[0] != '*')
            return fail(c, "a line before joining", 0);
    }
}

/* Sends /quit and expects the end of the stream, after notices only. */
static bool quit(struct client *c, struct peer *p)
{
    char line[SENT_MAX + 1];
    if (!say(c, p, "/quit\n", 6))
        return false;
    for (;;) {
        long r = next_line(c, p, line, sizeof line);
        if (r == 0)
            return true;
        if (r < 0)
            return false;
        if (line[0] != '*')
            return fail(c, "a line after everything was said", 0);
    }
}

/* Phase 1: see the top of the file. */
static intptr_t talker(void *arg)
{
    struct client *c = arg;
    struct test *t = c->t;
    struct peer *p = malloc(sizeof *p);
    int *next = calloc((size_t)t->n, sizeof *next); /* next line expected from each */
    char name[32], line[SENT_MAX + 1];
    bool ok = p && next;
    if (!ok)
        fail(c, "out of memory", 0);
    snprintf(name, sizeof name, "c%d", c->id);
    ok = ok && connect_peer(c, p);
    if (ok && join_as(c, p, name)) {
        weft_chan_send(t->ready, &c->id, sizeof c->id, WEFT_FOREVER);
        char byte;
        weft_chan_recv(t->go, &byte, sizeof byte, WEFT_FOREVER); /* -EPIPE: go */
        long missing = t->n * LINES; /* lines still to receive */
        for (int k = 0; ok && missing > 0; k++) {
            if (k < LINES) {
                int n = snprintf(line, sizeof line, "line %d\n", k);
                ok = say(c, p, line, (size_t)n);
            }
            /* Read until our line k is back (or, once all are said, until
             * every line has come). */
            while (ok && missing > 0) {
                long r = next_line(c, p, line, sizeof line);
                if (r <= 0) {
                    ok = r == 0 ? fail(c, "the end before every line came", 0) : false;
                    break;
                }
                int j, kk;
                if (line[0] == '*')
                    continue; /* a notice */
                if (sscanf(line, "c%d: line %d", &j, &kk) != 2 || j < 0 || j >= t->n) {
                    ok = fail(c, "a line nobody said", 0);
                    break;
                }
                if (kk != next[j]) {
                    snprintf(line, sizeof line, "from c%d: line %d instead of %d", j, kk,
                             next[j]);
                    ok = fail(c, line, 0);
                    break;
                }
                next[j]++;
                missing--;
                if (j == c->id && kk == k && k < LINES - 1)
                    break; /* our line: say the next */
            }
        }
        ok = ok && quit(c, p);
    } else {
        ok = false;
        int none = -1;
        weft_chan_send(t->ready, &none, sizeof none, WEFT_FOREVER); /* do not hold the others */
    }
    if (p && p->fd >= 0)
        weft_fd_close(p->fd);
    free(next);
    free(p);
    return ok ? 0 : -1;
}

/* Phase 2, the slow member: joins, reads nothing until woken, then reads a
 * gapless prefix of the flooder's lines and the end of the stream. */
static intptr_t sleeper(void *arg)
{
    struct client *c = arg;
    struct test *t = c->t;
    struct peer *p = malloc(sizeof *p);
    char line[SENT_MAX + 1];
    bool ok = p && connect_peer(c, p) && join_as(c, p, "sleeper");
    int none = ok ? c->id : -1;
    weft_chan_send(t->ready, &none, sizeof none, WEFT_FOREVER);
    char byte;
    weft_chan_recv(t->wake, &byte, sizeof byte, WEFT_FOREVER);
    long next = 0;
    p->deadline = weft_now() + 30000 * MS;
    while (ok) {
        long r = read_line(p, line, sizeof line);
        if (r == 0 || r == -EPIPE)
            break; /* dropped: the end, maybe inside a line the server had
                    * begun to write */
        if (r < 0) {
            ok = fail(c, "reading a line", (int)r);
            break;
        }
        long k;
        if (line[0] == '*')
            continue;
        if (sscanf(line, "flooder: f%ld ", &k) != 1 || k != next)
            ok = fail(c, "a flooder line out of order", 0);
        next++;
    }
    if (ok && next >= t->flooded)
        ok = fail(c, "got every line: was never dropped", 0);
    if (p && p->fd >= 0)
        weft_fd_close(p->fd);
    free(p);
    return ok ? 0 : -1;
}

/* The flooder's writer: says long lines "f<k> xxx..." until told to stop
 * (or FLOOD_MAX of them), then "fend <count>". */
static intptr_t flood_writer(void *arg)
{
    struct client *c = arg;
    char line[LINE_MAX];
    long k = 0;
    for (; k < FLOOD_MAX && !atomic_load(&c->t->flood_stop); k++) {
        int n = snprintf(line, sizeof line, "f%ld ", k);
        memset(line + n, 'x', 900 - (size_t)n);
        line[900] = '\n';
        if (!say(c, c->peer, line, 901))
            return -1;
    }
    c->t->flooded = k;
    int n = snprintf(line, sizeof line, "fend %ld\n", k);
    return say(c, c->peer, line, (size_t)n) ? 0 : -1;
}

/* Phase 2, the flooder: starts its writer and reads: its own lines must
 * come back in order; when the sleeper's drop is announced it stops the
 * writer, and reads on until the writer's "fend" line. */
static intptr_t flooder(void *arg)
{
    struct client *c = arg;
    struct test *t = c->t;
    struct peer *p = c->peer;
    char line[SENT_MAX + 1];
    bool ok = connect_peer(c, p) && join_as(c, p, "flooder");
    int none = ok ? c->id : -1;
    weft_chan_send(t->ready, &none, sizeof none, WEFT_FOREVER);
    weft_pid writer = 0;
    if (ok && weft_spawn(&writer, flood_writer, c, NULL) != 0) {
        fail(c, "spawning the writer", 0);
        return -1;
    }
    long next = 0, k;
    bool dropped = false;
    while (ok) {
        long r = next_line(c, p, line, sizeof line);
        if (r <= 0) {
            ok = r == 0 ? fail(c, "the end while flooding", 0) : false;
        } else if (strcmp(line, "* sleeper was dropped: too slow") == 0) {
            dropped = true;
            atomic_store(&t->flood_stop, true);
        } else if (line[0] == '*') {
            continue;
        } else if (sscanf(line, "flooder: fend %ld", &k) == 1) {
            if (k != next || !dropped)
                ok = fail(c, dropped ? "lines lost" : "the sleeper was never dropped", 0);
            break;
        } else if (sscanf(line, "flooder: f%ld ", &k) != 1 || k != next++) {
            ok = fail(c, "own line out of order", 0);
        }
    }
    if (writer) {
        atomic_store(&t->flood_stop, true);
        intptr_t r = -1;
        weft_join(writer, &r, WEFT_FOREVER);
        ok = ok && r == 0;
    }
    ok = ok && quit(c, p);
    if (p->fd >= 0)
        weft_fd_close(p->fd);
    return ok ? 0 : -1;
}

/* Spawns n clients running fn, waits until each has joined (or failed to),
 * then lets them go by closing *go. */
static int start_clients(struct test *t, struct client *c, weft_pid *pid, long n,
                         weft_proc_fn fn, long *started)
{
    int bad = 0;
    for (*started = 0; *started < n; (*started)++) {
        int err = weft_spawn(&pid[*started], fn, &c[*started], NULL);
        if (err) {
            fprintf(stderr, "chat: spawning a client: %s\n", weft_strerror(err));
            bad++;
            break;
        }
    }
    for (long i = 0; i < *started; i++) {
        int id;
        weft_chan_recv(t->ready, &id, sizeof id, WEFT_FOREVER);
    }
    return bad;
}

static int join_clients(struct client *c, weft_pid *pid, long started)
{
    int bad = 0;
    for (long i = 0; i < started; i++) {
        intptr_t r = -1;
        weft_join(pid[i], &r, WEFT_FOREVER);
        if (r != 0) {
            fprintf(stderr, "chat: %s\n", c[i].why[0] ? c[i].why : "a client failed");
            bad++;
        }
    }
    return bad;
}

/* The self-test: see the top of the file. Returns the number of failed checks. */
static int self_test(long n)
{
    struct room_stats stats = {0};
    struct server s;
    weft_pid room_pid, spid;
    weft_addr addr;
    struct test t = {.addr = &addr, .n = n};
    atomic_init(&t.flood_stop, false);
    int err = room_start(&room_pid, &stats);
    if (!err)
        err = weft_addr_ip(&addr, "127.0.0.1", 0);
    if (!err)
        err = server_start(&s, &addr, room_pid, &spid);
    if (!err)
        err = weft_sock_addr(s.lfd, &addr);
    if (!err)
        err = weft_chan_make(&t.ready, sizeof(int), (size_t)n + 2);
    if (!err)
        err = weft_chan_make(&t.go, 1, 0);
    if (!err)
        err = weft_chan_make(&t.wake, 1, 0);
    if (err) {
        fprintf(stderr, "chat: starting: %s\n", weft_strerror(err));
        return 1;
    }

    /* Phase 1: N talkers. */
    struct client *c = calloc((size_t)n, sizeof *c);
    weft_pid *pid = calloc((size_t)n, sizeof *pid);
    long started = 0;
    int bad = 0;
    if (!c || !pid) {
        fprintf(stderr, "chat: out of memory\n");
        return 1;
    }
    for (long i = 0; i < n; i++)
        c[i] = (struct client){.id = (int)i, .t = &t};
    bad += start_clients(&t, c, pid, n, talker, &started);
    weft_chan_close(t.go);
    bad += join_clients(c, pid, started);

    /* Phase 2: the sleeper, then the flooder (whose peer follows it). */
    struct client *slow = calloc(1, sizeof *slow);
    struct client *fast = calloc(1, sizeof *fast);
    struct peer *fast_peer = malloc(sizeof *fast_peer);
    weft_pid spid2[2];
    long started2 = 0;
    if (!slow || !fast || !fast_peer) {
        fprintf(stderr, "chat: out of memory\n");
        return 1;
    }
    *slow = (struct client){.id = (int)n, .t = &t};
    *fast = (struct client){.id = (int)n + 1, .t = &t, .peer = fast_peer};
    bad += start_clients(&t, slow, &spid2[0], 1, sleeper, &started2);
    if (started2 == 1) {
        bad += start_clients(&t, fast, &spid2[1], 1, flooder, &started2);
        bad += join_clients(fast, &spid2[1], started2); /* the flooding is over */
        weft_chan_close(t.wake);
        bad += join_clients(slow, &spid2[0], 1);
    }

    /* Stop the server (it waits for the connections: all have ended), then
     * the room. */
    weft_chan_close(s.stop);
    weft_join(spid, NULL, WEFT_FOREVER);
    uint64_t ref;
    weft_msg down;
    weft_match match = {.tag = WEFT_TAG_DOWN};
    err = weft_monitor(room_pid, &ref);
    if (!err)
        err = weft_send(room_pid, TAG_STOP, NULL, 0, WEFT_FOREVER);
    if (!err)
        err = weft_recv(&down, &match, WEFT_FOREVER);
    if (err) {
        fprintf(stderr, "chat: stopping the room: %s\n", weft_strerror(err));
        bad++;
    } else {
        weft_msg_free(&down);
    }
    long clients = n + 2;
    if (s.open != 0 || s.accepted != clients || s.ends[END_QUIT] != clients - 1 ||
        s.ends[END_DROPPED] != 1 || s.ends[END_ERROR] != 0) {
        fprintf(stderr,
                "chat: the server accepted %ld connections (expected %ld), has %ld open; they "
                "ended with %ld quits, %ld EOFs, %ld drops, %ld errors\n",
                s.accepted, clients, s.open, s.ends[END_QUIT], s.ends[END_EOF],
                s.ends[END_DROPPED], s.ends[END_ERROR]);
        bad++;
    }
    if (stats.members != 0 || stats.joins != clients || stats.leaves != clients - 1 ||
        stats.drops != 1 || stats.said != n * LINES + t.flooded + 1) {
        fprintf(stderr,
                "chat: the room saw %ld joins, %ld leaves, %ld drops, %ld lines said (expected "
                "%ld, %ld, 1, %ld) and ended with %ld members\n",
                stats.joins, stats.leaves, stats.drops, stats.said, clients, clients - 1,
                n * LINES + t.flooded + 1, stats.members);
        bad++;
    }
    printf("chat: %ld clients said %d lines each, each got all in order; a slow member was "
           "dropped while the flooder said %ld long lines; on %d workers: %s\n",
           n, LINES, t.flooded, weft_workers(), bad ? "WRONG" : "ok");
    weft_chan_release(t.ready);
    weft_chan_release(t.go);
    weft_chan_release(t.wake);
    weft_chan_release(s.stop);
    weft_chan_release(s.done);
    free(fast_peer);
    free(fast);
    free(slow);
    free(pid);
    free(c);
    return bad;
}

struct options {
    int port;
    long self_test;
};

static intptr_t app(void *arg)
{
    const struct options *o = arg;
    if (o->self_test > 0)
        return self_test(o->self_test) != 0;
    struct room_stats stats;
    struct server s;
    weft_pid room_pid, spid;
    weft_addr addr;
    int err = room_start(&room_pid, &stats);
    if (!err)
        err = weft_addr_ip(&addr, NULL, o->port);
    if (!err)
        err = server_start(&s, &addr, room_pid, &spid);
    if (!err)
        err = weft_sock_addr(s.lfd, &addr);
    if (err) {
        fprintf(stderr, "chat: listening on port %d: %s\n", o->port, weft_strerror(err));
        return 1;
    }
    char text[64];
    weft_addr_format(&addr, text, sizeof text);
    printf("chat: listening on %s with %d workers\n", text, weft_workers());
    fflush(stdout);
    weft_join(spid, NULL, WEFT_FOREVER); /* until killed */
    return 0;
}

int main(int argc, char **argv)
{
    weft_config cfg;
    weft_config_init(&cfg);
    struct options o = {.port = 7778};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0)
            o.port = (int)option_value(argc, argv, &i, 0, 65535);
        else if (strcmp(argv[i], "--workers") == 0)
            cfg.workers = (unsigned)option_value(argc, argv, &i, 0, WEFT_WORKERS_MAX);
        else if (strcmp(argv[i], "--self-test") == 0)
            o.self_test = option_value(argc, argv, &i, 1, OUTBOX / 2);
        else {
            fprintf(stderr, "usage: %s [--port P] [--workers W] [--self-test N]\n", argv[0]);
            return 2;
        }
    }
    intptr_t status = 1;
    int err = weft_run(app, &o, &cfg, &status);
    if (err)
        fprintf(stderr, "chat: weft_run: %s\n", weft_strerror(err));
    return err ? 1 : (int)status;
}
