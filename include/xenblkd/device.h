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
    const char *state_dir;      /* ring journals in <state_dir>/rings (journal.h) */
};

/* Default state directory (--state-dir): kept by systemd across restarts
 * (RuntimeDirectory=xenblkd, RuntimeDirectoryPreserve=yes). */
#define XBD_DEFAULT_STATE_DIR "/run/xenblkd"

struct xbd_host;

struct xbd_host *xbd_host_new(struct ev_loop *loop, struct xbd_xenbus *xb,
                              struct xbd_io_engine *io, const struct xbd_config *cfg,
                              unsigned own_domid);
/* Start serving a backend kind: watch its directory (the watch fires once
 * at once, which picks up devices that already exist).  -1 on failure. */
int xbd_host_add_kind(struct xbd_host *h, const char *kind);

/* How the daemon stops (man xenblkd, RESTARTING). */
enum xbd_stop_mode {
    /* For a restart or an upgrade: stop reading requests, let in-flight
     * I/O finish (at most XBD_HANDOVER_TIMEOUT s), publish every response,
     * unmap every grant, unbind every event channel, keep the ring
     * journals, leave xenstore as it is (Connected stays Connected).  The
     * next instance resumes every ring; the guests see a pause. */
    XBD_STOP_HANDOVER,
    /* For good: every device goes Closing, its rings drain, then Closed
     * (guests lose their disks); journals removed. */
    XBD_STOP_CLOSE,
};
#define XBD_HANDOVER_TIMEOUT 15.0

typedef void xbd_host_done_fn(void *opaque);
/* done(opaque) runs from the loop once every device is handed over or
 * Closed (or the time is up: then the rings left are logged, and after a
 * handover their journals let the next instance redo what they had in
 * flight). */
void xbd_host_shutdown(struct xbd_host *h, enum xbd_stop_mode mode,
                       xbd_host_done_fn *done, void *opaque);
/* Remove the ring journals of devices that no longer exist in xenstore
 * (deleted while no instance ran).  After xbd_host_add_kind. */
void xbd_host_sweep_journals(struct xbd_host *h);
/* Free everything; only after shutdown completed (or no rings running). */
void xbd_host_free(struct xbd_host *h);

unsigned xbd_host_device_count(const struct xbd_host *h);
/* Re-read the size of every open backing store; a disk that grew or shrank
 * is served at its new size from now on, and a connected frontend is told
 * (new "sectors", "state" rewritten: blkfront resizes the disk online). */
void xbd_host_check_sizes(struct xbd_host *h);

#endif
