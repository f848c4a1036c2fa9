/*
 * fe.c - the in-process frontend/backend rig of the data plane tests (see
 * fe.h).
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xenevtchn.h>
#include <xengnttab.h>

#include "fe.h"
#include "request.h"
#include "xenblkd/log.h"

static char simdir[PATH_MAX];
static pid_t owner;

static void die(const char *what)
{
    fprintf(stderr, "FATAL: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void cleanup(void)
{
    if (owner == getpid() && simdir[0])
        nftw(simdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void on_signal(int sig)
{
    cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The backend half must run on the simulated libraries: re-exec with
 * LD_LIBRARY_PATH=$top_builddir/tests/sim/lib unless already so. */
static void use_sim_libs(char **argv)
{
    const char *top = getenv("top_builddir");
    const char *cur = getenv("LD_LIBRARY_PATH");
    char lib[PATH_MAX];
    Dl_info a, b;

    if (!top) {
        fprintf(stderr, "SKIP: top_builddir not set (run through make check)\n");
        exit(77);
    }
    snprintf(lib, sizeof(lib), "%s/tests/sim/lib", top);
    if (!cur || strncmp(cur, lib, strlen(lib)) != 0) {
        setenv("LD_LIBRARY_PATH", lib, 1);
        execv("/proc/self/exe", argv);
        die("re-exec with the simulated libraries");
    }
    if (!dladdr((void *)xengnttab_open, &a) || !dladdr((void *)xenevtchn_open, &b) ||
        !a.dli_fname || !b.dli_fname || !strstr(a.dli_fname, "tests/sim/lib/") ||
        !strstr(b.dli_fname, "tests/sim/lib/")) {
        fprintf(stderr, "FATAL: the simulated Xen libraries are not the ones loaded\n");
        exit(1);
    }
}

void rig_init(int argc, char **argv)
{
    const char *tmp = getenv("TMPDIR");

    use_sim_libs(argv);
    snprintf(simdir, sizeof(simdir), "%s/xbd-unit.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(simdir))
        die("mkdtemp");
    owner = getpid();
    atexit(cleanup);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGALRM, on_signal);
    signal(SIGSEGV, on_signal);
    signal(SIGBUS, on_signal);
    signal(SIGABRT, on_signal);
    alarm(120);                  /* a hung test must still clean up */
    setenv("XENSIM_DIR", simdir, 1);
    setenv("XENSIM_DOMID", "0", 1);
    xbd_log_init(true, getenv("XBD_TEST_DEBUG") ? XBD_LOG_DEBUG : XBD_LOG_WARN);
}

void fe_open(struct fe *f, domid_t domid, enum xbd_protocol proto, unsigned order)
{
    fe_open_sized(f, domid, proto, order, 256, 1024);
}

void fe_open_sized(struct fe *f, domid_t domid, enum xbd_protocol proto, unsigned order,
                   uint32_t nr_pages, uint32_t nr_grants)
{
    unsigned i, n = 1u << order;
    uint32_t first = 0;

    memset(f, 0, sizeof(*f));
    f->domid = domid;
    f->proto = proto;
    f->order = order;
    f->d = xsg_dom_create(domid, nr_pages, nr_grants);
    if (!f->d)
        die("xsg_dom_create");
    /* Ring pages first: guest memory is contiguous in the guest's view. */
    for (i = 0; i < n; i++) {
        uint32_t gfn;

        if (xsg_page_alloc(f->d, &gfn) < 0)
            die("page alloc");
        if (i == 0)
            first = gfn;
        if (gfn != first + i) {
            fprintf(stderr, "FATAL: ring pages not contiguous\n");
            exit(1);
        }
        if (xsg_grant(f->d, 0, gfn, false, &f->ring_refs[i]) < 0)
            die("grant ring");
    }
    {
        void *s = xsg_page(f->d, first);
        size_t sz = (size_t)n * XBD_PAGE_SIZE;

        memset(s, 0, sz);
        SHARED_RING_INIT((struct blkif_sring *)s);
        FRONT_RING_INIT(&f->fr, (struct blkif_sring *)s, sz);
        f->fr.nr_ents = xbd_ring_nr_ents(proto, sz);
        f->sring = s;
    }
    for (i = 0; i < FE_NPAGES; i++) {
        if (xsg_page_alloc(f->d, &f->gfn[i]) < 0)
            die("page alloc");
        if (xsg_grant(f->d, 0, f->gfn[i], false, &f->ref[i]) < 0)
            die("grant data");
    }
    if (xsg_page_alloc(f->d, &f->ro_gfn) < 0 ||
        xsg_grant(f->d, 0, f->ro_gfn, true, &f->ro_ref) < 0)
        die("grant read-only page");
    if (xsg_evtchn_alloc_unbound(f->d, 0, &f->port) < 0)
        die("evtchn alloc");
}

void fe_close(struct fe *f)
{
    if (f->d && xsg_dom_destroy(f->d) < 0)
        die("xsg_dom_destroy");
    f->d = NULL;
}

static void fatal_cb(void *opaque, const char *reason)
{
    struct be *b = opaque;

    b->fatal_calls++;
    fprintf(stderr, "(expected?) fatal: %s\n", reason);
    if (b->stop_on_fatal)
        be_stop(b);
}

/* Everything be_open does but start the ring. */
static void be_prepare(struct be *b, struct fe *f, uint64_t sectors, bool persistent,
                       unsigned max_indirect, unsigned max_pgrants)
{
    const char *tmp = getenv("TMPDIR");
    unsigned i;
    int fd;

    memset(b, 0, sizeof(*b));
    b->loop = ev_loop_new(EVFLAG_AUTO);
    b->io = xbd_io_engine_new(b->loop);
    if (!b->loop || !b->io)
        die("loop / io engine");
    snprintf(b->path, sizeof(b->path), "%s/xbd-disk.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    fd = mkstemp(b->path);
    /* Unlinked at once: nothing is left behind even if the test crashes. */
    if (fd < 0 || unlink(b->path) < 0 || ftruncate(fd, (off_t)(sectors * 512)) < 0)
        die("backing file");
    b->bk.fd = fd;
    b->plain_fd = fd;
    b->bk.sectors = sectors;
    b->bk.sector_size = 512;
    b->bk.physical_sector_size = 512;
    b->bk.flush = true;
    b->bk.discard = true;
    b->p.name = "test ring";
    b->p.domid = f->domid;
    b->p.protocol = f->proto;
    b->p.ring_order = f->order;
    for (i = 0; i < (1u << f->order); i++)
        b->p.ring_refs[i] = f->ring_refs[i];
    b->p.remote_port = f->port;
    b->p.persistent = persistent;
    b->p.max_indirect_segs = max_indirect;
    b->p.max_persistent_grants = max_pgrants;
    b->p.backing = &b->bk;
    xbd_loop_stats_start(&b->clock, b->loop);     /* as the daemon's host */
    b->p.clock = &b->clock;
}

void be_open(struct be *b, struct fe *f, uint64_t sectors, bool persistent,
             unsigned max_indirect, unsigned max_pgrants)
{
    be_prepare(b, f, sectors, persistent, max_indirect, max_pgrants);
    b->ring = xbd_ring_start(b->loop, b->io, &b->p, fatal_cb, b);
}

void be_open_idle(struct be *b, struct fe *f, uint64_t sectors, double pgrant_idle_s)
{
    be_prepare(b, f, sectors, true, 0, 0);
    b->p.pgrant_idle_s = pgrant_idle_s;
    b->ring = xbd_ring_start(b->loop, b->io, &b->p, fatal_cb, b);
}

static void counted_cb(void *opaque, const struct xbd_ring *r,
                       const struct xbd_ring_stats *final)
{
    struct be *b = opaque;

    (void)r;
    b->counted_calls++;
    b->counted_after_drained = b->drained;
    b->final = *final;
}

static void drained_cb(void *opaque)
{
    struct be *b = opaque;

    b->drained = true;
    b->ring = NULL;
}

void be_stop(struct be *b)
{
    if (!b->ring)
        return;
    xbd_ring_stop(b->ring, counted_cb, drained_cb, b);
}

bool be_wait_drained(struct be *b, double timeout_s)
{
    double t0 = ev_time();

    while (!b->drained && ev_time() - t0 < timeout_s)
        ev_run(b->loop, EVRUN_ONCE);
    return b->drained;
}

void be_close(struct be *b)
{
    if (b->ring) {
        be_stop(b);
        if (!be_wait_drained(b, 10)) {
            fprintf(stderr, "FATAL: ring never drained\n");
            exit(1);
        }
    }
    xbd_io_engine_free(b->io);
    xbd_loop_stats_stop(&b->clock);
    ev_loop_destroy(b->loop);
    close(b->bk.fd);
}

/* ---- requests -------------------------------------------------------- */

#define FE_FILL_RW(req, op_, id_, sector_, segs_, n_) do {               \
    unsigned i_;                                                         \
    (req)->operation = (op_);                                            \
    (req)->nr_segments = (uint8_t)(n_);                                  \
    (req)->handle = 0;                                                   \
    (req)->id = (id_);                                                   \
    (req)->sector_number = (sector_);                                    \
    for (i_ = 0; i_ < (n_) && i_ < BLKIF_MAX_SEGMENTS_PER_REQUEST; i_++) { \
        (req)->seg[i_].gref = (segs_)[i_].gref;                          \
        (req)->seg[i_].first_sect = (segs_)[i_].first;                   \
        (req)->seg[i_].last_sect = (segs_)[i_].last;                     \
    }                                                                    \
} while (0)

static void *req_slot(struct fe *f)
{
    RING_IDX i = f->fr.req_prod_pvt++;

    return xbd_ring_entry(f->sring, f->proto, f->fr.nr_ents, i);
}

void fe_rw(struct fe *f, uint8_t op, uint64_t id, uint64_t sector,
           const struct fe_seg *segs, unsigned n)
{
    void *s = req_slot(f);

    switch (f->proto) {
    case XBD_PROTO_X86_32:
        FE_FILL_RW((struct blkif_x86_32_request *)s, op, id, sector, segs, n);
        break;
    case XBD_PROTO_X86_64:
        FE_FILL_RW((struct blkif_x86_64_request *)s, op, id, sector, segs, n);
        break;
    default:
        FE_FILL_RW((struct blkif_request *)s, op, id, sector, segs, n);
        break;
    }
}

void fe_rw_page(struct fe *f, uint8_t op, uint64_t id, uint64_t sector, unsigned page)
{
    struct fe_seg seg = { f->ref[page], 0, 7 };

    fe_rw(f, op, id, sector, &seg, 1);
}

#define FE_FILL_DISCARD(req, id_, sector_, nr_, secure_) do {            \
    (req)->operation = BLKIF_OP_DISCARD;                                 \
    (req)->flag = (secure_) ? BLKIF_DISCARD_SECURE : 0;                  \
    (req)->handle = 0;                                                   \
    (req)->id = (id_);                                                   \
    (req)->sector_number = (sector_);                                    \
    (req)->nr_sectors = (nr_);                                           \
} while (0)

void fe_discard(struct fe *f, uint64_t id, uint64_t sector, uint64_t nr, bool secure)
{
    void *s = req_slot(f);

    switch (f->proto) {
    case XBD_PROTO_X86_32:
        FE_FILL_DISCARD((struct blkif_x86_32_request_discard *)s, id, sector, nr, secure);
        break;
    case XBD_PROTO_X86_64:
        FE_FILL_DISCARD((struct blkif_x86_64_request_discard *)s, id, sector, nr, secure);
        break;
    default:
        FE_FILL_DISCARD((struct blkif_request_discard *)s, id, sector, nr, secure);
        break;
    }
}

#define FE_FILL_INDIRECT(req, iop_, id_, sector_, nseg_, pages_, np_) do { \
    unsigned i_;                                                         \
    (req)->operation = BLKIF_OP_INDIRECT;                                \
    (req)->indirect_op = (iop_);                                         \
    (req)->nr_segments = (nseg_);                                        \
    (req)->id = (id_);                                                   \
    (req)->sector_number = (sector_);                                    \
    (req)->handle = 0;                                                   \
    for (i_ = 0; i_ < (np_); i_++)                                       \
        (req)->indirect_grefs[i_] = (pages_)[i_];                        \
} while (0)

void fe_indirect(struct fe *f, uint8_t iop, uint64_t id, uint64_t sector,
                 uint16_t nseg, const grant_ref_t *pages, unsigned npages)
{
    void *s = req_slot(f);

    switch (f->proto) {
    case XBD_PROTO_X86_32:
        FE_FILL_INDIRECT((struct blkif_x86_32_request_indirect *)s, iop, id, sector, nseg, pages, npages);
        break;
    case XBD_PROTO_X86_64:
        FE_FILL_INDIRECT((struct blkif_x86_64_request_indirect *)s, iop, id, sector, nseg, pages, npages);
        break;
    default:
        FE_FILL_INDIRECT((struct blkif_request_indirect *)s, iop, id, sector, nseg, pages, npages);
        break;
    }
}

void fe_push(struct fe *f)
{
    int notify;

    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&f->fr, notify);
    if (notify)
        xsg_evtchn_notify(f->d, f->port);
}

unsigned fe_pending_rsp(struct fe *f)
{
    RING_IDX prod = __atomic_load_n(&f->fr.sring->rsp_prod, __ATOMIC_ACQUIRE);

    return prod - f->fr.rsp_cons;
}

bool fe_pop(struct fe *f, uint64_t *id, uint8_t *op, int16_t *status)
{
    RING_IDX i = f->fr.rsp_cons;

    if (!fe_pending_rsp(f))
        return false;
    {
        void *e = xbd_ring_entry(f->sring, f->proto, f->fr.nr_ents, i);

        switch (f->proto) {
        case XBD_PROTO_X86_32: {
            struct blkif_x86_32_response *r = e;
            *id = r->id; *op = r->operation; *status = r->status;
            break;
        }
        case XBD_PROTO_X86_64: {
            struct blkif_x86_64_response *r = e;
            *id = r->id; *op = r->operation; *status = r->status;
            break;
        }
        default: {
            struct blkif_response *r = e;
            *id = r->id; *op = r->operation; *status = r->status;
            break;
        }
        }
    }
    f->fr.rsp_cons = i + 1;
    return true;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
}

struct cond_wait {
    ev_prepare w;
    struct be *b;
    bool (*done)(struct be *, void *);
    void *arg;
};

/* Responses are published as late as the prepare round before a poll
 * (ring.c: an I/O engine's synchronous completions), after which the
 * loop may block until its next event: look at the condition there, as
 * the guest would, rather than after that poll.  The lowest priority runs
 * after the ring's own (the publication is the lowest too, and libev
 * runs the events of one priority newest first). */
static void cond_seen_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct cond_wait *cw = (struct cond_wait *)w;

    if (cw->done(cw->b, cw->arg))
        ev_break(loop, EVBREAK_ONE);
}

bool run_until(struct be *b, bool (*done)(struct be *, void *), void *arg,
               double timeout_s)
{
    ev_timer tick;
    struct cond_wait cw = { .b = b, .done = done, .arg = arg };
    double t0 = ev_time();
    bool ok;

    /* A tick keeps every ev_run short, so the condition is re-checked. */
    ev_timer_init(&tick, tick_cb, 0.005, 0.005);
    ev_timer_start(b->loop, &tick);
    ev_prepare_init(&cw.w, cond_seen_cb);
    ev_set_priority(&cw.w, EV_MINPRI);
    ev_prepare_start(b->loop, &cw.w);
    while (!(ok = done(b, arg)) && ev_time() - t0 < timeout_s)
        ev_run(b->loop, EVRUN_ONCE);
    ev_prepare_stop(b->loop, &cw.w);
    ev_timer_stop(b->loop, &tick);
    return ok;
}

struct rsp_goal {
    struct fe *f;
    unsigned n;
};

static bool rsp_ready(struct be *b, void *arg)
{
    const struct rsp_goal *g = arg;

    (void)b;
    return fe_pending_rsp(g->f) >= g->n;
}

unsigned run_until_rsp(struct be *b, struct fe *f, unsigned n, double timeout_s)
{
    struct rsp_goal g = { f, n };

    run_until(b, rsp_ready, &g, timeout_s);
    return fe_pending_rsp(f);
}

bool fe_fatal_seen(struct be *b, void *unused)
{
    (void)unused;
    return b->fatal_calls > 0;
}

void run_for(struct be *b, double seconds)
{
    ev_timer tick;
    double t0 = ev_time();

    ev_timer_init(&tick, tick_cb, 0.005, 0.005);
    ev_timer_start(b->loop, &tick);
    while (ev_time() - t0 < seconds)
        ev_run(b->loop, EVRUN_ONCE);
    ev_timer_stop(b->loop, &tick);
}

/* ---- data ------------------------------------------------------------ */

void pattern(void *buf, size_t len, uint32_t seed)
{
    uint32_t *p = buf, x = seed * 2654435761u + 12345u;
    size_t i;

    for (i = 0; i < len / 4; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = x;
    }
}

void fe_fill(struct fe *f, unsigned i, uint32_t seed)
{
    pattern(xsg_page(f->d, f->gfn[i]), XBD_PAGE_SIZE, seed);
}

bool fe_check(struct fe *f, unsigned i, uint32_t seed)
{
    unsigned char want[XBD_PAGE_SIZE];

    pattern(want, sizeof(want), seed);
    return memcmp(want, xsg_page(f->d, f->gfn[i]), sizeof(want)) == 0;
}
