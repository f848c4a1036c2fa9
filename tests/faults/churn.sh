#!/bin/bash
# Churn: 64 disks of 4 queues each (16 guests x 4 disks) attached, used
# (a verified workload on every disk) and detached again and again; the
# daemon's open fds and its mappings of guest memory (the simulated
# gntdev's share of /proc/PID/maps) come back to their baseline exactly;
# its RSS and VMA count are reported and only checked for gross growth
# (see the end).
#
# The daemon offers at most one queue per online CPU (max-queues' cap, as
# Linux blkback's default).  On a host with fewer than 4 CPUs the daemon
# runs in a private mount namespace whose /sys/devices/system/cpu/online
# says 4 CPUs (a simulated 4-CPU dom0; needs root and unshare), with
# max-queues = 4 as an administrator would set it; the test checks every
# disk really connected 4 queues.  Without root there it runs with what
# the host gives and says so.
#
#   CHURN_ROUNDS   times the toolstack adds the 64 disks and removes them
#                  (default 2)
#   CHURN_CYCLES   connections of each disk per round: the frontends
#                  connect, run the workload, close, CYCLES times
#                  (default 3)
# Each disk is attached and detached ROUNDS x CYCLES times (make check:
# 6; the issue's 1000 is e.g. CHURN_ROUNDS=10 CHURN_CYCLES=100).  Every
# guest's frontend checks at each close that the backend released all its
# grants.  The figures are printed at the end ("churn:" lines), with where
# each round's time went.
#
# Why 16 guests of 4 disks: a frontend connects and closes its disks one
# after the other, waiting for the backend each time, so 4 guests of 16
# disks kept only 4 devices busy in the daemon at once and a cycle took
# about 0.9 s of mostly waiting; the daemon's evaluation rate limit
# (10/s per device) is never reached (its "delayed" counter stays 0).
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
: "${CHURN_ROUNDS:=2}" "${CHURN_CYCLES:=3}"
QUEUES=4
XSIM_XENSTORED_TRACE=0 xsim_start
if [ "$(getconf _NPROCESSORS_ONLN)" -lt "$QUEUES" ]; then
    if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null &&
        unshare -m --propagation private true 2>/dev/null; then
        echo "0-$((QUEUES - 1))" >"$XSIM_TMP/cpus-online"
        # exec all the way: the daemon keeps the wrapper's pid.
        cat >"$XSIM_TMP/four-cpus" <<'WRAP'
#!/bin/sh
exec unshare -m --propagation private sh -c \
    'mount --bind "$0" /sys/devices/system/cpu/online && exec "$@"' "$XSIM_CPUS_FILE" "$@"
WRAP
        chmod +x "$XSIM_TMP/four-cpus"
        export XSIM_CPUS_FILE=$XSIM_TMP/cpus-online
        export XSIM_DAEMON_WRAPPER=$XSIM_TMP/four-cpus
        xsim_log "churn: $(getconf _NPROCESSORS_ONLN) CPUs here: the daemon sees $QUEUES (private mount namespace)"
    else
        QUEUES=$(getconf _NPROCESSORS_ONLN)
        xsim_log "churn: only $QUEUES CPU(s) and no mount namespace (not root): $QUEUES queues per disk"
    fi
fi
xsim_daemon --kinds qdisk --max-queues "$QUEUES" --log-level info
pid=$(xsim_pid xenblkd)
guests=()
for ((d = 11; d < 27; d++)); do guests+=("$d"); done
devids=(51712 51728 51744 51760)
for d in "${guests[@]}"; do
    for v in "${devids[@]}"; do make_disk "c$d-$v.img" 4 >/dev/null; done
done

fds() { find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l; }
guest_maps() { grep -cE '/dom[0-9]+(/|\.dead-)' "/proc/$pid/maps" || true; }
vmas() { wc -l <"/proc/$pid/maps"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
figures() { echo "fds=$(fds) vmas=$(vmas) guest-mappings=$(guest_maps) rss=$(rss_kb) kB"; }
# fd_kinds: the daemon's fds by kind, one line ("3 pipe 2 socket ...").
fd_kinds() {
    local f
    for f in /proc/"$pid"/fd/*; do readlink "$f"; done 2>/dev/null |
        sed -e 's/:\[[0-9]*\]$//' -e 's/[0-9][0-9]*/N/g' | sort | uniq -c | tr -s ' \n' ' '
}

# devices_served: how many devices the daemon has (control socket).
devices_served() {
    python3 "$top_srcdir/tests/daemon/ctl.py" "$XSIM_TMP/control.sock" '{"version":1,"command":"list"}' |
        python3 -c 'import json, sys; print(len(json.loads(sys.stdin.readline())["devices"]))'
}

# phase NAME START: append "NAME=SECONDS" since START ($EPOCHREALTIME) to
# phases, and restart the clock: where a round's time goes.
phases=()
phase() {
    local now=$EPOCHREALTIME
    phases+=("$1=$(awk -v a="$2" -v b="$now" 'BEGIN { printf "%.1f", b - a }')")
    t=$now
}

# daemon_figures: the daemon's CPU seconds so far and its evaluation
# counters (done, deferred by the per-turn budget, delayed by the
# per-device rate limit), to tell the daemon's cost from the test's.
daemon_figures() {
    local cpu
    cpu=$(awk '{ split($0, a, ") "); split(a[2], f, " "); printf "%.1f", (f[12] + f[13]) / 100 }' "/proc/$pid/stat")
    python3 "$top_srcdir/tests/daemon/ctl.py" "$XSIM_TMP/control.sock" '{"version":1,"command":"stats"}' |
        python3 -c 'import json, sys; e = json.loads(sys.stdin.readline())["daemon"]["evaluations"]
print("cpu='"$cpu"' s evaluations", " ".join("%s=%s" % kv for kv in sorted(e.items())))'
}

# One round: the toolstack adds every disk, each guest connects its 16
# disks CYCLES times with a verified workload, the toolstack removes them.
round() {
    local r=$1 d v end t=$EPOCHREALTIME
    phases=()
    for d in "${guests[@]}"; do
        for v in "${devids[@]}"; do xsim_add_disk qdisk "$d" "$v" "aio:$XSIM_TMP/c$d-$v.img"; done
    done
    for d in "${guests[@]}"; do
        for v in "${devids[@]}"; do
            xsim_wait_key "$(be_dir qdisk "$d" "$v")/state" 2 30
            [ "$(xsim_read "$(be_dir qdisk "$d" "$v")/multi-queue-max-queues")" = "$QUEUES" ] ||
                xsim_fail "disk $d/$v: the daemon offers $(xsim_read "$(be_dir qdisk "$d" "$v")/multi-queue-max-queues") queues, not $QUEUES"
        done
    done
    phase add "$t"
    # Round 1 ends with all 64 disks connected at once, until every guest
    # holds them: the daemon's peak, after which glibc keeps the freed
    # memory for reuse (so the RSS after a burst says where the peak was).
    # Later rounds cannot go past that peak unless something grows.
    local -a hold=()
    [ "$r" = 1 ] && hold=(--hold 600 --hold-until "$XSIM_TMP/peak.release")
    for d in "${guests[@]}"; do
        local -a vd=()
        for v in "${devids[@]}"; do vd+=(--vdev "$v"); done
        xsim_bg "r$r-g$d" "$XBD_FE" --domid "$d" "${vd[@]}" --queues "$QUEUES" --workload verify \
            --count 4 --qd 4 --bs 8k --span 1M --seed "$r" --reconnect $((CHURN_CYCLES - 1)) \
            "${hold[@]}" --close --timeout 60
    done
    if [ "$r" = 1 ]; then
        for d in "${guests[@]}"; do fe_wait_holding "r$r-g$d" 600; done
        for d in "${guests[@]}"; do
            for v in "${devids[@]}"; do
                [ "$(xsim_read "/local/domain/$d/device/vbd/$v/multi-queue-num-queues")" = "$QUEUES" ] ||
                    xsim_fail "disk $d/$v did not connect $QUEUES queues"
            done
        done
        xsim_log "churn: all 64 disks connected with $QUEUES queues each"
        peak_rss=$(rss_kb)
        touch "$XSIM_TMP/peak.release"
    fi
    for d in "${guests[@]}"; do
        st=$(xsim_wait_exit "r$r-g$d" 3600) || xsim_fail "guest $d (round $r) still running"
        [ "$st" = 0 ] || { tail -n 20 "$XSIM_LOGDIR/r$r-g$d.log" >&2; xsim_fail "guest $d (round $r) exited $st"; }
    done
    phase use "$t"
    # The toolstack removes the guests' disks side by side (one remover
    # per guest, each waiting for Closed like libxl).
    local -a rm_pids=()
    for d in "${guests[@]}"; do
        (for v in "${devids[@]}"; do
            xsim_remove_disk qdisk "$d" "$v" 30 || xsim_fail "disk $d/$v did not close"
        done) &
        rm_pids+=($!)
    done
    for d in "${rm_pids[@]}"; do wait "$d" || xsim_fail "a disk did not close (round $r)"; done
    end=$(xsim_deadline 30)
    until [ "$(devices_served)" = 0 ]; do
        xsim_past "$end" && xsim_fail "the daemon still has $(devices_served) device(s) after round $r"
        sleep 0.1
    done
    phase remove "$t"
    xsim_log "churn: round $r took (s) ${phases[*]}; daemon: $(daemon_figures)"
}

start=$(figures)
xsim_log "churn: fds at start: $(fd_kinds)"
t0=$(date +%s)
round 1
base_fds=$(fds) base_vmas=$(vmas) base_maps=$(guest_maps) base_rss=$(rss_kb)
xsim_log "churn: fds at the baseline: $(fd_kinds)"
xsim_log "churn: at start $start; all 64 disks connected: rss=$peak_rss kB; after round 1 (baseline) fds=$base_fds vmas=$base_vmas guest-mappings=$base_maps rss=$base_rss kB"
for ((r = 2; r <= CHURN_ROUNDS; r++)); do
    round "$r"
    xsim_log "churn: after round $r $(figures)"
done
t1=$(date +%s)
n=$((CHURN_ROUNDS * CHURN_CYCLES))
xsim_log "churn: 64 disks x $QUEUES queues, each attached and detached $n times, in $((t1 - t0)) s"
xsim_log "churn: baseline fds=$base_fds vmas=$base_vmas guest-mappings=$base_maps rss=$base_rss kB; end $(figures)"
check "no mapping of guest memory left" [ "$(guest_maps)" = 0 ]
xsim_log "churn: fds at the end: $(fd_kinds)"
check "the daemon's fds back to the baseline ($base_fds)" [ "$(fds)" = "$base_fds" ]
if grep -q libasan "/proc/$pid/maps"; then
    xsim_log "RSS not checked: ASan keeps freed memory in quarantine"
else
    # The RSS is not live memory: glibc keeps what was freed for reuse,
    # and the high-water mark moves with how many connections and queued
    # xenstore watch events overlapped, i.e. with the machine's load (seen
    # here: 10 to 50 MiB after a few rounds, then flat: 45692 -> 45716 kB
    # over 200 cycles).  So only gross growth fails here; leaks are
    # valgrind.sh's job, and the figures are in the log.
    check "RSS within 64 MiB of the baseline ($base_rss -> $(rss_kb) kB)" \
        [ $(( $(rss_kb) - base_rss )) -lt 65536 ]
fi
check "daemon still running" xsim_running xenblkd
exit 0
