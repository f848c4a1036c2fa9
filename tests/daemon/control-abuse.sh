#!/bin/bash
# The control socket cannot hurt the daemon or its guests: while a guest
# runs verified workloads back to back, tests/daemon/ctl-abuse.py holds an
# idle connection, opens 100 more (the 65th and later are refused), sends
# over-long lines, malformed requests and a flood of requests it never
# reads the replies of, and opens and closes connections in a storm.
# Every one gets its answer (or is dropped), the daemon keeps answering,
# its memory stays within a bound, no connection is left over, the idle
# one is closed after 60 s, and every workload run completed verified.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
fe=$top_builddir/tests/frontend/xsim-blkfront
# A sanitizer build keeps freed memory in quarantine: keep it small, so
# that the RSS bound measures what the daemon holds.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4
disk=$(make_disk disk.img 64)
xsim_add_disk qdisk 5 xvda "aio:$disk"
xsim_daemon --kinds qdisk
be=$(be_dir qdisk 5 51712)
xsim_wait_key "$be/state" 2

# Verified workloads back to back until the abuse is over, so that one is
# running whatever the abuse does and however long it takes.
(
    n=0
    while :; do
        n=$((n + 1))
        "$fe" --domid 5 --vdev xvda --workload verify --count 300 --bs 65536 --qd 8 \
            --seed "$n" --close >"$XSIM_LOGDIR/fe-$n.log" 2>&1 ||
            { echo "$n" >"$XSIM_TMP/fe.failed"; exit 1; }
        echo "$n" >"$XSIM_TMP/fe.runs"
        [ -e "$XSIM_TMP/abuse.done" ] && exit 0
    done
) &
loop=$!
xsim_wait_key "$be/state" 4

# The RSS bound: the abuse leaves the daemon's memory where it was, give
# or take allocator caches; without the unread-replies bound the flood
# alone adds about 28 MiB.  ASan's allocator (redzones, shadow, per-size
# caches) adds more of its own.
bound=$((16 << 20))
# Not "ldd | grep -q": under pipefail, ldd killed by SIGPIPE when grep
# quits at the first match would make the test miss the sanitizer build.
case $(ldd "$top_builddir/src/xenblkd") in *libasan*) bound=$((48 << 20)) ;; esac
rc=0
python3 "$top_srcdir/tests/daemon/ctl-abuse.py" "$XSIM_TMP/control.sock" "$(xsim_pid xenblkd)" \
    "$bound" "$XSIM_TMP/abuse.done" || rc=$?
touch "$XSIM_TMP/abuse.done"
wait "$loop" || { cat "$XSIM_LOGDIR/fe-$(cat "$XSIM_TMP/fe.failed").log"; xsim_fail "a verified workload failed"; }
check "the abuse checks passed" [ "$rc" = 0 ]
check "the daemon is running" xsim_running xenblkd
runs=$(cat "$XSIM_TMP/fe.runs")
check "$runs verified workload run(s) completed, the last one after the abuse" [ "$runs" -ge 1 ]
wait_log "does not read its replies .* dropped"
wait_log "control: client pid [0-9]+ uid 0 idle for 60 s, closed"
! grep -q "AddressSanitizer\|runtime error" "$XSIM_LOGDIR/xenblkd.log" || xsim_fail "sanitizer report"
exit 0
