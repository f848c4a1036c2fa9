#!/bin/bash
# systemd's notify protocol, read from a stand-in NOTIFY_SOCKET
# (notify-listen): READY=1 only once every device that existed at start
# is in InitWait (the watches are armed and the first evaluations done),
# STATUS= with device/ring counts sent when they change and only then,
# RELOADING=1 + MONOTONIC_USEC= then READY=1 around SIGHUP, WATCHDOG=1
# every half of $WATCHDOG_USEC when $WATCHDOG_PID is unset or ours (and
# never for someone else's), STOPPING=1 on SIGTERM; and the soft limit on
# open files raised to the hard one at start.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
disk=$(make_disk disk.img 8)
N=40

# N guests with one disk each, all written before the daemon starts.
for ((d = 1; d <= N; d++)); do xsim_add_disk qdisk "$d" xvda "aio:$disk" r; done

out=$XSIM_TMP/notify.out
sock=$XSIM_TMP/notify.sock
# When READY=1 arrives, the listener reads every device's state before it
# reads anything else.
at_ready=$XSIM_TMP/at-ready
xsim_bg notify "$top_builddir/tests/daemon/notify-listen" "$sock" "$out" \
    "for d in \$(seq 1 $N); do xenstore-read /local/domain/0/backend/qdisk/\$d/51712/state; done > $at_ready.tmp 2>&1; mv $at_ready.tmp $at_ready"
for ((i = 0; i < 200; i++)); do [ -S "$sock" ] && break; sleep 0.02; done
[ -S "$sock" ] || xsim_fail "notify-listen did not bind $sock"

# dgrams: every datagram received so far on one line, keys joined by '|',
# then "|@<receipt usec> pid=<sender>".
dgrams() { awk '/^-- /{print d "|@" $2 " " $3; d=""; next} {d = d (d == "" ? "" : "|") $0}' "$out"; }
# wait_dgram ERE [TIMEOUT]: wait for a datagram matching ERE; print the
# last one that does.
wait_dgram() {
    local end
    end=$(xsim_deadline "${2:-10}")
    until dgrams | grep -Eq -- "$1"; do
        xsim_past "$end" && xsim_fail "no notification matching '$1' within ${2:-10}s"
        sleep 0.05
    done
    dgrams | grep -E -- "$1" | tail -n 1
}
statuses() { dgrams | grep -o 'STATUS=[^|]*' || true; }

NOTIFY_SOCKET=$sock WATCHDOG_USEC=200000 xsim_daemon --kinds qdisk
pid=$(xsim_pid xenblkd)

# --- READY=1 after the first evaluation of every pre-existing device.
ready=$(wait_dgram '(^|\|)READY=1(\||$)')
end=$(xsim_deadline 10)
until [ -e "$at_ready" ]; do xsim_past "$end" && xsim_fail "READY hook did not run"; sleep 0.05; done
check "every device in InitWait when READY=1 was sent ($(sort "$at_ready" | uniq -c | tr -s ' \n' ' '))" \
    [ "$(grep -cx 2 "$at_ready")" = "$N" ]
check "READY=1 from the daemon itself" grep -q " pid=$pid\$" <<<"$ready"
check "READY=1 carries the status line ($ready)" \
    grep -q "|STATUS=$N devices (0 connected), 0 rings|" <<<"$ready"
# The watches are armed: a device created now is served too.
xsim_add_disk qdisk $((N + 1)) xvda "aio:$disk"
xsim_wait_key "$(be_dir qdisk $((N + 1)) 51712)/state" 2 || xsim_fail "device added after READY not served"
wait_dgram "STATUS=$((N + 1)) devices \\(0 connected\\), 0 rings" >/dev/null
N=$((N + 1))

# --- STATUS= follows connections and removals.
guest_start 1
fe_write_rings 1 51712
fe_state 1 51712 3
xsim_wait_key "$(be_dir qdisk 1 51712)/state" 4
wait_dgram "STATUS=$N devices \\(1 connected\\), 1 ring(\\||$)" >/dev/null
xsim_remove_disk qdisk 2 xvda
wait_dgram "STATUS=$((N - 1)) devices \\(1 connected\\), 1 ring(\\||$)" >/dev/null
fe_state 1 51712 6
xsim_wait_key "$(be_dir qdisk 1 51712)/state" 6
wait_dgram "STATUS=$((N - 1)) devices \\(0 connected\\), 0 rings" >/dev/null
# Each evaluation that changed nothing visible (the frontend's own state
# writes, the removal's steps) sent nothing: no STATUS= repeats the one
# before it.
check "STATUS= only when the counts changed: $(statuses | tr '\n' ';')" \
    [ "$(statuses | uniq | wc -l)" = "$(statuses | wc -l)" ]

# --- WATCHDOG=1 every 0.1 s from the loop.
wait_log "service watchdog: keep-alive every 0.100 s"
end=$(xsim_deadline 10)
until [ "$(dgrams | grep -c "^WATCHDOG=1|@.* pid=$pid\$")" -ge 10 ]; do
    xsim_past "$end" && xsim_fail "fewer than 10 WATCHDOG=1 within 10 s"
    sleep 0.05
done
xsim_log "ok: WATCHDOG=1 keeps coming"

# --- SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1.
before=$(dgrams | wc -l)
kill -HUP "$pid"
wait_log "SIGHUP"
end=$(xsim_deadline 10)
until dgrams | tail -n +$((before + 1)) | grep -v '^WATCHDOG=1|' | grep -q 'READY=1'; do
    xsim_past "$end" && xsim_fail "no READY=1 after SIGHUP"
    sleep 0.05
done
after=$(dgrams | tail -n +$((before + 1)) | grep -v '^WATCHDOG=1|')
xsim_log "after SIGHUP: $(tr '\n' ';' <<<"$after")"
first=$(head -n 1 <<<"$after")
[[ $first =~ ^RELOADING=1\|MONOTONIC_USEC=([0-9]+)\|@([0-9]+)\  ]] ||
    xsim_fail "first notification after SIGHUP is not RELOADING=1 + MONOTONIC_USEC: $first"
mono=${BASH_REMATCH[1]} recv=${BASH_REMATCH[2]}
check "MONOTONIC_USEC ($mono) is CLOCK_MONOTONIC shortly before receipt ($recv)" \
    test "$mono" -le "$recv" -a $((recv - mono)) -lt 5000000
check "then READY=1 with the status" \
    grep -q "^READY=1|STATUS=$((N - 1)) devices (0 connected), 0 rings|" <<<"$(sed -n 2p <<<"$after")"

# --- SIGTERM: STOPPING=1, clean exit.
st=$(xsim_kill xenblkd TERM)
check "clean exit (got $st)" [ "$st" = 0 ]
# notify-listen records the datagram after the daemon sent it: wait for it.
wait_dgram "^STOPPING=1\\|@.* pid=$pid\$" >/dev/null
xsim_log "ok: STOPPING=1 sent"

# --- A watchdog meant for another process (WATCHDOG_PID not ours): none.
# Started with a low soft limit on open files: raised to the hard one.
: > "$out"
NOTIFY_SOCKET=$sock WATCHDOG_USEC=200000 WATCHDOG_PID=1 \
    xsim_bg xenblkd2 prlimit --nofile=256:4096 "$top_builddir/src/xenblkd" --foreground \
    --log-level debug --kinds qdisk --config /dev/null --state-dir "$XSIM_TMP/state2" \
    --control-socket "$XSIM_TMP/control2.sock"
wait_dgram '(^|\|)READY=1(\||$)' >/dev/null
wait_log "file descriptor limit 4096 \\(soft limit was 256\\)" 10 xenblkd2
check "soft RLIMIT_NOFILE raised to the hard limit" \
    grep -Eq '^Max open files +4096 +4096 ' "/proc/$(xsim_pid xenblkd2)/limits"
! grep -q "service watchdog" "$XSIM_LOGDIR/xenblkd2.log" || xsim_fail "petting someone else's watchdog"
check "no WATCHDOG=1 for another pid" [ "$(dgrams | grep -c WATCHDOG=1)" = 0 ]
st=$(xsim_kill xenblkd2 TERM)
check "clean exit (got $st)" [ "$st" = 0 ]
exit 0
