/* alloc.h: the fuzz programs' allocation hook: counts what weft holds,
 * checks the size weft passes back with every block, and can fail one
 * allocation on purpose. */
#ifndef FZ_ALLOC_H
#define FZ_ALLOC_H

#include <stddef.h>

/* Installs the hook with weft_set_allocator (no runtime may be running),
 * resets the counters and arms the failure of allocation number fail_at
 * (counted from now, from 1; 0: none). Aborts if weft refuses the hook. */
void fz_alloc_install(unsigned fail_at);

/* Nonzero once the armed failure has happened. */
int fz_alloc_failed(void);

/* Bytes and blocks taken through the hook and not given back. */
long fz_alloc_live_bytes(void);
long fz_alloc_live_blocks(void);

#endif
