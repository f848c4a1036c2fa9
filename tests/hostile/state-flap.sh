#!/bin/bash
# State machine corners (issue 10, item 6a and 6c), against the daemon.
#
# 6a: a frontend flapping Closing/Connected and ending Connected must not
# leave the backend Closing for good (the guest would lose its disk until
# the toolstack re-adds it).  As Linux blkback's frontend_changed, the
# daemon connects again once the frontend is back at Connected.  The
# frontend (xbd-fe pause) writes and reads generation 3, then the test
# flaps its state: FLAPS slow flaps (Closing, wait for the backend's
# Closing, Connected, wait for the backend's Connected) and FLAPS quick
# ones (Closing and Connected written back to back, the daemon sees
# either or both), then waits until the daemon reports the device
# Connected with its rings running (control socket; after the last write
# every evaluation can only keep it there), and the frontend writes and
# reads generation 4 over the very same ring: the image is checked too.
# Also: a ring the daemon refused (bad keys) with the frontend still
# Connected stays Closing (no connect loop without the guest acting).
#
# 6c: feature-persistent values other than 0/1: Linux blkback reads the
# key with xenbus_read_unsigned (sscanf "%u", 0 when that fails), so any
# non-zero number means persistent grants and garbage means none.  2, 255,
# " 7" and "9x" connect with persistent grants, "garbage" and "-1" without;
# none is refused.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
FLAPS=${FLAPS:-5}
xsim_daemon --kinds vbd3

# converged DOMID DEVID: the daemon itself says the device is Connected
# with its rings running (one loop callback answers, so this is never a
# state half-way through an evaluation).
converged() {
    python3 -c '
import sys
sys.path.insert(0, sys.argv[1])
import ctl
r = ctl.Client(sys.argv[2]).call({"command": "list"})
for d in r["devices"]:
    if d["domid"] == int(sys.argv[3]) and d["devid"] == int(sys.argv[4]):
        sys.exit(0 if d["state"] == "Connected" and d["connected"] else 1)
sys.exit(1)' "$top_srcdir/tests/daemon" "$XSIM_TMP/control.sock" "$1" "$2"
}

# ---- 6a: flapping ------------------------------------------------------
img=$(make_disk flap.img 8)
vbd3_disk 5 51712 "$img"
be=$(be_dir vbd3 5 51712)
fes=$(fe_dir 5 51712)/state
span=1048576
xfe_pause flapper 5 --vdev 51712 --gen 3 --span "$span"
xsim_log "ok: generation 3 written and read back; flapping"
for ((i = 1; i <= FLAPS; i++)); do
    xenstore-write "$fes" 5
    xsim_wait_key "$be/state" 5 || xsim_fail "slow flap $i: the backend did not follow Closing"
    xenstore-write "$fes" 4
    xsim_wait_key "$be/state" 4 || xsim_fail "slow flap $i: the backend stayed Closing"
done
n=$(grep -c "domain 5 vbd3/51712: frontend Connected again while Closing: reconnecting" \
    "$XSIM_LOGDIR/xenblkd.log" || true)
check "$FLAPS reconnects after slow flaps (log: $n)" [ "$n" -ge "$FLAPS" ]
for ((i = 1; i <= FLAPS; i++)); do
    xenstore-write "$fes" 5
    xenstore-write "$fes" 4
done
end=$(xsim_deadline 20)
until converged 5 51712; do
    xsim_past "$end" && xsim_fail "after quick flaps the device is not Connected with rings: backend state $(xenstore-read "$be/state")"
    sleep 0.05
done
expect_key "$be/state" 4
xsim_log "ok: Connected with its rings after $FLAPS slow and $FLAPS quick flaps"
touch "$XSIM_TMP/flapper.go"
st=$(xsim_wait_exit flapper 60) || true
[ "$st" = 0 ] || { tail -20 "$XSIM_LOGDIR/flapper.log" >&2; xsim_fail "the frontend's workload after the flaps failed"; }
grep -q "pause: generation 4 written and read back" "$XSIM_LOGDIR/flapper.log" ||
    xsim_fail "no verified workload after the flaps"
pattern_check "$img" 4 --span "$span"

# A refused connection with the frontend still Connected stays Closing:
# the ring keys are wrong, nothing the guest does afterwards.
img2=$(make_disk refused.img 8)
vbd3_disk 6 51712 "$img2"
guest_start 6
fe_write_rings 6 51712
xenstore-write "$(fe_dir 6 51712)/event-channel" 0
fe_state 6 51712 3
xsim_wait_key "$(be_dir vbd3 6 51712)/state" 5
fe_state 6 51712 4
wait_log "domain 6 vbd3/51712: refusing to connect: event-channel = 0 is not a valid port"
# Every later event evaluates the device again: none may retry.
for ((i = 0; i < 20; i++)); do xenstore-write "$(be_dir vbd3 6 51712)/online" 1; done
xenstore-write "$(fe_dir 6 51712)/state" 4
# Sync point: once the daemon has settled, every evaluation those writes
# caused has run, however its rate limit paced them (a disk added
# afterwards reaching InitWait says nothing: evaluations are paced per
# device, src/eval_queue.h).
settle
converged 6 51712 && xsim_fail "a refused device connected by itself"
n=$(grep -c "domain 6 vbd3/51712: refusing to connect" "$XSIM_LOGDIR/xenblkd.log" || true)
check "refused once, no retry without the frontend leaving (log: $n)" [ "$n" = 1 ]
expect_key "$(be_dir vbd3 6 51712)/state" 5
# Starting over (as blkfront does once the backend is Closing) with good
# keys connects.
fe_state 6 51712 6
xsim_wait_key "$(be_dir vbd3 6 51712)/state" 6
fe_state 6 51712 1
xsim_wait_key "$(be_dir vbd3 6 51712)/state" 2
fe_write_rings 6 51712
fe_state 6 51712 3
xsim_wait_key "$(be_dir vbd3 6 51712)/state" 4 || xsim_fail "domain 6 did not reconnect after starting over"

# ---- 6c: feature-persistent --------------------------------------------
domid=7
for v in "2:on" "255:on" " 7:on" "9x:on" "garbage:off" "-1:off" "0:off"; do
    val=${v%:*} want=${v##*:}
    imgp=$(make_disk "pers$domid.img" 8)
    vbd3_disk "$domid" 51712 "$imgp"
    guest_start "$domid"
    fe_write_rings "$domid" 51712
    xenstore-write -- "$(fe_dir "$domid" 51712)/feature-persistent" "$val"
    fe_state "$domid" 51712 3
    xsim_wait_key "$(be_dir vbd3 "$domid" 51712)/state" 4 ||
        xsim_fail "feature-persistent = '$val' was refused"
    wait_log "domain $domid vbd3/51712: connected 1 queue, ring order 0, x86_64 protocol, persistent grants $want$"
    domid=$((domid + 1))
done
! grep -q "refusing to connect: feature-persistent" "$XSIM_LOGDIR/xenblkd.log" ||
    xsim_fail "a feature-persistent value was refused"
xsim_running xenblkd || xsim_fail "daemon died"
xsim_log PASS
