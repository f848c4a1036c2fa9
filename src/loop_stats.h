/*
 * loop_stats.h - how long each iteration of the event loop keeps it from
 * polling: the delay every other guest's notification, completion or
 * xenstore event may wait.  An ev_check watcher stamps the end of the
 * poll, an ev_prepare watcher the start of the next one; the difference
 * goes into a log2 histogram of microseconds (dataplane.h's buckets).
 */
#ifndef XENBLKD_LOOP_STATS_H
#define XENBLKD_LOOP_STATS_H

#include <stdint.h>
#include <ev.h>

#include "xenblkd/dataplane.h"

struct xbd_loop_stats {
    struct ev_loop *loop;
    ev_check woke_w;
    ev_prepare sleep_w;
    uint64_t woke_ns;           /* 0: not inside an iteration */
    uint64_t iterations, busy_max_us;
    struct xbd_lat_hist busy;
};

void xbd_loop_stats_start(struct xbd_loop_stats *s, struct ev_loop *loop);
void xbd_loop_stats_stop(struct xbd_loop_stats *s);

#endif
