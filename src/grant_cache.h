/*
 * grant_cache.h - the persistent grants of one ring.
 *
 * A bounded hash table ref -> page mapped (writable, as Linux blkback maps
 * persistent grants) for the lifetime of the ring.  The pages a request
 * brings that are not cached yet are mapped together, one gntdev mapping
 * (a group) per request, and a group is unmapped only as a whole, once
 * none of its pages is in use (grant_cache.c says why and how the purges
 * choose).  Entries in use by a request are pinned.  When the table is
 * full, the get functions give NULL without an error and the caller falls
 * back to grant copy for that page: we never map and unmap per request.
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
/* Pin the pages of a request's n segments, one hash lookup each:
 * out[i] is the mapping of seg[i].gref, held (one use) until
 * xbd_gcache_put(), or NULL: copy that segment.  The refs not cached yet
 * (each distinct ref once) are mapped writable in ONE map call, as one
 * group, as many as the cache's data share and the host reserve leave
 * room for (the others: NULL, the cache says it is full).  A page cached
 * read-only (an indirect page) is never handed out as data: NULL.
 * Returns 0, or the errno of a failed map call (one bad, read-only or
 * revoked ref fails it whole): then every ref it had is NULL, this
 * request only (grant copy gives a good page its data and a bad one its
 * error).  Every out[i] is set, whatever the result: the caller puts
 * each non-NULL one exactly once.  scratch[]: n entries, overwritten.
 * Per segment it counts a hit or a miss, and for each NULL either
 * pgrant_map_failures (its ref was in the call that failed) or
 * pgrant_budget_full (no room for it). */
struct xbd_seg;
int xbd_gcache_get_segs(struct xbd_gcache *c, const struct xbd_seg *seg, unsigned n,
                        struct xbd_gnt **out, grant_ref_t *scratch);
/* Pin the mapping of indirect page <ref>, mapping it on its own on first
 * use, read-only if the guest granted it so (the reference frontend
 * does; Linux grants every page writable).  It may also take the
 * headroom: entries kept from data pages so that when the guest's data
 * pages overflow the cache, its few indirect pages stay mapped and a
 * request costs one copy call (its data), not two.  Every cached page
 * that served as an indirect page (mapped here, or a data page named as
 * one: Linux blkfront draws both from one pool) holds one entry of the
 * headroom, so data pages get whatever of it such pages do not already
 * hold.  NULL with *err = 0: the cache is full, or the host-wide reserve
 * is used up (use grant copy); NULL with *err = errno: the map failed. */
struct xbd_gnt *xbd_gcache_get_indirect(struct xbd_gcache *c, grant_ref_t ref, int *err);
/* Entries kept for indirect pages (0 by default): data pages may fill
 * the cache up to its max less the part of these n that no cached page
 * which served as an indirect page holds (see get_indirect above). */
void xbd_gcache_set_headroom(struct xbd_gcache *c, unsigned n);
void *xbd_gnt_page(const struct xbd_gnt *g);
/* Unpin; <now> is the page's last use (idle purges). */
void xbd_gcache_put(struct xbd_gcache *c, struct xbd_gnt *g, double now);
/* The purges unmap whole groups none of whose pages is in use, least
 * recently used first, and count pages: <n> is the pages wanted (the
 * last group may take it past <n>), the result the pages unmapped. */
/* Unmap least recently used groups not in use, at least <n> pages. */
unsigned xbd_gcache_purge_lru(struct xbd_gcache *c, unsigned n);
/* The same, only groups none of whose pages was used since before
 * <older_than>: the purge of a full cache (ring.c), which never evicts a
 * grant the guest keeps using (nor its group), so a working set larger
 * than the cache is served part mapped, part copied, instead of being
 * mapped and unmapped over and over (map + unmap + TLB flush on Xen, for
 * a page that then goes by copy anyway). */
unsigned xbd_gcache_purge_stale(struct xbd_gcache *c, unsigned n, double older_than);
/* Unmap groups not in use and unused since before <older_than>. */
unsigned xbd_gcache_purge_idle(struct xbd_gcache *c, double older_than);
/* Count every mapping against m too (src/budget.h; NULL: no reserve). */
struct xbd_map_reserve;
void xbd_gcache_set_reserve(struct xbd_gcache *c, struct xbd_map_reserve *m);
/* Pages mapped (every page of every group). */
unsigned xbd_gcache_count(const struct xbd_gcache *c);
/* Purges hand their unmaps to <u> (unmap_worker.h; NULL: unmap on the
 * caller's thread), in batches named <name> (kept: the owner's).  A purged
 * page leaves the cache's count at once, but it is still mapped until the
 * worker unmapped it: until then it still takes room in the ring's share
 * (new pages go by copy) and its unit of the host reserve, so neither the
 * ring's share nor the host-wide limit below vm.max_map_count is ever
 * exceeded, however slow the unmaps. */
struct xbd_unmapper;
void xbd_gcache_set_unmapper(struct xbd_gcache *c, struct xbd_unmapper *u, const char *name);
unsigned xbd_gcache_max(const struct xbd_gcache *c);
/* Pages handed to map calls so far, whether the call mapped them or
 * failed (a bad ref fails its whole group): the work a guest made us do,
 * which its mapped pages alone do not show. */
uint64_t xbd_gcache_pages_tried(const struct xbd_gcache *c);
/* True (and reset) if a get function refused an entry for lack of room
 * since the last call. */
bool xbd_gcache_take_full_hint(struct xbd_gcache *c);
/* Unmap everything.  Only once no I/O can reference any entry. */
void xbd_gcache_free(struct xbd_gcache *c);
/* Free the cache without unmapping: every group (one mapping), with its
 * pages' units of the reserve, goes to <b> (unmap_worker.h), which has
 * room for xbd_gcache_count() mappings (there are at most that many).  Only once no I/O can reference any entry. */
struct xbd_unmap_batch;
void xbd_gcache_hand_over(struct xbd_gcache *c, struct xbd_unmap_batch *b);

#endif
