/*
 * control.h - the control socket: a Unix stream socket on the daemon's
 * event loop that answers questions (ping, version, list, stats) and takes
 * orders (reload, shutdown) in a line-based JSON protocol.
 *
 * Protocol, version 1 (also in xenblkd(8), CONTROL SOCKET)
 * ---------------------------------------------------------
 * One JSON object per line each way, UTF-8, a request line at most
 * XBD_CTL_MAX_LINE bytes (without its "\n").  Requests are answered in
 * order, one reply line each.
 *
 *   request: {"version":1,"command":"<name>", <arguments>}
 *   success: {"ok":true, <results>}
 *   failure: {"ok":false,"error":"<text for people>","code":"<code>"}
 *
 * Codes: bad_json (not one JSON value), bad_request (not an object, a
 * missing or mistyped "version"/"command", an unknown or invalid
 * argument), unsupported_version ("version" is a number other than 1),
 * unknown_command, too_long (line over the limit: the connection is then
 * closed), permission_denied (reload and shutdown need uid 0),
 * not_found (stats filter matched no device), stopping (a shutdown of
 * the other kind than the stop under way: "already stopping: handover" or
 * "already stopping: closing"), failed (the command could not be carried
 * out, or the daemon serves too many clients).
 *
 * Commands (arguments other than those listed are refused, bad_request):
 *   ping                      -> {"ok":true}
 *   version                   -> {"ok":true,"daemon":"xenblkd",
 *                                 "version":"<PACKAGE_VERSION>","protocol":1}
 *   list                      -> {"ok":true,"devices":[<device>...]}
 *   stats [domid:N] [devid:N] -> {"ok":true,"daemon":<daemon>,
 *                                 "devices":[<device>+"rings"...]}
 *   reload           (root)   -> {"ok":true} | failed with the reason
 *   shutdown [close:bool] (root) -> {"ok":true}, then the daemon stops:
 *                                 close:true closes every device for good,
 *                                 otherwise as SIGTERM (restart handover);
 *                                 while it stops: {"ok":true} (nothing
 *                                 changes) if it stops that way already,
 *                                 else the code stopping
 *   settle [timeout_ms:N]     -> {"ok":true,"waited_ms":N,"rounds":N} once
 *                                 the daemon has acted on every xenstore
 *                                 write made before the request (src/settle.h);
 *                                 past timeout_ms (1..XBD_CTL_SETTLE_MAX_MS,
 *                                 default XBD_CTL_SETTLE_DEFAULT_MS) failed:
 *                                 "not settled after N ms: K device(s) busy:
 *                                 dom D kind/devid (what), ..."
 *
 * Devices are sorted by domid, devid, kind.
 *
 * <daemon>: "version" (string), "pid", "uptime_s" (number, 3 decimals),
 *   "devices", "rings" (running), "rss_bytes" (from /proc/self/statm),
 *   "fds_open" (entries of /proc/self/fd), "fd_limit": {"soft","hard"}
 *   (RLIMIT_NOFILE; null = unlimited).  stats adds "grant_mappings":
 *   {"limit" (persistent-grant mappings over every disk: half of
 *   max_map_count), "used", "max_map_count" (vm.max_map_count at start)},
 *   "evaluations": {"done", "deferred" (loop turns that left some for the
 *   next), "delayed" (waited for their device's rate)} (src/eval_queue.h),
 *   "loop": {"iterations", "busy_max_us", "busy": histogram as "latency"
 *   below, of how long each loop iteration kept the loop from polling}
 *   (src/loop_stats.h), "log": {"suppressed"} (lines dropped by the log
 *   rate limit, src/log_limit.h), "unmaps": {"rings_pending" (stopped
 *   rings whose grant unmaps are not done), "mappings_pending" (gntdev
 *   mappings handed to the unmap thread and not yet unmapped, purges'
 *   included)} (src/unmap_worker.h).
 *
 * <device>: "domid", "devid", "kind" ("vbd3","qdisk","vbd"), "backend",
 *   "frontend" (xenstore directories), "backing": {"path" (string or
 *   null), "type" ("file","block" or null while not open), "open" (bool)},
 *   "size_bytes", "sectors" (512-byte units), "sector_size",
 *   "physical_sector_size" (0 while not open), "state" (XenbusState name:
 *   "Unknown","Initialising","InitWait","Initialised","Connected",
 *   "Closing","Closed","Reconfiguring","Reconfigured"), "state_number",
 *   "readonly", "discard", "connected", and what was negotiated (null while
 *   not connected): "protocol" ("native","x86_32-abi","x86_64-abi"),
 *   "ring_order", "queues", "persistent", "max_indirect_segments".
 *   "budget":
 *   {"memory_bytes", "grant_mappings", "fds"}, each {"limit","used"} (the
 *   disk's budgets, src/budget.h; used: summed over its queues now; fds
 *   used: 1 for the open backing store + 2 per queue), "log":
 *   {"suppressed"} (this disk's lines dropped by the log rate limit) and
 *   "evaluation": {"count" (evaluations granted since the device
 *   appeared), "queued", "delayed" (waits for its rate limit),
 *   "snapshot_pending" (its keys being read), "writes_pending" (its
 *   xenstore writes not made), "draining_rings"} (struct xbd_device_eval:
 *   what settle waits for).
 *   stats adds "rings": [<ring>...], one per running queue.
 *
 * <ring>: every counter is since the ring connected (a reconnect starts
 *   from zero), an unsigned 64-bit integer:
 *   "queue": index,
 *   "requests": {"read","write","flush","barrier","discard","indirect"}
 *       (validated requests; an indirect one also counts under its
 *       operation),
 *   "sectors": {"read","written"} (512-byte units; flush and barrier data
 *       count as written),
 *   "errors": {"io" (backing store failed), "protocol" (refused by
 *       validation), "grant" (a grant could not be copied; a failed map
 *       first degrades to a copy),
 *       "eopnotsupp" (answered EOPNOTSUPP)}; ERROR responses = io +
 *       protocol + grant,
 *   "oo_stalls" (times the ring waited for free slots or bounce memory),
 *   "in_flight",
 *   "persistent_grants": {"mapped" (now), "hits", "misses", "purges",
 *       "map_calls", "budget_full" (segments copied: the queue's share of
 *       the disk's mappings or the host's allowance was used up),
 *       "map_failures" (segments copied: their map failed)},
 *   "budget": {"memory_bytes" (slots, scratch, bounce pages held and
 *       idle), "slots", "bounce_pages", "bounce_limit", "idle_pages",
 *       "grant_mappings_limit"} (the queue's share, src/budget.h),
 *   "grant_copy": {"calls","segments"},
 *   "evtchn": {"received" (wake-ups), "sent" (notifications)},
 *   "engine": {"queued" (I/Os waiting now for the ring's or the device's
 *       share of the shared I/O engine), "share_waits" (submission rounds in
 *       which the ring had I/O waiting for it), "offloaded" (jobs the worker pool ran: discard
 *       chunks, flushes without IOCB_CMD_FDSYNC, reads and writes that would block),
 *       "worker_submitted" (of those, reads and writes a worker only submitted)},
 *   "latency": {"read","write","flush","barrier","discard"}, each
 *       {"count","sum_us","buckets":[XBD_LAT_BUCKETS integers]}: time from
 *       the request leaving the ring to its response being pushed; bucket
 *       i counts latencies below 2^i microseconds and at least 2^(i-1)
 *       (bucket 0: below 1 us; the last bucket is unbounded above), so
 *       the cumulative count up to bucket i is the count of latencies
 *       < 2^i us.  The buckets add up to "count", which equals the
 *       operation's request count once nothing is in flight.
 *
 * Access: the socket is created mode 0660, owner root, group <group>, its
 * directory 0755 if missing.  Anyone who can connect may use ping,
 * version, list, stats and settle; reload and shutdown need peer uid 0
 * (SO_PEERCRED), and every one of them is logged with the peer's pid, uid
 * and gid.
 *
 * Limits: XBD_CTL_MAX_CLIENTS connections (one more gets a "failed" line
 * and is closed), of which the last XBD_CTL_ROOT_SLOTS only for uid 0 (the
 * group's read-only clients, whose settle may wait an hour, cannot lock
 * root out of reload and shutdown); XBD_CTL_IDLE_S seconds without a
 * request or reply progress closes a connection (not while it waits for a
 * settle); a client with more than XBD_CTL_OUT_MAX bytes of replies unread
 * when it sends another request is dropped; at most XBD_CTL_BUDGET
 * requests of one client per loop iteration.  The clients other than
 * root share an allowance of loop time: XBD_CTL_GROUP_SHARE_MS per
 * second, bursts of XBD_CTL_GROUP_BURST_MS, and none of their requests
 * starts in a loop iteration that already spent XBD_CTL_GROUP_TURN_US on
 * them (one request may exceed it: a stats of many disks).  A request
 * over the allowance waits, in order, never fails: such a client is not
 * idle.  A full stats (no domid, no devid) asked by a client that is
 * not root is the last one built (by anyone) if that is younger than
 * XBD_CTL_STATS_CACHE_MS: its figures, uptime_s included, are then that
 * old.  stats' "daemon" adds "control": {"deferred" (times a client
 * waited for the allowance), "waiting" (clients waiting now),
 * "group_busy_us" (loop time spent on non-root clients), "stats_cached"
 * (full stats served from the last one)}.
 */
#ifndef XENBLKD_CONTROL_H
#define XENBLKD_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <ev.h>

#include "xenblkd/device.h"

#define XBD_CTL_PROTOCOL        1
#define XBD_CTL_DEFAULT_PATH    "/run/xenblkd/control.sock"
#define XBD_CTL_DEFAULT_GROUP   "root"
#define XBD_CTL_MAX_LINE        65536u
#define XBD_CTL_MAX_CLIENTS     64u
#define XBD_CTL_ROOT_SLOTS      8u
#define XBD_CTL_IDLE_S          60.0
#define XBD_CTL_OUT_MAX         (256u * 1024u)
#define XBD_CTL_BUDGET          8u
/* The group's (peers other than uid 0) allowance of loop time, shared by
 * all of them: see Limits above. */
#define XBD_CTL_GROUP_SHARE_MS  50u
#define XBD_CTL_GROUP_BURST_MS  100u
#define XBD_CTL_GROUP_TURN_US   1000u
/* A full stats (no filter) is served to the group from the last one
 * built while younger than this. */
#define XBD_CTL_STATS_CACHE_MS  250u
#define XBD_CTL_SETTLE_DEFAULT_MS 30000u
#define XBD_CTL_SETTLE_MAX_MS   3600000u

/* What the mutating commands do; provided by main.c. */
struct xbd_control_ops {
    /* Reload the configuration and re-check backing sizes, as SIGHUP.
     * 0, or -1 with the reason ("FILE:LINE: reason") in err. */
    int (*reload)(void *opaque, char *err, size_t errlen);
    /* Stop the daemon (after the reply is queued). */
    void (*shutdown)(void *opaque, enum xbd_stop_mode mode);
    /* True once the daemon is stopping, *mode telling how: the first stop
     * decides, a shutdown asking for the other kind is refused. */
    bool (*stopping)(void *opaque, enum xbd_stop_mode *mode);
};

struct xbd_control;

/* Create the socket at path (its directory 0755 if missing), group
 * <group> (a name or a number).  Refuses (NULL, logged) when another
 * process listens there or the path is not a socket. */
struct xbd_control *xbd_control_open(struct ev_loop *loop, struct xbd_host *host,
                                     const char *path, const char *group,
                                     const struct xbd_control_ops *ops, void *opaque);
/* Close every connection and the socket, remove the socket file.  NULL ok. */
void xbd_control_close(struct xbd_control *c);

#endif
