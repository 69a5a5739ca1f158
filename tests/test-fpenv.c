/* test-fpenv.c: each process has its own floating-point environment: the
 * rounding mode (MXCSR and the x87 control word on x86-64, FPCR on aarch64)
 * and the x87 precision follow the process across switches, sleeps and
 * workers, and a new process starts with the defaults. */
#define _GNU_SOURCE
#include <fenv.h>
#include <stdatomic.h>
#include <stdio.h>

#include "test.h"


/* The test programs are not linked with libm, where glibc keeps fegetround
 * and fesetround: these do what glibc's do, on the registers the context
 * switch must save (x86-64: the x87 control word and MXCSR; aarch64: FPCR).
 * The FE_* values of <fenv.h> are those registers' rounding bits. */
#if defined(__x86_64__)
static int fegetround_(void)
{
    unsigned short cw;
    __asm__ __volatile__("fnstcw %0" : "=m"(cw));
    return cw & 0xc00;
}

static int fesetround_(int mode)
{
    if (mode & ~0xc00)
        return -1;
    unsigned short cw;
    unsigned mx;
    __asm__ __volatile__("fnstcw %0" : "=m"(cw));
    cw = (unsigned short)((cw & ~0xc00) | mode);
    __asm__ __volatile__("fldcw %0" : : "m"(cw));
    __asm__ __volatile__("stmxcsr %0" : "=m"(mx));
    mx = (mx & ~0x6000u) | ((unsigned)mode << 3);
    __asm__ __volatile__("ldmxcsr %0" : : "m"(mx));
    return 0;
}
#define FP_MODES_AVAILABLE 1
#elif defined(__aarch64__)
static int fegetround_(void)
{
    unsigned long fpcr;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    return (int)(fpcr & 0xc00000);
}

static int fesetround_(int mode)
{
    if (mode & ~0xc00000)
        return -1;
    unsigned long fpcr;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    fpcr = (fpcr & ~0xc00000ul) | (unsigned long)mode;
    __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr));
    return 0;
}
#define FP_MODES_AVAILABLE 1
#else
static int fegetround_(void)
{
    return FE_TONEAREST;
}

static int fesetround_(int mode)
{
    return -1;
}
#define FP_MODES_AVAILABLE 0
#endif
#define fegetround fegetround_
#define fesetround fesetround_

/* The next double above (up > 0) or below a positive finite x. */
static double next_double(double x, int up)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    u = up ? u + 1 : u - 1;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Operands the compiler cannot fold: every division happens at run time,
 * after the load, in the rounding mode of that moment. */
static volatile double one = 1.0, three = 3.0, ten = 10.0;

static double third(void)
{
    return one / three;
}

static double tenth(void)
{
    return one / ten;
}

static uint64_t bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* Reference results computed in a given rounding mode, on the test thread. */
static struct {
    double third_near, third_up, tenth_near, tenth_down;
} ref;

static void compute_refs(void)
{
    if (!FP_MODES_AVAILABLE)
        cr_skip_test("rounding modes are set by hand on x86-64 and aarch64 only");
    int old = fegetround();
    ASSERT_CMP(old, ==, FE_TONEAREST);
    ref.third_near = third();
    ref.tenth_near = tenth();
    ASSERT_CMP(fesetround(FE_UPWARD), ==, 0);
    ref.third_up = third();
    ASSERT_CMP(fesetround(FE_DOWNWARD), ==, 0);
    ref.tenth_down = tenth();
    ASSERT_CMP(fesetround(old), ==, 0);
    /* 1/3 rounds down to nearest, 1/10 rounds up: the directed modes differ
     * from nearest by one ulp on these. */
    ASSERT_CMP(bits(ref.third_up), !=, bits(ref.third_near));
    ASSERT_CMP(bits(ref.third_up), ==, bits(next_double(ref.third_near, 1)));
    ASSERT_CMP(bits(ref.tenth_down), !=, bits(ref.tenth_near));
    ASSERT_CMP(bits(ref.tenth_down), ==, bits(next_double(ref.tenth_near, 0)));
}

#if defined(__x86_64__)
static unsigned mxcsr_rounding(void)
{
    unsigned m;
    __asm__ __volatile__("stmxcsr %0" : "=m"(m));
    return (m >> 13) & 3;
}

static unsigned short x87_cw(void)
{
    unsigned short cw;
    __asm__ __volatile__("fnstcw %0" : "=m"(cw));
    return cw;
}

static void set_x87_cw(unsigned short cw)
{
    __asm__ __volatile__("fldcw %0" : : "m"(cw));
}

/* Rounding-control bits of MXCSR and the x87 control word for a mode. */
static unsigned rc_bits(int mode)
{
    switch (mode) {
    case FE_TONEAREST: return 0;
    case FE_DOWNWARD: return 1;
    case FE_UPWARD: return 2;
    default: return 3;
    }
}
#endif

static const char *mode_name(int mode)
{
    switch (mode) {
    case FE_TONEAREST: return "to nearest";
    case FE_UPWARD: return "upward";
    case FE_DOWNWARD: return "downward";
    case FE_TOWARDZERO: return "toward zero";
    default: return "?";
    }
}

/* Asserts that the calling process runs in rounding mode `mode`, by the
 * mode itself, by the control registers and by the arithmetic. */
static void check_mode(const char *who, int step, int mode)
{
    int got = fegetround();
    cr_assert_eq(got, mode, "%s, step %d: rounding is %s, expected %s (worker %d)", who, step,
                 mode_name(got), mode_name(mode), weft_worker_id());
#if defined(__x86_64__)
    cr_assert_eq(mxcsr_rounding(), rc_bits(mode), "%s, step %d: MXCSR rounding bits %u, expected %u",
                 who, step, mxcsr_rounding(), rc_bits(mode));
    cr_assert_eq((x87_cw() >> 10) & 3u, rc_bits(mode),
                 "%s, step %d: x87 rounding bits %u, expected %u", who, step, (x87_cw() >> 10) & 3u,
                 rc_bits(mode));
#endif
    double t = third(), u = tenth();
    switch (mode) {
    case FE_UPWARD:
        cr_assert_eq(bits(t), bits(ref.third_up), "%s, step %d: 1/3 = %a, upward is %a", who, step,
                     t, ref.third_up);
        break;
    case FE_DOWNWARD:
        cr_assert_eq(bits(u), bits(ref.tenth_down), "%s, step %d: 1/10 = %a, downward is %a", who,
                     step, u, ref.tenth_down);
        break;
    case FE_TOWARDZERO:
        cr_assert_eq(bits(u), bits(ref.tenth_down), "%s, step %d: 1/10 = %a, toward zero is %a",
                     who, step, u, ref.tenth_down);
        break;
    case FE_TONEAREST:
        cr_assert_eq(bits(t), bits(ref.third_near), "%s, step %d: 1/3 = %a, nearest is %a", who,
                     step, t, ref.third_near);
        cr_assert_eq(bits(u), bits(ref.tenth_near), "%s, step %d: 1/10 = %a, nearest is %a", who,
                     step, u, ref.tenth_near);
        break;
    }
}

/* How a process gives up its worker between checks. */
enum pause_kind { PAUSE_YIELD, PAUSE_SLEEP, PAUSE_MIXED };

static void pause_once(enum pause_kind kind, int step)
{
    if (kind == PAUSE_YIELD || (kind == PAUSE_MIXED && step % 2 == 0))
        ASSERT_OK(weft_yield());
    else
        ASSERT_OK(weft_sleep(weft_now() + (step % 5) * 20000));
}

struct fp_proc {
    const char *name;
    int mode;               /* the mode it sets; FE_TONEAREST: it sets none */
    enum pause_kind pause;
    int steps;
    atomic_int *started;    /* processes started so far */
};

static intptr_t fp_worker(void *arg)
{
    const struct fp_proc *me = arg;
    /* A new process starts with the default environment, whatever the
     * processes started before it (on this worker) have set. */
    check_mode(me->name, -1, FE_TONEAREST);
    atomic_fetch_add(me->started, 1);
    if (me->mode != FE_TONEAREST)
        ASSERT_CMP(fesetround(me->mode), ==, 0);
    for (int step = 0; step < me->steps; step++) {
        pause_once(me->pause, step);
        check_mode(me->name, step, me->mode);
    }
    /* A process ends in its own mode: leave nearest behind on purpose when
     * it is not, to check that the next process does not inherit it. */
    return 1;
}

struct fp_run {
    enum pause_kind pause;
    int steps;
};

static intptr_t fp_main(void *arg)
{
    const struct fp_run *run = arg;
    atomic_int started = 0;
    struct fp_proc procs[] = {
        {"A (upward)", FE_UPWARD, run->pause, run->steps, &started},
        {"B (downward)", FE_DOWNWARD, run->pause, run->steps, &started},
        {"C (toward zero)", FE_TOWARDZERO, run->pause, run->steps, &started},
        {"D (default)", FE_TONEAREST, run->pause, run->steps, &started},
    };
    enum { N = sizeof procs / sizeof procs[0] };
    weft_pid pids[N];
    /* A starts, sets upward and yields; B then starts and sees nearest... */
    for (int i = 0; i < N; i++) {
        ASSERT_OK(weft_spawn(&pids[i], fp_worker, &procs[i], NULL));
        ASSERT_OK(weft_yield());
    }
    for (int i = 0; i < N; i++) {
        intptr_t r = 0;
        ASSERT_OK(weft_join(pids[i], &r, WEFT_FOREVER));
        ASSERT_CMP(r, ==, 1);
    }
    /* The main process never changed its mode. */
    check_mode("main", 0, FE_TONEAREST);
    /* Processes started after all the others ended still get the default. */
    struct fp_proc late = {"E (late)", FE_TONEAREST, run->pause, 3, &started};
    weft_pid pid;
    ASSERT_OK(weft_spawn(&pid, fp_worker, &late, NULL));
    ASSERT_OK(weft_join(pid, NULL, WEFT_FOREVER));
    return atomic_load(&started);
}

Test(fpenv, rounding_mode_is_per_process_across_yields, .timeout = 20)
{
    compute_refs();
    struct fp_run run = {PAUSE_YIELD, 2000};
    /* One worker: the processes interleave on one OS thread. */
    ASSERT_CMP(test_run(1, fp_main, &run), ==, 5);
    ASSERT_CMP(test_run(2, fp_main, &run), ==, 5);
    cr_assert_eq(fegetround(), FE_TONEAREST, "the runtime changed the calling thread's mode");
}

Test(fpenv, rounding_mode_is_per_process_across_sleeps, .timeout = 20)
{
    compute_refs();
    struct fp_run run = {PAUSE_SLEEP, 200};
    struct fp_run mixed = {PAUSE_MIXED, 1000};
    for (int rep = 0; rep < 3; rep++) {
        ASSERT_CMP(test_run(1, fp_main, &run), ==, 5);
        /* Two workers: parked processes resume on either. */
        ASSERT_CMP(test_run(2, fp_main, &run), ==, 5);
        ASSERT_CMP(test_run(2, fp_main, &mixed), ==, 5);
    }
}

/* The main process of weft_run starts in the default mode even when the
 * thread that calls weft_run does not use it. */
static intptr_t report_mode(void *arg)
{
    return fegetround();
}

Test(fpenv, new_process_ignores_callers_mode, .timeout = 10)
{
    compute_refs();
    ASSERT_CMP(fesetround(FE_UPWARD), ==, 0);
    intptr_t mode = test_run(1, report_mode, NULL);
    cr_assert_eq(fegetround(), FE_UPWARD, "weft_run changed the calling thread's mode");
    ASSERT_CMP(fesetround(FE_TONEAREST), ==, 0);
    cr_assert_eq(mode, FE_TONEAREST, "the main process started in mode %s", mode_name((int)mode));
}

/* ---- x87 precision control (x86-64) ----------------------------------------- */

#if defined(__x86_64__)
enum {
    X87_DEFAULT_CW = 0x037F, /* all exceptions masked, 64-bit precision, nearest */
    X87_PC_MASK = 0x0300,
    X87_PC_SINGLE = 0x0000,
    X87_PC_DOUBLE = 0x0200
};

/* 1/3 in long double, computed by the x87 unit at its current precision. */
static long double x87_third(void)
{
    volatile long double a = 1.0L, b = 3.0L;
    return a / b;
}

static struct {
    long double ext, dbl, sgl;
} x87_ref;

static void compute_x87_refs(void)
{
    unsigned short cw = x87_cw();
    cr_assert_eq(cw, X87_DEFAULT_CW, "the test thread's x87 control word is %#x", cw);
    x87_ref.ext = x87_third();
    set_x87_cw((unsigned short)((cw & ~X87_PC_MASK) | X87_PC_DOUBLE));
    x87_ref.dbl = x87_third();
    set_x87_cw((unsigned short)((cw & ~X87_PC_MASK) | X87_PC_SINGLE));
    x87_ref.sgl = x87_third();
    set_x87_cw(cw);
    cr_assert(x87_ref.ext != x87_ref.dbl && x87_ref.dbl != x87_ref.sgl && x87_ref.ext != x87_ref.sgl,
              "precision control made no difference");
}

struct x87_proc {
    const char *name;
    unsigned short pc; /* precision it sets */
    int steps;
    int sleep;
};

static void check_x87(const struct x87_proc *me, int step)
{
    unsigned short cw = x87_cw();
    unsigned short want = (unsigned short)((X87_DEFAULT_CW & ~X87_PC_MASK) | me->pc);
    cr_assert_eq(cw, want, "%s, step %d: x87 control word %#x, expected %#x (worker %d)", me->name,
                 step, cw, want, weft_worker_id());
    long double t = x87_third();
    long double expect = me->pc == X87_PC_SINGLE ? x87_ref.sgl
                         : me->pc == X87_PC_DOUBLE ? x87_ref.dbl : x87_ref.ext;
    cr_assert(t == expect, "%s, step %d: 1/3 in long double is %La, expected %La", me->name, step,
              t, expect);
}

static intptr_t x87_worker(void *arg)
{
    const struct x87_proc *me = arg;
    unsigned short cw = x87_cw();
    cr_assert_eq(cw, X87_DEFAULT_CW, "%s starts with x87 control word %#x", me->name, cw);
    set_x87_cw((unsigned short)((cw & ~X87_PC_MASK) | me->pc));
    for (int step = 0; step < me->steps; step++) {
        if (me->sleep && step % 2)
            ASSERT_OK(weft_sleep(weft_now() + 10000));
        else
            ASSERT_OK(weft_yield());
        check_x87(me, step);
    }
    return 1;
}

static intptr_t x87_main(void *arg)
{
    int sleep = (int)(intptr_t)arg;
    struct x87_proc procs[] = {
        {"single", X87_PC_SINGLE, 500, sleep},
        {"double", X87_PC_DOUBLE, 500, sleep},
        {"extended", (unsigned short)(X87_DEFAULT_CW & X87_PC_MASK), 500, sleep},
    };
    enum { N = sizeof procs / sizeof procs[0] };
    weft_pid pids[N];
    for (int i = 0; i < N; i++) {
        ASSERT_OK(weft_spawn(&pids[i], x87_worker, &procs[i], NULL));
        ASSERT_OK(weft_yield());
    }
    for (int i = 0; i < N; i++)
        ASSERT_OK(weft_join(pids[i], NULL, WEFT_FOREVER));
    cr_assert_eq(x87_cw(), X87_DEFAULT_CW, "main's x87 control word changed to %#x", x87_cw());
    return 1;
}

Test(fpenv, x87_precision_is_per_process, .timeout = 20)
{
    compute_x87_refs();
    for (int rep = 0; rep < 3; rep++) {
        ASSERT_CMP(test_run(1, x87_main, (void *)0), ==, 1);
        ASSERT_CMP(test_run(2, x87_main, (void *)0), ==, 1);
        ASSERT_CMP(test_run(2, x87_main, (void *)1), ==, 1);
    }
    ASSERT_CMP(x87_cw(), ==, X87_DEFAULT_CW);
}
#endif
