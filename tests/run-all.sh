#!/bin/bash
# Set everything up and run every test tier:
#   1. the normal build with -Werror, make check;
#   2. the ASan+UBSan build, make check;
#   3. the libFuzzer harnesses (tests/fuzz/run.sh), FUZZ_SECONDS each
#      (default 60; XENBLKD_SKIP_FUZZ=1 leaves them out), a crash failing;
#   4. make distcheck (the tarball builds and passes its own tests);
#   5. make check-xen: real Xen under QEMU (skipped with XENBLKD_SKIP_XEN=1),
#      within XENBLKD_XEN_BUDGET seconds: by default what is left of 80
#      minutes since this script started (CI installs packages before
#      it), at most 3600 (the four boots' hard timeouts add up to 3420 s),
#      so that the whole run ends, with its results printed, before CI's
#      90 minutes even when every boot runs into its timeout.
# Ends with a line "N passed, N failed" summing every tier.
#
# The real-Xen tier gates like the others: a failure, a timeout, or a test
# that skipped (no root, no Debian archive, no QEMU) fails the run, since
# CI is where it must prove xenblkd against Linux blkfront.  On a machine
# that cannot run it, XENBLKD_XEN_GATE=0 makes it advisory (results printed,
# not counted) and XENBLKD_SKIP_XEN=1 leaves it out.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
run_start=$(date +%s)
bash tests/install-deps.sh
autoreconf -fi

jobs=$(nproc)
passed=0; failed=0
status=0

# results DIR: print "PASSED FAILED", the automake totals found under DIR.
results() {
    local p f
    # No match is not an error here (grep and find then exit non-zero).
    p=$( { grep -rh '^# PASS: ' "$1" --include=test-suite.log 2>/dev/null || true; } | awk '{s+=$3} END {print s+0}')
    f=$( { grep -rh '^:test-result: \(FAIL\|ERROR\|XPASS\)' "$1" --include='*.trs' 2>/dev/null || true; } | wc -l)
    echo "$p $f"
}

# count_results DIR: add DIR's totals to the run's.
count_results() {
    local p f
    read -r p f < <(results "$1")
    passed=$((passed + p)); failed=$((failed + f))
}

tier() {  # tier NAME CONFIGURE-ARGS... ; builds in _build/NAME and runs make check
    local name=$1; shift
    local dir="$top/_build/$name"
    rm -rf "$dir"; mkdir -p "$dir"
    echo "=== tier $name: configure $*"
    ( cd "$dir" && "$top/configure" -q --enable-werror "$@" && make -s -j"$jobs" ) || return 1
    echo "=== tier $name: make check"
    ( cd "$dir" && make -s -j"$jobs" check ) || { count_results "$dir"; find "$dir" -name '*.log' -path '*tests*' -newer "$dir/Makefile" -exec grep -l -E '^(FAIL|ERROR)' {} + 2>/dev/null | head -20 | while read -r l; do echo "--- $l"; tail -50 "$l"; done; return 1; }
    count_results "$dir"
}

tier normal || status=1
tier sanitizers --enable-sanitizers || status=1

# Fuzzing: each harness for FUZZ_SECONDS (4 harnesses: about 5 minutes
# with the clang build).  Each harness counts as one test.
if [ "${XENBLKD_SKIP_FUZZ:-0}" != 1 ]; then
    echo "=== fuzz (${FUZZ_SECONDS:-60}s per harness)"
    fuzz_log="$top/_build/fuzz-run.log"
    mkdir -p "$top/_build"
    FUZZ_SECONDS=${FUZZ_SECONDS:-60} FUZZ_BUILD="$top/_build/fuzz" bash tests/fuzz/run.sh 2>&1 \
        | tee "$fuzz_log" || status=1
    read -r fp ff < <(sed -n 's/^fuzz harnesses: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$fuzz_log" | tail -1) \
        || { fp=0; ff=1; }
    passed=$((passed + ${fp:-0})); failed=$((failed + ${ff:-1}))
fi

if [ "${XENBLKD_SKIP_DISTCHECK:-0}" != 1 ]; then
    echo "=== distcheck"
    ( cd "$top/_build/normal" && make -s distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror ) || status=1
fi

if [ "${XENBLKD_SKIP_XEN:-0}" != 1 ] && grep -q '^check-xen:' "$top/_build/normal/Makefile"; then
    left=$(( 80 * 60 - ($(date +%s) - run_start) ))
    [ "$left" -lt 3600 ] || left=3600
    budget=${XENBLKD_XEN_BUDGET:-$left}
    echo "=== check-xen (real Xen under QEMU, at most ${budget}s)"
    xen_start=$(date +%s)
    xen_status=0
    # timeout signals the whole process group: QEMU goes down with make.
    # The 4.20 tier (tap.sh) is not gating yet: its block-detach check
    # fails (under TCG xenblkd closes two order-4 rings in ~10 s, past
    # libxl's 10 s wait), and both tiers together exceed the 45-minute
    # CI target.  XENBLKD_XEN_TIERS="4.17 4.20" runs both.
    tiers=${XENBLKD_XEN_TIERS:-4.17}
    echo "real-Xen tiers: $tiers"
    ( cd "$top/_build/normal" && timeout --kill-after=60 "$budget" make check-xen XENBLKD_XEN_TIERS="$tiers" ) || xen_status=$?
    read -r xp xf < <(results "$top/_build/normal/tests/xen") || { xp=0; xf=0; }
    xs=$( { grep -rh '^:test-result: SKIP' "$top/_build/normal/tests/xen" --include='*.trs' 2>/dev/null || true; } | wc -l)
    echo "real-Xen tier: pass=$xp fail=$xf skip=$xs, make status $xen_status, $(( $(date +%s) - xen_start ))s;" \
         "results in _build/normal/tests/xen/*.results"
    if [ "$xs" -gt 0 ] || [ "$xen_status" -ne 0 ]; then
        # Say why here: CI output is all there is to go on.
        for l in "$top"/_build/normal/tests/xen/*.log; do
            [ -f "$l" ] || continue
            grep -qE '^(SKIP|ERROR|FAIL)|FAIL:|SKIP:' "$l" || continue
            echo "--- $l (last 40 lines)"
            tail -n 40 "$l"
        done
    fi
    if [ "${XENBLKD_XEN_GATE:-1}" = 1 ]; then
        passed=$((passed + xp)); failed=$((failed + xf + xs))
        [ "$xs" -eq 0 ] || echo "real-Xen tier: $xs test(s) skipped, counted as failed (XENBLKD_XEN_GATE=0 makes the tier advisory)"
        [ "$xen_status" -eq 0 ] || status=1
    elif [ "$xen_status" -ne 0 ] || [ "$xs" -gt 0 ]; then
        echo "real-Xen tier is advisory (XENBLKD_XEN_GATE=0): not counted below"
    fi
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] || status=1
exit $status
