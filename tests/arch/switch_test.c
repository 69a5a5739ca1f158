/* switch_test.c: tests the context switch of src/arch on its own.
 *
 * Self-contained: no test framework and no weft runtime, only one
 * implementation of src/arch/context.h linked in:
 *     cc -O2 tests/arch/switch_test.c src/arch/x86_64/switch.S \
 *         src/arch/x86_64/context.c -lm
 *     cc -O2 -DWEFT_ARCH_GENERIC tests/arch/switch_test.c \
 *         src/arch/generic/context.c -lm
 * (the same with aarch64/). Prints each failure with its values and ends
 * with "N passed, M failed"; exits 0 if all passed, 1 otherwise.
 *
 * Tests: two contexts ping-pong; callee-saved integer and (aarch64) FP
 * registers survive a switch; the floating-point environment (rounding
 * mode, MXCSR and x87 control word, FPCR) is kept per context and a new
 * context starts with the default one; a new context's stack is aligned and
 * its outermost frame stops an unwinder; an entry that returns traps.
 *
 * The register checks use small assembly helpers (x86-64 and aarch64 only)
 * that put known values in every callee-saved register, switch, and read
 * them back, so that the other side really has clobbered them in between.
 * On other machines (WEFT_ARCH=generic) those checks are skipped.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MAP_ANONYMOUS */
#endif
#include <fenv.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <unwind.h>

#include "../../src/arch/context.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(TEST_ASAN)
#include <sanitizer/asan_interface.h>
/* A context left suspended for good leaves its frames' redzones poisoned;
 * a later mmap may hand out the same addresses, so clear them. */
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* --- harness ------------------------------------------------------------- */

static int failures; /* failed checks in the test being run */

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            failures++;                                                     \
            printf("  FAIL %s:%d: %s: ", __func__, __LINE__, #cond);       \
            printf(__VA_ARGS__);                                            \
            putchar('\n');                                                  \
        }                                                                   \
    } while (0)

enum { STACK_SIZE = 64 * 1024 };

static size_t page_size;

/* Returns the low end of a STACK_SIZE stack with a PROT_NONE guard page
 * below it; the top, lo + STACK_SIZE, is page-aligned, so 16-byte aligned. */
static char *stack_alloc(void)
{
    char *map = mmap(NULL, STACK_SIZE + page_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    if (mprotect(map, page_size, PROT_NONE) != 0) {
        perror("mprotect");
        exit(1);
    }
    UNPOISON(map + page_size, STACK_SIZE);
    return map + page_size;
}

static void stack_free(char *lo)
{
    UNPOISON(lo, STACK_SIZE);
    munmap(lo - page_size, STACK_SIZE + page_size);
}

/* The context main() runs in, and the one each test creates. A test leaves
 * its context suspended for good when it is done and frees its stack. */
static struct weft__ctx main_ctx, other_ctx;

/* --- per-architecture helpers --------------------------------------------- */

/* void test_regs_switch(const uint64_t *in, uint64_t *out,
 *                       struct weft__ctx *from, struct weft__ctx *to)
 * Loads every callee-saved register from in[], calls
 * weft__ctx_switch(from, to), and when resumed stores the registers to out[]
 * in the same order. Preserves its caller's callee-saved registers.
 *
 * uintptr_t test_caller_sp(void): the stack pointer at the call site. */
void test_regs_switch(const uint64_t *in, uint64_t *out,
                      struct weft__ctx *from, struct weft__ctx *to);
uintptr_t test_caller_sp(void);

#if defined(__x86_64__)
#define HAVE_HELPERS 1
enum { NINT = 6, NFP = 0 };
static const char *const reg_names[NINT] = {"rbx", "rbp", "r12", "r13", "r14", "r15"};

__asm__(
    "    .pushsection .text\n"
    "    .globl test_regs_switch\n"
    "    .type test_regs_switch, @function\n"
    "test_regs_switch:\n" /* rdi = in, rsi = out, rdx = from, rcx = to */
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    pushq %rsi\n" /* out; 8 words pushed in all, rsp aligned again */
    "    movq 0(%rdi), %rbx\n"
    "    movq 8(%rdi), %rbp\n"
    "    movq 16(%rdi), %r12\n"
    "    movq 24(%rdi), %r13\n"
    "    movq 32(%rdi), %r14\n"
    "    movq 40(%rdi), %r15\n"
    "    movq %rdx, %rdi\n"
    "    movq %rcx, %rsi\n"
    "    call weft__ctx_switch\n"
    "    popq %rax\n"
    "    movq %rbx, 0(%rax)\n"
    "    movq %rbp, 8(%rax)\n"
    "    movq %r12, 16(%rax)\n"
    "    movq %r13, 24(%rax)\n"
    "    movq %r14, 32(%rax)\n"
    "    movq %r15, 40(%rax)\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    "    .size test_regs_switch, .-test_regs_switch\n"
    "    .globl test_caller_sp\n"
    "    .type test_caller_sp, @function\n"
    "test_caller_sp:\n"
    "    leaq 8(%rsp), %rax\n" /* skip the return address */
    "    ret\n"
    "    .size test_caller_sp, .-test_caller_sp\n"
    "    .popsection\n");

/* Floating-point control state kept per context: MXCSR control bits (high
 * half) and the x87 control word (low half). */
static uint64_t fp_control(void)
{
    uint32_t mxcsr;
    uint16_t cw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return (uint64_t)(mxcsr & 0xFFC0) << 16 | cw;
}
static const uint64_t fp_control_default = (uint64_t)0x1F80 << 16 | 0x037F;

/* Changes controls besides the rounding mode: x87 precision to 53 bits,
 * MXCSR flush-to-zero. */
static void fp_control_change(void)
{
    uint16_t cw;
    uint32_t mxcsr;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    cw = (uint16_t)((cw & ~0x0300) | 0x0200);
    __asm__ volatile("fldcw %0" : : "m"(cw));
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    mxcsr |= 0x8000;
    __asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
}

#elif defined(__aarch64__)
#define HAVE_HELPERS 1
enum { NINT = 11, NFP = 8 };
static const char *const reg_names[NINT + NFP] = {
    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
    "x29", "d8",  "d9",  "d10", "d11", "d12", "d13", "d14", "d15"};

__asm__(
    "    .pushsection .text\n"
    "    .globl test_regs_switch\n"
    "    .type test_regs_switch, %function\n"
    "    .p2align 2\n"
    "test_regs_switch:\n" /* x0 = in, x1 = out, x2 = from, x3 = to */
    "    stp x29, x30, [sp, #-176]!\n"
    "    mov x29, sp\n"
    "    stp x19, x20, [sp, #16]\n"
    "    stp x21, x22, [sp, #32]\n"
    "    stp x23, x24, [sp, #48]\n"
    "    stp x25, x26, [sp, #64]\n"
    "    stp x27, x28, [sp, #80]\n"
    "    stp d8, d9, [sp, #96]\n"
    "    stp d10, d11, [sp, #112]\n"
    "    stp d12, d13, [sp, #128]\n"
    "    stp d14, d15, [sp, #144]\n"
    "    str x1, [sp, #160]\n"
    "    ldp x19, x20, [x0, #0]\n"
    "    ldp x21, x22, [x0, #16]\n"
    "    ldp x23, x24, [x0, #32]\n"
    "    ldp x25, x26, [x0, #48]\n"
    "    ldp x27, x28, [x0, #64]\n"
    "    ldr x29, [x0, #80]\n"
    "    ldp d8, d9, [x0, #88]\n"
    "    ldp d10, d11, [x0, #104]\n"
    "    ldp d12, d13, [x0, #120]\n"
    "    ldp d14, d15, [x0, #136]\n"
    "    mov x0, x2\n"
    "    mov x1, x3\n"
    "    bl weft__ctx_switch\n"
    "    ldr x1, [sp, #160]\n"
    "    stp x19, x20, [x1, #0]\n"
    "    stp x21, x22, [x1, #16]\n"
    "    stp x23, x24, [x1, #32]\n"
    "    stp x25, x26, [x1, #48]\n"
    "    stp x27, x28, [x1, #64]\n"
    "    str x29, [x1, #80]\n"
    "    stp d8, d9, [x1, #88]\n"
    "    stp d10, d11, [x1, #104]\n"
    "    stp d12, d13, [x1, #120]\n"
    "    stp d14, d15, [x1, #136]\n"
    "    ldp x19, x20, [sp, #16]\n"
    "    ldp x21, x22, [sp, #32]\n"
    "    ldp x23, x24, [sp, #48]\n"
    "    ldp x25, x26, [sp, #64]\n"
    "    ldp x27, x28, [sp, #80]\n"
    "    ldp d8, d9, [sp, #96]\n"
    "    ldp d10, d11, [sp, #112]\n"
    "    ldp d12, d13, [sp, #128]\n"
    "    ldp d14, d15, [sp, #144]\n"
    "    ldp x29, x30, [sp], #176\n"
    "    ret\n"
    "    .size test_regs_switch, .-test_regs_switch\n"
    "    .globl test_caller_sp\n"
    "    .type test_caller_sp, %function\n"
    "    .p2align 2\n"
    "test_caller_sp:\n"
    "    mov x0, sp\n"
    "    ret\n"
    "    .size test_caller_sp, .-test_caller_sp\n"
    "    .popsection\n");

/* Floating-point control state kept per context: FPCR. */
static uint64_t fp_control(void)
{
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return fpcr;
}
static const uint64_t fp_control_default = 0;

/* Changes a control besides the rounding mode: FPCR.FZ (flush-to-zero). */
static void fp_control_change(void)
{
    uint64_t fpcr = fp_control() | (1u << 24);
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
}

#else /* another machine: only the portable checks */
#define HAVE_HELPERS 0
enum { NINT = 0, NFP = 0 };
static const char *const reg_names[1] = {""};

void test_regs_switch(const uint64_t *in, uint64_t *out,
                      struct weft__ctx *from, struct weft__ctx *to)
{
    (void)in;
    (void)out;
    weft__ctx_switch(from, to);
}

uintptr_t test_caller_sp(void)
{
    return 0; /* unknown: test_first_frame skips the check */
}

static uint64_t fp_control(void)
{
    return 0;
}
static const uint64_t fp_control_default = 0;

static void fp_control_change(void)
{
}
#endif

enum { NREGS = NINT + NFP > 0 ? NINT + NFP : 1 };

/* --- (a) ping-pong ---------------------------------------------------------- */

enum { ROUNDS = 1000 };

struct pingpong {
    int counter;    /* main makes it odd, the other context even again */
    int bad_turns;  /* times the other context found it even */
    void *arg_seen; /* the argument the other context's entry got */
};

static void pingpong_entry(void *arg)
{
    struct pingpong *pp = arg;
    pp->arg_seen = arg;
    for (;;) {
        if (pp->counter % 2 != 1)
            pp->bad_turns++;
        pp->counter++;
        weft__ctx_switch(&other_ctx, &main_ctx);
    }
}

static void test_pingpong(void)
{
    struct pingpong pp = {0, 0, NULL};
    char *stack = stack_alloc();
    weft__ctx_make(&other_ctx, stack, STACK_SIZE, pingpong_entry, &pp);
    int i;
    for (i = 0; i < ROUNDS; i++) {
        if (pp.counter != 2 * i)
            break;
        pp.counter++;
        weft__ctx_switch(&main_ctx, &other_ctx);
    }
    CHECK(i == ROUNDS && pp.counter == 2 * ROUNDS,
          "stopped at round %d with counter %d, want round %d, counter %d",
          i, pp.counter, ROUNDS, 2 * ROUNDS);
    CHECK(pp.bad_turns == 0, "other context ran out of turn %d times", pp.bad_turns);
    CHECK(pp.arg_seen == &pp, "entry got arg %p, want %p", pp.arg_seen, (void *)&pp);
    stack_free(stack);
}

/* --- (b), (c) callee-saved registers ---------------------------------------- */

/* main fills the registers with a1, switches to the other context, which
 * fills them with b and switches back: main must read a1 again. main then
 * fills them with a2 and resumes the other context, which must read b; it
 * switches back and main must read a2. */
struct regs_run {
    uint64_t a1_in[NREGS], a1_out[NREGS];
    uint64_t a2_in[NREGS], a2_out[NREGS];
    uint64_t b_in[NREGS], b_out[NREGS];
};

static struct regs_run regs;

static void regs_entry(void *arg)
{
    struct regs_run *r = arg;
    test_regs_switch(r->b_in, r->b_out, &other_ctx, &main_ctx);
    weft__ctx_switch(&other_ctx, &main_ctx);
    abort(); /* never resumed again */
}

static void regs_scenario(struct regs_run *r)
{
    for (int i = 0; i < NREGS; i++) {
        uint64_t step = (uint64_t)(i + 1) * 0x0001000100010001u;
        r->a1_in[i] = 0xA1A1000000000000u + step;
        r->a2_in[i] = 0xA2A2000000000000u + step;
        r->b_in[i] = 0xB0B0000000000000u + step;
        r->a1_out[i] = r->a2_out[i] = r->b_out[i] = 0;
    }
    char *stack = stack_alloc();
    weft__ctx_make(&other_ctx, stack, STACK_SIZE, regs_entry, r);
    test_regs_switch(r->a1_in, r->a1_out, &main_ctx, &other_ctx);
    test_regs_switch(r->a2_in, r->a2_out, &main_ctx, &other_ctx);
    stack_free(stack);
}

static void check_regs(const char *who, const uint64_t *in, const uint64_t *out,
                       int from, int to)
{
    for (int i = from; i < to; i++)
        CHECK(out[i] == in[i], "%s: %s = 0x%016" PRIx64 " after the switch, want 0x%016" PRIx64,
              who, reg_names[i], out[i], in[i]);
}

static void test_int_registers(void)
{
    regs_scenario(&regs);
    check_regs("main, first switch", regs.a1_in, regs.a1_out, 0, NINT);
    check_regs("main, second switch", regs.a2_in, regs.a2_out, 0, NINT);
    check_regs("other context", regs.b_in, regs.b_out, 0, NINT);
}

static void test_fp_registers(void)
{
    regs_scenario(&regs);
    check_regs("main, first switch", regs.a1_in, regs.a1_out, NINT, NREGS);
    check_regs("main, second switch", regs.a2_in, regs.a2_out, NINT, NREGS);
    check_regs("other context", regs.b_in, regs.b_out, NINT, NREGS);
}

/* --- (d) floating-point environment ------------------------------------------ */

static volatile double one = 1.0, three = 3.0;

/* 1.0 / 3.0 in the current rounding mode. The volatile operands keep the
 * compiler from folding it, the volatile result from moving it across a
 * switch. */
static double third(void)
{
    volatile double r = one / three;
    return r;
}

#if defined(__x86_64__)
static volatile long double one_ld = 1.0L, three_ld = 3.0L;

/* The same on the x87 unit, which has its own rounding control. */
static long double third_x87(void)
{
    volatile long double r = one_ld / three_ld;
    return r;
}
#endif

struct fenv_run {
    int b_first_round, b_resumed_round; /* fegetround() in the other context */
    uint64_t b_first_ctl, b_set_ctl, b_resumed_ctl; /* its fp_control() */
    double b_down, b_down_resumed;      /* its third() */
#if defined(__x86_64__)
    long double b_down_x87;
#endif
};

static void fenv_entry(void *arg)
{
    struct fenv_run *r = arg;
    r->b_first_round = fegetround();
    r->b_first_ctl = fp_control();
    fesetround(FE_DOWNWARD);
    r->b_set_ctl = fp_control();
    r->b_down = third();
#if defined(__x86_64__)
    r->b_down_x87 = third_x87();
#endif
    weft__ctx_switch(&other_ctx, &main_ctx);
    r->b_resumed_round = fegetround();
    r->b_resumed_ctl = fp_control();
    r->b_down_resumed = third();
    weft__ctx_switch(&other_ctx, &main_ctx);
    abort(); /* never resumed again */
}

static void test_fenv(void)
{
    struct fenv_run r = {0};
    char *stack = stack_alloc();
    double nearest = third();

    /* Change the environment before making the context: the new context
     * must start with the default one anyway. */
    fesetround(FE_UPWARD);
    fp_control_change();
    uint64_t a_ctl = fp_control();
    weft__ctx_make(&other_ctx, stack, STACK_SIZE, fenv_entry, &r);
    weft__ctx_switch(&main_ctx, &other_ctx);
    int a_round = fegetround();
    uint64_t a_ctl_resumed = fp_control();
    double a_up = third();
#if defined(__x86_64__)
    long double a_up_x87 = third_x87();
#endif
    weft__ctx_switch(&main_ctx, &other_ctx);
    int a_round_end = fegetround();
    uint64_t a_ctl_end = fp_control();
    fesetenv(FE_DFL_ENV);
    stack_free(stack);

    CHECK(r.b_first_round == FE_TONEAREST, "new context starts with rounding mode %#x, want FE_TONEAREST %#x",
          (unsigned)r.b_first_round, (unsigned)FE_TONEAREST);
    CHECK(r.b_first_ctl == fp_control_default,
          "new context starts with fp control 0x%" PRIx64 ", want 0x%" PRIx64
          " (creator had 0x%" PRIx64 ")", r.b_first_ctl, fp_control_default, a_ctl);
    CHECK(a_round == FE_UPWARD, "main resumed with rounding mode %#x, want FE_UPWARD %#x",
          (unsigned)a_round, (unsigned)FE_UPWARD);
    CHECK(a_ctl_resumed == a_ctl, "main resumed with fp control 0x%" PRIx64 ", want 0x%" PRIx64,
          a_ctl_resumed, a_ctl);
    CHECK(a_round_end == FE_UPWARD && a_ctl_end == a_ctl,
          "main resumed the second time with mode %#x, control 0x%" PRIx64
          ", want %#x, 0x%" PRIx64, (unsigned)a_round_end, a_ctl_end,
          (unsigned)FE_UPWARD, a_ctl);
    CHECK(r.b_resumed_round == FE_DOWNWARD, "other context resumed with rounding mode %#x, want FE_DOWNWARD %#x",
          (unsigned)r.b_resumed_round, (unsigned)FE_DOWNWARD);
    CHECK(r.b_resumed_ctl == r.b_set_ctl, "other context resumed with fp control 0x%" PRIx64 ", want 0x%" PRIx64,
          r.b_resumed_ctl, r.b_set_ctl);
    CHECK(a_up > r.b_down && a_up == nextafter(r.b_down, 1.0),
          "1/3 rounded up in main is %a, rounded down in the other context %a: want one ulp apart",
          a_up, r.b_down);
    CHECK(r.b_down_resumed == r.b_down, "1/3 in the other context after resuming is %a, want %a",
          r.b_down_resumed, r.b_down);
    CHECK(nearest == a_up || nearest == r.b_down, "1/3 to nearest %a is neither %a nor %a",
          nearest, a_up, r.b_down);
#if defined(__x86_64__)
    CHECK((r.b_first_ctl & 0xFFFF) == 0x037F, "x87 control word of a new context is %#" PRIx64 ", want 0x37f",
          r.b_first_ctl & 0xFFFF);
    CHECK((a_ctl_resumed & 0xFFFF) == (a_ctl & 0xFFFF), "x87 control word of main is %#" PRIx64
          " after the switch, want %#" PRIx64, a_ctl_resumed & 0xFFFF, a_ctl & 0xFFFF);
    CHECK(a_up_x87 > r.b_down_x87, "x87 1/3 rounded up in main is %La, not above %La rounded down",
          a_up_x87, r.b_down_x87);
#endif
    CHECK(fp_control() == fp_control_default, "fesetenv(FE_DFL_ENV) left fp control 0x%" PRIx64,
          fp_control());
}

/* --- (e) the first frame of a new context ------------------------------------- */

struct frame_run {
    uintptr_t sp;            /* stack pointer at a call from entry */
    int depth;               /* frames _Unwind_Backtrace saw from entry */
    _Unwind_Reason_Code rc;  /* and what it returned */
};

enum { MAX_DEPTH = 64 };

static _Unwind_Reason_Code count_frame(struct _Unwind_Context *uc, void *arg)
{
    int *depth = arg;
    (void)uc;
    return ++*depth >= MAX_DEPTH ? _URC_NORMAL_STOP : _URC_NO_REASON;
}

static void frame_entry(void *arg)
{
    struct frame_run *r = arg;
    r->sp = test_caller_sp();
    r->rc = _Unwind_Backtrace(count_frame, &r->depth);
    weft__ctx_switch(&other_ctx, &main_ctx);
    abort(); /* never resumed again */
}

static void test_first_frame(void)
{
    struct frame_run r = {0, 0, _URC_NO_REASON};
    char *stack = stack_alloc();
    weft__ctx_make(&other_ctx, stack, STACK_SIZE, frame_entry, &r);
    weft__ctx_switch(&main_ctx, &other_ctx);
    uintptr_t lo = (uintptr_t)stack, hi = lo + STACK_SIZE;
    if (HAVE_HELPERS) {
        CHECK(r.sp % 16 == 0, "sp at a call from entry is %#" PRIxPTR ", not 16-byte aligned", r.sp);
        CHECK(r.sp > lo && r.sp < hi, "sp at a call from entry is %#" PRIxPTR ", not in [%#" PRIxPTR
              ", %#" PRIxPTR ")", r.sp, lo, hi);
    }
    /* The outermost frame is marked (.cfi_undefined on the return address),
     * so unwinding from entry ends after a few frames and says so. */
    CHECK(r.rc == _URC_END_OF_STACK && r.depth >= 2 && r.depth <= 8,
          "unwinding from entry returned %d after %d frames, want _URC_END_OF_STACK (%d) after 2 to 8",
          (int)r.rc, r.depth, (int)_URC_END_OF_STACK);
    stack_free(stack);
}

/* --- returning from entry traps ------------------------------------------------ */

static void returning_entry(void *arg)
{
    (void)arg;
}

static void test_entry_return_traps(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        char *stack = stack_alloc();
        weft__ctx_make(&other_ctx, stack, STACK_SIZE, returning_entry, NULL);
        weft__ctx_switch(&main_ctx, &other_ctx);
        _exit(0); /* wrong: the return came back here */
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        exit(1);
    }
    CHECK(WIFSIGNALED(status) && (WTERMSIG(status) == SIGILL || WTERMSIG(status) == SIGTRAP),
          "child %s %d, want killed by SIGILL (%d) or SIGTRAP (%d)",
          WIFSIGNALED(status) ? "killed by signal" : "exited with status",
          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), SIGILL, SIGTRAP);
}

/* --- main ----------------------------------------------------------------------- */

static int passed, failed;

static void run(const char *name, void (*test)(void))
{
    failures = 0;
    test();
    if (failures == 0) {
        passed++;
        printf("ok   %s\n", name);
    } else {
        failed++;
        printf("FAIL %s\n", name);
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep what was printed if a test crashes */
    page_size = (size_t)sysconf(_SC_PAGESIZE);
#if defined(WEFT_ARCH_GENERIC)
    const char *impl = "generic (ucontext)";
#elif defined(__x86_64__)
    const char *impl = "x86_64 (switch.S)";
#elif defined(__aarch64__)
    const char *impl = "aarch64 (switch.S)";
#else
    const char *impl = "unknown";
#endif
    printf("switch_test: %s\n", impl);
    run("pingpong", test_pingpong);
    if (HAVE_HELPERS)
        run("int_registers", test_int_registers);
    else
        printf("skip int_registers (no register helper for this machine)\n");
    if (NFP > 0)
        run("fp_registers", test_fp_registers);
    else
        printf("skip fp_registers (%s)\n", HAVE_HELPERS ? "no callee-saved vector registers in this ABI"
                                                        : "no register helper for this machine");
    run("fenv", test_fenv);
    run("first_frame", test_first_frame);
    run("entry_return_traps", test_entry_return_traps);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
