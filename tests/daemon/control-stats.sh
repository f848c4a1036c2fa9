#!/bin/bash
# The control socket's list and stats (include/xenblkd/control.h): exact
# per-ring counters after a known sequence of requests, counters equal to
# what a verified workload's frontend and the simulated grant table saw,
# histogram totals equal to request counts, the device and daemon fields,
# and the stats filters.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
fe=$top_builddir/tests/frontend/xsim-blkfront
ctl() { python3 "$top_srcdir/tests/daemon/ctl.py" "$XSIM_TMP/control.sock" "$@"; }
export PYTHONPATH=$top_srcdir/tests/daemon

# Two queues where the host has two CPUs (the daemon offers at most one
# per CPU); the expectations below follow the queue count.
nq=2
[ "$(nproc)" -ge 2 ] || nq=1
d5=$(make_disk d5.img 16)
d6=$(make_disk d6.img 32)
d7=$(make_disk d7.img 8)
xsim_add_disk vbd3 5 xvda "aio:$d5"
xsim_add_disk qdisk 6 xvdb "aio:$d6"
xsim_add_disk qdisk 7 xvdc "aio:$d7" r
# Persistent grants are kept until disconnect (--persistent-grant-idle 0):
# the grant cache's exact figures below must not depend on how long the
# run takes (the default unmaps a grant unused for 60 s).
xsim_daemon --kinds vbd3,qdisk --max-queues 2 --persistent-grant-idle 0
xsim_wait_key "$(be_dir vbd3 5 51712)/state" 2
xsim_hotplug_connected vbd3 5 xvda
xsim_wait_key "$(be_dir qdisk 6 51728)/state" 2
xsim_wait_key "$(be_dir qdisk 7 51744)/state" 2
check "socket is mode 0660 root:root" [ "$(stat -c '%a %U %G' "$XSIM_TMP/control.sock")" = "660 root root" ]

# Domain 5: a known sequence of single requests (xsim-blkfront sends them
# one at a time, round robin over the queues), persistent grants.
raw=(
    op=read,nr_segments=2                         # 16 sectors
    op=read,nr_segments=1,first=2,last=5          # 4 sectors
    op=write,nr_segments=3                        # 24 sectors
    op=flush,nr_segments=0
    op=read,nr_segments=12,expect=error           # refused by validation
    op=discard,sector=8,nr_sectors=16
    op=indirect,indirect_op=read,nr_segments=16   # 128 sectors
    op=reserved1,expect=eopnotsupp
    op=read,gref=4000,expect=error                # a grant that does not exist
    op=barrier,nr_segments=1                      # 8 sectors
    op=write,sector=999999999,expect=error        # past the end
)
args=()
for r in "${raw[@]}"; do args+=(--raw "$r"); done
"$fe" --domid 5 --vdev xvda --workload none --queues "$nq" "${args[@]}" --hold 600 \
    --stats-json "$XSIM_TMP/fe5.json" >"$XSIM_LOGDIR/fe5.log" 2>&1 &
fe5=$!
# Domain 6: a verified workload on grant copy (no persistent grants).
"$fe" --domid 6 --vdev xvdb --workload mixed --count 300 --bs 65536 --qd 16 --queues "$nq" \
    --no-persistent --hold 600 --stats-json "$XSIM_TMP/fe6.json" >"$XSIM_LOGDIR/fe6.log" 2>&1 &
fe6=$!
for f in fe5 fe6; do
    end=$(xsim_deadline 60)
    until grep -q "workload done, holding" "$XSIM_LOGDIR/$f.log"; do
        xsim_past "$end" && { cat "$XSIM_LOGDIR/$f.log"; xsim_fail "$f: workload did not finish"; }
        kill -0 "${!f}" 2>/dev/null || { cat "$XSIM_LOGDIR/$f.log"; xsim_fail "$f failed"; }
        sleep 0.05
    done
done
# The frontend writes its statistics at exit; the run's own figures are in
# the log: the sim's grant counters are read from its JSON after exit.
# Settled first: no device evaluation is queued, delayed or reading
# xenstore, and nothing writes to xenstore from here on, so stats and
# list (two requests) see the same device fields, "evaluation" included.
settle
ctl '{"version":1,"command":"stats"}' >"$XSIM_TMP/stats.json"
ctl '{"version":1,"command":"list"}' >"$XSIM_TMP/list.json"

python3 - "$XSIM_TMP/stats.json" "$XSIM_TMP/list.json" "$nq" "$(xsim_pid xenblkd)" \
    "$d5" "$d6" "$d7" <<'PY'
import json, sys
stats = json.load(open(sys.argv[1]))
lst = json.load(open(sys.argv[2]))
nq, pid = int(sys.argv[3]), int(sys.argv[4])
paths = {5: sys.argv[5], 6: sys.argv[6], 7: sys.argv[7]}
fails = []
def check(what, got, want):
    if got != want:
        fails.append("%s: got %r, want %r" % (what, got, want))
    else:
        print("ok: %s = %.100r" % (what, want))

check("stats ok", stats["ok"], True)
check("list ok", lst["ok"], True)
devs = {d["domid"]: d for d in stats["devices"]}
check("devices sorted by domid", [d["domid"] for d in stats["devices"]], [5, 6, 7])
check("list = stats without rings",
      [{k: v for k, v in d.items() if k != "rings"} for d in stats["devices"]], lst["devices"])
check("list has no rings", any("rings" in d for d in lst["devices"]), False)

# --- the daemon ---
dm = stats["daemon"]
check("daemon.pid", dm["pid"], pid)
check("daemon.devices", dm["devices"], 3)
check("daemon.rings", dm["rings"], 2 * nq)
lim = open("/proc/%d/limits" % pid).read().split("\n")
nofile = [l for l in lim if l.startswith("Max open files")][0].split()[3:5]
check("daemon.fd_limit", [dm["fd_limit"]["soft"], dm["fd_limit"]["hard"]], [int(x) for x in nofile])
import os
check("daemon.fds_open plausible", 0 < dm["fds_open"] <= len(os.listdir("/proc/%d/fd" % pid)) + 2, True)
statm = int(open("/proc/%d/statm" % pid).read().split()[1]) * os.sysconf("SC_PAGESIZE")
check("daemon.rss_bytes plausible", 0 < dm["rss_bytes"] and abs(dm["rss_bytes"] - statm) < 64 << 20, True)
check("daemon.uptime_s > 0", dm["uptime_s"] > 0, True)
check("daemon.version is a string", isinstance(dm["version"], str) and dm["version"] != "", True)

# --- device fields ---
for domid, kind, devid, sectors, ro in ((5, "vbd3", 51712, 32768, False),
                                        (6, "qdisk", 51728, 65536, False),
                                        (7, "qdisk", 51744, 16384, True)):
    d = devs[domid]
    check("dev %d kind" % domid, d["kind"], kind)
    check("dev %d devid" % domid, d["devid"], devid)
    check("dev %d backend" % domid, d["backend"], "/local/domain/0/backend/%s/%d/%d" % (kind, domid, devid))
    check("dev %d frontend" % domid, d["frontend"], "/local/domain/%d/device/vbd/%d" % (domid, devid))
    check("dev %d backing" % domid, d["backing"], {"path": paths[domid], "type": "file", "open": True,
                                                    "write_back_lost": False})
    check("dev %d sectors" % domid, d["sectors"], sectors)
    check("dev %d size_bytes" % domid, d["size_bytes"], sectors * 512)
    # A file's physical sector is its filesystem's block, 512 to 4096.
    blk, pss = os.stat(paths[domid]).st_blksize, 512
    while pss < 4096 and pss * 2 <= blk:
        pss *= 2
    check("dev %d sector sizes" % domid, [d["sector_size"], d["physical_sector_size"]], [512, pss])
    check("dev %d readonly" % domid, d["readonly"], ro)
    check("dev %d discard" % domid, d["discard"], not ro)
for domid, persistent in ((5, True), (6, False)):
    d = devs[domid]
    check("dev %d state" % domid, [d["state"], d["state_number"], d["connected"]], ["Connected", 4, True])
    check("dev %d negotiated" % domid,
          [d["protocol"], d["ring_order"], d["queues"], d["persistent"], d["max_indirect_segments"]],
          ["x86_64-abi", 0, nq, persistent, 256])
    check("dev %d rings" % domid, [r["queue"] for r in d["rings"]], list(range(nq)))
d = devs[7]
check("dev 7 (no frontend yet) state", [d["state"], d["state_number"], d["connected"]], ["InitWait", 2, False])
check("dev 7 negotiated is null",
      [d[k] for k in ("protocol", "ring_order", "queues", "persistent", "max_indirect_segments")], [None] * 5)
check("dev 7 has no rings", d["rings"], [])

# --- every ring: histogram totals equal the request counts ---
ops = ("read", "write", "flush", "barrier", "discard")
for domid in (5, 6):
    for r in devs[domid]["rings"]:
        for op in ops:
            h = r["latency"][op]
            what = "dev %d q%d %s" % (domid, r["queue"], op)
            check(what + " buckets", len(h["buckets"]), 32)
            check(what + " histogram total", sum(h["buckets"]), r["requests"][op])
            check(what + " count", h["count"], r["requests"][op])
            # Latencies are dated by the loop's wake-ups: a request whose
            # I/O is submitted and reaped in the iteration that took it
            # (another ring's completions flush the engine) counts 0 us, so
            # the sum may be 0.  What holds is the histogram's own bounds:
            # bucket 0 is 0 us, bucket b >= 1 is [2^(b-1), 2^b) us, the
            # last one unbounded above.
            lo = sum(c << (b - 1) for b, c in enumerate(h["buckets"]) if b)
            hi = (float("inf") if h["buckets"][-1] else
                  sum(((1 << b) - 1) * c for b, c in enumerate(h["buckets"])))
            check(what + " sum_us within its buckets' bounds", lo <= h["sum_us"] <= hi, True)
        check("dev %d q%d in_flight" % (domid, r["queue"]), r["in_flight"], 0)

# --- domain 5: exact values per ring ---
# (op, requests key or None, sectors read, sectors written, segments
#  through the grant cache, error kind or None, indirect)
seq = [("read", 16, 0, 2, None, 0), ("read", 4, 0, 1, None, 0), ("write", 0, 24, 3, None, 0),
       ("flush", 0, 0, 0, None, 0), (None, 0, 0, 0, "protocol", 0),
       ("discard", 0, 0, 0, None, 0), ("read", 128, 0, 16, None, 1),
       (None, 0, 0, 0, "eopnotsupp", 0), ("read", 8, 0, 1, "grant", 0),
       ("barrier", 0, 8, 1, None, 0), (None, 0, 0, 0, "protocol", 0)]
want = [{"requests": dict.fromkeys(ops + ("indirect",), 0), "sectors": {"read": 0, "written": 0},
         "errors": dict.fromkeys(("io", "protocol", "grant", "eopnotsupp"), 0), "segs": 0,
         "copy_calls": 0, "ro_maps": 0, "data_reqs": 0} for _ in range(nq)]
for i, (op, rs, ws, segs, err, ind) in enumerate(seq):
    w = want[i % nq]
    if op:
        w["requests"][op] += 1
    w["requests"]["indirect"] += ind
    w["sectors"]["read"] += rs
    w["sectors"]["written"] += ws
    w["segs"] += segs
    w["data_reqs"] += segs > 0
    # The indirect page goes through the grant cache too (a lookup, no
    # copy); xsim-blkfront grants it read-only, so the writable map fails
    # and a read-only one follows: two map calls, one page mapped.
    w["segs"] += ind
    w["ro_maps"] += ind
    # A grant that cannot be mapped is copied instead (which fails too).
    w["copy_calls"] += err == "grant"
    if err:
        w["errors"][err] += 1
for q, r in enumerate(devs[5]["rings"]):
    w = want[q]
    check("dev 5 q%d requests" % q, r["requests"], w["requests"])
    check("dev 5 q%d sectors" % q, r["sectors"], w["sectors"])
    check("dev 5 q%d errors" % q, r["errors"], w["errors"])
    pg = r["persistent_grants"]
    check("dev 5 q%d grant cache lookups (hits + misses)" % q, pg["hits"] + pg["misses"], w["segs"])
    # A request's new data pages are mapped by one call (grant_cache.c),
    # an indirect page by its own two (writable refused, read-only).
    check("dev 5 q%d map calls <= a request's data + read-only retries" % q,
          w["ro_maps"] * 2 <= pg["map_calls"] <= w["data_reqs"] + w["ro_maps"] * 2, True)
    check("dev 5 q%d mapped = misses that did not fail" % q, pg["mapped"],
          pg["misses"] - w["errors"]["grant"])
    check("dev 5 q%d purges" % q, pg["purges"], 0)
    check("dev 5 q%d map failures = grant errors" % q, pg["map_failures"], w["errors"]["grant"])
    check("dev 5 q%d grant copy" % q, r["grant_copy"], {"calls": w["copy_calls"], "segments": w["copy_calls"]})
    check("dev 5 q%d oo_stalls" % q, r["oo_stalls"], 0)
    # One response per request, each published on its own (the next
    # request comes only once the frontend has it), and the frontend asks
    # for each: it re-arms rsp_event (RING_FINAL_CHECK_FOR_RESPONSES)
    # before it sends the next request.  The wake-ups ("received") are
    # checked against the frontend's own notifications once it has exited.
    n = sum(1 for i in range(len(seq)) if i % nq == q)
    check("dev 5 q%d evtchn sent = requests" % q, r["evtchn"]["sent"], n)

if fails:
    print("\n".join("FAIL: " + f for f in fails))
    sys.exit(1)
PY

# Filters.
python3 - "$XSIM_TMP/control.sock" <<'PY'
import sys
from ctl import Client
c = Client(sys.argv[1])
fails = []
def expect(req, pred, what):
    r = c.call(req)
    if not pred(r):
        fails.append("%s: %r -> %r" % (what, req, r))
    else:
        print("ok:", what)
ids = lambda r: [(d["domid"], d["devid"]) for d in r["devices"]]
expect({"command": "stats", "domid": 6}, lambda r: r["ok"] and ids(r) == [(6, 51728)], "stats domid 6")
expect({"command": "stats", "domid": 5, "devid": 51712}, lambda r: r["ok"] and ids(r) == [(5, 51712)],
       "stats domid 5 devid 51712")
expect({"command": "stats", "devid": 51744}, lambda r: r["ok"] and ids(r) == [(7, 51744)], "stats devid 51744")
expect({"command": "stats", "domid": 5, "devid": 51728}, lambda r: r == {
    "ok": False, "code": "not_found", "error": "no device 51728 of domain 5"}, "stats of a missing device")
expect({"command": "stats", "domid": 99}, lambda r: not r["ok"] and r["code"] == "not_found",
       "stats of a missing domain")
expect({"command": "stats", "domid": -1}, lambda r: not r["ok"] and r["code"] == "bad_request", "negative domid")
expect({"command": "stats", "domid": "5"}, lambda r: not r["ok"] and r["code"] == "bad_request", "string domid")
expect({"command": "stats", "domid": 40000}, lambda r: not r["ok"] and r["code"] == "bad_request",
       "domid out of range")
expect({"command": "list", "domid": 5}, lambda r: not r["ok"] and r["code"] == "bad_request",
       "list takes no filter")
expect({"command": "ping"}, lambda r: r == {"ok": True}, "ping")
expect({"command": "version"}, lambda r: r["ok"] and r["daemon"] == "xenblkd" and r["protocol"] == 1,
       "version")
if fails:
    print("\n".join("FAIL: " + f for f in fails))
    sys.exit(1)
PY

# Domain 6 against its frontend and the simulated grant table: the same
# requests, bytes and grant copies.
kill -INT $fe5 $fe6 2>/dev/null || true
for p in $fe5 $fe6; do wait "$p" || true; done
[ -s "$XSIM_TMP/fe5.json" ] || xsim_fail "frontend 5 wrote no statistics"
[ -s "$XSIM_TMP/fe6.json" ] || xsim_fail "frontend 6 wrote no statistics"

# Domain 5's wake-ups against the notifications its frontend sent, queue
# by queue.  Not one wake-up per request: the frontend skips the
# notification when the daemon has already moved req_event past the
# request (it consumed it, e.g. after a completion resumed the ring,
# before the frontend read req_event), and notifications sent while one
# is still unread coalesce.  Each wake-up has a cause, though: one of
# those notifications, or the event every binding starts with (the
# simulation, as Xen, signals the port bound; tests/sim/CONTRACT.md).
python3 - "$XSIM_TMP/stats.json" "$XSIM_TMP/fe5.json" "$nq" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))
fe = json.load(open(sys.argv[2]))
nq = int(sys.argv[3])
d = [d for d in st["devices"] if d["domid"] == 5][0]
disk = fe["disks"][0]
kicks = disk["queue_notifications"]
fails = []
def check(what, got, want):
    print(("ok: " if got == want else "FAIL: ") + "%s = %r" % (what, want if got == want else got))
    if got != want:
        fails.append(what)
check("frontend 5 notifications by queue", len(kicks), nq)
check("frontend 5 notifications = their sum", sum(kicks), disk["notifications"])
for r in d["rings"]:
    q = r["queue"]
    n = sum(1 for i in range(11) if i % nq == q)
    k = kicks[q] if q < len(kicks) else 0
    rx = r["evtchn"]["received"]
    print("   q%d: %d requests, %d notifications, %d wake-ups" % (q, n, k, rx))
    check("dev 5 q%d frontend notified at most once a request" % q, k <= n, True)
    check("dev 5 q%d 1 <= evtchn received <= notifications + 1" % q, 1 <= rx <= k + 1, True)
sys.exit(1 if fails else 0)
PY
python3 - "$XSIM_TMP/stats.json" "$XSIM_TMP/fe6.json" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))
fe = json.load(open(sys.argv[2]))
d = [d for d in st["devices"] if d["domid"] == 6][0]
disk = fe["disks"][0] if "disks" in fe else fe
tot = lambda f: sum(f(r) for r in d["rings"])
fails = []
def check(what, got, want):
    print(("ok: " if got == want else "FAIL: ") + "%s: daemon %r, frontend %r" % (what, got, want))
    if got != want:
        fails.append(what)
req = disk["requests"]
for op in ("read", "write", "flush", "discard"):
    check("%s requests" % op, tot(lambda r: r["requests"][op]), req.get(op, 0))
check("read sectors", tot(lambda r: r["sectors"]["read"]), disk["bytes_read"] // 512)
check("written sectors", tot(lambda r: r["sectors"]["written"]), disk["bytes_written"] // 512)
check("indirect requests", tot(lambda r: r["requests"]["indirect"]), req.get("indirect", 0))
gs = fe["grant_stats"]
check("grant-copy calls", tot(lambda r: r["grant_copy"]["calls"]), gs["copy_calls"])
check("grant-copy segments", tot(lambda r: r["grant_copy"]["segments"]), gs["copy_segs"])
check("no persistent map", tot(lambda r: r["persistent_grants"]["map_calls"]), 0)
check("no errors", tot(lambda r: sum(r["errors"].values())), 0)
check("every ring served requests", all(sum(r["requests"].values()) > 0 for r in d["rings"]), True)
sys.exit(1 if fails else 0)
PY
exit 0
