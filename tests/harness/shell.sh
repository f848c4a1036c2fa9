#!/bin/bash
# Start a private simulated Xen host and drop into an interactive shell in
# it: XENSTORED_PATH, XENSIM_DIR, LD_LIBRARY_PATH ... are set, and all the
# xsim_* functions of env.sh are available (the shell sources env.sh).
# Leaving the shell tears the host down.
#
#   top_builddir=/path/to/build bash tests/harness/shell.sh [--daemon ARGS...]
#
# With --daemon, also starts $top_builddir/src/xenblkd with ARGS.
set -eu
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
export top_srcdir
source "$here/env.sh"
xsim_start
if [ "${1:-}" = --daemon ]; then
    shift
    xsim_daemon "$@"
fi
rc="$XSIM_TMP/bashrc"
cat > "$rc" <<RC
[ -f ~/.bashrc ] && source ~/.bashrc
source "$here/env.sh"
# This inner shell only uses the host; the outer one owns and stops it.
XSIM_TMP='$XSIM_TMP'
PS1='[xsim \W]\\$ '
echo "Simulated Xen host in \$XSIM_TMP (logs: \$XSIM_LOGDIR). Try: xenstore-ls -fp /"
echo "Functions: xsim_add_disk, xsim_remove_disk, xsim_wait_key, xsim_bg, xsim_qemu_qdisk ... (tests/harness/README.md)"
echo "Leave the shell (exit) to stop everything."
RC
# Not exec: this shell must survive to clean up.
bash --rcfile "$rc" -i || true
