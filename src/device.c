/*
 * device.c - the vbd device object and its xenbus state machine.
 *
 * Every xenstore event only schedules a re-evaluation (dev_kick); the
 * evaluation (dev_update) re-reads the keys it needs and acts on what they
 * say now.  A burst of events therefore costs one evaluation, and memory
 * does not depend on how often a frontend rewrites its nodes (XSA-349).
 *
 * The states we publish follow blkif.h:
 *   Initialising -> InitWait (features published, possibly before the
 *   hotplug script ran) -> Connected (rings running) -> Closing (rings
 *   stopped, draining) -> Closed (everything released), and back to
 *   InitWait when the frontend starts again from Initialising.
 *
 * No evaluation makes a xenstore round trip on the loop: an evaluation
 * first asks the xenstore thread for a snapshot of every key it may read
 * (dev_snapshot.h), and runs when the snapshot comes back; its writes are
 * queued to that thread, in order (dev_write).  A device with xenstore
 * jobs outstanding is freed only once they are back (dev_job_end).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xen/io/blkif.h>
#include <xen/io/protocols.h>

#include "xenblkd/backing.h"
#include "xenblkd/journal.h"
#include "xenblkd/log.h"
#include "xenblkd/stats.h"

#include "dev_snapshot.h"
#include "device_internal.h"
#include "log_limit.h"
#include "nbd_server.h"
#include "xenstore_parse.h"

/* Everything a device logs is what its guest can make us log: through
 * the device's rate limit (log_limit.h). */
#define dev_log(dev, lvl, fmt, ...) \
    xbd_logb(&((struct xbd_device *)(dev))->logb, lvl, "%s: " fmt, (dev)->name, ##__VA_ARGS__)
#define dev_err(dev, ...)   dev_log(dev, XBD_LOG_ERR, __VA_ARGS__)
#define dev_warn(dev, ...)  dev_log(dev, XBD_LOG_WARN, __VA_ARGS__)
#define dev_info(dev, ...)  dev_log(dev, XBD_LOG_INFO, __VA_ARGS__)
#define dev_debug(dev, ...) dev_log(dev, XBD_LOG_DEBUG, __VA_ARGS__)

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Seconds between updates of the counters xentop reads. */
#define XBD_STATS_INTERVAL 1.0

struct xbd_device {
    struct xbd_host *host;
    struct xbd_kind *kind;
    unsigned domid;             /* frontend domain (from the path) */
    unsigned devid;
    char name[64];              /* log prefix: domain, kind, device id */
    char be[128];               /* backend directory */
    char *fe;                   /* frontend directory (toolstack-written) */
    struct xbd_watch *fe_watch; /* on <fe>/state */
    struct xbd_eval_node evn;   /* evaluation asked for (host's eval_queue) */
    uint64_t evaluations;       /* granted by the queue (control socket) */
    struct xbd_log_bucket logb; /* rate limit of its log lines */

    int state;                  /* XenbusState we last published */
    bool failed;                /* config refused: stay closed until removed */
    /* Why the configuration was refused, while a hotplug script is yet to
     * report it (refuse_via_script); "" otherwise. */
    char refusal[200];
    bool fatal;                 /* a ring saw the frontend break the protocol */
    /* The frontend was already Closed when we entered InitWait (left so
     * by a previous instance's SIGTERM): blkfront reconnects from Closed
     * once it sees InitWait, so that Closed is no request to close. */
    bool fe_closed_at_initwait;
    /* The frontend was seen Initialising, Closing or Closed since our last
     * connect attempt: if it then comes back to Initialised/Connected while
     * we are Closing, it is reconnecting (frontend_back). */
    bool fe_went_down;
    /* online=0 found the frontend connected: logged once (go_offline). */
    bool offline_serving;
    char fatal_reason[160];

    /* What we offer: the host's configuration when the device last
     * entered InitWait.  Negotiation uses this copy, never the host's,
     * so that a reload cannot make us refuse what we published. */
    struct xbd_config cfg;

    /* Toolstack configuration, re-read on every entry to InitWait. */
    char *path;                 /* backing path from params */
    bool readonly, cdrom, removable, discard_enable, direct_io_safe;
    bool needs_hotplug;         /* a "script" will report hotplug-status */

    struct xbd_backing backing; /* fd -1 while closed */
    char *opened_path;          /* what backing was last opened from */
    struct xbd_wb_state wb;     /* shared by the rings; kept for a connection */
    struct xbd_nbd_export *nbd; /* local attach, while backing is open */
    /* Closed, its cut-off clients' I/O still in flight (one drain in
     * draining): the disk is not released before it is back. */
    struct xbd_nbd_export *nbd_closing;

    struct xbd_ring **rings;
    unsigned nr_rings;
    /* Stopped rings not yet drained (NULL: drained), still the device's
     * to abandon at an exit after a stop timeout; draining counts them
     * and nbd_closing. */
    struct xbd_ring **stopping;
    unsigned nr_stopping, draining;
    int after_drain;            /* state to publish once drained; 0 = none */
    struct xbd_negotiated neg;  /* valid while rings run */
    bool gone;                  /* backend dir removed: free once drained */
    bool resuming;              /* connecting rings a previous instance served */
    bool handed_over;           /* handover stop done: left as it is */

    /* xenstore, through the xenstore thread (xs_worker.h). */
    struct xbd_dev_snap *snap;      /* what the running evaluation reads */
    struct xbd_dev_snap *snap_job;  /* snapshot being read, at most one */
    bool snap_again;            /* kicked while snap_job was out */
    /* Our state writes issued so far, and how many had been issued when
     * the snapshot being read (then applied) was asked for: equal, the
     * snapshot's backend state is what our last write left (one FIFO
     * thread, xs_worker.h); not, our newest write is still queued. */
    unsigned state_writes, snap_state_writes;
    bool resize_pending;        /* tell the frontend the new size (check_size) */
    unsigned jobs;              /* xenstore jobs out that point here */
    bool dead;                  /* freed but for those jobs */

    /* xentop (vbd3 only): the final counters of rings freed so far
     * (ring_counted_cb) plus those of the live ones. */
    struct xbd_shm_stats *shm;
    struct xbd_disk_stats stats_base;
    ev_timer stats_timer;
};


static void dev_update(struct xbd_device *dev);
static void close_backing(struct xbd_device *dev);

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

/* Copy at most n-1 printable characters of a guest-supplied string for a
 * log line. */
static const char *printable(const char *s, char *buf, size_t n)
{
    size_t i = 0;

    for (; s && *s && i + 1 < n; s++)
        buf[i++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    buf[i] = '\0';
    return buf;
}

/* Every read of an evaluation comes from its snapshot. */
static char *dev_read(struct xbd_device *dev, const char *dir, const char *key)
{
    return xbd_snap_read(dev->snap, dir, key);
}

/* Backend key as a boolean/number with a default when absent or bad (the
 * toolstack is trusted, so a bad value is only logged). */
static unsigned long be_uint(struct xbd_device *dev, const char *key, unsigned long def)
{
    unsigned long v;

    if (xbd_snap_read_uint(dev->snap, dev->be, key, ~0UL, &v) == 0)
        return v;
    if (errno == EINVAL)
        dev_warn(dev, "ignoring malformed backend key %s", key);
    return def;
}

static int frontend_state(struct xbd_device *dev)
{
    unsigned long v;

    if (xbd_snap_read_uint(dev->snap, dev->fe, "state", XBD_XB_RECONFIGURED, &v) < 0)
        return XBD_XB_UNKNOWN;
    return (int)v;
}

static void dev_kick(struct xbd_device *dev)
{
    xbd_eval_queue_push(&dev->host->evq, &dev->evn);
}

/* A job that points to dev is back: false if dev was freed meanwhile
 * (then it may be gone now, and must not be touched). */
static bool dev_job_end(struct xbd_device *dev)
{
    dev->jobs--;
    if (!dev->dead)
        return true;
    if (!dev->jobs)
        free(dev);
    return false;
}

static bool be_exists(const struct xbd_device *dev)
{
    /* No snapshot: a handover's evaluation, which reads nothing. */
    return dev->snap ? dev->snap->be_exists : true;
}

static struct xbd_fe_limits fe_limits(const struct xbd_config *cfg)
{
    return (struct xbd_fe_limits){
        .max_ring_order = cfg->max_ring_order,
        .max_queues = cfg->max_queues,
        .persistent_ok = cfg->max_pgrants > 0,
    };
}

/* The configuration a device takes when it enters InitWait: the host's,
 * with no more queues than the disk's file descriptors allow (the guest
 * then cannot ask for more: budget.h). */
static struct xbd_config initwait_config(const struct xbd_device *dev)
{
    struct xbd_config c = dev->host->cfg;

    if (c.max_queues > xbd_budget_queues_for_fds(c.disk_fds))
        c.max_queues = xbd_budget_queues_for_fds(c.disk_fds);
    return c;
}

static void limits_cover(struct xbd_fe_limits *a, const struct xbd_fe_limits *b)
{
    a->max_ring_order = a->max_ring_order > b->max_ring_order ? a->max_ring_order
                                                              : b->max_ring_order;
    a->max_queues = a->max_queues > b->max_queues ? a->max_queues : b->max_queues;
    a->persistent_ok = a->persistent_ok || b->persistent_ok;
}

/* What a snapshot must cover: read_frontend parses with the device's
 * limits, or with initwait_config's when the same evaluation enters
 * InitWait first (a reconnect after a reload): the larger of the two,
 * field by field; the snapshot raises them to what the backend directory
 * says was offered (a resumed device adopts those: dev_resume).  The guest's
 * directory is its own to fill; reading only what these limits can use
 * keeps a frontend with 64 queues' keys offered 2 at 2 queues' reads per
 * evaluation (tests/hostile/xs-read-bound.sh). */
static struct xbd_fe_limits snap_limits(const struct xbd_device *dev)
{
    const struct xbd_config next = initwait_config(dev);
    struct xbd_fe_limits a = fe_limits(&dev->cfg), b = fe_limits(&next),
                         host = fe_limits(&dev->host->cfg);

    limits_cover(&a, &b);
    /* A resumed device whose backend directory lacks a limit takes the
     * host's as it is (adopt_published_limits), not clamped by fds. */
    limits_cover(&a, &host);
    return a;
}

/* What an evaluation of the device as it is now must read: the
 * frontend's ring keys only when a connect may follow; a connected
 * device's evaluation reads three keys (dev_snapshot.h). */
static enum xbd_snap_kind snap_kind(const struct xbd_device *dev)
{
    if (dev->nr_rings && dev->state == XBD_XB_CONNECTED)
        return XBD_SNAP_CONNECTED;
    return !dev->nr_rings && !dev->draining ? XBD_SNAP_CONNECT : XBD_SNAP_FULL;
}

static void snap_done(struct xbd_xs_job *job)
{
    struct xbd_dev_snap *s = (struct xbd_dev_snap *)job;
    struct xbd_device *dev = s->owner;
    bool again;

    if (!dev->dead)
        dev->snap_job = NULL;
    if (dev->dead || !job->ran) {
        dev_job_end(dev);
        xbd_dev_snap_free(s);
        return;
    }
    if (s->err) {
        /* xenstored refused a read (a lost connection ends the daemon):
         * try again, within the device's evaluation rate. */
        dev_warn(dev, "cannot read the device's xenstore keys: %s", strerror(s->err));
        dev->snap_again = true;
    } else if (s->kind != snap_kind(dev)) {
        /* Read for the device as it was when asked, which it no longer
         * is: rings that drained meanwhile make a connect possible, and a
         * snapshot taken while they drained has no ring keys (a connect
         * from it would find none and refuse the frontend for good).
         * Read again for what it is now. */
        dev->snap_again = true;
    } else {
        dev->snap = s;
        dev_update(dev);
        if (!dev->dead)
            dev->snap = NULL;
    }
    again = !dev->dead && dev->snap_again;
    if (!dev->dead)
        dev->snap_again = false;
    if (dev_job_end(dev) && again)
        dev_kick(dev);
    xbd_dev_snap_free(s);
}

/* The evaluation the queue granted: read its snapshot first, off the
 * loop; it runs when the snapshot is back (snap_done).  One snapshot at a
 * time: a kick meanwhile asks for a fresh one afterwards. */
static void dev_request_snapshot(struct xbd_device *dev)
{
    struct xbd_host *h = dev->host;
    struct xbd_fe_limits lim;
    struct xbd_dev_snap *s;

    if (dev->snap_job) {
        dev->snap_again = true;
        return;
    }
    /* Only an evaluation changes what the device is, and this device has
     * none until this snapshot is back, except that its rings may finish
     * draining meanwhile (snap_done). */
    lim = snap_limits(dev);
    s = xbd_dev_snap_new(h->xb, dev->be, dev->fe, snap_kind(dev), &lim, snap_done, dev);
    if (!s) {
        dev_err(dev, "out of memory for an evaluation");
        return;
    }
    dev->snap_job = s;
    dev->snap_state_writes = dev->state_writes;
    dev->jobs++;
    xbd_xenbus_submit(h->xb, &s->job);
}

static void dev_kick_cb(struct xbd_eval_node *n)
{
    struct xbd_device *dev = container_of(n, struct xbd_device, evn);
    struct xbd_host *h = dev->host;

    dev->evaluations++;
    /* A handover reads nothing from xenstore: it does not wait for a
     * snapshot, so a stuck xenstored cannot hold the restart up. */
    if (h->stopping && h->stop_mode == XBD_STOP_HANDOVER) {
        dev_update(dev);
        return;
    }
    dev_request_snapshot(dev);
}

static void fe_watch_cb(void *opaque, const char *path)
{
    dev_kick(opaque);
}

struct dev_write {
    struct xbd_device *dev;
    char msg[120];              /* logged once written; "" = nothing */
};

static void dev_write_done(void *opaque, int err)
{
    struct dev_write *w = opaque;
    struct xbd_device *dev = w->dev;

    if (dev_job_end(dev)) {
        if (!err && w->msg[0])
            dev_info(dev, "%s", w->msg);
        else if (err && err != ENOENT && err != ECANCELED)
            dev_err(dev, "cannot write to %s: %s", dev->be, strerror(err));
    }
    free(w);
}

/* Queue the write of kv to the backend directory, in one transaction and
 * only if the directory still exists (xbd_xs_write_keys), after every
 * write queued before; msg (printf format, may be NULL) is logged once
 * it is written.  The loop does not wait: the state machine goes on as
 * if it was, as it did when a write's failure was only logged. */
static void __attribute__((format(printf, 4, 5)))
dev_write(struct xbd_device *dev, const struct xbd_kv *kv, size_t n, const char *msg, ...)
{
    struct dev_write *w = calloc(1, sizeof(*w));

    if (!w) {
        dev_err(dev, "out of memory: not written to %s", dev->be);
        return;
    }
    w->dev = dev;
    if (msg) {
        va_list ap;
        va_start(ap, msg);
        vsnprintf(w->msg, sizeof(w->msg), msg, ap);
        va_end(ap);
    }
    if (xbd_xs_write_keys_async(dev->host->xb, dev->be, kv, n, dev_write_done, w) < 0) {
        dev_err(dev, "out of memory: not written to %s", dev->be);
        free(w);
        return;
    }
    dev->jobs++;
}

static void set_state(struct xbd_device *dev, int state)
{
    char v[4];

    if (dev->state == state)
        return;
    snprintf(v, sizeof(v), "%d", state);
    struct xbd_kv kv = { "state", v };
    dev_info(dev, "state %s -> %s", xbd_xenbus_state_name(dev->state),
             xbd_xenbus_state_name(state));
    dev_write(dev, &kv, 1, NULL);
    dev->state_writes++;
    /* Even if the directory is gone: we will not publish this state
     * again, and the next evaluation notices the removal. */
    dev->state = state;
}

/* The backend's state in xenstore is not the one we last wrote: the
 * toolstack wrote over it (libxl writes Closing itself before it waits
 * for Closed).  Only a snapshot read after our last state write can say
 * so: one read before it shows the state that write replaces, and
 * "correcting" that rewrote Closed right behind our own Closed (every
 * online=0 detach logged and wrote Closing -> Closed twice).  Our write
 * fires the backend watch: the next evaluation looks again. */
static bool be_state_overwritten(struct xbd_device *dev)
{
    return dev->snap_state_writes == dev->state_writes &&
           be_uint(dev, "state", 0) != (unsigned long)dev->state;
}

/* The toolstack gave us something we cannot serve: tell libxl through the
 * hotplug keys (as a hotplug script would) and close. */
static void dev_fail(struct xbd_device *dev, const char *msg)
{
    struct xbd_kv kv[] = {
        { "hotplug-error", msg },
        { "hotplug-status", "error" },
    };

    dev_err(dev, "%s", msg);
    dev->failed = true;
    dev_write(dev, kv, 2, NULL);
    close_backing(dev);
    set_state(dev, XBD_XB_CLOSING);
}

/* ------------------------------------------------------------------ */
/* rings                                                               */

static void ring_fatal_cb(void *opaque, const char *reason)
{
    struct xbd_device *dev = opaque;

    /* The ring has stopped serving; stopping it from inside its own
     * callback is not allowed, so the evaluation does it. */
    if (!dev->fatal) {
        dev->fatal = true;
        snprintf(dev->fatal_reason, sizeof(dev->fatal_reason), "%s",
                 reason ? reason : "protocol error");
    }
    dev_kick(dev);
}

/* ------------------------------------------------------------------ */
/* counters for xentop                                                 */

static void add_ring_stats(struct xbd_disk_stats *d, const struct xbd_ring_stats *r)
{
    d->oo_reqs += r->oo_req;
    d->rd_req += r->rd_req;
    d->rd_sect += r->rd_sect;
    d->wr_req += r->wr_req;
    d->wr_sect += r->wr_sect;
    d->io_errors += r->io_errors;
}

static void publish_stats(struct xbd_device *dev)
{
    struct xbd_disk_stats sum = dev->stats_base;

    for (unsigned i = 0; i < dev->nr_rings; i++)
        add_ring_stats(&sum, xbd_ring_get_stats(dev->rings[i]));
    xbd_shm_stats_update(dev->shm, &sum);
}

static void stats_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    publish_stats(container_of(t, struct xbd_device, stats_timer));
}

/* A stopped ring is about to be freed: its counters are final, what it
 * answered while draining included, and become the device's.  Not
 * published yet: the rings still draining are in no sum, and xentop must
 * never see a total go down (ring_drained_cb publishes once all are in). */
static void ring_counted_cb(void *opaque, const struct xbd_ring *r,
                            const struct xbd_ring_stats *final)
{
    struct xbd_device *dev = opaque;

    add_ring_stats(&dev->stats_base, final);
    for (unsigned i = 0; i < dev->nr_stopping; i++)
        if (dev->stopping[i] == r)
            dev->stopping[i] = NULL;
}

static void forget_stopping(struct xbd_device *dev)
{
    free(dev->stopping);
    dev->stopping = NULL;
    dev->nr_stopping = 0;
}

/* The last ring drained: every stopped ring's final counters are in
 * stats_base now (ring_counted_cb), so xentop gets the totals, the
 * drain's completions and errors included, before the evaluation that
 * publishes Closing or Closed (or hands over). */
static void ring_drained_cb(void *opaque)
{
    struct xbd_device *dev = opaque;

    if (dev->draining > 0 && --dev->draining == 0) {
        forget_stopping(dev);
        publish_stats(dev);
        dev_kick(dev);
    }
}

/* Stop every ring; after_drain is published once all have drained.  A
 * handover keeps the rings' journals for the next instance; any other stop
 * is for good. */
static void stop_rings(struct xbd_device *dev, int after_drain, bool handover)
{
    struct xbd_ring **rings = dev->rings;
    unsigned n = dev->nr_rings;

    /* xentop's totals as of the stop; the rings hand theirs over when
     * they are freed (ring_counted_cb), the drain's requests included. */
    publish_stats(dev);
    ev_timer_stop(dev->host->loop, &dev->stats_timer);

    dev->rings = NULL;
    dev->nr_rings = 0;
    dev->after_drain = after_drain;
    forget_stopping(dev);       /* none: a stop waits for the last drain */
    dev->stopping = rings;
    dev->nr_stopping = n;
    dev->draining += n;         /* an NBD drain may still be counted */
    if (!n)
        forget_stopping(dev);
    /* counted and drained may run synchronously: everything above is
     * already in its final shape, and the callbacks only add, forget the
     * ring, publish and kick (the last drain frees <rings>: nothing reads
     * it after the last stop call). */
    for (unsigned i = 0; i < n; i++) {
        if (handover)
            xbd_ring_handover(rings[i], ring_counted_cb, ring_drained_cb, dev);
        else
            xbd_ring_stop(rings[i], ring_counted_cb, ring_drained_cb, dev);
    }
    if (n)
        dev_info(dev, "stopping %u ring%s", n, n == 1 ? "" : "s");
}

/* Disconnect and end in state target (Closing or Closed): rings stopped
 * and drained, backing store closed, NBD clients' I/O drained. */
static void close_to(struct xbd_device *dev, int target)
{
    if (dev->nr_rings) {
        set_state(dev, XBD_XB_CLOSING);
        stop_rings(dev, target, false);
        return;
    }
    close_backing(dev);
    /* Closed for good: journals of rings that never started again (a
     * refused resume keeps its journal until here) go too. */
    if (target == XBD_XB_CLOSED)
        xbd_journal_remove_device(dev->host->cfg.state_dir, dev->kind->name, dev->domid,
                                  dev->devid);
    if (dev->draining) {
        /* NBD clients cut off with writes in flight: not released yet. */
        set_state(dev, XBD_XB_CLOSING);
        dev->after_drain = target;
        return;
    }
    if (dev->host->stopping && target == XBD_XB_CLOSED)
        set_state(dev, XBD_XB_CLOSING);     /* Closing then Closed on shutdown */
    set_state(dev, target);
}

/* ------------------------------------------------------------------ */
/* InitWait: configuration, backing store, features                    */

static int read_config(struct xbd_device *dev, char *err, size_t errlen)
{
    char *params = dev_read(dev, dev->be, "params");
    char *mode, *dtype, *script, *type;
    const char *p;
    int rc = -1;

    free(dev->path);
    dev->path = NULL;
    /* First: a refusal below is reported through the script if there is
     * one (refuse_via_script). */
    script = dev_read(dev, dev->be, "script");
    dev->needs_hotplug = script && *script;
    free(script);
    if (!params) {
        snprintf(err, errlen, "no params in the backend directory");
        return -1;
    }
    p = xbd_params_path(params, err, errlen);
    if (!p)
        goto out;
    dev->path = strdup(p);
    if (!dev->path) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }

    mode = dev_read(dev, dev->be, "mode");
    if (!mode || !strcmp(mode, "w") || !strcmp(mode, "w!") || !strcmp(mode, "rw")) {
        dev->readonly = false;
    } else if (!strcmp(mode, "r") || !strcmp(mode, "ro")) {
        dev->readonly = true;
    } else {
        snprintf(err, errlen, "unsupported mode '%.16s'", mode);
        free(mode);
        goto out;
    }
    free(mode);

    dtype = dev_read(dev, dev->be, "device-type");
    dev->cdrom = dtype && !strcmp(dtype, "cdrom");
    if (dtype && !dev->cdrom && strcmp(dtype, "disk"))
        dev_warn(dev, "unknown device-type '%.16s', serving it as a disk", dtype);
    free(dtype);

    dev->removable = be_uint(dev, "removable", 0) != 0;
    /* libxl writes discard-enable for every disk (1 if writable, 0 if
     * read-only, or what the disk line's discard/no-discard says), and
     * so does xenblkctl attach: the daemon's default (--discard) only
     * decides for other toolstacks' disks, which lack the key.  A
     * read-only disk never offers discard (backing.c). */
    dev->discard_enable = be_uint(dev, "discard-enable", dev->cfg.discard) != 0;
    dev->direct_io_safe = be_uint(dev, "direct-io-safe", 0) != 0;

    type = dev_read(dev, dev->be, "type");
    dev_debug(dev, "params %s, mode %s, %s%s%s, hotplug script %s, type %s", params,
              dev->readonly ? "r" : "w", dev->cdrom ? "cdrom" : "disk",
              dev->removable ? ", removable" : "",
              dev->discard_enable ? "" : ", discard disabled",
              dev->needs_hotplug ? "yes" : "no", type ? type : "-");
    free(type);
    rc = 0;
out:
    free(params);
    return rc;
}

/* The path to open: params, except that for the kernel's kind (vbd) the
 * block hotplug script may have set up a device (e.g. a loop device for a
 * file) and told us through physical-device-path, or only through
 * physical-device (MAJ:MIN in hex, as blkback reads it). */
static char *backing_path(struct xbd_device *dev)
{
    if (!strcmp(dev->kind->name, "vbd")) {
        char *pdp = dev_read(dev, dev->be, "physical-device-path");
        if (pdp && !strncmp(pdp, "/dev/", 5))
            return pdp;
        free(pdp);
        char *pd = dev_read(dev, dev->be, "physical-device");
        if (pd) {
            char *p = xbd_blockdev_path(pd);
            if (p) {
                free(pd);
                return p;
            }
            dev_warn(dev, "physical-device '%.32s' names no block device: using params", pd);
            free(pd);
        }
    }
    return strdup(dev->path);
}

/* -1: not ready yet; 0: ready; 1: the hotplug script failed (logged). */
static int hotplug_ready(struct xbd_device *dev)
{
    char *hs, *he;
    char msg[200], pbuf[120];
    int rc;

    if (!dev->needs_hotplug)
        return 0;
    hs = dev_read(dev, dev->be, "hotplug-status");
    if (hs && !strcmp(hs, "connected")) {
        rc = 0;
    } else if (hs && !strcmp(hs, "error")) {
        he = dev_read(dev, dev->be, "hotplug-error");
        snprintf(msg, sizeof(msg), "hotplug script failed: %s",
                 he ? printable(he, pbuf, sizeof(pbuf)) : "no hotplug-error");
        free(he);
        dev_err(dev, "%s", msg);
        dev->failed = true;
        set_state(dev, XBD_XB_CLOSING);
        rc = 1;
    } else {
        rc = -1;
    }
    free(hs);
    return rc;
}

/* The NBD export lives exactly as long as the open backing store: every
 * path that opens or closes it goes through here (nbd_server.h).  For
 * vbd3, libxl reads physical-device-path as that socket (local attach,
 * HVM device model); the directory is libxl's to delete, and the path of
 * a disk never changes, so the key is left behind at close. */
static void start_nbd(struct xbd_device *dev)
{
    struct xbd_host *h = dev->host;

    dev->nbd = xbd_nbd_export_open(h->loop, h->io, h->cfg.state_dir, dev->kind->name,
                                   dev->domid, dev->devid, &dev->backing, dev->name,
                                   &dev->logb, &dev->wb);
    if (dev->nbd && !strcmp(dev->kind->name, "vbd3")) {
        struct xbd_kv kv = { "physical-device-path", xbd_nbd_export_path(dev->nbd) };
        dev_write(dev, &kv, 1, NULL);
    }
}

static void nbd_drained_cb(void *opaque)
{
    struct xbd_device *dev = opaque;

    dev->nbd_closing = NULL;
    ring_drained_cb(dev);       /* the same wait as a ring's */
}

/* The backing fd closes at once, but if NBD clients are cut off with I/O
 * in flight (on their duplicates of it), the device drains (draining) and
 * nothing that tells the toolstack the disk is released may follow
 * before nbd_drained_cb: callers check dev->draining. */
static void close_backing(struct xbd_device *dev)
{
    if (xbd_nbd_export_close(dev->nbd, nbd_drained_cb, dev)) {
        dev->nbd_closing = dev->nbd;
        dev->draining++;
    }
    dev->nbd = NULL;
    xbd_backing_close(&dev->backing);
}

/* Resuming (told: the terms a previous instance gave the connected
 * frontend): keep them, opening the store again another way if need be
 * (xbd_backing_keep_terms).  -1: refused, logged, device closing. */
static int keep_terms(struct xbd_device *dev, const char *path, struct xbd_backing_opts *o,
                      const struct xbd_backing_terms *told)
{
    char why[320], err[400];
    int rc = xbd_backing_keep_terms(&dev->backing, told, o, why, sizeof(why));

    if (rc > 0) {
        dev_info(dev, "opening %s again to keep what the connected frontend was told: %s",
                 path, why);
        xbd_backing_close(&dev->backing);
        if (xbd_backing_open(&dev->backing, path, o, err, sizeof(err)) < 0) {
            snprintf(why, sizeof(why), "%.300s", err);
            rc = -1;
        } else {
            rc = xbd_backing_keep_terms(&dev->backing, told, o, why, sizeof(why));
            if (rc > 0)
                snprintf(why, sizeof(why), "%s still cannot keep what the frontend was told",
                         path);
        }
    } else if (rc == 0 && why[0]) {
        dev_info(dev, "%s: %s", path, why);
    }
    if (rc == 0)
        return 0;
    dev_err(dev, "refusing to resume: %s", why);
    xbd_backing_close(&dev->backing);
    close_to(dev, XBD_XB_CLOSING);
    return -1;
}

static int open_backing(struct xbd_device *dev, const struct xbd_backing_terms *told)
{
    struct xbd_backing_opts o = {
        .readonly = dev->readonly,
        .direct = dev->cfg.direct_io,
        .direct_io_safe = dev->direct_io_safe,
        .discard = dev->discard_enable,
    };
    char err[400];
    char *path = backing_path(dev);

    if (!path) {
        dev_fail(dev, "out of memory");
        return -1;
    }
    if (xbd_backing_open(&dev->backing, path, &o, err, sizeof(err)) < 0) {
        dev_fail(dev, err);
        free(path);
        return -1;
    }
    if (told && keep_terms(dev, path, &o, told) < 0) {
        free(path);
        return -1;
    }
    dev_info(dev, "opened %s: %" PRIu64 " sectors, sector size %u/%u, %s%s%s%s%s", path,
             dev->backing.sectors, dev->backing.sector_size,
             dev->backing.physical_sector_size, dev->backing.readonly ? "read-only" : "read-write",
             dev->backing.direct ? ", O_DIRECT" : "", o.dsync ? ", O_DSYNC" : "",
             dev->backing.discard ? ", discard" : "",
             dev->backing.discard_secure ? ", secure discard" : "");
    free(dev->opened_path);
    dev->opened_path = path;
    start_nbd(dev);
    return 0;
}

/* Room for the numbers backing_features() publishes. */
struct feature_bufs {
    char granularity[16], alignment[16];
};

/* Keys that depend on the backing store; flush and barrier default to on
 * while it is not open yet (the hotplug script has not run).  The discard
 * keys are Linux blkback's (xen_blkbk_discard). */
static size_t backing_features(struct xbd_device *dev, struct xbd_kv *kv, struct feature_bufs *fb)
{
    const struct xbd_backing *b = &dev->backing;
    bool open = b->fd >= 0;
    bool flush = !open || b->flush;
    bool discard = open && b->discard;
    size_t n = 0;

    kv[n++] = (struct xbd_kv){ "feature-flush-cache", flush ? "1" : "0" };
    kv[n++] = (struct xbd_kv){ "feature-barrier", flush ? "1" : "0" };
    kv[n++] = (struct xbd_kv){ "feature-discard", discard ? "1" : "0" };
    if (discard) {
        unsigned granularity, alignment;

        xbd_backing_discard_limits(b, &granularity, &alignment);
        snprintf(fb->granularity, sizeof(fb->granularity), "%u", granularity);
        snprintf(fb->alignment, sizeof(fb->alignment), "%u", alignment);
        kv[n++] = (struct xbd_kv){ "discard-granularity", fb->granularity };
        kv[n++] = (struct xbd_kv){ "discard-alignment", fb->alignment };
        kv[n++] = (struct xbd_kv){ "discard-secure", b->discard_secure ? "1" : "0" };
    }
    return n;
}

static void publish_initwait(struct xbd_device *dev)
{
    struct xbd_kv kv[16];
    struct feature_bufs fb;
    char buf[3][16];
    size_t n = backing_features(dev, kv, &fb);
    const struct xbd_config *cfg = &dev->cfg;

    snprintf(buf[0], sizeof(buf[0]), "%u", cfg->max_indirect_segs);
    snprintf(buf[1], sizeof(buf[1]), "%u", cfg->max_ring_order);
    snprintf(buf[2], sizeof(buf[2]), "%u", cfg->max_queues);
    kv[n++] = (struct xbd_kv){ "feature-persistent", cfg->max_pgrants ? "1" : "0" };
    kv[n++] = (struct xbd_kv){ "feature-max-indirect-segments", buf[0] };
    kv[n++] = (struct xbd_kv){ "max-ring-page-order", buf[1] };
    kv[n++] = (struct xbd_kv){ "multi-queue-max-queues", buf[2] };
    kv[n++] = (struct xbd_kv){ "state", "2" };
    dev_write(dev, kv, n, "state %s -> InitWait", xbd_xenbus_state_name(dev->state));
    dev->state = XBD_XB_INITWAIT;
}

/* (Re)start: read the configuration, open the backing store if the
 * hotplug script (if any) is done, publish features, InitWait.  libxl
 * waits for InitWait before it runs the hotplug script, so InitWait never
 * waits for the script. */
/* A disk with a hotplug script whose configuration we refuse: libxl waits
 * for InitWait before it runs the script, and shows the toolstack's user
 * only what a failed script leaves in hotplug-error; a device that never
 * reached InitWait failed 'xl create' after 10 s with no reason.  So
 * reach InitWait with the reason in xenblkd-error, which block-xenblkd
 * reports as its failure; no frontend is served (ensure_backing).  False
 * for a disk without a script: failed at once. */
static bool refuse_via_script(struct xbd_device *dev, const char *err)
{
    if (!dev->needs_hotplug)        /* read_config reads it first */
        return false;
    dev_err(dev, "%s (reported through the hotplug script)", err);
    snprintf(dev->refusal, sizeof(dev->refusal), "%s", err);
    struct xbd_kv kv[] = { { "xenblkd-error", dev->refusal } };
    dev_write(dev, kv, 1, NULL);
    publish_initwait(dev);
    return true;
}

static void enter_initwait(struct xbd_device *dev)
{
    char err[sizeof(dev->refusal)];

    dev->fatal = false;
    dev->refusal[0] = '\0';
    dev->cfg = initwait_config(dev);
    if (read_config(dev, err, sizeof(err)) < 0) {
        if (!refuse_via_script(dev, err))
            dev_fail(dev, err);
        return;
    }
    int hp = hotplug_ready(dev);
    if (hp > 0)
        return;
    if (hp == 0 && dev->backing.fd < 0 && open_backing(dev, NULL) < 0)
        return;
    publish_initwait(dev);
}

/* In InitWait, the hotplug script may finish later: open then and update
 * the features that depend on the backing store. */
static int ensure_backing(struct xbd_device *dev)
{
    struct xbd_kv kv[8];
    struct feature_bufs fb;

    if (dev->backing.fd >= 0)
        return 0;
    int hp = hotplug_ready(dev);
    if (hp != 0)
        return -1;
    /* A script that is not block-xenblkd reported success all the same. */
    if (dev->refusal[0]) {
        dev_fail(dev, dev->refusal);
        return -1;
    }
    if (open_backing(dev, NULL) < 0)
        return -1;
    dev_write(dev, kv, backing_features(dev, kv, &fb), NULL);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Connect: read and validate what the frontend wrote                  */

/* The frontend's directory, for xbd_fe_parse (src/xenstore_parse.c). */
static char *fe_read(void *opaque, const char *rel)
{
    struct xbd_device *dev = opaque;

    return dev_read(dev, dev->fe, rel);
}

static int read_frontend(struct xbd_device *dev, struct xbd_fe_info *fi, char *why, size_t n)
{
    const struct xbd_fe_limits lim = fe_limits(&dev->cfg);

    return xbd_fe_parse(fe_read, dev, &lim, fi, why, n);
}

/* The process keeps XBD_FD_RESERVE descriptors free whatever its disks
 * ask: one disk connecting must not make another's fail.  (The disk's
 * own budget, disk-fds, already capped the queues it was offered.) */
static bool fds_for_rings(struct xbd_device *dev, unsigned nr_queues)
{
    unsigned long open_now, limit;
    unsigned need = XBD_FDS_PER_QUEUE * nr_queues;

    if (xbd_fds_available(need, &open_now, &limit))
        return true;
    dev_err(dev, "refusing to connect: %u queues need %u file descriptors, %lu of the "
            "limit of %lu are open and %u are kept in reserve", nr_queues, need, open_now,
            limit, XBD_FD_RESERVE);
    return false;
}

/* The queue's share of the disk's persistent-grant mappings: never more
 * than the per-ring maximum, 0 when the share rounds down to nothing
 * (that queue then copies everything). */
static unsigned pgrant_share(const struct xbd_config *c, unsigned nr_queues)
{
    unsigned share = c->disk_grant_mappings / nr_queues;

    return share < c->max_pgrants ? share : c->max_pgrants;
}


/* The disk's write-back was lost (struct xbd_wb_state): every ring's
 * journal says so from now on, whoever met the error. */
static void wb_lost_cb(void *opaque)
{
    struct xbd_device *dev = opaque;

    for (unsigned i = 0; i < dev->nr_rings; i++)
        xbd_ring_note_wb_lost(dev->rings[i]);
}
static int start_rings(struct xbd_device *dev, const struct xbd_fe_info *fi)
{
    unsigned pg = pgrant_share(&dev->cfg, fi->nr_queues);

    char name[96], journal[4200];

    dev->rings = calloc(fi->nr_queues, sizeof(*dev->rings));
    if (!dev->rings)
        return -1;
    /* A new connection starts clean; a resumed one learns from the rings'
     * journals whether flushes failed before (XBD_JFLAG_WB_LOST). */
    dev->wb = (struct xbd_wb_state){ .lost = false, .store = &dev->opened_path,
                                     .on_lost = wb_lost_cb, .opaque = dev };
    for (unsigned q = 0; q < fi->nr_queues; q++) {
        struct xbd_ring_params p = {
            .name = name,
            .domid = (domid_t)dev->domid,
            .queue = q,
            .protocol = fi->protocol,
            .ring_order = fi->queues[q].order,
            .remote_port = fi->queues[q].port,
            .persistent = fi->persistent && pg > 0,
            .max_indirect_segs = dev->cfg.max_indirect_segs,
            .max_persistent_grants = pg,
            .pgrant_idle_s = dev->cfg.pgrant_idle_s,
            .backing = &dev->backing,
            .wb = &dev->wb,
            .journal_path = journal,
            .resume = dev->resuming,
            .mem_budget = ((size_t)dev->cfg.disk_memory_mib << 20) / fi->nr_queues,
            .maps = &dev->host->maps,
            .logb = &dev->logb,
            .unmapper = dev->host->unmapper,
            .clock = &dev->host->loop_stats,
        };
        if (xbd_journal_path(journal, sizeof(journal), dev->host->cfg.state_dir,
                             dev->kind->name, dev->domid, dev->devid, q) < 0) {
            dev_err(dev, "state directory path too long");
            return -1;
        }
        memcpy(p.ring_refs, fi->queues[q].refs, sizeof(p.ring_refs));
        snprintf(name, sizeof(name), "%s q%u", dev->name, q);
        struct xbd_ring *r = xbd_ring_start(dev->host->loop, dev->host->io, &p,
                                            ring_fatal_cb, dev);
        if (!r)
            return -1;
        dev->rings[dev->nr_rings++] = r;
    }
    return 0;
}

static void publish_connected(struct xbd_device *dev)
{
    const struct xbd_backing *b = &dev->backing;
    struct xbd_kv kv[16];
    struct feature_bufs fb;
    char sectors[24], ss[16], pss[16], info[8], pid[24];
    /* A resumed frontend read these keys when it connected and will not
     * read them again: they stay as they are (dev_resume kept them). */
    size_t n = dev->resuming ? 0 : backing_features(dev, kv, &fb);
    unsigned vinfo = (b->readonly ? VDISK_READONLY : 0) | (dev->cdrom ? VDISK_CDROM : 0) |
                     (dev->removable ? VDISK_REMOVABLE : 0);

    snprintf(sectors, sizeof(sectors), "%" PRIu64, b->sectors);
    snprintf(ss, sizeof(ss), "%u", b->sector_size);
    snprintf(pss, sizeof(pss), "%u", b->physical_sector_size);
    snprintf(info, sizeof(info), "%u", vinfo);
    kv[n++] = (struct xbd_kv){ "sectors", sectors };
    if (!dev->resuming) {
        kv[n++] = (struct xbd_kv){ "sector-size", ss };
        kv[n++] = (struct xbd_kv){ "physical-sector-size", pss };
        kv[n++] = (struct xbd_kv){ "info", info };
    }
    if (!strcmp(dev->kind->name, "vbd3")) {
        /* xentop finds a vbd3 disk's counters through the pid of the
         * process serving it (tapdisk3's convention). */
        if (!dev->shm)
            dev->shm = xbd_shm_stats_open(dev->domid, dev->devid);
        if (dev->shm) {
            snprintf(pid, sizeof(pid), "%ld", (long)getpid());
            kv[n++] = (struct xbd_kv){ "kthread-pid", pid };
            publish_stats(dev);
            ev_timer_start(dev->host->loop, &dev->stats_timer);
        }
    }
    if (dev->resuming) {
        /* Already Connected in xenstore: rewriting state would make the
         * frontend look at its connection again for nothing, unless the
         * disk changed size meanwhile (then it is how it learns, as for
         * SIGHUP). */
        bool resized = be_uint(dev, "sectors", b->sectors) != b->sectors;
        if (resized)
            kv[n++] = (struct xbd_kv){ "state", "4" };
        dev_write(dev, kv, n, "resumed in state Connected%s", resized ? " (size changed)" : "");
        dev->state = XBD_XB_CONNECTED;
        return;
    }
    kv[n++] = (struct xbd_kv){ "state", "4" };
    dev_write(dev, kv, n, "state %s -> Connected", xbd_xenbus_state_name(dev->state));
    dev->state = XBD_XB_CONNECTED;
}

static void dev_connect(struct xbd_device *dev)
{
    struct xbd_fe_info fi;
    char why[256];

    /* Only a new departure of the frontend allows another attempt from
     * Closing: a refused or broken connection must not retry by itself. */
    dev->fe_went_down = false;
    if (read_frontend(dev, &fi, why, sizeof(why)) < 0) {
        xbd_logb_first(&dev->logb, XBD_LOG_ERR, "%s: refusing to connect: %s", dev->name, why);
        close_to(dev, XBD_XB_CLOSING);
        return;
    }
    if (!fds_for_rings(dev, fi.nr_queues)) {
        free(fi.queues);
        close_to(dev, XBD_XB_CLOSING);
        return;
    }
    if (start_rings(dev, &fi) < 0) {
        if (!dev->nr_rings) {
            free(dev->rings);
            dev->rings = NULL;
        }
        dev_err(dev, "refusing to connect: cannot start %u ring%s (%s protocol, order %u)",
                fi.nr_queues, fi.nr_queues == 1 ? "" : "s",
                fi.protocol == XBD_PROTO_X86_32 ? "x86_32" :
                fi.protocol == XBD_PROTO_X86_64 ? "x86_64" : "native",
                fi.queues[0].order);
        free(fi.queues);
        close_to(dev, XBD_XB_CLOSING);
        return;
    }
    dev_info(dev, "connected %u queue%s, ring order %u, %s protocol, persistent grants %s",
             fi.nr_queues, fi.nr_queues == 1 ? "" : "s", fi.queues[0].order,
             fi.protocol == XBD_PROTO_X86_32 ? "x86_32" :
             fi.protocol == XBD_PROTO_X86_64 ? "x86_64" : "native",
             fi.persistent ? "on" : "off");
    dev->neg = (struct xbd_negotiated){
        .protocol = fi.protocol,
        .ring_order = fi.queues[0].order,
        .nr_queues = fi.nr_queues,
        /* What the rings got: no persistent grants without a share of
         * mappings, and the indirect segments we offered. */
        .persistent = fi.persistent && pgrant_share(&dev->cfg, fi.nr_queues) > 0,
        .max_indirect_segs = dev->cfg.max_indirect_segs,
    };
    free(fi.queues);
    publish_connected(dev);
}

/* ------------------------------------------------------------------ */
/* the evaluation                                                      */

/* The memory itself, now or when the last xenstore job pointing here is
 * back (dev_job_end); nothing but jobs and counts is used from here on. */
static void dev_release(struct xbd_device *dev)
{
    if (dev->jobs) {
        dev->dead = true;
        dev->fe = dev->path = dev->opened_path = NULL;
        return;
    }
    free(dev);
}

static void dev_free(struct xbd_device *dev)
{
    struct xbd_host *h = dev->host;

    dev_info(dev, "backend directory removed, device freed");
    xbd_journal_remove_device(h->cfg.state_dir, dev->kind->name, dev->domid, dev->devid);
    xbd_watch_remove(h->xb, dev->fe_watch);
    xbd_eval_queue_remove(&h->evq, &dev->evn);
    ev_timer_stop(h->loop, &dev->stats_timer);
    xbd_shm_stats_close(dev->shm);
    close_backing(dev);
    xbd_host_remove_device(h, dev);
    xbd_log_bucket_fini(&dev->logb);
    free(dev->fe);
    free(dev->path);
    free(dev->opened_path);
    dev_release(dev);
    xbd_host_changed(h);
    xbd_host_check_done(h);
}

static void follow_frontend(struct xbd_device *dev, int fe);

/* A resumed device keeps the limits a previous instance published (the
 * frontend negotiated with those), whatever the configuration says now;
 * the backend directory is ours, but stay within what the data plane can
 * serve all the same. */
static void adopt_published_limits(struct xbd_device *dev)
{
    struct xbd_config *c = &dev->cfg;
    unsigned long v;

    *c = dev->host->cfg;
    v = be_uint(dev, "feature-max-indirect-segments", c->max_indirect_segs);
    c->max_indirect_segs = v > XBD_MAX_INDIRECT_SEGS ? XBD_MAX_INDIRECT_SEGS : (unsigned)v;
    v = be_uint(dev, "max-ring-page-order", c->max_ring_order);
    c->max_ring_order = v > XBD_MAX_RING_ORDER ? XBD_MAX_RING_ORDER : (unsigned)v;
    v = be_uint(dev, "multi-queue-max-queues", c->max_queues);
    c->max_queues = v == 0 ? 1 : v > XBD_MAX_QUEUES ? XBD_MAX_QUEUES : (unsigned)v;
}

/* Connect the rings of a device a previous instance left Connected, from
 * their journals, without leaving Connected in xenstore. */
static void dev_resume(struct xbd_device *dev)
{
    char err[200];
    unsigned long ss = be_uint(dev, "sector-size", 0);
    unsigned long flush = be_uint(dev, "feature-flush-cache", 2);
    /* What the frontend read when it connected (and will not read again). */
    struct xbd_backing_terms told = {
        .sector_size = ss == 512 || ss == 4096 ? (unsigned)ss : 0,
        .flush = flush == 0 ? 0 : flush == 1 ? 1 : -1,
    };

    adopt_published_limits(dev);
    if (read_config(dev, err, sizeof(err)) < 0) {
        dev_fail(dev, err);
        return;
    }
    if (hotplug_ready(dev) != 0)
        return;
    dev->state = XBD_XB_CONNECTED;      /* what xenstore says */
    if (dev->backing.fd < 0 && open_backing(dev, &told) < 0)
        return;         /* failed or refused: logged and Closing */
    dev->resuming = true;
    dev_connect(dev);
    dev->resuming = false;
}

/* A device first seen in a state a previous instance left it in: carry on
 * from there rather than start over from InitWait, which would show the
 * frontend a backend going back and forth.  false: start over. */
static bool take_over(struct xbd_device *dev, int fe)
{
    unsigned long be = be_uint(dev, "state", XBD_XB_UNKNOWN);
    bool fe_up = fe == XBD_XB_INITIALISED || fe == XBD_XB_CONNECTED;
    bool fe_down = fe == XBD_XB_CLOSING || fe == XBD_XB_CLOSED || fe == XBD_XB_UNKNOWN;

    if (be == XBD_XB_CONNECTED && fe_up) {
        dev_info(dev, "found Connected: resuming its rings");
        dev_resume(dev);
        return true;
    }
    if ((be == XBD_XB_CONNECTED && fe_down) ||
        (be == XBD_XB_CLOSING && fe != XBD_XB_INITIALISING && fe != XBD_XB_INITIALISED)) {
        /* Closing under way: go on with it (no rings to stop). */
        dev->state = (int)be;
        dev_info(dev, "found %s, frontend %s: carrying on", xbd_xenbus_state_name((int)be),
                 xbd_xenbus_state_name(fe));
        follow_frontend(dev, fe);
        return true;
    }
    return false;
}

/* We are Closing (rings drained) and the frontend is back: it flapped
 * Closing -> Connected, or its driver started again without passing
 * Closed.  Linux blkback's frontend_changed connects again whenever the
 * frontend says Initialised/Connected and the backend is not Connected, so
 * a guest never loses its disk to a quick Closing/Connected; likewise a
 * frontend Initialising again gets InitWait, as from Closed.  Only after
 * the frontend was seen leaving (fe_went_down): a connection refused or
 * broken by the frontend with its state still Connected stays Closing
 * until the frontend itself starts over, so a broken ring cannot make us
 * reconnect in a loop. */
static void frontend_back(struct xbd_device *dev, int fe)
{
    if (dev->failed || dev->nr_rings || !dev->fe_went_down)
        return;
    if (fe == XBD_XB_INITIALISING) {
        dev_info(dev, "frontend Initialising again while Closing: preparing to reconnect");
        enter_initwait(dev);
        if (dev->state == XBD_XB_INITWAIT)
            dev_kick(dev);
    } else if (fe == XBD_XB_INITIALISED || fe == XBD_XB_CONNECTED) {
        dev_info(dev, "frontend %s again while Closing: reconnecting",
                 xbd_xenbus_state_name(fe));
        if (ensure_backing(dev) == 0)
            dev_connect(dev);
    }
}

/* What to do given the frontend's state, once online and configured. */
static void follow_frontend(struct xbd_device *dev, int fe)
{
    if (fe == XBD_XB_INITIALISING || fe == XBD_XB_CLOSING || fe == XBD_XB_CLOSED)
        dev->fe_went_down = true;
    switch (dev->state) {
    case XBD_XB_INITWAIT:
        if (fe != XBD_XB_CLOSED)
            dev->fe_closed_at_initwait = false;
        if (fe == XBD_XB_CLOSING) {
            close_to(dev, XBD_XB_CLOSING);
        } else if (fe == XBD_XB_CLOSED) {
            /* Closed since before our InitWait: wait for it to come back. */
            if (!dev->fe_closed_at_initwait)
                close_to(dev, XBD_XB_CLOSED);
        } else if (ensure_backing(dev) == 0 &&
                   (fe == XBD_XB_INITIALISED || fe == XBD_XB_CONNECTED)) {
            dev_connect(dev);
        }
        break;
    case XBD_XB_CONNECTED:
        /* Initialised/Connected again while we are connected: two events
         * coalesced, nothing changed (as Linux blkback). */
        if (fe == XBD_XB_CLOSING)
            close_to(dev, XBD_XB_CLOSING);
        else if (fe == XBD_XB_CLOSED || fe == XBD_XB_UNKNOWN)
            close_to(dev, XBD_XB_CLOSED);
        break;
    case XBD_XB_CLOSING:
        if (fe == XBD_XB_CLOSED || fe == XBD_XB_UNKNOWN)
            close_to(dev, XBD_XB_CLOSED);
        else
            frontend_back(dev, fe);
        break;
    case XBD_XB_CLOSED:
        /* The frontend starts over (reboot, kexec, module reload). */
        if (!dev->failed && (fe == XBD_XB_INITIALISING || fe == XBD_XB_INITIALISED)) {
            dev_info(dev, "frontend %s again: preparing to reconnect",
                     xbd_xenbus_state_name(fe));
            enter_initwait(dev);
            dev_kick(dev);
        }
        break;
    default:
        /* First sight of the device: at start-up, or after a previous
         * instance handed it over or died (man xenblkd, RESTARTING). */
        if (take_over(dev, fe))
            break;
        dev->fe_closed_at_initwait = fe == XBD_XB_CLOSED;
        enter_initwait(dev);
        if (dev->state == XBD_XB_INITWAIT)
            dev_kick(dev);
        break;
    }
}

/* Stop for a restart: drain the rings (every response published), keep
 * their journals, release everything, and leave xenstore as it is: the
 * frontend stays Connected (or wherever it is) and the next instance
 * carries on (take_over). */
static void dev_handover(struct xbd_device *dev)
{
    struct xbd_host *h = dev->host;

    if (dev->nr_rings) {
        stop_rings(dev, 0, true);
        if (dev->draining)
            return;             /* ring_drained_cb kicks again */
    }
    close_backing(dev);
    if (dev->draining)
        return;                 /* NBD clients' I/O: nbd_drained_cb kicks */
    if (!dev->handed_over) {
        dev->handed_over = true;
        ev_timer_stop(h->loop, &dev->stats_timer);
        dev_info(dev, "handed over in state %s: every response published, nothing "
                 "mapped or bound, xenstore left as it is, ring journals kept in %s/%s",
                 xbd_xenbus_state_name(dev->state), h->cfg.state_dir, XBD_JOURNAL_SUBDIR);
    }
    xbd_host_check_done(h);
}

/* Rings are draining: nothing to do but notice that the toolstack removed
 * the directory meanwhile (it may re-create it before the drain ends:
 * libxl forces a removal after 10 s and a disk can be added again at
 * once), so that the drain's end frees this device instead of carrying
 * on in a directory that is not its own any more. */
static void note_removal(struct xbd_device *dev)
{
    if (!dev->gone && !be_exists(dev)) {
        if (dev->nbd_closing && dev->draining == 1)
            dev_info(dev, "backend directory removed while NBD clients' I/O drains");
        else
            dev_info(dev, "backend directory removed while rings drain");
        dev->gone = true;
    }
}

/* A removed device whose rings have drained: free it, and if its directory
 * exists again, the toolstack added a new disk there: a new device for it,
 * starting from scratch (its own keys, frontend, InitWait). */
static void replace_gone(struct xbd_device *dev)
{
    struct xbd_kind *k = dev->kind;
    unsigned domid = dev->domid, devid = dev->devid;
    bool again = be_exists(dev);

    dev_free(dev);
    if (again) {
        xbd_info("domain %u %s/%u: backend directory re-created: new device", domid,
                 k->name, devid);
        xbd_device_create(k, domid, devid);
    }
}

/* After a resize (xbd_device_check_size), from an evaluation that just
 * followed the frontend. */
static void tell_resize(struct xbd_device *dev)
{
    char v[24];

    if (!dev->resize_pending)
        return;
    dev->resize_pending = false;
    /* Tell only a frontend that is and stays connected: rewriting Connected
     * while a close is under way (frontend Closing, online=0, our own
     * shutdown, a removed directory still draining) would restart
     * blkfront's connection.  Otherwise the next connect publishes it. */
    if (dev->state != XBD_XB_CONNECTED || dev->host->stopping || dev->gone ||
        !dev->nr_rings || frontend_state(dev) != XBD_XB_CONNECTED ||
        !be_uint(dev, "online", 1))
        return;
    snprintf(v, sizeof(v), "%" PRIu64, dev->backing.sectors);
    /* Rewriting state fires the frontend's watch on it; blkfront then
     * re-reads sectors while connected (as for blkback's vbd resize). */
    struct xbd_kv kv[] = { { "sectors", v }, { "state", "4" } };
    dev_write(dev, kv, 2, "told the connected frontend: sectors %s", v);
}

/* online=0: the toolstack removes the disk.  libxl writes state=5 beside
 * it, waits 10 s for Closed and deletes the directory itself afterwards;
 * a safe removal (xl block-detach without -f) that times out fails and
 * leaves the disk to the guest.  So, as Linux blkback, the frontend
 * decides: rings that run are served until the frontend lets go (Closed,
 * or its state gone), and only then drained and closed.  Its Closing is
 * not letting go: an old Linux blkfront that refuses to close a disk in
 * use says Closing and goes on using it, and blkback disconnects only at
 * Closed.  A frontend that is not connected is closed at once.  Closed
 * stays Closed: follow_frontend, which would reconnect, is not called. */
/* Whether a previous instance left a journal of queue 0: it was serving
 * the rings when it stopped (a handover or a crash keeps the journals; a
 * close for good, a protocol error or shutdown --close removes them). */
static bool left_journal(const struct xbd_device *dev)
{
    char path[PATH_MAX];

    return xbd_journal_path(path, sizeof(path), dev->host->cfg.state_dir, dev->kind->name,
                            dev->domid, dev->devid, 0) == 0 && access(path, F_OK) == 0;
}

static void go_offline(struct xbd_device *dev, int fe)
{
    /* First sight (a restart) of a disk being removed: its state is
     * libxl's 5, but a frontend still Connected, or Closing and still
     * using its disk (an old blkfront refusing to close it), went so
     * after a previous instance's Connected: resume its rings from their
     * journals (as take_over does) and serve it as before the restart, if
     * the previous instance left the rings' journals: a frontend that only
     * says so (its rings closed for good before, or a guest's claim) is
     * closed at once. */
    if (dev->state == XBD_XB_UNKNOWN && (fe == XBD_XB_CONNECTED || fe == XBD_XB_CLOSING) &&
        left_journal(dev)) {
        dev_info(dev, "online = 0, frontend %s: resuming its rings", xbd_xenbus_state_name(fe));
        dev_resume(dev);
    }
    if (dev->nr_rings && fe != XBD_XB_CLOSED && fe != XBD_XB_UNKNOWN) {
        if (!dev->offline_serving)
            dev_info(dev, "online = 0: frontend %s, serving it until it closes",
                     xbd_xenbus_state_name(fe));
        dev->offline_serving = true;
        /* As blkback, answer its Closing with ours, rings kept: libxl
         * wrote 5 already, a toolstack that only wrote online=0 did not,
         * and a frontend closing by itself waits for it. */
        if (fe == XBD_XB_CLOSING)
            set_state(dev, XBD_XB_CLOSING);
        return;
    }
    if (dev->state != XBD_XB_CLOSED || dev->nr_rings)
        dev_info(dev, "online = 0: closing");
    /* libxl writes state=5 itself before waiting for Closed: make sure
     * Closed is what xenstore says, without rewriting it on every event
     * (our own write fires the watch again). */
    if (dev->state == XBD_XB_CLOSED && be_state_overwritten(dev))
        dev->state = XBD_XB_CLOSING;
    close_to(dev, XBD_XB_CLOSED);
}

static void dev_update(struct xbd_device *dev)
{
    struct xbd_host *h = dev->host;

    if (dev->draining) {
        note_removal(dev);
        return;                 /* ring_drained_cb kicks again */
    }
    /* Below, close_backing may start a drain of NBD clients' I/O: what
     * releases the disk waits for it as for rings (ring_drained_cb). */
    if (dev->gone) {
        close_backing(dev);
        if (!dev->draining)
            replace_gone(dev);
        return;
    }
    if (dev->after_drain) {
        close_backing(dev);
        if (dev->draining)
            return;
        int s = dev->after_drain;
        dev->after_drain = 0;
        set_state(dev, s);
    }
    if (!be_exists(dev)) {
        /* The toolstack deleted the device: release everything. */
        if (dev->nr_rings) {
            dev_info(dev, "backend directory removed while rings run");
            dev->gone = true;
            stop_rings(dev, 0, false);
            if (dev->draining)
                return;         /* replace_gone once drained */
        }
        close_backing(dev);
        if (dev->draining) {
            dev->gone = true;
            return;             /* replace_gone once drained */
        }
        dev_free(dev);
        return;
    }
    if (dev->fatal && dev->nr_rings) {
        xbd_logb_first(&dev->logb, XBD_LOG_ERR, "%s: frontend broke the protocol: %s; "
                       "disconnecting", dev->name, dev->fatal_reason);
        close_to(dev, XBD_XB_CLOSING);
    }
    dev->fatal = false;
    /* The rings just stopped are draining: their I/O still uses the
     * backing store's fd, so nothing below (close_to Closed, a handover,
     * InitWait again) may close or reopen it yet. */
    if (dev->draining)
        return;                 /* ring_drained_cb kicks again */

    if (h->stopping && h->stop_mode == XBD_STOP_HANDOVER) {
        dev_handover(dev);
        return;
    } else if (h->stopping) {
        close_to(dev, XBD_XB_CLOSED);
    } else if (be_uint(dev, "online", 1) == 0) {
        go_offline(dev, frontend_state(dev));
    } else {
        follow_frontend(dev, frontend_state(dev));
        tell_resize(dev);
    }
    xbd_host_changed(h);
    xbd_host_check_done(h);
}

/* ------------------------------------------------------------------ */
/* creation                                                            */


/* The frontend directory must be the frontend domain's own: that domain
 * writes there the grant refs and event channel we then use in its name
 * (mapped from *its* grant table).  A "frontend" naming another domain's
 * directory would let that other domain choose them.  libxl always writes
 * /local/domain/<frontend-id>/device/<type>/<devid>. */
static bool frontend_path_ok(const char *fe, unsigned long feid)
{
    char prefix[40];
    int n = snprintf(prefix, sizeof(prefix), "/local/domain/%lu/", feid);

    return !strncmp(fe, prefix, (size_t)n) && fe[n] != '\0';
}

/* The device, once its probe (below) found a consistent directory. */
static void dev_create_from(struct xbd_kind *k, unsigned domid, unsigned devid, char *fe)
{
    struct xbd_host *h = k->host;
    struct xbd_device *dev;
    char path[XBD_XS_PATH_MAX];

    dev = calloc(1, sizeof(*dev));
    if (!dev) {
        xbd_err("domain %u %s/%u: out of memory", domid, k->name, devid);
        free(fe);
        return;
    }
    dev->host = h;
    /* The NBD export shares it from InitWait on (start_rings renews it). */
    dev->wb = (struct xbd_wb_state){ .store = &dev->opened_path, .on_lost = wb_lost_cb,
                                     .opaque = dev };
    dev->kind = k;
    dev->domid = domid;
    dev->devid = devid;
    dev->fe = fe;
    dev->backing.fd = -1;
    dev->state = XBD_XB_UNKNOWN;
    snprintf(dev->name, sizeof(dev->name), "domain %u %s/%u", domid, k->name, devid);
    snprintf(dev->be, sizeof(dev->be), "%s/%u/%u", k->dir, domid, devid);
    xbd_eval_node_init(&dev->evn, dev_kick_cb);
    xbd_log_bucket_init(&dev->logb, dev->name);
    ev_timer_init(&dev->stats_timer, stats_timer_cb, XBD_STATS_INTERVAL, XBD_STATS_INTERVAL);
    snprintf(path, sizeof(path), "%s/state", fe);
    dev->fe_watch = xbd_watch_add(h->xb, path, fe_watch_cb, dev);
    if (!dev->fe_watch) {
        dev_err(dev, "cannot watch the frontend state");
        xbd_log_bucket_fini(&dev->logb);
        free(fe);
        free(dev);
        return;
    }
    if (xbd_host_add_device(h, dev) < 0) {
        dev_err(dev, "out of memory");
        xbd_watch_remove(h->xb, dev->fe_watch);
        xbd_log_bucket_fini(&dev->logb);
        free(fe);
        free(dev);
        return;
    }
    dev_info(dev, "new device, frontend %s", fe);
    dev_kick(dev);
    xbd_host_changed(h);
}

/* A directory that may be a new device: its frontend and frontend-id,
 * read by the xenstore thread.  At most one probe per directory at a
 * time (the host's list), so a burst of watch events creates one
 * device. */
struct xbd_dev_probe {
    struct xbd_xs_job job;
    struct xbd_dev_probe *next;     /* host's list (loop only) */
    struct xbd_host *host;          /* loop only; NULL once the host is gone */
    struct xbd_kind *kind;
    struct xbd_xenbus *xb;
    unsigned domid, devid;
    bool again;                     /* asked for again while out */
    char be[128];
    char *fe;                       /* results */
    int feid_rc;
    unsigned long feid;
};

static void probe_run(struct xbd_xs_job *job, void *ctx)
{
    struct xbd_dev_probe *p = (struct xbd_dev_probe *)job;
    char path[XBD_XS_PATH_MAX];

    /* libxl writes the whole directory in one transaction: no frontend
     * means it is not (or no longer) a device. */
    snprintf(path, sizeof(path), "%s/frontend", p->be);
    p->fe = xbd_xs_read(p->xb, XBT_NULL, path);
    if (!p->fe)
        return;
    snprintf(path, sizeof(path), "%s/frontend-id", p->be);
    p->feid_rc = xbd_xs_read_uint(p->xb, XBT_NULL, path, 0x7fef, &p->feid);
}

static void probe_unlink(struct xbd_host *h, struct xbd_dev_probe *p)
{
    for (struct xbd_dev_probe **pp = &h->probes; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            return;
        }
    }
}

static void probe_done(struct xbd_xs_job *job)
{
    struct xbd_dev_probe *p = (struct xbd_dev_probe *)job;
    struct xbd_host *h = p->host;
    struct xbd_kind *k = p->kind;
    char *fe = p->fe;
    bool again = p->again;

    if (h)
        probe_unlink(h, p);
    if (!h || !job->ran || h->stopping || xbd_host_find_device(h, k, p->domid, p->devid)) {
        free(fe);
        free(p);
        return;
    }
    if (fe && (p->feid_rc < 0 || p->feid != p->domid || !frontend_path_ok(fe, p->feid) ||
               strlen(fe) > XBD_XS_PATH_MAX - 64)) {
        char pbuf[80];
        xbd_err("domain %u %s/%u: ignoring device with inconsistent frontend '%s' / "
                "frontend-id", p->domid, k->name, p->devid, printable(fe, pbuf, sizeof(pbuf)));
        free(fe);
        fe = NULL;
    }
    unsigned domid = p->domid, devid = p->devid;
    free(p);
    if (fe)
        dev_create_from(k, domid, devid, fe);
    else if (again)
        xbd_device_create(k, domid, devid);
}

void xbd_device_create(struct xbd_kind *k, unsigned domid, unsigned devid)
{
    struct xbd_host *h = k->host;
    struct xbd_dev_probe *p;

    if (h->stopping)
        return;
    for (p = h->probes; p; p = p->next) {
        if (p->kind == k && p->domid == domid && p->devid == devid) {
            p->again = true;
            return;
        }
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        xbd_err("domain %u %s/%u: out of memory", domid, k->name, devid);
        return;
    }
    p->job.run = probe_run;
    p->job.done = probe_done;
    p->host = h;
    p->kind = k;
    p->xb = h->xb;
    p->domid = domid;
    p->devid = devid;
    snprintf(p->be, sizeof(p->be), "%s/%u/%u", k->dir, domid, devid);
    p->next = h->probes;
    h->probes = p;
    xbd_xenbus_submit(h->xb, &p->job);
}

void xbd_device_cancel_probes(struct xbd_host *h)
{
    while (h->probes) {
        struct xbd_dev_probe *p = h->probes;
        h->probes = p->next;
        p->host = NULL;
    }
}

/* ------------------------------------------------------------------ */
/* what the host asks of a device                                      */

void xbd_device_kick(struct xbd_device *dev)
{
    dev_kick(dev);
}

bool xbd_device_is(const struct xbd_device *dev, const struct xbd_kind *k,
                   unsigned domid, unsigned devid)
{
    return dev->kind == k && dev->domid == domid && dev->devid == devid;
}

bool xbd_device_in(const struct xbd_device *dev, const struct xbd_kind *k, long domid)
{
    return dev->kind == k && (domid < 0 || dev->domid == (unsigned long)domid);
}

bool xbd_device_settled(const struct xbd_device *d)
{
    if (d->draining || d->nr_rings)
        return false;
    return d->gone || d->handed_over || d->state == XBD_XB_CLOSED;
}

void xbd_device_count(const struct xbd_device *d, struct xbd_host_counts *c)
{
    if (d->state == XBD_XB_CONNECTED && d->nr_rings)
        c->connected++;
    c->rings += d->nr_rings;
}

bool xbd_device_busy(const struct xbd_device *d)
{
    return d->draining || d->nr_rings;
}

void xbd_device_log_stuck(const struct xbd_device *d, double timeout)
{
    dev_err(d, "rings or NBD clients' I/O did not drain within %.0f s, giving up", timeout);
}

void xbd_device_destroy(struct xbd_device *d)
{
    struct xbd_host *h = d->host;

    /* Only reached at the exit, with rings still running or draining
     * after a stop timeout (the I/O engine has stopped: see
     * xbd_ring_abandon). */
    for (unsigned i = 0; i < d->nr_rings; i++)
        xbd_ring_abandon(d->rings[i]);
    for (unsigned i = 0; i < d->nr_stopping; i++)
        if (d->stopping[i])
            xbd_ring_abandon(d->stopping[i]);
    forget_stopping(d);
    /* The same for NBD clients cut off (before logb goes: they log). */
    close_backing(d);
    xbd_nbd_export_abandon(d->nbd_closing);
    d->nbd_closing = NULL;
    xbd_watch_remove(h->xb, d->fe_watch);
    xbd_eval_queue_remove(&h->evq, &d->evn);
    xbd_log_bucket_fini(&d->logb);
    ev_timer_stop(h->loop, &d->stats_timer);
    xbd_shm_stats_close(d->shm);
    free(d->rings);
    free(d->fe);
    free(d->path);
    free(d->opened_path);
    dev_release(d);
}

/* ------------------------------------------------------------------ */
/* what the control socket reads                                       */

void xbd_device_get_info(const struct xbd_device *dev, struct xbd_device_info *out)
{
    const struct xbd_backing *b = &dev->backing;

    *out = (struct xbd_device_info){
        .domid = dev->domid,
        .devid = dev->devid,
        .kind = dev->kind->name,
        .backend = dev->be,
        .frontend = dev->fe,
        .backing_path = b->fd >= 0 ? dev->opened_path : dev->path,
        .backing_open = b->fd >= 0,
        .is_blockdev = b->fd >= 0 && b->is_blockdev,
        .sectors = b->fd >= 0 ? b->sectors : 0,
        .sector_size = b->fd >= 0 ? b->sector_size : 0,
        .physical_sector_size = b->fd >= 0 ? b->physical_sector_size : 0,
        .readonly = b->fd >= 0 ? b->readonly : dev->readonly,
        .discard = b->fd >= 0 && b->discard,
        .wb_lost = dev->nr_rings > 0 && dev->wb.lost,
        .state = dev->state,
        .connected = dev->nr_rings > 0,
        .neg = dev->neg,
        .eval = xbd_device_get_eval(dev),
        .budget = {
            .memory_limit = (uint64_t)dev->cfg.disk_memory_mib << 20,
            .grant_mappings_limit = dev->cfg.disk_grant_mappings,
            .fds_limit = dev->cfg.disk_fds,
            .fds_used = (b->fd >= 0) + (uint64_t)XBD_FDS_PER_QUEUE * dev->nr_rings,
            .log_suppressed = dev->logb.suppressed,
        },
    };
}

/* What the device still has to do before it has acted on everything its
 * frontend and the toolstack wrote (settle.c, control socket). */
struct xbd_device_eval xbd_device_get_eval(const struct xbd_device *dev)
{
    const struct xbd_eval_node *n = &dev->evn;
    /* dev->jobs counts the snapshot out and the writes queued. */
    unsigned writes = dev->jobs - (dev->snap_job != NULL);

    return (struct xbd_device_eval){
        .count = dev->evaluations,
        .queued = n->queued,
        .delayed = ev_is_active(&n->delay_w) || ev_is_pending(&n->delay_w),
        .snapshot_pending = dev->snap_job != NULL,
        .writes_pending = writes,
        .draining = dev->draining - (dev->nbd_closing ? 1u : 0u),  /* rings only */
    };
}

unsigned xbd_device_ring_count(const struct xbd_device *dev)
{
    return dev->nr_rings;
}

const struct xbd_ring_stats *xbd_device_ring_stats(const struct xbd_device *dev, unsigned i)
{
    return i < dev->nr_rings ? xbd_ring_get_stats(dev->rings[i]) : NULL;
}

void xbd_device_check_size(struct xbd_device *dev)
{
    struct xbd_backing *b = &dev->backing;
    uint64_t sectors;

    if (b->fd < 0)
        return;
    if (xbd_backing_size(b, &sectors) < 0) {
        dev_warn(dev, "cannot read the size of %s: %s", dev->path, strerror(errno));
        return;
    }
    if (sectors == b->sectors)
        return;
    dev_info(dev, "%s changed size: %" PRIu64 " -> %" PRIu64 " sectors", dev->path,
             b->sectors, sectors);
    /* The rings check every request against this very field; the NBD
     * clients against the size each was told, now at most this. */
    b->sectors = sectors;
    xbd_nbd_export_resized(dev->nbd);
    /* The frontend is told by an evaluation, which knows from its
     * snapshot whether it is still connected (tell_resize). */
    if (dev->state == XBD_XB_CONNECTED && dev->nr_rings) {
        dev->resize_pending = true;
        dev_kick(dev);
    }
}
