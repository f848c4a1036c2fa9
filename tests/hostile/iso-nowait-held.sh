#!/bin/bash
# Issue 10, gap 1: a read/write that would block inside io_submit() must
# not stop the daemon's loop.  Guest 5's disk is a loop device over a FUSE
# file (tests/daemon/fuse-hold.py) with its request queue cut to 4 tags; a
# write of the test's own is held in the storage, so every request of that
# device waits in the loop driver, holding its tag.  Guest 5 writes 16
# random blocks at once: from the 4th on there is no tag left, and without
# RWF_NOWAIT io_submit() slept for one with the whole daemon (the control
# socket stopped answering, no other guest was served).  Now the kernel
# answers EAGAIN, the worker pool takes those writes, and guest 6
# completes a verified workload while guest 5's storage is still held.
# Every write of guest 5 is answered OKAY once the storage lets go.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/hostile/iso-lib.sh"
[ -x "$top_builddir/src/xenblkd" ] || xsim_skip "xenblkd not built"
iso_need_fuse
xsim_start

FE=$top_builddir/tests/frontend/xsim-blkfront
iso_fuse_mount 64 32768
iso_loop dev "$ISO_MNT/disk.img"
echo 4 >"/sys/block/${dev#/dev/}/queue/nr_requests" 2>/dev/null ||
    xsim_skip "cannot set the request queue depth of $dev"
xsim_add_disk vbd3 5 51712 "aio:$dev"
xsim_add_disk vbd3 6 51712 "aio:$(make_disk b.img 64)"
xsim_daemon --kinds vbd3
for d in 5 6; do
    xsim_wait_key "$(be_dir vbd3 $d 51712)/state" 2
    xsim_hotplug_connected vbd3 $d 51712
done

iso_hold_writes 1 "$dev"
xsim_bg guestA "$FE" --domid 5 --vdev 51712 --bench randwrite --bs 4K --qd 16 --seconds 1 \
    --timeout 120 -v
iso_wait_stats 5 'len(rings) == 1 and rings[0]["in_flight"] == 16' \
    "guest 5 had 16 writes in flight (the control socket answers)"
xsim_log "ok: guest 5 holds 16 writes on a device with 4 tags; the control socket answers"

iso_neighbour_verify 100 "guest 5's writes were"

iso_release
iso_writes_answered
xsim_log PASS
