/* stack.c: process stacks: pooled, lazily committed, with guard pages.
 *
 * Stacks of one size class are carved out of slabs of at least 16 MiB mapped
 * with MAP_NORESERVE, so a stack costs only the pages its process touched.
 * Each stack's lowest page is a guard page. The guard must not cost a memory
 * mapping per stack (vm.max_map_count is 65530 by default, and mprotect
 * splits a mapping in three), so:
 *   - on Linux 6.13+ the guard is installed with madvise(MADV_GUARD_INSTALL),
 *     which marks page table entries and keeps the slab one mapping;
 *   - elsewhere the fallback is mprotect(PROT_NONE), used for the first
 *     GUARD_MPROTECT_BUDGET stacks only; stacks beyond that budget have no
 *     guard page (an overflow there corrupts memory instead of being caught).
 * WEFT_GUARD=mprotect or WEFT_GUARD=none in the environment forces a mode
 * (for tests). Otherwise the first guard page installed is the probe: if
 * MADV_GUARD_INSTALL fails there, every later stack uses the fallback.
 *
 * Free stacks go first to the freeing worker's cache (no lock), then to the
 * class's global pool. Beyond POOL_RETAIN free stacks, a stack entering the
 * global pool gives its pages back to the kernel (MADV_DONTNEED).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#ifdef WEFT_HAVE_VALGRIND
#include <valgrind/valgrind.h>
#endif

#include "fault.h"
#include "internal.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

enum {
    SLAB_MIN = 16 << 20,
    POOL_RETAIN = 256,
    GUARD_MPROTECT_BUDGET = 16384, /* 2 extra mappings each: ~33k of 65530 */
    CACHE_BATCH = WEFT__STACK_CACHE / 2
};

enum guard_mode { GUARD_UNKNOWN, GUARD_INSTALL, GUARD_MPROTECT, GUARD_NONE };

struct slab {
    struct slab *next;
    char *base;
    size_t len;
    uint32_t nstacks;
    unsigned vg_ids[]; /* valgrind stack ids, one per stack */
};

struct class_pool {
    void **free;        /* free stacks; capacity = stacks ever carved */
    uint32_t nfree, capacity, carved;
    char *carve_next, *carve_end; /* rest of the newest slab */
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct class_pool pools[WEFT__STACK_CLASSES];
static struct slab *slabs;
static enum guard_mode guard_mode;
static unsigned mprotect_guards;

int weft__stack_class(size_t size)
{
    if (size < WEFT_STACK_MIN)
        return -EINVAL;
    if (size > WEFT_STACK_MAX)
        return -E2BIG;
    if (size <= WEFT_STACK_MIN)
        return 0;
    /* Smallest cls with WEFT_STACK_MIN << cls >= size. */
    return 64 - __builtin_clzll((unsigned long long)((size - 1) / WEFT_STACK_MIN));
}

size_t weft__stack_class_size(int cls)
{
    return WEFT_STACK_MIN << cls;
}

static enum guard_mode pick_guard_mode(void)
{
    const char *env = getenv("WEFT_GUARD");
    if (env && strcmp(env, "mprotect") == 0)
        return GUARD_MPROTECT;
    if (env && strcmp(env, "none") == 0)
        return GUARD_NONE;
    return GUARD_INSTALL; /* guard() falls back at its first failure */
}

const char *weft__stack_guard_kind(void)
{
    switch (guard_mode) {
    case GUARD_INSTALL: return "guard-install";
    case GUARD_MPROTECT: return "mprotect";
    case GUARD_NONE: return "none";
    default: return "unknown";
    }
}

static void guard(char *lo)
{
    if (guard_mode == GUARD_INSTALL) {
        if (madvise(lo, WEFT__PAGE, MADV_GUARD_INSTALL) == 0)
            return;
        guard_mode = GUARD_MPROTECT;
    }
    if (guard_mode == GUARD_MPROTECT && mprotect_guards < GUARD_MPROTECT_BUDGET &&
        mprotect(lo, WEFT__PAGE, PROT_NONE) == 0)
        mprotect_guards++;
}

/* Maps a new slab for cls. Returns 0, or -ENOMEM with nothing taken (no
 * memory from the hook, or no mapping). Called with pool_lock held. */
static int add_slab(int cls)
{
    struct class_pool *pool = &pools[cls];
    size_t size = weft__stack_class_size(cls);
    size_t len = size > SLAB_MIN ? size : SLAB_MIN;
    uint32_t n = (uint32_t)(len / size);

    void **grown = weft__alloc((pool->capacity + n) * sizeof(void *));
    struct slab *s = weft__calloc(sizeof *s + n * sizeof(unsigned));
    if (!grown || !s)
        goto fail_alloc;
    char *base = weft__fault_mmap(NULL, len, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED)
        goto fail_alloc;
    madvise(base, len, MADV_NOHUGEPAGE); /* a huge page would commit 2 MiB per stack */

    if (guard_mode == GUARD_UNKNOWN)
        guard_mode = pick_guard_mode();
    for (uint32_t i = 0; i < n; i++) {
        char *lo = base + (size_t)i * size;
        guard(lo);
#ifdef WEFT_HAVE_VALGRIND
        s->vg_ids[i] = VALGRIND_STACK_REGISTER(lo + WEFT__PAGE, lo + size);
#endif
    }
    if (pool->free) {
        memcpy(grown, pool->free, pool->nfree * sizeof(void *));
        weft__free(pool->free, pool->capacity * sizeof(void *));
    }
    pool->free = grown;
    pool->capacity += n;
    s->base = base;
    s->len = len;
    s->nstacks = n;
    s->next = slabs;
    slabs = s;
    pool->carve_next = base;
    pool->carve_end = base + len;
    return 0;

fail_alloc:
    weft__free(grown, (pool->capacity + n) * sizeof(void *));
    weft__free(s, s ? sizeof *s + n * sizeof(unsigned) : 0);
    return -ENOMEM;
}

/* Takes up to want stacks of cls into out[]. Called with pool_lock held. */
static uint32_t take(int cls, void **out, uint32_t want)
{
    struct class_pool *pool = &pools[cls];
    size_t size = weft__stack_class_size(cls);
    uint32_t got = 0;
    while (got < want && pool->nfree > 0)
        out[got++] = pool->free[--pool->nfree];
    while (got < want) {
        if (pool->carve_next == pool->carve_end && add_slab(cls) != 0)
            break;
        out[got++] = pool->carve_next;
        pool->carve_next += size;
        pool->carved++;
    }
    return got;
}

/* Returns stacks to the global pool. Called with pool_lock held. */
static void give(int cls, void *const *lo, uint32_t n)
{
    struct class_pool *pool = &pools[cls];
    size_t size = weft__stack_class_size(cls);
    for (uint32_t i = 0; i < n; i++) {
        if (pool->nfree >= POOL_RETAIN) /* keep the guard page: skip it */
            madvise((char *)lo[i] + WEFT__PAGE, size - WEFT__PAGE, MADV_DONTNEED);
        weft__assert(pool->nfree < pool->capacity);
        pool->free[pool->nfree++] = lo[i];
    }
}

/* Slow paths of weft__stack_get/put: through the global pool. */
__attribute__((noinline)) static void *get_slow(struct weft__stack_cache *cache, int cls)
{
    void *lo = NULL;
    pthread_mutex_lock(&pool_lock);
    if (cache) {
        uint32_t got = take(cls, cache->lo[cls], CACHE_BATCH);
        if (got > 0)
            lo = cache->lo[cls][--got];
        cache->count[cls] = got;
    } else {
        take(cls, &lo, 1);
    }
    pthread_mutex_unlock(&pool_lock);
    return lo;
}

__attribute__((noinline)) static void put_slow(struct weft__stack_cache *cache, int cls, void *lo)
{
    pthread_mutex_lock(&pool_lock);
    if (cache) {
        cache->count[cls] -= CACHE_BATCH;
        give(cls, &cache->lo[cls][cache->count[cls]], CACHE_BATCH);
        cache->lo[cls][cache->count[cls]++] = lo;
    } else {
        give(cls, &lo, 1);
    }
    pthread_mutex_unlock(&pool_lock);
}

void *weft__stack_get(struct weft__stack_cache *cache, int cls)
{
    if (weft__likely(cache && cache->count[cls] > 0))
        return cache->lo[cls][--cache->count[cls]];
    return get_slow(cache, cls);
}

void weft__stack_put(struct weft__stack_cache *cache, int cls, void *lo)
{
    if (weft__likely(cache && cache->count[cls] < WEFT__STACK_CACHE))
        cache->lo[cls][cache->count[cls]++] = lo;
    else
        put_slow(cache, cls, lo);
}

void weft__stack_cache_flush(struct weft__stack_cache *cache)
{
    pthread_mutex_lock(&pool_lock);
    for (int cls = 0; cls < WEFT__STACK_CLASSES; cls++) {
        give(cls, cache->lo[cls], cache->count[cls]);
        cache->count[cls] = 0;
    }
    pthread_mutex_unlock(&pool_lock);
}

void weft__stack_pool_term(void)
{
    pthread_mutex_lock(&pool_lock);
    for (int cls = 0; cls < WEFT__STACK_CLASSES; cls++) {
        struct class_pool *pool = &pools[cls];
        weft__assert(pool->nfree == pool->carved);
        weft__free(pool->free, pool->capacity * sizeof(void *));
        memset(pool, 0, sizeof *pool);
    }
    while (slabs) {
        struct slab *s = slabs;
        slabs = s->next;
#ifdef WEFT_HAVE_VALGRIND
        for (uint32_t i = 0; i < s->nstacks; i++)
            VALGRIND_STACK_DEREGISTER(s->vg_ids[i]);
#endif
        weft__fault_munmap(s->base, s->len);
        weft__free(s, sizeof *s + s->nstacks * sizeof(unsigned));
    }
    mprotect_guards = 0;
    pthread_mutex_unlock(&pool_lock);
}
