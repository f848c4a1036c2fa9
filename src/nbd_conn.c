/*
 * nbd_conn.c - one NBD client: the fixed newstyle handshake (EXPORT_NAME,
 * INFO, GO, LIST, ABORT) and the transmission phase with simple replies
 * (READ, WRITE with FUA, FLUSH, TRIM, DISC), on the daemon's loop.
 *
 * The client is local and root, but it is still a program we do not
 * control: every header is checked, what it can make us hold is bounded
 * (XBD_NBD_MAX_REQS requests, XBD_NBD_CONN_BYTES of buffers: past either
 * we stop reading its socket until replies have gone out), and anything
 * that breaks the framing ends the connection, never the daemon.  I/O goes
 * through the AIO engine on the connection's own duplicate of the backing
 * fd, so a connection that ends while I/O is in flight just waits for it
 * privately and frees itself; no reply is ever sent for a write that did
 * not complete.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "xenblkd/log.h"

#include "io_aio.h"
#include "nbd_conn.h"
#include "nbd_proto.h"
#include "nbd_server.h"

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define OPT_MAX_LEN     8192u   /* a name (at most 4096) and info requests */
#define OPT_MAX_COUNT   64u     /* options before the transmission phase */
#define OBUF_MAX        1024u   /* handshake replies not yet sent */
#define READS_PER_CB    64u     /* read() calls per wake-up: share the loop */
#define PREFERRED_BLOCK 4096u

enum phase {
    PH_FLAGS,                   /* client flags, 4 bytes */
    PH_OPT_HDR,                 /* IHAVEOPT, option, length */
    PH_OPT_DATA,
    PH_REQ_HDR,                 /* 28-byte request */
    PH_REQ_DATA,                /* a write's payload */
    PH_REQ_SKIP,                /* the payload of a refused write */
};

struct nbd_req {
    struct xbd_aio aio;
    struct xbd_nbd_conn *c;
    struct nbd_req *next;       /* reply queue */
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

struct xbd_nbd_conn {
    struct ev_loop *loop;
    struct xbd_io_engine *io;
    struct xbd_aio_queue *q;
    int sock, fd;
    struct xbd_nbd_geom g;
    char name[96];
    xbd_nbd_conn_gone_fn *gone;
    void *opaque;
    ev_io rw, ww;
    ev_timer hs_timer;

    enum phase ph;
    bool no_zeroes;
    bool closing;               /* EOF, DISC or ABORT: finish replies, end */
    bool dead;                  /* socket closed: wait for I/O, then free */
    bool blocked;               /* a parsed request waits for buffer space */
    uint8_t hdr[NBD_REQUEST_SIZE];
    size_t have, need;
    uint8_t *opt;
    uint32_t opt_type, opt_len;
    unsigned nopts;
    uint8_t obuf[OBUF_MAX];
    size_t olen, ooff;
    struct nbd_req *cur;        /* write whose payload is being read */
    uint32_t skip;              /* payload bytes to discard */
    uint32_t skip_error;        /* ... then reply with this error */
    uint8_t skip_cookie[8];
    struct nbd_req *rq_head, *rq_tail;
    unsigned held;              /* requests allocated, until replied */
    size_t held_bytes;          /* their buffers */
    unsigned in_io;             /* of those, in the engine */
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

/* End the connection: the socket closes now, I/O still in the engine
 * completes later (maybe_free).  why NULL: an orderly end. */
static void conn_kill(struct xbd_nbd_conn *c, const char *why)
{
    if (c->dead)
        return;
    if (why)
        xbd_warn("%s: %s: disconnecting the client", c->name, why);
    else
        xbd_debug("%s: client gone", c->name);
    c->dead = true;
    ev_io_stop(c->loop, &c->rw);
    ev_io_stop(c->loop, &c->ww);
    ev_timer_stop(c->loop, &c->hs_timer);
    close(c->sock);
    c->sock = -1;
    while (c->rq_head) {
        struct nbd_req *r = c->rq_head;
        c->rq_head = r->next;
        req_free(c, r);
    }
    c->rq_tail = NULL;
    if (c->cur) {
        req_free(c, c->cur);
        c->cur = NULL;
    }
    free(c->opt);
    c->opt = NULL;
    if (c->gone) {
        xbd_nbd_conn_gone_fn *gone = c->gone;
        c->gone = NULL;
        gone(c->opaque, c);
    }
}

/* Every entry point ends here: free a dead connection once its I/O is
 * back from the engine. */
static void maybe_free(struct xbd_nbd_conn *c)
{
    if (!c->dead || c->in_io)
        return;
    xbd_aio_queue_free(c->q);
    close(c->fd);
    free(c);
}

void xbd_nbd_conn_shut(struct xbd_nbd_conn *c)
{
    c->gone = NULL;
    conn_kill(c, NULL);
    maybe_free(c);
}

/* ------------------------------------------------------------------ */
/* output                                                              */

static void put16(uint8_t *p, uint16_t v) { v = htobe16(v); memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return be16toh(v); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }

/* Queue handshake bytes.  Replies are small and we read no further option
 * while any are unsent, so the buffer cannot fill up. */
static void out_bytes(struct xbd_nbd_conn *c, const void *p, size_t n)
{
    if (c->olen + n > sizeof(c->obuf)) {
        conn_kill(c, "handshake reply too large");
        return;
    }
    memcpy(c->obuf + c->olen, p, n);
    c->olen += n;
}

static void opt_reply(struct xbd_nbd_conn *c, uint32_t type, const void *data, uint32_t len)
{
    uint8_t h[20];

    put64(h, NBD_OPT_REPLY_MAGIC);
    put32(h + 8, c->opt_type);
    put32(h + 12, type);
    put32(h + 16, len);
    out_bytes(c, h, sizeof(h));
    if (len)
        out_bytes(c, data, len);
}

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
    conn_kill(c, errno == EPIPE || errno == ECONNRESET ? NULL : strerror(errno));
    return -1;
}

static void reply(struct xbd_nbd_conn *c, struct nbd_req *r)
{
    put32(r->rep, NBD_SIMPLE_REPLY_MAGIC);
    put32(r->rep + 4, r->error);
    memcpy(r->rep + 8, r->cookie, 8);
    r->next = NULL;
    if (c->rq_tail)
        c->rq_tail->next = r;
    else
        c->rq_head = r;
    c->rq_tail = r;
}

/* ------------------------------------------------------------------ */
/* handshake                                                           */

static uint16_t transmission_flags(const struct xbd_nbd_conn *c)
{
    uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA;

    if (c->g.readonly)
        f |= NBD_FLAG_READ_ONLY;
    else if (c->g.trim)
        f |= NBD_FLAG_SEND_TRIM;
    return f;
}

static void enter_transmission(struct xbd_nbd_conn *c, const char *how)
{
    ev_timer_stop(c->loop, &c->hs_timer);
    c->ph = PH_REQ_HDR;
    c->have = 0;
    c->need = NBD_REQUEST_SIZE;
    xbd_info("%s: client connected (%s), %llu bytes, %s", c->name, how,
             (unsigned long long)c->g.size, c->g.readonly ? "read-only" : "read-write");
}

/* The old way in: size and flags, no error possible, no block sizes
 * agreed (unaligned requests then get EINVAL, as proto.md allows). */
static void opt_export_name(struct xbd_nbd_conn *c)
{
    uint8_t b[10 + 124];
    size_t n = c->no_zeroes ? 10 : sizeof(b);

    memset(b, 0, sizeof(b));
    put64(b, c->g.size);
    put16(b + 8, transmission_flags(c));
    out_bytes(c, b, n);
    if (!c->dead)
        enter_transmission(c, "EXPORT_NAME");
}

/* INFO and GO: any export name is this disk (one export per socket;
 * libxl's URI names none). */
static void opt_info_go(struct xbd_nbd_conn *c)
{
    uint8_t info[14];
    uint32_t namelen;

    if (c->opt_len < 6 || (namelen = get32(c->opt)) > c->opt_len - 6 ||
        c->opt_len != 6 + namelen + 2u * get16(c->opt + 4 + namelen)) {
        opt_reply(c, NBD_REP_ERR_INVALID, NULL, 0);
        return;
    }
    put16(info, NBD_INFO_EXPORT);
    put64(info + 2, c->g.size);
    put16(info + 10, transmission_flags(c));
    opt_reply(c, NBD_REP_INFO, info, 12);
    /* Always sent: O_DIRECT needs aligned I/O whether asked or not. */
    put16(info, NBD_INFO_BLOCK_SIZE);
    put32(info + 2, c->g.min_block);
    put32(info + 6, c->g.min_block > PREFERRED_BLOCK ? c->g.min_block : PREFERRED_BLOCK);
    put32(info + 10, XBD_NBD_MAX_PAYLOAD);
    opt_reply(c, NBD_REP_INFO, info, 14);
    opt_reply(c, NBD_REP_ACK, NULL, 0);
    if (c->opt_type == NBD_OPT_GO && !c->dead)
        enter_transmission(c, "GO");
}

static void handle_option(struct xbd_nbd_conn *c)
{
    uint8_t empty[4] = { 0 };

    switch (c->opt_type) {
    case NBD_OPT_EXPORT_NAME:
        opt_export_name(c);
        break;
    case NBD_OPT_INFO:
    case NBD_OPT_GO:
        opt_info_go(c);
        break;
    case NBD_OPT_LIST:
        if (c->opt_len) {
            opt_reply(c, NBD_REP_ERR_INVALID, NULL, 0);
            break;
        }
        opt_reply(c, NBD_REP_SERVER, empty, sizeof(empty));     /* the name "" */
        opt_reply(c, NBD_REP_ACK, NULL, 0);
        break;
    case NBD_OPT_ABORT:
        opt_reply(c, NBD_REP_ACK, NULL, 0);
        c->closing = true;
        break;
    default:
        /* STARTTLS, structured replies, meta contexts...: plain
         * transmission only; clients fall back. */
        opt_reply(c, NBD_REP_ERR_UNSUP, NULL, 0);
        break;
    }
    free(c->opt);
    c->opt = NULL;
    if (c->ph == PH_OPT_DATA || c->ph == PH_OPT_HDR) {
        c->ph = PH_OPT_HDR;
        c->have = 0;
        c->need = 16;
    }
}

static void got_flags(struct xbd_nbd_conn *c)
{
    uint32_t f = get32(c->hdr);

    if (f & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
        conn_kill(c, "unknown client flags");
        return;
    }
    if (!(f & NBD_FLAG_C_FIXED_NEWSTYLE)) {
        conn_kill(c, "client does not speak the fixed newstyle handshake");
        return;
    }
    c->no_zeroes = f & NBD_FLAG_C_NO_ZEROES;
    c->ph = PH_OPT_HDR;
    c->have = 0;
    c->need = 16;
}

static void got_opt_hdr(struct xbd_nbd_conn *c)
{
    if (get64(c->hdr) != NBD_IHAVEOPT) {
        conn_kill(c, "bad option magic");
        return;
    }
    if (++c->nopts > OPT_MAX_COUNT) {
        conn_kill(c, "too many options");
        return;
    }
    c->opt_type = get32(c->hdr + 8);
    c->opt_len = get32(c->hdr + 12);
    if (c->opt_len > OPT_MAX_LEN) {
        conn_kill(c, "option too long");
        return;
    }
    if (!c->opt_len) {
        handle_option(c);
        return;
    }
    c->opt = malloc(c->opt_len);
    if (!c->opt) {
        conn_kill(c, "out of memory");
        return;
    }
    c->ph = PH_OPT_DATA;
    c->have = 0;
    c->need = c->opt_len;
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

static void io_done(struct xbd_aio *a, long res)
{
    struct nbd_req *r = container_of(a, struct nbd_req, aio);
    struct xbd_nbd_conn *c = r->c;

    c->in_io--;
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
        c->in_io++;
        xbd_aio_fdsync(c->io, &r->aio, c->fd, io_done);
        return;
    }
    reply(c, r);
    pump(c);
    maybe_free(c);
}

static void submit(struct xbd_nbd_conn *c, struct nbd_req *r)
{
    c->in_io++;
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
        conn_kill(c, "bad request magic");
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
            conn_kill(c, "write payload too large");
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
        conn_kill(c, "out of memory");
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
        conn_kill(c, "out of memory");
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
    case PH_FLAGS:      got_flags(c); break;
    case PH_OPT_HDR:    got_opt_hdr(c); break;
    case PH_OPT_DATA:   handle_option(c); break;
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
                conn_kill(c, errno == ECONNRESET ? NULL : strerror(errno));
            return;
        }
        if (n == 0) {
            /* EOF: mid-handshake or mid-request it is simply gone;
             * between requests, answer what is in flight first. */
            if (handshaking(c) || c->have || c->ph != PH_REQ_HDR)
                conn_kill(c, NULL);
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
        conn_kill(c, NULL);
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

    conn_kill(c, "no complete handshake in time");
    maybe_free(c);
}

struct xbd_nbd_conn *xbd_nbd_conn_new(struct ev_loop *loop, struct xbd_io_engine *io,
                                      int sock, int fd, const struct xbd_nbd_geom *g,
                                      const void *group, const char *name,
                                      xbd_nbd_conn_gone_fn *gone, void *opaque)
{
    struct xbd_nbd_conn *c = calloc(1, sizeof(*c));
    uint8_t greet[18];

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
    c->gone = gone;
    c->opaque = opaque;
    ev_io_init(&c->rw, read_cb, sock, EV_READ);
    ev_io_init(&c->ww, write_cb, sock, EV_WRITE);
    c->rw.data = c->ww.data = c;
    ev_timer_init(&c->hs_timer, hs_timeout_cb, XBD_NBD_HANDSHAKE_S, 0.);
    c->hs_timer.data = c;
    ev_timer_start(loop, &c->hs_timer);

    put64(greet, NBD_MAGIC);
    put64(greet + 8, NBD_IHAVEOPT);
    put16(greet + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    memcpy(c->obuf, greet, sizeof(greet));
    c->olen = sizeof(greet);
    c->ph = PH_FLAGS;
    c->need = 4;
    pump(c);
    return c;
}
