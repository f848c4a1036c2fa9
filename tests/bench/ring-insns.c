/*
 * ring-insns.c - the data plane's hot path, counted in instructions.
 *
 * A real xbd_ring (src/ring.c, request.c, grant_cache.c, journal.c) serves
 * an in-process simulated guest (tests/unit rig) whose I/O engine is
 * tests/hostile/fake-io.c in auto mode: every I/O is done with a plain
 * preadv/pwritev at the next loop iteration.  The guest puts <qd> 4 KiB
 * requests on the ring, notifies, and the event loop runs until all are
 * answered; only that part (ring read, copy, validation, dispatch, the
 * engine, completion, response, notification) is collected when run under
 * `valgrind --tool=callgrind --collect-atstart=no` (tests/bench/insns.sh),
 * so instructions per request compare between changes without timing
 * noise.  Outside valgrind it just runs (and checks every status).
 * With SEGS > 1 the requests are indirect, SEGS pages each (cycling over
 * the rig's data pages), their segment lists in pages of their own; a
 * MAXPG smaller than the pages in use makes the rest go by grant copy.
 *
 *   ring-insns [REQUESTS [QD [read|write [persistent|copy [SEGS [MAXPG]]]]]]
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fake-io.h"
#include "fe.h"
#include "rig.h"

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND 1
#endif
#endif
#ifndef HAVE_CALLGRIND
#define CALLGRIND_TOGGLE_COLLECT do { } while (0)
#endif

/* Request i of a batch: SEGS segments over data pages [0, ndata), its list
 * in page FE_NPAGES - 1 - i. */
static void put_request(struct fe *f, uint8_t op, unsigned i, uint64_t sector,
                        unsigned segs, unsigned ndata)
{
    struct blkif_request_segment *ind;
    unsigned ip = FE_NPAGES - 1 - i;

    if (segs <= 1) {
        fe_rw_page(f, op, i, sector, i);
        return;
    }
    ind = xsg_page(f->d, f->gfn[ip]);
    for (unsigned k = 0; k < segs; k++) {
        ind[k].gref = f->ref[(i * segs + k) % ndata];
        ind[k].first_sect = 0;
        ind[k].last_sect = 7;
    }
    fe_indirect(f, op, i, sector % (RIG_SECTORS - segs * 8u), (uint16_t)segs, &f->ref[ip], 1);
}

int main(int argc, char **argv)
{
    unsigned long total = argc > 1 ? strtoul(argv[1], NULL, 0) : 20000;
    unsigned qd = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 0) : 32;
    uint8_t op = argc > 3 && !strcmp(argv[3], "write") ? BLKIF_OP_WRITE : BLKIF_OP_READ;
    bool persistent = !(argc > 4 && !strcmp(argv[4], "copy"));
    unsigned segs = argc > 5 ? (unsigned)strtoul(argv[5], NULL, 0) : 1;
    unsigned maxpg = argc > 6 ? (unsigned)strtoul(argv[6], NULL, 0) : 0;
    unsigned long done = 0, batches = 0;
    uint64_t rng = 88172645463325252ull;
    struct fe f;
    struct be b;

    if (qd == 0 || qd > FE_NPAGES || total == 0 || segs == 0 || segs > 256 ||
        (segs > 1 && qd > FE_NPAGES / 2)) {
        fprintf(stderr, "usage: ring-insns [REQUESTS [QD (1..%d, indirect 1..%d) [read|write "
                "[persistent|copy [SEGS (1..256) [MAXPG]]]]]]\n", FE_NPAGES, FE_NPAGES / 2);
        return 2;
    }
    rig_init(argc, argv);
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 2, .persistent = persistent,
                .max_indirect = segs > 1 ? segs : 0, .max_pgrants = maxpg))
        return 1;
    fake_io_set_auto(b.io, true);
    /* One batch first, not counted: persistent grants get mapped. */
    for (long round = -1; done < total; round++) {
        unsigned n = qd;

        for (unsigned i = 0; i < n; i++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            put_request(&f, op, i, (rng % (RIG_SECTORS / 8)) * 8, segs, FE_NPAGES - qd);
        }
        fe_push(&f);
        if (round >= 0)
            CALLGRIND_TOGGLE_COLLECT;
        unsigned got = run_until_rsp(&b, &f, n, 10);
        if (round >= 0)
            CALLGRIND_TOGGLE_COLLECT;
        CHECK_EQ(got, n);
        for (unsigned i = 0; i < n; i++) {
            uint64_t id;
            uint8_t rop;
            int16_t st;

            CHECK(fe_pop(&f, &id, &rop, &st));
            CHECK_EQ(st, BLKIF_RSP_OKAY);
        }
        if (round >= 0) {
            done += n;
            batches++;
        }
    }
    printf("ring-insns: %lu %s requests of %u KiB (%s grants) in %lu batches of %u counted\n", done,
           op == BLKIF_OP_READ ? "read" : "write", segs * 4, persistent ? "persistent" : "copied",
           batches, qd);
    rig_down(&b, &f);
    return check_result("ring-insns");
}
