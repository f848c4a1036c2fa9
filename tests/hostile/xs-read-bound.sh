#!/bin/bash
# A frontend's xenstore directory is the guest's to fill: the daemon reads
# only the keys its own offer can make use of.  A guest that writes 40
# queues' ring keys (16 ring-refs each) while the disk offers 2 queues,
# then asks to connect, is refused after reading its queue count, not its
# 680 ring keys: every evaluation of such a device (a guest rewriting its
# state node in a loop asks for one each time) would otherwise cost
# xenstored, which every guest and the toolstack share, 40 queues' reads.
# Counted in xenstored's own request trace; the refusal log line comes
# after the evaluation's reads, so the count is final by then.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
[ "${XSIM_XENSTORED_TRACE:-1}" != 0 ] || xsim_skip "needs xenstored's request trace"
xsim_start
Q=40
xsim_add_disk qdisk 5 xvda "aio:$(make_disk a.img 8)"
xsim_daemon --kinds qdisk --max-queues 2
be=$(be_dir qdisk 5 51712)
fe=$(fe_dir 5 51712)
xsim_wait_key "$be/state" 2
guest_start 5
expect_key "$be/multi-queue-max-queues" 2
{
    echo "write $fe/protocol x86_64-abi"
    echo "write $fe/multi-queue-num-queues $Q"
    echo "write $fe/ring-page-order 4"
    for ((q = 0; q < Q; q++)); do
        for ((i = 0; i < 16; i++)); do echo "write $fe/queue-$q/ring-ref$i $((100 + 16 * q + i))"; done
        echo "write $fe/queue-$q/event-channel $((10 + q))"
    done
} | xsim_xs
fe_state 5 51712 3
xsim_wait_key "$be/state" 5 || xsim_fail "not refused"
wait_log "refusing to connect: multi-queue-num-queues = $Q, we offer 1..2"
trace=$XSIM_LOGDIR/xenstored-trace.log
asked=$(grep -c "^IN .* READ ($fe/multi-queue-num-queues )" "$trace" || true)
queue_reads=$(grep -c "^IN .* READ ($fe/queue-" "$trace" || true)
check "the trace has the daemon's read of the queue count ($asked)" [ "$asked" -ge 1 ]
check "no queue's keys were read for a refused queue count ($queue_reads reads)" [ "$queue_reads" = 0 ]
exit 0
