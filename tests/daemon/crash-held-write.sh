#!/bin/bash
# Issue 9's trigger, with the production daemon: a WRITE held in flight by
# its storage while a malformed request behind it is answered at once (its
# response goes into the ring slot of the write), then SIGKILL and a new
# daemon.  The new one must answer the write exactly once and the
# malformed request never again.  Before ring journals, the new daemon
# attached at the frontend's rsp_prod, answered the malformed request a
# second time and never answered the write.
#
# Holding a write: the disk is a loop device over a file of a FUSE
# filesystem (tests/daemon/fuse-hold.py) that holds the write at one
# offset until the test releases it; the daemon's O_DIRECT aio then waits
# in the loop driver.  The killed daemon cannot finish exiting before its
# I/O completes (the kernel waits for it), so it is released after the
# kill; its response is never written, the new daemon executes the write
# again from the journal.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
fuse_hold_need restart.txt
xsim_start

mnt=$XSIM_TMP/mnt ctl=$XSIM_TMP/ctl
sector=64
fuse_hold_loop dev "$mnt" "$ctl" 64 $((sector * 512))

be=$(be_dir qdisk 5 51712)
xsim_add_disk qdisk 5 xvda "phy:$dev" w
xsim_daemon --kinds qdisk
xsim_wait_key "$be/state" 2
touch "$ctl/hold"
held_write fe "$ctl" $sector --gen 7 --timeout 60
kill -KILL "$(xsim_pid xenblkd)"
rm "$ctl/hold"
st=$(xsim_wait_exit xenblkd 30) || true
[ "$st" = 137 ] || xsim_fail "daemon was not killed by SIGKILL (status $st)"

XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --kinds qdisk
st=$(xsim_wait_exit fe 90) || true
[ "$st" = 0 ] || xsim_fail "frontend failed after the restart (status $st): $(tail -5 "$XSIM_LOGDIR/fe.log")"
grep -q "resumed from its journal: .*, 1 request(s) executed again" "$XSIM_LOGDIR/xenblkd2.log" ||
    xsim_fail "the new daemon did not execute exactly the held write again"
# The frontend saw the write answered once and the malformed request never
# again (xbd-fe counts a second answer as a protocol error), and it closed.
xsim_log PASS
