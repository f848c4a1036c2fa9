/*
 * control_cmd.h - the commands of the control protocol (src/control_cmd.c),
 * apart from the connections that carry them (src/control.c).
 */
#ifndef XENBLKD_CONTROL_CMD_H
#define XENBLKD_CONTROL_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "xenblkd/control.h"

/* Who sent a request (SO_PEERCRED at accept). */
struct xbd_ctl_peer {
    pid_t pid;
    uid_t uid;
    gid_t gid;
};

/* The socket's own figures (src/control.c), in stats as "control". */
struct xbd_ctl_counters {
    uint64_t deferred;          /* group clients queued: over the allowance */
    uint64_t group_busy_us;     /* loop time that went into group clients */
    unsigned waiting;           /* group clients queued now */
};

/* The last full stats reply (no filter), served again to clients that
 * are not root while younger than XBD_CTL_STATS_CACHE_MS. */
struct xbd_ctl_cache {
    char *line;                 /* malloc'd, or NULL */
    size_t len;
    double at;                  /* xbd_ctl_now() when built */
    uint64_t hits;              /* replies served from it */
};

/* What commands may look at and act on. */
struct xbd_ctl_env {
    struct xbd_host *host;
    const struct xbd_control_ops *ops;
    void *opaque;
    double started;             /* CLOCK_MONOTONIC seconds at start */
    const struct xbd_ctl_counters *counters;    /* NULL: none */
    struct xbd_ctl_cache *cache;                /* NULL: none */
};

struct xbd_ctl_reply {
    char *line;                 /* malloc'd, ends with "\n"; NULL: out of memory */
    size_t len;
    bool stop;                  /* call ops->shutdown(stop_mode) once queued */
    enum xbd_stop_mode stop_mode;
    /* settle: no line yet; the connection waits (src/settle.h) for at
     * most settle_ms and answers with xbd_ctl_settle_line. */
    bool settle;
    unsigned settle_ms;
};

/* Answer one request line (len bytes, no "\n"; need not be terminated). */
void xbd_ctl_handle(const struct xbd_ctl_env *env, const struct xbd_ctl_peer *peer,
                    const char *line, size_t len, struct xbd_ctl_reply *out);
/* A failure line {"ok":false,...}; NULL when out of memory. */
char *xbd_ctl_error_line(const char *code, const char *msg, size_t *len);

struct xbd_settle_result;
/* The reply to a settle that waited for at most timeout_ms. */
char *xbd_ctl_settle_line(const struct xbd_settle_result *r, unsigned timeout_ms, size_t *len);

double xbd_ctl_now(void);

#endif
