/*
 * eval_queue.c - FIFO of device evaluations with a budget per loop
 * iteration (see eval_queue.h).
 */
#include "config.h"

#include <stddef.h>
#include <time.h>

#include "eval_queue.h"

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static double mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void arm(struct xbd_eval_queue *q)
{
    /* A zero timer, not an ev_idle: idle watchers never run while rings
     * keep the loop busy, and a device must not wait for quiet. */
    if (q->head && !ev_is_active(&q->run_w)) {
        ev_timer_set(&q->run_w, 0., 0.);
        ev_timer_start(q->loop, &q->run_w);
    }
}

static void run_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xbd_eval_queue *q = container_of(w, struct xbd_eval_queue, run_w);
    double t0 = mono();

    ev_timer_stop(loop, w);
    for (unsigned i = 0; q->head && i < XBD_EVAL_BUDGET; i++) {
        struct xbd_eval_node *n = q->head;

        if (i && mono() - t0 >= XBD_EVAL_SLICE)
            break;

        q->head = n->next;
        if (!q->head)
            q->tail = NULL;
        n->next = NULL;
        n->queued = false;
        q->done++;
        /* May free n, push n (to the back) or push others. */
        n->fn(n);
    }
    if (q->head)
        q->deferred++;
    arm(q);
}

void xbd_eval_queue_init(struct xbd_eval_queue *q, struct ev_loop *loop)
{
    q->loop = loop;
    q->head = q->tail = NULL;
    q->done = q->deferred = 0;
    ev_timer_init(&q->run_w, run_cb, 0., 0.);
}

void xbd_eval_queue_fini(struct xbd_eval_queue *q)
{
    ev_timer_stop(q->loop, &q->run_w);
    while (q->head)
        xbd_eval_queue_remove(q, q->head);
}

static void enqueue(struct xbd_eval_queue *q, struct xbd_eval_node *n);

static void delay_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xbd_eval_node *n = container_of(w, struct xbd_eval_node, delay_w);

    n->tokens = n->tokens < 1 ? 0 : n->tokens - 1;
    n->stamp = mono();
    enqueue(n->q, n);
}

void xbd_eval_node_init(struct xbd_eval_node *n, xbd_eval_fn *fn)
{
    n->next = NULL;
    n->queued = false;
    n->fn = fn;
    n->q = NULL;
    n->tokens = XBD_EVAL_BURST;
    n->stamp = 0;
    ev_timer_init(&n->delay_w, delay_cb, 0., 0.);
}

/* A token for one more evaluation now, else when one will be there. */
static bool take_token(struct xbd_eval_node *n, double *wait)
{
    double now = mono();

    if (n->stamp)
        n->tokens += (now - n->stamp) * XBD_EVAL_RATE;
    if (n->tokens > XBD_EVAL_BURST)
        n->tokens = XBD_EVAL_BURST;
    n->stamp = now;
    if (n->tokens >= 1) {
        n->tokens--;
        return true;
    }
    *wait = (1 - n->tokens) / XBD_EVAL_RATE;
    return false;
}

void xbd_eval_queue_push(struct xbd_eval_queue *q, struct xbd_eval_node *n)
{
    double wait;

    /* Waiting for a token includes a delay timer that has expired but
     * whose callback has not run yet: libev stops an expired timer before
     * it invokes the iteration's callbacks, and one that runs first (a
     * snapshot back from the xenstore thread, a watch event) may kick this
     * device.  Queued here, delay_cb would append it a second time,
     * cutting off every node queued after its first place (they would
     * never run again). */
    if (n->queued || ev_is_active(&n->delay_w) || ev_is_pending(&n->delay_w))
        return;
    n->q = q;
    if (!take_token(n, &wait)) {
        q->delayed++;
        ev_timer_set(&n->delay_w, wait, 0.);
        ev_timer_start(q->loop, &n->delay_w);
        return;
    }
    enqueue(q, n);
}

static void enqueue(struct xbd_eval_queue *q, struct xbd_eval_node *n)
{
    n->queued = true;
    n->next = NULL;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    arm(q);
}

void xbd_eval_queue_remove(struct xbd_eval_queue *q, struct xbd_eval_node *n)
{
    struct xbd_eval_node *prev = NULL;

    ev_timer_stop(q->loop, &n->delay_w);
    if (!n->queued)
        return;
    for (struct xbd_eval_node *p = q->head; p; prev = p, p = p->next) {
        if (p != n)
            continue;
        if (prev)
            prev->next = n->next;
        else
            q->head = n->next;
        if (q->tail == n)
            q->tail = prev;
        break;
    }
    n->next = NULL;
    n->queued = false;
}
