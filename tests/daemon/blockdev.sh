#!/bin/bash
# Block devices as backing stores (a loop device; skipped where none can be
# set up): size from BLKGETSIZE64 in 512-byte sectors, logical and
# physical sector size from the device, discard from the device, read-only
# mode; for kind vbd, the device named by a hotplug script's
# physical-device (MAJ:MIN in hex).
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
command -v losetup >/dev/null || xsim_skip "losetup is not installed"
xsim_start
img=$(make_disk loop.img 8)
loopdev=$(losetup -f --show --sector-size 4096 "$img" 2>/dev/null) || xsim_skip "cannot set up a loop device here"
xsim_on_exit "losetup -d $loopdev"
[ -b "$loopdev" ] || xsim_fail "$loopdev is not a block device"

xsim_daemon --kinds qdisk,vbd
xsim_add_disk qdisk 5 xvda "phy:$loopdev"
be=$(be_dir qdisk 5 51712)
xsim_wait_key "$be/state" 2
guest_start 5
fe_write_rings 5 51712
fe_state 5 51712 3
xsim_wait_key "$be/state" 4
expect_key "$be/sectors" 16384
expect_key "$be/sector-size" 4096
expect_key "$be/physical-sector-size" 4096
expect_key "$be/info" 0
expect_key "$be/feature-discard" 1
g=$(xsim_read "$be/discard-granularity")
check "discard-granularity $g is at least the sector size" [ "$g" -ge 4096 ]
expect_key "$be/discard-alignment" "$(cat "/sys/block/${loopdev#/dev/}/discard_alignment")"
wait_fds_to "$loopdev" 1
check "image itself not opened" [ "$(daemon_fds_to "$img")" = 0 ]
fe_state 5 51712 6
xsim_wait_key "$be/state" 6
wait_fds_to "$loopdev" 0
wait_guest_released 5

# Read-only: no discard offered, VDISK_READONLY.
xsim_add_disk qdisk 6 xvda "$loopdev" r
be=$(be_dir qdisk 6 51712)
xsim_wait_key "$be/state" 2
expect_key "$be/feature-discard" 0
guest_start 6
fe_write_rings 6 51712
fe_state 6 51712 3
xsim_wait_key "$be/state" 4
expect_key "$be/info" 4
fe_state 6 51712 6
xsim_wait_key "$be/state" 6

# Kind vbd: the block script reported the device only as MAJ:MIN (hex).
majmin=$(printf '%x:%x' "0x$(stat -c %t "$loopdev")" "0x$(stat -c %T "$loopdev")")
xsim_add_disk vbd 7 xvda "$XSIM_TMP/not-opened.img"
be=$(be_dir vbd 7 51712)
xsim_wait_key "$be/state" 2
xsim_write "$be/physical-device" "$majmin" "$be/hotplug-status" connected
wait_fds_to "$loopdev" 1
expect_key "$be/state" 2
wait_log "domain 7 vbd/51712: opened $loopdev: 16384 sectors, sector size 4096/4096"
xsim_remove_disk vbd 7 xvda || xsim_fail "vbd device did not close"
wait_fds_to "$loopdev" 0
exit 0
