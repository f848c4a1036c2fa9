/*
 * xenblkctl.h - what the files of the xenblkctl client share.
 *
 * xenblkctl is its own program (it links nothing of the daemon):
 *   src/xenblkctl.c          command line, dispatch, the simple commands
 *   src/xenblkctl_client.c   the control socket: one request, one reply
 *   src/xenblkctl_table.c    aligned text columns
 *   src/xenblkctl_stats.c    list and stats as tables (and --watch)
 *   src/xenblkctl_prom.c     stats in the Prometheus text format
 *   src/xenblkctl_hist.c     latency histograms: mean, percentiles
 *   src/xenblkctl_xs.c       attach and detach through xenstore
 */
#ifndef XENBLKCTL_H
#define XENBLKCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <json-c/json.h>

/* Exit statuses: stable, documented in xenblkctl(8) (EXIT STATUS). */
enum xbc_exit {
    XBC_OK = 0,
    XBC_EFAIL = 1,      /* the operation failed (daemon error, xenstore error) */
    XBC_EUSAGE = 2,     /* bad command line */
    XBC_ENODAEMON = 3,  /* xenblkd is not running (no socket, refused) */
    XBC_EPERM = 4,      /* permission denied (socket, daemon or xenstore) */
    XBC_ENOENT = 5,     /* no such device or domain */
    XBC_EEXIST = 6,     /* attach: the device already exists */
    XBC_ETIMEDOUT = 7,  /* no answer / no state change within the time limit */
};

#define XBC_DEFAULT_SOCKET "/run/xenblkd/control.sock"

/* Options every command sees. */
struct xbc_global {
    const char *socket;         /* control socket path */
};

/* Messages on stderr, prefixed "xenblkctl: ". */
void xbc_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void xbc_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A usage error of COMMAND: message, hint at --help, returns XBC_EUSAGE. */
int xbc_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print COMMAND's help on stdout; returns XBC_OK. */
int xbc_command_help(const char *command);

/* Strict number parsing: the whole string, in [0, max]; false otherwise. */
bool xbc_parse_uint(const char *s, uint64_t max, uint64_t *out);
/* Seconds with an optional fraction ("0.5"), > 0 and <= max. */
bool xbc_parse_seconds(const char *s, double max, double *out);
/* DOMID[/DEVID] as "stats" takes it; devid -1 when absent. */
bool xbc_parse_target(const char *s, long *domid, long *devid);
/* A device id: a number (51712) or a Linux name (xvda, xvdb3, xvdaa). */
bool xbc_parse_devid(const char *s, uint32_t *devid);
/* The xvd name of a device id into buf ("xvda"); "" when it has none. */
void xbc_devid_name(uint32_t devid, char *buf, size_t len);

/* ---- the control socket (xenblkctl_client.c) ---- */

/* A new request object {"version":1,"command":COMMAND}. */
json_object *xbc_request_new(const char *command);
/* How much xbc_call says when it fails. */
enum xbc_verbosity {
    XBC_LOUD,               /* every error */
    XBC_QUIET_NODAEMON,     /* all but "xenblkd is not running" */
    XBC_QUIET,              /* nothing: the caller only probes */
};
/* Send REQ (consumed) to the daemon at SOCKET and wait for its reply.
 * On success *reply holds a {"ok":true,...} object (caller puts it) and
 * XBC_OK is returned; otherwise the error has been printed (as V allows)
 * and the exit status is returned (never XBC_OK). */
int xbc_call(const char *socket, json_object *req, json_object **reply,
             enum xbc_verbosity v);
/* xbc_call, waiting at most TIMEOUT_MS for the reply (settle). */
int xbc_call_timeout(const char *socket, json_object *req, json_object **reply,
                     enum xbc_verbosity v, int64_t timeout_ms);
/* xbc_call, and *peer: the pid of the process listening on SOCKET (the
 * daemon, from SO_PEERCRED, in our PID namespace), 0 when unknown. */
int xbc_call_peer(const char *socket, json_object *req, json_object **reply,
                  enum xbc_verbosity v, pid_t *peer);
/* True if a daemon answers a ping on SOCKET (prints nothing). */
bool xbc_daemon_up(const char *socket);
/* settle --timeout: default and limit (the daemon's, control.h). */
#define XBC_SETTLE_DEFAULT_S 30.0
#define XBC_SETTLE_MAX_S 3600.0
/* Milliseconds the client waits for a reply. */
#define XBC_REPLY_TIMEOUT_MS 10000

/* Field access that tolerates absent or mistyped members: the daemon may
 * be newer or older than the client. */
json_object *xbc_get(json_object *o, const char *key);
uint64_t xbc_u64(json_object *o, const char *key);
double xbc_double(json_object *o, const char *key);
const char *xbc_str(json_object *o, const char *key, const char *dflt);
bool xbc_bool(json_object *o, const char *key);
bool xbc_has(json_object *o, const char *key);
/* Walk "a.b.c" through nested objects; NULL if a step is missing. */
json_object *xbc_path(json_object *o, const char *dotted);
uint64_t xbc_path_u64(json_object *o, const char *dotted);

/* ---- aligned columns (xenblkctl_table.c) ---- */

struct xbc_table;
/* NCOLS columns; right[i] true right-aligns column i (numbers). */
struct xbc_table *xbc_table_new(unsigned ncols, const bool *right);
/* Add a row: exactly ncols cells (copied). */
void xbc_table_row(struct xbc_table *t, const char *const *cells);
void xbc_table_rowf(struct xbc_table *t, ...); /* ncols const char * */
/* Print with two spaces between columns, and free. */
void xbc_table_print(struct xbc_table *t, FILE *f);

/* ---- latency histograms (xenblkctl_hist.c) ---- */

/* A histogram as the daemon sends it: count[i] requests took less than
 * upper_us(i) and at least upper_us(i-1) (0 for i = 0) microseconds; the
 * last bucket has no upper bound. */
#define XBC_HIST_MAX 64
struct xbc_hist {
    unsigned n;                 /* buckets */
    uint64_t count[XBC_HIST_MAX];
    uint64_t total;             /* sum of count[] */
    uint64_t sum_us;            /* sum of every latency, µs */
};
/* Upper bound (exclusive) of bucket i in µs; INFINITY for the last. */
double xbc_hist_upper_us(const struct xbc_hist *h, unsigned i);
double xbc_hist_lower_us(const struct xbc_hist *h, unsigned i);
/* Fill H from the daemon's histogram object; false if malformed. */
bool xbc_hist_from_json(json_object *o, struct xbc_hist *h);
/* B - A bucket by bucket (a later sample minus an earlier one). */
void xbc_hist_sub(struct xbc_hist *out, const struct xbc_hist *b, const struct xbc_hist *a);
void xbc_hist_add(struct xbc_hist *acc, const struct xbc_hist *h);
/* Mean in µs (NAN when empty). */
double xbc_hist_mean_us(const struct xbc_hist *h);
/* Quantile q (0..1) in µs, interpolated linearly inside its bucket (as
 * Prometheus' histogram_quantile); NAN when empty. */
double xbc_hist_quantile_us(const struct xbc_hist *h, double q);

/* ---- commands ---- */
int xbc_cmd_list(const struct xbc_global *g, int argc, char **argv);
int xbc_cmd_stats(const struct xbc_global *g, int argc, char **argv);
int xbc_prom_write(FILE *f, json_object *reply);
int xbc_cmd_attach(const struct xbc_global *g, int argc, char **argv);
int xbc_cmd_detach(const struct xbc_global *g, int argc, char **argv);

#endif
