/*
 * libxengnttab.c - the simulated host's libxengnttab.so.1 (Xen's API and
 * ABI, see <xengnttab.h>) for a backend running as domain $XENSIM_DOMID.
 *
 * A map is a real MAP_SHARED mmap of the granting domain's memory file, so
 * data really flows.  Pins live in the granting domain's shared gnttab file
 * (active table + maptrack, see CONTRACT.md) so that several processes and
 * handles can map the same grant and the guest sees GTF_reading/GTF_writing
 * exactly while some pin exists.
 */
#include "xsim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xengnttab.h>

struct mapping {
    struct mapping *next;
    char *base;
    uint32_t count;
    struct xsim_gdom **gdom;   /* per page (one reference each) */
    uint32_t *mt;              /* per page maptrack record */
};

struct xengntdev_handle {
    struct xengntdev_handle *next;
    pid_t owner;               /* mappings do not survive fork, as gntdev */
    int fd;
    uint32_t max_grants;
    uint32_t nr_mapped;
    struct mapping *maps;
};

static struct xengntdev_handle *handles;   /* protected by the process lock */

xengnttab_handle *xengnttab_open(struct xentoollog_logger *logger, unsigned open_flags)
{
    xengnttab_handle *x;

    (void)logger;
    (void)open_flags;
    if (!xsim_dir())
        return NULL;
    x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    /* A real, distinct fd for xengnttab_fd(); the simulation needs none. */
    x->fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (x->fd < 0) {
        free(x);
        return NULL;
    }
    x->owner = getpid();
    x->max_grants = UINT32_MAX;
    xsim_lock_process();
    x->next = handles;
    handles = x;
    xsim_unlock_process();
    return x;
}

int xengnttab_fd(xengnttab_handle *x)
{
    return x->fd;
}

int xengnttab_set_max_grants(xengnttab_handle *x, uint32_t nr_grants)
{
    x->max_grants = nr_grants;
    return 0;
}

/* Release the pins of pages [0, n) of m and the whole address range. */
static void mapping_release(struct mapping *m, uint32_t n, bool count_unmapped)
{
    uint32_t i;

    for (i = 0; i < n; i++) {
        struct xsim_gdom *g = m->gdom[i];
        xsim_flock(g->fd);
        xsim_unpin(g, m->mt[i]);
        xsim_funlock(g->fd);
        if (count_unmapped)
            __atomic_fetch_add(&g->hdr->stats[XSIM_ST_PAGES_UNMAPPED], 1, __ATOMIC_RELAXED);
    }
    for (i = 0; i < m->count; i++) {
        if (m->gdom[i])
            xsim_gdom_put(m->gdom[i]);
    }
    munmap(m->base, (size_t)m->count * XSIM_PAGE);
    free(m->gdom);
    free(m->mt);
    free(m);
}

static struct mapping *mapping_new(uint32_t count)
{
    struct mapping *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    m->count = count;
    m->gdom = calloc(count, sizeof(*m->gdom));
    m->mt = calloc(count, sizeof(*m->mt));
    /* One contiguous virtual range, reserved first, filled page by page. */
    m->base = mmap(NULL, (size_t)count * XSIM_PAGE, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (!m->gdom || !m->mt || m->base == MAP_FAILED) {
        if (m->base != MAP_FAILED && m->base)
            munmap(m->base, (size_t)count * XSIM_PAGE);
        free(m->gdom);
        free(m->mt);
        free(m);
        errno = ENOMEM;
        return NULL;
    }
    return m;
}

static bool first_of_domain(const uint32_t *domids, uint32_t i)
{
    uint32_t j;

    for (j = 0; j < i; j++) {
        if (domids[j] == domids[i])
            return false;
    }
    return true;
}

/* Pin and map page i of m; returns GNTST_*. */
static int map_one(struct mapping *m, uint32_t i, uint32_t domid, uint32_t ref,
                   int prot, struct xsim_faults *f)
{
    bool writable = prot & PROT_WRITE;
    struct xsim_gdom *g;
    uint32_t frame;
    int st;

    if (domid >= DOMID_FIRST_RESERVED || !(g = xsim_gdom_get((domid_t)domid)))
        return GNTST_bad_domain;
    m->gdom[i] = g;
    if (f && xsim_fault_fire(&f->map_ref_countdown)) {
        __atomic_fetch_add(&f->fired, 1, __ATOMIC_RELAXED);
        return f->map_ref_status ? f->map_ref_status : GNTST_general_error;
    }
    xsim_flock(g->fd);
    st = xsim_pin(g, xsim_self_domid(), ref, writable, 0, &m->mt[i], &frame);
    xsim_funlock(g->fd);
    if (st != GNTST_okay)
        return st;
    if (mmap(m->base + (size_t)i * XSIM_PAGE, XSIM_PAGE, prot, MAP_SHARED | MAP_FIXED,
             g->memfd, (off_t)frame * XSIM_PAGE) == MAP_FAILED) {
        xsim_flock(g->fd);
        xsim_unpin(g, m->mt[i]);
        xsim_funlock(g->fd);
        return GNTST_general_error;
    }
    return GNTST_okay;
}

/* Count one map call in the stats of each domain it names. */
static void count_map_call(uint32_t count, const uint32_t *domids)
{
    uint32_t i;

    for (i = 0; i < count; i++) {
        struct xsim_gdom *g;
        if (first_of_domain(domids, i) && domids[i] < DOMID_FIRST_RESERVED &&
            (g = xsim_gdom_get((domid_t)domids[i]))) {
            __atomic_fetch_add(&g->hdr->stats[XSIM_ST_MAP_CALLS], 1, __ATOMIC_RELAXED);
            xsim_gdom_put(g);
        }
    }
}

static void *map_refs(xengnttab_handle *x, uint32_t count, const uint32_t *domids,
                      const uint32_t *refs, int prot)
{
    struct xsim_faults *f = xsim_faults();
    struct mapping *m;
    uint32_t i;
    int st = GNTST_okay;

    if (count == 0 || (prot & ~(PROT_READ | PROT_WRITE)) || !(prot & PROT_READ)) {
        errno = EINVAL;
        return NULL;
    }
    count_map_call(count, domids);
    if (f && xsim_fault_fire(&f->map_call_countdown)) {
        __atomic_fetch_add(&f->fired, 1, __ATOMIC_RELAXED);
        errno = f->map_call_errno ? f->map_call_errno : ENOMEM;
        return NULL;
    }
    /* Like gntdev's limit: a map beyond set_max_grants fails outright. */
    if (count > x->max_grants || x->nr_mapped + count > x->max_grants) {
        errno = EINVAL;
        return NULL;
    }
    m = mapping_new(count);
    if (!m)
        return NULL;
    for (i = 0; i < count && st == GNTST_okay; i++)
        st = map_one(m, i, domids[i], refs[i], prot, f);
    if (st != GNTST_okay) {
        /* All or nothing: undo the pages already mapped. */
        mapping_release(m, i - 1, false);
        errno = st == GNTST_bad_domain ? ESRCH : EINVAL;
        return NULL;
    }
    for (i = 0; i < count; i++)
        __atomic_fetch_add(&m->gdom[i]->hdr->stats[XSIM_ST_PAGES_MAPPED], 1, __ATOMIC_RELAXED);
    madvise(m->base, (size_t)count * XSIM_PAGE, MADV_DONTFORK);
    x->nr_mapped += count;
    m->next = x->maps;
    x->maps = m;
    return m->base;
}

void *xengnttab_map_grant_refs(xengnttab_handle *x, uint32_t count, uint32_t *domids,
                               uint32_t *refs, int prot)
{
    void *p;

    xsim_lock_process();
    p = map_refs(x, count, domids, refs, prot);
    xsim_unlock_process();
    return p;
}

void *xengnttab_map_grant_ref(xengnttab_handle *x, uint32_t domid, uint32_t ref, int prot)
{
    return xengnttab_map_grant_refs(x, 1, &domid, &ref, prot);
}

void *xengnttab_map_domain_grant_refs(xengnttab_handle *x, uint32_t count, uint32_t domid,
                                      uint32_t *refs, int prot)
{
    uint32_t *domids;
    void *p;
    uint32_t i;

    if (count == 0) {
        errno = EINVAL;
        return NULL;
    }
    domids = malloc(sizeof(*domids) * count);
    if (!domids)
        return NULL;
    for (i = 0; i < count; i++)
        domids[i] = domid;
    p = xengnttab_map_grant_refs(x, count, domids, refs, prot);
    i = (uint32_t)errno;
    free(domids);
    errno = (int)i;
    return p;
}

static struct mapping **find_mapping(xengnttab_handle *x, void *addr)
{
    struct mapping **pp;

    for (pp = &x->maps; *pp; pp = &(*pp)->next) {
        if ((*pp)->base == addr)
            return pp;
    }
    return NULL;
}

/* Count one unmap call in the stats of each domain the mapping holds
 * pages of (before the pages are released). */
static void count_unmap_call(const struct mapping *m)
{
    uint32_t i, j;

    for (i = 0; i < m->count; i++) {
        for (j = 0; j < i && m->gdom[j] != m->gdom[i]; j++)
            ;
        if (j == i && m->gdom[i])
            __atomic_fetch_add(&m->gdom[i]->hdr->stats[XSIM_ST_UNMAP_CALLS], 1,
                               __ATOMIC_RELAXED);
    }
}

static int unmap_locked(xengnttab_handle *x, void *addr, uint32_t count)
{
    struct mapping **pp = find_mapping(x, addr);
    struct mapping *m;

    /* As libxengnttab on gntdev: exactly a whole mapping, or EINVAL and
     * nothing changes. */
    if (!pp || (*pp)->count != count) {
        errno = EINVAL;
        return -1;
    }
    m = *pp;
    *pp = m->next;
    x->nr_mapped -= m->count;
    count_unmap_call(m);
    mapping_release(m, m->count, true);
    return 0;
}

/* Test knob (CONTRACT.md): while the file named by XENSIM_GNTTAB_UNMAP_HOLD
 * exists, every unmap waits before it starts, as a slow unmap on real Xen
 * (a hypercall and a TLB flush over dom0's vCPUs each) would, but without
 * a window of time to race.  Outside the process lock, so the caller's
 * other threads map, copy and unmap on other handles meanwhile. */
static void unmap_hold(void)
{
    const char *hold = getenv("XENSIM_GNTTAB_UNMAP_HOLD");
    const struct timespec tick = { 0, 2000000 };

    if (!hold || !*hold)
        return;
    while (access(hold, F_OK) == 0)
        nanosleep(&tick, NULL);
}

int xengnttab_unmap(xengnttab_handle *x, void *start_address, uint32_t count)
{
    int rc;

    unmap_hold();
    xsim_lock_process();
    rc = unmap_locked(x, start_address, count);
    xsim_unlock_process();
    return rc;
}

static int set_notify(struct mapping *m, uint32_t offset, evtchn_port_t port)
{
    struct xsim_gdom *g = m->gdom[0];
    uint16_t flags = 0;
    domid_t rdom = 0;
    uint32_t rport = 0;

    if (offset != (uint32_t)-1) {
        if (offset >= XSIM_PAGE) {
            errno = EINVAL;
            return -1;
        }
        flags |= XSIM_MT_NOTIFY_BYTE;
    }
    if (port != (evtchn_port_t)-1) {
        /* gntdev takes a reference on the port at set-up; we resolve its
         * peer now, so the event still goes out after we are gone. */
        if (xsim_evt_peer(xsim_self_domid(), port, &rdom, &rport) < 0) {
            errno = EINVAL;
            return -1;
        }
        flags |= XSIM_MT_NOTIFY_EVT;
    }
    xsim_flock(g->fd);
    g->mt[m->mt[0]].flags |= flags;
    g->mt[m->mt[0]].notify_off = (uint16_t)(offset & 0xfff);
    g->mt[m->mt[0]].notify_dom = rdom;
    g->mt[m->mt[0]].notify_port = rport;
    xsim_funlock(g->fd);
    return 0;
}

void *xengnttab_map_grant_ref_notify(xengnttab_handle *x, uint32_t domid, uint32_t ref,
                                     int prot, uint32_t notify_offset,
                                     evtchn_port_t notify_port)
{
    void *p;

    xsim_lock_process();
    p = map_refs(x, 1, &domid, &ref, prot);
    if (p && set_notify(*find_mapping(x, p), notify_offset, notify_port) < 0) {
        int e = errno;
        unmap_locked(x, p, 1);
        errno = e;
        p = NULL;
    }
    xsim_unlock_process();
    return p;
}

static void unmap_all(xengnttab_handle *x)
{
    while (x->maps) {
        struct mapping *m = x->maps;
        x->maps = m->next;
        mapping_release(m, m->count, true);
    }
    x->nr_mapped = 0;
}

/* As with /dev/xen/gntdev: every mmap of the device holds a reference to
 * the open file, so closing the fd releases nothing that is still mapped;
 * those grants stay mapped (and in use for the guest) until the process
 * exits.  A backend that closes its handle without unmapping leaks them on
 * real Xen, and so it does here.  The handle stays on the list, closed,
 * for the exit destructor and the reaper. */
int xengnttab_close(xengnttab_handle *x)
{
    struct xengntdev_handle **pp;
    bool keep;

    if (!x)
        return 0;
    xsim_lock_process();
    keep = x->owner == getpid() && x->maps;
    if (keep) {
        fprintf(stderr, "xensim: xengnttab_close with %u page(s) still mapped: "
                "they stay mapped until the process exits (as with gntdev)\n",
                x->nr_mapped);
    } else {
        for (pp = &handles; *pp; pp = &(*pp)->next) {
            if (*pp == x) {
                *pp = x->next;
                break;
            }
        }
    }
    xsim_unlock_process();
    close(x->fd);
    x->fd = -1;
    if (!keep)
        free(x);
    return 0;
}

/* Like closing /dev/xen/gntdev at exit: mappings and their unmap
 * notifications go with the process.  (SIGKILL is handled by the reaper
 * of whoever next looks at the pins.) */
__attribute__((destructor)) static void gnttab_at_exit(void)
{
    struct xengntdev_handle *x;

    xsim_lock_process();
    for (x = handles; x; x = x->next) {
        if (x->owner == getpid())
            unmap_all(x);
    }
    xsim_unlock_process();
}

/* ---- grant copy --------------------------------------------------------- */

struct copy_pin {
    struct xsim_gdom *g;
    uint32_t mt;
    uint32_t frame;
};

/* Validate and pin one side of a segment; GNTST_*. */
static int copy_side(const union xengnttab_copy_ptr *p, bool dest, uint16_t len,
                     struct copy_pin *pin)
{
    struct xsim_gdom *g;
    int st;

    if ((uint32_t)p->foreign.offset + len > XSIM_PAGE)
        return GNTST_bad_copy_arg;
    if (p->foreign.domid >= DOMID_FIRST_RESERVED ||
        !(g = xsim_gdom_get(p->foreign.domid)))
        return GNTST_bad_domain;
    xsim_flock(g->fd);
    st = xsim_pin(g, xsim_self_domid(), p->foreign.ref, dest, XSIM_MT_COPY,
                  &pin->mt, &pin->frame);
    xsim_funlock(g->fd);
    if (st != GNTST_okay) {
        xsim_gdom_put(g);
        return st;
    }
    __atomic_fetch_add(&g->hdr->stats[XSIM_ST_COPY_SEGS], 1, __ATOMIC_RELAXED);
    pin->g = g;
    return GNTST_okay;
}

static void copy_unpin(struct copy_pin *pin)
{
    if (!pin->g)
        return;
    xsim_flock(pin->g->fd);
    xsim_unpin(pin->g, pin->mt);
    xsim_funlock(pin->g->fd);
    xsim_gdom_put(pin->g);
    pin->g = NULL;
}

static int copy_data(xengnttab_grant_copy_segment_t *s, struct copy_pin *src,
                     struct copy_pin *dst)
{
    char buf[XSIM_PAGE];
    char *from = s->source.virt;

    if (src->g) {
        if (pread(src->g->memfd, buf, s->len,
                  (off_t)src->frame * XSIM_PAGE + s->source.foreign.offset) != s->len)
            return GNTST_general_error;
        from = buf;
    }
    if (dst->g) {
        if (pwrite(dst->g->memfd, from, s->len,
                   (off_t)dst->frame * XSIM_PAGE + s->dest.foreign.offset) != s->len)
            return GNTST_general_error;
    } else {
        memcpy(s->dest.virt, from, s->len);
    }
    return GNTST_okay;
}

/* Count the call in the stats of each domain it names, and take one
 * reference on each (into held[], at most 2*count) for the whole call: the
 * segments then find the domain open instead of opening it again each. */
static uint32_t count_copy_call(uint32_t count, xengnttab_grant_copy_segment_t *segs,
                                struct xsim_gdom **held)
{
    uint32_t i, j, n = 0;

    for (i = 0; i < count * 2; i++) {
        xengnttab_grant_copy_segment_t *s = &segs[i / 2];
        bool is_src = !(i & 1);
        uint16_t fl = is_src ? GNTCOPY_source_gref : GNTCOPY_dest_gref;
        uint16_t dom = is_src ? s->source.foreign.domid : s->dest.foreign.domid;
        bool seen = false;
        struct xsim_gdom *g;

        if (!(s->flags & fl))
            continue;
        for (j = 0; j < i && !seen; j++) {
            xengnttab_grant_copy_segment_t *t = &segs[j / 2];
            uint16_t tfl = (j & 1) ? GNTCOPY_dest_gref : GNTCOPY_source_gref;
            seen = (t->flags & tfl) &&
                   ((j & 1) ? t->dest.foreign.domid : t->source.foreign.domid) == dom;
        }
        if (!seen && dom < DOMID_FIRST_RESERVED && (g = xsim_gdom_get(dom))) {
            __atomic_fetch_add(&g->hdr->stats[XSIM_ST_COPY_CALLS], 1, __ATOMIC_RELAXED);
            held[n++] = g;
        }
    }
    return n;
}

static int grant_copy_locked(uint32_t count, xengnttab_grant_copy_segment_t *segs)
{
    struct xsim_faults *f = xsim_faults();
    struct copy_pin *pins = calloc((size_t)count * 2 + 1, sizeof(*pins));
    struct xsim_gdom **held = calloc((size_t)count * 2 + 1, sizeof(*held));
    uint32_t i, nheld;
    uint32_t delay;

    if (!pins || !held) {
        free(pins);
        free(held);
        return -1;
    }
    nheld = count_copy_call(count, segs, held);
    /* Phase 1: validate and pin every segment (GTF_reading/writing are set
     * while the copy is in flight, as Xen does). */
    for (i = 0; i < count; i++) {
        xengnttab_grant_copy_segment_t *s = &segs[i];
        int st = GNTST_okay;

        if (!(s->flags & (GNTCOPY_source_gref | GNTCOPY_dest_gref)) ||
            (s->flags & ~(GNTCOPY_source_gref | GNTCOPY_dest_gref)) ||
            s->len > XSIM_PAGE)
            st = GNTST_bad_copy_arg;
        else if (f && xsim_fault_fire(&f->copy_seg_countdown)) {
            __atomic_fetch_add(&f->fired, 1, __ATOMIC_RELAXED);
            st = f->copy_seg_status ? f->copy_seg_status : GNTST_general_error;
        }
        if (st == GNTST_okay && (s->flags & GNTCOPY_source_gref))
            st = copy_side(&s->source, false, s->len, &pins[2 * i]);
        if (st == GNTST_okay && (s->flags & GNTCOPY_dest_gref))
            st = copy_side(&s->dest, true, s->len, &pins[2 * i + 1]);
        s->status = (int16_t)st;
        if (st != GNTST_okay) {
            copy_unpin(&pins[2 * i]);
            copy_unpin(&pins[2 * i + 1]);
        }
    }
    delay = f ? __atomic_load_n(&f->copy_delay_us, __ATOMIC_RELAXED) : 0;
    if (delay)
        usleep(delay);
    /* Phase 2: move the data; phase 3: drop the pins. */
    for (i = 0; i < count; i++) {
        if (segs[i].status == GNTST_okay)
            segs[i].status = (int16_t)copy_data(&segs[i], &pins[2 * i], &pins[2 * i + 1]);
        copy_unpin(&pins[2 * i]);
        copy_unpin(&pins[2 * i + 1]);
    }
    for (i = 0; i < nheld; i++)
        xsim_gdom_put(held[i]);
    free(held);
    free(pins);
    return 0;
}

/* Fault copy_hold=N (CONTRACT.md): the Nth next copy and every later one
 * wait before they start (outside the lock, nothing pinned) until the
 * test sets it to 0 again: a copying backend frozen after exactly N - 1
 * copies, for as long as the test takes, without a window of time. */
static void copy_hold(void)
{
    const struct timespec tick = { 0, 2000000 };
    struct xsim_faults *f;

    xsim_lock_process();
    f = xsim_faults();
    if (f && xsim_fault_fire(&f->copy_hold_countdown)) {
        int32_t zero = 0;
        /* From 0 to "holding", unless the test has set it again since. */
        if (__atomic_compare_exchange_n(&f->copy_hold_countdown, &zero, -1, false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            __atomic_fetch_add(&f->fired, 1, __ATOMIC_RELAXED);
    }
    xsim_unlock_process();
    while (f && __atomic_load_n(&f->copy_hold_countdown, __ATOMIC_SEQ_CST) < 0)
        nanosleep(&tick, NULL);
}

int xengnttab_grant_copy(xengnttab_handle *x, uint32_t count,
                         xengnttab_grant_copy_segment_t *segs)
{
    int rc;

    (void)x;
    copy_hold();
    xsim_lock_process();
    rc = grant_copy_locked(count, segs);
    xsim_unlock_process();
    return rc;
}

/* ---- not simulated: present so that libxenctrl & co. load ---------------- */

int xengnttab_dmabuf_exp_from_refs(xengnttab_handle *x, uint32_t domid, uint32_t flags,
                                   uint32_t count, const uint32_t *refs, uint32_t *fd)
{
    errno = ENOSYS;
    return -1;
}

int xengnttab_dmabuf_exp_wait_released(xengnttab_handle *x, uint32_t fd, uint32_t wait_to_ms)
{
    errno = ENOSYS;
    return -1;
}

int xengnttab_dmabuf_imp_to_refs(xengnttab_handle *x, uint32_t domid, uint32_t fd,
                                 uint32_t count, uint32_t *refs)
{
    errno = ENOSYS;
    return -1;
}

int xengnttab_dmabuf_imp_release(xengnttab_handle *x, uint32_t fd)
{
    errno = ENOSYS;
    return -1;
}

xengntshr_handle *xengntshr_open(struct xentoollog_logger *logger, unsigned open_flags)
{
    errno = ENOSYS;
    return NULL;
}

int xengntshr_close(xengntshr_handle *x)
{
    return 0;
}

int xengntshr_fd(xengntshr_handle *x)
{
    errno = ENOSYS;
    return -1;
}

void *xengntshr_share_pages(xengntshr_handle *x, uint32_t domid, int count,
                            uint32_t *refs, int writable)
{
    errno = ENOSYS;
    return NULL;
}

void *xengntshr_share_page_notify(xengntshr_handle *x, uint32_t domid, uint32_t *ref,
                                  int writable, uint32_t notify_offset,
                                  evtchn_port_t notify_port)
{
    errno = ENOSYS;
    return NULL;
}

int xengntshr_unshare(xengntshr_handle *x, void *start_address, uint32_t count)
{
    errno = ENOSYS;
    return -1;
}
