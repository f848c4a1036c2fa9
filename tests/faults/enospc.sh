#!/bin/bash
# A full filesystem: guest 5's disk is a sparse image on a 4 MiB tmpfs
# (mounted in this test's own mount namespace: nobody else sees it, and
# it goes with the test) whose free space a filler file took.  Writes
# into allocated blocks still work; writes into holes cannot allocate.
# 1. Guest 5's raw requests get BLKIF_RSP_ERROR exactly for the writes
#    into holes (including one half over allocated blocks, half over a
#    hole: it is refused as a whole), OKAY for the rest;
#    errors.io counts them; guest 6 (on another filesystem) has no error.
# 2. Space freed, the same writes succeed and a verified workload passes
#    on guest 5, and on guest 6.
set -euo pipefail
if [ -z "${XBD_FAULTS_MNTNS:-}" ]; then
    command -v unshare >/dev/null || { echo "SKIP: unshare is not installed"; exit 77; }
    XBD_FAULTS_MNTNS=1 exec unshare -m --propagation private "$BASH" "$0" "$@" ||
        { echo "SKIP: no private mount namespace here"; exit 77; }
fi
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
source "$top_srcdir/tests/faults/lib.sh"
xsim_start
small=$XSIM_TMP/small
mkdir "$small"
mount -t tmpfs -o size=4m xbd-faults "$small" || xsim_skip "cannot mount a tmpfs here"
xsim_on_exit "umount -l '$small'"
img=$small/disk.img
truncate -s 16M "$img"
# The first MiB (sectors 0..2047) is allocated; the rest is a hole.
dd if=/dev/zero of="$img" bs=64k count=16 conv=notrunc 2>/dev/null
dd if=/dev/zero of="$small/filler" bs=4k 2>/dev/null || true
dd if=/dev/zero of="$small/probe" bs=4k count=1 2>/dev/null &&
    xsim_fail "the tmpfs is not full"
rm -f "$small/probe"
xsim_log "ok: $small is full ($(df -k --output=avail "$small" | tail -1 | tr -d ' ') KiB free)"
img6=$(make_disk g6.img 16)
xsim_daemon --kinds vbd3
vbd3_disk 5 51712 "$img"
vbd3_disk 6 51712 "$img6"
fe_hold g6 6 --vdev 51712 --workload verify --count 200 --qd 16 --hold 600

raw=(
    op=write,sector=0,expect=okay                  # allocated
    op=write,sector=8192,expect=error              # a hole: no space for it
    op=read,sector=8192,expect=okay                # reading a hole needs no space
    op=write,sector=2040,nr_segments=2,expect=error  # 2040..2055: half allocated, half hole
    op=write,sector=1024,nr_segments=8,expect=okay
    op=flush,nr_segments=0,expect=okay
)
want="okay error okay error okay okay"
args=()
for r in "${raw[@]}"; do args+=(--raw "$r"); done
fe_hold raw5 5 --vdev 51712 --workload none "${args[@]}" --hold 600
got=$(sed -n 's/^raw vdev=[0-9]*: status=[-0-9]* (\([a-z]*\)).*/\1/p' "$XSIM_LOGDIR/raw5.log" | tr '\n' ' ')
check "BLKIF_RSP_ERROR for exactly the writes into holes: $got" [ "$got" = "$want " ]
check "errors.io of guest 5 = 2" [ "$(ctl_stats_sum 5 "r['errors']['io']")" = 2 ]
check "no protocol or grant error for guest 5" \
    [ "$(ctl_stats_sum 5 "r['errors']['protocol'] + r['errors']['grant']")" = 0 ]
check "guest 6: no error of any kind" [ "$(ctl_stats_sum 6 "sum(r['errors'].values())")" = 0 ]
expect_key "$(be_dir vbd3 5 51712)/state" 4

# Space freed: the same writes succeed, the device works.
rm "$small/filler"
fe_end raw5
fe again5 5 --vdev 51712 --workload none --close \
    --raw op=write,sector=8192,expect=okay --raw op=write,sector=2040,nr_segments=2,expect=okay
fe verify5 5 --vdev 51712 --workload verify --count 300 --qd 16 --span 2M --seed 5 --close
expect_js verify5 "d['responses']['error']" 0 "d['verify_errors']" 0
fe_end g6
expect_js g6 "d['responses']['error']" 0 "d['verify_errors']" 0
check "daemon still running" xsim_running xenblkd
exit 0
