/* check.h - minimal assertions for the data plane unit tests: count
 * failures, report them with file:line, exit 1 at the end if any. */
#ifndef XBD_TEST_CHECK_H
#define XBD_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_failures;

#define CHECK(cond) do {                                                  \
    if (!(cond)) {                                                        \
        fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,  \
                #cond);                                                   \
        check_failures++;                                                 \
    }                                                                     \
} while (0)

#define CHECK_EQ(a, b) do {                                               \
    long long a_ = (long long)(a), b_ = (long long)(b);                   \
    if (a_ != b_) {                                                       \
        fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", \
                __FILE__, __LINE__, #a, #b, a_, b_);                      \
        check_failures++;                                                 \
    }                                                                     \
} while (0)

static inline int check_result(const char *name)
{
    if (check_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
