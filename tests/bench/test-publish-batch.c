/*
 * test-publish-batch.c - responses are published once per loop iteration
 * (src/ring.c publish_responses), never lost:
 * - the completions of one batch, delivered by the I/O engine one after
 *   the other, are not visible to the frontend while the batch is being
 *   completed, then all are, with at most one notification;
 * - they are published in the same loop iteration that completed them
 *   (no extra iteration, each a system call or more on Xen), whether the
 *   completions come from a callback of the iteration or from a prepare
 *   watcher (the engine's synchronous operations);
 * - a ring stopped with responses written but not yet published (the
 *   handover path) publishes them before it goes;
 * - a completion passes over the ring once more, in the iteration that
 *   completed it and never in a later one (a zero timer per completion
 *   was a third loop iteration per request at QD 1 on real Xen): a
 *   request waiting that the backend was not told about is taken at once.
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

struct completer {
    struct be *b;
    unsigned done;
};

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

static void complete_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct completer *c = w->data;

    (void)loop;
    (void)revents;
    c->done = fake_io_complete(c->b->io, N);
}

static void test_same_iteration(void)
{
    struct fe f;
    struct be b;
    struct completer c = { .b = &b };
    ev_timer w;
    RING_IDX prod0;

    printf("responses are published in the iteration that completed them\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 2, .persistent = true))
        return;
    /* Completed by a callback of the loop, as the aio eventfd's is. */
    queue_reads(&f, 300);
    run_until_dispatched(&b, N);
    prod0 = f.fr.sring->rsp_prod;
    ev_timer_init(&w, complete_cb, 0., 0.);
    w.data = &c;
    ev_timer_start(b.loop, &w);
    ev_run(b.loop, EVRUN_ONCE);         /* one iteration: the timer's */
    CHECK_EQ(c.done, N);
    CHECK_EQ(f.fr.sring->rsp_prod, prod0 + N);
    expect_all(&b, &f, N, BLKIF_RSP_OKAY);
    /* Completed from a prepare watcher (fake-io's auto mode: the next
     * iteration's, before the loop would block): published in that
     * same prepare round, not after a poll that may block.  A publish
     * watcher merely started there would miss the round. */
    fake_io_set_auto(b.io, true);
    prod0 = f.fr.sring->rsp_prod;
    queue_reads(&f, 400);
    w.repeat = 0.005;                   /* a tick: no iteration blocks for long */
    c.done = 0;
    ev_set_cb(&w, tick_cb);
    ev_timer_again(b.loop, &w);
    for (double t0 = ev_time(); xbd_ring_get_stats(b.ring)->rd_req < 2 * N &&
                                ev_time() - t0 < 5;)
        ev_run(b.loop, EVRUN_ONCE);     /* dispatched; completed next prepare */
    ev_timer_stop(b.loop, &w);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->rd_req, 2 * N);
    CHECK_EQ(f.fr.sring->rsp_prod, prod0);
    ev_run(b.loop, EVRUN_NOWAIT);
    CHECK_EQ(f.fr.sring->rsp_prod, prod0 + N);
    expect_all(&b, &f, N, BLKIF_RSP_OKAY);
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

/* A request on the ring the backend was not told about (no
 * notification), as one left unconsumed while the ring had no free slot. */
static void push_silently(struct fe *f)
{
    xen_wmb();
    f->fr.sring->req_prod = f->fr.req_prod_pvt;
}

#define SENTINEL ((RING_IDX)0x7e57ab1e)   /* overwritten by any pass's final check */

/* One read, completed by a timer callback of the loop (as the aio
 * eventfd's callback completes them); returns with it answered.  Just
 * before the completing iteration req_event holds SENTINEL. */
static void complete_one_read(struct be *b, struct fe *f, uint64_t id, unsigned waiting)
{
    struct completer c = { .b = b };
    ev_timer w;

    fe_rw_page(f, BLKIF_OP_READ, id, 0, 0);
    fe_push(f);
    run_until_dispatched(b, id);
    if (waiting) {
        fe_rw_page(f, BLKIF_OP_READ, id + 1, 8, 1);
        push_silently(f);
    }
    ev_timer_init(&w, complete_cb, 0., 0.);
    w.data = &c;
    ev_timer_start(b->loop, &w);
    f->fr.sring->req_event = SENTINEL;
    ev_run(b->loop, EVRUN_ONCE);
    CHECK_EQ(c.done, 1);
    CHECK_EQ(fe_pending_rsp(f), 1);
}

static void test_completion_resumes(void)
{
    struct fe f;
    struct be b;
    uint64_t id_ = 0;
    int16_t st = 0;
    uint8_t op = 0;

    printf("a completion passes over the ring in its own iteration, not later\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 2, .persistent = true))
        return;
    /* Nothing waits: the pass runs in the completing iteration (its
     * final check re-arms req_event), and no later iteration passes. */
    complete_one_read(&b, &f, 1, 0);
    CHECK_EQ(f.fr.sring->req_event, f.fr.req_prod_pvt + 1);
    f.fr.sring->req_event = SENTINEL;
    ev_run(b.loop, EVRUN_NOWAIT);
    ev_run(b.loop, EVRUN_NOWAIT);
    CHECK_EQ(f.fr.sring->req_event, SENTINEL);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->rd_req, 1);
    CHECK(fe_pop(&f, &id_, &op, &st) && id_ == 1 && st == BLKIF_RSP_OKAY);
    f.fr.sring->req_event = f.fr.req_prod_pvt + 1;
    /* A request waits, unannounced: the completion's iteration takes it. */
    complete_one_read(&b, &f, 2, 1);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->rd_req, 3);
    CHECK(fe_pop(&f, &id_, &op, &st) && id_ == 2 && st == BLKIF_RSP_OKAY);
    CHECK_EQ(fake_io_complete(b.io, 1), 1);
    expect_all(&b, &f, 1, BLKIF_RSP_OKAY);
    rig_down(&b, &f);
}

int main(int argc, char **argv)
{
    rig_init(argc, argv);
    test_batch();
    test_same_iteration();
    test_stop_publishes();
    test_completion_resumes();
    return check_result("test-publish-batch");
}
