# tests/hostile/loop-lib.sh - the daemon's event-loop figures from its
# control socket (stats "daemon": "loop", "evaluations"; src/loop_stats.h).
# shellcheck shell=bash
# Sourced after tests/harness/env.sh; the daemon runs with xsim_daemon.

loop_ctl() { python3 "$top_srcdir/tests/daemon/ctl.py" "$XSIM_TMP/control.sock" "$@"; }

# loop_snapshot FILE: save the daemon's figures now, with its uptime (the
# daemon's own clock: a span between two snapshots that the test's
# scheduling cannot stretch).
loop_snapshot() {
    loop_ctl '{"version":1,"command":"stats"}' | jq -c '.daemon | {loop, evaluations, uptime_s}' >"$1" ||
        xsim_fail "cannot read the daemon's stats"
}

# loop_report BEFORE AFTER LABEL: print (and log) how long loop iterations
# kept the loop from polling between the two snapshots: iterations, p50,
# p99 and the longest as log2 bucket bounds (microseconds), evaluations
# run and deferred to a later iteration by the budget.
loop_report() {
    local line
    line=$(jq -n -r --slurpfile a "$1" --slurpfile b "$2" --arg what "$3" '
        ($a[0].loop.busy.buckets) as $x | ($b[0].loop.busy.buckets) as $y |
        [range(0; $y | length) | $y[.] - $x[.]] as $d |
        ($d | add) as $n |
        def pct(p): [foreach range(0; $d | length) as $i (0; . + $d[$i];
                      if . >= p * $n then $i else empty end)][0];
        def bound(i): if i == null then "-" elif i == 0 then "<1" else "<\(pow(2; i) | floor)" end;
        ([range(0; $d | length) | select($d[.] > 0)] | max) as $top |
        "\($what): \($n) loop iterations, busy p50 \(bound(pct(0.5))) us, p99 \(bound(pct(0.99))) us, "
        + "longest \(bound($top)) us (max since start \($b[0].loop.busy_max_us) us); evaluations "
        + "\($b[0].evaluations.done - $a[0].evaluations.done), turns deferring some "
        + "\($b[0].evaluations.deferred - $a[0].evaluations.deferred), delayed by the per-device "
        + "rate \($b[0].evaluations.delayed - $a[0].evaluations.delayed)"')
    xsim_log "$line"
    echo "$line" >>"$XSIM_TMP/loop-figures.txt"
}
