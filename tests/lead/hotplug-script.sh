#!/bin/bash
# conf/block-xenblkd, the hotplug script xl runs for disks served by
# xenblkd: it reports success or a clear error through hotplug-status /
# hotplug-error, and with it libxl's sequence (InitWait, then the script,
# then the frontend connects) completes against the real daemon.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
xsim_start
script="$top_srcdir/conf/block-xenblkd"
be=/local/domain/0/backend/vbd3/7
fails=0
bad() { xsim_log "FAIL: $*"; fails=$((fails + 1)); }

# run_script DEVID ACTION: as libxl runs it (relative XENBUS_PATH, no stdin).
run_script() {
    XENBUS_PATH=backend/vbd3/7/$1 XENBUS_TYPE=vbd3 XENBUS_BASE_PATH=backend \
        "$script" "$2" </dev/null >/dev/null 2>"$XSIM_TMP/script.err"
}

# expect_error DEVID PATTERN: the script failed and said why.
expect_error() {
    if run_script "$1" add; then bad "devid $1: script succeeded"; return; fi
    [ "$(xenstore-read "$be/$1/hotplug-status")" = error ] || bad "devid $1: hotplug-status is not error"
    xenstore-read "$be/$1/hotplug-error" | grep -q -- "$2" ||
        bad "devid $1: hotplug-error '$(xenstore-read "$be/$1/hotplug-error")' lacks '$2'"
}

truncate -s 8M "$XSIM_TMP/ok.img"
truncate -s 8M "$XSIM_TMP/ro.img"
chmod 0444 "$XSIM_TMP/ro.img"
xsim_add_disk vbd3 7 51712 "aio:$XSIM_TMP/ok.img" w
xsim_add_disk vbd3 7 51728 "aio:$XSIM_TMP/missing.img" w
xsim_add_disk vbd3 7 51744 "vhd:$XSIM_TMP/ok.img" w
xsim_add_disk vbd3 7 51760 "$XSIM_TMP/ro.img" r

expect_error 51728 "does not exist"
expect_error 51744 "unsupported params"
# Read-only target with mode r is fine (root can write anything, so the
# writable check is only meaningful for unprivileged runs).
run_script 51760 add || bad "read-only disk with mode r refused: $(cat "$XSIM_TMP/script.err")"
if XENBUS_PATH= "$script" add </dev/null 2>/dev/null; then bad "ran without XENBUS_PATH"; fi
if run_script 51712 frobnicate; then bad "unknown action accepted"; fi

# The good disk, end to end with the daemon: InitWait comes first, the
# script then reports connected, and only then does the disk connect.
xsim_daemon --kinds vbd3
xsim_wait_key "$be/51712/state" 2 10 || bad "no InitWait before the hotplug script"
run_script 51712 add || bad "script failed on a good disk: $(cat "$XSIM_TMP/script.err")"
[ "$(xenstore-read "$be/51712/hotplug-status")" = connected ] || bad "hotplug-status is not connected"
"$top_builddir/tests/frontend/xsim-blkfront" --domid 7 --vdev 51712 --workload verify \
    --count 64 --close || bad "verified workload after the hotplug script failed"
run_script 51712 remove || bad "remove failed"

[ "$fails" -eq 0 ] || xsim_fail "$fails check(s) failed"
xsim_log PASS
