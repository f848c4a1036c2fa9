#!/bin/bash
# A partition as a backing store takes its disk's queue limits, as Linux
# blkback's do: a partition has no queue/ directory of its own in sysfs.
# A write-through loop device with discard (over a file: its granularity
# is the file's block size, 4096 here) gets two partitions added with
# BLKPG (addpart: no partition table, so no kernel partition parser is
# needed), starting 7 and 8202 sectors in, neither a multiple of the
# granularity.  Each, served as vbd3 "aio:/dev/loopNpM", publishes
#   discard-granularity = the disk's queue/discard_granularity (before:
#     the sector size, 512),
#   discard-alignment = the partition's sysfs discard_alignment, what
#     blkback publishes (bdev_discard_alignment): the distance from the
#     partition's start to the disk's next whole granule (before: 0),
#   feature-flush-cache 0 and feature-barrier 0: the disk's write_cache is
#     "write through" (before: unknown, so a flush was offered),
# and the frontend reads the same.  Through the first partition, the
# frontend fills every sector, then discards four whole granules of the
# disk (where discard-alignment says they start): in the image behind the
# loop device, exactly that range is a hole (SEEK_HOLE/SEEK_DATA), the
# partition's other sectors hold what was written, and nothing outside
# the partition was touched.  Skipped (77) where the kernel will not set
# up a loop device with partitions or discard.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
command -v losetup >/dev/null || xsim_skip "losetup is not installed"
command -v addpart >/dev/null || xsim_skip "addpart is not installed (util-linux)"
xsim_start

psectors=8192                   # 4 MiB partitions
starts=(7 8202)
img=$(make_disk part.img 16)
# -P: a loop device that may have partitions (some kernels refuse BLKPG
# on one without); there is no table for its scan to find.
loop_write_through "$img" -P
disk=${wtdev#/dev/}
g=$(cat "/sys/block/$disk/queue/discard_granularity")
[ "$(cat "/sys/block/$disk/queue/discard_max_bytes")" -gt 0 ] ||
    xsim_skip "$wtdev does not support discard"
gs=$((g / 512))
((g % 512 == 0 && gs > 1)) || xsim_skip "$wtdev's discard granularity is $g: no partition can be misaligned with it"

# part_node N START: add partition N at START (512-byte sectors) and set
# $part to its block device node: devtmpfs makes /dev/loopXpN; without
# it, our own node from the numbers in sysfs.
part_node() {
    local n=$1 sys=/sys/block/$disk/${disk}p$1
    addpart "$wtdev" "$n" "$2" "$psectors" 2>"$XSIM_LOGDIR/addpart.log" ||
        xsim_skip "the kernel will not add a partition to $wtdev: $(cat "$XSIM_LOGDIR/addpart.log")"
    [ -f "$sys/dev" ] || xsim_fail "partition $n of $wtdev is not in sysfs"
    part=/dev/${disk}p$n
    if [ ! -b "$part" ]; then
        part=$XSIM_TMP/${disk}p$n
        mknod "$part" b "$(cut -d: -f1 "$sys/dev")" "$(cut -d: -f2 "$sys/dev")"
    fi
    check "$part starts at sector $2" [ "$(cat "$sys/start")" = "$2" ]
}

xsim_daemon --kinds vbd3
parts=()
for i in 0 1; do
    start=${starts[i]} domid=$((5 + i))
    part_node $((i + 1)) "$start"
    # The kernel's own arithmetic (queue_limit_discard_alignment), which
    # the test relies on: a partition starting k sectors past a granule
    # boundary has its first whole granule gs - k sectors in.
    align=$(((gs - start % gs) % gs * 512))
    kalign=$(cat "/sys/block/$disk/${disk}p$((i + 1))/discard_alignment")
    check "the kernel puts ${disk}p$((i + 1))'s first granule $align bytes in (it says $kalign)" \
        [ "$kalign" = "$align" ]
    check "${disk}p$((i + 1)) is misaligned with the granularity" [ "$align" -gt 0 ]
    parts+=("$part")
    vbd3_disk "$domid" 51712 "$part"
    be=$(be_dir vbd3 "$domid" 51712)
    wait_fds_to "$part" 1
    fe "keys$i" "$domid" --vdev 51712 --workload none --close
    expect_key "$be/sectors" "$psectors"
    expect_key "$be/feature-discard" 1
    expect_key "$be/discard-granularity" "$g"
    expect_key "$be/discard-alignment" "$align"
    expect_key "$be/feature-flush-cache" 0
    expect_key "$be/feature-barrier" 0
    js_defer "keys$i" "d['backend_features']['discard_granularity']" "$g" \
        "d['backend_features']['discard_alignment']" "$align" \
        "d['backend_features']['flush_cache']" False
done

# The data through partition 1 (domain 5): fill, then discard four whole
# granules of the disk, the second to the fifth of the partition.
start=${starts[0]} domid=5
align=$(((gs - start % gs) % gs))               # sectors
first=$((align + gs)) count=$((4 * gs))
fe fill 5 --vdev 51712 --workload fill --gen 1 --bs 64k --close
fe discard 5 --vdev 51712 --workload none --close \
    --raw "op=discard,sector=$first,nr_sectors=$count,expect=okay"
js_defer fill "d['negotiated']['sectors']" "$psectors"
js_defer discard "d['requests']['discard']" 1
xsim_remove_disk vbd3 5 51712 || xsim_fail "partition 1 did not close"
xsim_remove_disk vbd3 6 51712 || xsim_fail "partition 2 did not close"
for part in "${parts[@]}"; do wait_fds_to "$part" 0; done

# The image as the disk sees it: the hole where the disk's granules are.
from=$(((start + first) * 512)) to=$(((start + first + count) * 512))
((from % g == 0)) || xsim_fail "test error: the discard does not start on a granule of the disk"
holes=$(python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
a = int(sys.argv[2])
print(os.lseek(fd, a, os.SEEK_HOLE), os.lseek(fd, a - 512, os.SEEK_HOLE), os.lseek(fd, a, os.SEEK_DATA))
' "$img" "$from")
check "the image has a hole from byte $from to $to, and data just before ($holes)" \
    [ "$holes" = "$from $from $to" ]
# The whole image, byte for byte: the partition written everywhere but
# the range discarded (zeros), nothing outside it touched.  The pattern
# of a sector is that of its number in the partition.
want=$XSIM_TMP/want.img
truncate -s $((psectors * 512)) "$XSIM_TMP/p1.want"
"$XBD_PATTERN" fill --gen 1 --span $((psectors * 512)) "$XSIM_TMP/p1.want" >/dev/null
dd if=/dev/zero of="$XSIM_TMP/p1.want" bs=512 seek="$first" count="$count" conv=notrunc status=none
truncate -s "$(stat -c %s "$img")" "$want"
dd if="$XSIM_TMP/p1.want" of="$want" bs=512 seek="$start" conv=notrunc status=none
check "the image holds what the frontend wrote and discarded through partition 1 ($(cmp "$want" "$img" 2>&1))" \
    cmp -s "$want" "$img"
js_check_all
exit 0
