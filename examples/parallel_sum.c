/* parallel_sum.c: split a computation over many processes; the scheduler
 * spreads them over every core. Checks the sum against the formula. */
#include <stdio.h>

#include "weft.h"

enum { PARTS = 64 };
static const long N = 200000000;

struct part {
    long from, to;
};

static intptr_t sum_part(void *arg)
{
    const struct part *p = arg;
    long s = 0;
    for (long i = p->from; i < p->to; i++)
        s += i % 7;
    return s;
}

static intptr_t app(void *arg)
{
    (void)arg;
    struct part parts[PARTS];
    weft_pid pids[PARTS];
    int64_t t0 = weft_now();
    for (int i = 0; i < PARTS; i++) {
        parts[i].from = N / PARTS * i;
        parts[i].to = i == PARTS - 1 ? N : N / PARTS * (i + 1);
        if (weft_spawn(&pids[i], sum_part, &parts[i], NULL))
            return 1;
    }
    long total = 0;
    for (int i = 0; i < PARTS; i++) {
        intptr_t r;
        weft_join(pids[i], &r, WEFT_FOREVER);
        total += r;
    }
    long expect = (N / 7) * 21;
    for (long i = N / 7 * 7; i < N; i++)
        expect += i % 7;
    printf("sum %ld (expected %ld) on %d workers in %.1f ms\n", total, expect, weft_workers(),
           (weft_now() - t0) / 1e6);
    return total == expect ? 0 : 1;
}

int main(void)
{
    intptr_t status = 1;
    return weft_run(app, NULL, NULL, &status) ? 1 : (int)status;
}
