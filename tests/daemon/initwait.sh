#!/bin/bash
# A new device reaches InitWait with its features published before any
# hotplug script ran (libxl runs the script only once it sees InitWait);
# the backing store is opened only when the script reported
# hotplug-status=connected, and hotplug-status=error closes the device.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
disk=$(make_disk disk.img 64)
disk2=$(make_disk disk2.img 8)

xsim_add_disk vbd3 5 xvda "aio:$disk"
xsim_daemon --kinds vbd3,qdisk --max-queues 2 --max-persistent-grants 100
be=$(be_dir vbd3 5 51712)
xsim_wait_key "$be/state" 2 || xsim_fail "no InitWait before the hotplug script"
expect_absent "$be/hotplug-status"
expect_key "$be/feature-persistent" 1
expect_key "$be/feature-max-indirect-segments" 256
expect_key "$be/max-ring-page-order" 4
expect_key "$be/multi-queue-max-queues" "$(( $(nproc) < 2 ? $(nproc) : 2 ))"
expect_key "$be/feature-flush-cache" 1
expect_key "$be/feature-barrier" 1
xsim_log "ok: features published with InitWait"
# The script has not run: the store is not open yet.
settle
check "backing store not opened before hotplug-status" [ "$(daemon_fds_to "$disk")" = 0 ]
expect_key "$be/feature-discard" 0

xsim_hotplug_connected vbd3 5 xvda
wait_fds_to "$disk" 1
xsim_wait_key "$be/feature-discard" 1 || xsim_fail "feature-discard not published after opening"
expect_key "$be/discard-secure" 0
expect_key "$be/discard-alignment" 0
g=$(xsim_read "$be/discard-granularity")
check "discard-granularity ($g) is a power of two >= 512" \
    bash -c "[ $g -ge 512 ] && [ \$(( $g & ($g - 1) )) -eq 0 ]"
expect_key "$be/state" 2

# No hotplug script (qdisk): opened at once; discard-enable=0 is honoured.
xsim_add_disk qdisk 6 xvdb "aio:$disk2" discard-enable=0
be2=$(be_dir qdisk 6 51728)
xsim_wait_key "$be2/state" 2
wait_fds_to "$disk2" 1
expect_key "$be2/feature-discard" 0
expect_absent "$be2/discard-granularity"
expect_key "$be2/feature-persistent" 1

# A hotplug script that failed: the device closes, the store stays closed.
disk3=$(make_disk disk3.img 8)
xsim_add_disk vbd3 7 xvda "aio:$disk3"
be3=$(be_dir vbd3 7 51712)
xsim_wait_key "$be3/state" 2
xsim_write "$be3/hotplug-error" "no such disk: test" "$be3/hotplug-status" error
xsim_wait_key "$be3/state" 5 || xsim_fail "hotplug-status=error did not close the device"
wait_log "domain 7 vbd3/51712: hotplug script failed: no such disk: test"
check "store of the failed device not opened" [ "$(daemon_fds_to "$disk3")" = 0 ]

# Devices that exist before the daemon starts are picked up too.
st=$(xsim_kill xenblkd TERM)
check "daemon exits 0 on SIGTERM (got $st)" [ "$st" = 0 ]
xsim_add_disk qdisk 8 xvda "aio:$disk3"
XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --kinds qdisk
xsim_wait_key "$(be_dir qdisk 8 51712)/state" 2
check "daemon still running" xsim_running xenblkd2
exit 0
