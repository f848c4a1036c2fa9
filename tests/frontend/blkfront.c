/*
 * blkfront.c - host (simulated guest domain) and disk life cycle: the
 * xenbus negotiation of Linux xen-blkfront, close, reconnect and hold.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xen/io/xenbus.h>

#include "bf_internal.h"

volatile int bf_interrupted;

#define ST(s) (1u << ((s) + 1))      /* state mask bit; ST(-1) = absent */

void bf_config_default(struct bf_config *c)
{
    memset(c, 0, sizeof(*c));
    c->proto = BF_PROTO_X86_64;
    c->ring_order = 0;
    c->queues = 1;
    c->persistent = true;
    c->indirect = true;
    c->max_indirect = 32;           /* Linux blkfront's default */
    c->qd = 32;
    c->bs_max = 128 * 1024;
    c->timeout_ms = 20000;
}

const char *bf_op_name(unsigned op)
{
    switch (op) {
    case BLKIF_OP_READ: return "read";
    case BLKIF_OP_WRITE: return "write";
    case BLKIF_OP_WRITE_BARRIER: return "barrier";
    case BLKIF_OP_FLUSH_DISKCACHE: return "flush";
    case BLKIF_OP_RESERVED_1: return "reserved1";
    case BLKIF_OP_DISCARD: return "discard";
    case BLKIF_OP_INDIRECT: return "indirect";
    default: return "unknown";
    }
}

void bf_disk_log(bf_disk *d, int level, const char *fmt, ...)
{
    va_list ap;
    if (d->cfg.verbose < level)
        return;
    fprintf(stderr, "xsim-blkfront: dom%u vbd %u: ", d->h->domid, d->vdev);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void bf_disk_error(bf_disk *d, const char *fmt, ...)
{
    va_list ap;
    d->st.errors++;
    fprintf(stderr, "xsim-blkfront: dom%u vbd %u: error: ", d->h->domid, d->vdev);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* --- host ----------------------------------------------------------------- */

bf_host *bf_host_open(domid_t domid, uint32_t nr_pages, uint32_t nr_grants)
{
    bf_host *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->domid = domid;
    h->xs = xs_open(0);
    if (!h->xs) {
        fprintf(stderr, "xsim-blkfront: cannot connect to xenstored (XENSTORED_PATH=%s): %s\n",
                getenv("XENSTORED_PATH") ? getenv("XENSTORED_PATH") : "(unset)", strerror(errno));
        free(h);
        return NULL;
    }
    h->dom = xsg_dom_create(domid, nr_pages, nr_grants);
    if (!h->dom) {
        fprintf(stderr, "xsim-blkfront: cannot create simulated domain %u (%u pages, %u grants): %s\n",
                domid, nr_pages, nr_grants, strerror(errno));
        xs_close(h->xs);
        free(h);
        return NULL;
    }
    return h;
}

void bf_host_close(bf_host *h)
{
    if (!h)
        return;
    /* bf_disk_free() removes the disk from h->disks. */
    while (h->ndisks > 0)
        bf_disk_free(h->disks[h->ndisks - 1]);
    if (h->dom)
        xsg_dom_destroy(h->dom);
    xs_close(h->xs);
    free(h);
}

xsg_dom *bf_host_dom(bf_host *h)
{
    return h->dom;
}

uint32_t bf_pages_needed(const struct bf_config *c)
{
    unsigned bs_max = c->bs_max;
    unsigned order = c->ring_order > BF_MAX_RING_ORDER ? BF_MAX_RING_ORDER : c->ring_order;
    unsigned queues = c->queues ? c->queues : 1;
    unsigned segs = c->indirect ? c->max_indirect : BLKIF_MAX_SEGMENTS_PER_REQUEST;
    unsigned want = bs_max / 4096 + 1;
    if (want < BLKIF_MAX_SEGMENTS_PER_REQUEST)
        want = BLKIF_MAX_SEGMENTS_PER_REQUEST;
    if (segs > want)
        segs = want;
    if (segs < BLKIF_MAX_SEGMENTS_PER_REQUEST)
        segs = BLKIF_MAX_SEGMENTS_PER_REQUEST;
    unsigned ind = (segs + BF_SEGS_PER_INDIRECT_PAGE - 1) / BF_SEGS_PER_INDIRECT_PAGE;
    unsigned per_q = (c->qd + queues - 1) / queues;
    if (per_q == 0)
        per_q = 1;
    /* Twice the ring (contiguous search may skip pages) plus every slot. */
    uint64_t pages = (uint64_t)queues * ((2u << order) + 256 + (uint64_t)per_q * (segs + ind));
    return pages > UINT32_MAX ? UINT32_MAX : (uint32_t)pages;
}

/* Complete whatever the backend answered; wait up to timeout_ms for it. */
int bf_host_poll(bf_host *h, int timeout_ms)
{
    int n = 0;
    for (unsigned i = 0; i < h->ndisks; i++)
        if (h->disks[i]->connected)
            bf_queues_push(h->disks[i]);
    struct pollfd p = { .fd = xsg_evtchn_fd(h->dom), .events = POLLIN };
    int r = poll(&p, 1, timeout_ms);
    if (r < 0)
        return errno == EINTR ? 0 : -1;
    if (r == 0)
        return 0;
    for (;;) {
        int port = xsg_evtchn_pending(h->dom);
        if (port < 0)
            break;
        struct bf_queue *q = bf_queue_by_port(h, (evtchn_port_t)port);
        xsg_evtchn_unmask(h->dom, (evtchn_port_t)port);
        if (!q)
            continue;         /* a port of a ring we already tore down */
        int c = bf_queue_process(q);
        if (c < 0)
            return -1;
        n += c;
    }
    return n;
}

/* --- disk ------------------------------------------------------------------ */

bf_disk *bf_disk_new(bf_host *h, unsigned vdev, const struct bf_config *c)
{
    if (h->ndisks == BF_MAX_DISKS)
        return NULL;
    bf_disk *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->h = h;
    d->vdev = vdev;
    d->cfg = *c;
    snprintf(d->fe_path, sizeof(d->fe_path), "/local/domain/%u/device/vbd/%u", h->domid, vdev);
    snprintf(d->watch_token, sizeof(d->watch_token), "bf-%u", vdev);
    h->disks[h->ndisks++] = d;
    return d;
}

void bf_disk_free(bf_disk *d)
{
    if (!d)
        return;
    bf_queues_teardown(d, false);
    if (d->watching) {
        char path[300];
        snprintf(path, sizeof(path), "%s/state", d->be_path);
        xs_unwatch(d->h->xs, path, d->watch_token);
    }
    free(d->leaked);
    bf_host *h = d->h;
    for (unsigned i = 0; i < h->ndisks; i++)
        if (h->disks[i] == d) {
            h->disks[i] = h->disks[--h->ndisks];
            break;
        }
    free(d);
}

const struct bf_features *bf_disk_features(const bf_disk *d) { return &d->feat; }
const struct bf_negotiated *bf_disk_negotiated(const bf_disk *d) { return &d->neg; }
struct bf_stats *bf_disk_stats(bf_disk *d) { return &d->st; }
unsigned bf_disk_vdev(const bf_disk *d) { return d->vdev; }
bool bf_disk_connected(const bf_disk *d) { return d->connected; }

/* Find the backend from the frontend directory (as xenbus does). */
static int read_otherend(bf_disk *d)
{
    char *be = bf_xs_read(d->h, d->fe_path, "backend");
    uint64_t id;
    if (!be) {
        bf_disk_error(d, "%s/backend: expected the backend path, key is missing (was the disk added?)", d->fe_path);
        return -1;
    }
    if (strlen(be) >= sizeof(d->be_path)) {
        bf_disk_error(d, "%s/backend: path too long", d->fe_path);
        free(be);
        return -1;
    }
    strcpy(d->be_path, be);
    free(be);
    bool present;
    if (bf_xs_read_uint(d, d->fe_path, "backend-id", 0, &id, &present) < 0)
        return -1;
    if (!present || id >= DOMID_FIRST_RESERVED) {
        bf_disk_error(d, "%s/backend-id: expected a domid, %s", d->fe_path, present ? "out of range" : "missing");
        return -1;
    }
    d->be_id = (domid_t)id;
    if (!d->watching) {
        char path[300];
        snprintf(path, sizeof(path), "%s/state", d->be_path);
        if (!xs_watch(d->h->xs, path, d->watch_token)) {
            bf_disk_error(d, "cannot watch %s: %s", path, strerror(errno));
            return -1;
        }
        d->watching = true;
    }
    return 0;
}

/* Features the backend publishes before InitWait (and may confirm at
 * Connected, where Linux reads persistent/indirect/flush/discard). */
static int read_features(bf_disk *d, struct bf_features *f)
{
    uint64_t v;
    bool present;
    const char *be = d->be_path;
    memset(f, 0, sizeof(*f));
#define RD(key, dflt) do { if (bf_xs_read_uint(d, be, key, dflt, &v, &present) < 0) return -1; } while (0)
    RD("feature-persistent", 0);        f->persistent = v == 1;
    RD("feature-max-indirect-segments", 0);
    f->max_indirect = v > BF_MAX_INDIRECT ? BF_MAX_INDIRECT : (unsigned)v;
    RD("max-ring-page-order", 0);
    if (present) {
        f->max_ring_order = v > 31 ? 31 : (unsigned)v;
    } else {
        /* Deprecated form: a page count, a power of two. */
        RD("max-ring-pages", 1);
        unsigned o = 0;
        while (o < 31 && (2ull << o) <= v)
            o++;
        f->max_ring_order = o;
    }
    RD("multi-queue-max-queues", 1);    f->max_queues = v == 0 ? 1 : (v > 65535 ? 65535 : (unsigned)v);
    RD("feature-flush-cache", 0);       f->flush = v == 1;
    RD("feature-barrier", 0);           f->barrier = v == 1;
    RD("feature-discard", 0);           f->discard = v == 1;
    RD("discard-secure", 0);            f->discard_secure = v == 1;
    RD("discard-granularity", 0);       f->discard_granularity = (uint32_t)v;
    RD("discard-alignment", 0);         f->discard_alignment = (uint32_t)v;
#undef RD
    return 0;
}

static void decide(bf_disk *d)
{
    struct bf_negotiated *n = &d->neg;
    const struct bf_config *c = &d->cfg;
    memset(n, 0, sizeof(*n));
    switch (c->proto) {
    case BF_PROTO_X86_32: n->abi = BF_ABI_X86_32; n->protocol = XEN_IO_PROTO_ABI_X86_32; break;
    case BF_PROTO_X86_64: n->abi = BF_ABI_X86_64; n->protocol = XEN_IO_PROTO_ABI_X86_64; break;
    case BF_PROTO_NATIVE: n->abi = BF_ABI_NATIVE; n->protocol = XEN_IO_PROTO_ABI_NATIVE; break;
    case BF_PROTO_NONE:
        /* Without the key, Linux blkback and QEMU use the x86_32 layout. */
        n->abi = BF_ABI_X86_32;
        n->protocol = NULL;
        break;
    }
    n->ring_order = c->ring_order < d->feat.max_ring_order ? c->ring_order : d->feat.max_ring_order;
    if (n->ring_order > BF_MAX_RING_ORDER)
        n->ring_order = BF_MAX_RING_ORDER;
    n->ring_pages = 1u << n->ring_order;
    n->queues = c->queues < d->feat.max_queues ? c->queues : d->feat.max_queues;
    if (n->queues == 0)
        n->queues = 1;
    if (n->queues > BF_MAX_QUEUES)
        n->queues = BF_MAX_QUEUES;
}

static bool xs_put(bf_disk *d, xs_transaction_t t, const char *dir, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static bool xs_put(bf_disk *d, xs_transaction_t t, const char *dir, const char *key, const char *fmt, ...)
{
    char path[512], val[64];
    va_list ap;
    snprintf(path, sizeof(path), "%s/%s", dir, key);
    va_start(ap, fmt);
    vsnprintf(val, sizeof(val), fmt, ap);
    va_end(ap);
    bf_disk_log(d, 2, "write %s = %s", path, val);
    return xs_write(d->h->xs, t, path, val, strlen(val));
}

static bool is_ring_key(const char *k)
{
    static const char *const exact[] = {
        "ring-ref", "ring-page-order", "event-channel", "protocol", "feature-persistent",
        "multi-queue-num-queues", "num-ring-pages",
    };
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        if (!strcmp(k, exact[i]))
            return true;
    return !strncmp(k, "ring-ref", 8) || !strncmp(k, "queue-", 6);
}

/* Keys of a previous connection must not confuse the backend (e.g. a stale
 * multi-queue-num-queues after reconnecting with one queue). */
static bool remove_stale(bf_disk *d, xs_transaction_t t)
{
    unsigned n = 0;
    char **ents = xs_directory(d->h->xs, t, d->fe_path, &n);
    bool ok = true;
    for (unsigned i = 0; ents && i < n; i++) {
        if (!is_ring_key(ents[i]))
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", d->fe_path, ents[i]);
        if (!xs_rm(d->h->xs, t, path) && errno != ENOENT)
            ok = false;
    }
    free(ents);
    return ok;
}

static bool write_queue_keys(bf_disk *d, xs_transaction_t t, const char *dir, const struct bf_queue *q)
{
    bool ok = true;
    if (q->nring == 1) {
        ok &= xs_put(d, t, dir, "ring-ref", "%u", q->ring_gref[0]);
    } else {
        for (unsigned i = 0; i < q->nring; i++) {
            char key[32];
            snprintf(key, sizeof(key), "ring-ref%u", i);
            ok &= xs_put(d, t, dir, key, "%u", q->ring_gref[i]);
        }
    }
    ok &= xs_put(d, t, dir, "event-channel", "%u", q->port);
    return ok;
}

static bool write_all_keys(bf_disk *d, xs_transaction_t t)
{
    bool ok = remove_stale(d, t);
    if (d->neg.ring_order > 0)
        ok &= xs_put(d, t, d->fe_path, "ring-page-order", "%u", d->neg.ring_order);
    if (d->nq == 1) {
        ok &= write_queue_keys(d, t, d->fe_path, &d->q[0]);
    } else {
        ok &= xs_put(d, t, d->fe_path, "multi-queue-num-queues", "%u", d->nq);
        for (unsigned i = 0; i < d->nq; i++) {
            char dir[200];
            snprintf(dir, sizeof(dir), "%s/queue-%u", d->fe_path, i);
            ok &= write_queue_keys(d, t, dir, &d->q[i]);
        }
    }
    if (d->neg.protocol)
        ok &= xs_put(d, t, d->fe_path, "protocol", "%s", d->neg.protocol);
    ok &= xs_put(d, t, d->fe_path, "feature-persistent", "%u", d->cfg.persistent ? 1u : 0u);
    return ok;
}

/* One transaction for every ring key, retried when xenstored says EAGAIN. */
static int publish_rings(bf_disk *d)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        xs_transaction_t t = xs_transaction_start(d->h->xs);
        if (t == XBT_NULL) {
            bf_disk_error(d, "cannot start a xenstore transaction: %s", strerror(errno));
            return -1;
        }
        if (!write_all_keys(d, t)) {
            int e = errno;
            xs_transaction_end(d->h->xs, t, true);
            bf_disk_error(d, "cannot write the ring keys under %s: %s", d->fe_path, strerror(e));
            return -1;
        }
        if (xs_transaction_end(d->h->xs, t, false))
            return 0;
        if (errno != EAGAIN) {
            bf_disk_error(d, "committing the ring keys failed: %s", strerror(errno));
            return -1;
        }
    }
    bf_disk_error(d, "committing the ring keys: transaction kept conflicting (EAGAIN)");
    return -1;
}

/* Geometry published at Connected: sectors, info, sector-size mandatory. */
static int read_geometry(bf_disk *d)
{
    uint64_t sectors, info, ssz, pssz;
    bool p1, p2, p3, p4;
    if (bf_xs_read_uint(d, d->be_path, "sectors", 0, &sectors, &p1) < 0 ||
        bf_xs_read_uint(d, d->be_path, "info", 0, &info, &p2) < 0 ||
        bf_xs_read_uint(d, d->be_path, "sector-size", 0, &ssz, &p3) < 0)
        return -1;
    if (!p1 || !p2 || !p3) {
        bf_disk_error(d, "backend Connected without %s%s%s", p1 ? "" : "'sectors' ",
                      p2 ? "" : "'info' ", p3 ? "" : "'sector-size'");
        return -1;
    }
    if (ssz < 512 || ssz > 4096 || (ssz & (ssz - 1))) {
        bf_disk_error(d, "sector-size: expected a power of two in 512..4096, found %" PRIu64, ssz);
        return -1;
    }
    if (bf_xs_read_uint(d, d->be_path, "physical-sector-size", ssz, &pssz, &p4) < 0)
        return -1;
    if (pssz < ssz || (pssz & (pssz - 1))) {
        bf_disk_error(d, "physical-sector-size %" PRIu64 " is not a power of two >= sector-size %" PRIu64, pssz, ssz);
        return -1;
    }
    d->neg.sectors = sectors;
    d->neg.sector_size = (uint32_t)ssz;
    d->neg.physical_sector_size = (uint32_t)pssz;
    d->neg.info = (uint32_t)info;
    return 0;
}

static void finish_negotiation(bf_disk *d, const struct bf_features *at_initwait)
{
    struct bf_negotiated *n = &d->neg;
    if (at_initwait->persistent != d->feat.persistent ||
        at_initwait->max_indirect != d->feat.max_indirect)
        bf_disk_log(d, 0, "warning: backend changed feature-persistent/feature-max-indirect-segments "
                    "between InitWait and Connected");
    n->persistent = d->cfg.persistent && d->feat.persistent;
    unsigned ind = d->cfg.indirect ? d->feat.max_indirect : 0;
    if (ind > d->cfg.max_indirect)
        ind = d->cfg.max_indirect;
    n->indirect = ind > BLKIF_MAX_SEGMENTS_PER_REQUEST;
    n->max_segs = n->indirect ? ind : BLKIF_MAX_SEGMENTS_PER_REQUEST;
}

/*
 * A frontend found in any state but Initialising was left by an earlier
 * guest (a previous process that closed, or died while connected).  Like
 * Linux's xenbus_reset_state() after kexec: walk the backend through
 * Closing/Closed, then go Initialising and wait for it to offer InitWait.
 */
static int reset_stale(bf_disk *d)
{
    int fe = bf_xs_read_state(d->h, d->fe_path);
    if (fe == XenbusStateInitialising || fe == -1 || fe == XenbusStateUnknown)
        return 0;
    int be = bf_xs_read_state(d->h, d->be_path);
    bf_disk_log(d, 1, "frontend state is %s, backend %s: resetting the connection",
                bf_state_name(fe), bf_state_name(be));
    if (be != XenbusStateClosed && be != XenbusStateInitWait) {
        if (bf_xs_write_state(d, XenbusStateClosing) < 0 ||
            bf_xs_wait_backend(d, ST(XenbusStateClosing) | ST(XenbusStateClosed), ST(-1),
                               "the backend to close a stale connection") < 0)
            return -1;
    }
    if (be != XenbusStateInitWait) {
        if (bf_xs_write_state(d, XenbusStateClosed) < 0 ||
            bf_xs_wait_backend(d, ST(XenbusStateClosed), ST(-1), "the backend to reach Closed") < 0)
            return -1;
    }
    return bf_disk_reinit(d);
}

int bf_disk_connect(bf_disk *d)
{
    struct bf_features initwait;
    if (d->connected)
        return 0;
    if (read_otherend(d) < 0)
        return -1;
    if (d->st.connects == 0 && reset_stale(d) < 0)
        return -1;
    if (bf_xs_wait_backend(d, ST(XenbusStateInitWait) | ST(XenbusStateInitialised) | ST(XenbusStateConnected),
                           0, "the backend to reach InitWait") < 0)
        return -1;
    if (read_features(d, &d->feat) < 0)
        return -1;
    initwait = d->feat;
    decide(d);
    if (bf_queues_setup(d) < 0 || publish_rings(d) < 0)
        goto fail;
    bf_disk_log(d, 1, "published %u queue(s) of %u ring page(s), protocol %s, feature-persistent=%d",
                d->nq, d->neg.ring_pages, d->neg.protocol ? d->neg.protocol : "(none)", d->cfg.persistent);
    if (bf_xs_write_state(d, XenbusStateInitialised) < 0)
        goto fail;
    if (bf_xs_wait_backend(d, ST(XenbusStateConnected),
                           ST(-1) | ST(XenbusStateClosing) | ST(XenbusStateClosed),
                           "the backend to connect") < 0)
        goto fail;
    if (read_features(d, &d->feat) < 0 || read_geometry(d) < 0)
        goto fail;
    finish_negotiation(d, &initwait);
    /* Data pages per slot: enough for the largest request we will make. */
    unsigned want = d->cfg.bs_max / 4096 + 1;
    if (want > d->neg.max_segs)
        want = d->neg.max_segs;
    if (want < BLKIF_MAX_SEGMENTS_PER_REQUEST)
        want = BLKIF_MAX_SEGMENTS_PER_REQUEST;
    d->slot_pages = want;
    if (bf_queues_slots(d) < 0)
        goto fail;
    if (bf_xs_write_state(d, XenbusStateConnected) < 0)
        goto fail;
    d->connected = true;
    d->closed_by_backend = false;
    d->st.connects++;
    bf_disk_log(d, 1, "connected: %" PRIu64 " sectors, sector-size %u, info 0x%x, abi %s, ring order %u, "
                "%u queue(s), persistent %d, max segments %u",
                d->neg.sectors, d->neg.sector_size, d->neg.info, bf_abi_name(d->neg.abi),
                d->neg.ring_order, d->nq, d->neg.persistent, d->neg.max_segs);
    return 0;
fail:
    bf_queues_teardown(d, false);
    return -1;
}

static bool all_queues_dead(const bf_disk *d)
{
    for (unsigned i = 0; i < d->nq; i++)
        if (!d->q[i].dead)
            return false;
    return d->nq > 0;
}

/* Wait for our requests to come back before tearing the rings down (not
 * from rings we stopped reading after a protocol error, nor from a backend
 * already Closed: it has let go of the rings and will answer nothing). */
static int drain(bf_disk *d)
{
    uint64_t deadline = bf_now_ms() + d->cfg.timeout_ms;
    while (d->inflight > 0 && !bf_interrupted && !all_queues_dead(d)) {
        uint64_t now = bf_now_ms();
        if (now >= deadline) {
            bf_disk_error(d, "timed out after %.1fs waiting for %u request(s) in flight before closing",
                          d->cfg.timeout_ms / 1000.0, d->inflight);
            return -1;
        }
        int c = bf_host_poll(d->h, deadline - now > 500 ? 500 : (int)(deadline - now));
        if (c < 0)
            return -1;
        if (c > 0)
            continue;
        int st = bf_xs_read_state(d->h, d->be_path);
        if (st == -1 || st == XenbusStateClosed) {
            bf_disk_error(d, "backend %s: %u request(s) in flight will never be answered",
                          st == -1 ? "gone" : "Closed", d->inflight);
            return -1;
        }
    }
    return 0;
}

/* Closed: every grant must now be free. */
static int finish_close(bf_disk *d)
{
    uint64_t before = d->st.end_access_failures;
    if (bf_xs_wait_backend(d, ST(-1) | ST(XenbusStateUnknown) | ST(XenbusStateClosed), 0,
                           "the backend to reach Closed") < 0) {
        bf_queues_teardown(d, false);
        d->connected = false;
        return -1;
    }
    bf_queues_teardown(d, true);
    d->connected = false;
    return d->st.end_access_failures == before ? 0 : -1;
}

int bf_disk_close(bf_disk *d)
{
    int rc = 0;
    if (!d->connected && !d->q)
        return 0;
    if (drain(d) < 0)
        rc = -1;
    if (bf_xs_write_state(d, XenbusStateClosing) < 0)
        return -1;
    if (bf_xs_wait_backend(d, ST(-1) | ST(XenbusStateUnknown) | ST(XenbusStateClosing) | ST(XenbusStateClosed),
                           0, "the backend to acknowledge Closing") < 0)
        rc = -1;
    if (bf_xs_write_state(d, XenbusStateClosed) < 0)
        return -1;
    if (finish_close(d) < 0)
        rc = -1;
    return rc;
}

int bf_disk_reinit(bf_disk *d)
{
    if (bf_xs_write_state(d, XenbusStateInitialising) < 0)
        return -1;
    if (bf_xs_wait_backend(d, ST(XenbusStateInitWait), ST(-1), "the backend to return to InitWait") < 0)
        return -1;
    return 0;
}

/* The backend is closing (toolstack removal): do what blkfront_closing
 * does - switch to Closed - then check every grant was released. */
static int closed_by_backend(bf_disk *d, int be_state)
{
    bf_disk_log(d, 1, "backend went %s: closing", bf_state_name(be_state));
    d->closed_by_backend = true;
    if (drain(d) < 0)
        return -1;
    if (bf_xs_write_state(d, XenbusStateClosed) < 0)
        return -1;
    return finish_close(d);
}

/* While connected, the backend may change "sectors" (an online resize; it
 * rewrites its state to fire our watch): take the new capacity, as
 * blkfront_connect does when it is called again in Connected. */
static void check_resize(bf_disk *d)
{
    uint64_t sectors;
    bool present;

    if (bf_xs_read_uint(d, d->be_path, "sectors", 0, &sectors, &present) < 0 || !present ||
        sectors == d->neg.sectors)
        return;
    bf_disk_log(d, 1, "capacity changed: %" PRIu64 " -> %" PRIu64 " sectors", d->neg.sectors, sectors);
    d->neg.sectors = sectors;
    d->st.resizes++;
}

int bf_host_hold(bf_host *h, double seconds)
{
    return bf_host_hold_until(h, seconds, NULL);
}

int bf_host_hold_until(bf_host *h, double seconds, const char *release)
{
    uint64_t end = bf_now_ms() + (uint64_t)(seconds * 1000.0);
    int rc = 0;
    for (;;) {
        unsigned live = 0;
        /* Looked at before the disks: whatever the backend wrote before
         * the test released us (a new size) is seen by this last pass. */
        bool released = release && access(release, F_OK) == 0;
        for (unsigned i = 0; i < h->ndisks; i++) {
            bf_disk *d = h->disks[i];
            if (!d->connected)
                continue;
            int st = bf_xs_read_state(h, d->be_path);
            if (st == -1 || st == XenbusStateClosing || st == XenbusStateClosed) {
                if (closed_by_backend(d, st) < 0)
                    rc = -1;
                continue;
            }
            if (st == XenbusStateConnected)
                check_resize(d);
            live++;
        }
        uint64_t now = bf_now_ms();
        if (live == 0 || now >= end || bf_interrupted || released)
            return rc;
        uint64_t left = end - now;
        /* The release file has no fd to poll: look again every 20 ms. */
        if (release && left > 20)
            left = 20;
        struct pollfd p[2] = {
            { .fd = xs_fileno(h->xs), .events = POLLIN },
            { .fd = xsg_evtchn_fd(h->dom), .events = POLLIN },
        };
        int r = poll(p, 2, left > 500 ? 500 : (int)left);
        if (r > 0 && (p[0].revents & POLLIN))
            bf_xs_drain_watches(h);
        if (r > 0 && (p[1].revents & POLLIN) && bf_host_poll(h, 0) < 0)
            rc = -1;
    }
}
