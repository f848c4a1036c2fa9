/* uring-gnt-probe: can io_uring register gntdev-mapped grant pages as fixed
 * buffers, and do O_DIRECT I/O through them?  A research probe for the
 * real-Xen tier (tests/xen/uring-gnt.sh), not part of xenblkd.
 *
 * dom0 grants its own pages to itself (gntalloc, domid 0), maps those
 * grants back with gntdev (writable) and registers the gntdev mapping with
 * io_uring (IORING_REGISTER_BUFFERS).  The granting side's view (gntalloc's
 * mmap) is the "guest memory": what READ_FIXED puts into the gntdev
 * mapping must appear there, and what WRITE_FIXED writes from it must be
 * what the granting side wrote.  Only kernel UAPI headers and raw system
 * calls: no Xen or io_uring library, so it links statically on the host.
 *
 * Usage: uring-gnt-probe MODE FILE
 *   io       register, 4 KiB and 128 KiB WRITE_FIXED/READ_FIXED, compare,
 *            then the clean order: unregister, munmap, unmap, dealloc
 *   unmap    register, one READ_FIXED, then munmap and the gntdev unmap
 *            ioctl while still registered, then unregister
 *   exit     register, one READ_FIXED, then exit with everything still
 *            mapped and registered (what a SIGKILL of a daemon does: the
 *            kernel tears down the mm before the ring drops its pins)
 *   unmapexit  register, munmap and unmap while registered, then exit
 *            without unregistering (the ring's teardown drops the pins)
 *   afterio  register, munmap and unmap while registered, then a
 *            READ_FIXED into the pages gntdev was asked to give back
 *   selftest the io mode on anonymous memory, no Xen (checks the probe)
 * FILE: a file on dom0's disk, opened O_DIRECT (at least 512 KiB).
 * Every result is an "XBD-URING ..." line on stdout.  If XBD_HOOK is set,
 * the probe runs `$XBD_HOOK TAG` at its checkpoints (dom0 dumps Xen's
 * grant table there) and waits for it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/io_uring.h>
/* The UAPI gntdev.h uses Xen's two types without defining them. */
typedef uint32_t grant_ref_t;
typedef uint16_t domid_t;
#include <xen/gntalloc.h>
#include <xen/gntdev.h>

#define PAGE 4096u
#define NPAGES 32u              /* 128 KiB: the largest I/O of the probe */
#define LEN (NPAGES * PAGE)

static double t_start;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    printf("XBD-URING ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf(" t=%.3f\n", now() - t_start);
    fflush(stdout);
}

static void hook(const char *tag)
{
    const char *h = getenv("XBD_HOOK");
    if (!h || !*h)
        return;
    say("hook %s", tag);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "$XBD_HOOK \"$0\"", tag, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

/* --- io_uring by raw system calls --------------------------------------- */
struct ring {
    int fd;
    unsigned *sq_tail, *sq_mask, *sq_array;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
};

static int ring_init(struct ring *r)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    r->fd = (int)syscall(__NR_io_uring_setup, 4, &p);
    if (r->fd < 0)
        return -errno;
    size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    uint8_t *sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                       r->fd, IORING_OFF_SQ_RING);
    uint8_t *cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                       r->fd, IORING_OFF_CQ_RING);
    void *sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED)
        return -errno;
    r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)(sq + p.sq_off.array);
    r->cq_head = (unsigned *)(cq + p.cq_off.head);
    r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    r->sqes = sqes;
    return 0;
}

/* One fixed-buffer read or write, waited for; the cqe's res (bytes or -errno). */
static int ring_rw(struct ring *r, int op, int fd, void *buf, unsigned len, uint64_t off)
{
    unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask;
    struct io_uring_sqe *sqe = &r->sqes[idx];
    memset(sqe, 0, sizeof(*sqe));
    sqe->opcode = (uint8_t)op;
    sqe->fd = fd;
    sqe->addr = (uintptr_t)buf;
    sqe->len = len;
    sqe->off = off;
    sqe->buf_index = 0;
    r->sq_array[idx] = idx;
    __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
    for (;;) {
        long n = syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
        if (n >= 0 || errno != EINTR) {
            if (n < 0)
                return -errno;
            break;
        }
    }
    unsigned head = *r->cq_head;
    while (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE))
        syscall(__NR_io_uring_enter, r->fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0);
    int res = r->cqes[head & *r->cq_mask].res;
    __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
    return res;
}

static int ring_register(struct ring *r, void *buf, size_t len)
{
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    return syscall(__NR_io_uring_register, r->fd, IORING_REGISTER_BUFFERS, &iov, 1) < 0 ? -errno : 0;
}

static int ring_unregister(struct ring *r)
{
    return syscall(__NR_io_uring_register, r->fd, IORING_UNREGISTER_BUFFERS, NULL, 0) < 0 ? -errno : 0;
}

/* --- the grants: gntalloc gives, gntdev maps ---------------------------- */
struct grants {
    int alloc_fd, dev_fd;
    uint64_t alloc_index, dev_index;
    uint32_t refs[NPAGES];
    uint8_t *shared;            /* the granting side: gntalloc's mmap */
    uint8_t *mapped;            /* the grant mapping: gntdev's mmap */
};

static int grants_share(struct grants *g)
{
    g->alloc_fd = open("/dev/xen/gntalloc", O_RDWR | O_CLOEXEC);
    if (g->alloc_fd < 0) {
        say("step=gntalloc-open rc=-%d err=%s", errno, strerror(errno));
        return -1;
    }
    size_t sz = sizeof(struct ioctl_gntalloc_alloc_gref) + NPAGES * sizeof(uint32_t);
    struct ioctl_gntalloc_alloc_gref *a = calloc(1, sz);
    a->domid = 0;
    a->flags = GNTALLOC_FLAG_WRITABLE;
    a->count = NPAGES;
    if (ioctl(g->alloc_fd, IOCTL_GNTALLOC_ALLOC_GREF, a) < 0) {
        say("step=gntalloc-alloc rc=-%d err=%s", errno, strerror(errno));
        return -1;
    }
    g->alloc_index = a->index;
    memcpy(g->refs, a->gref_ids, sizeof(g->refs));
    free(a);
    g->shared = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, g->alloc_fd, (off_t)g->alloc_index);
    if (g->shared == MAP_FAILED) {
        say("step=gntalloc-mmap rc=-%d err=%s", errno, strerror(errno));
        return -1;
    }
    say("step=share rc=0 pages=%u refs=%u-%u", NPAGES, g->refs[0], g->refs[NPAGES - 1]);
    return 0;
}

static int grants_map(struct grants *g)
{
    g->dev_fd = open("/dev/xen/gntdev", O_RDWR | O_CLOEXEC);
    if (g->dev_fd < 0) {
        say("step=gntdev-open rc=-%d err=%s", errno, strerror(errno));
        return -1;
    }
    size_t sz = sizeof(struct ioctl_gntdev_map_grant_ref) + NPAGES * sizeof(struct ioctl_gntdev_grant_ref);
    struct ioctl_gntdev_map_grant_ref *m = calloc(1, sz);
    m->count = NPAGES;
    for (unsigned i = 0; i < NPAGES; i++) {
        m->refs[i].domid = 0;
        m->refs[i].ref = g->refs[i];
    }
    if (ioctl(g->dev_fd, IOCTL_GNTDEV_MAP_GRANT_REF, m) < 0) {
        say("step=gntdev-map-ioctl rc=-%d err=%s", errno, strerror(errno));
        return -1;
    }
    g->dev_index = m->index;
    free(m);
    /* gntdev maps the grants at mmap time; a refused map is EINVAL/EFAULT here
     * or a SIGBUS on first touch. */
    g->mapped = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, g->dev_fd, (off_t)g->dev_index);
    if (g->mapped == MAP_FAILED) {
        say("step=gntdev-mmap rc=-%d err=%s (self-mapping refused?)", errno, strerror(errno));
        return -1;
    }
    say("step=self-map rc=0");
    return 0;
}

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
}

/* Does the gntdev mapping see what the granting side wrote, and back? */
static int same_pages(struct grants *g)
{
    fill(g->shared, LEN, 1);
    if (memcmp(g->shared, g->mapped, LEN) != 0)
        return -1;
    fill(g->mapped, LEN, 2);
    return memcmp(g->shared, g->mapped, LEN) != 0 ? -1 : 0;
}

static int unmap_all(struct grants *g, const char *order)
{
    double t0 = now();
    int rc = munmap(g->mapped, LEN) < 0 ? -errno : 0;
    say("step=munmap order=%s rc=%d secs=%.3f", order, rc, now() - t0);
    hook("after-munmap");
    struct ioctl_gntdev_unmap_grant_ref u = { .index = g->dev_index, .count = NPAGES };
    t0 = now();
    rc = ioctl(g->dev_fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &u) < 0 ? -errno : 0;
    say("step=gntdev-unmap-ioctl order=%s rc=%d secs=%.3f", order, rc, now() - t0);
    hook("after-unmap-ioctl");
    return rc;
}

static void release(struct grants *g)
{
    double t0 = now();
    close(g->dev_fd);
    say("step=gntdev-close secs=%.3f", now() - t0);
    munmap(g->shared, LEN);
    struct ioctl_gntalloc_dealloc_gref d = { .index = g->alloc_index, .count = NPAGES };
    int rc = ioctl(g->alloc_fd, IOCTL_GNTALLOC_DEALLOC_GREF, &d) < 0 ? -errno : 0;
    close(g->alloc_fd);
    say("step=gntalloc-dealloc rc=%d", rc);
}

/* One READ_FIXED or WRITE_FIXED of len bytes at file offset off, from or into
 * the gntdev mapping at buffer offset boff; judged against the granting
 * side's pages and an ordinary O_DIRECT read of the file. */
static int io_case(struct ring *r, struct grants *g, int fd, unsigned len, uint64_t off, unsigned boff,
                   uint32_t seed)
{
    static uint8_t *plain;
    if (!plain && posix_memalign((void **)&plain, PAGE, LEN) != 0)
        return -1;
    int bad = 0;

    /* WRITE_FIXED: the granting side writes the pattern, the file gets it. */
    fill(g->shared + boff, len, seed);
    double t0 = now();
    int res = ring_rw(r, IORING_OP_WRITE_FIXED, fd, g->mapped + boff, len, off);
    double secs = now() - t0;
    memset(plain, 0, len);
    ssize_t n = pread(fd, plain, len, (off_t)off);
    int same = n == (ssize_t)len && memcmp(plain, g->shared + boff, len) == 0;
    say("op=write_fixed len=%u off=%llu res=%d%s%s data=%s secs=%.4f", len, (unsigned long long)off, res,
        res < 0 ? " err=" : "", res < 0 ? strerror(-res) : "", same ? "match" : "MISMATCH", secs);
    bad |= res != (int)len || !same;

    /* READ_FIXED: the file's block lands in the granted pages. */
    fill(plain, len, seed + 1000);
    n = pwrite(fd, plain, len, (off_t)off);
    memset(g->shared + boff, 0, len);
    t0 = now();
    res = ring_rw(r, IORING_OP_READ_FIXED, fd, g->mapped + boff, len, off);
    secs = now() - t0;
    same = n == (ssize_t)len && memcmp(plain, g->shared + boff, len) == 0;
    say("op=read_fixed len=%u off=%llu res=%d%s%s data=%s secs=%.4f", len, (unsigned long long)off, res,
        res < 0 ? " err=" : "", res < 0 ? strerror(-res) : "", same ? "match" : "MISMATCH", secs);
    bad |= res != (int)len || !same;
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    t_start = now();
    if (argc != 3) {
        fprintf(stderr, "usage: %s io|unmap|exit|unmapexit|afterio|selftest FILE\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    say("mode=%s start", mode);
    int fd = open(argv[2], O_RDWR | O_DIRECT | O_CLOEXEC);
    if (fd < 0) {
        say("step=open-file rc=-%d err=%s", errno, strerror(errno));
        return 1;
    }
    struct grants g;
    memset(&g, 0, sizeof(g));
    if (strcmp(mode, "selftest") == 0) {
        /* The probe's own io_uring code, on any host: one anonymous shared
         * mapping stands for both views. */
        g.shared = g.mapped = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (g.mapped == MAP_FAILED)
            return 1;
        mode = "io";
        g.dev_fd = g.alloc_fd = -1;
    } else if (grants_share(&g) < 0 || grants_map(&g) < 0) {
        return 1;
    }
    int rc = same_pages(&g);
    say("step=same-pages rc=%d (gntalloc and gntdev views %s)", rc, rc ? "DIFFER" : "agree");
    if (rc)
        return 1;
    hook("mapped");

    struct ring r;
    rc = ring_init(&r);
    say("step=io_uring_setup rc=%d%s%s", rc, rc ? " err=" : "", rc ? strerror(-rc) : "");
    if (rc)
        return 1;
    double t0 = now();
    rc = ring_register(&r, g.mapped, LEN);
    say("step=register_buffers len=%u rc=%d%s%s secs=%.4f", LEN, rc, rc ? " err=" : "", rc ? strerror(-rc) : "",
        now() - t0);
    if (rc)
        return 3;
    hook("registered");

    int status = 0;
    if (strcmp(mode, "io") == 0) {
        /* 4 KiB at the start of the buffer and mid-buffer, 128 KiB whole. */
        status |= io_case(&r, &g, fd, PAGE, 0, 0, 11) < 0;
        status |= io_case(&r, &g, fd, PAGE, 5 * PAGE, 7 * PAGE, 12) < 0;
        status |= io_case(&r, &g, fd, LEN, 2 * LEN, 0, 13) < 0;
        say("io result=%s", status ? "FAIL" : "ok");
        rc = ring_unregister(&r);
        say("step=unregister_buffers rc=%d", rc);
        hook("unregistered");
        unmap_all(&g, "unregistered-first");
        release(&g);
        hook("released");
    } else if (strcmp(mode, "exit") == 0) {
        status |= io_case(&r, &g, fd, PAGE, 0, 0, 21) < 0;
        say("step=exit-registered (mapped, registered, nothing closed)");
        return status;
    } else if (strcmp(mode, "unmap") == 0 || strcmp(mode, "unmapexit") == 0 || strcmp(mode, "afterio") == 0) {
        status |= io_case(&r, &g, fd, PAGE, 0, 0, 21) < 0;
        unmap_all(&g, "while-registered");
        if (strcmp(mode, "afterio") == 0) {
            /* The pages gntdev was told to give back, still pinned by the
             * ring: where does a READ_FIXED into them go? */
            static uint8_t *plain;
            if (posix_memalign((void **)&plain, PAGE, PAGE) != 0)
                return 1;
            fill(plain, PAGE, 31);
            ssize_t n = pwrite(fd, plain, PAGE, 0);
            memset(g.shared, 0, PAGE);
            t0 = now();
            int res = ring_rw(&r, IORING_OP_READ_FIXED, fd, g.mapped, PAGE, 0);
            int same = n == PAGE && memcmp(plain, g.shared, PAGE) == 0;
            say("op=read_fixed-after-unmap len=%u res=%d%s%s granted-page=%s secs=%.4f", PAGE, res,
                res < 0 ? " err=" : "", res < 0 ? strerror(-res) : "", same ? "got-the-data" : "unchanged",
                now() - t0);
            hook("after-io-after-unmap");
        }
        if (strcmp(mode, "unmapexit") == 0) {
            say("step=exit-registered (unmapped; no unregister, no close)");
            return status;
        }
        t0 = now();
        rc = ring_unregister(&r);
        say("step=unregister_buffers after-unmap rc=%d secs=%.4f", rc, now() - t0);
        hook("unregistered");
        release(&g);
        hook("released");
    } else {
        say("unknown mode %s", mode);
        return 2;
    }
    say("mode=%s end status=%d", mode, status);
    return status;
}
