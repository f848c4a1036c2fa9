/*
 * io_aio.c - the libaio engine of one event loop.
 *
 * I/Os are queued by the rings while they parse requests, each ring in a
 * queue of its own, and handed to the kernel in one io_submit() per batch
 * from an ev_prepare watcher, i.e. once per loop iteration, just before
 * the loop would block.  Completions arrive through an eventfd watched by
 * the same loop.
 *
 * Sharing: a batch is gathered round-robin, one I/O per queue with work
 * waiting per turn, and an I/O only leaves its queue while its ring and
 * its device are under their share (io_aio.h).  The rest waits in its own
 * queue, so a flood of one guest costs the others one turn each, not the
 * whole kernel context.
 *
 * Nothing here blocks: the operations Linux has no asynchronous form for
 * (discard, and fdatasync on kernels without IOCB_CMD_FDSYNC) go to the
 * worker pool (io_pool.c), whose finished jobs come back through its own
 * eventfd to this loop and, through done(), to the ring that owns them;
 * so do reads and writes the kernel refused with EAGAIN under RWF_NOWAIT,
 * and every read or write of a store that refuses RWF_NOWAIT itself.
 * Their shares are those of any I/O: a job in the pool counts against its
 * ring's and its device's in-flight share as if the kernel held it.
 * Correctness first: a flush is answered only once it has completed.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "aio_reap.h"
#include "io_aio.h"
#include "xenblkd/log.h"

#define XBD_AIO_BATCH 64

#define container_of(p, T, m) ((T *)(void *)((char *)(p) - offsetof(T, m)))

/* The I/O of one backing store, whichever ring it comes from. */
struct xbd_aio_group {
    const void *key;
    unsigned inflight;       /* held by the kernel or the pool */
    unsigned pooled;         /* of which in the pool */
    unsigned refs;           /* queues */
    /* The store refused RWF_NOWAIT for reads [0] or writes [1]
     * (EOPNOTSUPP: no FMODE_NOWAIT, e.g. buffered ext4 writes, FUSE, NFS;
     * EINVAL: a kernel before 4.13): those run in the worker pool from
     * then on, unless the store is in memory (fs). */
    bool no_nowait[2];
    /* The filesystem of the store, asked by a worker along with the first
     * read/write it runs after a refusal: fstatfs() on a network
     * filesystem asks the server, which may hang, so never the loop. */
    enum { FS_UNKNOWN, FS_PROBING, FS_DEVICE, FS_MEMORY } fs;
    /* Since when it holds pool jobs (pooled > 0), and a descriptor of its
     * store: named when the pool is at its cap (pool_at_cap). */
    ev_tstamp pooled_since;
    int pooled_fd;
    struct xbd_aio_group *next;
};

struct xbd_aio_queue {
    struct xbd_io_engine *io;
    struct xbd_aio_group *grp;
    struct xbd_aio *head, **tail;
    unsigned queued, inflight;
    bool active;             /* in the engine's round */
    unsigned stall_round;    /* io->round it last waited for its share in */
    struct xbd_aio_queue *prev, *next;
    struct xbd_aio_share_stats *st, own_st;
};

/* One kernel AIO context of the engine. */
struct xbd_aio_ctx {
    io_context_t id;
    unsigned used;           /* iocbs it holds, and those workers are
                                submitting to it */
};

struct xbd_io_engine {
    struct ev_loop *loop;
    /* Capacity follows the devices (ctx_follow_devices): every device at
     * its share at once still leaves a slot free for one below it.  All
     * contexts signal the one eventfd; a batch goes to one context. */
    struct xbd_aio_ctx *ctxs;
    unsigned nctx;
    struct xbd_aio_ctx *cur; /* of the batch being gathered (gather) */
    bool ctx_short_logged;   /* io_setup refused one: said once */
    int efd;
    unsigned depth;          /* events each context was set up for */
    unsigned inflight;       /* iocbs the kernel holds */
    unsigned submitting;     /* iocbs handed to a worker to submit: each
                                takes a slot of the context until reaped */
    unsigned queued;         /* I/Os waiting in every queue */
    unsigned dev_share, ring_share;
    struct xbd_aio_queue *rr;       /* next queue to serve; circular list */
    unsigned nactive;               /* queues in it */
    unsigned round;                 /* submission rounds (flush_queues) */
    struct xbd_aio_group *groups;
    unsigned ngroups;        /* devices (groups), the engine's own included */
    struct xbd_aio_queue *defq;     /* for I/O no owner bound */
    struct xbd_pool *pool;
    unsigned pool_share;     /* pool jobs one device may hold at once */
    bool pool_cap_logged;    /* pool_at_cap said so; again once it eased */
    bool busy;               /* holds a loop reference (I/O outstanding) */
    bool no_aio_fdsync;      /* kernel refused IOCB_CMD_FDSYNC */
    bool stopped;            /* xbd_io_engine_stop: pool joined, ctx gone */
    /* I/Os forgotten by xbd_aio_queue_drop: kept in a ring's journal, or
     * of an NBD client already cut off (nobody to answer). */
    unsigned dropped_journaled, dropped_unanswered;
    ev_io efd_w;
    ev_io pool_w;
    ev_prepare prep_w;
    ev_timer retry_w;        /* io_submit said EAGAIN with nothing in flight */
};

/* The loop must not exit while I/O is outstanding, but an idle engine must
 * not keep it alive either: hold one loop reference while busy. */
static void update_busy(struct xbd_io_engine *io)
{
    bool busy = io->inflight || io->queued || xbd_pool_held(io->pool);

    if (busy && !io->busy)
        ev_ref(io->loop);
    else if (!busy && io->busy)
        ev_unref(io->loop);
    io->busy = busy;
}

/* ---- the round of queues with work waiting ---------------------------- */

static void activate(struct xbd_io_engine *io, struct xbd_aio_queue *q)
{
    if (q->active)
        return;
    q->active = true;
    io->nactive++;
    if (!io->rr) {
        q->prev = q->next = q;
        io->rr = q;
        return;
    }
    /* Last in the current round. */
    q->next = io->rr;
    q->prev = io->rr->prev;
    q->prev->next = q;
    io->rr->prev = q;
}

static void deactivate(struct xbd_io_engine *io, struct xbd_aio_queue *q)
{
    if (!q->active)
        return;
    q->active = false;
    io->nactive--;
    if (q->next == q) {
        io->rr = NULL;
    } else {
        q->prev->next = q->next;
        q->next->prev = q->prev;
        if (io->rr == q)
            io->rr = q->next;
    }
    q->prev = q->next = NULL;
}

static struct xbd_aio_queue *queue_of(struct xbd_io_engine *io, const struct xbd_aio *a)
{
    return a->q ? a->q : io->defq;
}

static void set_queued(struct xbd_aio_queue *q, int delta)
{
    q->queued = (unsigned)((int)q->queued + delta);
    q->io->queued = (unsigned)((int)q->io->queued + delta);
    q->st->queued = q->queued;
}

static void enqueue(struct xbd_io_engine *io, struct xbd_aio *a)
{
    struct xbd_aio_queue *q = queue_of(io, a);

    a->next = NULL;
    *q->tail = a;
    q->tail = &a->next;
    set_queued(q, +1);
    activate(io, q);
    update_busy(io);
}

/* Back to the front of its queue: the kernel did not take it. */
static void enqueue_front(struct xbd_io_engine *io, struct xbd_aio *a)
{
    struct xbd_aio_queue *q = queue_of(io, a);

    a->next = q->head;
    q->head = a;
    if (q->tail == &q->head)
        q->tail = &a->next;
    set_queued(q, +1);
    activate(io, q);
}

/* Take the I/O *pp points to out of q (the head or a later one). */
static struct xbd_aio *unlink_at(struct xbd_aio_queue *q, struct xbd_aio **pp)
{
    struct xbd_aio *a = *pp;

    *pp = a->next;
    if (q->tail == &a->next)
        q->tail = pp;
    set_queued(q, -1);
    a->next = NULL;
    return a;
}

static struct xbd_aio *dequeue(struct xbd_aio_queue *q)
{
    return q->head ? unlink_at(q, &q->head) : NULL;
}

/* ---- shares ------------------------------------------------------------ */

static void hold(struct xbd_io_engine *io, struct xbd_aio *a, int delta)
{
    struct xbd_aio_queue *q = queue_of(io, a);

    q->inflight = (unsigned)((int)q->inflight + delta);
    q->grp->inflight = (unsigned)((int)q->grp->inflight + delta);
    if (!a->pooled)
        return;
    if (!q->grp->pooled) {
        q->grp->pooled_since = ev_now(io->loop);
        q->grp->pooled_fd = a->fd;
    }
    q->grp->pooled = (unsigned)((int)q->grp->pooled + delta);
}

/* May an I/O of q leave it now? */
static bool under_share(const struct xbd_io_engine *io, const struct xbd_aio_queue *q)
{
    return q->inflight < io->ring_share && q->grp->inflight < io->dev_share;
}

/* Pool jobs the engine may hold: a share for every device, within
 * [XBD_POOL_THREADS, XBD_POOL_MAX_THREADS] (the pool starts a worker per
 * job held when the others are busy, io_pool.h). */
static unsigned pool_limit(const struct xbd_io_engine *io)
{
    unsigned n = io->pool_share * io->ngroups;

    if (n < XBD_POOL_THREADS)
        return XBD_POOL_THREADS;
    return n < XBD_POOL_MAX_THREADS ? n : XBD_POOL_MAX_THREADS;
}

/* May a pool job of q start now?  Within its device's share, and the last
 * job the engine may hold only for a device that holds none (io_aio.h). */
static bool pool_room(const struct xbd_io_engine *io, const struct xbd_aio_queue *q)
{
    if (q->grp->pooled >= io->pool_share)
        return false;
    return xbd_pool_held(io->pool) + (q->grp->pooled ? 1 : 0) < pool_limit(io);
}

static const char *fd_path(int fd, char *buf, size_t n);

/* A pool job of q waits though its device is under its share: the pool is
 * at its cap, which only storage that hangs under many disks at once
 * reaches.  Said once (until the pool eases) with the devices that hold
 * workers and since when, for the administrator to find the storage. */
static void pool_at_cap(struct xbd_io_engine *io, const struct xbd_aio_queue *q)
{
    char line[768], store[PATH_MAX];
    size_t len = 0;
    unsigned disks = 0;

    if (io->pool_cap_logged || q->grp->pooled >= io->pool_share)
        return;
    io->pool_cap_logged = true;
    line[0] = '\0';
    for (const struct xbd_aio_group *g = io->groups; g; g = g->next) {
        int n;

        if (!g->pooled || (disks++, len >= sizeof(line)))
            continue;
        n = snprintf(line + len, sizeof(line) - len, "%s%s (%u for %.0f s)", len ? ", " : "",
                     fd_path(g->pooled_fd, store, sizeof(store)), g->pooled,
                     ev_now(io->loop) - g->pooled_since);
        len += n > 0 ? (size_t)n : 0;
    }
    xbd_warn("worker pool at its cap of %u workers, held by %u disks (storage that "
             "hangs?); only a disk holding none gets the last: %s%s",
             pool_limit(io), disks, line, len >= sizeof(line) ? "..." : "");
}

/* ---- the worker pool --------------------------------------------------- */

static long run_discard(const struct xbd_aio *a, uint64_t offset, uint64_t len)
{
    if (a->is_blockdev) {
        uint64_t range[2] = { offset, len };

        if (ioctl(a->fd, a->secure ? BLKSECDISCARD : BLKDISCARD, range) < 0)
            return -errno;
        return 0;
    }
    if (fallocate(a->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)offset, (off_t)len) < 0)
        return -errno;
    return 0;
}

/* tmpfs, ramfs: a buffered read or write is a copy to or from the page
 * cache that waits for no device (a page swapped out is read back, as
 * any page of the daemon's own memory may be). */
static bool in_memory_fs(int fd)
{
    struct statfs sfs;
    struct stat st;

    /* Files only: fstatfs() of a block device answers for the filesystem
     * of its node, devtmpfs, whose magic is tmpfs's. */
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || fstatfs(fd, &sfs) < 0)
        return false;
    return (unsigned long)sfs.f_type == TMPFS_MAGIC ||
           (unsigned long)sfs.f_type == RAMFS_MAGIC;
}

/* In a worker thread: touches nothing but the I/O itself. */
static void job_run(struct xbd_pool_job *j)
{
    struct xbd_aio *a = container_of(j, struct xbd_aio, job);
    ssize_t n;

    switch (a->kind) {
    case XBD_AIO_DISCARD:
        a->job_res = run_discard(a, a->offset + a->done_bytes, a->chunk);
        break;
    case XBD_AIO_READV:
    case XBD_AIO_WRITEV:
        if (a->submit_only) {
            /* Blocks here as long as the kernel needs to start the I/O
             * (an ext4 block allocation, a free request tag), not for the
             * transfer: the loop reaps its completion. */
            struct iocb *cb = &a->iocb;
            int ret = io_submit(a->ctx, 1, &cb);

            a->job_res = ret == 1 ? 0 : ret < 0 ? ret : -EAGAIN;
            break;
        }
        /* A read/write the kernel said would block (RWF_NOWAIT), or of a
         * store that refuses RWF_NOWAIT: here it may.  A short transfer
         * is finished like one from the kernel. */
        if (a->probe_fs)
            a->fs_in_memory = in_memory_fs(a->fd);
        if (a->kind == XBD_AIO_READV)
            n = preadv(a->fd, a->iov, (int)a->iovcnt, (off_t)a->offset);
        else
            n = pwritev(a->fd, a->iov, (int)a->iovcnt, (off_t)a->offset);
        a->job_res = n < 0 ? -errno : (long)n;
        break;
    case XBD_AIO_FDSYNC:
        a->job_res = fdatasync(a->fd) < 0 ? -errno : 0;
        break;
    }
}

static bool start_pooled(struct xbd_io_engine *io, struct xbd_aio *a)
{
    if (a->kind == XBD_AIO_DISCARD) {
        uint64_t left = a->len - a->done_bytes;

        a->chunk = left < XBD_DISCARD_CHUNK ? left : XBD_DISCARD_CHUNK;
    }
    a->job.run = job_run;
    return xbd_pool_submit(io->pool, &a->job) == 0;
}

static void finish(struct xbd_io_engine *io, struct xbd_aio *a, long res)
{
    update_busy(io);
    a->done(a, res);
}

static void rw_progress(struct xbd_io_engine *io, struct xbd_aio *a, long res);

/* The answer of a worker's fstatfs (job_run). */
static void fs_probed(struct xbd_aio_group *g, struct xbd_aio *a)
{
    a->probe_fs = false;
    g->fs = a->fs_in_memory ? FS_MEMORY : FS_DEVICE;
    if (g->fs == FS_MEMORY)
        xbd_info("backing store is in memory (tmpfs or ramfs): what it refuses "
                 "RWF_NOWAIT for runs in the loop after all");
}

static void completed(struct xbd_io_engine *io, struct xbd_aio *a, long res);

/* The engine's context with this id (a worker's submission went there). */
static struct xbd_aio_ctx *ctx_of(struct xbd_io_engine *io, io_context_t id)
{
    unsigned i;

    for (i = 0; i < io->nctx; i++)
        if (io->ctxs[i].id == id)
            break;
    return &io->ctxs[i < io->nctx ? i : 0];
}

/* A worker's report on a read/write it only submitted: from now on the
 * I/O is the kernel's (its shares stay held until its completion), or,
 * if the submission failed, back to the queue for a worker to transfer
 * (io_submit's EAGAIN: no room in the context) or answered. */
static void pool_submitted(struct xbd_io_engine *io, struct xbd_aio *a)
{
    struct xbd_aio_queue *q = queue_of(io, a);
    long res = a->job_res;

    q->grp->pooled--;
    a->pooled = a->submit_only = false;
    q->st->offloaded++;
    if (res == 0) {
        q->st->worker_submitted++;
        if (a->reaped_early) {
            a->reaped_early = false;
            completed(io, a, a->early_res);
        } else {
            io->submitting--;   /* the kernel's now, until efd_cb reaps it */
            io->inflight++;
        }
        return;
    }
    io->submitting--;
    ctx_of(io, a->ctx)->used--;
    hold(io, a, -1);
    if (res == -EAGAIN) {
        a->pooled = a->transfer = true;
        enqueue_front(io, a);
        return;
    }
    finish(io, a, res);
}

static void pool_done(struct xbd_io_engine *io, struct xbd_aio *a)
{
    long res = a->job_res;

    if (a->submit_only) {
        pool_submitted(io, a);
        return;
    }
    hold(io, a, -1);
    queue_of(io, a)->st->offloaded++;
    if (a->probe_fs)
        fs_probed(queue_of(io, a)->grp, a);
    if (a->kind == XBD_AIO_READV || a->kind == XBD_AIO_WRITEV) {
        /* Any rest goes to the kernel again (RWF_NOWAIT first), or to a
         * worker again if the store refuses RWF_NOWAIT (needs_worker). */
        a->pooled = a->transfer = false;
        rw_progress(io, a, res);
        return;
    }
    if (a->kind == XBD_AIO_DISCARD && res == 0) {
        a->done_bytes += a->chunk;
        if (a->done_bytes < a->len) {
            /* Next chunk behind whatever the ring queued meanwhile. */
            enqueue(io, a);
            return;
        }
    }
    finish(io, a, res);
}

static void flush_queues(struct xbd_io_engine *io);

static void pool_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct xbd_io_engine *io = w->data;
    struct xbd_pool_job *j = xbd_pool_reap(io->pool), *next;

    for (; j; j = next) {
        next = j->next;
        pool_done(io, container_of(j, struct xbd_aio, job));
    }
    if (xbd_pool_held(io->pool) <= pool_limit(io) / 2)
        io->pool_cap_logged = false;
    flush_queues(io);
}

/* ---- submission -------------------------------------------------------- */

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

static bool is_rw(const struct xbd_aio *a)
{
    return a->kind == XBD_AIO_READV || a->kind == XBD_AIO_WRITEV;
}

/* Reads and writes go to the kernel with RWF_NOWAIT: whatever would block
 * inside io_submit() (an O_DIRECT write into a hole that ext4 must
 * allocate, a device out of request tags) comes back EAGAIN instead and
 * goes to the worker pool (worker_submits), so the loop every guest shares
 * does not wait for one guest's storage.  One wait has no flag: Linux's
 * aio_write() takes a regular file's filesystem freeze protection
 * (sb_start_write) whatever RWF_NOWAIT says, so a write to an image on a
 * frozen filesystem (fsfreeze, a snapshot being taken under it) holds the
 * loop until the thaw; nothing short of submitting every file write from
 * a thread avoids it (xenblkd(8), CAVEATS).  Those of a store that
 * refused RWF_NOWAIT run in the pool from the start: without the flag
 * io_submit() does the whole transfer itself, waiting on a hung NFS
 * server or on dirty-page throttling with every guest's loop, so a
 * worker does the transfer.  Except in memory (tmpfs, ramfs),
 * where it waits for no device and a worker costs far more than the copy
 * (make bench on tmpfs, 2 CPUs, 4 KiB random reads at QD32: 270k IOPS and
 * 2.1 us of CPU per request in the loop, 49k and 16.7 us through the
 * pool; 4 guests: 427k against 31k). */
static bool needs_worker(const struct xbd_aio_queue *q, const struct xbd_aio *a)
{
    return a->pooled || (is_rw(a) && q->grp->no_nowait[a->kind == XBD_AIO_WRITEV] &&
                         q->grp->fs != FS_MEMORY);
}

/* A read/write the kernel said would block under RWF_NOWAIT, on a store
 * that takes RWF_NOWAIT (an O_DIRECT file or a block device): only its
 * submission may block, e.g. an O_DIRECT write into a hole of a sparse
 * image while ext4 allocates the block, or a device out of request tags.
 * A worker submits it without the flag and, with O_DIRECT or on a block
 * device, the kernel transfers it as any other (a buffered read is done
 * inside the submission), so a fresh image's writes keep the guest's
 * queue depth instead of the pool's share of synchronous writes (make
 * bench, 4 KiB random writes at QD 32 into a sparse 1 GiB file on ext4:
 * 8.2k IOPS when the workers did the transfers, 20-22k now, fio 47k).
 * Unless such a submission failed (transfer): a worker transfers it. */
static bool worker_submits(const struct xbd_aio_queue *q, const struct xbd_aio *a)
{
    return is_rw(a) && a->pooled && !a->transfer &&
           !q->grp->no_nowait[a->kind == XBD_AIO_WRITEV];
}

/* The I/O of q to serve next, as the link that points to it, or NULL.
 * Normally the head; but a pool job waiting for a worker (or for its
 * device's share of them) does not hold back the reads and writes queued
 * behind it: blkif.h orders nothing among requests in flight.  A flush
 * is the exception both ways: nothing overtakes an FDSYNC, and an FDSYNC
 * overtakes nothing (it covers what was queued before it). */
static struct xbd_aio **pick(struct xbd_io_engine *io, struct xbd_aio_queue *q)
{
    bool room = pool_room(io, q);
    struct xbd_aio **pp;

    for (pp = &q->head; *pp; pp = &(*pp)->next) {
        const struct xbd_aio *a = *pp;

        if (a->kind == XBD_AIO_FDSYNC && pp != &q->head)
            return NULL;
        if (!needs_worker(q, a) || room)
            return pp;
        pool_at_cap(io, q);
        if (a->kind == XBD_AIO_FDSYNC)
            return NULL;
    }
    return NULL;
}

/* Is there a slot in the batch's kernel context for one more iocb,
 * besides the n gathered in this batch and those workers are submitting
 * to it? */
static bool context_room(const struct xbd_io_engine *io, int n)
{
    return io->cur->used + (unsigned)n < io->depth;
}

/* The context with the most free slots: the batch goes there. */
static struct xbd_aio_ctx *emptiest_ctx(struct xbd_io_engine *io)
{
    struct xbd_aio_ctx *c = io->ctxs;
    unsigned i;

    for (i = 1; i < io->nctx; i++)
        if (io->ctxs[i].used < c->used)
            c = &io->ctxs[i];
    return c;
}

/* Serve one I/O of q if its shares allow; true if one left the queue. */
static bool serve(struct xbd_io_engine *io, struct xbd_aio_queue *q,
                  struct xbd_aio **batch, int *n, unsigned room)
{
    struct xbd_aio **pp, *a;

    if (!under_share(io, q)) {
        /* Once per submission round: how often the ring waited. */
        if (q->stall_round != io->round) {
            q->stall_round = io->round;
            q->st->share_waits++;
        }
        return false;
    }
    pp = pick(io, q);
    if (!pp)
        return false;
    a = *pp;
    if (needs_worker(q, a)) {
        bool submit_only = worker_submits(q, a);

        if (submit_only && !context_room(io, *n))
            return false;
        if (!a->pooled && q->grp->fs == FS_UNKNOWN) {
            /* The first refused read/write asks where the store is. */
            q->grp->fs = FS_PROBING;
            a->probe_fs = true;
        }
        a->pooled = true;
        a->submit_only = submit_only;
        a->ctx = io->cur->id;
        unlink_at(q, pp);
        hold(io, a, +1);
        io->submitting += submit_only;
        io->cur->used += submit_only;
        if (start_pooled(io, a))
            return true;
        io->submitting -= submit_only;
        io->cur->used -= submit_only;
        hold(io, a, -1);
        a->submit_only = false;
        enqueue_front(io, a);
        return false;
    }
    if ((unsigned)*n >= room || !context_room(io, *n))
        return false;
    if (is_rw(a))
        a->iocb.aio_rw_flags = q->grp->no_nowait[a->kind == XBD_AIO_WRITEV] ? 0 : RWF_NOWAIT;
    batch[(*n)++] = unlink_at(q, pp);
    hold(io, a, +1);
    return true;
}

/* Take at most one I/O from each queue with work, in turn, until the
 * batch or the kernel context is full or no queue may send more.  Pool
 * jobs start here too.  Returns the iocbs gathered in batch[]. */
static int gather(struct xbd_io_engine *io, struct xbd_aio **batch)
{
    unsigned room;
    int n = 0;
    bool progress = true;

    io->cur = io->nctx == 1 ? io->ctxs : emptiest_ctx(io);
    room = io->depth - io->cur->used;

    if (room > XBD_AIO_BATCH)
        room = XBD_AIO_BATCH;
    while (progress && io->rr) {
        struct xbd_aio_queue *q = io->rr;
        unsigned left = io->nactive;

        progress = false;
        while (q && left--) {
            struct xbd_aio_queue *next = q->next == q ? NULL : q->next;

            if (serve(io, q, batch, &n, room))
                progress = true;
            if (!q->head)
                deactivate(io, q);
            q = next;
        }
        /* The next round starts where this one stopped. */
        if (q && q->active)
            io->rr = q;
    }
    return n;
}

/* What fd is open on, for a log line an administrator can act on (the
 * engine knows stores by their descriptors only); once per store. */
static const char *fd_path(int fd, char *buf, size_t n)
{
    char link[32];
    ssize_t len;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    len = readlink(link, buf, n - 1);
    if (len <= 0)
        snprintf(buf, n, "(fd %d)", fd);
    else
        buf[len] = '\0';
    return buf;
}

/* The kernel answered <err> to a read/write sent with RWF_NOWAIT, at
 * submission or as its result: true if that is about RWF_NOWAIT and the
 * I/O was queued again (in front of its ring's queue: it was next). */
static bool nowait_answer(struct xbd_io_engine *io, struct xbd_aio *a, int err, bool at_submit)
{
    struct xbd_aio_group *g = queue_of(io, a)->grp;
    bool w = a->kind == XBD_AIO_WRITEV;

    if (!is_rw(a) || !(a->iocb.aio_rw_flags & RWF_NOWAIT))
        return false;
    if (err == EAGAIN) {
        /* Would block: a worker does it. */
        a->pooled = true;
    } else if (err == EOPNOTSUPP || (err == EINVAL && at_submit)) {
        /* Never again for this store (a later EINVAL from the file
         * itself, e.g. misalignment, then reaches the ring): a worker
         * does these from now on, unless in memory (needs_worker). */
        if (!g->no_nowait[w]) {
            char store[PATH_MAX];

            xbd_info("backing store %s refuses RWF_NOWAIT %ss (%s): they run in %s",
                     fd_path(a->fd, store, sizeof(store)), w ? "write" : "read",
                     strerror(err),
                     g->fs == FS_MEMORY ? "the loop (in memory)" : "the worker pool");
        }
        g->no_nowait[w] = true;
    } else {
        return false;
    }
    a->iocb.aio_rw_flags = 0;
    enqueue_front(io, a);
    return true;
}

/* io_submit refused the first iocb of a batch with <err>. */
static void submit_failed(struct xbd_io_engine *io, struct xbd_aio *a, int err)
{
    if (nowait_answer(io, a, err, true))
        return;
    if (a->kind == XBD_AIO_FDSYNC && err == EINVAL && !io->no_aio_fdsync) {
        xbd_info("kernel has no IOCB_CMD_FDSYNC: flushing in the worker pool");
        io->no_aio_fdsync = true;
    }
    if (a->kind == XBD_AIO_FDSYNC && io->no_aio_fdsync) {
        a->pooled = true;
        enqueue_front(io, a);
        return;
    }
    finish(io, a, -err);
}

/* Submit one batch; returns false when nothing more can go now. */
static bool submit_batch(struct xbd_io_engine *io)
{
    struct iocb *cbs[XBD_AIO_BATCH];
    struct xbd_aio *batch[XBD_AIO_BATCH];
    int n = gather(io, batch), ret, ok, i;

    if (!n)
        return false;
    for (i = 0; i < n; i++)
        cbs[i] = &batch[i]->iocb;
    ret = io_submit(io->cur->id, n, cbs);
    ok = ret > 0 ? ret : 0;
    io->inflight += (unsigned)ok;
    io->cur->used += (unsigned)ok;
    /* What the kernel did not take goes back to the front of its queue,
     * in order. */
    for (i = n - 1; i >= ok; i--) {
        hold(io, batch[i], -1);
        enqueue_front(io, batch[i]);
    }
    if (ret == -EAGAIN && is_rw(batch[0]) && (batch[0]->iocb.aio_rw_flags & RWF_NOWAIT)) {
        /* Kernels that say "would block" at submission (instead of as
         * the result): batch[0] is back at the front of its queue. */
        struct xbd_aio_queue *q = queue_of(io, batch[0]);

        nowait_answer(io, dequeue(q), EAGAIN, true);
        return true;
    }
    if (ret == -EAGAIN || ret == 0) {
        /* Retry when something completes, or on a timer if nothing is in
         * flight to complete. */
        if (!io->inflight && !ev_is_active(&io->retry_w))
            ev_timer_start(io->loop, &io->retry_w);
        return false;
    }
    if (ret < 0) {
        struct xbd_aio *a = dequeue(queue_of(io, batch[0]));

        if (!queue_of(io, a)->head)
            deactivate(io, queue_of(io, a));
        submit_failed(io, a, -ret);
    }
    return true;
}

static void flush_queues(struct xbd_io_engine *io)
{
    io->round++;
    while (io->rr && submit_batch(io))
        ;
    update_busy(io);
}

static void prep_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct xbd_io_engine *io = w->data;

    if (io->rr)
        flush_queues(io);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xbd_io_engine *io = w->data;

    ev_timer_stop(loop, w);
    flush_queues(io);
}

/* ---- completion -------------------------------------------------------- */

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
    hold(io, a, -1);
    if (res < 0 && nowait_answer(io, a, (int)-res, false))
        return;
    rw_progress(io, a, res);
}

/* A read/write (or FDSYNC) transferred <res> bytes or failed: done, or
 * the rest queued again. */
static void rw_progress(struct xbd_io_engine *io, struct xbd_aio *a, long res)
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

/* Reap what context k completed.  By index: a done() callback may add a
 * context (ctx_follow_devices moves the array). */
static void reap_ctx(struct xbd_io_engine *io, unsigned k)
{
    struct io_event evs[XBD_AIO_BATCH];
    struct timespec zero = { 0, 0 };
    int n, i;

    do {
        /* From the shared completion ring when we can: no system call. */
        n = xbd_aio_reap(io->ctxs[k].id, evs, XBD_AIO_BATCH);
        if (n < 0)
            n = io_getevents(io->ctxs[k].id, 0, XBD_AIO_BATCH, evs, &zero);
        if (n < 0) {
            if (n != -EINTR)
                xbd_err("io_getevents: %s", strerror(-n));
            return;
        }
        io->ctxs[k].used -= (unsigned)n;
        for (i = 0; i < n; i++) {
            struct xbd_aio *a = (struct xbd_aio *)evs[i].obj;

            if (a->submit_only) {
                /* Its worker has not reported yet (pool_submitted). */
                io->submitting--;
                a->reaped_early = true;
                a->early_res = (long)evs[i].res;
                continue;
            }
            io->inflight--;
            completed(io, a, (long)evs[i].res);
        }
    } while (n == XBD_AIO_BATCH);
}

/* Every context signals the one eventfd: one wake-up reaps them all. */
static void efd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct xbd_io_engine *io = w->data;
    uint64_t cnt;
    unsigned i;

    if (read(io->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
        xbd_warn("aio eventfd read: %s", strerror(errno));
    for (i = 0; i < io->nctx; i++)
        reap_ctx(io, i);
    flush_queues(io);
}

/* ---- contexts ---------------------------------------------------------- */

/* A number from /proc/sys/fs, for a log line; "?" if unreadable. */
static const char *sysctl_str(const char *name, char *buf, size_t n)
{
    char path[64];
    FILE *f;

    snprintf(path, sizeof(path), "/proc/sys/fs/%s", name);
    f = fopen(path, "re");
    if (!f || !fgets(buf, (int)n, f))
        snprintf(buf, n, "?");
    else
        buf[strcspn(buf, "\n")] = '\0';
    if (f)
        fclose(f);
    return buf;
}

/* The contexts' capacity follows the devices: at least a device's share
 * times the devices (the groups but defq's, which no ring uses), so that
 * whatever the others hold (every one of them at its share, on storage
 * that hangs), a device below its share finds a free slot in some
 * context.  One context more of the same size each time that falls
 * short; none is destroyed before the engine (a context may hold
 * anyone's I/O).  Bounded by the system's fs.aio-max-nr: past it, the
 * devices share what exists, said once. */
static void ctx_follow_devices(struct xbd_io_engine *io)
{
    unsigned devices = io->ngroups - (io->defq != NULL);
    unsigned long need = (unsigned long)io->dev_share * devices;

    if (io->stopped)
        return;
    while ((unsigned long)io->nctx * io->depth < need) {
        struct xbd_aio_ctx *c = realloc(io->ctxs, (io->nctx + 1) * sizeof(*c));
        int ret = -ENOMEM;

        if (c) {
            io->ctxs = c;
            c += io->nctx;
            memset(c, 0, sizeof(*c));
            ret = io_setup((int)io->depth, &c->id);
        }
        if (ret) {
            char max[32], nr[32];

            if (!io->ctx_short_logged)
                xbd_warn("io_setup: %s (fs.aio-nr %s of fs.aio-max-nr %s): %u devices at "
                         "%u I/Os each share %u kernel AIO context(s) of %u; one on storage "
                         "that hangs can hold slots the others wait for (raise the sysctl "
                         "fs.aio-max-nr)", strerror(-ret), sysctl_str("aio-nr", nr, sizeof(nr)),
                         sysctl_str("aio-max-nr", max, sizeof(max)), devices,
                         io->dev_share, io->nctx, io->depth);
            io->ctx_short_logged = true;
            return;
        }
        io->nctx++;
        io->ctx_short_logged = false;
        xbd_info("%u devices at %u I/Os each: %u kernel AIO contexts of %u", devices,
                 io->dev_share, io->nctx, io->depth);
    }
}

/* ---- queues and groups ------------------------------------------------- */

static struct xbd_aio_group *group_get(struct xbd_io_engine *io, const void *key)
{
    struct xbd_aio_group *g;

    for (g = io->groups; g; g = g->next)
        if (key && g->key == key)
            break;
    if (!g) {
        g = calloc(1, sizeof(*g));
        if (!g)
            return NULL;
        g->key = key;
        g->next = io->groups;
        io->groups = g;
        io->ngroups++;
    }
    g->refs++;
    return g;
}

static void group_put(struct xbd_io_engine *io, struct xbd_aio_group *g)
{
    struct xbd_aio_group **pp;

    if (--g->refs)
        return;
    for (pp = &io->groups; *pp != g; pp = &(*pp)->next)
        ;
    *pp = g->next;
    io->ngroups--;
    free(g);
}

struct xbd_aio_queue *xbd_aio_queue_new(struct xbd_io_engine *io, const void *group,
                                        struct xbd_aio_share_stats *st)
{
    struct xbd_aio_queue *q = calloc(1, sizeof(*q));

    if (!q)
        return NULL;
    q->grp = group_get(io, group);
    if (!q->grp) {
        free(q);
        return NULL;
    }
    ctx_follow_devices(io);     /* a new device may need one more */
    q->io = io;
    q->tail = &q->head;
    q->st = st ? st : &q->own_st;
    return q;
}

void xbd_aio_queue_free(struct xbd_aio_queue *q)
{
    if (!q)
        return;
    if (q->queued || q->inflight)
        xbd_err("I/O queue freed with %u queued, %u in flight", q->queued, q->inflight);
    deactivate(q->io, q);
    group_put(q->io, q->grp);
    free(q);
}

void xbd_aio_queue_drop(struct xbd_aio_queue *q, bool journaled)
{
    if (!q)
        return;
    if (!q->io->stopped) {
        xbd_err("I/O queue dropped while the engine runs: kept");
        return;
    }
    if (journaled)
        q->io->dropped_journaled += q->queued + q->inflight;
    else
        q->io->dropped_unanswered += q->queued + q->inflight;
    /* The engine's own totals stay: xbd_io_engine_free reports them. */
    q->head = NULL;
    q->tail = &q->head;
    q->queued = q->inflight = 0;
}

void xbd_aio_bind(struct xbd_aio *a, struct xbd_aio_queue *q)
{
    a->q = q;
}

static unsigned clamp_share(unsigned v, unsigned cur)
{
    if (!v)
        return cur;
    return v > XBD_INFLIGHT_SHARE_MAX ? XBD_INFLIGHT_SHARE_MAX : v;
}

void xbd_io_engine_set_limits(struct xbd_io_engine *io, unsigned per_device,
                              unsigned per_ring)
{
    io->dev_share = clamp_share(per_device, io->dev_share);
    io->ring_share = clamp_share(per_ring, io->ring_share);
    ctx_follow_devices(io);
}

/* ---- the engine -------------------------------------------------------- */

/* io_destroy waits for what each context holds.  The array stays until
 * the engine is freed: a submission after xbd_io_engine_stop fails
 * (EINVAL) as it always did, and is answered. */
static void destroy_contexts(struct xbd_io_engine *io)
{
    unsigned i;

    for (i = 0; i < io->nctx; i++)
        io_destroy(io->ctxs[i].id);
}

static int engine_setup_aio(struct xbd_io_engine *io)
{
    static const unsigned depths[] = { 1024, 256, 64 };
    int ret = -EINVAL;
    size_t i;

    io->ctxs = calloc(1, sizeof(*io->ctxs));
    if (!io->ctxs)
        return -1;
    for (i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
        memset(&io->ctxs->id, 0, sizeof(io->ctxs->id));
        ret = io_setup((int)depths[i], &io->ctxs->id);
        if (ret == 0) {
            io->depth = depths[i];
            io->nctx = 1;
            break;
        }
    }
    if (ret) {
        xbd_err("io_setup: %s", strerror(-ret));
        free(io->ctxs);
        return -1;
    }
    io->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (io->efd < 0) {
        xbd_err("eventfd: %s", strerror(errno));
        destroy_contexts(io);
        free(io->ctxs);
        return -1;
    }
    return 0;
}

struct xbd_io_engine *xbd_io_engine_new(struct ev_loop *loop)
{
    struct xbd_io_engine *io = calloc(1, sizeof(*io));

    if (!io)
        return NULL;
    io->loop = loop;
    io->dev_share = XBD_DEFAULT_INFLIGHT_PER_DEVICE;
    io->ring_share = XBD_DEFAULT_INFLIGHT_PER_RING;
    io->pool_share = XBD_POOL_SHARE;
    if (engine_setup_aio(io) < 0) {
        free(io);
        return NULL;
    }
    io->pool = xbd_pool_new(XBD_POOL_THREADS, XBD_POOL_MAX_THREADS, XBD_POOL_MAX_THREADS,
                            XBD_POOL_IDLE_EXIT_MS);
    io->defq = io->pool ? xbd_aio_queue_new(io, NULL, NULL) : NULL;
    if (!io->defq) {
        xbd_pool_free(io->pool);
        destroy_contexts(io);
        free(io->ctxs);
        close(io->efd);
        free(io);
        return NULL;
    }
    ev_io_init(&io->efd_w, efd_cb, io->efd, EV_READ);
    io->efd_w.data = io;
    ev_io_start(loop, &io->efd_w);
    ev_unref(loop);
    ev_io_init(&io->pool_w, pool_cb, xbd_pool_fd(io->pool), EV_READ);
    io->pool_w.data = io;
    ev_io_start(loop, &io->pool_w);
    ev_unref(loop);
    ev_prepare_init(&io->prep_w, prep_cb);
    io->prep_w.data = io;
    ev_prepare_start(loop, &io->prep_w);
    ev_unref(loop);
    ev_timer_init(&io->retry_w, retry_cb, 0.001, 0.);
    io->retry_w.data = io;
    return io;
}

void xbd_io_engine_get_workers(struct xbd_io_engine *io, unsigned *busy, unsigned *live,
                               unsigned *limit)
{
    xbd_pool_get_workers(io->pool, busy, live);
    *limit = pool_limit(io);
}

void xbd_io_engine_stop(struct xbd_io_engine *io)
{
    unsigned held = xbd_pool_held(io->pool);

    if (io->stopped)
        return;
    io->stopped = true;
    if (held)
        xbd_info("exit: %u of %u worker job(s) dropped before they started; waiting for "
                 "those running before the disks are closed", xbd_pool_stop(io->pool), held);
    xbd_pool_join(io->pool);
    if (io->inflight || io->submitting)
        xbd_info("exit: waiting for the %u I/O(s) the kernel holds (and any of %u a worker "
                 "was to submit) before the disks are closed", io->inflight, io->submitting);
    /* Waits for what the kernel holds; nothing is reaped afterwards. */
    ev_ref(io->loop);
    ev_io_stop(io->loop, &io->efd_w);
    destroy_contexts(io);
}

void xbd_io_engine_free(struct xbd_io_engine *io)
{
    if (!io)
        return;
    /* After xbd_io_engine_stop the kernel's and the pool's I/Os are done
     * but were never reaped: those of rings abandoned at an exit after a
     * stop timeout, whose journals keep the requests for the successor
     * (the ring said so), and those of NBD clients cut off before, which
     * nobody waits for an answer to.  Not an error then; it is one
     * otherwise, and for any I/O no dropped queue accounts for (the
     * queues' counts include pool jobs, the engine's do not: never
     * fewer). */
    unsigned held = io->inflight + io->submitting;

    if (io->stopped && (held || io->queued) &&
        held + io->queued <= io->dropped_journaled + io->dropped_unanswered)
        xbd_info("exit: %u I/O(s) finished and %u queued not answered: %u left to the "
                 "abandoned rings' journals, %u of NBD clients already cut off",
                 held, io->queued, io->dropped_journaled, io->dropped_unanswered);
    else if (held || io->queued || xbd_pool_held(io->pool))
        xbd_err("I/O engine freed with %u in flight, %u queued, %u in the worker pool",
                held, io->queued, xbd_pool_held(io->pool));
    /* Jobs not started are dropped, running ones waited for: nothing
     * touches an I/O after this. */
    xbd_pool_free(io->pool);
    if (io->busy)
        ev_unref(io->loop);
    if (!io->stopped) {
        ev_ref(io->loop);
        ev_io_stop(io->loop, &io->efd_w);
    }
    ev_ref(io->loop);
    ev_io_stop(io->loop, &io->pool_w);
    ev_ref(io->loop);
    ev_prepare_stop(io->loop, &io->prep_w);
    ev_timer_stop(io->loop, &io->retry_w);
    if (!io->stopped)
        destroy_contexts(io);
    free(io->ctxs);
    close(io->efd);
    /* Queues left by rings that never drained (exit after a shutdown
     * timeout) keep their groups: free what the engine still knows. */
    io->defq->queued = io->defq->inflight = 0;
    xbd_aio_queue_free(io->defq);
    while (io->groups) {
        struct xbd_aio_group *g = io->groups;
        io->groups = g->next;
        free(g);
    }
    free(io);
}

/* ---- starting I/O ------------------------------------------------------ */

static void start_common(struct xbd_aio *a, enum xbd_aio_kind kind, int fd,
                         xbd_aio_done_fn *done)
{
    a->kind = kind;
    a->fd = fd;
    a->done = done;
    a->done_bytes = 0;
    a->pooled = false;
    a->probe_fs = false;
    a->submit_only = a->reaped_early = a->transfer = false;
}

static void start_rw(struct xbd_io_engine *io, struct xbd_aio *a,
                     enum xbd_aio_kind kind, int fd, struct iovec *iov,
                     unsigned iovcnt, uint64_t offset, xbd_aio_done_fn *done)
{
    unsigned i;

    start_common(a, kind, fd, done);
    a->iov = iov;
    a->iovcnt = iovcnt;
    a->offset = offset;
    a->len = 0;
    for (i = 0; i < iovcnt; i++)
        a->len += iov[i].iov_len;
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
    start_common(a, XBD_AIO_FDSYNC, fd, done);
    a->iov = NULL;
    a->iovcnt = 0;
    a->pooled = io->no_aio_fdsync;
    prep_iocb(io, a);
    enqueue(io, a);
}

void xbd_aio_discard(struct xbd_io_engine *io, struct xbd_aio *a, int fd,
                     bool is_blockdev, bool secure, uint64_t offset,
                     uint64_t len, xbd_aio_done_fn *done)
{
    start_common(a, XBD_AIO_DISCARD, fd, done);
    a->is_blockdev = is_blockdev;
    a->secure = secure;
    a->offset = offset;
    a->len = len;
    a->pooled = true;
    enqueue(io, a);
}
