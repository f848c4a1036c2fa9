/*
 * test-gcache.c - the persistent grant cache (src/grant_cache.c) on the
 * simulated host, where the guest can see which of its grants are mapped.
 *
 * Proves: a grant is mapped once and reused; a full cache refuses new
 * grants without an error (the caller then copies) and says so once; a
 * grant the guest never granted fails with an error and leaves nothing
 * behind; a grant pinned by a request is never unmapped by a purge; the
 * LRU purge unmaps least recently released grants first; the idle purge
 * unmaps exactly the grants released before its cut-off, by release time
 * (not by first use); free unmaps everything.  With a host-wide reserve
 * (src/budget.h), mappings of every cache count against it, a cache whose
 * own table has room refuses a new grant once the reserve is used up (the
 * caller copies: budget_full), and unmapping gives the reserve back.
 * A hostile request mix (duplicate, 0, huge, never granted and read-only
 * refs, list pages, purges of every kind) never maps more than the share,
 * never unmaps a held page, never hands out a read-only page as data.
 * A request's new grants (xbd_gcache_get_segs) are mapped by one call
 * as one group, each distinct ref once; purges take a group whole, never
 * one with a page in use, by one unmap call; the budget counts the pages
 * of groups; a batch with a bad ref maps nothing (page by page the good
 * ones still map).  Each segment of a request costs one hash lookup, and a
 * request whose map call fails half-way holds exactly its cached pages,
 * once per segment, and gives them all back.
 * Handed over to the unmap worker (src/unmap_worker.c), every mapping
 * stays mapped and reserved until the worker unmapped it in its thread;
 * then the loop gets the reserve back and the owner's callback.  The
 * room kept for indirect pages is held by the cached pages that served
 * as one, and given back when they are purged.  The
 * memory plan of a queue (xbd_ring_plan) fits its share, with floors.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/mman.h>
#include <xengnttab.h>

#include "check.h"
#include "fe.h"
#include "budget.h"
#include "grant_cache.h"
#include "request.h"
#include "unmap_worker.h"
#include <ev.h>

#define NREF 6

struct rig {
    xsg_dom *d;
    xengnttab_handle *xgt;
    struct xbd_ring_stats st;
    uint32_t gfn[NREF];
    grant_ref_t ref[NREF];
};

static void rig_open(struct rig *r, domid_t domid)
{
    unsigned i;

    memset(r, 0, sizeof(*r));
    r->d = xsg_dom_create(domid, 64, 128);
    r->xgt = xengnttab_open(NULL, 0);
    if (!r->d || !r->xgt) {
        perror("FATAL: rig");
        exit(1);
    }
    for (i = 0; i < NREF; i++) {
        if (xsg_page_alloc(r->d, &r->gfn[i]) < 0 ||
            xsg_grant(r->d, 0, r->gfn[i], false, &r->ref[i]) < 0) {
            perror("FATAL: grant");
            exit(1);
        }
        memset(xsg_page(r->d, r->gfn[i]), 'a' + i, XSG_PAGE_SIZE);
    }
}

static void rig_close(struct rig *r)
{
    CHECK_EQ(xsg_grants_in_use(r->d), 0);
    xengnttab_close(r->xgt);
    xsg_dom_destroy(r->d);
}

static uint64_t map_calls(struct rig *r)
{
    struct xsg_grant_stats s;

    if (xsg_grant_stats(r->d, &s) < 0)
        return ~0ull;
    return s.map_calls;
}

#define MAXSEG 16

/* The pages of a request naming refs[0..n) (whole pages), as ring.c
 * takes them: g[i] held, or NULL (copied).  Returns how many are held;
 * *err is the map call's. */
static unsigned get_req(struct xbd_gcache *c, const grant_ref_t *refs, unsigned n,
                        struct xbd_gnt **g, int *err)
{
    struct xbd_seg seg[MAXSEG];
    grant_ref_t scratch[MAXSEG];
    unsigned i, held = 0;

    for (i = 0; i < n; i++)
        seg[i] = (struct xbd_seg){ refs[i], 0, 7 };
    *err = xbd_gcache_get_segs(c, seg, n, g, scratch);
    for (i = 0; i < n; i++)
        held += g[i] != NULL;
    return held;
}

static void put_req(struct xbd_gcache *c, struct xbd_gnt **g, unsigned n, double t)
{
    for (unsigned i = 0; i < n; i++)
        if (g[i])
            xbd_gcache_put(c, g[i], t);
}

/* A one-page request. */
static struct xbd_gnt *get1(struct xbd_gcache *c, grant_ref_t ref, int *err)
{
    struct xbd_gnt *g;

    get_req(c, &ref, 1, &g, err);
    return g;
}

static struct xbd_gnt *get(struct xbd_gcache *c, grant_ref_t ref)
{
    int err = -1;
    struct xbd_gnt *g = get1(c, ref, &err);

    CHECK(g != NULL);
    CHECK_EQ(err, 0);
    return g;
}

static void test_map_once(void)
{
    struct rig r;
    struct xbd_gcache *c;
    struct xbd_gnt *g, *g2;
    unsigned i;

    printf("mapped once, reused, the guest's page\n");
    rig_open(&r, 31);
    c = xbd_gcache_new(r.xgt, 31, 4, &r.st);
    g = get(c, r.ref[0]);
    CHECK_EQ(map_calls(&r), 1);
    CHECK_EQ(xsg_grant_in_use(r.d, r.ref[0]), 1);
    CHECK(((char *)xbd_gnt_page(g))[100] == 'a');
    /* Writable, and the guest sees the write (same frame). */
    ((char *)xbd_gnt_page(g))[7] = 'Z';
    CHECK(((char *)xsg_page(r.d, r.gfn[0]))[7] == 'Z');
    xbd_gcache_put(c, g, 2);
    for (i = 0; i < 5; i++) {
        g2 = get(c, r.ref[0]);
        CHECK(g2 == g);
        xbd_gcache_put(c, g2, 3 + i);
    }
    CHECK_EQ(map_calls(&r), 1);
    CHECK_EQ(xbd_gcache_count(c), 1);
    CHECK_EQ(r.st.pgrants_mapped, 1);
    CHECK_EQ(r.st.pgrant_map_calls, 1);
    /* Still mapped between requests: that is the point. */
    CHECK_EQ(xsg_grant_in_use(r.d, r.ref[0]), 1);
    xbd_gcache_free(c);
    CHECK_EQ(xsg_grant_in_use(r.d, r.ref[0]), 0);
    rig_close(&r);
}

static void test_full_and_errors(void)
{
    struct rig r;
    struct xbd_gcache *c;
    struct xbd_gnt *g[3];
    int err = -1;
    unsigned i;

    printf("full cache: copy hint, no error; ungranted ref: error\n");
    rig_open(&r, 32);
    c = xbd_gcache_new(r.xgt, 32, 3, &r.st);
    CHECK(!xbd_gcache_take_full_hint(c));
    for (i = 0; i < 3; i++)
        g[i] = get(c, r.ref[i]);
    CHECK(get1(c, r.ref[3], &err) == NULL);
    CHECK_EQ(err, 0);
    CHECK(xbd_gcache_take_full_hint(c));
    CHECK(!xbd_gcache_take_full_hint(c));          /* reset by the read */
    CHECK_EQ(xsg_grant_in_use(r.d, r.ref[3]), 0);
    CHECK_EQ(xbd_gcache_count(c), 3);
    /* A cached ref is still served when full. */
    CHECK(get(c, r.ref[1]) == g[1]);
    xbd_gcache_put(c, g[1], 2);
    for (i = 0; i < 3; i++)
        xbd_gcache_put(c, g[i], 2);

    /* Room again, but the guest never granted ref 1000: error, no entry. */
    CHECK_EQ(xbd_gcache_purge_lru(c, 1), 1);
    err = 0;
    CHECK(get1(c, 1000, &err) == NULL);
    CHECK(err != 0);
    CHECK_EQ(xbd_gcache_count(c), 2);
    CHECK_EQ(r.st.pgrants_mapped, 2);
    /* ... and a retry fails again rather than finding a half entry. */
    err = 0;
    CHECK(get1(c, 1000, &err) == NULL);
    CHECK(err != 0);
    xbd_gcache_free(c);
    rig_close(&r);
}

static void test_purges(void)
{
    struct rig r;
    struct xbd_gcache *c;
    struct xbd_gnt *g[NREF];
    unsigned i;

    printf("LRU and idle purges: release order, pins respected\n");
    rig_open(&r, 33);
    c = xbd_gcache_new(r.xgt, 33, NREF, &r.st);
    /* Pinned in order 0..5 at t=10; released out of order: 3 at 11, 1 at
     * 12, 0 at 20 (held long: first use was the earliest), 4 at 21;
     * 2 and 5 stay pinned. */
    for (i = 0; i < NREF; i++)
        g[i] = get(c, r.ref[i]);
    xbd_gcache_put(c, g[3], 11);
    xbd_gcache_put(c, g[1], 12);
    xbd_gcache_put(c, g[0], 20);
    xbd_gcache_put(c, g[4], 21);

    /* Idle cut-off 15: 3 and 1 go; 0 was in use until 20 and stays. */
    CHECK_EQ(xbd_gcache_purge_idle(c, 15), 2);
    CHECK_EQ(xsg_grant_in_use(r.d, r.ref[3]), 0);
    CHECK_EQ(xsg_grant_in_use(r.d, r.ref[1]), 0);
    CHECK_EQ(xsg_grant_in_use(r.d, r.ref[0]), 1);
    CHECK_EQ(xbd_gcache_count(c), 4);
    CHECK_EQ(r.st.pgrants_mapped, 4);

    /* LRU: of the unpinned (0 released at 20, 4 at 21), 0 goes first. */
    CHECK_EQ(xbd_gcache_purge_lru(c, 1), 1);
    CHECK_EQ(xsg_grant_in_use(r.d, r.ref[0]), 0);
    CHECK_EQ(xsg_grant_in_use(r.d, r.ref[4]), 1);
    /* Asked for more than there are: only unpinned ones go. */
    CHECK_EQ(xbd_gcache_purge_lru(c, 100), 1);
    CHECK_EQ(xsg_grant_in_use(r.d, r.ref[4]), 0);
    CHECK_EQ(xbd_gcache_purge_idle(c, 1e9), 0);
    CHECK_EQ(xsg_grant_in_use(r.d, r.ref[2]), 1);
    CHECK_EQ(xsg_grant_in_use(r.d, r.ref[5]), 1);
    CHECK_EQ(xbd_gcache_count(c), 2);

    /* A purged grant is mapped again on its next use, same content. */
    g[3] = get(c, r.ref[3]);
    CHECK(((char *)xbd_gnt_page(g[3]))[0] == 'a' + 3);
    CHECK_EQ(xsg_grant_in_use(r.d, r.ref[3]), 1);
    xbd_gcache_put(c, g[3], 30);
    xbd_gcache_put(c, g[2], 30);
    xbd_gcache_put(c, g[5], 30);
    CHECK_EQ(xsg_grants_in_use(r.d), 3);
    xbd_gcache_free(c);
    CHECK_EQ(xsg_grants_in_use(r.d), 0);
    rig_close(&r);
}

/* The purge of a full cache (ring.c purge_cb) takes only grants unused
 * since the previous tick, at most n: a grant the guest keeps using is
 * never unmapped to be mapped again. */
static void test_purge_stale(void)
{
    struct rig r;
    struct xbd_gcache *c;
    struct xbd_gnt *g[NREF];
    unsigned i;

    printf("stale purge: only grants unused since the cut-off, at most n\n");
    rig_open(&r, 34);
    c = xbd_gcache_new(r.xgt, 34, NREF, &r.st);
    for (i = 0; i < NREF; i++)
        g[i] = get(c, r.ref[i]);
    /* 0, 1, 2 last used at 5, 6, 7; 3, 4, 5 at 20. */
    for (i = 0; i < NREF; i++)
        xbd_gcache_put(c, g[i], i < 3 ? 5.0 + i : 20.0);
    CHECK_EQ(xbd_gcache_purge_stale(c, 2, 10), 2);     /* bounded by n */
    CHECK_EQ(xsg_grant_in_use(r.d, r.ref[0]), 0);
    CHECK_EQ(xsg_grant_in_use(r.d, r.ref[1]), 0);
    CHECK_EQ(xbd_gcache_purge_stale(c, 100, 10), 1);   /* bounded by age */
    CHECK_EQ(xsg_grant_in_use(r.d, r.ref[2]), 0);
    /* Everything left was used at 20: nothing goes, however many asked. */
    CHECK_EQ(xbd_gcache_purge_stale(c, 100, 10), 0);
    CHECK_EQ(xbd_gcache_count(c), NREF - 3);
    CHECK_EQ(map_calls(&r), NREF);
    xbd_gcache_free(c);
    rig_close(&r);
}

static void test_host_reserve(void)
{
    struct rig r;
    struct xbd_map_reserve m = { .max_map_count = 10, .limit = 3 };
    struct xbd_gcache *a, *b;
    struct xbd_gnt *g[3];
    int err = -1;

    printf("host-wide reserve shared by two caches\n");
    rig_open(&r, 33);
    a = xbd_gcache_new(r.xgt, 33, 4, &r.st);
    b = xbd_gcache_new(r.xgt, 33, 4, &r.st);
    xbd_gcache_set_reserve(a, &m);
    xbd_gcache_set_reserve(b, &m);
    g[0] = get(a, r.ref[0]);
    g[1] = get(a, r.ref[1]);
    g[2] = get(b, r.ref[2]);
    CHECK_EQ(m.used, 3);
    /* b has room (1 of 4), the host has none: copy, no error, no map. */
    CHECK(get1(b, r.ref[3], &err) == NULL);
    CHECK_EQ(err, 0);
    CHECK_EQ(r.st.pgrant_budget_full, 1);
    CHECK_EQ(r.st.pgrant_map_calls, 3);
    CHECK(xbd_gcache_take_full_hint(b));
    /* a's purge gives room back to b. */
    xbd_gcache_put(a, g[0], 1);
    CHECK_EQ(xbd_gcache_purge_lru(a, 1), 1);
    CHECK_EQ(m.used, 2);
    xbd_gcache_put(b, get(b, r.ref[3]), 2);
    CHECK_EQ(m.used, 3);
    /* A map that fails gives its reservation back. */
    xbd_gcache_put(b, g[2], 3);
    CHECK_EQ(xbd_gcache_purge_lru(b, 1), 1);
    CHECK(get1(b, 5, &err) == NULL);     /* never granted */
    CHECK(err != 0);
    CHECK_EQ(m.used, 2);
    xbd_gcache_put(a, g[1], 4);
    xbd_gcache_free(a);
    xbd_gcache_free(b);
    CHECK_EQ(m.used, 0);
    rig_close(&r);
}

static struct xsg_grant_stats gstats(struct rig *r)
{
    struct xsg_grant_stats s;

    memset(&s, 0, sizeof(s));
    CHECK_EQ(xsg_grant_stats(r->d, &s), 0);
    return s;
}

/* Pin refs[0..n) (all cached), then release them at <t>. */
static void use_all(struct xbd_gcache *c, const grant_ref_t *refs, unsigned n, double t)
{
    struct xbd_gnt *g[16];

    for (unsigned i = 0; i < n; i++)
        g[i] = get(c, refs[i]);
    for (unsigned i = 0; i < n; i++)
        xbd_gcache_put(c, g[i], t);
}

/* A request's new grants: one map call for the distinct refs not cached,
 * entered as one group; the pages are right; purges take a group only
 * whole and only when none of its pages is held; unmapping it is one
 * call. */
static void test_group_map(void)
{
    struct rig r;
    struct xbd_gcache *c;
    struct xsg_grant_stats s0, s1;
    struct xbd_gnt *held, *g[9];
    static const unsigned idx[9] = { 0, 1, 0, 2, 4, 3, 1, 3, 2 };
    grant_ref_t req[9];
    int err = -1;

    printf("a request's new grants are one mapping, unmapped whole\n");
    rig_open(&r, 35);
    c = xbd_gcache_new(r.xgt, 35, 16, &r.st);
    use_all(c, &r.ref[4], 1, 1);                 /* ref 4 cached already */
    s0 = gstats(&r);
    /* refs 0..3, each twice, and the cached ref 4: 4 pages, 1 call. */
    for (unsigned i = 0; i < 9; i++)
        req[i] = r.ref[idx[i]];
    CHECK_EQ(get_req(c, req, 9, g, &err), 9);
    CHECK_EQ(err, 0);
    s1 = gstats(&r);
    CHECK_EQ(s1.map_calls - s0.map_calls, 1);
    CHECK_EQ(s1.pages_mapped - s0.pages_mapped, 4);
    CHECK_EQ(xbd_gcache_count(c), 5);
    CHECK_EQ(r.st.pgrants_mapped, 5);
    CHECK_EQ(r.st.pgrant_map_calls, 2);
    /* Each segment holds the guest's page of its ref, a page named
     * twice is held twice; the first segment naming a new page counts a
     * miss, the others (and the cached ref 4) hits; one lookup each. */
    for (unsigned i = 0; i < 9; i++)
        CHECK(((unsigned char *)xbd_gnt_page(g[i]))[100] == 'a' + idx[i]);
    CHECK(g[0] == g[2] && g[1] == g[6] && g[3] == g[8] && g[5] == g[7]);
    CHECK_EQ(r.st.pgrant_misses, 1 + 4);
    CHECK_EQ(r.st.pgrant_hits, 1 + 4);
    CHECK_EQ(r.st.pgrant_lookups, 1 + 9);
    put_req(c, g, 9, 2);
    /* Nothing new: no call. */
    CHECK_EQ(get_req(c, req, 8, g, &err), 8);
    CHECK_EQ(err, 0);
    CHECK_EQ(gstats(&r).map_calls, s1.map_calls);
    CHECK_EQ(r.st.pgrant_lookups, 1 + 9 + 8);
    put_req(c, g, 8, 2);
    /* One page of the group held: an LRU purge takes the other group
     * (ref 4 alone) and leaves the held one, all 4 pages mapped. */
    held = get(c, r.ref[2]);
    CHECK_EQ(xbd_gcache_purge_lru(c, 100), 1);
    CHECK_EQ(xbd_gcache_count(c), 4);
    CHECK_EQ(xsg_grants_in_use(r.d), 4);
    CHECK_EQ(xbd_gcache_purge_idle(c, 1e9), 0);
    /* Released: the stale purge (1 page wanted) takes the whole group,
     * by one unmap call. */
    xbd_gcache_put(c, held, 3);
    s0 = gstats(&r);
    CHECK_EQ(xbd_gcache_purge_stale(c, 1, 2.5), 0);   /* used at 3: not stale */
    CHECK_EQ(xbd_gcache_purge_stale(c, 1, 10), 4);
    s1 = gstats(&r);
    CHECK_EQ(s1.unmap_calls - s0.unmap_calls, 1);
    CHECK_EQ(s1.pages_unmapped - s0.pages_unmapped, 4);
    CHECK_EQ(xbd_gcache_count(c), 0);
    CHECK_EQ(r.st.pgrant_purges, 5);
    CHECK_EQ(xsg_grants_in_use(r.d), 0);
    xbd_gcache_free(c);
    rig_close(&r);
}

/* The budget counts pages, whatever their grouping: a group gets no more
 * pages than the cache's data share and the host reserve leave; a batch
 * with a bad ref maps nothing, and page by page the good ones still map. */
static void test_group_budget(void)
{
    struct rig r;
    struct xbd_map_reserve m = { .max_map_count = 100, .limit = 3 };
    struct xbd_gcache *c;
    struct xbd_gnt *g[6];
    grant_ref_t req[6];
    int err = -1;

    printf("groups and the budget, a bad ref in a batch\n");
    rig_open(&r, 36);
    c = xbd_gcache_new(r.xgt, 36, 5, &r.st);
    xbd_gcache_set_headroom(c, 1);               /* data share: 4 */
    xbd_gcache_set_reserve(c, &m);
    for (unsigned i = 0; i < 6; i++)
        req[i] = r.ref[i];
    CHECK_EQ(get_req(c, req, 6, g, &err), 3);   /* the reserve */
    CHECK_EQ(err, 0);
    CHECK(xbd_gcache_take_full_hint(c));
    CHECK_EQ(r.st.pgrant_budget_full, 3);
    put_req(c, g, 6, 1);
    CHECK_EQ(m.used, 3);
    CHECK_EQ(xbd_gcache_count(c), 3);
    m.limit = 50;
    CHECK_EQ(get_req(c, req, 6, g, &err), 4);   /* the share: one more */
    put_req(c, g, 6, 1);
    CHECK_EQ(xbd_gcache_count(c), 4);
    CHECK_EQ(get_req(c, req, 6, g, &err), 4);
    CHECK_EQ(err, 0);
    CHECK(g[4] == NULL && g[5] == NULL);        /* copy them */
    put_req(c, g, 6, 1);
    CHECK(xbd_gcache_take_full_hint(c));
    CHECK_EQ(xbd_gcache_purge_lru(c, 100), 4);
    CHECK_EQ(m.used, 0);
    /* A never-granted ref fails the whole call: nothing stays mapped or
     * reserved, and the good page then maps on its own. */
    req[0] = r.ref[5];
    req[1] = 1000;
    CHECK_EQ(get_req(c, req, 2, g, &err), 0);
    CHECK(err != 0);
    CHECK_EQ(xbd_gcache_count(c), 0);
    CHECK_EQ(m.used, 0);
    CHECK_EQ(xsg_grants_in_use(r.d), 0);
    xbd_gcache_put(c, get(c, r.ref[5]), 1);
    CHECK(get1(c, 1000, &err) == NULL && err != 0);
    CHECK_EQ(xbd_gcache_count(c), 1);
    xbd_gcache_free(c);
    CHECK_EQ(m.used, 0);
    rig_close(&r);
}

/* A failed map call counts in map_failures the segments whose ref it
 * named, and in budget_full those it left out for lack of room: each
 * segment once, in one of the two.  (ring.c once counted every segment
 * left without a page as a map failure.) */
static void test_failure_counts(void)
{
    struct rig r;
    struct xbd_gcache *c;
    struct xbd_gnt *g[7];
    int err = -1;

    printf("a failed map call: map_failures for its refs, budget_full for the rest\n");
    rig_open(&r, 37);
    c = xbd_gcache_new(r.xgt, 37, 5, &r.st);
    xbd_gcache_set_headroom(c, 1);               /* data share: 4 */
    /* Ref 3 is never granted (the simulated guest grants from 8 up) and
     * sorts first: the call maps the 4 lowest new refs (the data share),
     * 3, ref[0], ref[1], ref[2], and fails; ref[3] and ref[4] find no
     * room.  ref[0] is named twice. */
    grant_ref_t req[7] = { r.ref[0], 3, r.ref[1], r.ref[0], r.ref[2], r.ref[3], r.ref[4] };
    CHECK(r.ref[0] > 3 && r.ref[0] < r.ref[1] && r.ref[2] < r.ref[3]);
    CHECK_EQ(get_req(c, req, 7, g, &err), 0);
    CHECK(err != 0);
    CHECK_EQ(r.st.pgrant_map_failures, 5);
    CHECK_EQ(r.st.pgrant_budget_full, 2);
    CHECK_EQ(r.st.pgrant_misses, 7);
    CHECK_EQ(xbd_gcache_count(c), 0);
    CHECK_EQ(xsg_grants_in_use(r.d), 0);
    /* Without the bad ref the same pages map, up to the share. */
    CHECK_EQ(get_req(c, req + 2, 5, g, &err), 4);
    CHECK_EQ(err, 0);
    CHECK_EQ(r.st.pgrant_map_failures, 5);
    CHECK_EQ(r.st.pgrant_budget_full, 3);
    put_req(c, g, 5, 1);
    xbd_gcache_free(c);
    rig_close(&r);
}

/* One hash lookup per segment (ring.c once looked a request's pages up
 * twice: to map the new ones, then to pin each), and a request whose map
 * call fails half-way (its cached pages pinned, its new ones refused
 * whole for a never-granted ref among them) holds each cached page once
 * per segment naming it and nothing else: released, the group is free
 * to purge again, whole. */
static void test_one_lookup(void)
{
    struct rig r;
    struct xbd_gcache *c;
    struct xbd_gnt *g[7];
    grant_ref_t req[7];
    int err = -1;

    printf("one lookup per segment; a map failing half-way releases what it took\n");
    rig_open(&r, 40);
    c = xbd_gcache_new(r.xgt, 40, 16, &r.st);
    for (unsigned i = 0; i < 4; i++)
        req[i] = r.ref[i];
    CHECK_EQ(get_req(c, req, 4, g, &err), 4);
    CHECK_EQ(r.st.pgrant_lookups, 4);
    put_req(c, g, 4, 1);
    /* Steady state: one lookup per segment, no map call. */
    CHECK_EQ(get_req(c, req, 4, g, &err), 4);
    CHECK_EQ(r.st.pgrant_lookups, 4 + 4);
    CHECK_EQ(r.st.pgrant_map_calls, 1);
    put_req(c, g, 4, 2);
    /* Cached 0 (twice) and 1, new 4 (twice) and 5, never granted 1000. */
    req[0] = r.ref[0];
    req[1] = r.ref[4];
    req[2] = 1000;
    req[3] = r.ref[1];
    req[4] = r.ref[0];
    req[5] = r.ref[5];
    req[6] = r.ref[4];
    CHECK_EQ(get_req(c, req, 7, g, &err), 3);
    CHECK(err != 0);
    CHECK_EQ(r.st.pgrant_lookups, 4 + 4 + 7);
    CHECK_EQ(r.st.pgrant_map_calls, 2);            /* refused whole */
    CHECK(g[0] && g[0] == g[4] && g[3] && g[3] != g[0]);
    CHECK(!g[1] && !g[2] && !g[5] && !g[6]);
    CHECK_EQ(xbd_gcache_count(c), 4);
    CHECK_EQ(xsg_grants_in_use(r.d), 4);
    CHECK_EQ(xbd_gcache_purge_lru(c, 100), 0);     /* held: stays */
    put_req(c, g, 7, 3);
    CHECK_EQ(xbd_gcache_purge_lru(c, 100), 4);     /* released: goes whole */
    CHECK_EQ(xsg_grants_in_use(r.d), 0);
    xbd_gcache_free(c);
    rig_close(&r);
}

static void done_cb(void *opaque)
{
    (*(unsigned *)opaque)++;
}

static void test_hand_over(void)
{
    struct rig r;
    struct xbd_map_reserve m = { .max_map_count = 100, .limit = 50 };
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct xbd_unmapper *u = xbd_unmapper_new(loop);
    xengnttab_handle *own = xengnttab_open(NULL, 0);
    struct xbd_unmap_batch *b;
    struct xbd_gcache *c;
    struct xsg_grant_stats s0;
    grant_ref_t refs[4];
    struct xbd_gnt *g[4];
    unsigned i, done = 0, spins = 0;
    int err = -1;

    printf("hand over to the unmap worker\n");
    rig_open(&r, 34);
    CHECK(loop && u && own);
    c = xbd_gcache_new(own, 34, 8, &r.st);
    xbd_gcache_set_reserve(c, &m);
    /* Refs 0..3 as one group, 4 and 5 on their own: 3 mappings. */
    for (i = 0; i < 4; i++)
        refs[i] = r.ref[i];
    CHECK_EQ(get_req(c, refs, 4, g, &err), 4);
    put_req(c, g, 4, 0);
    for (i = 0; i < NREF; i++)
        xbd_gcache_put(c, get(c, r.ref[i]), i);
    CHECK_EQ(xsg_grants_in_use(r.d), NREF);
    s0 = gstats(&r);
    b = xbd_unmap_batch_new("test q0", own, xbd_gcache_count(c));
    CHECK(b != NULL);
    xbd_gcache_hand_over(c, b);
    xbd_unmap_batch_set_reserve(b, &m);
    /* Still mapped and reserved: nothing unmapped on this thread. */
    CHECK_EQ(xsg_grants_in_use(r.d), NREF);
    CHECK_EQ(m.used, NREF);
    CHECK_EQ(r.st.pgrants_mapped, 0);
    xbd_unmapper_submit(u, b, done_cb, &done);
    CHECK_EQ(xbd_unmapper_pending(u), 1);
    while (!done && spins++ < 100000)
        ev_run(loop, EVRUN_ONCE);
    CHECK_EQ(done, 1);
    CHECK_EQ(xbd_unmapper_pending(u), 0);
    CHECK_EQ(xsg_grants_in_use(r.d), 0);
    CHECK_EQ(m.used, 0);
    CHECK_EQ(gstats(&r).unmap_calls - s0.unmap_calls, 3);  /* one per mapping */
    CHECK_EQ(gstats(&r).pages_unmapped - s0.pages_unmapped, NREF);
    xbd_unmapper_free(u);
    CHECK_EQ(done, 1);
    ev_loop_destroy(loop);
    rig_close(&r);
}

/* Purges hand their unmaps to the worker: the pages leave the cache at
 * once, stay reserved until the worker unmapped them (one call per
 * mapping), and the handle stays open for the ring's next maps. */
static void test_purge_worker(void)
{
    struct rig r;
    struct xbd_map_reserve m = { .max_map_count = 100, .limit = 50 };
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct xbd_unmapper *u = xbd_unmapper_new(loop);
    struct xsg_grant_stats s0;
    struct xbd_gcache *c;
    grant_ref_t refs[4];
    struct xbd_gnt *g[4];
    unsigned i, spins = 0;
    int err = -1;

    printf("purges unmap through the worker\n");
    rig_open(&r, 37);
    CHECK(loop && u);
    c = xbd_gcache_new(r.xgt, 37, 8, &r.st);
    xbd_gcache_set_reserve(c, &m);
    xbd_gcache_set_unmapper(c, u, "test q1");
    for (i = 0; i < 4; i++)
        refs[i] = r.ref[i];
    CHECK_EQ(get_req(c, refs, 4, g, &err), 4);
    put_req(c, g, 4, 1);
    for (i = 0; i < NREF; i++)
        xbd_gcache_put(c, get(c, r.ref[i]), i < 4 ? 1 : 20);
    s0 = gstats(&r);
    CHECK_EQ(xbd_gcache_purge_idle(c, 10), 4);    /* the group, not 4 and 5 */
    CHECK_EQ(xbd_gcache_count(c), 2);
    CHECK_EQ(m.used, NREF);                       /* until the worker is done */
    CHECK_EQ(xbd_unmapper_pending(u), 0);         /* not a stopped ring */
    while (m.used > 2 && spins++ < 100000)
        ev_run(loop, EVRUN_ONCE);
    CHECK_EQ(m.used, 2);
    CHECK_EQ(xsg_grants_in_use(r.d), 2);
    CHECK_EQ(gstats(&r).unmap_calls - s0.unmap_calls, 1);
    /* The ring's handle still maps. */
    xbd_gcache_put(c, get(c, r.ref[0]), 30);
    CHECK_EQ(xbd_gcache_purge_lru(c, 100), 3);
    spins = 0;
    while (m.used && spins++ < 100000)
        ev_run(loop, EVRUN_ONCE);
    CHECK_EQ(m.used, 0);
    CHECK_EQ(xsg_grants_in_use(r.d), 0);
    xbd_gcache_free(c);
    xbd_unmapper_free(u);
    ev_loop_destroy(loop);
    rig_close(&r);
}

/* A purge handed to the worker does not give the ring its room back
 * before the worker unmapped the pages: until then they are still mapped
 * (gntdev, Xen's maptrack), and a guest that cycles through new refs each
 * purge interval must not hold more than its share at any time, however
 * slow the unmaps (XENSIM_GNTTAB_UNMAP_HOLD holds them).  Batch maps,
 * single maps and indirect maps all wait; copies serve the guest
 * meanwhile (NULL without error). */
static void test_purge_pending_share(void)
{
    struct rig r;
    struct xbd_map_reserve m = { .max_map_count = 100, .limit = 50 };
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct xbd_unmapper *u = xbd_unmapper_new(loop);
    char hold[] = "/tmp/test-gcache-hold.XXXXXX";
    struct xbd_gcache *c;
    grant_ref_t refs[4];
    struct xbd_gnt *g[4];
    unsigned i, spins = 0;
    int fd, err = -1;

    printf("a pending purge still counts in the ring's share\n");
    rig_open(&r, 38);
    CHECK(loop && u);
    fd = mkstemp(hold);
    CHECK(fd >= 0);
    close(fd);
    setenv("XENSIM_GNTTAB_UNMAP_HOLD", hold, 1);
    c = xbd_gcache_new(r.xgt, 38, 4, &r.st);
    xbd_gcache_set_reserve(c, &m);
    xbd_gcache_set_unmapper(c, u, "test q2");
    for (i = 0; i < 4; i++)
        refs[i] = r.ref[i];
    CHECK_EQ(get_req(c, refs, 4, g, &err), 4);
    put_req(c, g, 4, 1);
    CHECK_EQ(xbd_gcache_purge_idle(c, 10), 4);
    CHECK_EQ(xbd_gcache_count(c), 0);
    /* The worker holds the 4 pages: new refs go by copy. */
    refs[0] = r.ref[4];
    refs[1] = r.ref[5];
    CHECK_EQ(get_req(c, refs, 2, g, &err), 0);
    CHECK_EQ(err, 0);
    CHECK(get1(c, r.ref[4], &err) == NULL);
    CHECK_EQ(err, 0);
    CHECK(xbd_gcache_get_indirect(c, r.ref[5], &err) == NULL);
    CHECK_EQ(err, 0);
    CHECK_EQ(xsg_grants_in_use(r.d), 4);
    CHECK(xbd_gcache_take_full_hint(c));
    /* Unmapped: the room is back. */
    unlink(hold);
    while (m.used && spins++ < 100000)
        ev_run(loop, EVRUN_ONCE);
    CHECK_EQ(m.used, 0);
    CHECK_EQ(get_req(c, refs, 2, g, &err), 2);
    CHECK_EQ(xsg_grants_in_use(r.d), 2);
    /* A purge still with the worker when the cache goes (ring stop). */
    put_req(c, g, 2, 1);
    fd = open(hold, O_CREAT | O_WRONLY, 0600);
    CHECK(fd >= 0);
    close(fd);
    CHECK_EQ(xbd_gcache_purge_idle(c, 10), 2);
    xbd_gcache_free(c);
    unlink(hold);
    spins = 0;
    while (m.used && spins++ < 100000)
        ev_run(loop, EVRUN_ONCE);
    CHECK_EQ(m.used, 0);
    unsetenv("XENSIM_GNTTAB_UNMAP_HOLD");
    xbd_unmapper_free(u);
    ev_loop_destroy(loop);
    rig_close(&r);
}

/* A hostile guest's request mix against the cache, as ring.c drives it
 * (get_segs for a request's data pages, get_indirect() for list pages,
 * each request's pages released at once), with purges of
 * every kind in between, from a fixed seed: duplicate refs, refs never
 * granted, huge refs, read-only grants, more refs than fit.  After every
 * step: the pages mapped are the cache's count and never more than its
 * share, every page a request holds is still mapped and is the page of
 * its ref (readable, and writable unless got as a read-only list page),
 * each segment cost one lookup, and at the end nothing is left mapped. */
#define MIX_REFS 20
#define MIX_REQS 6
#define MIX_SEGS 12

static uint32_t mix_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

struct mix_req {
    unsigned n;
    struct xbd_gnt *g[MIX_SEGS + 1];
    unsigned idx[MIX_SEGS + 1];   /* into ref[]; MIX_REFS: not granted */
    bool list[MIX_SEGS + 1];      /* got by get_indirect */
};

static void mix_check_held(struct xsg_dom *d, const struct mix_req *q, const uint32_t *gfn)
{
    for (unsigned i = 0; i < q->n; i++) {
        unsigned char *p = xbd_gnt_page(q->g[i]);

        CHECK(q->idx[i] < MIX_REFS);
        if (q->idx[i] >= MIX_REFS)
            continue;
        CHECK(p[5] == (unsigned char)(0x40 + q->idx[i]));
        CHECK(((unsigned char *)xsg_page(d, gfn[q->idx[i]]))[5] == p[5]);
        if (!q->list[i])
            p[9] = p[5];            /* a SIGSEGV here: written through RO */
    }
}

static void mix_put(struct xbd_gcache *c, struct mix_req *q, double now)
{
    for (unsigned i = 0; i < q->n; i++)
        xbd_gcache_put(c, q->g[i], now);
    q->n = 0;
}

/* Wait for the worker's completions (not for time) until every page the
 * purges handed it is unmapped: the reserve then holds the cache's pages
 * only. */
static void unmaps_done(struct ev_loop *loop, const struct xbd_map_reserve *m,
                        const struct xbd_gcache *c)
{
    unsigned spins = 0;

    while (m->used > xbd_gcache_count(c) && spins++ < 100000)
        ev_run(loop, EVRUN_ONCE);
    CHECK_EQ(m->used, xbd_gcache_count(c));
}

static void test_hostile_mix(bool worker)
{
    struct xbd_map_reserve m = { .max_map_count = 100, .limit = 14 };
    struct xbd_ring_stats st;
    struct mix_req req[MIX_REQS];
    uint32_t gfn[MIX_REFS], seed = 0x5eed1234;
    grant_ref_t ref[MIX_REFS + 3], scratch[MIX_SEGS];
    xengnttab_handle *xgt = xengnttab_open(NULL, 0);
    xsg_dom *d = xsg_dom_create(39, 64, 128);
    struct xbd_gcache *c;
    unsigned i, step, bad = 0, nfailed = 0, nro = 0, nbatch = 0;
    struct ev_loop *loop = worker ? ev_loop_new(EVFLAG_AUTO) : NULL;
    struct xbd_unmapper *u = worker ? xbd_unmapper_new(loop) : NULL;
    char hold[] = "/tmp/test-gcache-mix.XXXXXX";

    printf("a hostile request mix, purges %s\n", worker ? "by the worker, held then not" : "inline");
    CHECK(xgt && d);
    if (worker) {
        int fd = mkstemp(hold);

        CHECK(u && fd >= 0);
        close(fd);
        setenv("XENSIM_GNTTAB_UNMAP_HOLD", hold, 1);
    }
    memset(&st, 0, sizeof(st));
    memset(req, 0, sizeof(req));
    for (i = 0; i < MIX_REFS; i++) {
        /* Every fifth page granted read-only. */
        if (xsg_page_alloc(d, &gfn[i]) < 0 ||
            xsg_grant(d, 0, gfn[i], i % 5 == 4, &ref[i]) < 0) {
            perror("FATAL: grant");
            exit(1);
        }
        memset(xsg_page(d, gfn[i]), 0x40 + (int)i, XSG_PAGE_SIZE);
    }
    ref[MIX_REFS] = 0;
    ref[MIX_REFS + 1] = 0xffffffffu;
    ref[MIX_REFS + 2] = 100000;
    c = xbd_gcache_new(xgt, 39, 10, &st);
    xbd_gcache_set_reserve(c, &m);
    xbd_gcache_set_headroom(c, 2);
    if (u)
        xbd_gcache_set_unmapper(c, u, "test mix");
    for (step = 0; step < 4000; step++) {
        struct mix_req *q = &req[mix_rand(&seed) % MIX_REQS];
        double now = 1 + step;
        unsigned op = mix_rand(&seed) % 8, n, k;
        int err;

        if (op < 4 && !q->n) {
            /* A request: maybe a list page, then its data segments, whose
             * refs may repeat, be 0, huge, never granted or read-only. */
            unsigned sidx[MIX_SEGS];
            struct xbd_gnt *g[MIX_SEGS];
            uint64_t lookups;
            bool failed;

            n = 1 + mix_rand(&seed) % MIX_SEGS;
            for (i = 0; i < n; i++) {
                unsigned r = mix_rand(&seed) % (MIX_REFS + 3);

                sidx[i] = r;
                scratch[i] = ref[r];
            }
            if (op == 0) {
                unsigned r = mix_rand(&seed) % MIX_REFS;
                struct xbd_gnt *lg = xbd_gcache_get_indirect(c, ref[r], &err);

                if (lg) {
                    nro += r % 5 == 4;
                    q->g[q->n] = lg;
                    q->idx[q->n] = r;
                    q->list[q->n++] = true;
                }
            }
            lookups = st.pgrant_lookups;
            k = xbd_gcache_count(c);
            CHECK(get_req(c, scratch, n, g, &err) <= n);
            CHECK_EQ(st.pgrant_lookups - lookups, n);
            k = xbd_gcache_count(c) - k;
            failed = err != 0;
            CHECK(!failed || !k);
            nfailed += failed;
            nbatch += k > 1;
            for (i = 0; i < n; i++) {
                if (!g[i])
                    continue;   /* copied */
                CHECK(sidx[i] < MIX_REFS && sidx[i] % 5 != 4);
                q->g[q->n] = g[i];
                q->idx[q->n] = sidx[i];
                q->list[q->n++] = false;
            }
        } else if (op < 6 && q->n) {
            mix_put(c, q, now);
        } else if (op == 6) {
            switch (mix_rand(&seed) % 3) {
            case 0: xbd_gcache_purge_lru(c, 1 + mix_rand(&seed) % 6); break;
            case 1: xbd_gcache_purge_stale(c, 1 + mix_rand(&seed) % 6, now - 30); break;
            default: xbd_gcache_purge_idle(c, now - 50); break;
            }
        }
        for (i = 0; i < MIX_REQS; i++)
            mix_check_held(d, &req[i], gfn);
        if (worker) {
            /* Mapped pages, purged or not, within the share: while the
             * worker holds every unmap (first half), then with each
             * step's unmaps waited for (second half): the room they give
             * back is the same in every run, whatever the worker's pace,
             * so the mix reaches the same paths every time. */
            if (step == 2000)
                unlink(hold);
            ev_run(loop, EVRUN_NOWAIT);
            if ((unsigned)xsg_grants_in_use(d) > 10 || m.used > m.limit ||
                (unsigned)xsg_grants_in_use(d) > m.used)
                bad++;
            if (step >= 2000)
                unmaps_done(loop, &m, c);
        } else if (xbd_gcache_count(c) > 10 ||
                   (unsigned)xsg_grants_in_use(d) != xbd_gcache_count(c) ||
                   m.used != xbd_gcache_count(c) || m.used > m.limit) {
            bad++;
        }
    }
    CHECK_EQ(bad, 0);
    /* The mix reached every path it is for. */
    printf("  %u failed batches, %u batch maps, %u read-only list pages, %llu purged, "
           "%llu refused for room\n", nfailed, nbatch, nro,
           (unsigned long long)st.pgrant_purges, (unsigned long long)st.pgrant_budget_full);
    CHECK(nfailed > 0 && nbatch > 0 && nro > 0);
    CHECK(st.pgrant_purges > 0 && st.pgrant_budget_full > 0);
    for (i = 0; i < MIX_REQS; i++)
        mix_put(c, &req[i], 1e9);
    xbd_gcache_free(c);
    if (worker) {
        xbd_unmapper_free(u);
        ev_loop_destroy(loop);
        unsetenv("XENSIM_GNTTAB_UNMAP_HOLD");
    }
    CHECK_EQ(m.used, 0);
    CHECK_EQ(xsg_grants_in_use(d), 0);
    xengnttab_close(xgt);
    xsg_dom_destroy(d);
}

/* The headroom (entries kept for indirect pages) is held by the cached
 * pages that served as indirect pages, whether mapped as one or named as
 * one once mapped as data (Linux blkfront draws both from one pool):
 * data pages get the rest of the share; each such page counts once, and
 * gives its entry of the headroom back when purged. */
static void test_headroom_lists(void)
{
    struct rig r;
    struct xbd_gcache *c;
    struct xbd_gnt *g[NREF], *lg;
    grant_ref_t req[NREF];
    int err = -1;

    printf("indirect pages already mapped hold the headroom\n");
    rig_open(&r, 40);
    c = xbd_gcache_new(r.xgt, 40, NREF, &r.st);
    xbd_gcache_set_headroom(c, 2);                /* data share: 4 */
    for (unsigned i = 0; i < NREF; i++)
        req[i] = r.ref[i];
    CHECK_EQ(get_req(c, req, 5, g, &err), 4);
    CHECK_EQ(err, 0);
    CHECK(g[4] == NULL);                          /* copied */
    put_req(c, g, 5, 1);
    /* A data page named as an indirect page, twice: one entry. */
    for (unsigned k = 0; k < 2; k++) {
        lg = xbd_gcache_get_indirect(c, r.ref[0], &err);
        CHECK(lg != NULL && err == 0);
        if (lg)
            xbd_gcache_put(c, lg, 2);
    }
    CHECK_EQ(r.st.pgrant_map_calls, 1);           /* a hit, not a new map */
    CHECK_EQ(get_req(c, &req[4], 2, g, &err), 1); /* data share: 5 */
    CHECK(g[1] == NULL);
    put_req(c, g, 2, 3);
    lg = xbd_gcache_get_indirect(c, r.ref[1], &err);
    CHECK(lg != NULL);
    if (lg)
        xbd_gcache_put(c, lg, 2);
    CHECK_EQ(get_req(c, &req[5], 1, g, &err), 1); /* the whole share */
    put_req(c, g, 1, 4);
    CHECK_EQ(xbd_gcache_count(c), NREF);
    /* Purged, the list pages give the headroom back: data share 4. */
    CHECK_EQ(xbd_gcache_purge_lru(c, NREF), NREF);
    CHECK_EQ(get_req(c, req, NREF, g, &err), 4);
    CHECK_EQ(err, 0);
    put_req(c, g, NREF, 5);
    CHECK_EQ(xbd_gcache_count(c), 4);
    xbd_gcache_free(c);
    rig_close(&r);
}

static void test_ring_plan(void)
{
    struct xbd_ring_plan p;
    size_t per = 10400;

    printf("a queue's memory plan\n");
    /* No budget: the built-in maxima. */
    xbd_ring_plan(0, 8192, 512, 256, per, 2048, 256, &p);
    CHECK_EQ(p.slots, 512);
    CHECK_EQ(p.bounce_max, 2048);
    CHECK_EQ(p.pool_keep, 256);
    /* 2 MiB: half for slots, the rest (a whole number of pages) bounce. */
    xbd_ring_plan(2u << 20, 8192, 512, 256, per, 2048, 256, &p);
    CHECK_EQ(p.slots, ((2u << 20) - 8192) / 2 / per);
    CHECK((size_t)p.slots * per + (size_t)p.bounce_max * 4096 + 8192 <= (2u << 20));
    CHECK(p.bounce_max >= 256);
    CHECK(p.pool_keep <= p.bounce_max / 8);
    /* A tiny budget: the floors (32 slots, one largest request). */
    xbd_ring_plan(4096, 8192, 512, 256, per, 2048, 256, &p);
    CHECK_EQ(p.slots, 32);
    CHECK_EQ(p.bounce_max, 256);
    /* ... or the whole ring when it is smaller than the floor. */
    xbd_ring_plan(4096, 0, 16, 11, 500, 2048, 256, &p);
    CHECK_EQ(p.slots, 16);
    CHECK_EQ(p.bounce_max, 11);
    /* A large budget never raises the maxima. */
    xbd_ring_plan(1u << 30, 0, 32, 11, 500, 2048, 256, &p);
    CHECK_EQ(p.slots, 32);
    CHECK_EQ(p.bounce_max, 2048);
    CHECK_EQ(xbd_budget_queues_for_fds(129), 64);
    CHECK_EQ(xbd_budget_queues_for_fds(3), 1);
    CHECK_EQ(xbd_budget_queues_for_fds(1), 1);
}

int main(int argc, char **argv)
{
    rig_init(argc, argv);
    test_map_once();
    test_full_and_errors();
    test_purges();
    test_purge_stale();
    test_host_reserve();
    test_group_map();
    test_group_budget();
    test_failure_counts();
    test_one_lookup();
    test_hand_over();
    test_purge_worker();
    test_purge_pending_share();
    test_hostile_mix(false);
    test_hostile_mix(true);
    test_headroom_lists();
    test_ring_plan();
    return check_result("test-gcache");
}
