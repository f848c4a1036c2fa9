/*
 * service.h - what the service manager (systemd) sees of the daemon:
 * readiness, a status line with device and ring counts, reloads, stop,
 * and watchdog keep-alives sent from the event loop.
 *
 * Built on sd_notify.h; without $NOTIFY_SOCKET every call costs nothing
 * but the status bookkeeping.
 */
#ifndef XENBLKD_SERVICE_H
#define XENBLKD_SERVICE_H

#include <ev.h>

#include "xenblkd/device.h"

struct xbd_service;

/* Follow h's counts and, if $WATCHDOG_USEC asks for it, send WATCHDOG=1
 * every half of that interval from a timer of loop: a loop that stops
 * turning stops the keep-alives, and the service manager kills us. */
struct xbd_service *xbd_service_new(struct ev_loop *loop, struct xbd_host *h);
/* Send READY=1 (and the first STATUS=) once the loop has evaluated every
 * device that existed when the kinds were added: call it after
 * xbd_host_add_kind, before ev_run. */
void xbd_service_ready(struct xbd_service *s);
/* Around a reload: RELOADING=1 + MONOTONIC_USEC=, then READY=1. */
void xbd_service_reloading(struct xbd_service *s);
void xbd_service_reloaded(struct xbd_service *s);
/* STOPPING=1; keep-alives go on while the devices drain. */
void xbd_service_stopping(struct xbd_service *s);
void xbd_service_free(struct xbd_service *s);

#endif
