#!/bin/bash
# Data safety corners (issue 10, item 7), against the daemon.
#
# 7a: buffered I/O (--no-direct-io) puts every write in dom0's page cache,
# a volatile write cache whatever the device says: flush must be offered
# and must reach the backing store.  A loop device switched to "write
# through" (its queue/write_cache) used to get feature-flush-cache = 0 and
# its FLUSH requests EOPNOTSUPP.  Checked: feature-flush-cache and
# feature-barrier = 1; a write then a flush answered OKAY; strace of the
# daemon shows the flush reach the device's fd (IOCB_CMD_FDSYNC in
# io_submit, or fdatasync).  With O_DIRECT the same device still offers no
# flush (nothing volatile on our side).
#
# 7b: O_DIRECT on a file whose filesystem sits on a disk with 4096-byte
# logical sectors (ext4 on a 4Kn loop device) fails 512-byte I/O with
# EINVAL.  As Linux blkback advertises its device's logical block size,
# the daemon now advertises sector-size = 4096 there: the reference
# frontend (like blkfront) then sends whole blocks, verified through the
# frontend and in the file; misaligned requests are refused by validation
# (BLKIF_RSP_ERROR, counted as protocol errors, none as I/O errors), and
# the image stays opened with O_DIRECT.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
source "$top_srcdir/tests/daemon/config-lib.sh"
command -v losetup >/dev/null || xsim_skip "losetup is not installed"
command -v strace >/dev/null || xsim_skip "strace is not installed (tests/deps/hostile.txt)"
command -v mkfs.ext4 >/dev/null || xsim_skip "mkfs.ext4 is not installed (tests/deps/hostile.txt)"
xsim_start

# daemon_fd_of NAME PATH: the fd number of daemon NAME for PATH.
daemon_fd_of() {
    local pid f
    pid=$(xsim_pid "$1")
    for f in /proc/"$pid"/fd/*; do
        [ "$(readlink "$f" 2>/dev/null)" = "$2" ] && { echo "${f##*/}"; return 0; }
    done
    xsim_fail "daemon $1 holds no fd to $2"
}

# A write-through loop device for 7a (loop_write_through: $wtdev, $wc).
wtimg=$(make_disk wt.img 8)
loop_write_through "$wtimg"

# ---- 7b: O_DIRECT on a filesystem over a 4Kn disk --------------------------
ext4_4kn
img4=$fs4k/disk.img
truncate -s 8M "$img4"
xsim_daemon --kinds vbd3
be=$(be_dir vbd3 7 51712)
vbd3_disk 7 51712 "$img4"
span=2097152
fe fill4k 7 --vdev 51712 --workload fill --gen 8 --span "$span" --bs 64k --close
expect_key "$be/sector-size" 4096
expect_key "$be/physical-sector-size" 4096
js_defer fill4k "d['negotiated']['sector_size']" 4096 "d['responses']['okay'] > 0" True
pattern_check "$img4" 8 --span "$span"
xfe readcheck4k readcheck --domid 7 --vdev 51712 --gens 8 --span "$span" --bs 128k
# Misaligned: half a block, or not starting on one; then an aligned read.
fe_hold raw4k 7 --vdev 51712 --workload none --hold 600 \
    --raw op=read,sector=1,first=1,last=7,expect=error \
    --raw op=write,sector=0,first=0,last=3,expect=error \
    --raw op=write,sector=4,first=4,last=7,expect=error \
    --raw op=read,sector=8,first=0,last=7,expect=okay
check "image opened with O_DIRECT" [ "$(daemon_fd_direct "$img4")" = yes ]
errs=$(python3 -c '
import sys
sys.path.insert(0, sys.argv[1])
import ctl
r = ctl.Client(sys.argv[2]).call({"command": "stats", "domid": 7})
e = r["devices"][0]["rings"][0]["errors"]
print(e["protocol"], e["io"])' "$top_srcdir/tests/daemon" "$XSIM_TMP/control.sock")
check "misaligned requests refused by validation, no I/O error (protocol io: $errs)" [ "$errs" = "3 0" ]
xsim_remove_disk vbd3 7 51712 || xsim_fail "the 4Kn disk did not close"
fe_end raw4k
# ---- 7a: buffered I/O on a write-through device ---------------------------
# The same device with O_DIRECT: nothing volatile on our side, no flush.
vbd3_disk 6 51712 "$wtdev"
# The keys that depend on the backing store are final once a frontend
# connected (InitWait may come before the store is opened).
fe direct6 6 --vdev 51712 --workload none --close
expect_key "$(be_dir vbd3 6 51712)/feature-flush-cache" 0
js_defer direct6 "d['backend_features']['flush_cache']" False
xsim_remove_disk vbd3 6 51712 || xsim_fail "the direct disk did not close"
# A handover (exit 0): in the sanitizer tier a leak or UB at exit would
# make it non-zero.
st=$(xsim_kill xenblkd TERM 20)
check "the first daemon's handover exits 0 (got $st)" [ "$st" = 0 ]
dev=$wtdev

XSIM_DAEMON_NAME=buffered xsim_daemon --kinds vbd3 --no-direct-io
be=$(be_dir vbd3 5 51712)
vbd3_disk 5 51712 "$dev"
pid=$(xsim_pid buffered)
wait_log "domain 5 vbd3/51712: opened $dev: .*, read-write, discard" 10 buffered
fd=$(daemon_fd_of buffered "$dev")
# The checks of the runs so far, before strace may skip the rest.
js_check_all
xsim_bg strace strace -f -qq -p "$pid" -e trace=io_submit,fdatasync,fsync -o "$XSIM_TMP/strace.out"
end=$(xsim_deadline 20)
# strace says "Process N attached" once it traces the daemon (-qq hides it
# on stderr, so look at the tracer's status instead).
until grep -q "^TracerPid:[[:space:]]*[1-9]" "/proc/$pid/status"; do
    xsim_past "$end" && xsim_skip "strace cannot attach to the daemon: $(tail -2 "$XSIM_LOGDIR/strace.log")"
    sleep 0.05
done
fe flush 5 --vdev 51712 --close \
    --raw op=write,sector=8,first=0,last=7,expect=okay \
    --raw op=flush,expect=okay
expect_key "$be/feature-flush-cache" 1
expect_key "$be/feature-barrier" 1
expect_js flush "d['backend_features']['flush_cache']" True
xsim_log "ok: buffered I/O on a write-through device offers flush, and a flush is answered OKAY"
xsim_kill strace >/dev/null || true
grep -Eq "aio_lio_opcode=IOCB_CMD_FDSYNC, aio_fildes=$fd[,}]|fdatasync\($fd\)" "$XSIM_TMP/strace.out" ||
    { cat "$XSIM_TMP/strace.out" >&2; xsim_fail "no fdatasync of $dev (fd $fd) for the flush"; }
grep -E "FDSYNC|fdatasync" "$XSIM_TMP/strace.out" >&2 || true
xsim_log "ok: the flush reached $dev (fd $fd) as fdatasync"
xsim_remove_disk vbd3 5 51712 || xsim_fail "the buffered disk did not close"
echo "write back" >"$wc"

xsim_running buffered || xsim_fail "daemon died"
xsim_log PASS
