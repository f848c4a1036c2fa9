/*
 * test-eval-queue: a device kicked while its rate-limit timer has already
 * expired but not yet run is queued once, and no other device's
 * evaluation is lost.
 *
 * libev stops an expired one-shot timer before it invokes the callbacks
 * of that loop iteration: the timer is then pending but no longer active.
 * Another callback of the same iteration (a snapshot back from the
 * xenstore thread, a watch event) may kick the device in between.  The
 * test makes that happen deterministically: its invoke-pending hook runs
 * when the loop has collected the expired timer and before any callback,
 * and kicks there.
 */
#include "config.h"

#include <ev.h>
#include <stdbool.h>

#include "check.h"
#include "eval_queue.h"

struct tnode {
    struct xbd_eval_node n;     /* first: the callback's pointer is ours */
    int runs;
};

static struct xbd_eval_queue q;
static struct tnode a, b, c;
static bool raced;

static void count_run(struct xbd_eval_node *n)
{
    ((struct tnode *)(void *)n)->runs++;
}

/* The loop's pending callbacks are collected: a's delay timer among them,
 * expired, not active any more.  Kick b, a and c before it runs. */
static void invoke_pending(struct ev_loop *loop)
{
    if (!raced && ev_is_pending(&a.n.delay_w)) {
        raced = true;
        CHECK(!ev_is_active(&a.n.delay_w));
        /* A token is there by now; make it certain, whatever the
         * clocks say, so that only the pending timer stops the kick. */
        a.n.tokens = XBD_EVAL_BURST;
        xbd_eval_queue_push(&q, &b.n);
        xbd_eval_queue_push(&q, &a.n);
        xbd_eval_queue_push(&q, &c.n);
    }
    ev_invoke_pending(loop);
}

int main(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);

    CHECK(loop != NULL);
    if (!loop)
        return check_result("test-eval-queue");
    xbd_eval_queue_init(&q, loop);
    xbd_eval_node_init(&a.n, count_run);
    xbd_eval_node_init(&b.n, count_run);
    xbd_eval_node_init(&c.n, count_run);

    /* a's bucket is empty: its kick waits for a token (delay timer). */
    a.n.tokens = 0;
    xbd_eval_queue_push(&q, &a.n);
    CHECK(ev_is_active(&a.n.delay_w));
    CHECK(!a.n.queued);
    CHECK_EQ(q.delayed, 1);

    ev_set_invoke_pending_cb(loop, invoke_pending);
    /* Returns once nothing is queued or waiting any more. */
    ev_run(loop, 0);

    CHECK(raced);
    CHECK_EQ(a.runs, 1);
    CHECK_EQ(b.runs, 1);
    CHECK_EQ(c.runs, 1);
    CHECK(q.head == NULL && q.tail == NULL);
    CHECK(!a.n.queued && !b.n.queued && !c.n.queued);

    xbd_eval_queue_fini(&q);
    ev_loop_destroy(loop);
    return check_result("test-eval-queue");
}
