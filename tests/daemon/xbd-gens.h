/*
 * xbd-gens.h - "which generations may this sector hold", shared by the
 * issue-3 helpers xbd-pattern and xbd-fe.  A list of generations of the
 * reference frontend's pattern (0 = zeros), or "any": the sector holds
 * zeros or the intact pattern of ITSELF at some generation - what is left
 * after a disconnect with random writes in flight, where the generation
 * is unknown but a torn, misplaced or garbage sector is still an error.
 */
#ifndef XBD_GENS_H
#define XBD_GENS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkfront.h"

#define XBD_MAX_GENS 8

struct xbd_gens {
    bool any;
    unsigned n;
    uint32_t g[XBD_MAX_GENS];
};

/* Parse "any" or "G[,G...]"; 0 or -1. */
static inline int xbd_gens_parse(struct xbd_gens *gs, const char *s)
{
    memset(gs, 0, sizeof(*gs));
    if (!strcmp(s, "any")) {
        gs->any = true;
        return 0;
    }
    while (*s) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || gs->n == XBD_MAX_GENS || v > UINT32_MAX)
            return -1;
        gs->g[gs->n++] = (uint32_t)v;
        if (*end == ',')
            end++;
        else if (*end)
            return -1;
        s = end;
    }
    return gs->n ? 0 : -1;
}

/* Index of the generation buf holds (for "any": 0 for zeros, 1 for a
 * pattern), or -1 with the reason in why. */
static inline int xbd_gens_match(const struct xbd_gens *gs, const uint8_t *buf, uint64_t sector,
                                 char *why, size_t len)
{
    if (gs->any) {
        uint64_t w1;
        memcpy(&w1, buf + 8, sizeof(w1));
        if (bf_pattern_check(buf, sector, 0, why, len) == 0)
            return 0;
        /* The second word names the generation; the check then proves
         * the whole sector is that generation's data of this sector. */
        return bf_pattern_check(buf, sector, (uint32_t)w1, why, len) == 0 ? 1 : -1;
    }
    for (unsigned i = 0; i < gs->n; i++)
        if (bf_pattern_check(buf, sector, gs->g[i], why, len) == 0)
            return (int)i;
    return -1;
}

#endif
