#!/bin/bash
# Issue 10, gap 2: one guest at a queue depth above the kernel's AIO
# context (1024) on storage that does not answer must not starve another
# guest.  Guest 5 has two disks, each a loop device over one FUSE file
# (tests/daemon/fuse-hold.py) held by a write of the test's own, so every
# request of guest 5 waits in the loop driver; guest 5 keeps 2 x 1024
# reads in flight (2 queues of 512 slots per disk).  Guest 6's QD1 I/O
# on a plain file must complete meanwhile, and the control socket shows
# guest 5's I/O waiting for its share (engine.queued, share_waits).
# Before the shares, the engine handed guest 5's reads to the kernel in
# arrival order: io_submit() slept on the loop devices' 128 request tags
# (or the context filled), and the daemon froze.  Guest 6's latency,
# alone and next to the flood, is printed (not judged).
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/hostile/iso-lib.sh"
[ -x "$top_builddir/src/xenblkd" ] || xsim_skip "xenblkd not built"
iso_need_fuse
xsim_start

FE=$top_builddir/tests/frontend/xsim-blkfront
iso_fuse_mount 64 32768 2
iso_loop dev1 "$ISO_MNT/disk.img"
iso_loop dev2 "$ISO_MNT/disk2.img"
xsim_add_disk vbd3 5 51712 "aio:$dev1"
xsim_add_disk vbd3 5 51728 "aio:$dev2"
xsim_add_disk vbd3 6 51712 "aio:$(make_disk b.img 64)"
# Two queues per disk whatever this machine's CPU count.
xsim_daemon --kinds vbd3 --max-queues 2
for v in 51712 51728; do
    xsim_wait_key "$(be_dir vbd3 5 $v)/state" 2
    xsim_hotplug_connected vbd3 5 $v
done
xsim_wait_key "$(be_dir vbd3 6 51712)/state" 2
xsim_hotplug_connected vbd3 6 51712

# guest_b NAME: guest 6's QD1 verified workload; "p50 p99 n" on stdout.
guest_b() {
    "$FE" --domid 6 --vdev 51712 --workload verify --qd 1 --bs 4K --count 200 --timeout 30 -v \
        --close --stats-json "$XSIM_TMP/$1.json" >"$XSIM_LOGDIR/$1.log" 2>&1 ||
        xsim_fail "guest 6 ($1) failed: $(tail -5 "$XSIM_LOGDIR/$1.log")"
    iso_latency "$XSIM_TMP/$1.json"
}
read -r b50 b99 bn < <(guest_b alone)
xsim_log "guest 6 alone: QD1 4 KiB p50 ${b50} us, p99 ${b99} us ($bn requests)"

iso_hold_writes 2 "$dev1" "$dev2"
xsim_bg guestA "$FE" --domid 5 --vdev 51712 --vdev 51728 --queues 2 --ring-order 4 \
    --workload read --qd 1024 --bs 4K --count 1024 --timeout 120 -v
iso_wait_stats 5 'sum(r["in_flight"] for r in rings) > 1024 and sum(r["engine"]["queued"] for r in rings) > 0 and sum(r["engine"]["share_waits"] for r in rings) > 0' \
    "guest 5 had more than 1024 requests in flight"
xsim_log "ok: guest 5 holds $(iso_stats 5 'sum(r["in_flight"] for r in rings)') requests, $(iso_stats 5 \
    'sum(r["engine"]["queued"] for r in rings)') waiting for their share, share_waits $(iso_stats 5 \
    'sum(r["engine"]["share_waits"] for r in rings)'); the control socket answers"

read -r f50 f99 fn < <(guest_b flood)
[ "$(cat "$ISO_CTL/held-count")" = 2 ] && xsim_running guestA ||
    xsim_fail "guest 5's storage was no longer held when guest 6 finished"
xsim_log "ok: guest 6 next to the flood: QD1 4 KiB p50 ${f50} us, p99 ${f99} us ($fn requests)"
xsim_log "guest 6 p99 ratio flood/alone: $(awk -v a="$b99" -v b="$f99" 'BEGIN { printf "%.2f", a ? b / a : 0 }')"

iso_release
st=$(xsim_wait_exit guestA 120) || true
[ "$st" = 0 ] || xsim_fail "guest 5 failed once its storage let go (status $st): $(tail -5 "$XSIM_LOGDIR/guestA.log")"
xsim_log "ok: every request of guest 5 answered once its storage let go"
xsim_log PASS
