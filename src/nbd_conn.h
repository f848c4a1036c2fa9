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
struct xbd_nbd_conn;

/* What a client is offered, taken from the device when it connects. */
struct xbd_nbd_geom {
    uint64_t size;              /* bytes */
    uint32_t min_block;         /* logical sector size: alignment of I/O */
    bool readonly;
    bool flush;                 /* the store has a cache to flush */
    bool trim;                  /* discard works */
    bool is_blockdev;
};

/* The connection ended and will not call again (it may still wait for
 * its I/O, privately). */
typedef void xbd_nbd_conn_gone_fn(void *opaque, struct xbd_nbd_conn *c);

/* Serve the client on sock (non-blocking; owned from now on) with I/O on
 * fd (owned too: a duplicate of the backing fd), in the engine's share of
 * <group>.  NULL when out of memory (both fds closed). */
struct xbd_nbd_conn *xbd_nbd_conn_new(struct ev_loop *loop, struct xbd_io_engine *io,
                                      int sock, int fd, const struct xbd_nbd_geom *g,
                                      const void *group, const char *name,
                                      xbd_nbd_conn_gone_fn *gone, void *opaque);
/* Disconnect now, without calling gone; the connection frees itself once
 * its I/O has completed. */
void xbd_nbd_conn_shut(struct xbd_nbd_conn *c);
/* The store shrank to <size> bytes: requests past it are refused from
 * now on.  NBD cannot tell a client its size again, so a store that grew
 * stays the size the handshake gave. */
void xbd_nbd_conn_shrink(struct xbd_nbd_conn *c, uint64_t size);

#endif
