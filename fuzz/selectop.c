/* selectop.c: the select operation of the fuzz programs: 1 to 4 send and
 * receive cases over the channel slots, some disabled, fair or by priority.
 *
 * Checks: the case that fired is an enabled one and its result fits its
 * channel; only its value moved (the other send cases' values count as not
 * sent, the other receive buffers are untouched); a bad handle gives
 * -EBADF. When nothing overlapped the select on any of its channels, the
 * model predicts it: -EBADF if a case names a dead channel, else one of the
 * ready cases (by priority: the first one), else -ETIMEDOUT. */
#include <string.h>

#include "alloc.h"
#include "ops.h"

enum { MAX_CASES = 4 };

/* A case's channel is ready: the case completes now (maybe with -EPIPE). */
static bool ready(const struct fz_snap *s, bool send)
{
    const struct fz_chan *c = &fz_m.chan[s->ci];
    long count = fz_count(s->ci);
    return s->closed || (send ? count < c->cap : count > 0);
}

bool fz_select(int proc, unsigned n, unsigned bits, int cls, int policy)
{
    weft_case cases[MAX_CASES];
    struct fz_value v[MAX_CASES];
    int ci[MAX_CASES];
    struct fz_snap snaps[MAX_CASES]; /* one per distinct channel */
    int snap_of[MAX_CASES], nsnaps = 0;
    bool enabled_any = false;
    for (unsigned i = 0; i < n; i++) {
        unsigned nib = (bits >> (4 * i)) & 15;
        bool send = nib & 1;
        ci[i] = fz_m.slot[(nib >> 1) & 3];
        cases[i] = (weft_case){.kind = send ? WEFT_CASE_SEND : WEFT_CASE_RECV,
                               .disabled = (nib & 8) != 0,
                               .handle = ci[i] == FZ_NOCHAN ? 0 : fz_m.chan[ci[i]].h,
                               .buf = &v[i], .size = FZ_ELEM, .result = 12345};
        snap_of[i] = -1;
        if (cases[i].disabled) {
            fz_value_poison(&v[i]);
            continue;
        }
        enabled_any = true;
        for (int k = 0; k < nsnaps; k++)
            if (snaps[k].ci == ci[i])
                snap_of[i] = k;
        if (snap_of[i] < 0) {
            snap_of[i] = nsnaps;
            fz_chan_begin(ci[i], &snaps[nsnaps++]);
        }
        if (send)
            fz_value_new(proc, ci[i], &v[i]);
        else
            fz_value_poison(&v[i]);
    }
    int64_t deadline = fz_deadline(cls);
    bool forever = deadline < 0;
    fz_forever_begin(forever);
    int rc = weft_select(cases, n, policy, deadline);
    bool stop = fz_result(proc, rc, forever, false);
    fz_note(proc, "select", rc);
    if (rc >= 0)
        fz_note(proc, "case", cases[rc].result);

    /* The prediction, when every channel involved was quiet. */
    bool quiet = true, dead = false;
    int first_ready = -1, nready = 0;
    for (int k = 0; k < nsnaps; k++)
        quiet = quiet && fz_quiet(&snaps[k]);
    for (unsigned i = 0; i < n; i++) {
        if (cases[i].disabled)
            continue;
        const struct fz_snap *s = &snaps[snap_of[i]];
        if (ci[i] == FZ_NOCHAN || s->destroyed) {
            dead = true;
        } else if (ready(s, cases[i].kind == WEFT_CASE_SEND)) {
            nready++;
            if (first_ready < 0)
                first_ready = (int)i;
        }
    }

    if (rc >= 0) {
        FZ_CHECK(proc, (unsigned)rc < n && !cases[rc].disabled,
                 "weft_select returned case %d of %u, disabled %d", rc, n,
                 (unsigned)rc < n ? cases[rc].disabled : -1);
        const struct fz_snap *s = &snaps[snap_of[rc]];
        bool send = cases[rc].kind == WEFT_CASE_SEND;
        int res = cases[rc].result;
        FZ_CHECK(proc, (res == 0 && ci[rc] != FZ_NOCHAN && !s->destroyed && !(send && s->closed)) ||
                           (res == -EPIPE && fz_maybe_closed(s)) ||
                           (res == -EBADF && fz_maybe_destroyed(s)),
                 "weft_select: case %d (%s on channel %d) fired with result %d (%s)", rc,
                 send ? "send" : "recv", ci[rc], res, weft_strerror(res));
        if (quiet) {
            FZ_CHECK(proc, !dead, "weft_select fired case %d though a case names a dead channel", rc);
            FZ_CHECK(proc, ready(s, send), "weft_select fired case %d, which was not ready", rc);
            FZ_CHECK(proc, policy != WEFT_SELECT_PRIORITY || rc == first_ready,
                     "priority select fired case %d; case %d was ready before it", rc, first_ready);
            FZ_CHECK(proc, res == (s->closed && (send || fz_count(s->ci) == 0) ? -EPIPE : 0),
                     "weft_select: case %d has result %d; the model says %s", rc, res,
                     s->closed ? "closed" : "open");
        }
        if (!send && res == 0)
            fz_value_received(proc, ci[rc], &v[rc]);
    } else {
        bool maybe_dead = false;
        for (int k = 0; k < nsnaps; k++)
            maybe_dead = maybe_dead || fz_maybe_destroyed(&snaps[k]);
        FZ_CHECK(proc, (rc == -ETIMEDOUT && deadline >= 0) || (rc == -EBADF && maybe_dead) ||
                           rc == -ECANCELED || (rc == -ENOMEM && fz_alloc_failed()),
                 "weft_select returned %d (%s)", rc, weft_strerror(rc));
        if (quiet && rc != -ECANCELED && rc != -ENOMEM)
            FZ_CHECK(proc, dead ? rc == -EBADF : nready == 0,
                     "weft_select returned %d (%s); nothing overlapped it and %s", rc,
                     weft_strerror(rc), dead ? "a case names a dead channel"
                                             : "a case was ready");
        if (rc == -ETIMEDOUT && deadline > 0)
            FZ_CHECK(proc, weft_now() >= deadline, "weft_select timed out before its deadline");
    }
    (void)enabled_any;
    for (unsigned i = 0; i < n; i++) {
        bool fired = rc == (int)i;
        if (cases[i].disabled || cases[i].kind == WEFT_CASE_RECV) {
            if (!fired || cases[i].result != 0)
                FZ_CHECK(proc, fz_value_poisoned(&v[i]),
                         "weft_select wrote the buffer of case %u, which did not receive", i);
            FZ_CHECK(proc, fired || cases[i].result == 12345,
                     "weft_select set the result of case %u, which did not fire", i);
        } else {
            fz_value_sent(proc, &v[i], fired && cases[i].result == 0);
            FZ_CHECK(proc, fired || cases[i].result == 12345,
                     "weft_select set the result of case %u, which did not fire", i);
        }
    }
    for (int k = 0; k < nsnaps; k++)
        fz_chan_end(&snaps[k]);
    return stop;
}
