/* alloc.c: the counting allocation hook of the fuzz programs.
 *
 * Every block carries a header with its size: a free or resize that passes
 * another old size than the block was given is weft's bug, and aborts. The
 * counters are atomic: worker threads allocate (one at a time in the fuzz
 * programs, but the runtime's own threads may overlap with them). */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "weft.h"

enum { MAGIC = 0x5a11ab1e };

/* 16 bytes, so that the block after it keeps malloc's alignment. */
struct header {
    size_t size;
    uint64_t magic;
};

static atomic_long live_bytes, live_blocks;
static atomic_ulong allocations; /* since the last install */
static unsigned long fail_at;
static atomic_int failed;

static struct header *header_of(void *ptr, size_t old_size)
{
    struct header *h = (struct header *)ptr - 1;
    if (h->magic != MAGIC || h->size != old_size) {
        fprintf(stderr, "fuzz: weft gave back block %p as %zu bytes; it has %zu (magic %#llx)\n",
                ptr, old_size, h->size, (unsigned long long)h->magic);
        abort();
    }
    return h;
}

static void *hook(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    (void)ud;
    if (new_size == 0) {
        if (ptr) {
            struct header *h = header_of(ptr, old_size);
            h->magic = 0;
            atomic_fetch_sub(&live_bytes, (long)old_size);
            atomic_fetch_sub(&live_blocks, 1);
            free(h);
        }
        return NULL;
    }
    if (!ptr) {
        unsigned long n = atomic_fetch_add(&allocations, 1) + 1;
        if (fail_at && n == fail_at) {
            atomic_store(&failed, 1);
            return NULL;
        }
    }
    struct header *old = ptr ? header_of(ptr, old_size) : NULL;
    struct header *h = realloc(old, sizeof *h + new_size);
    if (!h)
        return NULL;
    h->size = new_size;
    h->magic = MAGIC;
    atomic_fetch_add(&live_bytes, (long)new_size - (long)(ptr ? old_size : 0));
    if (!ptr)
        atomic_fetch_add(&live_blocks, 1);
    return h + 1;
}

void fz_alloc_install(unsigned fail)
{
    int err = weft_set_allocator(hook, NULL);
    if (err) {
        fprintf(stderr, "fuzz: weft_set_allocator: %s (%ld bytes in %ld blocks live)\n",
                weft_strerror(err), fz_alloc_live_bytes(), fz_alloc_live_blocks());
        abort();
    }
    atomic_store(&allocations, 0);
    atomic_store(&failed, 0);
    fail_at = fail;
}

int fz_alloc_failed(void)
{
    return atomic_load(&failed);
}

long fz_alloc_live_bytes(void)
{
    return atomic_load(&live_bytes);
}

long fz_alloc_live_blocks(void)
{
    return atomic_load(&live_blocks);
}
