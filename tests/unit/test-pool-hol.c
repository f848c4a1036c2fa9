/*
 * test-pool-hol.c - the worker pool held by two devices must not stall a
 * third device's reads (review finding: head-of-line blocking behind a
 * pooled job in src/io_aio.c serve()).
 *
 * Device A has 2 discards held in the pool, B and D one each (pool_share
 * 2 per device, XBD_POOL_THREADS = 5 workers kept: 4 held).  The discards are
 * held deterministically: their file is on an ext4 image frozen with
 * FIFREEZE, where fallocate() waits in sb_start_write until the thaw.
 * D then queues a second held discard, and device C a discard (on an
 * ordinary file) and a read behind it.
 * - The read needs no pool job: it must complete whatever the pool holds
 *   (serve() once looked at the head of C's queue only, a pooled discard
 *   waiting for the pool, so C's read waited for A and B).
 * - C's discard must complete too: D's second job, queued first, takes
 *   the last of the 5 workers, and the pool starts one more for C's (the
 *   pool grows while every worker is busy, 2 per device; before, with 4
 *   workers, C's discard waited for the thaw: devices hung in the pool
 *   stalled every other disk's discards, flushes and writes into holes).
 *   test-pool-share hangs 40 devices.
 *
 * Needs root (loop mount, FIFREEZE); skipped (77) otherwise.  The frozen
 * file system is always thawed before the engine is freed (its free joins
 * the workers).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include "check.h"
#include "engine-test.h"
#include "io_aio.h"

int main(void)
{
    static struct op held[5], dc, rd;
    static unsigned char buf[4096];
    char dir[] = "/tmp/xbd-pool-hol.XXXXXX";
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct xbd_io_engine *io;
    struct xbd_aio_queue *qa, *qb, *qc, *qd, *owner[5];
    int dev_a, dev_b, dev_c, dev_d, mfd, ffd, nfd;
    double t0;
    ev_timer tick;

    if (held_fs_setup(dir, &ffd, &mfd, &nfd))
        return 77;
    CHECK(ffd >= 0 && mfd >= 0 && nfd >= 0);
    memset(buf, 0x5a, sizeof(buf));
    CHECK(pwrite(nfd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf));

    ev_timer_init(&tick, wake_tick_cb, 0.05, 0.05);
    ev_timer_start(loop, &tick);
    io = xbd_io_engine_new(loop);
    CHECK(io != NULL);
    qa = xbd_aio_queue_new(io, &dev_a, NULL);
    qb = xbd_aio_queue_new(io, &dev_b, NULL);
    qc = xbd_aio_queue_new(io, &dev_c, NULL);
    qd = xbd_aio_queue_new(io, &dev_d, NULL);
    owner[0] = owner[1] = qa;
    owner[2] = qb;
    owner[3] = owner[4] = qd;

    CHECK(ioctl(mfd, FIFREEZE, 0) == 0);
    for (int i = 0; i < 4; i++) {
        xbd_aio_bind(&held[i].aio, owner[i]);
        xbd_aio_discard(io, &held[i].aio, ffd, false, false, (uint64_t)i << 20, 4096, op_done);
    }
    /* One iteration hands the four jobs to the workers (one left). */
    ev_run(loop, EVRUN_NOWAIT);
    /* D's second, queued before C's work. */
    xbd_aio_bind(&held[4].aio, qd);
    xbd_aio_discard(io, &held[4].aio, ffd, false, false, 4ull << 20, 4096, op_done);

    xbd_aio_bind(&dc.aio, qc);
    xbd_aio_discard(io, &dc.aio, nfd, false, false, 65536, 4096, op_done);
    rd.iov = (struct iovec){ buf, sizeof(buf) };
    memset(buf, 0, sizeof(buf));
    xbd_aio_bind(&rd.aio, qc);
    xbd_aio_readv(io, &rd.aio, nfd, &rd.iov, 1, 0, op_done);

    /* The read needs no worker: it completes (in a few ms) whatever the
     * pool holds.  Bounded wait, for the failure case only. */
    t0 = ev_time();
    while (!rd.calls && ev_time() - t0 < 3)
        ev_run(loop, EVRUN_ONCE);
    printf("device C's read %s while devices A, B and D hold the pool\n",
           rd.calls ? "completed" : "did NOT complete");
    CHECK_EQ(rd.calls, 1);
    CHECK_EQ(rd.res, (long)sizeof(buf));
    t0 = ev_time();
    while (!dc.calls && ev_time() - t0 < 3)
        ev_run(loop, EVRUN_ONCE);
    printf("device C's discard %s while devices A, B and D hold the pool\n",
           dc.calls ? "completed" : "did NOT complete");
    CHECK_EQ(dc.calls, 1);
    CHECK_EQ(dc.res, 0);
    CHECK_EQ(held[4].calls, 0);

    /* Let go, then everything completes. */
    CHECK(ioctl(mfd, FITHAW, 0) == 0);
    t0 = ev_time();
    while ((held[0].calls + held[1].calls + held[2].calls + held[3].calls + held[4].calls +
            dc.calls + rd.calls) < 7 && ev_time() - t0 < 10)
        ev_run(loop, EVRUN_ONCE);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(held[i].res, 0);
    CHECK_EQ(dc.res, 0);
    CHECK_EQ(rd.calls, 1);
    xbd_aio_queue_free(qa);
    xbd_aio_queue_free(qb);
    xbd_aio_queue_free(qc);
    xbd_aio_queue_free(qd);
    xbd_io_engine_free(io);
    ev_timer_stop(loop, &tick);
    ev_loop_destroy(loop);
    close(ffd);
    close(mfd);
    close(nfd);
    held_fs_done(dir);
    return check_result("test-pool-hol");
}
