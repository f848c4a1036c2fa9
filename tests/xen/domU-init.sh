#!/bin/busybox sh
# /init of the PV test guest (busybox-static + xen-blkfront.ko + fio).
#
# The kernel command line (xl "extra=") says what to do:
#   xbd.job=verify|bench|loop|idle   the workload (see below), or a comma
#                                    separated list run in order
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
    n=0
    while [ ! -b "/dev/$1" ]; do
        n=$((n + 1))
        [ "$n" -gt "$(($2 * 10))" ] && return 1
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

# A hung fio (seen once under TCG) must not hang the guest: every run has
# a deadline, and a killed run reports its own failure.
FIO="timeout ${FIO_TIMEOUT:-240} fio --direct=1 --ioengine=libaio --output-format=normal,terse"
verify_disk() {  # sequential then random write+crc32c verify, 4 KiB..1 MiB
    $FIO --name=seq --filename=/dev/$1 --rw=write --bsrange=4k-1m \
        --size=${SIZE}m --iodepth=8 --verify=crc32c --verify_fatal=1 --verify_dump=0 || return 1
    $FIO --name=rand --filename=/dev/$1 --rw=randwrite --bsrange=4k-1m \
        --size=${SIZE}m --iodepth=8 --verify=crc32c --verify_fatal=1 --verify_dump=0 \
        --randrepeat=0 || return 1
}

bench_one() {  # bench_one DISK LABEL RW BS DEPTH: one timed run, one XBD-PERF line
    local out rc try
    # fio 3.33 was seen to abort (SIGABRT) once in a timed run under TCG: a
    # run that fails is shown and retried once; a second failure counts.
    for try in 1 2; do
        out=$($FIO --name=$2 --filename=/dev/$1 --rw=$3 --bs=$4 --iodepth=$5 \
            --size=${SIZE}m --runtime=$SECS --time_based --output-format=terse 2>&1)
        rc=$?
        [ $rc -eq 0 ] && break
        echo "$out" | sed "s/^/  fio $1 $2 try $try rc=$rc: /" >/dev/console
    done
    # terse v3: field 7/8 read KiB/s and IOPS, 48/49 the same for writes.
    echo "$out" | awk -F';' -v d=$1 -v l=$2 -v rc=$rc '
        NF > 50 { printf "XBD-PERF disk=%s job=%s rc=%d iops=%d kib_s=%d\n",
                  d, l, rc, $8 + $49, $7 + $48; found = 1 }
        END { if (!found) printf "XBD-PERF disk=%s job=%s rc=%d iops=0 kib_s=0\n", d, l, (rc ? rc : 99) }'
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
bench)
    # Every disk runs the same job back to back, alternating, REPS times:
    # TCG throughput drifts, so only neighbours are compared.
    for r in $(seq $REPS); do
        for j in "rr4k randread 4k 16" "rw4k randwrite 4k 16" "sr1m read 1m 4" "sw1m write 1m 4"; do
            set -- $j
            for d in $DISKS; do
                line=$(bench_one $d $1 $2 $3 $4)
                say "$line rep=$r"
                case "$line" in *" rc=0 "*) ;; *) rc=1 ;; esac
            done
        done
    done
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
