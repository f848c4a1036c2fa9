#!/bin/bash
# Connect, disconnect, reconnect: the keys published at Connected (sectors,
# sector sizes, info with VDISK_READONLY/VDISK_CDROM), multi-page and
# multi-queue rings, the protocol default, and that after a disconnect the
# daemon holds no fd to the store and the guest has no grant mapped and no
# event channel bound any more.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
disk=$(make_disk disk.img 64)
xsim_add_disk qdisk 5 xvda "aio:$disk"
xsim_daemon --kinds qdisk --max-queues 4
be=$(be_dir qdisk 5 51712)
xsim_wait_key "$be/state" 2
guest_start 5

connect() {  # connect DOMID DEVID [PROTOCOL]
    local b=$(be_dir qdisk "$1" "$2")
    fe_write_rings "$1" "$2" "${3:-x86_64-abi}"
    fe_state "$1" "$2" 3
    xsim_wait_key "$b/state" 4 || xsim_fail "domain $1 device $2 did not connect"
}

connect 5 51712
expect_key "$be/sectors" 131072
expect_key "$be/sector-size" 512
# The file's filesystem block (4096 on ext4 and tmpfs): guests align to it.
expect_key "$be/physical-sector-size" "$(file_pss "$disk")"
expect_key "$be/info" 0
wait_log "domain 5 qdisk/51712: connected 1 queue, ring order 0, x86_64 protocol, persistent grants on"
check "ring page mapped and event channel bound" [ "$(guest_status 5)" = "1 1" ]
wait_fds_to "$disk" 1

# Frontend Closing -> backend Closing; Closed -> Closed; all released.
fe_state 5 51712 5
xsim_wait_key "$be/state" 5
fe_state 5 51712 6
xsim_wait_key "$be/state" 6
wait_guest_released 5
wait_fds_to "$disk" 0

# Reconnect: Initialising again after Closed brings InitWait back.
fe_state 5 51712 1
xsim_wait_key "$be/state" 2 || xsim_fail "no InitWait after the frontend restarted"
wait_fds_to "$disk" 1
connect 5 51712
check "reconnected ring mapped" [ "$(guest_status 5)" = "1 1" ]
# Skipped states: straight from Connected to Closed.
fe_state 5 51712 6
xsim_wait_key "$be/state" 6
wait_guest_released 5
wait_fds_to "$disk" 0

# Read-only, removable cdrom, no protocol key (x86_32 as Linux and QEMU).
ro=$(make_disk ro.iso 10)
xsim_add_disk qdisk 6 xvda "aio:$ro" r device-type=cdrom removable=1 fe:!protocol
guest_start 6
xsim_wait_key "$(be_dir qdisk 6 51712)/state" 2
connect 6 51712 none
expect_key "$(be_dir qdisk 6 51712)/info" $((1 | 2 | 4))
expect_key "$(be_dir qdisk 6 51712)/sectors" 20480
wait_log "domain 6 qdisk/51712: connected 1 queue, ring order 0, x86_32 protocol"
wait_log "domain 6 qdisk/51712: opened .*ro.iso: 20480 sectors, sector size 512/$(file_pss "$ro"), read-only"

# Four-page rings on two queues.
if [ "$(nproc)" -ge 2 ]; then
    mq=$(make_disk mq.img 16)
    xsim_add_disk qdisk 7 xvda "aio:$mq"
    guest_start 7 --queues 2 --order 2
    xsim_wait_key "$(be_dir qdisk 7 51712)/state" 2
    connect 7 51712 x86_32-abi
    wait_log "domain 7 qdisk/51712: connected 2 queues, ring order 2, x86_32 protocol"
    check "8 ring pages mapped, 2 event channels bound" [ "$(guest_status 7)" = "8 2" ]
    fe_state 7 51712 6
    xsim_wait_key "$(be_dir qdisk 7 51712)/state" 6
    wait_guest_released 7
else
    xsim_log "one CPU: multi-queue part skipped"
fi

# A frontend that vanishes (its directory deleted, as when the guest is
# destroyed) while connected: the backend closes and releases everything.
xenstore-rm "$(fe_dir 6 51712)"
xsim_wait_key "$(be_dir qdisk 6 51712)/state" 6
wait_guest_released 6
wait_fds_to "$ro" 0
check "daemon still running" xsim_running xenblkd
exit 0
