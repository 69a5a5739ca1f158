/* context.h: the machine context of a process and the switch between two.
 *
 * The only architecture-specific layer. One implementation is linked, picked
 * by the build (WEFT_ARCH): x86_64/switch.S, aarch64/switch.S, or the portable
 * generic/context.c built on ucontext.
 *
 * A context is saved on its own stack; the struct only holds what the
 * implementation needs to find it again (the stack pointer for the assembly
 * versions).
 */
#ifndef WEFT_ARCH_CONTEXT_H
#define WEFT_ARCH_CONTEXT_H

#include <stddef.h>

#if defined(WEFT_ARCH_GENERIC)
#include <ucontext.h>
struct weft__ctx {
    ucontext_t uc;
};
#else
struct weft__ctx {
    void *sp; /* saved stack pointer; the callee-saved registers lie above it */
};
#endif

/* Prepares ctx so that the first switch to it calls entry(arg) on the stack
 * [stack_lo, stack_lo + size). stack_lo + size must be 16-byte aligned.
 * entry must never return: it ends by switching away for good. A new context
 * starts with the default floating-point environment (round to nearest, all
 * exceptions masked). */
void weft__ctx_make(struct weft__ctx *ctx, void *stack_lo, size_t size,
                    void (*entry)(void *), void *arg);

/* Saves the running context into *from and resumes *to. Saves exactly the
 * callee-saved state of the ABI: on x86-64 rbx, rbp, r12-r15, rsp, MXCSR (its
 * control bits matter; its flags travel along) and the x87 control word; on aarch64 x19-x29, lr, sp, d8-d15
 * and FPCR. Returns when some context switches back to *from. */
void weft__ctx_switch(struct weft__ctx *from, struct weft__ctx *to);

#endif
