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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ev.h>

#include "xenblkd/dataplane.h"
#include "xenblkd/device.h"
#include "xenblkd/journal.h"
#include "xenblkd/log.h"
#include "xenblkd/xenbus.h"

struct options {
    bool foreground;
    enum xbd_log_level level;
    char *kinds;
    long domid;                 /* -1: from xenstore */
    struct xbd_config cfg;
};

struct daemon {
    struct ev_loop *loop;
    struct xbd_xenbus *xb;
    struct xbd_io_engine *io;
    struct xbd_host *host;
    ev_signal sigterm, sigint, sighup;
    int state_lock;             /* flock on <state-dir>/lock, -1 if none */
    enum xbd_stop_mode stop_mode;
    bool clean_exit;
};

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: xenblkd [OPTION]...\n"
        "Userspace Xen block backend: serves the virtual disks that the toolstack\n"
        "puts under /local/domain/<domid>/backend/<kind> in xenstore.\n"
        "\n"
        "  -f, --foreground            log to stderr instead of syslog\n"
        "  -k, --kinds LIST            backend kinds to serve, comma separated, among\n"
        "                              vbd3, qdisk, vbd (default: vbd3); vbd is only\n"
        "                              served when the kernel's xen-blkback is absent\n"
        "  -l, --log-level LEVEL       error, warning, info (default) or debug\n"
        "  -d, --domid N               our own domain id (default: the \"domid\" key\n"
        "                              of our xenstore home, else 0)\n"
        "      --no-direct-io          do not open backing stores with O_DIRECT\n"
        "      --max-queues N          at most N queues per disk (default and cap:\n"
        "                              the number of CPUs)\n"
        "      --max-persistent-grants N\n"
        "                              persistent grants kept per ring (default %u;\n"
        "                              0 turns feature-persistent off)\n"
        "      --persistent-grant-idle SECONDS\n"
        "                              unmap a persistent grant unused this long\n"
        "                              (default %u; 0 keeps it until disconnect)\n"
        "      --state-dir DIR         where the ring journals that let a restarted\n"
        "                              daemon resume every ring are kept (default\n"
        "                              %s; must survive the daemon, not a reboot)\n"
        "  -h, --help                  show this help and exit\n"
        "  -V, --version               show the version and exit\n"
        "\n"
        "SIGTERM or SIGINT: stop for a restart: drain the rings, leave every device\n"
        "as it is in xenstore (guests keep their disks), exit; the next xenblkd\n"
        "resumes every ring.\n"
        "SIGHUP: re-read every backing store's size (online resize).\n",
        XBD_DEFAULT_MAX_PGRANTS, XBD_DEFAULT_PGRANT_IDLE, XBD_DEFAULT_STATE_DIR);
}

static int parse_num(const char *opt, const char *arg, unsigned long max, unsigned long *out)
{
    if (xbd_parse_uint(arg, max, out) < 0) {
        fprintf(stderr, "xenblkd: %s: '%s' is not a number in 0..%lu\n", opt, arg, max);
        return -1;
    }
    return 0;
}

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : (unsigned)n;
}

/* 0 ok, 1 exit successfully (--help/--version), -1 error. */
static int parse_options(int argc, char **argv, struct options *o)
{
    enum { OPT_NO_DIRECT = 256, OPT_MAX_QUEUES, OPT_MAX_PGRANTS, OPT_PGRANT_IDLE,
           OPT_STATE_DIR };
    static const struct option longopts[] = {
        { "foreground", no_argument, NULL, 'f' },
        { "kinds", required_argument, NULL, 'k' },
        { "log-level", required_argument, NULL, 'l' },
        { "domid", required_argument, NULL, 'd' },
        { "no-direct-io", no_argument, NULL, OPT_NO_DIRECT },
        { "max-queues", required_argument, NULL, OPT_MAX_QUEUES },
        { "max-persistent-grants", required_argument, NULL, OPT_MAX_PGRANTS },
        { "persistent-grant-idle", required_argument, NULL, OPT_PGRANT_IDLE },
        { "state-dir", required_argument, NULL, OPT_STATE_DIR },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    unsigned long v;
    int c;

    o->foreground = false;
    o->level = XBD_LOG_INFO;
    o->kinds = NULL;
    o->domid = -1;
    o->cfg.direct_io = true;
    o->cfg.max_queues = online_cpus();
    o->cfg.max_pgrants = XBD_DEFAULT_MAX_PGRANTS;
    o->cfg.pgrant_idle_s = XBD_DEFAULT_PGRANT_IDLE;
    o->cfg.state_dir = XBD_DEFAULT_STATE_DIR;

    while ((c = getopt_long(argc, argv, "fk:l:d:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            o->foreground = true;
            break;
        case 'k':
            free(o->kinds);
            o->kinds = strdup(optarg);
            break;
        case 'l':
            if (xbd_log_level_parse(optarg, &o->level) < 0) {
                fprintf(stderr, "xenblkd: --log-level: unknown level '%s' "
                        "(error, warning, info, debug)\n", optarg);
                return -1;
            }
            break;
        case 'd':
            if (parse_num("--domid", optarg, 0x7fef, &v) < 0)
                return -1;
            o->domid = (long)v;
            break;
        case OPT_NO_DIRECT:
            o->cfg.direct_io = false;
            break;
        case OPT_MAX_QUEUES:
            if (parse_num("--max-queues", optarg, XBD_MAX_QUEUES, &v) < 0)
                return -1;
            if (v == 0) {
                fprintf(stderr, "xenblkd: --max-queues must be at least 1\n");
                return -1;
            }
            if (v < o->cfg.max_queues)
                o->cfg.max_queues = (unsigned)v;
            break;
        case OPT_MAX_PGRANTS:
            if (parse_num("--max-persistent-grants", optarg, 1u << 20, &v) < 0)
                return -1;
            o->cfg.max_pgrants = (unsigned)v;
            break;
        case OPT_PGRANT_IDLE:
            if (parse_num("--persistent-grant-idle", optarg, 86400, &v) < 0)
                return -1;
            o->cfg.pgrant_idle_s = (unsigned)v;
            break;
        case OPT_STATE_DIR:
            if (optarg[0] != '/' || strlen(optarg) > 1024) {
                fprintf(stderr, "xenblkd: --state-dir: '%s' is not an absolute path "
                        "(of at most 1024 bytes)\n", optarg);
                return -1;
            }
            o->cfg.state_dir = optarg;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case 'V':
            printf("xenblkd %s\n", PACKAGE_VERSION);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "xenblkd: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (o->cfg.max_queues > XBD_MAX_QUEUES)
        o->cfg.max_queues = XBD_MAX_QUEUES;
    if (!o->kinds)
        o->kinds = strdup("vbd3");
    if (!o->kinds) {
        fprintf(stderr, "xenblkd: out of memory\n");
        return -1;
    }
    return 0;
}

/* Check every kind before touching xenstore, so that a typo fails fast. */
static int check_kinds(const char *list)
{
    char *copy = strdup(list), *save = NULL;
    int n = 0;

    if (!copy)
        return -1;
    for (char *k = strtok_r(copy, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        if (!xbd_kind_known(k)) {
            xbd_err("unknown backend kind '%s' (known: vbd3, qdisk, vbd)", k);
            free(copy);
            return -1;
        }
        n++;
    }
    free(copy);
    if (n == 0) {
        xbd_err("--kinds: no backend kind given");
        return -1;
    }
    return 0;
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

/* systemd's notify protocol, without libsystemd: one datagram to
 * $NOTIFY_SOCKET (unset: not started by systemd, nothing to do). */
static void sd_notify_msg(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t len;
    int fd;

    if (!path || !*path || (path[0] != '/' && path[0] != '@'))
        return;
    len = strlen(path);
    if (len >= sizeof(sa.sun_path))
        return;
    memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0';      /* abstract namespace */
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
        xbd_debug("sd_notify: %s", strerror(errno));
    close(fd);
}

static void shutdown_done(void *opaque)
{
    struct daemon *d = opaque;

    if (d->stop_mode == XBD_STOP_HANDOVER)
        xbd_info("handover done, exiting: the next xenblkd resumes every ring");
    else
        xbd_info("every device closed, exiting");
    d->clean_exit = true;
    ev_break(d->loop, EVBREAK_ALL);
}

static void sig_stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct daemon *d = w->data;

    xbd_info("received %s", strsignal(w->signum));
    sd_notify_msg("STOPPING=1");
    /* systemd sends SIGTERM for restart and stop alike; a host shutdown
     * comes after the guests are gone.  Closing every disk for good is
     * the control socket's explicit shutdown --close. */
    d->stop_mode = XBD_STOP_HANDOVER;
    xbd_host_shutdown(d->host, XBD_STOP_HANDOVER, shutdown_done, d);
}

static void sig_hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct daemon *d = w->data;

    /* What can change under a running daemon today is the size of a
     * backing store (an image grown with truncate, an LV extended). */
    xbd_info("SIGHUP: checking the size of every backing store");
    xbd_host_check_sizes(d->host);
}

static void install_signals(struct daemon *d)
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

/* mkdir DIR if absent (0700: the journals are dom0-private copies of
 * guest requests). */
static int make_dir(const char *dir)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return 0;
    xbd_err("cannot create the state directory %s: %s", dir, strerror(errno));
    return -1;
}

/* The state directory: ours alone (two instances resuming the same rings
 * would each serve them), and every journal in it in our format (an
 * incompatible one means a different xenblkd wrote it: never guess). */
static int open_state_dir(struct daemon *d, const char *dir)
{
    char path[1100], err[4400];

    snprintf(path, sizeof(path), "%s/%s", dir, XBD_JOURNAL_SUBDIR);
    if (make_dir(dir) < 0 || make_dir(path) < 0)
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

static void cleanup(struct daemon *d)
{
    xbd_host_free(d->host);
    if (d->io)
        xbd_io_engine_free(d->io);
    xbd_xenbus_close(d->xb);
    if (d->state_lock >= 0)
        close(d->state_lock);
    if (d->loop) {
        ev_signal_stop(d->loop, &d->sigterm);
        ev_signal_stop(d->loop, &d->sigint);
        ev_signal_stop(d->loop, &d->sighup);
        ev_loop_destroy(d->loop);
    }
}

int main(int argc, char **argv)
{
    struct options o;
    struct daemon d = { .state_lock = -1 };
    unsigned domid = 0;
    int rc;

    rc = parse_options(argc, argv, &o);
    if (rc != 0) {
        free(o.kinds);
        return rc > 0 ? 0 : 2;
    }
    xbd_log_init(o.foreground, o.level);
    if (check_kinds(o.kinds) < 0)
        goto fail;

    d.loop = ev_default_loop(EVFLAG_AUTO);
    if (!d.loop) {
        xbd_err("cannot create the event loop");
        goto fail;
    }
    install_signals(&d);
    d.xb = xbd_xenbus_open(d.loop);
    if (!d.xb || open_state_dir(&d, o.cfg.state_dir) < 0)
        goto fail;
    if (o.domid >= 0) {
        domid = (unsigned)o.domid;
    } else if (xbd_xenbus_own_domid(d.xb, &domid) < 0) {
        domid = 0;
        xbd_debug("no readable \"domid\" key in our xenstore home: assuming domain 0");
    }
    d.io = xbd_io_engine_new(d.loop);
    if (!d.io) {
        xbd_err("cannot create the I/O engine");
        goto fail;
    }
    d.host = xbd_host_new(d.loop, d.xb, d.io, &o.cfg, domid);
    if (!d.host) {
        xbd_err("out of memory");
        goto fail;
    }
    if (add_kinds(d.host, o.kinds) < 0)
        goto fail;
    xbd_host_sweep_journals(d.host);
    xbd_info("xenblkd %s serving as domain %u: max %u queue%s, %u persistent grants per ring, "
             "%s", PACKAGE_VERSION, domid, o.cfg.max_queues, o.cfg.max_queues == 1 ? "" : "s",
             o.cfg.max_pgrants, o.cfg.direct_io ? "O_DIRECT" : "buffered I/O");
    if (o.cfg.max_pgrants && o.cfg.pgrant_idle_s)
        xbd_info("unused persistent grants idle out after %u s", o.cfg.pgrant_idle_s);
    sd_notify_msg("READY=1");
    xbd_log_startup_done();

    ev_run(d.loop, 0);

    rc = d.clean_exit ? 0 : 1;
    if (!d.clean_exit)
        xbd_err("main loop ended unexpectedly");
    cleanup(&d);
    free(o.kinds);
    xbd_log_close();
    return rc;

fail:
    xbd_err("start-up failed");
    cleanup(&d);
    free(o.kinds);
    xbd_log_close();
    return 1;
}
