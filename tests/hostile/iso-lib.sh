# iso-lib.sh - helpers of the isolation tests (issue 10, gaps 1 and 2):
# storage a test can hold (a loop device over tests/daemon/fuse-hold.py),
# the daemon's per-ring counters, a guest's latency figures.  Sourced
# after tests/harness/env.sh and tests/daemon/lib.sh, after xsim_start.

ISO_PY=/usr/bin/python3

# iso_need_fuse: skip unless FUSE, fusepy and losetup are usable.
iso_need_fuse() {
    [ -x "$ISO_PY" ] && "$ISO_PY" -c 'import fusepy' 2>/dev/null ||
        xsim_skip "python3-fusepy is not installed (tests/deps/restart.txt)"
    [ -c /dev/fuse ] || xsim_skip "no /dev/fuse"
    command -v losetup >/dev/null || xsim_skip "losetup is not installed"
}

# iso_fuse_mount SIZE_MB HOLD_OFFSET [N]: mount fuse-hold.py on $ISO_MNT
# over N (default 1) sparse images, disk.img, disk2.img...; writes at
# HOLD_OFFSET are held while $ISO_CTL/hold exists.
iso_fuse_mount() {
    local end i extra=()
    ISO_MNT=$XSIM_TMP/mnt ISO_CTL=$XSIM_TMP/ctl ISO_HOLD_OFF=$2
    mkdir -p "$ISO_MNT" "$ISO_CTL"
    truncate -s "$1M" "$XSIM_TMP/store.img"
    for ((i = 2; i <= ${3:-1}; i++)); do
        truncate -s "$1M" "$XSIM_TMP/store$i.img"
        extra+=("$XSIM_TMP/store$i.img")
    done
    xsim_bg fuse "$ISO_PY" "$top_srcdir/tests/daemon/fuse-hold.py" "$ISO_MNT" \
        "$XSIM_TMP/store.img" "$2" "$ISO_CTL" "${extra[@]}"
    end=$(xsim_deadline 10)
    until [ -f "$ISO_MNT/disk.img" ]; do
        xsim_past "$end" && xsim_skip "cannot mount the FUSE filesystem: $(tail -3 "$XSIM_LOGDIR/fuse.log")"
        xsim_running fuse || xsim_skip "fuse-hold.py exited: $(tail -3 "$XSIM_LOGDIR/fuse.log")"
        sleep 0.05
    done
}

# iso_loop VAR FILE: set VAR to a new loop device over FILE (detached at
# exit).  Not in $(...): the device must be remembered by this shell.
iso_loop() {
    local -n iso_out_=$1
    local iso_dev_= iso_i_
    for ((iso_i_ = 0; iso_i_ < 5; iso_i_++)); do
        iso_dev_=$(losetup -f --show "$2" 2>"$XSIM_LOGDIR/losetup.log") && break
        iso_dev_=
        sleep 0.2
    done
    [ -n "$iso_dev_" ] || xsim_skip "cannot set up a loop device: $(cat "$XSIM_LOGDIR/losetup.log")"
    # Loop devices are reused and keep their request queue depth: a test
    # that lowered it (iso-nowait-held.sh) must not change what the next
    # one measures.  Back to the loop driver's default.
    local depth
    depth=$(cat /sys/module/loop/parameters/hw_queue_depth 2>/dev/null) &&
        echo "$depth" >"/sys/block/${iso_dev_#/dev/}/queue/nr_requests" 2>/dev/null || true
    ISO_DEVS+=("$iso_dev_")
    iso_out_=$iso_dev_
}

# At exit, whatever happened: let held I/O go, stop what uses the loop
# devices (the daemon, guests, holders), detach them, unmount.
ISO_DEVS=()
iso_cleanup() {
    local f n d
    [ -n "${ISO_CTL:-}" ] && rm -f "$ISO_CTL/hold"
    for f in "$XSIM_TMP"/run/*.wpid; do
        [ -e "$f" ] || continue
        n=$(basename "$f" .wpid)
        case $n in
            xenblkd*|guest*|holdw*) xsim_running "$n" && xsim_kill "$n" TERM 10 >/dev/null ;;
        esac
    done
    for d in "${ISO_DEVS[@]}"; do
        losetup -d "$d" || xsim_log "cannot detach $d"
    done
    [ -n "${ISO_MNT:-}" ] && umount -l "$ISO_MNT" 2>/dev/null
    return 0
}
xsim_on_exit iso_cleanup

# iso_hold_writes N DEV...: hold one O_DIRECT write on each loop device at
# the hold offset (processes holdwN) and wait until all N are held in the
# FUSE server: the loop driver serves a device's requests in order, so
# every later request of those devices waits behind its held write.
iso_hold_writes() {
    local n=$1 dev i=0 off
    shift
    off=$((ISO_HOLD_OFF / 4096))
    touch "$ISO_CTL/hold"
    for dev in "$@"; do
        xsim_bg "holdw$i" dd if=/dev/zero of="$dev" bs=4096 count=1 seek="$off" oflag=direct
        i=$((i + 1))
    done
    iso_wait_held "$n"
}

# iso_wait_held N: wait until the FUSE server holds N writes.
iso_wait_held() {
    local end
    end=$(xsim_deadline 20)
    until [ "$(cat "$ISO_CTL/held-count" 2>/dev/null)" = "$1" ]; do
        xsim_past "$end" && xsim_fail "the storage did not hold $1 write(s)"
        sleep 0.02
    done
}

# iso_release: let the held writes complete.
iso_release() { rm -f "$ISO_CTL/hold"; }

# iso_writes_answered: after iso_release, guest 5's writes (job guestA)
# must all be answered OKAY (the guest exits 0), some of them by the
# worker pool.
iso_writes_answered() {
    local st off
    st=$(xsim_wait_exit guestA 120) || true
    [ "$st" = 0 ] || xsim_fail "guest 5 failed once its storage let go (status $st): $(tail -5 "$XSIM_LOGDIR/guestA.log")"
    off=$(iso_stats 5 'sum(r["engine"]["offloaded"] for r in rings)')
    xsim_log "ok: every write of guest 5 answered once its storage let go; $off ran in the worker pool"
    [ "$off" -gt 0 ] || xsim_fail "no write of guest 5 went to the worker pool"
}

# iso_stats DOMID EXPR: evaluate the Python expression EXPR over the rings
# of every device of DOMID (list `rings`, each a stats <ring>) through the
# control socket; prints its value.  Fails if the daemon does not answer
# within 10 s.
iso_stats() {
    "$ISO_PY" - "$XSIM_TMP/control.sock" "$1" "$2" "$top_srcdir/tests/daemon" <<'PY'
import sys
sys.path.insert(0, sys.argv[4])
import ctl
r = ctl.Client(sys.argv[1], timeout=10.0).call({"command": "stats", "domid": int(sys.argv[2])})
rings = [q for d in r["devices"] for q in d.get("rings", [])]
print(eval(sys.argv[3], {"rings": rings, "sum": sum}))
PY
}

# iso_wait_stats DOMID EXPR WHAT: wait until EXPR (as iso_stats) is True.
iso_wait_stats() {
    local end v
    end=$(xsim_deadline 30)
    while :; do
        v=$(iso_stats "$1" "$2" 2>"$XSIM_TMP/stats.err") ||
            xsim_fail "the control socket did not answer while $3 ($(tail -1 "$XSIM_TMP/stats.err"))"
        [ "$v" = True ] && return 0
        xsim_past "$end" && xsim_fail "never saw: $3"
        sleep 0.05
    done
}

# iso_latency JSON: "p50 p99 n" of the first disk of a --stats-json file.
iso_latency() {
    "$ISO_PY" - "$1" <<'PY'
import json, sys
l = json.load(open(sys.argv[1]))["disks"][0]["latency_us"]
print(l["p50"], l["p99"], l["n"])
PY
}

# iso_hold_discard DEV: hold the storage under DEV (a 64 MiB disk of guest
# 5, vbd3 51712) and start guest 5's whole-disk DISCARD as background job
# guestA; returns once the daemon counts it in flight.
iso_hold_discard() {
    iso_hold_writes 1 "$1"
    # 64 MiB = 131072 sectors: the whole disk.
    xsim_bg guestA "$top_builddir/tests/frontend/xsim-blkfront" --domid 5 --vdev 51712 \
        --timeout 120 -v --raw op=discard,sector=0,nr_sectors=131072,expect=any,timeout=120000
    iso_wait_stats 5 'len(rings) == 1 and rings[0]["requests"]["discard"] == 1 and rings[0]["in_flight"] == 1' \
        "guest 5's discard was in flight"
}

# iso_neighbour_verify COUNT WHAT: guest 6 (vbd3 51712, connected) runs a
# QD1 4 KiB verified workload of COUNT requests while guest 5's storage
# stays held (one held write, guestA still running); logs its latency.
# WHAT names what is held, for the messages.
iso_neighbour_verify() {
    local p50 p99 n
    "$top_builddir/tests/frontend/xsim-blkfront" --domid 6 --vdev 51712 --workload verify \
        --qd 1 --bs 4K --count "$1" --timeout 30 -v --close --stats-json "$XSIM_TMP/b.json" \
        >"$XSIM_LOGDIR/guestB.log" 2>&1 ||
        xsim_fail "guest 6 failed while $2 held: $(tail -5 "$XSIM_LOGDIR/guestB.log")"
    [ "$(cat "$ISO_CTL/held-count")" = 1 ] && xsim_running guestA ||
        xsim_fail "$2 no longer held when guest 6 finished"
    read -r p50 p99 n < <(iso_latency "$XSIM_TMP/b.json")
    xsim_log "ok: guest 6 completed $n requests while $2 held (QD1 4 KiB: p50 ${p50} us, p99 ${p99} us)"
}
