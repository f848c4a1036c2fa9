#!/bin/bash
# man xenblkd, RESTARTING: after a stop that closed the devices for good
# (xenblkctl shutdown --close: Closing -> Closed) Linux blkfront answers
# Closed with Closed; a restarted daemon offers InitWait again and
# blkfront reconnects from Closed.  Seen on real Xen (tests/xen lifecycle,
# scenario 7): the restarted daemon took the frontend's left-over Closed
# for a request to close and went InitWait -> Closed at once, so the disk
# never came back.  The close is written here as it leaves xenstore (the
# daemon is stopped by a handover, which leaves every state alone), so the
# test does not depend on the control socket.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
xsim_daemon --kinds qdisk
connect_qdisk 5
be=$(be_dir qdisk 5 51712)

st=$(xsim_kill xenblkd TERM 15)
check "exit status 0 after SIGTERM (got $st)" [ "$st" = 0 ]
expect_key "$be/state" 4
wait_guest_released 5
# What a close for good leaves: the backend Closed, and blkfront, which
# answers the backend's Closing by closing an unused disk, Closed too.
xenstore-write "$be/state" 6
fe_state 5 51712 6

XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --kinds qdisk
xsim_wait_key "$be/state" 2 || xsim_fail "restart: no InitWait offered"
# The frontend is still Closed: the daemon must keep waiting for it.
settle
expect_key "$be/state" 2
if grep -q "domain 5 qdisk/51712: state InitWait -> Closed" "$XSIM_LOGDIR/xenblkd2.log"; then
    xsim_fail "restart: the left-over frontend Closed closed the device again"
fi
# blkfront reconnects from Closed when it sees InitWait.
fe_write_rings 5 51712
fe_state 5 51712 3
xsim_wait_key "$be/state" 4 || xsim_fail "restart: frontend could not reconnect from Closed"
check "restart: guest ring mapped again" [ "$(guest_status 5)" = "1 1" ]
st=$(xsim_kill xenblkd2 TERM 15)
check "restarted daemon exits 0 after SIGTERM (got $st)" [ "$st" = 0 ]
wait_guest_released 5
exit 0
