#!/bin/bash
# A write-back error is reported once ("fsyncgate"): on a store opened
# without O_DIRECT (--no-direct-io) a guest write completes in dom0's page
# cache, write-back then fails in the storage (a FUSE file under a loop
# device failing the write, tests/faults/lib.sh), and Linux reports that
# error to one fdatasync only.  The daemon must not answer any later flush
# or barrier of that disk OKAY: the guest would believe its data durable
# while the store holds zeros (man xenblkd, WRITE-BACK ERRORS).
# 1. Guest 5 (two queues: the raw requests alternate between them) writes
#    sector 128 (OKAY, from the page cache); the flush that meets the
#    write-back error is ERROR, and so are every later flush and barrier,
#    with or without data, on both queues; a read is still served.  The
#    daemon logs it once (domain, device, store, errno), the control
#    socket shows write_back_lost, and the store really lost the write.
# 2. Guest 6, an ordinary image on the same daemon, flushes OKAY.
# 3. The daemon is killed (SIGKILL) and a new one resumes the ring: its
#    first flush and barrier of guest 5 are ERROR too (ring journals).
# 4. The guest closes; a new connection of the disk starts clean: its
#    flush is OKAY (the state lasts a connection).
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
source "$top_srcdir/tests/faults/lib.sh"
fuse_requirements
xsim_start
fuse_disk d5 16
ctl=$XSIM_TMP/d5.ctl go=$XSIM_TMP/go
img6=$(make_disk g6.img 16)
be5=$(be_dir vbd3 5 51712)
xsim_daemon --kinds vbd3 --no-direct-io
vbd3_disk 5 51712 "$FUSE_DEV"
vbd3_disk 6 51712 "$img6"
xsim_wait_key "$be5/feature-flush-cache" 1

# write-back of sectors 128..135 fails in the storage
echo "65536 4096" > "$ctl/eio-write"
raw=(
    op=write,sector=128,expect=okay                 # into dom0's page cache
    op=flush,nr_segments=0,expect=error             # meets the write-back error
    op=flush,nr_segments=0,expect=error             # Linux reports nothing any more
    op=barrier,nr_segments=0,expect=error
    op=barrier,sector=0,expect=error                # with data elsewhere
    op=read,sector=128,expect=okay                  # reads are not failed
    "op=flush,nr_segments=0,expect=error,after=$go" # after the restart
    op=barrier,nr_segments=0,expect=error
)
args=()
for r in "${raw[@]}"; do args+=(--raw "$r"); done
xsim_bg fe5 "$XBD_FE" --domid 5 --vdev 51712 --queues 2 --workload none --timeout 60 \
    "${args[@]}" --close
statuses() {
    sed -n 's/^raw vdev=[0-9]*: status=[-0-9]* (\([a-z]*\)).*/\1/p' "$XSIM_LOGDIR/fe5.log" |
        tr '\n' ' '
}
end=$(xsim_deadline 30)
until [ "$(grep -c '^raw vdev' "$XSIM_LOGDIR/fe5.log")" -ge 6 ]; do
    xsim_running fe5 || { tail -n 20 "$XSIM_LOGDIR/fe5.log" >&2; xsim_fail "guest 5 ended early"; }
    xsim_past "$end" && xsim_fail "guest 5's first requests were not all answered"
    sleep 0.05
done
got=$(statuses)
check "guest 5: write OKAY, then every flush and barrier ERROR, the read OKAY: $got" \
    [ "$got" = "okay error error error error okay " ]
check "the storage failed the write-back itself" grep -q '^write 65536 ' "$ctl/eio-log"
check "guest 5 has two queues" [ "$(xenstore-read "$(fe_dir 5 51712)/multi-queue-num-queues")" = 2 ]
n=$(grep -Ec "domain 5 vbd3/51712 q[01]: flushing $FUSE_DEV failed: Input/output error" \
    "$XSIM_LOGDIR/xenblkd.log" || true)
check "the write-back error is logged once (domain, store, errno): $n" [ "$n" = 1 ]
lost() {
    python3 - "$XSIM_TMP/control.sock" "$1" <<'PY'
import sys
sys.path.insert(0, __import__("os").environ["top_srcdir"] + "/tests/daemon")
import ctl
rep = ctl.Client(sys.argv[1]).call({"command": "list"})
print([d["backing"]["write_back_lost"] for d in rep["devices"] if d["domid"] == int(sys.argv[2])][0])
PY
}
check "control socket: guest 5's write_back_lost" [ "$(lost 5)" = True ]
check "xenblkctl list says guest 5's flushes fail" \
    grep -q "^busy: domain 5 .*flushes fail" \
    <("$top_builddir/src/xenblkctl" --socket "$XSIM_TMP/control.sock" list)

# 2. Another disk of the daemon is unaffected.
fe_hold g6 6 --vdev 51712 --workload none --raw op=write,sector=0,expect=okay \
    --raw op=flush,nr_segments=0,expect=okay --raw op=barrier,nr_segments=0,expect=okay \
    --hold 600 --close
check "control socket: guest 6 has no write_back_lost" [ "$(lost 6)" = False ]
fe_end g6

# 3. A crash: the next instance must not answer a flush OKAY either.
kill -KILL "$(xsim_pid xenblkd)"
st=$(xsim_wait_exit xenblkd 20) || true
[ "$st" = 137 ] || xsim_fail "the daemon was not killed by SIGKILL (status $st)"
XSIM_DAEMON_NAME=xenblkd2 xsim_daemon --kinds vbd3 --no-direct-io
wait_log "domain 5 vbd3/51712: resumed in state Connected" 20 xenblkd2
check "the new instance says flushes still fail" \
    grep -q "a flush of $FUSE_DEV failed before the restart" "$XSIM_LOGDIR/xenblkd2.log"
touch "$go"
st=$(xsim_wait_exit fe5 60) || true
[ "$st" = 0 ] || { tail -n 20 "$XSIM_LOGDIR/fe5.log" >&2; xsim_fail "guest 5 failed (status $st)"; }
got=$(statuses)
check "after the restart, guest 5's flush and barrier are ERROR: $got" \
    [ "$got" = "okay error error error error okay error error " ]
rm -f "$ctl/eio-write"
check "the store lost the write the guest was told had completed" \
    cmp -s <(dd if="$XSIM_TMP/d5.store" bs=4096 skip=16 count=1 2>/dev/null) <(head -c 4096 /dev/zero)

# 4. Closed: a new connection starts clean.
xsim_wait_key "$be5/state" 6 20 || xsim_fail "guest 5's backend did not reach Closed"
fe g5b 5 --vdev 51712 --workload none --raw op=flush,nr_segments=0,expect=okay --close
xsim_log PASS
