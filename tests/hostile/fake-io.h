/*
 * fake-io.h - an I/O engine the test controls, linked in place of
 * src/io_aio.c.
 *
 * The hostile ring tests need requests that stay in flight for as long as
 * the test wants (a frontend misbehaving *while* the backend holds its
 * pages).  This file defines every external symbol of io_aio.o
 * (xbd_io_engine_new/free, xbd_aio_*), so the linker never pulls io_aio.o
 * out of src/libxenblkd.a and the ring code runs unchanged on top of it:
 * a link-time substitution, no hook in src/.  If io_aio.o were ever pulled
 * in as well, the duplicate symbols would fail the link.
 *
 * I/Os queue up until fake_io_complete() performs them (synchronously,
 * with the same syscalls as the real engine: preadv/pwritev/fdatasync/
 * fallocate) and calls their done() callbacks, or, in auto mode, until
 * the next loop iteration.
 */
#ifndef XBD_TEST_FAKE_IO_H
#define XBD_TEST_FAKE_IO_H

#include <stdbool.h>
#include "xenblkd/dataplane.h"

/* Complete up to n queued I/Os (oldest first); returns how many. */
unsigned fake_io_complete(struct xbd_io_engine *io, unsigned n);
/* I/Os submitted and not completed yet. */
unsigned fake_io_queued(const struct xbd_io_engine *io);
/* The kind (enum xbd_aio_kind) of the k-th queued I/O, -1 if none. */
int fake_io_kind(const struct xbd_io_engine *io, unsigned k);
/* Auto mode: every I/O completes at the next loop iteration. */
void fake_io_set_auto(struct xbd_io_engine *io, bool on);
/* Complete the k-th queued I/O (0 = oldest): any order the test scripts.
 * Returns false if fewer than k+1 are queued. */
bool fake_io_complete_nth(struct xbd_io_engine *io, unsigned k);
/* Called after every completion's done() returned (test code, e.g. a
 * crash test killing the process right after the ring answered). */
typedef void fake_io_hook_fn(void *opaque);
void fake_io_set_hook(struct xbd_io_engine *io, fake_io_hook_fn *fn, void *opaque);

#endif
