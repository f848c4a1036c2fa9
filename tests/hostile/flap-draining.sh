#!/bin/bash
# A frontend flapping Closing -> Connected while its ring still drains
# must get its disk back (issue 10, item 6a, with I/O in flight;
# state-flap.sh flaps an idle frontend, whose ring drains at once).
#
# Each evaluation reads what it needs from xenstore first (a snapshot,
# src/dev_snapshot.h): the frontend's ring keys only when a connect may
# follow, i.e. not while rings drain.  Here the drain ends while such a
# snapshot is out: the frontend's Connected is seen, the snapshot is
# asked for while the ring still drains, and the drain ends before it is
# back.  A connect from that snapshot found no ring keys, refused the
# frontend ("ring-ref is missing") and left the device Closing for good,
# the guest's Connected already spent.  The daemon now reads again when
# the device changed under a snapshot.
#
# The order is made, not hoped for: the guest's WRITE is held by its
# storage (a loop device over tests/daemon/fuse-hold.py), so the ring
# drains only when the test releases it; the daemon is SIGSTOPped while
# the test writes the frontend's Connected, and xenstored while the
# daemon, continued, asks for its snapshot (snapshot_pending on the
# control socket says when); then the write is released, the
# drain ends (draining_rings 0 on the control socket), and xenstored
# continues.  The guest (xbd-fe held-write) then reads its write back
# over the same ring, connected again.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
fuse_hold_need hostile.txt
xsim_start

mnt=$XSIM_TMP/mnt ctl=$XSIM_TMP/ctl
sector=64
fuse_hold_loop dev "$mnt" "$ctl" 64 $((sector * 512))

be=$(be_dir qdisk 5 51712)
fes=$(fe_dir 5 51712)/state
xsim_add_disk qdisk 5 xvda "phy:$dev" w
xsim_daemon --kinds qdisk --log-level info
xsim_wait_key "$be/state" 2
touch "$ctl/hold"
held_write fe "$ctl" $sector --gen 7 --timeout 60

# ctl_field KEY: domain 5's evaluation KEY (draining_rings,
# snapshot_pending as 0/1), from the control socket.
ctl_field() {
    python3 -c '
import sys
sys.path.insert(0, sys.argv[1])
import ctl
for d in ctl.Client(sys.argv[2]).call({"command": "list"})["devices"]:
    if d["domid"] == 5:
        print(int(d["evaluation"][sys.argv[3]]))' "$top_srcdir/tests/daemon" "$XSIM_TMP/control.sock" "$1"
}

# wait_ctl KEY VALUE WHY: until ctl_field KEY is VALUE.
wait_ctl() {
    local end v
    end=$(xsim_deadline 30)
    until v=$(ctl_field "$1") && [ "$v" = "$2" ]; do
        xsim_past "$end" && xsim_fail "$3 (${1}: ${v:-?})"
        sleep 0.05
    done
}

xenstore-write "$fes" 5
xsim_wait_key "$be/state" 5 || xsim_fail "the backend did not follow Closing"
wait_ctl draining_rings 1 "the ring is not draining behind the held write"

xspid=$(cat "$XENSTORED_RUNDIR/xenstored.pid")
dpid=$(xsim_pid xenblkd)
trap 'rc=$?; kill -CONT "$xspid" "$dpid" 2>/dev/null; (exit $rc); xsim__exit_trap' EXIT
kill -STOP "$dpid"
xenstore-write "$fes" 4
# A round trip after the write: xenstored has flushed the watch event
# to the daemon's socket by the time it answers the next request.
expect_key "$fes" 4
kill -STOP "$xspid"
kill -CONT "$dpid"
wait_ctl snapshot_pending 1 "the daemon did not ask for a snapshot after the frontend's Connected"
xsim_log "evaluation asked for its snapshot with the ring draining; xenstored stopped"
rm "$ctl/hold"
wait_ctl draining_rings 0 "the ring did not drain once the write was released"
kill -CONT "$xspid"
xsim_log "the ring drained with the snapshot out; xenstored continued"

# The guest's read after its write is answered only over the ring
# connected again (it then closes its frontend, and the backend follows
# to Closed: Connected may not last long enough to be seen in xenstore).
st=$(xsim_wait_exit fe 90) || true
[ "$st" = 0 ] || xsim_fail "the guest did not read its write back over a reconnected ring (status $st, backend state $(xenstore-read "$be/state")): $(tail -5 "$XSIM_LOGDIR/fe.log")"
grep -q "frontend Connected again while Closing: reconnecting" "$XSIM_LOGDIR/xenblkd.log" ||
    xsim_fail "no reconnect logged"
grep -q "state Closing -> Connected" "$XSIM_LOGDIR/xenblkd.log" ||
    xsim_fail "the backend never went back to Connected"
if grep -E "refusing to connect|treated as absent" "$XSIM_LOGDIR/xenblkd.log"; then
    xsim_fail "the daemon connected from a snapshot without the frontend's keys"
fi
xsim_log PASS
