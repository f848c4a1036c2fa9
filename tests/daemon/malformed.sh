#!/bin/bash
# A frontend that writes missing, malformed, out-of-range or inconsistent
# ring keys is refused: the backend goes Closing with a log line naming
# the domain, the device and the reason, holds nothing, and the same
# frontend can connect properly afterwards.  A frontend that corrupts its
# ring once connected is disconnected the same way.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
disk=$(make_disk disk.img 16)
xsim_add_disk qdisk 5 xvda "aio:$disk"
xsim_daemon --kinds qdisk --max-queues 2
be=$(be_dir qdisk 5 51712)
fe=$(fe_dir 5 51712)
xsim_wait_key "$be/state" 2
guest_start 5
read -r _ _ port ref < "$XSIM_TMP/guest5.rings"

ring_keys="ring-ref ring-ref0 ring-ref1 ring-ref2 ring-page-order event-channel
    multi-queue-num-queues queue-0 queue-1 feature-persistent"

# refused NAME PATTERN KEY=VALUE...: with only these frontend keys (plus
# protocol), connecting is refused with a log line matching PATTERN.
refused() {
    local name=$1 pat=$2 k
    shift 2
    for k in $ring_keys; do xenstore-rm "$fe/$k" 2>/dev/null || true; done
    # xsim-xs takes any value (xenstore-write would parse "-1" as an option).
    for k in "$@"; do printf 'write %s/%s %s\n' "$fe" "${k%%=*}" "${k#*=}"; done | xsim_xs
    fe_state 5 51712 3
    xsim_wait_key "$be/state" 5 || xsim_fail "$name: not refused"
    wait_log "error: domain 5 qdisk/51712: refusing to connect: $pat"
    wait_guest_released 5
    check "$name: daemon still running" xsim_running xenblkd
    # The frontend gives up and starts over.
    fe_state 5 51712 6
    xsim_wait_key "$be/state" 6
    fe_state 5 51712 1
    xsim_wait_key "$be/state" 2
}

refused "no ring-ref" "ring-ref is missing" "event-channel=$port"
refused "no event-channel" "event-channel is missing" "ring-ref=$ref"
refused "ring-ref not a number" "ring-ref = 'abc' is not a number" "ring-ref=abc" "event-channel=$port"
refused "ring-ref negative" "ring-ref = '-1' is not a number" "ring-ref=-1" "event-channel=$port"
refused "ring-ref too large" "ring-ref = '4294967296' is not a number in 0..4294967295" \
    "ring-ref=4294967296" "event-channel=$port"
refused "ring-ref with junk" "ring-ref = '$ref x' is not a number" "ring-ref=$ref x" "event-channel=$port"
refused "event-channel 0" "event-channel = 0 is not a valid port" "ring-ref=$ref" "event-channel=0"
refused "ring-page-order too large" "ring-page-order = '5' is not a number in 0..4" \
    "ring-page-order=5" "ring-ref0=$ref" "event-channel=$port"
refused "ring-refN missing" "ring-ref2 is missing" \
    "ring-page-order=2" "ring-ref0=$ref" "ring-ref1=$ref" "event-channel=$port"
refused "too many queues" "multi-queue-num-queues = 100, we offer 1..[12]" \
    "multi-queue-num-queues=100" "ring-ref=$ref" "event-channel=$port"
refused "zero queues" "multi-queue-num-queues = 0, we offer" \
    "multi-queue-num-queues=0" "ring-ref=$ref" "event-channel=$port"
# feature-persistent is not refused whatever it says: Linux blkback reads
# it as a number and anything else as 0 (tests/hostile/state-flap.sh).
if [ "$(nproc)" -ge 2 ]; then
    refused "queue missing" "queue-1/ring-ref is missing" "multi-queue-num-queues=2" \
        "queue-0/ring-ref=$ref" "queue-0/event-channel=$port" "queue-1/event-channel=$port"
fi
xenstore-write "$fe/protocol" "sparc-abi"
refused "unknown protocol" "unknown protocol 'sparc-abi'" "ring-ref=$ref" "event-channel=$port"
xenstore-write "$fe/protocol" "$(printf 'x86_64-abi\001\033[2J')"
refused "protocol with control characters" "unknown protocol 'x86_64-abi\?\?\[2J'" \
    "ring-ref=$ref" "event-channel=$port"
grep -q $'\033' "$XSIM_LOGDIR/xenblkd.log" && xsim_fail "control characters reached the log"
xenstore-write "$fe/protocol" x86_64-abi
# Well-formed but not granted to us: the ring cannot be mapped.  Both
# log the same refusal: each waits for its own reason too.
refused "ring-ref not granted" "cannot start 1 ring" "ring-ref=$((ref + 100))" "event-channel=$port"
wait_log "domain 5 qdisk/51712.*: cannot map 1 ring page\\(s\\) of domain 5"
refused "port not ours" "cannot start 1 ring" "ring-ref=$ref" "event-channel=$((port + 50))"
wait_log "domain 5 qdisk/51712.*: cannot bind event channel $((port + 50)) of domain 5"
refused "huge value" "ring-ref = '1{20,60}' is not a number" \
    "ring-ref=$(head -c 3000 /dev/zero | tr '\0' 1)" "event-channel=$port"
long=$(awk 'length > 400' "$XSIM_LOGDIR/xenblkd.log" | head -c 200)
[ -z "$long" ] || xsim_fail "guest-supplied value not truncated in the log: $long..."

# After all that, a correct frontend connects.
for k in $ring_keys; do xenstore-rm "$fe/$k" 2>/dev/null || true; done
fe_write_rings 5 51712
fe_state 5 51712 3
xsim_wait_key "$be/state" 4 || xsim_fail "correct keys after refusals: no Connected"
check "ring mapped after recovery" [ "$(guest_status 5)" = "1 1" ]

# A ring whose producer index runs more than a ring ahead is fatal.
kill -USR2 "$(xsim_pid guest5)"
xsim_wait_key "$be/state" 5 || xsim_fail "corrupted ring: no Closing"
wait_log "error: domain 5 qdisk/51712: frontend broke the protocol: .*; disconnecting"
wait_guest_released 5
wait_fds_to "$disk" 0
fe_state 5 51712 6
xsim_wait_key "$be/state" 6
check "daemon still running" xsim_running xenblkd
exit 0
