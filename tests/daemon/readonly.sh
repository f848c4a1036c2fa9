#!/bin/bash
# Read-only devices (mode r): info carries VDISK_READONLY, no discard is
# offered, reads return what is in the backing file (written there
# directly, not through the daemon), and every kind of write - direct,
# indirect, WRITE_BARRIER with data, discard - gets an error status,
# with persistent grants and without.  The file is bit-for-bit unchanged
# afterwards.  Then the same image served read-write accepts the writes.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
xsim_daemon --kinds vbd3
img=$(make_disk ro.img 4)
"$XBD_PATTERN" fill --gen 7 "$img" >/dev/null || xsim_fail "cannot prepare $img"
sum=$(sha256sum <"$img")
vbd3_disk 5 51712 "$img" r
be=$(be_dir vbd3 5 51712)
expect_key "$be/feature-discard" 0

# VDISK_READONLY = 4 (blkif.h).
writes=(--raw op=write,expect=error
        --raw op=write,nr_segments=11,expect=error
        --raw op=indirect,indirect_op=write,nr_segments=16,expect=error
        --raw op=barrier,nr_segments=1,expect=error
        --raw op=discard,sector=0,nr_sectors=8,expect=eopnotsupp
        --raw op=read,expect=okay)
fe ro-pers 5 --vdev 51712 --workload read --expect-gen 7 --count 200 --bs 64k --close "${writes[@]}"
expect_key "$be/info" 4
fe ro-copy 5 --vdev 51712 --no-persistent --workload read --expect-gen 7 --count 200 --bs 64k --close "${writes[@]}"
js_defer ro-pers "d['negotiated']['info']" 4 "d['requests']['read'] >= 200" True \
    "d['responses']['error']" 4 "d['responses']['eopnotsupp']" 1 \
    "d['backend_features']['discard']" False
js_defer ro-copy "d['negotiated']['info']" 4 "d['responses']['error']" 4
[ "$(sha256sum <"$img")" = "$sum" ] || xsim_fail "the read-only image changed"
pattern_check "$img" 7
xsim_remove_disk vbd3 5 51712 || xsim_fail "the read-only device did not close"
wait_fds_to "$img" 0

# The same image read-write: the same raw writes succeed (so the errors
# above were the read-only mode, not malformed requests).
vbd3_disk 6 51712 "$img" w
fe rw 6 --vdev 51712 --workload none --close \
    --raw op=write,expect=okay \
    --raw op=write,nr_segments=11,expect=okay \
    --raw op=indirect,indirect_op=write,nr_segments=16,expect=okay \
    --raw op=barrier,nr_segments=1,expect=okay \
    --raw op=discard,sector=0,nr_sectors=8,expect=okay
expect_key "$(be_dir vbd3 6 51712)/info" 0
[ "$(sha256sum <"$img")" != "$sum" ] || xsim_fail "read-write raw writes did not change the image"
js_check_all
exit 0
