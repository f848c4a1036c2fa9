/*
 * grant_cache.c - persistent grant mappings of one ring (see grant_cache.h).
 *
 * Chained hash on the grant ref.  Each entry is one page of a *group*: one
 * gntdev mapping made by one map call.  A request's grants that are not
 * cached yet are mapped together (xbd_gcache_get_segs: one call, one VMA,
 * one unmap later), indirect pages one page per call.  libxengnttab on
 * Linux unmaps only whole mappings (its xengnttab_unmap asks gntdev for
 * the mapping that holds the address and fails with EINVAL unless
 * <count> is that mapping's page count), so a group is unmapped as a
 * whole or not at all:
 * - the LRU list holds groups, not pages: a group is on it while none of
 *   its pages is held by a request, stamped with the last release of any
 *   of them;
 * - every purge (full-cache stale purge, idle purge, LRU purge) evicts
 *   whole groups from the head of that list, so a group one of whose
 *   pages the guest still uses stays mapped with all its pages;
 * - the budget (the ring's max and the host reserve) counts mapped pages,
 *   whatever group they are in, so fragmenting its requests cannot get a
 *   guest more mapped pages than its share.
 * Steady state: a guest whose working set fits the cache maps each page
 * once and then nothing; one whose working set is larger fills the cache
 * and its overflow goes by grant copy (0 map calls per request), and a
 * group is unmapped only once none of its pages was used for a whole
 * purge interval (ring.c), so pages in use are never churned through
 * map and unmap; a kept group's cold pages are the price (at most one
 * request's worth of pages per group, all counted in the budget).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "blkif_abi.h"
#include "budget.h"
#include "grant_cache.h"
#include "request.h"
#include "unmap_worker.h"
#include "xenblkd/log.h"

struct xbd_gmap;

struct xbd_gnt {
    grant_ref_t ref;
    unsigned users;            /* requests holding the page */
    bool list;                 /* served as an indirect page since mapped */
    struct xbd_gmap *grp;
    struct xbd_gnt *hnext;     /* hash chain */
};

/* One gntdev mapping of npages pages; m[i] is the page at base + i pages. */
struct xbd_gmap {
    void *base;
    unsigned npages;
    unsigned live;             /* members still in the hash table */
    unsigned busy;             /* members with users > 0 */
    bool ro;                   /* mapped read-only: indirect pages only */
    double last_used;          /* latest release of any member */
    struct xbd_gmap *lprev, *lnext; /* LRU list of groups with busy == 0 */
    struct xbd_gnt m[];
};

struct xbd_gcache {
    xengnttab_handle *xgt;
    domid_t domid;
    unsigned max, count, nbuckets, shift;   /* count: mapped pages */
    unsigned headroom;         /* entries kept for indirect pages */
    unsigned lists;            /* cached pages with list set */
    bool full_hint;
    /* Pages handed to map calls, mapped or not: the ring bounds what one
     * of its callbacks may ask for by this (xbd_gcache_pages_tried). */
    uint64_t pages_tried;
    struct xbd_ring_stats *st;
    struct xbd_map_reserve *reserve;   /* host-wide, or NULL */
    struct xbd_unmapper *unmapper;     /* purges' unmaps, or NULL: inline */
    struct xbd_unmap_tally *pending;   /* purged pages the worker still has */
    const char *name;                  /* the ring's, for the unmapper */
    struct xbd_gnt **buckets;
    struct xbd_gmap *lru_head, *lru_tail;  /* head = least recently used */
};

/* Pages of the ring still mapped: cached, or purged and not unmapped yet
 * (they leave the cache at once but stay mapped until the worker is
 * done).  The ring's share bounds these, so a guest that cycles through
 * new refs faster than the unmaps go never holds more than its share. */
static unsigned held(const struct xbd_gcache *c)
{
    return c->count + xbd_unmap_tally_pages(c->pending);
}

static unsigned bucket_of(const struct xbd_gcache *c, grant_ref_t ref)
{
    /* Fibonacci hashing: guest-chosen refs must not pile into one chain
     * cheaply; the table is a power of two. */
    return (uint32_t)(ref * 2654435761u) >> c->shift;
}

struct xbd_gcache *xbd_gcache_new(xengnttab_handle *xgt, domid_t domid,
                                  unsigned max, struct xbd_ring_stats *st)
{
    struct xbd_gcache *c = calloc(1, sizeof(*c));
    unsigned nb = 64, shift = 32 - 6;

    if (!c)
        return NULL;
    while (nb < 2 * max && nb < (1u << 20)) {
        nb <<= 1;
        shift--;
    }
    c->buckets = calloc(nb, sizeof(*c->buckets));
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    c->xgt = xgt;
    c->domid = domid;
    c->max = max;
    c->nbuckets = nb;
    c->shift = shift;
    c->st = st;
    return c;
}

static void lru_unlink(struct xbd_gcache *c, struct xbd_gmap *g)
{
    if (g->lprev)
        g->lprev->lnext = g->lnext;
    else
        c->lru_head = g->lnext;
    if (g->lnext)
        g->lnext->lprev = g->lprev;
    else
        c->lru_tail = g->lprev;
    g->lprev = g->lnext = NULL;
}

static void lru_append(struct xbd_gcache *c, struct xbd_gmap *g)
{
    g->lnext = NULL;
    g->lprev = c->lru_tail;
    if (c->lru_tail)
        c->lru_tail->lnext = g;
    else
        c->lru_head = g;
    c->lru_tail = g;
}

/* A group nobody holds yet goes first in line (last_used 0), which keeps
 * the list ordered by last use. */
static void lru_prepend(struct xbd_gcache *c, struct xbd_gmap *g)
{
    g->lprev = NULL;
    g->lnext = c->lru_head;
    if (c->lru_head)
        c->lru_head->lprev = g;
    else
        c->lru_tail = g;
    c->lru_head = g;
}

/* The one hash lookup of a page per request (counted: a test checks that
 * a request's segments are looked up once each, not once to map the new
 * ones and again to pin them). */
static struct xbd_gnt *lookup(const struct xbd_gcache *c, grant_ref_t ref)
{
    struct xbd_gnt *g;

    c->st->pgrant_lookups++;
    for (g = c->buckets[bucket_of(c, ref)]; g; g = g->hnext)
        if (g->ref == ref)
            return g;
    return NULL;
}

static void hash_remove(struct xbd_gcache *c, struct xbd_gnt *g)
{
    struct xbd_gnt **pp = &c->buckets[bucket_of(c, g->ref)];

    while (*pp != g)
        pp = &(*pp)->hnext;
    *pp = g->hnext;
    g->grp->live--;
    c->lists -= g->list;
}

/* <g> serves as an indirect page: it counts toward the headroom from now
 * on, whatever it serves as later (data_limit() says why). */
static void mark_list(struct xbd_gcache *c, struct xbd_gnt *g)
{
    if (!g->list) {
        g->list = true;
        c->lists++;
    }
}

/* The most pages the cache may hold once a request's new data pages are
 * mapped: the whole share less the part of the headroom that no cached
 * page which served as an indirect page holds yet.  The headroom is there so that, when
 * data overflow the cache, a request's indirect page is still mapped (its
 * request costs one copy call, not two); an indirect page already cached
 * fills that purpose as well as a free entry does.  Linux blkfront draws
 * its indirect and data pages from ONE pool of 1056 writable grants (the
 * default share): its indirect pages are mapped among the first, so it
 * gets the whole share for data, the pool fits and nothing is copied,
 * whereas keeping the headroom free on top would leave 16 of its pages
 * copied for ever.  A frontend whose indirect pages are separate keeps
 * the headroom until that many of them are mapped. */
static unsigned data_limit(const struct xbd_gcache *c)
{
    return c->max - (c->headroom > c->lists ? c->headroom - c->lists : 0);
}

/* Enter the npages pages mapped at <base> for refs[] as one group, not
 * held by anyone; NULL without memory (the caller unmaps).  Members keep
 * the order of refs[] (group_page() relies on it when sorted). */
static struct xbd_gmap *group_add(struct xbd_gcache *c, void *base, const grant_ref_t *refs,
                                  unsigned npages, bool ro)
{
    struct xbd_gmap *grp = calloc(1, sizeof(*grp) + npages * sizeof(grp->m[0]));

    if (!grp)
        return NULL;
    grp->base = base;
    grp->npages = npages;
    grp->ro = ro;
    for (unsigned i = 0; i < npages; i++) {
        struct xbd_gnt *g = &grp->m[i];
        unsigned b = bucket_of(c, refs[i]);

        g->ref = refs[i];
        g->grp = grp;
        g->hnext = c->buckets[b];
        c->buckets[b] = g;
    }
    grp->live = npages;
    lru_prepend(c, grp);
    c->count += npages;
    c->st->pgrants_mapped = c->count;
    return grp;
}

static void give_pages(struct xbd_gcache *c, unsigned n)
{
    while (n--)
        xbd_map_reserve_give(c->reserve);
}

static void *map_pages(struct xbd_gcache *c, grant_ref_t *refs, unsigned n, int prot)
{
    c->st->pgrant_map_calls++;
    c->pages_tried += n;
    return xengnttab_map_domain_grant_refs(c->xgt, n, c->domid, refs, prot);
}

/* One page on its own.  Writable, as blkback maps data pages; an indirect
 * page (<read_ok>) the frontend granted read-only is mapped read-only
 * instead, else every request would try the writable map again.  The
 * caller took one unit of the reserve, given back on failure. */
static struct xbd_gnt *map_new(struct xbd_gcache *c, grant_ref_t ref, bool read_ok,
                               int *err)
{
    struct xbd_gmap *grp;
    bool ro = false;
    void *page = map_pages(c, &ref, 1, PROT_READ | PROT_WRITE);

    if (!page && read_ok) {
        page = map_pages(c, &ref, 1, PROT_READ);
        ro = true;
    }
    if (!page) {
        *err = errno ? errno : EFAULT;
        give_pages(c, 1);
        return NULL;
    }
    grp = group_add(c, page, &ref, 1, ro);
    if (!grp) {
        *err = ENOMEM;
        xengnttab_unmap(c->xgt, page, 1);
        give_pages(c, 1);
        return NULL;
    }
    return &grp->m[0];
}

/* Hold <g> for a request: a group with a page held leaves the LRU list,
 * so no purge takes it. */
static void pin(struct xbd_gcache *c, struct xbd_gnt *g)
{
    if (!g->users++ && !g->grp->busy++)
        lru_unlink(c, g->grp);
}

struct xbd_gnt *xbd_gcache_get_indirect(struct xbd_gcache *c, grant_ref_t ref, int *err)
{
    struct xbd_gnt *g = lookup(c, ref);

    *err = 0;
    if (g) {
        c->st->pgrant_hits++;
    } else {
        c->st->pgrant_misses++;
        /* The cache is full (indirect pages may take the headroom too),
         * or the host's reserve below vm.max_map_count is used up: copy. */
        if (held(c) >= c->max || !xbd_map_reserve_take(c->reserve)) {
            c->full_hint = true;
            c->st->pgrant_budget_full++;
            return NULL;
        }
        g = map_new(c, ref, true, err);
        if (!g)
            return NULL;
    }
    mark_list(c, g);
    pin(c, g);
    return g;
}

static int cmp_ref(const void *a, const void *b)
{
    grant_ref_t x = *(const grant_ref_t *)a, y = *(const grant_ref_t *)b;

    return x < y ? -1 : x > y;
}

/* Sort refs[0..m) and keep each distinct ref once; returns how many. */
static unsigned sort_unique(grant_ref_t *refs, unsigned m)
{
    unsigned i, n;

    if (m < 2)
        return m;
    /* A guest may name a page in many segments (and a hostile one the
     * same ref 256 times): each is mapped once. */
    qsort(refs, m, sizeof(*refs), cmp_ref);
    for (i = 1, n = 1; i < m; i++)
        if (refs[i] != refs[n - 1])
            refs[n++] = refs[i];
    return n;
}

/* Map, in ONE call, as many of the m distinct sorted refs[] as the
 * cache's data share and the host reserve leave room for (the first
 * ones), as one group.  NULL with *err = 0: no room; with *err = errno:
 * the call failed (one bad, read-only or revoked ref fails it whole). */
static struct xbd_gmap *map_group(struct xbd_gcache *c, grant_ref_t *refs, unsigned m,
                                  int *err, unsigned *tried)
{
    unsigned limit = data_limit(c), k, taken;
    struct xbd_gmap *grp;
    void *base;

    *err = 0;
    *tried = 0;
    k = held(c) < limit ? limit - held(c) : 0;
    if (k > m)
        k = m;
    for (taken = 0; taken < k && xbd_map_reserve_take(c->reserve); taken++)
        ;
    k = taken;
    if (!k)
        return NULL;
    *tried = k;
    base = map_pages(c, refs, k, PROT_READ | PROT_WRITE);
    if (!base) {
        /* The caller copies this request's new pages, which gives it the
         * answer a per-page map would have (a good page is copied, a bad
         * one fails its copy and the request), without mapping each page
         * on its own, which would cost one unmap call per page later.
         * The next request without the bad ref maps them. */
        *err = errno ? errno : EFAULT;
        give_pages(c, k);
        return NULL;
    }
    grp = group_add(c, base, refs, k, false);
    if (!grp) {
        *err = ENOMEM;
        xengnttab_unmap(c->xgt, base, k);
        give_pages(c, k);
    }
    return grp;
}

/* Whether <ref> is among sorted refs[0..n). */
static bool sorted_has(const grant_ref_t *refs, unsigned n, grant_ref_t ref)
{
    unsigned lo = 0, hi = n;

    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;

        if (refs[mid] < ref)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && refs[lo] == ref;
}

/* The page of <ref> in a group mapped from sorted refs, or NULL. */
static struct xbd_gnt *group_page(struct xbd_gmap *grp, grant_ref_t ref)
{
    unsigned lo = 0, hi = grp->npages;

    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;

        if (grp->m[mid].ref < ref)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < grp->npages && grp->m[lo].ref == ref ? &grp->m[lo] : NULL;
}

/* Marks, between the two passes of xbd_gcache_get_segs(), a segment whose
 * ref was not in the cache.  Never handed out, never dereferenced. */
static struct xbd_gnt not_cached;

/* Second pass, for a request that brought pages not cached: map them
 * (refs[0..m), the segments marked not_cached), then each marked segment
 * gets its page in the new group, or NULL: copied.  Kept out of line
 * (noinline, cold): a steady-state request never comes here, and its
 * pass should not pay this one's registers. */
static int __attribute__((noinline, cold))
get_new(struct xbd_gcache *c, const struct xbd_seg *seg, unsigned n, struct xbd_gnt **out,
        grant_ref_t *refs, unsigned m)
{
    int err;
    unsigned tried;
    struct xbd_gmap *grp = map_group(c, refs, sort_unique(refs, m), &err, &tried);

    for (unsigned i = 0; i < n; i++) {
        struct xbd_gnt *g;

        if (out[i] != &not_cached)
            continue;
        g = grp ? group_page(grp, seg[i].gref) : NULL;
        out[i] = g;
        if (g) {
            /* Its first segment found it new; the others found it mapped. */
            if (g->users)
                c->st->pgrant_hits++;
            else
                c->st->pgrant_misses++;
            pin(c, g);
            continue;
        }
        c->st->pgrant_misses++;
        if (err && sorted_has(refs, tried, seg[i].gref)) {
            /* Its ref was in the call that failed. */
            c->st->pgrant_map_failures++;
        } else {
            /* Not in the call: the data share or the host reserve was
             * used up before it (also when a call for the others failed). */
            c->full_hint = true;
            c->st->pgrant_budget_full++;
        }
    }
    return err;
}

int xbd_gcache_get_segs(struct xbd_gcache *c, const struct xbd_seg *seg, unsigned n,
                        struct xbd_gnt **out, grant_ref_t *scratch)
{
    unsigned i, m = 0;

    for (i = 0; i < n; i++) {
        struct xbd_gnt *g = lookup(c, seg[i].gref);

        if (g && !g->grp->ro) {
            c->st->pgrant_hits++;
            pin(c, g);
            out[i] = g;
        } else if (g) {
            /* Once an indirect page the guest granted read-only, now
             * data: never written through that mapping, copied (it
             * idles out like any other). */
            c->st->pgrant_misses++;
            out[i] = NULL;
        } else {
            out[i] = &not_cached;
            scratch[m++] = seg[i].gref;
        }
    }
    /* Steady state: every page was mapped. */
    return m ? get_new(c, seg, n, out, scratch, m) : 0;
}

void xbd_gcache_set_headroom(struct xbd_gcache *c, unsigned n)
{
    c->headroom = n < c->max ? n : c->max;
}

void *xbd_gnt_page(const struct xbd_gnt *g)
{
    return (char *)g->grp->base + (size_t)(g - g->grp->m) * XBD_PAGE_SIZE;
}

void xbd_gcache_put(struct xbd_gcache *c, struct xbd_gnt *g, double now)
{
    /* Stamped on release, not on get: a page held by a long request is
     * in use until it completes, and stamping here keeps the LRU list
     * ordered by last use, which the purges rely on.  Held groups are
     * never on the list, so they need no stamp. */
    g->grp->last_used = now;
    if (--g->users == 0 && --g->grp->busy == 0)
        lru_append(c, g->grp);
}

/* Unmap a group no longer in the hash table, give its pages back. */
static void unmap_group(struct xbd_gcache *c, struct xbd_gmap *grp)
{
    if (xengnttab_unmap(c->xgt, grp->base, grp->npages) < 0)
        xbd_warn("unmap of %u persistent grant(s) of domain %u (first ref %u) failed: %s",
                 grp->npages, c->domid, grp->m[0].ref, strerror(errno));
    c->count -= grp->npages;
    c->st->pgrants_mapped = c->count;
    give_pages(c, grp->npages);
    free(grp);
}

/* Out of the table and the budget of the ring; unmapped now (<ub> NULL)
 * or by the unmap worker, which gives the reserve back once it has. */
static void evict_group(struct xbd_gcache *c, struct xbd_gmap *grp,
                        struct xbd_unmap_batch *ub)
{
    lru_unlink(c, grp);
    for (unsigned i = 0; i < grp->npages; i++)
        hash_remove(c, &grp->m[i]);
    if (!ub) {
        unmap_group(c, grp);
        return;
    }
    xbd_unmap_batch_add(ub, grp->base, grp->npages);
    c->count -= grp->npages;
    c->st->pgrants_mapped = c->count;
    free(grp);
}

static bool purgeable(const struct xbd_gcache *c, double older_than)
{
    return c->lru_head && c->lru_head->last_used < older_than;
}

/* A batch for the unmap worker, if there is one and it has memory: an
 * idle purge may take every mapping of the ring (hundreds of unmap
 * hypercalls on Xen, each with a TLB flush), which would stall every
 * guest's I/O on the loop.  At most c->count mappings. */
static struct xbd_unmap_batch *purge_batch(struct xbd_gcache *c)
{
    struct xbd_unmap_batch *ub;

    if (!c->unmapper)
        return NULL;
    if (!c->pending && !(c->pending = xbd_unmap_tally_new()))
        return NULL;
    ub = xbd_unmap_batch_new(c->name, c->xgt, c->count);
    if (ub) {
        xbd_unmap_batch_set_purge(ub);
        xbd_unmap_batch_set_reserve(ub, c->reserve);
        xbd_unmap_batch_set_tally(ub, c->pending);
    }
    return ub;
}

/* Unmap least recently used groups none of whose pages is in use, until
 * at least <n> pages went, and only groups last used before <older_than>.
 * The LRU list is ordered by last use: stop at the first recent one.
 * Returns the pages taken out of the cache. */
static unsigned purge_before(struct xbd_gcache *c, unsigned n, double older_than)
{
    struct xbd_unmap_batch *ub;
    unsigned done = 0;

    if (!n || !purgeable(c, older_than))
        return 0;
    ub = purge_batch(c);
    while (done < n && purgeable(c, older_than)) {
        done += c->lru_head->npages;
        evict_group(c, c->lru_head, ub);
    }
    if (ub)
        xbd_unmapper_submit(c->unmapper, ub, NULL, NULL);
    c->st->pgrant_purges += done;
    return done;
}

unsigned xbd_gcache_purge_lru(struct xbd_gcache *c, unsigned n)
{
    return purge_before(c, n, HUGE_VAL);
}

unsigned xbd_gcache_purge_stale(struct xbd_gcache *c, unsigned n, double older_than)
{
    return purge_before(c, n, older_than);
}

unsigned xbd_gcache_purge_idle(struct xbd_gcache *c, double older_than)
{
    return purge_before(c, UINT_MAX, older_than);
}

void xbd_gcache_set_reserve(struct xbd_gcache *c, struct xbd_map_reserve *m)
{
    c->reserve = m;
}

void xbd_gcache_set_unmapper(struct xbd_gcache *c, struct xbd_unmapper *u, const char *name)
{
    c->unmapper = u;
    c->name = name;
}

unsigned xbd_gcache_count(const struct xbd_gcache *c)
{
    return c->count;
}

unsigned xbd_gcache_max(const struct xbd_gcache *c)
{
    return c->max;
}

uint64_t xbd_gcache_pages_tried(const struct xbd_gcache *c)
{
    return c->pages_tried;
}

bool xbd_gcache_take_full_hint(struct xbd_gcache *c)
{
    bool h = c->full_hint;

    c->full_hint = false;
    return h;
}

/* Take every entry out of the hash table; <last>(c, group, opaque) gets
 * each group once its last member is out (no member can be in use). */
static void drain_groups(struct xbd_gcache *c,
                         void (*last)(struct xbd_gcache *, struct xbd_gmap *, void *),
                         void *opaque)
{
    for (unsigned b = 0; b < c->nbuckets; b++) {
        while (c->buckets[b]) {
            struct xbd_gnt *g = c->buckets[b];
            struct xbd_gmap *grp = g->grp;

            if (g->users)
                xbd_err("grant %u of domain %u unmapped while in use", g->ref, c->domid);
            c->buckets[b] = g->hnext;
            if (--grp->live)
                continue;
            if (!grp->busy)
                lru_unlink(c, grp);
            last(c, grp, opaque);
        }
    }
}

static void free_group(struct xbd_gcache *c, struct xbd_gmap *grp, void *opaque)
{
    (void)opaque;
    unmap_group(c, grp);
}

void xbd_gcache_free(struct xbd_gcache *c)
{
    if (!c)
        return;
    drain_groups(c, free_group, NULL);
    xbd_unmap_tally_drop(c->pending);
    free(c->buckets);
    free(c);
}

static void hand_group(struct xbd_gcache *c, struct xbd_gmap *grp, void *opaque)
{
    (void)c;
    xbd_unmap_batch_add(opaque, grp->base, grp->npages);
    free(grp);
}

void xbd_gcache_hand_over(struct xbd_gcache *c, struct xbd_unmap_batch *ub)
{
    drain_groups(c, hand_group, ub);
    c->count = 0;
    c->st->pgrants_mapped = 0;
    xbd_unmap_tally_drop(c->pending);
    free(c->buckets);
    free(c);
}
