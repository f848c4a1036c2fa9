/*
 * test-pool-share.c - however many disks' storage hangs with their jobs
 * in the worker pool, a disk holding no worker gets one (review
 * 2026-12-08: three disks on hung storage held all 5 workers, and every
 * other disk's discards, writes into holes and network-filesystem I/O
 * waited for them).
 *
 * 40 devices queue 2 discards each on an ext4 image frozen with FIFREEZE
 * (fallocate() waits in sb_start_write until the thaw): 80 jobs that hang,
 * more than the pool may ever hold (2 per device, 64 threads at most).
 * - The pool grows past its 5 threads while they are all busy: 63 jobs
 *   run at once, every device holds at least one (round-robin), and the
 *   last of the 64 is kept for a device that holds none (a device holding
 *   one does not take it).  The daemon logs that the pool is at its cap,
 *   naming the stores that hold the workers.
 * - Device E, healthy (an ordinary file), then discards twice in a row:
 *   both complete while the 63 jobs hang.  Before, with 5 workers and 3 of
 *   these devices, E's discard waited for the thaw.
 * - After the thaw every job completes and the engine is freed with
 *   nothing held (its free joins the 64 workers).
 *
 * Needs root (loop mount, FIFREEZE); skipped (77) otherwise.  The bounded
 * waits (ev_time) are for the failure case only.
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
#include "xenblkd/log.h"

#define NDEV 40

static int wait_calls(struct ev_loop *loop, const int *calls, int want)
{
    double t0 = ev_time();

    while (*calls < want && ev_time() - t0 < 5)
        ev_run(loop, EVRUN_ONCE);
    return *calls;
}

/* Workers busy, once they are want (each takes its job in its own time),
 * or after 5 s (the failure case). */
static unsigned wait_busy(struct ev_loop *loop, struct xbd_io_engine *io, unsigned want,
                          unsigned *live, unsigned *limit)
{
    double t0 = ev_time();
    unsigned busy;

    for (;;) {
        xbd_io_engine_get_workers(io, &busy, live, limit);
        if (busy >= want || ev_time() - t0 >= 5)
            return busy;
        ev_run(loop, EVRUN_ONCE);
    }
}

int main(void)
{
    static struct op held[NDEV][2], de[2];
    static struct xbd_aio_share_stats st[NDEV];
    static int dev[NDEV], dev_e;
    char dir[] = "/tmp/xbd-pool-share.XXXXXX", path[256], logbuf[8192];
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct xbd_io_engine *io;
    struct xbd_aio_queue *q[NDEV], *qe;
    unsigned busy, live, limit, holding = 0;
    int mfd, ffd, nfd, logfd, saved_err, done = 0, said = 0;
    ssize_t got;
    ev_timer tick;

    if (held_fs_setup(dir, &ffd, &mfd, &nfd))
        return 77;
    snprintf(path, sizeof(path), "%s/log", dir);
    logfd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(ffd >= 0 && mfd >= 0 && nfd >= 0 && logfd >= 0);
    /* The engine's lines go to stderr: into the file, to be read back. */
    fflush(stderr);
    saved_err = dup(2);
    CHECK(dup2(logfd, 2) == 2);
    xbd_log_init(true, XBD_LOG_INFO);

    ev_timer_init(&tick, wake_tick_cb, 0.05, 0.05);
    ev_timer_start(loop, &tick);
    io = xbd_io_engine_new(loop);
    CHECK(io != NULL);
    for (int i = 0; i < NDEV; i++)
        q[i] = xbd_aio_queue_new(io, &dev[i], &st[i]);
    qe = xbd_aio_queue_new(io, &dev_e, NULL);
    xbd_io_engine_get_workers(io, &busy, &live, &limit);
    CHECK_EQ(live, XBD_POOL_THREADS);
    CHECK_EQ(limit, XBD_POOL_MAX_THREADS);

    CHECK(ioctl(mfd, FIFREEZE, 0) == 0);
    for (int i = 0; i < NDEV; i++)
        for (int k = 0; k < 2; k++) {
            xbd_aio_bind(&held[i][k].aio, q[i]);
            xbd_aio_discard(io, &held[i][k].aio, ffd, false, false,
                            (uint64_t)(2 * i + k) << 20, 4096, op_done);
        }
    /* One iteration hands out what may go (round-robin over the queues). */
    ev_run(loop, EVRUN_NOWAIT);
    busy = wait_busy(loop, io, XBD_POOL_MAX_THREADS - 1, &live, &limit);
    printf("%u of %u workers busy, %u jobs at most, with %d devices hung\n", busy, live,
           limit, NDEV);
    CHECK_EQ(busy, XBD_POOL_MAX_THREADS - 1);
    CHECK_EQ(live, XBD_POOL_MAX_THREADS - 1);
    for (int i = 0; i < NDEV; i++)
        holding += st[i].queued < 2;
    CHECK_EQ(holding, NDEV);

    /* Device E holds none: the last worker is its, twice in a row. */
    for (int k = 0; k < 2; k++) {
        xbd_aio_bind(&de[k].aio, qe);
        xbd_aio_discard(io, &de[k].aio, nfd, false, false, 65536, 4096, op_done);
        printf("device E's discard %d %s while %d devices hold the pool\n", k + 1,
               wait_calls(loop, &de[k].calls, 1) ? "completed" : "did NOT complete", NDEV);
        CHECK_EQ(de[k].calls, 1);
        CHECK_EQ(de[k].res, 0);
    }
    xbd_io_engine_get_workers(io, &busy, &live, &limit);
    CHECK_EQ(live, XBD_POOL_MAX_THREADS);
    CHECK_EQ(busy, XBD_POOL_MAX_THREADS - 1);
    for (int i = 0; i < NDEV; i++)
        done += held[i][0].calls + held[i][1].calls;
    CHECK_EQ(done, 0);

    /* Let go: everything completes. */
    CHECK(ioctl(mfd, FITHAW, 0) == 0);
    for (int i = 0; i < NDEV; i++)
        for (int k = 0; k < 2; k++) {
            CHECK_EQ(wait_calls(loop, &held[i][k].calls, 1), 1);
            CHECK_EQ(held[i][k].res, 0);
        }
    for (int i = 0; i < NDEV; i++)
        xbd_aio_queue_free(q[i]);
    xbd_aio_queue_free(qe);
    xbd_io_engine_free(io);
    ev_timer_stop(loop, &tick);
    ev_loop_destroy(loop);

    fflush(stderr);
    dup2(saved_err, 2);
    close(saved_err);
    got = pread(logfd, logbuf, sizeof(logbuf) - 1, 0);
    logbuf[got > 0 ? got : 0] = '\0';
    fputs(logbuf, stderr);
    snprintf(path, sizeof(path), "at its cap of %u workers, held by %d disks",
             XBD_POOL_MAX_THREADS, NDEV);
    CHECK(strstr(logbuf, path) != NULL);
    snprintf(path, sizeof(path), "%s/mnt/held (", dir);
    CHECK(strstr(logbuf, path) != NULL);
    /* Said once, however often a job waited at the cap. */
    for (char *s = strstr(logbuf, "at its cap"); s; s = strstr(s + 1, "at its cap"))
        said++;
    CHECK_EQ(said, 1);
    CHECK(strstr(logbuf, "freed with") == NULL);

    close(logfd);
    close(ffd);
    close(mfd);
    close(nfd);
    held_fs_done(dir);
    return check_result("test-pool-share");
}
