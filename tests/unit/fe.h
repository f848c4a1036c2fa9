/*
 * fe.h - a minimal in-process frontend and backend rig for the data plane
 * tests: a simulated guest (tests/sim guest library) with a shared ring in
 * any of the three ABIs, and a real xbd_ring (src/libxenblkd.a) serving it
 * through the simulated libxengnttab/libxenevtchn, in one event loop.
 */
#ifndef XBD_TEST_FE_H
#define XBD_TEST_FE_H

#include <stdbool.h>
#include <stdint.h>
#include <ev.h>
#include "blkif_abi.h"
#include "loop_stats.h"
#include "xenblkd/dataplane.h"
#include "tests/sim/xensim_guest.h"

#define FE_NPAGES 64         /* data pages granted to the backend */

struct fe {
    xsg_dom *d;
    domid_t domid;
    enum xbd_protocol proto;
    unsigned order;
    struct blkif_front_ring fr;   /* indexes; nr_ents for our ABI */
    void *sring;
    evtchn_port_t port;
    grant_ref_t ring_refs[XBD_MAX_RING_PAGES];
    uint32_t gfn[FE_NPAGES];
    grant_ref_t ref[FE_NPAGES];
    uint32_t ro_gfn;         /* one page granted read-only */
    grant_ref_t ro_ref;
};

struct be {
    struct ev_loop *loop;
    struct xbd_io_engine *io;
    struct xbd_ring *ring;
    struct xbd_backing bk;
    struct xbd_ring_params p;
    char path[256];
    int plain_fd;            /* buffered fd for checks (bk.fd may be O_DIRECT) */
    int fatal_calls;
    bool drained;
    /* What the stopped ring handed over as it went (its counted callback):
     * how often, a copy of the counters, and whether drained came first. */
    int counted_calls;
    bool counted_after_drained;
    struct xbd_ring_stats final;
    bool stop_on_fatal;
    struct xbd_loop_stats clock;  /* the loop's clock, given to the ring */
};

struct fe_seg { grant_ref_t gref; uint8_t first, last; };

/* Rig set-up / tear-down.  Exits the test on set-up failures. */
void rig_init(int argc, char **argv);     /* sim libs + private XENSIM_DIR */
void fe_open(struct fe *f, domid_t domid, enum xbd_protocol proto, unsigned order);
/* The same with a guest of nr_pages pages and nr_grants grant refs
 * (fe_open: 256 and 1024), for a frontend that grants more pages of its
 * own (xsg_page_alloc + xsg_grant on f->d). */
void fe_open_sized(struct fe *f, domid_t domid, enum xbd_protocol proto, unsigned order,
                   uint32_t nr_pages, uint32_t nr_grants);
void fe_close(struct fe *f);
void be_open(struct be *b, struct fe *f, uint64_t sectors, bool persistent,
             unsigned max_indirect, unsigned max_pgrants);
/* be_open with persistent grants that idle out after pgrant_idle_s. */
void be_open_idle(struct be *b, struct fe *f, uint64_t sectors, double pgrant_idle_s);
/* Ask the ring to stop; it drains (b->drained) once its I/O is done. */
void be_stop(struct be *b);
/* Run the loop until the stopped ring has drained or timeout_s passed;
 * returns b->drained. */
bool be_wait_drained(struct be *b, double timeout_s);
/* Stop the ring, wait for it to drain (exits the test if it never does),
 * free the rest. */
void be_close(struct be *b);

/* Queue requests (not yet visible to the backend). */
void fe_rw(struct fe *f, uint8_t op, uint64_t id, uint64_t sector,
           const struct fe_seg *segs, unsigned n);
/* One segment: the whole of data page <page> (f->ref[page]). */
void fe_rw_page(struct fe *f, uint8_t op, uint64_t id, uint64_t sector, unsigned page);
void fe_discard(struct fe *f, uint64_t id, uint64_t sector, uint64_t nr, bool secure);
void fe_indirect(struct fe *f, uint8_t iop, uint64_t id, uint64_t sector,
                 uint16_t nseg, const grant_ref_t *pages, unsigned npages);
/* Publish queued requests and notify if the backend asked for it. */
void fe_push(struct fe *f);
unsigned fe_pending_rsp(struct fe *f);
/* Pop one response; returns false if none. */
bool fe_pop(struct fe *f, uint64_t *id, uint8_t *op, int16_t *status);

/* Run the loop until n responses are available or timeout_s passed;
 * returns the number available. */
unsigned run_until_rsp(struct be *b, struct fe *f, unsigned n, double timeout_s);
/* Run the loop one iteration at a time until done(b, arg) holds or
 * timeout_s passed; returns done(b, arg).  The condition is looked at
 * before each poll (the lowest-priority prepare round) and between
 * iterations, where the ring's counters are consistent and every
 * response an iteration wrote is published.  The timeout only turns a
 * hang into a failure: make it generous. */
bool run_until(struct be *b, bool (*done)(struct be *, void *), void *arg,
               double timeout_s);
/* A condition for run_until: the ring called its fatal callback. */
bool fe_fatal_seen(struct be *b, void *unused);
/* Run the loop for a fixed span: only where no event can say that the
 * wait is over (a check that nothing happens in a time window). */
void run_for(struct be *b, double seconds);

/* Fill the guest page of data page i with a pattern from (seed, i). */
void fe_fill(struct fe *f, unsigned i, uint32_t seed);
bool fe_check(struct fe *f, unsigned i, uint32_t seed);
void pattern(void *buf, size_t len, uint32_t seed);

#endif
