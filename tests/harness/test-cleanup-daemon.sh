#!/bin/bash
# The cleanup checks the daemons it stops: a test whose daemon, sent
# SIGTERM at cleanup, does not hand over (exit 0) or leaves a sanitizer
# report in its log fails, with a message naming the daemon and quoting
# the report; a daemon the test killed or waited for itself is not
# checked, and a test that failed first keeps its status and message.
# The misbehaving daemons are a stand-in script run through
# XSIM_DAEMON_WRAPPER; the real daemon must pass.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"   # only for xsim_log/xsim_fail

OUT=$(mktemp -d "${TMPDIR:-/tmp}/xsim-cleanup-daemon.XXXXXXXX")
export OUT
trap 'rm -rf "$OUT"' EXIT

# The stand-in daemon: does on SIGTERM what $FAKE says, says when its
# trap is set (a SIGTERM before that would kill it: status 143).
cat > "$OUT/fake.sh" <<'FAKE'
case $FAKE in
    ok)      trap 'exit 0' TERM ;;
    status)  trap 'echo "stand-in: exiting 3"; exit 3' TERM ;;
    ubsan)   trap 'echo "src/ring.c:12:3: runtime error: signed integer overflow"; exit 0' TERM ;;
    lsan)    trap 'echo "==1==ERROR: LeakSanitizer: detected memory leaks"
                   echo "Direct leak of 64 byte(s) in 1 object(s) allocated from:"
                   echo "SUMMARY: AddressSanitizer: 64 byte(s) leaked in 1 allocation(s)."; exit 23' TERM ;;
    stubborn) trap '' TERM ;;
esac
touch "$OUT/ready"
while :; do sleep 0.1; done
FAKE

cat > "$OUT/inner.sh" <<'INNER'
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
XSIM_DAEMON_STOP_TIMEOUT=2
xsim_start
if [ "$FAKE" = real ]; then
    xsim_add_disk vbd3 5 xvda "aio:$(make_disk d.img 4)"
    xsim_daemon --kinds vbd3
    xsim_wait_key "$(be_dir vbd3 5 51712)/state" 2
else
    rm -f "$OUT/ready"
    XSIM_DAEMON_WRAPPER="bash $OUT/fake.sh" XSIM_DAEMON_NAME=xenblkd7 xsim_daemon --kinds vbd3
    until [ -e "$OUT/ready" ]; do sleep 0.02; done
fi
case $END in
    pass) ;;
    fail) false ;;
    killed) kill -KILL "$(xsim_pid xenblkd7)" ;;
    waited) echo "test's own stop: status $(xsim_kill xenblkd7 TERM)" ;;
    hook) xsim_on_exit 'xsim_kill xenblkd7 TERM 2 >/dev/null' ;;
esac
INNER

# run FAKE END WANT-STATUS [GREP-PATTERN...]: run the inner test, check
# its exit status and that its output has each pattern (fixed strings).
run() {
    local fake=$1 end=$2 want=$3 rc=0 log=$OUT/$1-$2.log p
    shift 3
    FAKE=$fake END=$end bash "$OUT/inner.sh" > "$log" 2>&1 || rc=$?
    [ "$rc" = "$want" ] || { cat "$log"; xsim_fail "daemon '$fake', test ends '$end': exit $rc, want $want"; }
    for p in "$@"; do
        grep -qF -- "$p" "$log" || { cat "$log"; xsim_fail "daemon '$fake', test ends '$end': no '$p' in its output"; }
    done
    if [ "$want" = 0 ] && grep -q 'stopped at the test.s cleanup' "$log"; then
        cat "$log"; xsim_fail "daemon '$fake', test ends '$end': passed with a cleanup complaint"
    fi
    xsim_log "daemon '$fake', test ends '$end': exit $rc as expected"
}

run real pass 0
run ok pass 0
run status pass 1 'FAIL: daemon xenblkd7, stopped at the test'"'"'s cleanup: exited with status 3 after SIGTERM' \
    '    stand-in: exiting 3'
run ubsan pass 1 'FAIL: daemon xenblkd7, stopped at the test'"'"'s cleanup: its log has a sanitizer report' \
    '    src/ring.c:12:3: runtime error: signed integer overflow'
run lsan pass 1 'exited with status 23 after SIGTERM, want 0 (a handover, xenblkd(8) SIGNALS); its log has a sanitizer report' \
    '    ==1==ERROR: LeakSanitizer: detected memory leaks' '    SUMMARY: AddressSanitizer: 64 byte(s) leaked'
run stubborn pass 1 'did not exit within 2s of SIGTERM (SIGKILLed)'
# Stopped by the test's own xsim_on_exit hook (tests/hostile/iso-lib.sh does).
run status hook 1 'exited with status 3 after SIGTERM'
# The test's own failure stays first (before the dump) and its status kept.
run status fail 1 'test stopped: status 1' 'test failed (exit 1): state of the simulated host follows' \
    'exited with status 3 after SIGTERM'
grep -B1000 'state of the simulated host follows' "$OUT/status-fail.log" | grep -q 'test stopped: status 1' ||
    xsim_fail "the failed test's own message does not come before the dump"
# Not checked: a daemon the test killed (SIGKILL, not waited for) or
# stopped itself.
run status killed 0
run status waited 0 "test's own stop: status 3"
echo PASS
