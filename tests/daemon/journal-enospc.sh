#!/bin/bash
# A state directory out of space refuses a ring cleanly, never crashes
# the daemon.  Each ring's journal is a file there mapped shared
# (src/journal.c); the default directory, /run/xenblkd, is a tmpfs shared
# with other services.  A journal sized sparse (ftruncate) took its blocks
# at the first store into each page, and a store the filesystem cannot
# back is a SIGBUS: every guest of the daemon lost its backend, and the
# restarted daemon crashed again at the same connect.  The journal's
# blocks are now allocated when it is created: out of space, that ring is
# refused (its device goes Closing, logged), and the daemon serves on.
#
# Here the state directory is a tmpfs of one page, which holds the lock
# file but no journal: the connect is refused, and the daemon lives on
# and answers its control socket.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
state=$XSIM_TMP/state
mkdir -p "$state"
mount -t tmpfs -o size=4k,mode=0700 xenblkd-test "$state" 2>"$XSIM_LOGDIR/mount.log" ||
    xsim_skip "cannot mount a tmpfs: $(cat "$XSIM_LOGDIR/mount.log")"
xsim_on_exit "umount -l '$state' 2>/dev/null || true"

xsim_daemon --kinds qdisk
img=$(make_disk d5.img 8)
xsim_add_disk qdisk 5 xvda "aio:$img"
be=$(be_dir qdisk 5 51712)
guest_start 5
xsim_wait_key "$be/state" 2
fe_write_rings 5 51712
fe_state 5 51712 3
wait_log "domain 5 qdisk/51712.*cannot allocate [0-9]+ bytes for .*: No space left on device"
xsim_wait_key "$be/state" 5 || xsim_fail "the device did not go Closing"
check "the daemon still runs" xsim_running xenblkd
python3 "$top_srcdir/tests/daemon/ctl.py" "$XSIM_TMP/control.sock" '{"version":1,"command":"ping"}' \
    >"$XSIM_TMP/ping.out" || xsim_fail "the daemon does not answer its control socket"
check "the daemon answers" [ "$(cat "$XSIM_TMP/ping.out")" = '{"ok":true}' ]
check "no journal left behind" [ -z "$(ls -A "$state/rings" 2>/dev/null)" ]
xsim_log PASS
