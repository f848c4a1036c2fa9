#!/bin/bash
# The reference frontend agrees with a backend we did not write: Debian's
# QEMU serving a qdisk on the simulated host.  Several requests in flight
# over a 4-page ring, grant copy for data, flush, malformed requests
# rejected, and the data QEMU wrote checked in the backing file directly
# (and data written to the file directly read back through QEMU).
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"

BLKFRONT=$top_builddir/tests/frontend/xsim-blkfront
[ -x "$BLKFRONT" ] || xsim_fail "$BLKFRONT is not built"
xsim_start

DOM=5
IMG=$XSIM_TMP/disk.img
BE=/local/domain/0/backend/qdisk/$DOM/51712
SPAN=$((4 << 20))            # the part of the disk the data checks cover
truncate -s 16M "$IMG"

front() { "$BLKFRONT" --domid $DOM --vdev xvda --timeout 20 "$@"; }
# json_val FILE KEY: the first scalar value of "KEY" in the stats JSON.
json_val() { grep -o "\"$2\": *[^,}]*" "$1" | sed -n '1{s/.*: *//; s/"//g; p}'; }
expect_json() {  # expect_json FILE KEY VALUE
    local v
    v=$(json_val "$1" "$2")
    [ "$v" = "$3" ] || xsim_fail "$(basename "$1"): $2 = '$v', want '$3'"
}
# Each frontend process is a fresh guest: give it a freshly added disk, as
# libxl does when a domain is built (remove the previous incarnation first).
plug() {
    if xsim_exists $BE; then
        xsim_remove_disk qdisk $DOM xvda || xsim_fail "QEMU did not close the disk on removal"
    fi
    xsim_add_disk qdisk $DOM xvda "aio:$IMG"
    xsim_wait_key $BE/state 2 10 || xsim_fail "QEMU did not reach InitWait"
}

xsim_add_disk qdisk $DOM xvda "aio:$IMG"
xsim_qemu_qdisk $DOM
xsim_wait_key $BE/state 2 10 || xsim_fail "QEMU did not reach InitWait"
# What QEMU 7.2 publishes before the frontend connects.
[ "$(xsim_read $BE/feature-flush-cache)" = 1 ] || xsim_fail "no feature-flush-cache"
[ "$(xsim_read $BE/max-ring-page-order)" = 4 ] || xsim_fail "max-ring-page-order is not 4"

# 1. Verified random writes and reads, 16 in flight, 4-page ring.
front --ring-order 2 --qd 16 --workload verify --count 300 --seed 7 --span $SPAN \
    --stats-json "$XSIM_TMP/verify.json" --close || xsim_fail "verify workload against QEMU failed"
S=$XSIM_TMP/verify.json
expect_json "$S" ring_order 2
expect_json "$S" ring_pages 4
expect_json "$S" persistent false       # QEMU offers no persistent grants
expect_json "$S" verify_errors 0
expect_json "$S" end_access_failures 0
expect_json "$S" write 300
expect_json "$S" read 300
expect_json "$S" pages_mapped 4          # only the ring: data went by grant copy
expect_json "$S" pages_unmapped 4        # QEMU unmapped the ring on close
[ "$(json_val "$S" copy_segs)" -ge 600 ] || xsim_fail "QEMU did not use grant copy for the data"
[ "$(json_val "$S" notifications)" -lt 600 ] || xsim_fail "no request batching at all (qd 16)"
[ "$(xsim_read $BE/state)" = 6 ] || xsim_fail "QEMU did not go Closed after the frontend closed"

# 2. Sequential writes of generation 7 over the span, plus flushes.
plug
front --ring-order 2 --qd 16 --workload fill --gen 7 --span $SPAN --bs 65536 --close ||
    xsim_fail "fill through QEMU failed"
plug
front --workload flush --count 20 --qd 4 --span $SPAN --seed 3 --stats-json "$XSIM_TMP/flush.json" --close ||
    xsim_fail "flush workload against QEMU failed"
expect_json "$XSIM_TMP/flush.json" flush 20
expect_json "$XSIM_TMP/flush.json" error 0

# 3. The backing file holds what the guest wrote: every sector starts with
#    its own number and the "XBLK" magic with a generation (7 from the fill,
#    others where the flush workload rewrote it), and nothing beyond the
#    span was touched.
sync
bad=$(od -A n -v -t x8 -w512 -N $SPAN "$IMG" | awk '
    { if ($1 != sprintf("%016x", NR - 1) || substr($2, 1, 8) != "58424c4b") {
          if (n++ < 5) printf "sector %d: %s %s\n", NR - 1, $1, $2 } }
    END { if (NR != '$((SPAN / 512))') print "read " NR " sectors" }')
[ -z "$bad" ] || xsim_fail "backing file does not hold the guest's data: $bad"
[ "$(od -A n -v -t x8 -w512 -N $SPAN "$IMG" | awk '$2 == "58424c4b00000007"' | wc -l)" -gt 4000 ] ||
    xsim_fail "generation 7 missing from most of the file"
[ -z "$(od -A n -t x1 -j $SPAN "$IMG" | tr -d ' 0*\n')" ] || xsim_fail "QEMU wrote beyond the span"

# 4. And the other way: data put into the file directly is what the guest
#    reads through QEMU; a corrupted sector is noticed (the check can fail).
dd if=/dev/zero of="$IMG" bs=1M count=1 conv=notrunc status=none
plug
front --workload read --expect-gen 0 --span $((1 << 20)) --count 100 --qd 8 --close ||
    xsim_fail "zeros written into the file were not read back through QEMU"
printf 'garbage!' | dd of="$IMG" bs=512 seek=100 conv=notrunc status=none
plug
if front --workload read --expect-gen 0 --span 65536 --count 400 --qd 8 --bs 4096 --seed 1 --close \
        > "$XSIM_TMP/neg.out" 2>&1; then
    xsim_fail "a corrupted sector read through QEMU went unnoticed"
fi
grep -q 'sector 100 .*unrelated bytes' "$XSIM_TMP/neg.out" ||
    { cat "$XSIM_TMP/neg.out"; xsim_fail "the read failed, but not on the corrupted sector"; }

# 5. Malformed requests are rejected with an error response, and QEMU keeps
#    serving the ring afterwards.
plug
front --workload none --close \
    --raw op=read,nr_segments=12,expect=error \
    --raw op=read,gref=4000,expect=error \
    --raw op=write,sector=999999999,expect=error \
    --raw op=read,expect=okay > "$XSIM_TMP/raw.out" || { cat "$XSIM_TMP/raw.out"; xsim_fail "raw requests"; }
[ "$(grep -c '^raw ' "$XSIM_TMP/raw.out")" = 4 ] || { cat "$XSIM_TMP/raw.out"; xsim_fail "not every raw request got its response"; }

# 6. QMP quit: QEMU exits cleanly and removes the device's nodes.
plug
xsim_qemu_stop $DOM || xsim_fail "QEMU did not quit cleanly"
xsim_wait_gone $BE 5 || xsim_fail "QEMU left its backend nodes after quit"
echo PASS
