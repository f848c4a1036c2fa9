/*
 * journal.c - the per-ring journal (protocol and layout: journal.h).
 *
 * Owned by one ring; nothing here is shared between rings.  The hot-path
 * functions are plain stores into a MAP_SHARED mapping separated by
 * compiler barriers: a process that dies keeps every store it executed,
 * so only the compiler's reordering matters (not the CPU's).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xenblkd/journal.h"
#include "xenblkd/log.h"

_Static_assert(sizeof(struct xbd_journal_hdr) <= XBD_JOURNAL_HDR_SIZE, "journal header");
_Static_assert(sizeof(struct xbd_journal_rec) == 128, "journal record");

/* Orders our own stores as a signal handler (or a death) would see them. */
#define JBARRIER() __atomic_signal_fence(__ATOMIC_SEQ_CST)

struct xbd_journal {
    char *path;                 /* NULL: anonymous */
    void *map;
    size_t len;
    struct xbd_journal_hdr *h;
    struct xbd_journal_rec *rec;
    unsigned nr_ents;
};

/* a before b, wrap-aware */
static bool idx_before(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

int xbd_journal_path(char *buf, size_t n, const char *dir, const char *kind,
                     unsigned domid, unsigned devid, unsigned queue)
{
    int r = snprintf(buf, n, "%s/%s/%s-%u-%u-q%u", dir, XBD_JOURNAL_SUBDIR, kind, domid,
                     devid, queue);

    return r < 0 || (size_t)r >= n ? -1 : 0;
}

static size_t journal_size(unsigned nr_ents)
{
    return XBD_JOURNAL_HDR_SIZE + (size_t)nr_ents * sizeof(struct xbd_journal_rec);
}

/* The format check shared by open and the start-up check. */
static int check_format(const struct xbd_journal_hdr *h, size_t file_size,
                        char *why, size_t n)
{
    if (file_size < sizeof(*h)) {
        snprintf(why, n, "too short for a journal header (%zu bytes)", file_size);
        return -1;
    }
    if (h->magic != XBD_JOURNAL_MAGIC) {
        snprintf(why, n, "not a xenblkd ring journal (magic 0x%08x)", h->magic);
        return -1;
    }
    if (h->version != XBD_JOURNAL_VERSION || h->hdr_size != XBD_JOURNAL_HDR_SIZE ||
        h->rec_size != sizeof(struct xbd_journal_rec)) {
        snprintf(why, n, "journal format version %u (header %u, record %u bytes); this "
                 "xenblkd writes version %u (%u, %zu): written by an incompatible "
                 "xenblkd", h->version, h->hdr_size, h->rec_size, XBD_JOURNAL_VERSION,
                 XBD_JOURNAL_HDR_SIZE, sizeof(struct xbd_journal_rec));
        return -1;
    }
    if (h->nr_ents == 0 || h->nr_ents > 4096 || (h->nr_ents & (h->nr_ents - 1)) ||
        file_size != journal_size(h->nr_ents)) {
        snprintf(why, n, "inconsistent size (%zu bytes for %u records)", file_size,
                 h->nr_ents);
        return -1;
    }
    return 0;
}

static bool same_ring(const struct xbd_journal_hdr *h, const struct xbd_journal_id *id,
                      unsigned nr_ents)
{
    return h->nr_ents == nr_ents && h->domid == id->domid && h->queue == id->queue &&
           h->protocol == id->protocol && h->nr_pages == id->nr_pages &&
           h->remote_port == id->remote_port &&
           !memcmp(h->ring_refs, id->ring_refs, sizeof(h->ring_refs));
}

static void init_hdr(struct xbd_journal_hdr *h, const struct xbd_journal_id *id,
                     unsigned nr_ents, uint32_t start)
{
    memset(h, 0, sizeof(*h));
    h->magic = XBD_JOURNAL_MAGIC;
    h->version = XBD_JOURNAL_VERSION;
    h->hdr_size = XBD_JOURNAL_HDR_SIZE;
    h->rec_size = sizeof(struct xbd_journal_rec);
    h->nr_ents = nr_ents;
    h->domid = id->domid;
    h->queue = id->queue;
    h->protocol = id->protocol;
    h->nr_pages = id->nr_pages;
    h->remote_port = id->remote_port;
    memcpy(h->ring_refs, id->ring_refs, sizeof(h->ring_refs));
    h->req_cons = start;
    h->rsp_prod = start;
}

static struct xbd_journal *wrap(void *map, size_t len, unsigned nr_ents, const char *path)
{
    struct xbd_journal *j = calloc(1, sizeof(*j));

    if (!j)
        return NULL;
    if (path) {
        j->path = strdup(path);
        if (!j->path) {
            free(j);
            return NULL;
        }
    }
    j->map = map;
    j->len = len;
    j->h = map;
    j->rec = (struct xbd_journal_rec *)(void *)((char *)map + XBD_JOURNAL_HDR_SIZE);
    j->nr_ents = nr_ents;
    return j;
}

/* A journal found at path: 1 kept (same ring), 0 absent or stale, -1
 * error (err set). */
static int open_existing(const char *path, const struct xbd_journal_id *id,
                         unsigned nr_ents, void **map, char *err, size_t n)
{
    struct xbd_journal_hdr h;
    struct stat st;
    char why[200];
    ssize_t got;
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, n, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    memset(&h, 0, sizeof(h));
    got = pread(fd, &h, sizeof(h), 0);
    if (fstat(fd, &st) < 0 || got < 0) {
        snprintf(err, n, "cannot read %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (check_format(&h, got < (ssize_t)sizeof(h) ? (size_t)got : (size_t)st.st_size,
                     why, sizeof(why)) < 0) {
        snprintf(err, n, "%s: %s", path, why);
        close(fd);
        errno = EPROTO;
        return -1;
    }
    if (!same_ring(&h, id, nr_ents)) {
        close(fd);
        return 0;
    }
    *map = mmap(NULL, journal_size(nr_ents), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (*map == MAP_FAILED) {
        snprintf(err, n, "cannot map %s: %s", path, strerror(errno));
        return -1;
    }
    return 1;
}

/* A new journal, complete before it appears under its name. */
static void *create_new(const char *path, const struct xbd_journal_id *id,
                        unsigned nr_ents, uint32_t start, char *err, size_t n)
{
    size_t len = journal_size(nr_ents);
    char tmp[4200];
    void *map;
    int fd, rc;

    snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid());
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, n, "cannot create %s: %s", tmp, strerror(errno));
        return NULL;
    }
    /* Every block allocated now, not sized sparse: a store into a hole of
     * a MAP_SHARED page that the filesystem (a full tmpfs under /run)
     * cannot back raises SIGBUS, on the request path, for every guest of
     * the daemon.  Out of space, the ring is refused here instead. */
    rc = posix_fallocate(fd, 0, (off_t)len);
    if (rc) {
        snprintf(err, n, "cannot allocate %zu bytes for %s: %s", len, tmp, strerror(rc));
        goto fail;
    }
    map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        snprintf(err, n, "cannot map %s: %s", tmp, strerror(errno));
        goto fail;
    }
    init_hdr(map, id, nr_ents, start);
    if (rename(tmp, path) < 0) {
        snprintf(err, n, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        munmap(map, len);
        goto fail;
    }
    close(fd);
    return map;
fail:
    close(fd);
    unlink(tmp);
    return NULL;
}

struct xbd_journal *xbd_journal_open(const char *path, const struct xbd_journal_id *id,
                                     unsigned nr_ents, bool reuse, uint32_t start,
                                     bool *found, char *err, size_t errlen)
{
    size_t len = journal_size(nr_ents);
    void *map = NULL;
    struct xbd_journal *j;
    int r = 0;

    *found = false;
    if (!nr_ents || nr_ents > 4096 || (nr_ents & (nr_ents - 1))) {
        snprintf(err, errlen, "invalid number of ring entries %u", nr_ents);
        errno = EINVAL;
        return NULL;
    }
    if (!path) {
        map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        init_hdr(map, id, nr_ents, start);
    } else {
        r = reuse ? open_existing(path, id, nr_ents, &map, err, errlen) : 0;
        if (r < 0)
            return NULL;
        if (r == 0) {
            /* A journal in another format is never replaced, even when
             * not reusing: a newer xenblkd may still need it. */
            if (!reuse && open_existing(path, &(struct xbd_journal_id){ 0 }, 0, &map,
                                        err, errlen) < 0 && errno == EPROTO)
                return NULL;
            map = create_new(path, id, nr_ents, start, err, errlen);
            if (!map)
                return NULL;
        }
    }
    j = wrap(map, len, nr_ents, path);
    if (!j) {
        munmap(map, len);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *found = r == 1;
    return j;
}

void xbd_journal_close(struct xbd_journal *j, bool remove)
{
    if (!j)
        return;
    munmap(j->map, j->len);
    if (remove && j->path)
        unlink(j->path);
    free(j->path);
    free(j);
}

uint32_t xbd_journal_req_cons(const struct xbd_journal *j)
{
    return j->h->req_cons;
}

uint32_t xbd_journal_rsp_prod(const struct xbd_journal *j)
{
    return j->h->rsp_prod;
}

uint32_t xbd_journal_flags(const struct xbd_journal *j)
{
    return j->h->flags;
}

void xbd_journal_set_flags(struct xbd_journal *j, uint32_t flags)
{
    j->h->flags |= flags;
    JBARRIER();     /* before whatever the caller does next (a response) */
}

struct xbd_journal_rec *xbd_journal_rec(struct xbd_journal *j, unsigned slot)
{
    return &j->rec[slot];
}

const void *xbd_journal_take(struct xbd_journal *j, unsigned slot, uint32_t idx,
                             const void *entry, size_t size)
{
    struct xbd_journal_rec *rec = &j->rec[slot];

    /* The one read of the guest's ring entry; everything after works on
     * this dom0-private copy. */
    memcpy(rec->req, entry, size < sizeof(rec->req) ? size : sizeof(rec->req));
    __atomic_store_n(&rec->rsp, 0, __ATOMIC_RELAXED);
    rec->req_idx = idx;
    JBARRIER();
    rec->state = XBD_JREC_INFLIGHT;
    JBARRIER();
    j->h->req_cons = idx + 1;           /* commit: consumed */
    JBARRIER();
    return rec->req;
}

void xbd_journal_answered(struct xbd_journal *j, unsigned slot, uint32_t rsp_idx)
{
    struct xbd_journal_rec *rec = &j->rec[slot];

    __atomic_store_n(&rec->rsp, XBD_JRSP_VALID | rsp_idx, __ATOMIC_RELAXED);
    JBARRIER();
    j->h->rsp_prod = rsp_idx + 1;       /* commit: answered */
    JBARRIER();
    rec->state = XBD_JREC_FREE;
    JBARRIER();
}

static bool answered(const struct xbd_journal_rec *rec, uint32_t J)
{
    uint64_t rsp = __atomic_load_n(&rec->rsp, __ATOMIC_RELAXED);

    return (rsp & XBD_JRSP_VALID) && idx_before((uint32_t)rsp, J);
}

/* What recovery does with one record: -1 (inconsistent, reason in why),
 * 0 (nothing to do or to be freed: *drop says which), 1 (execute again). */
static int classify(const struct xbd_journal_rec *rec, unsigned i, uint32_t C, uint32_t J,
                    bool *drop, char *why, size_t n)
{
    *drop = false;
    if (rec->state == XBD_JREC_FREE)
        return 0;
    if (rec->state != XBD_JREC_INFLIGHT) {
        snprintf(why, n, "journal record %u has state %u", i, rec->state);
        return -1;
    }
    if (rec->req_idx == C || answered(rec, J)) {
        *drop = true;                   /* consumed again / done */
        return 0;
    }
    /* Any age: one slow request may stay in flight while thousands of
     * later ones are consumed and answered around it. */
    if (!idx_before(rec->req_idx, C)) {
        snprintf(why, n, "journal record %u holds request %u, not consumed yet "
                 "(consumed %u)", i, rec->req_idx, C);
        return -1;
    }
    return 1;
}

/*
 * Two passes: the whole journal is checked before anything in it is
 * changed, so a journal refused (and kept as evidence) is exactly the one
 * the previous instance left, and a later instance can still read it.
 */
int xbd_journal_recover(struct xbd_journal *j, uint32_t rsp_prod, uint32_t req_prod,
                        unsigned *redo, char *why, size_t n)
{
    uint32_t C = j->h->req_cons, J = j->h->rsp_prod;
    unsigned nr = j->nr_ents, nredo = 0, i, k;
    bool drop;

    /* rsp_prod <= J <= C <= req_prod, each within a ring's worth. */
    if (J - rsp_prod > nr || C - J > nr || req_prod - C > nr) {
        snprintf(why, n, "journal (consumed %u, answered %u) does not fit the ring "
                 "(rsp_prod %u, req_prod %u)", C, J, rsp_prod, req_prod);
        return -1;
    }
    for (i = 0; i < nr; i++) {
        const struct xbd_journal_rec *rec = &j->rec[i];
        int c = classify(rec, i, C, J, &drop, why, n);

        if (c < 0)
            return -1;
        if (c == 0)
            continue;
        /* Insertion by req_idx: at most a ring's worth. */
        for (k = nredo; k > 0 && idx_before(rec->req_idx, j->rec[redo[k - 1]].req_idx); k--)
            redo[k] = redo[k - 1];
        if (k > 0 && j->rec[redo[k - 1]].req_idx == rec->req_idx) {
            snprintf(why, n, "journal holds request %u twice", rec->req_idx);
            return -1;
        }
        redo[k] = i;
        nredo++;
    }
    if (nredo != C - J) {
        snprintf(why, n, "journal has %u unanswered requests, but consumed %u and "
                 "answered %u", nredo, C, J);
        return -1;
    }
    /* Consistent: only now free the records that need nothing, and wipe
     * the response marker of those executed again: one the dead instance
     * stored before it died, uncommitted (at or past J), names a ring
     * index that this instance's own responses will pass, after which
     * the next recovery would take the request for answered. */
    for (i = 0; i < nr; i++) {
        int c = classify(&j->rec[i], i, C, J, &drop, why, n);

        if (c == 0 && drop)
            j->rec[i].state = XBD_JREC_FREE;
        else if (c == 1)
            __atomic_store_n(&j->rec[i].rsp, 0, __ATOMIC_RELAXED);
    }
    return (int)nredo;
}

/* ---- the state directory --------------------------------------------- */

static bool is_tmp(const char *name)
{
    return strstr(name, ".tmp-") != NULL;
}

int xbd_journal_check_dir(const char *dir, char *err, size_t n)
{
    char path[4200], why[300];
    struct dirent *e;
    DIR *d;
    int rc = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, XBD_JOURNAL_SUBDIR);
    d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : (snprintf(err, n, "cannot read %s: %s", path,
                                               strerror(errno)), -1);
    while (rc == 0 && (e = readdir(d))) {
        struct xbd_journal_hdr h;
        struct stat st;
        ssize_t got;
        int fd;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s/%s", dir, XBD_JOURNAL_SUBDIR, e->d_name);
        if (is_tmp(e->d_name)) {
            unlink(path);           /* a creation that never finished */
            continue;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || fstat(fd, &st) < 0) {
            snprintf(err, n, "%s: %s", path, strerror(errno));
            rc = -1;
        } else if (!S_ISREG(st.st_mode)) {
            snprintf(err, n, "%s: not a regular file", path);
            rc = -1;
        } else {
            memset(&h, 0, sizeof(h));
            got = pread(fd, &h, sizeof(h), 0);
            if (got < 0 || check_format(&h, got < (ssize_t)sizeof(h) ? (size_t)got :
                                        (size_t)st.st_size, why, sizeof(why)) < 0) {
                snprintf(err, n, "%s: %s", path, got < 0 ? strerror(errno) : why);
                rc = -1;
            }
        }
        if (fd >= 0)
            close(fd);
    }
    closedir(d);
    return rc;
}

void xbd_journal_remove_device(const char *dir, const char *kind, unsigned domid,
                               unsigned devid)
{
    char path[4200];

    for (unsigned q = 0; q < 64; q++)
        if (xbd_journal_path(path, sizeof(path), dir, kind, domid, devid, q) == 0)
            unlink(path);
}

void xbd_journal_sweep(const char *dir, xbd_journal_keep_fn *keep, void *opaque)
{
    char path[4200], kind[32];
    struct dirent *e;
    unsigned domid, devid, q;
    int exists;
    DIR *d;

    snprintf(path, sizeof(path), "%s/%s", dir, XBD_JOURNAL_SUBDIR);
    d = opendir(path);
    if (!d)
        return;
    while ((e = readdir(d))) {
        char tail;

        if (e->d_name[0] == '.' || is_tmp(e->d_name))
            continue;
        if (sscanf(e->d_name, "%31[a-z0-9]-%u-%u-q%u%c", kind, &domid, &devid, &q,
                   &tail) != 4)
            continue;
        exists = keep(opaque, kind, domid, devid);
        if (exists < 0)
            xbd_warn("cannot tell whether %s device %u/%u still exists (%s): keeping its "
                     "journal %s", kind, domid, devid, strerror(errno), e->d_name);
        if (exists)
            continue;
        snprintf(path, sizeof(path), "%s/%s/%s", dir, XBD_JOURNAL_SUBDIR, e->d_name);
        unlink(path);
    }
    closedir(d);
}
