#!/bin/bash
# Issue 10, gap 1, measured: guest 5 discards the whole of its two large
# disks, a sparse file and a loop device over a sparse file (both on the
# test's filesystem), over and over, writing scattered blocks between
# rounds so that each discard has extents to free, while guest 6 reads
# 4 KiB at queue depth 1 from its own disk.  Guest 6's p50/p99 are taken
# alone, next to guest 5 doing the same without discards, and next to the
# discarder, in the same run, and the ratios printed:
# a figure to report, not a pass/fail criterion (the machine may be
# busy).  Asserted: every discard and every read of both guests is
# answered OKAY.  The deterministic proof that a discard no longer
# stops the loop is iso-discard-held.sh.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/hostile/iso-lib.sh"
source "$top_srcdir/tests/hostile/loop-lib.sh"
command -v jq >/dev/null || xsim_skip "jq is not installed"
[ -x "$top_builddir/src/xenblkd" ] || xsim_skip "xenblkd not built"
command -v losetup >/dev/null || xsim_skip "losetup is not installed"
xsim_start

FE=$top_builddir/tests/frontend/xsim-blkfront
SIZE_MB=4096
SECTORS=$((SIZE_MB * 2048))
make_disk a-file.img $SIZE_MB >/dev/null
make_disk a-loop.img $SIZE_MB >/dev/null
iso_loop ldev "$XSIM_TMP/a-loop.img"
xsim_add_disk vbd3 5 51712 "aio:$XSIM_TMP/a-file.img"
xsim_add_disk vbd3 5 51728 "aio:$ldev"
xsim_add_disk vbd3 6 51712 "aio:$(make_disk b.img 256)"
xsim_daemon --kinds vbd3
for d in "5 51712" "5 51728" "6 51712"; do
    set -- $d
    xsim_wait_key "$(be_dir vbd3 "$1" "$2")/state" 2
    xsim_hotplug_connected vbd3 "$1" "$2"
done

# Guest 6's data: written once, then only read.
"$FE" --domid 6 --vdev 51712 --workload fill --bs 128K --timeout 60 --close \
    >"$XSIM_LOGDIR/fill.log" 2>&1 || xsim_fail "guest 6 could not fill its disk"
# guest_b NAME: guest 6's QD1 reads; "p50 p99 n" on stdout; how long the
# daemon's loop iterations ran meanwhile goes to the log.
guest_b() {
    loop_snapshot "$XSIM_TMP/$1.loop0"
    "$FE" --domid 6 --vdev 51712 --workload read --expect-gen 1 --qd 1 --bs 4K --count 3000 \
        --timeout 60 -v --close --stats-json "$XSIM_TMP/$1.json" >"$XSIM_LOGDIR/$1.log" 2>&1 ||
        xsim_fail "guest 6 ($1) failed: $(tail -5 "$XSIM_LOGDIR/$1.log")"
    loop_snapshot "$XSIM_TMP/$1.loop1"
    loop_report "$XSIM_TMP/$1.loop0" "$XSIM_TMP/$1.loop1" "daemon loop during guest 6's $1 run" >&2
    iso_latency "$XSIM_TMP/$1.json"
}
read -r b50 b99 bn < <(guest_b alone)

# Guest 5's rounds: scattered 4 KiB writes over both disks, reconnect,
# again; with discards, each round also discards both whole disks.  The
# round without discards is the reference: what the writes and the
# reconnections alone cost guest 6.  Open-ended: the rounds go on until
# the test has measured guest 6 next to them and asks guest 5 to stop
# (stop_a), not for a number of rounds that has to outlast the
# measurement.
start_a() {
    local raw=()
    [ "$2" = discard ] && raw=(
        --raw "op=discard,disk=51712,sector=0,nr_sectors=$SECTORS,expect=okay,timeout=120000"
        --raw "op=discard,disk=51728,sector=0,nr_sectors=$SECTORS,expect=okay,timeout=120000")
    xsim_bg "$1" "$FE" --domid 5 --vdev 51712 --vdev 51728 --workload write --qd 16 --bs 4K \
        --count 2000 --timeout 120 --reconnect 100000000 --stop-when "$XSIM_TMP/$1.stop" -v "${raw[@]}"
}
# stop_a NAME: guest 5 (as NAME) ends its round (writes, then the round's
# discards) and starts no other; it must exit 0: every write and discard
# of every round answered OKAY.
stop_a() {
    local st
    xsim_running "$1" || xsim_fail "guest 5 ($1) ended before the test asked: $(tail -5 "$XSIM_LOGDIR/$1.log")"
    touch "$XSIM_TMP/$1.stop"
    st=$(xsim_wait_exit "$1" 240) || xsim_fail "guest 5 ($1) did not stop when asked"
    [ "$st" = 0 ] || xsim_fail "guest 5 ($1) failed (status $st): $(tail -5 "$XSIM_LOGDIR/$1.log")"
    grep -q "exists: no reconnect after cycle" "$XSIM_LOGDIR/$1.log" ||
        xsim_fail "guest 5 ($1) did not end on the test's request"
    xsim_log "guest 5 ($1) stopped after $(grep -c 'workload write: [0-9]* requests in' "$XSIM_LOGDIR/$1.log") round(s), exit 0"
}
# wait_rounds NAME N: until guest 5 (as NAME) started N connections.
wait_rounds() {
    local end
    end=$(xsim_deadline 120)
    until [ "$(grep -c 'workload write' "$XSIM_LOGDIR/$1.log" 2>/dev/null || true)" -ge "$2" ]; do
        xsim_past "$end" && xsim_fail "guest 5 ($1) did not get through $2 rounds"
        xsim_running "$1" || xsim_fail "guest 5 ($1) failed: $(tail -5 "$XSIM_LOGDIR/$1.log")"
        sleep 0.1
    done
}
# Discards answered so far (the guest prints one line per raw request;
# the daemon's counters restart at each reconnection).
discards() { grep -c '^raw vdev=.*status=0 ' "$XSIM_LOGDIR/guestA.log" || true; }

start_a writer plain
wait_rounds writer 2
read -r w50 w99 wn < <(guest_b writing)
stop_a writer

start_a guestA discard
end=$(xsim_deadline 120)
until [ "$(discards)" -gt 0 ]; do
    xsim_past "$end" && xsim_fail "guest 5 never finished a discard"
    xsim_running guestA || xsim_fail "the discarder failed: $(tail -5 "$XSIM_LOGDIR/guestA.log")"
    sleep 0.1
done
d0=$(discards)
read -r f50 f99 fn < <(guest_b discarding)
d1=$(discards)
stop_a guestA
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a ? b / a : 0 }'; }
xsim_log "guest 6 QD1 4 KiB reads alone:                   p50 ${b50} us, p99 ${b99} us ($bn reads)"
xsim_log "guest 6, guest 5 writing and reconnecting:       p50 ${w50} us, p99 ${w99} us ($wn reads)"
xsim_log "guest 6, guest 5 also discarding its whole disks: p50 ${f50} us, p99 ${f99} us ($fn reads)"
xsim_log "guest 6 p99 ratios: discarding/alone $(ratio "$b99" "$f99"), discarding/writing $(ratio "$w99" "$f99")"
xsim_log "whole-disk discards of guest 5 answered during guest 6's run: $((d1 - d0))"
grep -q "expected status\|failed with status" "$XSIM_LOGDIR/guestA.log" &&
    xsim_fail "a discard of guest 5 failed: $(grep -m1 "expected status\|failed with status" "$XSIM_LOGDIR/guestA.log")"
xsim_log PASS
