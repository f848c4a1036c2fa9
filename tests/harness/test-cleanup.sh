#!/bin/bash
# A test that fails, or is killed, leaves nothing behind: no xenstored, no
# QEMU, no process it started (even one ignoring SIGTERM, even one that
# left its process group), no temporary files.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"   # only for xsim_log/xsim_fail

OUT=$(mktemp -d "${TMPDIR:-/tmp}/xsim-cleanup.XXXXXXXX")
inner_pid=
cleanup() {
    set +e
    # Only if this test itself failed half-way: do not leave the inner
    # test's processes behind.
    [ -n "$inner_pid" ] && kill -KILL "$inner_pid" 2>/dev/null
    for f in "$OUT"/*.pid; do [ -e "$f" ] && kill -KILL "$(<"$f")" 2>/dev/null; done
    rm -rf "$OUT"
}
trap cleanup EXIT

cat > "$OUT/inner.sh" <<'INNER'
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
XSIM_STOP_TIMEOUT=1
xsim_start
echo "$XSIM_TMP" > "$OUT/tmpdir"
xsim_pid xenstored > "$OUT/xenstored.pid"
# A child that ignores SIGTERM, with a grandchild that inherits that.
xsim_bg stubborn bash -c 'trap "" TERM; sleep 300 & echo $! > "$1"; wait' x "$OUT/stubborn-child.pid"
xsim_pid stubborn > "$OUT/stubborn.pid"
# A grandchild that escapes into its own session (only the tag sweep finds it).
xsim_bg escaper bash -c 'setsid sleep 300 & echo $! > "$1"; wait' x "$OUT/escaped.pid"
# A process the test started by hand in the background.
sleep 300 & echo $! > "$OUT/manual.pid"
if [ -x "$QEMU_XEN" ]; then
    truncate -s 1M "$XSIM_TMP/d.img"
    xsim_add_disk qdisk 9 xvda "aio:$XSIM_TMP/d.img"
    xsim_qemu_qdisk 9
    xsim_pid qemu-9 > "$OUT/qemu.pid"
fi
until [ -s "$OUT/stubborn-child.pid" ] && [ -s "$OUT/escaped.pid" ]; do sleep 0.02; done
case $MODE in
    fail) false ;;                                   # set -e failure
    signal) touch "$OUT/ready"; sleep 300 & wait $! ;;   # killed while waiting
esac
INNER

check_nothing_left() {  # check_nothing_left WHAT
    local tmp f p
    tmp=$(<"$OUT/tmpdir")
    [ -n "$tmp" ] || xsim_fail "$1: the inner test did not report its directory"
    [ ! -e "$tmp" ] || xsim_fail "$1: $tmp left behind"
    for f in "$OUT"/*.pid; do
        p=$(<"$f")
        if xsim_alive "$p"; then
            xsim_fail "$1: $(basename "$f" .pid) (pid $p) still running: $(tr '\0' ' ' < "/proc/$p/cmdline")"
        fi
        rm -f "$f"
    done
    for p in /proc/[0-9]*; do
        if { tr '\0' '\n' < "$p/environ"; } 2>/dev/null | grep -qxF "XSIM_TAG=$tmp"; then
            xsim_fail "$1: process ${p#/proc/} of the inner host still running"
        fi
    done
}

# 1. The inner test fails under set -e.
rc=0
OUT=$OUT MODE=fail bash "$OUT/inner.sh" > "$OUT/fail.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || { cat "$OUT/fail.log"; xsim_fail "failing inner test exited $rc, want 1"; }
grep -q 'test failed (exit 1)' "$OUT/fail.log" || { cat "$OUT/fail.log"; xsim_fail "no failure report"; }
grep -q '^===== xenstore tree' "$OUT/fail.log" || { cat "$OUT/fail.log"; xsim_fail "no xenstore dump on failure"; }
[ -e "$OUT/qemu.pid" ] || [ ! -x "$QEMU_XEN" ] || xsim_fail "QEMU was not started by the inner test"
check_nothing_left "failed test"
xsim_log "failed test: nothing left behind"

# 2. The inner test is killed by SIGTERM while it waits.
OUT=$OUT MODE=signal bash "$OUT/inner.sh" > "$OUT/signal.log" 2>&1 &
inner_pid=$!
for ((i = 0; i < 1000; i++)); do [ -e "$OUT/ready" ] && break; sleep 0.02; done
[ -e "$OUT/ready" ] || { cat "$OUT/signal.log"; xsim_fail "inner test did not get ready"; }
kill -TERM "$inner_pid"
rc=0; wait "$inner_pid" || rc=$?
inner_pid=
[ "$rc" = 143 ] || { cat "$OUT/signal.log"; xsim_fail "killed inner test exited $rc, want 143"; }
check_nothing_left "killed test"
xsim_log "killed test: nothing left behind"
echo PASS
