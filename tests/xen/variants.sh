#!/bin/bash
# Real Xen: Linux blkfront with module parameters that change what it
# negotiates with xenblkd (persistent grants off, indirect descriptors off,
# one or two queues, ring page order 0 or 4); fio crc32c verify passes in
# each, the parameter took effect and the negotiated value is the lesser of
# what blkfront asked and what xenblkd offered.
source "$top_srcdir/tests/xen/lib.sh"
xen_setup variants
xen_boot "${XENBLKD_XEN_TIMEOUT:-720}"
check_boot
show events.txt

# key GUEST NAME: a key of the guest's vbd 51712 in the connected snapshot,
# on the backend (be) or frontend (fe) side.
key() {
    local side=$2 name=$3 re
    case $side in
        be) re="^/local/domain/0/backend/vbd/[0-9]+/51712/$name = " ;;
        fe) re="^/local/domain/[0-9]+/device/vbd/51712/$name = " ;;
    esac
    grep -E "$re" "$XEN_RES/$1/xenstore-connected.txt" 2>/dev/null | head -1 | sed 's/.* = "\([^"]*\)".*/\1/'
}
min() { [ "$1" -lt "$2" ] && echo "$1" || echo "$2"; }

for v in v-nopersist v-noindirect v-q1 v-q2 v-order0 v-order4; do
    echo "== $v: $(grep -h '^XBD-BOOTED' "$XEN_RES/$v/events.txt" 2>/dev/null)"
    echo "   $(blkfront_line $v xvda)"
    check "$v: guest created" has $v/xl-create.rc '^0$'
    check_verified $v xvda
done

check "feature_persistent=0 took effect" has v-nopersist/describe-xvda.txt '^param feature_persistent=N'
check "feature_persistent=0: persistent grants disabled" \
    has v-nopersist/describe-xvda.txt 'xvda: .*persistent grants: disabled'
# blkfront raises max_indirect_segments below BLKIF_MAX_SEGMENTS_PER_REQUEST
# (11) to 11 when it loads, which means no indirect descriptors: the
# parameter reads 11 after insmod ... max_indirect_segments=0.
check "max_indirect_segments=0 was passed to insmod" has v-noindirect/events.txt '^XBD-BOOTED .*blkfront=max_indirect_segments=0'
check "max_indirect_segments=0 took effect (blkfront's floor, 11)" has v-noindirect/describe-xvda.txt '^param max_indirect_segments=(0|11)$'
check "max_indirect_segments=0: indirect descriptors disabled" \
    has v-noindirect/describe-xvda.txt 'xvda: .*indirect descriptors: disabled'

check "max_queues=1 took effect" has v-q1/describe-xvda.txt '^param max_queues=1'
check "max_queues=1: one hardware queue" has v-q1/describe-xvda.txt '^hw_queues=1$'
offered=$(key v-q2 be multi-queue-max-queues)
echo "xenblkd offered multi-queue-max-queues=${offered:-none}"
want=$(min 2 "${offered:-1}")
check "max_queues=2 took effect" has v-q2/describe-xvda.txt '^param max_queues=2'
check "max_queues=2: $want hardware queue(s), min(asked, offered)" has v-q2/describe-xvda.txt "^hw_queues=$want\$"

check "max_ring_page_order=0 took effect" has v-order0/describe-xvda.txt '^param max_ring_page_order=0'
check "max_ring_page_order=0: a one-page ring" test "$(key v-order0 fe ring-page-order)" = "" -o "$(key v-order0 fe ring-page-order)" = 0
offered=$(key v-order4 be max-ring-page-order)
echo "xenblkd offered max-ring-page-order=${offered:-none}"
want=$(min 4 "${offered:-0}")
got=$(key v-order4 fe ring-page-order)
check "max_ring_page_order=4 took effect" has v-order4/describe-xvda.txt '^param max_ring_page_order=4'
check "max_ring_page_order=4: ring order $want, min(asked, offered) (got ${got:-none})" test "${got:-0}" = "$want"
check "xenblkd ran through all six guests" has events.txt "^XBD-DOM0 xenblkd alive after v-order0 v-order4"
xen_finish
