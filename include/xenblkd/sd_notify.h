/*
 * sd_notify.h - systemd's service notification protocol, spoken without
 * libsystemd (one datagram to $NOTIFY_SOCKET; see sd_notify(3)).
 *
 * Everything here is a no-op when the daemon was not started by a service
 * manager that asked for notifications ($NOTIFY_SOCKET unset).
 */
#ifndef XENBLKD_SD_NOTIFY_H
#define XENBLKD_SD_NOTIFY_H

#include <stdint.h>

/* Send MSG (newline-separated KEY=VALUE assignments) as one datagram.
 * Returns 1 if sent, 0 if there is nobody to tell, -1 on error (logged at
 * debug level: a service manager that went away must not stop the daemon). */
int xbd_sd_notify(const char *msg);
int xbd_sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval the service manager asked for ($WATCHDOG_USEC),
 * in microseconds, if it is meant for this process ($WATCHDOG_PID unset
 * or our pid); 0 if there is no watchdog. */
uint64_t xbd_sd_watchdog_usec(void);

/* CLOCK_MONOTONIC in microseconds, as MONOTONIC_USEC= wants it. */
uint64_t xbd_sd_monotonic_usec(void);

#endif
