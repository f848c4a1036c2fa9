/*
 * test-nowait.c - a read/write that would block inside io_submit() must
 * not hold the event loop (issue 10, gap 1: a discarder's O_DIRECT writes
 * into punched holes blocked io_submit() on ext4 for up to 0.16 s).
 *
 * Device A is a loop device over a file on an ext4 image frozen with
 * FIFREEZE, its request queue cut to 4 tags: its first 4 writes take the
 * tags and wait in the loop driver until the thaw, and the 5th, submitted
 * without RWF_NOWAIT, waits inside io_submit() for a tag, i.e. the whole
 * loop stops.  With RWF_NOWAIT the kernel answers EAGAIN instead and the
 * engine hands those writes to the worker pool.  Device C's read, queued
 * after A's 16 writes, must then complete while A's storage is still
 * frozen.  A watchdog thread thaws after 20 s so that a failure ends
 * (and is told apart: the read completed only after the watchdog).
 * After the thaw every write completes whole and its data is on disk; then
 * writes into the holes of a sparse image there are submitted by workers
 * and transferred asynchronously (sparse_writes).
 *
 * Needs root (loop devices, mount, FIFREEZE, sysfs); skipped (77)
 * otherwise or when the queue depth cannot be set.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include "check.h"
#include "engine-test.h"
#include "io_aio.h"

#define NWRITES 16
#define NSPARSE 32

/* The watchdog: thaws after 20 s unless told to stop. */
static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond = PTHREAD_COND_INITIALIZER;
static bool wd_stop, wd_fired;
static int wd_fd = -1;

static void *watchdog(void *arg)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&wd_lock);
    while (!wd_stop && pthread_cond_timedwait(&wd_cond, &wd_lock, &until) != ETIMEDOUT)
        ;
    if (!wd_stop) {
        wd_fired = true;
        ioctl(wd_fd, FITHAW, 0);
    }
    pthread_mutex_unlock(&wd_lock);
    return arg;
}

static bool watchdog_fired(void)
{
    bool f;

    pthread_mutex_lock(&wd_lock);
    f = wd_fired;
    pthread_mutex_unlock(&wd_lock);
    return f;
}

static void watchdog_stop(void)
{
    pthread_mutex_lock(&wd_lock);
    wd_stop = true;
    pthread_cond_signal(&wd_cond);
    pthread_mutex_unlock(&wd_lock);
}

static int set_depth(const char *dev, unsigned depth)
{
    char path[256];
    FILE *f;
    int ok;

    snprintf(path, sizeof(path), "/sys/block/%s/queue/nr_requests", strrchr(dev, '/') + 1);
    f = fopen(path, "w");
    if (!f)
        return -1;
    ok = fprintf(f, "%u\n", depth) > 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static void *page(int fill)
{
    void *p;

    if (posix_memalign(&p, 4096, 4096))
        abort();
    memset(p, fill, 4096);
    return p;
}

/* Free the engine, which logs an error if it still counts I/O in flight,
 * being submitted, queued or in the pool: after every I/O completed, a
 * count left over is a leak (a kernel-context slot lost for good). */
static void free_engine_idle(struct xbd_io_engine *io)
{
    char path[] = "/tmp/xbd-nowait-log.XXXXXX", buf[512] = "";
    int fd = mkstemp(path), saved = dup(2);
    ssize_t n;

    CHECK(fd >= 0 && saved >= 0);
    unlink(path);
    fflush(stderr);
    dup2(fd, 2);
    xbd_io_engine_free(io);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    if (n > 0)
        fputs(buf, stderr);
    CHECK(strstr(buf, "I/O engine freed") == NULL);
}

/* Writes into the holes of a fresh sparse image on ext4 (the thawed
 * filesystem in dir/mnt): under RWF_NOWAIT the kernel says each would
 * block (ext4 must allocate), and a worker only submits it without the
 * flag; the kernel transfers it asynchronously.  Every write completes
 * whole with its data, and no worker did a transfer itself. */
static void sparse_writes(struct ev_loop *loop, struct xbd_io_engine *io, const char *dir)
{
    static struct op w[NSPARSE];
    static struct xbd_aio_share_stats st;
    struct xbd_aio_queue *q = xbd_aio_queue_new(io, &st, &st);
    unsigned char *buf = page(0), *want = page(0);
    char path[256];
    int fd, i, done;
    double t0;

    snprintf(path, sizeof(path), "%s/mnt/sparse", dir);
    fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0600);
    CHECK(q != NULL && fd >= 0 && ftruncate(fd, 16 << 20) == 0);
    for (i = 0; i < NSPARSE; i++) {
        w[i].iov = (struct iovec){ page(0x60 + i), 4096 };
        xbd_aio_bind(&w[i].aio, q);
        xbd_aio_writev(io, &w[i].aio, fd, &w[i].iov, 1, (uint64_t)i << 18, op_done);
    }
    t0 = ev_time();
    do {
        ev_run(loop, EVRUN_ONCE);
        for (done = 0, i = 0; i < NSPARSE; i++)
            done += w[i].calls;
    } while (done < NSPARSE && ev_time() - t0 < 30);
    for (i = 0; i < NSPARSE; i++) {
        CHECK_EQ(w[i].calls, 1);
        CHECK_EQ(w[i].res, 4096l);
        memset(want, 0x60 + i, 4096);
        CHECK(pread(fd, buf, 4096, (off_t)i << 18) == 4096);
        CHECK(memcmp(buf, want, 4096) == 0);
        free(w[i].iov.iov_base);
    }
    printf("sparse image: %llu of %d writes would have blocked, %llu of them only "
           "submitted by a worker\n", (unsigned long long)st.offloaded, NSPARSE,
           (unsigned long long)st.worker_submitted);
    CHECK(st.offloaded > 0);
    CHECK_EQ(st.worker_submitted, st.offloaded);
    xbd_aio_queue_free(q);
    close(fd);
    free(buf);
    free(want);
}

int main(void)
{
    static struct op wr[NWRITES], rd;
    static struct xbd_aio_share_stats sta;
    char dir[] = "/tmp/xbd-nowait.XXXXXX", path[256], dev[64];
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct xbd_io_engine *io;
    struct xbd_aio_queue *qa, *qc;
    unsigned char *rbuf = page(0), *check = page(0);
    int dev_a, dev_c, dfd, nfd, i, wdone;
    pthread_t wd;
    double t0;
    ev_timer tick;

    if (geteuid() != 0 || !mkdtemp(dir))
        return 77;
    if (sh("truncate -s 64M @/img && mkfs.ext4 -q -F @/img && mkdir @/mnt", dir, NULL, 0) ||
        sh("mount -o loop @/img @/mnt && truncate -s 64M @/mnt/back", dir, NULL, 0) ||
        sh("losetup -f --show @/mnt/back", dir, dev, sizeof(dev)) || !strchr(dev, '/') ||
        set_depth(dev, 4) < 0) {
        printf("cannot set up a frozen loop device with 4 tags: skipped\n");
        if (strchr(dev, '/'))
            sh("losetup -d @", dev, NULL, 0);
        sh("umount @/mnt; rm -rf @", dir, NULL, 0);
        return 77;
    }
    snprintf(path, sizeof(path), "%s/mnt", dir);
    wd_fd = open(path, O_RDONLY | O_DIRECTORY);
    dfd = open(dev, O_RDWR | O_DIRECT);
    snprintf(path, sizeof(path), "%s/plain", dir);
    nfd = open(path, O_RDWR | O_CREAT, 0600);
    CHECK(wd_fd >= 0 && dfd >= 0 && nfd >= 0);
    memset(check, 0x5a, 4096);
    CHECK(pwrite(nfd, check, 4096, 0) == 4096);

    ev_timer_init(&tick, wake_tick_cb, 0.05, 0.05);
    ev_timer_start(loop, &tick);
    io = xbd_io_engine_new(loop);
    CHECK(io != NULL);
    qa = xbd_aio_queue_new(io, &dev_a, &sta);
    qc = xbd_aio_queue_new(io, &dev_c, NULL);

    CHECK(ioctl(wd_fd, FIFREEZE, 0) == 0);
    CHECK(pthread_create(&wd, NULL, watchdog, NULL) == 0);
    for (i = 0; i < NWRITES; i++) {
        wr[i].iov = (struct iovec){ page(0x30 + i), 4096 };
        xbd_aio_bind(&wr[i].aio, qa);
        /* 1 MiB apart: no two merge into one request. */
        xbd_aio_writev(io, &wr[i].aio, dfd, &wr[i].iov, 1, (uint64_t)i << 20, op_done);
    }
    /* A few turns: the writes go to the kernel, those without a tag come
     * back EAGAIN and go to the pool (where two block, the rest wait). */
    for (i = 0; i < 5; i++)
        ev_run(loop, EVRUN_NOWAIT);

    rd.iov = (struct iovec){ rbuf, 4096 };
    xbd_aio_bind(&rd.aio, qc);
    xbd_aio_readv(io, &rd.aio, nfd, &rd.iov, 1, 0, op_done);
    t0 = ev_time();
    while (!rd.calls && ev_time() - t0 < 30)
        ev_run(loop, EVRUN_ONCE);
    wdone = 0;
    for (i = 0; i < NWRITES; i++)
        wdone += wr[i].calls;
    printf("device C's read %s while device A's storage was frozen "
           "(%d of A's %d writes completed by then)\n",
           rd.calls && !watchdog_fired() ? "completed" : "did NOT complete",
           wdone, NWRITES);
    CHECK_EQ(rd.calls, 1);
    CHECK(!watchdog_fired());
    CHECK_EQ(rd.res, 4096l);
    CHECK(memcmp(rbuf, check, 4096) == 0);
    CHECK_EQ(wdone, 0);

    /* Let go: every write completes whole, some of them by a worker. */
    watchdog_stop();
    pthread_join(wd, NULL);
    ioctl(wd_fd, FITHAW, 0);
    t0 = ev_time();
    do {
        ev_run(loop, EVRUN_ONCE);
        for (wdone = 0, i = 0; i < NWRITES; i++)
            wdone += wr[i].calls;
    } while (wdone < NWRITES && ev_time() - t0 < 30);
    for (i = 0; i < NWRITES; i++) {
        CHECK_EQ(wr[i].calls, 1);
        CHECK_EQ(wr[i].res, 4096l);
        memset(check, 0x30 + i, 4096);
        CHECK(pread(dfd, rbuf, 4096, (off_t)i << 20) == 4096);
        CHECK(memcmp(rbuf, check, 4096) == 0);
    }
    printf("device A: %llu write(s) run by the worker pool\n", (unsigned long long)sta.offloaded);
    CHECK(sta.offloaded > 0);

    sparse_writes(loop, io, dir);

    xbd_aio_queue_free(qa);
    xbd_aio_queue_free(qc);
    free_engine_idle(io);
    ev_timer_stop(loop, &tick);
    ev_loop_destroy(loop);
    for (i = 0; i < NWRITES; i++)
        free(wr[i].iov.iov_base);
    free(rbuf);
    free(check);
    close(dfd);
    close(nfd);
    close(wd_fd);
    sh("losetup -d @", dev, NULL, 0);
    sh("umount @/mnt; rm -rf @", dir, NULL, 0);
    return check_result("test-nowait");
}
