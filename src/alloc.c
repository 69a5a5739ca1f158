/* alloc.c: the allocation hook. Every heap allocation of weft goes through it. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void *default_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    (void)ud;
    (void)old_size;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, new_size);
}

static weft_alloc_fn hook = default_alloc;
static void *hook_ud;
/* Blocks taken through the hook and not yet given back: the hook may only be
 * replaced when this is 0, so that no block is freed through the wrong hook. */
static atomic_long outstanding;

void *weft__alloc(size_t size)
{
    void *p = hook(hook_ud, NULL, 0, size);
    if (p)
        atomic_fetch_add_explicit(&outstanding, 1, memory_order_relaxed);
    return p;
}

void *weft__calloc(size_t size)
{
    void *p = weft__alloc(size);
    if (p)
        memset(p, 0, size);
    return p;
}

void weft__free(void *ptr, size_t size)
{
    if (!ptr)
        return;
    hook(hook_ud, ptr, size, 0);
    atomic_fetch_sub_explicit(&outstanding, 1, memory_order_relaxed);
}

int weft_set_allocator(weft_alloc_fn fn, void *ud)
{
    if (atomic_load(&weft__rt.state) != WEFT__RT_STOPPED ||
        atomic_load(&outstanding) != 0)
        return weft__misuse(-EBUSY, "weft_set_allocator: weft still holds memory from the current allocator");
    hook = fn ? fn : default_alloc;
    hook_ud = fn ? ud : NULL;
    return 0;
}
