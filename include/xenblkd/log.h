/*
 * log.h - xenblkd's logging.
 *
 * One process-wide sink chosen at start-up: stderr with --foreground,
 * syslog (facility daemon) otherwise.  Lines about a device must name the
 * domain, the backend kind and the device id; device.c does that with its
 * own prefix, the data plane with xbd_ring_params.name.
 */
#ifndef XENBLKD_LOG_H
#define XENBLKD_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum xbd_log_level {
    XBD_LOG_ERR = 0,
    XBD_LOG_WARN,
    XBD_LOG_INFO,
    XBD_LOG_DEBUG,
};

/* to_stderr: log to stderr (foreground) instead of syslog. */
void xbd_log_init(bool to_stderr, enum xbd_log_level max_level);
void xbd_log_close(void);
/* Change the sink and the level of a running daemon (configuration
 * reload); a change of sink is logged on both sinks. */
void xbd_log_reconfigure(bool to_stderr, enum xbd_log_level max_level);
/* "error", "warning", "info", "debug". */
const char *xbd_log_level_name(enum xbd_log_level level);
/* Start-up is over: with syslog, errors no longer also go to stderr. */
void xbd_log_startup_done(void);

/* Parse "error", "warn"/"warning", "info", "debug"; -1 if unknown. */
int xbd_log_level_parse(const char *s, enum xbd_log_level *out);

/* True if a message of this level would be emitted (skip costly
 * formatting on hot paths). */
bool xbd_log_enabled(enum xbd_log_level level);

void xbd_log(enum xbd_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void xbd_vlog(enum xbd_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define xbd_err(...)   xbd_log(XBD_LOG_ERR, __VA_ARGS__)
#define xbd_warn(...)  xbd_log(XBD_LOG_WARN, __VA_ARGS__)
#define xbd_info(...)  xbd_log(XBD_LOG_INFO, __VA_ARGS__)
#define xbd_debug(...) xbd_log(XBD_LOG_DEBUG, __VA_ARGS__)

#endif
