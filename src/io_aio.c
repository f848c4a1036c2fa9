/*
 * io_aio.c - the libaio engine of one event loop.
 *
 * I/Os are queued by the rings while they parse requests and handed to
 * the kernel in one io_submit() per batch from an ev_prepare watcher, i.e.
 * once per loop iteration, just before the loop would block.  Completions
 * arrive through an eventfd watched by the same loop.  Nothing here blocks
 * except the operations Linux has no asynchronous form for (discard, and
 * fdatasync on kernels without IOCB_CMD_FDSYNC), which run in the loop:
 * correctness first, a flush is answered only once it has completed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include "aio_reap.h"
#include "io_aio.h"
#include "xenblkd/log.h"

#define XBD_AIO_BATCH 64

struct xbd_io_engine {
    struct ev_loop *loop;
    io_context_t ctx;
    int efd;
    unsigned depth;          /* events the context was set up for */
    unsigned inflight;       /* iocbs the kernel holds */
    unsigned queued;
    struct xbd_aio *qhead, **qtail;
    bool busy;               /* holds a loop reference (I/O outstanding) */
    bool no_aio_fdsync;      /* kernel refused IOCB_CMD_FDSYNC */
    ev_io efd_w;
    ev_prepare prep_w;
    ev_timer retry_w;        /* io_submit said EAGAIN with nothing in flight */
};

/* The loop must not exit while I/O is outstanding, but an idle engine must
 * not keep it alive either: hold one loop reference while busy. */
static void update_busy(struct xbd_io_engine *io)
{
    bool busy = io->inflight || io->queued;

    if (busy && !io->busy)
        ev_ref(io->loop);
    else if (!busy && io->busy)
        ev_unref(io->loop);
    io->busy = busy;
}

static void enqueue(struct xbd_io_engine *io, struct xbd_aio *a)
{
    a->next = NULL;
    *io->qtail = a;
    io->qtail = &a->next;
    io->queued++;
    update_busy(io);
}

static void enqueue_front(struct xbd_io_engine *io, struct xbd_aio *a)
{
    a->next = io->qhead;
    io->qhead = a;
    if (io->qtail == &io->qhead)
        io->qtail = &a->next;
    io->queued++;
}

static struct xbd_aio *dequeue(struct xbd_io_engine *io)
{
    struct xbd_aio *a = io->qhead;

    if (!a)
        return NULL;
    io->qhead = a->next;
    if (!io->qhead)
        io->qtail = &io->qhead;
    io->queued--;
    a->next = NULL;
    return a;
}

/* (Re)build the iocb from the current position of the I/O. */
static void prep_iocb(struct xbd_io_engine *io, struct xbd_aio *a)
{
    switch (a->kind) {
    case XBD_AIO_READV:
        io_prep_preadv(&a->iocb, a->fd, a->iov, (int)a->iovcnt, (long long)a->offset);
        break;
    case XBD_AIO_WRITEV:
        io_prep_pwritev(&a->iocb, a->fd, a->iov, (int)a->iovcnt, (long long)a->offset);
        break;
    case XBD_AIO_FDSYNC:
        io_prep_fdsync(&a->iocb, a->fd);
        break;
    case XBD_AIO_DISCARD:
        return;
    }
    io_set_eventfd(&a->iocb, io->efd);
}

static void finish(struct xbd_io_engine *io, struct xbd_aio *a, long res)
{
    update_busy(io);
    a->done(a, res);
}

static long run_discard(const struct xbd_aio *a)
{
    if (a->is_blockdev) {
        uint64_t range[2] = { a->offset, a->len };

        if (ioctl(a->fd, a->secure ? BLKSECDISCARD : BLKDISCARD, range) < 0)
            return -errno;
        return 0;
    }
    if (fallocate(a->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)a->offset, (off_t)a->len) < 0)
        return -errno;
    return 0;
}

/* Operations with no usable asynchronous form: run them now. */
static void run_sync(struct xbd_io_engine *io, struct xbd_aio *a)
{
    long res;

    if (a->kind == XBD_AIO_DISCARD)
        res = run_discard(a);
    else
        res = fdatasync(a->fd) < 0 ? -errno : 0;
    finish(io, a, res);
}

static bool is_sync(const struct xbd_io_engine *io, const struct xbd_aio *a)
{
    return a->kind == XBD_AIO_DISCARD ||
           (a->kind == XBD_AIO_FDSYNC && io->no_aio_fdsync);
}

/* io_submit refused the first iocb of a batch with <err>. */
static void submit_failed(struct xbd_io_engine *io, struct xbd_aio *a, int err)
{
    if (a->kind == XBD_AIO_FDSYNC && err == EINVAL && !io->no_aio_fdsync) {
        xbd_info("kernel has no IOCB_CMD_FDSYNC: flushing synchronously");
        io->no_aio_fdsync = true;
        run_sync(io, a);
        return;
    }
    finish(io, a, -err);
}

/* Submit one batch; returns false when the queue must wait (EAGAIN). */
static bool submit_batch(struct xbd_io_engine *io)
{
    struct iocb *cbs[XBD_AIO_BATCH];
    struct xbd_aio *batch[XBD_AIO_BATCH];
    unsigned room = io->depth - io->inflight;
    int n = 0, ret, ok, i;

    while (n < XBD_AIO_BATCH && (unsigned)n < room && io->qhead) {
        struct xbd_aio *a = dequeue(io);

        if (is_sync(io, a)) {
            run_sync(io, a);
            continue;
        }
        batch[n] = a;
        cbs[n++] = &a->iocb;
    }
    if (!n)
        return true;

    ret = io_submit(io->ctx, n, cbs);
    ok = ret > 0 ? ret : 0;
    io->inflight += (unsigned)ok;
    /* What the kernel did not take goes back to the front, in order. */
    for (i = n - 1; i >= ok; i--)
        enqueue_front(io, batch[i]);
    if (ret == -EAGAIN || ret == 0)
        return false;
    if (ret < 0)
        submit_failed(io, dequeue(io), -ret);
    return true;
}

static void flush_queue(struct xbd_io_engine *io)
{
    while (io->qhead) {
        if (io->inflight >= io->depth)
            break;              /* completions will make room */
        if (!submit_batch(io)) {
            /* EAGAIN: retry when something completes, or on a timer if
             * nothing is in flight to complete. */
            if (!io->inflight && !ev_is_active(&io->retry_w))
                ev_timer_start(io->loop, &io->retry_w);
            break;
        }
    }
    update_busy(io);
}

static void prep_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct xbd_io_engine *io = w->data;

    if (io->qhead)
        flush_queue(io);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xbd_io_engine *io = w->data;

    ev_timer_stop(loop, w);
    flush_queue(io);
}

/* Move the I/O past <n> bytes already transferred. */
static void advance(struct xbd_aio *a, uint64_t n)
{
    a->done_bytes += n;
    a->offset += n;
    while (n && a->iovcnt) {
        if (n >= a->iov->iov_len) {
            n -= a->iov->iov_len;
            a->iov++;
            a->iovcnt--;
        } else {
            a->iov->iov_base = (char *)a->iov->iov_base + n;
            a->iov->iov_len -= n;
            n = 0;
        }
    }
}

static void completed(struct xbd_io_engine *io, struct xbd_aio *a, long res)
{
    if (a->kind == XBD_AIO_FDSYNC || res < 0) {
        finish(io, a, res);
        return;
    }
    if (res == 0) {
        /* No progress within the device: the backing store shrank or
         * failed.  Never retry forever. */
        finish(io, a, -EIO);
        return;
    }
    advance(a, (uint64_t)res);
    if (a->done_bytes >= a->len || !a->iovcnt) {
        finish(io, a, (long)a->done_bytes);
        return;
    }
    prep_iocb(io, a);           /* short transfer: submit the rest */
    enqueue(io, a);
}

static void efd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct xbd_io_engine *io = w->data;
    struct io_event evs[XBD_AIO_BATCH];
    struct timespec zero = { 0, 0 };
    uint64_t cnt;
    int n, i;

    if (read(io->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
        xbd_warn("aio eventfd read: %s", strerror(errno));
    do {
        /* From the shared completion ring when we can: no system call. */
        n = xbd_aio_reap(io->ctx, evs, XBD_AIO_BATCH);
        if (n < 0)
            n = io_getevents(io->ctx, 0, XBD_AIO_BATCH, evs, &zero);
        if (n < 0) {
            if (n != -EINTR)
                xbd_err("io_getevents: %s", strerror(-n));
            break;
        }
        for (i = 0; i < n; i++) {
            struct xbd_aio *a = (struct xbd_aio *)evs[i].obj;

            io->inflight--;
            completed(io, a, (long)evs[i].res);
        }
    } while (n == XBD_AIO_BATCH);
    if (io->qhead)
        flush_queue(io);
    update_busy(io);
}

struct xbd_io_engine *xbd_io_engine_new(struct ev_loop *loop)
{
    static const unsigned depths[] = { 1024, 256, 64 };
    struct xbd_io_engine *io = calloc(1, sizeof(*io));
    int ret = -EINVAL;
    size_t i;

    if (!io)
        return NULL;
    io->loop = loop;
    io->qtail = &io->qhead;
    for (i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
        memset(&io->ctx, 0, sizeof(io->ctx));
        ret = io_setup((int)depths[i], &io->ctx);
        if (ret == 0) {
            io->depth = depths[i];
            break;
        }
    }
    if (ret) {
        xbd_err("io_setup: %s", strerror(-ret));
        free(io);
        return NULL;
    }
    io->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (io->efd < 0) {
        xbd_err("eventfd: %s", strerror(errno));
        io_destroy(io->ctx);
        free(io);
        return NULL;
    }
    ev_io_init(&io->efd_w, efd_cb, io->efd, EV_READ);
    io->efd_w.data = io;
    ev_io_start(loop, &io->efd_w);
    ev_unref(loop);
    ev_prepare_init(&io->prep_w, prep_cb);
    io->prep_w.data = io;
    ev_prepare_start(loop, &io->prep_w);
    ev_unref(loop);
    ev_timer_init(&io->retry_w, retry_cb, 0.001, 0.);
    io->retry_w.data = io;
    return io;
}

void xbd_io_engine_free(struct xbd_io_engine *io)
{
    if (!io)
        return;
    if (io->inflight || io->queued)
        xbd_err("I/O engine freed with %u in flight, %u queued",
                io->inflight, io->queued);
    if (io->busy)
        ev_unref(io->loop);
    ev_ref(io->loop);
    ev_io_stop(io->loop, &io->efd_w);
    ev_ref(io->loop);
    ev_prepare_stop(io->loop, &io->prep_w);
    ev_timer_stop(io->loop, &io->retry_w);
    io_destroy(io->ctx);
    close(io->efd);
    free(io);
}

static void start_rw(struct xbd_io_engine *io, struct xbd_aio *a,
                     enum xbd_aio_kind kind, int fd, struct iovec *iov,
                     unsigned iovcnt, uint64_t offset, xbd_aio_done_fn *done)
{
    unsigned i;

    a->kind = kind;
    a->fd = fd;
    a->iov = iov;
    a->iovcnt = iovcnt;
    a->offset = offset;
    a->len = 0;
    for (i = 0; i < iovcnt; i++)
        a->len += iov[i].iov_len;
    a->done_bytes = 0;
    a->done = done;
    prep_iocb(io, a);
    enqueue(io, a);
}

void xbd_aio_readv(struct xbd_io_engine *io, struct xbd_aio *a, int fd,
                   struct iovec *iov, unsigned iovcnt, uint64_t offset,
                   xbd_aio_done_fn *done)
{
    start_rw(io, a, XBD_AIO_READV, fd, iov, iovcnt, offset, done);
}

void xbd_aio_writev(struct xbd_io_engine *io, struct xbd_aio *a, int fd,
                    struct iovec *iov, unsigned iovcnt, uint64_t offset,
                    xbd_aio_done_fn *done)
{
    start_rw(io, a, XBD_AIO_WRITEV, fd, iov, iovcnt, offset, done);
}

void xbd_aio_fdsync(struct xbd_io_engine *io, struct xbd_aio *a, int fd,
                    xbd_aio_done_fn *done)
{
    memset(&a->iocb, 0, sizeof(a->iocb));
    a->kind = XBD_AIO_FDSYNC;
    a->fd = fd;
    a->iov = NULL;
    a->iovcnt = 0;
    a->done = done;
    prep_iocb(io, a);
    enqueue(io, a);
}

void xbd_aio_discard(struct xbd_io_engine *io, struct xbd_aio *a, int fd,
                     bool is_blockdev, bool secure, uint64_t offset,
                     uint64_t len, xbd_aio_done_fn *done)
{
    a->kind = XBD_AIO_DISCARD;
    a->fd = fd;
    a->is_blockdev = is_blockdev;
    a->secure = secure;
    a->offset = offset;
    a->len = len;
    a->done = done;
    enqueue(io, a);
}
