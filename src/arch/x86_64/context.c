/* context.c: builds the first frame of a new x86-64 context (see switch.S). */
#include <stdint.h>
#include <string.h>

#include "../context.h"

void weft__ctx_start(void);

enum {
    DEFAULT_MXCSR = 0x1F80, /* round to nearest, all exceptions masked */
    DEFAULT_FPU_CW = 0x037F /* same for x87, 64-bit precision */
};

void weft__ctx_make(struct weft__ctx *ctx, void *stack_lo, size_t size,
                    void (*entry)(void *), void *arg)
{
    /* After the switch pops the 8 frame words and returns, rsp = top, which
     * is 16-byte aligned, as weft__ctx_start's call requires. */
    uint64_t *top = (uint64_t *)((char *)stack_lo + size);
    uint64_t *frame = top - 8;
    uint32_t fpenv[2] = {DEFAULT_MXCSR, DEFAULT_FPU_CW};
    memcpy(&frame[0], fpenv, sizeof fpenv);
    frame[1] = 0;                            /* r15 */
    frame[2] = 0;                            /* r14 */
    frame[3] = (uint64_t)(uintptr_t)arg;     /* r13 */
    frame[4] = (uint64_t)(uintptr_t)entry;   /* r12 */
    frame[5] = 0;                            /* rbx */
    frame[6] = 0;                            /* rbp */
    frame[7] = (uint64_t)(uintptr_t)weft__ctx_start; /* return address */
    ctx->sp = frame;
}
