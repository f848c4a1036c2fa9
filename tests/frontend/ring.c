/*
 * ring.c - the frontend's data path: shared rings, event channels, request
 * slots, grants (persistent or per request), indirect descriptors, and
 * strict validation of every response.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "bf_internal.h"

/* Run `body` with R bound to the queue's typed front ring, so the RING_*
 * macros of io/ring.h work on whichever layout was negotiated. */
#define BF_RING(q, R, body) do {                                             \
    switch ((q)->d->neg.abi) {                                               \
    case BF_ABI_X86_32: { blkif_x86_32_front_ring_t *R = &(q)->r.x32; body; break; } \
    case BF_ABI_X86_64: { blkif_x86_64_front_ring_t *R = &(q)->r.x64; body; break; } \
    case BF_ABI_NATIVE: default: { blkif_front_ring_t *R = &(q)->r.native; body; break; } \
    }                                                                        \
} while (0)

#define ID_SEQ_SHIFT 32
#define ID_QUEUE_SHIFT 16

static uint64_t make_id(const struct bf_queue *q, const struct bf_slot *s)
{
    return ((uint64_t)s->seq << ID_SEQ_SHIFT) | ((uint64_t)q->idx << ID_QUEUE_SHIFT) | s->idx;
}

/* --- guest pages ---------------------------------------------------- */

/* A ring of several pages must be virtually contiguous for io/ring.h; the
 * simulated guest gives consecutive gfns consecutive addresses, so look for
 * a run of n consecutive, contiguous pages among fresh allocations. */
static int alloc_contig(bf_disk *d, unsigned n, uint32_t *out)
{
    xsg_dom *dom = d->h->dom;
    unsigned cap = n + 256, got = 0, run = 0;
    uint32_t *tmp = calloc(cap, sizeof(*tmp));
    if (!tmp)
        return -1;
    while (got < cap && run < n) {
        if (xsg_page_alloc(dom, &tmp[got]) < 0) {
            bf_disk_error(d, "cannot allocate guest memory for a %u-page ring: %s", n, strerror(errno));
            break;
        }
        if (run > 0 && tmp[got] == tmp[got - 1] + 1 &&
            (char *)xsg_page(dom, tmp[got]) == (char *)xsg_page(dom, tmp[got - 1]) + XSG_PAGE_SIZE)
            run++;
        else
            run = 1;
        got++;
    }
    if (run < n) {
        if (got == cap)
            bf_disk_error(d, "no %u contiguous guest pages found for the ring", n);
        for (unsigned i = 0; i < got; i++)
            xsg_page_free(dom, tmp[i]);
        free(tmp);
        return -1;
    }
    for (unsigned i = 0; i < got; i++) {
        if (i >= got - n)
            out[i - (got - n)] = tmp[i];
        else
            xsg_page_free(dom, tmp[i]);
    }
    free(tmp);
    return 0;
}

static int grant(bf_disk *d, uint32_t gfn, bool ro, grant_ref_t *ref)
{
    if (xsg_grant(d->h->dom, d->be_id, gfn, ro, ref) < 0) {
        bf_disk_error(d, "xsg_grant(gfn %u to dom%u) failed: %s", gfn, d->be_id, strerror(errno));
        return -1;
    }
    d->st.grants_granted++;
    return 0;
}

static void remember_leak(bf_disk *d, grant_ref_t ref)
{
    if (d->nleaked == d->leaked_cap) {
        unsigned cap = d->leaked_cap ? d->leaked_cap * 2 : 16;
        grant_ref_t *n = realloc(d->leaked, cap * sizeof(*n));
        if (!n)
            return;
        d->leaked = n;
        d->leaked_cap = cap;
    }
    d->leaked[d->nleaked++] = ref;
}

/* End foreign access; a grant the backend still maps is an error (it must
 * unmap before responding when not persistent, and before Closed). */
static int end_access(bf_disk *d, grant_ref_t ref, bool strict, const char *what)
{
    if (ref == 0)
        return 0;
    if (xsg_end_access(d->h->dom, ref) == 0)
        return 0;
    int e = errno;
    if (strict) {
        d->st.end_access_failures++;
        bf_disk_error(d, "cannot end access to grant %u (%s): %s%s", ref, what, strerror(e),
                      e == EBUSY ? " - the backend still has it mapped" : "");
    }
    if (e == EBUSY)
        remember_leak(d, ref);
    return -1;
}

/* --- queues ------------------------------------------------------------ */

static int queue_setup(bf_disk *d, struct bf_queue *q)
{
    xsg_dom *dom = d->h->dom;
    q->nring = d->neg.ring_pages;
    if (alloc_contig(d, q->nring, q->ring_gfn) < 0)
        return -1;
    q->sring = xsg_page(dom, q->ring_gfn[0]);
    memset(q->sring, 0, (size_t)q->nring * XSG_PAGE_SIZE);
    BF_RING(q, R, SHARED_RING_INIT((__typeof__(R->sring))q->sring);
                  FRONT_RING_INIT(R, (__typeof__(R->sring))q->sring, q->nring * XSG_PAGE_SIZE));
    for (unsigned i = 0; i < q->nring; i++)
        if (grant(d, q->ring_gfn[i], false, &q->ring_gref[i]) < 0)
            return -1;
    if (xsg_evtchn_alloc_unbound(dom, d->be_id, &q->port) < 0) {
        bf_disk_error(d, "cannot allocate an unbound event channel for dom%u: %s", d->be_id, strerror(errno));
        return -1;
    }
    q->port_open = true;
    return 0;
}

int bf_queues_setup(bf_disk *d)
{
    d->nq = d->neg.queues;
    d->q = calloc(d->nq, sizeof(*d->q));
    if (!d->q)
        return -1;
    for (unsigned i = 0; i < d->nq; i++) {
        d->q[i].d = d;
        d->q[i].idx = i;
        if (queue_setup(d, &d->q[i]) < 0)
            return -1;
    }
    unsigned entries = 0;
    BF_RING(&d->q[0], R, entries = RING_SIZE(R));
    d->neg.ring_entries = entries;
    return 0;
}

static int slot_setup(bf_disk *d, struct bf_slot *s)
{
    xsg_dom *dom = d->h->dom;
    unsigned nind = d->neg.indirect ? (d->slot_pages + BF_SEGS_PER_INDIRECT_PAGE - 1) / BF_SEGS_PER_INDIRECT_PAGE : 0;
    s->gfn = calloc(d->slot_pages, sizeof(*s->gfn));
    s->pgref = calloc(d->slot_pages, sizeof(*s->pgref));
    s->req_gref = calloc(d->slot_pages + BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST, sizeof(*s->req_gref));
    if (!s->gfn || !s->pgref || !s->req_gref)
        return -1;
    for (unsigned i = 0; i < d->slot_pages; i++) {
        if (xsg_page_alloc(dom, &s->gfn[i]) < 0) {
            bf_disk_error(d, "out of simulated guest memory for request pages: %s", strerror(errno));
            return -1;
        }
        if (d->neg.persistent && grant(d, s->gfn[i], false, &s->pgref[i]) < 0)
            return -1;
    }
    /* Indirect pages are always allocated (raw mode may use them even when
     * the backend did not offer indirect descriptors). */
    if (nind == 0)
        nind = 1;
    for (unsigned i = 0; i < nind; i++) {
        if (xsg_page_alloc(dom, &s->ind_gfn[i]) < 0) {
            bf_disk_error(d, "out of simulated guest memory for indirect pages: %s", strerror(errno));
            return -1;
        }
        if (d->neg.persistent && grant(d, s->ind_gfn[i], true, &s->ind_pgref[i]) < 0)
            return -1;
    }
    return 0;
}

int bf_queues_slots(bf_disk *d)
{
    unsigned per_q = (d->cfg.qd + d->nq - 1) / d->nq;
    if (per_q == 0)
        per_q = 1;
    if (per_q > d->neg.ring_entries)
        per_q = d->neg.ring_entries;
    for (unsigned i = 0; i < d->nq; i++) {
        struct bf_queue *q = &d->q[i];
        q->nslots = per_q;
        q->slots = calloc(per_q, sizeof(*q->slots));
        q->freelist = calloc(per_q, sizeof(*q->freelist));
        if (!q->slots || !q->freelist)
            return -1;
        for (unsigned j = 0; j < per_q; j++) {
            q->slots[j].idx = j;
            if (slot_setup(d, &q->slots[j]) < 0)
                return -1;
            q->freelist[j] = per_q - 1 - j;
        }
        q->nfree = per_q;
    }
    return 0;
}

static void slot_teardown(bf_disk *d, struct bf_slot *s, bool strict)
{
    xsg_dom *dom = d->h->dom;
    bool keep_pages = false;
    for (unsigned i = 0; i < s->nreq_gref; i++)
        if (end_access(d, s->req_gref[i], strict, "request still in flight at close") < 0)
            keep_pages = true;
    s->nreq_gref = 0;
    for (unsigned i = 0; s->gfn && i < d->slot_pages; i++)
        if (end_access(d, s->pgref[i], strict, "persistent data page") < 0)
            keep_pages = true;
    for (unsigned i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++)
        if (end_access(d, s->ind_pgref[i], strict, "persistent indirect page") < 0)
            keep_pages = true;
    /* A page the backend may still touch must never be reused. */
    if (!keep_pages) {
        for (unsigned i = 0; s->gfn && i < d->slot_pages; i++)
            if (s->gfn[i])
                xsg_page_free(dom, s->gfn[i]);
        for (unsigned i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++)
            if (s->ind_gfn[i])
                xsg_page_free(dom, s->ind_gfn[i]);
    }
    free(s->gfn);
    free(s->pgref);
    free(s->req_gref);
    memset(s, 0, sizeof(*s));
}

void bf_queues_teardown(bf_disk *d, bool strict)
{
    xsg_dom *dom = d->h->dom;
    for (unsigned i = 0; d->q && i < d->nq; i++) {
        struct bf_queue *q = &d->q[i];
        for (unsigned j = 0; q->slots && j < q->nslots; j++)
            slot_teardown(d, &q->slots[j], strict);
        bool keep = false;
        for (unsigned j = 0; j < q->nring; j++)
            if (end_access(d, q->ring_gref[j], strict, "ring page") < 0)
                keep = true;
        if (q->port_open)
            xsg_evtchn_close(dom, q->port);
        for (unsigned j = 0; !keep && j < q->nring; j++)
            if (q->ring_gfn[j])
                xsg_page_free(dom, q->ring_gfn[j]);
        free(q->slots);
        free(q->freelist);
    }
    free(d->q);
    d->q = NULL;
    d->nq = 0;
    d->inflight = 0;
    /* Grants the backend kept after responding: it must have let go of
     * them by now. */
    unsigned n = d->nleaked;
    d->nleaked = 0;
    for (unsigned i = 0; i < n; i++) {
        if (xsg_end_access(dom, d->leaked[i]) < 0 && strict) {
            d->st.end_access_failures++;
            bf_disk_error(d, "grant %u is still mapped by the backend after Closed", d->leaked[i]);
        }
    }
}

void bf_queues_push(bf_disk *d)
{
    for (unsigned i = 0; i < d->nq; i++) {
        struct bf_queue *q = &d->q[i];
        int notify = 0;
        if (!q->need_push || q->dead)
            continue;
        q->need_push = false;
        BF_RING(q, R, q->last_push_old = R->sring->req_prod;
                      RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(R, notify);
                      q->last_push_new = R->req_prod_pvt;
                      q->last_push_req_event = R->sring->req_event);
        q->last_push_notified = notify;
        if (notify) {
            q->kicks++;
            d->st.notifications++;
            d->st.queue_notifications[q->idx]++;
            if (xsg_evtchn_notify(d->h->dom, q->port) < 0)
                bf_disk_error(d, "queue %u: notify on port %u failed: %s", q->idx, q->port, strerror(errno));
        }
    }
}

struct bf_queue *bf_queue_by_port(bf_host *h, evtchn_port_t port)
{
    for (unsigned i = 0; i < h->ndisks; i++) {
        bf_disk *d = h->disks[i];
        for (unsigned j = 0; d && j < d->nq; j++)
            if (d->q[j].port_open && d->q[j].port == port)
                return &d->q[j];
    }
    return NULL;
}

/* --- requests ------------------------------------------------------------ */

static struct bf_queue *pick_queue(bf_disk *d)
{
    for (unsigned n = 0; n < d->nq; n++) {
        struct bf_queue *q = &d->q[(d->next_q + n) % d->nq];
        if (q->nfree > 0 && !q->dead) {
            d->next_q = (q->idx + 1) % d->nq;
            return q;
        }
    }
    return NULL;
}

static struct bf_slot *slot_get(struct bf_queue *q)
{
    struct bf_slot *s = &q->slots[q->freelist[--q->nfree]];
    s->busy = true;
    s->seq++;
    s->nreq_gref = 0;
    s->raw_done = false;
    s->io = NULL;
    return s;
}

static void slot_put(struct bf_queue *q, struct bf_slot *s)
{
    s->busy = false;
    s->io = NULL;
    q->freelist[q->nfree++] = s->idx;
}

/* Grant reference for data page k of the slot for this request. */
static int data_ref(bf_disk *d, struct bf_slot *s, unsigned k, bool ro, grant_ref_t *ref)
{
    if (d->neg.persistent) {
        *ref = s->pgref[k];
        return 0;
    }
    if (grant(d, s->gfn[k], ro, ref) < 0)
        return -1;
    s->req_gref[s->nreq_gref++] = *ref;
    return 0;
}

static int ind_ref(bf_disk *d, struct bf_slot *s, unsigned k, grant_ref_t *ref)
{
    if (d->neg.persistent) {
        *ref = s->ind_pgref[k];
        return 0;
    }
    if (grant(d, s->ind_gfn[k], true, ref) < 0)
        return -1;
    s->req_gref[s->nreq_gref++] = *ref;
    return 0;
}

/* Write the segment list into the slot's indirect pages and reference them
 * from the request. */
static int fill_indirect(bf_disk *d, struct bf_slot *s, struct bf_wire_req *w,
                         const struct blkif_request_segment *segs, unsigned nsegs)
{
    xsg_dom *dom = d->h->dom;
    unsigned npages = (nsegs + BF_SEGS_PER_INDIRECT_PAGE - 1) / BF_SEGS_PER_INDIRECT_PAGE;
    if (npages == 0)
        npages = 1;
    if (npages > BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST)
        npages = BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST;
    for (unsigned p = 0; p < npages; p++) {
        if (!s->ind_gfn[p]) {
            bf_disk_error(d, "indirect page %u not available in this slot", p);
            return -1;
        }
        struct blkif_request_segment *page = xsg_page(dom, s->ind_gfn[p]);
        memset(page, 0, XSG_PAGE_SIZE);
        for (unsigned i = 0; i < BF_SEGS_PER_INDIRECT_PAGE && p * BF_SEGS_PER_INDIRECT_PAGE + i < nsegs; i++)
            page[i] = segs[p * BF_SEGS_PER_INDIRECT_PAGE + i];
        if (ind_ref(d, s, p, &w->indirect_grefs[p]) < 0)
            return -1;
    }
    return 0;
}

static void put_on_ring(struct bf_queue *q, const struct bf_wire_req *w)
{
    bf_disk *d = q->d;
    BF_RING(q, R, bf_abi_put_request(d->neg.abi, RING_GET_REQUEST(R, R->req_prod_pvt), w);
                  R->req_prod_pvt++);
    q->need_push = true;
    d->inflight++;
}

static int check_io(bf_disk *d, const struct bf_io *io, unsigned *nsegs)
{
    unsigned lbs = d->neg.sector_size / 512;
    *nsegs = 0;
    switch (io->op) {
    case BLKIF_OP_FLUSH_DISKCACHE:
        return io->nsect == 0 ? 0 : -1;
    case BLKIF_OP_DISCARD:
        if (!d->feat.discard || io->nsect == 0)
            return -1;
        break;
    case BLKIF_OP_READ:
    case BLKIF_OP_WRITE:
    case BLKIF_OP_WRITE_BARRIER:
        if (io->first_sect > 7 || (io->first_sect % lbs))
            return -1;
        *nsegs = (io->first_sect + io->nsect + 7) / 8;
        if (*nsegs > d->slot_pages)
            return -1;
        if (*nsegs > BLKIF_MAX_SEGMENTS_PER_REQUEST &&
            (io->op == BLKIF_OP_WRITE_BARRIER || !d->neg.indirect))
            return -1;
        if (io->nsect == 0 && io->op != BLKIF_OP_WRITE_BARRIER)
            return -1;
        break;
    default:
        return -1;
    }
    if ((io->sector % lbs) || (io->nsect % lbs) || io->sector + io->nsect > d->neg.sectors)
        return -1;
    return 0;
}

/* Segments of an I/O: segment k is page k of the slot. */
static int build_segments(bf_disk *d, struct bf_slot *s, const struct bf_io *io, unsigned nsegs,
                          struct blkif_request_segment *segs)
{
    xsg_dom *dom = d->h->dom;
    bool ro = io->op != BLKIF_OP_READ;
    uint32_t left = io->nsect;
    const uint8_t *src = io->buf;
    for (unsigned k = 0; k < nsegs; k++) {
        unsigned first = k == 0 ? io->first_sect : 0;
        unsigned n = 8 - first < left ? 8 - first : left;
        segs[k].first_sect = (uint8_t)first;
        segs[k].last_sect = (uint8_t)(first + n - 1);
        if (data_ref(d, s, k, ro, &segs[k].gref) < 0)
            return -1;
        if (io->op != BLKIF_OP_READ && src) {   /* no buf: bench, data untouched */
            memcpy((uint8_t *)xsg_page(dom, s->gfn[k]) + first * 512, src, n * 512u);
            src += n * 512u;
        }
        left -= n;
    }
    return 0;
}

int bf_submit(bf_disk *d, struct bf_io *io)
{
    unsigned nsegs;
    if (!d->connected) {
        errno = ENOTCONN;
        return -1;
    }
    if (check_io(d, io, &nsegs) < 0) {
        bf_disk_error(d, "refusing malformed %s request: sector %" PRIu64 " nsect %u first_sect %u",
                      bf_op_name(io->op), io->sector, io->nsect, io->first_sect);
        errno = EINVAL;
        return -1;
    }
    struct bf_queue *q = pick_queue(d);
    if (!q) {
        errno = EAGAIN;
        return -1;
    }
    struct bf_slot *s = slot_get(q);
    struct bf_wire_req w;
    memset(&w, 0, sizeof(w));
    w.handle = (uint16_t)d->vdev;
    w.sector_number = io->sector;
    w.id = make_id(q, s);
    w.operation = io->op;
    s->expect_op = io->op;
    if (io->op == BLKIF_OP_DISCARD) {
        w.nr_sectors = io->nsect;
        w.flag = io->secure ? BLKIF_DISCARD_SECURE : 0;
    } else if (io->op == BLKIF_OP_FLUSH_DISKCACHE) {
        w.sector_number = 0;
    } else if (nsegs > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
        struct blkif_request_segment *segs = calloc(nsegs, sizeof(*segs));
        int rc = segs ? build_segments(d, s, io, nsegs, segs) : -1;
        w.operation = BLKIF_OP_INDIRECT;
        w.indirect_op = io->op;
        w.ind_nr_segments = (uint16_t)nsegs;
        if (rc == 0)
            rc = fill_indirect(d, s, &w, segs, nsegs);
        free(segs);
        if (rc < 0)
            goto fail;
        d->st.indirect_reqs++;
    } else {
        w.nr_segments = (uint8_t)nsegs;
        if (build_segments(d, s, io, nsegs, w.seg) < 0)
            goto fail;
    }
    io->disk = d;
    s->io = io;
    d->st.reqs[io->op & 7]++;
    put_on_ring(q, &w);
    return 0;
fail:
    for (unsigned i = 0; i < s->nreq_gref; i++)
        end_access(d, s->req_gref[i], true, "unused request grant");
    s->nreq_gref = 0;
    slot_put(q, s);
    errno = EIO;
    return -1;
}

unsigned bf_inflight(const bf_disk *d)
{
    return d->inflight;
}

uint32_t bf_disk_max_sectors(const bf_disk *d, unsigned first_sect)
{
    unsigned pages = d->slot_pages;
    if (!d->neg.indirect && pages > BLKIF_MAX_SEGMENTS_PER_REQUEST)
        pages = BLKIF_MAX_SEGMENTS_PER_REQUEST;
    return pages * 8u - first_sect;
}

/* --- responses --------------------------------------------------------- */

static void count_status(bf_disk *d, int16_t st)
{
    switch (st) {
    case BLKIF_RSP_OKAY: d->st.rsp_okay++; break;
    case BLKIF_RSP_ERROR: d->st.rsp_error++; break;
    case BLKIF_RSP_EOPNOTSUPP: d->st.rsp_eopnotsupp++; break;
    default: d->st.rsp_other++; break;
    }
}

static void copy_out(bf_disk *d, struct bf_slot *s, struct bf_io *io)
{
    uint32_t left = io->nsect;
    uint8_t *dst = io->buf;
    for (unsigned k = 0; dst && left > 0; k++) {    /* no buf: bench, data untouched */
        unsigned first = k == 0 ? io->first_sect : 0;
        unsigned n = 8 - first < left ? 8 - first : left;
        memcpy(dst, (uint8_t *)xsg_page(d->h->dom, s->gfn[k]) + first * 512, n * 512u);
        dst += n * 512u;
        left -= n;
    }
}

static void protocol_error(struct bf_queue *q, const char *fmt, const struct bf_wire_rsp *r, const char *detail)
{
    bf_disk *d = q->d;
    d->st.protocol_errors++;
    bf_disk_error(d, "queue %u: bad response (id 0x%016" PRIx64 " op %u status %d): %s%s%s", q->idx,
                  r->id, r->operation, r->status, fmt, detail ? ": " : "", detail ? detail : "");
    q->dead = true;
}

static int complete_one(struct bf_queue *q, const struct bf_wire_rsp *r)
{
    bf_disk *d = q->d;
    unsigned slot = (unsigned)(r->id & 0xffff);
    unsigned qi = (unsigned)((r->id >> ID_QUEUE_SHIFT) & 0xffff);
    uint32_t seq = (uint32_t)(r->id >> ID_SEQ_SHIFT);
    char why[160];

    if (qi != q->idx || slot >= q->nslots) {
        snprintf(why, sizeof(why), "expected an id of a request on queue %u (slot < %u)", q->idx, q->nslots);
        protocol_error(q, "unexpected id", r, why);
        return -1;
    }
    struct bf_slot *s = &q->slots[slot];
    if (!s->busy || s->seq != seq) {
        snprintf(why, sizeof(why), "slot %u %s (current sequence %u, response carries %u)", slot,
                 s->busy ? "is busy with a newer request" : "has no request in flight", s->seq, seq);
        protocol_error(q, "duplicate or stale response", r, why);
        return -1;
    }
    if (s->io && r->operation != s->expect_op) {
        snprintf(why, sizeof(why), "expected operation %u (%s), got %u", s->expect_op,
                 bf_op_name(s->expect_op), r->operation);
        protocol_error(q, "wrong operation", r, why);
        return -1;
    }
    count_status(d, r->status);
    for (unsigned i = 0; i < s->nreq_gref; i++)
        end_access(d, s->req_gref[i], true, "request grant after its response");
    s->nreq_gref = 0;
    d->inflight--;
    struct bf_io *io = s->io;
    if (!io) {
        s->raw_done = true;
        s->raw_rsp = *r;
        s->busy = false;          /* raw waiter returns it to the free list */
        return 1;
    }
    io->status = r->status;
    if (r->status == BLKIF_RSP_OKAY) {
        if (io->op == BLKIF_OP_READ) {
            copy_out(d, s, io);
            d->st.bytes_read += (uint64_t)io->nsect * 512u;
        } else if (io->op == BLKIF_OP_WRITE || io->op == BLKIF_OP_WRITE_BARRIER) {
            d->st.bytes_written += (uint64_t)io->nsect * 512u;
        }
    }
    slot_put(q, s);
    if (io->done)
        io->done(io);
    return 1;
}

/* Consume every response on the ring, then re-arm rsp_event with the final
 * check so that no response can slip in unnoticed. */
int bf_queue_process(struct bf_queue *q)
{
    bf_disk *d = q->d;
    int n = 0, more;
    if (q->dead)
        return 0;
    do {
        RING_IDX rp = 0, cons = 0;
        BF_RING(q, R, rp = __atomic_load_n(&R->sring->rsp_prod, __ATOMIC_ACQUIRE); cons = R->rsp_cons);
        xen_rmb();
        bool overflow = false;
        BF_RING(q, R, overflow = RING_RESPONSE_PROD_OVERFLOW(R, rp));
        if (overflow) {
            struct bf_wire_rsp none = { 0, 0, 0 };
            char why[128];
            snprintf(why, sizeof(why), "rsp_prod %u is more than a ring (%u) ahead of rsp_cons %u",
                     rp, d->neg.ring_entries, cons);
            protocol_error(q, "response producer overflow", &none, why);
            return -1;
        }
        for (; cons != rp; cons++) {
            struct bf_wire_rsp r;
            BF_RING(q, R, bf_abi_get_response(d->neg.abi, RING_GET_RESPONSE(R, cons), &r));
            BF_RING(q, R, R->rsp_cons = cons + 1);
            if (complete_one(q, &r) < 0)
                return -1;
            n++;
        }
        more = 0;
        BF_RING(q, R, RING_FINAL_CHECK_FOR_RESPONSES(R, more));
    } while (more);
    return n;
}

/* --- raw requests ----------------------------------------------------------- */

int bf_raw_submit(bf_disk *d, const struct bf_raw *raw, struct bf_wire_rsp *rsp, int timeout_ms)
{
    if (!d->connected) {
        errno = ENOTCONN;
        return -1;
    }
    struct bf_queue *q = pick_queue(d);
    if (!q) {
        bf_disk_error(d, "raw request: no free slot");
        return -1;
    }
    struct bf_slot *s = slot_get(q);
    struct bf_wire_req w = raw->w;
    bool ro = raw->readonly_grants;
    if (!raw->keep_id)
        w.id = make_id(q, s);
    s->expect_op = w.operation == BLKIF_OP_INDIRECT ? w.indirect_op : w.operation;
    if (w.operation == BLKIF_OP_INDIRECT) {
        unsigned nsegs = w.ind_nr_segments;
        unsigned cap = BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * BF_SEGS_PER_INDIRECT_PAGE;
        if (nsegs > cap)
            nsegs = cap;
        struct blkif_request_segment *segs = calloc(nsegs ? nsegs : 1, sizeof(*segs));
        if (!segs)
            return -1;
        unsigned backed = raw->data_segs < d->slot_pages ? raw->data_segs : d->slot_pages;
        for (unsigned k = 0; k < nsegs; k++) {
            segs[k] = w.seg[0];
            if (raw->gref_override >= 0)
                segs[k].gref = (grant_ref_t)raw->gref_override;
            else if (k < backed && data_ref(d, s, k, ro, &segs[k].gref) < 0)
                break;
            else if (k >= backed && backed > 0)
                segs[k].gref = segs[k % backed].gref;
        }
        grant_ref_t keep[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
        memcpy(keep, raw->w.indirect_grefs, sizeof(keep));
        int rc = fill_indirect(d, s, &w, segs, nsegs);
        free(segs);
        if (rc < 0)
            return -1;
        /* Caller-chosen indirect grefs (non-zero) win over ours. */
        for (unsigned p = 0; p < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; p++)
            if (keep[p])
                w.indirect_grefs[p] = keep[p];
    } else if (w.operation != BLKIF_OP_DISCARD) {
        unsigned backed = raw->data_segs;
        if (backed > w.nr_segments)
            backed = w.nr_segments;
        if (backed > BLKIF_MAX_SEGMENTS_PER_REQUEST)
            backed = BLKIF_MAX_SEGMENTS_PER_REQUEST;
        if (backed > d->slot_pages)
            backed = d->slot_pages;
        for (unsigned k = 0; k < BLKIF_MAX_SEGMENTS_PER_REQUEST; k++) {
            if (raw->gref_override >= 0)
                w.seg[k].gref = (grant_ref_t)raw->gref_override;
            else if (k < backed && data_ref(d, s, k, ro, &w.seg[k].gref) < 0)
                return -1;
        }
    }
    d->st.reqs[w.operation & 7]++;
    put_on_ring(q, &w);
    bf_disk_log(d, 1, "raw request: op %u nr_segments %u sector %" PRIu64 " id 0x%" PRIx64,
                w.operation, w.operation == BLKIF_OP_INDIRECT ? w.ind_nr_segments : w.nr_segments,
                w.sector_number, w.id);

    uint64_t deadline = bf_now_ms() + (uint64_t)timeout_ms;
    while (!s->raw_done && !q->dead && !bf_interrupted) {
        uint64_t now = bf_now_ms();
        if (now >= deadline)
            return 0;   /* the slot stays busy: the backend may answer later */
        if (bf_host_poll(d->h, (int)(deadline - now)) < 0)
            return -1;
    }
    if (!s->raw_done)
        return -1;
    *rsp = s->raw_rsp;
    s->busy = true;
    slot_put(q, s);
    return 1;
}
