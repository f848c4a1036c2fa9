#!/bin/bash
# xsim-blkfront rejects bad command lines with exit status 2 and a message
# naming the problem, documents its options, and refuses to run outside a
# simulated host.  No xenstored needed.
set -u
bin="${top_builddir:?}/tests/frontend/xsim-blkfront"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fe-usage.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0

# expect STATUS PATTERN ARGS...: run, check exit status and stderr+stdout.
expect() {
    local want=$1 pattern=$2
    shift 2
    env -u XENSIM_DIR "$bin" "$@" >"$tmp/out" 2>&1
    local got=$?
    if [ "$got" -ne "$want" ] || ! grep -qE -- "$pattern" "$tmp/out"; then
        echo "FAIL: xsim-blkfront $* -> status $got (want $want), output:" >&2
        sed 's/^/    /' "$tmp/out" >&2
        echo "    (expected /$pattern/)" >&2
        fail=1
    fi
}

expect 0 '--ring-order N' --help
expect 0 'expect=okay\|error' --help
expect 2 'domid is required' --vdev 51712
expect 2 'at least one --vdev' --domid 1
expect 2 'domid 0 is the backend' --domid 0 --vdev 51712
expect 2 'unknown option .--bogus' --domid 1 --vdev 51712 --bogus
expect 2 'needs a value' --domid 1 --vdev
expect 2 'protocol: expected native' --domid 1 --vdev 51712 --protocol x86_16-abi
expect 2 'workload: expected verify' --domid 1 --vdev 51712 --workload scramble
expect 2 'queues must be at least 1' --domid 1 --vdev 51712 --queues 0
expect 2 'qd must be at least 1' --domid 1 --vdev 51712 --qd 0
expect 2 'multiple of 512' --domid 1 --vdev 51712 --bs 1000
expect 2 '--ring-order: invalid' --domid 1 --vdev 51712 --ring-order 99
expect 2 '--domid: expected a non-negative' --domid -3 --vdev 51712
expect 2 '--vdev: invalid' --domid 1 --vdev 12abc
expect 2 'op= is required' --domid 1 --vdev 51712 --raw sector=0
expect 2 "unknown key 'colour'" --domid 1 --vdev 51712 --raw op=read,colour=red
expect 2 'expected key=value' --domid 1 --vdev 51712 --raw op=read,junk
expect 2 'expect=maybe' --domid 1 --vdev 51712 --raw op=read,expect=maybe
expect 2 'hold: expected seconds' --domid 1 --vdev 51712 --hold soon
expect 2 "unexpected argument 'extra'" --domid 1 --vdev 51712 extra
# A valid command line outside a simulated host: a clear refusal, not a crash.
expect 1 'XENSIM_DIR is not set' --domid 1 --vdev xvda --raw op=read,expect=okay

exit $fail
