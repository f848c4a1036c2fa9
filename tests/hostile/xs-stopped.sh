#!/bin/bash
# A stopped xenstored stops no guest's I/O (issue 10, gap 5): every
# xenstore round trip of the daemon runs on its xenstore thread
# (src/xs_worker.c), never on the loop that serves the rings.
#
# Guest 5 is connected and runs a bench of N reads that waits for a start
# file (xsim-blkfront --bench-start; a bench run itself uses no xenstore).
# With xenstored SIGSTOPped, the daemon is made to need xenstore: disk 5
# grows and SIGHUP makes the daemon re-check its size and tell the
# frontend, which takes a xenstore round trip; the test waits for the
# daemon's "changed size" line (logged just before that round trip), so
# the daemon is then waiting for xenstored, deterministically.  Only then
# do the reads start: all N must be answered while xenstored is still
# stopped (on a daemon that makes round trips on its loop, the loop sits
# in that read and the bench gives up on its no-response timeout).  The
# bench process itself lingers until the end: its exit unwatches, which
# needs xenstored.  Guest 6
# asks to connect while xenstored is stopped (its xenstore-write waits in
# xenstored's socket); after SIGCONT, its connect completes, and guest 5's
# frontend is told its new size.
# Then SIGTERM with xenstored stopped again (and the daemon waiting for
# it): the handover needs no xenstore, the exit waits for the xenstore
# thread at most 5 s, logs it, and the daemon exits 0.  No evaluation
# looked up a key its snapshot had not read (logged if one did).
# Reported, not asserted: the loop's longest iteration across the stop,
# and the reads' p50/p99.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/hostile/loop-lib.sh"
[ -x "$top_builddir/src/xenblkd" ] || xsim_skip "xenblkd not built"
XSIM_XENSTORED_TRACE=0 xsim_start

N=2000
FE=$top_builddir/tests/frontend/xsim-blkfront
img5=$(make_disk d5.img 16)
img6=$(make_disk d6.img 16)
xsim_add_disk vbd3 5 51712 "aio:$img5"
xsim_add_disk vbd3 6 51712 "aio:$img6"
xsim_daemon --kinds vbd3 --log-level info
for d in 5 6; do
    xsim_wait_key "$(be_dir vbd3 $d 51712)/state" 2
    xsim_hotplug_connected vbd3 $d 51712
done

# Guest 5: connected, waiting for the start file.
xsim_bg bench5 "$FE" --domid 5 --vdev 51712 --timeout 20 --bench randread --bs 4k \
    --qd 4 --seconds 600 --bench-count "$N" --bench-start "$XSIM_TMP/start" \
    --bench-json "$XSIM_TMP/bench5.json" --linger-until "$XSIM_TMP/linger"
xsim_wait_key "$(be_dir vbd3 5 51712)/state" 4
xsim_wait_key "$(fe_dir 5 51712)/state" 4
# Guest 6: its rings, not its state yet.
guest_start 6
fe_write_rings 6 51712

pid=$(cat "$XENSTORED_RUNDIR/xenstored.pid")
# Whatever ends the test, xenstored continues first: the harness's
# clean-up (a dump of the xenstore tree on failure) needs it.
trap 'rc=$?; kill -CONT "$pid" 2>/dev/null; (exit $rc); xsim__exit_trap' EXIT
loop_snapshot "$XSIM_TMP/l0"
kill -STOP "$pid"
xsim_log "xenstored (pid $pid) stopped"

# The daemon now needs xenstore: it is waiting for xenstored from here on.
truncate -s 32M "$img5"
kill -HUP "$(xsim_pid xenblkd)"
wait_log "domain 5 vbd3/51712: .*d5.img changed size: 32768 -> 65536 sectors$"
# Guest 6's connect request, stuck in xenstored's socket until SIGCONT.
xsim_bg fe6state xenstore-write "$(fe_dir 6 51712)/state" 3

touch "$XSIM_TMP/start"
# The bench writes its result once every read is answered (or one went
# unanswered for its --timeout); it exits only after SIGCONT (its clean-up
# unwatches).
end=$(xsim_deadline 60)
until [ -s "$XSIM_TMP/bench5.json" ]; do
    xsim_past "$end" && xsim_fail "guest 5's bench wrote no result"
    sleep 0.05
done
grep -q "^State:.*T (stopped)" "/proc/$pid/status" ||
    xsim_fail "xenstored was not stopped all along (test broken)"
done5=$(jq -r .requests "$XSIM_TMP/bench5.json")
[ "$done5" = "$N" ] || { tail -n 5 "$XSIM_LOGDIR/bench5.log" >&2
    xsim_fail "guest 5: $done5 of $N reads answered while xenstored was stopped"; }
xsim_log "ok: guest 5's $N reads were all answered with xenstored stopped" \
    "(p50 $(jq -r .lat_p50_us "$XSIM_TMP/bench5.json") us," \
    "p99 $(jq -r .lat_p99_us "$XSIM_TMP/bench5.json") us)"
loop_snapshot "$XSIM_TMP/l1"
loop_report "$XSIM_TMP/l0" "$XSIM_TMP/l1" "xenstored stopped, $N reads"

kill -CONT "$pid"
xsim_log "xenstored continued"
xsim_wait_key "$(be_dir vbd3 6 51712)/state" 4 30
xsim_log "ok: guest 6's connect, asked for while xenstored was stopped, completed"
wait_log "domain 5 vbd3/51712: told the connected frontend: sectors 65536"
expect_key "$(be_dir vbd3 5 51712)/sectors" 65536
xsim_log "ok: the evaluation that waited for xenstored ran once it answered"
touch "$XSIM_TMP/linger"
rc=$(xsim_wait_exit bench5 30)
[ "$rc" = 0 ] || { tail -n 5 "$XSIM_LOGDIR/bench5.log" >&2; xsim_fail "guest 5's bench failed (exit $rc)"; }
! grep -q "xenstore snapshot of" "$XSIM_LOGDIR/xenblkd.log" ||
    xsim_fail "an evaluation looked up a key its snapshot had not read (see xenblkd.log)"

# SIGTERM with xenstored stuck: the handover needs no xenstore, and the
# exit waits for the xenstore thread a bounded time, says so, exits 0.
kill -STOP "$pid"
xsim_log "xenstored stopped again"
truncate -s 48M "$img5"
kill -HUP "$(xsim_pid xenblkd)"
wait_log "domain 5 vbd3/51712: .*d5.img changed size: 65536 -> 98304 sectors$"
kill -TERM "$(xsim_pid xenblkd)"
rc=$(xsim_wait_exit xenblkd 60)
[ "$rc" = 0 ] || xsim_fail "xenblkd exited $rc after SIGTERM with xenstored stopped"
wait_log "xenstored did not answer within 5 s of the exit"
xsim_log "ok: SIGTERM with xenstored stopped: handed over, exit 0 within the bound"
! grep -q "AddressSanitizer\|LeakSanitizer\|runtime error" "$XSIM_LOGDIR/xenblkd.log" ||
    xsim_fail "sanitizer report in xenblkd.log"
