/*
 * test-faults.c - fault injection of the simulated host (map calls, one
 * ref of a batch, copy segments; evtchn drop is in test-evtchn).
 */
#define _GNU_SOURCE
#include "simtest.h"
#include "xensim_guest.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xengnttab.h>

#define GUEST 6

static xsg_dom *d;
static xengnttab_handle *gt;
static grant_ref_t refs[3];

static void check_map_call_fault(void)
{
    void *p;

    CHECK(xsg_fault_set("map_call=2,map_call_errno=12") == 0);
    p = xengnttab_map_grant_ref(gt, GUEST, refs[0], PROT_READ);
    CHECK(p != NULL);
    if (p)
        xengnttab_unmap(gt, p, 1);
    errno = 0;
    CHECK(xengnttab_map_grant_ref(gt, GUEST, refs[0], PROT_READ) == NULL && errno == ENOMEM);
    CHECK(xsg_grants_in_use(d) == 0);
    p = xengnttab_map_grant_ref(gt, GUEST, refs[0], PROT_READ);   /* fires once */
    CHECK(p != NULL);
    if (p)
        xengnttab_unmap(gt, p, 1);
    CHECK(xsg_fault_fired() == 1);
}

/* One ref of a batch fails: the whole call fails, the others are undone. */
static void check_map_ref_fault(void)
{
    struct xsg_grant_stats a, b;
    void *p;

    xsg_grant_stats(d, &a);
    CHECK(xsg_fault_set("map_ref=3,map_ref_status=-8") == 0);
    errno = 0;
    CHECK(xengnttab_map_domain_grant_refs(gt, 3, GUEST, refs, PROT_READ | PROT_WRITE) == NULL);
    CHECK(errno == EINVAL);
    CHECK(xsg_grants_in_use(d) == 0);
    xsg_grant_stats(d, &b);
    CHECK(b.pages_mapped == a.pages_mapped);
    p = xengnttab_map_domain_grant_refs(gt, 3, GUEST, refs, PROT_READ | PROT_WRITE);
    CHECK(p != NULL);
    CHECK(xsg_grants_in_use(d) == 3);
    if (p)
        CHECK(xengnttab_unmap(gt, p, 3) == 0);
    CHECK(xsg_fault_fired() == 2);
}

static void check_copy_seg_fault(void)
{
    xengnttab_grant_copy_segment_t s[3];
    uint8_t out[3][16];
    int i;

    CHECK(xsg_fault_set("copy_seg=2") == 0);
    memset(s, 0, sizeof(s));
    memset(out, 0, sizeof(out));
    for (i = 0; i < 3; i++) {
        s[i].flags = GNTCOPY_source_gref;
        s[i].source.foreign.domid = GUEST;
        s[i].source.foreign.ref = refs[i];
        s[i].dest.virt = out[i];
        s[i].len = 16;
    }
    CHECK(xengnttab_grant_copy(gt, 3, s) == 0);
    CHECK(s[0].status == GNTST_okay && s[2].status == GNTST_okay);
    CHECK(s[1].status == GNTST_general_error);
    CHECK(out[0][0] == 1 && out[1][0] == 0 && out[2][0] == 3);
    CHECK(xsg_grants_in_use(d) == 0);
    CHECK(xsg_fault_fired() == 3);
    CHECK(xsg_fault_set("copy_seg=1,copy_seg_status=-3") == 0);
    CHECK(xengnttab_grant_copy(gt, 1, s) == 0 && s[0].status == GNTST_bad_gntref);
}

/* xsim-ctl (the shell face of all this) sets faults and reads counters
 * of a domain owned by another process. */
static void check_ctl(void)
{
    char exe[4096], cmd[4200], out[256] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    struct xsg_grant_stats st;
    char want[256];
    FILE *f;
    void *p;

    REQUIRE(n > 0);
    exe[n] = 0;
    *strrchr(exe, '/') = 0;
    snprintf(cmd, sizeof(cmd), "%s/xsim-ctl fault map_call=1", exe);
    CHECK(system(cmd) == 0);
    CHECK(xengnttab_map_grant_ref(gt, GUEST, refs[0], PROT_READ) == NULL);
    snprintf(cmd, sizeof(cmd), "%s/xsim-ctl fault nonsense=1 2>/dev/null", exe);
    CHECK(system(cmd) != 0);
    p = xengnttab_map_grant_ref(gt, GUEST, refs[1], PROT_READ);
    REQUIRE(p);
    snprintf(cmd, sizeof(cmd), "%s/xsim-ctl in-use %d", exe, GUEST);
    f = popen(cmd, "r");
    REQUIRE(f);
    CHECK(fgets(out, sizeof(out), f) && strcmp(out, "1\n") == 0);
    CHECK(pclose(f) == 0);
    xengnttab_unmap(gt, p, 1);
    xsg_grant_stats(d, &st);
    snprintf(want, sizeof(want), "map_calls=%llu\n", (unsigned long long)st.map_calls);
    snprintf(cmd, sizeof(cmd), "%s/xsim-ctl stats %d", exe, GUEST);
    f = popen(cmd, "r");
    REQUIRE(f);
    CHECK(fgets(out, sizeof(out), f) && strcmp(out, want) == 0);
    CHECK(fgets(out, sizeof(out), f) && strncmp(out, "pages_mapped=", 13) == 0);
    CHECK(pclose(f) == 0);
    snprintf(cmd, sizeof(cmd), "%s/xsim-ctl stats 99 2>/dev/null", exe);
    CHECK(system(cmd) != 0);
}

int main(int argc, char **argv)
{
    uint32_t gfn;
    int i;

    st_init(argc, argv);
    d = xsg_dom_create(GUEST, 8, 32);
    REQUIRE(d);
    gt = xengnttab_open(NULL, 0);
    REQUIRE(gt);
    for (i = 0; i < 3; i++) {
        REQUIRE(xsg_page_alloc(d, &gfn) == 0);
        memset(xsg_page(d, gfn), i + 1, 4096);
        REQUIRE(xsg_grant(d, 0, gfn, false, &refs[i]) == 0);
    }
    check_map_call_fault();
    check_map_ref_fault();
    check_copy_seg_fault();
    check_ctl();
    for (i = 0; i < 3; i++)
        CHECK(xsg_end_access(d, refs[i]) == 0);
    xengnttab_close(gt);
    CHECK(xsg_dom_destroy(d) == 0);
    return st_done("test-faults");
}
