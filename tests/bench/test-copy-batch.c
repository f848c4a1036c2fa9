/*
 * test-copy-batch.c - what a large request costs in grant-copy calls
 * (src/ring.c copy_bounced, fetch_indirect):
 * - without persistent grants, the 256 data segments of an indirect
 *   request go in ONE copy call (plus one for its indirect page), for a
 *   write (guest to bounce pages) and for a read (back to the guest);
 * - with persistent grants and a cache smaller than the requests, an
 *   indirect page is read from its mapping (no copy call: the cache
 *   keeps room for indirect pages, and one already mapped holds that
 *   room) and the segments that found no room in the cache go in one
 *   copy call, those that found room are mapped by one map call; an
 *   indirect page beyond that room is copied, never mapped in turn with
 *   data; the same requests again map nothing new.
 * Counted with the ring's own counters (copy_calls, copy_segs,
 * pgrant_map_calls), never with time.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fe.h"
#include "rig.h"

#define NSEG   256          /* BLKIF max indirect segments (Linux 256) */
#define NDATA  32           /* data pages the segments cycle over */
#define INDPG  (FE_NPAGES - 1)   /* the page holding a segment list */

struct counts { uint64_t calls, segs, maps, purges; };

static struct counts now(struct be *b)
{
    const struct xbd_ring_stats *st = xbd_ring_get_stats(b->ring);

    return (struct counts){ st->copy_calls, st->copy_segs, st->pgrant_map_calls,
                            st->pgrant_purges };
}

/* One 256-segment indirect request over data pages 0..NDATA-1, its
 * segment list in page <ip> (256 x 8 bytes: one indirect page). */
static void request_ind(struct be *b, struct fe *f, uint8_t op, uint64_t id,
                        uint32_t ind_gfn, grant_ref_t ind_ref)
{
    struct blkif_request_segment *ind = xsg_page(f->d, ind_gfn);

    for (unsigned i = 0; i < NSEG; i++) {
        ind[i].gref = f->ref[i % NDATA];
        ind[i].first_sect = 0;
        ind[i].last_sect = 7;
    }
    fe_indirect(f, op, id, 0, NSEG, &ind_ref, 1);
    fe_push(f);
    expect_one(b, f, id, op, BLKIF_RSP_OKAY);
}

static void request(struct be *b, struct fe *f, uint8_t op, uint64_t id)
{
    request_ind(b, f, op, id, f->gfn[INDPG], f->ref[INDPG]);
}

static void test_copy_path(void)
{
    struct fe f;
    struct be b;
    struct counts c0, c1;

    printf("no persistent grants: a 256-segment request's data in one copy call\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = false, .max_indirect = NSEG))
        return;
    c0 = now(&b);
    request(&b, &f, BLKIF_OP_WRITE, 1);
    c1 = now(&b);
    printf("  write: %llu copy calls, %llu segments\n",
           (unsigned long long)(c1.calls - c0.calls), (unsigned long long)(c1.segs - c0.segs));
    CHECK_EQ(c1.calls - c0.calls, 2);          /* the indirect page, the data */
    CHECK_EQ(c1.segs - c0.segs, 1 + NSEG);
    request(&b, &f, BLKIF_OP_READ, 2);
    c0 = now(&b);
    printf("  read: %llu copy calls, %llu segments\n",
           (unsigned long long)(c0.calls - c1.calls), (unsigned long long)(c0.segs - c1.segs));
    CHECK_EQ(c0.calls - c1.calls, 2);
    CHECK_EQ(c0.segs - c1.segs, 1 + NSEG);
    CHECK_EQ(c0.maps, 0);                      /* the copy path never maps */
    rig_down(&b, &f);
}

static void test_cache_overflow(void)
{
    struct fe f;
    struct be b;
    struct counts c0, c1;
    /* 16 mappings, of which one is kept for indirect pages (1/64 of the
     * cache, at least one): the first request's list takes it, its data
     * pages the other 15, the segments of the other 17 data pages
     * (17 * 8 of the 256) are copied. */
    const unsigned cap = 16, data_mapped = cap - 1;
    const unsigned copied = (NDATA - data_mapped) * (NSEG / NDATA);
    /* Two slots' segment lists, as a frontend with 2 requests in flight
     * has, the second granted read-only (as the reference frontend does),
     * then both again.  The room kept for lists is the first one's: the
     * second finds the cache full and is copied each time (its own copy
     * call), which no purge can change while the data keep the cache
     * busy.  (Before the headroom counted the lists it holds, the first
     * list took a data entry and the second the headroom: 14 data pages
     * mapped, 144 segments and one copy call per request; that kept 1 of
     * 16 entries free on top of the lists, which left Linux blkfront's
     * pool of 1056 pages, lists and data alike, 16 entries short:
     * tests/unit/test-blkfront-pool.) */
    const bool ro[4] = { false, true, false, true };
    const unsigned calls[4] = { 1, 2, 1, 2 };
    /* Map calls: the list, then its 15 data pages in ONE call
     * (grant_cache.c maps a request's new pages as one mapping); then
     * nothing. */
    const unsigned maps[4] = { 1 + 1, 0, 0, 0 };

    printf("persistent, cache smaller than the requests: the overflow in one copy call, "
           "no churn\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true, .max_indirect = NSEG,
                .max_pgrants = cap))
        return;
    uint64_t purges0 = now(&b).purges;
    double t0 = ev_time();
    bool disturbed = false;

    for (unsigned k = 0; k < 4; k++) {
        c0 = now(&b);
        request_ind(&b, &f, k % 2 ? BLKIF_OP_READ : BLKIF_OP_WRITE, 1 + k,
                    ro[k] ? f.ro_gfn : f.gfn[INDPG], ro[k] ? f.ro_ref : f.ref[INDPG]);
        c1 = now(&b);
        printf("  request %u: %llu copy calls, %llu segments, %llu maps\n", k,
               (unsigned long long)(c1.calls - c0.calls),
               (unsigned long long)(c1.segs - c0.segs),
               (unsigned long long)(c1.maps - c0.maps));
        /* While the cache is full, its LRU purge (every 0.1 s) unmaps an
         * entry unused for 0.1 s: only possible here once the requests
         * have taken that long, on a machine that stalled this process.
         * The next request maps the page again, and from then on which
         * list is mapped and which copied may differ: the exact figures
         * hold until the first purge, the cache's bound always. */
        if (!disturbed && c1.purges != purges0) {
            CHECK(ev_time() - t0 >= 0.1);
            printf("    %llu purged after a stall of this process: checked loosely "
                   "from here\n", (unsigned long long)(c1.purges - purges0));
            disturbed = true;
        }
        if (!disturbed) {
            CHECK_EQ(c1.calls - c0.calls, calls[k]);   /* the overflow, the list if copied */
            CHECK_EQ(c1.segs - c0.segs, copied + calls[k] - 1);
            CHECK_EQ(c1.maps - c0.maps, maps[k]);
        }
        CHECK(xbd_ring_get_stats(b.ring)->pgrants_mapped <= cap);
    }
    rig_down(&b, &f);
}

int main(int argc, char **argv)
{
    rig_init(argc, argv);
    test_copy_path();
    test_cache_overflow();
    return check_result("test-copy-batch");
}
