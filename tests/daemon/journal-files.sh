#!/bin/bash
# The ring journals in the state directory (man xenblkd, --state-dir and
# RESTARTING): a connected ring has one, a handover keeps it, a device
# closed for good removes it; a journal of a device that no longer exists
# is removed at start-up; a file in another format makes start-up fail
# with a message naming it (never guessed at, never replaced); and one
# state directory serves one daemon at a time.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
state=$XSIM_TMP/state rings=$XSIM_TMP/state/rings
xsim_daemon --kinds qdisk
connect_qdisk 5
be=$(be_dir qdisk 5 51712)
check "a connected ring has a journal" [ -f "$rings/qdisk-5-51712-q0" ]

# start_fails WHAT PATTERN: a daemon on $state exits non-zero saying PATTERN.
start_fails() {
    local rc=0
    "$top_builddir/src/xenblkd" --foreground --kinds qdisk --state-dir "$state" \
        >"$XSIM_TMP/out" 2>&1 || rc=$?
    check "$1 (exit $rc)" [ "$rc" -ne 0 ]
    grep -q -- "$2" "$XSIM_TMP/out" || xsim_fail "$1: no message matching '$2': $(cat "$XSIM_TMP/out")"
}

# One state directory, one daemon.
start_fails "a second daemon on the same state directory fails" \
    "another xenblkd uses the state directory $state"

st=$(xsim_kill xenblkd TERM 15)
check "handover exit status 0 (got $st)" [ "$st" = 0 ]
check "a handover keeps the journal" [ -f "$rings/qdisk-5-51712-q0" ]

# A journal in another format: start-up fails, naming it, and leaves it.
printf 'XBDJ from the future' >"$rings/qdisk-6-51712-q0"
start_fails "an incompatible journal stops start-up" \
    "$rings/qdisk-6-51712-q0: .*refusing to start"
check "the incompatible journal is left alone" \
    [ "$(cat "$rings/qdisk-6-51712-q0")" = "XBDJ from the future" ]
rm "$rings/qdisk-6-51712-q0"
expect_key "$be/state" 4

# A journal of a device that no longer exists (deleted while no daemon
# ran) goes at start-up; the live one is resumed.
cp "$rings/qdisk-5-51712-q0" "$rings/qdisk-9-51712-q0"
XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --kinds qdisk
wait_log "domain 5 qdisk/51712: resumed in state Connected" 10 xenblkd2
check "the journal of a device gone is removed" [ ! -e "$rings/qdisk-9-51712-q0" ]
check "the live journal stays" [ -f "$rings/qdisk-5-51712-q0" ]

# Closed for good (the frontend closes): the journal goes.
fe_state 5 51712 5
xsim_wait_key "$be/state" 5
fe_state 5 51712 6
xsim_wait_key "$be/state" 6
wait_guest_released 5
check "a device closed for good has no journal" [ ! -e "$rings/qdisk-5-51712-q0" ]
exit 0
