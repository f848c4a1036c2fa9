#!/bin/bash
# Block devices as backing stores, data path: loop devices with 512-byte
# and 4096-byte logical sectors (losetup --sector-size 4096), served to
# the reference frontend, which then writes in whole logical blocks.  The
# data is verified through the frontend (reads checked against the fill,
# mixed workload, indirect reads) and directly on the block device and on
# the image file behind it.  On the 4096-byte device, requests that are
# not aligned to the logical block size are refused with BLKIF_RSP_ERROR
# (blkif.h: sector-size is the granularity of requests).  Afterwards the
# daemon holds no fd to the device.  Growing the device under a connected
# frontend and sending SIGHUP resizes it online.  Last, a file whose size
# is not a whole number of 4096-byte blocks, on ext4 over a 4096-byte
# device (O_DIRECT needs 4096-byte I/O there: sector-size 4096): only
# whole blocks are offered ("sectors" rounded down, as Linux blkback's
# capacity), the last of them readable, at connection and at a SIGHUP
# resize.  Skipped (77) only where the kernel will not set up a loop
# device (or mkfs.ext4 is missing, for the last part).
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
command -v losetup >/dev/null || xsim_skip "losetup is not installed"
xsim_start

# loop_setup IMAGE SECTOR_SIZE: attach IMAGE as $dev (detached at exit;
# not in a command substitution, so that the exit hook is registered in
# this shell).  Parallel tests race for free loop devices: retry.
loop_setup() {
    local i
    for ((i = 0; i < 5; i++)); do
        if dev=$(losetup -f --show --sector-size "$2" "$1" 2>"$XSIM_LOGDIR/losetup.log"); then
            xsim_on_exit "losetup -d $dev"
            return 0
        fi
        sleep 0.2
    done
    xsim_skip "the kernel refuses to set up a loop device with $2-byte sectors: $(cat "$XSIM_LOGDIR/losetup.log")"
}

xsim_daemon --kinds vbd3
span=2097152
domid=5
for ss in 512 4096; do
    img=$(make_disk "loop$ss.img" 8)
    loop_setup "$img" "$ss"
    [ "$(blockdev --getss "$dev")" = "$ss" ] || xsim_skip "$dev has $(blockdev --getss "$dev")-byte sectors, not $ss"
    vbd3_disk "$domid" 51712 "$dev"
    be=$(be_dir vbd3 "$domid" 51712)
    wait_fds_to "$dev" 1
    check "image not opened by the daemon" [ "$(daemon_fds_to "$img")" = 0 ]
    gen=$((ss / 512))
    fe "fill$ss" "$domid" --vdev 51712 --workload fill --gen "$gen" --span "$span" --bs 64k --close
    expect_key "$be/sector-size" "$ss"
    expect_key "$be/sectors" 16384
    js_defer "fill$ss" "d['negotiated']['sector_size']" "$ss" "d['negotiated']['sectors']" 16384
    pattern_check "$dev" "$gen" --span "$span"
    pattern_check "$img" "$gen,0" --min "$gen=$((span / 512))"
    xfe "readcheck$ss" readcheck --domid "$domid" --vdev 51712 --gens "$gen" --span "$span" --bs 128k
    fe "mixed$ss" "$domid" --vdev 51712 --workload mixed --expect-gen "$gen" --span "$span" --bs 64k \
        --count 150 --seed "$ss" --close
    js_defer "mixed$ss" "min(d['requests'][op] for op in ('read', 'write', 'flush', 'discard')) > 0" True \
        "d['responses']['okay']" 150
    if [ "$ss" = 4096 ]; then
        # Half a logical block, or not starting on one: refused.
        fe "misaligned" "$domid" --vdev 51712 --workload none --close \
            --raw op=read,sector=1,first=1,last=7,expect=error \
            --raw op=write,sector=0,first=0,last=3,expect=error \
            --raw op=write,sector=4,first=4,last=7,expect=error \
            --raw op=read,sector=8,first=0,last=7,expect=okay
    fi
    # Online resize of the device itself (BLKGETSIZE64): grow the image,
    # refresh the loop device, SIGHUP; a connected frontend follows.
    fe_hold "hold$ss" "$domid" --vdev 51712 --workload read --count 8 --span "$span" --hold 300 --close
    truncate -s 12M "$img"
    losetup -c "$dev"
    kill -HUP "$(xsim_pid xenblkd)"
    wait_log "domain $domid vbd3/51712: $dev changed size: 16384 -> 24576 sectors$"
    wait_log "domain $domid vbd3/51712: told the connected frontend: sectors 24576"
    fe_end "hold$ss"
    js_defer "hold$ss" "d['resizes']" 1 "d['negotiated']['sectors']" 24576
    xsim_remove_disk vbd3 "$domid" 51712 || xsim_fail "the $ss-byte device did not close"
    wait_fds_to "$dev" 0
    # Now: the next pass may skip (a kernel without 4096-byte loop sectors).
    js_check_all
    domid=$((domid + 1))
done

# partial_reads NAME BLOCKS: a frontend run reading the last of BLOCKS
# whole 4096-byte blocks (okay) and the block after it (refused).
partial_reads() {
    local last=$((($2 - 1) * 8))
    fe "$1" "$domid" --vdev 51712 --workload none --close \
        --raw op=read,sector=$last,first=0,last=7,expect=okay \
        --raw op=read,sector=$((last + 8)),first=0,last=7,expect=error
}
command -v mkfs.ext4 >/dev/null || xsim_skip "mkfs.ext4 is not installed (tests/deps/hostile.txt)"
ext4_4kn
img=$fs4k/partial.img
truncate -s $(((8 << 20) + 1536)) "$img"       # 2048 whole blocks and 3 sectors
vbd3_disk "$domid" 51712 "$img"
be=$(be_dir vbd3 "$domid" 51712)
partial_reads partial 2048
expect_key "$be/sector-size" 4096
expect_key "$be/sectors" 16384
js_defer partial "d['negotiated']['sector_size']" 4096 "d['negotiated']['sectors']" 16384
fe_hold holdpartial "$domid" --vdev 51712 --workload read --count 8 --hold 300 --close
truncate -s $(((12 << 20) + 2560)) "$img"      # 3072 whole blocks and 5 sectors
kill -HUP "$(xsim_pid xenblkd)"
wait_log "domain $domid vbd3/51712: .*partial.img changed size: 16384 -> 24576 sectors$"
wait_log "domain $domid vbd3/51712: told the connected frontend: sectors 24576$"
fe_end holdpartial
expect_key "$be/sectors" 24576
js_defer holdpartial "d['resizes']" 1 "d['negotiated']['sectors']" 24576
partial_reads grown 3072
xsim_remove_disk vbd3 "$domid" 51712 || xsim_fail "the file on ext4 did not close"
js_check_all
exit 0
