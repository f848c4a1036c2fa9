/*
 * xenblkctl_stats.c - "list" and "stats": the daemon's devices and their
 * counters for people (aligned tables), for scripts (--json, the daemon's
 * own objects) and for Prometheus (--prometheus, xenblkctl_prom.c).
 *
 * Rates need two samples.  Without --watch, stats takes two 1 s apart and
 * shows what the disks do now, like `iostat -y 1 1` (iostat's first report,
 * averages since boot, is the one everybody learns to skip); --totals
 * shows the counters since each device connected instead, at once.  With
 * --watch N every report covers the N seconds since the previous one.
 * The interval is measured on the daemon's clock (its uptime_s), so a slow
 * client or socket does not skew the rates.
 *
 * The field names are the daemon's (include/xenblkd/control.h, xenblkd(8)
 * CONTROL SOCKET); a field the daemon does not send reads as 0.
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xen/xen.h>

#include "xenblkctl.h"
#include "word_list.h"

/* ---- list ---- */

/* 1536 MiB -> "1.5G", as lsblk prints sizes. */
static void human_size(uint64_t bytes, char *buf, size_t len)
{
    static const char units[] = "BKMGTPE";
    double v = (double)bytes;
    unsigned u = 0;

    while (v >= 1024 && u + 1 < sizeof(units) - 1) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%" PRIu64 "B", bytes);
    else if (v < 10 && fabs(v - round(v)) >= 0.05)
        snprintf(buf, len, "%.1f%c", v, units[u]);
    else
        snprintf(buf, len, "%.0f%c", v, units[u]);
}

static json_object *devices_of(json_object *reply)
{
    json_object *d = xbc_get(reply, "devices");

    return d && json_object_is_type(d, json_type_array) ? d : NULL;
}

/* Below the table, the devices that have not yet acted on what their
 * frontend or the toolstack wrote, and why ("evaluation" of each device):
 * what an administrator needs when a device does not follow its
 * frontend; and those whose flushes fail for good (write_back_lost).
 * Nothing when every device is idle and well. */
static void list_busy(json_object *devs)
{
    size_t n = json_object_array_length(devs);

    for (size_t i = 0; i < n; i++) {
        json_object *d = json_object_array_get_idx(devs, i);
        json_object *e = xbc_get(d, "evaluation");
        char name[32], what[256] = "";
        size_t off = 0;

        if (xbc_bool(e, "queued"))
            xbd_add_word(what, sizeof(what), &off, "evaluation queued");
        if (xbc_bool(e, "delayed"))
            xbd_add_word(what, sizeof(what), &off, "evaluation delayed by its rate limit");
        if (xbc_bool(e, "snapshot_pending"))
            xbd_add_word(what, sizeof(what), &off, "reading xenstore");
        if (xbc_u64(e, "writes_pending"))
            xbd_add_word(what, sizeof(what), &off, "%" PRIu64 " xenstore write(s) pending",
                     xbc_u64(e, "writes_pending"));
        if (xbc_u64(e, "draining_rings"))
            xbd_add_word(what, sizeof(what), &off, "%" PRIu64 " ring(s) draining",
                     xbc_u64(e, "draining_rings"));
        if (xbc_bool(xbc_get(d, "backing"), "write_back_lost"))
            xbd_add_word(what, sizeof(what), &off,
                         "flushes fail: a write-back error of its store was reported");
        if (!off)
            continue;
        xbc_devid_name((uint32_t)xbc_u64(d, "devid"), name, sizeof(name));
        printf("busy: domain %" PRIu64 " %s (%" PRIu64 "): %s\n", xbc_u64(d, "domid"),
               *name ? name : "-", xbc_u64(d, "devid"), what);
    }
}

static void list_table(json_object *devs)
{
    static const bool right[] = { true, true, false, false, false, false, true, true, false };
    struct xbc_table *t = xbc_table_new(9, right);
    size_t n = json_object_array_length(devs);

    xbc_table_rowf(t, "DOMID", "DEVID", "NAME", "KIND", "STATE", "MODE", "SIZE", "QUEUES",
                   "PERSISTENT  BACKING");
    for (size_t i = 0; i < n; i++) {
        json_object *d = json_object_array_get_idx(devs, i);
        json_object *backing = xbc_get(d, "backing");
        char domid[16], devid[16], name[32], size[16], queues[16], last[4200];
        bool connected = xbc_bool(d, "connected");

        snprintf(domid, sizeof(domid), "%" PRIu64, xbc_u64(d, "domid"));
        snprintf(devid, sizeof(devid), "%" PRIu64, xbc_u64(d, "devid"));
        xbc_devid_name((uint32_t)xbc_u64(d, "devid"), name, sizeof(name));
        if (xbc_u64(d, "sectors") || xbc_bool(backing, "open"))
            human_size(xbc_u64(d, "size_bytes"), size, sizeof(size));
        else
            snprintf(size, sizeof(size), "-");
        if (connected)
            snprintf(queues, sizeof(queues), "%" PRIu64, xbc_u64(d, "queues"));
        else
            snprintf(queues, sizeof(queues), "-");
        /* The backing path is the only free-form cell: last, so that the
         * other columns stay aligned whatever its length. */
        snprintf(last, sizeof(last), "%-10s  %s",
                 connected ? (xbc_bool(d, "persistent") ? "yes" : "no") : "-",
                 xbc_str(backing, "path", "-"));
        xbc_table_rowf(t, domid, devid, *name ? name : "-", xbc_str(d, "kind", "?"),
                       xbc_str(d, "state", "?"), xbc_bool(d, "readonly") ? "r" : "w",
                       size, queues, last);
    }
    xbc_table_print(t, stdout);
    list_busy(devs);
}

int xbc_cmd_list(const struct xbc_global *g, int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    json_object *reply = NULL, *devs;
    bool json = false;
    int o, rc;

    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
        if (o == 'j')
            json = true;
        else if (o == 'h')
            return xbc_command_help("list");
        else
            return xbc_usage_error("list", "list: unknown option '%s'", argv[optind - 1]);
    }
    if (optind < argc)
        return xbc_usage_error("list", "list: unexpected argument '%s'", argv[optind]);
    rc = xbc_call(g->socket, xbc_request_new("list"), &reply, XBC_LOUD);
    if (rc)
        return rc;
    devs = devices_of(reply);
    if (!devs) {
        xbc_err("list: xenblkd's reply has no device list");
        rc = XBC_EFAIL;
    } else if (json) {
        printf("%s\n", json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
    } else {
        list_table(devs);
    }
    json_object_put(reply);
    return rc;
}

/* ---- stats ---- */

enum { OP_READ, OP_WRITE, OP_FLUSH, OP_BARRIER, OP_DISCARD, NOPS };
static const char *const op_names[NOPS] = { "read", "write", "flush", "barrier", "discard" };

/* What a table row shows, summed over the rings it covers. */
struct vals {
    uint64_t req[NOPS];
    uint64_t rsect, wsect;
    uint64_t errors;            /* ERROR responses: io + protocol + grant */
    uint64_t in_flight;
    struct xbc_hist lat[NOPS];
};

static void ring_vals(json_object *ring, struct vals *v)
{
    json_object *req = xbc_get(ring, "requests"), *lat = xbc_get(ring, "latency");
    json_object *err = xbc_get(ring, "errors"), *sect = xbc_get(ring, "sectors");

    memset(v, 0, sizeof(*v));
    for (int i = 0; i < NOPS; i++) {
        v->req[i] = xbc_u64(req, op_names[i]);
        if (!xbc_hist_from_json(xbc_get(lat, op_names[i]), &v->lat[i]))
            memset(&v->lat[i], 0, sizeof(v->lat[i]));
    }
    v->rsect = xbc_u64(sect, "read");
    v->wsect = xbc_u64(sect, "written");
    v->errors = xbc_u64(err, "io") + xbc_u64(err, "protocol") + xbc_u64(err, "grant");
    v->in_flight = xbc_u64(ring, "in_flight");
}

static void vals_add(struct vals *acc, const struct vals *v)
{
    for (int i = 0; i < NOPS; i++) {
        acc->req[i] += v->req[i];
        xbc_hist_add(&acc->lat[i], &v->lat[i]);
    }
    acc->rsect += v->rsect;
    acc->wsect += v->wsect;
    acc->errors += v->errors;
    acc->in_flight += v->in_flight;
}

static uint64_t sub0(uint64_t b, uint64_t a)
{
    return b >= a ? b - a : b;
}

/* Counters of B minus A; in-flight and errors stay B's (a level and a
 * total since connect).  A ring that reconnected in between restarted
 * from zero: then B counts since the reconnect. */
static void vals_delta(struct vals *out, const struct vals *b, const struct vals *a)
{
    bool reset = b->req[OP_READ] < a->req[OP_READ] || b->req[OP_WRITE] < a->req[OP_WRITE];

    *out = *b;
    if (reset)
        return;
    for (int i = 0; i < NOPS; i++) {
        out->req[i] = sub0(b->req[i], a->req[i]);
        xbc_hist_sub(&out->lat[i], &b->lat[i], &a->lat[i]);
    }
    out->rsect = sub0(b->rsect, a->rsect);
    out->wsect = sub0(b->wsect, a->wsect);
}

/* The ring of device D with queue Q in an earlier sample, or NULL. */
static json_object *find_ring(json_object *reply, json_object *d, uint64_t q)
{
    json_object *devs = devices_of(reply);
    size_t n = devs ? json_object_array_length(devs) : 0;

    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(devs, i), *rings;
        if (xbc_u64(e, "domid") != xbc_u64(d, "domid") || xbc_u64(e, "devid") != xbc_u64(d, "devid") ||
            strcmp(xbc_str(e, "kind", ""), xbc_str(d, "kind", "")) != 0)
            continue;
        rings = xbc_get(e, "rings");
        for (size_t r = 0; rings && r < json_object_array_length(rings); r++) {
            json_object *ring = json_object_array_get_idx(rings, r);
            if (xbc_u64(ring, "queue") == q)
                return ring;
        }
    }
    return NULL;
}

struct report {
    json_object *cur, *prev;    /* prev NULL: totals since connect */
    double dt;                  /* seconds between prev and cur */
    bool queues;
};

/* What ring R of device D did, over the report's interval. */
static void ring_report_vals(const struct report *rp, json_object *d, json_object *r, struct vals *v)
{
    json_object *old;
    struct vals b, a;

    ring_vals(r, &b);
    if (!rp->prev) {
        *v = b;
        return;
    }
    old = find_ring(rp->prev, d, xbc_u64(r, "queue"));
    if (!old) {
        *v = b;                 /* connected during the interval */
        return;
    }
    ring_vals(old, &a);
    vals_delta(v, &b, &a);
}

static void fmt_rate(char *buf, size_t len, double v)
{
    snprintf(buf, len, "%.1f", v);
}

/* Latency in ms, "-" without requests. */
static void fmt_ms(char *buf, size_t len, double us)
{
    if (isnan(us))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.3f", us / 1000.0);
}

#define NCOLS 17
static const char *const rate_head[NCOLS] = {
    "DOMID", "DEVID", "KIND", "Q", "r/s", "w/s", "f/s", "d/s", "rMiB/s", "wMiB/s",
    "r_await", "r_p99", "w_await", "w_p99", "f_await", "inflight", "errors",
};
static const char *const total_head[NCOLS] = {
    "DOMID", "DEVID", "KIND", "Q", "reads", "writes", "flushes", "discards", "rMiB", "wMiB",
    "r_await", "r_p99", "w_await", "w_p99", "f_await", "inflight", "errors",
};

static void add_row(struct xbc_table *t, const struct report *rp, json_object *d,
                    const char *queue, const struct vals *v)
{
    char c[NCOLS][32];
    const char *cells[NCOLS];
    double div = rp->prev ? rp->dt : 1.0;
    struct xbc_hist fl = v->lat[OP_FLUSH];
    int i;

    xbc_hist_add(&fl, &v->lat[OP_BARRIER]);
    snprintf(c[0], 32, "%" PRIu64, xbc_u64(d, "domid"));
    snprintf(c[1], 32, "%" PRIu64, xbc_u64(d, "devid"));
    snprintf(c[2], 32, "%s", xbc_str(d, "kind", "?"));
    snprintf(c[3], 32, "%s", queue);
    if (rp->prev) {
        fmt_rate(c[4], 32, (double)v->req[OP_READ] / div);
        fmt_rate(c[5], 32, (double)v->req[OP_WRITE] / div);
        fmt_rate(c[6], 32, (double)(v->req[OP_FLUSH] + v->req[OP_BARRIER]) / div);
        fmt_rate(c[7], 32, (double)v->req[OP_DISCARD] / div);
    } else {
        snprintf(c[4], 32, "%" PRIu64, v->req[OP_READ]);
        snprintf(c[5], 32, "%" PRIu64, v->req[OP_WRITE]);
        snprintf(c[6], 32, "%" PRIu64, v->req[OP_FLUSH] + v->req[OP_BARRIER]);
        snprintf(c[7], 32, "%" PRIu64, v->req[OP_DISCARD]);
    }
    snprintf(c[8], 32, "%.2f", (double)v->rsect * 512 / 1048576 / div);
    snprintf(c[9], 32, "%.2f", (double)v->wsect * 512 / 1048576 / div);
    fmt_ms(c[10], 32, xbc_hist_mean_us(&v->lat[OP_READ]));
    fmt_ms(c[11], 32, xbc_hist_quantile_us(&v->lat[OP_READ], 0.99));
    fmt_ms(c[12], 32, xbc_hist_mean_us(&v->lat[OP_WRITE]));
    fmt_ms(c[13], 32, xbc_hist_quantile_us(&v->lat[OP_WRITE], 0.99));
    fmt_ms(c[14], 32, xbc_hist_mean_us(&fl));
    snprintf(c[15], 32, "%" PRIu64, v->in_flight);
    snprintf(c[16], 32, "%" PRIu64, v->errors);
    for (i = 0; i < NCOLS; i++)
        cells[i] = c[i];
    xbc_table_row(t, cells);
}

static void device_rows(struct xbc_table *t, const struct report *rp, json_object *d)
{
    json_object *rings = xbc_get(d, "rings");
    size_t n = rings && json_object_is_type(rings, json_type_array) ? json_object_array_length(rings) : 0;
    struct vals sum, v;
    char q[16];

    memset(&sum, 0, sizeof(sum));
    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_array_get_idx(rings, i);
        ring_report_vals(rp, d, r, &v);
        if (rp->queues) {
            snprintf(q, sizeof(q), "%" PRIu64, xbc_u64(r, "queue"));
            add_row(t, rp, d, q, &v);
        } else {
            vals_add(&sum, &v);
        }
    }
    /* A device without rings (not connected) still gets its line. */
    if (!rp->queues || n == 0)
        add_row(t, rp, d, n ? "all" : "-", &sum);
}

static void print_report(const struct report *rp)
{
    static const bool right[NCOLS] = {
        true, true, false, true, true, true, true, true, true, true,
        true, true, true, true, true, true, true,
    };
    json_object *devs = devices_of(rp->cur);
    struct xbc_table *t = xbc_table_new(NCOLS, right);
    char when[64];
    time_t now = time(NULL);
    struct tm tm;

    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", localtime_r(&now, &tm));
    if (rp->prev)
        printf("%s  xenblkd %s: rates over the last %.2f s; latency in ms (await = mean, "
               "p99 interpolated); inflight now; errors since connect\n",
               when, xbc_str(xbc_get(rp->cur, "daemon"), "version", "?"), rp->dt);
    else
        printf("%s  xenblkd %s: totals since each device connected; latency in ms (await = mean, "
               "p99 interpolated); inflight now\n",
               when, xbc_str(xbc_get(rp->cur, "daemon"), "version", "?"));
    xbc_table_row(t, rp->prev ? rate_head : total_head);
    for (size_t i = 0; devs && i < json_object_array_length(devs); i++)
        device_rows(t, rp, json_object_array_get_idx(devs, i));
    xbc_table_print(t, stdout);
    fflush(stdout);
}

struct stats_opts {
    long domid, devid;          /* -1: all */
    bool queues, json, prometheus, totals;
    double watch;               /* 0: one report */
    uint64_t count;             /* reports with --watch; 0: forever */
};

static int stats_options(int argc, char **argv, struct stats_opts *o)
{
    static const struct option opts[] = {
        { "queues", no_argument, NULL, 'q' },
        { "json", no_argument, NULL, 'j' },
        { "prometheus", no_argument, NULL, 'p' },
        { "totals", no_argument, NULL, 't' },
        { "watch", required_argument, NULL, 'w' },
        { "count", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    int c;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "qjptw:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'q': o->queues = true; break;
        case 'j': o->json = true; break;
        case 'p': o->prometheus = true; break;
        case 't': o->totals = true; break;
        case 'w':
            if (!xbc_parse_seconds(optarg, 86400, &o->watch))
                return xbc_usage_error("stats", "--watch: expected seconds > 0, got '%s'", optarg);
            break;
        case 'c':
            if (!xbc_parse_uint(optarg, UINT32_MAX, &o->count) || o->count == 0)
                return xbc_usage_error("stats", "--count: expected a number of reports >= 1, got '%s'", optarg);
            break;
        case 'h':
            return xbc_command_help("stats");
        default:
            return xbc_usage_error("stats", "stats: unknown option or missing value: '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc && !xbc_parse_target(argv[optind], &o->domid, &o->devid))
        return xbc_usage_error("stats", "stats: expected DOMID or DOMID/DEVID (e.g. 5/xvda), got '%s'",
                               argv[optind]);
    if (optind + 1 < argc)
        return xbc_usage_error("stats", "stats: unexpected argument '%s'", argv[optind + 1]);
    if (o->json && o->prometheus)
        return xbc_usage_error("stats", "stats: --json and --prometheus exclude each other");
    if (o->prometheus && o->watch)
        return xbc_usage_error("stats", "stats: --prometheus takes no --watch (the scraper samples)");
    if (o->count && !o->watch)
        return xbc_usage_error("stats", "stats: --count needs --watch");
    return -1;
}

static int sample(const struct xbc_global *g, const struct stats_opts *o, json_object **reply)
{
    json_object *req = xbc_request_new("stats");
    int rc;

    if (o->domid >= 0)
        json_object_object_add(req, "domid", json_object_new_int64(o->domid));
    if (o->devid >= 0)
        json_object_object_add(req, "devid", json_object_new_int64(o->devid));
    rc = xbc_call(g->socket, req, reply, XBC_LOUD);
    if (rc == XBC_OK && !devices_of(*reply)) {
        xbc_err("stats: xenblkd's reply has no device list");
        json_object_put(*reply);
        *reply = NULL;
        rc = XBC_EFAIL;
    }
    return rc;
}

static double uptime_of(json_object *reply)
{
    return xbc_double(xbc_get(reply, "daemon"), "uptime_s");
}

static void sleep_s(double s)
{
    struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = (long)((s - floor(s)) * 1e9) };

    while (nanosleep(&ts, &ts) < 0)
        ;
}

/* The interval between two samples: the daemon's clock, else ours. */
static double interval(json_object *a, json_object *b, double fallback)
{
    double d = uptime_of(b) - uptime_of(a);

    return d > 0 ? d : fallback;
}

static int stats_loop(const struct xbc_global *g, const struct stats_opts *o)
{
    double every = o->watch ? o->watch : 1.0;
    json_object *prev = NULL, *cur = NULL;
    uint64_t reports = 0;
    int rc;

    rc = sample(g, o, &prev);
    if (rc)
        return rc;
    if (o->totals) {
        struct report rp = { .cur = prev, .queues = o->queues };
        print_report(&rp);
        reports++;
    }
    while (!o->totals || (o->watch && (!o->count || reports < o->count))) {
        struct report rp = { .queues = o->queues };

        sleep_s(every);
        rc = sample(g, o, &cur);
        if (rc)
            break;
        rp.cur = cur;
        rp.prev = o->totals ? NULL : prev;
        rp.dt = interval(prev, cur, every);
        if (o->watch && reports > 0)
            putchar('\n');
        print_report(&rp);
        reports++;
        json_object_put(prev);
        prev = cur;
        cur = NULL;
        if (!o->watch || (o->count && reports >= o->count))
            break;
    }
    json_object_put(prev);
    return rc;
}

/* --json: every sample as the daemon sent it, one line each. */
static int stats_json(const struct xbc_global *g, const struct stats_opts *o)
{
    uint64_t reports = 0;
    json_object *reply = NULL;
    int rc;

    for (;;) {
        rc = sample(g, o, &reply);
        if (rc)
            return rc;
        printf("%s\n", json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
        fflush(stdout);
        json_object_put(reply);
        reports++;
        if (!o->watch || (o->count && reports >= o->count))
            return XBC_OK;
        sleep_s(o->watch);
    }
}

int xbc_cmd_stats(const struct xbc_global *g, int argc, char **argv)
{
    struct stats_opts o = { .domid = -1, .devid = -1 };
    json_object *reply = NULL;
    int rc = stats_options(argc, argv, &o);

    if (rc >= 0)
        return rc;
    if (o.json)
        return stats_json(g, &o);
    if (o.prometheus) {
        rc = sample(g, &o, &reply);
        if (rc == XBC_OK)
            rc = xbc_prom_write(stdout, reply);
        json_object_put(reply);
        return rc;
    }
    return stats_loop(g, &o);
}
