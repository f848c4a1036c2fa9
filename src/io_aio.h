/*
 * io_aio.h - the I/O engine of one event loop: libaio contexts enough
 * for every device at its share (io_aio.c ctx_follow_devices), one eventfd
 * watched by the loop, batched io_submit.
 *
 * An I/O is a struct xbd_aio owned by its caller (a ring's request); the
 * engine only links it into its queue until the kernel has it, and calls
 * done() exactly once, from the loop, with the total bytes transferred or
 * a negative errno.  Short reads and writes are resubmitted for the rest
 * by the engine, so done() sees either the whole length or an error.
 *
 * Sharing (one engine serves every guest): each ring has a queue of its
 * own (xbd_aio_queue), bound to the group of its backing store (the
 * device).  The engine hands I/O to the kernel round-robin across the
 * queues that have work waiting, and never holds more than a ring's or a
 * device's share in flight (xbd_io_engine_set_limits), so one guest at
 * any queue depth on slow storage cannot fill the kernel's AIO contexts,
 * nor make io_submit() wait for the device's request tags, for everyone.
 * Operations Linux has no asynchronous form for (discard, and fdatasync
 * where IOCB_CMD_FDSYNC is refused) run in a small worker pool
 * (io_pool.h), discards in chunks of at most XBD_DISCARD_CHUNK bytes.
 * Reads and writes go to the kernel with RWF_NOWAIT: one that would block
 * inside io_submit() (ext4 allocating blocks for an O_DIRECT write into a
 * hole, a device out of request tags) comes back EAGAIN and a worker
 * submits it without the flag (the kernel then transfers it, and the loop
 * reaps it as any other), so nothing blocks the loop but the exception
 * Linux's AIO has no flag for: a write to a regular file on a frozen
 * filesystem waits in io_submit() for the thaw (io_aio.c).  A store that
 * refuses RWF_NOWAIT (FUSE, NFS, buffered ext4 writes) is remembered and
 * its reads or writes all go to the pool, unless it is in memory (tmpfs,
 * ramfs: the loop copies them, io_aio.c needs_worker).  A pool job
 * waiting for a worker never holds back the aio-able I/O queued behind it
 * on its ring; only a flush keeps its place (nothing passes it, it passes
 * nothing).
 */
#ifndef XENBLKD_IO_AIO_H
#define XENBLKD_IO_AIO_H

#include <stdint.h>
#include <sys/uio.h>
#include <libaio.h>
#include "xenblkd/dataplane.h"
#include "io_pool.h"

enum xbd_aio_kind {
    XBD_AIO_READV,
    XBD_AIO_WRITEV,
    XBD_AIO_FDSYNC,
    XBD_AIO_DISCARD,         /* in the worker pool, chunk by chunk */
};

/* A discard is cut into chunks this large, each a job of its own, queued
 * behind the other I/O of its ring: a worker is never held long by one
 * request, and a guest's whole-disk discard interleaves with its
 * neighbours' work. */
#define XBD_DISCARD_CHUNK    (64ull << 20)
/* Worker threads.  One device holds at most 2 (XBD_POOL_SHARE) at once;
 * XBD_POOL_THREADS are kept, and when every one is busy (jobs of disks
 * whose storage hangs hold them) another is started for a device under
 * its share, up to 2 per device of the engine and XBD_POOL_MAX_THREADS in
 * all, so however many disks hang a disk holding none gets a worker.  At
 * that cap the last one goes only to a device that holds none (logged).
 * Workers over XBD_POOL_THREADS exit after XBD_POOL_IDLE_EXIT_MS idle. */
#define XBD_POOL_SHARE        2u
#define XBD_POOL_THREADS      5u
#define XBD_POOL_MAX_THREADS  64u
#define XBD_POOL_IDLE_EXIT_MS 10000u

struct xbd_aio;
struct xbd_aio_queue;

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
    /* Set once by the owner (xbd_aio_bind); NULL: the engine's own queue. */
    struct xbd_aio_queue *q;
    bool pooled;             /* DISCARD, sync FDSYNC, or a read/write that
                                would block (EAGAIN): a worker runs it */
    uint64_t chunk;          /* DISCARD: bytes of the chunk in the pool */
    long job_res;            /* written by the worker */
    bool probe_fs;           /* READV/WRITEV: the worker asks fstatfs too */
    bool fs_in_memory;       /* its answer: tmpfs or ramfs */
    /* READV/WRITEV the kernel said would block: the worker only submits it
     * (to ctx, without RWF_NOWAIT) and the kernel transfers it, its
     * completion reaped by the loop as any other.  reaped_early: that
     * completion came before the worker's report; early_res its result.
     * transfer: a worker's submission failed, a worker transfers it. */
    bool submit_only, reaped_early, transfer;
    long early_res;
    io_context_t ctx;
    struct xbd_pool_job job;
};

/* A queue for one ring; <group> names its device (any pointer the
 * device's rings share, e.g. its struct xbd_backing); <st> may be NULL.
 * NULL when out of memory. */
struct xbd_aio_queue *xbd_aio_queue_new(struct xbd_io_engine *io, const void *group,
                                        struct xbd_aio_share_stats *st);
/* Only once nothing of the queue is queued or in flight. */
void xbd_aio_queue_free(struct xbd_aio_queue *q);
/* After xbd_io_engine_stop: forget the queue's I/O, which the engine will
 * never submit or reap now, so that it can be freed.  journaled: a ring's
 * journal keeps those requests (else nobody waits for them); the exit line
 * says which. */
void xbd_aio_queue_drop(struct xbd_aio_queue *q, bool journaled);
/* The I/O goes through <q> from now on (every later submission). */
void xbd_aio_bind(struct xbd_aio *a, struct xbd_aio_queue *q);

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
