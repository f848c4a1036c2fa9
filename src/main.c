/*
 * main.c - xenblkd's command line, signals and main loop.
 *
 * Everything runs in one libev loop: the xenstore watch fd, every ring's
 * event channel and the I/O engine's completion eventfd.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ev.h>

#include "xenblkd/config.h"
#include "xenblkd/daemon.h"
#include "xenblkd/control.h"
#include "xenblkd/dataplane.h"
#include "xenblkd/device.h"
#include "xenblkd/journal.h"
#include "xenblkd/log.h"
#include "xenblkd/service.h"
#include "xenblkd/xenbus.h"

#include "log_limit.h"
#include "mkdir_mode.h"

struct cmdline {
    struct xbd_conf_source src;
    bool check_config;          /* --check-config */
};

/* First column of --help; longer option texts go on a line of their own. */
#define HELP_COL 30

static void usage_line(FILE *f, const char *opt, const char *help, const char *def)
{
    const char *nl;
    int w = fprintf(f, "  %s", opt);

    if (w >= HELP_COL) {
        fputc('\n', f);
        w = 0;
    }
    fprintf(f, "%*s", HELP_COL - w, "");
    for (;; help = nl + 1) {
        nl = strchr(help, '\n');
        if (!nl)
            break;
        fprintf(f, "%.*s\n%*s", (int)(nl - help), help, HELP_COL, "");
    }
    if (!def)
        fprintf(f, "%s\n", help);
    else if (HELP_COL + strlen(help) + strlen(def) + 12 <= 79)
        fprintf(f, "%s (default: %s)\n", help, def);
    else
        fprintf(f, "%s\n%*s(default: %s)\n", help, HELP_COL, "", def);
}

static void usage(FILE *f)
{
    struct xbd_daemon_config def;
    char opt[80], val[XBD_CONF_PATH_MAX], cfghelp[160];

    xbd_conf_defaults(&def);
    fprintf(f,
        "Usage: xenblkd [OPTION]...\n"
        "Userspace Xen block backend: serves the virtual disks that the toolstack\n"
        "puts under /local/domain/<domid>/backend/<kind> in xenstore.\n"
        "Every setting of the configuration file (xenblkd.conf(5)) has an option;\n"
        "options override the file.\n"
        "\n");
    snprintf(cfghelp, sizeof(cfghelp), "read the configuration from FILE\n(default: %s)",
             xbd_conf_default_path());
    usage_line(f, "    --config FILE", cfghelp, NULL);
    usage_line(f, "    --check-config", "check the configuration, print it as\n"
               "a configuration file and exit", NULL);
    usage_line(f, "-f, --foreground", "log to stderr instead of syslog\n"
               "(same as --log-target stderr)", NULL);
    for (size_t i = 0; i < xbd_conf_key_count(); i++) {
        const struct xbd_conf_key *k = xbd_conf_key_at(i);
        int s = xbd_conf_key_short(k);

        snprintf(opt, sizeof(opt), "%c%c%c --%s %s", s ? '-' : ' ', s ? s : ' ', s ? ',' : ' ',
                 xbd_conf_key_option(k), xbd_conf_key_arg(k));
        xbd_conf_key_format(&def, k, val, sizeof(val));
        usage_line(f, opt, xbd_conf_key_help(k), val);
    }
    usage_line(f, "    --no-direct-io", "same as --direct-io no", NULL);
    usage_line(f, "-h, --help", "show this help and exit", NULL);
    usage_line(f, "-V, --version", "show the version and exit", NULL);
    fprintf(f,
        "\n"
        "SIGTERM or SIGINT: stop for a restart: drain the rings, leave every device\n"
        "as it is in xenstore (guests keep their disks), exit; the next xenblkd\n"
        "resumes every ring.\n"
        "SIGHUP: reload the configuration file, re-read every backing store's size\n"
        "(online resize).\n");
}

/* Remember KEY=VALUE from the command line; a repeated option replaces
 * the earlier one (the last one wins, as with every other option). */
static void add_override(struct xbd_conf_source *src, const struct xbd_conf_key *k,
                         const char *value)
{
    for (size_t i = 0; i < src->n_overrides; i++) {
        if (src->overrides[i].key == k) {
            src->overrides[i].value = value;
            return;
        }
    }
    /* At most one per key: the table is smaller than the array. */
    src->overrides[src->n_overrides++] = (struct xbd_conf_override){ k, value };
}

/* Check a command-line value at once, so that a typo is reported as the
 * option it is, before the file is read. */
static int check_option(const struct xbd_conf_key *k, const char *value)
{
    struct xbd_daemon_config scratch;
    char why[400];

    xbd_conf_defaults(&scratch);
    if (xbd_conf_key_set(&scratch, k, value, why, sizeof(why)) < 0) {
        fprintf(stderr, "xenblkd: --%s: %s\n", xbd_conf_key_option(k), why);
        return -1;
    }
    return 0;
}

enum { OPT_CONFIG = 256, OPT_CHECK_CONFIG, OPT_NO_DIRECT, OPT_KEY_BASE };

static const struct xbd_conf_key *key_for_opt(int c)
{
    for (size_t i = 0; i < xbd_conf_key_count(); i++) {
        const struct xbd_conf_key *k = xbd_conf_key_at(i);
        if (c == (xbd_conf_key_short(k) ? xbd_conf_key_short(k) : OPT_KEY_BASE + (int)i))
            return k;
    }
    return NULL;
}

/* 0 ok, 1 exit successfully (--help/--version), -1 error. */
static int parse_options(int argc, char **argv, struct cmdline *o)
{
    static const struct option fixed[] = {
        { "config", required_argument, NULL, OPT_CONFIG },
        { "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
        { "foreground", no_argument, NULL, 'f' },
        { "no-direct-io", no_argument, NULL, OPT_NO_DIRECT },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
    };
    const size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
    struct option longopts[sizeof(fixed) / sizeof(fixed[0]) + XBD_CONF_MAX_OVERRIDES + 1];
    size_t n = 0;
    int c;

    memset(o, 0, sizeof(*o));
    o->src.path = xbd_conf_default_path();
    memcpy(longopts, fixed, sizeof(fixed));
    n = nfixed;
    for (size_t i = 0; i < xbd_conf_key_count() && i < XBD_CONF_MAX_OVERRIDES; i++) {
        const struct xbd_conf_key *k = xbd_conf_key_at(i);
        int s = xbd_conf_key_short(k);
        longopts[n++] = (struct option){ xbd_conf_key_option(k), required_argument, NULL,
                                         s ? s : OPT_KEY_BASE + (int)i };
    }
    longopts[n] = (struct option){ NULL, 0, NULL, 0 };

    while ((c = getopt_long(argc, argv, "fk:l:d:hV", longopts, NULL)) != -1) {
        const struct xbd_conf_key *k;

        switch (c) {
        case OPT_CONFIG:
            o->src.path = optarg;
            o->src.explicit_path = true;
            break;
        case OPT_CHECK_CONFIG:
            o->check_config = true;
            break;
        case 'f':
            add_override(&o->src, xbd_conf_key_by_option("log-target"), "stderr");
            break;
        case OPT_NO_DIRECT:
            add_override(&o->src, xbd_conf_key_by_option("direct-io"), "no");
            break;
        case 'h':
            usage(stdout);
            return 1;
        case 'V':
            printf("xenblkd %s\n", PACKAGE_VERSION);
            return 1;
        default:
            k = key_for_opt(c);
            if (!k) {
                usage(stderr);
                return -1;
            }
            if (check_option(k, optarg) < 0)
                return -1;
            add_override(&o->src, k, optarg);
            break;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "xenblkd: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* --check-config: the effective configuration, in the file's format. */
static void print_config(const struct xbd_daemon_config *cfg, const char *path, bool missing)
{
    char header[XBD_CONF_PATH_MAX + 100];

    snprintf(header, sizeof(header), "xenblkd %s: defaults, %s%s, command line",
             PACKAGE_VERSION, path, missing ? " (absent)" : "");
    xbd_conf_print(stdout, cfg, header);
}

static int add_kinds(struct xbd_host *h, const char *list)
{
    char *copy = strdup(list), *save = NULL;
    int served = 0, rc = 0;

    if (!copy)
        return -1;
    for (char *k = strtok_r(copy, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        if (!xbd_kind_claimable(k))
            continue;
        if (xbd_host_add_kind(h, k) < 0) {
            rc = -1;
            break;
        }
        served++;
    }
    free(copy);
    if (rc == 0 && served == 0) {
        xbd_err("no backend kind left to serve");
        rc = -1;
    }
    return rc;
}

static void shutdown_done(void *opaque)
{
    struct xbd_daemon *d = opaque;

    if (d->stop_mode == XBD_STOP_HANDOVER)
        xbd_info("handover done, exiting: the next xenblkd resumes every ring");
    else
        xbd_info("every device closed, exiting");
    d->clean_exit = true;
    ev_break(d->loop, EVBREAK_ALL);
}

static void daemon_stop(struct xbd_daemon *d, enum xbd_stop_mode mode)
{
    /* The first stop decides: a SIGTERM during a close for good must not
     * turn it into a handover, nor the other way round. */
    if (d->stopping)
        return;
    d->stopping = true;
    xbd_service_stopping(d->service);
    d->stop_mode = mode;
    xbd_host_shutdown(d->host, mode, shutdown_done, d);
}

static void sig_stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    xbd_info("received %s", strsignal(w->signum));
    /* systemd sends SIGTERM for restart and stop alike; a host shutdown
     * comes after the guests are gone.  Closing every disk for good is
     * the control socket's explicit shutdown --close. */
    daemon_stop(w->data, XBD_STOP_HANDOVER);
}

static void sig_hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct xbd_daemon *d = w->data;
    char err[XBD_CONF_PATH_MAX + 512];

    /* The configuration file, then the size of every backing store (an
     * image grown with truncate, an LV extended); an invalid file is
     * logged by the reload and changes nothing. */
    xbd_info("SIGHUP: reloading");
    xbd_daemon_reload(d, err, sizeof(err));
}

/* What the control socket's reload and shutdown do. */
static int ctl_reload(void *opaque, char *err, size_t errlen)
{
    xbd_info("reload requested on the control socket");
    return xbd_daemon_reload(opaque, err, errlen);
}

static void ctl_shutdown(void *opaque, enum xbd_stop_mode mode)
{
    xbd_info("shutdown requested on the control socket%s",
             mode == XBD_STOP_CLOSE ? ": closing every device" : "");
    daemon_stop(opaque, mode);
}

static bool ctl_stopping(void *opaque, enum xbd_stop_mode *mode)
{
    const struct xbd_daemon *d = opaque;

    *mode = d->stop_mode;
    return d->stopping;
}

static const struct xbd_control_ops ctl_ops = {
    .reload = ctl_reload,
    .shutdown = ctl_shutdown,
    .stopping = ctl_stopping,
};

static void install_signals(struct xbd_daemon *d)
{
    signal(SIGPIPE, SIG_IGN);
    ev_signal_init(&d->sigterm, sig_stop_cb, SIGTERM);
    ev_signal_init(&d->sigint, sig_stop_cb, SIGINT);
    ev_signal_init(&d->sighup, sig_hup_cb, SIGHUP);
    d->sigterm.data = d->sigint.data = d->sighup.data = d;
    ev_signal_start(d->loop, &d->sigterm);
    ev_signal_start(d->loop, &d->sigint);
    ev_signal_start(d->loop, &d->sighup);
}

/* mkdir DIR with MODE if absent, whatever the umask (the unit's is 0077).
 * The journals' own directory is 0700 (they are dom0-private copies of
 * guest requests); the state directory above it may also hold the control
 * socket, which its group must reach. */
static int make_dir(const char *dir, mode_t mode)
{
    if (xbd_mkdir_mode(dir, mode) >= 0)
        return 0;
    xbd_err("cannot create the state directory %s: %s", dir, strerror(errno));
    return -1;
}

/* The state directory: ours alone (two instances resuming the same rings
 * would each serve them), and every journal in it in our format (an
 * incompatible one means a different xenblkd wrote it: never guess). */
static int open_state_dir(struct xbd_daemon *d, const char *dir)
{
    char path[1100], err[4400];

    snprintf(path, sizeof(path), "%s/%s", dir, XBD_JOURNAL_SUBDIR);
    if (make_dir(dir, 0755) < 0 || make_dir(path, 0700) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/lock", dir);
    d->state_lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (d->state_lock < 0) {
        xbd_err("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(d->state_lock, LOCK_EX | LOCK_NB) < 0) {
        xbd_err("another xenblkd uses the state directory %s (%s is locked)", dir, path);
        return -1;
    }
    if (xbd_journal_check_dir(dir, err, sizeof(err)) < 0) {
        xbd_err("%s; refusing to start: move it away only if no guest that was "
                "served when it was written still runs", err);
        return -1;
    }
    return 0;
}

/* Every ring holds a few fds (gntdev, evtchn, backing store): take all
 * the descriptors the administrator allows (LimitNOFILE= in the unit sets
 * the hard limit), not the historical soft 1024.  libev uses epoll, so a
 * high limit costs nothing. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    rlim_t was;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        xbd_warn("cannot read the file descriptor limit: %s", strerror(errno));
        return;
    }
    was = rl.rlim_cur;
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            xbd_warn("cannot raise the file descriptor limit from %llu to %llu: %s",
                     (unsigned long long)was, (unsigned long long)rl.rlim_max,
                     strerror(errno));
            return;
        }
    }
    xbd_info("file descriptor limit %llu (soft limit was %llu)",
             (unsigned long long)rl.rlim_cur, (unsigned long long)was);
}

static void log_budgets(const struct xbd_config *disks, const struct xbd_host *h)
{
    struct xbd_host_figures f;

    xbd_host_get_figures(h, &f);
    xbd_info("budgets per disk: %u MiB of memory, %u persistent grant mappings, %u file "
             "descriptors; persistent grants host-wide: at most %llu mappings (half of "
             "vm.max_map_count %llu)", disks->disk_memory_mib, disks->disk_grant_mappings,
             disks->disk_fds, (unsigned long long)f.grant_mappings_limit,
             (unsigned long long)f.map_count_max);
}

static void cleanup(struct xbd_daemon *d)
{
    xbd_service_free(d->service);
    xbd_control_close(d->control);
    /* Workers and the kernel let go of every backing fd first. */
    if (d->io)
        xbd_io_engine_stop(d->io);
    xbd_host_free(d->host);
    if (d->io)
        xbd_io_engine_free(d->io);
    xbd_xenbus_close(d->xb);
    if (d->loop) {
        xbd_log_limit_stop();
        ev_signal_stop(d->loop, &d->sigterm);
        ev_signal_stop(d->loop, &d->sigint);
        ev_signal_stop(d->loop, &d->sighup);
        ev_loop_destroy(d->loop);
    }
    if (d->state_lock >= 0)
        close(d->state_lock);
}

int main(int argc, char **argv)
{
    struct cmdline o;
    struct xbd_daemon d = { .state_lock = -1 };
    struct xbd_config disks;
    char err[XBD_CONF_PATH_MAX + 512];
    bool missing = false;
    int rc;

    rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    d.src = o.src;
    if (xbd_conf_build(&d.cfg, &d.src, &missing, err, sizeof(err)) < 0) {
        /* The place first, as a compiler does: FILE:LINE: reason. */
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (o.check_config) {
        print_config(&d.cfg, d.src.path, missing);
        return 0;
    }
    xbd_log_init(d.cfg.log_target == XBD_LOG_TO_STDERR, d.cfg.log_level);
    xbd_log_limit_configure(d.cfg.log_rate, d.cfg.log_burst);
    raise_fd_limit();

    d.loop = ev_default_loop(EVFLAG_AUTO);
    if (!d.loop) {
        xbd_err("cannot create the event loop");
        goto fail;
    }
    install_signals(&d);
    xbd_log_limit_start(d.loop);
    d.xb = xbd_xenbus_open(d.loop);
    if (!d.xb || open_state_dir(&d, d.cfg.state_dir) < 0)
        goto fail;
    if (d.cfg.domid != XBD_DOMID_AUTO) {
        d.domid = (unsigned)d.cfg.domid;
    } else if (xbd_xenbus_own_domid(d.xb, &d.domid) < 0) {
        d.domid = 0;
        xbd_debug("no readable \"domid\" key in our xenstore home: assuming domain 0");
    }
    d.io = xbd_io_engine_new(d.loop);
    if (!d.io) {
        xbd_err("cannot create the I/O engine");
        goto fail;
    }
    xbd_conf_disks(&d.cfg, &disks);
    xbd_io_engine_set_limits(d.io, disks.inflight_per_device, disks.inflight_per_ring);
    d.host = xbd_host_new(d.loop, d.xb, d.io, &disks, d.domid);
    if (!d.host) {
        xbd_err("out of memory");
        goto fail;
    }
    d.service = xbd_service_new(d.loop, d.host);
    if (!d.service) {
        xbd_err("out of memory");
        goto fail;
    }
    d.control = xbd_control_open(d.loop, d.host, d.cfg.control_socket, d.cfg.control_group,
                                 &ctl_ops, &d);
    if (!d.control) {
        goto fail;
    }
    if (add_kinds(d.host, d.cfg.kinds) < 0)
        goto fail;
    xbd_host_sweep_journals(d.host);
    xbd_host_sweep_nbd(d.host);
    xbd_info("xenblkd %s serving as domain %u, configuration %s%s", PACKAGE_VERSION, d.domid,
             d.src.path, missing ? " (absent: defaults)" : "");
    xbd_info("offering max %u queue%s, ring order %u, %u indirect segments, %u persistent "
             "grants per ring, discard %s, %s", disks.max_queues,
             disks.max_queues == 1 ? "" : "s", disks.max_ring_order, disks.max_indirect_segs,
             disks.max_pgrants, disks.discard ? "on unless discard-enable=0" : "only with "
             "discard-enable=1", disks.direct_io ? "O_DIRECT" : "buffered I/O");
    if (disks.max_pgrants && disks.pgrant_idle_s)
        xbd_info("unused persistent grants idle out after %u s", disks.pgrant_idle_s);
    log_budgets(&disks, d.host);
    xbd_service_ready(d.service);
    xbd_log_startup_done();

    ev_run(d.loop, 0);

    rc = d.clean_exit ? 0 : 1;
    if (!d.clean_exit)
        xbd_err("main loop ended unexpectedly");
    cleanup(&d);
    xbd_log_close();
    return rc;

fail:
    xbd_err("start-up failed");
    cleanup(&d);
    xbd_log_close();
    return 1;
}
