# tests/harness/env.sh - a private simulated Xen host for one shell test.
# shellcheck shell=bash
#
# Source it from a test (bash), then call xsim_start.  Everything the test
# starts through these functions lives in one private directory
# (mktemp -d) and is killed, and the directory removed, when the test's
# shell exits, whatever the reason (failure, `set -e`, signal).
#
#   source "$top_srcdir/tests/harness/env.sh"
#   xsim_start
#   xsim_add_disk qdisk 5 51712 "aio:$XSIM_TMP/disk.img"
#   xsim_daemon --kinds qdisk
#   xsim_wait_key /local/domain/0/backend/qdisk/5/51712/state 2
#
# Do not install your own EXIT trap after xsim_start: use xsim_on_exit CMD.
# See tests/harness/README.md for the full list of functions and variables.

# ---- locations ------------------------------------------------------------
# make check exports these (AM_TESTS_ENVIRONMENT); by hand they default to
# an in-tree build.
: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${XENSTORED:=/usr/lib/xen-4.17/bin/xenstored}"
: "${QEMU_XEN:=/usr/libexec/xen-qemu-system-i386}"
export top_srcdir top_builddir XENSTORED QEMU_XEN

XSIM_HARNESS_BIN=$top_builddir/tests/harness
XSIM_SIM_LIB=$top_builddir/tests/sim/lib

# ---- state (one simulated host per shell) -----------------------------------
XSIM_TMP=            # private directory, "" when no host is running
XSIM_NAMES=()        # names given to xsim_bg, in start order
XSIM_ON_EXIT=()      # commands run first at cleanup (tests' own cleanup)
XSIM_STOP_HOOKS=()   # graceful stops run before processes are killed (QMP quit)
XSIM_CLEANING=0

# ---- messages ---------------------------------------------------------------
xsim_log() { printf '[xsim %s] %s\n' "$(date +%T.%3N)" "$*" >&2; }

# xsim_fail MSG: fail the test (exit 1; cleanup dumps the logs).
xsim_fail() { xsim_log "FAIL: $*"; exit 1; }

# xsim_skip MSG: the test cannot run here (exit 77).
xsim_skip() { xsim_log "SKIP: $*"; exit 77; }

# xsim_on_exit CMD...: run CMD (one string, eval'd) at cleanup, before the
# simulated host is torn down.  Runs even when the test fails.
xsim_on_exit() { XSIM_ON_EXIT+=("$*"); }

# ---- processes --------------------------------------------------------------
# Every background process runs in its own session (setsid) behind a small
# bash wrapper that records the pid of the real command and its exit status.
# Stopping one signals its whole process group, so grandchildren die too;
# the final sweep also kills anything still carrying this host's XSIM_TAG
# in its environment (a process that escaped its group, e.g. by forking
# into a new session).

# The wrapper: $1 is the path prefix of its files in $XSIM_TMP/run:
# .wpid (the wrapper = session and process group leader), .pid (the
# command), .status (its exit status); $2... is the command.  The wrapper
# ignores the signals its group gets (the command gets them, back at their
# defaults): a trapped one would interrupt `wait`, and the command, once
# reaped by bash in that window, would leave the interrupted wait's 128+N
# as its status (a daemon's handover, exit 0, recorded as 143).  A command
# that is an exported function runs in that subshell (and may exec).
# shellcheck disable=SC2016
XSIM_WRAPPER='echo "$$" > "$1.wpid"
trap "" TERM INT HUP
( trap - TERM INT HUP; declare -F "$2" >/dev/null || exec "${@:2}"; "${@:2}" ) & c=$!
echo "$c" > "$1.pid"
wait "$c"; rc=$?
echo "$rc" > "$1.status"
exit "$rc"'

xsim__check_name() {
    [[ $1 =~ ^[A-Za-z0-9_.-]+$ ]] || xsim_fail "bad process name '$1'"
    [ ! -e "$XSIM_TMP/run/$1.wpid" ] || xsim_fail "process name '$1' already used"
}

# xsim_bg NAME CMD...: start CMD in the background, stdout+stderr appended
# to $XSIM_LOGDIR/NAME.log, stdin /dev/null; it is stopped at cleanup.
# Sets XSIM_PID to the command's pid.
xsim_bg() {
    local name=$1 i
    shift
    [ -n "$XSIM_TMP" ] || xsim_fail "xsim_bg before xsim_start"
    [ $# -gt 0 ] || xsim_fail "xsim_bg $name: no command"
    xsim__check_name "$name"
    XSIM_TAG=$XSIM_TMP setsid bash -c "$XSIM_WRAPPER" xsim-wrap "$XSIM_TMP/run/$name" "$@" \
        </dev/null >>"$XSIM_LOGDIR/$name.log" 2>&1 &
    # Not a job of the test's shell: a bare `wait` in a test must not wait
    # for it, and bash must not report its death.
    disown "$!" 2>/dev/null || true
    XSIM_NAMES+=("$name")
    # The daemon under test, however the test starts it (xsim_daemon, a
    # wrapper, by hand): its stop at cleanup is checked (xsim__check_daemon).
    for i in "$@"; do
        [ "$i" != "$top_builddir/src/xenblkd" ] || { : > "$XSIM_TMP/run/$name.daemon"; break; }
    done
    for ((i = 0; i < 500; i++)); do
        [ -s "$XSIM_TMP/run/$name.pid" ] && [ -s "$XSIM_TMP/run/$name.wpid" ] && break
        sleep 0.01
    done
    [ -s "$XSIM_TMP/run/$name.pid" ] || xsim_fail "xsim_bg $name: did not start"
    XSIM_PID=$(<"$XSIM_TMP/run/$name.pid")
}

# xsim_pid NAME: print the pid of the command started as NAME.
xsim_pid() { cat "$XSIM_TMP/run/$1.pid"; }

# xsim_running NAME: true while the command started as NAME runs.
xsim_running() {
    [ -s "$XSIM_TMP/run/$1.pid" ] && [ ! -e "$XSIM_TMP/run/$1.status" ] &&
        kill -0 "$(<"$XSIM_TMP/run/$1.pid")" 2>/dev/null
}

# xsim_wait_exit NAME [TIMEOUT]: wait for NAME to end; print its exit status
# (128+N when killed by signal N).  Returns 1 on timeout (default 10 s).
xsim_wait_exit() {
    local name=$1 timeout=${2:-10} end
    end=$(xsim__deadline "$timeout")
    while [ ! -s "$XSIM_TMP/run/$name.status" ]; do
        xsim__past "$end" && { xsim_log "$name still running after ${timeout}s"; return 1; }
        if ! xsim__group_alive "$name"; then
            # The wrapper itself was killed (SIGKILL): no status file.
            [ -s "$XSIM_TMP/run/$name.status" ] || echo 137 > "$XSIM_TMP/run/$name.status"
            break
        fi
        sleep 0.02
    done
    cat "$XSIM_TMP/run/$name.status"
}

# xsim_alive PID: true if PID runs (a zombie does not: this machine's init
# may take its time to reap orphans).
xsim_alive() {
    local line
    kill -0 "$1" 2>/dev/null || return 1
    { read -r line < "/proc/$1/stat"; } 2>/dev/null || return 1
    line=${line##*) }
    [ "${line%% *}" != Z ]
}

# True while a process of NAME's process group runs (zombies excepted).
xsim__group_alive() {
    local w f line state ppid pgrp
    w=$(cat "$XSIM_TMP/run/$1.wpid" 2>/dev/null) || return 1
    [ -n "$w" ] && kill -0 -- "-$w" 2>/dev/null || return 1
    for f in /proc/[0-9]*/stat; do
        { read -r line < "$f"; } 2>/dev/null || continue
        read -r state ppid pgrp _ <<<"${line##*) }"
        [ "$pgrp" = "$w" ] && [ "$state" != Z ] && return 0
    done
    return 1
}

# xsim_kill NAME [SIGNAL] [TIMEOUT]: signal NAME's process group (default
# TERM), wait for it to end (default 10 s, then SIGKILL); print the status.
xsim_kill() {
    local name=$1 sig=${2:-TERM} timeout=${3:-10} w st i run=$XSIM_TMP/run/$1 check=0 killed=0
    w=$(cat "$run.wpid" 2>/dev/null) || xsim_fail "xsim_kill: no process '$name'"
    # The cleanup (XSIM_CLEANING) stopping a running daemon with SIGTERM
    # leaves the outcome in NAME.cleanup for xsim_stop to check, whoever
    # calls this (xsim_stop itself or a test's xsim_on_exit hook).
    if [ "$XSIM_CLEANING" = 1 ] && [ -e "$run.daemon" ] && [[ ${sig#SIG} == TERM || $sig == 15 ]] &&
        [ ! -e "$run.status" ] && xsim_alive "$(cat "$run.pid" 2>/dev/null)"; then
        check=1
    fi
    kill -s "$sig" -- "-$w" 2>/dev/null
    # A stopped process (a test's SIGSTOP) acts on the signal only once
    # continued: without this it would wait out the timeout for SIGKILL.
    kill -CONT -- "-$w" 2>/dev/null
    if ! st=$(xsim_wait_exit "$name" "$timeout"); then
        xsim_log "$name ignored SIG$sig for ${timeout}s: SIGKILL"
        kill -KILL -- "-$w" 2>/dev/null
        killed=1
        st=$(xsim_wait_exit "$name" 5) || st=137
    fi
    [ "$check" = 0 ] || echo "$st $killed $timeout" > "$run.cleanup"
    # Children the command left behind in its group get 1 s, then SIGKILL.
    for ((i = 0; i < 50; i++)); do
        xsim__group_alive "$name" || break
        sleep 0.02
    done
    kill -KILL -- "-$w" 2>/dev/null
    echo "$st"
}

# xsim_deadline SECONDS: print a deadline (ms since the epoch) SECONDS from
# now; xsim_past DEADLINE: true once it has passed.  For polling loops:
#   end=$(xsim_deadline 10); until cond; do xsim_past $end && xsim_fail ...; sleep 0.05; done
xsim_deadline() { echo $(( $(date +%s%N) / 1000000 + ${1%.*} * 1000 )); }
xsim_past() { [ $(( $(date +%s%N) / 1000000 )) -ge "$1" ]; }
# Older names, used by tests written before the public ones existed.
xsim__deadline() { xsim_deadline "$@"; }
xsim__past() { xsim_past "$@"; }
# xsim_note_slow DEADLINE TIMEOUT WHAT: after a wait that succeeded, say so
# when it used more than half its bound (grep the logs for "slow wait"):
# the test passed, but a busier host could make it fail.
xsim_note_slow() {
    local used=$(( $(date +%s%N) / 1000000 - $1 + ${2%.*} * 1000 ))
    if (( used * 2 > ${2%.*} * 1000 )); then
        xsim_log "slow wait: $3 took ${used} ms of its ${2}s bound"
    fi
    return 0
}

# ---- xenstore helpers ---------------------------------------------------------

# xsim_read PATH: print the value of PATH (fails if absent).
xsim_read() { xenstore-read "$1"; }

# xsim_write PATH VALUE [PATH VALUE...]: write (one transaction).
xsim_write() { xenstore-write "$@"; }

# xsim_exists PATH: true if the node exists.
xsim_exists() { xenstore-exists "$1" 2>/dev/null; }

# xsim_wait_key PATH VALUE [TIMEOUT]: wait until PATH reads VALUE (default
# 10 s).  Returns 1 on timeout, saying what PATH held.
xsim_wait_key() {
    local path=$1 want=$2 timeout=${3:-10} end got
    end=$(xsim__deadline "$timeout")
    while :; do
        if got=$(xenstore-read "$path" 2>/dev/null) && [ "$got" = "$want" ]; then
            xsim_note_slow "$end" "$timeout" "$path = '$want'"
            return 0
        fi
        if xsim__past "$end"; then
            xsim_log "timeout (${timeout}s): $path is '${got:-<absent>}', want '$want'"
            return 1
        fi
        sleep 0.05
    done
}

# xsim_wait_gone PATH [TIMEOUT]: wait until PATH no longer exists.
xsim_wait_gone() {
    local path=$1 timeout=${2:-10} end
    end=$(xsim__deadline "$timeout")
    while xenstore-exists "$path" 2>/dev/null; do
        if xsim__past "$end"; then
            xsim_log "timeout (${timeout}s): $path still exists"
            return 1
        fi
        sleep 0.05
    done
    xsim_note_slow "$end" "$timeout" "$path gone"
}

# xsim_xs: run tests/harness/xsim-xs (stdin: mkdir/write/rm/chmod lines, all
# applied in one transaction).
xsim_xs() { "$XSIM_HARNESS_BIN/xsim-xs"; }

# ---- domains and disks (what libxl writes) ---------------------------------------

# Backend domain of the simulated host (the daemon runs in dom0).
: "${XSIM_BACKEND_DOMID:=0}"

# xsim_vdev_to_devid NAME|NUMBER: print the numeric device id libxl uses
# (xvda = 51712; xvdq and beyond use the extended encoding).
xsim_vdev_to_devid() {
    local v=$1 letters n=0 i c part=0
    if [[ $v =~ ^[0-9]+$ ]]; then echo "$v"; return 0; fi
    [[ $v =~ ^xvd([a-z]+)([0-9]*)$ ]] || { xsim_log "unsupported vdev '$v'"; return 1; }
    letters=${BASH_REMATCH[1]}
    [ -n "${BASH_REMATCH[2]}" ] && part=${BASH_REMATCH[2]}
    for ((i = 0; i < ${#letters}; i++)); do
        c=$(printf '%d' "'${letters:i:1}")
        n=$(( n * 26 + c - 96 ))
    done
    n=$((n - 1))
    if [ "$n" -lt 16 ] && [ "$part" -lt 16 ]; then
        echo $(( (202 << 8) | (n << 4) | part ))
    else
        echo $(( (1 << 28) | (n << 8) | part ))
    fi
}

# xsim_devid_to_vdev DEVID: print the xvd name of a numeric device id.
xsim_devid_to_vdev() {
    local id=$1 disk part name=""
    if (( (id >> 8) == 202 )); then
        disk=$(( (id >> 4) & 15 )); part=$(( id & 15 ))
    elif (( id & (1 << 28) )); then
        disk=$(( (id >> 8) & 0xfffff )); part=$(( id & 255 ))
    else
        echo "xvd?$id"; return 0
    fi
    disk=$((disk + 1))
    while [ "$disk" -gt 0 ]; do
        disk=$((disk - 1))
        name=$(printf "\\$(printf '%03o' $((97 + disk % 26)))")$name
        disk=$((disk / 26))
    done
    [ "$part" -gt 0 ] && name=$name$part
    echo "xvd$name"
}

# xsim_add_domain DOMID [NAME] [UUID]: create /local/domain/DOMID as libxl
# does when it builds a domain (owned by dom0, readable by the guest; the
# guest owns data/), unless it exists, with vm=/vm/UUID (default one made
# of DOMID; the two domains of a local migration share one).
xsim_add_domain() {
    local d=$1 name=${2:-guest$1} p=/local/domain/$1 uuid
    uuid=${3:-$(printf '00000000-0000-4000-8000-%012x' "$1")}
    xenstore-exists "$p/domid" 2>/dev/null && return 0
    xsim_xs <<EOF
mkdir /vm/$uuid
chmod /vm/$uuid n0 r$d
write /vm/$uuid/uuid $uuid
write /vm/$uuid/name $name
mkdir $p
chmod $p n0 r$d
write $p/vm /vm/$uuid
write $p/name $name
write $p/domid $d
mkdir $p/device
chmod $p/device n0 r$d
mkdir $p/control
chmod $p/control n0 r$d
mkdir $p/data
chmod $p/data n$d
EOF
}

# xsim_add_disk KIND DOMID DEVID PARAMS [MODE] [KEY=VALUE ...]
#   KIND   backend kind: vbd3, qdisk or vbd
#   DEVID  numeric device id (51712) or a name (xvda)
#   PARAMS the backend's params node (aio:/path for vbd3/qdisk, a path for vbd)
#   MODE   r or w (default w)
#   KEY=VALUE     extra or replaced backend key;   !KEY removes a default one
#   fe:KEY=VALUE  the same for the frontend dir;   fe:!KEY
# Writes, in one transaction like libxl's device_disk_add(), the backend
# dir /local/domain/0/backend/KIND/DOMID/DEVID (owner dom0, guest may read)
# and the frontend dir /local/domain/DOMID/device/vbd/DEVID (owner guest,
# dom0 may read), both in state 1, plus libxl's own /libxl/DOMID record.
xsim_add_disk() {
    [ $# -ge 4 ] || xsim_fail "usage: xsim_add_disk KIND DOMID DEVID PARAMS [r|w] [KEY=VALUE...]"
    local kind=$1 domid=$2 devid params=$4 mode=w bdom=$XSIM_BACKEND_DOMID
    devid=$(xsim_vdev_to_devid "$3") || xsim_fail "xsim_add_disk: bad device '$3'"
    shift 4
    if [ $# -gt 0 ] && [[ $1 == r || $1 == w ]]; then mode=$1; shift; fi
    local be=/local/domain/$bdom/backend/$kind/$domid/$devid
    local fe=/local/domain/$domid/device/vbd/$devid
    local -A bk=() fk=()
    local -a border=() forder=()
    local k a script="" type
    case $kind in
        vbd)   type=phy; script=/etc/xen/scripts/block ;;
        vbd3)  type=vbd3; script=/etc/xen/scripts/block-tap ;;
        qdisk) type=qdisk ;;
        *)     xsim_fail "xsim_add_disk: unknown kind '$kind'" ;;
    esac
    # Defaults, in libxl's order.
    bk[params]=$params; border+=(params)
    [ -n "$script" ] && { bk[script]=$script; border+=(script); }
    for k in frontend frontend-id online removable bootable state dev type mode device-type discard-enable; do
        border+=("$k")
    done
    bk[frontend]=$fe; bk[frontend-id]=$domid; bk[online]=1; bk[removable]=0
    bk[bootable]=1; bk[state]=1; bk[dev]=$(xsim_devid_to_vdev "$devid")
    bk[type]=$type; bk[mode]=$mode; bk[device-type]=disk; bk[discard-enable]=1
    [ "$kind" = vbd3 ] && { bk[specification]=xen; border+=(specification); }
    for k in backend backend-id state virtual-device device-type trusted protocol; do
        forder+=("$k")
    done
    fk[backend]=$be; fk[backend-id]=$bdom; fk[state]=1; fk[virtual-device]=$devid
    fk[device-type]=disk; fk[trusted]=1; fk[protocol]=x86_64-abi
    for a in "$@"; do
        if [[ $a == fe:* ]]; then xsim__kv fk forder "${a#fe:}"; else xsim__kv bk border "$a"; fi
    done
    xsim_add_domain "$domid" || xsim_fail "xsim_add_disk: cannot create domain $domid"
    {
        echo "rm $fe"
        echo "mkdir $fe"
        echo "chmod $fe n$domid r$bdom"
        for k in "${forder[@]}"; do [[ -v "fk[$k]" ]] && echo "write $fe/$k ${fk[$k]}"; done
        echo "rm $be"
        echo "mkdir $be"
        echo "chmod $be n$bdom r$domid"
        for k in "${border[@]}"; do [[ -v "bk[$k]" ]] && echo "write $be/$k ${bk[$k]}"; done
        echo "write /libxl/$domid/device/vbd/$devid/frontend $fe"
        echo "write /libxl/$domid/device/vbd/$devid/backend $be"
    } | xsim_xs || xsim_fail "xsim_add_disk $kind $domid $devid: xenstore transaction failed"
}

# xsim__kv MAP ORDER ARG: apply one KEY=VALUE or !KEY to the named
# associative array MAP, remembering new keys' order in array ORDER.
xsim__kv() {
    local -n m=$1 o=$2
    local a=$3 k
    if [[ $a == '!'* ]]; then
        unset "m[${a#!}]"
    elif [[ $a == *=* ]]; then
        k=${a%%=*}
        [[ -v "m[$k]" ]] || o+=("$k")
        m[$k]=${a#*=}
    else
        xsim_fail "xsim_add_disk: bad extra argument '$a'"
    fi
}

# xsim_hotplug_connected KIND DOMID DEVID: what the hotplug script writes
# when it succeeded (hotplug-status=connected).
xsim_hotplug_connected() {
    xenstore-write "/local/domain/$XSIM_BACKEND_DOMID/backend/$1/$2/$(xsim_vdev_to_devid "$3")/hotplug-status" connected
}

# xsim_remove_disk KIND DOMID DEVID [TIMEOUT]: what libxl does to remove a
# disk: online=0 and state=5 (Closing; not if the backend is already
# Closed) in one transaction, wait (default
# 10 s, as libxl) for the backend to reach Closed (6) or remove its
# directory itself, then delete the
# frontend, backend and /libxl nodes (and empty parents) in one
# transaction.  The nodes are deleted even on timeout (libxl forces the
# removal) but then it returns 1.
xsim_remove_disk() {
    local kind=$1 domid=$2 devid timeout=${4:-10} rc=0 bdom=$XSIM_BACKEND_DOMID
    devid=$(xsim_vdev_to_devid "$3") || xsim_fail "xsim_remove_disk: bad device '$3'"
    local be=/local/domain/$bdom/backend/$kind/$domid/$devid
    local fe=/local/domain/$domid/device/vbd/$devid
    xenstore-exists "$be" 2>/dev/null || { xsim_log "xsim_remove_disk: $be does not exist"; return 1; }
    # Like libxl: a backend already Closed keeps its state.
    if [ "$(xenstore-read "$be/state" 2>/dev/null)" = 6 ]; then
        printf 'write %s/online 0\n' "$be" | xsim_xs || return 1
    else
        printf 'write %s/online 0\nwrite %s/state 5\n' "$be" "$be" | xsim_xs || return 1
    fi
    # Closed (6), or gone: a backend that removes its own directory once
    # Closed and offline (QEMU does) has closed too.
    local end st
    end=$(xsim__deadline "$timeout")
    while st=$(xenstore-read "$be/state" 2>/dev/null) && [ "$st" != 6 ]; do
        if xsim__past "$end"; then
            xsim_log "xsim_remove_disk: backend still in state $st after ${timeout}s, forcing removal like libxl"
            rc=1
            break
        fi
        sleep 0.05
    done
    {
        echo "rm $fe"
        echo "rm $be"
        echo "rm /libxl/$domid/device/vbd/$devid"
    } | xsim_xs || return 1
    xsim__prune "/local/domain/$bdom/backend/$kind/$domid" "/local/domain/$bdom/backend/$kind" \
        "/local/domain/$domid/device/vbd" "/libxl/$domid/device/vbd" "/libxl/$domid/device" "/libxl/$domid"
    return $rc
}

# Remove each given node if it exists and has no children (libxl cleans
# empty parents of a removed device).
xsim__prune() {
    local p kids
    for p in "$@"; do
        xenstore-exists "$p" 2>/dev/null || continue
        # Only a list that succeeded and came back empty: a failed one
        # (xenstored busy) must not remove a parent with live devices.
        kids=$(xenstore-list "$p" 2>/dev/null) || continue
        [ -z "$kids" ] && xenstore-rm "$p" 2>/dev/null
    done
    return 0
}

# ---- the host -------------------------------------------------------------------

# xsim_start: create the private directory, start xenstored, export the
# environment (XENSIM_DIR, XENSTORED_PATH, XENSTORED_RUNDIR, XSIM_TMP,
# XSIM_LOGDIR, LD_LIBRARY_PATH with the simulated Xen libraries) and
# install the cleanup trap.  Set XSIM_XENSTORED_TRACE=0 to skip the
# xenstored request trace (it logs every request: costly in perf tests).
xsim_start() {
    [ -z "$XSIM_TMP" ] || xsim_fail "xsim_start: a simulated host is already running ($XSIM_TMP)"
    [ -x "$XENSTORED" ] || xsim_skip "no xenstored at $XENSTORED (tests/install-deps.sh)"
    command -v xenstore-read >/dev/null || xsim_skip "xenstore-utils is not installed (tests/install-deps.sh)"
    local shim=$XSIM_HARNESS_BIN/xsim-xenstored-shim.so i
    [ -f "$shim" ] || xsim_fail "$shim is not built (make check builds it)"
    [ -x "$XSIM_HARNESS_BIN/xsim-xs" ] || xsim_fail "$XSIM_HARNESS_BIN/xsim-xs is not built (make check builds it)"

    # Short path: the xenstored socket path must fit in sun_path.
    XSIM_TMP=$(mktemp -d "${TMPDIR:-/tmp}/xsim.XXXXXXXX") || xsim_fail "mktemp failed"
    trap 'xsim__exit_trap' EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # Under set -e a failing command ends the test without a word; name it
    # (the test's own lines come before the dump, which CI may cut off).
    # Not inherited by functions (no set -E): a check inside one is theirs.
    [[ $- == *e* ]] && trap 'xsim_log "test stopped: status $? from line $LINENO: $BASH_COMMAND"' ERR
    # Every process of this host (and the test itself) carries the tag; the
    # final sweep kills whatever still has it.
    export XSIM_TAG=$XSIM_TMP
    export XSIM_TMP
    export XSIM_LOGDIR=$XSIM_TMP/log
    export XENSIM_DIR=$XSIM_TMP/host
    export XENSTORED_RUNDIR=$XSIM_TMP/xenstored
    export XENSTORED_PATH=$XENSTORED_RUNDIR/socket
    mkdir -p "$XSIM_LOGDIR" "$XENSIM_DIR" "$XENSTORED_RUNDIR" "$XSIM_TMP/run" "$XSIM_TMP/shim"
    # dom0's xenstore event channel and ring page, read and mapped by
    # xenstored from /proc/xen (redirected here by the shim).
    echo 1 > "$XSIM_TMP/shim/xsd_port"
    head -c 4096 /dev/zero > "$XSIM_TMP/shim/xsd_kva"

    local -a trace=(-T "$XSIM_LOGDIR/xenstored-trace.log")
    [ "${XSIM_XENSTORED_TRACE:-1}" = 0 ] && trace=()
    # xenstored gets neither the simulated libraries nor the caller's
    # LD_PRELOAD: only the shim stands between it and "Xen".
    xsim_bg xenstored env -u LD_LIBRARY_PATH LD_PRELOAD="$shim" XSIM_SHIM_DIR="$XSIM_TMP/shim" \
        "$XENSTORED" -N -F "$XENSTORED_RUNDIR/xenstored.pid" "${trace[@]}"
    for ((i = 0; i < 500; i++)); do
        xenstore-read /tool/xenstored >/dev/null 2>&1 && break
        xsim_running xenstored || xsim_fail "xenstored died at start (see xenstored.log)"
        sleep 0.02
    done
    xenstore-read /tool/xenstored >/dev/null 2>&1 || xsim_fail "xenstored did not answer within 10 s"

    # What xen-init-dom0 writes on a real host.
    xenstore-write /local/domain/0/name Domain-0 /local/domain/0/domid 0 ||
        xsim_fail "cannot write dom0's nodes"

    export LD_LIBRARY_PATH=$XSIM_SIM_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    xsim_log "simulated host up in $XSIM_TMP"
}

# xsim_daemon [ARGS...]: start the xenblkd under test in the foreground
# mode, logging to $XSIM_LOGDIR/xenblkd.log (name: xenblkd), control
# socket $XSIM_TMP/control.sock.  ARGS are appended to `--config /dev/null
# --foreground --log-level debug --state-dir ... --control-socket ...` (an
# empty configuration, not whatever this host has installed; ARGS may
# override any of these).  XSIM_DAEMON_WRAPPER, if set, is a command
# prefix (split on blanks) the daemon runs under, e.g. valgrind and its
# options: the process is then the wrapper's, with the same pid.
xsim_daemon() {
    local bin=$top_builddir/src/xenblkd
    local -a wrap=()
    [ -x "$bin" ] || xsim_fail "$bin is not built"
    # Split on any blank, newlines included (read -d "" ends at EOF: 1).
    [ -z "${XSIM_DAEMON_WRAPPER:-}" ] || read -r -d "" -a wrap <<<"$XSIM_DAEMON_WRAPPER" || true
    # A private state directory (ring journals), shared by every instance
    # of the test so that a restarted daemon finds its predecessor's, and a
    # private control socket: never the host's /run/xenblkd.
    xsim_bg "${XSIM_DAEMON_NAME:-xenblkd}" "${wrap[@]}" "$bin" --config /dev/null --foreground --log-level debug \
        --state-dir "$XSIM_TMP/state" --control-socket "$XSIM_TMP/control.sock" "$@"
}

# ---- QEMU as an independent qdisk backend --------------------------------------

# xsim_qemu_qdisk DOMID: start Debian's Xen QEMU ($QEMU_XEN) as the device
# model of guest DOMID, the way libxl starts one for a PV guest with a
# qdisk disk (-machine xenpv -xen-attach -xen-domid DOMID); it serves every
# backend/qdisk/DOMID/* disk, present or added later.  Process name
# qemu-DOMID; QMP on the FIFO pair $XSIM_TMP/qmp-DOMID.{in,out}.  Waits for
# QEMU to be up (device-model/DOMID/state=running).  Stopped with QMP quit
# at cleanup, or earlier with xsim_qemu_stop DOMID.  Skips the test (77)
# if QEMU is not installed.
xsim_qemu_qdisk() {
    local domid=$1 shim=$XSIM_HARNESS_BIN/xsim-qemu-shim.so qmp
    [ -x "$QEMU_XEN" ] || xsim_skip "no QEMU at $QEMU_XEN (qemu-system-xen)"
    [ -f "$shim" ] || xsim_fail "$shim is not built (make check builds it)"
    [ -f "$XSIM_SIM_LIB/libxengnttab.so.1" ] || xsim_fail "the simulated Xen libraries are not built in $XSIM_SIM_LIB"
    qmp=$XSIM_TMP/qmp-$domid
    mkfifo "$qmp.in" "$qmp.out"
    xsim_add_domain "$domid"
    # QEMU runs as dom0 on the simulated host (XENSIM_DOMID=0) with the
    # simulated gnttab/evtchn (LD_LIBRARY_PATH, exported by xsim_start).
    xsim_bg "qemu-$domid" env LD_PRELOAD="$shim" XENSIM_DOMID=0 "$QEMU_XEN" \
        -machine xenpv -xen-attach -xen-domid "$domid" \
        -nodefaults -no-user-config -display none -m 128 \
        -name "guest$domid" \
        -chardev "pipe,id=qmp,path=$qmp" -mon chardev=qmp,mode=control
    XSIM_STOP_HOOKS+=("xsim_qemu_stop $domid")
    if ! xsim_wait_key "/local/domain/0/device-model/$domid/state" running 20; then
        xsim_fail "QEMU for domain $domid did not start (see qemu-$domid.log)"
    fi
}

# xsim_qemu_qmp DOMID COMMAND-JSON...: send QMP commands (after the
# capabilities handshake) and print QEMU's replies, one line each.
xsim_qemu_qmp() {
    local domid=$1 qmp=$XSIM_TMP/qmp-$1 in out line cmd
    shift
    xsim_running "qemu-$domid" || { xsim_log "QEMU for domain $domid is not running"; return 1; }
    # O_RDWR never blocks on a FIFO, even if QEMU just died.
    exec {in}<>"$qmp.in" {out}<>"$qmp.out"
    # The greeting (only the first time) and the handshake reply.
    printf '%s\n' '{"execute":"qmp_capabilities"}' >&"$in"
    while read -r -t 5 -u "$out" line; do
        [[ $line == *'"return"'* || $line == *'"error"'* ]] && break
    done
    for cmd in "$@"; do
        printf '%s\n' "$cmd" >&"$in"
        while read -r -t 10 -u "$out" line; do
            echo "$line"
            [[ $line == *'"return"'* || $line == *'"error"'* ]] && break
        done
    done
    exec {in}>&- {out}>&-
}

# xsim_qemu_stop DOMID: QMP quit (QEMU then tears its devices down and
# removes its nodes); SIGKILL if it has not exited within 10 s.  Prints
# nothing; returns 1 if QEMU did not exit cleanly (status 0).
xsim_qemu_stop() {
    local domid=$1 st
    xsim_running "qemu-$domid" || return 0
    xsim_qemu_qmp "$domid" '{"execute":"quit"}' >/dev/null || true
    if ! st=$(xsim_wait_exit "qemu-$domid" 10); then
        st=$(xsim_kill "qemu-$domid" KILL 5)
    fi
    [ "$st" = 0 ] || { xsim_log "QEMU for domain $domid exited with status $st"; return 1; }
}

# Continue every process this host started (each name's process group),
# in case the test stopped one (SIGSTOP xenstored, as the xenstore stall
# tests and benches do) and ended, or was killed, before continuing it: a
# stopped xenstored would hang every xenstore call of the cleanup (the
# dump, the exit hooks, the daemon's shutdown), and a stopped process
# acts on SIGTERM only once continued.
xsim__continue_all() {
    local name w
    for name in "${XSIM_NAMES[@]}"; do
        w=$(cat "$XSIM_TMP/run/$name.wpid" 2>/dev/null) || continue
        kill -CONT -- "-$w" 2>/dev/null
    done
    return 0
}

# xsim_dump: print the xenstore tree and the tail of every log (called by
# the cleanup when the test failed; useful by hand too).
xsim_dump() {
    local f lines=${XSIM_LOG_LINES:-80}
    if [ -S "$XENSTORED_PATH" ] && xsim_running xenstored; then
        echo "===== xenstore tree ====="
        # Bounded: a wedged xenstored must not keep the cleanup from running.
        timeout 10 xenstore-ls -fp / 2>&1 | head -n 400
    fi
    for f in "$XSIM_LOGDIR"/*.log; do
        [ -e "$f" ] || continue
        [[ $f == */xenstored-trace.log ]] && continue
        echo "===== $(basename "$f") (last $lines lines) ====="
        tail -n "$lines" "$f"
    done
    if [ -e "$XSIM_LOGDIR/xenstored-trace.log" ]; then
        echo "===== xenstored-trace.log (last 40 lines) ====="
        grep -v '^wrl:' "$XSIM_LOGDIR/xenstored-trace.log" | tail -n 40
    fi
}

# Kill every process carrying our tag except this shell and its ancestors
# (they have it when the test itself exported it).  Prints what it killed.
xsim__sweep() {
    local d p e tag="XSIM_TAG=$XSIM_TMP" self=$$ me=$BASHPID
    local -a envs
    for d in /proc/[0-9]*; do
        p=${d#/proc/}
        [ "$p" = "$self" ] || [ "$p" = "$me" ] && continue
        { mapfile -d "" -t envs < "$d/environ"; } 2>/dev/null || continue
        for e in "${envs[@]}"; do
            if [ "$e" = "$tag" ]; then
                xsim__is_ancestor "$p" && break
                echo "$p $(tr '\0' ' ' < "$d/cmdline" 2>/dev/null)"
                kill -KILL "$p" 2>/dev/null
                break
            fi
        done
    done
}

xsim__is_ancestor() {
    local p=$$ ppid
    while [ "$p" -gt 1 ]; do
        [ "$p" = "$1" ] && return 0
        ppid=$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null) || return 1
        p=$ppid
    done
    return 1
}

# xsim__check_daemon NAME: a daemon the cleanup stopped with SIGTERM (its
# NAME.cleanup, written by xsim_kill) must have handed over: exited 0
# (xenblkd(8), SIGNALS) within its timeout, with no sanitizer report in
# its log (LeakSanitizer's comes at exit).  Otherwise say so, quoting the
# log, and return 1.  Exit status 137 without the cleanup's own SIGKILL is
# a SIGKILL from the test itself (sent just before it ended): not checked.
xsim__check_daemon() {
    local name=$1 log=$XSIM_LOGDIR/$1.log st killed timeout why="" first
    read -r st killed timeout < "$XSIM_TMP/run/$name.cleanup" || return 0
    [ "$st" != 137 ] || [ "$killed" = 1 ] || return 0
    if [ "$killed" = 1 ]; then
        why="did not exit within ${timeout}s of SIGTERM (SIGKILLed)"
    elif [ "$st" != 0 ]; then
        why="exited with status $st after SIGTERM, want 0 (a handover, xenblkd(8) SIGNALS)"
    fi
    first=$(grep -n -m 1 -E 'Sanitizer|runtime error' "$log" 2>/dev/null | cut -d: -f1)
    [ -z "$first" ] || why="${why:+$why; }its log has a sanitizer report"
    [ -n "$why" ] || return 0
    xsim_log "FAIL: daemon $name, stopped at the test's cleanup: $why; from $name.log:"
    if [ -n "$first" ]; then
        # The report's start, and its SUMMARY lines wherever they are.
        { sed -n "$first,$((first + 29))p" "$log"
          tail -n "+$((first + 30))" "$log" | grep 'SUMMARY:'; } | sed 's/^/    /' >&2
    else
        tail -n 20 "$log" 2>/dev/null | sed 's/^/    /' >&2
    fi
    return 1
}

# xsim_stop: tear the simulated host down now (the EXIT trap does the same).
# Returns 1 when a daemon it (or an xsim_on_exit hook) stopped did not hand
# over cleanly (xsim__check_daemon).
xsim_stop() {
    [ -n "$XSIM_TMP" ] || return 0
    local i name w hook stray timeout rc=0
    XSIM_CLEANING=1
    xsim__continue_all
    for hook in "${XSIM_ON_EXIT[@]}"; do eval "$hook" || xsim_log "exit hook failed: $hook"; done
    for hook in "${XSIM_STOP_HOOKS[@]}"; do eval "$hook" || xsim_log "stop hook failed: $hook"; done
    # Newest first; xenstored (the first one) last, so that the others can
    # still talk to it while they shut down.  A daemon's handover may wait
    # up to 15 s for I/O in flight (xenblkd(8), SIGNALS): it gets longer.
    for ((i = ${#XSIM_NAMES[@]} - 1; i >= 0; i--)); do
        name=${XSIM_NAMES[i]}
        xsim__group_alive "$name" || continue
        timeout=${XSIM_STOP_TIMEOUT:-5}
        [ ! -e "$XSIM_TMP/run/$name.daemon" ] || timeout=${XSIM_DAEMON_STOP_TIMEOUT:-20}
        xsim_kill "$name" TERM "$timeout" >/dev/null
    done
    for name in "${XSIM_NAMES[@]}"; do
        [ ! -e "$XSIM_TMP/run/$name.cleanup" ] || xsim__check_daemon "$name" || rc=1
    done
    stray=$(xsim__sweep)
    [ -n "$stray" ] && xsim_log "killed stray processes of this host: $stray"
    if [ "${XSIM_KEEP:-0}" = 1 ]; then
        xsim_log "XSIM_KEEP=1: leaving $XSIM_TMP"
    else
        rm -rf "$XSIM_TMP"
    fi
    XSIM_TMP= XSIM_NAMES=() XSIM_ON_EXIT=() XSIM_STOP_HOOKS=()
    unset XSIM_TAG XENSTORED_PATH XENSTORED_RUNDIR XENSIM_DIR
    XSIM_CLEANING=0
    return "$rc"
}

xsim__exit_trap() {
    local rc=$?
    set +e
    trap - ERR
    trap '' HUP INT TERM   # finish cleaning up whatever arrives now
    if [ -n "$XSIM_TMP" ]; then
        xsim__continue_all
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
            xsim_log "test failed (exit $rc): state of the simulated host follows"
            xsim_dump >&2
        fi
        # A daemon that did not hand over fails a test that passed (or
        # skipped); a failed test keeps its status, and its own message
        # comes first, before the dump.
        if ! xsim_stop && { [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; }; then
            rc=1
        fi
    fi
    exit "$rc"
}
