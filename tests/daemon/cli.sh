#!/bin/bash
# The command line: --help/--version, refused options and start-up
# failures exit non-zero with a message saying why.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"

bin=$top_builddir/src/xenblkd
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run_fails WHAT PATTERN ARGS...: xenblkd ARGS exits non-zero and says PATTERN.
run_fails() {
    local what=$1 pat=$2 rc=0
    shift 2
    XENSTORED_PATH=$tmp/no-such-socket "$bin" "$@" >"$tmp/out" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || { cat "$tmp/out"; xsim_fail "$what: exit status 0"; }
    grep -Eq -- "$pat" "$tmp/out" || { cat "$tmp/out"; xsim_fail "$what: no message matching '$pat'"; }
    xsim_log "ok: $what (exit $rc)"
}

"$bin" --help >"$tmp/help"
for opt in --foreground --kinds --log-level --domid --no-direct-io --max-queues \
           --max-persistent-grants --persistent-grant-idle --state-dir --help --version; do
    grep -q -- "$opt" "$tmp/help" || xsim_fail "--help does not mention $opt"
done
xsim_log "ok: --help lists every option"
# The man page and --help document the same long options.
grep -o -- '--[a-z][a-z-]*' "$tmp/help" | sort -u >"$tmp/help-opts"
sed -n 's/^\.BR\{0,1\} .*\\-\\-\([a-z\\-]*\).*/--\1/p' "$top_srcdir/man/xenblkd.8" |
    sed 's/\\-/-/g' | sort -u >"$tmp/man-opts"
diff "$tmp/help-opts" "$tmp/man-opts" >"$tmp/opts-diff" ||
    { cat "$tmp/opts-diff"; xsim_fail "--help (<) and man xenblkd (>) list different options"; }
xsim_log "ok: man xenblkd documents the options --help lists ($(wc -l <"$tmp/man-opts"))"
[ "$("$bin" --version)" = "xenblkd $(sed -n 's/^PACKAGE_VERSION = //p' "$top_builddir/Makefile")" ] ||
    xsim_fail "--version: '$("$bin" --version)'"
xsim_log "ok: --version"

run_fails "unknown option" "unrecognized option|Usage" --bogus
run_fails "unknown kind" "unknown backend kind 'tap'" --foreground --kinds vbd3,tap
run_fails "bad log level" "unknown level 'loud'" --log-level loud
run_fails "bad --max-queues" "--max-queues" --max-queues many
run_fails "--max-queues 0" "at least 1" --max-queues 0
run_fails "bad --domid" "--domid" --domid -1
run_fails "bad --persistent-grant-idle" "--persistent-grant-idle" --persistent-grant-idle 1.5
run_fails "stray argument" "unexpected argument" --foreground extra
run_fails "relative --state-dir" "--state-dir: .state. is not an absolute path" --state-dir state
# Without --foreground the start-up error still reaches stderr.
run_fails "no xenstored (syslog mode)" "cannot connect to xenstored" --kinds vbd3
run_fails "no xenstored" "cannot connect to xenstored" --foreground
exit 0
