/*
 * log.c - stderr or syslog sink for every part of the daemon.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include "xenblkd/log.h"

static bool log_stderr = true;     /* until xbd_log_init: start-up errors */
static enum xbd_log_level log_max = XBD_LOG_INFO;
/* Until start-up is over, errors also go to stderr so that whoever
 * started the daemon sees why it failed even when logging to syslog. */
static bool log_startup = true;

static const char *const level_names[] = {
    [XBD_LOG_ERR] = "error",
    [XBD_LOG_WARN] = "warning",
    [XBD_LOG_INFO] = "info",
    [XBD_LOG_DEBUG] = "debug",
};

static const int level_prio[] = {
    [XBD_LOG_ERR] = LOG_ERR,
    [XBD_LOG_WARN] = LOG_WARNING,
    [XBD_LOG_INFO] = LOG_INFO,
    [XBD_LOG_DEBUG] = LOG_DEBUG,
};

void xbd_log_init(bool to_stderr, enum xbd_log_level max_level)
{
    log_stderr = to_stderr;
    log_max = max_level;
    if (!to_stderr)
        openlog("xenblkd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void xbd_log_reconfigure(bool to_stderr, enum xbd_log_level max_level)
{
    if (to_stderr != log_stderr) {
        /* Say where the log went, on both sides of the switch. */
        xbd_info("log target: %s from now on", to_stderr ? "stderr" : "syslog");
        if (to_stderr)
            closelog();
        else
            openlog("xenblkd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
        log_stderr = to_stderr;
        xbd_info("log target: %s from now on", to_stderr ? "stderr" : "syslog");
    }
    log_max = max_level;
}

const char *xbd_log_level_name(enum xbd_log_level level)
{
    return level <= XBD_LOG_DEBUG ? level_names[level] : "?";
}

void xbd_log_startup_done(void)
{
    log_startup = false;
}

void xbd_log_close(void)
{
    if (!log_stderr)
        closelog();
}

int xbd_log_level_parse(const char *s, enum xbd_log_level *out)
{
    if (!strcasecmp(s, "warn")) {
        *out = XBD_LOG_WARN;
        return 0;
    }
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (!strcasecmp(s, level_names[i])) {
            *out = (enum xbd_log_level)i;
            return 0;
        }
    }
    return -1;
}

bool xbd_log_enabled(enum xbd_log_level level)
{
    return level <= log_max;
}

void xbd_vlog(enum xbd_log_level level, const char *fmt, va_list ap)
{
    int saved = errno;          /* callers log then inspect errno */

    if (!xbd_log_enabled(level))
        return;
    if (!log_stderr) {
        if (log_startup && level == XBD_LOG_ERR) {
            va_list aq;
            va_copy(aq, ap);
            fputs("xenblkd: ", stderr);
            vfprintf(stderr, fmt, aq);
            fputc('\n', stderr);
            va_end(aq);
        }
        vsyslog(level_prio[level], fmt, ap);
    } else {
        /* One fprintf per line keeps concurrent writers (tests run the
         * daemon and the frontend into one log) from interleaving. */
        char msg[1024];
        struct timespec ts;
        struct tm tm;

        vsnprintf(msg, sizeof(msg), fmt, ap);
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        fprintf(stderr, "%02d:%02d:%02d.%03ld xenblkd %s: %s\n",
                tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
                level_names[level], msg);
    }
    errno = saved;
}

void xbd_log(enum xbd_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    xbd_vlog(level, fmt, ap);
    va_end(ap);
}
