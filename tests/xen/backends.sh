#!/bin/bash
# Real Xen: Linux blkfront in a PV guest against kernel blkback, QEMU qdisk
# and xenblkd, in one boot: every disk passes fio crc32c verify (sequential
# and random writes, 4 KiB to 1 MiB), blkfront reports the features each
# backend offers, and one table compares IOPS and MiB/s.
source "$top_srcdir/tests/xen/lib.sh"
xen_setup backends
xen_boot "${XENBLKD_XEN_TIMEOUT:-1200}"
check_boot

show g-blkback/events.txt
echo "blkback xvda: $(blkfront_line g-blkback xvda)"
echo "qdisk   xvdb: $(blkfront_line g-blkback xvdb)"
check "blkback guest created" has g-blkback/xl-create.rc '^0$'
check_verified g-blkback xvda
check_verified g-blkback xvdb
check "blkback: persistent grants and indirect descriptors enabled" \
    has g-blkback/describe-xvda.txt 'xvda: .*persistent grants: enabled; indirect descriptors: enabled'
check "qdisk: blkfront connected (persistent grants disabled, as QEMU offers none)" \
    has g-blkback/describe-xvdb.txt 'xvdb: .*persistent grants: disabled'
perf_table g-blkback:xvda:blkback g-blkback:xvdb:qdisk@g-blkback
check "every benchmark run completed" hasnt g-blkback/events.txt '^XBD-PERF .* rc=[1-9]'
xen_finish
