/*
 * device_internal.h - what the host-wide registry (src/host.c) and the
 * device object (src/device.c) share, and nothing else.
 *
 * host.c owns the set of served kinds, their xenstore watches, the list of
 * devices and the shutdown sequence; device.c owns everything inside one
 * device (its keys, backing store, rings and xenbus state).  A device only
 * reads the host's configuration and resources (loop, xenbus, I/O engine)
 * and tells the host when it appears, disappears or settles.
 */
#ifndef XENBLKD_DEVICE_INTERNAL_H
#define XENBLKD_DEVICE_INTERNAL_H

#include <stdbool.h>
#include <ev.h>

#include "budget.h"
#include "eval_queue.h"
#include "loop_stats.h"
#include "xenblkd/device.h"

struct xbd_device;
struct xbd_dev_probe;
struct xbd_scan;

struct xbd_kind {
    struct xbd_kind *next;
    struct xbd_host *host;
    char name[16];
    char dir[96];               /* /local/domain/<own>/backend/<kind> */
    struct xbd_watch *watch;
    struct xbd_scan *scan;      /* listing being read (xenstore thread) */
    long scan_again;            /* -2: none; else the domid to scan after it (-1 all) */
};

struct xbd_host {
    struct ev_loop *loop;
    struct xbd_xenbus *xb;
    struct xbd_io_engine *io;
    struct xbd_config cfg;
    unsigned domid;
    struct xbd_kind *kinds;
    struct xbd_device **devices; /* registry, in no particular order */
    unsigned ndevices, devices_cap;
    bool stopping;
    enum xbd_stop_mode stop_mode;
    double stop_timeout;        /* s, for the mode */
    xbd_host_done_fn *done;
    void *done_opaque;
    ev_timer done_check;        /* runs done() from the loop */
    ev_timer shutdown_timeout;
    xbd_host_change_fn *change; /* see xbd_host_on_change */
    void *change_opaque;
    struct xbd_map_reserve maps; /* persistent grants, every ring (budget.h) */
    struct xbd_unmapper *unmapper; /* stopped rings' unmaps (unmap_worker.h) */
    struct xbd_eval_queue evq;  /* device evaluations (eval_queue.h) */
    struct xbd_loop_stats loop_stats;
    struct xbd_dev_probe *probes; /* directories being probed (device.c) */
};

/* host.c: the registry.  add fails (-1) only when out of memory. */
int xbd_host_add_device(struct xbd_host *h, struct xbd_device *dev);
void xbd_host_remove_device(struct xbd_host *h, struct xbd_device *dev);
struct xbd_device *xbd_host_find_device(struct xbd_host *h, const struct xbd_kind *k,
                                        unsigned domid, unsigned devid);
/* A device changed in a way that may complete a shutdown. */
void xbd_host_check_done(struct xbd_host *h);
/* A device appeared, connected, closed or went away (never per request). */
void xbd_host_changed(struct xbd_host *h);

/* device.c: the device object. */
/* Create the device domid/devid of kind k if its backend directory is
 * complete and consistent (logged otherwise); it registers itself.  The
 * directory is read by the xenstore thread: the device appears later. */
void xbd_device_create(struct xbd_kind *k, unsigned domid, unsigned devid);
/* The host is going away: the probes still out create nothing. */
void xbd_device_cancel_probes(struct xbd_host *h);
/* Schedule a re-evaluation of the device's keys (never evaluates inline). */
void xbd_device_kick(struct xbd_device *dev);
bool xbd_device_is(const struct xbd_device *dev, const struct xbd_kind *k,
                   unsigned domid, unsigned devid);
/* Of kind k and of domain domid (any domain if domid < 0). */
bool xbd_device_in(const struct xbd_device *dev, const struct xbd_kind *k, long domid);
/* Nothing left running: rings stopped and drained, Closed (or removed). */
bool xbd_device_settled(const struct xbd_device *dev);
/* Add the device to the service manager's counts. */
void xbd_device_count(const struct xbd_device *dev, struct xbd_host_counts *c);
/* Rings still running or draining. */
bool xbd_device_busy(const struct xbd_device *dev);
/* Log that the rings did not drain in time. */
void xbd_device_log_stuck(const struct xbd_device *dev, double timeout);
/* Re-read the backing store's size (online resize). */
void xbd_device_check_size(struct xbd_device *dev);
/* Free at exit without any xenstore handshake (the process is ending). */
void xbd_device_destroy(struct xbd_device *dev);

#endif
