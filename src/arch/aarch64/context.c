/* context.c: builds the first frame of a new aarch64 context (see switch.S). */
#include <stdint.h>

#include "../context.h"

void weft__ctx_start(void);

enum {
    FRAME_WORDS = 22,  /* 176 bytes: x19-x30, d8-d15, FPCR, one pad word */
    SLOT_X19 = 0,      /* entry, called by weft__ctx_start */
    SLOT_X20 = 1,      /* its argument */
    SLOT_X29 = 10,     /* frame pointer: 0 ends the chain */
    SLOT_X30 = 11,     /* where the switch's ret goes */
    SLOT_FPCR = 20,
    DEFAULT_FPCR = 0   /* round to nearest, no traps, no flush-to-zero */
};

void weft__ctx_make(struct weft__ctx *ctx, void *stack_lo, size_t size,
                    void (*entry)(void *), void *arg)
{
    /* After the switch loads the frame and pops its 176 bytes, sp = top,
     * which is 16-byte aligned as AAPCS64 requires of sp at all times.
     * Rounding down only matters if the caller broke the contract. */
    uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
    uint64_t *frame = (uint64_t *)top - FRAME_WORDS;
    for (int i = 0; i < FRAME_WORDS; i++)
        frame[i] = 0;                        /* other registers, d8-d15 */
    frame[SLOT_X19] = (uint64_t)(uintptr_t)entry;
    frame[SLOT_X20] = (uint64_t)(uintptr_t)arg;
    frame[SLOT_X29] = 0;
    frame[SLOT_X30] = (uint64_t)(uintptr_t)weft__ctx_start;
    frame[SLOT_FPCR] = DEFAULT_FPCR;
    ctx->sp = frame;
}
