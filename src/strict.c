/* strict.c: misuse reporting. In release use a misuse is an error code; with
 * WEFT_STRICT=1 in the environment it aborts with a message and a backtrace. */
#include <execinfo.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static void print_backtrace(void)
{
    void *frames[64];
    int n = backtrace(frames, 64);
    backtrace_symbols_fd(frames, n, STDERR_FILENO);
}

static bool strict_mode(void)
{
    /* -1 unknown, 0 off, 1 on; the environment is read once. */
    static atomic_int mode = -1;
    int m = atomic_load_explicit(&mode, memory_order_relaxed);
    if (m < 0) {
        const char *v = getenv("WEFT_STRICT");
        m = v && v[0] && strcmp(v, "0") != 0;
        atomic_store_explicit(&mode, m, memory_order_relaxed);
    }
    return m;
}

int weft__misuse(int err, const char *fmt, ...)
{
    if (!strict_mode())
        return err;
    va_list ap;
    va_start(ap, fmt);
    fputs("weft: misuse: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (%s)\n", weft_strerror(err));
    va_end(ap);
    print_backtrace();
    abort();
}

void weft__panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("weft: internal error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (atomic_load(&weft__det_on))
        weft__det_print_seed();
    print_backtrace();
    abort();
}
