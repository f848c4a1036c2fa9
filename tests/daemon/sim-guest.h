/*
 * sim-guest.h - what the simulated guest programs (tests/daemon/xbd-guest,
 * tests/hostile/storm-guest) share: dying with a message, writing a file
 * atomically for the test script, and offering the backend one empty blkif
 * ring (pages granted, event channel unbound) the way a frontend does
 * before it writes its xenstore keys.
 */
#ifndef XBD_TEST_SIM_GUEST_H
#define XBD_TEST_SIM_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include "xensim_guest.h"

#define SG_MAX_PAGES 16              /* ring pages: order 4 at most */

struct sg_ring {
    unsigned order;                  /* 2^order pages */
    uint32_t gfn[SG_MAX_PAGES];
    grant_ref_t ref[SG_MAX_PAGES];
    evtchn_port_t port;
};

/* Print "<program>: <what>: <strerror(errno)>" and exit 1. */
void sg_die(const char *what) __attribute__((noreturn));
/* Write <text> to <path> through a rename, so a reader never sees half. */
void sg_write_file(const char *path, const char *text);
/* Allocate, zero and grant to <backend> the 2^r->order pages of an empty
 * ring (r->order set by the caller, <= 4), initialise its indexes and
 * allocate its unbound event channel.  Dies on failure. */
void sg_ring_offer(xsg_dom *d, domid_t backend, struct sg_ring *r);
/* Append "<queue> ORDER PORT REF...\n" (tests/daemon/lib.sh fe_write_rings
 * reads it) to text[*len..size); dies if it does not fit. */
void sg_ring_describe(const struct sg_ring *r, unsigned queue, char *text,
                      size_t size, size_t *len);

#endif
