/*
 * bf_internal.h - state shared by the frontend library's files.
 * Ownership: bf_host owns the domain, the xenstore handle and the list of
 * disks; a bf_disk owns its queues; a bf_queue owns its ring pages, event
 * channel and request slots; a slot owns its data and indirect pages.
 */
#ifndef BF_INTERNAL_H
#define BF_INTERNAL_H

#include <xenstore.h>

#include "blkfront.h"

#define BF_MAX_RING_ORDER 6u               /* 64 pages: beyond any backend */
#define BF_MAX_RING_PAGES (1u << BF_MAX_RING_ORDER)
#define BF_MAX_DISKS      16u
#define BF_MAX_INDIRECT   (BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * BF_SEGS_PER_INDIRECT_PAGE)

/* A request slot: one in-flight request and the guest pages it uses. */
struct bf_slot {
    unsigned idx;
    bool busy;
    uint32_t seq;                 /* bumped per use: stale ids are caught */
    uint8_t expect_op;            /* operation the response must carry */
    struct bf_io *io;             /* NULL for a raw request */
    bool raw_done;
    struct bf_wire_rsp raw_rsp;
    uint32_t *gfn;                /* data pages, slot_pages of them */
    grant_ref_t *pgref;           /* persistent grants of gfn[], or 0 */
    uint32_t ind_gfn[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
    grant_ref_t ind_pgref[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
    /* Grants made for this request only (non-persistent): ended at
     * completion. */
    grant_ref_t *req_gref;
    unsigned nreq_gref;
};

struct bf_queue {
    bf_disk *d;
    unsigned idx;
    union {
        blkif_front_ring_t native;
        blkif_x86_32_front_ring_t x32;
        blkif_x86_64_front_ring_t x64;
    } r;
    void *sring;
    unsigned nring;
    uint32_t ring_gfn[BF_MAX_RING_PAGES];
    grant_ref_t ring_gref[BF_MAX_RING_PAGES];
    evtchn_port_t port;
    bool port_open;
    struct bf_slot *slots;
    unsigned nslots;
    unsigned *freelist;
    unsigned nfree;
    bool need_push;
    /* The last push, for stall reports: indices and whether we kicked. */
    RING_IDX last_push_old, last_push_new, last_push_req_event;
    bool last_push_notified;
    uint64_t kicks;
    bool dead;                    /* protocol error: stop using this ring */
};

struct bf_disk {
    bf_host *h;
    unsigned vdev;
    struct bf_config cfg;
    char fe_path[128];
    char be_path[256];
    domid_t be_id;
    char watch_token[32];
    bool watching;
    struct bf_features feat;
    struct bf_negotiated neg;
    struct bf_stats st;
    struct bf_queue *q;
    unsigned nq;
    unsigned next_q;
    unsigned slot_pages;          /* data pages per slot */
    unsigned inflight;
    bool connected;
    bool closed_by_backend;
    /* Grants the backend refused to release: retried at close. */
    grant_ref_t *leaked;
    unsigned nleaked, leaked_cap;
};

struct bf_host {
    xsg_dom *dom;
    struct xs_handle *xs;
    domid_t domid;
    bf_disk *disks[BF_MAX_DISKS];
    unsigned ndisks;
};

/* xenbus.c */
int bf_xs_read_state(bf_host *h, const char *dir);
int bf_xs_write_state(bf_disk *d, int state);
char *bf_xs_read(bf_host *h, const char *dir, const char *key);
int bf_xs_read_uint(bf_disk *d, const char *dir, const char *key, uint64_t dflt, uint64_t *out, bool *present);
int bf_xs_wait_backend(bf_disk *d, unsigned accept_mask, unsigned fail_mask, const char *what);
void bf_xs_drain_watches(bf_host *h);
const char *bf_state_name(int s);

/* ring.c */
int bf_queues_setup(bf_disk *d);
int bf_queues_slots(bf_disk *d);
void bf_queues_teardown(bf_disk *d, bool check_grants);
void bf_queues_push(bf_disk *d);
struct bf_queue *bf_queue_by_port(bf_host *h, evtchn_port_t port);
int bf_queue_process(struct bf_queue *q);

uint64_t bf_now_ms(void);

#endif
