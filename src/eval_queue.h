/*
 * eval_queue.h - device evaluations, a bounded number per loop iteration.
 *
 * Every xenstore event on a device only asks for an evaluation, which
 * re-reads the keys it needs: several synchronous xenstore round trips,
 * more on a connect.  The requests wait here in FIFO order, each device
 * at most once (a burst of events on one device costs one evaluation),
 * and one loop iteration runs at most XBD_EVAL_BUDGET of them before the
 * loop polls again: a guest rewriting its nodes in a tight loop gets one
 * evaluation per turn, behind every other device waiting, and the rings
 * and the other guests' I/O are served between turns.
 */
#ifndef XENBLKD_EVAL_QUEUE_H
#define XENBLKD_EVAL_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <ev.h>

#define XBD_EVAL_BUDGET 4u

struct xbd_eval_node;
typedef void xbd_eval_fn(struct xbd_eval_node *n);

struct xbd_eval_node {
    struct xbd_eval_node *next;
    bool queued;
    xbd_eval_fn *fn;
};

struct xbd_eval_queue {
    struct ev_loop *loop;
    struct xbd_eval_node *head, *tail;
    ev_timer run_w;             /* zero timer: runs in the next iteration */
    uint64_t done, deferred;
};

void xbd_eval_queue_init(struct xbd_eval_queue *q, struct ev_loop *loop);
void xbd_eval_queue_fini(struct xbd_eval_queue *q);
void xbd_eval_node_init(struct xbd_eval_node *n, xbd_eval_fn *fn);
/* Ask for n's evaluation (once, however often asked before it runs). */
void xbd_eval_queue_push(struct xbd_eval_queue *q, struct xbd_eval_node *n);
/* Forget n (it is being freed). */
void xbd_eval_queue_remove(struct xbd_eval_queue *q, struct xbd_eval_node *n);

#endif
