#!/bin/bash
# A detached ring's persistent grants are unmapped off the event loop.
# On Xen each unmap is a hypercall with a TLB flush; a ring with a full
# cache took seconds to unmap, which stalled every guest and made libxl's
# block-detach time out (tests/xen/README.md).  Here every unmap is held
# (XENSIM_GNTTAB_UNMAP_HOLD, tests/sim/CONTRACT.md) while:
#   - the detached device still reaches Closed, after the grace period
#     (src/unmap_worker.h), with its grants still mapped (the reference
#     frontend sees them busy at Closed: expected past the grace period),
#   - another guest connects and its I/O completes,
#   - the same device is attached again and serves I/O;
# once released, every grant of the detached ring is unmapped and
# reported.  When unmaps are fast, Closed waits for them (the reference
# frontends' --close checks pass).  A daemon stopped while unmaps are
# pending waits for them before it exits.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
daemon_unmaps_held --kinds vbd3
imgA=$(make_disk a.img 8)
imgB=$(make_disk b.img 8)
be=$(be_dir vbd3 5 51712)
vbd3_disk 5 51712 "$imgA"
vbd3_disk 6 51712 "$imgB"

# Guest 5 maps data pages persistently, then holds its disk.
fe_hold a 5 --vdev 51712 --workload verify --count 64 --bs 64k --qd 8 --hold 300
mapped=$(in_use 5)
[ "$mapped" -gt 1 ] || xsim_fail "only $mapped grant(s) in use: persistent grants not kept"
xsim_log "guest 5 has $mapped grants mapped (ring page included)"

# Every unmap from now on waits; libxl detaches the disk.
touch "$hold"
printf 'write %s/online 0\nwrite %s/state 5\n' "$be" "$be" | xsim_xs
wait_log "domain 5 vbd3/51712 q0: unmaps still pending after [0-9.]+ s" 20
xsim_wait_key "$be/state" 6 || xsim_fail "the detached ring's unmaps kept the backend from Closed"
xsim_log "ok: Closed while the ring's unmaps are held"
rc=$(xsim_wait_exit a 20) || xsim_fail "guest 5 did not end after Closed"
[ "$rc" != 0 ] || xsim_fail "guest 5 found every grant released at Closed"
grep -q "the backend still has it mapped" "$XSIM_LOGDIR/a.log" ||
    xsim_fail "guest 5 did not see its grants still mapped at Closed"
xsim_log "ok: guest 5 saw its grants still mapped at Closed (the unmaps were pending)"

# Another guest is served meanwhile: the loop is not blocked.
fe_hold b 6 --vdev 51712 --workload verify --count 64 --bs 64k --qd 8 --hold 300 --close
xsim_log "ok: guest 6 completed its I/O while the unmaps were held"

# The same device attached again while its old unmaps are pending.
xenstore-rm "$be"
wait_log "domain 5 vbd3/51712: backend directory removed, device freed"
vbd3_disk 5 51712 "$imgA"
fe_hold a2 5 --vdev 51712 --workload verify --count 64 --bs 64k --qd 8 --seed 2 --hold 300 --close
xsim_log "ok: the device reattached and served I/O while its old unmaps were held"
! grep -q "unmapped after the ring stopped" "$XSIM_LOGDIR/xenblkd.log" ||
    xsim_fail "an unmap batch finished while unmaps were held"

# Released: the old ring's grants go (the ring page is not counted).
rm -f "$hold"
wait_log "domain 5 vbd3/51712 q0: $((mapped - 1)) persistent grant\(s\) in [0-9]+ mapping\(s\) unmapped after the ring stopped"
# Unmaps are fast again: Closed comes after them (--close checks that
# every grant ended at Closed).
fe_end a2
fe_end b

# Stopping the daemon while a detached ring's unmaps are held: it waits.
imgC=$(make_disk c.img 8)
vbd3_disk 6 51728 "$imgC"
fe_hold c 6 --vdev 51728 --workload verify --count 64 --bs 64k --qd 8 --seed 3 --hold 300
touch "$hold"
bec=$(be_dir vbd3 6 51728)
printf 'write %s/online 0\nwrite %s/state 5\n' "$bec" "$bec" | xsim_xs
xsim_wait_key "$bec/state" 6 20
kill -TERM "$(xsim_pid xenblkd)"
wait_log "waiting for the unmaps of 1 stopped ring\(s\)" 20
check "daemon still running while unmaps are held" xsim_running xenblkd
rm -f "$hold"
rc=$(xsim_wait_exit xenblkd 20) || xsim_fail "daemon did not exit"
[ "$rc" = 0 ] || xsim_fail "daemon exited $rc"
grep -Eq "domain 6 vbd3/51728 q0: [0-9]+ persistent grant\(s\) in [0-9]+ mapping\(s\) unmapped after the ring stopped" \
    "$XSIM_LOGDIR/xenblkd.log" || xsim_fail "the pending unmaps were not reported before exit"
! grep -Eq "unmap\(s\) failed|xengnttab_close with" "$XSIM_LOGDIR/xenblkd.log" ||
    xsim_fail "an unmap failed or a mapping was left"
xsim_log "ok: every grant unmapped before the daemon exited"
exit 0
