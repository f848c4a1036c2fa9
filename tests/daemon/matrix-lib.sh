# tests/daemon/matrix-lib.sh - helpers for the issue-3 matrix tests (bash).
# shellcheck shell=bash
#
# Sourced after tests/harness/env.sh and tests/daemon/lib.sh.  The guest
# here is the reference frontend (tests/frontend/xsim-blkfront); backing
# files are checked afterwards with tests/daemon/xbd-pattern.

XBD_FE=$top_builddir/tests/frontend/xsim-blkfront
XBD_PATTERN=$top_builddir/tests/daemon/xbd-pattern
XBD_CTL=$top_builddir/tests/sim/xsim-ctl
XBD_FEX=$top_builddir/tests/daemon/xbd-fe
[ -x "$XBD_FE" ] || xsim_skip "xsim-blkfront is not built"
command -v python3 >/dev/null || xsim_skip "python3 is not installed (tests/deps/matrix.txt)"

# fe NAME DOMID ARGS...: one xsim-blkfront run for guest DOMID; its output
# goes to $XSIM_LOGDIR/fe-NAME.log and its statistics to $XSIM_TMP/NAME.json.
# Fails the test (showing the frontend's output) unless it exits 0.
fe() {
    local name=$1 domid=$2
    shift 2
    xsim_log "frontend $name (domain $domid): $*"
    "$XBD_FE" --domid "$domid" --timeout 20 --stats-json "$XSIM_TMP/$name.json" "$@" \
        >"$XSIM_LOGDIR/fe-$name.log" 2>&1 ||
        { tail -n 30 "$XSIM_LOGDIR/fe-$name.log" >&2; xsim_fail "frontend run $name failed"; }
}

# fe_hold NAME DOMID ARGS...: start xsim-blkfront for guest DOMID in the
# background (process NAME, statistics in $XSIM_TMP/NAME.json); ARGS must
# include --hold (its upper bound: make it long).  Returns once its
# workload is done and it holds the disk; the hold ends when the backend
# closes or at fe_end / fe_release, never after a window of time the test
# would have to race.
fe_hold() {
    local name=$1 domid=$2 end
    shift 2
    xsim_log "frontend $name (domain $domid, held): $*"
    xsim_bg "$name" "$XBD_FE" -v --domid "$domid" --timeout 20 \
        --stats-json "$XSIM_TMP/$name.json" --hold-until "$XSIM_TMP/$name.release" "$@"
    fe_wait_holding "$name" "${FE_HOLD_TIMEOUT:-20}"
}

# fe_wait_holding NAME [TIMEOUT]: wait until the frontend started as
# process NAME finished its workload and holds its disks.
fe_wait_holding() {
    local end
    end=$(xsim_deadline "${2:-20}")
    until grep -q 'workload done, holding' "$XSIM_LOGDIR/$1.log"; do
        xsim_running "$1" || { tail -n 30 "$XSIM_LOGDIR/$1.log" >&2; xsim_fail "$1 ended early"; }
        xsim_past "$end" && xsim_fail "$1 never finished its workload"
        sleep 0.05
    done
}

# fe_release NAME: end the hold of a held frontend (it then goes on with
# --close, if given, and exits).
fe_release() { touch "$XSIM_TMP/$1.release"; }

# fe_end NAME: release a held frontend, wait for it to end; fail unless it
# exits 0.
fe_end() {
    fe_release "$1"
    [ "$(xsim_wait_exit "$1" 20)" = 0 ] ||
        { tail -n 30 "$XSIM_LOGDIR/$1.log" >&2; xsim_fail "frontend run $1 failed"; }
}

# expect_js NAME EXPR VALUE [EXPR VALUE ...]: fail unless every python
# expression EXPR, evaluated over the statistics of run NAME, prints VALUE.
# In EXPR: j = the whole JSON, d = its first disk, g = the simulation's
# grant counters for the guest.  One python3 per call (it costs ~0.1 s).
expect_js() {
    local name=$1 out
    shift
    out=$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
d = j["disks"][0]
g = j["grant_stats"]
bad = 0
for expr, want in zip(sys.argv[2::2], sys.argv[3::2]):
    got = str(eval(expr))
    if got != want:
        print("%s = %s, want %s" % (expr, got, want))
        bad = 1
if bad:
    print(json.dumps(j, separators=(",", ":")))
sys.exit(bad)
' "$XSIM_TMP/$name.json" "$@") || xsim_fail "run $name: $out"
    xsim_log "ok: run $name: $*"
}

# js_defer NAME EXPR VALUE [EXPR VALUE ...]: like expect_js, but only
# recorded; js_check_all evaluates every check recorded since its last
# call in one python3.  Call it before anything that may skip the test
# (xsim_skip): a skip must not drop checks of runs already made.
js_defer() {
    local name=$1
    shift
    while [ $# -ge 2 ]; do
        printf '%s\t%s\t%s\n' "$name" "$1" "$2" >>"$XSIM_TMP/deferred-checks"
        shift 2
    done
}

js_check_all() {
    local out
    [ -s "$XSIM_TMP/deferred-checks" ] || xsim_fail "js_check_all: nothing was recorded"
    out=$(python3 -c '
import json, sys
bad = n = 0
for line in open(sys.argv[1]):
    name, expr, want = line.rstrip("\n").split("\t")
    j = json.load(open("%s/%s.json" % (sys.argv[2], name)))
    d = j["disks"][0]
    g = j["grant_stats"]
    got = str(eval(expr))
    n += 1
    if got != want:
        print("run %s: %s = %s, want %s" % (name, expr, got, want))
        print(json.dumps(j, separators=(",", ":")))
        bad = 1
print("%d checks" % n)
sys.exit(bad)
' "$XSIM_TMP/deferred-checks" "$XSIM_TMP") || xsim_fail "$out"
    rm -f "$XSIM_TMP/deferred-checks"
    xsim_log "ok: $out over the statistics of every run"
}

# vbd3_disk DOMID DEVID IMAGE [MODE] [extra xsim_add_disk args]: a vbd3
# disk whose hotplug script succeeded; waits for InitWait.
vbd3_disk() {
    local domid=$1 devid=$2 img=$3 mode=${4:-w}
    shift 3
    [ $# -gt 0 ] && shift
    xsim_add_disk vbd3 "$domid" "$devid" "aio:$img" "$mode" "$@"
    xsim_hotplug_connected vbd3 "$domid" "$devid"
    xsim_wait_key "$(be_dir vbd3 "$domid" "$devid")/state" 2
}

# pattern_check FILE GENS [--span BYTES] [--min GEN=COUNT]: every sector of
# FILE (a backing file or block device) holds the frontend's pattern of
# one of the comma-separated generations GENS.
pattern_check() {
    local f=$1 gens=$2
    shift 2
    "$XBD_PATTERN" check --gens "$gens" "$@" "$f" >"$XSIM_LOGDIR/pattern.log" 2>&1 ||
        { cat "$XSIM_LOGDIR/pattern.log" >&2; xsim_fail "$f does not hold generation(s) $gens"; }
    xsim_log "ok: $f holds generation(s) $gens: $(tail -n1 "$XSIM_LOGDIR/pattern.log")"
}

# ctl_stat DOMID KEY: a grant counter of guest DOMID from the simulation.
ctl_stat() {
    "$XBD_CTL" stats "$1" | sed -n "s/^$2=//p"
}

# in_use DOMID: grants of DOMID some backend still has mapped or pinned.
in_use() {
    "$XBD_CTL" in-use "$1"
}

# queues_max: how many queues the daemon offers here (one per online CPU,
# at most 4 in these tests).
queues_max() {
    local n
    n=$(nproc)
    [ "$n" -gt 4 ] && n=4
    echo "$n"
}

# xfe NAME SCENARIO ARGS...: one tests/daemon/xbd-fe run (output in
# $XSIM_LOGDIR/NAME.log); fails the test unless it exits 0.
xfe() {
    local name=$1
    shift
    xsim_log "xbd-fe $name: $*"
    "$XBD_FEX" "$@" >"$XSIM_LOGDIR/$name.log" 2>&1 ||
        { cat "$XSIM_LOGDIR/$name.log" >&2; xsim_fail "xbd-fe run $name failed"; }
}

# xfe_pause NAME DOMID ARGS...: start `xbd-fe pause` for guest DOMID in
# the background (process NAME); return once it has written and read back
# its generation and paused.  `touch $XSIM_TMP/NAME.go` lets it go on;
# its exit status then says whether the next generation went through.
xfe_pause() {
    local name=$1 domid=$2 end
    shift 2
    xsim_log "xbd-fe $name (domain $domid, paused): $*"
    xsim_bg "$name" "$XBD_FEX" pause --domid "$domid" --timeout 60 \
        --ready "$XSIM_TMP/$name.ready" --go "$XSIM_TMP/$name.go" "$@"
    end=$(xsim_deadline 30)
    until [ -e "$XSIM_TMP/$name.ready" ]; do
        xsim_running "$name" || xsim_fail "$name failed: $(tail -5 "$XSIM_LOGDIR/$name.log")"
        xsim_past "$end" && xsim_fail "$name did not connect and write"
        sleep 0.05
    done
}

# xfe_count NAME KEY: a request counter (read, write, barrier, flush,
# discard, indirect, okay) of xbd-fe run NAME.
xfe_count() {
    sed -n "s/^requests:.* $2=\([0-9]*\).*/\1/p" "$XSIM_LOGDIR/$1.log"
}
