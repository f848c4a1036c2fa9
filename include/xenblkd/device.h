/*
 * device.h - virtual block devices and the xenbus state machine that
 * drives them.
 *
 * A xbd_host (src/host.c) owns every device of the daemon: it watches
 * /local/domain/<own domid>/backend/<kind> for each served kind, creates a
 * device object when a backend directory appears and frees it when the
 * directory is gone.  Each device (src/device.c) re-reads its keys (never
 * counts events: XSA-349) and moves between the XenbusStates of blkif.h.
 */
#ifndef XENBLKD_DEVICE_H
#define XENBLKD_DEVICE_H

#include <stdbool.h>
#include <stdint.h>
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
/* How the daemon stops.  HANDOVER: for a restart (SIGTERM, SIGINT, the
 * control socket's shutdown without "close"): a successor resumes the
 * rings.  CLOSE: every device is closed for good (the guests lose their
 * disks).  Until the handover journal exists, HANDOVER closes too. */
enum xbd_stop_mode { XBD_STOP_HANDOVER, XBD_STOP_CLOSE };
/* Orderly shutdown: every device goes Closing, its rings drain, then
 * Closed; done(opaque) runs from the loop once all are Closed. */
void xbd_host_shutdown(struct xbd_host *h, enum xbd_stop_mode mode,
                       xbd_host_done_fn *done, void *opaque);
/* Free everything; only after shutdown completed (or no rings running). */
void xbd_host_free(struct xbd_host *h);

unsigned xbd_host_device_count(const struct xbd_host *h);
/* Device i (0 <= i < count), in no particular order; valid until the
 * loop runs again. */
const struct xbd_device *xbd_host_device(const struct xbd_host *h, unsigned i);
/* Rings running, over every device. */
unsigned xbd_host_ring_count(const struct xbd_host *h);
/* Re-read the size of every open backing store; a disk that grew or shrank
 * is served at its new size from now on, and a connected frontend is told
 * (new "sectors", "state" rewritten: blkfront resizes the disk online). */
void xbd_host_check_sizes(struct xbd_host *h);

/* What was negotiated with the frontend at the last connection. */
struct xbd_negotiated {
    enum xbd_protocol protocol;
    unsigned ring_order;
    unsigned nr_queues;
    bool persistent;
    unsigned max_indirect_segs;
};

/* One device as the control socket reports it.  The strings belong to
 * the device: valid until the loop runs again. */
struct xbd_device_info {
    unsigned domid, devid;
    const char *kind;           /* vbd3, qdisk or vbd */
    const char *backend;        /* backend directory in xenstore */
    const char *frontend;       /* frontend directory in xenstore */
    const char *backing_path;   /* opened, else from params; NULL if unknown */
    bool backing_open;
    bool is_blockdev;           /* block device, else regular file */
    uint64_t sectors;           /* 512-byte sectors; the rest 0 while not open */
    unsigned sector_size, physical_sector_size;
    bool readonly;
    bool discard;               /* discard offered to the frontend */
    int state;                  /* XenbusState we published */
    bool connected;             /* rings running: neg is valid */
    struct xbd_negotiated neg;
};

struct xbd_device;
void xbd_device_get_info(const struct xbd_device *dev, struct xbd_device_info *out);
/* Rings running now: ring i serves queue i. */
unsigned xbd_device_ring_count(const struct xbd_device *dev);
const struct xbd_ring_stats *xbd_device_ring_stats(const struct xbd_device *dev, unsigned i);

#endif
