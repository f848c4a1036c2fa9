/*
 * budget.h - what one disk may take from dom0, and what the whole host
 * keeps in reserve (man xenblkd.conf, [disks]: disk-memory,
 * disk-grant-mappings, disk-fds).
 *
 * A frontend chooses its number of queues, its ring order, indirect
 * segments and persistent grants; each multiplies what the daemon
 * allocates for it.  The administrator chooses how many disks a guest
 * has.  So budgets are per disk, split evenly over its queues when they
 * connect (no cross-ring accounting in the data path), and what a queue
 * cannot have is degraded, never refused:
 * - memory: fewer request slots (requests wait in the shared ring) and
 *   fewer bounce pages in flight (the ring stops reading until some
 *   complete);
 * - persistent-grant mappings: past its share, or when the host-wide
 *   reserve below vm.max_map_count is used up, or when a map fails, a
 *   page goes by grant copy instead (the request still succeeds);
 * - file descriptors: the disk is offered no more queues than its fds
 *   allow (2 per queue, 1 for the backing store).
 */
#ifndef XENBLKD_BUDGET_H
#define XENBLKD_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Defaults of the [disks] keys. */
#define XBD_DEFAULT_DISK_MEMORY_MIB     64u
#define XBD_DEFAULT_DISK_GRANT_MAPPINGS 8192u
#define XBD_FDS_PER_QUEUE               2u   /* gntdev + evtchn handles */
#define XBD_DEFAULT_DISK_FDS            (1u + XBD_FDS_PER_QUEUE * 64u)
/* Whatever the budget, a queue gets this many request slots (or its
 * whole ring if smaller) and one largest request's bounce pages, so that
 * every connected queue makes progress. */
#define XBD_MIN_SLOTS                   32u
/* File descriptors kept free for the control socket, new backing stores
 * and libraries: a connect that would eat into them is refused. */
#define XBD_FD_RESERVE                  64u

/* Host-wide persistent-grant mappings.  Each is one VMA of the process;
 * past vm.max_map_count every mmap fails (ring maps, malloc's large
 * blocks, journals) for every guest, so persistent grants may use at most
 * half of it. */
struct xbd_map_reserve {
    uint64_t max_map_count;     /* the kernel's limit, read at start */
    uint64_t limit;             /* mappings persistent grants may hold */
    uint64_t used;
};

/* Read /proc/sys/vm/max_map_count (65530 if unreadable). */
void xbd_map_reserve_init(struct xbd_map_reserve *m);

static inline bool xbd_map_reserve_take(struct xbd_map_reserve *m)
{
    if (!m)
        return true;
    if (m->used >= m->limit)
        return false;
    m->used++;
    return true;
}

static inline void xbd_map_reserve_give(struct xbd_map_reserve *m)
{
    if (m && m->used)
        m->used--;
}

/* How one queue spends its share of the disk's memory budget. */
struct xbd_ring_plan {
    unsigned slots;             /* request slots (<= nr_ents) */
    unsigned bounce_max;        /* bounce pages held by requests at once */
    unsigned pool_keep;         /* idle bounce pages kept */
};

/* mem: the queue's share in bytes (0: no budget, the built-in maxima);
 * fixed: what the queue allocates whatever its plan; per_slot: bytes of
 * one slot with seg_cap segments.  Requests then hold at most bounce_max
 * pages, idle ones included (a request is taken only when one largest
 * more fits, or when none holds any). */
void xbd_ring_plan(size_t mem, size_t fixed, unsigned nr_ents, unsigned seg_cap,
                   size_t per_slot, unsigned bounce_max_default, unsigned pool_keep_default,
                   struct xbd_ring_plan *p);

/* Queues a disk may be offered with fds file descriptors (at least 1). */
unsigned xbd_budget_queues_for_fds(unsigned fds);

/* May the process open n more file descriptors and still keep
 * XBD_FD_RESERVE free under its soft limit?  *open_now gets the count. */
bool xbd_fds_available(unsigned n, unsigned long *open_now, unsigned long *limit);

#endif
