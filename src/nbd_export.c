/*
 * nbd_export.c - the listening socket of one disk's NBD export: where it
 * lives (the path rule in nbd_server.h), who may connect (root: mode 0600
 * in a 0700 directory), how many at once, and what each connection is
 * given (a duplicate of the backing fd and the disk's geometry).
 *
 * Why a small server on our own loop rather than nbdkit: the export must
 * be the very file the guest's rings use, opened once with the same
 * O_DIRECT and read-only rule, its I/O must share the disk's bounded
 * share of the AIO engine instead of competing with it from another
 * process, and its lifetime must follow the device's exactly; nbdkit
 * would be a second process (or its plugin API a second event loop and
 * thread pool inside ours) and a dependency larger than the few hundred
 * lines of newstyle handshake and simple replies a local client needs.
 *
 * A client cut off (it hung up, broke the protocol, or the disk closed)
 * with I/O still in the engine stays here, draining, until that I/O is
 * back: it still holds a duplicate of the backing fd and its buffers, so
 * it counts against XBD_NBD_MAX_CONNS, and the device waits for the drain
 * before it tells the toolstack the disk is released (closed, removed,
 * handed over), as it waits for its rings (xbd_nbd_export_close).
 *
 * Write ordering: a client that lost its connection (QEMU reconnecting)
 * sends again, on a new connection, the writes it got no reply for, and
 * goes on writing after them; the dead connection's write may still be
 * in the engine and land after them, undoing them.  The rule: while any
 * connection of the export drains, no request of any connection of the
 * export goes to the engine; they are read and held, in order, within
 * the connection's usual bounds, and submitted once the last drain ends
 * (xbd_nbd_conn_gate).  A client can only be held back by I/O the store
 * still owes, and a request it was told done can never be overtaken by
 * one it was not told about.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "xenblkd/log.h"

#include "budget.h"
#include "log_limit.h"
#include "nbd_conn.h"
#include "nbd_server.h"

struct xbd_nbd_export {
    struct ev_loop *loop;
    struct xbd_io_engine *io;
    const struct xbd_backing *b;
    struct xbd_log_bucket *logb;
    struct xbd_wb_state *wb;    /* the disk's; NULL with O_DIRECT */
    int lfd;
    ev_io accept_w;
    ev_timer retry_w;           /* accept again after EMFILE */
    struct xbd_nbd_conn *conns[XBD_NBD_MAX_CONNS];
    unsigned nconns;
    /* Cut off with I/O in flight; with conns, at most XBD_NBD_MAX_CONNS. */
    struct xbd_nbd_conn *draining[XBD_NBD_MAX_CONNS];
    unsigned ndraining;
    bool closed;                /* xbd_nbd_export_close: free after the drain */
    xbd_nbd_drained_fn *drained;
    void *drained_opaque;
    unsigned serial;            /* names connections in the log */
    bool told_full;
    char name[80];
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

int xbd_nbd_socket_path(char *buf, size_t n, const char *state_dir, const char *kind,
                        unsigned domid, unsigned devid)
{
    int len = snprintf(buf, n, "%s/" XBD_NBD_SUBDIR "/%s-%u-%u.sock", state_dir, kind,
                       domid, devid);

    if (len < 0 || (size_t)len >= n ||
        (size_t)len >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

const char *xbd_nbd_export_path(const struct xbd_nbd_export *e)
{
    return e->path;
}

static void take_out(struct xbd_nbd_conn **v, unsigned *n, struct xbd_nbd_conn *c)
{
    for (unsigned i = 0; i < *n; i++) {
        if (v[i] == c) {
            v[i] = v[--*n];
            return;
        }
    }
}

static void gate_all(struct xbd_nbd_export *e, bool gated)
{
    for (unsigned i = 0; i < e->nconns; i++)
        xbd_nbd_conn_gate(e->conns[i], gated);
}

static void conn_gone(void *opaque, struct xbd_nbd_conn *c, bool draining)
{
    struct xbd_nbd_export *e = opaque;

    take_out(e->conns, &e->nconns, c);
    if (!draining) {
        e->told_full = false;
        return;
    }
    e->draining[e->ndraining++] = c;
    if (e->ndraining == 1 && !e->closed)
        gate_all(e, true);
}

static void conn_drained(void *opaque, struct xbd_nbd_conn *c)
{
    struct xbd_nbd_export *e = opaque;

    take_out(e->draining, &e->ndraining, c);
    e->told_full = false;
    if (e->ndraining)
        return;
    if (!e->closed) {
        gate_all(e, false);
        return;
    }
    xbd_logb(e->logb, XBD_LOG_INFO, "%s: the I/O of the clients cut off is done", e->name);
    e->drained(e->drained_opaque);
    free(e);
}

static void geometry(const struct xbd_backing *b, struct xbd_nbd_geom *g)
{
    g->size = b->sectors * 512u;
    g->min_block = b->sector_size ? b->sector_size : 512u;
    g->readonly = b->readonly;
    g->flush = b->flush;
    g->trim = b->discard;
    g->is_blockdev = b->is_blockdev;
}

static void serve(struct xbd_nbd_export *e, int sock)
{
    struct xbd_nbd_geom g;
    char name[sizeof(e->name) + 16];
    unsigned long open_now, limit;
    int fd;

    /* Draining connections hold an fd and buffers as much as live ones. */
    if (e->nconns + e->ndraining >= XBD_NBD_MAX_CONNS) {
        char cut[64] = "";

        if (e->ndraining)
            snprintf(cut, sizeof(cut), " (%u of them cut off, their I/O in flight)",
                     e->ndraining);
        if (!e->told_full)
            xbd_logb(e->logb, XBD_LOG_WARN, "%s: %u clients already: refusing more%s", e->name,
                     e->nconns + e->ndraining, cut);
        e->told_full = true;
        close(sock);
        return;
    }
    /* Local clients never take the descriptors guests' rings need to
     * connect (budget.h, XBD_FD_RESERVE). */
    if (!xbd_fds_available(1, &open_now, &limit)) {
        xbd_logb(e->logb, XBD_LOG_WARN, "%s: %lu of %lu file descriptors open: refusing a "
                 "client", e->name, open_now, limit);
        close(sock);
        return;
    }
    /* Its own fd on the same open file: I/O in flight when the device
     * closes completes on it, never on a closed or reused number. */
    fd = fcntl(e->b->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        xbd_logb(e->logb, XBD_LOG_WARN, "%s: cannot duplicate the backing fd: %s", e->name,
                 strerror(errno));
        close(sock);
        return;
    }
    geometry(e->b, &g);
    snprintf(name, sizeof(name), "%s #%u", e->name, ++e->serial);
    struct xbd_nbd_conn *c = xbd_nbd_conn_new(e->loop, e->io, sock, fd, &g, e->b, name,
                                              e->logb, e->wb, e->ndraining > 0, conn_gone,
                                              conn_drained, e);
    if (c)
        e->conns[e->nconns++] = c;
    else
        xbd_logb(e->logb, XBD_LOG_WARN, "%s: out of memory for a client", e->name);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct xbd_nbd_export *e = w->data;

    for (unsigned i = 0; i < XBD_NBD_MAX_CONNS + 1; i++) {
        int s = accept4(e->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (s >= 0) {
            serve(e, s);
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* The pending client stays queued; do not spin on it. */
            xbd_warn("%s: accept: %s (trying again in 1 s)", e->name, strerror(errno));
            ev_io_stop(loop, &e->accept_w);
            ev_timer_start(loop, &e->retry_w);
        }
        return;
    }
}

static void retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct xbd_nbd_export *e = t->data;

    ev_io_start(loop, &e->accept_w);
}

/* <state-dir>/nbd, ours and private. */
static int make_dir(const char *state_dir, char *err, size_t n)
{
    char dir[512];
    struct stat st;

    snprintf(dir, sizeof(dir), "%s/" XBD_NBD_SUBDIR, state_dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, n, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
        snprintf(err, n, "%s is not a directory of ours", dir);
        return -1;
    }
    if ((st.st_mode & 0077) && chmod(dir, 0700) < 0) {
        snprintf(err, n, "cannot make %s private: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int listen_on(const char *path, char *err, size_t n)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    int fd;

    /* A socket left by an instance that did not stop cleanly. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, n, "%s exists and is not a socket", path);
            return -1;
        }
        unlink(path);
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, n, "socket: %s", strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
        listen(fd, (int)XBD_NBD_MAX_CONNS) < 0) {
        snprintf(err, n, "cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

struct xbd_nbd_export *xbd_nbd_export_open(struct ev_loop *loop, struct xbd_io_engine *io,
                                           const char *state_dir, const char *kind,
                                           unsigned domid, unsigned devid,
                                           const struct xbd_backing *b, const char *name,
                                           struct xbd_log_bucket *logb,
                                           struct xbd_wb_state *wb)
{
    struct xbd_nbd_export *e = calloc(1, sizeof(*e));
    char err[600];

    if (!e) {
        xbd_logb(logb, XBD_LOG_WARN, "%s: out of memory: no NBD export", name);
        return NULL;
    }
    snprintf(e->name, sizeof(e->name), "%s nbd", name);
    if (xbd_nbd_socket_path(e->path, sizeof(e->path), state_dir, kind, domid, devid) < 0) {
        xbd_logb(logb, XBD_LOG_WARN, "%s: socket path under %s is too long: no NBD export "
                 "(local attach unavailable)", name, state_dir);
        free(e);
        return NULL;
    }
    if (make_dir(state_dir, err, sizeof(err)) < 0 ||
        (e->lfd = listen_on(e->path, err, sizeof(err))) < 0) {
        xbd_logb(logb, XBD_LOG_WARN, "%s: %s: no NBD export (local attach unavailable)", name,
                 err);
        free(e);
        return NULL;
    }
    e->loop = loop;
    e->io = io;
    e->b = b;
    e->logb = logb;
    e->wb = b->direct ? NULL : wb;
    ev_io_init(&e->accept_w, accept_cb, e->lfd, EV_READ);
    e->accept_w.data = e;
    ev_timer_init(&e->retry_w, retry_cb, 1.0, 0.);
    e->retry_w.data = e;
    ev_io_start(loop, &e->accept_w);
    xbd_logb(e->logb, XBD_LOG_INFO, "%s: serving on %s", e->name, e->path);
    return e;
}

void xbd_nbd_export_resized(struct xbd_nbd_export *e)
{
    if (!e)
        return;
    for (unsigned i = 0; i < e->nconns; i++)
        xbd_nbd_conn_shrink(e->conns[i], e->b->sectors * 512u);
}

bool xbd_nbd_export_close(struct xbd_nbd_export *e, xbd_nbd_drained_fn *drained,
                          void *opaque)
{
    if (!e)
        return false;
    ev_io_stop(e->loop, &e->accept_w);
    ev_timer_stop(e->loop, &e->retry_w);
    close(e->lfd);
    unlink(e->path);
    e->closed = true;
    /* Each leaves conns (conn_gone), maybe for draining. */
    while (e->nconns)
        xbd_nbd_conn_shut(e->conns[e->nconns - 1]);
    if (!e->ndraining) {
        xbd_logb(e->logb, XBD_LOG_INFO, "%s: %s removed", e->name, e->path);
        free(e);
        return false;
    }
    xbd_logb(e->logb, XBD_LOG_INFO, "%s: %s removed; waiting for the I/O of %u client(s) "
             "cut off", e->name, e->path, e->ndraining);
    e->drained = drained;
    e->drained_opaque = opaque;
    return true;
}

void xbd_nbd_export_abandon(struct xbd_nbd_export *e)
{
    if (!e)
        return;
    xbd_logb(e->logb, XBD_LOG_WARN, "%s: exit with the I/O of %u client(s) cut off not "
             "reaped (nobody to answer)", e->name, e->ndraining);
    while (e->ndraining)
        xbd_nbd_conn_abandon(e->draining[--e->ndraining]);
    free(e);
}
