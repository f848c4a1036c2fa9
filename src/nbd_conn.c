/*
 * nbd_conn.c - one NBD client on the daemon's loop: its socket, its life,
 * and the transmission phase with simple replies (READ, WRITE with FUA,
 * FLUSH, TRIM, DISC); the handshake before it is in nbd_handshake.c.
 *
 * The client is local and root, but it is still a program we do not
 * control: every header is checked, what it can make us hold is bounded
 * (XBD_NBD_MAX_REQS requests, XBD_NBD_CONN_BYTES of buffers: past either
 * we stop reading its socket until replies have gone out), and anything
 * that breaks the framing ends the connection, never the daemon.  I/O goes
 * through the AIO engine on the connection's own duplicate of the backing
 * fd, so a connection that ends while I/O is in flight waits for it and
 * then frees itself, telling its export (which counts and waits for such
 * draining connections, nbd_export.c); no reply is ever sent for a write
 * that did not complete.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "xenblkd/log.h"

#include "io_aio.h"
#include "log_limit.h"
#include "nbd_conn_internal.h"

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define READS_PER_CB    64u     /* read() calls per wake-up: share the loop */

struct nbd_req {
    struct xbd_aio aio;
    struct xbd_nbd_conn *c;
    struct nbd_req *next;       /* reply queue, or the gated ones */
    struct nbd_req *io_next, **io_pprev;    /* c->io_head, while in the engine */
    uint8_t cookie[8];          /* echoed as received */
    uint64_t offset;
    uint32_t len;
    uint16_t type, flags;
    uint32_t error;             /* NBD_E*, 0 for success */
    bool fua_synced;
    void *buf;                  /* READ/WRITE data, sector aligned */
    size_t buflen;
    struct iovec iov;
    uint8_t rep[NBD_SIMPLE_REPLY_SIZE];
    size_t sent;                /* bytes of rep + payload written */
};

static void pump(struct xbd_nbd_conn *c);

/* ------------------------------------------------------------------ */
/* life and death                                                      */

static void req_free(struct xbd_nbd_conn *c, struct nbd_req *r)
{
    c->held--;
    c->held_bytes -= r->buflen;
    free(r->buf);
    free(r);
}

static void free_list(struct xbd_nbd_conn *c, struct nbd_req **head, struct nbd_req **tail)
{
    while (*head) {
        struct nbd_req *r = *head;
        *head = r->next;
        req_free(c, r);
    }
    *tail = NULL;
}

/* End the connection: the socket closes now, I/O still in the engine
 * completes later (maybe_free).  why NULL: an orderly end. */
void xbd_nbd_conn_kill(struct xbd_nbd_conn *c, const char *why)
{
    if (c->dead)
        return;
    if (why)
        xbd_logb(c->logb, XBD_LOG_WARN, "%s: %s: disconnecting the client", c->name, why);
    else
        xbd_debug("%s: client gone", c->name);
    if (c->in_io)
        xbd_logb(c->logb, XBD_LOG_INFO, "%s: %u request(s) of the client still in the "
                 "engine: waiting for them", c->name, c->in_io);
    c->dead = true;
    ev_io_stop(c->loop, &c->rw);
    ev_io_stop(c->loop, &c->ww);
    ev_timer_stop(c->loop, &c->hs_timer);
    close(c->sock);
    c->sock = -1;
    free_list(c, &c->rq_head, &c->rq_tail);
    /* Never submitted, never answered: as if never sent. */
    free_list(c, &c->wait_head, &c->wait_tail);
    if (c->cur) {
        req_free(c, c->cur);
        c->cur = NULL;
    }
    free(c->opt);
    c->opt = NULL;
    if (!c->in_io)
        c->drained = NULL;      /* freed on return to the entry point */
    c->gone(c->opaque, c, c->in_io != 0);
}

/* Every entry point ends here: free a dead connection once its I/O is
 * back from the engine, telling the export if it waited for that. */
static void maybe_free(struct xbd_nbd_conn *c)
{
    if (!c->dead || c->in_io)
        return;
    xbd_aio_queue_free(c->q);
    close(c->fd);
    if (c->drained)
        c->drained(c->opaque, c);
    free(c);
}

void xbd_nbd_conn_shut(struct xbd_nbd_conn *c)
{
    xbd_nbd_conn_kill(c, NULL);
    maybe_free(c);
}

void xbd_nbd_conn_abandon(struct xbd_nbd_conn *c)
{
    xbd_aio_queue_drop(c->q, false);
    while (c->io_head) {
        struct nbd_req *r = c->io_head;
        c->io_head = r->io_next;
        free(r->buf);
        free(r);
    }
    c->in_io = 0;
    xbd_aio_queue_free(c->q);
    close(c->fd);
    free(c);
}

/* ------------------------------------------------------------------ */
/* output                                                              */

static ssize_t send_iov(int sock, struct iovec *iov, int n)
{
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };

    /* MSG_NOSIGNAL: a client that went away is an EPIPE, not a signal. */
    return sendmsg(sock, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Send what can be sent: -1 when the connection died. */
static int flush_out(struct xbd_nbd_conn *c)
{
    while (c->ooff < c->olen) {
        struct iovec v = { c->obuf + c->ooff, c->olen - c->ooff };
        ssize_t n = send_iov(c->sock, &v, 1);
        if (n < 0)
            goto err;
        c->ooff += (size_t)n;
    }
    c->olen = c->ooff = 0;
    while (c->rq_head) {
        struct nbd_req *r = c->rq_head;
        bool payload = r->type == NBD_CMD_READ && !r->error;
        size_t total = sizeof(r->rep) + (payload ? r->len : 0);
        struct iovec v[2];
        int nv = 0;

        if (r->sent < sizeof(r->rep))
            v[nv++] = (struct iovec){ r->rep + r->sent, sizeof(r->rep) - r->sent };
        if (payload) {
            size_t off = r->sent > sizeof(r->rep) ? r->sent - sizeof(r->rep) : 0;
            v[nv++] = (struct iovec){ (char *)r->buf + off, r->len - off };
        }
        ssize_t n = send_iov(c->sock, v, nv);
        if (n < 0)
            goto err;
        r->sent += (size_t)n;
        if (r->sent < total)
            continue;
        c->rq_head = r->next;
        if (!c->rq_head)
            c->rq_tail = NULL;
        req_free(c, r);
    }
    return 0;
err:
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    xbd_nbd_conn_kill(c, errno == EPIPE || errno == ECONNRESET ? NULL : strerror(errno));
    return -1;
}

/* Append r to the list head..tail (linked by next). */
static void push(struct nbd_req **head, struct nbd_req **tail, struct nbd_req *r)
{
    r->next = NULL;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

static void reply(struct xbd_nbd_conn *c, struct nbd_req *r)
{
    put32(r->rep, NBD_SIMPLE_REPLY_MAGIC);
    put32(r->rep + 4, r->error);
    memcpy(r->rep + 8, r->cookie, 8);
    push(&c->rq_head, &c->rq_tail, r);
}

/* ------------------------------------------------------------------ */
/* transmission                                                        */

static uint32_t nbd_errno(long err)
{
    switch (err) {
    case EPERM:
    case EROFS:
        return NBD_EPERM;
    case ENOSPC:
    case EDQUOT:
        return NBD_ENOSPC;
    case ENOMEM:
        return NBD_ENOMEM;
    case EOPNOTSUPP:
        return NBD_ENOTSUP;
    case EINVAL:
        return NBD_EINVAL;
    default:
        return NBD_EIO;
    }
}

static void to_engine(struct xbd_nbd_conn *c, struct nbd_req *r)
{
    c->in_io++;
    r->io_next = c->io_head;
    r->io_pprev = &c->io_head;
    if (c->io_head)
        c->io_head->io_pprev = &r->io_next;
    c->io_head = r;
}

static void io_done(struct xbd_aio *a, long res)
{
    struct nbd_req *r = container_of(a, struct nbd_req, aio);
    struct xbd_nbd_conn *c = r->c;

    c->in_io--;
    *r->io_pprev = r->io_next;
    if (r->io_next)
        r->io_next->io_pprev = r->io_pprev;
    if (c->wb && (r->type == NBD_CMD_FLUSH || r->fua_synced)) {
        /* Even for a client gone: the error is reported to one sync of the
         * open file only, and the rings' is the same file. */
        if (res < 0)
            xbd_wb_set_lost(c->wb, c->name, (int)-res);
        else if (c->wb->lost || c->wb_lost)
            res = -EIO;         /* what reached the store is not known */
        /* The connection keeps it apart from the disk's, which a frontend
         * connecting clears (start_rings): this client's writes were
         * lost all the same. */
        c->wb_lost = c->wb_lost || c->wb->lost;
    }
    if (c->dead) {
        /* Nobody to answer; the write, if any, is done or failed. */
        free(r->buf);
        free(r);
        maybe_free(c);
        return;
    }
    if (res < 0) {
        r->error = nbd_errno(-res);
        xbd_debug("%s: I/O error %s at %llu", c->name, strerror((int)-res),
                  (unsigned long long)r->offset);
    } else if ((r->flags & NBD_CMD_FLAG_FUA) && !r->fua_synced && c->g.flush &&
               (r->type == NBD_CMD_WRITE || r->type == NBD_CMD_TRIM)) {
        /* Forced unit access: the reply waits until the data is stable. */
        r->fua_synced = true;
        to_engine(c, r);
        xbd_aio_fdsync(c->io, &r->aio, c->fd, io_done);
        return;
    }
    reply(c, r);
    pump(c);
    maybe_free(c);
}

static void submit(struct xbd_nbd_conn *c, struct nbd_req *r)
{
    if (c->gated) {
        push(&c->wait_head, &c->wait_tail, r);
        return;
    }
    to_engine(c, r);
    switch (r->type) {
    case NBD_CMD_READ:
        xbd_aio_readv(c->io, &r->aio, c->fd, &r->iov, 1, r->offset, io_done);
        break;
    case NBD_CMD_WRITE:
        xbd_aio_writev(c->io, &r->aio, c->fd, &r->iov, 1, r->offset, io_done);
        break;
    case NBD_CMD_FLUSH:
        xbd_aio_fdsync(c->io, &r->aio, c->fd, io_done);
        break;
    case NBD_CMD_TRIM:
        xbd_aio_discard(c->io, &r->aio, c->fd, c->g.is_blockdev, false, r->offset, r->len,
                        io_done);
        break;
    }
}

void xbd_nbd_conn_gate(struct xbd_nbd_conn *c, bool gated)
{
    c->gated = gated;
    while (!gated && c->wait_head) {
        struct nbd_req *r = c->wait_head;
        c->wait_head = r->next;
        if (!c->wait_head)
            c->wait_tail = NULL;
        submit(c, r);
    }
}

void xbd_nbd_conn_shrink(struct xbd_nbd_conn *c, uint64_t size)
{
    if (size < c->g.size)
        c->g.size = size;
}

/* 0 if the range is one the store can serve, else the NBD error. */
static uint32_t check_range(const struct xbd_nbd_conn *c, uint64_t off, uint32_t len)
{
    if (!len || off > c->g.size || len > c->g.size - off)
        return NBD_EINVAL;
    if (off % c->g.min_block || len % c->g.min_block)
        return NBD_EINVAL;
    return 0;
}

static uint32_t check_request(const struct xbd_nbd_conn *c, uint16_t type, uint16_t flags,
                              uint64_t off, uint32_t len)
{
    if (flags & ~(uint16_t)NBD_CMD_FLAG_FUA)
        return NBD_EINVAL;
    switch (type) {
    case NBD_CMD_READ:
        return len > XBD_NBD_MAX_PAYLOAD ? NBD_EOVERFLOW : check_range(c, off, len);
    case NBD_CMD_WRITE:
        if (c->g.readonly)
            return NBD_EPERM;
        return len > XBD_NBD_MAX_PAYLOAD ? NBD_EOVERFLOW : check_range(c, off, len);
    case NBD_CMD_FLUSH:
        return off || len ? NBD_EINVAL : 0;
    case NBD_CMD_TRIM:
        if (c->g.readonly)
            return NBD_EPERM;
        return c->g.trim ? check_range(c, off, len) : NBD_EINVAL;
    default:
        return NBD_EINVAL;
    }
}

static struct nbd_req *req_new(struct xbd_nbd_conn *c, size_t buflen)
{
    struct nbd_req *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    if (buflen && posix_memalign(&r->buf, c->g.min_block > PREFERRED_BLOCK ?
                                 c->g.min_block : PREFERRED_BLOCK, buflen)) {
        free(r);
        return NULL;
    }
    r->c = c;
    r->buflen = buflen;
    r->iov = (struct iovec){ r->buf, buflen };
    xbd_aio_bind(&r->aio, c->q);
    c->held++;
    c->held_bytes += buflen;
    return r;
}

static void next_header(struct xbd_nbd_conn *c)
{
    c->ph = PH_REQ_HDR;
    c->have = 0;
    c->need = NBD_REQUEST_SIZE;
}

/* A whole request header is in c->hdr. */
static void got_request(struct xbd_nbd_conn *c)
{
    uint16_t flags = get16(c->hdr + 4), type = get16(c->hdr + 6);
    uint64_t off = get64(c->hdr + 16);
    uint32_t len = get32(c->hdr + 24);
    uint32_t err;
    size_t buflen;
    struct nbd_req *r;

    if (get32(c->hdr) != NBD_REQUEST_MAGIC) {
        xbd_nbd_conn_kill(c, "bad request magic");
        return;
    }
    if (type == NBD_CMD_DISC) {
        c->closing = true;
        return;
    }
    err = check_request(c, type, flags, off, len);
    if (err && type == NBD_CMD_WRITE) {
        /* Its payload follows whatever we think of it. */
        if (len > NBD_MAX_TOLERATED_PAYLOAD) {
            xbd_nbd_conn_kill(c, "write payload too large");
            return;
        }
        c->skip_error = err;
        memcpy(c->skip_cookie, c->hdr + 8, 8);
        c->ph = PH_REQ_SKIP;
        c->have = 0;
        c->need = len;
        if (len)
            return;
        /* nothing to skip: fall through to reply at once */
    }
    buflen = !err && (type == NBD_CMD_READ || type == NBD_CMD_WRITE) ? len : 0;
    if (buflen && c->held && c->held_bytes + buflen > XBD_NBD_CONN_BYTES) {
        c->blocked = true;      /* pump retries when replies have gone */
        return;
    }
    c->blocked = false;
    r = req_new(c, buflen);
    if (!r) {
        xbd_nbd_conn_kill(c, "out of memory");
        return;
    }
    memcpy(r->cookie, c->hdr + 8, 8);
    r->type = type;
    r->flags = flags;
    r->offset = off;
    r->len = len;
    r->error = err;
    if (err) {
        reply(c, r);
        next_header(c);
    } else if (type == NBD_CMD_WRITE) {
        c->cur = r;
        c->ph = PH_REQ_DATA;
        c->have = 0;
        c->need = len;
    } else {
        submit(c, r);
        next_header(c);
    }
}

static void got_payload(struct xbd_nbd_conn *c)
{
    struct nbd_req *r = c->cur;

    c->cur = NULL;
    submit(c, r);
    next_header(c);
}

static void skipped_payload(struct xbd_nbd_conn *c)
{
    struct nbd_req *r = req_new(c, 0);

    if (!r) {
        xbd_nbd_conn_kill(c, "out of memory");
        return;
    }
    memcpy(r->cookie, c->skip_cookie, 8);
    r->type = NBD_CMD_WRITE;
    r->error = c->skip_error;
    reply(c, r);
    next_header(c);
}

/* ------------------------------------------------------------------ */
/* input                                                               */

static bool handshaking(const struct xbd_nbd_conn *c)
{
    return c->ph == PH_FLAGS || c->ph == PH_OPT_HDR || c->ph == PH_OPT_DATA;
}

/* Whether to read now: never past the bounds, never while handshake
 * replies wait (a client that does not read cannot make them pile up). */
static bool can_read(const struct xbd_nbd_conn *c)
{
    if (c->dead || c->closing || c->blocked)
        return false;
    if (handshaking(c))
        return c->olen == 0;
    if (c->ph == PH_REQ_HDR && c->have == 0)
        return c->held < XBD_NBD_MAX_REQS;
    return true;
}

/* Where the next bytes go, and how many at most. */
static uint8_t *read_target(struct xbd_nbd_conn *c, size_t *want)
{
    static uint8_t sink[65536];     /* refused payloads end here */

    *want = c->need - c->have;
    switch (c->ph) {
    case PH_OPT_DATA:
        return c->opt + c->have;
    case PH_REQ_DATA:
        return (uint8_t *)c->cur->buf + c->have;
    case PH_REQ_SKIP:
        if (*want > sizeof(sink))
            *want = sizeof(sink);
        return sink;
    default:
        return c->hdr + c->have;
    }
}

static void got_unit(struct xbd_nbd_conn *c)
{
    switch (c->ph) {
    case PH_FLAGS:      xbd_nbd_got_flags(c); break;
    case PH_OPT_HDR:    xbd_nbd_got_opt_hdr(c); break;
    case PH_OPT_DATA:   xbd_nbd_got_option(c); break;
    case PH_REQ_HDR:    got_request(c); break;
    case PH_REQ_DATA:   got_payload(c); break;
    case PH_REQ_SKIP:   skipped_payload(c); break;
    }
}

static void read_some(struct xbd_nbd_conn *c)
{
    for (unsigned i = 0; i < READS_PER_CB && can_read(c); i++) {
        size_t want;
        uint8_t *dst = read_target(c, &want);
        ssize_t n = recv(c->sock, dst, want, MSG_DONTWAIT);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                xbd_nbd_conn_kill(c, errno == ECONNRESET ? NULL : strerror(errno));
            return;
        }
        if (n == 0) {
            /* EOF: mid-handshake or mid-request it is simply gone, and
             * so is a client that hangs up with I/O in the engine (a
             * timeout, a reconnect): cut off, it drains and holds back
             * the disk's other clients (nbd_export.c), so a write it
             * resends on a new connection cannot be overtaken by the old
             * one.  Between requests with nothing in the engine, answer
             * what is left first. */
            if (handshaking(c) || c->have || c->ph != PH_REQ_HDR || c->in_io)
                xbd_nbd_conn_kill(c, NULL);
            else
                c->closing = true;
            return;
        }
        c->have += (size_t)n;
        if (c->have == c->need)
            got_unit(c);
    }
}

/* Move everything on: send, read what we may, arm the watchers, end an
 * orderly close.  Never frees c (maybe_free does, at the entry points). */
static void pump(struct xbd_nbd_conn *c)
{
    if (c->dead || flush_out(c) < 0)
        return;
    if (c->blocked && !c->dead) {
        got_request(c);         /* the parsed header waits in c->hdr */
        if (!c->dead && !c->blocked && flush_out(c) < 0)
            return;
    }
    if (c->dead)
        return;
    if (c->closing && !c->held && c->olen == 0 && !c->cur) {
        xbd_nbd_conn_kill(c, NULL);
        return;
    }
    if (can_read(c))
        ev_io_start(c->loop, &c->rw);
    else
        ev_io_stop(c->loop, &c->rw);
    if (c->olen > c->ooff || c->rq_head)
        ev_io_start(c->loop, &c->ww);
    else
        ev_io_stop(c->loop, &c->ww);
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct xbd_nbd_conn *c = w->data;

    read_some(c);
    pump(c);
    maybe_free(c);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct xbd_nbd_conn *c = w->data;

    pump(c);
    maybe_free(c);
}

static void hs_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct xbd_nbd_conn *c = t->data;

    xbd_nbd_conn_kill(c, "no complete handshake in time");
    maybe_free(c);
}

struct xbd_nbd_conn *xbd_nbd_conn_new(struct ev_loop *loop, struct xbd_io_engine *io,
                                      int sock, int fd, const struct xbd_nbd_geom *g,
                                      const void *group, const char *name,
                                      struct xbd_log_bucket *logb,
                                      struct xbd_wb_state *wb, bool gated,
                                      xbd_nbd_conn_gone_fn *gone,
                                      xbd_nbd_conn_drained_fn *drained, void *opaque)
{
    struct xbd_nbd_conn *c = calloc(1, sizeof(*c));

    if (!c || !(c->q = xbd_aio_queue_new(io, group, NULL))) {
        free(c);
        close(sock);
        close(fd);
        return NULL;
    }
    c->loop = loop;
    c->io = io;
    c->sock = sock;
    c->fd = fd;
    c->g = *g;
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->logb = logb;
    c->wb = wb;
    c->gated = gated;
    c->gone = gone;
    c->drained = drained;
    c->opaque = opaque;
    ev_io_init(&c->rw, read_cb, sock, EV_READ);
    ev_io_init(&c->ww, write_cb, sock, EV_WRITE);
    c->rw.data = c->ww.data = c;
    ev_timer_init(&c->hs_timer, hs_timeout_cb, XBD_NBD_HANDSHAKE_S, 0.);
    c->hs_timer.data = c;
    ev_timer_start(loop, &c->hs_timer);

    xbd_nbd_greet(c);
    c->ph = PH_FLAGS;
    c->need = 4;
    /* The greeting goes out from the loop: the caller gets a live
     * connection, and gone() never runs before it has one. */
    ev_io_start(loop, &c->ww);
    return c;
}
