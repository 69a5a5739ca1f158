/* switch.S: context switch for aarch64, AAPCS64 (Linux and other ELF systems).
 *
 * Callee-saved state (AAPCS64, "General-purpose registers" and "SIMD and
 * floating-point registers"): x19-x28, x29 (fp), x30 (lr), sp, the low 64
 * bits of v8-v15 (d8-d15) and FPCR, which holds the rounding mode and the
 * flush-to-zero and default-NaN controls. x18 is the platform register and
 * is left alone; FPSR (the cumulative exception flags) and everything else
 * are caller-saved, so a call to weft__ctx_switch may clobber them.
 *
 * Saved frame, 176 bytes, from the saved stack pointer upwards:
 *     +0   x19  +8   x20  +16  x21  +24  x22  +32  x23  +40  x24
 *     +48  x25  +56  x26  +64  x27  +72  x28  +80  x29  +88  x30 (resume pc)
 *     +96  d8   +104 d9   +112 d10  +120 d11  +128 d12  +136 d13
 *     +144 d14  +152 d15  +160 FPCR +168 unused (keeps sp 16-byte aligned)
 */
    .text

/* void weft__ctx_switch(struct weft__ctx *from, struct weft__ctx *to)
 * x0 = from, x1 = to; ctx->sp is the first field. */
    .globl weft__ctx_switch
    .hidden weft__ctx_switch
    .type weft__ctx_switch, %function
    .p2align 4
weft__ctx_switch:
    .cfi_startproc
    sub sp, sp, #176
    .cfi_def_cfa_offset 176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    /* For debuggers and profilers stopping in here: the CFA is sp + 176
     * both before and after sp moves to the other stack, whose frame has
     * the same layout. */
    .cfi_offset x19, -176
    .cfi_offset x20, -168
    .cfi_offset x21, -160
    .cfi_offset x22, -152
    .cfi_offset x23, -144
    .cfi_offset x24, -136
    .cfi_offset x25, -128
    .cfi_offset x26, -120
    .cfi_offset x27, -112
    .cfi_offset x28, -104
    .cfi_offset x29, -96
    .cfi_offset x30, -88
    .cfi_offset d8, -80
    .cfi_offset d9, -72
    .cfi_offset d10, -64
    .cfi_offset d11, -56
    .cfi_offset d12, -48
    .cfi_offset d13, -40
    .cfi_offset d14, -32
    .cfi_offset d15, -24
    mrs x9, fpcr
    str x9, [sp, #160]
    mov x10, sp                 /* sp cannot be stored directly */
    str x10, [x0]
    ldr x10, [x1]
    mov sp, x10
    ldr x10, [sp, #160]
    cmp x9, x10                 /* writing FPCR can stall the pipeline: */
    b.eq 1f                     /* skip it when both sides agree */
    msr fpcr, x10
1:  ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #176
    .cfi_def_cfa_offset 0
    .cfi_same_value x19         /* every register holds the resumed */
    .cfi_same_value x20         /* context's own value again */
    .cfi_same_value x21
    .cfi_same_value x22
    .cfi_same_value x23
    .cfi_same_value x24
    .cfi_same_value x25
    .cfi_same_value x26
    .cfi_same_value x27
    .cfi_same_value x28
    .cfi_same_value x29
    .cfi_same_value x30
    .cfi_same_value d8
    .cfi_same_value d9
    .cfi_same_value d10
    .cfi_same_value d11
    .cfi_same_value d12
    .cfi_same_value d13
    .cfi_same_value d14
    .cfi_same_value d15
    ret
    .cfi_endproc
    .size weft__ctx_switch, .-weft__ctx_switch

/* First code run by a new context: weft__ctx_make leaves entry in x19 and
 * its argument in x20, and sp 16-byte aligned. entry never returns; if it
 * does, brk stops the process with SIGTRAP instead of running off the end. */
    .globl weft__ctx_start
    .hidden weft__ctx_start
    .type weft__ctx_start, %function
    .p2align 4
weft__ctx_start:
    .cfi_startproc
    .cfi_undefined x30          /* outermost frame: debuggers stop here */
    mov x29, #0                 /* ends the frame-pointer chain too */
    mov x30, #0
    mov x0, x20
    blr x19
    brk #0x3e8
    .cfi_endproc
    .size weft__ctx_start, .-weft__ctx_start

    .section .note.GNU-stack,"",%progbits
