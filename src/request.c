/*
 * request.c - translation of the three blkif ring ABIs into one internal
 * request, and validation of every field of it.
 *
 * Everything the guest wrote is hostile: the slot is read once (volatile,
 * as Xen's RING_COPY_REQUEST does), and only the private copy is looked at
 * afterwards.  Validation answers BLKIF_RSP_EOPNOTSUPP for operations we do
 * not offer and BLKIF_RSP_ERROR for malformed requests.
 */
#include "config.h"

#include <string.h>
#include "request.h"

size_t xbd_ring_entry_size(enum xbd_protocol proto)
{
    switch (proto) {
    case XBD_PROTO_X86_32:
        return sizeof(union blkif_x86_32_sring_entry);
    case XBD_PROTO_X86_64:
        return sizeof(union blkif_x86_64_sring_entry);
    case XBD_PROTO_NATIVE:
    default:
        return sizeof(union blkif_sring_entry);
    }
}

unsigned xbd_ring_nr_ents(enum xbd_protocol proto, size_t bytes)
{
    switch (proto) {
    case XBD_PROTO_X86_32:
        return XBD_RING_NR_ENTS(blkif_x86_32, bytes);
    case XBD_PROTO_X86_64:
        return XBD_RING_NR_ENTS(blkif_x86_64, bytes);
    case XBD_PROTO_NATIVE:
    default:
        return XBD_RING_NR_ENTS(blkif, bytes);
    }
}

void *xbd_ring_entry(void *sring, enum xbd_protocol proto, unsigned nr_ents,
                     unsigned idx)
{
    unsigned i = idx & (nr_ents - 1);

    switch (proto) {
    case XBD_PROTO_X86_32:
        return &((struct blkif_x86_32_sring *)sring)->ring[i];
    case XBD_PROTO_X86_64:
        return &((struct blkif_x86_64_sring *)sring)->ring[i];
    case XBD_PROTO_NATIVE:
    default:
        return &((struct blkif_sring *)sring)->ring[i];
    }
}

/*
 * The three ABIs differ only in padding; these macros translate one
 * private copy <w> of a wire request (of whichever struct type) into <req>.
 * They are macros because the wire types are distinct but field-compatible.
 */
#define XBD_TRANSLATE_RW(req, w) do {                                     \
    unsigned i_, n_ = (w).nr_segments;                                    \
    (req)->id = (w).id;                                                   \
    (req)->nr_segments = (w).nr_segments;                                 \
    (req)->sector_number = (w).sector_number;                             \
    if (n_ > BLKIF_MAX_SEGMENTS_PER_REQUEST)                              \
        n_ = 0; /* refused by xbd_req_check() */                          \
    if (n_ > (req)->seg_cap)                                              \
        n_ = 0;                                                           \
    for (i_ = 0; i_ < n_; i_++) {                                         \
        (req)->seg[i_].gref = (w).seg[i_].gref;                           \
        (req)->seg[i_].first_sect = (w).seg[i_].first_sect;               \
        (req)->seg[i_].last_sect = (w).seg[i_].last_sect;                 \
    }                                                                     \
} while (0)

#define XBD_TRANSLATE_DISCARD(req, w) do {                                \
    (req)->id = (w).id;                                                   \
    (req)->discard_flag = (w).flag;                                       \
    (req)->sector_number = (w).sector_number;                             \
    (req)->nr_sectors = (w).nr_sectors;                                   \
} while (0)

#define XBD_TRANSLATE_INDIRECT(req, w) do {                               \
    unsigned i_;                                                          \
    (req)->id = (w).id;                                                   \
    (req)->op = (w).indirect_op;                                          \
    (req)->nr_segments = (w).nr_segments;                                 \
    (req)->sector_number = (w).sector_number;                             \
    for (i_ = 0; i_ < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i_++)         \
        (req)->indirect_grefs[i_] = (w).indirect_grefs[i_];               \
} while (0)

/* Translate a private copy of one entry; <T> is the ABI's name prefix. */
#define XBD_TRANSLATE(req, copy, T) do {                                  \
    struct T##_request rw_;                                               \
    struct T##_request_discard d_;                                        \
    struct T##_request_indirect in_;                                      \
    memcpy(&rw_, &(copy), sizeof(rw_));                                   \
    (req)->wire_op = rw_.operation;                                       \
    (req)->op = rw_.operation;                                            \
    switch (rw_.operation) {                                              \
    case BLKIF_OP_DISCARD:                                                \
        memcpy(&d_, &(copy), sizeof(d_));                                 \
        XBD_TRANSLATE_DISCARD(req, d_);                                   \
        break;                                                            \
    case BLKIF_OP_INDIRECT:                                               \
        memcpy(&in_, &(copy), sizeof(in_));                               \
        (req)->indirect = true;                                           \
        XBD_TRANSLATE_INDIRECT(req, in_);                                 \
        break;                                                            \
    default:                                                              \
        XBD_TRANSLATE_RW(req, rw_);                                       \
        break;                                                            \
    }                                                                     \
} while (0)

void xbd_req_copy(struct xbd_req *req, const void *slot, enum xbd_protocol proto)
{
    struct xbd_seg *seg = req->seg;
    unsigned cap = req->seg_cap;

    memset(req, 0, sizeof(*req));
    req->seg = seg;
    req->seg_cap = cap;

    /* The single read of guest memory: a volatile whole-entry copy, so the
     * compiler can neither skip it nor re-read the slot later. */
    switch (proto) {
    case XBD_PROTO_X86_32: {
        union blkif_x86_32_sring_entry e;
        e = *(const volatile union blkif_x86_32_sring_entry *)slot;
        XBD_TRANSLATE(req, e, blkif_x86_32);
        break;
    }
    case XBD_PROTO_X86_64: {
        union blkif_x86_64_sring_entry e;
        e = *(const volatile union blkif_x86_64_sring_entry *)slot;
        XBD_TRANSLATE(req, e, blkif_x86_64);
        break;
    }
    case XBD_PROTO_NATIVE:
    default: {
        union blkif_sring_entry e;
        e = *(const volatile union blkif_sring_entry *)slot;
        XBD_TRANSLATE(req, e, blkif);
        break;
    }
    }

    /* What to echo: Linux blkfront expects indirect_op for an indirect
     * request, the operation itself otherwise. */
    req->rsp_op = req->wire_op;
    if (req->indirect &&
        (req->op == BLKIF_OP_READ || req->op == BLKIF_OP_WRITE))
        req->rsp_op = req->op;
}

/* Sectors per logical block: sector numbers are always 512-byte units but
 * must be aligned to sector-size. */
static unsigned spb(const struct xbd_backing *b)
{
    unsigned s = b->sector_size / 512u;

    return s ? s : 1;
}

/* Check one segment; returns its length in 512-byte sectors, 0 if bad. */
static unsigned seg_check(const struct xbd_seg *s, unsigned align)
{
    if (s->last_sect > 7 || s->first_sect > s->last_sect)
        return 0;
    if (s->first_sect % align || (s->last_sect + 1u) % align)
        return 0;
    return s->last_sect - s->first_sect + 1u;
}

/* Sum the segments and check the resulting range against the device. */
static int segs_check(struct xbd_req *req, const struct xbd_backing *b)
{
    unsigned align = spb(b);
    uint64_t total = 0;
    unsigned i;

    for (i = 0; i < req->nr_segments; i++) {
        unsigned n = seg_check(&req->seg[i], align);

        if (!n)
            return BLKIF_RSP_ERROR;
        total += n;
    }
    req->nr_sectors = total;
    /* An empty flush or barrier touches no sector; its sector_number is
     * not used (blkfront leaves whatever the block layer had there). */
    if (total == 0)
        return BLKIF_RSP_OKAY;
    if (req->sector_number % align)
        return BLKIF_RSP_ERROR;
    if (req->sector_number > b->sectors || total > b->sectors - req->sector_number)
        return BLKIF_RSP_ERROR;
    return BLKIF_RSP_OKAY;
}

static int discard_check(const struct xbd_req *req, const struct xbd_backing *b)
{
    unsigned align = spb(b);

    if (!b->discard)
        return BLKIF_RSP_EOPNOTSUPP;
    if (b->readonly)
        return BLKIF_RSP_ERROR;
    if (req->sector_number % align || req->nr_sectors % align)
        return BLKIF_RSP_ERROR;
    if (req->sector_number > b->sectors ||
        req->nr_sectors > b->sectors - req->sector_number)
        return BLKIF_RSP_ERROR;
    return BLKIF_RSP_OKAY;
}

static int indirect_check(struct xbd_req *req, const struct xbd_req_limits *lim)
{
    unsigned n = req->nr_segments;

    if (!lim->max_indirect_segs)
        return BLKIF_RSP_EOPNOTSUPP;
    if (req->op != BLKIF_OP_READ && req->op != BLKIF_OP_WRITE)
        return BLKIF_RSP_ERROR;
    if (n < 1 || n > lim->max_indirect_segs || n > req->seg_cap)
        return BLKIF_RSP_ERROR;
    req->nr_indirect_pages = (n + XBD_SEGS_PER_INDIRECT_PAGE - 1) /
                             XBD_SEGS_PER_INDIRECT_PAGE;
    if (req->nr_indirect_pages > BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST)
        return BLKIF_RSP_ERROR;
    if (req->op == BLKIF_OP_WRITE && lim->backing->readonly)
        return BLKIF_RSP_ERROR;
    return BLKIF_RSP_OKAY;
}

int xbd_req_check(struct xbd_req *req, const struct xbd_req_limits *lim)
{
    const struct xbd_backing *b = lim->backing;

    switch (req->wire_op) {
    case BLKIF_OP_READ:
    case BLKIF_OP_WRITE:
        if (req->nr_segments < 1)
            return BLKIF_RSP_ERROR;
        break;
    case BLKIF_OP_WRITE_BARRIER:
    case BLKIF_OP_FLUSH_DISKCACHE:
        /* May carry data (blkfront sends FUA writes this way) or none.
         * Served even where nothing needs flushing (b->flush false): a
         * frontend answered EOPNOTSUPP may drop the data (Linux blkfront
         * completes the write as done, without it). */
        break;
    case BLKIF_OP_DISCARD:
        return discard_check(req, b);
    case BLKIF_OP_INDIRECT:
        return indirect_check(req, lim);
    default:
        return BLKIF_RSP_EOPNOTSUPP;
    }
    if (req->nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST)
        return BLKIF_RSP_ERROR;
    /* Data to write; an empty flush of a read-only disk is answered OKAY
     * (nothing was written through it). */
    if (req->op != BLKIF_OP_READ && req->nr_segments && b->readonly)
        return BLKIF_RSP_ERROR;
    return segs_check(req, b);
}

int xbd_req_parse_indirect(struct xbd_req *req, const void *pages,
                           const struct xbd_req_limits *lim)
{
    const unsigned char *p = pages;
    unsigned i;

    for (i = 0; i < req->nr_segments; i++) {
        struct blkif_request_segment s;

        memcpy(&s, p + (size_t)i * sizeof(s), sizeof(s));
        req->seg[i].gref = s.gref;
        req->seg[i].first_sect = s.first_sect;
        req->seg[i].last_sect = s.last_sect;
    }
    return segs_check(req, lim->backing);
}

void xbd_rsp_write(void *slot, enum xbd_protocol proto,
                   uint64_t id, uint8_t op, int16_t status)
{
    switch (proto) {
    case XBD_PROTO_X86_32: {
        struct blkif_x86_32_response *r = slot;
        r->id = id;
        r->operation = op;
        r->status = status;
        break;
    }
    case XBD_PROTO_X86_64: {
        struct blkif_x86_64_response *r = slot;
        r->id = id;
        r->operation = op;
        r->status = status;
        break;
    }
    case XBD_PROTO_NATIVE:
    default: {
        struct blkif_response *r = slot;
        r->id = id;
        r->operation = op;
        r->status = status;
        break;
    }
    }
}
