/*
 * test-ring.c - the data plane end to end on a simulated host: a guest
 * frontend (tests/sim guest library) against a real xbd_ring.
 *
 * Proves: data round trips in the three ABIs and with a multi-page ring;
 * persistent grants are mapped once and reused (no map call in steady
 * state, one grant-cache lookup per segment); unused ones are unmapped after pgrant_idle_s and mapped again
 * on their next use; the copy path never maps; the persistent cache stays
 * within its bound and purges least recently used grants; indirect
 * requests; flush,
 * barrier, discard; invalid requests answered ERROR/EOPNOTSUPP; a bogus
 * req_prod is fatal; a ring stopped with I/O in flight drains and leaves
 * no grant in use; a ring that cannot be mapped leaves nothing behind.
 *
 * Each scenario is brought up and torn down by the rig helpers (rig.h):
 * the ring must start, and once it is closed the guest must see none of
 * its grants in use.
 */
#include "config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fe.h"
#include "rig.h"

/* Responses come back in completion order: collect n of them and look
 * them up by id. */
struct rsp_set {
    unsigned n;
    struct { uint64_t id; uint8_t op; int16_t st; } r[64];
};

static void collect(struct be *b, struct fe *f, unsigned n, struct rsp_set *s)
{
    CHECK_EQ(run_until_rsp(b, f, n, 10), n);
    s->n = 0;
    while (s->n < 64 && fe_pop(f, &s->r[s->n].id, &s->r[s->n].op, &s->r[s->n].st))
        s->n++;
    CHECK_EQ(s->n, n);
}

/* Status of response <id>, or 99 if absent. */
static int status_of(const struct rsp_set *s, uint64_t id)
{
    unsigned i;

    for (i = 0; i < s->n; i++)
        if (s->r[i].id == id)
            return s->r[i].st;
    return 99;
}

static int op_of(const struct rsp_set *s, uint64_t id)
{
    unsigned i;

    for (i = 0; i < s->n; i++)
        if (s->r[i].id == id)
            return s->r[i].op;
    return 999;
}

/* Write pages [p0, p0+n) as full-page segments at <sector>, one request
 * per 11 pages. */
static void write_pages(struct be *b, struct fe *f, unsigned p0, unsigned n,
                        uint64_t sector, uint8_t op)
{
    struct fe_seg segs[BLKIF_MAX_SEGMENTS_PER_REQUEST];
    unsigned done = 0, reqs = 0;

    while (done < n) {
        unsigned k, m = n - done > 11 ? 11 : n - done;

        for (k = 0; k < m; k++) {
            segs[k].gref = f->ref[p0 + done + k];
            segs[k].first = 0;
            segs[k].last = 7;
        }
        fe_rw(f, op, 1000 + done, sector + done * 8u, segs, m);
        done += m;
        reqs++;
    }
    fe_push(f);
    expect_all(b, f, reqs, BLKIF_RSP_OKAY);
}

/* Write n pages of patterns, check the file, zero the guest pages, read
 * them back and check the guest memory. */
static void round_trip(struct be *b, struct fe *f, unsigned n, uint64_t sector, uint32_t seed)
{
    unsigned i;

    for (i = 0; i < n; i++)
        fe_fill(f, i, seed + i);
    write_pages(b, f, 0, n, sector, BLKIF_OP_WRITE);
    for (i = 0; i < n; i++)
        CHECK(file_matches(b, sector + i * 8u, seed + i));
    for (i = 0; i < n; i++)
        memset(xsg_page(f->d, f->gfn[i]), 0, XBD_PAGE_SIZE);
    write_pages(b, f, 0, n, sector, BLKIF_OP_READ);
    for (i = 0; i < n; i++)
        CHECK(fe_check(f, i, seed + i));
}

/* Every request counted by operation has exactly one latency sample. */
static void check_latency(const struct xbd_ring_stats *st)
{
    const uint64_t per_op[XBD_LAT_OPS] = {
        [XBD_LAT_READ] = st->rd_req, [XBD_LAT_WRITE] = st->wr_req,
        [XBD_LAT_FLUSH] = st->flush_req, [XBD_LAT_BARRIER] = st->barrier_req,
        [XBD_LAT_DISCARD] = st->discard_req,
    };

    for (unsigned op = 0; op < XBD_LAT_OPS; op++) {
        uint64_t sum = 0;

        for (unsigned i = 0; i < XBD_LAT_BUCKETS; i++)
            sum += st->lat[op].buckets[i];
        CHECK_EQ(st->lat[op].count, per_op[op]);
        CHECK_EQ(sum, per_op[op]);
        if (per_op[op])
            CHECK(st->lat[op].sum_us > 0 || st->lat[op].buckets[0] == per_op[op]);
    }
}

static void test_abis(void)
{
    static const enum xbd_protocol protos[] = {
        XBD_PROTO_NATIVE, XBD_PROTO_X86_32, XBD_PROTO_X86_64 };
    unsigned i, pers;

    for (pers = 0; pers < 2; pers++) {
        for (i = 0; i < 3; i++) {
            struct fe f;
            struct be b;

            printf("round trip, protocol %d, persistent %u\n", protos[i], pers);
            if (!rig_up(&b, &f, protos[i], 0, .persistent = pers))
                return;
            round_trip(&b, &f, 30, 64, 7 + i);
            CHECK_EQ(xbd_ring_get_stats(b.ring)->wr_req, 3);
            CHECK_EQ(xbd_ring_get_stats(b.ring)->rd_req, 3);
            CHECK_EQ(xbd_ring_get_stats(b.ring)->wr_sect, 240);
            CHECK_EQ(xbd_ring_get_stats(b.ring)->errors, 0);
            check_latency(xbd_ring_get_stats(b.ring));
            /* 30 pages each way: by grant copy unless persistent. */
            CHECK_EQ(xbd_ring_get_stats(b.ring)->copy_segs, pers ? 0 : 60);
            CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrant_misses, pers ? 30 : 0);
            CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrant_hits, pers ? 30 : 0);
            rig_down(&b, &f);
        }
    }
}

/* Order-2 ring (4 pages, 128 slots) kept full. */
static void test_multipage(void)
{
    struct fe f;
    struct be b;
    unsigned i;

    printf("multi-page ring\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 2, .persistent = true))
        return;
    CHECK_EQ(RING_SIZE(&f.fr), 128);
    for (i = 0; i < 128; i++)
        fe_rw_page(&f, BLKIF_OP_READ, i, (uint64_t)i * 8, i % FE_NPAGES);
    fe_push(&f);
    expect_all(&b, &f, 128, BLKIF_RSP_OKAY);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->rd_req, 128);
    rig_down(&b, &f);
}

static void test_persistent_reuse(void)
{
    struct fe f;
    struct be b;
    struct xsg_grant_stats s1, s2;

    printf("persistent grants are reused\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    round_trip(&b, &f, 22, 0, 100);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrants_mapped, 22);
    CHECK(xsg_grant_stats(f.d, &s1) == 0);
    round_trip(&b, &f, 22, 800, 200);
    round_trip(&b, &f, 22, 1600, 300);
    CHECK(xsg_grant_stats(f.d, &s2) == 0);
    CHECK_EQ(s2.map_calls, s1.map_calls);       /* steady state: no map */
    CHECK_EQ(s2.pages_mapped, s1.pages_mapped);
    CHECK_EQ(s2.copy_calls, s1.copy_calls);     /* and no copy */
    /* One map call per request that brought new pages (2 of 11 pages),
     * then none. */
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrant_map_calls, 2);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrant_misses, 22);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrant_hits, 6 * 22 - 22);
    /* One grant-cache lookup per segment (11 per request), not one to
     * map the new pages and another to pin each. */
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrant_lookups, 6 * 22);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->copy_calls, 0);
    be_close(&b);
    CHECK(xsg_grant_stats(f.d, &s2) == 0);
    CHECK_EQ(s2.pages_unmapped, s2.pages_mapped); /* all released at stop */
    CHECK_EQ(s2.unmap_calls, 1 + 2);            /* the ring, the 2 groups */
    CHECK_EQ(xsg_grants_in_use(f.d), 0);
    fe_close(&f);
}

/* Unused persistent grants are unmapped after pgrant_idle_s (the default
 * is 60 s: the ring's timer, not only the cache, is what is tested), the
 * guest sees them released, and the next request maps them again.  Every
 * grant stays mapped while the guest keeps using it. */
static void test_idle_purge(void)
{
    struct fe f;
    struct be b;
    struct xsg_grant_stats s1, s2;

    printf("persistent grants idle out\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .pgrant_idle_s = 0.4))
        return;
    round_trip(&b, &f, 8, 0, 500);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrants_mapped, 8);
    CHECK_EQ(xsg_grants_in_use(f.d), 9);         /* 8 data pages + ring */
    /* In use every 0.1 s for 0.8 s: twice the idle time, still mapped.
     * Time itself is what this checks, so the waits are spans (no event
     * says how long the grants went unused); only a loop stalled for
     * most of the idle time between two uses could fail it. */
    for (unsigned i = 0; i < 8; i++) {
        run_for(&b, 0.1);
        round_trip(&b, &f, 8, 0, 600 + i);
    }
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrant_map_calls, 1);   /* one request */
    CHECK_EQ(xsg_grants_in_use(f.d), 9);
    /* Idle for 0.4 s plus at most one check period (0.1 s): all 8. */
    wait_stat(&b, pgrant_purges, 8);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrants_mapped, 0);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrant_purges, 8);
    CHECK_EQ(xsg_grants_in_use(f.d), 1);         /* the ring only */
    CHECK(xsg_grant_stats(f.d, &s1) == 0);
    CHECK_EQ(s1.pages_unmapped, 8);
    CHECK_EQ(s1.unmap_calls, 1);                 /* the 8 pages' one mapping */
    /* Used again: mapped again, data still right. */
    round_trip(&b, &f, 8, 0, 700);
    CHECK(xsg_grant_stats(f.d, &s2) == 0);
    CHECK_EQ(s2.pages_mapped, s1.pages_mapped + 8);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrant_map_calls, 2);
    rig_down(&b, &f);

    /* 0 = never: the same idle time leaves the grants mapped. */
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true, .pgrant_idle_s = 0))
        return;
    round_trip(&b, &f, 8, 0, 800);
    /* No timer runs at all: no event can end this wait. */
    run_for(&b, 0.8);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrants_mapped, 8);
    CHECK_EQ(xsg_grants_in_use(f.d), 9);
    rig_down(&b, &f);
}

static void test_copy_path(void)
{
    struct fe f;
    struct be b;
    struct xsg_grant_stats s;

    printf("copy path never maps data pages\n");
    if (!rig_up(&b, &f, XBD_PROTO_X86_32, 0, .persistent = false))
        return;
    round_trip(&b, &f, 33, 0, 400);
    CHECK(xsg_grant_stats(f.d, &s) == 0);
    CHECK_EQ(s.map_calls, 1);                   /* the ring only */
    CHECK_EQ(s.pages_mapped, 1);
    CHECK_EQ(s.copy_calls, 6);                  /* one per request */
    CHECK_EQ(s.copy_segs, 66);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrant_map_calls, 0);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->copy_calls, 6);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->copy_segs, 66);
    /* Grants are not held between requests on the copy path. */
    CHECK_EQ(xsg_grants_in_use(f.d), 1);        /* the ring page */
    rig_down(&b, &f);
}

static void test_lru_bound(void)
{
    struct fe f;
    struct be b;
    struct xsg_grant_stats s0, s1;
    unsigned i;

    printf("persistent cache bound and LRU purge\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true, .max_pgrants = 8))
        return;
    /* 22 distinct grants through an 8-entry cache: data still right. */
    round_trip(&b, &f, 22, 0, 500);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrants_mapped, 8);
    CHECK(xbd_ring_get_stats(b.ring)->copy_calls > 0);
    CHECK(xsg_grant_stats(f.d, &s0) == 0);
    CHECK_EQ(s0.pages_unmapped, 0);
    /* The first request's 8 pages that fit were mapped by one call, as
     * one mapping; the purge timer drops unused mappings whole: one
     * unmap call for the 8 (gntdev unmaps nothing smaller). */
    CHECK_EQ(s0.map_calls - s0.unmap_calls, 1 + 1);  /* ring + the group */
    CHECK_EQ(xsg_grant_in_use(f.d, f.ref[0]), 1);
    CHECK_EQ(xsg_grant_in_use(f.d, f.ref[7]), 1);
    CHECK_EQ(xsg_grant_in_use(f.d, f.ref[8]), 0);    /* went by copy */
    wait_stat(&b, pgrant_purges, 8);
    CHECK(xsg_grant_stats(f.d, &s1) == 0);
    CHECK_EQ(s1.pages_unmapped, 8);
    CHECK_EQ(s1.unmap_calls - s0.unmap_calls, 1);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrants_mapped, 0);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrant_purges, s1.pages_unmapped);
    CHECK_EQ(xsg_grant_in_use(f.d, f.ref[0]), 0);
    CHECK_EQ(xsg_grant_in_use(f.d, f.ref[7]), 0);
    for (i = 0; i < 22; i++)
        CHECK(xbd_ring_get_stats(b.ring)->pgrants_mapped <= 8);
    rig_down(&b, &f);
}

/* A request's new grants go in one map call (src/grant_cache.c).  One
 * bad ref fails that call: the request gets the answer per-page maps gave
 * it (its good pages copied, the bad one's copy fails: ERROR), nothing is
 * left mapped, and the guest's next request, the same pages without the
 * bad ref and each named twice, is mapped by one call and succeeds, as
 * does a read-only granted page in a write (copied). */
static void test_batch_bad_ref(void)
{
    struct fe f;
    struct be b;
    struct fe_seg segs[8];
    struct xsg_grant_stats s0, s1;
    const struct xbd_ring_stats *st;

    printf("a bad ref in a request's batch map\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    st = xbd_ring_get_stats(b.ring);
    for (unsigned i = 0; i < 4; i++) {
        fe_fill(&f, i, 900 + i);
        segs[i] = (struct fe_seg){ f.ref[i], 0, 7 };
    }
    segs[2].gref = 100000;                       /* never granted */
    CHECK(xsg_grant_stats(f.d, &s0) == 0);
    fe_rw(&f, BLKIF_OP_WRITE, 1, 0, segs, 4);
    fe_push(&f);
    expect_one(&b, &f, 1, BLKIF_OP_WRITE, BLKIF_RSP_ERROR);
    CHECK(xsg_grant_stats(f.d, &s1) == 0);
    CHECK_EQ(s1.map_calls - s0.map_calls, 1);    /* the batch, refused */
    CHECK_EQ(s1.pages_mapped, s0.pages_mapped);
    CHECK_EQ(st->pgrants_mapped, 0);
    CHECK_EQ(st->pgrant_map_failures, 4);
    CHECK_EQ(xsg_grants_in_use(f.d), 1);         /* the ring only */
    /* The same pages, each twice, without the bad one. */
    for (unsigned i = 0; i < 8; i++)
        segs[i] = (struct fe_seg){ f.ref[i % 4], 0, 7 };
    fe_rw(&f, BLKIF_OP_WRITE, 2, 0, segs, 8);
    fe_push(&f);
    expect_one(&b, &f, 2, BLKIF_OP_WRITE, BLKIF_RSP_OKAY);
    CHECK(xsg_grant_stats(f.d, &s0) == 0);
    CHECK_EQ(s0.map_calls - s1.map_calls, 1);
    CHECK_EQ(s0.pages_mapped - s1.pages_mapped, 4);
    CHECK_EQ(st->pgrants_mapped, 4);
    CHECK(file_matches(&b, 4 * 8, 900 + 0));     /* segment 4 is page 0 */
    /* A page granted read-only among new ones, written to disk: the
     * writable batch map is refused, the request is copied and succeeds. */
    segs[0] = (struct fe_seg){ f.ref[4], 0, 7 };
    segs[1] = (struct fe_seg){ f.ro_ref, 0, 7 };
    fe_rw(&f, BLKIF_OP_WRITE, 3, 64, segs, 2);
    fe_push(&f);
    expect_one(&b, &f, 3, BLKIF_OP_WRITE, BLKIF_RSP_OKAY);
    CHECK_EQ(st->pgrants_mapped, 4);
    CHECK_EQ(st->grant_errors, 1);               /* request 1 only */
    CHECK_EQ(st->pgrant_lookups, 4 + 8 + 2);     /* one per segment */
    rig_down(&b, &f);
}

/* A request refused half-way through its pages (cached pages pinned, one
 * named twice, a new page and a never-granted ref among them, which fail
 * the batch map and then the copy) gives back exactly what it took: with
 * nothing held, the idle purge takes every mapping, whole. */
static void test_error_releases(void)
{
    struct fe f;
    struct be b;
    struct fe_seg segs[5];
    struct rsp_set rs;
    const struct xbd_ring_stats *st;

    printf("a request refused half-way releases every page it took\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .pgrant_idle_s = 0.4))
        return;
    st = xbd_ring_get_stats(b.ring);
    round_trip(&b, &f, 4, 0, 100);
    CHECK_EQ(st->pgrants_mapped, 4);
    segs[0] = (struct fe_seg){ f.ref[0], 0, 7 };
    segs[1] = (struct fe_seg){ f.ref[1], 0, 7 };
    segs[2] = (struct fe_seg){ 100000, 0, 7 };   /* never granted */
    segs[3] = (struct fe_seg){ f.ref[0], 0, 7 };
    segs[4] = (struct fe_seg){ f.ref[4], 0, 7 };  /* new */
    fe_rw(&f, BLKIF_OP_WRITE, 1, 0, segs, 5);     /* fails copying in */
    fe_rw(&f, BLKIF_OP_READ, 2, 0, segs, 5);      /* fails copying out */
    fe_push(&f);
    collect(&b, &f, 2, &rs);
    CHECK_EQ(status_of(&rs, 1), BLKIF_RSP_ERROR);
    CHECK_EQ(status_of(&rs, 2), BLKIF_RSP_ERROR);
    CHECK_EQ(st->grant_errors, 2);
    CHECK_EQ(st->pgrants_mapped, 4);              /* the batch was refused */
    CHECK_EQ(st->inflight, 0);
    /* Idle for 0.4 s plus at most one check period (0.1 s): a page still
     * held would keep its group mapped. */
    wait_stat(&b, pgrant_purges, 4);
    CHECK_EQ(st->pgrants_mapped, 0);
    CHECK_EQ(st->pgrant_purges, 4);
    CHECK_EQ(xsg_grants_in_use(f.d), 1);          /* the ring only */
    rig_down(&b, &f);
}

/* Hostile permissions: an indirect page the guest granted read-only is
 * mapped read-only (grant_cache.c); the same ref named as a data page,
 * in the same request and in later ones (single-page, batch and
 * indirect), must never be written through that mapping (the simulator
 * enforces PROT_READ: a SIGSEGV would take every guest down).  A READ
 * into it fails (its copy to a read-only grant is refused), a WRITE from
 * it is copied and succeeds, and nothing is left pinned. */
static void test_ro_indirect_as_data(void)
{
    struct fe f;
    struct be b;
    struct blkif_request_segment *ind;
    struct fe_seg segs[3];
    const struct xbd_ring_stats *st;
    struct rsp_set rs;

    printf("a read-only indirect page named as a data page\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true, .max_indirect = 64))
        return;
    st = xbd_ring_get_stats(b.ring);
    ind = xsg_page(f.d, f.ro_gfn);
    ind[0] = (struct blkif_request_segment){ .gref = f.ref[0], .first_sect = 0, .last_sect = 7 };
    ind[1] = (struct blkif_request_segment){ .gref = f.ro_ref, .first_sect = 0, .last_sect = 7 };
    ind[2] = (struct blkif_request_segment){ .gref = f.ref[1], .first_sect = 0, .last_sect = 7 };
    fe_fill(&f, 0, 500);
    fe_fill(&f, 1, 501);
    /* Write first: the list page maps read-only, its data is copied. */
    fe_indirect(&f, BLKIF_OP_WRITE, 1, 0, 3, &f.ro_ref, 1);
    fe_push(&f);
    expect_one(&b, &f, 1, BLKIF_OP_WRITE, BLKIF_RSP_OKAY);
    CHECK(file_matches(&b, 0, 500));
    CHECK(file_matches(&b, 16, 501));
    /* Read into it: indirect, then as a direct batch and a single page. */
    fe_indirect(&f, BLKIF_OP_READ, 2, 0, 3, &f.ro_ref, 1);
    segs[0] = (struct fe_seg){ f.ref[2], 0, 7 };
    segs[1] = (struct fe_seg){ f.ro_ref, 0, 7 };
    segs[2] = (struct fe_seg){ f.ref[3], 0, 7 };
    fe_rw(&f, BLKIF_OP_READ, 3, 0, segs, 3);
    fe_rw(&f, BLKIF_OP_READ, 4, 0, &segs[1], 1);
    fe_push(&f);
    collect(&b, &f, 3, &rs);
    CHECK_EQ(status_of(&rs, 2), BLKIF_RSP_ERROR);
    CHECK_EQ(status_of(&rs, 3), BLKIF_RSP_ERROR);
    CHECK_EQ(status_of(&rs, 4), BLKIF_RSP_ERROR);
    /* Refused as grants (their copy), never tried as disk reads into a
     * read-only mapping (EFAULT from the kernel, an "I/O error"). */
    CHECK_EQ(st->io_errors, 0);
    CHECK_EQ(st->grant_errors, 3);
    /* Good requests still work, and nothing stayed pinned. */
    fe_rw(&f, BLKIF_OP_READ, 5, 0, segs, 1);
    fe_push(&f);
    expect_one(&b, &f, 5, BLKIF_OP_READ, BLKIF_RSP_OKAY);
    CHECK(fe_check(&f, 2, 500));
    CHECK_EQ(st->inflight, 0);
    rig_down(&b, &f);
}

static void test_invalid(unsigned persistent)
{
    struct fe f;
    struct be b;
    struct fe_seg seg, segs[12];
    uint64_t id;
    uint8_t op;
    int16_t st;
    unsigned i, n = 0;
    struct { uint64_t id; int16_t want; uint8_t op; } exp[16];

    printf("invalid requests, persistent %u\n", persistent);
    if (!rig_up(&b, &f, XBD_PROTO_X86_64, 0, .persistent = persistent))
        return;
    for (i = 0; i < 12; i++)
        segs[i] = (struct fe_seg){ f.ref[i], 0, 7 };
#define EXPECT(id_, op_, want_) do { exp[n].id = (id_); exp[n].op = (op_); \
                                     exp[n++].want = (want_); } while (0)
    fe_rw_page(&f, BLKIF_OP_RESERVED_1, 1, 0, 0);
    EXPECT(1, BLKIF_OP_RESERVED_1, BLKIF_RSP_EOPNOTSUPP);
    fe_rw_page(&f, 42, 2, 0, 0);
    EXPECT(2, 42, BLKIF_RSP_EOPNOTSUPP);
    fe_rw(&f, BLKIF_OP_READ, 3, 0, segs, 12);
    EXPECT(3, BLKIF_OP_READ, BLKIF_RSP_ERROR);
    fe_rw_page(&f, BLKIF_OP_READ, 4, RIG_SECTORS, 0);
    EXPECT(4, BLKIF_OP_READ, BLKIF_RSP_ERROR);
    seg = (struct fe_seg){ f.ref[0], 6, 2 };
    fe_rw(&f, BLKIF_OP_WRITE, 5, 0, &seg, 1);
    EXPECT(5, BLKIF_OP_WRITE, BLKIF_RSP_ERROR);
    /* A READ into a page the guest granted read-only: refused. */
    seg = (struct fe_seg){ f.ro_ref, 0, 7 };
    fe_rw(&f, BLKIF_OP_READ, 6, 0, &seg, 1);
    EXPECT(6, BLKIF_OP_READ, BLKIF_RSP_ERROR);
    /* A grant that does not exist. */
    seg = (struct fe_seg){ 999, 0, 7 };
    fe_rw(&f, BLKIF_OP_WRITE, 7, 0, &seg, 1);
    EXPECT(7, BLKIF_OP_WRITE, BLKIF_RSP_ERROR);
    /* Indirect not offered on this ring. */
    fe_indirect(&f, BLKIF_OP_READ, 8, 0, 4, &f.ref[1], 1);
    EXPECT(8, BLKIF_OP_READ, BLKIF_RSP_EOPNOTSUPP);
    /* And a good one in the middle. */
    fe_rw_page(&f, BLKIF_OP_READ, 9, 8, 2);
    EXPECT(9, BLKIF_OP_READ, BLKIF_RSP_OKAY);
    fe_push(&f);
    CHECK_EQ(run_until_rsp(&b, &f, n, 10), n);
    for (i = 0; i < n && fe_pop(&f, &id, &op, &st); i++) {
        unsigned k;

        for (k = 0; k < n && exp[k].id != id; k++)
            ;
        CHECK(k < n);
        if (k < n) {
            if (st != exp[k].want || op != exp[k].op)
                fprintf(stderr, "id %llu: op %u status %d, want op %u status %d\n",
                        (unsigned long long)id, op, st, exp[k].op, exp[k].want);
            CHECK_EQ(st, exp[k].want);
            CHECK_EQ(op, exp[k].op);
        }
    }
    CHECK_EQ(xbd_ring_get_stats(b.ring)->eopnotsupp, 3);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->errors, 5);
    /* 3, 4, 5 fail validation; 6 and 7 their grants. */
    CHECK_EQ(xbd_ring_get_stats(b.ring)->protocol_errors, 3);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->grant_errors, 2);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->io_errors, 0);
    /* 6, 7 and 9 passed validation: counted, with a latency each. */
    CHECK_EQ(xbd_ring_get_stats(b.ring)->rd_req, 2);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->wr_req, 1);
    check_latency(xbd_ring_get_stats(b.ring));
    rig_down(&b, &f);
}

static void test_indirect(unsigned persistent)
{
    struct fe f;
    struct be b;
    struct blkif_request_segment *ind;
    struct rsp_set rs;
    unsigned i, n = 40;

    printf("indirect requests, persistent %u\n", persistent);
    if (!rig_up(&b, &f, XBD_PROTO_X86_32, 0, .persistent = persistent, .max_indirect = 64))
        return;
    /* Page 63 holds the segment list of pages 0..39. */
    ind = xsg_page(f.d, f.gfn[63]);
    for (i = 0; i < n; i++) {
        ind[i].gref = f.ref[i];
        ind[i].first_sect = 0;
        ind[i].last_sect = 7;
        fe_fill(&f, i, 900 + i);
    }
    fe_indirect(&f, BLKIF_OP_WRITE, 77, 256, (uint16_t)n, &f.ref[63], 1);
    fe_push(&f);
    expect_one(&b, &f, 77, BLKIF_OP_WRITE, BLKIF_RSP_OKAY);
    for (i = 0; i < n; i++) {
        CHECK(file_matches(&b, 256 + i * 8u, 900 + i));
        memset(xsg_page(f.d, f.gfn[i]), 0, XBD_PAGE_SIZE);
    }
    fe_indirect(&f, BLKIF_OP_READ, 78, 256, (uint16_t)n, &f.ref[63], 1);
    /* An indirect page that is not granted, and a bad segment in a list. */
    fe_indirect(&f, BLKIF_OP_READ, 79, 256, 4, (grant_ref_t[]){ 999 }, 1);
    fe_push(&f);
    collect(&b, &f, 2, &rs);
    CHECK_EQ(status_of(&rs, 78), BLKIF_RSP_OKAY);
    CHECK_EQ(op_of(&rs, 78), BLKIF_OP_READ);
    CHECK_EQ(status_of(&rs, 79), BLKIF_RSP_ERROR);
    for (i = 0; i < n; i++)
        CHECK(fe_check(&f, i, 900 + i));
    ind[3].last_sect = 9;
    fe_indirect(&f, BLKIF_OP_READ, 80, 256, (uint16_t)n, &f.ref[63], 1);
    fe_push(&f);
    expect_all(&b, &f, 1, BLKIF_RSP_ERROR);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->indirect_req, 2);
    rig_down(&b, &f);
}

static bool file_zero(struct be *b, uint64_t sector, unsigned len)
{
    unsigned char buf[XBD_PAGE_SIZE];
    unsigned i;

    if (len > sizeof(buf) ||
        pread(b->plain_fd, buf, len, (off_t)(sector * 512)) != (ssize_t)len)
        return false;
    for (i = 0; i < len; i++)
        if (buf[i])
            return false;
    return true;
}

static void test_flush_barrier_discard(void)
{
    struct fe f;
    struct be b;
    struct rsp_set rs;

    printf("flush, barrier, discard\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    fe_fill(&f, 0, 11);
    fe_fill(&f, 1, 12);
    fe_fill(&f, 2, 13);
    fe_rw_page(&f, BLKIF_OP_WRITE, 1, 0, 0);
    fe_rw(&f, BLKIF_OP_FLUSH_DISKCACHE, 2, 0, NULL, 0);
    fe_rw_page(&f, BLKIF_OP_WRITE_BARRIER, 3, 8, 1);
    fe_rw_page(&f, BLKIF_OP_FLUSH_DISKCACHE, 4, 16, 2); /* FUA-style write */
    fe_rw(&f, BLKIF_OP_WRITE_BARRIER, 5, 0, NULL, 0);
    fe_push(&f);
    expect_all(&b, &f, 5, BLKIF_RSP_OKAY);
    CHECK(file_matches(&b, 0, 11));
    CHECK(file_matches(&b, 8, 12));
    CHECK(file_matches(&b, 16, 13));
    CHECK_EQ(xbd_ring_get_stats(b.ring)->flush_req, 2);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->barrier_req, 2);
    check_latency(xbd_ring_get_stats(b.ring));

    fe_discard(&f, 6, 8, 8, false);
    fe_discard(&f, 7, RIG_SECTORS - 8, 16, false);    /* past the end */
    fe_push(&f);
    collect(&b, &f, 2, &rs);
    CHECK_EQ(status_of(&rs, 6), BLKIF_RSP_OKAY);
    CHECK_EQ(op_of(&rs, 6), BLKIF_OP_DISCARD);
    CHECK_EQ(status_of(&rs, 7), BLKIF_RSP_ERROR);
    CHECK(file_zero(&b, 8, 4096));                  /* hole punched */
    CHECK(file_matches(&b, 0, 11));                 /* neighbours kept */
    CHECK(file_matches(&b, 16, 13));
    rig_down(&b, &f);

    /* Without a write cache, flush/barrier have nothing to flush: OKAY
     * (tests/unit/test-flush-order); without discard support, discard is
     * not supported. */
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    b.bk.flush = false;
    b.bk.discard = false;
    fe_rw(&f, BLKIF_OP_FLUSH_DISKCACHE, 1, 0, NULL, 0);
    fe_rw(&f, BLKIF_OP_WRITE_BARRIER, 2, 0, NULL, 0);
    fe_push(&f);
    expect_all(&b, &f, 2, BLKIF_RSP_OKAY);
    fe_discard(&f, 3, 0, 8, false);
    fe_push(&f);
    expect_all(&b, &f, 1, BLKIF_RSP_EOPNOTSUPP);
    rig_down(&b, &f);
}

/* A barrier waits for everything before it and holds back everything
 * after it: responses come back as R R B R whatever the I/O timing. */
static void test_barrier_order(void)
{
    struct fe f;
    struct be b;
    uint64_t id[4];
    uint8_t op;
    int16_t st;
    unsigned i;

    printf("barrier ordering\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    fe_rw_page(&f, BLKIF_OP_READ, 1, 0, 0);
    fe_rw_page(&f, BLKIF_OP_READ, 2, 8, 1);
    fe_rw_page(&f, BLKIF_OP_WRITE_BARRIER, 3, 16, 2);
    fe_rw_page(&f, BLKIF_OP_READ, 4, 16, 3);
    fe_fill(&f, 2, 4242);
    fe_push(&f);
    CHECK_EQ(run_until_rsp(&b, &f, 4, 10), 4);
    for (i = 0; i < 4; i++) {
        CHECK(fe_pop(&f, &id[i], &op, &st));
        CHECK_EQ(st, BLKIF_RSP_OKAY);
    }
    CHECK(id[0] == 1 || id[0] == 2);
    CHECK(id[1] == 1 || id[1] == 2);
    CHECK_EQ(id[2], 3);
    CHECK_EQ(id[3], 4);
    CHECK(fe_check(&f, 3, 4242));      /* the read after saw the barrier */
    rig_down(&b, &f);
}

/* The same round trip on an O_DIRECT backing fd (grant pages and bounce
 * pages are page aligned, segments sector aligned). */
static void test_direct(void)
{
    struct fe f;
    struct be b;
    char path[64];
    int fd;
    unsigned pers;

    for (pers = 0; pers < 2; pers++) {
        printf("O_DIRECT backing, persistent %u\n", pers);
        if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = pers, .max_indirect = 11))
            return;
        snprintf(path, sizeof(path), "/proc/self/fd/%d", b.bk.fd);
        fd = open(path, O_RDWR | O_DIRECT);
        if (fd < 0) {
            printf("  (no O_DIRECT on this filesystem: skipped)\n");
        } else {
            int old = b.bk.fd;

            b.bk.fd = fd;
            b.bk.direct = true;
            round_trip(&b, &f, 30, 128, 60 + pers);
            CHECK_EQ(xbd_ring_get_stats(b.ring)->io_errors, 0);
            b.bk.fd = old;
            close(fd);
        }
        rig_down(&b, &f);
    }
}

/* A barrier waits for the requests before it: if the disk shrinks in
 * between (SIGHUP), its data must not be written past the new end (that
 * would grow the image back and answer OKAY for a write beyond the disk). */
/* A burst of requests that all bring new grants is taken over several
 * loop turns, not one: mapping is the dearest per-request work (a PV
 * dom0 pays a hypercall per page), and a guest's first burst held the
 * loop, and every other ring, for 0.4 s on Xen under TCG.  12 requests of
 * 11 new pages each (132 pages) against the 64 pages a callback may map:
 * one turn takes 6 of them (66 pages), the next turns the rest, and
 * every request completes. */
static void test_map_burst_yields(void)
{
    enum { NREQ = 12, PER = 11 };
    struct fe_seg segs[PER];
    struct fe f;
    struct be b;
    struct rsp_set rs;
    uint64_t taken;

    printf("a burst of new grants is mapped over several loop turns\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    for (unsigned i = 0; i < NREQ; i++) {
        for (unsigned k = 0; k < PER; k++) {
            uint32_t gfn;

            CHECK(xsg_page_alloc(f.d, &gfn) == 0);
            CHECK(xsg_grant(f.d, 0, gfn, false, &segs[k].gref) == 0);
            segs[k].first = 0;
            segs[k].last = 7;
        }
        fe_rw(&f, BLKIF_OP_READ, 500 + i, (uint64_t)i * PER * 8, segs, PER);
    }
    /* Nothing of the ring's start left pending (its first look at the
     * ring is a zero timer): the next iteration runs the notification's
     * callback only. */
    ev_run(b.loop, EVRUN_NOWAIT);
    fe_push(&f);
    ev_run(b.loop, EVRUN_NOWAIT);
    taken = b.ring ? xbd_ring_get_stats(b.ring)->rd_req : 0;
    CHECK(xbd_ring_get_stats(b.ring)->pgrants_mapped >= 64);
    CHECK(xbd_ring_get_stats(b.ring)->pgrants_mapped < 64 + PER);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrant_map_calls, 6);
    CHECK(taken < NREQ);
    collect(&b, &f, NREQ, &rs);
    for (unsigned i = 0; i < NREQ; i++)
        CHECK_EQ(status_of(&rs, 500 + i), BLKIF_RSP_OKAY);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrants_mapped, NREQ * PER);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrant_map_calls, NREQ);
    rig_down(&b, &f);
}

/* The same bound against a guest whose map calls all fail: 12 requests
 * of 10 new pages and one never-granted ref each.  Each map call is
 * refused whole (gntdev maps and unmaps the good pages all the same), the
 * request is copied and answered ERROR, and nothing is cached, so a bound
 * on pages mapped would never be reached: the loop would map and unmap
 * every request's pages in one callback, however many the ring holds.
 * Bounded by pages tried, one turn takes 6 of them (66 pages). */
static void test_failed_maps_yield(void)
{
    enum { NREQ = 12, PER = 11 };
    struct fe_seg segs[PER];
    struct fe f;
    struct be b;
    struct rsp_set rs;

    printf("map calls refused by a bad ref count against the callback's bound\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    for (unsigned i = 0; i < NREQ; i++) {
        for (unsigned k = 0; k < PER - 1; k++) {
            uint32_t gfn;

            CHECK(xsg_page_alloc(f.d, &gfn) == 0);
            CHECK(xsg_grant(f.d, 0, gfn, false, &segs[k].gref) == 0);
            segs[k].first = 0;
            segs[k].last = 7;
        }
        segs[PER - 1] = (struct fe_seg){ 100000 + i, 0, 7 };    /* never granted */
        fe_rw(&f, BLKIF_OP_READ, 600 + i, (uint64_t)i * PER * 8, segs, PER);
    }
    ev_run(b.loop, EVRUN_NOWAIT);       /* the ring's start (test_map_burst_yields) */
    fe_push(&f);
    ev_run(b.loop, EVRUN_NOWAIT);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrant_map_calls, 6);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->rd_req, 6);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrants_mapped, 0);
    collect(&b, &f, NREQ, &rs);
    for (unsigned i = 0; i < NREQ; i++)
        CHECK_EQ(status_of(&rs, 600 + i), BLKIF_RSP_ERROR);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrant_map_calls, NREQ);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrants_mapped, 0);
    rig_down(&b, &f);
}

static void test_resize_barrier(void)
{
    struct fe f;
    struct be b;
    struct rsp_set rs;
    struct stat st;
    unsigned i;

    printf("barrier held back across a shrink\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    for (i = 0; i < 8; i++)
        fe_rw_page(&f, BLKIF_OP_READ, 10 + i, 8u * i, i);
    fe_rw_page(&f, BLKIF_OP_WRITE_BARRIER, 99, RIG_SECTORS - 8, 9);
    fe_push(&f);
    /* One iteration: all nine parsed, the reads handed to the kernel and
     * not reaped, the barrier (valid now) waiting for them. */
    ev_run(b.loop, EVRUN_NOWAIT);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->inflight, 9);
    CHECK(ftruncate(b.plain_fd, (off_t)RIG_SECTORS / 2 * 512) == 0);
    b.bk.sectors = RIG_SECTORS / 2;
    collect(&b, &f, 9, &rs);
    for (i = 0; i < 8; i++)
        CHECK_EQ(status_of(&rs, 10 + i), BLKIF_RSP_OKAY);
    CHECK_EQ(status_of(&rs, 99), BLKIF_RSP_ERROR);
    CHECK(fstat(b.plain_fd, &st) == 0);
    CHECK_EQ(st.st_size, (off_t)RIG_SECTORS / 2 * 512);
    rig_down(&b, &f);
}

/* An online resize changes backing->sectors under a running ring (the
 * control plane does it on SIGHUP): the very next requests are checked
 * against the new size, both ways. */
static void test_resize(void)
{
    struct fe f;
    struct be b;

    printf("resize under a running ring\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    fe_rw_page(&f, BLKIF_OP_WRITE, 1, RIG_SECTORS - 8, 0);
    fe_push(&f);
    expect_one(&b, &f, 1, BLKIF_OP_WRITE, BLKIF_RSP_OKAY);
    fe_rw_page(&f, BLKIF_OP_WRITE, 2, RIG_SECTORS, 1);       /* past the end */
    fe_push(&f);
    expect_one(&b, &f, 2, BLKIF_OP_WRITE, BLKIF_RSP_ERROR);
    /* Grown to twice the size. */
    CHECK(ftruncate(b.plain_fd, (off_t)RIG_SECTORS * 2 * 512) == 0);
    b.bk.sectors = RIG_SECTORS * 2;
    fe_rw_page(&f, BLKIF_OP_WRITE, 3, RIG_SECTORS, 1);
    fe_rw_page(&f, BLKIF_OP_READ, 4, 2 * RIG_SECTORS - 8, 2);
    fe_push(&f);
    expect_all(&b, &f, 2, BLKIF_RSP_OKAY);
    /* Shrunk to half: what was valid a moment ago is refused. */
    b.bk.sectors = RIG_SECTORS / 2;
    fe_rw_page(&f, BLKIF_OP_READ, 5, RIG_SECTORS / 2, 0);
    fe_rw_page(&f, BLKIF_OP_WRITE, 6, RIG_SECTORS - 8, 0);
    fe_push(&f);
    expect_all(&b, &f, 2, BLKIF_RSP_ERROR);
    fe_rw_page(&f, BLKIF_OP_READ, 7, RIG_SECTORS / 2 - 8, 0);
    fe_push(&f);
    expect_one(&b, &f, 7, BLKIF_OP_READ, BLKIF_RSP_OKAY);
    rig_down(&b, &f);
}

/* Read-only device: writes, barriers and discards are refused. */
static void test_readonly(void)
{
    struct fe f;
    struct be b;

    printf("read-only device\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = false))
        return;
    b.bk.readonly = true;
    fe_rw_page(&f, BLKIF_OP_WRITE, 1, 0, 0);
    fe_rw_page(&f, BLKIF_OP_WRITE_BARRIER, 2, 0, 0);
    fe_discard(&f, 3, 0, 8, false);
    fe_push(&f);
    expect_all(&b, &f, 3, BLKIF_RSP_ERROR);
    fe_rw_page(&f, BLKIF_OP_READ, 4, 0, 0);
    fe_push(&f);
    expect_all(&b, &f, 1, BLKIF_RSP_OKAY);
    rig_down(&b, &f);
}

/* Stop with the whole ring in flight: every request is drained first, and
 * afterwards the guest can end access to every grant.  The counters the
 * ring hands over as it goes count every request's completion, those of
 * the drain included (a latency is recorded as a request is answered). */
static void test_stop_inflight(unsigned persistent)
{
    struct fe f;
    struct be b;
    struct fe_seg segs[11];
    unsigned i, k;

    printf("stop with I/O in flight, persistent %u\n", persistent);
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = persistent))
        return;
    for (i = 0; i < 32; i++) {
        for (k = 0; k < 11; k++)
            segs[k] = (struct fe_seg){ f.ref[(i * 11 + k) % FE_NPAGES], 0, 7 };
        fe_rw(&f, i % 2 ? BLKIF_OP_WRITE : BLKIF_OP_READ, i, i * 88u, segs, 11);
    }
    fe_push(&f);
    /* One iteration: requests parsed and handed to the kernel; their
     * completions are not reaped yet. */
    ev_run(b.loop, EVRUN_NOWAIT);
    CHECK(xbd_ring_get_stats(b.ring)->inflight > 0);
    be_stop(&b);
    CHECK(!b.drained);                  /* waits for the I/O */
    CHECK_EQ(b.counted_calls, 0);
    CHECK(be_wait_drained(&b, 10));
    CHECK_EQ(fe_pending_rsp(&f), 32);   /* every request was answered */
    CHECK_EQ(b.counted_calls, 1);
    CHECK(!b.counted_after_drained);
    CHECK_EQ(b.final.rd_req + b.final.wr_req, 32);
    CHECK_EQ(b.final.lat[XBD_LAT_READ].count + b.final.lat[XBD_LAT_WRITE].count, 32);
    CHECK_EQ(b.final.inflight, 0);
    CHECK_EQ(xsg_grants_in_use(f.d), 0);
    for (i = 0; i < FE_NPAGES; i++)
        CHECK_EQ(xsg_end_access(f.d, f.ref[i]), 0);
    CHECK_EQ(xsg_end_access(f.d, f.ring_refs[0]), 0);
    rig_down(&b, &f);
}

static void test_fatal(void)
{
    struct fe f;
    struct be b;

    printf("req_prod more than a ring ahead is fatal\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    fe_rw_page(&f, BLKIF_OP_READ, 1, 0, 0);
    fe_push(&f);
    expect_all(&b, &f, 1, BLKIF_RSP_OKAY);
    b.stop_on_fatal = true;
    f.fr.sring->req_prod += 1000;
    xsg_evtchn_notify(f.d, f.port);
    CHECK(run_until(&b, fe_fatal_seen, NULL, 10));
    CHECK_EQ(b.fatal_calls, 1);
    CHECK(b.drained);                   /* stopped from inside the callback */
    CHECK_EQ(xsg_grants_in_use(f.d), 0);
    rig_down(&b, &f);
}

static void test_bad_ring_ref(void)
{
    struct fe f;
    struct be b;

    printf("a ring that cannot be mapped\n");
    fe_open(&f, rig_domid(), XBD_PROTO_NATIVE, 1);
    f.ring_refs[1] = 999;              /* not a grant */
    be_open(&b, &f, RIG_SECTORS, true, 0, 0);
    CHECK(b.ring == NULL);
    CHECK_EQ(xsg_grants_in_use(f.d), 0);
    CHECK_EQ(xsg_evtchn_is_connected(f.d, f.port), 0);
    rig_down(&b, &f);
}

/* A frontend spamming notifications on an empty ring does not stop the
 * ring from serving, and each callback does a bounded amount of work. */
static void test_event_storm(void)
{
    struct fe f;
    struct be b;
    unsigned i;

    printf("notification storm\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    for (i = 0; i < 20000; i++)
        xsg_evtchn_notify(f.d, f.port);
    /* The ring has taken the storm before the request comes. */
    wait_stat(&b, evtchn_rx, 1);
    fe_rw_page(&f, BLKIF_OP_READ, 1, 0, 0);
    fe_push(&f);
    expect_all(&b, &f, 1, BLKIF_RSP_OKAY);
    rig_down(&b, &f);
}

/* A ring whose indexes do not start at 0 (the frontend kept it across a
 * backend restart): the backend attaches at rsp_prod, answers the request
 * the previous instance left unanswered, then serves new ones in the right
 * slots; a ring claiming more outstanding requests than slots is refused. */
static void test_reattach(void)
{
    struct fe f;
    struct be b;

    printf("attach to a ring with indexes in use\n");
    fe_open(&f, rig_domid(), XBD_PROTO_X86_64, 0);
    f.fr.sring->req_prod = f.fr.sring->rsp_prod = 1000;
    f.fr.sring->req_event = f.fr.sring->rsp_event = 1001;
    f.fr.req_prod_pvt = f.fr.rsp_cons = 1000;
    /* Left unanswered by the previous backend instance. */
    fe_rw_page(&f, BLKIF_OP_READ, 77, 0, 0);
    f.fr.sring->req_prod = f.fr.req_prod_pvt;
    if (!rig_attach(&b, &f, .persistent = true))
        return;
    expect_one(&b, &f, 77, BLKIF_OP_READ, BLKIF_RSP_OKAY);
    CHECK_EQ(f.fr.sring->rsp_prod, 1001);
    fe_rw_page(&f, BLKIF_OP_READ, 78, 8, 0);
    fe_push(&f);
    expect_one(&b, &f, 78, BLKIF_OP_READ, BLKIF_RSP_OKAY);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->rd_req, 2);
    rig_down(&b, &f);

    /* The previous instance pushed responses but died before notifying:
     * attaching must notify, or the frontend never looks again. */
    fe_open(&f, rig_domid(), XBD_PROTO_X86_64, 0);
    f.fr.sring->req_prod = f.fr.sring->rsp_prod = 500;
    f.fr.sring->rsp_event = 490;       /* the frontend wants an event */
    f.fr.req_prod_pvt = 500;
    f.fr.rsp_cons = 489;
    if (!rig_attach(&b, &f, .persistent = true))
        return;
    wait_stat(&b, evtchn_tx, 1);
    CHECK_EQ(xsg_evtchn_pending(f.d), (int)f.port);
    rig_down(&b, &f);

    fe_open(&f, rig_domid(), XBD_PROTO_X86_64, 0);
    f.fr.sring->rsp_prod = 5;
    f.fr.sring->req_prod = 5 + 33;     /* one page holds 32 */
    be_open(&b, &f, RIG_SECTORS, true, 0, 0);
    CHECK(b.ring == NULL);
    CHECK_EQ(xsg_grants_in_use(f.d), 0);
    rig_down(&b, &f);
}

int main(int argc, char **argv)
{
    rig_init(argc, argv);
    test_abis();
    test_multipage();
    test_persistent_reuse();
    test_idle_purge();
    test_copy_path();
    test_lru_bound();
    test_batch_bad_ref();
    test_error_releases();
    test_ro_indirect_as_data();
    test_invalid(0);
    test_invalid(1);
    test_indirect(0);
    test_indirect(1);
    test_flush_barrier_discard();
    test_barrier_order();
    test_readonly();
    test_resize();
    test_map_burst_yields();
    test_failed_maps_yield();
    test_resize_barrier();
    test_direct();
    test_stop_inflight(0);
    test_stop_inflight(1);
    test_fatal();
    test_bad_ring_ref();
    test_event_storm();
    test_reattach();
    return check_result("test-ring");
}
