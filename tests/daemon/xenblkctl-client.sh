#!/bin/bash
# xenblkctl's client side against a scripted peer (xenblkctl-fake-daemon.py)
# whose replies are chosen here, so that every number is known exactly:
# - rates between two samples (on the daemon's clock), means, and the p99
#   interpolated inside its log2 bucket, per report of --watch;
# - --totals from one sample; a device without rings;
# - the request lines xenblkctl sends (protocol v1, stats filters,
#   shutdown's close flag);
# - the daemon's errors: its text shown, the documented exit status for
#   each code, a reply that is not JSON, a connection closed early.
# The real daemon is exercised by xenblkctl-stats.sh, -cli.sh and -attach.sh.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
source "$top_srcdir/tests/daemon/xenblkctl-lib.sh"
command -v python3 >/dev/null || xsim_skip "python3 is not installed (tests/deps/xenblkctl.txt)"
o=$XSIM_TMP/out
FAKE=$top_srcdir/tests/daemon/xenblkctl-fake-daemon.py
nfake=0

# fake SCRIPT: (re)start the scripted peer on $XBC_SOCK with SCRIPT.
fake() {
    local end
    if [ "$nfake" -gt 0 ]; then
        xsim_kill "fake$nfake" TERM >/dev/null || true
        rm -f "$XBC_SOCK" "$XBC_SOCK.ready"
    fi
    nfake=$((nfake + 1))
    : >"$XSIM_TMP/requests"
    xsim_bg "fake$nfake" python3 "$FAKE" "$XBC_SOCK" "$1" "$XSIM_TMP/requests"
    end=$(xsim_deadline 10)
    until [ -e "$XBC_SOCK.ready" ]; do
        xsim_running "fake$nfake" || xsim_fail "the fake daemon died (see fake$nfake.log)"
        xsim_past "$end" && xsim_fail "the fake daemon did not start"
        sleep 0.02
    done
}

# cell FILE DOMID COLUMN: the value in column COLUMN (header name) of the
# table row of domain DOMID in FILE (the last such row).
cell() {
    awk -v dom="$2" -v col="$3" '
        $1 == "DOMID" { for (i = 1; i <= NF; i++) idx[$i] = i; next }
        $1 == dom && (col in idx) { v = $(idx[col]) }
        END { print v }' "$1"
}

# expect_cells FILE DOMID COL=VALUE...
expect_cells() {
    local f=$1 dom=$2 kv got
    shift 2
    for kv in "$@"; do
        got=$(cell "$f" "$dom" "${kv%%=*}")
        [ "$got" = "${kv#*=}" ] || { cat "$f" >&2; xsim_fail "$f: domain $dom ${kv%%=*} is '$got', want '${kv#*=}'"; }
    done
    xsim_log "ok: domain $dom: $*"
}

# The samples: one ring of domain 5, and a device of domain 6 that has
# no rings (not connected).  Deltas A->B over 2.0 s of daemon uptime:
# 200 reads (100 in [512,1024) us, 90 in [1024,2048), 10 in [8192,16384)),
# 100 writes (50 in [1024,2048), 50 in [2048,4096)), 4 flushes + 2
# barriers, 4 discards, 4 MiB read, 2 MiB written.
python3 - "$XSIM_TMP" <<'EOF'
import json, sys
d = sys.argv[1]

def hist(buckets, total_us):
    b = [0] * 32
    for i, n in buckets.items():
        b[i] = n
    return {"count": sum(b), "sum_us": total_us, "buckets": b}

def sample(uptime, rd, wr, fl, ba, dc, rs, ws, io, proto, infl, lat):
    ring = {"queue": 0,
            "requests": {"read": rd, "write": wr, "flush": fl, "barrier": ba, "discard": dc, "indirect": 0},
            "sectors": {"read": rs, "written": ws},
            "errors": {"io": io, "protocol": proto, "grant": 0, "eopnotsupp": 5},
            "oo_stalls": 0, "in_flight": infl,
            "persistent_grants": {"mapped": 1, "hits": 2, "misses": 3, "purges": 4, "map_calls": 5},
            "grant_copy": {"calls": 6, "segments": 7}, "evtchn": {"received": 8, "sent": 9},
            "latency": {op: hist(*lat[op]) for op in lat}}
    dev5 = {"domid": 5, "devid": 51712, "kind": "vbd3", "state": "Connected", "connected": True,
            "queues": 1, "persistent": True, "size_bytes": 1 << 30, "sectors": 1 << 21,
            "backing": {"path": "/srv/a.img", "type": "file", "open": True}, "rings": [ring]}
    dev6 = {"domid": 6, "devid": 51712, "kind": "qdisk", "state": "InitWait", "connected": False,
            "queues": None, "persistent": None, "size_bytes": 0, "sectors": 0,
            "backing": {"path": "/srv/b.img", "type": None, "open": False}, "rings": []}
    return {"ok": True, "daemon": {"version": "9.9.9", "uptime_s": uptime, "pid": 1},
            "devices": [dev5, dev6]}

a = sample(10.0, 100, 50, 4, 0, 2, 1000, 3000, 1, 0, 3, {
    "read": ({10: 100}, 50000), "write": ({11: 50}, 100000),
    "flush": ({10: 4}, 4000), "barrier": ({}, 0), "discard": ({5: 2}, 60)})
# One discard of B took 200 s: beyond the last finite Prometheus bound.
b = sample(12.0, 300, 150, 8, 2, 6, 1000 + 8192, 3000 + 4096, 2, 1, 7, {
    "read": ({10: 200, 11: 90, 14: 10}, 450000), "write": ({11: 100, 12: 50}, 400000),
    "flush": ({10: 8}, 12000), "barrier": ({11: 2}, 4000), "discard": ({5: 5, 28: 1}, 200000150)})
# C: one more second, 100 more reads all in [512,1024) us, 100 ms in all.
c = sample(13.0, 400, 150, 8, 2, 6, 1000 + 8192 + 2048, 3000 + 4096, 2, 1, 0, {
    "read": ({10: 300, 11: 90, 14: 10}, 550000), "write": ({11: 100, 12: 50}, 400000),
    "flush": ({10: 8}, 12000), "barrier": ({11: 2}, 4000), "discard": ({5: 5, 28: 1}, 200000150)})
with open(d + "/watch.script", "w") as f:
    for s in (a, b, c):
        f.write("stats " + json.dumps(s) + "\n")
with open(d + "/totals.script", "w") as f:
    f.write("stats " + json.dumps(b) + "\n")
EOF

# --- rates between samples: two reports of --watch ---------------------------
fake "$XSIM_TMP/watch.script"
ctl_expect 0 "$o" stats --watch 0.05 --count 2
[ "$(grep -c 'xenblkd 9.9.9: rates over the last' "$o")" = 2 ] || { cat "$o" >&2; xsim_fail "not two reports"; }
ctl_says "$o" "rates over the last 2.00 s"
ctl_says "$o" "rates over the last 1.00 s"
sed -n '1,4p' "$o" >"$o.1"
tail -n 3 "$o" >"$o.2"
expect_cells "$o.1" 5 KIND=vbd3 Q=all r/s=100.0 w/s=50.0 f/s=3.0 d/s=2.0 rMiB/s=2.00 wMiB/s=1.00 \
    r_await=2.000 r_p99=14.746 w_await=3.000 w_p99=4.055 f_await=2.000 inflight=7 errors=3
expect_cells "$o.1" 6 KIND=qdisk Q=- r/s=0.0 rMiB/s=0.00 r_await=- r_p99=- inflight=0 errors=0
expect_cells "$o.2" 5 r/s=100.0 w/s=0.0 f/s=0.0 rMiB/s=1.00 r_await=1.000 r_p99=1.019 w_await=- \
    inflight=0 errors=3
[ "$(grep -c '"command":"stats"' "$XSIM_TMP/requests")" = 3 ] || xsim_fail "--count 2 did not take 3 samples"

# --- totals from one sample; one line of JSON; Prometheus -----------------
fake "$XSIM_TMP/totals.script"
ctl_expect 0 "$o" stats --totals
ctl_says "$o" "xenblkd 9.9.9: totals since each device connected"
expect_cells "$o" 5 reads=300 writes=150 flushes=10 discards=6 rMiB=4.49 wMiB=3.46 \
    r_await=1.500 r_p99=13.926 w_await=2.667 w_p99=4.035 f_await=1.600 inflight=7 errors=3
ctl_expect 0 "$o" stats --json
[ "$(wc -l <"$o")" = 1 ] || xsim_fail "--json printed more than one line"
python3 -c 'import json, sys
got = json.load(open(sys.argv[1])); want = json.loads(open(sys.argv[2]).read().split(" ", 1)[1])
sys.exit(got != want)' "$o" "$XSIM_TMP/totals.script" || xsim_fail "--json is not the daemon's reply as sent"
xsim_log "ok: --json is the daemon's reply"
ctl_expect 0 "$o" stats --prometheus
ctl_says "$o" '^xenblkd_request_duration_seconds_bucket\{domid="5",devid="51712",kind="vbd3",queue="0",op="read",le="0.001024"\} 200$'
ctl_says "$o" '^xenblkd_request_duration_seconds_bucket\{domid="5",devid="51712",kind="vbd3",queue="0",op="read",le="0.002048"\} 290$'
ctl_says "$o" '^xenblkd_request_duration_seconds_bucket\{domid="5",devid="51712",kind="vbd3",queue="0",op="read",le="\+Inf"\} 300$'
ctl_says "$o" '^xenblkd_request_duration_seconds_sum\{domid="5",devid="51712",kind="vbd3",queue="0",op="read"\} 0.450000$'
ctl_says "$o" '^xenblkd_request_duration_seconds_bucket\{domid="5",devid="51712",kind="vbd3",queue="0",op="discard",le="16.777216"\} 5$'
ctl_says "$o" '^xenblkd_request_duration_seconds_bucket\{domid="5",devid="51712",kind="vbd3",queue="0",op="discard",le="\+Inf"\} 6$'
ctl_says "$o" '^xenblkd_request_duration_seconds_count\{domid="5",devid="51712",kind="vbd3",queue="0",op="discard"\} 6$'
grep -q 'le="33.554432"' "$o" && xsim_fail "a bucket bound above 2^24 us was printed"
ctl_says "$o" '^xenblkd_read_bytes_total\{domid="5",devid="51712",kind="vbd3",queue="0"\} 4706304$'
ctl_says "$o" '^xenblkd_errors_total\{domid="5",devid="51712",kind="vbd3",queue="0",type="eopnotsupp"\} 5$'
ctl_says "$o" '^xenblkd_device_info\{domid="6",devid="51712",kind="qdisk",state="InitWait",backing="/srv/b.img",backing_type=""\} 1$'

# --- what xenblkctl asks ----------------------------------------------------
ctl_expect 0 "$o" stats 5/xvdb --totals
ctl stats 5 --totals >/dev/null
python3 -c 'import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
want = [{"version": 1, "command": "stats", "domid": 5, "devid": 51728},
        {"version": 1, "command": "stats", "domid": 5}]
sys.exit(lines[-2:] != want)' "$XSIM_TMP/requests" ||
    { cat "$XSIM_TMP/requests" >&2; xsim_fail "stats filters sent wrong"; }
xsim_log "ok: stats DOMID[/DEVID] sends domid and devid"

# --- the daemon's errors ------------------------------------------------------
cat >"$XSIM_TMP/errors.script" <<'EOF'
reload {"ok":false,"error":"/etc/xenblkd.conf:7: max-queues: expected a number, got 'many'","code":"failed"}
shutdown {"ok":false,"error":"shutdown needs root","code":"permission_denied"}
stats {"ok":false,"error":"no device matches domid 9","code":"not_found"}
list {"ok":true,"devices":[
version {"ok":false,"error":"unknown command 'version'","code":"unknown_command"}
EOF
fake "$XSIM_TMP/errors.script"
ctl_expect 1 "$o" reload
ctl_says "$o.err" "^xenblkctl: reload: /etc/xenblkd.conf:7: max-queues: expected a number, got 'many'$"
ctl_expect 4 "$o" shutdown --close
ctl_says "$o.err" "shutdown: permission denied by xenblkd: shutdown needs root"
tail -n 1 "$XSIM_TMP/requests" | grep -q '"close":true' || xsim_fail "shutdown --close did not send close:true"
ctl_expect 5 "$o" stats 9
ctl_says "$o.err" "no device matches domid 9"
ctl_expect 1 "$o" list
ctl_says "$o.err" "list: xenblkd sent a reply that is not a JSON object"
ctl_expect 1 "$o" version
ctl_says "$o" "^xenblkctl $(sed -n 's/^PACKAGE_VERSION = //p' "$top_builddir/Makefile")$"
ctl_says "$o.err" "is the daemon older than xenblkctl"

# --- attach waits for the backend: the test plays xenblkd in xenstore ------
# (the peer above only answers ping, which tells attach a daemon runs)
xsim_add_domain 5
img=$(make_disk c.img 1)
be=$(be_dir vbd3 5 51712)
ctl attach 5 xvda "$img" --timeout 30 >"$o" 2>"$o.err" &
pid=$!
xsim_wait_key "$be/state" 1 || xsim_fail "attach wrote no backend directory"
xenstore-write "$be/hotplug-error" "$img: Permission denied" "$be/hotplug-status" error
rc=0
wait "$pid" || rc=$?
[ "$rc" = 1 ] || { cat "$o" "$o.err" >&2; xsim_fail "attach refused by the backend: exit $rc, want 1"; }
ctl_says "$o.err" "xenblkd refused the device: $img: Permission denied. Remove it with: xenblkctl detach 5 51712"
ctl_expect 0 "$o" detach 5 xvda --timeout 0.2
ctl attach 5 xvda "$img" --timeout 30 >"$o" 2>"$o.err" &
pid=$!
xsim_wait_key "$be/state" 1 || xsim_fail "attach wrote no backend directory"
xenstore-write "$be/state" 2
rc=0
wait "$pid" || rc=$?
[ "$rc" = 0 ] || { cat "$o" "$o.err" >&2; xsim_fail "attach taken by the backend: exit $rc, want 0"; }
ctl_says "$o" "xenblkd took the device: InitWait"
exit 0
