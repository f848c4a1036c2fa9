#!/bin/bash
# Issue 10, gap 1: a guest's discard held in its storage must not stop
# the daemon serving anyone else.  Guest 5's disk is a loop device over a
# FUSE file (tests/daemon/fuse-hold.py); a write of the test's own holds
# the loop device, so guest 5's whole-disk DISCARD waits behind it inside
# BLKDISCARD for as long as the test wants.  Meanwhile guest 6 (a plain
# file) connects and completes a verified read/write workload, and the
# control socket answers.  Before the worker pool, BLKDISCARD ran in the
# event loop: the daemon froze until the storage let go, guest 6 could
# not even connect.  Its latency during the hold is printed (not judged).
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/hostile/iso-lib.sh"
[ -x "$top_builddir/src/xenblkd" ] || xsim_skip "xenblkd not built"
iso_need_fuse
xsim_start

iso_fuse_mount 64 32768
iso_loop dev "$ISO_MNT/disk.img"
xsim_add_disk vbd3 5 51712 "aio:$dev"
make_disk b.img 64 >/dev/null
xsim_daemon --kinds vbd3
xsim_wait_key "$(be_dir vbd3 5 51712)/state" 2
xsim_hotplug_connected vbd3 5 51712

iso_hold_discard "$dev"
xsim_log "ok: guest 5's discard is held in its storage; the control socket answers"

xsim_add_disk vbd3 6 51712 "aio:$XSIM_TMP/b.img"
xsim_wait_key "$(be_dir vbd3 6 51712)/state" 2
xsim_hotplug_connected vbd3 6 51712
iso_neighbour_verify 200 "guest 5's discard was"

iso_release
st=$(xsim_wait_exit guestA 60) || true
[ "$st" = 0 ] || xsim_fail "guest 5's discard was not answered once released (status $st): $(tail -5 "$XSIM_LOGDIR/guestA.log")"
off=$(iso_stats 5 'sum(r["engine"]["offloaded"] for r in rings)')
xsim_log "ok: guest 5's discard answered once its storage let go ($(grep -o 'status=[^ ]*' "$XSIM_LOGDIR/guestA.log" | head -1)), $off pool job(s)"
xsim_log PASS
