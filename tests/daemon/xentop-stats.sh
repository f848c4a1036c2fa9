#!/bin/bash
# xentop (Xen >= 4.19) shows a vbd3 disk from the backend key kthread-pid
# and /dev/shm/td3-<pid>/vbd-<domid>-<devid> (tapdisk3's 96-byte version 1
# layout): the daemon publishes both at Connected, in a directory no other
# user can have planted, the counters follow the I/O and survive a
# reconnect, and the file goes away with the device.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
fe=$top_builddir/tests/frontend/xsim-blkfront
disk=$(make_disk disk.img 16)
xsim_add_disk vbd3 5 xvda "aio:$disk"
xsim_daemon --kinds vbd3,qdisk
be=$(be_dir vbd3 5 51712)
xsim_wait_key "$be/state" 2
xsim_hotplug_connected vbd3 5 xvda
pid=$(xsim_pid xenblkd)
shm=/dev/shm/td3-$pid/vbd-5-51712

# /dev/shm is world-writable: an unprivileged user can make the daemon's
# td3-<pid> before its first vbd3 disk connects, with the disk's file in
# it.  Mapped, that file could be truncated under the daemon (SIGBUS) or
# fed to xentop: the daemon must replace both with its own private ones.
setpriv --reuid=65534 --regid=65534 --clear-groups bash -c \
    "mkdir -m 0777 /dev/shm/td3-$pid && touch $shm && chmod 0666 $shm" ||
    xsim_fail "could not plant the unprivileged user's directory"
check "planted directory is the user's" [ "$(stat -c %u "$(dirname "$shm")")" = 65534 ]

# u64 FIELD-INDEX: the little-endian u64 at offset 8*INDEX of the file.
u64() { od -An -t u8 -j $((8 * $1)) -N 8 "$shm" | tr -d ' '; }
# wait_u64 INDEX MIN: until the counter reaches MIN (updated every second).
wait_u64() {
    local end
    end=$(xsim__deadline 10)
    until [ "$(u64 "$1")" -ge "$2" ]; do
        xsim__past "$end" && xsim_fail "counter $1 is $(u64 "$1"), want >= $2"
        sleep 0.1
    done
}

# jnum FILE KEY: the first number after "KEY": in a frontend stats file.
jnum() { grep -o "\"$2\": [0-9]*" "$1" | head -n1 | grep -o '[0-9]*$'; }

# The frontend holds its disk until the test has looked at the file.
"$fe" --domid 5 --vdev 51712 --workload write --count 20 --bs 16384 --qd 4 --hold 300 \
    --hold-until "$XSIM_TMP/fe1.release" --close \
    --stats-json "$XSIM_TMP/w.json" >"$XSIM_LOGDIR/fe1.log" 2>&1 &
fepid=$!
xsim_wait_key "$be/state" 4
expect_key "$be/kthread-pid" "$pid"
check "stats file exists" [ -f "$shm" ]
check "stats file is private (0600)" [ "$(stat -c %a "$shm")" = 600 ]
check "stats directory is private (0700)" [ "$(stat -c %a "$(dirname "$shm")")" = 700 ]
check "stats directory and file are the daemon's" \
    [ "$(stat -c %u "$(dirname "$shm")") $(stat -c %u "$shm")" = "$(id -u) $(id -u)" ]
wait_log "/dev/shm/td3-$pid was made by another user"
setpriv --reuid=65534 --regid=65534 --clear-groups truncate -s 0 "$shm" 2>/dev/null &&
    xsim_fail "an unprivileged user truncated the mapped stats file"
check "at least 96 bytes" [ "$(stat -c %s "$shm")" -ge 96 ]
check "version 1" [ "$(od -An -t u4 -N 4 "$shm" | tr -d ' ')" = 1 ]
wait_u64 6 20        # write_reqs_submitted, while connected
expect_key "$be/state" 4
touch "$XSIM_TMP/fe1.release"
wait $fepid || { cat "$XSIM_LOGDIR/fe1.log"; xsim_fail "frontend workload failed"; }
xsim_wait_key "$be/state" 6
writes=$(jnum "$XSIM_TMP/w.json" write)
wbytes=$(jnum "$XSIM_TMP/w.json" bytes_written)
check "write requests: xentop $(u64 6) = frontend $writes" [ "$(u64 6)" = "$writes" ]
check "write sectors: xentop $(u64 8) = frontend $((wbytes / 512))" [ "$(u64 8)" = $((wbytes / 512)) ]
check "no reads counted" [ "$(u64 2)" = 0 ]

# Reconnect and read: the counters carry on from where they were.
fe_state 5 51712 1
xsim_wait_key "$be/state" 2
"$fe" --domid 5 --vdev 51712 --workload read --count 10 --bs 4096 --close \
    --stats-json "$XSIM_TMP/r.json" >"$XSIM_LOGDIR/fe2.log" 2>&1 ||
    { cat "$XSIM_LOGDIR/fe2.log"; xsim_fail "read workload failed"; }
reads=$(jnum "$XSIM_TMP/r.json" read)
rbytes=$(jnum "$XSIM_TMP/r.json" bytes_read)
check "read requests: xentop $(u64 2) = frontend $reads" [ "$(u64 2)" = "$reads" ]
check "read sectors: xentop $(u64 4) = frontend $((rbytes / 512))" [ "$(u64 4)" = $((rbytes / 512)) ]
check "writes kept across the reconnect" [ "$(u64 6)" = "$writes" ]

# A qdisk is not a vbd3: no kthread-pid (xentop would misread it).
xsim_add_disk qdisk 6 xvda "aio:$(make_disk q.img 8)"
xsim_wait_key "$(be_dir qdisk 6 51712)/state" 2
"$fe" --domid 6 --vdev 51712 --workload write --count 2 --close >"$XSIM_LOGDIR/fe3.log" 2>&1 ||
    xsim_fail "qdisk workload failed"
expect_absent "$(be_dir qdisk 6 51712)/kthread-pid"
check "no stats file for the qdisk" [ ! -e "/dev/shm/td3-$pid/vbd-6-51712" ]

# Removing the device removes its file; the daemon's directory goes with
# the last one.
xsim_remove_disk vbd3 5 xvda || xsim_fail "removal did not close"
wait_log "domain 5 vbd3/51712: backend directory removed, device freed"
check "stats file removed" [ ! -e "$shm" ]
check "stats directory removed" [ ! -e "/dev/shm/td3-$pid" ]
exit 0
