/*
 * test-request.c - request translation and validation (src/request.c).
 *
 * Ring entries are written here byte by byte at the offsets of the blkif
 * ABIs (not through the structs under test), so a layout mistake in
 * src/blkif_abi.h fails this test, and every class of invalid request must
 * come back as BLKIF_RSP_ERROR or BLKIF_RSP_EOPNOTSUPP.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "check.h"
#include "request.h"

/* Offsets of id / sector_number / first segment (or discard nr_sectors,
 * or indirect handle) per ABI. */
struct abi_off {
    enum xbd_protocol proto;
    const char *name;
    size_t id, sector, seg, nr_sectors, ind_handle, ind_grefs, rsp_size;
};

static const struct abi_off abis[] = {
    { XBD_PROTO_NATIVE, "native", 8, 16, 24, 24, 24, 28, 16 },
    { XBD_PROTO_X86_32, "x86_32", 4, 12, 20, 20, 20, 24, 12 },
    { XBD_PROTO_X86_64, "x86_64", 8, 16, 24, 24, 24, 28, 16 },
};

static unsigned char slot[128] __attribute__((aligned(8)));
static struct xbd_seg segs[XBD_MAX_INDIRECT_SEGS];

static void put8(size_t off, uint8_t v) { slot[off] = v; }
static void put16(size_t off, uint16_t v) { memcpy(slot + off, &v, 2); }
static void put32(size_t off, uint32_t v) { memcpy(slot + off, &v, 4); }
static void put64(size_t off, uint64_t v) { memcpy(slot + off, &v, 8); }

static void put_rw(const struct abi_off *a, uint8_t op, uint8_t nseg,
                   uint64_t id, uint64_t sector, uint8_t first, uint8_t last)
{
    unsigned i;

    memset(slot, 0x5a, sizeof(slot));
    put8(0, op);
    put8(1, nseg);
    put16(2, 0x1234);
    put64(a->id, id);
    put64(a->sector, sector);
    for (i = 0; i < nseg && i < 11; i++) {
        put32(a->seg + 8 * i, 100 + i);
        put8(a->seg + 8 * i + 4, first);
        put8(a->seg + 8 * i + 5, last);
    }
}

static void put_discard(const struct abi_off *a, uint8_t flag, uint64_t id,
                        uint64_t sector, uint64_t nr)
{
    memset(slot, 0x5a, sizeof(slot));
    put8(0, BLKIF_OP_DISCARD);
    put8(1, flag);
    put64(a->id, id);
    put64(a->sector, sector);
    put64(a->nr_sectors, nr);
}

static void put_indirect(const struct abi_off *a, uint8_t iop, uint16_t nseg,
                         uint64_t id, uint64_t sector)
{
    unsigned i;

    memset(slot, 0x5a, sizeof(slot));
    put8(0, BLKIF_OP_INDIRECT);
    put8(1, iop);
    put16(2, nseg);
    put64(a->id, id);
    put64(a->sector, sector);
    put16(a->ind_handle, 0x51);
    for (i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++)
        put32(a->ind_grefs + 4 * i, 900 + i);
}

static struct xbd_backing bk;
static struct xbd_req_limits lim;

static void reset_backing(void)
{
    memset(&bk, 0, sizeof(bk));
    bk.fd = -1;
    bk.sectors = 2048;           /* 1 MiB */
    bk.sector_size = 512;
    bk.physical_sector_size = 512;
    bk.flush = true;
    bk.discard = true;
    lim.backing = &bk;
    lim.max_indirect_segs = XBD_MAX_INDIRECT_SEGS;
}

static int parse(const struct abi_off *a, struct xbd_req *q)
{
    q->seg = segs;
    q->seg_cap = XBD_MAX_INDIRECT_SEGS;
    xbd_req_copy(q, slot, a->proto);
    return xbd_req_check(q, &lim);
}

static void test_translation(const struct abi_off *a)
{
    struct xbd_req q;

    reset_backing();
    put_rw(a, BLKIF_OP_WRITE, 3, 0x1122334455667788ull, 40, 1, 6);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);
    CHECK(q.id == 0x1122334455667788ull);
    CHECK_EQ(q.wire_op, BLKIF_OP_WRITE);
    CHECK_EQ(q.rsp_op, BLKIF_OP_WRITE);
    CHECK_EQ(q.nr_segments, 3);
    CHECK_EQ(q.sector_number, 40);
    CHECK_EQ(q.seg[0].gref, 100);
    CHECK_EQ(q.seg[2].gref, 102);
    CHECK_EQ(q.seg[2].first_sect, 1);
    CHECK_EQ(q.seg[2].last_sect, 6);
    CHECK_EQ(q.nr_sectors, 18);
    CHECK_EQ(xbd_req_bytes(&q), 18 * 512);

    put_discard(a, BLKIF_DISCARD_SECURE, 77, 8, 16);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);
    CHECK_EQ(q.id, 77);
    CHECK_EQ(q.sector_number, 8);
    CHECK_EQ(q.nr_sectors, 16);
    CHECK_EQ(q.discard_flag, BLKIF_DISCARD_SECURE);

    put_indirect(a, BLKIF_OP_READ, 200, 99, 64);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);
    CHECK(q.indirect);
    CHECK_EQ(q.id, 99);
    CHECK_EQ(q.op, BLKIF_OP_READ);
    CHECK_EQ(q.rsp_op, BLKIF_OP_READ); /* blkfront expects indirect_op back */
    CHECK_EQ(q.nr_segments, 200);
    CHECK_EQ(q.sector_number, 64);
    CHECK_EQ(q.nr_indirect_pages, 1);
    CHECK_EQ(q.indirect_grefs[0], 900);
    CHECK_EQ(q.indirect_grefs[7], 907);
}

static void test_invalid_rw(const struct abi_off *a)
{
    struct xbd_req q;

    reset_backing();
    put_rw(a, BLKIF_OP_READ, 0, 1, 0, 0, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* no segment */
    put_rw(a, BLKIF_OP_READ, 12, 1, 0, 0, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* > 11 segments */
    put_rw(a, BLKIF_OP_READ, 255, 1, 0, 0, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);
    put_rw(a, BLKIF_OP_READ, 1, 1, 0, 5, 4);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* first > last */
    put_rw(a, BLKIF_OP_READ, 1, 1, 0, 0, 8);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* last > 7 */
    put_rw(a, BLKIF_OP_READ, 1, 1, 2048, 0, 0);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* past the end */
    put_rw(a, BLKIF_OP_READ, 2, 1, 2041, 0, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* straddles the end */
    put_rw(a, BLKIF_OP_READ, 1, 1, UINT64_MAX - 3, 0, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* wraps around */
    put_rw(a, BLKIF_OP_READ, 2, 1, 2032, 0, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);           /* exactly to the end */

    /* 4 KiB logical sectors: everything aligned to 8 x 512. */
    bk.sector_size = 4096;
    put_rw(a, BLKIF_OP_READ, 1, 1, 8, 0, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);
    put_rw(a, BLKIF_OP_READ, 1, 1, 4, 0, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* sector misaligned */
    put_rw(a, BLKIF_OP_READ, 1, 1, 8, 1, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* first_sect misaligned */
    put_rw(a, BLKIF_OP_READ, 1, 1, 8, 0, 6);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* last_sect misaligned */

    reset_backing();
    bk.readonly = true;
    put_rw(a, BLKIF_OP_READ, 1, 1, 0, 0, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);
    put_rw(a, BLKIF_OP_WRITE, 1, 1, 0, 0, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* write to r/o */
    /* Nothing was written through a read-only disk: an empty barrier or
     * flush is answered (test-flush-order: without I/O); data is not. */
    put_rw(a, BLKIF_OP_WRITE_BARRIER, 0, 1, 0, 0, 0);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);
    put_rw(a, BLKIF_OP_FLUSH_DISKCACHE, 0, 1, 0, 0, 0);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);
    put_rw(a, BLKIF_OP_WRITE_BARRIER, 1, 1, 0, 0, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* barrier with data to r/o */
    put_rw(a, BLKIF_OP_FLUSH_DISKCACHE, 1, 1, 0, 0, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);
}

static void test_ops(const struct abi_off *a)
{
    struct xbd_req q;
    static const uint8_t unknown[] = { BLKIF_OP_RESERVED_1, 7, 8, 100, 255 };
    unsigned i;

    reset_backing();
    for (i = 0; i < sizeof(unknown); i++) {
        put_rw(a, unknown[i], 1, 5, 0, 0, 7);
        CHECK_EQ(parse(a, &q), BLKIF_RSP_EOPNOTSUPP);
        CHECK_EQ(q.rsp_op, unknown[i]);
        CHECK_EQ(q.id, 5);
    }
    put_rw(a, BLKIF_OP_FLUSH_DISKCACHE, 0, 1, 0, 0, 0);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);
    put_rw(a, BLKIF_OP_WRITE_BARRIER, 2, 1, 0, 0, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);           /* barrier with data */
    put_rw(a, BLKIF_OP_FLUSH_DISKCACHE, 12, 1, 0, 0, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);
    /* An empty flush touches no sector: its sector_number means nothing
     * (as blkback, which range-checks only requests with sectors). */
    put_rw(a, BLKIF_OP_FLUSH_DISKCACHE, 0, 1, UINT64_MAX, 0, 0);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);
    put_rw(a, BLKIF_OP_WRITE_BARRIER, 0, 1, 2049, 0, 0);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);
    /* With data the range is checked like a write's. */
    put_rw(a, BLKIF_OP_FLUSH_DISKCACHE, 1, 1, 2041, 0, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* past the end */
    put_rw(a, BLKIF_OP_FLUSH_DISKCACHE, 1, 1, 2040, 0, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);
    /* Not offered (no volatile cache): still served, never EOPNOTSUPP,
     * which makes Linux blkfront drop a write's data. */
    bk.flush = false;
    put_rw(a, BLKIF_OP_FLUSH_DISKCACHE, 0, 1, 0, 0, 0);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);
    put_rw(a, BLKIF_OP_WRITE_BARRIER, 0, 1, 0, 0, 0);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);
    put_rw(a, BLKIF_OP_FLUSH_DISKCACHE, 1, 1, 0, 0, 7);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);

    reset_backing();
    put_discard(a, 0, 1, 2040, 8);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);
    put_discard(a, 0, 1, 2040, 9);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* past the end */
    put_discard(a, 0, 1, 8, UINT64_MAX - 4);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* wraps */
    bk.sector_size = 4096;
    put_discard(a, 0, 1, 4, 8);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* misaligned */
    put_discard(a, 0, 1, 8, 4);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);
    reset_backing();
    bk.readonly = true;
    put_discard(a, 0, 1, 0, 8);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* r/o device */
    bk.discard = false;
    put_discard(a, 0, 1, 0, 8);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_EOPNOTSUPP);
}

static void test_indirect(const struct abi_off *a)
{
    struct xbd_req q;
    unsigned char pages[XBD_PAGE_SIZE];
    struct blkif_request_segment s;
    unsigned i;

    reset_backing();
    put_indirect(a, BLKIF_OP_WRITE, 0, 1, 0);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* no segment */
    put_indirect(a, BLKIF_OP_WRITE, XBD_MAX_INDIRECT_SEGS + 1, 1, 0);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* over the max */
    put_indirect(a, BLKIF_OP_DISCARD, 4, 1, 0);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* only READ/WRITE */
    CHECK_EQ(q.rsp_op, BLKIF_OP_INDIRECT);
    put_indirect(a, BLKIF_OP_INDIRECT, 4, 1, 0);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);
    lim.max_indirect_segs = 16;
    put_indirect(a, BLKIF_OP_READ, 17, 1, 0);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);          /* advertised max */
    lim.max_indirect_segs = 0;
    put_indirect(a, BLKIF_OP_READ, 4, 1, 0);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_EOPNOTSUPP);     /* not offered */
    lim.max_indirect_segs = XBD_MAX_INDIRECT_SEGS;
    bk.readonly = true;
    put_indirect(a, BLKIF_OP_WRITE, 4, 1, 0);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_ERROR);
    bk.readonly = false;

    /* Segments from the (private copy of the) indirect page. */
    put_indirect(a, BLKIF_OP_WRITE, 20, 1, 0);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);
    memset(pages, 0, sizeof(pages));
    for (i = 0; i < 20; i++) {
        s.gref = 3000 + i;
        s.first_sect = 0;
        s.last_sect = 7;
        memcpy(pages + i * 8, &s, sizeof(s));
    }
    CHECK_EQ(xbd_req_parse_indirect(&q, pages, &lim), BLKIF_RSP_OKAY);
    CHECK_EQ(q.seg[19].gref, 3019);
    CHECK_EQ(q.nr_sectors, 160);
    pages[5 * 8 + 5] = 8;                              /* seg 5 last_sect */
    CHECK_EQ(xbd_req_parse_indirect(&q, pages, &lim), BLKIF_RSP_ERROR);
    pages[5 * 8 + 5] = 7;
    put_indirect(a, BLKIF_OP_WRITE, 20, 1, 2048 - 159);
    CHECK_EQ(parse(a, &q), BLKIF_RSP_OKAY);
    CHECK_EQ(xbd_req_parse_indirect(&q, pages, &lim), BLKIF_RSP_ERROR); /* end */
}

/* XSA-216: only id, operation and status are written; every other byte of
 * the slot keeps what the guest put there. */
static void test_response(const struct abi_off *a)
{
    unsigned char expect[sizeof(slot)];
    uint64_t id = 0xdeadbeefcafef00dull;
    int16_t st = BLKIF_RSP_EOPNOTSUPP;

    memset(slot, 0xa5, sizeof(slot));
    xbd_rsp_write(slot, a->proto, id, BLKIF_OP_DISCARD, st);
    memset(expect, 0xa5, sizeof(expect));
    memcpy(expect, &id, 8);
    expect[8] = BLKIF_OP_DISCARD;
    memcpy(expect + 10, &st, 2);
    CHECK(memcmp(slot, expect, sizeof(slot)) == 0);
    CHECK_EQ(xbd_ring_entry_size(a->proto), a->proto == XBD_PROTO_X86_32 ? 108 : 112);
}

int main(void)
{
    size_t i;

    for (i = 0; i < sizeof(abis) / sizeof(abis[0]); i++) {
        printf("ABI %s\n", abis[i].name);
        test_translation(&abis[i]);
        test_invalid_rw(&abis[i]);
        test_ops(&abis[i]);
        test_indirect(&abis[i]);
        test_response(&abis[i]);
    }
    return check_result("test-request");
}
