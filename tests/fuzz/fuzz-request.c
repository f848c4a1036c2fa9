/*
 * fuzz-request.c - the request path of a ring (src/request.c) on a shared
 * ring page image and indirect pages the fuzzer writes, in each of the
 * three blkif ABIs.
 *
 * It does what src/ring.c does with a frontend's ring: attach at the
 * published rsp_prod (refusing more outstanding requests than slots),
 * check req_prod against the ring, copy each entry once out of the
 * ring (into a buffer of exactly the entry's size, as the journal does),
 * xbd_req_copy, xbd_req_check, fetch the indirect pages of a checked
 * indirect request (a grant reference names a page of the input; one
 * beyond it fails like a failed grant copy) into a buffer sized as
 * ring.c sizes it, xbd_req_parse_indirect, and answer every request with
 * xbd_rsp_write.  Every allocation has the size ring.c gives it, so ASan
 * sees any access beyond.
 *
 * Beyond memory safety it checks what validation promises: a request
 * answered OKAY lies within the disk, has sane segments, writes nothing
 * to a read-only disk and never uses an operation that is not offered.
 *
 * Input: a 15-byte header, then the ring image, then the indirect pages.
 *   [0] ABI (% 3: native, x86_32, x86_64)   [1] ring order (% 5)
 *   [2] flags: 1 read-only, 2 discard, 4 flush, 8 4 KiB sectors,
 *       16 secure discard
 *   [3..4] max indirect segments offered (% 512; ring.c clamps to 256)
 *   [5..12] disk size in 512-byte sectors
 *   [13..14] bytes of ring image that follow (the rest of the ring is 0)
 */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "request.h"

struct fuzz_ring {
    enum xbd_protocol proto;
    void *sring;                 /* the ring image (page aligned) */
    size_t ring_bytes;
    struct blkif_back_ring br;
    size_t entry_size;
    struct xbd_req_limits lim;
    unsigned seg_cap;
    unsigned char *ind_buf;      /* as alloc_slots sizes it */
    const uint8_t *pages;        /* the "grant table": input pages */
    size_t npages, pages_len;
};

/* fetch_indirect(): the segment list of each indirect page, once. */
static int fetch_indirect(struct fuzz_ring *r, struct xbd_req *q)
{
    size_t left = (size_t)q->nr_segments * sizeof(struct blkif_request_segment);

    for (unsigned p = 0; p < q->nr_indirect_pages; p++) {
        size_t len = left < XBD_PAGE_SIZE ? left : XBD_PAGE_SIZE;
        grant_ref_t g = q->indirect_grefs[p];
        unsigned char *dst = r->ind_buf + (size_t)p * XBD_PAGE_SIZE;

        if (g >= r->npages)
            return BLKIF_RSP_ERROR;     /* GNTST_bad_gntref */
        /* The last input page may be short: the rest reads as zeros. */
        size_t off = (size_t)g * XBD_PAGE_SIZE, have = r->pages_len - off;
        memset(dst, 0, len);
        memcpy(dst, r->pages + off, have < len ? have : len);
        left -= len;
    }
    return xbd_req_parse_indirect(q, r->ind_buf, &r->lim);
}

static void check_segments(const struct xbd_req *q, const struct xbd_backing *b)
{
    unsigned align = b->sector_size / 512u;
    uint64_t total = 0;

    for (unsigned i = 0; i < q->nr_segments; i++) {
        const struct xbd_seg *s = &q->seg[i];

        xbd_fuzz_assert(s->first_sect <= s->last_sect && s->last_sect <= 7);
        xbd_fuzz_assert(s->first_sect % align == 0 && (s->last_sect + 1u) % align == 0);
        total += s->last_sect - s->first_sect + 1u;
    }
    xbd_fuzz_assert(total == q->nr_sectors);
}

/* What an OKAY from validation promises to the code that executes it. */
static void check_okay(const struct fuzz_ring *r, const struct xbd_req *q)
{
    const struct xbd_backing *b = r->lim.backing;
    uint8_t op = q->indirect ? q->op : q->wire_op;

    if (q->wire_op == BLKIF_OP_DISCARD) {
        xbd_fuzz_assert(b->discard && !b->readonly);
    } else {
        xbd_fuzz_assert(op == BLKIF_OP_READ || op == BLKIF_OP_WRITE ||
                        op == BLKIF_OP_WRITE_BARRIER || op == BLKIF_OP_FLUSH_DISKCACHE);
        xbd_fuzz_assert(q->nr_segments <= r->seg_cap);
        xbd_fuzz_assert(q->indirect ? q->nr_segments <= r->lim.max_indirect_segs
                                    : q->nr_segments <= BLKIF_MAX_SEGMENTS_PER_REQUEST);
        if (op == BLKIF_OP_READ || op == BLKIF_OP_WRITE)
            xbd_fuzz_assert(q->nr_segments >= 1);
        /* Data to write; empty flushes and barriers are served on any disk
         * (nothing to flush is OKAY, never EOPNOTSUPP). */
        if (op != BLKIF_OP_READ && q->nr_segments)
            xbd_fuzz_assert(!b->readonly);
        check_segments(q, b);
    }
    if (q->nr_sectors) {
        xbd_fuzz_assert(q->sector_number <= b->sectors);
        xbd_fuzz_assert(q->nr_sectors <= b->sectors - q->sector_number);
        xbd_fuzz_assert(q->sector_number % (b->sector_size / 512u) == 0);
    }
}

/* dispatch(): validation only (execution is the I/O engine's). */
static int16_t dispatch(struct fuzz_ring *r, struct xbd_req *q)
{
    int st = xbd_req_check(q, &r->lim);

    if (st == BLKIF_RSP_OKAY && q->indirect)
        st = fetch_indirect(r, q);
    xbd_fuzz_assert(st == BLKIF_RSP_OKAY || st == BLKIF_RSP_ERROR ||
                    st == BLKIF_RSP_EOPNOTSUPP);
    if (st == BLKIF_RSP_OKAY)
        check_okay(r, q);
    return (int16_t)st;
}

/* respond(): field by field into the slot, then publish. */
static void respond(struct fuzz_ring *r, const struct xbd_req *q, int16_t st)
{
    struct blkif_back_ring *c = &r->br;
    RING_IDX j = c->rsp_prod_pvt;
    int notify;

    xbd_rsp_write(xbd_ring_entry(r->sring, r->proto, c->nr_ents, j), r->proto,
                  q->id, q->rsp_op, st);
    c->rsp_prod_pvt = j + 1;
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(c, notify);
    (void)notify;
}

/* ring_process(), with every request answered at once. */
static void ring_process(struct fuzz_ring *r, struct xbd_req *q, unsigned char *copy)
{
    struct blkif_back_ring *c = &r->br;
    int more;

    for (;;) {
        RING_IDX rc = c->req_cons;
        RING_IDX rp = __atomic_load_n(&c->sring->req_prod, __ATOMIC_RELAXED);

        if (RING_REQUEST_PROD_OVERFLOW(c, rp))
            return;             /* ring_fatal */
        if (rp - rc > RING_SIZE(c))
            return;             /* ring_fatal */
        while (rc != rp) {
            int16_t st;

            xbd_fuzz_assert(!RING_REQUEST_CONS_OVERFLOW(c, rc));
            /* The single copy of the entry (the journal's record). */
            memcpy(copy, xbd_ring_entry(r->sring, r->proto, c->nr_ents, rc), r->entry_size);
            xbd_req_copy(q, copy, r->proto);
            c->req_cons = ++rc;
            st = dispatch(r, q);
            respond(r, q, st);
        }
        RING_FINAL_CHECK_FOR_REQUESTS(c, more);
        if (!more)
            break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct xbd_fuzz_in in = { data, size };
    struct xbd_backing bk = { .fd = -1 };
    struct fuzz_ring r = { 0 };
    struct xbd_req q = { 0 };
    unsigned char *copy = NULL;
    unsigned order, flags, max_ind;
    size_t img;

    r.proto = (enum xbd_protocol)(xbd_fuzz_take(&in, 1) % 3);
    order = (unsigned)(xbd_fuzz_take(&in, 1) % (XBD_MAX_RING_ORDER + 1));
    flags = (unsigned)xbd_fuzz_take(&in, 1);
    max_ind = (unsigned)(xbd_fuzz_take(&in, 2) % 512);
    bk.sectors = xbd_fuzz_take(&in, 8);
    img = (size_t)xbd_fuzz_take(&in, 2);
    bk.readonly = flags & 1;
    bk.discard = flags & 2;
    bk.flush = flags & 4;
    bk.sector_size = flags & 8 ? 4096 : 512;
    bk.physical_sector_size = bk.sector_size;
    bk.discard_secure = flags & 16;

    /* xbd_ring_start() / alloc_slots(). */
    r.lim.backing = &bk;
    r.lim.max_indirect_segs = max_ind > XBD_MAX_INDIRECT_SEGS ? XBD_MAX_INDIRECT_SEGS : max_ind;
    r.seg_cap = r.lim.max_indirect_segs > BLKIF_MAX_SEGMENTS_PER_REQUEST ?
                r.lim.max_indirect_segs : BLKIF_MAX_SEGMENTS_PER_REQUEST;
    r.ring_bytes = (size_t)XBD_PAGE_SIZE << order;
    r.entry_size = xbd_ring_entry_size(r.proto);
    if (posix_memalign(&r.sring, XBD_PAGE_SIZE, r.ring_bytes))
        abort();
    memset(r.sring, 0, r.ring_bytes);
    if (img > r.ring_bytes)
        img = r.ring_bytes;
    if (img > in.left)
        img = in.left;
    memcpy(r.sring, in.p, img);
    in.p += img;
    in.left -= img;
    r.pages = in.p;
    r.pages_len = in.left;
    r.npages = (in.left + XBD_PAGE_SIZE - 1) / XBD_PAGE_SIZE;
    q.seg_cap = r.seg_cap;
    q.seg = malloc(r.seg_cap * sizeof(*q.seg));
    copy = malloc(r.entry_size);
    if (r.lim.max_indirect_segs)
        r.ind_buf = malloc((size_t)XBD_PAGE_SIZE *
                           ((r.lim.max_indirect_segs + XBD_SEGS_PER_INDIRECT_PAGE - 1) /
                            XBD_SEGS_PER_INDIRECT_PAGE));
    if (!q.seg || !copy || (r.lim.max_indirect_segs && !r.ind_buf))
        abort();

    /* attach_ring(): take over at the published rsp_prod. */
    struct blkif_sring *s = r.sring;
    RING_IDX rsp = __atomic_load_n(&s->rsp_prod, __ATOMIC_RELAXED);
    RING_IDX req = __atomic_load_n(&s->req_prod, __ATOMIC_RELAXED);
    unsigned nr_ents = xbd_ring_nr_ents(r.proto, r.ring_bytes);

    if (req - rsp <= nr_ents) {
        BACK_RING_ATTACH(&r.br, s, rsp, r.ring_bytes);
        r.br.nr_ents = nr_ents;
        xbd_fuzz_assert((size_t)nr_ents * r.entry_size + 64 <= r.ring_bytes);
        ring_process(&r, &q, copy);
    }
    free(r.ind_buf);
    free(copy);
    free(q.seg);
    free(r.sring);
    return 0;
}
