/*
 * test-aio-ctx.c - the engine's kernel AIO contexts follow its devices
 * (src/io_aio.c ctx_follow_devices): one more context of the same size
 * each time a device's share times the devices passes their capacity,
 * batches spread over the contexts and every one of them reaped from the
 * one eventfd, every context destroyed once at the end; and when the
 * system refuses a context (fs.aio-max-nr reached: io_setup EAGAIN) one
 * warning naming the sysctl, and the devices share what exists.
 *
 * io_setup, io_submit and io_destroy are this file's: the engine linked
 * into this program calls them instead of libaio's, and they count the
 * calls and pass them to the kernel (or refuse io_setup when told).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "check.h"
#include "engine-test.h"
#include "io_aio.h"
#include "xenblkd/log.h"

#define NIO 100                 /* reads per device */
#define MAXCTX 8

static int setups, setups_ok, destroys;
static bool refuse_setup;
static io_context_t used_ctx[MAXCTX];   /* contexts io_submit took I/O into */
static int nused;

int io_setup(int nr, io_context_t *ctxp)
{
    setups++;
    if (refuse_setup)
        return -EAGAIN;
    if (syscall(__NR_io_setup, nr, ctxp) < 0)
        return -errno;
    setups_ok++;
    return 0;
}

int io_destroy(io_context_t ctx)
{
    destroys++;
    return syscall(__NR_io_destroy, ctx) < 0 ? -errno : 0;
}

int io_submit(io_context_t ctx, long nr, struct iocb *ios[])
{
    long ret = syscall(__NR_io_submit, ctx, nr, ios);
    int i;

    if (ret < 0)
        return -errno;
    for (i = 0; i < nused && used_ctx[i] != ctx; i++)
        ;
    if (i == nused && ret > 0 && nused < MAXCTX)
        used_ctx[nused++] = ctx;
    return (int)ret;
}

/* Until n of ops[] were answered, at most 10 s (a tick wakes the loop). */
static int run_until(struct ev_loop *loop, struct op *ops, int n)
{
    double t0 = ev_time();
    ev_timer tick;
    int i, answered = 0;

    ev_timer_init(&tick, wake_tick_cb, 0.05, 0.05);
    ev_timer_start(loop, &tick);
    while (ev_time() - t0 < 10) {
        for (answered = i = 0; i < n; i++)
            answered += ops[i].calls != 0;
        if (answered == n)
            break;
        ev_run(loop, EVRUN_ONCE);
    }
    ev_timer_stop(loop, &tick);
    return answered;
}

/* NIO reads of each of the ndev queues; all must complete once. */
static void read_all(struct ev_loop *loop, struct xbd_io_engine *io, int fd,
                     struct xbd_aio_queue **q, int ndev)
{
    static struct op ops[4][NIO];
    static unsigned char buf[4][NIO][512];
    int d, i;

    for (i = 0; i < NIO; i++) {
        for (d = 0; d < ndev; d++) {
            struct op *o = &ops[d][i];

            memset(o, 0, sizeof(*o));
            o->iov = (struct iovec){ buf[d][i], 512 };
            xbd_aio_bind(&o->aio, q[d]);
            xbd_aio_readv(io, &o->aio, fd, &o->iov, 1, (uint64_t)i * 512, op_done);
        }
    }
    CHECK_EQ(run_until(loop, &ops[0][0], ndev * NIO), ndev * NIO);
    for (d = 0; d < ndev; d++)
        for (i = 0; i < NIO; i++) {
            CHECK_EQ(ops[d][i].calls, 1);
            CHECK_EQ(ops[d][i].res, 512);
            CHECK_EQ(buf[d][i][7], (unsigned char)i);
        }
}

/* 1024 per device, contexts of 1024: the second device brings a second
 * context, and the reads of both devices use both contexts. */
static void test_follow(struct ev_loop *loop, int fd)
{
    struct xbd_io_engine *io;
    struct xbd_aio_queue *q[2];
    int dev_a, dev_b;

    setups = setups_ok = destroys = nused = 0;
    io = xbd_io_engine_new(loop);
    CHECK(io != NULL);
    if (!io)
        return;
    CHECK_EQ(setups_ok, 1);
    xbd_io_engine_set_limits(io, 1024, 1024);
    q[0] = xbd_aio_queue_new(io, &dev_a, NULL);
    CHECK_EQ(setups_ok, 1);             /* 1 x 1024 fits one context */
    q[1] = xbd_aio_queue_new(io, &dev_b, NULL);
    CHECK_EQ(setups_ok, 2);             /* 2 x 1024 does not */
    CHECK(q[0] && q[1]);
    read_all(loop, io, fd, q, 2);
    CHECK_EQ(nused, 2);                 /* batches went to both */
    xbd_aio_queue_free(q[0]);
    xbd_aio_queue_free(q[1]);
    /* A device gone leaves the contexts (they may hold anyone's I/O)... */
    CHECK_EQ(destroys, 0);
    xbd_io_engine_stop(io);
    xbd_io_engine_free(io);
    /* ...until the engine goes: each destroyed once. */
    CHECK_EQ(destroys, 2);
}

/* io_setup refused past the first context: one warning naming the
 * sysctl however many devices come, and every device's I/O completes
 * through the one context. */
static void test_refused(struct ev_loop *loop, int fd)
{
    char path[] = "/tmp/xbd-aio-ctx-log.XXXXXX", log[4096];
    int logfd = mkstemp(path), saved = dup(2), dev[3], i;
    struct xbd_io_engine *io;
    struct xbd_aio_queue *q[3];
    ssize_t n;
    const char *p;
    int warnings = 0;

    CHECK(logfd >= 0 && saved >= 0 && unlink(path) == 0);
    setups = setups_ok = destroys = nused = 0;
    io = xbd_io_engine_new(loop);
    CHECK(io != NULL);
    if (!io || logfd < 0 || saved < 0)
        return;
    refuse_setup = true;
    fflush(stderr);
    dup2(logfd, 2);
    xbd_io_engine_set_limits(io, 1024, 1024);
    for (i = 0; i < 3; i++)
        q[i] = xbd_aio_queue_new(io, &dev[i], NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    refuse_setup = false;
    CHECK(q[0] && q[1] && q[2]);
    CHECK_EQ(setups, 3);                /* the first, then one per device past it */
    CHECK_EQ(setups_ok, 1);
    n = pread(logfd, log, sizeof(log) - 1, 0);
    log[n > 0 ? n : 0] = '\0';
    for (p = log; (p = strstr(p, "fs.aio-max-nr")); p++)
        warnings++;
    /* The line names the limit twice: its value and the sysctl to raise. */
    CHECK_EQ(warnings, 2);
    CHECK(strstr(log, "raise the sysctl fs.aio-max-nr") != NULL);
    if (check_failures)
        fprintf(stderr, "log was:\n%s", log);
    close(logfd);
    read_all(loop, io, fd, q, 3);
    CHECK_EQ(nused, 1);
    for (i = 0; i < 3; i++)
        xbd_aio_queue_free(q[i]);
    xbd_io_engine_free(io);
    CHECK_EQ(destroys, 1);
}

int main(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    unsigned char b[NIO * 512];
    char path[] = "/tmp/xbd-aio-ctx.XXXXXX";
    int fd = mkstemp(path), i;

    xbd_log_init(true, XBD_LOG_WARN);
    for (i = 0; i < NIO; i++)
        memset(b + i * 512, i, 512);
    if (fd < 0 || unlink(path) < 0 || pwrite(fd, b, sizeof(b), 0) != (ssize_t)sizeof(b) ||
        !loop) {
        perror("setup");
        return 1;
    }
    test_follow(loop, fd);
    test_refused(loop, fd);
    close(fd);
    ev_loop_destroy(loop);
    return check_result("test-aio-ctx");
}
