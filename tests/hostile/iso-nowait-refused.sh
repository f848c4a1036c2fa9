#!/bin/bash
# A backing store that refuses RWF_NOWAIT must not have its I/O run in the
# daemon's loop.  Guest 5's disk is a file on a FUSE mount itself
# (tests/daemon/fuse-hold.py, no loop device): FUSE is a network
# filesystem for backing.c, so the file is opened without O_DIRECT, and
# FUSE refuses RWF_NOWAIT.  Guest 5 writes its first 16 blocks at once;
# the 9th is held in the FUSE server.  Before, every write of such a store
# went to io_submit() without the flag, which did the write itself: the
# loop slept in the FUSE server with the held write, the control socket
# stopped answering (iso_wait_stats fails after 10 s) and no other guest
# was served.  Now they run in the worker pool (engine "offloaded"), and
# guest 6 completes a verified workload while guest 5's write is held.
# Every write of guest 5 is answered OKAY once the storage lets go.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/hostile/iso-lib.sh"
[ -x "$top_builddir/src/xenblkd" ] || xsim_skip "xenblkd not built"
iso_need_fuse
xsim_start

# The 9th 4 KiB block is held.
iso_fuse_mount 64 32768
xsim_add_disk vbd3 5 51712 "aio:$ISO_MNT/disk.img"
xsim_add_disk vbd3 6 51712 "aio:$(make_disk b.img 64)"
xsim_daemon --kinds vbd3
for d in 5 6; do
    xsim_wait_key "$(be_dir vbd3 $d 51712)/state" 2
    xsim_hotplug_connected vbd3 $d 51712
done
wait_log "disk.img: on a network filesystem and direct-io-safe is not set"

touch "$ISO_CTL/hold"
# Sequential over the first 64 KiB at QD16: blocks 0-15 go out at once,
# the 9th among them, and the run goes on (wrapping) until told to stop.
xsim_bg guestA "$top_builddir/tests/frontend/xsim-blkfront" --domid 5 --vdev 51712 \
    --bench write --bs 4K --qd 16 --span 65536 --seconds 300 --stop-when "$XSIM_TMP/stop5" \
    --timeout 120 -v
iso_wait_held 1
iso_wait_stats 5 'len(rings) == 1 and rings[0]["in_flight"] == 16' \
    "guest 5 had 16 writes in flight, one held in its storage"
xsim_log "ok: guest 5 holds 16 writes on a FUSE file; the control socket answers"
# Named by its path: the administrator must know which disk it is.
wait_log "backing store $ISO_MNT/disk.img refuses RWF_NOWAIT writes \(.*\): they run in the worker pool"

iso_neighbour_verify 100 "guest 5's write was"

touch "$XSIM_TMP/stop5"
iso_release
iso_writes_answered
xsim_log PASS
