/* runq.c: a worker's run queue, a bounded ring that other workers steal from.
 *
 * Only the owner writes tail (plain release stores, no read-modify-write).
 * Items leave at head, by the owner (pop) or a thief (steal), each claiming
 * them with one compare-and-swap on head. A slot is read before the CAS that
 * claims it; the CAS fails if the owner could have reused the slot meanwhile,
 * because the owner only writes slots behind head + SIZE, or in front of
 * head (push_front). Slots are atomics with relaxed order for that reason
 * (the racing read is discarded).
 *
 * head is (tag << 32) | index. push_front moves the index back, which
 * would let a thief's stale snapshot match again (ABA); it bumps the tag, so
 * that such a compare-and-swap fails.
 */
#include "internal.h"

#define SIZE WEFT__RUNQ_SIZE

void weft__runq_init(struct weft__runq *q)
{
    atomic_init(&q->head, (uint64_t)0);
    atomic_init(&q->tail, 0);
    for (int i = 0; i < SIZE; i++)
        atomic_init(&q->slot[i], NULL);
}

#define INDEX(head) ((uint32_t)(head))
#define ADVANCE(head, n) (((head) & ~(uint64_t)UINT32_MAX) | (uint32_t)(INDEX(head) + (n)))

uint32_t weft__runq_len(struct weft__runq *q)
{
    uint32_t h = INDEX(atomic_load_explicit(&q->head, memory_order_acquire));
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
    return t - h;
}

bool weft__runq_push(struct weft__runq *q, struct weft__proc *p)
{
    uint32_t h = INDEX(atomic_load_explicit(&q->head, memory_order_acquire));
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (t - h >= SIZE)
        return false;
    atomic_store_explicit(&q->slot[t % SIZE], p, memory_order_relaxed);
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return true;
}

bool weft__runq_push_front(struct weft__runq *q, struct weft__proc *p)
{
    uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    for (;;) {
        if (t - INDEX(h) >= SIZE)
            return false;
        uint32_t front = INDEX(h) - 1;
        atomic_store_explicit(&q->slot[front % SIZE], p, memory_order_relaxed);
        uint64_t tagged = ((h >> 32) + 1) << 32 | front;
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, tagged, memory_order_release,
                                                  memory_order_acquire))
            return true;
    }
}

struct weft__proc *weft__runq_pop(struct weft__runq *q)
{
    uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    for (;;) {
        uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (t == INDEX(h))
            return NULL;
        struct weft__proc *p = atomic_load_explicit(&q->slot[INDEX(h) % SIZE], memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, ADVANCE(h, 1), memory_order_acq_rel,
                                                  memory_order_acquire))
            return p;
    }
}

uint32_t weft__runq_spill(struct weft__runq *q, struct weft__proc *p, struct weft__proc **batch)
{
    uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint32_t n = (t - INDEX(h)) / 2;
    if (n == 0 || t - INDEX(h) < SIZE)
        return 0; /* not full after all: a thief made room */
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&q->slot[(INDEX(h) + i) % SIZE], memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&q->head, &h, ADVANCE(h, n), memory_order_acq_rel,
                                                 memory_order_acquire))
        return 0; /* thieves took some: the caller retries the push */
    batch[n] = p;
    return n + 1;
}

struct weft__proc *weft__runq_steal(struct weft__runq *q, struct weft__runq *victim)
{
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    for (;;) {
        uint64_t h = atomic_load_explicit(&victim->head, memory_order_acquire);
        uint32_t vt = atomic_load_explicit(&victim->tail, memory_order_acquire);
        uint32_t n = vt - INDEX(h);
        n -= n / 2;
        if (n == 0)
            return NULL;
        if (n > SIZE / 2) /* inconsistent snapshot: head moved past our tail read */
            continue;
        for (uint32_t i = 0; i < n; i++) {
            struct weft__proc *p =
                atomic_load_explicit(&victim->slot[(INDEX(h) + i) % SIZE], memory_order_relaxed);
            atomic_store_explicit(&q->slot[(t + i) % SIZE], p, memory_order_relaxed);
        }
        if (!atomic_compare_exchange_weak_explicit(&victim->head, &h, ADVANCE(h, n), memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        /* Run the last one stolen; publish the others in our own queue. */
        n--;
        struct weft__proc *run = atomic_load_explicit(&q->slot[(t + n) % SIZE], memory_order_relaxed);
        if (n > 0)
            atomic_store_explicit(&q->tail, t + n, memory_order_release);
        return run;
    }
}
