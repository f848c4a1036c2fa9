/*
 * log_limit.h - rate limiting of what guests can make the daemon log.
 *
 * A guest can make the daemon log at will: a line per bad request, a few
 * per connect/disconnect cycle.  Unbounded, that fills the disk and, with
 * a blocking syslog, stalls the loop every guest shares.  Each disk has a
 * token bucket (rate lines per second, bursts of burst lines), and every
 * disk's lines also draw from one host-wide bucket (ten times both).  A
 * line refused is counted; when lines flow again (or within a second,
 * from a timer, or when the disk goes away) one "suppressed N messages"
 * line says how many were dropped.  A protocol-breaking disconnect reason
 * is logged the first time it occurs whatever the buckets say
 * (xbd_logb_first; at most once per 10 s per disk), and a disk that has been quiet for 10 s gets its next
 * line whatever the host-wide bucket says, so that a guest with many
 * disks cannot silence the others.
 */
#ifndef XENBLKD_LOG_LIMIT_H
#define XENBLKD_LOG_LIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <ev.h>

#include "xenblkd/log.h"

#define XBD_DEFAULT_LOG_RATE  20u    /* lines per second per disk */
#define XBD_DEFAULT_LOG_BURST 200u   /* lines at once per disk */
#define XBD_LOG_HOST_FACTOR   10u    /* the host-wide bucket: 10x both */
/* A disk that tried to log nothing for this long is quiet: its next line
 * does not need the host-wide bucket.  Also the shortest interval between
 * two lines xbd_logb_first forces through. */
#define XBD_LOG_QUIET_S       10.0

struct xbd_log_bucket {
    struct xbd_log_bucket *next, *prev;  /* registered buckets (the flush timer) */
    char name[64];              /* prefix of the "suppressed" line */
    double tokens, stamp;       /* stamp: CLOCK_MONOTONIC s of the last refill */
    double last_try;            /* CLOCK_MONOTONIC s of the last line tried */
    uint64_t pending;           /* suppressed, not yet reported */
    uint64_t suppressed;        /* suppressed in total */
    uint32_t first_hash;        /* reason last logged by xbd_logb_first */
    double last_forced;         /* CLOCK_MONOTONIC s of its last line forced through */
    bool registered;
};

/* Rates for every bucket (0 = no limit); from the [log] keys, at once. */
void xbd_log_limit_configure(unsigned rate, unsigned burst);
/* Report pending suppressions once a second from this loop. */
void xbd_log_limit_start(struct ev_loop *loop);
void xbd_log_limit_stop(void);
/* Lines suppressed by the host-wide bucket (every disk's). */
uint64_t xbd_log_limit_suppressed(void);

void xbd_log_bucket_init(struct xbd_log_bucket *b, const char *name);
/* Reports what is still pending, unregisters. */
void xbd_log_bucket_fini(struct xbd_log_bucket *b);

/* Log through b (NULL: no limit). */
void xbd_logb(struct xbd_log_bucket *b, enum xbd_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* As xbd_logb, but a reason (the formatted line) other than the last one
 * this bucket let through this way is logged whatever the buckets say,
 * at most once per XBD_LOG_QUIET_S per disk (a guest alternating reasons,
 * or putting its own values in them, must not bypass the buckets at every
 * connect attempt). */
void xbd_logb_first(struct xbd_log_bucket *b, enum xbd_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
