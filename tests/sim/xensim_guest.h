/*
 * xensim_guest.h - the guest side of the simulated Xen host.
 *
 * A test frontend is a simulated guest domain: it owns the domain's memory
 * and grant table (files under $XENSIM_DIR/dom<domid>/), grants pages to a
 * backend domain, and uses interdomain event channels.  The backend side of
 * the same simulation is the replacement libxengnttab.so.1 /
 * libxenevtchn.so.1, used unchanged through Xen's own API by the daemon
 * and by QEMU.  See tests/sim/CONTRACT.md for the on-disk layout.
 *
 * All functions return 0 (or a non-negative value) on success and -1 with
 * errno set on failure unless stated otherwise.  A process may open several
 * domains.  Nothing here is thread-safe per domain handle.
 */
#ifndef XENSIM_GUEST_H
#define XENSIM_GUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/event_channel.h>

#define XSG_PAGE_SIZE 4096u

typedef struct xsg_dom xsg_dom;

/* Create simulated domain <domid> with nr_pages of memory and nr_grants
 * grant-table entries (v1).  $XENSIM_DIR must be set.  Fails with EEXIST if
 * the domain exists. */
xsg_dom *xsg_dom_create(domid_t domid, uint32_t nr_pages, uint32_t nr_grants);

/* Destroy the domain: closes its event channels (the remote end sees the
 * port closed), removes its files.  Grants still mapped by a backend stay
 * valid for that backend until it unmaps them (as with a dying domain). */
int xsg_dom_destroy(xsg_dom *d);

domid_t xsg_dom_id(const xsg_dom *d);

/* Guest memory.  gfn == pfn in the simulation.  xsg_page() returns the
 * guest's own writable view of the page. */
void *xsg_page(xsg_dom *d, uint32_t gfn);
int xsg_page_alloc(xsg_dom *d, uint32_t *gfn);
void xsg_page_free(xsg_dom *d, uint32_t gfn);

/* Grant table.  xsg_grant() picks a free ref (never 0..7, reserved as in
 * Linux) and writes a v1 entry permitting <to> access to <gfn>. */
int xsg_grant(xsg_dom *d, domid_t to, uint32_t gfn, bool readonly, grant_ref_t *ref);
/* End foreign access: fails with EBUSY (and leaves the entry) while the
 * backend still has the grant mapped or is copying (GTF_reading/GTF_writing
 * set), as Linux's gnttab_end_foreign_access_ref() does. */
int xsg_end_access(xsg_dom *d, grant_ref_t ref);
/* 1 if GTF_reading or GTF_writing is set on ref, 0 if not. */
int xsg_grant_in_use(xsg_dom *d, grant_ref_t ref);
/* Number of this domain's grants currently marked in use by any mapper. */
int xsg_grants_in_use(xsg_dom *d);

/* Counters of backend operations on this domain's grants, kept by the
 * simulation (shared across processes). */
struct xsg_grant_stats {
    uint64_t map_calls;     /* xengnttab_map_* calls that touched this domain */
    uint64_t pages_mapped;  /* grant pages mapped */
    uint64_t pages_unmapped;
    uint64_t copy_calls;    /* xengnttab_grant_copy calls */
    uint64_t copy_segs;     /* segments copied to or from this domain */
    uint64_t unmap_calls;   /* xengnttab_unmap calls that released pages of it */
};
int xsg_grant_stats(xsg_dom *d, struct xsg_grant_stats *st);

/* Event channels (guest side).  One pollable fd per domain handle serves
 * all of its ports; semantics match libxenevtchn: pending() returns a port
 * and masks it, notifications to a masked port coalesce and are delivered
 * once after unmask(). */
int xsg_evtchn_alloc_unbound(xsg_dom *d, domid_t remote, evtchn_port_t *port);
int xsg_evtchn_fd(xsg_dom *d);
int xsg_evtchn_notify(xsg_dom *d, evtchn_port_t port);
/* Returns a pending port, or -1 with errno EAGAIN when none is pending. */
int xsg_evtchn_pending(xsg_dom *d);
int xsg_evtchn_unmask(xsg_dom *d, evtchn_port_t port);
int xsg_evtchn_close(xsg_dom *d, evtchn_port_t port);
/* 1 if the remote end of port is bound (backend called bind_interdomain). */
int xsg_evtchn_is_connected(xsg_dom *d, evtchn_port_t port);

/* ---- extensions (sim engineer) ------------------------------------------ */

/* A hostile guest rewriting its grant entry: clears GTF_permit_access (and
 * the rest of the guest-owned flags) even while the grant is mapped.
 * Existing mappings stay valid (Xen keeps the pinned frame); further maps
 * and copies fail; GTF_reading/GTF_writing stay until the last unmap. */
int xsg_grant_revoke(xsg_dom *d, grant_ref_t ref);

/* Fault injection for the whole simulated host ($XENSIM_DIR/faults, shared
 * by every process).  spec is "key=value[,key=value...]" or "clear".  Keys
 * (countdowns count calls from now on, across all processes, and fire once
 * when they reach zero):
 *   map_call=N        the Nth next xengnttab_map_* call fails whole
 *   map_call_errno=E  its errno (default ENOMEM)
 *   map_ref=N         the Nth next grant ref to map fails (the call fails
 *                     with EINVAL, pages already mapped are undone)
 *   map_ref_status=S  the GNTST_* reported for it (default general_error)
 *   copy_seg=N        the Nth next grant-copy segment fails ...
 *   copy_seg_status=S ... with this GNTST_* (default general_error)
 *   evt_drop=N        the Nth next event notification is lost
 *   evt_delay_us=U    every notify sleeps U us before delivering
 *   copy_delay_us=U   every grant copy sleeps U us with its pins held
 *   copy_hold=N       the Nth next grant copy and every later one wait,
 *                     before they start, until copy_hold=0 or clear
 * Returns 0, or -1 with errno EINVAL on a bad key or value. */
int xsg_fault_set(const char *spec);
/* Number of faults injected so far. */
uint64_t xsg_fault_fired(void);

#endif
