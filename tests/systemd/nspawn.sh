#!/bin/bash
# xenblkd.service under a real systemd as PID 1: a throw-away container
# (systemd-nspawn --boot) built from this host's /usr, in which a oneshot
# unit runs tests/systemd/nspawn-driver.sh against the unit as installed
# (ExecStart= pointing at this build) on a simulated Xen host started
# inside the same container.  The driver records facts; this script
# asserts them:
#   systemctl start returns after READY=1 (device already in InitWait),
#   systemctl status shows the STATUS= line, systemctl reload goes through
#   RELOADING=1 and back to active (and resizes a connected disk), fails on
#   an invalid file naming FILE:LINE with the daemon still running, a loop
#   wedged with SIGSTOP is killed by the watchdog and restarted by
#   Restart=on-failure while a guest's verified workload carries on,
#   systemctl stop ends with Result=success and exit status 0.
# Needs root and systemd-nspawn (Debian package systemd-container).
set -euo pipefail
: "${top_srcdir:?}" "${top_builddir:?}"
: "${XENSTORED:=/usr/lib/xen-4.17/bin/xenstored}"
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; failed=1; }
[ "$(id -u)" = 0 ] || skip "needs root to boot a container"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn missing (Debian package systemd-container, tests/deps/systemd.txt)"
[ -x /usr/lib/systemd/systemd ] || skip "no /usr/lib/systemd/systemd to boot"
[ -x "$XENSTORED" ] || skip "no xenstored at $XENSTORED (tests/install-deps.sh)"
# The container sees the build through bind mounts at the same paths.
src=$(cd "$top_srcdir" && pwd -P)
build=$(cd "$top_builddir" && pwd -P)
[ -x "$build/src/xenblkd" ] || { echo "FAIL: $build/src/xenblkd not built"; exit 1; }
[ -x "$build/tests/frontend/xsim-blkfront" ] || { echo "FAIL: check programs not built"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/xbd-nspawn.XXXXXXXX")
root=$tmp/root
outd=$tmp/out
nspawn_pid=
cleanup() {
    local i
    # Interrupted: timeout(1) passes SIGTERM on to systemd-nspawn, which
    # halts the container; a second one terminates it at once.
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        kill -TERM "$nspawn_pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
        kill -TERM "$nspawn_pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$nspawn_pid" 2>/dev/null || true
        wait "$nspawn_pid" 2>/dev/null || true
    fi
    # The bind mounts lived in the container's mount namespace only; never
    # delete through one that is somehow still there.
    if [ -n "${XBD_KEEP_NSPAWN:-}" ]; then
        echo "kept: $tmp"
    elif ! grep -q " $root[/ ]" /proc/self/mounts; then
        rm -rf --one-file-system "$tmp"
    else
        echo "warning: $root still has mounts, left in place"
    fi
}
trap cleanup EXIT
mkdir -p "$root"/{etc,proc,sys,dev,run,tmp,var,root,usr} "$outd"
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$root/$l"; done
cp /etc/os-release /etc/passwd /etc/group "$root/etc/"
: > "$root/etc/machine-id"
sysd=$root/etc/systemd/system
mkdir -p "$sysd/multi-user.target.wants"
# D-Bus cannot set up its inotify watches here and never becomes ready
# (and logind waits for it): neither is needed to run units.
for u in dbus.service dbus.socket systemd-logind.service; do ln -s /dev/null "$sysd/$u"; done
# The unit as make install installs it, ExecStart= on this build.
sed -e "s|@sbindir@|$build/src|g" "$src/systemd/xenblkd.service.in" > "$sysd/xenblkd.service"
cat > "$sysd/xbd-test.service" <<EOF
[Unit]
Description=xenblkd real-systemd test driver
[Service]
Type=oneshot
Environment=top_srcdir=$src top_builddir=$build XENSTORED=$XENSTORED TMPDIR=/tmp
ExecStart=/bin/bash $src/tests/systemd/nspawn-driver.sh /out
StandardOutput=append:/out/driver.log
StandardError=append:/out/driver.log
TimeoutStartSec=300
# Whatever happened: record how the driver ended, then power off.
ExecStopPost=/bin/sh -c 'echo "\$EXIT_STATUS" > /out/status; systemctl poweroff --no-block'
EOF
ln -s ../xbd-test.service "$sysd/multi-user.target.wants/xbd-test.service"

binds=(--bind-ro=/usr --bind="$outd:/out" --bind-ro="$src")
[ "$build" = "$src" ] || binds+=(--bind-ro="$build")
# Bounded: the driver's own deadlines add up to well under 5 minutes.
# A machine name of our own: nspawn keys its /run/systemd/nspawn state on
# it, and concurrent runs (distcheck next to check) must not collide.
timeout -k 10 420 systemd-nspawn -q -D "$root" --machine="${tmp##*/}" "${binds[@]}" \
    --register=no --keep-unit \
    --boot --console=pipe > "$outd/console.log" 2>&1 &
nspawn_pid=$!
rc=0
wait "$nspawn_pid" || rc=$?
nspawn_pid=
failed=0
[ "$rc" = 0 ] || fail "systemd-nspawn exited with status $rc (124: timed out)"
st=$(cat "$outd/status" 2>/dev/null || echo none)
[ "$st" = 0 ] || fail "the driver ended with status '$st'"

declare -A f=()
while IFS='=' read -r k v; do [ -n "$k" ] && f[$k]=$v; done < <(cat "$outd/facts" 2>/dev/null)
want() {  # want KEY VALUE DESCRIPTION
    if [ "${f[$1]-<none>}" = "$2" ]; then echo "ok: $3 ($1=$2)"; else fail "$3: $1='${f[$1]-<none>}', want '$2'"; fi
}
atleast() {  # atleast KEY N DESCRIPTION
    if [[ ${f[$1]-} =~ ^[0-9]+$ ]] && [ "${f[$1]}" -ge "$2" ]; then echo "ok: $3 ($1=${f[$1]})"
    else fail "$3: $1='${f[$1]-<none>}', want >= $2"; fi
}
want start_rc 0 "systemctl start succeeded"
want state_after_start 2 "the device was in InitWait when systemctl start returned"
want active_after_start active "active right after start"
atleast ready_notified 1 "systemd received READY=1 from the main process"
atleast fd_limit_logged 1 "the daemon logged its file descriptor limit"
want status_line "1 device (1 connected), 1 ring" "systemctl status shows the STATUS= line"
want reload_rc 0 "systemctl reload succeeded"
want sectors_after_reload $((96 * 2048)) "the reload resized the connected disk"
want active_after_reload active "active again after the reload"
atleast reloading_notified 1 "systemd received RELOADING=1 with MONOTONIC_USEC="
atleast reload_logged 1 "the reload came through the control socket (ExecReload=xenblkctl reload)"
if [ "${f[bad_reload_rc]-<none>}" != 0 ] && [ "${f[bad_reload_rc]-<none>}" != "<none>" ]; then
    echo "ok: systemctl reload failed on an invalid file (bad_reload_rc=${f[bad_reload_rc]})"
else
    fail "systemctl reload of an invalid file: bad_reload_rc='${f[bad_reload_rc]-<none>}', want a failure"
fi
want active_after_bad_reload active "still active after the refused reload"
want pid_after_bad_reload same "the same main process after the refused reload"
atleast bad_reload_named 1 "the unit's journal names the file, line and reason of the refusal"
want reload_again_rc 0 "a reload with the file mended succeeded"
want restarts_before_stop 0 "no restart while the loop was turning"
want fe_running_at_stop yes "the workload was running when the loop was stopped"
want restarts_after_stop 1 "the watchdog kill was followed by one restart"
atleast watchdog_logged 1 "systemd logged the watchdog timeout"
want new_pid_differs yes "a new main process"
want old_pid_gone yes "the wedged process is gone"
want workload_status 0 "the guest's verified workload completed across the restart"
want workload_connects 1 "the guest never reconnected"
want status_after_restart "2 devices (1 connected), 1 ring" "the successor took over the other guest's ring"
want stop_rc 0 "systemctl stop succeeded"
# "$SERVICE_RESULT $EXIT_CODE $EXIT_STATUS" of each main process, from
# an ExecStopPost= of the test's drop-in.
mapfile -t exits < "$outd/exits" 2>/dev/null || exits=()
if [ ${#exits[@]} = 2 ] && [[ ${exits[0]} =~ ^watchdog\ (killed|dumped)\ ABRT$ ]]; then
    echo "ok: the wedged instance ended by the watchdog (${exits[0]})"
else
    fail "first exit: '${exits[0]-}', want 'watchdog killed|dumped ABRT' (exits: ${exits[*]-})"
fi
if [ "${exits[1]-}" = "success exited 0" ]; then
    echo "ok: systemctl stop: Result=success, exit status 0"
else
    fail "exit after systemctl stop: '${exits[1]-}', want 'success exited 0'"
fi
atleast stopping_notified 1 "systemd received STOPPING=1"
want done yes "the driver ran to its end"
if [ "$failed" != 0 ]; then
    for f in driver.log facts exits console.log; do
        echo "===== $f"; tail -n 60 "$outd/$f" 2>/dev/null || true
    done
    echo "===== journal (xenblkd and PID 1 about it)"
    grep -E 'xenblkd|xbd-test' "$outd/journal.txt" 2>/dev/null | grep -v 'WATCHDOG=1)' | tail -n 120 || true
    exit 1
fi
exit 0
