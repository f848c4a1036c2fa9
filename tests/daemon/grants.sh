#!/bin/bash
# Grant traffic in steady state, counted by the simulated hypervisor: with
# persistent grants, a second pass of writes and reads over the same pages
# (same request slots) makes no map call at all and copies nothing; without
# them, the ring pages are the only pages ever mapped and every data page
# is grant-copied.  With and without indirect descriptors (whose indirect
# pages are persistent grants too).  xbd-fe prints both snapshots and
# checks the data read back; the backing file is checked directly after.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
xsim_daemon --kinds vbd3
img=$(make_disk grants.img 8)
vbd3_disk 5 51712 "$img"


steady() {  # steady NAME ARGS...
    local name=$1
    shift
    xsim_log "steady state $name: $*"
    "$XBD_FEX" steady --domid 5 --vdev 51712 --span 2097152 "$@" >"$XSIM_LOGDIR/$name.log" 2>&1 ||
        { cat "$XSIM_LOGDIR/$name.log" >&2; xsim_fail "steady state $name"; }
    cat "$XSIM_LOGDIR/$name.log"
    pattern_check "$img" 2,0 --span 2097152 --min 2=4096
}

steady pers-ind --bs 64k
steady pers-noind --no-indirect --bs 40k --span 1638400
steady copy-ind --no-persistent --bs 64k
steady copy-noind --no-persistent --no-indirect --bs 40k --span 1638400

# The same through the command line frontend: 2000 random writes map at
# most each page of the 8 request slots once (17 data pages and one
# indirect page each, plus the ring), whatever the number of requests, and
# copy nothing: the indirect pages are persistent grants too (granted
# read-only, so each costs a failed writable map call first).
fe long 5 --vdev 51712 --workload write --count 2000 --bs 64k --qd 8 --seed 7 --close
expect_js long "d['requests']['write']" 2000 "g['pages_mapped'] <= 1 + 8 * 18" True \
    "g['map_calls'] <= 1 + 8 * 19" True "d['requests']['indirect'] > 0" True "g['copy_segs']" 0
exit 0
