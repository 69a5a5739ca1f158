/* clock.c: the one clock of weft. Deadlines are absolute values of it. */
#include <time.h>

#include "internal.h"

int64_t weft_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
