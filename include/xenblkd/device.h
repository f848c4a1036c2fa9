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

/* What a device is offered.  A device takes a copy when it enters
 * InitWait and negotiates with that copy until it leaves Connected, so a
 * reload (xbd_host_set_config) changes only what later devices see. */
struct xbd_config {
    bool direct_io;             /* open backing stores with O_DIRECT */
    bool discard;               /* offer discard when the toolstack says nothing */
    unsigned max_queues;        /* published multi-queue-max-queues */
    unsigned max_ring_order;    /* published max-ring-page-order, <= XBD_MAX_RING_ORDER */
    unsigned max_indirect_segs; /* feature-max-indirect-segments, <= XBD_MAX_INDIRECT_SEGS; 0 = off */
    unsigned max_pgrants;       /* persistent grants per ring; 0 = off */
    unsigned pgrant_idle_s;     /* unmap unused persistent grants after; 0 = never */
    /* Budgets of one disk, split evenly over its queues (src/budget.h). */
    unsigned disk_memory_mib;   /* request slots and bounce pages */
    unsigned disk_grant_mappings; /* persistent grants mapped at once */
    unsigned disk_fds;          /* also caps multi-queue-max-queues */
    unsigned inflight_per_device; /* shares of the I/O engine (dataplane.h, */
    unsigned inflight_per_ring;   /* xbd_io_engine_set_limits); applied at once */
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
/* Remove the NBD sockets (src/nbd_server.h) of devices this start will
 * not serve: absent from xenstore, or of a kind not served.  After
 * xbd_host_add_kind, before the loop runs (no export is open yet). */
void xbd_host_sweep_nbd(struct xbd_host *h);
/* Free everything; only after shutdown completed (or no rings running). */
void xbd_host_free(struct xbd_host *h);

/* Replace what devices are offered from now on (configuration reload):
 * devices entering InitWait later get it, the others keep their copy. */
void xbd_host_set_config(struct xbd_host *h, const struct xbd_config *cfg);

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
/* Device i (0 <= i < count), in no particular order; valid until the
 * loop runs again. */
const struct xbd_device *xbd_host_device(const struct xbd_host *h, unsigned i);
/* Rings running, over every device. */
unsigned xbd_host_ring_count(const struct xbd_host *h);

/* Host-wide figures the control socket reports. */
struct xbd_host_figures {
    uint64_t map_count_max;     /* vm.max_map_count read at start */
    uint64_t grant_mappings_limit, grant_mappings_used;
    uint64_t evaluations;       /* device evaluations run */
    uint64_t evaluations_deferred; /* turns that left some for the next iteration */
    uint64_t evaluations_delayed;  /* waited for their device's rate limit */
    uint64_t loop_iterations;
    uint64_t loop_busy_max_us;  /* longest iteration: the loop did not poll */
    struct xbd_lat_hist loop_busy; /* per iteration, microseconds */
    /* Handed to the unmap worker, not yet unmapped (src/unmap_worker.h):
     * stopped rings' batches, and mappings (purges' and ring pages
     * included). */
    uint64_t unmap_rings_pending, unmap_mappings_pending;
    /* The I/O engine's worker pool (xbd_io_engine_get_workers). */
    uint64_t workers_busy, workers_live, workers_limit;
};
void xbd_host_get_figures(const struct xbd_host *h, struct xbd_host_figures *f);
/* Device evaluations waiting to run (not those held back by a device's
 * rate limit). */
bool xbd_host_evaluations_pending(const struct xbd_host *h);
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

/* A disk's budgets and what it uses of them (control socket). */
struct xbd_device_budget {
    uint64_t memory_limit;      /* bytes */
    uint64_t grant_mappings_limit;
    uint64_t fds_limit, fds_used;
    uint64_t log_suppressed;    /* log lines dropped by its rate limit */
};

/* Where a device's evaluation stands: what it still has to do before it
 * has acted on everything its frontend and the toolstack wrote (control
 * socket "evaluation", the settle command: src/settle.h). */
struct xbd_device_eval {
    uint64_t count;             /* evaluations the queue granted it */
    bool queued;                /* waiting in the evaluation queue */
    bool delayed;               /* waiting for its rate limit (eval_queue.h) */
    bool snapshot_pending;      /* its keys being read by the xenstore thread */
    unsigned writes_pending;    /* its xenstore writes not made yet */
    unsigned draining;          /* stopped rings whose I/O is still in flight */
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
    bool wb_lost;               /* flushes fail: a write-back error was reported
                                   (struct xbd_wb_state) */
    int state;                  /* XenbusState we published */
    bool connected;             /* rings running: neg is valid */
    struct xbd_negotiated neg;
    struct xbd_device_eval eval;
    struct xbd_device_budget budget;
};

struct xbd_device;
void xbd_device_get_info(const struct xbd_device *dev, struct xbd_device_info *out);
struct xbd_device_eval xbd_device_get_eval(const struct xbd_device *dev);
/* Rings running now: ring i serves queue i. */
unsigned xbd_device_ring_count(const struct xbd_device *dev);
const struct xbd_ring_stats *xbd_device_ring_stats(const struct xbd_device *dev, unsigned i);

#endif
