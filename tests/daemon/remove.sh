#!/bin/bash
# Removal the way libxl does it: online=0 + state=5, then a wait for Closed.
# As Linux blkback, the frontend decides: a connected frontend keeps being
# served until it goes Closed (its Closing is no letting go: an old Linux
# blkfront refusing to close a disk in use says Closing and goes on using
# it), then the device drains and reaches Closed, and stays Closed; a
# frontend that is not connected is closed at once.  The daemon leaves the
# backend directory for the toolstack to delete and frees the device once
# it is deleted; a daemon restarted meanwhile resumes the rings of a
# frontend still Connected, or Closing and still using them, and serves it
# the same; a safe removal that
# times out (the frontend never let go)
# fails, and the nodes deleted anyway (libxl's forced removal) free the
# device.  A backend directory deleted under a connected device (forced
# removal) frees it too.  Nothing stays open or mapped, and the same device
# can be re-added.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
disk=$(make_disk disk.img 16)
xsim_add_disk qdisk 5 xvda "aio:$disk"
xsim_daemon --kinds qdisk,vbd3
be=$(be_dir qdisk 5 51712)
xsim_wait_key "$be/state" 2
guest_start 5
fe_write_rings 5 51712
fe_state 5 51712 3
xsim_wait_key "$be/state" 4

# libxl: online=0 and state=5 in one transaction, then wait for 6.  The
# frontend is Initialised (mid connection: its rings run): it keeps its
# disk until it lets go.
printf 'write %s/online 0\nwrite %s/state 5\n' "$be" "$be" | xsim_xs
settle
expect_key "$be/state" 5
check "rings still mapped and bound after online=0" guest_holds 5
wait_log "domain 5 qdisk/51712: online = 0: frontend Initialised, serving it until it closes"
# Closing is not letting go (old Linux: "Device in use; refusing to close").
fe_state 5 51712 5
settle
expect_key "$be/state" 5
check "rings still mapped and bound with the frontend Closing" guest_holds 5
wait_log "domain 5 qdisk/51712: state Connected -> Closing"   # answered, as blkback
fe_state 5 51712 6
xsim_wait_key "$be/state" 6 || xsim_fail "online=0 and the frontend Closed did not lead to Closed"
wait_guest_released 5
# online=0: Closed for good, a frontend starting over gets no InitWait.
fe_state 5 51712 1
settle
expect_key "$be/state" 6
wait_fds_to "$disk" 0
settle
check "backend directory left for the toolstack" xsim_exists "$be/params"
expect_key "$be/state" 6
xenstore-rm "$be"
wait_log "domain 5 qdisk/51712: backend directory removed, device freed"
settle
expect_absent "$be"   # not resurrected by a late write

# Re-adding the same device gives a fresh device object.
xsim_add_disk qdisk 5 xvda "aio:$disk"
xsim_wait_key "$be/state" 2 || xsim_fail "re-added device did not reach InitWait"
fe_write_rings 5 51712
fe_state 5 51712 3
xsim_wait_key "$be/state" 4
# The whole libxl sequence through the harness, with a frontend that never
# lets go: the backend stays Connected and serving, the safe removal times
# out (1 s here, 10 s in libxl), and the nodes deleted anyway free the
# device.
if xsim_remove_disk qdisk 5 xvda 1; then
    xsim_fail "xsim_remove_disk: the backend closed under a frontend that never let go"
fi
wait_guest_released 5
wait_fds_to "$disk" 0
# Released and closed says nothing of the deleted directory's log line:
# once the daemon settled, it has acted on the deletion.
settle
[ "$(grep -c 'domain 5 qdisk/51712: backend directory removed, device freed' "$XSIM_LOGDIR/xenblkd.log")" = 2 ] ||
    xsim_fail "second removal did not free the device"

# Forced removal: the directory disappears under a connected device.
disk2=$(make_disk disk2.img 16)
xsim_add_disk qdisk 5 xvdb "aio:$disk2"
be2=$(be_dir qdisk 5 51728)
xsim_wait_key "$be2/state" 2
fe_write_rings 5 51728
fe_state 5 51728 3
xsim_wait_key "$be2/state" 4
xenstore-rm "$be2"
wait_log "domain 5 qdisk/51728: backend directory removed, device freed"
wait_guest_released 5
wait_fds_to "$disk2" 0
settle
expect_absent "$be2"

# online=0 before the frontend ever connected.
xsim_add_disk qdisk 5 xvdc "aio:$disk2"
be3=$(be_dir qdisk 5 51744)
xsim_wait_key "$be3/state" 2
xsim_remove_disk qdisk 5 xvdc || xsim_fail "idle device did not close on removal"
wait_log "domain 5 qdisk/51744: backend directory removed, device freed"
wait_fds_to "$disk2" 0

# I/O after the detach order: a connected frontend that ignores the
# backend's Closing (xbd-fe pause) writes and reads generation 1, the
# toolstack writes online=0 + state=5, the guest says Closing and goes on:
# generation 2 written and read back, every request answered OKAY.  Then
# its orderly close (Closed, every grant ended) needs the backend's Closed.
xsim_kill guest5 TERM >/dev/null || true
img=$(make_disk io.img 8)
vbd3_disk 6 51712 "$img"
be6=$(be_dir vbd3 6 51712)
span=1048576
xfe_pause pauser 6 --vdev 51712 --gen 1 --span "$span"
printf 'write %s/online 0\nwrite %s/state 5\n' "$be6" "$be6" | xsim_xs
settle
expect_key "$be6/state" 5
wait_log "domain 6 vbd3/51712: online = 0: frontend Connected, serving it until it closes"
# A restart meanwhile (handover) changes nothing: the next instance
# resumes the rings and serves the guest as the first did.
st=$(xsim_kill xenblkd TERM 15)
check "handover exit status 0 (got $st)" [ "$st" = 0 ]
XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --kinds qdisk,vbd3
wait_log "ready: " 10 xenblkd2
settle
expect_key "$be6/state" 5
wait_log "domain 6 vbd3/51712: resumed in state Connected" 10 xenblkd2
fe_state 6 51712 5
settle
expect_key "$be6/state" 5
wait_log "domain 6 vbd3/51712: state Connected -> Closing" 10 xenblkd2
# A restart with the frontend Closing (refusing to close the disk it still
# uses) resumes its rings too: a package upgrade while a detach is pending
# must not pull the disk from under the guest.
st=$(xsim_kill xenblkd2 TERM 15)
check "handover exit status 0 with the frontend Closing (got $st)" [ "$st" = 0 ]
XSIM_DAEMON_NAME=xenblkdc xsim_daemon --kinds qdisk,vbd3
wait_log "ready: " 10 xenblkdc
wait_log "domain 6 vbd3/51712: online = 0, frontend Closing: resuming its rings" 10 xenblkdc
wait_log "domain 6 vbd3/51712: online = 0: frontend Closing, serving it until it closes" 10 xenblkdc
settle
expect_key "$be6/state" 5
n=$(in_use 6)
check "the resumed rings map the guest's grants with the frontend Closing ($n)" [ "$n" -gt 0 ]
touch "$XSIM_TMP/pauser.go"
st=$(xsim_wait_exit pauser 60) || true
[ "$st" = 0 ] || { tail -20 "$XSIM_LOGDIR/pauser.log" >&2; xsim_fail "the frontend's I/O after the detach order failed"; }
grep -q "pause: generation 2 written and read back" "$XSIM_LOGDIR/pauser.log" ||
    xsim_fail "no I/O after the detach order"
check "every request answered OKAY" awk '/^requests:/ {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); n[kv[1]] = kv[2] }
    ok = n["okay"] > 0 && n["okay"] == n["read"] + n["write"] } END { exit !ok }' "$XSIM_LOGDIR/pauser.log"
pattern_check "$img" 2 --span "$span"
expect_key "$be6/state" 6
wait_fds_to "$img" 0
fe_state 6 51712 1
settle
expect_key "$be6/state" 6
xenstore-rm "$be6"
wait_log "domain 6 vbd3/51712: backend directory removed, device freed" 10 xenblkdc
check "daemon still running" xsim_running xenblkdc

# Only a previous instance's journals make a restart under online=0
# resume a frontend that says Connected: here its rings were closed for
# good (xenblkctl shutdown --close removes the journals) while the paused
# guest kept saying Connected; the next instance closes it at once.
img7=$(make_disk io7.img 8)
vbd3_disk 7 51712 "$img7"
be7=$(be_dir vbd3 7 51712)
xfe_pause pauser7 7 --vdev 51712 --gen 1 --span "$span"
"$top_builddir/src/xenblkctl" --socket "$XSIM_TMP/control.sock" shutdown --close >/dev/null ||
    xsim_fail "xenblkctl shutdown --close failed"
st=$(xsim_wait_exit xenblkdc 30) || true
check "xenblkdc closed every disk and exited 0 (got $st)" [ "$st" = 0 ]
expect_key "$be7/state" 6
fe_state 7 51712 4
printf 'write %s/online 0\nwrite %s/state 5\n' "$be7" "$be7" | xsim_xs
XSIM_DAEMON_NAME=xenblkd3 xsim_daemon --kinds qdisk,vbd3
xsim_wait_key "$be7/state" 6 10 || xsim_fail "a frontend claiming Connected without journals was not closed"
wait_log "domain 7 vbd3/51712: online = 0: closing" 10 xenblkd3
! grep -q "domain 7 vbd3/51712: .*resum" "$XSIM_LOGDIR/xenblkd3.log" ||
    xsim_fail "xenblkd3 resumed rings closed for good: $(grep 'domain 7' "$XSIM_LOGDIR/xenblkd3.log")"
xsim_kill pauser7 KILL >/dev/null || true
exit 0
