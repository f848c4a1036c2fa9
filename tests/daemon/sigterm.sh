#!/bin/bash
# SIGTERM (and SIGINT) shut down in order: every device goes Closing then
# Closed after its rings drained, every grant is released, and the daemon
# exits 0.  SIGHUP (a size check, see resize.sh) does not stop it.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
xsim_daemon --kinds qdisk
for d in 5 6; do
    img=$(make_disk "d$d.img" 8)
    xsim_add_disk qdisk "$d" xvda "aio:$img"
    guest_start "$d"
    xsim_wait_key "$(be_dir qdisk "$d" 51712)/state" 2
    fe_write_rings "$d" 51712
    fe_state "$d" 51712 3
    xsim_wait_key "$(be_dir qdisk "$d" 51712)/state" 4
done
# One device waiting for its frontend, one refused.
idle=$(make_disk idle.img 8)
xsim_add_disk qdisk 7 xvda "aio:$idle"
xsim_wait_key "$(be_dir qdisk 7 51712)/state" 2
xsim_add_disk qdisk 8 xvda "vhd:$idle"
xsim_wait_key "$(be_dir qdisk 8 51712)/state" 5

kill -HUP "$(xsim_pid xenblkd)"
wait_log "checking the size of every backing store"
check "SIGHUP does not stop the daemon" xsim_running xenblkd
expect_key "$(be_dir qdisk 5 51712)/state" 4

st=$(xsim_kill xenblkd TERM 15)
check "exit status 0 after SIGTERM (got $st)" [ "$st" = 0 ]
for d in 5 6 7 8; do expect_key "$(be_dir qdisk "$d" 51712)/state" 6; done
for d in 5 6; do
    wait_guest_released "$d"
    grep -q "domain $d qdisk/51712: state Connected -> Closing" "$XSIM_LOGDIR/xenblkd.log" ||
        xsim_fail "domain $d did not go through Closing"
    grep -q "domain $d qdisk/51712: state Closing -> Closed" "$XSIM_LOGDIR/xenblkd.log" ||
        xsim_fail "domain $d did not reach Closed"
done
wait_log "every device closed, exiting"

# A restarted daemon picks the devices up again: these frontends never
# reacted to Closed and still say Initialised with valid rings, so they
# are connected again at once; the refused one stays refused.
XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --kinds qdisk
for d in 5 6; do
    xsim_wait_key "$(be_dir qdisk "$d" 51712)/state" 4 || xsim_fail "restart: domain $d not reconnected"
    check "restart: guest $d ring mapped again" [ "$(guest_status "$d")" = "1 1" ]
done
xsim_wait_key "$(be_dir qdisk 7 51712)/state" 2
xsim_wait_key "$(be_dir qdisk 8 51712)/state" 5
# SIGINT does the same as SIGTERM.
st=$(xsim_kill xenblkd2 INT 15)
check "exit status 0 after SIGINT (got $st)" [ "$st" = 0 ]
for d in 5 6 7 8; do expect_key "$(be_dir qdisk "$d" 51712)/state" 6; done
for d in 5 6; do wait_guest_released "$d"; done
exit 0
