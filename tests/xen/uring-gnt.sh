#!/bin/bash
# Real Xen, by hand (not in CI): can io_uring register gntdev-mapped grant
# pages as fixed buffers (IORING_REGISTER_BUFFERS) on the dom0 kernel, do
# O_DIRECT READ_FIXED/WRITE_FIXED through them with the right data, and
# what does gntdev do when such pages are unmapped while still registered?
# (tests/xen/README.md, "io_pin_pages").  A measurement: the checks only
# say that each question got an answer; the answers are in
# results/answers.txt and the test's log.  No guest: dom0 grants its own
# pages to itself (tests/xen/uring-gnt-probe.c).
# Tier 4.20 (Linux 6.12) here; uring-gnt-417.sh sources this file for 4.17.
# XBD_URING_MODES: the probe's modes, in order, one boot (default "io
# unmap"; "exit", "unmapexit" and "afterio" each need a boot of their
# own: a mode that unmaps while registered breaks dom0's gntdev pages for
# the next one).
XEN_TIER=${XEN_TIER:-4.20}
source "$top_srcdir/tests/xen/lib.sh"
xen_setup uring-gnt
# The wrapper's own name for the results directory (uring-gnt-417.results).
XEN_NAME=$(basename "$0" .sh)
MODES=${XBD_URING_MODES:-io unmap}
echo "$MODES" >"$XEN_SHARE/uring-modes"

# The probe, static: dom0's image has no compiler, and only kernel UAPI
# headers (linux-libc-dev) are used, no Xen or io_uring library.
if ! ${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Werror -static -o "$XEN_SHARE/uring-gnt-probe" \
        "$XEN_SRC/uring-gnt-probe.c" >"$XEN_RES/probe-build.log" 2>&1; then
    cat "$XEN_RES/probe-build.log"
    xen_die "building uring-gnt-probe failed"
fi
# The probe's own io_uring code, on the host first (anonymous memory).
probe_self=$(mktemp "$top_builddir/tests/xen/uring-gnt-self.XXXXXX")
dd if=/dev/zero of="$probe_self" bs=1M count=1 status=none
"$XEN_SHARE/uring-gnt-probe" selftest "$probe_self" >"$XEN_RES/probe-selftest.txt" 2>&1
echo "probe selftest on the host: rc=$?"
rm -f "$probe_self"

xen_boot "${XENBLKD_XEN_TIMEOUT:-1200}"
check_boot
show events.txt
check "the probe's own io_uring code works on the host" has probe-selftest.txt '^XBD-URING io result=ok'

# ev REGEX: the events matching (dom0 indents the probe's own lines).
ev() { sed 's/^ *//' "$XEN_RES/events.txt" 2>/dev/null | grep -E "$1"; }
{
    echo "tier $XEN_TIER: $(ev '^XBD-DOM0 uring kernel=' | sed 's/^XBD-DOM0 uring //; s/ t=.*//')"
    echo "Q0 self-grant map: $(ev '^XBD-URING step=(self-map|gntdev-|gntalloc-)' | head -1)"
    echo "Q1 register: $(ev '^XBD-URING step=register_buffers' | head -1)"
    echo "Q2 io (mode io):"
    sed -n 's/^XBD-URING \(op=.*\)/    \1/p' "$XEN_RES/probe-io.txt" 2>/dev/null
    for m in $MODES; do
        echo "mode $m:"
        sed -n 's/^XBD-URING \(step=\(munmap\|gntdev-unmap-ioctl\|unregister_buffers\|gntdev-close\|exit-registered\).*\)/    \1/p; s/^XBD-URING \(op=read_fixed-after-unmap.*\)/    \1/p; s/^XBD-URING \(mode=.* end.*\)/    \1/p' \
            "$XEN_RES/probe-$m.txt" 2>/dev/null
        # the checkpoints' dumps; of the polls after the exit, the count
        ev "^XBD-DOM0 uring (grants mode=$m |mode=$m )" | grep -v ' at=after-exit-' |
            sed 's/^XBD-DOM0 uring /    /'
        echo "    dmesg ($(grep -vc 'XBD-URING-MODE' "$XEN_RES/dmesg-$m.txt" 2>/dev/null) lines), its warnings counted:"
        grep -E 'WARNING|BUG|Bad page|still pending' "$XEN_RES/dmesg-$m.txt" 2>/dev/null |
            sed 's/^\[ *[0-9.]*\] //; s/PID: [0-9]*/PID: N/' | sort | uniq -c | sed 's/^/      /'
    done
} >"$XEN_RES/answers.txt"
show answers.txt

check "dom0 said which kernel it runs" has events.txt '^XBD-DOM0 uring kernel='
first=${MODES%% *}
check "Q0: the self-grant was mapped or refused, and said so" \
    has "probe-$first.txt" '^XBD-URING step=(self-map|gntdev-map-ioctl|gntdev-mmap|gntalloc-alloc) '
for m in $MODES; do
    check "mode $m: the probe exited or its hang was recorded" \
        has events.txt "^XBD-DOM0 uring mode=$m (exit=|HUNG)"
    check "mode $m: the grants left afterwards were counted" \
        has events.txt "^XBD-DOM0 uring mode=$m grants-left="
    has "probe-$m.txt" '^XBD-URING step=self-map rc=0' &&
        check "Q1 mode $m: register_buffers answered (rc or errno)" \
            has "probe-$m.txt" '^XBD-URING step=register_buffers .*rc='
    if [ "$m" = io ] && has probe-io.txt '^XBD-URING step=register_buffers .*rc=0 '; then
        check "Q2: every fixed read and write reported its data check" \
            test "$(grep -cE '^XBD-URING op=(read|write)_fixed .* data=' "$XEN_RES/probe-io.txt")" = 6
    fi
done
xen_finish
