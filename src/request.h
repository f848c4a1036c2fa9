/*
 * request.h - one internal form of a blkif request, whatever ring ABI the
 * frontend speaks, and its validation.
 *
 * The ring slot is guest memory that the guest may rewrite at any time
 * (XSA-155): xbd_req_copy() reads it exactly once into a private struct,
 * and everything after that works on the private copy only.
 */
#ifndef XENBLKD_REQUEST_H
#define XENBLKD_REQUEST_H

#include <stdbool.h>
#include <stdint.h>
#include "blkif_abi.h"
#include "xenblkd/dataplane.h"

struct xbd_seg {
    grant_ref_t gref;
    uint8_t first_sect, last_sect;
};

struct xbd_req {
    uint64_t id;
    uint8_t wire_op;          /* operation as read from the ring */
    uint8_t op;               /* effective op: indirect_op for INDIRECT */
    uint8_t rsp_op;           /* operation echoed in the response */
    uint8_t discard_flag;     /* BLKIF_DISCARD_SECURE or 0 */
    bool indirect;
    uint16_t nr_segments;     /* as claimed by the frontend */
    uint64_t sector_number;   /* 512-byte units */
    uint64_t nr_sectors;      /* DISCARD: as claimed; R/W: sum of segments */
    unsigned nr_indirect_pages;
    grant_ref_t indirect_grefs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
    /* Direct requests: filled by xbd_req_copy().  Indirect ones: filled
     * from the indirect pages by xbd_req_parse_indirect().  Room for
     * max(BLKIF_MAX_SEGMENTS_PER_REQUEST, max_indirect_segs) entries. */
    struct xbd_seg *seg;
    unsigned seg_cap;
};

/* What a request is checked against. */
struct xbd_req_limits {
    const struct xbd_backing *backing;
    unsigned max_indirect_segs;   /* 0: indirect not offered */
};

/* Size of one ring entry (request/response union) in each ABI. */
size_t xbd_ring_entry_size(enum xbd_protocol proto);
/* Number of entries of a shared ring of <bytes> in each ABI. */
unsigned xbd_ring_nr_ents(enum xbd_protocol proto, size_t bytes);
/* Entry <idx> of shared ring <sring> of <nr_ents> entries in ABI <proto>. */
void *xbd_ring_entry(void *sring, enum xbd_protocol proto, unsigned nr_ents,
                     unsigned idx);

/* Copy the request in <slot> (a ring entry of ABI <proto>) once, and
 * translate it.  Direct segments beyond nr_segments are not copied; a
 * claimed count above 11 is kept as is for xbd_req_check() to refuse. */
void xbd_req_copy(struct xbd_req *req, const void *slot, enum xbd_protocol proto);

/* Check everything that can be checked before indirect pages are read:
 * returns BLKIF_RSP_OKAY, BLKIF_RSP_ERROR or BLKIF_RSP_EOPNOTSUPP.  For
 * a direct READ/WRITE/FLUSH/BARRIER it also checks the segments and the
 * sector range, so OKAY means the request may be executed. */
int xbd_req_check(struct xbd_req *req, const struct xbd_req_limits *lim);

/* Indirect requests: <pages> is a private copy of the first
 * nr_indirect_pages indirect pages, concatenated (only the first
 * nr_segments * 8 bytes are used).  Fills req->seg and checks segments
 * and sector range; returns BLKIF_RSP_OKAY or BLKIF_RSP_ERROR. */
int xbd_req_parse_indirect(struct xbd_req *req, const void *pages,
                           const struct xbd_req_limits *lim);

/* Write a response into ring entry <slot> field by field (XSA-216: no
 * padding or other daemon memory ever reaches the guest). */
void xbd_rsp_write(void *slot, enum xbd_protocol proto,
                   uint64_t id, uint8_t op, int16_t status);

/* Bytes of data a checked READ/WRITE request transfers. */
static inline uint64_t xbd_req_bytes(const struct xbd_req *req)
{
    return req->nr_sectors * 512u;
}

#endif
