#!/bin/bash
# The production daemon under valgrind memcheck, end to end: a verified
# workload, a SIGTERM handover with a guest connected, a successor that
# resumes the ring from its journal and serves the guest until it closes,
# a second verified workload, a handover of an idle daemon.  Each
# instance must exit 0 with no invalid access, no use of uninitialised
# memory and no leak (definite or indirect): memcheck's --error-exitcode
# turns any of them into exit status 99.  Kept small: memcheck is slow.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
command -v valgrind >/dev/null || xsim_skip "valgrind is not installed (tests/deps/faults.txt)"
bin=$top_builddir/src/xenblkd
# Not "ldd | grep -q": under pipefail, ldd killed by SIGPIPE when grep
# quits at the first match would hide the sanitizer build.
libs=$(ldd "$bin" 2>/dev/null || true)
if [[ $libs == *libasan* || $libs == *libubsan* ]]; then
    xsim_skip "the daemon is built with sanitizers: memcheck cannot run it"
fi
xsim_start
export FE_HOLD_TIMEOUT=300
export XSIM_DAEMON_WRAPPER="valgrind --tool=memcheck --leak-check=full
    --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
    --error-exitcode=99 --track-origins=yes --num-callers=30
    --log-file=$XSIM_LOGDIR/valgrind-%p.log"

# vg_end NAME: stop the daemon started as NAME with SIGTERM (a handover),
# fail unless it exited 0 with a clean memcheck report.
vg_end() {
    local st log
    st=$(xsim_kill "$1" TERM 120)
    log=$XSIM_LOGDIR/valgrind-$2.log
    [ -s "$log" ] || xsim_fail "$1: no valgrind report ($log)"
    grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable" "$log" |
        sed "s/^/[$1] /" >&2 || true
    [ "$st" = 0 ] || { tail -n 60 "$log" >&2; xsim_fail "$1 under memcheck exited $st (99: memcheck found errors)"; }
    grep -q "ERROR SUMMARY: 0 errors" "$log" || { cat "$log" >&2; xsim_fail "$1: memcheck reported errors"; }
    xsim_log "ok: $1: memcheck clean, exit 0"
}

img=$(make_disk vg.img 8)
xsim_daemon --kinds vbd3 --max-queues 2
pid1=$(xsim_pid xenblkd)
vbd3_disk 5 51712 "$img" w
fe fill 5 --vdev 51712 --workload fill --gen 3 --span 2M --bs 64k --close --timeout 120
# A guest stays connected (two queues, persistent grants) across the handover.
fe_hold g5 5 --vdev 51712 --queues 2 --workload verify --count 64 --qd 8 --bs 16k --span 2M --hold 600 --timeout 120
vg_end xenblkd "$pid1"
expect_key "$(be_dir vbd3 5 51712)/state" 4

XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --kinds vbd3 --max-queues 2
pid2=$(xsim_pid xenblkd2)
wait_log "domain 5 vbd3/51712: .*resumed" 120 xenblkd2
fe_end g5                    # closes through the successor; grants checked
fe again 5 --vdev 51712 --workload verify --seed 7 --span 2M --count 64 --qd 8 --bs 16k --close --timeout 120
expect_js again "d['verify_errors']" 0 "d['responses']['error']" 0
vg_end xenblkd2 "$pid2"
exit 0
