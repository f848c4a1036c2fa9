/*
 * config.h - xenblkd's whole configuration: built-in defaults, then the
 * configuration file (man xenblkd.conf), then the command line.
 *
 * The file is INI-like: "[section]" lines, "key = value" lines, comment
 * lines starting with '#' or ';'.  Every key has one long option of the
 * daemon (the table in src/config.c says which), so whatever the file can
 * say the command line can override.  Errors name the place:
 * "FILE:LINE: reason" for the file, "--option: reason" for the command line.
 *
 * This header knows nothing of the event loop: src/reload.c applies a
 * configuration to a running daemon.
 */
#ifndef XENBLKD_CONFIG_H
#define XENBLKD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "xenblkd/device.h"
#include "xenblkd/log.h"

#define XBD_CONF_DEFAULT_STATE_DIR      "/run/xenblkd"
#define XBD_CONF_DEFAULT_CONTROL_SOCKET "/run/xenblkd/control.sock"
#define XBD_CONF_DEFAULT_CONTROL_GROUP  "root"

#define XBD_DOMID_AUTO   (-1L)  /* domid: the "domid" key of our xenstore home */
#define XBD_QUEUES_AUTO  0u     /* max-queues: the number of online CPUs */
#define XBD_MAX_PGRANTS_LIMIT   (1u << 20)
#define XBD_PGRANT_IDLE_LIMIT   86400u

enum xbd_log_target {
    XBD_LOG_TO_SYSLOG = 0,
    XBD_LOG_TO_STDERR,
};

/* Sizes include the terminating NUL; a longer value is an error. */
#define XBD_CONF_KINDS_MAX   32
#define XBD_CONF_SOCKET_MAX  108    /* sizeof(sockaddr_un.sun_path) */
#define XBD_CONF_GROUP_MAX   64
#define XBD_CONF_STATE_DIR_MAX 1025  /* the journal's limit: 1024 bytes */
#define XBD_CONF_PATH_MAX    4096   /* buffers that hold any value */

struct xbd_daemon_config {
    /* [daemon]: read once at start-up (a reload only warns) */
    char kinds[XBD_CONF_KINDS_MAX];         /* "vbd3,qdisk", validated */
    long domid;                             /* XBD_DOMID_AUTO or 0..0x7fef */
    char state_dir[XBD_CONF_STATE_DIR_MAX]; /* absolute; the crash journal lives here */
    /* [log]: applied at once on reload */
    enum xbd_log_level log_level;
    enum xbd_log_target log_target;
    unsigned log_rate, log_burst;           /* per disk; 0 rate = no limit */
    /* [control]: the control socket, read once at start-up */
    char control_socket[XBD_CONF_SOCKET_MAX];
    char control_group[XBD_CONF_GROUP_MAX]; /* a group name or a number */
    /* [disks]: what a device is offered when it enters InitWait.
     * disks.max_queues may be XBD_QUEUES_AUTO here; xbd_conf_disks()
     * resolves it. */
    struct xbd_config disks;
};

/* How a key takes effect when the daemon reloads its configuration. */
enum xbd_conf_apply {
    XBD_CONF_AT_ONCE,           /* log settings */
    XBD_CONF_NEW_DEVICES,       /* [disks]: devices entering InitWait later */
    XBD_CONF_RESTART,           /* needs a restart; a reload logs a warning */
};

struct xbd_conf_key;            /* one row of the key table (src/config.c) */

/* One command-line setting, kept so that a reload applies it again on
 * top of the re-read file (the command line always wins). */
struct xbd_conf_override {
    const struct xbd_conf_key *key;
    const char *value;          /* points into argv */
};

#define XBD_CONF_MAX_OVERRIDES 64

/* Where a configuration comes from: the file and the command line. */
struct xbd_conf_source {
    const char *path;           /* --config FILE, or the default */
    bool explicit_path;         /* given with --config: must exist */
    size_t n_overrides;
    struct xbd_conf_override overrides[XBD_CONF_MAX_OVERRIDES];
};

/* The default file: $(sysconfdir)/xenblkd.conf. */
const char *xbd_conf_default_path(void);

void xbd_conf_defaults(struct xbd_daemon_config *c);

/* Build the effective configuration: defaults, then src->path (a missing
 * file is fine unless explicit_path; *missing says so when not NULL),
 * then the command-line overrides.  0 on success; -1 with the reason in
 * err ("FILE:LINE: reason", "FILE: reason" when the file cannot be read,
 * "--option: reason"), and *out unspecified. */
int xbd_conf_build(struct xbd_daemon_config *out, const struct xbd_conf_source *src,
                   bool *missing, char *err, size_t errlen);

/* Parse one file on top of *c.  missing_ok: a file that does not exist
 * leaves *c as it is (and *missing is set when not NULL). */
int xbd_conf_load_file(struct xbd_daemon_config *c, const char *path, bool missing_ok,
                       bool *missing, char *err, size_t errlen);

/* Write *c in the file's own format, every key, so that the output can be
 * used as a configuration file.  header: a comment line (no '#') or NULL. */
void xbd_conf_print(FILE *f, const struct xbd_daemon_config *c, const char *header);

/* The [disks] settings as devices use them: max_queues "auto" becomes the
 * number of online CPUs, and no value exceeds that number or
 * XBD_MAX_QUEUES. */
void xbd_conf_disks(const struct xbd_daemon_config *c, struct xbd_config *out);

/* ---- the key table, for the command line and for reload ---- */

size_t xbd_conf_key_count(void);
const struct xbd_conf_key *xbd_conf_key_at(size_t i);
/* The key whose long option is name (without "--"), or NULL. */
const struct xbd_conf_key *xbd_conf_key_by_option(const char *name);
const char *xbd_conf_key_section(const struct xbd_conf_key *k);
const char *xbd_conf_key_name(const struct xbd_conf_key *k);
const char *xbd_conf_key_option(const struct xbd_conf_key *k);
/* Short option letter, or 0. */
int xbd_conf_key_short(const struct xbd_conf_key *k);
/* Name of the argument in --help ("N", "LIST"...) and the help text
 * (lines separated by '\n', without the default: --help adds it). */
const char *xbd_conf_key_arg(const struct xbd_conf_key *k);
const char *xbd_conf_key_help(const struct xbd_conf_key *k);
enum xbd_conf_apply xbd_conf_key_apply(const struct xbd_conf_key *k);

/* Set one key from text as the file would ("yes", "auto", "4"...).
 * -1 with the reason (without place) in why. */
int xbd_conf_key_set(struct xbd_daemon_config *c, const struct xbd_conf_key *k,
                     const char *value, char *why, size_t n);
/* The key's value in *c, in the file's format. */
void xbd_conf_key_format(const struct xbd_daemon_config *c, const struct xbd_conf_key *k,
                         char *buf, size_t n);
/* Copy the key's value from src to dst. */
void xbd_conf_key_copy(struct xbd_daemon_config *dst, const struct xbd_daemon_config *src,
                       const struct xbd_conf_key *k);

#endif
