/* fault.h: fault injection for the system calls weft cannot do without, so
 * that tests can make each of them fail in turn (tests/test-faults.c).
 *
 * Every call of a kind below goes through its wrapper. A kind can count its
 * calls and can be armed to fail the Nth call from now: that call only, or
 * (sticky) that call and every later one. An injected failure looks like a
 * real one: weft__fault_mmap returns MAP_FAILED with errno ENOMEM,
 * weft__fault_pthread_create returns EAGAIN, and the real call is not made.
 *
 * Cost when unused: the wrappers are inline; each loads one global
 * (weft__fault_active, 0 unless a test armed something) and takes one branch
 * that is predicted not taken, then makes the real call.
 *
 * Counters are global and atomic: calls from every thread count, in the
 * order they reach the wrapper. Arming and resetting are meant for a test
 * thread while no wrapped call runs (the runtime stopped, or its threads
 * known to be past their calls); a call racing with them sees the old
 * setting or the new one.
 *
 * This header stands alone (it does not include internal.h), so that a test
 * can include it to drive the injection.
 */
#ifndef WEFT_FAULT_H
#define WEFT_FAULT_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/types.h>

enum weft__fault_kind {
    WEFT__FAULT_MMAP,   /* mmap: stack slabs, handle table chunks, signal stacks */
    WEFT__FAULT_THREAD, /* pthread_create: worker threads, the dump thread */
    /* The poller's system calls (epoll_create1, epoll_ctl, ...) go here. */
    WEFT__FAULT_KINDS
};

/* A bit per kind that is counting or armed: 0 means every wrapper goes
 * straight to the real call. */
extern atomic_uint weft__fault_active;

/* Starts counting the calls of kind from 0. nth > 0 also arms it: the nth
 * call from now fails, and with sticky every call after it as well. nth 0
 * only counts. Replaces the kind's previous setting. */
void weft__fault_arm(enum weft__fault_kind kind, long nth, bool sticky);
/* Stops counting and injecting for kind; its counters stay readable. */
void weft__fault_disarm(enum weft__fault_kind kind);
/* Disarms every kind and zeroes every counter (weft__fault_mapped too). */
void weft__fault_reset(void);
/* Calls of kind counted since it was armed, failed ones included. */
long weft__fault_calls(enum weft__fault_kind kind);
/* Failures injected into kind since it was armed. */
long weft__fault_injected(enum weft__fault_kind kind);
/* An allocation failure the runtime absorbed because the operation it
 * served ended anyway (a wait whose timer could not be had, claimed by its
 * waker meanwhile): counted, so that a test that fails each allocation in
 * turn knows why no call reported one. */
void weft__fault_absorbed_note(void);
long weft__fault_absorbed(void);
/* Bytes mapped through weft__fault_mmap and not yet unmapped through
 * weft__fault_munmap, counted while WEFT__FAULT_MMAP is armed or counting
 * (a leak check for tests that count from before weft maps anything). */
long weft__fault_mapped(void);

/* The slow paths of the wrappers below. */
bool weft__fault_hit(enum weft__fault_kind kind);
void *weft__fault_mmap_slow(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int weft__fault_munmap_slow(void *addr, size_t len);

static inline bool weft__fault_on(void)
{
    return __builtin_expect(atomic_load_explicit(&weft__fault_active, memory_order_relaxed) != 0, 0);
}

/* mmap(2), or MAP_FAILED with errno ENOMEM when a failure is injected. */
static inline void *weft__fault_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (weft__fault_on())
        return weft__fault_mmap_slow(addr, len, prot, flags, fd, off);
    return mmap(addr, len, prot, flags, fd, off);
}

/* munmap(2); pairs with weft__fault_mmap for weft__fault_mapped. Never fails
 * by injection (unmapping is cleanup, which must not fail). */
static inline int weft__fault_munmap(void *addr, size_t len)
{
    if (weft__fault_on())
        return weft__fault_munmap_slow(addr, len);
    return munmap(addr, len);
}

/* pthread_create(3), or EAGAIN (no thread created, *thread untouched) when a
 * failure is injected. */
static inline int weft__fault_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                                             void *(*start)(void *), void *arg)
{
    if (weft__fault_on() && weft__fault_hit(WEFT__FAULT_THREAD))
        return EAGAIN;
    return pthread_create(thread, attr, start, arg);
}

#endif
