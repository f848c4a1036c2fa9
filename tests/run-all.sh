#!/bin/bash
# Set everything up and run every test tier:
#   1. the normal build with -Werror, make check;
#   2. the ASan+UBSan build, make check;
#   3. make distcheck (the tarball builds and passes its own tests);
#   4. make check-xen: real Xen under QEMU (skipped with XENBLKD_SKIP_XEN=1).
# Ends with a line "N passed, N failed" summing every tier.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash tests/install-deps.sh
autoreconf -fi

jobs=$(nproc)
passed=0; failed=0
status=0

# count_results DIR: add the automake test-suite totals found under DIR.
count_results() {
    local p f
    p=$(grep -rh '^# PASS: ' "$1" --include=test-suite.log 2>/dev/null | awk '{s+=$3} END {print s+0}')
    f=$(find "$1" -name '*.trs' -exec grep -h '^:test-result: \(FAIL\|ERROR\|XPASS\)' {} + 2>/dev/null | wc -l)
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

if [ "${XENBLKD_SKIP_DISTCHECK:-0}" != 1 ]; then
    echo "=== distcheck"
    ( cd "$top/_build/normal" && make -s distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror ) || status=1
fi

if [ "${XENBLKD_SKIP_XEN:-0}" != 1 ] && grep -q '^check-xen:' "$top/_build/normal/Makefile"; then
    echo "=== check-xen (real Xen under QEMU)"
    ( cd "$top/_build/normal" && make check-xen ) || status=1
    count_results "$top/_build/normal/tests/xen"
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] || status=1
exit $status
