#!/bin/bash
# A restarted daemon keeps the terms the connected frontend was given
# (man xenblkd, RESTARTING): blkfront reads sector-size and
# feature-flush-cache only when it connects, and a successor configured
# differently (direct-io changed between the two instances) must serve
# under those terms, not its own.  Under running, verified workloads of
# the reference frontend:
#
# (b) a file on ext4 over a 4096-byte-sector loop device, first served
# without O_DIRECT (sector-size 512), then by a successor with O_DIRECT,
# which would need 4096-byte I/O: the successor opens it without O_DIRECT
# (logged), sector-size stays 512, the guest's 512-byte-aligned I/O is
# still served (before: ERROR, the workload failed).
#
# (a) a loop device whose write cache says "write through", first served
# with O_DIRECT (feature-flush-cache 0: the guest never flushes), then by a
# successor with --no-direct-io: it opens it with O_DSYNC (logged) so that
# every acknowledged write is on the device, and feature-flush-cache stays
# 0 (before: the key became 1 and writes sat in the page cache, never
# flushed).
#
# (c) a loop device served with 512-byte sectors whose sector size becomes
# 4096 between two instances: no way of opening it keeps the terms, the
# successor refuses to resume it ("refusing to resume", Closing).
#
# Every resumed workload completes with every response OKAY and every read
# verified, never reconnecting, the backend state written Connected once.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/config-lib.sh"
command -v losetup >/dev/null || xsim_skip "losetup is not installed"
command -v mkfs.ext4 >/dev/null || xsim_skip "mkfs.ext4 is not installed (tests/deps/hostile.txt)"
xsim_start

# has_flag FLAGS BIT: octal FLAGS include octal BIT (asm-generic/fcntl.h:
# O_DIRECT 040000, O_DSYNC 010000).
has_flag() { (( (8#$1 & 8#$2) != 0 )); }

# workload DOMID: an open-ended verify workload on DOMID's disk (process
# feDOMID), ended by end_workload.
workload() {
    xsim_bg "fe$1" "$top_builddir/tests/frontend/xsim-blkfront" --domid "$1" --vdev 51712 \
        --workload verify --qd 8 --bs 16k --count 100000000 --stop-when "$XSIM_TMP/stop$1" \
        --timeout 60 --close --stats-json "$XSIM_TMP/fe$1.json"
    xsim_wait_key "$(be_dir qdisk "$1" 51712)/state" 4
}
end_workload() {
    local st
    touch "$XSIM_TMP/stop$1"
    st=$(xsim_wait_exit "fe$1" 60) || true
    [ "$st" = 0 ] || xsim_fail "the workload of domain $1 failed across the restarts (status $st)"
    workload_verified "$XSIM_TMP/fe$1.json" 100
    backend_connected_once "$(be_dir qdisk "$1" 51712)" "$(fe_dir "$1" 51712)"
}

# handover NAME: SIGTERM daemon NAME, which must exit 0.
handover() {
    local st
    st=$(xsim_kill "$1" TERM 20)
    [ "$st" = 0 ] || xsim_fail "handover of $1: exit status $st"
}

wtimg=$(make_disk wt.img 8)
loop_write_through "$wtimg"
growimg=$(make_disk grow.img 8)
growdev=$(loop_attach "$growimg") ||
    xsim_skip "cannot set up a loop device: $(cat "$XSIM_LOGDIR/losetup.log")"
xsim_on_exit "losetup -d $growdev"
ext4_4kn
img4=$fs4k/disk.img
truncate -s 8M "$img4"

# ---- (b) then (a): first instances -----------------------------------------
XSIM_DAEMON_NAME=buffered xsim_daemon --kinds qdisk --no-direct-io
xsim_add_disk qdisk 3 xvda "aio:$img4" w
workload 3
expect_key "$(be_dir qdisk 3 51712)/sector-size" 512
served 3 100 fe3
handover buffered

XSIM_DAEMON_NAME=direct xsim_daemon --kinds qdisk
wait_log "domain 3 qdisk/51712: resumed in state Connected" 10 direct
wait_log "domain 3 qdisk/51712: opening $img4 again to keep what the connected frontend was told: O_DIRECT needs 4096-byte sectors here, the frontend was told 512: without O_DIRECT" 10 direct
expect_key "$(be_dir qdisk 3 51712)/sector-size" 512
flags=$(daemon_fd_flags "$img4" direct)
check "(b) the 4Kn-filesystem image is served without O_DIRECT (flags $flags)" \
    eval '! has_flag "$flags" 40000'
served 3 100 fe3
xsim_log "ok: (b) 512-byte I/O still served after a successor with O_DIRECT"

# (a): the write-through device, first with O_DIRECT: no flush offered.
xsim_add_disk qdisk 4 xvda "aio:$wtdev" w
workload 4
expect_key "$(be_dir qdisk 4 51712)/feature-flush-cache" 0
served 4 100 fe4
# (c): a 512-byte-sector device.
xsim_add_disk qdisk 5 xvda "aio:$growdev" w
workload 5
expect_key "$(be_dir qdisk 5 51712)/sector-size" 512
served 5 100 fe5
handover direct
losetup --sector-size 4096 "$growdev" || xsim_skip "cannot change the sector size of $growdev"
[ "$(blockdev --getss "$growdev")" = 4096 ] || xsim_skip "$growdev kept $(blockdev --getss "$growdev")-byte sectors"

XSIM_DAEMON_NAME=buffered2 xsim_daemon --kinds qdisk --no-direct-io
wait_log "domain 4 qdisk/51712: resumed in state Connected" 10 buffered2
wait_log "domain 4 qdisk/51712: opening $wtdev again to keep what the connected frontend was told: the frontend was told there is no write cache to flush: with O_DSYNC" 10 buffered2
expect_key "$(be_dir qdisk 4 51712)/feature-flush-cache" 0
expect_key "$(be_dir qdisk 4 51712)/feature-barrier" 0
flags=$(daemon_fd_flags "$wtdev" buffered2)
check "(a) the write-through device is served with O_DSYNC (flags $flags)" has_flag "$flags" 10000
check "(a) and without O_DIRECT, as configured (flags $flags)" eval '! has_flag "$flags" 40000'
served 4 100 fe4
# (c): refused, Closing; whatever its frontend makes of that, it is done.
wait_log "domain 5 qdisk/51712: refusing to resume: its sector size is now 4096, the frontend was told 512" 10 buffered2
wait_log "domain 5 qdisk/51712: state Connected -> Closing" 10 buffered2
xsim_kill fe5 >/dev/null || true
served 3 100 fe3
end_workload 3
end_workload 4
xsim_log PASS
