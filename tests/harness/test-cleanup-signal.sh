#!/bin/bash
# A test (or bench) killed from outside by SIGTERM, SIGINT or SIGHUP
# while its daemon runs and its xenstored is stopped (SIGSTOP, as
# tests/hostile/xs-stall-bench.sh does) still tears its simulated host
# down: afterwards neither its xenstored nor its xenblkd runs (checked by
# pid) and its directory is gone.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"   # only for xsim_log/xsim_fail/xsim_alive

OUT=$(mktemp -d "${TMPDIR:-/tmp}/xsim-cleanup-signal.XXXXXXXX")
export OUT      # the inner test writes its pids there
inner_pid=
cleanup() {
    set +e
    # Only if this test itself failed half-way: leave nothing behind.
    local d tmp
    [ -n "$inner_pid" ] && kill -KILL "$inner_pid" 2>/dev/null
    if [ -s "$OUT/tmpdir" ]; then
        tmp=$(<"$OUT/tmpdir")
        for d in /proc/[0-9]*; do
            { tr '\0' '\n' < "$d/environ"; } 2>/dev/null | grep -qxF "XSIM_TAG=$tmp" &&
                kill -KILL "${d#/proc/}" 2>/dev/null
        done
        rm -rf "$tmp"
    fi
    rm -rf "$OUT"
}
trap cleanup EXIT

cat > "$OUT/inner.sh" <<'INNER'
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
echo "$XSIM_TMP" > "$OUT/tmpdir"
xsim_pid xenstored > "$OUT/xenstored.pid"
xsim_add_disk vbd3 5 xvda "aio:$(make_disk d.img 4)"
xsim_daemon --kinds vbd3
xsim_pid xenblkd > "$OUT/xenblkd.pid"
# The daemon is up once it answers the new disk with InitWait.
xsim_wait_key "$(be_dir vbd3 5 51712)/state" 2
kill -STOP "$(<"$OUT/xenstored.pid")"
touch "$OUT/ready"
sleep 300 & wait $!
INNER

run_killed() {     # run_killed SIGNAL STATUS
    local sig=$1 want=$2 rc end tmp f p
    rm -f "$OUT/ready" "$OUT/tmpdir" "$OUT"/*.pid
    # A background job of a script starts with SIGINT ignored, a run under
    # nohup (or a CI runner started that way) with SIGHUP ignored, and bash
    # cannot trap a signal ignored at entry: give the inner test the
    # default dispositions a script run from a terminal has.
    env --default-signal=HUP,INT,QUIT bash "$OUT/inner.sh" > "$OUT/$sig.log" 2>&1 &
    inner_pid=$!
    end=$(xsim_deadline 60)
    until [ -e "$OUT/ready" ]; do
        kill -0 "$inner_pid" 2>/dev/null || { cat "$OUT/$sig.log"; xsim_fail "$sig: inner test ended early"; }
        xsim_past "$end" && { cat "$OUT/$sig.log"; xsim_fail "$sig: inner test did not get ready"; }
        sleep 0.02
    done
    kill -s "$sig" "$inner_pid"
    # Bounded: a cleanup that hangs (on the stopped xenstored) fails here.
    end=$(xsim_deadline 60)
    while kill -0 "$inner_pid" 2>/dev/null; do
        xsim_past "$end" && { cat "$OUT/$sig.log"; xsim_fail "$sig: inner test still cleaning up after 60 s"; }
        sleep 0.05
    done
    rc=0; wait "$inner_pid" || rc=$?
    inner_pid=
    [ "$rc" = "$want" ] || { cat "$OUT/$sig.log"; xsim_fail "$sig: inner test exited $rc, want $want"; }
    tmp=$(<"$OUT/tmpdir")
    for f in "$OUT"/xenstored.pid "$OUT"/xenblkd.pid; do
        p=$(<"$f")
        if xsim_alive "$p"; then
            cat "$OUT/$sig.log"
            xsim_fail "$sig: $(basename "$f" .pid) (pid $p) still running: $(tr '\0' ' ' < "/proc/$p/cmdline")"
        fi
    done
    [ ! -e "$tmp" ] || xsim_fail "$sig: $tmp left behind"
    xsim_log "$sig: xenstored and xenblkd gone, $tmp removed"
}

run_killed TERM 143
run_killed INT 130
run_killed HUP 129
echo PASS
