/*
 * loop_stats.c - iteration lengths of the event loop (see loop_stats.h).
 */
#include "config.h"

#include <stddef.h>

#include "loop_stats.h"

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* libev reads CLOCK_MONOTONIC itself twice per iteration, just before
 * and just after it polls, but publishes only ev_now(), which is
 * wall-clock time (ring.c says why that will not do).  Its monotonic
 * reading is recovered exactly from a timer that is always active:
 * ev_timer_start set at = <reading> + after, and ev_timer_remaining()
 * returns at - <latest reading>.  So the loop's stamps cost no clock
 * read of ours: in a PV dom0 each read is usually a system call, and the
 * two of ours per iteration were half of what a request at QD 1 still
 * read after the ring stopped reading the clock (tests/xen/README.md). */
static uint64_t libev_mono_ns(const struct xbd_loop_stats *s)
{
    ev_tstamp mn = s->anchor_w.at - ev_timer_remaining(s->loop, (ev_timer *)&s->anchor_w);

    return mn > 0 ? (uint64_t)(mn * 1e9) : 0;
}

/* Fires every 30 days, only to stay active. */
static void anchor_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
}

static void woke_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    struct xbd_loop_stats *s = container_of(w, struct xbd_loop_stats, woke_w);

    s->now_ns = libev_mono_ns(s);   /* read right after the poll */
    s->awake = true;
}

/* libev's loop release callback: called just before it polls, after its
 * own clock read and every prepare watcher (the engine's synchronous
 * work included): the end of the iteration. */
static void sleep_cb(struct ev_loop *loop)
{
    struct xbd_loop_stats *s = ev_userdata(loop);
    uint64_t end, us;

    if (!s || !s->awake)
        return;
    end = libev_mono_ns(s);
    us = end > s->now_ns ? (end - s->now_ns) / 1000u : 0;
    s->awake = false;
    s->iterations++;
    if (us > s->busy_max_us)
        s->busy_max_us = us;
    s->busy.count++;
    s->busy.sum_us += us;
    s->busy.buckets[xbd_lat_bucket(us)]++;
}

void xbd_loop_stats_start(struct xbd_loop_stats *s, struct ev_loop *loop)
{
    *s = (struct xbd_loop_stats){ .loop = loop };
    ev_timer_init(&s->anchor_w, anchor_cb, XBD_LOOP_ANCHOR_S, XBD_LOOP_ANCHOR_S);
    ev_now_update(loop);            /* the start's one read of its own */
    ev_timer_start(loop, &s->anchor_w);
    s->now_ns = libev_mono_ns(s);
    ev_check_init(&s->woke_w, woke_cb);
    /* Check watchers are queued with the iteration's other callbacks and
     * run in priority order: the highest runs the stamp before any of
     * them.  Neither watcher keeps the loop alive.  The release callback
     * is the loop's one (ev_userdata too): nothing else of the daemon's
     * sets them. */
    ev_set_priority(&s->woke_w, EV_MAXPRI);
    ev_check_start(loop, &s->woke_w);
    ev_set_userdata(loop, s);
    ev_set_loop_release_cb(loop, sleep_cb, NULL);
    ev_unref(loop);
    ev_unref(loop);
}

void xbd_loop_stats_stop(struct xbd_loop_stats *s)
{
    if (!s->loop)
        return;
    ev_ref(s->loop);
    ev_ref(s->loop);
    ev_check_stop(s->loop, &s->woke_w);
    ev_timer_stop(s->loop, &s->anchor_w);
    ev_set_loop_release_cb(s->loop, NULL, NULL);
    ev_set_userdata(s->loop, NULL);
    s->loop = NULL;
}
