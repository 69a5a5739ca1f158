/* fault.c: the counters behind fault.h's wrappers.
 *
 * Per kind: calls counted since arming, the call number that fails (0:
 * none), whether every later call fails too, and the failures injected.
 * Each field is atomic on its own; a kind is read field by field, which is
 * enough for the contract of fault.h (arming happens while no wrapped call
 * runs).
 */
#include "fault.h"

atomic_uint weft__fault_active;

static struct kind_state {
    atomic_long calls;
    atomic_long fail_at;  /* the call (1-based) that fails; 0: none */
    atomic_bool sticky;   /* every call after fail_at fails too */
    atomic_long injected;
} kinds[WEFT__FAULT_KINDS];

/* Bytes mapped and not unmapped while mmap was counted. */
static atomic_long mapped;
static atomic_long absorbed; /* weft__fault_absorbed_note */

void weft__fault_arm(enum weft__fault_kind kind, long nth, bool sticky)
{
    struct kind_state *k = &kinds[kind];
    atomic_store(&k->calls, 0);
    atomic_store(&k->injected, 0);
    atomic_store(&k->fail_at, nth > 0 ? nth : 0);
    atomic_store(&k->sticky, sticky);
    atomic_fetch_or(&weft__fault_active, 1u << kind);
}

void weft__fault_disarm(enum weft__fault_kind kind)
{
    atomic_fetch_and(&weft__fault_active, ~(1u << kind));
    atomic_store(&kinds[kind].fail_at, 0);
}

void weft__fault_reset(void)
{
    atomic_store(&weft__fault_active, 0);
    for (int i = 0; i < WEFT__FAULT_KINDS; i++) {
        atomic_store(&kinds[i].calls, 0);
        atomic_store(&kinds[i].fail_at, 0);
        atomic_store(&kinds[i].sticky, false);
        atomic_store(&kinds[i].injected, 0);
    }
    atomic_store(&mapped, 0);
    atomic_store(&absorbed, 0);
}

long weft__fault_calls(enum weft__fault_kind kind)
{
    return atomic_load(&kinds[kind].calls);
}

long weft__fault_injected(enum weft__fault_kind kind)
{
    return atomic_load(&kinds[kind].injected);
}

void weft__fault_absorbed_note(void)
{
    atomic_fetch_add_explicit(&absorbed, 1, memory_order_relaxed);
}

long weft__fault_absorbed(void)
{
    return atomic_load(&absorbed);
}

long weft__fault_mapped(void)
{
    return atomic_load(&mapped);
}

static bool counting(enum weft__fault_kind kind)
{
    return atomic_load_explicit(&weft__fault_active, memory_order_relaxed) & (1u << kind);
}

bool weft__fault_hit(enum weft__fault_kind kind)
{
    if (!counting(kind))
        return false;
    struct kind_state *k = &kinds[kind];
    long n = atomic_fetch_add(&k->calls, 1) + 1;
    long at = atomic_load(&k->fail_at);
    if (at == 0 || n < at || (n > at && !atomic_load(&k->sticky)))
        return false;
    atomic_fetch_add(&k->injected, 1);
    return true;
}

void *weft__fault_mmap_slow(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (weft__fault_hit(WEFT__FAULT_MMAP)) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    void *p = mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && counting(WEFT__FAULT_MMAP))
        atomic_fetch_add(&mapped, (long)len);
    return p;
}

int weft__fault_munmap_slow(void *addr, size_t len)
{
    int r = munmap(addr, len);
    if (r == 0 && counting(WEFT__FAULT_MMAP))
        atomic_fetch_sub(&mapped, (long)len);
    return r;
}
