/* sync.c: the two ways an OS thread waits inside weft: a spinlock for a few
 * instructions, and a futex for everything longer. */
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

enum { SPIN_BACKOFF_MAX = 1024 }; /* pause instructions between looks, at most */

/* Contended: back off exponentially, so that the waiting core stops pulling
 * the lock's line away from the holder, and the holder's core runs on with
 * it warm (a cross-core line transfer costs more here than many critical
 * sections). */
void weft__spin_lock_slow(weft__spinlock *l)
{
    unsigned pauses = 4;
    for (unsigned rounds = 0;; rounds++) {
        if (!atomic_load_explicit(&l->locked, memory_order_relaxed) &&
            !atomic_exchange_explicit(&l->locked, 1, memory_order_acquire))
            return;
        if (rounds < 64) {
            for (unsigned i = 0; i < pauses; i++)
                weft__cpu_relax();
            if (pauses < SPIN_BACKOFF_MAX)
                pauses *= 2;
        } else {
            sched_yield(); /* the holder was preempted: let it finish */
        }
    }
}

void weft__futex_wait(atomic_uint *word, unsigned expected, int64_t deadline)
{
    struct timespec ts, *tsp = NULL;
    if (deadline >= 0) {
        ts.tv_sec = deadline / 1000000000;
        ts.tv_nsec = deadline % 1000000000;
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
    syscall(SYS_futex, word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, tsp, NULL,
            FUTEX_BITSET_MATCH_ANY);
}

void weft__futex_wake(atomic_uint *word, int count)
{
    syscall(SYS_futex, word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, count, NULL, NULL, 0);
}
