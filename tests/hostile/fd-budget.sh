#!/bin/bash
# File descriptors (issue 10, gap 3): every queue a guest connects costs
# the daemon two fds (its grant device and its event channel), so a
# guest's appetite must not use up the descriptors every guest shares.
#
#  A. The per-disk budget: with disk-fds = 3 a disk is offered
#     (3 - 1) / 2 = 1 queue (multi-queue-max-queues), whatever max-queues
#     and the CPUs would give.  Fails without the cap (src/device.c: the
#     budget's queues_for_fds) on a host of 2 CPUs or more.
#  B. The reserve: once the daemon's fd limit leaves fewer than
#     XBD_FD_RESERVE (64) free beyond what a connect needs, the connect is
#     refused with the reason logged (src/device.c: fds_for_rings) and
#     the disk goes Closing; a guest already connected keeps working
#     (writes and reads a new generation over its connection meanwhile);
#     with the limit back, the refused guest connects and verifies.  The
#     limit is lowered on the running daemon (prlimit --pid) to exactly
#     its open fds + 64: without the reserve check, the connect would
#     succeed (64 fds are still free) and the test fails.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
[ -x "$top_builddir/src/xenblkd" ] || xsim_skip "xenblkd not built"
command -v prlimit >/dev/null || xsim_skip "prlimit is not installed (util-linux)"
XSIM_XENSTORED_TRACE=0 xsim_start

for d in 5 6; do xsim_add_disk qdisk $d 51712 "aio:$(make_disk d$d.img 8)"; done
xsim_daemon --kinds qdisk --disk-fds 3 --log-level info
pid=$(xsim_pid xenblkd)
for d in 5 6; do xsim_wait_key "$(be_dir qdisk $d 51712)/state" 2 30; done

# A: one queue per disk, from the fd budget.
xsim_log "$(getconf _NPROCESSORS_ONLN) CPU(s): max-queues alone would offer that many"
for d in 5 6; do expect_key "$(be_dir qdisk $d 51712)/multi-queue-max-queues" 1; done
xsim_log "ok: disk-fds = 3 offers 1 queue per disk"

# B: guest 5 connects and pauses with its connection up.
xsim_bg fe5 "$XBD_FEX" pause --domid 5 --vdev 51712 --gen 1 --timeout 120 \
    --ready "$XSIM_TMP/fe5.ready" --go "$XSIM_TMP/fe5.go"
end=$(xsim_deadline 60)
until [ -e "$XSIM_TMP/fe5.ready" ]; do
    xsim_running fe5 || { cat "$XSIM_LOGDIR/fe5.log" >&2; xsim_fail "guest 5 ended before connecting"; }
    xsim_past "$end" && xsim_fail "guest 5 never connected"
    sleep 0.05
done
expect_key "$(be_dir qdisk 5 51712)/state" 4

read -r soft hard < <(prlimit --pid "$pid" --nofile --noheadings --raw --output SOFT,HARD)
open_fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
low=$((open_fds + 64))
prlimit --pid "$pid" --nofile="$low:$hard" || xsim_fail "cannot lower the daemon's fd limit"
xsim_log "daemon fd limit lowered from $soft to $low ($open_fds open, 64 in reserve)"

# Guest 6 asks for its queue: refused, the reason logged, the disk Closing.
xsim_bg fe6a "$XBD_FE" --domid 6 --vdev 51712 --workload verify --count 4 --timeout 30
wait_log 'refusing to connect: 1 queues? need 2 file descriptors' 30
st=$(xsim_wait_exit fe6a 60) || xsim_fail "guest 6 still running after the refusal"
check "guest 6's connect failed (exit $st)" [ "$st" != 0 ]
be6=$(xenstore-read "$(be_dir qdisk 6 51712)/state")
check "guest 6's disk Closing or Closed (state $be6), not Connected" grep -qx '[56]' <<<"$be6"
check "no ring of guest 6 mapped" [ "$(grep -c '/dom6/' "/proc/$pid/maps" || true)" = 0 ]

# Guest 5 is unaffected: a new generation over its connection.
touch "$XSIM_TMP/fe5.go"
st=$(xsim_wait_exit fe5 120) || xsim_fail "guest 5 still running"
[ "$st" = 0 ] || { cat "$XSIM_LOGDIR/fe5.log" >&2; xsim_fail "guest 5's second generation failed (exit $st)"; }
xsim_log "ok: guest 5 wrote and read generation 2 while guest 6 was refused"

# With the limit back, guest 6 starts over and connects.
prlimit --pid "$pid" --nofile="$soft:$hard" || xsim_fail "cannot restore the daemon's fd limit"
xsim_bg fe6b "$XBD_FE" --domid 6 --vdev 51712 --workload verify --count 16 --close --timeout 60
st=$(xsim_wait_exit fe6b 120) || xsim_fail "guest 6 still running"
[ "$st" = 0 ] || { tail -n 20 "$XSIM_LOGDIR/fe6b.log" >&2; xsim_fail "guest 6 did not connect with the limit restored (exit $st)"; }
xsim_log "ok: guest 6 connected and verified once fds were available"
check "daemon still running" xsim_running xenblkd
exit 0
