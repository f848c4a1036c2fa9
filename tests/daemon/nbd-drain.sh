#!/bin/bash
# NBD clients cut off with a write in flight (nbd_export.c): the write
# still runs on the connection's duplicate of the backing fd, so the
# connection stays on its export, draining, until it is back, and
#  - it counts against the 4 clients per disk (limit), and clients that
#    hang up with writes held by hung storage cannot pile up fds and
#    4 MiB buffers (churn);
#  - the disk is not released before it is back: a removal publishes
#    Closed and frees the device only after the write (remove), and when
#    libxl gives up waiting and deletes the directory, the device is
#    freed only after the write (forced removal);
#  - a handover (SIGTERM) waits for it as for a ring, bounded by the same
#    timeout; past it, the exit drops the connection without a leak (the
#    sanitizer build) and without blaming rings (term).
# The storage: a loop device over tests/daemon/fuse-hold.py, which holds
# writes at byte $off while $ctl/hold exists.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
/usr/bin/python3 -c 'import nbd' 2>/dev/null ||
    xsim_skip "no nbd module for /usr/bin/python3 (Debian: python3-libnbd)"
fuse_hold_need restart.txt
xsim_start
mnt=$XSIM_TMP/mnt ctl=$XSIM_TMP/ctl
off=$((1 << 20))
max_conns=4                     # XBD_NBD_MAX_CONNS
client="python3 $top_srcdir/tests/daemon/nbd-client.py"
fuse_hold_loop dev "$mnt" "$ctl" 16 $off
xsim_on_exit "rm -f '$ctl/hold'"    # a failed test lets the daemon exit
be=$(be_dir vbd3 5 51712)
sock=$XSIM_TMP/state/nbd/vbd3-5-51712.sock

attach() {
    xsim_add_disk vbd3 5 xvda "aio:$dev"
    xsim_wait_key "$be/state" 2
    xsim_hotplug_connected vbd3 5 xvda
    xsim_wait_key "$be/physical-device-path" "$sock"
}

# held_nbd_write NAME: client NAME (nbdsh) writes 4 KiB at $off, which
# the storage holds (CTL/hold must exist); returns once it is held.
held_nbd_write() {
    local n end
    n=$(cat "$ctl/held-count" 2>/dev/null || echo 0)
    xsim_bg "$1" /usr/bin/python3 -m nbd -u "nbd+unix:///?socket=$sock" \
        -c "h.pwrite(b'\xab' * 4096, $off)"
    end=$(xsim_deadline 20)
    until [ "$(cat "$ctl/held-count" 2>/dev/null || echo 0)" -gt "$n" ]; do
        xsim_past "$end" && xsim_fail "the write of $1 was not held"
        xsim_running "$1" || xsim_fail "$1 exited: $(tail -3 "$XSIM_LOGDIR/$1.log")"
        sleep 0.05
    done
    xsim_log "ok: the NBD write of $1 is held by the storage"
}

# release: let the held writes go, wait until the storage holds none.
release() {
    local end
    rm -f "$ctl/hold"
    end=$(xsim_deadline 20)
    until [ "$(cat "$ctl/held-count")" = 0 ]; do
        xsim_past "$end" && xsim_fail "held writes not released"
        sleep 0.05
    done
}

# log_since N NAME: the daemon NAME's log after its first N lines.
log_since() { tail -n +"$(($1 + 1))" "$XSIM_LOGDIR/$2.log"; }
# wait_log_since N PATTERN [NAME]: as wait_log, in log_since N NAME.
wait_log_since() {
    local end name=${3:-xenblkd}
    end=$(xsim_deadline 30)
    until log_since "$1" "$name" | grep -Eq -- "$2"; do
        xsim_past "$end" && xsim_fail "no log line matching '$2' (after line $1 of $name.log)"
        sleep 0.05
    done
    xsim_log "ok: $name.log matches '$2'"
}

# freed_after_write N CLIENT PATTERN: the write of CLIENT is held and
# its connection cut off by the removal of the disk: the daemon's log since
# line N has no line matching PATTERN (the disk released) and the client
# still holds its fd; once the write is released the device is freed, with
# no fd to the store left.
freed_after_write() {
    ! log_since "$1" xenblkd | grep -E -- "$3" >&2 ||
        xsim_fail "the disk was released with an NBD write in flight"
    check "the cut-off client still holds its fd" [ "$(daemon_fds_to "$dev")" = 1 ]
    release
    wait_log_since "$1" "backend directory removed, device freed"
    check "no fd to the store once the device is freed" [ "$(daemon_fds_to "$dev")" = 0 ]
    xsim_wait_exit "$2" 20 >/dev/null || true
}

xsim_daemon --kinds vbd3
attach

# --- limit: cut-off clients keep their places ------------------------
touch "$ctl/hold"
for i in $(seq $max_conns); do
    xsim_bg hw$i $client "$sock" hold-write $off "$XSIM_TMP/go"
done
for i in $(seq $max_conns); do
    end=$(xsim_deadline 20)
    until grep -q "^ready" "$XSIM_LOGDIR/hw$i.log" 2>/dev/null; do
        xsim_past "$end" && xsim_fail "client hw$i: its write was not taken in"
        xsim_running hw$i || xsim_fail "client hw$i failed: $(tail -3 "$XSIM_LOGDIR/hw$i.log")"
        sleep 0.05
    done
done
touch "$XSIM_TMP/go"
end=$(xsim_deadline 20)
until [ "$(grep -c "still in the engine: waiting" "$XSIM_LOGDIR/xenblkd.log")" = $max_conns ]; do
    xsim_past "$end" && xsim_fail "the $max_conns clients were not cut off with their writes in flight"
    sleep 0.05
done
$client "$sock" refused ||
    xsim_fail "a client was served beside $max_conns cut off with their writes in flight"
wait_log "$max_conns clients already: refusing more \\($max_conns of them cut off"
check "the cut-off clients' fds and the disk's" [ "$(daemon_fds_to "$dev")" = $((max_conns + 1)) ]
release
wait_fds_to "$dev" 1

# --- eof: a client that hangs up cleanly between requests, its write
# still in the engine, is cut off the same (it drains, holds the disk's
# other clients back); it used to be only "closing", served as if alive.
touch "$ctl/hold"
cut0=$(grep -c "still in the engine: waiting" "$XSIM_LOGDIR/xenblkd.log")
rm -f "$XSIM_TMP/go"
xsim_bg eofw $client "$sock" eof-write $off "$XSIM_TMP/go"
end=$(xsim_deadline 20)
until grep -q "^ready" "$XSIM_LOGDIR/eofw.log" 2>/dev/null; do
    xsim_past "$end" && xsim_fail "client eofw: its write was not taken in"
    xsim_running eofw || xsim_fail "client eofw failed: $(tail -3 "$XSIM_LOGDIR/eofw.log")"
    sleep 0.05
done
touch "$XSIM_TMP/go"
end=$(xsim_deadline 20)
until [ "$(grep -c "still in the engine: waiting" "$XSIM_LOGDIR/xenblkd.log")" -gt "$cut0" ]; do
    xsim_past "$end" && xsim_fail "a client that hung up cleanly with its write in flight was not cut off"
    sleep 0.05
done
xsim_log "ok: the clean hang-up with a write in flight cut the client off"
release
wait_fds_to "$dev" 1

# --- churn: clients hanging up with a write held -----------------------
touch "$ctl/hold"
held_nbd_write nbdw                     # one live client, its write held
for i in $(seq 12); do
    $client "$sock" cut-write $off || xsim_fail "cut-write client $i failed"
    n=$(daemon_fds_to "$dev")
    [ "$n" -le $((max_conns + 1)) ] ||
        xsim_fail "after $i clients cut off: $n fds to $dev, more than $max_conns clients + the disk's own"
done
# The disk's own fd, the live client's and the first cut-off client's
# (its write went to the engine before anything drained); the later ones
# got nothing into the engine (held back behind the drain: nbd_export.c)
# and left at once.
wait_fds_to "$dev" 3
release
st=$(xsim_wait_exit nbdw 20) || true
[ "$st" = 0 ] || xsim_fail "the live client's write failed (status $st)"
wait_fds_to "$dev" 1

# --- remove: the disk is released only once the write is done ----------
touch "$ctl/hold"
held_nbd_write nbdw2
n0=$(wc -l <"$XSIM_LOGDIR/xenblkd.log")
(rc=0; xsim_remove_disk vbd3 5 xvda 30 || rc=$?; echo $rc >"$XSIM_TMP/remove.rc") &
rmpid=$!
wait_log_since "$n0" "nbd: .*\.sock removed"
# Closing the export and publishing Closed are one step when nothing
# waits (close_to): neither a Closed nor a freed device may follow it
# while the write is held.
freed_after_write "$n0" nbdw2 "-> Closed|device freed"
wait "$rmpid"
[ "$(cat "$XSIM_TMP/remove.rc")" = 0 ] || xsim_fail "the removal did not reach Closed"

# --- forced removal: libxl gives up waiting for Closed (here after 1 s)
# and deletes the directory; the device is freed once the write is back.
attach
touch "$ctl/hold"
held_nbd_write nbdw5
n0=$(wc -l <"$XSIM_LOGDIR/xenblkd.log")
rc=0
xsim_remove_disk vbd3 5 xvda 1 || rc=$?
[ "$rc" = 1 ] || xsim_fail "the removal reached Closed with an NBD write in flight"
wait_log_since "$n0" "backend directory removed while NBD clients' I/O drains"
freed_after_write "$n0" nbdw5 "device freed"

# --- deleted: a toolstack deletes the directory without online=0 ------
attach
touch "$ctl/hold"
held_nbd_write nbdw6
n0=$(wc -l <"$XSIM_LOGDIR/xenblkd.log")
xenstore-rm "$be"
wait_log_since "$n0" "nbd: .*\.sock removed"
freed_after_write "$n0" nbdw6 "device freed"
xenstore-rm "/local/domain/5/device/vbd/51712" 2>/dev/null || true

# --- term: a handover waits for the write, within its bound -----------
attach
touch "$ctl/hold"
held_nbd_write nbdw3
n0=$(wc -l <"$XSIM_LOGDIR/xenblkd.log")
kill -TERM "$(xsim_pid xenblkd)"
wait_log_since "$n0" "nbd: .*\.sock removed"
! log_since "$n0" xenblkd | grep -- "handed over" >&2 ||
    xsim_fail "handed over with an NBD write in flight"
release
wait_log_since "$n0" "handed over in state"
st=$(xsim_wait_exit xenblkd 20) || true
[ "$st" = 0 ] || xsim_fail "the daemon exited $st after the handover"

# Past the handover's bound (XBD_HANDOVER_TIMEOUT, 15 s) with the write
# still held: the exit waits for the kernel, then frees the connection.
XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --kinds vbd3
wait_log "nbd: serving on $sock" 20 xenblkd2
touch "$ctl/hold"
held_nbd_write nbdw4
kill -TERM "$(xsim_pid xenblkd2)"
wait_log "rings or NBD clients' I/O did not drain within" 40 xenblkd2
wait_log "exit: waiting for the [0-9]+ I/O\(s\) the kernel holds" 30 xenblkd2
release
st=$(xsim_wait_exit xenblkd2 30) || true
[ "$st" = 0 ] || xsim_fail "the daemon exited $st"
grep -E "exit: .* not answered: 0 left to the abandoned rings' journals, [1-9][0-9]* of NBD clients" \
    "$XSIM_LOGDIR/xenblkd2.log" >&2 || xsim_fail "the exit line does not tell the NBD client's I/O"
! grep -E "Sanitizer|runtime error|I/O queue freed with" "$XSIM_LOGDIR/xenblkd2.log" >&2 ||
    xsim_fail "the exit left a sanitizer report or an I/O queue in use"
xsim_log PASS
