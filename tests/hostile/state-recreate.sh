#!/bin/bash
# State machine corner (issue 10, item 6b): a backend directory removed
# and re-created while the device's rings still drain.  libxl forces the
# removal of a disk whose backend did not close within 10 s (here: a write
# held in its storage), and a disk can be added at the same place at once.
# The draining device ignored every event, then carried on in the new
# directory with its old state (Connected, no rings, frontend
# Initialising: nothing to do), so the new disk never got InitWait.  Now
# the old device is freed once drained and a fresh one serves the new
# directory: InitWait there without any frontend action, the new backing
# store opened (the old one released), and a guest connects to it.
#
# Holding a write: a loop device over tests/daemon/fuse-hold.py (as
# crash-held-write.sh).
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
fuse_hold_need hostile.txt
xsim_start

mnt=$XSIM_TMP/mnt ctl=$XSIM_TMP/ctl
sector=64
fuse_hold_loop dev "$mnt" "$ctl" 64 $((sector * 512))

be=$(be_dir qdisk 5 51712)
fe=$(fe_dir 5 51712)
xsim_add_disk qdisk 5 xvda "phy:$dev" w
xsim_daemon --kinds qdisk
xsim_wait_key "$be/state" 2
touch "$ctl/hold"
# The old guest: a write held in the storage; it gives up waiting for the
# rest of its scenario when the test tells it to (--go), once the new
# directory is there, and closes after 3 s more for what it has in flight
# (exit status not checked).  (It used to give up 3 s after the write
# was held: a test slower than that to re-create the directory saw the
# old guest's close land before it, and the new device never followed it
# to Closed.)
held_write oldfe "$ctl" $sector --gen 7 --go "$XSIM_TMP/oldfe.leave" --timeout 3

# Forced removal, as libxl after its timeout: both directories at once.
printf 'rm %s\nrm %s\nrm /libxl/5/device/vbd/51712\n' "$fe" "$be" | xsim_xs
wait_log "domain 5 qdisk/51712: stopping 1 ring"
# The daemon reads xenstore when it evaluates, not at each event: a
# directory re-created before an evaluation saw it gone is, to the
# daemon, a directory that never went (the device then carries on there,
# re-reading its keys as for any reconnection).  The case under test is
# the other: removal seen (before or after the rings stopped, as the
# evaluations fall), then a new disk while the ring still drains.
wait_log "domain 5 qdisk/51712: backend directory removed while rings (run|drain)"
# A new disk at the same place while the ring drains.
img2=$(make_disk new.img 8)
xsim_add_disk qdisk 5 xvda "aio:$img2" w
xsim_log "directory re-created; releasing the held write"
rm "$ctl/hold"
xsim_wait_key "$be/state" 2 || xsim_fail "the re-created directory got no InitWait"
wait_log "domain 5 qdisk/51712: backend directory re-created: new device"
wait_log "domain 5 qdisk/51712: opened $img2: "
wait_fds_to "$dev" 0
wait_fds_to "$img2" 1
check "the old device was freed once" [ "$(grep -c 'domain 5 qdisk/51712: backend directory removed, device freed' "$XSIM_LOGDIR/xenblkd.log")" = 1 ]

# The old guest gives up and leaves (its close goes to the new directory:
# the new device follows it to Closed); then a new guest connects.
xsim_running oldfe || xsim_fail "the old guest left before the test told it to: $(tail -5 "$XSIM_LOGDIR/oldfe.log")"
touch "$XSIM_TMP/oldfe.leave"
xsim_wait_exit oldfe 60 >/dev/null || true
grep -q "oldfe.leave exists: giving up the wait" "$XSIM_LOGDIR/oldfe.log" ||
    xsim_fail "the old guest did not leave on the test's word: $(tail -5 "$XSIM_LOGDIR/oldfe.log")"
xsim_wait_key "$be/state" 6
fe_state 5 51712 1
xsim_wait_key "$be/state" 2
guest_start 5
fe_write_rings 5 51712
fe_state 5 51712 3
xsim_wait_key "$be/state" 4 || xsim_fail "the new device did not connect"
wait_log "domain 5 qdisk/51712: connected 1 queue"
check "new guest's ring mapped and event channel bound" [ "$(guest_status 5)" = "1 1" ]
xsim_running xenblkd || xsim_fail "daemon died"
xsim_log PASS
