/*
 * test-gnttab.c - the strictness rules of the simulated grant tables, as
 * seen through Xen's own libxengnttab API (resolved to the simulation).
 * Each check_* proves one rule and fails if the rule is removed.
 */
#define _GNU_SOURCE
#include "simtest.h"
#include "xensim_guest.h"
#include "xsim.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xenevtchn.h>
#include <xengnttab.h>

#define GUEST 3

static xsg_dom *d;
static xengnttab_handle *gt;

/* The guest-owned flags of ref, read straight from the shared file. */
static uint16_t gflags(grant_ref_t ref)
{
    char path[4200];
    struct xsim_gnt_hdr h;
    grant_entry_v1_t e;
    int fd;

    snprintf(path, sizeof(path), "%s/dom%u/gnttab", st_dir(), GUEST);
    fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(pread(fd, &h, sizeof(h), 0) == sizeof(h));
    REQUIRE(pread(fd, &e, sizeof(e), h.grants_off + ref * sizeof(e)) == sizeof(e));
    close(fd);
    return e.flags;
}

/* Mappings of the guest's memory file in this process (the guest library
 * itself holds one). */
static int mem_mappings(void)
{
    char line[4400], needle[64];
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0;

    REQUIRE(f);
    snprintf(needle, sizeof(needle), "/dom%u/mem", GUEST);
    while (fgets(line, sizeof(line), f)) {
        if (strstr(line, needle))
            n++;
    }
    fclose(f);
    return n;
}

static grant_ref_t grant_page(uint32_t *gfn, bool ro, uint8_t fill, domid_t to)
{
    grant_ref_t ref;

    REQUIRE(xsg_page_alloc(d, gfn) == 0);
    memset(xsg_page(d, *gfn), fill, XSG_PAGE_SIZE);
    REQUIRE(xsg_grant(d, to, *gfn, ro, &ref) == 0);
    return ref;
}

/* GTF_permit_access, grantee domid and GTF_readonly are all checked. */
static void check_map_permissions(void)
{
    uint32_t gfn;
    grant_ref_t other = grant_page(&gfn, false, 1, 7);   /* granted to dom 7 */
    grant_ref_t ro = grant_page(&gfn, true, 2, 0);
    void *p;

    errno = 0;
    CHECK(xengnttab_map_grant_ref(gt, GUEST, other, PROT_READ) == NULL && errno == EINVAL);
    CHECK(xengnttab_map_grant_ref(gt, GUEST, 200, PROT_READ) == NULL);   /* never granted */
    CHECK(xengnttab_map_grant_ref(gt, GUEST, 100000, PROT_READ) == NULL); /* out of table */
    CHECK(xengnttab_map_grant_ref(gt, 77, 8, PROT_READ) == NULL);        /* no such domain */
    CHECK(xengnttab_map_grant_ref(gt, GUEST, ro, PROT_READ | PROT_WRITE) == NULL);
    CHECK(xsg_grant_in_use(d, ro) == 0);
    p = xengnttab_map_grant_ref(gt, GUEST, ro, PROT_READ);
    CHECK(p && ((uint8_t *)p)[0] == 2 && ((uint8_t *)p)[4095] == 2);
    CHECK(p && (gflags(ro) & (GTF_reading | GTF_writing)) == GTF_reading);
    if (p)
        CHECK(xengnttab_unmap(gt, p, 1) == 0);
    CHECK(xsg_end_access(d, ro) == 0);
    CHECK(xsg_end_access(d, other) == 0);
}

static void *ro_page;
static int write_ro(void *arg)
{
    (void)arg;
    signal(SIGSEGV, SIG_DFL);
    ((volatile uint8_t *)ro_page)[0] = 9;
    return 0;
}

static int read_page(void *arg)
{
    signal(SIGSEGV, SIG_DFL);
    return ((volatile uint8_t *)arg)[0] == 0x22 ? 0 : 3;
}

/* A read-only map is PROT_READ: a write faults.  Data flows both ways. */
static void check_map_data_and_prot(void)
{
    uint32_t g1, g2;
    grant_ref_t ro = grant_page(&g1, true, 0x11, 0);
    grant_ref_t rw = grant_page(&g2, false, 0x22, 0);
    uint8_t *r = xengnttab_map_grant_ref(gt, GUEST, ro, PROT_READ);
    uint8_t *w = xengnttab_map_grant_ref(gt, GUEST, rw, PROT_READ | PROT_WRITE);

    REQUIRE(r && w);
    CHECK(gflags(rw) & GTF_writing);
    CHECK(!(gflags(ro) & GTF_writing));
    ro_page = r;
    CHECK(st_in_child(write_ro, NULL) == 128 + SIGSEGV);
    /* Like gntdev mappings, they are not inherited by a child. */
    CHECK(st_in_child(read_page, w) == 128 + SIGSEGV);
    CHECK(((uint8_t *)xsg_page(d, g1))[0] == 0x11);
    memset(w, 0x5a, 4096);                       /* backend -> guest */
    CHECK(((uint8_t *)xsg_page(d, g2))[17] == 0x5a);
    ((uint8_t *)xsg_page(d, g1))[3] = 0x77;      /* guest -> backend */
    CHECK(r[3] == 0x77);
    CHECK(xengnttab_unmap(gt, r, 1) == 0);
    CHECK(xengnttab_unmap(gt, w, 1) == 0);
    CHECK(xsg_end_access(d, ro) == 0 && xsg_end_access(d, rw) == 0);
}

static grant_ref_t shared_ref;
static int pipe_go[2], pipe_done[2];

static int second_mapper(void *arg)
{
    xengnttab_handle *h = xengnttab_open(NULL, 0);
    void *p;
    char c;

    (void)arg;
    if (!h)
        return 2;
    p = xengnttab_map_grant_ref(h, GUEST, shared_ref, PROT_READ | PROT_WRITE);
    if (!p)
        return 3;
    c = 'm';
    if (write(pipe_done[1], &c, 1) != 1 || read(pipe_go[0], &c, 1) != 1)
        return 4;
    if (xengnttab_unmap(h, p, 1) != 0)
        return 5;
    xengnttab_close(h);
    return 0;
}

/* GTF_reading/GTF_writing are set while any process maps the grant (pin
 * counts), and the guest's end-access fails until the last unmap. */
static void check_in_use_pins(void)
{
    uint32_t gfn;
    pid_t pid;
    char c;
    void *p;

    shared_ref = grant_page(&gfn, false, 0, 0);
    REQUIRE(pipe(pipe_go) == 0 && pipe(pipe_done) == 0);
    p = xengnttab_map_grant_ref(gt, GUEST, shared_ref, PROT_READ);
    REQUIRE(p);
    CHECK(xsg_grant_in_use(d, shared_ref) == 1);
    errno = 0;
    CHECK(xsg_end_access(d, shared_ref) == -1 && errno == EBUSY);
    pid = st_spawn(second_mapper, NULL);
    REQUIRE(read(pipe_done[0], &c, 1) == 1);
    CHECK(gflags(shared_ref) & GTF_writing);
    CHECK(xengnttab_unmap(gt, p, 1) == 0);
    /* Our pin is gone, the other process's writable pin remains. */
    CHECK(xsg_grant_in_use(d, shared_ref) == 1);
    CHECK((gflags(shared_ref) & (GTF_reading | GTF_writing)) == (GTF_reading | GTF_writing));
    CHECK(xsg_end_access(d, shared_ref) == -1);
    c = 'g';
    REQUIRE(write(pipe_go[1], &c, 1) == 1);
    CHECK(st_wait(pid) == 0);
    CHECK(xsg_grant_in_use(d, shared_ref) == 0);
    CHECK(!(gflags(shared_ref) & (GTF_reading | GTF_writing)));
    CHECK(xsg_end_access(d, shared_ref) == 0);
    CHECK(xsg_grants_in_use(d) == 0);
    close(pipe_go[0]); close(pipe_go[1]); close(pipe_done[0]); close(pipe_done[1]);
}

/* Multi-ref maps are one contiguous range, and all-or-nothing. */
static void check_multi_contiguous_all_or_nothing(void)
{
    uint32_t gfn[4];
    grant_ref_t refs[4], bad[4];
    struct xsg_grant_stats before, after;
    uint8_t *p;
    int i, maps_before;

    for (i = 0; i < 4; i++)
        refs[i] = grant_page(&gfn[i], false, (uint8_t)(0xa0 + i), 0);
    p = xengnttab_map_domain_grant_refs(gt, 4, GUEST, refs, PROT_READ | PROT_WRITE);
    REQUIRE(p);
    for (i = 0; i < 4; i++)
        CHECK(p[i * 4096] == 0xa0 + i && p[i * 4096 + 4095] == 0xa0 + i);
    CHECK(xsg_grants_in_use(d) == 4);
    CHECK(xengnttab_unmap(gt, p, 4) == 0);
    CHECK(xsg_grants_in_use(d) == 0);

    /* A bad ref in the middle: nothing stays pinned or mapped. */
    memcpy(bad, refs, sizeof(bad));
    bad[2] = 300;                              /* never granted */
    xsg_grant_stats(d, &before);
    maps_before = mem_mappings();
    errno = 0;
    CHECK(xengnttab_map_domain_grant_refs(gt, 4, GUEST, bad, PROT_READ) == NULL);
    CHECK(errno == EINVAL);
    CHECK(xsg_grants_in_use(d) == 0);
    CHECK(mem_mappings() == maps_before);
    xsg_grant_stats(d, &after);
    CHECK(after.pages_mapped == before.pages_mapped);
    CHECK(after.map_calls == before.map_calls + 1);
    for (i = 0; i < 4; i++)
        CHECK(xsg_end_access(d, refs[i]) == 0);
}

/* Unmap with a wrong address or count fails with EINVAL, changing nothing,
 * as libxengnttab's Linux xengnttab_unmap does (it asks gntdev for the
 * mapping holding the address and refuses any count but that mapping's):
 * a multi-page mapping is unmapped whole, by one counted call. */
static void check_unmap_exact(void)
{
    struct xsg_grant_stats s0, s1;
    uint32_t g1, g2;
    grant_ref_t refs[2];
    uint8_t *p;

    refs[0] = grant_page(&g1, false, 0x31, 0);
    refs[1] = grant_page(&g2, false, 0x32, 0);
    p = xengnttab_map_domain_grant_refs(gt, 2, GUEST, refs, PROT_READ | PROT_WRITE);
    REQUIRE(p);
    xsg_grant_stats(d, &s0);
    errno = 0;
    CHECK(xengnttab_unmap(gt, p + 4096, 1) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(xengnttab_unmap(gt, p, 1) == -1 && errno == EINVAL);
    CHECK(xengnttab_unmap(gt, p, 3) == -1);
    CHECK(xengnttab_unmap(gt, p + 4096, 2) == -1);
    CHECK(xengnttab_unmap(gt, (char *)0x1000, 1) == -1);
    CHECK(xsg_grants_in_use(d) == 2);
    CHECK(p[0] == 0x31 && p[4096] == 0x32);     /* still mapped */
    CHECK(xengnttab_unmap(gt, p, 2) == 0);
    xsg_grant_stats(d, &s1);
    CHECK(s1.unmap_calls == s0.unmap_calls + 1);     /* the failed ones: none */
    CHECK(s1.pages_unmapped == s0.pages_unmapped + 2);
    CHECK(xsg_grants_in_use(d) == 0);
    CHECK(xsg_end_access(d, refs[0]) == 0 && xsg_end_access(d, refs[1]) == 0);
}

/* set_max_grants is a hard limit per handle, like gntdev's. */
static void check_max_grants(void)
{
    xengnttab_handle *h = xengnttab_open(NULL, 0);
    uint32_t gfn;
    grant_ref_t refs[3];
    void *a, *b;
    int i;

    REQUIRE(h);
    for (i = 0; i < 3; i++)
        refs[i] = grant_page(&gfn, false, 0, 0);
    CHECK(xengnttab_set_max_grants(h, 2) == 0);
    CHECK(xengnttab_map_domain_grant_refs(h, 3, GUEST, refs, PROT_READ) == NULL);
    a = xengnttab_map_domain_grant_refs(h, 2, GUEST, refs, PROT_READ);
    CHECK(a != NULL);
    CHECK(xengnttab_map_grant_ref(h, GUEST, refs[2], PROT_READ) == NULL);
    CHECK(xsg_grant_in_use(d, refs[2]) == 0);
    if (a)
        CHECK(xengnttab_unmap(h, a, 2) == 0);
    b = xengnttab_map_grant_ref(h, GUEST, refs[2], PROT_READ);
    CHECK(b != NULL);
    if (b)
        CHECK(xengnttab_unmap(h, b, 1) == 0);
    xengnttab_close(h);
    CHECK(xsg_grants_in_use(d) == 0);
    for (i = 0; i < 3; i++)
        CHECK(xsg_end_access(d, refs[i]) == 0);
}

static xenevtchn_handle *be_evt;
static evtchn_port_t be_port, fe_port;

static void connect_evtchn(void)
{
    int p;

    REQUIRE(xsg_evtchn_alloc_unbound(d, 0, &fe_port) == 0);
    be_evt = xenevtchn_open(NULL, 0);
    REQUIRE(be_evt);
    p = xenevtchn_bind_interdomain(be_evt, GUEST, fe_port);
    REQUIRE(p > 0);
    be_port = (evtchn_port_t)p;
}

static grant_ref_t notify_ref;
static uint32_t notify_gfn;

/* Static: still reachable at exit (the leak checker must not object to a
 * process that exits with its handles open on purpose). */
xengnttab_handle *child_gt;  /* not static: the stores must stay */
xenevtchn_handle *child_ev;

static int map_notify_and_die(void *how)
{
    int port;

    child_gt = xengnttab_open(NULL, 0);
    child_ev = xenevtchn_open(NULL, 0);

    if (!child_gt || !child_ev)
        return 2;
    /* Our own binding to a fresh guest port, like a backend process. */
    port = xenevtchn_bind_interdomain(child_ev, GUEST, fe_port);
    if (port < 0)
        return 3;
    if (!xengnttab_map_grant_ref_notify(child_gt, GUEST, notify_ref, PROT_READ | PROT_WRITE,
                                        64, (evtchn_port_t)port))
        return 4;
    if (how)
        raise(SIGKILL);
    exit(0);                                  /* exit without unmapping */
}

/* map_grant_ref_notify: on unmap, the byte is cleared and the event sent;
 * the same when the process exits or is killed without unmapping. */
static void check_unmap_notify(void)
{
    uint8_t *page, *p;
    int port, i;

    notify_ref = grant_page(&notify_gfn, false, 0xff, 0);
    page = xsg_page(d, notify_gfn);
    connect_evtchn();
    p = xengnttab_map_grant_ref_notify(gt, GUEST, notify_ref, PROT_READ | PROT_WRITE, 64,
                                       be_port);
    REQUIRE(p);
    CHECK(page[64] == 0xff);
    CHECK(!st_readable(xsg_evtchn_fd(d), 0));
    CHECK(xengnttab_unmap(gt, p, 1) == 0);
    CHECK(page[64] == 0 && page[63] == 0xff && page[65] == 0xff);
    CHECK(st_readable(xsg_evtchn_fd(d), 1000));
    CHECK(xsg_evtchn_pending(d) == (int)fe_port);
    CHECK(xsg_evtchn_unmask(d, fe_port) == 0);
    CHECK(xsg_grant_in_use(d, notify_ref) == 0);
    /* A bad notify offset is refused and leaves nothing mapped. */
    CHECK(xengnttab_map_grant_ref_notify(gt, GUEST, notify_ref, PROT_READ, 4096, -1) == NULL);
    CHECK(xsg_grant_in_use(d, notify_ref) == 0);
    xenevtchn_close(be_evt);

    for (i = 0; i < 2; i++) {               /* 0: exit(), 1: SIGKILL */
        page[64] = 0xff;
        CHECK(st_in_child(map_notify_and_die, i ? (void *)1 : NULL) == (i ? 128 + SIGKILL : 0));
        /* A normal exit unmaps at once (no reaping needed), like closing
         * the gntdev fd; SIGKILL leaves it to the reaper. */
        if (i == 0)
            CHECK(page[64] == 0 && !(gflags(notify_ref) & GTF_reading));
        else
            CHECK(page[64] == 0xff && (gflags(notify_ref) & GTF_writing));
        /* Dead processes are reaped by the next look at the grant. */
        CHECK(xsg_grant_in_use(d, notify_ref) == 0);
        CHECK(page[64] == 0);
        CHECK(st_readable(xsg_evtchn_fd(d), 1000));
        port = xsg_evtchn_pending(d);
        CHECK(port == (int)fe_port);
        CHECK(xsg_evtchn_unmask(d, fe_port) == 0);
    }
    CHECK(xsg_evtchn_close(d, fe_port) == 0);
    CHECK(xsg_end_access(d, notify_ref) == 0);
}

static int map_and_get_killed(void *arg)
{
    xengnttab_handle *h = xengnttab_open(NULL, 0);
    grant_ref_t *refs = arg;

    if (!h || !xengnttab_map_domain_grant_refs(h, 2, GUEST, refs, PROT_READ | PROT_WRITE))
        return 2;
    raise(SIGKILL);
    return 0;
}

/* In-use flags of a process killed with SIGKILL are cleared. */
static void check_dead_mapper_reaped(void)
{
    uint32_t gfn;
    grant_ref_t refs[2];

    refs[0] = grant_page(&gfn, false, 0, 0);
    refs[1] = grant_page(&gfn, false, 0, 0);
    CHECK(st_in_child(map_and_get_killed, refs) == 128 + SIGKILL);
    /* The flags are still set in the shared entry until someone reaps. */
    CHECK(gflags(refs[0]) & GTF_writing);
    CHECK(xsg_end_access(d, refs[0]) == 0);
    CHECK(xsg_end_access(d, refs[1]) == 0);
    CHECK(xsg_grants_in_use(d) == 0);
}

static int fill_maptrack_and_get_killed(void *arg)
{
    xengnttab_handle *h = xengnttab_open(NULL, 0);
    grant_ref_t *ref = arg;
    unsigned n = 0;

    if (!h)
        return 2;
    while (xengnttab_map_grant_ref(h, GUEST, *ref, PROT_READ))
        n++;
    if (!n)
        return 3;
    raise(SIGKILL);
    return 0;
}

/* A process killed with the maptrack full: as on Xen, where its gntdev
 * file's release unmaps everything, its pins must not keep a live
 * process from mapping (nor copying).  No look at the grant reaps here
 * first: the map itself must. */
static void check_dead_mapper_full_maptrack(void)
{
    uint32_t gfn;
    grant_ref_t ref = grant_page(&gfn, false, 0, 0);
    void *p;

    CHECK(st_in_child(fill_maptrack_and_get_killed, &ref) == 128 + SIGKILL);
    p = xengnttab_map_grant_ref(gt, GUEST, ref, PROT_READ);
    CHECK(p != NULL);
    if (p)
        CHECK(xengnttab_unmap(gt, p, 1) == 0);
    CHECK(xsg_end_access(d, ref) == 0);
    CHECK(xsg_grants_in_use(d) == 0);
}

/* Child: map, close the handle without unmapping, then show the grant is
 * still mapped, usable and in use until this process exits. */
static int map_then_close(void *arg)
{
    grant_ref_t *ref = arg;
    xengnttab_handle *h = xengnttab_open(NULL, 0);
    volatile char *p;

    if (!h)
        return 2;
    p = xengnttab_map_grant_ref(h, GUEST, *ref, PROT_READ | PROT_WRITE);
    if (!p)
        return 3;
    xengnttab_close(h);
    if (xsg_grant_in_use(d, *ref) != 1 || !(gflags(*ref) & GTF_writing))
        return 4;
    p[9] = 'K';              /* the mapping itself survives the close */
    return 0;                /* exit: now it goes */
}

/* Closing the gntdev fd does not unmap: every mmap holds the file open.
 * A backend that closes its handle with grants mapped keeps them mapped. */
static void check_close_keeps_mappings(void)
{
    uint32_t gfn;
    grant_ref_t ref = grant_page(&gfn, false, 0, 0);

    CHECK(st_in_child(map_then_close, &ref) == 0);
    CHECK(((char *)xsg_page(d, gfn))[9] == 'K');
    CHECK(xsg_grant_in_use(d, ref) == 0);
    CHECK(xsg_end_access(d, ref) == 0);
}

/* Does path name a file of domain domid (live, or renamed dead)? */
static bool names_domain(const char *path, unsigned domid)
{
    char live[32], dead[32];

    snprintf(live, sizeof(live), "/dom%u/", domid);
    snprintf(dead, sizeof(dead), "/dom%u.dead-", domid);
    return strstr(path, live) || strstr(path, dead);
}

/* What this process holds of domain domid's files: fds and mappings. */
static int files_of_domain(unsigned domid)
{
    char path[300], target[4200], line[4400];
    struct dirent *e;
    DIR *dir = opendir("/proc/self/fd");
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0;
    ssize_t len;

    REQUIRE(dir && f);
    while ((e = readdir(dir))) {
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        len = readlink(path, target, sizeof(target) - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        n += names_domain(target, domid);
    }
    closedir(dir);
    while (fgets(line, sizeof(line), f))
        n += names_domain(line, domid);
    fclose(f);
    return n;
}

/* A backend that released every grant of a domain (unmapped its pages,
 * finished its copies) before the domain was destroyed keeps nothing of
 * it: no mapping of its grant table or memory, no open file, as with
 * gntdev.  Leak checks of a long-running backend count on that. */
static void check_released_domain_leaves_nothing(void)
{
    enum { OTHER = 4 };
    xsg_dom *o = xsg_dom_create(OTHER, 16, 64);
    xengnttab_grant_copy_segment_t seg;
    char buf[64];
    uint32_t gfn;
    grant_ref_t ref;
    void *p;

    REQUIRE(o);
    REQUIRE(xsg_page_alloc(o, &gfn) == 0);
    REQUIRE(xsg_grant(o, 0, gfn, false, &ref) == 0);
    p = xengnttab_map_grant_ref(gt, OTHER, ref, PROT_READ | PROT_WRITE);
    CHECK(p != NULL);
    memset(&seg, 0, sizeof(seg));
    seg.flags = GNTCOPY_source_gref;
    seg.source.foreign.domid = OTHER;
    seg.source.foreign.ref = ref;
    seg.dest.virt = buf;
    seg.len = sizeof(buf);
    CHECK(xengnttab_grant_copy(gt, 1, &seg) == 0 && seg.status == GNTST_okay);
    CHECK(files_of_domain(OTHER) > 0);
    CHECK(xengnttab_unmap(gt, p, 1) == 0);
    CHECK(xsg_end_access(o, ref) == 0);
    CHECK(xsg_dom_destroy(o) == 0);
    CHECK(files_of_domain(OTHER) == 0);
}

/* A guest may revoke a mapped grant: the mapping stays, new maps fail. */
static void check_revoke(void)
{
    uint32_t gfn;
    grant_ref_t ref = grant_page(&gfn, false, 0x44, 0);
    uint8_t *p = xengnttab_map_grant_ref(gt, GUEST, ref, PROT_READ | PROT_WRITE);
    uint8_t *q;

    REQUIRE(p);
    CHECK(xsg_grant_revoke(d, ref) == 0);
    CHECK(xengnttab_map_grant_ref(gt, GUEST, ref, PROT_READ) == NULL);
    CHECK(p[5] == 0x44);
    CHECK(xsg_end_access(d, ref) == -1);
    CHECK(xengnttab_unmap(gt, p, 1) == 0);
    CHECK(gflags(ref) == 0);
    CHECK(xsg_end_access(d, ref) == 0);
    /* A guest changing the frame of a pinned grant cannot redirect maps. */
    ref = grant_page(&gfn, false, 0x45, 0);
    p = xengnttab_map_grant_ref(gt, GUEST, ref, PROT_READ);
    REQUIRE(p);
    {
        uint32_t other;
        REQUIRE(xsg_page_alloc(d, &other) == 0);
        memset(xsg_page(d, other), 0x99, 4096);
        /* rewrite the entry's frame under the backend's feet */
        char path[4200];
        struct xsim_gnt_hdr h;
        int fd;
        snprintf(path, sizeof(path), "%s/dom%u/gnttab", st_dir(), GUEST);
        fd = open(path, O_RDWR);
        REQUIRE(fd >= 0 && pread(fd, &h, sizeof(h), 0) == sizeof(h));
        REQUIRE(pwrite(fd, &other, 4, h.grants_off + ref * 8 + 4) == 4);
        close(fd);
        q = xengnttab_map_grant_ref(gt, GUEST, ref, PROT_READ);
        CHECK(q && q[0] == 0x45);
        if (q)
            xengnttab_unmap(gt, q, 1);
        xsg_page_free(d, other);
    }
    CHECK(xengnttab_unmap(gt, p, 1) == 0);
    CHECK(xsg_end_access(d, ref) == 0);
}

/* Per-domain counters shared across processes. */
static void check_stats(void)
{
    struct xsg_grant_stats a, b;
    uint32_t gfn;
    grant_ref_t ref = grant_page(&gfn, false, 0, 0);
    void *p;

    xsg_grant_stats(d, &a);
    p = xengnttab_map_grant_ref(gt, GUEST, ref, PROT_READ);
    REQUIRE(p);
    CHECK(xengnttab_unmap(gt, p, 1) == 0);
    xsg_grant_stats(d, &b);
    CHECK(b.map_calls == a.map_calls + 1);
    CHECK(b.pages_mapped == a.pages_mapped + 1);
    CHECK(b.pages_unmapped == a.pages_unmapped + 1);
    CHECK(b.copy_calls == a.copy_calls && b.copy_segs == a.copy_segs);
    CHECK(xsg_end_access(d, ref) == 0);
}

static void check_needs_xensim_dir(void)
{
    char *saved = strdup(getenv("XENSIM_DIR"));

    unsetenv("XENSIM_DIR");
    CHECK(xengnttab_open(NULL, 0) == NULL);
    CHECK(xenevtchn_open(NULL, 0) == NULL);
    setenv("XENSIM_DIR", saved, 1);
    free(saved);
}

int main(int argc, char **argv)
{
    st_init(argc, argv);
    d = xsg_dom_create(GUEST, 64, 512);
    REQUIRE(d);
    CHECK(xsg_dom_create(GUEST, 64, 512) == NULL && errno == EEXIST);
    gt = xengnttab_open(NULL, 0);
    REQUIRE(gt);
    CHECK(xengnttab_fd(gt) >= 0);
    check_needs_xensim_dir();
    check_map_permissions();
    check_map_data_and_prot();
    check_in_use_pins();
    check_multi_contiguous_all_or_nothing();
    check_unmap_exact();
    check_max_grants();
    check_unmap_notify();
    check_dead_mapper_reaped();
    check_dead_mapper_full_maptrack();
    check_close_keeps_mappings();
    check_revoke();
    check_released_domain_leaves_nothing();
    check_stats();
    xengnttab_close(gt);
    CHECK(xsg_dom_destroy(d) == 0);
    return st_done("test-gnttab");
}
