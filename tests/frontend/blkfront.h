/*
 * blkfront.h - a reference Xen block frontend for a simulated guest.
 *
 * Follows Linux xen-blkfront: xenbus negotiation (InitWait -> keys ->
 * Initialised -> Connected), multi-page and multi-queue rings, persistent
 * grants, indirect descriptors, the three ring ABIs.  One bf_host is one
 * simulated guest domain (memory, grant table, event channels) plus one
 * xenstore connection; it carries one or more bf_disk.
 *
 * Errors are reported on stderr with what was expected and what was seen,
 * and counted in the disk's statistics: a test only needs the exit status.
 */
#ifndef BF_BLKFRONT_H
#define BF_BLKFRONT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "blkif_abi.h"
#include "xensim_guest.h"

/* What the frontend asks for (all clamped to what the backend offers). */
enum bf_proto { BF_PROTO_NATIVE, BF_PROTO_X86_32, BF_PROTO_X86_64, BF_PROTO_NONE };

struct bf_config {
    enum bf_proto proto;      /* default x86_64-abi; NONE omits the key */
    unsigned ring_order;      /* requested ring-page-order */
    unsigned queues;          /* requested queues (>= 1) */
    bool persistent;          /* offer feature-persistent */
    bool indirect;            /* use indirect descriptors when offered */
    unsigned max_indirect;    /* segments per indirect request we accept */
    unsigned qd;              /* requests in flight per disk */
    unsigned bs_max;          /* largest request in bytes (sizes the slots) */
    unsigned timeout_ms;      /* every wait (xenstore state, responses) */
    int verbose;
};
void bf_config_default(struct bf_config *c);

/* What the backend published. */
struct bf_features {
    bool persistent;
    unsigned max_indirect;        /* 0: feature absent */
    unsigned max_ring_order;      /* from max-ring-page-order/max-ring-pages */
    unsigned max_queues;          /* 1 when absent */
    bool flush, barrier, discard, discard_secure;
    uint32_t discard_granularity, discard_alignment;
};

/* What was agreed, and the disk's geometry at Connected. */
struct bf_negotiated {
    enum bf_abi abi;
    const char *protocol;     /* value written, NULL when omitted */
    unsigned ring_order, ring_pages, ring_entries, queues;
    bool persistent;
    unsigned max_segs;        /* per request: 11, or the indirect maximum */
    bool indirect;
    uint64_t sectors;         /* 512-byte units */
    uint32_t sector_size, physical_sector_size, info;
};

#define BF_MAX_QUEUES 64u             /* queues a disk uses at most */

struct bf_stats {
    uint64_t reqs[8];            /* by BLKIF_OP_* (INDIRECT counted as its op) */
    uint64_t indirect_reqs;
    uint64_t bytes_read, bytes_written;
    uint64_t rsp_okay, rsp_error, rsp_eopnotsupp, rsp_other;
    uint64_t errors;             /* any failure: status, protocol, verify, grant */
    uint64_t protocol_errors;    /* bad id, duplicate, wrong op, overflow */
    uint64_t verify_errors;
    uint64_t end_access_failures;/* backend kept a grant mapped */
    uint64_t grants_granted;     /* xsg_grant calls made */
    uint64_t notifications;      /* event channel kicks we sent */
    uint64_t queue_notifications[BF_MAX_QUEUES];  /* the same by queue */
    uint64_t connects;
    uint64_t resizes;            /* "sectors" changed while connected */
    uint64_t workload_us;        /* time spent in workloads */
    /* Latency of the last workload's requests, submit to completion. */
    uint64_t lat_n, lat_p50_us, lat_p99_us, lat_max_us;
};

typedef struct bf_host bf_host;
typedef struct bf_disk bf_disk;
struct bf_io;

/* Completion callback: io->status holds the response status. */
typedef void bf_done_fn(struct bf_io *io);

/* One I/O.  The caller owns it (and buf) until done() runs.  Data is copied
 * into granted guest pages on submit and out of them on completion, as
 * blkfront does with persistent grants. */
struct bf_io {
    uint8_t op;               /* BLKIF_OP_READ/WRITE/WRITE_BARRIER/FLUSH_DISKCACHE/DISCARD */
    uint64_t sector;          /* 512-byte units */
    uint32_t nsect;           /* 512-byte sectors (0 for flush) */
    unsigned first_sect;      /* offset of the data in its first page, 0..7 */
    bool secure;              /* discard: BLKIF_DISCARD_SECURE */
    uint8_t *buf;             /* nsect * 512 bytes for reads and writes */
    bf_done_fn *done;
    void *ctx;
    int16_t status;           /* filled in at completion */
    bf_disk *disk;
};

/* Raw mode: a hand-built request, possibly malformed, for backend tests. */
struct bf_raw {
    struct bf_wire_req w;     /* id is overwritten unless keep_id */
    bool keep_id;
    int gref_override;        /* >= 0: put this gref in every (indirect) segment */
    unsigned data_segs;       /* segments to back with real granted pages */
    bool readonly_grants;
};

/* --- host: one simulated guest domain --------------------------------- */
bf_host *bf_host_open(domid_t domid, uint32_t nr_pages, uint32_t nr_grants);
void bf_host_close(bf_host *h);
xsg_dom *bf_host_dom(bf_host *h);
/* Pages a disk may need with this configuration (for bf_host_open). */
uint32_t bf_pages_needed(const struct bf_config *c);
/* Wait for responses on every connected disk of the host and complete
 * them.  Returns completions (>= 0), 0 on timeout, -1 on fatal error. */
int bf_host_poll(bf_host *h, int timeout_ms);
/* Set by a signal handler: every wait returns early with an error. */
extern volatile int bf_interrupted;

/* --- disk ------------------------------------------------------------- */
bf_disk *bf_disk_new(bf_host *h, unsigned vdev, const struct bf_config *c);
void bf_disk_free(bf_disk *d);
int bf_disk_connect(bf_disk *d);          /* Initialising .. Connected */
int bf_disk_close(bf_disk *d);            /* Closing, Closed, end all grants */
int bf_disk_reinit(bf_disk *d);           /* Closed -> Initialising */
/* Stay connected for up to seconds; a disk whose backend starts closing
 * (e.g. the toolstack removes it) is closed like blkfront does.  Returns
 * early once no disk is connected. */
int bf_host_hold(bf_host *h, double seconds);
/* The same, also ending as soon as the file `release` exists (NULL: never):
 * tests end a hold on an event of theirs, not after a window of time. */
int bf_host_hold_until(bf_host *h, double seconds, const char *release);
/* Queue an I/O: 0, or -1 with errno EAGAIN (no free slot: poll first),
 * EINVAL (malformed for this disk), ENOTCONN. */
int bf_submit(bf_disk *d, struct bf_io *io);
unsigned bf_inflight(const bf_disk *d);
/* Largest request (512-byte sectors) whose data starts first_sect sectors
 * into its first page. */
uint32_t bf_disk_max_sectors(const bf_disk *d, unsigned first_sect);
/* Submit a raw request and wait for its response: returns 1 and the
 * response in *rsp, 0 when none came within timeout_ms, -1 on error. */
int bf_raw_submit(bf_disk *d, const struct bf_raw *r, struct bf_wire_rsp *rsp, int timeout_ms);

const struct bf_features *bf_disk_features(const bf_disk *d);
const struct bf_negotiated *bf_disk_negotiated(const bf_disk *d);
struct bf_stats *bf_disk_stats(bf_disk *d);
unsigned bf_disk_vdev(const bf_disk *d);
bool bf_disk_connected(const bf_disk *d);
/* Count an error against the disk and print it (workloads use this). */
void bf_disk_error(bf_disk *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bf_disk_log(bf_disk *d, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Write the statistics of every disk as JSON. */
int bf_stats_json(FILE *f, bf_host *h, bf_disk **disks, unsigned n);

const char *bf_op_name(unsigned op);

/* --- workloads (workload.c) ------------------------------------------- */
enum bf_wl_kind {
    BF_WL_NONE, BF_WL_VERIFY, BF_WL_READ, BF_WL_WRITE, BF_WL_FLUSH,
    BF_WL_DISCARD, BF_WL_MIXED, BF_WL_FILL,
};
struct bf_wl_opts {
    enum bf_wl_kind kind;
    uint32_t bs;              /* largest request, bytes */
    uint64_t count;           /* requests (verify: write+read pairs) */
    uint64_t seed;
    uint64_t span;            /* bytes from the start of the disk; 0: all */
    uint32_t gen;             /* fill: generation to write */
    bool have_expect_gen;     /* read/verify: disk content known to be */
    uint32_t expect_gen;      /* this generation everywhere (0 = zeros) */
    const char *stop_file;    /* once it exists, start nothing more, drain */
};
/* What each sector of a disk should contain, kept across reconnects. */
typedef struct bf_genmap bf_genmap;
bf_genmap *bf_genmap_new(void);
void bf_genmap_free(bf_genmap *m);
int bf_wl_parse(const char *s, enum bf_wl_kind *k);
const char *bf_wl_name(enum bf_wl_kind k);
/* Run the workload on every disk at once; 0 when all completed with every
 * response OK and every read verified. */
int bf_workload_run(bf_host *h, bf_disk **disks, bf_genmap **maps, unsigned n, const struct bf_wl_opts *o);

/* --- load generator (bench.c): no verification, data untouched ------- */
enum bf_bench_kind { BF_BENCH_RANDREAD, BF_BENCH_RANDWRITE, BF_BENCH_READ, BF_BENCH_WRITE };
struct bf_bench_opts {
    enum bf_bench_kind kind;  /* fio's rw= names: randread, randwrite, read, write */
    uint32_t bs;              /* every request, bytes */
    double seconds;           /* timed phase; then in-flight requests drain */
    uint64_t count;           /* stop issuing after this many requests (0: no limit) */
    uint64_t seed, span;      /* span: bytes from the start (0: all) */
    bool touch;               /* fill/copy out the data like a real guest */
    const char *start_file;   /* wait for it to exist before starting */
    const char *stop_file;    /* once it exists, end the timed phase (seconds
                                 is then only an upper bound) */
    const char *json;         /* result (one JSON object); NULL: stdout */
};
int bf_bench_parse(const char *s, enum bf_bench_kind *k);
/* Run on every disk at once for o->seconds; 0 when every response was OK. */
int bf_bench_run(bf_host *h, bf_disk **disks, unsigned n, const struct bf_bench_opts *o);

/* Deterministic content of a 512-byte sector at a generation (0 = zeros). */
void bf_pattern_fill(uint8_t *buf, uint64_t sector, uint32_t gen);
/* 0 if buf holds (sector, gen); else -1 and a description of what it holds. */
int bf_pattern_check(const uint8_t *buf, uint64_t sector, uint32_t gen, char *why, size_t len);

#endif
