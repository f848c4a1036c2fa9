/*
 * service.c - the daemon as a systemd service: READY=1 when the devices
 * that exist at start-up have been taken up, STATUS= when the device or
 * ring counts change, RELOADING=1/READY=1 around a reload, STOPPING=1,
 * and WATCHDOG=1 keep-alives from the event loop itself.
 */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xenblkd/log.h"
#include "xenblkd/sd_notify.h"
#include "xenblkd/service.h"

struct xbd_service {
    struct ev_loop *loop;
    struct xbd_host *host;
    ev_timer ready;             /* READY=1 after the first evaluations */
    ev_timer status;            /* coalesces count changes into one STATUS= */
    ev_timer watchdog;
    char last_status[128];      /* last STATUS= sent: send only changes */
    bool ready_sent;
};

static void status_text(struct xbd_service *s, char *buf, size_t n)
{
    struct xbd_host_counts c;

    xbd_host_get_counts(s->host, &c);
    snprintf(buf, n, "%u device%s (%u connected), %u ring%s", c.devices,
             c.devices == 1 ? "" : "s", c.connected, c.rings, c.rings == 1 ? "" : "s");
}

/* STATUS= if the text changed; with extra (READY=1...) always. */
static void send_status(struct xbd_service *s, const char *extra)
{
    char text[sizeof(s->last_status)];

    status_text(s, text, sizeof(text));
    if (!extra && !strcmp(text, s->last_status))
        return;
    snprintf(s->last_status, sizeof(s->last_status), "%s", text);
    xbd_sd_notifyf("%s%sSTATUS=%s", extra ? extra : "", extra ? "\n" : "", text);
}

static void status_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct xbd_service *s = t->data;

    if (s->ready_sent)
        send_status(s, NULL);
}

/* A burst of evaluations (a guest with many disks, a watch storm) costs
 * one STATUS= at the end of the loop round, and nothing when nothing
 * visible changed. */
static void host_change_cb(void *opaque)
{
    struct xbd_service *s = opaque;

    if (!ev_is_active(&s->status))
        ev_timer_start(s->loop, &s->status);
}

static void ready_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct xbd_service *s = t->data;

    /* Evaluations run a few per loop round (eval_queue.h): ready once
     * every device found at start has had its first.  Pending also
     * counts requests out on the xenstore thread, which may take long on
     * a slow xenstored: look again a little later rather than spin. */
    if (xbd_host_evaluations_pending(s->host)) {
        ev_timer_set(t, 0.005, 0.);
        ev_timer_start(loop, t);
        return;
    }
    s->ready_sent = true;
    send_status(s, "READY=1");
    xbd_info("ready: %s", s->last_status);
}

static void watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    xbd_sd_notify("WATCHDOG=1");
}

static void start_watchdog(struct xbd_service *s)
{
    uint64_t usec = xbd_sd_watchdog_usec();

    if (!usec)
        return;
    /* Half the interval, as sd_watchdog_enabled(3) recommends: one late
     * loop round is not a wedged loop. */
    double every = (double)usec / 2e6;
    ev_timer_init(&s->watchdog, watchdog_cb, every, every);
    s->watchdog.data = s;
    ev_timer_start(s->loop, &s->watchdog);
    xbd_sd_notify("WATCHDOG=1");
    xbd_info("service watchdog: keep-alive every %.3f s", every);
}

struct xbd_service *xbd_service_new(struct ev_loop *loop, struct xbd_host *h)
{
    struct xbd_service *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->loop = loop;
    s->host = h;
    ev_timer_init(&s->ready, ready_cb, 0., 0.);
    /* Lowest priority: among the timers due in a loop round, this one
     * runs last (after that round's evaluations). */
    ev_set_priority(&s->ready, EV_MINPRI);
    s->ready.data = s;
    ev_timer_init(&s->status, status_cb, 0., 0.);
    ev_set_priority(&s->status, EV_MINPRI);
    s->status.data = s;
    ev_timer_init(&s->watchdog, watchdog_cb, 0., 0.);
    xbd_host_on_change(h, host_change_cb, s);
    start_watchdog(s);
    return s;
}

void xbd_service_ready(struct xbd_service *s)
{
    ev_timer_start(s->loop, &s->ready);
}

void xbd_service_reloading(struct xbd_service *s)
{
    if (!s->ready_sent)
        return;                 /* still starting: READY=1 comes anyway */
    /* MONOTONIC_USEC lets a service manager that sent the reload signal
     * tell this reload from an older one (systemd >= 253 requires it
     * for Type=notify-reload; older ones ignore it). */
    xbd_sd_notifyf("RELOADING=1\nMONOTONIC_USEC=%" PRIu64, xbd_sd_monotonic_usec());
}

void xbd_service_reloaded(struct xbd_service *s)
{
    if (s->ready_sent)
        send_status(s, "READY=1");
}

void xbd_service_stopping(struct xbd_service *s)
{
    ev_timer_stop(s->loop, &s->ready);      /* stopped while starting */
    xbd_sd_notify("STOPPING=1");
}

void xbd_service_free(struct xbd_service *s)
{
    if (!s)
        return;
    xbd_host_on_change(s->host, NULL, NULL);
    ev_timer_stop(s->loop, &s->ready);
    ev_timer_stop(s->loop, &s->status);
    ev_timer_stop(s->loop, &s->watchdog);
    free(s);
}
