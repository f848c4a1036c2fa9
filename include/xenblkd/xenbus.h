/*
 * xenbus.h - generic xenstore plumbing for the daemon.
 *
 * One xs_handle per daemon; its watch fd lives in an ev_io of the main
 * loop, and every round trip on it runs on the xenstore thread
 * (src/xs_worker.h): the synchronous readers below are for that thread's
 * jobs and for start-up, before the loop serves any ring.  Watches are identified by a never-reused token, so an event that
 * was already queued for a watch that has since been removed is dropped
 * instead of reaching a freed owner.  Nothing here knows about block
 * devices.
 */
#ifndef XENBLKD_XENBUS_H
#define XENBLKD_XENBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ev.h>
#include <xenstore.h>

/* Longest path we build or accept from xenstore (XENSTORE_ABS_PATH_MAX). */
#define XBD_XS_PATH_MAX 3072

/* XenbusState (xen/io/xenbus.h), spelled out so callers need not include
 * the Xen header just for the names. */
enum xbd_xenbus_state {
    XBD_XB_UNKNOWN = 0,
    XBD_XB_INITIALISING = 1,
    XBD_XB_INITWAIT = 2,
    XBD_XB_INITIALISED = 3,
    XBD_XB_CONNECTED = 4,
    XBD_XB_CLOSING = 5,
    XBD_XB_CLOSED = 6,
    XBD_XB_RECONFIGURING = 7,
    XBD_XB_RECONFIGURED = 8,
};
const char *xbd_xenbus_state_name(int state);

struct xbd_xenbus;
struct xbd_watch;
struct xbd_xs_job;

/* Called from the loop for every event on a watched path (including the
 * initial event xenstored sends when the watch is registered). */
typedef void xbd_watch_fn(void *opaque, const char *path);

/* Connect to xenstored (XENSTORED_PATH / the xenbus device, as libxenstore
 * decides) and hook its watch fd into loop.  NULL + log line on failure. */
struct xbd_xenbus *xbd_xenbus_open(struct ev_loop *loop);
void xbd_xenbus_close(struct xbd_xenbus *xb);
struct xs_handle *xbd_xenbus_handle(struct xbd_xenbus *xb);
/* Run job on the xenstore thread (src/xs_worker.h), after every job
 * submitted before it; its done callback runs later on the loop. */
void xbd_xenbus_submit(struct xbd_xenbus *xb, struct xbd_xs_job *job);
/* Jobs submitted whose done callback has not run yet. */
unsigned xbd_xenbus_pending(const struct xbd_xenbus *xb);

/* Our own domid from the "domid" key of our domain's home; -1 if absent. */
int xbd_xenbus_own_domid(struct xbd_xenbus *xb, unsigned *domid);

/* The watch is set by the xenstore thread (a failure is logged); its
 * events reach fn from the time xenstored set it. */
struct xbd_watch *xbd_watch_add(struct xbd_xenbus *xb, const char *path,
                                xbd_watch_fn *fn, void *opaque);
/* A barrier on the watch events: fn(opaque, path) runs once every event
 * xenstored had queued for this connection before the barrier reached
 * it (the watch jobs submitted earlier included) has been dispatched.
 * It is a watch on a node nothing writes; remove it with
 * xbd_watch_remove (from fn, or to cancel).  NULL when out of memory. */
struct xbd_watch *xbd_xenbus_barrier(struct xbd_xenbus *xb, xbd_watch_fn *fn, void *opaque);
/* How many watches xbd_watch_add has set so far (barriers not counted):
 * a watch set after a barrier has a first event the barrier did not wait
 * for. */
uint64_t xbd_xenbus_watches_set(const struct xbd_xenbus *xb);
/* Safe with NULL.  No callback for w runs after this returns. */
void xbd_watch_remove(struct xbd_xenbus *xb, struct xbd_watch *w);

/* Read a value as a NUL-terminated malloc'd string; NULL + errno (ENOENT
 * when the node does not exist). */
char *xbd_xs_read(struct xbd_xenbus *xb, xs_transaction_t t, const char *path);
/* Strict unsigned decimal (no sign, no spaces, no junk) that fits in max.
 * 0 on success; -1 with errno ENOENT (absent) or EINVAL (malformed, out of
 * range). */
int xbd_xs_read_uint(struct xbd_xenbus *xb, xs_transaction_t t, const char *path,
                     unsigned long max, unsigned long *out);
/* Whether path exists: 1 yes, 0 no (xenstored said ENOENT), -1 with errno
 * when xenstore could not say (a failed read is no proof of absence). */
int xbd_xs_exists(struct xbd_xenbus *xb, xs_transaction_t t, const char *path);
int xbd_xs_write(struct xbd_xenbus *xb, xs_transaction_t t, const char *path,
                 const char *value);
/* Entries of a directory, malloc'd as one block (free() it); NULL + errno. */
char **xbd_xs_directory(struct xbd_xenbus *xb, xs_transaction_t t, const char *path,
                        unsigned *num);

/* Key/value pair for xbd_xs_write_keys. */
struct xbd_kv {
    const char *key;
    const char *value;
};

/* Write dir/key=value for every pair in one transaction, but only if dir
 * still exists: a device that is being removed must not resurrect its
 * directory (as Linux's xenbus_switch_state).  0 on success, -1 with errno
 * ENOENT if dir is gone, other errno on xenstore failure. */
int xbd_xs_write_keys(struct xbd_xenbus *xb, const char *dir,
                      const struct xbd_kv *kv, size_t n);

/* xbd_xs_write_keys on the xenstore thread, after every job submitted
 * before: the loop never waits for it.  done (may be NULL) runs on the
 * loop with 0 or the errno (ENOENT: dir is gone; ECANCELED: the daemon
 * exited before xenstored answered).  -1 (ENOMEM) if nothing was queued. */
typedef void xbd_xs_write_done_fn(void *opaque, int err);
int xbd_xs_write_keys_async(struct xbd_xenbus *xb, const char *dir, const struct xbd_kv *kv,
                            size_t n, xbd_xs_write_done_fn *done, void *opaque);

/* Parse a strict unsigned decimal string; 0 or -1 (EINVAL). */
int xbd_parse_uint(const char *s, unsigned long max, unsigned long *out);

/* A frontend's boolean feature key read the way Linux's backends read it
 * (xenbus_read_unsigned(dir, key, 0), i.e. sscanf "%u"): leading
 * whitespace skipped, then the longest run of decimal digits taken as an
 * unsigned int (wrapping modulo 2^32 as the kernel's does); no digit there
 * (garbage, a sign, an empty string) means the default, 0.  True iff the
 * number is not 0: "1", "2", "255" and "7abc" are true, "0", "-1", "x" and
 * "0x10" false.  Never fails: a frontend's odd spelling of a feature flag
 * must not cost it its disk. */
bool xbd_parse_linux_flag(const char *s);

/* Backend kinds. */
/* Is this a kind xenblkd knows how to serve (vbd3, qdisk, vbd)? */
bool xbd_kind_known(const char *kind);
/* May we claim this kind on this host?  "vbd" only when the kernel's
 * xen-blkback is absent (why is logged). */
bool xbd_kind_claimable(const char *kind);

#endif
