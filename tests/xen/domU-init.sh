#!/bin/busybox sh
# /init of the PV test guest (busybox-static + xen-blkfront.ko + fio).
#
# The kernel command line (xl "extra=") says what to do:
#   xbd.job=verify|together|bench|loop|idle|churn|agg   the workload (see below), or a
#                                    comma separated list run in order
#   xbd.role=a|b  xbd.ctl=xvdd       agg only: which of the two guests, its control disk
#   xbd.disks=xvda,xvdb              the disks to expect at start
#   xbd.blkfront=k=v,k=v             xen-blkfront module parameters (busybox
#                                    insmod ignores them on the command line)
#   xbd.size=MiB  xbd.secs=N  xbd.reps=N   workload sizes
# Everything the guest reports goes to its console (hvc0, logged by
# xenconsoled in dom0) as blocks that dom0 cuts into result files:
#   XBD-BEGIN <file> ... XBD-END <file>
# and single lines "XBD-<WORD> ..." that dom0 waits for.
# Signals from dom0: `xl shutdown` makes the kernel run /sbin/poweroff, which
# is busybox sending SIGUSR2 to init: stop.  The kernel honours only the first
# shutdown request of a domain's life, so "go on" is `xl sysrq <dom> h`: the
# help text it adds to dmesg is counted (used by the idle job).
# Applets go to their usual places: the kernel runs /sbin/poweroff and
# /sbin/reboot for xl shutdown / xl reboot.
# PID 1 only supervises: the job runs in a child shell, so that a crash of
# the shell (busybox's ash was seen to segfault in malloc under TCG) is
# reported as XBD-DONE crashed instead of a kernel panic, and xl shutdown's
# SIGUSR2 reaches the job.
if [ "$$" = 1 ] && [ "$1" != job ]; then
    # A background job's stdin is /dev/null: /dev must be there first.
    /bin/busybox mount -t devtmpfs dev /dev
    /bin/busybox sh /init job </dev/console >/dev/console 2>&1 &
    child=$!
    trap '/bin/busybox kill -USR2 $child' USR2
    while :; do
        wait $child
        rc=$?
        /bin/busybox kill -0 $child 2>/dev/null || break   # wait ended by a trap
    done
    [ $rc -eq 0 ] || echo "XBD-DONE crashed rc=$rc" >/dev/console
    /bin/busybox sync
    /bin/busybox poweroff -f
fi
# --install finds busybox through /proc/self/exe: mount /proc first.
/bin/busybox mount -t proc proc /proc
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t sysfs sys /sys
[ -e /dev/null ] || mount -t devtmpfs dev /dev
mkdir -p /tmp && mount -t tmpfs tmp /tmp

stop=0
trap 'stop=1' USR2

arg() {  # arg NAME DEFAULT: value of xbd.NAME= on the kernel command line
    v=$(tr ' ' '\n' </proc/cmdline | sed -n "s/^xbd\.$1=//p" | tail -1)
    echo "${v:-$2}"
}
JOB=$(arg job verify)
DISKS=$(arg disks xvda | tr , ' ')
SIZE=$(arg size 32)
SECS=$(arg secs 5)
REPS=$(arg reps 2)
PARAMS=$(arg blkfront "" | tr , ' ')
# The deadline of one verify (or churn) round: it only abandons a disk
# whose backend hangs.  On an idle machine a round takes 30-50 s (restart's
# 64 MiB churn rounds up to 43 s); with the host's CPUs busy t2's first
# round of tap.sh took 237 s as dom0 saw it.  dom0 destroys a guest
# silent for longer (GUEST_STALL, dom0-lib.sh) and waits longer for
# rounds, so that the guest reports an abandoned disk before dom0 gives up
# on it.
VERIFY_SECS=600

say() { echo "$*" >/dev/console; }
block() {  # block NAME CMD...: run CMD, framing its output as result file NAME
    local brc
    say "XBD-BEGIN $1"
    shift
    "$@" >/tmp/block.out 2>&1
    brc=$?
    sed 's/^/  /' /tmp/block.out >/dev/console
    say "XBD-END rc=$brc"
    return $brc
}
finish() {
    block dmesg.txt dmesg
    say "XBD-DONE $1"
    sync
    /bin/busybox poweroff -f
}

say "XBD-BOOTED job=$JOB disks=$DISKS blkfront=$PARAMS"
insmod /lib/modules/xen-blkfront.ko $PARAMS || { say "XBD-FAIL insmod"; finish 1; }

wait_disk() {  # wait_disk NAME SECONDS
    # local: the idle job counts its rounds in a global n
    local tenths=0
    while [ ! -b "/dev/$1" ]; do
        tenths=$((tenths + 1))
        [ "$tenths" -gt "$(($2 * 10))" ] && return 1
        sleep 0.1
    done
}

describe() {  # what blkfront negotiated for disk $1, as the guest sees it
    dmesg | grep -E 'blkfront|blkif|still in use'
    q=/sys/block/$1/queue
    echo "max_sectors_kb=$(cat $q/max_sectors_kb) max_segments=$(cat $q/max_segments)"
    echo "hw_queues=$(ls /sys/block/$1/mq 2>/dev/null | wc -l)"
    for p in /sys/module/xen_blkfront/parameters/*; do
        echo "param $(basename $p)=$(cat $p)"
    done
}

# Every fio run has a deadline of our own (see deadline below).
FIO="fio --direct=1 --ioengine=libaio --output-format=normal,terse"
verify_once() {  # sequential then random write+crc32c verify, 4 KiB..1 MiB
    $FIO --name=seq --filename=/dev/$1 --rw=write --bsrange=4k-1m \
        --size=${SIZE}m --iodepth=8 --verify=crc32c --verify_fatal=1 --verify_dump=0 || return
    $FIO --name=rand --filename=/dev/$1 --rw=randwrite --bsrange=4k-1m \
        --size=${SIZE}m --iodepth=8 --verify=crc32c --verify_fatal=1 --verify_dump=0 \
        --randrepeat=0
}

# churn_round N DISK: round N of tests/xen/restart.sh's workload: random
# writes of 4 KiB to 1 MiB at queue depth 16 over the first SIZE MiB, each
# block once, then every block read back and checked (crc32c).  A restart
# of the backend falls in either phase; both must come through.  Every
# completion is logged with its wall-clock time (ms) in /tmp/lat-N_lat.1.log
# for probe_stop.
churn_round() {
    $FIO --name=churn --filename=/dev/$2 --rw=randwrite \
        --bssplit=4k/40:64k/30:256k/20:1m/10 --size=${SIZE}m --iodepth=16 \
        --verify=crc32c --verify_fatal=1 --verify_dump=0 --randrepeat=0 \
        --write_lat_log=/tmp/lat-$1 --log_unix_epoch=1
}

# probe_start DISK: a loop of single 4 KiB O_DIRECT writes (busybox dd) to
# the block just past fio's region, each holding its sequence number, so
# that dom0 sees from the image file that the guest's I/O goes on; each
# completion stamped by ts (wall clock, us; Xen gives dom0 and the guests
# the same clock) into /tmp/probe-DISK.log.  It keeps the disk busy
# between fio rounds too, when fio logs nothing.
probe_start() {
    local d=$1
    rm -f /tmp/stop-probe
    ( n=0
      while [ ! -e /tmp/stop-probe ]; do
          if printf 'XBDPROBE %s %012d\n' $d $((n + 1)) |
             dd of=/dev/$d bs=4096 count=1 seek=$(((SIZE + 1) * 256)) \
                 oflag=direct conv=sync,notrunc 2>/tmp/probe.err; then
              n=$((n + 1))
              echo "ok $n"
          else
              echo "err $n $(tail -1 /tmp/probe.err)"
              sleep 1
          fi
      done ) | ts '%.s' >/tmp/probe-$d.log &
    probe_pid=$!
}

# probe_stop DISK: end the probe and report, from every completion of the
# probe and of fio (merged, wall clock), each pause of 0.25 s or more with
# no I/O completing at all (XBD-GAP), and the usual spacing.  A probe stuck
# on a dead disk is left behind.
probe_stop() {
    local d=$1 i
    touch /tmp/stop-probe
    for i in $(seq 20); do
        kill -0 $probe_pid 2>/dev/null || break
        sleep 1
    done
    grep ' err ' /tmp/probe-$d.log | sed "s/^/XBD-PROBE-ERR disk=$d /" >/dev/console
    # when each probe write completed (for the host's clock matching)
    block probe-$d.txt awk '$2 == "ok" { print $1, $3 }' /tmp/probe-$d.log
    { awk '$2 == "ok" { print $1 }' /tmp/probe-$d.log
      cat /tmp/lat-*_lat.1.log 2>/dev/null | awk -F, '{ printf "%.3f\n", $1 / 1000 }'
    } | sort -n >/tmp/completions
    awk -v d=$d 'NR > 1 { g = $1 - p; print g
                     if (g >= 0.25) printf "XBD-GAP disk=%s from=%.3f to=%.3f secs=%.3f\n", d, p, $1, g >"/dev/console" }
                 { p = $1 }' /tmp/completions | sort -n >/tmp/gaps
    awk -v d=$d -v w=$(grep -c ' ok ' /tmp/probe-$d.log) '{ g[NR] = $1 }
        END { if (NR) printf "XBD-PROBE-STATS disk=%s probe_writes=%d completions=%d median=%.3f p99=%.3f max=%.3f\n",
              d, w, NR + 1, g[int((NR + 1) / 2)], g[int(NR * 0.99) > 0 ? int(NR * 0.99) : 1], g[NR] }' \
        /tmp/gaps >/dev/console
}

# deadline SECS OUT CMD...: run CMD in the background with its output in
# OUT; its status, or 124 when it is still running after SECS seconds.  A
# disk whose backend died (Debian's QEMU qdisk was seen to die of heap
# corruption mid-run) leaves fio stuck for ever in the kernel, where no
# signal and no `timeout` can end it: the run is abandoned instead, so the
# guest goes on with its other disks and reports.
deadline() {
    local secs=$1 out=$2 pid n=0
    shift 2
    "$@" >$out 2>&1 &
    pid=$!
    while kill -0 $pid 2>/dev/null && [ $n -lt $secs ]; do
        sleep 1
        n=$((n + 1))
    done
    if kill -0 $pid 2>/dev/null; then
        kill -9 $pid 2>/dev/null
        echo "no completion after ${secs}s: abandoned" >>$out
        return 124
    fi
    wait $pid
}

# verify_disk DISK: the verify, once more when fio died of a signal.  Under
# TCG, processes in the PV domains now and then die in glibc (segfault,
# abort) for no reason of their own: such a death says nothing about the
# data and is retried once, and reported (XBD-CRASH) for the host to count.
# A verify failure (fio exit status 1) is never retried.
verify_disk() {
    local r try
    if [ -e /tmp/dead-$1 ]; then
        echo "/dev/$1 was declared dead earlier"
        return 125
    fi
    for try in 1 2; do
        deadline $VERIFY_SECS /tmp/verify-$1.out verify_once $1
        r=$?
        cat /tmp/verify-$1.out
        [ $r -eq 124 ] && touch /tmp/dead-$1
        [ $r -gt 128 ] || return $r
        say "XBD-CRASH disk=$1 what=verify rc=$r try=$try"
    done
    return $r
}

# disk_stat DISK: what the guest's block layer counted for DISK, for the
# comparison with xentop (tests/xen/tap.sh): requests and 512-byte sectors
# completed, read and write (fields 1, 3, 5, 7 of /sys/block/DISK/stat).
disk_stat() {
    set -- $1 $(cat /sys/block/$1/stat)
    say "XBD-STAT disk=$1 rd=$2 rsect=$4 wr=$6 wsect=$8"
}

bench_one() {  # bench_one DISK LABEL RW BS DEPTH: one timed run, one XBD-PERF line
    local out=/tmp/bench-$1.out rc try
    # A disk declared dead (see deadline) is skipped.
    if [ -e /tmp/dead-$1 ]; then
        echo "XBD-PERF disk=$1 job=$2 rc=125 iops=0 kib_s=0"
        return
    fi
    # fio 3.33 was seen to abort (SIGABRT) once in a timed run under TCG: a
    # run that fails is shown and retried once; a second failure counts.
    for try in 1 2; do
        deadline $((SECS + ${BENCH_GRACE:-60})) $out fio --direct=1 --ioengine=libaio \
            --name=$2 --filename=/dev/$1 --rw=$3 --bs=$4 --iodepth=$5 \
            --size=${SIZE}m --runtime=$SECS --time_based --output-format=terse
        rc=$?
        if [ $rc -eq 124 ]; then
            touch /tmp/dead-$1
            echo "  fio $1 $2 try $try: no completion: disk declared dead" >/dev/console
            echo "XBD-PERF disk=$1 job=$2 rc=124 iops=0 kib_s=0"
            return
        fi
        [ $rc -eq 0 ] && break
        [ $rc -gt 128 ] && echo "XBD-CRASH disk=$1 what=bench rc=$rc try=$try" >/dev/console
        sed "s/^/  fio $1 $2 try $try rc=$rc: /" $out >/dev/console
    done
    # terse v3: field 7/8 read KiB/s and IOPS, 48/49 the same for writes;
    # 18-37 the read completion-latency percentiles ("50.000000%=N", us),
    # 59-78 the write ones: p50 and p99 of the direction that ran.
    awk -F';' -v d=$1 -v l=$2 -v rc=$rc '
        function pct(first, want,   i, kv) {
            for (i = first; i < first + 20; i++) {
                split($i, kv, "=")
                if (kv[1] == want) return kv[2] + 0
            }
            return -1
        }
        NF > 80 { o = ($8 > 0) ? 18 : 59
                  printf "XBD-PERF disk=%s job=%s rc=%d iops=%d kib_s=%d p50_us=%d p99_us=%d\n",
                  d, l, rc, $8 + $49, $7 + $48, pct(o, "50.000000%"), pct(o, "99.000000%"); found = 1 }
        END { if (!found) printf "XBD-PERF disk=%s job=%s rc=%d iops=0 kib_s=0\n", d, l, (rc ? rc : 99) }' $out
}

# wallclock: seconds since the epoch with microseconds (busybox date has no
# %N; ts does).  Xen gives dom0 and the guests the same clock, give or take
# the offsets tests/xen/README.md describes: dom0 matches its samples to
# the windows by the disks' own activity, these only name them.
wallclock() { echo | ts '%.s' | awk '{ print $1 }'; }

# --- the 2-guest aggregate (tests/xen/aggregate.sh, job agg) ---------------
# Two guests must run the same job on the same backend at the same time.
# The guest has no xenstore tools and the guests' wall clocks were seen to
# differ by up to 3 s under TCG, so neither a key nor a start time is the
# barrier: each guest has a small control disk of its own (kernel blkback,
# xbd.ctl), whose block 1 the guest writes ("XBDREADY <step>": done with
# the step before, ready for this one; "XBDEND <steps>") and whose block 0
# dom0 writes ("XBDGO <step> <dom0 wall clock>") once both guests are
# ready.  Every access is O_DIRECT, on both sides: no page cache between
# them.  The guest polls block 0 every 0.1 s, so both start within about a
# poll of each other; each prints its own start and end times
# (XBD-AGG from= to=) and when it saw GO (seen=) beside dom0's time (go=),
# from which the host estimates each guest's clock offset to judge the
# overlap of the two windows (aggregate.sh).
agg_stamp() { echo | ts '%.s' | tr -d ' '; }
agg_tell() {  # agg_tell WORDS: block 1 of the control disk
    printf '%s\n' "$*" | dd of=/dev/$CTL bs=4096 count=1 seek=1 oflag=direct conv=sync,notrunc 2>/dev/null
}
# agg_wait_go STEP: wait (at most AGG_WAIT seconds) for dom0's "XBDGO
# STEP T"; prints "T SEEN", SEEN the guest's clock when it saw it.
agg_wait_go() {
    local w n=0 max=$((${AGG_WAIT:-900} * 10))
    while [ $n -lt $max ]; do
        w=$(dd if=/dev/$CTL bs=4096 count=1 iflag=direct 2>/dev/null | head -n 1)
        set -- $w
        if [ "$1" = XBDGO ] && [ "$2" = "$AGG_STEP" ] && [ -n "$3" ]; then
            echo "$3 $(agg_stamp)"
            return 0
        fi
        sleep 0.1
        n=$((n + 1))
    done
    return 1
}
# agg_step REP MODE DISK LABEL RW BS DEPTH: one step of the schedule, in
# step with the other guest.  MODE pair: both guests run the job; solo:
# only the guest whose turn it is (a in odd repetitions, b in even ones)
# runs it, the other one waits, for the single-guest figure of the same
# boot.  One XBD-AGG line, the run's XBD-PERF fields appended.
agg_step() {
    local rep=$1 mode=$2 go seen t0 t1 line solo=a
    shift 2
    AGG_STEP=$((AGG_STEP + 1))
    agg_tell "XBDREADY $AGG_STEP"
    set -- $(agg_wait_go) "$@"
    if [ $# -lt 7 ]; then
        say "XBD-AGG-FAIL step=$AGG_STEP role=$ROLE no GO from dom0 within ${AGG_WAIT:-900} s"
        return 1
    fi
    go=$1 seen=$2
    shift 2
    [ $((rep % 2)) -eq 0 ] && solo=b
    if [ "$mode" = solo ] && [ "$ROLE" != "$solo" ]; then
        say "XBD-AGG step=$AGG_STEP rep=$rep mode=$mode role=$ROLE run=idle go=$go seen=$seen disk=$1 job=$2"
        sleep $SECS   # no polling while the other guest runs alone
        return 0
    fi
    t0=$(agg_stamp)
    line=$(bench_one $1 $2 $3 $4 $5)
    t1=$(agg_stamp)
    say "XBD-AGG step=$AGG_STEP rep=$rep mode=$mode role=$ROLE run=yes go=$go seen=$seen from=$t0 to=$t1 ${line#XBD-PERF }"
    case "$line" in *" rc=0 "*) return 0 ;; esac
    return 2
}

for d in $DISKS; do
    wait_disk $d 60 || { say "XBD-FAIL no /dev/$d"; finish 1; }
done
for d in $DISKS; do
    block describe-$d.txt describe $d
done

rc=0
run_job() {
case "$1" in
verify)
    for d in $DISKS; do
        block fio-verify-$d.txt verify_disk $d
        r=$?
        [ $r -eq 0 ] || rc=1
        say "XBD-VERIFY disk=$d rc=$r"
    done
    ;;
together)
    # The verify of every disk at the same time (one backend's disk must
    # not disturb another's), reported as in verify once all are done: the
    # blocks on the console must not interleave.
    for d in $DISKS; do
        ( verify_disk $d >/tmp/together-$d.out 2>&1
          echo $? >/tmp/together-$d.rc ) &
    done
    wait
    for d in $DISKS; do
        r=$(cat /tmp/together-$d.rc 2>/dev/null || echo 99)
        block fio-verify-$d.txt cat /tmp/together-$d.out
        say "XBD-VERIFY disk=$d rc=$r"
        [ "$r" -eq 0 ] || rc=1
        disk_stat $d
    done
    ;;
bench)
    # Every disk runs the same job back to back, alternating, REPS times:
    # TCG throughput drifts, so only neighbours are compared.
    # Each XBD-PERF line carries the run's wall-clock start and end (t0,
    # t1: fio's start-up included) for dom0's per-window CPU figures
    # (tests/xen/backends.sh).  rr4kqd1: one request at a time, for the
    # completion latency (p50_us, p99_us) rather than the throughput.
    for r in $(seq $REPS); do
        for j in "rr4k randread 4k 16" "rw4k randwrite 4k 16" "sr1m read 1m 4" "sw1m write 1m 4" \
                 "rr4kqd1 randread 4k 1"; do
            set -- $j
            for d in $DISKS; do
                t0=$(wallclock)
                line=$(bench_one $d $1 $2 $3 $4)
                say "$line rep=$r t0=$t0 t1=$(wallclock)"
                case "$line" in *" rc=0 "*) ;; *) rc=1 ;; esac
            done
        done
    done
    ;;
hold)
    # Every disk stays connected until dom0 has read what it wants of the
    # backends (their statistics vanish with the device): dom0 says so
    # with `xl sysrq <dom> h`, as for idle; at most HOLD seconds.
    # by= says what ended the hold: dom0's sysrq (the backends were read),
    # the timeout or a shutdown (they may not have been).
    seen_go=$(dmesg | grep -c 'sysrq: HELP')
    say "XBD-HOLD"
    n=0 by=timeout
    while [ $n -lt "$(arg hold 120)" ]; do
        [ $stop -eq 0 ] || { by=stop; break; }
        [ "$(dmesg | grep -c 'sysrq: HELP')" -le "$seen_go" ] || { by=sysrq; break; }
        sleep 1
        n=$((n + 1))
    done
    say "XBD-RELEASED after=${n}s by=$by"
    ;;
loop)
    # The first disk is verified in a loop in the background; any disk that
    # appears later is verified once and then left closed, so that dom0 can
    # detach it.  Stops on SIGUSR2 (xl shutdown).
    first=${DISKS%% *}
    ( trap '' TERM; trap 'exit 0' USR2; n=0
      while :; do
          n=$((n + 1))
          verify_disk $first >/tmp/loop.out 2>&1
          r=$?
          say "XBD-ROUND n=$n disk=$first rc=$r"
          [ $r -eq 0 ] || sed 's/^/  /' /tmp/loop.out >/dev/console
          # a dead disk ends the rounds (they would fail at once, for ever)
          [ -e /tmp/dead-$first ] && exit 1
      done ) &
    looper=$!
    seen=" $DISKS "
    gone=" "
    while [ $stop -eq 0 ]; do
        for s in /sys/block/xvd*; do
            [ -e "$s" ] || continue
            d=${s##*/}
            case "$seen" in *" $d "*) continue ;; esac
            seen="$seen$d "
            say "XBD-HOTPLUG disk=$d"
            block describe-$d.txt describe $d
            block fio-verify-$d.txt verify_disk $d
            say "XBD-VERIFY disk=$d rc=$?"
            disk_stat $d
        done
        for d in $seen; do
            [ -e /sys/block/$d ] || case "$gone" in *" $d "*) ;; *)
                gone="$gone $d "; say "XBD-GONE disk=$d still_in_use=$(dmesg | grep -c 'still in use')" ;; esac
        done
        sleep 1
    done
    kill -USR2 $looper 2>/dev/null
    wait $looper
    say "XBD-STOPPED"
    ;;
idle)
    # Verify once, then sit idle with the disk connected; each `xl sysrq h`
    # runs one more round (waiting up to 60 s for the disk, which may have
    # gone and come back).  Stops on SIGUSR2 (xl shutdown).
    first=${DISKS%% *}
    n=0
    while [ $stop -eq 0 ]; do
        n=$((n + 1))
        if wait_disk $first 60; then
            verify_disk $first >/tmp/idle.out 2>&1
            r=$?
        else
            echo "/dev/$first is gone" >/tmp/idle.out
            r=2
        fi
        say "XBD-ROUND n=$n disk=$first rc=$r"
        [ $r -eq 0 ] || { sed 's/^/  /' /tmp/idle.out >/dev/console; rc=1; }
        block describe-$first-$n.txt describe $first
        say "XBD-IDLE n=$n"
        seen_go=$(dmesg | grep -c 'sysrq: HELP')
        while [ $stop -eq 0 ] && [ "$(dmesg | grep -c 'sysrq: HELP')" -le "$seen_go" ]; do
            sleep 1
        done
    done
    ;;
churn)
    # Verified fio rounds on the first disk while dom0 restarts the
    # backend under it (tests/xen/restart.sh), and a probe measuring how
    # long the disk stops answering.  Stops on SIGUSR2 (xl shutdown)
    # after the round in progress.
    first=${DISKS%% *}
    say "XBD-CLOCK t=$(echo | ts '%.s')"
    probe_start $first
    n=0
    while [ $stop -eq 0 ]; do
        n=$((n + 1))
        deadline $VERIFY_SECS /tmp/churn.out churn_round $n $first
        r=$?
        [ $r -eq 124 ] && touch /tmp/dead-$first
        # terse v3 (see bench_one): 5 error, 6 read KiB, 39 read lat max
        # (us); 47 write KiB, 80 write lat max.  The verify phase reads
        # back every block written: read KiB = write KiB.
        awk -F';' -v n=$n -v d=$first -v rc=$r '
            NF > 80 { printf "XBD-ROUND n=%d disk=%s rc=%d err=%s write_kib=%d read_kib=%d wlat_max_us=%d rlat_max_us=%d\n",
                      n, d, rc, $5, $47, $6, $80, $39; found = 1 }
            END { if (!found) printf "XBD-ROUND n=%d disk=%s rc=%d err=none\n", n, d, (rc ? rc : 99) }' \
            /tmp/churn.out >/dev/console
        say "XBD-BEGIN fio-churn-$n.txt"
        sed 's/^/  /' /tmp/churn.out >/dev/console
        say "XBD-END rc=$r"
        if [ $r -ne 0 ]; then
            [ $r -gt 128 ] && say "XBD-CRASH disk=$first what=churn rc=$r"
            rc=1
        fi
        [ -e /tmp/dead-$first ] && break
    done
    probe_stop $first
    say "XBD-STOPPED"
    ;;
agg)
    # The 2-guest aggregate (see agg_step): per repetition, per job, per
    # disk (one per backend, alternated): g-a or g-b alone, then both.
    ROLE=$(arg role a)
    CTL=$(arg ctl xvdd)
    AGG_STEP=0
    wait_disk $CTL 60 || { say "XBD-FAIL no /dev/$CTL"; rc=1; return; }
    for r in $(seq $REPS); do
        for j in "rr4k randread 4k 16" "sr1m read 1m 4"; do
            for d in $DISKS; do
                for m in solo pair; do
                    agg_step $r $m $d $j
                    case $? in 0) ;; 1) rc=1; break 4 ;; *) rc=1 ;; esac
                done
            done
        done
    done
    agg_tell "XBDEND $AGG_STEP"
    say "XBD-AGG-END role=$ROLE steps=$AGG_STEP rc=$rc"
    ;;
*)
    say "XBD-FAIL unknown job $1"
    rc=1
    ;;
esac
}
# Jobs run one after the other: xbd.job=verify,bench
for j in $(echo "$JOB" | tr , ' '); do
    run_job "$j"
done
finish $rc
