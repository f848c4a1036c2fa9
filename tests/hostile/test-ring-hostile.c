/*
 * test-ring-hostile.c - a hostile frontend against a real xbd_ring, in one
 * process, on the simulated host (tests/unit/fe.c rig) with an I/O engine
 * the test controls (fake-io.c), so that requests stay in flight exactly
 * as long as a scenario needs.  Each scenario is brought up and torn down
 * by tests/unit/rig.h: the ring must start, and once it is closed the
 * guest must see none of its grants in use.
 *
 * Proves:
 * - req_prod moved *backwards* below what the backend already consumed is
 *   a protocol violation: the ring stops at once, without inventing
 *   requests from slots the frontend never produced;
 * - a fatal ring error while I/O is in flight, with the ring stopped from
 *   inside the fatal callback, drains that I/O before anything is freed;
 * - a ring that hit its per-callback budget resumes on the next loop
 *   iteration even when another watcher of the loop is always busy (a
 *   neighbour's notification storm must not starve it);
 * - a ring stopped while a barrier waits keeps the barrier's ordering and
 *   answers everything it consumed before freeing anything;
 * - nonsense in req_event/rsp_event costs the frontend notifications,
 *   never a request;
 * - a frontend notifying in a loop gets one wake-up per storm-timer
 *   expiry, however many notifications it sends, yet a request it
 *   produces is served on the next expiry, and once it behaves every
 *   request is served on its own wake-up again;
 * - the daemon memory a frontend can pin through copy-path requests in
 *   flight is bounded per ring, and the ring resumes as pages come back;
 * - the LRU purge never unmaps a persistent grant held by in-flight I/O;
 * - a read-only grant is never written, and a failed persistent map
 *   leaves nothing behind;
 * - a grant revoked while persistently mapped, or while a copy-path read
 *   is in flight, neither crashes nor leaks anything;
 * - a frontend that makes the backend DMA disk data into the ring page
 *   itself is survived and every grant is released at stop;
 * - ring entries rewritten from another CPU while the backend parses
 *   them: every request produced is answered exactly once, none is fatal
 *   (XSA-155: each entry is copied once, then only the copy is used).
 */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <xenevtchn.h>

#include "check.h"
#include "fe.h"
#include "fake-io.h"
#include "rig.h"

/* Every xenevtchn_pending() the ring makes, i.e. its wake-ups by its event
 * channel: this definition takes the ring's calls (link-time
 * interposition in this test binary only) and forwards them to the
 * simulated library. */
static unsigned long pending_calls;

xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce)
{
    static xenevtchn_port_or_error_t (*real)(xenevtchn_handle *);

    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "xenevtchn_pending");
    pending_calls++;
    return real(xce);
}

static void read1(struct fe *f, uint64_t id, unsigned page, uint64_t sector)
{
    fe_rw_page(f, BLKIF_OP_READ, id, sector, page);
}

/* Finish everything in flight and close the rig (which checks that no
 * grant is left in use). */
#define finish_and_close(b, f) do {                                      \
    fake_io_set_auto((b)->io, true);                                     \
    rig_down((b), (f));                                                  \
} while (0)

/* req_prod rewritten while 4 requests are in flight: backwards (below
 * req_cons, still above rsp_prod) or far ahead.  Both are fatal, and no
 * response may be made up for a slot the frontend never produced. */
static void test_req_prod_corrupt(bool backwards)
{
    struct fe f;
    struct be b;
    unsigned i;

    printf("req_prod %s with I/O in flight\n", backwards ? "moved backwards" : "far ahead");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    for (i = 0; i < 4; i++)
        read1(&f, i, i, i * 8u);
    fe_push(&f);
    run_until_dispatched(&b, 4);
    CHECK_EQ(fake_io_queued(b.io), 4);
    CHECK_EQ(fe_pending_rsp(&f), 0);

    b.stop_on_fatal = true;
    __atomic_store_n(&f.fr.sring->req_prod, backwards ? 2u : 1004u, __ATOMIC_RELEASE);
    xsg_evtchn_notify(f.d, f.port);
    /* The iteration that found the error has ended: whatever it answered
     * is published by now. */
    CHECK(run_until(&b, fe_fatal_seen, NULL, 10));
    CHECK_EQ(b.fatal_calls, 1);
    CHECK_EQ(fe_pending_rsp(&f), 0);    /* nothing answered out of thin air */
    CHECK(!b.drained);                  /* the 4 reads still hold their pages */
    CHECK(b.ring && xbd_ring_get_stats(b.ring)->errors == 0);
    CHECK(b.ring && xbd_ring_get_stats(b.ring)->eopnotsupp == 0);

    /* The stopped ring drains: the 4 in-flight reads are answered, then
     * every grant is released. */
    CHECK_EQ(fake_io_complete(b.io, 100), 4);
    CHECK(b.drained);
    CHECK_EQ(fe_pending_rsp(&f), 4);
    CHECK_EQ(xsg_grants_in_use(f.d), 0);
    finish_and_close(&b, &f);
}

static void noisy_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (*(unsigned long *)w->data)++;      /* never drains its fd */
}

struct starve_goal {
    uint64_t reads;
    const unsigned long *noisy_calls;
};

/* The ring took <reads> reads and the neighbour ran more than 10 times. */
static bool taken_beside_noise(struct be *b, void *arg)
{
    const struct starve_goal *g = arg;

    return xbd_ring_get_stats(b->ring)->rd_req >= g->reads && *g->noisy_calls > 10;
}

/* 128 requests arrive at once on an order-2 ring: more than one callback's
 * budget.  Another watcher of the same loop is ready on every iteration
 * (as a neighbour storming notifications, or a busy I/O eventfd): the
 * ring must still get through all of them. */
static void test_budget_not_starved(void)
{
    struct fe f;
    struct be b;
    int pfd[2];
    ev_io noisy;
    unsigned long noisy_calls = 0;
    struct starve_goal g = { .reads = 128, .noisy_calls = &noisy_calls };
    unsigned i;

    printf("a ring over its budget is not starved by a busy neighbour\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 2, .persistent = false))
        return;
    CHECK(pipe(pfd) == 0);
    CHECK(write(pfd[1], "x", 1) == 1);
    ev_io_init(&noisy, noisy_cb, pfd[0], EV_READ);
    noisy.data = &noisy_calls;
    ev_io_start(b.loop, &noisy);

    /* The event the port starts with (as on Xen, the bind sets it
     * pending) taken first: else the push's notification coalesces
     * behind it and wakes the ring a second time, which would take the
     * second half of the requests however starved a ring at its budget
     * is. */
    wait_stat(&b, evtchn_rx, 1);
    for (i = 0; i < 128; i++)
        read1(&f, i, i % FE_NPAGES, (i % 64) * 8u);
    fe_push(&f);
    /* A starved ring stays at one callback's budget for good. */
    CHECK(run_until(&b, taken_beside_noise, &g, 10));
    CHECK(noisy_calls > 10);            /* the neighbour really was busy */
    CHECK_EQ(xbd_ring_get_stats(b.ring)->rd_req, 128);
    CHECK_EQ(fake_io_queued(b.io), 128);

    /* And the answers get out while the neighbour stays busy. */
    fake_io_set_auto(b.io, true);
    CHECK_EQ(run_until_rsp(&b, &f, 128, 5), 128);
    ev_io_stop(b.loop, &noisy);
    close(pfd[0]);
    close(pfd[1]);
    finish_and_close(&b, &f);
}

/* Cache of 8 persistent grants, all 8 pinned by in-flight reads, a 9th
 * grant arrives: it goes by copy, the cache reports full, the purge timer
 * runs - and must not unmap any of the 8 while their I/O is in flight. */
static void test_purge_spares_inflight(void)
{
    struct fe f;
    struct be b;
    struct xsg_grant_stats s;
    unsigned i;

    printf("LRU purge never unmaps a grant in use\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true, .max_pgrants = 8))
        return;
    for (i = 0; i < 9; i++)
        read1(&f, i, i, i * 8u);
    fe_push(&f);
    run_until_dispatched(&b, 9);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrants_mapped, 8);
    /* > 3 purge periods.  No counter says how often the purge ran (one
     * that unmaps nothing leaves no trace): a span, which a loaded
     * machine can only make hold fewer purges, never fail. */
    run_for(&b, 0.35);
    CHECK(xsg_grant_stats(f.d, &s) == 0);
    CHECK_EQ(s.pages_unmapped, 0);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrants_mapped, 8);
    for (i = 0; i < 8; i++)
        CHECK_EQ(xsg_grant_in_use(f.d, f.ref[i]), 1);

    CHECK_EQ(fake_io_complete(b.io, 100), 9);
    /* Published by the loop's next iteration (one push per batch). */
    CHECK_EQ(run_until_rsp(&b, &f, 9, 5), 9);
    /* Once idle, the full cache is purged (LRU first). */
    read1(&f, 20, 9, 0);                /* another miss: cache still full */
    fe_push(&f);
    fake_io_set_auto(b.io, true);
    CHECK_EQ(run_until_rsp(&b, &f, 10, 5), 10);
    wait_stat(&b, pgrant_purges, 1);
    CHECK(xsg_grant_stats(f.d, &s) == 0);
    CHECK(s.pages_unmapped > 0);
    CHECK_EQ(xsg_grant_in_use(f.d, f.ref[0]), 0);
    finish_and_close(&b, &f);
}

/* A guest clears the flags of a grant the backend holds.  Mapped
 * persistently: Xen keeps the pinned frame, so the mapping stays usable
 * and is released at stop.  Copy path with a read in flight: the copy back
 * fails, the request is answered ERROR, the bounce page is recycled. */
static void test_revoke(void)
{
    struct fe f;
    struct be b;
    uint64_t id;
    uint8_t op;
    int16_t st;

    printf("grant revoked while persistently mapped\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    fake_io_set_auto(b.io, true);
    read1(&f, 1, 0, 0);
    fe_push(&f);
    expect_one(&b, &f, 1, BLKIF_OP_READ, BLKIF_RSP_OKAY);
    CHECK_EQ(xsg_grant_revoke(f.d, f.ref[0]), 0);
    CHECK_EQ(xsg_end_access(f.d, f.ref[0]), -1);    /* still mapped */
    read1(&f, 2, 0, 8);
    fe_push(&f);
    expect_one(&b, &f, 2, BLKIF_OP_READ, BLKIF_RSP_OKAY);
    finish_and_close(&b, &f);

    printf("grant revoked while a copy-path read is in flight\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = false))
        return;
    read1(&f, 3, 0, 0);
    read1(&f, 4, 1, 8);
    fe_push(&f);
    run_until_dispatched(&b, 2);
    CHECK_EQ(xsg_grant_revoke(f.d, f.ref[0]), 0);
    CHECK_EQ(fake_io_complete(b.io, 100), 2);
    CHECK_EQ(run_until_rsp(&b, &f, 2, 5), 2);
    while (fe_pop(&f, &id, &op, &st))
        CHECK_EQ(st, id == 3 ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->errors, 1);
    finish_and_close(&b, &f);
}

static bool fatal_and_drained(struct be *b, void *unused)
{
    return fe_fatal_seen(b, unused) && b->drained;
}

/* The frontend names its own ring page as the data page of a READ: disk
 * data (all 0xff) lands on the ring indexes.  The backend must notice a
 * nonsensical req_prod, stop, and release everything. */
static void test_read_into_ring(unsigned persistent)
{
    struct fe f;
    struct be b;
    struct fe_seg seg;
    unsigned char ff[XBD_PAGE_SIZE];

    printf("READ into the ring page itself, persistent %u\n", persistent);
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = persistent))
        return;
    memset(ff, 0xff, sizeof(ff));
    CHECK(pwrite(b.plain_fd, ff, sizeof(ff), 0) == (ssize_t)sizeof(ff));
    fake_io_set_auto(b.io, true);
    b.stop_on_fatal = true;
    seg = (struct fe_seg){ f.ring_refs[0], 0, 7 };
    fe_rw(&f, BLKIF_OP_READ, 1, 0, &seg, 1);
    fe_push(&f);
    /* Stopped from the fatal callback, the ring drains once its read is
     * answered: after that it can call nothing any more. */
    CHECK(run_until(&b, fatal_and_drained, NULL, 10));
    CHECK_EQ(b.fatal_calls, 1);
    CHECK(b.drained);
    CHECK_EQ(xsg_grants_in_use(f.d), 0);
    finish_and_close(&b, &f);
}

/* Requests the scribbler produces (at most a ring ahead of the answers,
 * scribbling on while it waits), then it stops: over 600 rings' worth,
 * well over a tenth of a second of parsing under fire when idle. */
#define SCRIBBLED_REQS 20000ul

struct scribbler {
    struct fe *f;
    bool stop;                  /* __atomic: set by the loop's thread */
    unsigned long writes;       /* read once the thread is joined */
    unsigned long produced;     /* __atomic: read by the loop's thread */
};

/* Another vCPU of the guest: random garbage over every ring entry while
 * the backend parses them, and req_prod advanced (correctly: never
 * backwards, never more than a ring ahead of the responses) so that the
 * garbage really is consumed. */
static void *scribble(void *arg)
{
    struct scribbler *s = arg;
    struct blkif_sring *sr = s->f->sring;
    uint32_t *p = s->f->sring, x = 12345;
    RING_IDX prod = __atomic_load_n(&sr->req_prod, __ATOMIC_RELAXED);
    unsigned size = RING_SIZE(&s->f->fr);

    while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED) &&
           __atomic_load_n(&s->produced, __ATOMIC_RELAXED) < SCRIBBLED_REQS) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if (x & 0x3f) {
            /* Entries start at byte 64: leave the indexes alone. */
            __atomic_store_n(&p[16 + x % (XBD_PAGE_SIZE / 4 - 16)], x, __ATOMIC_RELAXED);
            s->writes++;
            continue;
        }
        if (prod + 1 - __atomic_load_n(&sr->rsp_prod, __ATOMIC_ACQUIRE) <= size) {
            prod++;
            __atomic_fetch_add(&s->produced, 1, __ATOMIC_RELAXED);
            __atomic_store_n(&sr->req_prod, prod, __ATOMIC_RELEASE);
        }
        xsg_evtchn_notify(s->f->d, s->f->port);
    }
    return NULL;
}

static bool ring_idle(struct be *b, void *unused)
{
    (void)unused;
    return xbd_ring_get_stats(b->ring)->inflight == 0;
}

static void test_scribbler(unsigned persistent)
{
    struct fe f;
    struct be b;
    struct scribbler s = { .f = &f };
    pthread_t t;

    printf("ring entries scribbled over from another CPU, persistent %u\n", persistent);
    if (!rig_up(&b, &f, XBD_PROTO_X86_32, 0, .persistent = persistent, .max_indirect = 32))
        return;
    fake_io_set_auto(b.io, true);
    CHECK(pthread_create(&t, NULL, scribble, &s) == 0);
    /* Every request the scribbler produces is answered: it stops after
     * SCRIBBLED_REQS.  Then nothing is left in flight: a request answered
     * twice would have been by now. */
    CHECK_EQ(run_until_rsp(&b, &f, SCRIBBLED_REQS, 30), SCRIBBLED_REQS);
    __atomic_store_n(&s.stop, true, __ATOMIC_RELAXED);   /* on failure */
    pthread_join(t, NULL);
    CHECK(run_until(&b, ring_idle, NULL, 10));
    printf("  %lu scribbles, %lu requests produced, %u answered (%llu errors, "
           "%llu not supported)\n", s.writes, s.produced, fe_pending_rsp(&f),
           (unsigned long long)xbd_ring_get_stats(b.ring)->errors,
           (unsigned long long)xbd_ring_get_stats(b.ring)->eopnotsupp);
    CHECK_EQ(s.produced, SCRIBBLED_REQS);
    CHECK_EQ(b.fatal_calls, 0);         /* garbage requests are not fatal... */
    CHECK_EQ(fe_pending_rsp(&f), s.produced);   /* ...each one is answered */
    finish_and_close(&b, &f);
}

/* A barrier waits behind two in-flight reads when the ring is stopped
 * (the frontend went away): the barrier still runs only after them, a
 * request queued behind it is never read, everything consumed is
 * answered, and only then is the ring freed. */
static void test_barrier_stop(void)
{
    struct fe f;
    struct be b;
    uint64_t id;
    uint8_t op;
    int16_t st;
    unsigned n = 0;
    uint64_t order[3];

    printf("ring stopped while a barrier waits\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    read1(&f, 1, 0, 0);
    read1(&f, 2, 1, 8);
    fe_rw_page(&f, BLKIF_OP_WRITE_BARRIER, 3, 16, 2);
    read1(&f, 4, 3, 24);
    fe_push(&f);
    run_until_dispatched(&b, 2);
    /* Consumed, the barrier plugs the ring in the same pass: 4 is not
     * taken later. */
    wait_stat(&b, barrier_req, 1);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->barrier_req, 1);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->rd_req, 2);    /* 4 is held back */
    CHECK_EQ(fake_io_queued(b.io), 2);                  /* the barrier waits */
    be_stop(&b);
    CHECK(!b.drained);
    CHECK_EQ(fake_io_complete(b.io, 2), 2);             /* the reads */
    CHECK(!b.drained);
    CHECK_EQ(fake_io_queued(b.io), 1);                  /* the barrier's sync */
    while (!b.drained && fake_io_complete(b.io, 1))     /* sync, write, sync */
        ;
    CHECK(b.drained);
    while (n < 3 && fe_pop(&f, &id, &op, &st)) {
        CHECK_EQ(st, BLKIF_RSP_OKAY);
        order[n++] = id;
    }
    CHECK_EQ(n, 3);
    CHECK_EQ(fe_pending_rsp(&f), 0);    /* 4 was never consumed */
    CHECK(n == 3 && order[2] == 3);
    CHECK_EQ(xsg_grants_in_use(f.d), 0);
    finish_and_close(&b, &f);
}

/* The event indexes are the frontend's to write, and it may write
 * nonsense: the backend's own indexes do not depend on them, so every
 * request is still answered (the frontend then only misses
 * notifications it asked not to get). */
static void test_event_index_garbage(void)
{
    struct fe f;
    struct be b;
    unsigned i;

    printf("garbage in req_event / rsp_event\n");
    if (!rig_up(&b, &f, XBD_PROTO_X86_64, 0, .persistent = false))
        return;
    fake_io_set_auto(b.io, true);
    for (i = 0; i < 20; i++) {
        __atomic_store_n(&f.fr.sring->rsp_event, 0x80000000u + i * 7919u, __ATOMIC_RELAXED);
        __atomic_store_n(&f.fr.sring->req_event, 0xdeadbeefu * i, __ATOMIC_RELAXED);
        read1(&f, i, i, i * 8u);
        fe_push(&f);
        xsg_evtchn_notify(f.d, f.port);
        CHECK_EQ(run_until_rsp(&b, &f, i + 1, 5), i + 1);
    }
    CHECK_EQ(b.fatal_calls, 0);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->rd_req, 20);
    finish_and_close(&b, &f);
}

static long rss_kib(void)
{
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Copy path (no persistent grants), a 4-page ring filled at once with
 * 256-segment indirect writes whose I/O does not complete: each segment
 * needs a daemon-owned bounce page.  The frontend must not decide how much
 * daemon memory that is (128 MiB here, 512 MiB per queue on an order-4
 * ring): the ring stops reading requests at its bounce bound, and goes on
 * as completions give pages back. */
static void test_bounce_bound(void)
{
    struct fe f;
    struct be b;
    struct blkif_request_segment *ind;
    long before, grown;
    unsigned i, n = 128;

    printf("bounce memory is bounded whatever the frontend queues\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 2, .persistent = false, .max_indirect = 256))
        return;
    ind = xsg_page(f.d, f.gfn[63]);
    for (i = 0; i < 256; i++) {
        ind[i].gref = f.ref[i % 63];
        ind[i].first_sect = 0;
        ind[i].last_sect = 7;
    }
    for (i = 0; i < n; i++)
        fe_indirect(&f, BLKIF_OP_WRITE, i, (i % 4) * 2048u, 256, &f.ref[63], 1);
    before = rss_kib();
    fe_push(&f);
    /* Once the ring waits for pages, it takes nothing more until I/O
     * completes, and none does (the fake engine holds it). */
    wait_stat(&b, oo_req, 1);
    grown = rss_kib() - before;
    printf("  %llu of %u requests taken, %u I/Os held, RSS +%ld KiB\n",
           (unsigned long long)xbd_ring_get_stats(b.ring)->wr_req, n,
           fake_io_queued(b.io), grown);
    CHECK(xbd_ring_get_stats(b.ring)->wr_req < n);
    CHECK(xbd_ring_get_stats(b.ring)->oo_req > 0);
    CHECK(grown < 32 * 1024);

    /* Completions give pages back: everything is served in the end. */
    fake_io_set_auto(b.io, true);
    CHECK_EQ(run_until_rsp(&b, &f, n, 20), n);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->wr_req, n);
    CHECK_EQ(xbd_ring_get_stats(b.ring)->errors, 0);
    finish_and_close(&b, &f);
}

/* A page granted read-only.  Persistent grants are mapped writable (they
 * may serve reads later, as Linux blkback maps them), so on a persistent
 * ring the map fails; the page then goes by grant copy (a failed map
 * degrades, src/budget.h) and no cache entry is left behind.  A WRITE only
 * reads the page: fine either way; a READ would write it: refused. */
static void test_readonly_grant(void)
{
    struct fe f;
    struct be b;
    struct fe_seg seg;
    uint64_t id;
    uint8_t op;
    int16_t st;
    unsigned pers;

    for (pers = 0; pers < 2; pers++) {
        printf("read-only grant, persistent %u\n", pers);
        if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = pers))
            return;
        fake_io_set_auto(b.io, true);
        seg = (struct fe_seg){ f.ro_ref, 0, 7 };
        fe_rw(&f, BLKIF_OP_WRITE, 1, 0, &seg, 1);
        fe_rw(&f, BLKIF_OP_READ, 2, 0, &seg, 1);
        fe_push(&f);
        CHECK_EQ(run_until_rsp(&b, &f, 2, 5), 2);
        while (fe_pop(&f, &id, &op, &st))
            CHECK_EQ(st, id == 1 ? BLKIF_RSP_OKAY : BLKIF_RSP_ERROR);
        CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrants_mapped, 0);
        CHECK_EQ(xbd_ring_get_stats(b.ring)->pgrant_map_failures, pers ? 2 : 0);
        CHECK_EQ(xsg_grant_in_use(f.d, f.ro_ref), 0);
        finish_and_close(&b, &f);
    }
}

struct stormer {
    struct fe *f;
    bool stop;                  /* __atomic: set by the loop's thread */
    unsigned long sent;         /* __atomic: read by the loop's thread */
};

static void *storm(void *arg)
{
    struct stormer *s = arg;

    while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED))
        if (xsg_evtchn_notify(s->f->d, s->f->port) == 0)
            __atomic_fetch_add(&s->sent, 1, __ATOMIC_RELAXED);
    return NULL;
}

static unsigned long storm_sent(struct stormer *s)
{
    return __atomic_load_n(&s->sent, __ATOMIC_RELAXED);
}

static uint64_t ring_storm_delays(struct be *b)
{
    return xbd_ring_get_stats(b->ring)->storm_delays;
}

/* What the storm scenario waits for: the ring's storm timer has expired
 * <delays> times in all and the storming thread has sent <sent>
 * notifications. */
struct storm_goal {
    struct stormer *st;
    uint64_t delays;
    unsigned long sent;
};

static bool storm_goal_met(struct be *b, void *arg)
{
    struct storm_goal *g = arg;

    return ring_storm_delays(b) >= g->delays && storm_sent(g->st) >= g->sent;
}

/* Produce one read, wait for its answer (OKAY), return how many storm
 * timer expiries that took. */
static uint64_t read_answered(struct be *b, struct fe *f, uint64_t id, unsigned page)
{
    uint64_t d0 = ring_storm_delays(b);

    read1(f, id, page, 0);
    fe_push(f);
    expect_one(b, f, id, BLKIF_OP_READ, BLKIF_RSP_OKAY);
    return ring_storm_delays(b) - d0;
}

/* A frontend notifying in a loop on an empty ring.  The port is masked
 * from delivery until the backend unmasks it, so notifications coalesce;
 * after XBD_STORM_SPURIOUS wake-ups in a row that found no request, the
 * backend leaves the port masked and only its storm timer unmasks it:
 * from then on, each wake-up costs one storm-timer expiry, however many
 * notifications the frontend sends.  A request produced during the storm
 * is still served, on the next expiry; once the frontend behaves, the
 * throttle is off.  Everything is counted, nothing timed: the storm
 * timer's own pause is the only clock, and the counts hold however slow
 * the machine. */
static void test_storm_throttle(void)
{
    struct fe f;
    struct be b;
    struct stormer st = { .f = &f };
    struct storm_goal g = { .st = &st };
    pthread_t t;
    unsigned long w0, w1, wakeups, s1, sent;
    uint64_t d1, delays, first;
    unsigned i, woken;

    printf("notification storm: bounded wake-ups\n");
    if (!rig_up(&b, &f, XBD_PROTO_NATIVE, 0, .persistent = true))
        return;
    fake_io_set_auto(b.io, true);
    CHECK_EQ(ring_storm_delays(&b), 0);
    w0 = pending_calls;
    CHECK(pthread_create(&t, NULL, storm, &st) == 0);

    /* The throttle engages: a first storm-timer expiry.  Until then every
     * notification the ring took was a wake-up of its own. */
    g.delays = 1;
    CHECK(run_until(&b, storm_goal_met, &g, 30));
    w1 = pending_calls;
    d1 = ring_storm_delays(&b);
    s1 = storm_sent(&st);
    printf("  throttled after %lu wake-ups (%lu notifications)\n", w1 - w0, s1);

    /* Throttled: 100 more expiries and at least 20000 more notifications.
     * The port is unmasked only by the storm timer (the iteration that ran
     * it left the timer idle), and each unmask lets one delivery through,
     * whose wake-up re-arms the timer: one wake-up per expiry, plus the
     * one whose timer has not expired yet. */
    g.delays = d1 + 100;
    g.sent = s1 + 20000;
    CHECK(run_until(&b, storm_goal_met, &g, 30));
    wakeups = pending_calls - w1;
    delays = ring_storm_delays(&b) - d1;
    sent = storm_sent(&st) - s1;
    printf("  then %lu notifications, %lu wake-ups, %llu storm delays\n",
           sent, wakeups, (unsigned long long)delays);
    CHECK(wakeups >= delays);
    CHECK(wakeups <= delays + 1);

    /* A request in the middle of the storm.  No wake-up looks at the ring
     * while throttled, the next storm-timer expiry does: one delay, not
     * more (and it resets the throttle). */
    first = read_answered(&b, &f, 1, 0);
    printf("  a request during the storm answered after %llu storm delay(s)\n",
           (unsigned long long)first);
    CHECK_EQ(first, 1);
    __atomic_store_n(&st.stop, true, __ATOMIC_RELAXED);
    pthread_join(t, NULL);

    /* Behaving again: the first request resets the count (at most one
     * delay if the storm's tail had throttled the ring again), then 200
     * requests one at a time, each notified: each one's notification
     * wakes the backend (the previous request was answered before it was
     * produced, so nothing else is due), and none waits for the storm
     * timer.  At most two more wake-ups come from the storm's tail (one
     * delivered, one pending behind it).  Throttled, the port would stay
     * masked after such a wake-up: the next ones would coalesce. */
    CHECK(read_answered(&b, &f, 2, 1) <= 1);
    w1 = pending_calls;
    d1 = ring_storm_delays(&b);
    for (i = woken = 0; i < 200; i++) {
        unsigned long w = pending_calls;

        read_answered(&b, &f, 10 + i, i % FE_NPAGES);
        woken += pending_calls > w;
    }
    wakeups = pending_calls - w1;
    delays = ring_storm_delays(&b) - d1;
    printf("  then 200 sequential requests: %lu wake-ups, %llu storm delays\n",
           wakeups, (unsigned long long)delays);
    CHECK_EQ(woken, 200);
    CHECK_EQ(delays, 0);
    CHECK(wakeups >= 200 && wakeups <= 202);
    finish_and_close(&b, &f);
}

int main(int argc, char **argv)
{
    rig_init(argc, argv);
    test_req_prod_corrupt(true);
    test_req_prod_corrupt(false);
    test_budget_not_starved();
    test_storm_throttle();
    test_bounce_bound();
    test_purge_spares_inflight();
    test_revoke();
    test_readonly_grant();
    test_barrier_stop();
    test_event_index_garbage();
    test_read_into_ring(0);
    test_read_into_ring(1);
    test_scribbler(0);
    test_scribbler(1);
    return check_result("test-ring-hostile");
}
