/*
 * xenbus.c - one xenstore connection, its watches and their dispatch.
 *
 * libxenstore queues watch events in its own reader thread and signals
 * them through xs_fileno(); we drain that queue from an ev_io in the main
 * loop, a bounded number per wake-up so that a guest that makes xenstore
 * fire in a loop cannot starve the rings sharing the loop.  Popping an
 * event is no round trip.  Every round trip of a running daemon (watch,
 * unwatch, writes, the liveness ping, and the reads callers submit as
 * jobs) runs on the xenstore thread (xs_worker.c), never on the loop.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "xenblkd/log.h"
#include "xenblkd/xenbus.h"
#include "xs_worker.h"

/* Watch events handled per wake-up before yielding to other watchers. */
#define XBD_WATCH_BATCH 64
/* Seconds the exit waits for the xenstore thread's last updates. */
#define XBD_XS_STOP_TIMEOUT 5.0
/* Transaction retries on EAGAIN (someone else wrote the same nodes). */
#define XBD_XS_TXN_RETRIES 16

struct xbd_watch {
    struct xbd_watch *next;
    uint64_t id;
    char token[24];
    char *path;
    xbd_watch_fn *fn;
    void *opaque;
};

struct xbd_xenbus {
    struct ev_loop *loop;
    struct xs_handle *xs;
    ev_io io;
    struct xbd_xs_worker *worker;
    struct xbd_watch *watches;
    uint64_t next_id;
    uint64_t watches_set;       /* xbd_watch_add calls (not barriers) */
};

static void connection_lost(struct xbd_xenbus *xb, int err);

static const char *const state_names[] = {
    "Unknown", "Initialising", "InitWait", "Initialised", "Connected",
    "Closing", "Closed", "Reconfiguring", "Reconfigured",
};

const char *xbd_xenbus_state_name(int state)
{
    if (state < 0 || (unsigned)state >= sizeof(state_names) / sizeof(state_names[0]))
        return "invalid";
    return state_names[state];
}

static struct xbd_watch *watch_find(struct xbd_xenbus *xb, const char *token)
{
    for (struct xbd_watch *w = xb->watches; w; w = w->next)
        if (!strcmp(w->token, token))
            return w;
    return NULL;
}

static void xenbus_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct xbd_xenbus *xb = (struct xbd_xenbus *)((char *)io - offsetof(struct xbd_xenbus, io));

    for (int i = 0; i < XBD_WATCH_BATCH; i++) {
        char **vec = xs_check_watch(xb->xs);

        if (!vec) {
            if (errno != EAGAIN)
                connection_lost(xb, errno);
            return;
        }
        /* Look the token up on every event: the watch may have been
         * removed by the callback of an earlier event in this batch. */
        struct xbd_watch *w = watch_find(xb, vec[XS_WATCH_TOKEN]);
        if (w)
            w->fn(w->opaque, vec[XS_WATCH_PATH]);
        free(vec);
    }
}

static void connection_lost(struct xbd_xenbus *xb, int err)
{
    /* Nothing in this daemon can work without xenstore, and xenstored
     * cannot come back under a running domain: give up loudly. */
    xbd_err("xenstore connection lost: %s", strerror(err));
    ev_io_stop(xb->loop, &xb->io);
    ev_break(xb->loop, EVBREAK_ALL);
}

static void worker_lost_cb(void *opaque, int err)
{
    connection_lost(opaque, err);
}

/* libxenstore's reader thread closes the socket when xenstored goes away
 * but says nothing through the watch fd: the xenstore thread asks
 * something when it was idle for a while.  0, or the errno that says the
 * connection is gone. */
static int ping(void *ctx)
{
    struct xbd_xenbus *xb = ctx;
    unsigned len;
    char *v = xs_read(xb->xs, XBT_NULL, "/local", &len);

    if (v) {
        free(v);
        return 0;
    }
    switch (errno) {
    case ENOENT:
    case EACCES:
    case EPERM:
    case EINVAL:
    case EAGAIN:
    case E2BIG:
    case ENOSPC:
    case EDQUOT:
        return 0;   /* xenstored answered */
    default:
        return errno ? errno : EIO;
    }
}

struct xbd_xenbus *xbd_xenbus_open(struct ev_loop *loop)
{
    struct xbd_xenbus *xb = calloc(1, sizeof(*xb));

    if (!xb) {
        xbd_err("out of memory");
        return NULL;
    }
    xb->loop = loop;
    /* No XS_UNWATCH_FILTER: libxenstore (4.17) frees only the header of
     * each queued event it drops on xs_unwatch, leaking its body.  It is
     * not needed either: tokens are never reused, and an event whose
     * token is no longer registered is ignored (watch_find). */
    xb->xs = xs_open(0);
    if (!xb->xs) {
        const char *p = getenv("XENSTORED_PATH");
        xbd_err("cannot connect to xenstored%s%s: %s", p ? " at " : "", p ? p : "",
                strerror(errno));
        free(xb);
        return NULL;
    }
    int fd = xs_fileno(xb->xs);
    if (fd < 0) {
        xbd_err("cannot get the xenstore watch fd: %s", strerror(errno));
        xs_close(xb->xs);
        free(xb);
        return NULL;
    }
    xb->worker = xbd_xs_worker_start(loop, xb, ping, worker_lost_cb, xb);
    if (!xb->worker) {
        xs_close(xb->xs);
        free(xb);
        return NULL;
    }
    ev_io_init(&xb->io, xenbus_io_cb, fd, EV_READ);
    ev_io_start(loop, &xb->io);
    return xb;
}

static void watch_free(struct xbd_watch *w)
{
    free(w->path);
    free(w);
}

void xbd_xenbus_close(struct xbd_xenbus *xb)
{
    if (!xb)
        return;
    ev_io_stop(xb->loop, &xb->io);
    /* xs_close drops our watches with the connection. */
    while (xb->watches) {
        struct xbd_watch *w = xb->watches;
        xb->watches = w->next;
        watch_free(w);
    }
    /* The thread first: the last updates (a close's Closed states) go
     * out, unless xenstored does not answer, and then the connection
     * stays open under the thread left behind until the process exits,
     * and so does xb: the stuck job reads xb->xs for each round trip it
     * has left (xbd_xs_read and the others), should xenstored answer. */
    if (!xbd_xs_worker_stop(xb->worker, XBD_XS_STOP_TIMEOUT))
        return;
    xs_close(xb->xs);
    free(xb);
}

void xbd_xenbus_submit(struct xbd_xenbus *xb, struct xbd_xs_job *job)
{
    xbd_xs_worker_submit(xb->worker, job);
}

unsigned xbd_xenbus_pending(const struct xbd_xenbus *xb)
{
    return xbd_xs_worker_pending(xb->worker);
}

struct xs_handle *xbd_xenbus_handle(struct xbd_xenbus *xb)
{
    return xb->xs;
}

int xbd_xenbus_own_domid(struct xbd_xenbus *xb, unsigned *domid)
{
    unsigned long v;

    /* A relative path resolves against our own domain's home. */
    if (xbd_xs_read_uint(xb, XBT_NULL, "domid", 0x7fef, &v) < 0)
        return -1;
    *domid = (unsigned)v;
    return 0;
}

/* xs_watch / xs_unwatch on the xenstore thread. */
struct watch_job {
    struct xbd_xs_job job;
    struct xbd_xenbus *xb;
    bool add;
    int err;
    char token[24];
    char path[];
};

static void watch_run(struct xbd_xs_job *job, void *ctx)
{
    struct watch_job *j = (struct watch_job *)job;
    bool ok = j->add ? xs_watch(j->xb->xs, j->path, j->token)
                     : xs_unwatch(j->xb->xs, j->path, j->token);

    j->err = ok ? 0 : errno;
}

static void watch_done(struct xbd_xs_job *job)
{
    struct watch_job *j = (struct watch_job *)job;

    /* An unwatch's ENOENT is fine: xenstored drops watches of a path's
     * owner domain when it goes away. */
    if (j->job.ran && j->add && j->err)
        xbd_err("cannot watch %s: %s", j->path, strerror(j->err));
    free(j);
}

static int watch_submit(struct xbd_xenbus *xb, const struct xbd_watch *w, bool add)
{
    size_t len = strlen(w->path) + 1;
    struct watch_job *j = calloc(1, sizeof(*j) + len);

    if (!j)
        return -1;
    j->job.run = watch_run;
    j->job.done = watch_done;
    j->xb = xb;
    j->add = add;
    memcpy(j->token, w->token, sizeof(j->token));
    memcpy(j->path, w->path, len);
    xbd_xenbus_submit(xb, &j->job);
    return 0;
}

static struct xbd_watch *watch_new(struct xbd_xenbus *xb, const char *path, const char *prefix,
                                   xbd_watch_fn *fn, void *opaque)
{
    struct xbd_watch *w = calloc(1, sizeof(*w));

    if (!w || !(w->path = strdup(path))) {
        free(w);
        xbd_err("out of memory");
        return NULL;
    }
    w->id = ++xb->next_id;
    snprintf(w->token, sizeof(w->token), "%s%" PRIu64, prefix, w->id);
    w->fn = fn;
    w->opaque = opaque;
    /* Registered here at once, so the first event (xenstored sends one
     * when the watch is set) finds its owner; set by the xenstore
     * thread, a failure is only logged. */
    if (watch_submit(xb, w, true) < 0) {
        xbd_err("out of memory");
        watch_free(w);
        return NULL;
    }
    w->next = xb->watches;
    xb->watches = w;
    return w;
}

struct xbd_watch *xbd_watch_add(struct xbd_xenbus *xb, const char *path,
                                xbd_watch_fn *fn, void *opaque)
{
    struct xbd_watch *w = watch_new(xb, path, "xbd", fn, opaque);

    if (w)
        xb->watches_set++;
    return w;
}

/* xenstored answers XS_WATCH and then queues the watch's first event on
 * the connection (tools/xenstored/watch.c, do_watch: send_ack, then
 * send_event), behind every event it queued for us before; libxenstore's
 * reader thread keeps them in that order, and xenbus_io_cb pops them in
 * order.  Nothing ever writes the watched node: the first event is the
 * only one, and a relative path keeps it inside our own domain's home. */
struct xbd_watch *xbd_xenbus_barrier(struct xbd_xenbus *xb, xbd_watch_fn *fn, void *opaque)
{
    return watch_new(xb, "xenblkd-barrier", "xbdsync", fn, opaque);
}

uint64_t xbd_xenbus_watches_set(const struct xbd_xenbus *xb)
{
    return xb->watches_set;
}

void xbd_watch_remove(struct xbd_xenbus *xb, struct xbd_watch *w)
{
    if (!w)
        return;
    for (struct xbd_watch **pp = &xb->watches; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    /* No callback after this: the token is never registered again, and
     * an event still queued for it is dropped (watch_find).  Without
     * memory for the job the watch stays set in xenstored, harmlessly. */
    watch_submit(xb, w, false);
    watch_free(w);
}

char *xbd_xs_read(struct xbd_xenbus *xb, xs_transaction_t t, const char *path)
{
    unsigned len;
    char *v = xs_read(xb->xs, t, path, &len);

    /* libxenstore NUL-terminates the value, but it may contain NULs of its
     * own: cut there so every caller sees one C string. */
    if (v)
        v[strnlen(v, len)] = '\0';
    return v;
}

/* xbd_parse_uint, xbd_parse_linux_flag: src/xenstore_parse.c, with the
 * other parsers of values a guest writes. */

int xbd_xs_read_uint(struct xbd_xenbus *xb, xs_transaction_t t, const char *path,
                     unsigned long max, unsigned long *out)
{
    char *v = xbd_xs_read(xb, t, path);
    int rc;

    if (!v)
        return -1;
    rc = xbd_parse_uint(v, max, out);
    free(v);
    return rc;
}

int xbd_xs_exists(struct xbd_xenbus *xb, xs_transaction_t t, const char *path)
{
    char *v;

    errno = 0;                  /* no stale ENOENT taken for "absent" */
    v = xbd_xs_read(xb, t, path);

    if (v) {
        free(v);
        return 1;
    }
    if (errno == ENOENT)
        return 0;
    if (!errno)
        errno = EIO;
    return -1;
}

int xbd_xs_write(struct xbd_xenbus *xb, xs_transaction_t t, const char *path,
                 const char *value)
{
    return xs_write(xb->xs, t, path, value, (unsigned)strlen(value)) ? 0 : -1;
}

char **xbd_xs_directory(struct xbd_xenbus *xb, xs_transaction_t t, const char *path,
                        unsigned *num)
{
    return xs_directory(xb->xs, t, path, num);
}

static int write_keys_once(struct xbd_xenbus *xb, const char *dir,
                           const struct xbd_kv *kv, size_t n)
{
    char path[XBD_XS_PATH_MAX];
    xs_transaction_t t = xs_transaction_start(xb->xs);

    if (t == XBT_NULL)
        return -1;
    int exists = xbd_xs_exists(xb, t, dir);

    if (exists <= 0) {
        /* Gone (ENOENT), or the read failed: say which (EAGAIN retries). */
        int e = exists ? errno : ENOENT;
        xs_transaction_end(xb->xs, t, true);
        errno = e;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, kv[i].key);
        if (xbd_xs_write(xb, t, path, kv[i].value) < 0) {
            int e = errno;
            xs_transaction_end(xb->xs, t, true);
            errno = e;
            return -1;
        }
    }
    return xs_transaction_end(xb->xs, t, false) ? 0 : -1;
}

int xbd_xs_write_keys(struct xbd_xenbus *xb, const char *dir,
                      const struct xbd_kv *kv, size_t n)
{
    for (int i = 0; i < XBD_XS_TXN_RETRIES; i++) {
        if (write_keys_once(xb, dir, kv, n) == 0)
            return 0;
        if (errno != EAGAIN)
            return -1;
    }
    return -1;
}

/* xbd_xs_write_keys on the xenstore thread. */
struct keys_job {
    struct xbd_xs_job job;
    struct xbd_xenbus *xb;
    xbd_xs_write_done_fn *done;
    void *opaque;
    int err;
    size_t n;
    char *dir;
    struct xbd_kv kv[];
};

static void keys_run(struct xbd_xs_job *job, void *ctx)
{
    struct keys_job *j = (struct keys_job *)job;

    j->err = xbd_xs_write_keys(j->xb, j->dir, j->kv, j->n) == 0 ? 0 : errno ? errno : EIO;
}

static void keys_done(struct xbd_xs_job *job)
{
    struct keys_job *j = (struct keys_job *)job;

    if (j->done)
        j->done(j->opaque, j->job.ran ? j->err : ECANCELED);
    free(j);
}

int xbd_xs_write_keys_async(struct xbd_xenbus *xb, const char *dir, const struct xbd_kv *kv,
                            size_t n, xbd_xs_write_done_fn *done, void *opaque)
{
    /* One block: the job, the pairs, then every string they point to. */
    size_t len = sizeof(struct keys_job) + n * sizeof(struct xbd_kv) + strlen(dir) + 1;

    for (size_t i = 0; i < n; i++)
        len += strlen(kv[i].key) + strlen(kv[i].value) + 2;
    struct keys_job *j = calloc(1, len);
    if (!j) {
        errno = ENOMEM;
        return -1;
    }
    char *p = (char *)&j->kv[n];
    j->job.run = keys_run;
    j->job.done = keys_done;
    j->job.at_exit = true;      /* a close's last states must go out */
    j->xb = xb;
    j->done = done;
    j->opaque = opaque;
    j->n = n;
    j->dir = strcpy(p, dir);
    p += strlen(dir) + 1;
    for (size_t i = 0; i < n; i++) {
        j->kv[i].key = strcpy(p, kv[i].key);
        p += strlen(kv[i].key) + 1;
        j->kv[i].value = strcpy(p, kv[i].value);
        p += strlen(kv[i].value) + 1;
    }
    xbd_xenbus_submit(xb, &j->job);
    return 0;
}

bool xbd_kind_known(const char *kind)
{
    return !strcmp(kind, "vbd3") || !strcmp(kind, "qdisk") || !strcmp(kind, "vbd");
}

bool xbd_kind_claimable(const char *kind)
{
    struct stat st;

    if (strcmp(kind, "vbd"))
        return true;
    /* "vbd" belongs to the kernel's blkback when it is loaded: two
     * backends answering the same device would corrupt its state. */
    if (stat("/sys/module/xen_blkback", &st) == 0) {
        xbd_warn("not serving backend kind vbd: the kernel's xen-blkback is loaded "
                 "(/sys/module/xen_blkback exists)");
        return false;
    }
    xbd_info("serving backend kind vbd: the kernel's xen-blkback is not loaded");
    return true;
}
