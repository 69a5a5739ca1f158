/* handle.c: the generation-checked handle table behind pids (and, later,
 * every other weft handle).
 *
 * A handle is (generation << 32) | slot index. Each slot holds one atomic
 * word, (generation << 32) | (type << 24) | references, so that checking the
 * generation and taking a reference is one compare-and-swap: a stale or
 * forged handle is refused, also while another thread frees the slot. A slot
 * with 0 references is free, whatever its generation; the last release bumps
 * the generation and frees the slot, and the caller then destroys the object.
 *
 * Generations: the top 8 bits count runtime starts (the table is rebuilt at
 * each start, so pids of an earlier runtime stay stale), the low 24 bits count
 * reuses of the slot; a pid aliases a new one only after 2^24 reuses of its
 * slot within one run.
 *
 * Slots live in chunks that are never moved, found through a directory, so
 * that a lookup takes no lock. Chunks are mapped with mmap and never unmapped:
 * a lookup racing with weft_stop from another thread reads a zeroed slot (no
 * references: the pid is refused), never freed memory. Stopping returns their
 * pages (MADV_DONTNEED); the next start reuses them. Free slot indices are
 * cached per worker.
 */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "fault.h"
#include "internal.h"

enum {
    CHUNK_BITS = WEFT__HANDLE_CHUNK_BITS,
    CHUNK_SLOTS = 1 << CHUNK_BITS,
    DIR_SIZE = WEFT__HANDLE_DIR_SIZE, /* up to 2^28 slots */
    REFS_MASK = WEFT__HANDLE_REFS_MASK,
    TYPE_SHIFT = WEFT__HANDLE_TYPE_SHIFT,
    BATCH = 32
};

#define slot weft__handle_slot

/* The directory of chunks: read without locks (weft__handle_peek). */
_Atomic(struct slot *) weft__handle_dir[DIR_SIZE];

static struct {
    pthread_mutex_t lock;
    uint32_t nchunks;        /* chunks in use by this runtime */
    uint32_t mapped;         /* chunks ever mapped: dir[0..mapped) */
    uint32_t free_head;      /* 0: empty (slot 0 is never used) */
    uint32_t epoch;          /* runtime starts, mod 256 */
} table = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct slot *slot_at(uint32_t index)
{
    return weft__handle_slot_at(index);
}

/* Adds a chunk of free slots, mapping it unless an earlier runtime did.
 * Returns 0, or -ENOMEM with the table unchanged. Called with table.lock
 * held. */
static int add_chunk(void)
{
    if (table.nchunks == DIR_SIZE)
        return -ENOMEM;
    struct slot *chunk = atomic_load_explicit(&weft__handle_dir[table.nchunks], memory_order_relaxed);
    if (!chunk) {
        chunk = weft__fault_mmap(NULL, CHUNK_SLOTS * sizeof *chunk, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (chunk == MAP_FAILED)
            return -ENOMEM;
        table.mapped++;
    }
    uint32_t base = table.nchunks << CHUNK_BITS;
    uint64_t gen = (uint64_t)table.epoch << 24 | 1;
    /* Link the new slots in index order, skipping slot 0. */
    for (uint32_t i = CHUNK_SLOTS; i-- > 0;) {
        if (base + i == 0)
            continue;
        atomic_store_explicit(&chunk[i].state, gen << 32, memory_order_relaxed);
        atomic_store_explicit(&chunk[i].wrapped, 0, memory_order_relaxed);
        chunk[i].next_free = table.free_head;
        table.free_head = base + i;
    }
    atomic_store_explicit(&weft__handle_dir[table.nchunks++], chunk, memory_order_release);
    return 0;
}

/* Moves up to n free indices into out[]. Called with table.lock held. */
static uint32_t take_free(uint32_t *out, uint32_t n)
{
    uint32_t got = 0;
    while (got < n) {
        if (table.free_head == 0 && add_chunk() != 0)
            break;
        uint32_t i = table.free_head;
        table.free_head = slot_at(i)->next_free;
        out[got++] = i;
    }
    return got;
}

static void give_free(const uint32_t *in, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        slot_at(in[k])->next_free = table.free_head;
        table.free_head = in[k];
    }
}

/* Slow path of weft__handle_alloc: refills the cache (or serves an outside
 * thread) from the global free list. Returns a free index, or 0. */
__attribute__((noinline)) static uint32_t alloc_slow(struct weft__handle_cache *cache)
{
    uint32_t index = 0;
    pthread_mutex_lock(&table.lock);
    uint32_t got = cache ? take_free(cache->index, BATCH) : take_free(&index, 1);
    pthread_mutex_unlock(&table.lock);
    if (cache && got > 0) {
        cache->count = got - 1;
        index = cache->index[got - 1];
    }
    return index;
}

int weft__handle_alloc(struct weft__handle_cache *cache, void *obj, int type, uint32_t refs,
                       uint64_t *handle)
{
    uint32_t index;
    if (weft__likely(cache && cache->count > 0))
        index = cache->index[--cache->count];
    else if (!(index = alloc_slow(cache)))
        return -ENOMEM;
    struct slot *s = slot_at(index);
    uint64_t gen = atomic_load_explicit(&s->state, memory_order_relaxed) >> 32;
    /* The handle is written first (it may live in obj): whoever takes a
     * reference through the slot sees it. */
    *handle = gen << 32 | index;
    atomic_store_explicit(&s->obj, obj, memory_order_release);
    atomic_store_explicit(&s->state, gen << 32 | (uint64_t)type << TYPE_SHIFT | refs,
                          memory_order_release);
    return 0;
}

/* Takes a reference unless the count has reached limit: returns the object,
 * or NULL with *err = -EBADF (no such live handle) or -EOVERFLOW. */
static void *acquire_below(uint64_t handle, int type, uint64_t limit, int *err)
{
    *err = -EBADF;
    struct slot *s = slot_at((uint32_t)handle);
    if (!s || (uint32_t)handle == 0)
        return NULL;
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    for (;;) {
        if (st >> 32 != handle >> 32 || (st & REFS_MASK) == 0 ||
            (int)((st >> TYPE_SHIFT) & 0xFF) != type)
            return NULL;
        if ((st & REFS_MASK) >= limit) {
            *err = -EOVERFLOW;
            return NULL;
        }
        if (atomic_compare_exchange_weak_explicit(&s->state, &st, st + 1, memory_order_acquire,
                                                  memory_order_acquire))
            return atomic_load_explicit(&s->obj, memory_order_relaxed);
    }
}

void *weft__handle_acquire_any(uint64_t handle, int type_a, int type_b, int *type)
{
    struct slot *s = slot_at((uint32_t)handle);
    if (!s || (uint32_t)handle == 0)
        return NULL;
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    for (;;) {
        int t = (int)((st >> TYPE_SHIFT) & 0xFF);
        if (st >> 32 != handle >> 32 || (st & REFS_MASK) == 0 || (t != type_a && t != type_b) ||
            (st & REFS_MASK) >= REFS_MASK)
            return NULL;
        if (atomic_compare_exchange_weak_explicit(&s->state, &st, st + 1, memory_order_acquire,
                                                  memory_order_acquire)) {
            *type = t;
            return atomic_load_explicit(&s->obj, memory_order_relaxed);
        }
    }
}

bool weft__handle_was_live(uint64_t handle)
{
    struct slot *s = slot_at((uint32_t)handle);
    if (!s || (uint32_t)handle == 0)
        return false;
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    uint64_t gen = st >> 32, hgen = handle >> 32;
    /* Same runtime (epoch), and an earlier use of the slot; or this use,
     * its last reference dropped but the next generation not stored yet
     * (weft__handle_release): only then is a type set with no reference. */
    if (hgen >> 24 != gen >> 24 || (hgen & 0xFFFFFF) == 0)
        return false;
    if (hgen == gen)
        return (st & REFS_MASK) == 0 && ((st >> TYPE_SHIFT) & 0xFF) != 0;
    /* Once the count has gone round, a later number may be an earlier use
     * too (and a forged "future" one is taken for stale). */
    return (hgen & 0xFFFFFF) < (gen & 0xFFFFFF) ||
           atomic_load_explicit(&s->wrapped, memory_order_relaxed);
}

void *weft__handle_acquire(uint64_t handle, int type)
{
    int err;
    return acquire_below(handle, type, REFS_MASK, &err);
}

int weft__handle_acquire_kept(uint64_t handle, int type)
{
    int err;
    return acquire_below(handle, type, WEFT__HANDLE_KEPT_MAX, &err) ? 0 : err;
}

void weft__handle_retain(uint64_t handle)
{
    uint64_t old = atomic_fetch_add_explicit(&slot_at((uint32_t)handle)->state, 1, memory_order_relaxed);
    weft__assert((old & REFS_MASK) != 0 && old >> 32 == handle >> 32);
}

/* Slow path of weft__handle_release: returns index to the global free list,
 * with half of a full cache. */
__attribute__((noinline)) static void release_slow(struct weft__handle_cache *cache, uint32_t index)
{
    pthread_mutex_lock(&table.lock);
    if (cache) {
        cache->count -= BATCH;
        give_free(&cache->index[cache->count], BATCH);
        cache->index[cache->count++] = index;
    } else {
        give_free(&index, 1);
    }
    pthread_mutex_unlock(&table.lock);
}

bool weft__handle_release(struct weft__handle_cache *cache, uint64_t handle, uint32_t n)
{
    uint32_t index = (uint32_t)handle;
    struct slot *s = slot_at(index);
    uint64_t old = atomic_fetch_sub_explicit(&s->state, n, memory_order_acq_rel);
    weft__assert(old >> 32 == handle >> 32 && (old & REFS_MASK) >= n);
    if ((old & REFS_MASK) != n)
        return false;
    /* Last reference: nobody can take a new one (references are 0), so the
     * slot is ours to recycle under a new generation (the low 24 bits count
     * reuses and skip 0; the top 8 keep the runtime's epoch). */
    uint64_t gen = old >> 32;
    uint64_t reuse = (gen + 1) & 0xFFFFFF;
    uint64_t next = (gen & ~(uint64_t)0xFFFFFF) | (reuse ? reuse : 1);
    if (weft__unlikely(!reuse))
        atomic_store_explicit(&s->wrapped, 1, memory_order_relaxed);
    atomic_store_explicit(&s->obj, NULL, memory_order_relaxed);
    atomic_store_explicit(&s->state, next << 32, memory_order_release);
    if (weft__likely(cache && cache->count < 64))
        cache->index[cache->count++] = index;
    else
        release_slow(cache, index);
    return true;
}

void weft__handle_foreach(int type, void (*fn)(void *obj, uint64_t handle, void *arg), void *arg)
{
    pthread_mutex_lock(&table.lock);
    uint32_t nslots = table.nchunks << CHUNK_BITS;
    pthread_mutex_unlock(&table.lock);
    for (uint32_t i = 1; i < nslots; i++) {
        struct slot *s = slot_at(i);
        uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        if ((st & REFS_MASK) == 0)
            continue;
        uint64_t h = (st >> 32) << 32 | i;
        void *obj = weft__handle_acquire(h, type);
        if (!obj)
            continue;
        fn(obj, h, arg);
    }
}

void weft__handle_cache_flush(struct weft__handle_cache *cache)
{
    pthread_mutex_lock(&table.lock);
    give_free(cache->index, cache->count);
    cache->count = 0;
    pthread_mutex_unlock(&table.lock);
}

int weft__handle_table_init(void)
{
    table.epoch = (table.epoch + 1) & 0xFF;
    return 0;
}

void weft__handle_table_term(void)
{
    pthread_mutex_lock(&table.lock);
    for (uint32_t c = 0; c < table.mapped; c++)
        madvise(atomic_load(&weft__handle_dir[c]), CHUNK_SLOTS * sizeof(struct slot), MADV_DONTNEED);
    table.nchunks = 0;
    table.free_head = 0;
    pthread_mutex_unlock(&table.lock);
}
