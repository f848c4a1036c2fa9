/*
 * io_aio.h - the I/O engine of one event loop: one libaio context, one
 * eventfd watched by the loop, batched io_submit.
 *
 * An I/O is a struct xbd_aio owned by its caller (a ring's request); the
 * engine only links it into its queue until the kernel has it, and calls
 * done() exactly once, from the loop, with the total bytes transferred or
 * a negative errno.  Short reads and writes are resubmitted for the rest
 * by the engine, so done() sees either the whole length or an error.
 */
#ifndef XENBLKD_IO_AIO_H
#define XENBLKD_IO_AIO_H

#include <stdint.h>
#include <sys/uio.h>
#include <libaio.h>
#include "xenblkd/dataplane.h"

enum xbd_aio_kind {
    XBD_AIO_READV,
    XBD_AIO_WRITEV,
    XBD_AIO_FDSYNC,
    XBD_AIO_DISCARD,         /* done synchronously in the loop */
};

struct xbd_aio;
typedef void xbd_aio_done_fn(struct xbd_aio *a, long res);

struct xbd_aio {
    struct iocb iocb;        /* must stay first: the kernel hands it back */
    enum xbd_aio_kind kind;
    int fd;
    struct iovec *iov;       /* caller's array; advanced on short I/O */
    unsigned iovcnt;
    uint64_t offset;         /* bytes */
    uint64_t len;            /* READV/WRITEV: total; DISCARD: bytes */
    uint64_t done_bytes;
    bool is_blockdev;        /* DISCARD: BLKDISCARD instead of fallocate */
    bool secure;             /* DISCARD: BLKSECDISCARD */
    xbd_aio_done_fn *done;
    struct xbd_aio *next;    /* engine's submission queue */
};

void xbd_aio_readv(struct xbd_io_engine *io, struct xbd_aio *a, int fd,
                   struct iovec *iov, unsigned iovcnt, uint64_t offset,
                   xbd_aio_done_fn *done);
void xbd_aio_writev(struct xbd_io_engine *io, struct xbd_aio *a, int fd,
                    struct iovec *iov, unsigned iovcnt, uint64_t offset,
                    xbd_aio_done_fn *done);
/* done() only after the data of every write completed before is durable. */
void xbd_aio_fdsync(struct xbd_io_engine *io, struct xbd_aio *a, int fd,
                    xbd_aio_done_fn *done);
void xbd_aio_discard(struct xbd_io_engine *io, struct xbd_aio *a, int fd,
                     bool is_blockdev, bool secure, uint64_t offset,
                     uint64_t len, xbd_aio_done_fn *done);

#endif
