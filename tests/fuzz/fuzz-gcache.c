/*
 * fuzz-gcache.c - the persistent grant cache (src/grant_cache.c) driven
 * by a hostile guest's requests, as src/ring.c drives it: a request's
 * indirect page (xbd_gcache_get_indirect, released at once after its
 * copy), then its data segments (xbd_gcache_get_segs, held until the
 * request completes), with purges of every kind, a host reserve and
 * failing map calls in between.
 *
 * The grant device is a fake in this file (xengnttab_map_domain_grant_refs
 * and xengnttab_unmap, which the executable's definitions interpose on
 * the library's): it knows which refs the guest granted, read-only or
 * not, maps each page with its ref written in it, refuses a writable map
 * of a read-only grant and a whole call for one bad ref (as gntdev does),
 * and unmaps only whole mappings (as libxengnttab on Linux does).
 *
 * Beyond memory safety it checks what the cache promises (grant_cache.h):
 * - every page handed out for segment i is the page of seg[i].gref, in a
 *   live mapping, writable (a guest READ writes it: never a read-only
 *   mapping), and every segment naming one ref gets the same page;
 * - a ref the guest never granted or granted read-only is never handed
 *   out as data; a failed map call hands out no new page;
 * - a mapping is never unmapped while a page of it is held (the fake
 *   aborts), and only whole; a ref is never mapped again while its
 *   mapping is in the cache (nor twice in one call);
 * - data pages never map into the part of the headroom kept for indirect
 *   pages that no cached page which served as an indirect page holds (the
 *   harness marks each page handed out as an indirect page, until its
 *   mapping is purged);
 * - after every step the cache's count is the fake's mapped pages, the
 *   ring's pgrants_mapped, the reserve's used units, at most the cache's
 *   max; each segment costs one lookup;
 * - at the end, every page released and the cache freed: nothing mapped,
 *   nothing reserved.
 * scratch[] and out[] have exactly n entries (ASan sees any overrun).
 *
 * So is the unmap worker (src/unmap_worker.h), when the input asks for
 * one: the purges' batches wait in the harness, still mapped, still
 * holding their reserve units and counted in their tally, until a step
 * completes the oldest (unmaps it, gives the reserve back), as the real
 * worker's thread and loop report would, at steps the fuzzer picks.
 * Then the ring's share and the reserve also count the pending pages:
 * mapped pages (pending included) = count + tally = reserve units, at
 * most the cache's max.  unmap_worker.o is not linked: this file defines
 * every symbol grant_cache.c takes from it.
 *
 * Input: [0] cache max - 1 (% 64), [1] headroom (% 8; bit 3 (8): purges
 * go to the unmap worker), [2] reserve limit (0xff: no reserve), then
 * steps; each step's first byte says what:
 *   % 8 in 0..3: request slot (/ 8 % 4): release it if held, else a new
 *                request: [flags: 1 indirect page, 2 large (up to 256
 *                segments)] [n] [ref index per segment] ([ref index] of
 *                the indirect page);
 *   4: purge LRU [n], 5: purge stale [n] [age], 6: purge idle [age],
 *   7: [x] x & 1: the next map call fails (host out of mappings);
 *      x & 2: the reserve limit becomes [next byte]; x & 4: the worker
 *      completes its oldest batch.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <xengnttab.h>

#include "blkif_abi.h"
#include "budget.h"
#include "fuzz.h"
#include "grant_cache.h"
#include "request.h"
#include "unmap_worker.h"
#include "xenblkd/dataplane.h"

/* ---- the guest's grants ------------------------------------------------ */

enum grant_kind { G_RW, G_RO, G_BAD };

/* A small palette, so that requests share refs; 0, 1 and the largest
 * refs included (sort and binary search edges), every kind present. */
static const struct {
    grant_ref_t ref;
    enum grant_kind kind;
} palette[] = {
    { 0, G_RW }, { 1, G_RW }, { 2, G_RW }, { 3, G_RO }, { 4, G_RW }, { 5, G_BAD },
    { 8, G_RW }, { 9, G_RW }, { 10, G_RO }, { 77, G_RW }, { 1000, G_RW },
    { 4096, G_BAD }, { 0x7fffffffu, G_RW }, { 0xfffffffdu, G_RO },
    { 0xfffffffeu, G_RW }, { 0xffffffffu, G_RW },
};
#define NPAL (sizeof(palette) / sizeof(palette[0]))

static enum grant_kind kind_of(grant_ref_t ref)
{
    for (unsigned i = 0; i < NPAL; i++)
        if (palette[i].ref == ref)
            return palette[i].kind;
    return G_BAD;
}

/* What a mapped page of <ref> holds (the guest wrote it). */
static uint64_t page_tag(grant_ref_t ref)
{
    return 0x5ea1ed0000000000ull | ref;
}

/* ---- the fake grant device --------------------------------------------- */

#define MAXMAP 512

static struct fake {
    struct {
        char *base;
        unsigned npages;
        bool ro;
        bool purged;             /* with the unmap worker */
        grant_ref_t *refs;
        bool *list;              /* page served as an indirect page */
    } map[MAXMAP];
    unsigned nmap, pages;
    bool fail_next;
    /* Pages the harness holds (for the unmap check). */
    const void *held[4 * (XBD_MAX_INDIRECT_SEGS + 1)];
    unsigned nheld;
} fk;

void *xengnttab_map_domain_grant_refs(xengnttab_handle *xgt, uint32_t count, uint32_t domid,
                                      uint32_t *refs, int prot)
{
    char *base;

    (void)xgt;
    (void)domid;
    xbd_fuzz_assert(count >= 1 && count <= XBD_MAX_INDIRECT_SEGS);
    if (fk.fail_next) {
        fk.fail_next = false;
        errno = ENOMEM;
        return NULL;
    }
    for (uint32_t i = 0; i < count; i++) {
        enum grant_kind k = kind_of(refs[i]);

        if (k == G_BAD || (k == G_RO && (prot & PROT_WRITE))) {
            errno = k == G_BAD ? EINVAL : EPERM;
            return NULL;
        }
    }
    /* Each ref is mapped once (a guest naming one page in 256 segments
     * must not take 256 pages of its share), until it is purged: a
     * purge the unmap worker still holds is out of the cache, so the ref
     * may be mapped again meanwhile (both count in the share). */
    for (uint32_t i = 0; i < count; i++) {
        for (uint32_t j = 0; j < i; j++)
            xbd_fuzz_assert(refs[j] != refs[i]);
        for (unsigned k = 0; k < fk.nmap; k++)
            for (unsigned j = 0; j < fk.map[k].npages && !fk.map[k].purged; j++)
                xbd_fuzz_assert(fk.map[k].refs[j] != refs[i]);
    }
    xbd_fuzz_assert(fk.nmap < MAXMAP);
    base = mmap(NULL, (size_t)count * XBD_PAGE_SIZE, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    xbd_fuzz_assert(base != MAP_FAILED);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t tag = page_tag(refs[i]);

        memcpy(base + (size_t)i * XBD_PAGE_SIZE, &tag, sizeof(tag));
    }
    if (!(prot & PROT_WRITE))
        xbd_fuzz_assert(mprotect(base, (size_t)count * XBD_PAGE_SIZE, PROT_READ) == 0);
    fk.map[fk.nmap].base = base;
    fk.map[fk.nmap].npages = count;
    fk.map[fk.nmap].ro = !(prot & PROT_WRITE);
    fk.map[fk.nmap].purged = false;
    fk.map[fk.nmap].refs = malloc(count * sizeof(*refs));
    xbd_fuzz_assert(fk.map[fk.nmap].refs);
    memcpy(fk.map[fk.nmap].refs, refs, count * sizeof(*refs));
    fk.map[fk.nmap].list = calloc(count, sizeof(bool));
    xbd_fuzz_assert(fk.map[fk.nmap].list);
    fk.nmap++;
    fk.pages += count;
    return base;
}

int xengnttab_unmap(xengnttab_handle *xgt, void *start_address, uint32_t count)
{
    char *a = start_address;

    (void)xgt;
    for (unsigned i = 0; i < fk.nmap; i++) {
        size_t len = (size_t)fk.map[i].npages * XBD_PAGE_SIZE;

        if (fk.map[i].base != a)
            continue;
        /* libxengnttab on Linux: the whole mapping, or EINVAL. */
        xbd_fuzz_assert(count == fk.map[i].npages);
        for (unsigned h = 0; h < fk.nheld; h++)
            xbd_fuzz_assert(!((const char *)fk.held[h] >= a &&
                              (const char *)fk.held[h] < a + len));
        xbd_fuzz_assert(munmap(a, len) == 0);
        fk.pages -= count;
        free(fk.map[i].refs);
        free(fk.map[i].list);
        fk.map[i] = fk.map[--fk.nmap];
        return 0;
    }
    xbd_fuzz_assert(!"unmap of an address that is no mapping");
    return -1;
}

/* The mapping holding <p>, or -1. */
static int mapping_of(const void *p)
{
    for (unsigned i = 0; i < fk.nmap; i++) {
        const char *b = fk.map[i].base;

        if ((const char *)p >= b && (const char *)p < b + (size_t)fk.map[i].npages * XBD_PAGE_SIZE)
            return (int)i;
    }
    return -1;
}


/* ---- the fake unmap worker ---------------------------------------------- */

struct xbd_unmap_tally {
    unsigned pages;              /* submitted, not unmapped yet */
    unsigned refs;               /* the owner's, and each batch's */
};

struct xbd_unmap_batch {
    struct {
        void *addr;
        uint32_t npages;
    } *maps;
    unsigned n, cap, pages;
    struct xbd_map_reserve *reserve;
    struct xbd_unmap_tally *tally;
    bool purge;
    struct xbd_unmap_batch *next;
};

/* The worker's queue, oldest first. */
static struct {
    struct xbd_unmap_batch *head, **tail;
} wk;

struct xbd_unmap_tally *xbd_unmap_tally_new(void)
{
    struct xbd_unmap_tally *t = calloc(1, sizeof(*t));

    if (t)
        t->refs = 1;
    return t;
}

unsigned xbd_unmap_tally_pages(const struct xbd_unmap_tally *t)
{
    return t ? t->pages : 0;
}

static void tally_unref(struct xbd_unmap_tally *t)
{
    if (t && !--t->refs)
        free(t);
}

void xbd_unmap_tally_drop(struct xbd_unmap_tally *t)
{
    tally_unref(t);
}

struct xbd_unmap_batch *xbd_unmap_batch_new(const char *name, xengnttab_handle *xgt,
                                            unsigned max_maps)
{
    struct xbd_unmap_batch *b = calloc(1, sizeof(*b));

    (void)name;
    xbd_fuzz_assert(xgt == (xengnttab_handle *)&fk);
    if (!b)
        return NULL;
    b->cap = max_maps;
    b->maps = calloc(max_maps ? max_maps : 1, sizeof(*b->maps));
    xbd_fuzz_assert(b->maps);
    return b;
}

void xbd_unmap_batch_add(struct xbd_unmap_batch *b, void *addr, uint32_t npages)
{
    /* Past max_maps is the caller's bug (unmap_worker.h). */
    xbd_fuzz_assert(b->n < b->cap);
    b->maps[b->n].addr = addr;
    b->maps[b->n++].npages = npages;
    b->pages += npages;
}

void xbd_unmap_batch_set_purge(struct xbd_unmap_batch *b)
{
    b->purge = true;
}

void xbd_unmap_batch_set_reserve(struct xbd_unmap_batch *b, struct xbd_map_reserve *m)
{
    b->reserve = m;
}

void xbd_unmap_batch_set_tally(struct xbd_unmap_batch *b, struct xbd_unmap_tally *t)
{
    b->tally = t;
}

void xbd_unmapper_submit(struct xbd_unmapper *u, struct xbd_unmap_batch *b,
                         xbd_unmap_done_fn *done, void *opaque)
{
    (void)u;
    (void)opaque;
    /* A running ring's purges only: no stop, no callback. */
    xbd_fuzz_assert(b->purge && !done);
    if (b->tally) {
        b->tally->pages += b->pages;
        b->tally->refs++;
    }
    for (unsigned i = 0; i < b->n; i++) {
        int m = mapping_of(b->maps[i].addr);

        xbd_fuzz_assert(m >= 0 && fk.map[m].base == b->maps[i].addr &&
                        fk.map[m].npages == b->maps[i].npages && !fk.map[m].purged);
        fk.map[m].purged = true;
    }
    b->next = NULL;
    *wk.tail = b;
    wk.tail = &b->next;
}

/* The oldest batch unmapped by the worker and reported on the loop:
 * false if there is none. */
static bool worker_complete(void)
{
    struct xbd_unmap_batch *b = wk.head;

    if (!b)
        return false;
    wk.head = b->next;
    if (!wk.head)
        wk.tail = &wk.head;
    for (unsigned i = 0; i < b->n; i++) {
        xbd_fuzz_assert(xengnttab_unmap((xengnttab_handle *)&fk, b->maps[i].addr,
                                        b->maps[i].npages) == 0);
        for (uint32_t p = 0; p < b->maps[i].npages; p++)
            xbd_map_reserve_give(b->reserve);
    }
    if (b->tally) {
        xbd_fuzz_assert(b->tally->pages >= b->pages);
        b->tally->pages -= b->pages;
        tally_unref(b->tally);
    }
    free(b->maps);
    free(b);
    return true;
}

/* Pages the worker holds, and a check of the tally that counts them. */
static unsigned worker_pages(void)
{
    unsigned n = 0;

    for (const struct xbd_unmap_batch *b = wk.head; b; b = b->next)
        n += b->pages;
    for (const struct xbd_unmap_batch *b = wk.head; b; b = b->next)
        xbd_fuzz_assert(!b->tally || b->tally->pages == n);
    return n;
}

/* ---- requests, as ring.c makes them ------------------------------------- */

#define NSLOT 4

struct slot {
    unsigned n;                  /* 0: free */
    struct xbd_gnt **g;          /* n entries, exactly */
};

static void hold(const void *p)
{
    xbd_fuzz_assert(fk.nheld < sizeof(fk.held) / sizeof(fk.held[0]));
    fk.held[fk.nheld++] = p;
}

static void unhold(const void *p)
{
    for (unsigned h = 0; h < fk.nheld; h++)
        if (fk.held[h] == p) {
            fk.held[h] = fk.held[--fk.nheld];
            return;
        }
    xbd_fuzz_assert(!"released a page never held");
}

static void release(struct xbd_gcache *c, struct slot *s, double now)
{
    for (unsigned i = 0; i < s->n; i++)
        if (s->g[i]) {
            unhold(xbd_gnt_page(s->g[i]));
            xbd_gcache_put(c, s->g[i], now);
        }
    free(s->g);
    s->g = NULL;
    s->n = 0;
}

/* fetch_indirect(): the page copied out of its mapping, released at once. */
static void indirect_page(struct xbd_gcache *c, grant_ref_t ref, double now)
{
    int err = -1;
    struct xbd_gnt *g = xbd_gcache_get_indirect(c, ref, &err);
    uint64_t tag;
    int m;

    if (!g) {
        xbd_fuzz_assert(err >= 0);
        return;
    }
    xbd_fuzz_assert(err == 0 && kind_of(ref) != G_BAD);
    m = mapping_of(xbd_gnt_page(g));
    xbd_fuzz_assert(m >= 0 && !fk.map[m].purged);
    memcpy(&tag, xbd_gnt_page(g), sizeof(tag));
    xbd_fuzz_assert(tag == page_tag(ref));
    fk.map[m].list[((char *)xbd_gnt_page(g) - fk.map[m].base) / XBD_PAGE_SIZE] = true;
    xbd_gcache_put(c, g, now);
}

/* Cached pages (mappings not purged) that served as indirect pages. */
static unsigned list_pages(void)
{
    unsigned n = 0;

    for (unsigned k = 0; k < fk.nmap; k++)
        for (unsigned j = 0; j < fk.map[k].npages && !fk.map[k].purged; j++)
            n += fk.map[k].list[j];
    return n;
}

static void check_segs(const struct xbd_seg *seg, unsigned n, struct xbd_gnt **g, int err,
                       unsigned mapped_before)
{
    for (unsigned i = 0; i < n; i++) {
        char *p;
        int m;
        uint64_t tag;

        if (!g[i])
            continue;           /* copied */
        /* Only a usable grant, never a read-only one as data. */
        xbd_fuzz_assert(kind_of(seg[i].gref) == G_RW);
        p = xbd_gnt_page(g[i]);
        m = mapping_of(p);
        xbd_fuzz_assert(m >= 0 && !fk.map[m].ro && !fk.map[m].purged);
        memcpy(&tag, p, sizeof(tag));
        xbd_fuzz_assert(tag == page_tag(seg[i].gref));
        /* The backing store's data lands here on a READ. */
        p[XBD_PAGE_SIZE - 1] = (char)i;
        for (unsigned j = 0; j < i; j++)
            if (seg[j].gref == seg[i].gref)
                xbd_fuzz_assert(g[j] == g[i]);
    }
    /* A failed call mapped nothing. */
    if (err)
        xbd_fuzz_assert(fk.pages == mapped_before);
}

static void new_request(struct xbd_gcache *c, struct xbd_ring_stats *st, struct slot *s,
                        struct xbd_fuzz_in *in, double now, unsigned max, unsigned headroom)
{
    unsigned flags = (unsigned)xbd_fuzz_take(in, 1), n, mapped, lists, data_share;
    struct xbd_seg *seg;
    grant_ref_t *scratch;
    uint64_t lookups;
    int err;

    n = (unsigned)xbd_fuzz_take(in, 1);
    n = flags & 2 ? 1 + n % XBD_MAX_INDIRECT_SEGS : 1 + n % BLKIF_MAX_SEGMENTS_PER_REQUEST;
    seg = calloc(n, sizeof(*seg));
    scratch = calloc(n, sizeof(*scratch));
    s->g = calloc(n, sizeof(*s->g));
    xbd_fuzz_assert(seg && scratch && s->g);
    for (unsigned i = 0; i < n; i++)
        seg[i] = (struct xbd_seg){ palette[xbd_fuzz_take(in, 1) % NPAL].ref, 0, 7 };
    if (flags & 1)
        indirect_page(c, palette[xbd_fuzz_take(in, 1) % NPAL].ref, now);
    /* Poisoned: get_segs sets every entry. */
    memset(s->g, 0xa5, n * sizeof(*s->g));
    lookups = st->pgrant_lookups;
    mapped = fk.pages;
    /* Data may fill the share but the part of the headroom that pages
     * which served as indirect pages do not hold yet. */
    lists = list_pages();
    headroom = headroom < max ? headroom : max;
    data_share = max - (headroom > lists ? headroom - lists : 0);
    err = xbd_gcache_get_segs(c, seg, n, s->g, scratch);
    xbd_fuzz_assert(st->pgrant_lookups - lookups == n);
    xbd_fuzz_assert(err >= 0);
    check_segs(seg, n, s->g, err, mapped);
    /* Data pages never take the free part of the headroom. */
    if (fk.pages > mapped)
        xbd_fuzz_assert(fk.pages <= data_share);
    s->n = n;
    for (unsigned i = 0; i < n; i++)
        if (s->g[i])
            hold(xbd_gnt_page(s->g[i]));
    free(seg);
    free(scratch);
}

static void check_counts(struct xbd_gcache *c, const struct xbd_ring_stats *st,
                         const struct xbd_map_reserve *m, unsigned max)
{
    /* Purged pages leave the cache at once but stay mapped, in the
     * ring's share and the reserve, until the worker unmapped them. */
    xbd_fuzz_assert(xbd_gcache_count(c) + worker_pages() == fk.pages);
    xbd_fuzz_assert(st->pgrants_mapped == xbd_gcache_count(c));
    xbd_fuzz_assert(fk.pages <= max);
    if (m)
        xbd_fuzz_assert(m->used == fk.pages && m->used <= m->limit);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct xbd_fuzz_in in = { data, size };
    unsigned max = 1 + (unsigned)xbd_fuzz_take(&in, 1) % 64;
    unsigned hb = (unsigned)xbd_fuzz_take(&in, 1), headroom = hb % 8;
    static char worker;          /* an unmapper nobody dereferences */
    unsigned lim = (unsigned)xbd_fuzz_take(&in, 1);
    struct xbd_map_reserve res = { .max_map_count = 65530, .limit = lim };
    struct xbd_map_reserve *m = lim == 0xff ? NULL : &res;
    struct xbd_ring_stats st;
    struct slot slot[NSLOT];
    struct xbd_gcache *c;
    double now = 1;

    memset(&fk, 0, sizeof(fk));
    wk.head = NULL;
    wk.tail = &wk.head;
    memset(&st, 0, sizeof(st));
    memset(slot, 0, sizeof(slot));
    c = xbd_gcache_new((xengnttab_handle *)&fk, 7, max, &st);
    xbd_fuzz_assert(c);
    if (hb & 8)
        xbd_gcache_set_unmapper(c, (struct xbd_unmapper *)(void *)&worker, "fuzz");
    xbd_gcache_set_headroom(c, headroom);
    xbd_gcache_set_reserve(c, m);
    while (in.left) {
        unsigned op = (unsigned)xbd_fuzz_take(&in, 1);
        struct slot *s = &slot[op / 8 % NSLOT];

        now += 1;
        switch (op % 8) {
        case 0: case 1: case 2: case 3:
            if (s->n)
                release(c, s, now);
            else
                new_request(c, &st, s, &in, now, max, headroom);
            break;
        case 4:
            xbd_gcache_purge_lru(c, (unsigned)xbd_fuzz_take(&in, 1));
            break;
        case 5: {
            unsigned n = (unsigned)xbd_fuzz_take(&in, 1);

            xbd_gcache_purge_stale(c, n, now - (double)xbd_fuzz_take(&in, 1));
            break;
        }
        case 6:
            xbd_gcache_purge_idle(c, now - (double)xbd_fuzz_take(&in, 1));
            break;
        default: {
            unsigned x = (unsigned)xbd_fuzz_take(&in, 1);

            fk.fail_next = x & 1;
            if (x & 2) {
                /* Never below what is reserved: a lower limit only
                 * refuses new mappings. */
                res.limit = xbd_fuzz_take(&in, 1);
                if (res.limit < res.used)
                    res.limit = res.used;
            }
            if (x & 4)
                worker_complete();
            break;
        }
        }
        (void)xbd_gcache_take_full_hint(c);
        check_counts(c, &st, m, max);
    }
    for (unsigned i = 0; i < NSLOT; i++)
        release(c, &slot[i], now);
    xbd_fuzz_assert(fk.nheld == 0);
    xbd_gcache_free(c);
    /* A ring may stop while its purges are still with the worker. */
    while (worker_complete())
        ;
    xbd_fuzz_assert(fk.pages == 0 && fk.nmap == 0);
    xbd_fuzz_assert(res.used == 0);
    return 0;
}
