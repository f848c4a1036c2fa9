#!/bin/bash
# params formats: raw paths with or without aio:/file:/phy:/raw: are
# served; image formats and relative paths are refused with
# hotplug-status=error, hotplug-error and a log line naming the device,
# and the daemon carries on serving the others.
set -euo pipefail
source "$top_srcdir/tests/harness/env.sh"
source "$top_srcdir/tests/daemon/lib.sh"
xsim_start
xsim_daemon --kinds qdisk

declare -A good=(
    [51712]="$(make_disk plain.img 4)"
    [51728]="aio:$(make_disk aio.img 4)"
    [51744]="file:$(make_disk file.img 4)"
    [51760]="phy:$(make_disk phy.img 4)"
    [51776]="raw:$(make_disk raw.img 4)"
)
for id in "${!good[@]}"; do xsim_add_disk qdisk 3 "$id" "${good[$id]}"; done
for id in "${!good[@]}"; do
    be=$(be_dir qdisk 3 "$id")
    xsim_wait_key "$be/state" 2 || xsim_fail "params '${good[$id]}' not accepted"
    expect_absent "$be/hotplug-status"
    path=${good[$id]#*:}
    wait_fds_to "$path" 1
done
xsim_log "ok: every raw params format accepted"

# refused DEVID PARAMS MESSAGE-PATTERN [extra xsim_add_disk args]
refused() {
    local id=$1 params=$2 pat=$3 be err
    shift 3
    be=$(be_dir qdisk 4 "$id")
    xsim_add_disk qdisk 4 "$id" "$params" "$@"
    xsim_wait_key "$be/hotplug-status" error || xsim_fail "params '$params' not refused"
    err=$(xsim_read "$be/hotplug-error")
    [[ $err =~ $pat ]] || xsim_fail "hotplug-error for '$params' is '$err', want /$pat/"
    xsim_wait_key "$be/state" 5 || xsim_fail "refused device '$params' not Closing"
    wait_log "error: domain 4 qdisk/$id: .*$pat"
    xsim_log "ok: '$params' refused: $err"
}
refused 51712 "vhd:$XSIM_TMP/x.vhd" "unsupported disk format 'vhd'"
refused 51728 "qcow2:$XSIM_TMP/x.qcow2" "unsupported disk format 'qcow2'"
refused 51744 "disk.img" "not an absolute path"
refused 51760 "aio:relative.img" "not an absolute path"
refused 51776 "aio:$XSIM_TMP/missing.img" "cannot open .*missing.img: No such file"
refused 51792 "aio:$XSIM_TMP" "cannot open .*: Is a directory"
mkfifo "$XSIM_TMP/fifo"
refused 51840 "aio:$XSIM_TMP/fifo" "neither a regular file nor a block device"
refused 51808 "$(make_disk mode.img 1)" "unsupported mode 'x'" mode=x
refused 51824 "" "not an absolute path"
# The toolstack may still remove a refused device: it reaches Closed.
xsim_remove_disk qdisk 4 51712 || xsim_fail "refused device did not reach Closed on removal"
wait_log "domain 4 qdisk/51712: backend directory removed, device freed"

check "daemon still running" xsim_running xenblkd
for id in "${!good[@]}"; do expect_key "$(be_dir qdisk 3 "$id")/state" 2; done
exit 0
