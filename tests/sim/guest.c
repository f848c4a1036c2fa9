/*
 * guest.c - libxensim_guest.a: the guest side of the simulated Xen host
 * (see xensim_guest.h and CONTRACT.md).
 */
#include "xensim_guest.h"
#include "xsim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct xsg_dom {
    domid_t domid;
    char path[PATH_MAX - 128];   /* $XENSIM_DIR/dom<D> */
    uint32_t nr_pages, nr_grants;
    uint8_t *mem;
    struct xsim_gdom g;          /* our own view of the gnttab file */
    uint8_t *page_used;          /* guest-private allocators */
    uint8_t *ref_used;
    struct xsim_evh evh;
};

static int write_zeroed(const char *path, size_t size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc;

    if (fd < 0)
        return -1;
    rc = ftruncate(fd, (off_t)size);
    close(fd);
    return rc;
}

static void remove_dir(const char *dir)
{
    char p[PATH_MAX + 16];

    snprintf(p, sizeof(p), "%s/mem", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/gnttab", dir);
    unlink(p);
    rmdir(dir);
}

/* Build the domain's files in a private directory, then publish it with
 * one rename, so that no backend ever sees a half-made domain. */
static int build_domain(const char *dir, domid_t domid, uint32_t nr_pages,
                        uint32_t nr_grants, const char *final)
{
    char tmp[PATH_MAX - 64], p[PATH_MAX];
    struct xsim_gnt_hdr h = { 0 };
    uint32_t mt = nr_grants * 4 > 1024 ? nr_grants * 4 : 1024;
    int fd, e;

    snprintf(tmp, sizeof(tmp), "%s/.dom%u.new-%d", dir, domid, (int)getpid());
    if (mkdir(tmp, 0700) < 0)
        return -1;
    h.magic = XSIM_GNT_MAGIC;
    h.version = XSIM_GNT_VERSION;
    h.domid = domid;
    h.nr_pages = nr_pages;
    h.nr_grants = nr_grants;
    h.maptrack_size = mt;
    h.file_size = xsim_gnt_file_size(nr_grants, mt, &h.grants_off, &h.active_off,
                                     &h.maptrack_off);
    snprintf(p, sizeof(p), "%s/mem", tmp);
    if (write_zeroed(p, (size_t)nr_pages * XSIM_PAGE) < 0)
        goto fail;
    snprintf(p, sizeof(p), "%s/gnttab", tmp);
    if (write_zeroed(p, h.file_size) < 0)
        goto fail;
    fd = open(p, O_RDWR | O_CLOEXEC);
    if (fd < 0 || pwrite(fd, &h, sizeof(h), 0) != sizeof(h)) {
        if (fd >= 0)
            close(fd);
        goto fail;
    }
    close(fd);
    if (rename(tmp, final) < 0) {
        if (errno == ENOTEMPTY)
            errno = EEXIST;
        goto fail;
    }
    return 0;
fail:
    e = errno;
    remove_dir(tmp);
    errno = e;
    return -1;
}

static int map_domain(xsg_dom *d)
{
    char p[PATH_MAX];
    struct stat st;
    int fd;

    snprintf(p, sizeof(p), "%s/mem", d->path);
    fd = open(p, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -1;
    d->mem = mmap(NULL, (size_t)d->nr_pages * XSIM_PAGE, PROT_READ | PROT_WRITE,
                  MAP_SHARED, fd, 0);
    d->g.memfd = fd;
    if (d->mem == MAP_FAILED)
        return -1;
    snprintf(p, sizeof(p), "%s/gnttab", d->path);
    d->g.fd = open(p, O_RDWR | O_CLOEXEC);
    if (d->g.fd < 0 || fstat(d->g.fd, &st) < 0)
        return -1;
    d->g.size = (size_t)st.st_size;
    d->g.hdr = mmap(NULL, d->g.size, PROT_READ | PROT_WRITE, MAP_SHARED, d->g.fd, 0);
    if (d->g.hdr == MAP_FAILED)
        return -1;
    d->g.domid = d->domid;
    d->g.grants = (grant_entry_v1_t *)((char *)d->g.hdr + d->g.hdr->grants_off);
    d->g.active = (struct xsim_active *)((char *)d->g.hdr + d->g.hdr->active_off);
    d->g.mt = (struct xsim_maptrack *)((char *)d->g.hdr + d->g.hdr->maptrack_off);
    return 0;
}

static void unmap_domain(xsg_dom *d)
{
    if (d->mem && d->mem != MAP_FAILED)
        munmap(d->mem, (size_t)d->nr_pages * XSIM_PAGE);
    if (d->g.hdr && d->g.hdr != MAP_FAILED)
        munmap(d->g.hdr, d->g.size);
    if (d->g.fd > 0)
        close(d->g.fd);
    if (d->g.memfd > 0)
        close(d->g.memfd);
    free(d->page_used);
    free(d->ref_used);
    free(d);
}

xsg_dom *xsg_dom_create(domid_t domid, uint32_t nr_pages, uint32_t nr_grants)
{
    const char *dir = xsim_dir();
    xsg_dom *d;
    int rc;

    if (!dir)
        return NULL;
    if (domid >= DOMID_FIRST_RESERVED || nr_pages == 0 || nr_grants <= 8 ||
        nr_pages > (1u << 20) || nr_grants > (1u << 20)) {
        errno = EINVAL;
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->domid = domid;
    d->nr_pages = nr_pages;
    d->nr_grants = nr_grants;
    d->g.fd = d->g.memfd = -1;
    d->page_used = calloc(nr_pages, 1);
    d->ref_used = calloc(nr_grants, 1);
    snprintf(d->path, sizeof(d->path), "%s/dom%u", dir, domid);
    xsim_lock_process();
    rc = build_domain(dir, domid, nr_pages, nr_grants, d->path);
    if (rc == 0 && (!d->page_used || !d->ref_used || map_domain(d) < 0 ||
                    xsim_evh_open(&d->evh, domid, true) < 0)) {
        int e = errno;
        remove_dir(d->path);
        errno = e;
        rc = -1;
    }
    xsim_unlock_process();
    if (rc < 0) {
        int e = errno;
        unmap_domain(d);
        errno = e;
        return NULL;
    }
    return d;
}

int xsg_dom_destroy(xsg_dom *d)
{
    char dead[PATH_MAX];
    static unsigned n;

    if (!d)
        return 0;
    xsim_lock_process();
    xsim_evh_close(&d->evh);
    /* Unpublish first: backends that still map our pages keep their open
     * files (as mappings of a dying domain stay valid), new maps fail. */
    snprintf(dead, sizeof(dead), "%s.dead-%d-%u", d->path, (int)getpid(), n++);
    if (rename(d->path, dead) == 0)
        remove_dir(dead);
    xsim_unlock_process();
    unmap_domain(d);
    return 0;
}

domid_t xsg_dom_id(const xsg_dom *d)
{
    return d->domid;
}

void *xsg_page(xsg_dom *d, uint32_t gfn)
{
    if (gfn >= d->nr_pages)
        return NULL;
    return d->mem + (size_t)gfn * XSIM_PAGE;
}

int xsg_page_alloc(xsg_dom *d, uint32_t *gfn)
{
    uint32_t i;

    for (i = 0; i < d->nr_pages; i++) {
        if (!d->page_used[i]) {
            d->page_used[i] = 1;
            *gfn = i;
            return 0;
        }
    }
    errno = ENOMEM;
    return -1;
}

void xsg_page_free(xsg_dom *d, uint32_t gfn)
{
    if (gfn < d->nr_pages)
        d->page_used[gfn] = 0;
}

int xsg_grant(xsg_dom *d, domid_t to, uint32_t gfn, bool readonly, grant_ref_t *ref)
{
    grant_entry_v1_t *e;
    uint32_t r;

    if (gfn >= d->nr_pages) {
        errno = EINVAL;
        return -1;
    }
    for (r = 8; r < d->nr_grants; r++) {
        e = &d->g.grants[r];
        if (d->ref_used[r] || __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE))
            continue;
        d->ref_used[r] = 1;
        e->domid = to;
        e->frame = gfn;
        /* Flags last: the entry is valid only once it is complete. */
        __atomic_store_n(&e->flags,
                         (uint16_t)(GTF_permit_access | (readonly ? GTF_readonly : 0)),
                         __ATOMIC_RELEASE);
        *ref = r;
        return 0;
    }
    errno = ENOSPC;
    return -1;
}

static uint16_t flags_reaped(xsg_dom *d, grant_ref_t ref)
{
    /* Pins of processes that died are released before anyone decides
     * whether a grant is in use. */
    xsim_flock(d->g.fd);
    xsim_gnt_reap(&d->g);
    xsim_funlock(d->g.fd);
    return __atomic_load_n(&d->g.grants[ref].flags, __ATOMIC_ACQUIRE);
}

int xsg_end_access(xsg_dom *d, grant_ref_t ref)
{
    uint16_t f;
    int rc = 0;

    if (ref >= d->nr_grants) {
        errno = EINVAL;
        return -1;
    }
    xsim_lock_process();
    f = flags_reaped(d, ref);
    /* As Linux's gnttab_end_foreign_access_ref: one cmpxchg that fails if
     * the backend set GTF_reading/GTF_writing in between. */
    do {
        if (f & (GTF_reading | GTF_writing)) {
            errno = EBUSY;
            rc = -1;
            break;
        }
    } while (!__atomic_compare_exchange_n(&d->g.grants[ref].flags, &f, 0, false,
                                          __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    if (rc == 0)
        d->ref_used[ref] = 0;
    xsim_unlock_process();
    return rc;
}

int xsg_grant_in_use(xsg_dom *d, grant_ref_t ref)
{
    uint16_t f;

    if (ref >= d->nr_grants) {
        errno = EINVAL;
        return -1;
    }
    xsim_lock_process();
    f = flags_reaped(d, ref);
    xsim_unlock_process();
    return (f & (GTF_reading | GTF_writing)) ? 1 : 0;
}

int xsg_grants_in_use(xsg_dom *d)
{
    uint32_t r;
    int n = 0;

    xsim_lock_process();
    (void)flags_reaped(d, 0);
    for (r = 0; r < d->nr_grants; r++) {
        if (__atomic_load_n(&d->g.grants[r].flags, __ATOMIC_ACQUIRE) &
            (GTF_reading | GTF_writing))
            n++;
    }
    xsim_unlock_process();
    return n;
}

int xsg_grant_revoke(xsg_dom *d, grant_ref_t ref)
{
    if (ref >= d->nr_grants) {
        errno = EINVAL;
        return -1;
    }
    /* A hostile guest just rewrites its entry; only the in-use bits stay
     * (they belong to Xen). */
    __atomic_fetch_and(&d->g.grants[ref].flags, (uint16_t)(GTF_reading | GTF_writing),
                       __ATOMIC_SEQ_CST);
    return 0;
}

int xsg_grant_stats(xsg_dom *d, struct xsg_grant_stats *st)
{
    uint64_t *s = d->g.hdr->stats;

    st->map_calls = __atomic_load_n(&s[XSIM_ST_MAP_CALLS], __ATOMIC_RELAXED);
    st->pages_mapped = __atomic_load_n(&s[XSIM_ST_PAGES_MAPPED], __ATOMIC_RELAXED);
    st->pages_unmapped = __atomic_load_n(&s[XSIM_ST_PAGES_UNMAPPED], __ATOMIC_RELAXED);
    st->copy_calls = __atomic_load_n(&s[XSIM_ST_COPY_CALLS], __ATOMIC_RELAXED);
    st->copy_segs = __atomic_load_n(&s[XSIM_ST_COPY_SEGS], __ATOMIC_RELAXED);
    st->unmap_calls = __atomic_load_n(&s[XSIM_ST_UNMAP_CALLS], __ATOMIC_RELAXED);
    return 0;
}

/* ---- event channels ----------------------------------------------------- */

#define EVT_CALL(expr)                 \
    do {                               \
        int rc_;                       \
        xsim_lock_process();           \
        rc_ = (expr);                  \
        xsim_unlock_process();         \
        return rc_;                    \
    } while (0)

int xsg_evtchn_alloc_unbound(xsg_dom *d, domid_t remote, evtchn_port_t *port)
{
    int p;

    xsim_lock_process();
    p = xsim_evh_bind_unbound(&d->evh, remote);
    xsim_unlock_process();
    if (p < 0)
        return -1;
    *port = (evtchn_port_t)p;
    return 0;
}

int xsg_evtchn_fd(xsg_dom *d)
{
    return d->evh.sock;
}

int xsg_evtchn_notify(xsg_dom *d, evtchn_port_t port)
{
    EVT_CALL(xsim_evh_notify(&d->evh, port));
}

int xsg_evtchn_pending(xsg_dom *d)
{
    EVT_CALL(xsim_evh_pending(&d->evh));
}

int xsg_evtchn_unmask(xsg_dom *d, evtchn_port_t port)
{
    EVT_CALL(xsim_evh_unmask(&d->evh, port));
}

int xsg_evtchn_close(xsg_dom *d, evtchn_port_t port)
{
    EVT_CALL(xsim_evh_unbind(&d->evh, port));
}

int xsg_evtchn_is_connected(xsg_dom *d, evtchn_port_t port)
{
    EVT_CALL(xsim_evh_is_connected(&d->evh, port));
}

/* ---- fault injection ---------------------------------------------------- */

struct fault_key {
    const char *name;
    size_t off;
};

static const struct fault_key fault_keys[] = {
    { "map_call", offsetof(struct xsim_faults, map_call_countdown) },
    { "map_call_errno", offsetof(struct xsim_faults, map_call_errno) },
    { "map_ref", offsetof(struct xsim_faults, map_ref_countdown) },
    { "map_ref_status", offsetof(struct xsim_faults, map_ref_status) },
    { "copy_seg", offsetof(struct xsim_faults, copy_seg_countdown) },
    { "copy_seg_status", offsetof(struct xsim_faults, copy_seg_status) },
    { "evt_drop", offsetof(struct xsim_faults, evt_drop_countdown) },
    { "evt_delay_us", offsetof(struct xsim_faults, evt_delay_us) },
    { "copy_delay_us", offsetof(struct xsim_faults, copy_delay_us) },
    { "copy_hold", offsetof(struct xsim_faults, copy_hold_countdown) },
    { "evt_kill", offsetof(struct xsim_faults, evt_kill_countdown) },
};

static int fault_set_one(struct xsim_faults *f, const char *kv)
{
    const char *eq = strchr(kv, '=');
    char *end;
    long v;
    size_t i;

    if (!eq)
        goto bad;
    v = strtol(eq + 1, &end, 0);
    if (end == eq + 1 || (*end && *end != ','))
        goto bad;
    for (i = 0; i < sizeof(fault_keys) / sizeof(fault_keys[0]); i++) {
        if (strlen(fault_keys[i].name) == (size_t)(eq - kv) &&
            strncmp(fault_keys[i].name, kv, (size_t)(eq - kv)) == 0) {
            __atomic_store_n((int32_t *)((char *)f + fault_keys[i].off), (int32_t)v,
                             __ATOMIC_SEQ_CST);
            return 0;
        }
    }
bad:
    errno = EINVAL;
    return -1;
}

int xsg_fault_set(const char *spec)
{
    struct xsim_faults *f;
    const char *p = spec;
    int rc = 0;

    xsim_lock_process();
    f = xsim_faults();
    if (!f)
        rc = -1;
    if (f && strcmp(spec, "clear") == 0) {
        memset(&f->map_call_countdown, 0,
               offsetof(struct xsim_faults, fired) - offsetof(struct xsim_faults, map_call_countdown));
        p = "";
    }
    while (rc == 0 && *p) {
        rc = fault_set_one(f, p);
        p = strchr(p, ',');
        p = p ? p + 1 : "";
    }
    if (f) {
        f->version = 1;
        f->magic = XSIM_FAULT_MAGIC;
    }
    xsim_unlock_process();
    return rc;
}

uint64_t xsg_fault_fired(void)
{
    struct xsim_faults *f;
    uint64_t n = 0;

    xsim_lock_process();
    f = xsim_faults();
    if (f)
        n = __atomic_load_n(&f->fired, __ATOMIC_SEQ_CST);
    xsim_unlock_process();
    return n;
}
