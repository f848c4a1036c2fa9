#!/bin/bash
# tests/systemd/nspawn-driver.sh OUTDIR - runs INSIDE the container of
# tests/systemd/nspawn.sh, as a oneshot unit under systemd (PID 1), and
# drives xenblkd.service on a simulated Xen host started in the same
# container.  It records what it sees as KEY=VALUE lines in OUTDIR/facts
# (asserted by nspawn.sh outside), plus the journal for diagnostics.
# Every wait has a deadline; nothing sleeps for a window.
set -euo pipefail
out=$1
facts=$out/facts
: > "$facts"
fact() { printf '%s=%s\n' "$1" "$2" >> "$facts"; echo "fact: $1=$2"; }

source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"

unit=xenblkd.service
show() { systemctl show -P "$1" "$unit"; }
# wait_prop PROPERTY VALUE [TIMEOUT]: until `systemctl show` says so.
wait_prop() {
    local end got
    end=$(xsim_deadline "${3:-30}")
    until got=$(show "$1") && [ "$got" = "$2" ]; do
        xsim_past "$end" && { echo "timeout: $1 is '$got', want '$2'"; return 1; }
        sleep 0.1
    done
}
# PID 1's own debug log names every notification it receives.  journald
# stores what it receives asynchronously: `journalctl --sync` (it returns
# once every message sent before it is in the journal) goes before each
# read of what PID 1 or the daemon logged.
pid1_log() { journalctl -b -q --no-pager -o cat _PID=1 "$@"; }
# The daemon logs through syslog; journald cannot always tell its unit
# from a container's legacy cgroups, so select by identifier.
daemon_log() { journalctl -b -q --no-pager -o cat -t xenblkd "$@"; }
dump_journal() {
    journalctl -b -q --no-pager -o short-monotonic > "$out/journal.txt" 2>&1 || true
    cp -r "$XSIM_LOGDIR" "$out/xsim-logs" 2>/dev/null || true
}
systemctl log-level debug

xsim_start
xsim_on_exit dump_journal
disk=$(make_disk disk.img 64)
be=$(be_dir vbd3 5 51712)
# A device that exists before the daemon starts (kind vbd3: the unit's
# default --kinds), its hotplug script done.
xsim_add_disk vbd3 5 xvda "aio:$disk"
xsim_hotplug_connected vbd3 5 xvda

# The simulated host for the unit: libraries and paths through a drop-in,
# the unit itself as installed.  No /proc/xen here: reset the condition.
# A 3 s watchdog so that a wedged loop is caught quickly.  LeakSanitizer
# (sanitizer builds) needs ptrace, which the unit's system call filter
# forbids: leaks are checked by the other tests.
# The configuration file in the container's own /etc (the build's
# default, under the read-only /usr, cannot be written here): ExecStart=
# names it, ExecReload= stays the unit's.
conf=/etc/xenblkd.conf
echo "# valid, empty: the defaults" > "$conf"
mkdir -p /etc/systemd/system/$unit.d
cat > /etc/systemd/system/$unit.d/simulated-host.conf <<EOF
[Unit]
ConditionPathExists=
[Service]
ExecStart=
ExecStart=$top_builddir/src/xenblkd --config $conf
Environment=LD_LIBRARY_PATH=$XSIM_SIM_LIB XENSIM_DIR=$XENSIM_DIR XENSTORED_PATH=$XENSTORED_PATH
Environment=ASAN_OPTIONS=detect_leaks=0
WatchdogSec=3s
# How each main process ended, as systemd saw it.
ExecStopPost=/bin/sh -c 'echo "\$SERVICE_RESULT \$EXIT_CODE \$EXIT_STATUS" >> $out/exits'
EOF
systemctl daemon-reload

# --- start: returns once READY=1 arrived, i.e. with the device in InitWait.
if systemctl start "$unit"; then fact start_rc 0; else fact start_rc $?; fi
fact state_after_start "$(xenstore-read "$be/state" 2>/dev/null || echo absent)"
fact active_after_start "$(show ActiveState)"
pid=$(show MainPID)
journalctl --sync
fact ready_notified "$(pid1_log | grep -c "Got notification message from PID $pid (READY=1" || true)"
fact fd_limit_logged "$(daemon_log | grep -c 'file descriptor limit' || true)"

# --- STATUS= in systemctl status, following a connection.
guest_start 5
fe_write_rings 5 51712
fe_state 5 51712 3
xsim_wait_key "$be/state" 4 20 || true
fe_state 5 51712 4
wait_prop StatusText "1 device (1 connected), 1 ring" 10 || true
fact status_line "$(systemctl status --no-pager "$unit" 2>&1 | sed -n 's/^ *Status: "\(.*\)"$/\1/p')"

# --- reload: grow the disk, systemctl reload, the guest is told the size.
truncate -s 96M "$disk"
if systemctl reload "$unit"; then fact reload_rc 0; else fact reload_rc $?; fi
xsim_wait_key "$be/sectors" $((96 * 2048)) 20 || true
fact sectors_after_reload "$(xenstore-read "$be/sectors")"
wait_prop ActiveState active 10 || true
fact active_after_reload "$(show ActiveState)"
journalctl --sync
fact reloading_notified "$(pid1_log | grep -c "Got notification message from PID $pid (RELOADING=1, MONOTONIC_USEC=" || true)"
fact reload_logged "$(daemon_log | grep -c 'reload requested on the control socket' || true)"

# --- reload with an invalid file: systemctl reload fails and says where;
# the daemon keeps running with its configuration.
printf '[disks]\nmax-queues = 2\nno-such-setting = 1\n' > "$conf"
if systemctl reload "$unit" 2> "$out/bad-reload.err"; then fact bad_reload_rc 0; else fact bad_reload_rc $?; fi
fact active_after_bad_reload "$(show ActiveState)"
fact pid_after_bad_reload "$([ "$(show MainPID)" = "$pid" ] && echo same || echo changed)"
journalctl --sync
# xenblkctl's message (ExecReload's stderr, in the unit's journal).
fact bad_reload_named "$(journalctl -b -q --no-pager -o cat -t xenblkctl | grep -c "$conf:3: unknown key 'no-such-setting'" || true)"
echo "# valid, empty: the defaults" > "$conf"
if systemctl reload "$unit"; then fact reload_again_rc 0; else fact reload_again_rc $?; fi

# --- watchdog: a loop stopped from outside misses its keep-alives; systemd
# kills it and Restart=on-failure starts a successor, which resumes the
# rings: a verified workload of another guest runs through the whole
# episode and never sees a disconnect.
disk6=$(make_disk disk6.img 64)
be6=$(be_dir vbd3 6 51712)
xsim_add_disk vbd3 6 xvda "aio:$disk6"
xsim_hotplug_connected vbd3 6 xvda
restarts=$(show NRestarts)
fact restarts_before_stop "$restarts"
xsim_bg fe "$top_builddir/tests/frontend/xsim-blkfront" --domid 6 --vdev 51712 \
    --workload verify --qd 8 --count 20000 --timeout 60 --close --stats-json "$XSIM_TMP/fe.json"
xsim_wait_key "$be6/state" 4 20 || true
kill -STOP "$pid"
fact fe_running_at_stop "$(xsim_running fe && echo yes || echo no)"
end=$(xsim_deadline 60)
until [ "$(show NRestarts)" -gt "$restarts" ]; do
    xsim_past "$end" && break
    sleep 0.1
done
fact restarts_after_stop $(($(show NRestarts) - restarts))
wait_prop ActiveState active 30 || true
newpid=$(show MainPID)
fact new_pid_differs "$([ "$newpid" != "$pid" ] && [ "$newpid" != 0 ] && echo yes || echo no)"
fact old_pid_gone "$(xsim_alive "$pid" && echo no || echo yes)"
journalctl --sync
fact watchdog_logged "$(pid1_log | grep -c 'xenblkd.service: Watchdog timeout' || true)"
st=$(xsim_wait_exit fe 90) || st=timeout
fact workload_status "$st"
fact workload_connects "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["disks"][0]["connects"])' "$XSIM_TMP/fe.json" 2>/dev/null || echo none)"
# Guest 5 (still connected) was taken over; guest 6 closed at its end.
wait_prop StatusText "2 devices (1 connected), 1 ring" 20 || true
fact status_after_restart "$(show StatusText)"

# --- stop: STOPPING=1, exit 0, Result=success.
if systemctl stop "$unit"; then fact stop_rc 0; else fact stop_rc $?; fi
# `systemctl show` may already see a fresh, garbage-collected unit here:
# how the main process ended comes from ExecStopPost (file "exits").
journalctl --sync
fact stopping_notified "$(pid1_log | grep -c "Got notification message from PID $newpid (STOPPING=1" || true)"
fact done yes
