#!/bin/bash
# xenblkctl settle: once it returns, the daemon has acted on every
# xenstore write made before it, even an evaluation its rate limit
# delayed and rings that had to drain first; the checks right after it do
# not wait.  Past its timeout it fails and says what is busy; several
# clients may settle at once, and one that hangs up while waiting costs
# nothing.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
XSIM_XENSTORED_TRACE=0 xsim_start
source "$top_srcdir/tests/daemon/xenblkctl-lib.sh"
storm=$top_builddir/tests/daemon/xs-storm
disk=$(make_disk disk.img 16)
xsim_add_disk qdisk 5 xvda "aio:$disk"
ctl_daemon --kinds qdisk
be=$(be_dir qdisk 5 51712)
fe=$(fe_dir 5 51712)
xsim_wait_key "$be/state" 2
guest_start 5
fe_write_rings 5 51712
fe_state 5 51712 3
xsim_wait_key "$be/state" 4

# The device's evaluation state, as list --json shows it.
evaluation() {
    ctl list --json | python3 -c 'import json, sys
d = json.load(sys.stdin)["devices"][0]["evaluation"]
print(" ".join("%s=%s" % (k, json.dumps(d[k])) for k in
      ("queued", "delayed", "snapshot_pending", "writes_pending", "draining_rings")),
      "count=%d" % d["count"])'
}
idle="queued=false delayed=false snapshot_pending=false writes_pending=0 draining_rings=0"

# A write's watch event may still be on its way to the daemon's loop when
# settle reaches it: settle waits for it (its barrier watch), so the
# write has been evaluated when settle returns, every time.
for i in 1 2 3 4 5 6 7 8 9 10; do
    ev=$(evaluation)
    fe_state 5 51712 3
    settle
    ev2=$(evaluation)
    [ "${ev2##* count=}" -gt "${ev##* count=}" ] ||
        xsim_fail "round $i: the frontend's write was not evaluated before settle returned ($ev -> $ev2)"
done
xsim_log "ok: 10 writes, each evaluated before settle returned"
# The same with the event surely still on its way: the daemon is stopped
# while the frontend writes and the settle request is sent, and both wait
# in its sockets until it continues.
settle_bg() {   # settle_bg FILE: send settle, touch FILE.sent, reply to FILE
    python3 - "$XBC_SOCK" "$1" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b'{"version":1,"command":"settle"}\n')
open(sys.argv[2] + ".sent", "w").close()
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
open(sys.argv[2], "wb").write(buf)
PY
}
daemon_pid=$(xsim_pid xenblkd)
for i in 1 2 3 4 5; do
    ev=$(evaluation)
    kill -STOP "$daemon_pid"
    fe_state 5 51712 3
    rm -f "$XSIM_TMP/bg.reply" "$XSIM_TMP/bg.reply.sent"
    settle_bg "$XSIM_TMP/bg.reply"
    bg=$!
    until [ -e "$XSIM_TMP/bg.reply.sent" ]; do sleep 0.01; done
    kill -CONT "$daemon_pid"
    wait "$bg"
    grep -q '"ok":true' "$XSIM_TMP/bg.reply" || xsim_fail "settle: $(cat "$XSIM_TMP/bg.reply")"
    ev2=$(evaluation)
    [ "${ev2##* count=}" -gt "${ev##* count=}" ] ||
        xsim_fail "round $i (daemon stopped): the frontend's write was not evaluated before settle returned ($ev -> $ev2)"
done
xsim_log "ok: 5 writes made while the daemon was stopped, each evaluated before settle returned"

# Same-state rewrites use up the device's burst of evaluations
# (XBD_EVAL_BURST, src/eval_queue.h): what follows waits for its rate.
"$storm" 500 "$fe/state=4" "$fe/state=3"
settle
ev=$(evaluation)
xsim_log "after the storm: $ev"
check "settled: nothing left to evaluate" [ "${ev% count=*}" = "$idle" ]
check "the storm's evaluations were counted" [ "${ev##* count=}" -gt 2 ]

# Each step below is checked right after settle returns, without waiting:
# the frontend's word has been acted on, rings drained included.
"$storm" 100 "$fe/state=4" "$fe/state=3"
t0=$(date +%s%N)
fe_state 5 51712 6
settle
expect_key "$be/state" 6
xsim_log "Closed (rings drained) settled in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
check "ring released at once" [ "$(guest_status 5)" = "0 0" ]
"$storm" 100 "$fe/state=6" "$fe/state=6"
fe_state 5 51712 1
settle
expect_key "$be/state" 2
fe_state 5 51712 3
settle
expect_key "$be/state" 4
check "one ring mapped" [ "$(guest_status 5)" = "1 1" ]

# A disk added by the toolstack: found, probed and in InitWait once
# settled (the directory scan and probe are xenstore jobs it waits for).
xsim_add_disk qdisk 5 xvdb "aio:$disk"
settle
expect_key "$(be_dir qdisk 5 51728)/state" 2

# Several clients at once.
ctl settle >"$XSIM_TMP/s1.out" 2>&1 & p1=$!
ctl settle >"$XSIM_TMP/s2.out" 2>&1 & p2=$!
fe_state 5 51712 6
settle
expect_key "$be/state" 6
wait "$p1" || { cat "$XSIM_TMP/s1.out" >&2; xsim_fail "first concurrent settle failed"; }
wait "$p2" || { cat "$XSIM_TMP/s2.out" >&2; xsim_fail "second concurrent settle failed"; }
xsim_log "ok: concurrent settles: $(cat "$XSIM_TMP/s1.out") / $(cat "$XSIM_TMP/s2.out")"

# Bad arguments.
ctl_expect 2 "$XSIM_TMP/bad.out" settle --timeout 0
ctl_expect 2 "$XSIM_TMP/bad.out" settle --timeout x
reply=$(python3 "$top_srcdir/tests/daemon/ctl.py" "$XBC_SOCK" \
    '{"version":1,"command":"settle","timeout_ms":-1}' \
    '{"version":1,"command":"settle","timeout_ms":"1"}' \
    '{"version":1,"command":"settle","bogus":1}')
check "invalid settle arguments refused" [ "$(grep -c '"code":"bad_request"' <<<"$reply")" = 3 ]

# The timeout, and what it names.  The disk grows and SIGHUP has the
# daemon tell the connected frontend: with xenstored stopped, that
# evaluation cannot read its keys, so the device stays busy (list says
# so) and nothing can settle (the barrier watch waits for xenstored too).
# The loop is not held: ping answers.
fe_state 5 51712 1
settle
fe_state 5 51712 3
settle
expect_key "$be/state" 4
fe_state 5 51712 4     # as blkfront, once connected: resizes are told to it
settle
truncate -s 32M "$disk"
xs_pid=$(xsim_pid xenstored)
kill -STOP "$xs_pid"
kill -HUP "$(xsim_pid xenblkd)"
end=$(xsim_deadline 10)
until ctl list >"$XSIM_TMP/list.out" && grep -q '^busy: domain 5 xvda (51712): ' "$XSIM_TMP/list.out"; do
    xsim_past "$end" && { cat "$XSIM_TMP/list.out" >&2; xsim_fail "list does not say that xvda is busy"; }
    sleep 0.05
done
xsim_log "ok: list: $(grep '^busy:' "$XSIM_TMP/list.out")"
ctl_expect 1 "$XSIM_TMP/to.out" settle --timeout 1
ctl_says "$XSIM_TMP/to.out.err" 'not settled after 1000 ms: 1 device\(s\) busy: dom 5 qdisk/51712 \((evaluation|reading)[a-z ,0-9()]*\); [0-9]+ xenstore job\(s\) out; watch events queued before it not all handled yet'
xsim_log "ok: $(cat "$XSIM_TMP/to.out.err")"
# A client that hangs up while it waits: dropped when its answer is due.
python3 - "$XBC_SOCK" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b'{"version":1,"command":"settle","timeout_ms":600000}\n')
s.close()
PY
ctl_expect 0 "$XSIM_TMP/ping.out" ping
kill -CONT "$xs_pid"
settle
expect_key "$be/sectors" $((32 * 2048))
wait_log 'control: client pid [0-9]+ uid [0-9]+: Broken pipe, closed'
check "daemon alive" xsim_running xenblkd
exit 0
