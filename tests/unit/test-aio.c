/*
 * test-aio.c - the libaio engine (src/io_aio.c) on its own: vectored reads
 * and writes at offsets, more I/Os than one io_submit batch, fdatasync,
 * discard (hole punched), and a transfer that runs into the end of the
 * file: the engine resubmits the rest after the short completion and then
 * reports -EIO instead of hanging or claiming success.
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
    ev_loop_destroy(loop);
    close(fd);
    return check_result("test-aio");
}
