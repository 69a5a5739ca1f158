/* embedded.c: weft inside a program that keeps its own threads. The runtime
 * starts in the background; plain pthreads spawn processes and join them;
 * the runtime stops and starts again. */
#include <pthread.h>
#include <stdio.h>

#include "weft.h"

static intptr_t square_later(void *arg)
{
    intptr_t x = (intptr_t)arg;
    weft_sleep(weft_now() + 1000000); /* 1 ms: blocks the process, not a thread */
    return x * x;
}

static void *legacy_thread(void *arg)
{
    intptr_t base = (intptr_t)arg, sum = 0;
    weft_pid pids[100];
    for (intptr_t i = 0; i < 100; i++)
        if (weft_spawn(&pids[i], square_later, (void *)(base + i), NULL))
            return (void *)-1;
    for (int i = 0; i < 100; i++) {
        intptr_t r;
        if (weft_join(pids[i], &r, WEFT_FOREVER)) /* blocks this thread only */
            return (void *)-1;
        sum += r;
    }
    return (void *)sum;
}

int main(void)
{
    for (int round = 0; round < 2; round++) {
        int err = weft_start(NULL);
        if (err) {
            fprintf(stderr, "weft_start: %s\n", weft_strerror(err));
            return 1;
        }
        pthread_t threads[4];
        for (intptr_t t = 0; t < 4; t++)
            pthread_create(&threads[t], NULL, legacy_thread, (void *)(t * 100));
        long total = 0;
        for (int t = 0; t < 4; t++) {
            void *r;
            pthread_join(threads[t], &r);
            total += (long)(intptr_t)r;
        }
        err = weft_stop(WEFT_FOREVER);
        long expect = 0;
        for (long i = 0; i < 400; i++)
            expect += i * i;
        printf("round %d: 4 threads x 100 processes, sum %ld (expected %ld), stop: %s\n", round,
               total, expect, weft_strerror(err));
        if (total != expect || err)
            return 1;
    }
    return 0;
}
