/*
 * fake-io.c - see fake-io.h: a test-controlled stand-in for src/io_aio.c.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/uio.h>
#include <linux/falloc.h>

#include "io_aio.h"
#include "fake-io.h"

struct xbd_io_engine {
    struct ev_loop *loop;
    struct xbd_aio *head, **tail;
    unsigned queued;
    bool autocomplete;
    fake_io_hook_fn *hook;
    void *hook_opaque;
    ev_prepare prep_w;          /* auto mode: complete before blocking */
};

static void auto_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct xbd_io_engine *io = w->data;

    fake_io_complete(io, io->queued);
}

struct xbd_io_engine *xbd_io_engine_new(struct ev_loop *loop)
{
    struct xbd_io_engine *io = calloc(1, sizeof(*io));

    if (!io)
        return NULL;
    io->loop = loop;
    io->tail = &io->head;
    ev_prepare_init(&io->prep_w, auto_cb);
    io->prep_w.data = io;
    return io;
}

void xbd_io_engine_free(struct xbd_io_engine *io)
{
    if (!io)
        return;
    ev_prepare_stop(io->loop, &io->prep_w);
    free(io);
}

void fake_io_set_auto(struct xbd_io_engine *io, bool on)
{
    io->autocomplete = on;
    if (on)
        ev_prepare_start(io->loop, &io->prep_w);
    else
        ev_prepare_stop(io->loop, &io->prep_w);
}

unsigned fake_io_queued(const struct xbd_io_engine *io)
{
    return io->queued;
}

static void enqueue(struct xbd_io_engine *io, struct xbd_aio *a)
{
    a->next = NULL;
    *io->tail = a;
    io->tail = &a->next;
    io->queued++;
}

static long perform(const struct xbd_aio *a)
{
    ssize_t n;

    switch (a->kind) {
    case XBD_AIO_READV:
        n = preadv(a->fd, a->iov, (int)a->iovcnt, (off_t)a->offset);
        return n < 0 ? -errno : (long)n;
    case XBD_AIO_WRITEV:
        n = pwritev(a->fd, a->iov, (int)a->iovcnt, (off_t)a->offset);
        return n < 0 ? -errno : (long)n;
    case XBD_AIO_FDSYNC:
        return fdatasync(a->fd) < 0 ? -errno : 0;
    case XBD_AIO_DISCARD:
        if (fallocate(a->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      (off_t)a->offset, (off_t)a->len) < 0)
            return -errno;
        return 0;
    }
    return -EINVAL;
}

int fake_io_kind(const struct xbd_io_engine *io, unsigned k)
{
    const struct xbd_aio *a = io->head;

    while (a && k--)
        a = a->next;
    return a ? (int)a->kind : -1;
}

void fake_io_set_hook(struct xbd_io_engine *io, fake_io_hook_fn *fn, void *opaque)
{
    io->hook = fn;
    io->hook_opaque = opaque;
}

bool fake_io_complete_nth(struct xbd_io_engine *io, unsigned k)
{
    struct xbd_aio **pp = &io->head, *a;

    while (*pp && k--)
        pp = &(*pp)->next;
    a = *pp;
    if (!a)
        return false;
    *pp = a->next;
    if (io->tail == &a->next)
        io->tail = pp;
    io->queued--;
    a->next = NULL;
    /* May free the ring (last completion of a stopped ring). */
    a->done(a, perform(a));
    if (io->hook)
        io->hook(io->hook_opaque);
    return true;
}

unsigned fake_io_complete(struct xbd_io_engine *io, unsigned n)
{
    unsigned done = 0;

    while (done < n && fake_io_complete_nth(io, 0))
        done++;
    return done;
}

static void start_rw(struct xbd_io_engine *io, struct xbd_aio *a, enum xbd_aio_kind kind,
                     int fd, struct iovec *iov, unsigned iovcnt, uint64_t offset,
                     xbd_aio_done_fn *done)
{
    a->kind = kind;
    a->fd = fd;
    a->iov = iov;
    a->iovcnt = iovcnt;
    a->offset = offset;
    a->len = 0;
    for (unsigned i = 0; i < iovcnt; i++)
        a->len += iov[i].iov_len;
    a->done_bytes = 0;
    a->done = done;
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
    a->kind = XBD_AIO_FDSYNC;
    a->fd = fd;
    a->iov = NULL;
    a->iovcnt = 0;
    a->done = done;
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

/* Shares and queues: the fake engine has one FIFO and no shares; a queue
 * is a token the ring keeps. */
struct xbd_aio_queue {
    int unused;
};

void xbd_io_engine_set_limits(struct xbd_io_engine *io, unsigned per_device,
                              unsigned per_ring)
{
}

struct xbd_aio_queue *xbd_aio_queue_new(struct xbd_io_engine *io, const void *group,
                                        struct xbd_aio_share_stats *st)
{
    return calloc(1, sizeof(struct xbd_aio_queue));
}

void xbd_aio_queue_free(struct xbd_aio_queue *q)
{
    free(q);
}

void xbd_aio_queue_drop(struct xbd_aio_queue *q, bool journaled)
{
    (void)q;
    (void)journaled;
}

void xbd_aio_bind(struct xbd_aio *a, struct xbd_aio_queue *q)
{
    a->q = q;
}
