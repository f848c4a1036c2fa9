#!/bin/bash
# Line and branch coverage of the code under each fuzz harness, measured
# with llvm-cov by replaying a corpus: the seeds (tests/fuzz/corpus) and,
# when run.sh has run, what the fuzzer found (FUZZ_BUILD/tests/fuzz/work).
#
#   tests/fuzz/coverage.sh [HARNESS...]
#
# Builds the harnesses with the replay driver and clang's source-based
# coverage in COV_BUILD (default _build/fuzz-cov), and prints llvm-cov's
# report for the source files each harness is there to exercise.  Needs
# clang and llvm (llvm-profdata, llvm-cov): the Debian packages clang and
# llvm-14.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${COV_BUILD:-$top/_build/fuzz-cov}
fuzzbuild=${FUZZ_BUILD:-$top/_build/fuzz}
clang=${CLANG:-clang}
profdata=$(command -v llvm-profdata || command -v llvm-profdata-14 || true)
llvmcov=$(command -v llvm-cov || command -v llvm-cov-14 || true)
[ -n "$profdata" ] && [ -n "$llvmcov" ] || {
    echo "coverage.sh: llvm-profdata/llvm-cov not found: install the Debian package llvm-14" >&2
    exit 1
}
all=(request xenstore config control nbd)
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${all[@]}")

# The sources each harness is for.
sources() {
    case $1 in
        request) echo src/request.c ;;
        xenstore) echo src/xenstore_parse.c ;;
        config) echo src/config.c ;;
        control) echo src/control.c src/control_cmd.c ;;
        nbd) echo src/nbd_conn.c src/nbd_handshake.c ;;
    esac
}

mkdir -p "$build"
if [ ! -f "$build/Makefile" ]; then
    [ -x "$top/configure" ] || (cd "$top" && autoreconf -fi)
    (cd "$build" && "$top/configure" -q CC="$clang" \
        CFLAGS="-O1 -g -fprofile-instr-generate -fcoverage-mapping" \
        LDFLAGS="-fprofile-instr-generate")
fi
progs=()
for h in "${harnesses[@]}"; do progs+=("tests/fuzz/fuzz-$h"); done
make -C "$build" -s -j"$(nproc)" "${progs[@]}" 2>&1 | grep -v "modifier ignored" || true

for h in "${harnesses[@]}"; do
    dirs=("$top/tests/fuzz/corpus/$h" "$top/tests/fuzz/regress/$h")
    [ -d "$fuzzbuild/tests/fuzz/work/$h" ] && dirs+=("$fuzzbuild/tests/fuzz/work/$h")
    rm -f "$build/$h.profraw"
    LLVM_PROFILE_FILE="$build/$h.profraw" "$build/tests/fuzz/fuzz-$h" "${dirs[@]}" 2>/dev/null | tail -1
    "$profdata" merge -sparse "$build/$h.profraw" -o "$build/$h.profdata"
    echo "=== coverage of $h (corpus: ${dirs[*]})"
    # shellcheck disable=SC2046
    (cd "$build" && "$llvmcov" report "tests/fuzz/fuzz-$h" -instr-profile="$h.profdata" \
        $(for s in $(sources "$h"); do echo "$top/$s"; done))
done
