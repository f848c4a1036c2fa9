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

# Reads and writes the running instance has served (its control socket's
# counters, which start at 0 in each instance; 0 while it is not up).  Not
# the simulated host's grant copies: with persistent grants the indirect
# pages are mapped too, and a steady workload copies nothing.
answered() {
    python3 "$top_srcdir/tests/daemon/ctl.py" "$XSIM_TMP/control.sock" '{"version":1,"command":"stats"}' \
        2>/dev/null | python3 -c '
import json, sys
j = json.loads(sys.stdin.readline())
print(sum(r["requests"]["read"] + r["requests"]["write"] for d in j["devices"] for r in d["rings"]))' \
        2>/dev/null || echo 0
}
# served N: wait until the running instance has served N requests.
served() {
    local end
    end=$(xsim_deadline 30)
    until [ "$(answered)" -ge "$1" ]; do
        xsim_running fe || xsim_fail "the workload ended (or failed) too early: $(tail -3 "$XSIM_LOGDIR/fe.log")"
        xsim_past "$end" && xsim_fail "no progress: $(answered) requests served, want $1"
        sleep 0.02
    done
}

served 100
st=$(xsim_kill xenblkd TERM 20)
[ "$st" = 0 ] || xsim_fail "handover: exit status $st"
grep -q "domain 3 qdisk/51712: handed over in state Connected" "$XSIM_LOGDIR/xenblkd.log" ||
    xsim_fail "no handover line"
XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --kinds qdisk
served 100
kill -KILL "$(xsim_pid xenblkd2)"
st=$(xsim_wait_exit xenblkd2 20) || true
[ "$st" = 137 ] || xsim_fail "daemon was not killed by SIGKILL (status $st)"
XSIM_DAEMON_NAME=xenblkd3 xsim_daemon --kinds qdisk
served 100
st=$(xsim_kill xenblkd3 TERM 20)
[ "$st" = 0 ] || xsim_fail "second handover: exit status $st"
XSIM_DAEMON_NAME=xenblkd4 xsim_daemon --kinds qdisk
served 100
touch "$XSIM_TMP/stop"
st=$(xsim_wait_exit fe 120) || true
[ "$st" = 0 ] || xsim_fail "the workload failed across the restarts (status $st)"
for n in xenblkd2 xenblkd3 xenblkd4; do
    grep -q "domain 3 qdisk/51712: resumed in state Connected" "$XSIM_LOGDIR/$n.log" ||
        xsim_fail "$n did not resume the device"
done
grep -q "workload verify: stopping after" "$XSIM_LOGDIR/fe.log" || xsim_fail "the workload did not stop when asked"
/usr/bin/env python3 - "$XSIM_TMP/s.json" <<'PY' || xsim_fail "frontend counters"
import json, sys
d = json.load(open(sys.argv[1]))["disks"][0]
assert d["connects"] == 1, d["connects"]            # never reconnected
# Every pair started was written and read back; the four instances
# served at least 100 requests each.
rq = d["requests"]
assert rq["read"] == rq["write"] and rq["read"] >= 100, rq
assert d["responses"]["okay"] == rq["read"] + rq["write"], (d["responses"], rq)
assert d["verify_errors"] == 0 and d["protocol_errors"] == 0 and d["errors"] == 0, d
PY
# The backend's state, as xenstored saw it written: Connected once, then
# nothing until the frontend closed.
awk -v be="$be/state" -v fe="$fe/state" '
    $5 == "WRITE" && $6 == "(" be { v = $7; sub(/\)$/, "", v); print "be", v }
    $5 == "WRITE" && $6 == "(" fe { v = $7; sub(/\)$/, "", v); print "fe", v }
' "$XSIM_LOGDIR/xenstored-trace.log" >"$XSIM_TMP/states"
awk '
    $1 == "be" && $2 == 4 { n4++ }
    $1 == "fe" && $2 == 5 { closing = 1 }
    $1 == "be" && n4 && $2 != 4 && !closing { bad = bad " " $2 }
    END {
        if (n4 != 1) { print "backend state written Connected " n4 " times"; exit 1 }
        if (bad != "") { print "backend state left Connected:" bad; exit 1 }
    }' "$XSIM_TMP/states" || { cat "$XSIM_TMP/states"; xsim_fail "the backend state did not stay Connected"; }
xsim_log PASS
