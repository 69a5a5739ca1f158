/* context.c: portable context switch on POSIX ucontext (getcontext,
 * makecontext, swapcontext), for architectures without a switch.S.
 *
 * Why it exists: it runs wherever the C library still has ucontext (glibc on
 * riscv64, ppc64le, s390x, loongarch64, ...), so weft works there before
 * anyone writes assembly for them, and it is a reference to check the
 * assembly versions against (the same tests must pass with WEFT_ARCH=generic).
 *
 * Why it is slow: a ucontext holds the signal mask, so swapcontext makes an
 * rt_sigprocmask system call on every switch, and it saves and restores the
 * whole register file and floating-point environment, not only the
 * callee-saved part: on one x86-64 machine a switch took about 270 ns here
 * against about 11 ns with x86_64/switch.S. The mask also travels with the
 * context: a new context starts with its creator's mask, and a context
 * resumed on another thread installs the mask it was saved with there.
 *
 * Register convention: whatever the C library's ucontext saves; that is a
 * superset of the callee-saved state weft needs. Note that on x86-64 glibc
 * uc_mcontext.fpregs points into the ucontext itself (__fpregs_mem), so a
 * struct weft__ctx must not be moved or copied once made or switched from.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* the mcontext field names (fpregs, cwd, mxcsr) */
#endif
#include <stdint.h>
#include <stdlib.h>
#include <ucontext.h>

#include "../context.h"

#if defined(__aarch64__)
#include <asm/sigcontext.h> /* struct fpsimd_context, FPSIMD_MAGIC */
#endif

#if !defined(WEFT_ARCH_GENERIC)
#error "generic/context.c needs WEFT_ARCH_GENERIC (see context.h)"
#endif

enum {
    DEFAULT_MXCSR = 0x1F80, /* x86: round to nearest, all exceptions masked */
    DEFAULT_FPU_CW = 0x037F /* x86 x87: same, 64-bit precision */
};

/* makecontext passes only int arguments, so entry and arg travel as two
 * 32-bit halves each and are put back together here. This is the function
 * makecontext starts; it must not return, since uc_link is NULL and glibc
 * would then end the whole thread. */
static void start(int entry_hi, int entry_lo, int arg_hi, int arg_lo)
{
    uintptr_t e = (uintptr_t)((uint64_t)(uint32_t)entry_hi << 32 | (uint32_t)entry_lo);
    uintptr_t a = (uintptr_t)((uint64_t)(uint32_t)arg_hi << 32 | (uint32_t)arg_lo);
    void (*entry)(void *) = (void (*)(void *))e;
    entry((void *)a);
    __builtin_trap(); /* entry returned: stop here, like switch.S does */
}

/* Resets the floating-point environment that getcontext copied from the
 * creator, so that a new context starts with the default one whatever
 * fesetround or fesetenv the creator did. */
static void reset_fpenv(ucontext_t *uc)
{
#if defined(__x86_64__) && defined(__GLIBC__)
    /* glibc's getcontext stores fnstenv (control word at offset 0, which is
     * cwd) and stmxcsr into __fpregs_mem; setcontext and swapcontext load
     * them back with fldenv and ldmxcsr. */
    uc->uc_mcontext.fpregs->cwd = DEFAULT_FPU_CW;
    uc->uc_mcontext.fpregs->mxcsr = DEFAULT_MXCSR; /* also clears the flags */
#elif defined(__aarch64__) && defined(__GLIBC__)
    /* glibc's getcontext stores an fpsimd_context record (d8-d15, FPSR,
     * FPCR) in the __reserved area, ended by a record with magic 0. */
    unsigned char *p = uc->uc_mcontext.__reserved;
    unsigned char *end = p + sizeof uc->uc_mcontext.__reserved;
    while (p + sizeof(struct _aarch64_ctx) <= end) {
        struct _aarch64_ctx *head = (struct _aarch64_ctx *)(void *)p;
        if (head->magic == 0 || head->size == 0)
            break;
        if (head->magic == FPSIMD_MAGIC) {
            struct fpsimd_context *fp = (struct fpsimd_context *)(void *)p;
            fp->fpcr = 0; /* round to nearest, no traps, no flush-to-zero */
            fp->fpsr = 0; /* no exception flags raised */
            break;
        }
        p += head->size;
    }
#else
    /* Unknown layout: the new context inherits the creator's environment.
     * weft's own contexts are made with the default one in force. */
    (void)uc;
#endif
}

void weft__ctx_make(struct weft__ctx *ctx, void *stack_lo, size_t size,
                    void (*entry)(void *), void *arg)
{
    if (getcontext(&ctx->uc) != 0)
        abort(); /* cannot fail on Linux; a broken invariant if it does */
    reset_fpenv(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = stack_lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_stack.ss_flags = 0;
    ctx->uc.uc_link = NULL; /* entry never returns (start traps if it does) */
    uint64_t e = (uint64_t)(uintptr_t)entry;
    uint64_t a = (uint64_t)(uintptr_t)arg;
    makecontext(&ctx->uc, (void (*)(void))start, 4,
                (int)(uint32_t)(e >> 32), (int)(uint32_t)e,
                (int)(uint32_t)(a >> 32), (int)(uint32_t)a);
}

void weft__ctx_switch(struct weft__ctx *from, struct weft__ctx *to)
{
    if (swapcontext(&from->uc, &to->uc) != 0)
        abort(); /* only fails on a bad signal mask: a broken invariant */
}
