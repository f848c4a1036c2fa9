#!/bin/bash
# Every manual page under man/ (sections 5 and 8) is clean under
# `mandoc -T lint`: not a single message (style, warning or error).
set -euo pipefail
command -v mandoc >/dev/null ||
    { echo "SKIP: mandoc not installed (Debian package mandoc, tests/deps/man.txt)"; exit 77; }
shopt -s nullglob
pages=("$top_srcdir"/man/*.[58])
[ ${#pages[@]} -gt 0 ] || { echo "FAIL: no manual page in $top_srcdir/man"; exit 1; }
fail=0
for p in "${pages[@]}"; do
    if out=$(mandoc -T lint "$p" 2>&1) && [ -z "$out" ]; then
        echo "ok: ${p##*/}"
    else
        echo "FAIL: ${p##*/}:"
        echo "$out"
        fail=1
    fi
done
exit $fail
