#!/bin/bash
# Stale NBD sockets at start-up: a daemon that did not stop cleanly
# (SIGKILL, a crash) leaves the sockets of its disks behind.  The next
# start removes those of disks it will not serve (gone from xenstore, or
# of a kind it does not serve), one log line each, and touches nothing
# else in the directory: not a regular file with a socket's name, not a
# symlink (nor what it points to), not a socket with another name.  A
# disk that still exists gets its socket back, serving.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
command -v nbdinfo >/dev/null || xsim_skip "nbdinfo not installed (Debian: libnbd-bin)"
xsim_start
nbd=$XSIM_TMP/state/nbd
sock=$nbd/vbd3-5-51712.sock
be=$(be_dir vbd3 5 51712)

# A socket file nobody listens on, as a killed daemon leaves it.
dead_socket() {
    /usr/bin/python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' "$1" ||
        xsim_fail "cannot make a socket at $1"
}
mkdir -p "$nbd" && chmod 0700 "$nbd"
dead_socket "$nbd/vbd3-7-51712.sock"            # its disk was removed meanwhile
dead_socket "$nbd/qdisk-5-51712.sock"           # a kind this start does not serve
dead_socket "$sock"                             # its disk still exists
echo "not a socket" >"$nbd/vbd3-8-51712.sock"   # the name, but a regular file
dead_socket "$XSIM_TMP/elsewhere.sock"
ln -s "$XSIM_TMP/elsewhere.sock" "$nbd/vbd3-9-51712.sock"   # never followed
dead_socket "$nbd/vbd3-07-51712.sock"           # not a name the daemon writes
dead_socket "$nbd/other.sock"

xsim_add_disk vbd3 5 xvda "aio:$(make_disk disk.img 16)"
xsim_daemon --kinds vbd3
guest_start 5
xsim_wait_key "$be/state" 2
xsim_hotplug_connected vbd3 5 xvda
fe_write_rings 5 51712
fe_state 5 51712 3
xsim_wait_key "$be/state" 4
# The sweep runs before the loop serves anything: done by now.
wait_log "domain 5 vbd3/51712 nbd: serving on $sock" 10

check "stale socket of a removed disk is gone" [ ! -e "$nbd/vbd3-7-51712.sock" ]
check "stale socket of a kind not served is gone" [ ! -e "$nbd/qdisk-5-51712.sock" ]
check "regular file with a socket's name is untouched" \
    [ "$(cat "$nbd/vbd3-8-51712.sock")" = "not a socket" ]
check "symlink is untouched" [ -L "$nbd/vbd3-9-51712.sock" ]
check "the symlink's target is untouched" [ -S "$XSIM_TMP/elsewhere.sock" ]
check "socket with a leading-zero domid is untouched" [ -S "$nbd/vbd3-07-51712.sock" ]
check "socket with another name is untouched" [ -S "$nbd/other.sock" ]
n=$(grep -c "removed the stale NBD socket" "$XSIM_LOGDIR/xenblkd.log" || true)
check "one log line per removal (got $n)" [ "$n" = 2 ]
grep -q "removed the stale NBD socket $nbd/vbd3-7-51712.sock" "$XSIM_LOGDIR/xenblkd.log" ||
    xsim_fail "no log line for vbd3-7-51712.sock"
nbdinfo --size "nbd+unix:///?socket=$sock" >"$XSIM_TMP/size" 2>"$XSIM_LOGDIR/nbdinfo.log" ||
    xsim_fail "nbdinfo on the live disk's socket failed: $(cat "$XSIM_LOGDIR/nbdinfo.log")"
check "the live disk's socket serves it (size $(cat "$XSIM_TMP/size"))" \
    [ "$(cat "$XSIM_TMP/size")" = $((16 << 20)) ]
# A clean stop (under the sanitizers: no leak, no error reported).
st=$(xsim_kill xenblkd TERM 15)
check "exit status 0 after SIGTERM (got $st)" [ "$st" = 0 ]
exit 0
