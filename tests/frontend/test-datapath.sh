#!/bin/bash
# The frontend's data path end to end against xenblkd: every ring ABI,
# persistent and per-request grants, indirect descriptors, several disks
# and queues, flush and discard, reconnects, raw requests, a backend-driven
# removal while holding, and - the point of a test client - that a corrupted
# sector on disk is caught and named.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
[ -x "$top_builddir/src/xenblkd" ] || xsim_skip "xenblkd not built"
xsim_start

FE=("$top_builddir/tests/frontend/xsim-blkfront" --domid 5 --timeout 10)
fails=0
bad() { xsim_log "FAIL: $*"; fails=$((fails + 1)); }
json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
json_is() {
    local got
    got=$(json "$1" "$2")
    [ "$got" = "$3" ] || bad "$1: $2 = $got, expected $3"
}
json_gt() {
    local got
    got=$(json "$1" "$2")
    [ "$got" -gt "$3" ] || bad "$1: $2 = $got, expected > $3"
}

n=0
# disk SIZE: a new vbd3 disk of guest 5, its devid in $dev.
disk() {
    n=$((n + 1))
    dev=$((51712 + 16 * n))
    truncate -s "$1" "$XSIM_TMP/d$n.img"
    xsim_add_disk vbd3 5 "$dev" "aio:$XSIM_TMP/d$n.img"
    xsim_wait_key "/local/domain/0/backend/vbd3/5/$dev/state" 2
    xsim_hotplug_connected vbd3 5 "$dev"
}
xsim_daemon --kinds vbd3

# Persistent grants, indirect, x86_64: mapped once, reused.
disk 64M
"${FE[@]}" --vdev $dev --workload verify --count 200 --qd 16 --close --stats-json "$XSIM_TMP/p.json" ||
    bad "verify with persistent grants"
json_is "$XSIM_TMP/p.json" "j['disks'][0]['requests']['write']" 200
json_is "$XSIM_TMP/p.json" "j['disks'][0]['requests']['read']" 200
json_is "$XSIM_TMP/p.json" "j['disks'][0]['negotiated']['persistent']" True
json_gt "$XSIM_TMP/p.json" "j['disks'][0]['requests']['indirect']" 0
json_is "$XSIM_TMP/p.json" "j['disks'][0]['responses']['okay']" 400
json_is "$XSIM_TMP/p.json" "j['grant_stats']['pages_mapped'] == j['grant_stats']['pages_unmapped']" True

# A queue depth deeper than the ring: the workload caps itself at the
# ring's slots instead of failing to queue.
disk 16M
"${FE[@]}" --vdev $dev --workload verify --count 100 --qd 100 --close ||
    bad "verify with --qd deeper than the ring"

# Per-request grants on the x86_32 layout, direct segments only, with two
# reconnects: data written before each reconnect is verified after it.
disk 64M
"${FE[@]}" --vdev $dev --workload mixed --count 300 --no-persistent --no-indirect --protocol x86_32-abi \
    --reconnect 2 --close --stats-json "$XSIM_TMP/np.json" || bad "mixed, per-request grants, reconnects"
json_is "$XSIM_TMP/np.json" "j['disks'][0]['connects']" 3
json_is "$XSIM_TMP/np.json" "j['disks'][0]['requests']['indirect']" 0
json_is "$XSIM_TMP/np.json" "j['disks'][0]['negotiated']['persistent']" False
json_gt "$XSIM_TMP/np.json" "j['disks'][0]['grants_granted']" 300

# No protocol key (x86_32 layout), native, multi-page ring, two disks at once.
disk 32M; a=$dev
disk 16M; b=$dev
"${FE[@]}" --vdev $a --protocol none --workload verify --count 100 --close || bad "protocol none"
"${FE[@]}" --vdev $a --vdev $b --protocol native --ring-order 2 --qd 64 --workload verify --count 150 \
    --close --stats-json "$XSIM_TMP/two.json" || bad "two disks, order-2 rings"
json_is "$XSIM_TMP/two.json" "j['disks'][1]['negotiated']['ring_order']" 2
json_is "$XSIM_TMP/two.json" "j['disks'][1]['requests']['read']" 150
"${FE[@]}" --vdev $b --queues 2 --workload verify --count 100 --close --stats-json "$XSIM_TMP/mq.json" ||
    bad "two queues"
json_is "$XSIM_TMP/mq.json" "j['disks'][0]['negotiated']['queues']" 2

# Flush and discard.
disk 32M
"${FE[@]}" --vdev $dev --workload flush --count 40 --close --stats-json "$XSIM_TMP/f.json" || bad "flush"
json_is "$XSIM_TMP/f.json" "j['disks'][0]['requests']['flush'] + j['disks'][0]['requests']['barrier']" 40
"${FE[@]}" --vdev $dev --workload discard --count 40 --close --stats-json "$XSIM_TMP/dc.json" || bad "discard"
json_is "$XSIM_TMP/dc.json" "j['disks'][0]['requests']['discard']" 40

# Raw requests: the backend's answers to bad requests are reported.
"${FE[@]}" --vdev $dev --raw op=read,expect=okay --raw op=read,nr_segments=12,expect=error \
    --raw op=read,gref=4000,expect=error --raw op=write,sector=99999999,expect=error --close \
    >"$XSIM_TMP/raw.out" || bad "raw requests"
[ "$(grep -c 'status=-1 (error)' "$XSIM_TMP/raw.out")" = 3 ] || bad "raw output: $(cat "$XSIM_TMP/raw.out")"
# ...and a wrong expectation fails the run.
if "${FE[@]}" --vdev $dev --raw op=read,nr_segments=12,expect=okay --close 2>"$XSIM_TMP/rawbad.err"; then
    bad "raw expect=okay on a bad request passed"
fi
grep -q 'expected status 0 (okay), got -1 (error)' "$XSIM_TMP/rawbad.err" || bad "raw mismatch message"

# Verification catches corruption: fill, corrupt one sector behind the
# backend's back, read everything back.
disk 8M
"${FE[@]}" --vdev $dev --workload fill --gen 3 --span 1M --close || bad "fill"
"${FE[@]}" --vdev $dev --workload read --expect-gen 3 --span 1M --count 100 --close || bad "read back after fill"
printf 'garbage!' | dd of="$XSIM_TMP/d$n.img" bs=512 seek=777 conv=notrunc status=none
if "${FE[@]}" --vdev $dev --workload read --expect-gen 3 --span 1M --bs 1M --count 400 --close \
    2>"$XSIM_TMP/corrupt.err"; then
    bad "corrupted sector not detected"
fi
grep -q 'verify: sector 777 .*expected generation 3, found .*: 8 bytes differing (first at byte 0: 67' "$XSIM_TMP/corrupt.err" ||
    bad "corruption message: $(head -3 "$XSIM_TMP/corrupt.err")"

# Held connection, removed by the toolstack: the frontend closes and the
# backend has released every grant.
disk 8M
xsim_bg holder "${FE[@]}" --vdev $dev --workload verify --count 20 --hold 60 \
    --stats-json "$XSIM_TMP/hold.json"
xsim_wait_key "/local/domain/5/device/vbd/$dev/state" 4 || bad "holder did not connect"
# Remove only once the workload is over: requests the backend has not
# consumed when it closes are dropped, as with Linux blkback.
for _ in $(seq 200); do
    grep -q 'workload done, holding' "$XSIM_LOGDIR/holder.log" 2>/dev/null && break
    sleep 0.1
done
grep -q 'workload done, holding' "$XSIM_LOGDIR/holder.log" || bad "holder never finished its workload"
xsim_remove_disk vbd3 5 "$dev" || bad "removal did not complete"
st=$(xsim_wait_exit holder 20) || true
[ "$st" = 0 ] || bad "holder exited with $st"
json_is "$XSIM_TMP/hold.json" "j['disks'][0]['end_access_failures']" 0

[ "$fails" -eq 0 ] || xsim_fail "$fails check(s) failed"
xsim_log "PASS"
