/*
 * xenblkctl_prom.c - stats in the Prometheus text exposition format 0.0.4,
 * for node_exporter's textfile collector:
 *
 *   xenblkctl stats --prometheus > /var/lib/prometheus/node-exporter/xenblkd.prom.tmp &&
 *       mv /var/lib/prometheus/node-exporter/xenblkd.prom.tmp /var/lib/prometheus/node-exporter/xenblkd.prom
 *
 * Names follow Prometheus' conventions (and node_exporter's disk metrics
 * where there is a match): prefix xenblkd_, base units (bytes, seconds),
 * counters end in _total, one family per metric with all its samples
 * together.  Per-ring series carry the labels domid, devid, kind and queue;
 * per-device series domid, devid and kind; sum over queue for a disk.
 *
 * Latency histograms become Prometheus histograms in seconds: the daemon's
 * bucket i holds the requests faster than 2^i us (xenblkctl_hist.c), so the
 * cumulative count up to bucket i is exactly the "le" count for 2^i us.
 * Bounds above 2^24 us (16.8 s) are left out to keep the series count
 * down; they are still counted in "+Inf", which equals _count.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "xenblkctl.h"

#define PROM_MAX_LE_LOG2 24

/* A label value with \, " and newline escaped, as the format requires. */
static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '"')
            fputs("\\\"", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* {domid="1",devid="51712",kind="vbd3"[,queue="0"] */
static void dev_labels(FILE *f, json_object *d, json_object *ring)
{
    fprintf(f, "{domid=\"%" PRIu64 "\",devid=\"%" PRIu64 "\",kind=\"", xbc_u64(d, "domid"),
            xbc_u64(d, "devid"));
    put_escaped(f, xbc_str(d, "kind", ""));
    fputc('"', f);
    if (ring)
        fprintf(f, ",queue=\"%" PRIu64 "\"", xbc_u64(ring, "queue"));
}

static json_object *devices(json_object *reply)
{
    json_object *d = xbc_get(reply, "devices");

    return d && json_object_is_type(d, json_type_array) ? d : NULL;
}

/* ---- daemon-wide gauges ---- */

static void daemon_metrics(FILE *f, json_object *daemon)
{
    static const struct { const char *name, *key, *help; } g[] = {
        { "xenblkd_uptime_seconds", "uptime_s", "Seconds since xenblkd started." },
        { "xenblkd_devices", "devices", "Devices xenblkd knows (any state)." },
        { "xenblkd_rings", "rings", "Rings (queues) running over every device." },
        { "xenblkd_resident_memory_bytes", "rss_bytes", "Resident memory of xenblkd." },
        { "xenblkd_open_fds", "fds_open", "File descriptors xenblkd has open." },
    };
    json_object *lim = xbc_get(daemon, "fd_limit");

    family(f, "xenblkd_info", "gauge", "Version of the running xenblkd (always 1).");
    fputs("xenblkd_info{version=\"", f);
    put_escaped(f, xbc_str(daemon, "version", ""));
    fputs("\"} 1\n", f);
    for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
        json_object *v = xbc_get(daemon, g[i].key);
        if (!v)
            continue;
        family(f, g[i].name, "gauge", g[i].help);
        if (json_object_is_type(v, json_type_double))
            fprintf(f, "%s %.3f\n", g[i].name, json_object_get_double(v));
        else
            fprintf(f, "%s %" PRIu64 "\n", g[i].name, xbc_u64(daemon, g[i].key));
    }
    /* null = unlimited: no sample rather than a made-up number. */
    if (xbc_get(lim, "soft") && json_object_is_type(xbc_get(lim, "soft"), json_type_int)) {
        family(f, "xenblkd_max_fds", "gauge", "Soft limit on xenblkd's file descriptors (RLIMIT_NOFILE).");
        fprintf(f, "xenblkd_max_fds %" PRIu64 "\n", xbc_u64(lim, "soft"));
    }
}

/* ---- per device ---- */

static void device_metrics(FILE *f, json_object *devs)
{
    size_t n = json_object_array_length(devs);
    static const struct { const char *name, *key, *help; } g[] = {
        { "xenblkd_device_size_bytes", "size_bytes", "Size of the backing store (0 while not open)." },
        { "xenblkd_device_connected", "connected", "1 while the device's rings run." },
        { "xenblkd_device_queues", "queues", "Queues (rings) negotiated with the frontend." },
        { "xenblkd_device_readonly", "readonly", "1 for a read-only device." },
    };

    family(f, "xenblkd_device_info", "gauge",
           "A device xenblkd knows, with its state and backing store (always 1).");
    for (size_t i = 0; i < n; i++) {
        json_object *d = json_object_array_get_idx(devs, i), *b = xbc_get(d, "backing");
        fputs("xenblkd_device_info", f);
        dev_labels(f, d, NULL);
        fputs(",state=\"", f);
        put_escaped(f, xbc_str(d, "state", ""));
        fputs("\",backing=\"", f);
        put_escaped(f, xbc_str(b, "path", ""));
        fputs("\",backing_type=\"", f);
        put_escaped(f, xbc_str(b, "type", ""));
        fputs("\"} 1\n", f);
    }
    for (size_t k = 0; k < sizeof(g) / sizeof(g[0]); k++) {
        family(f, g[k].name, "gauge", g[k].help);
        for (size_t i = 0; i < n; i++) {
            json_object *d = json_object_array_get_idx(devs, i);
            fputs(g[k].name, f);
            dev_labels(f, d, NULL);
            fprintf(f, "} %" PRIu64 "\n", xbc_u64(d, g[k].key));
        }
    }
}

/* ---- per ring ---- */

/* Call FN for every ring of every device. */
typedef void ring_fn(FILE *f, json_object *d, json_object *ring, const void *arg);

static void each_ring(FILE *f, json_object *devs, ring_fn *fn, const void *arg)
{
    for (size_t i = 0; i < json_object_array_length(devs); i++) {
        json_object *d = json_object_array_get_idx(devs, i), *rings = xbc_get(d, "rings");
        for (size_t r = 0; rings && r < json_object_array_length(rings); r++)
            fn(f, d, json_object_array_get_idx(rings, r), arg);
    }
}

/* One series per ring, from a dotted path in the ring object. */
struct simple {
    const char *name, *type, *path, *help;
    uint64_t scale;             /* sectors -> bytes */
};

static void simple_sample(FILE *f, json_object *d, json_object *ring, const void *arg)
{
    const struct simple *s = arg;

    fputs(s->name, f);
    dev_labels(f, d, ring);
    fprintf(f, "} %" PRIu64 "\n", xbc_path_u64(ring, s->path) * s->scale);
}

/* One series per ring and label value: NAME{...,LABEL="key"} for each key
 * of the object at PATH. */
struct labelled {
    const char *name, *path, *label, *help;
    const char *const *keys;
};

static void labelled_sample(FILE *f, json_object *d, json_object *ring, const void *arg)
{
    const struct labelled *s = arg;
    json_object *o = xbc_path(ring, s->path);

    for (const char *const *k = s->keys; *k; k++) {
        fputs(s->name, f);
        dev_labels(f, d, ring);
        fprintf(f, ",%s=\"%s\"} %" PRIu64 "\n", s->label, *k, xbc_u64(o, *k));
    }
}

static const char *const ops[] = { "read", "write", "flush", "barrier", "discard", NULL };
static const char *const error_kinds[] = { "io", "protocol", "grant", "eopnotsupp", NULL };

static void hist_sample(FILE *f, json_object *d, json_object *ring, const void *arg)
{
    json_object *lat = xbc_get(ring, "latency");
    (void)arg;

    for (const char *const *op = ops; *op; op++) {
        struct xbc_hist h;
        uint64_t cum = 0;

        if (!xbc_hist_from_json(xbc_get(lat, *op), &h))
            memset(&h, 0, sizeof(h));
        for (unsigned i = 0; i + 1 < h.n && i <= PROM_MAX_LE_LOG2; i++) {
            cum += h.count[i];
            fputs("xenblkd_request_duration_seconds_bucket", f);
            dev_labels(f, d, ring);
            fprintf(f, ",op=\"%s\",le=\"%.9g\"} %" PRIu64 "\n", *op,
                    xbc_hist_upper_us(&h, i) / 1e6, cum);
        }
        fputs("xenblkd_request_duration_seconds_bucket", f);
        dev_labels(f, d, ring);
        fprintf(f, ",op=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", *op, h.total);
        fputs("xenblkd_request_duration_seconds_sum", f);
        dev_labels(f, d, ring);
        fprintf(f, ",op=\"%s\"} %.6f\n", *op, (double)h.sum_us / 1e6);
        fputs("xenblkd_request_duration_seconds_count", f);
        dev_labels(f, d, ring);
        fprintf(f, ",op=\"%s\"} %" PRIu64 "\n", *op, h.total);
    }
}

static void ring_metrics(FILE *f, json_object *devs)
{
    static const struct simple simple[] = {
        { "xenblkd_indirect_requests_total", "counter", "requests.indirect",
          "Requests that used indirect descriptors (also counted by operation).", 1 },
        { "xenblkd_read_bytes_total", "counter", "sectors.read", "Bytes read for the guest.", 512 },
        { "xenblkd_written_bytes_total", "counter", "sectors.written",
          "Bytes written for the guest (flush and barrier data included).", 512 },
        { "xenblkd_resource_stalls_total", "counter", "oo_stalls",
          "Times the ring waited for free request slots or bounce memory.", 1 },
        { "xenblkd_requests_in_flight", "gauge", "in_flight", "Requests being served now.", 1 },
        { "xenblkd_persistent_grants_mapped", "gauge", "persistent_grants.mapped",
          "Persistent grants mapped now.", 1 },
        { "xenblkd_persistent_grant_hits_total", "counter", "persistent_grants.hits",
          "Segments whose grant was already mapped.", 1 },
        { "xenblkd_persistent_grant_misses_total", "counter", "persistent_grants.misses",
          "Segments whose grant was not mapped yet.", 1 },
        { "xenblkd_persistent_grant_purges_total", "counter", "persistent_grants.purges",
          "Persistent grants unmapped by the LRU or idle purge.", 1 },
        { "xenblkd_grant_map_calls_total", "counter", "persistent_grants.map_calls",
          "Grant map calls made for data pages.", 1 },
        { "xenblkd_grant_copy_calls_total", "counter", "grant_copy.calls", "Grant copy calls.", 1 },
        { "xenblkd_grant_copy_segments_total", "counter", "grant_copy.segments",
          "Segments moved by grant copy.", 1 },
        { "xenblkd_notifications_received_total", "counter", "evtchn.received",
          "Wake-ups by the frontend's event channel notifications.", 1 },
        { "xenblkd_notifications_sent_total", "counter", "evtchn.sent",
          "Event channel notifications sent to the frontend.", 1 },
        { "xenblkd_notification_storm_delays_total", "counter", "evtchn.storm_delays",
          "Times a storm of empty notifications held the event channel masked for a moment.", 1 },
    };
    static const struct labelled requests = {
        "xenblkd_requests_total", "requests", "op", "Requests served, by operation.", ops,
    };
    static const struct labelled errors = {
        "xenblkd_errors_total", "errors", "type",
        "Requests answered with an error, by cause (eopnotsupp: operation not supported).",
        error_kinds,
    };

    family(f, requests.name, "counter", requests.help);
    each_ring(f, devs, labelled_sample, &requests);
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
        family(f, simple[i].name, simple[i].type, simple[i].help);
        each_ring(f, devs, simple_sample, &simple[i]);
    }
    family(f, errors.name, "counter", errors.help);
    each_ring(f, devs, labelled_sample, &errors);
    family(f, "xenblkd_request_duration_seconds", "histogram",
           "Time from a request leaving the ring to its response being pushed.");
    each_ring(f, devs, hist_sample, NULL);
}

int xbc_prom_write(FILE *f, json_object *reply)
{
    json_object *devs = devices(reply);

    if (!devs) {
        xbc_err("stats: xenblkd's reply has no device list");
        return XBC_EFAIL;
    }
    daemon_metrics(f, xbc_get(reply, "daemon"));
    device_metrics(f, devs);
    ring_metrics(f, devs);
    if (fflush(f) != 0 || ferror(f)) {
        xbc_err("stats: cannot write the metrics: %m");
        return XBC_EFAIL;
    }
    return XBC_OK;
}
