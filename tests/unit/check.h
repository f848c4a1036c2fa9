/* check.h - minimal assertions for the data plane unit tests: count
 * failures, report them with file:line, exit 1 at the end if any. */
#ifndef XBD_TEST_CHECK_H
#define XBD_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One count per test program, shared by all of its files (the rig's
 * helpers in rig.c check too): a weak definition in every file that
 * includes this header, which the linker merges into one. */
__attribute__((weak)) int check_failures;

/* The _AT forms report the given place: helpers pass their caller's. */
#define CHECK_AT(file, line, cond) do {                                   \
    if (!(cond)) {                                                        \
        fprintf(stderr, "%s:%d: CHECK failed: %s\n", (file), (line),      \
                #cond);                                                   \
        check_failures++;                                                 \
    }                                                                     \
} while (0)

#define CHECK_EQ_AT(file, line, a, b) do {                                \
    long long a_ = (long long)(a), b_ = (long long)(b);                   \
    if (a_ != b_) {                                                       \
        fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", \
                (file), (line), #a, #b, a_, b_);                          \
        check_failures++;                                                 \
    }                                                                     \
} while (0)

#define CHECK(cond) CHECK_AT(__FILE__, __LINE__, cond)
#define CHECK_EQ(a, b) CHECK_EQ_AT(__FILE__, __LINE__, a, b)

static inline int check_result(const char *name)
{
    if (check_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

/* How many lines of f (a captured log) contain needle. */
static inline unsigned count_lines(FILE *f, const char *needle)
{
    char line[512];
    unsigned n = 0;

    rewind(f);
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle))
            n++;
    return n;
}

#endif
