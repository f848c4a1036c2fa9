/*
 * xsim.c - shared machinery of the simulated Xen host: environment, locks,
 * shared files, the grant pin/unpin logic (Xen's active table + a maptrack
 * keyed by pid so that dead processes can be reaped) and fault injection.
 */
#include "xsim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(sizeof(struct xsim_maptrack) == 24, "maptrack layout");
_Static_assert(sizeof(struct xsim_active) == 16, "active layout");
_Static_assert(sizeof(grant_entry_v1_t) == 8, "grant entry layout");
_Static_assert(sizeof(struct xsim_faults) == 64, "faults layout");

static pthread_mutex_t process_lock = PTHREAD_MUTEX_INITIALIZER;

const char *xsim_dir(void)
{
    static int warned;
    const char *d = getenv("XENSIM_DIR");

    if (d && d[0] == '/')
        return d;
    if (!warned) {
        warned = 1;
        fprintf(stderr, "xensim: XENSIM_DIR is %s: this is the SIMULATED Xen "
                "grant table/event channel library (tests/sim), it only "
                "works inside a simulated host (set XENSIM_DIR to an "
                "absolute directory)\n", d ? "not absolute" : "not set");
    }
    errno = ENOENT;
    return NULL;
}

domid_t xsim_self_domid(void)
{
    const char *s = getenv("XENSIM_DOMID");
    char *end;
    unsigned long v;

    if (!s || !*s)
        return 0;
    v = strtoul(s, &end, 0);
    if (*end || v >= DOMID_FIRST_RESERVED)
        return 0;
    return (domid_t)v;
}

void xsim_lock_process(void)
{
    pthread_mutex_lock(&process_lock);
}

void xsim_unlock_process(void)
{
    pthread_mutex_unlock(&process_lock);
}

int xsim_flock(int fd)
{
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

void xsim_funlock(int fd)
{
    flock(fd, LOCK_UN);
}

/* A zombie has already closed its files: the kernel released its gntdev
 * mappings and evtchn bindings at exit, long before the parent reaps it. */
static bool pid_is_zombie(int32_t pid)
{
    char path[64], buf[256];
    const char *rp;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    /* "pid (comm) S ...": comm may contain spaces and parentheses. */
    rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && rp[2] == 'Z';
}

bool xsim_pid_dead(int32_t pid)
{
    /* The caller is alive: the common case (a backend's own handles fill
     * its domain's table), answered without reading /proc. */
    if (pid <= 0 || pid == (int32_t)getpid())
        return false;
    /* EPERM means it exists (another user's process): still alive. */
    if (kill(pid, 0) < 0)
        return errno == ESRCH;
    return pid_is_zombie(pid);
}

void *xsim_map_file(const char *path, size_t size, bool create, int *fdp)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
    struct stat st;
    void *p;

    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) < 0)
        goto fail;
    if ((size_t)st.st_size < size) {
        /* Growing a shared file is race-free: every creator asks for the
         * same size and the new bytes read as zero (= initial state). */
        if (!create || ftruncate(fd, (off_t)size) < 0) {
            if (!create)
                errno = EINVAL;
            goto fail;
        }
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        goto fail;
    *fdp = fd;
    return p;
fail:
    {
        int e = errno;
        close(fd);
        errno = e;
    }
    return NULL;
}

/* ---- grant state of a domain ------------------------------------------- */

static size_t page_round(size_t n)
{
    return (n + XSIM_PAGE - 1) & ~(size_t)(XSIM_PAGE - 1);
}

size_t xsim_gnt_file_size(uint32_t nr_grants, uint32_t maptrack_size,
                          uint32_t *grants_off, uint32_t *active_off,
                          uint32_t *mt_off)
{
    size_t g = XSIM_PAGE;
    size_t a = g + page_round((size_t)nr_grants * sizeof(grant_entry_v1_t));
    size_t m = a + page_round((size_t)nr_grants * sizeof(struct xsim_active));
    size_t end = m + page_round((size_t)maptrack_size * sizeof(struct xsim_maptrack));

    *grants_off = (uint32_t)g;
    *active_off = (uint32_t)a;
    *mt_off = (uint32_t)m;
    return end;
}

static struct xsim_gdom *gdom_list;   /* protected by process_lock */

static void gdom_free(struct xsim_gdom *g)
{
    if (g->hdr)
        munmap(g->hdr, g->size);
    if (g->fd >= 0)
        close(g->fd);
    if (g->memfd >= 0)
        close(g->memfd);
    free(g);
}

static struct xsim_gdom *gdom_open(domid_t domid, const char *dir)
{
    char path[PATH_MAX];
    struct xsim_gdom *g = calloc(1, sizeof(*g));
    struct xsim_gnt_hdr h;
    struct stat st;
    uint32_t go, ao, mo;

    if (!g)
        return NULL;
    g->fd = g->memfd = -1;
    g->refs = 1;
    g->domid = domid;
    snprintf(path, sizeof(path), "%s/dom%u/gnttab", dir, domid);
    g->fd = open(path, O_RDWR | O_CLOEXEC);
    if (g->fd < 0)
        goto fail_esrch;
    if (fstat(g->fd, &st) < 0 || pread(g->fd, &h, sizeof(h), 0) != sizeof(h) ||
        h.magic != XSIM_GNT_MAGIC || h.version != XSIM_GNT_VERSION ||
        h.domid != domid)
        goto fail_esrch;
    g->dev = st.st_dev;
    g->ino = st.st_ino;
    g->size = xsim_gnt_file_size(h.nr_grants, h.maptrack_size, &go, &ao, &mo);
    if (g->size != h.file_size || go != h.grants_off || ao != h.active_off ||
        mo != h.maptrack_off || (uint64_t)st.st_size < g->size)
        goto fail_esrch;
    g->hdr = mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0);
    if (g->hdr == MAP_FAILED) {
        g->hdr = NULL;
        goto fail;
    }
    g->grants = (grant_entry_v1_t *)((char *)g->hdr + go);
    g->active = (struct xsim_active *)((char *)g->hdr + ao);
    g->mt = (struct xsim_maptrack *)((char *)g->hdr + mo);
    snprintf(path, sizeof(path), "%s/dom%u/mem", dir, domid);
    g->memfd = open(path, O_RDWR | O_CLOEXEC);
    if (g->memfd < 0)
        goto fail_esrch;
    return g;
fail_esrch:
    errno = ESRCH;
fail:
    {
        int e = errno;
        gdom_free(g);
        errno = e;
    }
    return NULL;
}

struct xsim_gdom *xsim_gdom_get(domid_t domid)
{
    const char *dir = xsim_dir();
    char path[PATH_MAX];
    struct stat st;
    struct xsim_gdom *g;

    if (!dir)
        return NULL;
    snprintf(path, sizeof(path), "%s/dom%u/gnttab", dir, domid);
    if (stat(path, &st) < 0) {
        errno = ESRCH;
        return NULL;
    }
    /* The cache is keyed by inode: a domain destroyed and re-created with
     * the same domid is a different incarnation. */
    for (g = gdom_list; g; g = g->next) {
        if (g->domid == domid && g->dev == st.st_dev && g->ino == st.st_ino) {
            g->refs++;
            return g;
        }
    }
    g = gdom_open(domid, dir);
    if (!g)
        return NULL;
    g->next = gdom_list;
    gdom_list = g;
    return g;
}

/* The last reference closes the domain's files at once: like gntdev, a
 * process that has released every grant of a domain keeps nothing of it
 * (no mapping, no fd), so a domain destroyed afterwards leaves no trace
 * in the backend.  (A cache kept past the last user held the files of a
 * destroyed domain until this process touched that domid again.)  Callers
 * that get the same domain many times in one operation hold one reference
 * across it (grant copy, map). */
void xsim_gdom_put(struct xsim_gdom *g)
{
    struct xsim_gdom **pp;

    if (--g->refs > 0)
        return;
    for (pp = &gdom_list; *pp; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    }
    gdom_free(g);
}

/* ---- pins ------------------------------------------------------------- */

static uint16_t *entry_flags(struct xsim_gdom *g, uint32_t ref)
{
    return &g->grants[ref].flags;
}

static struct xsim_proc *proc_slot(struct xsim_gdom *g, int32_t pid, bool alloc)
{
    struct xsim_proc *free_slot = NULL;
    uint32_t i;

    for (i = 0; i < XSIM_MAX_PROCS; i++) {
        struct xsim_proc *p = &g->hdr->procs[i];
        if (p->pid == pid)
            return p;
        if (!p->pid && !free_slot)
            free_slot = p;
    }
    if (alloc && free_slot) {
        free_slot->pid = pid;
        free_slot->nrecs = 0;
    }
    return alloc ? free_slot : NULL;
}

static int mt_alloc(struct xsim_gdom *g, uint32_t *idx)
{
    uint32_t i;

    for (i = 0; i < g->hdr->maptrack_size; i++) {
        if (!(g->mt[i].flags & XSIM_MT_USED)) {
            *idx = i;
            return 0;
        }
    }
    return -1;
}

/* Set or clear GTF_reading/GTF_writing in the guest-owned entry.  Only the
 * in-use bits change: the guest may rewrite the rest at any time. */
static void entry_set_use(struct xsim_gdom *g, uint32_t ref)
{
    struct xsim_active *a = &g->active[ref];
    uint16_t set = 0, clear = 0;

    if (a->rd_pins + a->wr_pins)
        set |= GTF_reading;
    else
        clear |= GTF_reading;
    if (a->wr_pins)
        set |= GTF_writing;
    else
        clear |= GTF_writing;
    if (set)
        __atomic_fetch_or(entry_flags(g, ref), set, __ATOMIC_SEQ_CST);
    if (clear)
        __atomic_fetch_and(entry_flags(g, ref), (uint16_t)~clear, __ATOMIC_SEQ_CST);
}

int xsim_pin(struct xsim_gdom *g, domid_t self, uint32_t ref, bool writable,
             uint16_t mtflags, uint32_t *mt_idx, uint32_t *frame)
{
    grant_entry_v1_t e;
    struct xsim_active *a;
    struct xsim_proc *p;
    uint32_t idx;

    if (ref >= g->hdr->nr_grants)
        return GNTST_bad_gntref;
    /* Read the guest-controlled entry once, then validate the copy. */
    e.flags = __atomic_load_n(&g->grants[ref].flags, __ATOMIC_ACQUIRE);
    e.domid = __atomic_load_n(&g->grants[ref].domid, __ATOMIC_RELAXED);
    e.frame = __atomic_load_n(&g->grants[ref].frame, __ATOMIC_RELAXED);
    if ((e.flags & GTF_type_mask) != GTF_permit_access || e.domid != self)
        return GNTST_permission_denied;
    if (writable && (e.flags & GTF_readonly))
        return GNTST_permission_denied;
    a = &g->active[ref];
    if (!(a->rd_pins + a->wr_pins)) {
        if (e.frame >= g->hdr->nr_pages)
            return GNTST_bad_page;
        a->frame = e.frame;
    }
    /* Out of process slots or maptrack records: those of processes that
     * died (SIGKILL: nothing unmapped) go first, as on Xen, where the
     * release of a dead process's gntdev file unmaps all it had. */
    p = proc_slot(g, getpid(), true);
    if (!p || mt_alloc(g, &idx) < 0) {
        xsim_gnt_reap(g);
        p = proc_slot(g, getpid(), true);
    }
    if (!p || mt_alloc(g, &idx) < 0)
        return GNTST_no_space;   /* like a full maptrack in Xen */
    p->nrecs++;
    g->mt[idx] = (struct xsim_maptrack){
        .pid = getpid(), .ref = ref,
        .flags = (uint16_t)(XSIM_MT_USED | mtflags | (writable ? XSIM_MT_WRITABLE : 0)),
    };
    if (writable)
        a->wr_pins++;
    else
        a->rd_pins++;
    entry_set_use(g, ref);
    *mt_idx = idx;
    *frame = a->frame;
    return GNTST_okay;
}

static void run_notify(struct xsim_gdom *g, struct xsim_maptrack *m)
{
    if (m->flags & XSIM_MT_NOTIFY_BYTE) {
        uint8_t zero = 0;
        off_t off = (off_t)g->active[m->ref].frame * XSIM_PAGE + m->notify_off;
        /* Through the memory file: works whether or not the mapping (or
         * the process that had it) still exists. */
        if (pwrite(g->memfd, &zero, 1, off) != 1)
            fprintf(stderr, "xensim: unmap notify: cannot clear byte: %m\n");
    }
}

void xsim_unpin(struct xsim_gdom *g, uint32_t idx)
{
    struct xsim_maptrack m = g->mt[idx];
    struct xsim_active *a;
    struct xsim_proc *p;

    if (!(m.flags & XSIM_MT_USED) || m.ref >= g->hdr->nr_grants)
        return;
    a = &g->active[m.ref];
    run_notify(g, &m);
    if (m.flags & XSIM_MT_WRITABLE) {
        if (a->wr_pins)
            a->wr_pins--;
    } else if (a->rd_pins) {
        a->rd_pins--;
    }
    entry_set_use(g, m.ref);
    memset(&g->mt[idx], 0, sizeof(g->mt[idx]));
    p = proc_slot(g, m.pid, false);
    if (p && p->nrecs && --p->nrecs == 0)
        p->pid = 0;
    /* The event goes last: the guest it wakes finds the grant unpinned. */
    if (m.flags & XSIM_MT_NOTIFY_EVT)
        xsim_evt_raise(m.notify_dom, m.notify_port, (domid_t)0xffff);
}

void xsim_gnt_reap(struct xsim_gdom *g)
{
    uint32_t i, j;

    for (i = 0; i < XSIM_MAX_PROCS; i++) {
        int32_t pid = g->hdr->procs[i].pid;

        if (!pid || !xsim_pid_dead(pid))
            continue;
        for (j = 0; j < g->hdr->maptrack_size; j++) {
            if ((g->mt[j].flags & XSIM_MT_USED) && g->mt[j].pid == pid)
                xsim_unpin(g, j);
        }
        g->hdr->procs[i].pid = 0;
        g->hdr->procs[i].nrecs = 0;
    }
}

/* ---- faults ----------------------------------------------------------- */

struct xsim_faults *xsim_faults(void)
{
    static struct xsim_faults *f;    /* protected by process_lock */
    static char fpath[PATH_MAX];
    const char *dir = xsim_dir();
    char path[PATH_MAX];
    int fd;

    if (!dir)
        return NULL;
    snprintf(path, sizeof(path), "%s/faults", dir);
    if (f && strcmp(path, fpath) == 0)
        return f;
    if (f)
        munmap(f, sizeof(*f));
    f = xsim_map_file(path, sizeof(*f), true, &fd);
    if (!f)
        return NULL;
    close(fd);
    snprintf(fpath, sizeof(fpath), "%s", path);
    return f;
}

bool xsim_fault_fire(int32_t *countdown)
{
    int32_t v = __atomic_load_n(countdown, __ATOMIC_SEQ_CST);

    while (v > 0) {
        if (__atomic_compare_exchange_n(countdown, &v, v - 1, false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return v == 1;
    }
    return false;
}
