#!/bin/bash
# The directories the daemon creates have their documented modes under the
# systemd unit's UMask=0077: the control socket's directory and the state
# directory 0755 (xenblkd(8): a [control] group member must reach the
# socket), the journals' directory 0700.  A directory that already exists
# is the administrator's: a daemon started under umask 000 leaves its mode
# alone.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start

# Neither directory exists yet; each one's parent does.
state=$XSIM_TMP/new-state
ctldir=$XSIM_TMP/new-ctl
sock=$ctldir/control.sock
mode() { stat -c %a "$1"; }

umask 077
xsim_daemon --state-dir "$state" --control-socket "$sock"
umask 022
wait_log "control socket $sock"
check "control socket directory created 0755 under umask 077 (got $(mode "$ctldir"))" \
    [ "$(mode "$ctldir")" = 755 ]
check "state directory created 0755 under umask 077 (got $(mode "$state"))" \
    [ "$(mode "$state")" = 755 ]
check "journal directory created 0700 (got $(mode "$state/rings"))" [ "$(mode "$state/rings")" = 700 ]
st=$(xsim_kill xenblkd TERM 15)
check "first daemon exits 0 (got $st)" [ "$st" = 0 ]

# The administrator's directories, stricter and looser than documented:
# kept as they are.
chmod 0750 "$ctldir"
chmod 0711 "$state"
chmod 0750 "$state/rings"
umask 000
XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --state-dir "$state" --control-socket "$sock"
umask 022
wait_log "control socket $sock" 10 xenblkd2
check "existing control socket directory kept 0750 (got $(mode "$ctldir"))" [ "$(mode "$ctldir")" = 750 ]
check "existing state directory kept 0711 (got $(mode "$state"))" [ "$(mode "$state")" = 711 ]
check "existing journal directory kept 0750 (got $(mode "$state/rings"))" [ "$(mode "$state/rings")" = 750 ]
st=$(xsim_kill xenblkd2 TERM 15)
check "second daemon exits 0 (got $st)" [ "$st" = 0 ]
exit 0
