/*
 * nbd_conn_internal.h - what the two halves of one NBD connection share:
 * src/nbd_handshake.c (the options, up to the transmission phase) and
 * src/nbd_conn.c (the connection's life, its socket, requests and I/O).
 */
#ifndef XENBLKD_NBD_CONN_INTERNAL_H
#define XENBLKD_NBD_CONN_INTERNAL_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <ev.h>

#include "nbd_conn.h"
#include "nbd_proto.h"
#include "nbd_server.h"

#define OPT_MAX_LEN     8192u   /* a name (at most 4096) and info requests */
#define OPT_MAX_COUNT   64u     /* options before the transmission phase */
#define OBUF_MAX        1024u   /* handshake replies not yet sent */
#define PREFERRED_BLOCK 4096u

enum phase {
    PH_FLAGS,                   /* client flags, 4 bytes */
    PH_OPT_HDR,                 /* IHAVEOPT, option, length */
    PH_OPT_DATA,
    PH_REQ_HDR,                 /* 28-byte request */
    PH_REQ_DATA,                /* a write's payload */
    PH_REQ_SKIP,                /* the payload of a refused write */
};
struct nbd_req;

struct xbd_nbd_conn {
    struct ev_loop *loop;
    struct xbd_io_engine *io;
    struct xbd_aio_queue *q;
    int sock, fd;
    struct xbd_nbd_geom g;
    char name[96];
    struct xbd_log_bucket *logb;    /* the disk's rate limit */
    struct xbd_wb_state *wb;        /* the disk's write-back state, or NULL */
    bool wb_lost;                   /* this connection saw it lost: for good */
    xbd_nbd_conn_gone_fn *gone;
    xbd_nbd_conn_drained_fn *drained;
    void *opaque;
    ev_io rw, ww;
    ev_timer hs_timer;

    enum phase ph;
    bool no_zeroes;
    bool closing;               /* EOF, DISC or ABORT: finish replies, end */
    bool dead;                  /* socket closed: wait for I/O, then free */
    bool blocked;               /* a parsed request waits for buffer space */
    bool gated;                 /* xbd_nbd_conn_gate: hold requests back */
    uint8_t hdr[NBD_REQUEST_SIZE];
    size_t have, need;
    uint8_t *opt;
    uint32_t opt_type, opt_len;
    unsigned nopts;
    uint8_t obuf[OBUF_MAX];
    size_t olen, ooff;
    struct nbd_req *cur;        /* write whose payload is being read */
    uint32_t skip_error;        /* ... then reply with this error */
    uint8_t skip_cookie[8];
    struct nbd_req *rq_head, *rq_tail;
    unsigned held;              /* requests allocated, until replied */
    size_t held_bytes;          /* their buffers */
    unsigned in_io;             /* of those, in the engine */
    struct nbd_req *io_head;    /* ... those, listed for xbd_nbd_conn_abandon */
    struct nbd_req *wait_head, *wait_tail;  /* held back while gated */
};

static inline void put16(uint8_t *p, uint16_t v) { v = htobe16(v); memcpy(p, &v, 2); }
static inline void put32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static inline void put64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }
static inline uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return be16toh(v); }
static inline uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static inline uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }

/* nbd_conn.c: end the connection (why NULL: an orderly end); it frees
 * itself later, once its I/O is back. */
void xbd_nbd_conn_kill(struct xbd_nbd_conn *c, const char *why);

/* nbd_handshake.c, each called once its bytes are in: */
/* queue the server's greeting (first thing sent) */
void xbd_nbd_greet(struct xbd_nbd_conn *c);
/* the client's 4-byte flags, in c->hdr */
void xbd_nbd_got_flags(struct xbd_nbd_conn *c);
/* an option header, in c->hdr */
void xbd_nbd_got_opt_hdr(struct xbd_nbd_conn *c);
/* an option's data, in c->opt */
void xbd_nbd_got_option(struct xbd_nbd_conn *c);

#endif
