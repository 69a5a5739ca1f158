/* test-smoke.c: the runtime starts, runs a process, returns its result. */
#include "test.h"

static intptr_t answer(void *arg)
{
    return 42;
}

Test(smoke, run_returns_main_result, .timeout = 30)
{
    cr_assert_eq(test_run(1, answer, NULL), 42);
    cr_assert_eq(test_run(2, answer, NULL), 42);
}
