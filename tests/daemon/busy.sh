#!/bin/bash
# Disconnect and reconnect of a BUSY device.
# A. The frontend goes Closing while a workload has requests in flight
#    (per-request grants, every grant copy slowed down by the simulation so
#    that the daemon is in the middle of them).
# B. The toolstack removes the disk (online=0 + state=5, as libxl) while a
#    workload with persistent grants runs and the guest does not let go:
#    the disk keeps being served (as Linux blkback, the frontend decides),
#    the safe removal times out and libxl's forced removal deletes the
#    nodes under the running rings.
# In both, while the busy guest is still alive: the backend lets go (A:
# Closed; B: the device freed with its directory),
# no grant of the guest is mapped or pinned any more (xsim-ctl in-use, which
# is what makes end-access succeed for every page) and the daemon holds no
# fd to the backing file.  Then the guest reconnects (A: same device; B:
# the disk is added again, as libxl does) and reads everything back through
# the frontend; the backing file is checked directly too: every sector holds
# either what was there or what the interrupted workload wrote - never a
# torn, misplaced or garbage sector.  Finally a verified workload runs on
# the reconnected device.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
xsim_daemon --kinds vbd3
img=$(make_disk busy.img 16)
vbd3_disk 5 51712 "$img"
be=$(be_dir vbd3 5 51712)
fe=$(fe_dir 5 51712)
span=4194304

# wait_stat DOMID KEY MIN [TIMEOUT]: until a grant counter reaches MIN.
wait_stat() {
    local end v
    end=$(xsim_deadline "${4:-10}")
    while v=$(ctl_stat "$1" "$2"); [ "${v:-0}" -lt "$3" ]; do
        xsim_past "$end" && xsim_fail "$2 of domain $1 is $v after ${4:-10}s, want >= $3"
        sleep 0.02
    done
}

# released DOMID GUEST: the busy guest (process GUEST) is still alive, and
# none of its grants is in use any more; the daemon has no fd to the image.
released() {
    local end n
    xsim_alive "$(xsim_pid "$2")" || xsim_fail "the busy guest exited early (see $2.log)"
    end=$(xsim_deadline 10)
    while n=$(in_use "$1"); [ "$n" != 0 ]; do
        xsim_past "$end" && xsim_fail "$n grant(s) of domain $1 still in use after Closed"
        sleep 0.05
    done
    xsim_log "ok: no grant of domain $1 in use, its guest still running"
    wait_fds_to "$img" 0
}

# watch_events: how many events of the frontend's state key xenstored
# has sent to the daemon (its watch tokens start with xbd).
xs_trace=$XSIM_LOGDIR/xenstored-trace.log
watch_events() { grep -cF "WATCH_EVENT ($fe/state xbd" "$xs_trace" || true; }

# --- A: the frontend closes with requests in flight ----------------------
fe fill1 5 --vdev 51712 --workload fill --gen 1 --span "$span" --bs 64k --close
# The fill covers the whole disk: 1024 requests of 4 segments, each one
# grant-copy call of at least 20 ms.  The daemon makes 49 of those calls,
# then its 50th waits (copy_hold: the loop stands still in it) for as
# long as the test takes to write Closing, until xenstored has sent the
# daemon that Closing.  Released, the loop sees it after at most one
# callback's budget of requests; once the backend is Closing it takes no
# new request, so the fill can never complete and gen 1 is never all
# overwritten.  (A time margin, the fill's pace against the test's,
# decided that before.)
"$XBD_CTL" fault copy_delay_us=20000,copy_hold=50 >/dev/null
xsim_on_exit "'$XBD_CTL' fault clear >/dev/null"
# However the guest reacts to the close (it notices the backend going
# away with requests in flight and fails), --linger-until keeps its
# domain until the test ends it with SIGTERM: it is alive when the test
# looks.  (Not SIGSTOP: a guest stopped inside the simulation's
# event-channel or grant-table lock would stop the daemon too.)
xsim_bg busyA "$XBD_FE" --domid 5 --vdev 51712 --no-persistent --workload fill --gen 2 \
    --bs 16k --qd 32 --timeout 60 --linger-until "$XSIM_TMP/never"
wait_stat 5 copy_calls 49
[ -e "$xs_trace" ] || xsim_fail "no xenstored trace at $xs_trace"
sent=$(watch_events)
xsim_log "frontend Closing with the fill of generation 2 in flight, the daemon's 50th copy held"
xenstore-write "$fe/state" 5
end=$(xsim_deadline 10)
until [ "$(watch_events)" -gt "$sent" ]; do
    xsim_past "$end" && xsim_fail "xenstored did not send the daemon the frontend's Closing"
    sleep 0.02
done
check "the fill stood still: 49 copy calls ($(ctl_stat 5 copy_calls))" [ "$(ctl_stat 5 copy_calls)" = 49 ]
"$XBD_CTL" fault copy_hold=0 >/dev/null
xsim_wait_key "$be/state" 5 || xsim_fail "backend did not acknowledge Closing"
xenstore-write "$fe/state" 6
xsim_wait_key "$be/state" 6 || xsim_fail "backend did not reach Closed"
released 5 busyA
"$XBD_CTL" fault clear >/dev/null
xsim_kill busyA TERM >/dev/null || true
# Part of generation 2 landed, not all of it: the close really was busy.
pattern_check "$img" 1,2,0 --span $((16 << 20)) --min 2=128 --min 1=128
xfe readA readcheck --domid 5 --vdev 51712 --gens 1,2 --span "$span"
fe verifyA 5 --vdev 51712 --workload verify --count 200 --qd 32 --seed 11 --close

# --- B: online=0 while a workload runs ------------------------------------
fe fill3 5 --vdev 51712 --workload fill --gen 3 --close
pattern_check "$img" 3
xsim_bg busyB "$XBD_FE" --domid 5 --vdev 51712 --workload write --count 100000000 --span "$span" \
    --bs 64k --qd 32 --seed 5 --timeout 60 --linger-until "$XSIM_TMP/never"
# Endless random writes; the guest lingers until the test ends it.
wait_stat 5 map_calls 40       # a new domain 5: its counters start at 0
xsim_log "toolstack removes the disk while the random writes run; the guest does not let go"
printf 'write %s/online 0\nwrite %s/state 5\n' "$be" "$be" | xsim_xs
settle
n=$(answered 5)
served 5 $((n + 200)) busyB
expect_key "$be/state" 5
xsim_log "ok: still served after online=0"
# libxl's safe removal times out (1 s here) and its forced removal deletes
# the nodes: the busy disconnect.
if xsim_remove_disk vbd3 5 51712 1; then
    xsim_fail "the busy device reached Closed under a guest that did not let go"
fi
wait_log "domain 5 vbd3/51712: backend directory removed, device freed"
released 5 busyB
xsim_kill busyB TERM >/dev/null || true
pattern_check "$img" any
"$XBD_PATTERN" check --gens 3 --span "$span" "$img" >/dev/null 2>&1 &&
    xsim_fail "the busy writes of B changed nothing"
# Beyond the workload's span, generation 3 is untouched.
pattern_check "$img" 3 --from "$span"
vbd3_disk 5 51712 "$img"
xfe readB readcheck --domid 5 --vdev 51712 --gens any --span $((16 << 20))
fe verifyB 5 --vdev 51712 --workload verify --count 200 --qd 32 --seed 12 --close
check "daemon still running" xsim_running xenblkd
exit 0
