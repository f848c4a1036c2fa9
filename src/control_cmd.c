/*
 * control_cmd.c - the commands of the control protocol and the JSON they
 * answer with (the protocol is described in include/xenblkd/control.h).
 *
 * JSON goes through json-c both ways: requests come from local users who
 * may send anything, and replies carry paths chosen by the toolstack;
 * neither is ever parsed or escaped by hand.  Counters are summed only
 * here, when a client asks: the data path just increments its own.
 */
#include "config.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "xenblkd/log.h"
#include "xenblkd/xenbus.h"

#include "control_cmd.h"
#include "log_limit.h"
#include "settle.h"

/* Nesting a request may use; ours are flat. */
#define XBD_CTL_JSON_DEPTH 8

double xbd_ctl_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- replies ------------------------------------------------------- */

static char *to_line(json_object *o, size_t *len)
{
    const char *s;
    size_t n;
    char *line;

    s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                          JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s)
        return NULL;
    n = strlen(s);
    line = malloc(n + 2);
    if (!line)
        return NULL;
    memcpy(line, s, n);
    line[n] = '\n';
    line[n + 1] = '\0';
    *len = n + 1;
    return line;
}

static json_object *error_obj(const char *code, const char *msg)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "error", json_object_new_string(msg));
    json_object_object_add(o, "code", json_object_new_string(code));
    return o;
}

char *xbd_ctl_error_line(const char *code, const char *msg, size_t *len)
{
    json_object *o = error_obj(code, msg);
    char *line = o ? to_line(o, len) : NULL;

    json_object_put(o);
    return line;
}

static json_object *ok_obj(void)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "ok", json_object_new_boolean(1));
    return o;
}

/* A client-chosen string for an error message: printable ASCII, short. */
static void printable(const char *s, char *buf, size_t n)
{
    size_t i = 0;

    for (; *s && i + 1 < n; s++)
        buf[i++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    buf[i] = '\0';
}

/* ---- daemon-wide figures ------------------------------------------- */

static json_object *u64(uint64_t v)
{
    return json_object_new_uint64(v);
}

static uint64_t rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "re");

    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t fds_open(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    uint64_t n = 0;

    if (!d)
        return 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n ? n - 1 : 0;       /* not the directory's own fd */
}

static json_object *rlim(rlim_t v)
{
    return v == RLIM_INFINITY ? NULL : u64((uint64_t)v);
}

static json_object *hist_obj(const struct xbd_lat_hist *h);

/* Host-wide budgets and how the loop fares (budget.h, eval_queue.h,
 * loop_stats.h). */
static void add_host_figures(json_object *o, const struct xbd_host *h)
{
    struct xbd_host_figures f;
    json_object *g = json_object_new_object(), *loop = json_object_new_object();
    json_object *ev = json_object_new_object(), *log = json_object_new_object();
    json_object *um = json_object_new_object(), *wk = json_object_new_object();

    xbd_host_get_figures(h, &f);
    json_object_object_add(g, "limit", u64(f.grant_mappings_limit));
    json_object_object_add(g, "used", u64(f.grant_mappings_used));
    json_object_object_add(g, "max_map_count", u64(f.map_count_max));
    json_object_object_add(o, "grant_mappings", g);
    json_object_object_add(ev, "done", u64(f.evaluations));
    json_object_object_add(ev, "deferred", u64(f.evaluations_deferred));
    json_object_object_add(ev, "delayed", u64(f.evaluations_delayed));
    json_object_object_add(o, "evaluations", ev);
    json_object_object_add(um, "rings_pending", u64(f.unmap_rings_pending));
    json_object_object_add(um, "mappings_pending", u64(f.unmap_mappings_pending));
    json_object_object_add(o, "unmaps", um);
    json_object_object_add(wk, "busy", u64(f.workers_busy));
    json_object_object_add(wk, "threads", u64(f.workers_live));
    json_object_object_add(wk, "limit", u64(f.workers_limit));
    json_object_object_add(o, "workers", wk);
    json_object_object_add(loop, "iterations", u64(f.loop_iterations));
    json_object_object_add(loop, "busy_max_us", u64(f.loop_busy_max_us));
    json_object_object_add(loop, "busy", hist_obj(&f.loop_busy));
    json_object_object_add(o, "loop", loop);
    json_object_object_add(log, "suppressed", u64(xbd_log_limit_suppressed()));
    json_object_object_add(o, "log", log);
}

static json_object *daemon_obj(const struct xbd_ctl_env *env)
{
    json_object *o = json_object_new_object(), *lim = json_object_new_object();
    struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
    char up[32];
    double uptime = xbd_ctl_now() - env->started;

    getrlimit(RLIMIT_NOFILE, &rl);
    snprintf(up, sizeof(up), "%.3f", uptime);
    json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
    json_object_object_add(o, "pid", json_object_new_int64((int64_t)getpid()));
    json_object_object_add(o, "uptime_s", json_object_new_double_s(uptime, up));
    json_object_object_add(o, "devices", u64(xbd_host_device_count(env->host)));
    json_object_object_add(o, "rings", u64(xbd_host_ring_count(env->host)));
    json_object_object_add(o, "rss_bytes", u64(rss_bytes()));
    json_object_object_add(o, "fds_open", u64(fds_open()));
    json_object_object_add(lim, "soft", rlim(rl.rlim_cur));
    json_object_object_add(lim, "hard", rlim(rl.rlim_max));
    json_object_object_add(o, "fd_limit", lim);
    add_host_figures(o, env->host);
    if (env->counters) {
        json_object *c = json_object_new_object();

        json_object_object_add(c, "deferred", u64(env->counters->deferred));
        json_object_object_add(c, "waiting", u64(env->counters->waiting));
        json_object_object_add(c, "group_busy_us", u64(env->counters->group_busy_us));
        json_object_object_add(c, "stats_cached", u64(env->cache ? env->cache->hits : 0));
        json_object_object_add(o, "control", c);
    }
    return o;
}

/* ---- devices and rings --------------------------------------------- */

static const char *protocol_name(enum xbd_protocol p)
{
    switch (p) {
    case XBD_PROTO_X86_32:
        return "x86_32-abi";
    case XBD_PROTO_X86_64:
        return "x86_64-abi";
    default:
        return "native";
    }
}

static json_object *str_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

static json_object *backing_obj(const struct xbd_device_info *i)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "path", str_or_null(i->backing_path));
    json_object_object_add(o, "type", !i->backing_open ? NULL :
                           json_object_new_string(i->is_blockdev ? "block" : "file"));
    json_object_object_add(o, "open", json_object_new_boolean(i->backing_open));
    json_object_object_add(o, "write_back_lost", json_object_new_boolean(i->wb_lost));
    return o;
}

/* Where the device's evaluation stands (what settle waits for). */
static json_object *eval_obj(const struct xbd_device_eval *e)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "count", u64(e->count));
    json_object_object_add(o, "queued", json_object_new_boolean(e->queued));
    json_object_object_add(o, "delayed", json_object_new_boolean(e->delayed));
    json_object_object_add(o, "snapshot_pending", json_object_new_boolean(e->snapshot_pending));
    json_object_object_add(o, "writes_pending", u64(e->writes_pending));
    json_object_object_add(o, "draining_rings", u64(e->draining));
    return o;
}

static json_object *device_obj(const struct xbd_device_info *i)
{
    json_object *o = json_object_new_object();
    const struct xbd_negotiated *n = &i->neg;
    bool c = i->connected;

    json_object_object_add(o, "domid", u64(i->domid));
    json_object_object_add(o, "devid", u64(i->devid));
    json_object_object_add(o, "kind", json_object_new_string(i->kind));
    json_object_object_add(o, "backend", json_object_new_string(i->backend));
    json_object_object_add(o, "frontend", str_or_null(i->frontend));
    json_object_object_add(o, "backing", backing_obj(i));
    json_object_object_add(o, "size_bytes", u64(i->sectors * 512u));
    json_object_object_add(o, "sectors", u64(i->sectors));
    json_object_object_add(o, "sector_size", u64(i->sector_size));
    json_object_object_add(o, "physical_sector_size", u64(i->physical_sector_size));
    json_object_object_add(o, "state", json_object_new_string(xbd_xenbus_state_name(i->state)));
    json_object_object_add(o, "state_number", json_object_new_int(i->state));
    json_object_object_add(o, "readonly", json_object_new_boolean(i->readonly));
    json_object_object_add(o, "discard", json_object_new_boolean(i->discard));
    json_object_object_add(o, "connected", json_object_new_boolean(c));
    json_object_object_add(o, "protocol", c ? json_object_new_string(protocol_name(n->protocol)) : NULL);
    json_object_object_add(o, "ring_order", c ? u64(n->ring_order) : NULL);
    json_object_object_add(o, "queues", c ? u64(n->nr_queues) : NULL);
    json_object_object_add(o, "persistent", c ? json_object_new_boolean(n->persistent) : NULL);
    json_object_object_add(o, "max_indirect_segments", c ? u64(n->max_indirect_segs) : NULL);
    json_object_object_add(o, "evaluation", eval_obj(&i->eval));
    return o;
}

/* obj[name] = {k[0]: v[0], ...} */
static void add_group(json_object *obj, const char *name, const char *const *k,
                      const uint64_t *v, size_t n)
{
    json_object *g = json_object_new_object();

    for (size_t i = 0; i < n; i++)
        json_object_object_add(g, k[i], u64(v[i]));
    json_object_object_add(obj, name, g);
}

#define GROUP(obj, name, keys, ...) do { \
        static const char *const k_[] = keys; \
        const uint64_t v_[] = { __VA_ARGS__ }; \
        _Static_assert(sizeof(k_) / sizeof(k_[0]) == sizeof(v_) / sizeof(v_[0]), name); \
        add_group(obj, name, k_, v_, sizeof(v_) / sizeof(v_[0])); \
    } while (0)
#define KEYS(...) { __VA_ARGS__ }

static json_object *hist_obj(const struct xbd_lat_hist *h)
{
    json_object *o = json_object_new_object();
    json_object *b = json_object_new_array_ext(XBD_LAT_BUCKETS);

    json_object_object_add(o, "count", u64(h->count));
    json_object_object_add(o, "sum_us", u64(h->sum_us));
    for (unsigned i = 0; i < XBD_LAT_BUCKETS; i++)
        json_object_array_add(b, u64(h->buckets[i]));
    json_object_object_add(o, "buckets", b);
    return o;
}

static json_object *ring_obj(unsigned queue, const struct xbd_ring_stats *s)
{
    static const char *const lat_names[XBD_LAT_OPS] = {
        [XBD_LAT_READ] = "read", [XBD_LAT_WRITE] = "write", [XBD_LAT_FLUSH] = "flush",
        [XBD_LAT_BARRIER] = "barrier", [XBD_LAT_DISCARD] = "discard",
    };
    json_object *o = json_object_new_object(), *lat = json_object_new_object();

    json_object_object_add(o, "queue", u64(queue));
    GROUP(o, "requests", KEYS("read", "write", "flush", "barrier", "discard", "indirect"),
          s->rd_req, s->wr_req, s->flush_req, s->barrier_req, s->discard_req, s->indirect_req);
    GROUP(o, "sectors", KEYS("read", "written"), s->rd_sect, s->wr_sect);
    GROUP(o, "errors", KEYS("io", "protocol", "grant", "eopnotsupp"),
          s->io_errors, s->protocol_errors, s->grant_errors, s->eopnotsupp);
    json_object_object_add(o, "oo_stalls", u64(s->oo_req));
    json_object_object_add(o, "in_flight", u64(s->inflight));
    GROUP(o, "persistent_grants", KEYS("mapped", "hits", "misses", "purges", "map_calls",
                                       "budget_full", "map_failures"),
          s->pgrants_mapped, s->pgrant_hits, s->pgrant_misses, s->pgrant_purges,
          s->pgrant_map_calls, s->pgrant_budget_full, s->pgrant_map_failures);
    GROUP(o, "budget", KEYS("memory_bytes", "slots", "bounce_pages", "bounce_limit",
                            "idle_pages", "grant_mappings_limit"),
          s->mem_bytes, s->slots, s->bounce_pages, s->bounce_limit, s->idle_pages,
          s->pgrant_limit);
    GROUP(o, "grant_copy", KEYS("calls", "segments"), s->copy_calls, s->copy_segs);
    GROUP(o, "evtchn", KEYS("received", "sent", "storm_delays"),
          s->evtchn_rx, s->evtchn_tx, s->storm_delays);
    GROUP(o, "engine", KEYS("queued", "share_waits", "offloaded", "worker_submitted"),
          s->engine.queued, s->engine.share_waits, s->engine.offloaded,
          s->engine.worker_submitted);
    for (unsigned op = 0; op < XBD_LAT_OPS; op++)
        json_object_object_add(lat, lat_names[op], hist_obj(&s->lat[op]));
    json_object_object_add(o, "latency", lat);
    return o;
}

/* {"limit": l, "used": u} */
static json_object *lim_used(uint64_t l, uint64_t u)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "limit", u64(l));
    json_object_object_add(o, "used", u64(u));
    return o;
}

/* The disk's budgets and the sum of what its queues use. */
static json_object *budget_obj(const struct xbd_device_info *i, const struct xbd_device *dev)
{
    json_object *o = json_object_new_object();
    uint64_t mem = 0, maps = 0;

    for (unsigned q = 0; q < xbd_device_ring_count(dev); q++) {
        const struct xbd_ring_stats *s = xbd_device_ring_stats(dev, q);
        mem += s->mem_bytes;
        maps += s->pgrants_mapped;
    }
    json_object_object_add(o, "memory_bytes", lim_used(i->budget.memory_limit, mem));
    json_object_object_add(o, "grant_mappings", lim_used(i->budget.grant_mappings_limit, maps));
    json_object_object_add(o, "fds", lim_used(i->budget.fds_limit, i->budget.fds_used));
    return o;
}

/* ---- selecting devices ---------------------------------------------- */

struct filter {
    int64_t domid, devid;       /* -1: any */
};

struct entry {
    struct xbd_device_info info;
    const struct xbd_device *dev;
};

static int cmp_entry(const void *a, const void *b)
{
    const struct xbd_device_info *x = &((const struct entry *)a)->info;
    const struct xbd_device_info *y = &((const struct entry *)b)->info;

    if (x->domid != y->domid)
        return x->domid < y->domid ? -1 : 1;
    if (x->devid != y->devid)
        return x->devid < y->devid ? -1 : 1;
    return strcmp(x->kind, y->kind);
}

/* The devices matching f as a sorted JSON array; NULL when out of memory. */
static json_object *devices_arr(struct xbd_host *h, const struct filter *f,
                                bool with_rings, unsigned *count)
{
    unsigned n = xbd_host_device_count(h), k = 0;
    struct entry *e = calloc(n ? n : 1, sizeof(*e));
    json_object *arr;

    *count = 0;
    if (!e)
        return NULL;
    for (unsigned i = 0; i < n; i++) {
        e[k].dev = xbd_host_device(h, i);
        xbd_device_get_info(e[k].dev, &e[k].info);
        if ((f->domid < 0 || e[k].info.domid == (uint64_t)f->domid) &&
            (f->devid < 0 || e[k].info.devid == (uint64_t)f->devid))
            k++;
    }
    qsort(e, k, sizeof(*e), cmp_entry);
    arr = json_object_new_array_ext((int)k);
    for (unsigned j = 0; arr && j < k; j++) {
        json_object *d = device_obj(&e[j].info);

        if (with_rings) {
            json_object *rings = json_object_new_array();
            for (unsigned q = 0; q < xbd_device_ring_count(e[j].dev); q++)
                json_object_array_add(rings, ring_obj(q, xbd_device_ring_stats(e[j].dev, q)));
            json_object_object_add(d, "rings", rings);
        }
        json_object_object_add(d, "budget", budget_obj(&e[j].info, e[j].dev));
        GROUP(d, "log", KEYS("suppressed"), e[j].info.budget.log_suppressed);
        json_object_array_add(arr, d);
    }
    free(e);
    *count = k;
    return arr;
}

/* ---- requests -------------------------------------------------------- */

struct request {
    json_object *obj;
    const char *command;
};

/* Every key of the request must be "version", "command" or one of the
 * command's arguments: a typo is an error, not a silent no-op. */
static bool args_ok(json_object *req, const char *const *allowed, char *why, size_t n)
{
    json_object_object_foreach(req, key, val) {
        bool ok = !strcmp(key, "version") || !strcmp(key, "command");

        (void)val;
        for (const char *const *a = allowed; !ok && a && *a; a++)
            ok = !strcmp(key, *a);
        if (!ok) {
            char pbuf[40];
            printable(key, pbuf, sizeof(pbuf));
            snprintf(why, n, "unknown argument '%s'", pbuf);
            return false;
        }
    }
    return true;
}

/* Optional integer argument in 0..max; -1 when absent.  -2: invalid. */
static int64_t int_arg(json_object *req, const char *key, int64_t max, char *why, size_t n)
{
    json_object *v;
    int64_t x;

    if (!json_object_object_get_ex(req, key, &v))
        return -1;
    if (!json_object_is_type(v, json_type_int)) {
        snprintf(why, n, "\"%s\" must be an integer", key);
        return -2;
    }
    x = json_object_get_int64(v);
    if (x < 0 || x > max) {
        snprintf(why, n, "\"%s\" must be in 0..%" PRId64, key, max);
        return -2;
    }
    return x;
}

static json_object *cmd_version(void)
{
    json_object *o = ok_obj();

    json_object_object_add(o, "daemon", json_object_new_string("xenblkd"));
    json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
    json_object_object_add(o, "protocol", json_object_new_int(XBD_CTL_PROTOCOL));
    return o;
}

static json_object *cmd_list(const struct xbd_ctl_env *env)
{
    struct filter f = { -1, -1 };
    unsigned n;
    json_object *arr = devices_arr(env->host, &f, false, &n);
    json_object *o;

    if (!arr)
        return error_obj("failed", "out of memory");
    o = ok_obj();
    json_object_object_add(o, "devices", arr);
    return o;
}

static json_object *cmd_stats(const struct xbd_ctl_env *env, json_object *req)
{
    struct filter f;
    char why[96];
    unsigned n;
    json_object *arr, *o;

    f.domid = int_arg(req, "domid", 0x7fef, why, sizeof(why));
    if (f.domid < -1)
        return error_obj("bad_request", why);
    f.devid = int_arg(req, "devid", UINT32_MAX, why, sizeof(why));
    if (f.devid < -1)
        return error_obj("bad_request", why);
    arr = devices_arr(env->host, &f, true, &n);
    if (!arr)
        return error_obj("failed", "out of memory");
    if (n == 0 && (f.domid >= 0 || f.devid >= 0)) {
        json_object_put(arr);
        if (f.devid >= 0 && f.domid >= 0)
            snprintf(why, sizeof(why), "no device %" PRId64 " of domain %" PRId64,
                     f.devid, f.domid);
        else if (f.domid >= 0)
            snprintf(why, sizeof(why), "no device of domain %" PRId64, f.domid);
        else
            snprintf(why, sizeof(why), "no device with devid %" PRId64, f.devid);
        return error_obj("not_found", why);
    }
    o = ok_obj();
    json_object_object_add(o, "daemon", daemon_obj(env));
    json_object_object_add(o, "devices", arr);
    return o;
}

static bool may_mutate(const struct xbd_ctl_peer *p, const char *cmd)
{
    if (p->uid == 0) {
        xbd_info("control: %s requested by pid %ld uid %lu gid %lu", cmd, (long)p->pid,
                 (unsigned long)p->uid, (unsigned long)p->gid);
        return true;
    }
    xbd_warn("control: %s refused to pid %ld uid %lu gid %lu (root only)", cmd,
             (long)p->pid, (unsigned long)p->uid, (unsigned long)p->gid);
    return false;
}

static json_object *cmd_reload(const struct xbd_ctl_env *env)
{
    char err[512] = "";

    if (env->ops->reload(env->opaque, err, sizeof(err)) < 0) {
        xbd_err("control: reload failed: %s", err);
        return error_obj("failed", err[0] ? err : "reload failed");
    }
    return ok_obj();
}

static json_object *cmd_shutdown(const struct xbd_ctl_env *env, json_object *req,
                                 struct xbd_ctl_reply *out)
{
    enum xbd_stop_mode mode, under_way;
    json_object *v;
    bool close = false;

    if (json_object_object_get_ex(req, "close", &v)) {
        if (!json_object_is_type(v, json_type_boolean))
            return error_obj("bad_request", "\"close\" must be true or false");
        close = json_object_get_boolean(v);
    }
    mode = close ? XBD_STOP_CLOSE : XBD_STOP_HANDOVER;
    /* The first stop decides (a close for good cannot become a handover
     * half-way, nor the other way round): the same stop again is what is
     * happening, the other one will not happen and must not be promised. */
    if (env->ops->stopping(env->opaque, &under_way)) {
        if (under_way == mode)
            return ok_obj();
        xbd_info("control: shutdown%s refused: already stopping (%s)",
                 close ? " (close)" : "", under_way == XBD_STOP_CLOSE ? "closing" : "handover");
        return error_obj("stopping", under_way == XBD_STOP_CLOSE
                                     ? "already stopping: closing"
                                     : "already stopping: handover");
    }
    out->stop = true;
    out->stop_mode = mode;
    return ok_obj();
}

/* Waits: control.c starts the settle and answers when it ends. */
static json_object *cmd_settle(json_object *req, struct xbd_ctl_reply *out)
{
    char why[96];
    int64_t ms = int_arg(req, "timeout_ms", XBD_CTL_SETTLE_MAX_MS, why, sizeof(why));

    if (ms < -1)
        return error_obj("bad_request", why);
    if (ms == 0)
        return error_obj("bad_request", "\"timeout_ms\" must be at least 1");
    out->settle = true;
    out->settle_ms = ms < 0 ? XBD_CTL_SETTLE_DEFAULT_MS : (unsigned)ms;
    return NULL;
}

char *xbd_ctl_settle_line(const struct xbd_settle_result *r, unsigned timeout_ms, size_t *len)
{
    json_object *o;
    char *line, msg[2048];

    if (r->settled) {
        o = ok_obj();
        json_object_object_add(o, "waited_ms", u64((uint64_t)(r->waited * 1000.0)));
        json_object_object_add(o, "rounds", u64(r->rounds));
    } else {
        snprintf(msg, sizeof(msg), "not settled after %u ms: %s", timeout_ms,
                 r->why ? r->why : "?");
        o = error_obj("failed", msg);
    }
    line = o ? to_line(o, len) : NULL;
    json_object_put(o);
    return line;
}

static json_object *parse(const char *line, size_t len, json_object **req)
{
    struct json_tokener *tok;
    enum json_tokener_error err;
    char why[128];

    *req = NULL;
    if (memchr(line, '\0', len))
        return error_obj("bad_json", "NUL byte in the request");
    tok = json_tokener_new_ex(XBD_CTL_JSON_DEPTH);
    if (!tok)
        return error_obj("failed", "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    /* The terminating NUL tells json-c the input ends here (a number at
     * the end would otherwise stay incomplete). */
    *req = json_tokener_parse_ex(tok, line, (int)len + 1);
    err = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (err != json_tokener_success || !*req) {
        json_object_put(*req);
        *req = NULL;
        snprintf(why, sizeof(why), "not a JSON value: %s",
                 err == json_tokener_success ? "null" : json_tokener_error_desc(err));
        return error_obj("bad_json", why);
    }
    return NULL;
}

/* The request's envelope; NULL if fine, else the error reply. */
static json_object *envelope(json_object *req, const char **cmd)
{
    json_object *v;
    char why[96];

    if (!json_object_is_type(req, json_type_object))
        return error_obj("bad_request", "a request is a JSON object");
    if (!json_object_object_get_ex(req, "version", &v))
        return error_obj("bad_request", "no \"version\" (this daemon speaks version 1)");
    if (!json_object_is_type(v, json_type_int))
        return error_obj("bad_request", "\"version\" must be an integer");
    if (json_object_get_int64(v) != XBD_CTL_PROTOCOL) {
        snprintf(why, sizeof(why), "protocol version %" PRId64 " is not supported "
                 "(this daemon speaks version %d)", json_object_get_int64(v), XBD_CTL_PROTOCOL);
        return error_obj("unsupported_version", why);
    }
    if (!json_object_object_get_ex(req, "command", &v) ||
        !json_object_is_type(v, json_type_string))
        return error_obj("bad_request", "no \"command\" string");
    *cmd = json_object_get_string(v);
    return NULL;
}

static json_object *dispatch(const struct xbd_ctl_env *env, const struct xbd_ctl_peer *peer,
                             json_object *req, const char *cmd, struct xbd_ctl_reply *out)
{
    static const char *const no_args[] = { NULL };
    static const char *const stats_args[] = { "domid", "devid", NULL };
    static const char *const shutdown_args[] = { "close", NULL };
    static const char *const settle_args[] = { "timeout_ms", NULL };
    static const struct {
        const char *name;
        const char *const *args;
        bool mutating;
    } cmds[] = {
        { "ping", no_args, false },
        { "version", no_args, false },
        { "list", no_args, false },
        { "stats", stats_args, false },
        { "reload", no_args, true },
        { "shutdown", shutdown_args, true },
        { "settle", settle_args, false },
    };
    char why[96], pbuf[40];
    size_t i;

    for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strcmp(cmd, cmds[i].name))
            break;
    if (i == sizeof(cmds) / sizeof(cmds[0])) {
        printable(cmd, pbuf, sizeof(pbuf));
        snprintf(why, sizeof(why), "unknown command '%s'", pbuf);
        return error_obj("unknown_command", why);
    }
    if (!args_ok(req, cmds[i].args, why, sizeof(why)))
        return error_obj("bad_request", why);
    if (cmds[i].mutating && !may_mutate(peer, cmd))
        return error_obj("permission_denied", "only root may reload or shut down xenblkd");
    switch (i) {
    case 0:
        return ok_obj();
    case 1:
        return cmd_version();
    case 2:
        return cmd_list(env);
    case 3:
        return cmd_stats(env, req);
    case 4:
        return cmd_reload(env);
    case 5:
        return cmd_shutdown(env, req, out);
    default:
        return cmd_settle(req, out);
    }
}

/* A stats of every device: "version", "command" and nothing else. */
static bool full_stats(json_object *req, const char *cmd)
{
    return cmd && !strcmp(cmd, "stats") && json_object_object_length(req) == 2;
}

static char *dup_line(const char *line, size_t len)
{
    char *p = malloc(len + 1);

    if (p)
        memcpy(p, line, len + 1);
    return p;
}

/* A full stats for a client that is not root, from the cache when it is
 * young enough: building one for hundreds of disks takes milliseconds of
 * the loop, copying it microseconds.  True if out holds it. */
static bool from_cache(const struct xbd_ctl_env *env, const struct xbd_ctl_peer *peer,
                       struct xbd_ctl_reply *out)
{
    struct xbd_ctl_cache *c = env->cache;

    if (!c || !c->line || peer->uid == 0 ||
        xbd_ctl_now() - c->at >= XBD_CTL_STATS_CACHE_MS / 1000.)
        return false;
    out->line = dup_line(c->line, c->len);
    if (!out->line)
        return false;
    out->len = c->len;
    c->hits++;
    return true;
}

/* A full stats just built, for whoever asks next (root's too). */
static void to_cache(const struct xbd_ctl_env *env, json_object *rep,
                     const struct xbd_ctl_reply *out)
{
    struct xbd_ctl_cache *c = env->cache;
    json_object *ok;
    char *copy;

    if (!c || !out->line || !json_object_object_get_ex(rep, "ok", &ok) ||
        !json_object_get_boolean(ok))
        return;
    copy = dup_line(out->line, out->len);
    if (!copy)
        return;
    free(c->line);
    c->line = copy;
    c->len = out->len;
    c->at = xbd_ctl_now();
}

void xbd_ctl_handle(const struct xbd_ctl_env *env, const struct xbd_ctl_peer *peer,
                    const char *line, size_t len, struct xbd_ctl_reply *out)
{
    json_object *req, *rep;
    const char *cmd = NULL;
    bool full;

    memset(out, 0, sizeof(*out));
    rep = parse(line, len, &req);
    if (!rep)
        rep = envelope(req, &cmd);
    full = !rep && full_stats(req, cmd);
    if (full && from_cache(env, peer, out)) {
        json_object_put(req);
        return;
    }
    if (!rep)
        rep = dispatch(env, peer, req, cmd, out);
    /* No reply object: a settle, answered when it ends. */
    out->line = rep ? to_line(rep, &out->len) : NULL;
    if (!out->line)
        out->stop = false;      /* no reply, no order */
    if (full)
        to_cache(env, rep, out);
    json_object_put(rep);
    json_object_put(req);
}
