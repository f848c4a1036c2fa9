#!/bin/bash
# Build the libFuzzer harnesses with clang (ASan + UBSan + libFuzzer) in a
# build directory of their own and fuzz each for a bounded time.
#
#   tests/fuzz/run.sh [HARNESS...]      (default: all; names as in corpus/)
#
# Environment:
#   FUZZ_SECONDS   seconds per harness (default 60)
#   FUZZ_BUILD     build directory (default _build/fuzz in the source tree)
#   FUZZ_JOBS      make -j (default: nproc)
#   CLANG          compiler (default clang)
#
# Each harness starts from tests/fuzz/corpus/NAME and the former crashes
# in tests/fuzz/regress/NAME; what it finds goes to a working corpus in
# the build directory, never into the source tree.  A crash, a leak or a
# timeout fails the run: the input is printed (hex and base64) and kept
# as FUZZ_BUILD/tests/fuzz/NAME-crash-* (-leak-, -timeout-, -oom-); add it to tests/fuzz/regress/NAME
# once fixed so make check replays it.  The last lines are one summary
# per harness (executions, exec/s, cov, ft) and
# "fuzz harnesses: P passed, F failed".
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD:-$top/_build/fuzz}
jobs=${FUZZ_JOBS:-$(nproc)}
clang=${CLANG:-clang}
all=(request xenstore config control gcache nbd)
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${all[@]}")

# Largest input worth trying per harness: a ring image plus its indirect
# pages needs more than libFuzzer's default.
max_len() {
    case $1 in
        request) echo 24576 ;;
        control) echo 8192 ;;
        gcache) echo 8192 ;;
        nbd) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

if ! command -v "$clang" >/dev/null; then
    echo "run.sh: $clang not found: install the Debian packages clang and libclang-rt-14-dev" >&2
    exit 1
fi

mkdir -p "$build"
# --enable-werror: clang warns about things gcc does not (a va_list format
# without its attribute); the fuzz build is where CI compiles with clang.
if [ ! -f "$build/Makefile" ] || ! grep -q 'enable-fuzzing' "$build/config.status" 2>/dev/null ||
   ! grep -q 'enable-werror' "$build/config.status" 2>/dev/null; then
    [ -x "$top/configure" ] || (cd "$top" && autoreconf -fi) || exit 1
    echo "=== fuzz: configure CC=$clang --enable-fuzzing --enable-werror in $build"
    (cd "$build" && "$top/configure" -q CC="$clang" --enable-fuzzing --enable-werror) || exit 1
    # New flags do not make make rebuild objects built with the old ones.
    [ -f "$build/Makefile" ] && make -C "$build" -s clean
fi
progs=()
for h in "${harnesses[@]}"; do progs+=("tests/fuzz/fuzz-$h"); done
echo "=== fuzz: build ${progs[*]}"
# A failed build must not fuzz the harnesses an earlier build left.
make -C "$build" -s -j"$jobs" "${progs[@]}" 2>&1 | grep -v "modifier ignored"
[ "${PIPESTATUS[0]}" = 0 ] || { echo "run.sh: building the harnesses failed" >&2; exit 1; }
for p in "${progs[@]}"; do
    [ -x "$build/$p" ] || { echo "run.sh: $p did not build" >&2; exit 1; }
done

passed=0 failed=0
summary=()
for h in "${harnesses[@]}"; do
    work="$build/tests/fuzz/work/$h"
    log="$build/tests/fuzz/fuzz-$h.log"
    mkdir -p "$work" "$top/tests/fuzz/regress/$h"
    rm -f "$build/tests/fuzz/$h-"*
    echo "=== fuzz: $h for ${seconds}s"
    # -timeout: one input may not take 10 s; -rss_limit_mb bounds memory.
    (cd "$build/tests/fuzz" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ./fuzz-"$h" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
            -rss_limit_mb=2048 -max_len="$(max_len "$h")" \
            -artifact_prefix="$build/tests/fuzz/$h-" \
            "$work" "$top/tests/fuzz/corpus/$h" "$top/tests/fuzz/regress/$h") >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    line="fuzz $h: ${execs:-?} runs, ${rate:-?} exec/s, ${cov:-cov: ? ft: ?}, corpus $(ls "$work" | wc -l) inputs"
    artifacts=$(ls "$build/tests/fuzz/$h-"* 2>/dev/null || true)
    if [ $rc -ne 0 ] || [ -n "$artifacts" ]; then
        failed=$((failed + 1))
        line="$line: FAILED (exit $rc)"
        echo "--- fuzz $h failed; the end of $log:"
        tail -n 60 "$log"
        for a in $artifacts; do
            echo "--- reproducer $a ($(stat -c %s "$a") bytes); replay it with:"
            echo "    $build/tests/fuzz/fuzz-$h $a"
            echo "--- hex:"
            od -An -tx1 -v "$a" | head -n 64
            echo "--- base64:"
            base64 -w 76 "$a" | head -n 100
        done
    else
        passed=$((passed + 1))
    fi
    echo "$line"
    summary+=("$line")
done
echo "=== fuzz summary (${seconds}s each)"
printf '%s\n' "${summary[@]}"
echo "fuzz harnesses: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
