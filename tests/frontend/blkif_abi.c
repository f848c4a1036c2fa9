/*
 * blkif_abi.c - translate the ABI-neutral request/response to and from the
 * three ring layouts, and pin those layouts down at compile time.
 */
#include "config.h"

#include <assert.h>
#include <string.h>

#include "blkif_abi.h"

/* --- layout checks: the wire format is not negotiable ------------------- */
#define CHECK_OFF(T, f, off) static_assert(offsetof(T, f) == (off), #T "." #f " offset")
#define CHECK_SIZE(T, sz)    static_assert(sizeof(T) == (sz), #T " size")

CHECK_SIZE(struct blkif_request_segment, 8);
CHECK_SIZE(struct blkif_x86_32_request_segment, 8);
CHECK_SIZE(struct blkif_x86_64_request_segment, 8);

/* x86_32: packed to 4 bytes, id at 4. */
CHECK_OFF(struct blkif_x86_32_request, nr_segments, 1);
CHECK_OFF(struct blkif_x86_32_request, handle, 2);
CHECK_OFF(struct blkif_x86_32_request, id, 4);
CHECK_OFF(struct blkif_x86_32_request, sector_number, 12);
CHECK_OFF(struct blkif_x86_32_request, seg, 20);
CHECK_SIZE(struct blkif_x86_32_request, 108);
CHECK_OFF(struct blkif_x86_32_request_discard, flag, 1);
CHECK_OFF(struct blkif_x86_32_request_discard, id, 4);
CHECK_OFF(struct blkif_x86_32_request_discard, sector_number, 12);
CHECK_OFF(struct blkif_x86_32_request_discard, nr_sectors, 20);
CHECK_OFF(struct blkif_x86_32_request_indirect, indirect_op, 1);
CHECK_OFF(struct blkif_x86_32_request_indirect, nr_segments, 2);
CHECK_OFF(struct blkif_x86_32_request_indirect, id, 4);
CHECK_OFF(struct blkif_x86_32_request_indirect, sector_number, 12);
CHECK_OFF(struct blkif_x86_32_request_indirect, handle, 20);
CHECK_OFF(struct blkif_x86_32_request_indirect, indirect_grefs, 24);
CHECK_OFF(struct blkif_x86_32_response, operation, 8);
CHECK_OFF(struct blkif_x86_32_response, status, 10);
CHECK_SIZE(struct blkif_x86_32_response, 12);
CHECK_OFF(struct blkif_x86_32_sring, ring, 64);
CHECK_SIZE(union blkif_x86_32_sring_entry, 108);

/* x86_64: id padded to 8. */
CHECK_OFF(struct blkif_x86_64_request, nr_segments, 1);
CHECK_OFF(struct blkif_x86_64_request, handle, 2);
CHECK_OFF(struct blkif_x86_64_request, id, 8);
CHECK_OFF(struct blkif_x86_64_request, sector_number, 16);
CHECK_OFF(struct blkif_x86_64_request, seg, 24);
CHECK_SIZE(struct blkif_x86_64_request, 112);
CHECK_OFF(struct blkif_x86_64_request_discard, flag, 1);
CHECK_OFF(struct blkif_x86_64_request_discard, id, 8);
CHECK_OFF(struct blkif_x86_64_request_discard, sector_number, 16);
CHECK_OFF(struct blkif_x86_64_request_discard, nr_sectors, 24);
CHECK_OFF(struct blkif_x86_64_request_indirect, indirect_op, 1);
CHECK_OFF(struct blkif_x86_64_request_indirect, nr_segments, 2);
CHECK_OFF(struct blkif_x86_64_request_indirect, id, 8);
CHECK_OFF(struct blkif_x86_64_request_indirect, sector_number, 16);
CHECK_OFF(struct blkif_x86_64_request_indirect, handle, 24);
CHECK_OFF(struct blkif_x86_64_request_indirect, indirect_grefs, 28);
CHECK_OFF(struct blkif_x86_64_response, operation, 8);
CHECK_OFF(struct blkif_x86_64_response, status, 10);
CHECK_SIZE(struct blkif_x86_64_response, 16);
CHECK_OFF(struct blkif_x86_64_sring, ring, 64);
CHECK_SIZE(union blkif_x86_64_sring_entry, 112);

/* Every request kind must fit in one slot of its ring. */
static_assert(sizeof(struct blkif_x86_32_request_indirect) <= sizeof(union blkif_x86_32_sring_entry), "x86_32 indirect fits");
static_assert(sizeof(struct blkif_x86_64_request_indirect) <= sizeof(union blkif_x86_64_sring_entry), "x86_64 indirect fits");
static_assert(sizeof(struct blkif_request_indirect) <= sizeof(union blkif_sring_entry), "native indirect fits");
static_assert(4096 / sizeof(struct blkif_request_segment) == BF_SEGS_PER_INDIRECT_PAGE, "segments per indirect page");

const char *bf_abi_name(enum bf_abi abi)
{
    switch (abi) {
    case BF_ABI_X86_32: return XEN_IO_PROTO_ABI_X86_32;
    case BF_ABI_X86_64: return XEN_IO_PROTO_ABI_X86_64;
    case BF_ABI_NATIVE: break;
    }
    return XEN_IO_PROTO_ABI_NATIVE;
}

size_t bf_abi_slot_size(enum bf_abi abi)
{
    switch (abi) {
    case BF_ABI_X86_32: return sizeof(union blkif_x86_32_sring_entry);
    case BF_ABI_X86_64: return sizeof(union blkif_x86_64_sring_entry);
    case BF_ABI_NATIVE: break;
    }
    return sizeof(union blkif_sring_entry);
}

unsigned bf_abi_ring_entries(enum bf_abi abi, unsigned nr_pages)
{
    /* Same computation as __CONST_RING_SIZE: round down to a power of 2. */
    size_t n = (nr_pages * 4096u - offsetof(struct blkif_sring, ring)) / bf_abi_slot_size(abi);
    unsigned p = 1;
    while ((size_t)p * 2 <= n)
        p *= 2;
    return p;
}

/*
 * One generator per ABI: the three functions differ only in the struct
 * types, which is the whole point of re-including blkif.h.
 */
#define BF_DEFINE_ABI_OPS(sfx, REQ, DISC, IND, RSP, ENTRY)                       \
static void put_##sfx(void *slot, const struct bf_wire_req *w)                   \
{                                                                                \
    union ENTRY e;                                                               \
    memset(&e, 0, sizeof(e));                                                    \
    if (w->operation == BLKIF_OP_DISCARD) {                                      \
        struct DISC *d = (struct DISC *)&e;                                      \
        d->operation = w->operation;                                             \
        d->flag = w->flag;                                                       \
        d->handle = w->handle;                                                   \
        d->id = w->id;                                                           \
        d->sector_number = w->sector_number;                                     \
        d->nr_sectors = w->nr_sectors;                                           \
    } else if (w->operation == BLKIF_OP_INDIRECT) {                              \
        struct IND *in = (struct IND *)&e;                                       \
        in->operation = w->operation;                                            \
        in->indirect_op = w->indirect_op;                                        \
        in->nr_segments = w->ind_nr_segments;                                    \
        in->id = w->id;                                                          \
        in->sector_number = w->sector_number;                                    \
        in->handle = w->handle;                                                  \
        for (unsigned i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++)      \
            in->indirect_grefs[i] = w->indirect_grefs[i];                        \
    } else {                                                                     \
        struct REQ *r = &e.req;                                                  \
        r->operation = w->operation;                                             \
        r->nr_segments = w->nr_segments;                                         \
        r->handle = w->handle;                                                   \
        r->id = w->id;                                                           \
        r->sector_number = w->sector_number;                                     \
        for (unsigned i = 0; i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++) {          \
            r->seg[i].gref = w->seg[i].gref;                                     \
            r->seg[i].first_sect = w->seg[i].first_sect;                         \
            r->seg[i].last_sect = w->seg[i].last_sect;                           \
        }                                                                        \
    }                                                                            \
    memcpy(slot, &e, sizeof(e));                                                 \
}                                                                                \
static void get_##sfx(const void *slot, struct bf_wire_rsp *out)                 \
{                                                                                \
    struct RSP r;                                                                \
    memcpy(&r, slot, sizeof(r));                                                 \
    out->id = r.id;                                                              \
    out->operation = r.operation;                                                \
    out->status = r.status;                                                      \
}

BF_DEFINE_ABI_OPS(native, blkif_request, blkif_request_discard,
                  blkif_request_indirect, blkif_response, blkif_sring_entry)
BF_DEFINE_ABI_OPS(x86_32, blkif_x86_32_request, blkif_x86_32_request_discard,
                  blkif_x86_32_request_indirect, blkif_x86_32_response,
                  blkif_x86_32_sring_entry)
BF_DEFINE_ABI_OPS(x86_64, blkif_x86_64_request, blkif_x86_64_request_discard,
                  blkif_x86_64_request_indirect, blkif_x86_64_response,
                  blkif_x86_64_sring_entry)

void bf_abi_put_request(enum bf_abi abi, void *slot, const struct bf_wire_req *w)
{
    switch (abi) {
    case BF_ABI_X86_32: put_x86_32(slot, w); return;
    case BF_ABI_X86_64: put_x86_64(slot, w); return;
    case BF_ABI_NATIVE: break;
    }
    put_native(slot, w);
}

void bf_abi_get_response(enum bf_abi abi, const void *slot, struct bf_wire_rsp *r)
{
    switch (abi) {
    case BF_ABI_X86_32: get_x86_32(slot, r); return;
    case BF_ABI_X86_64: get_x86_64(slot, r); return;
    case BF_ABI_NATIVE: break;
    }
    get_native(slot, r);
}
