/*
 * nbd_server.h - every disk served over NBD on a Unix socket, for local
 * attach: libxl hands dom0's users of a vbd3 disk (the device model of an
 * HVM guest) "nbd+unix:///?socket=<physical-device-path>".
 *
 * The server runs on the daemon's event loop and does its I/O through the
 * daemon's AIO engine (io_aio.h) on a duplicate of the device's own
 * backing fd, in the device's share of the engine: the same file, the
 * same O_DIRECT and read-only rule as the guest's rings, and nothing ever
 * blocks the loop.  What a local client can hold is bounded
 * (XBD_NBD_MAX_CONNS connections, each XBD_NBD_MAX_REQS requests and
 * XBD_NBD_CONN_BYTES of buffers), and a client that breaks the protocol
 * is disconnected; none of it touches a guest's ring.  A client cut off
 * with I/O in flight is waited for (nbd_export.c): it still counts, holds
 * back the export's other clients' I/O, and keeps the disk from closing.
 *
 * Socket path rule: <state-dir>/nbd/<kind>-<domid>-<devid>.sock, mode
 * 0600 in a directory of mode 0700; it exists while the device has its
 * backing store open (xbd_nbd_export_open to xbd_nbd_export_close).
 */
#ifndef XENBLKD_NBD_SERVER_H
#define XENBLKD_NBD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ev.h>

#include "xenblkd/dataplane.h"

#define XBD_NBD_SUBDIR      "nbd"
#define XBD_NBD_MAX_CONNS   4u          /* per disk; more are closed at once */
#define XBD_NBD_MAX_REQS    16u         /* per connection, in flight or replying */
#define XBD_NBD_MAX_PAYLOAD (4u << 20)  /* advertised maximum block size */
#define XBD_NBD_CONN_BYTES  (8u << 20)  /* data buffers held per connection */
#define XBD_NBD_HANDSHAKE_S 10.0        /* to reach the transmission phase */

struct xbd_io_engine;
struct xbd_log_bucket;
struct xbd_nbd_export;

/* The socket path of a disk, by the rule above.  -1 (errno ENAMETOOLONG)
 * when it does not fit in buf or in a sockaddr_un. */
int xbd_nbd_socket_path(char *buf, size_t n, const char *state_dir, const char *kind,
                        unsigned domid, unsigned devid);

/* Listen on the disk's socket (a stale socket left by a previous instance
 * is replaced) and serve b, which must stay valid and open until
 * xbd_nbd_export_close.  name prefixes log lines; the export's own lines
 * go through logb (the disk's rate limit: a guest that reconnects in a
 * loop opens and closes its export each time), which must outlive it.
 * wb: the disk's write-back state (dataplane.h), shared with its rings
 * and outliving the export's I/O: unless b has O_DIRECT, a client's
 * flush (or FUA write) that fails sets it, and while it is set every
 * one fails (EIO).  NULL: none.
 * NULL + log line on failure: the disk is then served to its guest all
 * the same. */
struct xbd_nbd_export *xbd_nbd_export_open(struct ev_loop *loop, struct xbd_io_engine *io,
                                           const char *state_dir, const char *kind,
                                           unsigned domid, unsigned devid,
                                           const struct xbd_backing *b, const char *name,
                                           struct xbd_log_bucket *logb,
                                           struct xbd_wb_state *wb);
const char *xbd_nbd_export_path(const struct xbd_nbd_export *e);
/* b's size changed (xbd_backing.sectors): clients connected before a
 * shrink get nothing past the new end.  NULL is fine. */
void xbd_nbd_export_resized(struct xbd_nbd_export *e);
/* Remove the socket and disconnect every client.  Their I/O still in the
 * engine completes on their own duplicate fds (no reply is sent), so b may
 * be closed as soon as this returns, but the disk is not released before
 * that I/O is done: true when some is still in flight, then
 * drained(opaque) is called once it is all back, and e freed (until then
 * e is only for xbd_nbd_export_abandon); false: e is freed.  NULL is
 * fine (false). */
typedef void xbd_nbd_drained_fn(void *opaque);
bool xbd_nbd_export_close(struct xbd_nbd_export *e, xbd_nbd_drained_fn *drained,
                          void *opaque);
/* At the exit, after xbd_io_engine_stop, for an export closed (true) and
 * not drained: forget its clients' I/O, free everything.  NULL is fine. */
void xbd_nbd_export_abandon(struct xbd_nbd_export *e);

/* At start-up, before any export is open (nbd_sweep.c): remove every
 * socket in <state_dir>/nbd named by the rule above unless
 * keep(opaque, kind, domid, devid) says the device exists (1), logging
 * each removal; it answers as xbd_xs_exists (0 absent, -1 with errno: it
 * could not say, then the socket goes too, nbd_sweep.c says why).
 * Symlinks, other file types and other names are never touched. */
typedef int xbd_nbd_keep_fn(void *opaque, const char *kind, unsigned domid, unsigned devid);
void xbd_nbd_sweep(const char *state_dir, xbd_nbd_keep_fn *keep, void *opaque);

#endif
