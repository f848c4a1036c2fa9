/*
 * xs_worker.c - the xenstore control thread.
 *
 * Why a thread: libxenstore's requests are synchronous and have no
 * timeout.  Made from the event loop, every round trip of an evaluation
 * (about 30 for a connect) kept every ring of every guest waiting, and a
 * slow or stopped xenstored stopped all guests' I/O for as long as it was
 * slow.  A storage backend's control plane must never sit in its data
 * path: here the loop only decides, and one thread talks to xenstore.
 *
 * The split:
 *  - loop thread: the state machine (device.c), everything that touches
 *    rings, grants, event channels and aio, and the watch fd.  Popping a
 *    watch event (xs_check_watch) is no round trip: libxenstore's own
 *    reader thread has already queued it, and the pop only takes that
 *    queue's mutex.  Keeping the watch fd on the loop keeps events and
 *    the evaluations they ask for in one thread, with no second queue.
 *  - this worker: every round trip (reads of an evaluation's snapshot,
 *    writes and their transactions, watch and unwatch, the liveness
 *    ping), one job at a time, in submission order.
 *
 * Ordering: one thread and one FIFO, so the writes of a device reach
 * xenstore in the order the state machine issued them (features before
 * state=Connected stay in one transaction, as before), and a snapshot
 * asked for after a write reads what that write wrote.  The device asks
 * for at most one snapshot at a time and applies it when it comes back,
 * so a snapshot is never applied after a newer one.
 *
 * Nothing in a job's run callback may touch loop-owned state: a job
 * carries copies of what it needs and its results, and its done callback
 * (on the loop, through an ev_async) applies them.  Several loops later
 * can share this worker as they are: it knows nothing of rings.
 *
 * Stopping: the queued jobs still run (a close's last state writes
 * matter), for a bounded time; a worker stuck in a round trip with a
 * stopped xenstored is logged and left behind, and the process exits.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xenblkd/log.h"
#include "xs_worker.h"

/* Seconds between questions to xenstored that tell whether it is still
 * there (libxenstore says nothing when it goes away). */
#define XBD_XS_PING_INTERVAL 2.0
/* Finished jobs whose done callback runs per loop wake-up: each may be a
 * whole evaluation, and the rings are served between wake-ups. */
#define XBD_XS_DONE_BATCH 8
/* A round trip taking this long is logged (once per stall). */
#define XBD_XS_STALL_WARN 5.0

struct xbd_xs_worker {
    struct ev_loop *loop;
    void *ctx;
    int (*ping)(void *ctx);
    xbd_xs_lost_fn *lost;
    void *lost_opaque;
    pthread_t thread;

    /* Shared with the thread, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t work;        /* a job queued, or stop */
    pthread_cond_t exited_cv;
    struct xbd_xs_job *todo, *todo_tail;
    struct xbd_xs_job *done, *done_tail;
    bool stop, exited;
    int lost_err;
    double busy_since;          /* monotonic start of the running job, 0 idle */

    /* Loop thread only. */
    ev_async async;
    ev_timer stall_w;
    struct xbd_xs_job *ready, *ready_tail;   /* taken from done, not yet run */
    unsigned pending;
    bool stall_logged;
};

static double mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void deadline(struct timespec *ts, double in)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)in;
    ts->tv_nsec += (long)((in - (double)(time_t)in) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void append(struct xbd_xs_job **head, struct xbd_xs_job **tail, struct xbd_xs_job *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

/* ------------------------------------------------------------------ */
/* the thread                                                          */

/* Ask xenstored something every XBD_XS_PING_INTERVAL, busy or not: a
 * job's failure alone does not say whether the connection is gone. */
static void ping_if_due(struct xbd_xs_worker *w, double *last)
{
    int err;

    if (mono() - *last < XBD_XS_PING_INTERVAL)
        return;
    w->busy_since = mono();
    pthread_mutex_unlock(&w->mu);
    err = w->ping(w->ctx);
    *last = mono();
    pthread_mutex_lock(&w->mu);
    w->busy_since = 0;
    if (err) {
        w->lost_err = err;
        ev_async_send(w->loop, &w->async);
    }
}

static void *worker_main(void *arg)
{
    struct xbd_xs_worker *w = arg;
    double last_ping = mono();

    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->todo && !w->stop) {
            struct timespec ts;

            deadline(&ts, XBD_XS_PING_INTERVAL);
            pthread_cond_timedwait(&w->work, &w->mu, &ts);
            if (!w->stop)
                ping_if_due(w, &last_ping);
        }
        if (!w->todo)
            break;              /* stop, and nothing left to do */
        if (!w->stop)
            ping_if_due(w, &last_ping);
        struct xbd_xs_job *j = w->todo;
        w->todo = j->next;
        if (!w->todo)
            w->todo_tail = NULL;
        w->busy_since = mono();
        pthread_mutex_unlock(&w->mu);

        j->run(j, w->ctx);
        j->ran = true;

        pthread_mutex_lock(&w->mu);
        w->busy_since = 0;
        append(&w->done, &w->done_tail, j);
        ev_async_send(w->loop, &w->async);
    }
    w->exited = true;
    pthread_cond_broadcast(&w->exited_cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* the loop side                                                       */

/* Run up to max done callbacks, in the order the jobs finished. */
static void run_ready(struct xbd_xs_worker *w, unsigned max)
{
    for (unsigned i = 0; w->ready && i < max; i++) {
        struct xbd_xs_job *j = w->ready;

        w->ready = j->next;
        if (!w->ready)
            w->ready_tail = NULL;
        w->pending--;
        j->done(j);
    }
}

/* Move the jobs the thread finished to the loop's own list. */
static void take_done(struct xbd_xs_worker *w)
{
    struct xbd_xs_job *head;

    pthread_mutex_lock(&w->mu);
    head = w->done;
    w->done = w->done_tail = NULL;
    pthread_mutex_unlock(&w->mu);
    while (head) {
        struct xbd_xs_job *j = head;
        head = j->next;
        append(&w->ready, &w->ready_tail, j);
    }
}

static void async_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    struct xbd_xs_worker *w = a->data;
    int lost;

    pthread_mutex_lock(&w->mu);
    lost = w->lost_err;
    w->lost_err = 0;
    pthread_mutex_unlock(&w->mu);
    take_done(w);
    run_ready(w, XBD_XS_DONE_BATCH);
    if (w->ready)
        ev_async_send(loop, a);         /* the rest after the rings had a turn */
    if (lost)
        w->lost(w->lost_opaque, lost);
}

/* Say so when xenstored keeps a round trip waiting: device changes wait
 * meanwhile, the rings do not. */
static void stall_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct xbd_xs_worker *w = t->data;
    double since, now = mono();

    pthread_mutex_lock(&w->mu);
    since = w->busy_since;
    pthread_mutex_unlock(&w->mu);
    if (since && now - since >= XBD_XS_STALL_WARN && !w->stall_logged) {
        xbd_warn("xenstored has not answered for %.0f s: device changes wait for it, "
                 "the rings are still served", now - since);
        w->stall_logged = true;
    } else if (!since && w->stall_logged) {
        xbd_info("xenstored answers again");
        w->stall_logged = false;
    }
}

struct xbd_xs_worker *xbd_xs_worker_start(struct ev_loop *loop, void *ctx,
                                          int (*ping)(void *ctx),
                                          xbd_xs_lost_fn *lost, void *lost_opaque)
{
    struct xbd_xs_worker *w = calloc(1, sizeof(*w));
    pthread_condattr_t ca;
    int err;

    if (!w) {
        xbd_err("out of memory");
        return NULL;
    }
    w->loop = loop;
    w->ctx = ctx;
    w->ping = ping;
    w->lost = lost;
    w->lost_opaque = lost_opaque;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->work, &ca);
    pthread_cond_init(&w->exited_cv, &ca);
    pthread_condattr_destroy(&ca);
    ev_async_init(&w->async, async_cb);
    w->async.data = w;
    ev_async_start(loop, &w->async);
    ev_timer_init(&w->stall_w, stall_cb, 1., 1.);
    w->stall_w.data = w;
    ev_timer_start(loop, &w->stall_w);
    err = pthread_create(&w->thread, NULL, worker_main, w);
    /* Named for top -H and ps -L; a failure costs only the name. */
    if (!err)
        (void)pthread_setname_np(w->thread, "xbd-xenstore");
    if (err) {
        xbd_err("cannot start the xenstore thread: %s", strerror(err));
        ev_async_stop(loop, &w->async);
        ev_timer_stop(loop, &w->stall_w);
        pthread_cond_destroy(&w->work);
        pthread_cond_destroy(&w->exited_cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    return w;
}

void xbd_xs_worker_submit(struct xbd_xs_worker *w, struct xbd_xs_job *job)
{
    job->ran = false;
    w->pending++;
    pthread_mutex_lock(&w->mu);
    append(&w->todo, &w->todo_tail, job);
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
}

unsigned xbd_xs_worker_pending(const struct xbd_xs_worker *w)
{
    return w->pending;
}

/* Done callbacks of jobs the worker will never run (job->ran false). */
static void drop_unrun(struct xbd_xs_worker *w, struct xbd_xs_job *unrun)
{
    while (unrun) {
        struct xbd_xs_job *j = unrun;
        unrun = j->next;
        w->pending--;
        j->done(j);
    }
}

/* Under mu: take the jobs the exit need not wait for out of the queue
 * (they get done with ran false), keeping the writes in their order. */
static struct xbd_xs_job *drop_reads(struct xbd_xs_worker *w)
{
    struct xbd_xs_job *keep = NULL, *keep_tail = NULL, *drop = NULL, *drop_tail = NULL;

    while (w->todo) {
        struct xbd_xs_job *j = w->todo;
        w->todo = j->next;
        if (j->at_exit)
            append(&keep, &keep_tail, j);
        else
            append(&drop, &drop_tail, j);
    }
    w->todo = keep;
    w->todo_tail = keep_tail;
    return drop;
}

bool xbd_xs_worker_stop(struct xbd_xs_worker *w, double timeout)
{
    struct timespec ts;
    struct xbd_xs_job *unrun = NULL;
    bool clean;

    if (!w)
        return true;
    ev_async_stop(w->loop, &w->async);
    ev_timer_stop(w->loop, &w->stall_w);
    deadline(&ts, timeout);
    double t0 = mono();
    pthread_mutex_lock(&w->mu);
    unrun = drop_reads(w);
    w->stop = true;
    pthread_cond_signal(&w->work);
    while (!w->exited)
        if (pthread_cond_timedwait(&w->exited_cv, &w->mu, &ts) == ETIMEDOUT)
            break;
    clean = w->exited;
    if (!clean) {
        /* Stuck in a round trip: what it has not started will never run. */
        struct xbd_xs_job **tail = &unrun;
        while (*tail)
            tail = &(*tail)->next;
        *tail = w->todo;
        w->todo = w->todo_tail = NULL;
    }
    pthread_mutex_unlock(&w->mu);
    if (clean && mono() - t0 >= 1.0)
        xbd_info("xenstore thread: waited %.1f s for the last xenstore updates",
                 mono() - t0);
    if (!clean) {
        unsigned n = 0;
        for (struct xbd_xs_job *j = unrun; j; j = j->next)
            n += j->at_exit;
        xbd_err("xenstored did not answer within %.0f s of the exit: leaving the xenstore "
                "thread behind, %u queued xenstore update%s not made", timeout, n,
                n == 1 ? "" : "s");
        /* Only the thread's own locked queue is touched from here on:
         * the stuck job and w stay allocated for it. */
        take_done(w);
        run_ready(w, ~0u);
        drop_unrun(w, unrun);
        pthread_detach(w->thread);
        return false;
    }
    pthread_join(w->thread, NULL);
    take_done(w);
    run_ready(w, ~0u);
    drop_unrun(w, unrun);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->exited_cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return true;
}
