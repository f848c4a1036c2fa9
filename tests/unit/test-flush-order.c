/*
 * test-flush-order.c - what a flush or barrier does to the backing store,
 * in order, on a real xbd_ring over the simulated host (tests/unit/fe.c
 * rig) with the I/O engine the test controls (tests/hostile/fake-io.c),
 * which shows each I/O the ring submits before it is performed.
 *
 * Proves:
 * - a flush or barrier carrying data is fdatasync, the write, fdatasync:
 *   what completed before is durable before the request's data can be
 *   (the order a journal's commit block relies on), and the data is
 *   durable when answered; an empty one is one fdatasync;
 * - a failed first fdatasync fails the request without writing its data;
 * - a store with no volatile cache (flush false) writes the data and
 *   answers OKAY without a sync (an EOPNOTSUPP would make Linux blkfront
 *   complete the write as done without writing it);
 * - an empty flush of a read-only disk is OKAY with no I/O; one carrying
 *   data is refused (ERROR) with no I/O.
 */
#include "config.h"

#include <stdio.h>
#include <unistd.h>

#include "check.h"
#include "fe.h"
#include "fake-io.h"
#include "io_aio.h"
#include "rig.h"

/* Complete the one queued I/O, which must be of <kind>. */
static void step(struct be *b, int kind)
{
    CHECK_EQ(fake_io_queued(b->io), 1);
    CHECK_EQ(fake_io_kind(b->io, 0), kind);
    CHECK_EQ(fake_io_complete(b->io, 1), 1);
}

static void test_data_between_syncs(uint8_t op)
{
    struct fe f;
    struct be b;

    printf("%s with data: fdatasync, write, fdatasync\n",
           op == BLKIF_OP_WRITE_BARRIER ? "barrier" : "flush");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    fe_fill(&f, 0, 31);
    fe_rw_page(&f, op, 1, 8, 0);
    fe_push(&f);
    if (op == BLKIF_OP_WRITE_BARRIER)
        wait_stat(&b, barrier_req, 1);
    else
        wait_stat(&b, flush_req, 1);
    step(&b, XBD_AIO_FDSYNC);
    step(&b, XBD_AIO_WRITEV);
    step(&b, XBD_AIO_FDSYNC);
    CHECK_EQ(fake_io_queued(b.io), 0);
    expect_one(&b, &f, 1, op, BLKIF_RSP_OKAY);
    CHECK(file_matches(&b, 8, 31));

    /* Empty: the one fdatasync. */
    fe_rw(&f, op, 2, 0, NULL, 0);
    fe_push(&f);
    if (op == BLKIF_OP_WRITE_BARRIER)
        wait_stat(&b, barrier_req, 2);
    else
        wait_stat(&b, flush_req, 2);
    step(&b, XBD_AIO_FDSYNC);
    expect_one(&b, &f, 2, op, BLKIF_RSP_OKAY);
    rig_down(&b, &f);
}

/* The first sync fails (a read-only descriptor cannot be written, so
 * give the ring one to make the write fail too if it were tried): ERROR,
 * and nothing after it is submitted. */
static void test_presync_failure(void)
{
    struct fe f;
    struct be b;
    int keep;

    printf("flush with data whose first fdatasync fails\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    fe_fill(&f, 0, 32);
    fe_rw_page(&f, BLKIF_OP_FLUSH_DISKCACHE, 1, 8, 0);
    fe_push(&f);
    wait_stat(&b, flush_req, 1);
    CHECK_EQ(fake_io_kind(b.io, 0), XBD_AIO_FDSYNC);
    /* fdatasync of a closed descriptor: EBADF. */
    keep = dup(b.bk.fd);
    close(b.bk.fd);
    CHECK_EQ(fake_io_complete(b.io, 1), 1);
    CHECK(dup2(keep, b.bk.fd) == b.bk.fd);
    close(keep);
    CHECK_EQ(fake_io_queued(b.io), 0);          /* no write after it */
    expect_one(&b, &f, 1, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_RSP_ERROR);
    CHECK(!file_matches(&b, 8, 32));
    rig_down(&b, &f);
}

static void test_no_cache(void)
{
    struct fe f;
    struct be b;

    printf("no volatile cache: the data written, no sync\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    b.bk.flush = false;
    fe_fill(&f, 0, 33);
    fe_rw_page(&f, BLKIF_OP_FLUSH_DISKCACHE, 1, 8, 0);
    fe_push(&f);
    wait_stat(&b, flush_req, 1);
    step(&b, XBD_AIO_WRITEV);
    CHECK_EQ(fake_io_queued(b.io), 0);
    expect_one(&b, &f, 1, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_RSP_OKAY);
    CHECK(file_matches(&b, 8, 33));
    fe_rw(&f, BLKIF_OP_WRITE_BARRIER, 2, 0, NULL, 0);
    fe_push(&f);
    expect_one(&b, &f, 2, BLKIF_OP_WRITE_BARRIER, BLKIF_RSP_OKAY);
    CHECK_EQ(fake_io_queued(b.io), 0);
    rig_down(&b, &f);
}

static void test_readonly(void)
{
    struct fe f;
    struct be b;

    printf("read-only disk: empty flush OKAY, flush with data refused\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    b.bk.readonly = true;
    fe_rw(&f, BLKIF_OP_FLUSH_DISKCACHE, 1, 0, NULL, 0);
    fe_push(&f);
    expect_one(&b, &f, 1, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_RSP_OKAY);
    fe_fill(&f, 0, 34);
    fe_rw_page(&f, BLKIF_OP_FLUSH_DISKCACHE, 2, 8, 0);
    fe_push(&f);
    expect_one(&b, &f, 2, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_RSP_ERROR);
    CHECK_EQ(fake_io_queued(b.io), 0);
    CHECK(!file_matches(&b, 8, 34));
    rig_down(&b, &f);
}

int main(int argc, char **argv)
{
    rig_init(argc, argv);
    test_data_between_syncs(BLKIF_OP_FLUSH_DISKCACHE);
    test_data_between_syncs(BLKIF_OP_WRITE_BARRIER);
    test_presync_failure();
    test_no_cache();
    test_readonly();
    return check_result("test-flush-order");
}
