#!/bin/bash
# Log flooding (issue 10, gap 4): guest 5 sends 100000 reads naming a
# grant it never granted.  Each one fails to map (a "cannot map grant"
# line, src/ring.c), then fails to copy (BLKIF_RSP_ERROR).  Without the
# per-disk rate limit (src/log_limit.c) that is 100000 log lines; with it
# the log holds at most the burst plus the rate times the flood's
# duration, the dropped lines are counted (control socket: the disk's
# "log": {"suppressed"}) and reported in "suppressed N messages" lines,
# and a protocol-breaking disconnect reason is still logged (first
# occurrence) right after the flood.  Guest 6 connects and runs a verified
# workload afterwards: the daemon kept serving.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
[ -x "$top_builddir/src/xenblkd" ] || xsim_skip "xenblkd not built"
XSIM_XENSTORED_TRACE=0 xsim_start

STORM=$top_builddir/tests/hostile/storm-guest
N=100000
RATE=20 BURST=200
# log_span_ms: from daemon log lines (HH:MM:SS.mmm first), their number
# and the ms from the first stamp to the last (across midnight too).
log_span_ms() {
    awk '{ split($1, t, /[:.]/); ms = ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 + t[4] + off
           if (NR > 1 && ms < last) { off += 86400000; ms += 86400000 }
           if (NR == 1) first = ms; last = ms }
         END { print NR, (NR ? last - first : 0) }'
}
ctl() { python3 "$top_srcdir/tests/daemon/ctl.py" "$XSIM_TMP/control.sock" "$@"; }

for d in 5 6; do xsim_add_disk vbd3 $d 51712 "aio:$(make_disk d$d.img 16)"; done
# Info level: the rate limit applies to every level, and info is what a
# production daemon logs.
xsim_daemon --kinds vbd3 --log-level info --log-rate-limit $RATE --log-rate-burst $BURST
for d in 5 6; do
    xsim_wait_key "$(be_dir vbd3 $d 51712)/state" 2
    xsim_hotplug_connected vbd3 $d 51712
done

out=$XSIM_TMP/guest5.rings
xsim_bg guest5 "$STORM" --domid 5 --out "$out" --order 2 --bad $N --break
for ((i = 0; i < 500; i++)); do [ -s "$out" ] && break; sleep 0.02; done
[ -s "$out" ] || xsim_fail "guest 5 did not set up its ring"
fe_write_rings 5 51712 x86_64-abi
fe_state 5 51712 3
xsim_wait_key "$(be_dir vbd3 5 51712)/state" 4
end=$(xsim_deadline 600)
until [ -s "$out.bad" ]; do
    xsim_past "$end" && xsim_fail "the flood did not finish"
    xsim_running guest5 || xsim_fail "guest 5 died"
    sleep 0.1
done
read -r answered errors ms < "$out.bad"
xsim_log "flood: $answered answered, $errors errors, in ${ms} ms"
[ "$answered" = $N ] && [ "$errors" = $N ] || xsim_fail "want $N requests answered ERROR"

log=$XSIM_LOGDIR/xenblkd.log
# The bound is the token bucket's over the span the daemon's own log
# stamps give (first to last such line), not over a span the test
# measures: the test may see Connected late on a busy host, and the flood
# may start before it does.  500 ms of slack: a line is stamped a little
# after the bucket gave it its token (and a busy host may preempt the
# daemon in between); a broken limit logs all 100000.
read -r lines span_ms < <(grep "domain 5 vbd3/51712 q0: cannot map grant" "$log" | log_span_ms)
bound=$((BURST + RATE * (span_ms + 500 + 999) / 1000))
stats=$(ctl '{"version":1,"command":"stats","domid":5}')
suppressed=$(jq '.devices[0].log.suppressed' <<<"$stats")
maps_failed=$(jq '.devices[0].rings[0].persistent_grants.map_failures' <<<"$stats")
xsim_log "log: $lines 'cannot map grant' lines for $maps_failed map failures over ${span_ms} ms" \
    "(bound $bound), $suppressed suppressed"
[ "$maps_failed" = $N ] || xsim_fail "want $N map failures counted, got $maps_failed"
[ "$lines" -le "$bound" ] || xsim_fail "$lines lines logged for $N bad requests (bound $bound)"
# Every line the guest caused was either logged or counted.
[ $((lines + suppressed)) -ge $N ] ||
    xsim_fail "$lines logged + $suppressed suppressed < $N map failures"
# The dropped lines are reported (once a second while they flow).
wait_log "domain 5 vbd3/51712: suppressed [0-9]+ messages" 5
reported=$(grep -o "domain 5 vbd3/51712: suppressed [0-9]* messages" "$log" |
           awk '{ s += $(NF - 1) } END { print s + 0 }')
xsim_log "reported in 'suppressed' lines: $reported"
[ "$reported" -gt 0 ] && [ "$reported" -le "$suppressed" ] ||
    xsim_fail "'suppressed' lines report $reported of $suppressed"
host_suppressed=$(ctl '{"version":1,"command":"stats"}' | jq '.daemon.log.suppressed')
[ "$host_suppressed" -ge "$suppressed" ] || xsim_fail "daemon log.suppressed $host_suppressed"

# Right after another ring's worth of bad requests (its bucket empty) the
# guest moves req_prod more than a ring ahead: that reason is logged all
# the same, and the disk disconnected.
touch "$out.go"
xsim_wait_key "$(be_dir vbd3 5 51712)/state" 5 20 || xsim_fail "guest 5 not disconnected"
wait_log "domain 5 vbd3/51712: frontend broke the protocol: frontend's req_prod is more than a ring ahead" 5
xsim_kill guest5 >/dev/null || true

# The daemon still serves: guest 6 connects and runs a verified workload.
"$top_builddir/tests/frontend/xsim-blkfront" --domid 6 --vdev 51712 --timeout 60 \
    --workload verify --count 200 --close || xsim_fail "guest 6's workload after the flood"
xsim_running xenblkd || xsim_fail "daemon died"
total=$(wc -l < "$log")
xsim_log "ok: $N bad requests, $lines lines about them, $total log lines in all"
