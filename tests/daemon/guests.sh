#!/bin/bash
# Several devices of several guests served at once, with I/O in parallel:
# three simulated guests with two disks each, on two backend kinds and with
# different negotiations (persistent grants and x86_64; per-request grants
# and x86_32; two queues with 4-page rings), all in one daemon.
# 1. All six disks are filled concurrently (each guest its own generation)
#    and stay connected: all six are Connected at the same moment and the
#    daemon has six image fds open.  Every image is then checked directly.
# 2. Mixed workloads run concurrently on all six, every read verified
#    against the fill; the images are then checked again (every sector
#    intact), and after everything closed no grant is in use and no image
#    is open.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
xsim_daemon --kinds vbd3,qdisk --max-queues 2
declare -A kind=([11]=vbd3 [12]=qdisk [13]=vbd3)
declare -A conf=([11]="" [12]="--no-persistent --protocol x86_32-abi" [13]="--queues 2 --ring-order 2")
guests=(11 12 13)
span=4194304
for d in "${guests[@]}"; do
    for v in 51712 51728; do       # xvda, xvdb
        img=$(make_disk "g$d-$v.img" 8)
        if [ "${kind[$d]}" = vbd3 ]; then
            vbd3_disk "$d" "$v" "$img"
        else
            xsim_add_disk qdisk "$d" "$v" "aio:$img"
            xsim_wait_key "$(be_dir qdisk "$d" "$v")/state" 2
        fi
    done
done

# run_all PHASE ARGS...: every guest starts xsim-blkfront on both its disks
# at the same time, with its own options; "@D" in ARGS becomes its domid.
run_all() {
    local phase=$1 d
    shift
    for d in "${guests[@]}"; do
        # shellcheck disable=SC2086
        xsim_bg "$phase$d" "$XBD_FE" --domid "$d" --vdev 51712 --vdev 51728 ${conf[$d]} \
            --stats-json "$XSIM_TMP/$phase$d.json" --timeout 30 "${@//@D/$d}"
    done
}

# wait_all PHASE: every guest's run of PHASE exited 0.
wait_all() {
    local phase=$1 d st
    for d in "${guests[@]}"; do
        st=$(xsim_wait_exit "$phase$d" 60) || xsim_fail "guest $d ($phase) still running"
        [ "$st" = 0 ] || { tail -n 20 "$XSIM_LOGDIR/$phase$d.log" >&2; xsim_fail "guest $d ($phase) exited $st"; }
    done
    xsim_log "ok: all guests completed $phase"
}

# all_connected: the six backends are Connected at this moment.
all_connected() {
    local d v
    for d in "${guests[@]}"; do
        for v in 51712 51728; do
            [ "$(xenstore-read "$(be_dir "${kind[$d]}" "$d" "$v")/state")" = 4 ] || return 1
        done
    done
}

# 1. Concurrent fills; each guest then holds its disks until the test has
# looked (the hold ends on the release file, not after a window of time).
run_all fill --workload fill --bs 64k --span "$span" --gen @D --hold 300 \
    --hold-until "$XSIM_TMP/fill.release" --close
for d in "${guests[@]}"; do fe_wait_holding "fill$d" 60; done
all_connected || xsim_fail "the six disks are not all Connected while their guests hold them"
n=0
for d in "${guests[@]}"; do
    for v in 51712 51728; do
        n=$((n + $(daemon_fds_to "$XSIM_TMP/g$d-$v.img")))
    done
done
check "six disks of three guests Connected at once, $n image fds open" [ "$n" = 6 ]
touch "$XSIM_TMP/fill.release"
wait_all fill
for d in "${guests[@]}"; do
    js_defer "fill$d" "[x['requests']['write'] for x in j['disks']]" "[64, 64]" \
        "[x['negotiated']['queues'] for x in j['disks']]" "$([ "$d" = 13 ] && echo "[2, 2]" || echo "[1, 1]")" \
        "[x['negotiated']['persistent'] for x in j['disks']]" "$([ "$d" = 12 ] && echo "[False, False]" || echo "[True, True]")"
    for v in 51712 51728; do
        pattern_check "$XSIM_TMP/g$d-$v.img" "$d,0" --min "$d=$((span / 512))"
    done
done

# 2. Concurrent mixed workloads, reads verified against each guest's fill.
run_all mixed --workload mixed --bs 64k --span "$span" --expect-gen @D --count 600 --seed @D --close
wait_all mixed
for d in "${guests[@]}"; do
    js_defer "mixed$d" "[x['responses']['okay'] for x in j['disks']]" "[600, 600]" \
        "sum(x['verify_errors'] for x in j['disks'])" 0
    for v in 51712 51728; do
        pattern_check "$XSIM_TMP/g$d-$v.img" any
        wait_fds_to "$XSIM_TMP/g$d-$v.img" 0
    done
done
js_check_all
check "daemon still running" xsim_running xenblkd
exit 0
