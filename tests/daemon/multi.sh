#!/bin/bash
# Several guests at once, on two backend kinds: all connect; one guest that
# breaks its ring protocol is disconnected alone, with a log line naming
# it, while the others stay connected; a guest closing does not disturb
# the others either.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
xsim_daemon --kinds vbd3,qdisk
declare -A kind=([11]=vbd3 [12]=qdisk [13]=qdisk [14]=vbd3)
for d in 11 12 13 14; do
    img=$(make_disk "d$d.img" 8)
    xsim_add_disk "${kind[$d]}" "$d" xvda "aio:$img"
    [ "${kind[$d]}" = vbd3 ] && xsim_hotplug_connected vbd3 "$d" xvda
    guest_start "$d"
done
for d in 11 12 13 14; do
    xsim_wait_key "$(be_dir "${kind[$d]}" "$d" 51712)/state" 2
    wait_fds_to "$XSIM_TMP/d$d.img" 1
    fe_write_rings "$d" 51712
    fe_state "$d" 51712 3
done
for d in 11 12 13 14; do
    xsim_wait_key "$(be_dir "${kind[$d]}" "$d" 51712)/state" 4 || xsim_fail "guest $d did not connect"
    check "guest $d ring mapped" [ "$(guest_status "$d")" = "1 1" ]
done

# Guest 12 corrupts its ring.
kill -USR2 "$(xsim_pid guest12)"
xsim_wait_key "$(be_dir qdisk 12 51712)/state" 5
wait_log "error: domain 12 qdisk/51712: frontend broke the protocol"
wait_guest_released 12
settle
for d in 11 13 14; do
    expect_key "$(be_dir "${kind[$d]}" "$d" 51712)/state" 4
    check "guest $d unaffected by guest 12" [ "$(guest_status "$d")" = "1 1" ]
done
grep -E "error: domain (11|13|14) " "$XSIM_LOGDIR/xenblkd.log" && xsim_fail "errors logged for innocent guests"

# Guest 11 closes; 13 and 14 carry on.
fe_state 11 51712 6
xsim_wait_key "$(be_dir vbd3 11 51712)/state" 6
wait_guest_released 11
for d in 13 14; do
    expect_key "$(be_dir "${kind[$d]}" "$d" 51712)/state" 4
    check "guest $d unaffected by guest 11" [ "$(guest_status "$d")" = "1 1" ]
done
check "daemon still running" xsim_running xenblkd
exit 0
