#!/bin/bash
# xenblkctl shutdown against a daemon that cannot finish stopping: a
# guest's WRITE is held in its storage (tests/daemon/fuse-hold.py under a
# loop device, as crash-held-write.sh), so the handover waits for it
# XBD_HANDOVER_TIMEOUT (15 s), then the daemon closes its control socket
# and waits in io_destroy for the kernel to give the write back.
# - While it stops, a shutdown of the other kind (--close during a
#   handover) fails, exit 1, naming the stop under way, and is not done:
#   the device stays Connected and the next daemon resumes its ring.  A
#   shutdown of the same kind is answered ok.
# - xenblkctl shutdown does not return while the daemon's process exists:
#   it says when the control socket stopped answering (the moment it used
#   to print "xenblkd stopped"), and is still running then; once the write
#   is released it returns 0, the process gone at that moment, and the
#   next instance starts at once (the state directory's lock is free).
#
# The refused --close must reach the daemon within the 15 s of the
# handover: one request, a bound, not a time window waited for.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
fuse_hold_need restart.txt
xsim_start
source "$top_srcdir/tests/daemon/xenblkctl-lib.sh"
o=$XSIM_TMP/out
mnt=$XSIM_TMP/mnt hold=$XSIM_TMP/hold
sector=64
fuse_hold_loop dev "$mnt" "$hold" 64 $((sector * 512))

be=$(be_dir qdisk 5 51712)
xsim_add_disk qdisk 5 xvda "phy:$dev" w
# This daemon's handover runs into its 15 s limit with the write held: it
# abandons that ring at the exit (xenblkd(8), RESTARTING), leaving the
# request to its successor's journal and freeing the rest: in the
# sanitizer build a leak would be exit status 23 below.
ctl_daemon --kinds qdisk
pid=$(xsim_pid xenblkd)
xsim_wait_key "$be/state" 2
touch "$hold/hold"
held_write fe "$hold" $sector --gen 7 --timeout 90
expect_key "$be/state" 4

# --- the handover begins; a --close now is refused, a handover is not -------
xsim_bg stop "$XBC" --socket "$XBC_SOCK" shutdown
wait_log "shutdown requested on the control socket$"
ctl_expect 1 "$o" shutdown --close
ctl_says "$o.err" "^xenblkctl: shutdown: already stopping: handover$"
! grep -q "closing every device" "$o" || xsim_fail "a refused --close said: $(cat "$o")"
wait_log "control: shutdown \\(close\\) refused: already stopping \\(handover\\)"
ctl_expect 0 "$o" shutdown --no-wait
ctl_says "$o" "xenblkd is stopping; the guests' disks pause"

# --- the control socket closes, the process stays: xenblkctl waits -----------
end=$(xsim_deadline 60)
until grep -q "no longer answers on its control socket; waiting for its process (pid $pid) to exit" \
        "$XSIM_LOGDIR/stop.log"; do
    xsim_running stop ||
        xsim_fail "xenblkctl shutdown returned while xenblkd (pid $pid) runs: $(cat "$XSIM_LOGDIR/stop.log")"
    xsim_past "$end" && xsim_fail "xenblkctl never saw the control socket close: $(cat "$XSIM_LOGDIR/stop.log")"
    sleep 0.05
done
wait_log "exit: waiting for the 1 I/O\\(s\\) the kernel holds"
check "xenblkd (pid $pid) still runs, its write held" xsim_alive "$pid"
check "xenblkctl shutdown still waits for it" xsim_running stop
ctl_expect 3 "$o" ping

rm "$hold/hold"
st=$(xsim_wait_exit stop 30) || xsim_fail "xenblkctl shutdown did not return once the write was released"
check "the daemon's process is gone when xenblkctl shutdown returns" eval '! xsim_alive "$pid"'
[ "$st" = 0 ] || xsim_fail "xenblkctl shutdown exited $st: $(cat "$XSIM_LOGDIR/stop.log")"
ctl_says "$XSIM_LOGDIR/stop.log" "^xenblkd stopped$"
[ "$(xsim_wait_exit xenblkd 10)" = 0 ] || xsim_fail "xenblkd did not exit 0"
grep -q "qdisk/51712.*: abandoned with 1 request unanswered, kept in its journal" \
    "$XSIM_LOGDIR/xenblkd.log" || xsim_fail "the undrained ring was not abandoned at the exit"
# The abandoned ring's finished write is expected at that exit: said at info
# level, not as the engine's error about I/O it lost track of.
grep -q "exit: 1 I/O(s) finished and 0 queued not answered" "$XSIM_LOGDIR/xenblkd.log" ||
    xsim_fail "the exit did not say what it left to the abandoned ring's journal"
! grep -q "I/O engine freed with" "$XSIM_LOGDIR/xenblkd.log" ||
    xsim_fail "an expected abandon was logged as an error: $(grep "I/O engine freed" "$XSIM_LOGDIR/xenblkd.log")"
expect_key "$be/state" 4          # handed over, not closed

# --- what a script does next: start the next instance at once ----------------
XSIM_DAEMON_NAME=xenblkd2 ctl_daemon --kinds qdisk
st=$(xsim_wait_exit fe 90) || true
[ "$st" = 0 ] || xsim_fail "the guest failed after the handover (status $st): $(tail -5 "$XSIM_LOGDIR/fe.log")"
grep -q "resumed from its journal: .*, 1 request(s) executed again" "$XSIM_LOGDIR/xenblkd2.log" ||
    xsim_fail "the next daemon did not execute the held write again"
xsim_log PASS
