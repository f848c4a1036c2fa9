#!/bin/bash
# Control-plane stall figures (issue 10, gap 5): reports, asserts nothing
# about timing.  Not part of make check (it sleeps on purpose); run from a
# build directory:
#   top_srcdir=.. top_builddir=. bash ../tests/hostile/xs-stall-bench.sh
# Prints, for guest 6's verified workload (the neighbour):
#  1. alone;
#  2. while 8 guests rewrite their state node in a tight loop (every
#     rewrite asks for an evaluation; at most XBD_EVAL_BUDGET run per loop
#     iteration, the rest are "deferred");
#  3. while xenstored is stopped (SIGSTOP) for 1 s: libxenstore waits for
#     a reply without any timeout, so whatever evaluation (or the 2 s
#     xenstore ping) asks xenstore something blocks the loop until
#     xenstored continues: the stall equals the stop.  A xenstored that
#     never answers again is caught by the service watchdog
#     (WatchdogSec=30s in the unit: systemd restarts the daemon, which
#     resumes every ring from its journal).  (With the xenstore thread,
#     src/xs_worker.c, the loop no longer waits: see 4.)
#  4. a read bench as the neighbour across xenstored stops of 0, 1, 10 s.
# Figures: how long single loop iterations kept the loop from polling
# (p50, p99, longest, as log2 bucket bounds), from the control socket.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/hostile/loop-lib.sh"
XSIM_XENSTORED_TRACE=0 xsim_start

STORM=$top_builddir/tests/daemon/xs-storm
STORMERS=(10 11 12 13 14 15 16 17)
FE=("$top_builddir/tests/frontend/xsim-blkfront" --domid 6 --vdev 51712 --timeout 120
    --workload verify --close)

for d in 6 "${STORMERS[@]}"; do xsim_add_disk vbd3 $d 51712 "aio:$(make_disk d$d.img 16)"; done
xsim_daemon --kinds vbd3 --log-level info
for d in 6 "${STORMERS[@]}"; do
    xsim_wait_key "$(be_dir vbd3 $d 51712)/state" 2
    xsim_hotplug_connected vbd3 $d 51712
done
for d in "${STORMERS[@]}"; do
    guest_start $d
    fe_write_rings $d 51712
    fe_state $d 51712 3
    xsim_wait_key "$(be_dir vbd3 $d 51712)/state" 4
done

run() {     # run LABEL COUNT: the neighbour's workload with loop figures
    local t0 ms
    loop_snapshot "$XSIM_TMP/a"
    t0=$(date +%s%N)
    "${FE[@]}" --count "$2" >"$XSIM_LOGDIR/fe6.log" 2>&1 || xsim_fail "neighbour failed ($1)"
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    loop_snapshot "$XSIM_TMP/b"
    loop_report "$XSIM_TMP/a" "$XSIM_TMP/b" "$1: neighbour's $2 verified pairs in ${ms} ms"
}

run "alone" 1000
for d in "${STORMERS[@]}"; do
    fe=$(fe_dir $d 51712)
    xsim_bg "storm$d" "$STORM" 100000000 "$fe/state=4" "$fe/state=3"
done
sleep 1
run "8 guests storming their state nodes" 1000

pid=$(cat "$XENSTORED_RUNDIR/xenstored.pid")
loop_snapshot "$XSIM_TMP/a"
t0=$(date +%s%N)
# Open-ended: the workload runs until xenstored has continued, then the
# bench stops it (a count of 3000 pairs could end before the stop began,
# and the figure would then say nothing about the stop).
"${FE[@]}" --count 100000000 --stop-when "$XSIM_TMP/stop" >"$XSIM_LOGDIR/fe6.log" 2>&1 &
fe=$!
xsim_wait_key "$(be_dir vbd3 6 51712)/state" 4 30
sleep 0.3
kill -STOP "$pid"
sleep 1
kill -CONT "$pid"
kill -0 $fe 2>/dev/null || xsim_fail "neighbour ended before xenstored continued"
touch "$XSIM_TMP/stop"
wait $fe || xsim_fail "neighbour failed across the xenstored stop"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
pairs=$(sed -n 's/.*workload verify: stopping after \([0-9]*\) requests.*/\1/p' "$XSIM_LOGDIR/fe6.log")
[ -n "$pairs" ] || xsim_fail "the neighbour's workload did not stop when asked"
loop_snapshot "$XSIM_TMP/b"
loop_report "$XSIM_TMP/a" "$XSIM_TMP/b" "xenstored stopped 1 s (8 storms on): neighbour's $pairs pairs in ${ms} ms"

# 4. The neighbour as a read bench (randread 4k, QD 1: no xenstore of its
#    own while it runs, unlike the verified workload) across a stop of
#    xenstored of 0, 1 and 10 s, with the storms on: its p50/p99 and the
#    loop's longest iteration.  With xenstore on the loop, the loop stalls
#    for as long as xenstored is stopped; with the xenstore thread it
#    does not.
reads6() {   # the reads guest 6's rings have taken so far
    loop_ctl '{"version":1,"command":"stats","domid":6}' |
        jq '[.devices[].rings[].requests.read] | add // 0'
}
# Open-ended, as the verified workload above: the bench runs until the
# stop file appears, which is after xenstored continued (a bench of a
# fixed length could end before or during the stop on a slow machine, and
# its figures would then say nothing about the stop).  The stop begins
# once the bench has been reading for 1 s; it ends 2 s after xenstored
# continued.
bench_stop() {     # bench_stop SECONDS
    local secs=$1 json=$XSIM_TMP/bench-stop$1.json r0 end
    rm -f "$XSIM_TMP/go" "$XSIM_TMP/bench-end" "$json"
    xsim_bg "bench$secs" "$top_builddir/tests/frontend/xsim-blkfront" --domid 6 --vdev 51712 \
        --timeout 60 --bench randread --bs 4k --qd 1 --seconds 3600 --close \
        --bench-start "$XSIM_TMP/go" --stop-when "$XSIM_TMP/bench-end" --bench-json "$json"
    xsim_wait_key "$(fe_dir 6 51712)/state" 4 30
    loop_snapshot "$XSIM_TMP/a"
    r0=$(reads6)
    touch "$XSIM_TMP/go"
    end=$(xsim_deadline 30)
    until [ "$(reads6)" -gt "$r0" ]; do
        xsim_past "$end" && xsim_fail "the read bench did not start ($secs s stop)"
        sleep 0.01
    done
    sleep 1
    if [ "$secs" -gt 0 ]; then
        kill -STOP "$pid"; sleep "$secs"; kill -CONT "$pid"
    fi
    xsim_running "bench$secs" || xsim_fail "read bench ended before xenstored continued ($secs s stop)"
    sleep 2
    touch "$XSIM_TMP/bench-end"
    [ "$(xsim_wait_exit "bench$secs" 120)" = 0 ] || xsim_fail "read bench failed ($secs s stop)"
    loop_snapshot "$XSIM_TMP/b"
    loop_report "$XSIM_TMP/a" "$XSIM_TMP/b" "xenstored stopped $secs s (8 storms on): read bench $(jq -r \
        '"\(.requests) reads in \(.seconds | floor) s, p50 \(.lat_p50_us) us, p99 \(.lat_p99_us) us, max \(.lat_max_us) us"' "$json")"
}
for secs in 0 1 10; do bench_stop "$secs"; done

for d in "${STORMERS[@]}"; do xsim_kill "storm$d" >/dev/null || true; done
echo "---- figures ----"
cat "$XSIM_TMP/loop-figures.txt"
