/*
 * test-nowait-refused.c - a backing store that refuses RWF_NOWAIT (a
 * tmpfs file: io_submit() answers EOPNOTSUPP) is still served: the
 * engine notes the refusal once per direction for that store, logs it
 * once, and, the store being in memory (asked by the worker that runs
 * the first refused I/O), submits its reads and writes from the loop
 * without the flag from then on: only that first one ran in the pool.
 * The test asks the kernel itself first (preadv2/pwritev2 with RWF_NOWAIT
 * on the same file, the same check io_submit() makes) and expects a log
 * line for each direction it refuses; skipped (77) only where the kernel
 * accepts the flag on /dev/shm for both.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>

#include "check.h"
#include "engine-test.h"
#include "io_aio.h"
#include "xenblkd/log.h"

/* Whether the kernel refuses RWF_NOWAIT on fd for writes (w) or reads:
 * 1 refused (EOPNOTSUPP; EINVAL: a kernel that does not know the flag),
 * 0 accepted (EAGAIN too: the flag is understood, the I/O would block),
 * -1 some other error.  Beyond the 3 pages the engine writes. */
static int nowait_refused(int fd, bool w)
{
    static char buf[4096];
    struct iovec iov = { buf, sizeof(buf) };
    ssize_t n = w ? pwritev2(fd, &iov, 1, 3 * 4096, RWF_NOWAIT)
                  : preadv2(fd, &iov, 1, 3 * 4096, RWF_NOWAIT);

    if (n >= 0 || errno == EAGAIN)
        return 0;
    if (errno == EOPNOTSUPP || errno == EINVAL)
        return 1;
    perror(w ? "pwritev2(RWF_NOWAIT)" : "preadv2(RWF_NOWAIT)");
    return -1;
}

static void run_one(struct ev_loop *loop, struct op *o)
{
    double t0 = ev_time();

    while (!o->calls && ev_time() - t0 < 10)
        ev_run(loop, EVRUN_ONCE);
}

int main(void)
{
    char path[] = "/dev/shm/xbd-nowait-refused.XXXXXX";
    static char data[3][4096], back[4096];
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct xbd_io_engine *io;
    struct xbd_aio_queue *q;
    struct xbd_aio_share_stats st = { 0 };
    FILE *log = tmpfile();
    int fd = mkstemp(path), saved = dup(2), dev, i, refuses_w, refuses_r;

    if (fd < 0 || !log)
        return 77;
    unlink(path);
    refuses_w = nowait_refused(fd, true);
    refuses_r = nowait_refused(fd, false);
    CHECK(refuses_w >= 0 && refuses_r >= 0);
    if (refuses_w == 0 && refuses_r == 0) {
        printf("the kernel accepts RWF_NOWAIT on /dev/shm here: nothing to test\n");
        return 77;
    }
    printf("the kernel refuses RWF_NOWAIT on /dev/shm for%s%s\n",
           refuses_r > 0 ? " reads" : "", refuses_w > 0 ? " writes" : "");
    fflush(stderr);
    dup2(fileno(log), 2);
    xbd_log_init(true, XBD_LOG_INFO);
    io = xbd_io_engine_new(loop);
    q = io ? xbd_aio_queue_new(io, &dev, &st) : NULL;
    for (i = 0; q && i < 3; i++) {
        struct op w = { .iov = { data[i], sizeof(data[i]) } }, r = { .iov = { back, 4096 } };

        memset(data[i], 'a' + i, sizeof(data[i]));
        xbd_aio_bind(&w.aio, q);
        xbd_aio_writev(io, &w.aio, fd, &w.iov, 1, (uint64_t)i * 4096, op_done);
        run_one(loop, &w);
        xbd_aio_bind(&r.aio, q);
        xbd_aio_readv(io, &r.aio, fd, &r.iov, 1, (uint64_t)i * 4096, op_done);
        run_one(loop, &r);
        CHECK_EQ(w.res, 4096);
        CHECK_EQ(r.res, 4096);
        CHECK(memcmp(back, data[i], 4096) == 0);
    }
    fflush(stderr);
    dup2(saved, 2);
    CHECK(q != NULL);
    printf("log: %u line(s) about RWF_NOWAIT reads, %u about writes\n",
           count_lines(log, "refuses RWF_NOWAIT reads"),
           count_lines(log, "refuses RWF_NOWAIT writes"));
    /* Once per direction the kernel refuses, whatever it answered. */
    CHECK_EQ(count_lines(log, "refuses RWF_NOWAIT reads"), refuses_r > 0);
    CHECK_EQ(count_lines(log, "refuses RWF_NOWAIT writes"), refuses_w > 0);
    /* tmpfs: in memory, so the loop does what it refuses (io_aio.c
     * needs_worker); a worker ran only the I/O that asked. */
    printf("%u I/O(s) ran in the worker pool\n", (unsigned)st.offloaded);
    CHECK_EQ(count_lines(log, "backing store is in memory"), 1);
    CHECK_EQ(st.offloaded, 1);
    xbd_aio_queue_free(q);
    xbd_io_engine_free(io);
    ev_loop_destroy(loop);
    close(fd);
    return check_result("test-nowait-refused");
}
