/* power_series.c: McIlroy's "Squinting at power series": a power series is a
 * process that sends its coefficients f0, f1, f2, ... one by one on a
 * channel, and operations on series are processes that read series and send
 * a new one.
 *
 * The operations (each a process, reading its inputs term by term):
 *   split(F)     -> F, F     copies a series to two readers (a series can be
 *                            read only once, so each extra reader needs one)
 *   add(F, G)    -> F + G
 *   neg(F)       -> -F
 *   mul(F, G)    -> F * G    the Cauchy product: h_n = sum f_k g_(n-k)
 *   integ(c, F)  -> c + integral of F from 0: c, f0/1, f1/2, f2/3, ...
 *   deriv(F)     -> F'       f1, 2 f2, 3 f3, ...
 * and series defined by feedback, where a process reads its own output:
 *   exp:  X = 1 + integral X            integ(1) reads a copy of its output
 *   sin:  S = integral C                two integrators, each reading a copy
 *   cos:  C = 1 - integral S            of the other's output
 * This works because an integrator sends its constant term before it needs
 * any input, and term n+1 of its output needs only term n of its input.
 *
 * The program prints the first TERMS coefficients of exp, sin and cos and
 * checks them against 1/n! and its alternating cousins; it also checks
 * exp' = exp (deriv) and sin^2 + cos^2 = 1 (mul, add), read in lockstep with
 * the rest.
 *
 * Channels are rendezvous channels of exact rationals (int64 over int64,
 * reduced). Arithmetic that would overflow yields a poisoned "overflow"
 * value instead: processes run a few terms ahead of what is read, and only
 * the printed terms must be exact (they are checked not to be poisoned).
 *
 * Stopping: series are infinite, so no process ends by itself. Every
 * blocking step of every process is a select that also receives from one
 * shared "quit" channel; app closes it when it has read what it needs,
 * every process then sees it (a receive on a closed channel completes at
 * once) and returns, and app joins them all.
 *
 * Usage: example-power_series [--workers W]. Exits 0 only when every
 * coefficient is right. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "options.h"

enum {
    TERMS = 10,     /* coefficients printed and checked */
    HISTORY = 32,   /* terms mul remembers; later products are poisoned */
    MAX_PROCS = 64, /* processes and channels of the whole network */
    MAX_CHANS = 64
};

/* ---- Exact rationals ---------------------------------------------------- */

/* num/den in lowest terms with den > 0, or an overflow (ovf set). */
typedef struct {
    int64_t num, den;
    bool ovf;
} rat;

static const rat OVERFLOW = {0, 1, true};

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b != 0) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a < 0 ? -a : a;
}

/* Reduces num/den (den != 0); poisoned if a sign change would overflow. */
static rat rat_make(int64_t num, int64_t den)
{
    if (num == INT64_MIN || den == INT64_MIN)
        return OVERFLOW;
    if (den < 0) {
        num = -num;
        den = -den;
    }
    int64_t g = gcd64(num, den);
    return (rat){num / g, den / g, false};
}

static rat rat_int(int64_t n)
{
    return rat_make(n, 1);
}

static rat rat_add(rat a, rat b)
{
    if (a.ovf || b.ovf)
        return OVERFLOW;
    int64_t g = gcd64(a.den, b.den), den, x, y, num;
    if (__builtin_mul_overflow(a.den / g, b.den, &den) ||
        __builtin_mul_overflow(a.num, b.den / g, &x) ||
        __builtin_mul_overflow(b.num, a.den / g, &y) || __builtin_add_overflow(x, y, &num))
        return OVERFLOW;
    return rat_make(num, den);
}

static rat rat_mul(rat a, rat b)
{
    if (a.ovf || b.ovf)
        return OVERFLOW;
    /* Cancel across first, so the products stay as small as they can. */
    int64_t g1 = gcd64(a.num, b.den), g2 = gcd64(b.num, a.den), num, den; /* never 0 */
    if (__builtin_mul_overflow(a.num / g1, b.num / g2, &num) ||
        __builtin_mul_overflow(a.den / g2, b.den / g1, &den))
        return OVERFLOW;
    return rat_make(num, den);
}

static rat rat_neg(rat a)
{
    return a.ovf ? a : rat_make(-a.num, a.den); /* num > INT64_MIN: reduced */
}

static bool rat_eq(rat a, rat b)
{
    return !a.ovf && !b.ovf && a.num == b.num && a.den == b.den;
}

/* Writes a as "n/d", "n" or "overflow" into buf (48 bytes) and returns buf. */
static const char *rat_str(rat a, char buf[48])
{
    if (a.ovf)
        snprintf(buf, 48, "overflow");
    else if (a.den == 1)
        snprintf(buf, 48, "%" PRId64, a.num);
    else
        snprintf(buf, 48, "%" PRId64 "/%" PRId64, a.num, a.den);
    return buf;
}

/* ---- Streams: sending and receiving terms, or being told to quit --------- */

/* Closed by app when the answers are in; never sent on. */
static weft_chan quit;

/* Receives the next term of in into *v. Returns 1, 0 when told to quit, or
 * a negative weft error. */
static int get(weft_chan in, rat *v)
{
    char q;
    weft_case cases[] = {WEFT_RECV(quit, &q), WEFT_RECV(in, v)};
    int i = weft_select(cases, 2, WEFT_SELECT_PRIORITY, WEFT_FOREVER);
    if (i < 0)
        return i;
    return i == 0 ? 0 : cases[i].result ? cases[i].result : 1;
}

/* Sends v as the next term of out. Returns as get does. */
static int put(weft_chan out, rat v)
{
    char q;
    weft_case cases[] = {WEFT_RECV(quit, &q), WEFT_SEND(out, &v)};
    int i = weft_select(cases, 2, WEFT_SELECT_PRIORITY, WEFT_FOREVER);
    if (i < 0)
        return i;
    return i == 0 ? 0 : cases[i].result ? cases[i].result : 1;
}

/* Sends v on both a and b, to whichever reader is ready first. Returns as
 * get does. */
static int put2(weft_chan a, weft_chan b, rat v)
{
    char q;
    weft_case cases[] = {WEFT_RECV(quit, &q), WEFT_SEND(a, &v), WEFT_SEND(b, &v)};
    for (int sent = 0; sent < 2; sent++) {
        int i = weft_select(cases, 3, WEFT_SELECT_PRIORITY, WEFT_FOREVER);
        if (i < 0)
            return i;
        if (i == 0)
            return 0;
        if (cases[i].result)
            return cases[i].result;
        cases[i].disabled = 1;
    }
    return 1;
}

/* ---- The operations, one process each -------------------------------------
 * Each reads its inputs in[0..], writes out[0..] and returns 0 when told to
 * quit (or a negative weft error). */

struct op {
    weft_chan in[2], out[2];
    rat c; /* integ's constant term */
};

/* split: F -> F, F. Holds one term at a time: both readers take term n
 * before it reads term n+1. */
static intptr_t split_proc(void *arg)
{
    const struct op *op = arg;
    rat v;
    int r;
    while ((r = get(op->in[0], &v)) > 0 && (r = put2(op->out[0], op->out[1], v)) > 0)
        ;
    return r;
}

/* add: F, G -> F + G. */
static intptr_t add_proc(void *arg)
{
    const struct op *op = arg;
    rat f, g;
    int r;
    while ((r = get(op->in[0], &f)) > 0 && (r = get(op->in[1], &g)) > 0 &&
           (r = put(op->out[0], rat_add(f, g))) > 0)
        ;
    return r;
}

/* neg: F -> -F. */
static intptr_t neg_proc(void *arg)
{
    const struct op *op = arg;
    rat f;
    int r;
    while ((r = get(op->in[0], &f)) > 0 && (r = put(op->out[0], rat_neg(f))) > 0)
        ;
    return r;
}

/* mul: F, G -> F * G. Reads f_n and g_n, then sends
 * h_n = f_0 g_n + f_1 g_(n-1) + ... + f_n g_0 from the terms it kept. */
static intptr_t mul_proc(void *arg)
{
    const struct op *op = arg;
    rat f[HISTORY], g[HISTORY];
    int r;
    for (int n = 0;; n++) {
        rat fn, gn;
        if ((r = get(op->in[0], &fn)) <= 0 || (r = get(op->in[1], &gn)) <= 0)
            return r;
        rat h = OVERFLOW;
        if (n < HISTORY) {
            f[n] = fn;
            g[n] = gn;
            h = rat_int(0);
            for (int k = 0; k <= n; k++)
                h = rat_add(h, rat_mul(f[k], g[n - k]));
        }
        if ((r = put(op->out[0], h)) <= 0)
            return r;
    }
}

/* integ(c): F -> c, f0/1, f1/2, f2/3, ... Sends c before reading anything:
 * the feedback definitions rely on it. */
static intptr_t integ_proc(void *arg)
{
    const struct op *op = arg;
    int r = put(op->out[0], op->c);
    for (int64_t n = 1; r > 0; n++) {
        rat f;
        if ((r = get(op->in[0], &f)) > 0)
            r = put(op->out[0], rat_mul(f, rat_make(1, n)));
    }
    return r;
}

/* deriv: F -> f1, 2 f2, 3 f3, ... (drops f0). */
static intptr_t deriv_proc(void *arg)
{
    const struct op *op = arg;
    rat f;
    int r = get(op->in[0], &f);
    for (int64_t n = 1; r > 0; n++) {
        if ((r = get(op->in[0], &f)) > 0)
            r = put(op->out[0], rat_mul(f, rat_int(n)));
    }
    return r;
}

/* ---- The network: every process and channel, to stop and free them ------ */

static struct {
    struct op ops[MAX_PROCS];
    weft_pid pids[MAX_PROCS];
    int nprocs;
    weft_chan chans[MAX_CHANS];
    int nchans;
    int err; /* the first error met while building */
} net;

/* A new series channel, or 0 when the network is full or an earlier step
 * failed: net.err says why, and start() then starts nothing. */
static weft_chan series(void)
{
    weft_chan ch = 0;
    if (net.err)
        return 0;
    if (net.nchans == MAX_CHANS)
        net.err = -ENOSPC;
    else if ((net.err = weft_chan_make(&ch, sizeof(rat), 0)) == 0)
        net.chans[net.nchans++] = ch;
    return ch;
}

/* Starts fn as a process of the network, reading in0, in1 and writing
 * out0, out1 (0 where unused). */
static void start(weft_proc_fn fn, const char *name, rat c, weft_chan in0, weft_chan in1,
                  weft_chan out0, weft_chan out1)
{
    if (net.err)
        return;
    if (net.nprocs == MAX_PROCS) {
        net.err = -ENOSPC;
        return;
    }
    struct op *op = &net.ops[net.nprocs];
    *op = (struct op){{in0, in1}, {out0, out1}, c};
    weft_spawn_opts opts;
    weft_spawn_opts_init(&opts);
    opts.name = name;
    if ((net.err = weft_spawn(&net.pids[net.nprocs], fn, op, &opts)) == 0)
        net.nprocs++;
}

static const rat NONE = {0, 1, false};

/* Two copies of f: *a and *b. */
static void split(weft_chan f, weft_chan *a, weft_chan *b)
{
    *a = series();
    *b = series();
    start(split_proc, "split", NONE, f, 0, *a, *b);
}

static weft_chan add(weft_chan f, weft_chan g)
{
    weft_chan h = series();
    start(add_proc, "add", NONE, f, g, h, 0);
    return h;
}

static weft_chan neg(weft_chan f)
{
    weft_chan h = series();
    start(neg_proc, "neg", NONE, f, 0, h, 0);
    return h;
}

static weft_chan mul(weft_chan f, weft_chan g)
{
    weft_chan h = series();
    start(mul_proc, "mul", NONE, f, g, h, 0);
    return h;
}

static weft_chan deriv(weft_chan f)
{
    weft_chan h = series();
    start(deriv_proc, "deriv", NONE, f, 0, h, 0);
    return h;
}

/* Integrators take their input channel first, to be able to close a loop. */
static weft_chan integ(const char *name, rat c, weft_chan f)
{
    weft_chan h = series();
    start(integ_proc, name, c, f, 0, h, 0);
    return h;
}

/* exp: X = 1 + integral X. The integrator reads a copy of its own output. */
static weft_chan make_exp(void)
{
    weft_chan fed_back = series(), out = series();
    weft_chan x = integ("exp", rat_int(1), fed_back);
    start(split_proc, "split-exp", NONE, x, 0, fed_back, out);
    return out;
}

/* sin = integral cos, cos = 1 - integral sin: each integrator reads a copy
 * of the other's output. */
static void make_sin_cos(weft_chan *sin_out, weft_chan *cos_out)
{
    weft_chan cos_fed = series(), sin_fed = series();
    weft_chan s = integ("sin", rat_int(0), cos_fed);
    weft_chan c = integ("cos", rat_int(1), neg(sin_fed));
    *sin_out = series();
    *cos_out = series();
    start(split_proc, "split-sin", NONE, s, 0, sin_fed, *sin_out);
    start(split_proc, "split-cos", NONE, c, 0, cos_fed, *cos_out);
}

/* The series app reads, term by term. */
enum { EXP, DEXP, SIN, COS, ONE, NSERIES };
static const char *const series_name[NSERIES] = {"exp", "exp'", "sin", "cos", "sin^2+cos^2"};

/* Builds the whole network; returns 0 with the channels app reads in out[]. */
static int build(weft_chan out[NSERIES])
{
    weft_chan exp_d, sin_all, cos_all, sin_sq, cos_sq, a, b;
    split(make_exp(), &out[EXP], &exp_d);
    out[DEXP] = deriv(exp_d);

    make_sin_cos(&sin_all, &cos_all);
    split(sin_all, &out[SIN], &sin_sq);
    split(cos_all, &out[COS], &cos_sq);
    split(sin_sq, &a, &b);
    weft_chan s2 = mul(a, b);
    split(cos_sq, &a, &b);
    weft_chan c2 = mul(a, b);
    out[ONE] = add(s2, c2);
    return net.err;
}

/* Closes quit, joins every process and releases every channel. Returns 0
 * when every process ended cleanly. */
static int stop_network(void)
{
    int bad = weft_chan_close(quit) != 0;
    for (int i = 0; i < net.nprocs; i++) {
        intptr_t r = -1;
        int err = weft_join(net.pids[i], &r, WEFT_FOREVER);
        if (err || r) {
            fprintf(stderr, "power_series: process %d ended badly: %s\n", i,
                    weft_strerror(err ? err : (int)r));
            bad = 1;
        }
    }
    for (int i = 0; i < net.nchans; i++)
        weft_chan_release(net.chans[i]);
    weft_chan_release(quit);
    return bad ? -1 : 0;
}

/* ---- Checking ------------------------------------------------------------- */

/* The expected term n of series k. */
static rat expected(int k, int n)
{
    int64_t fact = 1;
    for (int i = 2; i <= n; i++)
        fact *= i;
    rat inv_fact = rat_make(1, fact);
    switch (k) {
    case EXP:
    case DEXP:
        return inv_fact; /* e^x = sum x^n/n! and (e^x)' = e^x */
    case SIN:            /* x - x^3/3! + x^5/5! - ... */
        return n % 2 == 0 ? rat_int(0) : n % 4 == 1 ? inv_fact : rat_neg(inv_fact);
    case COS: /* 1 - x^2/2! + x^4/4! - ... */
        return n % 2 == 1 ? rat_int(0) : n % 4 == 0 ? inv_fact : rat_neg(inv_fact);
    default:
        return rat_int(n == 0); /* sin^2 + cos^2 = 1 */
    }
}

/* app: builds the network, reads TERMS terms of each series (in lockstep:
 * term n of every series before term n+1 of any), stops the network, then
 * prints and checks. Returns the exit status. */
static intptr_t app(void *arg)
{
    (void)arg;
    rat got[NSERIES][TERMS];
    weft_chan out[NSERIES];
    int err = weft_chan_make(&quit, 1, 0);
    if (err == 0)
        err = build(out);
    for (int n = 0; err == 0 && n < TERMS; n++)
        for (int k = 0; err == 0 && k < NSERIES; k++)
            if ((err = weft_chan_recv(out[k], &got[k][n], sizeof(rat), WEFT_FOREVER)) != 0)
                fprintf(stderr, "power_series: reading %s: %s\n", series_name[k],
                        weft_strerror(err));
    if (quit == 0)
        return 1;
    int stopped = stop_network();
    if (err || stopped) {
        if (net.err)
            fprintf(stderr, "power_series: building: %s\n", weft_strerror(net.err));
        return 1;
    }

    int wrong = 0;
    for (int k = 0; k < NSERIES; k++) {
        char buf[48], want[48];
        printf("%-12s", series_name[k]);
        for (int n = 0; n < TERMS; n++)
            printf("%10s", rat_str(got[k][n], buf));
        printf("\n");
        fflush(stdout);
        for (int n = 0; n < TERMS; n++) {
            if (!rat_eq(got[k][n], expected(k, n))) {
                fprintf(stderr, "power_series: %s: term %d is %s, expected %s\n", series_name[k],
                        n, rat_str(got[k][n], buf), rat_str(expected(k, n), want));
                wrong = 1;
            }
        }
    }
    printf("%d series, %d terms each, %d processes on %d workers: %s\n", NSERIES, TERMS,
           net.nprocs, weft_workers(), wrong ? "WRONG" : "ok");
    return wrong;
}

int main(int argc, char **argv)
{
    weft_config cfg;
    weft_config_init(&cfg);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--workers") == 0)
            cfg.workers = (unsigned)option_value(argc, argv, &i, 0, WEFT_WORKERS_MAX);
        else {
            fprintf(stderr, "usage: %s [--workers W]\n", argv[0]);
            return 2;
        }
    }
    intptr_t status = 1;
    int err = weft_run(app, NULL, &cfg, &status);
    if (err)
        fprintf(stderr, "power_series: weft_run: %s\n", weft_strerror(err));
    return err ? 1 : (int)status;
}
