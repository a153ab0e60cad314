/*
 * rv_test.h: the minimal test harness every test executable uses.
 *
 * A test file defines `static void test_x(void)` functions and a main() that runs them with
 * RV_RUN(test_x) and returns rv_test_finish(). CHECK macros record a failure with file and line
 * and carry on; REQUIRE macros also leave the test function. The exit status is non-zero when
 * any check failed, which is what ctest reads.
 */
#ifndef RV_TEST_H
#define RV_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rv_test_failures;
static int rv_test_checks;
static const char *rv_test_current = "";

#define RV_FAIL_AT(file, line, ...)                                                   \
    do {                                                                              \
        rv_test_failures++;                                                           \
        fprintf(stderr, "%s:%d: [%s] ", file, line, rv_test_current);                 \
        fprintf(stderr, __VA_ARGS__);                                                 \
        fputc('\n', stderr);                                                          \
    } while (0)

#define CHECK(cond)                                                                   \
    do {                                                                              \
        rv_test_checks++;                                                             \
        if (!(cond)) {                                                                \
            RV_FAIL_AT(__FILE__, __LINE__, "check failed: %s", #cond);                \
        }                                                                             \
    } while (0)

#define CHECK_MSG(cond, ...)                                                          \
    do {                                                                              \
        rv_test_checks++;                                                             \
        if (!(cond)) {                                                                \
            RV_FAIL_AT(__FILE__, __LINE__, __VA_ARGS__);                              \
        }                                                                             \
    } while (0)

#define CHECK_INT(a, b)                                                               \
    do {                                                                              \
        long long rv_a_ = (long long)(a), rv_b_ = (long long)(b);                     \
        rv_test_checks++;                                                             \
        if (rv_a_ != rv_b_) {                                                         \
            RV_FAIL_AT(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, rv_a_,   \
                       rv_b_);                                                        \
        }                                                                             \
    } while (0)

#define CHECK_STR(a, b)                                                               \
    do {                                                                              \
        const char *rv_a_ = (a), *rv_b_ = (b);                                        \
        rv_test_checks++;                                                             \
        if (!rv_a_ || !rv_b_ || strcmp(rv_a_, rv_b_) != 0) {                          \
            RV_FAIL_AT(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b,      \
                       rv_a_ ? rv_a_ : "(null)", rv_b_ ? rv_b_ : "(null)");           \
        }                                                                             \
    } while (0)

/* Like CHECK, but leaves the current test function when the condition fails. */
#define REQUIRE(cond)                                                                 \
    do {                                                                              \
        rv_test_checks++;                                                             \
        if (!(cond)) {                                                                \
            RV_FAIL_AT(__FILE__, __LINE__, "requirement failed: %s", #cond);          \
            return;                                                                   \
        }                                                                             \
    } while (0)

#define RV_RUN(fn)                                                                    \
    do {                                                                              \
        int rv_before_ = rv_test_failures;                                            \
        rv_test_current = #fn;                                                        \
        fn();                                                                         \
        fprintf(stderr, "%-4s %s\n", rv_test_failures == rv_before_ ? "ok" : "FAIL", #fn); \
    } while (0)

static inline int rv_test_finish(void) {
    fprintf(stderr, "%d checks, %d failed\n", rv_test_checks, rv_test_failures);
    return rv_test_failures == 0 ? 0 : 1;
}

#endif
