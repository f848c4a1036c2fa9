/*
 * reload.c - apply a re-read configuration to the running daemon.
 *
 * What can change at run time is decided per key in src/config.c
 * (enum xbd_conf_apply); man xenblkd.conf documents it.
 */
#include "config.h"

#include <string.h>

#include "xenblkd/daemon.h"
#include "xenblkd/service.h"
#include "xenblkd/log.h"

#include "log_limit.h"

static const char *apply_note(enum xbd_conf_apply a)
{
    switch (a) {
    case XBD_CONF_AT_ONCE:
        return "";
    case XBD_CONF_NEW_DEVICES:
        return " (for devices that connect from now on)";
    case XBD_CONF_RESTART:
        break;
    }
    return "";
}

/* Log every change; restart-only keys keep their running value in next.
 * Returns the number of settings that change now. */
static unsigned merge_changes(const struct xbd_daemon_config *cur, struct xbd_daemon_config *next)
{
    char was[XBD_CONF_PATH_MAX], now[XBD_CONF_PATH_MAX];
    unsigned changed = 0;

    for (size_t i = 0; i < xbd_conf_key_count(); i++) {
        const struct xbd_conf_key *k = xbd_conf_key_at(i);
        enum xbd_conf_apply a = xbd_conf_key_apply(k);

        xbd_conf_key_format(cur, k, was, sizeof(was));
        xbd_conf_key_format(next, k, now, sizeof(now));
        if (!strcmp(was, now))
            continue;
        if (a == XBD_CONF_RESTART) {
            xbd_warn("reload: [%s] %s changed (%s -> %s): takes effect only when "
                     "xenblkd restarts; still using %s", xbd_conf_key_section(k),
                     xbd_conf_key_name(k), was, now, was);
            xbd_conf_key_copy(next, cur, k);
            continue;
        }
        xbd_info("reload: [%s] %s: %s -> %s%s", xbd_conf_key_section(k), xbd_conf_key_name(k),
                 was, now, apply_note(a));
        changed++;
    }
    return changed;
}

int xbd_daemon_reload(struct xbd_daemon *d, char *err, size_t errlen)
{
    struct xbd_daemon_config next;
    struct xbd_config disks;
    bool missing = false;
    int rc = 0;

    /* Whoever asks (SIGHUP, the control socket), systemd is told. */
    xbd_service_reloading(d->service);
    if (xbd_conf_build(&next, &d->src, &missing, err, errlen) < 0) {
        xbd_err("reload: %s; keeping the running configuration", err);
        rc = -1;
    } else {
        unsigned n = merge_changes(&d->cfg, &next);
        xbd_info("configuration reloaded from %s%s: %u setting%s changed", d->src.path,
                 missing ? " (absent: defaults)" : "", n, n == 1 ? "" : "s");
        d->cfg = next;
        xbd_log_reconfigure(d->cfg.log_target == XBD_LOG_TO_STDERR, d->cfg.log_level);
        xbd_log_limit_configure(d->cfg.log_rate, d->cfg.log_burst);
        xbd_conf_disks(&d->cfg, &disks);
        xbd_host_set_config(d->host, &disks);
        xbd_io_engine_set_limits(d->io, disks.inflight_per_device, disks.inflight_per_ring);
    }
    /* A disk that grew is served at its new size whatever the file says. */
    xbd_info("checking the size of every backing store");
    xbd_host_check_sizes(d->host);
    xbd_service_reloaded(d->service);
    return rc;
}
