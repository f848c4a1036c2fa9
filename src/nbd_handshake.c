/*
 * nbd_handshake.c - the fixed newstyle handshake of an NBD connection:
 * greeting, client flags, then options (EXPORT_NAME, INFO, GO, LIST,
 * ABORT; anything else is unsupported and the client falls back) until
 * EXPORT_NAME or GO enters the transmission phase (src/nbd_conn.c).
 *
 * The socket has one export, the disk: any name is accepted (libxl's URI
 * names none).  Replies are queued in the connection's small output
 * buffer, and no further option is read while any are unsent.
 */
#include "config.h"

#include <stdlib.h>

#include "xenblkd/log.h"

#include "log_limit.h"
#include "nbd_conn_internal.h"

/* Queue handshake bytes.  Replies are small and we read no further option
 * while any are unsent, so the buffer cannot fill up. */
static void out_bytes(struct xbd_nbd_conn *c, const void *p, size_t n)
{
    if (c->olen + n > sizeof(c->obuf)) {
        xbd_nbd_conn_kill(c, "handshake reply too large");
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
    xbd_logb(c->logb, XBD_LOG_INFO, "%s: client connected (%s), %llu bytes, %s", c->name,
             how, (unsigned long long)c->g.size, c->g.readonly ? "read-only" : "read-write");
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

void xbd_nbd_got_option(struct xbd_nbd_conn *c)
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

void xbd_nbd_got_flags(struct xbd_nbd_conn *c)
{
    uint32_t f = get32(c->hdr);

    if (f & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
        xbd_nbd_conn_kill(c, "unknown client flags");
        return;
    }
    if (!(f & NBD_FLAG_C_FIXED_NEWSTYLE)) {
        xbd_nbd_conn_kill(c, "client does not speak the fixed newstyle handshake");
        return;
    }
    c->no_zeroes = f & NBD_FLAG_C_NO_ZEROES;
    c->ph = PH_OPT_HDR;
    c->have = 0;
    c->need = 16;
}

void xbd_nbd_got_opt_hdr(struct xbd_nbd_conn *c)
{
    if (get64(c->hdr) != NBD_IHAVEOPT) {
        xbd_nbd_conn_kill(c, "bad option magic");
        return;
    }
    if (++c->nopts > OPT_MAX_COUNT) {
        xbd_nbd_conn_kill(c, "too many options");
        return;
    }
    c->opt_type = get32(c->hdr + 8);
    c->opt_len = get32(c->hdr + 12);
    if (c->opt_len > OPT_MAX_LEN) {
        xbd_nbd_conn_kill(c, "option too long");
        return;
    }
    if (!c->opt_len) {
        xbd_nbd_got_option(c);
        return;
    }
    c->opt = malloc(c->opt_len);
    if (!c->opt) {
        xbd_nbd_conn_kill(c, "out of memory");
        return;
    }
    c->ph = PH_OPT_DATA;
    c->have = 0;
    c->need = c->opt_len;
}

void xbd_nbd_greet(struct xbd_nbd_conn *c)
{
    uint8_t greet[18];

    put64(greet, NBD_MAGIC);
    put64(greet + 8, NBD_IHAVEOPT);
    put16(greet + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    out_bytes(c, greet, sizeof(greet));
}
