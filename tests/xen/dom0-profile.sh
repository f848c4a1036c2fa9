# dom0 side of the profile mode of tests/xen/backends.sh (XENBLKD_XEN_PROFILE=1,
# tests/xen/README.md "Profile mode").  Sourced by backends.dom0 only when
# the host put this file into the share; the default boot never sees it.
#
#   prof_start        perf record -a -g on the software clock (cpu-clock: a
#                     PV dom0 under TCG has no PMU), timestamps in
#                     CLOCK_REALTIME so that the host can cut the recording
#                     into the windows backends.sh's samples find (the
#                     sampler's w= is dom0's EPOCHREALTIME)
#   prof_watch G      follows the guest's console: at every run boundary of
#                     repetition PROF_SNAP_REP a snapshot of the counters
#                     perf does not give (context switches, interrupts per
#                     event channel, xenblkd's threads) and, during
#                     xenblkd's runs, its system calls counted by perf stat
#                     on the syscall tracepoints; during each of
#                     xenblkd's runs of repetition PROF_STRACE_REP
#                     `strace -c -f -p xenblkd` (the host leaves that
#                     repetition out of the perf windows: strace slows it)
#   prof_stop         ends both (at XBD-HOLD: the bench is over)
#   prof_save         once the guest is gone, saves what the host needs to
#                     read the recording without dom0: perf.data, perf's
#                     build-id cache (the DSOs and kallsyms the samples hit),
#                     kallsyms and the module list, and a first summary
# Everything lands in results/profile/.
P=$R/profile
PROF_DIR=/var/tmp/xbd-prof              # dom0's disk, not the 9p share
PROF_FREQ=${PROF_FREQ:-250}
PROF_SNAP_REP=2
PROF_STRACE_REP=${XBD_BENCH_REPS:-3}
PROF_PID=
PROF_WATCH=

prof_start() {
    mkdir -p "$P" "$PROF_DIR"
    # Kernel addresses for root, and system-wide sampling.
    echo 0 >/proc/sys/kernel/kptr_restrict
    echo -1 >/proc/sys/kernel/perf_event_paranoid
    # The system-call tracepoints (prof_pstat_start) are found in tracefs.
    mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
    perf --version >"$P/perf-version.txt" 2>&1
    uname -a >"$P/uname.txt"
    perf record -a -g -e cpu-clock -F "$PROF_FREQ" -k CLOCK_REALTIME \
        -o "$PROF_DIR/perf.data" >"$P/perf-record.log" 2>&1 &
    PROF_PID=$!
    # perf record fails at once when an option is refused: wait for it to
    # have opened its output (or died), not for a fixed time.
    local n=0
    while [ ! -s "$PROF_DIR/perf.data" ] && kill -0 "$PROF_PID" 2>/dev/null && [ $n -lt 300 ]; do
        read -r -t 0.1 -u "$hold_fd"
        n=$((n + 1))
    done
    if ! kill -0 "$PROF_PID" 2>/dev/null; then
        wait "$PROF_PID"
        note "profile: perf record failed (status $?): $(tail -3 "$P/perf-record.log" | tr '\n' ' ')"
        PROF_PID=
        return 1
    fi
    note "profile: perf record pid $PROF_PID, cpu-clock at $PROF_FREQ Hz, CLOCK_REALTIME"
}

# prof_snap LABEL: one snapshot of the counters, appended to counters.txt:
# one grep (a fork costs dom0 ~0.3 s under TCG, and the snapshot falls
# at the start of the next run), each line prefixed with its file.
prof_snap() {
    local p c files
    if [ -z "${PROF_BB:-}" ]; then
        # blkback's ring threads (DOMID.DEV-RING), looked for once
        for p in /proc/[0-9]*; do
            read -r c 2>/dev/null <"$p/comm" || continue
            case "$c" in [0-9]*.xvd[a-z]-[0-9]*) PROF_BB="$PROF_BB $p/status" ;; esac
        done
    fi
    files="/proc/stat /proc/interrupts /proc/$XENBLKD_PID/io"
    for p in /proc/"$XENBLKD_PID"/task/*; do files="$files $p/status"; done
    echo "SNAP $1 w=$EPOCHREALTIME" >>"$P/counters.txt"
    grep -H -E '^ctxt |^ *[0-9]+:|^Name:|^(voluntary|nonvoluntary)_ctxt_switches|^sysc[rw]:' \
        $files $PROF_BB >>"$P/counters.txt" 2>/dev/null
}

# prof_pstat_start JOB / prof_pstat_stop: xenblkd's system calls counted
# in the kernel (tracepoints, perf stat -p: no stop per call, unlike strace)
# during its run of repetition PROF_SNAP_REP.
PROF_SYSCALLS="clock_gettime epoll_wait read write ioctl io_submit io_getevents futex preadv pwritev pread64 pwrite64"
prof_pstat_start() {
    local e="raw_syscalls:sys_enter" n
    for n in $PROF_SYSCALLS; do e="$e,syscalls:sys_enter_$n"; done
    perf stat -e "$e" -p "$XENBLKD_PID" -o "$P/pstat-$1.txt" 2>>"$P/pstat.log" &
    PROF_PSTAT=$!
}
prof_pstat_stop() {
    [ -n "${PROF_PSTAT:-}" ] || return 0
    kill -INT "$PROF_PSTAT"
    wait "$PROF_PSTAT"
    PROF_PSTAT=
}

# prof_watch GUEST: in the background until XBD-HOLD (see the top).
prof_watch() {
    local con
    con=$(console_log "$1")
    (
        set +x
        local line disk job rep sp= tfd tpid
        # tail -F: inotify where the file system has it, else a 0.2 s poll.
        exec {tfd}< <(exec tail -n +1 -s 0.2 -F "$con" 2>/dev/null)
        tpid=$!
        while read -r -u "$tfd" line; do
            line=${line%$'\r'}
            case "$line" in
            XBD-HOLD*) break ;;
            "XBD-PERF "*) ;;
            *) continue ;;
            esac
            disk=${line#*disk=}; disk=${disk%% *}
            job=${line#*job=}; job=${job%% *}
            rep=${line#* rep=}; rep=${rep%% *}
            if [ "$rep" = "$PROF_SNAP_REP" ]; then
                [ "$disk" = xvdc ] && prof_pstat_stop
                prof_snap "after disk=$disk job=$job rep=$rep"
                [ "$disk" = xvdb ] && prof_pstat_start "$job"
            fi
            # The run of the disk before xenblkd's just ended: xenblkd's starts.
            if [ "$rep" = "$PROF_STRACE_REP" ] && [ "$disk" = xvdb ]; then
                strace -c -f -qq -p "$XENBLKD_PID" -o "$P/strace-$job.txt" 2>>"$P/strace.log" &
                sp=$!
                echo "strace $job start w=$EPOCHREALTIME" >>"$P/strace.log"
            fi
            if [ "$disk" = xvdc ] && [ -n "$sp" ]; then
                kill -INT "$sp"
                wait "$sp"
                echo "strace $job stop rc=$? w=$EPOCHREALTIME" >>"$P/strace.log"
                sp=
            fi
        done
        [ -n "$sp" ] && { kill -INT "$sp"; wait "$sp"; }
        kill "$tpid" 2>/dev/null
        exit 0
    ) &
    PROF_WATCH=$!
}

prof_stop() {
    local n=0
    # The watcher ends by itself at XBD-HOLD, which the caller waited for.
    while [ -n "$PROF_WATCH" ] && kill -0 "$PROF_WATCH" 2>/dev/null && [ $n -lt 100 ]; do
        read -r -t 0.1 -u "$hold_fd"
        n=$((n + 1))
    done
    [ -n "$PROF_WATCH" ] && kill -0 "$PROF_WATCH" 2>/dev/null && note "profile: console watcher still running: stopped"
    [ -n "$PROF_WATCH" ] && { kill "$PROF_WATCH" 2>/dev/null; wait "$PROF_WATCH" 2>/dev/null; }
    [ -n "$PROF_PID" ] || return 0
    kill -INT "$PROF_PID"
    wait "$PROF_PID"
    note "profile: perf record ended (status $?)"
    PROF_PID=
    PROF_DONE=1
}

# prof_save: after the guest is gone (perf's own work then disturbs nothing).
prof_save() {
    local t0
    [ -n "${PROF_DONE:-}" ] || return 0
    t0=$(now)
    cat /proc/kallsyms >"$P/kallsyms"
    cat /proc/modules >"$P/modules.txt"
    # A first look made in dom0 (the host's tables do not depend on it).
    timeout 600 perf report -i "$PROF_DIR/perf.data" --stdio --no-children -g none \
        --sort comm,dso --percent-limit 0.5 >"$P/dom0-report-comm-dso.txt" 2>"$P/dom0-report.err"
    note "profile: dom0 report in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }') s"
    cp "$PROF_DIR/perf.data" "$P/perf.data"
    tar -C /root -czf "$P/buildid-cache.tgz" .debug 2>>"$P/dom0-report.err"
    ls -la "$P" >"$P/ls.txt"
    note "profile: saved ($(du -sh "$P" | cut -f1))"
}
