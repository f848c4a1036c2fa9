/*
 * test-gntcopy.c - xengnttab_grant_copy on the simulated host: per-segment
 * checks and GNTST_* statuses, data really copied, grants marked in use
 * while a copy is in flight, counters.
 */
#define _GNU_SOURCE
#include "simtest.h"
#include "xensim_guest.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <xengnttab.h>

#define GUEST 5

static xsg_dom *d;
static xengnttab_handle *gt;

static grant_ref_t grant_page(uint32_t *gfn, bool ro, uint8_t fill)
{
    grant_ref_t ref;

    REQUIRE(xsg_page_alloc(d, gfn) == 0);
    memset(xsg_page(d, *gfn), fill, XSG_PAGE_SIZE);
    REQUIRE(xsg_grant(d, 0, *gfn, ro, &ref) == 0);
    return ref;
}

static void seg_from(xengnttab_grant_copy_segment_t *s, grant_ref_t ref, uint16_t off,
                     void *to, uint16_t len)
{
    memset(s, 0, sizeof(*s));
    s->flags = GNTCOPY_source_gref;
    s->source.foreign.domid = GUEST;
    s->source.foreign.ref = ref;
    s->source.foreign.offset = off;
    s->dest.virt = to;
    s->len = len;
}

static void seg_to(xengnttab_grant_copy_segment_t *s, grant_ref_t ref, uint16_t off,
                   void *from, uint16_t len)
{
    memset(s, 0, sizeof(*s));
    s->flags = GNTCOPY_dest_gref;
    s->dest.foreign.domid = GUEST;
    s->dest.foreign.ref = ref;
    s->dest.foreign.offset = off;
    s->source.virt = from;
    s->len = len;
}

/* Each segment is checked on its own and reports its own status. */
static void check_segments(void)
{
    uint32_t g_ro, g_rw;
    grant_ref_t ro = grant_page(&g_ro, true, 0x10);
    grant_ref_t rw = grant_page(&g_rw, false, 0x20);
    uint8_t buf[4096], out[4096];
    xengnttab_grant_copy_segment_t s[8];
    struct xsg_grant_stats a, b;

    memset(buf, 0xcc, sizeof(buf));
    memset(out, 0, sizeof(out));
    xsg_grant_stats(d, &a);
    seg_from(&s[0], ro, 100, out, 200);               /* ok: read a r/o grant */
    seg_to(&s[1], rw, 4000, buf, 96);                 /* ok: write at the end */
    seg_to(&s[2], rw, 4000, buf, 97);                 /* crosses the page */
    seg_to(&s[3], ro, 0, buf, 10);                    /* write into r/o grant */
    seg_from(&s[4], 40, 0, out, 10);                  /* never granted */
    seg_from(&s[5], ro, 0, out, 10);
    s[5].source.foreign.domid = 66;                   /* no such domain */
    seg_from(&s[6], ro, 0, out, 10);
    s[6].flags = 0;                                   /* no gref side */
    seg_from(&s[7], 100000, 0, out, 10);              /* outside the table */
    CHECK(xengnttab_grant_copy(gt, 8, s) == 0);
    CHECK(s[0].status == GNTST_okay);
    CHECK(s[1].status == GNTST_okay);
    CHECK(s[2].status == GNTST_bad_copy_arg);
    CHECK(s[3].status == GNTST_permission_denied);
    CHECK(s[4].status == GNTST_permission_denied);
    CHECK(s[5].status == GNTST_bad_domain);
    CHECK(s[6].status == GNTST_bad_copy_arg);
    CHECK(s[7].status == GNTST_bad_gntref);
    /* data really moved, and only where allowed */
    CHECK(out[0] == 0x10 && out[199] == 0x10 && out[200] == 0);
    CHECK(((uint8_t *)xsg_page(d, g_rw))[3999] == 0x20);
    CHECK(((uint8_t *)xsg_page(d, g_rw))[4000] == 0xcc);
    CHECK(((uint8_t *)xsg_page(d, g_rw))[4095] == 0xcc);
    CHECK(((uint8_t *)xsg_page(d, g_ro))[0] == 0x10);
    xsg_grant_stats(d, &b);
    CHECK(b.copy_calls == a.copy_calls + 1);
    CHECK(b.copy_segs == a.copy_segs + 2);
    CHECK(b.map_calls == a.map_calls);
    CHECK(xsg_grants_in_use(d) == 0);
    CHECK(xsg_end_access(d, ro) == 0 && xsg_end_access(d, rw) == 0);
}

/* Grant to grant (both foreign) */
static void check_gref_to_gref(void)
{
    uint32_t g1, g2;
    grant_ref_t src = grant_page(&g1, true, 0x61);
    grant_ref_t dst = grant_page(&g2, false, 0x62);
    xengnttab_grant_copy_segment_t s;

    memset(&s, 0, sizeof(s));
    s.flags = GNTCOPY_source_gref | GNTCOPY_dest_gref;
    s.source.foreign.domid = GUEST;
    s.source.foreign.ref = src;
    s.dest.foreign.domid = GUEST;
    s.dest.foreign.ref = dst;
    s.dest.foreign.offset = 8;
    s.len = 16;
    CHECK(xengnttab_grant_copy(gt, 1, &s) == 0 && s.status == GNTST_okay);
    CHECK(((uint8_t *)xsg_page(d, g2))[7] == 0x62);
    CHECK(((uint8_t *)xsg_page(d, g2))[8] == 0x61 && ((uint8_t *)xsg_page(d, g2))[23] == 0x61);
    CHECK(((uint8_t *)xsg_page(d, g2))[24] == 0x62);
    CHECK(xsg_end_access(d, src) == 0 && xsg_end_access(d, dst) == 0);
}

static grant_ref_t busy_ref;
static int slow_copier(void *arg)
{
    xengnttab_handle *h = xengnttab_open(NULL, 0);
    xengnttab_grant_copy_segment_t s;
    uint8_t buf[64];

    (void)arg;
    if (!h)
        return 2;
    seg_to(&s, busy_ref, 0, buf, sizeof(buf));
    memset(buf, 0x7e, sizeof(buf));
    if (xengnttab_grant_copy(h, 1, &s) != 0 || s.status != GNTST_okay)
        return 3;
    return 0;
}

/* GTF_reading/GTF_writing are set while a copy is in flight: the guest
 * cannot end access in the middle of it. */
static void check_in_use_during_copy(void)
{
    uint32_t gfn;
    pid_t pid;
    int seen = 0, i;

    busy_ref = grant_page(&gfn, false, 0);
    CHECK(xsg_fault_set("copy_delay_us=400000") == 0);
    pid = st_spawn(slow_copier, NULL);
    for (i = 0; i < 5000 && !seen; i++) {
        if (xsg_grant_in_use(d, busy_ref) == 1)
            seen = 1;
        else
            usleep(1000);
    }
    CHECK(seen);
    CHECK(xsg_end_access(d, busy_ref) == -1 && errno == EBUSY);
    CHECK(st_wait(pid) == 0);
    CHECK(xsg_fault_set("clear") == 0);
    CHECK(xsg_grant_in_use(d, busy_ref) == 0);
    CHECK(((uint8_t *)xsg_page(d, gfn))[63] == 0x7e);
    CHECK(xsg_end_access(d, busy_ref) == 0);
}

/* Three copies into busy_ref, one after the other; byte 0 says which. */
static int three_copies(void *arg)
{
    xengnttab_handle *h = xengnttab_open(NULL, 0);
    xengnttab_grant_copy_segment_t s;
    static uint8_t buf[64];

    (void)arg;
    if (!h)
        return 2;
    for (int i = 1; i <= 3; i++) {
        seg_to(&s, busy_ref, 0, buf, sizeof(buf));
        buf[0] = (uint8_t)i;
        if (xengnttab_grant_copy(h, 1, &s) != 0 || s.status != GNTST_okay)
            return 3;
    }
    return 0;
}

/* copy_hold=2: the first copy goes through, the second waits before it
 * starts (not counted, nothing pinned) until copy_hold=0, then both
 * others complete. */
static void check_copy_hold(void)
{
    struct xsg_grant_stats st0, st;
    uint64_t fired0 = xsg_fault_fired();
    uint32_t gfn;
    pid_t pid;
    int i;

    busy_ref = grant_page(&gfn, false, 0);
    CHECK(xsg_grant_stats(d, &st0) == 0);
    CHECK(xsg_fault_set("copy_hold=2") == 0);
    pid = st_spawn(three_copies, NULL);
    for (i = 0; i < 5000 && xsg_fault_fired() == fired0; i++)
        usleep(1000);
    CHECK(xsg_fault_fired() == fired0 + 1);
    CHECK(xsg_grant_stats(d, &st) == 0);
    CHECK(st.copy_calls == st0.copy_calls + 1);
    CHECK(((uint8_t *)xsg_page(d, gfn))[0] == 1);
    CHECK(xsg_grant_in_use(d, busy_ref) == 0);
    CHECK(xsg_fault_set("copy_hold=0") == 0);
    CHECK(st_wait(pid) == 0);
    CHECK(xsg_grant_stats(d, &st) == 0);
    CHECK(st.copy_calls == st0.copy_calls + 3);
    CHECK(((uint8_t *)xsg_page(d, gfn))[0] == 3);
    CHECK(xsg_fault_set("clear") == 0);
    CHECK(xsg_end_access(d, busy_ref) == 0);
}

int main(int argc, char **argv)
{
    st_init(argc, argv);
    d = xsg_dom_create(GUEST, 16, 64);
    REQUIRE(d);
    gt = xengnttab_open(NULL, 0);
    REQUIRE(gt);
    check_segments();
    check_gref_to_gref();
    check_in_use_during_copy();
    check_copy_hold();
    xengnttab_close(gt);
    CHECK(xsg_dom_destroy(d) == 0);
    return st_done("test-gntcopy");
}
