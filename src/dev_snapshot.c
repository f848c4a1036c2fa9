/*
 * dev_snapshot.c - a device evaluation's xenstore reads, made by the
 * xenstore thread (see dev_snapshot.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xenblkd/device.h"
#include "xenblkd/log.h"
#include "xenblkd/xenbus.h"

#include "dev_snapshot.h"
#include "xenstore_parse.h"

/* Every backend key device.c reads (toolstack-written, and the ones we
 * published that a take-over reads back). */
static const char *const be_keys[] = {
    "params", "mode", "device-type", "removable", "discard-enable", "direct-io-safe",
    "script", "type", "physical-device-path", "physical-device", "hotplug-status",
    "hotplug-error", "online", "state", "sectors", "feature-max-indirect-segments",
    "max-ring-page-order", "multi-queue-max-queues", "sector-size", "feature-flush-cache",
};

/* ------------------------------------------------------------------ */
/* the xenstore thread                                                 */

static char *join(const char *dir, const char *key)
{
    size_t a = strlen(dir), b = strlen(key);
    char *p = malloc(a + b + 2);

    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, key, b + 1);
    }
    return p;
}

/* Record path = value (value NULL: absent); takes path and value. */
static int record(struct xbd_dev_snap *s, char *path, char *value)
{
    if (s->n == s->cap) {
        unsigned cap = s->cap ? 2 * s->cap : 32;
        struct xbd_snap_kv *kv = realloc(s->kv, cap * sizeof(*kv));
        if (!kv) {
            free(path);
            free(value);
            s->err = ENOMEM;
            return -1;
        }
        s->kv = kv;
        s->cap = cap;
    }
    s->kv[s->n++] = (struct xbd_snap_kv){ path, value };
    return 0;
}

/* Read dir/key into the snapshot; present false: known absent, no round
 * trip. */
static void read_key(struct xbd_dev_snap *s, const char *dir, const char *key, bool present)
{
    char *path = join(dir, key);
    char *v = NULL;

    if (!path) {
        s->err = ENOMEM;
        return;
    }
    if (present) {
        v = xbd_xs_read(s->xb, XBT_NULL, path);
        if (!v && errno != ENOENT)
            s->err = errno ? errno : EIO;
    }
    record(s, path, v);
}

static bool listed(char **names, unsigned n, const char *key)
{
    for (unsigned i = 0; i < n; i++)
        if (!strcmp(names[i], key))
            return true;
    return false;
}

static void read_backend(struct xbd_dev_snap *s)
{
    unsigned n = 0;
    char **names = xbd_xs_directory(s->xb, XBT_NULL, s->be, &n);

    if (!names) {
        if (errno != ENOENT)
            s->err = errno ? errno : EIO;
        s->be_exists = false;
        return;
    }
    s->be_exists = true;
    for (size_t i = 0; i < sizeof(be_keys) / sizeof(be_keys[0]) && !s->err; i++)
        read_key(s, s->be, be_keys[i], listed(names, n, be_keys[i]));
    free(names);
}

/* xbd_fe_parse's reader: every key it asks for, recorded. */
static char *fe_record_read(void *opaque, const char *rel)
{
    struct xbd_dev_snap *s = opaque;
    char *path = join(s->fe, rel);
    char *v, *copy = NULL;

    if (!path) {
        s->err = ENOMEM;
        return NULL;
    }
    v = xbd_xs_read(s->xb, XBT_NULL, path);
    if (!v && errno != ENOENT)
        s->err = errno ? errno : EIO;
    if (v && !(copy = strdup(v)))
        s->err = ENOMEM;
    record(s, path, v);
    return copy;
}

static void read_frontend(struct xbd_dev_snap *s)
{
    struct xbd_fe_limits lim = s->lim;
    struct xbd_fe_info fi;
    unsigned long v;
    char why[256];

    /* What the backend directory says the frontend was offered, which a
     * resumed device adopts (read above; bounded as the device bounds
     * it). */
    if (xbd_snap_read_uint(s, s->be, "max-ring-page-order", ~0UL, &v) == 0 &&
        v > lim.max_ring_order)
        lim.max_ring_order = v > XBD_MAX_RING_ORDER ? XBD_MAX_RING_ORDER : (unsigned)v;
    if (xbd_snap_read_uint(s, s->be, "multi-queue-max-queues", ~0UL, &v) == 0 &&
        v > lim.max_queues)
        lim.max_queues = v > XBD_MAX_QUEUES ? XBD_MAX_QUEUES : (unsigned)v;
    if (xbd_fe_parse(fe_record_read, s, &lim, &fi, why, sizeof(why)) == 0)
        free(fi.queues);
}

/* A connected device's evaluation reads whether its directory is still
 * there, "online" and the frontend's state, nothing else: three round
 * trips instead of some twenty, for what a storming guest asks most. */
static void read_connected(struct xbd_dev_snap *s)
{
    char *v = xbd_xs_read(s->xb, XBT_NULL, s->be);

    if (!v) {
        if (errno != ENOENT)
            s->err = errno ? errno : EIO;
        s->be_exists = false;
        return;
    }
    free(v);
    s->be_exists = true;
    read_key(s, s->be, "online", true);
    if (!s->err)
        read_key(s, s->fe, "state", true);
}

static void snap_run(struct xbd_xs_job *job, void *ctx)
{
    struct xbd_dev_snap *s = (struct xbd_dev_snap *)job;
    unsigned long fe_state;

    if (s->connected) {
        read_connected(s);
        return;
    }
    read_backend(s);
    if (s->err || !s->be_exists)
        return;
    read_key(s, s->fe, "state", true);
    if (s->err || !s->want_fe)
        return;
    /* Closing too: an old blkfront refusing to let go of a disk in use
     * says Closing and keeps using its rings, which a restart during a
     * pending detach resumes (device.c, go_offline). */
    if (xbd_snap_read_uint(s, s->fe, "state", XBD_XB_RECONFIGURED, &fe_state) < 0 ||
        (fe_state != XBD_XB_INITIALISED && fe_state != XBD_XB_CONNECTED &&
         fe_state != XBD_XB_CLOSING))
        return;
    read_frontend(s);
}

/* ------------------------------------------------------------------ */
/* the loop                                                            */

struct xbd_dev_snap *xbd_dev_snap_new(struct xbd_xenbus *xb, const char *be, const char *fe,
                                      enum xbd_snap_kind kind, const struct xbd_fe_limits *lim,
                                      xbd_xs_done_fn *done, void *owner)
{
    struct xbd_dev_snap *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->be = strdup(be);
    s->fe = strdup(fe);
    if (!s->be || !s->fe) {
        xbd_dev_snap_free(s);
        return NULL;
    }
    s->job.run = snap_run;
    s->job.done = done;
    s->xb = xb;
    s->owner = owner;
    s->kind = kind;
    s->lim = *lim;
    s->want_fe = kind == XBD_SNAP_CONNECT;
    s->connected = kind == XBD_SNAP_CONNECTED;
    return s;
}

void xbd_dev_snap_free(struct xbd_dev_snap *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->n; i++) {
        free(s->kv[i].path);
        free(s->kv[i].value);
    }
    free(s->kv);
    free(s->be);
    free(s->fe);
    free(s);
}

static const struct xbd_snap_kv *lookup(const struct xbd_dev_snap *s, const char *dir,
                                        const char *key)
{
    size_t dl = strlen(dir);

    for (unsigned i = 0; i < s->n; i++) {
        const char *p = s->kv[i].path;
        if (!strncmp(p, dir, dl) && p[dl] == '/' && !strcmp(p + dl + 1, key))
            return &s->kv[i];
    }
    return NULL;
}

char *xbd_snap_read(const struct xbd_dev_snap *s, const char *dir, const char *key)
{
    const struct xbd_snap_kv *kv = lookup(s, dir, key);
    char *v;

    if (!kv) {
        /* The backend directory gone means nothing under it was read;
         * any other miss is a key the snapshot does not know of. */
        if (s->be_exists)
            xbd_err("xenstore snapshot of %s has no %s/%s: treated as absent", s->be, dir,
                    key);
        errno = ENOENT;
        return NULL;
    }
    if (!kv->value) {
        errno = ENOENT;
        return NULL;
    }
    v = strdup(kv->value);
    if (!v)
        errno = ENOMEM;
    return v;
}

int xbd_snap_read_uint(const struct xbd_dev_snap *s, const char *dir, const char *key,
                       unsigned long max, unsigned long *out)
{
    const struct xbd_snap_kv *kv = lookup(s, dir, key);

    /* Also used by the xenstore thread on what it just recorded: no
     * logging for a miss here. */
    if (!kv || !kv->value) {
        errno = ENOENT;
        return -1;
    }
    return xbd_parse_uint(kv->value, max, out);
}
