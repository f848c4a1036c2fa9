#!/bin/bash
# Removal the way libxl does it: online=0 + state=5 make a connected device
# drain and reach Closed; the daemon leaves the backend directory for the
# toolstack to delete and frees the device once it is deleted.  A backend
# directory deleted under a connected device (forced removal) frees it
# too.  Nothing stays open or mapped, and the same device can be re-added.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
disk=$(make_disk disk.img 16)
xsim_add_disk qdisk 5 xvda "aio:$disk"
xsim_daemon --kinds qdisk
be=$(be_dir qdisk 5 51712)
xsim_wait_key "$be/state" 2
guest_start 5
fe_write_rings 5 51712
fe_state 5 51712 3
xsim_wait_key "$be/state" 4

# libxl: online=0 and state=5 in one transaction, then wait for 6.
printf 'write %s/online 0\nwrite %s/state 5\n' "$be" "$be" | xsim_xs
xsim_wait_key "$be/state" 6 || xsim_fail "online=0 did not lead to Closed"
wait_guest_released 5
wait_fds_to "$disk" 0
settle
check "backend directory left for the toolstack" xsim_exists "$be/params"
expect_key "$be/state" 6
xenstore-rm "$be"
wait_log "domain 5 qdisk/51712: backend directory removed, device freed"
settle
expect_absent "$be"   # not resurrected by a late write

# Re-adding the same device gives a fresh device object.
xsim_add_disk qdisk 5 xvda "aio:$disk"
xsim_wait_key "$be/state" 2 || xsim_fail "re-added device did not reach InitWait"
fe_write_rings 5 51712
fe_state 5 51712 3
xsim_wait_key "$be/state" 4
# The whole libxl sequence through the harness.
xsim_remove_disk qdisk 5 xvda || xsim_fail "xsim_remove_disk: backend did not close in time"
wait_guest_released 5
wait_fds_to "$disk" 0
# Released and closed says nothing of the deleted directory's log line:
# once the daemon settled, it has acted on the deletion.
settle
[ "$(grep -c 'domain 5 qdisk/51712: backend directory removed, device freed' "$XSIM_LOGDIR/xenblkd.log")" = 2 ] ||
    xsim_fail "second removal did not free the device"

# Forced removal: the directory disappears under a connected device.
disk2=$(make_disk disk2.img 16)
xsim_add_disk qdisk 5 xvdb "aio:$disk2"
be2=$(be_dir qdisk 5 51728)
xsim_wait_key "$be2/state" 2
fe_write_rings 5 51728
fe_state 5 51728 3
xsim_wait_key "$be2/state" 4
xenstore-rm "$be2"
wait_log "domain 5 qdisk/51728: backend directory removed, device freed"
wait_guest_released 5
wait_fds_to "$disk2" 0
settle
expect_absent "$be2"

# online=0 before the frontend ever connected.
xsim_add_disk qdisk 5 xvdc "aio:$disk2"
be3=$(be_dir qdisk 5 51744)
xsim_wait_key "$be3/state" 2
xsim_remove_disk qdisk 5 xvdc || xsim_fail "idle device did not close on removal"
wait_log "domain 5 qdisk/51744: backend directory removed, device freed"
wait_fds_to "$disk2" 0
check "daemon still running" xsim_running xenblkd
exit 0
