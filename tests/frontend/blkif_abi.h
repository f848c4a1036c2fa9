/*
 * blkif_abi.h - the three blkif ring layouts a frontend may speak.
 *
 * The structures are not written by hand: Xen's own io/blkif.h is included
 * three times.  Once as is (native), then twice more with every tag renamed
 * and under a different #pragma pack, which reproduces what an i386 or an
 * x86_64 guest compiler lays out ("x86_32-abi" is 4-byte aligned, so `id`
 * sits at offset 4; "x86_64-abi" pads so that `id` sits at offset 8).
 * blkif_abi.c static_asserts every offset the wire depends on.
 *
 * The rest of the frontend works on one ABI-neutral request (bf_wire_req)
 * and response (bf_wire_rsp); only bf_abi_put_request()/bf_abi_get_response()
 * touch the ring slots.
 */
#ifndef BF_BLKIF_ABI_H
#define BF_BLKIF_ABI_H

#include <stddef.h>
#include <stdint.h>

/* ring.h wants the includer to provide the memory barriers (with the
 * default interface version it maps xen_mb() to mb()).  The peer is another
 * process on the same machine, so full hardware fences suffice. */
#ifndef mb
#define mb()  __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define rmb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define wmb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

/* --- native layout: whatever this compiler produces ---------------------- */
#include <xen/io/blkif.h>
#include <xen/io/protocols.h>

/* --- x86_32-abi: same header, renamed, 4-byte packing -------------------- */
#define blkif_request             blkif_x86_32_request
#define blkif_request_t           blkif_x86_32_request_t
#define blkif_request_segment     blkif_x86_32_request_segment
#define blkif_request_discard     blkif_x86_32_request_discard
#define blkif_request_discard_t   blkif_x86_32_request_discard_t
#define blkif_request_indirect    blkif_x86_32_request_indirect
#define blkif_request_indirect_t  blkif_x86_32_request_indirect_t
#define blkif_response            blkif_x86_32_response
#define blkif_response_t          blkif_x86_32_response_t
#define blkif_sring_entry         blkif_x86_32_sring_entry
#define blkif_sring               blkif_x86_32_sring
#define blkif_sring_t             blkif_x86_32_sring_t
#define blkif_front_ring          blkif_x86_32_front_ring
#define blkif_front_ring_t        blkif_x86_32_front_ring_t
#define blkif_back_ring           blkif_x86_32_back_ring
#define blkif_back_ring_t         blkif_x86_32_back_ring_t
#undef __XEN_PUBLIC_IO_BLKIF_H__
#pragma pack(push, 4)
#include <xen/io/blkif.h>
#pragma pack(pop)
#undef blkif_request
#undef blkif_request_t
#undef blkif_request_segment
#undef blkif_request_discard
#undef blkif_request_discard_t
#undef blkif_request_indirect
#undef blkif_request_indirect_t
#undef blkif_response
#undef blkif_response_t
#undef blkif_sring_entry
#undef blkif_sring
#undef blkif_sring_t
#undef blkif_front_ring
#undef blkif_front_ring_t
#undef blkif_back_ring
#undef blkif_back_ring_t

/* --- x86_64-abi: same header, renamed, 8-byte alignment ------------------ */
#define blkif_request             blkif_x86_64_request
#define blkif_request_t           blkif_x86_64_request_t
#define blkif_request_segment     blkif_x86_64_request_segment
#define blkif_request_discard     blkif_x86_64_request_discard
#define blkif_request_discard_t   blkif_x86_64_request_discard_t
#define blkif_request_indirect    blkif_x86_64_request_indirect
#define blkif_request_indirect_t  blkif_x86_64_request_indirect_t
#define blkif_response            blkif_x86_64_response
#define blkif_response_t          blkif_x86_64_response_t
#define blkif_sring_entry         blkif_x86_64_sring_entry
#define blkif_sring               blkif_x86_64_sring
#define blkif_sring_t             blkif_x86_64_sring_t
#define blkif_front_ring          blkif_x86_64_front_ring
#define blkif_front_ring_t        blkif_x86_64_front_ring_t
#define blkif_back_ring           blkif_x86_64_back_ring
#define blkif_back_ring_t         blkif_x86_64_back_ring_t
#undef __XEN_PUBLIC_IO_BLKIF_H__
#pragma pack(push, 8)
#include <xen/io/blkif.h>
#pragma pack(pop)
#undef blkif_request
#undef blkif_request_t
#undef blkif_request_segment
#undef blkif_request_discard
#undef blkif_request_discard_t
#undef blkif_request_indirect
#undef blkif_request_indirect_t
#undef blkif_response
#undef blkif_response_t
#undef blkif_sring_entry
#undef blkif_sring
#undef blkif_sring_t
#undef blkif_front_ring
#undef blkif_front_ring_t
#undef blkif_back_ring
#undef blkif_back_ring_t

/* Which layout the ring uses.  BF_ABI_NATIVE is what this compiler makes of
 * blkif.h (the x86_64 layout on amd64). */
enum bf_abi { BF_ABI_NATIVE = 0, BF_ABI_X86_32, BF_ABI_X86_64 };

/* Segments per indirect page (4096 / sizeof(struct blkif_request_segment)). */
#define BF_SEGS_PER_INDIRECT_PAGE 512u

/* ABI-neutral request.  Which fields are used depends on `operation`:
 * DISCARD uses flag + nr_sectors, INDIRECT uses indirect_op +
 * ind_nr_segments + indirect_grefs, anything else (including garbage ops
 * sent on purpose by raw mode) uses nr_segments + seg[]. */
struct bf_wire_req {
    uint8_t  operation;
    uint8_t  nr_segments;
    uint16_t handle;
    uint64_t id;
    uint64_t sector_number;
    struct blkif_request_segment seg[BLKIF_MAX_SEGMENTS_PER_REQUEST];
    uint8_t  flag;                 /* discard */
    uint64_t nr_sectors;           /* discard */
    uint8_t  indirect_op;          /* indirect */
    uint16_t ind_nr_segments;      /* indirect */
    grant_ref_t indirect_grefs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
};

struct bf_wire_rsp {
    uint64_t id;
    uint8_t  operation;
    int16_t  status;
};

const char *bf_abi_name(enum bf_abi abi);
/* Size of one ring slot (union of request and response) for the ABI. */
size_t bf_abi_slot_size(enum bf_abi abi);
/* Ring entries in a ring of nr_pages pages (power of two, as RING_SIZE). */
unsigned bf_abi_ring_entries(enum bf_abi abi, unsigned nr_pages);
/* Write the request into one ring slot: the whole slot is built locally
 * and copied once, so no stale bytes of a previous request survive. */
void bf_abi_put_request(enum bf_abi abi, void *slot, const struct bf_wire_req *w);
/* Copy a response out of one ring slot (read the shared slot once). */
void bf_abi_get_response(enum bf_abi abi, const void *slot, struct bf_wire_rsp *r);

#endif
