#!/bin/bash
# A close is one transition: one "Closing -> Closed" log line and one
# write of state=6 per close.  libxl's removal (online=0 + state=5 in one
# transaction) used to make the evaluation that ends the drain publish
# Closed and then, reading its snapshot (taken before that write, still
# showing 5), "correct" the state it had just written: every detached
# device logged and wrote Closed twice, on the simulated host as on
# real Xen.  The correction itself must stay: a device already Closed
# whose state the toolstack overwrites with 5 writes Closed again, once.
# Each count is taken after the device was freed: that evaluation's
# snapshot was read after every earlier write (one FIFO xenstore thread),
# so a duplicate, had there been one, is in the log and the trace.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
export XSIM_XENSTORED_TRACE=1   # the writes are counted in its trace
xsim_start
disk=$(make_disk disk.img 16)
xs_trace=$XSIM_LOGDIR/xenstored-trace.log
[ -e "$xs_trace" ] || xsim_fail "no xenstored trace at $xs_trace"

# count_closed DEVID: the daemon's Closed transitions of domain 5's disk.
count_closed() {
    grep -c "domain 5 qdisk/$1: state [A-Za-z]* -> Closed" "$XSIM_LOGDIR/xenblkd.log" || true
}
# count_writes PATH VALUE: writes of VALUE to PATH seen by xenstored (the
# test itself never writes 6 to a backend's state).
count_writes() {
    grep -cF "WRITE ($1 $2)" "$xs_trace" || true
}
# connect DEVID VDEV: a connected qdisk of guest 5.
connect() {
    xsim_add_disk qdisk 5 "$2" "aio:$disk"
    xsim_wait_key "$(be_dir qdisk 5 "$1")/state" 2
    fe_write_rings 5 "$1"
    fe_state 5 "$1" 3
    xsim_wait_key "$(be_dir qdisk 5 "$1")/state" 4
}
# remove DEVID: the toolstack deletes the directory; the device goes.
remove() {
    xenstore-rm "$(be_dir qdisk 5 "$1")"
    wait_log "domain 5 qdisk/$1: backend directory removed, device freed"
    expect_absent "$(be_dir qdisk 5 "$1")"
}
# expect_once DEVID WHAT: one Closed line and one state=6 write.
expect_once() {
    local be n w
    be=$(be_dir qdisk 5 "$1")
    n=$(count_closed "$1")
    w=$(count_writes "$be/state" 6)
    [ "$n" = 1 ] || xsim_fail "$2: $n 'state ... -> Closed' log lines, want 1"
    [ "$w" = 1 ] || xsim_fail "$2: state=6 written $w times, want 1"
    xsim_log "ok: $2: Closed logged once and written once"
}

xsim_daemon --kinds qdisk
guest_start 5

# libxl's removal of a connected disk; the frontend lets go (Closed, as
# Linux blkfront answers the Closing libxl wrote).
connect 51712 xvda
be=$(be_dir qdisk 5 51712)
printf 'write %s/online 0\nwrite %s/state 5\n' "$be" "$be" | xsim_xs
fe_state 5 51712 6
xsim_wait_key "$be/state" 6 || xsim_fail "online=0 and the frontend Closed did not lead to Closed"
remove 51712
expect_once 51712 "online=0 on a connected device"

# The frontend closes first; libxl then writes state=5 over our Closed:
# Closed is written again (the correction), once.
connect 51728 xvdb
be=$(be_dir qdisk 5 51728)
fe_state 5 51728 6
xsim_wait_key "$be/state" 6 || xsim_fail "frontend Closed did not lead to Closed"
wait_guest_released 5
n=$(count_closed 51728)
[ "$n" = 1 ] || xsim_fail "frontend close: $n Closed line(s), want 1"
w=$(count_writes "$be/state" 6)
[ "$w" = 1 ] || xsim_fail "frontend close: state=6 written $w times, want 1"
printf 'write %s/online 0\nwrite %s/state 5\n' "$be" "$be" | xsim_xs
xsim_wait_key "$be/state" 6 || xsim_fail "state=5 over a Closed device was not corrected"
remove 51728
w=$(count_writes "$be/state" 6)
[ "$w" = 2 ] || xsim_fail "state=5 over Closed: state=6 written $w times in all, want 2"
xsim_log "ok: the toolstack's state=5 over Closed was corrected with one write"
check "daemon still running" xsim_running xenblkd
exit 0
