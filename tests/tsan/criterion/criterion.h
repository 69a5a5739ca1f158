/* criterion.h: the subset of Criterion's API that weft's tests use, for the
 * TSan build only.
 *
 * Criterion 2.4 cannot start under ThreadSanitizer: its BoxFort arena needs
 * fixed address ranges that TSan reserves (Snaipe/Criterion#274, open). The
 * release and ASan builds use the real Criterion; the TSan build compiles the
 * same test files against this header and runner.c, which keep Criterion's
 * contract where the tests rely on it: each test case runs in its own
 * process under a timeout, .signal names an expected fatal signal, an
 * assertion prints where and why, then fails the case.
 */
#ifndef WEFT_TSAN_CRITERION_H
#define WEFT_TSAN_CRITERION_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct criterion_test_params {
    double timeout;          /* seconds; 0: the runner's default */
    int signal;              /* expected terminating signal, or 0 */
    int exit_code;           /* accepted for compatibility, unused */
    const char *description; /* idem */
    int disabled;            /* nonzero: not run */
};

void criterion_register(const char *suite, const char *name, void (*fn)(void),
                        struct criterion_test_params params);
_Noreturn void criterion_fail(const char *file, int line, const char *expr, const char *fmt, ...);
_Noreturn void criterion_skip(const char *fmt, ...);

#define Test(suite, name, ...)                                                              \
    static void suite##_##name(void);                                                       \
    __attribute__((constructor)) static void suite##_##name##_register(void)                \
    {                                                                                       \
        struct criterion_test_params params_ = {__VA_ARGS__};                               \
        criterion_register(#suite, #name, suite##_##name, params_);                         \
    }                                                                                       \
    static void suite##_##name(void)

/* The message arguments are optional; when given, the first is a literal. */
#define cr_assert(cond, ...)                                                                \
    do {                                                                                    \
        if (!(cond))                                                                        \
            criterion_fail(__FILE__, __LINE__, #cond, "" __VA_ARGS__);                      \
    } while (0)
#define cr_assert_not(cond, ...) cr_assert(!(cond), __VA_ARGS__)
#define cr_assert_fail(...) criterion_fail(__FILE__, __LINE__, "fail", "" __VA_ARGS__)
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b), __VA_ARGS__)
#define cr_assert_neq(a, b, ...) cr_assert((a) != (b), __VA_ARGS__)
#define cr_assert_lt(a, b, ...) cr_assert((a) < (b), __VA_ARGS__)
#define cr_assert_leq(a, b, ...) cr_assert((a) <= (b), __VA_ARGS__)
#define cr_assert_gt(a, b, ...) cr_assert((a) > (b), __VA_ARGS__)
#define cr_assert_geq(a, b, ...) cr_assert((a) >= (b), __VA_ARGS__)
#define cr_assert_null(p, ...) cr_assert((p) == NULL, __VA_ARGS__)
#define cr_assert_not_null(p, ...) cr_assert((p) != NULL, __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) cr_assert(strcmp((a), (b)) == 0, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...) cr_assert(strcmp((a), (b)) != 0, __VA_ARGS__)
#define cr_log_info(...) (fprintf(stderr, "[info] " __VA_ARGS__), fputc('\n', stderr))
#define cr_skip_test(...) criterion_skip("" __VA_ARGS__)

#endif
