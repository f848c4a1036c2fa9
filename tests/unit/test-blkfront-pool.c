/*
 * test-blkfront-pool.c - a frontend that draws its data pages AND its
 * indirect (segment list) pages from one pool of read-write grants, as
 * Linux blkfront does, against a real xbd_ring with the default cache.
 *
 * Linux blkfront (drivers/block/xen-blkfront.c) keeps per ring one list
 * of (max_indirect_segments + list pages per request) x ring slots
 * grants, 33 x 32 = 1056 with its defaults, every one granted writable;
 * a request takes its list page first, then its data pages, from the
 * head of that list, and a completed request puts its data pages back at
 * the head, then its list page (a stack).  A ref that was a list page in
 * one request is a data page in a later one.  Linux blkback keeps all
 * 1056 mapped whatever their role.
 *
 * Proves: with the default max-persistent-grants (1056, the pool's
 * size) and blkfront's defaults (32 slots, 32 segments per indirect
 * request), once every ref of the pool has been used the ring serves
 * the pattern from its mappings alone: no grant copy, no map call, no
 * page refused for room (budget_full), no purge, whether the refs keep
 * their roles or rotate between them; the data round trips.  And once
 * the cache holds the whole pool, a list page it has never seen still
 * works: copied (one copy call), the request succeeds.
 *
 * Requests are answered in any order, but the test frees a round's
 * grants in request order once all of them are answered, so which ref
 * plays which role is the same in every run.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fe.h"
#include "rig.h"

#define POOL   1056          /* (32 segments + 1 list page) x 32 slots */
#define SLOTS  32            /* a one-page native ring */
#define SEGS   32            /* blkfront's default max_indirect_segments */
#define REQ_SECTORS (SEGS * 8u)

#define ROLE_DATA 1u
#define ROLE_LIST 2u

struct bf_pool {
    uint32_t gfn[POOL];
    grant_ref_t ref[POOL];
    unsigned free[POOL], nfree;      /* a stack: free[nfree - 1] is the head */
    unsigned char role[POOL];        /* ROLE_* each entry has played */
};

struct bf_req {
    unsigned nseg;
    bool indirect;
    unsigned list;                   /* pool entry of the list page */
    unsigned data[SEGS];             /* pool entries of the data pages */
};

static void pool_open(struct bf_pool *p, struct fe *f)
{
    memset(p, 0, sizeof(*p));
    for (unsigned i = 0; i < POOL; i++) {
        if (xsg_page_alloc(f->d, &p->gfn[i]) < 0 ||
            xsg_grant(f->d, 0, p->gfn[i], false, &p->ref[i]) < 0) {
            perror("FATAL: pool grant");
            _exit(1);
        }
        /* Pushed in reverse: the first request takes entry 0 first. */
        p->free[p->nfree++] = POOL - 1 - i;
    }
}

static unsigned take(struct bf_pool *p, unsigned role)
{
    unsigned e = p->free[--p->nfree];

    p->role[e] |= (unsigned char)role;
    return e;
}

static void give(struct bf_pool *p, unsigned e)
{
    p->free[p->nfree++] = e;
}

static uint32_t seed_of(unsigned round, unsigned slot, unsigned seg)
{
    return round * 100000u + slot * 100u + seg;
}

/* Queue request <slot> of <round>: nseg pages at its own sectors, more
 * than BLKIF_MAX_SEGMENTS_PER_REQUEST through a list page (taken first,
 * as blkfront does). */
static void queue_req(struct bf_pool *p, struct fe *f, struct bf_req *q, uint8_t op,
                      unsigned round, unsigned slot, unsigned nseg)
{
    uint64_t sector = (uint64_t)slot * REQ_SECTORS;
    struct fe_seg segs[BLKIF_MAX_SEGMENTS_PER_REQUEST];
    struct blkif_request_segment *list = NULL;

    q->nseg = nseg;
    q->indirect = nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST;
    if (q->indirect) {
        q->list = take(p, ROLE_LIST);
        list = xsg_page(f->d, p->gfn[q->list]);
    }
    for (unsigned i = 0; i < nseg; i++) {
        unsigned e = take(p, ROLE_DATA);
        void *page = xsg_page(f->d, p->gfn[e]);

        q->data[i] = e;
        if (op == BLKIF_OP_WRITE)
            pattern(page, XBD_PAGE_SIZE, seed_of(round, slot, i));
        else
            memset(page, 0, XBD_PAGE_SIZE);
        if (list)
            list[i] = (struct blkif_request_segment){ .gref = p->ref[e], .first_sect = 0,
                                                      .last_sect = 7 };
        else
            segs[i] = (struct fe_seg){ p->ref[e], 0, 7 };
    }
    if (list)
        fe_indirect(f, op, slot + 1, sector, (uint16_t)nseg, &p->ref[q->list], 1);
    else
        fe_rw(f, op, slot + 1, sector, segs, nseg);
}

/* The data of a request, in its guest pages, is what the disk holds. */
static bool req_matches(struct bf_pool *p, struct be *b, struct fe *f,
                        const struct bf_req *q, unsigned slot)
{
    unsigned char buf[XBD_PAGE_SIZE];

    for (unsigned i = 0; i < q->nseg; i++) {
        off_t off = ((off_t)slot * REQ_SECTORS + i * 8u) * 512;

        if (pread(b->plain_fd, buf, sizeof(buf), off) != (ssize_t)sizeof(buf) ||
            memcmp(buf, xsg_page(f->d, p->gfn[q->data[i]]), sizeof(buf)))
            return false;
    }
    return true;
}

/* One round: every slot busy with a request of nseg[slot] segments, all
 * answered OKAY, the data checked, then the grants go back (each
 * request's data pages, then its list page, as blkif_completion does). */
static void round_trip(struct bf_pool *p, struct be *b, struct fe *f, unsigned round,
                       uint8_t op, const unsigned *nseg)
{
    struct bf_req q[SLOTS];
    unsigned bad = 0;

    for (unsigned s = 0; s < SLOTS; s++)
        queue_req(p, f, &q[s], op, round, s, nseg[s]);
    fe_push(f);
    expect_all(b, f, SLOTS, BLKIF_RSP_OKAY);
    for (unsigned s = 0; s < SLOTS; s++) {
        bad += !req_matches(p, b, f, &q[s], s);
        for (unsigned i = 0; i < q[s].nseg; i++)
            give(p, q[s].data[i]);
        if (q[s].indirect)
            give(p, q[s].list);
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(p->nfree, POOL);
}

struct counts {
    uint64_t copy_calls, copy_segs, budget_full, map_calls, purges, mapped;
    uint64_t sim_maps, sim_copies;
};

static struct counts counts_now(struct be *b, struct fe *f)
{
    const struct xbd_ring_stats *st = xbd_ring_get_stats(b->ring);
    struct xsg_grant_stats s;
    struct counts c = {
        st->copy_calls, st->copy_segs, st->pgrant_budget_full, st->pgrant_map_calls,
        st->pgrant_purges, st->pgrants_mapped, 0, 0,
    };

    CHECK(xsg_grant_stats(f->d, &s) == 0);
    c.sim_maps = s.map_calls;
    c.sim_copies = s.copy_calls;
    return c;
}

static void print_counts(const char *what, const struct counts *c)
{
    printf("  %s: mapped %llu, budget_full %llu, map_calls %llu, purges %llu, "
           "copy calls %llu (%llu segments)\n", what,
           (unsigned long long)c->mapped, (unsigned long long)c->budget_full,
           (unsigned long long)c->map_calls, (unsigned long long)c->purges,
           (unsigned long long)c->copy_calls, (unsigned long long)c->copy_segs);
}

static void sizes_full(unsigned *nseg)
{
    for (unsigned s = 0; s < SLOTS; s++)
        nseg[s] = SEGS;
}

/* Once the cache holds the whole pool, a request whose list page it has
 * never seen: the list is copied (the cache is full), its data pages are
 * all mapped, the request succeeds. */
static void new_list_when_full(struct bf_pool *p, struct be *b, struct fe *f)
{
    struct blkif_request_segment *list;
    struct bf_req q = { .nseg = SEGS };
    struct counts c0, c1;
    uint32_t gfn;
    grant_ref_t ref;

    if (xsg_page_alloc(f->d, &gfn) < 0 || xsg_grant(f->d, 0, gfn, false, &ref) < 0) {
        perror("FATAL: grant");
        _exit(1);
    }
    list = xsg_page(f->d, gfn);
    for (unsigned i = 0; i < SEGS; i++) {
        q.data[i] = i;
        list[i] = (struct blkif_request_segment){ .gref = p->ref[i], .first_sect = 0,
                                                  .last_sect = 7 };
        memset(xsg_page(f->d, p->gfn[i]), 0, XBD_PAGE_SIZE);
    }
    c0 = counts_now(b, f);
    fe_indirect(f, BLKIF_OP_READ, 99, 0, SEGS, &ref, 1);
    fe_push(f);
    expect_one(b, f, 99, BLKIF_OP_READ, BLKIF_RSP_OKAY);
    c1 = counts_now(b, f);
    CHECK_EQ(c1.copy_calls - c0.copy_calls, 1);      /* the list page */
    CHECK_EQ(c1.copy_segs - c0.copy_segs, 1);
    CHECK_EQ(c1.budget_full - c0.budget_full, 1);
    CHECK_EQ(c1.map_calls - c0.map_calls, 0);
    CHECK_EQ(c1.mapped, POOL);
    CHECK(req_matches(p, b, f, &q, 0));
}

static void test_one_pool(void)
{
    static struct bf_pool p;
    struct fe f;
    struct be b;
    struct counts c0, c1;
    unsigned nseg[SLOTS], round = 0, both = 0;

    printf("blkfront's one pool of %u writable grants, default cache\n", POOL);
    /* The ring, 64 + 1 pages of fe_open, the pool and one more page. */
    fe_open_sized(&f, rig_domid(), XBD_PROTO_NATIVE, 0, POOL + 128, POOL + 512);
    pool_open(&p, &f);
    if (!rig_attach(&b, &f, .persistent = true, .max_indirect = SEGS))
        return;
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrant_limit, POOL);
    /* Warm up: every ref of the pool once (32 x (1 + 32) = 1056). */
    sizes_full(nseg);
    round_trip(&p, &b, &f, round++, BLKIF_OP_WRITE, nseg);
    c0 = counts_now(&b, &f);
    print_counts("after the first round", &c0);
    round_trip(&p, &b, &f, round++, BLKIF_OP_READ, nseg);
    c0 = counts_now(&b, &f);
    /* Steady state, roles kept: each request takes back the list page and
     * the data pages the previous round's request of its slot gave back. */
    for (unsigned k = 0; k < 4; k++)
        round_trip(&p, &b, &f, round++, k % 2 ? BLKIF_OP_READ : BLKIF_OP_WRITE, nseg);
    /* Roles rotating: a direct request of k pages first shifts every
     * later request's take by k refs, so list pages become data pages
     * and data pages list pages. */
    for (unsigned k = 1; k <= BLKIF_MAX_SEGMENTS_PER_REQUEST; k++) {
        nseg[0] = k;
        round_trip(&p, &b, &f, round++, k % 2 ? BLKIF_OP_WRITE : BLKIF_OP_READ, nseg);
    }
    c1 = counts_now(&b, &f);
    print_counts("steady state", &c1);
    for (unsigned i = 0; i < POOL; i++)
        both += p.role[i] == (ROLE_DATA | ROLE_LIST);
    printf("  %u of the %u refs served both as list and as data pages\n", both, POOL);
    CHECK(both >= 2 * SLOTS);
    /* From the mappings alone, as blkback serves it. */
    CHECK_EQ(c1.mapped, POOL);
    CHECK_EQ(c1.budget_full - c0.budget_full, 0);
    CHECK_EQ(c1.copy_calls - c0.copy_calls, 0);
    CHECK_EQ(c1.map_calls - c0.map_calls, 0);
    CHECK_EQ(c1.purges - c0.purges, 0);
    CHECK_EQ(c1.sim_maps - c0.sim_maps, 0);
    CHECK_EQ(c1.sim_copies - c0.sim_copies, 0);
    new_list_when_full(&p, &b, &f);
    rig_down(&b, &f);
}

int main(int argc, char **argv)
{
    rig_init(argc, argv);
    test_one_pool();
    return check_result("test-blkfront-pool");
}
