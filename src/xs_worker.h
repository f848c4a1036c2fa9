/*
 * xs_worker.h - the xenstore control thread: every xenstore round trip of
 * a running daemon, off the event loop that serves the rings.
 *
 * The loop thread submits jobs; the worker thread runs them one at a
 * time, in submission order, on the daemon's xenstore connection, and
 * hands each finished job back to the loop (an ev_async), where its done
 * callback runs.  A job's run callback may only talk to xenstore and fill
 * the job's own fields: it never touches a device, a ring or anything
 * else the loop owns.  See xs_worker.c for why it is built this way.
 */
#ifndef XENBLKD_XS_WORKER_H
#define XENBLKD_XS_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <ev.h>

struct xbd_xs_job;
/* Worker thread: the round trips.  ctx is what xbd_xs_worker_start got. */
typedef void xbd_xs_run_fn(struct xbd_xs_job *job, void *ctx);
/* Loop thread: use the result and free the job.  job->ran is false when
 * the worker never ran it (the daemon is exiting past a stuck xenstored). */
typedef void xbd_xs_done_fn(struct xbd_xs_job *job);
/* Loop thread: xenstored is gone (errno value). */
typedef void xbd_xs_lost_fn(void *opaque, int err);

struct xbd_xs_job {
    struct xbd_xs_job *next;    /* the worker's queues */
    xbd_xs_run_fn *run;
    xbd_xs_done_fn *done;
    bool ran;
    bool at_exit;               /* still run when the worker stops (writes) */
};

struct xbd_xs_worker;

/* Start the thread.  ctx is passed to every run callback (the xenbus
 * connection); ping(ctx) is called by the worker when it was idle for a
 * while and returns 0 or the errno that says xenstored is gone. */
struct xbd_xs_worker *xbd_xs_worker_start(struct ev_loop *loop, void *ctx,
                                          int (*ping)(void *ctx),
                                          xbd_xs_lost_fn *lost, void *lost_opaque);
/* Queue a job (loop thread).  Jobs run in the order submitted. */
void xbd_xs_worker_submit(struct xbd_xs_worker *w, struct xbd_xs_job *job);
/* Jobs submitted whose done callback has not run yet (loop thread). */
unsigned xbd_xs_worker_pending(const struct xbd_xs_worker *w);
/* Drop the queued jobs that need not run at exit (reads, watches: only
 * at_exit jobs, the writes, still matter), let those run (at most
 * timeout seconds), stop the thread and
 * run every done callback left, and free w.  true: stopped; false: the
 * worker is stuck in a round trip (logged) and was left behind with w
 * (the process is exiting): the xenstore connection must not be closed
 * under it. */
bool xbd_xs_worker_stop(struct xbd_xs_worker *w, double timeout);

#endif
