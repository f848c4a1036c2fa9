#!/bin/bash
# make bench: the fio limit, xenblkd and QEMU's qdisk on the same machine
# and the same backing files, in one run, on the simulated Xen host.
# Prints and writes numbers; asserts nothing about speed (never part of
# make check; tests/bench/smoke.sh only checks the output is well formed).
# See tests/bench/README.md for the matrix, the knobs and what each column
# means.
set -euo pipefail
: "${top_srcdir:?top_srcdir not set (run through make bench)}"
source "$top_srcdir/tests/harness/env.sh"
: "${top_builddir:?}"           # env.sh sets it

PY=/usr/bin/python3          # Debian's, with python3-matplotlib
LIB=$top_srcdir/tests/bench/benchlib.py
FE=$top_builddir/tests/frontend/xsim-blkfront
CTL=$top_srcdir/tests/daemon/ctl.py

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
    : "${BENCH_SECONDS:=0.3}" "${BENCH_FILE_MB:=16}" "${BENCH_STORAGE:=tmpfs}"
fi
SECS=${BENCH_SECONDS:-10}
FILE_MB=${BENCH_FILE_MB:-512}
STORAGES=${BENCH_STORAGE:-disk tmpfs}
BACKENDS=${BENCH_BACKENDS:-fio xenblkd qdisk}
OUT=${BENCH_OUT:-$top_builddir/bench-results}
DISK_DIR=${BENCH_DISK_DIR:-/var/tmp}
TMPFS_DIR=${BENCH_TMPFS_DIR:-/dev/shm}
ONLY=${BENCH_ONLY:-}         # a regular expression on workload names
SPARSE=${BENCH_SPARSE:-0}

# workload: name sweep rw bs qd indirect persistent guests
# (sweep: which plot the point belongs to.)
WORKLOADS_FULL="
rr4k-qd1    qd     randread  4096    1   1 1 1
rr4k-qd32   qd     randread  4096    32  1 1 1
rr4k-qd128  qd     randread  4096    128 1 1 1
rw4k-qd1    qd     randwrite 4096    1   1 1 1
rw4k-qd32   qd     randwrite 4096    32  1 1 1
rw4k-qd128  qd     randwrite 4096    128 1 1 1
rr4k-qd32-copy  -  randread  4096    32  1 0 1
rw4k-qd32-copy  -  randwrite 4096    32  1 0 1
sr64k       -      read      65536   32  1 1 1
sw64k       -      write     65536   32  1 1 1
sr64k-noind -      read      65536   32  0 1 1
sw64k-noind -      write     65536   32  0 1 1
sr1m        -      read      1048576 8   1 1 1
sw1m        -      write     1048576 8   1 1 1
sr1m-noind  -      read      1048576 8   0 1 1
sw1m-noind  -      write     1048576 8   0 1 1
sr1m-copy   -      read      1048576 8   1 0 1
sw1m-copy   -      write     1048576 8   1 0 1
g1-rr4k     guests randread  4096    32  1 1 1
g4-rr4k     guests randread  4096    32  1 1 4
g16-rr4k    guests randread  4096    32  1 1 16
"
WORKLOADS_QUICK="
rr4k-qd1    qd     randread  4096    1   1 1 1
rr4k-qd32   qd     randread  4096    32  1 1 1
rw4k-qd32-copy  -  randwrite 4096    32  1 0 1
sr64k-noind -      read      65536   32  0 1 1
g2-rr4k     guests randread  4096    32  1 1 2
"
WORKLOADS=${BENCH_WORKLOADS:-$([ "$QUICK" = 1 ] && echo "$WORKLOADS_QUICK" || echo "$WORKLOADS_FULL")}

[ -x "$FE" ] || xsim_fail "$FE is not built (make check builds it)"
command -v fio >/dev/null || { [[ " $BACKENDS " != *" fio "* ]] || xsim_skip "fio is not installed (tests/deps/bench.txt)"; }
have_perf=0
perf stat -e raw_syscalls:sys_enter -x, -- true >/dev/null 2>&1 && have_perf=1
if [[ " $BACKENDS " == *" qdisk "* ]] && [ ! -x "$QEMU_XEN" ]; then
    xsim_log "no QEMU at $QEMU_XEN (qemu-system-xen): qdisk left out"
    BACKENDS=${BACKENDS//qdisk/}
fi

mkdir -p "$OUT"
: > "$OUT/records.jsonl"
maxg=1
while read -r name sweep rw bs qd ind pers guests; do
    [ -n "$name" ] && [ "$guests" -gt "$maxg" ] && maxg=$guests
done <<<"$WORKLOADS"

export XSIM_XENSTORED_TRACE=${XSIM_XENSTORED_TRACE:-0}   # the trace costs xenstored time
xsim_start
XSIM_DAEMON_NAME=xenblkd xsim_daemon --kinds vbd3 --log-level info
DPID=$(xsim_pid xenblkd)
until [ -S "$XSIM_TMP/control.sock" ]; do
    xsim_running xenblkd || xsim_fail "xenblkd died at start"
    sleep 0.05
done

# ---- measuring a process (group) ---------------------------------------------------

# cpu_ns PID...: CPU time of every thread of the processes (schedstat, ns).
cpu_ns() {
    local t=0 p f a
    for p in "$@"; do
        for f in /proc/"$p"/task/*/schedstat; do
            read -r a _ < "$f" 2>/dev/null && t=$((t + a))
        done
    done
    echo $t
}
# host_cpu: "BUSY TOTAL" clock ticks of the whole machine (/proc/stat, every
# CPU): with several guests on 2 CPUs, whether the machine itself ran out
# of CPU (then the aggregate is bounded by the host, and a ratio of guest
# counts measures the load generator, not the backend).
host_cpu() {
    awk '$1 == "cpu" { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6; exit }' /proc/stat
}
# wait_ns PID...: time the processes' threads were runnable but waiting
# for a CPU (schedstat's second field): a backend that waits for the CPU
# more than it runs is bounded by the machine, not by its own cost.
wait_ns() {
    local t=0 p f a b
    for p in "$@"; do
        for f in /proc/"$p"/task/*/schedstat; do
            read -r a b _ < "$f" 2>/dev/null && t=$((t + b))
        done
    done
    echo $t
}
rss_bytes() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status"; }

# perf_start PIDS (comma separated) / perf_stop: system calls entered by
# the backend in the timed phase (tracepoint: costs the traced process far
# less than strace).
# With BENCH_STRACE=1, strace -c -f instead: the count of each system call
# (saved as $OUT/strace-STORAGE-WORKLOAD-BACKEND.txt), at the price of a
# much slower backend (so fewer, larger batches: fewer calls per request).
perf_start() {
    PERF_OUT=$XSIM_TMP/perf.out
    PERF_PID=
    if [ "${BENCH_STRACE:-0}" = 1 ]; then
        local -a p=()
        local x
        for x in ${1//,/ }; do p+=(-p "$x"); done
        strace -c -f -o "$PERF_OUT" "${p[@]}" 2>/dev/null &
        PERF_PID=$!
    elif [ "$have_perf" = 1 ]; then
        perf stat -x, -e raw_syscalls:sys_enter -p "$1" -o "$PERF_OUT" >/dev/null 2>&1 &
        PERF_PID=$!
    else
        return 0
    fi
    sleep 0.3                # attached (a benchmark, not a test: no event to wait for)
}
# perf_stop: sets PERF_COUNT (empty when perf is not there).  Not in a
# command substitution: only this shell can wait for perf.
perf_stop() {
    PERF_COUNT=
    [ -n "$PERF_PID" ] || return 0
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    if [ "${BENCH_STRACE:-0}" = 1 ]; then
        cp "$PERF_OUT" "$OUT/strace-$PERF_TAG.txt"
        PERF_COUNT=$(awk '$NF == "total" { print $4 }' "$PERF_OUT")
    else
        PERF_COUNT=$(awk -F, '/raw_syscalls:sys_enter/ && $1 ~ /^[0-9]+$/ { print $1 }' "$PERF_OUT")
    fi
}

NEXT_DOM=10
# front_start DOMID FILE ARGS...: a guest running the bench in the background;
# its result goes to $XSIM_TMP/r-DOMID.json.
front_start() {
    local dom=$1 start=$2
    shift 2
    xsim_bg "fe$dom" "$FE" --domid "$dom" --vdev xvda --timeout 60 --ring-order 2 \
        --bench-start "$start" --bench-json "$XSIM_TMP/r-$dom.json" --hold 600 "$@"
}
front_wait_done() {
    local dom=$1 end
    end=$(xsim_deadline $((${SECS%.*} + 120)))
    until grep -q 'workload done, holding' "$XSIM_LOGDIR/fe$dom.log"; do
        xsim_running "fe$dom" || { tail -n 20 "$XSIM_LOGDIR/fe$dom.log" >&2; xsim_fail "guest $dom ended early"; }
        xsim_past "$end" && xsim_fail "guest $dom never finished"
        sleep 0.05
    done
}

stats() { "$PY" "$CTL" "$XSIM_TMP/control.sock" '{"version":1,"command":"stats"}' > "$XSIM_TMP/stats.json"; \
          "$PY" "$LIB" sum-stats "$XSIM_TMP/stats.json" "$@"; }

# run_backend BACKEND STORAGE NAME SWEEP RW BS QD IND PERS GUESTS
run_backend() {
    local be=$1 st=$2 name=$3 sweep=$4 rw=$5 bs=$6 qd=$7 ind=$8 pers=$9 guests=${10}
    # Indirect requests of at most 32 segments (128 KiB): Linux blkfront's
    # default (max_indirect_segments), so a 1 MiB job is 128 KiB requests as
    # from a Linux guest.  (With 256 segments, 8 x 1 MiB in flight need 2048
    # grants, more than the 1056 persistent grants a ring keeps: see
    # tests/bench/README.md.)
    local -a doms=() fargs=(--bench "$rw" --bs "$bs" --qd "$qd" --seconds "$SECS" --span $((FILE_MB << 20))
                            --max-indirect "${BENCH_MAX_INDIRECT:-32}")
    local i dom kind start=$XSIM_TMP/start-$NEXT_DOM pids="" rss0 rss1 s0="" s1="" c0 c1 sc
    [ "$ind" = 0 ] && fargs+=(--no-indirect)
    [ "$pers" = 0 ] && fargs+=(--no-persistent)
    kind=vbd3; [ "$be" = qdisk ] && kind=qdisk
    rss0=$(rss_bytes "$DPID")
    for ((i = 0; i < guests; i++)); do
        dom=$NEXT_DOM; NEXT_DOM=$((NEXT_DOM + 1)); doms+=("$dom")
        xsim_add_disk "$kind" "$dom" xvda "aio:${FILES[$st]}/g$i.img"
        if [ "$be" = qdisk ]; then
            xsim_qemu_qdisk "$dom"
            pids+=${pids:+,}$(xsim_pid "qemu-$dom")
        else
            xsim_hotplug_connected vbd3 "$dom" xvda
        fi
        xsim_wait_key "/local/domain/0/backend/$kind/$dom/51712/state" 2 20 || xsim_fail "$be: no InitWait for guest $dom"
        front_start "$dom" "$start" "${fargs[@]}"
    done
    [ "$be" = xenblkd ] && pids=$DPID
    for dom in "${doms[@]}"; do
        xsim_wait_key "/local/domain/0/backend/$kind/$dom/51712/state" 4 30 || xsim_fail "$be: guest $dom did not connect"
    done
    [ "$be" = xenblkd ] && s0=$(stats "${doms[@]}")
    # shellcheck disable=SC2086
    c0=$(cpu_ns ${pids//,/ })
    PERF_TAG=$st-$name-$be
    perf_start "$pids"
    local h0 h1 w0 w1 t0 t1
    # shellcheck disable=SC2086
    h0=$(host_cpu) w0=$(wait_ns ${pids//,/ }) t0=$(date +%s%N)
    touch "$start"
    for dom in "${doms[@]}"; do front_wait_done "$dom"; done
    # shellcheck disable=SC2086
    h1=$(host_cpu) w1=$(wait_ns ${pids//,/ }) t1=$(date +%s%N)
    perf_stop
    sc=$PERF_COUNT
    # shellcheck disable=SC2086
    c1=$(cpu_ns ${pids//,/ })
    if [ "$be" = xenblkd ]; then
        s1=$(stats "${doms[@]}")
        rss1=$(rss_bytes "$DPID")
    else
        rss0='' rss1=''
    fi
    local -a reports=()
    for dom in "${doms[@]}"; do reports+=("$XSIM_TMP/r-$dom.json"); done
    B_HOST_CPU="$h0 $h1 $(getconf CLK_TCK)" B_WAIT_NS=$((w1 - w0)) B_WALL_NS=$((t1 - t0)) B_CPU_NS=$((c1 - c0)) B_SYSCALLS=$sc B_STATS0=$s0 B_STATS1=$s1 B_RSS0=$rss0 B_RSS1=${rss1:-} \
        "$PY" "$LIB" backend-record "$OUT/records.jsonl" backend="$be" storage="$st" workload="$name" \
        order="$ORDER" sweep="$sweep" rw="$rw" bs="$bs" qd="$qd" indirect="$ind" persistent="$pers" \
        guests="$guests" -- "${reports[@]}"
    for dom in "${doms[@]}"; do
        xsim_remove_disk "$kind" "$dom" xvda 20 || xsim_log "$be: guest $dom: removal timed out"
        st=$(xsim_wait_exit "fe$dom" 30) || st=timeout
        # Measured already: a failed close is reported, not fatal.
        [ "$st" = 0 ] || { tail -n 20 "$XSIM_LOGDIR/fe$dom.log" >&2; xsim_log "WARNING: $be: guest $dom ended with status $st at removal"; }
        [ "$be" = qdisk ] && xsim_qemu_stop "$dom"
    done
    rm -f "$start"
}

# run_fio STORAGE NAME SWEEP RW BS QD IND PERS GUESTS: the limit, one job per
# guest file, same files, same block size and depth; and, where a guest
# splits the job's I/O (more than its request can carry: 11 pages without
# indirect descriptors, BENCH_MAX_INDIRECT with), fio again at the request
# size xenblkd receives, same depth (record "fio-shape").
run_fio() {
    local st=$1 name=$2 sweep=$3 rw=$4 bs=$5 qd=$6 ind=$7 pers=$8 guests=$9
    local cap=$((11 * 4096))
    [ "$ind" = 1 ] && cap=$((${BENCH_MAX_INDIRECT:-32} * 4096))
    fio_job fio "$bs"
    [ "$bs" -le "$cap" ] || fio_job fio-shape "$cap"
}
# fio_job BACKEND BS (run_fio's locals)
fio_job() {
    local i
    local -a args=(--output-format=json --ioengine=libaio --direct="$DIRECT" --rw="$rw" --bs="$2"
                   --iodepth="$qd" --runtime="$(awk -v s="$SECS" 'BEGIN { printf "%dms", s * 1000 }')" --time_based --size=$((FILE_MB << 20)) --randrepeat=0)
    for ((i = 0; i < guests; i++)); do
        args+=(--name="g$i" --filename="${FILES[$st]}/g$i.img")
    done
    fio "${args[@]}" > "$XSIM_TMP/fio.json" 2> "$XSIM_LOGDIR/fio.err" ||
        { cat "$XSIM_LOGDIR/fio.err" >&2; xsim_fail "fio $name failed"; }
    "$PY" "$LIB" fio-record "$OUT/records.jsonl" backend="$1" storage="$st" workload="$name" order="$ORDER" sweep="$sweep" \
        rw="$rw" bs="$bs" req_bytes="$2" qd="$qd" indirect="$ind" persistent="$pers" guests="$guests" direct="$DIRECT" \
        "$XSIM_TMP/fio.json"
}

# ---- backing files -------------------------------------------------------------------
declare -A FILES=() IOMODE=()
for st in $STORAGES; do
    case $st in
        disk) base=$DISK_DIR ;;
        tmpfs) base=$TMPFS_DIR ;;
        *) xsim_fail "BENCH_STORAGE: unknown storage '$st' (disk, tmpfs)" ;;
    esac
    d=$(mktemp -d "$base/xenblkd-bench.XXXXXX")
    xsim_on_exit rm -rf "$d"
    FILES[$st]=$d
    # Real blocks (a sparse or fallocated file reads as zeros without any
    # device I/O); BENCH_SPARSE=1: fresh sparse images, whose writes the
    # filesystem must allocate.  Jobs share the files, so only the first
    # write job of a run meets holes everywhere: select one backend and
    # one job per run (BENCH_BACKENDS, BENCH_ONLY).
    for ((i = 0; i < maxg; i++)); do
        if [ "$SPARSE" = 1 ]; then
            truncate -s "${FILE_MB}M" "$d/g$i.img"
        else
            dd if=/dev/zero of="$d/g$i.img" bs=1M count="$FILE_MB" conv=fsync status=none
        fi
    done
    # tmpfs has O_DIRECT only since Linux 6.6: without it, all three
    # (fio, xenblkd, QEMU) use the page cache alike.
    if dd if=/dev/zero of="$d/g0.img" bs=4096 count=1 oflag=direct conv=notrunc status=none 2>/dev/null; then
        IOMODE[$st]=direct
    else
        IOMODE[$st]=buffered
        xsim_log "$st ($d): no O_DIRECT on this kernel: fio, xenblkd and QEMU all run buffered"
    fi
done
# xenblkd and QEMU open with O_DIRECT and fall back by themselves where the
# filesystem refuses it; fio is told the same.

"$PY" - "$OUT/meta.json" "$SECS" <<EOF
import json, os, sys, time
st = {$(for st in $STORAGES; do printf '"%s": {"path": "%s", "io": "%s"},' "$st" "${FILES[$st]}" "${IOMODE[$st]}"; done)}
json.dump({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seconds": float(sys.argv[2]),
           "host": "%s, %d CPUs" % (os.uname().release, os.cpu_count()), "storage": st,
           "kernel": os.uname().release}, open(sys.argv[1], "w"))
EOF

ORDER=0
for st in $STORAGES; do
    DIRECT=1; [ "${IOMODE[$st]}" = buffered ] && DIRECT=0
    while read -r name sweep rw bs qd ind pers guests; do
        [ -n "$name" ] || continue
        [ -z "$ONLY" ] || [[ $name =~ $ONLY ]] || continue
        ORDER=$((ORDER + 1))
        for be in $BACKENDS; do
            xsim_log "bench $st $name: $be"
            nrec=$(wc -l < "$OUT/records.jsonl")
            if [ "$be" = fio ]; then
                run_fio "$st" "$name" "$sweep" "$rw" "$bs" "$qd" "$ind" "$pers" "$guests"
            else
                run_backend "$be" "$st" "$name" "$sweep" "$rw" "$bs" "$qd" "$ind" "$pers" "$guests"
            fi
            tail -n +$((nrec + 1)) "$OUT/records.jsonl" | "$PY" -c 'import json,sys
for r in map(json.loads, sys.stdin):
    print("  %-9s %-6s %-15s %10.0f IOPS %8.1f MiB/s p50 %s us p99 %s us" % (r["backend"], r["storage"], r["workload"],
          r["iops"], r["mib_s"], r.get("lat_p50_us"), r.get("lat_p99_us")))'
        done
    done <<<"$WORKLOADS"
done

"$PY" "$LIB" report "$OUT"
xsim_log "results: $OUT/results.md, $OUT/results.json, $(cd "$OUT" && ls ./*.png 2>/dev/null | tr '\n' ' ')"
cat "$OUT/results.md"
