#!/bin/bash
# A block device opened without O_DIRECT (direct-io = no) refuses
# RWF_NOWAIT for writes (buffered block-device writes have no non-blocking
# form), so its writes must run in the worker pool like those of any store
# that refuses it.  The exception for stores in memory (tmpfs, ramfs) must
# not catch it: fstatfs() of a device node answers for devtmpfs, whose
# magic is tmpfs's, and a block device taken for "in memory" had every
# write after the first submitted from the loop every guest shares.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/hostile/iso-lib.sh"
[ -x "$top_builddir/src/xenblkd" ] || xsim_skip "xenblkd not built"
command -v losetup >/dev/null || xsim_skip "losetup is not installed"
xsim_start

iso_loop dev "$(make_disk bd.img 16)"
xsim_add_disk vbd3 5 51712 "aio:$dev"
xsim_daemon --kinds vbd3 --no-direct-io
xsim_wait_key "$(be_dir vbd3 5 51712)/state" 2
xsim_hotplug_connected vbd3 5 51712

xsim_bg guestA "$top_builddir/tests/frontend/xsim-blkfront" --domid 5 --vdev 51712 \
    --bench write --bs 4K --qd 8 --span 1048576 --seconds 300 --stop-when "$XSIM_TMP/stop5" \
    --timeout 120
wait_log "backing store $dev refuses RWF_NOWAIT writes \(.*\): they run in the worker pool"
# All of them, not the first only: 64 writes through the pool.
iso_wait_stats 5 'len(rings) == 1 and rings[0]["engine"]["offloaded"] >= 64' \
    "64 of guest 5's writes to $dev ran in the worker pool"
touch "$XSIM_TMP/stop5"
st=$(xsim_wait_exit guestA 60) || true
[ "$st" = 0 ] || xsim_fail "guest 5's writes failed (status $st): $(tail -5 "$XSIM_LOGDIR/guestA.log")"
! grep -q "is in memory" "$XSIM_LOGDIR/xenblkd.log" ||
    xsim_fail "a block device was taken for a store in memory: $(grep 'in memory' "$XSIM_LOGDIR/xenblkd.log")"
xsim_log PASS
