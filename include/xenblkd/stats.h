/*
 * stats.h - per-disk counters in the shared-memory format xentop reads
 * for vbd3 disks (Xen >= 4.19 libxenstat, as tapdisk3 writes them):
 * /dev/shm/td3-<pid>/vbd-<domid>-<devid>, found through the backend key
 * kthread-pid = <pid>.
 */
#ifndef XENBLKD_STATS_H
#define XENBLKD_STATS_H

#include <stdint.h>

/* The sums published; filled by the device from its rings' counters. */
struct xbd_disk_stats {
    uint64_t oo_reqs;
    uint64_t rd_req, rd_sect;
    uint64_t wr_req, wr_sect;
    uint64_t io_errors;
};

struct xbd_shm_stats;

/* Create (or reuse) the file for this disk of this process and map it.
 * NULL + log line on failure (the disk then just is not in xentop). */
struct xbd_shm_stats *xbd_shm_stats_open(unsigned domid, unsigned devid);
void xbd_shm_stats_update(struct xbd_shm_stats *s, const struct xbd_disk_stats *d);
/* Unmap and remove the file, and the directory once it is empty.  NULL ok. */
void xbd_shm_stats_close(struct xbd_shm_stats *s);

#endif
