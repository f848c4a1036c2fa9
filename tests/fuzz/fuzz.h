/*
 * fuzz.h - what every harness under tests/fuzz shares.
 *
 * Each harness defines LLVMFuzzerTestOneInput.  Built with clang
 * -fsanitize=fuzzer (tests/fuzz/run.sh, make fuzz) libFuzzer drives it;
 * built by plain make check, tests/fuzz/driver.c replays the seed corpus
 * and the regression inputs through it with the normal compiler.
 *
 * Harnesses check properties with xbd_fuzz_assert(), which aborts (a
 * crash libFuzzer reports with its input) whatever NDEBUG says.
 */
#ifndef XENBLKD_FUZZ_H
#define XENBLKD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define xbd_fuzz_assert(c) do {                                              \
    if (!(c)) {                                                               \
        fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #c); \
        abort();                                                              \
    }                                                                         \
} while (0)

/* A cursor over the fuzzer's input: reads past the end give zeros. */
struct xbd_fuzz_in {
    const uint8_t *p;
    size_t left;
};

static inline uint64_t xbd_fuzz_take(struct xbd_fuzz_in *in, unsigned bytes)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < bytes; i++) {
        uint64_t b = 0;

        if (in->left) {
            b = *in->p++;
            in->left--;
        }
        v |= b << (8 * i);
    }
    return v;
}

#endif
