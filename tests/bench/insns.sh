#!/bin/bash
# Instructions per request of the data plane's hot path (ring-insns.c under
# callgrind): deterministic, so two builds compare without timing noise.
#   tests/bench/insns.sh [REQUESTS [QD [read|write [persistent|copy [SEGS [MAXPG]]]]]]
# Prints the instructions per request, split by where they are spent
# (xenblkd's own code, the simulated Xen libraries, libev, libc, the fake
# I/O engine), and the 15 most expensive functions.  Needs valgrind.
set -euo pipefail
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir
bin=$top_builddir/tests/bench/ring-insns
[ -x "$bin" ] || { echo "insns.sh: $bin is not built (make check builds it)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "insns.sh: valgrind is not installed (tests/deps/bench.txt)" >&2; exit 77; }
n=${1:-20000} qd=${2:-32} op=${3:-read} grants=${4:-persistent} segs=${5:-1} maxpg=${6:-0}
out=$(mktemp -d "${TMPDIR:-/tmp}/xbd-insns.XXXXXX")
trap 'rm -rf "$out"' EXIT
# The rig re-executes itself with the simulated libraries unless they are
# already on LD_LIBRARY_PATH: set them here so valgrind sees one process.
LD_LIBRARY_PATH=$top_builddir/tests/sim/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
    valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$out/cg.out" \
    "$bin" "$n" "$qd" "$op" "$grants" "$segs" "$maxpg" > "$out/run.log" 2> "$out/valgrind.log" ||
    { cat "$out/run.log" "$out/valgrind.log" >&2; exit 1; }
reqs=$(sed -n 's/^ring-insns: \([0-9]*\) .*/\1/p' "$out/run.log")
callgrind_annotate --inclusive=no --auto=no --threshold=100 "$out/cg.out" > "$out/annotate.txt" 2>/dev/null
awk -v reqs="$reqs" -v what="$op, $grants grants, QD $qd, $segs segment(s), cache ${maxpg/#0/default}" '
    /PROGRAM TOTALS/ { total = $1; gsub(",", "", total) }
    /file:function/ { infn = 1; next }
    infn && /^ *$/ { infn = 0 }
    infn && /^ *[0-9,]+ +\(/ {
        ir = $1; gsub(",", "", ir); name = $0
        sub(/^ *[0-9,]+ +\([^)]*\) +/, "", name)
        if (name ~ /fake-io\.c/) w = "fake I/O engine (stands in for io_aio.c)"
        else if (name ~ /tests\/sim|libxenevtchn|libxengnttab/) w = "simulated Xen libraries (gnttab, evtchn)"
        else if (name ~ /^\.\.\/(src|include)\//) w = "xenblkd (src/)"
        else if (name ~ /tests\/unit/) w = "test rig"
        else if (name ~ /libev/) w = "libev"
        else if (name ~ /libc\.so|ld-linux/) w = "libc"
        else w = "other"
        part[w] += ir
        sub(/ \[.*\]$/, "", name)
        if (nf < 15) top[nf++] = sprintf("%8.1f  %s", ir / reqs, name)
    }
    END {
        printf "instructions per request (%s): %.0f  [%d requests, %d instructions]\n", what, total / reqs, reqs, total
        for (w in part) printf "  %-42s %8.1f\n", w, part[w] / reqs
        print "most expensive functions (instructions per request):"
        for (i = 0; i < nf; i++) print "  " top[i]
    }' "$out/annotate.txt"
