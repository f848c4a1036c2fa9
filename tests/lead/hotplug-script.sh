#!/bin/bash
# conf/block-xenblkd, the hotplug script xl runs for disks served by
# xenblkd: it reports success or a clear error through hotplug-status /
# hotplug-error, and with it libxl's sequence (InitWait, then the script,
# then the frontend connects) completes against the real daemon.  For a
# vbd3 disk (libxl 4.20, backendtype=tap) the script returns only once the
# daemon has opened the disk and published physical-device-path, the NBD
# socket libxl hands to dom0's users of the disk as nbd+unix:///?socket=;
# for vbd (Xen 4.17, backendtype=phy) it neither waits nor writes it.
# A disk the daemon refuses reaches InitWait with the reason, which the
# script reports as its failure (what xl shows).
# It refuses a target another domain has unless both attach it read-only
# (the same domain, a local migration's pair and a stub domain may share
# it), and kind vbd while the kernel's xen-blkback is loaded.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
xsim_start
script="$top_srcdir/conf/block-xenblkd"
be=/local/domain/0/backend/vbd3/7
fails=0
bad() { xsim_log "FAIL: $*"; fails=$((fails + 1)); }

# The sysfs the script looks at for module/xen_blkback: a host with
# blkback loaded (kind vbd3 works beside it), or without.
mkdir -p "$XSIM_TMP/sys-blkback/module/xen_blkback" "$XSIM_TMP/sys-none/module"
sysfs=$XSIM_TMP/sys-blkback

# run_script DEVID ACTION [KIND] [DOMID]: as libxl runs it (relative
# XENBUS_PATH, no stdin).
run_script() {
    local kind=${3:-vbd3} domid=${4:-7}
    XENBUS_PATH=backend/$kind/$domid/$1 XENBUS_TYPE=$kind XENBUS_BASE_PATH=backend \
        BLOCK_XENBLKD_SYSFS=$sysfs \
        "$script" "$2" </dev/null >/dev/null 2>"$XSIM_TMP/script.err"
}

# expect_error DEVID PATTERN [KIND] [DOMID]: the script failed and said why.
expect_error() {
    local d=/local/domain/0/backend/${3:-vbd3}/${4:-7}/$1
    if run_script "$1" add "${3:-vbd3}" "${4:-7}"; then bad "$d: script succeeded"; return; fi
    [ "$(xenstore-read "$d/hotplug-status")" = error ] || bad "$d: hotplug-status is not error"
    xenstore-read "$d/hotplug-error" | grep -q -- "$2" ||
        bad "$d: hotplug-error '$(xenstore-read "$d/hotplug-error")' lacks '$2'"
}

# expect_connected DEVID KIND DOMID WHAT: the script accepted the disk
# (kinds that do not wait for the daemon).
expect_connected() {
    local d=/local/domain/0/backend/$2/$3/$1
    run_script "$1" add "$2" "$3" || bad "$4 refused: $(cat "$XSIM_TMP/script.err")"
    [ "$(xenstore-read "$d/hotplug-status")" = connected ] || bad "$4: hotplug-status is not connected"
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
# vbd (Xen 4.17's phy): checked and connected at once, nothing published;
# refused while the kernel's blkback is loaded (it would serve the disk
# and wait for physical-device forever).  ok.img is domain 7's vbd3 disk
# too, writable: the same domain may have a file twice.
expect_error 51792 "xen-blkback is loaded.*backendtype=tap" vbd
sysfs=$XSIM_TMP/sys-none
expect_connected 51792 vbd 7 "vbd disk without blkback (ok.img, also domain 7's vbd3 disk)"
! xenstore-exists /local/domain/0/backend/vbd/7/51792/physical-device-path 2>/dev/null ||
    bad "vbd: the script wrote physical-device-path"

# Sharing between domains, whatever the kinds and the paths: ok.img is
# domain 7's, writable; ro.img domain 7's, read-only.
ln -s ok.img "$XSIM_TMP/ok-link.img"
ln "$XSIM_TMP/ok.img" "$XSIM_TMP/ok-hardlink.img"
truncate -s 8M "$XSIM_TMP/q.img"
xsim_add_disk vbd3 8 51712 "aio:$XSIM_TMP/ok-link.img" w
xsim_add_disk vbd 8 51728 "$XSIM_TMP/ok-hardlink.img" r
xsim_add_disk vbd 8 51744 "$XSIM_TMP/ro.img" r
xsim_add_disk qdisk 11 51712 "aio:$XSIM_TMP/q.img" w
xsim_add_disk vbd 8 51760 "$XSIM_TMP/q.img" w
expect_error 51712 "ok-link.img is already attached to domain 7 (backend/v.*, mode w).*read-only" vbd3 8
expect_error 51728 "already attached to domain 7 " vbd 8
expect_connected 51744 vbd 8 "read-only disk also read-only in domain 7"
expect_error 51760 "already attached to domain 11 (backend/qdisk/11/51712, mode w)" vbd 8
# libxl deletes a disk whose script failed.
for d in vbd3/8/51712 vbd/8/51728 vbd/8/51760; do
    xenstore-rm "/local/domain/0/backend/$d"
    xenstore-rm "/local/domain/8/device/vbd/${d##*/}"
done
# A local migration's incoming domain has the same /vm/<uuid>; a device
# model stub domain has its guest as target.
xsim_add_domain 9 guest7--incoming "$(xenstore-read /local/domain/7/vm | sed 's,^/vm/,,')"
xsim_add_disk vbd 9 51712 "$XSIM_TMP/ok.img" w
expect_connected 51712 vbd 9 "ok.img in the migration's incoming domain"
xsim_add_domain 10 guest7-dm
xenstore-write /local/domain/10/target 7
xsim_add_disk vbd 10 51712 "$XSIM_TMP/ok.img" w
expect_connected 51712 vbd 10 "ok.img in domain 7's stub domain"
# A backend directory libxl left behind for a domain that is gone (its
# /local/domain/<id> deleted) cannot write any more.
xsim_add_disk vbd 12 51712 "$XSIM_TMP/q.img" w
xenstore-rm /local/domain/12
xsim_add_disk vbd 8 51776 "$XSIM_TMP/q.img" r
xenstore-rm /local/domain/0/backend/qdisk/11
expect_connected 51776 vbd 8 "q.img, writable only in a domain that is gone"
sysfs=$XSIM_TMP/sys-blkback
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

# A disk the daemon refuses (a mode it does not know, which the script's own
# checks let through): InitWait all the same, with the reason, so that the
# script libxl then runs fails with it (xl shows hotplug-error); the
# frontend is never served, and the script's failure closes the device.
xsim_add_disk vbd3 7 51808 "aio:$XSIM_TMP/q.img" w mode=x
xsim_wait_key "$be/51808/state" 2 10 || bad "a refused disk with a script did not reach InitWait"
[ "$(xenstore-read "$be/51808/xenblkd-error" 2>/dev/null)" = "unsupported mode 'x'" ] ||
    bad "xenblkd-error is '$(xenstore-read "$be/51808/xenblkd-error" 2>/dev/null)'"
expect_error 51808 "^xenblkd refuses this disk: unsupported mode 'x'$"
xsim_wait_key "$be/51808/state" 5 10 || bad "the refused disk did not close after the script failed"
xenstore-exists "$be/51808/physical-device-path" 2>/dev/null && bad "the refused disk was opened"
# The same refusal without a script: Closing at once, never InitWait.
xsim_add_disk vbd3 7 51824 "aio:$XSIM_TMP/q.img" w mode=x script=
xsim_wait_key "$be/51824/state" 5 10 || bad "a refused disk without a script did not go to Closing"
! xenstore-exists "$be/51824/xenblkd-error" 2>/dev/null ||
    bad "xenblkd-error written for a disk without a script"

[ "$fails" -eq 0 ] || xsim_fail "$fails check(s) failed"
xsim_log PASS
