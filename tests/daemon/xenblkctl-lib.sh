# tests/daemon/xenblkctl-lib.sh - helpers for the xenblkctl tests (bash).
# shellcheck shell=bash
#
# Sourced after tests/harness/env.sh, tests/daemon/lib.sh and xsim_start.
# The daemon under test listens on a private control socket (xsim_daemon
# passes --control-socket $XSIM_TMP/control.sock) and xenblkctl is always
# pointed at it: nothing touches /run/xenblkd.

XBC=$top_builddir/src/xenblkctl
[ -x "$XBC" ] || xsim_fail "$XBC is not built"
XBC_SOCK=$XSIM_TMP/control.sock

# ctl ARGS...: run xenblkctl on the private socket.
ctl() { "$XBC" --socket "$XBC_SOCK" "$@"; }

# ctl_expect STATUS OUT ARGS...: xenblkctl ARGS exits with STATUS; its
# stdout goes to OUT, its stderr to OUT.err.
ctl_expect() {
    local want=$1 out=$2 rc=0
    shift 2
    ctl "$@" >"$out" 2>"$out.err" || rc=$?
    if [ "$rc" != "$want" ]; then
        cat "$out" "$out.err" >&2
        xsim_fail "xenblkctl $*: exit status $rc, want $want"
    fi
    xsim_log "ok: xenblkctl $* -> $rc"
}

# ctl_says FILE PATTERN: FILE matches the extended regular expression.
ctl_says() {
    grep -Eq -- "$2" "$1" || { cat "$1" >&2; xsim_fail "$1: no line matching '$2'"; }
}

# ctl_daemon [ARGS...]: start xenblkd (xsim_daemon ARGS, process name
# $XSIM_DAEMON_NAME or xenblkd) and wait until it answers on its control
# socket.
ctl_daemon() {
    local end name=${XSIM_DAEMON_NAME:-xenblkd}
    xsim_daemon "$@"
    end=$(xsim_deadline 10)
    until ctl ping >/dev/null 2>&1; do
        xsim_running "$name" || xsim_fail "$name died at start (see $name.log)"
        xsim_past "$end" && xsim_fail "xenblkd does not answer on $XBC_SOCK"
        sleep 0.05
    done
}
