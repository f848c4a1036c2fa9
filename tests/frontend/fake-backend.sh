#!/bin/bash
# A scripted xenbus backend for the frontend's negotiation tests: it only
# speaks xenstore (it never maps the rings), so what the frontend writes can
# be checked key by key without depending on any real backend.
#
# usage: fake-backend.sh BACKEND_DIR FRONTEND_DIR MODE [KEY=VALUE ...]
#   KEY=VALUE are written into BACKEND_DIR before InitWait (features);
#   keys prefixed with "c:" are written at Connected instead (geometry).
#   MODE: normal    InitWait, Connected on Initialised, follow the close
#         noconnect InitWait, never Connected (the frontend must time out)
# Needs XENSTORED_PATH (exported by tests/harness/env.sh).
set -u
be=$1 fe=$2 mode=$3
shift 3
log() { echo "fake-backend: $*" >&2; }

# wait_fe STATES...: until the frontend's state is one of them (20 s).
wait_fe() {
    local i s
    for ((i = 0; i < 400; i++)); do
        s=$(xenstore-read "$fe/state" 2>/dev/null || echo absent)
        for w in "$@"; do [ "$s" = "$w" ] && return 0; done
        sleep 0.05
    done
    log "timeout waiting for frontend state in {$*}, last $s"
    exit 1
}

connect_keys=()
for kv in "$@"; do
    case $kv in
    c:*) connect_keys+=("${kv#c:}") ;;
    *) xenstore-write "$be/${kv%%=*}" "${kv#*=}" ;;
    esac
done
xenstore-write "$be/state" 2
log "InitWait"
wait_fe 3
log "frontend Initialised"
[ "$mode" = noconnect ] && exec sleep 3600
for kv in "${connect_keys[@]}"; do
    xenstore-write "$be/${kv%%=*}" "${kv#*=}"
done
xenstore-write "$be/state" 4
log "Connected"
wait_fe 5 6
xenstore-write "$be/state" 5
wait_fe 6
xenstore-write "$be/state" 6
log "Closed"
