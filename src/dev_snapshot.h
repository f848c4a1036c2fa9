/*
 * dev_snapshot.h - what one device evaluation reads from xenstore, read
 * in one go by the xenstore thread (xs_worker.h) and looked up by the
 * state machine on the loop.
 *
 * An evaluation (device.c) reads its backend directory's keys, the
 * frontend's state and, when it may connect, the frontend's ring keys.
 * The xenstore thread reads all of them into a snapshot before the
 * evaluation runs, so that the evaluation itself makes no round trip:
 *  - the backend directory is listed, and each key of XBD_SNAP_BE_KEYS
 *    that is there is read;
 *  - <frontend>/state is read;
 *  - if asked (XBD_SNAP_CONNECT) and the frontend says Initialised,
 *    Connected or Closing (a restart may resume its rings: device.c),
 *    the frontend's keys are read by running the connect's own parser
 *    (xbd_fe_parse) with the largest limits the daemon can offer,
 *    recording every key it reads: the evaluation's parse, with the
 *    device's limits (never larger), then reads a subset of them.
 * A device that is connected (rings running) asks for less
 * (XBD_SNAP_CONNECTED): whether its backend directory exists, its
 * "online" key and the frontend's state, all its evaluation can read
 * (it can only stay connected or close, and closing reads nothing).
 * A key the evaluation looks up that the snapshot did not read is a bug:
 * it is logged and answered as absent.
 */
#ifndef XENBLKD_DEV_SNAPSHOT_H
#define XENBLKD_DEV_SNAPSHOT_H

#include <stdbool.h>

#include "xenstore_parse.h"
#include "xs_worker.h"

struct xbd_snap_kv {
    char *path;                 /* full xenstore path */
    char *value;                /* NULL: absent */
};

enum xbd_snap_kind {
    XBD_SNAP_FULL,              /* backend keys and frontend state */
    XBD_SNAP_CONNECT,           /* those and the frontend's ring keys */
    XBD_SNAP_CONNECTED,         /* directory exists, online, frontend state */
};

struct xbd_dev_snap {
    struct xbd_xs_job job;      /* first: the worker's handle on it */
    struct xbd_xenbus *xb;
    void *owner;                /* loop only: who applies it, NULL once gone */
    enum xbd_snap_kind kind;
    bool want_fe, connected;
    /* What the device offers its frontend: the frontend keys read are
     * those its parse with these limits asks for, and the evaluation
     * parses with the same ones (a guest writing 64 queues' ring keys
     * while offered 2 costs 2 queues' reads, not 64). */
    struct xbd_fe_limits lim;
    /* Results (written by the xenstore thread, read once done). */
    int err;                    /* 0, or why a read failed (not ENOENT) */
    bool be_exists;
    struct xbd_snap_kv *kv;
    unsigned n, cap;
    char *be, *fe;              /* copies of the directories */
};

/* A snapshot of be and fe (what kind says) to be read by the xenstore
 * thread; done runs on the loop.  NULL when out of memory. */
struct xbd_dev_snap *xbd_dev_snap_new(struct xbd_xenbus *xb, const char *be, const char *fe,
                                      enum xbd_snap_kind kind, const struct xbd_fe_limits *lim,
                                      xbd_xs_done_fn *done, void *owner);
void xbd_dev_snap_free(struct xbd_dev_snap *s);

/* dir/key's value as a malloc'd string, or NULL with errno ENOENT
 * (absent, or never read: logged) or ENOMEM. */
char *xbd_snap_read(const struct xbd_dev_snap *s, const char *dir, const char *key);
/* As xbd_xs_read_uint: 0, or -1 with errno ENOENT / EINVAL. */
int xbd_snap_read_uint(const struct xbd_dev_snap *s, const char *dir, const char *key,
                       unsigned long max, unsigned long *out);

#endif
