/*
 * daemon.h - the running daemon: what main() sets up and what a reload
 * (SIGHUP, the control socket's "reload") may change.
 */
#ifndef XENBLKD_DAEMON_H
#define XENBLKD_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <ev.h>

#include "xenblkd/config.h"
#include "xenblkd/dataplane.h"
#include "xenblkd/device.h"
#include "xenblkd/xenbus.h"

struct xbd_service;
struct xbd_control;

struct xbd_daemon {
    struct ev_loop *loop;
    struct xbd_xenbus *xb;
    struct xbd_io_engine *io;
    struct xbd_host *host;
    struct xbd_service *service;    /* systemd notifications */
    struct xbd_control *control;    /* the control socket */
    struct xbd_conf_source src;     /* the file and the command line, for reloads */
    struct xbd_daemon_config cfg;   /* the running configuration */
    unsigned domid;                 /* our own domain id, resolved at start-up */
    ev_signal sigterm, sigint, sighup;
    int state_lock;                 /* flock on <state-dir>/lock, -1 if none */
    bool stopping;                  /* a stop was asked for: later ones are ignored */
    enum xbd_stop_mode stop_mode;   /* how the daemon is stopping */
    bool clean_exit;
};

/*
 * Reload: build the configuration again from d->src (file, then command
 * line), and re-read the size of every backing store (online resize; done
 * whatever the file says).
 *
 * A valid configuration is applied: [log] at once; [disks] to devices
 * that enter InitWait from now on (the others keep what they were
 * offered); [daemon] and [control] need a restart: a change is logged as a
 * warning and the running value stays.  Every change is logged.
 *
 * An invalid one is rejected and nothing changes: -1, with
 * "FILE:LINE: reason" (or "FILE: reason", "--option: reason") in err, also
 * logged as an error.  Returns 0 otherwise.
 */
int xbd_daemon_reload(struct xbd_daemon *d, char *err, size_t errlen);

#endif
