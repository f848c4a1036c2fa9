#!/bin/bash
# xenblkctl attach / detach against the production daemon (issue 8, 2):
# - attach writes what libxl writes (keys, values, permissions; the
#   harness' libxl mimic is the reference), in one transaction, and works
#   with no daemon running: the daemon takes the device when it starts;
# - a guest connects and verifies a workload; detach closes the device
#   (Closed, image closed, the guest's frontend closes cleanly) and removes
#   the nodes; the same disk attaches again;
# - errors: an existing device (6), no such domain or device (5), a bad
#   command line (2), no permission (4), a backend that never closes (7,
#   nodes removed anyway as libxl does);
# - the backend detach closes is never taken from the guest-writable
#   frontend directory.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
source "$top_srcdir/tests/daemon/matrix-lib.sh"
xsim_start
source "$top_srcdir/tests/daemon/xenblkctl-lib.sh"
o=$XSIM_TMP/out

xsim_add_domain 5
xsim_add_domain 6
img=$(make_disk a.img 16)
be=$(be_dir vbd3 5 51712)
fe=$(fe_dir 5 51712)
lx=/libxl/5/device/vbd/51712

# dump DOMID: the backend and frontend directories of DOMID's xvda with
# their permissions, the domid written as D, sorted.
dump() {
    { xenstore-ls -p "/local/domain/0/backend/vbd3/$1/51712"; xenstore-ls -p "/local/domain/$1/device/vbd/51712"; } |
        sed -E "s/\\b$1\\b/D/g; s/([nrwb])$1\\b/\\1D/g" | sort
}

# --- 1. no daemon yet: the nodes are libxl's ---------------------------
trace=$XSIM_LOGDIR/xenstored-trace.log
before=$(wc -l <"$trace")
ctl_expect 0 "$o" attach 5 xvda "$img"
# One transaction: every change xenblkctl asked for came between its
# TRANSACTION_START and the one TRANSACTION_END (xenstored's trace).
read -r changes outside ends < <(tail -n +$((before + 1)) "$trace" | awk '
    $1 == "IN" { c = $2; op = $5
        if (op == "TRANSACTION_START") tx[c] = 1
        else if (op == "TRANSACTION_END") { tx[c] = 0; ends++ }
        else if (op ~ /^(WRITE|MKDIR|SET_PERMS|RM)$/) { n++; if (!tx[c]) bad++ } }
    END { print n + 0, bad + 0, ends + 0 }')
[ "$changes" -ge 30 ] && [ "$outside" = 0 ] && [ "$ends" = 1 ] ||
    xsim_fail "attach: $changes changes, $outside outside a transaction, $ends transaction(s) committed"
xsim_log "ok: attach made its $changes changes in one transaction"
ctl_says "$o" "attached domain 5 device 51712 \\(xvda\\)"
ctl_says "$o" "does not answer on"
# The harness writes what libxl writes; xenblkctl runs no hotplug script
# (no "script" key) and leaves "protocol" to the guest.
xsim_add_disk vbd3 6 xvda "aio:$img" '!script' 'fe:!protocol'
dump 5 >"$XSIM_TMP/ctl.nodes"
dump 6 >"$XSIM_TMP/harness.nodes"
diff -u "$XSIM_TMP/harness.nodes" "$XSIM_TMP/ctl.nodes" >&2 ||
    xsim_fail "xenblkctl attach (+) and the libxl mimic (-) write different nodes or permissions"
xsim_log "ok: the same $(wc -l <"$XSIM_TMP/ctl.nodes") keys, values and permissions as the libxl mimic"
expect_key "$lx/backend" "$be"
expect_key "$lx/frontend" "$fe"
expect_key "$lx/params" "aio:$img"
xenstore-ls -p /libxl/5/device/vbd | grep -Eq '^51712 = "".*\(n0\)$' ||
    xsim_fail "$lx is not dom0's alone: $(xenstore-ls -p /libxl/5/device/vbd | head -n1)"
for p in "/local/domain/0/backend/vbd3/6" /local/domain/6/device/vbd/51712 /libxl/6; do xenstore-rm "$p"; done

# --- 2. the daemon starts and takes it; a guest connects ------------------
ctl_daemon --kinds vbd3,qdisk
xsim_wait_key "$be/state" 2 || xsim_fail "xenblkd did not take the attached device at start"
fe_hold fe1 5 --vdev xvda --workload verify --count 64 --qd 8 --hold 600
expect_key "$be/state" 4

# --- 3. attaching it again fails and changes nothing ---------------------
ctl_expect 6 "$o" attach 5 xvda "$img"
ctl_says "$o.err" "domain 5 already has device 51712 \\(xvda\\): $fe exists"
expect_key "$be/state" 4
expect_key "$be/online" 1

# --- 4. detach while the guest is connected -------------------------------
ctl_expect 0 "$o" detach 5 xvda
ctl_says "$o" "backend Connected -> Closed"
ctl_says "$o" "removed the frontend, backend and toolstack nodes"
fe_end fe1                       # it saw the close and released its grants
for p in "$be" "$fe" "$lx" /libxl/5 /local/domain/0/backend/vbd3/5; do expect_absent "$p"; done
wait_fds_to "$img" 0
wait_log "domain 5 vbd3/51712: backend directory removed, device freed"

# --- 5. round trip: the same disk again, with the daemon running ----------
ctl_expect 0 "$o" attach 5 51712 "$img" --mode r
ctl_says "$o" "xenblkd took the device: InitWait"
expect_key "$be/state" 2
expect_key "$be/mode" r
expect_key "$be/discard-enable" 0
fe fe2 5 --vdev xvda --workload read --count 32 --close
ctl_expect 0 "$o" detach 5 xvda
expect_absent "$be"

# --- 6. errors --------------------------------------------------------------
ctl_expect 5 "$o" detach 5 xvda
ctl_says "$o.err" "no such device: domain 5 has no disk 51712 \\(xvda\\)"
ctl_expect 5 "$o" attach 9 xvda "$img"
ctl_says "$o.err" "no domain 9"
expect_absent /local/domain/9
ctl_expect 1 "$o" attach 5 xvda "$XSIM_TMP/missing.img"
ctl_says "$o.err" "missing.img: No such file or directory"
ctl_expect 2 "$o" attach 5 xvda
ctl_says "$o.err" "expected DOMID DEVID PATH"
ctl_expect 2 "$o" attach 5 xvda "$img" --kind tap
ctl_expect 2 "$o" attach 5 xvda "$img" --mode rw
ctl_expect 2 "$o" detach 5 sda
ctl_expect 2 "$o" detach 5 xvda --timeout 0
expect_absent "$be"
# Not root: xenstored refuses (here its socket's directory does).
if command -v setpriv >/dev/null; then
    rc=0
    setpriv --reuid=65534 --regid=65534 --clear-groups "$XBC" detach 5 xvda >"$o" 2>&1 || rc=$?
    [ "$rc" = 4 ] || { cat "$o" >&2; xsim_fail "detach as uid 65534: exit $rc, want 4"; }
    ctl_says "$o" "permission denied connecting to xenstored"
    xsim_log "ok: detach as a user -> 4"
fi

# --- 7. a hostile guest cannot redirect detach ----------------------------
img2=$(make_disk b.img 16)
ctl_expect 0 "$o" attach 6 xvda "$img2"                  # the victim
be6=$(be_dir vbd3 6 51712)
xsim_wait_key "$be6/state" 2
ctl_expect 0 "$o" attach 5 xvdb "$img"
be5b=$(be_dir vbd3 5 51728)
xsim_wait_key "$be5b/state" 2
# Guest 5 owns its frontend directory and points "backend" at another
# backend directory of the same device number, as a driver domain's
# would be (here a decoy in domain 6's tree), then at guest 6's disk.
decoy=/local/domain/6/backend/vbd3/5/51728
xenstore-write "$decoy/state" 4 "$decoy/online" 1
xenstore-write "$(fe_dir 5 51728)/backend" "$decoy"
ctl_expect 0 "$o" detach 5 xvdb
ctl_says "$o" "detaching domain 5 device 51728 \\(xvdb\\): $be5b"
expect_absent "$be5b"
expect_key "$decoy/state" 4
expect_key "$decoy/online" 1
xenstore-rm /local/domain/6/backend
ctl_expect 0 "$o" attach 5 xvdb "$img"
xsim_wait_key "$be5b/state" 2
xenstore-write "$(fe_dir 5 51728)/backend" "$be6"
ctl_expect 0 "$o" detach 5 xvdb
expect_absent "$be5b"
expect_key "$be6/state" 2
expect_key "$be6/online" 1
# Without dom0's /libxl record, detach looks in our own backend dirs.
xenstore-rm /libxl/6
ctl_expect 0 "$o" detach 6 xvda
expect_absent "$be6"

# --- 8. a backend that never closes: nodes removed anyway, status 7 --------
ctl_expect 0 "$o" attach 6 xvdc "$img2" --kind qdisk
be6c=$(be_dir qdisk 6 51744)
xsim_wait_key "$be6c/state" 2
kill -STOP "$(xsim_pid xenblkd)"
ctl_expect 7 "$o" detach 6 xvdc --timeout 0.5
ctl_says "$o.err" "backend still Closing after 0.5 s \\(is xenblkd running\\?\\): removing the nodes anyway"
expect_absent "$be6c"
expect_absent "$(fe_dir 6 51744)"
kill -CONT "$(xsim_pid xenblkd)"
wait_log "domain 6 qdisk/51744: backend directory removed, device freed"
wait_fds_to "$img2" 0

# --- 9. a device no backend took (kind not served): removed at once -------
ctl_expect 7 "$o" attach 6 xvdd "$img2" --kind vbd --timeout 0.5
ctl_says "$o.err" "the backend is still Initialising after 0.5 s: does xenblkd serve kind vbd"
expect_key "$(be_dir vbd 6 51760)/state" 1
ctl_expect 0 "$o" detach 6 xvdd --timeout 30
ctl_says "$o" "no backend had taken the device"
expect_absent "$(be_dir vbd 6 51760)"

check "daemon still running" xsim_running xenblkd
exit 0
