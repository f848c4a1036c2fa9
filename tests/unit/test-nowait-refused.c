/*
 * test-nowait-refused.c - a backing store that refuses RWF_NOWAIT (a
 * tmpfs file: io_submit() answers EOPNOTSUPP) is still served: the
 * engine notes the refusal once per direction for that store, logs it
 * once, and submits its reads and writes without the flag from then on.
 * Skipped (77) where /dev/shm is not a tmpfs that refuses it.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "engine-test.h"
#include "io_aio.h"
#include "xenblkd/log.h"

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
    FILE *log = tmpfile();
    int fd = mkstemp(path), saved = dup(2), dev, i;

    if (fd < 0 || !log)
        return 77;
    unlink(path);
    fflush(stderr);
    dup2(fileno(log), 2);
    xbd_log_init(true, XBD_LOG_INFO);
    io = xbd_io_engine_new(loop);
    q = io ? xbd_aio_queue_new(io, &dev, NULL) : NULL;
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
    if (count_lines(log, "refuses RWF_NOWAIT") == 0 && check_failures == 0) {
        printf("/dev/shm accepts RWF_NOWAIT here: nothing to test\n");
        return 77;
    }
    printf("log: %u line(s) about RWF_NOWAIT reads, %u about writes\n",
           count_lines(log, "refuses RWF_NOWAIT reads"),
           count_lines(log, "refuses RWF_NOWAIT writes"));
    CHECK_EQ(count_lines(log, "refuses RWF_NOWAIT reads"), 1);
    CHECK_EQ(count_lines(log, "refuses RWF_NOWAIT writes"), 1);
    xbd_aio_queue_free(q);
    xbd_io_engine_free(io);
    ev_loop_destroy(loop);
    close(fd);
    return check_result("test-nowait-refused");
}
