/*
 * sd_notify.c - systemd's notification protocol without libsystemd.
 *
 * The protocol is small and stable (sd_notify(3)): the service manager
 * passes a datagram socket address in $NOTIFY_SOCKET, a leading '@' naming
 * the abstract namespace; each message is one datagram of KEY=VALUE lines.
 * Linking libsystemd for this would add a dependency to a daemon that must
 * also run on hosts started by other init systems.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "xenblkd/log.h"
#include "xenblkd/sd_notify.h"
#include "xenblkd/xenbus.h"

int xbd_sd_notify(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t len;
    int fd, rc = 1;

    if (!path || !*path)
        return 0;
    len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len < 2 || len >= sizeof(sa.sun_path)) {
        xbd_debug("sd_notify: ignoring unusable NOTIFY_SOCKET '%s'", path);
        return -1;
    }
    memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0';      /* abstract namespace */
    /* Non-blocking: a service manager that stops reading must not stall
     * the event loop (and with it every ring) in sendto(). */
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        xbd_debug("sd_notify: socket: %s", strerror(errno));
        return -1;
    }
    /* An abstract address is exactly len bytes long (no terminating NUL);
     * a path one may be too. */
    if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0) {
        xbd_debug("sd_notify: %s: %s", path, strerror(errno));
        rc = -1;
    }
    close(fd);
    return rc;
}

int xbd_sd_notifyf(const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return xbd_sd_notify(msg);
}

uint64_t xbd_sd_watchdog_usec(void)
{
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    unsigned long v;

    if (!usec || xbd_parse_uint(usec, UINT32_MAX * 1000000ul, &v) < 0 || v == 0)
        return 0;
    /* $WATCHDOG_PID names the process the watchdog is for; a child that
     * inherited the environment must not pet its parent's watchdog. */
    if (pid) {
        unsigned long p;
        if (xbd_parse_uint(pid, 0x7fffffff, &p) < 0 || (pid_t)p != getpid())
            return 0;
    }
    return v;
}

uint64_t xbd_sd_monotonic_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
