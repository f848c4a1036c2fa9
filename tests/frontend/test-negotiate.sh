#!/bin/bash
# The frontend's xenbus negotiation, checked key by key against a scripted
# backend (fake-backend.sh): ring keys for one and several pages and queues,
# clamping to the backend's limits (including the deprecated
# max-ring-pages), protocol and feature-persistent, the Closing/Closed
# handshake, and clear failures when the backend misbehaves.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
xsim_start

FE="$top_builddir/tests/frontend/xsim-blkfront"
FAKE="$top_srcdir/tests/frontend/fake-backend.sh"
fails=0
bad() { xsim_log "FAIL: $*"; fails=$((fails + 1)); }

# key_is PATH VALUE / key_absent PATH
key_is() {
    local got
    got=$(xenstore-read "$1" 2>/dev/null || echo '<absent>')
    [ "$got" = "$2" ] || bad "$1 = '$got', expected '$2'"
}
key_absent() { ! xenstore-exists "$1" 2>/dev/null || bad "$1 exists, expected absent"; }
# json_is FILE EXPR VALUE: python3 evaluates EXPR on the parsed stats (j).
json_is() {
    local got
    got=$(python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1")
    [ "$got" = "$3" ] || bad "stats: $2 = $got, expected $3"
}

# setup DOMID DEVID MODE KEY=VALUE...: a disk with a fake backend.
setup() {
    local domid=$1 devid=$2 mode=$3
    shift 3
    xsim_add_disk vbd "$domid" "$devid" "$XSIM_TMP/none.img"
    xsim_bg "fake-$domid-$devid" bash "$FAKE" "/local/domain/0/backend/vbd/$domid/$devid" \
        "/local/domain/$domid/device/vbd/$devid" "$mode" "$@"
}
GEOM=(c:sectors=2048 c:info=0 c:sector-size=512)

# 1. Several pages and queues: ring-page-order at the top, per-queue
#    ring-refN + event-channel, no top-level ring-ref.
setup 5 51712 normal max-ring-page-order=2 multi-queue-max-queues=4 feature-persistent=1 \
    feature-max-indirect-segments=64 "${GEOM[@]}" c:physical-sector-size=4096
"$FE" --domid 5 --vdev 51712 --ring-order 1 --queues 2 --workload none --close \
    --timeout 10 --stats-json "$XSIM_TMP/s1.json" || bad "multi-queue connect failed"
fe=/local/domain/5/device/vbd/51712
key_is $fe/ring-page-order 1
key_is $fe/multi-queue-num-queues 2
key_is $fe/protocol x86_64-abi
key_is $fe/feature-persistent 1
key_absent $fe/ring-ref
key_absent $fe/event-channel
for q in 0 1; do
    for r in 0 1; do
        [[ $(xenstore-read $fe/queue-$q/ring-ref$r) =~ ^[0-9]+$ ]] || bad "queue-$q/ring-ref$r not a gref"
    done
    key_absent $fe/queue-$q/ring-ref2
    [[ $(xenstore-read $fe/queue-$q/event-channel) =~ ^[0-9]+$ ]] || bad "queue-$q/event-channel"
done
[ "$(xenstore-read $fe/queue-0/ring-ref0)" != "$(xenstore-read $fe/queue-1/ring-ref0)" ] ||
    bad "queues share a ring grant"
key_is $fe/state 6
key_is /local/domain/0/backend/vbd/5/51712/state 6
json_is "$XSIM_TMP/s1.json" "j['disks'][0]['negotiated']['ring_order']" 1
json_is "$XSIM_TMP/s1.json" "j['disks'][0]['negotiated']['queues']" 2
json_is "$XSIM_TMP/s1.json" "j['disks'][0]['negotiated']['persistent']" True
json_is "$XSIM_TMP/s1.json" "j['disks'][0]['negotiated']['max_segments']" 32
json_is "$XSIM_TMP/s1.json" "j['disks'][0]['negotiated']['physical_sector_size']" 4096
json_is "$XSIM_TMP/s1.json" "j['disks'][0]['negotiated']['sectors']" 2048
json_is "$XSIM_TMP/s1.json" "j['disks'][0]['end_access_failures']" 0

# 2. Clamped to the deprecated max-ring-pages=4 (order 2), one queue when
#    the backend has no multi-queue, no protocol key, persistent refused.
setup 6 51712 normal max-ring-pages=4 "${GEOM[@]}"
"$FE" --domid 6 --vdev 51712 --ring-order 3 --queues 4 --protocol none --no-persistent \
    --workload none --close --timeout 10 --stats-json "$XSIM_TMP/s2.json" || bad "clamped connect failed"
fe=/local/domain/6/device/vbd/51712
key_is $fe/ring-page-order 2
for r in 0 1 2 3; do
    [[ $(xenstore-read $fe/ring-ref$r 2>/dev/null) =~ ^[0-9]+$ ]] || bad "ring-ref$r missing"
done
key_absent $fe/ring-ref4
key_absent $fe/ring-ref
key_absent $fe/multi-queue-num-queues
key_absent $fe/protocol
key_is $fe/feature-persistent 0
json_is "$XSIM_TMP/s2.json" "j['disks'][0]['negotiated']['ring_abi']" x86_32-abi
json_is "$XSIM_TMP/s2.json" "j['disks'][0]['negotiated']['protocol']" None
json_is "$XSIM_TMP/s2.json" "j['disks'][0]['negotiated']['queues']" 1

# 3. A backend offering nothing: one page, "ring-ref", indirect off.
setup 7 51712 normal feature-persistent=1 "${GEOM[@]}"
"$FE" --domid 7 --vdev xvda --ring-order 4 --protocol x86_32-abi --no-persistent --workload none \
    --close --timeout 10 --stats-json "$XSIM_TMP/s3.json" || bad "minimal connect failed"
fe=/local/domain/7/device/vbd/51712
[[ $(xenstore-read $fe/ring-ref) =~ ^[0-9]+$ ]] || bad "ring-ref missing"
key_absent $fe/ring-page-order
key_is $fe/protocol x86_32-abi
json_is "$XSIM_TMP/s3.json" "j['disks'][0]['negotiated']['persistent']" False
json_is "$XSIM_TMP/s3.json" "j['disks'][0]['negotiated']['indirect']" False
json_is "$XSIM_TMP/s3.json" "j['disks'][0]['negotiated']['max_segments']" 11

# 4. A backend that never connects: exit 1 at the end of --timeout (the
# message says which limit ended the wait, not the default 20 s), naming
# the wait.  timeout(1) only turns a hang into a failure.
setup 8 51712 noconnect
if timeout 120 "$FE" --domid 8 --vdev 51712 --workload none --timeout 2 2>"$XSIM_TMP/e4"; then
    bad "frontend succeeded without a connected backend"
fi
grep -q 'timed out after 2\.0s waiting for the backend to connect.*last seen InitWait' "$XSIM_TMP/e4" ||
    bad "timeout message: $(cat "$XSIM_TMP/e4")"

# 5. Garbage from the backend is reported, not trusted.
setup 9 51712 normal c:sectors=lots c:info=0 c:sector-size=512
if "$FE" --domid 9 --vdev 51712 --workload none --timeout 5 2>"$XSIM_TMP/e5"; then
    bad "frontend accepted sectors=lots"
fi
grep -q "sectors: expected an unsigned decimal number, found 'lots'" "$XSIM_TMP/e5" ||
    bad "garbage message: $(cat "$XSIM_TMP/e5")"

# 6. No backend key at all: a clear message.
xsim_add_domain 10
if "$FE" --domid 10 --vdev 51712 --workload none --timeout 2 2>"$XSIM_TMP/e6"; then
    bad "frontend succeeded without a disk"
fi
grep -q 'backend: expected the backend path' "$XSIM_TMP/e6" || bad "missing disk message: $(cat "$XSIM_TMP/e6")"

[ "$fails" -eq 0 ] || xsim_fail "$fails check(s) failed"
xsim_log "PASS"
