/* clock.c: the one clock of weft. Deadlines are absolute values of it.
 * In deterministic mode it is the virtual clock of det.c; the runtime's own
 * waits on OS threads (futexes, weft_stop's passes) use the real one. */
#include <time.h>

#include "internal.h"

int64_t weft__clock_real(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t weft__real_deadline(int64_t deadline)
{
    if (deadline < 0 || !atomic_load_explicit(&weft__det_on, memory_order_relaxed))
        return deadline;
    int64_t left = deadline - weft_now();
    return weft__clock_real() + (left > 0 ? left : 0);
}

int64_t weft_now(void)
{
    if (weft__unlikely(atomic_load_explicit(&weft__det_on, memory_order_relaxed)))
        return weft__det_now();
    return weft__clock_real();
}
