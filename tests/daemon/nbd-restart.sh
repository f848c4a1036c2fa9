#!/bin/bash
# The NBD socket across a restart (SIGTERM handover): the stopping daemon
# closes its clients and removes the socket, leaves physical-device-path
# as it is (the path of a disk never changes) and exits 0; the next one
# resumes the Connected device and serves the same bytes at the same path.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
command -v nbdcopy >/dev/null || xsim_skip "nbdcopy not installed (Debian: libnbd-bin)"
/usr/bin/python3 -c 'import nbd' 2>/dev/null || xsim_skip "no nbd module for /usr/bin/python3 (Debian: python3-libnbd)"
xsim_start
disk=$XSIM_TMP/disk.img
head -c $((8 << 20)) /dev/urandom >"$disk"
sock=$XSIM_TMP/state/nbd/vbd3-5-51712.sock
uri="nbd+unix:///?socket=$sock"
be=$(be_dir vbd3 5 51712)

xsim_add_disk vbd3 5 xvda "aio:$disk"
xsim_daemon --kinds vbd3
guest_start 5
xsim_wait_key "$be/state" 2
xsim_hotplug_connected vbd3 5 xvda
fe_write_rings 5 51712
fe_state 5 51712 3
xsim_wait_key "$be/state" 4
expect_key "$be/physical-device-path" "$sock"

# A client connected across the stop: it loses its connection.
/usr/bin/python3 -m nbd -u "$uri" -c '
import os, sys, time
h.pread(4096, 0)
open(os.environ["XSIM_TMP"] + "/client.up", "w").write("x")
while not os.path.exists(os.environ["XSIM_TMP"] + "/client.go"):
    time.sleep(0.05)
try:
    h.pread(4096, 0)
    sys.exit("read served after the daemon stopped")
except nbd.Error:
    print("disconnected")
' >"$XSIM_TMP/client.out" 2>"$XSIM_LOGDIR/client.log" &
client=$!
end=$(xsim__deadline 10)
until [ -s "$XSIM_TMP/client.up" ]; do
    xsim__past "$end" && xsim_fail "NBD client did not connect"
    sleep 0.05
done
st=$(xsim_kill xenblkd TERM 15)
check "exit status 0 after SIGTERM (got $st)" [ "$st" = 0 ]
grep -q "handed over in state Connected" "$XSIM_LOGDIR/xenblkd.log" || xsim_fail "no handover"
check "socket removed by the stopping daemon" [ ! -e "$sock" ]
expect_key "$be/physical-device-path" "$sock"
expect_key "$be/state" 4
touch "$XSIM_TMP/client.go"
wait $client || { cat "$XSIM_LOGDIR/client.log"; xsim_fail "client"; }
check "the client saw the disconnection" [ "$(cat "$XSIM_TMP/client.out")" = disconnected ]

XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --kinds vbd3
wait_log "domain 5 vbd3/51712 nbd: serving on $sock" 10 xenblkd2
expect_key "$be/state" 4
nbdcopy "$uri" "$XSIM_TMP/copy.img" || xsim_fail "nbdcopy from the next daemon failed"
check "the next daemon serves the same bytes at the same path" cmp "$disk" "$XSIM_TMP/copy.img"
exit 0
