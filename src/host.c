/*
 * host.c - the host-wide registry: the backend kinds served, their
 * xenstore watches, the set of devices and the orderly shutdown.
 *
 * A watch on /local/domain/<own domid>/backend/<kind> tells which
 * device directories appear or disappear; each event only creates a
 * device (src/device.c) or kicks an existing one, which then re-reads its
 * own keys.  Everything inside one device stays in device.c.  The
 * listings are read by the xenstore thread (xs_worker.h), never on the
 * loop.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xenblkd/device.h"
#include "xenblkd/journal.h"
#include "xenblkd/log.h"

#include "device_internal.h"
#include "nbd_server.h"
#include "xs_worker.h"
#include "unmap_worker.h"

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Seconds an orderly shutdown waits for rings to drain. */
#define XBD_SHUTDOWN_TIMEOUT 20.0

/* ------------------------------------------------------------------ */
/* registry                                                            */

int xbd_host_add_device(struct xbd_host *h, struct xbd_device *dev)
{
    if (h->ndevices == h->devices_cap) {
        unsigned cap = h->devices_cap ? 2 * h->devices_cap : 16;
        struct xbd_device **n = realloc(h->devices, cap * sizeof(*n));
        if (!n)
            return -1;
        h->devices = n;
        h->devices_cap = cap;
    }
    h->devices[h->ndevices++] = dev;
    return 0;
}

void xbd_host_remove_device(struct xbd_host *h, struct xbd_device *dev)
{
    for (unsigned i = 0; i < h->ndevices; i++) {
        if (h->devices[i] == dev) {
            h->devices[i] = h->devices[--h->ndevices];
            return;
        }
    }
}

struct xbd_device *xbd_host_find_device(struct xbd_host *h, const struct xbd_kind *k,
                                        unsigned domid, unsigned devid)
{
    for (unsigned i = 0; i < h->ndevices; i++)
        if (xbd_device_is(h->devices[i], k, domid, devid))
            return h->devices[i];
    return NULL;
}

/* ------------------------------------------------------------------ */
/* discovery                                                           */

/* Parse "<domid>/<devid>[/...]" after the kind directory. */
static int parse_ids(const char *rel, unsigned long *domid, unsigned long *devid, int *depth)
{
    char buf[64];
    char *slash, *slash2;

    *depth = 0;
    if (!*rel)
        return 0;
    snprintf(buf, sizeof(buf), "%s", rel);
    slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    if (xbd_parse_uint(buf, 0x7fef, domid) < 0)
        return -1;
    *depth = 1;
    if (!slash)
        return 0;
    slash2 = strchr(slash + 1, '/');
    if (slash2)
        *slash2 = '\0';
    if (xbd_parse_uint(slash + 1, UINT32_MAX, devid) < 0)
        return -1;
    *depth = 2;
    return 0;
}

/* A kind's listing of device directories (one domain, or all with
 * domid < 0), read by the xenstore thread. */
struct xbd_scan {
    struct xbd_xs_job job;
    struct xbd_kind *kind;      /* loop only; NULL once the host is gone */
    struct xbd_xenbus *xb;
    long domid;
    char dir[96];
    struct { unsigned domid, devid; } *ids;     /* results */
    unsigned n, cap;
};

static void scan_add(struct xbd_scan *s, unsigned long d, unsigned long v)
{
    if (s->n == s->cap) {
        unsigned cap = s->cap ? 2 * s->cap : 16;
        void *n = realloc(s->ids, cap * sizeof(*s->ids));
        if (!n)
            return;             /* the next event on the directory retries */
        s->ids = n;
        s->cap = cap;
    }
    s->ids[s->n].domid = (unsigned)d;
    s->ids[s->n].devid = (unsigned)v;
    s->n++;
}

static void scan_run(struct xbd_xs_job *job, void *ctx)
{
    struct xbd_scan *s = (struct xbd_scan *)job;
    char path[XBD_XS_PATH_MAX];
    unsigned nd, nv;
    char **doms, **devs;
    unsigned long d, v;

    doms = xbd_xs_directory(s->xb, XBT_NULL, s->dir, &nd);
    for (unsigned i = 0; doms && i < nd; i++) {
        if (xbd_parse_uint(doms[i], 0x7fef, &d) < 0 || (s->domid >= 0 && d != (unsigned long)s->domid))
            continue;
        snprintf(path, sizeof(path), "%s/%lu", s->dir, d);
        devs = xbd_xs_directory(s->xb, XBT_NULL, path, &nv);
        for (unsigned j = 0; devs && j < nv; j++)
            if (xbd_parse_uint(devs[j], UINT32_MAX, &v) == 0)
                scan_add(s, d, v);
        free(devs);
    }
    free(doms);
}

static void scan_submit(struct xbd_kind *k, long domid);

static void scan_done(struct xbd_xs_job *job)
{
    struct xbd_scan *s = (struct xbd_scan *)job;
    struct xbd_kind *k = s->kind;

    if (k && job->ran) {
        k->scan = NULL;
        for (unsigned i = 0; i < s->n; i++)
            if (!xbd_host_find_device(k->host, k, s->ids[i].domid, s->ids[i].devid))
                xbd_device_create(k, s->ids[i].domid, s->ids[i].devid);
        if (k->scan_again != -2) {
            long d = k->scan_again;
            k->scan_again = -2;
            scan_submit(k, d);
        }
    }
    free(s->ids);
    free(s);
}

static void scan_submit(struct xbd_kind *k, long domid)
{
    struct xbd_scan *s;

    if (k->scan) {
        /* One listing at a time; the next covers what was asked meanwhile. */
        k->scan_again = k->scan_again == -2 || k->scan_again == domid ? domid : -1;
        return;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        xbd_err("out of memory");
        return;
    }
    s->job.run = scan_run;
    s->job.done = scan_done;
    s->kind = k;
    s->xb = k->host->xb;
    s->domid = domid;
    snprintf(s->dir, sizeof(s->dir), "%s", k->dir);
    k->scan = s;
    xbd_xenbus_submit(k->host->xb, &s->job);
}

/* Look at every device under dir (one domain, or all with domid < 0). */
static void kind_scan(struct xbd_kind *k, long domid)
{
    struct xbd_host *h = k->host;

    /* Known devices first: the ones that disappeared notice it. */
    for (unsigned i = 0; i < h->ndevices; i++)
        if (xbd_device_in(h->devices[i], k, domid))
            xbd_device_kick(h->devices[i]);
    /* Then the directories that are new, once listed. */
    scan_submit(k, domid);
}

static void kind_watch_cb(void *opaque, const char *path)
{
    struct xbd_kind *k = opaque;
    size_t n = strlen(k->dir);
    unsigned long domid = 0, devid = 0;
    int depth;

    if (strncmp(path, k->dir, n) || (path[n] && path[n] != '/'))
        return;
    if (parse_ids(path[n] ? path + n + 1 : "", &domid, &devid, &depth) < 0)
        return;
    if (depth < 2) {
        kind_scan(k, depth == 0 ? -1 : (long)domid);
        return;
    }
    struct xbd_device *dev = xbd_host_find_device(k->host, k, (unsigned)domid, (unsigned)devid);
    if (dev)
        xbd_device_kick(dev);
    else
        xbd_device_create(k, (unsigned)domid, (unsigned)devid);
}

/* ------------------------------------------------------------------ */
/* host                                                                */

static void done_check_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct xbd_host *h = container_of(t, struct xbd_host, done_check);
    xbd_host_done_fn *done = h->done;

    ev_timer_stop(loop, &h->shutdown_timeout);
    h->done = NULL;
    if (done)
        done(h->done_opaque);
}

void xbd_host_check_done(struct xbd_host *h)
{
    if (!h->stopping || !h->done)
        return;
    for (unsigned i = 0; i < h->ndevices; i++)
        if (!xbd_device_settled(h->devices[i]))
            return;
    if (!ev_is_active(&h->done_check))
        ev_timer_start(h->loop, &h->done_check);
}

static void shutdown_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct xbd_host *h = container_of(t, struct xbd_host, shutdown_timeout);

    for (unsigned i = 0; i < h->ndevices; i++)
        if (xbd_device_busy(h->devices[i]))
            xbd_device_log_stuck(h->devices[i], h->stop_timeout);
    xbd_err("shutdown timed out");
    ev_timer_start(loop, &h->done_check);
}

struct xbd_host *xbd_host_new(struct ev_loop *loop, struct xbd_xenbus *xb,
                              struct xbd_io_engine *io, const struct xbd_config *cfg,
                              unsigned own_domid)
{
    struct xbd_host *h = calloc(1, sizeof(*h));

    if (!h)
        return NULL;
    h->loop = loop;
    h->xb = xb;
    h->io = io;
    xbd_host_set_config(h, cfg);
    h->domid = own_domid;
    xbd_map_reserve_init(&h->maps);
    /* Without it (no thread), rings unmap on the loop as they stop. */
    h->unmapper = xbd_unmapper_new(loop);
    xbd_eval_queue_init(&h->evq, loop);
    xbd_loop_stats_start(&h->loop_stats, loop);
    ev_timer_init(&h->done_check, done_check_cb, 0., 0.);
    ev_timer_init(&h->shutdown_timeout, shutdown_timeout_cb, XBD_SHUTDOWN_TIMEOUT, 0.);
    return h;
}

int xbd_host_add_kind(struct xbd_host *h, const char *kind)
{
    struct xbd_kind *k = calloc(1, sizeof(*k));

    if (!k)
        return -1;
    k->host = h;
    k->scan_again = -2;
    snprintf(k->name, sizeof(k->name), "%s", kind);
    snprintf(k->dir, sizeof(k->dir), "/local/domain/%u/backend/%s", h->domid, kind);
    k->watch = xbd_watch_add(h->xb, k->dir, kind_watch_cb, k);
    if (!k->watch) {
        free(k);
        return -1;
    }
    k->next = h->kinds;
    h->kinds = k;
    xbd_info("watching %s", k->dir);
    /* The watch fires once by itself, but only later, through the loop.
     * Scanning now, with the watch asked for first (the xenstore thread
     * runs jobs in order: nothing created after the listing can be
     * missed), gives every device that already exists its first
     * evaluation as soon as the listing is back: the daemon tells its
     * service manager it is ready only once they are all in InitWait
     * (xbd_host_evaluations_pending). */
    kind_scan(k, -1);
    return 0;
}

void xbd_host_shutdown(struct xbd_host *h, enum xbd_stop_mode mode,
                       xbd_host_done_fn *done, void *opaque)
{
    /* HANDOVER (keeping the rings for a successor) needs the journal; until
     * then both modes close every device. */
    (void)mode;
    if (h->stopping)
        return;
    if (mode == XBD_STOP_HANDOVER)
        xbd_info("stopping for a restart: handing over %u device%s (they stay as they "
                 "are in xenstore)", h->ndevices, h->ndevices == 1 ? "" : "s");
    else
        xbd_info("shutting down: closing %u device%s", h->ndevices,
                 h->ndevices == 1 ? "" : "s");
    h->stopping = true;
    h->stop_mode = mode;
    h->done = done;
    h->done_opaque = opaque;
    /* No new devices from here on. */
    for (struct xbd_kind *k = h->kinds; k; k = k->next) {
        xbd_watch_remove(h->xb, k->watch);
        k->watch = NULL;
    }
    for (unsigned i = 0; i < h->ndevices; i++)
        xbd_device_kick(h->devices[i]);
    h->stop_timeout = mode == XBD_STOP_HANDOVER ? XBD_HANDOVER_TIMEOUT : XBD_SHUTDOWN_TIMEOUT;
    ev_timer_set(&h->shutdown_timeout, h->stop_timeout, 0.);
    ev_timer_start(h->loop, &h->shutdown_timeout);
    xbd_host_check_done(h);
}

/* At start-up only, before the loop serves any ring: the one xenstore
 * read the loop thread still makes itself (with own_domid).  As
 * xbd_xs_exists: 1, 0, or -1 with errno when xenstore could not say.  A
 * kind this instance does not serve answers unserved. */
static int device_exists(struct xbd_host *h, const char *kind, unsigned domid,
                         unsigned devid, int unserved)
{
    char path[XBD_XS_PATH_MAX];
    struct xbd_kind *k;

    for (k = h->kinds; k && strcmp(k->name, kind); k = k->next)
        ;
    if (!k)
        return unserved;
    snprintf(path, sizeof(path), "%s/%u/%u", k->dir, domid, devid);
    return xbd_xs_exists(h->xb, XBT_NULL, path);
}

/* A journal of another kind is not ours to judge: a later start that
 * serves it resumes its rings. */
static int journal_device_exists(void *opaque, const char *kind, unsigned domid,
                                 unsigned devid)
{
    return device_exists(opaque, kind, domid, devid, 1);
}

/* A socket is only worth its path while someone listens: one of a kind
 * this start does not serve never gets a listener. */
static int nbd_device_exists(void *opaque, const char *kind, unsigned domid, unsigned devid)
{
    return device_exists(opaque, kind, domid, devid, 0);
}

void xbd_host_sweep_journals(struct xbd_host *h)
{
    xbd_journal_sweep(h->cfg.state_dir, journal_device_exists, h);
}

void xbd_host_sweep_nbd(struct xbd_host *h)
{
    xbd_nbd_sweep(h->cfg.state_dir, nbd_device_exists, h);
}

void xbd_host_free(struct xbd_host *h)
{
    if (!h)
        return;
    /* Devices left are those whose rings did not drain before a
     * shutdown timeout. */
    for (unsigned i = 0; i < h->ndevices; i++)
        xbd_device_destroy(h->devices[i]);
    free(h->devices);
    xbd_device_cancel_probes(h);
    while (h->kinds) {
        struct xbd_kind *k = h->kinds;
        h->kinds = k->next;
        if (k->scan)
            k->scan->kind = NULL;       /* scan_done frees it */
        xbd_watch_remove(h->xb, k->watch);
        free(k);
    }
    /* Every grant unmapped before the process exits (after the devices:
     * their rings may hand over mappings as they go). */
    xbd_unmapper_free(h->unmapper);
    ev_timer_stop(h->loop, &h->done_check);
    ev_timer_stop(h->loop, &h->shutdown_timeout);
    xbd_eval_queue_fini(&h->evq);
    xbd_loop_stats_stop(&h->loop_stats);
    free(h);
}

void xbd_host_check_sizes(struct xbd_host *h)
{
    for (unsigned i = 0; i < h->ndevices; i++)
        xbd_device_check_size(h->devices[i]);
}

unsigned xbd_host_device_count(const struct xbd_host *h)
{
    return h->ndevices;
}

void xbd_host_set_config(struct xbd_host *h, const struct xbd_config *cfg)
{
    h->cfg = *cfg;
    /* What we publish must be what the data plane can serve. */
    if (h->cfg.max_queues == 0)
        h->cfg.max_queues = 1;
    if (h->cfg.max_queues > XBD_MAX_QUEUES)
        h->cfg.max_queues = XBD_MAX_QUEUES;
    if (h->cfg.max_ring_order > XBD_MAX_RING_ORDER)
        h->cfg.max_ring_order = XBD_MAX_RING_ORDER;
    if (h->cfg.max_indirect_segs > XBD_MAX_INDIRECT_SEGS)
        h->cfg.max_indirect_segs = XBD_MAX_INDIRECT_SEGS;
}

void xbd_host_on_change(struct xbd_host *h, xbd_host_change_fn *fn, void *opaque)
{
    h->change = fn;
    h->change_opaque = opaque;
}

/* Devices appear, connect, close and go away only in evaluations, never
 * per request: this is the one place that says so. */
void xbd_host_changed(struct xbd_host *h)
{
    if (h->change)
        h->change(h->change_opaque);
}

void xbd_host_get_counts(const struct xbd_host *h, struct xbd_host_counts *c)
{
    c->devices = h->ndevices;
    c->connected = 0;
    c->rings = 0;
    for (unsigned i = 0; i < h->ndevices; i++)
        xbd_device_count(h->devices[i], c);
}

const struct xbd_device *xbd_host_device(const struct xbd_host *h, unsigned i)
{
    return i < h->ndevices ? h->devices[i] : NULL;
}

unsigned xbd_host_ring_count(const struct xbd_host *h)
{
    unsigned n = 0;

    for (unsigned i = 0; i < h->ndevices; i++)
        n += xbd_device_ring_count(h->devices[i]);
    return n;
}

void xbd_host_get_figures(const struct xbd_host *h, struct xbd_host_figures *f)
{
    unsigned busy = 0, live = 0, limit = 0;

    /* No engine: a host set up without one (the control socket's fuzz
     * harness). */
    if (h->io)
        xbd_io_engine_get_workers(h->io, &busy, &live, &limit);
    *f = (struct xbd_host_figures){
        .workers_busy = busy,
        .workers_live = live,
        .workers_limit = limit,
        .map_count_max = h->maps.max_map_count,
        .grant_mappings_limit = h->maps.limit,
        .grant_mappings_used = h->maps.used,
        .evaluations = h->evq.done,
        .evaluations_deferred = h->evq.deferred,
        .evaluations_delayed = h->evq.delayed,
        .loop_iterations = h->loop_stats.iterations,
        .loop_busy_max_us = h->loop_stats.busy_max_us,
        .loop_busy = h->loop_stats.busy,
        .unmap_rings_pending = xbd_unmapper_pending(h->unmapper),
        .unmap_mappings_pending = xbd_unmapper_maps_left(h->unmapper),
    };
}

bool xbd_host_evaluations_pending(const struct xbd_host *h)
{
    /* Queued, or waiting for the xenstore thread (a listing, a probe, a
     * snapshot or a write). */
    return h->evq.head != NULL || xbd_xenbus_pending(h->xb) > 0;
}
