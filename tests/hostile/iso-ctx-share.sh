#!/bin/bash
# Disks on storage that hangs must not fill the kernel AIO context a
# healthy disk needs.  Each disk may have 64 I/Os in the kernel
# (max-inflight-per-device) and the engine's context holds 1024, so 16
# disks whose storage hangs (a SAN path lost under queue_if_no_path, a
# FUSE store) hold every slot of one context.  Guests 5 and 7 have 8
# disks each, every one a loop device over a FUSE file (fuse-hold.py)
# held by a write of the test's own, and keep 100 reads in flight per
# disk: 64 of each reach the kernel, 1024 in all, and stay there.  Guest
# 6's verified QD1 workload on a plain file, closed at the end, must
# complete meanwhile, and every held read must be answered once the
# storage lets go.  Before the engine's contexts followed the disks
# (io_aio.c ctx_follow_devices), guest 6 got no I/O into the kernel and
# its close hung in Closing until the release.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/hostile/iso-lib.sh"
[ -x "$top_builddir/src/xenblkd" ] || xsim_skip "xenblkd not built"
iso_need_fuse
xsim_start

FE=$top_builddir/tests/frontend/xsim-blkfront
NDISK=16                        # 1024 (the context) / 64 (per disk)
iso_fuse_mount 64 32768 "$NDISK"
declare -A VDEVS
devs=()
for ((k = 0; k < NDISK; k++)); do
    img=disk.img
    [ $k -gt 0 ] && img=disk$((k + 1)).img
    iso_loop dv "$ISO_MNT/$img"
    # The loop driver's default request tags: a reused loop device keeps
    # what an earlier test set (iso-nowait-held.sh leaves 4).
    echo 128 >"/sys/block/${dv#/dev/}/queue/nr_requests" ||
        xsim_skip "cannot give ${dv} 128 request tags"
    devs+=("$dv")
    dom=$((k < NDISK / 2 ? 5 : 7)) vdev=$((51712 + 16 * (k % (NDISK / 2))))
    xsim_add_disk vbd3 $dom $vdev "aio:$dv"
    VDEVS[$dom]+=" --vdev $vdev"
done
xsim_add_disk vbd3 6 51712 "aio:$(make_disk b.img 64)"
xsim_daemon --kinds vbd3 --max-queues 1
for dom in 5 7; do
    for vdev in ${VDEVS[$dom]//--vdev/}; do
        xsim_wait_key "$(be_dir vbd3 $dom $vdev)/state" 2
        xsim_hotplug_connected vbd3 $dom $vdev
    done
done
xsim_wait_key "$(be_dir vbd3 6 51712)/state" 2
xsim_hotplug_connected vbd3 6 51712

iso_hold_writes "$NDISK" "${devs[@]}"
per=$((NDISK / 2))
for dom in 5 7; do
    # shellcheck disable=SC2086
    xsim_bg guest$dom "$FE" --domid $dom ${VDEVS[$dom]} --ring-order 2 --workload read \
        --qd 100 --bs 4K --count 100 --timeout 300 -v
done
# Every disk at its share in the kernel (in flight, not waiting in the
# engine's queues): the 1024 slots one context has.
for dom in 5 7; do
    iso_wait_stats $dom "len(rings) == $per and sum(r['in_flight'] for r in rings) == $((per * 100)) and sum(r['in_flight'] - r['engine']['queued'] for r in rings) == $((per * 64))" \
        "guest $dom had 64 reads of each of its $per disks in the kernel"
done
xsim_log "ok: guests 5 and 7 hold $((NDISK * 64)) reads in the kernel on held storage"

"$FE" --domid 6 --vdev 51712 --workload verify --qd 1 --bs 4K --count 50 --timeout 30 -v \
    --close >"$XSIM_LOGDIR/guest6.log" 2>&1 ||
    xsim_fail "guest 6 on a plain file failed while $NDISK disks were held: $(tail -3 "$XSIM_LOGDIR/guest6.log")"
[ "$(cat "$ISO_CTL/held-count")" = "$NDISK" ] && xsim_running guest5 && xsim_running guest7 ||
    xsim_fail "the $NDISK disks were no longer held when guest 6 finished"
xsim_log "ok: guest 6 completed its verified workload and closed while $NDISK disks were held"

iso_release
for dom in 5 7; do
    st=$(xsim_wait_exit guest$dom 120) || true
    [ "$st" = 0 ] || xsim_fail "guest $dom failed once its storage let go (status $st): $(tail -5 "$XSIM_LOGDIR/guest$dom.log")"
done
xsim_log "ok: every held read answered once the storage let go"
xsim_log PASS
