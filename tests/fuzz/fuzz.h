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

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

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

/* The client of a harness that talks to the daemon over a socketpair
 * (fuzz-control, fuzz-nbd): send the next chunk of buf[0..len) (at most
 * chunk bytes) on sock; once all is sent, or the daemon hung up, shut
 * the writing side (*closed).  True when bytes went out. */
static inline bool xbd_fuzz_send_chunk(int sock, const uint8_t *buf, size_t len, size_t chunk,
                                       size_t *sent, bool *closed)
{
    size_t n = len - *sent < chunk ? len - *sent : chunk;
    ssize_t w = n ? send(sock, buf + *sent, n, MSG_NOSIGNAL) : 0;

    if (w > 0)
        *sent += (size_t)w;
    else if (w < 0 && errno != EAGAIN)
        *sent = len;            /* the daemon hung up */
    if (*sent == len) {
        shutdown(sock, SHUT_WR);
        *closed = true;
    }
    return w > 0;
}

#endif
