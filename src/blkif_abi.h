/*
 * blkif_abi.h - the three wire layouts of the blkif ring.
 *
 * A frontend may speak the native, the x86_32 (packed to 4 bytes) or the
 * x86_64 (id aligned to 8) layout.  We never hand-write the wire structs:
 * Xen's own blkif.h is included once more per foreign ABI, with every tag
 * renamed and the packing of that ABI in force, and the results are pinned
 * with static asserts on sizes and offsets so that a compiler or header
 * change cannot silently move a field.
 */
#ifndef XENBLKD_BLKIF_ABI_H
#define XENBLKD_BLKIF_ABI_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/grant_table.h>

#include <xen/io/ring.h>
#include <xen/io/blkif.h>

/*
 * ring.h's macros use xen_mb()/xen_rmb()/xen_wmb(), which it maps to the
 * kernel's mb()/rmb()/wmb() for the legacy interface version userspace
 * gets.  The ring is shared with another domain (or process) on any CPU,
 * so these must be real fences: (re)define them, after ring.h, since the
 * macros are only expanded where RING_* are used.
 */
#undef xen_mb
#undef xen_rmb
#undef xen_wmb
#define xen_mb()  __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define xen_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define xen_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)

/* --- x86_32: packed to 4 bytes, with the i386-only pad of the indirect
 * request. --------------------------------------------------------------- */
#define blkif_request_segment    blkif_x86_32_request_segment
#define blkif_request            blkif_x86_32_request
#define blkif_request_t          blkif_x86_32_request_t
#define blkif_request_discard    blkif_x86_32_request_discard
#define blkif_request_discard_t  blkif_x86_32_request_discard_t
#define blkif_request_indirect   blkif_x86_32_request_indirect
#define blkif_request_indirect_t blkif_x86_32_request_indirect_t
#define blkif_response           blkif_x86_32_response
#define blkif_response_t         blkif_x86_32_response_t
#define blkif_sring_entry        blkif_x86_32_sring_entry
#define blkif_sring              blkif_x86_32_sring
#define blkif_sring_t            blkif_x86_32_sring_t
#define blkif_front_ring         blkif_x86_32_front_ring
#define blkif_front_ring_t       blkif_x86_32_front_ring_t
#define blkif_back_ring          blkif_x86_32_back_ring
#define blkif_back_ring_t        blkif_x86_32_back_ring_t
#pragma pack(push, 4)
#ifndef __i386__
#define XBD_I386_FOR_LAYOUT
#define __i386__ 1
#endif
#undef __XEN_PUBLIC_IO_BLKIF_H__
#include <xen/io/blkif.h>
#ifdef XBD_I386_FOR_LAYOUT
#undef __i386__
#undef XBD_I386_FOR_LAYOUT
#endif
#pragma pack(pop)
#undef blkif_request_segment
#undef blkif_request
#undef blkif_request_t
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

/* --- x86_64: natural alignment of an LP64 compiler (uint64_t on 8). ----- */
#define blkif_request_segment    blkif_x86_64_request_segment
#define blkif_request            blkif_x86_64_request
#define blkif_request_t          blkif_x86_64_request_t
#define blkif_request_discard    blkif_x86_64_request_discard
#define blkif_request_discard_t  blkif_x86_64_request_discard_t
#define blkif_request_indirect   blkif_x86_64_request_indirect
#define blkif_request_indirect_t blkif_x86_64_request_indirect_t
#define blkif_response           blkif_x86_64_response
#define blkif_response_t         blkif_x86_64_response_t
#define blkif_sring_entry        blkif_x86_64_sring_entry
#define blkif_sring              blkif_x86_64_sring
#define blkif_sring_t            blkif_x86_64_sring_t
#define blkif_front_ring         blkif_x86_64_front_ring
#define blkif_front_ring_t       blkif_x86_64_front_ring_t
#define blkif_back_ring          blkif_x86_64_back_ring
#define blkif_back_ring_t        blkif_x86_64_back_ring_t
#pragma pack(push, 8)
#ifdef __i386__
#error "the x86_64 blkif layout needs an LP64 build host"
#endif
#undef __XEN_PUBLIC_IO_BLKIF_H__
#include <xen/io/blkif.h>
#pragma pack(pop)
#undef blkif_request_segment
#undef blkif_request
#undef blkif_request_t
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

/* --- pin the layouts (values from the blkif ABI, Linux common.h) ------- */
#define XBD_ABI_CHECK(t, f, off) \
    static_assert(offsetof(struct t, f) == (off), #t "." #f " moved")

static_assert(sizeof(struct blkif_x86_32_request_segment) == 8, "seg");
static_assert(sizeof(struct blkif_x86_32_request) == 108, "x86_32 req");
static_assert(sizeof(struct blkif_x86_32_request_discard) == 28, "x86_32 discard");
static_assert(sizeof(struct blkif_x86_32_request_indirect) == 64, "x86_32 indirect");
static_assert(sizeof(struct blkif_x86_32_response) == 12, "x86_32 rsp");
XBD_ABI_CHECK(blkif_x86_32_request, id, 4);
XBD_ABI_CHECK(blkif_x86_32_request, sector_number, 12);
XBD_ABI_CHECK(blkif_x86_32_request, seg, 20);
XBD_ABI_CHECK(blkif_x86_32_request_discard, nr_sectors, 20);
XBD_ABI_CHECK(blkif_x86_32_request_indirect, nr_segments, 2);
XBD_ABI_CHECK(blkif_x86_32_request_indirect, id, 4);
XBD_ABI_CHECK(blkif_x86_32_request_indirect, sector_number, 12);
XBD_ABI_CHECK(blkif_x86_32_request_indirect, handle, 20);
XBD_ABI_CHECK(blkif_x86_32_request_indirect, indirect_grefs, 24);
XBD_ABI_CHECK(blkif_x86_32_response, operation, 8);
XBD_ABI_CHECK(blkif_x86_32_response, status, 10);

static_assert(sizeof(struct blkif_x86_64_request_segment) == 8, "seg");
static_assert(sizeof(struct blkif_x86_64_request) == 112, "x86_64 req");
static_assert(sizeof(struct blkif_x86_64_request_discard) == 32, "x86_64 discard");
static_assert(sizeof(struct blkif_x86_64_request_indirect) == 64, "x86_64 indirect");
static_assert(sizeof(struct blkif_x86_64_response) == 16, "x86_64 rsp");
XBD_ABI_CHECK(blkif_x86_64_request, id, 8);
XBD_ABI_CHECK(blkif_x86_64_request, sector_number, 16);
XBD_ABI_CHECK(blkif_x86_64_request, seg, 24);
XBD_ABI_CHECK(blkif_x86_64_request_discard, nr_sectors, 24);
XBD_ABI_CHECK(blkif_x86_64_request_indirect, id, 8);
XBD_ABI_CHECK(blkif_x86_64_request_indirect, sector_number, 16);
XBD_ABI_CHECK(blkif_x86_64_request_indirect, handle, 24);
XBD_ABI_CHECK(blkif_x86_64_request_indirect, indirect_grefs, 28);
XBD_ABI_CHECK(blkif_x86_64_response, operation, 8);
XBD_ABI_CHECK(blkif_x86_64_response, status, 10);

/* Every ABI puts the same three ring indexes first, and the entries at the
 * same offset: one back ring index logic serves all of them. */
XBD_ABI_CHECK(blkif_x86_32_sring, ring, 64);
XBD_ABI_CHECK(blkif_x86_64_sring, ring, 64);
XBD_ABI_CHECK(blkif_sring, ring, 64);

/* Trap: the *private* front/back ring structs of the x86_32 ABI were
 * generated under pack(4) too, so their sring pointer is not where the
 * native ones have it.  Never use them: keep one native blkif_back_ring
 * for the indexes (xbd_ring_nr_ents() gives the ABI's size) and index the
 * ABI's own sring type for entries. */
static_assert(offsetof(struct blkif_x86_32_back_ring, sring) !=
              offsetof(struct blkif_back_ring, sring), "see above");

/* Entries in a shared ring of <bytes> for each ABI (power of two). */
#define XBD_RING_NR_ENTS(T, bytes) __CONST_RING_SIZE(T, bytes)

/* Grant pages are always 4 KiB (ring.h: XEN_PAGE_SHIFT), whatever the
 * host page size. */
#define XBD_PAGE_SIZE (1u << XEN_PAGE_SHIFT)
/* Segments in one indirect page (512). */
#define XBD_SEGS_PER_INDIRECT_PAGE \
    (XBD_PAGE_SIZE / (unsigned)sizeof(struct blkif_request_segment))

#endif
