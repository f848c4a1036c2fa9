#!/bin/bash
# Real Xen: xenblkd through the life events of guests, one boot.
#   6. two guests at once, each with its own disk, both verifying;
#   5. xl destroy of a guest with I/O in flight: xenblkd cleans up, logs it
#      and keeps serving the other guest;
#   4. xl block-attach / block-detach of a second disk while the first is
#      under I/O: nothing stays mapped (no "still in use" in the guest);
#   7. SIGTERM with an idle guest attached: a handover (man xenblkd,
#      RESTARTING): the daemon exits 0, the disk stays Connected, the
#      restarted daemon resumes it and the guest verifies it again.
source "$top_srcdir/tests/xen/lib.sh"
xen_setup lifecycle
xen_boot "${XENBLKD_XEN_TIMEOUT:-900}"
check_boot
show events.txt
for g in g1 g2 g3; do show $g/events.txt; done

# note TEXT: dom0 recorded this step's outcome.
note_is() { has events.txt "^XBD-DOM0 $1 t="; }

echo "== scenario 6: two guests at once"
check "g1 created" has g1/xl-create.rc '^0$'
check "g2 created" has g2/xl-create.rc '^0$'
check "g2 verified its disk while g1 was running" has g2/events.txt '^XBD-VERIFY disk=xvda rc=0'
check "g1 verified its disk while g2 was running" has g1/events.txt '^XBD-ROUND n=1 disk=xvda rc=0'

echo "== scenario 5: xl destroy with I/O in flight"
g2id=$(sed -n 's/^XBD-DOM0 destroy g2 (domid \([0-9]*\)).*/\1/p' "$XEN_RES/events.txt")
check "g2 was destroyed with I/O in flight" note_is 'destroyed g2 rc=0'
check "g2's backend directory was removed (xenblkd reached Closed for libxl)" note_is 'g2 backend dir removed'
check "xenblkd survived the destroy" note_is 'xenblkd alive after destroy of g2'
check "xenblkd logged the destroyed guest's device" \
    grep -qE "vbd/${g2id:-none}/51712|dom(ain|id)?[ =]?${g2id:-none}\b" "$XEN_RES/xenblkd.log"
check "g1 went on verifying after the destroy" note_is 'g1 did two more rounds after destroy of g2'

echo "== scenario 4: block-attach / block-detach under I/O"
check "xl block-attach succeeded" note_is 'block-attach rc=0'
check "g1 verified the hot-plugged xvdb" has g1/events.txt '^XBD-VERIFY disk=xvdb rc=0'
check "xl block-detach succeeded" note_is 'block-detach rc=0'
check "xvdb left the guest with no grant still in use" has g1/events.txt '^XBD-GONE disk=xvdb still_in_use=0'
check "xvdb's backend directory is gone after detach" hasnt g1/xenstore-detached.txt 'backend/vbd/[0-9]+/51728'
check "g1 went on verifying xvda after the detach" note_is 'g1 did a round after detach'
check "no verify round of g1 failed" hasnt g1/events.txt '^XBD-ROUND .* rc=[1-9]'
check "g1 shut down cleanly (xl shutdown -w)" note_is 'shutdown g1 rc=0'
check "g1 stopped its I/O and powered off" has g1/events.txt '^XBD-DONE 0'
check "g1's dmesg has no grant still in use" hasnt g1/dmesg.txt 'still in use'
check "xenblkd held no grant mapping once g1 and g2 were gone (destroy, detach, shutdown)" \
    note_is 'gntdev maps with no guest left: 0'

echo "== scenario 7: SIGTERM with an idle guest, then restart (handover)"
check "g3 verified and went idle" has g3/events.txt '^XBD-ROUND n=1 disk=xvda rc=0'
# Idle purge (--persistent-grant-idle 8): counts are xenblkd's gntdev mmaps.
maps_note() { sed -n "s/^XBD-DOM0 gntdev maps $1: \([0-9]*\).*/\1/p" "$XEN_RES/events.txt" | head -1; }
busy=$(maps_note 'after verify'); idle=$(maps_note 'after idle')
rings=$(sed -n 's/^XBD-DOM0 gntdev maps after idle: [0-9]* rings: \([0-9]*\).*/\1/p' "$XEN_RES/events.txt" | head -1)
again=$(maps_note 'after the second verify')
echo "gntdev mappings: after verify ${busy:-?}, idle ${idle:-?} (rings ${rings:-?}), after the second verify ${again:-?}"
check "xenblkd held persistent grants after g3's verify" test "${busy:-0}" -gt "${rings:-0}"
check "unused persistent grants were unmapped, the rings stayed" test -n "$idle" -a "${idle:-x}" = "${rings:-y}"
check "blkfront verified again after xenblkd dropped its persistent grants" \
    has g3/events.txt '^XBD-ROUND n=2 disk=xvda rc=0'
check "xenblkd mapped them again for the second verify" test "${again:-0}" -gt "${rings:-0}"
check "SIGHUP after growing g3's image: xenblkd published 192 MiB" \
    note_is 'g3 sectors after SIGHUP: 393216'
check "Linux blkfront took the new capacity online" has g3/dmesg.txt 'Setting capacity to 393216'
grep -h 'capacity' "$XEN_RES/g3/dmesg.txt" 2>/dev/null | sed 's/^ */    guest: /' | head -3
check "xenblkd exited 0 on SIGTERM with an idle guest attached" \
    test "$(sed -n 1p "$XEN_RES/xenblkd.exit" 2>/dev/null)" = 0
# SIGTERM is a handover since the ring journal (issue 9): the device stays
# Connected through the stop and the restart, and the guest's next verify
# round passes.  (Before it, SIGTERM closed the disk and Linux 6.1 blkfront,
# which leaves Closed only from Initialising, never took it back.)
check "xenblkd handed g3's disk over on SIGTERM" \
    grep -qE "vbd/51712: handed over in state Connected" "$XEN_RES/xenblkd.log"
check "the idle guest's disk stayed Connected (4) through SIGTERM" note_is 'g3 backend state after SIGTERM: 4'
check "blkfront stayed Connected (4) through SIGTERM" note_is 'g3 frontend state after SIGTERM: 4'
check "the restarted xenblkd resumed g3's disk" \
    grep -qE "vbd/51712: resumed in state Connected" "$XEN_RES/xenblkd.log"
check "after the restart the backend is still Connected (4)" note_is 'g3 backend state after restart: 4'
check "blkfront is still Connected (4) after the restart" \
    has g3/xenstore-after-restart.txt '^/local/domain/[0-9]+/device/vbd/51712/state = "4"'
check "the guest verified its disk again after the restart (round 3)" \
    has g3/events.txt '^XBD-ROUND n=3 disk=xvda rc=0'
check "the restarted xenblkd closed the device for libxl at xl shutdown" \
    grep -qE 'vbd/51712: state Connected -> Clos' "$XEN_RES/xenblkd.log"
check "g3 shut down cleanly after the restart" note_is 'shutdown g3 rc=0'
check "the restarted xenblkd exited 0 on SIGTERM" \
    test "$(sed -n 2p "$XEN_RES/xenblkd.exit" 2>/dev/null)" = 0
echo "--- xenblkd log (last 40 lines)"; tail -40 "$XEN_RES/xenblkd.log" 2>/dev/null | sed 's/^/    /'
xen_finish
