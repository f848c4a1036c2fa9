/*
 * host.c - the host-wide registry: the backend kinds served, their
 * xenstore watches, the set of devices and the orderly shutdown.
 *
 * A watch on /local/domain/<own domid>/backend/<kind> tells which
 * device directories appear or disappear; each event only creates a
 * device (src/device.c) or kicks an existing one, which then re-reads its
 * own keys.  Everything inside one device stays in device.c.
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

static struct xbd_device *dev_find(struct xbd_host *h, const struct xbd_kind *k,
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

/* Look at every device under dir (one domain, or all with domid < 0). */
static void kind_scan(struct xbd_kind *k, long domid)
{
    struct xbd_host *h = k->host;
    char path[XBD_XS_PATH_MAX];
    unsigned nd, nv;
    char **doms, **devs;
    unsigned long d, v;

    /* Known devices first: the ones that disappeared notice it. */
    for (unsigned i = 0; i < h->ndevices; i++)
        if (xbd_device_in(h->devices[i], k, domid))
            xbd_device_kick(h->devices[i]);
    doms = xbd_xs_directory(h->xb, XBT_NULL, k->dir, &nd);
    for (unsigned i = 0; doms && i < nd; i++) {
        if (xbd_parse_uint(doms[i], 0x7fef, &d) < 0 || (domid >= 0 && d != (unsigned long)domid))
            continue;
        snprintf(path, sizeof(path), "%s/%lu", k->dir, d);
        devs = xbd_xs_directory(h->xb, XBT_NULL, path, &nv);
        for (unsigned j = 0; devs && j < nv; j++) {
            if (xbd_parse_uint(devs[j], UINT32_MAX, &v) == 0 &&
                !dev_find(h, k, (unsigned)d, (unsigned)v))
                xbd_device_create(k, (unsigned)d, (unsigned)v);
        }
        free(devs);
    }
    free(doms);
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
    struct xbd_device *dev = dev_find(k->host, k, (unsigned)domid, (unsigned)devid);
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
    h->cfg = *cfg;
    if (h->cfg.max_queues == 0)
        h->cfg.max_queues = 1;
    if (h->cfg.max_queues > XBD_MAX_QUEUES)
        h->cfg.max_queues = XBD_MAX_QUEUES;
    h->domid = own_domid;
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
    return 0;
}

void xbd_host_shutdown(struct xbd_host *h, enum xbd_stop_mode mode,
                       xbd_host_done_fn *done, void *opaque)
{
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

static bool journal_device_exists(void *opaque, const char *kind, unsigned domid,
                                  unsigned devid)
{
    struct xbd_host *h = opaque;
    char path[XBD_XS_PATH_MAX];
    struct xbd_kind *k;

    for (k = h->kinds; k && strcmp(k->name, kind); k = k->next)
        ;
    if (!k)
        return true;            /* not ours to judge */
    snprintf(path, sizeof(path), "%s/%u/%u", k->dir, domid, devid);
    return xbd_xs_exists(h->xb, XBT_NULL, path);
}

void xbd_host_sweep_journals(struct xbd_host *h)
{
    xbd_journal_sweep(h->cfg.state_dir, journal_device_exists, h);
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
    while (h->kinds) {
        struct xbd_kind *k = h->kinds;
        h->kinds = k->next;
        xbd_watch_remove(h->xb, k->watch);
        free(k);
    }
    ev_timer_stop(h->loop, &h->done_check);
    ev_timer_stop(h->loop, &h->shutdown_timeout);
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
