#!/bin/bash
# A daemon killed with SIGKILL in the middle of a verified workload, then
# started again: the frontend never noticed a disconnect (its ring, grants
# and event channel stay), the new instance attaches to the ring where its
# indexes are, answers the requests the dead one left in flight, and the
# whole workload completes and verifies.  Needs the kernel-like cleanup of a
# dead process (its mappings and bindings released at exit, even while it
# is still a zombie) and BACK_RING_ATTACH at rsp_prod in the daemon.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
xsim_start
truncate -s 64M "$XSIM_TMP/d.img"
xsim_add_disk qdisk 3 xvda "aio:$XSIM_TMP/d.img" w
xsim_daemon --kinds qdisk
xsim_wait_key /local/domain/0/backend/qdisk/3/51712/state 2 10
xsim_bg fe "$top_builddir/tests/frontend/xsim-blkfront" --domid 3 --vdev 51712 \
    --workload verify --qd 16 --count 3000 --timeout 20 --close --stats-json "$XSIM_TMP/s.json"
xsim_wait_key /local/domain/0/backend/qdisk/3/51712/state 4 10
# Let the workload get going, so that requests are in flight at the kill.
for _ in $(seq 100); do
    [ "$(xenstore-read /local/domain/0/backend/qdisk/3/51712/state)" = 4 ] &&
        grep -q "ring of" "$XSIM_LOGDIR/xenblkd.log" && break
    sleep 0.05
done
sleep 0.3
st=$(xsim_kill xenblkd KILL 5) || true
[ "$st" = 137 ] || xsim_fail "daemon was not killed by SIGKILL (status $st)"
XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --kinds qdisk
st=$(xsim_wait_exit fe 60) || true
[ "$st" = 0 ] || xsim_fail "frontend failed after the daemon's restart (status $st)"
python3 - "$XSIM_TMP/s.json" <<'PY' || xsim_fail "frontend counters"
import json, sys
d = json.load(open(sys.argv[1]))["disks"][0]
assert d["connects"] == 1, d["connects"]            # never reconnected
assert d["responses"]["okay"] == 6000, d["responses"]
assert d["verify_errors"] == 0 and d["protocol_errors"] == 0
PY
grep -q "domain 3 qdisk/51712: resumed in state Connected" "$XSIM_LOGDIR/xenblkd2.log" ||
    xsim_fail "the restarted daemon did not connect the ring"
xsim_log PASS
