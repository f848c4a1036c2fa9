/*
 * settle.h - wait until the daemon has acted on everything written to
 * xenstore so far (the control socket's "settle" command, xenblkctl
 * settle): what "udevadm settle" is to udev, for a toolstack script that
 * wrote backend nodes, or a test before it checks that something did
 * not happen.
 *
 * Settled means:
 *  (a) every watch event xenstored had queued for the daemon when the
 *      settle began has been dispatched: a barrier watch
 *      (xbd_xenbus_barrier) fires after them;
 *  (b) then nothing those events (or anything before) asked for is left:
 *      no device has an evaluation queued or waiting for its rate limit,
 *      a snapshot being read, a state write not made, or rings draining,
 *      no stopped ring's grants are still being unmapped (the guest has
 *      its pages back), and the xenstore thread has no job out (directory
 *      scans, probes of new devices, watches being set);
 *  and no watch was set meanwhile (a new device's frontend watch): its
 *  first event may come after the barrier's, so a new barrier is set and
 *  (a) and (b) are checked again.
 * (b) is checked before the loop sleeps (an ev_prepare), so a settle
 * costs nothing while it waits and answers in the iteration that settles.
 */
#ifndef XENBLKD_SETTLE_H
#define XENBLKD_SETTLE_H

#include <stdbool.h>

struct xbd_host;
struct xbd_settle;

struct xbd_settle_result {
    bool settled;
    double waited;              /* s */
    unsigned rounds;            /* barriers it took */
    const char *why;            /* not settled: what is still busy */
};
/* Runs once, from the loop, never from xbd_settle_start; s is freed when
 * it returns. */
typedef void xbd_settle_done_fn(void *opaque, const struct xbd_settle_result *r);

/* Start waiting, for at most timeout seconds.  NULL when out of memory. */
struct xbd_settle *xbd_settle_start(struct xbd_host *h, double timeout,
                                    xbd_settle_done_fn *done, void *opaque);
/* Stop waiting (the client went away): done will not run.  Safe with NULL. */
void xbd_settle_cancel(struct xbd_settle *s);

#endif
