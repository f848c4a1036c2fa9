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
 * (not by first use); free unmaps everything.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <xengnttab.h>

#include "check.h"
#include "fe.h"
#include "grant_cache.h"

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

static struct xbd_gnt *get(struct xbd_gcache *c, grant_ref_t ref)
{
    int err = -1;
    struct xbd_gnt *g = xbd_gcache_get(c, ref, &err);

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
    CHECK(xbd_gcache_get(c, r.ref[3], &err) == NULL);
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
    CHECK(xbd_gcache_get(c, 1000, &err) == NULL);
    CHECK(err != 0);
    CHECK_EQ(xbd_gcache_count(c), 2);
    CHECK_EQ(r.st.pgrants_mapped, 2);
    /* ... and a retry fails again rather than finding a half entry. */
    err = 0;
    CHECK(xbd_gcache_get(c, 1000, &err) == NULL);
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

int main(int argc, char **argv)
{
    rig_init(argc, argv);
    test_map_once();
    test_full_and_errors();
    test_purges();
    return check_result("test-gcache");
}
