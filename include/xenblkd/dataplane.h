/*
 * dataplane.h - the contract between the control plane (xenstore state
 * machine, device objects: src/xenbus.c, src/device.c) and the data plane
 * (rings, request parsing, grant cache, I/O engine: src/ring.c,
 * src/request.c, src/grant_cache.c, src/io_aio.c).
 *
 * The data plane knows nothing about xenstore.  The control plane hands it
 * everything it needs in xbd_ring_params and gets called back when a ring
 * must be torn down because the frontend broke the protocol.
 *
 * Ownership: every ring belongs to exactly one event loop and one I/O
 * engine; nothing in a ring is shared with another ring (no cross-ring
 * locks), so that later each CPU can run its own loop.
 */
#ifndef XENBLKD_DATAPLANE_H
#define XENBLKD_DATAPLANE_H

#include <stdbool.h>
#include <stdint.h>
#include <ev.h>
#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/event_channel.h>

/* Limits the backend advertises (control plane publishes them). */
#define XBD_MAX_RING_ORDER        4u    /* max-ring-page-order */
#define XBD_MAX_RING_PAGES        (1u << XBD_MAX_RING_ORDER)
#define XBD_MAX_INDIRECT_SEGS     256u  /* feature-max-indirect-segments */
#define XBD_DEFAULT_MAX_PGRANTS   1056u /* persistent grants per ring, as Linux blkback */
#define XBD_DEFAULT_PGRANT_IDLE   60u   /* s, as blkback's persistent_grant_unused_seconds */

/* Ring ABI, from the frontend's "protocol" key. */
enum xbd_protocol {
    XBD_PROTO_NATIVE = 0,
    XBD_PROTO_X86_32,
    XBD_PROTO_X86_64,
};

/* The backing store of a device.  Owned by the device; rings only read it,
 * and it outlives every ring of the device. */
struct xbd_backing {
    int fd;                    /* opened by the control plane */
    uint64_t sectors;          /* size in 512-byte units */
    uint32_t sector_size;      /* logical sector size: 512 or 4096 */
    uint32_t physical_sector_size;
    bool readonly;
    bool is_blockdev;
    bool direct;               /* fd was opened with O_DIRECT */
    bool discard;              /* discard is offered */
    bool discard_secure;       /* BLKSECDISCARD works */
    bool flush;                /* fdatasync is meaningful (write cache) */
};

/* Write-back lost ("fsyncgate"): on a store without O_DIRECT a guest
 * write completes in dom0's page cache, and if write-back then fails
 * Linux reports it to one fdatasync only (and keeps the pages, now clean,
 * so reads return data the store does not hold).  Once a flush of such a
 * store failed, every later flush and barrier of the disk, on every
 * queue, is answered BLKIF_RSP_ERROR (as QEMU's page_cache_inconsistent):
 * a later success would tell the guest its data is durable.  Owned by the
 * device and shared by its rings (one loop: plain stores); set once, kept
 * for the connection, across a restart of the daemon (the ring journals'
 * XBD_JFLAG_WB_LOST), cleared when the frontend connects again.  The
 * disk's NBD export (nbd_server.h) shares it: it may be the one whose
 * flush sees the error (its fd is a duplicate of the rings', one open
 * file).  Stores opened with O_DIRECT keep the error to the flush that
 * saw it. */
struct xbd_wb_state {
    bool lost;
    char *const *store;        /* the device's path of the store (a reopen
                                  may replace it), for the log */
    /* Called once when lost is set, by whoever met the error (a ring, an
     * NBD connection): the device writes XBD_JFLAG_WB_LOST into every
     * ring's journal at once, so a successor learns of it even if the
     * daemon dies before the guest's next flush.  NULL: nobody to tell. */
    void (*on_lost)(void *opaque);
    void *opaque;
};

struct xbd_ring;
/* Record in r's journal that the disk's write-back was lost. */
void xbd_ring_note_wb_lost(struct xbd_ring *r);

/* A flush by <who> of a store without O_DIRECT failed with errno <err>:
 * set wb->lost, logging it the first time. */
void xbd_wb_set_lost(struct xbd_wb_state *wb, const char *who, int err);

struct xbd_map_reserve;        /* src/budget.h */
struct xbd_log_bucket;         /* src/log_limit.h */
struct xbd_loop_stats;         /* src/loop_stats.h */

/* Everything a ring needs to connect. */
struct xbd_ring_params {
    const char *name;          /* for logs, e.g. "vbd3/5/51712 q0" */
    domid_t domid;             /* frontend domain */
    unsigned queue;            /* queue index */
    enum xbd_protocol protocol;
    unsigned ring_order;       /* 0..XBD_MAX_RING_ORDER */
    grant_ref_t ring_refs[XBD_MAX_RING_PAGES];
    evtchn_port_t remote_port; /* frontend's unbound port */
    bool persistent;           /* both sides agreed on feature-persistent */
    unsigned max_indirect_segs;   /* 0 = indirect not offered */
    unsigned max_persistent_grants;
    double pgrant_idle_s;      /* unused persistent grants are unmapped after
                                  this many seconds; 0 = kept until disconnect */
    const struct xbd_backing *backing;
    struct xbd_wb_state *wb;   /* the device's; NULL: the ring's own (a disk
                                  of one queue, whose path is not logged) */
    /* The ring's journal (journal.h): a file that survives the process,
     * or NULL for anonymous memory (nothing to resume from). */
    const char *journal_path;
    /* Taking over a ring a previous instance served (the device was found
     * Connected at start-up): resume from its journal, and refuse a ring
     * with requests outstanding but no journal.  Otherwise the frontend
     * has just set the ring up and any old journal is replaced. */
    bool resume;
    /* Budgets (src/budget.h).  mem_budget: bytes this queue may spend on
     * request slots and bounce pages (0: the built-in maxima); maps: the
     * host-wide persistent-grant reserve (NULL: none); logb: the disk's
     * log rate limit (NULL: none). */
    size_t mem_budget;
    struct xbd_map_reserve *maps;
    struct xbd_log_bucket *logb;
    /* Where the ring's grant mappings go once it stopped (src/unmap_worker.h;
     * NULL: unmapped on the loop before the ring reports drained). */
    struct xbd_unmapper *unmapper;
    /* The loop's clock (src/loop_stats.h), required: requests' times and
     * grants' last use are the time of the loop's wake-up, read once per
     * iteration, never per request. */
    const struct xbd_loop_stats *clock;
};

/* Operations that have a latency histogram. */
enum xbd_lat_op {
    XBD_LAT_READ,
    XBD_LAT_WRITE,
    XBD_LAT_FLUSH,
    XBD_LAT_BARRIER,
    XBD_LAT_DISCARD,
    XBD_LAT_OPS,               /* number of the above; also "no histogram" */
};

/* Latency from the request being consumed from the ring to its response
 * being pushed, in whole microseconds L (truncated), log2 buckets:
 * bucket 0 counts L = 0, bucket i (1 <= i < XBD_LAT_BUCKETS - 1) counts
 * 2^(i-1) <= L < 2^i, the last bucket everything from 2^(i-1) on (about
 * 18 minutes).  So bucket i holds exactly the latencies below 2^i us. */
#define XBD_LAT_BUCKETS 32u

struct xbd_lat_hist {
    uint64_t count;            /* responses recorded */
    uint64_t sum_us;           /* sum of their latencies, for the mean */
    uint64_t buckets[XBD_LAT_BUCKETS];
};

static inline unsigned xbd_lat_bucket(uint64_t us)
{
    unsigned b = us ? 64u - (unsigned)__builtin_clzll(us) : 0u;

    return b < XBD_LAT_BUCKETS ? b : XBD_LAT_BUCKETS - 1u;
}

/* What the shared I/O engine did with one ring's I/O (src/io_aio.c). */
struct xbd_aio_share_stats {
    uint64_t queued;           /* I/Os waiting for their share (now) */
    uint64_t share_waits;      /* submission rounds in which the ring had
                                  I/O waiting because its own or its
                                  device's share of the engine was full */
    uint64_t offloaded;        /* jobs the worker pool ran: discard chunks,
                                  flushes without IOCB_CMD_FDSYNC, reads and
                                  writes that would have blocked */
    uint64_t worker_submitted; /* of which reads and writes a worker only
                                  submitted to the kernel (without
                                  RWF_NOWAIT), which then did the transfer */
};

/* Per-ring counters.  Written only by the ring's own loop, in the data
 * path, by plain increments (no locks, no allocation); readers (the xentop
 * file, the control socket) run on the same loop and sum rings when asked.
 * Requests are counted by operation once they passed validation; an
 * indirect request is counted under its inner operation and in
 * indirect_req as well. */
struct xbd_ring_stats {
    uint64_t rd_req, wr_req, flush_req, barrier_req, discard_req, indirect_req;
    uint64_t rd_sect, wr_sect;  /* 512-byte sectors (flush/barrier data in wr_sect) */
    uint64_t errors;           /* requests answered BLKIF_RSP_ERROR, of which: */
    uint64_t io_errors;        /*   the backing store failed */
    uint64_t protocol_errors;  /*   refused by validation (malformed, out of
                                    range, write to a read-only disk) */
    uint64_t grant_errors;     /*   a grant could not be mapped or copied, or
                                    no memory for a bounce page */
    uint64_t eopnotsupp;       /* requests answered BLKIF_RSP_EOPNOTSUPP */
    uint64_t oo_req;           /* times the ring had to wait for resources */
    uint64_t inflight;         /* requests currently in flight */
    uint64_t pgrants_mapped;   /* persistent grants currently mapped */
    uint64_t pgrant_hits;      /* segment found already mapped */
    uint64_t pgrant_misses;    /* not mapped yet (then mapped, or copied if full) */
    uint64_t pgrant_lookups;   /* grant cache hash lookups: one per segment and
                                  indirect page of a persistent ring */
    uint64_t pgrant_purges;    /* unmapped by the LRU or idle purge */
    uint64_t pgrant_map_calls; /* gnttab map calls made for data and indirect pages */
    uint64_t copy_calls;       /* gnttab grant-copy calls */
    uint64_t copy_segs;        /* segments (pages or parts) they copied */
    uint64_t evtchn_rx;        /* wake-ups by the frontend's notifications */
    uint64_t evtchn_tx;        /* notifications sent to the frontend */
    uint64_t storm_delays;     /* unmasks held back XBD_STORM_DELAY because the
                                  frontend kept notifying with nothing to do
                                  (src/ring.c): a guest storming its port */
    /* Budgets (src/budget.h): what the queue holds and may hold. */
    uint64_t pgrant_budget_full;  /* segments copied: a mapping budget was full */
    uint64_t pgrant_map_failures; /* segments copied: their map failed */
    uint64_t pgrant_limit;     /* mappings this queue may hold */
    uint64_t slots;            /* request slots (requests in flight at most) */
    uint64_t mem_bytes;        /* slots, bounce pages held and idle, scratch */
    uint64_t bounce_pages;     /* bounce pages held by requests now */
    uint64_t bounce_limit;     /* ... at most (one request may pass it) */
    uint64_t idle_pages;       /* idle bounce pages kept for reuse */
    struct xbd_aio_share_stats engine;
    struct xbd_lat_hist lat[XBD_LAT_OPS];
};

struct xbd_io_engine;          /* one per event loop: libaio contexts + eventfd */
struct xbd_ring;

struct xbd_io_engine *xbd_io_engine_new(struct ev_loop *loop);
void xbd_io_engine_free(struct xbd_io_engine *io);
/* At exit, before the devices close their backing stores and free their
 * requests: pool jobs not started are dropped (a ring journal makes a
 * successor execute them), and the jobs running and the I/O the kernel
 * holds are waited for, so that nothing uses a closed (or reused) file
 * descriptor or freed memory.  No I/O may be started after it;
 * xbd_io_engine_free() is still due. */
void xbd_io_engine_stop(struct xbd_io_engine *io);
/* Worker pool threads running a job now (on storage that hangs, they stay
 * so), threads there are, and jobs the engine may hand the pool at once
 * (the threads there may be). */
void xbd_io_engine_get_workers(struct xbd_io_engine *io, unsigned *busy, unsigned *live,
                               unsigned *limit);

/* Shares of the engine (xenblkd.conf [disks] max-inflight-per-device,
 * max-inflight-per-ring): at most per_device I/Os of one backing store
 * and per_ring of one ring are in flight (in the kernel or the worker
 * pool) at once; the rest waits in its ring's queue, and queues with work
 * are served round-robin.  64 per device stays below the request tags of
 * common block devices (128 for a loop device, 64 scheduler requests for
 * a SATA disk), past which io_submit() itself would sleep in the shared
 * loop; the engine's kernel contexts (1024 I/Os each) follow the devices,
 * enough for every device at its share at once (within fs.aio-max-nr), so
 * devices stalled at their share still leave room for every other one.  0 keeps the current
 * value; values over XBD_INFLIGHT_SHARE_MAX are clamped.  Applies at once
 * (to I/O not yet in flight). */
#define XBD_DEFAULT_INFLIGHT_PER_DEVICE 64u
#define XBD_DEFAULT_INFLIGHT_PER_RING   64u
#define XBD_INFLIGHT_SHARE_MAX          1024u
void xbd_io_engine_set_limits(struct xbd_io_engine *io, unsigned per_device,
                              unsigned per_ring);

/* Called when the frontend broke the protocol (bad req_prod, ...).  The
 * ring has already stopped processing; the control plane logs <reason>
 * (naming domain and device) and disconnects the device. */
typedef void xbd_ring_fatal_fn(void *opaque, const char *reason);
/* Called once a stopped ring has drained its in-flight I/O and released
 * every grant mapping, its event channel and its memory. */
typedef void xbd_ring_drained_fn(void *opaque);
/* Called once as a stopped ring's last request is answered (at the stop
 * if none is in flight), before drained: <final> are its counters, the
 * drain's completions and errors included, which never change again
 * (valid during the call only: the ring's memory goes right after).  The
 * ring owns its counters until then; whoever keeps totals adds these.
 * <r> only names the ring (its owner forgets it here). */
typedef void xbd_ring_counted_fn(void *opaque, const struct xbd_ring *r,
                                 const struct xbd_ring_stats *final);

/*
 * Behaviour the control plane can rely on (src/ring.c, src/request.c):
 * - persistent: data pages are mapped writable once per grant and kept
 *   (while the cache is full, unused ones are purged, only those unused
 *   since the previous purge; unused for pgrant_idle_s; or at stop);
 *   max_persistent_grants 0 means XBD_DEFAULT_MAX_PGRANTS.
 *   Without persistent, or over the bound, data goes by grant copy
 *   through daemon-owned page-aligned buffers, one copy call per request.
 *   Indirect pages: with persistent, through the same cache (writable,
 *   or read-only if the frontend granted them so; the last 1/64 of the
 *   cache is kept for them) and copied once into private memory; without
 *   persistent, or when they find no room, by grant copy, one call per
 *   indirect request.
 * - FLUSH_DISKCACHE/WRITE_BARRIER are answered EOPNOTSUPP unless
 *   backing->flush, DISCARD unless backing->discard (secure only with
 *   discard_secure, else a plain discard); writes of any kind to a
 *   readonly backing get ERROR.  The backing fields are read per request,
 *   so they must not change while a ring runs.
 * - An indirect request's response echoes indirect_op (as Linux blkfront
 *   expects); others echo the operation byte.
 * - What one frontend can cost dom0 is bounded per ring: at most
 *   XBD_RING_BUDGET (64) requests per callback before yielding to other
 *   rings (fewer once 64 pages were newly mapped for them: mapping is the
 *   dearest per-request work), at most XBD_BOUNCE_MAX (2048) grant-copy pages (8 MiB) held
 *   (fewer, and fewer request slots, under mem_budget: src/budget.h),
 *   after which the ring stops reading requests until some complete; a
 *   persistent map that fails or finds its budget (max_persistent_grants,
 *   the host's reserve) used up degrades that page to grant copy; and
 *   after 64 wake-ups in a row that found no request the port is unmasked
 *   only 2 ms later (a notification storm costs little CPU and one real
 *   request ends the throttle).  All in src/ring.c.
 */

/* Map the ring, bind the event channel, start serving.  NULL + log line on
 * failure (nothing left mapped or bound). */
struct xbd_ring *xbd_ring_start(struct ev_loop *loop, struct xbd_io_engine *io,
                                const struct xbd_ring_params *p,
                                xbd_ring_fatal_fn *fatal, void *opaque);
/* Stop taking requests; when in-flight I/O has completed (every response
 * published), hand the final counters to counted(opaque) (may be NULL),
 * unmap every grant, unbind, free the ring and call drained(opaque).
 * Both may run before this returns when nothing is in flight.
 * xbd_ring_stop: the ring is gone for good, its journal is removed.
 * xbd_ring_handover: the journal is kept for a successor (which also
 * resumes from it if this process exits before the drain ends). */
void xbd_ring_stop(struct xbd_ring *r, xbd_ring_counted_fn *counted,
                   xbd_ring_drained_fn *drained, void *opaque);
void xbd_ring_handover(struct xbd_ring *r, xbd_ring_counted_fn *counted,
                       xbd_ring_drained_fn *drained, void *opaque);

/* At exit, once xbd_io_engine_stop has returned (neither the kernel nor
 * the worker pool touches a request any more): release a ring that never
 * drained (running or stopped; its callbacks are not called), answering
 * nothing more and keeping its journal, from which a successor executes
 * its unanswered requests again. */
void xbd_ring_abandon(struct xbd_ring *r);

const struct xbd_ring_stats *xbd_ring_get_stats(const struct xbd_ring *r);

#endif
