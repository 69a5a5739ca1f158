/* timer.c: per-worker timer heaps.
 *
 * A timer is armed in the heap of the worker its process blocks on. The heap
 * is a 4-ary min-heap of (deadline, timer) under a spinlock: its owner adds and fires
 * timers, any thread may cancel one (a process resumed elsewhere cancels its
 * own deadline), and idle workers fire the due timers of busy ones. A timer's
 * fire callback runs with the heap locked, and a cancel always takes the lock
 * of the heap the timer was last armed in (home), so it waits for a fire in
 * progress: once weft__timer_cancel has returned the callback is not running
 * and the timer may be armed again or its memory reused. (The heap field only
 * says whether the timer is in the array; the firing worker clears it before
 * the callback, which may let the owner re-arm the timer elsewhere at once.)
 */
#include <string.h>

#include "internal.h"

#define NONE_WHEN INT64_MAX

void weft__timer_heap_init(struct weft__timer_heap *h)
{
    memset(h, 0, sizeof *h);
    atomic_init(&h->next_when, NONE_WHEN);
}

void weft__timer_heap_term(struct weft__timer_heap *h)
{
    weft__assert(h->count == 0);
    weft__free(h->items, h->capacity * sizeof *h->items);
    h->items = NULL;
    h->capacity = 0;
}

enum { ARITY = 4 }; /* half the depth of a binary heap; the keys of 4 children are 64 contiguous bytes */

static void place(struct weft__timer_heap *h, uint32_t i, struct weft__timer_slot slot)
{
    h->items[i] = slot;
    slot.timer->index = i;
}

static void sift_up(struct weft__timer_heap *h, uint32_t i)
{
    struct weft__timer_slot s = h->items[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / ARITY;
        if (h->items[parent].when <= s.when)
            break;
        place(h, i, h->items[parent]);
        i = parent;
    }
    place(h, i, s);
}

static void sift_down(struct weft__timer_heap *h, uint32_t i)
{
    struct weft__timer_slot s = h->items[i];
    for (;;) {
        uint32_t first = ARITY * i + 1;
        if (first >= h->count)
            break;
        uint32_t last = first + ARITY < h->count ? first + ARITY : h->count, child = first;
        for (uint32_t c = first + 1; c < last; c++)
            if (h->items[c].when < h->items[child].when)
                child = c;
        if (s.when <= h->items[child].when)
            break;
        place(h, i, h->items[child]);
        i = child;
    }
    place(h, i, s);
}

static void publish_next(struct weft__timer_heap *h)
{
    atomic_store_explicit(&h->next_when, h->count ? h->items[0].when : NONE_WHEN,
                          memory_order_release);
}

/* Removes the item at i from the array (its heap field is the caller's).
 * Called with the lock held. */
static void remove_at(struct weft__timer_heap *h, uint32_t i)
{
    h->count--;
    if (i != h->count) {
        place(h, i, h->items[h->count]);
        sift_down(h, i);
        sift_up(h, h->items[i].timer->index);
    }
}

int weft__timer_add(struct weft__timer_heap *h, struct weft__timer *t, int64_t when)
{
    weft__spin_lock(&h->lock);
    if (h->count == h->capacity) {
        uint32_t cap = h->capacity ? h->capacity * 2 : 64;
        struct weft__timer_slot *items = weft__alloc(cap * sizeof *items);
        if (!items) {
            weft__spin_unlock(&h->lock);
            return -ENOMEM;
        }
        if (h->count)
            memcpy(items, h->items, h->count * sizeof *items);
        weft__free(h->items, h->capacity * sizeof *items);
        h->items = items;
        h->capacity = cap;
    }
    t->when = when;
    t->home = h;
    atomic_store_explicit(&t->heap, h, memory_order_relaxed);
    place(h, h->count++, (struct weft__timer_slot){when, t});
    sift_up(h, t->index);
    publish_next(h);
    weft__spin_unlock(&h->lock);
    return 0;
}

void weft__timer_cancel(struct weft__timer *t)
{
    struct weft__timer_heap *h = t->home;
    if (!h)
        return;
    weft__spin_lock(&h->lock);
    if (atomic_load_explicit(&t->heap, memory_order_relaxed) == h) {
        remove_at(h, t->index);
        atomic_store_explicit(&t->heap, NULL, memory_order_relaxed);
        publish_next(h);
    }
    weft__spin_unlock(&h->lock);
}

int weft__timer_run(struct weft__timer_heap *h, int64_t now)
{
    if (weft__timer_next(h) > now)
        return 0;
    int fired = 0;
    weft__spin_lock(&h->lock);
    while (h->count > 0 && h->items[0].when <= now) {
        struct weft__timer *t = h->items[0].timer;
        remove_at(h, 0);
        atomic_store_explicit(&t->heap, NULL, memory_order_relaxed);
        t->fire(t);
        fired++;
    }
    publish_next(h);
    weft__spin_unlock(&h->lock);
    return fired;
}
