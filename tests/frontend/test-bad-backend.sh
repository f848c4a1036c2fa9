#!/bin/bash
# The frontend is strict about what the backend answers: out-of-order
# responses are fine, but a duplicated response, a wrong operation, an id
# it never used, a response producer more than a ring ahead, or a grant the
# backend keeps mapped after answering (persistent grants off), or a
# backend going Closed with requests unanswered must each fail the run
# with a message naming the problem.  The backend is
# evil-backend, driven through the simulated grant table / event channels.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
xsim_start

FE="$top_builddir/tests/frontend/xsim-blkfront"
EVIL="$top_builddir/tests/frontend/evil-backend"
fails=0
bad() { xsim_log "FAIL: $*"; fails=$((fails + 1)); }
domid=10

# run MODE WANT_STATUS PATTERN FRONTEND_ARGS...
run() {
    local mode=$1 want=$2 pattern=$3 st=0
    shift 3
    domid=$((domid + 1))
    xsim_add_disk vbd "$domid" 51712 "$XSIM_TMP/none.img"
    xsim_bg "evil-$mode" "$EVIL" "/local/domain/0/backend/vbd/$domid/51712" \
        "/local/domain/$domid/device/vbd/51712" "$domid" "$mode"
    "$FE" --domid "$domid" --vdev 51712 --timeout 5 --close "$@" 2>"$XSIM_TMP/$mode.err" || st=$?
    if [ "$st" != "$want" ]; then
        bad "$mode: frontend exit status $st, expected $want: $(head -5 "$XSIM_TMP/$mode.err")"
    elif [ -n "$pattern" ] && ! grep -qE -- "$pattern" "$XSIM_TMP/$mode.err"; then
        bad "$mode: no /$pattern/ in: $(head -5 "$XSIM_TMP/$mode.err")"
    fi
    st=$(xsim_wait_exit "evil-$mode" 20) || true
    [ "$st" = 0 ] || bad "$mode: evil-backend exited with $st (see its log)"
}

run ok 0 '' --workload write --count 200 --qd 32
run reorder 0 '' --workload write --count 200 --qd 32
run dup 1 'duplicate or stale response.*slot [0-9]+ has no request in flight' --workload write --count 50 --qd 4
run wrong-op 1 'wrong operation.*expected operation 1 \(write\), got 2' --workload write --count 50
run bad-id 1 'unexpected id' --workload write --count 50
run overflow 1 'response producer overflow: rsp_prod [0-9]+ is more than a ring \(32\) ahead' --workload write --count 50
# A backend that goes Closed with requests in flight: the frontend fails at
# once and says why (the stall timeout, 20 s here, would say "no response").
run close-midway 1 'backend Closed with [0-9]+ request\(s\) in flight' \
    --workload write --count 50 --qd 8 --timeout 20
run keep-mapped 1 'cannot end access to grant [0-9]+ \(request grant after its response\).*still has it mapped' \
    --workload write --count 20 --no-indirect

[ "$fails" -eq 0 ] || xsim_fail "$fails check(s) failed"
xsim_log "PASS"
