/* chanops.c: the channel operations of the fuzz programs: make, send,
 * receive, close, release, retain, len, cap and main's final drain. Each
 * checks the code it got against the codes the model allows, and, when the
 * call was quiet (model.h), against the one code it predicts. */
#include <string.h>

#include "alloc.h"
#include "ops.h"

/* Bits of the codes a call may return. */
enum {
    A_OK = 1 << 0,
    A_PIPE = 1 << 1,
    A_BADF = 1 << 2,
    A_TIMEDOUT = 1 << 3,
    A_MSGSIZE = 1 << 4,
    A_CANCELED = 1 << 5,
    A_NOMEM = 1 << 6
};

static unsigned bit_of(int rc)
{
    switch (rc) {
    case 0: return A_OK;
    case -EPIPE: return A_PIPE;
    case -EBADF: return A_BADF;
    case -ETIMEDOUT: return A_TIMEDOUT;
    case -EMSGSIZE: return A_MSGSIZE;
    case -ECANCELED: return A_CANCELED;
    case -ENOMEM: return A_NOMEM;
    default: return 0;
    }
}

/* rc must be among the allowed codes and, if expected is not 1, be it. */
static void expect(int proc, const char *call, int rc, unsigned allowed, int expected)
{
    FZ_CHECK(proc, bit_of(rc) & allowed, "%s returned %d (%s), not a code the model allows (%#x)",
             call, rc, weft_strerror(rc), allowed);
    FZ_CHECK(proc, expected == 1 || rc == expected || rc == -ECANCELED || rc == -ENOMEM,
             "%s returned %d (%s); nothing overlapped it, so it must return %d (%s)", call, rc,
             weft_strerror(rc), expected, weft_strerror(expected));
}

static weft_chan handle_of(int ci)
{
    return ci == FZ_NOCHAN ? 0 : fz_m.chan[ci].h;
}

static unsigned nomem(void)
{
    return fz_alloc_failed() ? A_NOMEM : 0;
}

int64_t fz_deadline(int cls)
{
    switch (cls & 3) {
    case 0: return 0;
    case 1: return weft_now() + 20 * 1000;
    case 2: return weft_now() + 200 * 1000;
    default: return WEFT_FOREVER;
    }
}

/* A timeout came no earlier than its deadline. */
static void check_timeout(int proc, int rc, int64_t deadline)
{
    if (rc == -ETIMEDOUT && deadline > 0) {
        int64_t now = weft_now();
        FZ_CHECK(proc, now >= deadline, "-ETIMEDOUT %lld ns before the deadline",
                 (long long)(deadline - now));
    }
}

bool fz_make(int proc, int slot, int cap, int variant)
{
    size_t elem = FZ_ELEM, n = (size_t)cap;
    if (variant == 1)
        elem = 0;
    else if (variant == 2)
        n = WEFT_CHAN_BUFFER_MAX / FZ_ELEM + 1;
    else if (fz_m.nchan == FZ_INSTS)
        return false; /* the model is full: no call */
    weft_chan h = 0;
    int rc = weft_chan_make(&h, elem, n);
    bool stop = fz_result(proc, rc, false, false);
    fz_note(proc, "make", rc);
    if (variant) {
        FZ_CHECK(proc, rc == (variant == 1 ? -EINVAL : -E2BIG) || rc == -ECANCELED,
                 "weft_chan_make(elem %zu, cap %zu) returned %d (%s)", elem, n, rc,
                 weft_strerror(rc));
        return stop;
    }
    expect(proc, "weft_chan_make", rc, A_OK | A_CANCELED | nomem(), 1);
    if (rc != 0)
        return stop;
    FZ_CHECK(proc, h != 0, "weft_chan_make gave handle 0");
    for (int i = 0; i < fz_m.nchan; i++)
        FZ_CHECK(proc, fz_m.chan[i].destroyed || fz_m.chan[i].uncertain || fz_m.chan[i].h != h,
                 "weft_chan_make gave handle %#llx of live channel %d", (unsigned long long)h, i);
    int ci = fz_m.nchan++;
    fz_m.chan[ci] = (struct fz_chan){.h = h, .cap = cap, .refs = 1};
    fz_m.slot[slot] = ci;
    return stop;
}

/* A send or receive of one value on ci; returns the call's code and sets
 * *stop (see ops.h). */
static int transfer(int proc, int ci, int cls, bool wrong_size, bool send, bool *stop)
{
    struct fz_snap s;
    fz_chan_begin(ci, &s);
    struct fz_value v;
    if (send)
        fz_value_new(proc, ci, &v);
    else
        fz_value_poison(&v);
    int64_t deadline = fz_deadline(cls);
    bool forever = deadline < 0;
    size_t size = wrong_size ? FZ_ELEM / 2 : FZ_ELEM;
    const char *call = send ? "weft_chan_send" : "weft_chan_recv";
    fz_forever_begin(forever);
    int rc = send ? weft_chan_send(handle_of(ci), &v, size, deadline)
                  : weft_chan_recv(handle_of(ci), &v, size, deadline);
    *stop = fz_result(proc, rc, forever, false);
    fz_note(proc, send ? "send" : "recv", rc);

    bool live = ci != FZ_NOCHAN && !s.destroyed; /* at the start, as far as known */
    unsigned allowed = A_CANCELED | nomem();
    if (live && !wrong_size && (!send || !s.closed))
        allowed |= A_OK;
    if (!wrong_size && fz_maybe_closed(&s))
        allowed |= A_PIPE;
    if (fz_maybe_destroyed(&s))
        allowed |= A_BADF;
    if (live && !wrong_size && !s.closed && deadline >= 0)
        allowed |= A_TIMEDOUT;
    if (live && wrong_size)
        allowed |= A_MSGSIZE;
    int expected = 1;
    if (fz_quiet(&s)) {
        const struct fz_chan *c = ci == FZ_NOCHAN ? NULL : &fz_m.chan[ci];
        long count = c ? fz_count(ci) : 0;
        if (!c || s.destroyed)
            expected = -EBADF;
        else if (wrong_size)
            expected = -EMSGSIZE;
        else if (send)
            expected = s.closed ? -EPIPE : count < c->cap ? 0 : -ETIMEDOUT;
        else
            expected = count > 0 ? 0 : s.closed ? -EPIPE : -ETIMEDOUT;
        if (expected == -ETIMEDOUT && forever)
            expected = 1; /* it would wait: only a cancellation ends it */
    }
    expect(proc, call, rc, allowed, expected);
    check_timeout(proc, rc, deadline);
    if (send) {
        fz_value_sent(proc, &v, rc == 0);
    } else if (rc == 0) {
        fz_value_received(proc, ci, &v);
    } else {
        FZ_CHECK(proc, fz_value_poisoned(&v), "weft_chan_recv wrote the buffer and returned %d", rc);
    }
    fz_chan_end(&s);
    return rc;
}

bool fz_send(int proc, int ci, int cls, bool wrong_size)
{
    bool stop;
    transfer(proc, ci, cls, wrong_size, true, &stop);
    return stop;
}

bool fz_recv(int proc, int ci, int cls, bool wrong_size)
{
    bool stop;
    transfer(proc, ci, cls, wrong_size, false, &stop);
    return stop;
}

bool fz_close(int proc, int ci)
{
    struct fz_snap s;
    fz_chan_begin(ci, &s);
    struct fz_chan *c = ci == FZ_NOCHAN ? NULL : &fz_m.chan[ci];
    if (c) {
        c->closes++;
        c->closing++;
    }
    int rc = weft_chan_close(handle_of(ci));
    bool stop = fz_result(proc, rc, false, false);
    fz_note(proc, "close", rc);
    if (c)
        c->closing--;
    /* Another close overlapped if one was in flight or started since. */
    bool other = c && (s.closing > 0 || c->closes - s.closes > 1);
    unsigned allowed = 0;
    if (c && !s.destroyed && !s.closed)
        allowed |= A_OK;
    if (c && (s.closed || c->closed || other))
        allowed |= A_PIPE;
    if (fz_maybe_destroyed(&s))
        allowed |= A_BADF;
    int expected = 1;
    if (fz_quiet(&s))
        expected = !c || s.destroyed ? -EBADF : s.closed ? -EPIPE : 0;
    expect(proc, "weft_chan_close", rc, allowed, expected);
    if (rc == 0)
        c->closed = true;
    fz_chan_end(&s);
    return stop;
}

/* Release (delta -1) or retain (+1). */
static bool reference(int proc, int ci, int delta)
{
    struct fz_snap s;
    fz_chan_begin(ci, &s);
    struct fz_chan *c = ci == FZ_NOCHAN ? NULL : &fz_m.chan[ci];
    unsigned before = 0;
    if (c) {
        before = c->releases + c->retains;
        c->releases += delta < 0;
        c->retains += delta > 0;
        c->releasing += delta < 0;
        c->retaining += delta > 0;
    }
    int in_flight = c ? c->releasing + c->retaining : 0;
    int rc = delta < 0 ? weft_chan_release(handle_of(ci)) : weft_chan_retain(handle_of(ci));
    bool stop = fz_result(proc, rc, false, false);
    fz_note(proc, delta < 0 ? "release" : "retain", rc);
    /* Other reference calls overlapped: in flight at the start, or started since. */
    bool other = c && (in_flight > 1 || c->releases + c->retains - before > 1);
    if (c) {
        c->releasing -= delta < 0;
        c->retaining -= delta > 0;
    }
    unsigned allowed = 0;
    if (c && !s.destroyed)
        allowed |= A_OK;
    if (!c || s.destroyed || c->destroyed || c->uncertain || other)
        allowed |= A_BADF;
    int expected = 1;
    if (fz_quiet(&s) && !other)
        expected = !c || s.destroyed ? -EBADF : 0;
    expect(proc, delta < 0 ? "weft_chan_release" : "weft_chan_retain", rc, allowed, expected);
    if (rc == 0) {
        if (other)
            c->uncertain = true; /* the order of the reference counts is unknown */
        if (!c->uncertain) {
            FZ_CHECK(proc, c->refs > 0, "channel %d had no reference left", ci);
            c->refs += delta;
            if (c->refs == 0)
                c->destroyed = true;
        }
    }
    fz_chan_end(&s);
    return stop;
}

bool fz_release(int proc, int ci)
{
    return reference(proc, ci, -1);
}

bool fz_retain(int proc, int ci)
{
    return reference(proc, ci, +1);
}

/* weft_chan_len (cap false) or weft_chan_cap. */
static bool query(int proc, int ci, bool cap)
{
    struct fz_snap s;
    fz_chan_begin(ci, &s);
    weft_chan h = handle_of(ci);
    int rc = cap ? weft_chan_cap(h) : weft_chan_len(h);
    bool stop = fz_result(proc, rc, false, false);
    fz_note(proc, cap ? "cap" : "len", rc);
    const struct fz_chan *c = ci == FZ_NOCHAN ? NULL : &fz_m.chan[ci];
    if (rc >= 0) {
        FZ_CHECK(proc, c && !s.destroyed, "%s of a destroyed channel returned %d",
                 cap ? "weft_chan_cap" : "weft_chan_len", rc);
        if (cap)
            FZ_CHECK(proc, rc == c->cap, "weft_chan_cap returned %d, not %d", rc, c->cap);
        else
            FZ_CHECK(proc, rc <= c->cap && (!fz_quiet(&s) || rc == fz_count(ci)),
                     "weft_chan_len returned %d; capacity %d, %ld buffered per the model", rc,
                     c->cap, fz_count(ci));
    } else {
        FZ_CHECK(proc, rc == -EBADF && fz_maybe_destroyed(&s) && (!fz_quiet(&s) || !c || s.destroyed),
                 "%s returned %d (%s) on channel %d", cap ? "weft_chan_cap" : "weft_chan_len", rc,
                 weft_strerror(rc), ci);
    }
    fz_chan_end(&s);
    return stop;
}

bool fz_len(int proc, int ci)
{
    return query(proc, ci, false);
}

bool fz_cap(int proc, int ci)
{
    return query(proc, ci, true);
}

bool fz_drain_all(int proc)
{
    for (int ci = 0; ci < fz_m.nchan; ci++) {
        if (fz_m.chan[ci].destroyed)
            continue;
        if (fz_close(proc, ci))
            return true;
        /* Every receive takes a value until -EPIPE (closed and drained);
         * a closed channel gets no new ones, so this ends. */
        for (int i = 0;; i++) {
            FZ_CHECK(proc, i < 1000, "channel %d still gives values after 1000 receives", ci);
            bool stop;
            int rc = transfer(proc, ci, 0, false, false, &stop);
            if (stop)
                return true;
            if (rc == -EPIPE)
                fz_m.chan[ci].drained = true;
            if (rc != 0)
                break;
        }
    }
    return false;
}
