#!/bin/bash
# What a ring counts while it drains stays in its device's totals.  A
# write of guest 5 is held in its storage (fuse-hold.py under a loop
# device) when the frontend closes; the storage then fails it (EIO), so
# the request completes, with an I/O error, during the drain.  Once the
# device is Closed, the xentop counters of the disk (vbd3:
# /dev/shm/td3-<pid>/vbd-<domid>-<devid>) must count that error.
#
# Why xentop's file: the control socket's stats show a device's rings,
# and a closed device has none; the file stays, with the disk's totals,
# until the device is removed, and is what an administrator reads (xentop)
# after a disconnect.  Before the fix the device took its rings' counters
# when it stopped them, before the drain: the error was lost for the rest
# of the device's life.
#
# The guest itself is killed once its write is held, and the test writes
# the frontend's Closing and Closed as its blkfront would: a live
# reference frontend waits for its requests before it closes.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
source "$top_srcdir/tests/faults/lib.sh"
fuse_requirements
xsim_start
sector=64
fuse_disk d5 16 $((sector * 512))       # the write at sector 64 can be held
ctl=$XSIM_TMP/d5.ctl
xsim_daemon --kinds vbd3
pid=$(xsim_pid xenblkd)
be=$(be_dir vbd3 5 51712)
shm=/dev/shm/td3-$pid/vbd-5-51712
vbd3_disk 5 51712 "$FUSE_DEV"

# u64 INDEX: the little-endian u64 at offset 8*INDEX of the xentop file
# (tapdisk3's layout, src/stats.c: 6 write requests, 10 I/O errors).
u64() { od -An -t u8 -j $((8 * $1)) -N 8 "$shm" | tr -d ' '; }

touch "$ctl/hold"
held_write g5 "$ctl" $sector --gen 1 --timeout 600
kill_guest g5
check "the daemon has guest 5's write in flight" [ "$(ctl_stats_sum 5 "r['in_flight']")" = 1 ]
check "no I/O error so far" [ "$(ctl_stats_sum 5 "r['errors']['io']")" = 0 ]

# The frontend closes; its write is still held, so the rings drain.
fe_state 5 51712 5
xsim_wait_key "$be/state" 5 || xsim_fail "no Closing after the frontend's Closing"
fe_state 5 51712 6
check "the held write is still in the storage" [ ! -e "$ctl/released" ]

# The storage fails the write as it lets it go: the request completes
# with an error during the drain, and only then can the device go Closed.
echo "$((sector * 512)) 4096" > "$ctl/eio-write"
rm "$ctl/hold"
xsim_wait_key "$be/state" 6 20 || xsim_fail "the device did not reach Closed once its write completed"
check "the storage failed the held write" grep -q "^write $((sector * 512)) 4096\$" "$ctl/eio-log"
check "xentop's file is still there for the closed device" [ -f "$shm" ]
check "xentop counts the write ($(u64 6))" [ "$(u64 6)" = 1 ]
check "xentop counts the I/O error of the drain ($(u64 10))" [ "$(u64 10)" = 1 ]

exit 0
