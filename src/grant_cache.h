/*
 * grant_cache.h - the persistent grants of one ring.
 *
 * A bounded hash table ref -> page mapped (writable, as Linux blkback maps
 * persistent grants) for the lifetime of the ring.  Entries in use by a
 * request are pinned; entries not in use sit on an LRU list and are the
 * only ones a purge may unmap.  When the table is full, get() returns NULL
 * without an error and the caller falls back to grant copy for that page:
 * we never map and unmap per request.
 */
#ifndef XENBLKD_GRANT_CACHE_H
#define XENBLKD_GRANT_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <xengnttab.h>
#include "xenblkd/dataplane.h"

struct xbd_gcache;
struct xbd_gnt;

struct xbd_gcache *xbd_gcache_new(xengnttab_handle *xgt, domid_t domid,
                                  unsigned max, struct xbd_ring_stats *st);
/* Pin the mapping of <ref>, mapping it on first use.  NULL with *err = 0:
 * the cache is full, or the host-wide reserve is used up (use grant
 * copy); NULL with *err = errno: the map failed (grant copy may still
 * work: the ring tries it). */
struct xbd_gnt *xbd_gcache_get(struct xbd_gcache *c, grant_ref_t ref, int *err);
/* The same for an indirect page, which is mapped read-only if the guest
 * granted it so (the reference frontend does; Linux grants every page
 * writable), and may also take the headroom: the
 * last entries of the cache, kept from data pages so that when the
 * guest's data pages overflow the cache, its few indirect pages stay
 * mapped and a request costs one copy call (its data), not two. */
struct xbd_gnt *xbd_gcache_get_indirect(struct xbd_gcache *c, grant_ref_t ref, int *err);
/* Entries only xbd_gcache_get_indirect() may take (0 by default). */
void xbd_gcache_set_headroom(struct xbd_gcache *c, unsigned n);
void *xbd_gnt_page(const struct xbd_gnt *g);
/* Unpin; <now> is the page's last use (idle purges). */
void xbd_gcache_put(struct xbd_gcache *c, struct xbd_gnt *g, double now);
/* Unmap up to <n> least recently used entries not in use; returns how many
 * were unmapped. */
unsigned xbd_gcache_purge_lru(struct xbd_gcache *c, unsigned n);
/* Unmap up to <n> least recently used entries not in use and unused
 * since before <older_than>: the purge of a full cache (ring.c), which
 * never evicts a grant the guest keeps using, so a working set larger
 * than the cache is served part mapped, part copied, instead of being
 * mapped and unmapped over and over (map + unmap + TLB flush on Xen, for
 * a page that then goes by copy anyway). */
unsigned xbd_gcache_purge_stale(struct xbd_gcache *c, unsigned n, double older_than);
/* Unmap entries not in use and unused since before <older_than>. */
unsigned xbd_gcache_purge_idle(struct xbd_gcache *c, double older_than);
/* Count every mapping against m too (src/budget.h; NULL: no reserve). */
struct xbd_map_reserve;
void xbd_gcache_set_reserve(struct xbd_gcache *c, struct xbd_map_reserve *m);
unsigned xbd_gcache_count(const struct xbd_gcache *c);
unsigned xbd_gcache_max(const struct xbd_gcache *c);
/* True (and reset) if get() refused an entry for lack of room since the
 * last call. */
bool xbd_gcache_take_full_hint(struct xbd_gcache *c);
/* Unmap everything.  Only once no I/O can reference any entry. */
void xbd_gcache_free(struct xbd_gcache *c);
/* Free the cache without unmapping: every mapping, with its unit of the
 * reserve, goes to <b> (unmap_worker.h), which has room for
 * xbd_gcache_count() pages.  Only once no I/O can reference any entry. */
struct xbd_unmap_batch;
void xbd_gcache_hand_over(struct xbd_gcache *c, struct xbd_unmap_batch *b);

#endif
