#!/bin/bash
# Review finding: on exit after the shutdown drain timeout the daemon
# closed the disks' file descriptors before its worker pool had stopped,
# so a worker still running (or starting) a job used a closed fd, or one
# already reused for another file.  Guest 5's whole-disk DISCARD is held
# in a worker (BLKDISCARD on a loop device over tests/daemon/fuse-hold.py,
# behind a write of the test's own that the storage holds); the daemon
# gets SIGTERM, gives up draining after XBD_HANDOVER_TIMEOUT (15 s), and
# must then wait for the running job with the loop device still open.
# Once the storage lets go the daemon exits.
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
xsim_daemon --kinds vbd3
xsim_wait_key "$(be_dir vbd3 5 51712)/state" 2
xsim_hotplug_connected vbd3 5 51712

iso_hold_discard "$dev"
xsim_log "ok: guest 5's discard is held in a worker"

kill -TERM "$(xsim_pid xenblkd)"
wait_log 'shutdown timed out' 40
# Whichever comes first: the daemon says it waits for the worker, or it
# lets go of the loop device (the bug).
pat='worker job\(s\) dropped before they started; waiting for those running before the disks are closed'
end=$(xsim_deadline 20)
until grep -Eq -- "$pat" "$XSIM_LOGDIR/xenblkd.log"; do
    xsim_running xenblkd || xsim_fail "the daemon exited while a worker still ran guest 5's discard"
    [ "$(daemon_fds_to "$dev")" -ge 1 ] ||
        xsim_fail "the daemon closed $dev while a worker still ran a discard on it"
    xsim_past "$end" && xsim_fail "the daemon never said it waits for its workers"
    sleep 0.05
done
n=$(daemon_fds_to "$dev")
[ "$n" -ge 1 ] || xsim_fail "the daemon closed $dev while a worker still ran a discard on it"
xsim_log "ok: the daemon waits for the running worker with $dev still open ($n fd)"

iso_release
st=$(xsim_wait_exit xenblkd 60) || xsim_fail "the daemon did not exit once the storage let go"
xsim_log "ok: the daemon exited (status $st) once the worker was done"
xsim_log PASS
