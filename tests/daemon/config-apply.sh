#!/bin/bash
# The configuration file drives the running daemon, and the command line
# wins over it: a file with every [disks] limit changed, a log level and
# a log target, one limit overridden by an option; what each device is
# offered in xenstore, how its backing store is opened, which ring and
# indirect requests a frontend may use, and which lines reach the log.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
source "$top_srcdir/tests/daemon/config-lib.sh"
xsim_start
conf=$XSIM_TMP/xenblkd.conf
cat >"$conf" <<'CONF'
[daemon]
kinds = qdisk

[log]
# Only warnings and errors: no info line may reach the log.
level = warning
target = stderr

[disks]
direct-io = no
discard = no
max-queues = 1
max-ring-page-order = 2
max-indirect-segments = 32
max-persistent-grants = 0
CONF
d5=$(make_disk d5.img 16)
d6=$(make_disk d6.img 16)
# Not xsim_daemon: it sets the log level on the command line.
# Its own state directory and control socket, as xsim_daemon gives: the
# host's /run/xenblkd may be another test's (or a real daemon's).
xsim_bg xenblkd "$top_builddir/src/xenblkd" --config "$conf" --max-indirect-segments 16 \
    --state-dir "$XSIM_TMP/state" --control-socket "$XSIM_TMP/control.sock"

# No discard-enable from the toolstack: the file's "discard = no" decides.
xsim_add_disk qdisk 5 xvda "aio:$d5" '!discard-enable'
be5=$(be_dir qdisk 5 51712)
xsim_wait_key "$be5/state" 2 || xsim_fail "no InitWait"
wait_fds_to "$d5" 1
expect_key "$be5/max-ring-page-order" 2
expect_key "$be5/feature-max-indirect-segments" 16
expect_key "$be5/feature-persistent" 0
expect_key "$be5/multi-queue-max-queues" 1
expect_key "$be5/feature-discard" 0
check "direct-io = no: $d5 opened without O_DIRECT" [ "$(daemon_fd_direct "$d5")" = no ]
xsim_log "ok: the file's limits and the option's indirect segments are published"

# discard-enable=1 from the toolstack wins over the file's default.
xsim_add_disk qdisk 6 xvda "aio:$d6" discard-enable=1
be6=$(be_dir qdisk 6 51712)
xsim_wait_key "$be6/state" 2 || xsim_fail "no InitWait"
wait_fds_to "$d6" 1
xsim_wait_key "$be6/feature-discard" 1 || xsim_fail "discard-enable=1 did not win over discard = no"

# The ring order limit is enforced: order 3 refused, order 2 accepted.
guest_start 5 --order 3
fe_write_rings 5 51712
fe_state 5 51712 3
xsim_wait_key "$be5/state" 5 || xsim_fail "a ring of order 3 was not refused"
wait_log "domain 5 qdisk/51712: refusing to connect: ring-page-order = '3' is not a number in 0\.\.2"
guest_start 6 --order 2
fe_write_rings 6 51712
fe_state 6 51712 3
xsim_wait_key "$be6/state" 4 || xsim_fail "a ring of order 2 was refused"
# negotiated SOCKET DOMID: "persistent max_indirect_segments ring_order"
# of the domain's device, as the daemon on SOCKET reports them.
negotiated() {
    python3 -c '
import sys
sys.path.insert(0, sys.argv[1])
import ctl
for d in ctl.Client(sys.argv[2]).call({"command": "list"})["devices"]:
    if d["domid"] == int(sys.argv[3]):
        print(d["persistent"], d["max_indirect_segments"], d["ring_order"])' \
        "$top_srcdir/tests/daemon" "$1" "$2"
}
# The control socket reports what the ring got: no persistent grants with
# max-persistent-grants = 0 (whatever the frontend asked), 16 indirect
# segments (the option over the file).
neg=$(negotiated "$XSIM_TMP/control.sock" 6)
check "negotiated as the ring runs (got: $neg)" [ "$neg" = "False 16 2" ]

# The indirect segment limit reaches the data path: 16 segments served,
# 17 refused (the reference frontend sends what it is told).
d8=$(make_disk d8.img 16)
xsim_add_disk qdisk 8 xvda "aio:$d8"
xsim_wait_key "$(be_dir qdisk 8 51712)/state" 2 || xsim_fail "no InitWait"
fe indirect 8 --vdev 51712 --workload none --close \
    --raw op=indirect,nr_segments=16,expect=okay --raw op=indirect,nr_segments=17,expect=error
xsim_log "ok: an indirect request of 16 segments served, of 17 refused"

# level = warning: the daemon did plenty at info level, none of it logged.
grep -E ' xenblkd (info|debug): ' "$XSIM_LOGDIR/xenblkd.log" &&
    xsim_fail "level = warning, yet info or debug lines were logged"
xsim_log "ok: level = warning from the file: no info or debug line in the log"

# disk-grant-mappings = 0: each queue's share of mappings is 0, so the
# rings copy everything even though feature-persistent (max-persistent-
# grants) is offered and the frontend asks for it; the control socket
# says what the rings do.
st=$(xsim_kill xenblkd TERM)
[ "$st" = 0 ] || xsim_fail "the first daemon did not stop cleanly on SIGTERM (status $st)"
xsim_bg xenblkd2 "$top_builddir/src/xenblkd" --config /dev/null --kinds qdisk --disk-grant-mappings 0 \
    --state-dir "$XSIM_TMP/state2" --control-socket "$XSIM_TMP/control2.sock"
xsim_add_disk qdisk 9 xvda "aio:$(make_disk d9.img 16)"
be9=$(be_dir qdisk 9 51712)
xsim_wait_key "$be9/state" 2 || xsim_fail "no InitWait"
expect_key "$be9/feature-persistent" 1
guest_start 9
fe_write_rings 9 51712
fe_state 9 51712 3
xsim_wait_key "$be9/state" 4 || xsim_fail "domain 9 did not connect"
neg=$(negotiated "$XSIM_TMP/control2.sock" 9)
check "no share of mappings: not persistent (got: $neg)" [ "${neg%% *}" = False ]
exit 0
