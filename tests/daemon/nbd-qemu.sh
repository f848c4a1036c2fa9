#!/bin/bash
# QEMU's NBD client against the daemon's local-attach socket: the block
# layer qemu-system-xen uses for an HVM guest's emulated disk when libxl
# gives it nbd+unix:///?socket=<physical-device-path> with format=raw
# (libxl_dm.c).  QEMU asks for structured replies and block status, which
# the daemon refuses, and must fall back to simple replies; it honours the
# advertised block sizes.  No HVM guest runs here (TCG has no nested VMX),
# so qemu-img and qemu-io stand in for the device model.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
command -v qemu-io >/dev/null || xsim_skip "qemu-io not installed (Debian: qemu-utils)"
xsim_start
disk=$XSIM_TMP/disk.img
head -c $((8 << 20)) /dev/urandom >"$disk"
ro=$XSIM_TMP/ro.img
head -c $((4 << 20)) /dev/urandom >"$ro"
xsim_add_disk vbd3 9 xvda "aio:$disk"
xsim_add_disk vbd3 9 xvdb "aio:$ro" r
xsim_daemon --kinds vbd3
for dev in xvda xvdb; do
    be=$(be_dir vbd3 9 "$(xsim_vdev_to_devid $dev)")
    xsim_wait_key "$be/state" 2
    xsim_hotplug_connected vbd3 9 $dev
done
sock=$XSIM_TMP/state/nbd/vbd3-9-51712.sock
rosock=$XSIM_TMP/state/nbd/vbd3-9-51728.sock
xsim_wait_key "$(be_dir vbd3 9 51712)/physical-device-path" "$sock"
xsim_wait_key "$(be_dir vbd3 9 51728)/physical-device-path" "$rosock"
uri="nbd+unix:///?socket=$sock"

qemu-img info -f raw "$uri" >"$XSIM_TMP/info" 2>&1 || { cat "$XSIM_TMP/info"; xsim_fail "qemu-img info failed"; }
cat "$XSIM_TMP/info" >&2
check "qemu-img: virtual size 8 MiB" grep -q "virtual size: 8 MiB (8388608 bytes)" "$XSIM_TMP/info"
check "qemu-img compare: the export is the backing file" \
    qemu-img compare -f raw -F raw "$uri" "$disk"
# Writes at an odd offset and length: QEMU aligns them to the advertised
# minimum itself (read-modify-write), so they land exactly.
qemu-io -f raw -c 'write -P 0x5a 1000 3000' -c 'flush' -c 'read -P 0x5a 1000 3000' "$uri" \
    >"$XSIM_TMP/io" 2>&1 || { cat "$XSIM_TMP/io"; xsim_fail "qemu-io write/read failed"; }
grep -q 'Pattern verification failed' "$XSIM_TMP/io" && { cat "$XSIM_TMP/io"; xsim_fail "pattern mismatch"; }
check "qemu-io's write is in the file" \
    cmp <(head -c 3000 /dev/zero | tr '\0' 'Z') <(dd if="$disk" bs=1 skip=1000 count=3000 status=none)
check "qemu-img compare after the write" qemu-img compare -f raw -F raw "$uri" "$disk"

# The read-only disk: QEMU sees the flag and refuses to open it for
# writing; read-only it reads the same bytes.
if qemu-io -f raw -c 'write -P 1 0 4096' "nbd+unix:///?socket=$rosock" >"$XSIM_TMP/roio" 2>&1; then
    cat "$XSIM_TMP/roio"
    xsim_fail "qemu-io opened the read-only disk for writing"
fi
cat "$XSIM_TMP/roio" >&2
check "QEMU refused: the export is read-only" grep -q 'Permission denied' "$XSIM_TMP/roio"
check "read-only file unchanged" qemu-img compare -f raw -F raw "nbd+unix:///?socket=$rosock" "$ro"
exit 0
