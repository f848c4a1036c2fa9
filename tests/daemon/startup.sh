#!/bin/bash
# Start-up: the backend domain comes from --domid, else from the "domid"
# key of the daemon's xenstore home; systemd is told READY=1 once the
# daemon watches xenstore and STOPPING=1 when it shuts down; losing
# xenstored makes the daemon exit non-zero.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
disk=$(make_disk disk.img 8)

# A driver domain: backends under /local/domain/7/backend.
XSIM_BACKEND_DOMID=7 xsim_add_disk qdisk 5 xvda "aio:$disk"
xsim_daemon --kinds qdisk --domid 7
wait_log "serving as domain 7"
xsim_wait_key /local/domain/7/backend/qdisk/5/51712/state 2 || xsim_fail "--domid 7 not honoured"
st=$(xsim_kill xenblkd TERM)
check "clean exit (got $st)" [ "$st" = 0 ]

# Without --domid: our home's "domid" key.
xenstore-write /local/domain/0/domid 7
sock=$XSIM_TMP/notify.sock
xsim_bg notify "$top_builddir/tests/daemon/notify-listen" "$sock" "$XSIM_TMP/notify.out"
for ((i = 0; i < 200; i++)); do [ -S "$sock" ] && break; sleep 0.02; done
XSIM_DAEMON_NAME=xenblkd2 NOTIFY_SOCKET=$sock xsim_daemon --kinds qdisk
for ((i = 0; i < 200; i++)); do grep -qx READY=1 "$XSIM_TMP/notify.out" 2>/dev/null && break; sleep 0.05; done
check "READY=1 sent" grep -qx READY=1 "$XSIM_TMP/notify.out"
grep -q "serving as domain 7" "$XSIM_LOGDIR/xenblkd2.log" || xsim_fail "domid key of the home not used"
xsim_wait_key /local/domain/7/backend/qdisk/5/51712/state 2
st=$(xsim_kill xenblkd2 TERM)
check "clean exit (got $st)" [ "$st" = 0 ]
# notify-listen records the datagram after the daemon sent it: wait for it.
end=$(xsim_deadline 10)
until grep -qx STOPPING=1 "$XSIM_TMP/notify.out"; do
    xsim_past "$end" && xsim_fail "no STOPPING=1 within 10 s"
    sleep 0.05
done
xsim_log "ok: STOPPING=1 sent"
xenstore-write /local/domain/0/domid 0

# xenstored going away: the daemon notices (libxenstore does not tell
# through the watch fd) and exits non-zero saying why.
XSIM_DAEMON_NAME=xenblkd3 xsim_daemon --kinds qdisk
wait_log "serving as domain 0" 10 xenblkd3
st=$(xsim_kill xenstored TERM)
st=$(xsim_wait_exit xenblkd3 10) || xsim_fail "daemon did not notice that xenstored is gone"
check "non-zero exit without xenstored (got $st)" [ "$st" != 0 ]
grep -q "xenstore connection lost" "$XSIM_LOGDIR/xenblkd3.log" || xsim_fail "no message saying why"
exit 0
