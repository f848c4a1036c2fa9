/*
 * unmap_worker.h - unmap a stopped ring's grant mappings off the event loop.
 *
 * On Xen unmapping one gntdev mapping costs two ioctls, a munmap and (in
 * the kernel) a GNTTABOP_unmap_grant_ref hypercall with a TLB flush over
 * dom0's vCPUs.  The persistent grants of a ring are mapped one group per
 * request (grant_cache.c), so a full cache is tens to hundreds of
 * mappings, and a guest that brings one new page per request can still
 * make it about a thousand: done on the loop, a ring stop blocks every
 * other guest and may delay the Closed state past libxl's 10 s detach
 * timeout.
 *
 * Once a ring has drained (no request in flight, no page will be touched
 * again) it hands its gntdev handle and every mapping made through it to
 * this worker, a thread of its own: the loop, and so every other guest,
 * goes on meanwhile.
 *
 * The ring reports drained (and its device goes Closed) when the worker
 * is done, as blkback releases everything before Closed and as our
 * reference frontend checks; but at most XBD_UNMAP_GRACE seconds later:
 * past that, libxl's 10 s wait for Closed would run out and the detach
 * fail, while the pages are safe to leave mapped a little longer (never
 * touched again; Linux blkfront's gnttab_end_foreign_access defers a
 * grant still mapped; a destroyed domain stays a zombie until dom0 lets
 * go of its pages).  Every mapping is still unmapped and counted before
 * the process exits: xbd_unmapper_free waits for them, for at most
 * XBD_UNMAP_EXIT_TIMEOUT seconds.
 */
#ifndef XENBLKD_UNMAP_WORKER_H
#define XENBLKD_UNMAP_WORKER_H

#include <stdint.h>
#include <xengnttab.h>

/* Seconds a stopped ring waits for its unmaps before it reports drained
 * anyway: half of libxl's device removal timeout (10 s). */
#define XBD_UNMAP_GRACE 5.0

/* Seconds the exit waits for the unmaps left.  A stop is bounded by the
 * drain (at most 15 s for a handover, 20 s for a close, host.c), this
 * wait and the xenstore thread's (5 s, xenbus.c): 40 s at worst, under
 * the unit's TimeoutStopSec=60s with room for the kernel to unmap what
 * is left as the process exits.  Past it nothing is lost: no page will
 * be touched again, and the kernel unmaps every mapping at exit.  A
 * ring's unmaps take well under a second on Xen 4.20 (one per request's
 * group), so only a stuck unmap reaches it. */
#define XBD_UNMAP_EXIT_TIMEOUT 15.0

struct ev_loop;
struct xbd_map_reserve;
struct xbd_unmapper;

/* The thread and its wake-up on <loop>; NULL + log line on failure (the
 * caller then unmaps on the loop, as before). */
struct xbd_unmapper *xbd_unmapper_new(struct ev_loop *loop);
/* Wait for every batch handed over (at most XBD_UNMAP_EXIT_TIMEOUT s:
 * past it, warn with the mappings left and leave the thread behind for
 * the process's exit), report them, join the thread, free. */
void xbd_unmapper_free(struct xbd_unmapper *u);

/* One ring's mappings: up to <max_maps> mappings (one unmap call each)
 * whose every page holds one unit of <reserve> (given back on the loop
 * once unmapped), and the ring itself (<ring>, <ring_pages> pages; NULL:
 * none), all made through <xgt>, which the worker closes after them. */
struct xbd_unmap_batch;
struct xbd_unmap_batch *xbd_unmap_batch_new(const char *name, xengnttab_handle *xgt,
                                            unsigned max_maps);
/* Add a whole mapping of <npages> pages at <addr>.  Past max_maps (a
 * caller's bug) it is unmapped at once, on the caller's thread, with an
 * error logged: never leaked, never silently. */
void xbd_unmap_batch_add(struct xbd_unmap_batch *b, void *addr, uint32_t npages);
void xbd_unmap_batch_set_ring(struct xbd_unmap_batch *b, void *ring, uint32_t ring_pages);
void xbd_unmap_batch_set_reserve(struct xbd_unmap_batch *b, struct xbd_map_reserve *m);
/* The mappings a running ring purged (grant_cache.c): the worker leaves
 * the handle open (the ring goes on using it; a later stop's batch closes
 * it after these, batches run in order), there is no grace period, the
 * batch does not count as a stopped ring, and <done> may be NULL. */
void xbd_unmap_batch_set_purge(struct xbd_unmap_batch *b);
unsigned xbd_unmap_batch_count(const struct xbd_unmap_batch *b);
/* The pages a running ring handed over and the worker has not unmapped
 * yet: still mapped (gntdev, Xen's maptrack), so still the ring's, whose
 * share counts them (grant_cache.c).  Loop thread only.  The owner's
 * reference and each submitted batch's keep it alive: a ring may stop
 * (and its cache go) while its purges are still queued. */
struct xbd_unmap_tally;
struct xbd_unmap_tally *xbd_unmap_tally_new(void);
unsigned xbd_unmap_tally_pages(const struct xbd_unmap_tally *t);
/* The owner lets go; freed once no batch counts in it either. */
void xbd_unmap_tally_drop(struct xbd_unmap_tally *t);
/* The batch's pages count in <t> from its submission until they are
 * unmapped (reported on the loop, also while the unmapper is freed). */
void xbd_unmap_batch_set_tally(struct xbd_unmap_batch *b, struct xbd_unmap_tally *t);
/* A batch never submitted. */
void xbd_unmap_batch_free(struct xbd_unmap_batch *b);
/* Hand over: from now on the worker owns the batch, the handle and the
 * mappings; nobody else may use any of them.  <done>(<opaque>) runs on
 * the loop once they are unmapped, or after XBD_UNMAP_GRACE seconds if
 * that comes first; never after xbd_unmapper_free started. */
typedef void xbd_unmap_done_fn(void *opaque);
void xbd_unmapper_submit(struct xbd_unmapper *u, struct xbd_unmap_batch *b,
                         xbd_unmap_done_fn *done, void *opaque);
/* Stopped rings' batches handed over and not yet reported (for tests and
 * stats; purges are not counted). */
unsigned xbd_unmapper_pending(const struct xbd_unmapper *u);
/* Mappings (purges' and ring pages included) handed over and not yet
 * unmapped; any thread. */
unsigned xbd_unmapper_maps_left(const struct xbd_unmapper *u);

#endif
