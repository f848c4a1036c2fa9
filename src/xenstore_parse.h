/*
 * xenstore_parse.h - what a frontend wrote in its xenstore directory,
 * parsed and validated without touching xenstore.
 *
 * Every value read from a frontend's directory is written by the guest
 * and therefore hostile.  The parsing lives here, apart from the xenstore
 * reads (src/device.c supplies a reader), so that it can be fuzzed
 * (tests/fuzz/fuzz-xenstore.c) with exactly the code the daemon runs.
 */
#ifndef XENBLKD_XENSTORE_PARSE_H
#define XENBLKD_XENSTORE_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "xenblkd/dataplane.h"

/* One queue's ring: ring-page-order, ring-ref* and event-channel. */
struct xbd_fe_queue {
    unsigned order;
    grant_ref_t refs[XBD_MAX_RING_PAGES];
    evtchn_port_t port;
};

/* Everything a connect needs from the frontend's directory. */
struct xbd_fe_info {
    enum xbd_protocol protocol;
    bool persistent;
    unsigned nr_queues;
    struct xbd_fe_queue *queues;    /* nr_queues entries, malloc'd */
};

/* What the backend offered (the frontend may ask for no more). */
struct xbd_fe_limits {
    unsigned max_ring_order;        /* max-ring-page-order we published */
    unsigned max_queues;            /* multi-queue-max-queues we published */
    bool persistent_ok;             /* persistent grants enabled here */
};

/* Read the frontend's key <rel>, relative to its directory ("protocol",
 * "queue-1/ring-ref0"): a malloc'd NUL-terminated value, or NULL when
 * absent. */
typedef char *xbd_fe_read_fn(void *opaque, const char *rel);

/* Read and validate the frontend's protocol, multi-queue-num-queues,
 * ring-page-order and each queue's ring-ref* and event-channel, and
 * read feature-persistent as Linux does (xbd_parse_linux_flag: never a
 * reason to refuse).  0 with *fi filled (free fi->queues), or -1 with
 * the reason in why (printable ASCII only: guest strings are escaped). */
int xbd_fe_parse(xbd_fe_read_fn *read, void *opaque, const struct xbd_fe_limits *lim,
                 struct xbd_fe_info *fi, char *why, size_t n);

/* The "protocol" value to a ring ABI; v NULL means the key is absent.
 * 0, or -1 for an unknown protocol. */
int xbd_fe_parse_protocol(const char *v, enum xbd_protocol *proto);

/* Copy at most n-1 characters of a guest-supplied string for a log line,
 * anything but printable ASCII as '?'.  Returns buf. */
const char *xbd_printable(const char *s, char *buf, size_t n);

#endif
