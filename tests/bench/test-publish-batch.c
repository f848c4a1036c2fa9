/*
 * test-publish-batch.c - responses are published once per loop iteration
 * (src/ring.c publish_responses), never lost:
 * - the completions of one batch, delivered by the I/O engine one after
 *   the other, are not visible to the frontend while the batch is being
 *   completed, then all are, with at most one notification;
 * - a ring stopped with responses written but not yet published (the
 *   handover path) publishes them before it goes.
 * The I/O engine is tests/hostile/fake-io.c, so the test decides when
 * each batch completes.
 */
#include "config.h"

#include <stdio.h>

#include "check.h"
#include "fake-io.h"
#include "fe.h"
#include "rig.h"

#define N 32

static void run_until_dispatched(struct be *b, uint64_t n)
{
    double t0 = ev_time();

    while (xbd_ring_get_stats(b->ring)->rd_req < n && ev_time() - t0 < 5)
        run_for(b, 0.01);
    CHECK_EQ(xbd_ring_get_stats(b->ring)->rd_req, n);
}

static void queue_reads(struct fe *f, unsigned first_id)
{
    for (unsigned i = 0; i < N; i++)
        fe_rw_page(f, BLKIF_OP_READ, first_id + i, i * 8u, i);
    fe_push(f);
}

static void test_batch(void)
{
    struct fe f;
    struct be b;
    uint64_t tx0;
    RING_IDX prod0;

    printf("the responses of one completion batch are published together\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 2, .persistent = true))
        return;
    queue_reads(&f, 100);
    run_until_dispatched(&b, N);
    prod0 = f.fr.sring->rsp_prod;
    tx0 = xbd_ring_get_stats(b.ring)->evtchn_tx;
    CHECK_EQ(fake_io_complete(b.io, N), N);
    /* Every aio_done has run: nothing published in the middle. */
    CHECK_EQ(f.fr.sring->rsp_prod, prod0);
    CHECK_EQ(fe_pending_rsp(&f), 0);
    /* The loop's next iteration publishes all of them at once. */
    CHECK_EQ(run_until_rsp(&b, &f, N, 5), N);
    CHECK_EQ(f.fr.sring->rsp_prod, prod0 + N);
    CHECK(xbd_ring_get_stats(b.ring)->evtchn_tx - tx0 <= 1);
    expect_all(&b, &f, N, BLKIF_RSP_OKAY);
    fake_io_set_auto(b.io, true);
    rig_down(&b, &f);
}

static void test_stop_publishes(void)
{
    struct fe f;
    struct be b;

    printf("a ring stopped with unpublished responses publishes them\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 2, .persistent = true))
        return;
    queue_reads(&f, 200);
    run_until_dispatched(&b, N);
    CHECK_EQ(fake_io_complete(b.io, N), N);
    CHECK_EQ(fe_pending_rsp(&f), 0);
    /* Nothing in flight: the ring goes at once, without the loop. */
    be_stop(&b);
    CHECK(b.drained);
    CHECK_EQ(fe_pending_rsp(&f), N);
    expect_all(&b, &f, N, BLKIF_RSP_OKAY);
    rig_down(&b, &f);
}

int main(int argc, char **argv)
{
    rig_init(argc, argv);
    test_batch();
    test_stop_publishes();
    return check_result("test-publish-batch");
}
