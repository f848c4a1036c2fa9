#!/bin/bash
# Who may do what on the control socket: the socket is 0660 root:GROUP in
# a directory the daemon creates 0755; a group member that is not root
# may read (ping, stats) but not reload or shut down (permission_denied,
# logged with its credentials); root may, and shutdown with "close":true
# closes every device and exits 0.  A stale socket is replaced, a live one
# is not taken over, a path that is not a socket is refused.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
fe=$top_builddir/tests/frontend/xsim-blkfront
ctlpy=$top_srcdir/tests/daemon/ctl.py
command -v setpriv >/dev/null || xsim_skip "setpriv (util-linux) is not installed"
getent group nogroup >/dev/null || xsim_skip "no group nogroup here"
nogroup=$(getent group nogroup | cut -d: -f3)

# Others may pass through the test's directory to the socket's, and run
# the client from there with the system's python (the source tree and a
# root-only python may be out of their reach).
chmod 0711 "$XSIM_TMP"
[ -x /usr/bin/python3 ] || xsim_skip "no /usr/bin/python3"
install -m 0644 "$ctlpy" "$XSIM_TMP/ctl.py"
sock=$XSIM_TMP/ctl/control.sock
# As nobody, in the socket's group; as nobody in another group.
member() { setpriv --reuid=65534 --regid="$nogroup" --clear-groups -- "$@"; }
stranger() { setpriv --reuid=65534 --regid=$((nogroup - 1)) --clear-groups -- "$@"; }
# reply N FILE: the Nth reply line of a ctl.py run.
reply() { sed -n "$1p" "$2"; }

disk=$(make_disk disk.img 8)
xsim_add_disk qdisk 5 xvda "aio:$disk"
xsim_daemon --kinds qdisk --control-socket "$sock" --control-group nogroup
be=$(be_dir qdisk 5 51712)
xsim_wait_key "$be/state" 2
wait_log "control socket $sock"
check "socket directory created 0755" [ "$(stat -c %a "$XSIM_TMP/ctl")" = 755 ]
check "socket 0660 root:nogroup" [ "$(stat -c '%a %u %g' "$sock")" = "660 0 $nogroup" ]
"$fe" --domid 5 --vdev xvda --workload verify --count 20 --hold 600 >"$XSIM_LOGDIR/fe.log" 2>&1 &
fepid=$!
xsim_wait_key "$be/state" 4

# A group member that is not root: reads yes, orders no.
member /usr/bin/python3 "$XSIM_TMP/ctl.py" "$sock" '{"version":1,"command":"ping"}' \
    '{"version":1,"command":"stats"}' '{"version":1,"command":"reload"}' \
    '{"version":1,"command":"shutdown","close":true}' '{"version":1,"command":"shutdown"}' \
    >"$XSIM_TMP/member.out" || xsim_fail "member: client failed"
check "member: ping" [ "$(reply 1 "$XSIM_TMP/member.out")" = '{"ok":true}' ]
check "member: stats" grep -q '^{"ok":true,"daemon"' <(reply 2 "$XSIM_TMP/member.out")
for n in 3 4 5; do
    check "member: request $n refused" grep -q '"code":"permission_denied"' <(reply "$n" "$XSIM_TMP/member.out")
done
wait_log "control: reload refused to pid [0-9]+ uid 65534 gid $nogroup \(root only\)"
wait_log "control: shutdown refused to pid [0-9]+ uid 65534 gid $nogroup"
check "still running" xsim_running xenblkd
expect_key "$be/state" 4

# The group's clients cannot take root's last 8 of the 64 slots: a member
# holding every connection it can get gets 56, and root is still served.
cat >"$XSIM_TMP/hold.py" <<'PY'
import os, socket, sys, time
path, release = sys.argv[1:3]
held, refused = [], 0
for _ in range(64):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    try:
        s.sendall(b'{"version":1,"command":"ping"}\n')
    except OSError:
        pass                        # refused: its line is already here
    line = b""
    while not line.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        line += chunk
    if b'"ok":true' in line:
        held.append(s)
    elif b"too many clients (at most 56)" in line:
        refused += 1
        s.close()
    else:
        sys.exit("unexpected reply: %r" % line)
print("%d %d" % (len(held), refused), flush=True)
while not os.path.exists(release):
    time.sleep(0.05)
PY
chmod 0644 "$XSIM_TMP/hold.py"
member /usr/bin/python3 "$XSIM_TMP/hold.py" "$sock" "$XSIM_TMP/release" \
    >"$XSIM_TMP/held" 2>"$XSIM_LOGDIR/hold.log" &
holder=$!
end=$(xsim_deadline 20)
until [ -s "$XSIM_TMP/held" ]; do
    kill -0 $holder 2>/dev/null || xsim_fail "the member's holder failed: $(cat "$XSIM_LOGDIR/hold.log")"
    xsim_past "$end" && xsim_fail "the member's holder did not report"
    sleep 0.05
done
check "a member holds 56 connections, 8 more refused (got: $(cat "$XSIM_TMP/held"))" \
    [ "$(cat "$XSIM_TMP/held")" = "56 8" ]
/usr/bin/python3 "$XSIM_TMP/ctl.py" "$sock" '{"version":1,"command":"ping"}' >"$XSIM_TMP/root.out" ||
    xsim_fail "root: client failed"
check "root served with the members' slots full" [ "$(reply 1 "$XSIM_TMP/root.out")" = '{"ok":true}' ]
touch "$XSIM_TMP/release"
wait $holder || xsim_fail "the member's holder failed: $(cat "$XSIM_LOGDIR/hold.log")"

# Not in the group: the socket's mode keeps it out.
rc=0
stranger /usr/bin/python3 "$XSIM_TMP/ctl.py" "$sock" '{"version":1,"command":"ping"}' >"$XSIM_TMP/stranger.out" 2>&1 || rc=$?
cat "$XSIM_TMP/stranger.out" >&2
check "stranger cannot connect (exit $rc)" [ "$rc" = 2 ]
check "stranger: permission denied" grep -q "Permission denied" "$XSIM_TMP/stranger.out"

# Root: reload is what SIGHUP does; a bad argument is refused before
# anything happens; shutdown with close closes every device for good.
python3 "$ctlpy" "$sock" '{"version":1,"command":"reload"}' \
    '{"version":1,"command":"shutdown","close":1}' '{"version":1,"command":"reload","now":true}' \
    >"$XSIM_TMP/root.out" || xsim_fail "root: client failed"
check "root: reload" [ "$(reply 1 "$XSIM_TMP/root.out")" = '{"ok":true}' ]
wait_log "control: reload requested by pid [0-9]+ uid 0 gid 0"
wait_log 'configuration reloaded from .*: [0-9]+ settings? changed'
check "root: close must be a boolean" grep -q '"code":"bad_request"' <(reply 2 "$XSIM_TMP/root.out")
check "root: unknown argument" grep -q '"code":"bad_request"' <(reply 3 "$XSIM_TMP/root.out")
check "still running after refused shutdown" xsim_running xenblkd
python3 "$ctlpy" "$sock" '{"version":1,"command":"shutdown","close":true}' >"$XSIM_TMP/stop.out" ||
    xsim_fail "root: shutdown client failed"
check "root: shutdown answered" [ "$(cat "$XSIM_TMP/stop.out")" = '{"ok":true}' ]
st=$(xsim_wait_exit xenblkd 30) || xsim_fail "daemon did not stop"
check "exit 0 after shutdown close (got $st)" [ "$st" = 0 ]
wait_log "control: shutdown requested by pid [0-9]+ uid 0 gid 0"
wait_log "shutdown requested on the control socket: closing every device"
expect_key "$be/state" 6
wait "$fepid" || { cat "$XSIM_LOGDIR/fe.log"; xsim_fail "frontend did not close cleanly"; }
check "socket removed at exit" [ ! -e "$sock" ]

# A socket left behind by a killed daemon is replaced; a second daemon
# does not take over a live one.
XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --kinds qdisk --control-socket "$sock"
wait_log "control socket $sock" 10 xenblkd2
xsim_kill xenblkd2 KILL >/dev/null || true
check "stale socket left" [ -S "$sock" ]
# Its own state directory: the killed daemon's lock is only released once
# the kernel has finished its exit, and the state directory is not what
# this step is about.
XSIM_DAEMON_NAME=xenblkd3 xsim_daemon --kinds qdisk --control-socket "$sock" \
    --state-dir "$XSIM_TMP/state3"
wait_log "control socket $sock" 10 xenblkd3
check "stale socket replaced" [ "$(python3 "$ctlpy" "$sock" '{"version":1,"command":"ping"}')" = '{"ok":true}' ]
# (its own state directory: the shared one is locked by the first.)
XSIM_DAEMON_NAME=xenblkd4 xsim_daemon --kinds qdisk --control-socket "$sock" \
    --state-dir "$XSIM_TMP/state4"
st=$(xsim_wait_exit xenblkd4 10) || xsim_fail "a second daemon on a live socket did not stop"
check "second daemon refused (exit $st)" [ "$st" != 0 ]
wait_log "another process is listening on $sock" 10 xenblkd4
check "first one still answers" [ "$(python3 "$ctlpy" "$sock" '{"version":1,"command":"ping"}')" = '{"ok":true}' ]
# shutdown without close: as SIGTERM.
python3 "$ctlpy" "$sock" '{"version":1,"command":"shutdown"}' >"$XSIM_TMP/stop3.out"
check "shutdown answered" [ "$(cat "$XSIM_TMP/stop3.out")" = '{"ok":true}' ]
st=$(xsim_wait_exit xenblkd3 30) || xsim_fail "daemon 3 did not stop"
check "exit 0 after shutdown (got $st)" [ "$st" = 0 ]

# Not a socket: left alone, start-up refused.
touch "$XSIM_TMP/plain"
XSIM_DAEMON_NAME=xenblkd5 xsim_daemon --kinds qdisk --control-socket "$XSIM_TMP/plain"
st=$(xsim_wait_exit xenblkd5 10) || xsim_fail "daemon 5 did not stop"
check "refuses a path that is not a socket (exit $st)" [ "$st" != 0 ]
wait_log "$XSIM_TMP/plain exists and is not a socket" 10 xenblkd5
check "file untouched" [ -f "$XSIM_TMP/plain" ]
exit 0
