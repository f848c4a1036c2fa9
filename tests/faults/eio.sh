#!/bin/bash
# Failing storage: reads and writes of chosen byte ranges fail with EIO in
# the storage itself (a FUSE file under a loop device, tests/daemon/
# fuse-hold.py), not in a mock.  Guest 5's disk is that device; guest 6's
# is an ordinary image.
# 1. With the fault on, guest 5's raw requests (one at a time, each with
#    its own id) get BLKIF_RSP_ERROR exactly when they touch a failing
#    range (a request overlapping one partly fails whole), OKAY otherwise;
#    the storage really saw each failure (its log), the control socket's
#    stats count them (errors.io, nothing under protocol or grant).
# 2. Guest 6, connected throughout, has no error and stays Connected.
# 3. The fault lifted, the same sectors work again and a verified
#    workload passes on guest 5, and on guest 6.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
source "$top_srcdir/tests/faults/lib.sh"
fuse_requirements
xsim_start
fuse_disk d5 16
ctl=$XSIM_TMP/d5.ctl
img6=$(make_disk g6.img 16)
xsim_daemon --kinds vbd3
vbd3_disk 5 51712 "$FUSE_DEV"
vbd3_disk 6 51712 "$img6"

# Guest 6 connects, runs a verified workload and stays connected.
fe_hold g6 6 --vdev 51712 --workload verify --count 200 --qd 16 --hold 600

# Reads of sectors 64..71 and writes of sectors 128..135 fail.
echo "32768 4096" > "$ctl/eio-read"
echo "65536 4096" > "$ctl/eio-write"
# (xsim-blkfront sends them one at a time, each checked against its
# expect= and printed in order: "raw vdev=V: status=S (name) ...".)
raw=(
    op=read,sector=0,expect=okay
    op=read,sector=64,expect=error                 # inside the failing range
    op=write,sector=128,expect=error
    op=write,sector=192,expect=okay
    op=read,sector=128,expect=okay                 # writes fail there, reads not
    op=read,sector=56,nr_segments=2,expect=error   # 56..71: overlaps 64..71
    op=write,sector=0,nr_segments=4,expect=okay    # 0..31: next to nothing failing
    op=flush,nr_segments=0,expect=okay
)
want="okay error error okay okay error okay okay"
args=()
for r in "${raw[@]}"; do args+=(--raw "$r"); done
fe_hold raw5 5 --vdev 51712 --workload none "${args[@]}" --hold 600
got=$(sed -n 's/^raw vdev=[0-9]*: status=[-0-9]* (\([a-z]*\)).*/\1/p' "$XSIM_LOGDIR/raw5.log" | tr '\n' ' ')
check "BLKIF_RSP_ERROR for exactly requests 2, 3 and 6: $got" [ "$got" = "$want " ]
check "the storage failed the reads itself" [ "$(grep -c '^read ' "$ctl/eio-log")" -ge 2 ]
check "the storage failed the write itself" [ "$(grep -c '^write ' "$ctl/eio-log")" -ge 1 ]
check "errors.io of guest 5 = 3" [ "$(ctl_stats_sum 5 "r['errors']['io']")" = 3 ]
check "no protocol or grant error for guest 5" \
    [ "$(ctl_stats_sum 5 "r['errors']['protocol'] + r['errors']['grant']")" = 0 ]
check "guest 6: no error of any kind" [ "$(ctl_stats_sum 6 "sum(r['errors'].values())")" = 0 ]
expect_key "$(be_dir vbd3 5 51712)/state" 4
expect_key "$(be_dir vbd3 6 51712)/state" 4
check "the failed write changed nothing in the store" \
    cmp -s <(dd if="$XSIM_TMP/d5.store" bs=4096 skip=16 count=1 2>/dev/null) <(head -c 4096 /dev/zero)

# The fault lifted: the same requests succeed, the device works.
rm "$ctl/eio-read" "$ctl/eio-write"
fe_end raw5
fe again5 5 --vdev 51712 --workload none --close \
    --raw op=read,sector=64,expect=okay --raw op=write,sector=128,expect=okay \
    --raw op=read,sector=56,nr_segments=2,expect=okay
fe verify5 5 --vdev 51712 --workload verify --count 300 --qd 16 --seed 5 --close
expect_js verify5 "d['responses']['error']" 0 "d['verify_errors']" 0
fe_end g6
expect_js g6 "d['responses']['error']" 0 "d['verify_errors']" 0
fe verify6 6 --vdev 51712 --workload verify --count 100 --seed 6 --close
check "daemon still running" xsim_running xenblkd
exit 0
