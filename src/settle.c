/*
 * settle.c - the settle barrier (see settle.h).
 *
 * One xbd_settle per waiting request, owned by whoever started it (a
 * control client): it holds a barrier watch while (a) is pending, an
 * ev_prepare while (b) is, and a timeout.  It only reads the host's
 * devices and the xenstore thread's count of jobs: nothing here changes
 * what the daemon does.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xenblkd/log.h"
#include "xenblkd/xenbus.h"
#include "device_internal.h"
#include "settle.h"
#include "unmap_worker.h"
#include "word_list.h"

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Busy devices named in a "not settled" message; the rest are counted. */
#define XBD_SETTLE_NAMED 8

struct xbd_settle {
    struct xbd_host *h;
    struct xbd_watch *barrier;  /* set, its event not seen yet */
    uint64_t watches_at;        /* xbd_xenbus_watches_set when it was set */
    unsigned rounds;
    double t0;
    ev_prepare quiet_w;         /* (b), before the loop sleeps */
    ev_timer timeout_w;
    xbd_settle_done_fn *done;
    void *opaque;
};

static double mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool eval_busy(const struct xbd_device_eval *e)
{
    return e->queued || e->delayed || e->snapshot_pending || e->writes_pending ||
           e->draining;
}

static bool host_quiet(const struct xbd_host *h)
{
    /* A stopped ring's grants are unmapped after its drain, by the unmap
     * thread: the guest gets its pages back only then. */
    if (xbd_xenbus_pending(h->xb) || xbd_unmapper_pending(h->unmapper))
        return false;
    for (unsigned i = 0; i < h->ndevices; i++) {
        struct xbd_device_eval e = xbd_device_get_eval(h->devices[i]);

        if (eval_busy(&e))
            return false;
    }
    return true;
}

static void finish(struct xbd_settle *s, bool settled, const char *why)
{
    struct xbd_settle_result r = {
        .settled = settled,
        .waited = mono() - s->t0,
        .rounds = s->rounds,
        .why = why,
    };
    xbd_settle_done_fn *done = s->done;
    void *opaque = s->opaque;

    xbd_settle_cancel(s);
    done(opaque, &r);
}

static void barrier_cb(void *opaque, const char *path)
{
    struct xbd_settle *s = opaque;

    (void)path;
    /* Once is all it takes; removing it here is safe (xenbus_io_cb looks
     * every event's watch up anew). */
    xbd_watch_remove(s->h->xb, s->barrier);
    s->barrier = NULL;
    ev_prepare_start(s->h->loop, &s->quiet_w);
}

static bool set_barrier(struct xbd_settle *s)
{
    s->watches_at = xbd_xenbus_watches_set(s->h->xb);
    s->barrier = xbd_xenbus_barrier(s->h->xb, barrier_cb, s);
    s->rounds++;
    return s->barrier != NULL;
}

static void quiet_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct xbd_settle *s = container_of(w, struct xbd_settle, quiet_w);

    if (!host_quiet(s->h))
        return;
    if (xbd_xenbus_watches_set(s->h->xb) == s->watches_at) {
        finish(s, true, NULL);
        return;
    }
    /* A watch set since the barrier (a new device's frontend watch) has
     * a first event the barrier did not wait for. */
    ev_prepare_stop(loop, w);
    if (!set_barrier(s))
        finish(s, false, "out of memory");
}

/* "what" of one busy device, e.g. "evaluation queued, 1 write pending". */
static void eval_words(const struct xbd_device_eval *e, char *buf, size_t n)
{
    size_t off = 0;

    buf[0] = '\0';
    if (e->queued)
        xbd_add_word(buf, n, &off, "evaluation queued");
    if (e->delayed)
        xbd_add_word(buf, n, &off, "evaluation delayed by its rate limit");
    if (e->snapshot_pending)
        xbd_add_word(buf, n, &off, "reading xenstore");
    if (e->writes_pending)
        xbd_add_word(buf, n, &off, "%u xenstore write%s pending", e->writes_pending,
                 e->writes_pending == 1 ? "" : "s");
    if (e->draining)
        xbd_add_word(buf, n, &off, "%u ring%s draining", e->draining,
                 e->draining == 1 ? "" : "s");
}

/* What is still busy, for the failure message. */
static void describe(const struct xbd_settle *s, char *buf, size_t n)
{
    const struct xbd_host *h = s->h;
    unsigned busy = 0, jobs = xbd_xenbus_pending(h->xb);
    unsigned unmaps = xbd_unmapper_pending(h->unmapper);
    size_t off;
    char list[1024] = "";
    size_t loff = 0;

    for (unsigned i = 0; i < h->ndevices; i++) {
        struct xbd_device_eval e = xbd_device_get_eval(h->devices[i]);
        struct xbd_device_info info;
        char what[160];
        int r;

        if (!eval_busy(&e))
            continue;
        if (busy++ >= XBD_SETTLE_NAMED)
            continue;
        xbd_device_get_info(h->devices[i], &info);
        eval_words(&e, what, sizeof(what));
        r = snprintf(list + loff, sizeof(list) - loff, "%sdom %u %s/%u (%s)",
                     loff ? ", " : "", info.domid, info.kind, info.devid, what);
        if (r > 0 && (size_t)r < sizeof(list) - loff)
            loff += (size_t)r;
    }
    if (busy > XBD_SETTLE_NAMED)
        snprintf(list + loff, sizeof(list) - loff, ", and %u more", busy - XBD_SETTLE_NAMED);
    off = (size_t)snprintf(buf, n, "%u device(s) busy%s%s", busy, busy ? ": " : "", list);
    if (off < n && jobs)
        off += (size_t)snprintf(buf + off, n - off, "; %u xenstore job(s) out", jobs);
    if (off < n && unmaps)
        off += (size_t)snprintf(buf + off, n - off, "; %u stopped ring(s) still unmapping "
                                "grants", unmaps);
    if (off < n && s->barrier)
        snprintf(buf + off, n - off, "; watch events queued before it not all handled yet");
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xbd_settle *s = container_of(w, struct xbd_settle, timeout_w);
    char why[1536];

    describe(s, why, sizeof(why));
    finish(s, false, why);
}

struct xbd_settle *xbd_settle_start(struct xbd_host *h, double timeout,
                                    xbd_settle_done_fn *done, void *opaque)
{
    struct xbd_settle *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->h = h;
    s->t0 = mono();
    s->done = done;
    s->opaque = opaque;
    ev_prepare_init(&s->quiet_w, quiet_cb);
    ev_timer_init(&s->timeout_w, timeout_cb, timeout, 0.);
    if (!set_barrier(s)) {
        free(s);
        return NULL;
    }
    ev_timer_start(h->loop, &s->timeout_w);
    return s;
}

void xbd_settle_cancel(struct xbd_settle *s)
{
    if (!s)
        return;
    ev_prepare_stop(s->h->loop, &s->quiet_w);
    ev_timer_stop(s->h->loop, &s->timeout_w);
    xbd_watch_remove(s->h->xb, s->barrier);
    free(s);
}
