#!/bin/bash
# SIGTERM (and SIGINT) stop for a restart, a "handover": every ring drains,
# every grant and event channel is released, the daemon exits 0 and leaves
# every device as it is in xenstore (Connected stays Connected, InitWait
# stays InitWait, a refused device stays Closing), logging a "handed over"
# line per device.  The next instance resumes the Connected devices without
# ever writing another state, maps the guests' rings again, and leaves the
# others where they were.  SIGHUP (a size check, see resize.sh) does not
# stop the daemon.
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
    fe_state "$d" 51712 4
done
# One device waiting for its frontend, one refused.
idle=$(make_disk idle.img 8)
xsim_add_disk qdisk 7 xvda "aio:$idle"
xsim_wait_key "$(be_dir qdisk 7 51712)/state" 2
xsim_add_disk qdisk 8 xvda "vhd:$idle"
xsim_wait_key "$(be_dir qdisk 8 51712)/state" 5

kill -HUP "$(xsim_pid xenblkd)"
wait_log "SIGHUP: checking the size of every backing store"
check "SIGHUP does not stop the daemon" xsim_running xenblkd
expect_key "$(be_dir qdisk 5 51712)/state" 4

# handover NAME SIGNAL: stop daemon NAME with SIGNAL, check the handover.
handover() {
    local name=$1 sig=$2 st d
    st=$(xsim_kill "$name" "$sig" 15)
    check "exit status 0 after SIG$sig (got $st)" [ "$st" = 0 ]
    for d in 5 6; do
        expect_key "$(be_dir qdisk "$d" 51712)/state" 4
        wait_guest_released "$d"
        grep -q "domain $d qdisk/51712: handed over in state Connected" "$XSIM_LOGDIR/$name.log" ||
            xsim_fail "$name: no handover line for domain $d"
    done
    expect_key "$(be_dir qdisk 7 51712)/state" 2
    expect_key "$(be_dir qdisk 8 51712)/state" 5
    grep -q "domain 7 qdisk/51712: handed over in state InitWait" "$XSIM_LOGDIR/$name.log" ||
        xsim_fail "$name: no handover line for domain 7"
    if sed -n '/received /,$p' "$XSIM_LOGDIR/$name.log" | grep -q "qdisk/51712: state "; then
        xsim_fail "$name: a device changed state while stopping"
    fi
    wait_log "handover done, exiting" 5 "$name"
}
handover xenblkd TERM

# The next instance picks everything up where it was.
XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --kinds qdisk
for d in 5 6; do
    wait_log "domain $d qdisk/51712: resumed in state Connected" 10 xenblkd2
    check "restart: guest $d ring mapped again" [ "$(guest_status "$d")" = "1 1" ]
    expect_key "$(be_dir qdisk "$d" 51712)/state" 4
done
wait_log "domain 7 qdisk/51712: state .* -> InitWait" 10 xenblkd2
expect_key "$(be_dir qdisk 7 51712)/state" 2
expect_key "$(be_dir qdisk 8 51712)/state" 5
# Connected all along: the restarted daemon never wrote another state.
if grep -Eq "domain [56] qdisk/51712: state " "$XSIM_LOGDIR/xenblkd2.log"; then
    xsim_fail "restart: a Connected device went through another state"
fi
# SIGINT does the same as SIGTERM.
handover xenblkd2 INT
exit 0
