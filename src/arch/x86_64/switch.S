/* switch.S: context switch for x86-64, System V ABI.
 *
 * Callee-saved state (SysV AMD64 ABI 3.2.1): rbx, rbp, r12, r13, r14, r15,
 * rsp, the control bits of MXCSR and the x87 FPU control word. Everything else
 * is caller-saved, so a call to weft__ctx_switch may clobber it.
 *
 * Saved frame, from the saved stack pointer upwards:
 *     +0   MXCSR (4 bytes)   +4 x87 control word (2 bytes, 2 unused)
 *     +8   r15   +16 r14   +24 r13   +32 r12   +40 rbx   +48 rbp
 *     +56  return address
 */
    .text

/* void weft__ctx_switch(struct weft__ctx *from, struct weft__ctx *to)
 * rdi = from, rsi = to; ctx->sp is the first field. */
    .globl weft__ctx_switch
    .hidden weft__ctx_switch
    .type weft__ctx_switch, @function
    .p2align 4
weft__ctx_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq (%rsi), %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size weft__ctx_switch, .-weft__ctx_switch

/* First code run by a new context: weft__ctx_make leaves entry in r12 and
 * its argument in r13, with rsp 16-byte aligned here. entry never returns. */
    .globl weft__ctx_start
    .hidden weft__ctx_start
    .type weft__ctx_start, @function
    .p2align 4
weft__ctx_start:
    .cfi_startproc
    .cfi_undefined rip          /* outermost frame: debuggers stop here */
    xorl %ebp, %ebp
    movq %r13, %rdi
    call *%r12
    ud2
    .cfi_endproc
    .size weft__ctx_start, .-weft__ctx_start

    .section .note.GNU-stack,"",@progbits
