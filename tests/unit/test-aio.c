/*
 * test-aio.c - the libaio engine (src/io_aio.c) on its own: vectored reads
 * and writes at offsets, more I/Os than one io_submit batch, fdatasync,
 * discard (hole punched), and a transfer that runs into the end of the
 * file: the engine resubmits the rest after the short completion and then
 * reports -EIO instead of hanging or claiming success.  Then sharing
 * (issue 10): a queue flooded with reads does not delay another device's
 * read behind it (round-robin, per-ring and per-device shares), and a
 * large discard runs in the worker pool in 64 MiB chunks.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "io_aio.h"
#include "xenblkd/log.h"

#define NIO 200

struct op {
    struct xbd_aio aio;       /* first: the callback gets this pointer */
    struct iovec iov[2];
    long res;
    int calls;
};

static int completed;

static void done(struct xbd_aio *a, long res)
{
    struct op *o = (struct op *)a;

    o->res = res;
    o->calls++;
    completed++;
}

static void run_until(struct ev_loop *loop, int n)
{
    double t0 = ev_time();

    while (completed < n && ev_time() - t0 < 10)
        ev_run(loop, EVRUN_ONCE);
}

/* Completion order of the sharing test. */
static int order_b;

static void done_b(struct xbd_aio *a, long res)
{
    done(a, res);
    order_b = completed;
}

/* Two rings of one device flood the engine with 20 reads each, a ring of
 * another device sends one: with shares of 2 per ring and 4 per device,
 * that read goes in the first batch (at most 4 of the device before it),
 * not behind the 40 (first-come order). */
static void test_shares(struct ev_loop *loop, int fd)
{
    static struct op a1[20], a2[20], b;
    static unsigned char data[41][512];
    struct xbd_aio_share_stats s1 = { 0 }, s2 = { 0 }, sb = { 0 };
    struct xbd_io_engine *io = xbd_io_engine_new(loop);
    struct xbd_aio_queue *q1, *q2, *qb;
    int dev_a, dev_b, i;

    CHECK(io != NULL);
    if (!io)
        return;
    xbd_io_engine_set_limits(io, 4, 2);
    q1 = xbd_aio_queue_new(io, &dev_a, &s1);
    q2 = xbd_aio_queue_new(io, &dev_a, &s2);
    qb = xbd_aio_queue_new(io, &dev_b, &sb);
    CHECK(q1 && q2 && qb);
    completed = 0;
    order_b = 0;
    for (i = 0; i < 20; i++) {
        a1[i].iov[0] = (struct iovec){ data[i], 512 };
        xbd_aio_bind(&a1[i].aio, q1);
        xbd_aio_readv(io, &a1[i].aio, fd, a1[i].iov, 1, (uint64_t)i * 512, done);
        a2[i].iov[0] = (struct iovec){ data[20 + i], 512 };
        xbd_aio_bind(&a2[i].aio, q2);
        xbd_aio_readv(io, &a2[i].aio, fd, a2[i].iov, 1, (uint64_t)i * 512, done);
    }
    CHECK_EQ(s1.queued, 20);
    b.iov[0] = (struct iovec){ data[40], 512 };
    xbd_aio_bind(&b.aio, qb);
    xbd_aio_readv(io, &b.aio, fd, b.iov, 1, 0, done_b);
    run_until(loop, 41);
    CHECK_EQ(completed, 41);
    CHECK(order_b >= 1 && order_b <= 5);
    CHECK(s1.share_waits >= 1 && s2.share_waits >= 1);
    CHECK_EQ(sb.share_waits, 0);
    CHECK_EQ(s1.queued + s2.queued + sb.queued, 0);
    xbd_aio_queue_free(q1);
    xbd_aio_queue_free(q2);
    xbd_aio_queue_free(qb);
    xbd_io_engine_free(io);
}

/* A 200 MiB discard of a sparse file: done in the pool as 4 chunks
 * (64+64+64+8 MiB), the data in the range reads back as zeros. */
static void test_discard_chunks(struct ev_loop *loop)
{
    static struct op d;
    struct xbd_aio_share_stats st = { 0 };
    struct xbd_io_engine *io = xbd_io_engine_new(loop);
    struct xbd_aio_queue *q;
    char path[] = "/tmp/xbd-aio-discard.XXXXXX";
    int fd = mkstemp(path);
    unsigned char b[512];
    const off_t size = 200ll << 20, mark = 150ll << 20;

    CHECK(io != NULL && fd >= 0);
    if (!io || fd < 0)
        return;
    CHECK(unlink(path) == 0 && ftruncate(fd, size) == 0);
    memset(b, 0x5a, sizeof(b));
    CHECK(pwrite(fd, b, sizeof(b), mark) == (ssize_t)sizeof(b));
    q = xbd_aio_queue_new(io, &st, &st);
    xbd_aio_bind(&d.aio, q);
    completed = 0;
    xbd_aio_discard(io, &d.aio, fd, false, false, 0, (uint64_t)size, done);
    run_until(loop, 1);
    CHECK_EQ(d.res, 0);
    CHECK_EQ(st.offloaded, 4);
    CHECK(pread(fd, b, sizeof(b), mark) == (ssize_t)sizeof(b) && b[0] == 0 && b[511] == 0);
    xbd_aio_queue_free(q);
    xbd_io_engine_free(io);
    close(fd);
}

int main(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct xbd_io_engine *io;
    static struct op ops[NIO];
    static unsigned char buf[NIO][2][512], back[1024];
    char path[] = "/tmp/xbd-aio.XXXXXX";
    int fd = mkstemp(path), i, target;

    xbd_log_init(true, XBD_LOG_WARN);
    if (fd < 0 || unlink(path) < 0 || ftruncate(fd, NIO * 1024) < 0 || !loop) {
        perror("setup");
        return 1;
    }
    io = xbd_io_engine_new(loop);
    CHECK(io != NULL);
    if (!io)
        return 1;

    /* Writes: two separate 512-byte buffers per I/O (never merged). */
    for (i = 0; i < NIO; i++) {
        memset(buf[i][0], i & 0xff, 512);
        memset(buf[i][1], ~i & 0xff, 512);
        ops[i].iov[0] = (struct iovec){ buf[i][0], 512 };
        ops[i].iov[1] = (struct iovec){ buf[i][1], 512 };
        xbd_aio_writev(io, &ops[i].aio, fd, ops[i].iov, 2, (uint64_t)i * 1024, done);
    }
    run_until(loop, NIO);
    CHECK_EQ(completed, NIO);
    for (i = 0; i < NIO; i++) {
        CHECK_EQ(ops[i].calls, 1);
        CHECK_EQ(ops[i].res, 1024);
        CHECK(pread(fd, back, 1024, (off_t)i * 1024) == 1024);
        CHECK(back[0] == (i & 0xff) && back[511] == (i & 0xff));
        CHECK(back[512] == (~i & 0xff) && back[1023] == (~i & 0xff));
    }

    /* Reads back into zeroed buffers. */
    completed = 0;
    for (i = 0; i < NIO; i++) {
        memset(buf[i], 0, sizeof(buf[i]));
        ops[i].calls = 0;
        ops[i].iov[0] = (struct iovec){ buf[i][0], 512 };
        ops[i].iov[1] = (struct iovec){ buf[i][1], 512 };
        xbd_aio_readv(io, &ops[i].aio, fd, ops[i].iov, 2, (uint64_t)i * 1024, done);
    }
    run_until(loop, NIO);
    CHECK_EQ(completed, NIO);
    for (i = 0; i < NIO; i++) {
        CHECK_EQ(ops[i].res, 1024);
        CHECK(buf[i][0][100] == (i & 0xff) && buf[i][1][100] == (~i & 0xff));
    }

    /* fdatasync. */
    completed = 0;
    ops[0].calls = 0;
    xbd_aio_fdsync(io, &ops[0].aio, fd, done);
    run_until(loop, 1);
    CHECK_EQ(ops[0].calls, 1);
    CHECK_EQ(ops[0].res, 0);

    /* Discard: the range reads back as zeros, neighbours intact. */
    completed = 0;
    ops[1].calls = 0;
    xbd_aio_discard(io, &ops[1].aio, fd, false, false, 4096, 8192, done);
    run_until(loop, 1);
    CHECK_EQ(ops[1].calls, 1);
    CHECK_EQ(ops[1].res, 0);
    CHECK(pread(fd, back, 1024, 4096) == 1024);
    for (i = 0; i < 1024; i++)
        if (back[i])
            break;
    CHECK_EQ(i, 1024);
    CHECK(pread(fd, back, 1024, 12288) == 1024 && back[0] == (12 & 0xff));

    /* Into the end of the file: 512 bytes exist, 1024 asked for. */
    completed = 0;
    target = NIO * 1024 - 512;
    ops[2].calls = 0;
    ops[2].iov[0] = (struct iovec){ buf[2][0], 512 };
    ops[2].iov[1] = (struct iovec){ buf[2][1], 512 };
    xbd_aio_readv(io, &ops[2].aio, fd, ops[2].iov, 2, (uint64_t)target, done);
    run_until(loop, 1);
    CHECK_EQ(ops[2].calls, 1);
    CHECK_EQ(ops[2].res, -EIO);
    CHECK_EQ(ops[2].aio.done_bytes, 512);   /* the short part was taken */

    /* A bad fd is reported through done(), not lost. */
    completed = 0;
    ops[3].calls = 0;
    ops[3].iov[0] = (struct iovec){ buf[3][0], 512 };
    xbd_aio_readv(io, &ops[3].aio, 12345, ops[3].iov, 1, 0, done);
    run_until(loop, 1);
    CHECK_EQ(ops[3].calls, 1);
    CHECK_EQ(ops[3].res, -EBADF);

    /* An idle engine does not keep the loop alive. */
    CHECK_EQ(ev_run(loop, 0), 0);
    xbd_io_engine_free(io);

    test_shares(loop, fd);
    test_discard_chunks(loop);
    ev_loop_destroy(loop);
    close(fd);
    return check_result("test-aio");
}
