/*
 * grant_cache.c - persistent grant mappings of one ring (see grant_cache.h).
 *
 * Chained hash on the grant ref; each entry is one page mapped with its own
 * map call so that it can be unmapped on its own (LRU purge) without
 * assuming anything about neighbouring mappings.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "budget.h"
#include "grant_cache.h"
#include "unmap_worker.h"
#include "xenblkd/log.h"

struct xbd_gnt {
    grant_ref_t ref;
    void *page;
    unsigned users;            /* requests holding the page */
    bool ro;                   /* mapped read-only: indirect pages only */
    double last_used;
    struct xbd_gnt *hnext;     /* hash chain */
    struct xbd_gnt *lprev, *lnext; /* LRU list of entries with users == 0 */
};

struct xbd_gcache {
    xengnttab_handle *xgt;
    domid_t domid;
    unsigned max, count, nbuckets, shift;
    unsigned headroom;         /* entries only get_indirect() may take */
    bool full_hint;
    struct xbd_ring_stats *st;
    struct xbd_map_reserve *reserve;   /* host-wide, or NULL */
    struct xbd_gnt **buckets;
    struct xbd_gnt *lru_head, *lru_tail;  /* head = least recently used */
};

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

static void lru_unlink(struct xbd_gcache *c, struct xbd_gnt *g)
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

static void lru_append(struct xbd_gcache *c, struct xbd_gnt *g)
{
    g->lnext = NULL;
    g->lprev = c->lru_tail;
    if (c->lru_tail)
        c->lru_tail->lnext = g;
    else
        c->lru_head = g;
    c->lru_tail = g;
}

static struct xbd_gnt *lookup(const struct xbd_gcache *c, grant_ref_t ref)
{
    struct xbd_gnt *g;

    for (g = c->buckets[bucket_of(c, ref)]; g; g = g->hnext)
        if (g->ref == ref)
            return g;
    return NULL;
}

static void *map_page(struct xbd_gcache *c, grant_ref_t ref, int prot)
{
    c->st->pgrant_map_calls++;
    return xengnttab_map_grant_ref(c->xgt, c->domid, ref, prot);
}

/* Writable, as blkback maps data pages; an indirect page (<read_ok>) the
 * frontend granted read-only is mapped read-only instead, else every
 * request would try the writable map again. */
static struct xbd_gnt *map_new(struct xbd_gcache *c, grant_ref_t ref, bool read_ok,
                               int *err)
{
    struct xbd_gnt *g = calloc(1, sizeof(*g));
    unsigned b;

    if (!g) {
        *err = ENOMEM;
        xbd_map_reserve_give(c->reserve);
        return NULL;
    }
    g->page = map_page(c, ref, PROT_READ | PROT_WRITE);
    if (!g->page && read_ok) {
        g->page = map_page(c, ref, PROT_READ);
        g->ro = true;
    }
    if (!g->page) {
        *err = errno ? errno : EFAULT;
        xbd_map_reserve_give(c->reserve);
        free(g);
        return NULL;
    }
    g->ref = ref;
    b = bucket_of(c, ref);
    g->hnext = c->buckets[b];
    c->buckets[b] = g;
    c->count++;
    c->st->pgrants_mapped = c->count;
    return g;
}

static struct xbd_gnt *get_below(struct xbd_gcache *c, grant_ref_t ref,
                                  unsigned limit, bool read_ok, int *err)
{
    struct xbd_gnt *g = lookup(c, ref);

    *err = 0;
    if (g && g->ro && !read_ok) {
        /* Once an indirect page, now data: copy it (the guest granted it
         * read-only; it idles out like any other). */
        c->st->pgrant_misses++;
        return NULL;
    }
    if (!g) {
        c->st->pgrant_misses++;
        /* The queue's share of its disk's mappings, or the host's
         * reserve below vm.max_map_count, is used up: copy. */
        if (c->count >= limit || !xbd_map_reserve_take(c->reserve)) {
            c->full_hint = true;
            c->st->pgrant_budget_full++;
            return NULL;
        }
        g = map_new(c, ref, read_ok, err);
        if (!g)
            return NULL;
    } else {
        c->st->pgrant_hits++;
        if (!g->users)
            lru_unlink(c, g);
    }
    g->users++;
    return g;
}

struct xbd_gnt *xbd_gcache_get(struct xbd_gcache *c, grant_ref_t ref, int *err)
{
    return get_below(c, ref, c->max - c->headroom, false, err);
}

struct xbd_gnt *xbd_gcache_get_indirect(struct xbd_gcache *c, grant_ref_t ref, int *err)
{
    return get_below(c, ref, c->max, true, err);
}

void xbd_gcache_set_headroom(struct xbd_gcache *c, unsigned n)
{
    c->headroom = n < c->max ? n : c->max;
}

void *xbd_gnt_page(const struct xbd_gnt *g)
{
    return g->page;
}

void xbd_gcache_put(struct xbd_gcache *c, struct xbd_gnt *g, double now)
{
    /* Stamped on release, not on get: a page held by a long request is
     * in use until it completes, and stamping here keeps the LRU list
     * ordered by last use, which purge_idle relies on.  Pinned pages are
     * never on the list, so they need no stamp. */
    g->last_used = now;
    if (--g->users == 0)
        lru_append(c, g);
}

static void unmap_one(struct xbd_gcache *c, struct xbd_gnt *g)
{
    struct xbd_gnt **pp = &c->buckets[bucket_of(c, g->ref)];

    while (*pp != g)
        pp = &(*pp)->hnext;
    *pp = g->hnext;
    if (xengnttab_unmap(c->xgt, g->page, 1) < 0)
        xbd_warn("unmap of persistent grant %u of domain %u failed: %s",
                 g->ref, c->domid, strerror(errno));
    c->count--;
    c->st->pgrants_mapped = c->count;
    xbd_map_reserve_give(c->reserve);
    free(g);
}

/* Unmap least recently used entries not in use, at most <n>, and only
 * those last used before <older_than>.  The LRU list is ordered by last
 * use: stop at the first recent one. */
static unsigned purge_before(struct xbd_gcache *c, unsigned n, double older_than)
{
    unsigned done = 0;

    while (done < n && c->lru_head && c->lru_head->last_used < older_than) {
        struct xbd_gnt *g = c->lru_head;

        lru_unlink(c, g);
        unmap_one(c, g);
        done++;
    }
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

unsigned xbd_gcache_count(const struct xbd_gcache *c)
{
    return c->count;
}

unsigned xbd_gcache_max(const struct xbd_gcache *c)
{
    return c->max;
}

bool xbd_gcache_take_full_hint(struct xbd_gcache *c)
{
    bool h = c->full_hint;

    c->full_hint = false;
    return h;
}

static void check_unused(const struct xbd_gcache *c, const struct xbd_gnt *g)
{
    if (g->users)
        xbd_err("grant %u of domain %u unmapped while in use", g->ref, c->domid);
}

void xbd_gcache_free(struct xbd_gcache *c)
{
    unsigned b;

    if (!c)
        return;
    for (b = 0; b < c->nbuckets; b++) {
        while (c->buckets[b]) {
            struct xbd_gnt *g = c->buckets[b];

            check_unused(c, g);
            if (!g->users)
                lru_unlink(c, g);
            unmap_one(c, g);
        }
    }
    free(c->buckets);
    free(c);
}

void xbd_gcache_hand_over(struct xbd_gcache *c, struct xbd_unmap_batch *ub)
{
    unsigned b;

    for (b = 0; b < c->nbuckets; b++) {
        while (c->buckets[b]) {
            struct xbd_gnt *g = c->buckets[b];

            check_unused(c, g);
            c->buckets[b] = g->hnext;
            xbd_unmap_batch_add(ub, g->page);
            free(g);
        }
    }
    c->count = 0;
    c->st->pgrants_mapped = 0;
    free(c->buckets);
    free(c);
}
