# tests/daemon/config-lib.sh - helpers of the configuration tests (bash).
# shellcheck shell=bash

# daemon_fd_direct PATH: "yes" if the daemon's fd to PATH has O_DIRECT,
# "no" if not; fails the test when it holds no fd to PATH.
daemon_fd_direct() {
    local pid f flags
    pid=$(xsim_pid xenblkd)
    for f in /proc/"$pid"/fd/*; do
        [ "$(readlink "$f" 2>/dev/null)" = "$1" ] || continue
        flags=$(awk '/^flags:/ { print $2 }' "/proc/$pid/fdinfo/${f##*/}")
        # O_DIRECT is 040000 on x86 (asm-generic/fcntl.h).
        if (( (8#$flags & 8#40000) != 0 )); then echo yes; else echo no; fi
        return 0
    done
    xsim_fail "the daemon holds no fd to $1"
}

# wait_log_text TEXT [TIMEOUT]: wait_log for a fixed string.
wait_log_text() {
    wait_log "$(printf '%s' "$1" | sed 's/[][\\.*^$+?(){}|]/\\&/g')" "${2:-10}"
}
