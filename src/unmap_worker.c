/*
 * unmap_worker.c - one thread that unmaps stopped rings' grants (see
 * unmap_worker.h).
 *
 * The loop thread hands batches over (queue, under the lock); the worker
 * unmaps them in order and moves each to the done list, waking the loop
 * through an ev_async; the loop then gives the reserve back and logs.
 * The worker touches nothing but the batch: the reserve, the log and the
 * ring's statistics stay with the loop.  libxengnttab calls on a handle
 * only this thread still uses are safe (gntdev serialises its per-file
 * state itself; the simulated library holds a process lock).
 */
#include "config.h"

#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "budget.h"
#include "unmap_worker.h"
#include "xenblkd/log.h"

struct xbd_unmap_batch {
    struct xbd_unmap_batch *next;
    char *name;
    xengnttab_handle *xgt;
    struct xbd_map_reserve *reserve;
    void *ring;
    uint32_t ring_pages;
    unsigned nmaps, max_maps;   /* entries of maps[] */
    unsigned npages;            /* pages of all of them: reserve units */
    bool purge;                 /* a running ring's purge: the handle stays */
    unsigned overflow;          /* past max_maps: unmapped on the loop */
    struct xbd_unmap_tally *tally;  /* counts npages while queued, or NULL */
    unsigned failed;            /* set by the worker */
    int first_errno;
    /* Loop thread only: */
    ev_timer grace;
    xbd_unmap_done_fn *done;    /* NULL once called */
    void *done_opaque;
    struct { void *addr; uint32_t npages; } maps[];
};

struct xbd_unmap_tally {
    unsigned pages;             /* of submitted batches, not yet unmapped */
    unsigned holders;           /* the owner + batches submitted */
};

struct xbd_unmapper {
    struct ev_loop *loop;
    ev_async wake;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_cond_t exited_cv;
    bool stop, exited;                  /* under lock */
    /* At exit, past the bound: the worker touches neither the loop nor
     * the done list any more (under lock). */
    bool abandoned;
    struct xbd_unmap_batch *todo, **todo_tail, *done;   /* under lock */
    unsigned pending;                   /* loop thread only */
    /* Mappings (ring pages included) handed over and not yet unmapped:
     * added by the loop, taken by the worker after each unmap. */
    atomic_uint maps_left;
};

struct xbd_unmap_batch *xbd_unmap_batch_new(const char *name, xengnttab_handle *xgt,
                                            unsigned max_maps)
{
    struct xbd_unmap_batch *b = calloc(1, sizeof(*b) + max_maps * sizeof(b->maps[0]));

    if (!b)
        return NULL;
    b->name = strdup(name);
    if (!b->name) {
        free(b);
        return NULL;
    }
    b->xgt = xgt;
    b->max_maps = max_maps;
    return b;
}

/* A caller's bug (more mappings than it announced), never a guest's:
 * unmapped here, on the loop, rather than leaked (the batch owns the
 * handle from now on, but gntdev serialises calls on it, see above); its
 * pages still count in the batch, whose report gives their reserve
 * units back. */
static void add_overflow(struct xbd_unmap_batch *b, void *addr, uint32_t npages)
{
    if (!b->overflow++)
        xbd_err("%s: unmap batch full (%u mapping(s)): unmapping the others on the "
                "event loop (a bug: please report it)", b->name, b->max_maps);
    if (xengnttab_unmap(b->xgt, addr, npages) < 0)
        xbd_warn("%s: unmap of %u page(s) failed: %s", b->name, npages, strerror(errno));
}

void xbd_unmap_batch_add(struct xbd_unmap_batch *b, void *addr, uint32_t npages)
{
    b->npages += npages;
    if (b->nmaps == b->max_maps) {
        add_overflow(b, addr, npages);
        return;
    }
    b->maps[b->nmaps].addr = addr;
    b->maps[b->nmaps++].npages = npages;
}

void xbd_unmap_batch_set_ring(struct xbd_unmap_batch *b, void *ring, uint32_t ring_pages)
{
    b->ring = ring;
    b->ring_pages = ring_pages;
}

void xbd_unmap_batch_set_reserve(struct xbd_unmap_batch *b, struct xbd_map_reserve *m)
{
    b->reserve = m;
}

void xbd_unmap_batch_set_purge(struct xbd_unmap_batch *b)
{
    b->purge = true;
}

struct xbd_unmap_tally *xbd_unmap_tally_new(void)
{
    struct xbd_unmap_tally *t = calloc(1, sizeof(*t));

    if (t)
        t->holders = 1;
    return t;
}

unsigned xbd_unmap_tally_pages(const struct xbd_unmap_tally *t)
{
    return t ? t->pages : 0;
}

static void tally_release(struct xbd_unmap_tally *t, unsigned pages)
{
    t->pages -= pages;
    if (!--t->holders)
        free(t);
}

void xbd_unmap_tally_drop(struct xbd_unmap_tally *t)
{
    if (t)
        tally_release(t, 0);
}

void xbd_unmap_batch_set_tally(struct xbd_unmap_batch *b, struct xbd_unmap_tally *t)
{
    b->tally = t;
}

unsigned xbd_unmap_batch_count(const struct xbd_unmap_batch *b)
{
    return b->nmaps;
}

void xbd_unmap_batch_free(struct xbd_unmap_batch *b)
{
    if (b) {
        free(b->name);
        free(b);
    }
}

static void unmap_counted(struct xbd_unmapper *u, struct xbd_unmap_batch *b, void *addr,
                          uint32_t count)
{
    if (xengnttab_unmap(b->xgt, addr, count) < 0) {
        if (!b->failed++)
            b->first_errno = errno;
    }
    atomic_fetch_sub(&u->maps_left, 1);
}

/* In the worker: everything the batch holds, then the handle. */
static void run_batch(struct xbd_unmapper *u, struct xbd_unmap_batch *b)
{
    for (unsigned i = 0; i < b->nmaps; i++)
        unmap_counted(u, b, b->maps[i].addr, b->maps[i].npages);
    if (b->ring)
        unmap_counted(u, b, b->ring, b->ring_pages);
    if (b->purge)
        return;                 /* the ring still uses its handle */
    xengnttab_close(b->xgt);
    b->xgt = NULL;
}

static void *worker_main(void *opaque)
{
    struct xbd_unmapper *u = opaque;

    pthread_mutex_lock(&u->lock);
    for (;;) {
        struct xbd_unmap_batch *b = u->todo;

        if (!b || u->abandoned) {
            if (u->stop)
                break;
            pthread_cond_wait(&u->cond, &u->lock);
            continue;
        }
        u->todo = b->next;
        if (!u->todo)
            u->todo_tail = &u->todo;
        pthread_mutex_unlock(&u->lock);
        run_batch(u, b);
        pthread_mutex_lock(&u->lock);
        if (u->abandoned) {
            /* The loop is gone or going: the process exits.  Kept (not
             * freed) for the tally it may count in, which only the loop
             * touches: reachable until the exit. */
            b->next = u->done;
            u->done = b;
            continue;
        }
        b->next = u->done;
        u->done = b;
        ev_async_send(u->loop, &u->wake);
    }
    u->exited = true;
    pthread_cond_signal(&u->exited_cv);
    pthread_mutex_unlock(&u->lock);
    return NULL;
}

static void call_done(struct xbd_unmap_batch *b)
{
    xbd_unmap_done_fn *done = b->done;

    b->done = NULL;
    if (done)
        done(b->done_opaque);
}

/* The worker is slow (Xen under load, or TCG): let the ring's owner go on
 * (its device writes Closed) before the toolstack gives up; the batch is
 * still reported when done. */
static void grace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xbd_unmap_batch *b = w->data;

    (void)loop;
    (void)revents;
    xbd_warn("%s: unmaps still pending after %g s: the ring is reported stopped, "
             "they finish in the background", b->name, XBD_UNMAP_GRACE);
    call_done(b);
}

/* One line per batch: a warning naming the failures if any failed; a
 * stopped ring that had no persistent grant at debug level (every stop
 * of an idle or persistent-grant-less ring would say "0" otherwise). */
static void log_batch(const struct xbd_unmap_batch *b)
{
    unsigned nmaps = b->nmaps + b->overflow;
    const char *what = b->purge ? "purged persistent grant(s)" : "persistent grant(s)";
    const char *when = b->purge ? "" : " after the ring stopped";

    if (b->failed)
        xbd_warn("%s: %u %s in %u mapping(s)%s: %u of %u unmap(s) failed (%s)", b->name,
                 b->npages, what, nmaps, when, b->failed,
                 b->nmaps + (b->ring != NULL), strerror(b->first_errno));
    else if (b->purge || !b->npages)
        xbd_debug("%s: %u %s in %u mapping(s) unmapped%s", b->name, b->npages, what, nmaps,
                  when);
    else
        xbd_info("%s: %u %s in %u mapping(s) unmapped%s", b->name, b->npages, what, nmaps,
                 when);
}

/* On the loop: the reserve back, one line per ring, the owner told
 * (unless the process is exiting: <tell> false). */
static void report(struct xbd_unmapper *u, struct xbd_unmap_batch *b, bool tell)
{
    ev_timer_stop(u->loop, &b->grace);
    for (unsigned i = 0; i < b->npages; i++)
        xbd_map_reserve_give(b->reserve);
    if (b->tally)
        tally_release(b->tally, b->npages);
    log_batch(b);
    if (!b->purge)
        u->pending--;
    if (tell)
        call_done(b);
    xbd_unmap_batch_free(b);
}

static void reap(struct xbd_unmapper *u, bool tell)
{
    struct xbd_unmap_batch *b;

    pthread_mutex_lock(&u->lock);
    b = u->done;
    u->done = NULL;
    pthread_mutex_unlock(&u->lock);
    while (b) {
        struct xbd_unmap_batch *next = b->next;

        report(u, b, tell);
        b = next;
    }
}

static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    reap(w->data, true);
}

struct xbd_unmapper *xbd_unmapper_new(struct ev_loop *loop)
{
    struct xbd_unmapper *u = calloc(1, sizeof(*u));
    pthread_condattr_t ca;
    sigset_t all, old;
    int rc;

    if (!u) {
        xbd_err("out of memory for the unmap worker");
        return NULL;
    }
    u->loop = loop;
    u->todo_tail = &u->todo;
    atomic_init(&u->maps_left, 0);
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->cond, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&u->exited_cv, &ca);
    pthread_condattr_destroy(&ca);
    ev_async_init(&u->wake, wake_cb);
    u->wake.data = u;
    ev_async_start(loop, &u->wake);
    /* Signals stay with the loop thread (libev's signal watchers). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&u->thread, NULL, worker_main, u);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* Named for top -H and ps -L; a failure costs only the name. */
    if (!rc)
        (void)pthread_setname_np(u->thread, "xbd-unmap");
    if (rc) {
        xbd_err("cannot start the unmap worker: %s", strerror(rc));
        ev_async_stop(loop, &u->wake);
        pthread_cond_destroy(&u->exited_cv);
        pthread_cond_destroy(&u->cond);
        pthread_mutex_destroy(&u->lock);
        free(u);
        return NULL;
    }
    return u;
}

void xbd_unmapper_submit(struct xbd_unmapper *u, struct xbd_unmap_batch *b,
                         xbd_unmap_done_fn *done, void *opaque)
{
    b->next = NULL;
    b->done = done;
    b->done_opaque = opaque;
    ev_timer_init(&b->grace, grace_cb, XBD_UNMAP_GRACE, 0.);
    b->grace.data = b;
    if (b->tally) {
        b->tally->pages += b->npages;
        b->tally->holders++;
    }
    /* A purge has nobody waiting for it: no grace period, and it is not
     * a stopped ring (pending counts those). */
    if (!b->purge) {
        ev_timer_start(u->loop, &b->grace);
        u->pending++;
    }
    atomic_fetch_add(&u->maps_left, b->nmaps + (b->ring != NULL));
    pthread_mutex_lock(&u->lock);
    *u->todo_tail = b;
    u->todo_tail = &b->next;
    pthread_cond_signal(&u->cond);
    pthread_mutex_unlock(&u->lock);
}

unsigned xbd_unmapper_pending(const struct xbd_unmapper *u)
{
    return u ? u->pending : 0;
}

unsigned xbd_unmapper_maps_left(const struct xbd_unmapper *u)
{
    return u ? atomic_load(&((struct xbd_unmapper *)u)->maps_left) : 0;
}

/* Until the worker emptied its queue and returned, or <timeout> seconds.
 * True if it did. */
static bool wait_exited(struct xbd_unmapper *u, double timeout)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)timeout;
    ts.tv_nsec += (long)((timeout - (double)(time_t)timeout) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&u->lock);
    u->stop = true;
    pthread_cond_signal(&u->cond);
    while (!u->exited)
        if (pthread_cond_timedwait(&u->exited_cv, &u->lock, &ts) == ETIMEDOUT)
            break;
    if (!u->exited)
        u->abandoned = true;
    pthread_mutex_unlock(&u->lock);
    return !u->abandoned;
}

void xbd_unmapper_free(struct xbd_unmapper *u)
{
    if (!u)
        return;
    /* The worker empties its queue before it stops: every grant is
     * unmapped before the process exits, unless the unmaps hang (a stuck
     * hypercall): then the kernel unmaps what is left as the process
     * exits, which costs nothing here since no page will be touched
     * again, and the stop stays within systemd's TimeoutStopSec. */
    if (u->pending)
        xbd_info("waiting for the unmaps of %u stopped ring(s)", u->pending);
    if (!wait_exited(u, XBD_UNMAP_EXIT_TIMEOUT)) {
        xbd_warn("unmaps still pending %g s into the exit: leaving %u mapping(s) of %u "
                 "stopped ring(s) to the kernel, which unmaps them as the process exits",
                 XBD_UNMAP_EXIT_TIMEOUT, xbd_unmapper_maps_left(u), u->pending);
        /* Those finished meanwhile are still reported; the thread keeps
         * u, its lock and what it holds until the process exits. */
        reap(u, false);
        ev_async_stop(u->loop, &u->wake);
        pthread_detach(u->thread);
        return;
    }
    pthread_join(u->thread, NULL);
    /* Owners are being freed: nobody to tell any more. */
    reap(u, false);
    ev_async_stop(u->loop, &u->wake);
    pthread_cond_destroy(&u->exited_cv);
    pthread_cond_destroy(&u->cond);
    pthread_mutex_destroy(&u->lock);
    free(u);
}
