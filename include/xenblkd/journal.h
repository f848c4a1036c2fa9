/*
 * journal.h - the per-ring journal that lets a new xenblkd instance take a
 * ring over from a dead or stopped one without losing a request or
 * answering one twice.
 *
 * Why the ring alone cannot tell: the backend's consumer index (req_cons)
 * is private, and responses are produced as I/O completes, out of order,
 * each written over the oldest request slot.  After a crash, rsp_prod says
 * how many responses were published, not which requests they answered: a
 * request still in flight may have had its slot overwritten by a later
 * response, and requests after rsp_prod may already have been answered.
 *
 * The journal is a file <state-dir>/rings/<kind>-<domid>-<devid>-q<queue>,
 * mapped MAP_SHARED: every store the daemon executed is in the page cache
 * of the tmpfs when the process dies, whatever it dies of.  (It does not
 * survive a reboot and need not: the guests do not either.)  No system
 * call and no msync on the hot path; compiler barriers order the stores,
 * and the journal is consistent at every instruction boundary.
 *
 * Layout (version 1, native byte order, all fields naturally aligned):
 *   offset 0: struct xbd_journal_hdr (XBD_JOURNAL_HDR_SIZE bytes reserved)
 *   offset XBD_JOURNAL_HDR_SIZE: struct xbd_journal_rec[nr_ents], one per
 *   request slot of the daemon (the ring's size).
 * A journal is created under a temporary name and renamed into place once
 * its header is complete, so a file with the final name always has one.
 *
 * Protocol.  C = hdr.req_cons (requests consumed), J = hdr.rsp_prod
 * (responses written into the ring).  Indexes are RING_IDX (u32) and
 * compared wrap-aware (as differences).
 *   Consume request C into daemon slot s:
 *     rec[s].req = the ring entry, copied once (this is the single fetch
 *     from guest memory: the daemon parses the copy); rec[s].rsp = 0;
 *     rec[s].req_idx = C; rec[s].state = INFLIGHT; barrier;
 *     hdr.req_cons = C + 1          <- commit point; then execute.
 *   Answer the request of slot s:
 *     write the response into ring entry J; rec[s].rsp = VALID | J (one
 *     aligned 64-bit store); barrier;
 *     hdr.rsp_prod = J + 1          <- commit point;
 *     barrier; rec[s].state = FREE; then publish rsp_prod and notify.
 * Recovery (a ring attached with a journal of the same identity):
 *   - a record with req_idx == C is uncommitted: its request is still in
 *     the ring (no response can have reached slot C) and is consumed again;
 *   - an INFLIGHT record whose rsp is VALID with index before J was
 *     answered; every other committed INFLIGHT record was not, and is
 *     executed again (reads, writes, flushes, discards are idempotent; the
 *     guest has not been told, so its pages are still its request's);
 *     there must be exactly C - J of them, with distinct indexes before
 *     C (of any age: one slow request may stay in flight while many later
 *     ones are answered), else the journal is refused;
 *   - responses [rsp_prod, J) were written but not published: rsp_prod is
 *     set to J and the frontend notified (those slots belong to the
 *     backend until published, so nothing of the guest's is overwritten);
 *   - the unanswered requests run again in req_idx order (a barrier stays
 *     a barrier: nothing after it was consumed), then the ring carries on
 *     from C.
 * A ring with requests outstanding (req_prod != rsp_prod) and no journal
 * is refused (cannot know which were answered); a ring without requests
 * outstanding starts a new journal.
 */
#ifndef XENBLKD_JOURNAL_H
#define XENBLKD_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xenblkd/dataplane.h"

#define XBD_JOURNAL_MAGIC    0x4a444258u    /* "XBDJ" */
#define XBD_JOURNAL_VERSION  1u
#define XBD_JOURNAL_HDR_SIZE 4096u
#define XBD_JOURNAL_REQ_MAX  112u           /* largest ring entry of the three ABIs */
#define XBD_JOURNAL_SUBDIR   "rings"

#define XBD_JREC_FREE        0u
#define XBD_JREC_INFLIGHT    1u
#define XBD_JRSP_VALID       (1ull << 63)
/* A flush of the disk failed on a store without O_DIRECT: flushes fail
 * from then on (struct xbd_wb_state, dataplane.h).  Set by a ring on its
 * own journal before it answers that flush; any queue's journal carrying
 * it sets it for the whole disk when the rings are resumed. */
#define XBD_JFLAG_WB_LOST    1u

struct xbd_journal_hdr {
    uint32_t magic;
    uint32_t version;
    uint32_t hdr_size;          /* XBD_JOURNAL_HDR_SIZE */
    uint32_t rec_size;          /* sizeof(struct xbd_journal_rec) */
    uint32_t nr_ents;
    /* Identity of the ring: a journal of another ring is stale. */
    uint32_t domid;
    uint32_t queue;
    uint32_t protocol;          /* enum xbd_protocol */
    uint32_t nr_pages;
    uint32_t remote_port;
    uint32_t ring_refs[XBD_MAX_RING_PAGES];
    /* The two commit points. */
    uint32_t req_cons;          /* C */
    uint32_t rsp_prod;          /* J */
    /* XBD_JFLAG_*: the disk's state that must outlive the process.  Zero
     * in a journal of an older xenblkd (the header's reserved bytes). */
    uint32_t flags;
};

struct xbd_journal_rec {
    uint32_t state;             /* XBD_JREC_* */
    uint32_t req_idx;           /* ring index it was consumed at */
    uint64_t rsp;               /* XBD_JRSP_VALID | response index, or 0 */
    uint8_t req[XBD_JOURNAL_REQ_MAX];
};

/* Identity of a ring, checked against a journal found at start. */
struct xbd_journal_id {
    uint32_t domid, queue, protocol, nr_pages, remote_port;
    uint32_t ring_refs[XBD_MAX_RING_PAGES];
};

struct xbd_journal;

/* <dir>/rings/<kind>-<domid>-<devid>-q<queue> into buf; -1 if too long. */
int xbd_journal_path(char *buf, size_t n, const char *dir, const char *kind,
                     unsigned domid, unsigned devid, unsigned queue);

/*
 * Open the journal of a ring of nr_ents slots.  path NULL: anonymous
 * memory (nothing survives the process).  With reuse, a journal already
 * at path with the same identity is kept (*found = true) for
 * xbd_journal_recover(); otherwise (or with another identity) a new one
 * replaces it, with C = J = start.  NULL with a reason in err on failure;
 * a file in another format (magic, version, sizes) is never replaced:
 * errno EPROTO.
 */
struct xbd_journal *xbd_journal_open(const char *path, const struct xbd_journal_id *id,
                                     unsigned nr_ents, bool reuse, uint32_t start,
                                     bool *found, char *err, size_t errlen);
/* Unmap and close; with remove, unlink the file too (the ring is gone for
 * good).  NULL is allowed. */
void xbd_journal_close(struct xbd_journal *j, bool remove);

uint32_t xbd_journal_req_cons(const struct xbd_journal *j);
uint32_t xbd_journal_rsp_prod(const struct xbd_journal *j);
uint32_t xbd_journal_flags(const struct xbd_journal *j);
/* Set <flags> in the header (stored before it returns; survives a death). */
void xbd_journal_set_flags(struct xbd_journal *j, uint32_t flags);
struct xbd_journal_rec *xbd_journal_rec(struct xbd_journal *j, unsigned slot);

/* The two hot-path steps of the protocol above.  take() returns the
 * private copy of the request (rec[slot].req). */
const void *xbd_journal_take(struct xbd_journal *j, unsigned slot, uint32_t idx,
                             const void *entry, size_t size);
void xbd_journal_answered(struct xbd_journal *j, unsigned slot, uint32_t rsp_idx);

/*
 * Recovery: check the journal against the ring's rsp_prod and req_prod,
 * free the records that need nothing, and list in redo[] (nr_ents
 * entries of room) the slots to execute again, oldest first.  Returns
 * their number, or -1 with the reason in why.
 */
int xbd_journal_recover(struct xbd_journal *j, uint32_t rsp_prod, uint32_t req_prod,
                        unsigned *redo, char *why, size_t n);

/* Start-up: every journal in <dir>/rings must be in our format; -1 with
 * "FILE: reason" in err otherwise.  Left-over temporary files are
 * removed. */
int xbd_journal_check_dir(const char *dir, char *err, size_t n);
/* Remove the journals of every queue of one device. */
void xbd_journal_remove_device(const char *dir, const char *kind, unsigned domid,
                               unsigned devid);
/* Remove the journals whose device keep() says no longer exists.  keep
 * answers as xbd_xs_exists: 1 the device exists, 0 it does not (its
 * journals are removed), -1 with errno: it could not say, and the
 * journals stay (a warning says so): losing them would refuse the resume
 * of rings with requests outstanding. */
typedef int xbd_journal_keep_fn(void *opaque, const char *kind, unsigned domid,
                                unsigned devid);
void xbd_journal_sweep(const char *dir, xbd_journal_keep_fn *keep, void *opaque);

#endif
