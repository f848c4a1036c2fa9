/*
 * device.h - virtual block devices and the xenbus state machine that
 * drives them.
 *
 * A xbd_host owns every device of the daemon: it watches
 * /local/domain/<own domid>/backend/<kind> for each served kind, creates a
 * device object when a backend directory appears and frees it when the
 * directory is gone.  Each device re-reads its keys (never counts events:
 * XSA-349) and moves between the XenbusStates of blkif.h.
 */
#ifndef XENBLKD_DEVICE_H
#define XENBLKD_DEVICE_H

#include <stdbool.h>
#include <ev.h>

#include "xenblkd/dataplane.h"
#include "xenblkd/xenbus.h"

/* Hard limit of queues (rings) per device, whatever the CPU count. */
#define XBD_MAX_QUEUES 64u

struct xbd_config {
    bool direct_io;             /* open backing stores with O_DIRECT */
    unsigned max_queues;        /* published multi-queue-max-queues */
    unsigned max_pgrants;       /* persistent grants per ring; 0 = off */
    unsigned pgrant_idle_s;     /* unmap unused persistent grants after; 0 = never */
};

struct xbd_host;

struct xbd_host *xbd_host_new(struct ev_loop *loop, struct xbd_xenbus *xb,
                              struct xbd_io_engine *io, const struct xbd_config *cfg,
                              unsigned own_domid);
/* Start serving a backend kind: watch its directory (the watch fires once
 * at once, which picks up devices that already exist).  -1 on failure. */
int xbd_host_add_kind(struct xbd_host *h, const char *kind);

typedef void xbd_host_done_fn(void *opaque);
/* Orderly shutdown: every device goes Closing, its rings drain, then
 * Closed; done(opaque) runs from the loop once all are Closed. */
void xbd_host_shutdown(struct xbd_host *h, xbd_host_done_fn *done, void *opaque);
/* Free everything; only after shutdown completed (or no rings running). */
void xbd_host_free(struct xbd_host *h);

unsigned xbd_host_device_count(const struct xbd_host *h);

/* What a service manager's status line shows. */
struct xbd_host_counts {
    unsigned devices;           /* backend directories we serve */
    unsigned connected;         /* of which Connected, rings running */
    unsigned rings;             /* rings running, over every device */
};
void xbd_host_get_counts(const struct xbd_host *h, struct xbd_host_counts *c);
/* fn(opaque) runs after every evaluation that may have changed the
 * counts (device found, connected, closed, freed); never per request.
 * It may run many times per loop round: coalesce. */
typedef void xbd_host_change_fn(void *opaque);
void xbd_host_on_change(struct xbd_host *h, xbd_host_change_fn *fn, void *opaque);
/* Re-read the size of every open backing store; a disk that grew or shrank
 * is served at its new size from now on, and a connected frontend is told
 * (new "sectors", "state" rewritten: blkfront resizes the disk online). */
void xbd_host_check_sizes(struct xbd_host *h);

#endif
