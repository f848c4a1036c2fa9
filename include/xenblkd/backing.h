/*
 * backing.h - the store behind a virtual disk: a regular file or a block
 * device, opened by the control plane and read by the data plane through
 * struct xbd_backing (dataplane.h).
 */
#ifndef XENBLKD_BACKING_H
#define XENBLKD_BACKING_H

#include <stdbool.h>
#include <stddef.h>

#include "xenblkd/dataplane.h"

/* Split a toolstack "params" value into the path to open.  Accepted:
 * "/path", "aio:/path", "file:/path", "phy:/dev/..." (and "raw:/path").
 * Image formats we do not serve (vhd:, qcow2:, ...) and anything that is
 * not an absolute path are refused with a message in err.  Returns a
 * pointer into params, or NULL. */
const char *xbd_params_path(const char *params, char *err, size_t errlen);

/* "MAJ:MIN" in hex (a hotplug script's physical-device) to the /dev path
 * of that block device, from sysfs; malloc'd, or NULL. */
char *xbd_blockdev_path(const char *majmin);

struct xbd_backing_opts {
    bool readonly;
    bool direct;          /* O_DIRECT wanted (--no-direct-io turns it off) */
    bool direct_io_safe;  /* toolstack's "direct-io-safe" key */
    bool discard;         /* toolstack's "discard-enable" key (default on) */
    bool dsync;           /* O_DSYNC: a write is durable once done, no flush
                             is needed (xbd_backing_keep_terms) */
};

/* Open path and fill b (fd, size, sector sizes, discard support...).  On
 * failure returns -1, leaves nothing open and puts the reason in err. */
int xbd_backing_open(struct xbd_backing *b, const char *path,
                     const struct xbd_backing_opts *o, char *err, size_t errlen);
/* What a frontend was told when it connected: blkfront reads sector-size
 * and feature-flush-cache only then, never while connected. */
struct xbd_backing_terms {
    unsigned sector_size;  /* 512 or 4096; 0: not known */
    int flush;             /* feature-flush-cache: 0 or 1; -1: not known */
};

/* Make b, just opened with *o, keep the terms t a connected frontend was
 * given.  0: it keeps them, b possibly adjusted without reopening (a larger
 * sector size served, a flush offered where nothing needs one); why says
 * what changed ("" if nothing).  1: it keeps them only opened again with
 * *o, now changed (why says how and why).  -1: no way of opening keeps
 * them (why says why). */
int xbd_backing_keep_terms(struct xbd_backing *b, const struct xbd_backing_terms *t,
                           struct xbd_backing_opts *o, char *why, size_t n);
/* Close the fd (idempotent: fd is -1 afterwards). */
void xbd_backing_close(struct xbd_backing *b);

/* A store of bytes as a disk of sector_size-byte logical blocks, in
 * 512-byte sectors (blkif.h's unit for "sectors"): whole blocks only, as
 * Linux blkback's capacity.  The guest addresses every block inside the
 * capacity it is told, a partial last one included, and the rings refuse
 * (O_DIRECT cannot even read) what ends past the store: the remainder is
 * not offered. */
uint64_t xbd_backing_whole_blocks(uint64_t bytes, uint32_t sector_size);
/* The store's current size in 512-byte sectors, whole logical blocks of
 * b->sector_size (it may have been grown or shrunk since open).  -1 with
 * errno on failure. */
int xbd_backing_size(const struct xbd_backing *b, uint64_t *sectors);

/* What to publish as discard-granularity and discard-alignment (bytes),
 * as Linux blkback: a block device's own limits, a partition's taken from
 * its disk's queue; safe defaults where sysfs cannot tell. */
void xbd_backing_discard_limits(const struct xbd_backing *b, unsigned *granularity,
                                unsigned *alignment);

#endif
