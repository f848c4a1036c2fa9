/*
 * eval_queue.h - device evaluations, a bounded number per loop iteration.
 *
 * Every xenstore event on a device only asks for an evaluation, which
 * re-reads the keys it needs: several xenstore round trips, more on a
 * connect, made by the xenstore thread (xs_worker.h, dev_snapshot.h)
 * before the evaluation runs on the loop.  The requests wait here in FIFO order, each device
 * at most once (a burst of events on one device costs one evaluation),
 * and one loop iteration runs at most XBD_EVAL_BUDGET of them, and no
 * more once XBD_EVAL_SLICE seconds went into them, before the loop polls
 * again: a guest rewriting its nodes in a tight loop gets one evaluation
 * per turn, behind every other device waiting, and the rings and the
 * other guests' I/O are served between turns.  A turn here now only
 * asks the xenstore thread for the evaluations' snapshots; each
 * evaluation runs when its snapshot is back, at most XBD_XS_DONE_BATCH
 * per loop wake-up (xs_worker.c).  The queue still orders evaluations
 * fairly across devices and bounds how much xenstore work one guest can
 * ask for.
 *
 * And each device has a token bucket of evaluations (XBD_EVAL_RATE per
 * second, bursts of XBD_EVAL_BURST): past it, its next evaluation waits
 * for a token.  Nothing is lost by waiting: an evaluation reads what the
 * keys say when it runs.  A device connecting or closing needs a handful
 * of evaluations; only a storm meets the limit.
 */
#ifndef XENBLKD_EVAL_QUEUE_H
#define XENBLKD_EVAL_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <ev.h>

#define XBD_EVAL_BUDGET 4u
#define XBD_EVAL_SLICE  0.002   /* s */
#define XBD_EVAL_RATE   10.0    /* per second and device */
#define XBD_EVAL_BURST  20.0

struct xbd_eval_node;
typedef void xbd_eval_fn(struct xbd_eval_node *n);

struct xbd_eval_queue;

struct xbd_eval_node {
    struct xbd_eval_node *next;
    bool queued;
    xbd_eval_fn *fn;
    struct xbd_eval_queue *q;   /* set by the first push */
    double tokens, stamp;       /* rate limit; stamp 0: full bucket */
    ev_timer delay_w;           /* waiting for a token */
};

struct xbd_eval_queue {
    struct ev_loop *loop;
    struct xbd_eval_node *head, *tail;
    ev_timer run_w;             /* zero timer: runs in the next iteration */
    uint64_t done;              /* evaluations run */
    uint64_t deferred;          /* turns that left evaluations for the next one */
    uint64_t delayed;           /* evaluations that waited for a token */
};

void xbd_eval_queue_init(struct xbd_eval_queue *q, struct ev_loop *loop);
void xbd_eval_queue_fini(struct xbd_eval_queue *q);
void xbd_eval_node_init(struct xbd_eval_node *n, xbd_eval_fn *fn);
/* Ask for n's evaluation (once, however often asked before it runs). */
void xbd_eval_queue_push(struct xbd_eval_queue *q, struct xbd_eval_node *n);
/* Forget n (it is being freed): dequeued, no delayed push pending. */
void xbd_eval_queue_remove(struct xbd_eval_queue *q, struct xbd_eval_node *n);

#endif
