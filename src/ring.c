/*
 * ring.c - one blkif ring: the shared ring pages, its event channel, the
 * request loop, and the life of each request from the ring slot to its
 * response.
 *
 * Ownership: a ring is used by one event loop only.  It owns its gnttab and
 * evtchn handles, its grant cache, its request slots and its bounce pages;
 * the backing store belongs to the device and is only read.
 *
 * Life of a request: copied once from the ring (request.c), checked, its
 * data pages obtained (persistent mapping or a bounce page filled by grant
 * copy), submitted to the I/O engine, answered when the engine says it is
 * done (and durable, for flushes and barriers).  A barrier plugs the ring:
 * it waits until everything before it has completed, and nothing after it
 * is read from the ring until it has completed.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <xengnttab.h>
#include <xenevtchn.h>

#include "blkif_abi.h"
#include "budget.h"
#include "grant_cache.h"
#include "unmap_worker.h"
#include "io_aio.h"
#include "log_limit.h"
#include "loop_stats.h"
#include "request.h"
#include "xenblkd/dataplane.h"
#include "xenblkd/journal.h"
#include "xenblkd/log.h"

#define XBD_RING_BUDGET     64     /* requests per callback, then yield */
/* Persistent-grant pages handed to map calls per callback (mapped or
 * not), then yield.  Mapping is the dearest thing a request can cost the
 * loop (on a PV dom0 a hypercall and a page-table update per page, and a
 * gntdev ioctl and mmap per call): a guest's first burst of requests with
 * new grants, a full ring of them, held the loop for 0.4 s under TCG, and
 * every other ring with it.  A callback still takes at least one
 * request. */
#define XBD_RING_MAP_PAGES  64
#define XBD_POOL_KEEP       256    /* idle bounce pages kept per ring */
/* Bounce pages (daemon memory) that requests of one ring may hold at once.
 * Without a bound the frontend decides: an order-4 ring full of
 * 256-segment indirect requests on the copy path is 512 MiB per queue.
 * 8 MiB keeps dozens of large requests in flight; past it, new requests
 * wait in the ring until completions give pages back. */
#define XBD_BOUNCE_MAX      2048
#define XBD_PURGE_INTERVAL  0.1    /* s, LRU purge while the cache is full */
#define XBD_IDLE_CHECK      10.0   /* s, at most, between idle purges */
/* Notification storms: after this many wake-ups in a row that found no
 * request, the port stays masked XBD_STORM_DELAY before each unmask, so
 * a frontend notifying in a loop costs us a bounded number of wake-ups
 * per second instead of one per notification we manage to take.  A
 * frontend following the protocol only notifies when it has produced
 * requests, so it never gets here (and one request resets the count). */
#define XBD_STORM_SPURIOUS  64
#define XBD_STORM_DELAY     0.002  /* s */

#define container_of(p, T, m) ((T *)(void *)((char *)(p) - offsetof(T, m)))

enum xbd_stage { ST_PRESYNC, ST_RW, ST_SYNC, ST_DISCARD };

struct xbd_slot {
    struct xbd_aio aio;
    struct xbd_ring *ring;
    struct xbd_req req;
    /* Where the data of segment i lives while the request is in flight:
     * gnt[i], a persistent mapping, or bounce[i], a daemon page filled or
     * emptied by grant copy (req.seg_cap entries each; separate arrays so
     * that the grant cache fills gnt[] in one call). */
    struct xbd_gnt **gnt;
    void **bounce;
    struct iovec *iov;       /* req.seg_cap entries */
    unsigned nbuf;           /* entries of gnt/bounce that may hold something */
    enum xbd_stage stage;
    enum xbd_lat_op lat_op;  /* histogram to record the latency in, if any */
    uint64_t t0_ns;          /* consumed from the ring (CLOCK_MONOTONIC) */
    struct xbd_slot *next_free;
};

struct xbd_ring {
    struct ev_loop *loop;
    struct xbd_io_engine *io;
    const struct xbd_loop_stats *clock;   /* its loop's (ring_now_ns) */
    char *name;
    domid_t domid;
    enum xbd_protocol proto;
    const struct xbd_backing *bk;
    struct xbd_wb_state *wb;       /* the device's, or own_wb */
    struct xbd_wb_state own_wb;
    struct xbd_req_limits lim;
    bool persistent;

    xengnttab_handle *xgt;
    xenevtchn_handle *xce;
    evtchn_port_t port;            /* our end */
    void *sring;
    unsigned nr_pages;
    struct blkif_back_ring br;     /* indexes; nr_ents for our ABI */
    size_t entry_size;             /* bytes of one ring entry in our ABI */
    /* Which consumed requests were answered, surviving the process
     * (journal.h); one record per slot. */
    struct xbd_journal *jn;
    bool keep_journal;             /* handover or failed start: keep the file */
    unsigned *redo, nredo;         /* slots to execute again after a restart */

    struct xbd_gcache *gc;
    struct xbd_map_reserve *maps;  /* the host's, or NULL (budget.h) */
    struct xbd_unmapper *unmapper; /* the host's, or NULL */
    struct xbd_aio_queue *aq;      /* this ring's share of the I/O engine */
    struct xbd_slot *slots, *free_slots;
    unsigned nr_slots, seg_cap;
    void *slot_mem;                /* segs, bufs and iovecs of all slots */
    xengnttab_grant_copy_segment_t *copy; /* seg_cap scratch entries */
    grant_ref_t *grefs;            /* seg_cap scratch refs (pin_grants) */
    unsigned char *ind_buf;        /* private copy of indirect segments */
    void **pool;                   /* idle bounce pages */
    unsigned pool_n;
    unsigned bounce_out;           /* bounce pages held by requests */
    unsigned bounce_max, pool_keep; /* the queue's memory plan (budget.h) */
    size_t mem_budget;
    struct xbd_log_bucket *logb;   /* the disk's (log_limit.h), or NULL */

    unsigned inflight;             /* slots in use */
    struct xbd_slot *barrier;      /* plugging the ring until it completes */
    bool barrier_started;
    bool stopping, dead;

    ev_io evtchn_w;
    ev_timer storm_w;              /* delayed unmask while storming */
    unsigned spurious;             /* event wake-ups in a row with no request */
    RING_IDX cons_seen;            /* req_cons at the last event wake-up */
    /* Continue the ring on the next loop iteration.  A zero timer, not an
     * ev_idle: idle watchers only run when nothing else is pending, so a
     * neighbour's notification storm or a busy aio eventfd would starve a
     * ring that yielded at its budget (its frontend sees no req_event
     * update and never notifies again). */
    ev_timer more_w;
    ev_timer purge_w, idle_w;
    ev_check publish_w;            /* never started: fed (publish_soon) */
    bool rsp_unpublished;          /* rsp_prod_pvt is ahead of rsp_prod */
    bool pass_due;                 /* a completion gave back a slot: publish_cb
                                    * passes over the ring once more */
    double pgrant_idle;            /* s; 0: persistent grants never idle out */

    xbd_ring_fatal_fn *fatal;
    void *fatal_opaque;
    xbd_ring_counted_fn *counted;
    xbd_ring_drained_fn *drained;
    void *drained_opaque;
    struct xbd_ring_stats st;
};

static int ring_process(struct xbd_ring *r);

/* ---- ring slots ------------------------------------------------------ */

static const void *req_slot(struct xbd_ring *r, RING_IDX i)
{
    return xbd_ring_entry(r->sring, r->proto, r->br.nr_ents, i);
}

static void *rsp_slot(struct xbd_ring *r, RING_IDX i)
{
    return xbd_ring_entry(r->sring, r->proto, r->br.nr_ents, i);
}

static void kick(struct xbd_ring *r)
{
    if (!r->stopping && !r->dead && !ev_is_active(&r->more_w)) {
        ev_timer_set(&r->more_w, 0., 0.);
        ev_timer_start(r->loop, &r->more_w);
    }
}

static unsigned slot_no(const struct xbd_ring *r, const struct xbd_slot *s)
{
    return (unsigned)(s - r->slots);
}

/* Responses are published (rsp_prod pushed, the frontend notified if it
 * asked to be) once per round of callbacks, not once per response: the
 * completions of one batch cost one push and at most one notification.
 * The first response written in a round feeds publish_w, a watcher
 * never started, as a pending event of the lowest priority: libev
 * invokes it after every other callback of the round, and before the
 * loop polls again, wherever the response was written (an I/O
 * completion, a timer, or a prepare watcher: the engine's synchronous
 * operations).  A zero timer did the same one loop iteration later: a
 * non-blocking epoll_wait, libev's and loop_stats' clock reads, about a
 * fifth of the system calls of a request at QD 1 on real Xen.  Each
 * response is journaled as answered before (journal.h: written-but-
 * unpublished responses are recovered), and ring_destroy publishes what
 * is left, so a handover still publishes every response. */
static void publish_responses(struct xbd_ring *r)
{
    int notify;

    if (!r->rsp_unpublished)
        return;
    r->rsp_unpublished = false;
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&r->br, notify);
    if (notify) {
        xenevtchn_notify(r->xce, r->port);
        r->st.evtchn_tx++;
    }
}

/* The end of a round of callbacks.  First the pass over the ring that
 * completions asked for (finish), then one push of every response the
 * round wrote, the pass's own included. */
static void publish_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    struct xbd_ring *r = w->data;

    if (r->pass_due) {
        r->pass_due = false;
        if (ring_process(r) < 0)
            return;             /* fatal: r may be gone, its responses published */
        /* What the pass itself completed asks for no second one:
         * ring_process goes on while slots come back, and stops at its
         * budget only by restarting itself on the next iteration.  A
         * guest whose requests all fail at once cannot hold the loop in
         * this round. */
        r->pass_due = false;
    }
    publish_responses(r);
}

static void respond(struct xbd_ring *r, struct xbd_slot *s, int16_t status)
{
    const struct xbd_req *q = &s->req;
    RING_IDX j = r->br.rsp_prod_pvt;

    if (status == BLKIF_RSP_ERROR)
        r->st.errors++;
    else if (status == BLKIF_RSP_EOPNOTSUPP)
        r->st.eopnotsupp++;
    xbd_rsp_write(rsp_slot(r, j), r->proto, q->id, q->rsp_op, status);
    /* Answered, for a successor, before the frontend can see it. */
    xbd_journal_answered(r->jn, slot_no(r, s), j);
    r->br.rsp_prod_pvt = j + 1;
    r->rsp_unpublished = true;
    if (!ev_is_pending(&r->publish_w))
        ev_feed_event(r->loop, &r->publish_w, EV_CUSTOM);
}

/* ---- bounce pages ---------------------------------------------------- */

static void update_mem(struct xbd_ring *r);

static void *page_get(struct xbd_ring *r)
{
    void *p;

    if (r->pool_n) {
        p = r->pool[--r->pool_n];
    } else if (posix_memalign(&p, XBD_PAGE_SIZE, XBD_PAGE_SIZE)) {
        return NULL;
    }
    r->bounce_out++;
    r->st.bounce_pages = r->bounce_out;
    r->st.idle_pages = r->pool_n;
    update_mem(r);
    return p;
}

static void page_put(struct xbd_ring *r, void *p)
{
    r->bounce_out--;
    /* Held and idle pages together stay within the plan. */
    if (r->pool_n < r->pool_keep && r->bounce_out + r->pool_n < r->bounce_max)
        r->pool[r->pool_n++] = p;
    else
        free(p);
    r->st.bounce_pages = r->bounce_out;
    r->st.idle_pages = r->pool_n;
    update_mem(r);
}

/* ---- ring teardown --------------------------------------------------- */

static void ring_free_mem(struct xbd_ring *r)
{
    xbd_aio_queue_free(r->aq);
    while (r->pool_n)
        free(r->pool[--r->pool_n]);
    free(r->pool);
    free(r->ind_buf);
    free(r->copy);
    free(r->grefs);
    free(r->slot_mem);
    free(r->slots);
    free(r->redo);
    free(r->name);
    free(r);
}

/* On the loop: each unmap is a hypercall with a TLB flush on Xen, about a
 * thousand of them for a full cache (unmap_worker.h says why we avoid it). */
static void unmap_now(struct xbd_ring *r)
{
    xbd_gcache_free(r->gc);
    if (r->sring && xengnttab_unmap(r->xgt, r->sring, r->nr_pages) < 0)
        xbd_warn("%s: unmap of the ring failed: %s", r->name, strerror(errno));
    if (r->xgt)
        xengnttab_close(r->xgt);
}

/* Give the gntdev handle and everything mapped through it to the unmap
 * worker, which calls <drained> (unmap_worker.h: when done, or after a
 * grace period); false (nothing changed) without a worker.  Only once
 * drained: no request holds a page and none will be read again. */
static bool hand_over_mappings(struct xbd_ring *r, xbd_ring_drained_fn *drained,
                               void *opaque)
{
    struct xbd_unmap_batch *b;

    if (!r->unmapper || !r->xgt || !r->gc)
        return false;
    b = xbd_unmap_batch_new(r->name, r->xgt, xbd_gcache_count(r->gc));
    if (!b) {
        /* Out of memory: the grants on the loop, but the handle still
         * through the worker, which may be unmapping this ring's purged
         * grants with it (a batch of no mapping is small). */
        xbd_gcache_free(r->gc);
        b = xbd_unmap_batch_new(r->name, r->xgt, 0);
        if (!b) {
            xbd_err("%s: out of memory: its gntdev handle is left open", r->name);
            if (r->sring && xengnttab_unmap(r->xgt, r->sring, r->nr_pages) < 0)
                xbd_warn("%s: unmap of the ring failed: %s", r->name, strerror(errno));
            r->gc = NULL;
            r->sring = NULL;
            r->xgt = NULL;
            return false;       /* unmap_now has nothing left to do */
        }
    } else {
        xbd_gcache_hand_over(r->gc, b);
    }
    r->gc = NULL;
    xbd_unmap_batch_set_reserve(b, r->maps);
    if (r->sring)
        xbd_unmap_batch_set_ring(b, r->sring, r->nr_pages);
    r->sring = NULL;
    r->xgt = NULL;
    xbd_unmapper_submit(r->unmapper, b, drained, opaque);
    return true;
}

/* Everything is drained: release grants, ring, port, handles, memory. */
static void ring_destroy(struct xbd_ring *r)
{
    xbd_ring_drained_fn *drained = r->drained;
    void *opaque = r->drained_opaque;

    /* Every response answered is published before the ring goes. */
    if (r->sring && r->xce)
        publish_responses(r);
    ev_clear_pending(r->loop, &r->publish_w);   /* published above */
    ev_io_stop(r->loop, &r->evtchn_w);
    ev_timer_stop(r->loop, &r->storm_w);
    ev_timer_stop(r->loop, &r->more_w);
    ev_timer_stop(r->loop, &r->purge_w);
    ev_timer_stop(r->loop, &r->idle_w);
    xbd_journal_close(r->jn, !r->keep_journal);
    if (r->xce) {
        xenevtchn_unbind(r->xce, r->port);
        xenevtchn_close(r->xce);
    }
    /* Every request answered and published: nothing counts any more, and
     * the counters go with the memory below, so their owner takes them
     * now, not at drained, which the unmap worker may report later. */
    if (r->counted)
        r->counted(opaque, r, &r->st);
    if (hand_over_mappings(r, drained, opaque))
        drained = NULL;            /* the unmap worker tells */
    else
        unmap_now(r);
    xbd_debug("%s: ring stopped", r->name);
    ring_free_mem(r);
    if (drained)
        drained(opaque);
}

/* ---- completion ------------------------------------------------------ */

/* The ring's time on the monotonic clock, in ns: its loop's wake-up
 * stamp (loop_stats.h), so no clock read per request; that matters in a
 * PV dom0, whose clock_gettime is usually a system call.  Monotonic, not
 * libev's ev_now(), which is wall-clock time: a clock step must neither
 * unmap every persistent grant at once nor keep them all for as long as
 * the step, nor skew a latency. */
static uint64_t ring_now_ns(const struct xbd_ring *r)
{
    return xbd_loop_now_ns(r->clock);
}

/* The same in seconds, for persistent grants' last use. */
static double ring_now(const struct xbd_ring *r)
{
    return (double)ring_now_ns(r) * 1e-9;
}

static void record_latency(struct xbd_ring *r, const struct xbd_slot *s)
{
    struct xbd_lat_hist *h;
    uint64_t us;

    if (s->lat_op >= XBD_LAT_OPS)
        return;
    h = &r->st.lat[s->lat_op];
    us = (ring_now_ns(r) - s->t0_ns) / 1000u;
    h->count++;
    h->sum_us += us;
    h->buckets[xbd_lat_bucket(us)]++;
}

static void release_bufs(struct xbd_ring *r, struct xbd_slot *s)
{
    double now = r->persistent ? ring_now(r) : 0;
    unsigned i;

    /* An entry holds a mapping or a bounce page, never both (get_pages). */
    for (i = 0; i < s->nbuf; i++) {
        if (s->gnt[i]) {
            xbd_gcache_put(r->gc, s->gnt[i], now);
            s->gnt[i] = NULL;
        } else if (s->bounce[i]) {
            page_put(r, s->bounce[i]);
            s->bounce[i] = NULL;
        }
    }
    s->nbuf = 0;
}

static void start_barrier(struct xbd_ring *r);

static bool is_flush(const struct xbd_req *q)
{
    return q->wire_op == BLKIF_OP_FLUSH_DISKCACHE || q->wire_op == BLKIF_OP_WRITE_BARRIER;
}

static const char *wb_path(const struct xbd_wb_state *wb)
{
    return wb->store && *wb->store ? *wb->store : "its store";
}

static const char *wb_store(const struct xbd_ring *r)
{
    return wb_path(r->wb);
}

void xbd_wb_set_lost(struct xbd_wb_state *wb, const char *who, int err)
{
    if (wb->lost)
        return;
    wb->lost = true;
    xbd_err("%s: flushing %s failed: %s; writes acknowledged from the page cache may "
            "be lost, so every later flush and barrier of this disk fails until the "
            "frontend connects again", who, wb_path(wb), strerror(err));
    if (wb->on_lost)
        wb->on_lost(wb->opaque);
}

void xbd_ring_note_wb_lost(struct xbd_ring *r)
{
    xbd_journal_set_flags(r->jn, XBD_JFLAG_WB_LOST);
}

/* A flush of a store without O_DIRECT failed with <res> (struct
 * xbd_wb_state): from now on no flush of the disk succeeds. */
static void wb_failed(struct xbd_ring *r, long res)
{
    if (!r->bk->direct)
        xbd_wb_set_lost(r->wb, r->name, (int)-res);
}

/* Answer the request and recycle its slot.  May free the ring (stopping,
 * last one out): callers must not touch r afterwards. */
static void finish(struct xbd_slot *s, int16_t status)
{
    struct xbd_ring *r = s->ring;

    if (r->wb->lost && is_flush(&s->req)) {
        /* In the journal before the answer: a successor must not answer a
         * flush with success either. */
        xbd_journal_set_flags(r->jn, XBD_JFLAG_WB_LOST);
        if (status == BLKIF_RSP_OKAY) {
            r->st.io_errors++;
            status = BLKIF_RSP_ERROR;
        }
    }
    release_bufs(r, s);
    respond(r, s, status);
    record_latency(r, s);
    s->next_free = r->free_slots;
    r->free_slots = s;
    r->inflight--;
    r->st.inflight = r->inflight;

    if (r->barrier == s) {
        r->barrier = NULL;
        r->barrier_started = false;
    } else if (r->barrier && !r->barrier_started && r->inflight == 1) {
        start_barrier(r);
        return;
    }
    if (r->stopping) {
        if (!r->inflight)
            ring_destroy(r);
        return;
    }
    /* Resume the ring: ring_process may have left requests for want of
     * what this one gave back (a slot, bounce pages, the barrier's turn).
     * The pass runs at the end of this round (publish_cb, which respond()
     * fed), not on a zero timer: that cost a loop iteration per
     * completion (on real Xen at QD 1, an epoll_wait and libev's two
     * clock reads, 3 of 14 system calls per request).  It runs whether
     * or not requests wait: skipping it when none did (b015861) stalled
     * a restart test once in CI, cause not found then (tests/xen/README.md;
     * probably the simulated event channel's notification lost to a
     * SIGKILL, found and fixed later in tests/sim, not proven), and a pass
     * that finds nothing costs no system call. */
    r->pass_due = true;
}

/* The one grant-copy call of a batch: the first <n> entries of r->copy.
 * Every page of a request goes in the same call (on Xen one gntdev ioctl,
 * which the kernel issues as a GNTTABOP_copy hypercall per 16 segments);
 * 0 if each segment was copied. */
static int copy_batch(struct xbd_ring *r, unsigned n)
{
    unsigned i;

    r->st.copy_calls++;
    r->st.copy_segs += n;
    if (xengnttab_grant_copy(r->xgt, n, r->copy) < 0)
        return -1;
    for (i = 0; i < n; i++)
        if (r->copy[i].status != GNTST_okay)
            return -1;
    return 0;
}

/* One grant-copy call for every bounced segment of the request. */
static int copy_bounced(struct xbd_ring *r, struct xbd_slot *s, bool to_guest)
{
    const struct xbd_req *q = &s->req;
    unsigned i, n = 0;

    for (i = 0; i < q->nr_segments; i++) {
        xengnttab_grant_copy_segment_t *c;
        unsigned off, len;

        if (!s->bounce[i])
            continue;
        off = q->seg[i].first_sect * 512u;
        len = (q->seg[i].last_sect - q->seg[i].first_sect + 1u) * 512u;
        c = &r->copy[n++];
        memset(c, 0, sizeof(*c));
        if (to_guest) {
            c->source.virt = (char *)s->bounce[i] + off;
            c->dest.foreign.ref = q->seg[i].gref;
            c->dest.foreign.offset = (uint16_t)off;
            c->dest.foreign.domid = r->domid;
            c->flags = GNTCOPY_dest_gref;
        } else {
            c->source.foreign.ref = q->seg[i].gref;
            c->source.foreign.offset = (uint16_t)off;
            c->source.foreign.domid = r->domid;
            c->dest.virt = (char *)s->bounce[i] + off;
            c->flags = GNTCOPY_source_gref;
        }
        c->len = (uint16_t)len;
    }
    if (!n || copy_batch(r, n) == 0)
        return 0;
    r->st.grant_errors++;
    return -1;
}

static bool is_write(const struct xbd_req *q)
{
    return q->op != BLKIF_OP_READ;
}

static void aio_done(struct xbd_aio *a, long res);
static void start_rw(struct xbd_ring *r, struct xbd_slot *s);

/* <stage>: ST_PRESYNC before a flush's or barrier's data, else ST_SYNC. */
static void start_sync(struct xbd_ring *r, struct xbd_slot *s, enum xbd_stage stage)
{
    s->stage = stage;
    xbd_aio_fdsync(r->io, &s->aio, r->bk->fd, aio_done);
}

/* Whether a flush or barrier syncs the store: not where there is no
 * volatile cache, nor for a read-only disk (nothing written through it;
 * it refuses data: xbd_req_check). */
static bool flush_syncs(const struct xbd_ring *r)
{
    return r->bk->flush && !r->bk->readonly;
}

static void rw_done(struct xbd_ring *r, struct xbd_slot *s, long res)
{
    const struct xbd_req *q = &s->req;

    if (res < 0 || (uint64_t)res != xbd_req_bytes(q)) {
        r->st.io_errors++;
        finish(s, BLKIF_RSP_ERROR);
        return;
    }
    /* The bounce pages were entirely filled by the read: only now may
     * they be copied to the guest. */
    if (!is_write(q) && copy_bounced(r, s, true) < 0) {
        finish(s, BLKIF_RSP_ERROR);
        return;
    }
    if (is_flush(q) && flush_syncs(r)) {
        start_sync(r, s, ST_SYNC);
        return;
    }
    finish(s, BLKIF_RSP_OKAY);
}

static void aio_done(struct xbd_aio *a, long res)
{
    struct xbd_slot *s = container_of(a, struct xbd_slot, aio);
    struct xbd_ring *r = s->ring;

    switch (s->stage) {
    case ST_PRESYNC:
        if (res < 0) {
            r->st.io_errors++;
            wb_failed(r, res);
            finish(s, BLKIF_RSP_ERROR);     /* the data is not written */
            return;
        }
        start_rw(r, s);
        return;
    case ST_RW:
        rw_done(r, s, res);
        return;
    case ST_SYNC:
        if (res < 0) {
            r->st.io_errors++;
            wb_failed(r, res);
        }
        finish(s, res < 0 ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY);
        return;
    case ST_DISCARD:
        if (res == -EOPNOTSUPP) {
            finish(s, BLKIF_RSP_EOPNOTSUPP);
            return;
        }
        if (res < 0)
            r->st.io_errors++;
        finish(s, res < 0 ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY);
        return;
    }
}

/* ---- submission ------------------------------------------------------ */

/* Pin the request's persistent mappings: one grant-cache lookup per
 * segment, the pages not mapped yet mapped by one call (one gntdev
 * mapping, unmapped as one: grant_cache.h).  A segment left without one
 * (cache full, a page cached read-only, or a failed map call: a bad,
 * read-only or revoked ref among the new pages, or the host out of
 * mappings) is copied, which gives it the answer a map would (a bad ref
 * fails its copy, so the request). */
static void pin_grants(struct xbd_ring *r, struct xbd_slot *s)
{
    const struct xbd_req *q = &s->req;
    /* The cache counts the failed segments (map_failures) apart from
     * those that found no room (budget_full). */
    int err = xbd_gcache_get_segs(r->gc, q->seg, q->nr_segments, s->gnt, r->grefs);

    if (!err)
        return;
    if (q->nr_segments == 1)
        xbd_logb(r->logb, XBD_LOG_WARN, "%s: cannot map grant %u: %s; copying it",
                 r->name, q->seg[0].gref, strerror(err));
    else
        xbd_logb(r->logb, XBD_LOG_WARN,
                 "%s: cannot map the grants of a request: %s; copying them",
                 r->name, strerror(err));
}

/* The page of every segment: its persistent mapping when allowed and
 * there is one, else a bounce page.  -1: no memory for a bounce page. */
static int get_pages(struct xbd_ring *r, struct xbd_slot *s)
{
    const struct xbd_req *q = &s->req;
    unsigned i;

    /* Every entry is set from here (NULL or held): whatever fails next,
     * finish() puts each page taken exactly once. */
    s->nbuf = q->nr_segments;
    if (r->persistent)
        pin_grants(r, s);
    for (i = 0; i < q->nr_segments; i++)
        if (!s->gnt[i] && !(s->bounce[i] = page_get(r)))
            return -1;
    return 0;
}

static void *seg_page(const struct xbd_slot *s, unsigned i)
{
    return s->gnt[i] ? xbd_gnt_page(s->gnt[i]) : s->bounce[i];
}

static void start_rw(struct xbd_ring *r, struct xbd_slot *s)
{
    struct xbd_req *q = &s->req;
    unsigned i;

    if (get_pages(r, s) < 0) {
        r->st.grant_errors++;
        finish(s, BLKIF_RSP_ERROR);
        return;
    }
    if (is_write(q) && copy_bounced(r, s, false) < 0) {
        finish(s, BLKIF_RSP_ERROR);
        return;
    }
    /* One iovec per segment: granted pages are never assumed adjacent
     * (XSA-229). */
    for (i = 0; i < q->nr_segments; i++) {
        s->iov[i].iov_base = (char *)seg_page(s, i) + q->seg[i].first_sect * 512u;
        s->iov[i].iov_len = (q->seg[i].last_sect - q->seg[i].first_sect + 1u) * 512u;
    }
    s->stage = ST_RW;
    if (is_write(q))
        xbd_aio_writev(r->io, &s->aio, r->bk->fd, s->iov, q->nr_segments,
                       q->sector_number * 512u, aio_done);
    else
        xbd_aio_readv(r->io, &s->aio, r->bk->fd, s->iov, q->nr_segments,
                      q->sector_number * 512u, aio_done);
}

/* Flush and barrier.  With data: fdatasync, the data, fdatasync, so that
 * what completed before is durable before this request's data can be (a
 * journal's commit block relies on that order: blkback and qdisk flush
 * first too), and the data is durable when answered.  Without data: one
 * fdatasync.  None where flush_syncs() says nothing needs it. */
static void start_write_sync(struct xbd_ring *r, struct xbd_slot *s)
{
    bool sync = flush_syncs(r);

    if (!s->req.nr_segments) {
        if (sync)
            start_sync(r, s, ST_SYNC);
        else
            finish(s, BLKIF_RSP_OKAY);
    } else if (sync) {
        start_sync(r, s, ST_PRESYNC);
    } else {
        start_rw(r, s);
    }
}

static void start_barrier(struct xbd_ring *r)
{
    struct xbd_slot *s = r->barrier;
    const struct xbd_req *q = &s->req;

    r->barrier_started = true;
    /* Checked at dispatch, but a barrier waits for everything before it,
     * and an online shrink (SIGHUP) may have moved the end meanwhile:
     * writing past it would silently grow the image again. */
    if (q->nr_sectors && (q->sector_number > r->bk->sectors ||
                          q->nr_sectors > r->bk->sectors - q->sector_number)) {
        r->st.protocol_errors++;
        finish(s, BLKIF_RSP_ERROR);
        return;
    }
    start_write_sync(r, s);
}

static void start_discard(struct xbd_ring *r, struct xbd_slot *s)
{
    const struct xbd_req *q = &s->req;
    bool secure = (q->discard_flag & BLKIF_DISCARD_SECURE) && r->bk->discard_secure;

    if (!q->nr_sectors) {
        finish(s, BLKIF_RSP_OKAY);
        return;
    }
    s->stage = ST_DISCARD;
    xbd_aio_discard(r->io, &s->aio, r->bk->fd, r->bk->is_blockdev, secure,
                    q->sector_number * 512u, q->nr_sectors * 512u, aio_done);
}

/* Copy indirect page <ref> from its persistent mapping, if it has or can
 * get one (a frontend with persistent grants reuses its indirect pages as
 * it does its data pages, so steady state costs no hypercall); false:
 * grant-copy it.  Still one private copy (XSA-155): the segments are
 * parsed from ind_buf only. */
static bool indirect_from_mapping(struct xbd_ring *r, grant_ref_t ref,
                                  unsigned char *dst, size_t len)
{
    struct xbd_gnt *g;
    int err;

    if (!r->persistent)
        return false;
    g = xbd_gcache_get_indirect(r->gc, ref, &err);
    if (!g) {
        if (err)
            r->st.pgrant_map_failures++;
        return false;
    }
    memcpy(dst, xbd_gnt_page(g), len);
    xbd_gcache_put(r->gc, g, ring_now(r));
    return true;
}

/* Read the segment lists of an indirect request into ind_buf, once: from
 * persistent mappings where there are some, the rest in one copy call. */
static int fetch_indirect(struct xbd_ring *r, struct xbd_req *q)
{
    size_t left = (size_t)q->nr_segments * sizeof(struct blkif_request_segment);
    unsigned p, n = 0;

    for (p = 0; p < q->nr_indirect_pages; p++) {
        size_t len = left < XBD_PAGE_SIZE ? left : XBD_PAGE_SIZE;
        unsigned char *dst = r->ind_buf + (size_t)p * XBD_PAGE_SIZE;
        xengnttab_grant_copy_segment_t *c;

        if (indirect_from_mapping(r, q->indirect_grefs[p], dst, len)) {
            left -= len;
            continue;
        }
        c = &r->copy[n++];
        memset(c, 0, sizeof(*c));
        c->source.foreign.ref = q->indirect_grefs[p];
        c->source.foreign.offset = 0;
        c->source.foreign.domid = r->domid;
        c->dest.virt = dst;
        c->flags = GNTCOPY_source_gref;
        c->len = (uint16_t)len;
        left -= len;
    }
    if (n && copy_batch(r, n) < 0) {
        r->st.grant_errors++;
        return BLKIF_RSP_ERROR;
    }
    if (xbd_req_parse_indirect(q, r->ind_buf, &r->lim) != BLKIF_RSP_OKAY) {
        r->st.protocol_errors++;
        return BLKIF_RSP_ERROR;
    }
    return BLKIF_RSP_OKAY;
}

/* Count a validated request; returns the histogram its latency goes to. */
static enum xbd_lat_op count_op(struct xbd_ring *r, const struct xbd_req *q)
{
    if (q->indirect)
        r->st.indirect_req++;
    switch (q->indirect ? q->op : q->wire_op) {
    case BLKIF_OP_READ:
        r->st.rd_req++;
        r->st.rd_sect += q->nr_sectors;
        return XBD_LAT_READ;
    case BLKIF_OP_WRITE:
        r->st.wr_req++;
        r->st.wr_sect += q->nr_sectors;
        return XBD_LAT_WRITE;
    case BLKIF_OP_WRITE_BARRIER:
        r->st.barrier_req++;
        r->st.wr_sect += q->nr_sectors;
        return XBD_LAT_BARRIER;
    case BLKIF_OP_FLUSH_DISKCACHE:
        r->st.flush_req++;
        r->st.wr_sect += q->nr_sectors;
        return XBD_LAT_FLUSH;
    case BLKIF_OP_DISCARD:
        r->st.discard_req++;
        return XBD_LAT_DISCARD;
    default:
        return XBD_LAT_OPS;
    }
}

static void dispatch(struct xbd_ring *r, struct xbd_slot *s)
{
    struct xbd_req *q = &s->req;
    int st;

    /* The request left the ring just now (ring_process). */
    s->t0_ns = ring_now_ns(r);
    s->lat_op = XBD_LAT_OPS;
    st = xbd_req_check(q, &r->lim);
    if (st == BLKIF_RSP_ERROR)
        r->st.protocol_errors++;
    if (st == BLKIF_RSP_OKAY && q->indirect)
        st = fetch_indirect(r, q);
    if (st != BLKIF_RSP_OKAY) {
        finish(s, (int16_t)st);
        return;
    }
    s->lat_op = count_op(r, q);
    switch (q->wire_op) {
    case BLKIF_OP_DISCARD:
        start_discard(r, s);
        break;
    case BLKIF_OP_WRITE_BARRIER:
        /* Everything before the barrier completes first; nothing after it
         * is read until it has completed (ring_process checks barrier). */
        r->barrier = s;
        r->barrier_started = false;
        if (r->inflight == 1)
            start_barrier(r);
        break;
    case BLKIF_OP_FLUSH_DISKCACHE:
        start_write_sync(r, s);
        break;
    default:
        start_rw(r, s);
        break;
    }
}

/* ---- the ring loop --------------------------------------------------- */

static void ring_fatal(struct xbd_ring *r, const char *reason)
{
    r->dead = true;
    ev_io_stop(r->loop, &r->evtchn_w);
    ev_timer_stop(r->loop, &r->storm_w);
    ev_timer_stop(r->loop, &r->more_w);
    xbd_logb(r->logb, XBD_LOG_ERR, "%s: %s", r->name, reason);
    /* May stop (and free) the ring: nothing may touch r after this. */
    r->fatal(r->fatal_opaque, reason);
}

static void after_batch(struct xbd_ring *r)
{
    if (r->persistent && xbd_gcache_take_full_hint(r->gc) &&
        !ev_is_active(&r->purge_w))
        ev_timer_again(r->loop, &r->purge_w);
}

/* Consume at most XBD_RING_BUDGET requests, and no more once their map
 * calls were handed XBD_RING_MAP_PAGES pages; continue on the next loop
 * iteration (more_w) if more remain, so a busy or spamming frontend
 * cannot keep us in one callback.  Pages tried, not pages mapped: a map
 * call that one bad ref fails maps and unmaps the rest of its group all
 * the same, and caches nothing, so a guest sending such requests would
 * otherwise never reach the bound.  Returns -1 if r may have been freed
 * (fatal), else 0. */
static int ring_process(struct xbd_ring *r)
{
    struct blkif_back_ring *c = &r->br;
    unsigned budget = XBD_RING_BUDGET;
    uint64_t map_limit = xbd_gcache_pages_tried(r->gc) + XBD_RING_MAP_PAGES;
    int more;

    if (r->stopping || r->dead)
        return 0;
    for (;;) {
        RING_IDX rc = c->req_cons;
        RING_IDX rp = __atomic_load_n(&c->sring->req_prod, __ATOMIC_RELAXED);

        xen_rmb();  /* see the requests up to rp */
        if (RING_REQUEST_PROD_OVERFLOW(c, rp)) {
            ring_fatal(r, "frontend's req_prod is more than a ring ahead");
            return -1;
        }
        /* Behind what we already consumed (but not behind our responses,
         * or the check above fires): without this, rc would run on
         * towards rp through slots the frontend never produced. */
        if (rp - rc > RING_SIZE(c)) {
            ring_fatal(r, "frontend's req_prod went backwards");
            return -1;
        }
        while (rc != rp) {
            struct xbd_slot *s;

            if (RING_REQUEST_CONS_OVERFLOW(c, rc) || r->barrier)
                goto out;       /* finish() kicks us */
            if (!budget-- || xbd_gcache_pages_tried(r->gc) >= map_limit) {
                kick(r);
                goto out;
            }
            s = r->free_slots;
            /* Out of slots or of bounce memory (room for one largest
             * request, unless none holds any: the plan allows one):
             * finish() kicks us once a request gives its slot and its
             * pages back. */
            if (!s || (r->bounce_out && r->bounce_out + r->seg_cap > r->bounce_max)) {
                r->st.oo_req++;
                goto out;
            }
            r->free_slots = s->next_free;
            r->inflight++;
            r->st.inflight = r->inflight;
            /* Journaled (the single copy of the entry) before req_cons
             * moves; the request is parsed from that copy. */
            xbd_req_copy(&s->req, xbd_journal_take(r->jn, slot_no(r, s), rc,
                                                   req_slot(r, rc), r->entry_size),
                         r->proto);
            c->req_cons = ++rc;
            dispatch(r, s);
        }
        RING_FINAL_CHECK_FOR_REQUESTS(c, more);
        if (!more)
            break;
    }
out:
    after_batch(r);
    return 0;
}

/* A wake-up by the frontend.  A frontend only notifies after producing
 * requests: count the wake-ups since which no request at all was consumed
 * (by any path: completions resume the ring too, and may take a request
 * before its notification is read). */
static void ring_notified(struct xbd_ring *r)
{
    if (ring_process(r) < 0)
        return;                 /* r may be gone */
    if (r->br.req_cons != r->cons_seen) {
        r->cons_seen = r->br.req_cons;
        r->spurious = 0;
    } else if (r->spurious < XBD_STORM_SPURIOUS) {
        r->spurious++;
    }
}

static void evtchn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct xbd_ring *r = w->data;
    xenevtchn_port_or_error_t port = xenevtchn_pending(r->xce);

    if (port < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        /* The handle serves our port only: whatever went wrong, a lost
         * notification must not stall the ring. */
        xbd_logb(r->logb, XBD_LOG_WARN, "%s: event channel read: %s", r->name,
                 strerror(errno));
        port = (xenevtchn_port_or_error_t)r->port;
    }
    if ((evtchn_port_t)port != r->port) {
        xenevtchn_unmask(r->xce, (evtchn_port_t)port);
        return;
    }
    r->st.evtchn_rx++;
    if (r->spurious >= XBD_STORM_SPURIOUS) {
        /* Storming: leave the port masked (its notifications coalesce);
         * storm_cb unmasks and looks at the ring a moment later - from
         * now, not from the start of this loop iteration, which a busy
         * iteration may already have left behind. */
        if (!ev_is_active(&r->storm_w)) {
            ev_now_update(loop);
            ev_timer_set(&r->storm_w, XBD_STORM_DELAY, 0.);   /* re-arm */
            ev_timer_start(loop, &r->storm_w);
        }
        return;
    }
    /* The port stays masked until here: notifications that arrived while
     * we were busy were coalesced into this one. */
    xenevtchn_unmask(r->xce, (evtchn_port_t)port);
    ring_notified(r);
}

static void storm_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xbd_ring *r = w->data;

    r->st.storm_delays++;
    xenevtchn_unmask(r->xce, r->port);
    ring_notified(r);
}

static void more_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xbd_ring *r = w->data;

    ev_timer_stop(loop, w);
    ring_process(r);
}

static void purge_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xbd_ring *r = w->data;
    unsigned n = xbd_gcache_max(r->gc) / 20;   /* 5 %, as blkback */

    if (!xbd_gcache_take_full_hint(r->gc) &&
        xbd_gcache_count(r->gc) < xbd_gcache_max(r->gc)) {
        ev_timer_stop(loop, w);
        return;
    }
    /* Only grants unused since the previous tick: unlike blkback's second
     * pass, a grant the guest is still using is never unmapped to make
     * room for another, so a working set larger than the cache (256
     * segments at QD 8 is 2048 grants) does not churn through map and
     * unmap; its overflow goes by grant copy until some mapping idles. */
    xbd_gcache_purge_stale(r->gc, n ? n : 1, ring_now(r) - XBD_PURGE_INTERVAL);
}

static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xbd_ring *r = w->data;

    xbd_gcache_purge_idle(r->gc, ring_now(r) - r->pgrant_idle);
}

/* ---- start / stop ---------------------------------------------------- */

/* Cache entries kept for indirect pages: one request's worth per slot, at
 * most 1/64 of the cache (16 of 1056: the lists of 16 requests in flight)
 * and at least one unless that would leave data pages none.  Each entry kept is a data page copied whenever the
 * data overflows the cache, each indirect page mapped a copy call saved
 * per request: a few entries are worth it, a ring's worth (128) is not.
 * Indirect pages already mapped hold these entries (grant_cache.c
 * data_limit), so Linux blkfront's one pool of (32 + 1) x 32 grants for
 * data and lists fills the default cache whole. */
static unsigned indirect_headroom(const struct xbd_ring *r)
{
    unsigned per_req = (r->lim.max_indirect_segs + XBD_SEGS_PER_INDIRECT_PAGE - 1) /
                       XBD_SEGS_PER_INDIRECT_PAGE;
    unsigned want = r->nr_slots * per_req, cap = xbd_gcache_max(r->gc) / 64;

    if (cap < 1 && xbd_gcache_max(r->gc) > 1)
        cap = 1;
    return want < cap ? want : cap;
}

static int check_params(const struct xbd_ring_params *p)
{
    if (!p->backing || p->backing->fd < 0)
        return -1;
    if (p->ring_order > XBD_MAX_RING_ORDER)
        return -1;
    if (p->protocol != XBD_PROTO_NATIVE && p->protocol != XBD_PROTO_X86_32 &&
        p->protocol != XBD_PROTO_X86_64)
        return -1;
    if (p->backing->sector_size != 512 && p->backing->sector_size != 4096)
        return -1;
    if (!(p->pgrant_idle_s >= 0))     /* also refuses NaN */
        return -1;
    if (!p->clock)
        return -1;
    return 0;
}

/* The frontend's indexes, read once each. */
struct ring_idx {
    RING_IDX rsp_prod, req_prod;
};

/* No journal of this ring: a fresh connection, or a ring whose previous
 * backend left nothing outstanding, starts at rsp_prod (a fresh ring has
 * both indexes at 0).  A ring taken over with requests outstanding and no
 * journal cannot be served: which of them were answered is unknowable. */
static int attach_fresh(struct xbd_ring *r, const struct xbd_ring_params *p,
                        struct ring_idx x)
{
    if (p->resume && x.req_prod != x.rsp_prod) {
        xbd_err("%s: ring has %u request(s) outstanding (req_prod %u, rsp_prod %u) and no "
                "journal of it%s%s: cannot know which were answered, refusing to guess",
                r->name, x.req_prod - x.rsp_prod, x.req_prod, x.rsp_prod,
                p->journal_path ? " in " : "", p->journal_path ? p->journal_path : "");
        errno = EPROTO;
        return -1;
    }
    return 0;
}

/* A journal of this very ring: carry on where it says (journal.h). */
static int attach_journal(struct xbd_ring *r, const struct xbd_ring_params *p,
                          struct ring_idx x)
{
    char why[200];
    int n;

    r->redo = calloc(r->br.nr_ents, sizeof(*r->redo));
    if (!r->redo) {
        xbd_err("%s: out of memory", r->name);
        return -1;
    }
    n = xbd_journal_recover(r->jn, x.rsp_prod, x.req_prod, r->redo, why, sizeof(why));
    if (n < 0) {
        xbd_err("%s: cannot resume from %s: %s; refusing to guess", r->name,
                p->journal_path, why);
        r->keep_journal = true;     /* evidence */
        errno = EPROTO;
        return -1;
    }
    r->nredo = (unsigned)n;
    if ((xbd_journal_flags(r->jn) & XBD_JFLAG_WB_LOST) && !r->wb->lost) {
        r->wb->lost = true;
        xbd_err("%s: a flush of %s failed before the restart (journal %s): every "
                "flush and barrier of this disk still fails", r->name,
                wb_store(r), p->journal_path);
    }
    r->br.req_cons = xbd_journal_req_cons(r->jn);
    r->br.rsp_prod_pvt = xbd_journal_rsp_prod(r->jn);
    if (r->br.rsp_prod_pvt != x.rsp_prod) {
        /* Written, not published: slots [rsp_prod, J) are ours until
         * published, so the responses in them are intact. */
        xen_wmb();
        __atomic_store_n(&r->br.sring->rsp_prod, r->br.rsp_prod_pvt, __ATOMIC_RELAXED);
    }
    xbd_info("%s: resumed from its journal: consumed up to %u, %u response(s) "
             "published now, %u request(s) executed again", r->name, r->br.req_cons,
             r->br.rsp_prod_pvt - x.rsp_prod, r->nredo);
    return 0;
}

/*
 * Attach to the ring where the frontend's indexes are, not at 0: after a
 * previous backend instance stopped or died while the frontend kept its
 * ring, rsp_prod and req_prod carry on from where they were.  What the
 * previous instance consumed and answered is in the ring's journal
 * (journal.h), which decides where to resume.  A ring claiming more than
 * a ring's worth of outstanding requests is refused.
 */
static int attach_ring(struct xbd_ring *r, size_t sz, const struct xbd_ring_params *p)
{
    struct blkif_sring *s = r->sring;
    struct ring_idx x = {
        .rsp_prod = __atomic_load_n(&s->rsp_prod, __ATOMIC_RELAXED),
        .req_prod = __atomic_load_n(&s->req_prod, __ATOMIC_RELAXED),
    };
    unsigned nr_ents = xbd_ring_nr_ents(r->proto, sz);
    struct xbd_journal_id id = {
        .domid = r->domid, .queue = p->queue, .protocol = (uint32_t)r->proto,
        .nr_pages = r->nr_pages, .remote_port = p->remote_port,
    };
    char err[300];
    bool found;

    if (x.req_prod - x.rsp_prod > nr_ents) {
        xbd_err("%s: ring has %u requests outstanding (req_prod %u, rsp_prod %u), "
                "more than its %u slots", r->name, x.req_prod - x.rsp_prod, x.req_prod,
                x.rsp_prod, nr_ents);
        errno = EPROTO;
        return -1;
    }
    for (unsigned i = 0; i < r->nr_pages; i++)
        id.ring_refs[i] = p->ring_refs[i];
    r->entry_size = xbd_ring_entry_size(r->proto);
    BACK_RING_ATTACH(&r->br, s, x.rsp_prod, sz);
    r->br.nr_ents = nr_ents;
    r->jn = xbd_journal_open(p->journal_path, &id, nr_ents, p->resume, x.rsp_prod, &found,
                             err, sizeof(err));
    if (!r->jn) {
        xbd_err("%s: %s", r->name, err);
        r->keep_journal = true;     /* not ours to remove */
        return -1;
    }
    return found ? attach_journal(r, p, x) : attach_fresh(r, p, x);
}

static int map_ring(struct xbd_ring *r, const struct xbd_ring_params *p)
{
    uint32_t refs[XBD_MAX_RING_PAGES];
    unsigned i;

    for (i = 0; i < r->nr_pages; i++)
        refs[i] = p->ring_refs[i];
    r->sring = xengnttab_map_domain_grant_refs(r->xgt, r->nr_pages, r->domid,
                                               refs, PROT_READ | PROT_WRITE);
    return r->sring ? 0 : -1;
}

/* Slots beyond the memory plan for requests a previous instance left in
 * flight: they run again in their own slot, whatever the budget. */
static unsigned redo_slots_needed(const struct xbd_ring *r)
{
    unsigned n = 0;

    for (unsigned i = 0; i < r->nredo; i++)
        if (r->redo[i] + 1 > n)
            n = r->redo[i] + 1;
    return n;
}

/* Scratch allocated once per ring: the private copy of indirect pages
 * and the grant-copy batch. */
static size_t fixed_bytes(const struct xbd_ring *r)
{
    unsigned ncopy = r->seg_cap > BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST ?
                     r->seg_cap : BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST;

    return (size_t)XBD_PAGE_SIZE * ((r->lim.max_indirect_segs + XBD_SEGS_PER_INDIRECT_PAGE - 1) /
                                    XBD_SEGS_PER_INDIRECT_PAGE) +
           ncopy * sizeof(xengnttab_grant_copy_segment_t) +
           r->seg_cap * sizeof(grant_ref_t);
}

static size_t slot_bytes(const struct xbd_ring *r)
{
    return sizeof(struct xbd_slot) +
           r->seg_cap * (sizeof(struct xbd_seg) + sizeof(struct xbd_gnt *) +
                         sizeof(void *) + sizeof(struct iovec));
}

/* What the queue holds now, for the stats (budget.h). */
static void update_mem(struct xbd_ring *r)
{
    r->st.mem_bytes = (uint64_t)r->nr_slots * slot_bytes(r) + fixed_bytes(r) +
                      (uint64_t)(r->bounce_out + r->pool_n) * XBD_PAGE_SIZE;
}

static int alloc_slots(struct xbd_ring *r)
{
    size_t per = slot_bytes(r) - sizeof(struct xbd_slot);
    struct xbd_ring_plan plan;
    unsigned char *m;
    unsigned i;

    xbd_ring_plan(r->mem_budget, fixed_bytes(r), r->br.nr_ents, r->seg_cap, slot_bytes(r),
                  XBD_BOUNCE_MAX, XBD_POOL_KEEP, &plan);
    r->nr_slots = plan.slots > redo_slots_needed(r) ? plan.slots : redo_slots_needed(r);
    r->bounce_max = plan.bounce_max;
    r->pool_keep = plan.pool_keep;
    r->st.slots = r->nr_slots;
    r->st.bounce_limit = r->bounce_max;
    r->slots = calloc(r->nr_slots, sizeof(*r->slots));
    r->slot_mem = calloc(r->nr_slots, per);
    r->copy = calloc(r->seg_cap > BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST ?
                     r->seg_cap : BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
                     sizeof(*r->copy));
    r->grefs = calloc(r->seg_cap ? r->seg_cap : 1, sizeof(*r->grefs));
    r->pool = calloc(r->pool_keep ? r->pool_keep : 1, sizeof(*r->pool));
    if (r->lim.max_indirect_segs)
        r->ind_buf = malloc((size_t)XBD_PAGE_SIZE *
                            ((r->lim.max_indirect_segs + XBD_SEGS_PER_INDIRECT_PAGE - 1) /
                             XBD_SEGS_PER_INDIRECT_PAGE));
    if (!r->slots || !r->slot_mem || !r->copy || !r->grefs || !r->pool ||
        (r->lim.max_indirect_segs && !r->ind_buf))
        return -1;
    m = r->slot_mem;
    for (i = 0; i < r->nr_slots; i++) {
        struct xbd_slot *s = &r->slots[i];

        s->ring = r;
        s->req.seg = (struct xbd_seg *)(void *)m;
        m += r->seg_cap * sizeof(struct xbd_seg);
        s->req.seg_cap = r->seg_cap;
        s->gnt = (struct xbd_gnt **)(void *)m;
        m += r->seg_cap * sizeof(struct xbd_gnt *);
        s->bounce = (void **)(void *)m;
        m += r->seg_cap * sizeof(void *);
        s->iov = (struct iovec *)(void *)m;
        m += r->seg_cap * sizeof(struct iovec);
        s->next_free = r->free_slots;
        r->free_slots = s;
    }
    update_mem(r);
    return 0;
}

static int open_handles(struct xbd_ring *r, const struct xbd_ring_params *p)
{
    xenevtchn_port_or_error_t port;

    r->xgt = xengnttab_open(NULL, 0);
    if (!r->xgt) {
        xbd_err("%s: cannot open the grant device: %s", r->name, strerror(errno));
        return -1;
    }
    if (map_ring(r, p) < 0) {
        xbd_err("%s: cannot map %u ring page(s) of domain %u: %s", r->name,
                r->nr_pages, r->domid, strerror(errno));
        return -1;
    }
    if (attach_ring(r, (size_t)r->nr_pages * XBD_PAGE_SIZE, p) < 0)
        return -1;      /* logged */
    r->xce = xenevtchn_open(NULL, 0);
    if (!r->xce) {
        xbd_err("%s: cannot open the event channel device: %s", r->name,
                strerror(errno));
        return -1;
    }
    port = xenevtchn_bind_interdomain(r->xce, r->domid, p->remote_port);
    if (port < 0) {
        xbd_err("%s: cannot bind event channel %u of domain %u: %s", r->name,
                p->remote_port, r->domid, strerror(errno));
        xenevtchn_close(r->xce);
        r->xce = NULL;
        return -1;
    }
    r->port = (evtchn_port_t)port;
    return 0;
}

static struct xbd_ring *ring_new(const struct xbd_ring_params *p)
{
    struct xbd_ring *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->name = strdup(p->name ? p->name : "ring");
    if (!r->name) {
        free(r);
        return NULL;
    }
    r->domid = p->domid;
    r->proto = p->protocol;
    r->bk = p->backing;
    r->wb = p->wb ? p->wb : &r->own_wb;
    r->persistent = p->persistent;
    r->mem_budget = p->mem_budget;
    r->logb = p->logb;
    r->nr_pages = 1u << p->ring_order;
    r->lim.backing = p->backing;
    r->lim.max_indirect_segs = p->max_indirect_segs > XBD_MAX_INDIRECT_SEGS ?
                               XBD_MAX_INDIRECT_SEGS : p->max_indirect_segs;
    r->seg_cap = r->lim.max_indirect_segs > BLKIF_MAX_SEGMENTS_PER_REQUEST ?
                 r->lim.max_indirect_segs : BLKIF_MAX_SEGMENTS_PER_REQUEST;
    return r;
}

/* Undo a partial start: nothing is in flight yet.  A journal found is
 * kept: a failed start is no proof that its requests need nothing. */
static void start_failed(struct xbd_ring *r)
{
    r->drained = NULL;
    if (r->nredo)
        r->keep_journal = true;
    ring_destroy(r);
}

/* Execute again, oldest first, what the previous instance consumed and
 * never answered (attach_journal).  Their slots leave the free list
 * before any runs: a request that finishes at once frees its slot. */
static void redo_requests(struct xbd_ring *r)
{
    unsigned i, n = r->nredo;

    r->free_slots = NULL;
    for (i = r->nr_slots; i-- > 0;) {
        struct xbd_journal_rec *rec = xbd_journal_rec(r->jn, i);

        if (rec->state == XBD_JREC_INFLIGHT)
            continue;
        r->slots[i].next_free = r->free_slots;
        r->free_slots = &r->slots[i];
    }
    r->inflight = n;
    r->st.inflight = n;
    r->nredo = 0;
    for (i = 0; i < n; i++) {
        struct xbd_slot *s = &r->slots[r->redo[i]];

        xbd_req_copy(&s->req, xbd_journal_rec(r->jn, r->redo[i])->req, r->proto);
        dispatch(r, s);
    }
}

/* A queue of its own in the shared engine, in the group of its device
 * (the backing store every ring of the device shares), so that the engine
 * can give each ring and each device its share (io_aio.h). */
static int join_engine(struct xbd_ring *r, const struct xbd_ring_params *p)
{
    r->aq = xbd_aio_queue_new(r->io, p->backing, &r->st.engine);
    if (!r->aq)
        return -1;
    for (unsigned i = 0; i < r->nr_slots; i++)
        xbd_aio_bind(&r->slots[i].aio, r->aq);
    return 0;
}

struct xbd_ring *xbd_ring_start(struct ev_loop *loop, struct xbd_io_engine *io,
                                const struct xbd_ring_params *p,
                                xbd_ring_fatal_fn *fatal, void *opaque)
{
    struct xbd_ring *r;
    double idle_check;

    if (check_params(p) < 0) {
        xbd_err("%s: invalid ring parameters", p->name ? p->name : "ring");
        return NULL;
    }
    r = ring_new(p);
    if (!r) {
        xbd_err("%s: out of memory", p->name ? p->name : "ring");
        return NULL;
    }
    r->loop = loop;
    r->io = io;
    r->clock = p->clock;
    r->fatal = fatal;
    r->fatal_opaque = opaque;
    ev_io_init(&r->evtchn_w, evtchn_cb, -1, EV_READ);
    ev_timer_init(&r->storm_w, storm_cb, XBD_STORM_DELAY, 0.);
    ev_timer_init(&r->more_w, more_cb, 0., 0.);
    ev_check_init(&r->publish_w, publish_cb);
    ev_set_priority(&r->publish_w, EV_MINPRI);
    r->publish_w.data = r;
    ev_init(&r->purge_w, purge_cb);
    r->purge_w.repeat = XBD_PURGE_INTERVAL;
    /* A grant is unmapped between pgrant_idle and pgrant_idle plus one
     * check period after its last use. */
    r->pgrant_idle = p->pgrant_idle_s;
    idle_check = r->pgrant_idle / 4 < XBD_IDLE_CHECK ? r->pgrant_idle / 4 : XBD_IDLE_CHECK;
    ev_timer_init(&r->idle_w, idle_cb, idle_check, idle_check);
    r->evtchn_w.data = r->more_w.data = r->purge_w.data = r->idle_w.data = r;
    r->storm_w.data = r;

    if (open_handles(r, p) < 0) {
        start_failed(r);
        return NULL;
    }
    if (alloc_slots(r) < 0) {
        xbd_err("%s: out of memory", r->name);
        start_failed(r);
        return NULL;
    }
    if (join_engine(r, p) < 0) {
        xbd_err("%s: out of memory", r->name);
        start_failed(r);
        return NULL;
    }
    r->gc = xbd_gcache_new(r->xgt, r->domid, p->max_persistent_grants ?
                           p->max_persistent_grants : XBD_DEFAULT_MAX_PGRANTS,
                           &r->st);
    if (!r->gc) {
        xbd_err("%s: out of memory", r->name);
        start_failed(r);
        return NULL;
    }
    xbd_gcache_set_reserve(r->gc, p->maps);
    r->maps = p->maps;
    r->unmapper = p->unmapper;
    xbd_gcache_set_unmapper(r->gc, r->unmapper, r->name);
    xbd_gcache_set_headroom(r->gc, indirect_headroom(r));
    r->st.pgrant_limit = r->persistent ? xbd_gcache_max(r->gc) : 0;
    ev_io_set(&r->evtchn_w, xenevtchn_fd(r->xce), EV_READ);
    ev_io_start(loop, &r->evtchn_w);
    redo_requests(r);
    if (r->persistent && r->pgrant_idle > 0)
        ev_timer_start(loop, &r->idle_w);
    xbd_debug("%s: ring of %u page(s), %u slots, protocol %d, persistent %d, "
              "indirect %u", r->name, r->nr_pages, r->nr_slots, r->proto,
              r->persistent, r->lim.max_indirect_segs);
    /* Requests may already be waiting (the frontend notified before we
     * bound the port). */
    kick(r);
    /* Responses may be waiting too: a previous instance that died between
     * pushing responses and notifying left them unseen on a ring we just
     * attached to.  One spurious event is harmless to any frontend; a lost
     * one would stall it for good.  (A resumed ring's index may be 0 after
     * 2^32 responses.) */
    if (p->resume || r->br.rsp_prod_pvt) {
        xenevtchn_notify(r->xce, r->port);
        r->st.evtchn_tx++;
    }
    return r;
}

static void ring_stop(struct xbd_ring *r, xbd_ring_counted_fn *counted,
                      xbd_ring_drained_fn *drained, void *opaque)
{
    r->stopping = true;
    r->counted = counted;
    r->drained = drained;
    r->drained_opaque = opaque;
    ev_io_stop(r->loop, &r->evtchn_w);
    ev_timer_stop(r->loop, &r->storm_w);
    ev_timer_stop(r->loop, &r->more_w);
    ev_timer_stop(r->loop, &r->purge_w);
    ev_timer_stop(r->loop, &r->idle_w);
    if (!r->inflight)
        ring_destroy(r);
    /* else: the last finish() destroys the ring. */
}

void xbd_ring_stop(struct xbd_ring *r, xbd_ring_counted_fn *counted,
                   xbd_ring_drained_fn *drained, void *opaque)
{
    r->keep_journal = false;        /* the ring is gone for good */
    ring_stop(r, counted, drained, opaque);
}

void xbd_ring_handover(struct xbd_ring *r, xbd_ring_counted_fn *counted,
                       xbd_ring_drained_fn *drained, void *opaque)
{
    r->keep_journal = true;         /* a successor resumes from it */
    ring_stop(r, counted, drained, opaque);
}

void xbd_ring_abandon(struct xbd_ring *r)
{
    xbd_warn("%s: abandoned with %u request%s unanswered, kept in its journal", r->name,
             r->inflight, r->inflight == 1 ? "" : "s");
    /* Held pages and pins go back (nothing reads them any more), so the
     * cache and pool free everything below. */
    for (unsigned i = 0; i < r->nr_slots; i++)
        release_bufs(r, &r->slots[i]);
    xbd_aio_queue_drop(r->aq, true);
    r->inflight = 0;
    r->barrier = NULL;
    r->keep_journal = true;
    r->counted = NULL;
    r->drained = NULL;
    /* Publishes what was answered, unmaps through the unmap worker (which
     * the host waits for before the exit), frees. */
    ring_destroy(r);
}

const struct xbd_ring_stats *xbd_ring_get_stats(const struct xbd_ring *r)
{
    return &r->st;
}
