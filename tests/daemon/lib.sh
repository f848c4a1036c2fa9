# tests/daemon/lib.sh - helpers for the control-plane tests (bash).
# shellcheck shell=bash
#
# Sourced after tests/harness/env.sh.  A "guest" here is
# tests/daemon/xbd-guest: a simulated domain with empty granted rings and
# unbound event channels; the test writes the frontend keys itself, so it
# can write them wrong on purpose.

: "${top_srcdir:?}" "${top_builddir:?}"    # tests/harness/env.sh sets both
XBD_GUEST=$top_builddir/tests/daemon/xbd-guest

be_dir() { echo "/local/domain/0/backend/$1/$2/$3"; }
fe_dir() { echo "/local/domain/$1/device/vbd/$2"; }

# check DESCRIPTION CMD...: run CMD, fail the test with DESCRIPTION if false.
check() {
    local what=$1
    shift
    if "$@"; then
        xsim_log "ok: $what"
    else
        xsim_fail "$what"
    fi
}

# expect_key PATH VALUE: PATH holds VALUE right now.
expect_key() {
    local got
    got=$(xenstore-read "$1" 2>/dev/null) || xsim_fail "$1 is absent, want '$2'"
    [ "$got" = "$2" ] || xsim_fail "$1 is '$got', want '$2'"
}

# expect_absent PATH
expect_absent() {
    ! xenstore-exists "$1" 2>/dev/null || xsim_fail "$1 exists ('$(xenstore-read "$1")'), want absent"
}

# wait_log PATTERN [TIMEOUT] [NAME]: wait until the log of the daemon
# started as NAME (default xenblkd) matches the extended regular
# expression PATTERN.
wait_log() {
    local pat=$1 timeout=${2:-10} log=$XSIM_LOGDIR/${3:-xenblkd}.log end
    end=$(xsim__deadline "$timeout")
    until grep -Eq -- "$pat" "$log" 2>/dev/null; do
        xsim__past "$end" && xsim_fail "no log line matching '$pat' within ${timeout}s"
        sleep 0.05
    done
    xsim_note_slow "$end" "$timeout" "log line '$pat'"
    xsim_log "ok: log matches '$pat'"
}

# daemon_fds_to PATH: how many of the daemon's fds refer to PATH.
daemon_fds_to() {
    local pid n=0 f t
    pid=$(xsim_pid xenblkd)
    for f in /proc/"$pid"/fd/*; do
        t=$(readlink "$f" 2>/dev/null) || continue
        [ "$t" = "$1" ] && n=$((n + 1))
    done
    echo "$n"
}

# wait_fds_to PATH COUNT [TIMEOUT]
wait_fds_to() {
    local end n
    end=$(xsim__deadline "${3:-10}")
    while n=$(daemon_fds_to "$1"); [ "$n" != "$2" ]; do
        xsim__past "$end" && xsim_fail "daemon holds $n fd(s) to $1, want $2"
        sleep 0.05
    done
    xsim_note_slow "$end" "${3:-10}" "$2 fd(s) to $1"
    xsim_log "ok: daemon holds $2 fd(s) to $1"
}

# ctl_stats_sum DOMID EXPR: evaluate the python expression EXPR (r = one
# ring of the device of DOMID in the control socket's stats) and print
# its sum over the device's rings.
ctl_stats_sum() {
    python3 - "$XSIM_TMP/control.sock" "$1" "$2" <<'PY'
import sys
sys.path.insert(0, __import__("os").environ["top_srcdir"] + "/tests/daemon")
import ctl
rep = ctl.Client(sys.argv[1]).call({"command": "stats", "domid": int(sys.argv[2])})
assert rep.get("ok"), rep
print(sum(eval(sys.argv[3], {}, {"r": r}) for d in rep["devices"] for r in d["rings"]))
PY
}

# answered DOMID: the reads and writes the running daemon has served to
# DOMID (its control socket's counters, which start at 0 in each instance;
# 0 while no daemon answers).  Not the simulated host's grant copies: with
# persistent grants the indirect pages are mapped too, and a steady
# workload copies nothing.
answered() {
    ctl_stats_sum "$1" 'r["requests"]["read"] + r["requests"]["write"]' 2>/dev/null || echo 0
}

# served DOMID N PROC: wait until the running daemon has served N reads
# and writes to DOMID, while the workload (process PROC, an xsim-blkfront)
# runs and reports no error.
served() {
    local end
    end=$(xsim_deadline 30)
    until [ "$(answered "$1")" -ge "$2" ]; do
        xsim_running "$3" || xsim_fail "the workload ended (or failed) too early: $(tail -3 "$XSIM_LOGDIR/$3.log")"
        ! grep -m3 ': error: ' "$XSIM_LOGDIR/$3.log" || xsim_fail "the workload failed (lines above)"
        if xsim_past "$end"; then
            stall_report "$1"
            xsim_fail "no progress: $(answered "$1") requests served, want $2"
        fi
        sleep 0.02
    done
}

# stall_report DOMID: for the log of a test whose ring stopped moving:
# the daemon's stats of DOMID's device (in flight, out-of-slot stalls, the
# engine's queue, grants, bounce pages, evaluation) and the frontend's
# xenstore keys.
stall_report() {
    python3 - "$XSIM_TMP/control.sock" "$1" <<'PY' >&2 || true
import json, sys
sys.path.insert(0, __import__("os").environ["top_srcdir"] + "/tests/daemon")
import ctl
rep = ctl.Client(sys.argv[1]).call({"command": "stats", "domid": int(sys.argv[2])})
print("stall report, daemon stats:", json.dumps(rep, sort_keys=True))
PY
    xenstore-ls -f "$(fe_dir "$1" 51712)" >&2 2>/dev/null || true
    ring_report "$1" "$(fe_dir "$1" 51712)" >&2 || true
}

# ring_report DOMID FE: for each queue of the frontend directory FE, the
# shared ring's four indexes, read from the guest's memory, and both ends
# of its event channel as the simulated host has them (CONTRACT.md:
# masked, pending, delivered, and the owning handle's nready; a port
# delivered to a handle whose nready is 0, or one masked with nothing
# delivered, is a wake-up that cannot come).
ring_report() {
    local q dir ref port
    for q in "" $(xenstore-list "$2" 2>/dev/null | grep '^queue-' || true); do
        dir=$2${q:+/$q}
        ref=$(xenstore-read "$dir/ring-ref" 2>/dev/null || xenstore-read "$dir/ring-ref0" 2>/dev/null) || continue
        port=$(xenstore-read "$dir/event-channel" 2>/dev/null) || continue
        python3 - "$XENSIM_DIR" "$1" "$ref" "$port" "${q:-queue}" <<'PY'
import struct, sys
top, dom, ref, port, q = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
g = open(f"{top}/dom{dom}/gnttab", "rb").read()
grants_off = struct.unpack_from("<I", g, 24)[0]
frame = struct.unpack_from("<HHI", g, grants_off + 8 * ref)[2]
with open(f"{top}/dom{dom}/mem", "rb") as m:
    m.seek(frame * 4096)
    req_prod, req_event, rsp_prod, rsp_event = struct.unpack("<4I", m.read(16))
print(f"stall report, {q}: ring (ref {ref}): req_prod {req_prod} req_event {req_event} "
      f"rsp_prod {rsp_prod} rsp_event {rsp_event}")
def end(d, p, who):
    t = open(f"{top}/evtchn/dom{d}", "rb").read()
    st, masked, pend, dlv, rdom, h, rport, _, seq = struct.unpack_from("<BBBBHHIIQ", t, 4128 + 24 * p)
    nready = struct.unpack_from("<iIII", t, 32 + 16 * (h - 1))[2] if h else None
    print(f"stall report, {q}: {who} port {p} (domain {d}): state {st} masked {masked} "
          f"pending {pend} delivered {dlv} handle {h} nready {nready}, peer {rdom}:{rport}")
    return st, rdom, rport
st, rdom, rport = end(dom, port, "frontend")
if st == 2:
    end(rdom, rport, "backend")
PY
    done
}

# workload_verified JSON MIN: the --stats-json of an xsim-blkfront verify
# workload (one disk) run across daemon restarts: it connected once (never
# reconnected), every pair it started was written and read back (at least
# MIN reads), every response was OKAY, no read failed its verification,
# no response was a protocol error.
workload_verified() {
    /usr/bin/env python3 - "$1" "$2" <<'PY' || xsim_fail "frontend counters"
import json, sys
d = json.load(open(sys.argv[1]))["disks"][0]
assert d["connects"] == 1, d["connects"]
rq = d["requests"]
assert rq["read"] == rq["write"] and rq["read"] >= int(sys.argv[2]), rq
assert d["responses"]["okay"] == rq["read"] + rq["write"], (d["responses"], rq)
assert d["verify_errors"] == 0 and d["protocol_errors"] == 0 and d["errors"] == 0, d
PY
    xsim_log "ok: the workload never reconnected, every response OKAY, every read verified"
}

# backend_connected_once BE FE: the backend's state (directory BE), as
# xenstored saw it written: Connected once, then nothing until the
# frontend (directory FE) went Closing.
backend_connected_once() {
    awk -v be="$1/state" -v fe="$2/state" '
        $5 == "WRITE" && $6 == "(" be { v = $7; sub(/\)$/, "", v); print "be", v }
        $5 == "WRITE" && $6 == "(" fe { v = $7; sub(/\)$/, "", v); print "fe", v }
    ' "$XSIM_LOGDIR/xenstored-trace.log" >"$XSIM_TMP/states"
    awk '
        $1 == "be" && $2 == 4 { n4++ }
        $1 == "fe" && $2 == 5 { closing = 1 }
        $1 == "be" && n4 && $2 != 4 && !closing { bad = bad " " $2 }
        END {
            if (n4 != 1) { print "backend state written Connected " n4 " times"; exit 1 }
            if (bad != "") { print "backend state left Connected:" bad; exit 1 }
        }' "$XSIM_TMP/states" || { cat "$XSIM_TMP/states"; xsim_fail "the backend state did not stay Connected"; }
    xsim_log "ok: the backend state was written Connected once and stayed so until Closing"
}

# make_disk NAME SIZE_MIB: create a sparse disk image, print its path.
# Start the daemon (xsim_daemon ARGS...) with every grant unmap held while
# the file $hold exists (XENSIM_GNTTAB_UNMAP_HOLD, tests/sim/CONTRACT.md):
# the tests of the unmap worker create and remove $hold themselves.
daemon_unmaps_held() {
    hold=$XSIM_TMP/unmap.hold
    XENSIM_GNTTAB_UNMAP_HOLD=$hold xsim_daemon "$@"
}

make_disk() {
    local p=$XSIM_TMP/$1
    truncate -s "$2M" "$p" || xsim_fail "cannot create $p"
    echo "$p"
}

# file_pss FILE: the physical-sector-size xenblkd publishes for a file
# opened with 512-byte sectors: its filesystem's block size, a power of
# two from 512 to 4096.
file_pss() {
    local blk pss=512
    blk=$(stat -c %o "$1") || xsim_fail "cannot stat $1"
    while [ "$pss" -lt 4096 ] && [ $((pss * 2)) -le "$blk" ]; do pss=$((pss * 2)); done
    echo "$pss"
}

# guest_start DOMID [--queues N] [--order O]: start a simulated guest
# (process name guestDOMID); its ring description goes to
# $XSIM_TMP/guestDOMID.rings.
guest_start() {
    local domid=$1 out=$XSIM_TMP/guest$1.rings i
    shift
    xsim_bg "guest$domid" "$XBD_GUEST" --domid "$domid" --out "$out" "$@"
    for ((i = 0; i < 500; i++)); do
        [ -s "$out" ] && return 0
        xsim_running "guest$domid" || xsim_fail "guest $domid died (see guest$domid.log)"
        sleep 0.02
    done
    xsim_fail "guest $domid did not set up its rings"
}

# guest_status DOMID: print "<grants in use> <ports connected>".
guest_status() {
    local st=$XSIM_TMP/guest$1.rings.status i
    rm -f "$st"
    kill -USR1 "$(xsim_pid "guest$1")"
    for ((i = 0; i < 500; i++)); do
        [ -s "$st" ] && { cat "$st"; return 0; }
        sleep 0.01
    done
    xsim_fail "guest $1 did not report its status"
}

# guest_holds DOMID: true if guest DOMID reported its status and a backend
# has some of its grants mapped and some of its ports bound.  (Not
# `[ "$(guest_status D)" != "0 0" ]`: a guest that never answered prints
# nothing, which differs from "0 0" too.)
guest_holds() {
    local s
    s=$(guest_status "$1") || return 1
    [[ $s =~ ^[1-9][0-9]*\ [1-9][0-9]*$ ]]
}

# wait_guest_released DOMID [TIMEOUT]: no grant of the guest is mapped by
# anyone and no event channel of it is bound any more.
wait_guest_released() {
    local end s
    end=$(xsim__deadline "${2:-10}")
    while s=$(guest_status "$1"); [ "$s" != "0 0" ]; do
        xsim__past "$end" && xsim_fail "guest $1: grants in use / ports bound = $s, want 0 0"
        sleep 0.05
    done
    xsim_note_slow "$end" "${2:-10}" "guest $1 released"
    xsim_log "ok: guest $1 has no grant mapped and no port bound"
}

# fe_write_rings DOMID DEVID [PROTOCOL]: write the ring keys of guest
# DOMID as Linux blkfront does (ring-ref for one page, ring-page-order +
# ring-refN otherwise; with several queues ring-refN and event-channel go
# under queue-N/, ring-page-order stays at the top).
fe_write_rings() {
    local domid=$1 devid=$2 proto=${3:-x86_64-abi} fe nq q order port refs i dir
    fe=$(fe_dir "$domid" "$devid")
    local -a args=()
    nq=$(wc -l < "$XSIM_TMP/guest$domid.rings")
    [ "$nq" -gt 1 ] && args+=("$fe/multi-queue-num-queues" "$nq")
    while read -r q order port refs; do
        dir=$fe
        [ "$nq" -gt 1 ] && dir=$fe/queue-$q
        read -r -a r <<<"$refs"
        if [ "$order" -eq 0 ]; then
            args+=("$dir/ring-ref" "${r[0]}")
        else
            # One ring-page-order for every queue, at the top (as blkfront).
            [ "$q" = 0 ] && args+=("$fe/ring-page-order" "$order")
            for ((i = 0; i < ${#r[@]}; i++)); do args+=("$dir/ring-ref$i" "${r[i]}"); done
        fi
        args+=("$dir/event-channel" "$port")
    done < "$XSIM_TMP/guest$domid.rings"
    [ "$proto" != none ] && args+=("$fe/protocol" "$proto")
    args+=("$fe/feature-persistent" 1)
    xenstore-write "${args[@]}" || xsim_fail "cannot write the frontend keys"
}

# fe_state DOMID DEVID STATE
fe_state() { xenstore-write "$(fe_dir "$1" "$2")/state" "$3"; }

# fe_answer_closing NAME KIND DOMID DEVID: answer the backend's Closing
# as Linux blkfront does (libxl's removal writes it): a background process
# NAME waits for the backend's state 5, then writes the frontend's Closed.
fe_answer_closing() {
    xsim_bg "$1" bash -c 'until [ "$(xenstore-read "$1/state" 2>/dev/null)" = 5 ]; do sleep 0.02; done
        xenstore-write "$2/state" 6' _ "$(be_dir "$2" "$3" "$4")" "$(fe_dir "$3" "$4")"
}

# connect_qdisk DOMID: an 8 MiB qdisk xvda for a new simulated guest
# DOMID, connected (the daemon must be running): InitWait, the frontend's
# ring keys, Initialised, Connected.
connect_qdisk() {
    local img
    img=$(make_disk "d$1.img" 8)
    xsim_add_disk qdisk "$1" xvda "aio:$img"
    guest_start "$1"
    xsim_wait_key "$(be_dir qdisk "$1" 51712)/state" 2
    fe_write_rings "$1" 51712
    fe_state "$1" 51712 3
    xsim_wait_key "$(be_dir qdisk "$1" 51712)/state" 4
}

# loop_attach FILE [LOSETUP_ARGS...]: attach FILE to a free loop device and
# print its path (exit status 1, reason in $XSIM_LOGDIR/losetup.log, if the
# kernel will not).  Parallel tests race for free loop devices: retries.
# The caller detaches it (xsim_on_exit), outside the command substitution.
loop_attach() {
    local f=$1 i d
    shift
    for ((i = 0; i < 5; i++)); do
        d=$(losetup -f --show "$@" "$f" 2>"$XSIM_LOGDIR/losetup.log") && { echo "$d"; return 0; }
        sleep 0.2
    done
    return 1
}

# loop_write_through IMAGE [LOSETUP_ARGS...]: attach IMAGE to a loop
# device switched to "write through" (its queue/write_cache), in $wtdev
# ($wc: that file); skips the test if the kernel will not.  The kernel
# keeps a loop device's "write through" across detach and re-attach
# (since Linux 6.11): it is restored to "write back" before the device is
# detached at exit, or the next user of that loop device (another test,
# another engineer's) would get a write-through device.
loop_write_through() {
    wtdev=$(loop_attach "$@") ||
        xsim_skip "cannot set up a loop device: $(cat "$XSIM_LOGDIR/losetup.log")"
    wc=/sys/block/${wtdev#/dev/}/queue/write_cache
    xsim_on_exit "echo 'write back' >'$wc'; losetup -d $wtdev"
    echo "write through" >"$wc" 2>/dev/null || xsim_skip "cannot switch $wtdev to write through"
    [ "$(cat "$wc")" = "write through" ] || xsim_skip "$wtdev stays '$(cat "$wc")'"
}

# ext4_4kn: an ext4 filesystem on a loop device with 4096-byte logical
# sectors (a "4Kn" disk, where O_DIRECT needs 4096-byte I/O), device in
# $dev4k, mounted on $fs4k (both undone at exit); skips the test if the
# kernel or mkfs.ext4 will not.
ext4_4kn() {
    local img
    img=$(make_disk fs4k.img 64)
    dev4k=$(loop_attach "$img" --sector-size 4096) ||
        xsim_skip "the kernel refuses to set up a loop device: $(cat "$XSIM_LOGDIR/losetup.log")"
    xsim_on_exit "losetup -d $dev4k"
    [ "$(blockdev --getss "$dev4k")" = 4096 ] ||
        xsim_skip "$dev4k has $(blockdev --getss "$dev4k")-byte sectors, not 4096"
    mkfs.ext4 -q -b 4096 "$dev4k" || xsim_skip "mkfs.ext4 failed"
    fs4k=$XSIM_TMP/fs4k
    mkdir -p "$fs4k"
    mount "$dev4k" "$fs4k" || xsim_skip "cannot mount ext4 from $dev4k"
    xsim_on_exit "umount -l '$fs4k'"
}

# fuse_hold_need DEPS-LIST: skip unless fuse-hold.py can run here
# (python3-fusepy, /dev/fuse, losetup); DEPS-LIST names the tests/deps
# list that installs them.  Before xsim_start.
fuse_hold_need() {
    FUSE_PY=/usr/bin/python3
    [ -x "$FUSE_PY" ] && "$FUSE_PY" -c 'import fusepy' 2>/dev/null ||
        xsim_skip "python3-fusepy is not installed (tests/deps/$1)"
    [ -c /dev/fuse ] || xsim_skip "no /dev/fuse"
    command -v losetup >/dev/null || xsim_skip "losetup is not installed"
}

# fuse_hold_mount MNT CTL SIZE_MB HOLD_OFFSET: serve a SIZE_MB image as
# MNT/disk.img through tests/daemon/fuse-hold.py (writes at byte
# HOLD_OFFSET wait while CTL/hold exists) and wait until it is there.
fuse_hold_mount() {
    local end
    mkdir -p "$1" "$2"
    truncate -s "$3M" "$XSIM_TMP/store.img"
    xsim_bg fuse "$FUSE_PY" "$top_srcdir/tests/daemon/fuse-hold.py" "$1" "$XSIM_TMP/store.img" \
        "$4" "$2"
    xsim_on_exit "umount -l '$1' 2>/dev/null || true"
    end=$(xsim_deadline 10)
    until [ -f "$1/disk.img" ]; do
        xsim_past "$end" && xsim_skip "cannot mount the FUSE filesystem: $(tail -3 "$XSIM_LOGDIR/fuse.log")"
        xsim_running fuse || xsim_skip "fuse-hold.py exited: $(tail -3 "$XSIM_LOGDIR/fuse.log")"
        sleep 0.05
    done
}

# fuse_hold_loop VAR MNT CTL SIZE_MB HOLD_OFFSET: fuse_hold_mount, then set
# VAR to a loop device over MNT/disk.img (detached at exit): a block
# device whose I/O at HOLD_OFFSET waits while CTL/hold exists.
fuse_hold_loop() {
    local -n fhl_out_=$1
    fuse_hold_mount "$2" "$3" "$4" "$5"
    fhl_out_=$(loop_attach "$2/disk.img") ||
        xsim_skip "cannot set up a loop device: $(cat "$XSIM_LOGDIR/losetup.log")"
    xsim_on_exit "losetup -d $fhl_out_"
}

# held_write NAME CTL SECTOR [XBD-FE ARGS...]: guest 5 (process NAME,
# xbd-fe held-write on xvda) writes at SECTOR of a disk served through
# fuse-hold.py, whose CTL/hold must exist; returns once the storage holds
# the write and the malformed request behind it was answered (the
# guest's --ready file, $XSIM_TMP/NAME.ready).  ARGS: --gen, --timeout,
# --go...
held_write() {
    local name=$1 ctl=$2 sector=$3 end
    shift 3
    xsim_bg "$name" "$top_builddir/tests/daemon/xbd-fe" held-write --domid 5 --vdev 51712 \
        --sector "$sector" --ready "$XSIM_TMP/$name.ready" "$@"
    end=$(xsim_deadline 20)
    until [ -e "$XSIM_TMP/$name.ready" ] && [ -e "$ctl/held" ]; do
        xsim_past "$end" && xsim_fail "the write of $name was not held with the malformed request answered"
        xsim_running "$name" || xsim_fail "$name failed: $(tail -5 "$XSIM_LOGDIR/$name.log")"
        sleep 0.05
    done
    xsim_log "ok: the write of $name at sector $sector is held in its storage"
}

# kill_guest NAME: SIGKILL the guest process NAME (a domain dying with
# its I/O in flight) and wait until it is gone.
kill_guest() {
    local st
    kill -KILL "$(xsim_pid "$1")"
    st=$(xsim_wait_exit "$1" 10) || xsim_fail "$1 did not die"
    [ "$st" = 137 ] || xsim_fail "$1 exited $st, want 137 (SIGKILL)"
}

# settle [--socket PATH] [SECONDS]: wait until the daemon has acted on
# every xenstore write made so far (xenblkctl settle: the watch events
# queued for it are handled, no evaluation is queued or delayed, no
# xenstore read or write is out, no ring is draining).  The sync point
# before a check that something did NOT happen: an event, not a time
# window.  PATH: the daemon's control socket (default xsim_daemon's).
# Fails the test if the daemon does not settle within SECONDS (default 30).
settle() {
    local sock=$XSIM_TMP/control.sock out rc=0
    if [ "${1:-}" = --socket ]; then
        sock=$2
        shift 2
    fi
    out=$("$top_builddir/src/xenblkctl" --socket "$sock" settle --timeout "${1:-30}" 2>&1) || rc=$?
    [ "$rc" = 0 ] || xsim_fail "xenblkd did not settle (xenblkctl settle: $rc): $out"
    xsim_log "ok: $out"
}
