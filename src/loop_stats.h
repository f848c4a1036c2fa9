/*
 * loop_stats.h - how long each iteration of the event loop keeps it from
 * polling: the delay every other guest's notification, completion or
 * xenstore event may wait.  An ev_check watcher stamps the end of the
 * poll, libev's loop release callback the start of the next one; the
 * difference goes into a log2 histogram of microseconds (dataplane.h's
 * buckets).
 *
 * The wake-up stamp is also the loop's clock: everything done in one
 * iteration is dated by it (requests' latency, persistent grants' last
 * use: ring.c).  Both stamps are libev's own CLOCK_MONOTONIC readings
 * (loop_stats.c says how they are recovered), so the loop's figures and
 * clock cost no clock read beyond libev's two per iteration.  That
 * matters in a PV dom0, where the clock source is usually Xen's without
 * a stable TSC: the vDSO then falls back to a real clock_gettime system
 * call, which the real-Xen profile found to be a quarter of xenblkd's
 * dom0 CPU per I/O (tests/xen/README.md).
 */
#ifndef XENBLKD_LOOP_STATS_H
#define XENBLKD_LOOP_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <ev.h>

#include "xenblkd/dataplane.h"

/* The anchor timer's period: it only has to stay active. */
#define XBD_LOOP_ANCHOR_S (30.0 * 86400.0)

struct xbd_loop_stats {
    struct ev_loop *loop;
    ev_check woke_w;
    ev_timer anchor_w;          /* always active: libev's monotonic reading */
    uint64_t now_ns;            /* CLOCK_MONOTONIC at the last wake-up */
    bool awake;                 /* inside an iteration (since now_ns) */
    uint64_t iterations, busy_max_us;
    struct xbd_lat_hist busy;
};

/* Takes the loop's release callback and userdata (one xbd_loop_stats per
 * loop). */
void xbd_loop_stats_start(struct xbd_loop_stats *s, struct ev_loop *loop);
void xbd_loop_stats_stop(struct xbd_loop_stats *s);

/* The loop's clock: CLOCK_MONOTONIC when the current iteration began (at
 * start-up: when xbd_loop_stats_start ran), in ns. */
static inline uint64_t xbd_loop_now_ns(const struct xbd_loop_stats *s)
{
    return s->now_ns;
}

#endif
