/*
 * loop_stats.c - iteration lengths of the event loop (see loop_stats.h).
 */
#include "config.h"

#include <stddef.h>
#include <time.h>

#include "loop_stats.h"

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void woke_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    struct xbd_loop_stats *s = container_of(w, struct xbd_loop_stats, woke_w);

    s->now_ns = mono_ns();
    s->awake = true;
}

static void sleep_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct xbd_loop_stats *s = container_of(w, struct xbd_loop_stats, sleep_w);
    uint64_t us;

    if (!s->awake)
        return;
    us = (mono_ns() - s->now_ns) / 1000u;
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
    *s = (struct xbd_loop_stats){ .loop = loop, .now_ns = mono_ns() };
    ev_check_init(&s->woke_w, woke_cb);
    ev_prepare_init(&s->sleep_w, sleep_cb);
    /* Check watchers are queued with the iteration's other callbacks and
     * run in priority order: the highest runs the stamp before any of
     * them.  Neither watcher keeps the loop alive. */
    ev_set_priority(&s->woke_w, EV_MAXPRI);
    ev_check_start(loop, &s->woke_w);
    ev_prepare_start(loop, &s->sleep_w);
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
    ev_prepare_stop(s->loop, &s->sleep_w);
    s->loop = NULL;
}
