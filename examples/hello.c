/* hello.c: spawn processes, join them with their results. */
#include <stdio.h>

#include "weft.h"

static intptr_t greet(void *arg)
{
    intptr_t i = (intptr_t)arg;
    char name[WEFT_NAME_MAX];
    weft_proc_name(weft_self(), name, sizeof name);
    printf("hello from %s on worker %d\n", name, weft_worker_id());
    return i * i;
}

static intptr_t app(void *arg)
{
    (void)arg;
    weft_pid pids[4];
    for (intptr_t i = 0; i < 4; i++) {
        char name[WEFT_NAME_MAX];
        snprintf(name, sizeof name, "greeter-%ld", (long)i);
        weft_spawn_opts opts;
        weft_spawn_opts_init(&opts);
        opts.name = name;
        int err = weft_spawn(&pids[i], greet, (void *)i, &opts);
        if (err) {
            fprintf(stderr, "spawn: %s\n", weft_strerror(err));
            return 1;
        }
    }
    intptr_t sum = 0;
    for (int i = 0; i < 4; i++) {
        intptr_t r;
        weft_join(pids[i], &r, WEFT_FOREVER);
        sum += r;
    }
    printf("sum of squares: %ld\n", (long)sum);
    return sum == 0 + 1 + 4 + 9 ? 0 : 1;
}

int main(void)
{
    intptr_t status = 1;
    int err = weft_run(app, NULL, NULL, &status);
    if (err)
        fprintf(stderr, "weft_run: %s\n", weft_strerror(err));
    return err ? 1 : (int)status;
}
