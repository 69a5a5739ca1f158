/* fuzz.c: the libFuzzer entry point: every input is a fuzz program
 * (program.h), run and checked by fz_run, which aborts on a violation so
 * that libFuzzer keeps the input. FUZZ_VERBOSE=1 (or 2) in the environment
 * prints every call's result (and the schedule's trace). */
#include <stdint.h>
#include <stdlib.h>

#include "program.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *v = getenv("FUZZ_VERBOSE");
    fz_verbose = v ? atoi(v) : 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_run(data, size);
    return 0;
}
