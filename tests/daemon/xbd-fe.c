/*
 * xbd-fe - scenarios of the reference frontend library (tests/frontend)
 * that the xsim-blkfront command line cannot express, for the issue-3
 * tests.  One simulated guest domain per process; exit 0 only if every
 * check passed.
 *
 *   xbd-fe steady --domid D --vdev V [--no-persistent] [--no-indirect]
 *                 [--bs BYTES] [--qd N] [--span BYTES]
 *       Connect, write the span (generation 1) and read it back, note the
 *       simulation's grant counters, do it all again on the same pages
 *       (generation 2), note them again.  With persistent grants the
 *       second pass must not map anything nor copy data (only indirect
 *       pages, which the daemon always copies); without, it must not map
 *       anything either (only the ring pages are ever mapped) and must
 *       copy every data page.  Prints both snapshots.
 *   xbd-fe readcheck --domid D --vdev V --gens G[,G...]|any [--span BYTES]
 *       Connect and read the span through the backend: every sector must
 *       hold one of the generations of the frontend's pattern, or with
 *       "any" zeros or its own pattern at any generation (xbd-gens.h).
 *       For data whose exact generation is not known, e.g. after a
 *       disconnect with writes in flight.
 *   xbd-fe barrier --domid D --vdev V --gen G [--span BYTES]
 *       Write the span with BLKIF_OP_WRITE_BARRIER requests carrying data
 *       (up to 11 segments each), then FLUSH_DISKCACHE, then read it back
 *       with BLKIF_OP_READ and check generation G.
 *   xbd-fe held-write --domid D --vdev V --gen G --sector S --ready FILE
 *       Issue 9's trigger: a 4 KiB WRITE at sector S (generation G), then
 *       a malformed request (a READ past the end of the disk), whose ERROR
 *       must come back while the write is still in flight (the test holds
 *       it in its storage); then FILE is created and the write is awaited
 *       (--timeout) across whatever happens to the backend meanwhile: it
 *       must be answered OKAY exactly once, the malformed request never
 *       again (a second answer is a protocol error), and S must read back.
 *       With --go FILE, those two waits end when FILE exists instead of
 *       after --timeout (300 s at most): the guest then gives up (fails)
 *       and closes.  A test that needs the old guest to leave at a moment
 *       of its choosing says when, instead of racing --timeout.
 *
 *   xbd-fe pause --domid D --vdev V --gen G --ready FILE --go FILE
 *       Write the span at generation G and read it back, create FILE
 *       (--ready), wait (--timeout) until the test creates --go's FILE
 *       meanwhile doing whatever it wants to the connection (e.g. flap
 *       the frontend's state), then write generation G+1 over the same
 *       connection, without reconnecting, and read it back.
 *
 * Every scenario prints the requests it sent by operation ("requests:
 * read=N write=N barrier=N flush=N discard=N indirect=N okay=N") and ends
 * with an orderly close that ends every grant.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blkfront.h"
#include "xbd-gens.h"

struct opts {
    const char *cmd;
    unsigned domid, vdev;
    struct bf_config cfg;
    uint64_t span;
    struct xbd_gens gens;
    uint64_t sector;
    const char *ready;
    const char *go;
};

static void usage(void)
{
    fprintf(stderr,
            "usage: xbd-fe steady|readcheck|barrier|held-write|pause --domid D --vdev V [--no-persistent]\n"
            "              [--no-indirect] [--protocol P] [--bs BYTES] [--qd N] [--span BYTES]\n"
            "              [--gens G[,G...]|any] [--gen G] [--timeout S] [--sector S]\n"
            "              [--ready FILE] [--go FILE]\n");
    exit(2);
}

/* A number, with an optional k or M (binary) suffix. */
static unsigned long long num(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        usage();
    if (*end == 'k' || *end == 'K')
        v <<= 10, end++;
    else if (*end == 'M')
        v <<= 20, end++;
    if (*end)
        usage();
    return v;
}

static enum bf_proto parse_proto(const char *s)
{
    if (!strcmp(s, "native"))
        return BF_PROTO_NATIVE;
    if (!strcmp(s, "x86_32-abi"))
        return BF_PROTO_X86_32;
    if (!strcmp(s, "x86_64-abi"))
        return BF_PROTO_X86_64;
    if (!strcmp(s, "none"))
        return BF_PROTO_NONE;
    usage();
    return BF_PROTO_NONE;
}

static void parse_args(struct opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    bf_config_default(&o->cfg);
    o->cfg.qd = 8;
    o->cfg.bs_max = 64 * 1024;
    o->span = 4u << 20;
    if (argc < 2)
        usage();
    o->cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-persistent")) {
            o->cfg.persistent = false;
            continue;
        }
        if (!strcmp(a, "--no-indirect")) {
            o->cfg.indirect = false;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--domid"))
            o->domid = (unsigned)num(v);
        else if (!strcmp(a, "--vdev"))
            o->vdev = (unsigned)num(v);
        else if (!strcmp(a, "--protocol"))
            o->cfg.proto = parse_proto(v);
        else if (!strcmp(a, "--bs"))
            o->cfg.bs_max = (unsigned)num(v);
        else if (!strcmp(a, "--qd"))
            o->cfg.qd = (unsigned)num(v);
        else if (!strcmp(a, "--span"))
            o->span = num(v);
        else if (!strcmp(a, "--sector"))
            o->sector = num(v);
        else if (!strcmp(a, "--ready"))
            o->ready = v;
        else if (!strcmp(a, "--go"))
            o->go = v;
        else if (!strcmp(a, "--timeout"))
            o->cfg.timeout_ms = (unsigned)num(v) * 1000u;
        else if ((strcmp(a, "--gens") && strcmp(a, "--gen")) || xbd_gens_parse(&o->gens, v) < 0)
            usage();
    }
    if (!o->domid || !o->vdev || !o->cfg.qd || !o->cfg.bs_max || o->cfg.bs_max % 4096 ||
        !o->span || o->span % o->cfg.bs_max)
        usage();
    if (strcmp(o->cmd, "steady") && !o->gens.any && o->gens.n == 0)
        usage();
    if ((!strcmp(o->cmd, "barrier") || !strcmp(o->cmd, "held-write")) && o->gens.n != 1)
        usage();
    if (!strcmp(o->cmd, "held-write") && !o->ready)
        usage();
    if (!strcmp(o->cmd, "pause") && (!o->ready || !o->go || o->gens.n != 1))
        usage();
}

/* --- synchronous-looking I/O over the asynchronous library ----------- */

struct pass {
    bf_disk *d;
    uint8_t op;
    uint64_t next, span;        /* 512-byte sectors */
    uint32_t chunk;             /* sectors per request */
    const struct opts *o;
    uint32_t gen;               /* written, or checked on read (0: o->gens) */
    unsigned inflight;
    int failed;
};

struct pio {
    struct bf_io io;
    struct pass *p;
};

static void pass_done(struct bf_io *io)
{
    struct pio *x = (struct pio *)io;
    struct pass *p = x->p;
    char why[200];

    p->inflight--;
    if (io->status != BLKIF_RSP_OKAY) {
        fprintf(stderr, "xbd-fe: %s of sector %" PRIu64 " (%u sectors): status %d\n",
                bf_op_name(io->op), io->sector, io->nsect, io->status);
        p->failed = 1;
    } else if (io->op == BLKIF_OP_READ) {
        for (uint32_t s = 0; s < io->nsect; s++) {
            const uint8_t *sec = io->buf + (size_t)s * 512;
            uint64_t sector = io->sector + s;
            bool ok;
            if (p->gen)
                ok = bf_pattern_check(sec, sector, p->gen, why, sizeof(why)) == 0;
            else
                ok = xbd_gens_match(&p->o->gens, sec, sector, why, sizeof(why)) >= 0;
            if (!ok && p->failed++ < 5)
                fprintf(stderr, "xbd-fe: read of sector %" PRIu64 ": %s\n", sector, why);
        }
    }
    free(io->buf);
    free(x);
}

static int submit_next(struct pass *p)
{
    struct pio *x = calloc(1, sizeof(*x));
    uint32_t n = p->span - p->next < p->chunk ? (uint32_t)(p->span - p->next) : p->chunk;
    if (!x || !(x->io.buf = malloc((size_t)n * 512))) {
        free(x);
        return -1;
    }
    x->p = p;
    x->io.op = p->op;
    x->io.sector = p->next;
    x->io.nsect = n;
    x->io.done = pass_done;
    if (p->op != BLKIF_OP_READ)
        for (uint32_t s = 0; s < n; s++)
            bf_pattern_fill(x->io.buf + (size_t)s * 512, p->next + s, p->gen);
    if (bf_submit(p->d, &x->io) < 0) {
        int e = errno;
        free(x->io.buf);
        free(x);
        errno = e;
        return -1;
    }
    p->next += n;
    p->inflight++;
    return 0;
}

/* Run op over [0, span) in chunk-sized requests, qd at a time. */
static int run_pass(bf_host *h, bf_disk *d, const struct opts *o, uint8_t op, uint32_t chunk, uint32_t gen)
{
    struct pass p = { .d = d, .op = op, .span = o->span / 512, .chunk = chunk, .o = o, .gen = gen };

    while ((p.next < p.span || p.inflight) && !p.failed) {
        while (p.next < p.span && p.inflight < o->cfg.qd) {
            if (submit_next(&p) == 0)
                continue;
            if (errno != EAGAIN) {
                fprintf(stderr, "xbd-fe: cannot submit %s: %s\n", bf_op_name(op), strerror(errno));
                return -1;
            }
            break;
        }
        int r = bf_host_poll(h, (int)o->cfg.timeout_ms);
        if (r < 0 || (r == 0 && p.inflight)) {
            fprintf(stderr, "xbd-fe: %s: %s with %u request(s) in flight\n", bf_op_name(op),
                    r < 0 ? "poll failed" : "timed out", p.inflight);
            return -1;
        }
    }
    while (p.inflight && bf_host_poll(h, (int)o->cfg.timeout_ms) > 0)
        ;
    return p.failed || p.inflight ? -1 : 0;
}

/* One request without data (flush), waited for. */
static int run_one(bf_host *h, bf_disk *d, const struct opts *o, uint8_t op)
{
    struct pass p = { .d = d, .op = op, .o = o };
    struct pio *x = calloc(1, sizeof(*x));
    if (!x)
        return -1;
    x->p = &p;
    x->io.op = op;
    x->io.done = pass_done;
    if (bf_submit(d, &x->io) < 0) {
        free(x);
        return -1;
    }
    p.inflight = 1;
    while (p.inflight && bf_host_poll(h, (int)o->cfg.timeout_ms) > 0)
        ;
    return p.failed || p.inflight ? -1 : 0;
}

/* --- scenarios ---------------------------------------------------------- */

static int snapshot(bf_host *h, const char *what, struct xsg_grant_stats *st)
{
    if (xsg_grant_stats(bf_host_dom(h), st) < 0) {
        fprintf(stderr, "xbd-fe: cannot read the grant counters\n");
        return -1;
    }
    printf("%s: map_calls=%" PRIu64 " pages_mapped=%" PRIu64 " pages_unmapped=%" PRIu64
           " copy_calls=%" PRIu64 " copy_segs=%" PRIu64 "\n",
           what, st->map_calls, st->pages_mapped, st->pages_unmapped, st->copy_calls, st->copy_segs);
    return 0;
}

__attribute__((format(printf, 2, 3)))
static int expect(bool ok, const char *fmt, ...)
{
    if (!ok) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "xbd-fe: ");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    return ok ? 0 : -1;
}

static int steady(bf_host *h, bf_disk *d, const struct opts *o)
{
    const struct bf_negotiated *n = bf_disk_negotiated(d);
    uint32_t chunk = o->cfg.bs_max / 512;
    struct xsg_grant_stats a, b;
    uint64_t reqs = 2 * (o->span / o->cfg.bs_max);
    uint64_t segs = 2 * (o->span / 4096);
    int rc = 0;

    if (run_pass(h, d, o, BLKIF_OP_WRITE, chunk, 1) < 0 || run_pass(h, d, o, BLKIF_OP_READ, chunk, 1) < 0 ||
        snapshot(h, "after pass 1", &a) < 0)
        return -1;
    if (run_pass(h, d, o, BLKIF_OP_WRITE, chunk, 2) < 0 || run_pass(h, d, o, BLKIF_OP_READ, chunk, 2) < 0 ||
        snapshot(h, "after pass 2", &b) < 0)
        return -1;
    printf("pass 2: %" PRIu64 " requests, %" PRIu64 " data pages, persistent %d, indirect %d, ring pages %u\n",
           reqs, segs, n->persistent, n->indirect, n->ring_pages * n->queues);
    rc |= expect(b.map_calls == a.map_calls, "pass 2 made map calls: %" PRIu64 " -> %" PRIu64,
                 a.map_calls, b.map_calls);
    rc |= expect(b.pages_mapped == a.pages_mapped, "pass 2 mapped pages: %" PRIu64 " -> %" PRIu64,
                 a.pages_mapped, b.pages_mapped);
    if (n->persistent) {
        /* Neither data pages nor indirect pages are copied: both are
         * persistent grants (include/xenblkd/dataplane.h). */
        rc |= expect(b.copy_segs == a.copy_segs,
                     "persistent grants: pass 2 copied %" PRIu64 " segments, want none",
                     b.copy_segs - a.copy_segs);
        rc |= expect(a.pages_mapped > (uint64_t)n->ring_pages * n->queues,
                     "persistent grants, yet only %" PRIu64 " pages mapped (ring: %" PRIu64 ")",
                     a.pages_mapped, (uint64_t)n->ring_pages * n->queues);
    } else {
        uint64_t ring = (uint64_t)n->ring_pages * n->queues;
        rc |= expect(a.pages_mapped == ring && a.map_calls == n->queues,
                     "per-request grants: %" PRIu64 " pages mapped, want the %" PRIu64 " ring pages only",
                     a.pages_mapped, ring);
        rc |= expect(b.copy_segs - a.copy_segs >= segs, "pass 2 copied %" PRIu64 " segments, want >= %" PRIu64,
                     b.copy_segs - a.copy_segs, segs);
    }
    return rc;
}

static int barrier(bf_host *h, bf_disk *d, const struct opts *o)
{
    /* A barrier carries at most 11 segments (never indirect). */
    uint32_t chunk = bf_disk_max_sectors(d, 0);
    if (chunk > BLKIF_MAX_SEGMENTS_PER_REQUEST * 8)
        chunk = BLKIF_MAX_SEGMENTS_PER_REQUEST * 8;
    if (!bf_disk_features(d)->barrier) {
        fprintf(stderr, "xbd-fe: the backend does not offer feature-barrier\n");
        return -1;
    }
    if (run_pass(h, d, o, BLKIF_OP_WRITE_BARRIER, chunk, o->gens.g[0]) < 0 ||
        run_one(h, d, o, BLKIF_OP_FLUSH_DISKCACHE) < 0 ||
        run_pass(h, d, o, BLKIF_OP_READ, bf_disk_max_sectors(d, 0), o->gens.g[0]) < 0)
        return -1;
    struct bf_stats *st = bf_disk_stats(d);
    printf("barrier=%" PRIu64 " flush=%" PRIu64 " read=%" PRIu64 "\n", st->reqs[BLKIF_OP_WRITE_BARRIER],
           st->reqs[BLKIF_OP_FLUSH_DISKCACHE], st->reqs[BLKIF_OP_READ]);
    return st->reqs[BLKIF_OP_WRITE_BARRIER] > 0 ? 0 : -1;
}

static void note_done(struct bf_io *io)
{
    *(int *)io->ctx = 1;
}

/* Poll until *flag is set: a wake-up may complete nothing (e.g. a new
 * backend's first notification), so only the deadline ends the wait; or,
 * if give_up is not NULL, that file's creation (the deadline is then a
 * bound for a test gone wrong, not a window of time). */
static void wait_flag(bf_host *h, const int *flag, unsigned timeout_ms, const char *give_up)
{
    time_t end = time(NULL) + (time_t)((give_up ? 300000u : timeout_ms) / 1000u) + 1;

    while (!*flag && time(NULL) < end && bf_host_poll(h, 100) >= 0)
        if (give_up && access(give_up, F_OK) == 0) {
            fprintf(stderr, "xbd-fe: %s exists: giving up the wait\n", give_up);
            break;
        }
}

static int held_write(bf_host *h, bf_disk *d, const struct opts *o)
{
    const struct bf_negotiated *n = bf_disk_negotiated(d);
    static uint8_t wbuf[4096], rbuf[4096];
    struct bf_io w = { .op = BLKIF_OP_WRITE, .sector = o->sector, .nsect = 8, .buf = wbuf,
                       .done = note_done };
    struct bf_raw bad = { .gref_override = -1, .data_segs = 1 };
    struct bf_wire_rsp rsp;
    int wdone = 0, rc;
    FILE *f;

    for (unsigned s = 0; s < 8; s++)
        bf_pattern_fill(wbuf + s * 512u, o->sector + s, o->gens.g[0]);
    w.ctx = &wdone;
    if (bf_submit(d, &w) < 0) {
        fprintf(stderr, "xbd-fe: cannot submit the write: %s\n", strerror(errno));
        return -1;
    }
    bad.w.operation = BLKIF_OP_READ;
    bad.w.nr_segments = 1;
    bad.w.sector_number = n->sectors;          /* past the end */
    bad.w.seg[0].first_sect = 0;
    bad.w.seg[0].last_sect = 7;
    rc = bf_raw_submit(d, &bad, &rsp, (int)o->cfg.timeout_ms);
    if (expect(rc == 1, "malformed request answered while the write is in flight (got %d)", rc) < 0 ||
        expect(rsp.status == BLKIF_RSP_ERROR, "malformed request: status %d, want ERROR",
               rsp.status) < 0 || expect(!wdone, "the write is still in flight") < 0)
        return -1;
    f = fopen(o->ready, "w");
    if (!f || fclose(f) != 0) {
        fprintf(stderr, "xbd-fe: cannot create %s\n", o->ready);
        return -1;
    }
    wait_flag(h, &wdone, o->cfg.timeout_ms, o->go);
    if (expect(wdone && w.status == BLKIF_RSP_OKAY, "write answered OKAY (done %d, status %d)",
               wdone, w.status) < 0)
        return -1;
    struct bf_io r = { .op = BLKIF_OP_READ, .sector = o->sector, .nsect = 8, .buf = rbuf,
                       .done = note_done, .ctx = &wdone };
    wdone = 0;
    if (bf_submit(d, &r) < 0)
        return -1;
    wait_flag(h, &wdone, o->cfg.timeout_ms, o->go);
    for (unsigned s = 0; s < 8; s++) {
        char why[160];
        if (expect(bf_pattern_check(rbuf + s * 512u, o->sector + s, o->gens.g[0], why,
                                    sizeof(why)) == 0, "sector %" PRIu64 " reads back: %s",
                   o->sector + s, why) < 0)
            return -1;
    }
    return 0;
}

static int touch(const char *path)
{
    FILE *f = fopen(path, "w");

    if (!f || fclose(f) != 0) {
        fprintf(stderr, "xbd-fe: cannot create %s\n", path);
        return -1;
    }
    return 0;
}

/* Wait for the test to create path; nothing is in flight meanwhile. */
static int wait_file(const char *path, unsigned timeout_ms)
{
    struct timespec tick = { 0, 20 * 1000 * 1000 };
    unsigned waited = 0;
    FILE *f;

    while (!(f = fopen(path, "r"))) {
        if (waited >= timeout_ms) {
            fprintf(stderr, "xbd-fe: %s did not appear\n", path);
            return -1;
        }
        nanosleep(&tick, NULL);
        waited += 20;
    }
    fclose(f);
    return 0;
}

static int pause_scenario(bf_host *h, bf_disk *d, const struct opts *o)
{
    uint32_t chunk = o->cfg.bs_max / 512, g = o->gens.g[0];

    if (run_pass(h, d, o, BLKIF_OP_WRITE, chunk, g) < 0 || run_pass(h, d, o, BLKIF_OP_READ, chunk, g) < 0 ||
        touch(o->ready) < 0 || wait_file(o->go, o->cfg.timeout_ms) < 0)
        return -1;
    /* Whatever the backend notified meanwhile (each new connection of
     * the ring may kick us once) completes nothing: consume it, so that
     * run_pass's first wait is for our own requests. */
    if (bf_host_poll(h, 0) < 0)
        return -1;
    if (run_pass(h, d, o, BLKIF_OP_WRITE, chunk, g + 1) < 0 ||
        run_pass(h, d, o, BLKIF_OP_READ, chunk, g + 1) < 0)
        return -1;
    printf("pause: generation %u written and read back after the pause\n", g + 1);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    parse_args(&o, argc, argv);
    if (!getenv("XENSIM_DIR")) {
        fprintf(stderr, "xbd-fe: XENSIM_DIR is not set: run inside a simulated host\n");
        return 1;
    }
    uint32_t pages = 64 + bf_pages_needed(&o.cfg);
    bf_host *h = bf_host_open((domid_t)o.domid, pages, pages + 64);
    if (!h)
        return 1;
    bf_disk *d = bf_disk_new(h, o.vdev, &o.cfg);
    int rc = d && bf_disk_connect(d) == 0 ? 0 : -1;
    if (rc == 0 && o.span > bf_disk_negotiated(d)->sectors * 512) {
        fprintf(stderr, "xbd-fe: span beyond the disk\n");
        rc = -1;
    }
    if (rc == 0) {
        if (!strcmp(o.cmd, "steady"))
            rc = steady(h, d, &o);
        else if (!strcmp(o.cmd, "readcheck"))
            rc = run_pass(h, d, &o, BLKIF_OP_READ, o.cfg.bs_max / 512, 0);
        else if (!strcmp(o.cmd, "barrier"))
            rc = barrier(h, d, &o);
        else if (!strcmp(o.cmd, "held-write"))
            rc = held_write(h, d, &o);
        else if (!strcmp(o.cmd, "pause"))
            rc = pause_scenario(h, d, &o);
        else
            usage();
    }
    if (d) {
        const struct bf_stats *st = bf_disk_stats(d);
        printf("requests: read=%" PRIu64 " write=%" PRIu64 " barrier=%" PRIu64 " flush=%" PRIu64
               " discard=%" PRIu64 " indirect=%" PRIu64 " okay=%" PRIu64 "\n",
               st->reqs[BLKIF_OP_READ], st->reqs[BLKIF_OP_WRITE], st->reqs[BLKIF_OP_WRITE_BARRIER],
               st->reqs[BLKIF_OP_FLUSH_DISKCACHE], st->reqs[BLKIF_OP_DISCARD], st->indirect_reqs,
               st->rsp_okay);
    }
    if (d && bf_disk_close(d) < 0)
        rc = -1;
    if (d && bf_disk_stats(d)->errors)
        rc = -1;
    if (xsg_grants_in_use(bf_host_dom(h)) != 0) {
        fprintf(stderr, "xbd-fe: grants still in use after Closed\n");
        rc = -1;
    }
    bf_host_close(h);
    printf("%s: %s\n", o.cmd, rc == 0 ? "ok" : "FAILED");
    return rc == 0 ? 0 : 1;
}
