# tests/daemon/config-lib.sh - helpers of the configuration tests (bash).
# shellcheck shell=bash

# daemon_fd_flags PATH [NAME]: the open flags (octal, from fdinfo) of the
# fd of daemon NAME (default xenblkd) to PATH; fails the test when it
# holds none.
daemon_fd_flags() {
    local pid f
    pid=$(xsim_pid "${2:-xenblkd}")
    for f in /proc/"$pid"/fd/*; do
        [ "$(readlink "$f" 2>/dev/null)" = "$1" ] || continue
        awk '/^flags:/ { print $2 }' "/proc/$pid/fdinfo/${f##*/}"
        return 0
    done
    xsim_fail "daemon ${2:-xenblkd} holds no fd to $1"
}

# daemon_fd_direct PATH: "yes" if the daemon's fd to PATH has O_DIRECT,
# "no" if not; fails the test when it holds no fd to PATH.
daemon_fd_direct() {
    local flags
    flags=$(daemon_fd_flags "$1") || return 1
    # O_DIRECT is 040000 on x86 (asm-generic/fcntl.h).
    if (( (8#$flags & 8#40000) != 0 )); then echo yes; else echo no; fi
}

# wait_log_text TEXT [TIMEOUT]: wait_log for a fixed string.
wait_log_text() {
    wait_log "$(printf '%s' "$1" | sed 's/[][\\.*^$+?(){}|]/\\&/g')" "${2:-10}"
}
