/*
 * test-ring-crash.c - a backend killed at many points of a busy ring, and
 * the successor that takes the ring over from its journal.
 *
 * The guest (this process) keeps a ring full of writes, reads of what was
 * written, flushes, barriers and malformed requests.  Each backend
 * instance is a child process running the real ring code (src/ring.c,
 * src/journal.c) over the test I/O engine (fake-io.c), which completes
 * I/O in a scripted random order, so responses come out of order as with
 * real storage.  For N = 1..200, the first instance kills itself
 * (SIGKILL, from the engine's completion hook and after each loop
 * iteration: test code, not the daemon) right after its N-th response; a
 * successor attaches from the journal and is killed in turn at another
 * point; a third one finishes the work and hands the ring over (the
 * SIGTERM path), leaving nothing mapped or bound.
 *
 * Also, deterministically, the window a kill after a response cannot hit:
 * a response written and journaled but not published (the predecessor died
 * between the two) is published by the successor, not executed again.
 * And: a ring taken over with requests outstanding and no journal, with a
 * journal that does not fit it or one in another format, is refused (no
 * guessing), and such a journal is left as it was.
 *
 * Checked every time: every request id is answered exactly once, with the
 * status it deserves (malformed ones ERROR, others OKAY); every read
 * returns what the acknowledged write of its sector wrote; afterwards
 * every acknowledged write reads back from the disk.  With
 * XBD_TEST_NO_JOURNAL=1 the successors attach as before the journal
 * existed (at rsp_prod, no journal): the test then fails, which is the
 * defect of issue 9.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "fake-io.h"
#include "fe.h"
#include "rig.h"
#include "request.h"
#include "xenblkd/journal.h"

#define NREQ       240          /* requests per run */
#define NKILL      200          /* N = 1..NKILL */
#define BAD_SECTOR (RIG_SECTORS + 8)

enum kind { K_WRITE, K_READ, K_FLUSH, K_BARRIER, K_BAD };

struct req {
    enum kind kind;
    uint64_t sector;
    unsigned page;              /* data page, UINT_MAX: none */
    uint32_t seed;              /* pattern written / expected */
    unsigned answers;
    bool acked;                 /* a write (or barrier) answered OKAY */
};

struct run {
    struct fe f;
    int disk_fd;
    char journal[PATH_MAX + 64];
    struct req req[NREQ + 1];   /* by id, 1..NREQ */
    unsigned next_id, answered;
    bool page_busy[FE_NPAGES];
    unsigned last_written;      /* id of the last acknowledged write */
    bool bad;                   /* a check failed: stop this run */
};

static bool no_journal;

/* ---- the guest ------------------------------------------------------- */

static unsigned page_get(struct run *r)
{
    for (unsigned i = 0; i < FE_NPAGES; i++)
        if (!r->page_busy[i]) {
            r->page_busy[i] = true;
            return i;
        }
    return UINT_MAX;
}

static enum kind kind_of(unsigned id)
{
    if (id % 7 == 3)
        return K_BAD;
    if (id % 11 == 5)
        return K_FLUSH;
    if (id % 13 == 7)
        return K_BARRIER;
    if (id % 3 == 0)
        return K_READ;
    return K_WRITE;
}

/* Queue request id; false if no data page is free. */
static bool issue(struct run *r, unsigned id)
{
    struct req *q = &r->req[id];
    struct fe_seg seg;

    memset(q, 0, sizeof(*q));
    q->kind = kind_of(id);
    q->page = UINT_MAX;
    if (q->kind == K_READ && !r->last_written)
        q->kind = K_WRITE;
    if (q->kind != K_FLUSH) {
        q->page = page_get(r);
        if (q->page == UINT_MAX)
            return false;
    }
    seg = (struct fe_seg){ q->page == UINT_MAX ? 0 : r->f.ref[q->page], 0, 7 };
    switch (q->kind) {
    case K_WRITE:
    case K_BARRIER:
        /* Every write has a sector of its own: a replayed write shows. */
        q->sector = (uint64_t)id * 8;
        q->seed = id;
        fe_fill(&r->f, q->page, q->seed);
        fe_rw(&r->f, q->kind == K_WRITE ? BLKIF_OP_WRITE : BLKIF_OP_WRITE_BARRIER, id,
              q->sector, &seg, 1);
        break;
    case K_READ:
        q->sector = r->req[r->last_written].sector;
        q->seed = r->req[r->last_written].seed;
        memset(xsg_page(r->f.d, r->f.gfn[q->page]), 0xee, XBD_PAGE_SIZE);
        fe_rw(&r->f, BLKIF_OP_READ, id, q->sector, &seg, 1);
        break;
    case K_FLUSH:
        fe_rw(&r->f, BLKIF_OP_FLUSH_DISKCACHE, id, 0, &seg, 0);
        break;
    case K_BAD:
        fe_rw(&r->f, BLKIF_OP_READ, id, BAD_SECTOR, &seg, 1);
        break;
    }
    return true;
}

/* Fill the ring as far as slots and pages allow. */
static void refill(struct run *r)
{
    bool any = false;

    while (r->next_id <= NREQ && !RING_FULL(&r->f.fr)) {
        if (!issue(r, r->next_id))
            break;
        r->next_id++;
        any = true;
    }
    if (any)
        fe_push(&r->f);
}

__attribute__((format(printf, 3, 4)))
static void fail(struct run *r, unsigned n, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "N=%u: ", n);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    check_failures++;
    r->bad = true;
}

static void take_responses(struct run *r, unsigned n)
{
    uint64_t id;
    uint8_t op;
    int16_t st;

    while (!r->bad && fe_pop(&r->f, &id, &op, &st)) {
        struct req *q;

        if (id == 0 || id >= r->next_id) {
            fail(r, n, "response for id %llu never issued (status %d)", (unsigned long long)id, st);
            return;
        }
        q = &r->req[id];
        if (++q->answers > 1) {
            fail(r, n, "id %llu answered %u times", (unsigned long long)id, q->answers);
            return;
        }
        r->answered++;
        if (st != (q->kind == K_BAD ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY))
            fail(r, n, "id %llu (kind %d): status %d", (unsigned long long)id, q->kind, st);
        else if (q->kind == K_READ && !fe_check(&r->f, q->page, q->seed))
            fail(r, n, "id %llu: read of sector %llu returned wrong data",
                 (unsigned long long)id, (unsigned long long)q->sector);
        if ((q->kind == K_WRITE || q->kind == K_BARRIER) && st == BLKIF_RSP_OKAY) {
            q->acked = true;
            r->last_written = (unsigned)id;
        }
        if (q->page != UINT_MAX)
            r->page_busy[q->page] = false;
    }
}

/* ---- one backend instance (a child) ---------------------------------- */

struct inst {
    struct fe *f;
    unsigned kill_after;        /* responses; 0 = never */
    RING_IDX rsp0;              /* rsp_prod when it started */
    bool drained;
};

static RING_IDX published(const struct fe *f)
{
    return __atomic_load_n(&f->fr.sring->rsp_prod, __ATOMIC_ACQUIRE);
}

static void maybe_die(void *opaque)
{
    struct inst *in = opaque;

    if (in->kill_after && published(in->f) - in->rsp0 >= in->kill_after)
        raise(SIGKILL);
}

static void inst_fatal(void *opaque, const char *reason)
{
    fprintf(stderr, "backend: ring fatal: %s\n", reason);
    _exit(5);
}

static void inst_drained(void *opaque)
{
    ((struct inst *)opaque)->drained = true;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
}

static void backend(struct run *r, unsigned seed, unsigned kill_after, bool resume)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct xbd_io_engine *io = xbd_io_engine_new(loop);
    struct xbd_loop_stats clock;
    struct xbd_backing bk = {
        .fd = r->disk_fd, .sectors = RIG_SECTORS, .sector_size = 512,
        .physical_sector_size = 512, .flush = true,
    };
    struct xbd_ring_params p = {
        .name = "crash ring", .domid = r->f.domid, .protocol = r->f.proto,
        .ring_order = r->f.order, .remote_port = r->f.port, .backing = &bk,
        .journal_path = no_journal ? NULL : r->journal,
        .resume = resume && !no_journal, .clock = &clock,
    };
    struct inst in = { .f = &r->f, .kill_after = kill_after };
    struct xbd_ring *ring;
    ev_timer tick;
    double idle_since = ev_time();

    for (unsigned i = 0; i < (1u << r->f.order); i++)
        p.ring_refs[i] = r->f.ring_refs[i];
    in.rsp0 = published(&r->f);
    fake_io_set_hook(io, maybe_die, &in);
    xbd_loop_stats_start(&clock, loop);
    ring = xbd_ring_start(loop, io, &p, inst_fatal, NULL);
    if (!ring)
        _exit(3);
    ev_timer_init(&tick, tick_cb, 0.002, 0.002);
    ev_timer_start(loop, &tick);
    for (;;) {
        unsigned q;

        maybe_die(&in);     /* answers given at dispatch, or on resume */
        q = fake_io_queued(io);
        if (q) {
            /* Mostly the newest first, sometimes any: out of order. */
            seed = seed * 1103515245u + 12345u;
            fake_io_complete_nth(io, (seed >> 16) % 4 ? q - 1 - (seed >> 20) % (q < 3 ? q : 3)
                                                      : (seed >> 20) % q);
            idle_since = ev_time();
            ev_run(loop, EVRUN_NOWAIT);
            continue;
        }
        if ((int32_t)(published(&r->f) - NREQ) >= 0)
            break;              /* everything answered: hand over */
        if (ev_time() - idle_since > 10) {
            fprintf(stderr, "backend: no progress for 10 s (rsp_prod %u)\n",
                    published(&r->f));
            _exit(4);
        }
        ev_run(loop, EVRUN_ONCE);
    }
    ev_timer_stop(loop, &tick);
    xbd_ring_handover(ring, NULL, inst_drained, &in);
    while (!in.drained)
        ev_run(loop, EVRUN_ONCE);
    _exit(0);
}

/* ---- one run: kill the first instance after n responses -------------- */

/* Run the guest while child pid serves; returns its wait status. */
static int guest_while(struct run *r, pid_t pid, unsigned n)
{
    int st, fd = xsg_evtchn_fd(r->f.d);

    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int port;

        take_responses(r, n);
        refill(r);
        if (waitpid(pid, &st, WNOHANG) == pid)
            break;
        if (poll(&pfd, 1, 5) > 0)
            while ((port = xsg_evtchn_pending(r->f.d)) >= 0)
                xsg_evtchn_unmask(r->f.d, (evtchn_port_t)port);
    }
    take_responses(r, n);
    return st;
}

static void verify_disk(struct run *r, unsigned n)
{
    unsigned char want[XBD_PAGE_SIZE], got[XBD_PAGE_SIZE];

    for (unsigned id = 1; id <= NREQ && !r->bad; id++) {
        const struct req *q = &r->req[id];

        if (!q->acked)
            continue;
        pattern(want, sizeof(want), q->seed);
        if (pread(r->disk_fd, got, sizeof(got), (off_t)(q->sector * 512)) != sizeof(got) ||
            memcmp(want, got, sizeof(got)))
            fail(r, n, "acknowledged write %u does not read back (sector %llu)", id,
                 (unsigned long long)q->sector);
    }
}

static void one_run(unsigned n, const char *dir)
{
    static struct run r;
    /* First instance killed at n, its successor somewhere else, the
     * third one finishes. */
    unsigned kill[3] = { n, (n * 37) % 61 + 1, 0 };
    unsigned inst;
    char disk[PATH_MAX + 16];

    memset(&r, 0, sizeof(r));
    fe_open(&r.f, rig_domid(), XBD_PROTO_X86_64, 0);
    snprintf(disk, sizeof(disk), "%s/disk-XXXXXX", dir);
    r.disk_fd = mkstemp(disk);
    if (r.disk_fd < 0 || unlink(disk) < 0 ||
        ftruncate(r.disk_fd, (off_t)RIG_SECTORS * 512) < 0) {
        perror("disk");
        exit(1);
    }
    if (xbd_journal_path(r.journal, sizeof(r.journal), dir, "vbd3", r.f.domid, 51712, 0) < 0) {
        fprintf(stderr, "journal path too long\n");
        exit(1);
    }
    r.next_id = 1;
    refill(&r);
    for (inst = 0; inst < 3 && !r.bad; inst++) {
        pid_t pid = fork();
        int st;

        if (pid < 0) {
            perror("fork");
            exit(1);
        }
        if (pid == 0)
            backend(&r, n * 3 + inst, kill[inst], inst > 0);
        st = guest_while(&r, pid, n);
        if (getenv("XBD_TEST_VERBOSE"))
            fprintf(stderr, "N=%u: instance %u: %s, %u answered so far\n", n, inst,
                    WIFSIGNALED(st) ? "killed" : "exited", r.answered);
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && kill[inst])
            continue;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            break;
        fail(&r, n, "backend instance %u ended with wait status 0x%x", inst, (unsigned)st);
    }
    if (!r.bad && r.answered != NREQ)
        fail(&r, n, "%u of %u requests answered", r.answered, NREQ);
    verify_disk(&r, n);
    /* The last instance handed over: nothing of the guest's is mapped. */
    if (!r.bad)
        CHECK_EQ(xsg_grants_in_use(r.f.d), 0);
    close(r.disk_fd);
    unlink(r.journal);
    fe_close(&r.f);
}

/* ---- refusals -------------------------------------------------------- */

static void refusal_fatal(void *opaque, const char *reason)
{
    check_failures++;
}

static struct xbd_ring *start_in_process(struct ev_loop *loop, struct xbd_io_engine *io,
                                         const struct xbd_loop_stats *clock,
                                         struct fe *f, struct xbd_backing *bk,
                                         const char *journal, bool resume)
{
    struct xbd_ring_params p = {
        .name = "refusal ring", .domid = f->domid, .protocol = f->proto,
        .ring_order = f->order, .remote_port = f->port, .backing = bk,
        .journal_path = journal, .resume = resume, .clock = clock,
    };

    p.ring_refs[0] = f->ring_refs[0];
    return xbd_ring_start(loop, io, &p, refusal_fatal, NULL);
}

static bool file_is(const char *path, const char *content)
{
    char buf[64] = "";
    FILE *fp = fopen(path, "r");
    size_t n = fp ? fread(buf, 1, sizeof(buf) - 1, fp) : 0;

    if (fp)
        fclose(fp);
    buf[n] = '\0';
    return fp && !strcmp(buf, content);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "w");

    if (!fp || fwrite(data, 1, len, fp) != len || fclose(fp) != 0) {
        perror(path);
        exit(1);
    }
}

/* Requests 1 and 2 consumed by a "predecessor" that wrote request 2's
 * response into the ring and its journal, then died before publishing. */
static void unpublished(const char *dir)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct xbd_io_engine *io = xbd_io_engine_new(loop);
    struct xbd_loop_stats clock;
    struct xbd_backing bk = { .sectors = RIG_SECTORS, .sector_size = 512,
                              .physical_sector_size = 512 };
    char journal[PATH_MAX + 64], disk[PATH_MAX + 16];
    struct xbd_journal_id id = { 0 };
    struct xbd_journal *j;
    struct xbd_ring *ring;
    size_t esz = xbd_ring_entry_size(XBD_PROTO_X86_64);
    bool found, seen[3] = { false };
    uint64_t rid;
    uint8_t op;
    int16_t st;
    struct fe f;
    char err[200];

    xbd_loop_stats_start(&clock, loop);
    fe_open(&f, rig_domid(), XBD_PROTO_X86_64, 0);
    snprintf(disk, sizeof(disk), "%s/disk-XXXXXX", dir);
    bk.fd = mkstemp(disk);
    if (bk.fd < 0 || unlink(disk) < 0 || ftruncate(bk.fd, (off_t)RIG_SECTORS * 512) < 0 ||
        xbd_journal_path(journal, sizeof(journal), dir, "vbd3", f.domid, 51712, 0) < 0) {
        perror("unpublished");
        exit(1);
    }
    fe_rw_page(&f, BLKIF_OP_READ, 1, 0, 0);
    fe_rw_page(&f, BLKIF_OP_READ, 2, 8, 1);
    fe_push(&f);
    id = (struct xbd_journal_id){ .domid = f.domid, .queue = 0, .protocol = f.proto,
                                  .nr_pages = 1, .remote_port = f.port };
    id.ring_refs[0] = f.ring_refs[0];
    j = xbd_journal_open(journal, &id, f.fr.nr_ents, false, 0, &found, err, sizeof(err));
    CHECK(j != NULL);
    if (!j)
        return;
    xbd_journal_take(j, 0, 0, xbd_ring_entry(f.sring, f.proto, f.fr.nr_ents, 0), esz);
    xbd_journal_take(j, 1, 1, xbd_ring_entry(f.sring, f.proto, f.fr.nr_ents, 1), esz);
    xbd_rsp_write(xbd_ring_entry(f.sring, f.proto, f.fr.nr_ents, 0), f.proto, 2,
                  BLKIF_OP_READ, BLKIF_RSP_OKAY);
    xbd_journal_answered(j, 1, 0);
    xbd_journal_close(j, false);
    CHECK_EQ(fe_pending_rsp(&f), 0);

    fake_io_set_auto(io, true);
    ring = start_in_process(loop, io, &clock, &f, &bk, journal, true);
    CHECK(ring != NULL);
    CHECK_EQ(fe_pending_rsp(&f), 1);        /* published at once */
    for (int i = 0; i < 100 && fe_pending_rsp(&f) < 2; i++)
        ev_run(loop, EVRUN_NOWAIT);
    CHECK_EQ(fe_pending_rsp(&f), 2);
    while (fe_pop(&f, &rid, &op, &st)) {
        CHECK(rid == 1 || rid == 2);
        CHECK(rid > 2 || !seen[rid]);
        CHECK_EQ(st, BLKIF_RSP_OKAY);
        if (rid <= 2)
            seen[rid] = true;
    }
    CHECK(seen[1] && seen[2]);
    if (ring) {
        struct inst in = { 0 };

        xbd_ring_stop(ring, NULL, inst_drained, &in);
        while (!in.drained)
            ev_run(loop, EVRUN_ONCE);
    }
    CHECK(access(journal, F_OK) < 0);       /* stopped for good: removed */
    xbd_io_engine_free(io);
    xbd_loop_stats_stop(&clock);
    ev_loop_destroy(loop);
    close(bk.fd);
    fe_close(&f);
}

static void refusals(const char *dir)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct xbd_io_engine *io = xbd_io_engine_new(loop);
    struct xbd_loop_stats clock;
    struct xbd_backing bk = { .sectors = RIG_SECTORS, .sector_size = 512,
                              .physical_sector_size = 512 };
    char journal[PATH_MAX + 64], disk[PATH_MAX + 16];
    struct xbd_journal_hdr h;
    struct xbd_ring *ring;
    struct fe f;
    FILE *fp;

    xbd_loop_stats_start(&clock, loop);
    fe_open(&f, rig_domid(), XBD_PROTO_X86_64, 0);
    snprintf(disk, sizeof(disk), "%s/disk-XXXXXX", dir);
    bk.fd = mkstemp(disk);
    if (bk.fd < 0 || unlink(disk) < 0 || ftruncate(bk.fd, (off_t)RIG_SECTORS * 512) < 0 ||
        xbd_journal_path(journal, sizeof(journal), dir, "vbd3", f.domid, 51712, 0) < 0) {
        perror("refusals");
        exit(1);
    }
    /* Two requests a previous backend may or may not have answered. */
    fe_rw_page(&f, BLKIF_OP_READ, 1, 0, 0);
    fe_rw_page(&f, BLKIF_OP_READ, 2, 8, 1);
    fe_push(&f);

    /* No journal: cannot know, refuse, leave nothing behind. */
    CHECK(start_in_process(loop, io, &clock, &f, &bk, journal, true) == NULL);
    CHECK(access(journal, F_OK) < 0);
    /* A file in another format is refused and never replaced, even by a
     * fresh connection. */
    write_file(journal, "not a journal", 13);
    CHECK(start_in_process(loop, io, &clock, &f, &bk, journal, true) == NULL);
    CHECK(start_in_process(loop, io, &clock, &f, &bk, journal, false) == NULL);
    CHECK(file_is(journal, "not a journal"));
    /* A journal of this ring that does not fit it (says 40 requests were
     * consumed, the ring has 2) is refused and kept. */
    CHECK(unlink(journal) == 0);
    ring = start_in_process(loop, io, &clock, &f, &bk, journal, false);     /* writes one */
    CHECK(ring != NULL);
    if (ring) {
        fake_io_set_auto(io, true);
        xbd_ring_handover(ring, NULL, inst_drained, &(struct inst){ 0 });
        while (fake_io_queued(io))
            ev_run(loop, EVRUN_NOWAIT);
    }
    fp = fopen(journal, "r+");
    CHECK(fp && fread(&h, sizeof(h), 1, fp) == 1);
    if (fp) {
        h.req_cons = 40;
        h.rsp_prod = 40;
        rewind(fp);
        CHECK(fwrite(&h, sizeof(h), 1, fp) == 1);
        fclose(fp);
    }
    CHECK(start_in_process(loop, io, &clock, &f, &bk, journal, true) == NULL);
    CHECK(access(journal, F_OK) == 0);
    unlink(journal);
    xbd_io_engine_free(io);
    xbd_loop_stats_stop(&clock);
    ev_loop_destroy(loop);
    close(bk.fd);
    fe_close(&f);
}

int main(int argc, char **argv)
{
    char dir[PATH_MAX], sub[PATH_MAX + 8];
    const char *tmp = getenv("TMPDIR");
    unsigned first = 1, last = NKILL, failed_runs = 0;

    rig_init(argc, argv);
    no_journal = getenv("XBD_TEST_NO_JOURNAL") != NULL;
    if (getenv("XBD_TEST_KILL_AT"))
        first = last = (unsigned)atoi(getenv("XBD_TEST_KILL_AT"));
    snprintf(dir, sizeof(dir), "%s/xbd-crash.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(sub, sizeof(sub), "%s/%s", dir, XBD_JOURNAL_SUBDIR);
    if (mkdir(sub, 0700) < 0) {
        perror("mkdir");
        return 1;
    }
    refusals(dir);
    unpublished(dir);
    for (unsigned n = first; n <= last; n++) {
        int before = check_failures;

        /* rig_init's guard against a hang, per kill point: 200 of them
         * take about a minute on an idle machine, and a loaded one must
         * not turn that into a failure. */
        alarm(120);
        one_run(n, dir);
        if (check_failures != before)
            failed_runs++;
    }
    rmdir(sub);
    rmdir(dir);
    if (failed_runs)
        fprintf(stderr, "test-ring-crash: %u of %u kill points failed\n", failed_runs,
                last - first + 1);
    return check_result("test-ring-crash");
}
