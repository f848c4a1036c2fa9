/*
 * xsim.h - internals of the simulated Xen host (shared by the replacement
 * libxengnttab.so.1 / libxenevtchn.so.1 and by libxensim_guest.a).
 *
 * Everything a process shares with other processes lives in files under
 * $XENSIM_DIR whose byte layout is documented in tests/sim/CONTRACT.md; the
 * structures below ARE that layout (little-endian x86-64, no implicit
 * padding: every field is naturally aligned and sizes are asserted).
 *
 * Every mutation of a shared table happens with flock(LOCK_EX) held on the
 * table's file, so that a process killed in the middle (even by SIGKILL)
 * releases the lock; each library copy also serialises its own threads with
 * one process-local mutex (flock does not exclude threads sharing an fd).
 */
#ifndef XSIM_H
#define XSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/event_channel.h>

#define XSIM_PAGE 4096u

/* ---- grant side: $XENSIM_DIR/dom<D>/gnttab ------------------------------ */
#define XSIM_GNT_MAGIC   0x544e4758u /* "XGNT" */
#define XSIM_GNT_VERSION 1u
#define XSIM_MAX_PROCS   64u

struct xsim_proc {          /* a process holding pins on this domain's grants */
    int32_t pid;            /* 0 = free slot */
    uint32_t nrecs;         /* maptrack records it owns */
};

enum {                      /* indexes of xsim_gnt_hdr.stats */
    XSIM_ST_MAP_CALLS, XSIM_ST_PAGES_MAPPED, XSIM_ST_PAGES_UNMAPPED,
    XSIM_ST_COPY_CALLS, XSIM_ST_COPY_SEGS, XSIM_ST_UNMAP_CALLS, XSIM_ST_NR = 8
};

struct xsim_gnt_hdr {
    uint32_t magic, version;
    uint32_t domid, nr_pages;
    uint32_t nr_grants, maptrack_size;
    uint32_t grants_off, active_off;  /* byte offsets in the file */
    uint32_t maptrack_off, pad0;
    uint64_t file_size;
    uint64_t stats[XSIM_ST_NR];
    struct xsim_proc procs[XSIM_MAX_PROCS];
};

/* Xen's active grant entry: pins and the frame fixed at first pin (a guest
 * rewriting the shared entry cannot redirect later maps of a pinned grant). */
struct xsim_active {
    uint32_t rd_pins;       /* read-only pins (maps and copies) */
    uint32_t wr_pins;       /* writable pins */
    uint32_t frame;         /* valid while rd_pins + wr_pins > 0 */
    uint32_t pad;
};

#define XSIM_MT_USED       0x01u
#define XSIM_MT_WRITABLE   0x02u
#define XSIM_MT_COPY       0x04u  /* transient pin held by a grant copy */
#define XSIM_MT_NOTIFY_BYTE 0x08u
#define XSIM_MT_NOTIFY_EVT 0x10u

/* One pin held by one process (a page of a mapping, or a copy in flight). */
struct xsim_maptrack {
    int32_t pid;
    uint32_t ref;
    uint16_t flags;
    uint16_t notify_off;    /* byte to clear on unmap, within the page */
    uint16_t notify_dom;    /* event to send on unmap: remote domain ... */
    uint16_t pad;
    uint32_t notify_port;   /* ... and remote port (resolved at set-up) */
    uint32_t pad2;
};

/* ---- faults: $XENSIM_DIR/faults ----------------------------------------- */
#define XSIM_FAULT_MAGIC 0x544c4658u /* "XFLT" */
struct xsim_faults {
    uint32_t magic, version;
    int32_t map_call_countdown;  /* >0: the Nth next map call fails whole */
    int32_t map_call_errno;      /* errno for it (0: ENOMEM) */
    int32_t map_ref_countdown;   /* >0: the Nth next grant ref mapped fails */
    int32_t map_ref_status;      /* its GNTST_* (0: GNTST_general_error) */
    int32_t copy_seg_countdown;  /* >0: the Nth next copy segment fails */
    int32_t copy_seg_status;     /* its GNTST_* (0: GNTST_general_error) */
    int32_t evt_drop_countdown;  /* >0: the Nth next notify is dropped */
    uint32_t evt_delay_us;       /* every notify: sender sleeps this long first */
    uint32_t copy_delay_us;      /* grant copy sleeps this long with pins held */
    int32_t copy_hold_countdown; /* >0: the Nth next grant copy and every later one
                                  * wait (-1: waiting) until it is set to 0 */
    int32_t evt_kill_countdown;  /* >0: the Nth next notify by a backend that wakes
                                  * the guest kills the backend halfway (the
                                  * guest's port marked delivered, not woken) */
    uint32_t pad;
    uint64_t fired;              /* number of faults injected so far */
};

/* ---- event channels: $XENSIM_DIR/evtchn/dom<D> --------------------------- */
#define XSIM_EVT_MAGIC   0x54564558u /* "XEVT" */
#define XSIM_EVT_PORTS   1024u
#define XSIM_EVT_HANDLES 256u

enum { XSIM_ECS_FREE = 0, XSIM_ECS_UNBOUND = 1, XSIM_ECS_INTERDOMAIN = 2,
       XSIM_ECS_VIRQ = 3 };

struct xsim_evt_handle {
    int32_t pid;            /* 0 = free slot */
    uint32_t serial;        /* makes the wake-up socket name unique */
    uint32_t nready;        /* ports delivered, not yet returned by pending() */
    uint32_t pad;
};

struct xsim_evt_port {
    uint8_t state;          /* XSIM_ECS_* */
    uint8_t masked;         /* delivered and not yet unmasked */
    uint8_t pending;        /* notified while masked: deliver on unmask */
    uint8_t delivered;      /* queued for pending() of the owning handle */
    uint16_t remote_dom;
    uint16_t handle;        /* owning handle slot + 1 (0: none) */
    uint32_t remote_port;   /* INTERDOMAIN: peer port; VIRQ: virq number */
    uint32_t pad;
    uint64_t seq;           /* delivery order */
};

struct xsim_evt_hdr {
    uint32_t magic, version;
    uint32_t domid, nr_ports;
    uint32_t nr_handles, next_serial;
    uint64_t next_seq;
    struct xsim_evt_handle handles[XSIM_EVT_HANDLES];
    struct xsim_evt_port ports[XSIM_EVT_PORTS];
};

/* ---- process-side helpers (xsim.c) -------------------------------------- */
/* $XENSIM_DIR, or NULL after printing why (once) and setting errno. */
const char *xsim_dir(void);
/* $XENSIM_DOMID (default 0). */
domid_t xsim_self_domid(void);
void xsim_lock_process(void);
void xsim_unlock_process(void);
int xsim_flock(int fd);
void xsim_funlock(int fd);
bool xsim_pid_dead(int32_t pid);
/* Map a shared file of at least size bytes (creating it zeroed if create). */
void *xsim_map_file(const char *path, size_t size, bool create, int *fdp);

/* A domain's grant state as seen by this process (refcounted: a mapping
 * keeps the files of a destroyed domain alive until it is unmapped; the
 * last reference closes them). */
struct xsim_gdom {
    struct xsim_gdom *next;
    unsigned refs;
    domid_t domid;
    dev_t dev;
    ino_t ino;
    int fd;                 /* gnttab file (flock target) */
    int memfd;
    size_t size;
    struct xsim_gnt_hdr *hdr;
    grant_entry_v1_t *grants;
    struct xsim_active *active;
    struct xsim_maptrack *mt;
};

/* Current incarnation of domain domid (NULL, errno ESRCH, if none);
 * the caller owns one reference. */
struct xsim_gdom *xsim_gdom_get(domid_t domid);
void xsim_gdom_put(struct xsim_gdom *g);
size_t xsim_gnt_file_size(uint32_t nr_grants, uint32_t maptrack_size,
                          uint32_t *grants_off, uint32_t *active_off,
                          uint32_t *mt_off);

/* With the gdom locked: pin ref for mapper domain `self`; returns GNTST_*.
 * On success *mt_idx is the new maptrack record and *frame the page. */
int xsim_pin(struct xsim_gdom *g, domid_t self, uint32_t ref, bool writable,
             uint16_t mtflags, uint32_t *mt_idx, uint32_t *frame);
/* With the gdom locked: drop the pin of maptrack record idx, running its
 * unmap notification (byte clear through the memory file, event). */
void xsim_unpin(struct xsim_gdom *g, uint32_t idx);
/* With the gdom locked: drop every pin of processes that no longer exist. */
void xsim_gnt_reap(struct xsim_gdom *g);

/* Faults (shared by all processes of the simulated host). */
struct xsim_faults *xsim_faults(void);
/* Consume one event of a countdown: true when it reaches zero now. */
bool xsim_fault_fire(int32_t *countdown);

/* Event channels. */
struct xsim_evt_hdr *xsim_evt_table(domid_t domid, int *fd);
/* Handle lifecycle; returns the handle's socket fd or -1. */
struct xsim_evh {
    domid_t domid;
    int sock;
    int tfd;                /* evtchn table fd of domid (flock target) */
    struct xsim_evt_hdr *t;
    uint32_t slot;          /* index in t->handles */
    uint32_t serial;
    bool restricted;
    domid_t restrict_dom;
};
int xsim_evh_open(struct xsim_evh *h, domid_t domid, bool cloexec);
void xsim_evh_close(struct xsim_evh *h);
int xsim_evh_bind_unbound(struct xsim_evh *h, domid_t remote);
int xsim_evh_bind_interdomain(struct xsim_evh *h, domid_t remote, uint32_t rport);
int xsim_evh_bind_virq(struct xsim_evh *h, uint32_t virq);
int xsim_evh_unbind(struct xsim_evh *h, uint32_t port);
int xsim_evh_notify(struct xsim_evh *h, uint32_t port);
int xsim_evh_pending(struct xsim_evh *h);
int xsim_evh_unmask(struct xsim_evh *h, uint32_t port);
int xsim_evh_is_connected(struct xsim_evh *h, uint32_t port);
/* Raise an event on (dom, port) as if its peer notified it; used for the
 * unmap notification of a process that may be gone. */
void xsim_evt_raise(domid_t dom, uint32_t port, domid_t from_dom);
/* Peer of local port (dom, port) if interdomain; -1 otherwise. */
int xsim_evt_peer(domid_t dom, uint32_t port, domid_t *rdom, uint32_t *rport);

#endif
