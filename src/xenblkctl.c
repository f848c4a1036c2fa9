/*
 * xenblkctl - control and observe xenblkd.
 *
 *   xenblkctl [--socket PATH] COMMAND [ARGS...]
 *
 * This file holds the command line, the dispatch, the shared parsers and
 * the commands that are one request and one line of output (version, ping,
 * reload, shutdown).  See xenblkctl.h for where the rest lives and
 * xenblkctl(8) for the user's view, including the exit statuses.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xen/xen.h>

#include "xenblkctl.h"

/* ---- messages ---- */

static void vmsg(const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void vmsg(const char *prefix, const char *fmt, va_list ap)
{
    fflush(stdout);
    fprintf(stderr, "xenblkctl: %s", prefix);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void xbc_err(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vmsg("", fmt, ap);
    va_end(ap);
}

void xbc_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vmsg("warning: ", fmt, ap);
    va_end(ap);
}

int xbc_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vmsg("", fmt, ap);
    va_end(ap);
    if (command)
        fprintf(stderr, "Try 'xenblkctl %s --help'.\n", command);
    else
        fprintf(stderr, "Try 'xenblkctl --help'.\n");
    return XBC_EUSAGE;
}

/* ---- parsers shared by the commands ---- */

bool xbc_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!s || !*s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

bool xbc_parse_seconds(const char *s, double max, double *out)
{
    char *end;
    double v;

    if (!s || !*s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v <= 0 || v > max)
        return false;
    *out = v;
    return true;
}

bool xbc_parse_target(const char *s, long *domid, long *devid)
{
    const char *slash = strchr(s, '/');
    char dom[16];
    uint64_t d;
    uint32_t v;
    size_t n = slash ? (size_t)(slash - s) : strlen(s);

    if (n == 0 || n >= sizeof(dom))
        return false;
    memcpy(dom, s, n);
    dom[n] = '\0';
    if (!xbc_parse_uint(dom, DOMID_FIRST_RESERVED - 1, &d))
        return false;
    *domid = (long)d;
    *devid = -1;
    if (slash) {
        if (!xbc_parse_devid(slash + 1, &v))
            return false;
        *devid = (long)v;
    }
    return true;
}

/* Linux's xvd numbering (Documentation of xen-blkfront, and libxl's
 * libxl__device_disk_dev_number): xvda..xvdp with partitions 0..15 use the
 * old 202:<disk*16+part> encoding, everything else the extended one
 * (1 << 28 | disk << 8 | part). */
#define XVD_MAJOR 202u
#define XVD_EXT (1u << 28)

bool xbc_parse_devid(const char *s, uint32_t *devid)
{
    uint64_t v, disk = 0, part = 0;
    const char *p;

    if (xbc_parse_uint(s, 0xffffffffu, &v)) {
        *devid = (uint32_t)v;
        return true;
    }
    if (strncmp(s, "xvd", 3) != 0 || s[3] < 'a' || s[3] > 'z')
        return false;
    for (p = s + 3; *p >= 'a' && *p <= 'z'; p++) {
        disk = disk * 26 + (uint64_t)(*p - 'a' + 1);
        if (disk > (1u << 20))
            return false;
    }
    disk--;
    if (*p && !xbc_parse_uint(p, 255, &part))
        return false;
    if (disk < 16 && part < 16)
        *devid = (XVD_MAJOR << 8) | (uint32_t)(disk << 4) | (uint32_t)part;
    else if (disk < (1u << 20))
        *devid = XVD_EXT | (uint32_t)(disk << 8) | (uint32_t)part;
    else
        return false;
    return true;
}

void xbc_devid_name(uint32_t devid, char *buf, size_t len)
{
    char letters[8];
    unsigned disk, part, n = 0;

    if ((devid >> 8) == XVD_MAJOR) {
        disk = (devid >> 4) & 15;
        part = devid & 15;
    } else if ((devid & XVD_EXT) && devid < (XVD_EXT << 1)) {
        disk = (devid >> 8) & 0xfffff;
        part = devid & 255;
    } else {
        snprintf(buf, len, "%s", "");
        return;
    }
    disk++;
    while (disk > 0 && n < sizeof(letters)) {
        disk--;
        letters[n++] = (char)('a' + disk % 26);
        disk /= 26;
    }
    buf[0] = '\0';
    snprintf(buf, len, "xvd");
    for (unsigned i = 0; i < n && strlen(buf) + 1 < len; i++) {
        size_t l = strlen(buf);
        buf[l] = letters[n - 1 - i];
        buf[l + 1] = '\0';
    }
    if (part > 0) {
        size_t l = strlen(buf);
        snprintf(buf + l, len - l, "%u", part);
    }
}

/* ---- the commands ---- */

struct command {
    const char *name;
    int (*run)(const struct xbc_global *g, int argc, char **argv);
    const char *synopsis;
    const char *summary;
    const char *help;          /* options, one per line, or NULL */
};

static const struct command *find_command(const char *name);
static void command_help(const struct command *c, FILE *f);

/* Handle --help / a stray option / extra arguments of a command that
 * takes nothing but its own flags.  Returns -1 to go on, else an exit
 * status. */
static int simple_options(const struct command *c, int argc, char **argv,
                          const struct option *extra, int *flags)
{
    struct option opts[8] = { { "help", no_argument, NULL, 'h' } };
    int n = 1, o;

    for (; extra && extra->name && n < 7; extra++)
        opts[n++] = *extra;
    opts[n] = (struct option){ 0 };
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (o == 'h') {
            command_help(c, stdout);
            return XBC_OK;
        }
        if (o == '?')
            return xbc_usage_error(c->name, "%s: unknown option '%s'", c->name, argv[optind - 1]);
        if (o == ':')
            return xbc_usage_error(c->name, "%s: option '%s' needs a value", c->name, argv[optind - 1]);
        if (o > 0 && o < 32)
            *flags |= 1 << o;
    }
    if (optind < argc)
        return xbc_usage_error(c->name, "%s: unexpected argument '%s'", c->name, argv[optind]);
    return -1;
}

static int cmd_version(const struct xbc_global *g, int argc, char **argv)
{
    static const struct option o[] = { { "json", no_argument, NULL, 1 }, { 0 } };
    json_object *reply = NULL, *out;
    int flags = 0, rc;

    rc = simple_options(find_command("version"), argc, argv, o, &flags);
    if (rc >= 0)
        return rc;
    rc = xbc_call(g->socket, xbc_request_new("version"), &reply, XBC_QUIET_NODAEMON);
    if (flags & (1 << 1)) {
        out = json_object_new_object();
        json_object_object_add(out, "client", json_object_new_string(PACKAGE_VERSION));
        json_object_object_add(out, "daemon", reply ? json_object_get(reply) : NULL);
        printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
        json_object_put(out);
    } else {
        printf("xenblkctl %s\n", PACKAGE_VERSION);
        if (reply)
            printf("xenblkd %s (control protocol %" PRIu64 ")\n",
                   xbc_str(reply, "version", "?"), xbc_u64(reply, "protocol"));
    }
    if (rc == XBC_ENODAEMON)
        xbc_err("xenblkd is not running: cannot ask for its version at %s", g->socket);
    json_object_put(reply);
    return rc;
}

/* A command without arguments: one request, SAID on success. */
static int no_arg_request(const struct xbc_global *g, int argc, char **argv,
                          const char *command, const char *said)
{
    json_object *reply = NULL;
    int flags = 0, rc;

    rc = simple_options(find_command(command), argc, argv, NULL, &flags);
    if (rc >= 0)
        return rc;
    rc = xbc_call(g->socket, xbc_request_new(command), &reply, XBC_LOUD);
    if (rc == XBC_OK)
        printf("%s\n", said);
    json_object_put(reply);
    return rc;
}

static int cmd_ping(const struct xbc_global *g, int argc, char **argv)
{
    char said[300];

    snprintf(said, sizeof(said), "xenblkd is running (%s)", g->socket);
    return no_arg_request(g, argc, argv, "ping", said);
}

static int cmd_reload(const struct xbc_global *g, int argc, char **argv)
{
    return no_arg_request(g, argc, argv, "reload", "xenblkd reloaded its configuration");
}

/* True once process PID has exited: it is gone, or it is a zombie (its
 * parent has not collected it yet) with no thread left, so that every file
 * it held, the state directory's lock among them, is closed.  Without
 * /proc only the first is seen. */
static bool process_gone(pid_t pid)
{
    char path[64], line[512], *p;
    unsigned tasks = 0;
    struct dirent *e;
    FILE *f;
    DIR *d;

    if (kill(pid, 0) < 0 && errno == ESRCH)
        return true;
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "re");
    if (!f)
        return false;           /* gone since: the next look says so */
    p = fgets(line, sizeof(line), f);
    fclose(f);
    /* "PID (COMM) STATE ...": COMM may hold anything, ")" too. */
    if (!p || !(p = strrchr(line, ')')) || (p[1] != ' ') || (p[2] != 'Z' && p[2] != 'X'))
        return false;
    snprintf(path, sizeof(path), "/proc/%ld/task", (long)pid);
    d = opendir(path);
    if (!d)
        return false;
    while ((e = readdir(d)))
        tasks += e->d_name[0] != '.';
    closedir(d);
    return tasks <= 1;          /* only the zombie leader is left */
}

static int cmd_shutdown(const struct xbc_global *g, int argc, char **argv)
{
    static const struct option o[] = {
        { "close", no_argument, NULL, 1 },
        { "no-wait", no_argument, NULL, 2 },
        { 0 },
    };
    json_object *req, *reply = NULL;
    int flags = 0, rc;
    bool close_all, closed = false;
    struct timespec start, now;
    pid_t pid;

    rc = simple_options(find_command("shutdown"), argc, argv, o, &flags);
    if (rc >= 0)
        return rc;
    close_all = flags & (1 << 1);
    req = xbc_request_new("shutdown");
    if (close_all)
        json_object_object_add(req, "close", json_object_new_boolean(1));
    /* The daemon's pid, from the connection that carries the order. */
    rc = xbc_call_peer(g->socket, req, &reply, XBC_LOUD, &pid);
    json_object_put(reply);
    if (rc)
        return rc;
    printf("%s\n", close_all
           ? "xenblkd is closing every device (the guests lose their disks) and stopping"
           : "xenblkd is stopping; the guests' disks pause until it is started again");
    fflush(stdout);
    if (flags & (1 << 2))
        return XBC_OK;
    /* Wait until the daemon's process is gone, so that a script can start
     * the next instance right after us: it closes its control socket
     * first, and only then waits for the I/O its storage still holds,
     * for its grant unmaps and its last xenstore writes, and releases the
     * state directory.  No pid (a daemon in another PID namespace): only
     * until the socket stops answering. */
    if (!pid)
        xbc_warn("cannot see xenblkd's process (another PID namespace?): waiting only "
                 "until it no longer answers on %s", g->socket);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (pid ? process_gone(pid) : !xbc_daemon_up(g->socket)) {
            printf("xenblkd stopped\n");
            return XBC_OK;
        }
        if (pid && !closed && !xbc_daemon_up(g->socket)) {
            closed = true;
            printf("xenblkd no longer answers on its control socket; waiting for its "
                   "process (pid %ld) to exit\n", (long)pid);
            fflush(stdout);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= 60) {
            if (pid)
                xbc_err("xenblkd (pid %ld) has not exited 60 s after the shutdown request "
                        "(its log says what it waits for)", (long)pid);
            else
                xbc_err("xenblkd still answers on %s 60 s after the shutdown request",
                        g->socket);
            return XBC_ETIMEDOUT;
        }
        nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000 * 1000 }, NULL);
    }
}

static int cmd_settle(const struct xbc_global *g, int argc, char **argv)
{
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "timeout", required_argument, NULL, 't' },
        { 0 },
    };
    const struct command *c = find_command("settle");
    double timeout = XBC_SETTLE_DEFAULT_S;
    json_object *req, *reply = NULL;
    int o, rc;
    int64_t ms;

    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (o) {
        case 'h':
            command_help(c, stdout);
            return XBC_OK;
        case 't':
            if (!xbc_parse_seconds(optarg, XBC_SETTLE_MAX_S, &timeout))
                return xbc_usage_error(c->name, "--timeout: expected seconds (0, %.0f], got '%s'",
                                       XBC_SETTLE_MAX_S, optarg);
            break;
        case ':':
            return xbc_usage_error(c->name, "settle: option '%s' needs a value",
                                   argv[optind - 1]);
        default:
            return xbc_usage_error(c->name, "settle: unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return xbc_usage_error(c->name, "settle: unexpected argument '%s'", argv[optind]);
    ms = (int64_t)ceil(timeout * 1000.0);
    req = xbc_request_new("settle");
    json_object_object_add(req, "timeout_ms", json_object_new_int64(ms));
    /* The daemon answers by its own timeout: give it that and some more. */
    rc = xbc_call_timeout(g->socket, req, &reply, XBC_LOUD, ms + XBC_REPLY_TIMEOUT_MS);
    if (rc == XBC_OK)
        printf("xenblkd settled (waited %" PRIu64 " ms)\n", xbc_u64(reply, "waited_ms"));
    json_object_put(reply);
    return rc;
}

static int cmd_help(const struct xbc_global *g, int argc, char **argv);

static const struct command commands[] = {
    { "list", xbc_cmd_list, "list [--json]",
      "one line per device: domain, device, kind, state, backing store, size, queues",
      "  --json         the daemon's device objects as JSON\n" },
    { "stats", xbc_cmd_stats,
      "stats [DOMID[/DEVID]] [--queues] [--totals] [--json | --prometheus] [--watch SECONDS [--count N]]",
      "I/O statistics per device (or per queue): rates, latency, errors",
      "  DOMID[/DEVID]      only the devices of domain DOMID (device DEVID:\n"
      "                     a number such as 51712 or a name such as xvda)\n"
      "  --queues           one line per queue (ring) instead of per device\n"
      "  --watch SECONDS    a report every SECONDS, rates over that interval\n"
      "  --count N          with --watch: stop after N reports\n"
      "  --totals           counts since each device connected instead of rates\n"
      "  --json             the raw counters as the daemon sent them (one line\n"
      "                     per sample)\n"
      "  --prometheus       Prometheus text exposition format 0.0.4 (one\n"
      "                     report: not with --watch)\n"
      "Without --watch the rates are measured over one second (two samples\n"
      "1 s apart); --totals answers at once.  Latency in ms: await is the\n"
      "mean, p99 is interpolated inside its log2 bucket.\n" },
    { "attach", xbc_cmd_attach,
      "attach DOMID DEVID PATH [--mode r|w] [--kind vbd3|qdisk|vbd] [--backend-domid N] [--timeout S]",
      "add a disk to a guest: write its backend and frontend nodes as libxl does",
      "  DEVID              a number (51712) or a name (xvda)\n"
      "  PATH               the backing file or block device (made absolute)\n"
      "  --mode r|w         read-only or read-write (default w)\n"
      "  --kind KIND        backend kind: vbd3 (default), qdisk or vbd\n"
      "  --backend-domid N  the domain xenblkd runs in (default: ours)\n"
      "  --timeout S        wait at most S seconds for xenblkd to take the\n"
      "                     device (InitWait; default 10)\n" },
    { "detach", xbc_cmd_detach, "detach DOMID DEVID [--timeout S]",
      "remove a disk: close handshake (online=0, Closing), wait for Closed, remove the nodes",
      "  --timeout S        wait at most S seconds for Closed (default 10, as libxl);\n"
      "                     after that the nodes are removed anyway, exit status 7\n" },
    { "version", cmd_version, "version [--json]", "the versions of xenblkctl and of the running xenblkd",
      "  --json             {\"client\": ..., \"daemon\": {the daemon's reply}}\n" },
    { "ping", cmd_ping, "ping", "check that xenblkd answers on its control socket", NULL },
    { "reload", cmd_reload, "reload",
      "re-read the configuration and the backing store sizes (as SIGHUP); shows the daemon's error", NULL },
    { "shutdown", cmd_shutdown, "shutdown [--close] [--no-wait]",
      "stop xenblkd",
      "  (default)          hand over: in-flight I/O completes, devices stay\n"
      "                     Connected, the guests' disks pause until xenblkd\n"
      "                     is started again\n"
      "  --close            close every device for good: the guests lose their\n"
      "                     disks (they must re-attach them)\n"
      "  --no-wait          return once the daemon took the request, without\n"
      "                     waiting for it to exit\n" },
    { "settle", cmd_settle, "settle [--timeout SECONDS]",
      "wait until xenblkd has acted on everything written to xenstore so far",
      "  --timeout SECONDS  give up after SECONDS (default 30, at most 3600):\n"
      "                     exit status 1 and what is still busy\n"
      "Settled: every xenstore watch event queued for xenblkd before the\n"
      "request was handled, and no device has an evaluation queued or\n"
      "delayed, xenstore reads or writes out, or rings draining.\n" },
    { "help", cmd_help, "help [COMMAND]", "this text, or the help of COMMAND", NULL },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void command_help(const struct command *c, FILE *f)
{
    fprintf(f, "usage: xenblkctl [--socket PATH] %s\n\n%s.\n", c->synopsis, c->summary);
    if (c->help)
        fprintf(f, "\n%s", c->help);
    fprintf(f, "\nSee xenblkctl(8).\n");
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: xenblkctl [--socket PATH] COMMAND [ARGS...]\n"
            "       xenblkctl COMMAND --help\n\n"
            "Control and observe xenblkd, the userspace Xen block backend.\n\n"
            "Options:\n"
            "  -s, --socket PATH  xenblkd's control socket (default %s)\n"
            "  -h, --help         this text\n"
            "  -V, --version      the version of xenblkctl\n\n"
            "Commands:\n", XBC_DEFAULT_SOCKET);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\nExit status: 0 ok, 1 failed, 2 usage, 3 xenblkd not running,\n"
            "4 permission denied, 5 no such device, 6 device exists, 7 timed out.\n"
            "See xenblkctl(8).\n");
}

int xbc_command_help(const char *name)
{
    command_help(find_command(name), stdout);
    return XBC_OK;
}

static int cmd_help(const struct xbc_global *g, int argc, char **argv)
{
    const struct command *c;

    if (argc < 2) {
        usage(stdout);
        return XBC_OK;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return xbc_command_help("help");
    if (argc > 2)
        return xbc_usage_error("help", "help: unexpected argument '%s'", argv[2]);
    c = find_command(argv[1]);
    if (!c)
        return xbc_usage_error(NULL, "help: unknown command '%s'", argv[1]);
    command_help(c, stdout);
    return XBC_OK;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { 0 },
    };
    struct xbc_global g = { .socket = XBC_DEFAULT_SOCKET };
    const struct command *c;
    int o;

    opterr = 0;
    /* "+": stop at the command; its options are its own. */
    while ((o = getopt_long(argc, argv, "+s:hV", opts, NULL)) != -1) {
        switch (o) {
        case 's':
            if (!*optarg)
                return xbc_usage_error(NULL, "--socket: empty path");
            g.socket = optarg;
            break;
        case 'h':
            usage(stdout);
            return XBC_OK;
        case 'V':
            printf("xenblkctl %s\n", PACKAGE_VERSION);
            return XBC_OK;
        case ':':
            return xbc_usage_error(NULL, "option '%s' needs a value", argv[optind - 1]);
        default:
            return xbc_usage_error(NULL, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return XBC_EUSAGE;
    }
    c = find_command(argv[optind]);
    if (!c)
        return xbc_usage_error(NULL, "unknown command '%s'", argv[optind]);
    return c->run(&g, argc - optind, argv + optind);
}
