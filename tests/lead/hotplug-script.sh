#!/bin/bash
# conf/block-xenblkd, the hotplug script xl runs for disks served by
# xenblkd: it reports success or a clear error through hotplug-status /
# hotplug-error, and with it libxl's sequence (InitWait, then the script,
# then the frontend connects) completes against the real daemon.  For a
# vbd3 disk (libxl 4.20, backendtype=tap) the script returns only once the
# daemon has opened the disk and published physical-device-path, the NBD
# socket libxl hands to dom0's users of the disk as nbd+unix:///?socket=;
# for vbd (Xen 4.17, backendtype=phy) it neither waits nor writes it.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
xsim_start
script="$top_srcdir/conf/block-xenblkd"
be=/local/domain/0/backend/vbd3/7
fails=0
bad() { xsim_log "FAIL: $*"; fails=$((fails + 1)); }

# run_script DEVID ACTION [KIND]: as libxl runs it (relative XENBUS_PATH,
# no stdin).
run_script() {
    local kind=${3:-vbd3}
    XENBUS_PATH=backend/$kind/7/$1 XENBUS_TYPE=$kind XENBUS_BASE_PATH=backend \
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
# The params forms libxl 4.20 writes for tap: "aio:<target>" for format=raw
# (the default) and for a positional "aio:"/"tap:aio:" target, whose prefix
# xl drops; target= is kept verbatim, so target=aio:/x arrives doubled.
xsim_add_disk vbd3 7 51712 "aio:$XSIM_TMP/ok.img" w
xsim_add_disk vbd3 7 51728 "aio:$XSIM_TMP/missing.img" w
xsim_add_disk vbd3 7 51744 "vhd:$XSIM_TMP/ok.img" w
xsim_add_disk vbd3 7 51760 "$XSIM_TMP/ro.img" r
xsim_add_disk vbd3 7 51776 "aio:aio:$XSIM_TMP/ok.img" w
xsim_add_disk vbd 7 51792 "$XSIM_TMP/ok.img" w

expect_error 51728 "does not exist"
expect_error 51744 "raw images and block devices only"
expect_error 51776 "target= verbatim"
# vbd (Xen 4.17's phy): checked and connected at once, nothing published.
run_script 51792 add vbd || bad "vbd disk refused: $(cat "$XSIM_TMP/script.err")"
[ "$(xenstore-read /local/domain/0/backend/vbd/7/51792/hotplug-status)" = connected ] ||
    bad "vbd: hotplug-status is not connected"
! xenstore-exists /local/domain/0/backend/vbd/7/51792/physical-device-path 2>/dev/null ||
    bad "vbd: the script wrote physical-device-path"
if XENBUS_PATH= "$script" add </dev/null 2>/dev/null; then bad "ran without XENBUS_PATH"; fi
if run_script 51712 frobnicate; then bad "unknown action accepted"; fi

# The good disks, end to end with the daemon: InitWait comes first, the
# script then reports connected and returns once the daemon serves the
# disk on its NBD socket, and only then does the disk connect.
xsim_daemon --kinds vbd3
xsim_wait_key "$be/51712/state" 2 10 || bad "no InitWait before the hotplug script"
xsim_wait_key "$be/51760/state" 2 10 || bad "no InitWait before the hotplug script (read-only disk)"
xenstore-exists "$be/51712/physical-device-path" 2>/dev/null &&
    bad "physical-device-path before the script ran"
run_script 51712 add || bad "script failed on a good disk: $(cat "$XSIM_TMP/script.err")"
[ "$(xenstore-read "$be/51712/hotplug-status")" = connected ] || bad "hotplug-status is not connected"
sock=$(xenstore-read "$be/51712/physical-device-path") || bad "no physical-device-path after the script"
[ "${sock:-}" = "$XSIM_TMP/state/nbd/vbd3-7-51712.sock" ] || bad "physical-device-path is '${sock:-}'"
[ -S "${sock:-/nonexistent}" ] || bad "physical-device-path is no socket when the script returns"
if command -v nbdinfo >/dev/null; then
    size=$(nbdinfo --size "nbd+unix:///?socket=$sock") || bad "nbdinfo failed on $sock"
    [ "${size:-}" = $((8 << 20)) ] || bad "NBD export size '${size:-}', want 8 MiB"
else
    xsim_log "nbdinfo not installed (libnbd-bin): NBD export not read"
fi
# Read-only target with mode r is fine (root can write anything, so the
# writable check is only meaningful for unprivileged runs).
run_script 51760 add || bad "read-only disk with mode r refused: $(cat "$XSIM_TMP/script.err")"
[ -S "$(xenstore-read "$be/51760/physical-device-path")" ] || bad "read-only disk: no socket"
"$top_builddir/tests/frontend/xsim-blkfront" --domid 7 --vdev 51712 --workload verify \
    --count 64 --close || bad "verified workload after the hotplug script failed"
run_script 51712 remove || bad "remove failed"

[ "$fails" -eq 0 ] || xsim_fail "$fails check(s) failed"
xsim_log PASS
