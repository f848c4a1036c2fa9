#!/bin/bash
# xenblkctl's command line and its errors, with the production daemon:
# - --help for every command lists its options, and xenblkctl(8)
#   documents the same ones (mandoc -T lint clean); --version;
# - usage errors exit 2;
# - no daemon: socket missing, or left behind by a killed daemon (3);
# - permissions: a user outside the socket's group cannot connect (4), a
#   member of it may read (list, stats) but not reload or stop (4);
# - version, ping, reload; shutdown --close closes the guest's disk and
#   the daemon exits; shutdown without --close stops the daemon too.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
source "$top_srcdir/tests/daemon/xenblkctl-lib.sh"
o=$XSIM_TMP/out
man=$top_srcdir/man/xenblkctl.8
version=$(sed -n 's/^PACKAGE_VERSION = //p' "$top_builddir/Makefile")

# --- help, manual, version ----------------------------------------------------
ctl_expect 0 "$o" --help
commands=$(awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { on = 0 }' "$o")
[ "$(echo $commands)" = "list stats attach detach version ping reload shutdown settle help" ] ||
    xsim_fail "--help lists the commands '$(echo $commands)'"
: >"$XSIM_TMP/help-opts"
for c in $commands; do
    ctl_expect 0 "$o" "$c" --help
    ctl_says "$o" "^usage: xenblkctl \\[--socket PATH\\] $c"
    grep -o -- '--[a-z][a-z-]*' "$o" | grep -v -- '--socket\|--help' >>"$XSIM_TMP/help-opts" || true
    [ "$c" = help ] && continue
    grep -q "^\\.SS $c\\b" "$man" || xsim_fail "xenblkctl(8) has no section for $c"
done
ctl_expect 0 "$o" help detach
ctl_says "$o" "--timeout S"
sort -u "$XSIM_TMP/help-opts" -o "$XSIM_TMP/help-opts"
grep -o '\\-\\-[a-z][a-z\\-]*' "$man" | sed 's/\\-/-/g' | sort -u >"$XSIM_TMP/man-opts"
missing=$(comm -23 "$XSIM_TMP/help-opts" "$XSIM_TMP/man-opts")
[ -z "$missing" ] || xsim_fail "xenblkctl(8) does not document: $missing"
xsim_log "ok: every command's options ($(wc -l <"$XSIM_TMP/help-opts")) are in xenblkctl(8)"
if command -v mandoc >/dev/null; then
    mandoc -T lint -W warning "$man" >"$o" 2>&1 || { cat "$o" >&2; xsim_fail "mandoc -T lint: $man"; }
    xsim_log "ok: mandoc -T lint $man"
else
    xsim_log "mandoc is not installed: lint not checked (tests/deps/xenblkctl.txt)"
fi
[ "$("$XBC" --version)" = "xenblkctl $version" ] || xsim_fail "--version: $("$XBC" --version)"

# --- usage errors: 2 ------------------------------------------------------------
ctl_expect 2 "$o"
ctl_expect 2 "$o" frobnicate
ctl_says "$o.err" "unknown command 'frobnicate'"
ctl_expect 2 "$o" --frobnicate list
ctl_expect 2 "$o" list --frobnicate
ctl_expect 2 "$o" list extra
ctl_expect 2 "$o" stats --watch 0
ctl_expect 2 "$o" stats --watch
ctl_expect 2 "$o" stats --count 2
ctl_says "$o.err" "--count needs --watch"
ctl_expect 2 "$o" stats --json --prometheus
ctl_expect 2 "$o" stats 5/sda
ctl_expect 2 "$o" stats 99999
ctl_expect 2 "$o" version extra
ctl_expect 2 "$o" shutdown --now
ctl_says "$o.err" "Try 'xenblkctl shutdown --help'"

# --- no daemon: 3 -------------------------------------------------------------
ctl_expect 3 "$o" ping
ctl_says "$o.err" "xenblkd is not running: no control socket at $XBC_SOCK"
ctl_expect 3 "$o" list
ctl_expect 3 "$o" stats --totals
ctl_expect 3 "$o" version
ctl_says "$o" "^xenblkctl $version$"
ctl_expect 1 "$o" --socket "$XSIM_TMP" ping
ctl_says "$o.err" "is not a socket"

# --- the daemon, its socket open to group 65534 --------------------------------
xsim_add_domain 5
img=$(make_disk a.img 16)
ctl_daemon --kinds vbd3 --control-group 65534
ctl_expect 0 "$o" ping
ctl_says "$o" "xenblkd is running \\($XBC_SOCK\\)"
ctl_expect 0 "$o" version
ctl_says "$o" "^xenblkd $version \\(control protocol 1\\)$"
ctl_expect 0 "$o" version --json
python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(not (j["client"] == sys.argv[2] and j["daemon"]["version"] == sys.argv[2] and j["daemon"]["protocol"] == 1))' \
    "$o" "$version" || { cat "$o" >&2; xsim_fail "version --json"; }
ctl_expect 0 "$o" attach 5 xvda "$img"
fe_hold g1 5 --vdev xvda --count 16 --qd 4 --hold 600

# as_user UID GID STATUS ARGS...: xenblkctl as UID:GID (no other groups).
as_user() {
    local uid=$1 gid=$2 want=$3 rc=0
    shift 3
    setpriv --reuid="$uid" --regid="$gid" --clear-groups "$XBC" --socket "$XBC_SOCK" "$@" \
        >"$o" 2>"$o.err" || rc=$?
    [ "$rc" = "$want" ] || { cat "$o" "$o.err" >&2; xsim_fail "xenblkctl $* as $uid:$gid: exit $rc, want $want"; }
    xsim_log "ok: xenblkctl $* as $uid:$gid -> $rc"
}
if command -v setpriv >/dev/null; then
    chmod 0711 "$XSIM_TMP"       # the socket's own mode decides, not its directory's
    [ "$(stat -c '%a %U %g' "$XBC_SOCK")" = "660 root 65534" ] ||
        xsim_fail "socket mode/owner/group: $(stat -c '%a %U %g' "$XBC_SOCK")"
    as_user 65534 4242 4 list
    ctl_says "$o.err" "permission denied on $XBC_SOCK: run as root, or as a member of (group [a-z]+|gid 65534)"
    as_user 65534 65534 0 list
    ctl_says "$o" "^ +5 +51712 +xvda +vbd3 +Connected"
    as_user 65534 65534 0 stats --totals
    as_user 65534 65534 4 reload
    ctl_says "$o.err" "reload: permission denied by xenblkd"
    as_user 65534 65534 4 shutdown --close
    chmod 0700 "$XSIM_TMP"
    expect_key "$(be_dir vbd3 5 51712)/state" 4
else
    xsim_log "setpriv is not installed: permission cases not checked (util-linux)"
fi

# --- reload, then shutdown --close with the guest connected ---------------------
ctl_expect 0 "$o" reload
ctl_says "$o" "xenblkd reloaded its configuration"
wait_log "reload"
ctl_expect 0 "$o" shutdown --close
ctl_says "$o" "closing every device \\(the guests lose their disks\\)"
ctl_says "$o" "^xenblkd stopped$"
# "stopped" is said once the daemon's process has exited
# (xenblkctl-shutdown.sh), which it does after every device is closed.
expect_key "$(be_dir vbd3 5 51712)/state" 6
[ "$(xsim_wait_exit xenblkd 20)" = 0 ] || xsim_fail "xenblkd did not exit 0 after shutdown --close"
fe_end g1                          # the guest saw its disk close, cleanly
ctl_expect 3 "$o" ping

# --- a daemon killed: its socket is left behind and refuses -------------------
XSIM_DAEMON_NAME=xenblkd2 ctl_daemon --kinds vbd3
xsim_kill xenblkd2 KILL >/dev/null || true
[ -S "$XBC_SOCK" ] || xsim_fail "no socket left behind by the killed daemon"
# The harness sees the daemon dead once its main thread is a zombie; its
# other threads may still hold the listening socket for a moment (a
# connection then gets reset): wait for the kernel to refuse.
end=$(xsim_deadline 10)
until ctl ping >"$o" 2>"$o.err"; rc=$?; [ "$rc" = 3 ]; do
    xsim_past "$end" && { cat "$o.err" >&2; xsim_fail "ping after the daemon was killed: exit $rc, want 3"; }
    sleep 0.05
done
ctl_says "$o.err" "xenblkd is not running: $XBC_SOCK refuses connections"

# --- shutdown without --close: the daemon stops (handover) --------------------
XSIM_DAEMON_NAME=xenblkd3 ctl_daemon --kinds vbd3
ctl_expect 0 "$o" shutdown
ctl_says "$o" "the guests' disks pause until it is started again"
ctl_says "$o" "^xenblkd stopped$"
[ "$(xsim_wait_exit xenblkd3 20)" = 0 ] || xsim_fail "xenblkd did not exit 0 after shutdown"
exit 0
