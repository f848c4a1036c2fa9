#!/bin/bash
# Per-disk budgets (issue 10, gap 3; src/budget.h).
#
# A. A persistent map that fails (the simulated gnttab's fault injection,
#    tests/sim/CONTRACT.md: map_call with ENOMEM, what an exhausted
#    vm.max_map_count gives) degrades the pages of that call to grant copy
#    (a request's new pages are mapped by one call): counted in
#    persistent_grants.map_failures, and the guest's verified workload
#    passes with no error (before: the request failed).
# B. Guests asking for the maximum of everything (every queue offered,
#    order-4 rings, 256 indirect segments, persistent grants, 64 requests
#    of 1 MiB in flight) on three disks each: guest 5 never stops, guest 7
#    runs a verified workload.  Under small budgets (64 mappings and 2 MiB
#    per queue of memory per disk) every disk stays within its budgets
#    (sampled from the control socket while they run), pages beyond the
#    mapping budget go by copy (budget_full > 0), guest 7's data verify,
#    and guest 6 connects and completes a verified workload meanwhile.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
[ -x "$top_builddir/src/xenblkd" ] || xsim_skip "xenblkd not built"
XSIM_XENSTORED_TRACE=0 xsim_start

FE=$top_builddir/tests/frontend/xsim-blkfront
XSIM_CTL=$top_builddir/tests/sim/xsim-ctl
ctl() { python3 "$top_srcdir/tests/daemon/ctl.py" "$XSIM_TMP/control.sock" "$@"; }
stats() { ctl "{\"version\":1,\"command\":\"stats\"${1:+,\"domid\":$1}}"; }
MAPS=64

VDEVS=(51712 51728 51744)
for d in 5 7; do
    for v in "${VDEVS[@]}"; do xsim_add_disk vbd3 $d $v "aio:$(make_disk d$d-$v.img 64)"; done
done
xsim_add_disk vbd3 6 51712 "aio:$(make_disk d6.img 16)"
xsim_add_disk vbd3 8 51712 "aio:$(make_disk d8.img 16)"
# The queues the daemon offers (max-queues auto: the online CPUs, at most
# 64); the memory budget is set per queue so that the test means the same
# on any machine.
Q=$(getconf _NPROCESSORS_ONLN)
[ "$Q" -le 64 ] || Q=64
xsim_daemon --kinds vbd3 --log-level info --disk-grant-mappings $MAPS --disk-memory $((2 * Q))
for d in 5 6 7 8; do
    for v in "${VDEVS[@]}"; do
        xsim_exists "$(be_dir vbd3 $d $v)" || continue
        xsim_wait_key "$(be_dir vbd3 $d $v)/state" 2
        xsim_hotplug_connected vbd3 $d $v
    done
done
xsim_log "daemon offers $Q queue(s); budgets per disk: $MAPS mappings, $((2 * Q)) MiB"

# ---- A. a failed persistent map degrades to copy ----
# Map call 1 is guest 8's ring; map call 5 fails with ENOMEM: a request's
# new pages (mapped by one call, src/grant_cache.c) are copied instead,
# each counted as a map failure.
"$XSIM_CTL" fault map_call=5,map_call_errno=12
"$FE" --domid 8 --vdev 51712 --timeout 60 --workload verify --count 200 --hold 600 \
    --stats-json "$XSIM_TMP/fe8.json" >"$XSIM_LOGDIR/fe8.log" 2>&1 &
fe8=$!
end=$(xsim_deadline 60)
until grep -q "holding" "$XSIM_LOGDIR/fe8.log" 2>/dev/null; do
    xsim_past "$end" && xsim_fail "guest 8's workload did not finish"
    kill -0 $fe8 2>/dev/null || { cat "$XSIM_LOGDIR/fe8.log"; xsim_fail "guest 8's workload failed"; }
    sleep 0.1
done
[ "$("$XSIM_CTL" fired)" -ge 1 ] || xsim_fail "the map fault was not injected"
s8=$(stats 8)
failures=$(jq '[.devices[0].rings[].persistent_grants.map_failures] | add' <<<"$s8")
errors=$(jq '[.devices[0].rings[].errors | .io + .protocol + .grant] | add' <<<"$s8")
xsim_log "guest 8: $failures map failure(s) degraded to copy, $errors errors"
[ "$failures" -ge 1 ] || xsim_fail "want the failed map's page(s) counted, got $failures"
[ "$errors" = 0 ] || xsim_fail "a failed map made $errors request(s) fail"
kill $fe8 2>/dev/null || true
wait $fe8 2>/dev/null || true
"$XSIM_CTL" fault clear
xsim_log "ok: a failed persistent map was copied instead, the verified workload passed"

# ---- B. greedy guests next to a neighbour ----
GREEDY=(--queues "$Q" --ring-order 4 --max-indirect 256 --qd 64 --bs 1M)
vargs=()
for v in "${VDEVS[@]}"; do vargs+=(--vdev "$v"); done
# Guest 5 runs until the others are done (open-ended, not a count meant to
# outlast them); then the test stops it and it must end verified.
xsim_bg greedy5 "$FE" --domid 5 "${vargs[@]}" "${GREEDY[@]}" --timeout 600 \
    --workload verify --count 100000000 --stop-when "$XSIM_TMP/greedy5.stop"
for v in "${VDEVS[@]}"; do xsim_wait_key "$(be_dir vbd3 5 $v)/state" 4 30; done

# within_budgets DOMID: every disk of DOMID uses no more than its budgets.
within_budgets() {
    stats "$1" | jq -e '[.devices[] | .budget | (.grant_mappings.used <= .grant_mappings.limit)
                          and (.memory_bytes.used <= .memory_bytes.limit)
                          and (.fds.used <= .fds.limit)] | all' >/dev/null
}
# Guest 5's mappings reach the budget: from then on pages are copied.
end=$(xsim_deadline 60)
until [ "$(stats 5 | jq '[.devices[].rings[].persistent_grants.budget_full] | add')" -gt 0 ]; do
    xsim_past "$end" && xsim_fail "guest 5 never reached its mapping budget"
    within_budgets 5 || { stats 5 | jq '.devices[].budget'; xsim_fail "guest 5 over budget"; }
    sleep 0.1
done
within_budgets 5 || { stats 5 | jq '.devices[].budget'; xsim_fail "guest 5 over its budgets"; }
xsim_log "guest 5 at its mapping budget: $(stats 5 | jq -c '[.devices[].budget]')"

# Guest 7, as greedy, verified; guest 6 a plain verified workload.
"$FE" --domid 7 "${vargs[@]}" "${GREEDY[@]}" --timeout 300 --workload verify --count 16 \
    --close >"$XSIM_LOGDIR/greedy7.log" 2>&1 &
g7=$!
"$FE" --domid 6 --vdev 51712 --timeout 300 --workload verify --count 300 --close \
    >"$XSIM_LOGDIR/fe6.log" 2>&1 || { tail "$XSIM_LOGDIR/fe6.log"; xsim_fail "guest 6 failed"; }
xsim_log "ok: guest 6 connected and verified its workload next to the greedy guests"
while kill -0 $g7 2>/dev/null; do
    within_budgets 5 || xsim_fail "guest 5 over its budgets"
    within_budgets 7 2>/dev/null || xsim_fail "guest 7 over its budgets"
    sleep 0.2
done
wait $g7 || { tail "$XSIM_LOGDIR/greedy7.log"; xsim_fail "guest 7's greedy verified workload failed"; }
xsim_running greedy5 || xsim_fail "guest 5 stopped before the others were done: nothing proven"
s5=$(stats 5)
xsim_log "guest 5 (still running): $(jq -c '[.devices[] | {devid, budget,
    copied: ([.rings[].persistent_grants.budget_full] | add),
    slots: [.rings[].budget.slots], bounce: [.rings[].budget.bounce_limit]}]' <<<"$s5")"
xsim_log "host: $(stats | jq -c '.daemon.grant_mappings')"
[ "$(jq '[.devices[].rings[].errors | .io + .protocol + .grant] | add' <<<"$s5")" = 0 ] ||
    xsim_fail "guest 5's requests failed"
touch "$XSIM_TMP/greedy5.stop"
st=$(xsim_wait_exit greedy5 120) || xsim_fail "guest 5 did not stop when asked"
[ "$st" = 0 ] || { tail "$XSIM_LOGDIR/greedy5.log"; xsim_fail "guest 5's greedy verified workload failed (status $st)"; }
grep -q "workload verify: stopping after" "$XSIM_LOGDIR/greedy5.log" ||
    xsim_fail "guest 5's workload did not stop on the test's request"
xsim_running xenblkd || xsim_fail "daemon died"
xsim_log "ok: budgets held under greedy guests, every verified workload passed"
