#!/bin/bash
# The exit's wait for the unmap worker is bounded (src/unmap_worker.h,
# XBD_UNMAP_EXIT_TIMEOUT): with a detached ring's unmaps held for good
# (XENSIM_GNTTAB_UNMAP_HOLD, tests/sim/CONTRACT.md), SIGTERM still ends
# the daemon with status 0, after a warning naming the mappings left to
# the kernel; without the bound the daemon never exits.  Also: the
# daemon's threads are named (top -H, ps -L), and the control socket's
# stats count the unmaps pending (daemon.unmaps).
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
daemon_unmaps_held --kinds vbd3
img=$(make_disk a.img 8)
be=$(be_dir vbd3 5 51712)
vbd3_disk 5 51712 "$img"

fe_hold a 5 --vdev 51712 --workload verify --count 64 --bs 64k --qd 8 --hold 300
mapped=$(in_use 5)
[ "$mapped" -gt 1 ] || xsim_fail "only $mapped grant(s) in use: persistent grants not kept"

# Thread names, as top -H and ps -L show them.
pid=$(xsim_pid xenblkd)
comms=$(cat /proc/"$pid"/task/*/comm)
xsim_log "daemon threads: $(tr '\n' ' ' <<<"$comms")"
for name in xbd-unmap xbd-xenstore xbd-io-0; do
    grep -qx "$name" <<<"$comms" || xsim_fail "no thread named $name"
done
xsim_log "ok: the unmap, xenstore and I/O pool threads are named"

# Held for good from here: the detached ring's unmaps never finish.
touch "$hold"
printf 'write %s/online 0\nwrite %s/state 5\n' "$be" "$be" | xsim_xs
xsim_wait_key "$be/state" 6 20 || xsim_fail "the backend did not reach Closed"
# The control socket's stats show what the worker still holds.
PYTHONPATH=$top_srcdir/tests/daemon python3 - "$XSIM_TMP/control.sock" <<'PY' || xsim_fail "stats do not show the pending unmaps"
import sys
from ctl import Client
d = Client(sys.argv[1]).call({"command": "stats"})["daemon"]["unmaps"]
print("stats: daemon.unmaps =", d)
assert d["rings_pending"] == 1, d
assert d["mappings_pending"] >= 2, d    # the grants' group(s) and the ring
PY
xsim_log "ok: stats show 1 ring and its mappings pending unmap"
kill -TERM "$pid"
wait_log "waiting for the unmaps of 1 stopped ring\(s\)" 20
# The bound is 15 s; the ceiling here only keeps a hang from blocking CI.
rc=$(xsim_wait_exit xenblkd 60) || xsim_fail "the daemon did not exit while unmaps were held"
[ "$rc" = 0 ] || xsim_fail "daemon exited $rc"
warned=$(grep -E "unmaps still pending [0-9.]+ s into the exit: leaving [1-9][0-9]* mapping\(s\) of 1 stopped ring\(s\) to the kernel" \
    "$XSIM_LOGDIR/xenblkd.log") || xsim_fail "no warning naming the mappings left"
xsim_log "daemon: $warned"
! grep -q "unmapped after the ring stopped" "$XSIM_LOGDIR/xenblkd.log" ||
    xsim_fail "an unmap batch finished while unmaps were held"
xsim_log "ok: SIGTERM ended the daemon with status 0 while unmaps were held, with the warning"
rm -f "$hold"
exit 0
