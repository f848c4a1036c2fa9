#!/bin/bash
# The private xenstored works: Xen's own xenstore test suite passes against
# it, the CLI tools reach it, and it lives entirely in the test's private
# directory (not the host's /var/run/xenstored).
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"

XS_TEST=${XS_TEST:-/usr/lib/xen-4.17/bin/test-xenstore}
[ -x "$XS_TEST" ] || xsim_skip "no $XS_TEST (xen-utils-4.17)"

xsim_start

# Everything of this host is under its private directory.
case $XENSTORED_PATH in "$XSIM_TMP"/*) ;; *) xsim_fail "socket outside the private dir: $XENSTORED_PATH" ;; esac
[ -S "$XENSTORED_PATH" ] || xsim_fail "no socket at $XENSTORED_PATH"
pid=$(xsim_pid xenstored)
[ "$(cat "$XENSTORED_RUNDIR/xenstored.pid")" = "$pid" ] ||
    xsim_fail "xenstored pid file does not name the running xenstored"
# The real xenstored binary, with only our shim preloaded.
[ "$(readlink "/proc/$pid/exe")" = "$(readlink -f "$XENSTORED")" ] || xsim_fail "not $XENSTORED"
grep -q xsim-xenstored-shim.so "/proc/$pid/maps" || xsim_fail "shim not loaded into xenstored"

# dom0's nodes, as on a real host.
[ "$(xsim_read /local/domain/0/domid)" = 0 ] || xsim_fail "dom0 domid node"
[ "$(xsim_read /local/domain/0/name)" = Domain-0 ] || xsim_fail "dom0 name node"

# Basic operations through the CLI tools.
xsim_write /xsimtest/a hello
[ "$(xsim_read /xsimtest/a)" = hello ] || xsim_fail "read back"
xenstore-chmod /xsimtest/a n0 r7
xenstore-ls -p /xsimtest | grep -q 'a = "hello".*(n0,r7)' || xsim_fail "permissions not as set"
xenstore-rm /xsimtest
! xsim_exists /xsimtest || xsim_fail "rm did not remove"

# Watches fire (xenstore-watch prints the path for each event).
# xenstored fires every new watch once at once: that first event (printed
# by xenstore-watch) says the watch is registered, so the write below is
# surely seen by it.
xsim_bg watch xenstore-watch -n 2 /xsimwatch
end=$(xsim_deadline 10)
until grep -q '^/xsimwatch$' "$XSIM_LOGDIR/watch.log"; do
    xsim_past "$end" && xsim_fail "the watch was never registered"
    sleep 0.02
done
xsim_write /xsimwatch/x 1
st=$(xsim_wait_exit watch 10) || xsim_fail "watch did not fire"
[ "$st" = 0 ] || xsim_fail "xenstore-watch exited $st"
grep -q '^/xsimwatch/x$' "$XSIM_LOGDIR/watch.log" || xsim_fail "watch event for /xsimwatch/x missing"

# Xen's own xenstore test suite (reads, writes, directories, transactions).
out=$("$XS_TEST" 2>&1) || { echo "$out"; xsim_fail "test-xenstore failed"; }
echo "$out"
for t in 'read 1' 'write 2000' 'ta rmw' 'ta err'; do
    grep -q "^$t" <<<"$out" || xsim_fail "test-xenstore did not run '$t'"
done
xsim_running xenstored || xsim_fail "xenstored died during the tests"
echo "PASS"
