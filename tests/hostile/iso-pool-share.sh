#!/bin/bash
# Three disks whose storage hangs must not take every worker of the pool
# (review 2026-12-08).  Guests 5, 6 and 7 have their disks on one FUSE
# mount each opened buffered (a network filesystem: FUSE refuses
# RWF_NOWAIT, so all their writes run in the worker pool); each writes its
# first 16 blocks at once, and the 9th is held in the FUSE server, the
# write behind it waits for the file's lock: 2 workers per disk hang.
# Before, the pool had 5 workers (2 per disk, the last for a disk holding
# none): the three disks took all 5 and guest 9's discard, on a plain
# file, waited until the storage let go.  Now the pool starts more workers
# while all are busy (2 per disk): guest 9's discard and the read behind
# it are answered while the three stores stay held, and the control
# socket counts the 6 workers held (workers.busy).  Once the storage lets
# go, every write of the three guests is answered OKAY, and the workers
# started for them exit once idle.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/hostile/iso-lib.sh"
[ -x "$top_builddir/src/xenblkd" ] || xsim_skip "xenblkd not built"
iso_need_fuse
xsim_start
N=3

# pool_stats EXPR: EXPR over the whole stats reply `r` and `out`, the
# I/Os of guests 5.. out of their rings' queues (in the pool: every write
# of these stores goes there), by domid.
pool_stats() {
    "$ISO_PY" - "$XSIM_TMP/control.sock" "$1" "$top_srcdir/tests/daemon" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
import ctl
r = ctl.Client(sys.argv[1], timeout=10.0).call({"command": "stats"})
out = {}
for d in r["devices"]:
    for q in d.get("rings", []):
        out[d["domid"]] = out.get(d["domid"], 0) + q["in_flight"] - q["engine"]["queued"]
print(eval(sys.argv[2], {"r": r, "out": out, "all": all, "sum": sum}))
PY
}
pool_wait() {
    local end v
    end=$(xsim_deadline 30)
    until [ "$(pool_stats "$1" 2>"$XSIM_TMP/stats.err")" = True ]; do
        [ -s "$XSIM_TMP/stats.err" ] && xsim_fail "stats failed while $2: $(tail -1 "$XSIM_TMP/stats.err")"
        xsim_past "$end" && xsim_fail "never saw: $2 ($(pool_stats 'out, r["daemon"].get("workers")'))"
        sleep 0.05
    done
}

# The 9th 4 KiB block of each image is held.
iso_fuse_mount 64 32768 "$N"
for ((i = 0; i < N; i++)); do
    img=disk.img; [ $i -gt 0 ] && img=disk$((i + 1)).img
    xsim_add_disk vbd3 $((5 + i)) 51712 "aio:$ISO_MNT/$img"
done
xsim_add_disk vbd3 9 51712 "aio:$(make_disk b.img 64)"
xsim_daemon --kinds vbd3
for d in $(seq 5 $((4 + N))) 9; do
    xsim_wait_key "$(be_dir vbd3 $d 51712)/state" 2
    xsim_hotplug_connected vbd3 $d 51712
done

touch "$ISO_CTL/hold"
for ((i = 0; i < N; i++)); do
    xsim_bg guest$i "$top_builddir/tests/frontend/xsim-blkfront" --domid $((5 + i)) \
        --vdev 51712 --bench write --bs 4K --qd 16 --span 65536 --seconds 300 \
        --stop-when "$XSIM_TMP/stop" --timeout 120 -v
done
iso_wait_held "$N"
for ((i = 0; i < N; i++)); do
    iso_wait_stats $((5 + i)) 'len(rings) == 1 and rings[0]["in_flight"] == 16' \
        "guest $((5 + i)) had 16 writes in flight"
done
# Every one of the 5 workers the pool always has is held, each disk holds
# at least one: the state that starved every other disk before.
pool_wait "all(out.get(d, 0) >= 1 for d in range(5, 5 + $N)) and sum(out.values()) >= 5" \
    "the $N held disks took the pool's 5 workers"
xsim_log "ok: $N disks hold the worker pool ($(pool_stats out))"

"$top_builddir/tests/frontend/xsim-blkfront" --domid 9 --vdev 51712 --timeout 30 -v \
    --raw op=discard,sector=0,nr_sectors=8,expect=okay,timeout=20000 \
    --raw op=read,sector=0,nr_segments=1,expect=okay,timeout=20000 \
    >"$XSIM_LOGDIR/guestD.log" 2>&1 ||
    xsim_fail "guest 9's discard was not answered while $N disks held the pool ($(pool_stats 'out, r["daemon"].get("workers")')): $(tail -3 "$XSIM_LOGDIR/guestD.log")"
[ "$(cat "$ISO_CTL/held-count")" = "$N" ] || xsim_fail "the storage no longer held $N writes"
xsim_log "ok: guest 9's discard and read answered while $N disks held the pool"

# Each held disk at its share of 2, the pool grown past 5 for them: the
# control socket counts the 6 held (guest 9's worker, if one more was
# started for it, is idle again).
pool_wait "all(out.get(d, 0) == 2 for d in range(5, 5 + $N)) and r['daemon']['workers']['busy'] == 2 * $N and r['daemon']['workers']['threads'] >= 2 * $N" \
    "each held disk holding 2 workers, counted busy"
xsim_log "ok: workers $(pool_stats 'r["daemon"]["workers"]')"

touch "$XSIM_TMP/stop"
iso_release
for ((i = 0; i < N; i++)); do
    st=$(xsim_wait_exit guest$i 120) || true
    [ "$st" = 0 ] || xsim_fail "guest $((5 + i)) failed once its storage let go (status $st): $(tail -5 "$XSIM_LOGDIR/guest$i.log")"
done
pool_wait "r['daemon']['workers']['busy'] == 0" "every worker free after the release"
xsim_log "ok: every write of the $N guests answered once their storage let go"
# The workers started for them exit after 10 s idle (xenblkd(8)).
pool_wait "r['daemon']['workers']['threads'] == 5" "the pool back at its 5 workers"
xsim_log "ok: the pool is back at 5 workers"
xsim_log PASS
