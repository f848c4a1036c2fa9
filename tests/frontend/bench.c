/*
 * bench.c - the load generator of `make bench` (tests/bench/).
 *
 * Unlike the workloads of workload.c, nothing here verifies data: requests
 * of one fixed size go out back to back, random or sequential, for a fixed
 * time, and by default no byte of data is touched (io->buf == NULL: the
 * granted pages are neither filled before a write nor copied out after a
 * read), so the frontend's own cost per request stays small and is
 * reported (CPU time per request) next to the backend's.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bf_internal.h"

static const char *const bench_names[] = {
    [BF_BENCH_RANDREAD] = "randread", [BF_BENCH_RANDWRITE] = "randwrite",
    [BF_BENCH_READ] = "read", [BF_BENCH_WRITE] = "write",
};

int bf_bench_parse(const char *s, enum bf_bench_kind *k)
{
    for (unsigned i = 0; i < sizeof(bench_names) / sizeof(bench_names[0]); i++)
        if (!strcmp(s, bench_names[i])) {
            *k = (enum bf_bench_kind)i;
            return 0;
        }
    return -1;
}

struct bench_item {
    struct bf_io io;
    struct bench_disk *bd;
    uint64_t t0;
    uint8_t *buf;            /* only with touch */
};

struct bench_disk {
    bf_disk *d;
    const struct bf_bench_opts *o;
    struct bench_item *items;
    unsigned nitems, active;
    uint64_t rng, cursor, span, nsect;
    uint64_t done, bytes;
    uint32_t *lat;           /* ns, one per completed request (capped) */
    size_t nlat, caplat;
    bool failed;
};

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t rnd(struct bench_disk *b)
{
    b->rng ^= b->rng >> 12;
    b->rng ^= b->rng << 25;
    b->rng ^= b->rng >> 27;
    return b->rng * 0x2545f4914f6cdd1dull;
}

static bool is_write(enum bf_bench_kind k)
{
    return k == BF_BENCH_RANDWRITE || k == BF_BENCH_WRITE;
}

static void next_range(struct bench_disk *b, struct bf_io *io)
{
    uint64_t slots = b->span / b->nsect;
    if (b->o->kind == BF_BENCH_RANDREAD || b->o->kind == BF_BENCH_RANDWRITE) {
        io->sector = (rnd(b) % slots) * b->nsect;
    } else {
        if (b->cursor + b->nsect > b->span)
            b->cursor = 0;
        io->sector = b->cursor;
        b->cursor += b->nsect;
    }
    io->nsect = (uint32_t)b->nsect;
    io->first_sect = 0;
}

static void record(struct bench_disk *b, uint64_t ns)
{
    if (b->nlat == b->caplat) {
        size_t cap = b->caplat ? b->caplat * 2 : 65536;
        uint32_t *p = cap <= (64u << 20) ? realloc(b->lat, cap * sizeof(*p)) : NULL;
        if (!p)
            return;          /* percentiles from what fitted */
        b->lat = p;
        b->caplat = cap;
    }
    b->lat[b->nlat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static bool running;         /* false once the time is up: drain only */
static uint64_t started, start_limit;  /* requests issued; --bench-count (0: none) */

/* Another request, unless the time is up or --bench-count were issued. */
static bool may_start(void)
{
    return running && (!start_limit || started < start_limit);
}

static int item_start(struct bench_item *it);

static void item_done(struct bf_io *io)
{
    struct bench_item *it = io->ctx;
    struct bench_disk *b = it->bd;
    b->active--;
    if (io->status != BLKIF_RSP_OKAY) {
        b->failed = true;
        bf_disk_error(b->d, "bench: %s of %u sectors at %" PRIu64 " failed with status %d",
                      bf_op_name(io->op), io->nsect, io->sector, io->status);
        return;
    }
    record(b, now_ns() - it->t0);
    b->done++;
    b->bytes += (uint64_t)io->nsect * 512u;
    if (may_start())
        item_start(it);
}

static int item_start(struct bench_item *it)
{
    struct bench_disk *b = it->bd;
    memset(&it->io, 0, sizeof(it->io));
    next_range(b, &it->io);
    it->io.op = is_write(b->o->kind) ? BLKIF_OP_WRITE : BLKIF_OP_READ;
    it->io.buf = it->buf;
    it->io.done = item_done;
    it->io.ctx = it;
    it->t0 = now_ns();
    started++;
    if (bf_submit(b->d, &it->io) < 0) {
        b->failed = true;
        bf_disk_error(b->d, "bench: request could not be queued: %s", strerror(errno));
        return -1;
    }
    b->active++;
    return 0;
}

static int bench_init(struct bench_disk *b, bf_disk *d, const struct bf_bench_opts *o)
{
    memset(b, 0, sizeof(*b));
    b->d = d;
    b->o = o;
    b->rng = (o->seed ^ ((uint64_t)d->vdev << 32)) | 1;
    b->nsect = o->bs / 512;
    b->span = d->neg.sectors;
    if (o->span && o->span / 512 < b->span)
        b->span = o->span / 512;
    if (is_write(o->kind) && (d->neg.info & VDISK_READONLY)) {
        bf_disk_error(d, "bench %s needs a writable disk", bench_names[o->kind]);
        return -1;
    }
    /* Without indirect descriptors a guest splits a larger I/O into
     * requests of at most 11 pages: so do we (the result says "bs"). */
    if (b->nsect > bf_disk_max_sectors(d, 0))
        b->nsect = bf_disk_max_sectors(d, 0);
    if (b->nsect == 0 || b->span < b->nsect) {
        bf_disk_error(d, "bench: --bs %u does not fit this disk (max %u sectors per request, %" PRIu64
                      " sectors)", o->bs, bf_disk_max_sectors(d, 0), b->span);
        return -1;
    }
    unsigned slots = 0;
    for (unsigned i = 0; i < d->nq; i++)
        slots += d->q[i].nslots;
    b->nitems = d->cfg.qd < slots ? d->cfg.qd : slots;
    b->items = calloc(b->nitems, sizeof(*b->items));
    if (!b->items)
        return -1;
    for (unsigned i = 0; i < b->nitems; i++) {
        b->items[i].bd = b;
        if (o->touch && !(b->items[i].buf = calloc(1, o->bs)))
            return -1;
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Asked to end (--stop-when): a script ends an open-ended bench once
 * its own events are done, so they all fall inside the timed phase.
 * Looked at once a millisecond at most, so that the frontend's own CPU
 * per request (reported) stays the bench's. */
static bool stop_asked(const char *path, uint64_t now, uint64_t *next)
{
    if (!path || now < *next)
        return false;
    *next = now + 1000000u;
    return access(path, F_OK) == 0;
}

/* Wait (bounded) for the start file: several guest processes then start
 * their timed phase together. */
static int wait_start(const char *path, unsigned timeout_ms)
{
    struct stat st;
    uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (stat(path, &st) < 0) {
        if (now_ns() > end || bf_interrupted) {
            fprintf(stderr, "xsim-blkfront: bench: %s did not appear\n", path);
            return -1;
        }
        usleep(1000);
    }
    return 0;
}

static void write_result(FILE *f, struct bench_disk *b, unsigned n, const struct bf_bench_opts *o,
                         double secs, double cpu)
{
    uint64_t done = 0, bytes = 0;
    size_t nlat = 0;
    for (unsigned i = 0; i < n; i++) {
        done += b[i].done;
        bytes += b[i].bytes;
        nlat += b[i].nlat;
    }
    uint32_t *all = malloc((nlat ? nlat : 1) * sizeof(*all));
    size_t k = 0;
    for (unsigned i = 0; all && i < n; i++) {
        memcpy(all + k, b[i].lat, b[i].nlat * sizeof(*all));
        k += b[i].nlat;
    }
    double p50 = 0, p99 = 0, pmax = 0;
    if (all && k) {
        qsort(all, k, sizeof(*all), cmp_u32);
        p50 = all[(k - 1) / 2] / 1000.0;
        p99 = all[(size_t)((k - 1) * 0.99)] / 1000.0;
        pmax = all[k - 1] / 1000.0;
    }
    free(all);
    fprintf(f, "{\"bench\": \"%s\", \"bs\": %u, \"qd\": %u, \"disks\": %u, \"touch\": %s, "
               "\"seconds\": %.6f, \"requests\": %" PRIu64 ", \"bytes\": %" PRIu64 ", "
               "\"iops\": %.1f, \"mib_s\": %.2f, \"lat_p50_us\": %.1f, \"lat_p99_us\": %.1f, "
               "\"lat_max_us\": %.1f, "
               "\"frontend_cpu_s\": %.6f, \"frontend_cpu_us_per_req\": %.3f}\n",
            bench_names[o->kind], (unsigned)(b[0].nsect * 512u), b[0].nitems, n, o->touch ? "true" : "false", secs, done, bytes,
            secs > 0 ? done / secs : 0.0, secs > 0 ? bytes / secs / 1048576.0 : 0.0, p50, p99, pmax, cpu,
            done ? cpu * 1e6 / done : 0.0);
}

int bf_bench_run(bf_host *h, bf_disk **disks, unsigned n, const struct bf_bench_opts *o)
{
    struct bench_disk *b = calloc(n ? n : 1, sizeof(*b));
    int rc = 0;
    if (!b)
        return -1;
    for (unsigned i = 0; i < n; i++)
        if (bench_init(&b[i], disks[i], o) < 0)
            rc = -1;
    if (rc == 0 && o->start_file && wait_start(o->start_file, disks[0]->cfg.timeout_ms) < 0)
        rc = -1;
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)(o->seconds * 1e9), last = t0, look = t0;
    double c0 = cpu_s();
    running = rc == 0;
    started = 0;
    start_limit = o->count;
    for (unsigned i = 0; running && i < n; i++)
        for (unsigned j = 0; j < b[i].nitems && may_start(); j++)
            if (item_start(&b[i].items[j]) < 0)
                running = false, rc = -1;
    for (;;) {
        unsigned active = 0;
        for (unsigned i = 0; i < n; i++) {
            active += b[i].active;
            if (b[i].failed)
                running = false, rc = -1;
        }
        if (running) {
            uint64_t now = now_ns();

            if (now >= end || bf_interrupted || stop_asked(o->stop_file, now, &look)) {
                running = false;
                if (o->stop_file && now < end && !bf_interrupted)
                    fprintf(stderr, "xsim-blkfront: bench: stopping after %" PRIu64
                            " requests (%s exists)\n", started, o->stop_file);
            }
        }
        if (!active)
            break;
        int c = bf_host_poll(h, 500);
        if (c < 0) {
            rc = -1;
            break;
        }
        if (c > 0) {
            last = now_ns();
        } else if (now_ns() - last > (uint64_t)disks[0]->cfg.timeout_ms * 1000000u) {
            bf_disk_error(disks[0], "bench: no response for %u ms with %u request(s) in flight",
                          disks[0]->cfg.timeout_ms, active);
            rc = -1;
            break;
        }
    }
    double secs = (now_ns() - t0) / 1e9, cpu = cpu_s() - c0;
    for (unsigned i = 0; i < n; i++)
        bf_disk_stats(disks[i])->workload_us += (uint64_t)(secs * 1e6);
    FILE *f = o->json ? fopen(o->json, "w") : stdout;
    if (!f) {
        fprintf(stderr, "xsim-blkfront: cannot write %s: %s\n", o->json, strerror(errno));
        rc = -1;
    } else {
        write_result(f, b, n, o, secs, cpu);
        if (f != stdout && fclose(f) != 0)
            rc = -1;
    }
    for (unsigned i = 0; i < n; i++) {
        for (unsigned j = 0; b[i].items && j < b[i].nitems; j++)
            free(b[i].items[j].buf);
        free(b[i].items);
        free(b[i].lat);
    }
    free(b);
    return rc;
}
