#!/bin/bash
# Repeated crashes under a running, verified workload of the reference
# frontend (man xenblkd, RESTARTING): eight daemons in a row are killed
# with SIGKILL, each once it has served part of the workload, and a ninth
# serves the rest.  Each successor resumes the ring from the journal:
# the guest sees nothing but pauses.  Its workload (QD 16, persistent
# grants) completes with every response OKAY and every read verified, it
# never reconnects, the backend's xenstore state is written Connected
# once, no daemon logs an error, and when the frontend closes, the last
# instance leaves no grant of the guest in use.
#
# A killed daemon unmaps nothing: its persistent grants stay pinned in the
# guest's maptrack (2048 records here) until the simulated host reaps
# them.  Eight dead instances pin more than that, so a host (or a daemon)
# that let dead pins pile up would fail here; one or two restarts
# (restart-workload.sh) never get there.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
kills=8
maptrack=2048
xsim_start
img=$(make_disk d.img 64)
be=$(be_dir qdisk 3 51712) fe=$(fe_dir 3 51712)
xsim_add_disk qdisk 3 xvda "aio:$img" w
XSIM_DAEMON_NAME=xenblkd1 xsim_daemon --kinds qdisk
xsim_wait_key "$be/state" 2
# Open-ended: the workload runs until the test stops it (--stop-when).  It
# keeps its domain after it closed (--linger-until), so that the test can
# look at the guest's grants with the last daemon still running.
xsim_bg fe "$XBD_FE" --domid 3 --vdev 51712 --workload verify --qd 16 --count 100000000 \
    --stop-when "$XSIM_TMP/stop" --timeout 60 --close --linger-until "$XSIM_TMP/linger" \
    --stats-json "$XSIM_TMP/s.json"
xsim_wait_key "$be/state" 4

# Each instance serves 50 requests, then dies with whatever it mapped.
# pinned: the persistent grants the killed instances held (their own
# count, just before the kill).
pinned=0
for ((i = 1; i <= kills; i++)); do
    name=xenblkd$i
    [ "$i" = 1 ] || XSIM_DAEMON_NAME=$name xsim_daemon --kinds qdisk
    served 3 50 fe
    n=$(ctl_stats_sum 3 'r["persistent_grants"]["mapped"]')
    pinned=$((pinned + n))
    kill -KILL "$(xsim_pid "$name")"
    st=$(xsim_wait_exit "$name" 20) || true
    [ "$st" = 137 ] || xsim_fail "$name was not killed by SIGKILL (status $st)"
    xsim_log "ok: $name killed holding $n persistent grants ($pinned in all)"
done
check "the killed instances pinned more than the maptrack holds ($pinned > $maptrack)" \
    [ "$pinned" -gt "$maptrack" ]
last=xenblkd$((kills + 1))
XSIM_DAEMON_NAME=$last xsim_daemon --kinds qdisk
served 3 50 fe
touch "$XSIM_TMP/stop"
# The frontend drains, closes (Closed), and ends its grants.
xsim_wait_key "$fe/state" 6 60 || xsim_fail "the frontend did not close: $(tail -3 "$XSIM_LOGDIR/fe.log")"
xsim_wait_key "$be/state" 6 20 || xsim_fail "the backend did not reach Closed"
end=$(xsim_deadline 10)
while n=$(in_use 3); [ "$n" != 0 ]; do
    xsim_past "$end" && xsim_fail "$n grant(s) of domain 3 still in use after Closed"
    sleep 0.05
done
check "$last is still running" xsim_running "$last"
xsim_log "ok: no grant of domain 3 in use after Closed, $last running"
touch "$XSIM_TMP/linger"
st=$(xsim_wait_exit fe 20) || true
[ "$st" = 0 ] || xsim_fail "the workload failed across the restarts (status $st)"
grep -q "workload verify: stopping after" "$XSIM_LOGDIR/fe.log" || xsim_fail "the workload did not stop when asked"
for ((i = 2; i <= kills + 1; i++)); do
    grep -q "domain 3 qdisk/51712: resumed in state Connected" "$XSIM_LOGDIR/xenblkd$i.log" ||
        xsim_fail "xenblkd$i did not resume the device"
done
xsim_log "ok: xenblkd2..$last resumed the ring"
for ((i = 1; i <= kills + 1; i++)); do
    ! grep -E ' xenblkd (error|warning): ' "$XSIM_LOGDIR/xenblkd$i.log" ||
        xsim_fail "xenblkd$i logged the lines above"
done
# At least the 50 requests the last instance served, as pairs.
workload_verified "$XSIM_TMP/s.json" 25
backend_connected_once "$be" "$fe"
xsim_log PASS
