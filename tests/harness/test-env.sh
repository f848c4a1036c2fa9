#!/bin/bash
# tests/harness/env.sh does what tests rely on: disks appear with libxl's
# keys and permissions, removal follows libxl's protocol, waits time out,
# and background processes report their status and die with their group.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
xsim_start

expect() {  # expect PATH VALUE
    local got
    got=$(xsim_read "$1" 2>/dev/null) || xsim_fail "$1 missing (want '$2')"
    [ "$got" = "$2" ] || xsim_fail "$1 = '$got', want '$2'"
}
perms() {  # perms PATH: the node's permission list as xenstore-ls -p shows it
    local parent=${1%/*} base=${1##*/}
    xenstore-ls -p "$parent" | sed -n "s/^$base = \".*\" *[. ]*(\(.*\))\$/\1/p"
}
expect_perms() {
    local got
    got=$(perms "$1")
    [ "$got" = "$2" ] || xsim_fail "permissions of $1 are '$got', want '$2'"
}

# --- device ids ---
[ "$(xsim_vdev_to_devid xvda)" = 51712 ] || xsim_fail "xvda"
[ "$(xsim_vdev_to_devid xvdb)" = 51728 ] || xsim_fail "xvdb"
[ "$(xsim_vdev_to_devid xvda1)" = 51713 ] || xsim_fail "xvda1"
[ "$(xsim_vdev_to_devid xvdq)" = $(( (1 << 28) | (16 << 8) )) ] || xsim_fail "xvdq"
[ "$(xsim_vdev_to_devid xvdaa)" = $(( (1 << 28) | (26 << 8) )) ] || xsim_fail "xvdaa"
[ "$(xsim_vdev_to_devid 768)" = 768 ] || xsim_fail "numeric"
for v in xvda xvdb xvdp xvdq xvdz xvdaa xvdab; do
    [ "$(xsim_devid_to_vdev "$(xsim_vdev_to_devid $v)")" = $v ] || xsim_fail "round trip $v"
done

# --- a vbd3 disk, exactly as libxl writes it ---
xsim_add_disk vbd3 5 xvda "aio:$XSIM_TMP/d.img"
be=/local/domain/0/backend/vbd3/5/51712
fe=/local/domain/5/device/vbd/51712
expect $be/params "aio:$XSIM_TMP/d.img"
expect $be/script /etc/xen/scripts/block-tap
expect $be/frontend $fe
expect $be/frontend-id 5
expect $be/online 1
expect $be/removable 0
expect $be/bootable 1
expect $be/state 1
expect $be/dev xvda
expect $be/type vbd3
expect $be/mode w
expect $be/device-type disk
expect $be/discard-enable 1
expect $be/specification xen
expect $fe/backend $be
expect $fe/backend-id 0
expect $fe/state 1
expect $fe/virtual-device 51712
expect $fe/device-type disk
expect $fe/trusted 1
expect $fe/protocol x86_64-abi
expect /libxl/5/device/vbd/51712/frontend $fe
expect /libxl/5/device/vbd/51712/backend $be
# No key we did not ask for.
keys() { xenstore-list "$1" | LC_ALL=C sort | tr '\n' ' '; }
[ "$(keys $be)" = "bootable dev device-type discard-enable frontend frontend-id mode online params removable script specification state type " ] ||
    xsim_fail "unexpected backend keys: $(xenstore-list $be | tr '\n' ' ')"
[ "$(keys $fe)" = "backend backend-id device-type protocol state trusted virtual-device " ] ||
    xsim_fail "unexpected frontend keys: $(xenstore-list $fe | tr '\n' ' ')"
# Permissions: the backend dir is dom0's, the guest may read it; the
# frontend dir is the guest's, dom0 may read it; the domain dir is dom0's.
expect_perms $be n0,r5
expect_perms $be/state n0,r5
expect_perms $fe n5,r0
expect_perms $fe/state n5,r0
expect_perms /local/domain/5 n0,r5
expect_perms /local/domain/5/device n0,r5
expect_perms /local/domain/5/data n5
expect /local/domain/5/domid 5

# --- kinds, mode and extra keys ---
xsim_add_disk qdisk 6 51728 "aio:$XSIM_TMP/e.img" r direct-io-safe=1 '!discard-enable' fe:protocol=x86_32-abi 'fe:!trusted'
be6=/local/domain/0/backend/qdisk/6/51728
expect $be6/type qdisk
expect $be6/mode r
expect $be6/dev xvdb
expect $be6/direct-io-safe 1
! xsim_exists $be6/script || xsim_fail "qdisk must have no script"
! xsim_exists $be6/discard-enable || xsim_fail "!discard-enable did not drop the key"
! xsim_exists /local/domain/6/device/vbd/51728/trusted || xsim_fail "fe:!trusted did not drop the key"
expect /local/domain/6/device/vbd/51728/protocol x86_32-abi
xsim_add_disk vbd 6 xvdc /dev/loop0
expect /local/domain/0/backend/vbd/6/51744/type phy
expect /local/domain/0/backend/vbd/6/51744/script /etc/xen/scripts/block
xsim_hotplug_connected vbd 6 xvdc
expect /local/domain/0/backend/vbd/6/51744/hotplug-status connected

# --- waiting ---
xsim_wait_key $be/state 1 1 || xsim_fail "wait for a present value"
start=$(date +%s%N)
if xsim_wait_key $be/state 4 1 2>/dev/null; then xsim_fail "wait_key did not time out"; fi
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
# At least the timeout; the upper bound only catches a wait that never
# ends (a loaded machine may well make it several seconds).
[ "$elapsed" -ge 900 ] && [ "$elapsed" -lt 30000 ] || xsim_fail "1 s timeout took ${elapsed} ms"
# A write made after the wait read the key and found it absent: the
# waiter says when (each of its reads adds a line with its status to
# $reads), the writer then writes; the wait must read again to see it.
reads=$XSIM_TMP/wait-reads
: > "$reads"
sh -c 'until [ -s "$1" ]; do sleep 0.02; done; xenstore-write "$2" connected' \
    writer "$reads" $be/hotplug-status & writer=$!
(
    xenstore-read() { local rc=0; command xenstore-read "$@" || rc=$?; echo "$rc" >> "$reads"; return "$rc"; }
    xsim_wait_key $be/hotplug-status connected 5
) || xsim_fail "wait_key missed a later write"
wait "$writer"
[ "$(head -n 1 "$reads")" != 0 ] && [ "$(wc -l < "$reads")" -ge 2 ] ||
    xsim_fail "wait_key saw the write without a read before it (reads: $(tr '\n' ' ' < "$reads"))"

# --- removal with a backend that closes: online=0 and state=5 first ---
xsim_bg fakebe bash -c '
    be=$1
    until [ "$(xenstore-read $be/state 2>/dev/null)" = 5 ]; do sleep 0.02; done
    echo "online=$(xenstore-read $be/online)"
    xenstore-write $be/state 6' fakebe $be
xsim_remove_disk vbd3 5 xvda 5 || xsim_fail "remove with a closing backend failed"
[ "$(xsim_wait_exit fakebe 5)" = 0 ] || xsim_fail "fake backend did not finish"
grep -q '^online=0$' "$XSIM_LOGDIR/fakebe.log" || xsim_fail "online=0 was not written with state=5"
! xsim_exists $be || xsim_fail "backend dir left behind"
! xsim_exists $fe || xsim_fail "frontend dir left behind"
! xsim_exists /local/domain/0/backend/vbd3 || xsim_fail "empty backend/vbd3 not pruned"
! xsim_exists /libxl/5 || xsim_fail "/libxl/5 not pruned"
xsim_exists /local/domain/5/domid || xsim_fail "the domain itself must stay"

# --- removal with no backend: times out, returns 1, still removes ---
if xsim_remove_disk qdisk 6 xvdb 1 2>/dev/null; then xsim_fail "remove without a backend succeeded"; fi
! xsim_exists $be6 || xsim_fail "forced removal left the backend dir"
xsim_exists /local/domain/0/backend/vbd/6/51744 || xsim_fail "removal touched another disk"

# --- background processes ---
xsim_bg three sh -c 'echo out; echo err >&2; exit 3'
[ "$(xsim_wait_exit three 5)" = 3 ] || xsim_fail "exit status not recorded"
grep -q '^out$' "$XSIM_LOGDIR/three.log" && grep -q '^err$' "$XSIM_LOGDIR/three.log" ||
    xsim_fail "stdout/stderr not in the log"
# A process with a child: stopping it kills the child too.
xsim_bg parent bash -c 'sleep 300 & echo $! > "$1"; wait' parent "$XSIM_TMP/child.pid"
until [ -s "$XSIM_TMP/child.pid" ]; do sleep 0.02; done
child=$(<"$XSIM_TMP/child.pid")
xsim_running parent || xsim_fail "xsim_running says not running"
st=$(xsim_kill parent TERM 5)
[ "$st" = 143 ] || xsim_fail "status after SIGTERM is $st"
! xsim_alive "$child" || xsim_fail "grandchild survived its group being stopped"
! xsim_running parent || xsim_fail "xsim_running after kill"
# A process that ignores SIGTERM is killed after the timeout.
# It says when its trap is set: a SIGTERM sent before that would kill it.
xsim_bg stubborn bash -c 'trap "" TERM; touch "$1"; while :; do sleep 0.1; done' x "$XSIM_TMP/stubborn.ready"
until [ -e "$XSIM_TMP/stubborn.ready" ]; do sleep 0.02; done
st=$(xsim_kill stubborn TERM 1 2>/dev/null)
[ "$st" = 137 ] || xsim_fail "stubborn process: status $st, want 137"
echo PASS
