/* test-mailbox.c: mailboxes, from weft.h's contract: copied payloads of every
 * size with their tag and sender, zero-copy buffers and who owns them, FIFO
 * order per sender under many senders, sends to dead and forged pids,
 * receive deadlines, selective receive (by tag, sender, predicate; against a
 * model; and not quadratic), bounded mailboxes and backpressure, the mailbox
 * as a select case beside channels, outside threads, weft_mailbox_len, the
 * freeing of messages nobody received, and a deterministic exploration of
 * sends, receives and selects with deadlines. */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#define TEST_PROC_CHECKS
#include "explore.h"
#include "test.h"

/* A pid that was never handed out (a generation no slot has had yet). */
#define FORGED_PID ((weft_pid)0x00ABCDEFull << 32 | 3)

/* ---- helpers ------------------------------------------------------------------------ */

static intptr_t ret_arg(void *arg)
{
    return (intptr_t)arg;
}

static unsigned char pattern(int msg, size_t byte, size_t size)
{
    return (unsigned char)(msg * 31 + byte * 7 + size + (byte >> 8));
}

static void fill(unsigned char *p, int msg, size_t size)
{
    for (size_t b = 0; b < size; b++)
        p[b] = pattern(msg, b, size);
}

/* Checks a received message: its tag, sender, size, alignment and bytes;
 * returns 0, or 1 after recording why. */
static int check_msg(const weft_msg *m, int tag, weft_pid from, int seq, size_t size, int line)
{
    if (m->tag != tag || m->from != from || m->size != size || m->ref != 0 || m->reason != 0) {
        check_fail(line, "message %d: tag %d from %#llx size %zu ref %llu reason %ld; expected tag %d "
                   "from %#llx size %zu", seq, m->tag, (unsigned long long)m->from, m->size,
                   (unsigned long long)m->ref, (long)m->reason, tag, (unsigned long long)from, size);
        return 1;
    }
    if (size == 0) {
        if (m->data != NULL) {
            check_fail(line, "message %d: size 0 with data %p", seq, m->data);
            return 1;
        }
        return 0;
    }
    if (m->data == NULL || ((uintptr_t)m->data & 15) != 0) {
        check_fail(line, "message %d: data %p not 16-byte aligned", seq, m->data);
        return 1;
    }
    const unsigned char *p = m->data;
    for (size_t b = 0; b < size; b++)
        if (p[b] != pattern(seq, b, size)) {
            check_fail(line, "message %d of %zu bytes: byte %zu is %#x, expected %#x", seq, size, b,
                       p[b], pattern(seq, b, size));
            return 1;
        }
    return 0;
}

static int recv_match(weft_msg *m, int tag, weft_pid from, int64_t deadline)
{
    weft_match mt = {.tag = tag, .from = from};
    return weft_recv(m, &mt, deadline);
}

/* Receives and frees everything queued now; returns how many. */
static int drain(void)
{
    int n = 0;
    weft_msg m;
    while (weft_recv(&m, NULL, 0) == 0) {
        weft_msg_free(&m);
        n++;
    }
    return n;
}

/* ---- a thread-safe counting allocator --------------------------------------------------
 * Each block carries its size in a 16-byte header (which keeps the 16-byte
 * alignment of malloc): live bytes are exact, and a free with a wrong size
 * is counted. */
enum { HEADER = 16 };

static struct {
    atomic_long live;     /* bytes held by weft now */
    atomic_long allocs, frees, bad_size;
} mem;

static void *counting_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    char *block = ptr ? (char *)ptr - HEADER : NULL;
    if (block && *(size_t *)block != old_size)
        atomic_fetch_add(&mem.bad_size, 1);
    if (new_size == 0) {
        if (block) {
            atomic_fetch_sub(&mem.live, (long)*(size_t *)block);
            atomic_fetch_add(&mem.frees, 1);
        }
        free(block);
        return NULL;
    }
    if (block) {
        size_t had = *(size_t *)block;
        char *nb = realloc(block, new_size + HEADER);
        if (!nb)
            return NULL;
        *(size_t *)nb = new_size;
        atomic_fetch_add(&mem.live, (long)new_size - (long)had);
        return nb + HEADER;
    }
    block = malloc(new_size + HEADER);
    if (!block)
        return NULL;
    *(size_t *)block = new_size;
    atomic_fetch_add(&mem.live, (long)new_size);
    atomic_fetch_add(&mem.allocs, 1);
    return block + HEADER;
}

static void mem_reset(void)
{
    atomic_store(&mem.live, 0);
    atomic_store(&mem.allocs, 0);
    atomic_store(&mem.frees, 0);
    atomic_store(&mem.bad_size, 0);
}

/* Runs fn at the given workers with the counting allocator, then asserts
 * that every block was given back with its size. */
static void run_counted(unsigned workers, weft_proc_fn fn)
{
    ASSERT_OK(weft_set_allocator(counting_alloc, NULL));
    mem_reset();
    run_at_workers(workers, fn, NULL);
    cr_assert_eq(atomic_load(&mem.allocs), atomic_load(&mem.frees),
                 "%u workers: %ld allocations, %ld frees after the run", workers,
                 atomic_load(&mem.allocs), atomic_load(&mem.frees));
    cr_assert_eq(atomic_load(&mem.bad_size), 0, "%ld frees with a wrong size",
                 atomic_load(&mem.bad_size));
    cr_assert_eq(atomic_load(&mem.live), 0, "%ld bytes still held", atomic_load(&mem.live));
    ASSERT_OK(weft_set_allocator(NULL, NULL));
}

/* ---- copied payloads, tags, senders ---------------------------------------------------- */

static const size_t msg_sizes[] = {0, 1, 15, 16, 4096, WEFT_MSG_MAX};
enum { NSIZES = sizeof msg_sizes / sizeof msg_sizes[0] };

/* Receives one message of each size from the pid in arg, in order. */
static intptr_t recv_each_size(void *arg)
{
    weft_pid from = *(weft_pid *)arg;
    for (int i = 0; i < NSIZES; i++) {
        weft_msg m;
        int rc = weft_recv(&m, NULL, WEFT_FOREVER);
        if (rc != 0) {
            check_fail(__LINE__, "receive %d: %d (%s)", i, rc, weft_strerror(rc));
            return 1;
        }
        check_msg(&m, 100 + i, from, i, msg_sizes[i], __LINE__);
        weft_msg_free(&m);
        CHECK(m.data == NULL && m.size == 0 && m.tag == 0, "weft_msg_free left the fields set");
    }
    return 0;
}

/* Each size, to another process and to the sender itself: each arrives
 * whole, 16-byte aligned, with its tag and sender, and the send copied it
 * (the sender scribbles over its buffer at once). */
static intptr_t sizes_main(void *arg)
{
    weft_pid me = weft_self();
    weft_pid rx = spawn_proc(recv_each_size, &me);
    unsigned char *buf = malloc(WEFT_MSG_MAX);
    for (int to_self = 0; to_self < 2; to_self++) {
        for (int i = 0; i < NSIZES; i++) {
            size_t size = msg_sizes[i];
            fill(buf, i, size);
            CHECK_RC(weft_send(to_self ? me : rx, 100 + i, size ? buf : NULL, size, WEFT_FOREVER), 0);
            memset(buf, 0xEE, size < 65536 ? size : 65536); /* the first 64 KiB reused at once */
            if (size > 65536)
                memset(buf + size - 4096, 0xEE, 4096);
        }
        if (to_self) {
            CHECK(weft_mailbox_len() == NSIZES, "%ld messages queued, expected %d",
                  weft_mailbox_len(), NSIZES);
            for (int i = 0; i < NSIZES; i++) {
                weft_msg m;
                CHECK_RC(weft_recv(&m, NULL, 0), 0);
                check_msg(&m, 100 + i, me, i, msg_sizes[i], __LINE__);
                weft_msg_free(&m);
            }
        }
    }
    free(buf);
    CHECK(join_proc(rx) == 0, "the receiver failed");
    CHECK(weft_mailbox_len() == 0, "%ld messages left", weft_mailbox_len());
    /* weft_msg_free of NULL and of a cleared message does nothing. */
    weft_msg_free(NULL);
    weft_msg m = {0};
    weft_msg_free(&m);
    return 0;
}

Test(mailbox, payloads_of_each_size_arrive_whole_and_copied, .timeout = 60)
{
    run_1_and_2(sizes_main, NULL);
}

/* Tags 1 to INT_MAX are accepted, anything below 1 refused (and nothing
 * sent); a payload above WEFT_MSG_MAX or NULL data with a size is refused. */
static intptr_t tags_main(void *arg)
{
    weft_pid me = weft_self();
    int tags[] = {1, 2, 1000, INT_MAX};
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
        CHECK_RC(weft_send(me, tags[i], &i, sizeof i, 0), 0);
    int bad[] = {0, -1, WEFT_TAG_EXIT, WEFT_TAG_DOWN, INT_MIN};
    int v = 5;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_RC(weft_send(me, bad[i], &v, sizeof v, 0), -EINVAL);
    CHECK_RC(weft_send(me, 1, NULL, 4, 0), -EINVAL);
    CHECK_RC(weft_send(me, 1, &v, WEFT_MSG_MAX + 1, 0), -EMSGSIZE);
    CHECK_RC(weft_send(me, 1, &v, SIZE_MAX, 0), -EMSGSIZE);
    CHECK(weft_mailbox_len() == 4, "%ld messages queued after refused sends", weft_mailbox_len());
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        weft_msg m;
        CHECK_RC(weft_recv(&m, NULL, 0), 0);
        CHECK(m.tag == tags[i] && m.from == me && m.size == sizeof i && *(size_t *)m.data == i,
              "message %zu: tag %d from %#llx", i, m.tag, (unsigned long long)m.from);
        weft_msg_free(&m);
    }
    return 0;
}

Test(mailbox, tags_from_1_up_and_refused_sends, .timeout = 30)
{
    run_1_and_2(tags_main, NULL);
}

/* ---- zero-copy buffers ------------------------------------------------------------------ */

struct zc {
    weft_pid back; /* where the echo process sends the buffers back */
    int n;
};

/* Receives buffers, checks them, takes them (the same address) and sends
 * them back moved, after writing a mark into them. */
static intptr_t zc_echo(void *arg)
{
    struct zc *z = arg;
    for (int i = 0; i < z->n; i++) {
        weft_msg m;
        CHECK_RC(weft_recv(&m, NULL, WEFT_FOREVER), 0);
        void *sent = *(void **)m.data; /* each buffer starts with its own address */
        CHECK(m.data == sent, "buffer %d arrived at %p, sent from %p: copied", i, m.data, sent);
        size_t size = m.size;
        int tag = m.tag;
        void *buf = weft_msg_take(&m); /* m is given up: its fields are not read again */
        CHECK(buf == sent, "weft_msg_take gave %p, the payload was at %p", buf, sent);
        CHECK(weft_buf_size(buf) == size, "weft_buf_size %zu, message size %zu", weft_buf_size(buf),
              size);
        ((unsigned char *)buf)[size - 1] ^= 0xFF; /* the mark */
        CHECK_RC(weft_send_buf(z->back, tag, buf, WEFT_FOREVER), 0);
    }
    return 0;
}

static intptr_t zero_copy_main(void *arg)
{
    static const size_t sizes[] = {16, 17, 4096, (size_t)1 << 20};
    enum { N = sizeof sizes / sizeof sizes[0] };
    struct zc z = {.back = weft_self(), .n = N};
    weft_pid echo = spawn_proc(zc_echo, &z);
    void *bufs[N];
    for (int i = 0; i < N; i++) {
        bufs[i] = weft_buf_alloc(sizes[i]);
        CHECK(bufs[i] != NULL, "weft_buf_alloc(%zu) failed", sizes[i]);
        if (!bufs[i])
            return 1;
        CHECK(((uintptr_t)bufs[i] & 15) == 0, "buffer %p not 16-byte aligned", bufs[i]);
        CHECK(weft_buf_size(bufs[i]) == sizes[i], "weft_buf_size %zu, allocated %zu",
              weft_buf_size(bufs[i]), sizes[i]);
        memset(bufs[i], 0x3C, sizes[i]);
        *(void **)bufs[i] = bufs[i];
        CHECK_RC(weft_send_buf(echo, 10 + i, bufs[i], 0), 0);
    }
    for (int i = 0; i < N; i++) {
        weft_msg m;
        CHECK_RC(weft_recv(&m, NULL, WEFT_FOREVER), 0);
        CHECK(m.tag == 10 + i && m.from == echo, "echo %d: tag %d", i, m.tag);
        CHECK(m.data == bufs[i] && m.size == sizes[i], "echo %d came back at %p (%zu bytes), sent "
              "%p (%zu)", i, m.data, m.size, bufs[i], sizes[i]);
        if (m.data == bufs[i])
            CHECK(((unsigned char *)m.data)[sizes[i] - 1] == (0x3C ^ 0xFF) &&
                  ((unsigned char *)m.data)[8] == 0x3C, "echo %d: contents changed", i);
        weft_msg_free(&m);
    }
    CHECK(join_proc(echo) == 0, "the echo process failed");

    /* A copied payload taken: the same address, a weft buffer of its size. */
    char text[40] = "taken without a copy";
    CHECK_RC(weft_send(weft_self(), 3, text, sizeof text, 0), 0);
    weft_msg m;
    CHECK_RC(weft_recv(&m, NULL, 0), 0);
    void *payload = m.data;
    void *taken = weft_msg_take(&m);
    CHECK(taken == payload && taken != NULL, "weft_msg_take gave %p for a payload at %p", taken, payload);
    if (taken) {
        CHECK(weft_buf_size(taken) == sizeof text && strcmp(taken, text) == 0, "taken buffer: %zu bytes",
              weft_buf_size(taken));
        weft_buf_free(taken);
    }
    /* No payload: NULL. */
    CHECK_RC(weft_send(weft_self(), 4, NULL, 0, 0), 0);
    CHECK_RC(weft_recv(&m, NULL, 0), 0);
    CHECK(weft_msg_take(&m) == NULL, "weft_msg_take of an empty message was not NULL");
    CHECK(weft_mailbox_len() == 0, "%ld messages left", weft_mailbox_len());

    /* The limits of weft_buf_alloc; weft_buf_free(NULL) does nothing. */
    CHECK(weft_buf_alloc(WEFT_MSG_MAX + 1) == NULL, "a buffer above WEFT_MSG_MAX was allocated");
    CHECK(weft_buf_alloc(SIZE_MAX) == NULL, "a buffer of SIZE_MAX bytes was allocated");
    void *big = weft_buf_alloc(WEFT_MSG_MAX);
    CHECK(big != NULL && weft_buf_size(big) == WEFT_MSG_MAX, "weft_buf_alloc(WEFT_MSG_MAX) failed");
    weft_buf_free(big);
    weft_buf_free(NULL);
    return 0;
}

Test(mailbox, zero_copy_buffers_arrive_at_the_same_address, .timeout = 30)
{
    run_1_and_2(zero_copy_main, NULL);
}

/* A send_buf that fails leaves the buffer with the caller: it is intact and
 * the caller frees it (ASan: a double free if weft had freed it). */
static intptr_t zc_errors_main(void *arg)
{
    weft_pid me = weft_self();
    weft_chan ch = make_chan(sizeof(int), 1);
    unsigned char *buf = weft_buf_alloc(256);
    CHECK(buf != NULL, "weft_buf_alloc failed");
    if (!buf)
        return 1;
    fill(buf, 9, 256);
    CHECK_RC(weft_send_buf(FORGED_PID, 1, buf, 0), -ESRCH);
    CHECK_RC(weft_send_buf((weft_pid)ch, 1, buf, 0), -ESRCH); /* a channel is not a pid */
    CHECK_RC(weft_send_buf(me, 0, buf, 0), -EINVAL);
    CHECK_RC(weft_send_buf(me, -5, buf, WEFT_FOREVER), -EINVAL);
    CHECK_RC(weft_send_buf(me, 1, NULL, 0), -EINVAL);
    /* A full bounded mailbox: -EAGAIN at once, -ETIMEDOUT at a deadline. */
    CHECK_RC(weft_mailbox_bound(1), 0);
    CHECK_RC(weft_send(me, 7, NULL, 0, 0), 0);
    CHECK_RC(weft_send_buf(me, 1, buf, 0), -EAGAIN);
    CHECK_RC(weft_send_buf(me, 1, buf, test_in_ms(10)), -ETIMEDOUT);
    CHECK(weft_mailbox_len() == 1, "%ld messages queued", weft_mailbox_len());
    weft_msg m;
    CHECK_RC(weft_recv(&m, NULL, 0), 0);
    CHECK(m.tag == 7, "received tag %d", m.tag);
    weft_msg_free(&m);
    CHECK_RC(weft_mailbox_bound(0), 0);
    /* Still the caller's: untouched. */
    for (size_t b = 0; b < 256; b++)
        if (buf[b] != pattern(9, b, 256)) {
            check_fail(__LINE__, "a refused send_buf changed byte %zu", b);
            break;
        }
    buf[0] ^= 1; /* writable */
    weft_buf_free(buf);
    CHECK_RC(weft_chan_release(ch), 0);
    return 0;
}

Test(mailbox, refused_send_buf_leaves_the_buffer_with_the_caller, .timeout = 30)
{
    run_1_and_2(zc_errors_main, NULL);
}

/* ---- per-sender FIFO with many senders ------------------------------------------------- */

enum { FIFO_SENDERS = 4 };

struct fifo_arg {
    weft_pid to;
    int index, per;
};

static intptr_t fifo_sender(void *arg)
{
    struct fifo_arg *a = arg;
    for (int i = 0; i < a->per; i++) {
        int payload[2] = {a->index, i};
        int rc = weft_send(a->to, 1 + a->index, payload, sizeof payload, 0);
        if (rc != 0) {
            check_fail(__LINE__, "sender %d, message %d: %d (%s)", a->index, i, rc, weft_strerror(rc));
            return 1;
        }
        if (i % 64 == 0)
            weft_yield();
    }
    return 0;
}

static void *fifo_thread(void *arg)
{
    fifo_sender(arg);
    return NULL;
}

/* Four processes spread over the workers and one outside thread send to the
 * main process at once: each sender's messages arrive in the order sent,
 * none lost or doubled, each with its sender's pid (0 for the thread). */
static intptr_t fifo_main(void *arg)
{
    int per = test_sanitized() ? 2000 : 10000;
    struct fifo_arg args[FIFO_SENDERS + 1];
    weft_pid pids[FIFO_SENDERS + 1];
    for (int s = 0; s <= FIFO_SENDERS; s++)
        args[s] = (struct fifo_arg){weft_self(), s, per};
    for (int s = 0; s < FIFO_SENDERS; s++)
        pids[s] = spawn_on(fifo_sender, &args[s], s, s % 2);
    pids[FIFO_SENDERS] = 0;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fifo_thread, &args[FIFO_SENDERS]) == 0, "pthread_create");
    int next[FIFO_SENDERS + 1] = {0};
    int total = (FIFO_SENDERS + 1) * per;
    for (int k = 0; k < total; k++) {
        weft_msg m;
        int rc = weft_recv(&m, NULL, test_in_ms(20000));
        if (rc != 0) {
            check_fail(__LINE__, "receive %d of %d: %d (%s)", k, total, rc, weft_strerror(rc));
            break;
        }
        const int *p = m.data;
        int s = m.tag - 1;
        if (s < 0 || s > FIFO_SENDERS || m.size != 2 * sizeof(int) || p[0] != s ||
            m.from != pids[s] || p[1] != next[s]) {
            check_fail(__LINE__, "message %d: tag %d from %#llx, payload (%d, %d); expected "
                       "sequence %d of sender %d", k, m.tag, (unsigned long long)m.from,
                       m.size >= 8 ? p[0] : -1, m.size >= 8 ? p[1] : -1, s >= 0 && s <= FIFO_SENDERS ? next[s] : -1, s);
            weft_msg_free(&m);
            break;
        }
        next[s]++;
        weft_msg_free(&m);
    }
    pthread_join(t, NULL);
    for (int s = 0; s < FIFO_SENDERS; s++)
        CHECK(join_proc(pids[s]) == 0, "sender %d failed", s);
    CHECK(weft_mailbox_len() == 0, "%ld messages beyond those sent", weft_mailbox_len());
    return 0;
}

Test(mailbox, each_senders_messages_arrive_in_order, .timeout = 60)
{
    for (int round = 0; round < (test_sanitized() ? 2 : 8); round++)
        run_1_and_2(fifo_main, NULL);
}

/* ---- dead and forged pids ---------------------------------------------------------------- */

/* A pid whose process has ended takes messages and drops them: the sends
 * succeed, and the memory they took is given back at once (the counting
 * allocator's live bytes do not grow by the 4 MiB sent). One worker: a
 * spawned process runs at once to its end before weft_spawn returns. */
static intptr_t dead_pid_main(void *arg)
{
    enum { N = 1000, SIZE = 4096 };
    static unsigned char payload[SIZE];
    weft_pid ended = spawn_proc(ret_arg, NULL);   /* ended, not joined */
    weft_pid joined = spawn_proc(ret_arg, NULL);
    CHECK_RC(weft_join(joined, NULL, WEFT_FOREVER), 0); /* stale */
    weft_pid targets[] = {ended, joined};
    for (int t = 0; t < 2; t++) {
        long before = atomic_load(&mem.live);
        for (int i = 0; i < N; i++) {
            int rc = weft_send(targets[t], 1, payload, SIZE, i % 2 ? 0 : WEFT_FOREVER);
            if (rc != 0) {
                check_fail(__LINE__, "send %d to a dead pid: %d (%s)", i, rc, weft_strerror(rc));
                break;
            }
        }
        long grew = atomic_load(&mem.live) - before;
        CHECK(grew < 512 * 1024, "%s pid: %ld bytes more held after %d sends of %d bytes to it",
              t ? "a joined" : "an ended", grew, N, SIZE);
        /* A moved buffer is freed too. */
        before = atomic_load(&mem.live);
        void *buf = weft_buf_alloc(1 << 20);
        CHECK(buf != NULL, "weft_buf_alloc failed");
        CHECK_RC(weft_send_buf(targets[t], 2, buf, 0), 0);
        grew = atomic_load(&mem.live) - before;
        CHECK(grew < 256 * 1024, "a 1 MiB buffer sent to a dead pid: %ld bytes still held", grew);
    }
    CHECK_RC(weft_join(ended, NULL, WEFT_FOREVER), 0);
    /* Never a pid: -ESRCH, nothing sent. */
    weft_chan ch = make_chan(sizeof(int), 1);
    weft_pid forged[] = {FORGED_PID, (weft_pid)ch, joined + (0x400000ull << 32), 0x100000001ull};
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++)
        CHECK_RC(weft_send(forged[i], 1, payload, 16, 0), -ESRCH);
    CHECK_RC(weft_chan_len(ch), 0);
    CHECK_RC(weft_chan_release(ch), 0);
    return 0;
}

Test(mailbox, sends_to_dead_pids_succeed_and_are_dropped, .timeout = 30)
{
    run_counted(1, dead_pid_main);
}

/* A send racing with the end of its target: the target's last reference
 * goes as the send looks it up. Sent or dropped, a send to a pid that was
 * handed out returns 0, never -ESRCH ("never a pid"). One worker spawns
 * short processes that publish their pids; the other sends to each. */
struct exit_race {
    _Atomic weft_pid latest;
    atomic_int stop;
    atomic_long sends, failures;
};

static intptr_t publish_and_end(void *arg)
{
    struct exit_race *r = arg;
    atomic_store(&r->latest, weft_self());
    return 0;
}

static intptr_t exit_race_spawner(void *arg)
{
    struct exit_race *r = arg;
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.detached = 1;
    for (long i = 0; i < 200000 && !atomic_load(&r->failures); i++)
        CHECK_RC(weft_spawn(NULL, publish_and_end, r, &o), 0);
    atomic_store(&r->stop, 1);
    return 0;
}

static intptr_t exit_race_sender(void *arg)
{
    struct exit_race *r = arg;
    while (!atomic_load(&r->stop)) {
        weft_pid to = atomic_load(&r->latest);
        if (!to)
            continue;
        int rc = weft_send(to, 1, NULL, 0, 0);
        atomic_fetch_add(&r->sends, 1);
        if (rc != 0) {
            atomic_fetch_add(&r->failures, 1);
            check_fail(__LINE__, "a send to a pid that ended meanwhile: %d (%s)", rc,
                       weft_strerror(rc));
            break;
        }
    }
    return 0;
}

static intptr_t exit_race_main(void *arg)
{
    struct exit_race r = {0};
    weft_pid s = spawn_on(exit_race_sender, &r, 1, 1);
    weft_pid p = spawn_on(exit_race_spawner, &r, 0, 1);
    join_proc(p);
    join_proc(s);
    CHECK(atomic_load(&r.sends) > 0, "no send was made");
    return 0;
}

Test(mailbox, sends_racing_with_the_end_of_their_target_never_say_never_a_pid, .timeout = 60)
{
    run_at_workers(2, exit_race_main, NULL);
}

/* A pid's slot used again 2^24 times: its reuse count goes round, and a pid
 * of an earlier use is still "ended" (its sends are dropped, 0), not
 * "never a pid". Detached spawns on one worker reuse one slot each time
 * (the worker's cache of free slots is last-in, first-out). */
static intptr_t do_nothing(void *arg)
{
    return 0;
}

static int spawn_nothing(long n)
{
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.detached = 1;
    for (long i = 0; i < n; i++) {
        int rc = weft_spawn(NULL, do_nothing, NULL, &o);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static intptr_t wrap_main(void *arg)
{
    /* old takes one of the last reuse numbers before the count goes round,
     * later uses take small ones again. */
    CHECK_RC(spawn_nothing((1L << 24) - 300), 0);
    weft_pid old = spawn_proc(ret_arg, NULL);
    CHECK_RC(weft_join(old, NULL, WEFT_FOREVER), 0);
    CHECK_RC(spawn_nothing(600), 0);
    weft_pid now = spawn_proc(ret_arg, NULL);
    CHECK((uint32_t)now == (uint32_t)old && (now >> 32 & 0xFFFFFF) < (old >> 32 & 0xFFFFFF),
          "the slot did not go round: pid %#llx then %#llx", (unsigned long long)old,
          (unsigned long long)now);
    CHECK_RC(weft_join(now, NULL, WEFT_FOREVER), 0);
    CHECK_RC(weft_send(old, 1, NULL, 0, 0), 0);
    return 0;
}

Test(mailbox, a_pid_stays_ended_after_its_slot_went_round, .timeout = 120)
{
    if (test_sanitized())
        cr_skip_test("16.8 million spawns: too slow under a sanitizer");
    run_at_workers(1, wrap_main, NULL);
}

/* ---- receive deadlines ------------------------------------------------------------------- */

static intptr_t send_after_20ms(void *arg)
{
    weft_sleep(test_in_ms(20));
    int v = 42;
    return weft_send(*(weft_pid *)arg, 5, &v, sizeof v, 0);
}

static intptr_t deadline_main(void *arg)
{
    weft_msg m;
    int64_t t0 = weft_now();
    CHECK_RC(weft_recv(&m, NULL, 0), -ETIMEDOUT);
    CHECK_RC(weft_recv(&m, NULL, 1), -ETIMEDOUT);
    CHECK_RC(weft_recv(&m, NULL, weft_now() - 1000 * MS), -ETIMEDOUT);
    CHECK(weft_now() - t0 < 1000 * MS, "non-blocking receives took %lld ns", (long long)(weft_now() - t0));
    t0 = weft_now();
    int rc = weft_recv(&m, NULL, t0 + 20 * MS);
    int64_t el = weft_now() - t0;
    CHECK_RC(rc, -ETIMEDOUT);
    CHECK(el >= 20 * MS && el < 2000 * MS, "a 20 ms receive returned after %lld ns", (long long)el);
    /* A message that arrives while the receiver waits ends the wait. */
    weft_pid me = weft_self();
    for (int forever = 0; forever < 2; forever++) {
        weft_pid p = spawn_proc(send_after_20ms, &me);
        t0 = weft_now();
        rc = weft_recv(&m, NULL, forever ? WEFT_FOREVER : t0 + 10000 * MS);
        el = weft_now() - t0;
        CHECK_RC(rc, 0);
        if (rc == 0) {
            CHECK(m.tag == 5 && m.from == p && *(int *)m.data == 42, "received tag %d", m.tag);
            weft_msg_free(&m);
        }
        CHECK(el < 5000 * MS, "the wait ended %lld ns after it began", (long long)el);
        CHECK_RC(join_proc(p), 0);
    }
    /* A non-matching arrival does not end a selective wait. */
    weft_pid p = spawn_proc(send_after_20ms, &me);
    t0 = weft_now();
    CHECK_RC(recv_match(&m, 6, 0, t0 + 60 * MS), -ETIMEDOUT);
    CHECK(weft_now() - t0 >= 60 * MS, "a selective receive returned early");
    CHECK_RC(join_proc(p), 0);
    CHECK(weft_mailbox_len() == 1, "%ld messages queued", weft_mailbox_len());
    CHECK(drain() == 1, "the tag-5 message was lost");
    return 0;
}

Test(mailbox, receive_deadlines, .timeout = 30)
{
    run_1_and_2(deadline_main, NULL);
}

/* ---- selective receive --------------------------------------------------------------------- */

/* The model: every message sent, in mailbox order, with a flag once taken. */
enum { SEL_MAX = 4096 };
struct sel_entry {
    int tag;
    int from;  /* index of the sender: 0 main, 1..3 helpers */
    int value; /* unique */
    bool taken;
};

static struct {
    struct sel_entry e[SEL_MAX];
    int n;
    weft_pid pids[4];
    int pred_mod, pred_rem;
    int seen[SEL_MAX]; /* per value: the receive that last showed it to the predicate */
    int receive_no;
    int pred_calls;
    bool twice;
} sel;

static int sel_pred(const weft_msg *m, void *arg)
{
    int *k = arg;
    int v = *(const int *)m->data;
    if (v >= 0 && v < SEL_MAX) {
        if (sel.seen[v] == sel.receive_no)
            sel.twice = true; /* the same candidate twice in one receive */
        sel.seen[v] = sel.receive_no;
    }
    sel.pred_calls++;
    return v % k[0] == k[1];
}

static bool model_takes(const struct sel_entry *e, const weft_match *mt, const int *k)
{
    if (mt->tag && e->tag != mt->tag)
        return false;
    if (mt->from && sel.pids[e->from] != mt->from)
        return false;
    if (mt->ref)
        return false; /* no message here carries a reference */
    if (mt->pred && e->value % k[0] != k[1])
        return false;
    return true;
}

struct sel_helper {
    int index, count;
    uint64_t seed;
};

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* A helper sends its messages to main: the entries main appended for it. */
static intptr_t sel_sender(void *arg)
{
    struct sel_helper *h = arg;
    for (int i = 0; i < sel.n; i++)
        if (sel.e[i].from == h->index)
            CHECK_RC(weft_send(sel.pids[0], sel.e[i].tag, &sel.e[i].value, sizeof(int), 0), 0);
    return 0;
}

static void sel_add(int from, int tag)
{
    if (sel.n < SEL_MAX) {
        sel.e[sel.n] = (struct sel_entry){tag, from, sel.n, false};
        sel.n++;
    }
}

/* Random selective receives (deadline 0) against the model, with new
 * messages from main interleaved: each receive takes exactly the oldest
 * message its match takes, or times out when none does; the predicate sees
 * each candidate at most once per receive. One match object is reused, its
 * fields changed between receives (a receive that resumes must notice). */
static intptr_t selective_main(void *arg)
{
    memset(&sel, 0, sizeof sel);
    uint64_t seed = 99;
    sel.pids[0] = weft_self();
    /* Helpers 1..3 each send a batch, one after another, so that the
     * mailbox's order is the model's. */
    for (int h = 1; h <= 3; h++) {
        int base = sel.n;
        for (int i = 0; i < 300; i++)
            sel_add(h, 1 + (int)(lcg(&seed) % 4));
        struct sel_helper hp = {h, sel.n - base, 0};
        weft_pid p = spawn_proc(sel_sender, &hp);
        sel.pids[h] = p;
        CHECK_RC(join_proc(p), 0);
    }
    CHECK(weft_mailbox_len() == sel.n, "%ld queued, %d sent", weft_mailbox_len(), sel.n);
    /* Each predicate configuration has its own constant arg: a receive with
     * the same fields as the last one resumes after what that one checked,
     * which is right only if the predicate gives the same answers. */
    static int pairs[9][9][2];
    for (int a = 2; a < 9; a++)
        for (int b = 0; b < a; b++) {
            pairs[a][b][0] = a;
            pairs[a][b][1] = b;
        }
    weft_match mt;
    int *k = pairs[2][0];
    int took = 0, timeouts = 0;
    for (int step = 0; step < 3000; step++) {
        if (lcg(&seed) % 3 == 0) { /* main sends itself one more */
            int tag = 1 + (int)(lcg(&seed) % 4);
            sel_add(0, tag);
            CHECK_RC(weft_send(sel.pids[0], tag, &sel.e[sel.n - 1].value, sizeof(int), 0), 0);
        }
        memset(&mt, 0, sizeof mt);
        unsigned kind = (unsigned)(lcg(&seed) % 8);
        if (kind & 1)
            mt.tag = 1 + (int)(lcg(&seed) % 5); /* tag 5: never sent */
        if (kind & 2)
            mt.from = sel.pids[lcg(&seed) % 4];
        if (kind & 4) {
            int a = 2 + (int)(lcg(&seed) % 7);
            k = pairs[a][lcg(&seed) % (uint64_t)a];
            mt.pred = sel_pred;
            mt.arg = k;
        }
        if (step % 97 == 0)
            mt.ref = 12345; /* no message has a reference */
        int expect = -1;
        for (int i = 0; i < sel.n && expect < 0; i++)
            if (!sel.e[i].taken && model_takes(&sel.e[i], &mt, k))
                expect = i;
        long len = weft_mailbox_len();
        sel.receive_no = step + 1;
        sel.pred_calls = 0;
        weft_msg m;
        int rc = weft_recv(&m, step % 4 == 0 ? NULL : &mt, 0);
        if (step % 4 == 0) { /* NULL: the oldest */
            expect = -1;
            for (int i = 0; i < sel.n && expect < 0; i++)
                if (!sel.e[i].taken)
                    expect = i;
        }
        CHECK(sel.pred_calls <= len, "step %d: the predicate ran %d times over %ld messages", step,
              sel.pred_calls, len);
        if (expect < 0) {
            CHECK(rc == -ETIMEDOUT, "step %d: no message matches, receive returned %d (tag %d)", step,
                  rc, rc == 0 ? m.tag : 0);
            if (rc == 0)
                weft_msg_free(&m);
            timeouts++;
            continue;
        }
        const struct sel_entry *e = &sel.e[expect];
        if (rc != 0 || m.size != sizeof(int) || *(int *)m.data != e->value || m.tag != e->tag ||
            m.from != sel.pids[e->from]) {
            check_fail(__LINE__, "step %d (match tag %d from %#llx pred %s): got rc %d value %d tag %d; "
                       "expected value %d tag %d from sender %d", step, mt.tag,
                       (unsigned long long)mt.from, mt.pred ? "yes" : "no", rc,
                       rc == 0 && m.size == sizeof(int) ? *(int *)m.data : -1, rc == 0 ? m.tag : 0,
                       e->value, e->tag, e->from);
            if (rc == 0)
                weft_msg_free(&m);
            return 1;
        }
        sel.e[expect].taken = true;
        took++;
        weft_msg_free(&m);
    }
    CHECK(!sel.twice, "a predicate saw the same message twice in one receive");
    CHECK(took > 500 && timeouts > 50, "took %d, timed out %d: the steps did not cover both", took,
          timeouts);
    /* The rest, in order. */
    for (int i = 0; i < sel.n; i++) {
        if (sel.e[i].taken)
            continue;
        weft_msg m;
        CHECK_RC(weft_recv(&m, NULL, 0), 0);
        CHECK(*(int *)m.data == sel.e[i].value, "drain: value %d, expected %d", *(int *)m.data,
              sel.e[i].value);
        weft_msg_free(&m);
    }
    CHECK(weft_mailbox_len() == 0, "%ld messages left over", weft_mailbox_len());
    return 0;
}

Test(mailbox, selective_receive_matches_a_model, .timeout = 30)
{
    run_1_and_2(selective_main, NULL);
}

/* The cases that a resuming receive gets wrong if it keeps a pointer into
 * the mailbox: the message it stopped at is taken by another receive, or
 * the whole mailbox is drained, before the same match is used again. */
static intptr_t resume_main(void *arg)
{
    weft_pid me = weft_self();
    weft_msg m;
    weft_match two = {.tag = 2};
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 5; i++)
            CHECK_RC(weft_send(me, 1, &i, sizeof i, 0), 0);
        CHECK_RC(weft_recv(&m, &two, 0), -ETIMEDOUT); /* scanned all five */
        if (round == 0) { /* the oldest goes */
            CHECK_RC(weft_recv(&m, NULL, 0), 0);
            weft_msg_free(&m);
        } else if (round == 1) { /* the last one scanned goes */
            weft_match last = {.pred = NULL, .tag = 1};
            for (int i = 0; i < 5; i++) {
                CHECK_RC(weft_recv(&m, &last, 0), 0);
                weft_msg_free(&m);
            }
        } else { /* all go, then more arrive */
            CHECK(drain() == 5, "drain");
            for (int i = 0; i < 3; i++)
                CHECK_RC(weft_send(me, 1, &i, sizeof i, 0), 0);
        }
        int v = 100 + round;
        CHECK_RC(weft_send(me, 2, &v, sizeof v, 0), 0);
        CHECK_RC(weft_recv(&m, &two, 0), 0);
        CHECK(m.tag == 2 && *(int *)m.data == v, "round %d: received tag %d", round, m.tag);
        weft_msg_free(&m);
        CHECK_RC(weft_recv(&m, &two, 0), -ETIMEDOUT);
        drain();
    }
    return 0;
}

Test(mailbox, a_repeated_receive_survives_changes_behind_it, .timeout = 30)
{
    run_1_and_2(resume_main, NULL);
}

/* ---- selective receive is not quadratic ------------------------------------------------------ */

/* With `queued` messages of tag 1 in the mailbox, `rounds` times: send
 * oneself a tag-2 message and receive it by tag. Returns the ns that the
 * rounds took. A receive that rescanned the mailbox from its start would
 * cost rounds * queued steps. */
static int64_t resend_rounds(int queued, int rounds)
{
    weft_pid me = weft_self();
    for (int i = 0; i < queued; i++)
        CHECK_RC(weft_send(me, 1, NULL, 0, 0), 0);
    weft_match two = {.tag = 2};
    weft_msg m;
    int64_t t0 = weft_now();
    for (int r = 0; r < rounds; r++) {
        if (weft_send(me, 2, &r, sizeof r, 0) != 0 || weft_recv(&m, &two, 0) != 0) {
            check_fail(__LINE__, "round %d failed", r);
            break;
        }
        if (*(int *)m.data != r)
            check_fail(__LINE__, "round %d received %d", r, *(int *)m.data);
        weft_msg_free(&m);
    }
    int64_t took = weft_now() - t0;
    weft_match one = {.tag = 1};
    for (int i = 0; i < queued; i++)
        if (weft_recv(&m, &one, 0) != 0) {
            check_fail(__LINE__, "tag-1 message %d of %d missing", i, queued);
            break;
        } else {
            weft_msg_free(&m);
        }
    CHECK(weft_mailbox_len() == 0, "%ld messages left", weft_mailbox_len());
    return took;
}

/* 20,000 rounds over 1,000 and over 100,000 queued messages: a receive that
 * resumes where the last one stopped costs the same in both; one that
 * rescans costs 100 times more with the larger mailbox (2 * 10^9 steps,
 * minutes in any build). The bound is generous for sanitizers and noise:
 * under 20 s, and under 10 times the small case plus 1 s. */
static intptr_t not_quadratic_main(void *arg)
{
    enum { ROUNDS = 20000 };
    int64_t small = resend_rounds(1000, ROUNDS);
    int64_t big = resend_rounds(100000, ROUNDS);
    CHECK(big < 20000 * MS, "%d rounds over 100,000 queued messages took %lld ms", ROUNDS,
          (long long)(big / MS));
    CHECK(big < 10 * small + 1000 * MS, "%d rounds: %lld ms over 100,000 queued messages, %lld ms "
          "over 1,000: the receive scans the mailbox again", ROUNDS, (long long)(big / MS),
          (long long)(small / MS));
    return 0;
}

Test(mailbox, selective_receive_of_new_messages_is_not_quadratic, .timeout = 120)
{
    run_at_workers(1, not_quadratic_main, NULL);
}

/* A receive that waits checks the arrivals alone: a sender trickles n
 * non-matching messages, yielding after each (so that a woken receiver runs
 * each time), then a matching one. Rescanning at each arrival would be
 * n^2 / 2 steps: 5 * 10^9 for n = 100,000, 2,500 times the cost of n =
 * 2,000, where checking arrivals costs 50 times more. */
struct trickle {
    weft_pid to;
    int n;
};

static intptr_t trickler(void *arg)
{
    struct trickle *t = arg;
    for (int i = 0; i < t->n; i++) {
        if (weft_send(t->to, 1, NULL, 0, 0) != 0)
            return 1;
        weft_yield();
    }
    return weft_send(t->to, 2, NULL, 0, 0);
}

static int64_t trickle_wait(int n)
{
    struct trickle t = {weft_self(), n};
    int64_t t0 = weft_now();
    weft_pid p = spawn_proc(trickler, &t);
    weft_msg m;
    CHECK_RC(recv_match(&m, 2, 0, WEFT_FOREVER), 0);
    int64_t took = weft_now() - t0;
    weft_msg_free(&m);
    CHECK_RC(join_proc(p), 0);
    CHECK(weft_mailbox_len() == n, "%ld queued, %d sent", weft_mailbox_len(), n);
    CHECK(drain() == n, "drain");
    return took;
}

static intptr_t waiting_not_quadratic_main(void *arg)
{
    int64_t small = trickle_wait(2000);
    int64_t big = trickle_wait(100000);
    CHECK(big < 20000 * MS, "a wait over 100,000 arrivals took %lld ms", (long long)(big / MS));
    CHECK(big < 500 * small + 250 * MS, "a wait over 100,000 arrivals took %lld ms, over 2,000 "
          "%lld ms: the receive rescans at each arrival", (long long)(big / MS),
          (long long)(small / MS));
    return 0;
}

Test(mailbox, a_waiting_receive_checks_only_arrivals, .timeout = 120)
{
    run_at_workers(1, waiting_not_quadratic_main, NULL);
}

/* ---- bounded mailboxes ------------------------------------------------------------------------ */

struct bounded {
    weft_pid rx;
    weft_chan gate;
    atomic_int sent; /* the blocked sender: 0 waiting, 1 sent, else its error */
    int got[8];
    int ngot;
};

static intptr_t bounded_rx(void *arg)
{
    struct bounded *b = arg;
    int v;
    CHECK_RC(weft_chan_recv(b->gate, &v, sizeof v, WEFT_FOREVER), 0);
    CHECK(weft_mailbox_len() == 3, "a full mailbox of capacity 3 holds %ld", weft_mailbox_len());
    for (int i = 0; i < 4; i++) {
        weft_msg m;
        CHECK_RC(weft_recv(&m, NULL, test_in_ms(10000)), 0);
        b->got[b->ngot++] = *(int *)m.data;
        weft_msg_free(&m);
    }
    return 0;
}

static intptr_t blocked_sender(void *arg)
{
    struct bounded *b = arg;
    int v = 4;
    int rc = weft_send(b->rx, 1, &v, sizeof v, WEFT_FOREVER);
    atomic_store(&b->sent, rc == 0 ? 1 : rc);
    return 0;
}

/* Capacity 3 from the spawn options: three sends fit; the fourth is
 * -EAGAIN at deadline 0 and -ETIMEDOUT at a later one (waiting for it), and
 * nothing was queued; a sender that waits forever proceeds as soon as the
 * receiver takes one, and its message comes last. */
static intptr_t bounded_main(void *arg)
{
    struct bounded b = {.gate = make_chan(sizeof(int), 0)};
    weft_spawn_opts o;
    weft_spawn_opts_init(&o);
    o.mailbox_capacity = 3;
    CHECK_RC(weft_spawn(&b.rx, bounded_rx, &b, &o), 0);
    for (int v = 1; v <= 3; v++)
        CHECK_RC(weft_send(b.rx, 1, &v, sizeof v, 0), 0);
    int x = 99;
    CHECK_RC(weft_send(b.rx, 1, &x, sizeof x, 0), -EAGAIN);
    int64_t t0 = weft_now();
    CHECK_RC(weft_send(b.rx, 1, &x, sizeof x, t0 + 20 * MS), -ETIMEDOUT);
    int64_t el = weft_now() - t0;
    CHECK(el >= 20 * MS && el < 2000 * MS, "a 20 ms send returned after %lld ns", (long long)el);
    weft_pid s = spawn_proc(blocked_sender, &b);
    weft_sleep(test_in_ms(30));
    CHECK(atomic_load(&b.sent) == 0, "a send to a full mailbox completed (%d)", atomic_load(&b.sent));
    int v = 0;
    CHECK_RC(weft_chan_send(b.gate, &v, sizeof v, WEFT_FOREVER), 0);
    CHECK_RC(join_proc(s), 0);
    CHECK(atomic_load(&b.sent) == 1, "the blocked sender ended with %d", atomic_load(&b.sent));
    CHECK_RC(join_proc(b.rx), 0);
    CHECK(b.ngot == 4 && b.got[0] == 1 && b.got[1] == 2 && b.got[2] == 3 && b.got[3] == 4,
          "received %d messages: %d %d %d %d", b.ngot, b.got[0], b.got[1], b.got[2], b.got[3]);
    CHECK_RC(weft_chan_release(b.gate), 0);
    return 0;
}

Test(mailbox, bounded_mailbox_refuses_waits_and_proceeds, .timeout = 30)
{
    run_1_and_2(bounded_main, NULL);
}

/* weft_mailbox_bound on one's own mailbox: messages already queued stay
 * (more than the new bound); sends are refused until there is room; bound 0
 * lifts the limit. */
static intptr_t bound_self_main(void *arg)
{
    weft_pid me = weft_self();
    for (int i = 0; i < 5; i++)
        CHECK_RC(weft_send(me, 1, &i, sizeof i, 0), 0);
    CHECK_RC(weft_mailbox_bound(2), 0);
    CHECK(weft_mailbox_len() == 5, "bounding dropped messages: %ld left", weft_mailbox_len());
    int v = 9;
    CHECK_RC(weft_send(me, 1, &v, sizeof v, 0), -EAGAIN);
    weft_msg m;
    for (int i = 0; i < 4; i++) {
        CHECK_RC(weft_recv(&m, NULL, 0), 0);
        CHECK(*(int *)m.data == i, "received %d, expected %d", *(int *)m.data, i);
        weft_msg_free(&m);
    }
    CHECK(weft_mailbox_len() == 1, "%ld queued", weft_mailbox_len());
    CHECK_RC(weft_send(me, 1, &v, sizeof v, 0), 0);
    CHECK_RC(weft_send(me, 1, &v, sizeof v, 0), -EAGAIN);
    CHECK_RC(weft_mailbox_bound(0), 0);
    for (int i = 0; i < 100; i++)
        CHECK_RC(weft_send(me, 1, &i, sizeof i, 0), 0);
    CHECK(weft_mailbox_len() == 102, "%ld queued", weft_mailbox_len());
    CHECK(drain() == 102, "drain");
    return 0;
}

Test(mailbox, mailbox_bound_on_oneself, .timeout = 30)
{
    run_1_and_2(bound_self_main, NULL);
}

/* A late reply (its call is over) is dropped as it reaches the owner's
 * list: in a bounded mailbox that frees its place. Capacity 1, the owner
 * waiting, one stale reply: after the owner dropped it, a send fits at
 * once, and so does a send that was already waiting for room (by a select
 * too). */
struct stale_room {
    weft_chan go;
    int use_select;
};

static intptr_t stale_room_owner(void *arg)
{
    struct stale_room *r = arg;
    CHECK_RC(weft_mailbox_bound(1), 0);
    int v = 0;
    CHECK_RC(weft_chan_send(r->go, &v, sizeof v, WEFT_FOREVER), 0);
    for (int i = 0; i < 2; i++) {
        weft_msg m;
        if (r->use_select) {
            weft_case c[1] = {WEFT_MSG_CASE(&m, NULL)};
            CHECK_RC(weft_select(c, 1, WEFT_SELECT_FAIR, test_in_ms(10000)), 0);
        } else {
            CHECK_RC(weft_recv(&m, NULL, test_in_ms(10000)), 0);
        }
        CHECK(m.tag == 2 + i, "message %d has tag %d", i, m.tag);
        weft_msg_free(&m);
    }
    return 0;
}

static intptr_t stale_room_main(void *arg)
{
    for (int use_select = 0; use_select <= 1; use_select++) {
        struct stale_room r = {make_chan(sizeof(int), 0), use_select};
        weft_pid owner = spawn_proc(stale_room_owner, &r);
        int v;
        CHECK_RC(weft_chan_recv(r.go, &v, sizeof v, WEFT_FOREVER), 0);
        weft_sleep(test_in_ms(20)); /* the owner waits */
        weft_msg late = {.tag = 1, .from = owner, .ref = 12345}; /* a call long over */
        CHECK_RC(weft_reply(&late, 1, NULL, 0), 0);
        /* Room comes back once the owner has dropped the reply (a reply
         * that never freed its room would fail this after 5 s). */
        int rc;
        int64_t limit = test_in_ms(5000);
        while ((rc = weft_send(owner, 2, NULL, 0, 0)) == -EAGAIN && weft_now() < limit)
            weft_sleep(test_in_ms(1));
        CHECK_RC(rc, 0);
        CHECK_RC(weft_send(owner, 3, NULL, 0, test_in_ms(10000)), 0);
        CHECK_RC(join_proc(owner), 0);
        CHECK_RC(weft_chan_release(r.go), 0);
    }
    return 0;
}

Test(mailbox, dropped_replies_free_room_in_a_bounded_mailbox, .timeout = 60)
{
    run_1_and_2(stale_room_main, NULL);
}

/* Senders with deadlines of microseconds on a full mailbox of capacity 1,
 * the owner taking: a sender's wait ends by its deadline or by the owner's
 * wake, never both, and the owner never touches a waiting record after its
 * sender has left (a race TSan and ASan watch here). Every accepted message
 * is received, exactly once. */
enum { TINY_SENDERS = 6, TINY_SENDS = 3000 };

struct tiny {
    weft_pid owner;
    atomic_long accepted;
};

static intptr_t tiny_owner(void *arg)
{
    CHECK_RC(weft_mailbox_bound(1), 0);
    long got = 0;
    weft_msg m;
    int rc;
    while ((rc = weft_recv(&m, NULL, test_in_ms(10000))) == 0) {
        if (m.tag == 2) {
            weft_msg_free(&m);
            break;
        }
        got++;
        weft_msg_free(&m);
    }
    CHECK_RC(rc, 0);
    return got;
}

static intptr_t tiny_sender(void *arg)
{
    struct tiny *t = arg;
    for (int i = 0; i < TINY_SENDS; i++) {
        volatile char scrub[256]; /* the next send's record reuses this stack */
        for (int k = 0; k < 256; k++)
            scrub[k] = (char)k;
        (void)scrub;
        int rc = weft_send(t->owner, 1, NULL, 0, weft_now() + 2000 * (i % 4));
        CHECK(rc == 0 || rc == -ETIMEDOUT || rc == -EAGAIN, "send %d: %d", i, rc);
        if (rc == 0)
            atomic_fetch_add(&t->accepted, 1);
    }
    return 0;
}

static intptr_t tiny_main(void *arg)
{
    struct tiny t = {0};
    t.owner = spawn_proc(tiny_owner, &t);
    weft_pid s[TINY_SENDERS];
    for (int i = 0; i < TINY_SENDERS; i++)
        s[i] = spawn_proc(tiny_sender, &t);
    for (int i = 0; i < TINY_SENDERS; i++)
        CHECK_RC(join_proc(s[i]), 0);
    CHECK_RC(weft_send(t.owner, 2, NULL, 0, WEFT_FOREVER), 0);
    intptr_t got = join_proc(t.owner);
    CHECK(got == atomic_load(&t.accepted), "%ld messages accepted, %ld received",
          atomic_load(&t.accepted), (long)got);
    return 0;
}

Test(mailbox, senders_timing_out_as_room_is_made, .timeout = 120)
{
    for (int i = 0; i < 5; i++)
        run_1_and_2(tiny_main, NULL);
}

/* ---- the mailbox as a select case ------------------------------------------------------------- */

struct sel_send {
    weft_pid to;
    int tag;
    int delay_ms;
    weft_chan ch; /* nonzero: send an int on it instead */
};

static intptr_t delayed_send(void *arg)
{
    struct sel_send *s = arg;
    weft_sleep(test_in_ms(s->delay_ms));
    int v = s->tag;
    if (s->ch)
        return weft_chan_send(s->ch, &v, sizeof v, WEFT_FOREVER);
    return weft_send(s->to, s->tag, &v, sizeof v, 0);
}

static intptr_t select_main(void *arg)
{
    weft_pid me = weft_self();
    weft_chan ch = make_chan(sizeof(int), 1);
    int v = -1;
    weft_msg m;
    weft_match five = {.tag = 5};

    /* Nothing ready: deadline 0 times out. */
    weft_case c[2] = {WEFT_RECV(ch, &v), WEFT_MSG_CASE(&m, NULL)};
    CHECK_RC(weft_select(c, 2, WEFT_SELECT_FAIR, 0), -ETIMEDOUT);
    /* A message ready: the message case fires and fills m. */
    int x = 31;
    CHECK_RC(weft_send(me, 3, &x, sizeof x, 0), 0);
    c[1].result = 777;
    CHECK_RC(weft_select(c, 2, WEFT_SELECT_FAIR, 0), 1);
    CHECK(c[1].result == 0 && m.tag == 3 && m.from == me && *(int *)m.data == 31,
          "message case: result %d tag %d", c[1].result, m.tag);
    weft_msg_free(&m);
    CHECK(v == -1, "the channel case wrote %d", v);
    /* A value ready on the channel: the channel case fires, the mailbox
     * (with a message) is left alone under PRIORITY with the channel first. */
    CHECK_RC(weft_chan_send(ch, &x, sizeof x, 0), 0);
    CHECK_RC(weft_send(me, 3, &x, sizeof x, 0), 0);
    CHECK_RC(weft_select(c, 2, WEFT_SELECT_PRIORITY, 0), 0);
    CHECK(v == 31 && c[0].result == 0, "channel case: %d", v);
    CHECK(weft_mailbox_len() == 1, "the channel case took a message (%ld left)", weft_mailbox_len());
    /* Both ready, message first under PRIORITY. */
    CHECK_RC(weft_chan_send(ch, &x, sizeof x, 0), 0);
    weft_case c2[2] = {WEFT_MSG_CASE(&m, NULL), WEFT_RECV(ch, &v)};
    CHECK_RC(weft_select(c2, 2, WEFT_SELECT_PRIORITY, 0), 0);
    weft_msg_free(&m);
    CHECK(weft_chan_len(ch) == 1, "the message case took the channel's value");
    CHECK_RC(weft_chan_recv(ch, &v, sizeof v, 0), 0);

    /* With a match: a queued non-matching message does not fire it. */
    weft_case c3[2] = {WEFT_RECV(ch, &v), WEFT_MSG_CASE(&m, &five)};
    CHECK_RC(weft_send(me, 3, &x, sizeof x, 0), 0);
    CHECK_RC(weft_select(c3, 2, WEFT_SELECT_FAIR, 0), -ETIMEDOUT);
    /* Nor does one that arrives while the select waits. */
    struct sel_send s3 = {me, 3, 10, 0};
    weft_pid p = spawn_proc(delayed_send, &s3);
    int64_t t0 = weft_now();
    CHECK_RC(weft_select(c3, 2, WEFT_SELECT_FAIR, t0 + 80 * MS), -ETIMEDOUT);
    CHECK(weft_now() - t0 >= 80 * MS, "the select returned early");
    CHECK_RC(join_proc(p), 0);
    CHECK(weft_mailbox_len() == 2, "%ld queued, expected the two tag-3 messages", weft_mailbox_len());
    /* A matching one that arrives while it waits fires it. */
    struct sel_send s5 = {me, 5, 20, 0};
    p = spawn_proc(delayed_send, &s5);
    int r = weft_select(c3, 2, WEFT_SELECT_FAIR, test_in_ms(10000));
    CHECK(r == 1 && c3[1].result == 0 && m.tag == 5, "select returned %d, tag %d", r, r == 1 ? m.tag : 0);
    if (r == 1)
        weft_msg_free(&m);
    CHECK_RC(join_proc(p), 0);
    /* A channel value that arrives while it waits (with non-matching mail
     * queued) fires the channel case and takes no message. */
    struct sel_send sc = {me, 77, 20, ch};
    p = spawn_proc(delayed_send, &sc);
    v = -1;
    r = weft_select(c3, 2, WEFT_SELECT_FAIR, test_in_ms(10000));
    CHECK(r == 0 && v == 77, "select returned %d with %d", r, v);
    CHECK_RC(join_proc(p), 0);
    /* The tag-3 messages are still there, in order, untouched. */
    CHECK(weft_mailbox_len() == 2, "%ld queued", weft_mailbox_len());
    for (int i = 0; i < 2; i++) {
        CHECK_RC(weft_recv(&m, NULL, 0), 0);
        CHECK(m.tag == 3, "left message %d has tag %d", i, m.tag);
        weft_msg_free(&m);
    }
    /* A predicate in the case's match. */
    int k[2] = {2, 1};
    weft_match odd = {.pred = sel_pred, .arg = k};
    for (int i = 10; i < 14; i++)
        CHECK_RC(weft_send(me, 1, &i, sizeof i, 0), 0);
    weft_case c4[1] = {WEFT_MSG_CASE(&m, &odd)};
    CHECK_RC(weft_select(c4, 1, WEFT_SELECT_FAIR, 0), 0);
    CHECK(*(int *)m.data == 11, "the predicate case took %d", *(int *)m.data);
    weft_msg_free(&m);
    CHECK(drain() == 3, "drain");
    CHECK_RC(weft_chan_release(ch), 0);
    return 0;
}

Test(mailbox, mailbox_as_a_select_case_beside_channels, .timeout = 30)
{
    run_1_and_2(select_main, NULL);
}

/* ---- outside threads, weft_mailbox_len ------------------------------------------------------- */

static intptr_t recv_from_thread_main(void *arg)
{
    weft_msg m;
    CHECK_RC(weft_recv(&m, NULL, WEFT_FOREVER), 0);
    CHECK(m.from == 0 && m.tag == 9 && m.size == 3 && memcmp(m.data, "abc", 3) == 0,
          "from %#llx tag %d size %zu", (unsigned long long)m.from, m.tag, m.size);
    weft_msg_free(&m);
    return 0;
}

/* An outside thread has no mailbox: receiving, its length and its bound
 * are -EPERM; it can send, with from 0. */
Test(mailbox, outside_thread_cannot_receive_but_can_send, .timeout = 30)
{
    start_workers(1);
    weft_msg m;
    ASSERT_RC(weft_recv(&m, NULL, 0), -EPERM);
    ASSERT_RC(weft_recv(&m, NULL, WEFT_FOREVER), -EPERM);
    weft_match mt = {.tag = 1};
    ASSERT_RC(weft_recv(&m, &mt, test_in_ms(10)), -EPERM);
    ASSERT_RC(weft_mailbox_len(), -EPERM);
    ASSERT_RC(weft_mailbox_bound(4), -EPERM);
    weft_pid p;
    ASSERT_OK(weft_spawn(&p, recv_from_thread_main, NULL, NULL));
    ASSERT_OK(weft_send(p, 9, "abc", 3, WEFT_FOREVER));
    intptr_t r = -1;
    ASSERT_OK(weft_join(p, &r, WEFT_FOREVER));
    ASSERT_CHECKS();
    cr_assert_eq(r, 0);
    ASSERT_OK(weft_stop(WEFT_FOREVER));
    ASSERT_RC(weft_mailbox_len(), -EPERM);
}

static intptr_t len_main(void *arg)
{
    weft_pid me = weft_self();
    CHECK(weft_mailbox_len() == 0, "a new process has %ld messages", weft_mailbox_len());
    for (int i = 0; i < 10; i++) {
        CHECK_RC(weft_send(me, 1 + i % 2, &i, sizeof i, 0), 0);
        CHECK(weft_mailbox_len() == i + 1, "after %d sends: %ld", i + 1, weft_mailbox_len());
    }
    weft_msg m;
    CHECK_RC(recv_match(&m, 2, 0, 0), 0);
    weft_msg_free(&m);
    CHECK(weft_mailbox_len() == 9, "after a selective receive: %ld", weft_mailbox_len());
    CHECK_RC(recv_match(&m, 3, 0, 0), -ETIMEDOUT);
    CHECK(weft_mailbox_len() == 9, "after a receive that timed out: %ld", weft_mailbox_len());
    CHECK(drain() == 9, "drain");
    CHECK(weft_mailbox_len() == 0, "%ld", weft_mailbox_len());
    return 0;
}

Test(mailbox, mailbox_len_counts_what_is_queued, .timeout = 30)
{
    run_1_and_2(len_main, NULL);
}

/* ---- messages nobody received are freed ------------------------------------------------------- */

static intptr_t wait_on_gate(void *arg)
{
    int v;
    return weft_chan_recv(*(weft_chan *)arg, &v, sizeof v, WEFT_FOREVER) == -EPIPE ? 0 : 1;
}

/* A process (joinable, then detached) ends with 1,000 messages of 4 KiB and
 * 10 moved buffers of 64 KiB in its mailbox: once it has ended they are
 * freed (the counting allocator's live bytes fall back), not at the
 * runtime's end. */
static intptr_t leftovers_main(void *arg)
{
    static unsigned char payload[4096];
    for (int detached = 0; detached < 2; detached++) {
        weft_chan gate = make_chan(sizeof(int), 0);
        long before = atomic_load(&mem.live);
        weft_spawn_opts o;
        weft_spawn_opts_init(&o);
        o.detached = detached;
        weft_pid p = 0;
        CHECK_RC(weft_spawn(&p, wait_on_gate, &gate, &o), 0);
        for (int i = 0; i < 1000; i++)
            CHECK_RC(weft_send(p, 1, payload, sizeof payload, 0), 0);
        for (int i = 0; i < 10; i++) {
            void *b = weft_buf_alloc(65536);
            CHECK_RC(weft_send_buf(p, 2, b, 0), 0);
        }
        long held = atomic_load(&mem.live) - before;
        CHECK(held >= 1000 * 4096 + 10 * 65536, "only %ld bytes held by 1,000 + 10 queued messages",
              held);
        /* Watch its end with a monitor, then wait for the memory. */
        uint64_t ref = 0;
        CHECK_RC(weft_monitor(p, &ref), 0);
        CHECK_RC(weft_chan_close(gate), 0);
        weft_msg m;
        weft_match down = {.tag = WEFT_TAG_DOWN, .ref = ref};
        CHECK_RC(weft_recv(&m, &down, test_in_ms(10000)), 0);
        weft_msg_free(&m);
        if (!detached)
            CHECK_RC(weft_join(p, NULL, WEFT_FOREVER), 0);
        int64_t limit = weft_now() + 5000 * MS;
        long left;
        while ((left = atomic_load(&mem.live) - before) > 256 * 1024 && weft_now() < limit)
            weft_sleep(test_in_ms(1));
        CHECK(left <= 256 * 1024, "%s process ended with 4.6 MB queued: %ld bytes still held",
              detached ? "a detached" : "a joined", left);
        CHECK_RC(weft_chan_release(gate), 0);
    }
    return 0;
}

Test(mailbox, messages_left_in_an_ended_process_are_freed, .timeout = 30)
{
    run_counted(1, leftovers_main);
    run_counted(2, leftovers_main);
}

/* ---- deterministic exploration: sends, receives and selects with deadlines ---------------------- */

enum { MX_SENDERS = 2, MX_PER = 4, MX_DONE = 10, MX_CHAN_VALUES = 2 };

static struct {
    weft_pid main;
    weft_chan ch;
    int send_rc[MX_SENDERS][MX_PER];
    int done_rc[MX_SENDERS];
    int got[MX_SENDERS][MX_PER];
    int chan_send_rc[MX_CHAN_VALUES];
} mx;

static void mx_reset(void)
{
    memset(&mx, 0, sizeof mx);
}

static intptr_t mx_sender(void *arg)
{
    int s = (int)(intptr_t)arg;
    for (int k = 0; k < MX_PER; k++) {
        int64_t dl = (k + s) % 3 == 0 ? 0 : weft_now() + (int64_t)((k + s) % 3) * 2 * US;
        mx.send_rc[s][k] = weft_send(mx.main, 1 + s, &k, sizeof k, dl);
    }
    mx.done_rc[s] = weft_send(mx.main, MX_DONE, &s, sizeof s, WEFT_FOREVER);
    return 0;
}

static intptr_t mx_chan_sender(void *arg)
{
    for (int i = 0; i < MX_CHAN_VALUES; i++) {
        int v = 1000 + i;
        mx.chan_send_rc[i] = weft_chan_send(mx.ch, &v, sizeof v, WEFT_FOREVER);
    }
    return weft_chan_close(mx.ch);
}

/* Two senders send to main with short deadlines into a mailbox of capacity
 * 0 (unbounded), 1 or 2 (the seed chooses), then a DONE that waits as long
 * as it takes; a third process sends on a channel. Main receives by any
 * means with short deadlines: receive of anything, receive by one sender's
 * tag, select of the mailbox (any, or one tag) beside the channel. A message
 * is received exactly when its send succeeded, in its sender's order, never
 * after its sender's DONE; a refused send is -EAGAIN (deadline 0) or
 * -ETIMEDOUT; the mailbox ends empty. */
static intptr_t mailbox_race_main(void *arg)
{
    mx.main = weft_self();
    size_t cap = (size_t)(explore_seed % 3);
    EXPLORE_CHECK(weft_mailbox_bound(cap) == 0, "bound");
    EXPLORE_CHECK(weft_chan_make(&mx.ch, sizeof(int), 0) == 0, "make");
    weft_pid pids[MX_SENDERS + 1];
    for (int s = 0; s < MX_SENDERS; s++)
        EXPLORE_CHECK(weft_spawn(&pids[s], mx_sender, (void *)(intptr_t)s, NULL) == 0, "spawn");
    EXPLORE_CHECK(weft_spawn(&pids[MX_SENDERS], mx_chan_sender, NULL, NULL) == 0, "spawn");
    int done = 0, last[MX_SENDERS], chan_values = 0;
    bool sender_done[MX_SENDERS] = {false}, closed = false;
    for (int s = 0; s < MX_SENDERS; s++)
        last[s] = -1;
    uint64_t choice = explore_seed / 3;
    for (int step = 0; done < MX_SENDERS || !closed; step++) {
        EXPLORE_CHECK(step < 100000, "no progress");
        weft_msg m;
        int v = -1, rc;
        unsigned how = (unsigned)((choice + (uint64_t)step * 7) % 4);
        int64_t dl = weft_now() + (int64_t)(step % 3) * 3 * US;
        weft_match by_tag = {.tag = 1 + step % MX_SENDERS};
        if (how == 0) {
            rc = weft_recv(&m, NULL, dl);
        } else if (how == 1) {
            rc = weft_recv(&m, &by_tag, dl);
        } else {
            weft_case c[2] = {WEFT_MSG_CASE(&m, how == 3 ? &by_tag : NULL), WEFT_RECV(mx.ch, &v)};
            c[1].disabled = closed;
            int i = weft_select(c, 2, step % 2 ? WEFT_SELECT_FAIR : WEFT_SELECT_PRIORITY, dl);
            if (i == 1) {
                if (c[1].result == -EPIPE) {
                    closed = true;
                } else {
                    EXPLORE_CHECK(c[1].result == 0 && v == 1000 + chan_values, "channel gave %d (%d)", v,
                                  c[1].result);
                    chan_values++;
                }
                continue;
            }
            rc = i == 0 ? c[0].result : i;
        }
        if (rc == -ETIMEDOUT)
            continue;
        EXPLORE_CHECK(rc == 0, "receive returned %d", rc);
        if (m.tag == MX_DONE) {
            int s = *(int *)m.data;
            EXPLORE_CHECK(s >= 0 && s < MX_SENDERS && !sender_done[s] && m.from == pids[s], "DONE %d", s);
            sender_done[s] = true;
            done++;
        } else {
            int s = m.tag - 1, k = *(int *)m.data;
            EXPLORE_CHECK(s >= 0 && s < MX_SENDERS && k >= 0 && k < MX_PER && m.from == pids[s],
                          "message tag %d value %d", m.tag, k);
            EXPLORE_CHECK(!sender_done[s], "message %d.%d after its sender's DONE", s, k);
            EXPLORE_CHECK(k > last[s], "message %d.%d after %d.%d", s, k, s, last[s]);
            last[s] = k;
            mx.got[s][k]++;
        }
        weft_msg_free(&m);
    }
    for (int i = 0; i <= MX_SENDERS; i++)
        EXPLORE_CHECK(weft_join(pids[i], NULL, WEFT_FOREVER) == 0, "join %d", i);
    EXPLORE_CHECK(chan_values == MX_CHAN_VALUES, "%d channel values", chan_values);
    for (int s = 0; s < MX_SENDERS; s++) {
        EXPLORE_CHECK(mx.done_rc[s] == 0, "DONE %d: %d", s, mx.done_rc[s]);
        for (int k = 0; k < MX_PER; k++) {
            int rc = mx.send_rc[s][k];
            bool at_once = (k + s) % 3 == 0;
            EXPLORE_CHECK(rc == 0 || (cap > 0 && rc == (at_once ? -EAGAIN : -ETIMEDOUT)),
                          "send %d.%d (capacity %zu) returned %d", s, k, cap, rc);
            EXPLORE_CHECK(mx.got[s][k] == (rc == 0), "message %d.%d: send %d, received %d times", s, k,
                          rc, mx.got[s][k]);
        }
    }
    EXPLORE_CHECK(weft_mailbox_len() == 0, "%ld messages left", weft_mailbox_len());
    EXPLORE_CHECK(weft_chan_release(mx.ch) == 0, "release");
    return 0;
}

Test(mailbox, explore_sends_receives_and_selects_with_deadlines, .timeout = 600)
{
    struct explore_opts o = {.workers = 2, .seeds = 2000, .reset = mx_reset};
    uint64_t failed = explore(mailbox_race_main, NULL, &o);
    cr_assert_eq(failed, 0, "seed %llu failed (see above)", (unsigned long long)failed);
}
