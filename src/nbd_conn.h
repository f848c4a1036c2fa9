/*
 * nbd_conn.h - one NBD client connection (src/nbd_conn.c), as the
 * listener (src/nbd_export.c) sees it.
 */
#ifndef XENBLKD_NBD_CONN_H
#define XENBLKD_NBD_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <ev.h>

struct xbd_io_engine;
struct xbd_log_bucket;
struct xbd_nbd_conn;
struct xbd_wb_state;

/* What a client is offered, taken from the device when it connects. */
struct xbd_nbd_geom {
    uint64_t size;              /* bytes */
    uint32_t min_block;         /* logical sector size: alignment of I/O */
    bool readonly;
    bool flush;                 /* the store has a cache to flush */
    bool trim;                  /* discard works */
    bool is_blockdev;
};

/* The client is disconnected (its socket closed).  draining: I/O it
 * submitted is still in the engine, on its fd; drained follows once the
 * last of it is back (fd closed), and then c is freed.  Not draining: c
 * is freed as soon as gone returns. */
typedef void xbd_nbd_conn_gone_fn(void *opaque, struct xbd_nbd_conn *c, bool draining);
typedef void xbd_nbd_conn_drained_fn(void *opaque, struct xbd_nbd_conn *c);

/* Serve the client on sock (non-blocking; owned from now on) with I/O on
 * fd (owned too: a duplicate of the backing fd), in the engine's share of
 * <group>.  Its per-client lines go through logb (the disk's rate limit,
 * must outlive c; NULL: none).  wb: the disk's write-back state
 * (dataplane.h), which a failed flush or FUA sync sets and which, once
 * set, fails them all; must outlive c (its I/O included); NULL: none (a
 * store with O_DIRECT).  gated: as xbd_nbd_conn_gate.  NULL when out of
 * memory (both fds closed). */
struct xbd_nbd_conn *xbd_nbd_conn_new(struct ev_loop *loop, struct xbd_io_engine *io,
                                      int sock, int fd, const struct xbd_nbd_geom *g,
                                      const void *group, const char *name,
                                      struct xbd_log_bucket *logb,
                                      struct xbd_wb_state *wb, bool gated,
                                      xbd_nbd_conn_gone_fn *gone,
                                      xbd_nbd_conn_drained_fn *drained, void *opaque);
/* Disconnect now (gone is called, then drained as above). */
void xbd_nbd_conn_shut(struct xbd_nbd_conn *c);
/* Gated: requests are taken in and kept in order, but none goes to the
 * engine; ungating submits them (nbd_export.c says why).  May end the
 * connection (gone is called). */
void xbd_nbd_conn_gate(struct xbd_nbd_conn *c, bool gated);
/* At the exit, after xbd_io_engine_stop, for a connection still draining:
 * forget its I/O (the engine never completes it now) and free it, with
 * no callback. */
void xbd_nbd_conn_abandon(struct xbd_nbd_conn *c);
/* The store shrank to <size> bytes: requests past it are refused from
 * now on.  NBD cannot tell a client its size again, so a store that grew
 * stays the size the handshake gave. */
void xbd_nbd_conn_shrink(struct xbd_nbd_conn *c, uint64_t size);

#endif
