/*
 * test-abi-layout - the frontend puts every field where each ring ABI says.
 *
 * The struct layouts themselves are static_asserted in blkif_abi.c; this
 * test checks the bytes the encoder actually writes into a ring slot (and
 * reads back from a response slot) against offsets written down here from
 * blkif.h, for the three ABIs and the three request kinds, plus the ring
 * sizes and the data pattern used for verification.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkfront.h"

static int failures;

#define CHECK(cond, ...) do {                                        \
    if (!(cond)) {                                                   \
        failures++;                                                  \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);         \
        fprintf(stderr, __VA_ARGS__);                                \
        fputc('\n', stderr);                                         \
    }                                                                \
} while (0)

static uint64_t get(const uint8_t *p, size_t off, size_t len)
{
    uint64_t v = 0;
    memcpy(&v, p + off, len);        /* little-endian host (x86) */
    return v;
}

/* Offsets per ABI, from blkif.h: x86_32 is 4-byte aligned, x86_64 pads. */
struct layout {
    enum bf_abi abi;
    const char *name;
    size_t slot;
    size_t id, sector, seg;                       /* read/write */
    size_t d_id, d_sector, d_nr;                  /* discard */
    size_t i_nseg, i_id, i_sector, i_handle, i_grefs; /* indirect */
    size_t rsp_size;
};

static const struct layout layouts[] = {
    { BF_ABI_X86_32, "x86_32", 108, 4, 12, 20, 4, 12, 20, 2, 4, 12, 20, 24, 12 },
    { BF_ABI_X86_64, "x86_64", 112, 8, 16, 24, 8, 16, 24, 2, 8, 16, 24, 28, 16 },
    /* Native on amd64 is the x86_64 layout. */
    { BF_ABI_NATIVE, "native", 112, 8, 16, 24, 8, 16, 24, 2, 8, 16, 24, 28, 16 },
};

static void check_rw(const struct layout *l)
{
    uint8_t slot[128];
    struct bf_wire_req w;
    memset(&w, 0, sizeof(w));
    memset(slot, 0xee, sizeof(slot));
    w.operation = BLKIF_OP_WRITE;
    w.nr_segments = 11;
    w.handle = 0xcafe;
    w.id = 0x1122334455667788ull;
    w.sector_number = 0x0102030405060708ull;
    for (unsigned i = 0; i < 11; i++) {
        w.seg[i].gref = 1000 + i;
        w.seg[i].first_sect = (uint8_t)(i % 8);
        w.seg[i].last_sect = 7;
    }
    bf_abi_put_request(l->abi, slot, &w);
    CHECK(bf_abi_slot_size(l->abi) == l->slot, "%s: slot size %zu", l->name, bf_abi_slot_size(l->abi));
    CHECK(slot[0] == BLKIF_OP_WRITE && slot[1] == 11, "%s: op/nr_segments", l->name);
    CHECK(get(slot, 2, 2) == 0xcafe, "%s: handle", l->name);
    CHECK(get(slot, l->id, 8) == w.id, "%s: id at %zu", l->name, l->id);
    CHECK(get(slot, l->sector, 8) == w.sector_number, "%s: sector at %zu", l->name, l->sector);
    for (unsigned i = 0; i < 11; i++) {
        size_t o = l->seg + i * 8;
        CHECK(get(slot, o, 4) == 1000 + i && slot[o + 4] == i % 8 && slot[o + 5] == 7,
              "%s: segment %u at %zu", l->name, i, o);
    }
    /* The whole slot is rewritten: nothing of a previous request leaks. */
    if (l->abi == BF_ABI_X86_64)
        CHECK(get(slot, 4, 4) == 0, "%s: padding not zeroed", l->name);
    CHECK(slot[l->slot] == 0xee, "%s: wrote past the slot", l->name);
}

static void check_discard(const struct layout *l)
{
    uint8_t slot[128];
    struct bf_wire_req w;
    memset(&w, 0, sizeof(w));
    memset(slot, 0xee, sizeof(slot));
    w.operation = BLKIF_OP_DISCARD;
    w.flag = BLKIF_DISCARD_SECURE;
    w.handle = 51712;
    w.id = 42;
    w.sector_number = 4096;
    w.nr_sectors = 0xabcdef01234ull;
    bf_abi_put_request(l->abi, slot, &w);
    CHECK(slot[0] == BLKIF_OP_DISCARD && slot[1] == BLKIF_DISCARD_SECURE, "%s: discard op/flag", l->name);
    CHECK(get(slot, 2, 2) == 51712, "%s: discard handle", l->name);
    CHECK(get(slot, l->d_id, 8) == 42, "%s: discard id", l->name);
    CHECK(get(slot, l->d_sector, 8) == 4096, "%s: discard sector", l->name);
    CHECK(get(slot, l->d_nr, 8) == 0xabcdef01234ull, "%s: discard nr_sectors at %zu", l->name, l->d_nr);
}

static void check_indirect(const struct layout *l)
{
    uint8_t slot[128];
    struct bf_wire_req w;
    memset(&w, 0, sizeof(w));
    memset(slot, 0xee, sizeof(slot));
    w.operation = BLKIF_OP_INDIRECT;
    w.indirect_op = BLKIF_OP_READ;
    w.ind_nr_segments = 1000;
    w.id = 7;
    w.sector_number = 99;
    w.handle = 0x1234;
    for (unsigned i = 0; i < 8; i++)
        w.indirect_grefs[i] = 500 + i;
    bf_abi_put_request(l->abi, slot, &w);
    CHECK(slot[0] == BLKIF_OP_INDIRECT && slot[1] == BLKIF_OP_READ, "%s: indirect op", l->name);
    CHECK(get(slot, l->i_nseg, 2) == 1000, "%s: indirect nr_segments", l->name);
    CHECK(get(slot, l->i_id, 8) == 7, "%s: indirect id", l->name);
    CHECK(get(slot, l->i_sector, 8) == 99, "%s: indirect sector", l->name);
    CHECK(get(slot, l->i_handle, 2) == 0x1234, "%s: indirect handle at %zu", l->name, l->i_handle);
    for (unsigned i = 0; i < 8; i++)
        CHECK(get(slot, l->i_grefs + 4 * i, 4) == 500 + i, "%s: indirect gref %u", l->name, i);
}

static void check_response(const struct layout *l)
{
    uint8_t slot[128];
    struct bf_wire_rsp r;
    memset(slot, 0, sizeof(slot));
    uint64_t id = 0x0102030405060708ull;
    int16_t st = BLKIF_RSP_EOPNOTSUPP;
    memcpy(slot, &id, 8);
    slot[8] = BLKIF_OP_FLUSH_DISKCACHE;
    memcpy(slot + 10, &st, 2);
    bf_abi_get_response(l->abi, slot, &r);
    CHECK(r.id == id && r.operation == BLKIF_OP_FLUSH_DISKCACHE && r.status == BLKIF_RSP_EOPNOTSUPP,
          "%s: response decode (id %" PRIx64 " op %u status %d)", l->name, r.id, r.operation, r.status);
}

static void check_rings(void)
{
    /* 32 requests fit one page whatever the ABI; order 4 holds 512/16 pages. */
    CHECK(bf_abi_ring_entries(BF_ABI_X86_32, 1) == 32, "x86_32 one-page ring");
    CHECK(bf_abi_ring_entries(BF_ABI_X86_64, 1) == 32, "x86_64 one-page ring");
    CHECK(bf_abi_ring_entries(BF_ABI_X86_64, 16) == 512, "x86_64 order-4 ring");
    CHECK(bf_abi_ring_entries(BF_ABI_X86_32, 2) == 64, "x86_32 order-1 ring");
    CHECK(!strcmp(bf_abi_name(BF_ABI_X86_32), "x86_32-abi") && !strcmp(bf_abi_name(BF_ABI_X86_64), "x86_64-abi"),
          "protocol names");
}

static void check_pattern(void)
{
    uint8_t a[512], b[512];
    char why[200];
    bf_pattern_fill(a, 1000, 3);
    CHECK(bf_pattern_check(a, 1000, 3, why, sizeof(why)) == 0, "pattern round trip");
    CHECK(bf_pattern_check(a, 1001, 3, why, sizeof(why)) < 0 && strstr(why, "sector 1000 generation 3"),
          "misplaced sector is named: %s", why);
    CHECK(bf_pattern_check(a, 1000, 4, why, sizeof(why)) < 0, "older generation detected");
    bf_pattern_fill(b, 1000, 0);
    CHECK(bf_pattern_check(b, 1000, 0, why, sizeof(why)) == 0, "generation 0 is zeros");
    CHECK(bf_pattern_check(b, 1000, 3, why, sizeof(why)) < 0 && strstr(why, "zeros"), "zeros reported: %s", why);
    a[300] ^= 1;
    CHECK(bf_pattern_check(a, 1000, 3, why, sizeof(why)) < 0 && strstr(why, "damaged pattern (header: sector 1000 generation 3): 1 bytes differing (first at byte 300"),
          "bit flip: %s", why);
    bf_pattern_fill(b, 1000, 3);
    CHECK(memcmp(a, b, 512) != 0, "pattern differs after flip");
    memset(b, 0x11, sizeof(b));
    CHECK(bf_pattern_check(b, 1000, 3, why, sizeof(why)) < 0 && strstr(why, "found unrelated bytes: "),
          "garbage: %s", why);
    bf_pattern_fill(a, 1000, 5);
    CHECK(memcmp(a, b, 512) != 0, "generations differ");
}

int main(void)
{
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
        check_rw(&layouts[i]);
        check_discard(&layouts[i]);
        check_indirect(&layouts[i]);
        check_response(&layouts[i]);
    }
    check_rings();
    check_pattern();
    if (failures) {
        fprintf(stderr, "test-abi-layout: %d failure(s)\n", failures);
        return 1;
    }
    printf("test-abi-layout: all checks passed\n");
    return 0;
}
