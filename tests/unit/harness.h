/* harness.h - a minimal unit-test harness: TEST() functions, CHECK() assertions.
 *
 * Each test file defines TEST functions and a main() that calls RUN(test_name) for each;
 * the process prints "ok NAME" / "FAIL NAME: reason" lines and "# N passed, M failed",
 * and exits non-zero if any failed. tests/run.sh adds up the lines of every binary. */
#ifndef HARNESS_H
#define HARNESS_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int harness_failed_checks;
static int harness_tests_passed, harness_tests_failed;

/* Prints a failed check's message (format strings get a leading space so that an empty one is
 * still a valid format). */
static inline void __attribute__((format(printf, 1, 2))) harness_note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

#define CHECK(cond, ...)                                                               \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            harness_failed_checks++;                                                   \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed:", __FILE__, __LINE__, #cond);  \
            harness_note(" " __VA_ARGS__);                                             \
        }                                                                              \
    } while (0)

/* |a - b| <= tol */
#define CHECK_NEAR(a, b, tol, ...)                                                              \
    do {                                                                                        \
        double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol);                          \
        CHECK(fabs(a_ - b_) <= t_, __VA_ARGS__);                                                \
        if (!(fabs(a_ - b_) <= t_)) fprintf(stderr, "    %.9g vs %.9g (tol %.3g)\n", a_, b_, t_); \
    } while (0)

#define RUN(fn)                                                    \
    do {                                                           \
        int before_ = harness_failed_checks;                       \
        fn();                                                      \
        if (harness_failed_checks == before_) {                    \
            harness_tests_passed++;                                \
            printf("ok %s\n", #fn);                                \
        } else {                                                   \
            harness_tests_failed++;                                \
            printf("FAIL %s\n", #fn);                              \
        }                                                          \
        fflush(stdout);                                            \
    } while (0)

#define HARNESS_END()                                                                      \
    do {                                                                                   \
        printf("# %d passed, %d failed\n", harness_tests_passed, harness_tests_failed);    \
        return harness_tests_failed ? 1 : 0;                                               \
    } while (0)

/* Path of ../shared (the CI clone has a copy beside it); override with GEMMA2_SHARED. */
static inline const char *harness_shared_dir(void) {
    const char *s = getenv("GEMMA2_SHARED");
    return s ? s : "../shared";
}

#endif
