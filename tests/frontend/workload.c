/*
 * workload.c - I/O workloads with data verification.
 *
 * Every 512-byte sector written carries a deterministic pattern derived
 * from (sector, generation), so any read can be checked against what the
 * frontend last wrote there, and a misplaced sector names where it came
 * from.  In-flight requests never overlap, so the expected content of a
 * sector is always known (or explicitly unknown after a discard).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xen/io/xenbus.h>

#include "bf_internal.h"

#define PATTERN_MAGIC 0x58424c4bu      /* "XBLK" */
#define MAX_VERIFY_REPORTS 10

/* --- pattern ------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void bf_pattern_fill(uint8_t *buf, uint64_t sector, uint32_t gen)
{
    uint64_t w[64];
    if (gen == 0) {
        memset(buf, 0, 512);
        return;
    }
    w[0] = sector;
    w[1] = ((uint64_t)PATTERN_MAGIC << 32) | gen;
    uint64_t x = splitmix64(sector ^ ((uint64_t)gen << 40));
    for (unsigned i = 2; i < 64; i++)
        w[i] = x = splitmix64(x);
    memcpy(buf, w, 512);
}

int bf_pattern_check(const uint8_t *buf, uint64_t sector, uint32_t gen, char *why, size_t len)
{
    static const uint8_t zero[512];
    uint8_t want[512], seen[512];
    uint64_t w0, w1;
    bf_pattern_fill(want, sector, gen);
    if (!memcmp(buf, want, 512))
        return 0;
    memcpy(&w0, buf, 8);
    memcpy(&w1, buf + 8, 8);
    if (!memcmp(buf, zero, 512)) {
        snprintf(why, len, "expected generation %u, found zeros", gen);
        return -1;
    }
    bool header = (w1 >> 32) == PATTERN_MAGIC;
    if (header) {
        bf_pattern_fill(seen, w0, (uint32_t)w1);
        if (!memcmp(buf, seen, 512)) {
            snprintf(why, len, "expected generation %u, found the data of sector %" PRIu64 " generation %u",
                     gen, w0, (uint32_t)w1);
            return -1;
        }
    }
    unsigned diff = 0, first = 512;
    for (unsigned i = 0; i < 512; i++)
        if (buf[i] != want[i]) {
            diff++;
            if (first == 512)
                first = i;
        }
    char what[96];
    if (header)
        snprintf(what, sizeof(what), "a damaged pattern (header: sector %" PRIu64 " generation %u)", w0, (uint32_t)w1);
    else
        snprintf(what, sizeof(what), "unrelated bytes");
    snprintf(why, len, "expected generation %u, found %s: %u bytes differing (first at byte %u: %02x, expected %02x)",
             gen, what, diff, first, buf[first], want[first]);
    return -1;
}

/* --- generation map --------------------------------------------------------- */

/* gen+1 per sector, 0 = unknown: calloc keeps untouched parts free. */
struct bf_genmap {
    uint32_t *g;
    uint64_t n;
    uint32_t next_gen;
};

bf_genmap *bf_genmap_new(void)
{
    bf_genmap *m = calloc(1, sizeof(*m));
    if (m)
        m->next_gen = 1;
    return m;
}

void bf_genmap_free(bf_genmap *m)
{
    if (m)
        free(m->g);
    free(m);
}

static int genmap_size(bf_genmap *m, uint64_t sectors)
{
    if (m->g && m->n == sectors)
        return 0;
    free(m->g);
    m->n = sectors;
    m->g = calloc(sectors ? sectors : 1, sizeof(*m->g));
    return m->g ? 0 : -1;
}

static void genmap_set(bf_genmap *m, uint64_t s, uint32_t n, uint32_t gen_plus1)
{
    for (uint32_t i = 0; i < n; i++)
        m->g[s + i] = gen_plus1;
}

/* --- workload state --------------------------------------------------------- */

enum phase { PH_IDLE, PH_READ, PH_WRITE, PH_VERIFY_WRITE, PH_VERIFY_READ, PH_WRITE_FLUSH,
             PH_FLUSH, PH_DISCARD };

struct wl_disk;

struct wl_item {
    struct bf_io io;
    struct wl_disk *wd;
    enum phase ph;
    uint32_t gen;
    uint8_t *buf;
    uint64_t t0_us;          /* submitted (CLOCK_MONOTONIC) */
};

struct wl_disk {
    bf_disk *d;
    bf_genmap *m;
    const struct bf_wl_opts *o;
    uint64_t rng;
    uint64_t started, target;
    uint64_t span;           /* sectors */
    uint64_t fill_cursor;
    unsigned lbs;            /* logical block in 512-byte sectors */
    struct wl_item *items;
    unsigned nitems, active;
    unsigned reports;
    bool failed;
    uint64_t *lat_us;        /* completion latency of every request */
    uint64_t nlat, lat_cap;
};

static uint64_t rnd(struct wl_disk *w)
{
    /* xorshift64*: deterministic per (seed, vdev). */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 0x2545f4914f6cdd1dull;
}

static const char *const wl_names[] = {
    [BF_WL_NONE] = "none", [BF_WL_VERIFY] = "verify", [BF_WL_READ] = "read",
    [BF_WL_WRITE] = "write", [BF_WL_FLUSH] = "flush", [BF_WL_DISCARD] = "discard",
    [BF_WL_MIXED] = "mixed", [BF_WL_FILL] = "fill",
};

const char *bf_wl_name(enum bf_wl_kind k)
{
    return (unsigned)k < sizeof(wl_names) / sizeof(wl_names[0]) ? wl_names[k] : "?";
}

int bf_wl_parse(const char *s, enum bf_wl_kind *k)
{
    for (unsigned i = 0; i < sizeof(wl_names) / sizeof(wl_names[0]); i++)
        if (!strcmp(s, wl_names[i])) {
            *k = (enum bf_wl_kind)i;
            return 0;
        }
    return -1;
}

static bool overlaps(const struct wl_disk *w, uint64_t s, uint32_t n)
{
    for (unsigned i = 0; i < w->nitems; i++) {
        const struct wl_item *it = &w->items[i];
        if (it->ph == PH_IDLE || it->io.nsect == 0)
            continue;
        if (s < it->io.sector + it->io.nsect && it->io.sector < s + n)
            return true;
    }
    return false;
}

/* Pick a random range no in-flight request touches; false if none found. */
static bool pick_range(struct wl_disk *w, struct bf_io *io, unsigned align)
{
    uint32_t lbs = w->lbs > align ? w->lbs : align;
    for (int attempt = 0; attempt < 8; attempt++) {
        unsigned first = 0;
        if (w->lbs < 8 && align <= w->lbs && (rnd(w) & 1))
            first = (unsigned)(rnd(w) % (8 / w->lbs)) * w->lbs;
        uint64_t maxn = w->o->bs / 512;
        uint32_t cap = bf_disk_max_sectors(w->d, first);
        if (maxn > cap)
            maxn = cap;
        if (maxn > w->span)
            maxn = w->span;
        maxn -= maxn % lbs;
        if (maxn == 0)
            return false;
        uint32_t n = (uint32_t)(lbs * (1 + rnd(w) % (maxn / lbs)));
        uint64_t slots = (w->span - n) / lbs + 1;
        uint64_t s = lbs * (rnd(w) % slots);
        if (overlaps(w, s, n))
            continue;
        io->sector = s;
        io->nsect = n;
        io->first_sect = first;
        return true;
    }
    return false;
}

static void item_error(struct wl_item *it, const char *what)
{
    struct wl_disk *w = it->wd;
    w->failed = true;
    bf_disk_error(w->d, "%s request (sector %" PRIu64 ", %u sectors) %s", bf_op_name(it->io.op),
                  it->io.sector, it->io.nsect, what);
}

static void verify_read(struct wl_item *it)
{
    struct wl_disk *w = it->wd;
    char why[200];
    for (uint32_t i = 0; i < it->io.nsect; i++) {
        uint64_t s = it->io.sector + i;
        uint32_t g = w->m->g[s];
        if (g == 0)
            continue;
        if (bf_pattern_check(it->buf + (size_t)i * 512, s, g - 1, why, sizeof(why)) == 0)
            continue;
        bf_disk_stats(w->d)->verify_errors++;
        w->failed = true;
        if (w->reports++ < MAX_VERIFY_REPORTS)
            bf_disk_error(w->d, "verify: sector %" PRIu64 " (read of %u sectors at %" PRIu64 "): %s",
                          s, it->io.nsect, it->io.sector, why);
        else
            bf_disk_stats(w->d)->errors++;
    }
}

static void fill_buf(struct wl_item *it)
{
    for (uint32_t i = 0; i < it->io.nsect; i++)
        bf_pattern_fill(it->buf + (size_t)i * 512, it->io.sector + i, it->gen);
}

static void item_done(struct bf_io *io);

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* One request's latency, for the percentiles the workload reports. */
static void note_latency(struct wl_disk *w, uint64_t us)
{
    if (w->nlat == w->lat_cap) {
        uint64_t cap = w->lat_cap ? w->lat_cap * 2 : 1024;
        uint64_t *p = realloc(w->lat_us, cap * sizeof(*p));
        if (!p)
            return;
        w->lat_us = p;
        w->lat_cap = cap;
    }
    w->lat_us[w->nlat++] = us;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Percentiles of the requests' latencies into the disk's statistics. */
static void latency_summary(struct wl_disk *w)
{
    struct bf_stats *st = bf_disk_stats(w->d);

    if (!w->nlat)
        return;
    qsort(w->lat_us, w->nlat, sizeof(*w->lat_us), cmp_u64);
    st->lat_n = w->nlat;
    st->lat_p50_us = w->lat_us[(w->nlat - 1) * 50 / 100];
    st->lat_p99_us = w->lat_us[(w->nlat - 1) * 99 / 100];
    st->lat_max_us = w->lat_us[w->nlat - 1];
    bf_disk_log(w->d, 1, "latency: n=%" PRIu64 " p50=%" PRIu64 "us p99=%" PRIu64 "us max=%" PRIu64 "us",
                st->lat_n, st->lat_p50_us, st->lat_p99_us, st->lat_max_us);
}

static int item_submit(struct wl_item *it, uint8_t op)
{
    it->t0_us = now_us();
    it->io.op = op;
    it->io.done = item_done;
    it->io.ctx = it;
    if (bf_submit(it->wd->d, &it->io) < 0) {
        item_error(it, errno == EAGAIN ? "could not be queued: no free slot" : "was refused");
        it->ph = PH_IDLE;
        it->wd->active--;
        return -1;
    }
    return 0;
}

static void item_done(struct bf_io *io)
{
    struct wl_item *it = io->ctx;
    struct wl_disk *w = it->wd;
    note_latency(w, now_us() - it->t0_us);
    if (io->status != BLKIF_RSP_OKAY) {
        char what[64];
        snprintf(what, sizeof(what), "failed with status %d", io->status);
        item_error(it, what);
        if (io->op == BLKIF_OP_WRITE || io->op == BLKIF_OP_DISCARD)
            genmap_set(w->m, io->sector, io->nsect, 0);
        it->ph = PH_IDLE;
        w->active--;
        return;
    }
    switch (it->ph) {
    case PH_READ:
    case PH_VERIFY_READ:
        verify_read(it);
        break;
    case PH_WRITE:
    case PH_VERIFY_WRITE:
    case PH_WRITE_FLUSH:
        genmap_set(w->m, io->sector, io->nsect, it->gen + 1);
        if (it->ph == PH_VERIFY_WRITE) {
            it->ph = PH_VERIFY_READ;
            memset(it->buf, 0xa5, (size_t)io->nsect * 512);
            item_submit(it, BLKIF_OP_READ);
            return;
        }
        if (it->ph == PH_WRITE_FLUSH) {
            /* The write is acknowledged: make it durable. */
            it->ph = PH_FLUSH;
            io->nsect = 0;
            io->sector = 0;
            item_submit(it, w->d->feat.flush ? BLKIF_OP_FLUSH_DISKCACHE : BLKIF_OP_WRITE_BARRIER);
            return;
        }
        break;
    case PH_DISCARD:
        /* Content after discard is backend-defined: stop checking it. */
        genmap_set(w->m, io->sector, io->nsect, 0);
        break;
    case PH_FLUSH:
    case PH_IDLE:
        break;
    }
    it->ph = PH_IDLE;
    w->active--;
}

static enum phase choose_mixed(struct wl_disk *w)
{
    unsigned r = (unsigned)(rnd(w) % 100);
    bool ro = w->d->neg.info & VDISK_READONLY;
    if (r < 45 || ro)
        return PH_READ;
    if (r < 85)
        return PH_WRITE;
    if (r < 93)
        return (w->d->feat.flush || w->d->feat.barrier) ? PH_FLUSH : PH_WRITE;
    return w->d->feat.discard ? PH_DISCARD : PH_WRITE;
}

static enum phase phase_for(struct wl_disk *w)
{
    switch (w->o->kind) {
    case BF_WL_VERIFY: return PH_VERIFY_WRITE;
    case BF_WL_READ: return PH_READ;
    case BF_WL_WRITE: case BF_WL_FILL: return PH_WRITE;
    case BF_WL_FLUSH: return PH_WRITE_FLUSH;
    case BF_WL_DISCARD: return PH_DISCARD;
    case BF_WL_MIXED: return choose_mixed(w);
    case BF_WL_NONE: break;
    }
    return PH_IDLE;
}

static bool fill_range(struct wl_disk *w, struct bf_io *io)
{
    uint64_t maxn = w->o->bs / 512;
    uint32_t cap = bf_disk_max_sectors(w->d, 0);
    if (maxn > cap)
        maxn = cap;
    maxn -= maxn % w->lbs;
    if (w->fill_cursor >= w->span || maxn == 0)
        return false;
    io->sector = w->fill_cursor;
    io->nsect = (uint32_t)(w->span - w->fill_cursor < maxn ? w->span - w->fill_cursor : maxn);
    io->first_sect = 0;
    w->fill_cursor += io->nsect;
    return true;
}

/* Start one new item; false when nothing more can start now. */
static bool start_one(struct wl_disk *w)
{
    struct wl_item *it = NULL;
    if (w->failed || w->started >= w->target || w->active >= w->nitems)
        return false;
    for (unsigned i = 0; i < w->nitems && !it; i++)
        if (w->items[i].ph == PH_IDLE)
            it = &w->items[i];
    if (!it)
        return false;
    enum phase ph = phase_for(w);
    memset(&it->io, 0, sizeof(it->io));
    it->io.buf = it->buf;
    if (ph == PH_FLUSH) {
        it->io.nsect = 0;
    } else if (w->o->kind == BF_WL_FILL) {
        if (!fill_range(w, &it->io)) {
            w->target = w->started;
            return false;
        }
    } else {
        unsigned align = 1;
        if (ph == PH_DISCARD && w->d->feat.discard_granularity > 512)
            align = w->d->feat.discard_granularity / 512;
        if (!pick_range(w, &it->io, align))
            return false;
    }
    it->ph = ph;
    it->wd = w;
    w->started++;
    w->active++;
    switch (ph) {
    case PH_READ:
        memset(it->buf, 0xa5, (size_t)it->io.nsect * 512);
        return item_submit(it, BLKIF_OP_READ) == 0;
    case PH_WRITE:
    case PH_VERIFY_WRITE:
    case PH_WRITE_FLUSH:
        it->gen = w->o->kind == BF_WL_FILL ? w->o->gen : w->m->next_gen++;
        /* While the write is in flight its old content is unknown. */
        genmap_set(w->m, it->io.sector, it->io.nsect, 0);
        fill_buf(it);
        return item_submit(it, BLKIF_OP_WRITE) == 0;
    case PH_FLUSH:
        return item_submit(it, w->d->feat.flush ? BLKIF_OP_FLUSH_DISKCACHE : BLKIF_OP_WRITE_BARRIER) == 0;
    case PH_DISCARD:
        genmap_set(w->m, it->io.sector, it->io.nsect, 0);
        it->io.secure = false;
        return item_submit(it, BLKIF_OP_DISCARD) == 0;
    case PH_IDLE:
    case PH_VERIFY_READ:
        break;
    }
    return false;
}

/* Refuse what the disk cannot do, before sending anything. */
static int check_capable(struct wl_disk *w)
{
    bf_disk *d = w->d;
    enum bf_wl_kind k = w->o->kind;
    bool writes = k == BF_WL_VERIFY || k == BF_WL_WRITE || k == BF_WL_FLUSH || k == BF_WL_FILL || k == BF_WL_DISCARD;
    if (writes && (d->neg.info & VDISK_READONLY)) {
        bf_disk_error(d, "workload %s needs a writable disk, backend says read-only (info 0x%x)",
                      bf_wl_name(k), d->neg.info);
        return -1;
    }
    if (k == BF_WL_FLUSH && !d->feat.flush && !d->feat.barrier) {
        bf_disk_error(d, "workload flush: backend offers neither feature-flush-cache nor feature-barrier");
        return -1;
    }
    if (k == BF_WL_DISCARD && !d->feat.discard) {
        bf_disk_error(d, "workload discard: backend does not offer feature-discard");
        return -1;
    }
    if (w->o->bs / 512 < w->lbs) {
        bf_disk_error(d, "workload %s: --bs %u is smaller than the sector size %u", bf_wl_name(k),
                      w->o->bs, d->neg.sector_size);
        return -1;
    }
    if (w->span < w->lbs) {
        bf_disk_error(d, "workload %s: disk has no room (%" PRIu64 " sectors)", bf_wl_name(k), w->span);
        return -1;
    }
    return 0;
}

static int wl_init(struct wl_disk *w, bf_disk *d, bf_genmap *m, const struct bf_wl_opts *o)
{
    memset(w, 0, sizeof(*w));
    w->d = d;
    w->m = m;
    w->o = o;
    w->rng = splitmix64(o->seed ^ ((uint64_t)d->vdev << 32)) | 1;
    w->lbs = d->neg.sector_size / 512;
    w->span = d->neg.sectors;
    if (o->span && o->span / 512 < w->span)
        w->span = o->span / 512;
    w->span -= w->span % w->lbs;
    w->target = o->kind == BF_WL_FILL ? UINT64_MAX : o->count;
    if (genmap_size(m, d->neg.sectors) < 0)
        return -1;
    if (o->have_expect_gen)
        genmap_set(m, 0, (uint32_t)w->span, o->expect_gen + 1);
    if (o->kind == BF_WL_FILL && o->gen >= m->next_gen)
        m->next_gen = o->gen + 1;
    if (check_capable(w) < 0)
        return -1;
    w->nitems = d->cfg.qd ? d->cfg.qd : 1;
    /* The rings hold at most this many requests: a deeper --qd would
     * only fail to queue (blkfront likewise caps at its ring size). */
    unsigned slots = 0;
    for (unsigned i = 0; i < d->nq; i++)
        slots += d->q[i].nslots;
    if (slots && w->nitems > slots)
        w->nitems = slots;
    w->items = calloc(w->nitems, sizeof(*w->items));
    if (!w->items)
        return -1;
    for (unsigned i = 0; i < w->nitems; i++) {
        w->items[i].buf = malloc((size_t)(o->bs > 4096 ? o->bs : 4096) + 4096);
        if (!w->items[i].buf)
            return -1;
    }
    return 0;
}

static void wl_fini(struct wl_disk *w)
{
    latency_summary(w);
    free(w->lat_us);
    for (unsigned i = 0; w->items && i < w->nitems; i++)
        free(w->items[i].buf);
    free(w->items);
}

static void report_stall(struct wl_disk *w, unsigned timeout_ms)
{
    bf_disk *d = w->d;
    bf_disk_error(d, "no response for %.1fs with %u request(s) in flight", timeout_ms / 1000.0, bf_inflight(d));
    for (unsigned i = 0; i < d->nq; i++) {
        struct bf_queue *q = &d->q[i];
        const struct blkif_sring *s = q->sring;  /* header is ABI-neutral */
        bf_disk_error(d, "  queue %u (port %u): req_prod %u req_event %u rsp_prod %u rsp_event %u, "
                      "%u of %u slots free%s", i, q->port, s->req_prod, s->req_event, s->rsp_prod,
                      s->rsp_event, q->nfree, q->nslots, q->dead ? ", stopped after a protocol error" : "");
        bf_disk_error(d, "  queue %u: %" PRIu64 " kick(s) sent; last push %u -> %u saw req_event %u and %s",
                      i, q->kicks, q->last_push_old, q->last_push_new, q->last_push_req_event,
                      q->last_push_notified ? "notified the backend" : "did not need to notify");
    }
}

/* After a quiet poll: a backend that is Closed (or whose directory is
 * gone) has drained and will not answer what is still in flight, so fail
 * now and say so rather than wait for the stall timeout.  Closing is not
 * enough: a backend answers its in-flight requests before it is Closed. */
static bool backend_gone(struct wl_disk *w, unsigned n)
{
    bool gone = false;
    for (unsigned i = 0; i < n; i++) {
        bf_disk *d = w[i].d;
        if (w[i].active == 0)
            continue;
        int st = bf_xs_read_state(d->h, d->be_path);
        if (st == -1 || st == XenbusStateClosed) {
            bf_disk_error(d, "backend %s with %u request(s) in flight",
                          st == -1 ? "gone" : "Closed", bf_inflight(d));
            w[i].failed = true;
            gone = true;
        }
    }
    return gone;
}

int bf_workload_run(bf_host *h, bf_disk **disks, bf_genmap **maps, unsigned n, const struct bf_wl_opts *o)
{
    struct wl_disk *w = calloc(n ? n : 1, sizeof(*w));
    int rc = 0;
    if (!w)
        return -1;
    if (o->kind == BF_WL_NONE) {
        free(w);
        return 0;
    }
    for (unsigned i = 0; i < n; i++)
        if (wl_init(&w[i], disks[i], maps[i], o) < 0)
            w[i].failed = true, rc = -1;
    unsigned timeout = disks[0]->cfg.timeout_ms;
    uint64_t last = bf_now_ms();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool stopping = false;
    for (;;) {
        bool busy = false;
        /* Asked to stop: what is started completes (a verify pair with
         * its read), nothing new starts.  A test ends an open-ended
         * workload this way when its own events are done, not a count
         * that has to outlast them. */
        if (o->stop_file && !stopping && access(o->stop_file, F_OK) == 0) {
            stopping = true;
            for (unsigned i = 0; i < n; i++) {
                if (w[i].target > w[i].started)
                    w[i].target = w[i].started;
                bf_disk_log(disks[i], 0, "workload %s: stopping after %" PRIu64 " requests (%s exists)",
                            bf_wl_name(o->kind), w[i].started, o->stop_file);
            }
        }
        for (unsigned i = 0; i < n; i++) {
            while (start_one(&w[i]))
                ;
            if (w[i].active > 0)
                busy = true;
            else if (!w[i].failed && w[i].started < w[i].target)
                busy = true;   /* ranges overlapped: retry after completions */
        }
        if (!busy || bf_interrupted)
            break;
        int c = bf_host_poll(h, 500);
        if (c < 0) {
            rc = -1;
            break;
        }
        if (c > 0) {
            last = bf_now_ms();
        } else if (backend_gone(w, n)) {
            rc = -1;
            break;
        } else if (bf_now_ms() - last > timeout) {
            for (unsigned i = 0; i < n; i++)
                if (w[i].active > 0)
                    report_stall(&w[i], timeout);
            rc = -1;
            break;
        }
        bool all_dead = true;
        for (unsigned i = 0; i < n; i++)
            for (unsigned j = 0; j < disks[i]->nq; j++)
                if (!disks[i]->q[j].dead)
                    all_dead = false;
        if (all_dead) {
            rc = -1;
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    uint64_t us = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000u + (uint64_t)(t1.tv_nsec / 1000) - (uint64_t)(t0.tv_nsec / 1000);
    for (unsigned i = 0; i < n; i++) {
        struct bf_stats *st = bf_disk_stats(disks[i]);
        st->workload_us += us;
        bf_disk_log(disks[i], 1, "workload %s: %" PRIu64 " requests in %.3f s (%.0f IOPS, %.1f MiB/s)",
                    bf_wl_name(o->kind), w[i].started, us / 1e6, us ? w[i].started * 1e6 / us : 0.0,
                    us ? (double)(st->bytes_read + st->bytes_written) / us * 1e6 / 1048576.0 : 0.0);
        if (w[i].failed)
            rc = -1;
        wl_fini(&w[i]);
    }
    if (bf_interrupted)
        rc = -1;
    free(w);
    return rc;
}
