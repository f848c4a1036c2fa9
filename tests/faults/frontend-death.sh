#!/bin/bash
# A guest killed (SIGKILL) with I/O in flight: its first write is held by
# the storage (fuse-hold.py under a loop device), the rest of a fill
# around it, when the guest process dies.  Then what the toolstack does
# for a dead domain (libxl's forced removal, as in xl destroy): in one
# transaction the frontend directory deleted and online=0, state=5 on the
# backend; the nodes removed once the backend is Closed.  (A safe removal,
# online=0 with the frontend's directory left, would wait for a frontend
# that can no longer close: remove.sh.)
# - While the write is held the device cannot finish closing (its pages
#   are still the target of that I/O): the backend stays Closing, and the
#   daemon serves guest 6 meanwhile
#   (a whole verified connect/workload/close cycle); the daemon keeps the
#   pages under the I/O mapped.
# - Released, the write completes, the device reaches Closed, and the
#   daemon keeps nothing of domain 5: no grant in use (xsim-ctl in-use),
#   every page it mapped unmapped (the simulation's counters), no mapping
#   or fd of the domain's files in the daemon, no fd to the loop device.
# - Guest 6 is still served afterwards.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
source "$top_srcdir/tests/faults/lib.sh"
fuse_requirements
xsim_start
fuse_disk d5 16 0              # the write at byte 0 can be held
ctl=$XSIM_TMP/d5.ctl
img6=$(make_disk g6.img 16)
xsim_daemon --kinds vbd3
pid=$(xsim_pid xenblkd)
be5=$(be_dir vbd3 5 51712)
vbd3_disk 5 51712 "$FUSE_DEV"
vbd3_disk 6 51712 "$img6"
fe g6a 6 --vdev 51712 --workload verify --count 100 --close

# daemon_holds_dom DOMID: mappings plus fds of the daemon that name the
# domain's simulated files (its memory and grant table: gntdev's share).
daemon_holds_dom() {
    local n f t
    n=$(grep -cE "/dom$1(/|\.dead-)" "/proc/$pid/maps" || true)
    for f in /proc/"$pid"/fd/*; do
        t=$(readlink "$f" 2>/dev/null) || continue
        [[ $t =~ /dom$1(/|\.dead-) ]] && n=$((n + 1))
    done
    echo "$n"
}

touch "$ctl/hold"
xsim_bg g5 "$XBD_FE" --domid 5 --vdev 51712 --workload fill --gen 1 --bs 64k --qd 32 --timeout 600
end=$(xsim_deadline 30)
until [ -e "$ctl/held" ]; do
    xsim_past "$end" && xsim_fail "the first write of guest 5 never reached the storage"
    xsim_running g5 || xsim_fail "guest 5 ended: $(tail -5 "$XSIM_LOGDIR/g5.log")"
    sleep 0.02
done
kill_guest g5
xsim_log "ok: guest 5 killed with its first write held in the storage"
check "the daemon has guest 5's write in flight" [ "$(ctl_stats_sum 5 "r['in_flight']")" -ge 1 ]
check "the daemon maps pages of domain 5" [ "$(daemon_holds_dom 5)" -gt 0 ]

# The toolstack tears the dead domain's disk down.
printf 'rm %s\nwrite %s/online 0\nwrite %s/state 5\n' "$(fe_dir 5 51712)" "$be5" "$be5" | xsim_xs
xsim_wait_key "$be5/state" 5 || xsim_fail "no Closing after online=0"
# Another guest is served while guest 5's write is held.
fe g6b 6 --vdev 51712 --workload verify --count 100 --seed 2 --close
expect_key "$be5/state" 5
check "the held write is still in the storage" [ ! -e "$ctl/released" ]
check "the pages under it are still mapped" [ "$(daemon_holds_dom 5)" -gt 0 ]

rm "$ctl/hold"
xsim_wait_key "$be5/state" 6 20 || xsim_fail "guest 5's device did not reach Closed once its write completed"
check "the held write completed in the storage" [ -e "$ctl/released" ]
wait_fds_to "$FUSE_DEV" 0
check "no grant of domain 5 in use" [ "$(in_use 5)" = 0 ]
eval "$("$XBD_CTL" stats 5 | tr '\n' ' ' | sed 's/\([a-z_]*\)=\([0-9]*\)/s_\1=\2;/g')"
check "pages of domain 5 were mapped ($s_pages_mapped)" [ "$s_pages_mapped" -gt 0 ]
check "every one was unmapped ($s_pages_unmapped)" [ "$s_pages_mapped" = "$s_pages_unmapped" ]
end=$(xsim_deadline 10)
until [ "$(daemon_holds_dom 5)" = 0 ]; do
    xsim_past "$end" && xsim_fail "the daemon still holds $(daemon_holds_dom 5) mapping(s)/fd(s) of domain 5"
    sleep 0.05
done
xsim_log "ok: the daemon holds no mapping and no fd of domain 5"
grep -q "domain 5 vbd3/51712: .*Closed" "$XSIM_LOGDIR/xenblkd.log" || xsim_fail "no Closed in the log"
xsim_remove_disk vbd3 5 51712 || xsim_fail "the toolstack could not remove guest 5's disk"
fe g6c 6 --vdev 51712 --workload verify --count 100 --seed 3 --close
check "daemon still running" xsim_running xenblkd
exit 0
