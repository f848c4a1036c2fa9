#!/bin/bash
# A daemon killed in the middle of notifying the guest (man xenblkd,
# RESTARTING): the moment that stalled restart-kills.sh once in CI's
# sanitizer tier.  The fault evt_kill (tests/sim/CONTRACT.md) kills the
# daemon with SIGKILL inside the notification that wakes the frontend:
# the frontend's port is marked delivered, its handle not woken.  In Xen
# a notification is one hypercall, done whole or not at all, so the guest
# is woken once the dead backend's ports are reaped; the successor then
# resumes the ring from the journal and the workload (QD 16, verified)
# carries on and completes, every response OKAY, never reconnecting.
#
# Before the simulated host finished a dead notifier's delivery, the
# frontend slept for good here: the successor re-executed the requests the
# journal listed, published their responses, and its own notification
# coalesced into the port delivered to no one (served: "no progress", 4
# to 8 requests served, as restart-kills.sh failed once in CI).
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
img=$(make_disk d.img 64)
be=$(be_dir qdisk 3 51712) fe=$(fe_dir 3 51712)
xsim_add_disk qdisk 3 xvda "aio:$img" w
xsim_daemon --kinds qdisk
xsim_wait_key "$be/state" 2
xsim_bg fe "$XBD_FE" --domid 3 --vdev 51712 --workload verify --qd 16 --count 100000000 \
    --stop-when "$XSIM_TMP/stop" --timeout 60 --close --stats-json "$XSIM_TMP/s.json"
xsim_wait_key "$be/state" 4
served 3 50 fe
# The daemon's next notification that wakes the frontend is its last.
"$XBD_CTL" fault evt_kill=1 >/dev/null
xsim_on_exit "'$XBD_CTL' fault clear >/dev/null"
st=$(xsim_wait_exit xenblkd 30) || true
[ "$st" = 137 ] || xsim_fail "xenblkd was not killed by the fault (status $st)"
n=$("$XBD_CTL" fired)
check "the fault killed it (fired $n)" [ "$n" = 1 ]
XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --kinds qdisk
served 3 50 fe
touch "$XSIM_TMP/stop"
st=$(xsim_wait_exit fe 60) || true
[ "$st" = 0 ] || xsim_fail "the workload failed across the restart (status $st)"
grep -q "domain 3 qdisk/51712: resumed in state Connected" "$XSIM_LOGDIR/xenblkd2.log" ||
    xsim_fail "xenblkd2 did not resume the device"
! grep -E ' xenblkd (error|warning): ' "$XSIM_LOGDIR/xenblkd.log" "$XSIM_LOGDIR/xenblkd2.log" ||
    xsim_fail "a daemon logged the lines above"
workload_verified "$XSIM_TMP/s.json" 25
backend_connected_once "$be" "$fe"
xsim_log PASS
