#!/bin/bash
# Restarts under a running, verified workload of the reference frontend
# (man xenblkd, RESTARTING): the daemon is stopped with SIGTERM (a
# handover) and started again, then killed with SIGKILL and started again,
# then handed over once more, each time after the new instance has served
# part of the workload.  The guest must see nothing but pauses: its
# workload completes with every response OKAY and every read verified, it
# never reconnects, no response is a protocol error, and the backend's
# xenstore state is written Connected once and never anything else until
# the frontend closes at the end.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
img=$(make_disk d.img 64)
be=$(be_dir qdisk 3 51712) fe=$(fe_dir 3 51712)
xsim_add_disk qdisk 3 xvda "aio:$img" w
xsim_daemon --kinds qdisk
xsim_wait_key "$be/state" 2
# Open-ended: the workload runs until the last instance has served part
# of it, then the test asks it to stop (--stop-when) and it drains.  A
# count meant to outlast the three restarts ran out before the third on
# a loaded machine.
xsim_bg fe "$top_builddir/tests/frontend/xsim-blkfront" --domid 3 --vdev 51712 \
    --workload verify --qd 16 --count 100000000 --stop-when "$XSIM_TMP/stop" --timeout 60 --close \
    --stats-json "$XSIM_TMP/s.json"
xsim_wait_key "$be/state" 4

served 3 100 fe
st=$(xsim_kill xenblkd TERM 20)
[ "$st" = 0 ] || xsim_fail "handover: exit status $st"
grep -q "domain 3 qdisk/51712: handed over in state Connected" "$XSIM_LOGDIR/xenblkd.log" ||
    xsim_fail "no handover line"
XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --kinds qdisk
served 3 100 fe
kill -KILL "$(xsim_pid xenblkd2)"
st=$(xsim_wait_exit xenblkd2 20) || true
[ "$st" = 137 ] || xsim_fail "daemon was not killed by SIGKILL (status $st)"
XSIM_DAEMON_NAME=xenblkd3 xsim_daemon --kinds qdisk
served 3 100 fe
st=$(xsim_kill xenblkd3 TERM 20)
[ "$st" = 0 ] || xsim_fail "second handover: exit status $st"
XSIM_DAEMON_NAME=xenblkd4 xsim_daemon --kinds qdisk
served 3 100 fe
touch "$XSIM_TMP/stop"
st=$(xsim_wait_exit fe 120) || true
[ "$st" = 0 ] || xsim_fail "the workload failed across the restarts (status $st)"
for n in xenblkd2 xenblkd3 xenblkd4; do
    grep -q "domain 3 qdisk/51712: resumed in state Connected" "$XSIM_LOGDIR/$n.log" ||
        xsim_fail "$n did not resume the device"
done
grep -q "workload verify: stopping after" "$XSIM_LOGDIR/fe.log" || xsim_fail "the workload did not stop when asked"
# Every pair started was written and read back, all OKAY; the four
# instances served at least 100 requests each.
workload_verified "$XSIM_TMP/s.json" 100
backend_connected_once "$be" "$fe"
xsim_log PASS
